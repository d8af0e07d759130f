//! `decide`: the pure heart of the watchdog (to be written).

use super::{Action, ClusterView, DesiredJob, Policy};
use crate::model::ObservedInstance;

/// What to do now, given what should be and what is.
pub fn decide(
    _desired: &[DesiredJob],
    _observed: &[ObservedInstance],
    _clusters: &[ClusterView],
    _policy: &Policy,
    _now_ms: i64,
) -> Vec<Action> {
    Vec::new()
}
