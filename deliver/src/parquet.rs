//! Parquet files of delivered events, in CloudTrail Lake's column layout
//! (lower-case names; `eventtime` a UTC timestamp; `useridentity` and
//! `resources` structured; free-form members as JSON text; `eventjson` the
//! stored record byte for byte), for Athena, Trino, Spark and DuckDB.
//! Each record's members are read once with [`pick`] (no JSON tree is
//! built).
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
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use serde_json::value::RawValue;

use crate::format::{json_text, pick};

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

/// The record's members a row reads, in one pass: these five, then
/// [`TEXT_COLUMNS`]' and [`TEXT_COLUMNS_2`]'s.
const RECORD_KEYS: [&str; 27] = {
    let mut out = [""; 27];
    let first = ["eventVersion", "userIdentity", "readOnly", "resources", "managementEvent"];
    let (mut n, mut i) = (0, 0);
    while i < first.len() {
        out[n] = first[i];
        (n, i) = (n + 1, i + 1);
    }
    i = 0;
    while i < TEXT_COLUMNS.len() {
        out[n] = TEXT_COLUMNS[i].1;
        (n, i) = (n + 1, i + 1);
    }
    i = 0;
    while i < TEXT_COLUMNS_2.len() {
        out[n] = TEXT_COLUMNS_2[i].1;
        (n, i) = (n + 1, i + 1);
    }
    assert!(n == out.len());
    out
};
const VERSION: usize = 0;
const IDENTITY: usize = 1;
const READONLY: usize = 2;
const RESOURCES: usize = 3;
const MANAGEMENT: usize = 4;
const TEXTS: usize = 5;
const TEXTS_2: usize = TEXTS + TEXT_COLUMNS.len();

/// The member names of `fields` ((column, member) pairs), for [`pick`].
const fn members<const N: usize>(fields: &[(&'static str, &'static str); N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = fields[i].1;
        i += 1;
    }
    out
}
const IDENTITY_KEYS: [&str; 10] = members(&IDENTITY_FIELDS);
const RESOURCE_KEYS: [&str; 3] = members(&RESOURCE_FIELDS);

fn text(v: Option<&str>) -> Option<std::borrow::Cow<'_, str>> {
    json_text(v?)
}

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
fn boolean(v: Option<&str>) -> Option<bool> {
    match text(v)?.as_ref() {
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A string column's builder, sized for `rows` values of `bytes` in all
/// (growing a builder copies everything it holds, into fresh pages).
fn strings(rows: usize, bytes: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, bytes)
}

fn struct_builder(fields: &[(&str, &str)], rows: usize) -> StructBuilder {
    StructBuilder::new(
        utf8_fields(fields),
        fields.iter().map(|_| Box::new(strings(rows, rows * 16)) as Box<dyn arrow_array::builder::ArrayBuilder>).collect::<Vec<_>>(),
    )
}

/// Appends an object's `keys` members (`obj`: `None` when the value is
/// absent or not an object) to a struct column.
fn append_struct<const N: usize>(b: &mut StructBuilder, keys: &[&str; N], obj: Option<&str>) -> Result<()> {
    let values = obj.and_then(|o| pick(o.as_bytes(), keys));
    for i in 0..N {
        let f = b.field_builder::<StringBuilder>(i).context("a string field")?;
        f.append_option(values.and_then(|v| text(v[i])));
    }
    b.append(values.is_some());
    Ok(())
}

/// One record, read once for its row and its stream: the stored record,
/// its eventTime, and where its [`RECORD_KEYS`] members are in it (no
/// places when it is not a JSON object: its row has only eventjson and
/// eventtime).
pub struct Row<'a> {
    pub raw: &'a [u8],
    pub time_ms: i64,
    /// `raw` as text, checked as UTF-8 once (`None` if it is not).
    text: Option<&'a str>,
    members: Option<[Place; RECORD_KEYS.len()]>,
}

/// A member's JSON text in the record: `len` bytes from `at` (no JSON
/// text is empty: 0 is an absent member). Eight bytes, where a borrowed
/// `&str` is sixteen: a round holds one row per event.
#[derive(Clone, Copy, Default)]
struct Place {
    at: u32,
    len: u32,
}

impl<'a> Row<'a> {
    pub fn new(raw: &'a [u8], time_ms: i64) -> Row<'a> {
        let place = |v: Option<&str>| {
            let Some(t) = v else { return Place::default() };
            Place { at: (t.as_ptr() as usize - raw.as_ptr() as usize) as u32, len: t.len() as u32 }
        };
        let text = std::str::from_utf8(raw).ok();
        // Stored records are at most 1 MiB (the store's limit): places fit.
        let members = text.filter(|t| t.len() <= u32::MAX as usize).and_then(|t| pick(t.as_bytes(), &RECORD_KEYS));
        Row { raw, time_ms, text, members: members.map(|m| m.map(place)) }
    }

    /// The JSON text of the `i`th of [`RECORD_KEYS`], if present.
    fn member(&self, i: usize) -> Option<&'a str> {
        let p = self.members?[i];
        self.text?.get(p.at as usize..p.at as usize + p.len as usize).filter(|_| p.len > 0)
    }

    /// The record's stream (account, region), as [`crate::format::stream_of`].
    pub fn stream(&self) -> (String, String) {
        let at = |member: &str| RECORD_KEYS.iter().position(|k| *k == member).and_then(|i| self.member(i));
        crate::format::stream(at("recipientAccountId"), at("awsRegion"), self.member(IDENTITY))
    }
}

/// How a round's files are compressed: LZ4 (raw), as fast to write as
/// the log files' gzip (zstd level 1 took twice their time), and read by
/// Athena, Trino, Spark (3.3 on) and DuckDB.
pub const ROUND_COMPRESSION: Compression = Compression::LZ4_RAW;

/// How compaction compresses the files it writes: zstd level 3 (Athena's
/// own level), a third smaller than LZ4 for the years they are kept.
pub fn compacted_compression() -> Result<Compression> {
    Ok(Compression::ZSTD(parquet::basic::ZstdLevel::try_new(3)?))
}

/// How every file is written: `compression`, row groups of at most
/// `rows_per_group` rows, no dictionary or statistics where values are
/// unique per event.
pub fn writer_properties(rows_per_group: usize, compression: Compression) -> Result<WriterProperties> {
    let mut props = WriterProperties::builder()
        .set_compression(compression)
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

/// The columns of `rows`, in order, as one batch.
fn batch(rows: &[Row<'_>]) -> Result<RecordBatch> {
    let n = rows.len();
    // Each string column sized for its members' JSON text (an upper bound:
    // strings lose their quotes and escapes), so no builder grows.
    let mut sizes = [0usize; RECORD_KEYS.len()];
    for m in rows.iter().filter_map(|r| r.members.as_ref()) {
        for (size, place) in sizes.iter_mut().zip(m) {
            *size += place.len as usize;
        }
    }
    let bytes = |i: usize| sizes[i];
    let mut version = strings(n, bytes(VERSION));
    let mut identity = struct_builder(&IDENTITY_FIELDS, n);
    let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut texts: Vec<StringBuilder> = (0..TEXT_COLUMNS.len()).map(|i| strings(n, bytes(TEXTS + i))).collect();
    let mut readonly = BooleanBuilder::with_capacity(n);
    let mut resources = ListBuilder::new(struct_builder(&RESOURCE_FIELDS, n)).with_field(Arc::new(Field::new(
        "item",
        DataType::Struct(utf8_fields(&RESOURCE_FIELDS)),
        true,
    )));
    let mut management = BooleanBuilder::with_capacity(n);
    let mut texts2: Vec<StringBuilder> = (0..TEXT_COLUMNS_2.len()).map(|i| strings(n, bytes(TEXTS_2 + i))).collect();
    let mut json = strings(n, rows.iter().map(|r| r.raw.len()).sum());
    for row in rows {
        // Stored records are JSON objects; anything else still gets its
        // row, with only eventjson and eventtime.
        let m = |i: usize| row.member(i);
        version.append_option(text(m(VERSION)));
        append_struct(&mut identity, &IDENTITY_KEYS, m(IDENTITY))?;
        time.append_value(row.time_ms);
        for (i, b) in texts.iter_mut().enumerate() {
            b.append_option(text(m(TEXTS + i)));
        }
        readonly.append_option(boolean(m(READONLY)));
        match m(RESOURCES).and_then(|r| serde_json::from_str::<Vec<&RawValue>>(r).ok()) {
            Some(list) => {
                for r in list {
                    append_struct(resources.values(), &RESOURCE_KEYS, Some(r.get()))?;
                }
                resources.append(true);
            }
            None => resources.append(false),
        }
        management.append_option(boolean(m(MANAGEMENT)));
        for (i, b) in texts2.iter_mut().enumerate() {
            b.append_option(text(m(TEXTS_2 + i)));
        }
        // Stored records are UTF-8 (the store checks at ingest); the
        // lossy path (slower) only runs for one that is not.
        match row.text {
            Some(t) => json.append_value(t),
            None => json.append_value(String::from_utf8_lossy(row.raw)),
        }
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(version.finish()), Arc::new(identity.finish()), Arc::new(time.finish())];
    columns.extend(texts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(readonly.finish()));
    columns.push(Arc::new(resources.finish()));
    columns.push(Arc::new(management.finish()));
    columns.extend(texts2.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(json.finish()));
    RecordBatch::try_new(schema(), columns).context("building the Parquet columns")
}

/// One Parquet file of `rows`, in order, on this thread (one row group).
pub fn encode(rows: &[Row<'_>]) -> Result<Vec<u8>> {
    let (file, columns) = ParquetFile::plan(&[rows])?;
    let group = columns.encode(0, rows)?;
    file.finish(vec![group])
}

/// A Parquet file being written row group by row group, so that the row
/// groups of a round's files (building their columns and compressing
/// them is most of the work) share every core: [`ParquetFile::plan`]
/// gives the file and its [`Columns`], any thread encodes a row group
/// with [`Columns::encode`], and [`ParquetFile::finish`] takes the groups
/// in order.
///
/// A row group is built and encoded on one thread, start to end: its
/// Arrow arrays and its column writers' buffers are then allocated,
/// grown and freed by that thread alone. Writers made on one thread and
/// grown on others had two threads waiting on the one allocator arena
/// that made them (a fifth of the encoding time went in that wait).
pub struct ParquetFile {
    writer: SerializedFileWriter<Vec<u8>>,
    groups: usize,
}

/// What encodes the row groups of one [`ParquetFile`], on any thread.
pub struct Columns {
    factory: ArrowRowGroupWriterFactory,
}

/// A row group's encoded column chunks, for [`ParquetFile::finish`].
pub struct Group {
    index: usize,
    chunks: Vec<ArrowColumnChunk>,
}

impl Columns {
    /// Row group `index` of the file: the columns of `rows`, encoded and
    /// compressed on this thread.
    pub fn encode(&self, index: usize, rows: &[Row<'_>]) -> Result<Group> {
        let batch = batch(rows)?;
        let schema = batch.schema();
        let mut writers = self.factory.create_column_writers(index)?.into_iter();
        let mut chunks = Vec::new();
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            for leaf in compute_leaves(field, column)? {
                let mut writer = writers.next().context("a column writer for every Parquet leaf column")?;
                writer.write(&leaf)?;
                chunks.push(writer.close()?);
            }
        }
        Ok(Group { index, chunks })
    }
}

impl ParquetFile {
    /// A file of one row group per item of `groups` (written as
    /// [`writer_properties`] says), and what encodes them.
    pub fn plan(groups: &[&[Row<'_>]]) -> Result<(ParquetFile, Columns)> {
        let rows = groups.iter().map(|g| g.len()).max().unwrap_or(1);
        // The file's buffer sized up front at its records' bytes (the
        // compressed columns are rarely larger): a growing buffer copies
        // all it holds at each doubling, into fresh pages. Capacity never
        // written is, for a buffer this size, mostly pages never touched.
        let records: usize = groups.iter().flat_map(|g| g.iter()).map(|r| r.raw.len()).sum();
        let buffer = Vec::with_capacity(records + 64 * 1024);
        // Through ArrowWriter, so that the file carries the Arrow schema
        // as ArrowWriter writes it.
        let (writer, factory) =
            ArrowWriter::try_new(buffer, schema(), Some(writer_properties(rows, ROUND_COMPRESSION)?))?.into_serialized_writer()?;
        Ok((ParquetFile { writer, groups: groups.len() }, Columns { factory }))
    }

    /// The file's bytes, from its row groups in order.
    pub fn finish(mut self, groups: Vec<Group>) -> Result<Vec<u8>> {
        if groups.len() != self.groups {
            anyhow::bail!("a Parquet file planned with {} row groups was given {}", self.groups, groups.len());
        }
        if let Some((i, g)) = groups.iter().enumerate().find(|(i, g)| g.index != *i) {
            anyhow::bail!("a Parquet file was given row group {} where row group {i} was expected", g.index);
        }
        for group in groups {
            let mut rg = self.writer.next_row_group()?;
            for c in group.chunks {
                c.append_to_row_group(&mut rg)?;
            }
            rg.close()?;
        }
        Ok(self.writer.into_inner()?)
    }
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
        let meta = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(encode(&[Row::new(a, 0)]).unwrap())).unwrap();
        assert_eq!(meta.metadata().row_group(0).column(0).compression(), ROUND_COMPRESSION);
    }

    // Goal: a file planned as several row groups, its row groups
    // encoded apart (as a round spreads them over threads), reads back
    // with every row in order, one row group per batch.
    #[test]
    fn row_groups_keep_rows_in_order() {
        let records: Vec<String> = (0..7).map(|i| format!(r#"{{"eventID":"e{i}","eventName":"N{}"}}"#, i % 2)).collect();
        let rows: Vec<Row> = records.iter().map(|r| Row::new(r.as_bytes(), 0)).collect();
        let groups: Vec<&[Row]> = rows.chunks(3).collect();
        let (file, columns) = ParquetFile::plan(&groups).unwrap();
        // Encoded on threads of their own, taken in the file's order.
        let columns = &columns;
        let encoded = std::thread::scope(|s| {
            let handles: Vec<_> =
                groups.iter().enumerate().rev().map(|(i, g)| (i, s.spawn(move || columns.encode(i, g).unwrap()))).collect();
            let mut done: Vec<(usize, Group)> = handles.into_iter().map(|(i, h)| (i, h.join().unwrap())).collect();
            done.sort_by_key(|(i, _)| *i);
            done.into_iter().map(|(_, g)| g).collect::<Vec<_>>()
        });
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file.finish(encoded).unwrap())).unwrap();
        assert_eq!(builder.metadata().num_row_groups(), 3);
        let mut ids = Vec::new();
        for b in builder.build().unwrap() {
            let b = b.unwrap();
            let col = b.column(b.schema().index_of("eventid").unwrap()).clone();
            let col = arrow_array::cast::AsArray::as_string::<i32>(&col);
            ids.extend((0..b.num_rows()).map(|i| col.value(i).to_string()));
        }
        assert_eq!(ids, (0..7).map(|i| format!("e{i}")).collect::<Vec<_>>());
    }

    // Goal: a row reads the members a full parse would (the last of a
    // repeated key, keys with escapes), and a record that is not an
    // object gets none.
    #[test]
    fn rows_read_members_once() {
        let r =
            br#"{"eventName":"A","eventName":"B","aws\u0052egion":"eu-west-1","recipientAccountId":"1","userIdentity":{"accountId":"2"}}"#;
        let row = Row::new(r, 0);
        assert_eq!(row.member(TEXTS + 1), Some(r#""B""#));
        assert_eq!(row.stream(), ("1".to_string(), "eu-west-1".to_string()));
        let none = Row::new(b"[1]", 0);
        assert!((0..RECORD_KEYS.len()).all(|i| none.member(i).is_none()));
        assert_eq!(none.stream(), ("000000000000".to_string(), "global".to_string()));
    }
}
