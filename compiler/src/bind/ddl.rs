//! `CREATE TABLE` binding: columns, watermark and connector options to a
//! [`TableDescriptor`], validated by the [`ConnectorValidator`].

use super::types::sql_type_of;
use crate::error::{CompileError, Position};
use crate::parse::{metadata_option, MetadataColumn, WatermarkDecl};
use sluice_catalogs::{
    ConnectorValidator, Field, Schema, SourceCapabilities, SqlType, TableDescriptor, Watermark,
    PRIMARY_KEY_OPTION,
};
use sqlparser::ast::{ColumnOption, Expr, Statement, TableConstraint};
use std::collections::BTreeMap;

/// Build the descriptor of a `CREATE TABLE` statement. `options` (with where each key
/// is written) already hold the `metadata.<column>` option of each of the `metadata`
/// columns. A connector's error that names an option (`'key'`) points at that option.
pub fn bind_create_table(
    stmt: &Statement,
    options: &BTreeMap<String, String>,
    option_positions: &BTreeMap<String, Position>,
    watermark: Option<&WatermarkDecl>,
    metadata: &[MetadataColumn],
    connectors: &dyn ConnectorValidator,
    position: Option<Position>,
) -> Result<TableDescriptor, CompileError> {
    let Statement::CreateTable(ct) = stmt else {
        return Err(CompileError::internal("not a CREATE TABLE statement"));
    };
    if ct.query.is_some() {
        return Err(CompileError::unsupported(
            "CREATE TABLE … AS SELECT is not supported",
            position,
        ));
    }
    if ct.columns.is_empty() {
        return Err(CompileError::plan(
            "a table needs at least one column",
            position,
        ));
    }
    let name = match ct.name.0.last() {
        Some(sqlparser::ast::ObjectNamePart::Identifier(id)) => id.value.clone(),
        _ => return Err(CompileError::plan("invalid table name", position)),
    };
    let mut fields: Vec<Field> = Vec::with_capacity(ct.columns.len());
    // `PRIMARY KEY` columns (Flink's `PRIMARY KEY (…) NOT ENFORCED`: not checked, it
    // tells a keyed sink its key), with where each is named.
    let mut primary_key: Vec<(String, Option<Position>)> = Vec::new();
    for c in &ct.columns {
        let cpos = crate::parse::span_pos(c.name.span).or(position);
        if fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(&c.name.value))
        {
            return Err(CompileError::plan(
                format!("duplicate column '{}'", c.name.value),
                cpos,
            ));
        }
        let ty = sql_type_of(&c.data_type, cpos)?;
        let mut nullable = true;
        for o in &c.options {
            match &o.option {
                ColumnOption::NotNull => nullable = false,
                ColumnOption::Null => nullable = true,
                ColumnOption::PrimaryKey(_) => {
                    nullable = false;
                    primary_key.push((c.name.value.clone(), cpos));
                }
                ColumnOption::Comment(_) => {}
                _ => {
                    return Err(CompileError::unsupported(
                        format!("column option '{}' is not supported", o.option),
                        cpos,
                    ))
                }
            }
        }
        fields.push(Field {
            name: c.name.value.clone(),
            ty,
            nullable,
        });
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) if primary_key.is_empty() => {
                for ic in &pk.columns {
                    match &ic.column.expr {
                        Expr::Identifier(id) => primary_key
                            .push((id.value.clone(), crate::parse::span_pos(id.span).or(position))),
                        other => {
                            return Err(CompileError::plan(
                                "PRIMARY KEY must list columns",
                                super::expr::pos_of(other).or(position),
                            ))
                        }
                    }
                }
            }
            TableConstraint::PrimaryKey(_) => {
                return Err(CompileError::plan(
                    format!("table '{name}' declares its PRIMARY KEY twice"),
                    position,
                ))
            }
            other => {
                return Err(CompileError::unsupported(
                    format!(
                        "table constraint '{other}' is not supported (only PRIMARY KEY (…) NOT ENFORCED)"
                    ),
                    position,
                ))
            }
        }
    }
    let mut pk_names: Vec<String> = Vec::with_capacity(primary_key.len());
    for (column, at) in &primary_key {
        let Some(f) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(column)) else {
            return Err(CompileError::plan(
                format!("unknown column '{column}' in PRIMARY KEY"),
                *at,
            ));
        };
        if pk_names.contains(&f.name) {
            return Err(CompileError::plan(
                format!("column '{}' is in the PRIMARY KEY twice", f.name),
                *at,
            ));
        }
        pk_names.push(f.name.clone());
    }
    for f in fields.iter_mut() {
        if pk_names.contains(&f.name) {
            f.nullable = false;
        }
    }
    let mut options = options.clone();
    if !pk_names.is_empty() {
        if options.contains_key(PRIMARY_KEY_OPTION) {
            return Err(CompileError::plan(
                format!(
                    "option '{PRIMARY_KEY_OPTION}' is written by the compiler from PRIMARY KEY (…); \
                     declare the key there"
                ),
                option_positions.get(PRIMARY_KEY_OPTION).copied().or(position),
            ));
        }
        options.insert(PRIMARY_KEY_OPTION.to_string(), pk_names.join(";"));
    }
    let options = &options;
    let schema = Schema::new(fields);
    let watermark = match watermark {
        None => None,
        Some(w) => {
            let column = schema.index_of(&w.column).ok_or_else(|| {
                CompileError::plan(
                    format!("unknown watermark column '{}'", w.column),
                    w.position,
                )
            })?;
            let ty = schema.fields.get(column).map(|f| f.ty);
            if ty != Some(SqlType::Timestamp) {
                return Err(CompileError::plan(
                    format!(
                        "the watermark column '{}' must be TIMESTAMP(3), not {}",
                        w.column,
                        ty.unwrap_or(SqlType::Null)
                    ),
                    w.position,
                ));
            }
            Some(Watermark {
                column,
                delay_ms: w.delay_ms,
            })
        }
    };
    let Some(connector) = options.get("connector").cloned() else {
        return Err(CompileError::plan(
            format!("table '{name}' needs a 'connector' option in WITH (...)"),
            position,
        ));
    };
    let capabilities: SourceCapabilities = connectors
        .validate(&connector, options, &schema)
        .map_err(|m| {
            // An error about a METADATA column (e.g. from a connector that has none)
            // points at it.
            let at = metadata
                .iter()
                .find(|c| m.contains(&format!("'{}'", metadata_option(&c.column))))
                .and_then(|c| c.position);
            // Else the option the message names first.
            let named = option_positions
                .iter()
                .filter_map(|(k, p)| m.find(&format!("'{k}'")).map(|at| (at, *p)))
                .min_by_key(|(at, _)| *at)
                .map(|(_, p)| p);
            CompileError::plan(format!("table '{name}': {m}"), at.or(named).or(position))
        })?;
    Ok(TableDescriptor {
        name,
        schema,
        connector,
        options: options.clone(),
        watermark,
        capabilities,
    })
}
