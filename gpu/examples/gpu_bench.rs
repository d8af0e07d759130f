//! `gpu_bench`: filter + hash group-by on the GPU against the CPU kernels.
//!
//! ```text
//! cargo run --release -p sluice-gpu --example gpu_bench -- --rows 100000000
//! ```
//!
//! Per row: a BIGINT key (1,000 groups by default) and a BIGINT value with 1% NULLs.
//! The query is `SELECT k, COUNT(*), SUM(v), MIN(v), MAX(v), AVG(v) FROM t WHERE v > 0
//! GROUP BY k`: the filter through `ColumnarKernels::filter`, the group-by through
//! `GpuKernels::group_by` (forced to the GPU) or its CPU twin, in batches of `--batch`
//! rows. Reported: rows/s per device and the speedup; the GPU's achieved GB/s (input
//! bytes over GPU time, transfers included) against the measured host→device
//! bandwidth (pageable and pinned) and device memcpy bandwidth; and, over batch sizes
//! from 1 Ki to 16 Mi rows, the smallest batch where the GPU wins (the value to put in
//! `SLUICE_GPU_MIN_ROWS` / `GPU_MIN_BATCH_ROWS`). Without a GPU only the CPU path runs.

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use sluice_catalogs::{Field, Schema, SqlType};
use sluice_expr::{AggFunc, BinaryOp, Datum, ScalarExpr};
use sluice_gpu::{
    gpu_available, gpu_device, gpu_name, group_by_cpu, AggInput, ColumnarKernels, CpuKernels,
    GpuConfig, GpuKernels, GpuMode,
};
use std::sync::Arc;
use std::time::Instant;

struct Args {
    rows: usize,
    batch: usize,
    groups: u64,
    max_crossover: usize,
}

fn args() -> Args {
    let mut a = Args {
        rows: 10_000_000,
        batch: 1 << 24,
        groups: 1000,
        max_crossover: 1 << 24,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv
            .get(i + 1)
            .and_then(|s| s.replace('_', "").parse::<usize>().ok());
        match (argv[i].as_str(), v) {
            ("--rows", Some(v)) => a.rows = v,
            ("--batch", Some(v)) => a.batch = v.max(1),
            ("--groups", Some(v)) => a.groups = v.max(1) as u64,
            ("--max-crossover", Some(v)) => a.max_crossover = v,
            (other, _) => {
                eprintln!("usage: gpu_bench [--rows N] [--batch N] [--groups N] [--max-crossover N] (bad: {other})");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a
}

fn data(rows: usize, groups: u64, seed: u64) -> RecordBatch {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut k = Vec::with_capacity(rows);
    let mut v = Vec::with_capacity(rows);
    for _ in 0..rows {
        let r = next();
        k.push((r % groups) as i64);
        v.push(((r >> 32) % 100 != 0).then_some(((r >> 8) % 2001) as i64 - 1000));
    }
    let k: ArrayRef = Arc::new(Int64Array::from(k));
    let v: ArrayRef = Arc::new(Int64Array::from(v));
    RecordBatch::try_new(schema().to_arrow(), vec![k, v]).expect("bench batch")
}

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("k", SqlType::BigInt),
        Field::new("v", SqlType::BigInt),
    ])
}

fn predicate() -> ScalarExpr {
    ScalarExpr::binary(
        BinaryOp::Gt,
        ScalarExpr::Column(1),
        ScalarExpr::Literal(Datum::Int(0), SqlType::BigInt),
    )
}

enum Path<'a> {
    Cpu,
    Gpu(&'a GpuKernels),
}

/// Filter + group-by over `batch`; returns seconds.
fn run(path: &Path, batch: &RecordBatch) -> f64 {
    let types = schema().types();
    let t = Instant::now();
    let kept = match path {
        Path::Cpu => CpuKernels.filter(&predicate(), batch, &types),
        Path::Gpu(g) => g.filter(&predicate(), batch, &types),
    }
    .expect("filter");
    let v = kept.column(1).clone();
    let aggs: Vec<AggInput> = [
        AggFunc::Count,
        AggFunc::Sum,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::Avg,
    ]
    .into_iter()
    .map(|func| AggInput {
        func,
        arg: (func != AggFunc::Count).then(|| v.clone()),
    })
    .collect();
    let out = match path {
        Path::Cpu => group_by_cpu(kept.column(0), &aggs),
        Path::Gpu(g) => g.group_by(kept.column(0), &aggs, None),
    }
    .expect("group-by");
    std::hint::black_box(out);
    t.elapsed().as_secs_f64()
}

fn main() {
    let a = args();
    let gpu = gpu_available();
    println!(
        "gpu_bench: rows={} batch={} groups={}",
        a.rows, a.batch, a.groups
    );
    match &gpu {
        Ok(()) => println!("GPU: {}", gpu_name().unwrap_or_default()),
        Err(e) => println!("GPU unavailable ({e}); running the CPU path only"),
    }
    let kernels = GpuKernels::new(GpuConfig {
        mode: GpuMode::Force,
        min_batch_rows: 0,
        job_gpus: 1,
    });
    let batch_rows = a.batch.min(a.rows).max(1);
    let template = data(batch_rows, a.groups, 0x5eed);
    let batches = a.rows.div_ceil(batch_rows);
    let bytes_per_row = 16.0 + 2.0 / 8.0;
    let time = |path: &Path| -> f64 {
        // Warm-up (NVRTC compile, pool), then the measured pass.
        run(path, &template.slice(0, batch_rows.min(1 << 16)));
        (0..batches)
            .map(|b| {
                let n = (a.rows - b * batch_rows).min(batch_rows);
                run(path, &template.slice(0, n))
            })
            .sum()
    };
    let cpu_s = time(&Path::Cpu);
    let rows = a.rows as f64;
    println!("cpu: {:.3} s, {:.1} M rows/s", cpu_s, rows / cpu_s / 1e6);
    if gpu.is_err() {
        return;
    }
    let gpu_s = time(&Path::Gpu(&kernels));
    println!(
        "gpu: {:.3} s, {:.1} M rows/s, speedup {:.2}x",
        gpu_s,
        rows / gpu_s / 1e6,
        cpu_s / gpu_s
    );
    let achieved = rows * bytes_per_row / gpu_s / 1e9;
    match gpu_device().and_then(|d| d.measure_bandwidth(256 << 20)) {
        Ok([pageable, pinned, dtoh, dtod]) => {
            println!(
                "bandwidth GB/s: host->device pageable {pageable:.1}, pinned {pinned:.1}; device->host {dtoh:.1}; device memcpy {dtod:.1}"
            );
            println!(
                "gpu achieved {achieved:.2} GB/s of input = {:.0}% of pinned host->device, {:.1}% of device memcpy",
                100.0 * achieved / pinned,
                100.0 * achieved / dtod
            );
        }
        Err(e) => println!("bandwidth measurement failed: {e}"),
    }
    println!("crossover (median of 3 runs per size):");
    let mut winner = None;
    let mut n = 1024;
    while n <= a.max_crossover.min(batch_rows) {
        let b = template.slice(0, n);
        let med = |p: &Path| {
            let mut t: Vec<f64> = (0..3).map(|_| run(p, &b)).collect();
            t.sort_by(f64::total_cmp);
            t[1]
        };
        let (c, g) = (med(&Path::Cpu), med(&Path::Gpu(&kernels)));
        println!(
            "  {n:>9} rows: cpu {:>9.3} ms  gpu {:>9.3} ms",
            c * 1e3,
            g * 1e3
        );
        if g < c && winner.is_none() {
            winner = Some(n);
        }
        n *= 4;
    }
    match winner {
        Some(n) => {
            println!("GPU starts winning at about {n} rows per batch (set SLUICE_GPU_MIN_ROWS)")
        }
        None => println!("GPU did not win at any measured batch size"),
    }
}
