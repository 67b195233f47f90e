//! Cairn's end-to-end tests: one integration binary (one link, one
//! process), with a module per area. They drive the engine's public API and
//! the real `cairn` binary.

mod cli;
mod cloudtrail_export;
mod common;
mod compact;
mod crash;
mod deliver;
mod fixtures;
mod format_doc;
mod fuzz;
mod golden;
mod http_api;
mod ingest_input;
mod insights;
mod integrity;
mod interop;
mod model;
mod protocol_client;
mod protocol_doc;
mod protocol_golden;
mod query;
mod retention;
mod rollup;
mod server;
mod sql;
mod store;

/// The fuzz targets' allocation cap (tests/it/fuzz); the system allocator
/// otherwise.
#[global_allocator]
static ALLOC: fuzz::CappedAlloc = fuzz::CappedAlloc;
