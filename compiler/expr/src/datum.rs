//! [`Datum`]: one SQL value in row form, and [`Row`].
//!
//! Rows flow through the stateful (differential) part of a dataflow, so a datum is
//! totally ordered, hashable and serializable. The SQL type of a datum is not stored
//! in it: it comes from the schema of the plan node that produced it (a DECIMAL's
//! scale, for example, lives in the type).

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A `DOUBLE` with a total order (IEEE `totalOrder`, with all NaNs equal and -0.0 == 0.0)
/// so it can be a key in arrangements. In human-readable formats (JSON) serialized as a
/// number, or as the strings `"NaN"`, `"inf"`, `"-inf"` (JSON has no such numbers); in
/// binary ones (bincode: the exchange between processes, state snapshots) as the plain
/// `f64`, since they cannot tell a number from a string when reading.
#[derive(Clone, Copy, Debug)]
pub struct F64(pub f64);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum F64Repr {
    Number(f64),
    Special(String),
}

impl Serialize for F64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() || !s.is_human_readable() {
            s.serialize_f64(self.0)
        } else if self.0.is_nan() {
            s.serialize_str("NaN")
        } else if self.0 > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }
}

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return f64::deserialize(d).map(F64);
        }
        match F64Repr::deserialize(d)? {
            F64Repr::Number(x) => Ok(F64(x)),
            F64Repr::Special(s) => match s.as_str() {
                "NaN" => Ok(F64(f64::NAN)),
                "inf" => Ok(F64(f64::INFINITY)),
                "-inf" => Ok(F64(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!("not a DOUBLE: {other:?}"))),
            },
        }
    }
}

impl F64 {
    /// The value equality and order see: one NaN, and `0.0` for `-0.0`.
    pub fn canonical(self) -> f64 {
        if self.0.is_nan() {
            f64::NAN
        } else if self.0 == 0.0 {
            0.0
        } else {
            self.0
        }
    }
}

impl PartialEq for F64 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for F64 {}
impl PartialOrd for F64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for F64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.canonical().total_cmp(&other.canonical())
    }
}
impl Hash for F64 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical().to_bits().hash(state)
    }
}

/// One SQL value. NULL sorts first in the derived order; SQL ordering rules
/// (NULLS FIRST/LAST) are applied by the sort operators, not by this order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Datum {
    /// SQL NULL, of any type.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// INT or BIGINT (INT values fit in i32).
    Int(i64),
    /// DOUBLE.
    Float(F64),
    /// DECIMAL(p, s): the unscaled value; the scale comes from the column type.
    Decimal(i128),
    /// VARCHAR.
    Str(String),
    /// DATE: days since 1970-01-01.
    Date(i32),
    /// TIMESTAMP(3): milliseconds since 1970-01-01 00:00:00 (no time zone).
    Timestamp(i64),
    /// Day-time INTERVAL: milliseconds.
    Interval(i64),
}

impl Datum {
    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }
}

impl fmt::Display for Datum {
    /// A type-free rendering (DECIMALs print their unscaled value: use
    /// [`crate::eval::format_datum`] with the type for user-facing output).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null => write!(f, "NULL"),
            Datum::Bool(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
            Datum::Int(i) => write!(f, "{i}"),
            Datum::Float(x) => write!(f, "{:?}", x.0),
            Datum::Decimal(d) => write!(f, "{d}"),
            Datum::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Datum::Date(d) => write!(f, "DATE {d}"),
            Datum::Timestamp(t) => write!(f, "TIMESTAMP {t}"),
            Datum::Interval(i) => write!(f, "INTERVAL {i}ms"),
        }
    }
}

/// A row: one datum per column of the producing plan node's schema.
pub type Row = Vec<Datum>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_survive_json_including_nan_and_infinities() {
        let row: Row = vec![
            Datum::Float(F64(1.5)),
            Datum::Float(F64(f64::NAN)),
            Datum::Float(F64(f64::INFINITY)),
            Datum::Float(F64(f64::NEG_INFINITY)),
            Datum::Null,
        ];
        let text = serde_json::to_string(&row).expect("encode");
        assert!(
            text.contains("\"NaN\"") && text.contains("\"-inf\""),
            "{text}"
        );
        let back: Row = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, row);
    }

    /// Bincode (the exchange between a run's processes, state snapshots) cannot read an
    /// untagged representation: a DOUBLE used to fail there ("DeserializeAnyNotSupported").
    #[test]
    fn doubles_survive_bincode_including_nan_and_infinities() {
        let row: Row = vec![
            Datum::Float(F64(1.5)),
            Datum::Float(F64(-0.0)),
            Datum::Float(F64(f64::NAN)),
            Datum::Float(F64(f64::INFINITY)),
            Datum::Float(F64(f64::NEG_INFINITY)),
            Datum::Null,
        ];
        let bytes = bincode::serialize(&row).expect("encode");
        let back: Row = bincode::deserialize(&bytes).expect("decode");
        assert_eq!(back, row);
    }
}
