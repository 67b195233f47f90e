//! SQL over a Cairn store, as CloudTrail Lake answers it: Apache
//! DataFusion with the `events` table ([`table::EventsTable`], Lake's
//! columns, [`columns`]) and Lake's functions that DataFusion lacks
//! ([`functions`]). Queries only read (SELECT; no DDL, DML or SET), run
//! within a memory pool, and stream: a query over years of events holds
//! a few batches at a time, not its range.

mod bounded;
pub mod columns;
pub mod counts;
pub mod functions;
pub mod output;
pub mod table;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_engine::Store;

use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::{FutureExt, StreamExt};

pub use datafusion::arrow::array::RecordBatch;
pub use datafusion::arrow::datatypes::SchemaRef;
pub use table::ScanStats;

/// The name of the table of every stored event.
pub const TABLE: &str = "events";

/// Limits of a query engine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory for sorts, joins and aggregations (DataFusion's memory
    /// pool); a query that needs more fails with a clear error. It also
    /// bounds what the calls of functions that can grow values (`repeat`,
    /// `lpad`, `range`, `replace`, `concat`, ...) may build: each call
    /// over one batch an equal share of it over the threads.
    pub memory_bytes: usize,
    /// Longest query text, in bytes (Lake's: 10,000 characters).
    pub statement_bytes_max: usize,
    /// Threads a query runs on (DataFusion's target partitions; default:
    /// the cores, at most 8); a scan reads its time range in as many parts
    /// at once, unless its rows must come newest first (`ORDER BY
    /// eventtime DESC`, a LIMIT).
    pub threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            statement_bytes_max: 10_000,
            // Each scan part holds a thread and a few batches outside the
            // memory pool: at most 8 by default.
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()).min(8),
        }
    }
}

/// Why a query failed, named after Lake's exceptions.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Not a single SELECT, a syntax error, an unknown column or function.
    #[error("InvalidQueryStatementException: {0}")]
    InvalidStatement(String),
    /// A limit reached while running (memory).
    #[error("QueryResourcesExceededException: {0}")]
    ResourcesExceeded(String),
    /// Any other failure while running (reading the store).
    #[error("QueryFailed: {0}")]
    Failed(String),
}

/// A panic caught in DataFusion, as the query's error (the SQL text is
/// input from anyone allowed to query: it must not end a connection, or
/// the `cairn query` process).
fn panicked(panic: &(dyn std::any::Any + Send)) -> SqlError {
    SqlError::Failed(format!("the SQL engine failed on this query: {}", cairn_engine::panic_message(panic)))
}

fn planning(e: DataFusionError) -> SqlError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => running(e),
        _ => SqlError::InvalidStatement(e.to_string()),
    }
}

fn running(e: DataFusionError) -> SqlError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(m) if m.starts_with(bounded::FUNCTION) => {
            SqlError::ResourcesExceeded(m[bounded::FUNCTION.len()..].to_string())
        }
        DataFusionError::ResourcesExhausted(m) => SqlError::ResourcesExceeded(format!(
            "the query needs more memory than the query memory limit allows ({m}); narrow its time range or add a LIMIT"
        )),
        _ => SqlError::Failed(e.to_string()),
    }
}

/// A query engine over one store. Each query runs on a copy of one
/// session's state, with its own scan statistics; the memory pool is
/// shared, so the limit holds across queries running at once.
pub struct Sql {
    /// The session every query's state is a copy of: configuration, the
    /// shared memory pool, DataFusion's and Lake's functions, the rules,
    /// the table under both names. Built once (DataFusion's hundreds of
    /// functions); each query's scan statistics travel in its task
    /// context, not in the table.
    ctx: SessionContext,
    limits: Limits,
    /// The store's id ([`Store::id`]): a second name of the table.
    id: String,
}

/// A query's results as they stream, and what its scans read.
pub struct Running {
    pub schema: SchemaRef,
    stream: SendableRecordBatchStream,
    /// What the query's scans read so far.
    pub stats: Arc<ScanStats>,
    plan: Arc<dyn ExecutionPlan>,
}

impl Running {
    /// The next batch of results; `None` at the end. A panic inside
    /// DataFusion (which still panics on some queries instead of erring,
    /// e.g. `repeat(eventjson, 100000)` past 2 GiB of output) is this
    /// query's error; read no further after an error.
    pub async fn next(&mut self) -> Option<Result<RecordBatch, SqlError>> {
        match AssertUnwindSafe(self.stream.next()).catch_unwind().await {
            Ok(b) => b.map(|b| b.map_err(running)),
            Err(panic) => Some(Err(panicked(&*panic))),
        }
    }

    /// Events that passed the query's row filters (Lake's
    /// `EventsMatched`): the rows out of the lowest filter over the scan,
    /// or every event scanned when nothing is filtered after the indexes
    /// and time bounds, plus the events counted from the indexes. Final
    /// once the stream has ended.
    pub fn matched(&self) -> u64 {
        fn lowest_filter_over_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<Option<u64>> {
            // Some(None): the scan is below with no filter between;
            // Some(Some(n)): a filter above the scan let n rows through.
            if plan.name() == table::SCAN_NAME {
                return Some(None);
            }
            let below = plan.children().into_iter().find_map(lowest_filter_over_scan)?;
            Some(match below {
                Some(n) => Some(n),
                None if plan.name() == "FilterExec" => plan.metrics().and_then(|m| m.output_rows()).map(|n| n as u64),
                None => None,
            })
        }
        match lowest_filter_over_scan(&self.plan) {
            Some(Some(n)) => n,
            _ => self.stats.events.load(Ordering::Relaxed) + self.stats.counted.load(Ordering::Relaxed),
        }
    }

    /// Events (and their record bytes) the query's scans read so far.
    pub fn scanned(&self) -> (u64, u64) {
        (self.stats.events.load(Ordering::Relaxed), self.stats.bytes.load(Ordering::Relaxed))
    }
}

impl Sql {
    pub fn new(store: Arc<Store>, limits: Limits) -> Result<Sql, SqlError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(|e| SqlError::Failed(e.to_string()))?;
        let id = store.id();
        let threads = limits.threads.max(1);
        // No round-robin repartitioning of a scan's streams: it would pull
        // batches ahead of a LIMIT (a newest-50 read thousands of events),
        // and the scan's threads already run beside the plan's.
        let config =
            SessionConfig::new().with_target_partitions(threads).with_round_robin_repartition(false).with_information_schema(false);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_optimizer_rule(Arc::new(counts::CountsFromIndex))
            .with_optimizer_rule(Arc::new(bounded::BoundCalls { budget: limits.memory_bytes / threads }))
            .with_physical_optimizer_rule(Arc::new(table::NewestFirstInOnePart))
            .build();
        let ctx = SessionContext::new_with_state(state);
        // After DataFusion's own: its `map_extract` has the alias
        // `element_at`, which Lake's `element_at` replaces.
        for f in functions::all() {
            ctx.register_udf(f);
        }
        bounded::bound_functions(&ctx, limits.memory_bytes / threads);
        let table = Arc::new(table::EventsTable::new(store.clone()));
        ctx.register_table(TABLE, table.clone()).map_err(planning)?;
        ctx.register_table(TableReference::bare(id.as_str()), table).map_err(planning)?;
        Ok(Sql { ctx, limits, id })
    }

    /// The store's id, the table's second name (`SELECT ... FROM <id>`,
    /// as Lake's queries name an event data store).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Plans `statement` (one SELECT) and starts it. A panic inside
    /// DataFusion while planning is this query's error.
    pub async fn start(&self, statement: &str) -> Result<Running, SqlError> {
        AssertUnwindSafe(self.plan_and_start(statement)).catch_unwind().await.unwrap_or_else(|panic| Err(panicked(&*panic)))
    }

    async fn plan_and_start(&self, statement: &str) -> Result<Running, SqlError> {
        if statement.len() > self.limits.statement_bytes_max {
            return Err(SqlError::InvalidStatement(format!(
                "the query is {} bytes; the limit is {}",
                statement.len(),
                self.limits.statement_bytes_max
            )));
        }
        let stats = Arc::new(ScanStats::default());
        // A copy of the session's state, its start time (now()) this query's.
        let state = self.ctx.state();
        let statement = name_the_table(statement, &self.id);
        let logical = logical_plan(&state, statement).await?;
        let schema: SchemaRef = Arc::new(logical.schema().as_arrow().clone());
        let plan = state.create_physical_plan(&logical).await.map_err(planning)?;
        let config = state.config().clone().with_extension(stats.clone());
        let task = Arc::new(TaskContext::from(&state).with_session_config(config));
        let stream = execute_stream(plan.clone(), task).map_err(running)?;
        Ok(Running { schema, stream, stats, plan })
    }

    /// Runs `statement` to its end: every result batch.
    pub async fn collect(&self, statement: &str) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
        let mut r = self.start(statement).await?;
        let mut out = Vec::new();
        while let Some(b) = r.next().await {
            out.push(b?);
        }
        Ok((r.schema, out))
    }
}

/// How deep a query's expressions may nest. The parser bounds nested
/// parentheses and calls, not chains of operators (`a || a || ...`,
/// `x = 1 OR x = 2 OR ...`), which it builds as trees as deep as they are
/// long; DataFusion evaluates them recursively, and a chain of 3,250
/// `||` (9,800 bytes of SQL) overflowed the stack of a release build and
/// aborted the process.
const EXPRESSION_DEPTH_MAX: usize = 200;

/// Stack for turning a statement into a logical plan: DataFusion clones
/// and walks its expressions recursively, and an operator chain of the
/// longest statement is thousands deep (a debug build overflowed 2 MiB).
const PLANNING_STACK_BYTES: usize = 256 << 20;

/// `statement`'s logical plan, checked: SELECT only, expressions at most
/// [`EXPRESSION_DEPTH_MAX`] deep. Planned on a thread of its own with a
/// large stack, where a plan too deep is also dropped; only a plan
/// within the limit leaves it.
async fn logical_plan(
    state: &datafusion::execution::SessionState,
    statement: String,
) -> Result<datafusion::logical_expr::LogicalPlan, SqlError> {
    let state = state.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cairn-sql-plan".into())
        .stack_size(PLANNING_STACK_BYTES)
        .spawn(move || {
            let plan = || -> Result<datafusion::logical_expr::LogicalPlan, SqlError> {
                let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| SqlError::Failed(e.to_string()))?;
                let logical = rt.block_on(state.create_logical_plan(&statement)).map_err(planning)?;
                SQLOptions::new()
                    .with_allow_ddl(false)
                    .with_allow_dml(false)
                    .with_allow_statements(false)
                    .verify_plan(&logical)
                    .map_err(planning)?;
                let depth = expression_depth(&logical).map_err(planning)?;
                if depth > EXPRESSION_DEPTH_MAX {
                    return Err(SqlError::InvalidStatement(format!(
                        "an expression nests {depth} deep (a chain of that many operators such as ||, AND, OR, +); the limit is {EXPRESSION_DEPTH_MAX}: for a list of values use IN (...)"
                    )));
                }
                Ok(logical)
            };
            let result = std::panic::catch_unwind(AssertUnwindSafe(plan)).unwrap_or_else(|panic| Err(panicked(&*panic)));
            let _ = tx.send(result);
        })
        .map_err(|e| SqlError::Failed(format!("starting the planning thread: {e}")))?;
    rx.await.unwrap_or_else(|_| Err(SqlError::Failed("the planning thread ended without an answer".into())))
}

/// The depth of the deepest expression in `plan` (its subqueries too).
fn expression_depth(plan: &datafusion::logical_expr::LogicalPlan) -> Result<usize, DataFusionError> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion, TreeNodeVisitor};
    struct Depth {
        now: usize,
        max: usize,
    }
    impl<'n> TreeNodeVisitor<'n> for Depth {
        type Node = datafusion::logical_expr::Expr;
        fn f_down(&mut self, _: &'n Self::Node) -> datafusion::error::Result<TreeNodeRecursion> {
            self.now += 1;
            self.max = self.max.max(self.now);
            Ok(TreeNodeRecursion::Continue)
        }
        fn f_up(&mut self, _: &'n Self::Node) -> datafusion::error::Result<TreeNodeRecursion> {
            self.now -= 1;
            Ok(TreeNodeRecursion::Continue)
        }
    }
    let mut depth = Depth { now: 0, max: 0 };
    plan.apply_with_subqueries(|node| node.apply_expressions(|e| e.visit(&mut depth)))?;
    Ok(depth.max)
}

/// `statement` with each bare mention of the store's id replaced by
/// [`TABLE`]: Lake's ids are not SQL identifiers (`FROM 0233062b-51c1-...`
/// starts with a digit), yet its queries name the store so. Quoted text
/// (`'...'`, `E'...'` with backslash escapes, `"..."`, `` `...` ``,
/// `$tag$...$tag$`) and comments (`--`, nested `/* */`) are left alone; a
/// quoted id still names the table, which is registered under it too.
pub fn name_the_table(statement: &str, id: &str) -> String {
    let b = statement.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    // The end of a quoted run that starts at `i` with `q`; a doubled
    // quote is an escaped one, and so is `\x` when `backslash`.
    let quoted = |i: usize, q: u8, backslash: bool| -> usize {
        let mut j = i + 1;
        while j < b.len() {
            if backslash && b[j] == b'\\' {
                j += 2;
                continue;
            }
            if b[j] == q {
                if b.get(j + 1) == Some(&q) {
                    j += 2;
                    continue;
                }
                return j + 1;
            }
            j += 1;
        }
        b.len()
    };
    let mut out = String::with_capacity(statement.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        i = match b[i] {
            q @ (b'\'' | b'"' | b'`') => quoted(i, q, false),
            b'e' | b'E' if b.get(i + 1) == Some(&b'\'') && (i == 0 || !word(b[i - 1])) => quoted(i + 1, b'\'', true),
            b'-' if b.get(i + 1) == Some(&b'-') => b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest.
                let (mut depth, mut j) = (0usize, i);
                while j < b.len() {
                    if b[j..].starts_with(b"/*") {
                        depth += 1;
                        j += 2;
                    } else if b[j..].starts_with(b"*/") {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                j
            }
            b'$' => {
                // `$tag$ ... $tag$` (the tag may be empty); a lone `$` is
                // a placeholder's start.
                let tag_end = b[i + 1..].iter().position(|&c| !word(c)).map(|n| i + 1 + n);
                match tag_end {
                    Some(t) if b[t] == b'$' => {
                        let tag = &statement[i..=t];
                        statement[t + 1..].find(tag).map_or(b.len(), |n| t + 1 + n + tag.len())
                    }
                    _ => i + 1,
                }
            }
            c if word(c) => {
                let end = b[i..].iter().position(|&c| !word(c)).map_or(b.len(), |n| i + n);
                if statement[i..end].eq_ignore_ascii_case(id) {
                    out.push_str(&statement[copied..i]);
                    out.push_str(TABLE);
                    copied = end;
                }
                end
            }
            _ => i + 1,
        };
    }
    out.push_str(&statement[copied.min(b.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

    /// A function that panics when its query runs (`at_run`) or is
    /// planned: DataFusion's own functions still panic on some input (in
    /// 55.2, `repeat(eventjson, 100000)` once its output passes 2 GiB),
    /// which a test cannot afford to reach.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Panics {
        signature: Signature,
        at_run: bool,
    }

    impl ScalarUDFImpl for Panics {
        fn name(&self) -> &str {
            if self.at_run {
                "panics_when_run"
            } else {
                "panics_when_planned"
            }
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _t: &[DataType]) -> datafusion::error::Result<DataType> {
            if !self.at_run {
                panic!("injected while planning");
            }
            Ok(DataType::Utf8)
        }
        fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
            panic!("injected while running")
        }
    }

    // Goal: a query whose operators chain deeper than DataFusion can
    // evaluate (3,250 `||` aborted a release build on a stack overflow,
    // 300 a debug build)
    // is refused by name before it runs, and chains within the limit run.
    #[test]
    fn expressions_nested_too_deep_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), cairn_engine::Options::default()).unwrap());
        store.append(&[br#"{"eventTime":"2026-01-01T00:00:00Z","eventName":"GetObject","eventID":"e1"}"#.as_slice()]).unwrap();
        let sql = Sql::new(store, Limits { statement_bytes_max: 100_000, ..Limits::default() }).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let chain = |n: usize, op: &str| {
            format!("SELECT count(*) FROM (SELECT eventname AS x FROM events) WHERE {}x = 'x'", format!("x = 'a' {op} ").repeat(n))
        };
        for (q, why) in [
            (format!("SELECT length({}x) FROM (SELECT eventname AS x FROM events)", "x||".repeat(1000)), "|| on text"),
            (chain(1000, "OR"), "OR"),
        ] {
            let e = rt.block_on(sql.collect(&q)).unwrap_err();
            assert!(
                matches!(&e, SqlError::InvalidStatement(m) if m.starts_with("an expression nests") && m.contains("the limit is 200")),
                "{why}: {e}"
            );
        }
        let (_, batches) = rt.block_on(sql.collect(&chain(150, "OR"))).unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }

    // Goal: a panic inside DataFusion, planning or running a query, is
    // that query's QueryFailed error (the statement comes from anyone
    // allowed to query: it must not end their connection to cairnd, nor
    // `cairn query`), and the engine answers the next query.
    #[test]
    fn a_panic_in_the_sql_engine_is_the_querys_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), cairn_engine::Options::default()).unwrap());
        store.append(&[br#"{"eventTime":"2026-01-01T00:00:00Z","eventName":"GetObject","eventID":"e1"}"#.as_slice()]).unwrap();
        let sql = Sql::new(store.clone(), Limits::default()).unwrap();
        for at_run in [true, false] {
            sql.ctx.register_udf(ScalarUDF::new_from_impl(Panics { signature: Signature::any(1, Volatility::Immutable), at_run }));
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        for (q, why) in [
            ("SELECT panics_when_run(eventname) FROM events", "while running"),
            ("SELECT panics_when_planned(eventname) FROM events", "while planning"),
        ] {
            let e = rt.block_on(sql.collect(q)).unwrap_err();
            assert!(matches!(&e, SqlError::Failed(m) if m.contains("the SQL engine failed") && m.contains(why)), "{q}: {e}");
        }
        let (_, batches) = rt.block_on(sql.collect("SELECT count(*) FROM events")).unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1, "the next query is answered");
    }

    // Goal: only bare mentions of the id become the table's name; text in
    // any kind of quote or comment stays as written.
    #[test]
    fn the_id_is_replaced_only_where_bare() {
        let id = "5e1f0c2a9b7d3e41";
        let cases = [
            ("SELECT * FROM 5e1f0c2a9b7d3e41", "SELECT * FROM events"),
            ("SELECT * FROM 5e1f0c2a9b7d3e41-- a comment", "SELECT * FROM events-- a comment"),
            ("SELECT '5e1f0c2a9b7d3e41' FROM 5E1F0C2A9B7D3E41", "SELECT '5e1f0c2a9b7d3e41' FROM events"),
            (
                "SELECT 1 FROM x WHERE a LIKE E'%can\\'t%' AND b = '5e1f0c2a9b7d3e41'",
                "SELECT 1 FROM x WHERE a LIKE E'%can\\'t%' AND b = '5e1f0c2a9b7d3e41'",
            ),
            (
                "SELECT 1 /* a /* nested */ 5e1f0c2a9b7d3e41 */ FROM 5e1f0c2a9b7d3e41",
                "SELECT 1 /* a /* nested */ 5e1f0c2a9b7d3e41 */ FROM events",
            ),
            (
                "SELECT $$5e1f0c2a9b7d3e41$$, `5e1f0c2a9b7d3e41` FROM 5e1f0c2a9b7d3e41",
                "SELECT $$5e1f0c2a9b7d3e41$$, `5e1f0c2a9b7d3e41` FROM events",
            ),
            ("SELECT x5e1f0c2a9b7d3e41 FROM t -- 5e1f0c2a9b7d3e41 don't", "SELECT x5e1f0c2a9b7d3e41 FROM t -- 5e1f0c2a9b7d3e41 don't"),
            ("SELECT 'it''s' FROM \"5e1f0c2a9b7d3e41\"", "SELECT 'it''s' FROM \"5e1f0c2a9b7d3e41\""),
        ];
        for (input, want) in cases {
            assert_eq!(name_the_table(input, id), want, "{input}");
        }
        // Unclosed quotes and comments end at the end; nothing panics.
        for input in ["SELECT '", "SELECT E'\\", "/* /*", "$", "$a", "$a$ x", "--"] {
            let _ = name_the_table(input, id);
        }
    }
}
