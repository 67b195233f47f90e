//! Channels: where PutAuditEvents sends events from outside AWS, as
//! CloudTrail Lake's channels are. Each has a name, an ARN, an optional
//! external ID the sender must present, and the AWS access keys allowed to
//! send to it (none listed: any ingest or admin key). They are kept in
//! `<data-dir>/channels.json` (written atomically); the latest ingestion
//! status of each is kept in memory only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::protocol::WireChannel;

pub const CHANNELS_FILE: &str = "channels.json";
/// Most channels a store may have (CloudTrail allows 25 per region).
pub const CHANNELS_MAX: usize = 100;
/// The `Source` of channels made here: events from outside AWS.
pub const CUSTOM_SOURCE: &str = "Custom";

/// One channel, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Channel {
    pub arn: String,
    pub name: String,
    pub source: String,
    pub external_id: Option<String>,
    pub allowed_keys: Vec<String>,
    /// When set, events must name this `recipientAccountId`.
    pub account_id: Option<String>,
    pub region: String,
    pub created_ms: i64,
}

impl From<&Channel> for WireChannel {
    fn from(c: &Channel) -> WireChannel {
        WireChannel {
            arn: c.arn.clone(),
            name: c.name.clone(),
            source: c.source.clone(),
            external_id: c.external_id.clone(),
            allowed_keys: c.allowed_keys.clone(),
            account_id: c.account_id.clone(),
            region: c.region.clone(),
            created_ms: c.created_ms,
        }
    }
}

impl Channel {
    /// The event data store its events go to: the store, as CloudTrail
    /// Lake would name it.
    pub fn destination(&self) -> String {
        format!("arn:aws:cloudtrail:{}:{}:eventdatastore/cairn", self.region, self.account_id.as_deref().unwrap_or("000000000000"))
    }
}

/// The outcome of a channel's latest PutAuditEvents (GetChannel's
/// `IngestionStatus`).
#[derive(Debug, Clone, Default)]
pub struct IngestionStatus {
    pub success_ms: Option<i64>,
    pub success_event_id: Option<String>,
    pub error_code: Option<String>,
    pub attempt_ms: Option<i64>,
    pub attempt_event_id: Option<String>,
}

/// Why a channel cannot be made: CloudTrail's exception name and a message.
#[derive(Debug)]
pub struct ChannelError {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> ChannelError {
    ChannelError { code, message: message.into() }
}

/// What a new channel is to be.
#[derive(Debug, Clone, Default)]
pub struct NewChannel {
    pub name: String,
    pub external_id: Option<String>,
    pub allowed_keys: Vec<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// CreateChannel's `Source` (default `Custom`).
    pub source: Option<String>,
}

pub struct Channels {
    path: PathBuf,
    list: RwLock<Vec<Channel>>,
    /// Held while a channel is added and the file rewritten, so that
    /// readers never wait on the file's fsyncs.
    writing: Mutex<()>,
    status: Mutex<std::collections::HashMap<String, IngestionStatus>>,
}

/// CloudTrail's channel name rule: 3-128 of `a-zA-Z0-9._-`.
fn valid_name(n: &str) -> bool {
    (3..=128).contains(&n.len()) && n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// PutAuditEvents' external ID rule: 2-1224 of `\w+=,.@:/-`.
pub fn valid_external_id(x: &str) -> bool {
    (2..=1224).contains(&x.chars().count()) && x.chars().all(|c| c.is_alphanumeric() || "_+=,.@:/-".contains(c))
}

impl Channels {
    pub fn open(data_dir: &Path) -> Result<Channels> {
        let path = data_dir.join(CHANNELS_FILE);
        let list = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("reading {}: not a channel list", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Channels { path, list: RwLock::new(list), writing: Mutex::new(()), status: Mutex::new(Default::default()) })
    }

    pub fn list(&self) -> Vec<Channel> {
        self.list.read().clone()
    }

    /// The channel with this ARN, or this name.
    pub fn find(&self, arn_or_name: &str) -> Option<Channel> {
        self.list.read().iter().find(|c| c.arn == arn_or_name || c.name == arn_or_name).cloned()
    }

    pub fn create(&self, new: NewChannel, default_region: &str, now_ms: i64) -> Result<Channel, ChannelError> {
        if !valid_name(&new.name) {
            return Err(refuse(
                "InvalidParameterException",
                format!("channel name {:?} must be 3 to 128 of a-z, A-Z, 0-9, '.', '_', '-'", new.name),
            ));
        }
        if let Some(x) = new.external_id.as_deref().filter(|x| !valid_external_id(x)) {
            return Err(refuse(
                "InvalidParameterException",
                format!("external ID {x:?} must be 2 to 1224 of letters, digits and _+=,.@:/-"),
            ));
        }
        if let Some(a) = new.account_id.as_deref().filter(|a| a.len() != 12 || !a.bytes().all(|c| c.is_ascii_digit())) {
            return Err(refuse("InvalidParameterException", format!("account ID {a:?} must be 12 digits")));
        }
        if let Some(s) = new.source.as_deref().filter(|s| s.is_empty() || s.chars().count() > 256) {
            return Err(refuse("InvalidSourceException", format!("Source {s:?} must be 1 to 256 characters")));
        }
        let region = new.region.unwrap_or_else(|| default_region.to_string());
        if region.is_empty() || !region.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            return Err(refuse("InvalidParameterException", format!("region {region:?} is not a region name")));
        }
        let _writing = self.writing.lock();
        let mut list = self.list.read().clone();
        if list.iter().any(|c| c.name == new.name) {
            return Err(refuse("ChannelAlreadyExistsException", format!("a channel named {:?} exists", new.name)));
        }
        if list.len() >= CHANNELS_MAX {
            return Err(refuse("ChannelMaxLimitExceededException", format!("the store has the most channels allowed, {CHANNELS_MAX}")));
        }
        let account = new.account_id.clone().unwrap_or_else(|| "000000000000".into());
        let c = Channel {
            arn: format!("arn:aws:cloudtrail:{region}:{account}:channel/{}", super::http::uuid_v4()),
            name: new.name,
            source: new.source.unwrap_or_else(|| CUSTOM_SOURCE.into()),
            external_id: new.external_id,
            allowed_keys: new.allowed_keys,
            account_id: new.account_id,
            region,
            created_ms: now_ms,
        };
        list.push(c.clone());
        let text = serde_json::to_string_pretty(&list).expect("channels serialize");
        if let Err(e) = super::auth::write_private(&self.path, &text) {
            return Err(refuse("InternalFailure", format!("saving {}: {e:#}", self.path.display())));
        }
        *self.list.write() = list;
        Ok(c)
    }

    pub fn status(&self, arn: &str) -> IngestionStatus {
        self.status.lock().get(arn).cloned().unwrap_or_default()
    }

    /// Records a PutAuditEvents call's outcome: its last stored event, or
    /// the error code of its last failure.
    pub fn record(&self, arn: &str, now_ms: i64, stored: Option<&str>, failed: Option<&str>) {
        let mut all = self.status.lock();
        let s = all.entry(arn.to_string()).or_default();
        s.attempt_ms = Some(now_ms);
        if let Some(id) = stored {
            s.success_ms = Some(now_ms);
            s.success_event_id = Some(id.to_string());
            s.attempt_event_id = Some(id.to_string());
        }
        if let Some(code) = failed {
            s.error_code = Some(code.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: channels are created with CloudTrail's ARN shape, refused with
    // its exception names for bad names and duplicates, and survive a
    // reload.
    #[test]
    fn channel_lifecycle() {
        let dir = std::env::temp_dir().join(format!("cairn-channels-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ch = Channels::open(&dir).unwrap();
        let new = |name: &str| NewChannel { name: name.into(), ..Default::default() };
        let c = ch.create(NewChannel { external_id: Some("ext-1".into()), ..new("door-logs") }, "eu-west-1", 5).unwrap();
        assert!(c.arn.starts_with("arn:aws:cloudtrail:eu-west-1:000000000000:channel/"), "{}", c.arn);
        assert_eq!(ch.create(new("door-logs"), "eu-west-1", 6).unwrap_err().code, "ChannelAlreadyExistsException");
        assert_eq!(ch.create(new("x"), "eu-west-1", 6).unwrap_err().code, "InvalidParameterException");
        assert_eq!(ch.create(new("bad name"), "eu-west-1", 6).unwrap_err().code, "InvalidParameterException");
        let again = Channels::open(&dir).unwrap();
        assert_eq!(again.find(&c.arn), Some(c.clone()));
        assert_eq!(again.find("door-logs"), Some(c));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
