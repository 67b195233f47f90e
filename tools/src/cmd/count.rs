//! `cairn count`: matching events grouped by one attribute, from the
//! indexes or (`--rollup`) from the 5-minute rollups.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use super::query::Filters;
use super::{now_ms, Global, Output};

/// Count matching events grouped by one attribute, from the indexes.
///
/// With --rollup, counts data events from the 5-minute rollups `cairn
/// compact --rollup` wrote (one record per window and source instead of
/// every event; by EventName, EventSource, AwsRegion, AccountId,
/// UserIdentityArn or ErrorCode, the last two beyond each window's top
/// 10 as "other").
///
/// Example: cairn count --by EventName --start 30d --attr Username=alice
#[derive(clap::Args)]
pub struct CountArgs {
    /// The attribute to group by (e.g. EventName, Username, ErrorCode).
    #[arg(long)]
    pub by: String,
    /// Count data events from the rollups.
    #[arg(long)]
    pub rollup: bool,
    #[command(flatten)]
    pub filters: Filters,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl CountArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { by, rollup, filters, output } = self;
        let mut backend = g.open_backend()?;
        let by = cairn_engine::Attr::parse(by)
            .ok_or_else(|| anyhow::anyhow!("InvalidLookupAttributesException: --by {by:?} is not an attribute"))?;
        let q = filters.query(now_ms())?;
        let counts = if *rollup { super::rollup::count(&mut backend, &q, by)? } else { backend.count(&q, by)? };
        let mut out = io::stdout().lock();
        match output {
            Output::Json => {
                let v: Vec<serde_json::Value> = counts.iter().map(|(k, n)| serde_json::json!({ by.name(): k, "Count": n })).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            }
            Output::Table => {
                let total: u64 = counts.iter().map(|c| c.1).sum();
                for (k, n) in &counts {
                    writeln!(out, "{n:>12}  {k}")?;
                }
                writeln!(out, "{total:>12}  (total, {} distinct {})", counts.len(), by.name())?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
