//! `cairn stats`: counts, sizes, time range and tree head of the store.

use std::process::ExitCode;

use anyhow::Result;
use cairn_engine::event::format_event_time;

use super::{Global, Output};
use crate::backend::ServerView;
use cairn_deliver::DeliveryStatus;

/// Show events, segments, bytes on disk, bytes/event, time range, tree size and root.
///
/// Embedded, it also splits the sealed segments' bytes by part (compressed
/// record blocks, index, eventID table, the rest), per sealed event: where
/// a store's disk goes, and what `cairn compact` changes.
#[derive(clap::Args)]
pub struct StatsArgs {
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl StatsArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { output } = self;
        let mut backend = g.open_backend()?;
        let (stats, server) = backend.stats()?;
        // An older cairnd does not answer it: the rest still prints.
        let delivery = backend.delivery().unwrap_or_else(|e| {
            eprintln!("cairn: delivery status unknown: {e:#}");
            None
        });
        // The store's id is its signing key's name, `cairn/<id>`.
        let id = backend.public_keys().ok().and_then(|keys| {
            let name = keys.first()?.split('+').next()?.to_string();
            Some(name.strip_prefix("cairn/").map_or(name.clone(), str::to_string))
        });
        print_stats(&stats, id.as_deref(), server, delivery.as_ref(), *output)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `id`: the store's id (the event data store's, SQL's second table name).
pub fn print_stats(
    s: &cairn_engine::Stats,
    id: Option<&str>,
    server: Option<ServerView>,
    delivery: Option<&DeliveryStatus>,
    output: Output,
) -> Result<()> {
    let per_event = |b: u64| if s.events == 0 { 0.0 } else { b as f64 / s.events as f64 };
    let per_sealed = |b: u64| if s.sealed_events == 0 { 0.0 } else { b as f64 / s.sealed_events as f64 };
    let parts = &s.segment_parts;
    let root = hex::encode(s.root);
    let time = |t: Option<i64>| t.map(format_event_time);
    // A server does not report how its disk bytes split (segments, WAL,
    // tiles): shown as unknown, not as zero.
    let local = |b: u64| server.is_none().then_some(b);
    match output {
        Output::Json => {
            let v = serde_json::json!({
                "store_id": id,
                "events": s.events,
                "sealed_events": s.sealed_events,
                "segments": s.segments,
                "record_bytes": s.record_bytes,
                "disk_bytes": s.disk_bytes,
                "segment_bytes": local(s.segment_bytes),
                "wal_bytes": local(s.wal_bytes),
                "tile_bytes": local(s.tile_bytes),
                "segment_parts": server.is_none().then(|| serde_json::json!({
                    "blocks_bytes": parts.blocks,
                    "index_bytes": parts.index,
                    "id_table_bytes": parts.id_table,
                    "other_bytes": parts.other,
                })),
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
                "delivery": delivery.map(|d| serde_json::json!({
                    "target": d.target,
                    "delivered_up_to_seq": d.next_seq,
                    "backlog_events": d.backlog_events,
                    "delivered_events": d.delivered_events,
                    "delivered_files": d.delivered_files,
                    "digest_files": d.digest_files,
                    "last_delivery_time": time(d.last_delivery_ms),
                    "last_digest_time": time(d.last_digest_ms),
                    "last_error": d.last_error,
                    "last_error_time": time(d.last_error_ms),
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
            let split = match server {
                None => format!("; segments {}, wal {}, tiles {}", s.segment_bytes, s.wal_bytes, s.tile_bytes),
                Some(_) => String::new(),
            };
            println!("disk bytes    {} ({:.1} bytes/event{split})", s.disk_bytes, per_event(s.disk_bytes));
            if server.is_none() && s.sealed_events > 0 {
                println!(
                    "segments by part, bytes/sealed event: blocks {:.1}, index {:.1}, id table {:.1}, other {:.1}",
                    per_sealed(parts.blocks),
                    per_sealed(parts.index),
                    per_sealed(parts.id_table),
                    per_sealed(parts.other)
                );
            }
            match (time(s.min_time_ms), time(s.max_time_ms)) {
                (Some(a), Some(b)) => println!("event time    {a} .. {b}"),
                _ => println!("event time    (no events)"),
            }
            println!("tree size     {}", s.tree_size);
            println!("root          {root}");
            if let Some(id) = id {
                println!("store id      {id} (the event data store's id; SQL may name the table by it)");
            }
            if let Some(v) = server {
                let rate = v.appended as f64 / (v.uptime_ms.max(1) as f64 / 1000.0);
                println!(
                    "server        {} connections, {} events appended in {:.0} s ({rate:.0} events/s)",
                    v.connections,
                    v.appended,
                    v.uptime_ms as f64 / 1000.0
                );
            }
            if let Some(d) = delivery {
                let when = |t: Option<i64>| time(t).unwrap_or_else(|| "never".into());
                println!(
                    "delivery      {}: backlog {} events; {} events, {} files, {} digests delivered; last round {}, last digest {}",
                    d.target,
                    d.backlog_events,
                    d.delivered_events,
                    d.delivered_files,
                    d.digest_files,
                    when(d.last_delivery_ms),
                    when(d.last_digest_ms)
                );
                if let Some(e) = &d.last_error {
                    println!("delivery error {} (at {})", e, when(d.last_error_ms));
                }
            }
        }
    }
    Ok(())
}
