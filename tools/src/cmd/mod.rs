//! The `cairn` subcommands, as library functions so tests can call them.
//!
//! Each module holds one command's (or a few related commands') clap
//! arguments, the code that runs it, and its exit status; `main.rs` only
//! parses and dispatches. The options every command takes are [`Global`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cairn_engine::{Durability, Options, Store};

use crate::backend::Backend;

pub mod bench;
pub mod bench_api;
pub mod bench_deliver;
pub mod bench_sql;
pub mod channel;
pub mod cloudtrail;
pub mod compact;
pub mod count;
pub mod deliver;
pub mod export;
pub mod gen;
pub mod get;
pub mod ingest;
pub mod insights;
pub mod integrity;
pub mod key;
pub mod lookup;
pub mod query;
pub mod retention;
pub mod rollup;
pub mod sql;
pub mod stats;
pub mod tail;
pub mod token;
pub mod verify_export;

/// The options of every command (flattened into the top-level parser).
#[derive(clap::Args)]
pub struct Global {
    /// The store's data directory [default: ./cairn-data].
    #[arg(long, global = true, env = "CAIRN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// When appends are acknowledged: `always` (fsync per append), `batch`
    /// (group commit: concurrent appends share one fsync), `never` (no fsync
    /// before acknowledging; a machine crash can lose acknowledged events).
    #[arg(long, global = true, env = "CAIRN_DURABILITY", default_value = "batch", value_parser = ["always", "batch", "never"])]
    pub durability: String,
    /// Roll the active segment into a sealed one at this many WAL bytes.
    #[arg(long, global = true, env = "CAIRN_SEGMENT_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub segment_bytes: u64,
    /// zstd level for sealed segments (higher: smaller and slower to seal).
    #[arg(long, global = true, env = "CAIRN_ZSTD_LEVEL", default_value_t = Options::default().zstd_level, allow_hyphen_values = true)]
    pub zstd_level: i32,
    /// Seal records field by field (`true`: smaller sealed segments) or
    /// keep them whole (`false`: about a fifth less CPU at ingest, larger
    /// segments until `cairn compact --all` splits them).
    #[arg(long, global = true, env = "CAIRN_SEAL_FIELDS", default_value_t = true, action = clap::ArgAction::Set)]
    pub seal_fields: bool,
    /// Run against a cairnd server (host:port) instead of a local data directory.
    #[arg(long, global = true, env = "CAIRN_SERVER")]
    pub server: Option<String>,
    /// Access token for --server (default: the local server's admin token file).
    #[arg(long, global = true, env = "CAIRN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the access token from this file.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Connect to --server over TLS, trusting the CA certificates in this PEM file.
    #[arg(long, global = true, env = "CAIRN_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// No progress bars or per-record messages.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

impl Global {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from("./cairn-data"))
    }

    /// The token for --server: --token, --token-file, CAIRN_TOKEN, or the local
    /// server's admin token file.
    pub fn token(&self) -> Result<String> {
        let explicit = match (&self.token, &self.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(std::fs::read_to_string(f).with_context(|| format!("reading token file {}", f.display()))?),
            (None, None) => None,
        };
        cairn_server::client::find_token(explicit, &self.data_dir())
    }

    /// The local store, or a connection to --server.
    pub fn open_backend(&self) -> Result<Backend> {
        let Some(addr) = &self.server else { return Ok(Backend::Local(self.open_store()?)) };
        let token = self.token()?;
        let client = cairn_server::client::Client::connect_with(addr, &token, self.tls_ca.as_deref())?;
        Ok(Backend::Remote { client, addr: addr.clone(), token, tls_ca: self.tls_ca.clone() })
    }

    pub fn open_store(&self) -> Result<Store> {
        let durability: Durability = self.durability.parse()?;
        let dir = self.data_dir();
        Store::open(
            &dir,
            Options {
                durability,
                segment_bytes: self.segment_bytes,
                zstd_level: self.zstd_level,
                seal_fields: self.seal_fields,
                ..Options::default()
            },
        )
        .with_context(|| format!("opening the store in {}", dir.display()))
    }
}

/// `--output` of the commands that print a report.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// A duration such as `600`, `90s`, `10m`, `1h` or `90d` (seconds without
/// a unit).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
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

/// Where `--out FILE` sends output: a new file, or stdout.
pub fn file_or_stdout(out: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(io::stdout().lock()),
    })
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
