//! Runtime placement: the CPU or the GPU, per batch of an eligible operator.
//!
//! The compiler marks operators GPU-eligible (`sluice_compiler::placement`); at run
//! time [`place`] decides each batch, a pure function of:
//!
//! | input | effect |
//! |---|---|
//! | `SLUICE_GPU=off` | always the CPU |
//! | `SLUICE_GPU=force` | the GPU for every eligible batch, whatever its size or the job's `gpus`; with no usable GPU each batch runs on the CPU and counts a fallback (logged once per reason) — a visible fallback rather than an error, so a forced job still produces its results |
//! | `SLUICE_GPU=auto` (default) | the GPU when the job asked for `resources.gpus > 0`, a GPU is usable, and the batch has at least [`GPU_MIN_BATCH_ROWS`] rows |
//!
//! [`GPU_MIN_BATCH_ROWS`] is the batch size where the GPU starts winning. It is **to be
//! measured on a GPU** with `bench/gpu` (the crossover that benchmark reports); 64 Ki
//! rows is the starting value, overridable with `SLUICE_GPU_MIN_ROWS`. Note that the
//! dataflow's default source batch is 8192 rows, so under `auto` a job must also raise
//! its batch size for the GPU to be used.

use sluice_columnar::Device;

/// Batches smaller than this stay on the CPU under `SLUICE_GPU=auto`. To be measured
/// on a GPU (`bench/gpu` reports the crossover); override with `SLUICE_GPU_MIN_ROWS`.
pub const GPU_MIN_BATCH_ROWS: usize = 64 * 1024;

/// The `SLUICE_GPU` override.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuMode {
    /// Never use the GPU.
    Off,
    /// Use it when present, asked for and worth it (the default).
    #[default]
    Auto,
    /// Use it for every eligible batch (fallback to the CPU, counted, if it fails).
    Force,
}

impl GpuMode {
    /// Parses `off`, `auto` or `force` (case-insensitive); empty is `auto`.
    pub fn parse(s: &str) -> Result<GpuMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(GpuMode::Auto),
            "off" | "0" | "false" => Ok(GpuMode::Off),
            "force" | "on" => Ok(GpuMode::Force),
            other => Err(format!("SLUICE_GPU={other}: expected off, auto or force")),
        }
    }
}

/// The runtime placement settings of one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuConfig {
    /// `SLUICE_GPU`.
    pub mode: GpuMode,
    /// Smallest batch placed on the GPU under `auto`.
    pub min_batch_rows: usize,
    /// The job's `resources.gpus`.
    pub job_gpus: u32,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            mode: GpuMode::Auto,
            min_batch_rows: GPU_MIN_BATCH_ROWS,
            job_gpus: 0,
        }
    }
}

impl GpuConfig {
    /// The settings for a job asking for `job_gpus` GPUs, from `SLUICE_GPU` and
    /// `SLUICE_GPU_MIN_ROWS`; a bad value is an error (the worker reports it).
    pub fn from_env(job_gpus: u32) -> Result<GpuConfig, String> {
        let var = |k: &str| std::env::var(k).ok();
        Self::from_vars(job_gpus, var("SLUICE_GPU"), var("SLUICE_GPU_MIN_ROWS"))
    }

    /// [`GpuConfig::from_env`] with the variables given (for tests).
    pub fn from_vars(
        job_gpus: u32,
        mode: Option<String>,
        min_rows: Option<String>,
    ) -> Result<GpuConfig, String> {
        let mode = GpuMode::parse(mode.as_deref().unwrap_or(""))?;
        let min_batch_rows = match min_rows {
            None => GPU_MIN_BATCH_ROWS,
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("SLUICE_GPU_MIN_ROWS={s}: expected a row count"))?,
        };
        Ok(GpuConfig {
            mode,
            min_batch_rows,
            job_gpus,
        })
    }

    /// True when this job may want a GPU at all (so the device is worth opening).
    pub fn wants_gpu(&self) -> bool {
        match self.mode {
            GpuMode::Off => false,
            GpuMode::Force => true,
            GpuMode::Auto => self.job_gpus > 0,
        }
    }
}

/// Where one batch goes, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The device chosen.
    pub device: Device,
    /// Why (for logs and tests).
    pub reason: String,
}

fn cpu(reason: impl Into<String>) -> Decision {
    Decision {
        device: Device::Cpu,
        reason: reason.into(),
    }
}

/// Places one batch of `rows` rows of an operator whose eligibility is `eligible`;
/// `gpu` says whether a GPU is usable (and why not).
pub fn place(
    config: &GpuConfig,
    eligible: Result<(), &str>,
    gpu: Result<(), &str>,
    rows: usize,
) -> Decision {
    if let Err(why) = eligible {
        return cpu(format!("not GPU-eligible: {why}"));
    }
    match config.mode {
        GpuMode::Off => return cpu("SLUICE_GPU=off"),
        // Forced: try the GPU even when unusable; the caller then counts a fallback.
        GpuMode::Force => {
            return Decision {
                device: Device::Gpu,
                reason: "SLUICE_GPU=force".to_string(),
            }
        }
        GpuMode::Auto => {}
    }
    if config.job_gpus == 0 {
        return cpu("job requested no GPUs");
    }
    if let Err(why) = gpu {
        return cpu(format!("no usable GPU: {why}"));
    }
    if rows < config.min_batch_rows {
        return cpu(format!(
            "batch of {rows} rows below the GPU threshold of {}",
            config.min_batch_rows
        ));
    }
    Decision {
        device: Device::Gpu,
        reason: "eligible, GPU present, batch large enough".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: GpuMode, gpus: u32) -> GpuConfig {
        GpuConfig {
            mode,
            min_batch_rows: 1000,
            job_gpus: gpus,
        }
    }

    #[test]
    fn placement_table() {
        use Device::*;
        let ok = Ok(());
        let none = Err("no CUDA driver");
        let cases = [
            // (mode, gpus, eligible, gpu, rows) → device
            (GpuMode::Auto, 1, ok, ok, 1000, Gpu),
            (GpuMode::Auto, 1, ok, ok, 999, Cpu),
            (GpuMode::Auto, 0, ok, ok, 5000, Cpu),
            (GpuMode::Auto, 1, ok, none, 5000, Cpu),
            (GpuMode::Auto, 1, Err("LIKE"), ok, 5000, Cpu),
            (GpuMode::Off, 1, ok, ok, 5000, Cpu),
            (GpuMode::Force, 0, ok, none, 1, Gpu),
            (GpuMode::Force, 0, Err("LIKE"), ok, 5000, Cpu),
        ];
        for (mode, gpus, eligible, gpu, rows, want) in cases {
            let d = place(&cfg(mode, gpus), eligible, gpu, rows);
            assert_eq!(
                d.device, want,
                "{mode:?} gpus={gpus} {eligible:?} {gpu:?} {rows}: {}",
                d.reason
            );
        }
    }

    #[test]
    fn env_parsing() {
        assert_eq!(
            GpuConfig::from_vars(0, None, None).unwrap(),
            GpuConfig::default()
        );
        let c = GpuConfig::from_vars(2, Some("FORCE".into()), Some("10".into())).unwrap();
        assert_eq!(
            (c.mode, c.min_batch_rows, c.job_gpus),
            (GpuMode::Force, 10, 2)
        );
        assert!(GpuConfig::from_vars(0, Some("sometimes".into()), None).is_err());
        assert!(GpuConfig::from_vars(0, None, Some("many".into())).is_err());
        assert!(!cfg(GpuMode::Auto, 0).wants_gpu());
        assert!(cfg(GpuMode::Auto, 1).wants_gpu());
        assert!(cfg(GpuMode::Force, 0).wants_gpu());
        assert!(!cfg(GpuMode::Off, 4).wants_gpu());
    }
}
