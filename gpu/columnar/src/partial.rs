//! Pre-aggregation of one Arrow batch on the CPU: the batch's rows grouped by the
//! group columns, one partial row per group (layout: `sluice_expr::partial`).
//!
//! ```text
//! Calc output batch ─▶ group index per row ─▶ per aggregate, per group: count / exact sum / extreme row ─▶ partial batch
//! ```
//!
//! Grouping hashes each row's key once: a single integer-like key column (`INT`,
//! `BIGINT`, `DATE`, `TIMESTAMP`, `INTERVAL`) is hashed as an `i64`; any other key is
//! first encoded by Arrow's row format (`arrow::row`: the key columns packed into one
//! comparable byte string per row) and those bytes are hashed. Groups come out in the
//! order of their first row, each key taken from that row.

use crate::KernelError;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int64Array, RecordBatch,
    RecordBatchOptions, StringArray, UInt32Array,
};
use arrow::compute::take;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, DurationMillisecondType, Int32Type,
    Int64Type, TimeUnit, TimestampMillisecondType,
};
use arrow::row::{RowConverter, SortField};
use rustc_hash::FxHashMap;
use sluice_catalogs::{Field, Schema, SqlType};
use sluice_expr::partial::{partial_columns, partial_types, PartialColumns, SUM_TYPE};
use sluice_expr::AggregateCall;
use std::cmp::Ordering;
use std::sync::Arc;

fn internal(msg: impl Into<String>) -> KernelError {
    KernelError::Internal(msg.into())
}

/// The group of each row and the first row of each group.
pub(crate) struct Grouping {
    /// `group[i]`: the group of row `i`, numbered in order of first appearance.
    pub(crate) group: Vec<u32>,
    /// `first[g]`: the first row of group `g`.
    pub(crate) first: Vec<u32>,
}

/// An integer-like column as `i64`s, when it is one.
fn as_i64s(a: &ArrayRef) -> Option<Vec<i64>> {
    fn widen<T: ArrowPrimitiveType>(a: &ArrayRef, f: impl Fn(T::Native) -> i64) -> Vec<i64> {
        a.as_primitive::<T>()
            .values()
            .iter()
            .map(|v| f(*v))
            .collect()
    }
    Some(match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().values().to_vec(),
        DataType::Int32 => widen::<Int32Type>(a, i64::from),
        DataType::Date32 => widen::<Date32Type>(a, i64::from),
        DataType::Timestamp(TimeUnit::Millisecond, _) => a
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec(),
        DataType::Duration(TimeUnit::Millisecond) => a
            .as_primitive::<DurationMillisecondType>()
            .values()
            .to_vec(),
        _ => return None,
    })
}

/// Groups the rows of a batch of `rows` rows by `keys` (no keys: one group).
pub(crate) fn group_rows(keys: &[ArrayRef], rows: usize) -> Result<Grouping, KernelError> {
    let mut group = Vec::with_capacity(rows);
    let mut first: Vec<u32> = Vec::new();
    // A new group, first seen at `row`.
    let assign = |row: usize, first: &mut Vec<u32>| -> u32 {
        first.push(row as u32);
        first.len() as u32 - 1
    };
    match keys {
        [] => {
            if rows > 0 {
                first.push(0);
            }
            group.resize(rows, 0);
        }
        [key] if as_i64s(key).is_some() => {
            let values = as_i64s(key).unwrap_or_default();
            let mut index: FxHashMap<Option<i64>, u32> = FxHashMap::default();
            for (row, v) in values.iter().enumerate() {
                let k = key.is_valid(row).then_some(*v);
                let g = match index.get(&k) {
                    Some(g) => *g,
                    None => {
                        let g = assign(row, &mut first);
                        index.insert(k, g);
                        g
                    }
                };
                group.push(g);
            }
        }
        _ => {
            let fields = keys
                .iter()
                .map(|k| SortField::new(k.data_type().clone()))
                .collect();
            let converter = RowConverter::new(fields)
                .map_err(|e| internal(format!("cannot encode group keys: {e}")))?;
            let encoded = converter
                .convert_columns(keys)
                .map_err(|e| internal(format!("cannot encode group keys: {e}")))?;
            let mut index: FxHashMap<&[u8], u32> = FxHashMap::default();
            for (row, r) in encoded.iter().enumerate() {
                let bytes = r.data();
                let g = match index.get(bytes) {
                    Some(g) => *g,
                    None => {
                        let g = assign(row, &mut first);
                        index.insert(bytes, g);
                        g
                    }
                };
                group.push(g);
            }
        }
    }
    Ok(Grouping { group, first })
}

/// Exact sums (and how many values each holds) of an exact-number column per group.
fn sums(arg: &ArrayRef, grouping: &Grouping) -> Result<(Vec<i128>, Vec<i64>), KernelError> {
    let groups = grouping.first.len();
    let mut sum = vec![0i128; groups];
    let mut n = vec![0i64; groups];
    fn fold<T: ArrowPrimitiveType>(
        a: &ArrayRef,
        grouping: &Grouping,
        sum: &mut [i128],
        n: &mut [i64],
        f: impl Fn(T::Native) -> i128,
    ) {
        let a = a.as_primitive::<T>();
        for (row, v) in a.values().iter().enumerate() {
            if a.is_valid(row) {
                let g = grouping.group[row] as usize;
                sum[g] += f(*v);
                n[g] += 1;
            }
        }
    }
    match arg.data_type() {
        DataType::Int64 => fold::<Int64Type>(arg, grouping, &mut sum, &mut n, i128::from),
        DataType::Int32 => fold::<Int32Type>(arg, grouping, &mut sum, &mut n, i128::from),
        DataType::Duration(TimeUnit::Millisecond) => {
            fold::<DurationMillisecondType>(arg, grouping, &mut sum, &mut n, i128::from)
        }
        DataType::Decimal128(..) => fold::<Decimal128Type>(arg, grouping, &mut sum, &mut n, |v| v),
        other => return Err(internal(format!("cannot pre-aggregate a sum of {other}"))),
    }
    Ok((sum, n))
}

/// Per group, the row holding its least (`max` false) or greatest non-NULL value.
fn extremes(arg: &ArrayRef, grouping: &Grouping, max: bool) -> Result<Vec<u32>, KernelError> {
    const NONE: u32 = u32::MAX;
    let mut best = vec![NONE; grouping.first.len()];
    // Row `new` replaces the group's extreme so far when `cmp(new, old)` says it is
    // beyond it (the first of equal values is kept).
    let mut scan = |cmp: &dyn Fn(usize, usize) -> Ordering| {
        let beyond = if max {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        for row in (0..arg.len()).filter(|&r| arg.is_valid(r)) {
            let b = &mut best[grouping.group[row] as usize];
            if *b == NONE || cmp(row, *b as usize) == beyond {
                *b = row as u32;
            }
        }
    };
    fn values<T: ArrowPrimitiveType>(arg: &ArrayRef) -> &[T::Native] {
        arg.as_primitive::<T>().values()
    }
    match arg.data_type() {
        DataType::Int64 => {
            let v = values::<Int64Type>(arg);
            scan(&|n, o| v[n].cmp(&v[o]))
        }
        DataType::Int32 => {
            let v = values::<Int32Type>(arg);
            scan(&|n, o| v[n].cmp(&v[o]))
        }
        DataType::Date32 => {
            let v = values::<Date32Type>(arg);
            scan(&|n, o| v[n].cmp(&v[o]))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let v = values::<TimestampMillisecondType>(arg);
            scan(&|n, o| v[n].cmp(&v[o]))
        }
        DataType::Duration(TimeUnit::Millisecond) => {
            let v = values::<DurationMillisecondType>(arg);
            scan(&|n, o| v[n].cmp(&v[o]))
        }
        DataType::Decimal128(..) => {
            let v = values::<Decimal128Type>(arg);
            scan(&|n, o| v[n].cmp(&v[o]))
        }
        DataType::Boolean => {
            let a: &BooleanArray = arg.as_boolean();
            scan(&|n, o| a.value(n).cmp(&a.value(o)))
        }
        DataType::Utf8 => {
            let a: &StringArray = arg.as_string::<i32>();
            scan(&|n, o| a.value(n).cmp(a.value(o)))
        }
        other => return Err(internal(format!("cannot pre-aggregate MIN/MAX of {other}"))),
    }
    Ok(best)
}

/// The schema of the partial batch of a pre-aggregation over columns of
/// `input_types` (columns `p0`, `p1`, …, every one nullable).
pub fn partial_schema(
    input_types: &[SqlType],
    group_by: &[usize],
    aggs: &[AggregateCall],
) -> Schema {
    Schema::new(
        partial_types(input_types, group_by, aggs)
            .into_iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("p{i}"), t))
            .collect(),
    )
}

/// The partial batch of `batch` (columns of SQL types `input_types`): one row per group
/// of `group_by`, laid out as `sluice_expr::partial` says.
pub fn partial_aggregate_cpu(
    batch: &RecordBatch,
    group_by: &[usize],
    aggs: &[AggregateCall],
    input_types: &[SqlType],
) -> Result<RecordBatch, KernelError> {
    let column = |c: usize| {
        batch
            .columns()
            .get(c)
            .cloned()
            .ok_or_else(|| internal(format!("no column {c} in a batch to pre-aggregate")))
    };
    let keys = group_by
        .iter()
        .map(|&c| column(c))
        .collect::<Result<Vec<_>, _>>()?;
    let grouping = group_rows(&keys, batch.num_rows())?;
    let groups = grouping.first.len();
    let mut rows = vec![0i64; groups];
    for &g in &grouping.group {
        rows[g as usize] += 1;
    }
    let firsts = UInt32Array::from(grouping.first.clone());
    let mut out: Vec<ArrayRef> = Vec::new();
    for k in &keys {
        out.push(take(k.as_ref(), &firsts, None).map_err(|e| internal(e.to_string()))?);
    }
    out.push(Arc::new(Int64Array::from(rows.clone())));
    for (call, cols) in aggs.iter().zip(partial_columns(aggs)) {
        let arg = call.arg.map(column).transpose()?;
        match (cols, arg) {
            (PartialColumns::Count, None) => out.push(Arc::new(Int64Array::from(rows.clone()))),
            (PartialColumns::Count, Some(arg)) => {
                let mut counts = vec![0i64; groups];
                for (row, &g) in grouping.group.iter().enumerate() {
                    if arg.is_valid(row) {
                        counts[g as usize] += 1;
                    }
                }
                out.push(Arc::new(Int64Array::from(counts)));
            }
            (PartialColumns::Sum, Some(arg)) => {
                let (sum, n) = sums(&arg, &grouping)?;
                out.push(sum_array(sum)?);
                out.push(Arc::new(Int64Array::from(n)));
            }
            (PartialColumns::Min | PartialColumns::Max, Some(arg)) => {
                let best = extremes(&arg, &grouping, cols == PartialColumns::Max)?;
                let idx: UInt32Array = best
                    .into_iter()
                    .map(|b| (b != u32::MAX).then_some(b))
                    .collect();
                out.push(take(arg.as_ref(), &idx, None).map_err(|e| internal(e.to_string()))?);
            }
            (cols, None) => return Err(internal(format!("{cols:?} without an argument"))),
        }
    }
    let schema = partial_schema(input_types, group_by, aggs).to_arrow();
    RecordBatch::try_new_with_options(
        schema,
        out,
        &RecordBatchOptions::new().with_row_count(Some(groups)),
    )
    .map_err(|e| internal(format!("partial batch: {e}")))
}

/// A column of exact partial sums (`DECIMAL(38, 0)`).
pub fn sum_array(sums: Vec<i128>) -> Result<ArrayRef, KernelError> {
    let SqlType::Decimal { precision, scale } = SUM_TYPE else {
        return Err(internal("the partial sum type is not a DECIMAL"));
    };
    Ok(Arc::new(
        Decimal128Array::from(sums)
            .with_precision_and_scale(precision, scale as i8)
            .map_err(|e| internal(e.to_string()))?,
    ))
}
