//! Opening what users have: files, stdin, gzip (by its magic bytes,
//! whatever the name), and whole directory trees such as `AWSLogs/`. The
//! bytes are split into records by the engine's framing
//! (`cairn_engine::framing`, rules in docs/INGEST.md), the one splitter
//! every path into the store uses; this module only opens, gunzips and
//! counts.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cairn_engine::framing::{Piece, Position, Problem, Splitter};
use cairn_engine::limits::RECORD_BYTES_MAX;

/// Where a record or a skipped stretch came from, for messages.
#[derive(Debug, Clone)]
pub struct Location {
    pub source: Arc<str>,
    pub at: Position,
    /// For a skipped stretch: its last line.
    pub last_line: Option<u64>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.last_line {
            Some(last) if last > self.at.line => write!(f, "{} lines {}-{}", self.source, self.at.line, last)?,
            _ => write!(f, "{} line {}", self.source, self.at.line)?,
        }
        if let Some(e) = self.at.element {
            write!(f, " (element {e})")?;
        }
        Ok(())
    }
}

/// Expands paths: files as given, directories recursively (files ending in
/// .json, .json.gz, .ndjson, .jsonl, .gz, sorted), `-` for stdin. A path
/// that does not exist is an error before anything is read.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
            continue;
        }
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if !meta.is_dir() {
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
    if out.is_empty() {
        bail!("no input files (.json, .json.gz, .ndjson, .jsonl, .gz) under {}", display_paths(paths));
    }
    Ok(out)
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn is_input_name(p: &Path) -> bool {
    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    [".json", ".json.gz", ".ndjson", ".jsonl", ".gz", ".ndjson.gz", ".jsonl.gz"].iter().any(|s| n.ends_with(s))
}

/// Counts the raw bytes read (before decompression), for progress.
struct Counting<'a, R> {
    inner: R,
    seen: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.seen)(n as u64);
        Ok(n)
    }
}

/// Opens a path (or stdin for `-`), transparently gunzipping gzip content
/// (detected by its magic bytes, whatever the name). `seen` is told of
/// every raw byte read.
pub fn open_input<'a>(path: &Path, seen: &'a mut dyn FnMut(u64)) -> io::Result<Box<dyn BufRead + 'a>> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" { Box::new(io::stdin()) } else { Box::new(File::open(path)?) };
    let mut r = BufReader::with_capacity(1 << 20, Counting { inner: raw, seen });
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(r))))
    } else {
        Ok(Box::new(r))
    }
}

/// The name an input goes by in messages.
pub fn source_name(path: &Path) -> Arc<str> {
    if path.as_os_str() == "-" {
        "<stdin>".into()
    } else {
        path.display().to_string().into()
    }
}

/// Splits one input into pieces and passes each to `sink`, in input order.
/// An input that cannot be opened or read on is reported as a skipped
/// piece, not an error: only the sink's errors end the read. Returns the
/// number of (decompressed) bytes read.
pub fn read_pieces(path: &Path, seen: &mut dyn FnMut(u64), sink: &mut dyn FnMut(Piece) -> Result<()>) -> Result<u64> {
    let input = match open_input(path, seen) {
        Ok(i) => i,
        Err(e) => {
            let at = Position { line: 1, column: 1, ..Position::default() };
            sink(Piece::Skipped { from: at, to: at, problem: Problem::Unreadable(e.to_string()), problems: 1 })?;
            return Ok(0);
        }
    };
    let mut pieces = Splitter::new(input, RECORD_BYTES_MAX);
    for piece in pieces.by_ref() {
        sink(piece)?;
    }
    Ok(pieces.offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(content: &[u8]) -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.json");
        std::fs::write(&p, content).unwrap();
        let (mut records, mut other) = (Vec::new(), Vec::new());
        read_pieces(&p, &mut |_| {}, &mut |piece| {
            match piece {
                Piece::Record { bytes, .. } => records.push(String::from_utf8(bytes).unwrap()),
                p => other.push(format!("{p:?}")),
            }
            Ok(())
        })
        .unwrap();
        (records, other)
    }

    // Goal: every input shape yields the records' exact bytes.
    #[test]
    fn shapes() {
        let r = |c: &[u8]| collect(c).0;
        assert_eq!(r(b"{\"a\": 1}\n\n{\"b\":2}\n"), vec!["{\"a\": 1}", "{\"b\":2}"]);
        assert_eq!(r(b"{\"Records\":[{\"a\" : 1},{\"b\":2}]}"), vec!["{\"a\" : 1}", "{\"b\":2}"]);
        assert_eq!(r(b"{\n \"Records\": [\n  {\"a\": 1}\n ]\n}\n"), vec!["{\"a\": 1}"]);
        assert_eq!(r(b"[\n{\"a\":1},\n{\"b\":2}\n]"), vec!["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(r(b"{\n  \"eventName\": \"X\"\n}"), vec!["{\n  \"eventName\": \"X\"\n}"]);
        assert_eq!(r(b"\n\n"), Vec::<String>::new());
        // Lines may be records or one-line log files (`zcat *.json.gz`).
        assert_eq!(r(b"{\"Records\":[]}\n{\"x\":1}\n"), vec!["{\"x\":1}"]);
        assert_eq!(r(b"{\"Records\":[{\"a\":1}]}\n{\"Records\":[{\"b\":2}]}\n"), vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    // Goal: gzip is recognised by content; a truncated gzip stream keeps
    // the records before the cut and says the rest could not be read.
    #[test]
    fn gzip_and_truncated_gzip() {
        use std::io::Write;
        let mut plain = Vec::new();
        for i in 0..2000 {
            plain.extend_from_slice(format!("{{\"eventTime\":\"2025-01-01T00:00:01Z\",\"eventName\":\"A\",\"n\":{i}}}\n").as_bytes());
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let (records, other) = collect(&gz);
        assert_eq!(records.len(), 2000);
        assert!(other.is_empty());
        let (records, other) = collect(&gz[..gz.len() / 2]);
        assert!(!records.is_empty() && records.len() < 2000, "{}", records.len());
        assert_eq!(other.len(), 1);
        assert!(other[0].contains("Unreadable"), "{other:?}");
        // Gzip magic followed by garbage: unreadable, nothing else.
        let (records, other) = collect(b"\x1f\x8b\x08garbage");
        assert!(records.is_empty());
        assert!(other[0].contains("Unreadable"), "{other:?}");
    }
}
