//! `cairn tail`: new events as they arrive at a cairnd.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::lookup::LookupOutput;
use super::query::{self, Filters};
use super::{now_ms, Global};
use crate::backend::Backend;

/// Follow new events live (with --server) until interrupted.
///
/// Prints each newly appended event that matches the filters, in arrival
/// order. Example: cairn --server 127.0.0.1:7878 tail --attr ErrorCode=AccessDenied
#[derive(clap::Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub filters: Filters,
    /// `ndjson` prints the stored records; `table` the LookupEvents columns.
    #[arg(long, value_enum, default_value_t = LookupOutput::Ndjson)]
    pub output: LookupOutput,
}

impl TailArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { filters, output } = self;
        let Backend::Remote { mut client, .. } = g.open_backend()? else {
            bail!("tail follows a running cairnd: give --server ADDR (or CAIRN_SERVER)");
        };
        let q = filters.query(now_ms())?;
        let mut out = io::stdout().lock();
        if matches!(output, LookupOutput::Table) {
            writeln!(out, "{}", query::TABLE_HEADER)?;
        }
        client.tail(cairn_server::protocol::WireQuery::from(&q), None, |e| {
            let e = cairn_engine::StoredEvent::from(e);
            match output {
                LookupOutput::Table => writeln!(out, "{}", query::table_row(&e))?,
                LookupOutput::Csv => writeln!(out, "{}", query::csv_row(&e))?,
                LookupOutput::Ndjson | LookupOutput::Json => {
                    out.write_all(&e.record)?;
                    out.write_all(b"\n")?;
                }
            }
            out.flush()?;
            Ok(true)
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
