//! Compaction: merges runs of adjacent sealed segments into one, at a
//! chosen zstd level and block size, optionally with a trained zstd
//! dictionary, rebuilding the indexes. It is hash-neutral: the merged
//! segment holds exactly the same entries at the same seqs, so the tree,
//! every tile, every checkpoint and every proof stay as they were.
//!
//! A run is rewritten while ingest and queries go on (it reads immutable
//! files and holds one block per source in memory), then checked, then
//! swapped in through the manifest:
//!
//! 1. stream the sources' events in (eventTime, seq) order into a
//!    `SegmentBuilder` writing `<name>.tmp`; recompute every source's
//!    segment root from its records on the way (a damaged source stops the
//!    compaction);
//! 2. fdatasync, rename to its final name (a new file generation, never a
//!    name in use), fsync the directory;
//! 3. reopen it and read it back: its seqs, and its leaves recomputed from
//!    what it holds, must give the merged range's root;
//! 4. under the manifest lock, if the sources are still listed, write the
//!    manifest that lists the merged segment instead (atomically) and swap
//!    the readers' segment set;
//! 5. delete the sources.
//!
//! A crash before step 4 leaves the old manifest (the new file is
//! unlisted and deleted on open); after it, the new one (the sources are
//! unlisted and deleted on open).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::parse_event;
use crate::index::{terms, Attr};
use crate::limits::RECORD_BYTES_MAX;
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::segment::builder::{BuildOptions, SegmentBuilder};
use crate::segment::reader::Segment;
use crate::segment::Block;

/// What to compact and how.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// A merged segment holds at most this many record bytes.
    pub target_bytes: u64,
    /// Segments at or above this many record bytes are left alone (unless
    /// `all`).
    pub small_bytes: u64,
    /// Rewrite every segment (to change the level or add a dictionary),
    /// not just runs of small ones.
    pub all: bool,
    pub zstd_level: i32,
    /// Uncompressed bytes per block of the merged segments.
    pub block_bytes: usize,
    /// Train a zstd dictionary from the store's records and compress with it.
    pub dictionary: bool,
    /// Only report what would be done.
    pub dry_run: bool,
    /// At most this many record bytes per second (0: no limit), so that
    /// compaction leaves CPU and disk to ingest.
    pub max_bytes_per_sec: u64,
    /// Checked between runs: set it to stop early (what is done stays).
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// The largest block compaction writes, in record bytes: a block's payload
/// (at most this, one more record and its columns) stays under the 64 MiB
/// a reader accepts.
pub const BLOCK_BYTES_MAX: usize = 32 * 1024 * 1024;

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_bytes: 256 * 1024 * 1024,
            small_bytes: 64 * 1024 * 1024,
            all: false,
            // Level 9 and 4 MiB blocks: on 2,000,000 diverse-profile
            // records, blocks of 178.7 bytes an event against 193.9 at
            // level 3 with 2 MiB blocks, at the same speed (splitting
            // records costs more than compressing them). A point read of a compacted
            // event decodes one 4 MiB block (a few milliseconds, then
            // cached).
            zstd_level: 9,
            block_bytes: 4 * 1024 * 1024,
            dictionary: false,
            dry_run: false,
            max_bytes_per_sec: 0,
            stop: None,
        }
    }
}

/// One run: the sources and what replaced them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    pub first_seq: u64,
    pub events: u64,
    pub segments: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// What a compaction did (or would do, with `dry_run`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CompactReport {
    pub dry_run: bool,
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub record_bytes: u64,
    pub seconds: f64,
    pub runs: Vec<RunReport>,
    /// Bytes of the trained dictionary (0: none).
    pub dictionary_bytes: usize,
}

/// Groups adjacent segments into runs to merge: each run's record bytes at
/// most `target_bytes`, of segments below `small_bytes` (any, with `all`);
/// a run of one is kept only when `all` asks for a rewrite.
pub fn plan(segments: &[Arc<Segment>], opts: &CompactOptions) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    let eligible = |s: &Segment| opts.all || s.footer.raw_bytes < opts.small_bytes;
    let close = |runs: &mut Vec<std::ops::Range<usize>>, r: std::ops::Range<usize>| {
        if r.len() >= 2 || (opts.all && r.len() == 1) {
            runs.push(r);
        }
    };
    for (i, s) in segments.iter().enumerate() {
        let fits = bytes + s.footer.raw_bytes <= opts.target_bytes;
        if !eligible(s) || !fits {
            close(&mut runs, start..i);
            start = if eligible(s) { i } else { i + 1 };
            bytes = if eligible(s) { s.footer.raw_bytes } else { 0 };
            continue;
        }
        bytes += s.footer.raw_bytes;
    }
    close(&mut runs, start..segments.len());
    runs
}

/// Trains a dictionary from records spread over `segments` (up to 8 MiB of
/// samples).
pub fn train_dictionary(segments: &[Arc<Segment>]) -> Result<Vec<u8>> {
    const SAMPLE_BYTES: usize = 8 * 1024 * 1024;
    const DICT_BYTES: usize = 110 * 1024;
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let mut total = 0;
    let blocks: Vec<(usize, usize)> = segments.iter().enumerate().flat_map(|(i, s)| (0..s.blocks.len()).map(move |b| (i, b))).collect();
    let stride = (blocks.len() / 64).max(1);
    for &(i, b) in blocks.iter().step_by(stride) {
        let block = segments[i].read_block(b)?;
        for k in 0..block.len() {
            let r = block.record(k);
            total += r.len();
            samples.push(r.to_vec());
        }
        if total >= SAMPLE_BYTES {
            break;
        }
    }
    if samples.len() < 100 {
        return Err(Error::InvalidArgument(format!("only {} records to train a dictionary from; at least 100 are needed", samples.len())));
    }
    zstd::dict::from_samples(&samples, DICT_BYTES).map_err(|e| Error::InvalidArgument(format!("training the zstd dictionary failed: {e}")))
}

/// A source segment's index turned around: for each ordinal, the terms it
/// is indexed under and its id fingerprint (top 32 bits). Compaction takes
/// an event's terms from here rather than parsing its record again: the
/// same terms, at a fraction of the cost. Values kept in a rare-value
/// table (index version 6) are not terms: `rare` lists the events that
/// have some, whose records are parsed for them.
struct SourceTerms<'a> {
    terms: Vec<Vec<(Attr, &'a str)>>,
    ids: Vec<Option<u32>>,
    rare: Vec<u32>,
    rare_attrs: Vec<Attr>,
}

impl<'a> SourceTerms<'a> {
    fn read(seg: &'a Segment) -> Result<Self> {
        let idx = seg.index()?;
        let bad = |what: &str| Error::corruption(&seg.path, seg.footer.index.offset, format!("index: {what}"));
        let mut terms: Vec<Vec<(Attr, &'a str)>> = vec![Vec::new(); seg.footer.count as usize];
        let mut ords = Vec::new();
        for p in &idx.layout.partitions {
            for t in p.first_term..p.first_term + p.term_count {
                let term = idx.term(t);
                let attr = Attr::from_code(term.attr).ok_or_else(|| bad("unknown attribute code"))?;
                let value = std::str::from_utf8(term.value).map_err(|_| bad("a value is not UTF-8"))?;
                ords.clear();
                term.ordinals(p, &mut ords).ok_or_else(|| bad("malformed postings"))?;
                for &o in &ords {
                    terms.get_mut(o as usize).ok_or_else(|| bad("a posting is out of range"))?.push((attr, value));
                }
            }
        }
        let rare_attrs: Vec<Attr> = Attr::ALL.into_iter().filter(|a| idx.has_rare(*a)).collect();
        let mut rare = Vec::new();
        for a in &rare_attrs {
            rare.extend(idx.rare_ordinals(*a).map_err(|e| bad(&e))?);
        }
        rare.sort_unstable();
        rare.dedup();
        Ok(SourceTerms { terms, ids: seg.id_fps_by_ordinal()?, rare, rare_attrs })
    }

    /// The terms of the event at `ord` whose record is `rec`.
    fn of<'r>(
        &'r self,
        ord: usize,
        rec: &'r [u8],
        extra: &'r mut Vec<(Attr, std::borrow::Cow<'r, str>)>,
    ) -> std::borrow::Cow<'r, [(Attr, &'r str)]> {
        let ts: &'r [(Attr, &'r str)] = self.terms.get(ord).map_or(&[][..], Vec::as_slice);
        if self.rare.binary_search(&(ord as u32)).is_err() {
            return std::borrow::Cow::Borrowed(ts);
        }
        extra.clear();
        if let Ok(ev) = parse_event(rec, RECORD_BYTES_MAX) {
            for (a, v) in terms(&ev) {
                if self.rare_attrs.contains(&a) && !ts.iter().any(|(ta, tv)| *ta == a && *tv == v.as_ref()) {
                    extra.push((a, v));
                }
            }
        }
        std::borrow::Cow::Owned(ts.iter().copied().chain(extra.iter().map(|(a, v)| (*a, v.as_ref()))).collect())
    }
}

/// Streams the events of several segments in (eventTime, seq) order,
/// holding one decoded block per source.
struct Merge<'a> {
    sources: &'a [Arc<Segment>],
    /// Per source: next block to read, the current block and position.
    cursors: Vec<(usize, Option<Block>, usize)>,
}

impl Merge<'_> {
    /// The ordinal (position in its segment's time order) of source `i`'s
    /// current event.
    fn ordinal(&self, i: usize) -> usize {
        let (next, _, pos) = &self.cursors[i];
        self.sources[i].blocks[*next - 1].first_ordinal as usize + *pos
    }
}

impl<'a> Merge<'a> {
    fn new(sources: &'a [Arc<Segment>]) -> Self {
        Merge { sources, cursors: sources.iter().map(|_| (0, None, 0)).collect() }
    }

    /// Makes source `i`'s cursor point at an event, if it has one left.
    fn fill(&mut self, i: usize) -> Result<()> {
        loop {
            let (next, cur, pos) = &mut self.cursors[i];
            if cur.as_ref().is_some_and(|b| *pos < b.len()) {
                return Ok(());
            }
            if *next >= self.sources[i].blocks.len() {
                *cur = None;
                return Ok(());
            }
            *cur = Some(self.sources[i].read_block(*next)?);
            *next += 1;
            *pos = 0;
        }
    }

    /// The source holding the smallest (time, seq), after filling all.
    fn next_source(&mut self) -> Result<Option<usize>> {
        for i in 0..self.cursors.len() {
            self.fill(i)?;
        }
        let key = |c: &(usize, Option<Block>, usize)| c.1.as_ref().map(|b| (b.time_ms[c.2], b.seqs[c.2]));
        Ok((0..self.cursors.len()).filter(|&i| key(&self.cursors[i]).is_some()).min_by_key(|&i| key(&self.cursors[i])))
    }
}

/// What `merge_run` wrote.
pub(crate) struct Merged {
    pub file_bytes: u64,
    /// The merged range's root, recomputed from the sources' records.
    pub expected_root: Hash,
}

/// Writes the merge of `sources` (adjacent, in seq order) to `tmp`, and
/// checks each source's leaves against its segment root on the way.
pub(crate) fn merge_run(
    fs: &dyn crate::fs::FileSystem,
    tmp: PathBuf,
    sources: &[Arc<Segment>],
    opts: &BuildOptions,
    max_bytes_per_sec: u64,
) -> Result<Merged> {
    let first = sources.first().ok_or_else(|| Error::InvalidArgument("an empty compaction run".into()))?;
    let last = sources.last().expect("non-empty");
    let count: u64 = sources.iter().map(|s| s.footer.count).sum();
    if first.footer.first_seq + count != last.footer.tree_size {
        return Err(Error::InvalidArgument("the segments of a compaction run are not adjacent".into()));
    }
    let file = fs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let writer = std::io::BufWriter::with_capacity(1 << 20, WriteAdapter(file));
    let mut b = SegmentBuilder::new(writer, first.footer.first_seq, count, opts)?;
    for s in sources {
        b.add_counters(&s.counters()?);
    }
    // Per source: (seq, leaf), to check its segment root.
    let mut own: Vec<Vec<(u64, Hash)>> = sources.iter().map(|s| Vec::with_capacity(s.footer.count.min(1 << 20) as usize)).collect();
    let source_terms: Vec<SourceTerms<'_>> = sources.iter().map(|s| SourceTerms::read(s)).collect::<Result<_>>()?;
    let mut m = Merge::new(sources);
    let started = Instant::now();
    let mut bytes = 0u64;
    while let Some(i) = m.next_source()? {
        let ord = m.ordinal(i);
        let (_, cur, pos) = &mut m.cursors[i];
        let block = cur.as_ref().expect("next_source found an event");
        let (seq, ingest, time, rec) = (block.seqs[*pos], block.ingest_ms[*pos], block.time_ms[*pos], block.record(*pos));
        let leaf = leaf_hash(ingest, rec);
        let st = &source_terms[i];
        let id_fp = st.ids.get(ord).copied().flatten().map(|fp32| u64::from(fp32) << 32);
        let mut extra = Vec::new();
        let ts = st.of(ord, rec, &mut extra);
        b.push(seq, ingest, time, rec, leaf, id_fp, &ts)?;
        own[i].push((seq, leaf));
        bytes += rec.len() as u64;
        *pos += 1;
        if max_bytes_per_sec > 0 && own[i].len().is_multiple_of(256) {
            throttle(started, bytes, max_bytes_per_sec);
        }
    }
    for (s, leaves) in sources.iter().zip(own.iter_mut()) {
        leaves.sort_unstable_by_key(|l| l.0);
        let mut f = Frontier::new();
        leaves.iter().for_each(|l| f.push(l.1, |_, _, _| {}));
        if leaves.len() as u64 != s.footer.count || f.root() != s.footer.segment_root {
            return Err(Error::corruption(
                &s.path,
                0,
                "its records do not hash to its segment root: refusing to compact a damaged segment (run `cairn verify`)",
            ));
        }
    }
    let mut all: Vec<&(u64, Hash)> = own.iter().flatten().collect();
    all.sort_unstable_by_key(|l| l.0);
    let mut expected = Frontier::new();
    all.iter().for_each(|l| expected.push(l.1, |_, _, _| {}));
    let frontier = last.frontier()?;
    if frontier.root() != last.footer.tree_root {
        return Err(Error::corruption(&last.path, last.footer.frontier.offset, "frontier does not hash to the recorded tree root"));
    }
    let (w, footer) = b.finish(first.footer.prev_segment_hash, last.link_hash(), &frontier)?;
    if footer.segment_root != expected.root() {
        return Err(Error::InvalidArgument("the merged segment's root differs from its sources' (a compaction bug)".into()));
    }
    let mut file = w.into_inner().map_err(|e| Error::io("write", &tmp, e.into_error()))?.0;
    file.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
    let file_bytes = std::fs::metadata(&tmp).map_err(|e| Error::io("stat", &tmp, e))?.len();
    Ok(Merged { file_bytes, expected_root: expected.root() })
}

/// Sleeps so that `bytes` since `started` stays under the rate.
fn throttle(started: Instant, bytes: u64, per_sec: u64) {
    let due = Duration::from_secs_f64(bytes as f64 / per_sec as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(wait.min(Duration::from_millis(100)));
    }
}

/// Reads a written segment back and checks it holds exactly the seqs of
/// its range and that its records hash to `expected_root`.
pub(crate) fn check_written(seg: &Segment, expected_root: &Hash) -> Result<()> {
    // Two threads, each reading and hashing half of the blocks.
    let read = |blocks: std::ops::Range<usize>| -> Result<Vec<(u64, Hash)>> {
        let mut leaves = Vec::new();
        for b in blocks {
            let block = seg.read_block(b)?;
            seg.check_seq_map(b, &block.seqs)?;
            leaves.extend((0..block.len()).map(|i| (block.seqs[i], leaf_hash(block.ingest_ms[i], block.record(i)))));
        }
        Ok(leaves)
    };
    let n = seg.blocks.len();
    let (first, second) = std::thread::scope(|s| {
        let other = s.spawn(|| read(n / 2..n));
        (read(0..n / 2), other.join())
    });
    let mut leaves = first?;
    leaves.extend(second.map_err(|_| Error::InvalidArgument("reading the compacted segment back failed (a thread panicked)".into()))??);
    leaves.sort_unstable_by_key(|l| l.0);
    let contiguous = leaves.iter().enumerate().all(|(i, l)| l.0 == seg.footer.first_seq + i as u64);
    let mut f = Frontier::new();
    leaves.iter().for_each(|l| f.push(l.1, |_, _, _| {}));
    if !contiguous || leaves.len() as u64 != seg.footer.count || f.root() != *expected_root || seg.footer.segment_root != *expected_root {
        return Err(Error::corruption(&seg.path, 0, "the compacted segment read back does not hold the entries it was written from"));
    }
    Ok(())
}

/// `std::io::Write` over the storage seam's files.
struct WriteAdapter(Box<dyn crate::fs::WritableFile>);

impl std::io::Write for WriteAdapter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(b)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
