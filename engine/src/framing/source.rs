//! The splitter's reader: a `BufRead` with bytes pushed back in front of
//! it (to read part of a failed value again) and a sticky first error (a
//! truncated gzip stream reports once; afterwards the input has ended).

use std::io::{self, BufRead};

pub(super) struct Source<R> {
    inner: R,
    /// Bytes to read before `inner`'s, from `at`.
    replay: Vec<u8>,
    at: usize,
    error: Option<io::Error>,
    failed: bool,
}

impl<R: BufRead> Source<R> {
    pub(super) fn new(inner: R) -> Source<R> {
        Source { inner, replay: Vec::new(), at: 0, error: None, failed: false }
    }

    /// The next bytes; empty at the end of the input or after an error.
    pub(super) fn chunk(&mut self) -> &[u8] {
        if self.at < self.replay.len() {
            return &self.replay[self.at..];
        }
        if self.failed || !self.fill() {
            return &[];
        }
        self.inner.fill_buf().unwrap_or(&[])
    }

    /// Makes `inner`'s buffer non-empty unless the input ended or failed.
    fn fill(&mut self) -> bool {
        loop {
            match self.inner.fill_buf() {
                Ok(b) => return !b.is_empty(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    self.failed = true;
                    return false;
                }
            }
        }
    }

    pub(super) fn consume(&mut self, n: usize) {
        if self.at < self.replay.len() {
            self.at += n;
            debug_assert!(self.at <= self.replay.len());
            if self.at >= self.replay.len() {
                self.replay.clear();
                self.at = 0;
            }
        } else {
            self.inner.consume(n);
        }
    }

    /// At least `n` bytes (fewer only at the end of the input), without
    /// consuming them.
    pub(super) fn peek(&mut self, n: usize) -> &[u8] {
        if self.at >= self.replay.len() {
            self.replay.clear();
            self.at = 0;
            if self.failed || !self.fill() {
                return &[];
            }
            let available = self.inner.fill_buf().map_or(0, <[u8]>::len);
            if available >= n {
                return self.inner.fill_buf().unwrap_or(&[]);
            }
        }
        if self.replay.len() - self.at < n {
            self.replay.drain(..self.at);
            self.at = 0;
            while self.replay.len() < n && !self.failed && self.fill() {
                let b = self.inner.fill_buf().unwrap_or(&[]);
                let take = b.len().min(n - self.replay.len());
                self.replay.extend_from_slice(&b[..take]);
                self.inner.consume(take);
            }
        }
        &self.replay[self.at..]
    }

    /// The rest of the current line through its `\n` (or `max` bytes, or
    /// up to the end of the input), without consuming it.
    pub(super) fn peek_line(&mut self, max: usize) -> &[u8] {
        let mut want = 4096.min(max.max(1));
        loop {
            let head = self.peek(want);
            let len = head.iter().position(|&b| b == b'\n').map_or(head.len(), |i| i + 1);
            if len < head.len() || head.len() < want || want >= max {
                return &self.peek(want)[..len];
            }
            want = (want * 2).min(max);
        }
    }

    /// Puts `bytes` back in front of what is left to read.
    pub(super) fn unread(&mut self, bytes: &[u8]) {
        let mut v = Vec::with_capacity(bytes.len() + self.replay.len() - self.at);
        v.extend_from_slice(bytes);
        v.extend_from_slice(&self.replay[self.at..]);
        self.replay = v;
        self.at = 0;
    }

    /// The read error that ended the input, once.
    pub(super) fn take_error(&mut self) -> Option<String> {
        self.error.take().map(|e| e.to_string())
    }
}

#[cfg(test)]
impl<R> Source<R> {
    pub(super) fn replay_capacity(&self) -> usize {
        self.replay.capacity()
    }
}
