//! Text and JSON values to typed Arrow columns, and typed Arrow cells back to text.
//!
//! Every format connector decodes fields through this one module so the parsing rules
//! (what a `DECIMAL`, a `DATE` or a `TIMESTAMP(3)` looks like as text) are the same
//! everywhere and can later be swapped for `sluice_expr::eval::parse_datum`.
//!
//! Parsing never panics: a malformed field is an `Err(message)` that the caller turns
//! into a [`crate::BadRecord`].
//!
//! Textual forms (read and written):
//! * `BOOLEAN`: `true`/`false` (case-insensitive; `1`/`0` also read);
//! * `INT`, `BIGINT`, `INTERVAL` (milliseconds): decimal integers;
//! * `DOUBLE`: Rust float syntax (`NaN`, `inf` accepted);
//! * `DECIMAL(p, s)`: `[-]digits[.digits][e±n]`, rounded half away from zero to `s`
//!   digits, rejected when it needs more than `p` digits;
//! * `DATE`: `YYYY-MM-DD`;
//! * `TIMESTAMP(3)`: `YYYY-MM-DD HH:MM:SS[.fff]` or with `T` instead of the space (a
//!   bare date is midnight); in JSON also an integer number of epoch milliseconds.

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Date32Array, Date32Builder, Decimal128Array,
    Decimal128Builder, DurationMillisecondArray, DurationMillisecondBuilder, Float64Array,
    Float64Builder, Int32Array, Int32Builder, Int64Array, Int64Builder, NullArray, StringArray,
    StringBuilder, TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use chrono::{DateTime, NaiveDate};
use sluice_catalogs::SqlType;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

/// One decoded field, typed by the column it is destined for.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// INT, BIGINT, DATE (days), TIMESTAMP (ms) or INTERVAL (ms).
    Int(i64),
    /// DOUBLE.
    Float(f64),
    /// DECIMAL: the unscaled value.
    Decimal(i128),
    /// VARCHAR.
    Str(Cow<'a, str>),
}

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Parse a text field as a value of `ty`. Surrounding whitespace is ignored for every
/// type except VARCHAR.
pub fn parse_text<'a>(s: &'a str, ty: SqlType) -> Result<Value<'a>, String> {
    if ty == SqlType::Varchar {
        return Ok(Value::Str(Cow::Borrowed(s)));
    }
    let t = s.trim();
    let bad = |what: &str| format!("cannot parse '{}' as {ty}{what}", truncate(s, 64));
    match ty {
        SqlType::Null => Err(bad(" (only NULL)")),
        SqlType::Varchar => Ok(Value::Str(Cow::Borrowed(s))),
        SqlType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad("")),
        },
        SqlType::Int => t
            .parse::<i32>()
            .map(|v| Value::Int(v.into()))
            .map_err(|e| bad(&format!(": {e}"))),
        SqlType::BigInt | SqlType::Interval => t
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|e| bad(&format!(": {e}"))),
        SqlType::Double => t
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|e| bad(&format!(": {e}"))),
        SqlType::Decimal { precision, scale } => parse_decimal(t, precision, scale)
            .map(Value::Decimal)
            .map_err(|e| bad(&format!(": {e}"))),
        SqlType::Date => parse_date(t)
            .map(Value::Int)
            .ok_or_else(|| bad(" (want YYYY-MM-DD)")),
        SqlType::Timestamp => parse_timestamp(t)
            .map(Value::Int)
            .ok_or_else(|| bad(" (want YYYY-MM-DD HH:MM:SS[.fff])")),
    }
}

/// Convert a JSON value to a value of `ty`. JSON `null` is NULL; strings are parsed
/// with [`parse_text`] for non-string types; numbers must fit the type.
pub fn parse_json<'a>(v: &'a serde_json::Value, ty: SqlType) -> Result<Value<'a>, String> {
    use serde_json::Value as J;
    let wrong = || format!("expected {ty}, found {}", describe_json(v));
    match (v, ty) {
        (J::Null, _) => Ok(Value::Null),
        (J::String(s), SqlType::Varchar) => Ok(Value::Str(Cow::Borrowed(s.as_str()))),
        (J::String(s), _) => parse_text(s, ty),
        (J::Bool(b), SqlType::Boolean) => Ok(Value::Bool(*b)),
        (J::Number(n), SqlType::Int) => n
            .as_i64()
            .and_then(|x| i32::try_from(x).ok())
            .map(|x| Value::Int(x.into()))
            .ok_or_else(|| format!("{n} is not an INT")),
        (J::Number(n), SqlType::BigInt | SqlType::Interval | SqlType::Timestamp) => n
            .as_i64()
            .map(Value::Int)
            .ok_or_else(|| format!("{n} is not a 64-bit integer")),
        (J::Number(n), SqlType::Double) => n
            .as_f64()
            .map(Value::Float)
            .ok_or_else(|| format!("{n} is not a DOUBLE")),
        (J::Number(n), SqlType::Decimal { precision, scale }) => {
            parse_decimal(&n.to_string(), precision, scale)
                .map(Value::Decimal)
                .map_err(|e| format!("{n} as {ty}: {e}"))
        }
        _ => Err(wrong()),
    }
}

fn describe_json(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parse a decimal number to its unscaled value at `scale`, rounding half away from
/// zero, and check it has at most `precision` digits.
pub fn parse_decimal(s: &str, precision: u8, scale: u8) -> Result<i128, String> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (
            &rest[..i],
            rest[i + 1..]
                .parse::<i32>()
                .map_err(|_| "bad exponent".to_string())?,
        ),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err("no digits".into());
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err("not a number".into());
    }
    // All digits, with the decimal point after `point` of them.
    let all: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let lead = all.iter().take_while(|&&b| b == b'0').count();
    let digits = &all[lead..];
    let point = i64::from(exp) + int_part.len() as i64 - lead as i64;
    // Digits of the integer value * 10^scale come first; the next one rounds.
    let keep = point + i64::from(scale);
    if keep > 39 {
        return Err("out of range".into());
    }
    let mut unscaled: i128 = 0;
    if keep > 0 {
        for i in 0..keep as usize {
            let d = digits.get(i).map_or(0, |b| b - b'0');
            unscaled = unscaled
                .checked_mul(10)
                .and_then(|u| u.checked_add(i128::from(d)))
                .ok_or("out of range")?;
        }
    }
    let round_digit = if keep >= 0 {
        digits.get(keep as usize).map_or(0, |b| b - b'0')
    } else {
        0
    };
    if round_digit >= 5 {
        unscaled = unscaled.checked_add(1).ok_or("out of range")?;
    }
    let limit = 10i128
        .checked_pow(u32::from(precision))
        .unwrap_or(i128::MAX);
    if unscaled >= limit {
        return Err(format!("needs more than {precision} digits"));
    }
    Ok(if neg { -unscaled } else { unscaled })
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (see [`sluice_expr::temporal`]).
pub fn parse_date(s: &str) -> Option<i64> {
    sluice_expr::temporal::parse_date(s).map(i64::from)
}

/// Epoch milliseconds of a `YYYY-MM-DD HH:MM:SS[.fff]` (or `T`-separated, or bare date)
/// timestamp; sub-millisecond digits are truncated (see [`sluice_expr::temporal`]).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    sluice_expr::temporal::parse_timestamp(s)
}

/// `YYYY-MM-DD` for days since 1970-01-01 (the number itself when out of range).
pub fn format_date(days: i32) -> String {
    days.checked_add(UNIX_EPOCH_DAYS_FROM_CE)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

/// `YYYY-MM-DD HH:MM:SS.mmm` for epoch milliseconds (the number itself when out of range).
pub fn format_timestamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The decimal text of an unscaled value with exactly `scale` fractional digits.
pub fn format_decimal(unscaled: i128, scale: u8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let mut out = String::with_capacity(digits.len() + 3);
    if unscaled < 0 {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
        return out;
    }
    if digits.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    } else {
        let (i, f) = digits.split_at(digits.len() - scale);
        out.push_str(i);
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A builder for one column of an Arrow type given by a SQL type.
pub enum ColumnBuilder {
    /// NULL-typed column: only a length.
    Null(usize),
    /// BOOLEAN.
    Bool(BooleanBuilder),
    /// INT.
    Int(Int32Builder),
    /// BIGINT.
    BigInt(Int64Builder),
    /// DOUBLE.
    Double(Float64Builder),
    /// DECIMAL(p, s).
    Decimal(Decimal128Builder, u8, u8),
    /// VARCHAR.
    Str(StringBuilder),
    /// DATE.
    Date(Date32Builder),
    /// TIMESTAMP(3).
    Timestamp(TimestampMillisecondBuilder),
    /// INTERVAL.
    Interval(DurationMillisecondBuilder),
}

impl ColumnBuilder {
    /// An empty builder for a column of `ty`.
    pub fn new(ty: SqlType, capacity: usize) -> ColumnBuilder {
        match ty {
            SqlType::Null => ColumnBuilder::Null(0),
            SqlType::Boolean => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            SqlType::Int => ColumnBuilder::Int(Int32Builder::with_capacity(capacity)),
            SqlType::BigInt => ColumnBuilder::BigInt(Int64Builder::with_capacity(capacity)),
            SqlType::Double => ColumnBuilder::Double(Float64Builder::with_capacity(capacity)),
            SqlType::Decimal { precision, scale } => {
                ColumnBuilder::Decimal(Decimal128Builder::with_capacity(capacity), precision, scale)
            }
            SqlType::Varchar => {
                ColumnBuilder::Str(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            SqlType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(capacity)),
            SqlType::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMillisecondBuilder::with_capacity(capacity))
            }
            SqlType::Interval => {
                ColumnBuilder::Interval(DurationMillisecondBuilder::with_capacity(capacity))
            }
        }
    }

    /// Append a value that was parsed for this column's type. A value of another
    /// shape (a bug in the caller) is appended as NULL.
    pub fn append(&mut self, v: &Value<'_>) {
        match (self, v) {
            (ColumnBuilder::Null(n), _) => *n += 1,
            (ColumnBuilder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (ColumnBuilder::Int(b), Value::Int(x)) => b.append_option(i32::try_from(*x).ok()),
            (ColumnBuilder::BigInt(b), Value::Int(x)) => b.append_value(*x),
            (ColumnBuilder::Double(b), Value::Float(x)) => b.append_value(*x),
            (ColumnBuilder::Decimal(b, _, _), Value::Decimal(x)) => b.append_value(*x),
            (ColumnBuilder::Str(b), Value::Str(x)) => b.append_value(x),
            (ColumnBuilder::Date(b), Value::Int(x)) => b.append_option(i32::try_from(*x).ok()),
            (ColumnBuilder::Timestamp(b), Value::Int(x)) => b.append_value(*x),
            (ColumnBuilder::Interval(b), Value::Int(x)) => b.append_value(*x),
            (b, _) => b.append_null(),
        }
    }

    /// Append a NULL.
    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Null(n) => *n += 1,
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::BigInt(b) => b.append_null(),
            ColumnBuilder::Double(b) => b.append_null(),
            ColumnBuilder::Decimal(b, _, _) => b.append_null(),
            ColumnBuilder::Str(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
            ColumnBuilder::Interval(b) => b.append_null(),
        }
    }

    /// The last value appended to a timestamp column (ms), `None` when it is null or
    /// the column is of another type.
    pub(crate) fn last_timestamp(&self) -> Option<i64> {
        match self {
            ColumnBuilder::Timestamp(b) => {
                let n = b.values_slice().len().checked_sub(1)?;
                let valid = b
                    .validity_slice()
                    .is_none_or(|bits| bits[n / 8] & (1 << (n % 8)) != 0);
                valid.then(|| b.values_slice()[n])
            }
            _ => None,
        }
    }

    /// The finished array (the builder is reset and can be reused).
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Null(n) => {
                let a = Arc::new(NullArray::new(*n));
                *n = 0;
                a
            }
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::BigInt(b) => Arc::new(b.finish()),
            ColumnBuilder::Double(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s as i8)
                    .unwrap_or_else(|_| Decimal128Array::from(Vec::<i128>::new())),
            ),
            ColumnBuilder::Str(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::Interval(b) => Arc::new(b.finish()),
        }
    }
}

/// Row `row` of `batch` as a JSON object keyed by its column names (NULL cells as
/// `null`).
pub fn row_json(batch: &arrow::record_batch::RecordBatch, row: usize) -> String {
    let mut out = String::from("{");
    for (i, (field, column)) in batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(field.name().as_str()).to_string());
        out.push(':');
        if !write_cell(&mut out, column.as_ref(), row, TextStyle::Json) {
            out.push_str("null");
        }
    }
    out.push('}');
    out
}

/// How a cell is rendered as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextStyle {
    /// Plain text (CSV fields, print sink).
    Plain,
    /// A JSON value: strings, dates and timestamps quoted and escaped.
    Json,
}

/// Append the rendering of `array[row]` (of SQL type `ty`) to `out`; returns false
/// (and appends nothing) when the cell is NULL.
pub fn write_cell(out: &mut String, array: &dyn Array, row: usize, style: TextStyle) -> bool {
    if array.is_null(row) || array.data_type() == &arrow::datatypes::DataType::Null {
        return false;
    }
    let any = array.as_any();
    let quoted = |out: &mut String, s: &str| match style {
        TextStyle::Plain => out.push_str(s),
        TextStyle::Json => out.push_str(&serde_json::Value::from(s).to_string()),
    };
    if let Some(a) = any.downcast_ref::<BooleanArray>() {
        out.push_str(if a.value(row) { "true" } else { "false" });
    } else if let Some(a) = any.downcast_ref::<Int32Array>() {
        let _ = write!(out, "{}", a.value(row));
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        let _ = write!(out, "{}", a.value(row));
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        let x = a.value(row);
        if x.is_finite() || style == TextStyle::Plain {
            let _ = write!(out, "{x}");
        } else {
            quoted(out, &x.to_string());
        }
    } else if let Some(a) = any.downcast_ref::<Decimal128Array>() {
        out.push_str(&format_decimal(a.value(row), a.scale().max(0) as u8));
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        quoted(out, a.value(row));
    } else if let Some(a) = any.downcast_ref::<Date32Array>() {
        quoted(out, &format_date(a.value(row)));
    } else if let Some(a) = any.downcast_ref::<TimestampMillisecondArray>() {
        quoted(out, &format_timestamp(a.value(row)));
    } else if let Some(a) = any.downcast_ref::<DurationMillisecondArray>() {
        let _ = write!(out, "{}", a.value(row));
    } else {
        match arrow::util::display::ArrayFormatter::try_new(array, &Default::default()) {
            Ok(f) => quoted(out, &f.value(row).to_string()),
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_half_away_and_check_precision() {
        assert_eq!(parse_decimal("1.235", 10, 2), Ok(124));
        assert_eq!(parse_decimal("-1.235", 10, 2), Ok(-124));
        assert_eq!(parse_decimal("1.234", 10, 2), Ok(123));
        assert_eq!(parse_decimal("0.005", 10, 2), Ok(1));
        assert_eq!(parse_decimal("0.004", 10, 2), Ok(0));
        assert_eq!(parse_decimal("12", 10, 2), Ok(1200));
        assert_eq!(parse_decimal(".5", 10, 0), Ok(1));
        assert_eq!(parse_decimal("1.5e2", 10, 1), Ok(1500));
        assert_eq!(parse_decimal("15e-1", 10, 1), Ok(15));
        assert_eq!(parse_decimal("000123.4500", 5, 2), Ok(12345));
        assert!(parse_decimal("1234.5", 5, 2).is_err());
        assert!(parse_decimal("99.995", 4, 2).is_err());
        assert!(parse_decimal("abc", 5, 2).is_err());
        assert!(parse_decimal("", 5, 2).is_err());
        assert!(parse_decimal("1e99", 38, 0).is_err());
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(12345, 2), "123.45");
        assert_eq!(format_decimal(7, 0), "7");
        assert_eq!(format_decimal(i128::MIN, 3).len(), 41);
    }

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("2015-13-01"), None);
        assert_eq!(format_date(1), "1970-01-02");
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01"), Some(1000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.0019Z"), Some(1001));
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(format_timestamp(1500), "1970-01-01 00:00:01.500");
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999");
    }

    #[test]
    fn text_and_json_values() {
        assert_eq!(parse_text(" 42 ", SqlType::Int), Ok(Value::Int(42)));
        assert!(parse_text("3000000000", SqlType::Int).is_err());
        assert_eq!(parse_text("TRUE", SqlType::Boolean), Ok(Value::Bool(true)));
        assert!(parse_text("yes", SqlType::Boolean).is_err());
        assert_eq!(
            parse_text(" a ", SqlType::Varchar),
            Ok(Value::Str(" a ".into()))
        );
        let j: serde_json::Value = serde_json::json!({"n": 5, "f": 1.5, "s": "x", "b": true});
        assert_eq!(parse_json(&j["n"], SqlType::Timestamp), Ok(Value::Int(5)));
        assert_eq!(parse_json(&j["f"], SqlType::Double), Ok(Value::Float(1.5)));
        assert!(parse_json(&j["f"], SqlType::BigInt).is_err());
        assert!(parse_json(&j["s"], SqlType::BigInt).is_err());
        assert!(parse_json(&j["n"], SqlType::Varchar).is_err());
        assert!(parse_json(&j["b"], SqlType::Int).is_err());
        assert_eq!(
            parse_json(
                &j["f"],
                SqlType::Decimal {
                    precision: 5,
                    scale: 2
                }
            ),
            Ok(Value::Decimal(150))
        );
        assert_eq!(truncate("héllo", 2), "h");
    }
}
