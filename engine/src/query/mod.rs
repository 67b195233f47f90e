//! Queries: LookupEvents semantics and beyond.
//!
//! A query is a time range (inclusive), any number of lookup attributes
//! combined with AND (several values of one attribute combine with OR),
//! newest first (or oldest first for export). It runs over a snapshot: the
//! sealed segments whose time span overlaps the range (their partitions and
//! postings narrow each to candidate ordinals), the sealing memtables, and
//! the active memtable's matches, merged by (eventTime, seq). Pages are
//! cut by an opaque token that records the query's fingerprint, the
//! snapshot's tree size, and the last (eventTime, seq) returned, so paging
//! never repeats or skips an event while new ones arrive.
//!
//! This module only reads; it never changes the store.

mod count;
mod merge;
mod plan;
mod token;

pub(crate) use count::count;
pub(crate) use merge::run;
pub(crate) use plan::memtable_events;
pub use token::token_created_ms;
pub(crate) use token::Token;

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::event::id_fingerprint;
use crate::event::StoredEvent;
use crate::index::Attr;
use crate::memtable::Memtable;
use crate::segment::cache::BlockCache;

/// Page size when none is given (CloudTrail's).
pub const MAX_RESULTS_DEFAULT: usize = 50;
/// The largest page a caller may ask for.
pub const MAX_RESULTS_MAX: usize = 10_000;
/// A page ends once its records reach this many bytes, even below
/// `max_results` (its NextToken continues): with one more record of at most
/// [`RECORD_BYTES_MAX`] and 10,000 events' framing, every page fits a
/// 16 MiB protocol frame.
pub const PAGE_RECORD_BYTES_MAX: usize = 14 << 20;
/// Longest attribute value accepted (CloudTrail's AttributeValue limit).
pub const ATTRIBUTE_VALUE_CHARS_MAX: usize = 2_000;
/// Most attribute values in one query, over all attributes.
pub const ATTRIBUTE_VALUES_MAX: usize = 256;

/// What to look up. Times are unix milliseconds, inclusive; `None` is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// AND across entries; OR across the values of one entry.
    pub filters: Vec<(Attr, Vec<String>)>,
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// One page of results.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub events: Vec<StoredEvent>,
    /// Present if and only if more results may follow.
    pub next_token: Option<String>,
}

/// Query errors, named after CloudTrail's exceptions.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    InvalidTimeRange(String),
    InvalidLookupAttributes(String),
    InvalidMaxResults(String),
    InvalidNextToken(String),
    Store(Error),
}

impl QueryError {
    /// What is wrong, without the code (for protocols that carry the code
    /// beside the message).
    pub fn message(&self) -> String {
        match self {
            QueryError::InvalidTimeRange(m)
            | QueryError::InvalidLookupAttributes(m)
            | QueryError::InvalidMaxResults(m)
            | QueryError::InvalidNextToken(m) => m.clone(),
            QueryError::Store(e) => e.to_string(),
        }
    }

    /// CloudTrail's exception name for the error.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidTimeRange(_) => "InvalidTimeRangeException",
            QueryError::InvalidLookupAttributes(_) => "InvalidLookupAttributesException",
            QueryError::InvalidMaxResults(_) => "InvalidMaxResultsException",
            QueryError::InvalidNextToken(_) => "InvalidNextTokenException",
            QueryError::Store(_) => "InternalFailure",
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::InvalidTimeRange(m)
            | QueryError::InvalidLookupAttributes(m)
            | QueryError::InvalidMaxResults(m)
            | QueryError::InvalidNextToken(m) => write!(f, "{}: {m}", self.code()),
            QueryError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for QueryError {}

impl From<Error> for QueryError {
    fn from(e: Error) -> Self {
        QueryError::Store(e)
    }
}

pub type QueryResult<T> = std::result::Result<T, QueryError>;

/// EventCategory values as records spell them. LookupEvents documents
/// `EventCategory=insight` in lower case; values are matched without case.
const EVENT_CATEGORIES: [&str; 5] = ["Management", "Data", "Insight", "NetworkActivity", "Aggregated"];

impl Query {
    /// The query with EventCategory values spelled as records spell them
    /// (`insight` -> `Insight`); every other value is matched exactly.
    pub fn canonical(&self) -> std::borrow::Cow<'_, Query> {
        let fix = |a: &Attr, v: &String| -> Option<&'static str> {
            (*a == Attr::EventCategory).then(|| EVENT_CATEGORIES.into_iter().find(|c| c.eq_ignore_ascii_case(v) && c != v)).flatten()
        };
        if !self.filters.iter().any(|(a, vs)| vs.iter().any(|v| fix(a, v).is_some())) {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut q = self.clone();
        for (a, vs) in &mut q.filters {
            for v in vs.iter_mut() {
                if let Some(c) = fix(a, v) {
                    *v = c.to_string();
                }
            }
        }
        std::borrow::Cow::Owned(q)
    }

    /// Checks the query against CloudTrail's rules and our limits.
    pub fn validate(&self) -> QueryResult<()> {
        if let (Some(s), Some(e)) = (self.start_ms, self.end_ms) {
            if s > e {
                return Err(QueryError::InvalidTimeRange(format!(
                    "start time {} is after end time {}",
                    crate::event::format_event_time_ms(s),
                    crate::event::format_event_time_ms(e)
                )));
            }
        }
        let mut total = 0;
        for (attr, values) in &self.filters {
            if values.is_empty() {
                return Err(QueryError::InvalidLookupAttributes(format!("attribute {} has no value", attr.name())));
            }
            for v in values {
                let n = v.chars().count();
                if n == 0 || n > ATTRIBUTE_VALUE_CHARS_MAX {
                    return Err(QueryError::InvalidLookupAttributes(format!(
                        "the value of {} must be 1 to {ATTRIBUTE_VALUE_CHARS_MAX} characters, not {n}",
                        attr.name()
                    )));
                }
                total += 1;
            }
        }
        if total > ATTRIBUTE_VALUES_MAX {
            return Err(QueryError::InvalidLookupAttributes(format!(
                "{total} attribute values given; the limit is {ATTRIBUTE_VALUES_MAX}"
            )));
        }
        Ok(())
    }

    fn start(&self) -> i64 {
        self.start_ms.unwrap_or(i64::MIN)
    }

    fn end(&self) -> i64 {
        self.end_ms.unwrap_or(i64::MAX)
    }

    /// A fingerprint of the query's parameters, which binds page tokens.
    fn fingerprint(&self, order: Order) -> u64 {
        let mut filters: Vec<(u8, Vec<&str>)> = self
            .filters
            .iter()
            .map(|(a, vs)| {
                let mut v: Vec<&str> = vs.iter().map(String::as_str).collect();
                v.sort_unstable();
                v.dedup();
                (*a as u8, v)
            })
            .collect();
        filters.sort();
        let mut canon = format!("{:?}|{:?}|{}|", self.start_ms, self.end_ms, order == Order::NewestFirst);
        for (a, vs) in filters {
            canon.push_str(&format!("{a}={};", vs.join("\u{1f}")));
        }
        id_fingerprint(canon.as_bytes())
    }
}

/// A position in result order: (eventTime, seq).
type Key = (i64, u64);

/// Everything a query reads, taken at one instant.
pub(crate) struct Snapshot {
    pub segments: Arc<crate::segment::set::SegmentSet>,
    pub memtables: Vec<Arc<Memtable>>,
    /// Matches of the active memtable, copied under its lock.
    pub active: Vec<StoredEvent>,
    /// Tree size at the snapshot: events with seq >= bound are excluded.
    pub bound: u64,
    /// Most events the caller will take (a page's size, or unbounded).
    pub limit: usize,
}

/// Builds the page for a lookup: validates, resolves the token, runs.
pub(crate) fn lookup(
    snap_for: impl FnOnce(Option<u64>, Option<Key>, usize) -> Snapshot,
    cache: &BlockCache,
    q: &Query,
    max_results: Option<usize>,
    token: Option<&str>,
    now_ms: i64,
) -> QueryResult<Page> {
    q.validate()?;
    let max = max_results.unwrap_or(MAX_RESULTS_DEFAULT);
    if max == 0 || max > MAX_RESULTS_MAX {
        return Err(QueryError::InvalidMaxResults(format!("max results must be between 1 and {MAX_RESULTS_MAX}, not {max}")));
    }
    let fingerprint = q.fingerprint(Order::NewestFirst);
    let tok = token.map(Token::decode).transpose()?;
    if let Some(t) = &tok {
        if t.fingerprint != fingerprint {
            return Err(QueryError::InvalidNextToken("the page token belongs to a query with other parameters".into()));
        }
    }
    let cursor = tok.map(|t| (t.last_time, t.last_seq));
    let snap = snap_for(tok.map(|t| t.bound), cursor, max + 1);
    let mut events = Vec::with_capacity(max.min(1024));
    let mut bytes = 0usize;
    let (last, more) = run(&snap, cache, q, Order::NewestFirst, cursor, |e| {
        bytes += e.record.len();
        events.push(e);
        events.len() < max && bytes < PAGE_RECORD_BYTES_MAX
    })?;
    let next_token = match (more, last) {
        (true, Some((t, s))) => Some(
            Token { fingerprint, bound: snap.bound, last_time: t, last_seq: s, created_ms: tok.map_or(now_ms, |t| t.created_ms) }.encode(),
        ),
        _ => None,
    };
    Ok(Page { events, next_token })
}
