//! The clusters as the master's reconcilers see them in one cycle: every instance of
//! every cluster observed once, told apart by its [`InstanceOwner`] (a job's, for the
//! watchdog's [`decide`](crate::watchdog::decide); a workflow task's, for the
//! scheduler's [`runs::decide`](crate::workflow::runs::decide)), with each cluster's
//! capacity and what its live instances — of both owners — leave of it.
//!
//! Both loops build their cycle on an [`Observation`]; it is the seam along which they
//! become one reconcile loop (observe once, hand each owner's instances to its decide).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cluster::{Cluster, ClusterError};
use crate::model::{Capacity, InstanceOwner, ObservedInstance};
use crate::watchdog::ClusterView;

/// A cluster that could not be observed (the cycle stops: deciding on a partial view
/// could start a second instance of a job whose first one was not seen).
#[derive(Debug, thiserror::Error)]
#[error("cannot observe {cluster}: {error}")]
pub struct ObserveError {
    /// The cluster's name.
    pub cluster: String,
    /// The driver's error.
    #[source]
    pub error: ClusterError,
}

/// Every cluster's instances and capacity, observed once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// Every instance, cluster by cluster (in name order), each in its driver's order.
    pub instances: Vec<ObservedInstance>,
    /// Every cluster's name and capacity, in name order.
    pub clusters: Vec<ClusterView>,
    /// What each cluster (by name) has left after its live instances, of any owner.
    pub free: BTreeMap<String, Capacity>,
}

impl Observation {
    /// Observes every cluster of `clusters` (by name).
    pub fn of(clusters: &BTreeMap<String, Arc<dyn Cluster>>) -> Result<Self, ObserveError> {
        let mut out = Observation::default();
        for (name, c) in clusters {
            let capacity = c.capacity();
            let seen = c.observe().map_err(|error| ObserveError {
                cluster: name.clone(),
                error,
            })?;
            let mut left = capacity;
            for i in seen.iter().filter(|i| i.state.is_live()) {
                left.workers = left.workers.saturating_sub(u64::from(i.parallelism));
                left.memory_mb = left.memory_mb.saturating_sub(i.memory_mb);
                left.gpus = left.gpus.saturating_sub(u64::from(i.gpus));
            }
            out.free.insert(name.clone(), left);
            out.clusters.push(ClusterView {
                name: c.name().to_string(),
                capacity,
            });
            out.instances.extend(seen);
        }
        Ok(out)
    }

    /// The instances of jobs (the watchdog's).
    pub fn job_instances(&self) -> impl Iterator<Item = &ObservedInstance> {
        self.instances.iter().filter(|i| is_job(i))
    }

    /// The instances of workflow tasks (the scheduler's).
    pub fn task_instances(&self) -> impl Iterator<Item = &ObservedInstance> {
        self.instances.iter().filter(|i| !is_job(i))
    }
}

/// True for an instance of a job, false for one of a workflow task.
fn is_job(i: &ObservedInstance) -> bool {
    match i.owner {
        InstanceOwner::Job { .. } => true,
        InstanceOwner::Task { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::LaunchSpec;
    use crate::model::InstanceState;

    /// A cluster that only reports what it is given.
    struct Fixed {
        name: &'static str,
        instances: Result<Vec<ObservedInstance>, &'static str>,
    }

    impl Cluster for Fixed {
        fn name(&self) -> &str {
            self.name
        }
        fn kind(&self) -> &'static str {
            "fixed"
        }
        fn capacity(&self) -> Capacity {
            Capacity {
                workers: 8,
                memory_mb: 8_192,
                gpus: 1,
            }
        }
        fn launch(&self, _: &LaunchSpec) -> Result<(), ClusterError> {
            unreachable!()
        }
        fn stop(&self, _: &str) -> Result<(), ClusterError> {
            unreachable!()
        }
        fn kill(&self, _: &str) -> Result<(), ClusterError> {
            unreachable!()
        }
        fn observe(&self) -> Result<Vec<ObservedInstance>, ClusterError> {
            self.instances
                .clone()
                .map_err(|e| ClusterError::Io(e.to_string()))
        }
        fn retire(&self, _: &str) -> Result<(), ClusterError> {
            unreachable!()
        }
        fn forget(&self, _: &str) -> Result<(), ClusterError> {
            unreachable!()
        }
        fn logs(&self, _: &str, _: u64) -> Result<String, ClusterError> {
            unreachable!()
        }
    }

    fn instance(id: &str, owner: InstanceOwner, state: InstanceState) -> ObservedInstance {
        ObservedInstance {
            job_id: "j".to_string(),
            job_name: "j".to_string(),
            cluster: "a".to_string(),
            parallelism: 2,
            gpus: 1,
            ..ObservedInstance::of(id, owner, state)
        }
    }

    fn clusters(
        b: Result<Vec<ObservedInstance>, &'static str>,
    ) -> BTreeMap<String, Arc<dyn Cluster>> {
        let job = InstanceOwner::Job {
            id: "j".to_string(),
            version: 1,
        };
        let task = InstanceOwner::Task {
            workflow: "w".to_string(),
            run: "r".to_string(),
            task: "t".to_string(),
            attempt: 1,
        };
        let a = Fixed {
            name: "a",
            instances: Ok(vec![
                instance("j1", job.clone(), InstanceState::Running),
                instance("t1", task.clone(), InstanceState::Starting),
                instance("j0", job, InstanceState::Crashed),
                instance("t0", task, InstanceState::Finished),
            ]),
        };
        let b = Fixed {
            name: "b",
            instances: b,
        };
        let mut out: BTreeMap<String, Arc<dyn Cluster>> = BTreeMap::new();
        out.insert("a".to_string(), Arc::new(a));
        out.insert("b".to_string(), Arc::new(b));
        out
    }

    #[test]
    fn instances_are_split_by_owner_and_live_ones_of_both_use_capacity() {
        let seen = Observation::of(&clusters(Ok(Vec::new()))).unwrap();
        let ids = |it: &mut dyn Iterator<Item = &ObservedInstance>| {
            it.map(|i| i.instance_id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ids(&mut seen.job_instances()), ["j1", "j0"]);
        assert_eq!(ids(&mut seen.task_instances()), ["t1", "t0"]);
        assert_eq!(
            seen.clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            seen.free["a"],
            Capacity {
                workers: 4,
                memory_mb: 6_144,
                gpus: 0
            }
        );
        assert_eq!(seen.free["b"], seen.clusters[1].capacity);
    }

    #[test]
    fn a_cluster_that_cannot_be_observed_fails_the_observation() {
        let e = Observation::of(&clusters(Err("disk gone"))).unwrap_err();
        assert_eq!(e.cluster, "b");
        assert_eq!(e.to_string(), "cannot observe b: disk gone");
    }
}
