//! Conversions between SQL types: [`cast_datum`], text parsing ([`parse_datum`]) and
//! user-facing rendering ([`format_datum`]), plus the DECIMAL helpers they share.

use super::EvalError;
use crate::datum::{Datum, F64};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use sluice_catalogs::SqlType;

/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// `10^n` as an i128, for `n <= 38`.
pub fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// True when the unscaled decimal `v` has at most `precision` digits.
pub fn fits_precision(v: i128, precision: u8) -> bool {
    match pow10(u32::from(precision)) {
        Some(limit) => v > -limit && v < limit,
        None => true,
    }
}

/// Check that an unscaled decimal fits `DECIMAL(precision, _)`.
pub fn check_precision(v: i128, ty: SqlType) -> Result<i128, EvalError> {
    match ty {
        SqlType::Decimal { precision, scale } if !fits_precision(v, precision) => {
            Err(EvalError::new(format!(
                "decimal overflow: value {} does not fit DECIMAL({precision}, {scale})",
                format_decimal(v, scale)
            )))
        }
        _ => Ok(v),
    }
}

/// Divide by `10^digits`, rounding half away from zero.
pub fn div_round_pow10(v: i128, digits: u32) -> i128 {
    match pow10(digits) {
        Some(p) => {
            let q = v / p;
            let r = v % p;
            if r.unsigned_abs() * 2 >= p.unsigned_abs() {
                if v < 0 {
                    q - 1
                } else {
                    q + 1
                }
            } else {
                q
            }
        }
        // Dividing by more than 10^38 leaves nothing (|v| < 1.7e38 < 10^39 / 2).
        None => 0,
    }
}

/// Change the scale of an unscaled decimal (rounding half away from zero when the scale
/// shrinks); `None` on i128 overflow.
pub fn rescale(v: i128, from: u8, to: u8) -> Option<i128> {
    if to >= from {
        v.checked_mul(pow10(u32::from(to - from))?)
    } else {
        Some(div_round_pow10(v, u32::from(from - to)))
    }
}

/// The DOUBLE value of an unscaled decimal, correctly rounded (one rounding step).
pub fn decimal_to_f64(v: i128, scale: u8) -> f64 {
    const EXACT: u128 = 1 << 53;
    if scale <= 22 && v.unsigned_abs() < EXACT {
        // Both operands are exact doubles, so the quotient is rounded once.
        v as f64 / 10f64.powi(i32::from(scale))
    } else {
        format_decimal(v, scale).parse().unwrap_or(f64::NAN)
    }
}

/// Render an unscaled decimal with exactly `scale` fractional digits.
pub fn format_decimal(v: i128, scale: u8) -> String {
    let digits = v.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// A DOUBLE as DuckDB prints it: shortest round-trip digits, integral values with `.0`,
/// `nan`, `inf`, `-inf`.
pub fn format_double(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The calendar date of a DATE value (days since 1970-01-01).
pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    epoch().checked_add_signed(chrono::TimeDelta::try_days(i64::from(days))?)
}

/// Days since 1970-01-01 of a calendar date.
pub fn days_from_date(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - epoch().num_days_from_ce()
}

/// The date-time of a TIMESTAMP value (milliseconds since the epoch).
pub fn datetime_from_ms(ms: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.naive_utc())
}

/// An INTERVAL as DuckDB prints a day-time interval: `[-]N day[s]` when there are whole
/// days, then `[-]HH:MM:SS[.fff]` (fraction without trailing zeros) unless the time part
/// is zero and there were days; `00:00:00` for zero.
fn format_interval(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let days = abs / 86_400_000;
    let rest = abs % 86_400_000;
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!(
            "{sign}{days} day{}",
            if days == 1 { "" } else { "s" }
        ));
    }
    if rest > 0 || days == 0 {
        let (h, m, s, milli) = (
            rest / 3_600_000,
            rest / 60_000 % 60,
            rest / 1000 % 60,
            rest % 1000,
        );
        let mut time = format!("{sign}{h:02}:{m:02}:{s:02}");
        if milli > 0 {
            let frac = format!("{milli:03}");
            time.push('.');
            time.push_str(frac.trim_end_matches('0'));
        }
        parts.push(time);
    }
    parts.join(" ")
}

/// A user-facing rendering of a datum of type `ty` (DECIMAL with exactly its scale,
/// DOUBLE as DuckDB prints it, TIMESTAMP as `YYYY-MM-DD HH:MM:SS.mmm`, DATE as
/// `YYYY-MM-DD`, INTERVAL as DuckDB prints it (`1 day 02:03:04.5`), BOOLEAN as `true`/`false`, NULL
/// as `NULL`).
pub fn format_datum(d: &Datum, ty: SqlType) -> String {
    match d {
        Datum::Null => "NULL".into(),
        Datum::Bool(b) => if *b { "true" } else { "false" }.into(),
        Datum::Int(i) => i.to_string(),
        Datum::Float(x) => format_double(x.0),
        Datum::Decimal(v) => {
            let scale = match ty {
                SqlType::Decimal { scale, .. } => scale,
                _ => 0,
            };
            format_decimal(*v, scale)
        }
        Datum::Str(s) => s.clone(),
        Datum::Date(days) => match date_from_days(*days) {
            Some(d) => d.format("%Y-%m-%d").to_string(),
            None => format!("DATE {days}"),
        },
        Datum::Timestamp(ms) => match datetime_from_ms(*ms) {
            Some(dt) => dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            None => format!("TIMESTAMP {ms}"),
        },
        Datum::Interval(ms) => format_interval(*ms),
    }
}

fn parse_error(s: &str, ty: SqlType) -> EvalError {
    EvalError::new(format!("could not convert string '{s}' to {ty}"))
}

/// Parse an unscaled decimal with `scale` digits after the point (rounding half away
/// from zero); accepts `[+-]digits[.digits][e[+-]digits]`.
fn parse_decimal(s: &str, scale: u8) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits as one integer, with `frac.len() - exp` digits after the point.
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let frac_digits = i64::try_from(frac.len()).ok()? - i64::from(exp);
    let target = i64::from(scale);
    let value: i128 = if digits.is_empty() {
        0
    } else if frac_digits > target {
        // Drop `frac_digits - target` digits with rounding.
        let drop = usize::try_from(frac_digits - target).ok()?;
        if drop > digits.len() {
            0
        } else {
            let (keep, dropped) = digits.split_at(digits.len() - drop);
            let mut v: i128 = if keep.is_empty() {
                0
            } else {
                keep.parse().ok()?
            };
            if dropped.as_bytes().first().is_some_and(|b| *b >= b'5') {
                v = v.checked_add(1)?;
            }
            v
        }
    } else {
        let v: i128 = digits.parse().ok()?;
        let up = u32::try_from(target - frac_digits).ok()?;
        v.checked_mul(pow10(up)?)?
    };
    Some(if neg { -value } else { value })
}

use crate::temporal::{parse_date, parse_time, parse_timestamp};

/// Parse text as a value of type `ty` (CAST from VARCHAR, CSV readers). Leading and
/// trailing whitespace is ignored except for VARCHAR. Accepted forms: integers
/// `[+-]digits`; DOUBLE as Rust parses it (`inf`, `nan` included); DECIMAL
/// `[+-]d[.d][e±n]` rounded half away from zero to the scale; BOOLEAN
/// `true/false/t/f/1/0` (any case); DATE `YYYY-MM-DD`; TIMESTAMP
/// `YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]]` (extra fractional digits truncated); INTERVAL as
/// milliseconds, `[-]HH:MM:SS[.fff]` or `[-]N day[s] [-]HH:MM:SS[.fff]`.
pub fn parse_datum(s: &str, ty: SqlType) -> Result<Datum, EvalError> {
    let t = s.trim();
    let err = || parse_error(s, ty);
    Ok(match ty {
        SqlType::Null => Datum::Null,
        SqlType::Varchar => Datum::Str(s.to_string()),
        SqlType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Datum::Bool(true),
            "false" | "f" | "0" => Datum::Bool(false),
            _ => return Err(err()),
        },
        SqlType::Int => {
            let v: i32 = t.parse().map_err(|_| err())?;
            Datum::Int(i64::from(v))
        }
        SqlType::BigInt => Datum::Int(t.parse().map_err(|_| err())?),
        SqlType::Double => Datum::Float(F64(t.parse().map_err(|_| err())?)),
        SqlType::Decimal { scale, .. } => {
            let v = parse_decimal(t, scale).ok_or_else(err)?;
            Datum::Decimal(check_precision(v, ty)?)
        }
        SqlType::Date => Datum::Date(parse_date(t).ok_or_else(err)?),
        SqlType::Timestamp => Datum::Timestamp(parse_timestamp(t).ok_or_else(err)?),
        SqlType::Interval => match t.parse::<i64>() {
            Ok(ms) => Datum::Interval(ms),
            Err(_) => Datum::Interval(parse_interval(t).ok_or_else(err)?),
        },
    })
}

/// `[-]N day[s] [[-]H+:MM:SS[.fff]]` or `[-]H+:MM:SS[.fff]` (what [`format_datum`]
/// prints).
fn parse_interval(t: &str) -> Option<i64> {
    let mut words = t.split_whitespace();
    let first = words.next()?;
    let (days, time) = match words.next() {
        Some("day" | "days") => (first.parse::<i64>().ok()?, words.next()),
        Some(_) => return None,
        None => (0, Some(first)),
    };
    if words.next().is_some() {
        return None;
    }
    let time_ms = match time {
        Some(time) => {
            let (neg, body) = match time.strip_prefix('-') {
                Some(b) => (true, b),
                None => (false, time),
            };
            let ms = parse_time_unbounded(body)?;
            if neg {
                -ms
            } else {
                ms
            }
        }
        None => 0,
    };
    days.checked_mul(MS_PER_DAY)?.checked_add(time_ms)
}

/// `H+:MM:SS[.fff]` with any number of hours.
fn parse_time_unbounded(s: &str) -> Option<i64> {
    let (h, rest) = s.split_once(':')?;
    if h.starts_with(['+', '-']) {
        return None;
    }
    let h: i64 = h.parse().ok()?;
    let within = parse_time(&format!("00:{rest}"))?;
    h.checked_mul(3_600_000)?.checked_add(within)
}

fn cast_error(d: &Datum, from: SqlType, to: SqlType) -> EvalError {
    EvalError::new(format!(
        "cannot cast {} of type {from} to {to}: out of range",
        format_datum(d, from)
    ))
}

/// DOUBLE to an integer type: truncates toward zero, as Flink (and Java) do;
/// NaN, infinities and out-of-range values are errors.
fn f64_to_int(x: f64, to: SqlType) -> Option<i64> {
    let r = x.trunc();
    let (lo, hi) = match to {
        SqlType::Int => (-2147483648.0, 2147483648.0),
        _ => (-9223372036854775808.0, 9223372036854775808.0),
    };
    if r.is_finite() && r >= lo && r < hi {
        Some(r as i64)
    } else {
        None
    }
}

fn int_in_range(v: i64, to: SqlType) -> bool {
    to != SqlType::Int || i32::try_from(v).is_ok()
}

/// `CAST(d AS to)` for a datum of type `from`.
///
/// Numeric casts check ranges (an out-of-range value is an error); DOUBLE to integer
/// truncates toward zero (Flink); DOUBLE to DECIMAL rounds half to even (DuckDB); DECIMAL to integer and DECIMAL
/// rescaling round half away from zero (DuckDB); anything casts to VARCHAR through
/// [`format_datum`] and VARCHAR casts to anything through [`parse_datum`]; DATE ↔
/// TIMESTAMP (TIMESTAMP → DATE floors to the day); BOOLEAN ↔ numeric.
pub fn cast_datum(d: &Datum, from: SqlType, to: SqlType) -> Result<Datum, EvalError> {
    use SqlType as T;
    if d.is_null() {
        return Ok(Datum::Null);
    }
    let out_of_range = || cast_error(d, from, to);
    let unsupported = || EvalError::new(format!("cannot cast {from} to {to}"));
    if to == T::Varchar {
        return Ok(match d {
            Datum::Str(s) => Datum::Str(s.clone()),
            other => Datum::Str(format_datum(other, from)),
        });
    }
    Ok(match (d, to) {
        (Datum::Str(s), _) => parse_datum(s, to)?,
        (_, T::Null) => Datum::Null,
        // Integers and booleans.
        (Datum::Int(v), T::Int | T::BigInt) => {
            if int_in_range(*v, to) {
                Datum::Int(*v)
            } else {
                return Err(out_of_range());
            }
        }
        (Datum::Int(v), T::Double) => Datum::Float(F64(*v as f64)),
        (Datum::Int(v), T::Decimal { scale, .. }) => {
            let u = i128::from(*v)
                .checked_mul(pow10(u32::from(scale)).ok_or_else(out_of_range)?)
                .ok_or_else(out_of_range)?;
            Datum::Decimal(check_precision(u, to).map_err(|_| out_of_range())?)
        }
        (Datum::Int(v), T::Boolean) => Datum::Bool(*v != 0),
        (Datum::Bool(b), T::Boolean) => Datum::Bool(*b),
        (Datum::Bool(b), T::Int | T::BigInt) => Datum::Int(i64::from(*b)),
        (Datum::Bool(b), T::Double) => Datum::Float(F64(if *b { 1.0 } else { 0.0 })),
        (Datum::Bool(b), T::Decimal { scale, .. }) => {
            let u = if *b {
                pow10(u32::from(scale)).ok_or_else(out_of_range)?
            } else {
                0
            };
            Datum::Decimal(check_precision(u, to).map_err(|_| out_of_range())?)
        }
        // Doubles.
        (Datum::Float(x), T::Double) => Datum::Float(*x),
        (Datum::Float(x), T::Int | T::BigInt) => {
            Datum::Int(f64_to_int(x.0, to).ok_or_else(out_of_range)?)
        }
        (Datum::Float(x), T::Decimal { precision, scale }) => {
            let scaled = (x.0 * 10f64.powi(i32::from(scale))).round_ties_even();
            let limit = 10f64.powi(i32::from(precision));
            if !scaled.is_finite() || scaled <= -limit || scaled >= limit {
                return Err(out_of_range());
            }
            Datum::Decimal(scaled as i128)
        }
        (Datum::Float(x), T::Boolean) => Datum::Bool(x.0 != 0.0),
        // Decimals.
        (Datum::Decimal(v), T::Decimal { scale, .. }) => {
            let from_scale = match from {
                T::Decimal { scale, .. } => scale,
                _ => 0,
            };
            let u = rescale(*v, from_scale, scale).ok_or_else(out_of_range)?;
            Datum::Decimal(check_precision(u, to).map_err(|_| out_of_range())?)
        }
        (Datum::Decimal(v), T::Double) => {
            let s = match from {
                T::Decimal { scale, .. } => scale,
                _ => 0,
            };
            Datum::Float(F64(decimal_to_f64(*v, s)))
        }
        (Datum::Decimal(v), T::Int | T::BigInt) => {
            let s = match from {
                T::Decimal { scale, .. } => scale,
                _ => 0,
            };
            let r = div_round_pow10(*v, u32::from(s));
            let r = i64::try_from(r).map_err(|_| out_of_range())?;
            if !int_in_range(r, to) {
                return Err(out_of_range());
            }
            Datum::Int(r)
        }
        (Datum::Decimal(v), T::Boolean) => Datum::Bool(*v != 0),
        // Temporal.
        (Datum::Date(days), T::Date) => Datum::Date(*days),
        (Datum::Date(days), T::Timestamp) => Datum::Timestamp(i64::from(*days) * MS_PER_DAY),
        (Datum::Timestamp(ms), T::Timestamp) => Datum::Timestamp(*ms),
        (Datum::Timestamp(ms), T::Date) => {
            Datum::Date(i32::try_from(ms.div_euclid(MS_PER_DAY)).map_err(|_| out_of_range())?)
        }
        (Datum::Interval(ms), T::Interval) => Datum::Interval(*ms),
        _ => return Err(unsupported()),
    })
}
