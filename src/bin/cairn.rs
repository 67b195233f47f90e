//! `cairn`: the command-line tool of the Cairn audit-event store.
//!
//! Exit codes: 0 success; 1 a well-defined negative result (no event with
//! that id; some records rejected); 2 an error. Errors go to stderr,
//! prefixed `cairn:`; a closed stdout (`| head`) ends the program quietly.

#![forbid(unsafe_code)]

use std::io;
use std::process::ExitCode;

use anyhow::Result;
use cairn_tools::cmd::{
    bench, bench_api, bench_deliver, bench_sql, channel, compact, count, deliver, export, gen, get, ingest, insights, integrity, key,
    lookup, retention, sql, stats, tail, token, verify_export, Global,
};
use clap::{Parser, Subcommand};

const ABOUT: &str = "Cairn: a self-hosted, tamper-evident audit-event store (CloudTrail records and on-premises events)";

const AFTER_HELP: &str = "\
Examples:
  cairn gen --count 100000 --seed 7 > events.ndjson     synthetic CloudTrail records
  cairn ingest events.ndjson AWSLogs/                   store NDJSON, JSON arrays, CloudTrail log files (.json.gz)
  cairn get 6f1c3c2e-0000-4000-8000-000000000001         every stored record with that eventID, byte-exact
  cairn lookup --start 7d --attr Username=alice --attr ErrorCode=AccessDenied
  cairn count --by EventName --start 30d                events per API, from the indexes
  cairn export --attr EventName=ConsoleLogin --format csv --out logins.csv
  cairn stats --output json                             counts, sizes, time range, Merkle tree head
  cairn bench --events 500000                           embedded ingest throughput

Every command works on the data directory given by --data-dir (or CAIRN_DATA_DIR),
./cairn-data by default. A directory is used by one writer at a time.";

#[derive(Parser)]
#[command(name = "cairn", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Command,
}

/// The subcommands, in `--help` order; each one's help, arguments and code
/// are in its module under `cmd/`.
#[derive(Subcommand)]
enum Command {
    Ingest(ingest::IngestArgs),
    Get(get::GetArgs),
    Lookup(lookup::LookupArgs),
    Count(count::CountArgs),
    Query(sql::QueryArgs),
    Export(export::ExportArgs),
    VerifyExport(verify_export::VerifyExportArgs),
    Deliver(deliver::DeliverArgs),
    Tail(tail::TailArgs),
    Token(token::TokenArgs),
    Channel(channel::ChannelArgs),
    BenchApi(bench_api::BenchApiArgs),
    BenchDeliver(bench_deliver::BenchDeliverArgs),
    BenchSql(bench_sql::BenchSqlArgs),
    Stats(stats::StatsArgs),
    Gen(gen::GenArgs),
    Compact(compact::CompactArgs),
    Retention(retention::RetentionArgs),
    Insights(insights::InsightsArgs),
    Key(key::KeyArgs),
    Checkpoint(integrity::CheckpointArgs),
    Proof(integrity::ProofArgs),
    VerifyProof(integrity::VerifyProofArgs),
    Consistency(integrity::ConsistencyArgs),
    Verify(integrity::VerifyArgs),
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            eprintln!("cairn: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match &cli.cmd {
        Command::Ingest(a) => a.run(g),
        Command::Get(a) => a.run(g),
        Command::Lookup(a) => a.run(g),
        Command::Count(a) => a.run(g),
        Command::Query(a) => a.run(g),
        Command::Export(a) => a.run(g),
        Command::VerifyExport(a) => a.run(g),
        Command::Tail(a) => a.run(g),
        Command::Token(a) => a.run(g),
        Command::Channel(a) => a.run(g),
        Command::BenchApi(a) => a.run(g),
        Command::Deliver(a) => a.run(g),
        Command::BenchDeliver(a) => a.run(g),
        Command::BenchSql(a) => a.run(g),
        Command::Stats(a) => a.run(g),
        Command::Gen(a) => a.run(),
        Command::Compact(a) => a.run(g),
        Command::Retention(a) => a.run(g),
        Command::Insights(a) => a.run(g),
        Command::Key(a) => a.run(g),
        Command::Checkpoint(a) => a.run(g),
        Command::Proof(a) => a.run(g),
        Command::VerifyProof(a) => a.run(),
        Command::Consistency(a) => a.run(g),
        Command::Verify(a) => a.run(g),
        Command::Bench(a) => a.run(g),
    }
}
