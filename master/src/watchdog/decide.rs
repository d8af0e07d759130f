//! `decide`: the pure heart of the watchdog.
//!
//! [`decide`] maps (desired jobs, observed instances, clusters, policy, now) to the
//! [`Action`]s that bring the world closer to what is desired. It does no I/O, reads no
//! clock and draws no random numbers (the backoff jitter is a hash of the job id and its
//! restart count), and its output is a function of its inputs only: jobs are processed
//! in order of name, instances in order of `(started_at_ms, instance_id)`.
//!
//! # Output order
//!
//! For each job (by name): its `SetStatus` (at most one, and only when the status
//! changed), then its `Stop`s, its `Retire`s and its `Start`; after all jobs, the
//! `Stop`s and `Forget`s of instances whose job no longer exists (a deleted job's
//! instances are stopped, then forgotten with their directories and logs once they
//! ended). The status comes
//! first so that an executor interrupted half-way never loses an accounted failure:
//! once the status naming an instance as accounted is written, a repeated `Retire` or
//! `Stop` of that instance is not counted again.
//!
//! # Rules beyond the obvious
//!
//! * A live instance that is already stop-requested is being stopped: it is neither
//!   stopped again (escalating is the cluster driver's business) nor kept as the job's
//!   instance, but it still blocks starting a new one and still uses capacity.
//! * `Finished` and `Failed` are terminal for a spec version: a further failure of an
//!   instance of that version is retired without being counted (it would otherwise
//!   schedule a restart of a finished or failed job).
//! * An instance of the current version that reports `finished` finishes the job even
//!   when it was stop-requested meanwhile or its end was already counted (it looked
//!   hung): the job's work is done, and a restart would run it again.
//! * An instance that ended *superseded* (another instance of the job, e.g. a second
//!   master's over a copy of the data directory, wrote the checkpoint it was about to
//!   write, and it stopped without committing) fails the job without a restart: a
//!   restart would only take the job back from the instance that owns it now.
//! * A start that fails ([`start_failed`], applied by the executor) counts like a
//!   crash: the same backoff, the same limit on failures within the window.
//! * The backoff is `min(min(initial · multiplier^(k−1), max) · jitter, max)`: the jitter
//!   never pushes a delay above `backoff_max_ms`.
//! * A status that leaves `Restarting` for `Stopped` (or `Failed`, or starts an
//!   instance) drops its pending `next_start_at_ms`.
//! * "Waiting for capacity" reasons report the capacity left after every start of the
//!   cycle, so that applying the cycle's actions reaches a fixed point.
//! * A kept `Starting` instance gives the reason `starting instance X`, the same words
//!   as its `Start`, so the cycle after a start writes no status.
//! * A status is written only when it changed; its event is `state` when only the state
//!   changed, and there is none when only the reason changed (e.g. the free capacity).
//!
//! # Legal transitions
//!
//! Every change of a job's state names its [`Cause`], and must be a row of
//! [`transitions::TRANSITIONS`] (checked by `debug_assert!`, and by the tests over
//! every step `decide` takes on generated worlds). Observation wins: a live instance of
//! the current version moves even a `Finished` or `Failed` job to `Starting`/`Running`
//! (adoption), and a finished one moves any job to `Finished`.

use super::{Action, ClusterView, DesiredJob, Policy};
use crate::model::transitions::{self, Cause};
use crate::model::{
    Capacity, Counters, DesiredState, InstanceState, JobState, JobStatus, ObservedInstance,
    Resources, COUNTED_KEPT,
};

/// Event kinds, most relevant first: a `SetStatus` carrying several happenings takes
/// the kind of the most relevant one and joins all their messages.
const EVENT_RANK: [&str; 7] = [
    "instance_superseded",
    "instance_failed",
    "restart_scheduled",
    "instance_finished",
    "instance_started",
    "version",
    "state",
];

/// What to do now, given what should be and what is.
///
/// See the module documentation for the rules and the order of the returned actions.
pub fn decide(
    desired: &[DesiredJob],
    observed: &[ObservedInstance],
    clusters: &[ClusterView],
    policy: &Policy,
    now_ms: i64,
) -> Vec<Action> {
    decide_with_steps(desired, observed, clusters, policy, now_ms).0
}

/// One change of a job's state that `decide` made, with its cause (a row of
/// [`transitions::TRANSITIONS`]); a step from a state to itself only rewrote the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// The job.
    pub job_id: String,
    /// The state before.
    pub from: JobState,
    /// The state after.
    pub to: JobState,
    /// Why.
    pub cause: Cause,
}

impl Step {
    /// True when the table of legal transitions has a row for it.
    pub fn is_legal(&self) -> bool {
        transitions::allows(self.from, self.to, self.cause)
    }
}

/// [`decide`], and the state changes it made in order (for the tests that check them
/// against the table of legal transitions).
pub(crate) fn decide_with_steps(
    desired: &[DesiredJob],
    observed: &[ObservedInstance],
    clusters: &[ClusterView],
    policy: &Policy,
    now_ms: i64,
) -> (Vec<Action>, Vec<Step>) {
    let mut jobs: Vec<&DesiredJob> = desired.iter().collect();
    jobs.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.job_id.cmp(&b.job_id)));
    let mut instances: Vec<&ObservedInstance> = observed.iter().collect();
    instances.sort_by(|a, b| {
        a.started_at_ms
            .cmp(&b.started_at_ms)
            .then_with(|| a.instance_id.cmp(&b.instance_id))
    });

    let ctx = Ctx {
        instances: &instances,
        clusters,
        policy,
        now_ms,
    };
    let mut started: Vec<(&str, Resources)> = Vec::new();
    let mut plans: Vec<Plan> = jobs
        .iter()
        .map(|job| ctx.plan_job(job, &mut started))
        .collect();

    let mut actions = Vec::new();
    for plan in &mut plans {
        if let Some(cluster) = plan.waiting_on {
            let free = free(cluster.capacity, usage(&cluster.name, &instances, &started));
            let reason = format!(
                "waiting for capacity on cluster {} (needs {}; free {})",
                cluster.name,
                show_resources(plan.job.resources),
                show_capacity(free),
            );
            plan.transition(JobState::Pending, Cause::NoCapacity, reason, None, now_ms);
        }
        plan.emit(&mut actions);
    }
    let steps = plans.into_iter().flat_map(|p| p.log.steps).collect();

    for inst in &instances {
        if desired.iter().any(|j| j.job_id == inst.job_id) {
            continue;
        }
        if inst.state.is_live() {
            if !inst.stop_requested {
                actions.push(Action::Stop {
                    instance_id: inst.instance_id.clone(),
                    reason: format!("job {} no longer exists", inst.job_name),
                });
            }
        } else {
            actions.push(Action::Forget {
                instance_id: inst.instance_id.clone(),
            });
        }
    }
    (actions, steps)
}

/// The inputs shared by every job of one cycle.
struct Ctx<'a> {
    /// All observed instances, sorted by `(started_at_ms, instance_id)`.
    instances: &'a [&'a ObservedInstance],
    clusters: &'a [ClusterView],
    policy: &'a Policy,
    now_ms: i64,
}

/// What one cycle decided for one job, before it is turned into actions.
struct Plan<'a> {
    job: &'a DesiredJob,
    status: JobStatus,
    log: Log,
    stops: Vec<Action>,
    retires: Vec<Action>,
    start: Option<Action>,
    /// Set when the job could start but its cluster lacks capacity: the reason is
    /// written once every start of the cycle is known.
    waiting_on: Option<&'a ClusterView>,
}

impl<'a> Ctx<'a> {
    fn plan_job(&self, job: &'a DesiredJob, started: &mut Vec<(&'a str, Resources)>) -> Plan<'a> {
        let now = self.now_ms;
        let mut plan = Plan {
            job,
            status: job.status.clone(),
            log: Log::default(),
            stops: Vec::new(),
            retires: Vec::new(),
            start: None,
            waiting_on: None,
        };
        if job.status.version != job.version {
            let mut fresh = JobStatus::new(&job.job_id, job.version, now);
            fresh.restarts = job.status.restarts;
            fresh.totals = job.status.totals;
            fresh.counted_instances = job.status.counted_instances.clone();
            plan.log
                .step(&plan.status, JobState::Pending, Cause::NewVersion);
            plan.status = fresh;
            plan.log
                .events
                .push(("version", format!("spec version {}", job.version)));
        }

        let mine: Vec<&ObservedInstance> = self
            .instances
            .iter()
            .copied()
            .filter(|i| i.job_id == job.job_id)
            .collect();
        let had_live = mine.iter().any(|i| i.state.is_live());

        // Ended instances: retire them, and account for the ends nobody asked for.
        for inst in mine.iter().filter(|i| !i.state.is_live() && !i.retired) {
            plan.retires.push(Action::Retire {
                instance_id: inst.instance_id.clone(),
            });
            // Its counters join the job's totals (once: the status remembers it; an
            // instance that counted nothing changes nothing).
            let counters = Counters::of(inst);
            if counters != Counters::default()
                && !plan.status.counted_instances.contains(&inst.instance_id)
            {
                plan.status.totals = plan.status.totals.plus(counters);
                plan.status.counted_instances.push(inst.instance_id.clone());
                let extra = plan
                    .status
                    .counted_instances
                    .len()
                    .saturating_sub(COUNTED_KEPT);
                plan.status.counted_instances.drain(..extra);
            }
            // A finished run of this version is the job's end even when a stop was
            // requested meanwhile (e.g. it looked hung) or its end was already counted
            // as a failure: restarting would run the finished job again.
            if inst.state == InstanceState::Finished
                && inst.job_version == job.version
                && job.desired_state == DesiredState::Running
            {
                let reason = format!("instance {} finished", inst.instance_id);
                plan.transition(
                    JobState::Finished,
                    Cause::InstanceFinished,
                    reason,
                    Some("instance_finished"),
                    now,
                );
                continue;
            }
            if plan.status.last_accounted_instance.as_deref() == Some(inst.instance_id.as_str())
                || inst.stop_requested
                || inst.job_version != job.version
                || job.desired_state == DesiredState::Stopped
            {
                continue;
            }
            let id = &inst.instance_id;
            let detail = |what: &str| match &inst.message {
                Some(msg) => format!("instance {id} {what} ({msg})"),
                None => format!("instance {id} {what}"),
            };
            let what = match inst.state {
                // Handled above (or a repeated report of a finished job).
                InstanceState::Finished => continue,
                InstanceState::Crashed => detail("crashed"),
                InstanceState::Stopped => detail("stopped without a request"),
                _ => detail("failed"),
            };
            if inst.superseded {
                if matches!(plan.status.state, JobState::Finished | JobState::Failed) {
                    continue;
                }
                // Fenced: another instance of this job (another master's, over the same
                // checkpoints) owns it now; a restart would take it back from that one.
                plan.status.last_accounted_instance = Some(id.clone());
                plan.status.next_start_at_ms = None;
                let reason = format!(
                    "{what}; another instance of this job, started by another master over \
                     the same checkpoint store, owns it now, so this master does not restart \
                     it (if that is wrong, stop the other master's job, then restart this one)"
                );
                plan.transition(
                    JobState::Failed,
                    Cause::GaveUp,
                    reason,
                    Some("instance_superseded"),
                    now,
                );
                continue;
            }
            let user_error = inst
                .user_error
                .then(|| inst.message.as_deref().unwrap_or("no message").to_string());
            self.account_failure(&mut plan, id, what, user_error);
        }

        // Live instances: stop what should not run, keep one, check its health.
        let mut kept = false;
        for inst in mine
            .iter()
            .filter(|i| i.state.is_live() && !i.stop_requested)
        {
            let id = &inst.instance_id;
            let reason = if job.desired_state == DesiredState::Stopped {
                "job stopped".to_string()
            } else if inst.job_version != job.version {
                format!("spec version {} → {}", inst.job_version, job.version)
            } else if kept {
                format!("duplicate instance of job {}", job.name)
            } else {
                kept = true;
                match hung(inst, self.policy, now) {
                    Some(why) => {
                        if plan.status.last_accounted_instance.as_deref() != Some(id.as_str()) {
                            let what = format!("instance {id} hung ({why})");
                            self.account_failure(&mut plan, id, what, None);
                        }
                        format!("hung: {why}")
                    }
                    None => {
                        let (state, reason) = if inst.state == InstanceState::Running {
                            (JobState::Running, format!("instance {id} running"))
                        } else {
                            (JobState::Starting, format!("starting instance {id}"))
                        };
                        plan.transition(state, Cause::Adopted, reason, None, now);
                        continue;
                    }
                }
            };
            plan.stops.push(Action::Stop {
                instance_id: id.clone(),
                reason,
            });
        }

        // Start an instance when none is alive and nothing forbids it.
        let terminal = matches!(plan.status.state, JobState::Finished | JobState::Failed);
        let backing_off = plan.status.next_start_at_ms.is_some_and(|t| now < t);
        if job.desired_state == DesiredState::Running && !had_live && !terminal && !backing_off {
            match self.clusters.iter().find(|c| c.name == job.cluster) {
                None => {
                    let reason = format!("cluster {} does not exist", job.cluster);
                    plan.transition(JobState::Pending, Cause::NoCapacity, reason, None, now);
                }
                Some(cluster) => {
                    let used = usage(&cluster.name, self.instances, started);
                    if fits(used, job.resources, cluster.capacity) {
                        let instance_id = format!(
                            "{}-v{}-{}{}",
                            job.name,
                            job.version,
                            base36(now),
                            job.id_suffix
                        );
                        started.push((&cluster.name, job.resources));
                        plan.status.next_start_at_ms = None;
                        let reason = format!("starting instance {instance_id}");
                        plan.transition(
                            JobState::Starting,
                            Cause::Started,
                            reason,
                            Some("instance_started"),
                            now,
                        );
                        plan.start = Some(Action::Start {
                            job_id: job.job_id.clone(),
                            version: job.version,
                            instance_id,
                        });
                    } else {
                        plan.waiting_on = Some(cluster);
                    }
                }
            }
        }
        if job.desired_state == DesiredState::Stopped && !had_live {
            plan.status.next_start_at_ms = None;
            let reason = "stopped by request".to_string();
            plan.transition(
                JobState::Stopped,
                Cause::StopRequested,
                reason,
                Some("state"),
                now,
            );
        }
        plan
    }

    /// Counts a failure of instance `id` (`what` describes it) against the job: restart
    /// after a backoff, or mark the job failed (`user_error` holds the message when
    /// restarting cannot help).
    fn account_failure(&self, plan: &mut Plan, id: &str, what: String, user_error: Option<String>) {
        let Plan { status, log, .. } = plan;
        account_failure(status, log, self.policy, self.now_ms, id, what, user_error);
    }
}

/// What becomes of `status` when instance `instance_id` could not be started at all
/// (`error` says why, e.g. its directory cannot be written or the worker executable is
/// missing): the same accounting as a crash — a restart after the backoff, or the job
/// `Failed` after too many failures within the window — and the event to record.
pub fn start_failed(
    status: &JobStatus,
    instance_id: &str,
    error: &str,
    policy: &Policy,
    now_ms: i64,
) -> (JobStatus, Option<(String, String)>) {
    let mut status = status.clone();
    let mut log = Log::default();
    let what = format!("instance {instance_id} could not start ({error})");
    account_failure(
        &mut status,
        &mut log,
        policy,
        now_ms,
        instance_id,
        what,
        None,
    );
    (status, combine(&log.events))
}

/// Counts a failure of instance `id` (`what` describes it) against the job whose status
/// is `st`: restart after a backoff, or mark the job failed (`user_error` holds the
/// message when restarting cannot help). Nothing changes once the version is over.
fn account_failure(
    st: &mut JobStatus,
    log: &mut Log,
    policy: &Policy,
    now: i64,
    id: &str,
    what: String,
    user_error: Option<String>,
) {
    if matches!(st.state, JobState::Finished | JobState::Failed) {
        return;
    }
    st.last_accounted_instance = Some(id.to_string());
    st.restarts = st.restarts.saturating_add(1);
    st.recent_failures.push(now);
    let horizon = now.saturating_sub(policy.restart_window_ms);
    st.recent_failures.retain(|&t| t >= horizon);
    let failures = st.recent_failures.len();
    let max_restarts = usize::try_from(policy.max_restarts).unwrap_or(usize::MAX);
    if let Some(msg) = user_error {
        st.next_start_at_ms = None;
        let reason =
            format!("instance {id} failed: {msg}; restarting cannot fix this — change the job");
        transition(
            st,
            log,
            JobState::Failed,
            Cause::GaveUp,
            reason,
            Some("instance_failed"),
            now,
        );
    } else if failures > max_restarts {
        st.next_start_at_ms = None;
        let reason = format!(
            "{failures} failures within {}: last: {what}",
            show_secs(policy.restart_window_ms)
        );
        transition(
            st,
            log,
            JobState::Failed,
            Cause::GaveUp,
            reason,
            Some("instance_failed"),
            now,
        );
    } else {
        let delay = backoff_ms(policy, &st.job_id, st.restarts, failures);
        st.next_start_at_ms = Some(now.saturating_add(delay));
        let reason = format!("{what}; restart {} in {}", st.restarts, show_secs(delay));
        transition(
            st,
            log,
            JobState::Restarting,
            Cause::Restart,
            reason,
            Some("restart_scheduled"),
            now,
        );
    }
}

/// What one job's cycle has recorded so far: its events, and its state changes.
#[derive(Default)]
struct Log {
    /// `(kind, message)` of each happening, joined into one event by [`combine`].
    events: Vec<(&'static str, String)>,
    /// The state changes made, in order.
    steps: Vec<Step>,
}

impl Log {
    /// Records that `cause` moves `status` to `to`, which must be a legal transition.
    fn step(&mut self, status: &JobStatus, to: JobState, cause: Cause) {
        let step = Step {
            job_id: status.job_id.clone(),
            from: status.state,
            to,
            cause,
        };
        debug_assert!(step.is_legal(), "illegal transition: {step:?}");
        self.steps.push(step);
    }
}

/// Moves `status` to `state` for `cause` with `reason` (`since_ms` changes only with the
/// state), recording an event of `kind`, or a `state` event when the state changed.
fn transition(
    status: &mut JobStatus,
    log: &mut Log,
    state: JobState,
    cause: Cause,
    reason: String,
    kind: Option<&'static str>,
    now: i64,
) {
    log.step(status, state, cause);
    let events = &mut log.events;
    let changed = status.state != state;
    if changed {
        status.state = state;
        status.since_ms = now;
    }
    match kind {
        Some(kind) => events.push((kind, reason.clone())),
        None if changed => events.push(("state", reason.clone())),
        None => {}
    }
    status.reason = reason;
}

impl Plan<'_> {
    /// Moves the status to `state` (see [`transition`]).
    fn transition(
        &mut self,
        state: JobState,
        cause: Cause,
        reason: String,
        kind: Option<&'static str>,
        now: i64,
    ) {
        transition(
            &mut self.status,
            &mut self.log,
            state,
            cause,
            reason,
            kind,
            now,
        );
    }

    fn emit(&mut self, actions: &mut Vec<Action>) {
        if self.status != self.job.status {
            actions.push(Action::SetStatus {
                status: self.status.clone(),
                event: combine(&self.log.events),
            });
        }
        actions.append(&mut self.stops);
        actions.append(&mut self.retires);
        actions.extend(self.start.take());
    }
}

/// One event for several happenings: the most relevant kind, all messages.
fn combine(events: &[(&'static str, String)]) -> Option<(String, String)> {
    let rank = |kind: &str| {
        EVENT_RANK
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(usize::MAX)
    };
    let kind = events.iter().map(|(k, _)| *k).min_by_key(|k| rank(k))?;
    let message = events
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some((kind.to_string(), message))
}

/// Why the live instance `inst` is hung, if it is.
fn hung(inst: &ObservedInstance, policy: &Policy, now: i64) -> Option<String> {
    if inst.state == InstanceState::Starting
        && now.saturating_sub(inst.started_at_ms) > policy.start_timeout_ms
    {
        return Some(format!(
            "no report within {}",
            show_secs(policy.start_timeout_ms)
        ));
    }
    if let Some(beat) = inst.heartbeat_at_ms {
        let silent = now.saturating_sub(beat);
        if silent > policy.heartbeat_timeout_ms {
            return Some(format!("no heartbeat for {}", show_secs(silent)));
        }
    }
    if let Some(stepped) = inst.stepped_at_ms {
        let stuck = now.saturating_sub(stepped);
        if stuck > policy.stall_timeout_ms {
            return Some(format!(
                "a worker thread has not stepped its dataflow for {}",
                show_secs(stuck)
            ));
        }
    }
    // Idle is not hung: only input that is available and not consumed makes a job
    // whose counters stand still hung.
    if inst.input_waiting {
        let still = now.saturating_sub(inst.progress_at_ms.unwrap_or(inst.started_at_ms));
        if still > policy.progress_timeout_ms {
            return Some(format!(
                "no progress for {} while input is waiting",
                show_secs(still)
            ));
        }
    }
    None
}

/// The restart delay after the `failures`-th failure within the window (1-based), for
/// the job's `restarts`-th restart (which seeds the jitter).
fn backoff_ms(policy: &Policy, job_id: &str, restarts: u64, failures: usize) -> i64 {
    let max = i128::from(policy.backoff_max_ms.max(0));
    let initial = i128::from(policy.backoff_initial_ms.max(0));
    let exponent = u32::try_from(failures.saturating_sub(1)).unwrap_or(u32::MAX);
    let base = i128::from(policy.backoff_multiplier)
        .checked_pow(exponent)
        .map_or(max, |factor| initial.saturating_mul(factor).min(max));
    let delay = (base * jitter_permille(job_id, restarts) / 1000).min(max);
    i64::try_from(delay).unwrap_or(i64::MAX)
}

/// A deterministic jitter factor in `[0.8, 1.2)`, in thousandths.
fn jitter_permille(job_id: &str, restarts: u64) -> i128 {
    // FNV-1a over (job id, separator, restart count), then a splitmix64 finish.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in job_id.bytes().chain([0xff]).chain(restarts.to_le_bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    800 + i128::from(h % 400)
}

/// What the live instances on `cluster` use, plus what this cycle started there.
fn usage(
    cluster: &str,
    instances: &[&ObservedInstance],
    started: &[(&str, Resources)],
) -> Capacity {
    let mut used = Capacity::default();
    let mut add = |workers: u32, memory_mb: u64, gpus: u32| {
        used.workers = used.workers.saturating_add(u64::from(workers));
        used.memory_mb = used.memory_mb.saturating_add(memory_mb);
        used.gpus = used.gpus.saturating_add(u64::from(gpus));
    };
    for inst in instances
        .iter()
        .filter(|i| i.state.is_live() && i.cluster == cluster)
    {
        add(inst.parallelism, inst.memory_mb, inst.gpus);
    }
    for (_, r) in started.iter().filter(|(c, _)| *c == cluster) {
        add(r.parallelism, instance_memory_mb(r), r.gpus);
    }
    used
}

/// True when `needs` fits next to `used` within `capacity`.
fn fits(used: Capacity, needs: Resources, capacity: Capacity) -> bool {
    used.workers.saturating_add(u64::from(needs.parallelism)) <= capacity.workers
        && used.memory_mb.saturating_add(instance_memory_mb(&needs)) <= capacity.memory_mb
        && used.gpus.saturating_add(u64::from(needs.gpus)) <= capacity.gpus
}

/// The memory an instance holds in all: `memory_mb` in each of its processes.
pub fn instance_memory_mb(r: &Resources) -> u64 {
    r.memory_mb.saturating_mul(u64::from(r.processes.max(1)))
}

/// What is left of `capacity` after `used`.
fn free(capacity: Capacity, used: Capacity) -> Capacity {
    Capacity {
        workers: capacity.workers.saturating_sub(used.workers),
        memory_mb: capacity.memory_mb.saturating_sub(used.memory_mb),
        gpus: capacity.gpus.saturating_sub(used.gpus),
    }
}

fn show_resources(r: Resources) -> String {
    format!(
        "{} workers, {} MiB, {} GPUs",
        r.parallelism, r.memory_mb, r.gpus
    )
}

fn show_capacity(c: Capacity) -> String {
    format!(
        "{} workers, {} MiB, {} GPUs",
        c.workers, c.memory_mb, c.gpus
    )
}

/// Milliseconds as seconds: `30 s`, `1.9 s`.
fn show_secs(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// `n` in base 36 (digits, then lowercase letters).
fn base36(n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = n.unsigned_abs();
    let mut out = Vec::new();
    loop {
        // `v % 36 < 36`, so the index is in range.
        out.push(char::from(DIGITS[(v % 36) as usize]));
        v /= 36;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    out.iter().rev().collect()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
