//! `cairn lookup`: one page of matching events (or every page), newest
//! first, like CloudTrail's LookupEvents.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use super::query::{self, Filters};
use super::{now_ms, Global};
use crate::backend::Backend;

/// Find events, newest first, like CloudTrail's LookupEvents (but any
/// number of attributes, bigger pages, no 90-day horizon).
///
/// Prints one page (--max, default 50, up to 10000) and, when more remain, a
/// NextToken to pass back with the same filters; --all pages to the end.
/// Pages come from the store as it was at the first page, so every matching
/// event appears exactly once while new events keep arriving. Insight
/// events: --category insight.
///
/// Examples:
///   cairn lookup --start 7d --attr AccessKeyId=AKIAIOSFODNN7EXAMPLE
///   cairn lookup --attr EventName=ConsoleLogin --attr ErrorCode=Failed --all
///   cairn lookup --attr EventName=DeleteBucket --attr EventName=PutBucketPolicy --output json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct LookupArgs {
    #[command(flatten)]
    pub filters: Filters,
    /// Page size (1-10000).
    #[arg(long = "max", default_value_t = 50)]
    pub max: usize,
    /// Continue from a previous page's NextToken.
    #[arg(long)]
    pub next_token: Option<String>,
    /// Print every page.
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t = LookupOutput::Table)]
    pub output: LookupOutput,
}

impl LookupArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { filters, max, next_token, all, output } = self;
        let mut backend = g.open_backend()?;
        lookup(&mut backend, filters, *max, next_token.clone(), *all, *output)
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LookupOutput {
    /// LookupEvents columns, for people.
    Table,
    /// `{"Events":[...],"NextToken":...}` shaped like LookupEvents.
    Json,
    /// The stored records, byte-exact, one per line.
    Ndjson,
    /// LookupEvents columns plus the raw record.
    Csv,
}

pub fn lookup(
    store: &mut Backend,
    f: &Filters,
    max: usize,
    mut token: Option<String>,
    all: bool,
    output: LookupOutput,
) -> Result<ExitCode> {
    // Relative times resolve against the first page's instant, so a token
    // stays bound to the same query on every page.
    let now = match &token {
        Some(t) => cairn_engine::query::token_created_ms(t)?,
        None => now_ms(),
    };
    let q = f.query(now)?;
    let mut out = io::stdout().lock();
    let mut json_events = Vec::new();
    let mut first = true;
    let mut total = 0usize;
    loop {
        let page = store.lookup(&q, max, token.as_deref())?;
        total += page.events.len();
        for e in &page.events {
            match output {
                LookupOutput::Table => {
                    if first {
                        writeln!(out, "{}", query::TABLE_HEADER)?;
                        first = false;
                    }
                    writeln!(out, "{}", query::table_row(e))?;
                }
                LookupOutput::Ndjson => {
                    out.write_all(&e.record)?;
                    out.write_all(b"\n")?;
                }
                LookupOutput::Csv => {
                    if first {
                        writeln!(out, "{}", query::CSV_HEADER)?;
                        first = false;
                    }
                    writeln!(out, "{}", query::csv_row(e))?;
                }
                LookupOutput::Json => json_events.push(query::lookup_json(e)),
            }
        }
        token = page.next_token;
        if !all || token.is_none() {
            break;
        }
    }
    match output {
        LookupOutput::Json => {
            let mut v = serde_json::json!({ "Events": json_events });
            if let Some(t) = &token {
                v["NextToken"] = serde_json::Value::String(t.clone());
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        _ => {
            if let Some(t) = &token {
                eprintln!("cairn: more events: --next-token {t}");
            }
        }
    }
    out.flush()?;
    if total == 0 {
        eprintln!("cairn: no matching events");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
