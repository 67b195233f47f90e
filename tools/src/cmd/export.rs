//! `cairn export`: every matching event as NDJSON, JSON or CSV, or as
//! CloudTrail delivers them (log files and signed digests, see
//! [`cloudtrail`]; `cairn verify-export` checks them).

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::query::{self, Filters};
use super::{cloudtrail, file_or_stdout, now_ms, Global};

/// Stream every matching event as NDJSON (byte-exact), a JSON array, or
/// CSV; or write them as CloudTrail delivers them, with digests.
///
/// Memory stays bounded whatever the size. Newest first unless
/// --oldest-first. With --format cloudtrail --out DIR: gzip
/// {"Records":[...]} files in AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
/// (one per account, region and 5 minutes of eventTime) and hourly
/// digest files in AWSLogs/<account>/CloudTrail-Digest/<region>/...,
/// chained and signed with the store's key (signature in a .sig file
/// beside each digest), empty hours included. Through a server this
/// needs an admin token (the server signs the digests).
#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filters: Filters,
    #[arg(long, value_enum, default_value_t = ExportFormatArg::Ndjson)]
    pub format: ExportFormatArg,
    /// Write here instead of stdout (a directory for --format cloudtrail).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub oldest_first: bool,
    /// The bucket name recorded in digests (--format cloudtrail).
    #[arg(long, default_value = "cairn-export")]
    pub bucket: String,
    /// The trail name in digest file names (--format cloudtrail).
    #[arg(long, default_value = "cairn")]
    pub trail: String,
}

impl ExportArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { filters, format, out, oldest_first, bucket, trail } = self;
        let mut backend = g.open_backend()?;
        let q = filters.query(now_ms())?;
        if *format == ExportFormatArg::Cloudtrail {
            let Some(dir) = out else { bail!("--format cloudtrail writes a directory tree: give --out DIR") };
            let options = cloudtrail::ExportOptions { out: dir, bucket: bucket.clone(), trail: trail.clone() };
            let s = cloudtrail::export_cloudtrail(&mut backend, &q, &options)?;
            backend.close()?;
            if !g.quiet {
                eprintln!(
                    "cairn: exported {} events to {} log files and {} digest files ({} streams, {} hours) in {}",
                    s.events,
                    s.log_files,
                    s.digest_files,
                    s.streams,
                    s.hours,
                    dir.display()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let sink = file_or_stdout(out.as_deref())?;
        let fmt = match format {
            ExportFormatArg::Ndjson => query::ExportFormat::Ndjson,
            ExportFormatArg::Json => query::ExportFormat::Json,
            ExportFormatArg::Csv => query::ExportFormat::Csv,
            ExportFormatArg::Cloudtrail => unreachable!("handled above"),
        };
        let mut w = query::ExportWriter::new(io::BufWriter::with_capacity(1 << 20, sink), fmt)?;
        let progress = crate::progress::Progress::items("exporting", 0, g.quiet || out.is_none());
        let order = if *oldest_first { cairn_engine::Order::OldestFirst } else { cairn_engine::Order::NewestFirst };
        backend.export(&q, order, &mut |e| {
            w.write(&e)?;
            progress.inc(1);
            Ok(())
        })?;
        progress.finish();
        let n = w.finish()?;
        if !g.quiet {
            eprintln!("cairn: exported {n} events");
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum ExportFormatArg {
    Ndjson,
    Json,
    Csv,
    /// CloudTrail's S3 layout under --out DIR: gzip log files and signed
    /// hourly digest files (check them with `cairn verify-export`).
    Cloudtrail,
}
