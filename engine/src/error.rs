//! The engine's typed errors. Every message names the offending value, the
//! file and offset, or the limit, so that an operator can act on it without
//! reading code. Binaries wrap these with `anyhow` context at their edges.

use std::path::PathBuf;

/// Errors returned by the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the data directory's write lock.
    #[error("data directory {dir} is locked by pid {pid} (another cairnd or cairn is writing to it)")]
    Locked { dir: PathBuf, pid: String },
    /// Stored bytes fail their checksum, framing or cross-checks. Never
    /// skipped: the store refuses to open or the read fails.
    #[error("corruption in {path} at offset {offset}: {what}")]
    Corruption { path: PathBuf, offset: u64, what: String },
    /// A file was written by a newer (or unknown) format version. Every
    /// format is read from version 1 up to `supported`.
    #[error(
        "{path}: unsupported format version {found} (this build reads {}); upgrade cairn or restore a matching build",
        versions_read(*supported)
    )]
    UnsupportedVersion { path: PathBuf, found: u16, supported: u16 },
    /// A previous write or fsync failed; the writer refuses further appends
    /// until the store is reopened (fsync errors are never retried).
    #[error("the store's writer is poisoned by an earlier failure and accepts no appends until it is reopened: {0}")]
    Poisoned(String),
    /// A batch exceeds a limit.
    #[error("batch rejected: {what} is {value}, the limit is {limit}")]
    BatchTooLarge { what: &'static str, value: u64, limit: u64 },
    /// An invalid option or argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
    /// The event was removed by retention.
    #[error("seq {seq} was removed by retention: events below seq {min_retained} were pruned (the cut is recorded in the manifest and in the log)")]
    Pruned { seq: u64, min_retained: u64 },

    /// No stored event has this eventID.
    #[error("no event has eventID {0:?}")]
    EventNotFound(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn corruption(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corruption { path: path.into(), offset, what: what.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// "version 1", or "versions 1 to N".
fn versions_read(supported: u16) -> String {
    if supported <= 1 {
        format!("version {supported}")
    } else {
        format!("versions 1 to {supported}")
    }
}
