//! The correctness oracle: runs every query of `tests/oracle/queries/*.sql` on the sluice binary
//! (with 1 worker, and 2 processes of 2 workers each) and on DuckDB over the same files, and requires equal results; also
//! runs the `tests/oracle/errors/*.sql` cases, which must fail with exit code 2 and a position.
//!
//! Needs the sluice binary (`cargo build --bin sluice`, or set `SLUICE_BIN`) and a Python with
//! the `duckdb` package (`SLUICE_PYTHON`, else `<workspace>/.venv/bin/python3`, else `python3`).
//! Extra arguments for `oracle.py` can be given in `SLUICE_ORACLE_ARGS` (whitespace separated,
//! e.g. `--filter tpch_ --jobs 4`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sluice_tests::{sluice_bin, workspace_root};

fn python(root: &Path) -> PathBuf {
    if let Some(p) = env::var_os("SLUICE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root.join(".venv").join("bin").join("python3");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("python3")
}

#[test]
fn oracle_suite_matches_duckdb() -> Result<()> {
    let root = workspace_root();
    let sluice = sluice_bin();
    let python = python(&root);
    let script = root.join("tests").join("oracle").join("oracle.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("--sluice")
        .arg(&sluice)
        .args(["--workers", "1", "2x2"]);
    if let Ok(extra) = env::var("SLUICE_ORACLE_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    let out = cmd.output().with_context(|| {
        format!(
            "could not run {} {} (set SLUICE_PYTHON to a python3 that has the duckdb package)",
            python.display(),
            script.display()
        )
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    if !out.status.success() {
        let summary = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("oracle: "))
            .unwrap_or("oracle: no summary line (did python fail to start?)");
        bail!("the oracle suite failed ({summary}); see the output above");
    }
    Ok(())
}
