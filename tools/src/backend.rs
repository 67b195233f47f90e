//! Where a command runs: on a local data directory (embedded engine) or on
//! a cairnd server over the wire protocol. Both answer the same calls with
//! the same types, so every command works the same way against either.

use anyhow::{anyhow, Result};
use cairn_engine::{Attr, Order, Outcome, Page, Query, Stats, Store, StoredEvent};
use cairn_server::client::Client;
use cairn_server::integrity;
use cairn_server::protocol::{WireError, WireEvent, WireOutcome, WireQuery};

/// An integrity request's error, as the server would name it.
fn wire_error(e: WireError) -> anyhow::Error {
    anyhow!("{}: {}", e.code, e.message)
}

pub enum Backend {
    Local(Store),
    Remote { client: Client, addr: String, token: String, tls_ca: Option<std::path::PathBuf> },
}

/// What only a server knows: connections, events appended since it
/// started, and its uptime.
#[derive(Debug, Clone, Copy)]
pub struct ServerView {
    pub connections: u64,
    pub appended: u64,
    pub uptime_ms: u64,
}

/// One append's per-record result, local or remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    Stored(u64),
    Duplicate(u64),
    Rejected { code: String, message: String },
}

impl From<Outcome> for Ack {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Stored(s) => Ack::Stored(s),
            Outcome::Duplicate(s) => Ack::Duplicate(s),
            Outcome::Rejected(r) => Ack::Rejected { code: r.code().into(), message: r.to_string() },
        }
    }
}

impl From<WireOutcome> for Ack {
    fn from(o: WireOutcome) -> Self {
        match o {
            WireOutcome::Stored(s) => Ack::Stored(s),
            WireOutcome::Duplicate(s) => Ack::Duplicate(s),
            WireOutcome::Rejected { code, message } => Ack::Rejected { code, message },
        }
    }
}

/// Something batches can be appended to, one per ingest worker.
pub trait Appender: Send {
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Ack>>;
}

struct LocalAppender<'a>(&'a Store);

impl Appender for LocalAppender<'_> {
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Ack>> {
        let refs: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
        Ok(self.0.append(&refs)?.into_iter().map(Ack::from).collect())
    }
}

impl Appender for Client {
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Ack>> {
        Ok(Client::append(self, records)?.into_iter().map(Ack::from).collect())
    }
}

pub fn wire_query(q: &Query) -> WireQuery {
    WireQuery {
        start_ms: q.start_ms,
        end_ms: q.end_ms,
        filters: q.filters.iter().map(|(a, v)| (a.name().to_string(), v.clone())).collect(),
    }
}

fn stored(e: WireEvent) -> StoredEvent {
    StoredEvent { seq: e.seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: e.record }
}

impl Backend {
    /// A new appender (a new connection for a remote server).
    pub fn appender(&self) -> Result<Box<dyn Appender + '_>> {
        match self {
            Backend::Local(s) => Ok(Box::new(LocalAppender(s))),
            Backend::Remote { addr, token, tls_ca, .. } => Ok(Box::new(Client::connect_with(addr, token, tls_ca.as_deref())?)),
        }
    }

    pub fn lookup(&mut self, q: &Query, max: usize, token: Option<&str>) -> Result<Page> {
        match self {
            Backend::Local(s) => Ok(s.lookup(q, Some(max), token)?),
            Backend::Remote { client, .. } => {
                let (events, next_token) = client.lookup(wire_query(q), Some(max as u32), token.map(str::to_string))?;
                Ok(Page { events: events.into_iter().map(stored).collect(), next_token })
            }
        }
    }

    pub fn count(&mut self, q: &Query, by: Attr) -> Result<Vec<(String, u64)>> {
        match self {
            Backend::Local(s) => Ok(s.count(q, by)?),
            Backend::Remote { client, .. } => client.count(wire_query(q), by.name()),
        }
    }

    pub fn get(&mut self, id: &str) -> Result<Vec<StoredEvent>> {
        match self {
            Backend::Local(s) => Ok(s.get(id)?),
            Backend::Remote { client, .. } => Ok(client.get(id)?.into_iter().map(stored).collect()),
        }
    }

    /// Store statistics, and the server's view when remote.
    pub fn stats(&mut self) -> Result<(Stats, Option<ServerView>)> {
        match self {
            Backend::Local(s) => Ok((s.stats()?, None)),
            Backend::Remote { client, .. } => {
                let w = client.stats()?;
                let s = Stats {
                    events: w.events,
                    sealed_events: w.sealed_events,
                    segments: w.segments as usize,
                    record_bytes: w.record_bytes,
                    disk_bytes: w.disk_bytes,
                    min_time_ms: w.min_time_ms,
                    max_time_ms: w.max_time_ms,
                    tree_size: w.tree_size,
                    root: w.root,
                    ..Stats::default()
                };
                Ok((s, Some(ServerView { connections: w.connections, appended: w.appended_since_start, uptime_ms: w.uptime_ms })))
            }
        }
    }

    pub fn export(&mut self, q: &Query, order: Order, mut f: impl FnMut(StoredEvent) -> Result<()>) -> Result<u64> {
        match self {
            Backend::Local(s) => {
                let mut err = None;
                let n = s.export(q, order, |e| match f(e) {
                    Ok(()) => true,
                    Err(x) => {
                        err = Some(x);
                        false
                    }
                })?;
                err.map_or(Ok(n), Err)
            }
            Backend::Remote { client, .. } => client.export(wire_query(q), order == Order::OldestFirst, |e| f(stored(e))),
        }
    }

    /// Signs a checkpoint of everything stored (if it grew) and returns the
    /// newest signed checkpoint.
    pub fn checkpoint(&mut self) -> Result<Option<String>> {
        match self {
            Backend::Local(s) => Ok(s.checkpoint()?.map(|c| c.note)),
            Backend::Remote { client, .. } => client.checkpoint(),
        }
    }

    /// Every public key the store signed with, oldest first.
    pub fn public_keys(&mut self) -> Result<Vec<String>> {
        match self {
            Backend::Local(s) => Ok(s.verifiers().iter().map(|v| v.encode()).collect()),
            Backend::Remote { client, .. } => client.public_keys(),
        }
    }

    pub fn rotate_key(&mut self) -> Result<Vec<String>> {
        match self {
            Backend::Local(s) => {
                s.rotate_key()?;
                Ok(s.verifiers().iter().map(|v| v.encode()).collect())
            }
            Backend::Remote { client, .. } => client.rotate_key(),
        }
    }

    /// Proof bundles (JSON) of the event at `seq` or of every event with
    /// `event_id`.
    pub fn prove(&mut self, seq: Option<u64>, event_id: Option<&str>, checkpoint: Option<&str>) -> Result<Vec<String>> {
        match self {
            Backend::Local(s) => integrity::prove(s, seq, event_id, checkpoint).map_err(wire_error),
            Backend::Remote { client, .. } => client.prove(seq, event_id.map(str::to_string), checkpoint.map(str::to_string)),
        }
    }

    /// A consistency bundle (JSON) from `old` to `new` (or a fresh checkpoint).
    pub fn consistency(&mut self, old: &str, new: Option<&str>) -> Result<String> {
        match self {
            Backend::Local(s) => integrity::consistency(s, old, new).map_err(wire_error),
            Backend::Remote { client, .. } => client.consistency(old.to_string(), new.map(str::to_string)),
        }
    }

    /// The store's signature of a CloudTrail-style digest.
    pub fn sign_digest(&mut self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<Vec<u8>> {
        match self {
            Backend::Local(s) => Ok(s.sign_digest(end_time, location, sha256_hex, previous)?.0),
            Backend::Remote { client, .. } => client.sign_digest(end_time, location, sha256_hex, previous),
        }
    }

    pub fn close(self) -> Result<()> {
        match self {
            Backend::Local(s) => s.close().map_err(|e| anyhow!(e)),
            Backend::Remote { .. } => Ok(()),
        }
    }
}
