//! Test support: an in-memory connector (sources split rows across workers, sinks
//! collect committed rows), plan builders and a 1-vs-4-worker runner.
#![allow(dead_code)]

use sluice_catalogs::{Field, Schema, SourceCapabilities, SqlType, TableDescriptor, Watermark};
use sluice_compiler::eval::Evaluator;
use sluice_compiler::{DataflowPlan, Datum, Output, PhysicalPlan, Row, SinkTarget, SortKey};
use sluice_connectors::{
    BadRecord, Connector, ConnectorError, Registry, Sink, Source, SourcePoll, WorkerContext,
};
use sluice_dataflow::{run, ExecutionError, Progress, RunOptions, RunOutput};
use sluice_gpu::{batch_to_rows, rows_to_batch};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One in-memory table: rows (of the table schema) and bad records.
#[derive(Clone, Default)]
pub struct MemTable {
    pub rows: Vec<Row>,
    pub bad: Vec<BadRecord>,
}

/// The in-memory connector `memory`. Worker `w` of `n` reads rows `i` with
/// `i % n == w`, in order; worker 0 reports every bad record with its first poll.
#[derive(Default)]
pub struct MemoryConnector {
    pub tables: Mutex<BTreeMap<String, MemTable>>,
    /// Committed rows per sink table.
    pub committed: Mutex<BTreeMap<String, Vec<Row>>>,
}

impl MemoryConnector {
    pub fn committed(&self, table: &str) -> Vec<Row> {
        let mut rows = self
            .committed
            .lock()
            .unwrap()
            .get(table)
            .cloned()
            .unwrap_or_default();
        rows.sort();
        rows
    }
}

struct MemSource {
    rows: Vec<Row>,
    bad: Vec<BadRecord>,
    schema: Schema,
    filters: Vec<Evaluator>,
    next: usize,
}

impl Source for MemSource {
    fn poll(&mut self, max_rows: usize) -> sluice_connectors::Result<SourcePoll> {
        if self.next >= self.rows.len() && self.bad.is_empty() {
            return Ok(SourcePoll::Finished);
        }
        let end = (self.next + max_rows).min(self.rows.len());
        let mut out = Vec::new();
        for row in &self.rows[self.next..end] {
            let mut keep = true;
            for f in &self.filters {
                match f.eval(row) {
                    Ok(Datum::Bool(true)) => {}
                    Ok(_) => keep = false,
                    Err(e) => return Err(ConnectorError::Format(e.to_string())),
                }
            }
            if keep {
                out.push(row.clone());
            }
        }
        self.next = end;
        let batch = rows_to_batch(&out, &self.schema)
            .map_err(|e| ConnectorError::Internal(e.to_string()))?;
        Ok(SourcePoll::Batch {
            batch,
            bad: std::mem::take(&mut self.bad),
        })
    }
    fn position(&self) -> serde_json::Value {
        serde_json::json!(self.next)
    }
    fn seek(&mut self, position: &serde_json::Value) -> sluice_connectors::Result<()> {
        self.next = position.as_u64().unwrap_or(0) as usize;
        Ok(())
    }
}

struct MemSink {
    table: String,
    staged: Vec<Row>,
    prepared: Vec<Row>,
    connector: Arc<MemoryConnector>,
}

impl Sink for MemSink {
    fn write(&mut self, batch: &arrow::record_batch::RecordBatch) -> sluice_connectors::Result<()> {
        let types: Vec<sluice_catalogs::SqlType> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| {
                sluice_catalogs::SqlType::from_arrow(f.data_type())
                    .unwrap_or(sluice_catalogs::SqlType::Null)
            })
            .collect();
        let rows =
            batch_to_rows(batch, &types).map_err(|e| ConnectorError::Internal(e.to_string()))?;
        self.staged.extend(rows);
        Ok(())
    }
    fn prepare_commit(&mut self, _epoch: u64) -> sluice_connectors::Result<()> {
        self.prepared.append(&mut self.staged);
        Ok(())
    }
    fn commit(&mut self, _epoch: u64) -> sluice_connectors::Result<()> {
        let rows = std::mem::take(&mut self.prepared);
        self.connector
            .committed
            .lock()
            .unwrap()
            .entry(self.table.clone())
            .or_default()
            .extend(rows);
        Ok(())
    }
}

/// A registrable handle (the registry wants an `Arc<dyn Connector>`, the sinks want
/// the same `Arc<MemoryConnector>`).
pub struct MemoryHandle(pub Arc<MemoryConnector>);

impl Connector for MemoryHandle {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn validate(
        &self,
        _options: &BTreeMap<String, String>,
        _schema: &Schema,
    ) -> sluice_connectors::Result<SourceCapabilities> {
        Ok(SourceCapabilities {
            filter_pushdown: true,
            projection_pushdown: true,
            bounded: true,
            ..Default::default()
        })
    }
    fn create_source(
        &self,
        table: &TableDescriptor,
        projection: &[usize],
        filters: &[sluice_compiler::ScalarExpr],
        ctx: WorkerContext,
    ) -> sluice_connectors::Result<Box<dyn Source>> {
        let data = self
            .0
            .tables
            .lock()
            .unwrap()
            .get(&table.name)
            .cloned()
            .ok_or_else(|| ConnectorError::Config(format!("no table {}", table.name)))?;
        let rows: Vec<Row> = data
            .rows
            .iter()
            .enumerate()
            .filter(|(i, _)| i % ctx.workers == ctx.worker)
            .map(|(_, r)| projection.iter().map(|&c| r[c].clone()).collect())
            .collect();
        let schema = Schema::new(
            projection
                .iter()
                .map(|&c| table.schema.fields[c].clone())
                .collect(),
        );
        let types = schema.types();
        Ok(Box::new(MemSource {
            rows,
            bad: if ctx.worker == 0 { data.bad } else { vec![] },
            schema,
            filters: filters.iter().map(|f| Evaluator::new(f, &types)).collect(),
            next: 0,
        }))
    }
    fn create_sink(
        &self,
        table: &TableDescriptor,
        _ctx: WorkerContext,
    ) -> sluice_connectors::Result<Box<dyn Sink>> {
        Ok(Box::new(MemSink {
            table: table.name.clone(),
            staged: vec![],
            prepared: vec![],
            connector: self.0.clone(),
        }))
    }
}

/// A test environment: the connector and its registry.
pub struct Env {
    pub memory: Arc<MemoryConnector>,
    pub registry: Registry,
}

impl Env {
    pub fn new() -> Self {
        let memory = Arc::new(MemoryConnector::default());
        let mut registry = Registry::empty();
        registry.register(Arc::new(MemoryHandle(memory.clone())));
        Env { memory, registry }
    }

    /// Registers `rows` under a new table and returns its descriptor.
    pub fn table(&self, name: &str, fields: &[(&str, SqlType)], rows: Vec<Row>) -> TableDescriptor {
        self.table_with(name, fields, rows, vec![], None, &[])
    }

    pub fn table_with(
        &self,
        name: &str,
        fields: &[(&str, SqlType)],
        rows: Vec<Row>,
        bad: Vec<BadRecord>,
        watermark: Option<Watermark>,
        options: &[(&str, &str)],
    ) -> TableDescriptor {
        self.memory
            .tables
            .lock()
            .unwrap()
            .insert(name.to_string(), MemTable { rows, bad });
        let mut opts: BTreeMap<String, String> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        opts.insert("connector".into(), "memory".into());
        TableDescriptor {
            name: name.to_string(),
            schema: schema(fields),
            connector: "memory".into(),
            options: opts,
            watermark,
            capabilities: SourceCapabilities {
                filter_pushdown: true,
                projection_pushdown: true,
                bounded: true,
                ..Default::default()
            },
        }
    }

    /// Runs with `workers` workers and `batch_size`.
    pub fn run_with(
        &self,
        plan: &DataflowPlan,
        workers: usize,
        batch_size: usize,
    ) -> Result<RunOutput, ExecutionError> {
        let options = RunOptions::new(self.registry.clone())
            .with_workers(workers)
            .with_batch_size(batch_size);
        run(plan, options, Arc::new(Progress::new()))
    }

    /// Runs the single-Collect `plan` at 1 and 4 workers (batch size 3), asserts both
    /// give the same rows and returns them.
    pub fn collect_1_and_4(&self, plan: &DataflowPlan) -> Vec<Row> {
        let one = self.run_with(plan, 1, 3).expect("1 worker");
        let four = self.run_with(plan, 4, 3).expect("4 workers");
        assert_eq!(one.collected, four.collected, "1 vs 4 workers");
        one.collected[0].rows.clone()
    }
}

pub fn schema(fields: &[(&str, SqlType)]) -> Schema {
    Schema::new(fields.iter().map(|(n, t)| Field::new(*n, *t)).collect())
}

/// A full-table source.
pub fn scan(table: &TableDescriptor) -> PhysicalPlan {
    PhysicalPlan::Source {
        table: table.clone(),
        projection: (0..table.schema.len()).collect(),
        filters: vec![],
    }
}

/// A plan with one collected output.
pub fn collect(plan: PhysicalPlan) -> DataflowPlan {
    collect_ordered(plan, vec![], None, 0)
}

pub fn collect_ordered(
    plan: PhysicalPlan,
    order: Vec<SortKey>,
    limit: Option<u64>,
    offset: u64,
) -> DataflowPlan {
    let schema = plan.schema();
    DataflowPlan {
        outputs: vec![Output {
            target: SinkTarget::Collect {
                order,
                limit,
                offset,
            },
            plan,
            schema,
            updating: true,
            sink: Default::default(),
        }],
    }
}

pub fn int(i: i64) -> Datum {
    Datum::Int(i)
}
pub fn s(x: &str) -> Datum {
    Datum::Str(x.to_string())
}
pub fn ts(t: i64) -> Datum {
    Datum::Timestamp(t)
}

/// Sorted copy.
pub fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

/// A small deterministic pseudo-random generator (xorshift).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}
