//! The master: the shared [`Core`] and the two services over it — jobs
//! ([`crate::jobs`]) and workflows ([`crate::workflow::service`]) — plus what only the
//! REST layer uses. The REST handlers (`api/`) and the reconcile loop (`reconcile.rs`)
//! hold it; nothing below it does.

use crate::core::Core;
use crate::jobs::JobsService;
use crate::workflow::service::WorkflowsService;
use std::sync::Arc;

/// The master: the shared core and the two services over it, plus what only the REST
/// layer uses (the metrics history, the running previews). Shared by the REST handlers
/// and the reconcile loop.
pub struct Master {
    /// What both services share.
    pub core: Arc<Core>,
    /// Jobs.
    pub jobs: JobsService,
    /// Workflows (scheduled DAGs of SQL tasks).
    pub workflows: WorkflowsService,
    /// The metrics history (`sluice serve` samples into it); none: not kept.
    pub history: Option<Arc<crate::history::sampler::History>>,
    /// Query previews running now (`POST /api/v1/queries`).
    pub previews: crate::preview::Previews,
}

impl Master {
    /// The master over `core`: jobs restarted by `policy`; workflows kept in
    /// `workflows` and scheduled by `scheduler`; no metrics history and the default
    /// preview limits (`sluice serve` sets both).
    pub fn new(
        core: Arc<Core>,
        policy: crate::watchdog::Policy,
        workflows: Arc<dyn crate::workflow::WorkflowStore>,
        scheduler: crate::workflow::service::SchedulerConfig,
    ) -> Master {
        Master {
            jobs: JobsService::new(core.clone(), policy),
            workflows: WorkflowsService {
                core: core.clone(),
                store: workflows,
                scheduler,
            },
            core,
            history: None,
            previews: Default::default(),
        }
    }
}
