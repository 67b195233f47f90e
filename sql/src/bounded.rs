//! Bounds on what the functions of a query may build. DataFusion's memory
//! pool counts sorts, joins and aggregations, not the values functions
//! compute: `range(0, 3000000000)` once took this machine's 24 GB before
//! failing, `lpad('x', 2000000000)` 8 GB.
//!
//! The functions whose result can be far larger than their arguments
//! ([`WRAPPED`]) are wrapped, and every call of them in a query's plan
//! (also those DataFusion's planner and simplifier make, e.g. for `||`)
//! shares the query memory limit: one call over one batch may build at
//! most `memory / (threads × calls)`, and a call whose arguments are all
//! constants (computed once, then repeated on every row of every batch)
//! an 8,192th of that. Before a call, a lower bound on its result is
//! computed from its arguments where one is known (`repeat`, `lpad`,
//! `rpad`, `array_repeat`, `array_resize`, `range`, `generate_series`,
//! `concat`, `concat_ws`, `replace`, `regexp_replace` with a constant
//! pattern, `array_to_string`) and a call past
//! the bound is refused before it builds anything; after any call, a
//! result past it is refused. Either is the query's
//! `QueryResourcesExceededException`.

use std::sync::Arc;

use datafusion::arrow::array::{make_array, Array, AsArray, StringArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{ExprSchema, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExpressionPlacement, LogicalPlan, Operator, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, StructFieldMapping,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::prelude::SessionContext;

/// The functions wrapped (by name; their aliases are the same function):
/// those a number sizes, those whose result grows with their arguments
/// (text or arrays repeated, replaced, joined, split).
pub(crate) const WRAPPED: &[&str] = &[
    "repeat",
    "lpad",
    "rpad",
    "array_repeat",
    "array_resize",
    "range",
    "generate_series",
    "replace",
    "regexp_replace",
    "regexp_match",
    "overlay",
    "concat",
    "concat_ws",
    ConcatOp::NAME,
    "make_array",
    "array_concat",
    "array_append",
    "array_prepend",
    "array_replace",
    "array_replace_n",
    "array_replace_all",
    "array_to_string",
    "string_to_array",
    "to_char",
];

/// Rows of a scan's largest batch (a constant is repeated on each).
const ROWS_MAX: usize = crate::table::BATCH_ROWS_MAX;

/// The estimate of a call that may never end.
const ENDLESS: u128 = u128::MAX;

/// How this module's errors begin (so that the query's error says them
/// as they are, not as a memory pool's).
pub(crate) const FUNCTION: &str = "function result: ";

/// Replaces each of [`WRAPPED`] registered in `ctx` by a bounded copy
/// whose call may build `limit` bytes (until [`BoundCalls`] shares the
/// budget among a plan's calls).
pub fn bound_functions(ctx: &SessionContext, limit: usize) {
    let state = ctx.state();
    let registered = state.scalar_functions();
    for name in WRAPPED {
        if let Some(f) = registered.get(*name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Bounded { inner: unwrapped(f).into(), limit }));
        }
    }
}

/// The function under any bound.
fn unwrapped(f: &ScalarUDF) -> Arc<dyn ScalarUDFImpl> {
    match f.inner().downcast_ref::<Bounded>() {
        Some(b) => Arc::clone(&b.inner),
        None => Arc::clone(f.inner()),
    }
}

/// `e` with each call of a [`WRAPPED`] function bounded at `limit` (also
/// those the planner or the simplifier made without the registry).
fn bound_calls(e: Expr, limit: usize) -> Result<Transformed<Expr>> {
    e.transform_up(|e| match e {
        Expr::ScalarFunction(f) if WRAPPED.contains(&f.func.name()) => {
            if f.func.inner().downcast_ref::<Bounded>().is_some_and(|b| b.limit == limit) {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            let func = Arc::new(ScalarUDF::new_from_impl(Bounded { inner: unwrapped(&f.func).into(), limit }));
            Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction { func, args: f.args })))
        }
        e => Ok(Transformed::no(e)),
    })
}

/// The optimizer rule (last of every query session's) that bounds every
/// call of a [`WRAPPED`] function in the plan, its subqueries included,
/// at an equal share of `budget`: the calls of one batch exist at once
/// (`make_array(repeat(..), repeat(..), ...)`).
#[derive(Debug)]
pub struct BoundCalls {
    /// The bytes all calls of one part of a query may build at once: the
    /// query memory limit over its threads.
    pub budget: usize,
}

impl OptimizerRule for BoundCalls {
    fn name(&self) -> &str {
        "cairn_bound_function_results"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let mut calls = 0usize;
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|e| {
                e.apply(|e| {
                    if is_bounded_call(e) {
                        calls += 1;
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        if calls == 0 {
            return Ok(Transformed::no(plan));
        }
        let limit = self.budget / calls;
        plan.transform_up_with_subqueries(|node| {
            // `||` becomes a call: what the expression is named (a
            // projection's column) stays.
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let name = names.save(&e);
                let t = e.transform_up(|e| match e {
                    Expr::BinaryExpr(b) if b.op == Operator::StringConcat => {
                        let func = Arc::new(ScalarUDF::new_from_impl(ConcatOp::new()));
                        Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction { func, args: vec![*b.left, *b.right] })))
                    }
                    e => Ok(Transformed::no(e)),
                })?;
                let t = t.transform_data(|e| bound_calls(e, limit))?;
                Ok(if t.transformed { t.update_data(|e| name.restore(e)) } else { t })
            })
        })
    }
}

/// A call [`BoundCalls`] bounds: of a [`WRAPPED`] function, or `a || b` on
/// text (the planner makes `||` on arrays a call of array_concat itself).
fn is_bounded_call(e: &Expr) -> bool {
    match e {
        Expr::ScalarFunction(f) => WRAPPED.contains(&f.func.name()),
        Expr::BinaryExpr(b) => b.op == Operator::StringConcat,
        _ => false,
    }
}

/// `a || b` on text as a function, so that it can be bounded: DataFusion's
/// concat(), NULL where either side is NULL (concat() leaves NULLs out).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ConcatOp {
    concat: UdfEq<Arc<dyn ScalarUDFImpl>>,
}

impl ConcatOp {
    const NAME: &'static str = "text_concat";

    fn new() -> ConcatOp {
        ConcatOp { concat: Arc::clone(datafusion::functions::string::concat().inner()).into() }
    }
}

impl ScalarUDFImpl for ConcatOp {
    fn name(&self) -> &str {
        ConcatOp::NAME
    }

    fn signature(&self) -> &Signature {
        self.concat.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.concat.return_type(arg_types)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.concat.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let null_scalar = args.args.iter().any(|a| matches!(a, ColumnarValue::Scalar(s) if s.is_null()));
        if null_scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(args.return_type())?));
        }
        let nulls = args.args.iter().fold(None, |acc, a| match a {
            ColumnarValue::Array(a) => NullBuffer::union(acc.as_ref(), a.logical_nulls().as_ref()),
            ColumnarValue::Scalar(_) => acc,
        });
        let out = self.concat.invoke_with_args(args)?;
        Ok(match (out, nulls) {
            (ColumnarValue::Array(out), Some(nulls)) if nulls.null_count() > 0 => {
                let nulls = NullBuffer::union(Some(&nulls), out.logical_nulls().as_ref());
                let data = out.to_data().into_builder().nulls(nulls).build()?;
                ColumnarValue::Array(make_array(data))
            }
            (out, _) => out,
        })
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
    /// Bytes one call over a batch may build.
    limit: usize,
}

impl Bounded {
    fn too_big(&self, what: &str, bytes: u128, limit: usize) -> DataFusionError {
        if bytes == ENDLESS {
            return DataFusionError::ResourcesExhausted(format!(
                "{FUNCTION}{}() with an interval step whose months, days and time differ in sign may never end; give the step in one unit",
                self.inner.name()
            ));
        }
        let whose = if limit < self.limit { " (its arguments are constants: computed once, repeated on every row)" } else { "" };
        DataFusionError::ResourcesExhausted(format!(
            "{FUNCTION}{} {what} {bytes} bytes for one batch of rows; this call may build at most {limit}{whose}: the query memory limit is shared by each part of the query (one a thread) and each call of repeat, lpad, concat, ||, replace, range and the like in it; use fewer such calls, smaller values, or raise the limit (cairnd --query-memory-mib)",
            match self.inner.name() {
                ConcatOp::NAME => "||".to_string(),
                name => format!("{name}()"),
            },
        ))
    }

    /// A lower bound on the bytes of the result, from the arguments:
    /// `None` when none is known for this function or these argument
    /// types (then only the result is checked).
    /// `limit` is the call's bound: what is surely within it is not
    /// counted.
    fn sized_by(&self, args: &ScalarFunctionArgs, limit: usize) -> Option<u128> {
        let a = &args.args;
        // A call on constants is computed once, whatever the batch.
        let rows = if a.iter().all(|v| matches!(v, ColumnarValue::Scalar(_))) { 1 } else { args.number_rows.max(1) };
        let each_row = |f: &dyn Fn(usize) -> Option<u128>| (0..rows).fold(0u128, |t, i| t.saturating_add(f(i).unwrap_or(0)));
        match (self.inner.name(), a.len()) {
            // repeat(text, n): n copies of the text.
            ("repeat", 2) => {
                let (text, n) = (byte_lengths(&a[0])?, integers(&a[1])?);
                Some(each_row(&|i| Some(text.get(i)? as u128 * n.get(i)?.max(0) as u128)))
            }
            // lpad/rpad(text, n[, fill]), array_resize(array, n[, value]):
            // n characters or elements, at least a byte each.
            ("lpad" | "rpad" | "array_resize", 2 | 3) => {
                let n = integers(&a[1])?;
                Some(each_row(&|i| Some(n.get(i)?.max(0) as u128)))
            }
            // array_repeat(element, n): n elements, at least a byte each
            // (a text element its length).
            ("array_repeat", 2) => {
                let each = byte_lengths(&a[0]);
                let n = integers(&a[1])?;
                Some(each_row(&|i| {
                    let size = each.as_ref().map_or(Some(1), |e| e.get(i))?.max(1);
                    Some(size as u128 * n.get(i)?.max(0) as u128)
                }))
            }
            // range/generate_series([start,] stop[, step]): (stop - start)
            // / step values, 8 bytes each (a date 4).
            ("range" | "generate_series", 1..=3) => {
                let RangeArgs::Values { start, stop, step, width } = range_args(a)? else { return Some(ENDLESS) };
                Some(each_row(&|i| {
                    let (b, e, s) = (start.get(i)? as i128, stop.get(i)? as i128, step.get(i)? as i128);
                    let n = if s == 0 { 0 } else { (e - b) / s };
                    Some(n.max(0) as u128 * width)
                }))
            }
            // concat(a, b, ...), concat_ws(sep, a, b, ...), a || b,
            // make_array(a, b, ...) of text: at least every argument
            // joined (NULLs are left out).
            ("concat" | ConcatOp::NAME | "make_array", _) | ("concat_ws", 2..) => {
                let skip = usize::from(self.inner.name() == "concat_ws");
                let parts = a[skip..].iter().map(byte_lengths).collect::<Option<Vec<_>>>()?;
                Some(each_row(&|i| Some(parts.iter().map(|p| p.get(i).unwrap_or(0) as u128).sum())))
            }
            // replace(text, from, to): exactly, from the matches.
            ("replace", 3) => {
                // At most every byte replaced by `to`: when that is within
                // the bound, the matches are not counted.
                let (lengths, to_lengths) = (byte_lengths(&a[0])?, byte_lengths(&a[2])?);
                if surely_within(rows, limit, &lengths, &|i| to_lengths.get(i).unwrap_or(0) as u128) {
                    return None;
                }
                let (text, from, to) = (strings(&a[0])?, strings(&a[1])?, strings(&a[2])?);
                Some(each_row(&|i| {
                    let (t, f, to) = (text.get(i)?, from.get(i)?, to.get(i)?);
                    // An empty `from` leaves the text as it is.
                    let matches = if f.is_empty() { 0 } else { t.matches(f).count() as u128 };
                    Some((t.len() as u128 + matches * to.len() as u128).saturating_sub(matches * f.len() as u128))
                }))
            }
            // regexp_replace(text, pattern, replacement[, flags]), with a
            // constant pattern: from the matches, when the replacement
            // could grow the text past the bound at all.
            ("regexp_replace", 3 | 4) => {
                let [ColumnarValue::Scalar(pattern), ColumnarValue::Scalar(replacement), flags @ ..] = &a[1..] else { return None };
                let (pattern, replacement) = (scalar_text(pattern)?, scalar_text(replacement)?);
                let flags = match flags {
                    [ColumnarValue::Scalar(f)] => scalar_text(f)?,
                    [] => "",
                    _ => return None,
                };
                let replacement = Replacement::parse(replacement);
                let literal = replacement.literal as u128;
                // The most any row could grow to, group references
                // copying the whole text: when within the bound, nothing
                // is counted.
                let refs = replacement.groups.len() as u128;
                let lengths = byte_lengths(&a[0])?;
                if surely_within(rows, limit, &lengths, &|i| literal + refs.saturating_mul(lengths.get(i).unwrap_or(0) as u128)) {
                    return None;
                }
                let text = strings(&a[0])?;
                let own: String = flags.chars().filter(|&c| c != 'g').collect();
                let re = regex::Regex::new(&if own.is_empty() { pattern.to_string() } else { format!("(?{own}){pattern}") }).ok()?;
                let take = if flags.contains('g') { usize::MAX } else { 1 };
                let groups: Vec<Option<usize>> = replacement
                    .groups
                    .iter()
                    .map(|g| match g {
                        Group::Index(i) => Some(*i),
                        Group::Name(n) => re.capture_names().position(|c| c == Some(n.as_str())),
                    })
                    .collect();
                Some(each_row(&|i| {
                    let t = text.get(i)?;
                    let (mut matched, mut written) = (0u128, 0u128);
                    if groups.is_empty() {
                        for m in re.find_iter(t).take(take) {
                            matched += m.len() as u128;
                            written += literal;
                        }
                    } else {
                        for c in re.captures_iter(t).take(take) {
                            matched += c.get(0).map_or(0, |m| m.len()) as u128;
                            let copied: usize = groups.iter().flatten().filter_map(|&g| c.get(g)).map(|m| m.len()).sum();
                            written = written.saturating_add(literal + copied as u128);
                        }
                    }
                    Some((t.len() as u128).saturating_add(written).saturating_sub(matched))
                }))
            }
            // array_to_string(array, delimiter[, null]): a delimiter
            // between elements.
            ("array_to_string", 2 | 3) => {
                let (elements, delimiter) = (list_lengths(&a[0])?, byte_lengths(&a[1])?);
                Some(each_row(&|i| Some(elements.get(i)?.saturating_sub(1).max(0) as u128 * delimiter.get(i)? as u128)))
            }
            _ => None,
        }
    }
}

/// One value per row of a batch: a constant (a scalar argument) or a
/// column.
#[derive(Clone)]
enum PerRow {
    Const(Option<i64>),
    Column(Arc<datafusion::arrow::array::PrimitiveArray<Int64Type>>),
}

impl PerRow {
    /// Row `i`'s value; `None` for a NULL.
    fn get(&self, i: usize) -> Option<i64> {
        match self {
            PerRow::Const(v) => *v,
            PerRow::Column(c) => (i < c.len() && c.is_valid(i)).then(|| c.value(i)),
        }
    }
}

/// range()'s (start, stop, step) in one unit, and the bytes of a value:
/// integers as they are, dates in days, times in nanoseconds, with an
/// interval step (a month counted as 31 days and a day as 25 hours, so
/// that the count is never over-estimated). `None` for other types.
/// A step of mixed signs is [`RangeArgs::Endless`].
fn range_args(a: &[ColumnarValue]) -> Option<RangeArgs> {
    if let Some(ints) = a.iter().map(integers).collect::<Option<Vec<_>>>() {
        let mut ints = ints.into_iter();
        let (start, stop, step) = match (ints.next(), ints.next(), ints.next()) {
            (Some(stop), None, None) => (PerRow::Const(Some(0)), stop, PerRow::Const(Some(1))),
            (Some(start), Some(stop), None) => (start, stop, PerRow::Const(Some(1))),
            (Some(start), Some(stop), Some(step)) => (start, stop, step),
            _ => return None,
        };
        return Some(RangeArgs::Values { start, stop, step, width: 8 });
    }
    let [start, stop, step] = a else { return None };
    let dates = start.data_type() == DataType::Date32 && stop.data_type() == DataType::Date32;
    let (unit, width) = if dates { (DataType::Int32, 4) } else { (DataType::Timestamp(TimeUnit::Nanosecond, None), 8) };
    // A step in the unit, `None` when its parts differ in sign.
    let in_unit = |v: IntervalMonthDayNano| -> Option<i64> {
        let parts = [i128::from(v.months), i128::from(v.days), i128::from(v.nanoseconds)];
        if parts.iter().any(|&p| p > 0) && parts.iter().any(|&p| p < 0) {
            return None;
        }
        const DAY: i128 = 25 * 3_600_000_000_000;
        // A step of less than a day is refused by range() over dates.
        let step = if dates { parts[0] * 31 + parts[1] } else { parts[0] * 31 * DAY + parts[1] * DAY + parts[2] };
        Some(i64::try_from(step).unwrap_or(if step < 0 { i64::MIN } else { i64::MAX }))
    };
    let step = match step {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(v)) => match v.map(in_unit) {
            Some(None) => return Some(RangeArgs::Endless),
            v => PerRow::Const(v.flatten()),
        },
        ColumnarValue::Array(s) if s.data_type() == &DataType::Interval(IntervalUnit::MonthDayNano) => {
            let s = s.as_primitive::<IntervalMonthDayNanoType>();
            if s.iter().flatten().any(|v| in_unit(v).is_none()) {
                return Some(RangeArgs::Endless);
            }
            PerRow::Column(Arc::new(s.unary(|v| in_unit(v).unwrap_or(0))))
        }
        _ => return None,
    };
    Some(RangeArgs::Values { start: instants(start, &unit)?, stop: instants(stop, &unit)?, step, width })
}

/// range()'s arguments for its bound.
enum RangeArgs {
    /// (start, stop, step) in one unit, and the bytes of a value.
    Values { start: PerRow, stop: PerRow, step: PerRow, width: u128 },
    /// An interval step whose months, days and time differ in sign
    /// (`INTERVAL '1' MONTH - INTERVAL '31' DAY`): DataFusion's range()
    /// can step back to where it was and never end.
    Endless,
}

/// A date (as days, `unit` Int32) or time (as nanoseconds) argument.
fn instants(v: &ColumnarValue, unit: &DataType) -> Option<PerRow> {
    if !matches!(v.data_type(), DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)) {
        return None;
    }
    match v {
        ColumnarValue::Scalar(s) => integers(&ColumnarValue::Scalar(s.cast_to(unit).ok()?.cast_to(&DataType::Int64).ok()?)),
        ColumnarValue::Array(a) => {
            Some(PerRow::Column(Arc::new(cast(&cast(a, unit).ok()?, &DataType::Int64).ok()?.as_primitive::<Int64Type>().clone())))
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
            ScalarValue::Int64(n) => PerRow::Const(n),
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
            ScalarValue::Utf8(t) | ScalarValue::LargeUtf8(t) | ScalarValue::Utf8View(t) => t.as_ref().map(|t| t.len() as i64),
            ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) => b.as_ref().map(|b| b.len() as i64),
            _ => return None,
        }),
        ColumnarValue::Array(a) => {
            PerRow::Column(Arc::new(cast(&length(a).ok()?, &DataType::Int64).ok()?.as_primitive::<Int64Type>().clone()))
        }
    })
}

/// A list argument's element counts, per row (`None` for other types).
fn list_lengths(v: &ColumnarValue) -> Option<PerRow> {
    match v {
        ColumnarValue::Scalar(s) => list_lengths(&ColumnarValue::Array(s.to_array().ok()?)).map(|l| PerRow::Const(l.get(0))),
        ColumnarValue::Array(a) => match a.data_type() {
            DataType::List(_) | DataType::LargeList(_) => {
                Some(PerRow::Column(Arc::new(cast(&length(a).ok()?, &DataType::Int64).ok()?.as_primitive::<Int64Type>().clone())))
            }
            _ => None,
        },
    }
}

/// A constant text argument (`None` for NULL or another type).
fn scalar_text(s: &ScalarValue) -> Option<&str> {
    match s {
        ScalarValue::Utf8(t) | ScalarValue::LargeUtf8(t) | ScalarValue::Utf8View(t) => t.as_deref(),
        _ => None,
    }
}

/// Whether a replacement that writes at most `per_place(i)` bytes at each
/// of the `len + 1` places of row i's text (every byte replaced, an empty
/// match at each place) surely stays within `limit`: from the lengths
/// alone, before a text is copied or a match counted.
fn surely_within(rows: usize, limit: usize, lengths: &PerRow, per_place: &dyn Fn(usize) -> u128) -> bool {
    let upper = (0..rows).fold(0u128, |t, i| {
        let len = lengths.get(i).unwrap_or(0).max(0) as u128;
        t.saturating_add((len + 1).saturating_mul(per_place(i).saturating_add(1)))
    });
    upper <= limit as u128
}

/// A regexp_replace() replacement as DataFusion 55 and the regex crate
/// write it: `\\N` (one or two backslashes) is group N; `$$` is `$`;
/// `${name}` and `$name` (the longest run of `[_0-9A-Za-z]`) are a group,
/// by number when all digits; a `$` that starts none of these is itself.
struct Replacement {
    /// Bytes written as they are, each match.
    literal: usize,
    /// The groups copied, each match.
    groups: Vec<Group>,
}

enum Group {
    Index(usize),
    Name(String),
}

impl Replacement {
    fn parse(text: &str) -> Replacement {
        let group = |name: &str| match name.parse::<usize>() {
            Ok(i) => Group::Index(i),
            Err(_) => Group::Name(name.to_string()),
        };
        let b = text.as_bytes();
        let (mut literal, mut groups, mut i) = (0, Vec::new(), 0);
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        while i < b.len() {
            match b[i] {
                b'\\' => {
                    let slashes = if b.get(i + 1) == Some(&b'\\') { 2 } else { 1 };
                    let digits = b[i + slashes..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if digits > 0 {
                        groups.push(group(&text[i + slashes..i + slashes + digits]));
                        i += slashes + digits;
                    } else {
                        literal += 1;
                        i += 1;
                    }
                }
                b'$' if b.get(i + 1) == Some(&b'$') => {
                    literal += 1;
                    i += 2;
                }
                b'$' if b.get(i + 1) == Some(&b'{') => match b[i + 2..].iter().position(|&c| c == b'}') {
                    Some(end) => {
                        groups.push(group(&text[i + 2..i + 2 + end]));
                        i += end + 3;
                    }
                    None => {
                        literal += 1;
                        i += 1;
                    }
                },
                b'$' => {
                    let n = b[i + 1..].iter().take_while(|&&c| word(c)).count();
                    if n > 0 {
                        groups.push(group(&text[i + 1..i + 1 + n]));
                        i += n + 1;
                    } else {
                        literal += 1;
                        i += 1;
                    }
                }
                _ => {
                    literal += 1;
                    i += 1;
                }
            }
        }
        Replacement { literal, groups }
    }
}

/// A text argument, per row (`None` for other types).
enum Texts {
    Const(Option<String>),
    Column(StringArray),
}

impl Texts {
    fn get(&self, i: usize) -> Option<&str> {
        match self {
            Texts::Const(t) => t.as_deref(),
            Texts::Column(c) => (i < c.len() && c.is_valid(i)).then(|| c.value(i)),
        }
    }
}

fn strings(v: &ColumnarValue) -> Option<Texts> {
    Some(match v {
        ColumnarValue::Scalar(ScalarValue::Utf8(t) | ScalarValue::LargeUtf8(t) | ScalarValue::Utf8View(t)) => Texts::Const(t.clone()),
        ColumnarValue::Array(a) if matches!(a.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
            Texts::Column(cast(a, &DataType::Utf8).ok()?.as_string::<i32>().clone())
        }
        _ => return None,
    })
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
        // A result computed from constants alone is repeated on every row.
        let constant = args.args.iter().all(|v| matches!(v, ColumnarValue::Scalar(_)));
        let limit = if constant { self.limit / ROWS_MAX } else { self.limit };
        if let Some(bytes) = self.sized_by(&args, limit) {
            if bytes > limit as u128 {
                return Err(self.too_big("would build at least", bytes, limit));
            }
        }
        let out = self.inner.invoke_with_args(args)?;
        let bytes = result_bytes(&out);
        if bytes > limit {
            return Err(self.too_big("built", bytes as u128, limit));
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

    // What the function simplifies to (`concat` and `concat_ws` to their
    // own unregistered copies) stays bounded.
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        Ok(match self.inner.simplify(args, info)? {
            ExprSimplifyResult::Simplified(e) => ExprSimplifyResult::Simplified(bound_calls(e, self.limit)?.data),
            original => original,
        })
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
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Expr;

    use super::{Bounded, WRAPPED};
    use crate::{Limits, Sql, SqlError};

    /// The first column of the one row `q` answers, as text.
    fn one(rt: &tokio::runtime::Runtime, sql: &Sql, q: &str) -> String {
        let (_, batches) = rt.block_on(sql.collect(q)).unwrap_or_else(|e| panic!("{q}: {e}"));
        let b = batches.iter().find(|b| b.num_rows() > 0).unwrap_or_else(|| panic!("{q}: no row"));
        array_value_to_string(b.column(0), 0).unwrap()
    }

    fn store_of(records: &[String]) -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), cairn_engine::Options::default()).unwrap());
        let refs: Vec<&[u8]> = records.iter().map(|r| r.as_bytes()).collect();
        store.append(&refs).unwrap();
        (dir, store)
    }

    // Goal: a query cannot make the process build a value of any size it
    // asks for (`range(0, 3000000000)` once took this machine's 24 GB,
    // outside the memory pool): a call whose arguments say it would pass
    // its share of the limit is refused before it is built, any wrapped
    // call's result past it after, as the query's
    // QueryResourcesExceededException naming the function; the same
    // functions within it answer as DataFusion's do (descending ranges,
    // NULLs), and the next query runs.
    #[test]
    fn a_function_result_past_the_bound_is_the_querys_error() {
        let records: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"eventTime":"2026-01-01T00:{:02}:00Z","eventName":"GetObject","eventID":"e{i}","requestParameters":{{"bucketName":"b{i}","key":"{}"}}}}"#, i % 60, "k".repeat(1000)))
            .collect();
        let (_dir, store) = store_of(&records);
        // The default limit on 2 threads: 256 MiB a call over a batch;
        // 32 KiB a call on constants alone.
        let sql = Sql::new(store.clone(), Limits { memory_bytes: 512 << 20, threads: 2, ..Limits::default() }).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let long = "x".repeat(5000);
        let replace = format!("SELECT length(replace(eventjson, 'k', '{long}')) FROM events");
        let regexp = format!("SELECT length(regexp_replace(eventjson, '', '{long}', 'g')) FROM events");
        let copies = format!("SELECT length(regexp_replace(eventjson, '^(.*)$', '{}')) FROM events", "\\1".repeat(3000));
        let (constants, columns) = (32 << 10, 256 << 20);
        let refused_before = [
            ("SELECT cardinality(range(0, 3000000000)) FROM events LIMIT 1", "range()", constants),
            ("SELECT cardinality(generate_series(5, 3000000000, 2)) FROM events LIMIT 1", "generate_series()", constants),
            (
                "SELECT cardinality(range(TIMESTAMP '1970-01-01T00:00:00', TIMESTAMP '2030-01-01T00:00:00', INTERVAL '1' SECOND)) FROM events LIMIT 1",
                "range()",
                constants,
            ),
            ("SELECT cardinality(array_repeat('x', 3000000000)) FROM events LIMIT 1", "array_repeat()", constants),
            ("SELECT cardinality(array_resize(make_array(1), 3000000000, 0)) FROM events LIMIT 1", "array_resize()", constants),
            ("SELECT length(lpad('x', 2000000000)) FROM events LIMIT 1", "lpad()", constants),
            // A constant of 40,000 bytes would be 320 MB over 8,192 rows.
            ("SELECT length(repeat('x', 40000)) FROM events", "repeat()", constants),
            ("SELECT length(rpad(eventname, 2000000000, '-')) FROM events", "rpad()", columns),
            // A step given per row: a second over 230 years.
            (
                "SELECT cardinality(range(TIMESTAMP '1970-01-01T00:00:00', TIMESTAMP '2200-01-01T00:00:00', CASE WHEN eventname = 'x' THEN INTERVAL '1' DAY ELSE INTERVAL '1' SECOND END)) FROM events",
                "range()",
                columns,
            ),
            // Per row of a column: 128 records of ~1,100 bytes, 100,000 times.
            ("SELECT length(repeat(eventjson, 100000)) FROM events", "repeat()", columns),
            // 128 records with 1,000 'k's each, each one 5,000 bytes.
            (replace.as_str(), "replace()", columns),
            // 5,000 bytes at each of the ~1,100 places of 128 records.
            (regexp.as_str(), "regexp_replace()", columns),
            // Each record copied 3,000 times by group references.
            (copies.as_str(), "regexp_replace()", columns),
        ];
        for (q, f, limit) in refused_before {
            let e = rt.block_on(sql.collect(q)).unwrap_err();
            assert!(
                matches!(&e, SqlError::ResourcesExceeded(m) if m.starts_with(&format!("{f} would build at least")) && m.contains(&format!("at most {limit}"))),
                "{q}: {e}"
            );
        }
        // A chain of || on text: each link a call, sharing the bound.
        let chain = format!("SELECT length({}eventjson) FROM events", "eventjson || ".repeat(60));
        let e = rt.block_on(sql.collect(&chain)).unwrap_err();
        assert!(matches!(&e, SqlError::ResourcesExceeded(m) if m.starts_with("|| would build at least")), "{e}");
        // || stays ||: NULL where either side is, and its column's name.
        assert_eq!(one(&rt, &sql, "SELECT count(*) FROM events WHERE (errorcode || 'x') IS NULL"), "200");
        assert_eq!(one(&rt, &sql, "SELECT eventname || '-' || eventid FROM events WHERE eventid = 'e7'"), "GetObject-e7");
        let (schema, _) = rt.block_on(sql.collect("SELECT eventname || 'x' FROM events LIMIT 1")).unwrap();
        assert_eq!(schema.field(0).name(), "events.eventname || Utf8(\"x\")");
        // A step of mixed signs can bring DataFusion's range() back to
        // where it was: refused, not run.
        for q in [
            "SELECT cardinality(range(DATE '2026-01-01', DATE '2026-03-01', INTERVAL '1' MONTH - INTERVAL '31' DAY))",
            "SELECT cardinality(range(TIMESTAMP '2026-01-29T00:00:00', TIMESTAMP '2026-06-01T00:00:00', INTERVAL '1 month -30 days')) FROM events",
        ] {
            let e = rt.block_on(sql.collect(q)).unwrap_err();
            assert!(matches!(&e, SqlError::ResourcesExceeded(m) if m.starts_with("range() with an interval step whose months, days and time differ in sign")), "{q}: {e}");
        }
        // No bound known before the call (a replacement that is not a
        // constant): refused once built (with a limit of 4 MiB for each of
        // the two calls, against 128 records each ~500 KB).
        let small = Sql::new(store.clone(), Limits { memory_bytes: 16 << 20, threads: 2, ..Limits::default() }).unwrap();
        let q = format!("SELECT length(regexp_replace(eventjson, 'k{{10}}', concat(eventname, '{long}'), 'g')) FROM events");
        let e = rt.block_on(small.collect(&q)).unwrap_err();
        assert!(matches!(&e, SqlError::ResourcesExceeded(m) if m.starts_with("regexp_replace() built")), "{e}");
        // Within the bound they are DataFusion's functions.
        for (q, want) in [
            ("SELECT repeat('ab', 3)", "ababab"),
            ("SELECT lpad('x', 4, '-')", "---x"),
            ("SELECT rpad('x', 3)", "x  "),
            ("SELECT cardinality(range(0, 10, 3))", "4"),
            ("SELECT cardinality(range(10, 0, -1))", "10"),
            ("SELECT cardinality(generate_series(1, 1000))", "1000"),
            ("SELECT cardinality(range(DATE '2026-01-01', DATE '2026-02-01', INTERVAL '1' DAY))", "31"),
            ("SELECT cardinality(range(DATE '2026-02-01', DATE '2026-01-01', INTERVAL '-1' DAY))", "31"),
            ("SELECT range(CAST(NULL AS BIGINT), 3000000000) IS NULL", "true"),
            ("SELECT cardinality(array_repeat(eventname, 3)) FROM events LIMIT 1", "3"),
            ("SELECT replace('a-b-c', '-', '+')", "a+b+c"),
            (
                "SELECT max(length(replace(eventjson, '', 'xxxxxxxxxx'))) FROM events",
                &records.iter().map(|r| r.len()).max().unwrap().to_string(),
            ),
            ("SELECT regexp_replace('a-b-c', '(b)', '[\\1$1]', 'g')", "a-[bb]-c"),
            ("SELECT regexp_replace('a-b-c', '(?P<x>b)', '<\\\\1${x}$x$$$>')", "a-<bbb$$>-c"),
            (
                "SELECT max(length(regexp_replace(eventjson, 'k', 'kk', 'g'))) FROM events",
                &records.iter().map(|r| r.len() + r.matches('k').count()).max().unwrap().to_string(),
            ),
            ("SELECT concat('a', 'b', 'c')", "abc"),
            ("SELECT array_to_string(make_array(1, 2, 3), '--')", "1--2--3"),
            ("SELECT max(length(repeat(eventjson, 10))) FROM events", &(records.iter().map(|r| r.len()).max().unwrap() * 10).to_string()),
            ("SELECT count(*) FROM events WHERE length(lpad(eventname, 20)) = 20", "200"),
        ] {
            assert_eq!(one(&rt, &sql, q), want, "{q}");
        }
    }

    // Goal: a regexp replacement is read as DataFusion and the regex
    // crate write it, so that the bound counts what each match writes.
    #[test]
    fn replacements_are_parsed_as_the_regex_crate_expands_them() {
        for (text, literal, groups) in [
            ("plain", 5, vec![]),
            ("<\\1>", 2, vec!["1"]),
            ("\\\\12x", 1, vec!["12"]),
            ("\\\\\\1", 1, vec!["1"]),
            ("\\x", 2, vec![]),
            ("$1$name ${n m}$$", 2, vec!["1", "name", "n m"]),
            ("${unclosed", 10, vec![]),
            ("$ $-", 4, vec![]),
        ] {
            let r = super::Replacement::parse(text);
            let names: Vec<String> = r
                .groups
                .iter()
                .map(|g| match g {
                    super::Group::Index(i) => i.to_string(),
                    super::Group::Name(n) => n.clone(),
                })
                .collect();
            assert_eq!((r.literal, names), (literal, groups.iter().map(|g| g.to_string()).collect::<Vec<_>>()), "{text}");
        }
    }

    // Goal: every call of a wrapped function in a query's optimized plan
    // is bounded, at an equal share of the budget, also the calls
    // DataFusion makes itself (`||` on arrays, OVERLAY ... PLACING,
    // concat and concat_ws simplified to their own copies) and those in
    // subqueries: the calls of one batch exist at once
    // (make_array(repeat(..), repeat(..), ...)).
    #[test]
    fn every_call_in_a_plan_shares_the_bound() {
        let (_dir, store) = store_of(&[r#"{"eventTime":"2026-01-01T00:00:00Z","eventName":"GetObject","eventID":"e1"}"#.to_string()]);
        let sql = Sql::new(store, Limits { memory_bytes: 64 << 20, threads: 2, ..Limits::default() }).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let budget = 32 << 20;
        for (q, calls) in [
            ("SELECT make_array(eventname) || make_array(eventjson) FROM events", 3),
            ("SELECT make_array(eventname) || eventjson FROM events", 2),
            ("SELECT overlay(eventjson PLACING eventname FROM 2) FROM events", 1),
            ("SELECT concat(eventjson, 'a', 'b', NULL) FROM events", 1),
            ("SELECT concat_ws('-', eventjson, eventname) FROM events", 1),
            ("SELECT make_array(repeat(eventjson, 2), repeat(eventjson, 3), lpad(eventname, 9)) FROM events", 4),
            ("SELECT eventname FROM events WHERE eventjson IN (SELECT replace(eventjson, 'a', 'b') FROM events)", 1),
            ("SELECT eventname || '-' || eventjson FROM events", 2),
            ("SELECT make_array(eventjson, eventname, eventjson) FROM events", 1),
        ] {
            let state = sql.ctx.state();
            let plan = rt.block_on(state.create_logical_plan(q)).unwrap();
            let plan = state.optimize(&plan).unwrap();
            let mut found = Vec::new();
            plan.apply_with_subqueries(|node| {
                node.apply_expressions(|e| {
                    e.apply(|e| {
                        if let Expr::ScalarFunction(f) = e {
                            if WRAPPED.contains(&f.func.name()) {
                                found.push((f.func.name().to_string(), f.func.inner().downcast_ref::<Bounded>().map(|b| b.limit)));
                            }
                        }
                        Ok(TreeNodeRecursion::Continue)
                    })
                })
            })
            .unwrap();
            assert_eq!(found.len(), calls, "{q}: {found:?}\n{plan}");
            assert!(found.iter().all(|(_, limit)| *limit == Some(budget / calls)), "{q}: {found:?}\n{plan}");
        }
    }
}
