//! `CREATE TABLE` binding: columns, watermark and connector options to a
//! [`TableDescriptor`], validated by the [`ConnectorValidator`].

use super::types::sql_type_of;
use crate::error::{CompileError, Position};
use crate::parse::{metadata_option, MetadataColumn, WatermarkDecl};
use sluice_catalogs::{
    ConnectorValidator, Field, Schema, SourceCapabilities, SqlType, TableDescriptor, Watermark,
};
use sqlparser::ast::{ColumnOption, Statement};
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
                ColumnOption::PrimaryKey(_) => nullable = false,
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
