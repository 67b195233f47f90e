//! cairn-engine: Cairn's embedded storage engine.
//!
//! An append-only, hash-chained, compressed log of audit events (CloudTrail
//! records and on-premises events of the same shape). Records are validated
//! and stored byte-exact; every event gets a contiguous `seq` that is its
//! leaf index in one RFC 6962 Merkle tree; the active segment (the WAL) is
//! sealed into immutable, time-sorted, zstd-compressed segments listed by an
//! atomically replaced manifest.
//!
//! The engine is a library: it never opens a socket and never spawns
//! anything but its sealer thread. Start at [`Store`].

// The public API: what a program embedding Cairn uses.
pub mod checkpoint;
pub mod compact;
pub mod event;
pub mod framing;
pub mod fs;
pub mod index;
pub mod insights;
pub mod limits;
pub mod merkle;
pub mod query;
pub mod retention;
pub mod rollup;
pub mod verify;

// Implementation details.
mod codec;
mod error;
mod layout;
mod lock;
mod store;
mod tree;

// Implementation details that this workspace's own tests, fuzz targets and
// benchmarks reach into (segment and WAL bytes, the memtable): not API, and
// free to change.
#[doc(hidden)]
pub mod manifest;
#[doc(hidden)]
pub mod memtable;
#[doc(hidden)]
pub mod segment;
#[doc(hidden)]
pub mod tiles;
#[doc(hidden)]
pub mod wal;

pub use checkpoint::{Checkpoint, SignedCheckpoint, Verifier};

/// Lowers the calling thread's CPU priority to nice 10 (Linux applies a
/// thread id's nice value to that thread alone; elsewhere this does
/// nothing): background work yields to ingest, and alone on the machine
/// it runs as fast.
pub fn lower_thread_priority() {
    set_thread_nice(10);
}

/// Sets the calling thread's nice value (Linux; elsewhere nothing).
pub fn set_thread_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice);
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// A caught panic's message (`panic!` gives a `&str` or a `String`).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("no message")
}
pub use error::{Error, Result};
pub use event::{parse_event, Event, Rejection};
pub use index::Attr;
pub use query::{Order, Page, Query, QueryError};
pub use store::{
    Clock, ConsistencyProof, Durability, InclusionProof, MemoryUse, Options, Outcome, SegmentParts, SharedEvent, Stats, Store, StoredEvent,
};
