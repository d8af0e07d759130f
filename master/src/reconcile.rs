//! The master's one reconcile loop. Every cycle observes every cluster once
//! ([`Observation`]) and hands each owner's instances to its pure decision: the jobs'
//! to the watchdog ([`crate::watchdog::decide`], applied by
//! [`reconcile_with`](crate::watchdog::executor::reconcile_with)), the workflow tasks'
//! to the scheduler ([`crate::workflow::runs::decide`], applied by
//! [`cycle_with`](crate::workflow::executor::cycle_with)). Each persists its decisions
//! before it applies them, as before.
//!
//! ```text
//! wake (API change) or interval ─▶ observe all clusters ─▶ jobs: decide → persist → apply
//!                                                       └▶ tasks: decide → persist → apply
//! ```
//!
//! The scheduler decides on what the clusters hold after the watchdog acted: when the
//! watchdog started or stopped an instance this cycle, the clusters are observed again
//! for it (so both never count on the same free capacity); otherwise the one observation
//! serves both.

use crate::master::Master;
use crate::model::now_ms;
use crate::observe::Observation;
use crate::watchdog::executor::{describe, reconcile_with};
use crate::watchdog::Action;
use crate::workflow::executor::cycle_with;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// One cycle of both reconcilers; returns whether the watchdog's part failed.
pub fn cycle(m: &Master) -> bool {
    let seen = match Observation::of(&m.core.clusters) {
        Ok(seen) => seen,
        Err(e) => {
            tracing::error!("reconcile: {e}");
            return true;
        }
    };
    let jobs = reconcile_with(m, &seen);
    let mut changed = false;
    let failed = match &jobs {
        Ok(actions) => {
            for a in actions {
                changed |= matches!(a, Action::Start { .. } | Action::Stop { .. });
                if !matches!(a, Action::Retire { .. } | Action::Forget { .. }) {
                    tracing::info!("watchdog: {}", describe(a));
                }
            }
            false
        }
        Err(e) => {
            tracing::error!("watchdog: cycle error: {e}");
            true
        }
    };
    let seen = if changed {
        match Observation::of(&m.core.clusters) {
            Ok(again) => again,
            Err(e) => {
                tracing::error!("reconcile: {e}");
                return failed;
            }
        }
    } else {
        seen
    };
    match cycle_with(&m.workflows, &seen, now_ms()) {
        Ok(lines) => {
            for line in lines.iter().filter(|l| !l.is_empty()) {
                tracing::info!("scheduler: {line}");
            }
        }
        Err(e) => tracing::error!("scheduler: cycle error: {e}"),
    }
    failed
}

/// Runs cycles until `wake` is disconnected: one every `interval`, or at once when the
/// API sends on the channel (jobs' and workflows' changes share it).
pub fn run_loop(m: Arc<Master>, wake: Receiver<()>, interval: Duration) {
    loop {
        let failed = cycle(&m);
        if let Ok(mut c) = m.core.counters.lock() {
            c.cycles += 1;
            if failed {
                c.cycle_errors += 1;
            }
        }
        match wake.recv_timeout(interval) {
            // Coalesce a burst of wake-ups into one cycle.
            Ok(()) => while wake.try_recv().is_ok() {},
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
