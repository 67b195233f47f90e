//! Cairn against SQLite on the same generated records, in one run on one
//! machine, so that "Cairn vs SQLite" can be rerun by anyone with one
//! command:
//!
//! ```sh
//! cargo run --release -p cairn-compare --features sqlite -- --profile diverse
//! ```
//!
//! Both get the same records, in batches of 1,000, durable per batch:
//! Cairn with its default durability (`batch`: group commit, fsync before
//! the acknowledgement), SQLite in WAL mode with `synchronous=FULL` (each
//! transaction fsynced) and one transaction per batch. SQLite stores the
//! record and the fields the queries use (parsed with Cairn's own parser,
//! so both do the same parsing), indexed on eventTime, eventID and
//! eventName. Figures: durable ingest (events/s), bytes on disk per event,
//! a count by eventName over everything, the newest 50 events of the last
//! hour, and an eventID lookup (medians). Without `--features sqlite` only
//! Cairn's figures are printed.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use cairn_engine::{Attr, Options, Query, Store};
use cairn_tools::gen::{GenOptions, Generator, Profile};
use clap::Parser;

/// Cairn against SQLite on the same generated records.
#[derive(Parser)]
struct Args {
    /// The generated data (see `cairn gen --help`).
    #[arg(long, value_enum, default_value_t = Profile::Diverse)]
    profile: Profile,
    /// How many events.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Spread over this many days of event time.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// One store's figures.
#[derive(Debug, serde::Serialize)]
struct Figures {
    store: &'static str,
    ingest_events_per_sec: f64,
    bytes_per_event: f64,
    count_by_event_name_ms: f64,
    newest_50_in_last_hour_ms: f64,
    event_id_lookup_ms: f64,
}

const BATCH: usize = 1000;
const REPEATS: usize = 21;

fn main() -> Result<()> {
    let args = Args::parse();
    let start_ms = GenOptions::default().start_ms;
    let rate = args.events as f64 / (f64::from(args.days.max(1)) * 86_400.0);
    let mut g = Generator::new(GenOptions { seed: 21, start_ms, rate_per_sec: rate, profile: args.profile, ..GenOptions::default() });
    let records: Vec<Vec<u8>> = (0..args.events)
        .map(|_| {
            let mut r = Vec::new();
            g.next_record(&mut r);
            r
        })
        .collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    let events: Vec<(i64, String)> = records
        .iter()
        .map(|r| {
            let e = cairn_engine::parse_event(r, cairn_engine::limits::RECORD_BYTES_MAX).expect("generated records are valid");
            (e.time_ms, e.event_id.map(|i| i.into_owned()).unwrap_or_default())
        })
        .collect();
    let newest = events.iter().map(|e| e.0).max().unwrap_or(start_ms);
    // Every 97th eventID, for the lookups.
    let ids: Vec<&str> = events.iter().step_by(97).map(|e| e.1.as_str()).collect();
    let dir = tempfile::Builder::new().prefix("cairn-compare-").tempdir()?;
    let mut all = vec![cairn(&dir.path().join("cairn"), &records, newest, &ids)?];
    if let Some(f) = sqlite(&dir.path().join("sqlite.db"), &records, newest, &ids)? {
        all.push(f);
    }
    let what = format!(
        "{} events of the {} profile over {} days ({:.0} B average), batches of {BATCH}, durable per batch",
        args.events,
        args.profile.name(),
        args.days,
        bytes as f64 / args.events.max(1) as f64
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "data": what, "stores": all }))?);
        return Ok(());
    }
    println!("{what}");
    println!("{:<28} {:>14} {:>14} {:>10}", "", "cairn", "sqlite", "ratio");
    let row = |name: &str, f: &dyn Fn(&Figures) -> f64, higher_better: bool| {
        let c = f(&all[0]);
        match all.get(1) {
            Some(s) => {
                let v = f(s);
                let ratio = if higher_better { c / v } else { v / c };
                println!("{name:<28} {c:>14.3} {v:>14.3} {ratio:>9.2}x");
            }
            None => println!("{name:<28} {c:>14.3} {:>14} {:>10}", "-", "-"),
        }
    };
    row("ingest, events/s", &|f| f.ingest_events_per_sec, true);
    row("disk, bytes/event", &|f| f.bytes_per_event, false);
    row("count by eventName, ms", &|f| f.count_by_event_name_ms, false);
    row("newest 50 in last hour, ms", &|f| f.newest_50_in_last_hour_ms, false);
    row("eventID lookup, ms", &|f| f.event_id_lookup_ms, false);
    if all.len() == 1 {
        println!("(built without SQLite: add --features sqlite to compare)");
    } else {
        println!("(ratio: how many times better Cairn is; below 1, SQLite is better)");
    }
    Ok(())
}

/// The median of `REPEATS` runs of `f`, in milliseconds.
fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn cairn(dir: &Path, records: &[Vec<u8>], newest: i64, ids: &[&str]) -> Result<Figures> {
    let store = Store::open(dir, Options::default()).context("opening the Cairn store")?;
    let t = Instant::now();
    for chunk in records.chunks(BATCH) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        store.append(&refs)?;
    }
    let ingest = records.len() as f64 / t.elapsed().as_secs_f64();
    store.seal_now()?;
    let all = Query::default();
    let hour = Query { start_ms: Some(newest - 3_600_000), end_ms: Some(newest), filters: vec![] };
    let count = median_ms(|| assert!(!store.count(&all, Attr::EventName).expect("count").is_empty()));
    let newest_50 = median_ms(|| assert!(!store.lookup(&hour, Some(50), None).expect("lookup").events.is_empty()));
    let mut i = 0;
    let lookup = median_ms(|| {
        assert_eq!(store.get(ids[i % ids.len()]).expect("get").len(), 1);
        i += 1;
    });
    let bytes = store.stats()?.disk_bytes;
    store.close()?;
    Ok(Figures {
        store: "cairn",
        ingest_events_per_sec: ingest,
        bytes_per_event: bytes as f64 / records.len() as f64,
        count_by_event_name_ms: count,
        newest_50_in_last_hour_ms: newest_50,
        event_id_lookup_ms: lookup,
    })
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(_: &Path, _: &[Vec<u8>], _: i64, _: &[&str]) -> Result<Option<Figures>> {
    Ok(None)
}

#[cfg(feature = "sqlite")]
fn sqlite(path: &Path, records: &[Vec<u8>], newest: i64, ids: &[&str]) -> Result<Option<Figures>> {
    use rusqlite::{params, Connection};
    let mut db = Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         CREATE TABLE events (
             seq INTEGER PRIMARY KEY,
             event_time INTEGER NOT NULL,
             event_id TEXT,
             event_name TEXT NOT NULL,
             event_source TEXT,
             username TEXT,
             record TEXT NOT NULL
         );
         CREATE INDEX events_time ON events (event_time);
         CREATE INDEX events_id ON events (event_id);
         CREATE INDEX events_name ON events (event_name);",
    )?;
    let t = Instant::now();
    for chunk in records.chunks(BATCH) {
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (event_time, event_id, event_name, event_source, username, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in chunk {
                let e = cairn_engine::parse_event(r, cairn_engine::limits::RECORD_BYTES_MAX).map_err(|e| anyhow::anyhow!("{e}"))?;
                let text = std::str::from_utf8(r)?;
                insert.execute(params![
                    e.time_ms,
                    e.event_id.as_deref(),
                    e.event_name.as_ref(),
                    e.event_source.as_deref(),
                    e.username.as_deref(),
                    text
                ])?;
            }
        }
        tx.commit()?;
    }
    let ingest = records.len() as f64 / t.elapsed().as_secs_f64();
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let count = median_ms(|| {
        let mut s = db.prepare_cached("SELECT event_name, count(*) FROM events GROUP BY event_name").expect("prepare");
        let n = s.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))).expect("query").count();
        assert!(n > 0);
    });
    let newest_50 = median_ms(|| {
        let mut s = db
            .prepare_cached("SELECT record FROM events WHERE event_time BETWEEN ?1 AND ?2 ORDER BY event_time DESC LIMIT 50")
            .expect("prepare");
        let n = s.query_map(params![newest - 3_600_000, newest], |row| row.get::<_, String>(0)).expect("query").count();
        assert!(n > 0);
    });
    let mut i = 0;
    let lookup = median_ms(|| {
        let mut s = db.prepare_cached("SELECT record FROM events WHERE event_id = ?1").expect("prepare");
        let n = s.query_map(params![ids[i % ids.len()]], |row| row.get::<_, String>(0)).expect("query").count();
        assert_eq!(n, 1);
        i += 1;
    });
    drop(db);
    let bytes: u64 =
        ["", "-wal", "-shm"].iter().filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok()).map(|m| m.len()).sum();
    Ok(Some(Figures {
        store: "sqlite",
        ingest_events_per_sec: ingest,
        bytes_per_event: bytes as f64 / records.len() as f64,
        count_by_event_name_ms: count,
        newest_50_in_last_hour_ms: newest_50,
        event_id_lookup_ms: lookup,
    }))
}
