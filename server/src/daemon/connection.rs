//! One connection: TLS if configured, the handshake and its token, then
//! requests read and answered in order until the client leaves or the
//! daemon shuts down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::protocol::{
    codes, encode_frame, read_frame, write_frame, FrameError, Hello, HelloReply, Request, Response, ResponseBody, HELLO_FRAME_BYTES_MAX,
    MAGIC, PROTOCOL_VERSION, RESPONSE_FRAME_BYTES_MAX,
};

use super::dispatch::handle;
use super::listener::ConnGuard;
use super::{err, Shared};

/// A connection's byte stream: plain TCP or TLS over it.
pub(super) trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// Waits until a frame starts arriving (possibly already buffered), the
/// connection idles out, or the server shuts down. Returns false when the
/// connection should end.
pub(super) fn wait_for_frame(reader: &mut BufReader<Box<dyn Io>>, raw: &TcpStream, shared: &Shared) -> std::io::Result<bool> {
    let idle_since = Instant::now();
    raw.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        if shared.shutdown.load(Ordering::SeqCst) || idle_since.elapsed() >= shared.cfg.idle_timeout {
            return Ok(false);
        }
        match reader.fill_buf() {
            Ok([]) => return Ok(false),
            Ok(_) => {
                raw.set_read_timeout(Some(Duration::from_secs(60)))?;
                return Ok(true);
            }
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
}

pub(super) fn serve(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_nodelay(true)?;
    let raw = stream.try_clone()?;
    let io: Box<dyn Io> = match &shared.tls {
        Some(cfg) => Box::new(rustls::StreamOwned::new(rustls::ServerConnection::new(cfg.clone())?, stream)),
        None => Box::new(stream),
    };
    let mut reader = BufReader::with_capacity(1 << 16, io);
    let n = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = ConnGuard(&shared.connections);
    if n > shared.cfg.connections_max {
        tracing::warn!(limit = shared.cfg.connections_max, "connection refused: limit reached");
        let msg = format!("the server's connection limit of {} is reached", shared.cfg.connections_max);
        write_frame(reader.get_mut(), &HelloReply::Error(err(codes::TOO_MANY_CONNECTIONS, msg)))?;
        return Ok(());
    }
    if !wait_for_frame(&mut reader, &raw, shared)? {
        return Ok(());
    }
    // The handshake frame is small: a tight limit before authentication.
    let hello: Hello = match read_frame(&mut reader, HELLO_FRAME_BYTES_MAX) {
        Ok(h) => h,
        Err(FrameError::Closed) => return Ok(()),
        Err(e) => {
            let _ = write_frame(reader.get_mut(), &HelloReply::Error(err(codes::MALFORMED_FRAME, format!("bad handshake: {e}"))));
            return Ok(());
        }
    };
    if hello.magic != MAGIC || hello.version != PROTOCOL_VERSION {
        let msg = if hello.magic != MAGIC {
            "not a cairn client (the handshake's magic is not CAIRNP01)".to_string()
        } else {
            format!(
                "this server speaks cairn protocol version {PROTOCOL_VERSION}; the client sent version {}: use a client of the same release as the server",
                hello.version
            )
        };
        write_frame(reader.get_mut(), &HelloReply::Error(err(codes::UNSUPPORTED_VERSION, msg)))?;
        return Ok(());
    }
    let Some(role) = shared.tokens.check(&hello.token) else {
        tracing::warn!(peer = ?raw.peer_addr().ok(), "authentication failed");
        write_frame(reader.get_mut(), &HelloReply::Error(err(codes::AUTHENTICATION_FAILED, "missing or unknown token")))?;
        return Ok(());
    };
    write_frame(
        reader.get_mut(),
        &HelloReply::Ok { version: PROTOCOL_VERSION, server: format!("cairnd {}", env!("CARGO_PKG_VERSION")), role },
    )?;
    loop {
        if !wait_for_frame(&mut reader, &raw, shared)? {
            return Ok(());
        }
        let req: Request = match read_frame(&mut reader, shared.cfg.frame_bytes_max) {
            Ok(r) => r,
            Err(FrameError::Closed) => return Ok(()),
            Err(e @ FrameError::TooLarge { .. }) => {
                let _ = write_frame(
                    reader.get_mut(),
                    &Response { id: 0, body: ResponseBody::Error(err(codes::FRAME_TOO_LARGE, e.to_string())) },
                );
                return Ok(());
            }
            Err(e) => {
                // The stream's framing can no longer be trusted: answer, end.
                let _ = write_frame(
                    reader.get_mut(),
                    &Response { id: 0, body: ResponseBody::Error(err(codes::MALFORMED_FRAME, e.to_string())) },
                );
                return Ok(());
            }
        };
        handle(req, role, shared, reader.get_mut(), &raw)?;
    }
}

/// Waits up to `wait` for the client of a tailing connection: has it gone
/// (end of stream, or a broken connection)? A tailing connection serves
/// nothing else, so whatever the client sends is read from the raw socket
/// and dropped (under TLS too: only the sending side is used from now on).
pub(super) fn client_gone(raw: &TcpStream, wait: Duration) -> bool {
    if raw.set_read_timeout(Some(wait)).is_err() {
        return true;
    }
    let mut discard = [0u8; 4096];
    match (&*raw).read(&mut discard) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted),
    }
}

/// Sends one response; one that would exceed the response frame bound is
/// replaced by a `ResponseTooLarge` error naming its size.
pub(super) fn send(w: &mut Box<dyn Io>, id: u64, body: ResponseBody) -> std::io::Result<()> {
    let frame = encode_frame(&Response { id, body })?;
    let body_len = frame.len() - 4;
    if body_len <= RESPONSE_FRAME_BYTES_MAX as usize {
        w.write_all(&frame)?;
        return w.flush();
    }
    let msg = format!(
        "the answer is {body_len} bytes, more than the {RESPONSE_FRAME_BYTES_MAX} bytes a response frame may hold: narrow the request (a shorter time range, more filters)"
    );
    write_frame(w, &Response { id, body: ResponseBody::Error(err(codes::RESPONSE_TOO_LARGE, msg)) })
}
