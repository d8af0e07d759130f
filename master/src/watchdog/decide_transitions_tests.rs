//! Tests that every state change `decide` makes is a row of the job state machine
//! (`model::transitions`): exhaustively over one-instance situations, and over
//! generated worlds and simulated histories. A child of the `decide` tests (it uses
//! their fixtures).

use super::super::{decide_with_steps, Step};
use super::*;
use crate::model::transitions::{allows, Cause, TRANSITIONS};

/// Checks the steps of one cycle: each is legal, and each job's steps chain from its
/// stored state to the state of the status `decide` writes (or back to the stored
/// state when it writes none).
fn check_cycle(desired: &[DesiredJob], actions: &[Action], steps: &[Step]) -> Result<(), String> {
    for step in steps {
        if !step.is_legal() {
            return Err(format!("illegal step {step:?}"));
        }
    }
    for j in desired {
        let mine: Vec<&Step> = steps.iter().filter(|s| s.job_id == j.job_id).collect();
        let written = actions.iter().find_map(|a| match a {
            Action::SetStatus { status, .. } if status.job_id == j.job_id => Some(status.state),
            _ => None,
        });
        let mut state = j.status.state;
        for s in &mine {
            if s.from != state {
                return Err(format!("{}: step {s:?} does not follow {state:?}", j.name));
            }
            state = s.to;
        }
        let end = written.unwrap_or(j.status.state);
        if state != end {
            return Err(format!(
                "{}: steps {mine:?} end in {state:?}, the status written is {end:?}",
                j.name
            ));
        }
    }
    Ok(())
}

/// Runs `decide` and checks its steps.
fn decide_checked(desired: &[DesiredJob], observed: &[ObservedInstance], now: i64) -> Vec<Action> {
    decide_checked_on(desired, observed, &clusters(), now)
}

fn decide_checked_on(
    desired: &[DesiredJob],
    observed: &[ObservedInstance],
    clusters: &[ClusterView],
    now: i64,
) -> Vec<Action> {
    decide_steps(desired, observed, clusters, now).0
}

/// Runs `decide`, checks its steps and returns them.
fn decide_steps(
    desired: &[DesiredJob],
    observed: &[ObservedInstance],
    clusters: &[ClusterView],
    now: i64,
) -> (Vec<Action>, Vec<Step>) {
    let (actions, steps) = decide_with_steps(desired, observed, clusters, &policy(), now);
    if let Err(e) = check_cycle(desired, &actions, &steps) {
        panic!("{e}\ndesired {desired:#?}\nobserved {observed:#?}\nactions {actions:#?}");
    }
    (actions, steps)
}

/// Every situation of the table of `decide`'s tests, for every stored state and both
/// desired states.
#[test]
fn table_situations_change_states_only_legally() {
    for desired in [DesiredState::Running, DesiredState::Stopped] {
        for state in STATES {
            for sit in SITUATIONS {
                let mut j = job("job", desired, state);
                let observed = build(sit, &mut j);
                decide_checked(&[j], &observed, NOW);
            }
        }
    }
}

/// Exhaustive over one job with at most one instance: stored state × desired state ×
/// status of an older version or not × instance state × its version × its flags
/// (stop requested, retired, user error, superseded, hung, already accounted).
#[test]
fn one_instance_worlds_change_states_only_legally() {
    let instance_states = [
        None,
        Some(InstanceState::Starting),
        Some(InstanceState::Running),
        Some(InstanceState::Finished),
        Some(InstanceState::Failed),
        Some(InstanceState::Crashed),
        Some(InstanceState::Stopped),
    ];
    let mut cases = 0;
    let mut seen: BTreeSet<(Cause, JobState, JobState)> = BTreeSet::new();
    let full = vec![cluster("local", 0, 0, 0)];
    for (desired, cl) in [
        (DesiredState::Running, clusters()),
        (DesiredState::Running, full),
        (DesiredState::Stopped, clusters()),
    ] {
        for state in STATES {
            for old_status in [false, true] {
                for inst_state in &instance_states {
                    for flags in 0u32..(1 << 7) {
                        let bit = |n: u32| flags & (1 << n) != 0;
                        if inst_state.is_none() && flags != 0 {
                            continue;
                        }
                        let mut j = job("job", desired, state);
                        if old_status {
                            j.status.version = 1;
                        }
                        let observed: Vec<ObservedInstance> = inst_state
                            .clone()
                            .map(|s| {
                                let mut i = inst("i1", &j, s);
                                if bit(0) {
                                    i.job_version = 1;
                                }
                                i.stop_requested = bit(1);
                                i.retired = bit(2);
                                i.user_error = bit(3);
                                i.message = bit(3).then(|| "bad".to_string());
                                i.superseded = bit(4);
                                if bit(5) {
                                    i.heartbeat_at_ms = Some(NOW - 20_000);
                                }
                                if bit(6) {
                                    j.status.last_accounted_instance = Some("i1".to_string());
                                }
                                i
                            })
                            .into_iter()
                            .collect();
                        let (actions, steps) =
                            decide_steps(std::slice::from_ref(&j), &observed, &cl, NOW);
                        seen.extend(steps.iter().map(|s| (s.cause, s.from, s.to)));
                        // And the cycle after it, once applied.
                        let mut desired_after = vec![j];
                        let mut observed_after = observed;
                        apply(&mut desired_after, &mut observed_after, &actions, NOW);
                        let (_, steps) =
                            decide_steps(&desired_after, &observed_after, &cl, NOW + 60_000);
                        seen.extend(steps.iter().map(|s| (s.cause, s.from, s.to)));
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 3 * 7 * 2 * (1 + 6 * 128));
    // A start that fails is the other writer of states.
    for state in STATES {
        let (after, _) = start_failed(&status_in("id-job", state), "i9", "x", &policy(), NOW);
        if after.state == JobState::Restarting {
            seen.insert((Cause::Restart, state, after.state));
        } else if after.state != state {
            seen.insert((Cause::GaveUp, state, after.state));
        }
    }
    // The table is no looser than `decide`: every row is taken by some world.
    let unused: Vec<_> = TRANSITIONS
        .iter()
        .flat_map(|t| t.from.iter().map(move |&from| (t.cause, from, t.to)))
        .filter(|row| !seen.contains(row))
        .collect();
    assert!(unused.is_empty(), "rows no world takes: {unused:?}");
}

/// Adoption: a live instance of the current version moves a finished or failed job
/// back to `Running` (observation wins), and the step says so.
#[test]
fn adoption_of_a_live_instance_is_a_named_legal_transition() {
    for state in [JobState::Finished, JobState::Failed, JobState::Stopped] {
        let j = job("job", DesiredState::Running, state);
        let observed = vec![inst("i1", &j, InstanceState::Running)];
        let (actions, steps) = decide_with_steps(
            std::slice::from_ref(&j),
            &observed,
            &clusters(),
            &policy(),
            NOW,
        );
        assert_eq!(
            steps,
            vec![Step {
                job_id: j.job_id.clone(),
                from: state,
                to: JobState::Running,
                cause: Cause::Adopted,
            }]
        );
        assert!(matches!(&actions[..], [Action::SetStatus { status, .. }]
            if status.state == JobState::Running));
    }
}

/// A start that fails is accounted like a crash: `Restarting` or `Failed`, and
/// nothing at all once the version is over.
#[test]
fn start_failures_change_states_only_legally() {
    for state in STATES {
        let st = status_in("id-job", state);
        let (after, _) = start_failed(&st, "i9", "no such file", &policy(), NOW);
        if after.state != state {
            assert!(
                allows(state, after.state, Cause::Restart)
                    || allows(state, after.state, Cause::GaveUp),
                "{state:?} → {:?}",
                after.state
            );
        }
        if matches!(state, JobState::Finished | JobState::Failed) {
            assert_eq!(after, st);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every state change on a random world (several jobs and instances, random
    /// statuses, capacities and versions) is legal, and the next cycle's too.
    #[test]
    fn prop_random_worlds_change_states_only_legally(w in world()) {
        let actions = decide_checked_on(&w.desired, &w.observed, &w.clusters, NOW);
        let mut desired = w.desired.clone();
        let mut observed = w.observed.clone();
        apply(&mut desired, &mut observed, &actions, NOW);
        decide_checked_on(&desired, &observed, &w.clusters, NOW + 30_000);
    }

    /// Over simulated histories (instances that start, run, crash, finish; users who
    /// stop, start and change jobs), every state change is legal.
    #[test]
    fn prop_simulated_histories_change_states_only_legally(
        steps in prop::collection::vec((0u8..10, 0usize..4, 0i64..20_000), 1..60)
    ) {
        let cl = vec![cluster("local", 3, 1_000_000, 0)];
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
                (4, Some(i)) => {
                    i.state = InstanceState::Failed;
                    i.user_error = true;
                    i.message = Some("bad".to_string());
                }
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
            let actions = decide_checked_on(&desired, &observed, &cl, now);
            apply(&mut desired, &mut observed, &actions, now);
        }
    }
}
