//! Crash safety: kill -9 a real `cairn ingest` at random points (while it
//! appends, rolls and seals), reopen, and check that every acknowledged
//! event is there, byte-exact, with contiguous seqs.

use std::process::{Command, Stdio};
use std::time::Duration;

use cairn_engine::{Options, Store};
use cairn_tools::gen::{GenOptions, Generator};

use crate::common::{assert_consistent, cairn_bin};

const KILLS: usize = 24;

// Goal: no acknowledged event is ever lost or altered by a SIGKILL, at any
// of 24 random points, including during segment rolls and seals.
#[test]
fn kill_9_loses_no_acknowledged_event() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let input = work.path().join("input.ndjson");
    let ack = work.path().join("acks.log");
    let mut gen = Generator::new(GenOptions { seed: 42, ..GenOptions::default() });
    let mut records = Vec::new();
    let mut text = Vec::new();
    for _ in 0..20_000 {
        let mut r = Vec::new();
        gen.next_record(&mut r);
        text.extend_from_slice(&r);
        text.push(b'\n');
        records.push(r);
    }
    std::fs::write(&input, &text).unwrap();

    // A deterministic spread of kill delays (no randomness needed to hit
    // different phases: the delays cover startup, appends, rolls and seals).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut total_acked = 0usize;
    for round in 0..KILLS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(20 + state % 400);
        let mut child = Command::new(cairn_bin())
            .arg("--data-dir")
            .arg(&data)
            .args(["--quiet", "--segment-bytes", "1000000", "ingest", "--batch", "64", "--workers", "3", "--ack-log"])
            .arg(&ack)
            .arg(&input)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        let acks = std::fs::read_to_string(&ack).unwrap_or_default();
        let store = Store::open(&data, Options::default()).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let events = assert_consistent(&store);
        let mut n = 0;
        for line in acks.lines() {
            let mut it = line.split(' ');
            let (Some(ord), Some(seq), None) = (it.next(), it.next(), it.next()) else { continue };
            let (Ok(ord), Ok(seq)) = (ord.parse::<usize>(), seq.parse::<usize>()) else { continue };
            let ev =
                events.get(seq).unwrap_or_else(|| panic!("round {round}: acknowledged seq {seq} is missing ({} stored)", events.len()));
            let want =
                records.get(ord).unwrap_or_else(|| panic!("round {round}: ack line {line:?} names record {ord} of {}", records.len()));
            assert_eq!(&ev.record, want, "round {round}: seq {seq} holds other bytes");
            n += 1;
        }
        total_acked = n;
        store.close().unwrap();
    }
    assert!(total_acked > 1000, "the kills came too early to test anything ({total_acked} acks)");
}
