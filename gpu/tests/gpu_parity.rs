//! GPU parity: on random batches with NULLs and extreme values, the GPU kernels give the
//! CPU kernels' results (values, NULLs and error-ness) for random supported `Calc`s, and
//! the GPU group-by / join probe give their CPU twins' results.
//!
//! Kernel launches need a CUDA driver and device. Without one, those tests print a
//! `SKIPPED: …` line with the reason and return; everything else runs on any machine:
//! the CPU twins against naive oracles, code generation for every random expression
//! (plus a syntactic check of the CUDA source), and the fallback of `SLUICE_GPU=force`
//! with no driver (CPU results, a counted fallback).

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use proptest::prelude::*;
use sluice_catalogs::{Field, Schema, SqlType};
use sluice_expr::gpu_support::expr_gpu_support;
use sluice_expr::{AggFunc, AggregateCall, BinaryOp, Datum, ScalarExpr, F64};
use sluice_gpu::codegen::{generate_calc, sanity_check};
use sluice_gpu::{
    batch_to_rows, gpu_available, group_by_cpu, join_probe_cpu, partial_aggregate_twin, AggInput,
    ColumnarKernels, CpuKernels, DeviceMetrics, GpuConfig, GpuKernels, GpuMode,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Column types of every generated batch.
const TYPES: [SqlType; 6] = [
    SqlType::BigInt,
    SqlType::Int,
    SqlType::Double,
    SqlType::Boolean,
    SqlType::Date,
    SqlType::BigInt,
];

/// A tiny deterministic generator (xorshift), seeded by proptest.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn int(&mut self) -> i64 {
        match self.below(8) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => 0,
            3 => -1,
            4 => i64::from(i32::MAX),
            _ => self.below(21) as i64 - 10,
        }
    }
    fn int32(&mut self) -> i32 {
        match self.below(6) {
            0 => i32::MIN,
            1 => i32::MAX,
            _ => self.below(21) as i32 - 10,
        }
    }
    fn double(&mut self) -> f64 {
        match self.below(10) {
            0 => f64::NAN,
            1 => -0.0,
            2 => f64::INFINITY,
            3 => 0.0,
            4 => 1e308,
            _ => (self.below(41) as f64 - 20.0) / 4.0,
        }
    }
}

fn batch(rng: &mut Rng, rows: usize) -> RecordBatch {
    let null = |rng: &mut Rng| rng.chance(5);
    let mut cols: Vec<ArrayRef> = Vec::new();
    for ty in TYPES {
        let a: ArrayRef = match ty {
            SqlType::BigInt => Arc::new(Int64Array::from_iter(
                (0..rows).map(|_| (!null(rng)).then(|| rng.int())),
            )),
            SqlType::Int => Arc::new(Int32Array::from_iter(
                (0..rows).map(|_| (!null(rng)).then(|| rng.int32())),
            )),
            SqlType::Double => Arc::new(Float64Array::from_iter(
                (0..rows).map(|_| (!null(rng)).then(|| rng.double())),
            )),
            SqlType::Boolean => Arc::new(BooleanArray::from_iter(
                (0..rows).map(|_| (!null(rng)).then(|| rng.chance(2))),
            )),
            _ => Arc::new(Date32Array::from_iter(
                (0..rows).map(|_| (!null(rng)).then(|| rng.int32() / 3)),
            )),
        };
        cols.push(a);
    }
    // Slice, so that offsets into values and validity bitmaps are exercised.
    let b = RecordBatch::try_new(schema().to_arrow(), cols).unwrap();
    let off = (rows / 3).min(5);
    b.slice(off, rows - off)
}

fn schema() -> Schema {
    Schema::new(
        TYPES
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("c{i}"), *t))
            .collect(),
    )
}

fn literal(rng: &mut Rng, ty: SqlType) -> ScalarExpr {
    if rng.chance(8) {
        return ScalarExpr::Literal(Datum::Null, ty);
    }
    let d = match ty {
        SqlType::BigInt => Datum::Int(rng.int()),
        SqlType::Int => Datum::Int(i64::from(rng.int32())),
        SqlType::Double => Datum::Float(F64(rng.double())),
        SqlType::Boolean => Datum::Bool(rng.chance(2)),
        _ => Datum::Date(rng.int32() / 3),
    };
    ScalarExpr::Literal(d, ty)
}

/// A random expression of type `ty`, supported on the GPU.
fn expr(rng: &mut Rng, ty: SqlType, depth: u32) -> ScalarExpr {
    let leaf = depth == 0 || rng.chance(3);
    if leaf {
        let cols: Vec<usize> = (0..TYPES.len()).filter(|&i| TYPES[i] == ty).collect();
        if !cols.is_empty() && !rng.chance(4) {
            return ScalarExpr::Column(cols[rng.below(cols.len() as u64) as usize]);
        }
        return literal(rng, ty);
    }
    let d = depth - 1;
    match ty {
        SqlType::Boolean => {
            let t = [
                SqlType::BigInt,
                SqlType::Int,
                SqlType::Double,
                SqlType::Boolean,
                SqlType::Date,
            ][rng.below(5) as usize];
            match rng.below(6) {
                0 => {
                    let ops = [
                        BinaryOp::Eq,
                        BinaryOp::NotEq,
                        BinaryOp::Lt,
                        BinaryOp::LtEq,
                        BinaryOp::Gt,
                        BinaryOp::GtEq,
                    ];
                    let op = ops[rng.below(6) as usize];
                    ScalarExpr::binary(op, expr(rng, t, d), expr(rng, t, d))
                }
                1 => ScalarExpr::binary(BinaryOp::And, expr(rng, ty, d), expr(rng, ty, d)),
                2 => ScalarExpr::binary(BinaryOp::Or, expr(rng, ty, d), expr(rng, ty, d)),
                3 => ScalarExpr::Not(Box::new(expr(rng, ty, d))),
                4 => ScalarExpr::IsNull {
                    expr: Box::new(expr(rng, t, d)),
                    negated: rng.chance(2),
                },
                _ => ScalarExpr::InList {
                    expr: Box::new(expr(rng, t, d)),
                    list: (0..1 + rng.below(3)).map(|_| expr(rng, t, 0)).collect(),
                    negated: rng.chance(2),
                },
            }
        }
        SqlType::BigInt | SqlType::Int | SqlType::Double => match rng.below(4) {
            0 => ScalarExpr::Negate(Box::new(expr(rng, ty, d))),
            1 if ty != SqlType::Int => ScalarExpr::Cast {
                expr: Box::new(expr(rng, SqlType::Int, d)),
                to: ty,
            },
            _ => {
                let ops = [
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Div,
                    BinaryOp::Mod,
                ];
                let op = ops[rng.below(5) as usize];
                ScalarExpr::binary(op, expr(rng, ty, d), expr(rng, ty, d))
            }
        },
        _ => literal(rng, ty),
    }
}

fn same_result(
    a: &Result<RecordBatch, sluice_gpu::KernelError>,
    b: &Result<RecordBatch, sluice_gpu::KernelError>,
    out_types: &[SqlType],
) -> Result<(), String> {
    match (a, b) {
        (Ok(x), Ok(y)) => {
            let (rx, ry) = (
                batch_to_rows(x, out_types).map_err(|e| e.to_string())?,
                batch_to_rows(y, out_types).map_err(|e| e.to_string())?,
            );
            if rx == ry {
                Ok(())
            } else {
                Err(format!("rows differ:\n{rx:?}\n{ry:?}"))
            }
        }
        (Err(_), Err(_)) => Ok(()),
        (x, y) => Err(format!(
            "error-ness differs: {:?} vs {:?}",
            x.is_ok(),
            y.is_ok()
        )),
    }
}

fn forced() -> GpuKernels {
    GpuKernels::new(GpuConfig {
        mode: GpuMode::Force,
        min_batch_rows: 0,
        job_gpus: 1,
    })
}

fn skip_reason() -> Option<String> {
    gpu_available().err().map(|e| e.to_string())
}

/// A random supported Calc: predicate and two projections.
fn random_calc(rng: &mut Rng) -> (ScalarExpr, Vec<ScalarExpr>) {
    let pred = expr(rng, SqlType::Boolean, 3);
    let t = [SqlType::BigInt, SqlType::Int, SqlType::Double][rng.below(3) as usize];
    let project = vec![
        expr(rng, t, 3),
        ScalarExpr::Column(3),
        expr(rng, SqlType::Boolean, 2),
    ];
    (pred, project)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Everything the generator makes is GPU-eligible and generates valid-looking CUDA.
    #[test]
    fn every_supported_calc_generates_a_kernel(seed in 1u64..u64::MAX) {
        let mut rng = Rng(seed);
        let (pred, project) = random_calc(&mut rng);
        let types = TYPES.to_vec();
        prop_assert_eq!(expr_gpu_support(&pred, &types), Ok(()));
        let p = generate_calc(Some(&pred), Some(&project), &types).unwrap();
        let computed = project.iter().filter(|e| !matches!(e, ScalarExpr::Column(_))).count();
        prop_assert_eq!(p.outputs.len(), computed);
        prop_assert!(sanity_check(&p.source).is_ok(), "{}", p.source);
    }

    /// GPU (forced) and CPU agree; without a GPU this checks the fallback path instead.
    #[test]
    fn gpu_calc_matches_cpu(seed in 1u64..u64::MAX, rows in 1usize..200) {
        let mut rng = Rng(seed);
        let b = batch(&mut rng, rows);
        let (pred, project) = random_calc(&mut rng);
        let input = schema();
        let types = input.types();
        let out_types: Vec<SqlType> = project.iter().map(|e| e.ty(&types)).collect();
        let output = Schema::new(out_types.iter().enumerate().map(|(i, t)| Field::new(format!("o{i}"), *t)).collect());
        let cpu = CpuKernels.calc(Some(&pred), Some(&project), &b, &input, &output);
        let gpu = forced().calc(Some(&pred), Some(&project), &b, &input, &output);
        prop_assert_eq!(same_result(&gpu, &cpu, &out_types), Ok(()));
        let cpu_f = CpuKernels.filter(&pred, &b, &types);
        let gpu_f = forced().filter(&pred, &b, &types);
        prop_assert_eq!(same_result(&gpu_f, &cpu_f, &types), Ok(()));
    }

    /// The CPU twin of the group-by against a naive oracle.
    #[test]
    fn group_by_cpu_matches_oracle(seed in 1u64..u64::MAX, rows in 0usize..300) {
        let mut rng = Rng(seed);
        let keys: Vec<Option<i64>> = (0..rows).map(|_| (!rng.chance(6)).then(|| rng.below(7) as i64 - 3)).collect();
        let vals: Vec<Option<i64>> = (0..rows).map(|_| (!rng.chance(4)).then(|| rng.int() / 4)).collect();
        let k: ArrayRef = Arc::new(Int64Array::from(keys.clone()));
        let v: ArrayRef = Arc::new(Int64Array::from(vals.clone()));
        let aggs = all_aggs(&v);
        let out = group_by_cpu(&k, &aggs);
        match oracle_group_by(&keys, &vals) {
            // Some group's SUM leaves BIGINT: an error, as in the row engine.
            None => prop_assert!(out.is_err()),
            Some(oracle) => {
                let out = out.unwrap();
                prop_assert_eq!(rendered(&out.keys, &out.aggs), oracle);
            }
        }
    }

    /// The CPU twin of the join probe against a nested loop.
    #[test]
    fn join_probe_cpu_matches_nested_loop(seed in 1u64..u64::MAX, nb in 0usize..60, np in 0usize..60) {
        let mut rng = Rng(seed);
        let mut side = |n: usize| (0..n).map(|_| (!rng.chance(5)).then(|| rng.below(6) as i64)).collect::<Vec<_>>();
        let (b, p) = (side(nb), side(np));
        let m = join_probe_cpu(&(Arc::new(Int64Array::from(b.clone())) as ArrayRef), &(Arc::new(Int64Array::from(p.clone())) as ArrayRef)).unwrap();
        let got: Vec<(u32, u32)> = m.probe.values().iter().copied().zip(m.build.values().iter().copied()).collect();
        let mut want = Vec::new();
        for (i, pk) in p.iter().enumerate() {
            for (j, bk) in b.iter().enumerate() {
                if pk.is_some() && pk == bk {
                    want.push((i as u32, j as u32));
                }
            }
        }
        prop_assert_eq!(got, want);
    }

    /// Pre-aggregation (the partial rows below a `Reduce`): the CPU kernels, the CPU
    /// twin of the GPU's (group-by states turned into partial rows by the GPU path's
    /// host code) and forced GPU kernels (with a GPU; else their fallback) give the
    /// same partial rows, in any group order.
    #[test]
    fn partial_aggregates_agree_on_every_device(seed in 1u64..u64::MAX, rows in 1usize..300, key in 0usize..3) {
        let mut rng = Rng(seed);
        let b = batch(&mut rng, rows);
        let types = TYPES.to_vec();
        let group_by = [[1usize], [4], [5]][key];
        let call = |func, arg| AggregateCall { func, arg, distinct: false, ty: SqlType::BigInt };
        let aggs = vec![
            call(AggFunc::Count, None),
            call(AggFunc::Count, Some(2)),
            call(AggFunc::Sum, Some(0)),
            call(AggFunc::Avg, Some(1)),
            call(AggFunc::Min, Some(4)),
            call(AggFunc::Max, Some(0)),
        ];
        let partial_types = sluice_expr::partial::partial_types(&types, &group_by, &aggs);
        let rows_of = |b: &RecordBatch| {
            let mut r = batch_to_rows(b, &partial_types).unwrap();
            r.sort();
            r
        };
        let metrics = DeviceMetrics::new();
        let cpu = rows_of(&CpuKernels.partial_aggregate(&b, &group_by, &aggs, &types, &metrics).unwrap());
        let twin = partial_aggregate_twin(&b, &group_by, &aggs, &types).unwrap();
        prop_assert!(twin.is_some(), "the group-by kernel takes this shape");
        prop_assert_eq!(&rows_of(&twin.unwrap()), &cpu);
        let gpu = forced().partial_aggregate(&b, &group_by, &aggs, &types, &metrics).unwrap();
        prop_assert_eq!(&rows_of(&gpu), &cpu);
        // Every input row is counted once per call, on the device that took it.
        prop_assert_eq!(metrics.rows_cpu() + metrics.rows_gpu(), 2 * b.num_rows() as u64);
    }

    /// GPU group-by and join probe against their CPU twins (skipped without a GPU).
    #[test]
    fn gpu_group_by_and_join_match_cpu(seed in 1u64..u64::MAX, rows in 0usize..2000) {
        if skip_reason().is_some() {
            return Ok(());
        }
        let mut rng = Rng(seed);
        let keys: Vec<Option<i64>> = (0..rows).map(|_| (!rng.chance(6)).then(|| rng.int())).collect();
        let vals: Vec<Option<i64>> = (0..rows).map(|_| (!rng.chance(4)).then(|| rng.int())).collect();
        let k: ArrayRef = Arc::new(Int64Array::from(keys.clone()));
        let v: ArrayRef = Arc::new(Int64Array::from(vals));
        let aggs = all_aggs(&v);
        let gpu = forced().group_by(&k, &aggs, None);
        let cpu = group_by_cpu(&k, &aggs);
        prop_assert_eq!(format!("{gpu:?}"), format!("{cpu:?}"));
        let p: ArrayRef = Arc::new(Int64Array::from(keys.iter().rev().copied().collect::<Vec<_>>()));
        prop_assert_eq!(forced().join_probe(&k, &p, None).unwrap(), join_probe_cpu(&k, &p).unwrap());
    }
}

fn all_aggs(v: &ArrayRef) -> Vec<AggInput> {
    [
        (AggFunc::Count, None),
        (AggFunc::Count, Some(v.clone())),
        (AggFunc::Sum, Some(v.clone())),
        (AggFunc::Min, Some(v.clone())),
        (AggFunc::Max, Some(v.clone())),
        (AggFunc::Avg, Some(v.clone())),
    ]
    .into_iter()
    .map(|(func, arg)| AggInput { func, arg })
    .collect()
}

type GroupRow = (Option<i64>, Vec<String>);

fn oracle_group_by(keys: &[Option<i64>], vals: &[Option<i64>]) -> Option<Vec<GroupRow>> {
    let mut groups: BTreeMap<Option<i64>, Vec<Option<i64>>> = BTreeMap::new();
    for (k, v) in keys.iter().zip(vals) {
        groups.entry(*k).or_default().push(*v);
    }
    groups
        .into_iter()
        .map(|(k, vs)| {
            let nn: Vec<i64> = vs.iter().flatten().copied().collect();
            let sum: i128 = nn.iter().map(|&x| i128::from(x)).sum();
            i64::try_from(sum).ok()?;
            let opt = |o: Option<String>| o.unwrap_or_else(|| "NULL".to_string());
            Some((
                k,
                vec![
                    vs.len().to_string(),
                    nn.len().to_string(),
                    opt((!nn.is_empty()).then(|| sum.to_string())),
                    opt(nn.iter().min().map(|x| x.to_string())),
                    opt(nn.iter().max().map(|x| x.to_string())),
                    opt((!nn.is_empty()).then(|| (sum as f64 / nn.len() as f64).to_string())),
                ],
            ))
        })
        .collect()
}

fn rendered(keys: &ArrayRef, aggs: &[ArrayRef]) -> Vec<GroupRow> {
    let k = keys.as_any().downcast_ref::<Int64Array>().unwrap();
    (0..k.len())
        .map(|g| {
            let key = k.is_valid(g).then(|| k.value(g));
            let vals = aggs
                .iter()
                .map(|a| {
                    if a.is_null(g) {
                        return "NULL".to_string();
                    }
                    if let Some(i) = a.as_any().downcast_ref::<Int64Array>() {
                        i.value(g).to_string()
                    } else {
                        a.as_any()
                            .downcast_ref::<Float64Array>()
                            .unwrap()
                            .value(g)
                            .to_string()
                    }
                })
                .collect();
            (key, vals)
        })
        .collect()
}

#[test]
fn gpu_launch_tests_say_why_they_skip() {
    match skip_reason() {
        Some(why) => eprintln!("SKIPPED: GPU kernel launches in gpu_parity ({why}); CPU twins, codegen and fallback still tested"),
        None => eprintln!("GPU present: {:?}", sluice_gpu::gpu_name()),
    }
}

#[test]
fn forced_gpu_without_a_driver_falls_back_and_counts() {
    let mut rng = Rng(42);
    let b = batch(&mut rng, 100);
    let input = schema();
    let pred = ScalarExpr::binary(
        BinaryOp::Gt,
        ScalarExpr::Column(0),
        ScalarExpr::Literal(Datum::Int(0), SqlType::BigInt),
    );
    let metrics = DeviceMetrics::new();
    let k = forced();
    let got = k.calc_metered(Some(&pred), None, &b, &input, &input, &metrics);
    let want = CpuKernels.calc(Some(&pred), None, &b, &input, &input);
    assert_eq!(same_result(&got, &want, &input.types()), Ok(()));
    match skip_reason() {
        Some(why) => {
            eprintln!("SKIPPED: GPU side of the fallback test ({why}); checking the CPU fallback");
            assert_eq!(metrics.fallbacks(), 1);
            assert_eq!(metrics.rows_cpu(), b.num_rows() as u64);
            assert_eq!(metrics.rows_gpu(), 0);
            assert_eq!(metrics.fallback_reasons().len(), 1);
        }
        None => {
            assert_eq!(metrics.fallbacks(), 0);
            assert_eq!(metrics.rows_gpu(), b.num_rows() as u64);
        }
    }
}

#[test]
fn auto_and_off_never_touch_the_gpu_for_small_batches_or_no_gpus() {
    let mut rng = Rng(7);
    let b = batch(&mut rng, 50);
    let input = schema();
    let pred = ScalarExpr::IsNull {
        expr: Box::new(ScalarExpr::Column(2)),
        negated: true,
    };
    for config in [
        GpuConfig {
            mode: GpuMode::Auto,
            min_batch_rows: 1 << 16,
            job_gpus: 1,
        },
        GpuConfig {
            mode: GpuMode::Auto,
            min_batch_rows: 0,
            job_gpus: 0,
        },
        GpuConfig {
            mode: GpuMode::Off,
            min_batch_rows: 0,
            job_gpus: 4,
        },
    ] {
        let metrics = DeviceMetrics::new();
        let k = GpuKernels::new(config.clone());
        k.calc_metered(Some(&pred), None, &b, &input, &input, &metrics)
            .unwrap();
        assert_eq!(
            (metrics.rows_cpu(), metrics.rows_gpu(), metrics.fallbacks()),
            (b.num_rows() as u64, 0, 0),
            "{config:?}"
        );
    }
}

#[test]
fn unsupported_expressions_stay_on_the_cpu_without_fallbacks() {
    let input = Schema::new(vec![Field::new("s", SqlType::Varchar)]);
    let b = RecordBatch::try_new(
        input.to_arrow(),
        vec![Arc::new(StringArray::from(vec![Some("a"), None, Some("b")])) as ArrayRef],
    )
    .unwrap();
    let pred = ScalarExpr::IsNull {
        expr: Box::new(ScalarExpr::binary(
            BinaryOp::Concat,
            ScalarExpr::Column(0),
            ScalarExpr::Column(0),
        )),
        negated: false,
    };
    let metrics = DeviceMetrics::new();
    let out = forced()
        .calc_metered(Some(&pred), None, &b, &input, &input, &metrics)
        .unwrap();
    assert_eq!(out.num_rows(), 1);
    assert_eq!((metrics.rows_cpu(), metrics.fallbacks()), (3, 0));
}

#[test]
fn string_keys_group_through_dictionary_codes() {
    let k: ArrayRef = Arc::new(StringArray::from(vec![
        Some("b"),
        None,
        Some("a"),
        Some("b"),
        None,
    ]));
    let v: ArrayRef = Arc::new(Int32Array::from(vec![
        Some(1),
        Some(2),
        None,
        Some(4),
        Some(5),
    ]));
    let aggs = vec![
        AggInput {
            func: AggFunc::Count,
            arg: None,
        },
        AggInput {
            func: AggFunc::Sum,
            arg: Some(v.clone()),
        },
        AggInput {
            func: AggFunc::Max,
            arg: Some(v),
        },
    ];
    let cpu = group_by_cpu(&k, &aggs).unwrap();
    let keys = cpu.keys.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(
        keys.iter().collect::<Vec<_>>(),
        vec![None, Some("a"), Some("b")]
    );
    let sums = cpu.aggs[1].as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(
        sums.iter().collect::<Vec<_>>(),
        vec![Some(7), None, Some(5)]
    );
    // MAX keeps the argument's type.
    assert!(cpu.aggs[2].as_any().downcast_ref::<Int32Array>().is_some());
    // Through GpuKernels (GPU or, without one, the CPU twin) the result is the same.
    assert_eq!(forced().group_by(&k, &aggs, None).unwrap(), cpu);
}

#[test]
fn sum_overflow_is_an_error_on_both_paths() {
    let k: ArrayRef = Arc::new(Int64Array::from(vec![1, 1]));
    let v: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 1]));
    let aggs = vec![AggInput {
        func: AggFunc::Sum,
        arg: Some(v),
    }];
    assert!(group_by_cpu(&k, &aggs).is_err());
    assert!(forced().group_by(&k, &aggs, None).is_err());
}
