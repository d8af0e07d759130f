//! A third-party connector, defined outside the connectors crate and registered the
//! way `docs/connectors.md` tells a connector author to: implement `Connector` (plus
//! `Source` and/or `Sink`), add it to a `Registry`, compile against that registry and
//! run the plan with it. Here: a `squares` source (n, n²) and a `memory` sink that
//! commits rows into a shared vector only on `commit`.

use arrow::array::{Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use arrow::record_batch::RecordBatch;
use sluice_catalogs::{MemoryCatalog, Schema, SourceCapabilities, SqlType, TableDescriptor};
use sluice_compiler::ScalarExpr;
use sluice_connectors::{
    Connector, ConnectorError, Registry, Result, Sink, Source, SourcePoll, WorkerContext,
};
use sluice_dataflow::{Progress, RunOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// `'connector' = 'squares'`, `'count' = N`: rows (n, n*n) for n in 1..=N, dealt to
/// workers round-robin.
struct SquaresConnector;

impl Connector for SquaresConnector {
    fn name(&self) -> &'static str {
        "squares"
    }

    fn validate(
        &self,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities> {
        for k in options.keys() {
            if k != "connector" && k != "count" {
                return Err(ConnectorError::Config(format!(
                    "unknown option '{k}' for connector 'squares' (valid: 'count')"
                )));
            }
        }
        let count = options
            .get("count")
            .ok_or_else(|| ConnectorError::Config("option 'count' is required".into()))?;
        count.parse::<i64>().map_err(|_| {
            ConnectorError::Config(format!("option 'count' = '{count}' is not a number"))
        })?;
        if schema.fields.iter().any(|f| f.ty != SqlType::BigInt) {
            return Err(ConnectorError::Config(
                "squares columns must be BIGINT".into(),
            ));
        }
        // No push-down: the dataflow filters above this source.
        Ok(SourceCapabilities {
            filter_pushdown: false,
            projection_pushdown: true,
            bounded: true,
            ..Default::default()
        })
    }

    fn create_source(
        &self,
        table: &TableDescriptor,
        projection: &[usize],
        _filters: &[ScalarExpr],
        ctx: WorkerContext,
    ) -> Result<Box<dyn Source>> {
        let count: i64 = table
            .option("count")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ConnectorError::Config("option 'count' is required".into()))?;
        let fields: Vec<Field> = projection
            .iter()
            .map(|&i| Field::new(&table.schema.fields[i].name, DataType::Int64, true))
            .collect();
        Ok(Box::new(SquaresSource {
            next: 1 + ctx.worker as i64,
            step: ctx.workers as i64,
            count,
            projection: projection.to_vec(),
            schema: Arc::new(ArrowSchema::new(fields)),
        }))
    }

    fn create_sink(&self, table: &TableDescriptor, _ctx: WorkerContext) -> Result<Box<dyn Sink>> {
        Err(ConnectorError::Config(format!(
            "connector 'squares' cannot be written to (table '{}')",
            table.name
        )))
    }
}

struct SquaresSource {
    next: i64,
    step: i64,
    count: i64,
    projection: Vec<usize>,
    schema: Arc<ArrowSchema>,
}

impl Source for SquaresSource {
    fn poll(&mut self, max_rows: usize) -> Result<SourcePoll> {
        if self.next > self.count {
            return Ok(SourcePoll::Finished);
        }
        let mut ns = Vec::new();
        while self.next <= self.count && ns.len() < max_rows {
            ns.push(self.next);
            self.next += self.step;
        }
        let columns: Vec<Arc<dyn Array>> = self
            .projection
            .iter()
            .map(|&c| {
                let values: Int64Array = ns
                    .iter()
                    .map(|&n| Some(if c == 0 { n } else { n * n }))
                    .collect();
                Arc::new(values) as Arc<dyn Array>
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| ConnectorError::Internal(e.to_string()))?;
        Ok(SourcePoll::Batch { batch, bad: vec![] })
    }

    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "next": self.next })
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        self.next = position["next"]
            .as_i64()
            .ok_or_else(|| ConnectorError::Internal(format!("bad position {position}")))?;
        Ok(())
    }
}

/// `'connector' = 'memory'`: rows become visible in `rows` on commit.
#[derive(Default)]
struct MemoryConnector {
    rows: Arc<Mutex<Vec<Vec<i64>>>>,
}

impl Connector for MemoryConnector {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn validate(
        &self,
        _options: &BTreeMap<String, String>,
        _schema: &Schema,
    ) -> Result<SourceCapabilities> {
        Ok(SourceCapabilities::default())
    }

    fn create_sink(&self, _table: &TableDescriptor, _ctx: WorkerContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(MemorySink {
            pending: Vec::new(),
            prepared: BTreeMap::new(),
            visible: self.rows.clone(),
        }))
    }
}

struct MemorySink {
    pending: Vec<Vec<i64>>,
    prepared: BTreeMap<u64, Vec<Vec<i64>>>,
    visible: Arc<Mutex<Vec<Vec<i64>>>>,
}

impl Sink for MemorySink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|c| {
                    c.as_any()
                        .downcast_ref::<Int64Array>()
                        .map(|a| a.value(row))
                        .ok_or_else(|| ConnectorError::Internal("expected BIGINT".into()))
                })
                .collect::<Result<Vec<i64>>>()?;
            self.pending.push(values);
        }
        Ok(())
    }

    fn prepare_commit(&mut self, epoch: u64) -> Result<()> {
        let rows = std::mem::take(&mut self.pending);
        self.prepared.entry(epoch).or_default().extend(rows);
        Ok(())
    }

    fn commit(&mut self, epoch: u64) -> Result<()> {
        if let Some(rows) = self.prepared.remove(&epoch) {
            self.visible
                .lock()
                .map_err(|_| ConnectorError::Internal("poisoned".into()))?
                .extend(rows);
        }
        Ok(())
    }
}

#[test]
fn a_third_party_connector_registered_like_a_builtin_one_runs_a_job() {
    let memory = MemoryConnector::default();
    let visible = memory.rows.clone();
    let mut registry = Registry::builtin();
    registry.register(Arc::new(SquaresConnector));
    registry.register(Arc::new(memory));

    let sql =
        "CREATE TABLE sq (n BIGINT, sq BIGINT) WITH ('connector' = 'squares', 'count' = '1000');\n\
               CREATE TABLE out (n BIGINT, sq BIGINT) WITH ('connector' = 'memory');\n\
               INSERT INTO out SELECT n, sq FROM sq WHERE n % 7 = 0 AND sq > 100;\n";
    let compiled = sluice_compiler::compile(sql, &MemoryCatalog::new(), &registry).unwrap();
    for workers in [1, 3] {
        visible.lock().unwrap().clear();
        let options = RunOptions::new(registry.clone()).with_workers(workers);
        sluice_dataflow::run(&compiled.plan, options, Arc::new(Progress::default())).unwrap();
        let mut got = visible.lock().unwrap().clone();
        got.sort();
        let expected: Vec<Vec<i64>> = (1..=1000i64)
            .filter(|n| n % 7 == 0 && n * n > 100)
            .map(|n| vec![n, n * n])
            .collect();
        assert_eq!(got, expected, "workers = {workers}");
    }

    // Its option errors reach the user with the statement's position, like a built-in's.
    let err = sluice_compiler::compile(
        "CREATE TABLE s (n BIGINT) WITH ('connector' = 'squares');\nSELECT * FROM s;",
        &MemoryCatalog::new(),
        &registry,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("option 'count' is required"),
        "{err}"
    );
    assert!(err.to_string().contains("line 1"), "{err}");
}
