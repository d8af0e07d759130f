//! Helpers for validating a table's `WITH (...)` options.

use crate::{ConnectorError, Result};
use std::collections::BTreeMap;
use std::str::FromStr;

/// Reject keys that are neither in `keys` nor start with one of `prefixes`
/// (`'connector'` is always allowed), listing the valid ones.
pub(crate) fn check_keys(
    connector: &str,
    options: &BTreeMap<String, String>,
    keys: &[&str],
    prefixes: &[&str],
) -> Result<()> {
    let unknown: Vec<&str> = options
        .keys()
        .map(String::as_str)
        .filter(|k| {
            *k != "connector"
                && *k != sluice_catalogs::PRIMARY_KEY_OPTION
                && !keys.contains(k)
                && !prefixes.iter().any(|p| k.starts_with(p))
        })
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    if let Some(m) = unknown.iter().find(|k| k.starts_with(METADATA_PREFIX)) {
        let column = &m[METADATA_PREFIX.len()..];
        return Err(ConnectorError::Config(format!(
            "connector '{connector}' does not support METADATA columns (column '{column}', option '{m}')"
        )));
    }
    let mut valid: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
    valid.extend(prefixes.iter().map(|p| format!("'{p}*'")));
    Err(ConnectorError::Config(format!(
        "unknown option{} {} for connector '{connector}' (valid: {})",
        if unknown.len() > 1 { "s" } else { "" },
        unknown
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", "),
        valid.join(", ")
    )))
}

/// The option prefix that records a `METADATA` column: `metadata.<column>` = `<key>`.
pub(crate) const METADATA_PREFIX: &str = "metadata.";

/// The `'csv.field-delimiter'` option: one ASCII character (`\t` for a tab), default `,`.
pub(crate) fn csv_delimiter(options: &BTreeMap<String, String>) -> Result<u8> {
    match options.get("csv.field-delimiter").map(String::as_str) {
        None => Ok(b','),
        Some("\\t") => Ok(b'\t'),
        Some(d) if d.len() == 1 && d.is_ascii() && d != "\"" && d != "\n" && d != "\r" => {
            Ok(d.as_bytes()[0])
        }
        Some(d) => Err(ConnectorError::Config(format!(
            "option 'csv.field-delimiter' = '{d}' is invalid: expected one ASCII character other than a quote or a line break"
        ))),
    }
}

/// A required option.
pub(crate) fn required<'a>(options: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str> {
    options
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| ConnectorError::Config(format!("missing required option '{key}'")))
}

/// An optional option parsed with `FromStr`.
pub(crate) fn parsed<T: FromStr>(options: &BTreeMap<String, String>, key: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match options.get(key) {
        None => Ok(None),
        Some(v) => {
            v.trim().parse::<T>().map(Some).map_err(|e| {
                ConnectorError::Config(format!("option '{key}' = '{v}' is invalid: {e}"))
            })
        }
    }
}

/// An optional boolean option (`true`/`false`, case-insensitive).
pub(crate) fn boolean(
    options: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool> {
    match options.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(ConnectorError::Config(format!(
            "option '{key}' = '{v}' is invalid: expected 'true' or 'false'"
        ))),
    }
}

/// An optional option that must be one of `choices` (case-insensitive); returned lower-cased.
pub(crate) fn choice(
    options: &BTreeMap<String, String>,
    key: &str,
    choices: &[&str],
) -> Result<Option<String>> {
    match options.get(key) {
        None => Ok(None),
        Some(v) => {
            let l = v.trim().to_ascii_lowercase();
            if choices.contains(&l.as_str()) {
                Ok(Some(l))
            } else {
                Err(ConnectorError::Config(format!(
                    "option '{key}' = '{v}' is invalid: expected one of {}",
                    choices
                        .iter()
                        .map(|c| format!("'{c}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
}

/// A byte size such as `128MB`, `64 KiB`, `1gb` or `1000` (bytes).
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. '128MB')"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit '{other}' in '{s}'")),
    };
    match n.checked_mul(mult) {
        Some(0) => Err("size must be positive".into()),
        Some(v) => Ok(v),
        None => Err(format!("size '{s}' is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("128MB"), Ok(128 << 20));
        assert_eq!(parse_size("64 kb"), Ok(64 << 10));
        assert_eq!(parse_size("10"), Ok(10));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MB").is_err());
    }

    #[test]
    fn unknown_keys_list_valid_ones() {
        let mut o = BTreeMap::new();
        o.insert("connector".to_string(), "x".to_string());
        o.insert("bogus".to_string(), "1".to_string());
        let e = check_keys("x", &o, &["a", "b"], &["fields."]).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("'bogus'") && m.contains("'a'") && m.contains("'fields.*'"),
            "{m}"
        );
        o.remove("bogus");
        o.insert("metadata.ts".to_string(), "timestamp".to_string());
        let m = check_keys("x", &o, &["a"], &["fields."])
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("does not support METADATA columns") && m.contains("'ts'"),
            "{m}"
        );
        o.remove("metadata.ts");
        o.insert("fields.x.kind".to_string(), "1".to_string());
        assert!(check_keys("x", &o, &["a"], &["fields."]).is_ok());
    }
}
