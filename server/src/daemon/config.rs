//! cairnd's settings: flags, `CAIRN_*` environment variables, the
//! `--config` TOML file and the defaults, in that order of precedence,
//! resolved into a [`Config`] with every value checked.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

use crate::daemon::Config;

const AFTER_HELP: &str = "\
Every flag has a CAIRN_* environment variable and a key in the --config file, e.g.:

  # cairnd.toml
  data_dir = \"/var/lib/cairn\"
  listen = \"127.0.0.1:7878\"
  durability = \"batch\"        # always | batch | never
  connections_max = 256
  idle_timeout_secs = 300
  frame_bytes_max = 16777216
  checkpoint_interval_secs = 60  # signed checkpoints while events arrive (and at every seal)
  retention_days = 90            # remove segments older than this (0: keep everything)
  compaction = true              # merge small segments in the background
  compaction_max_mb_per_sec = 32 # ... leaving CPU and disk to ingest
  seal_fields = true             # seal records field by field (false: less CPU at ingest, larger segments until `cairn compact --all`)
  maintenance_interval_secs = 600
  rollups = false                # write 5-minute rollups of data events at each maintenance run
  insights = true                # record unusual call volumes and error rates as Insight events
  insights_interval_secs = 60
  insights_lookback_hours = 24
  insights_sensitivity = 6.0     # band width in standard deviations (lower finds more)
  insecure = false
  tls_cert = \"/etc/cairn/cert.pem\"  # serve TLS (clients: cairn --tls-ca CA.pem)
  tls_key = \"/etc/cairn/key.pem\"
  http_listen = \"127.0.0.1:7879\"  # CloudTrail's own API for the AWS CLI and SDKs (off by default)
  http_region = \"us-east-1\"       # refuse SigV4 scopes naming another region (default: any)
  account_id = \"123456789012\"     # the trail's account in its ARN (default: 000000000000)
  trail_name = \"cairn\"            # the trail's name (one per node delivering into a shared bucket)
  deliver = \"s3://bucket/prefix\"  # deliver CloudTrail log files and signed digests (off by default)
  deliver_endpoint = \"http://127.0.0.1:9000\"  # an S3-compatible server (else AWS_ENDPOINT_URL_S3)
  deliver_virtual_hosted = false    # bucket.host requests to that endpoint (default: path-style)
  deliver_interval_secs = 300       # log files at most this often (CloudTrail: about 5 minutes)
  digest_interval_secs = 3600       # one signed digest per account and region per interval
  deliver_parquet = true            # also Parquet in CloudTrail Lake's columns, for Athena/Trino/DuckDB
  deliver_parquet_compact_after_secs = 3600  # merge a partition's small Parquet files once it is this quiet
  query_concurrency = 4             # SQL queries (StartQuery) running at once; more are refused
  query_memory_mib = 512            # memory for their sorts, joins and aggregations, shared
  query_timeout_secs = 3600         # a query still running then ends TIMED_OUT (Lake: 1 hour)
  query_results_mib = 64            # a query's results kept for GetQueryResults, at most

Logs go to stderr; CAIRN_LOG=debug (or warn, ...) sets the level.
Stops gracefully on SIGINT or SIGTERM: in-flight appends finish, the store is fsynced and closed.";

/// Cairn's storage daemon: agents append audit events over TCP, people query with `cairn --server`.
#[derive(Parser)]
#[command(name = "cairnd", version, after_help = AFTER_HELP)]
pub struct Args {
    /// A TOML file with any of the settings below.
    #[arg(long, env = "CAIRN_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory (created if missing) [default: ./cairn-data].
    #[arg(long, env = "CAIRN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878].
    #[arg(long, env = "CAIRN_LISTEN")]
    listen: Option<String>,
    /// When appends are acknowledged: always, batch (group commit), never [default: batch].
    #[arg(long, env = "CAIRN_DURABILITY", value_parser = ["always", "batch", "never"])]
    durability: Option<String>,
    /// Accept plaintext connections on a non-loopback address.
    #[arg(long, env = "CAIRN_INSECURE")]
    insecure: bool,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "CAIRN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, env = "CAIRN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also serve CloudTrail's own HTTP API (LookupEvents, ...) on this
    /// address, for the AWS CLI and SDKs: `aws cloudtrail lookup-events
    /// --endpoint-url http://ADDR`. Requests are signed with SigV4 keys from
    /// `cairn token create --aws`; TLS and limits are the daemon's [default: off].
    #[arg(long, env = "CAIRN_HTTP_LISTEN")]
    http_listen: Option<String>,
    /// Accept only SigV4 signatures scoped to this region [default: any region].
    #[arg(long, env = "CAIRN_HTTP_REGION")]
    http_region: Option<String>,
    /// The account id in the trail's ARN (DescribeTrails,
    /// `aws cloudtrail validate-logs --trail-arn`), 12 digits
    /// [default: 000000000000].
    #[arg(long, env = "CAIRN_ACCOUNT_ID")]
    account_id: Option<String>,
    /// The trail's name: in its ARN, DescribeTrails and digest file names.
    /// Give each cairnd delivering into one bucket its own [default: cairn].
    #[arg(long, env = "CAIRN_TRAIL_NAME")]
    trail_name: Option<String>,
    /// With --deliver, also write the events as Parquet in CloudTrail
    /// Lake's columns under PREFIX/parquet/account=/region=/date=/, for
    /// Athena, Trino, Spark and DuckDB: true or false [default: true].
    #[arg(long, env = "CAIRN_DELIVER_PARQUET")]
    deliver_parquet: Option<bool>,
    /// Merge a Parquet partition's small files (one per delivery round)
    /// into files of about 128 MiB once no new file has reached it for
    /// this many seconds (past days, in practice) [default: 3600].
    #[arg(long, env = "CAIRN_DELIVER_PARQUET_COMPACT_AFTER_SECS")]
    deliver_parquet_compact_after_secs: Option<u64>,
    /// Deliver the store to S3 as CloudTrail delivers a trail: gzip log
    /// files every --deliver-interval-secs and signed hourly digests that
    /// `aws cloudtrail validate-logs` verifies, exactly once, resuming
    /// after restarts. Credentials and region come from the AWS
    /// environment variables (AWS_ACCESS_KEY_ID, ...), else the AWS CLI's
    /// profile files (AWS_PROFILE, ~/.aws/credentials, ~/.aws/config),
    /// else the instance's role. Memory: a backlog is delivered in rounds
    /// of up to 256 MiB of records, and a round takes about 1.2 GB at its
    /// peak; it is given back once delivery has caught up [default: off].
    #[arg(long, env = "CAIRN_DELIVER", value_name = "s3://BUCKET[/PREFIX]")]
    deliver: Option<String>,
    /// The URL of an S3-compatible server to deliver to [default:
    /// AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS S3].
    #[arg(long, env = "CAIRN_DELIVER_ENDPOINT")]
    deliver_endpoint: Option<String>,
    /// Virtual-hosted-style requests (http://BUCKET.host/KEY) to
    /// --deliver-endpoint instead of path-style: true or false [default: false].
    #[arg(long, env = "CAIRN_DELIVER_VIRTUAL_HOSTED")]
    deliver_virtual_hosted: Option<bool>,
    /// Deliver log files at most this often, in seconds [default: 300].
    #[arg(long, env = "CAIRN_DELIVER_INTERVAL_SECS")]
    deliver_interval_secs: Option<u64>,
    /// Write each account and region's signed digest this often, in
    /// seconds [default: 3600, as CloudTrail].
    #[arg(long, env = "CAIRN_DIGEST_INTERVAL_SECS")]
    digest_interval_secs: Option<u64>,
    /// SQL queries (the HTTP API's StartQuery) running at once; more are
    /// refused with MaxConcurrentQueriesException [default: 4].
    #[arg(long, env = "CAIRN_QUERY_CONCURRENCY")]
    query_concurrency: Option<usize>,
    /// Memory for the running queries' sorts, joins and aggregations
    /// together, in MiB; a query that needs more fails [default: 512].
    /// Per query, it also bounds the values built by functions that can
    /// grow them (repeat(), lpad(), range(), replace(), concat(), ...):
    /// each call over a batch of rows may build this over the query's
    /// threads and its number of such calls (docs/HTTP-API.md says what
    /// it does not bound).
    #[arg(long, env = "CAIRN_QUERY_MEMORY_MIB")]
    query_memory_mib: Option<usize>,
    /// A query still running after this many seconds ends TIMED_OUT, its
    /// rows so far readable [default: 3600, as Lake].
    #[arg(long, env = "CAIRN_QUERY_TIMEOUT_SECS")]
    query_timeout_secs: Option<u64>,
    /// A query's results kept for GetQueryResults, in MiB of values; a
    /// query with more fails and says so [default: 64].
    #[arg(long, env = "CAIRN_QUERY_RESULTS_MIB")]
    query_results_mib: Option<usize>,
    /// Most simultaneous connections [default: 256].
    #[arg(long, env = "CAIRN_CONNECTIONS_MAX")]
    connections_max: Option<usize>,
    /// Close connections idle this many seconds [default: 300].
    #[arg(long, env = "CAIRN_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Largest frame accepted, in bytes [default: 16777216].
    #[arg(long, env = "CAIRN_FRAME_BYTES_MAX")]
    frame_bytes_max: Option<u32>,
    /// Sign a checkpoint this often while events arrive, besides one at
    /// every seal [default: 60].
    #[arg(long, env = "CAIRN_CHECKPOINT_INTERVAL_SECS")]
    checkpoint_interval_secs: Option<u64>,
    /// Remove segments whose events are all older than this many days (0:
    /// keep everything) [default: 90].
    #[arg(long, env = "CAIRN_RETENTION_DAYS")]
    retention_days: Option<u64>,
    /// Merge small segments in the background: true or false [default: true].
    #[arg(long, env = "CAIRN_COMPACTION")]
    compaction: Option<bool>,
    /// Background compaction reads at most this many MB/s [default: 32].
    #[arg(long, env = "CAIRN_COMPACTION_MAX_MB_PER_SEC")]
    compaction_max_mb_per_sec: Option<u64>,
    /// How often compaction and retention run, in seconds [default: 600].
    #[arg(long, env = "CAIRN_MAINTENANCE_INTERVAL_SECS")]
    maintenance_interval_secs: Option<u64>,
    /// Write 5-minute rollups of data events (`cairn count --rollup`) at
    /// each maintenance run: true or false [default: false].
    #[arg(long, env = "CAIRN_ROLLUPS")]
    rollups: Option<bool>,
    /// Seal records field by field (smaller sealed segments), or keep them
    /// whole (false: about a fifth less CPU at ingest, larger segments
    /// until `cairn compact --all` splits them; background compaction
    /// rewrites only small segments) [default: true].
    #[arg(long, env = "CAIRN_SEAL_FIELDS")]
    seal_fields: Option<bool>,
    /// Look for unusual call volumes and error rates and record them as
    /// Insight events (docs/INSIGHTS.md): true or false [default: true].
    #[arg(long, env = "CAIRN_INSIGHTS")]
    insights: Option<bool>,
    /// How often the Insights pass runs, in seconds [default: 60].
    #[arg(long, env = "CAIRN_INSIGHTS_INTERVAL_SECS")]
    insights_interval_secs: Option<u64>,
    /// Each pass records insights that started in this many past hours
    /// [default: 24]. Use `cairn insights --backfill` for older history.
    #[arg(long, env = "CAIRN_INSIGHTS_LOOKBACK_HOURS")]
    insights_lookback_hours: Option<u64>,
    /// The detector's band width in standard deviations; lower finds more
    /// (0.5 to 100) [default: 6].
    #[arg(long, env = "CAIRN_INSIGHTS_SENSITIVITY")]
    insights_sensitivity: Option<f64>,
}

/// The config file: the same settings, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    durability: Option<String>,
    insecure: Option<bool>,
    connections_max: Option<usize>,
    idle_timeout_secs: Option<u64>,
    frame_bytes_max: Option<u32>,
    checkpoint_interval_secs: Option<u64>,
    retention_days: Option<u64>,
    compaction: Option<bool>,
    compaction_max_mb_per_sec: Option<u64>,
    maintenance_interval_secs: Option<u64>,
    rollups: Option<bool>,
    seal_fields: Option<bool>,
    insights: Option<bool>,
    insights_interval_secs: Option<u64>,
    insights_lookback_hours: Option<u64>,
    insights_sensitivity: Option<f64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    http_listen: Option<String>,
    http_region: Option<String>,
    account_id: Option<String>,
    trail_name: Option<String>,
    deliver_parquet: Option<bool>,
    deliver_parquet_compact_after_secs: Option<u64>,
    deliver: Option<String>,
    deliver_endpoint: Option<String>,
    deliver_virtual_hosted: Option<bool>,
    deliver_interval_secs: Option<u64>,
    digest_interval_secs: Option<u64>,
    query_concurrency: Option<usize>,
    query_memory_mib: Option<usize>,
    query_timeout_secs: Option<u64>,
    query_results_mib: Option<usize>,
}

/// An interval setting in seconds: at least 1, or the default.
fn interval(name: &str, secs: Option<u64>, default: Duration) -> anyhow::Result<Duration> {
    match secs {
        Some(0) => anyhow::bail!("{name} must be at least 1"),
        Some(s) => Ok(Duration::from_secs(s)),
        None => Ok(default),
    }
}

/// The settings `a` and its config file give, checked.
pub fn resolve(a: &Args) -> anyhow::Result<Config> {
    let file: FileConfig = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?;
            parse_file(&text).with_context(|| format!("config file {}", p.display()))?
        }
        None => FileConfig::default(),
    };
    merge(a, file)
}

/// Parses a config file's text (unknown keys are errors).
pub fn parse_file(text: &str) -> anyhow::Result<FileConfig> {
    Ok(toml::from_str(text)?)
}

fn merge(a: &Args, file: FileConfig) -> anyhow::Result<Config> {
    let d = Config::default();
    let durability = a.durability.clone().or(file.durability);
    Ok(Config {
        data_dir: a.data_dir.clone().or(file.data_dir).unwrap_or(d.data_dir),
        listen: a.listen.clone().or(file.listen).unwrap_or(d.listen),
        durability: match durability {
            Some(s) => s.parse()?,
            None => d.durability,
        },
        frame_bytes_max: a.frame_bytes_max.or(file.frame_bytes_max).unwrap_or(d.frame_bytes_max),
        connections_max: a.connections_max.or(file.connections_max).unwrap_or(d.connections_max),
        idle_timeout: a.idle_timeout_secs.or(file.idle_timeout_secs).map_or(d.idle_timeout, Duration::from_secs),
        insecure: a.insecure || file.insecure.unwrap_or(false),
        checkpoint_interval: interval(
            "checkpoint_interval_secs",
            a.checkpoint_interval_secs.or(file.checkpoint_interval_secs),
            d.checkpoint_interval,
        )?,
        retention_days: a.retention_days.or(file.retention_days).unwrap_or(d.retention_days),
        compaction: a.compaction.or(file.compaction).unwrap_or(d.compaction),
        compaction_max_mb_per_sec: a.compaction_max_mb_per_sec.or(file.compaction_max_mb_per_sec).unwrap_or(d.compaction_max_mb_per_sec),
        maintenance_interval: interval(
            "maintenance_interval_secs",
            a.maintenance_interval_secs.or(file.maintenance_interval_secs),
            d.maintenance_interval,
        )?,
        rollups: a.rollups.or(file.rollups).unwrap_or(d.rollups),
        seal_fields: a.seal_fields.or(file.seal_fields).unwrap_or(d.seal_fields),
        insights: a.insights.or(file.insights).unwrap_or(d.insights),
        insights_interval: interval(
            "insights_interval_secs",
            a.insights_interval_secs.or(file.insights_interval_secs),
            d.insights_interval,
        )?,
        insights_lookback: match a.insights_lookback_hours.or(file.insights_lookback_hours) {
            Some(h) if !(1..=24 * 28).contains(&h) => anyhow::bail!("insights_lookback_hours must be 1 to 672 (28 days), not {h}"),
            Some(h) => Duration::from_secs(h * 3600),
            None => d.insights_lookback,
        },
        insights_sensitivity: match a.insights_sensitivity.or(file.insights_sensitivity) {
            Some(k) if !(0.5..=100.0).contains(&k) => anyhow::bail!("insights_sensitivity must be 0.5 to 100, not {k}"),
            Some(k) => k,
            None => d.insights_sensitivity,
        },
        tls: match (a.tls_cert.clone().or(file.tls_cert), a.tls_key.clone().or(file.tls_key)) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => anyhow::bail!("TLS needs both a certificate (tls_cert) and a key (tls_key)"),
        },
        http_listen: a.http_listen.clone().or(file.http_listen),
        http_region: a.http_region.clone().or(file.http_region),
        account_id: match a.account_id.clone().or(file.account_id) {
            Some(id) if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) => {
                anyhow::bail!("account_id must be 12 digits (an AWS account id), not {id:?}")
            }
            Some(id) => id,
            None => d.account_id,
        },
        trail_name: match a.trail_name.clone().or(file.trail_name) {
            Some(n)
                if !(3..=128).contains(&n.len())
                    || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
                    || !n.as_bytes()[0].is_ascii_alphanumeric() =>
            {
                anyhow::bail!(
                    "trail_name {n:?}: CloudTrail's rule is 3-128 of letters, digits, '.', '_' and '-', starting with a letter or digit"
                )
            }
            Some(n) => n,
            None => d.trail_name,
        },
        deliver_parquet: a.deliver_parquet.or(file.deliver_parquet).unwrap_or(d.deliver_parquet),
        deliver_parquet_compact_after: interval(
            "deliver_parquet_compact_after_secs",
            a.deliver_parquet_compact_after_secs.or(file.deliver_parquet_compact_after_secs),
            d.deliver_parquet_compact_after,
        )?,
        deliver: match a.deliver.clone().or(file.deliver) {
            Some(t) => Some(t.parse()?),
            None => None,
        },
        deliver_endpoint: a.deliver_endpoint.clone().or(file.deliver_endpoint),
        deliver_virtual_hosted: a.deliver_virtual_hosted.or(file.deliver_virtual_hosted).unwrap_or(false),
        deliver_interval: interval("deliver_interval_secs", a.deliver_interval_secs.or(file.deliver_interval_secs), d.deliver_interval)?,
        digest_interval: interval("digest_interval_secs", a.digest_interval_secs.or(file.digest_interval_secs), d.digest_interval)?,
        query_concurrency: match a.query_concurrency.or(file.query_concurrency) {
            Some(n) if !(1..=64).contains(&n) => anyhow::bail!("query_concurrency must be 1 to 64, not {n}"),
            Some(n) => n,
            None => d.query_concurrency,
        },
        query_memory_bytes: match a.query_memory_mib.or(file.query_memory_mib) {
            Some(n) if !(16..=1 << 20).contains(&n) => anyhow::bail!("query_memory_mib must be 16 to 1048576, not {n}"),
            Some(n) => n << 20,
            None => d.query_memory_bytes,
        },
        query_timeout: interval("query_timeout_secs", a.query_timeout_secs.or(file.query_timeout_secs), d.query_timeout)?,
        query_results_bytes: match a.query_results_mib.or(file.query_results_mib) {
            Some(n) if !(1..=1 << 14).contains(&n) => anyhow::bail!("query_results_mib must be 1 to 16384, not {n}"),
            Some(n) => n << 20,
            None => d.query_results_bytes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the config file sets what flags do not; flags win; unknown keys
    // and bad values are named; the example file --help shows parses.
    #[test]
    fn config_file_and_precedence() {
        let dir = std::env::temp_dir().join(format!("cairnd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cairnd.toml");
        std::fs::write(&p, "data_dir = \"/srv/cairn\"\nlisten = \"127.0.0.1:9000\"\ndurability = \"always\"\nconnections_max = 7\n")
            .unwrap();
        let a = Args::parse_from(["cairnd", "--config", p.to_str().unwrap(), "--listen", "127.0.0.1:9100"]);
        let c = resolve(&a).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/cairn"));
        assert_eq!(c.listen, "127.0.0.1:9100");
        assert_eq!(c.durability, cairn_engine::Durability::Always);
        assert_eq!(c.connections_max, 7);
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert!(c.seal_fields);
        std::fs::write(&p, "seal_fields = false\n").unwrap();
        assert!(!resolve(&Args::parse_from(["cairnd", "--config", p.to_str().unwrap()])).unwrap().seal_fields);
        let flag = Args::parse_from(["cairnd", "--config", p.to_str().unwrap(), "--seal-fields", "true"]);
        assert!(resolve(&flag).unwrap().seal_fields, "a flag overrides the file");
        // The example file --help shows is a valid config file.
        let example: String = AFTER_HELP
            .lines()
            .skip_while(|l| !l.contains("# cairnd.toml"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(|l| format!("{}\n", l.trim()))
            .collect();
        assert!(example.lines().count() > 30, "{example}");
        parse_file(&example).unwrap_or_else(|e| panic!("{e:#}\n{example}"));
        std::fs::write(&p, "listne = \"x\"\n").unwrap();
        let err = format!("{:#}", resolve(&Args::parse_from(["cairnd", "--config", p.to_str().unwrap()])).unwrap_err());
        assert!(err.contains("listne"), "{err}");
        std::fs::write(&p, "durability = \"sometimes\"\n").unwrap();
        assert!(resolve(&Args::parse_from(["cairnd", "--config", p.to_str().unwrap()])).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
