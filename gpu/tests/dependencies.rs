//! The dependency rules: the `sluice` master binary (`sluice-master`) never links cudarc,
//! while the dataflow (and so the worker) does, through `sluice-gpu`; and the row layer
//! (`sluice-expr`) and the crates that need only it (connectors, columnar and GPU
//! kernels) never link the SQL front end (`sluice-compiler`, sqlparser). Checked on the
//! resolved graph from `cargo metadata`, following normal (non-dev, non-build) edges.
//!
//! The graph is resolved for the host platform only (`--filter-platform`): a fresh
//! cargo cache holds just the crates a host build downloaded, and an unfiltered
//! `cargo metadata --offline` would ask for other platforms' crates
//! (`android_system_properties`, …) and fail.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;

/// The host's target triple, as `rustc -vV` reports it.
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .trim()
        .to_string()
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let host = host_triple();
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Package names in the normal-dependency closure of the workspace package `root`.
fn normal_closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let start = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|id| names.get(id) == Some(&root))
        .unwrap_or_else(|| panic!("{root} is not in the workspace"));
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    let mut out = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        out.insert(names[id].to_string());
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            if normal {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    out
}

#[test]
fn master_never_links_cudarc_but_the_dataflow_does() {
    let meta = metadata();
    let master = normal_closure(&meta, "sluice-master");
    assert!(
        !master.contains("cudarc"),
        "sluice-master must not depend on cudarc (through: {:?})",
        master
            .iter()
            .filter(|n| n.starts_with("sluice"))
            .collect::<Vec<_>>()
    );
    assert!(!master.contains("sluice-gpu"));
    assert!(
        master.contains("sluice-columnar"),
        "the connectors use the CPU kernels"
    );
    let dataflow = normal_closure(&meta, "sluice-dataflow");
    assert!(dataflow.contains("cudarc"));
    assert!(dataflow.contains("sluice-gpu"));
    let connectors = normal_closure(&meta, "sluice-connectors");
    assert!(!connectors.contains("cudarc"));
}

#[test]
fn the_row_layer_and_its_users_never_link_the_sql_front_end() {
    let meta = metadata();
    for root in [
        "sluice-expr",
        "sluice-connectors",
        "sluice-columnar",
        "sluice-gpu",
    ] {
        let closure = normal_closure(&meta, root);
        for front_end in ["sluice-compiler", "sqlparser"] {
            assert!(
                !closure.contains(front_end),
                "{root} must not depend on {front_end} (through: {:?})",
                closure
                    .iter()
                    .filter(|n| n.starts_with("sluice"))
                    .collect::<Vec<_>>()
            );
        }
    }
}
