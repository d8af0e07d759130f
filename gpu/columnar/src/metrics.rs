//! [`DeviceMetrics`]: rows evaluated per device and GPU fallbacks, shared by every
//! worker of a run (the dataflow's `Progress` owns one and reports it in its
//! snapshots, hence in the worker's `status.json`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Where a batch was evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Device {
    /// The CPU kernels.
    Cpu,
    /// The CUDA kernels.
    Gpu,
}

/// Counters of the columnar stages. All methods take `&self` (atomics).
#[derive(Debug, Default)]
pub struct DeviceMetrics {
    rows_cpu: AtomicU64,
    rows_gpu: AtomicU64,
    fallbacks: AtomicU64,
    /// Fallbacks by reason class (`no-driver`, `compile`, `launch`, `overflow`, …).
    reasons: Mutex<BTreeMap<String, u64>>,
}

impl DeviceMetrics {
    /// All zero.
    pub fn new() -> Self {
        DeviceMetrics::default()
    }

    /// `rows` rows were evaluated on `device`.
    pub fn add_rows(&self, device: Device, rows: u64) {
        match device {
            Device::Cpu => self.rows_cpu.fetch_add(rows, Ordering::Relaxed),
            Device::Gpu => self.rows_gpu.fetch_add(rows, Ordering::Relaxed),
        };
    }

    /// A batch placed on the GPU went to the CPU instead, for a reason of class `reason`.
    pub fn add_fallback(&self, reason: &str) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.reasons.lock() {
            *m.entry(reason.to_string()).or_default() += 1;
        }
    }

    /// Rows evaluated on the CPU kernels.
    pub fn rows_cpu(&self) -> u64 {
        self.rows_cpu.load(Ordering::Relaxed)
    }

    /// Rows evaluated on the GPU kernels.
    pub fn rows_gpu(&self) -> u64 {
        self.rows_gpu.load(Ordering::Relaxed)
    }

    /// GPU fallbacks so far.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// GPU fallbacks by reason class, in name order.
    pub fn fallback_reasons(&self) -> BTreeMap<String, u64> {
        self.reasons.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let m = DeviceMetrics::new();
        m.add_rows(Device::Cpu, 3);
        m.add_rows(Device::Gpu, 4);
        m.add_fallback("no-driver");
        m.add_fallback("no-driver");
        assert_eq!((m.rows_cpu(), m.rows_gpu(), m.fallbacks()), (3, 4, 2));
        assert_eq!(m.fallback_reasons().get("no-driver"), Some(&2));
    }
}
