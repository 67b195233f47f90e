//! The `cairn` command as users run it.

use cairn_engine::{Options, Store};

use crate::common::{cairn, cairn_bin, record};

// Goal: `gen` is deterministic for a seed and its output ingests fully.
#[test]
fn gen_is_deterministic_and_ingests() {
    let dir = tempfile::tempdir().unwrap();
    let (c1, a, _) = cairn(dir.path(), &["gen", "--count", "500", "--seed", "9"]);
    let (c2, b, _) = cairn(dir.path(), &["gen", "--count", "500", "--seed", "9"]);
    let (_, c, _) = cairn(dir.path(), &["gen", "--count", "500", "--seed", "10"]);
    assert_eq!((c1, c2), (0, 0));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.iter().filter(|&&x| x == b'\n').count(), 500);
    let file = dir.path().join("gen.ndjson");
    std::fs::write(&file, &a).unwrap();
    let data = dir.path().join("data");
    let (code, out, err) = cairn(&data, &["ingest", file.to_str().unwrap(), "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(summary["accepted"], 500);
    let (code, out, _) = cairn(&data, &["stats", "--output", "json"]);
    assert_eq!(code, 0);
    let stats: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(stats["events"], 500);
    assert_eq!(stats["tree_size"], 500);
    assert_eq!(stats["root"].as_str().unwrap().len(), 64);
}

// Goal: exit codes: 1 when `get` finds nothing or `ingest` rejects records,
// 2 with a clear message on errors (a locked directory).
#[test]
fn exit_codes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cairn(dir.path(), &["get", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no event with eventID"), "{err}");

    let input = dir.path().join("mixed.ndjson");
    let good = record("g1", "2026-01-01T00:00:00Z", "X");
    std::fs::write(&input, [good.as_slice(), b"\n[1]\n{\"eventTime\":\"2026-01-01T00:00:00Z\"}\n"].concat()).unwrap();
    let (code, _, err) = cairn(dir.path(), &["ingest", input.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let (code, out, _) = cairn(dir.path(), &["get", "g1"]);
    assert_eq!(code, 0);
    assert_eq!(out, [good.as_slice(), b"\n"].concat());

    let _held = Store::open(dir.path(), Options::default()).unwrap();
    let (code, _, err) = cairn(dir.path(), &["stats"]);
    assert_eq!(code, 2);
    assert!(err.contains("locked by pid"), "{err}");
}

// Goal: stdin works as an input and `--help` teaches the commands.
#[test]
fn stdin_and_help() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(cairn_bin())
        .args(["--quiet", "--data-dir"])
        .arg(dir.path())
        .args(["ingest", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let r = record("s1", "2026-01-01T00:00:00Z", "X");
    child.stdin.take().unwrap().write_all(&[r.as_slice(), b"\n"].concat()).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(cairn(dir.path(), &["get", "s1"]).0, 0);
    let help = std::process::Command::new(cairn_bin()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for word in ["ingest", "get", "stats", "gen", "bench", "insights", "Examples"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
}

// Goal: `cairn bench-sql` times its three queries on the store (their
// rows as the store holds them) and, with --query, the user's own
// statements instead; a bad statement fails with Lake's error name.
#[test]
fn bench_sql_times_queries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let store = Store::open(&data, Options::default()).unwrap();
    crate::common::fill(&store, &crate::common::generated_with(Default::default(), 3_000), 500);
    store.close().unwrap();
    let (code, out, err) = cairn(&data, &["bench-sql", "--runs", "1", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(r["events"], 3000);
    let queries = r["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 3, "{r}");
    assert_eq!(queries[1]["rows"], 50, "the newest 50 of the commonest API: {r}");
    assert!(r["full_scan_mb_per_sec"].as_f64().unwrap() > 0.0, "{r}");
    let args = [
        "bench-sql",
        "--runs",
        "2",
        "--output",
        "json",
        "--query",
        "SELECT count(*) FROM events",
        "--query",
        "SELECT seq FROM events LIMIT 7",
    ];
    let (code, out, err) = cairn(&data, &args);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows: Vec<u64> = r.as_array().unwrap().iter().map(|q| q["rows"].as_u64().unwrap()).collect();
    assert_eq!(rows, vec![1, 7], "{r}");
    let (code, _, err) = cairn(&data, &["bench-sql", "--query", "DROP TABLE events"]);
    assert_ne!(code, 0);
    assert!(err.contains("InvalidQueryStatementException"), "{err}");
}

// Goal: `cairn bench --compact` measures a real compaction of what it
// ingested: every segment merged, and the store smaller after it than
// sealed (larger blocks and a dictionary); through a server it refuses
// with a pointer to `cairn compact`.
#[test]
fn bench_compact_reports_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let out = std::process::Command::new(cairn_bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["--segment-bytes", "2000000", "bench", "--events", "8000", "--compact", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &r["compaction"];
    assert!(c["segments_before"].as_u64().unwrap() > 1, "{r}");
    assert_eq!(c["segments_after"], 1);
    assert!(c["mb_per_sec"].as_f64().unwrap() > 0.0);
    let (sealed, compacted) = (r["bytes_per_event"].as_f64().unwrap(), c["bytes_per_event"].as_f64().unwrap());
    assert!(compacted < sealed, "compacted {compacted} bytes/event, sealed {sealed}");
    let stats = cairn(&data, &["stats", "--output", "json"]);
    assert_eq!(stats.0, 0);
    let s: serde_json::Value = serde_json::from_slice(&stats.1).unwrap();
    assert_eq!(s["events"], 8000);
    assert_eq!(s["segments"], 1);
    let refused =
        std::process::Command::new(cairn_bin()).args(["--server", "127.0.0.1:1", "--token", "x", "bench", "--compact"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cairn --server ... compact"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
