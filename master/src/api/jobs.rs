//! `/api/v1/jobs`: submit, list, get, plan a change of, change, delete and validate
//! jobs; their events and instances.

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::guard::secured;
use super::views::{
    CreateJobRequest, EventView, EventsQuery, InstanceView, JobListQuery, JobPlanView, JobView,
    QueryPlanView, SavepointQuery, SavepointView, SqlErrorView, UpdateJobQuery, UpdateJobRequest,
    ValidateRequest, ValidateResponse,
};
use super::AppState;
use crate::auth::Role;
use crate::auth::{Principal, Security};
use crate::jobs::{JobPatch, NewJob};
use crate::model::DesiredState;
use crate::service::ServiceError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use serde::Serialize;
use sluice_compiler::{ExplainStage, SinkTarget};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(secured(Role::Viewer, routes!(list_jobs)))
        .routes(secured(Role::Editor, routes!(create_job)))
        .routes(secured(Role::Viewer, routes!(validate_job)))
        .routes(secured(Role::Viewer, routes!(get_job)))
        .routes(secured(Role::Editor, routes!(update_job)))
        .routes(secured(Role::Viewer, routes!(plan_job)))
        .routes(secured(Role::Editor, routes!(stop_with_savepoint)))
        .routes(secured(Role::Viewer, routes!(list_savepoints)))
        .routes(secured(Role::Editor, routes!(delete_savepoint)))
        .routes(secured(Role::Editor, routes!(delete_job)))
        .routes(secured(Role::Viewer, routes!(job_events)))
        .routes(secured(Role::Viewer, routes!(job_instances)))
        .routes(secured(Role::Viewer, routes!(job_commits)))
}

/// The input range one source covered in a commit: each worker's position at the
/// previous checkpoint (`null`: its start) and at this one.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceRangeView {
    /// Positions at the previous checkpoint, one per worker.
    #[schema(value_type = Vec<Option<Object>>)]
    pub from: Vec<serde_json::Value>,
    /// Positions at this checkpoint, one per worker (Kafka: next offset per
    /// `topic/partition`).
    #[schema(value_type = Vec<Object>)]
    pub to: Vec<serde_json::Value>,
}

/// One committed checkpoint: which input it covers and which objects it made visible.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommitView {
    /// The checkpoint's epoch (1, 2, … across the job's instances).
    pub epoch: u64,
    /// When its record was written (RFC 3339).
    pub completed_at: String,
    /// Workers of the instance that wrote it.
    pub workers: usize,
    /// The run (one start of an instance) that wrote it: one run decides each epoch.
    pub run: String,
    /// Source (its stable id: `<table>@<options hash>#<read>`) → the input range.
    pub sources: BTreeMap<String, SourceRangeView>,
    /// Output (`<n>:<table>`) → the objects the commit made visible.
    pub objects: BTreeMap<String, Vec<String>>,
    /// Stateful operator (its stable id) → the size of its snapshots (bytes, all
    /// workers; with incremental snapshots, each worker's whole chain: what a restore
    /// reads); empty for a job without snapshotted state.
    pub state: BTreeMap<String, u64>,
    /// The record and its snapshots (bytes).
    pub size_bytes: u64,
    /// What this checkpoint wrote (bytes): its record and the snapshots of its epoch —
    /// with incremental snapshots, only what changed since the one before.
    pub written_bytes: u64,
    /// From its request to its record (ms): barrier alignment, snapshots, staging.
    pub duration_ms: Option<i64>,
    /// True when every snapshot it names is still kept: the job can restore from it
    /// (the newest two checkpoints with state always are).
    pub restorable: bool,
}

/// A job's commit manifest.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommitsView {
    /// The job.
    pub job: String,
    /// Where its checkpoints are kept (none for a job that does not checkpoint).
    pub checkpoint_dir: Option<String>,
    /// Checkpoints, oldest first (the newest 50 are kept).
    pub commits: Vec<CommitView>,
}

/// A job's commit manifest (lineage): per checkpoint, the source position ranges it
/// covers (Kafka offsets per partition, …) and the objects its commit made visible.
#[utoipa::path(get, path = "/api/v1/jobs/{name}/commits", tag = "jobs",
    params(("name" = String, Path, description = "The job's name")),
    responses(
        (status = 200, description = "Checkpoints, oldest first", body = CommitsView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 500, description = "The checkpoint store cannot be read", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn job_commits(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CommitsView>, ApiError> {
    let job = m.jobs.job(&name)?;
    if job.checkpoint_interval_ms.is_none() {
        return Ok(Json(CommitsView {
            job: job.name,
            checkpoint_dir: None,
            commits: Vec::new(),
        }));
    }
    let dir = m.core.checkpoints.job_dir(&job.id);
    let read_dir = dir.clone();
    let commits = tokio::task::spawn_blocking(move || read_commits(&read_dir))
        .await
        .map_err(|e| ApiError::internal(format!("reading checkpoints: {e}")))?
        .map_err(ApiError::internal)?;
    Ok(Json(CommitsView {
        job: job.name,
        checkpoint_dir: Some(dir),
        commits,
    }))
}

/// The checkpoint records in `dir` (the worker writes them: see
/// `sluice_compiler::instance::CheckpointRecord`), as views; records this master cannot
/// read are skipped.
fn read_commits(dir: &str) -> Result<Vec<CommitView>, String> {
    let d = sluice_connectors::ObjectDir::open(dir).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (r, record_bytes) in
        sluice_connectors::checkpoint_store::all_records(&d).map_err(|e| e.to_string())?
    {
        let (state, restorable) =
            crate::checkpoints::state_sizes(&d, &r).map_err(|e| e.to_string())?;
        let size_bytes = record_bytes + state.values().sum::<u64>();
        let mut written_bytes = record_bytes;
        for name in r.state.values().flatten() {
            written_bytes += d.size(name).map_err(|e| e.to_string())?.unwrap_or(0);
        }
        let sources = r
            .sources
            .into_iter()
            .map(|(k, to)| {
                let mut from = r.from.get(&k).cloned().unwrap_or_default();
                from.resize(to.len(), serde_json::Value::Null);
                (k, SourceRangeView { from, to })
            })
            .collect();
        let objects = r
            .sinks
            .into_iter()
            .map(|(k, pendings)| {
                let mut keys: Vec<String> = pendings
                    .iter()
                    .filter_map(serde_json::Value::as_array)
                    .flatten()
                    .filter_map(|pair| pair.get(1)?.as_str().map(str::to_string))
                    .collect();
                keys.sort();
                (k, keys)
            })
            .collect();
        out.push(CommitView {
            epoch: r.epoch,
            completed_at: super::views::rfc3339(r.completed_at_ms),
            workers: r.workers,
            run: r.run,
            sources,
            objects,
            state,
            size_bytes,
            written_bytes,
            duration_ms: r.requested_at_ms.map(|t| r.completed_at_ms - t),
            restorable,
        });
    }
    Ok(out)
}

/// Submit a job: the SQL is compiled first; errors come back as 422 with line and column.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    request_body = CreateJobRequest,
    responses(
        (status = 201, description = "Created; the watchdog starts it", body = JobView),
        (status = 400, description = "Invalid request (name, limits, cluster)", body = ErrorBody),
        (status = 409, description = "A job of that name exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "The caller owns as many jobs as one owner may (`quota_exceeded`), or sends too many requests", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body, or SQL that does not compile", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn create_job(
    State(m): State<AppState>,
    Extension(security): Extension<Arc<Security>>,
    Extension(caller): Extension<Principal>,
    ApiJson(req): ApiJson<CreateJobRequest>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let cap = security.max_jobs_per_owner;
    if cap > 0 {
        let owned = m
            .core
            .store
            .list_jobs()
            .map_err(ServiceError::from)?
            .iter()
            .filter(|j| j.owner.as_deref() == Some(caller.name.as_str()))
            .count() as u64;
        if owned >= cap {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                format!(
                    "'{}' owns {owned} jobs, the most one owner may (--max-jobs-per-owner {cap}): delete one first",
                    caller.name
                ),
            ));
        }
    }
    let cluster = req.cluster.unwrap_or_else(|| "local".to_string());
    let resources = req.resources.resolve(|p| m.core.processes_for(&cluster, p));
    let job = m.jobs.create_job(NewJob {
        name: req.name,
        sql: req.sql,
        resources,
        cluster,
        desired_state: req.desired_state.unwrap_or(DesiredState::Running),
    })?;
    let status = m.jobs.status_of(&job)?;
    Ok((StatusCode::CREATED, Json(JobView::new(&job, &status, &[]))))
}

/// List jobs, optionally only those in one state.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    params(JobListQuery),
    responses(
        (status = 200, description = "Jobs by name", body = Vec<JobView>),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn list_jobs(
    State(m): State<AppState>,
    ApiQuery(q): ApiQuery<JobListQuery>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let instances = m.core.instances().unwrap_or_default();
    let views = m
        .jobs
        .jobs_with_status()?
        .iter()
        .map(|(j, s)| JobView::new(j, s, &instances))
        .filter(|v| q.state.is_none_or(|s| v.state == s))
        .collect();
    Ok(Json(views))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/jobs/{name}", tag = "jobs",
    params(("name" = String, Path, description = "The job's name")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn get_job(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = m.jobs.job(&name)?;
    let status = m.jobs.status_of(&job)?;
    let instances = m.core.instances().unwrap_or_default();
    Ok(Json(JobView::new(&job, &status, &instances)))
}

/// Change a job's SQL, resources, cluster or desired state. Any change bumps its
/// version; the watchdog then replaces the running instance (a parallelism change is
/// a rescale). With `plan_id` (from `POST …/plan`) the change applies only if that is
/// still its plan; with `?dry_run=true` nothing changes and the answer is the job as it
/// would be.
#[utoipa::path(patch, path = "/api/v1/jobs/{name}", tag = "jobs",
    params(("name" = String, Path, description = "The job's name"), UpdateJobQuery),
    request_body = UpdateJobRequest,
    responses(
        (status = 200, description = "The job after the change (or as it would be, with `dry_run`)", body = JobView),
        (status = 400, description = "Invalid request (limits, cluster)", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Changed concurrently, or `plan_id` is outdated; read it again", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body, or SQL that does not compile", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn update_job(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<UpdateJobQuery>,
    ApiJson(req): ApiJson<UpdateJobRequest>,
) -> Result<Json<JobView>, ApiError> {
    let plan_id = req.plan_id.clone();
    let patch = job_patch(req);
    if q.dry_run == Some(true) {
        let plan = plan_off_thread(&m, &name, patch).await?;
        let status = m.jobs.status_of(&plan.old)?;
        let mut job = plan.new;
        if !plan.changes.is_empty() {
            job.version += 1;
        }
        return Ok(Json(JobView::new(&job, &status, &[])));
    }
    let job = m
        .jobs
        .update_job_planned(&name, patch, plan_id.as_deref())?;
    let status = m.jobs.status_of(&job)?;
    let instances = m.core.instances().unwrap_or_default();
    Ok(Json(JobView::new(&job, &status, &instances)))
}

fn job_patch(req: UpdateJobRequest) -> JobPatch {
    let r = req.resources.unwrap_or_default();
    JobPatch {
        sql: req.sql,
        parallelism: r.parallelism,
        memory_mb: r.memory_mb,
        gpus: r.gpus,
        processes: r.processes,
        cluster: req.cluster,
        desired_state: req.desired_state,
        from_savepoint: req.from_savepoint,
    }
}

/// Computes a change's plan off the async workers (it compiles SQL and reads the
/// checkpoint store).
async fn plan_off_thread(
    m: &AppState,
    name: &str,
    patch: JobPatch,
) -> Result<crate::jobs::JobPlan, ApiError> {
    let (m, name) = (m.clone(), name.to_string());
    Ok(tokio::task::spawn_blocking(move || {
        sluice_compiler::limits::on_compile_stack(|| m.jobs.plan_job_change(&name, patch))
    })
    .await
    .map_err(|e| ApiError::internal(format!("planning the change: {e}")))??)
}

/// Take a savepoint. By default the job is stopped (its instance ends without
/// committing anything after its latest checkpoint), then that checkpoint is kept as a
/// savepoint — never pruned, listed by `GET …/savepoints`, and the job (or a new
/// version of it) can start from it later (`PATCH` with `from_savepoint`). With
/// `stop=false` the job keeps running and its latest checkpoint is kept the same way
/// (its instance no longer prunes that checkpoint's snapshots). A stopped job's latest
/// checkpoint is kept the same way.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/savepoints", tag = "jobs",
    params(("name" = String, Path, description = "The job's name"), SavepointQuery),
    responses(
        (status = 201, description = "Stopped (unless stop=false); the savepoint", body = SavepointView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job does not checkpoint or has no checkpoint yet (nothing is stopped then), or its instance did not stop within 60 s", body = ErrorBody),
        (status = 503, description = "The store or the checkpoint store failed", body = ErrorBody),
    ))]
async fn stop_with_savepoint(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<SavepointQuery>,
) -> Result<(StatusCode, Json<SavepointView>), ApiError> {
    let job = m.jobs.job(&name)?;
    if job.checkpoint_interval_ms.is_none() {
        return Err(ServiceError::Conflict(format!(
            "job '{name}' does not checkpoint (a bounded job without SET '{}'): there is nothing to keep",
            sluice_compiler::instance::CHECKPOINT_INTERVAL_KEY
        ))
        .into());
    }
    // Nothing to keep yet: say so before stopping anything.
    let dir = m.core.checkpoints.job_dir(&job.id);
    let probe = dir.clone();
    let has_checkpoint =
        tokio::task::spawn_blocking(move || crate::checkpoints::latest(&probe).is_some())
            .await
            .map_err(|e| ApiError::internal(format!("reading checkpoints: {e}")))?;
    if !has_checkpoint {
        return Err(ServiceError::Conflict(format!(
            "job '{name}' has no checkpoint yet (it checkpoints every {} ms): nothing was stopped; try again after its first checkpoint",
            job.checkpoint_interval_ms.unwrap_or_default()
        ))
        .into());
    }
    // The version that ran (the stop makes a new one).
    let version = job.version;
    if !q.stop.unwrap_or(true) && job.desired_state == DesiredState::Running {
        let sp =
            tokio::task::spawn_blocking(move || crate::checkpoints::pin_running(&dir, version))
                .await
                .map_err(|e| ApiError::internal(format!("taking the savepoint: {e}")))?
                .map_err(|e| savepoint_error(e, &format!("job '{name}':")))?;
        return Ok((StatusCode::CREATED, Json(SavepointView::new(&sp))));
    }
    let job = if job.desired_state == DesiredState::Running {
        m.jobs.update_job(
            &name,
            JobPatch {
                desired_state: Some(DesiredState::Stopped),
                ..JobPatch::default()
            },
        )?
    } else {
        job
    };
    // The instance ends without committing past its latest checkpoint; only then is
    // that checkpoint final (a running instance would prune snapshots behind it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while m
        .core
        .instances()?
        .iter()
        .any(|i| i.job_id == job.id && i.state.is_live())
    {
        if std::time::Instant::now() > deadline {
            return Err(ServiceError::Conflict(format!(
                "job '{name}' is stopping but its instance has not ended within 60 s: try again"
            ))
            .into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let sp = tokio::task::spawn_blocking(move || crate::checkpoints::pin_latest(&dir, version))
        .await
        .map_err(|e| ApiError::internal(format!("taking the savepoint: {e}")))?
        .map_err(|e| savepoint_error(e, &format!("job '{name}' stopped, but")))?;
    Ok((StatusCode::CREATED, Json(SavepointView::new(&sp))))
}

/// A savepoint that could not be taken, as the API answers it (`context` first).
fn savepoint_error(e: crate::checkpoints::SavepointError, context: &str) -> ServiceError {
    match e {
        crate::checkpoints::SavepointError::NoCheckpoint => {
            ServiceError::Conflict(format!("{context} {e}"))
        }
        crate::checkpoints::SavepointError::Store(m) => ServiceError::CheckpointStore(m),
    }
}

/// A job's savepoints, oldest first.
#[utoipa::path(get, path = "/api/v1/jobs/{name}/savepoints", tag = "jobs",
    params(("name" = String, Path, description = "The job's name")),
    responses(
        (status = 200, description = "Its savepoints", body = Vec<SavepointView>),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "The store or the checkpoint store failed", body = ErrorBody),
    ))]
async fn list_savepoints(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<SavepointView>>, ApiError> {
    let job = m.jobs.job(&name)?;
    let dir = m.core.checkpoints.job_dir(&job.id);
    let list = tokio::task::spawn_blocking(move || crate::checkpoints::savepoints(&dir))
        .await
        .map_err(|e| ApiError::internal(format!("listing savepoints: {e}")))?
        .map_err(ServiceError::CheckpointStore)?;
    Ok(Json(list.iter().map(SavepointView::new).collect()))
}

/// Delete a savepoint: its snapshots are no longer kept for it (runs of the job prune
/// them like any other checkpoint's).
#[utoipa::path(delete, path = "/api/v1/jobs/{name}/savepoints/{epoch}", tag = "jobs",
    params(
        ("name" = String, Path, description = "The job's name"),
        ("epoch" = u64, Path, description = "The savepoint's epoch"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such job or savepoint", body = ErrorBody),
        (status = 503, description = "The store or the checkpoint store failed", body = ErrorBody),
    ))]
async fn delete_savepoint(
    State(m): State<AppState>,
    ApiPath((name, epoch)): ApiPath<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    let job = m.jobs.job(&name)?;
    let dir = m.core.checkpoints.job_dir(&job.id);
    let deleted =
        tokio::task::spawn_blocking(move || crate::checkpoints::delete_savepoint(&dir, epoch))
            .await
            .map_err(|e| ApiError::internal(format!("deleting the savepoint: {e}")))?
            .map_err(ServiceError::CheckpointStore)?;
    if !deleted {
        return Err(
            ServiceError::NotFound(format!("job '{name}' has no savepoint {epoch}")).into(),
        );
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Plan a change before applying it: the same body as `PATCH /api/v1/jobs/{name}`,
/// nothing is changed or stopped. Says per source whether it resumes at its
/// checkpointed position or reads from its start, per stateful operator whether its
/// state is kept, reset, new or dropped (with the state size in the latest checkpoint),
/// per sink what changes, and what happens to the running instance. Apply exactly this
/// plan with `PATCH` and its `plan_id`.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/plan", tag = "jobs",
    params(("name" = String, Path, description = "The job's name")),
    request_body = UpdateJobRequest,
    responses(
        (status = 200, description = "What the change would do", body = JobPlanView),
        (status = 400, description = "Invalid request (limits, cluster)", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body, or SQL that does not compile", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn plan_job(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateJobRequest>,
) -> Result<Json<JobPlanView>, ApiError> {
    let plan = plan_off_thread(&m, &name, job_patch(req)).await?;
    Ok(Json(JobPlanView::new(&plan)))
}

/// Delete a job; the watchdog stops its instances. Its events stay readable by id
/// only through the store (not through the API).
#[utoipa::path(delete, path = "/api/v1/jobs/{name}", tag = "jobs",
    params(("name" = String, Path, description = "The job's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn delete_job(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    m.jobs.delete_job(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Compile SQL without submitting it: every EXPLAIN stage of every query, or the
/// errors with line and column (`valid: false`).
#[utoipa::path(post, path = "/api/v1/jobs/validate", tag = "jobs",
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "The plans, or the errors", body = ValidateResponse),
        (status = 400, description = "Invalid request (empty or too long)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn validate_job(
    State(m): State<AppState>,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> Result<Json<ValidateResponse>, ApiError> {
    // Compiling and rendering the plans is CPU work on trees as deep as the compiler's
    // limits allow: off the async workers, on a stack sized for those limits.
    tokio::task::spawn_blocking(move || {
        sluice_compiler::limits::on_compile_stack(|| validate_sql(&m, &req.sql))
    })
    .await
    .map_err(|e| ApiError::internal(format!("validation failed: {e}")))?
    .map(Json)
}

/// The body of `POST /api/v1/jobs/validate`.
fn validate_sql(m: &AppState, sql: &str) -> Result<ValidateResponse, ApiError> {
    match m.core.validate(sql) {
        Ok(compiled) => {
            let queries = compiled
                .queries
                .iter()
                .map(|q| {
                    let one = sluice_compiler::Compiled {
                        tables: vec![],
                        queries: vec![q.clone()],
                        plan: sluice_compiler::DataflowPlan { outputs: vec![] },
                        explain: None,
                        settings: Default::default(),
                    };
                    let strip = |s: String| {
                        s.split_once('\n')
                            .map(|(_, rest)| rest.to_string())
                            .unwrap_or_default()
                    };
                    QueryPlanView {
                        target: match &q.target {
                            SinkTarget::Table(t) => format!("INSERT INTO {}", t.name),
                            SinkTarget::Collect { .. } => "SELECT".to_string(),
                        },
                        logical: strip(one.explain(ExplainStage::Logical)),
                        optimized: strip(one.explain(ExplainStage::Optimized)),
                        physical: strip(one.explain(ExplainStage::Physical)),
                    }
                })
                .collect();
            let bounded = crate::service::plan_is_bounded(&compiled.plan);
            Ok(ValidateResponse {
                valid: true,
                queries,
                tables: compiled.tables.iter().map(|t| t.name.clone()).collect(),
                bounded,
                errors: vec![],
            })
        }
        Err(ServiceError::Sql(e)) => Ok(ValidateResponse {
            valid: false,
            queries: vec![],
            tables: vec![],
            bounded: false,
            errors: vec![SqlErrorView {
                message: e.to_string(),
                kind: format!("{:?}", e.kind).to_lowercase(),
                line: e.position.map(|p| p.line),
                column: e.position.map(|p| p.column),
            }],
        }),
        Err(e) => Err(e.into()),
    }
}

/// A job's history: creation, changes, state changes with reasons, instance starts,
/// stops, failures and restarts.
#[utoipa::path(get, path = "/api/v1/jobs/{name}/events", tag = "jobs",
    params(("name" = String, Path, description = "The job's name"), EventsQuery),
    responses(
        (status = 200, description = "Events, oldest first", body = Vec<EventView>),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn job_events(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid("after must be at least 0"));
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let job = m.jobs.job(&name)?;
    let events = m
        .core
        .store
        .list_events(&job.id, after as u64, limit as usize)
        .map_err(ServiceError::from)?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| EventView {
                seq: e.seq,
                at: super::views::rfc3339(e.at_ms),
                kind: e.kind,
                version: e.version,
                state: e.state,
                message: e.message,
                by: e.by,
            })
            .collect(),
    ))
}

/// A job's instances (live and recently ended).
#[utoipa::path(get, path = "/api/v1/jobs/{name}/instances", tag = "jobs",
    params(("name" = String, Path, description = "The job's name")),
    responses(
        (status = 200, description = "Instances by id", body = Vec<InstanceView>),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 500, description = "A cluster driver failed", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn job_instances(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<InstanceView>>, ApiError> {
    let job = m.jobs.job(&name)?;
    let status = m.jobs.status_of(&job)?;
    let views = m
        .core
        .instances()?
        .iter()
        .filter(|i| i.job_id == job.id)
        .map(|i| InstanceView::new(i, status.restarts))
        .collect();
    Ok(Json(views))
}
