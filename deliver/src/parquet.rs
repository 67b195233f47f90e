//! Parquet files of delivered events, in CloudTrail Lake's column layout
//! (lower-case names; `eventtime` a UTC timestamp; `useridentity` and
//! `resources` structured; free-form members as JSON text; `eventjson` the
//! stored record byte for byte), for Athena, Trino, Spark and DuckDB.
//! Records are read with [`Members`] (no JSON tree is built).
//! docs/FORMAT.md ("Parquet") lists the columns and the ready
//! `CREATE EXTERNAL TABLE`.
//!
//! Files are Hive-partitioned by the record's account, region and UTC
//! date of eventTime: `[PREFIX/]parquet/account=A/region=R/date=YYYY-MM-DD/`.

use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::builder::{BooleanBuilder, ListBuilder, StringBuilder, StructBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde_json::value::RawValue;

use crate::format::Members;

/// The string columns, in order, after `eventversion`, `useridentity` and
/// `eventtime`: (column, the record's member).
const TEXT_COLUMNS: [(&str, &str); 18] = [
    ("eventsource", "eventSource"),
    ("eventname", "eventName"),
    ("awsregion", "awsRegion"),
    ("sourceipaddress", "sourceIPAddress"),
    ("useragent", "userAgent"),
    ("errorcode", "errorCode"),
    ("errormessage", "errorMessage"),
    ("requestparameters", "requestParameters"),
    ("responseelements", "responseElements"),
    ("additionaleventdata", "additionalEventData"),
    ("requestid", "requestID"),
    ("eventid", "eventID"),
    ("eventtype", "eventType"),
    ("apiversion", "apiVersion"),
    ("recipientaccountid", "recipientAccountId"),
    ("serviceeventdetails", "serviceEventDetails"),
    ("sharedeventid", "sharedEventID"),
    ("vpcendpointid", "vpcEndpointId"),
];
/// More string columns after `readonly`, `resources` and `managementevent`.
const TEXT_COLUMNS_2: [(&str, &str); 4] = [
    ("eventcategory", "eventCategory"),
    ("tlsdetails", "tlsDetails"),
    ("addendum", "addendum"),
    ("sessioncredentialfromconsole", "sessionCredentialFromConsole"),
];
/// `useridentity`'s members: (field, the record's member).
const IDENTITY_FIELDS: [(&str, &str); 10] = [
    ("type", "type"),
    ("principalid", "principalId"),
    ("arn", "arn"),
    ("accountid", "accountId"),
    ("accesskeyid", "accessKeyId"),
    ("username", "userName"),
    ("invokedby", "invokedBy"),
    ("identityprovider", "identityProvider"),
    ("sessioncontext", "sessionContext"),
    ("onbehalfof", "onBehalfOf"),
];
/// Columns whose values are (nearly) unique per event.
const UNIQUE_COLUMNS: [&str; 6] = ["eventjson", "eventid", "requestid", "sharedeventid", "requestparameters", "responseelements"];
const RESOURCE_FIELDS: [(&str, &str); 3] = [("type", "type"), ("arn", "ARN"), ("accountid", "accountId")];

fn utf8_fields(names: &[(&str, &str)]) -> Fields {
    names.iter().map(|(n, _)| Field::new(*n, DataType::Utf8, true)).collect()
}

/// The files' schema (every column nullable: records may omit anything).
pub fn schema() -> Arc<Schema> {
    let mut f = vec![
        Field::new("eventversion", DataType::Utf8, true),
        Field::new("useridentity", DataType::Struct(utf8_fields(&IDENTITY_FIELDS)), true),
        Field::new("eventtime", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
    ];
    f.extend(TEXT_COLUMNS.iter().map(|(n, _)| Field::new(*n, DataType::Utf8, true)));
    f.push(Field::new("readonly", DataType::Boolean, true));
    let resource = Field::new("item", DataType::Struct(utf8_fields(&RESOURCE_FIELDS)), true);
    f.push(Field::new("resources", DataType::List(Arc::new(resource)), true));
    f.push(Field::new("managementevent", DataType::Boolean, true));
    f.extend(TEXT_COLUMNS_2.iter().map(|(n, _)| Field::new(*n, DataType::Utf8, true)));
    f.push(Field::new("eventjson", DataType::Utf8, false));
    Arc::new(Schema::new(f))
}

/// `readOnly` and `managementEvent` as CloudTrail writes them: a boolean,
/// or "true"/"false".
fn boolean(m: Option<&Members<'_>>, key: &str) -> Option<bool> {
    match m?.text(key)?.as_ref() {
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn struct_builder(fields: &[(&str, &str)]) -> StructBuilder {
    StructBuilder::new(
        utf8_fields(fields),
        fields.iter().map(|_| Box::new(StringBuilder::new()) as Box<dyn arrow_array::builder::ArrayBuilder>).collect::<Vec<_>>(),
    )
}

fn append_struct(b: &mut StructBuilder, fields: &[(&str, &str)], obj: Option<&Members<'_>>) -> Result<()> {
    for (i, (_, member)) in fields.iter().enumerate() {
        let f = b.field_builder::<StringBuilder>(i).context("a string field")?;
        f.append_option(obj.and_then(|o| o.text(member)));
    }
    b.append(obj.is_some());
    Ok(())
}

/// One record, read for its row: its members (`None` when it is not an
/// object) and its stored eventTime.
pub struct Row<'a> {
    pub raw: &'a [u8],
    pub members: Option<Members<'a>>,
    pub time_ms: i64,
}

impl<'a> Row<'a> {
    pub fn new(raw: &'a [u8], time_ms: i64) -> Row<'a> {
        Row { raw, members: Members::parse(raw), time_ms }
    }
}

/// How every file is written: zstd level 1 pages, row groups of at most
/// `rows_per_group` rows, no dictionary or statistics where values are
/// unique per event.
pub fn writer_properties(rows_per_group: usize) -> Result<WriterProperties> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(parquet::basic::ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(rows_per_group.max(1)))
        // Min/max per column chunk (what engines prune row groups with);
        // per page they cost more than they save on files this size.
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by("cairn".into());
    // Columns unique per event (or nearly): a dictionary only costs the
    // attempt and the fallback, and min/max statistics prune nothing.
    for c in UNIQUE_COLUMNS {
        let path = parquet::schema::types::ColumnPath::from(c);
        props = props.set_column_dictionary_enabled(path.clone(), false).set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    Ok(props.build())
}

/// One Parquet file (zstd level 1 pages, one row group) of `rows`, in order.
pub fn encode(rows: &[Row<'_>]) -> Result<Vec<u8>> {
    let schema = schema();
    let mut version = StringBuilder::new();
    let mut identity = struct_builder(&IDENTITY_FIELDS);
    let mut time = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut texts: Vec<StringBuilder> = TEXT_COLUMNS.iter().map(|_| StringBuilder::new()).collect();
    let mut readonly = BooleanBuilder::new();
    let mut resources = ListBuilder::new(struct_builder(&RESOURCE_FIELDS)).with_field(Arc::new(Field::new(
        "item",
        DataType::Struct(utf8_fields(&RESOURCE_FIELDS)),
        true,
    )));
    let mut management = BooleanBuilder::new();
    let mut texts2: Vec<StringBuilder> = TEXT_COLUMNS_2.iter().map(|_| StringBuilder::new()).collect();
    let mut json = StringBuilder::new();
    for row in rows {
        // Stored records are JSON objects; anything else still gets its
        // row, with only eventjson and eventtime.
        let m = row.members.as_ref();
        let text = |k: &str| m.and_then(|m| m.text(k));
        version.append_option(text("eventVersion"));
        append_struct(&mut identity, &IDENTITY_FIELDS, m.and_then(|m| m.object("userIdentity")).as_ref())?;
        time.append_value(row.time_ms);
        for (b, (_, member)) in texts.iter_mut().zip(TEXT_COLUMNS) {
            b.append_option(text(member));
        }
        readonly.append_option(boolean(m, "readOnly"));
        let list: Option<Vec<&RawValue>> = m.and_then(|m| serde_json::from_str(m.get("resources")?.get()).ok());
        match list {
            Some(list) => {
                for r in list {
                    append_struct(resources.values(), &RESOURCE_FIELDS, Members::parse(r.get().as_bytes()).as_ref())?;
                }
                resources.append(true);
            }
            None => resources.append(false),
        }
        management.append_option(boolean(m, "managementEvent"));
        for (b, (_, member)) in texts2.iter_mut().zip(TEXT_COLUMNS_2) {
            b.append_option(text(member));
        }
        // Stored records are UTF-8 (the store checks at ingest); the
        // lossy path (slower) only runs for one that is not.
        match std::str::from_utf8(row.raw) {
            Ok(t) => json.append_value(t),
            Err(_) => json.append_value(String::from_utf8_lossy(row.raw)),
        }
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(version.finish()), Arc::new(identity.finish()), Arc::new(time.finish())];
    columns.extend(texts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(readonly.finish()));
    columns.push(Arc::new(resources.finish()));
    columns.push(Arc::new(management.finish()));
    columns.extend(texts2.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(json.finish()));
    let batch = RecordBatch::try_new(schema.clone(), columns).context("building the Parquet columns")?;
    let props = writer_properties(rows.len().max(1))?;
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    w.write(&batch)?;
    w.close()?;
    Ok(out)
}

/// The Hive partition directory of a record: `account=A/region=R/date=D`.
pub fn partition(account: &str, region: &str, time_ms: i64) -> String {
    let t = cairn_engine::event::format_event_time(time_ms);
    format!("account={account}/region={region}/date={}", &t[..10])
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    // Goal: a file reads back with the Lake columns filled from the
    // record, eventjson byte-exact, and a record that is not an object
    // still gets its row.
    #[test]
    fn encode_reads_back() {
        let a = br#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","userName":"alice","sessionContext":{"a":1}},"eventTime":"2024-01-02T03:04:05Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","readOnly":true,"resources":[{"ARN":"arn:aws:s3:::b","type":"AWS::S3::Bucket"}],"requestParameters":{"bucketName":"b"},"managementEvent":false,"eventID":"e1"}"#;
        let b = b"[1,2]";
        let bytes = encode(&[Row::new(a, 1_704_164_645_000), Row::new(b, 0)]).unwrap();
        let mut r = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap().build().unwrap();
        let batch = r.next().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let col = |n: &str| batch.column(batch.schema().index_of(n).unwrap()).clone();
        let s = |n: &str, i: usize| arrow_array::cast::AsArray::as_string::<i32>(&col(n)).value(i).to_string();
        assert_eq!(s("eventname", 0), "GetObject");
        assert_eq!(s("requestparameters", 0), r#"{"bucketName":"b"}"#);
        assert_eq!(s("eventjson", 0).as_bytes(), a.as_slice());
        assert_eq!(s("eventjson", 1), "[1,2]");
        assert!(col("eventname").is_null(1));
        let ident = arrow_array::cast::AsArray::as_struct(&col("useridentity")).clone();
        let user = arrow_array::cast::AsArray::as_string::<i32>(ident.column_by_name("username").unwrap()).value(0).to_string();
        assert_eq!(user, "alice");
        assert_eq!(partition("1", "r", 1_704_164_645_000), "account=1/region=r/date=2024-01-02");
    }
}
