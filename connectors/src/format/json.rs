//! JSON values decoded for a column's SQL type: the JSON-lines reader of the
//! filesystem connector and the Kafka connector's `json` format both decode each
//! field's text here (DECIMALs from their text, without a trip through `f64`).

use crate::values::{parse_decimal, parse_json, Value};
use serde_json::value::RawValue;
use sluice_catalogs::SqlType;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A JSON object with its values left as JSON text.
pub(crate) type RawObject<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

/// Decode one JSON value (as text) for a column of `ty`. DECIMAL numbers are read
/// from their text, so no precision is lost through `f64`.
pub(crate) fn decode_raw(raw: &str, ty: SqlType) -> std::result::Result<Value<'static>, String> {
    if let SqlType::Decimal { precision, scale } = ty {
        if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return parse_decimal(raw, precision, scale)
                .map(Value::Decimal)
                .map_err(|e| format!("{raw} as {ty}: {e}"));
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| format!("invalid JSON: {e}"))?;
    parse_json(&v, ty).map(into_owned)
}

/// The value with its text owned (no longer borrowing the record it was read from).
pub(crate) fn into_owned(v: Value<'_>) -> Value<'static> {
    match v {
        Value::Null => Value::Null,
        Value::Bool(b) => Value::Bool(b),
        Value::Int(i) => Value::Int(i),
        Value::Float(f) => Value::Float(f),
        Value::Decimal(d) => Value::Decimal(d),
        Value::Str(s) => Value::Str(std::borrow::Cow::Owned(s.into_owned())),
    }
}
