//! `cairn insights`: the insights in stored history, as a table or JSON,
//! and `--backfill` to record the missing Insight events.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use cairn_engine::event::format_event_time;
use serde_json::Value;

use super::{now_ms, query, Global, Output};
use crate::backend::Backend;

/// Unusual API call volumes and error rates in stored history, like
/// CloudTrail Insights.
///
/// For each account, region and API, the per-minute rate of write
/// management calls, and of calls ending in each error code, is
/// compared with its baseline (up to the 28 days before, by hour of
/// the week once there are 3 weeks); an insight opens when the rate
/// leaves the band (a spike, or a steady API falling silent) and closes
/// when it is back for 5 minutes. Lists the insights that start between
/// --start and --end (default: the whole store). With --backfill, also
/// appends their Insight events (eventCategory Insight, a Start and an
/// End sharing sharedEventID) that the store does not hold yet; a rerun
/// adds nothing, and cairnd's own pass (which records new insights as
/// they happen) names the same insight the same way. The reasoning and
/// limits: docs/INSIGHTS.md. Through a server, --backfill needs an
/// admin token.
///
/// Examples:
///   cairn insights --start 7d
///   cairn insights --backfill --output json
///   cairn lookup --category insight
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct InsightsArgs {
    /// Oldest insight start: RFC 3339, a date, `now`, or an age such as 7d.
    #[arg(long)]
    pub start: Option<String>,
    /// Newest insight start, same forms as --start.
    #[arg(long)]
    pub end: Option<String>,
    /// Append the missing Insight events to the log.
    #[arg(long)]
    pub backfill: bool,
    /// Band width in standard deviations (0.5 to 100; lower finds more).
    #[arg(long, default_value_t = 6.0)]
    pub sensitivity: f64,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl InsightsArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { start, end, backfill, sensitivity, output } = self;
        if !(0.5..=100.0).contains(sensitivity) {
            anyhow::bail!("--sensitivity must be 0.5 to 100, not {sensitivity}");
        }
        let now = now_ms();
        let start_ms = start.as_deref().map(|s| query::parse_time(s, now)).transpose()?;
        let end_ms = end.as_deref().map(|s| query::parse_time(s, now)).transpose()?;
        if let (Some(s), Some(e)) = (start_ms, end_ms) {
            if s > e {
                anyhow::bail!("--start {} is after --end {}", format_event_time(s), format_event_time(e));
            }
        }
        // One shape, embedded or remote: the wire report's.
        let report: cairn_server::protocol::WireInsightsReport = match g.open_backend()? {
            Backend::Local(store) => {
                use cairn_engine::insights::{detect::DetectOptions, scan};
                let detect = DetectOptions { sensitivity: *sensitivity, ..DetectOptions::default() };
                let o = scan::RunOptions { start_ms, end_ms, backfill: *backfill, ending: false, detect };
                let r = scan::run(&store, &mut scan::Scanner::new(), &o)?;
                store.close()?;
                (&r).into()
            }
            Backend::Remote { mut client, .. } => {
                let milli = (*sensitivity * 1000.0).round() as u32;
                client.insights(start_ms, end_ms, *backfill, Some(milli))?
            }
        };
        let report = serde_json::to_value(&report)?;
        match output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            Output::Table => print_table(&report, &mut io::stdout().lock())?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints a report (the engine's `insights::scan::Report` as JSON) as a
/// table: one line per insight, then what the run analysed and appended.
pub fn print_table(report: &Value, out: &mut impl Write) -> Result<()> {
    let insights = report["insights"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !insights.is_empty() {
        writeln!(
            out,
            "{:<20}  {:<20}  {:<19}  {:<5}  {:<28}  {:<28}  {:<20}  {:>9}  {:>9}  TOP USER",
            "START", "END", "TYPE", "", "EVENT SOURCE", "EVENT NAME", "ERROR CODE", "BASELINE", "INSIGHT"
        )?;
    }
    for i in insights {
        let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
        let avg = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.1}/min"));
        writeln!(
            out,
            "{:<20}  {:<20}  {:<19}  {:<5}  {:<28}  {:<28}  {:<20}  {:>9}  {:>9}  {}",
            s(&i["start"]),
            i["end"].as_str().unwrap_or("(open)"),
            s(&i["insightType"]),
            s(&i["direction"]),
            s(&i["key"]["source"]),
            s(&i["key"]["name"]),
            s(&i["key"]["error"]),
            avg(&i["baseline_average"]),
            avg(&i["insight_average"]),
            i["attributions"]["users"][0]["value"].as_str().unwrap_or("-"),
        )?;
    }
    let minute = |v: &Value| v.as_i64().map_or("-".into(), |m| cairn_engine::event::format_event_time(m * 60_000));
    write!(
        out,
        "{} insight{} starting from {} to {}",
        insights.len(),
        if insights.len() == 1 { "" } else { "s" },
        minute(&report["start_minute"]),
        minute(&report["end_minute"]),
    )?;
    if report["appended"].is_object() {
        let n = |k: &str| report["appended"][k].as_u64().unwrap_or(0);
        write!(out, "; Insight events appended {}, already stored {}", n("appended"), n("present"))?;
    }
    writeln!(out)?;
    Ok(())
}
