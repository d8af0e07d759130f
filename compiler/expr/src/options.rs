//! Table and `SET` option values shared by the compiler, which checks a script's
//! options, and the connectors, which act on them at run time.

/// The table option through which `INSERT OVERWRITE` reaches the sink (on the plan's
/// copy of the table only; connectors refuse it in a table's own options).
pub const OVERWRITE_OPTION: &str = "sink.overwrite";

/// Reads a duration as Flink writes one: `500ms`, `10s`, `10 s`, `2min`, `1h`, or a
/// number of milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. '500ms', '10s', '2min')"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        _ => {
            return Err(format!(
                "'{text}' is not a duration (e.g. '500ms', '10s', '2min')"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("duration '{text}' is too long"))
}
