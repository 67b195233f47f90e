//! The benchmark store shared by the query and integrity benchmarks:
//! CAIRN_BENCH_EVENTS generated events (default 1,000,000) of a generator
//! profile (CAIRN_BENCH_PROFILE: standard, the default, or diverse; the
//! query benchmark runs both) spread over 30 days, built once under
//! target/ and reused (the directory is named after the profile and the
//! index version, so a format change builds a fresh one).

use std::path::PathBuf;

use cairn_engine::{Options, Query, Store};
use cairn_tools::gen::{GenOptions, Generator, Profile};

pub const DAY_MS: i64 = 86_400_000;
pub const START_MS: i64 = 1_767_225_600_000;

/// The profile CAIRN_BENCH_PROFILE names (standard by default).
pub fn env_profile() -> Profile {
    match std::env::var("CAIRN_BENCH_PROFILE").as_deref() {
        Ok("diverse") => Profile::Diverse,
        Ok("standard") | Err(_) => Profile::Standard,
        Ok(other) => panic!("CAIRN_BENCH_PROFILE must be standard or diverse, not {other:?}"),
    }
}

/// The store of CAIRN_BENCH_PROFILE's events, its event count, and an
/// eventID from the middle of the data.
#[allow(dead_code)] // this module is compiled into each benchmark; query.rs names its profiles
pub fn store() -> (Store, u64, String) {
    store_of(env_profile())
}

/// The store of `profile`'s events, its event count, and an eventID from
/// the middle of the data.
pub fn store_of(profile: Profile) -> (Store, u64, String) {
    let n: u64 = std::env::var("CAIRN_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/bench-store-{}-{n}-index-v{}",
        profile.name(),
        cairn_engine::index::INDEX_VERSION
    ));
    let rate = n as f64 / (30.0 * 86_400.0);
    let mut gen = Generator::new(GenOptions { seed: 11, start_ms: START_MS, rate_per_sec: rate, profile, ..GenOptions::default() });
    let mut sample_id = String::new();
    let ready = dir.join("READY").exists();
    let store = Store::open(&dir, Options::default()).unwrap();
    if !ready {
        let mut done = 0u64;
        while done < n {
            let batch: Vec<Vec<u8>> = (0..(n - done).min(1000))
                .map(|_| {
                    let mut r = Vec::new();
                    gen.next_record(&mut r);
                    r
                })
                .collect();
            let refs: Vec<&[u8]> = batch.iter().map(|r| r.as_slice()).collect();
            store.append(&refs).unwrap();
            done += batch.len() as u64;
        }
        store.seal_now().unwrap();
        std::fs::write(dir.join("READY"), b"").unwrap();
    }
    // An eventID from the middle of the data.
    let q = Query { start_ms: Some(START_MS + 15 * DAY_MS), end_ms: Some(START_MS + 16 * DAY_MS), filters: vec![] };
    let page = store.lookup(&q, Some(1), None).unwrap();
    if let Some(e) = page.events.first() {
        let v: serde_json::Value = serde_json::from_slice(&e.record).unwrap();
        sample_id = v["eventID"].as_str().unwrap_or_default().to_string();
    }
    (store, n, sample_id)
}
