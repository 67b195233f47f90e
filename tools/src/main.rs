//! `cairn`: the command-line tool of the Cairn audit-event store.
//!
//! Exit codes: 0 success; 1 a well-defined negative result (no event with
//! that id; some records rejected); 2 an error. Errors go to stderr,
//! prefixed `cairn:`; a closed stdout (`| head`) ends the program quietly.

#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cairn_engine::event::{format_event_time, parse_event_time};
use cairn_engine::{Durability, Options, Store};
use cairn_tools::backend::{Backend, ServerView};
use cairn_tools::cmd::{bench, cloudtrail, ingest, integrity, query};
use cairn_tools::gen::{GenOptions, Generator, Profile};
use clap::{Parser, Subcommand, ValueEnum};

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
    /// The store's data directory [default: ./cairn-data].
    #[arg(long, global = true, env = "CAIRN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// When appends are acknowledged: `always` (fsync per append), `batch`
    /// (group commit: concurrent appends share one fsync), `never` (no fsync
    /// before acknowledging; a machine crash can lose acknowledged events).
    #[arg(long, global = true, env = "CAIRN_DURABILITY", default_value = "batch", value_parser = ["always", "batch", "never"])]
    durability: String,
    /// Roll the active segment into a sealed one at this many WAL bytes.
    #[arg(long, global = true, env = "CAIRN_SEGMENT_BYTES", default_value_t = 32 * 1024 * 1024)]
    segment_bytes: u64,
    /// zstd level for sealed segments (higher: smaller and slower to seal).
    #[arg(long, global = true, env = "CAIRN_ZSTD_LEVEL", default_value_t = Options::default().zstd_level, allow_hyphen_values = true)]
    zstd_level: i32,
    /// Run against a cairnd server (host:port) instead of a local data directory.
    #[arg(long, global = true, env = "CAIRN_SERVER")]
    server: Option<String>,
    /// Access token for --server (default: the local server's admin token file).
    #[arg(long, global = true, env = "CAIRN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the access token from this file.
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// Connect to --server over TLS, trusting the CA certificates in this PEM file.
    #[arg(long, global = true, env = "CAIRN_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// No progress bars or per-record messages.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LookupOutput {
    /// LookupEvents columns, for people.
    Table,
    /// `{"Events":[...],"NextToken":...}` shaped like LookupEvents.
    Json,
    /// The stored records, byte-exact, one per line.
    Ndjson,
    /// LookupEvents columns plus the raw record.
    Csv,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ExportFormatArg {
    Ndjson,
    Json,
    Csv,
    /// CloudTrail's S3 layout under --out DIR: gzip log files and signed
    /// hourly digest files (check them with `cairn verify-export`).
    Cloudtrail,
}

/// Filters shared by lookup, count and export.
#[derive(clap::Args, Clone)]
struct Filters {
    /// Oldest eventTime (inclusive): RFC 3339, a date, `now`, or an age such as 7d, 12h, 30m.
    #[arg(long)]
    start: Option<String>,
    /// Newest eventTime (inclusive), same forms as --start.
    #[arg(long)]
    end: Option<String>,
    /// Key=Value lookup attribute; repeat it: different keys AND, the same key OR.
    /// Keys: EventId EventName ReadOnly Username ResourceType ResourceName EventSource
    /// AccessKeyId ErrorCode AwsRegion AccountId SourceIPAddress UserIdentityArn
    /// EventCategory EventType.
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    attrs: Vec<String>,
    /// Only events of this eventCategory (management, data, insight,
    /// networkactivity, aggregated; any case): the same as --attr
    /// EventCategory=VALUE.
    /// `--category insight` lists the Insight events.
    #[arg(long, value_name = "CATEGORY")]
    category: Option<String>,
}

impl Filters {
    /// The query these filters describe, relative times against `now_ms`.
    fn query(&self, now_ms: i64) -> Result<cairn_engine::Query> {
        let mut attrs = self.attrs.clone();
        attrs.extend(self.category.iter().map(|c| format!("EventCategory={c}")));
        query::build_query(self.start.as_deref(), self.end.as_deref(), &attrs, now_ms)
    }
}

/// `cairn bench --profile`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BenchProfile {
    Standard,
    Diverse,
    /// Both, one after the other (a fresh store each).
    Both,
}

#[derive(Subcommand)]
enum Command {
    /// Store records from files, directories (e.g. AWSLogs/) or stdin.
    ///
    /// Reads NDJSON (one record per line), JSON arrays of records, CloudTrail
    /// log files ({"Records":[...]}, one line or pretty-printed, one or many
    /// per file), pretty-printed records, and any mixture, each plain or
    /// gzip. Directories are walked recursively for .json, .json.gz,
    /// .ndjson, .jsonl and .gz files. With no paths, or `-`, reads stdin.
    /// Each record is stored byte-exact as found.
    ///
    /// Bad bytes never cost a good record: text that is not JSON, a record
    /// cut short, NUL bytes or a truncated gzip stream are skipped and
    /// reported with their file and lines, and reading resumes at the next
    /// record (docs/INGEST.md has the rules). A record is rejected (and the
    /// rest stored) when it is not a JSON object, is larger than 256 KiB,
    /// has no eventTime that is a UTC instant, or has no eventName. The
    /// summary counts every record found (stored + duplicates + rejected)
    /// and every stretch skipped. Exit status 1 if anything was rejected or
    /// skipped.
    Ingest {
        /// Files, directories, or `-` for stdin.
        paths: Vec<PathBuf>,
        /// Records per append call.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Parallel append workers (parsing and hashing run on them).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Print the summary as JSON.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// For crash tests: log "<input ordinal> <seq>" per acknowledged record.
        #[arg(long, hide = true)]
        ack_log: Option<PathBuf>,
    },
    /// Print every stored record with this eventID (or UID), byte-exact, one per line.
    ///
    /// Exit status 1 if there is none. CloudTrail may deliver the same
    /// eventID more than once, and a correction shares the original's id,
    /// so several records can be printed, in the order they were stored.
    Get { event_id: String },
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
    #[command(verbatim_doc_comment)]
    Lookup {
        #[command(flatten)]
        filters: Filters,
        /// Page size (1-10000).
        #[arg(long = "max", default_value_t = 50)]
        max: usize,
        /// Continue from a previous page's NextToken.
        #[arg(long)]
        next_token: Option<String>,
        /// Print every page.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = LookupOutput::Table)]
        output: LookupOutput,
    },
    /// Count matching events grouped by one attribute, from the indexes.
    ///
    /// With --rollup, counts data events from the 5-minute rollups `cairn
    /// compact --rollup` wrote (one record per window and source instead of
    /// every event; by EventName, EventSource, AwsRegion, AccountId,
    /// UserIdentityArn or ErrorCode, the last two beyond each window's top
    /// 10 as "other").
    ///
    /// Example: cairn count --by EventName --start 30d --attr Username=alice
    Count {
        /// The attribute to group by (e.g. EventName, Username, ErrorCode).
        #[arg(long)]
        by: String,
        /// Count data events from the rollups.
        #[arg(long)]
        rollup: bool,
        #[command(flatten)]
        filters: Filters,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Stream every matching event as NDJSON (byte-exact), a JSON array, or
    /// CSV; or write them as CloudTrail delivers them, with digests.
    ///
    /// Memory stays bounded whatever the size. Newest first unless
    /// --oldest-first. With --format cloudtrail --out DIR: gzip
    /// {"Records":[...]} files in AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
    /// (one per account, region and 5 minutes of eventTime) and hourly
    /// digest files in AWSLogs/<account>/CloudTrail-Digest/<region>/...,
    /// chained and signed with the store's key (signature in a .sig file
    /// beside each digest), empty hours included. Through a server this
    /// needs an admin token (the server signs the digests).
    Export {
        #[command(flatten)]
        filters: Filters,
        #[arg(long, value_enum, default_value_t = ExportFormatArg::Ndjson)]
        format: ExportFormatArg,
        /// Write here instead of stdout (a directory for --format cloudtrail).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        oldest_first: bool,
        /// The bucket name recorded in digests (--format cloudtrail).
        #[arg(long, default_value = "cairn-export")]
        bucket: String,
        /// The trail name in digest file names (--format cloudtrail).
        #[arg(long, default_value = "cairn")]
        trail: String,
    },
    /// Check a CloudTrail-style export: digests, chain, log files.
    ///
    /// Validates every digest (location, signature with --public-key, link
    /// to the previous digest), that the digests cover every hour without a
    /// gap (so deleting digests, even several in a row, is found), every log
    /// file a digest lists (present, SHA-256 of its uncompressed bytes), and
    /// reports log files no digest lists. Exit 0 valid, 1 otherwise.
    VerifyExport {
        dir: PathBuf,
        /// The store's public key (NAME+KEYID+BASE64) or a file of keys; repeatable.
        #[arg(long = "public-key", required = true)]
        public_key: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Follow new events live (with --server) until interrupted.
    ///
    /// Prints each newly appended event that matches the filters, in arrival
    /// order. Example: cairn --server 127.0.0.1:7878 tail --attr ErrorCode=AccessDenied
    Tail {
        #[command(flatten)]
        filters: Filters,
        /// `ndjson` prints the stored records; `table` the LookupEvents columns.
        #[arg(long, value_enum, default_value_t = LookupOutput::Ndjson)]
        output: LookupOutput,
    },
    /// Manage access tokens of a cairnd server (admin token required).
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Show events, segments, bytes on disk, bytes/event, time range, tree size and root.
    Stats {
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Write realistic synthetic CloudTrail records as NDJSON (deterministic for a seed).
    ///
    /// Real API names with a skewed distribution, several accounts, users and
    /// roles, ~3% errors, console sign-ins, sizes around 1-2 KB with a long
    /// tail, and slightly out-of-order event times.
    Gen {
        /// How many records.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// eventTime of the first record: RFC 3339 (2026-01-01T00:00:00Z), a date, or `now`.
        #[arg(long, default_value = "2026-01-01T00:00:00Z")]
        start: String,
        /// Mean events per second of event time.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Pad records to about this many bytes (standard profile).
        #[arg(long)]
        record_bytes: Option<usize>,
        /// The kind of trail: standard (135 APIs, stable principals) or
        /// diverse (293 APIs, short-lived sessions, varied values; closer to
        /// a large organisation's trail).
        #[arg(long, value_enum, default_value_t = Profile::Standard)]
        profile: Profile,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Merge small adjacent segments; recompress; optionally with a dictionary.
    ///
    /// Quiet hours leave many small segments (one per 10 minutes at least).
    /// Compaction rewrites runs of adjacent segments smaller than --small-mib
    /// into segments of up to --target-mib of records, at --level with
    /// --block-kib blocks (and a zstd dictionary trained on the store's
    /// records with --dictionary), rebuilding their indexes. Records are
    /// stored field by field (one that is not JSON stays whole), including
    /// those a seal kept whole while ingest ran at full speed and those of
    /// segments older than format 4, so
    /// `--all` after a bulk load takes the most disk back. It is
    /// hash-neutral: every checkpoint and proof issued before still verifies.
    /// Ingest and queries continue meanwhile; a crash at any point leaves
    /// the old or the new files. Through a server it needs an admin token.
    ///
    /// Example: cairn compact --dry-run; cairn compact --all --dictionary
    Compact {
        /// Largest merged segment, in MiB of records.
        #[arg(long, default_value_t = 256)]
        target_mib: u64,
        /// Segments with fewer MiB of records than this are merged.
        #[arg(long, default_value_t = 64)]
        small_mib: u64,
        /// Rewrite every segment (e.g. to change the level or add a dictionary).
        #[arg(long)]
        all: bool,
        /// zstd level of the merged segments (splitting records into
        /// fields costs more than level 9's compression).
        #[arg(long, default_value_t = cairn_engine::compact::CompactOptions::default().zstd_level, allow_hyphen_values = true)]
        level: i32,
        /// KiB of records per block of the merged segments. Larger blocks
        /// compress better (on varied records, bytes/event: 2048: +6,
        /// 8192: -4); reading one event decodes its whole block (a few ms
        /// per 4 MiB, then cached).
        #[arg(long, default_value_t = (cairn_engine::compact::CompactOptions::default().block_bytes / 1024) as u64)]
        block_kib: u64,
        /// Train a zstd dictionary on the store's records and compress with it.
        #[arg(long)]
        dictionary: bool,
        /// Report what would be merged; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Read at most this many MB of records per second (0: no limit).
        #[arg(long, default_value_t = 0)]
        max_mb_per_sec: u64,
        /// Also write 5-minute rollups of data events (CloudTrail's
        /// aggregated events: counts by eventName, principal and error code
        /// per window, account, region and source), once each; `cairn count
        /// --rollup` reads them. The events themselves are kept.
        #[arg(long)]
        rollup: bool,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
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
    Retention {
        /// Keep this much history: 90d, 36h, ...
        #[arg(long, value_parser = parse_duration)]
        older_than: std::time::Duration,
        /// Report what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
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
    #[command(verbatim_doc_comment)]
    Insights {
        /// Oldest insight start: RFC 3339, a date, `now`, or an age such as 7d.
        #[arg(long)]
        start: Option<String>,
        /// Newest insight start, same forms as --start.
        #[arg(long)]
        end: Option<String>,
        /// Append the missing Insight events to the log.
        #[arg(long)]
        backfill: bool,
        /// Band width in standard deviations (0.5 to 100; lower finds more).
        #[arg(long, default_value_t = 6.0)]
        sensitivity: f64,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// The store's signing keys: export the public key, rotate.
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Sign a checkpoint of everything stored and print the newest one.
    ///
    /// A checkpoint is the tree head (origin, tree size, root hash) in the
    /// C2SP tlog-checkpoint format, signed with the store's Ed25519 key as a
    /// C2SP signed note. Save it somewhere the store cannot reach: later,
    /// `cairn verify --checkpoint FILE` and `cairn consistency FILE` prove
    /// that the store still holds exactly what it held then.
    Checkpoint {
        /// Write it to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Write a self-contained inclusion proof of an event (JSON).
    ///
    /// The bundle holds the stored record, its seq and ingest time, its
    /// Merkle inclusion path and the signed checkpoint it leads to:
    /// `cairn verify-proof BUNDLE --public-key KEY` checks it with nothing
    /// else. Example: cairn proof 3f1e...-eventid --out proof.json
    Proof {
        /// The eventID (every stored record with it gets a bundle).
        #[arg(required_unless_present = "seq", conflicts_with = "seq")]
        event_id: Option<String>,
        /// Prove the event at this seq instead.
        #[arg(long)]
        seq: Option<u64>,
        /// Prove against this saved checkpoint (default: a fresh one).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Write the bundle here (more bundles: FILE.2, FILE.3, ...).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a proof bundle (from `proof` or `consistency`) offline.
    ///
    /// Needs only the bundle and the store's public key: recomputes the
    /// record's leaf hash, walks the inclusion (or consistency) path to the
    /// checkpoint's root, and checks the checkpoint's signature. Exit 0
    /// valid, 1 invalid (with the reason).
    VerifyProof {
        bundle: PathBuf,
        /// The store's public key (NAME+KEYID+BASE64) or a file of keys; repeatable.
        #[arg(long = "public-key", required = true)]
        public_key: Vec<String>,
    },
    /// Prove that an older checkpoint is a prefix of a newer one.
    ///
    /// Asks the store for the RFC 9162 consistency proof from OLD to NEW
    /// (default: a fresh checkpoint) and checks it: exit 0 if the store
    /// only appended since OLD, 1 if it was rewritten. Writes the proof
    /// bundle with --out (check it later with verify-proof).
    Consistency {
        old: PathBuf,
        new: Option<PathBuf>,
        /// Check signatures with this key (default: the store's own keys).
        #[arg(long = "public-key")]
        public_key: Vec<String>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Recompute and check the whole store; name anything wrong.
    ///
    /// Recomputes every leaf from the stored records, the tree, every tile,
    /// each segment's roots and its link in the hash chain, checks every
    /// signed checkpoint in the history and every --checkpoint you saved,
    /// and prints each problem (which seqs, segment, checkpoint, and what
    /// kind of damage) with exit 1, or one line with exit 0. With --data-dir
    /// the store must not be open elsewhere; with --server the daemon
    /// verifies its store while it keeps serving.
    Verify {
        /// A checkpoint saved earlier (e.g. by `cairn checkpoint`); repeatable.
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
        /// Check every signature against this key (or file of keys) instead
        /// of the store's own list; repeatable.
        #[arg(long = "public-key")]
        public_key: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Measure ingest throughput through the real append path.
    ///
    /// Generates events in memory, then appends them from --clients threads
    /// (connections, with --server) in batches, and reports events/s, MB/s,
    /// batch latency p50/p99, and bytes/event on disk (after sealing when
    /// embedded). Embedded, it uses a temporary directory unless --data-dir
    /// names an empty one. Each --seed's events start 30 days after the
    /// previous seed's, so repeated runs continue one timeline.
    ///
    /// With --duration the run lasts that long, generating as it goes
    /// (generation then counts in the time), and prints throughput and
    /// resident memory (the server's with --server) every 10 s: a soak test.
    ///
    /// With --compact (embedded) it then compacts the whole store with a
    /// dictionary at compaction's defaults (`cairn compact --all
    /// --dictionary`) and reports its MB/s of records and bytes/event after.
    ///
    /// Examples:
    ///   cairn bench --server 127.0.0.1:7878 --clients 4
    ///   cairn bench --server 127.0.0.1:7878 --clients 4 --duration 10m
    ///   cairn bench --events 1000000 --no-insights   # what counting for Insights costs
    ///   cairn bench --events 1000000 --compact       # compaction speed and size after
    #[command(verbatim_doc_comment)]
    Bench {
        /// Events to generate and append.
        #[arg(long, default_value_t = 500_000)]
        events: usize,
        /// Run this long instead of a fixed count (e.g. 90s, 10m, 1h).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        #[arg(long, default_value_t = 2)]
        clients: usize,
        /// Pad generated records to about this many bytes.
        #[arg(long)]
        record_bytes: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Embedded: keep no Insights counters (as `cairnd --insights
        /// false`), to measure what they cost.
        #[arg(long)]
        no_insights: bool,
        /// Embedded: afterwards compact everything with a dictionary and
        /// report compaction's speed and the bytes/event after it.
        #[arg(long)]
        compact: bool,
        /// The generated data: standard, diverse (closer to a large
        /// organisation's trail; see `cairn gen --help`), or both, one after
        /// the other. Every figure names its profile.
        #[arg(long, value_enum, default_value_t = BenchProfile::Standard)]
        profile: BenchProfile,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Print the store's public key (NAME+KEYID+BASE64, the signed-note
    /// verifier format): give it to auditors for verify-proof and verify.
    Export {
        /// Every key the store has signed with, oldest first (after rotations).
        #[arg(long)]
        all: bool,
    },
    /// Switch to a new signing key. Checkpoints signed before stay
    /// verifiable with the old public key (export --all lists both); a
    /// checkpoint is signed with the new key at once.
    Rotate,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Issue a token: `ingest` can only append, `read` can only query, `admin` can do both and manage tokens.
    Create {
        #[arg(long, value_parser = ["ingest", "read", "admin"])]
        role: String,
        /// A label kept with the token's hash.
        #[arg(long, default_value = "")]
        name: String,
    },
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

impl Cli {
    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from("./cairn-data"))
    }
}

/// The token for --server: --token, --token-file, CAIRN_TOKEN, or the local
/// server's admin token file.
fn token(cli: &Cli) -> Result<String> {
    let explicit = match (&cli.token, &cli.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(std::fs::read_to_string(f).with_context(|| format!("reading token file {}", f.display()))?),
        (None, None) => None,
    };
    cairn_server::client::find_token(explicit, &cli.data_dir())
}

/// The local store, or a connection to --server.
fn open_backend(cli: &Cli) -> Result<Backend> {
    let Some(addr) = &cli.server else { return Ok(Backend::Local(open_store(cli)?)) };
    let token = token(cli)?;
    let client = cairn_server::client::Client::connect_with(addr, &token, cli.tls_ca.as_deref())?;
    Ok(Backend::Remote { client, addr: addr.clone(), token, tls_ca: cli.tls_ca.clone() })
}

fn open_store(cli: &Cli) -> Result<Store> {
    let durability: Durability = cli.durability.parse()?;
    let dir = cli.data_dir();
    Store::open(&dir, Options { durability, segment_bytes: cli.segment_bytes, zstd_level: cli.zstd_level, ..Options::default() })
        .with_context(|| format!("opening the store in {}", dir.display()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.cmd {
        Command::Ingest { paths, batch, workers, output, ack_log } => {
            if *batch == 0 || *batch > cairn_engine::limits::BATCH_RECORDS_MAX {
                bail!("--batch {batch} must be between 1 and {}", cairn_engine::limits::BATCH_RECORDS_MAX);
            }
            let backend = open_backend(&cli)?;
            let args = ingest::IngestOptions {
                paths: paths.clone(),
                batch: *batch,
                workers: (*workers).max(1),
                ack_log: ack_log.clone(),
                quiet: cli.quiet,
            };
            let summary = ingest::run(&backend, &args)?;
            backend.close()?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
                Output::Table => {
                    eprintln!(
                        "cairn: {} records from {} input(s): {} stored, {} duplicates (already stored), {} rejected; {:.0} events/s, {:.1} MB/s",
                        summary.records,
                        summary.files,
                        summary.accepted,
                        summary.duplicates,
                        summary.rejected,
                        summary.events_per_sec,
                        summary.input_bytes as f64 / summary.seconds.max(1e-9) / 1e6
                    );
                    for (reason, n) in &summary.rejected_by_reason {
                        eprintln!("cairn:   rejected {n} x {reason}");
                    }
                    if summary.skipped > 0 {
                        eprintln!(
                            "cairn: {} stretch(es) of input held no record: {} line(s), {} bytes",
                            summary.skipped, summary.skipped_lines, summary.skipped_bytes
                        );
                        for (reason, n) in &summary.skipped_by_reason {
                            eprintln!("cairn:   skipped {n} x {reason}");
                        }
                    }
                }
            }
            Ok(if summary.incomplete() { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Get { event_id } => {
            let found = open_backend(&cli)?.get(event_id)?;
            let mut out = io::stdout().lock();
            for e in &found {
                out.write_all(&e.record)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            if found.is_empty() {
                eprintln!("cairn: no event with eventID {event_id:?}");
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Lookup { filters, max, next_token, all, output } => {
            let mut backend = open_backend(&cli)?;
            lookup(&mut backend, filters, *max, next_token.clone(), *all, *output)
        }
        Command::Count { by, rollup, filters, output } => {
            let mut backend = open_backend(&cli)?;
            let by = cairn_engine::Attr::parse(by)
                .ok_or_else(|| anyhow::anyhow!("InvalidLookupAttributesException: --by {by:?} is not an attribute"))?;
            let q = filters.query(now_ms())?;
            let counts = if *rollup { cairn_tools::cmd::rollup::count(&mut backend, &q, by)? } else { backend.count(&q, by)? };
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
        Command::Export { filters, format, out, oldest_first, bucket, trail } => {
            let mut backend = open_backend(&cli)?;
            let q = filters.query(now_ms())?;
            if *format == ExportFormatArg::Cloudtrail {
                let Some(dir) = out else { bail!("--format cloudtrail writes a directory tree: give --out DIR") };
                let args = cloudtrail::ExportOptions { out: dir, bucket: bucket.clone(), trail: trail.clone() };
                let s = cloudtrail::export_cloudtrail(&mut backend, &q, &args)?;
                backend.close()?;
                if !cli.quiet {
                    eprintln!(
                        "cairn: exported {} events to {} log files and {} digest files ({} streams, {} hours) in {}",
                        s.events,
                        s.log_files,
                        s.digest_files,
                        s.streams,
                        s.hours,
                        dir.display()
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let sink: Box<dyn Write> = match out {
                Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
                None => Box::new(io::stdout().lock()),
            };
            let fmt = match format {
                ExportFormatArg::Ndjson => query::ExportFormat::Ndjson,
                ExportFormatArg::Json => query::ExportFormat::Json,
                ExportFormatArg::Csv => query::ExportFormat::Csv,
                ExportFormatArg::Cloudtrail => unreachable!("handled above"),
            };
            let mut w = query::ExportWriter::new(io::BufWriter::with_capacity(1 << 20, sink), fmt)?;
            let progress = cairn_tools::progress::Progress::items("exporting", 0, cli.quiet || out.is_none());
            let order = if *oldest_first { cairn_engine::Order::OldestFirst } else { cairn_engine::Order::NewestFirst };
            backend.export(&q, order, |e| {
                w.write(&e)?;
                progress.inc(1);
                Ok(())
            })?;
            progress.finish();
            let n = w.finish()?;
            if !cli.quiet {
                eprintln!("cairn: exported {n} events");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail { filters, output } => {
            let Backend::Remote { mut client, .. } = open_backend(&cli)? else {
                bail!("tail follows a running cairnd: give --server ADDR (or CAIRN_SERVER)");
            };
            let q = filters.query(now_ms())?;
            let mut out = io::stdout().lock();
            if matches!(output, LookupOutput::Table) {
                writeln!(out, "{}", query::TABLE_HEADER)?;
            }
            client.tail(cairn_tools::backend::wire_query(&q), None, |e| {
                let e = cairn_engine::StoredEvent { seq: e.seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: e.record };
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
        Command::Token { cmd: TokenCmd::Create { role, name } } => {
            let role = cairn_server::protocol::Role::parse(role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
            let Backend::Remote { mut client, .. } = open_backend(&cli)? else {
                bail!("tokens belong to a cairnd server: give --server ADDR");
            };
            println!("{}", client.create_token(role, name)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Compact { target_mib, small_mib, all, level, block_kib, dictionary, dry_run, max_mb_per_sec, rollup, output } => {
            let mib = 1024 * 1024;
            let opts = cairn_server::protocol::WireCompact {
                target_bytes: target_mib.saturating_mul(mib),
                small_bytes: small_mib.saturating_mul(mib),
                all: *all,
                zstd_level: *level,
                block_bytes: block_kib.saturating_mul(1024),
                dictionary: *dictionary,
                dry_run: *dry_run,
                max_bytes_per_sec: max_mb_per_sec.saturating_mul(1_000_000),
            };
            let block_kib_max = (cairn_engine::compact::BLOCK_BYTES_MAX / 1024) as u64;
            if *target_mib == 0 || *block_kib == 0 || *block_kib > block_kib_max {
                bail!("--target-mib must be at least 1 and --block-kib between 1 and {block_kib_max}");
            }
            let report: cairn_engine::compact::CompactReport = match open_backend(&cli)? {
                Backend::Local(store) => {
                    let bar = cairn_tools::progress::Progress::bytes("compacting", 0, cli.quiet);
                    let mut sized = false;
                    let r = store.compact(&cairn_server::integrity::compact_options(&opts), &mut |done, total| {
                        if !sized {
                            bar.set_length(total);
                            sized = true;
                        }
                        bar.set_position(done);
                    })?;
                    bar.finish();
                    store.close()?;
                    r
                }
                Backend::Remote { mut client, .. } => client.compact(opts)?.into(),
            };
            let rolled: Option<cairn_engine::rollup::RollupReport> = if *rollup {
                let o = cairn_engine::rollup::RollupOptions { dry_run: *dry_run, ..Default::default() };
                Some(match open_backend(&cli)? {
                    Backend::Local(store) => {
                        let r = cairn_engine::rollup::rollup(&store, &o)?;
                        store.close()?;
                        r
                    }
                    Backend::Remote { mut client, .. } => client.rollup(None, None, *dry_run)?.into(),
                })
            } else {
                None
            };
            if let (Some(r), Output::Table) = (&rolled, output) {
                println!(
                    "rollups: {} data events in {} window records, {} {}, {} already stored",
                    r.data_events,
                    r.records,
                    if r.dry_run { "would append" } else { "appended" },
                    if r.dry_run { r.records - r.present } else { r.appended },
                    r.present
                );
            }
            match output {
                Output::Json if rolled.is_some() => {
                    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"compaction": report, "rollup": rolled}))?)
                }
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Table => {
                    let verb = if report.dry_run { "would merge" } else { "merged" };
                    for r in &report.runs {
                        println!(
                            "{verb} {} segments from seq {} ({} events): {} -> {} bytes",
                            r.segments,
                            r.first_seq,
                            r.events,
                            r.bytes_before,
                            if report.dry_run { "?".to_string() } else { r.bytes_after.to_string() }
                        );
                    }
                    let took = if report.dry_run {
                        " (dry run: nothing changed)".to_string()
                    } else {
                        format!(
                            ", {:.1} s ({:.0} MB/s of records)",
                            report.seconds,
                            report.record_bytes as f64 / report.seconds.max(1e-9) / 1e6
                        )
                    };
                    println!(
                        "segments {} -> {}, bytes {} -> {}{took}",
                        report.segments_before, report.segments_after, report.bytes_before, report.bytes_after,
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Retention { older_than, dry_run, output } => {
            let report: cairn_engine::retention::RetentionReport = match open_backend(&cli)? {
                Backend::Local(store) => {
                    let o =
                        cairn_engine::retention::RetentionOptions { older_than: *older_than, dry_run: *dry_run, stored_at_least: false };
                    let r = store.retain(&o)?;
                    store.close()?;
                    r
                }
                Backend::Remote { mut client, .. } => client.retain(older_than.as_secs(), *dry_run)?.into(),
            };
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
        Command::Insights { start, end, backfill, sensitivity, output } => {
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
            let report: cairn_server::protocol::WireInsightsReport = match open_backend(&cli)? {
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
                Output::Table => cairn_tools::cmd::insights::print_table(&report, &mut io::stdout().lock())?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Key { cmd } => {
            let mut backend = open_backend(&cli)?;
            let keys = match cmd {
                KeyCmd::Export { all } => {
                    let keys = backend.public_keys()?;
                    if *all {
                        keys
                    } else {
                        keys.last().cloned().into_iter().collect()
                    }
                }
                KeyCmd::Rotate => {
                    let keys = backend.rotate_key()?;
                    eprintln!("cairn: the store now signs with a new key; older checkpoints verify with the earlier keys (cairn key export --all)");
                    keys.last().cloned().into_iter().collect()
                }
            };
            backend.close()?;
            for k in keys {
                println!("{k}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint { output } => {
            let mut backend = open_backend(&cli)?;
            let note = backend.checkpoint()?;
            backend.close()?;
            let Some(note) = note else {
                eprintln!("cairn: the store is empty: there is no checkpoint yet");
                return Ok(ExitCode::from(1));
            };
            integrity::write_out(output.as_deref(), &note)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Proof { event_id, seq, checkpoint, out } => {
            let mut backend = open_backend(&cli)?;
            let n = integrity::proof(&mut backend, event_id.as_deref(), *seq, checkpoint.as_deref(), out.as_deref())?;
            backend.close()?;
            if n > 1 && !cli.quiet {
                eprintln!("cairn: {n} stored records have this eventID: one bundle each");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::VerifyProof { bundle, public_key } => {
            let keys = integrity::read_public_keys(public_key)?;
            match integrity::verify_proof(bundle, &keys)? {
                Ok(msg) => {
                    println!("{msg}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    println!("INVALID: {why}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Consistency { old, new, public_key, out } => {
            let old_text = std::fs::read_to_string(old).with_context(|| format!("reading {}", old.display()))?;
            let new_text =
                new.as_ref().map(|n| std::fs::read_to_string(n).with_context(|| format!("reading {}", n.display()))).transpose()?;
            let mut backend = open_backend(&cli)?;
            let mut keys = integrity::read_public_keys(public_key)?;
            if keys.is_empty() {
                keys = backend.public_keys()?.iter().map(|k| cairn_engine::Verifier::parse(k)).collect::<Result<_, _>>()?;
            }
            let bundle = match backend.consistency(&old_text, new_text.as_deref()) {
                Ok(b) => b,
                Err(e) => {
                    println!("INCONSISTENT: {e:#}");
                    return Ok(ExitCode::from(1));
                }
            };
            backend.close()?;
            if let Some(p) = out {
                integrity::write_out(Some(p), &format!("{bundle}\n"))?;
            }
            let b: cairn_engine::checkpoint::bundle::ConsistencyBundle = serde_json::from_str(&bundle)?;
            match b.verify(&keys) {
                Ok(v) => {
                    println!(
                        "consistent: log {} at size {} is a prefix of size {} (signed by {})",
                        v.origin, b.old_size, b.new_size, v.key
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    println!("INCONSISTENT: {why}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Verify { checkpoint, public_key, output } => {
            let checkpoints = checkpoint.iter().map(|p| integrity::read_checkpoint(p)).collect::<Result<Vec<_>>>()?;
            let keys = integrity::read_public_keys(public_key)?;
            let quiet = cli.quiet || matches!(output, Output::Json);
            let (report, seconds) = match &cli.server {
                None => {
                    let opts = cairn_engine::verify::VerifyOptions { checkpoints, public_keys: keys };
                    integrity::verify_local(&cli.data_dir(), &opts, quiet)?
                }
                Some(_) => {
                    let Backend::Remote { mut client, .. } = open_backend(&cli)? else { unreachable!("--server gives a remote backend") };
                    let started = std::time::Instant::now();
                    let bar = cairn_tools::progress::Progress::bytes("verifying", 0, quiet);
                    let mut sized = false;
                    let w = client.verify(
                        checkpoints.iter().map(|c| c.note.clone()).collect(),
                        keys.iter().map(|k| k.encode()).collect(),
                        |done, total| {
                            if !sized {
                                bar.set_length(total);
                                sized = true;
                            }
                            bar.set_position(done);
                        },
                    )?;
                    bar.finish();
                    (cairn_server::integrity::report_from_wire(w), started.elapsed().as_secs_f64())
                }
            };
            let ok = integrity::print_report(&report, seconds, matches!(output, Output::Json))?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::VerifyExport { dir, public_key, output } => {
            let keys = integrity::read_public_keys(public_key)?;
            let c = cloudtrail::verify_export(dir, &keys)?;
            let ok = c.problems.is_empty();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&c)?),
                Output::Table => {
                    for p in &c.problems {
                        println!("{p}");
                    }
                    println!("{}/{} digest files valid, {}/{} log files valid", c.digests_valid, c.digests, c.log_files_valid, c.log_files);
                    println!("{}", if ok { "ok" } else { "FAILED" });
                }
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Stats { output } => {
            let (stats, server) = open_backend(&cli)?.stats()?;
            print_stats(&stats, server, *output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gen { count, seed, start, rate, record_bytes, profile, out } => {
            if !(*rate > 0.0 && rate.is_finite()) {
                bail!("--rate {rate} must be a positive number of events per second");
            }
            if record_bytes.is_some() && *profile != Profile::Standard {
                bail!("--record-bytes pads the standard profile only; the {} profile has natural sizes", profile.name());
            }
            let start_ms = parse_start(start)?;
            let mut gen =
                Generator::new(GenOptions { seed: *seed, start_ms, rate_per_sec: *rate, record_bytes: *record_bytes, profile: *profile });
            let sink: Box<dyn Write> = match out {
                Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
                None => Box::new(io::stdout().lock()),
            };
            let mut w = io::BufWriter::with_capacity(1 << 20, sink);
            let mut buf = Vec::with_capacity(4096);
            for _ in 0..*count {
                buf.clear();
                gen.next_record(&mut buf);
                buf.push(b'\n');
                w.write_all(&buf)?;
            }
            w.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { events, duration, batch, clients, record_bytes, seed, no_insights, compact, profile, output } => {
            // Bench uses a temporary directory unless one is named, or a
            // server with --server.
            let data_dir = cli.data_dir.clone();
            let server = match &cli.server {
                Some(addr) => Some((addr.clone(), token(&cli)?, cli.tls_ca.clone())),
                None => None,
            };
            let profiles: &[Profile] = match profile {
                BenchProfile::Standard => &[Profile::Standard],
                BenchProfile::Diverse => &[Profile::Diverse],
                BenchProfile::Both => &[Profile::Standard, Profile::Diverse],
            };
            if record_bytes.is_some() && profiles.contains(&Profile::Diverse) {
                bail!("--record-bytes pads the standard profile only; the diverse profile has natural sizes");
            }
            let mut reports = Vec::new();
            for &p in profiles {
                let report = bench::run(&bench::BenchOptions {
                    server: server.clone(),
                    // A fresh store per profile when both run in one directory.
                    data_dir: data_dir.as_ref().map(|d| if profiles.len() > 1 { d.join(p.name()) } else { d.clone() }),
                    events: *events,
                    duration: *duration,
                    batch: *batch,
                    clients: *clients,
                    record_bytes: *record_bytes,
                    durability: cli.durability.parse()?,
                    seed: *seed,
                    zstd_level: cli.zstd_level,
                    segment_bytes: cli.segment_bytes,
                    insights: !*no_insights,
                    compact: *compact,
                    profile: p,
                })?;
                if matches!(output, Output::Table) {
                    if !reports.is_empty() {
                        println!();
                    }
                    bench::print_table(&report);
                }
                reports.push(report);
            }
            if matches!(output, Output::Json) {
                let v = match reports.as_slice() {
                    [one] => serde_json::to_value(one)?,
                    many => serde_json::Value::Object(
                        many.iter().map(|r| Ok((r.profile.to_string(), serde_json::to_value(r)?))).collect::<Result<_>>()?,
                    ),
                };
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A duration such as `600`, `90s`, `10m`, `1h` or `90d` (seconds without
/// a unit).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.trim().split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration (e.g. 90s, 10m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err("the duration must be at least 1 s".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn lookup(store: &mut Backend, f: &Filters, max: usize, mut token: Option<String>, all: bool, output: LookupOutput) -> Result<ExitCode> {
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

/// `--start`: RFC 3339, a date (midnight UTC), or `now`.
fn parse_start(s: &str) -> Result<i64> {
    if s == "now" {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        return Ok(now.as_millis() as i64);
    }
    if let Some(ms) = parse_event_time(s) {
        return Ok(ms);
    }
    if let Some(ms) = parse_event_time(&format!("{s}T00:00:00Z")) {
        return Ok(ms);
    }
    bail!("--start {s:?} is not a time: use RFC 3339 (2026-01-01T00:00:00Z), a date (2026-01-01) or `now`")
}

fn print_stats(s: &cairn_engine::Stats, server: Option<ServerView>, output: Output) -> Result<()> {
    let per_event = |b: u64| if s.events == 0 { 0.0 } else { b as f64 / s.events as f64 };
    let root = hex::encode(s.root);
    let time = |t: Option<i64>| t.map(format_event_time);
    match output {
        Output::Json => {
            let v = serde_json::json!({
                "events": s.events,
                "sealed_events": s.sealed_events,
                "segments": s.segments,
                "record_bytes": s.record_bytes,
                "disk_bytes": s.disk_bytes,
                "segment_bytes": s.segment_bytes,
                "wal_bytes": s.wal_bytes,
                "tile_bytes": s.tile_bytes,
                "bytes_per_event": per_event(s.disk_bytes),
                "oldest_event_time": time(s.min_time_ms),
                "newest_event_time": time(s.max_time_ms),
                "tree_size": s.tree_size,
                "root": root,
                "server": server.map(|v| serde_json::json!({
                    "connections": v.connections,
                    "appended_since_start": v.appended,
                    "uptime_ms": v.uptime_ms,
                    "ingest_events_per_sec": v.appended as f64 / (v.uptime_ms.max(1) as f64 / 1000.0),
                })),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Output::Table => {
            println!(
                "events        {} ({} sealed in {} segments, {} in the active segment)",
                s.events,
                s.sealed_events,
                s.segments,
                s.events - s.sealed_events
            );
            println!("record bytes  {}", s.record_bytes);
            println!(
                "disk bytes    {} ({:.1} bytes/event; segments {}, wal {}, tiles {})",
                s.disk_bytes,
                per_event(s.disk_bytes),
                s.segment_bytes,
                s.wal_bytes,
                s.tile_bytes
            );
            match (time(s.min_time_ms), time(s.max_time_ms)) {
                (Some(a), Some(b)) => println!("event time    {a} .. {b}"),
                _ => println!("event time    (no events)"),
            }
            println!("tree size     {}", s.tree_size);
            println!("root          {root}");
            if let Some(v) = server {
                let rate = v.appended as f64 / (v.uptime_ms.max(1) as f64 / 1000.0);
                println!(
                    "server        {} connections, {} events appended in {:.0} s ({rate:.0} events/s)",
                    v.connections,
                    v.appended,
                    v.uptime_ms as f64 / 1000.0
                );
            }
        }
    }
    Ok(())
}
