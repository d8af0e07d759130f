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
//!
//! The other direction for user-written layouts: [`format_java`] spells a timestamp in a
//! Java `DateTimeFormatter` pattern (`yyyy-MM-dd HH:mm`), which is what Flink's
//! `DATE_FORMAT` takes, so Nexmark's texts run unchanged; [`check_java_pattern`] lets the
//! binder refuse an unsupported pattern letter with its position.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

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

/// The pattern letters [`format_java`] spells; any other ASCII letter outside quotes is
/// refused (Java reserves every letter).
const JAVA_LETTERS: &str = "yMdHhmsSaEDu";

/// Checks a Java date-time pattern: every letter is one [`format_java`] supports and
/// every quote is closed. The error names the offending letter.
pub fn check_java_pattern(pattern: &str) -> Result<(), String> {
    let mut quoted = false;
    for c in pattern.chars() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && c.is_ascii_alphabetic() && !JAVA_LETTERS.contains(c) {
            return Err(format!(
                "unsupported pattern letter '{c}' in date format '{pattern}' (supported: \
                 y M d H h m s S a E D u, text in single quotes)"
            ));
        }
    }
    if quoted {
        return Err(format!("unclosed quote in date format '{pattern}'"));
    }
    Ok(())
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Appends timestamp `ms` (UTC) spelled in Java pattern `pattern` to `out`: `yyyy`
/// (`yy`: two digits), `M`/`MM` (`MMM` Jan, `MMMM` January), `d`, `D` (day of year), `H`
/// (0–23), `h` (1–12), `m`, `s`, `S…` (fraction of the second, as many digits as
/// letters), `a` (AM/PM), `E` (`EEE` Mon, `EEEE` Monday), `u` (ISO weekday 1–7); a run of
/// n letters pads numbers to n digits; `'text'` is literal (`''` is a quote); any other
/// character is copied.
pub fn format_java(ms: i64, pattern: &str, out: &mut String) -> Result<(), String> {
    use std::fmt::Write;
    let dt = chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.naive_utc())
        .ok_or_else(|| format!("timestamp {ms} ms is out of range"))?;
    let b: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\'' {
            if b.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            // Quoted text, in which `''` is a quote.
            i += 1;
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (None, _) => return Err(format!("unclosed quote in date format '{pattern}'")),
                    (Some('\''), Some('\'')) => {
                        out.push('\'');
                        i += 2;
                    }
                    (Some('\''), _) => {
                        i += 1;
                        break;
                    }
                    (Some(&x), _) => {
                        out.push(x);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = b[i..].iter().take_while(|&&x| x == c).count();
        i += n;
        // Zero-padded to `n` digits; small non-negative values (every field but a
        // year past 9999) without the formatting machinery, which was a tenth of a
        // `GROUP BY DATE_FORMAT(…)` job's CPU.
        let num = |out: &mut String, v: i64| {
            if (0..10_000).contains(&v) && n <= 4 {
                let digits = [v / 1000, v / 100 % 10, v / 10 % 10, v % 10];
                let used = if v >= 1000 {
                    4
                } else if v >= 100 {
                    3
                } else if v >= 10 {
                    2
                } else {
                    1
                };
                for d in &digits[4 - used.max(n)..] {
                    out.push(char::from(b'0' + *d as u8));
                }
            } else {
                let _ = write!(out, "{v:0n$}");
            }
        };
        match c {
            'y' => {
                let y = i64::from(dt.year());
                if n == 2 {
                    num(out, y.rem_euclid(100));
                } else {
                    num(out, y);
                }
            }
            'M' => match n {
                1 | 2 => num(out, i64::from(dt.month())),
                3 => out.push_str(&MONTHS[dt.month0() as usize][..3]),
                _ => out.push_str(MONTHS[dt.month0() as usize]),
            },
            'd' => num(out, i64::from(dt.day())),
            'D' => num(out, i64::from(dt.ordinal())),
            'H' => num(out, i64::from(dt.hour())),
            'h' => num(out, i64::from((dt.hour() + 11) % 12 + 1)),
            'm' => num(out, i64::from(dt.minute())),
            's' => num(out, i64::from(dt.second())),
            'S' => {
                let nanos = format!("{:09}", dt.nanosecond().min(999_999_999));
                out.push_str(&nanos[..n.min(9)]);
                out.extend(std::iter::repeat_n('0', n.saturating_sub(9)));
            }
            'a' => out.push_str(if dt.hour() < 12 { "AM" } else { "PM" }),
            'E' => {
                let day = WEEKDAYS[dt.weekday().num_days_from_monday() as usize];
                out.push_str(if n <= 3 { &day[..3] } else { day });
            }
            'u' => num(out, i64::from(dt.weekday().number_from_monday())),
            _ => {
                return Err(format!(
                    "unsupported pattern letter '{c}' in date format '{pattern}'"
                ))
            }
        }
    }
    Ok(())
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
        /// DATE_FORMAT's Java patterns spell what chrono's equivalent format spells.
        #[test]
        fn java_patterns_agree_with_chrono(ms in -2_000_000_000_000i64..4_000_000_000_000) {
            let dt = chrono::DateTime::from_timestamp_millis(ms).unwrap().naive_utc();
            for (java, chrono_fmt) in [
                ("yyyy-MM-dd HH:mm:ss.SSS", "%Y-%m-%d %H:%M:%S%.3f"),
                ("yy/MM/dd hh a", "%y/%m/%d %I %p"),
                ("EEE, d MMM yyyy (D) 'T'HH", "%a, %-d %b %Y (%j) T%H"),
                ("EEEE MMMM u", "%A %B %u"),
            ] {
                let mut out = String::new();
                format_java(ms, java, &mut out).unwrap();
                let want = dt.format(chrono_fmt).to_string();
                // chrono pads the day of year to 3 digits; Java's `D` does not.
                let want = if java.contains("(D)") {
                    let doy = dt.ordinal().to_string();
                    want.replace(&format!("({:03})", dt.ordinal()), &format!("({doy})"))
                } else {
                    want
                };
                prop_assert_eq!(out, want, "{}", java);
            }
        }
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
