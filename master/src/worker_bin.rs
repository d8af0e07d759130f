//! Where the `sluice-worker` executable is: the process that runs a dataflow (built by
//! the dataflow crate; the `sluice` binary never links timely). Used by `sluice run`
//! and by `sluice worker`, which hands its process over to it.

use std::path::PathBuf;

/// The environment variable naming the worker executable explicitly.
pub const WORKER_BIN_ENV: &str = "SLUICE_WORKER_BIN";

/// The worker executable cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum WorkerBinError {
    /// The running executable's path is unknown.
    #[error("cannot locate the sluice binary: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// Nothing at the expected path.
    #[error("the worker executable {} is missing: build it with `cargo build` (it is part of the workspace) or set {WORKER_BIN_ENV}", .0.display())]
    Missing(PathBuf),
}

/// The `sluice-worker` executable: `$SLUICE_WORKER_BIN` when set, else the
/// `sluice-worker` beside the current executable (an error when it is not there).
pub fn worker_binary() -> Result<PathBuf, WorkerBinError> {
    if let Some(path) = std::env::var_os(WORKER_BIN_ENV) {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().map_err(WorkerBinError::CurrentExe)?;
    let worker = me.with_file_name(format!("sluice-worker{}", std::env::consts::EXE_SUFFIX));
    if worker.is_file() {
        Ok(worker)
    } else {
        Err(WorkerBinError::Missing(worker))
    }
}
