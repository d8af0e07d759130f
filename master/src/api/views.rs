//! What the API returns and accepts: its own types, so the stored model can change
//! without changing the contract. Secret connector options never reach these types.

use crate::model::{
    Capacity, Counters, DesiredState, InstanceState, Job, JobState, JobStatus, ObservedInstance,
    Resources, StoredTable,
};
use crate::service::redacted_sql;
use serde::{Deserialize, Serialize};
use sluice_catalogs::{scrub_secrets, REDACTED};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// RFC 3339 (UTC, milliseconds) of a time in ms since the epoch.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Resources in a request: any field left out takes its default (parallelism 1,
/// memory_mb 1024, gpus 0, processes the cluster's choice).
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcesInput {
    /// Worker threads (1..=256).
    #[schema(minimum = 1, maximum = 256, example = 2)]
    pub parallelism: Option<u32>,
    /// Memory cap in MiB (64..=1048576): the instance's resident memory may exceed it
    /// by a runtime allowance (64 MiB + 16 MiB per worker thread); past that the
    /// instance fails with a message saying so (a user error: the job is not restarted
    /// into the same failure).
    #[schema(minimum = 64, maximum = 1048576, example = 1024)]
    pub memory_mb: Option<u64>,
    /// GPUs (0..=64).
    #[schema(minimum = 0, maximum = 64, example = 0)]
    pub gpus: Option<u32>,
    /// Processes (1..=64, dividing `parallelism`): the instance's workers are spread
    /// over that many processes, `parallelism / processes` threads each. Default: the
    /// fewest that keep each process within the cluster's `threads_per_process` (one on
    /// the `local` cluster unless `sluice serve --local-threads-per-process` is set); a
    /// change of a job's parallelism or cluster that leaves it out keeps the job's count
    /// while it still fits, else chooses again.
    #[schema(minimum = 1, maximum = 64, example = 1)]
    pub processes: Option<u32>,
}

impl ResourcesInput {
    /// The resources with defaults in place; `processes_for` chooses the process count
    /// from the parallelism when the request names none (the cluster's choice:
    /// `Core::processes_for`).
    pub fn resolve(self, processes_for: impl Fn(u32) -> u32) -> Resources {
        let d = Resources::default();
        let parallelism = self.parallelism.unwrap_or(d.parallelism);
        Resources {
            parallelism,
            memory_mb: self.memory_mb.unwrap_or(d.memory_mb),
            gpus: self.gpus.unwrap_or(d.gpus),
            processes: self.processes.unwrap_or_else(|| processes_for(parallelism)),
        }
    }
}

/// `POST /api/v1/jobs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// Unique name: a letter, then letters, digits, `_` or `-` (at most 63).
    #[schema(
        example = "bid-stats",
        max_length = 63,
        pattern = "^[A-Za-z][A-Za-z0-9_-]{0,62}$"
    )]
    pub name: String,
    /// The SQL script: `CREATE TABLE …` statements (or tables from the catalog), then
    /// one or more `INSERT INTO … SELECT …`.
    #[schema(
        example = "CREATE TABLE bids (auction BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1000');\nCREATE TABLE out (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT auction, price FROM bids WHERE price > 10;"
    )]
    pub sql: String,
    /// Resources (defaults: parallelism 1, 1024 MiB, 0 GPUs).
    #[serde(default)]
    pub resources: ResourcesInput,
    /// The cluster to run on (default `local`).
    #[serde(default)]
    pub cluster: Option<String>,
    /// `running` (default) or `stopped`.
    #[serde(default)]
    pub desired_state: Option<DesiredState>,
}

/// `PATCH /api/v1/jobs/{name}`: every field optional; any change bumps the version.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateJobRequest {
    /// New SQL (compiled before it is accepted).
    pub sql: Option<String>,
    /// New resources (fields left out keep their value).
    pub resources: Option<ResourcesInput>,
    /// New cluster.
    pub cluster: Option<String>,
    /// `running` or `stopped`.
    pub desired_state: Option<DesiredState>,
    /// Start from this savepoint (its epoch, from `GET /api/v1/jobs/{name}/savepoints`)
    /// instead of the latest checkpoint; output committed after it is written again.
    pub from_savepoint: Option<u64>,
    /// Apply only if this is still the change's plan (`plan_id` of
    /// `POST /api/v1/jobs/{name}/plan` for the same body): 409 `conflict` when the job
    /// changed since the plan was made.
    pub plan_id: Option<String>,
}

/// `PATCH /api/v1/jobs/{name}` query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UpdateJobQuery {
    /// Check and compile the change and answer the job as it would be, without
    /// changing anything (the plan of what the change keeps: `POST …/plan`).
    pub dry_run: Option<bool>,
}

/// A savepoint: a checkpoint kept until the job is deleted, to start from later.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavepointView {
    /// The epoch of the checkpoint it keeps (what `from_savepoint` names).
    pub epoch: u64,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    /// When its checkpoint completed (RFC 3339).
    pub checkpoint_completed_at: String,
    /// The job's spec version when it was taken (the version that was running, when
    /// taking it stopped the job).
    pub job_version: u64,
    /// Workers of the run that wrote it.
    pub workers: usize,
    /// Source (its stable id) → each worker's position.
    #[schema(value_type = Object)]
    pub sources: BTreeMap<String, Vec<serde_json::Value>>,
    /// The stateful operators (stable ids) whose state it holds.
    pub operators: Vec<String>,
}

impl SavepointView {
    /// The view of a savepoint.
    pub fn new(s: &sluice_compiler::instance::Savepoint) -> SavepointView {
        SavepointView {
            epoch: s.record.epoch,
            taken_at: rfc3339(s.taken_at_ms),
            checkpoint_completed_at: rfc3339(s.record.completed_at_ms),
            job_version: s.job_version,
            workers: s.record.workers,
            sources: s.record.sources.clone(),
            operators: s.record.state.keys().cloned().collect(),
        }
    }
}

/// One source, stateful operator or sink in a [`JobPlanView`].
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanItemView {
    /// The table (sources, sinks) or operator kind (`WindowAggregate`, `Reduce`, …).
    pub name: String,
    /// Its stable id: the key of its position or state in checkpoints.
    pub id: String,
    /// The operator's EXPLAIN PHYSICAL line, or the table's connector.
    pub detail: String,
    /// `kept` (a source resumes at its checkpointed position, an operator keeps its
    /// state, a sink is unchanged), `reset` (starts from scratch, or the sink changed),
    /// `new` or `dropped`.
    #[schema(example = "kept")]
    pub outcome: String,
    /// Why, in a sentence.
    pub reason: String,
    /// Kept or dropped operator state: its size in the latest checkpoint (bytes).
    pub state_bytes: Option<u64>,
    /// A kept source: its position in the latest checkpoint (one entry per worker of
    /// the run that wrote it).
    pub position: Option<Vec<serde_json::Value>>,
}

/// The checkpoint a restart restores from.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanCheckpointView {
    /// Its epoch.
    pub epoch: u64,
    /// When it completed (RFC 3339).
    pub completed_at: String,
    /// Workers of the run that wrote it.
    pub workers: usize,
}

/// `POST /api/v1/jobs/{name}/plan`: what a change would do, before it is applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPlanView {
    /// The job.
    pub job: String,
    /// Its version now (the change would make it the next one).
    pub version: u64,
    /// Pass it as `plan_id` to `PATCH /api/v1/jobs/{name}` (same body) to apply exactly
    /// this plan: refused with 409 once the job changed.
    pub plan_id: String,
    /// The changes in words (empty: the change changes nothing).
    pub changes: Vec<String>,
    /// What happens to the running instance.
    pub restart: String,
    /// Why the job does not checkpoint now, if it does not.
    pub old_not_checkpointed: Option<String>,
    /// Why it would not checkpoint after the change, if it would not.
    pub new_not_checkpointed: Option<String>,
    /// The checkpoint a restart would restore from (none yet: sources start over).
    pub latest_checkpoint: Option<PlanCheckpointView>,
    /// Per source read.
    pub sources: Vec<PlanItemView>,
    /// Per stateful operator.
    pub operators: Vec<PlanItemView>,
    /// Per sink table.
    pub sinks: Vec<PlanItemView>,
    /// Operator state carried over (bytes, from the latest checkpoint).
    pub state_bytes_kept: u64,
    /// Operator state dropped or rebuilt from the inputs (bytes in the latest
    /// checkpoint; state never snapshotted is not counted).
    pub state_bytes_dropped: u64,
}

impl JobPlanView {
    /// The view of a plan.
    pub fn new(p: &crate::jobs::JobPlan) -> JobPlanView {
        use sluice_compiler::state::{Change, Outcome};
        let outcome = |o: Outcome| {
            match o {
                Outcome::Kept => "kept",
                Outcome::Reset => "reset",
                Outcome::New => "new",
                Outcome::Dropped => "dropped",
            }
            .to_string()
        };
        let latest = p.latest.as_ref();
        let state_bytes = |c: &Change| latest.and_then(|l| l.state_bytes.get(&c.id).copied());
        let item = |c: &Change, with_position: bool| PlanItemView {
            name: c.name.clone(),
            id: c.id.clone(),
            detail: c.detail.clone(),
            outcome: outcome(c.outcome),
            reason: c.reason.clone(),
            state_bytes: state_bytes(c),
            position: if with_position && c.outcome == Outcome::Kept {
                latest.and_then(|l| l.sources.get(&c.id).cloned())
            } else {
                None
            },
        };
        let operators: Vec<PlanItemView> =
            p.state.operators.iter().map(|c| item(c, false)).collect();
        let kept: u64 = operators
            .iter()
            .filter(|o| o.outcome == "kept")
            .filter_map(|o| o.state_bytes)
            .sum();
        let dropped: u64 = operators
            .iter()
            .filter(|o| o.outcome != "kept")
            .filter_map(|o| o.state_bytes)
            .sum();
        let (old, new) = (&p.old, &p.new);
        let restart = if p.changes.is_empty() {
            "nothing changes: no restart".to_string()
        } else if new.desired_state == DesiredState::Stopped {
            "the job stops (its instance is stopped); its checkpoints are kept".to_string()
        } else if old.desired_state == DesiredState::Stopped {
            "the job starts with the change (it was stopped)".to_string()
        } else {
            let from = match latest {
                Some(l) => format!("from checkpoint {}", l.epoch),
                None => "with its sources at their start (no checkpoint yet)".to_string(),
            };
            let mut r = format!("the running instance is stopped and a new one starts {from}");
            if new.resources.parallelism != old.resources.parallelism {
                r.push_str(&format!(
                    ", at parallelism {} instead of {} (partitioned positions and window \
                     state are dealt over the new workers; a generator's per-worker \
                     position starts over)",
                    new.resources.parallelism, old.resources.parallelism
                ));
            }
            r
        };
        JobPlanView {
            job: old.name.clone(),
            version: old.version,
            plan_id: p.plan_id.clone(),
            changes: p.changes.clone(),
            restart,
            old_not_checkpointed: p.state.old_not_checkpointed.clone(),
            new_not_checkpointed: p.state.new_not_checkpointed.clone(),
            latest_checkpoint: latest.map(|l| PlanCheckpointView {
                epoch: l.epoch,
                completed_at: rfc3339(l.completed_at_ms),
                workers: l.workers,
            }),
            sources: p.state.sources.iter().map(|c| item(c, true)).collect(),
            operators,
            sinks: p.state.sinks.iter().map(|c| item(c, false)).collect(),
            state_bytes_kept: kept,
            state_bytes_dropped: dropped,
        }
    }
}

/// `POST /api/v1/jobs/validate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The SQL script to compile.
    pub sql: String,
}

/// A compile error with its position.
#[derive(Debug, Serialize, ToSchema)]
pub struct SqlErrorView {
    /// One line.
    pub message: String,
    /// `syntax`, `plan`, `unsupported`, `catalog` or `internal`.
    pub kind: String,
    /// Line (from 1), when known.
    pub line: Option<u64>,
    /// Column (from 1), when known.
    pub column: Option<u64>,
}

/// One query's plans.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryPlanView {
    /// `INSERT INTO t` or `SELECT`.
    pub target: String,
    /// The bound logical plan.
    pub logical: String,
    /// After the optimizer.
    pub optimized: String,
    /// The dataflow plan.
    pub physical: String,
}

/// The answer of `POST /api/v1/jobs/validate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidateResponse {
    /// True when the script compiles.
    pub valid: bool,
    /// Each query's plans at every stage (empty when invalid).
    pub queries: Vec<QueryPlanView>,
    /// Tables the script declares.
    pub tables: Vec<String>,
    /// True when every source is bounded (the job would finish by itself).
    pub bounded: bool,
    /// Errors (empty when valid), with line and column.
    pub errors: Vec<SqlErrorView>,
}

/// A job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// Unique forever.
    pub id: String,
    /// Unique among live jobs.
    pub name: String,
    /// Spec version (bumped by every change).
    pub version: u64,
    /// The SQL, with secret option values replaced by `******`.
    pub sql: String,
    /// Resources.
    pub resources: Resources,
    /// Cluster.
    pub cluster: String,
    /// What the user wants.
    pub desired_state: DesiredState,
    /// What the watchdog last decided.
    pub state: JobState,
    /// Why.
    pub state_reason: String,
    /// Since when (RFC 3339).
    pub state_since: String,
    /// Restarts after failures (all versions).
    pub restarts: u64,
    /// When the next restart may happen (RFC 3339), while backing off.
    pub next_restart_at: Option<String>,
    /// True when every source is bounded.
    pub bounded: bool,
    /// Who submitted it (a token's name).
    pub owner: Option<String>,
    /// Live instances (normally at most one).
    pub instances: Vec<String>,
    /// Rows read by the sources of the live instance (or, when none is live, of the
    /// latest instance of this version), before the filters pushed into them.
    pub rows_read: u64,
    /// Rows those sources emitted, after the filters pushed into them.
    pub rows_in: u64,
    /// Rows written by the live instance (or the latest one of this version).
    pub rows_out: u64,
    /// The job's counters over every instance it ever ran (all versions, restarts and
    /// rescales): monotonic, as `/metrics` reports them. Rows a restored instance reads
    /// again after its checkpoint count again.
    pub totals: Counters,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last spec change (RFC 3339).
    pub updated_at: String,
}

impl JobView {
    /// The view of a job, its status and the instances observed.
    pub fn new(job: &Job, status: &JobStatus, instances: &[ObservedInstance]) -> Self {
        let live: Vec<&ObservedInstance> = instances
            .iter()
            .filter(|i| i.job_id == job.id && i.state.is_live())
            .collect();
        let current = status.version == job.version;
        // Counters: the live instance's, else those of the latest instance of this version
        // (a finished bounded job keeps showing what it read and wrote).
        let counted: Vec<&ObservedInstance> = if live.is_empty() {
            instances
                .iter()
                .filter(|i| i.job_id == job.id && i.job_version == job.version)
                .max_by_key(|i| (i.started_at_ms, i.instance_id.clone()))
                .into_iter()
                .collect()
        } else {
            live.clone()
        };
        JobView {
            id: job.id.clone(),
            name: job.name.clone(),
            version: job.version,
            sql: redacted_sql(job),
            resources: job.resources,
            owner: job.owner.clone(),
            cluster: job.cluster.clone(),
            desired_state: job.desired_state,
            state: if current {
                status.state
            } else {
                JobState::Pending
            },
            state_reason: if current {
                status.reason.clone()
            } else {
                format!("version {} waits for the watchdog", job.version)
            },
            state_since: rfc3339(status.since_ms),
            restarts: status.restarts,
            next_restart_at: status.next_start_at_ms.map(rfc3339),
            bounded: job.bounded,
            instances: live.iter().map(|i| i.instance_id.clone()).collect(),
            rows_read: counted.iter().map(|i| i.rows_read).sum(),
            rows_in: counted.iter().map(|i| i.rows_in).sum(),
            rows_out: counted.iter().map(|i| i.rows_out).sum(),
            totals: status.job_totals(instances),
            created_at: rfc3339(job.created_at_ms),
            updated_at: rfc3339(job.updated_at_ms),
        }
    }
}

/// `GET /api/v1/jobs` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
}

/// `GET /api/v1/jobs/{name}/events` paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this sequence number.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One entry of a job's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Position in the history (1, 2, …).
    pub seq: u64,
    /// When (RFC 3339).
    pub at: String,
    /// What kind.
    pub kind: String,
    /// The job version.
    pub version: u64,
    /// The state after it, when it changed one.
    pub state: Option<JobState>,
    /// Detail.
    pub message: String,
    /// Who caused it (a token's name), when a request did.
    pub by: Option<String>,
}

/// An instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceView {
    /// Unique id.
    pub id: String,
    /// The job's id.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// The job version it runs.
    pub job_version: u64,
    /// Its cluster.
    pub cluster: String,
    /// Life state.
    pub state: InstanceState,
    /// Why it failed or crashed.
    pub message: Option<String>,
    /// Worker threads.
    pub parallelism: u32,
    /// Memory cap (MiB).
    pub memory_mb: u64,
    /// GPUs.
    pub gpus: u32,
    /// Its process ids.
    pub pids: Vec<u32>,
    /// Started (RFC 3339).
    pub started_at: String,
    /// Ended (RFC 3339).
    pub ended_at: Option<String>,
    /// Last heartbeat (RFC 3339).
    pub last_heartbeat: Option<String>,
    /// Restarts of its job after failures.
    pub restarts: u64,
    /// Rows its sources read, before the filters pushed into them.
    pub rows_read: u64,
    /// Rows its sources emitted (after the filters pushed into them).
    pub rows_in: u64,
    /// Rows written to its sinks.
    pub rows_out: u64,
    /// Undecodable records seen.
    pub bad_records: u64,
    /// True while some source has input available that it has not read yet; false
    /// while every source is caught up (an idle job, which is not hung).
    pub input_waiting: bool,
    /// When its counters last moved (RFC 3339).
    pub last_progress: Option<String>,
    /// The latest time by which every worker thread had stepped its dataflow loop
    /// (RFC 3339): the worker's own liveness.
    pub last_step: Option<String>,
    /// True when the master asked it to stop.
    pub stop_requested: bool,
    /// Rows each operator of its plan has emitted, all workers together, keyed
    /// `<query>.<node>`: the query's index in the job's SQL (as `POST
    /// /api/v1/jobs/validate` lists them) and the operator's line in that query's
    /// physical plan (EXPLAIN PHYSICAL, from 0). Two readings give each operator's rate.
    pub operators: std::collections::BTreeMap<String, u64>,
}

impl InstanceView {
    /// The view of an observed instance (`restarts` from its job's status).
    pub fn new(i: &ObservedInstance, restarts: u64) -> Self {
        InstanceView {
            id: i.instance_id.clone(),
            job_id: i.job_id.clone(),
            job_name: i.job_name.clone(),
            job_version: i.job_version,
            cluster: i.cluster.clone(),
            state: i.state.clone(),
            message: i.message.clone(),
            parallelism: i.parallelism,
            memory_mb: i.memory_mb,
            gpus: i.gpus,
            pids: i.pids.clone(),
            started_at: rfc3339(i.started_at_ms),
            ended_at: i.ended_at_ms.map(rfc3339),
            last_heartbeat: i.heartbeat_at_ms.map(rfc3339),
            restarts,
            rows_read: i.rows_read,
            rows_in: i.rows_in,
            rows_out: i.rows_out,
            bad_records: i.bad_records,
            input_waiting: i.input_waiting,
            last_progress: i.progress_at_ms.map(rfc3339),
            last_step: i.stepped_at_ms.map(rfc3339),
            stop_requested: i.stop_requested,
            operators: i.operators.clone(),
        }
    }
}

/// `POST /api/v1/jobs/{name}/savepoints`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SavepointQuery {
    /// Stop the job (the default) or, with `false`, keep it running.
    pub stop: Option<bool>,
}

/// `GET /api/v1/instances` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstanceListQuery {
    /// Only this job's instances (by name).
    pub job: Option<String>,
    /// Only live instances (starting or running).
    pub live: Option<bool>,
}

/// `GET /api/v1/instances/{id}/logs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// How many bytes from the end of the log (default 65536, at most 16 MiB; with
    /// `tail_lines`, the window the lines are taken from: default 1 MiB).
    #[param(minimum = 1, maximum = 16777216)]
    pub tail_bytes: Option<u64>,
    /// Only the last this many lines (as `tail -n`), from within `tail_bytes`.
    #[param(minimum = 1, maximum = 1000000)]
    pub tail_lines: Option<u64>,
}

/// The last `n` lines of `text` (a final line without a newline counts as a line).
pub fn last_lines(text: &str, n: u64) -> &str {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut start = body.len();
    let mut seen = 0;
    while seen < n {
        match body[..start].rfind('\n') {
            Some(i) => {
                start = i;
                seen += 1;
            }
            None => return text,
        }
    }
    &text[start + 1..]
}

#[cfg(test)]
mod last_lines_tests {
    use super::last_lines;

    #[test]
    fn counts_lines_like_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a\nb\n", 5), "a\nb\n");
        assert_eq!(last_lines("", 3), "");
        assert_eq!(last_lines("x\n", 1), "x\n");
    }
}

/// A cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    /// Name.
    pub name: String,
    /// Driver kind (`local`).
    pub kind: String,
    /// What it can hold.
    pub capacity: Capacity,
    /// The most worker threads one process of an instance runs here (`local`:
    /// `--local-threads-per-process`, else all; `hosts`: the most slots one live agent
    /// offers). A job that names no `resources.processes` runs as the fewest processes
    /// within it.
    pub threads_per_process: u64,
    /// What live instances use.
    pub used: Capacity,
    /// Live instances.
    pub instances: u64,
}

/// `POST /api/v1/tables`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTableRequest {
    /// One or more `CREATE TABLE` statements.
    #[schema(
        example = "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'filesystem', 'path' = './data/bids', 'format' = 'parquet')"
    )]
    pub ddl: String,
}

/// A column.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnView {
    /// Name.
    pub name: String,
    /// SQL type.
    #[serde(rename = "type")]
    pub ty: String,
    /// True when it may be NULL.
    pub nullable: bool,
}

/// A catalog table.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableView {
    /// Name.
    pub name: String,
    /// The `'connector'` option.
    pub connector: String,
    /// Columns.
    pub columns: Vec<ColumnView>,
    /// The event-time column and delay, when declared.
    pub watermark: Option<WatermarkView>,
    /// Options; secret values are `******`.
    pub options: BTreeMap<String, String>,
    /// The DDL it was declared with (secret values `******`).
    pub ddl: String,
    /// Created (RFC 3339).
    pub created_at: String,
}

/// A declared watermark.
#[derive(Debug, Serialize, ToSchema)]
pub struct WatermarkView {
    /// The event-time column.
    pub column: String,
    /// How far the watermark trails the largest event time (ms).
    pub delay_ms: i64,
}

impl TableView {
    /// The view of a stored table.
    pub fn new(t: &StoredTable) -> Self {
        let d = &t.descriptor;
        let secrets = d.secret_values();
        TableView {
            name: d.name.clone(),
            connector: d.connector.clone(),
            columns: d
                .schema
                .fields
                .iter()
                .map(|f| ColumnView {
                    name: f.name.clone(),
                    ty: f.ty.to_string(),
                    nullable: f.nullable,
                })
                .collect(),
            watermark: d.watermark.as_ref().map(|w| WatermarkView {
                column: d
                    .schema
                    .fields
                    .get(w.column)
                    .map(|f| f.name.clone())
                    .unwrap_or_default(),
                delay_ms: w.delay_ms,
            }),
            options: d.redacted_options(),
            ddl: sluice_catalogs::sealed::redact_sealed(&scrub_secrets(&t.ddl, &secrets)),
            created_at: rfc3339(t.created_at_ms),
        }
    }
}

/// `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The master's version.
    pub version: String,
}

/// Kept so `REDACTED` stays documented next to the views that use it.
pub const SECRET_PLACEHOLDER: &str = REDACTED;
