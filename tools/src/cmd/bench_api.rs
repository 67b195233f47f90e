//! `cairn bench-api`: what cairnd's CloudTrail-compatible HTTP API costs,
//! measured in one run on generated data: LookupEvents through the engine
//! in process, through Cairn's own protocol, and through HTTP with SigV4
//! (what the AWS SDKs send); then PutAuditEvents throughput with several
//! concurrent senders of 100-event calls.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_engine::{parse_event, Attr, Options, Query, Store};
use cairn_server::client::Client;
use cairn_server::daemon::{self, Config};
use cairn_server::protocol::{Role, WireQuery};
use cairn_server::sigv4;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use super::{parse_duration, Global, Output};
use crate::gen::{GenOptions, Generator, Profile};

/// Measure cairnd's CloudTrail-compatible HTTP API (LookupEvents, PutAuditEvents) against the engine and Cairn's protocol.
///
/// Generates --events records into a temporary store, times --lookups
/// LookupEvents pages (50 events, newest first; no filter and each of
/// EventName, Username, EventSource, AccessKeyId, ResourceName, EventId)
/// three ways: the engine in this process, Cairn's protocol and HTTP with
/// SigV4, against a cairnd started in this process on loopback. Then
/// --clients senders each send PutAuditEvents calls of --batch events for
/// --put-duration. Figures are medians (p50) and name the data profile.
///
/// Example: cairn bench-api --events 200000 --profile diverse
#[derive(clap::Args)]
pub struct BenchApiArgs {
    /// Generated events in the store the lookups read.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    #[arg(long, value_enum, default_value_t = Profile::Diverse)]
    pub profile: Profile,
    /// LookupEvents pages timed each way.
    #[arg(long, default_value_t = 2000)]
    pub lookups: usize,
    /// Concurrent PutAuditEvents senders, one connection each.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Events per PutAuditEvents call (CloudTrail allows 1 to 100).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// How long the senders send (e.g. 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub put_duration: Duration,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// p50, p90 and p99 of durations, in milliseconds.
fn percentiles(mut d: Vec<Duration>) -> [f64; 3] {
    d.sort();
    let at = |q: f64| d.get(((d.len() as f64 - 1.0) * q).round() as usize).map_or(0.0, |x| x.as_secs_f64() * 1000.0);
    [at(0.5), at(0.9), at(0.99)]
}

/// One HTTP/1.1 connection to cairnd's HTTP API (hyper's client), signing
/// every request with SigV4 as the AWS SDKs do.
struct HttpClient {
    rt: tokio::runtime::Runtime,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    key: (String, String),
}

impl HttpClient {
    fn connect(addr: SocketAddr, key: (String, String)) -> Result<HttpClient> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let sender = rt.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            anyhow::Ok(sender)
        })?;
        Ok(HttpClient { rt, sender, host: addr.to_string(), key })
    }

    /// POSTs `body`; the status and the response body.
    fn post(&mut self, path: &str, query: &str, service: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<(u16, Bytes)> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
        let mut signed: Vec<(&str, &str)> = vec![("host", self.host.as_str())];
        signed.extend_from_slice(headers);
        let auth = sigv4::sign_headers("POST", path, query, &signed, &body, &self.key.0, &self.key.1, "us-east-1", service, now);
        let uri = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
        let mut req = hyper::Request::builder().method("POST").uri(uri);
        for (k, v) in signed.iter().copied().chain(auth.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        let sender = &mut self.sender;
        self.rt.block_on(async move {
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        })
    }
}

/// The lookups timed: no filter, and values of six attributes taken from
/// the generated records.
fn queries(records: &[Vec<u8>]) -> Vec<Query> {
    let mut out = vec![Query::default()];
    let step = (records.len() / 20).max(1);
    for r in records.iter().step_by(step) {
        let Ok(e) = parse_event(r, cairn_engine::limits::RECORD_BYTES_MAX) else { continue };
        let mut add = |a: Attr, v: Option<&str>| {
            if let Some(v) = v {
                out.push(Query { filters: vec![(a, vec![v.to_string()])], ..Default::default() });
            }
        };
        add(Attr::EventName, Some(&e.event_name));
        add(Attr::Username, e.username.as_deref());
        add(Attr::EventSource, e.event_source.as_deref());
        add(Attr::AccessKeyId, e.access_key_id.as_deref());
        add(Attr::ResourceName, e.resources.first().and_then(|(_, n)| n.as_deref()));
        add(Attr::EventId, e.event_id.as_deref());
    }
    out
}

fn lookup_body(q: &Query) -> Vec<u8> {
    let attrs: Vec<serde_json::Value> =
        q.filters.iter().map(|(a, v)| serde_json::json!({"AttributeKey": a.name(), "AttributeValue": v[0]})).collect();
    serde_json::json!({"LookupAttributes": attrs, "MaxResults": 50}).to_string().into_bytes()
}

/// One on-premises event as PutAuditEvents takes it (about 500 bytes).
fn audit_event(n: u64) -> String {
    const NAMES: [&str; 4] = ["OpenDoor", "CloseDoor", "Denied", "Swipe"];
    serde_json::json!({
        "version": "1.0",
        "userIdentity": {"type": "CardHolder", "principalId": format!("badge-{}", n % 5000), "details": {"site": "Lyon", "shift": "night"}},
        "userAgent": "door-controller/2.1",
        "eventSource": "doors.example.com",
        "eventName": NAMES[(n % 4) as usize],
        "eventTime": cairn_engine::event::format_event_time(1_767_225_600_000 + (n as i64) * 37),
        "UID": format!("uid-{n}"),
        "requestParameters": {"door": format!("B{}-{}", n % 40, n % 7), "direction": "in", "reader": format!("r-{}", n % 300)},
        "responseElements": {"granted": !n.is_multiple_of(11)},
        "sourceIPAddress": format!("10.{}.{}.{}", n % 200, n % 250, n % 199),
        "recipientAccountId": "111122223333",
    })
    .to_string()
}

impl BenchApiArgs {
    pub fn run(&self, _g: &Global) -> Result<ExitCode> {
        if !(1..=100).contains(&self.batch) {
            bail!("--batch must be 1 to 100 (PutAuditEvents' limit), not {}", self.batch);
        }
        if self.clients == 0 || self.lookups == 0 || self.events == 0 {
            bail!("--clients, --lookups and --events must be at least 1");
        }
        let dir = tempfile::tempdir()?;
        let data_dir = dir.path().join("store");
        eprintln!("cairn bench-api: generating {} events ({} profile)...", self.events, self.profile.name());
        let mut gen = Generator::new(GenOptions { seed: self.seed, profile: self.profile, ..Default::default() });
        let mut records = Vec::with_capacity(self.events);
        for _ in 0..self.events {
            let mut r = Vec::new();
            gen.next_record(&mut r);
            records.push(r);
        }
        let qs = queries(&records);

        // 1. The engine in this process.
        let store = Store::open(&data_dir, Options { insights_counters: false, ..Options::default() })?;
        for chunk in records.chunks(1000) {
            let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
            store.append(&refs)?;
        }
        drop(records);
        let time_all = |f: &mut dyn FnMut(&Query) -> Result<usize>| -> Result<Vec<Duration>> {
            for q in &qs {
                f(q)?; // warm caches and connections
            }
            let mut d = Vec::with_capacity(self.lookups);
            for i in 0..self.lookups {
                let t = Instant::now();
                f(&qs[i % qs.len()])?;
                d.push(t.elapsed());
            }
            Ok(d)
        };
        let engine = time_all(&mut |q| Ok(store.lookup(q, Some(50), None)?.events.len()))?;
        store.close()?;

        // 2. A cairnd in this process, on loopback.
        let cfg = Config {
            data_dir: data_dir.clone(),
            listen: "127.0.0.1:0".into(),
            http_listen: Some("127.0.0.1:0".into()),
            insights: false,
            compaction: false,
            retention_days: 0,
            ..Config::default()
        };
        let shutdown = Arc::new(AtomicBool::new(false));
        let running = daemon::start(cfg, shutdown)?;
        let http_addr = running.http_addr.context("the HTTP API did not start")?;
        let token = std::fs::read_to_string(data_dir.join("admin.token"))?;
        let mut client = Client::connect(&running.addr.to_string(), token.trim())?;
        let key = client.create_aws_key(Role::Admin, "bench-api")?;
        let channel = client.create_channel("bench-api", None, vec![], None, None)?.arn;
        let protocol = time_all(&mut |q| {
            let w = WireQuery {
                start_ms: None,
                end_ms: None,
                filters: q.filters.iter().map(|(a, v)| (a.name().to_string(), v.clone())).collect(),
            };
            Ok(client.lookup(w, Some(50), None)?.0.len())
        })?;
        let mut http = HttpClient::connect(http_addr, key.clone())?;
        let target = format!("{}.LookupEvents", cairn_server::daemon::HTTP_TARGET_PREFIX);
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let over_http = time_all(&mut |q| {
            let (status, body) = http.post("/", "", "cloudtrail", &headers, lookup_body(q))?;
            if status != 200 {
                bail!("LookupEvents answered {status}: {}", String::from_utf8_lossy(&body));
            }
            Ok(body.len())
        })?;

        // 3. PutAuditEvents from concurrent senders.
        eprintln!("cairn bench-api: {} senders of {}-event PutAuditEvents calls for {:?}...", self.clients, self.batch, self.put_duration);
        let sent = Arc::new(AtomicU64::new(0));
        let query = format!("channelArn={}", sigv4::uri_encode(channel.as_bytes(), false));
        let go = Arc::new(std::sync::Barrier::new(self.clients + 1));
        let duration = self.put_duration;
        let senders: Vec<_> = (0..self.clients)
            .map(|c| {
                let (key, query, sent, batch, go) = (key.clone(), query.clone(), sent.clone(), self.batch, go.clone());
                std::thread::spawn(move || -> Result<Vec<Duration>> {
                    let mut http = HttpClient::connect(http_addr, key)?;
                    let mut lat = Vec::new();
                    // Bodies made before the clock starts, so the senders'
                    // CPU (on the server's cores) goes to sending; each
                    // stored event gets its own eventID all the same.
                    let mut n = (c as u64) << 40;
                    let bodies: Vec<Vec<u8>> = (0..32)
                        .map(|_| {
                            let events: Vec<serde_json::Value> = (0..batch)
                                .map(|i| {
                                    n += 1;
                                    serde_json::json!({"id": format!("e{i}"), "eventData": audit_event(n)})
                                })
                                .collect();
                            serde_json::json!({ "auditEvents": events }).to_string().into_bytes()
                        })
                        .collect();
                    let mut round = 0;
                    go.wait();
                    let deadline = Instant::now() + duration;
                    while Instant::now() < deadline {
                        let body = bodies[round % bodies.len()].clone();
                        round += 1;
                        let t = Instant::now();
                        let (status, resp) =
                            http.post("/PutAuditEvents", &query, "cloudtrail-data", &[("content-type", "application/json")], body)?;
                        lat.push(t.elapsed());
                        let doc: serde_json::Value = serde_json::from_slice(&resp)?;
                        if status != 200 || doc["failed"].as_array().is_none_or(|f| !f.is_empty()) {
                            bail!("PutAuditEvents answered {status}: {}", String::from_utf8_lossy(&resp));
                        }
                        sent.fetch_add(doc["successful"].as_array().map_or(0, |s| s.len()) as u64, Ordering::Relaxed);
                    }
                    Ok(lat)
                })
            })
            .collect();
        go.wait();
        let started = Instant::now();
        let mut put_lat = Vec::new();
        for s in senders {
            put_lat.extend(s.join().map_err(|_| anyhow::anyhow!("a sender panicked"))??);
        }
        let secs = started.elapsed().as_secs_f64();
        let put_events = sent.load(Ordering::Relaxed);
        drop(http);
        drop(client);
        running.stop()?;

        let [e50, e90, e99] = percentiles(engine);
        let [p50, p90, p99] = percentiles(protocol);
        let [h50, h90, h99] = percentiles(over_http);
        let [c50, c90, _] = percentiles(put_lat);
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let report = serde_json::json!({
            "profile": self.profile.name(),
            "events": self.events,
            "lookups": self.lookups,
            "cores": cores,
            "lookup_ms": {
                "engine": {"p50": e50, "p90": e90, "p99": e99},
                "protocol": {"p50": p50, "p90": p90, "p99": p99},
                "http_sigv4": {"p50": h50, "p90": h90, "p99": h99},
                "http_added_p50": h50 - e50,
            },
            "put_audit_events": {
                "clients": self.clients, "batch": self.batch, "seconds": secs, "events": put_events,
                "events_per_sec": put_events as f64 / secs, "call_ms": {"p50": c50, "p90": c90},
            },
        });
        match self.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            Output::Table => {
                println!(
                    "data: {} generated events, {} profile; {} lookups each way; {cores} cores",
                    self.events,
                    self.profile.name(),
                    self.lookups
                );
                println!("LookupEvents (50 per page)   p50 ms    p90 ms    p99 ms");
                println!("  engine, in process        {e50:>7.3}   {e90:>7.3}   {e99:>7.3}");
                println!("  Cairn protocol (TCP)      {p50:>7.3}   {p90:>7.3}   {p99:>7.3}");
                println!("  HTTP + SigV4 (JSON 1.1)   {h50:>7.3}   {h90:>7.3}   {h99:>7.3}");
                println!("  HTTP adds to the engine   {:>7.3} ms at p50", h50 - e50);
                println!(
                    "PutAuditEvents: {} senders x {}-event calls: {:.0} events/s ({put_events} events in {secs:.1} s), call p50 {c50:.2} ms, p90 {c90:.2} ms",
                    self.clients,
                    self.batch,
                    put_events as f64 / secs
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
