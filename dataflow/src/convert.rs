//! Arrow record batches ⇄ rows of [`Datum`]s, at the boundary between the columnar
//! (stateless, per-batch) part of a dataflow and its differential (row) part.

use crate::errors::ExecutionError;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, DurationMillisecondArray,
    Float64Array, Int32Array, Int64Array, NullArray, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, DurationMillisecondType, Float32Type,
    Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt8Type,
};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sluice_catalogs::{Schema, SqlType};
use sluice_compiler::{Datum, Row, F64};
use std::sync::Arc;

fn unsupported(dt: &DataType) -> ExecutionError {
    ExecutionError::Internal(format!("unsupported Arrow column type {dt}"))
}

/// One column of a batch as datums.
fn column_to_datums(array: &dyn Array) -> Result<Vec<Datum>, ExecutionError> {
    let n = array.len();
    macro_rules! prim {
        ($t:ty, $f:expr) => {{
            let a = array
                .as_primitive_opt::<$t>()
                .ok_or_else(|| unsupported(array.data_type()))?;
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Datum::Null
                    } else {
                        $f(a.value(i))
                    }
                })
                .collect()
        }};
    }
    let out: Vec<Datum> = match array.data_type() {
        DataType::Null => vec![Datum::Null; n],
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Datum::Null
                    } else {
                        Datum::Bool(a.value(i))
                    }
                })
                .collect()
        }
        DataType::Int8 => prim!(Int8Type, |v| Datum::Int(i64::from(v))),
        DataType::Int16 => prim!(Int16Type, |v| Datum::Int(i64::from(v))),
        DataType::Int32 => prim!(Int32Type, |v| Datum::Int(i64::from(v))),
        DataType::Int64 => prim!(Int64Type, Datum::Int),
        DataType::UInt8 => prim!(UInt8Type, |v| Datum::Int(i64::from(v))),
        DataType::UInt16 => prim!(UInt16Type, |v| Datum::Int(i64::from(v))),
        DataType::UInt32 => prim!(UInt32Type, |v| Datum::Int(i64::from(v))),
        DataType::Float32 => prim!(Float32Type, |v| Datum::Float(F64(f64::from(v)))),
        DataType::Float64 => prim!(Float64Type, |v| Datum::Float(F64(v))),
        DataType::Decimal128(_, _) => prim!(Decimal128Type, Datum::Decimal),
        DataType::Date32 => prim!(Date32Type, Datum::Date),
        DataType::Date64 => prim!(Date64Type, |v: i64| Datum::Date(
            v.div_euclid(86_400_000) as i32
        )),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            prim!(TimestampMillisecondType, Datum::Timestamp)
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            prim!(TimestampSecondType, |v: i64| Datum::Timestamp(
                v.saturating_mul(1000)
            ))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            prim!(TimestampMicrosecondType, |v: i64| Datum::Timestamp(
                v.div_euclid(1000)
            ))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            prim!(TimestampNanosecondType, |v: i64| Datum::Timestamp(
                v.div_euclid(1_000_000)
            ))
        }
        DataType::Duration(TimeUnit::Millisecond) => {
            prim!(DurationMillisecondType, Datum::Interval)
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Datum::Null
                    } else {
                        Datum::Str(a.value(i).to_string())
                    }
                })
                .collect()
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Datum::Null
                    } else {
                        Datum::Str(a.value(i).to_string())
                    }
                })
                .collect()
        }
        other => return Err(unsupported(other)),
    };
    Ok(out)
}

/// The rows of a batch, in order.
pub fn batch_to_rows(batch: &RecordBatch) -> Result<Vec<Row>, ExecutionError> {
    let mut rows: Vec<Row> = (0..batch.num_rows())
        .map(|_| Vec::with_capacity(batch.num_columns()))
        .collect();
    for column in batch.columns() {
        for (row, d) in rows.iter_mut().zip(column_to_datums(column.as_ref())?) {
            row.push(d);
        }
    }
    Ok(rows)
}

fn type_error(ty: SqlType, d: &Datum) -> ExecutionError {
    ExecutionError::Internal(format!("value {d} in a column of type {ty}"))
}

/// One column of `ty` from the datums at `col` of `rows`.
fn datums_to_column(rows: &[Row], col: usize, ty: SqlType) -> Result<ArrayRef, ExecutionError> {
    let get = |r: &Row| -> Result<Datum, ExecutionError> {
        r.get(col).cloned().ok_or_else(|| {
            ExecutionError::Internal(format!("row of {} columns has no column {col}", r.len()))
        })
    };
    macro_rules! build {
        ($arr:ty, $pat:pat => $v:expr) => {{
            let mut values = Vec::with_capacity(rows.len());
            for r in rows {
                values.push(match get(r)? {
                    Datum::Null => None,
                    $pat => Some($v),
                    other => return Err(type_error(ty, &other)),
                });
            }
            Arc::new(<$arr>::from(values)) as ArrayRef
        }};
    }
    Ok(match ty {
        SqlType::Null => Arc::new(NullArray::new(rows.len())),
        SqlType::Boolean => build!(BooleanArray, Datum::Bool(b) => b),
        SqlType::Int => build!(Int32Array, Datum::Int(i) => i32::try_from(i)
            .map_err(|_| ExecutionError::Internal(format!("{i} does not fit in INT")))?),
        SqlType::BigInt => build!(Int64Array, Datum::Int(i) => i),
        SqlType::Double => build!(Float64Array, Datum::Float(f) => f.0),
        SqlType::Decimal { precision, scale } => {
            let mut values = Vec::with_capacity(rows.len());
            for r in rows {
                values.push(match get(r)? {
                    Datum::Null => None,
                    Datum::Decimal(d) => Some(d),
                    other => return Err(type_error(ty, &other)),
                });
            }
            Arc::new(
                Decimal128Array::from(values)
                    .with_precision_and_scale(precision, scale as i8)
                    .map_err(|e| ExecutionError::Internal(e.to_string()))?,
            )
        }
        SqlType::Varchar => build!(StringArray, Datum::Str(s) => s),
        SqlType::Date => build!(Date32Array, Datum::Date(d) => d),
        SqlType::Timestamp => build!(TimestampMillisecondArray, Datum::Timestamp(t) => t),
        SqlType::Interval => build!(DurationMillisecondArray, Datum::Interval(i) => i),
    })
}

/// A batch of `schema` holding `rows`.
pub fn rows_to_batch(rows: &[Row], schema: &Schema) -> Result<RecordBatch, ExecutionError> {
    let columns = schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| datums_to_column(rows, i, f.ty))
        .collect::<Result<Vec<_>, _>>()?;
    // Nullability is the compiler's promise, not re-checked here: declare every column
    // nullable so a NULL in a NOT NULL column is not a panic-free-but-fatal Arrow error.
    let mut arrow_schema = (*schema.to_arrow()).clone();
    arrow_schema = arrow::datatypes::Schema::new(
        arrow_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new_with_options(
        Arc::new(arrow_schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|e| ExecutionError::Internal(format!("building a record batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_catalogs::Field;

    #[test]
    fn round_trip_every_type() {
        let schema = Schema::new(vec![
            Field::new("b", SqlType::Boolean),
            Field::new("i", SqlType::Int),
            Field::new("l", SqlType::BigInt),
            Field::new("d", SqlType::Double),
            Field::new(
                "m",
                SqlType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            Field::new("s", SqlType::Varchar),
            Field::new("dt", SqlType::Date),
            Field::new("ts", SqlType::Timestamp),
            Field::new("iv", SqlType::Interval),
        ]);
        let rows = vec![
            vec![
                Datum::Bool(true),
                Datum::Int(-3),
                Datum::Int(1 << 40),
                Datum::Float(F64(1.5)),
                Datum::Decimal(12345),
                Datum::Str("x".into()),
                Datum::Date(19000),
                Datum::Timestamp(-5),
                Datum::Interval(60_000),
            ],
            vec![Datum::Null; 9],
        ];
        let batch = rows_to_batch(&rows, &schema).unwrap();
        assert_eq!(batch_to_rows(&batch).unwrap(), rows);
    }

    #[test]
    fn wrong_datum_is_an_error_not_a_panic() {
        let schema = Schema::new(vec![Field::new("i", SqlType::Int)]);
        let err = rows_to_batch(&[vec![Datum::Str("no".into())]], &schema).unwrap_err();
        assert!(matches!(err, ExecutionError::Internal(_)));
        let err = rows_to_batch(&[vec![Datum::Int(1 << 40)]], &schema).unwrap_err();
        assert!(matches!(err, ExecutionError::Internal(_)));
    }
}
