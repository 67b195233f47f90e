//! Frames: a u32 little-endian length, then a postcard body. A read checks
//! the length against its limit before reading anything, and allocates as
//! bytes arrive (docs/PROTOCOL.md section 1).

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// A frame's body buffer starts at most this large and grows as bytes come.
const FIRST_READ_BYTES: usize = 64 * 1024;

/// One message as a whole frame: its length (u32 LE) and its body.
pub fn encode_frame<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let mut frame = postcard::to_extend(msg, vec![0u8; 4]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let len = u32::try_from(frame.len() - 4).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame over 4 GiB"))?;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

/// Writes one frame (in one write: the stream may be unbuffered, as TLS
/// and raw sockets are).
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    w.write_all(&encode_frame(msg)?)?;
    w.flush()
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection cleanly between frames.
    Closed,
    /// The declared length exceeds the limit (nothing was allocated).
    TooLarge {
        len: u32,
        limit: u32,
    },
    /// The body is not a valid message of the expected type.
    Malformed(String),
    Io(io::Error),
}

/// Reads one frame of at most `limit` bytes and decodes it.
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read, limit: u32) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    r.read_exact(&mut len[1..]).map_err(FrameError::Io)?;
    let len = u32::from_le_bytes(len);
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    // Memory follows the bytes that arrive, not the length a peer claims:
    // a forged length costs at most the first read's buffer.
    let mut body = Vec::with_capacity((len as usize).min(FIRST_READ_BYTES));
    r.take(u64::from(len)).read_to_end(&mut body).map_err(FrameError::Io)?;
    if body.len() < len as usize {
        let msg = format!("the connection ended {} bytes into a {len}-byte frame", body.len());
        return Err(FrameError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, msg)));
    }
    let (msg, rest) = postcard::take_from_bytes(&body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!("{} bytes left over after the message", rest.len())));
    }
    Ok(msg)
}
