//! The master's workflow operations, between the thin REST handlers
//! (`api/workflows.rs`) and the [`WorkflowStore`](super::WorkflowStore): validation
//! (names, cron and zone, the DAG, every task's SQL rendered with a sample tick and
//! compiled against the catalog), versioning, manual runs, backfills and cancels, each
//! written durably before it is acknowledged, then a wake-up for the reconcile loop
//! (whose scheduler half starts the runs' tasks). It shares the [`Core`] with the jobs
//! service and nothing else.

use super::runs::{new_run, request_cancel};
use super::schedule::Schedule;
use super::template::{render, run_parameters, valid_parameter_name};
use super::{
    run_id, CatchupPolicy, ConcurrencyPolicy, RunState, RunTrigger, ScheduleSpec, SchedulerState,
    TaskSpec, Workflow, WorkflowRun, WorkflowSpec,
};
use crate::core::Core;
use crate::model::{now_ms, FORMAT_VERSION};
use crate::service::{check_name, check_resources, invalid, plan_is_bounded, ServiceError};
use crate::store::StoreError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Most tasks in one workflow.
pub const MAX_TASKS: usize = 64;
/// Most user parameters of one workflow.
pub const MAX_PARAMETERS: usize = 64;
/// Longest parameter value (bytes).
pub const MAX_PARAMETER_BYTES: usize = 4096;
/// Most retries of one task.
pub const MAX_RETRIES: u32 = 100;
/// Longest retry backoff (ms): one day.
pub const MAX_BACKOFF_MS: u64 = 24 * 3600 * 1000;
/// Longest task timeout (ms): one week.
pub const MAX_TIMEOUT_MS: u64 = 7 * 24 * 3600 * 1000;
/// Most runs one backfill creates.
pub const MAX_BACKFILL_RUNS: usize = 1000;

/// A change to a workflow; `None` leaves a field as it is (`tasks` and `parameters`
/// are replaced whole).
#[derive(Clone, Debug, Default)]
pub struct WorkflowPatch {
    /// New schedule.
    pub schedule: Option<ScheduleSpec>,
    /// New tasks.
    pub tasks: Option<Vec<TaskSpec>>,
    /// New parameters.
    pub parameters: Option<BTreeMap<String, String>>,
    /// New concurrency policy.
    pub concurrency: Option<ConcurrencyPolicy>,
    /// New catch-up policy.
    pub catchup: Option<CatchupPolicy>,
    /// Enable or disable the schedule.
    pub enabled: Option<bool>,
    /// New cluster.
    pub cluster: Option<String>,
}

/// What a backfill did.
#[derive(Clone, Debug)]
pub struct Backfill {
    /// The runs it created, oldest first.
    pub created: Vec<WorkflowRun>,
    /// Ticks in the range that already had a run (their run ids).
    pub existing: Vec<String>,
}

fn not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("workflow '{name}' does not exist"))
}

/// The first cycle among `tasks`' dependencies, as `a → b → a`, if any.
fn find_cycle(tasks: &[TaskSpec]) -> Option<String> {
    let deps: BTreeMap<&str, Vec<&str>> = tasks
        .iter()
        .map(|t| {
            (
                t.id.as_str(),
                t.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    // 0 unvisited, 1 on the path, 2 done.
    let mut mark: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        n: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        mark: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<String> {
        match mark.get(n) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut cycle: Vec<&str> = path[from..].to_vec();
                cycle.push(n);
                return Some(cycle.join(" → "));
            }
            _ => {}
        }
        mark.insert(n, 1);
        path.push(n);
        for d in deps.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, deps, mark, path) {
                return Some(c);
            }
        }
        path.pop();
        mark.insert(n, 2);
        None
    }
    for t in tasks {
        let mut path = Vec::new();
        if let Some(c) = visit(&t.id, &deps, &mut mark, &mut path) {
            return Some(c);
        }
    }
    None
}

/// Scheduler settings (`sluice serve` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Cycle interval (ms); changes through the API wake it up at once.
    pub interval_ms: u64,
    /// Under catch-up `none`, a tick this late (ms) still runs.
    pub misfire_grace_ms: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            interval_ms: 250,
            misfire_grace_ms: 10_000,
        }
    }
}

/// The workflows service: the core, and what only workflows have (their store and the
/// scheduler's settings).
pub struct WorkflowsService {
    /// What it shares with the jobs service.
    pub core: Arc<Core>,
    /// Workflows, the scheduler's last ticks and the run history.
    pub store: Arc<dyn super::WorkflowStore>,
    /// The workflow scheduler's settings.
    pub scheduler: SchedulerConfig,
}

impl WorkflowsService {
    /// Wakes the reconcile loop so a change takes effect now.
    pub fn wake_scheduler(&self) {
        self.core.wake();
    }

    /// Validates a workflow: its name, schedule, cluster, DAG and parameters, and that
    /// every task's SQL renders (with the next tick and the default parameters) and
    /// compiles against the catalog into a bounded plan.
    pub fn validate_workflow(&self, name: &str, spec: &WorkflowSpec) -> Result<(), ServiceError> {
        check_name("workflow", name)?;
        let schedule = Schedule::parse(&spec.schedule.cron, &spec.schedule.timezone)
            .map_err(|e| invalid(e.to_string()))?;
        if spec.tasks.is_empty() {
            return Err(invalid("a workflow needs at least one task"));
        }
        if spec.tasks.len() > MAX_TASKS {
            return Err(invalid(format!(
                "a workflow has at most {MAX_TASKS} tasks (got {})",
                spec.tasks.len()
            )));
        }
        if spec.parameters.len() > MAX_PARAMETERS {
            return Err(invalid(format!(
                "a workflow has at most {MAX_PARAMETERS} parameters"
            )));
        }
        for (k, v) in &spec.parameters {
            if !valid_parameter_name(k) {
                return Err(invalid(format!(
                    "invalid parameter name '{}': use letters, digits and '_' (not starting with a digit, at most 63), and none of the built-ins ({})",
                    k.chars().take(80).collect::<String>(),
                    super::template::BUILTINS.join(", ")
                )));
            }
            if v.len() > MAX_PARAMETER_BYTES {
                return Err(invalid(format!(
                    "parameter '{k}' is {} bytes; at most {MAX_PARAMETER_BYTES}",
                    v.len()
                )));
            }
        }
        let mut ids = BTreeSet::new();
        for t in &spec.tasks {
            check_name("task", &t.id)?;
            if !ids.insert(t.id.as_str()) {
                return Err(invalid(format!("task id '{}' is used twice", t.id)));
            }
        }
        for t in &spec.tasks {
            let mut seen = BTreeSet::new();
            for d in &t.depends_on {
                if !ids.contains(d.as_str()) {
                    return Err(invalid(format!(
                        "task '{}' depends on unknown task '{}'",
                        t.id,
                        d.chars().take(80).collect::<String>()
                    )));
                }
                if !seen.insert(d.as_str()) {
                    return Err(invalid(format!(
                        "task '{}' lists dependency '{d}' twice",
                        t.id
                    )));
                }
            }
            check_resources(&t.resources).map_err(|e| invalid(format!("task '{}': {e}", t.id)))?;
            self.core
                .check_cluster(&spec.cluster, &t.resources)
                .map_err(|e| invalid(format!("task '{}': {e}", t.id)))?;
            if t.retries > MAX_RETRIES {
                return Err(invalid(format!(
                    "task '{}': retries must be at most {MAX_RETRIES} (got {})",
                    t.id, t.retries
                )));
            }
            if t.retry_backoff_ms > MAX_BACKOFF_MS {
                return Err(invalid(format!(
                    "task '{}': retry_backoff_ms must be at most {MAX_BACKOFF_MS} (got {})",
                    t.id, t.retry_backoff_ms
                )));
            }
            if let Some(timeout) = t.timeout_ms {
                if timeout == 0 || timeout > MAX_TIMEOUT_MS {
                    return Err(invalid(format!(
                        "task '{}': timeout_ms must be between 1 and {MAX_TIMEOUT_MS} (got {timeout})",
                        t.id
                    )));
                }
            }
        }
        if let Some(cycle) = find_cycle(&spec.tasks) {
            return Err(invalid(format!(
                "the tasks' dependencies form a cycle: {cycle}"
            )));
        }
        // Every task's SQL, rendered as a run of the next tick would render it.
        let now = now_ms();
        let tick = schedule.next_after(now).unwrap_or(now);
        let params = run_parameters(
            tick,
            schedule.tz(),
            &format!("{name}-sample"),
            &spec.parameters,
            &BTreeMap::new(),
        );
        self.check_task_sql(&spec.tasks, &params)?;
        Ok(())
    }

    /// The spec with every task's secret option values sealed (as stored).
    fn seal_workflow(&self, mut spec: WorkflowSpec) -> WorkflowSpec {
        for t in &mut spec.tasks {
            t.sql = self.core.seal_sql(&t.sql);
        }
        spec
    }

    /// Creates a workflow: validates, stores (durably) with its scheduler state starting
    /// now (the first tick is the first one after its creation), wakes the scheduler.
    pub fn create_workflow(
        &self,
        name: &str,
        spec: WorkflowSpec,
    ) -> Result<Workflow, ServiceError> {
        self.validate_workflow(name, &spec)?;
        let spec = self.seal_workflow(spec);
        if self.store.get_workflow(name)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "workflow '{name}' already exists"
            )));
        }
        let now = now_ms();
        let wf = Workflow {
            format_version: FORMAT_VERSION,
            id: format!("w{:06}", self.core.store.next_id()?),
            name: name.to_string(),
            version: 1,
            spec,
            created_at_ms: now,
            updated_at_ms: now,
            run_key: super::new_run_key(),
        };
        let state = SchedulerState {
            format_version: FORMAT_VERSION,
            workflow_id: wf.id.clone(),
            last_tick_ms: now,
        };
        self.store.create_workflow(&wf, &state)?;
        self.wake_scheduler();
        Ok(wf)
    }

    /// Changes a workflow; bumps its version when anything changed. Runs already
    /// created keep the tasks they were created with. A new schedule, or enabling a
    /// disabled workflow, starts the schedule from now (ticks before are not caught up).
    pub fn update_workflow(
        &self,
        name: &str,
        patch: WorkflowPatch,
    ) -> Result<Workflow, ServiceError> {
        let old = self.workflow(name)?;
        let mut spec = old.spec.clone();
        if let Some(s) = patch.schedule {
            spec.schedule = s;
        }
        if let Some(t) = patch.tasks {
            spec.tasks = t;
        }
        if let Some(p) = patch.parameters {
            spec.parameters = p;
        }
        if let Some(c) = patch.concurrency {
            spec.concurrency = c;
        }
        if let Some(c) = patch.catchup {
            spec.catchup = c;
        }
        if let Some(e) = patch.enabled {
            spec.enabled = e;
        }
        if let Some(c) = patch.cluster {
            spec.cluster = c;
        }
        if spec == old.spec {
            return Ok(old);
        }
        self.validate_workflow(name, &spec)?;
        let spec = self.seal_workflow(spec);
        let now = now_ms();
        let restart_schedule =
            spec.schedule != old.spec.schedule || (spec.enabled && !old.spec.enabled);
        let state = if restart_schedule {
            let last = self
                .store
                .get_scheduler_state(&old.id)?
                .map_or(now, |s| s.last_tick_ms.max(now));
            Some(SchedulerState {
                format_version: FORMAT_VERSION,
                workflow_id: old.id.clone(),
                last_tick_ms: last,
            })
        } else {
            None
        };
        let wf = Workflow {
            version: old.version + 1,
            spec,
            updated_at_ms: now,
            ..old.clone()
        };
        self.store
            .update_workflow(&wf, old.version, state.as_ref())?;
        self.wake_scheduler();
        Ok(wf)
    }

    /// Deletes a workflow; its active runs are cancelled (their instances stopped).
    /// Its run history stays in the store under its id.
    pub fn delete_workflow(&self, name: &str) -> Result<Workflow, ServiceError> {
        let Some(wf) = self.store.delete_workflow(name)? else {
            return Err(not_found(name));
        };
        for run in self.store.active_runs()? {
            if run.workflow_id == wf.id {
                let _ = self.cancel_run_record(&run);
            }
        }
        self.wake_scheduler();
        Ok(wf)
    }

    /// A workflow by name.
    pub fn workflow(&self, name: &str) -> Result<Workflow, ServiceError> {
        self.store
            .get_workflow(name)?
            .ok_or_else(|| not_found(name))
    }

    /// The scheduler's state of a workflow.
    pub fn scheduler_state(&self, wf: &Workflow) -> Result<SchedulerState, ServiceError> {
        Ok(self
            .store
            .get_scheduler_state(&wf.id)?
            .unwrap_or(SchedulerState {
                format_version: FORMAT_VERSION,
                workflow_id: wf.id.clone(),
                last_tick_ms: wf.created_at_ms,
            }))
    }

    /// Renders every task's SQL with `params` and compiles it against the catalog (and
    /// the job sandbox) into a bounded plan: at validation with the defaults, and again
    /// at a trigger with the run's own parameters.
    fn check_task_sql(
        &self,
        tasks: &[super::TaskSpec],
        params: &BTreeMap<String, String>,
    ) -> Result<(), ServiceError> {
        for t in tasks {
            crate::service::check_sql(&t.sql)
                .map_err(|e| invalid(format!("task '{}': {e}", t.id)))?;
            let rendered = render(&t.sql, params).map_err(|e| ServiceError::TaskSql {
                task: t.id.clone(),
                kind: "template".to_string(),
                message: e.to_string(),
                line: Some(e.line),
                column: Some(e.column),
            })?;
            let compiled = self.core.compile_job_sql(&rendered).map_err(|e| match e {
                ServiceError::Sql(c) => ServiceError::TaskSql {
                    task: t.id.clone(),
                    kind: format!("{:?}", c.kind).to_lowercase(),
                    message: c.to_string(),
                    line: c.position.map(|p| p.line),
                    column: c.position.map(|p| p.column),
                },
                ServiceError::Invalid { message } => invalid(format!("task '{}': {message}", t.id)),
                other => other,
            })?;
            if compiled.plan.outputs.is_empty() {
                return Err(invalid(format!(
                    "task '{}' has no INSERT INTO: a task writes its results to a table",
                    t.id
                )));
            }
            if !plan_is_bounded(&compiled.plan) {
                return Err(invalid(format!(
                    "task '{}' reads an unbounded source: a task must finish by itself",
                    t.id
                )));
            }
        }
        Ok(())
    }

    /// Starts a run now, with `overrides` of the workflow's parameters, standing for
    /// `logical_time_ms` (default: now, to the second). Under the `skip` and `queue`
    /// policies it waits for the active run; it is never skipped.
    pub fn trigger_workflow(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        logical_time_ms: Option<i64>,
    ) -> Result<WorkflowRun, ServiceError> {
        let wf = self.workflow(name)?;
        for (k, v) in &overrides {
            if !wf.spec.parameters.contains_key(k) {
                return Err(invalid(format!(
                    "workflow '{name}' has no parameter '{}' (parameters: {})",
                    k.chars().take(80).collect::<String>(),
                    wf.spec
                        .parameters
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if v.len() > MAX_PARAMETER_BYTES {
                return Err(invalid(format!(
                    "parameter '{k}' is {} bytes; at most {MAX_PARAMETER_BYTES}",
                    v.len()
                )));
            }
        }
        let now = now_ms();
        let logical = logical_time_ms.unwrap_or(now.div_euclid(1000) * 1000);
        let id = super::manual_run_id(&wf);
        let run = new_run(
            &wf,
            id,
            RunTrigger::Manual,
            logical,
            &overrides,
            RunState::Queued,
            now,
        );
        // The run's own parameters are values: re-checked here, so a trigger whose
        // values do not make valid tasks is refused now rather than failing later.
        self.check_task_sql(&wf.spec.tasks, &run.parameters)?;
        self.store.create_runs(std::slice::from_ref(&run), None)?;
        self.wake_scheduler();
        Ok(run)
    }

    /// Creates one run per tick of the schedule in `[start_ms, end_ms]` (at most
    /// [`MAX_BACKFILL_RUNS`]); a tick that already has a run (scheduled or backfilled)
    /// keeps it. Runs wait for each other under `skip` and `queue`.
    pub fn backfill_workflow(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Backfill, ServiceError> {
        let wf = self.workflow(name)?;
        if start_ms > end_ms {
            return Err(invalid("start must not be after end"));
        }
        let now = now_ms();
        if end_ms > now {
            return Err(invalid("end must not be in the future"));
        }
        let schedule = Schedule::parse(&wf.spec.schedule.cron, &wf.spec.schedule.timezone)
            .map_err(|e| invalid(e.to_string()))?;
        let ticks = schedule.ticks_between(start_ms - 1, end_ms, MAX_BACKFILL_RUNS + 1);
        if ticks.len() > MAX_BACKFILL_RUNS {
            return Err(invalid(format!(
                "the range holds more than {MAX_BACKFILL_RUNS} ticks: backfill it in parts"
            )));
        }
        if ticks.is_empty() {
            return Err(invalid("no tick of the schedule falls in the range"));
        }
        let runs: Vec<WorkflowRun> = ticks
            .iter()
            .map(|&t| {
                new_run(
                    &wf,
                    run_id(&wf, t),
                    RunTrigger::Backfill,
                    t,
                    &BTreeMap::new(),
                    RunState::Queued,
                    now,
                )
            })
            .collect();
        let inserted: BTreeSet<String> = self.store.create_runs(&runs, None)?.into_iter().collect();
        self.wake_scheduler();
        let (created, existing): (Vec<WorkflowRun>, Vec<WorkflowRun>) =
            runs.into_iter().partition(|r| inserted.contains(&r.run_id));
        Ok(Backfill {
            created,
            existing: existing.into_iter().map(|r| r.run_id).collect(),
        })
    }

    /// A workflow's runs, by logical time.
    pub fn workflow_runs(&self, name: &str) -> Result<(Workflow, Vec<WorkflowRun>), ServiceError> {
        let wf = self.workflow(name)?;
        let runs = self.store.list_runs(&wf.id)?;
        Ok((wf, runs))
    }

    /// One run of a workflow.
    pub fn workflow_run(&self, name: &str, run_id: &str) -> Result<WorkflowRun, ServiceError> {
        let wf = self.workflow(name)?;
        self.store.get_run(&wf.id, run_id)?.ok_or_else(|| {
            ServiceError::NotFound(format!(
                "run '{}' of workflow '{name}' does not exist",
                run_id.chars().take(80).collect::<String>()
            ))
        })
    }

    /// Marks a run cancelled-on-request (retrying over concurrent scheduler writes).
    fn cancel_run_record(&self, run: &WorkflowRun) -> Result<WorkflowRun, ServiceError> {
        let mut current = run.clone();
        for _ in 0..20 {
            if current.state.is_terminal() {
                return Err(ServiceError::Conflict(
                    format!(
                        "run '{}' has already ended ({:?})",
                        current.run_id, current.state
                    )
                    .to_lowercase(),
                ));
            }
            if current.cancel_requested {
                return Ok(current);
            }
            match self.store.update_run(&request_cancel(&current)) {
                Ok(stored) => return Ok(stored),
                Err(StoreError::VersionMismatch { .. }) => {
                    match self.store.get_run(&current.workflow_id, &current.run_id)? {
                        Some(r) => current = r,
                        None => {
                            return Err(ServiceError::NotFound(format!(
                                "run '{}' does not exist",
                                current.run_id
                            )))
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(format!(
            "run '{}' keeps changing; try again",
            run.run_id
        )))
    }

    /// Cancels a run: the scheduler stops its running instances and marks the tasks
    /// that have not run `skipped`. `Conflict` when the run has already ended.
    pub fn cancel_workflow_run(
        &self,
        name: &str,
        run_id: &str,
    ) -> Result<WorkflowRun, ServiceError> {
        let run = self.workflow_run(name, run_id)?;
        let stored = self.cancel_run_record(&run)?;
        self.wake_scheduler();
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;

    fn task(id: &str, deps: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            sql: String::new(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            retries: 0,
            retry_backoff_ms: 0,
            timeout_ms: None,
            resources: Resources::default(),
        }
    }

    #[test]
    fn workflow_cycles_are_found_and_named() {
        assert_eq!(find_cycle(&[task("a", &[]), task("b", &["a"])]), None);
        assert_eq!(
            find_cycle(&[task("a", &["c"]), task("b", &["a"]), task("c", &["b"])]),
            Some("a → c → b → a".to_string())
        );
        assert_eq!(find_cycle(&[task("a", &["a"])]), Some("a → a".to_string()));
    }
}
