//! Conversions between Arrow columns and [`Datum`] rows.
//!
//! Columns are expected in the canonical Arrow type of their SQL type
//! ([`SqlType::to_arrow`]); [`normalize`] casts other compatible Arrow types (Int16,
//! LargeUtf8, microsecond timestamps…) to it first.

use crate::KernelError;
use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, BooleanBuilder, Date32Array, Date32Builder,
    Decimal128Array, Decimal128Builder, DurationMillisecondArray, DurationMillisecondBuilder,
    Float64Array, Float64Builder, Int32Array, Int32Builder, Int64Array, Int64Builder, RecordBatch,
    RecordBatchOptions, StringArray, StringBuilder, TimestampMillisecondArray,
    TimestampMillisecondBuilder,
};
use arrow::compute::kernels::cast::cast;
use sluice_catalogs::{Schema, SqlType};
use sluice_expr::{Datum, Row, F64};
use std::sync::Arc;

fn downcast<T: 'static>(array: &ArrayRef, ty: SqlType) -> Result<&T, KernelError> {
    array.as_any().downcast_ref::<T>().ok_or_else(|| {
        KernelError::Internal(format!(
            "column of SQL type {ty} has Arrow type {}, expected {}",
            array.data_type(),
            ty.to_arrow()
        ))
    })
}

/// Cast `array` to the canonical Arrow type of `ty` when it is not already.
pub fn normalize(array: &ArrayRef, ty: SqlType) -> Result<ArrayRef, KernelError> {
    let want = ty.to_arrow();
    if array.data_type() == &want {
        return Ok(Arc::clone(array));
    }
    cast(array, &want).map_err(|e| {
        KernelError::Internal(format!(
            "cannot convert a column of Arrow type {} to {ty}: {e}",
            array.data_type()
        ))
    })
}

/// The value at `row` of a column of SQL type `ty` (in its canonical Arrow type).
pub fn array_value(array: &ArrayRef, row: usize, ty: SqlType) -> Result<Datum, KernelError> {
    if row >= array.len() {
        return Err(KernelError::Internal(format!(
            "row {row} out of range for a column of {} rows",
            array.len()
        )));
    }
    if array.is_null(row) {
        return Ok(Datum::Null);
    }
    Ok(match ty {
        SqlType::Null => Datum::Null,
        SqlType::Boolean => Datum::Bool(downcast::<BooleanArray>(array, ty)?.value(row)),
        SqlType::Int => Datum::Int(i64::from(downcast::<Int32Array>(array, ty)?.value(row))),
        SqlType::BigInt => Datum::Int(downcast::<Int64Array>(array, ty)?.value(row)),
        SqlType::Double => Datum::Float(F64(downcast::<Float64Array>(array, ty)?.value(row))),
        SqlType::Decimal { .. } => {
            Datum::Decimal(downcast::<Decimal128Array>(array, ty)?.value(row))
        }
        SqlType::Varchar => Datum::Str(downcast::<StringArray>(array, ty)?.value(row).to_string()),
        SqlType::Date => Datum::Date(downcast::<Date32Array>(array, ty)?.value(row)),
        SqlType::Timestamp => {
            Datum::Timestamp(downcast::<TimestampMillisecondArray>(array, ty)?.value(row))
        }
        SqlType::Interval => {
            Datum::Interval(downcast::<DurationMillisecondArray>(array, ty)?.value(row))
        }
    })
}

fn mismatch(d: &Datum, ty: SqlType) -> KernelError {
    KernelError::Internal(format!("value {d:?} does not have SQL type {ty}"))
}

/// Build a column of type `ty` from datums (each NULL or of `ty`'s variant).
pub fn datums_to_array<'a>(
    datums: impl ExactSizeIterator<Item = &'a Datum>,
    ty: SqlType,
) -> Result<ArrayRef, KernelError> {
    let n = datums.len();
    macro_rules! build {
        ($builder:expr, $pat:pat => $val:expr) => {{
            let mut b = $builder;
            for d in datums {
                match d {
                    Datum::Null => b.append_null(),
                    $pat => b.append_value($val),
                    other => return Err(mismatch(other, ty)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match ty {
        SqlType::Null => {
            if let Some(d) = datums.into_iter().find(|d| !d.is_null()) {
                return Err(mismatch(d, ty));
            }
            new_null_array(&ty.to_arrow(), n)
        }
        SqlType::Boolean => build!(BooleanBuilder::with_capacity(n), Datum::Bool(v) => *v),
        SqlType::Int => {
            let mut b = Int32Builder::with_capacity(n);
            for d in datums {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Int(v) => {
                        b.append_value(i32::try_from(*v).map_err(|_| mismatch(d, ty))?)
                    }
                    other => return Err(mismatch(other, ty)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::BigInt => build!(Int64Builder::with_capacity(n), Datum::Int(v) => *v),
        SqlType::Double => build!(Float64Builder::with_capacity(n), Datum::Float(v) => v.0),
        SqlType::Decimal { precision, scale } => {
            let b = Decimal128Builder::with_capacity(n)
                .with_precision_and_scale(precision, scale as i8)
                .map_err(|e| KernelError::Internal(format!("bad decimal type {ty}: {e}")))?;
            build!(b, Datum::Decimal(v) => *v)
        }
        SqlType::Varchar => build!(StringBuilder::with_capacity(n, n * 8), Datum::Str(s) => s),
        SqlType::Date => build!(Date32Builder::with_capacity(n), Datum::Date(v) => *v),
        SqlType::Timestamp => {
            build!(TimestampMillisecondBuilder::with_capacity(n), Datum::Timestamp(v) => *v)
        }
        SqlType::Interval => {
            build!(DurationMillisecondBuilder::with_capacity(n), Datum::Interval(v) => *v)
        }
    })
}

/// Every row of `batch` as datums; `types` gives the SQL type of each column.
pub fn batch_to_rows(batch: &RecordBatch, types: &[SqlType]) -> Result<Vec<Row>, KernelError> {
    if types.len() != batch.num_columns() {
        return Err(KernelError::Internal(format!(
            "batch has {} columns but {} types were given",
            batch.num_columns(),
            types.len()
        )));
    }
    // Column by column: one downcast per column, not per value.
    let mut rows: Vec<Row> = (0..batch.num_rows())
        .map(|_| Vec::with_capacity(types.len()))
        .collect();
    for (c, ty) in batch.columns().iter().zip(types) {
        push_column(&normalize(c, *ty)?, *ty, &mut rows)?;
    }
    Ok(rows)
}

/// Appends the values of `array` (of SQL type `ty`, one per row) to `rows`.
fn push_column(array: &ArrayRef, ty: SqlType, rows: &mut [Row]) -> Result<(), KernelError> {
    if array.len() != rows.len() {
        return Err(KernelError::Internal(format!(
            "a column of {} rows in a batch of {}",
            array.len(),
            rows.len()
        )));
    }
    macro_rules! fill {
        ($array:ty, $datum:expr) => {{
            let a = downcast::<$array>(array, ty)?;
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(if a.is_null(i) {
                    Datum::Null
                } else {
                    $datum(a.value(i))
                });
            }
        }};
    }
    match ty {
        SqlType::Null => rows.iter_mut().for_each(|row| row.push(Datum::Null)),
        SqlType::Boolean => fill!(BooleanArray, Datum::Bool),
        SqlType::Int => fill!(Int32Array, |v: i32| Datum::Int(i64::from(v))),
        SqlType::BigInt => fill!(Int64Array, Datum::Int),
        SqlType::Double => fill!(Float64Array, |v: f64| Datum::Float(F64(v))),
        SqlType::Decimal { .. } => fill!(Decimal128Array, Datum::Decimal),
        SqlType::Varchar => fill!(StringArray, |v: &str| Datum::Str(v.to_string())),
        SqlType::Date => fill!(Date32Array, Datum::Date),
        SqlType::Timestamp => fill!(TimestampMillisecondArray, Datum::Timestamp),
        SqlType::Interval => fill!(DurationMillisecondArray, Datum::Interval),
    }
    Ok(())
}

/// A record batch of `schema` from rows (each with one datum per field). A zero-column
/// schema gives a batch with the number of rows and no columns.
pub fn rows_to_batch<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
    schema: &Schema,
) -> Result<RecordBatch, KernelError> {
    let rows: Vec<&Row> = rows.into_iter().collect();
    let width = schema.len();
    if let Some(bad) = rows.iter().find(|r| r.len() != width) {
        return Err(KernelError::Internal(format!(
            "row of {} values for a schema of {width} columns",
            bad.len()
        )));
    }
    let columns = schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| datums_to_array(rows.iter().map(|r| &r[i]), f.ty))
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema.to_arrow(), columns, &options)
        .map_err(|e| KernelError::Internal(format!("cannot build a batch of {schema}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int16Array, LargeStringArray};
    use arrow::datatypes::{DataType, Field as ArrowField, Schema as ArrowSchema};
    use sluice_catalogs::Field;

    #[test]
    fn zero_column_batches_keep_their_row_count() {
        let rows: Vec<Row> = vec![vec![], vec![], vec![]];
        let batch = rows_to_batch(&rows, &Schema::default()).expect("batch");
        assert_eq!((batch.num_rows(), batch.num_columns()), (3, 0));
        assert_eq!(batch_to_rows(&batch, &[]).expect("rows"), rows);
    }

    /// Rows of every SQL type, NULLs included, survive rows → batch → rows, and each
    /// value equals `array_value` of its cell.
    #[test]
    fn every_type_round_trips_through_a_batch() {
        let types = [
            SqlType::Null,
            SqlType::Boolean,
            SqlType::Int,
            SqlType::BigInt,
            SqlType::Double,
            SqlType::Decimal {
                precision: 10,
                scale: 2,
            },
            SqlType::Varchar,
            SqlType::Date,
            SqlType::Timestamp,
            SqlType::Interval,
        ];
        let schema = Schema::new(
            types
                .iter()
                .enumerate()
                .map(|(i, t)| Field::new(format!("c{i}"), *t))
                .collect(),
        );
        let full = |k: i64| -> Row {
            vec![
                Datum::Null,
                Datum::Bool(k % 2 == 0),
                Datum::Int(k - 3),
                Datum::Int(k << 40),
                Datum::Float(F64(k as f64 / 4.0)),
                Datum::Decimal(i128::from(k) * 101),
                Datum::Str(format!("s{k}é")),
                Datum::Date(i32::try_from(k).unwrap() * 30),
                Datum::Timestamp(k * 86_400_123),
                Datum::Interval(-k * 1000),
            ]
        };
        let mut rows: Vec<Row> = (0..5).map(full).collect();
        // NULLs in every column, in one row and scattered.
        rows.push(vec![Datum::Null; types.len()]);
        for (i, row) in rows.iter_mut().enumerate().take(5) {
            row[(i * 3) % types.len()] = Datum::Null;
        }
        let batch = rows_to_batch(&rows, &schema).expect("batch");
        let back = batch_to_rows(&batch, &types).expect("rows");
        assert_eq!(back, rows);
        for (r, row) in back.iter().enumerate() {
            for (c, ty) in types.iter().enumerate() {
                assert_eq!(array_value(batch.column(c), r, *ty).expect("value"), row[c]);
            }
        }
    }

    #[test]
    fn non_canonical_arrow_types_are_normalized() {
        let schema = Arc::new(ArrowSchema::new(vec![
            ArrowField::new("a", DataType::Int16, true),
            ArrowField::new("s", DataType::LargeUtf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int16Array::from(vec![Some(3), None])),
                Arc::new(LargeStringArray::from(vec![Some("x"), Some("y")])),
            ],
        )
        .expect("batch");
        let rows = batch_to_rows(&batch, &[SqlType::Int, SqlType::Varchar]).expect("rows");
        assert_eq!(
            rows,
            vec![
                vec![Datum::Int(3), Datum::Str("x".into())],
                vec![Datum::Null, Datum::Str("y".into())],
            ]
        );
    }

    #[test]
    fn shape_errors_are_internal_errors() {
        let schema = Schema::new(vec![Field::new("a", SqlType::Int)]);
        let short: Vec<Row> = vec![vec![]];
        assert!(matches!(
            rows_to_batch(&short, &schema),
            Err(KernelError::Internal(_))
        ));
        let wrong: Vec<Row> = vec![vec![Datum::Str("x".into())]];
        assert!(matches!(
            rows_to_batch(&wrong, &schema),
            Err(KernelError::Internal(_))
        ));
        let too_big: Vec<Row> = vec![vec![Datum::Int(1 << 40)]];
        assert!(rows_to_batch(&too_big, &schema).is_err());
        let ok: Vec<Row> = vec![vec![Datum::Int(1)]];
        let batch = rows_to_batch(&ok, &schema).expect("batch");
        assert!(array_value(batch.column(0), 5, SqlType::Int).is_err());
        assert!(array_value(batch.column(0), 0, SqlType::Varchar).is_err());
        assert!(batch_to_rows(&batch, &[]).is_err());
    }
}
