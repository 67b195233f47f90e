//! cairnd's CloudTrail-compatible HTTP API driven by the real AWS clients:
//! boto3 and the AWS CLI, pinned in tests/python/requirements.txt and
//! installed into `target/pyenv` (by .ci/run, or here when missing). The
//! test fails, it does not skip, when they cannot be had: it needs
//! `python3` with `venv`, and the package registry the first time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{cairn_bin, fixtures_dir};
use crate::server::Daemon;

pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The virtual environment with the pinned clients: `target/pyenv`,
/// created or brought up to the pins once per test run.
pub(crate) fn pyenv() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"));
        let dir = target.join("pyenv");
        let python = dir.join("bin/python");
        if !python.exists() {
            let st = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&dir)
                .status()
                .unwrap_or_else(|e| panic!("python3 is needed for the AWS client tests (python3 -m venv {}): {e}", dir.display()));
            assert!(st.success(), "python3 -m venv {} failed: install python3 with its venv module", dir.display());
        }
        // Already satisfied pins cost no download.
        let req = repo().join("tests/python/requirements.txt");
        let out = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&req)
            .output()
            .expect("running pip");
        assert!(
            out.status.success(),
            "installing the pinned AWS clients ({}) failed; they come from the package registry:\n{}",
            req.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// Two Insight records (start and end), so Insights lookups have
/// something to find; Insight events are otherwise written by cairnd.
fn insight_records() -> String {
    let one = |id: &str, state: &str, time: &str| {
        serde_json::json!({
            "eventVersion": "1.08", "eventTime": time, "awsRegion": "us-east-1", "eventID": id,
            "eventType": "AwsCloudTrailInsight", "recipientAccountId": "123456789012",
            "sharedEventID": "5b3b5a50-2c7a-4a3b-9d1f-3f1b2c0d4e5f", "eventCategory": "Insight",
            "insightDetails": {"state": state, "eventSource": "iam.amazonaws.com", "eventName": "DeleteUser",
                "insightType": "ApiCallRateInsight", "insightContext": {"statistics": {"baseline": {"average": 0.1}}}}
        })
        .to_string()
    };
    format!(
        "{}\n{}\n",
        one("1c2a4e9e-0f4e-4c1d-9a2b-000000000001", "Start", "2025-03-01T10:05:00Z"),
        one("1c2a4e9e-0f4e-4c1d-9a2b-000000000002", "End", "2025-03-01T10:35:00Z")
    )
}

/// Ingests into `d` 3,000 records of `cairn gen` with `gen_args`, then
/// `more` files, then the real records in tests/fixtures/cloudtrail (whose
/// documentation placeholders the store rejects: exit code 1).
fn ingest_test_data(d: &Daemon, dir: &Path, gen_args: &[&str], more: &[PathBuf]) {
    let gen = Command::new(cairn_bin()).args(["gen", "--count", "3000"]).args(gen_args).output().unwrap();
    assert!(gen.status.success());
    let mut inputs = vec![dir.join("gen.ndjson")];
    std::fs::write(&inputs[0], &gen.stdout).unwrap();
    inputs.extend(more.iter().cloned());
    for f in std::fs::read_dir(fixtures_dir().join("cloudtrail")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ndjson") {
            inputs.push(p);
        }
    }
    for p in &inputs {
        let (code, _, err) = d.cli(&["ingest", p.to_str().unwrap()]);
        assert!(code == 0 || code == 1, "ingesting {}: {err}", p.display());
    }
}

/// Issues an AWS key pair through `cairn token create --aws`: "ID:SECRET".
pub(crate) fn aws_key(d: &Daemon, role: &str) -> String {
    let (code, out, err) = d.cli(&["token", "create", "--role", role, "--aws", "--name", "http-api test"]);
    assert_eq!(code, 0, "{err}");
    let text = String::from_utf8(out).unwrap();
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).unwrap_or_else(|| panic!("no {k} in {text}")).trim().to_string();
    format!("{}:{}", field("aws_access_key_id ="), field("aws_secret_access_key ="))
}

// Goal: boto3 and the AWS CLI, pointed at cairnd with --endpoint-url, get
// what `cairn lookup` gets (every attribute key, time ranges, paging,
// Insights), CloudTrail's error classes for bad requests, and refusals for
// a wrong secret, an expired signature, an unknown key, an unsigned
// request and the wrong role; PutAuditEvents reports each event's success
// or CloudTrail's error code, stores the sent eventData byte for byte
// (`cairn get`), visible to LookupEvents, and enforces its channel's
// external ID and senders; channels are made, listed and read through the
// API; ListPublicKeys lists the RSA digest keys across rotations (DER
// PKCS#1, MD5 fingerprints, adjoining validity ranges); the server keeps
// serving throughout. The data is the real records
// in tests/fixtures/cloudtrail and generated ones.
#[test]
fn aws_clients_work_against_cairnd() {
    let env = pyenv();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), &["--http-listen", "127.0.0.1:0", "--compaction", "false"]);
    let http = d.http_addr.clone().expect("the HTTP API's address");
    let insights = dir.path().join("insights.ndjson");
    std::fs::write(&insights, insight_records()).unwrap();
    ingest_test_data(&d, dir.path(), &["--seed", "7"], &[insights]);
    let read = aws_key(&d, "read");
    let ingest = aws_key(&d, "ingest");
    let admin = aws_key(&d, "admin");
    let channel = |args: &[&str]| {
        let (code, out, err) = d.cli(&[&["channel", "create"], args].concat());
        assert_eq!(code, 0, "{err}");
        String::from_utf8(out).unwrap().trim().to_string()
    };
    let open = channel(&["door-logs", "--external-id", "site-7", "--account-id", "111122223333"]);
    let restricted = channel(&["vault", "--allow", read.split_once(':').unwrap().0]);
    let token_file = dir.path().join("admin.token");
    let out = Command::new(env.join("bin/python"))
        .arg(repo().join("tests/python/cloudtrail_api.py"))
        .args(["--endpoint", &format!("http://{http}"), "--read-key", &read, "--ingest-key", &ingest])
        .arg("--cairn")
        .arg(cairn_bin())
        .args(["--server", &d.addr, "--token-file"])
        .arg(&token_file)
        .arg("--aws")
        .arg(env.join("bin/aws"))
        .args(["--admin-key", &admin, "--channel", &open, "--restricted-channel", &restricted, "--workdir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the AWS clients' checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all 13 checks passed"), "{stdout}");
    // The secrets were never written to the data directory or its logs.
    let keys = std::fs::read_to_string(dir.path().join("aws-keys")).unwrap();
    for k in [&read, &ingest] {
        assert!(!keys.contains(k.split_once(':').unwrap().1));
    }
}

// Goal: the HTTP API speaks TLS with cairnd's certificate (boto3 trusting
// the CA is served; one that does not, or plaintext, is not), and shares
// the daemon's connection limit: over it, requests get 503
// ServiceUnavailableException naming the limit, and service resumes once
// connections close.
#[test]
fn aws_clients_over_tls_and_at_the_connection_limit() {
    let env = pyenv();
    let tls = fixtures_dir().join("tls");
    let (cert, key, ca) = (tls.join("server.pem"), tls.join("server.key"), tls.join("ca.pem"));
    let dir = tempfile::tempdir().unwrap();
    let limit = 3;
    let d = Daemon::start_with(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--connections-max",
            &limit.to_string(),
            "--insights",
            "false",
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, (0..5).flat_map(|i| [crate::common::nth(i), b"\n".to_vec()].concat()).collect::<Vec<u8>>()).unwrap();
    let (code, _, err) = d.cli(&["--tls-ca", ca.to_str().unwrap(), "ingest", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = d.cli(&["--tls-ca", ca.to_str().unwrap(), "token", "create", "--role", "read", "--aws"]);
    assert_eq!(code, 0, "{err}");
    let text = String::from_utf8(out).unwrap();
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().to_string();
    let pair = format!("{}:{}", field("aws_access_key_id ="), field("aws_secret_access_key ="));
    let out = Command::new(env.join("bin/python"))
        .arg(repo().join("tests/python/tls_and_limits.py"))
        .args(["--addr", d.http_addr.as_deref().unwrap(), "--ca", ca.to_str().unwrap(), "--key", &pair])
        .args(["--limit", &limit.to_string(), "--events", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the TLS and limit checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all 3 checks passed"), "{stdout}");
}

// Goal: every event PutAuditEvents acknowledged survives kill -9 of cairnd
// at a random point while boto3 keeps sending (three kills, seeded so a
// run's kill points are reproducible): after each, the store opens and
// holds every acknowledged eventID.
#[test]
fn put_audit_events_acknowledged_survive_kill_9() {
    let env = pyenv();
    let dir = tempfile::tempdir().unwrap();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let (mut key, mut channel) = (String::new(), String::new());
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut d = Daemon::start_with(dir.path(), &["--http-listen", "127.0.0.1:0", "--insights", "false", "--compaction", "false"]);
        if round == 0 {
            key = aws_key(&d, "ingest");
            let (code, out, err) = d.cli(&["channel", "create", "heartbeats"]);
            assert_eq!(code, 0, "{err}");
            channel = String::from_utf8(out).unwrap().trim().to_string();
        }
        let out = dir.path().join(format!("acked-{round}.txt"));
        let sender = Command::new(env.join("bin/python"))
            .arg(repo().join("tests/python/put_until_killed.py"))
            .args(["--endpoint", &format!("http://{}", d.http_addr.as_deref().unwrap()), "--key", &key, "--channel", &channel])
            .arg("--out")
            .arg(&out)
            .args(["--tag", &format!("r{round}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Let the sender get going, then kill at a random point.
        std::thread::sleep(std::time::Duration::from_millis(500));
        crate::common::kill_9_after_random_delay(&mut d.child, &mut seed, 2000);
        let done = sender.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "the sender failed:\n{}\n{}",
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        // Only whole lines: the sender writes each answer's ids at once.
        acked.extend(text.lines().filter(|l| l.len() == 36).map(str::to_string));
        let store = cairn_engine::Store::open(dir.path(), cairn_engine::Options::default()).unwrap();
        for id in &acked {
            assert_eq!(store.get(id).unwrap().len(), 1, "acknowledged event {id} is missing after kill -9 (round {round})");
        }
        store.close().unwrap();
    }
    assert!(acked.len() >= 150, "only {} events were acknowledged before the kills", acked.len());
}

// Goal: CloudTrail Lake's query API works from boto3 and the AWS CLI
// against cairnd: StartQuery/DescribeQuery/GetQueryResults (paged,
// Lake's row shape) give what `cairn count` and `cairn lookup` give, with
// the store's id as the table name and the indexes doing the filtering
// (EventsScanned); bad SQL, DDL/DML, unknown ids and bad tokens get Lake's
// exceptions; the results, memory, time and concurrency limits end or
// refuse queries with errors naming the limit; CancelQuery and
// ListQueries work; an ingest key cannot query; `cairn query --server`
// streams the same answers over Cairn's protocol (Arrow IPC frames), with
// the same errors; the server keeps serving.
// The data is generated records and the real records in
// tests/fixtures/cloudtrail.
#[test]
fn lake_queries_through_boto3_and_the_aws_cli() {
    let env = pyenv();
    let dir = tempfile::tempdir().unwrap();
    // The timeout leaves the memory-limit check room on a loaded 2-core
    // machine (debug build, the suite's other tests beside it): at 5 s a
    // run of the whole suite timed that query out before its pool filled.
    let (concurrency, timeout) = ("2", "15");
    let d = Daemon::start_with(
        dir.path(),
        &[
            "--http-listen",
            "127.0.0.1:0",
            "--insights",
            "false",
            "--query-concurrency",
            concurrency,
            "--query-memory-mib",
            "16",
            "--query-timeout-secs",
            timeout,
            "--query-results-mib",
            "1",
        ],
    );
    ingest_test_data(&d, dir.path(), &["--seed", "11", "--profile", "diverse"], &[]);
    let (read, ingest) = (aws_key(&d, "read"), aws_key(&d, "ingest"));
    let http = d.http_addr.clone().expect("the HTTP API's address");
    let out = Command::new(env.join("bin/python"))
        .arg(repo().join("tests/python/lake_queries.py"))
        .args(["--endpoint", &format!("http://{http}"), "--read-key", &read, "--ingest-key", &ingest])
        .arg("--cairn")
        .arg(cairn_bin())
        .args(["--server", &d.addr, "--token-file"])
        .arg(dir.path().join("admin.token"))
        .arg("--aws")
        .arg(env.join("bin/aws"))
        .args(["--concurrency", concurrency, "--timeout", timeout])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the Lake query checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all 11 checks passed"), "{stdout}");
}
