//! `cairn retention`: removing whole segments of old events.

use std::process::ExitCode;

use anyhow::Result;
use cairn_engine::event::format_event_time;

use super::{parse_duration, Global, Output};

/// Remove whole segments whose events are all older than --older-than.
///
/// Segments go oldest first, in log order; the first one holding a more
/// recent event stops the cut. An event's age is its eventTime, but
/// never later than a day after it was ingested (records claiming a
/// time far in the future cannot keep their segment forever). The cut
/// is recorded in the manifest and appended to the log as a
/// RetentionCut event; every remaining event still verifies and proves,
/// and `verify` reports the removed range as pruned. cairnd applies its
/// --retention-days policy (90 by default, like CloudTrail's event
/// history) every 10 minutes, to segments also written longer ago than
/// that (so imports of old logs are not deleted at once). Through a
/// server it needs an admin token.
///
/// Example: cairn retention --older-than 365d --dry-run
#[derive(clap::Args)]
pub struct RetentionArgs {
    /// Keep this much history: 90d, 36h, ...
    #[arg(long, value_parser = parse_duration)]
    pub older_than: std::time::Duration,
    /// Report what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl RetentionArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { older_than, dry_run, output } = self;
        let mut backend = g.open_backend()?;
        let o = cairn_engine::retention::RetentionOptions { older_than: *older_than, dry_run: *dry_run, stored_at_least: false };
        let report = backend.retain(&o)?;
        backend.close()?;
        match output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            Output::Table => println!(
                "{} {} segments ({} events, {} bytes) older than {}; the store now starts at seq {}{}",
                if report.dry_run { "would remove" } else { "removed" },
                report.segments_removed,
                report.events_removed,
                report.bytes_removed,
                format_event_time(report.cutoff_ms),
                report.min_retained_seq,
                report.event_seq.map(|s| format!(" (RetentionCut event: seq {s})")).unwrap_or_default()
            ),
        }
        Ok(ExitCode::SUCCESS)
    }
}
