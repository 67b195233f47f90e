//! A client written in Python from docs/PROTOCOL.md alone (without the
//! source), run against a live cairnd: the document is enough to implement
//! the protocol, and keeps being so. It needs only `python3` (standard
//! library); without it the test fails, it does not skip.

use std::process::Command;

use crate::server::Daemon;

// Goal: the independent client's self-test (handshake, appends with
// rejections and duplicates, paging, counts, get, stats, export,
// pipelining, reserved id 0, checkpoints and keys, verify, tail, a
// malformed frame) passes against the real daemon.
#[test]
fn a_client_written_from_the_document_alone_works() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), &["--insights", "false", "--compaction", "false"]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/cairn_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--addr", &d.addr, "--token", &d.admin_token()])
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to run {} ({e})", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the document-only client failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all 13 checks passed"), "{stdout}");
}
