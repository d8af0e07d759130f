//! The master's shared core, under its two services — jobs ([`crate::jobs`]) and
//! workflows ([`crate::workflow::service`]): the durable store, the clusters, the
//! connector registry behind compilation and the sandbox, sealing of secret option
//! values, the checkpoint store, the watchdog's counters, and the one reconcile loop's
//! wake-up line. Neither service reaches into the other's state; both reach this.

use crate::checkpoints::CheckpointStore;
use crate::cluster::Cluster;
use crate::model::{now_ms, ObservedInstance, Resources, StoredTable, FORMAT_VERSION};
use crate::service::{
    check_name, check_sql, derive_processes, fits, invalid, Counters, ServiceError,
};
use crate::store::Store;
use sluice_catalogs::{Catalog, CatalogError, MemoryCatalog, TableDescriptor};
use sluice_compiler::{compile, compile_tables, CompileError, Compiled, PhysicalPlan};
use sluice_connectors::Registry;
use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// What both services share (see the module's documentation).
pub struct Core {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Arc<dyn Cluster>>,
    /// Connectors (for compiling).
    pub registry: Registry,
    /// Metrics counters.
    pub counters: Mutex<Counters>,
    /// Jobs checkpoint under `<this>/<job id>/` (`<data dir>/checkpoints`, or
    /// `--checkpoint-store`).
    pub checkpoints: CheckpointStore,
    /// Seals secret option values at rest (`<data dir>/secret.key`); none: stored plain.
    pub seal_key: Option<sluice_catalogs::sealed::SealKey>,
    /// Where that key is, for the worker processes that open the values.
    pub seal_key_path: Option<std::path::PathBuf>,
    /// What jobs' tables may touch (paths, endpoints, credentials); none: anything
    /// (a master built by a test). `sluice serve` always has one.
    pub sandbox: Option<crate::sandbox::Sandbox>,
    /// The agents of the `hosts` clusters (`sluice agent`); none: no such cluster.
    pub agents: Option<Arc<crate::cluster::AgentRegistry>>,
    /// Wakes the reconcile loop up early (after a change to a job or a workflow).
    pub wake: Mutex<Option<Sender<()>>>,
}

impl Core {
    /// A core over `store` and `clusters`, with the built-in connectors, checkpoints
    /// under `checkpoints`, nothing sealed, no sandbox and no agents (what tests build;
    /// `sluice serve` sets the rest).
    pub fn new(
        store: Arc<dyn Store>,
        clusters: BTreeMap<String, Arc<dyn Cluster>>,
        checkpoints: CheckpointStore,
    ) -> Core {
        Core {
            store,
            clusters,
            registry: Registry::builtin(),
            counters: Mutex::new(Counters::default()),
            checkpoints,
            seal_key: None,
            seal_key_path: None,
            sandbox: None,
            agents: None,
            wake: Mutex::new(None),
        }
    }
}

/// A catalog over the store's tables.
struct StoreCatalog<'a> {
    store: &'a dyn Store,
}

impl Catalog for StoreCatalog<'_> {
    fn table(&self, name: &str) -> Result<Option<TableDescriptor>, CatalogError> {
        self.store
            .get_table(name)
            .map(|t| t.map(|t| t.descriptor))
            .map_err(|e| CatalogError::Unavailable(e.to_string()))
    }
    fn table_names(&self) -> Result<Vec<String>, CatalogError> {
        self.store
            .list_tables()
            .map(|ts| ts.into_iter().map(|t| t.descriptor.name).collect())
            .map_err(|e| CatalogError::Unavailable(e.to_string()))
    }
}

impl Core {
    /// `sql` with its secret option values sealed (as stored).
    pub fn seal_sql(&self, sql: &str) -> String {
        match &self.seal_key {
            Some(key) => key.seal_sql_options(sql, rand::random),
            None => sql.to_string(),
        }
    }

    /// `plan` with the secret option values of its tables sealed (as stored and sent to
    /// instances, which open them with the key file).
    pub fn seal_plan(
        &self,
        mut plan: sluice_compiler::DataflowPlan,
    ) -> sluice_compiler::DataflowPlan {
        if let Some(key) = &self.seal_key {
            plan.for_each_table_mut(&mut |t| {
                key.seal_options(&mut t.options, rand::random);
            });
        }
        plan
    }

    /// The key file instances open sealed values with.
    pub fn seal_key_file(&self) -> Option<String> {
        self.seal_key_path.as_ref().map(|p| p.display().to_string())
    }

    /// Wakes the reconcile loop up so a change takes effect now rather than at the next
    /// tick.
    pub fn wake(&self) {
        if let Ok(guard) = self.wake.lock() {
            if let Some(tx) = guard.as_ref() {
                let _ = tx.send(());
            }
        }
    }

    /// The connector registry behind the sandbox's checks.
    fn validator(&self) -> crate::sandbox::SandboxedValidator<'_> {
        crate::sandbox::SandboxedValidator {
            registry: &self.registry,
            sandbox: self.sandbox.as_ref(),
        }
    }

    /// Checks every table a compiled script uses against the sandbox: the script's own
    /// tables were checked (with positions) as they were bound; this catches catalog
    /// tables stored before the sandbox's roots changed.
    fn check_sandbox(&self, compiled: &Compiled) -> Result<(), ServiceError> {
        let Some(sandbox) = &self.sandbox else {
            return Ok(());
        };
        let mut result = Ok(());
        let mut check = |t: &TableDescriptor| {
            if result.is_ok() {
                if let Err(m) = sandbox.check(&t.options) {
                    result = Err(ServiceError::Sql(CompileError::plan(
                        format!("table '{}': {m}", t.name),
                        None,
                    )));
                }
            }
        };
        fn walk(p: &PhysicalPlan, check: &mut dyn FnMut(&TableDescriptor)) {
            if let PhysicalPlan::Source { table, .. } = p {
                check(table);
            }
            for i in p.inputs() {
                walk(i, check);
            }
        }
        for o in &compiled.plan.outputs {
            walk(&o.plan, &mut check);
            if let sluice_compiler::SinkTarget::Table(t) = &o.target {
                check(t);
            }
        }
        result
    }

    /// Compiles a job's SQL against the stored tables.
    pub fn compile_job_sql(&self, sql: &str) -> Result<Compiled, ServiceError> {
        let compiled = self.validate(sql)?;
        if compiled.explain.is_some() {
            return Err(invalid(
                "a job cannot contain EXPLAIN: use POST /api/v1/jobs/validate to see its plans",
            ));
        }
        let collects = compiled
            .plan
            .outputs
            .iter()
            .any(|o| matches!(o.target, sluice_compiler::SinkTarget::Collect { .. }));
        if collects {
            // A job runs without a client: the rows of a bare SELECT would go nowhere.
            return Err(ServiceError::Sql(CompileError::plan(
                "a job cannot end in a bare SELECT (its rows would be discarded): write them \
                 with INSERT INTO a sink table, or preview its rows with POST /api/v1/queries (`sluice run`)",
                sluice_compiler::parse::bare_query_position(sql),
            )));
        }
        Ok(compiled)
    }

    /// Checks that cluster `name` exists and could ever hold `resources`.
    pub fn check_cluster(&self, name: &str, resources: &Resources) -> Result<(), ServiceError> {
        let Some(cluster) = self.clusters.get(name) else {
            return Err(invalid(format!(
                "cluster '{name}' does not exist (clusters: {})",
                self.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let cap = cluster.capacity();
        if u64::from(resources.parallelism) > cap.workers
            || resources.memory_mb > cap.memory_mb
            || u64::from(resources.gpus) > cap.gpus
        {
            return Err(invalid(format!(
                "cluster '{name}' can never hold this job: it asks for {} workers, {} MiB, {} GPUs; the cluster has {} workers, {} MiB, {} GPUs in all",
                resources.parallelism, resources.memory_mb, resources.gpus, cap.workers, cap.memory_mb, cap.gpus
            )));
        }
        let most = cluster.threads_per_process();
        if !fits(resources.parallelism, resources.processes, most) {
            let threads = resources.threads_per_process();
            let fewest = derive_processes(resources.parallelism, most)
                .map_or(String::new(), |n| format!(", or ask for {n}"));
            return Err(invalid(format!(
                "cluster '{name}' can never hold this job: each of its {} processes would run {threads} worker threads, and one process here runs at most {most}; leave resources.processes out to have the fewest that fit chosen{fewest}",
                resources.processes
            )));
        }
        Ok(())
    }

    /// The processes a job of `parallelism` worker threads runs as on cluster `name`
    /// when it names none: the fewest that keep each process within the cluster's
    /// [`Cluster::threads_per_process`] (one when none do: [`Core::check_cluster`]
    /// then says why the job cannot run there).
    pub fn processes_for(&self, cluster: &str, parallelism: u32) -> u32 {
        derive_processes(parallelism, self.threads_per_process(cluster)).unwrap_or(1)
    }

    /// Whether `resources`' process count still suits cluster `name`: it divides the
    /// parallelism and keeps each process within the cluster's threads per process.
    pub fn processes_fit(&self, cluster: &str, resources: &Resources) -> bool {
        fits(
            resources.parallelism,
            resources.processes,
            self.threads_per_process(cluster),
        )
    }

    fn threads_per_process(&self, cluster: &str) -> u64 {
        self.clusters
            .get(cluster)
            .map_or(u64::MAX, |c| c.threads_per_process())
    }

    /// Every instance on every cluster, by id.
    pub fn instances(&self) -> Result<Vec<ObservedInstance>, ServiceError> {
        let mut out = Vec::new();
        for c in self.clusters.values() {
            out.extend(
                c.observe()
                    .map_err(|e| ServiceError::Cluster(e.to_string()))?,
            );
        }
        out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(out)
    }

    /// One instance.
    pub fn instance(&self, id: &str) -> Result<(ObservedInstance, Arc<dyn Cluster>), ServiceError> {
        for c in self.clusters.values() {
            let found = c
                .observe()
                .map_err(|e| ServiceError::Cluster(e.to_string()))?
                .into_iter()
                .find(|i| i.instance_id == id);
            if let Some(i) = found {
                return Ok((i, c.clone()));
            }
        }
        Err(ServiceError::NotFound(format!(
            "instance '{id}' does not exist"
        )))
    }

    /// Validates SQL without storing anything.
    pub fn validate(&self, sql: &str) -> Result<Compiled, ServiceError> {
        check_sql(sql)?;
        let catalog = StoreCatalog {
            store: self.store.as_ref(),
        };
        let compiled = compile(sql, &catalog, &self.validator()).map_err(ServiceError::Sql)?;
        self.check_sandbox(&compiled)?;
        Ok(compiled)
    }

    /// Creates catalog tables from `CREATE TABLE` statements.
    pub fn create_tables(&self, ddl: &str) -> Result<Vec<StoredTable>, ServiceError> {
        check_sql(ddl)?;
        let catalog = StoreCatalog {
            store: self.store.as_ref(),
        };
        // Bind against the stored tables, so a name clash is reported with its position.
        let layered = MemoryCatalog::layered(&catalog);
        let tables = compile_tables(ddl, &layered, &self.validator()).map_err(ServiceError::Sql)?;
        for t in &tables {
            check_name("table", &t.name)?;
        }
        let now = now_ms();
        let mut out = Vec::new();
        // Each table keeps its own `CREATE TABLE` text, not the whole request's: a
        // table dropped later must not live on in its neighbours' DDL.
        let texts: Vec<String> = sluice_compiler::parse::statement_texts(ddl)
            .map_err(ServiceError::Sql)?
            .into_iter()
            .filter(|t| is_create_table(t))
            .collect();
        let whole = (texts.len() != tables.len()).then(|| self.seal_sql(ddl.trim()));
        for (i, mut t) in tables.into_iter().enumerate() {
            let own_ddl = match &whole {
                Some(w) => w.clone(),
                None => self.seal_sql(&texts[i]),
            };
            if let Some(key) = &self.seal_key {
                key.seal_options(&mut t.options, rand::random);
            }
            let stored = StoredTable {
                format_version: FORMAT_VERSION,
                ddl: own_ddl,
                descriptor: t,
                created_at_ms: now,
            };
            self.store.create_table(&stored)?;
            out.push(stored);
        }
        Ok(out)
    }
}

/// True when a statement's text (comments allowed before it) is a `CREATE TABLE`.
fn is_create_table(text: &str) -> bool {
    let code: String = text
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    let mut words = code.split_whitespace().map(str::to_ascii_uppercase);
    matches!(
        (words.next().as_deref(), words.next().as_deref()),
        (Some("CREATE"), Some("TABLE"))
    )
}
