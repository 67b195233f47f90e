//! SQL queries that run in the background, as CloudTrail Lake runs them:
//! `start` plans a statement (a bad one fails at once) and runs it on the
//! query runtime; its rows are kept, as text, for `GetQueryResults`;
//! `describe` tells its status and statistics; `cancel` stops it.
//!
//! Limits: at most `query_concurrency` queries run at once (more are
//! refused, as Lake's MaxConcurrentQueriesException); their sorts and
//! aggregations share one memory pool of `query_memory_bytes`; a query
//! still running after `query_timeout` ends TIMED_OUT with the rows it
//! had; a query whose results pass `query_results_bytes` fails and says
//! so. Finished queries are kept for [`KEPT`], the newest [`KEPT_MAX`] of
//! them, in memory: a restart forgets them (the store is unchanged:
//! queries only read).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_engine::Store;
use cairn_sql::{Limits, Sql, SqlError};
use parking_lot::Mutex;

/// How long a finished query's results stay readable (Lake: 7 days).
pub const KEPT: Duration = Duration::from_secs(7 * 86_400);
/// At most this many queries are remembered; the oldest finished go first.
pub const KEPT_MAX: usize = 1000;
/// ... and the results kept, all together, are at most this many times
/// one query's limit (`query_results_mib`).
pub const KEPT_RESULTS_FACTOR: usize = 4;
/// What a kept value costs besides its bytes (its `Option<String>`), and
/// a kept row besides its values: counted against the results limits.
const VALUE_OVERHEAD: usize = std::mem::size_of::<Option<String>>();
const ROW_OVERHEAD: usize = std::mem::size_of::<Vec<Option<String>>>();

/// A query's state, with Lake's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Finished,
    Failed,
    Cancelled,
    TimedOut,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Cancelled => "CANCELLED",
            Status::TimedOut => "TIMED_OUT",
        }
    }

    /// Every state a query can be asked for by (ListQueries' filter).
    pub const NAMES: [&'static str; 6] = ["QUEUED", "RUNNING", "FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"];
}

/// Why a query was not started.
#[derive(Debug)]
pub enum StartError {
    /// The statement does not plan (syntax, an unknown column, not a
    /// SELECT): Lake's InvalidQueryStatementException.
    Invalid(String),
    /// `query_concurrency` queries are running.
    TooMany(usize),
    /// Anything else (the query runtime is gone at shutdown).
    Failed(String),
}

impl StartError {
    /// The error's name on both APIs, and its message.
    pub fn named(self) -> (&'static str, String) {
        match self {
            StartError::Invalid(m) => (crate::protocol::codes::INVALID_QUERY_STATEMENT, m),
            StartError::TooMany(n) => (
                crate::protocol::codes::MAX_CONCURRENT_QUERIES,
                format!("{n} queries are running, the most this server runs at once (query_concurrency); retry when one has ended"),
            ),
            StartError::Failed(m) => (crate::protocol::codes::INTERNAL, m),
        }
    }
}

/// One query: what it was asked, and what it has so far.
pub struct Query {
    pub id: String,
    pub statement: String,
    /// Unix milliseconds.
    pub created_ms: i64,
    started: Instant,
    cancel: tokio::sync::Notify,
    state: Mutex<State>,
}

/// A query's progress; the rows are final once the status is not
/// Running.
#[derive(Default)]
pub struct State {
    pub status: Option<Status>,
    pub error: Option<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Bytes of the rows' values (the results limit counts these).
    pub bytes: usize,
    pub events_scanned: u64,
    pub bytes_scanned: u64,
    pub events_matched: u64,
    pub elapsed_ms: u64,
    /// When the query ended (for how long it is kept).
    ended: Option<Instant>,
    /// Its rows went to a Cairn-protocol client and were not kept.
    pub streamed: bool,
}

impl Query {
    /// Its state now (a copy of the counters and status; rows by `with`).
    pub fn with<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock())
    }

    pub fn status(&self) -> Status {
        self.state.lock().status.unwrap_or(Status::Running)
    }

    /// Ends the query TIMED_OUT if it has run past `timeout`. Its task
    /// notices at its next await; this makes the status true at once,
    /// even while a long computation keeps that task from running.
    fn expire(&self, timeout: Duration) {
        let mut s = self.state.lock();
        if s.status == Some(Status::Running) && self.started.elapsed() >= timeout {
            s.status = Some(Status::TimedOut);
            s.error = Some(timed_out(timeout));
            s.elapsed_ms = self.started.elapsed().as_millis() as u64;
            s.ended = Some(Instant::now());
            drop(s);
            self.cancel.notify_one();
        }
    }

    /// Records how a query ended, unless it was already ended (cancelled,
    /// timed out), and its final statistics.
    fn finish(&self, running: &cairn_sql::Running, status: Status, error: Option<String>) {
        let mut s = self.state.lock();
        (s.events_scanned, s.bytes_scanned) = running.scanned();
        s.events_matched = running.matched();
        if s.status == Some(Status::Running) {
            s.status = Some(status);
            s.error = error;
            s.elapsed_ms = self.started.elapsed().as_millis() as u64;
            s.ended = Some(Instant::now());
        }
    }

    /// Milliseconds it has run (to its end once it ended).
    pub fn elapsed_ms(&self) -> u64 {
        let s = self.state.lock();
        if s.ended.is_some() {
            s.elapsed_ms
        } else {
            self.started.elapsed().as_millis() as u64
        }
    }
}

/// The running and remembered queries of a daemon.
pub struct Queries {
    sql: Sql,
    /// DataFusion's runtime; `None` once shut down.
    rt: Mutex<Option<tokio::runtime::Runtime>>,
    all: Mutex<VecDeque<Arc<Query>>>,
    concurrency: usize,
    timeout: Duration,
    results_bytes: usize,
    shutting_down: AtomicBool,
    /// Starts between their place being taken and their registration.
    planning: std::sync::atomic::AtomicUsize,
}

impl Queries {
    pub fn new(
        store: Arc<Store>,
        concurrency: usize,
        memory_bytes: usize,
        timeout: Duration,
        results_bytes: usize,
    ) -> anyhow::Result<Queries> {
        let sql = Sql::new(store, Limits { memory_bytes, ..Limits::default() })?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).thread_name("cairnd-sql").enable_time().build()?;
        Ok(Queries {
            sql,
            rt: Mutex::new(Some(rt)),
            all: Mutex::new(VecDeque::new()),
            concurrency,
            timeout,
            results_bytes,
            shutting_down: AtomicBool::new(false),
            planning: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The store's id, the table's name in Lake's queries.
    pub fn store_id(&self) -> &str {
        self.sql.id()
    }

    fn handle(&self) -> Result<tokio::runtime::Handle, StartError> {
        match &*self.rt.lock() {
            Some(rt) if !self.shutting_down.load(Ordering::SeqCst) => Ok(rt.handle().clone()),
            _ => Err(StartError::Failed("cairnd is shutting down".into())),
        }
    }

    /// Plans `statement` and registers it as running (a bad statement,
    /// or the concurrency limit, refuses it here).
    fn plan(&self, statement: &str, id: String, now_ms: i64) -> Result<Planned, StartError> {
        let rt = self.handle()?;
        // A place is counted and taken under the lock, so two starts cannot
        // both take the last one; the lock is not held while planning.
        {
            let all = self.all.lock();
            all.iter().for_each(|q| self.expire(q));
            let running = all.iter().filter(|q| q.status() == Status::Running).count();
            if running + self.planning.load(Ordering::SeqCst) >= self.concurrency {
                return Err(StartError::TooMany(self.concurrency));
            }
            self.planning.fetch_add(1, Ordering::SeqCst);
        }
        // Planned on this (the request's) thread, inside the query
        // runtime's context for the tasks it spawns: the runtime's
        // workers may be busy computing other queries.
        let planned = rt.block_on(self.sql.start(statement));
        let mut all = self.all.lock();
        self.planning.fetch_sub(1, Ordering::SeqCst);
        let running = match planned {
            Ok(r) => r,
            Err(SqlError::InvalidStatement(m)) => return Err(StartError::Invalid(m)),
            Err(e) => return Err(StartError::Failed(e.to_string())),
        };
        let query = Arc::new(Query {
            id,
            statement: statement.to_string(),
            created_ms: now_ms,
            started: Instant::now(),
            cancel: tokio::sync::Notify::new(),
            state: Mutex::new(State {
                status: Some(Status::Running),
                columns: running.schema.fields().iter().map(|f| f.name().clone()).collect(),
                ..State::default()
            }),
        });
        forget_old(&mut all, self.results_bytes.saturating_mul(KEPT_RESULTS_FACTOR));
        all.push_back(query.clone());
        Ok(Planned { query, running, rt, timeout: self.timeout })
    }

    /// Plans `statement` and runs it in the background, keeping its rows
    /// for `GetQueryResults`.
    pub fn start(&self, statement: &str, id: String, now_ms: i64) -> Result<Arc<Query>, StartError> {
        let p = self.plan(statement, id, now_ms)?;
        let q = p.query.clone();
        p.rt.clone().spawn(run(p, self.results_bytes));
        Ok(q)
    }

    /// Plans `statement` for a caller that takes its batches as they come
    /// ([`Planned::next_batch`]) instead of keeping them (the TCP protocol's
    /// `Query`); it counts against the limits like any query.
    pub fn stream(&self, statement: &str, id: String, now_ms: i64) -> Result<Planned, StartError> {
        let p = self.plan(statement, id, now_ms)?;
        p.query.state.lock().streamed = true;
        Ok(p)
    }

    /// The query with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Query>> {
        let q = self.all.lock().iter().find(|q| q.id == id).cloned()?;
        self.expire(&q);
        Some(q)
    }

    /// Every remembered query, newest first.
    pub fn list(&self) -> Vec<Arc<Query>> {
        let all: Vec<_> = self.all.lock().iter().rev().cloned().collect();
        all.iter().for_each(|q| self.expire(q));
        all
    }

    /// Ends a query that has run past the timeout (also done by every
    /// call that reads a query's status). The query's task
    /// notices at its next await; this makes the status true at once,
    /// even while a long computation keeps that task from running.
    fn expire(&self, q: &Query) {
        q.expire(self.timeout);
    }

    /// Stops a running query: true if it was running (it is CANCELLED
    /// now, with the rows it had).
    pub fn cancel(&self, q: &Query) -> bool {
        let mut s = q.state.lock();
        if s.status != Some(Status::Running) {
            return false;
        }
        s.status = Some(Status::Cancelled);
        s.elapsed_ms = q.started.elapsed().as_millis() as u64;
        s.ended = Some(Instant::now());
        drop(s);
        q.cancel.notify_one();
        true
    }

    /// Refuses new queries and cancels the running ones (the first step
    /// of a shutdown: a connection streaming a query ends it).
    pub fn cancel_all(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for q in self.list() {
            self.cancel(&q);
        }
    }

    /// Cancels every running query and stops the runtime (daemon
    /// shutdown, once the connections are done); the scans' threads end
    /// at their next batch.
    pub fn shutdown(&self) {
        self.cancel_all();
        if let Some(rt) = self.rt.lock().take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Drops finished queries past [`KEPT`], and the oldest finished ones
/// beyond [`KEPT_MAX`] or while all kept results pass `bytes_max`.
fn forget_old(all: &mut VecDeque<Arc<Query>>, bytes_max: usize) {
    let expired = |q: &Arc<Query>| q.state.lock().ended.is_some_and(|t| t.elapsed() > KEPT);
    all.retain(|q| !expired(q));
    let mut bytes: usize = all.iter().map(|q| q.state.lock().bytes).sum();
    while all.len() >= KEPT_MAX || bytes > bytes_max {
        match all.iter().position(|q| q.status() != Status::Running) {
            Some(i) => {
                if let Some(q) = all.remove(i) {
                    bytes = bytes.saturating_sub(q.state.lock().bytes);
                }
            }
            None => break,
        }
    }
}

/// A planned query, registered as running.
pub struct Planned {
    pub query: Arc<Query>,
    running: cairn_sql::Running,
    rt: tokio::runtime::Handle,
    timeout: Duration,
}

impl Planned {
    /// The result's schema.
    pub fn schema(&self) -> cairn_sql::SchemaRef {
        self.running.schema.clone()
    }

    /// The next batch, on the calling thread (not in an async context);
    /// `None` at the end, or once the query is cancelled or timed out.
    pub fn next_batch(&mut self) -> Option<Result<cairn_sql::RecordBatch, String>> {
        let q = self.query.clone();
        let left = self.timeout.saturating_sub(q.started.elapsed());
        let running = &mut self.running;
        let next = self.rt.block_on(async {
            tokio::select! {
                b = running.next() => Some(b),
                _ = tokio::time::sleep(left) => None,
                _ = q.cancel.notified() => None,
            }
        });
        q.expire(self.timeout);
        match next {
            Some(b) if q.status() == Status::Running => b.map(|b| b.map_err(|e| e.to_string())),
            _ => None,
        }
    }

    /// Ends the query: FINISHED, or FAILED with `error` (a query already
    /// cancelled or timed out keeps that status).
    pub fn finish(self, error: Option<String>) -> Arc<Query> {
        let status = if error.is_some() { Status::Failed } else { Status::Finished };
        self.query.finish(&self.running, status, error);
        self.query.clone()
    }

    /// What the query's scans read so far: (events, bytes).
    pub fn scanned(&self) -> (u64, u64) {
        self.running.scanned()
    }
}

impl Drop for Planned {
    /// A query dropped without [`Planned::finish`] (its connection's
    /// thread failed) ends FAILED instead of holding its place.
    fn drop(&mut self) {
        self.query.finish(&self.running, Status::Failed, Some("QueryFailed: the query's connection ended".into()));
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("the query ran longer than {} seconds (query_timeout_secs); the rows found so far are kept", timeout.as_secs())
}

/// Runs a started query to its end (or its timeout, or a cancel), keeping
/// its rows as text.
async fn run(mut p: Planned, results_bytes: usize) {
    let (q, timeout) = (p.query.clone(), p.timeout);
    let running = &mut p.running;
    let drain = async {
        while let Some(batch) = running.next().await {
            let batch = batch.map_err(|e| e.to_string())?;
            let rows = cairn_sql::output::text_rows(&batch).map_err(|e| format!("QueryFailed: {e}"))?;
            let bytes: usize = rows
                .iter()
                .map(|r| ROW_OVERHEAD + r.iter().map(|v| VALUE_OVERHEAD + v.as_ref().map_or(0, |v| v.len())).sum::<usize>())
                .sum();
            let mut s = q.state.lock();
            // Ended meanwhile (cancelled, timed out): its rows are final.
            if s.status != Some(Status::Running) {
                return Ok(());
            }
            if s.bytes + bytes > results_bytes {
                return Err(format!(
                    "QueryResourcesExceededException: the results are over the limit of {} MiB kept per query (query_results_mib); aggregate, select fewer columns or add a LIMIT",
                    results_bytes >> 20
                ));
            }
            s.bytes += bytes;
            s.rows.extend(rows);
            (s.events_scanned, s.bytes_scanned) = running.scanned();
        }
        Ok(())
    };
    let left = timeout.saturating_sub(q.started.elapsed());
    let (status, error) = tokio::select! {
        r = drain => match r {
            Ok(()) => (Status::Finished, None),
            Err(m) => (Status::Failed, Some(m)),
        },
        _ = tokio::time::sleep(left) => (Status::TimedOut, Some(timed_out(timeout))),
        _ = q.cancel.notified() => (Status::Cancelled, None),
    };
    q.finish(running, status, error);
}
