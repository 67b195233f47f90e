//! Reading records from what users have: NDJSON, JSON arrays, CloudTrail
//! log files (`{"Records":[...]}`, plain or gzip, one line or pretty), single
//! pretty-printed records, stdin, and whole directory trees such as
//! `AWSLogs/`. Records are handed on as the exact bytes found in the input
//! (the element's text inside a `Records` array), never re-serialized.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Where a record came from, for rejection messages.
#[derive(Debug, Clone)]
pub struct Location {
    pub source: String,
    /// 1-based line (NDJSON) or element index (arrays, `Records`).
    pub index: u64,
    pub kind: &'static str,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.source, self.kind, self.index)
    }
}

/// Expands paths: files as given, directories recursively (files ending in
/// .json, .json.gz, .ndjson, .jsonl, .gz, sorted), `-` for stdin.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut stack = vec![p.clone()];
        let mut found = Vec::new();
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).with_context(|| format!("reading directory {}", d.display()))? {
                let path = e?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if is_input_name(&path) {
                    found.push(path);
                }
            }
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn is_input_name(p: &Path) -> bool {
    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    [".json", ".json.gz", ".ndjson", ".jsonl", ".gz", ".ndjson.gz", ".jsonl.gz"].iter().any(|s| n.ends_with(s))
}

/// Opens a path (or stdin for `-`), transparently gunzipping gzip content
/// (detected by its magic bytes, whatever the name).
pub fn open_input(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).with_context(|| format!("opening {}", path.display()))?)
    };
    let mut r = BufReader::with_capacity(1 << 20, raw);
    let head = r.fill_buf().with_context(|| format!("reading {}", path.display()))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(r))))
    } else {
        Ok(Box::new(r))
    }
}

#[derive(Deserialize)]
struct LogFile<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// Reads every record of one input and passes it to `sink`. Returns the
/// number of input bytes read (after decompression).
pub fn read_records(path: &Path, sink: &mut dyn FnMut(Vec<u8>, Location) -> Result<()>) -> Result<u64> {
    let source = path.display().to_string();
    let mut r = open_input(path)?;
    let mut first = Vec::new();
    let mut bytes = r.read_until(b'\n', &mut first).with_context(|| format!("reading {source}"))? as u64;
    // Skip leading blank lines.
    while !first.is_empty() && first.iter().all(u8::is_ascii_whitespace) {
        first.clear();
        let n = r.read_until(b'\n', &mut first)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    let trimmed = trim(&first);
    if trimmed.is_empty() {
        return Ok(bytes);
    }
    if trimmed[0] == b'{' && serde_json::from_slice::<&RawValue>(trimmed).is_ok() {
        // A complete object on the first line: lines of records or of
        // one-line CloudTrail log files (e.g. `zcat *.json.gz`).
        return lines(r, first, &source, bytes, sink);
    }
    // Anything else is one JSON document spread over lines: an array, a
    // pretty-printed log file, or a pretty-printed single record.
    let mut whole = first;
    whole.extend(read_rest(&mut r, &mut bytes)?);
    let doc = trim(&whole);
    if let Ok(file) = serde_json::from_slice::<LogFile>(doc) {
        emit_elements(&file.records, &source, "record", sink)?;
    } else if let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(doc) {
        emit_elements(&items, &source, "element", sink)?;
    } else {
        // Not a document we recognise: hand it on whole, and the engine
        // rejects it with the JSON error's line and column.
        sink(doc.to_vec(), Location { source, index: 1, kind: "document" })?;
    }
    Ok(bytes)
}

fn read_rest(r: &mut Box<dyn BufRead + Send>, bytes: &mut u64) -> Result<Vec<u8>> {
    let mut rest = Vec::new();
    *bytes += r.read_to_end(&mut rest).context("reading input")? as u64;
    Ok(rest)
}

fn emit_elements(
    items: &[&RawValue],
    source: &str,
    kind: &'static str,
    sink: &mut dyn FnMut(Vec<u8>, Location) -> Result<()>,
) -> Result<()> {
    for (i, v) in items.iter().enumerate() {
        sink(v.get().as_bytes().to_vec(), Location { source: source.to_string(), index: i as u64 + 1, kind })?;
    }
    Ok(())
}

/// Is this line a `{"Records":[...]}` log file rather than a record? A
/// CloudTrail record never has a top-level `Records` key; look only near
/// the start so records are not parsed twice.
fn log_file_line(t: &[u8]) -> Option<LogFile<'_>> {
    let head = &t[..t.len().min(32)];
    if !head.windows(9).any(|w| w == b"\"Records\"") {
        return None;
    }
    serde_json::from_slice::<LogFile>(t).ok()
}

fn lines(
    mut r: Box<dyn BufRead + Send>,
    first: Vec<u8>,
    source: &str,
    mut bytes: u64,
    sink: &mut dyn FnMut(Vec<u8>, Location) -> Result<()>,
) -> Result<u64> {
    let mut line_no = 1u64;
    let mut line = first;
    loop {
        let t = trim(&line);
        if let Some(file) = log_file_line(t) {
            emit_elements(&file.records, &format!("{source} line {line_no}"), "record", sink)?;
        } else if !t.is_empty() {
            sink(t.to_vec(), Location { source: source.to_string(), index: line_no, kind: "line" })?;
        }
        line.clear();
        let n = r.read_until(b'\n', &mut line).with_context(|| format!("reading {source}"))?;
        if n == 0 {
            return Ok(bytes);
        }
        bytes += n as u64;
        line_no += 1;
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(content: &[u8]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.json");
        std::fs::write(&p, content).unwrap();
        let mut out = Vec::new();
        read_records(&p, &mut |r, _| {
            out.push(String::from_utf8(r).unwrap());
            Ok(())
        })
        .unwrap();
        out
    }

    // Goal: every input shape yields the records' exact bytes.
    #[test]
    fn shapes() {
        assert_eq!(collect(b"{\"a\": 1}\n\n{\"b\":2}\n"), vec!["{\"a\": 1}", "{\"b\":2}"]);
        assert_eq!(collect(b"{\"Records\":[{\"a\" : 1},{\"b\":2}]}"), vec!["{\"a\" : 1}", "{\"b\":2}"]);
        assert_eq!(collect(b"{\n \"Records\": [\n  {\"a\": 1}\n ]\n}\n"), vec!["{\"a\": 1}"]);
        assert_eq!(collect(b"[\n{\"a\":1},\n{\"b\":2}\n]"), vec!["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(collect(b"{\n  \"eventName\": \"X\"\n}"), vec!["{\n  \"eventName\": \"X\"\n}"]);
        assert_eq!(collect(b"\n\n"), Vec::<String>::new());
        // Lines may be records or one-line log files (`zcat *.json.gz`).
        assert_eq!(collect(b"{\"Records\":[]}\n{\"x\":1}\n"), vec!["{\"x\":1}"]);
        assert_eq!(collect(b"{\"Records\":[{\"a\":1}]}\n{\"Records\":[{\"b\":2}]}\n"), vec!["{\"a\":1}", "{\"b\":2}"]);
    }
}
