//! `cairn query`: SQL over the store, as CloudTrail Lake answers it.

use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cairn_sql::output::{read_ipc_stream, Format, ResultWriter};
use cairn_sql::{Limits, Sql};

use super::Global;
use crate::backend::Backend;

/// Run a SQL query (one SELECT) over the store, as CloudTrail Lake does.
///
/// The table is `events`, in CloudTrail Lake's columns: lower-case names,
/// `eventtime` a UTC timestamp, `useridentity` a struct
/// (`useridentity.arn`, `useridentity.sessioncontext.sessionissuer.username`),
/// `resources` a list of structs, `readonly` and `managementevent`
/// booleans, `requestparameters`, `responseelements`,
/// `additionaleventdata` and the other free-form members as JSON text,
/// `eventjson` the stored record byte for byte, and Cairn's `seq` and
/// `ingesttime`. Lake's functions `element_at`, `json_extract_scalar`,
/// `json_extract`, `date_add` and `from_iso8601_timestamp` work as in
/// Lake; the rest is DataFusion's SQL (Postgres-like). Filters on
/// `eventtime` and `=`/`IN` on indexed columns (eventname, eventsource,
/// errorcode, awsregion, sourceipaddress, eventid, eventtype,
/// eventcategory, recipientaccountid, readonly, useridentity.arn,
/// useridentity.accesskeyid) are answered from the indexes; `EXPLAIN
/// SELECT ...` shows what the scan was given. Queries never change the
/// store: DDL, DML and SET are refused. The table is also named by the
/// store's id (`cairn stats` shows it), as Lake names an event data store.
///
/// With --server, cairnd runs the query (its --query-* limits apply) and
/// streams the rows back; it also serves Lake's StartQuery and
/// GetQueryResults on its HTTP API (docs/HTTP-API.md).
///
/// Examples:
///   cairn query "SELECT eventsource, eventname, count(*) AS n FROM events
///     WHERE eventtime >= '2026-01-01 00:00:00' GROUP BY eventsource, eventname ORDER BY n DESC LIMIT 20"
///   cairn query "SELECT useridentity.arn, sourceipaddress, eventtime FROM events
///     WHERE eventname = 'ConsoleLogin' AND element_at(additionaleventdata, 'MFAUsed') = 'No'"
///   cairn query --output csv "SELECT errorcode, count(*) FROM events WHERE errorcode IS NOT NULL
///     AND eventtime > date_add('day', -1, now()) GROUP BY errorcode"
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct QueryArgs {
    /// The query: one SELECT (at most 10,000 bytes).
    pub statement: String,
    /// How results are printed: an aligned table, CSV with a header, a
    /// JSON array of objects, or one JSON object a line.
    #[arg(long, value_enum, default_value_t = SqlOutput::Table)]
    pub output: SqlOutput,
    /// Memory for the query's sorts, joins and aggregations, in MiB; a
    /// query that needs more fails with QueryResourcesExceededException
    /// (embedded; with --server, cairnd's --query-memory-mib applies).
    #[arg(long, default_value_t = 512)]
    pub memory_mib: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SqlOutput {
    Table,
    Csv,
    Json,
    Ndjson,
}

impl QueryArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let format = match self.output {
            SqlOutput::Table => Format::Table,
            SqlOutput::Csv => Format::Csv,
            SqlOutput::Json => Format::Json,
            SqlOutput::Ndjson => Format::Ndjson,
        };
        if g.server.is_some() {
            return self.run_remote(g, format);
        }
        let store = Arc::new(g.open_store()?);
        let limits = Limits { memory_bytes: self.memory_mib.max(1) << 20, ..Limits::default() };
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the query runtime")?;
        rt.block_on(async {
            let sql = Sql::new(store, limits)?;
            let mut running = sql.start(&self.statement).await?;
            let mut w = ResultWriter::new(io::stdout().lock(), running.schema.clone(), format);
            while let Some(batch) = running.next().await {
                w.write(&batch?)?;
            }
            w.finish()?;
            anyhow::Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

impl QueryArgs {
    /// The query run by cairnd (its limits apply, not --memory-mib):
    /// results arrive as Arrow IPC streams and print as they would
    /// embedded.
    fn run_remote(&self, g: &Global, format: Format) -> Result<ExitCode> {
        let Backend::Remote { mut client, .. } = g.open_backend()? else { bail!("--server is required") };
        let mut writer: Option<ResultWriter<io::StdoutLock<'static>>> = None;
        client.query(&self.statement, |ipc| {
            let (schema, batches) = read_ipc_stream(&ipc).context("decoding the server's results (Arrow IPC)")?;
            let w = writer.get_or_insert_with(|| ResultWriter::new(io::stdout().lock(), schema, format));
            batches.iter().try_for_each(|b| w.write(b))?;
            Ok(())
        })?;
        match writer {
            Some(w) => w.finish()?,
            None => bail!("the server ended the query without sending its columns"),
        }
        Ok(ExitCode::SUCCESS)
    }
}
