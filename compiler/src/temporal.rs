//! Text → DATE / TIMESTAMP: the one parser of the whole project.
//!
//! The binder (literals, constant casts), the evaluator (`CAST(varchar AS TIMESTAMP)`)
//! and the connectors (CSV and JSON fields, on the ingest path of every row) all call
//! [`parse_date`] and [`parse_timestamp`], so a value means the same wherever it is
//! read. Accepted: surrounding whitespace, then `YYYY-MM-DD`, optionally followed by
//! ` ` or `T` and `HH:MM[:SS[.fff…]]` (fractional digits past milliseconds truncated),
//! optionally ending in `Z` (UTC, as every Sluice timestamp is).
//!
//! The canonical layouts (4-digit year, 2-digit fields) are decoded by hand — this is
//! on the ingest path, where chrono's format-string parser cost 18% of a pass-through
//! query's CPU — and anything else (a 1-digit month, a 5-digit year) falls back to
//! chrono with the same meaning. The property test checks both paths agree.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a date.
pub fn parse_date(s: &str) -> Option<i32> {
    let s = s.trim();
    match fast_date(s.as_bytes()) {
        Some(days) => Some(days),
        None => slow_date(s),
    }
}

/// Milliseconds since 1970-01-01 00:00:00 UTC of a timestamp (or a bare date, at
/// midnight).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    if let Some(ms) = fast_timestamp(s.as_bytes()) {
        return Some(ms);
    }
    slow_timestamp(s)
}

/// Milliseconds since midnight of `HH:MM[:SS[.fff…]]`.
pub fn parse_time(s: &str) -> Option<i64> {
    let (hms, frac) = match s.find('.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut parts = hms.split(':');
    let h: u32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let sec: u32 = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some()
        || (s.contains('.') && frac.is_empty())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let t = NaiveTime::from_hms_opt(h, m, sec)?;
    let ms = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    Some(i64::from(t.num_seconds_from_midnight()) * 1000 + ms)
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `YYYY-MM-DD` exactly.
fn fast_date(b: &[u8]) -> Option<i32> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    days_from_civil(y as i32, m, d)
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.f…]]]` exactly.
fn fast_timestamp(b: &[u8]) -> Option<i64> {
    let date = i64::from(fast_date(b.get(..10)?)?);
    let mut ms = date * MS_PER_DAY;
    if b.len() == 10 {
        return Some(ms);
    }
    if !matches!(b[10], b' ' | b'T') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (h, m) = (digits(&b[11..13])?, digits(&b[14..16])?);
    let mut sec = 0;
    let mut frac = 0i64;
    match b.len() {
        16 => {}
        n if n >= 19 && b[16] == b':' => {
            sec = digits(&b[17..19])?;
            if n > 19 {
                let f = &b[19..];
                if f[0] != b'.' || f.len() < 2 || !f[1..].iter().all(u8::is_ascii_digit) {
                    return None;
                }
                frac = f[1..]
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(b'0'))
                    .take(3)
                    .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'));
            }
        }
        _ => return None,
    }
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    ms += i64::from(h * 3600 + m * 60 + sec) * 1000 + frac;
    Some(ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date, if it exists.
fn days_from_civil(y: i32, m: u32, d: u32) -> Option<i32> {
    let date = NaiveDate::from_ymd_opt(y, m, d)?;
    Some(
        date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?)
            .num_days() as i32,
    )
}

fn slow_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from(d.signed_duration_since(epoch).num_days()).ok()
}

fn slow_timestamp(s: &str) -> Option<i64> {
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    slow_date(s).map(|days| i64::from(days) * MS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date(" 1969-12-31 "), Some(-1));
        assert_eq!(parse_date("2024-02-30"), None);
        assert_eq!(parse_date("2024-1-5"), Some(19727), "chrono's form");
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.123456Z"), Some(1123));
        assert_eq!(parse_timestamp("1970-01-01 00:01"), Some(60_000));
        assert_eq!(parse_timestamp("1970-01-02"), Some(MS_PER_DAY));
        assert_eq!(parse_timestamp(" 1970-01-01 00:00:00 "), Some(0));
        assert_eq!(parse_timestamp("1969-12-31 23:59:59.999"), Some(-1));
        for bad in [
            "",
            "1970-01-01 24:00:00",
            "1970-01-01 00:00:00.",
            "1970-01-01x00:00:00",
            "1970-01-01 00:00:00.1x",
            "yesterday",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
        assert_eq!(parse_time("01:02:03.04"), Some(3_723_040));
        assert_eq!(parse_time("01:02"), Some(3_720_000));
        assert_eq!(parse_time("01:02:03."), None);
    }

    proptest! {
        /// The hand-written path means what chrono's format parser means.
        #[test]
        fn fast_path_agrees_with_chrono(
            y in 1i32..9999, m in 1u32..13, d in 1u32..32,
            h in 0u32..24, mi in 0u32..60, s in 0u32..60, frac in 0u32..1_000_000,
            form in 0usize..5,
        ) {
            let date = format!("{y:04}-{m:02}-{d:02}");
            let text = match form {
                0 => date.clone(),
                1 => format!("{date} {h:02}:{mi:02}"),
                2 => format!("{date}T{h:02}:{mi:02}:{s:02}"),
                3 => format!("{date} {h:02}:{mi:02}:{s:02}.{frac:06}"),
                _ => format!("{date} {h:02}:{mi:02}:{s:02}.{}", frac % 10),
            };
            prop_assert_eq!(fast_timestamp(text.as_bytes()), slow_timestamp(&text));
            prop_assert_eq!(fast_date(date.as_bytes()), slow_date(&date));
        }
    }
}
