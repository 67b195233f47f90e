//! The store's sealed segments, in seq order, shared by every snapshot
//! behind one `Arc` (taking a snapshot is one reference count, however many
//! segments there are), with an index from event-time hour to the segments
//! whose time span touches it, so that the duplicate check of an event
//! looks only at segments that can hold its eventTime.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use super::reader::Segment;

/// One bucket of event time.
const HOUR_MS: i64 = 3_600_000;
/// Segments spanning more hours than this (absurd or very late event
/// times) are kept in one list checked for every time, rather than in
/// thousands of buckets.
const BUCKETS_PER_SEGMENT_MAX: i64 = 48;

#[derive(Debug, Clone, Default)]
pub struct SegmentSet {
    list: Vec<Arc<Segment>>,
    by_hour: HashMap<i64, Vec<u32>>,
    wide: Vec<u32>,
}

impl SegmentSet {
    pub fn new(list: Vec<Arc<Segment>>) -> Self {
        let mut s = SegmentSet::default();
        for seg in list {
            s.push(seg);
        }
        s
    }

    /// Adds the next segment (in seq order).
    pub fn push(&mut self, seg: Arc<Segment>) {
        let i = self.list.len() as u32;
        let (lo, hi) = (seg.footer.min_time_ms.div_euclid(HOUR_MS), seg.footer.max_time_ms.div_euclid(HOUR_MS));
        if hi.saturating_sub(lo) >= BUCKETS_PER_SEGMENT_MAX {
            self.wide.push(i);
        } else {
            for h in lo..=hi {
                self.by_hour.entry(h).or_default().push(i);
            }
        }
        self.list.push(seg);
    }

    /// Segments whose time span holds `time_ms`: those of its hour newest
    /// first, then the wide ones newest first.
    pub fn at_time(&self, time_ms: i64) -> impl Iterator<Item = &Arc<Segment>> + '_ {
        let bucket = self.by_hour.get(&time_ms.div_euclid(HOUR_MS)).map_or(&[][..], Vec::as_slice);
        bucket
            .iter()
            .rev()
            .chain(self.wide.iter().rev())
            .map(|&i| &self.list[i as usize])
            .filter(move |s| s.footer.min_time_ms <= time_ms && s.footer.max_time_ms >= time_ms)
    }
}

impl Deref for SegmentSet {
    type Target = [Arc<Segment>];
    fn deref(&self) -> &[Arc<Segment>] {
        &self.list
    }
}
