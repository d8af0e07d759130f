//! The job state machine, written down once: which [`JobState`] may follow which, and
//! why. Part of the master's data model; the watchdog's pure `decide` is the only
//! writer of job states, and its tests check that every change it makes is listed here.
//!
//! A change of state has a [`Cause`], and a cause allows a change only from the states
//! listed for it. The same pair of states may be legal for one cause and illegal for
//! another: `Stopped → Finished` is legal when a finished instance of the current
//! version is observed, never for any other reason.
//!
//! | cause | from | to | why |
//! |---|---|---|---|
//! | `NewVersion` | any | `Pending` | a new spec version starts from a fresh status (keeping the restart count and totals) |
//! | `Started` | `Pending`, `Starting`, `Running`, `Restarting`, `Stopped` | `Starting` | desired running, nothing live, not backing off: an instance was started |
//! | `NoCapacity` | `Pending`, `Starting`, `Running`, `Restarting`, `Stopped` | `Pending` | desired running, nothing live, but the cluster is missing or full |
//! | `Adopted` | any | `Starting`, `Running` | adoption: a live instance of the current version is observed (one adopted after a master restart, or a job restarted by a user); observation wins, even over `Finished` and `Failed` |
//! | `InstanceFinished` | any | `Finished` | an instance of the current version finished: the job's work is done (even when it was failed meanwhile) |
//! | `Restart` | `Pending`, `Starting`, `Running`, `Restarting`, `Stopped` | `Restarting` | an instance failed, crashed, hung, stopped unasked or could not start; a new one starts after the backoff |
//! | `GaveUp` | `Pending`, `Starting`, `Running`, `Restarting`, `Stopped` | `Failed` | too many failures within the window, an error only the user can fix, or the instance was superseded by another master's |
//! | `StopRequested` | any | `Stopped` | desired stopped and nothing is live any more |
//!
//! Equations that follow from the table (and that the tests check):
//!
//! * `Finished` and `Failed` are terminal for a spec version except by observation:
//!   they are left only by `NewVersion`, `Adopted`, `InstanceFinished` (from `Failed`)
//!   or `StopRequested`. No failure is counted against them.
//! * Nothing starts an instance of a `Finished` or `Failed` version: `Started` is not
//!   legal from them.
//! * A state is left for `Stopped` only by a user's request.

use super::JobState;

/// Why a job's state changes: the kind of observation or decision behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// A new spec version: the status starts afresh.
    NewVersion,
    /// An instance of the current version was started.
    Started,
    /// The job could start but its cluster is missing or full.
    NoCapacity,
    /// Adoption: a live instance of the current version is observed.
    Adopted,
    /// An instance of the current version finished.
    InstanceFinished,
    /// A failure that a restart may fix: restart after the backoff.
    Restart,
    /// A failure that ends the version: too many, the user's to fix, or superseded.
    GaveUp,
    /// Desired stopped, and nothing is live.
    StopRequested,
}

/// Every cause, in declaration order.
pub const CAUSES: [Cause; 8] = [
    Cause::NewVersion,
    Cause::Started,
    Cause::NoCapacity,
    Cause::Adopted,
    Cause::InstanceFinished,
    Cause::Restart,
    Cause::GaveUp,
    Cause::StopRequested,
];

/// Every job state, in declaration order.
pub const STATES: [JobState; 7] = [
    JobState::Pending,
    JobState::Starting,
    JobState::Running,
    JobState::Restarting,
    JobState::Stopped,
    JobState::Finished,
    JobState::Failed,
];

/// One row of the state machine: `cause` moves a job from any state of `from` to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Why.
    pub cause: Cause,
    /// The states it may leave.
    pub from: &'static [JobState],
    /// The state it enters.
    pub to: JobState,
    /// The rule, in words.
    pub why: &'static str,
}

/// A state in which the spec version is not over yet.
const LIVE_VERSION: &[JobState] = &[
    JobState::Pending,
    JobState::Starting,
    JobState::Running,
    JobState::Restarting,
    JobState::Stopped,
];

/// The legal transitions (the module documentation shows them as a table).
pub const TRANSITIONS: &[Transition] = &[
    Transition {
        cause: Cause::NewVersion,
        from: &STATES,
        to: JobState::Pending,
        why: "a new spec version starts from a fresh status",
    },
    Transition {
        cause: Cause::Started,
        from: LIVE_VERSION,
        to: JobState::Starting,
        why: "desired running, nothing live, not backing off: an instance was started",
    },
    Transition {
        cause: Cause::NoCapacity,
        from: LIVE_VERSION,
        to: JobState::Pending,
        why: "desired running, nothing live, but the cluster is missing or full",
    },
    Transition {
        cause: Cause::Adopted,
        from: &STATES,
        to: JobState::Starting,
        why: "adoption: a live instance of the current version is observed, starting",
    },
    Transition {
        cause: Cause::Adopted,
        from: &STATES,
        to: JobState::Running,
        why: "adoption: a live instance of the current version is observed, running",
    },
    Transition {
        cause: Cause::InstanceFinished,
        from: &STATES,
        to: JobState::Finished,
        why: "an instance of the current version finished: the job's work is done",
    },
    Transition {
        cause: Cause::Restart,
        from: LIVE_VERSION,
        to: JobState::Restarting,
        why: "an instance failed, crashed, hung, stopped unasked or could not start: \
              restart after the backoff",
    },
    Transition {
        cause: Cause::GaveUp,
        from: LIVE_VERSION,
        to: JobState::Failed,
        why: "too many failures within the window, an error only the user can fix, \
              or superseded by another master's instance",
    },
    Transition {
        cause: Cause::StopRequested,
        from: &STATES,
        to: JobState::Stopped,
        why: "desired stopped and nothing is live any more",
    },
];

/// The row that allows `cause` to move a job from `from` to `to`, if any.
pub fn rule(from: JobState, to: JobState, cause: Cause) -> Option<&'static Transition> {
    TRANSITIONS
        .iter()
        .find(|t| t.cause == cause && t.to == to && t.from.contains(&from))
}

/// True when `cause` may move a job from `from` to `to`.
pub fn allows(from: JobState, to: JobState, cause: Cause) -> bool {
    rule(from, to, cause).is_some()
}

impl JobState {
    /// True when some cause may move a job from `self` to `next`
    /// (see [`transitions`](crate::model::transitions)).
    pub fn can_become(self, next: JobState) -> bool {
        CAUSES.iter().any(|&cause| allows(self, next, cause))
    }

    /// True when `cause` may move a job from `self` to `next`.
    pub fn can_become_by(self, next: JobState, cause: Cause) -> bool {
        allows(self, next, cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    #[test]
    fn every_state_and_cause_appears_and_rows_are_distinct() {
        for state in STATES {
            assert!(
                TRANSITIONS.iter().any(|t| t.to == state),
                "{state:?} is never entered"
            );
        }
        for cause in CAUSES {
            assert!(TRANSITIONS.iter().any(|t| t.cause == cause), "{cause:?}");
        }
        for (i, a) in TRANSITIONS.iter().enumerate() {
            for b in &TRANSITIONS[i + 1..] {
                assert!(
                    !(a.cause == b.cause && a.to == b.to),
                    "two rows for {:?} → {:?}",
                    a.cause,
                    a.to
                );
            }
        }
    }

    #[test]
    fn illegal_transitions_are_rejected() {
        // A stopped job finishes only when a finished instance is observed.
        assert!(!allows(Stopped, Finished, Cause::StopRequested));
        assert!(!allows(Stopped, Finished, Cause::Started));
        assert!(!allows(Stopped, Finished, Cause::Restart));
        assert!(allows(Stopped, Finished, Cause::InstanceFinished));
        // No failure is counted against a version that is over.
        for terminal in [Finished, Failed] {
            assert!(
                !terminal.can_become(Restarting),
                "{terminal:?} → Restarting"
            );
            assert!(
                !allows(terminal, Starting, Cause::Started),
                "{terminal:?} started"
            );
            assert!(!allows(terminal, Pending, Cause::NoCapacity));
        }
        assert!(!Finished.can_become(Failed));
        assert!(!allows(Failed, Failed, Cause::GaveUp));
        // Only adoption enters Running.
        for cause in CAUSES {
            if cause != Cause::Adopted {
                for from in STATES {
                    assert!(
                        !allows(from, Running, cause),
                        "{from:?} → Running by {cause:?}"
                    );
                }
            }
        }
        // Only a user's request enters Stopped.
        assert!(!allows(Running, Stopped, Cause::GaveUp));
    }

    #[test]
    fn terminal_states_are_left_only_by_observation_a_new_version_or_a_stop() {
        for from in [Finished, Failed] {
            for to in STATES {
                for cause in CAUSES {
                    if allows(from, to, cause) {
                        assert!(
                            matches!(
                                cause,
                                Cause::NewVersion
                                    | Cause::Adopted
                                    | Cause::InstanceFinished
                                    | Cause::StopRequested
                            ),
                            "{from:?} → {to:?} by {cause:?}"
                        );
                    }
                }
            }
        }
        // Adoption is legal from the terminal states (observation wins).
        assert!(allows(Finished, Running, Cause::Adopted));
        assert!(allows(Failed, Starting, Cause::Adopted));
        assert!(allows(Failed, Finished, Cause::InstanceFinished));
    }
}
