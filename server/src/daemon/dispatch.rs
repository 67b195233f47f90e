//! Answering one request: the role check, then the engine call, with its
//! answer (or error) as a wire message; exports and tails go out in
//! bounded chunks.

use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use cairn_engine::compact::CompactOptions;
use cairn_engine::insights::detect::DetectOptions;
use cairn_engine::insights::scan::{run as run_insights, RunOptions, Scanner};
use cairn_engine::verify::VerifyOptions;
use cairn_engine::{Attr, Order, Outcome, Query, StoredEvent};

use crate::convert::wire_stats;
use crate::protocol::{codes, Request, RequestBody, ResponseBody, Role, WireError, WireEvent, WireOutcome, WireProcess};

use super::channels::NewChannel;
use super::connection::{client_gone, send, Io};
use super::{err, now_ms, Shared};

/// This process's resident set size and its peak, from /proc on Linux.
pub fn process_rss() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return (None, None) };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub(super) fn allowed(role: Role, body: &RequestBody) -> bool {
    match body {
        RequestBody::Append { .. } => matches!(role, Role::Ingest | Role::Admin),
        RequestBody::CreateToken { .. }
        | RequestBody::CreateAwsKey { .. }
        | RequestBody::CreateChannel { .. }
        | RequestBody::RotateKey
        | RequestBody::SignDigest { .. }
        | RequestBody::Compact { .. }
        | RequestBody::Retain { .. }
        | RequestBody::Rollup { .. }
        | RequestBody::Insights { backfill: true, .. } => role == Role::Admin,
        _ => matches!(role, Role::Read | Role::Admin),
    }
}

/// Events are sent in chunks (export, tail) of at most this many, or about
/// this many record bytes: far below the response frame bound.
pub(super) const CHUNK_EVENTS_MAX: usize = 1000;

pub(super) const CHUNK_RECORD_BYTES_MAX: usize = 4 << 20;

/// Gathers events into chunks of at most [`CHUNK_EVENTS_MAX`] events or
/// about [`CHUNK_RECORD_BYTES_MAX`] bytes (export and tail frames).
#[derive(Default)]
pub(super) struct Chunker {
    pub(super) events: Vec<WireEvent>,
    pub(super) bytes: usize,
}

impl Chunker {
    /// Adds an event; a full chunk comes back to be sent.
    pub(super) fn add(&mut self, e: StoredEvent) -> Option<Vec<WireEvent>> {
        self.bytes += e.record.len() + 32;
        self.events.push(WireEvent::from(e));
        if self.events.len() < CHUNK_EVENTS_MAX && self.bytes < CHUNK_RECORD_BYTES_MAX {
            return None;
        }
        self.bytes = 0;
        Some(std::mem::take(&mut self.events))
    }

    /// What is left, if anything.
    pub(super) fn rest(self) -> Option<Vec<WireEvent>> {
        (!self.events.is_empty()).then_some(self.events)
    }
}

pub(super) fn handle(req: Request, role: Role, shared: &Shared, w: &mut Box<dyn Io>, raw: &TcpStream) -> Result<()> {
    let id = req.id;
    let reply = |w: &mut Box<dyn Io>, body: ResponseBody| send(w, id, body);
    if id == 0 {
        let msg = "request id 0 is reserved (the server answers frames it cannot decode with id 0): use ids from 1";
        return Ok(reply(w, ResponseBody::Error(err(codes::INVALID_REQUEST_ID, msg)))?);
    }
    if !allowed(role, &req.body) {
        let article = if role == Role::Ingest || role == Role::Admin { "an" } else { "a" };
        let msg = format!("{article} {} token cannot do this", role.name());
        return Ok(reply(w, ResponseBody::Error(err(codes::ACCESS_DENIED, msg)))?);
    }
    let store = &shared.store;
    let body = match req.body {
        RequestBody::Append { records } => {
            let refs: Vec<&[u8]> = records.iter().map(|r| r.0.as_slice()).collect();
            match store.append(&refs) {
                Ok(outcomes) => {
                    let stored = outcomes.iter().filter(|o| matches!(o, Outcome::Stored(_))).count();
                    shared.appended.fetch_add(stored as u64, Ordering::Relaxed);
                    ResponseBody::Appended { outcomes: outcomes.into_iter().map(WireOutcome::from).collect() }
                }
                Err(cairn_engine::Error::BatchTooLarge { what, value, limit }) => {
                    ResponseBody::Error(err(codes::BATCH_TOO_LARGE, format!("{what} is {value}, the limit is {limit}")))
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Lookup { query, max_results, next_token } => match Query::try_from(&query) {
            Err(e) => ResponseBody::Error(e),
            Ok(q) => match store.lookup(&q, max_results.map(|m| m as usize), next_token.as_deref()) {
                Ok(p) => ResponseBody::Page { events: p.events.into_iter().map(WireEvent::from).collect(), next_token: p.next_token },
                Err(e) => ResponseBody::Error(WireError::from(e)),
            },
        },
        RequestBody::Count { query, by } => match (Query::try_from(&query), Attr::parse(&by)) {
            (Err(e), _) => ResponseBody::Error(e),
            (_, None) => ResponseBody::Error(err(codes::INVALID_LOOKUP_ATTRIBUTES, format!("unknown attribute {by:?}"))),
            (Ok(q), Some(by)) => match store.count(&q, by) {
                Ok(counts) => ResponseBody::Counts { counts },
                Err(e) => ResponseBody::Error(WireError::from(e)),
            },
        },
        RequestBody::Get { event_id } => match store.get(&event_id) {
            Ok(events) => ResponseBody::Events { events: events.into_iter().map(WireEvent::from).collect() },
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
        },
        RequestBody::Stats => match store.stats() {
            Ok(s) => ResponseBody::Stats(wire_stats(
                &s,
                shared.connections.load(Ordering::SeqCst) as u64,
                shared.appended.load(Ordering::Relaxed),
                shared.started.elapsed().as_millis() as u64,
            )),
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
        },
        RequestBody::Checkpoint => match store.checkpoint() {
            Ok(c) => ResponseBody::Checkpoint { note: c.map(|c| c.note) },
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
        },
        RequestBody::PublicKeys => ResponseBody::PublicKeys { keys: store.verifiers().iter().map(|v| v.encode()).collect() },
        RequestBody::RotateKey => match store.rotate_key() {
            Ok(_) => {
                tracing::info!("rotated the signing key");
                ResponseBody::PublicKeys { keys: store.verifiers().iter().map(|v| v.encode()).collect() }
            }
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
        },
        RequestBody::Prove { seq, event_id, checkpoint } => match store.proof_bundles(seq, event_id.as_deref(), checkpoint.as_deref()) {
            Ok(bundles) => ResponseBody::Proofs { bundles },
            Err(e) => ResponseBody::Error(e.into()),
        },
        RequestBody::Consistency { old, new } => match store.consistency_bundle(&old, new.as_deref()) {
            Ok(bundle) => ResponseBody::Consistency { bundle },
            Err(e) => ResponseBody::Error(e.into()),
        },
        RequestBody::Verify { checkpoints, public_keys } => {
            let mut io_err = None;
            let result = VerifyOptions::from_text(&checkpoints, &public_keys).and_then(|opts| {
                store.verify(&opts, &mut |done_bytes, total_bytes| {
                    if io_err.is_none() {
                        if let Err(e) = reply(w, ResponseBody::VerifyProgress { done_bytes, total_bytes }) {
                            io_err = Some(e);
                        }
                    }
                })
            });
            if let Some(e) = io_err {
                return Err(e.into());
            }
            match result {
                Ok(r) => ResponseBody::VerifyReport((&r).into()),
                Err(e) => ResponseBody::Error(e.into()),
            }
        }
        RequestBody::SignDigest { end_time, location, sha256_hex, previous } => {
            match store.sign_digest(&end_time, &location, &sha256_hex, previous.as_deref()) {
                Ok((signature, key)) => ResponseBody::DigestSignature { signature, key: key.encode() },
                Err(e) => ResponseBody::Error(err(codes::INVALID_PARAMETER, e.to_string())),
            }
        }
        RequestBody::Compact { options } => {
            let o = CompactOptions::from(&options);
            match store.compact(&o, &mut |_, _| {}) {
                Ok(r) => {
                    tracing::info!(
                        runs = r.runs.len(),
                        segments_before = r.segments_before,
                        segments_after = r.segments_after,
                        "compacted"
                    );
                    ResponseBody::Compacted((&r).into())
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Retain { older_than_secs, dry_run } => {
            let o = cairn_engine::retention::RetentionOptions {
                older_than: Duration::from_secs(older_than_secs),
                dry_run,
                stored_at_least: false,
            };
            match store.retain(&o) {
                Ok(r) => {
                    tracing::info!(removed = r.segments_removed, min_retained_seq = r.min_retained_seq, dry_run, "retention");
                    ResponseBody::Retained((&r).into())
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Insights { start_ms, end_ms, backfill, sensitivity_milli } => {
            let mut detect = DetectOptions::default();
            if let Some(s) = sensitivity_milli {
                detect.sensitivity = f64::from(s) / 1000.0;
            }
            let o = RunOptions { start_ms, end_ms, backfill, ending: false, detect };
            // A scanner of its own (a request may reach far back; the
            // daemon's stays small), one run at a time with the daemon's.
            let result = {
                let _one = shared.insights_lock.lock();
                run_insights(store, &mut Scanner::new(), &o)
            };
            match result {
                Ok(r) => {
                    if let Some(a) = &r.appended {
                        tracing::info!(insights = r.insights.len(), appended = a.appended, "insights backfill");
                    }
                    ResponseBody::Insights((&r).into())
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Rollup { start_ms, end_ms, dry_run } => {
            match cairn_engine::rollup::rollup(store, &cairn_engine::rollup::RollupOptions { start_ms, end_ms, dry_run }) {
                Ok(r) => {
                    tracing::info!(records = r.records, appended = r.appended, dry_run, "rollup");
                    ResponseBody::RolledUp((&r).into())
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Process => {
            let m = store.memory();
            let (rss_bytes, peak_rss_bytes) = process_rss();
            ResponseBody::Process(WireProcess {
                rss_bytes,
                peak_rss_bytes,
                memtable_bytes: m.memtable_bytes,
                block_cache_bytes: m.block_cache_bytes,
                id_filter_bytes: m.id_filter_bytes,
            })
        }
        RequestBody::Export { query, oldest_first } => {
            let q = match Query::try_from(&query) {
                Ok(q) => q,
                Err(e) => return Ok(reply(w, ResponseBody::Error(e))?),
            };
            let order = if oldest_first { Order::OldestFirst } else { Order::NewestFirst };
            let mut chunks = Chunker::default();
            let mut io_err = None;
            let result = store.export(&q, order, |e| {
                if let Some(events) = chunks.add(e) {
                    if let Err(e) = reply(w, ResponseBody::ExportChunk { events }) {
                        io_err = Some(e);
                        return false;
                    }
                }
                true
            });
            if let Some(e) = io_err {
                return Err(e.into());
            }
            match result {
                Ok(count) => {
                    if let Some(events) = chunks.rest() {
                        reply(w, ResponseBody::ExportChunk { events })?;
                    }
                    ResponseBody::ExportEnd { count }
                }
                Err(e) => ResponseBody::Error(WireError::from(e)),
            }
        }
        RequestBody::Tail { query, from_seq } => {
            let q = match Query::try_from(&query) {
                Ok(q) => q,
                Err(e) => return Ok(reply(w, ResponseBody::Error(e))?),
            };
            let mut next = match from_seq {
                Some(s) => s,
                None => store.stats().map(|s| s.tree_size).unwrap_or(0),
            };
            // Poll the store for new events until the client goes away or
            // the server shuts down; a write error ends the connection.
            while !shared.shutdown.load(Ordering::SeqCst) {
                match store.events_since(next, &q, CHUNK_EVENTS_MAX) {
                    Ok((events, n)) => {
                        next = n;
                        let any = !events.is_empty();
                        let mut chunks = Chunker::default();
                        for e in events {
                            if let Some(events) = chunks.add(e) {
                                reply(w, ResponseBody::TailEvents { events })?;
                            }
                        }
                        if let Some(events) = chunks.rest() {
                            reply(w, ResponseBody::TailEvents { events })?;
                        }
                        if !any && client_gone(raw, Duration::from_millis(100)) {
                            return Ok(());
                        }
                    }
                    Err(e) => return Ok(reply(w, ResponseBody::Error(WireError::from(e)))?),
                }
            }
            return Ok(());
        }
        RequestBody::CreateToken { role, name } => match shared.tokens.create(role, &name) {
            Ok(token) => ResponseBody::Token { token },
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, format!("{e:#}"))),
        },
        RequestBody::CreateAwsKey { role, name } => match shared.aws_keys.create(role, &name) {
            Ok((access_key_id, secret)) => ResponseBody::AwsKey { access_key_id, secret },
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, format!("{e:#}"))),
        },
        RequestBody::CreateChannel { name, external_id, allowed_keys, account_id, region } => {
            let new = NewChannel { name, external_id, allowed_keys, account_id, region, source: None };
            match shared.channels.create(new, shared.cfg.region(), now_ms()) {
                Ok(c) => ResponseBody::Channel((&c).into()),
                Err(e) => ResponseBody::Error(err(codes::INVALID_PARAMETER, format!("{}: {}", e.code, e.message))),
            }
        }
        RequestBody::ListChannels => {
            let mut channels: Vec<crate::protocol::WireChannel> = shared.channels.list().iter().map(Into::into).collect();
            // The external ID is a sender's credential: shown to admins only
            // (others see that there is one).
            if role != Role::Admin {
                channels.iter_mut().for_each(|c| c.external_id = c.external_id.as_ref().map(|_| String::new()));
            }
            ResponseBody::Channels { channels }
        }
        RequestBody::Query { statement } => return query(shared, w, id, &statement),
        RequestBody::Delivery => match shared.delivery.as_ref().map(|s| s.lock().clone()) {
            None => ResponseBody::Delivery(None),
            // The backlog as of now (the status is as of the last round,
            // which may be a back-off ago).
            Some(mut s) => match store.durable_size() {
                Ok(durable) => {
                    s.backlog_events = durable.saturating_sub(s.next_seq);
                    ResponseBody::Delivery(Some((&s).into()))
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            },
        },
    };
    Ok(reply(w, body)?)
}

/// A Query frame's size at most: far below the response frame bound.
const QUERY_FRAME_BYTES: usize = 4 << 20;
/// A single row's stream must fit a response frame, with room for the
/// frame's own header.
const QUERY_STREAM_BYTES_MAX: usize = crate::protocol::RESPONSE_FRAME_BYTES_MAX as usize - 1024;

/// Runs a SQL query and streams its results: `QueryBatch` frames (Arrow
/// IPC streams; at least one, for the schema), then `QueryEnd`, or an
/// `Error` named as the HTTP API's exceptions are.
fn query(shared: &Shared, w: &mut Box<dyn Io>, id: u64, statement: &str) -> Result<()> {
    let reply = |w: &mut Box<dyn Io>, body: ResponseBody| send(w, id, body);
    let queries = match shared.queries() {
        Ok(q) => q,
        Err(e) => return Ok(reply(w, ResponseBody::Error(err(codes::INTERNAL, format!("{e:#}"))))?),
    };
    let mut p = match queries.stream(statement, super::http::uuid_v4(), now_ms()) {
        Ok(p) => p,
        Err(e) => {
            let (code, message) = e.named();
            return Ok(reply(w, ResponseBody::Error(err(code, message)))?);
        }
    };
    let schema = p.schema();
    let mut rows = 0u64;
    let mut sent_any = false;
    let mut failure = None;
    while let Some(batch) = p.next_batch() {
        let streams = match batch
            .and_then(|b| cairn_sql::output::ipc_streams(&b, QUERY_FRAME_BYTES).map(|s| (b.num_rows(), s)).map_err(|e| e.to_string()))
        {
            Ok((n, s)) => {
                rows += n as u64;
                s
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if let Some(big) = streams.iter().find(|s| s.len() > QUERY_STREAM_BYTES_MAX) {
            failure = Some(format!(
                "ResponseTooLarge: a result row needs {} bytes, over the response frame limit of {} bytes; select fewer or smaller columns",
                big.len(),
                crate::protocol::RESPONSE_FRAME_BYTES_MAX
            ));
            break;
        }
        for ipc in streams {
            if let Err(e) = reply(w, ResponseBody::QueryBatch { ipc }) {
                p.finish(Some(format!("the client went away: {e}")));
                return Err(e.into());
            }
            sent_any = true;
        }
    }
    let q = p.finish(failure.clone());
    let status = q.status();
    if status != super::queries::Status::Finished {
        let message = q.with(|s| s.error.clone()).or(failure).unwrap_or_else(|| format!("the query was {}", status.name()));
        // The message leads with the exception's name when it has one
        // (the code carries it here).
        let (named, message) = match message.split_once(": ") {
            Some((c, m)) if codes::ALL.contains(&c) => (Some(c.to_string()), m.to_string()),
            _ => (None, message),
        };
        let code = match status {
            super::queries::Status::TimedOut => codes::QUERY_TIMED_OUT.to_string(),
            super::queries::Status::Cancelled => codes::QUERY_CANCELLED.to_string(),
            _ => named.unwrap_or_else(|| codes::QUERY_FAILED.to_string()),
        };
        return Ok(reply(w, ResponseBody::Error(err(&code, message)))?);
    }
    if !sent_any {
        // No rows: one stream, for the schema.
        match cairn_sql::output::ipc_streams(&cairn_sql::RecordBatch::new_empty(schema), QUERY_FRAME_BYTES) {
            Ok(streams) => streams.into_iter().try_for_each(|ipc| reply(w, ResponseBody::QueryBatch { ipc }))?,
            Err(e) => return Ok(reply(w, ResponseBody::Error(err(codes::INTERNAL, e.to_string())))?),
        }
    }
    let (events_scanned, bytes_scanned, events_matched) = q.with(|s| (s.events_scanned, s.bytes_scanned, s.events_matched));
    Ok(reply(
        w,
        ResponseBody::QueryEnd(crate::protocol::WireQueryEnd {
            rows,
            events_scanned,
            bytes_scanned,
            events_matched,
            query_id: q.id.clone(),
        }),
    )?)
}
