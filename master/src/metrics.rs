//! `/metrics` in the Prometheus text exposition format, rendered from the store, the
//! clusters' observations and the watchdog's counters. Deterministic order.

use crate::master::Master;
use crate::model::{Counters, JobState};
use std::fmt::Write;

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

const STATES: [(JobState, &str); 7] = [
    (JobState::Pending, "pending"),
    (JobState::Starting, "starting"),
    (JobState::Running, "running"),
    (JobState::Restarting, "restarting"),
    (JobState::Stopped, "stopped"),
    (JobState::Finished, "finished"),
    (JobState::Failed, "failed"),
];

/// A per-job counter: its name, help text and which of the job's totals it shows.
type CounterMetric = (&'static str, &'static str, fn(&Counters) -> u64);

/// The metrics page.
pub fn render(m: &Master) -> String {
    let mut out = String::new();
    let jobs = m.jobs.jobs_with_status().unwrap_or_default();
    let instances = m.core.instances().unwrap_or_default();

    header(&mut out, "sluice_up", "gauge", "1 while the master serves.");
    out.push_str("sluice_up 1\n");

    // Counters over every instance the job ran (all versions): monotonic while the
    // job exists, and still there once it finished.
    let totals: Vec<(String, Counters)> = jobs
        .iter()
        .map(|(j, s)| (label(&j.name), s.job_totals(&instances)))
        .collect();
    let counters: [CounterMetric; 4] = [
        (
            "sluice_job_rows_read_total",
            "Rows the job's sources read, before the filters pushed into them (all its instances).",
            |c| c.rows_read,
        ),
        (
            "sluice_job_rows_in_total",
            "Rows the job's sources emitted, after the filters pushed into them (all its instances).",
            |c| c.rows_in,
        ),
        (
            "sluice_job_rows_out_total",
            "Rows the job wrote to its sinks (all its instances).",
            |c| c.rows_out,
        ),
        (
            "sluice_job_bad_records_total",
            "Undecodable records the job's sources saw (all its instances).",
            |c| c.bad_records,
        ),
    ];
    for (name, help, get) in counters {
        header(&mut out, name, "counter", help);
        for (job, c) in &totals {
            let _ = writeln!(out, "{name}{{job=\"{job}\"}} {}", get(c));
        }
    }
    header(
        &mut out,
        "sluice_job_restarts_total",
        "counter",
        "Restarts of the job after failures.",
    );
    for (j, s) in &jobs {
        let _ = writeln!(
            out,
            "sluice_job_restarts_total{{job=\"{}\"}} {}",
            label(&j.name),
            s.restarts
        );
    }
    header(
        &mut out,
        "sluice_job_instances_up",
        "gauge",
        "Live instances of the job (1 when healthy).",
    );
    for (j, _) in &jobs {
        let v = instances
            .iter()
            .filter(|i| i.job_id == j.id && i.state.is_live())
            .count();
        let _ = writeln!(
            out,
            "sluice_job_instances_up{{job=\"{}\"}} {v}",
            label(&j.name)
        );
    }
    header(
        &mut out,
        "sluice_job_version",
        "gauge",
        "The job's spec version.",
    );
    for (j, _) in &jobs {
        let _ = writeln!(
            out,
            "sluice_job_version{{job=\"{}\"}} {}",
            label(&j.name),
            j.version
        );
    }
    header(
        &mut out,
        "sluice_job_state",
        "gauge",
        "1 for the job's current state.",
    );
    for (j, s) in &jobs {
        for (state, name) in STATES {
            let v = u8::from(s.state == state && s.version == j.version);
            let _ = writeln!(
                out,
                "sluice_job_state{{job=\"{}\",state=\"{name}\"}} {v}",
                label(&j.name)
            );
        }
    }
    header(
        &mut out,
        "sluice_instances",
        "gauge",
        "Instances known to the clusters, by state.",
    );
    let mut by_state: std::collections::BTreeMap<String, u64> = Default::default();
    for i in &instances {
        *by_state
            .entry(format!("{:?}", i.state).to_lowercase())
            .or_default() += 1;
    }
    for (state, n) in by_state {
        let _ = writeln!(out, "sluice_instances{{state=\"{state}\"}} {n}");
    }
    if let Ok(c) = m.core.counters.lock() {
        header(
            &mut out,
            "sluice_watchdog_cycles_total",
            "counter",
            "Watchdog reconcile cycles.",
        );
        let _ = writeln!(out, "sluice_watchdog_cycles_total {}", c.cycles);
        header(
            &mut out,
            "sluice_watchdog_cycle_errors_total",
            "counter",
            "Watchdog cycles that hit an error.",
        );
        let _ = writeln!(out, "sluice_watchdog_cycle_errors_total {}", c.cycle_errors);
        header(
            &mut out,
            "sluice_watchdog_actions_total",
            "counter",
            "Watchdog actions applied, by action.",
        );
        for action in ["start", "stop", "retire", "set_status"] {
            let v = c.actions.get(action).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "sluice_watchdog_actions_total{{action=\"{action}\"}} {v}"
            );
        }
    }
    out
}
