//! Compaction and retention runs: the store's side of `compact` and
//! `retention` (which segments, swapping them in the manifest and the
//! segment set, removing files once no reader holds them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::compact::{self, CompactOptions, CompactReport, RunReport};
use crate::error::{Error, Result};
use crate::index::{COMPACTED_PARTITION_MS, SEQ_GROUP};
use crate::layout::{segment_file_name, HOLD_DIR};
use crate::manifest::SegmentEntry;
use crate::merkle::Hash;
use crate::retention::{self, RetentionOptions, RetentionReport};
use crate::segment::builder::BuildOptions;
use crate::segment::reader::Segment;
use crate::segment::set::SegmentSet;
use crate::tiles;
use crate::verify::Progress;

use super::{Inner, Outcome, Store};

impl Store {
    /// Merges runs of small adjacent segments (see `compact`): hash-neutral,
    /// crash-safe, while ingest and queries go on. One compaction runs at a
    /// time; `progress(done, total)` counts record bytes.
    pub fn compact(&self, opts: &CompactOptions, progress: Progress<'_>) -> Result<CompactReport> {
        if opts.block_bytes == 0 || opts.block_bytes > compact::BLOCK_BYTES_MAX {
            // A block's payload must stay under what readers accept.
            return Err(Error::InvalidArgument(format!(
                "compaction block size must be between 1 byte and {} MiB, not {} bytes",
                compact::BLOCK_BYTES_MAX >> 20,
                opts.block_bytes
            )));
        }
        let _one = self.inner.compact_lock.lock();
        self.inner.check_poison()?;
        let started = Instant::now();
        let segments = self.inner.state.read().segments.clone();
        let runs = compact::plan(&segments, opts);
        let mut report = CompactReport {
            dry_run: opts.dry_run,
            segments_before: segments.len(),
            bytes_before: segments.iter().map(|s| s.file_bytes()).sum(),
            ..CompactReport::default()
        };
        let total: u64 = runs.iter().flat_map(|r| segments[r.clone()].iter()).map(|s| s.footer.raw_bytes).sum();
        let dictionary = if opts.dictionary && !runs.is_empty() && !opts.dry_run {
            let sample: Vec<Arc<Segment>> = runs.iter().flat_map(|r| segments[r.clone()].iter().cloned()).collect();
            Some(compact::train_dictionary(&sample)?)
        } else {
            None
        };
        report.dictionary_bytes = dictionary.as_ref().map_or(0, Vec::len);
        let build =
            BuildOptions { zstd_level: opts.zstd_level, block_bytes: opts.block_bytes, dictionary, partition_ms: COMPACTED_PARTITION_MS };
        let mut done = 0u64;
        for run in runs {
            if opts.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                break;
            }
            let sources: Vec<Arc<Segment>> = segments[run].to_vec();
            let mut r = RunReport {
                first_seq: sources[0].footer.first_seq,
                events: sources.iter().map(|s| s.footer.count).sum(),
                segments: sources.len(),
                bytes_before: sources.iter().map(|s| s.file_bytes()).sum(),
                bytes_after: 0,
            };
            if !opts.dry_run {
                r.bytes_after = self.inner.compact_run(&sources, &build, opts.max_bytes_per_sec)?;
            }
            done += sources.iter().map(|s| s.footer.raw_bytes).sum::<u64>();
            report.record_bytes = done;
            progress(done, total);
            report.runs.push(r);
        }
        let after = self.inner.state.read().segments.clone();
        report.segments_after =
            if opts.dry_run { report.segments_before - report.runs.iter().map(|r| r.segments - 1).sum::<usize>() } else { after.len() };
        report.bytes_after = if opts.dry_run { report.bytes_before } else { after.iter().map(|s| s.file_bytes()).sum() };
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Removes the oldest whole segments whose events are all older than
    /// `opts.older_than` (see `retention`), records the cut in the manifest
    /// and as a `RetentionCut` event in the log, and keeps what the proofs
    /// of the remaining events need. Crash-safe; ingest continues.
    pub fn retain(&self, opts: &RetentionOptions) -> Result<RetentionReport> {
        let _one = self.inner.compact_lock.lock();
        self.inner.check_poison()?;
        let now = self.inner.now_ms() as i64;
        let cutoff = now.saturating_sub(i64::try_from(opts.older_than.as_millis()).unwrap_or(i64::MAX));
        let segments = self.inner.state.read().segments.clone();
        let expired = |s: &Segment| {
            retention::effective_newest_ms(s.footer.max_time_ms, s.footer.max_ingest_ms) < cutoff
                && (!opts.stored_at_least || (s.footer.max_ingest_ms as i64) < cutoff)
        };
        let expired_n = segments.iter().take_while(|s| expired(s)).count();
        // A hold at seq h keeps every segment holding an event >= h.
        let held_by = self.retention_holds()?.into_iter().min_by_key(|(_, seq)| *seq);
        let n = match &held_by {
            Some((_, h)) => segments[..expired_n].iter().take_while(|s| s.footer.tree_size <= *h).count(),
            None => expired_n,
        };
        let held_by = held_by.filter(|_| n < expired_n);
        let removed: Vec<Arc<Segment>> = segments[..n].to_vec();
        let current_min = self.inner.manifest.lock().min_retained_seq;
        let mut report = RetentionReport {
            dry_run: opts.dry_run,
            cutoff_ms: cutoff,
            segments_removed: n,
            events_removed: removed.iter().map(|s| s.footer.count).sum(),
            bytes_removed: removed.iter().map(|s| s.file_bytes()).sum(),
            min_retained_seq: removed.last().map_or(current_min, |s| s.footer.tree_size),
            event_seq: None,
            held_by,
        };
        if opts.dry_run || n == 0 {
            return Ok(report);
        }
        self.inner.cut(&removed, cutoff, opts.older_than)?;
        let id = {
            let mut b = [0u8; 16];
            getrandom::getrandom(&mut b).map_err(|e| Error::InvalidArgument(format!("the OS random source failed: {e}")))?;
            let h = hex::encode(b);
            format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
        };
        let rec = retention::cut_record(now, &id, &report, opts.older_than);
        report.event_seq = self.append(&[&rec])?.first().and_then(Outcome::seq);
        Ok(report)
    }
}

/// A hold's name: what `holds/<name>` may be called.
fn check_hold_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(Error::InvalidArgument(format!("retention hold name {name:?}: use 1-64 of a-z, 0-9 and -")));
    }
    Ok(())
}

impl Store {
    /// Sets (or with `None` removes) the retention hold `name`: until it
    /// moves, retention keeps every segment holding an event with seq >=
    /// `seq`, whatever its age. Delivery holds what it has not delivered.
    /// Durable when this returns (`holds/<name>`, replaced atomically).
    pub fn set_retention_hold(&self, name: &str, seq: Option<u64>) -> Result<()> {
        check_hold_name(name)?;
        let fs = self.inner.fs.as_ref();
        let dir = self.inner.dir.join(HOLD_DIR);
        let path = dir.join(name);
        match seq {
            Some(seq) => {
                fs.create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
                crate::fs::replace_file(fs, &path, format!("{seq}\n").as_bytes(), false)
            }
            None => match fs.remove_file(&path) {
                Ok(()) => fs.sync_dir(&dir).map_err(|e| Error::io("fsync directory", &dir, e)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io("remove", &path, e)),
            },
        }
    }

    /// Every retention hold: (name, seq).
    pub fn retention_holds(&self) -> Result<Vec<(String, u64)>> {
        let fs = self.inner.fs.as_ref();
        let dir = self.inner.dir.join(HOLD_DIR);
        let files = match fs.list_dir(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut out = Vec::new();
        for path in files {
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if check_hold_name(&name).is_err() {
                continue; // a temp file or something that is not a hold
            }
            let bytes = fs.read(&path).map_err(|e| Error::io("read", &path, e))?;
            let seq = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .ok_or_else(|| Error::corruption(&path, 0, "a retention hold holds one decimal seq"))?;
            out.push((name, seq));
        }
        out.sort();
        Ok(out)
    }
}

impl Inner {
    /// Rewrites one run of adjacent segments as one (steps in `compact`).
    /// Returns the new file's size.
    pub(super) fn compact_run(&self, sources: &[Arc<Segment>], build: &BuildOptions, max_bytes_per_sec: u64) -> Result<u64> {
        let fs = self.fs.as_ref();
        let first = sources[0].footer.first_seq;
        let gen = {
            let m = self.manifest.lock();
            m.segments.iter().filter(|e| e.first_seq == first).map(|e| e.file_gen).max().unwrap_or(0) + 1
        };
        let name = segment_file_name(first, gen);
        let path = self.seg_dir.join(&name);
        let tmp = self.seg_dir.join(format!("{name}.tmp"));
        let merged = match compact::merge_run(fs, tmp.clone(), sources, build, max_bytes_per_sec) {
            Ok(m) => m,
            Err(e) => {
                let _ = fs.remove_file(&tmp);
                return Err(e);
            }
        };
        fs.rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        fs.sync_dir(&self.seg_dir).map_err(|e| Error::io("fsync directory", &self.seg_dir, e))?;
        let fail = |e: Error| {
            let _ = fs.remove_file(&path);
            e
        };
        let seg = Arc::new(Segment::open_in(&path, &self.ids).map_err(fail)?);
        compact::check_written(&seg, &merged.expected_root).map_err(fail)?;
        {
            let mut current = self.manifest.lock();
            let at = current.segments.iter().position(|e| e.first_seq == first && e.footer_hash == sources[0].hash);
            let still = at.is_some_and(|i| {
                current.segments.len() >= i + sources.len()
                    && current.segments[i..i + sources.len()].iter().zip(sources).all(|(e, s)| e.footer_hash == s.hash)
            });
            let Some(i) = at.filter(|_| still) else {
                // Retention removed some of the run meanwhile: drop the work.
                drop(current);
                return Err(fail(Error::InvalidArgument("the segments being compacted changed meanwhile; nothing was replaced".into())));
            };
            let old_files: Vec<PathBuf> = current.segments[i..i + sources.len()]
                .iter()
                .map(|e| self.seg_dir.join(segment_file_name(e.first_seq, e.file_gen)))
                .collect();
            let mut manifest = current.clone();
            manifest.generation += 1;
            manifest.segments.splice(
                i..i + sources.len(),
                [SegmentEntry {
                    first_seq: first,
                    count: seg.footer.count,
                    file_bytes: merged.file_bytes,
                    footer_hash: seg.hash,
                    file_gen: gen,
                }],
            );
            manifest.store(fs, &self.dir).inspect_err(|e| self.set_poison(e))?;
            *current = manifest;
            let mut st = self.state.write();
            let list: Vec<Arc<Segment>> = st.segments.iter().filter(|s| !sources.iter().any(|x| Arc::ptr_eq(x, s))).cloned().collect();
            let pos = list.partition_point(|s| s.footer.first_seq < first);
            let mut list = list;
            list.insert(pos, seg);
            st.segments = Arc::new(SegmentSet::new(list));
            drop(st);
            drop(current);
            for p in old_files {
                // Unlisted now; readers holding them keep their open files.
                let _ = fs.remove_file(&p);
            }
            let _ = fs.sync_dir(&self.seg_dir);
        }
        Ok(merged.file_bytes)
    }

    /// Removes `removed` (the oldest segments, in order): writes the
    /// boundary leaves, then the manifest without them, then deletes them.
    pub(super) fn cut(&self, removed: &[Arc<Segment>], cutoff_ms: i64, policy: Duration) -> Result<()> {
        let fs = self.fs.as_ref();
        let cut = removed.last().map_or(0, |s| s.footer.tree_size);
        let group = cut / SEQ_GROUP;
        if !cut.is_multiple_of(SEQ_GROUP) {
            // The seq group the cut runs through keeps its leaves, so the
            // inclusion proofs of the events after the cut still compute.
            let mut t = self.tree_reader();
            let leaves: Vec<Hash> = (group * SEQ_GROUP..cut).map(|s| t.leaf(s)).collect::<Result<_>>()?;
            drop(t);
            tiles::write_leaf_tile(fs, &self.tile_dir, group, &leaves)?;
        }
        let mut current = self.manifest.lock();
        let listed = current.segments.len() >= removed.len()
            && current.segments.iter().zip(removed).all(|(e, s)| e.first_seq == s.footer.first_seq && e.footer_hash == s.hash);
        if !listed {
            return Err(Error::InvalidArgument("the oldest segments changed meanwhile; nothing was removed".into()));
        }
        let files: Vec<PathBuf> =
            current.segments[..removed.len()].iter().map(|e| self.seg_dir.join(segment_file_name(e.first_seq, e.file_gen))).collect();
        let mut manifest = current.clone();
        manifest.generation += 1;
        manifest.segments.drain(..removed.len());
        manifest.min_retained_seq = cut;
        manifest.cut_time_ms = cutoff_ms;
        manifest.cut_policy_ms = u64::try_from(policy.as_millis()).unwrap_or(u64::MAX);
        manifest.store(fs, &self.dir).inspect_err(|e| self.set_poison(e))?;
        *current = manifest;
        {
            let mut st = self.state.write();
            let list: Vec<Arc<Segment>> = st.segments.iter().filter(|s| !removed.iter().any(|r| Arc::ptr_eq(r, s))).cloned().collect();
            st.segments = Arc::new(SegmentSet::new(list));
        }
        drop(current);
        for p in files {
            let _ = fs.remove_file(&p);
        }
        let _ = fs.sync_dir(&self.seg_dir);
        Ok(())
    }
}
