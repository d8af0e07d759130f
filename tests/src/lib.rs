//! Helpers for Sluice's end-to-end tests (in `tests/tests/`): they drive the real
//! `sluice` binary as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `sluice` binary: `$SLUICE_BIN`, else `$CARGO_TARGET_DIR/debug/sluice`, else
/// `<workspace>/target/debug/sluice`. Panics with instructions when it is missing.
pub fn sluice_bin() -> PathBuf {
    let candidates: Vec<PathBuf> = [
        std::env::var_os("SLUICE_BIN").map(PathBuf::from),
        std::env::var_os("CARGO_TARGET_DIR").map(|d| workspace_root().join(d).join("debug/sluice")),
        Some(workspace_root().join("target/debug/sluice")),
    ]
    .into_iter()
    .flatten()
    .collect();
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!("the sluice binary was not found (looked at {candidates:?}): run `cargo build --bin sluice` first, or use `bash .ci/test`");
}

/// Run `sluice` with these arguments in `dir`.
pub fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(sluice_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("failed to start the sluice binary")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The metrics JSON line `sluice run --metrics` prints last on standard error.
pub fn metrics(o: &Output) -> serde_json::Value {
    let err = stderr(o);
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no metrics line in: {err}"));
    serde_json::from_str(line).expect("metrics line is not JSON")
}
