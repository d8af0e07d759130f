//! `/metrics` in the Prometheus text exposition format, rendered from the store, the
//! clusters' observations and the watchdog's counters. Deterministic order.

use crate::model::JobState;
use crate::service::Master;
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

/// The metrics page.
pub fn render(m: &Master) -> String {
    let mut out = String::new();
    let jobs = m.jobs_with_status().unwrap_or_default();
    let instances = m.instances().unwrap_or_default();

    header(&mut out, "sluice_up", "gauge", "1 while the master serves.");
    out.push_str("sluice_up 1\n");

    header(
        &mut out,
        "sluice_job_rows_in_total",
        "counter",
        "Rows read by the job's live instance (resets when an instance restarts).",
    );
    for (j, _) in &jobs {
        let v: u64 = instances
            .iter()
            .filter(|i| i.job_id == j.id && i.state.is_live())
            .map(|i| i.rows_in)
            .sum();
        let _ = writeln!(
            out,
            "sluice_job_rows_in_total{{job=\"{}\"}} {v}",
            label(&j.name)
        );
    }
    header(
        &mut out,
        "sluice_job_rows_out_total",
        "counter",
        "Rows written by the job's live instance (resets when an instance restarts).",
    );
    for (j, _) in &jobs {
        let v: u64 = instances
            .iter()
            .filter(|i| i.job_id == j.id && i.state.is_live())
            .map(|i| i.rows_out)
            .sum();
        let _ = writeln!(
            out,
            "sluice_job_rows_out_total{{job=\"{}\"}} {v}",
            label(&j.name)
        );
    }
    header(
        &mut out,
        "sluice_job_bad_records_total",
        "counter",
        "Undecodable records seen by the job's live instance.",
    );
    for (j, _) in &jobs {
        let v: u64 = instances
            .iter()
            .filter(|i| i.job_id == j.id && i.state.is_live())
            .map(|i| i.bad_records)
            .sum();
        let _ = writeln!(
            out,
            "sluice_job_bad_records_total{{job=\"{}\"}} {v}",
            label(&j.name)
        );
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
    if let Ok(c) = m.counters.lock() {
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
