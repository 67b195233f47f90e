//! CloudTrail Lake's functions that DataFusion lacks (Lake's SQL has
//! Presto's function vocabulary), so Lake's published queries run as
//! written apart from the table name:
//!
//! - `element_at(x, key)`: a member of a JSON object (the free-form
//!   columns are JSON text: a string's value, any other value's JSON text,
//!   NULL when absent), an element of a JSON array (1-based, negative from
//!   the end), or of a list column such as `resources` (DataFusion's).
//! - `json_extract_scalar(json, path)`, `json_extract(json, path)`: the
//!   value at a JSONPath (`$.a.b`, `$['a']`, `$.a[0]`): a scalar as text,
//!   or (json_extract) any value's JSON text.
//! - `date_add(unit, n, timestamp)`: `millisecond` ... `year`, months
//!   clamped to the month's last day, as Presto does.
//! - `from_iso8601_timestamp(text)`: an ISO 8601 instant (as CloudTrail
//!   writes eventTime) to a UTC timestamp.

use std::borrow::Cow;
use std::sync::Arc;

use cairn_deliver::format::{json_text, pick};
use chrono::{DateTime, Months, TimeDelta, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampMillisecondArray, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use serde_json::value::RawValue;

/// Every function of this module.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(ElementAt::new()),
        ScalarUDF::from(JsonExtract::new("json_extract_scalar", true)),
        ScalarUDF::from(JsonExtract::new("json_extract", false)),
        ScalarUDF::from(DateAdd::new()),
        ScalarUDF::from(FromIso8601::new()),
    ]
}

/// The arguments as arrays of `rows` rows.
fn arrays(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    ColumnarValue::values_to_arrays(&args.args)
}

/// A column as text values (any string type).
fn texts(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    let a = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
}

/// Whether every argument was a scalar (the result is one too).
fn all_scalar(args: &ScalarFunctionArgs) -> bool {
    args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

fn result(args: &ScalarFunctionArgs, out: ArrayRef) -> Result<ColumnarValue> {
    if all_scalar(args) {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
}

/// One step of a JSON path.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
}

/// Parses `$`, `.name`, `["name"]`, `['name']` and `[n]` steps.
fn path(p: &str) -> Option<Vec<Step>> {
    let mut rest = p.trim().strip_prefix('$')?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            out.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            let quoted = inner
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')));
            out.push(match quoted {
                Some(k) => Step::Key(k.to_string()),
                None => Step::Index(inner.parse().ok()?),
            });
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(out)
}

/// `v` if it is JSON text (Trino's JSON functions give NULL for text
/// that is not), for [`step`].
fn json_only(v: &str) -> Option<&str> {
    serde_json::from_str::<&RawValue>(v).ok().map(|_| v)
}

/// The JSON text of the member or element `step` of the JSON value `v`
/// (JSON text: see [`json_only`]).
fn step<'a>(v: &'a str, s: &Step) -> Option<&'a str> {
    match s {
        // Borrowed, the last of a repeated key (as a parse keeps). `pick`
        // does not check the values it skips: callers pass text checked by
        // [`json_only`].
        Step::Key(k) => pick(v.as_bytes(), &[k.as_str()])?[0],
        Step::Index(i) => {
            let items: Vec<&'a RawValue> = serde_json::from_str(v).ok()?;
            let i = if *i < 0 { items.len() as i64 + i } else { *i };
            items.get(usize::try_from(i).ok()?).map(|r| r.get())
        }
    }
}

/// A JSON value's text as a scalar result: a string's value, a number's
/// or boolean's text; `None` for null, objects and arrays.
fn scalar_text(v: &str) -> Option<String> {
    match v.trim_start().as_bytes().first()? {
        b'{' | b'[' => None,
        _ => json_text(v.trim()).map(Cow::into_owned),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ElementAt {
    signature: Signature,
}

impl ElementAt {
    fn new() -> ElementAt {
        ElementAt { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for ElementAt {
    fn name(&self) -> &str {
        "element_at"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        match &t[0] {
            x if is_text(x) => Ok(DataType::Utf8),
            DataType::List(f) | DataType::LargeList(f) => Ok(f.data_type().clone()),
            other => plan_err!("element_at: expected JSON text or a list, got {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !is_text(args.arg_fields[0].data_type()) {
            return datafusion::functions_nested::extract::array_element_udf().invoke_with_args(args);
        }
        let a = arrays(&args)?;
        let (json, key) = (texts(&a[0])?, &a[1]);
        let keys: Vec<Option<Step>> = if key.data_type().is_integer() {
            let k = datafusion::arrow::compute::cast(key, &DataType::Int64)?;
            k.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .iter()
                // Presto's element_at is 1-based, -1 the last.
                .map(|i| i.map(|i| Step::Index(if i > 0 { i - 1 } else { i })))
                .collect()
        } else {
            texts(key)?.into_iter().map(|k| k.map(Step::Key)).collect()
        };
        let out: StringArray = json
            .iter()
            .zip(&keys)
            .map(|(j, k)| match (j, k) {
                (Some(j), Some(k)) => step(json_only(j)?, k).and_then(|v| json_text(v).map(Cow::into_owned)),
                _ => None,
            })
            .collect();
        result(&args, Arc::new(out))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonExtract {
    name: &'static str,
    scalar: bool,
    signature: Signature,
}

impl JsonExtract {
    fn new(name: &'static str, scalar: bool) -> JsonExtract {
        JsonExtract { name, scalar, signature: Signature::string(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for JsonExtract {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let (json, paths) = (texts(&a[0])?, texts(&a[1])?);
        let mut out = Vec::with_capacity(json.len());
        for (j, p) in json.iter().zip(&paths) {
            let (Some(j), Some(p)) = (j, p) else {
                out.push(None);
                continue;
            };
            let Some(steps) = path(p) else { return exec_err!("{}: {p:?} is not a JSON path such as $.a.b or $.a[0]", self.name) };
            let mut v = json_only(j);
            for s in &steps {
                v = v.and_then(|v| step(v, s));
            }
            out.push(match v {
                Some(v) if self.scalar => scalar_text(v),
                Some(v) if v.trim() == "null" => None,
                Some(v) => Some(v.trim().to_string()),
                None => None,
            });
        }
        result(&args, Arc::new(StringArray::from(out)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DateAdd {
    signature: Signature,
}

impl DateAdd {
    fn new() -> DateAdd {
        DateAdd { signature: Signature::any(3, Volatility::Immutable) }
    }
}

/// `t` moved by `n` `unit`s (Presto's units); `None` out of range.
fn add(unit: &str, n: i64, t: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let delta = |ms: i64| Ok(n.checked_mul(ms).and_then(TimeDelta::try_milliseconds).and_then(|d| t.checked_add_signed(d)));
    let months = |m: i64| {
        let Some(total) = n.checked_mul(m) else { return Ok(None) };
        let by = Months::new(u32::try_from(total.unsigned_abs()).unwrap_or(u32::MAX));
        Ok(if total >= 0 { t.checked_add_months(by) } else { t.checked_sub_months(by) })
    };
    match unit.to_ascii_lowercase().as_str() {
        "millisecond" => delta(1),
        "second" => delta(1_000),
        "minute" => delta(60_000),
        "hour" => delta(3_600_000),
        "day" => delta(86_400_000),
        "week" => delta(7 * 86_400_000),
        "month" => months(1),
        "quarter" => months(3),
        "year" => months(12),
        other => exec_err!("date_add: unknown unit {other:?} (millisecond, second, minute, hour, day, week, month, quarter or year)"),
    }
}

impl ScalarUDFImpl for DateAdd {
    fn name(&self) -> &str {
        "date_add"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        if !is_text(&t[0]) || !(t[1].is_integer() || t[1] == DataType::Null) {
            return plan_err!("date_add(unit, n, timestamp): unit is text such as 'day', n an integer");
        }
        match &t[2] {
            DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(TimeUnit::Nanosecond, tz.clone())),
            DataType::Date32 | DataType::Date64 | DataType::Utf8 | DataType::Null => {
                Ok(DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())))
            }
            other => plan_err!("date_add: expected a timestamp, got {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let units = texts(&a[0])?;
        let n = datafusion::arrow::compute::cast(&a[1], &DataType::Int64)?;
        let n = n.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let ts = datafusion::arrow::compute::cast(&a[2], &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
        let ts = ts.as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>();
        let mut out = Vec::with_capacity(ts.len());
        for (i, unit) in units.iter().enumerate() {
            let (Some(unit), false, false) = (unit, n.is_null(i), ts.is_null(i)) else {
                out.push(None);
                continue;
            };
            let t = DateTime::<Utc>::from_timestamp_nanos(ts.value(i));
            out.push(add(unit, n.value(i), t)?.and_then(|t| t.timestamp_nanos_opt()));
        }
        let tz = match args.return_field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        result(&args, Arc::new(TimestampNanosecondArray::from(out).with_timezone_opt(tz)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FromIso8601 {
    signature: Signature,
}

impl FromIso8601 {
    fn new() -> FromIso8601 {
        FromIso8601 { signature: Signature::string(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for FromIso8601 {
    fn name(&self) -> &str {
        "from_iso8601_timestamp"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let mut out = Vec::new();
        for t in texts(&a[0])? {
            out.push(match t {
                Some(t) => match cairn_engine::event::parse_event_time(t.trim()) {
                    Some(ms) => Some(ms),
                    None => return exec_err!("from_iso8601_timestamp: {t:?} is not an ISO 8601 instant"),
                },
                None => None,
            });
        }
        result(&args, Arc::new(TimestampMillisecondArray::from(out).with_timezone("UTC")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: JSON paths and steps read members and elements as Presto does.
    #[test]
    fn json_paths() {
        assert_eq!(
            path("$.a.b[0]['c d'][\"e\"]").unwrap(),
            vec![Step::Key("a".into()), Step::Key("b".into()), Step::Index(0), Step::Key("c d".into()), Step::Key("e".into())]
        );
        assert!(path("a.b").is_none() && path("$..a").is_none() && path("$[x").is_none());
        let j = r#"{"a":{"b":[{"c d":{"e":"v\"1"}}, 2]},"n":null,"x":1,"x":2}"#;
        let mut v = Some(j);
        for s in path("$.a.b[0]['c d'].e").unwrap() {
            v = v.and_then(|v| step(v, &s));
        }
        assert_eq!(v.and_then(scalar_text).as_deref(), Some("v\"1"));
        assert_eq!(step(j, &Step::Key("x".into())), Some("2"), "the last of a repeated key");
        assert_eq!(step(r#"[1,2,3]"#, &Step::Index(-1)), Some("3"));
        assert_eq!(scalar_text(r#"{"a":1}"#), None);
        // Text that is not JSON gives nothing, though a scan could find "a".
        assert_eq!(json_only(r#"{"a": tru}"#), None);
        assert_eq!(json_only(j), Some(j));
    }

    // Goal: date_add moves by calendar months as Presto does.
    #[test]
    fn date_add_units() {
        let t = DateTime::parse_from_rfc3339("2024-01-31T10:00:00Z").unwrap().with_timezone(&Utc);
        let s = |u: &str, n: i64| add(u, n, t).unwrap().unwrap().to_rfc3339();
        assert_eq!(s("month", 1), "2024-02-29T10:00:00+00:00");
        assert_eq!(s("day", -1), "2024-01-30T10:00:00+00:00");
        assert_eq!(s("year", -1), "2023-01-31T10:00:00+00:00");
        assert!(add("fortnight", 1, t).is_err());
    }
}
