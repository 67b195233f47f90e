//! Bad bytes never cost a good record: every kind of damage the issue
//! names, each with valid records before, between and after it, through
//! every path into the store (a file, a directory, stdin, and cairnd),
//! with the summary's counts checked against what was in the input.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use cairn_engine::{Options, Store};
use serde_json::Value;

use crate::common::{all_events, cairn, cairn_bin, record};
use crate::server::Daemon;

fn rec(id: &str) -> String {
    String::from_utf8(record(id, "2025-01-01T00:00:01Z", "GetObject")).unwrap()
}

/// One damaged input: its bytes, the eventIDs that must be stored, and how
/// many records must be rejected and stretches skipped.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    stored: Vec<String>,
    rejected: u64,
    skipped: u64,
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, stored: &[&str], rejected: u64, skipped: u64) -> Case {
    Case { name, bytes: bytes.into(), stored: stored.iter().map(|s| format!("{name}-{s}")).collect(), rejected, skipped }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Every input of the issue, each with records a (before), b (between)
/// and c (after) the damage, ids prefixed with the case's name.
fn cases() -> Vec<Case> {
    let r = |n: &str, id: &str| rec(&format!("{n}-{id}"));
    let pretty = |n: &str, id: &str| {
        let v: Value = serde_json::from_str(&r(n, id)).unwrap();
        serde_json::to_string_pretty(&v).unwrap()
    };
    let mut v = vec![
        case("garbage-first", format!("not json\n{}\n{}\n", r("garbage-first", "b"), r("garbage-first", "c")), &["b", "c"], 0, 1),
        case(
            "garbage-middle",
            format!("{}\n%% not a record %%\n{}\n", r("garbage-middle", "a"), r("garbage-middle", "c")),
            &["a", "c"],
            0,
            1,
        ),
        case("garbage-last", format!("{}\n{}\ntrailing words", r("garbage-last", "a"), r("garbage-last", "b")), &["a", "b"], 0, 1),
        case("crlf", format!("{}\r\n{}\r\n\r\n{}\r\n", r("crlf", "a"), r("crlf", "b"), r("crlf", "c")), &["a", "b", "c"], 0, 0),
        case("bom", format!("\u{feff}{}\n{}\n{}\n", r("bom", "a"), r("bom", "b"), r("bom", "c")), &["a", "b", "c"], 0, 0),
        case(
            "blank",
            format!("\n   \n{}\n\t\n\n{}\n  \t \n{}\n\n", r("blank", "a"), r("blank", "b"), r("blank", "c")),
            &["a", "b", "c"],
            0,
            0,
        ),
        case(
            "truncated-last",
            format!("{}\n{}\n{}", r("truncated-last", "a"), r("truncated-last", "b"), &r("truncated-last", "x")[..70]),
            &["a", "b"],
            0,
            1,
        ),
        case(
            "pretty-mixed",
            format!("{}\n{}\n{}\n", r("pretty-mixed", "a"), pretty("pretty-mixed", "b"), r("pretty-mixed", "c")),
            &["a", "b", "c"],
            0,
            0,
        ),
        case(
            "two-per-line",
            format!("{}\n{} {}\n{}\n", r("two-per-line", "a"), r("two-per-line", "b1"), r("two-per-line", "b2"), r("two-per-line", "c")),
            &["a", "b1", "b2", "c"],
            0,
            0,
        ),
        case(
            "array-non-objects",
            format!(
                "[{}, 1, \"text\", null, {}, [true], {}]",
                r("array-non-objects", "a"),
                r("array-non-objects", "b"),
                r("array-non-objects", "c")
            ),
            &["a", "b", "c"],
            4,
            0,
        ),
        case(
            "records-null",
            format!("{}\n{{\"Records\": null}}\n{}\n{}\n", r("records-null", "a"), r("records-null", "b"), r("records-null", "c")),
            &["a", "b", "c"],
            0,
            1,
        ),
        case(
            "nul-bytes",
            [
                format!("{}\n", r("nul-bytes", "a")).into_bytes(),
                vec![0u8; 4096],
                format!("{}\n\0\0\0\n{}\n", r("nul-bytes", "b"), r("nul-bytes", "c")).into_bytes(),
            ]
            .concat(),
            &["a", "b", "c"],
            0,
            2,
        ),
        case(
            "record-300k",
            format!(
                "{}\n{}\n{}\n",
                r("record-300k", "a"),
                rec("record-300k-big").replace("\"readOnly\"", &format!("\"pad\":\"{}\",\"readOnly\"", "x".repeat(300 * 1024))),
                r("record-300k", "c")
            ),
            &["a", "c"],
            1,
            0,
        ),
    ];
    // Invalid UTF-8 as a line of its own (skipped), and inside a record's
    // string (that record alone is rejected by the event parser).
    let mut bad = format!("{}\n", r("invalid-utf8", "a")).into_bytes();
    bad.extend_from_slice(b"\xc3\x28\xff garbage\n");
    bad.extend_from_slice(format!("{}\n{}\n", r("invalid-utf8", "b"), r("invalid-utf8", "c")).as_bytes());
    v.push(Case { name: "invalid-utf8", bytes: bad, stored: ids("invalid-utf8", &["a", "b", "c"]), rejected: 0, skipped: 1 });
    let mut bad = format!("{}\n", r("utf8-in-record", "a")).into_bytes();
    bad.extend_from_slice(r("utf8-in-record", "bad").replace("GetObject", "Get\u{1}").as_bytes());
    let at = bad.iter().position(|&b| b == 1).unwrap();
    bad[at] = 0xff;
    bad.extend_from_slice(format!("\n{}\n", r("utf8-in-record", "c")).as_bytes());
    v.push(Case { name: "utf8-in-record", bytes: bad, stored: ids("utf8-in-record", &["a", "c"]), rejected: 1, skipped: 0 });
    // Gzip: a whole log file, one cut short, and a ".json.gz" that is not gzip.
    let log = format!("{{\"Records\":[{},{},{}]}}", r("gzip", "a"), r("gzip", "b"), r("gzip", "c"));
    v.push(Case { name: "gzip", bytes: gzip(log.as_bytes()), stored: ids("gzip", &["a", "b", "c"]), rejected: 0, skipped: 0 });
    let many: String = (0..400).map(|i| format!("{}\n", r("gzip-cut", &format!("{i:03}")))).collect();
    let gz = gzip(many.as_bytes());
    v.push(Case { name: "gzip-cut", bytes: gz[..gz.len() * 3 / 4].to_vec(), stored: Vec::new(), rejected: 0, skipped: 1 });
    v.push(Case {
        name: "not-gzip",
        bytes: format!("{}\n{}\n", r("not-gzip", "a"), r("not-gzip", "b")).into_bytes(),
        stored: ids("not-gzip", &["a", "b"]),
        rejected: 0,
        skipped: 0,
    });
    v
}

fn ids(name: &str, s: &[&str]) -> Vec<String> {
    s.iter().map(|s| format!("{name}-{s}")).collect()
}

fn file_name(c: &Case) -> String {
    match c.name {
        "gzip" | "gzip-cut" | "not-gzip" => format!("{}.json.gz", c.name),
        _ => format!("{}.ndjson", c.name),
    }
}

/// The eventIDs stored in a (closed) store.
fn stored_ids(dir: &Path) -> Vec<String> {
    let store = Store::open(dir, Options::default()).unwrap();
    let mut ids: Vec<String> = all_events(&store)
        .iter()
        .map(|e| serde_json::from_slice::<Value>(&e.record).unwrap()["eventID"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn summary(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// The summary adds up, and says what the cases say.
fn check_summary(s: &Value, stored: u64, rejected: u64, skipped: u64, what: &str) {
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{what}: no {k} in {s}"));
    assert_eq!(n("records"), n("accepted") + n("duplicates") + n("rejected"), "{what}: {s}");
    assert_eq!(n("accepted"), stored, "{what}: {s}");
    assert_eq!(n("rejected"), rejected, "{what}: {s}");
    assert_eq!(n("skipped"), skipped, "{what}: {s}");
}

// Goal: each damaged file alone: exactly its valid records are stored, the
// counts are right, every problem is reported with the file and a line,
// and the exit status says something was not stored.
#[test]
fn each_damaged_file_keeps_every_valid_record() {
    // (A cut gzip stream stores an unknown number: its own test below.)
    for c in cases().into_iter().filter(|c| c.name != "gzip-cut") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(&c));
        std::fs::write(&path, &c.bytes).unwrap();
        let data = dir.path().join("store");
        let out = Command::new(cairn_bin()).arg("--data-dir").arg(&data).args(["ingest", "--output", "json"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        check_summary(&summary(&out.stdout), c.stored.len() as u64, c.rejected, c.skipped, c.name);
        let expected_code = if c.rejected + c.skipped > 0 { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(expected_code), "{}: {err}", c.name);
        let reports = err.lines().filter(|l| l.starts_with("cairn: skipped ") || l.starts_with("cairn: rejected ")).count() as u64;
        assert_eq!(reports, c.rejected + c.skipped, "{}: every problem is reported once:\n{err}", c.name);
        for l in err.lines().filter(|l| l.starts_with("cairn: skipped ") || l.starts_with("cairn: rejected ")) {
            assert!(l.contains(&file_name(&c)) && l.contains(" line"), "{}: a report names the file and line: {l}", c.name);
        }
        let mut want = c.stored.clone();
        want.sort();
        assert_eq!(stored_ids(&data), want, "{}", c.name);
    }
}

// Goal: a truncated gzip stream keeps every record before the cut (the
// cases above only count them), and says where reading stopped.
#[test]
fn truncated_gzip_keeps_what_precedes_the_cut() {
    let c = cases().into_iter().find(|c| c.name == "gzip-cut").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.json.gz");
    std::fs::write(&path, &c.bytes).unwrap();
    let (code, out, err) = cairn(&dir.path().join("store"), &["ingest", "--output", "json", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let s = summary(&out);
    assert_eq!(s["skipped_by_reason"]["Unreadable"], 1, "{s}");
    let ids = stored_ids(&dir.path().join("store"));
    assert!(ids.len() > 100 && ids.len() < 400, "{} of 400 records before the cut", ids.len());
    // The records stored are exactly the first n, in order.
    let want: Vec<String> = (0..ids.len()).map(|i| format!("gzip-cut-{i:03}")).collect();
    assert_eq!(ids, want);
}

// Goal: the same inputs as one directory, through stdin, and through
// cairnd: the same records stored, the same counts.
#[test]
fn every_path_into_the_store_keeps_the_same_records() {
    let cases = cases();
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    for c in &cases {
        std::fs::write(inputs.join(file_name(c)), &c.bytes).unwrap();
    }
    let stored: u64 = cases.iter().filter(|c| c.name != "gzip-cut").map(|c| c.stored.len() as u64).sum();
    let rejected: u64 = cases.iter().map(|c| c.rejected).sum();
    let skipped: u64 = cases.iter().map(|c| c.skipped).sum();
    let mut want: Vec<String> = cases.iter().flat_map(|c| c.stored.clone()).collect();
    want.sort();

    // A directory, embedded.
    let embedded = dir.path().join("embedded");
    let (code, out, err) = cairn(&embedded, &["ingest", "--output", "json", inputs.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let s = summary(&out);
    let cut = s["accepted"].as_u64().unwrap() - stored;
    check_summary(&s, stored + cut, rejected, skipped, "directory");
    let ids = stored_ids(&embedded);
    assert_eq!(ids.iter().filter(|i| !i.starts_with("gzip-cut-")).cloned().collect::<Vec<_>>(), want);

    // The same directory through cairnd: the same records, the same counts.
    let served = dir.path().join("served");
    {
        let d = Daemon::start(&served);
        let (code, out, err) = d.cli(&["ingest", "--output", "json", inputs.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        check_summary(&summary(&out), stored + cut, rejected, skipped, "cairnd");
    }
    assert_eq!(stored_ids(&served), ids);

    // Each (uncompressed) case through stdin.
    for c in cases.iter().filter(|c| !c.name.starts_with("gzip")) {
        let data = dir.path().join(format!("stdin-{}", c.name));
        let mut child = Command::new(cairn_bin())
            .arg("--data-dir")
            .arg(&data)
            .args(["--quiet", "ingest", "--output", "json", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&c.bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        check_summary(&summary(&out.stdout), c.stored.len() as u64, c.rejected, c.skipped, c.name);
        let mut want = c.stored.clone();
        want.sort();
        assert_eq!(stored_ids(&data), want, "stdin {}", c.name);
    }
}

/// This process's peak resident set size, from /proc (Linux).
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    kib * 1024
}

// Goal: one enormous line without a line break (garbage, then a value that
// never ends) is read in bounded memory with a clear problem, and the
// records around it are stored. Size: CAIRN_INGEST_LONG_LINE_BYTES
// (default 256 MiB; the 2 GB: 2147483648).
#[test]
fn enormous_line_in_bounded_memory() {
    let len: u64 = std::env::var("CAIRN_INGEST_LONG_LINE_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(256 << 20);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let mut child = Command::new(cairn_bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["--quiet", "ingest", "--output", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{}\n", rec("long-a")).as_bytes()).unwrap();
    let block = vec![b'x'; 1 << 20];
    let mut left = len / 2;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        stdin.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    // The same line goes on as a value that never closes.
    stdin.write_all(b"{\"eventTime\":\"").unwrap();
    let mut left = len / 2;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        stdin.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    stdin.flush().unwrap();
    // All but the pipe's 64 KiB was read: the peak now covers the line.
    let peak = peak_rss_bytes(child.id());
    stdin.write_all(format!("\n{}\n", rec("long-b")).as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let s = summary(&out.stdout);
    assert_eq!(s["accepted"], 2, "{s}");
    assert_eq!(s["skipped"], 1, "{s}: one stretch: the text, then the value that never ends");
    assert!(s["skipped_bytes"].as_u64().unwrap() >= len, "{s}");
    assert!(peak < 96 << 20, "peak RSS {} MiB while reading a {} MiB line", peak >> 20, len >> 20);
    assert_eq!(stored_ids(&data), vec!["long-a", "long-b"]);
}
