//! Compaction of delivered Parquet: each delivery round writes one file
//! per partition it touches, so a busy day's partition holds hundreds of
//! small files, which Athena, Trino and DuckDB open one by one. Once a
//! partition is quiet (no new file of this writer for `quiet`), runs of
//! its small files (below `small_bytes`) are merged into files of about
//! `target_bytes`, rows in seq order, and the small files are deleted.
//!
//! Only the writer's own files are touched (names `<tag>-<from>-<to>`), so
//! several nodes delivering into one bucket never merge or delete each
//! other's. A merged file is named by the seq range of its inputs
//! (`<tag>-<first from>-<last to>.parquet`) and uploaded before any input
//! is deleted; a run interrupted between the two leaves inputs whose range
//! lies inside a merged file's, and the next pass deletes them. A query
//! listing the partition in those seconds counts those rows twice: only
//! quiet partitions (past days, in practice) are compacted.
//!
//! Merges take consecutive small files only: a file that is not small
//! ends a run, and so does one that does not read back whole as Parquet
//! of this version's columns (it is left as it is, with a warning), so no
//! merged range ever spans a file it does not hold.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde::Serialize;

use crate::target::Sink;

/// When and how far to compact.
#[derive(Debug, Clone)]
pub struct CompactSettings {
    /// Files below this size are merged.
    pub small_bytes: u64,
    /// A merged file is cut once its inputs reach this size.
    pub target_bytes: u64,
    /// A partition is compacted when none of this writer's files in it
    /// is newer than this.
    pub quiet: Duration,
    /// Input bytes merged per pass at most (the rest waits for the next).
    pub pass_bytes_max: u64,
    /// Rows per row group of a merged file.
    pub rows_per_group: usize,
}

impl Default for CompactSettings {
    fn default() -> Self {
        CompactSettings {
            small_bytes: 64 << 20,
            target_bytes: 128 << 20,
            quiet: Duration::from_secs(3600),
            pass_bytes_max: 2 << 30,
            rows_per_group: 128 * 1024,
        }
    }
}

/// What a pass did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CompactReport {
    pub partitions: u64,
    pub inputs: u64,
    pub outputs: u64,
    pub input_bytes: u64,
    /// Inputs of an earlier, interrupted merge, deleted.
    pub leftovers_deleted: u64,
}

/// One of the writer's files.
#[derive(Debug, Clone)]
struct File {
    key: String,
    from: u64,
    to: u64,
    size: u64,
    modified_ms: i64,
}

/// `(from, to)` of a file name `<tag>-<20 digits>-<20 digits>.parquet`
/// when it is `tag`'s.
fn parse_name(name: &str, tag: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix(tag)?.strip_prefix('-')?.strip_suffix(".parquet")?;
    let (from, to) = rest.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(from) && digits(to)).then(|| Some((from.parse().ok()?, to.parse().ok()?))).flatten()
}

/// The name of a file of `tag` holding seqs `[from, to)`.
pub fn file_name(tag: &str, from: u64, to: u64) -> String {
    format!("{tag}-{from:020}-{to:020}.parquet")
}

/// One pass over `root` (`[PREFIX/]parquet`): deletes leftovers and
/// merges runs of small files of quiet partitions. `tmp` is a local
/// directory for the file being built.
pub fn compact(sink: &Sink, root: &str, tag: &str, tmp: &Path, set: &CompactSettings, now_ms: i64) -> Result<CompactReport> {
    let mut report = CompactReport::default();
    let mut partitions: BTreeMap<String, Vec<File>> = BTreeMap::new();
    for (key, size, modified_ms) in sink.list_meta(root)? {
        let Some((dir, name)) = key.rsplit_once('/') else { continue };
        if let Some((from, to)) = parse_name(name, tag) {
            partitions.entry(dir.to_string()).or_default().push(File { key, from, to, size, modified_ms });
        }
    }
    if partitions.is_empty() {
        return Ok(report);
    }
    // Merging needs deletes: a bucket that refuses them (WORM, or no
    // s3:DeleteObject) would keep merged rows twice. Checked first, with
    // an object of the writer's own.
    let probe = format!("{root}/.compact-probe-{tag}");
    sink.put_all(vec![crate::target::Put { key: probe.clone(), body: Vec::new(), metadata: Vec::new() }])?;
    sink.delete_all(std::slice::from_ref(&probe))
        .context("Parquet compaction needs to delete the files it merges; it is off until deletes are allowed")?;
    for (dir, mut files) in partitions {
        files.sort_by_key(|f| (f.from, std::cmp::Reverse(f.to)));
        // Leftovers: a file inside another's range (sorted by from, the
        // widest first, a contained file follows its container).
        let mut kept: Vec<File> = Vec::new();
        let mut leftovers = Vec::new();
        for f in files {
            match kept.last() {
                Some(k) if k.from <= f.from && f.to <= k.to => leftovers.push(f.key),
                _ => kept.push(f),
            }
        }
        if !leftovers.is_empty() {
            sink.delete_all(&leftovers)?;
            report.leftovers_deleted += leftovers.len() as u64;
        }
        let newest = kept.iter().map(|f| f.modified_ms).max().unwrap_or(i64::MIN);
        if !set.quiet.is_zero() && now_ms.saturating_sub(newest) < set.quiet.as_millis() as i64 {
            continue;
        }
        // Runs of consecutive small files, cut at the target size.
        let mut runs: Vec<Vec<File>> = vec![Vec::new()];
        for f in kept {
            let run = runs.last_mut().map(|r| r.iter().map(|f| f.size).sum::<u64>()).unwrap_or(0);
            if f.size >= set.small_bytes || run >= set.target_bytes {
                runs.push(Vec::new());
            }
            if f.size < set.small_bytes {
                if let Some(r) = runs.last_mut() {
                    r.push(f);
                }
            }
        }
        let mut merged_here = false;
        for run in runs.into_iter().filter(|r| r.len() >= 2) {
            if report.input_bytes >= set.pass_bytes_max {
                return Ok(report);
            }
            // A run that cannot be merged (an object store error) does not
            // hold the other partitions up.
            match merge_run(sink, &dir, tag, tmp, set, run) {
                Ok(merged) => {
                    for part in merged {
                        report.inputs += part.len() as u64;
                        report.outputs += 1;
                        report.input_bytes += part.iter().map(|f| f.size).sum::<u64>();
                        merged_here = true;
                    }
                }
                Err(e) => tracing::warn!(partition = dir, "Parquet compaction: {e:#}"),
            }
        }
        report.partitions += u64::from(merged_here);
    }
    Ok(report)
}

/// Merges `run` (consecutive, ascending): each input is read whole first,
/// and one that is not Parquet of this version's columns (damaged, or
/// written by another version) is left as it is and splits the run, so
/// no merged range spans it (the next pass would take it for a merged
/// input and delete it). Returns the parts merged.
fn merge_run(sink: &Sink, dir: &str, tag: &str, tmp: &Path, set: &CompactSettings, run: Vec<File>) -> Result<Vec<Vec<File>>> {
    let keys: Vec<String> = run.iter().map(|f| f.key.clone()).collect();
    let mut parts: Vec<Vec<(File, bytes::Bytes)>> = vec![Vec::new()];
    for (f, obj) in run.into_iter().zip(sink.get_all(&keys)?) {
        let Some(obj) = obj else { bail!("{} vanished while being compacted", f.key) };
        let body = bytes::Bytes::from(obj.body);
        match check(&body) {
            Ok(()) => parts.last_mut().expect("never empty").push((f, body)),
            Err(e) => {
                tracing::warn!(partition = dir, file = f.key, "Parquet compaction leaves this file as it is: {e:#}");
                parts.push(Vec::new());
            }
        }
    }
    let mut merged = Vec::new();
    for part in parts.into_iter().filter(|p| p.len() >= 2) {
        merge(sink, dir, tag, tmp, set, &part)?;
        merged.push(part.into_iter().map(|(f, _)| f).collect());
    }
    Ok(merged)
}

/// Reads all of a Parquet file: an error when it is not Parquet with
/// this version's columns, or any of its pages does not decode.
pub fn check(body: &bytes::Bytes) -> Result<()> {
    guarded(|| {
        let schema = crate::parquet::schema();
        let reader = ParquetRecordBatchReaderBuilder::try_new(body.clone())?.with_batch_size(8192).build()?;
        for batch in reader {
            if batch?.schema().fields() != schema.fields() {
                bail!("it does not have the columns this version writes");
            }
        }
        Ok(())
    })
}

/// The start of the error [`check`] returns for a file on which the
/// Parquet reader panicked (the fuzz target counts them).
pub const READER_PANICKED: &str = "the Parquet reader failed on it";

/// Runs `read`, which decodes a file from the bucket. The Parquet reader
/// (a dependency) still panics on some damaged files instead of returning
/// an error (apache/arrow-rs#9742; `fuzz_parquet_objects` finds them in
/// seconds): such a panic is this file's damage, an error like any other,
/// not the end of the delivering thread.
fn guarded<T>(read: impl FnOnce() -> Result<T>) -> Result<T> {
    crate::caught(READER_PANICKED, read)
}

/// Merges `inputs` (consecutive, ascending, each [`check`]ed) into one
/// file, uploads it, then deletes the inputs.
fn merge(sink: &Sink, dir: &str, tag: &str, tmp: &Path, set: &CompactSettings, inputs: &[(File, bytes::Bytes)]) -> Result<()> {
    let (from, to) = (inputs[0].0.from, inputs[inputs.len() - 1].0.to);
    let name = file_name(tag, from, to);
    std::fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let path = tmp.join(&name);
    let schema = crate::parquet::schema();
    let out = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = ArrowWriter::try_new(
        out,
        schema.clone(),
        Some(crate::parquet::writer_properties(set.rows_per_group, crate::parquet::compacted_compression()?)?),
    )?;
    for (f, body) in inputs {
        let key = &f.key;
        // Guarded like `check` (whose read of the same bytes passed).
        guarded(|| {
            let reader = ParquetRecordBatchReaderBuilder::try_new(body.clone())?.with_batch_size(8192).build()?;
            for batch in reader {
                w.write(&batch?.with_schema(schema.clone())?).context("merging")?;
            }
            Ok(())
        })
        .with_context(|| format!("reading and merging {key}"))?;
    }
    w.close()?;
    let key = format!("{dir}/{name}");
    let keys: Vec<String> = inputs.iter().map(|(f, _)| f.key.clone()).collect();
    let result = sink.put_file(&key, &path).and_then(|_| sink.delete_all(&keys));
    let _ = std::fs::remove_file(&path);
    result?;
    tracing::info!(partition = dir, inputs = inputs.len(), merged = %key, "Parquet compacted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: only this writer's well-formed names are taken.
    #[test]
    fn names() {
        let n = file_name("0123456789abcdef", 5, 70);
        assert_eq!(parse_name(&n, "0123456789abcdef"), Some((5, 70)));
        assert_eq!(parse_name(&n, "0123456789abcde"), None);
        assert_eq!(parse_name(&file_name("0123456789abcdef-export-1", 5, 70), "0123456789abcdef"), None);
        assert_eq!(parse_name("0123456789abcdef-5-70.parquet", "0123456789abcdef"), None);
    }
}
