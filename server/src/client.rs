//! The client library: one connection to cairnd, with typed calls for every
//! request. Requests are answered in order; the library sends one and
//! reads its answer (pipelining is allowed by the protocol; this client
//! does not need it).

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::protocol::{
    read_frame, write_frame, Hello, HelloReply, Request, RequestBody, Response, ResponseBody, Role, WireCompactReport, WireEvent,
    WireInsightsReport, WireOutcome, WireProcess, WireQuery, WireRetentionReport, WireRollupReport, WireStats, WireVerifyReport,
    HELLO_FRAME_BYTES_MAX, MAGIC, PROTOCOL_VERSION, RESPONSE_FRAME_BYTES_MAX,
};

/// A connection's byte stream: plain TCP or TLS over it.
trait Io: Read + Write + Send + Sync {}
impl<T: Read + Write + Send + Sync> Io for T {}

pub struct Client {
    reader: BufReader<Box<dyn Io>>,
    next_id: u64,
    pub role: Role,
    pub server: String,
}

/// An error the server answered with.
#[derive(Debug)]
pub struct ServerError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServerError {}

/// Finds a token: the given one, else the local server's admin token file.
pub fn find_token(explicit: Option<String>, data_dir: &Path) -> Result<String> {
    if let Some(t) = explicit {
        return Ok(t.trim().to_string());
    }
    let p = data_dir.join(crate::daemon::auth::ADMIN_TOKEN_FILE);
    std::fs::read_to_string(&p)
        .map(|t| t.trim().to_string())
        .with_context(|| format!("no token given (--token, --token-file or CAIRN_TOKEN) and no local admin token at {}", p.display()))
}

impl Client {
    /// Connects over plain TCP.
    pub fn connect(addr: &str, token: &str) -> Result<Client> {
        Self::connect_with(addr, token, None)
    }

    /// Connects, over TLS when `tls_ca` names the CA file (PEM) to trust.
    pub fn connect_with(addr: &str, token: &str, tls_ca: Option<&Path>) -> Result<Client> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to cairnd at {addr}"))?;
        stream.set_nodelay(true)?;
        let io: Box<dyn Io> = match tls_ca {
            Some(ca) => {
                let conn = rustls::ClientConnection::new(crate::tls::client_config(ca)?, crate::tls::server_name(addr)?)?;
                Box::new(rustls::StreamOwned::new(conn, stream))
            }
            None => Box::new(stream),
        };
        let mut reader = BufReader::with_capacity(1 << 16, io);
        write_frame(reader.get_mut(), &Hello { magic: MAGIC, version: PROTOCOL_VERSION, token: token.to_string() })
            .with_context(|| format!("handshake with {addr}"))?;
        let reply: HelloReply = read_frame(&mut reader, HELLO_FRAME_BYTES_MAX).map_err(|e| anyhow!("handshake with {addr}: {e}"))?;
        match reply {
            HelloReply::Ok { role, server, .. } => Ok(Client { reader, next_id: 1, role, server }),
            HelloReply::Error(e) => Err(ServerError { code: e.code, message: e.message }.into()),
        }
    }

    fn call(&mut self, body: RequestBody) -> Result<ResponseBody> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(self.reader.get_mut(), &Request { id, body })?;
        self.read(id)
    }

    fn read(&mut self, id: u64) -> Result<ResponseBody> {
        let resp: Response =
            read_frame(&mut self.reader, RESPONSE_FRAME_BYTES_MAX).map_err(|e| anyhow!("reading the server's answer: {e}"))?;
        if let ResponseBody::Error(e) = resp.body {
            return Err(ServerError { code: e.code, message: e.message }.into());
        }
        if resp.id != id {
            bail!("the server answered request {} while {id} was expected", resp.id);
        }
        Ok(resp.body)
    }

    pub fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<WireOutcome>> {
        let records = records.into_iter().map(crate::protocol::Record).collect();
        match self.call(RequestBody::Append { records })? {
            ResponseBody::Appended { outcomes } => Ok(outcomes),
            other => bail!("unexpected answer to append: {other:?}"),
        }
    }

    pub fn lookup(
        &mut self,
        query: WireQuery,
        max_results: Option<u32>,
        next_token: Option<String>,
    ) -> Result<(Vec<WireEvent>, Option<String>)> {
        match self.call(RequestBody::Lookup { query, max_results, next_token })? {
            ResponseBody::Page { events, next_token } => Ok((events, next_token)),
            other => bail!("unexpected answer to lookup: {other:?}"),
        }
    }

    pub fn count(&mut self, query: WireQuery, by: &str) -> Result<Vec<(String, u64)>> {
        match self.call(RequestBody::Count { query, by: by.to_string() })? {
            ResponseBody::Counts { counts } => Ok(counts),
            other => bail!("unexpected answer to count: {other:?}"),
        }
    }

    pub fn get(&mut self, event_id: &str) -> Result<Vec<WireEvent>> {
        match self.call(RequestBody::Get { event_id: event_id.to_string() })? {
            ResponseBody::Events { events } => Ok(events),
            other => bail!("unexpected answer to get: {other:?}"),
        }
    }

    pub fn stats(&mut self) -> Result<WireStats> {
        match self.call(RequestBody::Stats)? {
            ResponseBody::Stats(s) => Ok(s),
            other => bail!("unexpected answer to stats: {other:?}"),
        }
    }

    /// The daemon's memory. A server older than this request closes the
    /// connection instead (it answers `MalformedFrame`).
    pub fn process(&mut self) -> Result<WireProcess> {
        match self.call(RequestBody::Process)? {
            ResponseBody::Process(p) => Ok(p),
            other => bail!("unexpected answer to process: {other:?}"),
        }
    }

    /// The newest signed checkpoint, after the server signs one of
    /// everything it stores.
    pub fn checkpoint(&mut self) -> Result<Option<String>> {
        match self.call(RequestBody::Checkpoint)? {
            ResponseBody::Checkpoint { note } => Ok(note),
            other => bail!("unexpected answer to checkpoint: {other:?}"),
        }
    }

    /// Every public key the store has signed with, oldest first.
    pub fn public_keys(&mut self) -> Result<Vec<String>> {
        match self.call(RequestBody::PublicKeys)? {
            ResponseBody::PublicKeys { keys } => Ok(keys),
            other => bail!("unexpected answer to public keys: {other:?}"),
        }
    }

    /// Switches the store to a new signing key; answers every public key.
    pub fn rotate_key(&mut self) -> Result<Vec<String>> {
        match self.call(RequestBody::RotateKey)? {
            ResponseBody::PublicKeys { keys } => Ok(keys),
            other => bail!("unexpected answer to key rotation: {other:?}"),
        }
    }

    /// Proof bundles (JSON) of an event by seq or eventID.
    pub fn prove(&mut self, seq: Option<u64>, event_id: Option<String>, checkpoint: Option<String>) -> Result<Vec<String>> {
        match self.call(RequestBody::Prove { seq, event_id, checkpoint })? {
            ResponseBody::Proofs { bundles } => Ok(bundles),
            other => bail!("unexpected answer to prove: {other:?}"),
        }
    }

    /// A consistency bundle (JSON) between two checkpoints.
    pub fn consistency(&mut self, old: String, new: Option<String>) -> Result<String> {
        match self.call(RequestBody::Consistency { old, new })? {
            ResponseBody::Consistency { bundle } => Ok(bundle),
            other => bail!("unexpected answer to consistency: {other:?}"),
        }
    }

    /// Verifies the server's store, reporting progress as it goes.
    pub fn verify(
        &mut self,
        checkpoints: Vec<String>,
        public_keys: Vec<String>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<WireVerifyReport> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(self.reader.get_mut(), &Request { id, body: RequestBody::Verify { checkpoints, public_keys } })?;
        loop {
            match self.read(id)? {
                ResponseBody::VerifyProgress { done_bytes, total_bytes } => progress(done_bytes, total_bytes),
                ResponseBody::VerifyReport(r) => return Ok(r),
                other => bail!("unexpected answer to verify: {other:?}"),
            }
        }
    }

    /// Has the server sign a CloudTrail-style digest (admin).
    pub fn sign_digest(&mut self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<Vec<u8>> {
        let body = RequestBody::SignDigest {
            end_time: end_time.into(),
            location: location.into(),
            sha256_hex: sha256_hex.into(),
            previous: previous.map(str::to_string),
        };
        match self.call(body)? {
            ResponseBody::DigestSignature { signature, .. } => Ok(signature),
            other => bail!("unexpected answer to sign digest: {other:?}"),
        }
    }

    /// Runs a compaction on the server (admin).
    pub fn compact(&mut self, options: crate::protocol::WireCompact) -> Result<WireCompactReport> {
        match self.call(RequestBody::Compact { options })? {
            ResponseBody::Compacted(report) => Ok(report),
            other => bail!("unexpected answer to compact: {other:?}"),
        }
    }

    /// Runs retention on the server (admin).
    pub fn retain(&mut self, older_than_secs: u64, dry_run: bool) -> Result<WireRetentionReport> {
        match self.call(RequestBody::Retain { older_than_secs, dry_run })? {
            ResponseBody::Retained(report) => Ok(report),
            other => bail!("unexpected answer to retain: {other:?}"),
        }
    }

    /// Runs Insights on the server.
    pub fn insights(
        &mut self,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        backfill: bool,
        sensitivity_milli: Option<u32>,
    ) -> Result<WireInsightsReport> {
        match self.call(RequestBody::Insights { start_ms, end_ms, backfill, sensitivity_milli })? {
            ResponseBody::Insights(report) => Ok(report),
            other => bail!("unexpected answer to insights: {other:?}"),
        }
    }

    /// Writes the missing rollups on the server (admin).
    pub fn rollup(&mut self, start_ms: Option<i64>, end_ms: Option<i64>, dry_run: bool) -> Result<WireRollupReport> {
        match self.call(RequestBody::Rollup { start_ms, end_ms, dry_run })? {
            ResponseBody::RolledUp(report) => Ok(report),
            other => bail!("unexpected answer to rollup: {other:?}"),
        }
    }

    pub fn create_token(&mut self, role: Role, name: &str) -> Result<String> {
        match self.call(RequestBody::CreateToken { role, name: name.to_string() })? {
            ResponseBody::Token { token } => Ok(token),
            other => bail!("unexpected answer to token create: {other:?}"),
        }
    }

    /// Issues an AWS access key pair (access key id, secret) for the
    /// server's CloudTrail-compatible HTTP API.
    pub fn create_aws_key(&mut self, role: Role, name: &str) -> Result<(String, String)> {
        match self.call(RequestBody::CreateAwsKey { role, name: name.to_string() }).map_err(|e| newer_request(e, "AWS access keys"))? {
            ResponseBody::AwsKey { access_key_id, secret } => Ok((access_key_id, secret)),
            other => bail!("unexpected answer to token create --aws: {other:?}"),
        }
    }

    /// Makes a PutAuditEvents channel.
    pub fn create_channel(
        &mut self,
        name: &str,
        external_id: Option<String>,
        allowed_keys: Vec<String>,
        account_id: Option<String>,
        region: Option<String>,
    ) -> Result<crate::protocol::WireChannel> {
        let body = RequestBody::CreateChannel { name: name.into(), external_id, allowed_keys, account_id, region };
        match self.call(body).map_err(|e| newer_request(e, "channels"))? {
            ResponseBody::Channel(c) => Ok(c),
            other => bail!("unexpected answer to channel create: {other:?}"),
        }
    }

    /// Where the daemon's delivery stands (`None`: it does not deliver).
    pub fn delivery(&mut self) -> Result<Option<crate::protocol::WireDelivery>> {
        match self.call(RequestBody::Delivery).map_err(|e| newer_request(e, "delivery status"))? {
            ResponseBody::Delivery(d) => Ok(d),
            other => bail!("unexpected answer to delivery status: {other:?}"),
        }
    }

    /// Every PutAuditEvents channel.
    pub fn list_channels(&mut self) -> Result<Vec<crate::protocol::WireChannel>> {
        match self.call(RequestBody::ListChannels).map_err(|e| newer_request(e, "channels"))? {
            ResponseBody::Channels { channels } => Ok(channels),
            other => bail!("unexpected answer to channel list: {other:?}"),
        }
    }

    /// Follows new matching events until `f` returns false or the
    /// connection ends.
    pub fn tail(&mut self, query: WireQuery, from_seq: Option<u64>, mut f: impl FnMut(WireEvent) -> Result<bool>) -> Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(self.reader.get_mut(), &Request { id, body: RequestBody::Tail { query, from_seq } })?;
        loop {
            match self.read(id)? {
                ResponseBody::TailEvents { events } => {
                    for e in events {
                        if !f(e)? {
                            return Ok(());
                        }
                    }
                }
                other => bail!("unexpected answer to tail: {other:?}"),
            }
        }
    }

    /// Streams an export; `f` sees every event in order.
    pub fn export(&mut self, query: WireQuery, oldest_first: bool, mut f: impl FnMut(WireEvent) -> Result<()>) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(self.reader.get_mut(), &Request { id, body: RequestBody::Export { query, oldest_first } })?;
        loop {
            match self.read(id)? {
                ResponseBody::ExportChunk { events } => events.into_iter().try_for_each(&mut f)?,
                ResponseBody::ExportEnd { count } => return Ok(count),
                other => bail!("unexpected answer to export: {other:?}"),
            }
        }
    }
}

impl Client {
    /// Runs a SQL query: `f` gets each `QueryBatch` frame's Arrow IPC
    /// stream as it arrives (the first holds the schema); the end's
    /// statistics. A refusal or failure is a [`ServerError`] named as the
    /// HTTP API's exceptions (`InvalidQueryStatementException`, ...).
    pub fn query(&mut self, statement: &str, mut f: impl FnMut(Vec<u8>) -> Result<()>) -> Result<crate::protocol::WireQueryEnd> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(self.reader.get_mut(), &Request { id, body: RequestBody::Query { statement: statement.to_string() } })?;
        loop {
            match self.read(id).map_err(|e| newer_request(e, "SQL queries"))? {
                ResponseBody::QueryBatch { ipc } => f(ipc)?,
                ResponseBody::QueryEnd(end) => return Ok(end),
                other => bail!("unexpected answer to a query: {other:?}"),
            }
        }
    }
}

/// A request added after version 2's first release, refused by an older
/// server as a malformed frame: say so.
fn newer_request(e: anyhow::Error, what: &str) -> anyhow::Error {
    match e.downcast_ref::<ServerError>() {
        Some(se) if se.code == crate::protocol::codes::MALFORMED_FRAME => {
            anyhow!("this server predates {what} (it answered {}: {}): upgrade cairnd", se.code, se.message)
        }
        _ => e,
    }
}
