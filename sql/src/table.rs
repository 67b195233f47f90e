//! The `events` table: a DataFusion table provider over a Cairn store.
//!
//! A scan reads the store newest first (as LookupEvents does) through
//! [`Store::export_until`], so memory stays bounded however large the
//! range, and declares that order (`eventtime DESC`): `ORDER BY eventtime
//! DESC LIMIT n` needs no sort and stops after `n` rows. Other scans read
//! their time range in parts (one per thread the query has, split where
//! the blocks' event counts say half, a third... of the events lie), each
//! part newest first on its own thread, all of one state of the store;
//! [`NewestFirstInOnePart`] keeps one part where rows must come newest
//! first (a merge in eventtime order, a LIMIT without an order). Filters the store can answer are pushed into its
//! query (`eventtime` ranges prune segments and hourly partitions;
//! `=`/`IN` on indexed columns use the postings): those it answers
//! exactly as SQL would are declared exact (DataFusion drops them, and can
//! push a LIMIT into the scan), the others inexact (DataFusion applies
//! them again). EXPLAIN shows what a scan pushed down, its LIMIT and its
//! parts.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use cairn_engine::query::{ATTRIBUTE_VALUES_MAX, ATTRIBUTE_VALUE_CHARS_MAX};
use cairn_engine::{Attr, Order, Query, Store};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};

use crate::columns::{self, Batcher, Indexed};

/// Counters of what queries read, for DescribeQuery's figures.
#[derive(Debug, Default)]
pub struct ScanStats {
    /// Events the scans read from the store.
    pub events: AtomicU64,
    /// Their record bytes.
    pub bytes: AtomicU64,
    /// Events counted from the indexes' totals without being read
    /// (`count(*) ... GROUP BY` an indexed column).
    pub counted: AtomicU64,
}

/// The scan's name in plans (EXPLAIN).
pub const SCAN_NAME: &str = "CairnEventsScan";

/// The `events` table of one store. What a query's scans read is counted
/// in the [`ScanStats`] its task context carries (see [`stats_of`]): one
/// table serves every query.
pub struct EventsTable {
    pub(crate) store: Arc<Store>,
}

/// The scan statistics of the query `ctx` runs (its session config's
/// extension); statistics nobody reads when it has none.
pub(crate) fn stats_of(ctx: &TaskContext) -> Arc<ScanStats> {
    ctx.session_config().get_extension::<ScanStats>().unwrap_or_default()
}

impl fmt::Debug for EventsTable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("EventsTable")
    }
}

impl EventsTable {
    pub fn new(store: Arc<Store>) -> EventsTable {
        EventsTable { store }
    }
}

/// What one filter tells the store.
#[derive(Debug, Clone, PartialEq)]
enum Pushed {
    /// eventtime >= this (ms).
    From(i64),
    /// eventtime <= this (ms).
    To(i64),
    /// The attribute has one of these values.
    Attr(Attr, Vec<String>),
}

pub(crate) fn attr_of(i: Indexed) -> Option<Attr> {
    Some(match i {
        Indexed::EventName => Attr::EventName,
        Indexed::EventSource => Attr::EventSource,
        Indexed::ErrorCode => Attr::ErrorCode,
        Indexed::AwsRegion => Attr::AwsRegion,
        Indexed::SourceIp => Attr::SourceIpAddress,
        Indexed::EventId => Attr::EventId,
        Indexed::EventType => Attr::EventType,
        Indexed::EventCategory => Attr::EventCategory,
        // The index's AccountId holds recipientAccountId and
        // userIdentity.accountId: a superset, which inexact allows.
        Indexed::RecipientAccountId => Attr::AccountId,
        Indexed::ReadOnly => Attr::ReadOnly,
        Indexed::Arn => Attr::UserIdentityArn,
        Indexed::AccessKeyId => Attr::AccessKeyId,
        Indexed::UserAgent => return None,
    })
}

/// The indexed column (or `useridentity` field) an expression reads.
fn indexed_column(e: &Expr) -> Option<Indexed> {
    match e {
        Expr::Column(c) => columns::indexed(&c.name, None),
        Expr::ScalarFunction(f) if f.func.name() == "get_field" => match f.args.as_slice() {
            [Expr::Column(c), Expr::Literal(ScalarValue::Utf8(Some(field)) | ScalarValue::Utf8View(Some(field)), _)] => {
                columns::indexed(&c.name, Some(field))
            }
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn is_eventtime(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == "eventtime")
}

/// A literal as text the index can look up (not empty: empty values are
/// not indexed), or a boolean's `true`/`false`.
fn lookup_text(e: &Expr) -> Option<String> {
    let v = match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)), _) => s.clone(),
        Expr::Literal(ScalarValue::Boolean(Some(b)), _) => b.to_string(),
        _ => return None,
    };
    (!v.is_empty() && v.chars().count() <= ATTRIBUTE_VALUE_CHARS_MAX).then_some(v)
}

/// A literal instant as (floor, ceil) milliseconds.
fn instant_ms(e: &Expr) -> Option<(i64, i64)> {
    let ns = instant_ns(e)?;
    Some((ns.div_euclid(1_000_000), ns.div_euclid(1_000_000) + i64::from(ns.rem_euclid(1_000_000) != 0)))
}

/// A literal instant (or a literal cast to a type, as the comparison
/// sees it) in UTC nanoseconds.
pub(crate) fn instant_ns(e: &Expr) -> Option<i64> {
    let v = match e {
        Expr::Literal(v, _) => v.clone(),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(v, _) => v.cast_to(c.field.data_type()).ok()?,
            _ => return None,
        },
        _ => return None,
    };
    match v.cast_to(&DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))).ok()? {
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(ns),
        _ => None,
    }
}

pub(crate) fn flip(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq => Operator::Eq,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        _ => return None,
    })
}

/// Equality values of one indexed attribute: `col = v`, `col IN (...)`,
/// and ORs of those on the same column.
pub(crate) fn equalities(e: &Expr) -> Option<(Indexed, Vec<String>)> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
            let (col, v) = if indexed_column(left).is_some() { (left, right) } else { (right, left) };
            Some((indexed_column(col)?, vec![lookup_text(v)?]))
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let (a, mut va) = equalities(left)?;
            let (b, vb) = equalities(right)?;
            (a == b).then(|| {
                va.extend(vb);
                (a, va)
            })
        }
        Expr::InList(l) if !l.negated => {
            let col = indexed_column(&l.expr)?;
            let vs: Option<Vec<String>> = l.list.iter().map(lookup_text).collect();
            Some((col, vs?))
        }
        Expr::Column(_) => (indexed_column(e)? == Indexed::ReadOnly).then(|| (Indexed::ReadOnly, vec!["true".into()])),
        Expr::Not(inner) => (indexed_column(inner)? == Indexed::ReadOnly).then(|| (Indexed::ReadOnly, vec!["false".into()])),
        _ => None,
    }
}

/// What a filter tells the store, if anything.
fn push(e: &Expr) -> Vec<Pushed> {
    if let Some((col, mut values)) = equalities(e) {
        values.sort();
        values.dedup();
        if let (Some(attr), true) = (attr_of(col), values.len() <= ATTRIBUTE_VALUES_MAX) {
            return vec![Pushed::Attr(attr, values)];
        }
        return Vec::new();
    }
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, t) = if is_eventtime(left) {
                (*op, right)
            } else if is_eventtime(right) {
                match flip(*op) {
                    Some(op) => (op, left),
                    None => return Vec::new(),
                }
            } else {
                return Vec::new();
            };
            // Whole-millisecond bounds equal to SQL's comparison where
            // there are some (an exact filter needs them)...
            if let Some((from, to)) = crate::counts::time_bounds(e) {
                return from.map(Pushed::From).into_iter().chain(to.map(Pushed::To)).collect();
            }
            // ... else bounds that hold every row it keeps.
            let Some((floor, ceil)) = instant_ms(t) else { return Vec::new() };
            match op {
                Operator::Gt | Operator::GtEq => vec![Pushed::From(floor)],
                Operator::Lt | Operator::LtEq => vec![Pushed::To(ceil)],
                Operator::Eq => vec![Pushed::From(floor), Pushed::To(ceil)],
                _ => Vec::new(),
            }
        }
        Expr::Between(b) if !b.negated && is_eventtime(&b.expr) => match (instant_ms(&b.low), instant_ms(&b.high)) {
            _ if crate::counts::time_bounds(e).is_some() => {
                let (from, to) = crate::counts::time_bounds(e).unwrap_or_default();
                from.map(Pushed::From).into_iter().chain(to.map(Pushed::To)).collect()
            }
            (Some((lo, _)), Some((_, hi))) => vec![Pushed::From(lo), Pushed::To(hi)],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Whether the pushed filters would name more attribute values than a
/// store query takes (then [`query_of`] drops its attribute filters).
fn over_values_limit(filters: &[Expr]) -> bool {
    let q = query_of_all(filters);
    q.filters.iter().map(|(_, vs)| vs.len()).sum::<usize>() > ATTRIBUTE_VALUES_MAX
}

/// The store query of a scan's pushed filters.
fn query_of(filters: &[Expr]) -> Query {
    let mut q = query_of_all(filters);
    if q.filters.iter().map(|(_, vs)| vs.len()).sum::<usize>() > ATTRIBUTE_VALUES_MAX {
        q.filters.clear();
    }
    q
}

fn query_of_all(filters: &[Expr]) -> Query {
    let mut q = Query::default();
    for p in filters.iter().flat_map(push) {
        match p {
            Pushed::From(t) => q.start_ms = Some(q.start_ms.map_or(t, |s| s.max(t))),
            Pushed::To(t) => q.end_ms = Some(q.end_ms.map_or(t, |e| e.min(t))),
            Pushed::Attr(a, vs) => match q.filters.iter_mut().find(|(x, _)| *x == a) {
                // Two filters on one attribute: both hold, so the values
                // common to both.
                Some((_, have)) => have.retain(|v| vs.contains(v)),
                None => q.filters.push((a, vs)),
            },
        }
    }
    q
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        columns::schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// A filter the store answers exactly (`counts::exact_query`: time
    /// bounds, `=`/`IN` on single-valued indexed columns, as the store
    /// matches them) is `Exact`: DataFusion drops it from the plan and can
    /// push a `LIMIT` into the scan, so a newest-50 reads 50 events. The
    /// others the store can narrow are `Inexact` (DataFusion applies them
    /// again); all of them at once must make one valid store query, else
    /// none is exact.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let exact: Vec<bool> = filters.iter().map(|f| crate::counts::exact_query(std::slice::from_ref(*f)).is_some()).collect();
        let exact_ones: Vec<Expr> = filters.iter().zip(&exact).filter(|(_, e)| **e).map(|(f, _)| (*f).clone()).collect();
        let all: Vec<Expr> = filters.iter().map(|f| (*f).clone()).collect();
        let together = crate::counts::exact_query(&exact_ones).is_some() && !over_values_limit(&all);
        Ok(filters
            .iter()
            .zip(&exact)
            .map(|(f, e)| {
                if *e && together {
                    TableProviderFilterPushDown::Exact
                } else if push(f).is_empty() {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    /// A scan with no LIMIT reads its time range in as many parts as
    /// the session has target partitions, each on its own thread (one
    /// state of the store for all); one under a LIMIT reads newest first
    /// in one part, and stops at the LIMIT.
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let parts = if limit.is_some() { 1 } else { state.config().target_partitions().max(1) };
        Ok(Arc::new(EventsScan::new(self.store.clone(), projection, query_of(filters), limit, parts)))
    }
}

/// The scan of the `events` table: partitions over consecutive eventTime
/// ranges (the newest first), each read newest first.
#[derive(Clone)]
pub struct EventsScan {
    store: Arc<Store>,
    batcher: Arc<Batcher>,
    query: Query,
    /// Partitions: each reads one part of the time range.
    parts: usize,
    /// Each part's query (`query` narrowed to its time range), cut by the
    /// first partition to run: a plan that never runs (EXPLAIN, or a scan
    /// [`NewestFirstInOnePart`] replaces) never estimates the cuts. Fewer
    /// parts than partitions when the range holds few events: the others
    /// are empty.
    split: Arc<OnceLock<Vec<Query>>>,
    /// The store's seq bound when the scan was planned: every partition
    /// reads the events below it, one state of the store.
    bound: u64,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

/// `q` split at eventTime `cuts` (ascending): the parts' queries, newest
/// range first.
fn split_at(q: &Query, cuts: &[i64]) -> Vec<Query> {
    let mut parts = Vec::with_capacity(cuts.len() + 1);
    let mut end = q.end_ms;
    for &cut in cuts.iter().rev() {
        parts.push(Query { start_ms: Some(cut), end_ms: end, filters: q.filters.clone() });
        end = Some(cut - 1);
    }
    parts.push(Query { start_ms: q.start_ms, end_ms: end, filters: q.filters.clone() });
    parts
}

/// Rows in a scan's first batch; each next one is 4 times larger, up to
/// [`BATCH_ROWS_MAX`]: a `LIMIT 50` reads few events, a full scan
/// amortises its batches.
const BATCH_ROWS_FIRST: usize = 128;
pub(crate) const BATCH_ROWS_MAX: usize = 8192;
/// A batch also ends at this many record bytes: records may be up to
/// 256 KiB each, and 8,192 of them would hold 2 GiB outside the memory
/// pool (and more in what the query's functions make of them).
const BATCH_BYTES_MAX: usize = 4 << 20;

impl EventsScan {
    fn new(store: Arc<Store>, projection: Option<&Vec<usize>>, query: Query, limit: Option<usize>, parts: usize) -> EventsScan {
        let bound = store.export_bound();
        let parts = parts.max(1);
        let batcher = Arc::new(Batcher::new(projection));
        let schema = batcher.schema();
        // Newest first: eventtime descending (ties in no order).
        let ordering = schema.index_of("eventtime").ok().map(|i| {
            let col = Arc::new(datafusion::physical_expr::expressions::Column::new("eventtime", i)) as Arc<dyn PhysicalExpr>;
            LexOrdering::new(vec![PhysicalSortExpr::new(
                col,
                datafusion::arrow::compute::SortOptions { descending: true, nulls_first: false },
            )])
        });
        let eq = EquivalenceProperties::new_with_orderings(schema, ordering.into_iter().flatten());
        let properties = PlanProperties::new(eq, Partitioning::UnknownPartitioning(parts), EmissionType::Incremental, Boundedness::Bounded);
        EventsScan { store, batcher, query, parts, split: Arc::default(), bound, limit, properties: Arc::new(properties) }
    }

    /// The same scan in one part: newest first throughout.
    fn in_one_part(&self) -> EventsScan {
        let properties = self.properties.as_ref().clone().with_partitioning(Partitioning::UnknownPartitioning(1));
        EventsScan { parts: 1, split: Arc::default(), properties: Arc::new(properties), ..self.clone() }
    }

    /// The query of partition `partition`'s part, `None` for an empty one.
    fn part(&self, partition: usize) -> Result<Option<Query>> {
        if partition >= self.parts {
            return Err(DataFusionError::Internal(format!("the events scan has {} partitions, not {partition}", self.parts)));
        }
        if self.parts == 1 {
            return Ok(Some(self.query.clone()));
        }
        let split = self.split.get_or_init(|| {
            let cuts = if self.query.validate().is_ok() { self.store.time_cuts(&self.query, self.parts) } else { Vec::new() };
            split_at(&self.query, &cuts)
        });
        Ok(split.get(partition).cloned())
    }
}

impl fmt::Debug for EventsScan {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.fmt_as(DisplayFormatType::Default, f)
    }
}

/// A store query as EXPLAIN shows it: `eventtime=[from, to], index=[...]`.
pub(crate) fn describe_query(q: &Query, f: &mut fmt::Formatter) -> fmt::Result {
    let time = |t: Option<i64>| t.map_or("-".to_string(), cairn_engine::event::format_event_time_ms);
    write!(f, "eventtime=[{}, {}]", time(q.start_ms), time(q.end_ms))?;
    if q.filters.is_empty() {
        return write!(f, ", index=none");
    }
    let terms: Vec<String> = q.filters.iter().map(|(a, vs)| format!("{}={}", a.name(), vs.join("|"))).collect();
    write!(f, ", index=[{}]", terms.join(", "))
}

impl DisplayAs for EventsScan {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{SCAN_NAME}: order=newest-first, ")?;
        describe_query(&self.query, f)?;
        if let Some(n) = self.limit {
            write!(f, ", limit={n}")?;
        }
        if self.parts > 1 {
            write!(f, ", parts={}", self.parts)?;
        }
        let names: Vec<String> = self.batcher.schema().fields().iter().map(|f| f.name().clone()).collect();
        write!(f, ", columns=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for EventsScan {
    fn name(&self) -> &str {
        SCAN_NAME
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
            Err(DataFusionError::Internal("the events scan has no children".into()))
        }
    }

    fn fetch(&self) -> Option<usize> {
        self.limit
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        Some(Arc::new(EventsScan { limit, ..self.clone() }))
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let Some(query) = self.part(partition)? else {
            let empty = futures::stream::empty::<Result<datafusion::arrow::array::RecordBatch>>();
            return Ok(Box::pin(RecordBatchStreamAdapter::new(self.batcher.schema(), empty)));
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<datafusion::arrow::array::RecordBatch>>(2);
        let (store, stats, batcher, bound, limit) =
            (self.store.clone(), stats_of(&ctx), self.batcher.clone(), self.bound, self.limit.unwrap_or(usize::MAX));
        // The store reads synchronously: a thread of its own feeds the
        // stream, and stops when the stream is dropped (a LIMIT reached,
        // the query cancelled) or the channel is full until it is read.
        std::thread::Builder::new()
            .name("cairn-sql-scan".into())
            .spawn(move || {
                let mut rows = Vec::with_capacity(BATCH_ROWS_FIRST);
                let mut want = BATCH_ROWS_FIRST;
                let mut sent = 0usize;
                let mut bytes = 0usize;
                let mut open = true;
                let flush = |rows: &mut Vec<cairn_engine::StoredEvent>| -> bool {
                    let batch = batcher.batch(rows);
                    rows.clear();
                    tx.blocking_send(batch).is_ok()
                };
                let result = store.export_until(&query, Order::NewestFirst, bound, |e| {
                    stats.events.fetch_add(1, AtomicOrdering::Relaxed);
                    stats.bytes.fetch_add(e.record.len() as u64, AtomicOrdering::Relaxed);
                    bytes += e.record.len();
                    rows.push(e);
                    // The stream was dropped (a LIMIT met, a cancel): stop
                    // reading now, not at the next full batch.
                    if tx.is_closed() {
                        open = false;
                        return false;
                    }
                    // A fetch (a LIMIT pushed into the scan) is a promise:
                    // never more rows than it.
                    if rows.len() >= want || bytes >= BATCH_BYTES_MAX || sent + rows.len() >= limit {
                        sent += rows.len();
                        bytes = 0;
                        open = flush(&mut rows);
                        want = (want * 4).min(BATCH_ROWS_MAX);
                    }
                    open && sent < limit
                });
                match result {
                    Ok(_) if open && !rows.is_empty() => {
                        flush(&mut rows);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
                    }
                }
            })
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.batcher.schema(), stream)))
    }
}

/// A physical optimizer rule: a scan whose rows are merged in order
/// (`ORDER BY eventtime DESC`, which the parts' order satisfies), or
/// gathered up to a LIMIT without an order, reads in one part. One part
/// newest first is already in order and stops at the LIMIT; parts would
/// each read until they had the LIMIT's rows of their own range (all of
/// it, under a filter the store does not answer), and a LIMIT without an
/// order would take whichever rows came first rather than the newest, as
/// LookupEvents gives them.
#[derive(Debug)]
pub struct NewestFirstInOnePart;

impl NewestFirstInOnePart {
    /// `plan` with the events scan below it (through nodes that keep rows
    /// in their order) in one part, if there is one.
    fn one_part(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if let Some(scan) = plan.as_ref().downcast_ref::<EventsScan>() {
            return Ok((scan.parts > 1).then(|| Arc::new(scan.in_one_part()) as Arc<dyn ExecutionPlan>));
        }
        let order_keeping = matches!(plan.name(), "FilterExec" | "ProjectionExec" | "CoalesceBatchesExec" | "CooperativeExec");
        match plan.children().as_slice() {
            [child] if order_keeping => match Self::one_part(child)? {
                Some(c) => Ok(Some(recomputed(plan, c)?)),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

/// `plan` over `child` in place of its one child, its properties (the
/// partitions) computed again.
fn recomputed(plan: &Arc<dyn ExecutionPlan>, child: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
    plan.clone().replace_children(vec![child], ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
}

impl datafusion::physical_optimizer::PhysicalOptimizerRule for NewestFirstInOnePart {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &datafusion::config::ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        plan.transform_down(|node| {
            let merges_in_order = node.name() == "SortPreservingMergeExec";
            let gathers_to_limit = node.name() == "CoalescePartitionsExec" && node.fetch().is_some();
            if !(merges_in_order || gathers_to_limit) {
                return Ok(Transformed::no(node));
            }
            let children = node.children();
            let [child] = children.as_slice() else { return Ok(Transformed::no(node)) };
            match Self::one_part(child)? {
                Some(c) => Ok(Transformed::new(recomputed(&node, c)?, true, TreeNodeRecursion::Jump)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "newest_first_in_one_part"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    // Goal: what reaches the store's query is implied by the filter (a
    // superset of its rows; its very rows where the filter is declared
    // exact), and nothing unsafe is pushed: empty values, unindexed
    // columns, negations.
    #[test]
    fn pushdown() {
        let q = query_of(&[
            col("eventname").eq(lit("ConsoleLogin")),
            col("errorcode").in_list(vec![lit("AccessDenied"), lit("Throttling")], false),
            col("awsregion").eq(lit("")),
            col("useragent").eq(lit("aws-cli")),
            col("eventsource").in_list(vec![lit("s3.amazonaws.com")], true),
            col("readonly"),
            lit("iam.amazonaws.com").eq(col("eventsource")).or(col("eventsource").eq(lit("sts.amazonaws.com"))),
        ]);
        assert_eq!(
            q.filters,
            vec![
                (Attr::EventName, vec!["ConsoleLogin".to_string()]),
                (Attr::ErrorCode, vec!["AccessDenied".into(), "Throttling".into()]),
                (Attr::ReadOnly, vec!["true".into()]),
                (Attr::EventSource, vec!["iam.amazonaws.com".into(), "sts.amazonaws.com".into()]),
            ]
        );
        assert_eq!((q.start_ms, q.end_ms), (None, None));
        let t = |s: &str| lit(ScalarValue::TimestampNanosecond(Some(s.parse::<i64>().unwrap()), Some("UTC".into())));
        let q = query_of(&[col("eventtime").gt_eq(t("1700000000000500000")), t("1700000100000000000").gt(col("eventtime"))]);
        // Whole milliseconds as SQL compares them: >= 0.5 ms past is the
        // next one; < an instant ends a millisecond before.
        assert_eq!((q.start_ms, q.end_ms), (Some(1_700_000_000_001), Some(1_700_000_099_999)));
        let q = query_of(&[col("eventtime").gt_eq(lit("2024-01-01 00:00:00")), col("eventtime").lt(lit("2024-01-02T00:00:00Z"))]);
        assert_eq!((q.start_ms, q.end_ms), (Some(1_704_067_200_000), Some(1_704_153_599_999)));
        // Exact filters are declared so (DataFusion drops them and may
        // push a LIMIT into the scan); the rest stay inexact.
        let table = |f: &[&Expr]| {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open(dir.path(), cairn_engine::Options::default()).unwrap());
            EventsTable::new(store).supports_filters_pushdown(f).unwrap()
        };
        use TableProviderFilterPushDown::{Exact, Inexact, Unsupported};
        let (name, account, agent) = (col("eventname").eq(lit("A")), col("recipientaccountid").eq(lit("1")), col("useragent").eq(lit("x")));
        let category = col("eventcategory").eq(lit("data"));
        assert_eq!(table(&[&name, &account, &agent, &category]), vec![Exact, Inexact, Unsupported, Inexact]);
    }
}

#[cfg(test)]
mod batch_tests {
    use std::sync::Arc;

    use cairn_engine::Store;

    use crate::{Limits, Sql};

    // Goal: a scan's batches stay near 4 MiB of records however large
    // the records (they held 8,192 rows: up to 2 GiB of 256 KiB records,
    // outside the query memory pool), and every row is still returned.
    #[test]
    fn scan_batches_end_at_their_byte_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), cairn_engine::Options::default()).unwrap());
        let pad = "p".repeat(200 << 10);
        let records: Vec<String> = (0..150)
            .map(|i| format!(r#"{{"eventTime":"2026-01-01T00:00:{:02}Z","eventName":"PutObject","eventID":"e{i}","pad":"{pad}"}}"#, i % 60))
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(|r| r.as_bytes()).collect();
        store.append(&refs).unwrap();
        let sql = Sql::new(store, Limits { threads: 1, ..Limits::default() }).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (_, batches) = rt.block_on(sql.collect("SELECT eventjson FROM events")).unwrap();
        let rows: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(rows.iter().sum::<usize>(), 150, "{rows:?}");
        // 4 MiB is 20.5 of these records: a batch ends at the 21st.
        assert!(rows.len() >= 7 && rows.iter().all(|&n| n <= 21), "{rows:?}");
    }
}
