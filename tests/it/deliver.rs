//! Delivery (`cairnd --deliver`) to a real S3-compatible server: moto's
//! standalone server (pinned in tests/python/requirements.txt, run as its
//! own process, so the Rust client, boto3 and the AWS CLI all talk to it
//! over HTTP as they would to S3). moto was chosen because it is on the
//! package registry the CI venv already uses, implements what
//! validate-logs needs (ListObjects with Marker, user metadata,
//! GetBucketLocation) and starts in a second. The checks themselves are
//! made by the real clients (tests/python/deliver_check.py).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{cairn_bin, fixtures_dir, kill_9_after_random_delay};
use crate::http_api::{aws_key, pyenv, repo};
use crate::server::Daemon;

/// The credentials cairnd and the clients present to moto (which accepts
/// any); cairnd reads them from the usual AWS variables.
const AWS_ENV: [(&str, &str); 3] =
    [("AWS_ACCESS_KEY_ID", "cairn-test"), ("AWS_SECRET_ACCESS_KEY", "cairn-test-secret"), ("AWS_REGION", "us-east-1")];
const BUCKET: &str = "cairn-trail";
const ACCOUNT: &str = "123456789012";

/// moto's S3 server on a free loopback port, killed on drop.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    fn start() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(pyenv().join("bin/python"))
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto's S3 server from target/pyenv");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto's S3 server did not listen on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server { child, endpoint: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs deliver_check.py `cmd`; panics with its output when it fails.
fn check(s3: &S3Server, cmd: &str, args: &[&str]) -> String {
    check_as(s3, None, cmd, args)
}

/// `check`, signing S3 requests with `key` (ID:SECRET) when given.
fn check_as(s3: &S3Server, key: Option<&str>, cmd: &str, args: &[&str]) -> String {
    let out = Command::new(pyenv().join("bin/python"))
        .arg(repo().join("tests/python/deliver_check.py"))
        .args([cmd, "--s3", &s3.endpoint, "--bucket", BUCKET])
        .args(key.map(|k| ["--s3-key", k]).into_iter().flatten())
        .args(args)
        .envs(AWS_ENV)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "deliver_check.py {cmd} failed:\n{text}");
    text
}

fn start_delivering(dir: &Path, s3: &S3Server) -> Daemon {
    start_delivering_as(dir, s3, "cairn")
}

fn start_delivering_as(dir: &Path, s3: &S3Server, trail: &str) -> Daemon {
    start_delivering_with(dir, s3, trail, &AWS_ENV)
}

fn start_delivering_with(dir: &Path, s3: &S3Server, trail: &str, env: &[(&str, &str)]) -> Daemon {
    Daemon::start_with_env(
        dir,
        &[
            "--http-listen",
            "127.0.0.1:0",
            "--account-id",
            ACCOUNT,
            "--trail-name",
            trail,
            "--deliver",
            &format!("s3://{BUCKET}/trail"),
            "--deliver-endpoint",
            &s3.endpoint,
            "--deliver-interval-secs",
            "1",
            "--digest-interval-secs",
            "2",
            "--deliver-parquet-compact-after-secs",
            "1",
            "--compaction",
            "false",
            "--insights",
            "false",
        ],
        env,
    )
}

/// deliver_check.py validate: the real AWS CLI's validate-logs on a few of
/// the trail `cairn` streams, then on each tampering.
fn validate_logs(s3: &S3Server, d: &Daemon) -> String {
    let key = aws_key(d, "read");
    let aws = pyenv().join("bin/aws");
    let args = [
        "--cloudtrail",
        &format!("http://{}", d.http_addr.as_deref().unwrap()),
        "--key",
        &key,
        "--aws",
        aws.to_str().unwrap(),
        "--trail-arn",
        &format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/cairn"),
    ];
    check(s3, "validate", &args)
}

/// Every stored record, as `cairn export` writes them, in `path`.
fn export(d: &Daemon, path: &Path) {
    let (code, out, err) = d.cli(&["export", "--oldest-first"]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(path, out).unwrap();
}

fn ingest(d: &Daemon, path: &Path) {
    let (code, _, err) = d.cli(&["ingest", path.to_str().unwrap()]);
    assert!(code == 0 || code == 1, "ingesting {}: {err}", path.display());
}

// Goal: what cairnd delivers is what validate-logs accepts and what the
// store holds. With the real records in tests/fixtures/cloudtrail (many
// accounts and regions) and generated ones: every stored record is in
// exactly one delivered log file, byte-exact; the real AWS CLI's
// `cloudtrail validate-logs`, with cairnd's CloudTrail API as its
// endpoint for DescribeTrails and ListPublicKeys, reports every digest
// and log file valid; and after a log file is modified, deleted or has
// data appended, or a digest is deleted or modified, it fails with
// AWS's own message for that file (and, as AWS's tool does, ignores a
// log file no digest lists). DuckDB reading the Parquet prefix from the
// S3 server counts as many rows as the stores hold, the same counts by
// eventname as `cairn count --by EventName`, and every eventjson is a
// stored record byte for byte, also when a second node (its own trail)
// delivers into the same bucket and prefix: one query answers for both,
// after each node compacted its small Parquet files to one file per
// partition.
#[test]
fn delivered_bucket_passes_validate_logs_and_catches_tampering() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    check(&s3, "make-bucket", &[]);
    let d = start_delivering(dir.path(), &s3);
    let gen = Command::new(cairn_bin()).args(["gen", "--count", "2000", "--seed", "11"]).output().unwrap();
    assert!(gen.status.success());
    let generated = dir.path().join("gen.ndjson");
    std::fs::write(&generated, &gen.stdout).unwrap();
    ingest(&d, &generated);
    for f in std::fs::read_dir(fixtures_dir().join("cloudtrail")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ndjson") {
            ingest(&d, &p);
        }
    }
    let all = dir.path().join("all.ndjson");
    export(&d, &all);
    check(&s3, "wait", &["--export", all.to_str().unwrap()]);
    check(&s3, "exactly-once", &["--export", all.to_str().unwrap()]);
    let out = validate_logs(&s3, &d);
    // A second node delivers into the same bucket and prefix as its own
    // trail; one query over the Parquet prefix answers for both. DuckDB
    // reads it straight from the S3 server.
    let dir_b = tempfile::tempdir().unwrap();
    let b = start_delivering_as(dir_b.path(), &s3, "cairn-site-b");
    let gen_b = Command::new(cairn_bin()).args(["gen", "--count", "700", "--seed", "12"]).output().unwrap();
    let generated_b = dir_b.path().join("gen.ndjson");
    std::fs::write(&generated_b, &gen_b.stdout).unwrap();
    ingest(&b, &generated_b);
    let both = dir.path().join("both.ndjson");
    let (_, out_b, _) = b.cli(&["export", "--oldest-first"]);
    std::fs::write(&both, [std::fs::read(&all).unwrap(), out_b].concat()).unwrap();
    check(&s3, "wait", &["--export", both.to_str().unwrap()]);
    check(&s3, "exactly-once", &["--export", both.to_str().unwrap()]);
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for node in [&d, &b] {
        let (code, out, err) = node.cli(&["count", "--by", "EventName", "--output", "json"]);
        assert_eq!(code, 0, "{err}");
        for c in serde_json::from_slice::<Vec<serde_json::Value>>(&out).unwrap() {
            let name = c.as_object().unwrap().iter().find(|(k, _)| *k != "Count").map(|(_, v)| v.as_str().unwrap_or("").to_string());
            *counts.entry(name.unwrap_or_default()).or_default() += c["Count"].as_u64().unwrap();
        }
    }
    let counts: Vec<serde_json::Value> = counts.into_iter().map(|(n, c)| serde_json::json!({"EventName": n, "Count": c})).collect();
    let counts_file = dir.path().join("counts.json");
    std::fs::write(&counts_file, serde_json::to_vec(&counts).unwrap()).unwrap();
    check(&s3, "duckdb", &["--export", both.to_str().unwrap(), "--counts", counts_file.to_str().unwrap()]);
    for needle in ["a log file modified", "a log file deleted", "data appended", "a digest deleted", "a digest modified", "valid again"] {
        assert!(out.contains(needle), "{needle} not checked:\n{out}");
    }
    // `cairn verify-export` on the bucket: both nodes' Ed25519 and RSA
    // signatures, every chain and log file; then what validate-logs does
    // not see: two digests in a row deleted, a stream's newest digest
    // deleted, a log file no digest lists.
    let mut keys: Vec<String> = Vec::new();
    for node in [&d, &b] {
        let (code, out, err) = node.cli(&["key", "export"]);
        assert_eq!(code, 0, "{err}");
        keys.extend(["--public-key".to_string(), String::from_utf8(out).unwrap().trim().to_string()]);
        let cloudtrail = format!("http://{}", node.http_addr.as_deref().unwrap());
        let rsa = check(&s3, "rsa-key", &["--cloudtrail", &cloudtrail, "--key", &aws_key(node, "read")]);
        for k in rsa.lines().filter(|l| !l.is_empty()) {
            keys.extend(["--digest-public-key".to_string(), k.to_string()]);
        }
    }
    // No more digests while the bucket is checked (SIGTERM: the round or
    // digest window in progress completes).
    assert!(b.terminate().success());
    assert!(d.terminate().success());
    let verify = || {
        let out = Command::new(cairn_bin())
            .args(["verify-export", &format!("s3://{BUCKET}/trail"), "--endpoint", &s3.endpoint])
            .args(&keys)
            .envs(AWS_ENV)
            .output()
            .unwrap();
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (code, out) = verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(" digest files valid") && !out.contains("not checked"), "{out}");
    let done: serde_json::Value = serde_json::from_str(&check(&s3, "tamper-blind", &[])).unwrap();
    let (code, out) = verify();
    assert_eq!(code, Some(1), "{out}");
    let (busy, other) = (done["busy"].as_str().unwrap(), done["other"].as_str().unwrap());
    assert!(out.contains("no digest covers") && out.contains(&format!(" in {busy}: digest files for those hours were deleted")), "{out}");
    assert!(out.contains(&format!("Digest files of {other} after ")), "{out}");
    assert!(out.contains(&format!("Log file {} INVALID: no digest lists it", done["extra"].as_str().unwrap())), "{out}");
}

// Goal: delivery is exactly once across kill -9. cairnd starts with the
// bucket missing (delivery fails, GetTrailStatus reports the error,
// nothing is lost), then is killed at random points while it ingests and
// delivers, five times; once restarted for good, every stored record is in
// exactly one log file (a round re-delivered after a kill lands under the
// same names), and validate-logs accepts the chains the restarts
// continued. Then, cairnd stopped, a one-off `cairn deliver --start
// --end` into another prefix delivers exactly the events of that range,
// and run again delivers nothing twice; one into cairnd's prefix under
// cairnd's trail name is refused (the trail is claimed).
#[test]
fn delivery_is_exactly_once_across_kill_9_and_an_outage() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let gen = Command::new(cairn_bin()).args(["gen", "--count", "6000", "--seed", "23"]).output().unwrap();
    assert!(gen.status.success());
    let lines: Vec<&[u8]> = gen.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let chunks: Vec<Vec<u8>> = lines.chunks(1000).map(|c| c.iter().flat_map(|l| [*l, b"\n"].concat()).collect()).collect();
    // The bucket does not exist yet: delivery must fail loudly and keep
    // everything until it does.
    let d = start_delivering(dir.path(), &s3);
    let key = aws_key(&d, "read");
    let cloudtrail = format!("http://{}", d.http_addr.as_deref().unwrap());
    let first = dir.path().join("chunk-0.ndjson");
    std::fs::write(&first, &chunks[0]).unwrap();
    ingest(&d, &first);
    check(&s3, "status-error", &["--cloudtrail", &cloudtrail, "--key", &key, "--needle", BUCKET, "--timeout", "30"]);
    check(&s3, "make-bucket", &[]);
    drop(d);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for (i, chunk) in chunks.iter().enumerate().skip(1) {
        let mut d = start_delivering(dir.path(), &s3);
        let p = dir.path().join(format!("chunk-{i}.ndjson"));
        std::fs::write(&p, chunk).unwrap();
        ingest(&d, &p);
        kill_9_after_random_delay(&mut d.child, &mut seed, 2500);
    }
    let d = start_delivering(dir.path(), &s3);
    let all = dir.path().join("all.ndjson");
    export(&d, &all);
    assert_eq!(std::fs::read(&all).unwrap().iter().filter(|&&b| b == b'\n').count(), 6000);
    check(&s3, "wait", &["--export", all.to_str().unwrap()]);
    check(&s3, "exactly-once", &["--export", all.to_str().unwrap()]);
    validate_logs(&s3, &d);
    drop(d);
    let range = ["--start", "2026-01-01T00:00:30Z", "--end", "2026-01-01T00:01:30Z"];
    let listed =
        Command::new(cairn_bin()).arg("--data-dir").arg(dir.path()).args(["export", "--oldest-first"]).args(range).output().unwrap();
    assert!(listed.status.success());
    let n = listed.stdout.iter().filter(|&&b| b == b'\n').count();
    assert!(n > 0 && n < 6000, "the range holds {n} of the 6000 events");
    let in_range = dir.path().join("range.ndjson");
    std::fs::write(&in_range, &listed.stdout).unwrap();
    for _ in 0..2 {
        let out = Command::new(cairn_bin())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["deliver", "--to", &format!("s3://{BUCKET}/oneoff"), "--endpoint", &s3.endpoint])
            .args(range)
            .envs(AWS_ENV)
            .output()
            .unwrap();
        assert!(out.status.success(), "cairn deliver: {}", String::from_utf8_lossy(&out.stderr));
        check(&s3, "exactly-once", &["--export", in_range.to_str().unwrap(), "--prefix", "oneoff"]);
    }
    // Into cairnd's prefix under cairnd's trail name: refused, as its
    // digests would overwrite cairnd's.
    let out = Command::new(cairn_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["deliver", "--to", &format!("s3://{BUCKET}/trail"), "--endpoint", &s3.endpoint])
        .envs(AWS_ENV)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("its own trail name"), "{err}");
}

// Goal: credentials the S3 server refuses cost nothing, and the AWS CLI's
// profile files are enough to deliver. moto checks every request against
// an IAM user's key (its authentication turned on): cairnd with the wrong
// secret reports the refusal in GetTrailStatus, naming what to check,
// while it keeps ingesting; restarted with no key in the environment but
// AWS_PROFILE naming a profile of a credentials file, it delivers every
// record, those ingested while refused included, exactly once.
#[test]
fn refused_credentials_lose_nothing_and_a_profile_delivers() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    check(&s3, "make-bucket", &[]);
    let key = check(&s3, "enforce-auth", &[]).lines().rfind(|l| l.contains(':')).unwrap().trim().to_string();
    let (id, secret) = key.split_once(':').unwrap();
    let wrong = [("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", "not-the-secret"), ("AWS_REGION", "us-east-1")];
    let d = start_delivering_with(dir.path(), &s3, "cairn", &wrong);
    let gen = Command::new(cairn_bin()).args(["gen", "--count", "3000", "--seed", "31"]).output().unwrap();
    assert!(gen.status.success());
    let (first, second) = gen.stdout.split_at(gen.stdout.len() / 2);
    let cut = first.len() + second.iter().position(|&b| b == b'\n').unwrap() + 1;
    let (first, second) = gen.stdout.split_at(cut);
    let p = dir.path().join("first.ndjson");
    std::fs::write(&p, first).unwrap();
    ingest(&d, &p);
    let cloudtrail = format!("http://{}", d.http_addr.as_deref().unwrap());
    let read = aws_key(&d, "read");
    let args = ["--cloudtrail", cloudtrail.as_str(), "--key", read.as_str(), "--needle", "refused the credentials", "--timeout", "30"];
    let status = check(&s3, "status-error", &args);
    assert!(status.contains("SignatureDoesNotMatch"), "the server's own reason is kept: {status}");
    // `cairn stats` shows the backlog and the error.
    let stats = |d: &Daemon| -> serde_json::Value {
        let (code, out, err) = d.cli(&["stats", "--output", "json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()["delivery"].clone()
    };
    let first_count = first.iter().filter(|&&b| b == b'\n').count() as u64;
    let s = stats(&d);
    assert_eq!(s["backlog_events"].as_u64(), Some(first_count), "{s}");
    assert!(s["last_error"].as_str().unwrap_or("").contains("refused the credentials"), "{s}");
    drop(d);
    let creds = dir.path().join("aws-credentials");
    let config = dir.path().join("aws-config");
    std::fs::write(&creds, format!("[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[writer]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")).unwrap();
    std::fs::write(&config, "[profile writer]\nregion = us-east-1\n").unwrap();
    let (creds, config) = (creds.to_str().unwrap(), config.to_str().unwrap());
    let profile = [
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_REGION", ""),
        ("AWS_PROFILE", "writer"),
        ("AWS_SHARED_CREDENTIALS_FILE", creds),
        ("AWS_CONFIG_FILE", config),
    ];
    let d = start_delivering_with(dir.path(), &s3, "cairn", &profile);
    let p = dir.path().join("second.ndjson");
    std::fs::write(&p, second).unwrap();
    ingest(&d, &p);
    let all = dir.path().join("all.ndjson");
    export(&d, &all);
    assert_eq!(std::fs::read(&all).unwrap().iter().filter(|&&b| b == b'\n').count(), 3000);
    check_as(&s3, Some(&key), "wait", &["--export", all.to_str().unwrap()]);
    check_as(&s3, Some(&key), "exactly-once", &["--export", all.to_str().unwrap()]);
    let s = stats(&d);
    assert_eq!((s["backlog_events"].as_u64(), s["delivered_events"].as_u64()), (Some(0), Some(3000)), "{s}");
    assert!(s["last_error"].is_null(), "{s}");
}
