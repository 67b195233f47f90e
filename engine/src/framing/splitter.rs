//! The splitter: reads any input of CloudTrail records (NDJSON, JSON
//! arrays, log files with `Records`, pretty-printed, with garbage between)
//! and yields each record or each problem with its position, never
//! dropping an intact record around bad bytes.

use std::collections::VecDeque;
use std::io::BufRead;

use super::source::Source;
use super::{Kind, Piece, Position, Problem, Step, Validator};

/// The line and byte a splitter has reached.
#[derive(Debug, Clone, Copy, Default)]
struct Tracker {
    offset: u64,
    /// 0-based line number.
    line: u64,
    line_start: u64,
    /// Leading spaces and tabs of the current line (so far).
    indent: u64,
    /// No other byte seen on this line yet.
    indent_open: bool,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker { indent_open: true, ..Tracker::default() }
    }

    fn advance(&mut self, bytes: &[u8]) {
        let rest = match memchr::memrchr(b'\n', bytes) {
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', bytes).count() as u64;
                self.line_start = self.offset + last as u64 + 1;
                self.indent = 0;
                self.indent_open = true;
                &bytes[last + 1..]
            }
            None => bytes,
        };
        if self.indent_open {
            let ws = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
            self.indent += ws as u64;
            self.indent_open = ws == rest.len();
        }
        self.offset += bytes.len() as u64;
    }

    fn at_line_start(&self) -> bool {
        self.offset == self.line_start
    }

    fn position(&self, element: Option<u64>) -> Position {
        Position { offset: self.offset, line: self.line + 1, column: self.offset - self.line_start + 1, element }
    }
}

/// The array being streamed: a top-level `[`, or a log file's `Records`
/// (then `wrapper` is the log file object's checker, paused at the `[`).
#[derive(Debug)]
struct ArrayCtx {
    wrapper: Option<Validator>,
    opened: Tracker,
    elements: u64,
}

#[derive(Debug)]
struct Skip {
    from: Position,
    to: Position,
    problem: Problem,
    problems: u64,
}

/// The key that opens a CloudTrail record: the marker until a record
/// shows another.
const DEFAULT_MARKER: &[u8] = b"eventVersion";

/// Whitespace allowed between `{` and the marker key.
const MARKER_GAP_MAX: usize = 8;

/// Arrays inside arrays are streamed down to this depth (an array of log
/// files, say); deeper ones are elements that are not records.
const ARRAYS_NESTED_MAX: usize = 8;

/// Indentation is compared up to this many spaces.
const INDENT_MAX: u64 = 1024;

/// How much of a non-JSON stretch is quoted in its problem.
const PREVIEW_BYTES_MAX: usize = 48;

/// Splits a byte stream into [`Piece`]s. An iterator: it ends after the
/// input's end or the first read error (reported as a skipped span).
pub struct Splitter<R> {
    pub(super) src: Source<R>,
    pos: Tracker,
    /// The arrays being streamed, outermost first.
    arrays: Vec<ArrayCtx>,
    marker: Vec<u8>,
    value_bytes_max: usize,
    /// The value being read, while it fits `value_bytes_max`.
    pub(super) buf: Vec<u8>,
    queue: VecDeque<Piece>,
    pending_skip: Option<Skip>,
    finished: bool,
}

impl<R: BufRead> Splitter<R> {
    /// A splitter over `input` that keeps values of up to
    /// `value_bytes_max` bytes (larger ones are reported, not kept; use
    /// [`crate::limits::RECORD_BYTES_MAX`], the largest record any store
    /// accepts, so the store names its own, smaller limit).
    pub fn new(input: R, value_bytes_max: usize) -> Splitter<R> {
        Splitter {
            src: Source::new(input),
            pos: Tracker::new(),
            arrays: Vec::new(),
            marker: DEFAULT_MARKER.to_vec(),
            value_bytes_max,
            buf: Vec::new(),
            queue: VecDeque::new(),
            pending_skip: None,
            finished: false,
        }
    }

    /// Bytes read from the input so far.
    pub fn offset(&self) -> u64 {
        self.pos.offset
    }

    fn push(&mut self, piece: Piece) {
        self.flush_skip();
        self.queue.push_back(piece);
    }

    /// Queues the pending skipped span, if any (a piece or the end follows).
    fn flush_skip(&mut self) {
        if let Some(s) = self.pending_skip.take() {
            self.queue.push_back(Piece::Skipped { from: s.from, to: s.to, problem: s.problem, problems: s.problems });
        }
    }

    fn skip(&mut self, from: Tracker, element: Option<u64>, problem: Problem) {
        let (from, to) = (from.position(element), self.pos.position(None));
        match &mut self.pending_skip {
            Some(s) => {
                s.to = to;
                s.problems += 1;
            }
            None => self.pending_skip = Some(Skip { from, to, problem, problems: 1 }),
        }
    }

    fn step(&mut self) {
        if self.pos.offset == 0 && looks_utf16(self.src.peek(4)) {
            // Not UTF-8 at all: say so once for the whole input.
            let start = self.pos;
            while !self.src.chunk().is_empty() {
                self.skip_line();
            }
            self.skip(start, None, Problem::Utf16);
            return self.end_of_input();
        }
        let chunk = self.src.chunk();
        let Some(&b) = chunk.first() else { return self.end_of_input() };
        match b {
            b' ' | b'\t' | b'\r' | b'\n' | b',' => {
                let n = chunk.iter().position(|&c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',')).unwrap_or(chunk.len());
                self.pos.advance(&chunk[..n]);
                self.src.consume(n);
            }
            0 => {
                let start = self.pos;
                let mut bytes = 0u64;
                loop {
                    let chunk = self.src.chunk();
                    let n = chunk.iter().position(|&c| c != 0).unwrap_or(chunk.len());
                    if n == 0 {
                        break;
                    }
                    self.pos.advance(&chunk[..n]);
                    self.src.consume(n);
                    bytes += n as u64;
                }
                self.skip(start, None, Problem::NulBytes { bytes });
            }
            0xEF if self.src.peek(3).starts_with(b"\xEF\xBB\xBF") => {
                // A byte-order mark (at the start, or where files were concatenated).
                self.pos.advance(b"\xEF\xBB\xBF");
                self.src.consume(3);
            }
            b'{' => self.value(),
            b'[' if self.arrays.len() < ARRAYS_NESTED_MAX => {
                if let Some(a) = self.arrays.last_mut() {
                    a.elements += 1;
                }
                self.arrays.push(ArrayCtx { wrapper: None, opened: self.pos, elements: 0 });
                self.pos.advance(b"[");
                self.src.consume(1);
            }
            b']' if !self.arrays.is_empty() => {
                self.pos.advance(b"]");
                self.src.consume(1);
                self.close_array();
            }
            _ if !self.arrays.is_empty() && Kind::of(b).is_some() => self.value(),
            _ => self.junk(),
        }
    }

    /// Reads one value from its first byte: a record, a rejected element,
    /// a log file's `Records` to stream, or a failure to recover from.
    fn value(&mut self) {
        let start = self.pos;
        let element = self.arrays.last_mut().map(|a| {
            a.elements += 1;
            a.elements
        });
        let mut v = Validator::new(true);
        let mut compact = None;
        // Whether a line of this value was indented deeper than its first
        // (a writer that indents: Python's indent=0 does not).
        let mut indented = false;
        self.buf.clear();
        let mut total = 0u64;
        let mut kept = true;
        loop {
            let chunk = self.src.chunk();
            if chunk.is_empty() {
                if v.finish() {
                    return self.complete(&v, start, element, total, kept, Vec::new());
                }
                let problem = self.src.take_error().map_or(Problem::Truncated, Problem::Unreadable);
                return self.recover(start, element, problem, kept);
            }
            let step = v.feed(chunk);
            let n = step.consumed(chunk.len());
            total += n as u64;
            kept = kept && self.buf.len() + n <= self.value_bytes_max;
            let done = matches!(step, Step::Done(_));
            // A record that lies in one chunk is copied once, straight out.
            let whole = if done && kept && self.buf.is_empty() { chunk[..n].to_vec() } else { Vec::new() };
            if kept && whole.is_empty() {
                self.buf.extend_from_slice(&chunk[..n]);
            } else if !kept {
                self.buf.clear();
            }
            self.pos.advance(&chunk[..n]);
            self.src.consume(n);
            match step {
                Step::More => {}
                Step::LineBreak(_) => {
                    // Writers put a multi-line value's opener alone on its
                    // line; more on it means a line that was cut short.
                    let compact = *compact.get_or_insert_with(|| kept && self.buf[1..].iter().any(|&b| !is_ws(b)));
                    if self.record_starts_here(&v, start.indent, compact, &mut indented) {
                        let problem = Problem::Interrupted { line: self.pos.line + 1 };
                        return self.recover(start, element, problem, kept);
                    }
                }
                Step::Done(_) => return self.complete(&v, start, element, total, kept, whole),
                Step::RecordsArray(_) => {
                    self.arrays.push(ArrayCtx { wrapper: Some(v), opened: start, elements: 0 });
                    return;
                }
                Step::Error(_, syntax) => {
                    let problem = Problem::InvalidJson { at: self.pos.position(element), syntax };
                    return self.recover(start, element, problem, kept);
                }
            }
        }
    }

    /// At the start of a line inside a value that began on a line indented
    /// `indent`: does a record start here instead? JSON writers put a
    /// multi-line container's opener alone on its line, indent what is
    /// inside deeper than that line, and never start a line with a
    /// member's `{`, nor, when they indent at all (`indented`: a line of
    /// the value was deeper than its first), an element's. So a line
    /// indented no deeper that opens a member's value, or an array's
    /// element in an indented value, or holds a whole non-empty object,
    /// or opens an object inside a value whose first line was `compact`
    /// (not a writer's), is a record that the unfinished value (a line
    /// cut short, say) must not swallow. Sets `indented` when this line
    /// is deeper than the value's first.
    fn record_starts_here(&mut self, v: &Validator, indent: u64, compact: bool, indented: &mut bool) -> bool {
        let indent = indent.min(INDENT_MAX);
        let head = self.src.peek(indent as usize + 2);
        let ws = head.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        if ws as u64 > indent {
            *indented = true;
            return false;
        }
        if head.get(ws) != Some(&b'{') {
            return false;
        }
        if compact || v.expects_member_value() || (*indented && v.expects_element()) {
            return true;
        }
        let line = self.src.peek_line(self.value_bytes_max);
        let mut probe = Validator::new(false);
        match probe.feed(&line[ws..]) {
            Step::Done(n) => probe.members() > 0 && line[ws + n..].iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b',')),
            _ => false,
        }
    }

    fn complete(&mut self, v: &Validator, start: Tracker, element: Option<u64>, total: u64, kept: bool, whole: Vec<u8>) {
        let at = start.position(element);
        if let Some(kind) = v.records_not_array() {
            return self.skip(start, element, Problem::RecordsNotArray(kind));
        }
        match v.kind() {
            Some(Kind::Object) => {}
            Some(kind) => return self.push(Piece::Rejected { at, problem: Problem::NotAnObject(kind) }),
            None => return self.skip(start, element, Problem::Truncated),
        }
        if !kept {
            return self.push(Piece::Rejected { at, problem: Problem::TooLarge { bytes: total, limit: self.value_bytes_max } });
        }
        if let Some(key) = v.first_key() {
            if key != self.marker.as_slice() {
                self.marker = key.to_vec();
            }
        }
        let bytes = if whole.is_empty() { self.buf.as_slice().to_vec() } else { whole };
        self.push(Piece::Record { bytes, at });
    }

    /// A value that began at `start` stopped being JSON (or the input
    /// ended inside it). Resume at the next record the evidence shows, and
    /// report everything passed over as one span.
    fn recover(&mut self, start: Tracker, element: Option<u64>, problem: Problem, kept: bool) {
        if matches!(problem, Problem::Unreadable(_)) {
            self.skip(start, element, problem);
            return self.finish();
        }
        let indent = start.indent;
        let rewind = kept && self.buf.len() > 1;
        if rewind {
            // Read the rest of the value's first line again, from just
            // after its first byte.
            let held = std::mem::take(&mut self.buf);
            self.src.unread(&held[1..]);
            self.pos = start;
            self.pos.advance(&held[..1]);
            self.buf = held;
            self.buf.clear();
        }
        // Without a rewind, the failure may sit at the start of a later line
        // indented no deeper: that line is where to resume.
        let at_resumable_line = !rewind && self.pos.line > start.line && self.pos.indent_open && self.pos.indent <= indent;
        if !at_resumable_line && !self.seek_marker_in_line() {
            self.skip_deeper_lines(indent);
        }
        self.skip(start, element, problem);
    }

    /// Moves to the next record marker on this line (true) or past the
    /// line's end (false).
    fn seek_marker_in_line(&mut self) -> bool {
        loop {
            let chunk = self.src.chunk();
            if chunk.is_empty() {
                return false;
            }
            match chunk.iter().position(|&b| b == b'\n' || b == b'{') {
                None => {
                    let n = chunk.len();
                    self.pos.advance(&chunk[..n]);
                    self.src.consume(n);
                }
                Some(i) if chunk[i] == b'\n' => {
                    self.pos.advance(&chunk[..=i]);
                    self.src.consume(i + 1);
                    return false;
                }
                Some(i) => {
                    self.pos.advance(&chunk[..i]);
                    self.src.consume(i);
                    let head = self.src.peek(1 + MARKER_GAP_MAX + self.marker.len() + 2);
                    if is_marker(head, &self.marker) {
                        return true;
                    }
                    self.pos.advance(b"{");
                    self.src.consume(1);
                }
            }
        }
    }

    /// From a line's start, passes over blank lines and lines indented
    /// deeper than `indent` (the inside of a broken pretty-printed value).
    fn skip_deeper_lines(&mut self, indent: u64) {
        let indent = indent.min(INDENT_MAX);
        while self.pos.at_line_start() {
            let head = self.src.peek(indent as usize + 2);
            let ws = head.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
            let deeper = ws as u64 > indent;
            let blank = matches!(head.get(ws), Some(b'\n' | b'\r'));
            if head.is_empty() || !(deeper || blank) {
                return;
            }
            self.skip_line();
        }
    }

    /// Consumes through the end of the current line.
    fn skip_line(&mut self) {
        loop {
            let chunk = self.src.chunk();
            if chunk.is_empty() {
                return;
            }
            let (n, eol) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            self.pos.advance(&chunk[..n]);
            self.src.consume(n);
            if eol {
                return;
            }
        }
    }

    /// Text where a value should start: pass over it up to the end of the
    /// line, or up to a `{` that could open a record (not one that is the
    /// value of a `"key":`, which is the inside of a broken value).
    fn junk(&mut self) {
        let start = self.pos;
        let mut preview = Vec::new();
        let mut nuls = 0u64;
        let mut last = 0u8;
        let mut member = false;
        'scan: loop {
            let chunk = self.src.chunk();
            if chunk.is_empty() {
                break;
            }
            let mut n = chunk.len();
            for (i, &b) in chunk.iter().enumerate() {
                if b == b'\n' {
                    n = i + 1;
                    self.pos.advance(&chunk[..n]);
                    self.src.consume(n);
                    break 'scan;
                }
                // (`step` reads a `{` where junk would start as a value.)
                if b == b'{' && !(last == b':' && member) {
                    n = i;
                    self.pos.advance(&chunk[..n]);
                    self.src.consume(n);
                    break 'scan;
                }
                if preview.len() < PREVIEW_BYTES_MAX {
                    preview.push(b);
                }
                nuls += u64::from(b == 0);
                if b == b':' {
                    member = last == b'"';
                }
                if !matches!(b, b' ' | b'\t' | b'\r') {
                    last = b;
                }
            }
            self.pos.advance(&chunk[..n]);
            self.src.consume(n);
        }
        let problem = if nuls > 0 {
            Problem::NulBytes { bytes: nuls }
        } else {
            match std::str::from_utf8(&preview) {
                Ok(s) => Problem::NotJson { found: s.trim_end().to_string() },
                Err(e) if e.error_len().is_none() => {
                    Problem::NotJson { found: String::from_utf8_lossy(&preview[..e.valid_up_to()]).trim_end().to_string() }
                }
                Err(_) => Problem::InvalidUtf8,
            }
        };
        self.skip(start, None, problem);
    }

    /// The `]` of the streamed array was consumed.
    fn close_array(&mut self) {
        let Some(ctx) = self.arrays.pop() else { return };
        let Some(mut wrapper) = ctx.wrapper else { return };
        // The rest of the log file object: `}` or more members.
        wrapper.resume_after_array();
        let start = self.pos;
        loop {
            let chunk = self.src.chunk();
            if chunk.is_empty() {
                let problem = self.src.take_error().map_or(Problem::Truncated, Problem::Unreadable);
                return self.recover(start, None, problem, false);
            }
            let step = wrapper.feed(chunk);
            let n = step.consumed(chunk.len());
            self.pos.advance(&chunk[..n]);
            self.src.consume(n);
            match step {
                Step::More => {}
                Step::LineBreak(_) => {
                    if self.record_starts_here(&wrapper, start.indent, true, &mut true) {
                        let problem = Problem::Interrupted { line: self.pos.line + 1 };
                        return self.recover(start, None, problem, false);
                    }
                }
                Step::Done(_) => {
                    if let Some(kind) = wrapper.records_not_array() {
                        self.skip(start, None, Problem::RecordsNotArray(kind));
                    }
                    return;
                }
                Step::RecordsArray(_) => {
                    self.arrays.push(ArrayCtx { wrapper: Some(wrapper), opened: ctx.opened, elements: ctx.elements });
                    return;
                }
                Step::Error(_, syntax) => {
                    let problem = Problem::InvalidJson { at: self.pos.position(None), syntax };
                    return self.recover(start, None, problem, false);
                }
            }
        }
    }

    fn end_of_input(&mut self) {
        if let Some(e) = self.src.take_error() {
            let at = self.pos;
            self.skip(at, None, Problem::Unreadable(e));
        } else if let Some(ctx) = self.arrays.first() {
            let at = self.pos;
            self.skip(at, None, Problem::UnclosedArray { opened_line: ctx.opened.line + 1 });
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.flush_skip();
        self.arrays.clear();
        self.finished = true;
    }
}

impl<R: BufRead> Iterator for Splitter<R> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        loop {
            if let Some(p) = self.queue.pop_front() {
                return Some(p);
            }
            if self.finished {
                return None;
            }
            self.step();
        }
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A UTF-16 byte-order mark followed by an ASCII code unit?
fn looks_utf16(head: &[u8]) -> bool {
    match head {
        [0xFF, 0xFE, c, 0, ..] | [0xFE, 0xFF, 0, c, ..] => c.is_ascii() && *c != 0,
        _ => false,
    }
}

/// `{`, a little whitespace, then `"marker"`?
fn is_marker(head: &[u8], marker: &[u8]) -> bool {
    let Some(rest) = head.strip_prefix(b"{") else { return false };
    let gap = rest.iter().take(MARKER_GAP_MAX).take_while(|&&b| b == b' ' || b == b'\t').count();
    let rest = &rest[gap..];
    rest.len() >= marker.len() + 2 && rest[0] == b'"' && &rest[1..=marker.len()] == marker && rest[marker.len() + 1] == b'"'
}
