//! End-to-end tests of the real `cairnd` binary on a loopback port, driven
//! by the real `cairn` binary and by raw sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cairn_server::client::Client;
use cairn_server::protocol::{write_frame, Hello, Role, WireQuery, MAGIC, PROTOCOL_VERSION};

use crate::common::{cairn_bin, cairnd_bin, nth};

/// A cairnd child on an ephemeral loopback port, killed on drop.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) addr: String,
    /// The CloudTrail-compatible HTTP API's address (`--http-listen`).
    pub(crate) http_addr: Option<String>,
    dir: PathBuf,
}

impl Daemon {
    pub(crate) fn start(dir: &Path) -> Daemon {
        Self::start_with(dir, &[])
    }

    pub(crate) fn start_with(dir: &Path, extra: &[&str]) -> Daemon {
        Self::start_with_env(dir, extra, &[])
    }

    pub(crate) fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(cairnd_bin())
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut next_addr = || {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let addr = line.trim().rsplit(' ').next().unwrap().to_string();
            assert!(addr.starts_with("127.0.0.1:"), "unexpected line {line:?}");
            addr
        };
        let addr = next_addr();
        let http_addr = extra.contains(&"--http-listen").then(next_addr);
        Daemon { child, addr, http_addr, dir: dir.to_path_buf() }
    }

    pub(crate) fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.join("admin.token")).unwrap().trim().to_string()
    }

    pub(crate) fn cli(&self, args: &[&str]) -> (i32, Vec<u8>, String) {
        let out =
            Command::new(cairn_bin()).args(["--quiet", "--server", &self.addr, "--data-dir"]).arg(&self.dir).args(args).output().unwrap();
        (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// SIGTERM, and the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Goal: ingest, lookup, get, count, export and stats round-trip through the
// real daemon and client, with the admin token found automatically.
#[test]
fn round_trips_through_cairnd() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let input = dir.path().join("in.ndjson");
    let recs: Vec<Vec<u8>> = (0..300).map(nth).collect();
    std::fs::write(&input, recs.iter().flat_map(|r| [r.as_slice(), b"\n"].concat()).collect::<Vec<u8>>()).unwrap();
    let (code, _, err) = d.cli(&["ingest", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = d.cli(&["get", "n000042"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, [recs[42].as_slice(), b"\n"].concat());
    let (code, out, _) = d.cli(&["lookup", "--max", "10", "--output", "ndjson", "--attr", "Username=alice"]);
    assert_eq!(code, 0);
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 10);
    let (_, out, _) = d.cli(&["count", "--by", "EventName", "--output", "json"]);
    let counts: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(counts[0]["Count"], 300);
    let (_, out, _) = d.cli(&["export", "--oldest-first"]);
    assert_eq!(out, recs.iter().flat_map(|r| [r.as_slice(), b"\n"].concat()).collect::<Vec<u8>>());
    let (_, out, _) = d.cli(&["stats", "--output", "json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(stats["events"], 300);
    assert!(stats["server"]["connections"].as_u64().unwrap() >= 1);
    // A server does not send how its disk bytes split: unknown, not zero.
    assert!(stats["disk_bytes"].as_u64().unwrap() > 0);
    for k in ["segment_bytes", "wal_bytes", "tile_bytes"] {
        assert!(stats[k].is_null(), "{k}: {}", stats[k]);
    }
    // The ingest benchmark drives the same server.
    let (code, out, err) = d.cli(&["bench", "--events", "2000", "--batch", "100", "--clients", "2", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["mode"], "server");
    assert!(report["events_per_sec"].as_f64().unwrap() > 0.0);
    let (_, out, _) = d.cli(&["stats", "--output", "json"]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out).unwrap()["events"], 2300);
    // Re-sending is idempotent over the wire too.
    let mut c = Client::connect(&d.addr, &d.admin_token()).unwrap();
    let again = c.append(vec![recs[0].clone()]).unwrap();
    assert_eq!(again, vec![cairn_server::protocol::WireOutcome::Duplicate(0)]);
}

// Goal: bad input gets its error and costs nothing else: garbage bytes, a
// truncated frame, an oversized frame length, an unknown message, a mixed
// batch, missing and wrong tokens, and tokens of the wrong role. The
// server keeps serving, and nothing accepted is lost.
#[test]
fn bad_input_is_refused_and_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let admin = d.admin_token();
    let mut c = Client::connect(&d.addr, &admin).unwrap();
    let out = c.append(vec![nth(0), b"{not json".to_vec(), nth(1)]).unwrap();
    assert!(matches!(&out[1], cairn_server::protocol::WireOutcome::Rejected { code, .. } if code == "InvalidJson"));
    assert_eq!(out.len(), 3);

    let raw = |bytes: &[u8]| {
        let mut s = TcpStream::connect(&d.addr).unwrap();
        s.write_all(bytes).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        reply
    };
    raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); // garbage
    raw(&[0xff, 0xff, 0xff, 0x7f]); // oversized length
    raw(&[10, 0, 0, 0, 1, 2]); // truncated frame
                               // An authenticated connection sending an unknown message type.
    let mut s = TcpStream::connect(&d.addr).unwrap();
    write_frame(&mut s, &Hello { magic: MAGIC, version: PROTOCOL_VERSION, token: admin.clone() }).unwrap();
    s.write_all(&[3, 0, 0, 0, 0x01, 0x63, 0x00]).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(String::from_utf8_lossy(&reply).contains("MalformedFrame"), "unknown message must be named");

    let err = Client::connect(&d.addr, "cairn_wrong").err().unwrap().to_string();
    assert!(err.contains("AuthenticationFailed"), "{err}");
    let err = Client::connect(&d.addr, "").err().unwrap().to_string();
    assert!(err.contains("AuthenticationFailed"), "{err}");

    let ingest_token = c.create_token(Role::Ingest, "agent").unwrap();
    let read_token = c.create_token(Role::Read, "auditor").unwrap();
    let mut ingest = Client::connect(&d.addr, &ingest_token).unwrap();
    assert!(ingest.append(vec![nth(2)]).is_ok());
    let err = ingest.lookup(WireQuery::default(), None, None).unwrap_err().to_string();
    assert!(err.contains("AccessDenied"), "{err}");
    let mut read = Client::connect(&d.addr, &read_token).unwrap();
    let err = read.append(vec![nth(3)]).unwrap_err().to_string();
    assert!(err.contains("AccessDenied"), "{err}");
    let err = read.create_token(Role::Admin, "x").unwrap_err().to_string();
    assert!(err.contains("AccessDenied"), "{err}");
    // Still serving; everything accepted is there.
    assert_eq!(read.stats().unwrap().events, 3);
    let (events, _) = read.lookup(WireQuery::default(), Some(10), None).unwrap();
    assert_eq!(events.len(), 3);
}

// Goal: SIGTERM while clients ingest is a clean exit, and every event a
// client saw acknowledged is there after a restart.
#[test]
fn sigterm_during_ingest_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let (addr, token) = (d.addr.clone(), d.admin_token());
    let acked = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let a2 = acked.clone();
    let writer = std::thread::spawn(move || {
        let Ok(mut c) = Client::connect(&addr, &token) else { return };
        for b in 0..1000usize {
            let batch: Vec<Vec<u8>> = (0..50).map(|i| nth(b * 50 + i)).collect();
            match c.append(batch) {
                Ok(out) => a2.lock().extend(out.into_iter().enumerate().map(|(i, o)| (b * 50 + i, o))),
                Err(_) => return,
            }
        }
    });
    while acked.lock().len() < 500 {
        std::thread::yield_now();
    }
    let status = d.terminate();
    writer.join().unwrap();
    assert!(status.success(), "cairnd exited with {status}");
    let store = cairn_engine::Store::open(dir.path(), cairn_engine::Options::default()).unwrap();
    let events = crate::common::assert_consistent(&store);
    for (i, o) in acked.lock().iter() {
        let cairn_server::protocol::WireOutcome::Stored(seq) = o else { panic!("unexpected {o:?}") };
        assert_eq!(events[*seq as usize].record, nth(*i), "acknowledged event {i} missing");
    }
}

/// Connects and asks for stats, retrying while the connection limit is
/// reached (a departed client's slot frees asynchronously); None if it
/// never frees within 20 s.
fn stats_when_a_slot_frees(addr: &str, token: &str) -> Option<u64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(mut c) = Client::connect(addr, token) {
            if let Ok(s) = c.stats() {
                return Some(s.events);
            }
        }
    }
    None
}

// Goal: a client that starts a Tail and goes away while no events arrive
// frees its connection: abandoned tails never lock others out (they used to
// poll forever, each holding a slot of the connection limit).
#[test]
fn abandoned_tails_free_their_connections() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), &["--connections-max", "2"]);
    let token = d.admin_token();
    for _ in 0..6 {
        let mut s = TcpStream::connect(&d.addr).unwrap();
        write_frame(&mut s, &Hello { magic: MAGIC, version: PROTOCOL_VERSION, token: token.clone() }).unwrap();
        let tail = cairn_server::protocol::Request {
            id: 1,
            body: cairn_server::protocol::RequestBody::Tail { query: WireQuery::default(), from_seq: None },
        };
        write_frame(&mut s, &tail).unwrap();
        drop(s);
        assert_eq!(stats_when_a_slot_frees(&d.addr, &token), Some(0), "a departed tail still holds its connection");
    }
}

// Goal: a tail started before appends sees exactly the matching events
// appended after it started.
#[test]
fn tail_sees_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut c = Client::connect(&d.addr, &d.admin_token()).unwrap();
    c.append((0..5).map(nth).collect()).unwrap();
    let mut child = Command::new(cairn_bin())
        .args(["--quiet", "--server", &d.addr, "--data-dir"])
        .arg(&d.dir)
        .args(["tail", "--attr", "EventName=X"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    // Append until the tail has started and reports a new event.
    let mut sent = 5;
    let first = loop {
        c.append(vec![nth(sent)]).unwrap();
        sent += 1;
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            break l;
        }
        assert!(sent < 200, "tail printed nothing");
    };
    let seen: serde_json::Value = serde_json::from_str(&first).unwrap();
    let id: usize = seen["eventID"].as_str().unwrap()[1..].parse().unwrap();
    assert!(id >= 5, "tail printed an event from before it started: {id}");
    c.append(vec![nth(900)]).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let l = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())).expect("the tail must show the new event");
        if l.contains("n000900") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

// Goal: kill -9 of cairnd during a multi-client ingest, at several points,
// loses no event any client saw acknowledged.
#[test]
fn kill_9_of_cairnd_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut next_id = 0usize;
    let mut acked: Vec<(usize, u64)> = Vec::new();
    for round in 0..6u64 {
        let mut d = Daemon::start(dir.path());
        let token = d.admin_token();
        let got = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = Vec::new();
        for k in 0..3usize {
            let (addr, token, got, stop) = (d.addr.clone(), token.clone(), got.clone(), stop.clone());
            let base = next_id + k * 100_000;
            clients.push(std::thread::spawn(move || {
                let Ok(mut c) = Client::connect(&addr, &token) else { return };
                for b in 0..2000usize {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let ids: Vec<usize> = (0..20).map(|i| base + b * 20 + i).collect();
                    match c.append(ids.iter().map(|&i| nth(i)).collect()) {
                        Ok(out) => got.lock().extend(ids.into_iter().zip(out)),
                        Err(_) => return,
                    }
                }
            }));
        }
        next_id += 300_000;
        // Let some appends through, then kill at a point that varies by round.
        while got.lock().len() < 200 + (round as usize) * 150 {
            std::thread::yield_now();
        }
        let _ = d.child.kill(); // SIGKILL
        let _ = d.child.wait();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in clients {
            c.join().unwrap();
        }
        for (i, o) in got.lock().iter() {
            match o {
                cairn_server::protocol::WireOutcome::Stored(s) => acked.push((*i, *s)),
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        let store = cairn_engine::Store::open(dir.path(), cairn_engine::Options::default()).unwrap();
        let events = crate::common::assert_consistent(&store);
        for (i, seq) in &acked {
            let e = events.get(*seq as usize).unwrap_or_else(|| panic!("round {round}: acknowledged seq {seq} lost"));
            assert_eq!(e.record, nth(*i), "round {round}: seq {seq} holds other bytes");
        }
    }
    assert!(acked.len() >= 1500);
}

// Goal: with a certificate and key, cairnd speaks TLS: `cairn --tls-ca`
// works, a client that does not trust the CA or speaks plaintext is refused,
// and the server keeps serving.
#[test]
fn tls_round_trip() {
    let tls = crate::common::fixtures_dir().join("tls");
    let (cert, key, ca) = (tls.join("server.pem"), tls.join("server.key"), tls.join("ca.pem"));
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, [nth(1).as_slice(), b"\n"].concat()).unwrap();
    let (code, _, err) = d.cli(&["--tls-ca", ca.to_str().unwrap(), "ingest", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = d.cli(&["--tls-ca", ca.to_str().unwrap(), "get", "n000001"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, [nth(1).as_slice(), b"\n"].concat());
    // Plaintext to a TLS server fails, and so does TLS trusting another CA.
    let (code, _, _) = d.cli(&["stats"]);
    assert_eq!(code, 2);
    let (code, _, err) = d.cli(&["--tls-ca", cert.to_str().unwrap(), "stats"]);
    assert_eq!(code, 2, "{err}");
    let mut c = Client::connect_with(&d.addr, &d.admin_token(), Some(&ca)).unwrap();
    assert_eq!(c.stats().unwrap().events, 1);
}

// Goal: the integrity commands work through cairnd as they do embedded:
// key export, checkpoint, proof (checked offline), consistency, verify
// while ingest continues; key rotation needs an admin token, and a read
// token may prove and verify but not rotate.
#[test]
fn integrity_through_cairnd() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let input = dir.path().join("in.ndjson");
    let recs: Vec<Vec<u8>> = (0..500).map(nth).collect();
    std::fs::write(&input, recs.iter().flat_map(|r| [r.as_slice(), b"\n"].concat()).collect::<Vec<u8>>()).unwrap();
    let (code, _, err) = d.cli(&["ingest", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, key, err) = d.cli(&["key", "export"]);
    assert_eq!(code, 0, "{err}");
    let key = String::from_utf8(key).unwrap().trim().to_string();
    let cp = dir.path().join("cp");
    let (code, _, err) = d.cli(&["checkpoint", "--output", cp.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut admin = Client::connect(&d.addr, &d.admin_token()).unwrap();
    let read = admin.create_token(Role::Read, "auditor").unwrap();
    let mut reader = Client::connect(&d.addr, &read).unwrap();
    let bundles = reader.prove(None, Some("n000123".into()), None).unwrap();
    assert_eq!(bundles.len(), 1);
    let bundle = dir.path().join("p.json");
    std::fs::write(&bundle, &bundles[0]).unwrap();
    let out = Command::new(cairn_bin()).args(["verify-proof", bundle.to_str().unwrap(), "--public-key", &key]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(reader.rotate_key().is_err(), "a read token cannot rotate keys");
    let (code, out, err) = d.cli(&["--token", &read, "verify", "--checkpoint", cp.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).starts_with("ok: 500 events"), "{}", String::from_utf8_lossy(&out));
    let keys = admin.rotate_key().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], key);
    let more: Vec<Vec<u8>> = (500..600).map(nth).collect();
    admin.append(more).unwrap();
    let (code, out, err) = d.cli(&["consistency", cp.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("is a prefix of size 600"), "{}", String::from_utf8_lossy(&out));
    let (code, out, _) = d.cli(&["verify", "--public-key", &key]);
    assert_eq!(code, 1, "the newest checkpoints are signed by the new key: {}", String::from_utf8_lossy(&out));
    let (code, _, err) = d.cli(&["verify", "--public-key", &keys.join("\n")]);
    assert_eq!(code, 0, "{err}");
}

/// A record of about `kib` KiB with this eventID, distinct for each `n`.
fn big_record(id: &str, n: usize, kib: usize) -> Vec<u8> {
    let r = String::from_utf8(nth(n)).unwrap();
    let pad = format!("\"pad\":\"{n}-{}\",\"readOnly\"", "x".repeat(kib << 10));
    r.replacen("\"readOnly\"", &pad, 1).replace(&format!("n{n:06}"), id).into_bytes()
}

// Goal: no response frame exceeds the protocol's 16 MiB bound: a page of
// large records ends early with a NextToken that continues it (a 25.8 MB
// page used to be sent), and an answer that cannot be cut (every record
// with one eventID) is a ResponseTooLarge error, not an oversized frame.
#[test]
fn responses_fit_the_frame_bound() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut c = Client::connect(&d.addr, &d.admin_token()).unwrap();
    // 100 records of 200 KiB: 20 MB in all; 30 share one eventID.
    for chunk in (0..100).collect::<Vec<_>>().chunks(20) {
        let batch = chunk.iter().map(|&i| big_record(&if i < 30 { "same".to_string() } else { format!("big{i}") }, i, 200)).collect();
        c.append(batch).unwrap();
    }
    let (page, token) = c.lookup(WireQuery::default(), Some(100), None).unwrap();
    let bytes: usize = page.iter().map(|e| e.record.len()).sum();
    assert!(page.len() < 100 && bytes < 16 << 20, "page of {} events, {bytes} bytes", page.len());
    let (rest, end) = c.lookup(WireQuery::default(), Some(100), token.clone()).unwrap();
    assert!(
        token.is_some() && end.is_none(),
        "first page {} events, token {:?}; second {} events, token {:?}",
        page.len(),
        token.is_some(),
        rest.len(),
        end.is_some()
    );
    assert_eq!(page.len() + rest.len(), 100, "the next page continues the cut one");
    // 30 x 200 KiB under one eventID: one answer of 6 MB is fine...
    assert_eq!(c.get("same").unwrap().len(), 30);
    // ... 90 of them (18 MB) cannot be sent in one frame.
    for chunk in (100..160).collect::<Vec<_>>().chunks(20) {
        c.append(chunk.iter().map(|&i| big_record("same", i, 200)).collect()).unwrap();
    }
    let err = c.get("same").unwrap_err().downcast::<cairn_server::client::ServerError>().unwrap();
    assert_eq!(err.code, "ResponseTooLarge", "{err}");
    // The connection goes on.
    assert_eq!(c.stats().unwrap().events, 160);
}

// Goal: request id 0 is reserved: answered InvalidRequestId with id 0,
// and the connection serves on; error messages do not repeat their code.
#[test]
fn request_id_zero_is_reserved_and_messages_do_not_repeat_codes() {
    use cairn_server::protocol::{read_frame, Request, RequestBody, Response, ResponseBody};
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut s = TcpStream::connect(&d.addr).unwrap();
    write_frame(&mut s, &Hello { magic: MAGIC, version: PROTOCOL_VERSION, token: d.admin_token() }).unwrap();
    let _: cairn_server::protocol::HelloReply = read_frame(&mut s, 1 << 16).unwrap();
    write_frame(&mut s, &Request { id: 0, body: RequestBody::Stats }).unwrap();
    write_frame(
        &mut s,
        &Request { id: 7, body: RequestBody::Lookup { query: WireQuery::default(), max_results: Some(0), next_token: None } },
    )
    .unwrap();
    write_frame(&mut s, &Request { id: 8, body: RequestBody::Stats }).unwrap();
    let first: Response = read_frame(&mut s, 16 << 20).unwrap();
    assert!(matches!(&first, Response { id: 0, body: ResponseBody::Error(e) } if e.code == "InvalidRequestId"), "{first:?}");
    let second: Response = read_frame(&mut s, 16 << 20).unwrap();
    let ResponseBody::Error(e) = second.body else { panic!("{second:?}") };
    assert_eq!((second.id, e.code.as_str()), (7, "InvalidMaxResultsException"));
    assert!(!e.message.contains(&e.code), "the message repeats the code: {}", e.message);
    let third: Response = read_frame(&mut s, 16 << 20).unwrap();
    assert!(matches!(third, Response { id: 8, body: ResponseBody::Stats(_) }));
}

// Goal: a version-1 client (its frozen Hello frame) is told clearly that
// the server speaks version 2.
#[test]
fn a_version_1_client_is_told_which_version_to_speak() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let text = std::fs::read_to_string(crate::common::fixtures_dir().join("golden/protocol-v1.txt")).unwrap();
    let hello = hex::decode(text.lines().find_map(|l| l.strip_prefix("hello ")).unwrap()).unwrap();
    let mut s = TcpStream::connect(&d.addr).unwrap();
    s.write_all(&hello).unwrap();
    let reply: cairn_server::protocol::HelloReply = cairn_server::protocol::read_frame(&mut s, 1 << 16).unwrap();
    let cairn_server::protocol::HelloReply::Error(e) = reply else { panic!("{reply:?}") };
    assert_eq!(e.code, "UnsupportedProtocolVersion");
    assert!(e.message.contains("version 2") && e.message.contains("version 1"), "{}", e.message);
}

// Goal: records sent straight to cairnd keep the rule that bad bytes cost
// only themselves: in one Append, garbage before, between and after valid
// records (not JSON, invalid UTF-8, NUL bytes, a UTF-8 byte-order mark, a
// record over the size limit, two records in one element) is rejected
// element by element, and every valid record is stored and read back
// byte-exact.
#[test]
fn append_keeps_every_valid_record_among_bad_ones() {
    use cairn_server::protocol::WireOutcome;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut c = Client::connect(&d.addr, &d.admin_token()).unwrap();
    let big =
        String::from_utf8(nth(900)).unwrap().replacen("\"readOnly\"", &format!("\"pad\":\"{}\",\"readOnly\"", "x".repeat(300 << 10)), 1);
    let two = [nth(901), nth(902)].concat();
    let batch: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        nth(10),
        b"\xff\xfe{\"eventTime\":1}".to_vec(),
        nth(11),
        b"\0\0\0\0".to_vec(),
        [b"\xEF\xBB\xBF".as_slice(), &nth(903)].concat(),
        nth(12),
        big.into_bytes(),
        two,
        nth(13),
        b"{\"eventTime\":\"2026-01-01T00:00:00Z\",\"eventName\":".to_vec(),
    ];
    let out = c.append(batch.clone()).unwrap();
    assert_eq!(out.len(), batch.len());
    for (i, o) in out.iter().enumerate() {
        let valid = [1, 3, 6, 9].contains(&i);
        assert_eq!(matches!(o, WireOutcome::Stored(_)), valid, "element {i}: {o:?}");
    }
    for (i, id) in [(1, "n000010"), (3, "n000011"), (6, "n000012"), (9, "n000013")] {
        let got = c.get(id).unwrap();
        assert_eq!(got.len(), 1, "{id}");
        assert_eq!(got[0].record, batch[i], "{id} is stored byte-exact");
    }
    assert_eq!(c.stats().unwrap().events, 4);
}
