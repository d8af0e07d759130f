//! Hive-style partitioning (`PARTITIONED BY (dt, hr)`, i.e. `'partition.columns' =
//! 'dt,hr'`): the sink writes each row under `dt=<value>/hr=<value>/` and leaves the
//! partition columns out of the files; the source reads them back from those directory
//! names. Values are rendered as text (as in CSV), with the characters Hive escapes
//! written as `%XX`; NULL is `__HIVE_DEFAULT_PARTITION__` — the layout Flink, Hive,
//! Spark, Trino and DuckDB (`hive_partitioning`) read.

use crate::values::{parse_text, write_cell, TextStyle, Value};
use crate::{ConnectorError, Result};
use arrow::array::Array;
use sluice_catalogs::{Schema, SqlType};

/// The directory name of a NULL partition value.
pub(crate) const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The partition columns of a table: positions in the table schema, in
/// `PARTITIONED BY` order, and the other (data) columns, in table order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Partitioning {
    pub(crate) columns: Vec<usize>,
    pub(crate) names: Vec<String>,
    pub(crate) types: Vec<SqlType>,
    pub(crate) data: Vec<usize>,
}

impl Partitioning {
    /// Resolves `names` (case-insensitively) in `schema`.
    pub(crate) fn new(names: &[String], schema: &Schema) -> Result<Partitioning> {
        let mut columns = Vec::new();
        for n in names {
            let i = schema
                .fields
                .iter()
                .position(|f| f.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| {
                    ConnectorError::Config(format!(
                        "partition column '{n}' is not a column of the table"
                    ))
                })?;
            if columns.contains(&i) {
                return Err(ConnectorError::Config(format!(
                    "partition column '{n}' is named twice"
                )));
            }
            columns.push(i);
        }
        let data: Vec<usize> = (0..schema.len()).filter(|i| !columns.contains(i)).collect();
        if !columns.is_empty() && data.is_empty() {
            return Err(ConnectorError::Config(
                "every column is a partition column: the files would hold no data".into(),
            ));
        }
        Ok(Partitioning {
            names: columns
                .iter()
                .map(|&i| schema.fields[i].name.clone())
                .collect(),
            types: columns.iter().map(|&i| schema.fields[i].ty).collect(),
            columns,
            data,
        })
    }

    /// True when the table is partitioned.
    pub(crate) fn is_partitioned(&self) -> bool {
        !self.columns.is_empty()
    }

    /// The directory (`a=1/b=x`) of row `row`, whose partition columns are `arrays`.
    pub(crate) fn dir_of(&self, arrays: &[&dyn Array], row: usize) -> String {
        let mut dir = String::new();
        for (name, array) in self.names.iter().zip(arrays) {
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(&escape(name));
            dir.push('=');
            let mut text = String::new();
            if write_cell(&mut text, *array, row, TextStyle::Plain) {
                dir.push_str(&escape(&text));
            } else {
                dir.push_str(NULL_PARTITION);
            }
        }
        dir
    }

    /// The partition values of a file from its path segments below the table root
    /// (`a=1`, `b=x`, …, then the file name).
    pub(crate) fn values_of<'a>(
        &self,
        segments: impl Iterator<Item = &'a str>,
        file: &str,
    ) -> Result<Vec<Value<'static>>> {
        let mut found: Vec<Option<Value<'static>>> = vec![None; self.names.len()];
        for seg in segments {
            let Some((k, v)) = seg.split_once('=') else {
                continue;
            };
            let k = unescape(k);
            let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(&k)) else {
                continue;
            };
            let v = unescape(v);
            found[i] = Some(if v == NULL_PARTITION {
                Value::Null
            } else {
                crate::format::json::into_owned(parse_text(&v, self.types[i]).map_err(|e| {
                    ConnectorError::Format(format!("file {file}: partition directory '{seg}': {e}"))
                })?)
            });
        }
        found
            .into_iter()
            .zip(&self.names)
            .map(|(v, n)| {
                v.ok_or_else(|| {
                    ConnectorError::Format(format!(
                        "file {file} is not under a '{n}=…' directory of the partitioned table"
                    ))
                })
            })
            .collect()
    }
}

/// Escapes what Hive escapes in partition names and values (and `%` itself).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let special = c.is_control()
            || matches!(
                c,
                '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
            );
        if special && (c as u32) < 0x80 {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Undoes [`escape`] (and any other `%XX`).
pub(crate) fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(Ok(b)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_matches_hive() {
        for s in [
            "2026-11-21 10:00:00.000",
            "a/b=c",
            "100%",
            "plain",
            "ünïcode",
            "",
        ] {
            assert_eq!(unescape(&escape(s)), s);
        }
        assert_eq!(escape("2026-11-21 10:00"), "2026-11-21 10%3A00");
        assert_eq!(escape("a/b"), "a%2Fb");
    }
}
