//! # Scheduled workflows: cron-driven DAGs of SQL tasks
//!
//! ```text
//! REST (api/workflows.rs) ─▶ Master::create_workflow (service.rs here: validate, compile every
//!                            task's templated SQL) ─▶ WorkflowStore (sled trees beside the jobs)
//!
//! scheduler thread (executor.rs), every cycle, with `now` injected:
//!   schedule::due_ticks(schedule, catch-up, last tick, now) ─▶ runs created by compare-and-set
//!                                                              insert (id = workflow id + tick)
//!   runs::promote(policy, active runs)                      ─▶ queued runs start
//!   runs::decide(run, observed instances, capacity, now)    ─▶ RunActions (launch, stop, retire)
//!                                                              applied through the Cluster trait
//! ```
//!
//! A workflow sits beside jobs in the master: its tasks are bounded instances launched
//! through the same [`Cluster`](crate::cluster::Cluster) trait, owned by
//! [`InstanceOwner::Task`](crate::model::InstanceOwner) (the job watchdog leaves those
//! alone; their job id, shown by the REST views, is `wf:<workflow id>`) and with an
//! instance id derived from run id, task id and attempt, so a restarted master
//! recognises its own instances and never launches an attempt twice. Every decision is a pure function of stored
//! state, observed instances and the time; the executor persists the decision (flushed)
//! before it launches anything.
//!
//! This file holds the stored model: [`Workflow`] (a versioned [`WorkflowSpec`]),
//! [`SchedulerState`] (the last tick scheduled) and [`WorkflowRun`] with one [`TaskRun`]
//! per task.

pub mod executor;
pub mod runs;
pub mod schedule;
pub mod service;
pub mod store;
pub mod template;

use crate::model::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub use store::{MemoryWorkflowStore, SledWorkflowStore, WorkflowStore};

/// What happens when a scheduled tick comes while a run of the workflow is active.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyPolicy {
    /// The tick is recorded as a `skipped` run; at most one run is active.
    #[default]
    Skip,
    /// The tick's run waits (`queued`) until the active one ends; one runs at a time.
    Queue,
    /// The tick's run starts at once, beside the active ones.
    Allow,
}

/// Which ticks missed while the master was down (or behind) are run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CatchupPolicy {
    /// None: only a tick that fell due within the scheduler's grace period runs.
    None,
    /// Only the most recent missed tick runs.
    #[default]
    Latest,
    /// Every missed tick runs, oldest first.
    All,
}

/// When a workflow runs: a cron expression read in a time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Cron expression: 5 fields (minute granularity), 6 (with seconds first) or 7 (with
    /// a year last); `@daily`-style nicknames work too.
    #[schema(example = "0 30 2 * * *")]
    pub cron: String,
    /// IANA time zone the expression is read in (default `UTC`).
    #[serde(default = "utc")]
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
}

fn utc() -> String {
    "UTC".to_string()
}

/// One task of a workflow: a bounded SQL job run once per workflow run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskSpec {
    /// Unique within the workflow: a letter, then letters, digits, `_` or `-`.
    #[schema(example = "extract")]
    pub id: String,
    /// The SQL script; `{{ logical_time }}`, `{{ ds }}`, `{{ ds_nodash }}`,
    /// `{{ ts_nodash }}`, `{{ run_id }}` and the workflow's parameters are substituted
    /// before it is compiled.
    pub sql: String,
    /// Tasks that must succeed before this one starts.
    pub depends_on: Vec<String>,
    /// Attempts after the first failed one.
    pub retries: u32,
    /// Delay before each retry (ms).
    pub retry_backoff_ms: u64,
    /// An attempt running longer than this is stopped and counts as failed (ms).
    pub timeout_ms: Option<u64>,
    /// What each attempt's instance asks of the cluster.
    pub resources: Resources,
}

/// A workflow's specification (what the user submits, with defaults filled in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowSpec {
    /// When it runs.
    pub schedule: ScheduleSpec,
    /// The DAG, in the order given.
    pub tasks: Vec<TaskSpec>,
    /// Parameters and their defaults (`{{ name }}` in task SQL).
    pub parameters: BTreeMap<String, String>,
    /// What a tick does while a run is active.
    pub concurrency: ConcurrencyPolicy,
    /// Which missed ticks run after downtime.
    pub catchup: CatchupPolicy,
    /// False: no tick is scheduled (manual runs and backfills still work).
    pub enabled: bool,
    /// The cluster its tasks run on.
    pub cluster: String,
}

/// A workflow as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    /// Format of this record.
    pub format_version: u32,
    /// Unique forever (`w000123`).
    pub id: String,
    /// Unique among live workflows; the key in the API.
    pub name: String,
    /// 1 at creation, bumped by every change.
    pub version: u64,
    /// The specification at this version.
    pub spec: WorkflowSpec,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Time of the last change (ms).
    pub updated_at_ms: i64,
    /// 128 random bits (hex) drawn at creation: scheduled run ids end in a hash of the
    /// tick keyed with it, so nobody can guess a run's id (or its instances'), while a
    /// tick always gets the same id. Empty in workflows created before it existed,
    /// whose runs keep the plain `<id>-<tick>` form.
    #[serde(default)]
    pub run_key: String,
}

/// The scheduler's durable memory of one workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// Format of this record.
    pub format_version: u32,
    /// The workflow.
    pub workflow_id: String,
    /// Ticks at or before this time (ms) have been scheduled (or deliberately passed
    /// over); the next tick considered is the first one after it.
    pub last_tick_ms: i64,
}

/// How a run came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// A tick of the schedule.
    Scheduled,
    /// `POST …/runs`.
    Manual,
    /// `POST …/backfill`.
    Backfill,
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for an active run of the workflow to end.
    Queued,
    /// Its tasks are being run.
    Running,
    /// Every task succeeded.
    Succeeded,
    /// Some task failed (or could not run because an upstream one failed).
    Failed,
    /// Cancelled on request.
    Cancelled,
    /// The tick came while another run was active (concurrency `skip`): nothing ran.
    Skipped,
}

impl RunState {
    /// True once nothing more happens to the run.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running)
    }
}

/// Where a task of a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for its dependencies (or for cluster capacity).
    Pending,
    /// An attempt's instance is running.
    Running,
    /// An attempt finished.
    Succeeded,
    /// Its last attempt failed and no retry is left.
    Failed,
    /// An attempt failed; the next one starts after the backoff.
    Retrying,
    /// It never ran (the run was skipped or cancelled before it started).
    Skipped,
    /// A task it depends on failed.
    UpstreamFailed,
    /// Its running attempt was stopped because the run was cancelled.
    Cancelled,
}

impl TaskState {
    /// True once nothing more happens to the task.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            TaskState::Pending | TaskState::Running | TaskState::Retrying
        )
    }
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The instance finished.
    Succeeded,
    /// The instance failed, crashed or could not be launched.
    Failed,
    /// It ran past the task's timeout and was stopped.
    TimedOut,
    /// The run was cancelled while it ran.
    Cancelled,
}

/// One attempt of a task: one instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1, 2, …
    pub attempt: u32,
    /// Its instance (`<run id>.<task id>.<attempt>`).
    pub instance_id: String,
    /// When it was launched (ms).
    pub started_at_ms: i64,
    /// When its end was accounted for (ms).
    pub ended_at_ms: Option<i64>,
    /// How it ended (`None` while it runs).
    pub outcome: Option<AttemptOutcome>,
    /// Why it failed.
    pub message: Option<String>,
    /// Rows its sources read (at its end).
    pub rows_in: u64,
    /// Rows its sinks wrote (at its end).
    pub rows_out: u64,
}

/// One task within one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRun {
    /// The task's spec as it was when the run was created.
    pub spec: TaskSpec,
    /// Its state.
    pub state: TaskState,
    /// Its attempts, oldest first (the last one is the current one while `running`).
    pub attempts: Vec<Attempt>,
    /// While `retrying`: no attempt starts before this time (ms).
    pub next_attempt_at_ms: Option<i64>,
    /// When it reached a terminal state (ms).
    pub ended_at_ms: Option<i64>,
    /// Why it is in its state (one line), when there is something to say.
    pub message: Option<String>,
}

impl TaskRun {
    /// A task that has not run yet.
    pub fn new(spec: TaskSpec) -> Self {
        TaskRun {
            spec,
            state: TaskState::Pending,
            attempts: Vec::new(),
            next_attempt_at_ms: None,
            ended_at_ms: None,
            message: None,
        }
    }

    /// The current attempt while running.
    pub fn current(&self) -> Option<&Attempt> {
        if self.state == TaskState::Running {
            self.attempts.last()
        } else {
            None
        }
    }

    /// When its first attempt started (ms).
    pub fn started_at_ms(&self) -> Option<i64> {
        self.attempts.first().map(|a| a.started_at_ms)
    }
}

/// One run of a workflow: one tick (or a manual trigger), its parameters, and a
/// [`TaskRun`] per task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// Format of this record.
    pub format_version: u32,
    /// `<workflow id>-<tick, epoch seconds>-<keyed hash>` for scheduled and backfilled
    /// runs ([`run_id`]), `<workflow id>-manual-<random>` for manual ones
    /// ([`manual_run_id`]); neither can be guessed.
    pub run_id: String,
    /// The workflow's id.
    pub workflow_id: String,
    /// The workflow's name when the run was created.
    pub workflow_name: String,
    /// The workflow version whose tasks it runs.
    pub workflow_version: u64,
    /// How it came to be.
    pub trigger: RunTrigger,
    /// The tick it stands for (ms).
    pub logical_time_ms: i64,
    /// Every parameter its SQL is rendered with (built-ins included).
    pub parameters: BTreeMap<String, String>,
    /// Its state.
    pub state: RunState,
    /// Why it is in its state, when there is something to say.
    pub message: Option<String>,
    /// The tasks, in the workflow's order.
    pub tasks: Vec<TaskRun>,
    /// The cluster its tasks run on.
    pub cluster: String,
    /// Set by a cancel request; the scheduler stops what runs and ends the run.
    pub cancel_requested: bool,
    /// Bumped by every write (compare-and-set).
    pub rev: u64,
    /// Created (ms).
    pub created_at_ms: i64,
    /// When it left `queued` (ms).
    pub started_at_ms: Option<i64>,
    /// When it reached a terminal state (ms).
    pub ended_at_ms: Option<i64>,
}

impl WorkflowRun {
    /// The task of that id.
    pub fn task(&self, id: &str) -> Option<&TaskRun> {
        self.tasks.iter().find(|t| t.spec.id == id)
    }
}

/// The id of the scheduled (or backfilled) run of a workflow's tick:
/// `<workflow id>-<tick, epoch seconds>-<32 hex digits>`, the digits a hash of the tick
/// keyed with the workflow's [`Workflow::run_key`] — the same for the same tick (a tick
/// is never run twice), unguessable without the key.
pub fn run_id(wf: &Workflow, tick_ms: i64) -> String {
    use sha2::{Digest, Sha256};
    let secs = tick_ms.div_euclid(1000);
    if wf.run_key.is_empty() {
        return format!("{}-{secs}", wf.id);
    }
    let digest = Sha256::new()
        .chain_update(wf.run_key.as_bytes())
        .chain_update(b"\0")
        .chain_update(secs.to_be_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{secs}-{hex}", wf.id)
}

/// The id of a manual run: `<workflow id>-manual-<128 random bits, hex>`.
pub fn manual_run_id(wf: &Workflow) -> String {
    format!("{}-manual-{:032x}", wf.id, rand::random::<u128>())
}

/// A fresh [`Workflow::run_key`].
pub fn new_run_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The instance id of a task attempt: `<run id>.<task id>.<attempt>`.
pub fn instance_id(run_id: &str, task_id: &str, attempt: u32) -> String {
    format!("{run_id}.{task_id}.{attempt}")
}

/// The job id under which a workflow's task instances run.
pub fn workflow_job_id(workflow_id: &str) -> String {
    format!("{}{workflow_id}", crate::model::WORKFLOW_JOB_PREFIX)
}
