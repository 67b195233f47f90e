//! The lookup attributes (their codes are on disk) and the (attribute,
//! value) terms an event is indexed under.

use std::borrow::Cow;

use crate::event::Event;

/// A lookup attribute. Codes are on disk: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Attr {
    EventId = 0,
    EventName = 1,
    ReadOnly = 2,
    Username = 3,
    ResourceType = 4,
    ResourceName = 5,
    EventSource = 6,
    AccessKeyId = 7,
    ErrorCode = 8,
    AwsRegion = 9,
    AccountId = 10,
    SourceIpAddress = 11,
    UserIdentityArn = 12,
    EventCategory = 13,
    EventType = 14,
}

pub const ATTR_COUNT: usize = 15;

impl Attr {
    pub const ALL: [Attr; ATTR_COUNT] = [
        Attr::EventId,
        Attr::EventName,
        Attr::ReadOnly,
        Attr::Username,
        Attr::ResourceType,
        Attr::ResourceName,
        Attr::EventSource,
        Attr::AccessKeyId,
        Attr::ErrorCode,
        Attr::AwsRegion,
        Attr::AccountId,
        Attr::SourceIpAddress,
        Attr::UserIdentityArn,
        Attr::EventCategory,
        Attr::EventType,
    ];

    /// The name users type (CloudTrail's AttributeKey spelling).
    pub fn name(self) -> &'static str {
        match self {
            Attr::EventId => "EventId",
            Attr::EventName => "EventName",
            Attr::ReadOnly => "ReadOnly",
            Attr::Username => "Username",
            Attr::ResourceType => "ResourceType",
            Attr::ResourceName => "ResourceName",
            Attr::EventSource => "EventSource",
            Attr::AccessKeyId => "AccessKeyId",
            Attr::ErrorCode => "ErrorCode",
            Attr::AwsRegion => "AwsRegion",
            Attr::AccountId => "AccountId",
            Attr::SourceIpAddress => "SourceIPAddress",
            Attr::UserIdentityArn => "UserIdentityArn",
            Attr::EventCategory => "EventCategory",
            Attr::EventType => "EventType",
        }
    }

    /// Parses a name, case-sensitively as CloudTrail does, also accepting
    /// any ASCII case for convenience on the command line.
    pub fn parse(s: &str) -> Option<Attr> {
        Attr::ALL.iter().copied().find(|a| a.name() == s).or_else(|| Attr::ALL.iter().copied().find(|a| a.name().eq_ignore_ascii_case(s)))
    }

    pub fn from_code(c: u8) -> Option<Attr> {
        Attr::ALL.get(c as usize).copied()
    }
}

/// The (attribute, value) pairs an event is indexed under. EventId is
/// included (memtables index it here; segments use their id table).
/// AccountId covers `userIdentity.accountId` and `recipientAccountId`;
/// ResourceName covers each resource's ARN and, for an ARN, its final name
/// (after the last `/` or `:`), since LookupEvents accepts either.
pub fn terms<'a>(ev: &Event<'a>) -> Vec<(Attr, Cow<'a, str>)> {
    let mut t: Vec<(Attr, Cow<'a, str>)> = Vec::with_capacity(16);
    let mut put = |a: Attr, v: &Option<Cow<'a, str>>| {
        if let Some(v) = v {
            if !v.is_empty() {
                t.push((a, v.clone()));
            }
        }
    };
    put(Attr::EventId, &ev.event_id);
    put(Attr::EventName, &Some(ev.event_name.clone()));
    put(Attr::ReadOnly, &ev.read_only.map(|b| Cow::Borrowed(if b { "true" } else { "false" })));
    put(Attr::Username, &ev.username);
    put(Attr::EventSource, &ev.event_source);
    put(Attr::AccessKeyId, &ev.access_key_id);
    put(Attr::ErrorCode, &ev.error_code);
    put(Attr::AwsRegion, &ev.aws_region);
    put(Attr::AccountId, &ev.account_id);
    if ev.recipient_account_id != ev.account_id {
        put(Attr::AccountId, &ev.recipient_account_id);
    }
    put(Attr::SourceIpAddress, &ev.source_ip);
    put(Attr::UserIdentityArn, &ev.user_identity_arn);
    put(Attr::EventCategory, &ev.event_category);
    put(Attr::EventType, &ev.event_type);
    for (kind, arn) in &ev.resources {
        put(Attr::ResourceType, kind);
        put(Attr::ResourceName, arn);
        if let Some(a) = arn.as_deref().filter(|a| a.starts_with("arn:")) {
            let short = a.rsplit(['/', ':']).next().unwrap_or(a);
            if !short.is_empty() && short != a {
                put(Attr::ResourceName, &Some(Cow::Owned(short.to_string())));
            }
        }
    }
    t.sort();
    t.dedup();
    t
}
