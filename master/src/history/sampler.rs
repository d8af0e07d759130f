//! The executor of the metrics history: every `sample_interval_ms` it observes every
//! job (its counters over all its instances, as `/metrics` shows them; the CPU time
//! and resident memory of its live processes from `/proc`; a running job's newest
//! checkpoint: epoch, duration, state size), applies the pure
//! [`super::step`], and writes the touched series to the store.

use super::persist::{HistoryTree, PersistError};
use super::{step, HistoryConfig, HistoryState, JobSample, Observation, Usage};
use crate::jobs::JobsService;
use crate::model::now_ms;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The history as the master holds it: settings, the state, and where it persists.
pub struct History {
    /// Bounds and resolution.
    pub config: HistoryConfig,
    state: Mutex<HistoryState>,
    tree: Option<HistoryTree>,
}

impl History {
    /// A history persisted in `db` (loaded from it now).
    pub fn open(db: &sled::Db, config: HistoryConfig) -> Result<Self, PersistError> {
        let tree = HistoryTree::open(db)?;
        let state = tree.load()?;
        Ok(History {
            config,
            state: Mutex::new(state),
            tree: Some(tree),
        })
    }

    /// A history kept in memory only.
    pub fn in_memory(config: HistoryConfig) -> Self {
        History {
            config,
            state: Mutex::new(HistoryState::default()),
            tree: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HistoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the state.
    pub fn read<T>(&self, f: impl FnOnce(&HistoryState) -> T) -> T {
        f(&self.lock())
    }

    /// What it holds, against its bounds.
    pub fn usage(&self) -> Usage {
        self.lock().usage(&self.config)
    }

    /// Folds one observation in and persists what changed.
    pub fn record(&self, obs: &Observation) -> Result<(), PersistError> {
        let mut guard = self.lock();
        let stepped = step(std::mem::take(&mut *guard), obs, &self.config);
        let saved = match &self.tree {
            Some(tree) => tree.save(&stepped),
            None => Ok(()),
        };
        *guard = stepped.state;
        saved
    }

    /// Makes what was recorded durable.
    pub fn flush(&self) -> Result<(), PersistError> {
        match &self.tree {
            Some(tree) => tree.flush(),
            None => Ok(()),
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`sysconf(_SC_CLK_TCK)`, 100 on
/// every Linux this runs on).
const CLK_TCK: f64 = 100.0;

/// CPU seconds (user + system) and resident bytes of a process, from
/// `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` when it is gone.
pub fn process_usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Some(((utime + stime) / CLK_TCK, rss_kb * 1024.0))
}

/// Observes every job now.
pub fn observe(m: &JobsService) -> Observation {
    let at_ms = now_ms();
    let jobs = m.jobs_with_status().unwrap_or_default();
    let instances = m.core.instances().unwrap_or_default();
    let jobs = jobs
        .iter()
        .map(|(j, s)| {
            let totals = s.job_totals(&instances);
            let live: Vec<_> = instances
                .iter()
                .filter(|i| i.job_id == j.id && i.state.is_live())
                .collect();
            let (mut cpu, mut rss) = (0.0, 0.0);
            for pid in live.iter().flat_map(|i| i.pids.iter()) {
                if let Some((c, r)) = process_usage(*pid) {
                    cpu += c;
                    rss += r;
                }
            }
            let late: u64 = instances
                .iter()
                .filter(|i| i.job_id == j.id && !i.retired)
                .map(|i| i.late_rows)
                .sum();
            let mut values: BTreeMap<String, f64> = [
                ("rows_read", totals.rows_read as f64),
                ("rows_in", totals.rows_in as f64),
                ("rows_out", totals.rows_out as f64),
                ("bad_records", totals.bad_records as f64),
                ("late_rows", late as f64),
                ("restarts", s.restarts as f64),
                ("cpu_seconds", cpu),
                ("rss_bytes", rss),
                ("instances_up", live.len() as f64),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            // Rows each plan operator emitted, the live instances together (a restart
            // starts them again from 0: a counter reset).
            let mut operator_rows: BTreeMap<String, f64> = BTreeMap::new();
            for i in &live {
                for (op, n) in &i.operators {
                    *operator_rows.entry(op.clone()).or_default() += *n as f64;
                }
            }
            let mut operator_state = BTreeMap::new();
            // The newest checkpoint of a running job: its epoch, how long it took and
            // the size of the operator state it holds.
            if !live.is_empty() {
                if let Some(c) = crate::checkpoints::latest(&m.core.checkpoints.job_dir(&j.id)) {
                    values.insert("checkpoint_epoch".into(), c.epoch as f64);
                    if let Some(req) = c.requested_at_ms {
                        values.insert(
                            "checkpoint_duration_ms".into(),
                            c.completed_at_ms.saturating_sub(req) as f64,
                        );
                    }
                    values.insert(
                        "state_bytes".into(),
                        c.state_bytes.values().sum::<u64>() as f64,
                    );
                    operator_state = c
                        .state_bytes
                        .iter()
                        .map(|(op, b)| (op.clone(), *b as f64))
                        .collect();
                }
            }
            JobSample {
                job: j.name.clone(),
                values,
                operator_state,
                operator_rows,
            }
        })
        .collect();
    Observation { at_ms, jobs }
}

/// Samples what `observe` sees forever (a thread of `sluice serve`, over
/// [`observe`] of its jobs).
pub fn run_loop(observe: impl Fn() -> Observation, history: Arc<History>) {
    let interval = Duration::from_millis(history.config.sample_interval_ms.max(10));
    loop {
        let obs = observe();
        if let Err(e) = history.record(&obs).and_then(|()| history.flush()) {
            tracing::warn!("cannot record the metrics history: {e}");
        }
        std::thread::sleep(interval);
    }
}
