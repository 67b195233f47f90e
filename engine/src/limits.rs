//! Limits on everything that enters the engine, named with units last.
//! Each is checked where data enters, before anything is allocated for it.

/// Default maximum size of one record (CloudTrail's own limit).
pub const RECORD_BYTES_DEFAULT: usize = 256 * 1024;
/// The record size limit may be raised up to this (CloudTrail Lake's "Large").
pub const RECORD_BYTES_MAX: usize = 1024 * 1024;
/// Maximum number of records in one `append` call.
pub const BATCH_RECORDS_MAX: usize = 100_000;
/// Maximum total record bytes in one `append` call.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Maximum size of one WAL frame body; a frame read from disk claiming more
/// is corruption, checked before any allocation.
pub const FRAME_BODY_BYTES_MAX: u64 = 512 * 1024 * 1024;
/// Sealed-segment blocks are cut when their uncompressed payload reaches
/// this: as large as compaction's, because records split into fields
/// compress better the more of them share a block (on 2M diverse records,
/// 246 bytes an event at 1 MiB, 223 at 4 MiB, at the same seal speed).
pub const BLOCK_BYTES_TARGET: usize = 4 * 1024 * 1024;
/// Maximum number of segments a manifest may list.
pub const MANIFEST_SEGMENTS_MAX: u64 = 10_000_000;
/// Maximum nesting depth accepted in a record (serde_json's own recursion
/// limit is 128; records nest 11 levels in practice).
pub const RECORD_DEPTH_MAX: usize = 128;
