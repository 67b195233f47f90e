//! `cairn bench-sql`: what SQL costs on the store in --data-dir, in
//! process (no process start or store open in the figures).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_engine::event::format_event_time_ms;
use cairn_engine::{Attr, Query};
use cairn_sql::{Limits, Sql};

use super::{Global, Output};

/// Time SQL queries on the store in --data-dir (in process).
///
/// Runs each query --runs times after one unmeasured run and reports the
/// median, fastest and slowest wall time: Lake's count by API
/// (`SELECT eventname, count(*) ... GROUP BY eventname`) beside the same
/// count through the store's API (what `cairn count --by EventName`
/// does), the newest 50 calls of the most common API in the store's last
/// day, and a full scan that reads a JSON member of every record (MB/s of
/// record bytes). benches/sql_vs_duckdb.py runs it beside DuckDB on the
/// same records.
///
/// With --query, times those statements instead (and nothing else).
///
/// Example: cairn --data-dir bench-store bench-sql --runs 5 --output json
/// Example: cairn bench-sql --runs 50 --query 'SELECT count(*) FROM events'
#[derive(clap::Args)]
pub struct BenchSqlArgs {
    /// Measured runs of each query.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// A statement to time in place of the built-in queries (repeatable).
    #[arg(long = "query", value_name = "SQL")]
    pub queries: Vec<String>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// One query's timings, in milliseconds.
struct Timed {
    name: String,
    statement: String,
    rows: usize,
    ms: Vec<f64>,
}

impl Timed {
    fn median(&self) -> f64 {
        self.ms[self.ms.len() / 2]
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name, "statement": self.statement, "rows": self.rows,
            "median_ms": self.median(), "min_ms": self.ms[0], "max_ms": self.ms[self.ms.len() - 1],
        })
    }

    fn print(&self) {
        println!("{:>10.3} ms ({:.3}..{:.3})  {} [{} rows]", self.median(), self.ms[0], self.ms[self.ms.len() - 1], self.name, self.rows);
    }
}

fn time_runs(runs: usize, mut f: impl FnMut() -> Result<usize>) -> Result<(usize, Vec<f64>)> {
    let rows = f()?;
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((rows, ms))
}

impl BenchSqlArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        if g.server.is_some() {
            bail!("cairn bench-sql measures the store in --data-dir in process; it does not take --server");
        }
        let runs = self.runs.max(1);
        let store = Arc::new(g.open_store()?);
        let stats = store.stats()?;
        let Some(newest) = stats.max_time_ms else { bail!("the store is empty: ingest events first (cairn gen | cairn ingest -)") };
        let by_name = store.count(&Query::default(), Attr::EventName)?;
        let common = by_name.first().map(|(n, _)| n.clone()).unwrap_or_default();
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the query runtime")?;
        let sql = Sql::new(store.clone(), Limits::default())?;
        let time_statement = |statement: &str| {
            time_runs(runs, || {
                let (_, batches) = rt.block_on(sql.collect(statement))?;
                Ok(batches.iter().map(|b| b.num_rows()).sum())
            })
        };
        if !self.queries.is_empty() {
            let mut timed = Vec::new();
            for (i, statement) in self.queries.iter().enumerate() {
                let (rows, ms) = time_statement(statement)?;
                timed.push(Timed { name: format!("query {}", i + 1), statement: statement.clone(), rows, ms });
            }
            match self.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&timed.iter().map(Timed::json).collect::<Vec<_>>())?),
                Output::Table => timed.iter().for_each(Timed::print),
            }
            return Ok(ExitCode::SUCCESS);
        }
        let since = format_event_time_ms(newest - 86_400_000);
        let queries: [(&'static str, String); 3] = [
            ("count by eventname", "SELECT eventname, count(*) AS n FROM events GROUP BY eventname".into()),
            (
                "newest 50 of one API, last day",
                format!(
                    "SELECT eventtime, eventid, useridentity.arn AS arn FROM events WHERE eventname = '{}' AND eventtime > '{since}' \
                     ORDER BY eventtime DESC LIMIT 50",
                    common.replace('\'', "''")
                ),
            ),
            (
                "full scan, a JSON member",
                "SELECT json_extract_scalar(requestparameters, '$.bucketName') AS bucket, count(*) AS n FROM events \
                 GROUP BY 1 ORDER BY n DESC LIMIT 10"
                    .into(),
            ),
        ];
        let (_, baseline) = time_runs(runs, || Ok(store.count(&Query::default(), Attr::EventName)?.len()))?;
        let mut timed = Vec::new();
        for (name, statement) in queries {
            let (rows, ms) = time_statement(&statement)?;
            timed.push(Timed { name: name.to_string(), statement, rows, ms });
        }
        let count_ms = baseline[baseline.len() / 2];
        let scan_mb_s = stats.record_bytes as f64 / 1e6 / (timed[2].median() / 1000.0);
        match self.output {
            Output::Json => {
                let v = serde_json::json!({
                    "events": stats.events,
                    "record_bytes": stats.record_bytes,
                    "runs": runs,
                    "store_count_by_eventname_ms": count_ms,
                    "queries": timed.iter().map(Timed::json).collect::<Vec<_>>(),
                    "count_by_eventname_vs_store_count": timed[0].median() / count_ms,
                    "full_scan_mb_per_sec": scan_mb_s,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            Output::Table => {
                println!(
                    "{} events, {:.1} MB of records; medians of {runs} runs (min..max)",
                    stats.events,
                    stats.record_bytes as f64 / 1e6
                );
                println!("{:>10.3} ms ({:.3}..{:.3})  store count by EventName (cairn count)", count_ms, baseline[0], baseline[runs - 1]);
                timed.iter().for_each(Timed::print);
                println!("count by eventname in SQL: {:.2}x the store's count", timed[0].median() / count_ms);
                println!("full scan: {scan_mb_s:.0} MB/s of record bytes");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
