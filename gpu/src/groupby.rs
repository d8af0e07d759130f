//! Hash group-by (one key column; `COUNT`, `SUM`, `MIN`, `MAX`, `AVG`) and hash-join
//! probe (one integer key) over Arrow arrays: the shared host-side halves and the CPU
//! twins of the CUDA kernels in [`crate::cuda`].
//!
//! Both devices produce the same intermediate, [`GroupStates`] (per group: the key, the
//! row count, and per aggregate the non-NULL count, the exact sum as `i128`, the
//! minimum and the maximum), and [`finalize`] turns it into arrays on the host, so the
//! devices agree by construction on everything after accumulation:
//!
//! ```text
//! SUM(x) = Σ x  (exact; an error when it leaves BIGINT)      NULL when count = 0
//! AVG(x) = (Σ x as f64) / (count as f64)                      NULL when count = 0
//! groups ordered by key, the NULL key first
//! ```
//!
//! On the GPU the sum is kept exactly as two 64-bit atomics per group,
//! `Σ (x >> 32)` and `Σ (x & 0xffff_ffff)`, so `Σ x = hi · 2³² + lo` without overflow
//! for fewer than 2³¹ rows per batch.

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use sluice_columnar::KernelError;
use sluice_expr::AggFunc;
use std::collections::HashMap;
use std::sync::Arc;

/// One aggregate of a group-by: the function and its argument (`None`: `COUNT(*)`).
#[derive(Clone, Debug)]
pub struct AggInput {
    /// The function.
    pub func: AggFunc,
    /// The argument column (one value per row), integer-typed except for `COUNT`.
    pub arg: Option<ArrayRef>,
}

/// Per-group accumulator state of one aggregate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggState {
    /// Non-NULL values seen.
    pub count: u64,
    /// Their exact sum.
    pub sum: i128,
    /// Their minimum (`i64::MAX` when none).
    pub min: i64,
    /// Their maximum (`i64::MIN` when none).
    pub max: i64,
}

impl AggState {
    /// The state before any value.
    pub fn empty() -> Self {
        AggState {
            count: 0,
            sum: 0,
            min: i64::MAX,
            max: i64::MIN,
        }
    }

    fn add(&mut self, v: i64) {
        self.count += 1;
        self.sum += i128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

/// Accumulated groups, in no particular order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStates {
    /// The group keys as integers (`None`: the NULL key); dictionary codes for strings.
    pub keys: Vec<Option<i64>>,
    /// Rows per group (`COUNT(*)`).
    pub rows: Vec<u64>,
    /// `states[a][g]`: aggregate `a` of group `g`.
    pub states: Vec<Vec<AggState>>,
}

/// The group-by's output: one row per group, ordered by key (NULL first).
#[derive(Clone, Debug)]
pub struct GroupByOutput {
    /// The key column, of the input key's Arrow type (`Utf8` for string keys).
    pub keys: ArrayRef,
    /// One column per aggregate: `COUNT` Int64, `SUM` Int64, `AVG` Float64, `MIN`/`MAX`
    /// the argument's type.
    pub aggs: Vec<ArrayRef>,
}

impl PartialEq for GroupByOutput {
    fn eq(&self, other: &Self) -> bool {
        self.keys.to_data() == other.keys.to_data()
            && self.aggs.len() == other.aggs.len()
            && self
                .aggs
                .iter()
                .zip(&other.aggs)
                .all(|(a, b)| a.to_data() == b.to_data())
    }
}

/// Integer keys of an array, as `i64` plus validity; strings become dictionary codes
/// (first-appearance order) with the dictionary returned.
pub(crate) struct IntKeys {
    pub(crate) values: Vec<i64>,
    pub(crate) valid: Option<Vec<bool>>,
    pub(crate) dictionary: Option<Vec<String>>,
}

fn internal(msg: impl Into<String>) -> KernelError {
    KernelError::Internal(msg.into())
}

/// An integer column (`Int32`, `Int64`, `Date32`, `Timestamp(ms)`) as `i64`s.
pub(crate) fn int_values(array: &ArrayRef) -> Result<Int64Array, KernelError> {
    let as_i64 = match array.data_type() {
        DataType::Int64 => Arc::clone(array),
        DataType::Int32 => cast(array, &DataType::Int64)
            .map_err(|e| internal(format!("cannot widen keys: {e}")))?,
        DataType::Date32 => {
            let a = cast(array, &DataType::Int32).map_err(|e| internal(e.to_string()))?;
            cast(&a, &DataType::Int64).map_err(|e| internal(e.to_string()))?
        }
        DataType::Timestamp(..) => {
            cast(array, &DataType::Int64).map_err(|e| internal(e.to_string()))?
        }
        other => return Err(internal(format!("not an integer column: {other}"))),
    };
    Ok(as_i64.as_primitive::<Int64Type>().clone())
}

pub(crate) fn int_keys(array: &ArrayRef) -> Result<IntKeys, KernelError> {
    let valid = |a: &dyn Array| {
        a.nulls()
            .map(|n| (0..a.len()).map(|i| n.is_valid(i)).collect::<Vec<_>>())
    };
    match array.data_type() {
        DataType::Utf8 => {
            let s: &StringArray = array.as_string::<i32>();
            let mut codes: HashMap<&str, i64> = HashMap::new();
            let mut dictionary = Vec::new();
            let values = (0..s.len())
                .map(|i| {
                    if s.is_null(i) {
                        return 0;
                    }
                    let v = s.value(i);
                    *codes.entry(v).or_insert_with(|| {
                        dictionary.push(v.to_string());
                        dictionary.len() as i64 - 1
                    })
                })
                .collect();
            Ok(IntKeys {
                values,
                valid: valid(s),
                dictionary: Some(dictionary),
            })
        }
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = array.as_dictionary::<Int32Type>();
            let dict = d.values().as_string::<i32>();
            let dictionary = (0..dict.len())
                .map(|i| dict.value(i).to_string())
                .collect::<Vec<_>>();
            // Equal strings may appear twice in a dictionary: map codes to the first.
            let mut first: HashMap<&str, i64> = HashMap::new();
            let canon: Vec<i64> = (0..dict.len())
                .map(|i| *first.entry(dict.value(i)).or_insert(i as i64))
                .collect();
            let values = d
                .keys()
                .iter()
                .map(|k| {
                    k.and_then(|k| canon.get(k as usize).copied())
                        .unwrap_or_default()
                })
                .collect();
            Ok(IntKeys {
                values,
                valid: valid(d.keys()),
                dictionary: Some(dictionary),
            })
        }
        _ => {
            let a = int_values(array)?;
            Ok(IntKeys {
                values: a.values().to_vec(),
                valid: valid(&a),
                dictionary: None,
            })
        }
    }
}

/// Checks the shapes of a group-by's inputs.
pub(crate) fn check_inputs(keys: &ArrayRef, aggs: &[AggInput]) -> Result<(), KernelError> {
    for a in aggs {
        match (&a.arg, a.func) {
            (None, AggFunc::Count) => {}
            (None, f) => return Err(internal(format!("{f:?} without an argument"))),
            (Some(arg), _) if arg.len() != keys.len() => {
                return Err(internal(format!(
                    "aggregate argument of {} rows for {} keys",
                    arg.len(),
                    keys.len()
                )))
            }
            (Some(arg), f) if f != AggFunc::Count && int_values(arg).is_err() => {
                return Err(internal(format!(
                    "{f:?} on {} is not a GPU group-by aggregate",
                    arg.data_type()
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The CPU twin of the GPU group-by: hash aggregation on the host.
pub fn group_by_cpu(keys: &ArrayRef, aggs: &[AggInput]) -> Result<GroupByOutput, KernelError> {
    let (states, k) = group_states_cpu(keys, aggs)?;
    finalize(states, keys, &k.dictionary, aggs)
}

/// The CPU twin of the GPU group-by's accumulation: the per-group states, and the keys
/// as integers (with the dictionary of a string key).
pub(crate) fn group_states_cpu(
    keys: &ArrayRef,
    aggs: &[AggInput],
) -> Result<(GroupStates, IntKeys), KernelError> {
    check_inputs(keys, aggs)?;
    let k = int_keys(keys)?;
    let args = aggs
        .iter()
        .map(|a| match (&a.arg, a.func) {
            (None, _) => Ok(None),
            (Some(arg), AggFunc::Count) => Ok(Some((None, arg.clone()))),
            (Some(arg), _) => Ok(Some((Some(int_values(arg)?), arg.clone()))),
        })
        .collect::<Result<Vec<_>, KernelError>>()?;
    let mut index: HashMap<Option<i64>, usize> = HashMap::new();
    let mut states = GroupStates {
        keys: vec![],
        rows: vec![],
        states: vec![vec![]; aggs.len()],
    };
    for row in 0..keys.len() {
        let key = match &k.valid {
            Some(v) if !v[row] => None,
            _ => Some(k.values[row]),
        };
        let g = *index.entry(key).or_insert_with(|| {
            states.keys.push(key);
            states.rows.push(0);
            for s in &mut states.states {
                s.push(AggState::empty());
            }
            states.keys.len() - 1
        });
        states.rows[g] += 1;
        for (a, arg) in args.iter().enumerate() {
            match arg {
                Some((None, raw)) if raw.is_valid(row) => {
                    states.states[a][g].count += 1;
                }
                Some((Some(ints), _)) if ints.is_valid(row) => {
                    states.states[a][g].add(ints.value(row));
                }
                _ => {}
            }
        }
    }
    Ok((states, k))
}

/// The partial batch of a pre-aggregation (layout: `sluice_expr::partial`, one key
/// column of the key's type) from accumulated states: both devices' group-by states
/// become partial rows here, groups in the states' order.
pub(crate) fn partial_from_states(
    states: &GroupStates,
    keys: &ArrayRef,
    dictionary: &Option<Vec<String>>,
    aggs: &[AggInput],
    schema: arrow::datatypes::SchemaRef,
) -> Result<arrow::array::RecordBatch, KernelError> {
    let key_array: ArrayRef = match dictionary {
        Some(d) => Arc::new(
            states
                .keys
                .iter()
                .map(|k| k.and_then(|c| d.get(c as usize).cloned()))
                .collect::<StringArray>(),
        ),
        None => cast_back(
            Arc::new(states.keys.iter().copied().collect::<Int64Array>()),
            keys.data_type(),
        )?,
    };
    let rows: Vec<i64> = states.rows.iter().map(|r| *r as i64).collect();
    let mut out: Vec<ArrayRef> = vec![key_array, Arc::new(Int64Array::from(rows.clone()))];
    for (a, agg) in aggs.iter().enumerate() {
        let st = &states.states[a];
        match agg.func {
            AggFunc::Count if agg.arg.is_none() => {
                out.push(Arc::new(Int64Array::from(rows.clone())))
            }
            AggFunc::Count => out.push(Arc::new(
                st.iter().map(|s| s.count as i64).collect::<Int64Array>(),
            )),
            AggFunc::Sum | AggFunc::Avg => {
                out.push(sluice_columnar::sum_array(
                    st.iter().map(|s| s.sum).collect(),
                )?);
                out.push(Arc::new(
                    st.iter().map(|s| s.count as i64).collect::<Int64Array>(),
                ));
            }
            AggFunc::Min | AggFunc::Max => out.push(extreme_column(agg, st.iter())?),
        }
    }
    let n = states.keys.len();
    arrow::array::RecordBatch::try_new_with_options(
        schema,
        out,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(|e| internal(format!("partial batch: {e}")))
}

/// Builds the output arrays from accumulated states (shared by both devices).
pub(crate) fn finalize(
    states: GroupStates,
    keys: &ArrayRef,
    dictionary: &Option<Vec<String>>,
    aggs: &[AggInput],
) -> Result<GroupByOutput, KernelError> {
    let mut order: Vec<usize> = (0..states.keys.len()).collect();
    match dictionary {
        Some(d) => order.sort_by(|&a, &b| {
            let s = |g: usize| states.keys[g].and_then(|c| d.get(c as usize));
            s(a).cmp(&s(b))
        }),
        None => order.sort_by_key(|&g| states.keys[g]),
    }
    let key_array: ArrayRef = match dictionary {
        Some(d) => Arc::new(
            order
                .iter()
                .map(|&g| states.keys[g].and_then(|c| d.get(c as usize).cloned()))
                .collect::<StringArray>(),
        ),
        None => {
            let ints: Int64Array = order.iter().map(|&g| states.keys[g]).collect();
            let dt = match keys.data_type() {
                DataType::Dictionary(..) => DataType::Utf8,
                other => other.clone(),
            };
            cast_back(Arc::new(ints), &dt)?
        }
    };
    let mut out = Vec::with_capacity(aggs.len());
    for (a, agg) in aggs.iter().enumerate() {
        let st = |g: usize| states.states[a][g];
        let col: ArrayRef = match agg.func {
            AggFunc::Count => Arc::new(
                order
                    .iter()
                    .map(|&g| {
                        Some(if agg.arg.is_none() {
                            states.rows[g] as i64
                        } else {
                            st(g).count as i64
                        })
                    })
                    .collect::<Int64Array>(),
            ),
            AggFunc::Sum => {
                let mut v = Vec::with_capacity(order.len());
                for &g in &order {
                    let s = st(g);
                    if s.count == 0 {
                        v.push(None);
                    } else {
                        v.push(Some(i64::try_from(s.sum).map_err(|_| {
                            KernelError::Execution("BIGINT overflow in SUM".to_string())
                        })?));
                    }
                }
                Arc::new(Int64Array::from(v))
            }
            AggFunc::Avg => Arc::new(
                order
                    .iter()
                    .map(|&g| {
                        let s = st(g);
                        (s.count > 0).then(|| s.sum as f64 / s.count as f64)
                    })
                    .collect::<Float64Array>(),
            ),
            AggFunc::Min | AggFunc::Max => {
                let st = &states.states[a];
                extreme_column(agg, order.iter().map(|&g| &st[g]))?
            }
        };
        out.push(col);
    }
    Ok(GroupByOutput {
        keys: key_array,
        aggs: out,
    })
}

/// The group-by kernel's inputs for a pre-aggregation: the one key column and each
/// aggregate's argument column (`None` when a column is missing).
pub(crate) fn agg_inputs(
    batch: &arrow::array::RecordBatch,
    group_by: &[usize],
    aggs: &[sluice_expr::AggregateCall],
) -> Option<(ArrayRef, Vec<AggInput>)> {
    let keys = Arc::clone(batch.columns().get(*group_by.first()?)?);
    let inputs = aggs
        .iter()
        .map(|a| {
            Some(AggInput {
                func: a.func,
                arg: match a.arg {
                    Some(c) => Some(Arc::clone(batch.columns().get(c)?)),
                    None => None,
                },
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((keys, inputs))
}

/// The CPU twin of the GPU pre-aggregation: the group-by's states accumulated on the
/// host ([`group_states_cpu`]) and turned into partial rows by the same code as the
/// GPU's. `Ok(None)` when the shape is not the group-by kernel's (see
/// `sluice_expr::gpu_support::aggregate_gpu_support`).
pub fn partial_aggregate_twin(
    batch: &arrow::array::RecordBatch,
    group_by: &[usize],
    aggs: &[sluice_expr::AggregateCall],
    input_types: &[sluice_catalogs::SqlType],
) -> Result<Option<arrow::array::RecordBatch>, KernelError> {
    if sluice_expr::gpu_support::aggregate_gpu_support(group_by, aggs, input_types).is_err() {
        return Ok(None);
    }
    let Some((keys, inputs)) = agg_inputs(batch, group_by, aggs) else {
        return Ok(None);
    };
    let (states, k) = group_states_cpu(&keys, &inputs)?;
    let schema = sluice_columnar::partial_schema(input_types, group_by, aggs).to_arrow();
    partial_from_states(&states, &keys, &k.dictionary, &inputs, schema).map(Some)
}

/// The `MIN`/`MAX` column of `agg` from its per-group states (NULL for a group without
/// values), in the argument's integer type.
fn extreme_column<'a>(
    agg: &AggInput,
    states: impl Iterator<Item = &'a AggState>,
) -> Result<ArrayRef, KernelError> {
    let ints: Int64Array = states
        .map(|s| {
            (s.count > 0).then_some(if agg.func == AggFunc::Min {
                s.min
            } else {
                s.max
            })
        })
        .collect();
    let dt = agg
        .arg
        .as_ref()
        .map(|a| a.data_type().clone())
        .unwrap_or(DataType::Int64);
    cast_back(Arc::new(ints), &dt)
}

/// An `Int64` array back in the integer type `dt` it was widened from.
fn cast_back(ints: ArrayRef, dt: &DataType) -> Result<ArrayRef, KernelError> {
    match dt {
        DataType::Int64 => Ok(ints),
        DataType::Date32 => {
            let a = cast(&ints, &DataType::Int32).map_err(|e| internal(e.to_string()))?;
            cast(&a, dt).map_err(|e| internal(e.to_string()))
        }
        other => cast(&ints, other).map_err(|e| internal(e.to_string())),
    }
}

/// Matches of a join probe: `(probe row, build row)` pairs, ordered by probe row, then
/// build row. NULL keys never match.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinMatches {
    /// Probe-side row of each match.
    pub probe: UInt32Array,
    /// Build-side row of each match.
    pub build: UInt32Array,
}

/// Checks join inputs and returns their keys as `i64` with validity.
pub(crate) fn join_inputs(
    build: &ArrayRef,
    probe: &ArrayRef,
) -> Result<(Int64Array, Int64Array), KernelError> {
    if build.len() > u32::MAX as usize || probe.len() > u32::MAX as usize {
        return Err(internal("join input of more than 2^32 rows"));
    }
    Ok((int_values(build)?, int_values(probe)?))
}

/// The CPU twin of the GPU join probe.
pub fn join_probe_cpu(build: &ArrayRef, probe: &ArrayRef) -> Result<JoinMatches, KernelError> {
    let (b, p) = join_inputs(build, probe)?;
    let mut table: HashMap<i64, Vec<u32>> = HashMap::new();
    for (i, k) in b.iter().enumerate() {
        if let Some(k) = k {
            table.entry(k).or_default().push(i as u32);
        }
    }
    let (mut pr, mut br) = (Vec::new(), Vec::new());
    for (i, k) in p.iter().enumerate() {
        if let Some(rows) = k.and_then(|k| table.get(&k)) {
            for &r in rows {
                pr.push(i as u32);
                br.push(r);
            }
        }
    }
    Ok(JoinMatches {
        probe: UInt32Array::from(pr),
        build: UInt32Array::from(br),
    })
}
