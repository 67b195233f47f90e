//! Page tokens: opaque, versioned, and bound to the query and snapshot
//! they continue, so paging never repeats or skips an event.

use super::{QueryError, QueryResult};

/// The opaque page token's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(super) fingerprint: u64,
    /// Events with seq >= bound are not part of the snapshot.
    pub(super) bound: u64,
    pub(super) last_time: i64,
    pub(super) last_seq: u64,
    /// When the first page was served (unix ms): lets clients resolve
    /// relative times ("7d") the same way on every page.
    pub created_ms: i64,
}

pub(super) const TOKEN_VERSION: u8 = 1;

impl Token {
    pub(super) fn encode(&self) -> String {
        let mut b = Vec::with_capacity(45);
        b.push(TOKEN_VERSION);
        b.extend_from_slice(&self.fingerprint.to_le_bytes());
        b.extend_from_slice(&self.bound.to_le_bytes());
        b.extend_from_slice(&self.last_time.to_le_bytes());
        b.extend_from_slice(&self.last_seq.to_le_bytes());
        b.extend_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub(crate) fn decode(s: &str) -> QueryResult<Token> {
        let bad = |why: &str| QueryError::InvalidNextToken(format!("the page token is not valid ({why})"));
        if s.len() != 90 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("malformed"));
        }
        let b: Vec<u8> = (0..45).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0)).collect();
        let crc = u32::from_le_bytes(b[41..45].try_into().unwrap_or_default());
        if crc32fast::hash(&b[..41]) != crc {
            return Err(bad("checksum mismatch"));
        }
        if b[0] != TOKEN_VERSION {
            return Err(bad("unknown version"));
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        Ok(Token { fingerprint: u(1), bound: u(9), last_time: u(17) as i64, last_seq: u(25), created_ms: u(33) as i64 })
    }
}

/// When a page token was first issued (unix ms), for resolving relative
/// times consistently across pages; an error if the token is malformed.
pub fn token_created_ms(token: &str) -> QueryResult<i64> {
    Token::decode(token).map(|t| t.created_ms)
}
