//! `cairn export --format cloudtrail` and `cairn verify-export`: CloudTrail's
//! layout with signed, chained hourly digests, and every kind of damage to
//! the exported tree found and named.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::common::cairn;

fn rec(i: usize) -> String {
    let account = ["111122223333", "444455556666"][i % 2];
    let region = ["us-east-1", "eu-west-1"][i / 2 % 2];
    // Three hours of events, one every 30 s, plus an hour with none.
    let secs = if i < 240 { i * 30 } else { 3 * 3600 + 600 + i };
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2026-03-01T{:02}:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"{region}","eventID":"x-{i}","recipientAccountId":"{account}"}}"#,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn files(dir: &Path, part: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(part) && p.to_string_lossy().ends_with(".json.gz") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn gunzip(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap()).read_to_end(&mut out).unwrap();
    out
}

fn gzip(p: &Path, bytes: &[u8]) {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    std::fs::write(p, e.finish().unwrap()).unwrap();
}

// Goal: the export holds every record byte-exact in CloudTrail's layout,
// with a digest for every hour of every (account, region) stream, empty
// hours included, and verifies; each kind of damage is then reported:
// a modified, a missing and an extra log file, a modified digest, two
// consecutive deleted digests (both hours named), a stream's last digest
// deleted, and another key.
#[test]
fn export_and_verify_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.ndjson");
    let recs: Vec<String> = (0..250).map(rec).collect();
    std::fs::write(&input, recs.join("\n")).unwrap();
    assert_eq!(cairn(&data, &["ingest", input.to_str().unwrap()]).0, 0);
    let (_, key, _) = cairn(&data, &["key", "export"]);
    let key = String::from_utf8(key).unwrap().trim().to_string();
    let out = dir.path().join("export");
    let (code, _, err) = cairn(&data, &["export", "--format", "cloudtrail", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    let logs = files(&out, "/CloudTrail/");
    let mut seen: Vec<String> = Vec::new();
    for l in &logs {
        let rel = l.strip_prefix(&out).unwrap().to_string_lossy().to_string();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts[0], "AWSLogs");
        let name = parts.last().unwrap();
        assert!(name.starts_with(&format!("{}_CloudTrail_{}_2026030", parts[1], parts[3])), "{rel}");
        let v: serde_json::Value = serde_json::from_slice(&gunzip(l)).unwrap();
        let text = String::from_utf8(gunzip(l)).unwrap();
        for r in v["Records"].as_array().unwrap() {
            assert_eq!(r["recipientAccountId"], parts[1]);
            assert_eq!(r["awsRegion"], parts[3]);
            let id = r["eventID"].as_str().unwrap();
            let original = &recs[id[2..].parse::<usize>().unwrap()];
            assert!(text.contains(original.as_str()), "records are byte-exact");
            seen.push(id.to_string());
        }
    }
    assert_eq!(seen.len(), 250);
    // 4 streams x 4 hours (00, 01, 02 and the 03 hour), the empty hour too.
    let digests = files(&out, "/CloudTrail-Digest/");
    assert_eq!(digests.len(), 16, "{digests:#?}");
    let d: serde_json::Value = serde_json::from_slice(&gunzip(&digests[0])).unwrap();
    for f in ["digestStartTime", "digestEndTime", "digestS3Object", "digestPublicKeyFingerprint", "previousDigestSignature", "logFiles"] {
        assert!(d.get(f).is_some(), "digest field {f}");
    }
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify-export", out.to_str().unwrap(), "--public-key"];
        args.extend_from_slice(extra);
        let (code, o, _) = cairn(dir.path(), &args);
        (code, String::from_utf8(o).unwrap())
    };
    let (code, o) = verify(&[&key]);
    assert_eq!(code, 0, "{o}");
    assert!(o.contains("16/16 digest files valid"), "{o}");

    // The tail: the newest digests (03:00-04:00) deleted from every
    // stream at once leave shorter chains that are whole in themselves;
    // only an anchor in time (--digests-through) shows the loss.
    let through = |t: &str| verify(&[&key, "--digests-through", t]);
    // The newest digest ends at 04:00; the next (04:00-05:00) is due by
    // 05:15 with the default hour and 15 minutes of grace.
    let (code, o) = through("2026-03-01T05:15:00Z");
    assert_eq!(code, 0, "the next digest is not due yet: {o}");
    let (code, o) = through("2026-03-01T05:16:00Z");
    assert_eq!(code, 1, "the next digest is late: {o}");
    assert!(o.contains("after 2026-03-01T04:00:00Z are missing") && o.contains("digests every 1h") && o.contains("15m of grace"), "{o}");
    let (code, o) = verify(&[&key, "--digests-through", "2026-03-01T05:16:00Z", "--digests-grace-secs", "3600"]);
    assert_eq!(code, 0, "more grace: {o}");
    let (code, _, err) = cairn(dir.path(), &["verify-export", out.to_str().unwrap(), "--public-key", &key, "--digests-through", "soon"]);
    assert!(code != 0 && err.contains("--digests-through \"soon\": not a time"), "{err}");
    let mut newest: std::collections::BTreeMap<(String, String), &PathBuf> = Default::default();
    for p in &digests {
        let rel = p.strip_prefix(&out).unwrap().to_string_lossy().to_string();
        let parts: Vec<&str> = rel.split('/').collect();
        let e = newest.entry((parts[1].to_string(), parts[3].to_string())).or_insert(p);
        if p > *e {
            *e = p;
        }
    }
    assert_eq!(newest.len(), 4);
    let kept: Vec<(&PathBuf, Vec<u8>)> = newest.values().map(|p| (*p, std::fs::read(p).unwrap())).collect();
    for (p, _) in &kept {
        std::fs::remove_file(p).unwrap();
    }
    assert_eq!(verify(&[&key]).0, 0, "without an anchor the shorter chains look whole");
    let (code, o) = through("2026-03-01T04:30:00Z");
    assert_eq!(code, 1, "{o}");
    assert!(o.contains("after 2026-03-01T03:00:00Z are missing"), "{o}");
    for (p, bytes) in &kept {
        std::fs::write(p, bytes).unwrap();
    }
    assert_eq!(verify(&[&key]).0, 0, "restored");

    // A modified log file.
    let mut raw = gunzip(&logs[0]);
    let at = raw.len() / 2;
    raw[at] ^= 1;
    gzip(&logs[0], &raw);
    // A missing one, and an extra one.
    std::fs::remove_file(&logs[1]).unwrap();
    let extra = logs[2].with_file_name("111122223333_CloudTrail_us-east-1_20260301T0005Z_AAAAAAAAAAAAAAAA.json.gz");
    gzip(&extra, br#"{"Records":[]}"#);
    // Two consecutive digests of one stream gone, and one edited.
    let stream: Vec<&PathBuf> =
        digests.iter().filter(|p| p.to_string_lossy().contains("/444455556666/CloudTrail-Digest/eu-west-1/")).collect();
    assert_eq!(stream.len(), 4);
    std::fs::remove_file(stream[1]).unwrap();
    std::fs::remove_file(stream[2]).unwrap();
    // The last digest of another stream gone (its hour ends the export).
    let tail: Vec<&PathBuf> =
        digests.iter().filter(|p| p.to_string_lossy().contains("/111122223333/CloudTrail-Digest/eu-west-1/")).collect();
    std::fs::remove_file(tail[3]).unwrap();
    let other = digests.iter().find(|p| p.to_string_lossy().contains("/111122223333/CloudTrail-Digest/us-east-1/")).unwrap();
    let edited = String::from_utf8(gunzip(other)).unwrap().replace("\"newestEventTime\":\"2026", "\"newestEventTime\":\"2025");
    gzip(other, edited.as_bytes());

    let (code, o) = verify(&[&key]);
    assert_eq!(code, 1, "{o}");
    let rel = |p: &Path| p.strip_prefix(&out).unwrap().to_string_lossy().to_string();
    assert!(o.contains(&format!("Log file {} INVALID: hash value doesn't match", rel(&logs[0]))), "{o}");
    assert!(o.contains(&format!("Log file {} INVALID: not found", rel(&logs[1]))), "{o}");
    assert!(o.contains(&format!("Log file {} INVALID: no digest lists it", rel(&extra))), "{o}");
    assert!(o.contains("no digest covers 2026-03-01T01:00:00Z .. 2026-03-01T03:00:00Z in 444455556666/eu-west-1"), "{o}");
    assert!(o.contains(&format!("Digest file {} INVALID: signature verification failed", rel(other))), "{o}");
    assert!(
        o.contains(
            "Digest files of 111122223333/eu-west-1 after 2026-03-01T03:00:00Z are missing (the trail's digests end at 2026-03-01T04:00:00Z)"
        ),
        "{o}"
    );

    // Another key: no digest verifies.
    let wrong = cairn_engine::checkpoint::NoteSigner::from_seed("cairn/0000000000000000", [5; 32]).unwrap().verifier().encode();
    let (code, o) = verify(&[&wrong]);
    assert_eq!(code, 1, "{o}");
    assert!(o.contains("public key not found for fingerprint"), "{o}");
}
