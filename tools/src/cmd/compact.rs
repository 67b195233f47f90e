//! `cairn compact`: merging small segments, recompressing (optionally with
//! a dictionary), and writing the 5-minute rollups of data events.

use std::process::ExitCode;

use anyhow::{bail, Result};
use cairn_engine::compact::CompactOptions;

use super::{Global, Output};

use crate::backend::Backend;

/// Merge small adjacent segments; recompress; optionally with a dictionary.
///
/// Quiet hours leave many small segments (one per 10 minutes at least).
/// Compaction rewrites runs of adjacent segments smaller than --small-mib
/// into segments of up to --target-mib of records, at --level with
/// --block-kib blocks (and a zstd dictionary trained on the store's
/// records with --dictionary), rebuilding their indexes. Records are
/// stored field by field (one that is not JSON stays whole), including
/// those a seal kept whole while ingest ran at full speed and those of
/// segments older than format 4, so
/// `--all` after a bulk load takes the most disk back. It is
/// hash-neutral: every checkpoint and proof issued before still verifies.
/// Ingest and queries continue meanwhile; a crash at any point leaves
/// the old or the new files. Through a server it needs an admin token.
///
/// Example: cairn compact --dry-run; cairn compact --all --dictionary
#[derive(clap::Args)]
pub struct CompactArgs {
    /// Largest merged segment, in MiB of records.
    #[arg(long, default_value_t = 256)]
    pub target_mib: u64,
    /// Segments with fewer MiB of records than this are merged.
    #[arg(long, default_value_t = 64)]
    pub small_mib: u64,
    /// Rewrite every segment (e.g. to change the level or add a dictionary).
    #[arg(long)]
    pub all: bool,
    /// zstd level of the merged segments (splitting records into
    /// fields costs more than level 9's compression).
    #[arg(long, default_value_t = cairn_engine::compact::CompactOptions::default().zstd_level, allow_hyphen_values = true)]
    pub level: i32,
    /// KiB of records per block of the merged segments. Larger blocks
    /// compress better (on varied records, bytes/event: 2048: +6,
    /// 8192: -4); reading one event decodes its whole block (a few ms
    /// per 4 MiB, then cached).
    #[arg(long, default_value_t = (cairn_engine::compact::CompactOptions::default().block_bytes / 1024) as u64)]
    pub block_kib: u64,
    /// Train a zstd dictionary on the store's records and compress with it.
    #[arg(long)]
    pub dictionary: bool,
    /// Report what would be merged; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read at most this many MB of records per second (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_mb_per_sec: u64,
    /// Also write 5-minute rollups of data events (CloudTrail's
    /// aggregated events: counts by eventName, principal and error code
    /// per window, account, region and source), once each; `cairn count
    /// --rollup` reads them. The events themselves are kept.
    #[arg(long)]
    pub rollup: bool,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl CompactArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { target_mib, small_mib, all, level, block_kib, dictionary, dry_run, max_mb_per_sec, rollup, output } = self;
        let mib = 1024 * 1024;
        let opts = CompactOptions::from(&cairn_server::protocol::WireCompact {
            target_bytes: target_mib.saturating_mul(mib),
            small_bytes: small_mib.saturating_mul(mib),
            all: *all,
            zstd_level: *level,
            block_bytes: block_kib.saturating_mul(1024),
            dictionary: *dictionary,
            dry_run: *dry_run,
            max_bytes_per_sec: max_mb_per_sec.saturating_mul(1_000_000),
        });
        let block_kib_max = (cairn_engine::compact::BLOCK_BYTES_MAX / 1024) as u64;
        if *target_mib == 0 || *block_kib == 0 || *block_kib > block_kib_max {
            bail!("--target-mib must be at least 1 and --block-kib between 1 and {block_kib_max}");
        }
        let mut backend = g.open_backend()?;
        // A progress bar for a local compaction (a server reports at the end).
        let bar = matches!(backend, Backend::Local(_)).then(|| crate::progress::Progress::bytes("compacting", 0, g.quiet));
        let mut sized = false;
        let report = backend.compact(&opts, &mut |done, total| {
            if let Some(bar) = &bar {
                if !sized {
                    bar.set_length(total);
                    sized = true;
                }
                bar.set_position(done);
            }
        })?;
        if let Some(bar) = bar {
            bar.finish();
        }
        let rolled = if *rollup {
            Some(backend.rollup(&cairn_engine::rollup::RollupOptions { dry_run: *dry_run, ..Default::default() })?)
        } else {
            None
        };
        backend.close()?;
        if let (Some(r), Output::Table) = (&rolled, output) {
            println!(
                "rollups: {} data events in {} window records, {} {}, {} already stored",
                r.data_events,
                r.records,
                if r.dry_run { "would append" } else { "appended" },
                if r.dry_run { r.records - r.present } else { r.appended },
                r.present
            );
        }
        match output {
            Output::Json if rolled.is_some() => {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"compaction": report, "rollup": rolled}))?)
            }
            Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            Output::Table => {
                let verb = if report.dry_run { "would merge" } else { "merged" };
                for r in &report.runs {
                    println!(
                        "{verb} {} segments from seq {} ({} events): {} -> {} bytes",
                        r.segments,
                        r.first_seq,
                        r.events,
                        r.bytes_before,
                        if report.dry_run { "?".to_string() } else { r.bytes_after.to_string() }
                    );
                }
                let took = if report.dry_run {
                    " (dry run: nothing changed)".to_string()
                } else {
                    format!(
                        ", {:.1} s ({:.0} MB/s of records)",
                        report.seconds,
                        report.record_bytes as f64 / report.seconds.max(1e-9) / 1e6
                    )
                };
                println!(
                    "segments {} -> {}, bytes {} -> {}{took}",
                    report.segments_before, report.segments_after, report.bytes_before, report.bytes_after,
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
