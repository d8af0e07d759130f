//! `/api/v1/workflows`: create, list, get, change and delete scheduled workflows
//! (cron-driven DAGs of SQL tasks); their runs: list, get (each task's state,
//! attempts, instance and log link, rows in/out), trigger, backfill, cancel.

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::guard::secured;
use super::views::{rfc3339, ResourcesInput};
use super::AppState;
use crate::auth::Role;
use crate::model::ObservedInstance;
use crate::workflow::schedule::Schedule;
use crate::workflow::service::WorkflowPatch;
use crate::workflow::{
    AttemptOutcome, CatchupPolicy, ConcurrencyPolicy, RunState, RunTrigger, ScheduleSpec, TaskRun,
    TaskSpec, TaskState, Workflow, WorkflowRun, WorkflowSpec,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(secured(Role::Viewer, routes!(list_workflows)))
        .routes(secured(Role::Editor, routes!(create_workflow)))
        .routes(secured(Role::Viewer, routes!(get_workflow)))
        .routes(secured(Role::Editor, routes!(update_workflow)))
        .routes(secured(Role::Editor, routes!(delete_workflow)))
        .routes(secured(Role::Viewer, routes!(list_runs)))
        .routes(secured(Role::Editor, routes!(trigger_run)))
        .routes(secured(Role::Viewer, routes!(get_run)))
        .routes(secured(Role::Editor, routes!(cancel_run)))
        .routes(secured(Role::Editor, routes!(backfill)))
}

/// Default delay before a task's retry (ms).
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 10_000;

fn default_backoff() -> u64 {
    DEFAULT_RETRY_BACKOFF_MS
}

/// A task in a request.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Unique within the workflow: a letter, then letters, digits, `_` or `-`.
    #[schema(example = "extract", pattern = "^[A-Za-z][A-Za-z0-9_-]{0,62}$")]
    pub id: String,
    /// The SQL script (DDL, then `INSERT INTO … SELECT …` over bounded sources);
    /// `{{ logical_time }}`, `{{ ds }}`, `{{ ds_nodash }}`, `{{ ts_nodash }}`,
    /// `{{ run_id }}` and the workflow's parameters are substituted first.
    pub sql: String,
    /// Tasks that must succeed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Attempts after a failed one (default 0, at most 100).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub retries: u32,
    /// Delay before each retry in ms (default 10000).
    #[serde(default = "default_backoff")]
    pub retry_backoff_ms: u64,
    /// An attempt running longer (ms) is stopped and counts as failed.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// What each attempt asks of the cluster (defaults: parallelism 1, 1024 MiB, 0 GPUs).
    #[serde(default)]
    pub resources: ResourcesInput,
}

impl TaskRequest {
    /// The task as stored; `processes_for` chooses the process count of a task that
    /// names none, from its parallelism (the workflow's cluster decides, as for a job).
    fn into_spec(self, processes_for: &impl Fn(u32) -> u32) -> TaskSpec {
        TaskSpec {
            id: self.id,
            sql: self.sql,
            depends_on: self.depends_on,
            retries: self.retries,
            retry_backoff_ms: self.retry_backoff_ms,
            timeout_ms: self.timeout_ms,
            resources: self.resources.resolve(processes_for),
        }
    }
}

/// `POST /api/v1/workflows` (and the file `sluice workflow create` reads).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkflowRequest {
    /// Unique name: a letter, then letters, digits, `_` or `-` (at most 63).
    #[schema(
        example = "nightly",
        max_length = 63,
        pattern = "^[A-Za-z][A-Za-z0-9_-]{0,62}$"
    )]
    pub name: String,
    /// When it runs.
    pub schedule: ScheduleSpec,
    /// The DAG.
    pub tasks: Vec<TaskRequest>,
    /// Parameters (`{{ name }}` in task SQL) and their defaults.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// A tick while a run is active: `skip` (default), `queue` or `allow`.
    #[serde(default)]
    pub concurrency: ConcurrencyPolicy,
    /// Missed ticks after downtime: `none`, `latest` (default) or `all`.
    #[serde(default)]
    pub catchup: CatchupPolicy,
    /// False: no tick is scheduled (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The cluster (default `local`).
    #[serde(default)]
    pub cluster: Option<String>,
}

/// `PATCH /api/v1/workflows/{name}`: every field optional (`tasks` and `parameters`
/// are replaced whole); any change bumps the version.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkflowRequest {
    /// New schedule (ticks start after the change).
    pub schedule: Option<ScheduleSpec>,
    /// New tasks.
    pub tasks: Option<Vec<TaskRequest>>,
    /// New parameters.
    pub parameters: Option<BTreeMap<String, String>>,
    /// New concurrency policy.
    pub concurrency: Option<ConcurrencyPolicy>,
    /// New catch-up policy.
    pub catchup: Option<CatchupPolicy>,
    /// Enable (ticks start from now) or disable the schedule.
    pub enabled: Option<bool>,
    /// New cluster.
    pub cluster: Option<String>,
}

/// `POST /api/v1/workflows/{name}/runs`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// Values for some of the workflow's parameters.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// The logical time the run stands for (RFC 3339; default: now).
    #[serde(default)]
    #[schema(example = "2024-03-31T00:00:00Z")]
    pub logical_time: Option<String>,
}

/// `POST /api/v1/workflows/{name}/backfill`: one run per tick in `[start, end]`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// First instant of the range (RFC 3339, included).
    #[schema(example = "2024-03-01T00:00:00Z")]
    pub start: String,
    /// Last instant of the range (RFC 3339, included; not in the future).
    #[schema(example = "2024-03-07T23:59:59Z")]
    pub end: String,
}

/// What a backfill did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillResponse {
    /// The runs created, oldest first.
    pub created: Vec<RunView>,
    /// Run ids of ticks in the range that already had a run (left as they are).
    pub existing: Vec<String>,
}

/// A workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    /// Unique forever.
    pub id: String,
    /// Unique among live workflows.
    pub name: String,
    /// Bumped by every change.
    pub version: u64,
    /// When it runs.
    pub schedule: ScheduleSpec,
    /// The DAG.
    pub tasks: Vec<TaskSpec>,
    /// Parameters and their defaults.
    pub parameters: BTreeMap<String, String>,
    /// What a tick does while a run is active.
    pub concurrency: ConcurrencyPolicy,
    /// Which missed ticks run after downtime.
    pub catchup: CatchupPolicy,
    /// Whether ticks are scheduled.
    pub enabled: bool,
    /// The cluster.
    pub cluster: String,
    /// Ticks up to here are scheduled (RFC 3339).
    pub last_tick: String,
    /// The next tick, when enabled (RFC 3339).
    pub next_tick: Option<String>,
    /// Queued or running runs.
    pub active_runs: u64,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// One attempt of a task.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1, 2, …
    pub attempt: u32,
    /// Its instance.
    pub instance_id: String,
    /// Its log: `/api/v1/instances/{id}/logs` (while the cluster keeps it).
    pub logs: String,
    /// How it ended (absent while it runs).
    pub outcome: Option<AttemptOutcome>,
    /// Why it failed.
    pub message: Option<String>,
    /// Launched (RFC 3339).
    pub started_at: String,
    /// Ended (RFC 3339).
    pub ended_at: Option<String>,
    /// How long it ran (ms; so far, while it runs).
    pub duration_ms: i64,
    /// Rows its sources read.
    pub rows_in: u64,
    /// Rows its sinks wrote.
    pub rows_out: u64,
}

/// One task within a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskRunView {
    /// The task's id.
    pub id: String,
    /// `pending`, `running`, `succeeded`, `failed`, `retrying`, `skipped`,
    /// `upstream_failed` or `cancelled`.
    pub state: TaskState,
    /// Tasks it depends on.
    pub depends_on: Vec<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts allowed (1 + retries).
    pub max_attempts: u32,
    /// The latest attempt's instance.
    pub instance_id: Option<String>,
    /// The latest attempt's log (`/api/v1/instances/{id}/logs`).
    pub logs: Option<String>,
    /// First attempt launched (RFC 3339).
    pub started_at: Option<String>,
    /// Reached its final state (RFC 3339).
    pub ended_at: Option<String>,
    /// From the first launch to the end (or now), ms.
    pub duration_ms: Option<i64>,
    /// While retrying: when the next attempt may start (RFC 3339).
    pub next_attempt_at: Option<String>,
    /// Why it is in its state.
    pub message: Option<String>,
    /// Rows the latest attempt read.
    pub rows_in: u64,
    /// Rows the latest attempt wrote.
    pub rows_out: u64,
    /// Every attempt, oldest first.
    pub attempt_history: Vec<AttemptView>,
}

/// A run of a workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// `<workflow id>-<tick epoch seconds>-<32 hex digits>` (scheduled, backfill) or
    /// `<workflow id>-manual-<32 hex digits>`: the digits make it unguessable.
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow version whose tasks it runs.
    pub workflow_version: u64,
    /// `scheduled`, `manual` or `backfill`.
    pub trigger: RunTrigger,
    /// The tick it stands for (RFC 3339).
    pub logical_time: String,
    /// Every parameter its SQL is rendered with.
    pub parameters: BTreeMap<String, String>,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled` or `skipped`.
    pub state: RunState,
    /// Why it is in its state.
    pub message: Option<String>,
    /// True once a cancel was requested.
    pub cancel_requested: bool,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Started (RFC 3339).
    pub started_at: Option<String>,
    /// Ended (RFC 3339).
    pub ended_at: Option<String>,
    /// From start to end (or now), ms.
    pub duration_ms: Option<i64>,
    /// The tasks, in the workflow's order.
    pub tasks: Vec<TaskRunView>,
}

fn logs_link(instance_id: &str) -> String {
    format!("/api/v1/instances/{instance_id}/logs")
}

impl TaskRunView {
    fn new(t: &TaskRun, live: &BTreeMap<String, &ObservedInstance>, now: i64) -> Self {
        let attempt_history: Vec<AttemptView> = t
            .attempts
            .iter()
            .map(|a| {
                let inst = live.get(&a.instance_id).filter(|_| a.outcome.is_none());
                AttemptView {
                    attempt: a.attempt,
                    instance_id: a.instance_id.clone(),
                    logs: logs_link(&a.instance_id),
                    outcome: a.outcome,
                    message: a.message.clone(),
                    started_at: rfc3339(a.started_at_ms),
                    ended_at: a.ended_at_ms.map(rfc3339),
                    duration_ms: a.ended_at_ms.unwrap_or(now) - a.started_at_ms,
                    rows_in: inst.map_or(a.rows_in, |i| i.rows_in),
                    rows_out: inst.map_or(a.rows_out, |i| i.rows_out),
                }
            })
            .collect();
        let last = attempt_history.last();
        TaskRunView {
            id: t.spec.id.clone(),
            state: t.state,
            depends_on: t.spec.depends_on.clone(),
            attempts: t.attempts.len() as u32,
            max_attempts: t.spec.retries.saturating_add(1),
            instance_id: last.map(|a| a.instance_id.clone()),
            logs: last.map(|a| a.logs.clone()),
            started_at: t.started_at_ms().map(rfc3339),
            ended_at: t.ended_at_ms.map(rfc3339),
            duration_ms: t.started_at_ms().map(|s| t.ended_at_ms.unwrap_or(now) - s),
            next_attempt_at: t.next_attempt_at_ms.map(rfc3339),
            message: t.message.clone(),
            rows_in: last.map_or(0, |a| a.rows_in),
            rows_out: last.map_or(0, |a| a.rows_out),
            attempt_history,
        }
    }
}

impl RunView {
    /// The view of a run, with live counters from the instances observed.
    pub fn new(r: &WorkflowRun, instances: &[ObservedInstance]) -> Self {
        let now = crate::model::now_ms();
        let live: BTreeMap<String, &ObservedInstance> = instances
            .iter()
            .filter(|i| {
                matches!(&i.owner, sluice_compiler::instance::InstanceOwner::Task { run, .. }
                    if *run == r.run_id)
            })
            .map(|i| (i.instance_id.clone(), i))
            .collect();
        RunView {
            run_id: r.run_id.clone(),
            workflow: r.workflow_name.clone(),
            workflow_version: r.workflow_version,
            trigger: r.trigger,
            logical_time: rfc3339(r.logical_time_ms),
            parameters: r.parameters.clone(),
            state: r.state,
            message: r.message.clone(),
            cancel_requested: r.cancel_requested,
            created_at: rfc3339(r.created_at_ms),
            started_at: r.started_at_ms.map(rfc3339),
            ended_at: r.ended_at_ms.map(rfc3339),
            duration_ms: r.started_at_ms.map(|s| r.ended_at_ms.unwrap_or(now) - s),
            tasks: r
                .tasks
                .iter()
                .map(|t| TaskRunView::new(t, &live, now))
                .collect(),
        }
    }
}

fn workflow_view(m: &AppState, wf: &Workflow) -> Result<WorkflowView, ApiError> {
    let state = m.workflows.scheduler_state(wf)?;
    let active = m
        .workflows
        .store
        .active_runs()
        .map_err(crate::service::ServiceError::from)?
        .iter()
        .filter(|r| r.workflow_id == wf.id)
        .count() as u64;
    let next_tick = if wf.spec.enabled {
        Schedule::parse(&wf.spec.schedule.cron, &wf.spec.schedule.timezone)
            .ok()
            .and_then(|s| s.next_after(state.last_tick_ms))
            .map(rfc3339)
    } else {
        None
    };
    let s = &wf.spec;
    Ok(WorkflowView {
        id: wf.id.clone(),
        name: wf.name.clone(),
        version: wf.version,
        schedule: s.schedule.clone(),
        tasks: s
            .tasks
            .iter()
            .map(|t| TaskSpec {
                sql: sluice_catalogs::sealed::redact_sealed(&t.sql),
                ..t.clone()
            })
            .collect(),
        parameters: s.parameters.clone(),
        concurrency: s.concurrency,
        catchup: s.catchup,
        enabled: s.enabled,
        cluster: s.cluster.clone(),
        last_tick: rfc3339(state.last_tick_ms),
        next_tick,
        active_runs: active,
        created_at: rfc3339(wf.created_at_ms),
        updated_at: rfc3339(wf.updated_at_ms),
    })
}

fn parse_time(what: &str, s: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            ApiError::invalid(format!(
                "{what} must be an RFC 3339 time such as 2024-03-31T00:00:00Z ({e})"
            ))
        })
}

/// Create a workflow: the cron expression, time zone and DAG are checked and every
/// task's SQL is rendered (with the next tick) and compiled; errors name the task, and
/// SQL errors come back as 422 `invalid_sql` with `{task, line, column}`.
#[utoipa::path(post, path = "/api/v1/workflows", tag = "workflows",
    request_body = CreateWorkflowRequest,
    responses(
        (status = 201, description = "Created; its first tick is the first after now", body = WorkflowView),
        (status = 400, description = "Invalid request (name, cron, time zone, DAG, limits, cluster)", body = ErrorBody),
        (status = 409, description = "A workflow of that name exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body, or a task's SQL that does not render or compile", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn create_workflow(
    State(m): State<AppState>,
    ApiJson(req): ApiJson<CreateWorkflowRequest>,
) -> Result<(StatusCode, Json<WorkflowView>), ApiError> {
    let cluster = req.cluster.unwrap_or_else(|| "local".to_string());
    let processes_for = |p| m.core.processes_for(&cluster, p);
    let spec = WorkflowSpec {
        schedule: req.schedule,
        tasks: req
            .tasks
            .into_iter()
            .map(|t| t.into_spec(&processes_for))
            .collect(),
        parameters: req.parameters,
        concurrency: req.concurrency,
        catchup: req.catchup,
        enabled: req.enabled.unwrap_or(true),
        cluster: cluster.clone(),
    };
    let wf = m.workflows.create_workflow(&req.name, spec)?;
    Ok((StatusCode::CREATED, Json(workflow_view(&m, &wf)?)))
}

/// List workflows.
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows",
    responses(
        (status = 200, description = "Workflows by name", body = Vec<WorkflowView>),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn list_workflows(State(m): State<AppState>) -> Result<Json<Vec<WorkflowView>>, ApiError> {
    let all = m
        .workflows
        .store
        .list_workflows()
        .map_err(crate::service::ServiceError::from)?;
    let views = all
        .iter()
        .map(|w| workflow_view(&m, w))
        .collect::<Result<_, _>>()?;
    Ok(Json(views))
}

/// One workflow, with its last and next tick.
#[utoipa::path(get, path = "/api/v1/workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn get_workflow(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<WorkflowView>, ApiError> {
    let wf = m.workflows.workflow(&name)?;
    Ok(Json(workflow_view(&m, &wf)?))
}

/// Change a workflow (validated like a creation); any change bumps its version. Runs
/// already created keep the tasks they were created with.
#[utoipa::path(patch, path = "/api/v1/workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    request_body = UpdateWorkflowRequest,
    responses(
        (status = 200, description = "The workflow after the change", body = WorkflowView),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "Changed concurrently; read it again", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body, or a task's SQL that does not render or compile", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn update_workflow(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateWorkflowRequest>,
) -> Result<Json<WorkflowView>, ApiError> {
    // New tasks that name no process count get the one the workflow's cluster (new or
    // kept) chooses.
    let tasks = match req.tasks {
        None => None,
        Some(ts) => {
            let cluster = match &req.cluster {
                Some(c) => c.clone(),
                None => m.workflows.workflow(&name)?.spec.cluster,
            };
            let processes_for = |p| m.core.processes_for(&cluster, p);
            Some(
                ts.into_iter()
                    .map(|t| t.into_spec(&processes_for))
                    .collect(),
            )
        }
    };
    let wf = m.workflows.update_workflow(
        &name,
        WorkflowPatch {
            schedule: req.schedule,
            tasks,
            parameters: req.parameters,
            concurrency: req.concurrency,
            catchup: req.catchup,
            enabled: req.enabled,
            cluster: req.cluster,
        },
    )?;
    Ok(Json(workflow_view(&m, &wf)?))
}

/// Delete a workflow; its active runs are cancelled.
#[utoipa::path(delete, path = "/api/v1/workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn delete_workflow(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    m.workflows.delete_workflow(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/workflows/{name}/runs` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// The newest this many (default 100, at most 1000), oldest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A workflow's runs by logical time, oldest first (the newest `limit`).
#[utoipa::path(get, path = "/api/v1/workflows/{name}/runs", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name"), RunListQuery),
    responses(
        (status = 200, description = "Runs, oldest first", body = Vec<RunView>),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn list_runs(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunListQuery>,
) -> Result<Json<Vec<RunView>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let (_, runs) = m.workflows.workflow_runs(&name)?;
    let runs: Vec<&WorkflowRun> = runs
        .iter()
        .filter(|r| q.state.is_none_or(|s| r.state == s))
        .collect();
    let from = runs.len().saturating_sub(limit as usize);
    let instances = m.core.instances().unwrap_or_default();
    Ok(Json(
        runs[from..]
            .iter()
            .map(|r| RunView::new(r, &instances))
            .collect(),
    ))
}

/// Trigger a run now, optionally with parameter values and a logical time. Under the
/// `skip` and `queue` policies it waits for the active run (it is never skipped).
/// Parameter values are values, never SQL: each task is rendered with them and
/// compiled again before the run is accepted.
#[utoipa::path(post, path = "/api/v1/workflows/{name}/runs", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    request_body = TriggerRequest,
    responses(
        (status = 201, description = "The run, queued", body = RunView),
        (status = 400, description = "Unknown parameter, bad time", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body, or a task does not compile with these parameters", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn trigger_run(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<TriggerRequest>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let logical = req
        .logical_time
        .as_deref()
        .map(|t| parse_time("logical_time", t))
        .transpose()?;
    let run = m
        .workflows
        .trigger_workflow(&name, req.parameters, logical)?;
    Ok((StatusCode::CREATED, Json(RunView::new(&run, &[]))))
}

/// One run: each task's state, attempts, times, instance (with its log link) and rows.
#[utoipa::path(get, path = "/api/v1/workflows/{name}/runs/{run_id}", tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("run_id" = String, Path, description = "The run's id"),
    ),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such workflow or run", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn get_run(
    State(m): State<AppState>,
    ApiPath((name, run_id)): ApiPath<(String, String)>,
) -> Result<Json<RunView>, ApiError> {
    let run = m.workflows.workflow_run(&name, &run_id)?;
    let instances = m.core.instances().unwrap_or_default();
    Ok(Json(RunView::new(&run, &instances)))
}

/// Cancel a run: its running instances are stopped (`cancelled`), tasks that have not
/// run are `skipped`. The scheduler does it within a cycle.
#[utoipa::path(post, path = "/api/v1/workflows/{name}/runs/{run_id}/cancel", tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("run_id" = String, Path, description = "The run's id"),
    ),
    responses(
        (status = 202, description = "Cancel requested", body = RunView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such workflow or run", body = ErrorBody),
        (status = 409, description = "The run has already ended", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn cancel_run(
    State(m): State<AppState>,
    ApiPath((name, run_id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let run = m.workflows.cancel_workflow_run(&name, &run_id)?;
    Ok((StatusCode::ACCEPTED, Json(RunView::new(&run, &[]))))
}

/// Backfill: one run per tick of the schedule in `[start, end]` (at most 1000); a
/// tick that already has a run keeps it.
#[utoipa::path(post, path = "/api/v1/workflows/{name}/backfill", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    request_body = BackfillRequest,
    responses(
        (status = 201, description = "The runs created (queued) and the ticks that had one", body = BackfillResponse),
        (status = 400, description = "Bad range (order, future, no tick, too many)", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn backfill(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<BackfillRequest>,
) -> Result<(StatusCode, Json<BackfillResponse>), ApiError> {
    let start = parse_time("start", &req.start)?;
    let end = parse_time("end", &req.end)?;
    let b = m.workflows.backfill_workflow(&name, start, end)?;
    Ok((
        StatusCode::CREATED,
        Json(BackfillResponse {
            created: b.created.iter().map(|r| RunView::new(r, &[])).collect(),
            existing: b.existing,
        }),
    ))
}
