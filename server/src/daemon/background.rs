//! cairnd's background threads: maintenance (compaction, throttled, and
//! the retention policy every 10 minutes; with `--rollups` the rollups)
//! and Insights (a pass a minute over the newest complete minutes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_engine::insights::detect::DetectOptions;
use cairn_engine::insights::scan::Scanner;

use super::Shared;

/// Background compaction and retention, every `maintenance_interval`,
/// until shutdown.
pub(super) fn maintenance_loop(shared: &Shared) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut last = Instant::now();
    while !shared.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if last.elapsed() < shared.cfg.maintenance_interval {
            continue;
        }
        last = Instant::now();
        if shared.cfg.compaction {
            let opts = cairn_engine::compact::CompactOptions {
                target_bytes: 64 * 1024 * 1024,
                small_bytes: 16 * 1024 * 1024,
                max_bytes_per_sec: shared.cfg.compaction_max_mb_per_sec.saturating_mul(1_000_000),
                stop: Some(stop.clone()),
                ..Default::default()
            };
            stop.store(false, Ordering::SeqCst);
            let watch = {
                let (stop, flag) = (stop.clone(), shared.shutdown.clone());
                std::thread::spawn(move || {
                    while !flag.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    stop.store(true, Ordering::SeqCst);
                })
            };
            match shared.store.compact(&opts, &mut |_, _| {}) {
                Ok(r) if !r.runs.is_empty() => tracing::info!(
                    runs = r.runs.len(),
                    segments_before = r.segments_before,
                    segments_after = r.segments_after,
                    bytes_before = r.bytes_before,
                    bytes_after = r.bytes_after,
                    "compacted"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("compaction: {e}"),
            }
            stop.store(true, Ordering::SeqCst);
            let _ = watch.join();
        }
        if shared.cfg.rollups {
            match cairn_engine::rollup::rollup(&shared.store, &cairn_engine::rollup::RollupOptions::default()) {
                Ok(r) if r.appended > 0 => tracing::info!(records = r.appended, data_events = r.data_events, "rollups"),
                Ok(_) => {}
                Err(e) => tracing::warn!("rollups: {e}"),
            }
        }
        if shared.cfg.retention_days > 0 {
            let older_than = Duration::from_secs(shared.cfg.retention_days.saturating_mul(86_400));
            match shared.store.retain(&cairn_engine::retention::RetentionOptions { older_than, dry_run: false, stored_at_least: true }) {
                Ok(r) if r.segments_removed > 0 => tracing::info!(
                    removed = r.segments_removed,
                    events = r.events_removed,
                    min_retained_seq = r.min_retained_seq,
                    "retention"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("retention: {e}"),
            }
        }
    }
}

/// Minutes a drop must have lasted past its confirmation before cairnd
/// records it: CloudTrail delivers events up to 15 minutes late, and a
/// late delivery must not look like a silence.
pub(super) const DROP_SETTLE_MINUTES: i64 = 15;

/// Background Insights, every `insights_interval` (first a few seconds
/// after start, to catch up after a restart), until shutdown. Each pass
/// appends the Insight events of what started or ended in the lookback
/// window that the store does not hold yet: a restart re-finds an open
/// insight under the same ids, so nothing is lost or recorded twice.
pub(super) fn insights_loop(shared: &Shared) {
    let mut next = Instant::now() + Duration::from_secs(3);
    let mut last: Option<(i64, u64)> = None;
    let lookback = (shared.cfg.insights_lookback.as_secs() / 60).max(1) as i64;
    let detect = DetectOptions { sensitivity: shared.cfg.insights_sensitivity, ..DetectOptions::default() };
    // Kept between passes: the sealed segments' counts are read once.
    let mut scanner = Scanner::new();
    while !shared.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + shared.cfg.insights_interval;
        let now = super::now_ms() / 60_000;
        let size = shared.store.stats().map(|s| s.tree_size).unwrap_or(0);
        if last == Some((now, size)) {
            continue; // nothing new to look at
        }
        let started = Instant::now();
        // One run at a time with `Insights` requests (exactly once).
        let result = {
            let _one = shared.insights_lock.lock();
            scanner.pass(&shared.store, now, lookback, DROP_SETTLE_MINUTES, &detect)
        };
        match result {
            Ok(Some(r)) => {
                let a = r.appended.unwrap_or_default();
                if a.appended > 0 {
                    tracing::info!(
                        insights = r.insights.len(),
                        appended = a.appended,
                        ms = started.elapsed().as_millis() as u64,
                        "insights"
                    );
                }
                // What the store holds now, unless events arrived meanwhile.
                last = Some((now, size + a.appended));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("insights: {e}"),
        }
    }
}
