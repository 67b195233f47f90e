//! Where a command runs: on a local data directory (the embedded engine)
//! or on a cairnd server. Both implement `cairn_server::api::Api`, in
//! engine types, and a `Backend` derefs to it: `backend.lookup(..)` is the
//! same call either way. Only what differs by nature is matched on: a new
//! appender per ingest worker (a new connection when remote), closing,
//! and by their commands, the calls only a server answers (tail, tokens,
//! a server's Insights run) and the offline local `verify`.

use std::ops::{Deref, DerefMut};

use anyhow::{anyhow, Result};
use cairn_engine::Store;
use cairn_server::client::Client;

pub use cairn_server::api::{Ack, Api, ServerView};

pub enum Backend {
    Local(Store),
    Remote { client: Client, addr: String, token: String, tls_ca: Option<std::path::PathBuf> },
}

impl Deref for Backend {
    type Target = dyn Api;

    fn deref(&self) -> &(dyn Api + 'static) {
        match self {
            Backend::Local(s) => s,
            Backend::Remote { client, .. } => client,
        }
    }
}

impl DerefMut for Backend {
    fn deref_mut(&mut self) -> &mut (dyn Api + 'static) {
        match self {
            Backend::Local(s) => s,
            Backend::Remote { client, .. } => client,
        }
    }
}

/// Something batches can be appended to, one per ingest worker (workers
/// share one local store, and each has its own connection to a server).
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
        Api::append(self, records)
    }
}

impl Backend {
    /// A new appender (a new connection for a remote server).
    pub fn appender(&self) -> Result<Box<dyn Appender + '_>> {
        match self {
            Backend::Local(s) => Ok(Box::new(LocalAppender(s))),
            Backend::Remote { addr, token, tls_ca, .. } => Ok(Box::new(Client::connect_with(addr, token, tls_ca.as_deref())?)),
        }
    }

    pub fn close(self) -> Result<()> {
        match self {
            Backend::Local(s) => s.close().map_err(|e| anyhow!(e)),
            Backend::Remote { .. } => Ok(()),
        }
    }
}
