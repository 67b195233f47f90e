//! `cairn deliver`: a one-off delivery of the store's history to S3, as
//! `cairnd --deliver` delivers continuously.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_deliver::{DeliverOptions, Deliverer, Sink, SinkOptions, Target};
use sha2::{Digest, Sha256};

use super::query::parse_time;
use super::{Global, Output};
use crate::progress::Progress;

/// Deliver the store's events to S3 once: CloudTrail log files, signed digests and Parquet.
///
/// Writes what `cairnd --deliver` writes (docs/FORMAT.md, "CloudTrail
/// delivery" and "Parquet"): gzip log files per account and region,
/// digests chained and signed SHA256withRSA with the store's digest key
/// (check them with `aws cloudtrail validate-logs --s3-bucket ...
/// --s3-prefix ...`), and Parquet for Athena, Trino and DuckDB. With
/// --start/--end only events whose eventTime is in the range.
///
/// Resumable: its cursor is kept in the data directory (one per target
/// and range), so running the same command again after an interruption
/// or a failure delivers the rest, under the same names, never twice.
/// It reads the data directory itself: run it where the data is, with
/// cairnd stopped (a running cairnd delivers continuously with --deliver).
/// Credentials come from the AWS environment (AWS_ACCESS_KEY_ID, ...),
/// else the AWS CLI's profile files (AWS_PROFILE, ~/.aws/credentials).
///
/// Example: cairn deliver --to s3://audit-archive/cairn --start 2026-01-01 --end 2026-06-30
#[derive(clap::Args)]
pub struct DeliverArgs {
    /// Where: s3://BUCKET[/PREFIX].
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]")]
    pub to: String,
    /// An S3-compatible server's URL [default: AWS_ENDPOINT_URL_S3, else
    /// AWS_ENDPOINT_URL, else AWS S3].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Virtual-hosted-style requests to --endpoint instead of path-style.
    #[arg(long)]
    pub virtual_hosted: bool,
    /// Oldest eventTime to deliver (as `cairn lookup --start`).
    #[arg(long)]
    pub start: Option<String>,
    /// Newest eventTime to deliver (inclusive).
    #[arg(long)]
    pub end: Option<String>,
    /// The trail name in digest file names.
    #[arg(long, default_value = "cairn")]
    pub trail_name: String,
    /// The trail's home region in digest file names.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Also write Parquet: true or false.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub parquet: bool,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl DeliverArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        if g.server.is_some() {
            bail!("cairn deliver reads the data directory itself: run it where the data is, with cairnd stopped (or start cairnd with --deliver to deliver continuously)");
        }
        let target: Target = self.to.parse()?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
        let start = self.start.as_deref().map(|s| parse_time(s, now)).transpose()?;
        let end = self.end.as_deref().map(|s| parse_time(s, now)).transpose()?;
        if let (Some(a), Some(b)) = (start, end) {
            if a > b {
                bail!("--start is after --end");
            }
        }
        let time_range = (start.is_some() || end.is_some()).then(|| (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX)));
        // One cursor per target, range and trail as typed: the same command
        // resumes, with the range resolved when it first ran (`--start 30d`
        // keeps meaning the same days).
        let (a, b) = (self.start.as_deref().unwrap_or(""), self.end.as_deref().unwrap_or(""));
        let id = hex::encode(&Sha256::digest(format!("{target}|{a}|{b}|{}", self.trail_name))[..8]);
        let store = g.open_store()?;
        let sink = Sink::connect(
            target.clone(),
            &SinkOptions { endpoint: self.endpoint.clone(), region: None, virtual_hosted: self.virtual_hosted },
        )?;
        let opts = DeliverOptions {
            trail: self.trail_name.clone(),
            home_region: self.region.clone(),
            parquet: self.parquet,
            cursor: format!("export-{id}.json"),
            hold: None,
            time_range,
            // Rounds back to back; one digest per stream at the end (and
            // hourly ones if it runs for hours).
            file_interval: Duration::from_secs(1),
            ..DeliverOptions::default()
        };
        let mut d = Deliverer::open(&store, sink, opts)?;
        let goal = store.durable_size()?;
        let first = d.next_seq();
        let progress = Progress::items("delivering", goal.saturating_sub(first), g.quiet);
        let t = Instant::now();
        while d.next_seq() < goal {
            d.tick(&store, true)
                .with_context(|| format!("delivering to {target} (run the same command again to resume from event {})", d.next_seq()))?;
            progress.set_position(d.next_seq().min(goal) - first);
        }
        d.finish(&store).with_context(|| format!("writing the final digests to {target} (run the same command again to finish)"))?;
        progress.finish();
        let st = d.status().lock().clone();
        store.close()?;
        match self.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&st)?),
            Output::Table => println!(
                "cairn: delivered events up to seq {} to {target}: {} events in {} objects and {} digests in total ({:.1} s this run)",
                st.next_seq,
                st.delivered_events,
                st.delivered_files,
                st.digest_files,
                t.elapsed().as_secs_f64()
            ),
        }
        Ok(ExitCode::SUCCESS)
    }
}
