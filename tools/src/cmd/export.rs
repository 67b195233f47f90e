//! `cairn export` and `cairn verify-export`: every matching event as
//! NDJSON, JSON or CSV, or as CloudTrail delivers them (log files and
//! signed digests, see [`cloudtrail`]), and the check of such an export.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::query::{self, Filters};
use super::{cloudtrail, file_or_stdout, integrity, now_ms, Global, Output};

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

/// Check a CloudTrail-style export: digests, chain, log files.
///
/// Validates every digest (location, signature with --public-key, link
/// to the previous digest), that the digests cover every hour without a
/// gap (so deleting digests, even several in a row, is found), every log
/// file a digest lists (present, SHA-256 of its uncompressed bytes), and
/// reports log files no digest lists. Exit 0 valid, 1 otherwise.
#[derive(clap::Args)]
pub struct VerifyExportArgs {
    pub dir: PathBuf,
    /// The store's public key (NAME+KEYID+BASE64) or a file of keys; repeatable.
    #[arg(long = "public-key", required = true)]
    pub public_key: Vec<String>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl VerifyExportArgs {
    pub fn run(&self) -> Result<ExitCode> {
        let Self { dir, public_key, output } = self;
        let keys = integrity::read_public_keys(public_key)?;
        let c = cloudtrail::verify_export(dir, &keys)?;
        let ok = c.problems.is_empty();
        match output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&c)?),
            Output::Table => {
                for p in &c.problems {
                    println!("{p}");
                }
                println!("{}/{} digest files valid, {}/{} log files valid", c.digests_valid, c.digests, c.log_files_valid, c.log_files);
                println!("{}", if ok { "ok" } else { "FAILED" });
            }
        }
        Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}
