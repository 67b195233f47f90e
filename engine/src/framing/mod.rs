//! Framing: turning a byte stream (a file, stdin, a decompressed log file,
//! a request body) into records, so that bad bytes never cost a good
//! record. Every path from a stream of bytes to [`crate::Store::append`]
//! goes through [`Splitter`]; docs/INGEST.md states its rules for users.
//!
//! Nothing is guessed from the first line. The splitter reads value by
//! value, whatever the layout: NDJSON, one JSON array, CloudTrail log files
//! (`{"Records":[...]}`, one line or pretty-printed, one or many), streams
//! of pretty-printed records, and any mixture of these with text that is
//! not JSON. Arrays and `Records` arrays are streamed element by element,
//! so a 2 GB log file on one line needs no more memory than its largest
//! record.
//!
//! When a value stops being JSON, the splitter resumes where the evidence
//! says the next record starts, never inside the broken value's nested
//! objects (they can look like events: an integration event's `eventData`
//! has an eventTime and an eventName):
//!   1. at a *record marker* later on the broken value's first line: `{`
//!      followed by the key that opened the last good record (at first
//!      `"eventVersion"`), which finds the next element of a one-line log
//!      file or the record glued to a torn one;
//!   2. otherwise at the first following line indented no deeper than the
//!      line the broken value began on: the next NDJSON line, or the next
//!      record of a pretty-printed stream (its nested lines are deeper).
//!
//! What was passed over is reported as a [`Piece::Skipped`] span with its
//! lines and the first problem in it; nothing is dropped silently. The
//! splitter never panics and holds at most `value_bytes_max` bytes of a
//! value, plus the reader's buffer.

mod json;
mod source;
mod splitter;

pub use splitter::Splitter;

use std::fmt;

pub(crate) use json::plain_run;
pub use json::{show_byte, Kind, Step, Syntax, Validator};

/// Where something is in the input: a byte offset, a 1-based line and
/// column (in bytes), and for elements of an array or of a log file's
/// `Records`, the element's 1-based index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub offset: u64,
    pub line: u64,
    pub column: u64,
    pub element: Option<u64>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(e) = self.element {
            write!(f, " (element {e})")?;
        }
        Ok(())
    }
}

/// One thing found in the input, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A complete JSON object: a record to offer to the store, with the
    /// exact bytes found (from its `{` to its `}`).
    Record { bytes: Vec<u8>, at: Position },
    /// A complete value that cannot be a record (an array element that is
    /// not an object, or one larger than the largest record any store
    /// accepts). It counts as a record seen and rejected.
    Rejected { at: Position, problem: Problem },
    /// Input that held no record, from `from` up to (not including) `to`:
    /// text that is not JSON, a value that stops being JSON and what was
    /// passed over to find the next record, NUL bytes, an unreadable rest.
    /// Adjacent problems are merged into one span; `problems` counts them.
    Skipped { from: Position, to: Position, problem: Problem, problems: u64 },
}

impl Piece {
    /// For a skipped span: its first and last line.
    pub fn lines(&self) -> Option<(u64, u64)> {
        match self {
            Piece::Skipped { from, to, .. } => {
                let last = if to.column == 1 && to.line > from.line { to.line - 1 } else { to.line };
                Some((from.line, last.max(from.line)))
            }
            _ => None,
        }
    }
}

/// What is wrong with a stretch of input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Text where a JSON object should start.
    NotJson { found: String },
    /// Text that is not even UTF-8.
    InvalidUtf8,
    /// UTF-16 text (a byte-order mark FF FE or FE FF at the start).
    Utf16,
    /// A run of NUL bytes (a zero-filled region of a file).
    NulBytes { bytes: u64 },
    /// A value that stops being JSON at `at`.
    InvalidJson { at: Position, syntax: Syntax },
    /// The input ends inside a value.
    Truncated,
    /// A value still open where a record starts on `line` (see
    /// `Splitter::record_starts_here`).
    Interrupted { line: u64 },
    /// The input ends inside an array (or a log file's `Records`).
    UnclosedArray { opened_line: u64 },
    /// An array element that is not an object.
    NotAnObject(Kind),
    /// A value larger than the framing limit.
    TooLarge { bytes: u64, limit: usize },
    /// A `{"Records": ...}` document whose `Records` is not an array.
    RecordsNotArray(Kind),
    /// The input could not be read on (a truncated or corrupt gzip stream,
    /// an I/O error).
    Unreadable(String),
}

impl Problem {
    /// A short stable code, for summaries that count problems by kind.
    /// Codes shared with the event parser's rejections mean the same.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::NotJson { .. } => "NotJson",
            Problem::InvalidUtf8 => "InvalidUtf8",
            Problem::Utf16 => "Utf16",
            Problem::NulBytes { .. } => "NulBytes",
            Problem::InvalidJson { .. } => "InvalidJson",
            Problem::Truncated => "Truncated",
            Problem::Interrupted { .. } => "Truncated",
            Problem::UnclosedArray { .. } => "UnclosedArray",
            Problem::NotAnObject(_) => "NotAnObject",
            Problem::TooLarge { .. } => "RecordTooLarge",
            Problem::RecordsNotArray(_) => "RecordsNotArray",
            Problem::Unreadable(_) => "Unreadable",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotJson { found } => write!(f, "not JSON: expected a JSON object, found {found:?}"),
            Problem::InvalidUtf8 => f.write_str("not JSON: the bytes are not valid UTF-8"),
            Problem::Utf16 => f.write_str("UTF-16 text: Cairn reads UTF-8 JSON (convert with iconv -f UTF-16 -t UTF-8)"),
            Problem::NulBytes { bytes } => write!(f, "{bytes} NUL bytes (a zero-filled region)"),
            Problem::InvalidJson { at, syntax } => {
                write!(f, "invalid JSON at line {} column {}: {syntax}", at.line, at.column)
            }
            Problem::Truncated => f.write_str("the input ends inside a value (a truncated record?)"),
            Problem::Interrupted { line } => {
                write!(f, "a value is unfinished where a record starts on line {line} (a truncated record?)")
            }
            Problem::UnclosedArray { opened_line } => {
                write!(f, "the input ends inside the array opened on line {opened_line} (its ']' is missing)")
            }
            Problem::NotAnObject(kind) => write!(f, "the element is {}, not a JSON object", kind.name()),
            Problem::TooLarge { bytes, limit } => {
                write!(f, "record is {bytes} bytes, larger than {limit} bytes, the largest record a Cairn store accepts")
            }
            Problem::RecordsNotArray(kind) => {
                write!(f, "a log file whose \"Records\" is {}, not an array of records", kind.name())
            }
            Problem::Unreadable(e) => write!(f, "the input cannot be read on: {e}"),
        }
    }
}

#[cfg(test)]
mod tests;
