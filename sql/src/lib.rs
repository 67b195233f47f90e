//! SQL over a Cairn store, as CloudTrail Lake answers it: Apache
//! DataFusion with the `events` table ([`table::EventsTable`], Lake's
//! columns, [`columns`]) and Lake's functions that DataFusion lacks
//! ([`functions`]). Queries only read (SELECT; no DDL, DML or SET), run
//! within a memory pool, and stream: a query over years of events holds
//! a few batches at a time, not its range.

pub mod columns;
pub mod functions;
pub mod output;
pub mod table;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_engine::Store;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;

pub use table::ScanStats;

/// The name of the table of every stored event.
pub const TABLE: &str = "events";

/// Limits of a query engine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory for sorts, joins and aggregations (DataFusion's memory
    /// pool); a query that needs more fails with a clear error.
    pub memory_bytes: usize,
    /// Longest query text, in bytes (Lake's: 10,000 characters).
    pub statement_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 512 << 20, statement_bytes_max: 10_000 }
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

fn planning(e: DataFusionError) -> SqlError {
    SqlError::InvalidStatement(e.to_string())
}

fn running(e: DataFusionError) -> SqlError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(m) => SqlError::ResourcesExceeded(format!(
            "the query needs more memory than the query memory limit allows ({m}); narrow its time range or add a LIMIT"
        )),
        _ => SqlError::Failed(e.to_string()),
    }
}

/// A query engine over one store.
pub struct Sql {
    ctx: SessionContext,
    stats: Arc<ScanStats>,
    limits: Limits,
}

/// A query's results as they stream, and what its scans read.
pub struct Running {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
}

impl Sql {
    pub fn new(store: Arc<Store>, limits: Limits) -> Result<Sql, SqlError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let config = SessionConfig::new().with_target_partitions(threads).with_information_schema(false);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(|e| SqlError::Failed(e.to_string()))?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let stats = Arc::new(ScanStats::default());
        ctx.register_table(TABLE, Arc::new(table::EventsTable::new(store, stats.clone()))).map_err(planning)?;
        for f in functions::all() {
            ctx.register_udf(f);
        }
        Ok(Sql { ctx, stats, limits })
    }

    /// Events (and their record bytes) the scans of this engine have read
    /// so far.
    pub fn scanned(&self) -> (u64, u64) {
        (self.stats.events.load(Ordering::Relaxed), self.stats.bytes.load(Ordering::Relaxed))
    }

    /// Plans `statement` (one SELECT) and starts it.
    pub async fn start(&self, statement: &str) -> Result<Running, SqlError> {
        if statement.len() > self.limits.statement_bytes_max {
            return Err(SqlError::InvalidStatement(format!(
                "the query is {} bytes; the limit is {}",
                statement.len(),
                self.limits.statement_bytes_max
            )));
        }
        let read_only = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let df = self.ctx.sql_with_options(statement, read_only).await.map_err(planning)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await.map_err(running)?;
        Ok(Running { schema, stream })
    }

    /// Runs `statement` to its end: every result batch.
    pub async fn collect(&self, statement: &str) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
        let Running { schema, mut stream } = self.start(statement).await?;
        let mut out = Vec::new();
        while let Some(b) = stream.next().await {
            out.push(b.map_err(running)?);
        }
        Ok((schema, out))
    }
}
