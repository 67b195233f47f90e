//! The `events` table's columns, in CloudTrail Lake's schema: lower-case
//! names, `eventtime` a UTC timestamp, `readonly` and `managementevent`
//! booleans, `useridentity` (with its `sessioncontext`) and `tlsdetails`
//! structs, `resources` a list of structs, `eventjson` the stored record
//! byte for byte; plus Cairn's `seq` and `ingesttime`.
//!
//! Free-form members (`requestparameters`, `responseelements`,
//! `additionaleventdata`, `serviceeventdetails`, `addendum`,
//! `edgedevicedetails`, `insightdetails`, and the identity's `onbehalfof`,
//! `inscopeof`, `webidfederationdata`) are JSON text, not Lake's
//! `map<string,string>`: a map flattens nested values to strings anyway,
//! and JSON text keeps the record's values exactly as written (numbers,
//! nesting, key order). `element_at(col, 'key')` and
//! `json_extract_scalar` read them as Lake's queries do.
//!
//! The columns Cairn indexes (`eventname`, `eventsource`, `errorcode`,
//! `awsregion`, `sourceipaddress`, `useragent`, `eventid`, `eventtype`,
//! `eventcategory`, `recipientaccountid`, `readonly`,
//! `useridentity.arn`, `useridentity.accesskeyid`) hold the values the
//! index holds (an integration event's come from its `eventData` where the
//! envelope lacks them; an Insights record's name and source from its
//! `insightDetails`), so a filter on them is answered from the postings
//! without a difference. Only the columns a query reads are built.

use std::borrow::Cow;
use std::sync::Arc;

use cairn_deliver::format::{json_text, pick};
use cairn_engine::{Event, StoredEvent};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, ListBuilder, RecordBatch, StringBuilder, StructBuilder, TimestampMillisecondBuilder,
    UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::error::{DataFusionError, Result};

/// Where a column's (or a struct field's) value comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// A member of the record (or of the enclosing object), as text: a
    /// string's value, any other value's JSON text.
    Member(&'static str),
    /// A member that is `true`/`false` (or those strings, any case).
    Flag(&'static str),
    /// A member that is an object, as a struct of these fields.
    Struct(&'static str, &'static [(&'static str, Source)]),
    /// The value the index holds (see the module's doc).
    Indexed(Indexed),
    /// A member that is an array of objects, as a list of these structs.
    List(&'static str, &'static [(&'static str, Source)]),
    EventTime,
    IngestTime,
    Seq,
    EventJson,
}

/// The indexed values a column can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    EventName,
    EventSource,
    ErrorCode,
    AwsRegion,
    SourceIp,
    UserAgent,
    EventId,
    EventType,
    EventCategory,
    RecipientAccountId,
    ReadOnly,
    Arn,
    AccessKeyId,
}

impl Indexed {
    fn text<'e>(self, e: &'e Event<'_>) -> Option<&'e str> {
        let v = match self {
            Indexed::EventName => return Some(&e.event_name),
            Indexed::EventSource => &e.event_source,
            Indexed::ErrorCode => &e.error_code,
            Indexed::AwsRegion => &e.aws_region,
            Indexed::SourceIp => &e.source_ip,
            Indexed::UserAgent => &e.user_agent,
            Indexed::EventId => &e.event_id,
            Indexed::EventType => &e.event_type,
            Indexed::EventCategory => &e.event_category,
            Indexed::RecipientAccountId => &e.recipient_account_id,
            Indexed::Arn => &e.user_identity_arn,
            Indexed::AccessKeyId => &e.access_key_id,
            Indexed::ReadOnly => return None,
        };
        v.as_deref()
    }
}

const SESSION_ISSUER: &[(&str, Source)] = &[
    ("type", Source::Member("type")),
    ("principalid", Source::Member("principalId")),
    ("arn", Source::Member("arn")),
    ("accountid", Source::Member("accountId")),
    ("username", Source::Member("userName")),
];
const SESSION_ATTRIBUTES: &[(&str, Source)] =
    &[("creationdate", Source::Member("creationDate")), ("mfaauthenticated", Source::Member("mfaAuthenticated"))];
const SESSION_CONTEXT: &[(&str, Source)] = &[
    ("attributes", Source::Struct("attributes", SESSION_ATTRIBUTES)),
    ("sessionissuer", Source::Struct("sessionIssuer", SESSION_ISSUER)),
    ("webidfederationdata", Source::Member("webIdFederationData")),
    ("sourceidentity", Source::Member("sourceIdentity")),
    ("ec2roledelivery", Source::Member("ec2RoleDelivery")),
    ("ec2issuedinvpc", Source::Member("ec2IssuedInVPC")),
];
const USER_IDENTITY: &[(&str, Source)] = &[
    ("type", Source::Member("type")),
    ("principalid", Source::Member("principalId")),
    ("arn", Source::Indexed(Indexed::Arn)),
    ("accountid", Source::Member("accountId")),
    ("accesskeyid", Source::Indexed(Indexed::AccessKeyId)),
    ("username", Source::Member("userName")),
    ("sessioncontext", Source::Struct("sessionContext", SESSION_CONTEXT)),
    ("invokedby", Source::Member("invokedBy")),
    ("identityprovider", Source::Member("identityProvider")),
    ("credentialid", Source::Member("credentialId")),
    ("onbehalfof", Source::Member("onBehalfOf")),
    ("inscopeof", Source::Member("inScopeOf")),
];
const RESOURCE: &[(&str, Source)] = &[
    ("accountid", Source::Member("accountId")),
    ("type", Source::Member("type")),
    ("arn", Source::Member("ARN")),
    ("arnprefix", Source::Member("ARNPrefix")),
];
const TLS_DETAILS: &[(&str, Source)] = &[
    ("tlsversion", Source::Member("tlsVersion")),
    ("ciphersuite", Source::Member("cipherSuite")),
    ("clientprovidedhostheader", Source::Member("clientProvidedHostHeader")),
];

/// The table's columns, in order.
const COLUMNS: &[(&str, Source)] = &[
    ("eventversion", Source::Member("eventVersion")),
    ("useridentity", Source::Struct("userIdentity", USER_IDENTITY)),
    ("eventtime", Source::EventTime),
    ("eventsource", Source::Indexed(Indexed::EventSource)),
    ("eventname", Source::Indexed(Indexed::EventName)),
    ("awsregion", Source::Indexed(Indexed::AwsRegion)),
    ("sourceipaddress", Source::Indexed(Indexed::SourceIp)),
    ("useragent", Source::Indexed(Indexed::UserAgent)),
    ("errorcode", Source::Indexed(Indexed::ErrorCode)),
    ("errormessage", Source::Member("errorMessage")),
    ("requestparameters", Source::Member("requestParameters")),
    ("responseelements", Source::Member("responseElements")),
    ("additionaleventdata", Source::Member("additionalEventData")),
    ("requestid", Source::Member("requestID")),
    ("eventid", Source::Indexed(Indexed::EventId)),
    ("readonly", Source::Indexed(Indexed::ReadOnly)),
    ("resources", Source::List("resources", RESOURCE)),
    ("eventtype", Source::Indexed(Indexed::EventType)),
    ("apiversion", Source::Member("apiVersion")),
    ("managementevent", Source::Flag("managementEvent")),
    ("recipientaccountid", Source::Indexed(Indexed::RecipientAccountId)),
    ("serviceeventdetails", Source::Member("serviceEventDetails")),
    ("sharedeventid", Source::Member("sharedEventID")),
    ("annotation", Source::Member("annotation")),
    ("vpcendpointid", Source::Member("vpcEndpointId")),
    ("vpcendpointaccountid", Source::Member("vpcEndpointAccountId")),
    ("eventcategory", Source::Indexed(Indexed::EventCategory)),
    ("addendum", Source::Member("addendum")),
    ("sessioncredentialfromconsole", Source::Member("sessionCredentialFromConsole")),
    ("edgedevicedetails", Source::Member("edgeDeviceDetails")),
    ("tlsdetails", Source::Struct("tlsDetails", TLS_DETAILS)),
    ("insightdetails", Source::Member("insightDetails")),
    ("eventjson", Source::EventJson),
    ("seq", Source::Seq),
    ("ingesttime", Source::IngestTime),
];

/// The Indexed source of a top-level column or a `useridentity` field.
pub fn indexed(column: &str, field: Option<&str>) -> Option<Indexed> {
    let (_, src) = COLUMNS.iter().find(|(n, _)| *n == column)?;
    let src = match (src, field) {
        (s, None) => *s,
        (Source::Struct(_, fields), Some(f)) => fields.iter().find(|(n, _)| *n == f)?.1,
        _ => return None,
    };
    match src {
        Source::Indexed(i) => Some(i),
        _ => None,
    }
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn fields_of(fields: &[(&str, Source)]) -> Fields {
    fields.iter().map(|(n, s)| field(n, *s)).collect()
}

fn field(name: &str, s: Source) -> Field {
    let t = match s {
        Source::Member(_) | Source::EventJson => DataType::Utf8,
        Source::Indexed(Indexed::ReadOnly) | Source::Flag(_) => DataType::Boolean,
        Source::Indexed(_) => DataType::Utf8,
        Source::Struct(_, f) => DataType::Struct(fields_of(f)),
        Source::List(_, f) => DataType::List(Arc::new(Field::new("item", DataType::Struct(fields_of(f)), true))),
        Source::EventTime | Source::IngestTime => timestamp(),
        Source::Seq => DataType::UInt64,
    };
    let nullable = !matches!(s, Source::EventJson | Source::Seq | Source::EventTime | Source::IngestTime);
    Field::new(name, t, nullable)
}

/// The table's schema (built once: planning asks for it many times).
pub fn schema() -> SchemaRef {
    static SCHEMA: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| Arc::new(Schema::new(COLUMNS.iter().map(|(n, s)| field(n, *s)).collect::<Vec<_>>()))).clone()
}

/// The index of the column named `name`.
pub fn index_of(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|(n, _)| *n == name)
}

/// Builds record batches of the columns `projection` names (indexes into
/// [`schema`]'s), reading each record once.
pub struct Batcher {
    projection: Vec<usize>,
    schema: SchemaRef,
    /// The record's members the projected columns read.
    keys: Vec<&'static str>,
    needs_event: bool,
}

fn struct_builder(fields: &'static [(&'static str, Source)], rows: usize) -> StructBuilder {
    StructBuilder::new(fields_of(fields), fields.iter().map(|(_, s)| builder(*s, rows)).collect::<Vec<_>>())
}

/// A builder for a column (or field) of source `s`, for `rows` rows.
fn builder(s: Source, rows: usize) -> Box<dyn ArrayBuilder> {
    match s {
        Source::Indexed(Indexed::ReadOnly) | Source::Flag(_) => Box::new(BooleanBuilder::with_capacity(rows)),
        Source::Member(_) | Source::EventJson | Source::Indexed(_) => Box::new(StringBuilder::with_capacity(rows, rows * 16)),
        Source::Struct(_, f) => Box::new(struct_builder(f, rows)),
        Source::List(_, f) => {
            let item = Arc::new(Field::new("item", DataType::Struct(fields_of(f)), true));
            Box::new(ListBuilder::new(struct_builder(f, rows)).with_field(item))
        }
        Source::EventTime | Source::IngestTime => Box::new(TimestampMillisecondBuilder::with_capacity(rows).with_data_type(timestamp())),
        Source::Seq => Box::new(UInt64Builder::with_capacity(rows)),
    }
}

/// A member's value as column text (`None` when absent or null).
fn text(v: Option<&str>) -> Option<Cow<'_, str>> {
    json_text(v?)
}

fn flag(v: Option<&str>) -> Option<bool> {
    match text(v)?.as_ref() {
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// What one record offers the builders.
struct Row<'a> {
    event: &'a StoredEvent,
    /// The record's members, by position in [`Batcher::keys`].
    members: Option<Vec<Option<&'a str>>>,
    parsed: Option<Event<'a>>,
}

/// The members named `keys` of the JSON object `raw` (`None` when it is
/// not one).
fn members<'a>(raw: &'a [u8], keys: &[&str]) -> Option<Vec<Option<&'a str>>> {
    // `pick` takes a fixed number of keys: the table's objects have at
    // most this many members of interest.
    let mut k = [""; 40];
    k.get_mut(..keys.len())?.copy_from_slice(keys);
    let found = pick(raw, &k)?;
    Some(found[..keys.len()].to_vec())
}

/// The members of an object's JSON text that `fields` read.
fn object_members<'a>(obj: Option<&'a str>, fields: &[(&str, Source)]) -> Option<Vec<Option<&'a str>>> {
    let keys: Vec<&str> = fields.iter().map(|(_, s)| key_of(*s).unwrap_or("")).collect();
    members(obj?.as_bytes(), &keys)
}

fn key_of(s: Source) -> Option<&'static str> {
    match s {
        Source::Member(k) | Source::Flag(k) | Source::Struct(k, _) | Source::List(k, _) => Some(k),
        _ => None,
    }
}

fn internal(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("the events table: {what}"))
}

/// `b` as the builder type `T` its source makes.
fn typed<T: ArrayBuilder>(b: &mut dyn ArrayBuilder) -> Result<&mut T> {
    b.as_any_mut().downcast_mut::<T>().ok_or_else(|| internal("a column's builder does not match its source"))
}

/// Appends the value of source `s` (`v`: the member it reads, if any).
fn append(b: &mut dyn ArrayBuilder, s: Source, v: Option<&str>, row: &Row<'_>) -> Result<()> {
    match s {
        Source::Member(_) => typed::<StringBuilder>(b)?.append_option(text(v)),
        Source::EventJson => {
            let json = std::str::from_utf8(&row.event.record).map_err(|e| DataFusionError::External(Box::new(e)))?;
            typed::<StringBuilder>(b)?.append_value(json)
        }
        Source::Indexed(Indexed::ReadOnly) => typed::<BooleanBuilder>(b)?.append_option(row.parsed.as_ref().and_then(|e| e.read_only)),
        Source::Indexed(i) => typed::<StringBuilder>(b)?.append_option(row.parsed.as_ref().and_then(|e| i.text(e))),
        Source::Flag(_) => typed::<BooleanBuilder>(b)?.append_option(flag(v)),
        Source::EventTime => typed::<TimestampMillisecondBuilder>(b)?.append_value(row.event.time_ms),
        Source::IngestTime => typed::<TimestampMillisecondBuilder>(b)?.append_value(i64::try_from(row.event.ingest_ms).unwrap_or(i64::MAX)),
        Source::Seq => typed::<UInt64Builder>(b)?.append_value(row.event.seq),
        Source::Struct(_, fields) => append_struct(typed::<StructBuilder>(b)?, fields, object_members(v, fields), row)?,
        Source::List(_, fields) => {
            let b = typed::<ListBuilder<StructBuilder>>(b)?;
            match v.and_then(|v| serde_json::from_str::<Vec<&serde_json::value::RawValue>>(v).ok()) {
                Some(items) => {
                    for item in items {
                        append_struct(b.values(), fields, object_members(Some(item.get()), fields), row)?;
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
    }
    Ok(())
}

/// Appends one struct value: `found` is the object's members (by field),
/// `None` when the value is absent or not an object (a null struct,
/// unless a field comes from the index).
fn append_struct(b: &mut StructBuilder, fields: &[(&str, Source)], found: Option<Vec<Option<&str>>>, row: &Row<'_>) -> Result<()> {
    let indexed_present =
        fields.iter().any(|(_, s)| matches!(s, Source::Indexed(i) if row.parsed.as_ref().and_then(|e| i.text(e)).is_some()));
    for (i, (_, s)) in fields.iter().enumerate() {
        let v = found.as_ref().and_then(|f| f[i]);
        let child = b.field_builders_mut().get_mut(i).ok_or_else(|| internal("a struct field's builder"))?;
        append(child.as_mut(), *s, v, row)?;
    }
    b.append(found.is_some() || indexed_present);
    Ok(())
}

impl Batcher {
    pub fn new(projection: Option<&Vec<usize>>) -> Batcher {
        let projection: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..COLUMNS.len()).collect());
        let full = schema();
        let schema = Arc::new(full.project(&projection).expect("projection of the table's own columns"));
        let keys: Vec<&'static str> = projection.iter().filter_map(|&i| key_of(COLUMNS[i].1)).collect();
        let needs_event = projection.iter().any(|&i| uses_index(COLUMNS[i].1));
        Batcher { projection, schema, keys, needs_event }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The batch of `events`' rows.
    pub fn batch(&self, events: &[StoredEvent]) -> Result<RecordBatch> {
        let mut builders: Vec<Box<dyn ArrayBuilder>> = self.projection.iter().map(|&i| builder(COLUMNS[i].1, events.len())).collect();
        for e in events {
            let row = Row {
                event: e,
                members: if self.keys.is_empty() { None } else { members(&e.record, &self.keys) },
                parsed: if self.needs_event { cairn_engine::parse_event(&e.record, usize::MAX).ok() } else { None },
            };
            let mut k = 0;
            for (b, &i) in builders.iter_mut().zip(&self.projection) {
                let s = COLUMNS[i].1;
                let v = match key_of(s) {
                    Some(_) => {
                        k += 1;
                        row.members.as_ref().and_then(|m| m[k - 1])
                    }
                    None => None,
                };
                append(b.as_mut(), s, v, &row)?;
            }
        }
        let columns: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
        // With no column projected (`count(*)` over a join), the batch is
        // only its row count.
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(events.len()));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)?)
    }
}

fn uses_index(s: Source) -> bool {
    match s {
        Source::Indexed(_) => true,
        Source::Struct(_, f) | Source::List(_, f) => f.iter().any(|(_, s)| uses_index(*s)),
        _ => false,
    }
}
