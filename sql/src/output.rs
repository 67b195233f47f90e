//! Query results as text: an aligned table, CSV (with a header), a JSON
//! array of objects, or one JSON object a line. CSV and NDJSON are
//! written batch by batch as results arrive; a table waits for all rows
//! (its columns are as wide as their widest value).

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder};

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
}

/// Writes result batches to `out` in a format.
pub struct ResultWriter<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Table(W, SchemaRef, Vec<RecordBatch>),
    /// (The schema, until a batch has written the header.)
    Csv(Box<datafusion::arrow::csv::Writer<W>>, Option<SchemaRef>),
    Json(datafusion::arrow::json::Writer<W, JsonArray>),
    Ndjson(datafusion::arrow::json::Writer<W, LineDelimited>),
}

impl<W: Write> ResultWriter<W> {
    pub fn new(out: W, schema: SchemaRef, format: Format) -> ResultWriter<W> {
        // JSON keeps explicit nulls, so every row has every column.
        let json = || WriterBuilder::new().with_explicit_nulls(true);
        let inner = match format {
            Format::Table => Inner::Table(out, schema, Vec::new()),
            Format::Csv => Inner::Csv(Box::new(datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(out)), Some(schema)),
            Format::Json => Inner::Json(json().build::<_, JsonArray>(out)),
            Format::Ndjson => Inner::Ndjson(json().build::<_, LineDelimited>(out)),
        };
        ResultWriter { inner }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        match &mut self.inner {
            Inner::Table(_, _, all) => all.push(batch.clone()),
            Inner::Csv(w, unwritten) => {
                w.write(batch)?;
                *unwritten = None;
            }
            Inner::Json(w) => w.write(batch)?,
            Inner::Ndjson(w) => w.write(batch)?,
        }
        Ok(())
    }

    /// Ends the output (a table is written now; a JSON array closed).
    pub fn finish(self) -> Result<(), ArrowError> {
        match self.inner {
            Inner::Table(mut out, schema, all) => {
                let rows: usize = all.iter().map(|b| b.num_rows()).sum();
                let table = datafusion::arrow::util::pretty::pretty_format_batches_with_schema(schema, &all)?.to_string();
                writeln!(out, "{table}")?;
                writeln!(out, "{rows} row{}", if rows == 1 { "" } else { "s" })?;
                out.flush()?;
            }
            Inner::Csv(mut w, unwritten) => {
                // No rows: the header alone.
                if let Some(schema) = unwritten {
                    w.write(&RecordBatch::new_empty(schema))?;
                }
                w.into_inner().flush()?
            }
            Inner::Json(mut w) => {
                w.finish()?;
                let mut out = w.into_inner();
                writeln!(out)?;
                out.flush()?;
            }
            Inner::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner().flush()?;
            }
        }
        Ok(())
    }
}

/// `eventtime` and other timestamps as Lake prints them:
/// `2026-01-02 03:04:05.678`.
const LAKE_TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S%.3f";

/// A batch's rows as text, the way Lake's GetQueryResults returns values
/// (every value a string; timestamps `2026-01-02 03:04:05.678`; structs
/// and lists in Arrow's display form); SQL NULL is `None`.
pub fn text_rows(batch: &RecordBatch) -> Result<Vec<Vec<Option<String>>>, ArrowError> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::new().with_timestamp_format(Some(LAKE_TIMESTAMP)).with_timestamp_tz_format(Some(LAKE_TIMESTAMP));
    let columns = batch.columns();
    let formatters = columns.iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|i| columns.iter().zip(&formatters).map(|(c, f)| (!c.is_null(i)).then(|| f.value(i).to_string())).collect())
        .collect())
}

/// Results as Arrow IPC streams of at most `max_bytes` each where rows
/// allow (the protocol's `QueryBatch` frames): each a whole stream
/// (schema, record batches, end marker) that a reader decodes on its own.
/// A slice whose stream is too large is halved until it fits or is one
/// row (a single row larger than `max_bytes` is its own stream: the
/// caller checks it against its frame limit). An empty `batch` still
/// gives one stream, for its schema.
pub fn ipc_streams(batch: &RecordBatch, max_bytes: usize) -> Result<Vec<Vec<u8>>, ArrowError> {
    fn encode(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        use datafusion::arrow::ipc::writer::StreamWriter;
        let mut w = StreamWriter::try_new(Vec::new(), &batch.schema())?;
        if batch.num_rows() > 0 {
            w.write(batch)?;
        }
        w.finish()?;
        w.into_inner()
    }
    fn split(batch: &RecordBatch, max_bytes: usize, out: &mut Vec<Vec<u8>>) -> Result<(), ArrowError> {
        let bytes = encode(batch)?;
        let rows = batch.num_rows();
        if bytes.len() <= max_bytes || rows <= 1 {
            out.push(bytes);
            return Ok(());
        }
        split(&batch.slice(0, rows / 2), max_bytes, out)?;
        split(&batch.slice(rows / 2, rows - rows / 2), max_bytes, out)
    }
    let mut out = Vec::new();
    // A first cut by the average row, so a large batch is not encoded
    // whole only to be halved.
    let rows = batch.num_rows();
    let per_row = batch.get_array_memory_size() / rows.max(1) + 1;
    let step = (max_bytes / per_row).clamp(1, rows.max(1));
    let mut at = 0;
    loop {
        let n = step.min(rows - at);
        split(&batch.slice(at, n), max_bytes, &mut out)?;
        at += n;
        if at >= rows {
            return Ok(out);
        }
    }
}

/// The schema and batches of one Arrow IPC stream from [`ipc_streams`].
/// The bytes come from a server: a malformed stream is an error, never a
/// panic (arrays are validated; a panic in the decoder is caught).
pub fn read_ipc_stream(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
    use datafusion::arrow::ipc::reader::StreamReader;
    let decode = || -> Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
        let r = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
        let schema = r.schema();
        let batches = r.collect::<Result<Vec<_>, _>>()?;
        Ok((schema, batches))
    };
    std::panic::catch_unwind(decode).unwrap_or_else(|_| Err(ArrowError::IpcError("a malformed Arrow IPC stream".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use std::sync::Arc;

    // Goal: a result splits into IPC streams that each decode on their
    // own to the same rows; bytes that are not such a stream (cut short,
    // garbled, garbage before or after a good one) are an error, never a
    // panic, and a good stream still decodes after a bad one.
    #[test]
    fn ipc_streams_round_trip_and_bad_bytes_are_errors() {
        let values: Vec<String> = (0..1000).map(|i| format!("value {i} {}", "x".repeat(i % 97))).collect();
        let column: ArrayRef = Arc::new(StringArray::from(values.clone()));
        let batch = RecordBatch::try_from_iter([("v", column)]).unwrap();
        let streams = ipc_streams(&batch, 8 << 10).unwrap();
        assert!(streams.len() > 1 && streams.iter().all(|s| s.len() <= 8 << 10), "{} streams", streams.len());
        let mut got = Vec::new();
        for s in &streams {
            let (schema, batches) = read_ipc_stream(s).unwrap();
            assert_eq!(schema, batch.schema());
            for b in batches {
                let a = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
                got.extend(a.iter().map(|v| v.unwrap().to_string()));
            }
        }
        assert_eq!(got, values);
        let good = &streams[0];
        let mut garbled = good.clone();
        for i in (good.len() / 2..good.len()).step_by(7) {
            garbled[i] ^= 0x5a;
        }
        for bad in [&good[..good.len() / 2], &garbled[..], b"not arrow", &[0xff; 64][..], &[][..], &[b"junk".as_slice(), good].concat()[..]]
        {
            assert!(read_ipc_stream(bad).is_err(), "{} bytes decoded", bad.len());
        }
        assert!(read_ipc_stream(good).is_ok(), "a good stream after bad ones");
    }
}
