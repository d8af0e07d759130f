//! Parameter templating of task SQL, before it is compiled: `{{ name }}` is replaced by
//! the parameter's value. The built-ins come from the run's tick in the workflow's time
//! zone ([`builtin_parameters`]); the workflow's own parameters (with per-run overrides)
//! come after. Pure text substitution: quote the placeholder in the SQL where a string
//! literal is meant (`'{{ ds }}'`).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// The names of the built-in parameters.
pub const BUILTINS: [&str; 5] = ["logical_time", "ds", "ds_nodash", "ts_nodash", "run_id"];

/// A placeholder that cannot be substituted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line}, column {column}")]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// Line of the placeholder (from 1).
    pub line: u64,
    /// Column of the placeholder (from 1, in characters).
    pub column: u64,
}

/// Line and column (from 1, in characters) of byte offset `at` in `text`.
fn position(text: &str, at: usize) -> (u64, u64) {
    let before = &text[..at];
    let line = before.matches('\n').count() as u64 + 1;
    let col_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[col_start..].chars().count() as u64 + 1)
}

fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True when `name` may name a user parameter: an identifier (letters, digits, `_`; not
/// starting with a digit) of at most 63 characters that is not a built-in.
pub fn valid_parameter_name(name: &str) -> bool {
    name.len() <= 63 && is_identifier(name) && !BUILTINS.contains(&name)
}

/// Replaces every `{{ name }}` in `sql` by `params[name]`.
pub fn render(sql: &str, params: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = 0;
    while let Some(found) = sql[rest..].find("{{") {
        let start = rest + found;
        out.push_str(&sql[rest..start]);
        let err = |message: String| {
            let (line, column) = position(sql, start);
            TemplateError {
                message,
                line,
                column,
            }
        };
        let Some(len) = sql[start + 2..].find("}}") else {
            return Err(err("'{{' without a closing '}}'".to_string()));
        };
        let inner = &sql[start + 2..start + 2 + len];
        let name = inner.trim();
        if !is_identifier(name) {
            return Err(err(format!(
                "'{{{{{}}}}}' is not a parameter: write {{{{ name }}}}",
                inner.chars().take(40).collect::<String>()
            )));
        }
        let Some(value) = params.get(name) else {
            return Err(err(format!(
                "unknown parameter '{name}' (known: {})",
                params.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        out.push_str(value);
        rest = start + 2 + len + 2;
    }
    out.push_str(&sql[rest..]);
    Ok(out)
}

/// The built-in parameters of a run: `logical_time` (RFC 3339 of the tick, UTC),
/// `ds` (`YYYY-MM-DD` of the tick in `tz`), `ds_nodash` (`YYYYMMDD`), `ts_nodash`
/// (`YYYYMMDDTHHMMSS` in `tz`) and `run_id`.
pub fn builtin_parameters(tick_ms: i64, tz: Tz, run_id: &str) -> BTreeMap<String, String> {
    let utc: DateTime<Utc> = DateTime::from_timestamp_millis(tick_ms).unwrap_or_default();
    let local = utc.with_timezone(&tz);
    BTreeMap::from([
        (
            "logical_time".to_string(),
            utc.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        ("ds".to_string(), local.format("%Y-%m-%d").to_string()),
        ("ds_nodash".to_string(), local.format("%Y%m%d").to_string()),
        (
            "ts_nodash".to_string(),
            local.format("%Y%m%dT%H%M%S").to_string(),
        ),
        ("run_id".to_string(), run_id.to_string()),
    ])
}

/// Every parameter of a run: the built-ins, then the workflow's defaults, then the
/// run's overrides (user parameters never shadow built-ins: their names are rejected).
pub fn run_parameters(
    tick_ms: i64,
    tz: Tz,
    run_id: &str,
    defaults: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = builtin_parameters(tick_ms, tz, run_id);
    for (k, v) in defaults.iter().chain(overrides) {
        if !BUILTINS.contains(&k.as_str()) {
            all.insert(k.clone(), v.clone());
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn workflow_template_substitutes_with_or_without_spaces() {
        let p = params(&[("ds", "2024-03-31"), ("region", "eu")]);
        assert_eq!(
            render("SELECT '{{ ds }}', '{{region}}', '{{  ds}}' {x}", &p).unwrap(),
            "SELECT '2024-03-31', 'eu', '2024-03-31' {x}"
        );
        assert_eq!(render("no placeholders", &p).unwrap(), "no placeholders");
    }

    #[test]
    fn workflow_template_errors_name_the_position() {
        let p = params(&[("ds", "x")]);
        let e = render("SELECT 1;\n  SELECT '{{ nope }}'", &p).unwrap_err();
        assert_eq!((e.line, e.column), (2, 11));
        assert!(e.message.contains("unknown parameter 'nope'"), "{e}");
        let e = render("a {{ ds", &p).unwrap_err();
        assert_eq!((e.line, e.column), (1, 3));
        let e = render("{{ 1+1 }}", &p).unwrap_err();
        assert!(e.message.contains("is not a parameter"), "{e}");
    }

    #[test]
    fn workflow_builtin_parameters_use_the_zone() {
        // 2024-03-30T23:30:00Z is already the 31st in Berlin (UTC+1 then).
        let tick = DateTime::parse_from_rfc3339("2024-03-30T23:30:00Z")
            .unwrap()
            .timestamp_millis();
        let p = builtin_parameters(tick, chrono_tz::Europe::Berlin, "w1-1");
        assert_eq!(p["logical_time"], "2024-03-30T23:30:00Z");
        assert_eq!(p["ds"], "2024-03-31");
        assert_eq!(p["ds_nodash"], "20240331");
        assert_eq!(p["ts_nodash"], "20240331T003000");
        let p = builtin_parameters(tick, chrono_tz::UTC, "w1-1");
        assert_eq!(p["ds"], "2024-03-30");
        assert_eq!(p["run_id"], "w1-1");
    }

    #[test]
    fn workflow_run_parameters_layer_defaults_and_overrides() {
        let all = run_parameters(
            0,
            chrono_tz::UTC,
            "r",
            &params(&[("a", "1"), ("b", "2")]),
            &params(&[("b", "3")]),
        );
        assert_eq!(all["a"], "1");
        assert_eq!(all["b"], "3");
        assert_eq!(all["ds"], "1970-01-01");
        assert!(valid_parameter_name("region_1"));
        assert!(!valid_parameter_name("ds"));
        assert!(!valid_parameter_name("1x"));
        assert!(!valid_parameter_name("a-b"));
    }
}
