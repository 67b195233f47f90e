//! A borrowed, tolerant parser for CloudTrail records and CloudTrail Lake
//! integration events.
//!
//! It walks the JSON once with serde visitors, borrows every string that has
//! no escapes, skips everything it does not index, and never fails on a
//! field's *type*: a `null`, a number where a string was expected, or an
//! object where a scalar was expected simply leaves that field empty. Only
//! malformed JSON or a non-object record is an error. Duplicate keys: the
//! last occurrence wins (as `JSON.parse` and Python's `json` do).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value where a scalar is expected.
#[derive(Debug, Default, Clone)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    /// A number, kept as its decimal text (used for nothing but display).
    Num(String),
    /// `null`, or absent.
    #[default]
    Null,
    /// An object or an array.
    Composite,
}

impl<'a> Scalar<'a> {
    /// The value as a non-empty string, if it is one.
    pub fn as_str(&self) -> Option<&Cow<'a, str>> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    pub fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// CloudTrail booleans: JSON `true`/`false`, or the strings `"true"` /
    /// `"false"` in any case (some producers write `"True"`).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Scalar::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// Drains a sequence without keeping anything.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Drains a map without keeping anything.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(Scalar::Composite)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(Scalar::Composite)
            }
        }
        d.deserialize_any(V)
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An object whose fields are read from a map; any non-object value
/// deserializes to `Default` (a tolerant parser never fails on a type).
trait TolerantObject<'de>: Default + Sized {
    /// Reads one field; unknown keys must be skipped with `IgnoredAny`.
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

/// The scalar `visit_*` methods of a tolerant visitor: each value of the
/// wrong kind yields `$v` instead of an error.
macro_rules! scalars_yield {
    ($v:expr) => {
        fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: TolerantObject<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut out = T::default();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            out.field(&k, &mut map)?;
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        drain_seq(seq)?;
        Ok(T::default())
    }
    scalars_yield!(T::default());
}

macro_rules! tolerant_deserialize {
    ($t:ident) => {
        impl<'de> Deserialize<'de> for $t<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(ObjectVisitor::<Self>(PhantomData))
            }
        }
    };
}

/// `userIdentity.sessionContext.sessionIssuer` and the parts of
/// `sessionContext` the index needs.
#[derive(Debug, Default)]
pub struct SessionIssuer<'a> {
    pub user_name: Scalar<'a>,
    pub arn: Scalar<'a>,
}

impl<'de> TolerantObject<'de> for SessionIssuer<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "userName" => self.user_name = map.next_value()?,
            "arn" => self.arn = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
tolerant_deserialize!(SessionIssuer);

#[derive(Debug, Default)]
pub struct SessionContext<'a> {
    pub session_issuer: SessionIssuer<'a>,
}

impl<'de> TolerantObject<'de> for SessionContext<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "sessionIssuer" => self.session_issuer = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
tolerant_deserialize!(SessionContext);

/// The indexed parts of `userIdentity`.
#[derive(Debug, Default)]
pub struct UserIdentity<'a> {
    pub kind: Scalar<'a>,
    pub principal_id: Scalar<'a>,
    pub arn: Scalar<'a>,
    pub account_id: Scalar<'a>,
    pub access_key_id: Scalar<'a>,
    pub user_name: Scalar<'a>,
    pub invoked_by: Scalar<'a>,
    pub session_context: SessionContext<'a>,
}

impl<'de> TolerantObject<'de> for UserIdentity<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "type" => self.kind = map.next_value()?,
            "principalId" => self.principal_id = map.next_value()?,
            "arn" => self.arn = map.next_value()?,
            "accountId" => self.account_id = map.next_value()?,
            "accessKeyId" => self.access_key_id = map.next_value()?,
            "userName" => self.user_name = map.next_value()?,
            "invokedBy" => self.invoked_by = map.next_value()?,
            "sessionContext" => self.session_context = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
tolerant_deserialize!(UserIdentity);

/// One element of `resources[]` (note CloudTrail's upper-case `ARN`).
#[derive(Debug, Default)]
pub struct Resource<'a> {
    pub kind: Scalar<'a>,
    pub arn: Scalar<'a>,
}

impl<'de> TolerantObject<'de> for Resource<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "type" => self.kind = map.next_value()?,
            // Some producers lower-case it; accept both spellings.
            "ARN" | "arn" => self.arn = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
tolerant_deserialize!(Resource);

/// `resources`: an array of objects (anything else reads as empty).
#[derive(Debug, Default)]
pub struct Resources<'a>(pub Vec<Resource<'a>>);

impl<'de> Deserialize<'de> for Resources<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Resources<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of resources")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(r) = seq.next_element::<Resource<'de>>()? {
                    if r.kind.as_str().is_some() || r.arn.as_str().is_some() {
                        out.push(r);
                    }
                }
                Ok(Resources(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(Resources::default())
            }
            scalars_yield!(Resources::default());
        }
        d.deserialize_any(V)
    }
}

/// The indexed parts of an Insights record's `insightDetails`.
#[derive(Debug, Default)]
pub struct InsightDetails<'a> {
    pub event_name: Scalar<'a>,
    pub event_source: Scalar<'a>,
    pub error_code: Scalar<'a>,
    pub state: Scalar<'a>,
    pub insight_type: Scalar<'a>,
}

impl<'de> TolerantObject<'de> for InsightDetails<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "eventName" => self.event_name = map.next_value()?,
            "eventSource" => self.event_source = map.next_value()?,
            "errorCode" => self.error_code = map.next_value()?,
            "state" => self.state = map.next_value()?,
            "insightType" => self.insight_type = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
tolerant_deserialize!(InsightDetails);

/// An aggregated event's `timeWindow` (its start stands in for eventTime).
#[derive(Debug, Default)]
pub struct TimeWindow<'a> {
    pub window_start: Scalar<'a>,
}

impl<'de> TolerantObject<'de> for TimeWindow<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "windowStart" => self.window_start = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
tolerant_deserialize!(TimeWindow);

/// Every top-level field the engine indexes, as found in the record.
#[derive(Debug, Default)]
pub struct RawFields<'a> {
    pub event_version: Scalar<'a>,
    pub event_time: Scalar<'a>,
    pub event_id: Scalar<'a>,
    /// CloudTrail Lake integration events carry `UID` instead of `eventID`,
    /// aggregated events `eventId`.
    pub uid: Scalar<'a>,
    pub event_id_lower: Scalar<'a>,
    /// Aggregated events: `accountId` at the top level, and `timeWindow`.
    pub account_id: Scalar<'a>,
    pub time_window: Option<TimeWindow<'a>>,
    pub event_name: Scalar<'a>,
    pub event_source: Scalar<'a>,
    pub aws_region: Scalar<'a>,
    pub source_ip: Scalar<'a>,
    pub user_agent: Scalar<'a>,
    pub error_code: Scalar<'a>,
    pub read_only: Scalar<'a>,
    pub event_type: Scalar<'a>,
    pub event_category: Scalar<'a>,
    pub recipient_account_id: Scalar<'a>,
    pub user_identity: UserIdentity<'a>,
    pub resources: Resources<'a>,
    pub insight_details: Option<InsightDetails<'a>>,
    /// A stored integration event nests the caller's event in `eventData`.
    pub event_data: Option<Box<RawFields<'a>>>,
}

impl<'de> RawFields<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A, nested: bool) -> Result<(), A::Error> {
        match key {
            "eventVersion" | "version" => self.event_version = map.next_value()?,
            "eventTime" => self.event_time = map.next_value()?,
            "eventID" => self.event_id = map.next_value()?,
            "UID" => self.uid = map.next_value()?,
            "eventId" => self.event_id_lower = map.next_value()?,
            "accountId" => self.account_id = map.next_value()?,
            "timeWindow" => self.time_window = Some(map.next_value()?),
            "eventName" => self.event_name = map.next_value()?,
            "eventSource" => self.event_source = map.next_value()?,
            "awsRegion" => self.aws_region = map.next_value()?,
            "sourceIPAddress" => self.source_ip = map.next_value()?,
            "userAgent" => self.user_agent = map.next_value()?,
            "errorCode" => self.error_code = map.next_value()?,
            "readOnly" => self.read_only = map.next_value()?,
            "eventType" => self.event_type = map.next_value()?,
            "eventCategory" => self.event_category = map.next_value()?,
            "recipientAccountId" => self.recipient_account_id = map.next_value()?,
            "userIdentity" => self.user_identity = map.next_value()?,
            "resources" => self.resources = map.next_value()?,
            "insightDetails" => self.insight_details = Some(map.next_value()?),
            // One level only: an `eventData` inside `eventData` is ignored,
            // so the parser never recurses on input it does not control.
            "eventData" if !nested => self.event_data = map.next_value_seed(FieldsSeed { nested: true })?.map(Box::new),
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Deserializes a record into `Some(RawFields)` when it is an object, `None`
/// otherwise (the caller decides whether a non-object is an error).
struct FieldsSeed {
    nested: bool,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed {
    type Value = Option<RawFields<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed {
    type Value = Option<RawFields<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = RawFields::default();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            out.field(&k, &mut map, self.nested)?;
        }
        Ok(Some(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(None)
    }
    scalars_yield!(None);
}

/// Why bytes could not be read as a record at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// Not JSON; carries serde_json's message (line and column).
    Json(String),
    /// Valid JSON, but not an object.
    NotObject,
}

/// Parses one record's bytes into its raw indexed fields. Trailing
/// whitespace is allowed; trailing data is not.
pub fn parse_raw(bytes: &[u8]) -> Result<RawFields<'_>, ShapeError> {
    // JSON text is UTF-8 (RFC 8259). Checking the whole record once up front
    // is faster than serde_json's per-string checks on a byte slice, and
    // lets every borrowed string come out without another check.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ShapeError::Json(format!("invalid UTF-8 at byte {} (JSON text must be UTF-8)", e.valid_up_to())))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = FieldsSeed { nested: false }.deserialize(&mut de).map_err(|e| ShapeError::Json(e.to_string()))?;
    de.end().map_err(|e| ShapeError::Json(e.to_string()))?;
    parsed.ok_or(ShapeError::NotObject)
}
