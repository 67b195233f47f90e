//! The `cairn` subcommands, as library functions so tests can call them.

pub mod bench;
pub mod cloudtrail;
pub mod ingest;
pub mod insights;
pub mod integrity;
pub mod query;
pub mod rollup;
