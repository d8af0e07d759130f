//! SQL types and schemas, and their Arrow equivalents.

use arrow_schema::{DataType, Field as ArrowField, Schema as ArrowSchema, TimeUnit};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A SQL data type. Every value of a column of this type is a `sluice_compiler::Datum`
/// of the matching variant (or NULL); in columnar form it is the Arrow type given by
/// [`SqlType::to_arrow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SqlType {
    /// The type of an untyped `NULL` literal; coerces to any type.
    Null,
    /// `BOOLEAN`.
    Boolean,
    /// `INT` (32-bit).
    Int,
    /// `BIGINT` (64-bit).
    BigInt,
    /// `DOUBLE` (IEEE-754 binary64).
    Double,
    /// `DECIMAL(precision, scale)`, precision ≤ 38.
    Decimal {
        /// Total number of digits.
        precision: u8,
        /// Digits after the decimal point.
        scale: u8,
    },
    /// `VARCHAR` / `STRING` (UTF-8, unbounded).
    Varchar,
    /// `DATE` (days since 1970-01-01).
    Date,
    /// `TIMESTAMP(3)` without time zone (milliseconds since 1970-01-01 00:00:00).
    Timestamp,
    /// A day-time `INTERVAL`, in milliseconds.
    Interval,
}

impl SqlType {
    /// The Arrow type of a column of this SQL type.
    pub fn to_arrow(self) -> DataType {
        match self {
            SqlType::Null => DataType::Null,
            SqlType::Boolean => DataType::Boolean,
            SqlType::Int => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
            SqlType::Varchar => DataType::Utf8,
            SqlType::Date => DataType::Date32,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            SqlType::Interval => DataType::Duration(TimeUnit::Millisecond),
        }
    }

    /// The SQL type of an Arrow type, when there is one.
    pub fn from_arrow(dt: &DataType) -> Option<SqlType> {
        Some(match dt {
            DataType::Null => SqlType::Null,
            DataType::Boolean => SqlType::Boolean,
            DataType::Int8 | DataType::Int16 | DataType::Int32 => SqlType::Int,
            DataType::UInt8 | DataType::UInt16 => SqlType::Int,
            DataType::Int64 | DataType::UInt32 => SqlType::BigInt,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Double,
            DataType::Decimal128(p, s) if *s >= 0 => SqlType::Decimal {
                precision: *p,
                scale: *s as u8,
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::Varchar,
            DataType::Date32 | DataType::Date64 => SqlType::Date,
            DataType::Timestamp(_, _) => SqlType::Timestamp,
            DataType::Duration(_) => SqlType::Interval,
            _ => return None,
        })
    }

    /// True for INT, BIGINT, DOUBLE and DECIMAL.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            SqlType::Int | SqlType::BigInt | SqlType::Double | SqlType::Decimal { .. }
        )
    }

    /// True for INT and BIGINT.
    pub fn is_integer(self) -> bool {
        matches!(self, SqlType::Int | SqlType::BigInt)
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Null => write!(f, "NULL"),
            SqlType::Boolean => write!(f, "BOOLEAN"),
            SqlType::Int => write!(f, "INT"),
            SqlType::BigInt => write!(f, "BIGINT"),
            SqlType::Double => write!(f, "DOUBLE"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            SqlType::Varchar => write!(f, "VARCHAR"),
            SqlType::Date => write!(f, "DATE"),
            SqlType::Timestamp => write!(f, "TIMESTAMP(3)"),
            SqlType::Interval => write!(f, "INTERVAL"),
        }
    }
}

/// One named, typed column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// Column name as written (case preserved).
    pub name: String,
    /// Column type.
    pub ty: SqlType,
    /// Whether the column may hold NULL.
    pub nullable: bool,
}

impl Field {
    /// A nullable field.
    pub fn new(name: impl Into<String>, ty: SqlType) -> Self {
        Field {
            name: name.into(),
            ty,
            nullable: true,
        }
    }
}

/// An ordered list of fields: the shape of a table or of a plan node's output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schema {
    /// The columns, in order.
    pub fields: Vec<Field>,
}

impl Schema {
    /// A schema of these fields.
    pub fn new(fields: Vec<Field>) -> Self {
        Schema { fields }
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are no columns.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Index of the column with this name (case-insensitive), first match.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Column types in order.
    pub fn types(&self) -> Vec<SqlType> {
        self.fields.iter().map(|f| f.ty).collect()
    }

    /// The Arrow schema with the same names, types and nullability.
    pub fn to_arrow(&self) -> Arc<ArrowSchema> {
        Arc::new(ArrowSchema::new(
            self.fields
                .iter()
                .map(|f| ArrowField::new(&f.name, f.ty.to_arrow(), f.nullable))
                .collect::<Vec<_>>(),
        ))
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}: {}", field.name, field.ty)?;
        }
        write!(f, "]")
    }
}
