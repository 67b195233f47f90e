//! The one seam between local and remote: [`Api`], the calls every Cairn
//! answers, implemented by the embedded engine ([`Store`]) and by a
//! connection to cairnd ([`Client`]), in engine types. A command written
//! against `Api` works the same on a data directory and on a server; the
//! wire conversions it needs are all in `convert`.

use anyhow::{anyhow, Result};
use cairn_engine::compact::{CompactOptions, CompactReport};
use cairn_engine::retention::{RetentionOptions, RetentionReport};
use cairn_engine::rollup::{RollupOptions, RollupReport};
use cairn_engine::verify::{Report as VerifyReport, VerifyOptions};
use cairn_engine::{Attr, Order, Outcome, Page, Query, Stats, Store, StoredEvent};

use crate::client::Client;
use crate::protocol::{WireError, WireOutcome, WireQuery};

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
        WireOutcome::from(o).into()
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

/// Progress of a long call: (done, total) bytes.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// The calls every Cairn answers, embedded or remote.
pub trait Api {
    /// Stores a batch; per record, its seq or why not.
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Ack>>;
    /// One page of matching events, newest first.
    fn lookup(&mut self, q: &Query, max: usize, token: Option<&str>) -> Result<Page>;
    fn count(&mut self, q: &Query, by: Attr) -> Result<Vec<(String, u64)>>;
    /// Every stored event with this eventID.
    fn get(&mut self, event_id: &str) -> Result<Vec<StoredEvent>>;
    /// Store statistics, and the server's view when remote (a server does
    /// not send the split of disk bytes: those fields are zero).
    fn stats(&mut self) -> Result<(Stats, Option<ServerView>)>;
    /// Where delivery to object storage stands: a daemon's, live; a
    /// store's, from its cursor (`delivery/state.json`). `None`: none.
    fn delivery(&mut self) -> Result<Option<cairn_deliver::DeliveryStatus>>;
    /// Every matching event in `order`; `f` may stop it with an error.
    fn export(&mut self, q: &Query, order: Order, f: &mut dyn FnMut(StoredEvent) -> Result<()>) -> Result<u64>;
    /// Signs a checkpoint of everything stored (if it grew); the newest.
    fn checkpoint(&mut self) -> Result<Option<String>>;
    /// Every public key the store signed with, oldest first.
    fn public_keys(&mut self) -> Result<Vec<String>>;
    /// Switches to a new signing key; every public key after.
    fn rotate_key(&mut self) -> Result<Vec<String>>;
    /// Proof bundles (JSON) of the event at `seq` or of every event with
    /// `event_id`, against `checkpoint` or a fresh one.
    fn prove(&mut self, seq: Option<u64>, event_id: Option<&str>, checkpoint: Option<&str>) -> Result<Vec<String>>;
    /// A consistency bundle (JSON) from `old` to `new` (or a fresh one).
    fn consistency(&mut self, old: &str, new: Option<&str>) -> Result<String>;
    /// The store's signature of a CloudTrail-style digest.
    fn sign_digest(&mut self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<Vec<u8>>;
    /// Checks the whole store (an embedded store checks its open state).
    fn verify(&mut self, opts: &VerifyOptions, progress: Progress<'_>) -> Result<VerifyReport>;
    fn compact(&mut self, opts: &CompactOptions, progress: Progress<'_>) -> Result<CompactReport>;
    fn retain(&mut self, opts: &RetentionOptions) -> Result<RetentionReport>;
    fn rollup(&mut self, opts: &RollupOptions) -> Result<RollupReport>;
}

/// An integrity call's error, named as the server would name it, so the
/// embedded answer reads the same.
fn named(e: cairn_engine::Error) -> anyhow::Error {
    let w = WireError::from(e);
    anyhow!("{}: {}", w.code, w.message)
}

impl Api for Store {
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Ack>> {
        let refs: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
        Ok(Store::append(self, &refs)?.into_iter().map(Ack::from).collect())
    }

    fn lookup(&mut self, q: &Query, max: usize, token: Option<&str>) -> Result<Page> {
        Ok(Store::lookup(self, q, Some(max), token)?)
    }

    fn count(&mut self, q: &Query, by: Attr) -> Result<Vec<(String, u64)>> {
        Ok(Store::count(self, q, by)?)
    }

    fn get(&mut self, event_id: &str) -> Result<Vec<StoredEvent>> {
        Ok(Store::get(self, event_id)?)
    }

    fn stats(&mut self) -> Result<(Stats, Option<ServerView>)> {
        Ok((Store::stats(self)?, None))
    }

    fn delivery(&mut self) -> Result<Option<cairn_deliver::DeliveryStatus>> {
        cairn_deliver::run::read_status(self)
    }

    fn export(&mut self, q: &Query, order: Order, f: &mut dyn FnMut(StoredEvent) -> Result<()>) -> Result<u64> {
        let mut err = None;
        let n = Store::export(self, q, order, |e| match f(e) {
            Ok(()) => true,
            Err(x) => {
                err = Some(x);
                false
            }
        })?;
        err.map_or(Ok(n), Err)
    }

    fn checkpoint(&mut self) -> Result<Option<String>> {
        Ok(Store::checkpoint(self)?.map(|c| c.note))
    }

    fn public_keys(&mut self) -> Result<Vec<String>> {
        Ok(self.verifiers().iter().map(|v| v.encode()).collect())
    }

    fn rotate_key(&mut self) -> Result<Vec<String>> {
        Store::rotate_key(self)?;
        Api::public_keys(self)
    }

    fn prove(&mut self, seq: Option<u64>, event_id: Option<&str>, checkpoint: Option<&str>) -> Result<Vec<String>> {
        self.proof_bundles(seq, event_id, checkpoint).map_err(named)
    }

    fn consistency(&mut self, old: &str, new: Option<&str>) -> Result<String> {
        self.consistency_bundle(old, new).map_err(named)
    }

    fn sign_digest(&mut self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<Vec<u8>> {
        Ok(Store::sign_digest(self, end_time, location, sha256_hex, previous)?.0)
    }

    fn verify(&mut self, opts: &VerifyOptions, progress: Progress<'_>) -> Result<VerifyReport> {
        Store::verify(self, opts, progress).map_err(named)
    }

    fn compact(&mut self, opts: &CompactOptions, progress: Progress<'_>) -> Result<CompactReport> {
        Ok(Store::compact(self, opts, progress)?)
    }

    fn retain(&mut self, opts: &RetentionOptions) -> Result<RetentionReport> {
        Ok(Store::retain(self, opts)?)
    }

    fn rollup(&mut self, opts: &RollupOptions) -> Result<RollupReport> {
        Ok(cairn_engine::rollup::rollup(self, opts)?)
    }
}

impl Api for Client {
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Ack>> {
        Ok(Client::append(self, records)?.into_iter().map(Ack::from).collect())
    }

    fn lookup(&mut self, q: &Query, max: usize, token: Option<&str>) -> Result<Page> {
        let (events, next_token) = Client::lookup(self, WireQuery::from(q), Some(max as u32), token.map(str::to_string))?;
        Ok(Page { events: events.into_iter().map(StoredEvent::from).collect(), next_token })
    }

    fn count(&mut self, q: &Query, by: Attr) -> Result<Vec<(String, u64)>> {
        Client::count(self, WireQuery::from(q), by.name())
    }

    fn get(&mut self, event_id: &str) -> Result<Vec<StoredEvent>> {
        Ok(Client::get(self, event_id)?.into_iter().map(StoredEvent::from).collect())
    }

    fn stats(&mut self) -> Result<(Stats, Option<ServerView>)> {
        let w = Client::stats(self)?;
        let view = ServerView { connections: w.connections, appended: w.appended_since_start, uptime_ms: w.uptime_ms };
        Ok((Stats::from(&w), Some(view)))
    }

    fn delivery(&mut self) -> Result<Option<cairn_deliver::DeliveryStatus>> {
        Ok(Client::delivery(self)?.map(Into::into))
    }

    fn export(&mut self, q: &Query, order: Order, f: &mut dyn FnMut(StoredEvent) -> Result<()>) -> Result<u64> {
        Client::export(self, WireQuery::from(q), order == Order::OldestFirst, |e| f(e.into()))
    }

    fn checkpoint(&mut self) -> Result<Option<String>> {
        Client::checkpoint(self)
    }

    fn public_keys(&mut self) -> Result<Vec<String>> {
        Client::public_keys(self)
    }

    fn rotate_key(&mut self) -> Result<Vec<String>> {
        Client::rotate_key(self)
    }

    fn prove(&mut self, seq: Option<u64>, event_id: Option<&str>, checkpoint: Option<&str>) -> Result<Vec<String>> {
        Client::prove(self, seq, event_id.map(str::to_string), checkpoint.map(str::to_string))
    }

    fn consistency(&mut self, old: &str, new: Option<&str>) -> Result<String> {
        Client::consistency(self, old.to_string(), new.map(str::to_string))
    }

    fn sign_digest(&mut self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<Vec<u8>> {
        Client::sign_digest(self, end_time, location, sha256_hex, previous)
    }

    fn verify(&mut self, opts: &VerifyOptions, progress: Progress<'_>) -> Result<VerifyReport> {
        let checkpoints = opts.checkpoints.iter().map(|c| c.note.clone()).collect();
        let keys = opts.public_keys.iter().map(|k| k.encode()).collect();
        Ok(Client::verify(self, checkpoints, keys, progress)?.into())
    }

    fn compact(&mut self, opts: &CompactOptions, _progress: Progress<'_>) -> Result<CompactReport> {
        Ok(Client::compact(self, opts.into())?.into())
    }

    fn retain(&mut self, opts: &RetentionOptions) -> Result<RetentionReport> {
        Ok(Client::retain(self, opts.older_than.as_secs(), opts.dry_run)?.into())
    }

    fn rollup(&mut self, opts: &RollupOptions) -> Result<RollupReport> {
        Ok(Client::rollup(self, opts.start_ms, opts.end_ms, opts.dry_run)?.into())
    }
}
