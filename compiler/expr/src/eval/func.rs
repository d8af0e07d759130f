//! Scalar functions ([`Func`]) on row values.

use super::cast::{
    date_from_days, days_from_date, decimal_to_f64, div_round_pow10, format_datum, pow10,
    MS_PER_DAY,
};
use super::EvalError;
use crate::datum::{Datum, F64};
use crate::expr::{Func, TimeUnit};
use chrono::{Datelike, Months, NaiveDate};
use sluice_catalogs::SqlType;

/// `UPPER` as DuckDB (utf8proc) does it: per character, the simple (one-character)
/// Unicode mapping; characters whose full mapping is several characters (`ß`) stay.
pub fn sql_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// `LOWER`, the counterpart of [`sql_upper`].
pub fn sql_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut low = c.to_lowercase();
            match (low.next(), low.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        })
        .collect()
}

fn bad_args(func: Func, args: &[Datum]) -> EvalError {
    EvalError::new(format!(
        "internal error: {} got unexpected arguments {args:?}",
        func.name()
    ))
}

fn to_f64(d: &Datum, ty: SqlType) -> Option<f64> {
    match d {
        Datum::Int(i) => Some(*i as f64),
        Datum::Float(x) => Some(x.0),
        Datum::Decimal(v) => Some(decimal_to_f64(
            *v,
            match ty {
                SqlType::Decimal { scale, .. } => scale,
                _ => 0,
            },
        )),
        _ => None,
    }
}

fn as_i64(d: &Datum) -> Option<i64> {
    match d {
        Datum::Int(i) => Some(*i),
        _ => None,
    }
}

/// Calls `f` with `pattern` compiled. Compiled patterns are kept per thread (a
/// query's pattern is almost always a literal), so the columnar kernels and the row
/// evaluator compile each once.
pub fn with_regex<R>(pattern: &str, f: impl FnOnce(&regex::Regex) -> R) -> Result<R, EvalError> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static CACHE: RefCell<HashMap<String, regex::Regex>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(pattern) {
            let re = regex::Regex::new(pattern).map_err(|e| {
                EvalError::new(format!("REGEXP_EXTRACT: invalid regular expression: {e}"))
            })?;
            if cache.len() >= 64 {
                cache.clear();
            }
            cache.insert(pattern.to_string(), re);
        }
        Ok(f(&cache[pattern]))
    })
}

/// The first match of `pattern` in `s`, capture group `group`; `None` when nothing
/// matches or the group did not take part (or does not exist), as Flink's.
fn regexp_extract(s: &str, pattern: &str, group: i64) -> Result<Option<String>, EvalError> {
    let Ok(group) = usize::try_from(group) else {
        return Ok(None);
    };
    with_regex(pattern, |re| {
        re.captures(s)
            .and_then(|c| c.get(group))
            .map(|m| m.as_str().to_string())
    })
}

/// Call `func` on evaluated arguments of types `types`.
pub fn call(func: Func, args: &[Datum], types: &[SqlType]) -> Result<Datum, EvalError> {
    if func == Func::ProcTime {
        return proctime();
    }
    if func == Func::Concat {
        let mut out = String::new();
        for (a, t) in args.iter().zip(
            types
                .iter()
                .copied()
                .chain(std::iter::repeat(SqlType::Varchar)),
        ) {
            match a {
                Datum::Null => return Ok(Datum::Null),
                Datum::Str(s) => out.push_str(s),
                other => out.push_str(&format_datum(other, t)),
            }
        }
        return Ok(Datum::Str(out));
    }
    if args.iter().any(Datum::is_null) {
        return Ok(Datum::Null);
    }
    let bad = || bad_args(func, args);
    let ty0 = types.first().copied().unwrap_or(SqlType::Null);
    let str_arg = |i: usize| match args.get(i) {
        Some(Datum::Str(s)) => Ok(s.as_str()),
        _ => Err(bad_args(func, args)),
    };
    let int_arg = |i: usize| {
        args.get(i)
            .and_then(as_i64)
            .ok_or_else(|| bad_args(func, args))
    };
    // Every remaining function has at least one argument (a binder bug otherwise).
    let (Some(a0), a1) = (args.first(), args.get(1)) else {
        return Err(bad());
    };
    Ok(match func {
        Func::Upper => Datum::Str(sql_upper(str_arg(0)?)),
        Func::Lower => Datum::Str(sql_lower(str_arg(0)?)),
        Func::Substring => {
            let s = str_arg(0)?;
            let start = int_arg(1)?;
            let len = if args.len() > 2 {
                int_arg(2)?
            } else {
                i64::from(u32::MAX)
            };
            Datum::Str(substring(s, start, len))
        }
        Func::CharLength => {
            Datum::Int(i64::try_from(str_arg(0)?.chars().count()).map_err(|_| bad())?)
        }
        Func::Concat => return Err(bad()),
        Func::Trim | Func::LTrim | Func::RTrim => {
            let s = str_arg(0)?;
            let chars: Vec<char> = if args.len() > 1 {
                str_arg(1)?.chars().collect()
            } else {
                vec![' ']
            };
            let is_trim = |c: char| chars.contains(&c);
            Datum::Str(
                match func {
                    Func::Trim => s.trim_matches(is_trim),
                    Func::LTrim => s.trim_start_matches(is_trim),
                    _ => s.trim_end_matches(is_trim),
                }
                .to_string(),
            )
        }
        Func::DateFormat => {
            let Datum::Timestamp(ms) = a0 else {
                return Err(bad());
            };
            let mut out = String::new();
            crate::temporal::format_java(*ms, str_arg(1)?, &mut out).map_err(EvalError::new)?;
            Datum::Str(out)
        }
        Func::SplitIndex => {
            let (s, delimiter, i) = (str_arg(0)?, str_arg(1)?, int_arg(2)?);
            let field = usize::try_from(i).ok().and_then(|i| {
                if delimiter.is_empty() {
                    // Flink splits at whitespace when the delimiter is empty.
                    s.split(char::is_whitespace).nth(i)
                } else {
                    s.split(delimiter).nth(i)
                }
            });
            match field {
                Some(f) => Datum::Str(f.to_string()),
                None => Datum::Null,
            }
        }
        Func::RegexpExtract => {
            let group = if args.len() > 2 { int_arg(2)? } else { 0 };
            match regexp_extract(str_arg(0)?, str_arg(1)?, group)? {
                Some(s) => Datum::Str(s),
                None => Datum::Null,
            }
        }
        Func::Replace => {
            let (s, from, to) = (str_arg(0)?, str_arg(1)?, str_arg(2)?);
            if from.is_empty() {
                Datum::Str(s.to_string())
            } else {
                Datum::Str(s.replace(from, to))
            }
        }
        Func::Position => {
            let (needle, s) = (str_arg(0)?, str_arg(1)?);
            Datum::Int(match s.find(needle) {
                Some(byte) => i64::try_from(s[..byte].chars().count()).map_err(|_| bad())? + 1,
                None => 0,
            })
        }
        Func::Abs => match a0 {
            Datum::Int(i) => {
                let v = i
                    .checked_abs()
                    .filter(|v| ty0 != SqlType::Int || i32::try_from(*v).is_ok())
                    .ok_or_else(|| EvalError::new(format!("overflow in ABS({i})")))?;
                Datum::Int(v)
            }
            Datum::Float(x) => Datum::Float(F64(x.0.abs())),
            Datum::Decimal(v) => Datum::Decimal(
                v.checked_abs()
                    .ok_or_else(|| EvalError::new("overflow in ABS"))?,
            ),
            _ => return Err(bad()),
        },
        Func::Round => {
            let digits = if args.len() > 1 { int_arg(1)? } else { 0 };
            round(a0, ty0, digits)?
        }
        Func::Floor | Func::Ceil => {
            let ceil = func == Func::Ceil;
            match a0 {
                Datum::Int(i) => Datum::Int(*i),
                Datum::Float(x) => Datum::Float(F64(if ceil { x.0.ceil() } else { x.0.floor() })),
                Datum::Decimal(v) => {
                    let scale = match ty0 {
                        SqlType::Decimal { scale, .. } => scale,
                        _ => 0,
                    };
                    let p = pow10(u32::from(scale)).ok_or_else(bad)?;
                    let q = v.div_euclid(p);
                    Datum::Decimal(if ceil && v.rem_euclid(p) != 0 {
                        q + 1
                    } else {
                        q
                    })
                }
                _ => return Err(bad()),
            }
        }
        Func::Power => {
            let x = to_f64(a0, ty0).ok_or_else(bad)?;
            let y = to_f64(
                a1.ok_or_else(bad)?,
                types.get(1).copied().unwrap_or(SqlType::Double),
            )
            .ok_or_else(bad)?;
            Datum::Float(F64(x.powf(y)))
        }
        Func::Sqrt => {
            let x = to_f64(a0, ty0).ok_or_else(bad)?;
            if x < 0.0 {
                return Err(EvalError::new(format!(
                    "cannot take the square root of a negative number ({x})"
                )));
            }
            Datum::Float(F64(x.sqrt()))
        }
        Func::Ln => {
            let x = to_f64(a0, ty0).ok_or_else(bad)?;
            if x < 0.0 {
                return Err(EvalError::new(format!(
                    "cannot take the logarithm of a negative number ({x})"
                )));
            }
            if x == 0.0 {
                return Err(EvalError::new("cannot take the logarithm of zero"));
            }
            Datum::Float(F64(x.ln()))
        }
        Func::Exp => Datum::Float(F64(to_f64(a0, ty0).ok_or_else(bad)?.exp())),
        Func::Extract(unit) => Datum::Int(extract(unit, a0).ok_or_else(bad)?),
        Func::DateTrunc(unit) => {
            date_trunc(unit, a0, false).ok_or_else(|| range_error(func, a0, ty0))?
        }
        Func::DateCeil(unit) => {
            date_trunc(unit, a0, true).ok_or_else(|| range_error(func, a0, ty0))?
        }
        Func::ProcTime => proctime()?,
    })
}

/// `PROCTIME()`: the wall clock now, in ms since 1970-01-01 (TIMESTAMP(3)).
fn proctime() -> Result<Datum, EvalError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| EvalError::new("PROCTIME(): the system clock is before 1970"))?;
    i64::try_from(now.as_millis())
        .map(Datum::Timestamp)
        .map_err(|_| EvalError::new("PROCTIME(): the system clock is out of range"))
}

fn range_error(func: Func, d: &Datum, ty: SqlType) -> EvalError {
    EvalError::new(format!(
        "{} of {} is out of range",
        func.name(),
        format_datum(d, ty)
    ))
}

/// DuckDB's substring: 1-based `start`; 0 starts one character before the first;
/// negative counts from the end; a negative `len` takes characters before `start`.
fn substring(s: &str, start: i64, len: i64) -> String {
    let chars: Vec<char> = s.chars().collect();
    let size = i64::try_from(chars.len()).unwrap_or(i64::MAX);
    let mut len = len;
    if len == 0 {
        return String::new();
    }
    let mut from = if start > 0 {
        size.min(start - 1)
    } else if start < 0 {
        size.saturating_add(start).max(0)
    } else {
        len = len.saturating_sub(1);
        if len <= 0 {
            return String::new();
        }
        0
    };
    let to = if len > 0 {
        size.min(from.saturating_add(len))
    } else {
        let end = from;
        from = from.saturating_add(len).max(0);
        end
    };
    if from >= to {
        return String::new();
    }
    // from, to are in [0, size]
    let (from, to) = (
        usize::try_from(from).unwrap_or(0),
        usize::try_from(to).unwrap_or(0),
    );
    chars[from..to].iter().collect()
}

fn round(v: &Datum, ty: SqlType, digits: i64) -> Result<Datum, EvalError> {
    Ok(match v {
        Datum::Float(x) => {
            let x = x.0;
            let r = if digits >= 0 {
                let m = 10f64.powi(i32::try_from(digits.min(400)).unwrap_or(400));
                let r = (x * m).round() / m;
                if r.is_finite() {
                    r
                } else {
                    x
                }
            } else {
                let m = 10f64.powi(i32::try_from((-digits).min(400)).unwrap_or(400));
                let r = (x / m).round() * m;
                if r.is_finite() {
                    r
                } else {
                    0.0
                }
            };
            Datum::Float(F64(r))
        }
        Datum::Int(i) => {
            if digits >= 0 {
                Datum::Int(*i)
            } else {
                let d = u32::try_from(-digits).unwrap_or(u32::MAX);
                if d > 19 {
                    Datum::Int(0)
                } else {
                    let p = pow10(d).unwrap_or(i128::MAX);
                    let r = div_round_pow10(i128::from(*i), d) * p;
                    let r = i64::try_from(r)
                        .ok()
                        .filter(|r| ty != SqlType::Int || i32::try_from(*r).is_ok())
                        .ok_or_else(|| {
                            EvalError::new(format!("overflow in ROUND({i}, {digits})"))
                        })?;
                    Datum::Int(r)
                }
            }
        }
        Datum::Decimal(u) => {
            let scale = i64::from(match ty {
                SqlType::Decimal { scale, .. } => scale,
                _ => 0,
            });
            if digits >= scale {
                Datum::Decimal(*u)
            } else {
                let drop = u32::try_from(scale - digits).unwrap_or(u32::MAX);
                if drop > 38 {
                    Datum::Decimal(0)
                } else {
                    let p = pow10(drop).unwrap_or(i128::MAX);
                    let r = div_round_pow10(*u, drop)
                        .checked_mul(p)
                        .ok_or_else(|| EvalError::new("overflow in ROUND"))?;
                    Datum::Decimal(r)
                }
            }
        }
        other => {
            return Err(EvalError::new(format!(
                "internal error: ROUND got {other:?}"
            )))
        }
    })
}

/// Calendar date and milliseconds within the day of a DATE or TIMESTAMP.
fn split(d: &Datum) -> Option<(NaiveDate, i64)> {
    match d {
        Datum::Date(days) => Some((date_from_days(*days)?, 0)),
        Datum::Timestamp(ms) => {
            let day = ms.div_euclid(MS_PER_DAY);
            Some((
                date_from_days(i32::try_from(day).ok()?)?,
                ms.rem_euclid(MS_PER_DAY),
            ))
        }
        _ => None,
    }
}

/// The length in milliseconds of a fixed-length [`TimeUnit`] as `DATE_TRUNC` /
/// `DATE_CEIL` use it (`DayOfWeek`/`DayOfYear` act as `Day`, `Epoch` as
/// `Millisecond`); `None` for calendar units (year, quarter, month, week).
pub fn fixed_unit_ms(unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Day | TimeUnit::DayOfWeek | TimeUnit::DayOfYear => Some(MS_PER_DAY),
        TimeUnit::Hour => Some(3_600_000),
        TimeUnit::Minute => Some(60_000),
        TimeUnit::Second => Some(1000),
        TimeUnit::Millisecond | TimeUnit::Epoch => Some(1),
        TimeUnit::Year | TimeUnit::Quarter | TimeUnit::Month | TimeUnit::Week => None,
    }
}

/// `t` (milliseconds) rounded down (or, with `ceil`, up) to a multiple of `step`;
/// `None` on overflow.
pub fn trunc_ms(t: i64, step: i64, ceil: bool) -> Option<i64> {
    let lo = t.checked_sub(t.checked_rem_euclid(step)?)?;
    if ceil && lo != t {
        lo.checked_add(step)
    } else {
        Some(lo)
    }
}

/// `EXTRACT` of a time-of-day unit (hour, minute, second, millisecond) or epoch from a
/// TIMESTAMP (milliseconds); `None` for calendar units.
pub fn extract_time_ms(unit: TimeUnit, t: i64) -> Option<i64> {
    let ms = t.rem_euclid(MS_PER_DAY);
    Some(match unit {
        TimeUnit::Hour => ms / 3_600_000,
        TimeUnit::Minute => ms / 60_000 % 60,
        TimeUnit::Second => ms / 1000 % 60,
        TimeUnit::Millisecond => ms % 60_000,
        TimeUnit::Epoch => t / 1000,
        _ => return None,
    })
}

fn extract(unit: TimeUnit, d: &Datum) -> Option<i64> {
    match d {
        Datum::Timestamp(t) => {
            if let Some(v) = extract_time_ms(unit, *t) {
                return Some(v);
            }
        }
        Datum::Date(days) => match unit {
            TimeUnit::Hour | TimeUnit::Minute | TimeUnit::Second | TimeUnit::Millisecond => {
                return Some(0)
            }
            TimeUnit::Epoch => return Some(i64::from(*days) * 86_400),
            _ => {}
        },
        _ => return None,
    }
    let (date, _) = split(d)?;
    Some(match unit {
        TimeUnit::Year => i64::from(date.year()),
        TimeUnit::Quarter => i64::from((date.month() - 1) / 3 + 1),
        TimeUnit::Month => i64::from(date.month()),
        TimeUnit::Week => i64::from(date.iso_week().week()),
        TimeUnit::Day => i64::from(date.day()),
        TimeUnit::DayOfWeek => i64::from(date.weekday().num_days_from_sunday()),
        TimeUnit::DayOfYear => i64::from(date.ordinal()),
        _ => return None,
    })
}

/// Truncate (or, with `ceil`, round up) a DATE or TIMESTAMP to `unit`. `DayOfWeek` and
/// `DayOfYear` behave as `Day`; `Epoch` as `Millisecond`. Time units leave a DATE as it is.
fn date_trunc(unit: TimeUnit, d: &Datum, ceil: bool) -> Option<Datum> {
    if let Some(step) = fixed_unit_ms(unit) {
        return match d {
            Datum::Timestamp(t) => Some(Datum::Timestamp(trunc_ms(*t, step, ceil)?)),
            // A DATE is a whole day: day and smaller units leave it as it is.
            Datum::Date(days) => Some(Datum::Date(*days)),
            _ => None,
        };
    }
    let (date, ms) = split(d)?;
    let calendar = |start: NaiveDate, next: NaiveDate| -> Option<(i64, i64)> {
        let lo = i64::from(days_from_date(start)).checked_mul(MS_PER_DAY)?;
        let exact = start == date && ms == 0;
        let hi = if exact {
            lo
        } else {
            i64::from(days_from_date(next)).checked_mul(MS_PER_DAY)?
        };
        Some((lo, hi))
    };
    let (lo, hi) = match unit {
        TimeUnit::Year => {
            let start = NaiveDate::from_ymd_opt(date.year(), 1, 1)?;
            calendar(start, start.checked_add_months(Months::new(12))?)?
        }
        TimeUnit::Quarter => {
            let m = (date.month() - 1) / 3 * 3 + 1;
            let start = NaiveDate::from_ymd_opt(date.year(), m, 1)?;
            calendar(start, start.checked_add_months(Months::new(3))?)?
        }
        TimeUnit::Month => {
            let start = NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?;
            calendar(start, start.checked_add_months(Months::new(1))?)?
        }
        TimeUnit::Week => {
            let back = i64::from(date.weekday().num_days_from_monday());
            let start = date.checked_sub_signed(chrono::TimeDelta::try_days(back)?)?;
            calendar(
                start,
                start.checked_add_signed(chrono::TimeDelta::try_days(7)?)?,
            )?
        }
        _ => return None,
    };
    let v = if ceil { hi } else { lo };
    Some(match d {
        Datum::Timestamp(_) => Datum::Timestamp(v),
        // A DATE result: calendar units start at midnight.
        _ => Datum::Date(i32::try_from(v.div_euclid(MS_PER_DAY)).ok()?),
    })
}
