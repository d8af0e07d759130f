//! Parameter templating of task SQL, before it is compiled: `{{ name }}` is replaced by
//! the parameter's value. The built-ins come from the run's tick in the workflow's time
//! zone ([`builtin_parameters`]); the workflow's own parameters (with per-run overrides)
//! come after. A value is data, never SQL: inside a string literal (`'{{ ds }}'`) its
//! quotes are escaped, elsewhere it becomes one literal (a number stays bare, anything
//! else a quoted string), so no parameter can end a literal or add a statement.

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

/// Where in the SQL text a placeholder stands, which decides how its value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    /// Between tokens: the value becomes one literal.
    Code,
    /// Inside a `'…'` string literal: the value's quotes are doubled.
    Quoted,
    /// Inside a `"…"` identifier: the value's double quotes are doubled.
    Identifier,
    /// Inside a `--` comment: left as written.
    LineComment,
    /// Inside `/* … */` comments, this deep (they nest, as the SQL tokenizer's do).
    BlockComment(u32),
}

/// The text that stands for `value` in `context`: a value is data, never SQL. In
/// code, an unsigned decimal number stays bare (`amount >= {{ min }}`) and anything
/// else becomes a quoted string literal; inside a literal or identifier its quotes are
/// escaped, so it cannot end the literal.
fn substitute(value: &str, context: Context) -> String {
    match context {
        Context::Quoted => value.replace('\'', "''"),
        Context::Identifier => value.replace('"', "\"\""),
        _ if is_plain_number(value) => value.to_string(),
        _ => format!("'{}'", value.replace('\'', "''")),
    }
}

/// `123` or `1.5`: digits, at most one inner `.`.
fn is_plain_number(value: &str) -> bool {
    let mut parts = value.splitn(2, '.');
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    parts.next().is_some_and(digits) && parts.next().is_none_or(digits)
}

/// Replaces every `{{ name }}` in `sql` by `params[name]`, written as a value for where
/// it stands (see [`substitute`]); placeholders in comments are left as written. Then
/// checks that the values changed no token boundary: the result has as many tokens as
/// the template with every value `0` (a value that ends a literal the scanner did not
/// know, such as a `$$…$$` or `E'…'` string, is refused).
pub fn render(sql: &str, params: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let rendered = substitute_all(sql, params, false)?;
    let baseline = substitute_all(sql, params, true)?;
    use sluice_compiler::parse::token_count;
    match (token_count(&rendered), token_count(&baseline)) {
        (Ok(a), Ok(b)) if a == b => Ok(rendered),
        // The template itself does not tokenize: the compiler reports where.
        (_, Err(_)) => Ok(rendered),
        _ => {
            let at = sql.find("{{").unwrap_or(0);
            let (line, column) = position(sql, at);
            Err(TemplateError {
                message: "a parameter's value would change the SQL around it (a value is \
                          substituted as one literal, never as SQL)"
                    .to_string(),
                line,
                column,
            })
        }
    }
}

/// [`render`]'s substitution; `baseline`: every value `0`.
fn substitute_all(
    sql: &str,
    params: &BTreeMap<String, String>,
    baseline: bool,
) -> Result<String, TemplateError> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut context = Context::Code;
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        let next = bytes.get(i + 1).copied();
        let step = match (context, bytes[i]) {
            (Context::Code, b'\'') => (Context::Quoted, 1),
            (Context::Code, b'"') => (Context::Identifier, 1),
            (Context::Code, b'-') if next == Some(b'-') => (Context::LineComment, 2),
            (Context::Code, b'/') if next == Some(b'*') => (Context::BlockComment(1), 2),
            (Context::Quoted, b'\'') | (Context::Identifier, b'"') => {
                if next == Some(bytes[i]) {
                    (context, 2)
                } else {
                    (Context::Code, 1)
                }
            }
            (Context::LineComment, b'\n') => (Context::Code, 1),
            (Context::BlockComment(d), b'/') if next == Some(b'*') => {
                (Context::BlockComment(d + 1), 2)
            }
            (Context::BlockComment(d), b'*') if next == Some(b'/') => (
                if d > 1 {
                    Context::BlockComment(d - 1)
                } else {
                    Context::Code
                },
                2,
            ),
            (Context::LineComment | Context::BlockComment(_), _) => (context, 1),
            (_, b'{') if next == Some(b'{') => {
                out.push_str(&sql[copied..i]);
                let (value, end) = placeholder(sql, i, params)?;
                out.push_str(&substitute(if baseline { "0" } else { value }, context));
                i = end;
                copied = end;
                continue;
            }
            _ => (context, 1),
        };
        context = step.0;
        i += step.1;
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

/// The value of the placeholder starting at byte `start`, and the byte after it.
fn placeholder<'p>(
    sql: &str,
    start: usize,
    params: &'p BTreeMap<String, String>,
) -> Result<(&'p str, usize), TemplateError> {
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
    Ok((value, start + 2 + len + 2))
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
    fn workflow_parameters_are_values_that_cannot_add_statements() {
        let p = params(&[
            ("quote", "x'; CREATE TABLE evil (a INT); --"),
            ("stmt", "1; DROP TABLE t"),
            ("n", "20"),
            ("id", "a\"b"),
        ]);
        let sql = "SELECT * FROM t WHERE a = '{{ quote }}' AND b >= {{ stmt }} AND c = {{ n }} \
                   AND d = {{ quote }} AND \"{{ id }}\" = 1 -- {{ quote }}\n/* /* {{ quote }} */ {{ n }} */";
        assert_eq!(
            render(sql, &p).unwrap(),
            "SELECT * FROM t WHERE a = 'x''; CREATE TABLE evil (a INT); --' AND b >= '1; DROP TABLE t' \
             AND c = 20 AND d = 'x''; CREATE TABLE evil (a INT); --' AND \"a\"\"b\" = 1 -- {{ quote }}\n\
             /* /* {{ quote }} */ {{ n }} */"
        );
        // An escaped quote inside a literal does not end it.
        assert_eq!(
            render("SELECT 'it''s {{ n }}', {{ n }}", &p).unwrap(),
            "SELECT 'it''s 20', 20"
        );
        assert!(is_plain_number("1.5") && !is_plain_number("-1") && !is_plain_number("1."));
        // Literals the scanner does not model are caught by the token check.
        let e = render(
            "SELECT $$ {{ dollar }} $$",
            &params(&[("dollar", "$$; DROP TABLE t; --")]),
        )
        .unwrap_err();
        assert!(e.message.contains("change the SQL"), "{e}");
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
