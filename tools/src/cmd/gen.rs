//! `cairn gen`: synthetic CloudTrail records as NDJSON.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use cairn_engine::event::parse_event_time;

use super::file_or_stdout;
use crate::gen::{GenOptions, Generator, Profile};

/// Write realistic synthetic CloudTrail records as NDJSON (deterministic for a seed).
///
/// Real API names with a skewed distribution, several accounts, users and
/// roles, ~3% errors, console sign-ins, sizes around 1-2 KB with a long
/// tail, and slightly out-of-order event times.
#[derive(clap::Args)]
pub struct GenArgs {
    /// How many records.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// eventTime of the first record: RFC 3339 (2026-01-01T00:00:00Z), a date, or `now`.
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: String,
    /// Mean events per second of event time.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Pad records to about this many bytes (standard profile).
    #[arg(long)]
    pub record_bytes: Option<usize>,
    /// The kind of trail: standard (135 APIs, stable principals) or
    /// diverse (293 APIs, short-lived sessions, varied values; closer to
    /// a large organisation's trail).
    #[arg(long, value_enum, default_value_t = Profile::Standard)]
    pub profile: Profile,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl GenArgs {
    pub fn run(&self) -> Result<ExitCode> {
        let Self { count, seed, start, rate, record_bytes, profile, out } = self;
        if !(*rate > 0.0 && rate.is_finite()) {
            bail!("--rate {rate} must be a positive number of events per second");
        }
        if record_bytes.is_some() && *profile != Profile::Standard {
            bail!("--record-bytes pads the standard profile only; the {} profile has natural sizes", profile.name());
        }
        let start_ms = parse_start(start)?;
        let mut gen =
            Generator::new(GenOptions { seed: *seed, start_ms, rate_per_sec: *rate, record_bytes: *record_bytes, profile: *profile });
        let sink = file_or_stdout(out.as_deref())?;
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
}

/// `--start`: RFC 3339, a date (midnight UTC), or `now`.
pub fn parse_start(s: &str) -> Result<i64> {
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
