//! `cairn insights`: the insights in stored history, as a table or JSON,
//! and `--backfill` to record the missing Insight events.

use std::io::Write;

use anyhow::Result;
use serde_json::Value;

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
