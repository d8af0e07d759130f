//! Printing a final `SELECT`'s rows: an aligned table, CSV, or JSON Lines.

use clap::ValueEnum;
use sluice_catalogs::SqlType;
use sluice_compiler::eval::format_datum;
use sluice_compiler::instance::CollectedResult;
use sluice_compiler::Datum;
use std::io::{self, Write};

/// Output formats of `sluice run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned text table with a header.
    Table,
    /// RFC 4180 CSV with a header line; NULL is an empty unquoted field.
    Csv,
    /// JSON Lines: one object per row, keys in column order.
    Json,
}

/// Write `result` to `out` in `format`.
pub fn print_result(
    out: &mut impl Write,
    result: &CollectedResult,
    format: Format,
) -> io::Result<()> {
    match format {
        Format::Table => print_table(out, result),
        Format::Csv => print_csv(out, result),
        Format::Json => print_json(out, result),
    }
}

fn print_table(out: &mut impl Write, result: &CollectedResult) -> io::Result<()> {
    let fields = &result.schema.fields;
    let cells: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(fields)
                .map(|(d, f)| format_datum(d, f.ty))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = fields.iter().map(|f| f.name.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+";
    writeln!(out, "{rule}")?;
    let header: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
    write_table_row(out, &header, &widths, &vec![false; widths.len()])?;
    writeln!(out, "{rule}")?;
    let numeric: Vec<bool> = fields.iter().map(|f| f.ty.is_numeric()).collect();
    for row in &cells {
        write_table_row(out, row, &widths, &numeric)?;
    }
    writeln!(out, "{rule}")?;
    writeln!(
        out,
        "{} row{}",
        cells.len(),
        if cells.len() == 1 { "" } else { "s" }
    )
}

fn write_table_row(
    out: &mut impl Write,
    row: &[String],
    widths: &[usize],
    right: &[bool],
) -> io::Result<()> {
    for ((cell, w), r) in row.iter().zip(widths).zip(right) {
        let pad = w - cell.chars().count();
        if *r {
            write!(out, "| {}{} ", " ".repeat(pad), cell)?;
        } else {
            write!(out, "| {}{} ", cell, " ".repeat(pad))?;
        }
    }
    writeln!(out, "|")
}

fn csv_field(s: &str) -> String {
    if s.is_empty() || s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ')
    {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_csv(out: &mut impl Write, result: &CollectedResult) -> io::Result<()> {
    let fields = &result.schema.fields;
    let header: Vec<String> = fields.iter().map(|f| csv_field(&f.name)).collect();
    writeln!(out, "{}", header.join(","))?;
    for row in &result.rows {
        let line: Vec<String> = row
            .iter()
            .zip(fields)
            .map(|(d, f)| {
                if d.is_null() {
                    String::new()
                } else {
                    csv_field(&format_datum(d, f.ty))
                }
            })
            .collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

/// One datum as JSON text: numbers stay numbers (DECIMAL with its exact scale),
/// temporal values are strings.
pub fn json_value(d: &Datum, ty: SqlType) -> String {
    match d {
        Datum::Null => "null".to_string(),
        Datum::Bool(b) => b.to_string(),
        Datum::Int(i) => i.to_string(),
        Datum::Float(f) if f.0.is_finite() => {
            let s = format!("{:?}", f.0);
            s
        }
        Datum::Float(f) => serde_json::Value::String(f.0.to_string()).to_string(),
        Datum::Decimal(_) => format_datum(d, ty),
        _ => serde_json::Value::String(format_datum(d, ty)).to_string(),
    }
}

fn print_json(out: &mut impl Write, result: &CollectedResult) -> io::Result<()> {
    let fields = &result.schema.fields;
    let keys: Vec<String> = fields
        .iter()
        .map(|f| serde_json::Value::String(f.name.clone()).to_string())
        .collect();
    for row in &result.rows {
        write!(out, "{{")?;
        for (i, (d, f)) in row.iter().zip(fields).enumerate() {
            if i > 0 {
                write!(out, ",")?;
            }
            write!(out, "{}:{}", keys[i], json_value(d, f.ty))?;
        }
        writeln!(out, "}}")?;
    }
    Ok(())
}
