//! `cairn stats`: counts, sizes, time range and tree head of the store.

use std::process::ExitCode;

use anyhow::Result;
use cairn_engine::event::format_event_time;

use super::{Global, Output};
use crate::backend::ServerView;

/// Show events, segments, bytes on disk, bytes/event, time range, tree size and root.
#[derive(clap::Args)]
pub struct StatsArgs {
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl StatsArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { output } = self;
        let (stats, server) = g.open_backend()?.stats()?;
        print_stats(&stats, server, *output)?;
        Ok(ExitCode::SUCCESS)
    }
}

pub fn print_stats(s: &cairn_engine::Stats, server: Option<ServerView>, output: Output) -> Result<()> {
    let per_event = |b: u64| if s.events == 0 { 0.0 } else { b as f64 / s.events as f64 };
    let root = hex::encode(s.root);
    let time = |t: Option<i64>| t.map(format_event_time);
    // A server does not report how its disk bytes split (segments, WAL,
    // tiles): shown as unknown, not as zero.
    let local = |b: u64| server.is_none().then_some(b);
    match output {
        Output::Json => {
            let v = serde_json::json!({
                "events": s.events,
                "sealed_events": s.sealed_events,
                "segments": s.segments,
                "record_bytes": s.record_bytes,
                "disk_bytes": s.disk_bytes,
                "segment_bytes": local(s.segment_bytes),
                "wal_bytes": local(s.wal_bytes),
                "tile_bytes": local(s.tile_bytes),
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
            let split = match server {
                None => format!("; segments {}, wal {}, tiles {}", s.segment_bytes, s.wal_bytes, s.tile_bytes),
                Some(_) => String::new(),
            };
            println!("disk bytes    {} ({:.1} bytes/event{split})", s.disk_bytes, per_event(s.disk_bytes));
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
