//! Opening a data directory: reads the manifest and segment footers,
//! replays the WAL (truncating only a torn tail of the newest file), and
//! rebuilds the memtables and seal jobs that were in flight.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::{id_fingerprint, parse_event};
use crate::fs::FileSystem;
use crate::index::counters::SeriesKey;
use crate::index::terms;
use crate::layout::{parse_segment_file_name, parse_wal_file_name, segment_file_name, TILE_DIR};
use crate::limits::RECORD_BYTES_MAX;
use crate::manifest::Manifest;
use crate::memtable::{Chunk, EventMeta, Memtable};
use crate::merkle::{Frontier, Hash};
use crate::segment::cache::BlockCache;
use crate::segment::ids::IdBudget;
use crate::segment::reader::Segment;
use crate::segment::set::SegmentSet;
use crate::tree::TreeReader;
use crate::wal::{self, read_wal, WalWriter};

use super::{system_now_ms, Options, SealJob};

/// What recovery hands to `open`.
pub(super) struct Recovered {
    pub(super) manifest: Manifest,
    pub(super) segments: Vec<Arc<Segment>>,
    pub(super) frontier: Frontier,
    pub(super) seal_jobs: Vec<SealJob>,
    pub(super) active: Memtable,
    pub(super) wal: WalWriter,
    pub(super) next_seq: u64,
}

pub(super) fn recover(fs: &dyn FileSystem, opts: &Options, wal_dir: &Path, seg_dir: &Path, ids: &Arc<IdBudget>) -> Result<Recovered> {
    let dir = wal_dir.parent().unwrap_or(wal_dir);
    let manifest = Manifest::load(fs, dir)?.unwrap_or_default();
    let (segments, mut frontier) = open_segments(fs, seg_dir, &manifest, ids)?;
    remove_leftovers(fs, seg_dir, &manifest)?;

    let mut wals: Vec<(u64, PathBuf)> = Vec::new();
    for p in fs.list_dir(wal_dir).map_err(|e| Error::io("list", wal_dir, e))? {
        let Some(first) = p.file_name().and_then(|n| n.to_str()).and_then(parse_wal_file_name) else { continue };
        if first < manifest.sealed_size {
            // Already sealed and listed; its deletion was interrupted.
            fs.remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
        } else {
            wals.push((first, p));
        }
    }
    wals.sort();

    let mut next_seq = manifest.sealed_size;
    let mut seal_jobs = Vec::new();
    let mut last: Option<(Memtable, WalWriter)> = None;
    let n = wals.len();
    for (i, (first, path)) in wals.into_iter().enumerate() {
        if first != next_seq {
            return Err(Error::corruption(
                &path,
                0,
                format!("WAL starts at seq {first}, but the log continues at seq {next_seq}: a WAL file is missing"),
            ));
        }
        let bytes = fs.read(&path).map_err(|e| Error::io("read", &path, e))?;
        let is_newest = i + 1 == n;
        if is_newest && bytes.len() < wal::WAL_HEADER_BYTES {
            // A crash while creating the WAL at a roll: the header was never
            // made durable, so no frame can follow it. Start it again.
            fs.remove_file(&path).map_err(|e| Error::io("remove torn", &path, e))?;
            continue;
        }
        let contents = read_wal(&path, &bytes, is_newest)?;
        if contents.first_seq != first {
            return Err(Error::corruption(
                &path,
                16,
                format!("header says first seq {} but the file name says {first}", contents.first_seq),
            ));
        }
        if contents.torn_bytes > 0 {
            fs.truncate(&path, contents.valid_len).map_err(|e| Error::io("truncate torn tail of", &path, e))?;
        }
        let mut mem = Memtable::new(first);
        let mut scratch = SeriesKey::default();
        let chunk: Chunk = Arc::new(bytes);
        let c = mem.add_chunk(&chunk);
        for e in &contents.entries {
            let rec = &chunk[e.record.clone()];
            // Stored records were valid when accepted; re-derive their index
            // terms (a record this build no longer accepts keeps no terms).
            let parsed = parse_event(rec, RECORD_BYTES_MAX).ok();
            let id_fp = parsed.as_ref().and_then(|ev| ev.event_id.as_deref().map(|id| id_fingerprint(id.as_bytes())));
            let ts = parsed.as_ref().map(terms).unwrap_or_default();
            if let (Some(ev), true) = (&parsed, opts.insights_counters) {
                mem.counters.count(ev, &mut scratch);
            }
            frontier.push(e.leaf, |level, index, h| mem.tile_nodes.push((level, index, h)));
            let meta = EventMeta { ingest_ms: e.ingest_ms, time_ms: e.time_ms, leaf: e.leaf, id_fp };
            mem.push(meta, c, e.record.start, e.record.len(), ts.iter().map(|(a, v)| (*a, v.as_ref())));
        }
        next_seq = mem.end_seq();
        let created_ms = u64::from_le_bytes(chunk.get(24..32).and_then(|b| b.try_into().ok()).unwrap_or_default());
        if is_newest {
            let wal = WalWriter::reopen(fs, &path, first, contents.valid_len, created_ms)?;
            last = Some((mem, wal));
        } else if mem.is_empty() {
            fs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        } else {
            seal_jobs.push(SealJob { mem: Arc::new(mem), frontier: frontier.clone(), wal_path: path });
        }
    }
    let (active, wal) = match last {
        Some(x) => x,
        None => {
            (Memtable::new(next_seq), WalWriter::create(fs, wal_dir, next_seq, opts.clock.as_ref().map_or_else(system_now_ms, |c| c()))?)
        }
    };
    Ok(Recovered { manifest, segments, frontier, seal_jobs, active, wal, next_seq })
}

/// Opens every listed segment and checks the chain: contiguous seqs, file
/// sizes, footer hashes, each footer's link to the previous one, and the
/// last frontier against its recorded root.
pub(super) fn open_segments(
    fs: &dyn FileSystem,
    seg_dir: &Path,
    manifest: &Manifest,
    ids: &Arc<IdBudget>,
) -> Result<(Vec<Arc<Segment>>, Frontier)> {
    let mut segments = Vec::with_capacity(manifest.segments.len());
    let mut expect_seq = manifest.min_retained_seq;
    let mut prev_hash: Option<Hash> = (expect_seq == 0).then_some([0; 32]);
    for entry in &manifest.segments {
        let path = seg_dir.join(segment_file_name(entry.first_seq, entry.file_gen));
        let seg = Segment::open_in(&path, ids)?;
        let f = &seg.footer;
        let what = if seg.file_bytes() != entry.file_bytes {
            Some(format!("file is {} bytes, the manifest says {}", seg.file_bytes(), entry.file_bytes))
        } else if seg.hash != entry.footer_hash {
            Some("footer hash differs from the manifest's (the segment was replaced or rewritten)".to_string())
        } else if f.first_seq != expect_seq || f.first_seq != entry.first_seq || f.count != entry.count {
            Some(format!("holds seqs {}..{}, expected to start at {expect_seq}", f.first_seq, f.tree_size))
        } else if prev_hash.is_some_and(|h| h != f.prev_segment_hash) {
            Some("previous-segment hash does not match the preceding segment (broken hash chain)".to_string())
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::corruption(&path, seg.file_bytes().saturating_sub(crate::segment::FOOTER_BYTES as u64), what));
        }
        expect_seq = f.tree_size;
        prev_hash = Some(seg.footer.link_hash());
        segments.push(Arc::new(seg));
    }
    if expect_seq != manifest.sealed_size && !manifest.segments.is_empty() {
        return Err(Error::corruption(seg_dir, 0, format!("segments end at seq {expect_seq}, the manifest says {}", manifest.sealed_size)));
    }
    let frontier = match segments.last() {
        Some(seg) => {
            let f = seg.frontier()?;
            if f.root() != seg.footer.tree_root {
                return Err(Error::corruption(&seg.path, seg.footer.frontier.offset, "frontier does not hash to the recorded tree root"));
            }
            f
        }
        None if manifest.sealed_size == 0 => Frontier::new(),
        None if manifest.min_retained_seq == manifest.sealed_size => {
            // Retention removed every sealed segment: the tree's right edge
            // is in the tiles (and the boundary leaf tile).
            let cache = BlockCache::new(0);
            let dir = seg_dir.parent().unwrap_or(seg_dir).join(TILE_DIR);
            let mut t = TreeReader::new(
                fs,
                &dir,
                &cache,
                Arc::new(SegmentSet::default()),
                Vec::new(),
                manifest.sealed_size,
                Vec::new(),
                manifest.sealed_size,
            );
            t.frontier_at(manifest.sealed_size)?
        }
        None => return Err(Error::corruption(seg_dir, 0, "the manifest records sealed events but lists no segments")),
    };
    Ok((segments, frontier))
}

/// Deletes what an interrupted seal left: temp files and segments the
/// manifest does not list.
pub(super) fn remove_leftovers(fs: &dyn FileSystem, seg_dir: &Path, manifest: &Manifest) -> Result<()> {
    let listed: std::collections::HashSet<(u64, u32)> = manifest.segments.iter().map(|s| (s.first_seq, s.file_gen)).collect();
    for p in fs.list_dir(seg_dir).map_err(|e| Error::io("list", seg_dir, e))? {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let stale = name.ends_with(".tmp") || parse_segment_file_name(&name).is_some_and(|s| !listed.contains(&s));
        if stale {
            fs.remove_file(&p).map_err(|e| Error::io("remove leftover", &p, e))?;
        }
    }
    let _ = fs.remove_file(&seg_dir.parent().unwrap_or(seg_dir).join(crate::manifest::MANIFEST_TMP_FILE));
    Ok(())
}
