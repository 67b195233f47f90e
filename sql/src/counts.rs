//! `count(*)` from the indexes: an optimizer rule that answers
//!
//! ```sql
//! SELECT <indexed column>, count(*) FROM events [WHERE ...] GROUP BY <indexed column>
//! SELECT count(*) FROM events [WHERE ...]
//! ```
//!
//! with the store's counts (`Store::count`, as `cairn count` answers:
//! segment totals for whole segments, the partitions' postings at the
//! edges of the time range) instead of reading every record. It applies
//! only where the store's answer is exactly SQL's:
//!
//! - the column has one value per event (not `recipientaccountid`, whose
//!   index also holds `userIdentity.accountId`), and it is the value the
//!   index holds (both come from the same parse of the record; an empty
//!   string is NULL in both);
//! - every aggregate is `count(*)` (or `count` of a non-null literal),
//!   without DISTINCT or FILTER;
//! - every filter on the way down is exact for the store: `eventtime`
//!   compared with a literal instant (the bounds are rounded to the
//!   stored milliseconds), and `=` / `IN` / ORs of `=` on the columns
//!   above (or `readonly`, `NOT readonly`), joined by AND;
//! - between the aggregate and the scan there are only those filters,
//!   projections of plain columns and table aliases.
//!
//! Events without a value (a NULL group in SQL) are counted as the total
//! less the values' counts; the total is the count by event name, which
//! every event has. Anything else is left to the scan, which gives the same
//! answer by reading the records. EXPLAIN shows `CairnIndexCounts`.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_engine::query::ATTRIBUTE_VALUES_MAX;
use cairn_engine::{Attr, Query, Store};
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::Column;
use datafusion::datasource::{provider_as_source, source_as_provider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, TableScan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};

use crate::columns::{self, Indexed};
use crate::table::{attr_of, describe_query, equalities, flip, instant_ns, is_eventtime, EventsTable, ScanStats};

/// The rule (added to every query session).
#[derive(Debug, Default)]
pub struct CountsFromIndex;

/// The name EXPLAIN shows for a count answered by the indexes.
pub const COUNTS_NAME: &str = "CairnIndexCounts";

impl OptimizerRule for CountsFromIndex {
    fn name(&self) -> &str {
        "cairn_counts_from_index"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        match counted(&plan)? {
            Some(p) => Ok(Transformed::yes(p)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// The attribute whose index answers a count grouped by this column: one
/// value per event, the index's own.
fn single_valued(i: Indexed) -> Option<Attr> {
    match i {
        Indexed::RecipientAccountId | Indexed::EventId | Indexed::UserAgent => None,
        _ => attr_of(i),
    }
}

/// `count(*)`, `count(1)`: counts rows whatever their values.
fn is_count_star(e: &Expr) -> bool {
    match e {
        Expr::Alias(a) => is_count_star(&a.expr),
        Expr::AggregateFunction(f) => {
            let p = &f.params;
            f.func.name() == "count"
                && !p.distinct
                && p.filter.is_none()
                && matches!(p.args.as_slice(), [Expr::Literal(v, _)] if !v.is_null())
        }
        _ => false,
    }
}

/// The scan below an aggregate, with every filter met on the way, when
/// only filters, plain-column projections and aliases lie between.
fn scan_below<'a>(plan: &'a LogicalPlan, filters: &mut Vec<Expr>) -> Option<&'a TableScan> {
    match plan {
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => scan_below(&p.input, filters),
        LogicalPlan::Filter(f) => {
            filters.push(f.predicate.clone());
            scan_below(&f.input, filters)
        }
        LogicalPlan::SubqueryAlias(a) => scan_below(&a.input, filters),
        LogicalPlan::TableScan(s) if s.fetch.is_none() => {
            filters.extend(s.filters.iter().cloned());
            Some(s)
        }
        _ => None,
    }
}

/// The store query equal to `filters`, when every one is exact for it.
pub(crate) fn exact_query(filters: &[Expr]) -> Option<Query> {
    let mut conjuncts = Vec::new();
    for f in filters {
        split_and(f, &mut conjuncts);
    }
    let mut q = Query::default();
    for c in conjuncts {
        if let Some((col, mut values)) = equalities(c) {
            let attr = single_valued(col)?;
            values.sort();
            values.dedup();
            match q.filters.iter_mut().find(|(a, _)| *a == attr) {
                Some((_, have)) => have.retain(|v| values.contains(v)),
                None => q.filters.push((attr, values)),
            }
            continue;
        }
        let (from, to) = time_bounds(c)?;
        if let Some(t) = from {
            q.start_ms = Some(q.start_ms.map_or(t, |s| s.max(t)));
        }
        if let Some(t) = to {
            q.end_ms = Some(q.end_ms.map_or(t, |e| e.min(t)));
        }
    }
    // The store matches EventCategory without case (`data` finds `Data`);
    // SQL's `=` does not.
    if matches!(q.canonical(), std::borrow::Cow::Owned(_)) {
        return None;
    }
    let values: usize = q.filters.iter().map(|(_, vs)| vs.len()).sum();
    // An attribute left without values matches nothing: the store would
    // refuse the query, so the scan answers (with no rows).
    if values > ATTRIBUTE_VALUES_MAX || q.filters.iter().any(|(_, vs)| vs.is_empty()) {
        return None;
    }
    if let (Some(s), Some(e)) = (q.start_ms, q.end_ms) {
        if s > e {
            return None;
        }
    }
    Some(q)
}

fn split_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            split_and(left, out);
            split_and(right, out);
        }
        _ => out.push(e),
    }
}

/// `eventtime <op> instant` as inclusive millisecond bounds, exactly
/// (eventtime holds whole milliseconds).
pub(crate) fn time_bounds(e: &Expr) -> Option<(Option<i64>, Option<i64>)> {
    const MS: i64 = 1_000_000;
    let floor = |ns: i64| ns.div_euclid(MS);
    let ceil = |ns: i64| ns.div_euclid(MS) + i64::from(ns.rem_euclid(MS) != 0);
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, t) = if is_eventtime(left) {
                (*op, right)
            } else if is_eventtime(right) {
                (flip(*op)?, left)
            } else {
                return None;
            };
            let ns = instant_ns(t)?;
            Some(match op {
                Operator::GtEq => (Some(ceil(ns)), None),
                Operator::Gt => (Some(floor(ns) + 1), None),
                Operator::LtEq => (None, Some(floor(ns))),
                Operator::Lt => (None, Some(ceil(ns) - 1)),
                Operator::Eq if ns.rem_euclid(MS) == 0 => (Some(ns / MS), Some(ns / MS)),
                _ => return None,
            })
        }
        Expr::Between(b) if !b.negated && is_eventtime(&b.expr) => {
            Some((Some(ceil(instant_ns(&b.low)?)), Some(floor(instant_ns(&b.high)?))))
        }
        _ => None,
    }
}

/// The plan that answers `plan` from the indexes, if it is a count they
/// answer exactly.
fn counted(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    let LogicalPlan::Aggregate(agg) = plan else { return Ok(None) };
    if agg.aggr_expr.is_empty() || !agg.aggr_expr.iter().all(is_count_star) || agg.group_expr.len() > 1 {
        return Ok(None);
    }
    let by = match agg.group_expr.first() {
        None => None,
        Some(Expr::Column(c)) => match columns::indexed(&c.name, None).and_then(single_valued) {
            Some(attr) => Some((attr, c.name.clone())),
            None => return Ok(None),
        },
        Some(_) => return Ok(None),
    };
    let mut filters = Vec::new();
    let Some(scan) = scan_below(&agg.input, &mut filters) else { return Ok(None) };
    let Ok(provider) = source_as_provider(&scan.source) else { return Ok(None) };
    let Some(table) = provider.downcast_ref::<EventsTable>() else { return Ok(None) };
    // Filters name the table's columns (projections below are plain).
    let Some(query) = exact_query(&filters) else { return Ok(None) };
    let counts = IndexCounts { store: table.store.clone(), by: by.as_ref().map(|(a, _)| *a), query };
    let source = provider_as_source(Arc::new(counts));
    let scan = LogicalPlanBuilder::scan("cairn_index_counts", source, None)?.build()?;
    // The aggregate's own output names and qualifiers, so the plan above
    // reads the same columns.
    let mut exprs = Vec::new();
    for (i, (qualifier, field)) in agg.schema.iter().enumerate() {
        let from = if i < agg.group_expr.len() { "value" } else { "count" };
        exprs.push(Expr::Column(Column::new(Some("cairn_index_counts"), from)).alias_qualified(qualifier.cloned(), field.name()));
    }
    Ok(Some(LogicalPlanBuilder::from(scan).project(exprs)?.build()?))
}

/// The table a rewritten count reads: (value, count) rows computed by the
/// store when the plan runs.
struct IndexCounts {
    store: Arc<Store>,
    /// The grouping attribute; `None` for one total.
    by: Option<Attr>,
    query: Query,
}

impl fmt::Debug for IndexCounts {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "IndexCounts {{ by: {:?}, query: {:?} }}", self.by, self.query)
    }
}

impl IndexCounts {
    fn schema(by: Option<Attr>) -> SchemaRef {
        let mut fields = Vec::new();
        if let Some(a) = by {
            let t = if a == Attr::ReadOnly { DataType::Boolean } else { DataType::Utf8 };
            fields.push(Field::new("value", t, true));
        }
        fields.push(Field::new("count", DataType::Int64, false));
        Arc::new(Schema::new(fields))
    }
}

#[async_trait]
impl TableProvider for IndexCounts {
    fn schema(&self) -> SchemaRef {
        IndexCounts::schema(self.by)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = IndexCounts::schema(self.by);
        let projection = projection.cloned().unwrap_or_else(|| (0..schema.fields().len()).collect());
        let out = Arc::new(schema.project(&projection)?);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(out.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Arc::new(IndexCountsExec {
            store: self.store.clone(),
            by: self.by,
            query: self.query.clone(),
            projection,
            schema: out,
            properties: Arc::new(properties),
        }))
    }
}

/// Runs the store's count.
struct IndexCountsExec {
    store: Arc<Store>,
    by: Option<Attr>,
    query: Query,
    projection: Vec<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl IndexCountsExec {
    /// The (value, count) rows, NULL for the events without a value;
    /// the total and the values' counts come from one snapshot.
    fn batch(store: &Store, stats: &ScanStats, by: Option<Attr>, query: &Query, projection: &[usize]) -> Result<RecordBatch> {
        let engine = |e: cairn_engine::query::QueryError| DataFusionError::External(Box::new(e));
        let attrs: Vec<Attr> = std::iter::once(Attr::EventName).chain(by.filter(|a| *a != Attr::EventName)).collect();
        let mut counts = store.counts(query, &attrs).map_err(engine)?;
        let by_name = counts.swap_remove(0);
        let total: u64 = by_name.iter().map(|(_, n)| n).sum();
        stats.counted.fetch_add(total, Ordering::Relaxed);
        let full = IndexCounts::schema(by);
        let columns: Vec<ArrayRef> = match by {
            None => vec![Arc::new(Int64Array::from(vec![total as i64]))],
            Some(attr) => {
                let mut rows = counts.pop().unwrap_or(by_name);
                let valued: u64 = rows.iter().map(|(_, n)| n).sum();
                let missing = total.saturating_sub(valued);
                let values: ArrayRef = if attr == Attr::ReadOnly {
                    let mut v: Vec<Option<bool>> = rows.iter().map(|(s, _)| Some(s == "true")).collect();
                    if missing > 0 {
                        v.push(None);
                    }
                    Arc::new(BooleanArray::from(v))
                } else {
                    let mut v: Vec<Option<&str>> = rows.iter().map(|(s, _)| Some(s.as_str())).collect();
                    if missing > 0 {
                        v.push(None);
                    }
                    Arc::new(StringArray::from(v))
                };
                if missing > 0 {
                    rows.push((String::new(), missing));
                }
                let counts: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|(_, n)| *n as i64).collect::<Vec<_>>()));
                vec![values, counts]
            }
        };
        let batch = RecordBatch::try_new(full, columns)?;
        Ok(batch.project(projection)?)
    }
}

impl fmt::Debug for IndexCountsExec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.fmt_as(DisplayFormatType::Default, f)
    }
}

impl DisplayAs for IndexCountsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let by = self.by.map_or("(total)".to_string(), |a| a.name().to_string());
        write!(f, "{COUNTS_NAME}: by={by}, ")?;
        describe_query(&self.query, f)
    }
}

impl ExecutionPlan for IndexCountsExec {
    fn name(&self) -> &str {
        COUNTS_NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("the index counts have no children".into()))
        }
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("the index counts have one partition, not {partition}")));
        }
        let stats = crate::table::stats_of(&ctx);
        // Counted when the stream is first polled (not while the plan is
        // built), off the async threads: the index reads block.
        let (store, by, query, projection) = (self.store.clone(), self.by, self.query.clone(), self.projection.clone());
        let counted = async move {
            tokio::task::spawn_blocking(move || IndexCountsExec::batch(&store, &stats, by, &query, &projection))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::once(counted))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::ScalarValue;
    use datafusion::prelude::{col, lit};

    // Goal: only filters the store answers exactly become its query; the
    // time bounds are rounded to whole milliseconds the way SQL compares.
    #[test]
    fn exact_filters_only() {
        let t = |s: &str| Expr::Literal(ScalarValue::TimestampNanosecond(Some(s.parse().unwrap()), Some("UTC".into())), None);
        let q = exact_query(&[col("eventname").eq(lit("A")).and(col("eventtime").gt(t("5500000")))]).unwrap();
        assert_eq!(q.filters, vec![(Attr::EventName, vec!["A".to_string()])]);
        assert_eq!(q.start_ms, Some(6));
        let q = exact_query(&[col("eventtime").gt_eq(t("5000000")), col("eventtime").lt(t("9000000"))]).unwrap();
        assert_eq!((q.start_ms, q.end_ms), (Some(5), Some(8)));
        let q = exact_query(&[col("eventtime").lt_eq(t("9500000")), col("eventtime").gt(t("5000000"))]).unwrap();
        assert_eq!((q.start_ms, q.end_ms), (Some(6), Some(9)));
        for inexact in [
            col("recipientaccountid").eq(lit("123456789012")),
            col("useragent").eq(lit("aws-cli")),
            col("eventname").not_eq(lit("A")),
            col("eventname").eq(lit("A")).or(col("eventsource").eq(lit("s"))),
            col("eventtime").eq(t("5500000")),
            col("eventtime").gt(t("9000000")).and(col("eventtime").lt(t("5000000"))),
            col("eventname").eq(lit("A")).and(col("eventname").eq(lit("B"))),
            // The store would match `Data`.
            col("eventcategory").eq(lit("data")),
        ] {
            assert!(exact_query(std::slice::from_ref(&inexact)).is_none(), "{inexact}");
        }
        assert!(exact_query(&[col("eventcategory").eq(lit("Data"))]).is_some());
        // The last instants a timestamp holds round without overflow.
        let q = exact_query(&[col("eventtime").gt_eq(t(&i64::MAX.to_string()))]).unwrap();
        assert_eq!(q.start_ms, Some(i64::MAX / 1_000_000 + 1));
    }
}
