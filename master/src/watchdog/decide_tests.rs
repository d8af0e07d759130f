//! Tests of `decide` — R6 (restart with backoff, give up after too many failures) and R7
//! (one instance per job, matched by id and version; hung instances are replaced) of
//! the reliability notes.

use super::{backoff_ms, base36, decide, jitter_permille, show_secs, start_failed};
use crate::model::{
    Capacity, Counters, DesiredState, InstanceState, JobState, JobStatus, ObservedInstance,
    Resources,
};
use crate::watchdog::{Action, ClusterView, DesiredJob, Policy};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// The fixed "now" of most tests (1000 s after the epoch).
const NOW: i64 = 1_000_000;
/// `base36(NOW)`: the suffix of instances started at `NOW`.
const NOW36: &str = "lfls";

// ---------------------------------------------------------------- fixtures

fn policy() -> Policy {
    Policy::default()
}

fn cluster(name: &str, workers: u64, memory_mb: u64, gpus: u64) -> ClusterView {
    ClusterView {
        name: name.to_string(),
        capacity: Capacity {
            workers,
            memory_mb,
            gpus,
        },
    }
}

fn clusters() -> Vec<ClusterView> {
    vec![cluster("local", 8, 16_384, 0)]
}

/// The reason a fixture status in `state` carries: what `decide` itself would write
/// for instance `i1` (or `i0`, an earlier instance).
fn fixture_reason(state: JobState) -> &'static str {
    match state {
        JobState::Pending => "submitted",
        JobState::Starting => "starting instance i1",
        JobState::Running => "instance i1 running",
        JobState::Restarting => "instance i0 crashed; restart 3 in 4.1 s",
        JobState::Stopped => "stopped by request",
        JobState::Finished => "instance i0 finished",
        JobState::Failed => {
            "instance i0 failed: bad sql; restarting cannot fix this — change the job"
        }
    }
}

/// A status of version 2 in `state`, with 3 earlier restarts; a `Restarting` one has a
/// backoff that just elapsed.
fn status_in(job_id: &str, state: JobState) -> JobStatus {
    let mut st = JobStatus::new(job_id, 2, 0);
    st.state = state;
    st.reason = fixture_reason(state).to_string();
    st.restarts = 3;
    if state == JobState::Restarting {
        st.next_start_at_ms = Some(NOW - 1);
    }
    st
}

/// Job `name` (id `id-NAME`) at version 2 on cluster `local`, needing 1 worker and
/// 1024 MiB.
fn job(name: &str, desired: DesiredState, state: JobState) -> DesiredJob {
    let job_id = format!("id-{name}");
    DesiredJob {
        status: status_in(&job_id, state),
        job_id,
        name: name.to_string(),
        version: 2,
        desired_state: desired,
        resources: Resources::default(),
        cluster: "local".to_string(),
        id_suffix: String::new(),
    }
}

/// An instance of `job` at its version, started 10 s ago; live ones heartbeat and
/// progress 1 s ago, ended ones ended 0.5 s ago.
fn inst(id: &str, job: &DesiredJob, state: InstanceState) -> ObservedInstance {
    let live = state.is_live();
    let running = state == InstanceState::Running;
    ObservedInstance {
        job_id: job.job_id.clone(),
        job_name: job.name.clone(),
        job_version: job.version,
        cluster: job.cluster.clone(),
        parallelism: job.resources.parallelism,
        memory_mb: job.resources.memory_mb,
        gpus: job.resources.gpus,
        pids: vec![4242],
        started_at_ms: NOW - 10_000,
        ended_at_ms: (!live).then_some(NOW - 500),
        heartbeat_at_ms: running.then_some(NOW - 1_000),
        progress_at_ms: running.then_some(NOW - 1_000),
        ..ObservedInstance::of(
            id,
            crate::model::InstanceOwner::Job {
                id: job.job_id.clone(),
                version: job.version,
            },
            state,
        )
    }
}

fn set(status: JobStatus, kind: &str, message: &str) -> Action {
    Action::SetStatus {
        status,
        event: Some((kind.to_string(), message.to_string())),
    }
}

fn stop(id: &str, reason: &str) -> Action {
    Action::Stop {
        instance_id: id.to_string(),
        reason: reason.to_string(),
    }
}

fn retire(id: &str) -> Action {
    Action::Retire {
        instance_id: id.to_string(),
    }
}

fn forget(id: &str) -> Action {
    Action::Forget {
        instance_id: id.to_string(),
    }
}

fn start(job: &DesiredJob, now: i64) -> Action {
    Action::Start {
        job_id: job.job_id.clone(),
        version: job.version,
        instance_id: format!("{}-v{}-{}", job.name, job.version, base36(now)),
    }
}

/// `st` moved to `state` with `reason` at `NOW` (`since_ms` only moves with the state).
fn moved(st: &JobStatus, state: JobState, reason: &str) -> JobStatus {
    let mut st = st.clone();
    if st.state != state {
        st.since_ms = NOW;
    }
    st.state = state;
    st.reason = reason.to_string();
    st
}

// ---------------------------------------------------------------- simulator

/// Applies `actions` to the in-memory world the way an executor would: `Start` adds a
/// starting instance at `now`, `Stop` marks stop-requested, `Retire` marks retired,
/// `Forget` removes the instance, `SetStatus` replaces the job's status.
fn apply(
    desired: &mut [DesiredJob],
    observed: &mut Vec<ObservedInstance>,
    actions: &[Action],
    now: i64,
) {
    for action in actions {
        match action {
            Action::Start {
                job_id,
                version,
                instance_id,
            } => {
                let job = desired
                    .iter()
                    .find(|j| &j.job_id == job_id)
                    .expect("Start names a desired job");
                let mut new = inst(instance_id, job, InstanceState::Starting);
                new.job_version = *version;
                new.started_at_ms = now;
                new.heartbeat_at_ms = None;
                new.progress_at_ms = None;
                new.pids = Vec::new();
                observed.push(new);
            }
            Action::Stop { instance_id, .. } => {
                let i = observed
                    .iter_mut()
                    .find(|i| &i.instance_id == instance_id)
                    .expect("Stop names an observed instance");
                i.stop_requested = true;
            }
            Action::Retire { instance_id } => {
                let i = observed
                    .iter_mut()
                    .find(|i| &i.instance_id == instance_id)
                    .expect("Retire names an observed instance");
                i.retired = true;
            }
            Action::Forget { instance_id } => {
                let before = observed.len();
                observed.retain(|i| &i.instance_id != instance_id);
                assert_eq!(
                    observed.len() + 1,
                    before,
                    "Forget names an observed instance"
                );
            }
            Action::SetStatus { status, .. } => {
                let j = desired
                    .iter_mut()
                    .find(|j| j.job_id == status.job_id)
                    .expect("SetStatus names a desired job");
                j.status = status.clone();
            }
        }
    }
}

/// Applies what `decide` returned and asserts that deciding again at the same time
/// returns nothing: the cycle reached a fixed point.
fn assert_fixed_point(
    desired: &[DesiredJob],
    observed: &[ObservedInstance],
    clusters: &[ClusterView],
    policy: &Policy,
    now: i64,
    actions: &[Action],
) {
    let mut desired = desired.to_vec();
    let mut observed = observed.to_vec();
    apply(&mut desired, &mut observed, actions, now);
    let again = decide(&desired, &observed, clusters, policy, now);
    assert_eq!(
        again,
        Vec::new(),
        "not idempotent after applying {actions:#?}"
    );
}

// ---------------------------------------------------------------- the table

/// What is observed of the job (`i1`, `i2` are its instances; `ghost-1` belongs to a
/// job that no longer exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Situation {
    None,
    Starting,
    Running,
    Finished,
    Failed,
    FailedUserError,
    Superseded,
    Crashed,
    StoppedWithoutRequest,
    StoppedWithRequest,
    OldVersionLive,
    OldVersionCrashed,
    DuplicateLive,
    BeingStopped,
    HungStartTimeout,
    HungHeartbeat,
    HungNoProgress,
    UnknownJobLive,
    UnknownJobEnded,
    AlreadyAccounted,
}

const SITUATIONS: [Situation; 20] = [
    Situation::None,
    Situation::Starting,
    Situation::Running,
    Situation::Finished,
    Situation::Failed,
    Situation::FailedUserError,
    Situation::Superseded,
    Situation::Crashed,
    Situation::StoppedWithoutRequest,
    Situation::StoppedWithRequest,
    Situation::OldVersionLive,
    Situation::OldVersionCrashed,
    Situation::DuplicateLive,
    Situation::BeingStopped,
    Situation::HungStartTimeout,
    Situation::HungHeartbeat,
    Situation::HungNoProgress,
    Situation::UnknownJobLive,
    Situation::UnknownJobEnded,
    Situation::AlreadyAccounted,
];

const STATES: [JobState; 7] = [
    JobState::Pending,
    JobState::Starting,
    JobState::Running,
    JobState::Restarting,
    JobState::Stopped,
    JobState::Finished,
    JobState::Failed,
];

/// The observed instances of `sit` (it may also adjust the job's status).
fn build(sit: Situation, job: &mut DesiredJob) -> Vec<ObservedInstance> {
    use InstanceState as I;
    let one = |state: I| vec![inst("i1", job, state)];
    let ghost = || {
        let mut g = job.clone();
        g.job_id = "id-ghost".to_string();
        g.name = "ghost".to_string();
        g
    };
    match sit {
        Situation::None => vec![],
        Situation::Starting => {
            let mut i = inst("i1", job, I::Starting);
            i.started_at_ms = NOW - 1_000;
            vec![i]
        }
        Situation::Running => one(I::Running),
        Situation::Finished => one(I::Finished),
        Situation::Failed => {
            let mut i = inst("i1", job, I::Failed);
            i.message = Some("boom".to_string());
            vec![i]
        }
        Situation::FailedUserError => {
            let mut i = inst("i1", job, I::Failed);
            i.message = Some("table t does not exist".to_string());
            i.user_error = true;
            vec![i]
        }
        Situation::Superseded => {
            let mut i = inst("i1", job, I::Failed);
            i.message = Some("superseded: checkpoint 7 was written by another instance".into());
            i.superseded = true;
            vec![i]
        }
        Situation::Crashed => {
            let mut i = inst("i1", job, I::Crashed);
            i.message = Some("killed by signal 9".to_string());
            vec![i]
        }
        Situation::StoppedWithoutRequest => one(I::Stopped),
        Situation::StoppedWithRequest => {
            let mut i = inst("i1", job, I::Stopped);
            i.stop_requested = true;
            vec![i]
        }
        Situation::OldVersionLive => {
            let mut i = inst("i1", job, I::Running);
            i.job_version = 1;
            vec![i]
        }
        Situation::OldVersionCrashed => {
            let mut i = inst("i1", job, I::Crashed);
            i.job_version = 1;
            vec![i]
        }
        Situation::DuplicateLive => {
            let mut later = inst("i2", job, I::Running);
            later.started_at_ms = NOW - 5_000;
            // Listed first: the order of the input must not matter.
            vec![later, inst("i1", job, I::Running)]
        }
        Situation::BeingStopped => {
            let mut i = inst("i1", job, I::Running);
            i.stop_requested = true;
            vec![i]
        }
        Situation::HungStartTimeout => {
            let mut i = inst("i1", job, I::Starting);
            i.started_at_ms = NOW - 31_000;
            vec![i]
        }
        Situation::HungHeartbeat => {
            let mut i = inst("i1", job, I::Running);
            i.heartbeat_at_ms = Some(NOW - 20_000);
            vec![i]
        }
        Situation::HungNoProgress => {
            let mut i = inst("i1", job, I::Running);
            i.input_waiting = true;
            i.progress_at_ms = Some(NOW - 61_000);
            vec![i]
        }
        Situation::UnknownJobLive => vec![inst("ghost-1", &ghost(), I::Running)],
        Situation::UnknownJobEnded => vec![inst("ghost-1", &ghost(), I::Crashed)],
        Situation::AlreadyAccounted => {
            job.status.last_accounted_instance = Some("i1".to_string());
            vec![inst("i1", job, I::Crashed)]
        }
    }
}

/// The exact actions `decide` must return for job `job` (desired `job.desired_state`,
/// status in `state`) observed as `sit`.
fn expected(sit: Situation, job: &DesiredJob) -> Vec<Action> {
    use DesiredState::{Running as WantRunning, Stopped as WantStopped};
    use Situation as S;
    let st = &job.status;
    let state = st.state;
    let terminal = matches!(state, JobState::Finished | JobState::Failed);

    // No live instance, desired running: start one unless the version is over.
    let start_new = |before: Vec<Action>| -> Vec<Action> {
        if terminal {
            return before;
        }
        let id = format!("job-v2-{NOW36}");
        let reason = format!("starting instance {id}");
        let mut status = moved(st, JobState::Starting, &reason);
        status.next_start_at_ms = None;
        let mut out = vec![set(status, "instance_started", &reason)];
        out.extend(before);
        out.push(start(job, NOW));
        out
    };
    // No live instance, desired stopped.
    let stopped = |before: Vec<Action>| -> Vec<Action> {
        let mut out = Vec::new();
        if state != JobState::Stopped {
            let mut status = moved(st, JobState::Stopped, "stopped by request");
            status.next_start_at_ms = None;
            out.push(set(status, "state", "stopped by request"));
        }
        out.extend(before);
        out
    };
    // The kept instance is healthy.
    let keep = |to: JobState, reason: &str, after: Vec<Action>| -> Vec<Action> {
        let mut out = Vec::new();
        if state != to {
            out.push(set(moved(st, to, reason), "state", reason));
        }
        out.extend(after);
        out
    };
    // A failure that restarting may fix: a backoff of ~1 s (first within the window).
    let restart = |what: &str, after: Vec<Action>| -> Vec<Action> {
        if terminal {
            return after;
        }
        let mut status = st.clone();
        status.restarts = 4;
        status.recent_failures = vec![NOW];
        status.last_accounted_instance = Some("i1".to_string());
        let delay = backoff_ms(&policy(), "id-job", 4, 1);
        assert!((800..1_200).contains(&delay), "first delay {delay}");
        status.next_start_at_ms = Some(NOW + delay);
        let reason = format!("{what}; restart 4 in {}", show_secs(delay));
        let mut out = vec![set(
            moved(&status, JobState::Restarting, &reason),
            "restart_scheduled",
            &reason,
        )];
        out.extend(after);
        out
    };

    match (sit, job.desired_state) {
        (S::None, WantRunning) => start_new(vec![]),
        (S::None, WantStopped) => stopped(vec![]),

        (S::Starting, WantRunning) => keep(JobState::Starting, "starting instance i1", vec![]),
        (S::Running, WantRunning) => keep(JobState::Running, "instance i1 running", vec![]),
        (S::Starting | S::Running, WantStopped) => vec![stop("i1", "job stopped")],

        (S::Finished, WantRunning) => {
            let reason = "instance i1 finished";
            vec![
                set(
                    moved(st, JobState::Finished, reason),
                    "instance_finished",
                    reason,
                ),
                retire("i1"),
            ]
        }
        (S::Failed, WantRunning) => restart("instance i1 failed (boom)", vec![retire("i1")]),
        (S::FailedUserError, WantRunning) => {
            if terminal {
                return vec![retire("i1")];
            }
            let reason = "instance i1 failed: table t does not exist; \
                          restarting cannot fix this — change the job";
            let mut status = moved(st, JobState::Failed, reason);
            status.restarts = 4;
            status.recent_failures = vec![NOW];
            status.last_accounted_instance = Some("i1".to_string());
            status.next_start_at_ms = None;
            vec![set(status, "instance_failed", reason), retire("i1")]
        }
        // Fenced by another instance of the job: failed, never restarted (a restart
        // would take the job back from the instance that owns it now).
        (S::Superseded, WantRunning) => {
            if terminal {
                return vec![retire("i1")];
            }
            let reason = "instance i1 failed (superseded: checkpoint 7 was written by another \
                          instance); another instance of this job, started by another master \
                          over the same checkpoint store, owns it now, so this master does not \
                          restart it (if that is wrong, stop the other master's job, then \
                          restart this one)";
            let mut status = moved(st, JobState::Failed, reason);
            status.last_accounted_instance = Some("i1".to_string());
            status.next_start_at_ms = None;
            vec![set(status, "instance_superseded", reason), retire("i1")]
        }
        (S::Crashed, WantRunning) => restart(
            "instance i1 crashed (killed by signal 9)",
            vec![retire("i1")],
        ),
        (S::StoppedWithoutRequest, WantRunning) => {
            restart("instance i1 stopped without a request", vec![retire("i1")])
        }
        // Ends that were asked for, or that concern an old version, or that were
        // already counted: retired, not counted, and the job starts again.
        (S::StoppedWithRequest | S::OldVersionCrashed | S::AlreadyAccounted, WantRunning) => {
            start_new(vec![retire("i1")])
        }
        // With the job stopped, no end is a failure.
        (
            S::Finished
            | S::Failed
            | S::FailedUserError
            | S::Superseded
            | S::Crashed
            | S::StoppedWithoutRequest
            | S::StoppedWithRequest
            | S::OldVersionCrashed
            | S::AlreadyAccounted,
            WantStopped,
        ) => stopped(vec![retire("i1")]),

        (S::OldVersionLive, WantRunning) => vec![stop("i1", "spec version 1 → 2")],
        (S::OldVersionLive, WantStopped) => vec![stop("i1", "job stopped")],

        (S::DuplicateLive, WantRunning) => keep(
            JobState::Running,
            "instance i1 running",
            vec![stop("i2", "duplicate instance of job job")],
        ),
        (S::DuplicateLive, WantStopped) => {
            vec![stop("i1", "job stopped"), stop("i2", "job stopped")]
        }

        // Being stopped already: nothing to do but wait for its end.
        (S::BeingStopped, _) => vec![],

        (S::HungStartTimeout, WantRunning) => restart(
            "instance i1 hung (no report within 30 s)",
            vec![stop("i1", "hung: no report within 30 s")],
        ),
        (S::HungHeartbeat, WantRunning) => restart(
            "instance i1 hung (no heartbeat for 20 s)",
            vec![stop("i1", "hung: no heartbeat for 20 s")],
        ),
        (S::HungNoProgress, WantRunning) => restart(
            "instance i1 hung (no progress for 61 s while input is waiting)",
            vec![stop(
                "i1",
                "hung: no progress for 61 s while input is waiting",
            )],
        ),
        // Health is not checked for an instance that is stopped anyway.
        (S::HungStartTimeout | S::HungHeartbeat | S::HungNoProgress, WantStopped) => {
            vec![stop("i1", "job stopped")]
        }

        (S::UnknownJobLive, want) => {
            let mut out = if want == WantRunning {
                start_new(vec![])
            } else {
                stopped(vec![])
            };
            out.push(stop("ghost-1", "job ghost no longer exists"));
            out
        }
        (S::UnknownJobEnded, want) => {
            let mut out = if want == WantRunning {
                start_new(vec![])
            } else {
                stopped(vec![])
            };
            out.push(forget("ghost-1"));
            out
        }
    }
}

/// R6/R7: every combination of desired state × status state × observed situation
/// yields exactly the expected actions, and applying them reaches a fixed point.
#[test]
fn table_desired_state_x_job_state_x_situation_gives_exact_actions_and_is_idempotent() {
    let mut cases = 0;
    for desired in [DesiredState::Running, DesiredState::Stopped] {
        for state in STATES {
            for sit in SITUATIONS {
                let mut j = job("job", desired, state);
                let observed = build(sit, &mut j);
                let want = expected(sit, &j);
                let got = decide(
                    std::slice::from_ref(&j),
                    &observed,
                    &clusters(),
                    &policy(),
                    NOW,
                );
                assert_eq!(
                    got, want,
                    "desired {desired:?}, status {state:?}, situation {sit:?}"
                );
                assert_fixed_point(&[j], &observed, &clusters(), &policy(), NOW, &got);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 2 * 7 * 20);
}

/// The table's status fixtures are what `decide` writes: a world that already
/// matches them is stable.
#[test]
fn stable_world_yields_no_actions() {
    let running = job("a", DesiredState::Running, JobState::Running);
    let stopped = job("b", DesiredState::Stopped, JobState::Stopped);
    let observed = vec![inst("i1", &running, InstanceState::Running)];
    let got = decide(&[running, stopped], &observed, &clusters(), &policy(), NOW);
    assert_eq!(got, Vec::new());
}

// ---------------------------------------------------------------- versions

/// A new spec version starts from a fresh status that keeps the restart count, and
/// its event says so, joined with what else happened in the cycle.
#[test]
fn new_version_starts_fresh_status_keeping_restarts_and_joins_events() {
    let mut j = job("job", DesiredState::Running, JobState::Restarting);
    j.status.version = 1;
    j.status.recent_failures = vec![NOW - 1_000, NOW - 500];
    j.status.next_start_at_ms = Some(NOW + 60_000);
    j.status.last_accounted_instance = Some("i0".to_string());
    j.version = 2;
    let got = decide(std::slice::from_ref(&j), &[], &clusters(), &policy(), NOW);

    let id = format!("job-v2-{NOW36}");
    let mut status = JobStatus::new("id-job", 2, NOW);
    status.restarts = 3;
    status.state = JobState::Starting;
    status.reason = format!("starting instance {id}");
    assert_eq!(
        got,
        vec![
            Action::SetStatus {
                status,
                event: Some((
                    "instance_started".to_string(),
                    format!("spec version 2; starting instance {id}"),
                )),
            },
            start(&j, NOW),
        ]
    );
}

/// An old version's instance is stopped first; the new version starts only in a later
/// cycle, once no instance of the job is live — and its stop is no failure.
#[test]
fn version_change_stops_old_instance_then_starts_new_one_next_cycle() {
    let mut j = job("job", DesiredState::Running, JobState::Running);
    let mut observed = vec![inst("i1", &j, InstanceState::Running)];
    j.version = 3;
    let mut desired = vec![j];

    let got = decide(&desired, &observed, &clusters(), &policy(), NOW);
    let mut fresh = JobStatus::new("id-job", 3, NOW);
    fresh.restarts = 3;
    assert_eq!(
        got,
        vec![
            set(fresh.clone(), "version", "spec version 3"),
            stop("i1", "spec version 2 → 3"),
        ]
    );
    apply(&mut desired, &mut observed, &got, NOW);
    assert_eq!(
        decide(&desired, &observed, &clusters(), &policy(), NOW),
        vec![]
    );

    // The old instance exits as asked.
    observed[0].state = InstanceState::Stopped;
    let later = NOW + 2_000;
    let got = decide(&desired, &observed, &clusters(), &policy(), later);
    let id = format!("job-v3-{}", base36(later));
    let mut status = fresh;
    status.state = JobState::Starting;
    status.since_ms = later;
    status.reason = format!("starting instance {id}");
    assert_eq!(
        got,
        vec![
            set(
                status,
                "instance_started",
                &format!("starting instance {id}")
            ),
            retire("i1"),
            start(&desired[0], later),
        ]
    );
}

// ---------------------------------------------------------------- backoff (R6)

/// Crashes `job` again and again, restarting it when its backoff elapses, and returns
/// the restart delays seen and the final status.
fn crash_loop(policy: &Policy, crashes: usize) -> (Vec<i64>, DesiredJob, Vec<ObservedInstance>) {
    let mut desired = vec![job("job", DesiredState::Running, JobState::Pending)];
    desired[0].status.restarts = 0;
    let mut observed: Vec<ObservedInstance> = Vec::new();
    let cl = clusters();
    let mut now = NOW;
    let mut delays = Vec::new();
    for _ in 0..crashes {
        // Start (the backoff has elapsed).
        let got = decide(&desired, &observed, &cl, policy, now);
        assert!(
            got.iter().any(|a| matches!(a, Action::Start { .. })),
            "expected a start at {now}: {got:#?}"
        );
        apply(&mut desired, &mut observed, &got, now);
        // It runs for a second, then crashes.
        now += 1_000;
        let live = observed
            .iter_mut()
            .find(|i| i.state.is_live())
            .expect("a live instance");
        live.state = InstanceState::Crashed;
        live.message = Some("segfault".to_string());
        let got = decide(&desired, &observed, &cl, policy, now);
        apply(&mut desired, &mut observed, &got, now);
        if desired[0].status.state == JobState::Failed {
            break;
        }
        assert_eq!(desired[0].status.state, JobState::Restarting);
        let at = desired[0].status.next_start_at_ms.expect("a backoff");
        delays.push(at - now);
        // Nothing happens before the backoff elapses.
        assert_eq!(decide(&desired, &observed, &cl, policy, at - 1), vec![]);
        now = at;
    }
    (delays, desired.remove(0), observed)
}

/// R6: consecutive delays double (within ±20 % jitter) and strictly grow; the failure
/// after `max_restarts` within the window marks the job failed and nothing restarts.
#[test]
fn backoff_grows_with_jitter_and_fails_after_max_restarts_within_window() {
    let p = policy();
    let (delays, j, observed) = crash_loop(&p, 10);
    assert_eq!(delays.len(), 5, "{delays:?}");
    for (k, d) in delays.iter().enumerate() {
        let base = 1_000 * (1 << k);
        assert!(
            (base * 8 / 10..base * 12 / 10).contains(d),
            "delay {k}: {d} vs base {base}"
        );
    }
    assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
    assert_eq!(j.status.state, JobState::Failed);
    assert_eq!(j.status.restarts, 6);
    assert_eq!(j.status.recent_failures.len(), 6);
    assert_eq!(j.status.next_start_at_ms, None);
    let last = observed.last().expect("instances");
    assert_eq!(
        j.status.reason,
        format!(
            "6 failures within 600 s: last: instance {} crashed (segfault)",
            last.instance_id
        )
    );
    // Failed is final for this version: no start, even much later.
    assert_eq!(
        decide(&[j], &observed, &clusters(), &p, NOW + 3_600_000),
        vec![]
    );
}

/// R6: the delay is capped by `backoff_max_ms`, jitter included.
#[test]
fn backoff_is_capped_including_jitter() {
    let p = Policy {
        max_restarts: 100,
        ..policy()
    };
    for restarts in 0..200 {
        for failures in 1..40 {
            let d = backoff_ms(&p, "id-job", restarts, failures);
            assert!(d <= p.backoff_max_ms, "{d}");
            assert!(d >= 800, "{d}");
        }
    }
    assert!(backoff_ms(&p, "id-job", 7, 30) >= p.backoff_max_ms * 8 / 10);
    // Absurd exponents do not overflow.
    assert!(backoff_ms(&p, "id-job", 7, usize::MAX) <= p.backoff_max_ms);
}

/// R6: the jitter is deterministic, within [0.8, 1.2), and varies with the restart
/// count and the job.
#[test]
fn jitter_is_deterministic_in_range_and_varies() {
    let mut seen = BTreeSet::new();
    for restarts in 0..100 {
        let j = jitter_permille("id-job", restarts);
        assert_eq!(j, jitter_permille("id-job", restarts));
        assert!((800..1_200).contains(&j), "{j}");
        seen.insert(j);
    }
    assert!(seen.len() > 50, "jitter barely varies: {seen:?}");
    assert!((0..20).any(|r| jitter_permille("id-a", r) != jitter_permille("id-b", r)));
}

/// R6: with multiplier 2, consecutive uncapped delays strictly grow whatever the
/// jitter does.
#[test]
fn backoff_strictly_grows_until_capped_for_any_job() {
    let p = policy();
    for n in 0..200 {
        let job_id = format!("id-{n}");
        let delays: Vec<i64> = (1..=6)
            .map(|k| backoff_ms(&p, &job_id, n + k as u64, k))
            .collect();
        assert!(
            delays.windows(2).all(|w| w[0] < w[1]),
            "{job_id}: {delays:?}"
        );
    }
}

/// R6: failures older than the window are forgotten when the next one is counted, so
/// the backoff starts over and the job is not failed.
#[test]
fn failures_outside_the_window_are_forgotten() {
    let mut j = job("job", DesiredState::Running, JobState::Running);
    j.status.recent_failures = vec![
        NOW - 700_000,
        NOW - 650_000,
        NOW - 620_000,
        NOW - 610_000,
        NOW - 601_000,
        NOW - 2_000,
    ];
    let mut crashed = inst("i1", &j, InstanceState::Crashed);
    crashed.message = Some("oom".to_string());
    let got = decide(
        std::slice::from_ref(&j),
        &[crashed],
        &clusters(),
        &policy(),
        NOW,
    );
    let Action::SetStatus { status, event } = &got[0] else {
        panic!("{got:#?}")
    };
    assert_eq!(status.state, JobState::Restarting);
    assert_eq!(status.recent_failures, vec![NOW - 2_000, NOW]);
    let delay = status.next_start_at_ms.expect("backoff") - NOW;
    assert!(
        (1_600..2_400).contains(&delay),
        "second failure's delay {delay}"
    );
    assert_eq!(
        event.as_ref().map(|(k, _)| k.as_str()),
        Some("restart_scheduled")
    );
    assert_eq!(got[1..], [retire("i1")]);

    // A failure exactly at the window's edge still counts.
    j.status.recent_failures = vec![NOW - 600_000; 5];
    let crashed = inst("i1", &j, InstanceState::Crashed);
    let got = decide(&[j], &[crashed], &clusters(), &policy(), NOW);
    let Action::SetStatus { status, event } = &got[0] else {
        panic!("{got:#?}")
    };
    assert_eq!(status.state, JobState::Failed);
    assert_eq!(
        status.reason,
        "6 failures within 600 s: last: instance i1 crashed"
    );
    assert_eq!(
        event.as_ref().map(|(k, _)| k.as_str()),
        Some("instance_failed")
    );
}

/// R6: failures spread wider than the window never fail the job.
#[test]
fn slow_failures_never_exhaust_the_restart_budget() {
    let p = Policy {
        max_restarts: 2,
        restart_window_ms: 10_000,
        ..policy()
    };
    let mut desired = vec![job("job", DesiredState::Running, JobState::Pending)];
    let mut observed = Vec::new();
    let mut now = NOW;
    for round in 0..10 {
        let got = decide(&desired, &observed, &clusters(), &p, now);
        apply(&mut desired, &mut observed, &got, now);
        now += 20_000;
        let live = observed
            .iter_mut()
            .find(|i| i.state.is_live())
            .unwrap_or_else(|| panic!("round {round}: no live instance"));
        live.state = InstanceState::Failed;
        let got = decide(&desired, &observed, &clusters(), &p, now);
        apply(&mut desired, &mut observed, &got, now);
        assert_eq!(desired[0].status.state, JobState::Restarting);
        assert_eq!(desired[0].status.recent_failures, vec![now]);
        now = desired[0].status.next_start_at_ms.expect("backoff");
    }
    assert_eq!(desired[0].status.restarts, 13);
}

/// A backoff in the future keeps the job restarting without any action.
#[test]
fn pending_backoff_waits_without_actions() {
    let mut j = job("job", DesiredState::Running, JobState::Restarting);
    j.status.next_start_at_ms = Some(NOW + 1);
    assert_eq!(decide(&[j], &[], &clusters(), &policy(), NOW), vec![]);
}

// ---------------------------------------------------------------- health (R7)

/// A hung instance already accounted (its stop got lost) is stopped again but not
/// counted twice.
#[test]
fn hung_instance_already_accounted_is_stopped_not_counted_again() {
    let mut j = job("job", DesiredState::Running, JobState::Restarting);
    j.status.last_accounted_instance = Some("i1".to_string());
    j.status.next_start_at_ms = Some(NOW + 5_000);
    let mut i = inst("i1", &j, InstanceState::Running);
    i.heartbeat_at_ms = Some(NOW - 16_000);
    let got = decide(&[j], &[i], &clusters(), &policy(), NOW);
    assert_eq!(got, vec![stop("i1", "hung: no heartbeat for 16 s")]);
}

/// The end of an instance stopped because it hung is not a second failure.
#[test]
fn end_of_hung_instance_is_counted_once() {
    let mut desired = vec![job("job", DesiredState::Running, JobState::Running)];
    let mut i = inst("i1", &desired[0], InstanceState::Running);
    i.heartbeat_at_ms = Some(NOW - 30_000);
    let mut observed = vec![i];
    let got = decide(&desired, &observed, &clusters(), &policy(), NOW);
    apply(&mut desired, &mut observed, &got, NOW);
    assert_eq!(desired[0].status.restarts, 4);
    assert_eq!(desired[0].status.state, JobState::Restarting);
    // It ends (killed) without having been marked stop-requested by the driver.
    observed[0].stop_requested = false;
    observed[0].state = InstanceState::Crashed;
    let got = decide(&desired, &observed, &clusters(), &policy(), NOW + 100);
    assert_eq!(got, vec![retire("i1")]);
}

/// Boundaries: exactly at a timeout is not hung; one millisecond more is. Progress is
/// measured from the start when the instance never progressed.
#[test]
fn health_timeouts_are_strict_and_progress_defaults_to_start() {
    let p = policy();
    let j = job("job", DesiredState::Running, JobState::Running);
    let check = |i: &ObservedInstance| {
        decide(
            std::slice::from_ref(&j),
            std::slice::from_ref(i),
            &clusters(),
            &p,
            NOW,
        )
    };

    let mut i = inst("i1", &j, InstanceState::Running);
    i.heartbeat_at_ms = Some(NOW - p.heartbeat_timeout_ms);
    assert_eq!(check(&i), vec![]);
    i.heartbeat_at_ms = Some(NOW - p.heartbeat_timeout_ms - 1);
    assert!(check(&i).contains(&stop("i1", "hung: no heartbeat for 15.0 s")));

    let mut i = inst("i1", &j, InstanceState::Running);
    i.heartbeat_at_ms = None;
    i.progress_at_ms = None;
    i.input_waiting = true;
    i.started_at_ms = NOW - p.progress_timeout_ms;
    assert_eq!(check(&i), vec![]);
    i.started_at_ms = NOW - p.progress_timeout_ms - 1_000;
    assert!(check(&i).contains(&stop(
        "i1",
        "hung: no progress for 61 s while input is waiting"
    )));
    // No input waiting: idle is fine.
    i.input_waiting = false;
    assert_eq!(check(&i), vec![]);
    // Idle for hours, heartbeating and stepping: still fine.
    let mut i = inst("i1", &j, InstanceState::Running);
    i.started_at_ms = NOW - 6 * 3_600_000;
    i.progress_at_ms = Some(NOW - 6 * 3_600_000 + 1_000);
    i.heartbeat_at_ms = Some(NOW - 500);
    i.stepped_at_ms = Some(NOW - 500);
    i.input_waiting = false;
    assert_eq!(check(&i), vec![]);
    // A worker thread stuck inside an operator: the heartbeat goes on, the loop does not.
    i.stepped_at_ms = Some(NOW - p.stall_timeout_ms);
    assert_eq!(check(&i), vec![]);
    i.stepped_at_ms = Some(NOW - p.stall_timeout_ms - 1_000);
    assert!(check(&i).contains(&stop(
        "i1",
        "hung: a worker thread has not stepped its dataflow for 301 s"
    )));

    // A running instance without any heartbeat is not judged by heartbeats.
    let mut i = inst("i1", &j, InstanceState::Running);
    i.heartbeat_at_ms = None;
    i.started_at_ms = 0;
    assert_eq!(check(&i), vec![]);
}

// ---------------------------------------------------------------- capacity

/// Jobs share a cluster's capacity in name order; live instances of any job (even
/// ones being stopped, even of unknown jobs) count, and the reason tells what is
/// left after all the cycle's starts.
#[test]
fn capacity_waiting_counts_live_instances_and_earlier_starts() {
    let cl = vec![cluster("local", 4, 8_192, 1)];
    let mut a = job("a", DesiredState::Running, JobState::Pending);
    a.resources.parallelism = 2;
    let mut b = job("b", DesiredState::Running, JobState::Restarting);
    b.resources.parallelism = 2;
    let mut c = job("c", DesiredState::Running, JobState::Pending);
    c.resources.gpus = 1;
    // An unknown job's instance being stopped holds 1 worker, 1024 MiB.
    let mut ghost = job("ghost", DesiredState::Running, JobState::Running);
    ghost.job_id = "id-ghost".to_string();
    let mut g = inst("ghost-1", &ghost, InstanceState::Running);
    g.stop_requested = true;
    // Listed out of order: processing is by name.
    let desired = vec![c.clone(), b.clone(), a.clone()];
    let got = decide(&desired, std::slice::from_ref(&g), &cl, &policy(), NOW);

    let started = |j: &DesiredJob| {
        let reason = format!("starting instance {}-v2-{NOW36}", j.name);
        vec![
            set(
                moved(&j.status, JobState::Starting, &reason),
                "instance_started",
                &reason,
            ),
            start(j, NOW),
        ]
    };
    // a takes 2 of the 3 free workers; b (2) does not fit; c (1 worker, 1 GPU) does.
    let waiting = "waiting for capacity on cluster local \
                   (needs 2 workers, 1024 MiB, 0 GPUs; free 0 workers, 5120 MiB, 0 GPUs)";
    let mut want = started(&a);
    want.push(set(
        moved(&b.status, JobState::Pending, waiting),
        "state",
        waiting,
    ));
    want.extend(started(&c));
    assert_eq!(got, want);
    assert_fixed_point(
        &desired,
        std::slice::from_ref(&g),
        &cl,
        &policy(),
        NOW,
        &got,
    );

    // Already pending: a new reason is written without an event.
    let mut b2 = b.clone();
    b2.status.state = JobState::Pending;
    let got = decide(&[a.clone(), b2.clone()], &[g], &cl, &policy(), NOW);
    let reason = "waiting for capacity on cluster local \
                  (needs 2 workers, 1024 MiB, 0 GPUs; free 1 workers, 6144 MiB, 1 GPUs)";
    let mut status = b2.status.clone();
    status.reason = reason.to_string();
    assert_eq!(
        got[2..],
        [Action::SetStatus {
            status,
            event: None
        }]
    );
}

/// Memory and GPUs are checked like workers; a missing cluster keeps the job pending.
#[test]
fn capacity_checks_memory_gpus_and_cluster_existence() {
    let cl = vec![cluster("local", 64, 2_048, 0)];
    let mut big = job("big", DesiredState::Running, JobState::Pending);
    big.resources.memory_mb = 4_096;
    let mut gpu = job("gpu", DesiredState::Running, JobState::Pending);
    gpu.resources.gpus = 1;
    let mut lost = job("lost", DesiredState::Running, JobState::Restarting);
    lost.cluster = "nowhere".to_string();
    let got = decide(
        &[big.clone(), gpu.clone(), lost.clone()],
        &[],
        &cl,
        &policy(),
        NOW,
    );
    let big_reason = "waiting for capacity on cluster local \
                      (needs 1 workers, 4096 MiB, 0 GPUs; free 64 workers, 2048 MiB, 0 GPUs)";
    let gpu_reason = "waiting for capacity on cluster local \
                      (needs 1 workers, 1024 MiB, 1 GPUs; free 64 workers, 2048 MiB, 0 GPUs)";
    assert_eq!(
        got,
        vec![
            Action::SetStatus {
                status: moved(&big.status, JobState::Pending, big_reason),
                event: None,
            },
            Action::SetStatus {
                status: moved(&gpu.status, JobState::Pending, gpu_reason),
                event: None,
            },
            set(
                moved(
                    &lost.status,
                    JobState::Pending,
                    "cluster nowhere does not exist"
                ),
                "state",
                "cluster nowhere does not exist",
            ),
        ]
    );
}

/// Instances on other clusters do not use this cluster's capacity; ended ones use none.
#[test]
fn capacity_ignores_other_clusters_and_ended_instances() {
    let cl = vec![cluster("local", 1, 1_024, 0), cluster("other", 1, 1_024, 0)];
    let j = job("job", DesiredState::Running, JobState::Pending);
    let mut other = job("other", DesiredState::Running, JobState::Running);
    other.cluster = "other".to_string();
    let elsewhere = inst("o1", &other, InstanceState::Running);
    let mut ended = inst("i0", &j, InstanceState::Finished);
    ended.retired = true;
    let got = decide(
        &[j.clone(), other],
        &[elsewhere, ended],
        &cl,
        &policy(),
        NOW,
    );
    assert!(got.contains(&start(&j, NOW)), "{got:#?}");
}

// ---------------------------------------------------------------- misc

/// Output order: jobs by name whatever the input order, instances by start time, and
/// unknown jobs' instances last.
#[test]
fn output_order_is_by_job_name_then_instance_start() {
    let a = job("a", DesiredState::Stopped, JobState::Running);
    let b = job("b", DesiredState::Stopped, JobState::Running);
    let mut a1 = inst("a1", &a, InstanceState::Running);
    a1.started_at_ms = NOW - 1;
    let mut a2 = inst("a2", &a, InstanceState::Running);
    a2.started_at_ms = NOW - 2;
    let b1 = inst("b1", &b, InstanceState::Running);
    let mut ghost = job("zz", DesiredState::Running, JobState::Running);
    ghost.job_id = "id-gone".to_string();
    let g = inst("g1", &ghost, InstanceState::Running);
    let observed = vec![g, b1, a1, a2];
    let got = decide(&[b, a], &observed, &clusters(), &policy(), NOW);
    assert_eq!(
        got,
        vec![
            stop("a2", "job stopped"),
            stop("a1", "job stopped"),
            stop("b1", "job stopped"),
            stop("g1", "job zz no longer exists"),
        ]
    );
}

/// A terminal version ignores a late failure of another instance in the same cycle as
/// its finish: a bounded job that finished is not re-run.
#[test]
fn late_failure_after_finish_is_not_counted() {
    let j = job("job", DesiredState::Running, JobState::Running);
    let mut done = inst("i1", &j, InstanceState::Finished);
    done.started_at_ms = NOW - 20_000;
    let dup = inst("i2", &j, InstanceState::Crashed);
    let got = decide(
        std::slice::from_ref(&j),
        &[dup, done],
        &clusters(),
        &policy(),
        NOW,
    );
    let reason = "instance i1 finished";
    assert_eq!(
        got,
        vec![
            set(
                moved(&j.status, JobState::Finished, reason),
                "instance_finished",
                reason
            ),
            retire("i1"),
            retire("i2"),
        ]
    );
}

/// Issue 12: an instance that looked hung (its failure counted, a stop requested) but
/// reports `finished` finishes the job: a finished bounded job is not run again.
#[test]
fn finished_report_wins_over_a_stop_request_and_a_counted_hang() {
    let mut j = job("job", DesiredState::Running, JobState::Restarting);
    j.status.last_accounted_instance = Some("i1".to_string());
    let mut done = inst("i1", &j, InstanceState::Finished);
    done.stop_requested = true;
    let got = decide(
        std::slice::from_ref(&j),
        &[done.clone()],
        &clusters(),
        &policy(),
        NOW,
    );
    let reason = "instance i1 finished";
    assert_eq!(
        got,
        vec![
            set(
                moved(&j.status, JobState::Finished, reason),
                "instance_finished",
                reason
            ),
            retire("i1"),
        ]
    );
    assert_fixed_point(&[j], &[done], &clusters(), &policy(), NOW, &got);
}

/// Issue 12: the ended instances of a deleted job are forgotten (their directories
/// and logs deleted), retired or not; live ones are stopped first.
#[test]
fn a_deleted_jobs_instances_are_stopped_then_forgotten() {
    let gone = job("gone", DesiredState::Running, JobState::Running);
    let live = inst("g1", &gone, InstanceState::Running);
    let mut ended = inst("g0", &gone, InstanceState::Finished);
    ended.retired = true;
    let mut stopping = inst("g2", &gone, InstanceState::Running);
    stopping.stop_requested = true;
    let got = decide(&[], &[live, ended, stopping], &clusters(), &policy(), NOW);
    assert_eq!(
        got,
        vec![forget("g0"), stop("g1", "job gone no longer exists")]
    );
}

/// Issue 12: a start that fails counts like a crash: the same growing backoff, and the
/// job ends `Failed` with the reason after `max_restarts` failures within the window.
#[test]
fn start_failures_back_off_and_end_failed_like_crashes() {
    let p = policy();
    let mut desired = vec![job("job", DesiredState::Running, JobState::Pending)];
    desired[0].status.restarts = 0;
    let error = "cannot create /data/instances/x: Not a directory (os error 20)";
    let mut now = NOW;
    let mut delays = Vec::new();
    for failure in 1..=p.max_restarts as usize + 1 {
        let got = decide(&desired, &[], &clusters(), &p, now);
        let Some(Action::Start { instance_id, .. }) = got.last().cloned() else {
            panic!("failure {failure}: no start at {now}: {got:#?}");
        };
        apply(&mut desired, &mut Vec::new(), &got, now);
        let (status, event) = start_failed(&desired[0].status, &instance_id, error, &p, now);
        assert_eq!(status.restarts, failure as u64);
        assert_eq!(
            status.last_accounted_instance.as_deref(),
            Some(instance_id.as_str())
        );
        let (kind, message) = event.expect("an event");
        assert!(
            message.contains(&instance_id) && message.contains(error),
            "{message}"
        );
        desired[0].status = status;
        let st = &desired[0].status;
        if failure <= p.max_restarts as usize {
            assert_eq!(st.state, JobState::Restarting, "{st:#?}");
            assert_eq!(kind, "restart_scheduled");
            let at = st.next_start_at_ms.expect("a backoff");
            delays.push(at - now);
            // Nothing starts before the backoff has elapsed.
            assert_eq!(decide(&desired, &[], &clusters(), &p, at - 1), Vec::new());
            now = at;
        } else {
            assert_eq!(st.state, JobState::Failed, "{st:#?}");
            assert_eq!(kind, "instance_failed");
            assert!(
                st.reason
                    .starts_with("6 failures within 600 s: last: instance"),
                "{}",
                st.reason
            );
            assert!(st.reason.contains(error), "{}", st.reason);
        }
    }
    assert!(delays.windows(2).all(|w| w[1] > w[0]), "{delays:?}");
    // Failed: no more starts, ever.
    assert_eq!(
        decide(&desired, &[], &clusters(), &p, now + 3_600_000),
        Vec::new()
    );
}

#[test]
fn base36_and_seconds_formatting() {
    assert_eq!(base36(0), "0");
    assert_eq!(base36(35), "z");
    assert_eq!(base36(36), "10");
    assert_eq!(base36(NOW), NOW36);
    assert_eq!(base36(-36), "-10");
    assert_eq!(base36(i64::MIN), "-1y2p0ij32e8e8");
    assert_eq!(show_secs(30_000), "30 s");
    assert_eq!(show_secs(1_900), "1.9 s");
}

// ---------------------------------------------------------------- properties

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

fn job_state() -> impl Strategy<Value = JobState> {
    prop::sample::select(STATES.to_vec())
}

fn instance_state() -> impl Strategy<Value = InstanceState> {
    prop::sample::select(vec![
        InstanceState::Starting,
        InstanceState::Running,
        InstanceState::Finished,
        InstanceState::Failed,
        InstanceState::Crashed,
        InstanceState::Stopped,
    ])
}

fn desired_job(index: usize) -> impl Strategy<Value = DesiredJob> {
    (
        (
            prop::sample::select(vec![2u64, 2, 3]),
            prop::sample::select(vec![1u64, 2, 2, 2, 3]),
            any::<bool>(),
            job_state(),
            0u64..5,
        ),
        (
            prop::collection::vec(0i64..900_000, 0..7),
            prop::option::of(-5_000i64..5_000),
            prop::option::of(0usize..8),
            (1u32..4, 64u64..4_096, 0u32..2),
            prop::sample::select(vec!["local", "big", "nowhere"]),
        ),
    )
        .prop_map(
            move |(
                (version, status_version, running, state, restarts),
                (mut ages, next, accounted, (parallelism, memory_mb, gpus), cluster),
            )| {
                let name = NAMES[index];
                let mut j = job(
                    name,
                    if running {
                        DesiredState::Running
                    } else {
                        DesiredState::Stopped
                    },
                    state,
                );
                j.version = version;
                j.status.version = status_version;
                j.status.restarts = restarts;
                ages.sort_unstable_by(|a, b| b.cmp(a));
                j.status.recent_failures = ages.into_iter().map(|a| NOW - a).collect();
                j.status.next_start_at_ms = next.map(|d| NOW + d);
                j.status.last_accounted_instance = accounted.map(|n| format!("i{n}"));
                j.resources = Resources {
                    parallelism,
                    memory_mb,
                    gpus,
                    processes: 1,
                };
                j.cluster = cluster.to_string();
                j
            },
        )
}

/// An instance `i{index}` of job `NAMES[job]` (indexes past the jobs are unknown jobs).
fn observed_instance(index: usize) -> impl Strategy<Value = ObservedInstance> {
    (
        (
            0usize..5,
            // Mostly the jobs' usual version 2, sometimes older or newer.
            prop::sample::select(vec![1u64, 2, 2, 2, 3]),
            instance_state(),
            (
                any::<bool>(),
                prop::bool::weighted(0.25),
                prop::bool::weighted(0.25),
                any::<bool>(),
            ),
        ),
        (
            0i64..120_000,
            prop::option::of(0i64..40_000),
            prop::option::of(0i64..120_000),
            prop::sample::select(vec!["local", "big"]),
            (1u32..4, 64u64..4_096, 0u32..2),
        ),
    )
        .prop_map(
            move |(
                (job_index, version, state, (user_error, stop_requested, retired, waiting)),
                (age, beat, progress, cluster, (parallelism, memory_mb, gpus)),
            )| {
                let name = NAMES.get(job_index).copied().unwrap_or("ghost");
                let owner = job(name, DesiredState::Running, JobState::Running);
                let mut i = inst(&format!("i{index}"), &owner, state);
                i.job_version = version;
                i.message = user_error.then(|| "bad".to_string());
                i.user_error = user_error;
                i.stop_requested = stop_requested;
                i.retired = retired;
                i.input_waiting = waiting;
                i.started_at_ms = NOW - age;
                i.heartbeat_at_ms = beat.map(|b| NOW - b);
                i.progress_at_ms = progress.map(|p| NOW - p);
                i.cluster = cluster.to_string();
                i.parallelism = parallelism;
                i.memory_mb = memory_mb;
                i.gpus = gpus;
                i
            },
        )
}

#[derive(Clone, Debug)]
struct World {
    desired: Vec<DesiredJob>,
    observed: Vec<ObservedInstance>,
    clusters: Vec<ClusterView>,
}

fn world() -> impl Strategy<Value = World> {
    (0usize..=4, 0usize..=8, (0u64..10, 0u64..10_000, 0u64..3)).prop_flat_map(
        |(jobs, instances, (workers, memory_mb, gpus))| {
            let desired: Vec<_> = (0..jobs).map(desired_job).collect();
            let observed: Vec<_> = (0..instances).map(observed_instance).collect();
            (desired, observed).prop_map(move |(desired, observed)| World {
                desired,
                observed,
                clusters: vec![
                    cluster("local", workers, memory_mb, gpus),
                    cluster("big", 1_000, 1_000_000, 100),
                ],
            })
        },
    )
}

/// The live usage of each cluster.
fn live_usage(observed: &[ObservedInstance]) -> BTreeMap<String, (u64, u64, u64)> {
    let mut used: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for i in observed.iter().filter(|i| i.state.is_live()) {
        let u = used.entry(i.cluster.clone()).or_default();
        u.0 += u64::from(i.parallelism);
        u.1 += i.memory_mb;
        u.2 += u64::from(i.gpus);
    }
    used
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// R7 invariants of one cycle on a random world: at most one start per job and
    /// none while it has a live instance; every stop names a live instance not yet
    /// stopping, once; every retire an ended unretired one; one status per job; starts
    /// fit their cluster; deterministic whatever the input order; a fixed point once
    /// applied.
    #[test]
    fn prop_decide_invariants_on_random_worlds(w in world()) {
        let p = policy();
        let got = decide(&w.desired, &w.observed, &w.clusters, &p, NOW);

        let mut rev_desired = w.desired.clone();
        rev_desired.reverse();
        let mut rev_observed = w.observed.clone();
        rev_observed.reverse();
        prop_assert_eq!(&got, &decide(&w.desired, &w.observed, &w.clusters, &p, NOW));
        prop_assert_eq!(&got, &decide(&rev_desired, &rev_observed, &w.clusters, &p, NOW));

        let mut started = BTreeSet::new();
        let mut stopped = BTreeSet::new();
        let mut statuses = BTreeSet::new();
        for a in &got {
            match a {
                Action::Start { job_id, version, .. } => {
                    prop_assert!(started.insert(job_id.clone()), "two starts for {}", job_id);
                    let j = w.desired.iter().find(|j| &j.job_id == job_id);
                    prop_assert!(j.is_some_and(|j| j.version == *version
                        && j.desired_state == DesiredState::Running));
                    prop_assert!(
                        !w.observed.iter().any(|i| &i.job_id == job_id && i.state.is_live()),
                        "start of {} while it has a live instance", job_id
                    );
                }
                Action::Stop { instance_id, .. } => {
                    prop_assert!(stopped.insert(instance_id.clone()), "{} stopped twice", instance_id);
                    prop_assert!(w.observed.iter().any(|i| &i.instance_id == instance_id
                        && i.state.is_live() && !i.stop_requested), "stop of {}", instance_id);
                }
                Action::Retire { instance_id } => {
                    prop_assert!(w.observed.iter().any(|i| &i.instance_id == instance_id
                        && !i.state.is_live() && !i.retired), "retire of {}", instance_id);
                }
                Action::Forget { instance_id } => {
                    prop_assert!(w.observed.iter().any(|i| &i.instance_id == instance_id
                        && !i.state.is_live()
                        && !w.desired.iter().any(|j| j.job_id == i.job_id)), "forget of {}", instance_id);
                }
                Action::SetStatus { status, .. } => {
                    prop_assert!(statuses.insert(status.job_id.clone()), "two statuses for {}", status.job_id);
                    let j = w.desired.iter().find(|j| j.job_id == status.job_id);
                    prop_assert!(j.is_some_and(|j| j.version == status.version && &j.status != status));
                }
            }
        }

        let mut desired = w.desired.clone();
        let mut observed = w.observed.clone();
        apply(&mut desired, &mut observed, &got, NOW);
        let after = live_usage(&observed);
        for c in &w.clusters {
            let started_here = got.iter().any(|a| matches!(a, Action::Start { job_id, .. }
                if w.desired.iter().any(|j| &j.job_id == job_id && j.cluster == c.name)));
            if started_here {
                let u = after.get(&c.name).copied().unwrap_or_default();
                prop_assert!(u.0 <= c.capacity.workers && u.1 <= c.capacity.memory_mb
                    && u.2 <= c.capacity.gpus, "{} over capacity: {:?}", c.name, u);
            }
        }
        let again = decide(&desired, &observed, &w.clusters, &p, NOW);
        prop_assert_eq!(again, Vec::<Action>::new());
    }

    /// R7 over time: with instances that start, run, crash, finish or hang at random,
    /// and users flipping desired states and bumping versions, a job never has two
    /// live instances that were not asked to stop, and never two live instances of
    /// which one was just started.
    #[test]
    fn prop_simulation_never_two_live_instances_per_job(
        steps in prop::collection::vec((0u8..10, 0usize..4, 0i64..20_000), 1..60)
    ) {
        let p = policy();
        let cl = vec![cluster("local", 6, 1_000_000, 0)];
        let mut desired: Vec<DesiredJob> = NAMES
            .iter()
            .map(|n| job(n, DesiredState::Running, JobState::Pending))
            .collect();
        let mut observed: Vec<ObservedInstance> = Vec::new();
        let mut now = NOW;
        for (event, who, dt) in steps {
            now += dt;
            let name = NAMES[who];
            let live = observed.iter_mut().rev().find(|i| i.job_name == name && i.state.is_live());
            match (event, live) {
                (0, Some(i)) => { i.state = InstanceState::Running; i.heartbeat_at_ms = Some(now); }
                (1, Some(i)) => { i.state = InstanceState::Crashed; i.ended_at_ms = Some(now); }
                (2, Some(i)) => { i.state = InstanceState::Finished; i.ended_at_ms = Some(now); }
                (3, Some(i)) if i.stop_requested => { i.state = InstanceState::Stopped; }
                (4, Some(i)) => { i.heartbeat_at_ms = Some(now); i.progress_at_ms = Some(now); }
                (5, _) => {
                    let j = &mut desired[who];
                    j.desired_state = match j.desired_state {
                        DesiredState::Running => DesiredState::Stopped,
                        DesiredState::Stopped => DesiredState::Running,
                    };
                }
                (6, _) => desired[who].version += 1,
                _ => {}
            }
            let actions = decide(&desired, &observed, &cl, &p, now);
            for a in &actions {
                if let Action::Start { job_id, .. } = a {
                    prop_assert!(!observed.iter().any(|i| &i.job_id == job_id && i.state.is_live()));
                }
            }
            apply(&mut desired, &mut observed, &actions, now);
            for j in &desired {
                let live: Vec<_> = observed
                    .iter()
                    .filter(|i| i.job_id == j.job_id && i.state.is_live())
                    .collect();
                let kept = live.iter().filter(|i| !i.stop_requested).count();
                prop_assert!(kept <= 1, "{} has {} live instances not stopping", j.name, kept);
                let fresh = live.iter().filter(|i| i.started_at_ms == now).count();
                prop_assert!(fresh == 0 || live.len() == 1, "{} started next to a live instance", j.name);
            }
            prop_assert_eq!(decide(&desired, &observed, &cl, &p, now), Vec::<Action>::new());
        }
    }
}

/// Defect: counters reset on restart. An ended instance's counters join the job's
/// totals once, when it is retired, and survive a new spec version; a repeated cycle
/// (status written, retire not yet applied) does not add them again.
#[test]
fn ended_instances_add_their_counters_to_the_job_totals_once() {
    let mut j = job("a", DesiredState::Running, JobState::Running);
    let mut ended = inst("i1", &j, InstanceState::Crashed);
    ended.rows_read = 100;
    ended.rows_in = 40;
    ended.rows_out = 30;
    ended.bad_records = 2;
    let mut live = inst("i2", &j, InstanceState::Running);
    live.rows_read = 7;
    live.rows_in = 5;
    let status_after = |j: &DesiredJob, observed: &[ObservedInstance]| {
        decide(
            std::slice::from_ref(j),
            observed,
            &clusters(),
            &policy(),
            NOW,
        )
        .into_iter()
        .find_map(|a| match a {
            Action::SetStatus { status, .. } => Some(status),
            _ => None,
        })
    };
    let observed = vec![ended.clone(), live.clone()];
    let st = status_after(&j, &observed).expect("the totals change the status");
    assert_eq!(
        st.totals,
        Counters {
            rows_read: 100,
            rows_in: 40,
            rows_out: 30,
            bad_records: 2
        }
    );
    assert_eq!(st.counted_instances, vec!["i1".to_string()]);
    // The job's totals: the ended one (once) plus the live one.
    assert_eq!(st.job_totals(&observed).rows_read, 107);
    // The next cycle before the retire landed: nothing is added twice.
    j.status = st.clone();
    if let Some(again) = status_after(&j, &observed) {
        assert_eq!(again.totals, st.totals);
    }
    // A new spec version keeps the totals.
    j.version += 1;
    let next = status_after(&j, &[]).expect("a new version writes a status");
    assert_eq!(next.totals, st.totals);
}

#[path = "decide_transitions_tests.rs"]
mod transitions;
