//! Bounds on what one call of a function may build. DataFusion's memory
//! pool counts sorts, joins and aggregations, not the values functions
//! compute: `range(0, 3000000000)` once took this machine's 24 GB before
//! failing, `lpad('x', 2000000000)` 8 GB. The functions whose result can
//! be far larger than their arguments are wrapped here: before a call,
//! those sized by a number (`repeat`, `lpad`, `rpad`, `array_repeat`,
//! `array_resize`, `range`, `generate_series`) are refused when that
//! number says the result would pass the limit; after any wrapped call
//! (also `replace`, `concat`, ... whose result grows with the query's
//! text), a result over the limit is refused. Either is the query's
//! `QueryResourcesExceededException`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type, TimeUnit};
use datafusion::common::{ExprSchema, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    StructFieldMapping,
};
use datafusion::prelude::SessionContext;

/// The functions wrapped: those a number sizes, then those whose result
/// grows with their arguments (text or arrays repeated, replaced, joined).
const WRAPPED: &[&str] = &[
    "repeat",
    "lpad",
    "rpad",
    "array_repeat",
    "array_resize",
    "range",
    "generate_series",
    "replace",
    "regexp_replace",
    "overlay",
    "concat",
    "concat_ws",
    "array_concat",
    "array_append",
    "array_prepend",
    "array_replace",
    "array_replace_n",
    "array_replace_all",
];

/// Replaces each of [`WRAPPED`] registered in `ctx` by a bounded copy:
/// one call's result at most `limit` bytes.
pub fn bound_functions(ctx: &SessionContext, limit: usize) {
    let state = ctx.state();
    let registered = state.scalar_functions();
    for name in WRAPPED {
        if let Some(f) = registered.get(*name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Bounded { inner: f.inner().clone().into(), limit }));
        }
    }
}

/// How this module's errors begin (so that the query's error says them
/// as they are, not as a memory pool's).
pub(crate) const FUNCTION: &str = "function result: ";

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
    limit: usize,
}

impl Bounded {
    fn too_big(&self, what: &str, bytes: u128) -> DataFusionError {
        DataFusionError::ResourcesExhausted(format!(
            "{FUNCTION}{}() {what} {bytes} bytes for one batch of rows; one call of a function may build at most {} bytes (a quarter of the query memory limit)",
            self.inner.name(),
            self.limit
        ))
    }

    /// A lower bound on the bytes of the result, from the numbers that
    /// size it: `None` when this function is not sized by one or its
    /// arguments are not plain integers (then only the result is checked).
    fn sized_by(&self, args: &ScalarFunctionArgs) -> Option<u128> {
        let a = &args.args;
        let rows = args.number_rows.max(1);
        match (self.inner.name(), a.len()) {
            // repeat(text, n): n copies of the text.
            ("repeat", 2) => Some(sum_of_products(&byte_lengths(&a[0])?, &integers(&a[1])?, rows)),
            // lpad/rpad(text, n[, fill]): n characters, at least a byte each.
            ("lpad" | "rpad", 2 | 3) => Some(sum_of_products(&PerRow::Const(1), &integers(&a[1])?, rows)),
            // array_repeat(element, n): n elements, at least a byte each (a
            // text element its length).
            ("array_repeat", 2) => {
                let each = byte_lengths(&a[0]).unwrap_or(PerRow::Const(1));
                Some(sum_of_products(&each.at_least(1), &integers(&a[1])?, rows))
            }
            // array_resize(array, n[, value]): n elements.
            ("array_resize", 2 | 3) => Some(sum_of_products(&PerRow::Const(1), &integers(&a[1])?, rows)),
            // range/generate_series([start,] stop[, step]): (stop - start) /
            // step values of 8 bytes, over integers, or dates and times with
            // an interval step.
            ("range" | "generate_series", 1..=3) => {
                let (start, stop, step) = range_args(a)?;
                let mut total = 0u128;
                for i in 0..rows {
                    let (b, e, s) = (start.get(i) as i128, stop.get(i) as i128, step.get(i) as i128);
                    if s != 0 && (e - b) / s > 0 {
                        total = total.saturating_add((e - b) as u128 / s.unsigned_abs() * 8);
                    }
                }
                Some(total)
            }
            _ => None,
        }
    }
}

/// One value per row of a batch: a constant (a scalar argument) or a
/// column.
#[derive(Clone)]
enum PerRow {
    Const(i64),
    Column(Arc<datafusion::arrow::array::PrimitiveArray<Int64Type>>),
}

impl PerRow {
    /// Row `i`'s value; a null (or a missing row) is 0.
    fn get(&self, i: usize) -> i64 {
        match self {
            PerRow::Const(v) => *v,
            PerRow::Column(c) if i < c.len() && c.is_valid(i) => c.value(i),
            PerRow::Column(_) => 0,
        }
    }

    fn at_least(self, min: i64) -> PerRow {
        match self {
            PerRow::Const(v) => PerRow::Const(v.max(min)),
            PerRow::Column(c) => PerRow::Column(Arc::new(c.unary(|v| v.max(min)))),
        }
    }
}

/// range()'s (start, stop, step) in one unit: integers as they are, dates
/// and times as nanoseconds with an interval step (a month counted as 31
/// days and a day as 25 hours, so that the count is never over-estimated).
/// `None` when they are neither.
fn range_args(a: &[ColumnarValue]) -> Option<(PerRow, PerRow, PerRow)> {
    if let Some(ints) = a.iter().map(integers).collect::<Option<Vec<_>>>() {
        return match <[PerRow; 3]>::try_from(ints) {
            Ok([start, stop, step]) => Some((start, stop, step)),
            Err(ints) => match <[PerRow; 2]>::try_from(ints) {
                Ok([start, stop]) => Some((start, stop, PerRow::Const(1))),
                Err(ints) => ints.into_iter().next().map(|stop| (PerRow::Const(0), stop, PerRow::Const(1))),
            },
        };
    }
    let [start, stop, ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(step)))] = a else { return None };
    const DAY: i64 = 25 * 3_600_000_000_000;
    let step = (step.months as i64 * 31 * DAY).saturating_add(step.days as i64 * DAY).saturating_add(step.nanoseconds);
    Some((nanoseconds(start)?, nanoseconds(stop)?, PerRow::Const(step)))
}

/// A date or time argument as nanoseconds since 1970.
fn nanoseconds(v: &ColumnarValue) -> Option<PerRow> {
    if !matches!(v.data_type(), DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)) {
        return None;
    }
    let ns = DataType::Timestamp(TimeUnit::Nanosecond, None);
    match v {
        ColumnarValue::Scalar(s) => match s.cast_to(&ns).ok()? {
            ScalarValue::TimestampNanosecond(n, _) => Some(PerRow::Const(n.unwrap_or(0))),
            _ => None,
        },
        ColumnarValue::Array(a) => {
            let a = cast(&cast(a, &ns).ok()?, &DataType::Int64).ok()?;
            Some(PerRow::Column(Arc::new(a.as_primitive::<Int64Type>().clone())))
        }
    }
}

/// An integer argument as 64-bit integers (`None` for any other type).
fn integers(v: &ColumnarValue) -> Option<PerRow> {
    if !v.data_type().is_integer() {
        return None;
    }
    Some(match v {
        ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(n) => PerRow::Const(n.unwrap_or(0)),
            _ => return None,
        },
        ColumnarValue::Array(a) => PerRow::Column(Arc::new(cast(a, &DataType::Int64).ok()?.as_primitive::<Int64Type>().clone())),
    })
}

/// A text (or binary) argument's length in bytes, per row (`None` for
/// any other type).
fn byte_lengths(v: &ColumnarValue) -> Option<PerRow> {
    Some(match v {
        ColumnarValue::Scalar(s) => PerRow::Const(match s {
            ScalarValue::Utf8(Some(t)) | ScalarValue::LargeUtf8(Some(t)) | ScalarValue::Utf8View(Some(t)) => t.len() as i64,
            ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) | ScalarValue::BinaryView(Some(b)) => b.len() as i64,
            _ => return None,
        }),
        ColumnarValue::Array(a) => {
            PerRow::Column(Arc::new(cast(&length(a).ok()?, &DataType::Int64).ok()?.as_primitive::<Int64Type>().clone()))
        }
    })
}

/// Σ over the rows of max(a, 0) × max(b, 0), saturating.
fn sum_of_products(a: &PerRow, b: &PerRow, rows: usize) -> u128 {
    (0..rows).fold(0u128, |t, i| t.saturating_add(a.get(i).max(0) as u128 * b.get(i).max(0) as u128))
}

/// The bytes a result takes.
fn result_bytes(v: &ColumnarValue) -> usize {
    match v {
        ColumnarValue::Array(a) => a.get_array_memory_size(),
        ColumnarValue::Scalar(s) => s.size(),
    }
}

// Delegates every method to the wrapped function (as DataFusion's own
// alias wrapper does) apart from `invoke_with_args`, which is checked.
#[warn(clippy::missing_trait_methods)]
impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn display_name(&self, args: &[Expr]) -> Result<String> {
        #[allow(deprecated)]
        self.inner.display_name(args)
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_nullable(&self, args: &[Expr], schema: &dyn ExprSchema) -> bool {
        #[allow(deprecated)]
        self.inner.is_nullable(args, schema)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let Some(bytes) = self.sized_by(&args) {
            if bytes > self.limit as u128 {
                return Err(self.too_big("would build at least", bytes));
            }
        }
        let out = self.inner.invoke_with_args(args)?;
        let bytes = result_bytes(&out);
        if bytes > self.limit {
            return Err(self.too_big("built", bytes as u128));
        }
        Ok(out)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner.with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Bounded { inner: updated.inner().clone().into(), limit: self.limit }))
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn preimage(&self, args: &[Expr], lit_expr: &Expr, info: &SimplifyContext) -> Result<PreimageResult> {
        self.inner.preimage(args, lit_expr, info)
    }

    fn conditional_arguments<'a>(&self, args: &'a [Expr]) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.conditional_arguments(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn evaluate_bounds(&self, input: &[&Interval]) -> Result<Interval> {
        self.inner.evaluate_bounds(input)
    }

    fn propagate_constraints(&self, interval: &Interval, inputs: &[&Interval]) -> Result<Option<Vec<Interval>>> {
        self.inner.propagate_constraints(interval, inputs)
    }

    fn struct_field_mapping(&self, literal_args: &[Option<ScalarValue>]) -> Option<StructFieldMapping> {
        self.inner.struct_field_mapping(literal_args)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.strictly_order_preserving(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.inner.placement(args)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cairn_engine::Store;
    use datafusion::arrow::util::display::array_value_to_string;

    use crate::{Limits, Sql, SqlError};

    /// The first column of the one row `q` answers, as text.
    fn one(rt: &tokio::runtime::Runtime, sql: &Sql, q: &str) -> String {
        let (_, batches) = rt.block_on(sql.collect(q)).unwrap_or_else(|e| panic!("{q}: {e}"));
        let b = batches.iter().find(|b| b.num_rows() > 0).unwrap_or_else(|| panic!("{q}: no row"));
        array_value_to_string(b.column(0), 0).unwrap()
    }

    // Goal: a query cannot make cairnd build a value of any size it asks
    // for (`range(0, 3000000000)` once took this machine's 24 GB, outside
    // the memory pool): a call that a number sizes past the bound is
    // refused before it is built, any wrapped call's result past it after,
    // as the query's QueryResourcesExceededException naming the function;
    // the same functions within it answer as DataFusion's do, and the next
    // query runs.
    #[test]
    fn a_function_result_past_the_bound_is_the_querys_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), cairn_engine::Options::default()).unwrap());
        let records: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"eventTime":"2026-01-01T00:{:02}:00Z","eventName":"GetObject","eventID":"e{i}","requestParameters":{{"bucketName":"b{i}","key":"{}"}}}}"#, i % 60, "k".repeat(100)))
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(|r| r.as_bytes()).collect();
        store.append(&refs).unwrap();
        // A bound of 4 MiB.
        let sql = Sql::new(store.clone(), Limits { memory_bytes: 16 << 20, ..Limits::default() }).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let long = "x".repeat(2000);
        let refused_before = [
            ("SELECT cardinality(range(0, 3000000000)) FROM events LIMIT 1", "range()"),
            ("SELECT cardinality(generate_series(5, 3000000000, 2)) FROM events LIMIT 1", "generate_series()"),
            (
                "SELECT cardinality(range(TIMESTAMP '1970-01-01T00:00:00', TIMESTAMP '2030-01-01T00:00:00', INTERVAL '1' SECOND)) FROM events LIMIT 1",
                "range()",
            ),
            ("SELECT cardinality(array_repeat('x', 3000000000)) FROM events LIMIT 1", "array_repeat()"),
            ("SELECT cardinality(array_resize(make_array(1), 3000000000, 0)) FROM events LIMIT 1", "array_resize()"),
            ("SELECT length(lpad('x', 2000000000)) FROM events LIMIT 1", "lpad()"),
            ("SELECT length(rpad(eventname, 2000000000, '-')) FROM events", "rpad()"),
            // Per row of a column: 200 records of ~250 bytes, 100,000 times.
            ("SELECT length(repeat(eventjson, 100000)) FROM events", "repeat()"),
        ];
        for (q, f) in refused_before {
            let e = rt.block_on(sql.collect(q)).unwrap_err();
            assert!(
                matches!(&e, SqlError::ResourcesExceeded(m) if m.starts_with(f) && m.contains("would build at least") && m.contains("4194304 bytes")),
                "{q}: {e}"
            );
        }
        // Grows with the query's text, not sized by a number: refused once
        // built (128 rows in the scan's first batch, each ~2,000 x 30).
        let q = format!("SELECT length(replace(eventjson, 'k', '{long}')) FROM events");
        let e = rt.block_on(sql.collect(&q)).unwrap_err();
        assert!(matches!(&e, SqlError::ResourcesExceeded(m) if m.starts_with("replace() built")), "{e}");
        // Within the bound they are DataFusion's functions.
        for (q, want) in [
            ("SELECT repeat('ab', 3)", "ababab"),
            ("SELECT lpad('x', 4, '-')", "---x"),
            ("SELECT rpad('x', 3)", "x  "),
            ("SELECT cardinality(range(0, 10, 3))", "4"),
            ("SELECT cardinality(generate_series(1, 1000))", "1000"),
            ("SELECT cardinality(range(DATE '2026-01-01', DATE '2026-02-01', INTERVAL '1' DAY))", "31"),
            ("SELECT cardinality(array_repeat(eventname, 3)) FROM events LIMIT 1", "3"),
            ("SELECT replace('a-b-c', '-', '+')", "a+b+c"),
            ("SELECT concat('a', 'b', 'c')", "abc"),
            ("SELECT max(length(repeat(eventjson, 10))) FROM events", &(records.iter().map(|r| r.len()).max().unwrap() * 10).to_string()),
            ("SELECT count(*) FROM events WHERE length(lpad(eventname, 20)) = 20", "200"),
        ] {
            assert_eq!(one(&rt, &sql, q), want, "{q}");
        }
    }
}
