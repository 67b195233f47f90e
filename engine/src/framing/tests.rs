use std::io::BufReader;

use super::*;

const MAX: usize = crate::limits::RECORD_BYTES_MAX;

fn split(input: &[u8]) -> Vec<Piece> {
    Splitter::new(input, MAX).collect()
}

/// The same input read through a reader that hands out `cap` bytes at a
/// time: the pieces must not depend on where chunks end.
fn split_chunked(input: &[u8], cap: usize) -> Vec<Piece> {
    Splitter::new(BufReader::with_capacity(cap, input), MAX).collect()
}

fn records(pieces: &[Piece]) -> Vec<String> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Record { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

/// (first line, last line, problem code) of every skipped span.
fn skipped(pieces: &[Piece]) -> Vec<(u64, u64, &'static str)> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Skipped { problem, .. } => {
                let (a, b) = p.lines().unwrap();
                Some((a, b, problem.code()))
            }
            _ => None,
        })
        .collect()
}

fn rejected(pieces: &[Piece]) -> Vec<(Position, &'static str)> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Rejected { at, problem } => Some((*at, problem.code())),
            _ => None,
        })
        .collect()
}

fn rec(id: &str) -> String {
    format!(r#"{{"eventVersion":"1.08","eventTime":"2025-01-01T00:00:01Z","eventName":"A","eventID":"{id}"}}"#)
}

/// Checks the pieces against every chunking of the reader.
fn check(input: &[u8]) -> Vec<Piece> {
    let whole = split(input);
    for cap in [1, 2, 3, 7, 64] {
        assert_eq!(split_chunked(input, cap), whole, "chunks of {cap} bytes changed the result for {:?}", String::from_utf8_lossy(input));
    }
    whole
}

// Goal: the issue's example: a garbage first line costs only that line.
#[test]
fn garbage_first_line() {
    let input = format!("not json\n{}\n{}\n", rec("ok-2"), rec("ok-3"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("ok-2"), rec("ok-3")]);
    assert_eq!(skipped(&p), vec![(1, 1, "NotJson")]);
}

// Goal: garbage in the middle and at the end costs only its own line.
#[test]
fn garbage_middle_and_last_line() {
    let input = format!("{}\n%%% garbage %%%\n{}\ntrailing garbage", rec("a"), rec("b"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b")]);
    assert_eq!(skipped(&p), vec![(2, 2, "NotJson"), (4, 4, "NotJson")]);
}

// Goal: invalid UTF-8 outside a value is reported as such; inside a record
// it reaches the event parser, which rejects that record alone.
#[test]
fn invalid_utf8() {
    let mut input = b"\xff\xfe\xfd junk\n".to_vec();
    input.extend_from_slice(format!("{}\n", rec("a")).as_bytes());
    input.extend_from_slice(b"{\"eventTime\":\"2025-01-01T00:00:01Z\",\"eventName\":\"\xc3\x28\"}\n");
    input.extend_from_slice(format!("{}\n", rec("b")).as_bytes());
    let p = check(&input);
    assert_eq!(skipped(&p), vec![(1, 1, "InvalidUtf8")]);
    let r = records(&p);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0], rec("a"));
    assert_eq!(r[2], rec("b"));
}

// Goal: a UTF-8 byte-order mark, CRLF line ends, blank and whitespace-only
// lines are not problems at all.
#[test]
fn bom_crlf_and_blank_lines() {
    let input = format!("\u{feff}{}\r\n\r\n   \r\n\t\n{}\r\n\n", rec("a"), rec("b"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b")]);
    assert!(skipped(&p).is_empty(), "{p:?}");
    // A BOM where two files were concatenated, too.
    let input = format!("\u{feff}{}\n\u{feff}{}\n", rec("a"), rec("b"));
    assert_eq!(records(&check(input.as_bytes())), vec![rec("a"), rec("b")]);
}

// Goal: a truncated last line is reported; everything before it is kept.
#[test]
fn truncated_last_line() {
    let full = rec("c");
    let input = format!("{}\n{}\n{}", rec("a"), rec("b"), &full[..full.len() / 2]);
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b")]);
    assert_eq!(skipped(&p), vec![(3, 3, "Truncated")]);
}

// Goal: a truncated line in the middle costs only itself, whether it was
// cut inside a string or between tokens.
#[test]
fn truncated_middle_lines() {
    let full = rec("x");
    for cut in [10, 20, 31, 60, full.len() - 1] {
        let input = format!("{}\n{}\n{}\n", rec("a"), &full[..cut], rec("b"));
        let p = check(input.as_bytes());
        assert_eq!(records(&p), vec![rec("a"), rec("b")], "cut at {cut}");
        assert_eq!(skipped(&p).len(), 1, "cut at {cut}: {p:?}");
        assert_eq!(skipped(&p)[0].0, 2);
    }
    // Cut just after an array or a member opened: the next line would be a
    // valid element or value of it, and a closer after it would make one
    // valid value; a whole record on a line of its own is not swallowed.
    for cut in ["{\"a\":[", "{\"a\":"] {
        for closer in ["", "]}\n", "}\n"] {
            let input = format!("{cut}\n{}\n{closer}{}\n", rec("a"), rec("b"));
            let p = check(input.as_bytes());
            assert_eq!(records(&p), vec![rec("a"), rec("b")], "{input}");
            assert_eq!(skipped(&p)[0], (1, 1, "Truncated"), "{input}");
        }
    }
}

// Goal: a pretty-printed record cut just after an array opened does not
// swallow the whole pretty-printed record on the next lines as that
// array's element, even when damage after it closes the cut one (found by
// nothing_intact_is_lost with a random seed in CI); with no indentation
// at all (Python's indent=0), elements at the first column stay elements.
#[test]
fn pretty_record_cut_inside_an_array() {
    let pretty = |id: &str| {
        serde_json::to_string_pretty(
            &serde_json::json!({"eventTime": "2025-01-01T00:00:01Z", "eventName": "X", "eventID": id, "resources": [{"ARN": "a"}]}),
        )
        .unwrap()
    };
    let whole = pretty("cut");
    let cut = &whole[..whole.find("\"resources\": [").unwrap() + "\"resources\": [".len()];
    for garbage in ["", "]}", "]} b]:x"] {
        let input = format!("{cut}\n{}\n{garbage}\n{}\n", pretty("a"), pretty("b"));
        let p = check(input.as_bytes());
        assert_eq!(records(&p), vec![pretty("a"), pretty("b")], "{input}");
        assert_eq!(skipped(&p)[0].0, 1, "{input}: {p:?}");
    }
}

// Goal: pretty-printed records mixed with NDJSON lines are all read.
#[test]
fn pretty_printed_mixed_with_ndjson() {
    let pretty = "{\n  \"eventVersion\": \"1.08\",\n  \"eventTime\": \"2025-01-01T00:00:02Z\",\n  \"userIdentity\": {\n    \"type\": \"IAMUser\"\n  },\n  \"eventName\": \"P\"\n}";
    let input = format!("{}\n{pretty}\n{}\n", rec("a"), rec("b"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), pretty.to_string(), rec("b")]);
    assert!(skipped(&p).is_empty());
}

// Goal: well-formed input in any writer's layout is read whole: pretty
// with no indentation at all (Python's indent=0), tabs, 4 spaces, arrays of
// objects on their own lines, empty objects, and compact arrays.
#[test]
fn every_writers_layout() {
    let v = serde_json::json!({
        "eventVersion": "1.08", "eventTime": "2025-01-01T00:00:01Z", "eventName": "X",
        "resources": [{"ARN": "a", "type": "t"}, {}], "tags": [[{"k": 1}], []], "userIdentity": {"type": "Root", "x": {}},
    });
    for indent in [&b""[..], b"\t", b"    ", b"  "] {
        let mut out = Vec::new();
        let f = serde_json::ser::PrettyFormatter::with_indent(indent);
        serde::Serialize::serialize(&v, &mut serde_json::Serializer::with_formatter(&mut out, f)).unwrap();
        let one = String::from_utf8(out).unwrap();
        let input = format!("{one}\n{one}\n{}\n", v);
        let p = check(input.as_bytes());
        assert_eq!(records(&p), vec![one.clone(), one.clone(), v.to_string()], "indent {indent:?}");
        assert!(skipped(&p).is_empty() && rejected(&p).is_empty(), "indent {indent:?}: {p:?}");
    }
}

// Goal: a broken pretty-printed record is passed over as one span; its
// nested objects are never offered as records (an integration event's
// eventData would look like an event), and the next record is found.
#[test]
fn broken_pretty_record_is_one_span() {
    let broken = "{\n  \"version\": \"1.0\",\n  \"eventData\": {\n    \"eventTime\": \"2025-01-01T00:00:03Z\",\n    \"eventName\": \"Inner\",\n    \"UID\": \"inner\"\n  },\n  \"oops\" \"no colon\"\n}";
    let input = format!("{}\n{broken}\n{}\n", rec("a"), rec("b"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b")], "{p:?}");
    assert!(rejected(&p).is_empty());
    let s = skipped(&p);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].0, s[0].1), (2, 10));
}

// Goal: two values on one line are two records; text between them is a
// skipped span; a record after a log-line prefix is found.
#[test]
fn several_values_on_a_line_and_prefixes() {
    let input = format!("{} {}\n{},{}\n", rec("a"), rec("b"), rec("c"), rec("d"));
    assert_eq!(records(&check(input.as_bytes())), vec![rec("a"), rec("b"), rec("c"), rec("d")]);
    let input = format!("Dec  4 14:34:08 host cloudtrail: {}\n{} junk {}\n", rec("a"), rec("b"), rec("c"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b"), rec("c")]);
    assert_eq!(skipped(&p), vec![(1, 1, "NotJson"), (2, 2, "NotJson")]);
}

// Goal: a JSON array's elements are records; elements that are not
// objects are rejected with their index; a log file's Records likewise.
#[test]
fn arrays_and_log_files() {
    let input = format!("[{}, 1, \"x\", null, [2], {}]", rec("a"), rec("b"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b")]);
    let r: Vec<(Option<u64>, &str)> = rejected(&p).iter().map(|(at, c)| (at.element, *c)).collect();
    // `[2]` is read as an array too: its element 1 is the one rejected.
    assert_eq!(r, vec![(Some(2), "NotAnObject"), (Some(3), "NotAnObject"), (Some(4), "NotAnObject"), (Some(1), "NotAnObject")]);
    // Arrays of log files and arrays of arrays of records are read through.
    let input = format!("[{{\"Records\":[{}]}}, [{}, [{}]], {{\"Records\":[]}}]", rec("a"), rec("b"), rec("c"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b"), rec("c")]);
    assert!(skipped(&p).is_empty() && rejected(&p).is_empty(), "{p:?}");
    let input = format!("{{\"Records\":[{},{}]}}\n{{\"Records\":[{}]}}\n", rec("a"), rec("b"), rec("c"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b"), rec("c")]);
    assert!(skipped(&p).is_empty());
    let input = format!("{{\n  \"Records\": [\n    {},\n    {}\n  ]\n}}\n", rec("a"), rec("b"));
    assert_eq!(records(&check(input.as_bytes())), vec![rec("a"), rec("b")]);
    // Records not first, and other members after it.
    let input = format!("{{\"digest\":1,\"Records\":[{}],\"more\":{{\"x\":[1]}}}}\n{}\n", rec("a"), rec("b"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b")]);
    assert!(skipped(&p).is_empty(), "{p:?}");
}

// Goal: `{"Records": null}` is reported, and costs nothing around it.
#[test]
fn records_null() {
    let input = format!("{}\n{{\"Records\": null}}\n{}\n", rec("a"), rec("b"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("b")]);
    assert_eq!(skipped(&p), vec![(2, 2, "RecordsNotArray")]);
}

// Goal: one corrupt element of a one-line log file costs that element
// only: the splitter resumes at the next `{"eventVersion"`.
#[test]
fn corrupt_element_of_one_line_log_file() {
    let bad = rec("bad").replace("\"eventTime\":", "\"eventTime\" ");
    let input = format!("{{\"Records\":[{},{bad},{},{}]}}\n{}\n", rec("a"), rec("c"), rec("d"), rec("e"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("c"), rec("d"), rec("e")]);
    assert_eq!(skipped(&p).len(), 1);
    // Elements after the resumption keep their place in the array.
    let at: Vec<Option<u64>> = p.iter().filter_map(|x| if let Piece::Record { at, .. } = x { Some(at.element) } else { None }).collect();
    assert_eq!(at, vec![Some(1), Some(3), Some(4), None]);
}

// Goal: a torn line with a complete record glued after it (a crash mid
// write, then an append) keeps the glued record; the marker follows the
// records' own first key when they are not CloudTrail's.
#[test]
fn torn_line_with_glued_record() {
    let full = rec("torn");
    let input = format!("{}\n{}{}\n{}\n", rec("a"), &full[..40], rec("glued"), rec("b"));
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a"), rec("glued"), rec("b")]);
    let onprem = |id: &str| format!(r#"{{"eventTime":"2025-01-01T00:00:01Z","eventName":"Login","UID":"{id}"}}"#);
    let input = format!("{}\n{}{}\n", onprem("a"), &onprem("torn")[..30], onprem("glued"));
    assert_eq!(records(&check(input.as_bytes())), vec![onprem("a"), onprem("glued")]);
}

// Goal: NUL bytes (a zero-filled region) are skipped, even when a record
// follows them on the same line.
#[test]
fn nul_bytes() {
    let mut input = format!("{}\n", rec("a")).into_bytes();
    input.extend_from_slice(&[0u8; 5000]);
    input.extend_from_slice(format!("{}\n\0\0\n{}\n", rec("b"), rec("c")).as_bytes());
    let p = check(&input);
    assert_eq!(records(&p), vec![rec("a"), rec("b"), rec("c")]);
    let s: Vec<&Piece> = p.iter().filter(|x| matches!(x, Piece::Skipped { .. })).collect();
    assert_eq!(s.len(), 2);
    assert!(matches!(s[0], Piece::Skipped { problem: Problem::NulBytes { bytes: 5000 }, .. }), "{:?}", s[0]);
}

// Goal: a record larger than the framing limit is rejected by size without
// being held in memory; its neighbours are kept.
#[test]
fn oversized_value() {
    let big = format!(r#"{{"eventTime":"2025-01-01T00:00:01Z","eventName":"Big","pad":"{}"}}"#, "x".repeat(3000));
    let input = format!("{}\n{big}\n{}\n", rec("a"), rec("b"));
    let p: Vec<Piece> = Splitter::new(BufReader::with_capacity(100, input.as_bytes()), 1000).collect();
    assert_eq!(records(&p), vec![rec("a"), rec("b")]);
    assert!(matches!(
        &rejected(&p)[..],
        [(at, "RecordTooLarge")] if at.line == 2
    ));
}

// Goal: a UTF-16 file is named as such.
#[test]
fn utf16() {
    let text: Vec<u8> = "\u{feff}{\"a\":1}\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let p = check(&text);
    assert!(records(&p).is_empty());
    assert_eq!(skipped(&p)[0].2, "Utf16");
}

// Goal: an input that ends inside an array says so; the elements before
// the cut are kept.
#[test]
fn unclosed_array() {
    let input = format!("{{\"Records\":[{},{}", rec("a"), &rec("b")[..20]);
    let p = check(input.as_bytes());
    assert_eq!(records(&p), vec![rec("a")]);
    let s = skipped(&p);
    assert_eq!(s.len(), 1);
    assert!(matches!(p.last(), Some(Piece::Skipped { problems: 2, .. })), "{p:?}");
}

/// A reader of `len` bytes of `fill` with no line break, then a record.
struct Endless {
    left: u64,
    tail: std::io::Cursor<Vec<u8>>,
    block: Vec<u8>,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return self.tail.read(buf);
        }
        let n = (buf.len() as u64).min(self.left).min(self.block.len() as u64) as usize;
        buf[..n].copy_from_slice(&self.block[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

// Goal: one enormous line (no line break anywhere) is read in bounded
// memory with a clear problem, and a record after it is still found. The
// length is CAIRN_FRAMING_LONG_LINE_BYTES (default 64 MiB; the issue's
// 2 GB case is `CAIRN_FRAMING_LONG_LINE_BYTES=2147483648`).
#[test]
fn enormous_line_in_bounded_memory() {
    let len: u64 = std::env::var("CAIRN_FRAMING_LONG_LINE_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(64 << 20);
    for (fill, head, code) in [(b'x', &b""[..], "NotJson"), (b'a', &b"{\"k\":\""[..], "RecordTooLarge")] {
        let mut tail = Vec::new();
        if !head.is_empty() {
            tail.extend_from_slice(b"\"}");
        }
        tail.extend_from_slice(format!("\n{}\n", rec("after")).as_bytes());
        let body = Endless { left: len, tail: std::io::Cursor::new(tail), block: vec![fill; 1 << 16] };
        let reader = BufReader::with_capacity(1 << 16, std::io::Read::chain(head, body));
        let mut s = Splitter::new(reader, MAX);
        let mut pieces = Vec::new();
        for piece in s.by_ref() {
            pieces.push(piece);
        }
        assert_eq!(records(&pieces), vec![rec("after")], "fill {}", fill as char);
        let codes: Vec<&str> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Skipped { problem, .. } | Piece::Rejected { problem, .. } => Some(problem.code()),
                _ => None,
            })
            .collect();
        assert_eq!(codes, vec![code]);
        assert!(s.buf.capacity() <= 2 * MAX, "the splitter held {} bytes", s.buf.capacity());
        assert!(s.src.replay_capacity() <= 2 * MAX);
    }
}

// Goal: offsets and line numbers stay right across rewinds.
#[test]
fn positions() {
    let full = rec("x");
    let input = format!("{}\n  {}\n{}\n", rec("a"), &full[..30], rec("b"));
    let p = check(input.as_bytes());
    let Piece::Record { at, .. } = &p[2] else { panic!("{p:?}") };
    assert_eq!((at.line, at.column), (3, 1));
    assert_eq!(at.offset as usize, input.rfind('{').unwrap());
}

// Goal: the checker agrees with serde_json on what is one JSON value.
#[test]
fn validator_agrees_with_serde() {
    let cases: &[&[u8]] = &[
        b"{}",
        b"[]",
        b"{\"a\":[1,2.5e-3,-0,true,false,null,\"\\u00e9\\n\"]}",
        b"{\"a\" : { \"b\" : [ ] } }",
        b"{\"a\":01}",
        b"{\"a\":1.}",
        b"{\"a\":-}",
        b"{\"a\":1e}",
        b"{\"a\":tru}",
        b"{\"a\":\"\\x\"}",
        b"{\"a\":\"\\u12g4\"}",
        b"{\"a\":[1,]}",
        b"{\"a\":1,}",
        b"{,}",
        b"{\"a\"}",
        b"{\"a\":\"\t\"}",
        b"[1 2]",
        // Around the fast paths (a key's `": "` and a string value, a
        // string value's `,` and the next key) and where they give way.
        b"{\"a\":\"b\",\"c\":\"d\"}",
        b"{\"a\"  :  \"b\" , \"c\":\"d\"}",
        b"{\"a\":\"b\",  \"c\":{\"d\":[\"e\",\"f\"],\"g\":\"h\"},\"i\":\"j\"}",
        b"{\"a\":\"b\",}",
        b"{\"a\":\"b\",\"c\"}",
        b"{\"a\":\"b\",,\"c\":1}",
        b"{\"a\":\"b\" \"c\":\"d\"}",
        b"{\"a\":\"b\":\"c\"}",
        b"{\"a\"::\"b\"}",
        b"{\"a\":\"b\x01\"}",
        b"{\"a\":\"b\",\"c\":\"d\"}}",
        b"[\"a\",\"b\",]",
        b"[\"a\" , \"b\"]",
        b"{\"a\":[\"b\"],\"c\":\"d\"}",
    ];
    for &c in cases {
        let theirs = serde_json::from_slice::<serde::de::IgnoredAny>(c).is_ok();
        // Whole, and cut in two at every byte (the fast paths look ahead
        // within a chunk only).
        for k in 0..=c.len() {
            let mut v = Validator::new(false);
            let ours = match v.feed(&c[..k]) {
                Step::More => matches!(v.feed(&c[k..]), Step::Done(n) if k + n == c.len()),
                Step::Done(n) => n == c.len(),
                _ => false,
            };
            assert_eq!(ours, theirs, "{:?} cut at {k}", String::from_utf8_lossy(c));
        }
    }
}

mod property {
    use proptest::prelude::*;

    use super::*;

    /// A realistic record with nested objects (as CloudTrail's are), either
    /// on one line or pretty-printed.
    fn intact(id: u32, pretty: bool) -> String {
        let v = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::1:user/u{id}"), "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}},
            "eventTime": "2025-01-01T00:00:01Z",
            "eventName": "PutObject",
            "requestParameters": {"bucketName": "b", "key": format!("k/{id}"), "tags": [{"k": "a"}, {"k": "b"}]},
            "resources": [{"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}],
            "eventID": format!("id-{id}"),
        });
        if pretty {
            serde_json::to_string_pretty(&v).unwrap()
        } else {
            v.to_string()
        }
    }

    fn next(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    /// One line's (or lines') worth of damage, of a kind seen in real
    /// files: garbage text, a record cut short, flipped bytes, NULs,
    /// invalid UTF-8, a stray bracket.
    fn corruption(kind: u8, mut seed: u64) -> Vec<u8> {
        seed |= 1;
        let base = intact((seed % 1000) as u32, seed.is_multiple_of(3)).into_bytes();
        match kind % 7 {
            0 => (0..next(&mut seed) % 80).map(|_| b"ab {}[]\":,x0\\"[(next(&mut seed) % 13) as usize]).filter(|&b| b != b'{').collect(),
            1 => base[..(next(&mut seed) as usize % base.len())].to_vec(),
            2 => {
                let mut b = base;
                for _ in 0..1 + next(&mut seed) % 3 {
                    let i = next(&mut seed) as usize % b.len();
                    b[i] = b"x\"{}[],:\n\0\xff"[(next(&mut seed) % 11) as usize];
                }
                b
            }
            3 => vec![0; 1 + (next(&mut seed) % 300) as usize],
            4 => b"\xc3\x28 \xa0\xa1 not utf-8".to_vec(),
            5 => [&b"{"[..], b"[", b"]", b"}", b"{\"a\":", b"{\"Records\":["][(next(&mut seed) % 6) as usize].to_vec(),
            _ => b"   \t ".to_vec(),
        }
    }

    /// The input of intact records and damaged lines, and the intact
    /// records in order.
    pub fn build(lines: &[(bool, u8, u64, bool)]) -> (Vec<u8>, Vec<String>) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (i, (good, kind, seed, pretty)) in lines.iter().enumerate() {
            if *good {
                let r = intact(100_000 + i as u32, *pretty);
                input.extend_from_slice(r.as_bytes());
                expected.push(r);
            } else {
                input.extend_from_slice(&corruption(*kind, *seed));
            }
            input.push(b'\n');
        }
        (input, expected)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)))]

        // Goal: whatever damage sits between them, every intact record is
        // found, byte-exact and in order, however the input is chunked.
        #[test]
        fn nothing_intact_is_lost(
            lines in prop::collection::vec((any::<bool>(), any::<u8>(), any::<u64>(), any::<bool>()), 1..30),
            cap in 1usize..200,
        ) {
            let (input, expected) = build(&lines);
            let pieces = split_chunked(&input, cap);
            prop_assert_eq!(&pieces, &split(&input));
            let found: Vec<String> = records(&pieces).into_iter().filter(|r| expected.contains(r)).collect();
            prop_assert_eq!(found, expected, "input:\n{}", String::from_utf8_lossy(&input));
        }
    }
}
