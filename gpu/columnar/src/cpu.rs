//! [`CpuKernels`]: Arrow compute kernels where they match SQL semantics, the row
//! evaluator for the rest.
//!
//! Each expression node is tried on the fast path first. A node takes the fast path
//! only when its operand types are ones the Arrow kernel handles exactly like the row
//! evaluator; when a kernel reports any error (overflow included) or the node is not
//! covered, the node is evaluated row by row with
//! [`sluice_expr::eval::Evaluator`], which then produces the value or the error.
//! Lazily evaluated constructs (`AND`, `OR`, `CASE`, `COALESCE`, `IN`) take the fast
//! path only when the parts the row evaluator may skip cannot raise an error, so the
//! two paths agree on error-ness too.

use crate::convert::{array_value, datums_to_array, normalize};
use crate::{ColumnarKernels, KernelError};
use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Datum as ArrowDatum, Decimal128Array,
    Float64Array, Int64Array, RecordBatch, RecordBatchOptions, Scalar, StringArray, StringBuilder,
    TimestampMillisecondArray, UInt32Array,
};
use arrow::compute::kernels::arity::try_binary;
use arrow::compute::kernels::filter::prep_null_mask_filter;
use arrow::compute::kernels::{boolean, cmp, concat_elements, numeric, substring, zip};
use arrow::compute::{filter_record_batch, nullif, take};
use arrow::datatypes::{
    DataType, Decimal128Type, DurationMillisecondType, Float64Type, Int32Type, Int64Type,
    TimestampMillisecondType,
};
use arrow::error::ArrowError;
use sluice_catalogs::{Schema, SqlType};
use sluice_expr::eval::{
    decimal_to_f64, extract_time_ms, fixed_unit_ms, sql_lower, sql_upper, trunc_ms, with_regex,
    Evaluator, LikePattern, FLOAT_DIVISION_BY_ZERO_IS_NULL,
};
use sluice_expr::{BinaryOp, Datum, Func, ScalarExpr};
use std::sync::Arc;

/// The CPU implementation of [`ColumnarKernels`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuKernels;

/// An evaluated operand: a full column, or one value for every row.
#[derive(Clone, Debug)]
enum Value {
    Array(ArrayRef),
    /// A one-element array.
    Scalar(ArrayRef),
}

impl Value {
    fn array(&self) -> &ArrayRef {
        match self {
            Value::Array(a) | Value::Scalar(a) => a,
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }

    /// The value as an argument of an Arrow kernel taking `&dyn Datum`.
    fn datum(&self) -> Box<dyn ArrowDatum + '_> {
        match self {
            Value::Array(a) => Box::new(a.as_ref()),
            Value::Scalar(a) => Box::new(Scalar::new(Arc::clone(a))),
        }
    }

    /// A full column of `n` rows.
    fn into_array(self, n: usize) -> Result<ArrayRef, ArrowError> {
        match self {
            Value::Array(a) => Ok(a),
            Value::Scalar(a) => {
                if a.is_null(0) {
                    Ok(new_null_array(a.data_type(), n))
                } else {
                    let n = u32::try_from(n).map_err(|_| {
                        ArrowError::ComputeError(format!("batch of {n} rows is too large"))
                    })?;
                    take(a.as_ref(), &UInt32Array::from(vec![0u32; n as usize]), None)
                }
            }
        }
    }

    /// Wrap a kernel result: scalar when every input was scalar.
    fn wrap(result: ArrayRef, all_scalar: bool) -> Value {
        if all_scalar {
            Value::Scalar(result)
        } else {
            Value::Array(result)
        }
    }
}

/// The outcome of a fast-path attempt: `None` means "use the row evaluator".
type Fast = Result<Option<Value>, KernelError>;

/// Turn an Arrow error into "not on the fast path".
macro_rules! arrow_try {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(_) => return Ok(None),
        }
    };
}

/// True when evaluating `e` can raise an error for some input row (conservative).
fn may_error(e: &ScalarExpr, types: &[SqlType]) -> bool {
    let children = |args: &[&ScalarExpr]| args.iter().any(|a| may_error(a, types));
    match e {
        ScalarExpr::Column(_) | ScalarExpr::Literal(..) => false,
        ScalarExpr::Binary { op, left, right } => {
            let own = match op {
                BinaryOp::And | BinaryOp::Or | BinaryOp::Concat => false,
                op if op.is_comparison() => false,
                _ => !(left.ty(types) == SqlType::Double && right.ty(types) == SqlType::Double),
            };
            own || children(&[left, right])
        }
        ScalarExpr::Not(x) | ScalarExpr::IsNull { expr: x, .. } => may_error(x, types),
        ScalarExpr::Negate(x) => x.ty(types) != SqlType::Double || may_error(x, types),
        ScalarExpr::Cast { expr, to } => {
            let from = expr.ty(types);
            let safe = from == *to
                || *to == SqlType::Varchar
                || from == SqlType::Null
                || matches!(
                    (from, *to),
                    (SqlType::Int, SqlType::BigInt | SqlType::Double)
                        | (SqlType::BigInt, SqlType::Double)
                        | (SqlType::Decimal { .. }, SqlType::Double)
                        | (SqlType::Date, SqlType::Timestamp)
                        | (SqlType::Boolean, SqlType::Int | SqlType::BigInt)
                );
            !safe || may_error(expr, types)
        }
        ScalarExpr::Case { whens, else_ } => {
            whens
                .iter()
                .any(|(c, r)| may_error(c, types) || may_error(r, types))
                || else_.as_ref().is_some_and(|x| may_error(x, types))
        }
        ScalarExpr::Coalesce(args) => args.iter().any(|a| may_error(a, types)),
        ScalarExpr::InList { expr, list, .. } => {
            may_error(expr, types) || list.iter().any(|a| may_error(a, types))
        }
        ScalarExpr::Like {
            expr,
            pattern,
            case_insensitive,
            ..
        } => {
            let pattern_ok = match pattern.as_ref() {
                ScalarExpr::Literal(Datum::Str(p), _) => {
                    LikePattern::compile(p, *case_insensitive).is_ok()
                }
                ScalarExpr::Literal(Datum::Null, _) => true,
                _ => false,
            };
            !pattern_ok || may_error(expr, types)
        }
        ScalarExpr::Call {
            func: Func::RegexpExtract,
            args,
        } => {
            // A literal pattern that compiles and a literal group cannot fail.
            let pattern_ok = matches!(args.get(1), Some(ScalarExpr::Literal(Datum::Str(p), _))
                if with_regex(p, |_| ()).is_ok());
            let group_ok = matches!(args.get(2), None | Some(ScalarExpr::Literal(..)));
            !(pattern_ok && group_ok) || may_error(&args[0], types)
        }
        ScalarExpr::Call { func, args } => {
            let own = !matches!(
                func,
                Func::Upper
                    | Func::Lower
                    | Func::Substring
                    | Func::CharLength
                    | Func::Concat
                    | Func::Trim
                    | Func::LTrim
                    | Func::RTrim
                    | Func::Replace
                    | Func::Position
                    | Func::Power
                    | Func::Exp
                    | Func::Floor
                    | Func::Ceil
            );
            own || args.iter().any(|a| may_error(a, types))
        }
    }
}

fn internal(msg: impl Into<String>) -> KernelError {
    KernelError::Internal(msg.into())
}

/// DOUBLE values with `-0.0` turned into `0.0` and every NaN into the canonical NaN,
/// so Arrow's total-order comparisons agree with SQL's (and `F64`'s).
fn canonical_floats(a: &ArrayRef) -> Option<ArrayRef> {
    let f = a.as_primitive_opt::<Float64Type>()?;
    let out: Float64Array = f.unary(|v| {
        if v.is_nan() {
            f64::NAN
        } else if v == 0.0 {
            0.0
        } else {
            v
        }
    });
    Some(Arc::new(out))
}

/// TRUE where `b` is TRUE; FALSE where it is FALSE or NULL.
fn true_mask(b: BooleanArray) -> BooleanArray {
    if b.null_count() > 0 {
        prep_null_mask_filter(&b)
    } else {
        b
    }
}

fn scale_of(t: SqlType) -> u8 {
    match t {
        SqlType::Decimal { scale, .. } => scale,
        _ => 0,
    }
}

impl CpuKernels {
    fn column(
        &self,
        i: usize,
        batch: &RecordBatch,
        types: &[SqlType],
    ) -> Result<ArrayRef, KernelError> {
        let (Some(col), Some(ty)) = (batch.columns().get(i), types.get(i)) else {
            return Err(internal(format!(
                "column {i} out of range (batch of {} columns, {} types)",
                batch.num_columns(),
                types.len()
            )));
        };
        normalize(col, *ty)
    }

    /// Evaluate `e`, on the fast path when possible. Recursive (through `fast` and
    /// `by_rows`) on expressions up to the compiler's `MAX_EXPR_DEPTH`, on timely's
    /// threads (2 MiB): the stack grows on the heap when it runs low.
    #[recursive::recursive]
    fn eval(
        &self,
        e: &ScalarExpr,
        batch: &RecordBatch,
        types: &[SqlType],
    ) -> Result<Value, KernelError> {
        match self.fast(e, batch, types)? {
            Some(v) => Ok(v),
            None => self.by_rows(e, batch, types),
        }
    }

    /// Row-at-a-time evaluation with the reference evaluator.
    fn by_rows(
        &self,
        e: &ScalarExpr,
        batch: &RecordBatch,
        types: &[SqlType],
    ) -> Result<Value, KernelError> {
        #[cfg(test)]
        tests::FALLBACKS.with(|c| c.set(c.get() + 1));
        let ev = Evaluator::new(e, types);
        let ty = e.ty(types);
        let cols = e.columns();
        if batch.num_rows() == 0 {
            // Nothing is evaluated on no rows (so nothing can fail).
            return Ok(Value::Array(datums_to_array(std::iter::empty(), ty)?));
        }
        if cols.is_empty() {
            // The same value for every row: evaluate once.
            let d = ev.eval(&[])?;
            return Ok(Value::Scalar(datums_to_array(std::iter::once(&d), ty)?));
        }
        let arrays = cols
            .iter()
            .map(|&i| Ok((i, self.column(i, batch, types)?, types[i])))
            .collect::<Result<Vec<_>, KernelError>>()?;
        let width = cols.last().map_or(0, |c| c + 1);
        let mut row = vec![Datum::Null; width];
        let mut out = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            for (i, a, t) in &arrays {
                row[*i] = array_value(a, r, *t)?;
            }
            out.push(ev.eval(&row)?);
        }
        Ok(Value::Array(datums_to_array(out.iter(), ty)?))
    }

    fn booleans(&self, v: &Value, n: usize) -> Option<BooleanArray> {
        let a = v.clone().into_array(n).ok()?;
        a.as_boolean_opt().cloned()
    }

    fn fast(&self, e: &ScalarExpr, batch: &RecordBatch, types: &[SqlType]) -> Fast {
        let n = batch.num_rows();
        Ok(Some(match e {
            ScalarExpr::Column(i) => Value::Array(self.column(*i, batch, types)?),
            ScalarExpr::Literal(d, t) => Value::Scalar(datums_to_array(std::iter::once(d), *t)?),
            ScalarExpr::Binary { op, left, right } => {
                return self.binary(*op, left, right, batch, types)
            }
            ScalarExpr::Not(x) => {
                let v = self.eval(x, batch, types)?;
                let Some(b) = v.array().as_boolean_opt() else {
                    return Ok(None);
                };
                Value::wrap(Arc::new(arrow_try!(boolean::not(b))), v.is_scalar())
            }
            ScalarExpr::IsNull { expr, negated } => {
                let v = self.eval(expr, batch, types)?;
                let a = v.array();
                let r = if *negated {
                    boolean::is_not_null(a.as_ref())
                } else {
                    boolean::is_null(a.as_ref())
                };
                Value::wrap(Arc::new(arrow_try!(r)), v.is_scalar())
            }
            ScalarExpr::Negate(x) => {
                if !matches!(
                    x.ty(types),
                    SqlType::Int | SqlType::BigInt | SqlType::Double | SqlType::Decimal { .. }
                ) {
                    return Ok(None);
                }
                let v = self.eval(x, batch, types)?;
                Value::wrap(arrow_try!(numeric::neg(v.array().as_ref())), v.is_scalar())
            }
            ScalarExpr::Cast { expr, to } => return self.cast(expr, *to, batch, types),
            ScalarExpr::Case { whens, else_ } => {
                let out = e.ty(types);
                let rest_may_error = whens
                    .iter()
                    .enumerate()
                    .any(|(i, (c, r))| (i > 0 && may_error(c, types)) || may_error(r, types))
                    || else_.as_ref().is_some_and(|x| may_error(x, types));
                if rest_may_error || out == SqlType::Null {
                    return Ok(None);
                }
                let typed = |v: Value, t: SqlType| -> Value {
                    if t == SqlType::Null {
                        Value::Scalar(new_null_array(&out.to_arrow(), 1))
                    } else {
                        v
                    }
                };
                let mut result = match else_ {
                    Some(x) => typed(self.eval(x, batch, types)?, x.ty(types)),
                    None => Value::Scalar(new_null_array(&out.to_arrow(), 1)),
                };
                for (c, r) in whens.iter().rev() {
                    let cond = self.eval(c, batch, types)?;
                    let Some(mask) = self.booleans(&cond, n) else {
                        return Ok(None);
                    };
                    let mask = true_mask(mask);
                    let then = typed(self.eval(r, batch, types)?, r.ty(types));
                    let z = arrow_try!(zip::zip(&mask, &*then.datum(), &*result.datum()));
                    result = Value::Array(z);
                }
                result
            }
            ScalarExpr::Coalesce(args) => {
                let out = e.ty(types);
                if out == SqlType::Null || args.iter().skip(1).any(|a| may_error(a, types)) {
                    return Ok(None);
                }
                let mut result = Value::Scalar(new_null_array(&out.to_arrow(), 1));
                for a in args.iter().rev() {
                    if a.ty(types) == SqlType::Null {
                        continue;
                    }
                    let v = self.eval(a, batch, types)?;
                    let arr = arrow_try!(v.clone().into_array(n));
                    let mask = arrow_try!(boolean::is_not_null(arr.as_ref()));
                    let z = arrow_try!(zip::zip(&mask, &arr, &*result.datum()));
                    result = Value::Array(z);
                }
                result
            }
            ScalarExpr::InList {
                expr,
                list,
                negated,
            } => {
                if list.is_empty() || list.iter().any(|a| may_error(a, types)) {
                    return Ok(None);
                }
                let probe_ty = expr.ty(types);
                let probe = self.eval(expr, batch, types)?;
                let mut acc: Option<Value> = None;
                for item in list {
                    let v = self.eval(item, batch, types)?;
                    let Some(eq) =
                        self.compare(BinaryOp::Eq, &probe, probe_ty, &v, item.ty(types))?
                    else {
                        return Ok(None);
                    };
                    acc = Some(match acc {
                        None => eq,
                        Some(prev) => {
                            let scalar = prev.is_scalar() && eq.is_scalar();
                            let len = if scalar { 1 } else { n };
                            let (Some(a), Some(b)) =
                                (self.booleans(&prev, len), self.booleans(&eq, len))
                            else {
                                return Ok(None);
                            };
                            Value::wrap(Arc::new(arrow_try!(boolean::or_kleene(&a, &b))), scalar)
                        }
                    });
                }
                let Some(acc) = acc else { return Ok(None) };
                if *negated {
                    let Some(b) = acc.array().as_boolean_opt() else {
                        return Ok(None);
                    };
                    Value::wrap(Arc::new(arrow_try!(boolean::not(b))), acc.is_scalar())
                } else {
                    acc
                }
            }
            ScalarExpr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let ScalarExpr::Literal(Datum::Str(p), _) = pattern.as_ref() else {
                    return Ok(None);
                };
                if *case_insensitive || p.contains('\\') || expr.ty(types) != SqlType::Varchar {
                    return Ok(None);
                }
                let v = self.eval(expr, batch, types)?;
                let pat = StringArray::new_scalar(p.as_str());
                let r = if *negated {
                    arrow::compute::kernels::comparison::nlike(&*v.datum(), &pat)
                } else {
                    arrow::compute::kernels::comparison::like(&*v.datum(), &pat)
                };
                Value::wrap(Arc::new(arrow_try!(r)), v.is_scalar())
            }
            ScalarExpr::Call { func, args } => return self.call(*func, args, batch, types),
        }))
    }

    fn binary(
        &self,
        op: BinaryOp,
        left: &ScalarExpr,
        right: &ScalarExpr,
        batch: &RecordBatch,
        types: &[SqlType],
    ) -> Fast {
        let n = batch.num_rows();
        let (lt, rt) = (left.ty(types), right.ty(types));
        match op {
            BinaryOp::And | BinaryOp::Or => {
                if may_error(right, types) {
                    return Ok(None);
                }
                let l = self.eval(left, batch, types)?;
                let r = self.eval(right, batch, types)?;
                let scalar = l.is_scalar() && r.is_scalar();
                let len = if scalar { 1 } else { n };
                let (Some(a), Some(b)) = (self.booleans(&l, len), self.booleans(&r, len)) else {
                    return Ok(None);
                };
                let out = if op == BinaryOp::And {
                    boolean::and_kleene(&a, &b)
                } else {
                    boolean::or_kleene(&a, &b)
                };
                Ok(Some(Value::wrap(Arc::new(arrow_try!(out)), scalar)))
            }
            op if op.is_comparison() => {
                let l = self.eval(left, batch, types)?;
                let r = self.eval(right, batch, types)?;
                self.compare(op, &l, lt, &r, rt)
            }
            BinaryOp::Concat => {
                let l = self.eval(left, batch, types)?;
                let r = self.eval(right, batch, types)?;
                let scalar = l.is_scalar() && r.is_scalar();
                let len = if scalar { 1 } else { n };
                let a = arrow_try!(l.into_array(len));
                let b = arrow_try!(r.into_array(len));
                let (Some(a), Some(b)) = (a.as_string_opt::<i32>(), b.as_string_opt::<i32>())
                else {
                    return Ok(None);
                };
                let out = arrow_try!(concat_elements::concat_elements_utf8(a, b));
                Ok(Some(Value::wrap(Arc::new(out), scalar)))
            }
            _ => self.arithmetic(op, left, lt, right, rt, batch, types),
        }
    }

    /// A comparison of two evaluated operands; `None` when the types are not ones the
    /// Arrow kernels compare like SQL.
    fn compare(&self, op: BinaryOp, l: &Value, lt: SqlType, r: &Value, rt: SqlType) -> Fast {
        let scalar = l.is_scalar() && r.is_scalar();
        if lt == SqlType::Null || rt == SqlType::Null {
            return Ok(None);
        }
        let prep = |v: &Value, t: SqlType, other: SqlType| -> Option<Value> {
            let a = v.array();
            let a = match (t, other) {
                (SqlType::Double, SqlType::Double) => canonical_floats(a)?,
                (SqlType::Decimal { .. }, SqlType::Decimal { .. }) if t != other => {
                    let s = scale_of(t).max(scale_of(other));
                    let opts = arrow::compute::CastOptions {
                        safe: false,
                        ..Default::default()
                    };
                    arrow::compute::cast_with_options(
                        a.as_ref(),
                        &DataType::Decimal128(38, s as i8),
                        &opts,
                    )
                    .ok()?
                }
                _ if t == other => Arc::clone(a),
                _ => return None,
            };
            Some(if v.is_scalar() {
                Value::Scalar(a)
            } else {
                Value::Array(a)
            })
        };
        let (Some(l), Some(r)) = (prep(l, lt, rt), prep(r, rt, lt)) else {
            return Ok(None);
        };
        let (a, b) = (l.datum(), r.datum());
        let out = match op {
            BinaryOp::Eq => cmp::eq(&*a, &*b),
            BinaryOp::NotEq => cmp::neq(&*a, &*b),
            BinaryOp::Lt => cmp::lt(&*a, &*b),
            BinaryOp::LtEq => cmp::lt_eq(&*a, &*b),
            BinaryOp::Gt => cmp::gt(&*a, &*b),
            BinaryOp::GtEq => cmp::gt_eq(&*a, &*b),
            _ => return Ok(None),
        };
        Ok(Some(Value::wrap(Arc::new(arrow_try!(out)), scalar)))
    }

    #[allow(clippy::too_many_arguments)]
    fn arithmetic(
        &self,
        op: BinaryOp,
        left: &ScalarExpr,
        lt: SqlType,
        right: &ScalarExpr,
        rt: SqlType,
        batch: &RecordBatch,
        types: &[SqlType],
    ) -> Fast {
        use SqlType as T;
        // TIMESTAMP ± INTERVAL, INTERVAL + TIMESTAMP.
        let timestamp_first = match (op, lt, rt) {
            (BinaryOp::Add | BinaryOp::Sub, T::Timestamp, T::Interval) => Some(true),
            (BinaryOp::Add, T::Interval, T::Timestamp) => Some(false),
            _ => None,
        };
        if let Some(timestamp_first) = timestamp_first {
            let l = self.eval(left, batch, types)?;
            let r = self.eval(right, batch, types)?;
            let scalar = l.is_scalar() && r.is_scalar();
            let len = if scalar { 1 } else { batch.num_rows() };
            let (t, i) = if timestamp_first { (l, r) } else { (r, l) };
            let t = arrow_try!(t.into_array(len));
            let i = arrow_try!(i.into_array(len));
            let (Some(t), Some(i)) = (
                t.as_primitive_opt::<TimestampMillisecondType>(),
                i.as_primitive_opt::<DurationMillisecondType>(),
            ) else {
                return Ok(None);
            };
            let sub = op == BinaryOp::Sub;
            let out: Result<TimestampMillisecondArray, ArrowError> = try_binary(t, i, |t, i| {
                if sub {
                    t.checked_sub(i)
                } else {
                    t.checked_add(i)
                }
                .ok_or_else(|| ArrowError::ArithmeticOverflow("timestamp".into()))
            });
            return Ok(Some(Value::wrap(Arc::new(arrow_try!(out)), scalar)));
        }
        let numeric_pair = matches!(
            (lt, rt),
            (T::Int, T::Int) | (T::BigInt, T::BigInt) | (T::Double, T::Double)
        ) || matches!((lt, rt), (T::Decimal { .. }, T::Decimal { .. }));
        if !numeric_pair {
            return Ok(None);
        }
        if matches!(lt, T::Decimal { .. }) && op == BinaryOp::Mod {
            return Ok(None);
        }
        let out_ty = sluice_expr::expr::arithmetic_type(op, lt, rt);
        let l = self.eval(left, batch, types)?;
        let r = self.eval(right, batch, types)?;
        let scalar = l.is_scalar() && r.is_scalar();
        // DECIMAL / DECIMAL is DOUBLE division.
        let (l, r) = if let (T::Decimal { .. }, BinaryOp::Div) = (lt, op) {
            let to_f = |v: &Value, s: u8| -> Option<Value> {
                let d = v.array().as_primitive_opt::<Decimal128Type>()?;
                let f: Float64Array = d.unary(|x| decimal_to_f64(x, s));
                let a: ArrayRef = Arc::new(f);
                Some(Value::wrap(a, v.is_scalar()))
            };
            let (Some(l), Some(r)) = (to_f(&l, scale_of(lt)), to_f(&r, scale_of(rt))) else {
                return Ok(None);
            };
            (l, r)
        } else {
            (l, r)
        };
        // `/` and `%` by zero are NULL: null out zero divisors first.
        let r = if matches!(op, BinaryOp::Div | BinaryOp::Mod) {
            let a = r.array();
            let zero: BooleanArray = match a.data_type() {
                DataType::Int32 => a
                    .as_primitive::<Int32Type>()
                    .iter()
                    .map(|v| v.map(|v| v == 0))
                    .collect(),
                DataType::Int64 => a
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| v.map(|v| v == 0))
                    .collect(),
                DataType::Float64 if !FLOAT_DIVISION_BY_ZERO_IS_NULL => a
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(|_| false))
                    .collect(),
                DataType::Float64 => a
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(|v| v == 0.0))
                    .collect(),
                _ => return Ok(None),
            };
            Value::wrap(arrow_try!(nullif(a.as_ref(), &zero)), r.is_scalar())
        } else {
            r
        };
        let (a, b) = (l.datum(), r.datum());
        let out = match op {
            BinaryOp::Add => numeric::add(&*a, &*b),
            BinaryOp::Sub => numeric::sub(&*a, &*b),
            BinaryOp::Mul => numeric::mul(&*a, &*b),
            BinaryOp::Div => numeric::div(&*a, &*b),
            BinaryOp::Mod => numeric::rem(&*a, &*b),
            _ => return Ok(None),
        };
        let out = arrow_try!(out);
        let out = match out_ty {
            T::Decimal { precision, scale } => {
                let Some(d) = out.as_primitive_opt::<Decimal128Type>() else {
                    return Ok(None);
                };
                if d.scale() != scale as i8 {
                    return Ok(None);
                }
                // Overflow of the result precision: the row evaluator reports it.
                arrow_try!(d.validate_decimal_precision(precision));
                let d: Decimal128Array =
                    arrow_try!(d.clone().with_precision_and_scale(precision, scale as i8));
                Arc::new(d) as ArrayRef
            }
            _ => out,
        };
        Ok(Some(Value::wrap(out, scalar)))
    }

    fn cast(&self, expr: &ScalarExpr, to: SqlType, batch: &RecordBatch, types: &[SqlType]) -> Fast {
        use SqlType as T;
        let from = expr.ty(types);
        if from == to {
            return self.eval(expr, batch, types).map(Some);
        }
        if from == T::Null {
            // Only NULLs have the NULL type.
            let v = self.eval(expr, batch, types)?;
            let len = if v.is_scalar() { 1 } else { batch.num_rows() };
            return Ok(Some(Value::wrap(
                new_null_array(&to.to_arrow(), len),
                v.is_scalar(),
            )));
        }
        match (from, to) {
            (T::Int, T::BigInt | T::Double) | (T::BigInt, T::Double | T::Int) => {
                let v = self.eval(expr, batch, types)?;
                let opts = arrow::compute::CastOptions {
                    safe: false,
                    ..Default::default()
                };
                let out = arrow_try!(arrow::compute::cast_with_options(
                    v.array().as_ref(),
                    &to.to_arrow(),
                    &opts
                ));
                Ok(Some(Value::wrap(out, v.is_scalar())))
            }
            (T::Decimal { scale, .. }, T::Double) => {
                let v = self.eval(expr, batch, types)?;
                let Some(d) = v.array().as_primitive_opt::<Decimal128Type>() else {
                    return Ok(None);
                };
                let f: Float64Array = d.unary(|x| decimal_to_f64(x, scale));
                Ok(Some(Value::wrap(Arc::new(f), v.is_scalar())))
            }
            (T::Double, T::BigInt | T::Int) => {
                let v = self.eval(expr, batch, types)?;
                let Some(f) = v.array().as_primitive_opt::<Float64Type>() else {
                    return Ok(None);
                };
                let (lo, hi) = if to == T::Int {
                    (-2147483648.0, 2147483648.0)
                } else {
                    (-9223372036854775808.0, 9223372036854775808.0)
                };
                // Truncate toward zero, as the row evaluator (Flink); out of range is an
                // error, reported by the row evaluator.
                let r: Result<Int64Array, ()> = f.try_unary(|x| {
                    let r = x.trunc();
                    if r.is_finite() && r >= lo && r < hi {
                        Ok(r as i64)
                    } else {
                        Err(())
                    }
                });
                let r: ArrayRef = Arc::new(arrow_try!(r));
                let out = if to == T::Int {
                    arrow_try!(arrow::compute::cast(r.as_ref(), &DataType::Int32))
                } else {
                    r
                };
                Ok(Some(Value::wrap(out, v.is_scalar())))
            }
            _ => Ok(None),
        }
    }

    fn call(
        &self,
        func: Func,
        args: &[ScalarExpr],
        batch: &RecordBatch,
        types: &[SqlType],
    ) -> Fast {
        let strings =
            |v: &Value| -> Option<StringArray> { v.array().as_string_opt::<i32>().cloned() };
        match func {
            Func::Upper | Func::Lower | Func::CharLength => {
                let [x] = args else { return Ok(None) };
                let v = self.eval(x, batch, types)?;
                let Some(s) = strings(&v) else {
                    return Ok(None);
                };
                let out: ArrayRef = match func {
                    Func::Upper => {
                        Arc::new(s.iter().map(|o| o.map(sql_upper)).collect::<StringArray>())
                    }
                    Func::Lower => {
                        Arc::new(s.iter().map(|o| o.map(sql_lower)).collect::<StringArray>())
                    }
                    _ => {
                        let lens: Int64Array = s
                            .iter()
                            .map(|o| {
                                o.map(|s| i64::try_from(s.chars().count()).unwrap_or(i64::MAX))
                            })
                            .collect();
                        Arc::new(lens)
                    }
                };
                Ok(Some(Value::wrap(out, v.is_scalar())))
            }
            Func::Substring => {
                // Arrow's substring_by_char matches SQL for start >= 1 and length >= 0.
                let (x, start, len) = match args {
                    [x, ScalarExpr::Literal(Datum::Int(s), _)] => (x, *s, None),
                    [x, ScalarExpr::Literal(Datum::Int(s), _), ScalarExpr::Literal(Datum::Int(l), _)] => {
                        (x, *s, Some(*l))
                    }
                    _ => return Ok(None),
                };
                let Some(len) = len.map(u64::try_from).transpose().ok() else {
                    return Ok(None);
                };
                if start < 1 {
                    return Ok(None);
                }
                let v = self.eval(x, batch, types)?;
                let Some(s) = strings(&v) else {
                    return Ok(None);
                };
                let out = arrow_try!(substring::substring_by_char(&s, start - 1, len));
                Ok(Some(Value::wrap(Arc::new(out), v.is_scalar())))
            }
            Func::Extract(unit) if extract_time_ms(unit, 0).is_some() => {
                let [x] = args else { return Ok(None) };
                if x.ty(types) != SqlType::Timestamp {
                    return Ok(None);
                }
                let v = self.eval(x, batch, types)?;
                let Some(t) = v.array().as_primitive_opt::<TimestampMillisecondType>() else {
                    return Ok(None);
                };
                let out: Result<Int64Array, ()> =
                    t.try_unary(|t| extract_time_ms(unit, t).ok_or(()));
                Ok(Some(Value::wrap(Arc::new(arrow_try!(out)), v.is_scalar())))
            }
            Func::DateTrunc(unit) | Func::DateCeil(unit) if fixed_unit_ms(unit).is_some() => {
                let [x] = args else { return Ok(None) };
                let Some(step) = fixed_unit_ms(unit) else {
                    return Ok(None);
                };
                if x.ty(types) != SqlType::Timestamp {
                    return Ok(None);
                }
                let ceil = matches!(func, Func::DateCeil(_));
                let v = self.eval(x, batch, types)?;
                let Some(t) = v.array().as_primitive_opt::<TimestampMillisecondType>() else {
                    return Ok(None);
                };
                // Overflow near the ends of the range: the row evaluator reports it.
                let out: Result<TimestampMillisecondArray, ()> =
                    t.try_unary(|t| trunc_ms(t, step, ceil).ok_or(()));
                Ok(Some(Value::wrap(Arc::new(arrow_try!(out)), v.is_scalar())))
            }
            Func::DateFormat => {
                let [x, ScalarExpr::Literal(Datum::Str(pattern), _)] = args else {
                    return Ok(None);
                };
                let v = self.eval(x, batch, types)?;
                let Some(t) = v.array().as_primitive_opt::<TimestampMillisecondType>() else {
                    return Ok(None);
                };
                let mut out = StringBuilder::with_capacity(t.len(), t.len() * pattern.len());
                let mut text = String::new();
                for ms in t.iter() {
                    match ms {
                        None => out.append_null(),
                        Some(ms) => {
                            text.clear();
                            // A failure (a pattern the binder let through, a timestamp
                            // out of range) is the row evaluator's to report.
                            if sluice_expr::temporal::format_java(ms, pattern, &mut text).is_err() {
                                return Ok(None);
                            }
                            out.append_value(&text);
                        }
                    }
                }
                Ok(Some(Value::wrap(Arc::new(out.finish()), v.is_scalar())))
            }
            Func::RegexpExtract => {
                let (x, pattern, group) = match args {
                    [x, ScalarExpr::Literal(Datum::Str(p), _)] => (x, p, 0),
                    [x, ScalarExpr::Literal(Datum::Str(p), _), ScalarExpr::Literal(Datum::Int(g), _)] => {
                        (x, p, *g)
                    }
                    _ => return Ok(None),
                };
                let Ok(group) = usize::try_from(group) else {
                    return Ok(None);
                };
                let v = self.eval(x, batch, types)?;
                let Some(s) = strings(&v) else {
                    return Ok(None);
                };
                let out = with_regex(pattern, |re| {
                    let mut locations = re.capture_locations();
                    let mut out = StringBuilder::with_capacity(s.len(), s.len() * 4);
                    for text in s.iter() {
                        // The first match's group, as the row evaluator's `captures`.
                        match text.and_then(|text| {
                            re.captures_read(&mut locations, text)?;
                            let (a, b) = locations.get(group)?;
                            Some(&text[a..b])
                        }) {
                            Some(m) => out.append_value(m),
                            None => out.append_null(),
                        }
                    }
                    out.finish()
                });
                let Ok(out) = out else { return Ok(None) };
                Ok(Some(Value::wrap(Arc::new(out), v.is_scalar())))
            }
            _ => Ok(None),
        }
    }
}

impl ColumnarKernels for CpuKernels {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn evaluate(
        &self,
        expr: &ScalarExpr,
        batch: &RecordBatch,
        input_types: &[SqlType],
    ) -> Result<ArrayRef, KernelError> {
        let v = self.eval(expr, batch, input_types)?;
        let a = v
            .into_array(batch.num_rows())
            .map_err(|e| internal(format!("cannot broadcast a value: {e}")))?;
        normalize(&a, expr.ty(input_types))
    }

    fn filter(
        &self,
        predicate: &ScalarExpr,
        batch: &RecordBatch,
        input_types: &[SqlType],
    ) -> Result<RecordBatch, KernelError> {
        let mask = self.evaluate(predicate, batch, input_types)?;
        let mask = match mask.as_boolean_opt() {
            Some(m) => m.clone(),
            // A NULL-typed predicate keeps nothing.
            None if mask.data_type() == &DataType::Null => BooleanArray::new_null(mask.len()),
            None => {
                return Err(internal(format!(
                    "filter predicate has type {}, not BOOLEAN",
                    mask.data_type()
                )))
            }
        };
        filter_record_batch(batch, &mask).map_err(|e| internal(format!("filter failed: {e}")))
    }

    fn calc(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        batch: &RecordBatch,
        input: &Schema,
        output: &Schema,
    ) -> Result<RecordBatch, KernelError> {
        let types = input.types();
        let filtered = match predicate {
            Some(p) => self.filter(p, batch, &types)?,
            None => batch.clone(),
        };
        let columns = match project {
            Some(exprs) => exprs
                .iter()
                .map(|e| self.evaluate(e, &filtered, &types))
                .collect::<Result<Vec<_>, _>>()?,
            None => filtered.columns().to_vec(),
        };
        let options = RecordBatchOptions::new().with_row_count(Some(filtered.num_rows()));
        RecordBatch::try_new_with_options(output.to_arrow(), columns, &options)
            .map_err(|e| internal(format!("calc output does not match {output}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::rows_to_batch;
    use sluice_catalogs::Field;
    use sluice_expr::Row;
    use std::cell::Cell;

    thread_local! {
        /// Number of row-evaluator fallbacks on this thread.
        pub(super) static FALLBACKS: Cell<usize> = const { Cell::new(0) };
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("i", SqlType::Int),
            Field::new("b", SqlType::BigInt),
            Field::new("d", SqlType::Double),
            Field::new(
                "m",
                SqlType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            Field::new("s", SqlType::Varchar),
            Field::new("t", SqlType::Boolean),
        ])
    }

    fn batch() -> RecordBatch {
        let rows: Vec<Row> = vec![
            vec![
                Datum::Int(1),
                Datum::Int(10),
                Datum::Float(sluice_expr::F64(1.5)),
                Datum::Decimal(150),
                Datum::Str("apple".into()),
                Datum::Bool(true),
            ],
            vec![
                Datum::Int(-7),
                Datum::Int(0),
                Datum::Float(sluice_expr::F64(-0.0)),
                Datum::Decimal(-5),
                Datum::Str("banana".into()),
                Datum::Bool(false),
            ],
            vec![Datum::Null; 6],
        ];
        rows_to_batch(&rows, &schema()).expect("batch")
    }

    fn col(i: usize) -> ScalarExpr {
        ScalarExpr::col(i)
    }
    fn big(v: i64) -> ScalarExpr {
        ScalarExpr::lit(Datum::Int(v), SqlType::BigInt)
    }
    fn int(v: i64) -> ScalarExpr {
        ScalarExpr::lit(Datum::Int(v), SqlType::Int)
    }
    fn bin(op: BinaryOp, l: ScalarExpr, r: ScalarExpr) -> ScalarExpr {
        ScalarExpr::binary(op, l, r)
    }

    /// Evaluate, returning the values and how many fallbacks happened.
    fn run(e: &ScalarExpr) -> (Vec<Datum>, usize) {
        let types = schema().types();
        FALLBACKS.with(|c| c.set(0));
        let out = CpuKernels.evaluate(e, &batch(), &types).expect("evaluates");
        let fallbacks = FALLBACKS.with(|c| c.get());
        let ty = e.ty(&types);
        let values = (0..out.len())
            .map(|r| array_value(&out, r, ty).expect("value"))
            .collect();
        (values, fallbacks)
    }

    #[test]
    fn fast_path_covers_common_expressions() {
        let like = ScalarExpr::Like {
            expr: Box::new(col(4)),
            pattern: Box::new(ScalarExpr::lit(Datum::Str("a%".into()), SqlType::Varchar)),
            negated: false,
            case_insensitive: false,
        };
        let cases: Vec<(ScalarExpr, Vec<Datum>)> = vec![
            (
                bin(BinaryOp::Gt, bin(BinaryOp::Add, col(1), big(5)), big(6)),
                vec![Datum::Bool(true), Datum::Bool(false), Datum::Null],
            ),
            (
                bin(BinaryOp::And, like.clone(), col(5)),
                vec![Datum::Bool(true), Datum::Bool(false), Datum::Null],
            ),
            (
                bin(BinaryOp::Div, col(0), int(2)),
                vec![Datum::Int(0), Datum::Int(-3), Datum::Null],
            ),
            (
                bin(BinaryOp::Div, big(100), col(1)),
                vec![Datum::Int(10), Datum::Null, Datum::Null],
            ),
            (
                bin(
                    BinaryOp::Eq,
                    col(2),
                    ScalarExpr::lit(Datum::Float(sluice_expr::F64(0.0)), SqlType::Double),
                ),
                vec![Datum::Bool(false), Datum::Bool(true), Datum::Null],
            ),
            (
                ScalarExpr::Case {
                    whens: vec![(col(5), col(4))],
                    else_: Some(Box::new(ScalarExpr::lit(
                        Datum::Str("none".into()),
                        SqlType::Varchar,
                    ))),
                },
                vec![
                    Datum::Str("apple".into()),
                    Datum::Str("none".into()),
                    Datum::Str("none".into()),
                ],
            ),
            (
                ScalarExpr::InList {
                    expr: Box::new(col(0)),
                    list: vec![int(1), ScalarExpr::lit(Datum::Null, SqlType::Int)],
                    negated: false,
                },
                vec![Datum::Bool(true), Datum::Null, Datum::Null],
            ),
            (
                bin(
                    BinaryOp::Mul,
                    col(3),
                    ScalarExpr::lit(
                        Datum::Decimal(2),
                        SqlType::Decimal {
                            precision: 3,
                            scale: 0,
                        },
                    ),
                ),
                vec![Datum::Decimal(300), Datum::Decimal(-10), Datum::Null],
            ),
            (
                ScalarExpr::Cast {
                    expr: Box::new(col(2)),
                    to: SqlType::BigInt,
                },
                // Truncation toward zero (Flink).
                vec![Datum::Int(1), Datum::Int(0), Datum::Null],
            ),
            (
                ScalarExpr::Call {
                    func: Func::Upper,
                    args: vec![col(4)],
                },
                vec![
                    Datum::Str("APPLE".into()),
                    Datum::Str("BANANA".into()),
                    Datum::Null,
                ],
            ),
            (
                ScalarExpr::Call {
                    func: Func::Extract(sluice_expr::TimeUnit::Hour),
                    args: vec![ScalarExpr::Call {
                        func: Func::DateTrunc(sluice_expr::TimeUnit::Minute),
                        args: vec![bin(
                            BinaryOp::Add,
                            ScalarExpr::lit(Datum::Timestamp(3_600_000), SqlType::Timestamp),
                            ScalarExpr::Cast {
                                expr: Box::new(ScalarExpr::lit(Datum::Null, SqlType::Null)),
                                to: SqlType::Interval,
                            },
                        )],
                    }],
                },
                vec![Datum::Null, Datum::Null, Datum::Null],
            ),
            (
                ScalarExpr::Coalesce(vec![col(1), big(-1)]),
                vec![Datum::Int(10), Datum::Int(0), Datum::Int(-1)],
            ),
            // Nexmark q21's shape: a CASE whose ELSE extracts with a literal pattern
            // (which cannot fail, so the CASE stays columnar too).
            (
                ScalarExpr::Case {
                    whens: vec![(
                        col(5),
                        ScalarExpr::lit(Datum::Str("x".into()), SqlType::Varchar),
                    )],
                    else_: Some(Box::new(ScalarExpr::Call {
                        func: Func::RegexpExtract,
                        args: vec![
                            col(4),
                            ScalarExpr::lit(Datum::Str("a(n+)".into()), SqlType::Varchar),
                            int(1),
                        ],
                    })),
                },
                vec![Datum::Str("x".into()), Datum::Str("n".into()), Datum::Null],
            ),
            (
                ScalarExpr::Call {
                    func: Func::DateFormat,
                    args: vec![
                        ScalarExpr::lit(Datum::Timestamp(86_400_000), SqlType::Timestamp),
                        ScalarExpr::lit(Datum::Str("yyyy-MM-dd".into()), SqlType::Varchar),
                    ],
                },
                vec![Datum::Str("1970-01-02".into()); 3],
            ),
        ];
        for (e, want) in cases {
            let (got, fallbacks) = run(&e);
            assert_eq!(got, want, "{e:?}");
            assert_eq!(fallbacks, 0, "took the row path: {e:?}");
        }
    }

    #[test]
    fn falls_back_for_functions_without_kernels() {
        let e = ScalarExpr::Call {
            func: Func::Replace,
            args: vec![
                col(4),
                ScalarExpr::lit(Datum::Str("an".into()), SqlType::Varchar),
                ScalarExpr::lit(Datum::Str("AN".into()), SqlType::Varchar),
            ],
        };
        let (got, fallbacks) = run(&e);
        assert_eq!(
            got,
            vec![
                Datum::Str("apple".into()),
                Datum::Str("bANANa".into()),
                Datum::Null
            ]
        );
        assert_eq!(fallbacks, 1);
    }

    #[test]
    fn overflow_is_an_execution_error() {
        let e = bin(BinaryOp::Add, col(0), int(i64::from(i32::MAX)));
        let err = CpuKernels
            .evaluate(&e, &batch(), &schema().types())
            .expect_err("overflow");
        assert!(
            matches!(err, KernelError::Execution(ref m) if m.contains("overflow")),
            "{err:?}"
        );
    }

    #[test]
    fn filter_and_calc() {
        let types = schema().types();
        let pred = bin(BinaryOp::Gt, col(0), int(0));
        let filtered = CpuKernels.filter(&pred, &batch(), &types).expect("filter");
        assert_eq!(filtered.num_rows(), 1);

        let out_schema = Schema::new(vec![
            Field::new("s", SqlType::Varchar),
            Field::new("b2", SqlType::BigInt),
        ]);
        let exprs = vec![col(4), bin(BinaryOp::Mul, col(1), big(2))];
        let out = CpuKernels
            .calc(Some(&pred), Some(&exprs), &batch(), &schema(), &out_schema)
            .expect("calc");
        let rows = crate::batch_to_rows(&out, &out_schema.types()).expect("rows");
        assert_eq!(rows, vec![vec![Datum::Str("apple".into()), Datum::Int(20)]]);
        assert_eq!(out.schema().field(1).name(), "b2");

        // No predicate, no projection: the batch under the output schema.
        let all = CpuKernels
            .calc(None, None, &batch(), &schema(), &schema())
            .expect("calc");
        assert_eq!(all.num_rows(), 3);

        // A wrong output schema is an internal error, not a panic.
        let err = CpuKernels
            .calc(None, Some(&exprs), &batch(), &schema(), &schema())
            .expect_err("schema mismatch");
        assert!(matches!(err, KernelError::Internal(_)));
    }

    #[test]
    fn null_predicate_keeps_nothing() {
        let pred = ScalarExpr::lit(Datum::Null, SqlType::Null);
        let out = CpuKernels
            .filter(&pred, &batch(), &schema().types())
            .expect("filter");
        assert_eq!(out.num_rows(), 0);
    }
}
