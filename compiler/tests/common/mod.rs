//! Shared fixtures for the compiler's integration tests: a test catalog, a connector
//! validator that accepts everything, and plan helpers.
#![allow(dead_code)]

use sluice_catalogs::{
    Catalog, ConnectorValidator, Field, MemoryCatalog, Schema, SinkKind, SourceCapabilities,
    SqlType, TableDescriptor, Watermark,
};
use sluice_compiler::{bind_script, BoundScript, CompileError, LogicalPlan};
use std::collections::BTreeMap;

/// Accepts any connector, except `'broken'` and a `'refused'` option (to test
/// validation errors); only
/// `'kafka'` accepts METADATA columns (`metadata.*` options), as the real registry.
pub struct AnyConnector;

impl ConnectorValidator for AnyConnector {
    fn validate(
        &self,
        connector: &str,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities, String> {
        if connector == "broken" {
            return Err("connector 'broken' is unknown".into());
        }
        if options.contains_key("refused") {
            return Err("option 'refused' is not allowed here".into());
        }
        if let Some(k) = options.keys().find(|k| k.starts_with("metadata.")) {
            if connector != "kafka" {
                return Err(format!(
                    "connector '{connector}' does not support METADATA columns (option '{k}')"
                ));
            }
        }
        Ok(SourceCapabilities {
            filter_pushdown: true,
            projection_pushdown: true,
            bounded: connector == "filesystem",
            // As the kafka connector: keyed messages take an updating result as upserts.
            sink: match options
                .get("sink.key.fields")
                .or_else(|| options.get(sluice_catalogs::PRIMARY_KEY_OPTION))
            {
                Some(fields) => SinkKind::Upsert(
                    fields
                        .split(';')
                        .filter_map(|f| schema.fields.iter().position(|c| c.name == f.trim()))
                        .collect(),
                ),
                None => SinkKind::Append,
            },
        })
    }

    fn can_overwrite(&self, connector: &str) -> bool {
        connector == "filesystem"
    }
}

fn table(name: &str, cols: &[(&str, SqlType)], watermark: Option<usize>) -> TableDescriptor {
    let mut options = BTreeMap::new();
    options.insert("connector".to_string(), "memory".to_string());
    TableDescriptor {
        name: name.to_string(),
        schema: Schema::new(cols.iter().map(|(n, t)| Field::new(*n, *t)).collect()),
        connector: "memory".into(),
        options,
        watermark: watermark.map(|column| Watermark {
            column,
            delay_ms: 0,
        }),
        capabilities: SourceCapabilities::default(),
    }
}

/// The test catalog.
pub fn catalog() -> MemoryCatalog<'static> {
    use SqlType::*;
    let mut c = MemoryCatalog::new();
    let tables = [
        table(
            "bid",
            &[
                ("auction", BigInt),
                ("bidder", BigInt),
                ("price", BigInt),
                ("channel", Varchar),
                ("url", Varchar),
                ("dateTime", Timestamp),
                ("extra", Varchar),
            ],
            Some(5),
        ),
        table(
            "person",
            &[
                ("id", BigInt),
                ("name", Varchar),
                ("city", Varchar),
                ("state", Varchar),
                ("dateTime", Timestamp),
            ],
            Some(4),
        ),
        table(
            "t",
            &[
                ("a", Int),
                ("b", BigInt),
                ("c", Double),
                (
                    "d",
                    Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                ("s", Varchar),
                ("dt", Date),
                ("ts", Timestamp),
                ("flag", Boolean),
            ],
            None,
        ),
        table(
            "auction",
            &[
                ("id", BigInt),
                ("itemName", Varchar),
                ("description", Varchar),
                ("initialBid", BigInt),
                ("reserve", BigInt),
                ("dateTime", Timestamp),
                ("expires", Timestamp),
                ("seller", BigInt),
                ("category", BigInt),
                ("extra", Varchar),
            ],
            Some(5),
        ),
        table("u", &[("a", Int), ("x", Varchar)], None),
        table("sink2", &[("k", BigInt), ("v", BigInt)], None),
        table("sink_s", &[("name", Varchar), ("n", BigInt)], None),
    ];
    for t in tables {
        c.register(t).expect("fresh catalog");
    }
    c
}

/// Bind a script against the test catalog.
pub fn bind(sql: &str) -> Result<BoundScript, CompileError> {
    let cat = catalog();
    let c: &dyn Catalog = &cat;
    bind_script(sql, c, &AnyConnector)
}

/// The logical plan of the script's last output.
pub fn plan(sql: &str) -> LogicalPlan {
    match bind(sql) {
        Ok(s) => match s.outputs.last() {
            Some(o) => o.logical.clone(),
            None => panic!("no output for {sql}"),
        },
        Err(e) => panic!("{sql}\n=> {e}"),
    }
}

/// Output column names and types of the script's last output.
pub fn out_schema(sql: &str) -> Vec<(String, SqlType)> {
    plan(sql)
        .schema()
        .fields
        .into_iter()
        .map(|f| (f.name, f.ty))
        .collect()
}

/// Output column types of the script's last output.
pub fn out_types(sql: &str) -> Vec<SqlType> {
    plan(sql).schema().types()
}

/// Compile a script against the test catalog (every stage, for EXPLAIN).
pub fn compiled(sql: &str) -> sluice_compiler::Compiled {
    let cat = catalog();
    let c: &dyn Catalog = &cat;
    match sluice_compiler::compile(sql, c, &AnyConnector) {
        Ok(c) => c,
        Err(e) => panic!("{sql}\n=> {e}"),
    }
}

/// The error text of a script that must fail.
pub fn err(sql: &str) -> String {
    match bind(sql) {
        Ok(s) => panic!("expected an error for {sql}, got {:?}", s.outputs),
        Err(e) => e.to_string(),
    }
}

/// The node structure of a plan: `Project(Filter(Scan:t))`.
pub fn shape(p: &LogicalPlan) -> String {
    let name = match p {
        LogicalPlan::Scan { table, .. } => return format!("Scan:{}", table.name),
        LogicalPlan::Values { rows, .. } => return format!("Values:{}", rows.len()),
        LogicalPlan::Filter { .. } => "Filter",
        LogicalPlan::Project { .. } => "Project",
        LogicalPlan::Join { kind, .. } => {
            return format!(
                "Join:{kind:?}({})",
                p.inputs()
                    .iter()
                    .map(|i| shape(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        LogicalPlan::Aggregate { .. } => "Aggregate",
        LogicalPlan::Window { .. } => "Window",
        LogicalPlan::Union { .. } => "Union",
        LogicalPlan::Sort { .. } => "Sort",
        LogicalPlan::TopK { .. } => "TopK",
        LogicalPlan::Over { .. } => "Over",
    };
    format!(
        "{name}({})",
        p.inputs()
            .iter()
            .map(|i| shape(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A compact, indented rendering of a plan (node, its parameters on one line).
pub fn show(p: &LogicalPlan) -> String {
    fn go(p: &LogicalPlan, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let line = match p {
            LogicalPlan::Scan {
                table,
                projection,
                filters,
            } => {
                format!("Scan {} {projection:?} {filters:?}", table.name)
            }
            LogicalPlan::Values { schema, rows } => format!("Values {schema} {rows:?}"),
            LogicalPlan::Filter { predicate, .. } => format!("Filter {predicate:?}"),
            LogicalPlan::Project { exprs, names, .. } => format!("Project {names:?} {exprs:?}"),
            LogicalPlan::Join {
                kind, on, filter, ..
            } => format!("Join {kind:?} {on:?} {filter:?}"),
            LogicalPlan::Aggregate { group_by, aggs, .. } => {
                format!("Aggregate {group_by:?} {aggs:?}")
            }
            LogicalPlan::Window {
                kind,
                time_col,
                partition_by,
                ..
            } => {
                format!("Window {kind:?} time={time_col} part={partition_by:?}")
            }
            LogicalPlan::Union { .. } => "Union".to_string(),
            LogicalPlan::Sort {
                keys,
                limit,
                offset,
                ..
            } => format!("Sort {keys:?} {limit:?} {offset}"),
            LogicalPlan::TopK {
                partition_by,
                order_by,
                limit,
                rank_column,
                ..
            } => format!("TopK {partition_by:?} {order_by:?} {limit:?} rn={rank_column}"),
            LogicalPlan::Over {
                partition_by,
                order_by,
                aggs,
                preceding,
                ..
            } => format!("Over {partition_by:?} {order_by:?} {aggs:?} preceding={preceding:?}"),
        };
        out.push_str(&format!("{pad}{line}\n"));
        for i in p.inputs() {
            go(i, depth + 1, out);
        }
    }
    let mut s = String::new();
    go(p, 0, &mut s);
    s
}
