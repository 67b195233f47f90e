//! Appends: `prepare` parses and checks each record outside any lock and
//! builds its WAL entries; `commit` is leader/follower group commit; the
//! leader's `write_group` drops duplicates, writes one frame with one
//! fsync, and makes the events visible.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::event::{id_fingerprint, parse_event};
use crate::index::counters::Tally;
use crate::index::{terms, Attr};
use crate::memtable::{span_in_chunk, Chunk, EventMeta, Span};
use crate::merkle::{leaf_hash, Frontier};
use crate::segment::set::SegmentSet;
use crate::wal::{self, WalWriter, ENTRY_FIXED_BYTES};

use super::{Durability, Inner, Outcome, ReadState};

/// A commit group stops taking requests at this many body bytes.
pub(super) const GROUP_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Per event of a request: (seq, was it a duplicate), or the error text.
pub(super) type CommitResult = Result<Vec<(u64, bool)>, String>;

/// One append call waiting for a commit leader.
pub(super) struct Request {
    /// The accepted records as WAL entries (`entry header | record`...):
    /// copied into the frame, then kept by the memtable as a chunk.
    pub(super) body: Chunk,
    pub(super) events: Vec<Prepared>,
    /// Every event's index terms: `(attr, start, len)` into `term_text`.
    pub(super) term_text: String,
    pub(super) term_items: Vec<(Attr, u32, u32)>,
    /// `prepare` looked for duplicates among sealed events below this seq;
    /// the leader checks only what was sealed since.
    pub(super) sealed_checked: u64,
    /// Per event: its seq, stored or duplicate (`true` = duplicate), or the
    /// error, once committed.
    pub(super) done: Mutex<Option<CommitResult>>,
}

impl Request {
    pub(super) fn record(&self, p: &Prepared) -> &[u8] {
        &self.body[p.at..p.at + p.len]
    }

    pub(super) fn terms(&self, p: &Prepared) -> impl Iterator<Item = (Attr, &str)> + '_ {
        self.term_items[p.terms.clone()].iter().map(|&(a, at, len)| (a, &self.term_text[at as usize..(at + len) as usize]))
    }
}

pub(super) struct Prepared {
    pub(super) meta: EventMeta,
    /// The record's range inside `Request::body`.
    pub(super) at: usize,
    pub(super) len: usize,
    /// This event's range of `Request::term_items`.
    pub(super) terms: std::ops::Range<usize>,
    /// Already stored with identical bytes in a sealed segment, found by
    /// `prepare`.
    pub(super) dup: Option<u64>,
    /// What the event adds to the Insights counters, its strings inside
    /// `Request::body`: counted when its memtable is sealed or read.
    pub(super) tally: Option<Tally<Span>>,
}

#[derive(Default)]
pub(super) struct CommitQueue {
    pub(super) pending: Vec<Arc<Request>>,
    pub(super) leader_active: bool,
}

pub(super) struct WriterState {
    pub(super) wal: WalWriter,
    pub(super) next_seq: u64,
    pub(super) frontier: Frontier,
    pub(super) buf: Vec<u8>,
    pub(super) closed: bool,
}

impl Inner {
    /// Validates records and encodes the accepted ones as a WAL frame body,
    /// and looks for exact re-sends among sealed events, on the caller's
    /// thread (so concurrent appenders parse, hash and probe in parallel;
    /// the leader only checks what is newer, copies and writes).
    pub(super) fn prepare(&self, records: &[&[u8]]) -> (Request, Vec<Outcome>) {
        let ingest_ms = self.now_ms();
        let segments = self.state.read().segments.clone();
        let sealed_checked = segments.last().map_or(0, |s| s.footer.tree_size);
        let mut outcomes = Vec::with_capacity(records.len());
        let mut events = Vec::with_capacity(records.len());
        let cap: usize = records.iter().map(|r| r.len() + ENTRY_FIXED_BYTES).sum();
        // Room for the tallies' strings that are not in the records (most
        // are): a grown body would keep twice its size in the memtable.
        let mut body = Vec::with_capacity(cap + records.len() * 16);
        let mut term_text = String::new();
        let mut term_items = Vec::new();
        for rec in records {
            match parse_event(rec, self.opts.record_bytes_max) {
                Ok(ev) => {
                    let leaf = leaf_hash(ingest_ms, rec);
                    let at = wal::push_entry(&mut body, ingest_ms, ev.time_ms, &leaf, rec);
                    let first_term = term_items.len();
                    for (a, v) in terms(&ev) {
                        term_items.push((a, term_text.len() as u32, v.len() as u32));
                        term_text.push_str(&v);
                    }
                    let id_fp = ev.event_id.as_deref().map(|id| id_fingerprint(id.as_bytes()));
                    let dup = id_fp.and_then(|fp| self.find_sealed(&segments, fp, ev.time_ms, rec, 0));
                    // A duplicate found here is never stored, nor counted.
                    let tally = match (self.opts.insights_counters && dup.is_none(), Tally::of(&ev)) {
                        (true, Some(t)) => t.try_map(|v| Some(span_in_chunk(v, rec, at, &mut body))),
                        _ => None,
                    };
                    events.push(Prepared {
                        meta: EventMeta { ingest_ms, time_ms: ev.time_ms, leaf, id_fp },
                        at,
                        len: rec.len(),
                        terms: first_term..term_items.len(),
                        dup,
                        tally,
                    });
                    outcomes.push(Outcome::Stored(0));
                }
                Err(r) => outcomes.push(Outcome::Rejected(r)),
            }
        }
        if body.capacity() - body.len() > body.len() / 8 {
            body.shrink_to_fit();
        }
        let req = Request { body: Arc::new(body), events, term_text, term_items, sealed_checked, done: Mutex::new(None) };
        (req, outcomes)
    }

    /// Queues a prepared request and returns its first seq once durable.
    /// Leader/follower group commit: whoever finds no leader becomes one,
    /// takes every queued request, writes them as one frame with one
    /// fdatasync, and wakes the others.
    pub(super) fn commit(&self, req: Request) -> Result<Vec<(u64, bool)>> {
        let req = Arc::new(req);
        let mut q = self.queue.lock();
        q.pending.push(req.clone());
        loop {
            if let Some(done) = req.done.lock().take() {
                return done.map_err(Error::Poisoned);
            }
            if q.leader_active {
                self.queue_cv.wait(&mut q);
                continue;
            }
            q.leader_active = true;
            let group = take_group(&mut q.pending, self.opts.durability);
            drop(q);
            let result = self.write_group(&group);
            match result {
                Ok(per_request) => {
                    for (r, seqs) in group.iter().zip(per_request) {
                        *r.done.lock() = Some(Ok(seqs));
                    }
                }
                Err(e) => {
                    for r in &group {
                        *r.done.lock() = Some(Err(e.to_string()));
                    }
                }
            }
            q = self.queue.lock();
            q.leader_active = false;
            self.queue_cv.notify_all();
        }
    }

    /// Writes one commit group: one frame, one write, one fdatasync (per
    /// policy). Events already stored with identical bytes (same eventID)
    /// are dropped from the frame and reported as duplicates. Any write or
    /// fsync failure poisons the writer.
    pub(super) fn write_group(&self, group: &[Arc<Request>]) -> Result<Vec<Vec<(u64, bool)>>> {
        let mut w = self.writer.lock();
        if w.closed {
            return Err(Error::Closed);
        }
        self.check_poison()?;
        let first_seq = w.next_seq;
        // Decide each event's fate: a new seq, or an existing one.
        let mut fates: Vec<Vec<(u64, bool)>> = Vec::with_capacity(group.len());
        let mut keep: Vec<(usize, usize)> = Vec::new();
        {
            let st = self.state.read();
            let mut in_group: HashMap<u64, Vec<(usize, usize, u64)>, foldhash::fast::RandomState> = HashMap::default();
            let mut next = first_seq;
            for (ri, r) in group.iter().enumerate() {
                let mut f = Vec::with_capacity(r.events.len());
                for (ei, p) in r.events.iter().enumerate() {
                    let rec = r.record(p);
                    let dup = p.dup.or_else(|| {
                        let fp = p.meta.id_fp?;
                        in_group
                            .get(&fp)
                            .and_then(|v| v.iter().find(|(gr, ge, _)| group[*gr].record(&group[*gr].events[*ge]) == rec))
                            .map(|x| x.2)
                            .or_else(|| self.find_unsealed(&st, fp, rec))
                            .or_else(|| self.find_sealed(&st.segments, fp, p.meta.time_ms, rec, r.sealed_checked))
                    });
                    match dup {
                        Some(seq) => f.push((seq, true)),
                        None => {
                            if let Some(fp) = p.meta.id_fp {
                                in_group.entry(fp).or_default().push((ri, ei, next));
                            }
                            f.push((next, false));
                            keep.push((ri, ei));
                            next += 1;
                        }
                    }
                }
                fates.push(f);
            }
        }
        if keep.is_empty() {
            return Ok(fates);
        }
        let count = keep.len();
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        let start = wal::begin_frame(&mut buf);
        for &(ri, ei) in &keep {
            let p = &group[ri].events[ei];
            buf.extend_from_slice(&group[ri].body[p.at - ENTRY_FIXED_BYTES..p.at + p.len]);
        }
        wal::finish_frame(&mut buf, start, first_seq, count as u32);
        let written = w.wal.write(&buf).and_then(|()| match self.opts.durability {
            Durability::Never => Ok(()),
            _ => w.wal.sync(),
        });
        w.buf = buf;
        if let Err(e) = written {
            self.set_poison(&e);
            return Err(e);
        }
        // Durable: make the events visible and extend the tree.
        {
            let mut st = self.state.write();
            let WriterState { frontier, .. } = &mut *w;
            let active = &mut st.active;
            for &(ri, ei) in &keep {
                let r = &group[ri];
                let p = &r.events[ei];
                frontier.push(p.meta.leaf, |level, index, h| active.tile_nodes.push((level, index, h)));
                let chunk = active.add_chunk(&r.body);
                active.push(p.meta, chunk, p.at, p.len, r.terms(p));
                if let Some(t) = p.tally {
                    active.add_tally(chunk, t);
                }
            }
        }
        w.next_seq += count as u64;
        let age_ms = self.now_ms().saturating_sub(w.wal.created_ms);
        if w.wal.len >= self.opts.segment_bytes || age_ms >= self.opts.segment_age.as_millis() as u64 {
            self.roll(&mut w)?;
        }
        Ok(fates)
    }

    /// The seq of an unsealed event with this id fingerprint and exactly
    /// these bytes, if any.
    pub(super) fn find_unsealed(&self, st: &ReadState, fp: u64, rec: &[u8]) -> Option<u64> {
        for m in std::iter::once(&st.active).chain(st.sealing.iter().map(|m| m.as_ref())) {
            for ix in m.find_id(fp) {
                if m.record(m.entry(ix)) == rec {
                    return Some(m.first_seq + ix as u64);
                }
            }
        }
        None
    }

    /// The seq of a sealed event at or above `from_seq` with this id
    /// fingerprint and exactly these bytes, if any. Segments are pruned by
    /// time: a re-sent record has the same eventTime, so only segments whose
    /// span holds it can match.
    pub(super) fn find_sealed(&self, segments: &SegmentSet, fp: u64, time_ms: i64, rec: &[u8], from_seq: u64) -> Option<u64> {
        for seg in segments.at_time(time_ms).filter(|s| s.footer.tree_size > from_seq) {
            // An unreadable segment cannot prove a duplicate: store the event.
            let Ok(ords) = seg.find_id(fp) else { continue };
            for ord in ords {
                let Some((b, i)) = seg.locate(ord) else { continue };
                let Ok(block) = self.cache.get(seg, b) else { continue };
                if block.record(i) == rec {
                    return Some(block.seqs[i]);
                }
            }
        }
        None
    }
}

/// Takes the requests for one commit group: all of them under `Batch` and
/// `Never` (up to `GROUP_BYTES_MAX`), one under `Always`.
pub(super) fn take_group(pending: &mut Vec<Arc<Request>>, durability: Durability) -> Vec<Arc<Request>> {
    if durability == Durability::Always {
        return vec![pending.remove(0)];
    }
    let mut bytes = 0;
    let mut n = 0;
    while n < pending.len() && (n == 0 || bytes + pending[n].body.len() <= GROUP_BYTES_MAX) {
        bytes += pending[n].body.len();
        n += 1;
    }
    pending.drain(..n).collect()
}
