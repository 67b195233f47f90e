//! An incremental RFC 8259 syntax checker: it is fed a value's bytes in
//! chunks of any size and says where the value ends, or at which byte it
//! stops being JSON. It never allocates, never recurses (nesting is a
//! 128-bit stack) and never looks at a byte twice.
//!
//! It checks syntax only: strings may hold any byte >= 0x20 (UTF-8 is the
//! event parser's check), numbers follow the grammar, literals are spelled
//! out. A raw control byte in a string, a newline included, is an error:
//! that is what makes a truncated line fail on the line it is on.

use crate::limits::RECORD_DEPTH_MAX;

/// What [`Validator::feed`] found in a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every byte belongs to the value, which is not complete yet.
    More,
    /// The value ends after this many bytes of the chunk.
    Done(usize),
    /// In the outermost object, the member `"Records"` opened an array:
    /// this many bytes (through the `[`) were consumed. The caller reads
    /// the array's elements itself, then calls
    /// [`Validator::resume_after_array`] at its `]`.
    RecordsArray(usize),
    /// A line break between tokens: this many bytes (through the `\n`)
    /// were consumed and the value goes on. (The splitter looks at each
    /// new line of a value that spans lines.)
    LineBreak(usize),
    /// The bytes before this offset are fine; the byte at it is not.
    Error(usize, Syntax),
}

impl Step {
    /// How many bytes of a chunk of `len` this step consumed.
    pub fn consumed(self, len: usize) -> usize {
        match self {
            Step::More => len,
            Step::Done(n) | Step::RecordsArray(n) | Step::LineBreak(n) | Step::Error(n, _) => n,
        }
    }
}

/// Why a byte is not JSON where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `found` cannot stand here; `expected` says what could.
    Unexpected { expected: &'static str, found: u8 },
    /// A raw control byte (a newline, a tab, a NUL) inside a string.
    ControlInString(u8),
    /// Nesting deeper than [`RECORD_DEPTH_MAX`].
    TooDeep,
}

impl std::fmt::Display for Syntax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Syntax::Unexpected { expected, found } => write!(f, "expected {expected}, found {}", show_byte(*found)),
            Syntax::ControlInString(b'\n') => f.write_str("a line break inside a string (the value was cut short?)"),
            Syntax::ControlInString(b) => write!(f, "control byte {} inside a string", show_byte(*b)),
            Syntax::TooDeep => write!(f, "nested deeper than {RECORD_DEPTH_MAX} levels"),
        }
    }
}

/// A byte as a person reads it in an error message.
pub fn show_byte(b: u8) -> String {
    match b {
        b'\n' => "a line break".into(),
        b'\r' => "a carriage return".into(),
        0 => "a NUL byte".into(),
        0x21..=0x7e => format!("'{}'", b as char),
        _ => format!("byte 0x{b:02x}"),
    }
}

/// The kind of a value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    pub fn of(first: u8) -> Option<Kind> {
        Some(match first {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b'-' | b'0'..=b'9' => Kind::Number,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value must start here.
    Value,
    /// After `[`: a value or `]`.
    ValueOrClose,
    /// After `{`: a key or `}`.
    KeyOrClose,
    /// After `,` in an object.
    Key,
    Colon,
    /// After a value inside a container: `,` or the closer.
    Next,
    Str {
        key: bool,
    },
    Escape {
        key: bool,
    },
    Hex {
        key: bool,
        left: u8,
    },
    Num(Num),
    Lit {
        word: &'static [u8],
        at: u8,
    },
    Done,
}

/// Where a number is in its grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl Num {
    /// May the number end here?
    fn complete(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::Exp)
    }

    fn step(self, b: u8) -> Option<Num> {
        Some(match (self, b) {
            (Num::Minus, b'0') => Num::Zero,
            (Num::Minus, b'1'..=b'9') => Num::Int,
            (Num::Int, b'0'..=b'9') => Num::Int,
            (Num::Zero | Num::Int, b'.') => Num::Dot,
            (Num::Dot | Num::Frac, b'0'..=b'9') => Num::Frac,
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::E,
            (Num::E, b'+' | b'-') => Num::ESign,
            (Num::E | Num::ESign | Num::Exp, b'0'..=b'9') => Num::Exp,
            _ => return None,
        })
    }
}

/// The longest key remembered, for `Records` detection and for the first
/// key of a record (the splitter's resynchronisation marker).
pub const KEY_BYTES_MAX: usize = 64;

/// Checks one JSON value fed in chunks.
#[derive(Debug, Clone)]
pub struct Validator {
    state: State,
    /// Open containers, innermost in bit `depth - 1`: 1 = array.
    nest: u128,
    depth: u8,
    kind: Option<Kind>,
    /// Watch the outermost object's members for `"Records"`.
    detect_records: bool,
    /// The outermost object's key being read (and whether it fit).
    key: [u8; KEY_BYTES_MAX],
    key_len: u8,
    key_plain: bool,
    /// The outermost object's first key, if short and without escapes.
    first_key: Option<([u8; KEY_BYTES_MAX], u8)>,
    keys_seen: u32,
    member_is_records: bool,
    /// The kind of a `"Records"` member's value that was not an array.
    records_not_array: Option<Kind>,
}

const _: () = assert!(RECORD_DEPTH_MAX <= 128, "the nesting stack is a u128");

impl Validator {
    /// A checker for one value. With `detect_records`, a `"Records"`
    /// member of the outermost object that opens an array is reported as
    /// [`Step::RecordsArray`] instead of being read through.
    pub fn new(detect_records: bool) -> Validator {
        Validator {
            state: State::Value,
            nest: 0,
            depth: 0,
            kind: None,
            detect_records,
            key: [0; KEY_BYTES_MAX],
            key_len: 0,
            key_plain: true,
            first_key: None,
            keys_seen: 0,
            member_is_records: false,
            records_not_array: None,
        }
    }

    /// The value's kind, once its first byte was fed.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// The outermost object's first key (short and unescaped ones only).
    pub fn first_key(&self) -> Option<&[u8]> {
        self.first_key.as_ref().map(|(k, n)| &k[..*n as usize])
    }

    /// When the outermost object had a `"Records"` member that was not an
    /// array: that member's kind.
    pub fn records_not_array(&self) -> Option<Kind> {
        self.records_not_array
    }

    /// After [`Step::RecordsArray`], the caller consumed the array through
    /// its `]`: carry on as after any member value.
    pub fn resume_after_array(&mut self) {
        self.state = State::Next;
    }

    /// The input ended: is the value complete? (Only a bare number can be
    /// complete without a byte after it.)
    pub fn finish(&mut self) -> bool {
        match self.state {
            State::Done => true,
            State::Num(n) if self.depth == 0 && n.complete() => {
                self.state = State::Done;
                true
            }
            _ => false,
        }
    }

    /// Is a member's value due next (the last byte was a key's `:`)?
    pub fn expects_member_value(&self) -> bool {
        self.state == State::Value && self.depth > 0 && !self.in_array()
    }

    /// Is an array's element due next (after its `[` or a `,`)?
    pub fn expects_element(&self) -> bool {
        self.depth > 0 && self.in_array() && matches!(self.state, State::Value | State::ValueOrClose)
    }

    /// How many members the outermost object has shown so far.
    pub fn members(&self) -> u32 {
        self.keys_seen
    }

    fn outermost_object(&self) -> bool {
        self.depth == 1 && self.nest & 1 == 0
    }

    fn open(&mut self, array: bool) -> Result<(), Syntax> {
        if self.depth as usize >= RECORD_DEPTH_MAX {
            return Err(Syntax::TooDeep);
        }
        if array {
            self.nest |= 1 << self.depth;
        } else {
            self.nest &= !(1 << self.depth);
        }
        self.depth += 1;
        self.state = if array { State::ValueOrClose } else { State::KeyOrClose };
        Ok(())
    }

    /// A value (scalar or container) just ended.
    fn value_ended(&mut self) {
        self.state = if self.depth == 0 { State::Done } else { State::Next };
    }

    fn in_array(&self) -> bool {
        self.depth > 0 && self.nest >> (self.depth - 1) & 1 == 1
    }

    /// Feeds the next bytes of the value. After `Done`, `RecordsArray`
    /// (until resumed) or `Error`, feeding more is a caller bug.
    pub fn feed(&mut self, bytes: &[u8]) -> Step {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                State::Str { key } => {
                    // The hot loop: the run of plain string bytes.
                    let run = plain_run(&bytes[i..]);
                    if key && self.outermost_object() {
                        self.remember_key(&bytes[i..i + run]);
                    }
                    i += run;
                    let Some(&c) = bytes.get(i) else { break };
                    match c {
                        b'"' => {
                            // Fast paths, for what records are mostly made of:
                            // a key's `": "` and a string value, a string
                            // value's `,` and the next key, when they lie in
                            // this chunk with nothing but spaces between. The
                            // states they pass through are set as the general
                            // steps would; anything else takes those steps.
                            let mut j = i + 1;
                            if key {
                                self.key_ended();
                                self.state = State::Colon;
                                if !self.member_is_records {
                                    j += spaces(&bytes[j..]);
                                    if bytes.get(j) == Some(&b':') {
                                        j += 1 + spaces(&bytes[j + 1..]);
                                        if bytes.get(j) == Some(&b'"') {
                                            self.state = State::Str { key: false };
                                            i = j + 1;
                                            continue;
                                        }
                                    }
                                }
                            } else {
                                self.value_ended();
                                if self.state == State::Next && !self.in_array() && bytes.get(j) == Some(&b',') {
                                    j += 1 + spaces(&bytes[j + 1..]);
                                    if bytes.get(j) == Some(&b'"') {
                                        self.key_len = 0;
                                        self.key_plain = true;
                                        self.state = State::Str { key: true };
                                        i = j + 1;
                                        continue;
                                    }
                                }
                            }
                        }
                        b'\\' => {
                            if key && self.outermost_object() {
                                self.key_plain = false;
                            }
                            self.state = State::Escape { key };
                        }
                        _ => return Step::Error(i, Syntax::ControlInString(c)),
                    }
                }
                State::Escape { key } => {
                    self.state = match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => State::Str { key },
                        b'u' => State::Hex { key, left: 4 },
                        _ => {
                            return Step::Error(
                                i,
                                Syntax::Unexpected { expected: "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)", found: b },
                            )
                        }
                    }
                }
                State::Hex { key, left } => {
                    if !b.is_ascii_hexdigit() {
                        return Step::Error(i, Syntax::Unexpected { expected: "a hex digit of a \\u escape", found: b });
                    }
                    self.state = if left == 1 { State::Str { key } } else { State::Hex { key, left: left - 1 } };
                }
                State::Num(n) => match n.step(b) {
                    Some(next) => self.state = State::Num(next),
                    None if n.complete() => {
                        // The byte after a number belongs to what follows.
                        self.value_ended();
                        if self.state == State::Done {
                            return Step::Done(i);
                        }
                        continue;
                    }
                    None => return Step::Error(i, Syntax::Unexpected { expected: "a digit", found: b }),
                },
                State::Lit { word, at } => {
                    if b != word[at as usize] {
                        return Step::Error(i, Syntax::Unexpected { expected: literal_name(word), found: b });
                    }
                    if at as usize + 1 == word.len() {
                        self.value_ended();
                    } else {
                        self.state = State::Lit { word, at: at + 1 };
                    }
                }
                _ if is_ws(b) => {
                    if b == b'\n' {
                        return Step::LineBreak(i + 1);
                    }
                    // Indentation comes in runs of spaces.
                    while bytes.get(i + 1) == Some(&b' ') {
                        i += 1;
                    }
                }
                State::Value | State::ValueOrClose => {
                    if b == b']' && self.state == State::ValueOrClose {
                        self.depth -= 1;
                        self.value_ended();
                    } else {
                        let Some(kind) = Kind::of(b) else {
                            let expected = if self.state == State::ValueOrClose { "a value or ']'" } else { "a value" };
                            return Step::Error(i, Syntax::Unexpected { expected, found: b });
                        };
                        if self.kind.is_none() {
                            self.kind = Some(kind);
                        }
                        if self.member_is_records && self.outermost_object() {
                            self.member_is_records = false;
                            if kind == Kind::Array {
                                return Step::RecordsArray(i + 1);
                            }
                            self.records_not_array = Some(kind);
                        }
                        if let Err(e) = self.start_value(kind, b) {
                            return Step::Error(i, e);
                        }
                    }
                }
                State::KeyOrClose | State::Key => match b {
                    b'"' => {
                        self.key_len = 0;
                        self.key_plain = true;
                        self.state = State::Str { key: true };
                    }
                    b'}' if self.state == State::KeyOrClose => {
                        self.depth -= 1;
                        self.value_ended();
                    }
                    _ => {
                        let expected = if self.state == State::KeyOrClose { "a key string or '}'" } else { "a key string" };
                        return Step::Error(i, Syntax::Unexpected { expected, found: b });
                    }
                },
                State::Colon => {
                    if b != b':' {
                        return Step::Error(i, Syntax::Unexpected { expected: "':' after a key", found: b });
                    }
                    self.state = State::Value;
                }
                State::Next => {
                    let array = self.in_array();
                    match (b, array) {
                        (b',', true) => self.state = State::Value,
                        (b',', false) => self.state = State::Key,
                        (b']', true) | (b'}', false) => {
                            self.depth -= 1;
                            self.value_ended();
                        }
                        _ => {
                            let expected = if array { "',' or ']' after an array element" } else { "',' or '}' after a member" };
                            return Step::Error(i, Syntax::Unexpected { expected, found: b });
                        }
                    }
                }
                State::Done => return Step::Done(i),
            }
            i += 1;
            if self.state == State::Done {
                return Step::Done(i);
            }
        }
        Step::More
    }

    fn start_value(&mut self, kind: Kind, first: u8) -> Result<(), Syntax> {
        self.state = match kind {
            Kind::Object => return self.open(false),
            Kind::Array => return self.open(true),
            Kind::String => State::Str { key: false },
            Kind::Number => State::Num(match first {
                b'-' => Num::Minus,
                b'0' => Num::Zero,
                _ => Num::Int,
            }),
            Kind::Bool | Kind::Null => {
                let word: &'static [u8] = match first {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                State::Lit { word, at: 1 }
            }
        };
        Ok(())
    }

    fn remember_key(&mut self, run: &[u8]) {
        let at = self.key_len as usize;
        let n = run.len().min(KEY_BYTES_MAX - at);
        self.key[at..at + n].copy_from_slice(&run[..n]);
        self.key_len = (at + n) as u8;
        if n < run.len() {
            self.key_plain = false;
        }
    }

    fn key_ended(&mut self) {
        if !self.outermost_object() {
            return;
        }
        let key = &self.key[..self.key_len as usize];
        self.member_is_records = self.detect_records && self.key_plain && key == b"Records";
        if self.keys_seen == 0 && self.key_plain {
            self.first_key = Some((self.key, self.key_len));
        }
        self.keys_seen = self.keys_seen.saturating_add(1);
    }
}

fn literal_name(word: &[u8]) -> &'static str {
    match word {
        b"true" => "'true'",
        b"false" => "'false'",
        _ => "'null'",
    }
}

/// The length of the run of bytes that may stand in a string as they are:
/// up to the first `"`, `\\` or control byte. Eight bytes a step (SWAR):
/// `(x - 0x01..) & !x & 0x80..` flags a zero byte, and no byte before the
/// first flagged one is flagged wrongly, so the lowest flag is the answer.
pub(crate) fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash) | (w.wrapping_sub(ONES * 0x20) & !w);
        let flags = flags & HIGHS;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len() - i)
}

/// How many spaces `b` starts with.
fn spaces(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b' ').count()
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::plain_run;

    // Goal: the word-at-a-time scan finds exactly what a byte loop finds,
    // for every special byte at every offset, with any bytes around it.
    #[test]
    fn plain_run_matches_a_byte_loop() {
        let slow = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len());
        let fillers = [b'a', 0x7f, 0x80, 0xa0, 0xff, 0x20, 0x21, b'!', 0xdc];
        for len in 0..24 {
            for &fill in &fillers {
                let base = vec![fill; len];
                assert_eq!(plain_run(&base), slow(&base));
                for at in 0..len {
                    for special in [b'"', b'\\', 0u8, 0x1f, b'\n', 0x01] {
                        let mut v = base.clone();
                        v[at] = special;
                        // and a second special byte later, and low bytes before
                        if at + 2 < len {
                            v[at + 2] = b'"';
                        }
                        assert_eq!(plain_run(&v), slow(&v), "{v:?}");
                    }
                }
            }
        }
    }
}
