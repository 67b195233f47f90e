//! Rolling the active segment and sealing it: `roll` hands the memtable to
//! the sealer thread (with backpressure), which writes the segment, its
//! tiles and the manifest entry, then drops the WAL file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::layout::segment_file_name;
use crate::manifest::SegmentEntry;
use crate::memtable::Memtable;
use crate::merkle::Frontier;
use crate::segment::ids::IdBudget;
use crate::segment::reader::Segment;
use crate::segment::writer::{build_segment, SealInput};
use crate::tiles;
use crate::wal::WalWriter;

use super::{Inner, Store, WriterState};

/// At most this many rolled segments wait for the sealer; a roll beyond it
/// blocks the writer (backpressure: a slow disk slows ingest, memory stays
/// bounded).
pub(super) const SEALS_PENDING_MAX: usize = 2;

pub(super) struct SealJob {
    pub(super) mem: Arc<Memtable>,
    pub(super) frontier: Frontier,
    pub(super) wal_path: PathBuf,
}

#[derive(Default)]
pub(super) struct SealQueue {
    pub(super) jobs: std::collections::VecDeque<SealJob>,
    pub(super) busy: bool,
    pub(super) shutdown: bool,
}

impl Store {
    /// Rolls the active segment now (if it holds events) and waits until
    /// every rolled segment is sealed. For tools, benchmarks and tests; the
    /// store rolls by itself on size and age.
    pub fn seal_now(&self) -> Result<()> {
        {
            let mut w = self.inner.writer.lock();
            self.inner.roll(&mut w)?;
        }
        self.inner.wait_sealed()
    }
}

impl Inner {
    /// Rolls the active segment: fsyncs its WAL, starts a new WAL at the
    /// next seq, and hands the memtable to the sealer. Blocks while too many
    /// seals are pending (backpressure).
    pub(super) fn roll(&self, w: &mut WriterState) -> Result<()> {
        if w.closed {
            return Err(Error::Closed);
        }
        self.check_poison()?;
        if self.state.read().active.is_empty() {
            return Ok(());
        }
        {
            let mut s = self.seals.lock();
            while s.jobs.len() >= SEALS_PENDING_MAX && self.poison.lock().is_none() {
                self.seals_cv.wait(&mut s);
            }
        }
        self.check_poison()?;
        let step = w.wal.sync().and_then(|()| WalWriter::create(self.fs.as_ref(), &self.wal_dir, w.next_seq, self.now_ms()));
        let new_wal = match step {
            Ok(n) => n,
            Err(e) => {
                self.set_poison(&e);
                return Err(e);
            }
        };
        let old_wal = std::mem::replace(&mut w.wal, new_wal);
        let mem = {
            let mut st = self.state.write();
            let mem = Arc::new(std::mem::replace(&mut st.active, Memtable::new(w.next_seq)));
            st.sealing.push(mem.clone());
            mem
        };
        let mut s = self.seals.lock();
        s.jobs.push_back(SealJob { mem, frontier: w.frontier.clone(), wal_path: old_wal.path.clone() });
        self.seals_cv.notify_all();
        Ok(())
    }

    /// Whether the sealer may split the next block into fields. Unless
    /// `Options::seal_fields` is off, a seal splits every block (it encodes blocks on every core, and splitting
    /// costs about a fifth more CPU than keeping records whole) unless the
    /// seal queue is full, that is, unless the writer's next roll would
    /// wait for it: then it keeps records whole, faster, until it has
    /// caught up. Compaction splits what was kept whole.
    pub(super) fn seal_may_split(&self) -> bool {
        self.opts.seal_fields && self.seals.lock().jobs.len() < SEALS_PENDING_MAX
    }

    /// Waits until the seal queue is empty and idle.
    pub(super) fn wait_sealed(&self) -> Result<()> {
        let mut s = self.seals.lock();
        while (!s.jobs.is_empty() || s.busy) && self.poison.lock().is_none() {
            self.seals_cv.wait(&mut s);
        }
        drop(s);
        self.check_poison()
    }

    pub(super) fn sealer_loop(&self) {
        loop {
            let job = {
                let mut s = self.seals.lock();
                loop {
                    if let Some(j) = s.jobs.pop_front() {
                        s.busy = true;
                        break Some(j);
                    }
                    if s.shutdown {
                        break None;
                    }
                    let timeout = self.opts.segment_age.min(self.opts.checkpoint_interval).min(Duration::from_secs(1));
                    if self.seals_cv.wait_for(&mut s, timeout).timed_out() {
                        drop(s);
                        self.roll_if_aged();
                        self.checkpoint_if_due();
                        s = self.seals.lock();
                    }
                }
            };
            let Some(job) = job else { return };
            if self.poison.lock().is_none() {
                // A panic here would be a bug; it poisons the writer with
                // its message rather than leave writers waiting for a
                // sealer that is gone.
                let sealed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.seal(&job).and_then(|()| {
                        self.checkpoint_head(job.frontier.size(), job.frontier.root())?;
                        self.checkpoint_if_due();
                        Ok(())
                    })
                }));
                match sealed {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => self.set_poison(&e),
                    Err(p) => {
                        self.poison.lock().get_or_insert(format!("the sealer panicked: {}", crate::panic_message(&*p)));
                    }
                }
            }
            let mut s = self.seals.lock();
            s.busy = false;
            self.seals_cv.notify_all();
        }
    }

    pub(super) fn roll_if_aged(&self) {
        let Some(mut w) = self.writer.try_lock() else { return };
        // Called by the sealer: a roll that had to wait for a free seal slot
        // would wait for the sealer itself. Only rolls push jobs, and they
        // need `writer`, which is held here, so this check stays true.
        if w.closed || self.seals.lock().jobs.len() >= SEALS_PENDING_MAX {
            return;
        }
        let age_ms = self.now_ms().saturating_sub(w.wal.created_ms);
        if age_ms >= self.opts.segment_age.as_millis() as u64 {
            let _ = self.roll(&mut w);
        }
    }

    /// Seals one rolled memtable: writes the segment (temp, fsync, rename,
    /// fsync dir), its tiles, then the manifest that lists it; only then is
    /// its WAL deleted. A crash at any point leaves either the old state
    /// (WAL replayed, leftovers deleted on open) or the new one.
    pub(super) fn seal(&self, job: &SealJob) -> Result<()> {
        // A compacted last segment links on with the hash of what it replaced.
        let prev_hash = self.state.read().segments.last().map(|s| s.footer.link_hash()).unwrap_or([0; 32]);
        let (bytes, footer) = build_segment(&SealInput {
            mem: &job.mem,
            prev_segment_hash: prev_hash,
            frontier_at_end: &job.frontier,
            zstd_level: self.opts.zstd_level,
            block_bytes: self.opts.block_bytes,
            counters: self.opts.insights_counters,
            split_blocks: &|| self.seal_may_split(),
        })?;
        let name = segment_file_name(footer.first_seq, 0);
        let path = self.seg_dir.join(&name);
        let tmp = self.seg_dir.join(format!("{name}.tmp"));
        let fs = self.fs.as_ref();
        let mut f = fs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(&bytes).map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
        drop(f);
        fs.rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        fs.sync_dir(&self.seg_dir).map_err(|e| Error::io("fsync directory", &self.seg_dir, e))?;
        let superseded = tiles::write_nodes(fs, &self.tile_dir, &job.mem.tile_nodes)?;
        let segment = Arc::new(Segment::open_in(&path, &self.ids)?);
        {
            // Held from read to replace: compaction and retention swap the
            // manifest too (lock order: manifest, then state).
            let mut current = self.manifest.lock();
            let mut manifest = current.clone();
            manifest.generation += 1;
            manifest.sealed_size = footer.tree_size;
            manifest.segments.push(SegmentEntry {
                first_seq: footer.first_seq,
                count: footer.count,
                file_bytes: bytes.len() as u64,
                footer_hash: segment.hash,
                file_gen: 0,
            });
            manifest.store(fs, &self.dir)?;
            *current = manifest;
            let mut st = self.state.write();
            make_id_filter_room(&self.ids, &st.segments, segment.id_filter_bytes());
            Arc::make_mut(&mut st.segments).push(segment);
            st.sealing.retain(|m| !Arc::ptr_eq(m, &job.mem));
        }
        fs.remove_file(&job.wal_path).map_err(|e| Error::io("remove", &job.wal_path, e))?;
        fs.sync_dir(&self.wal_dir).map_err(|e| Error::io("fsync directory", &self.wal_dir, e))?;
        for p in superseded {
            // Unreferenced once the manifest moved on; a failure only leaves
            // a small stale file behind.
            let _ = fs.remove_file(&p);
        }
        Ok(())
    }
}

/// Drops the id filters of the oldest segments until `need` more bytes fit
/// the budget: duplicate checks of new events and lookups of recent ids
/// hit the newest segments.
pub(super) fn make_id_filter_room(budget: &IdBudget, segments: &[Arc<Segment>], need: usize) {
    for seg in segments {
        if budget.used_bytes().saturating_add(need) <= budget.limit_bytes() {
            return;
        }
        seg.drop_id_filter();
    }
}
