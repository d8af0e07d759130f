//! # sluice-catalogs: what a table *is*
//!
//! Position on the data path:
//!
//! ```text
//! SQL text ─▶ AST ─▶ bind(**catalog**) ─▶ LogicalPlan ─▶ optimize ─▶ DataflowPlan ─▶ running instance
//! ```
//!
//! The binder in `sluice-compiler` resolves every table name through the [`Catalog`]
//! trait to a [`TableDescriptor`]: its schema ([`Schema`] of [`Field`]s typed by
//! [`SqlType`]), the connector that reads or writes it, the connector's options and
//! an optional event-time [`Watermark`]. Nothing in this crate does I/O; catalogs
//! that persist tables (the master's sled store, config files) implement the trait
//! elsewhere.
//!
//! Built-in: [`MemoryCatalog`], which holds the tables a SQL script declares with
//! `CREATE TABLE`/`CREATE VIEW` and is layered over any other catalog.

#![forbid(unsafe_code)]

pub mod sealed;
mod types;

pub use types::{Field, Schema, SqlType};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An event-time watermark declared by `WATERMARK FOR col AS col - INTERVAL …`.
///
/// The watermark of a source split is `max(event time seen) - delay_ms`; the dataflow
/// frontier carries it, so an event-time window closes when the frontier passes its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Index of the event-time column (a `TIMESTAMP(3)`) in the table schema.
    pub column: usize,
    /// How far the watermark trails the largest event time seen, in milliseconds.
    pub delay_ms: i64,
}

/// What the compiler may push into a table's source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCapabilities {
    /// The source evaluates pushed-down predicates itself (rows failing them never leave it).
    pub filter_pushdown: bool,
    /// The source reads only the projected columns.
    pub projection_pushdown: bool,
    /// The source is bounded (finite) with its current options.
    pub bounded: bool,
    /// How the table's sink can take a result that retracts rows (an unwindowed
    /// aggregate, an outer join, a Top-N): see [`SinkKind`].
    #[serde(default)]
    pub sink: SinkKind,
}

/// How a connector's sink takes an *updating* result (one that retracts rows it
/// emitted). The compiler picks the sink mode from it (`sluice_compiler`'s `SinkMode`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SinkKind {
    /// Only appends rows (files): an updating result is written once, consolidated, when
    /// its input is complete, so it is refused over an unbounded source.
    #[default]
    Append,
    /// Writes keyed messages (Kafka with `sink.key.fields`): a row replaces the previous
    /// one of its key, a delete removes it (Kafka: a tombstone). The key columns, as
    /// indexes into the table's schema.
    Upsert(Vec<usize>),
    /// Shows each change as it is (`print`: `+I[…]` and `-D[…]` lines).
    Changelog,
    /// Drops what it is given (`blackhole`): takes any result.
    Discard,
}

/// Everything the compiler and the runtime need to know about one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDescriptor {
    /// The table's name as declared (case preserved; lookups are case-insensitive).
    pub name: String,
    /// Columns in declaration order.
    pub schema: Schema,
    /// The `'connector'` option: which connector reads/writes this table.
    pub connector: String,
    /// All `WITH (...)` options, `'connector'` included, in key order.
    pub options: BTreeMap<String, String>,
    /// The event-time watermark, if declared.
    pub watermark: Option<Watermark>,
    /// What the connector can do, filled in by whoever registers the table
    /// (the connector registry knows; the compiler only reads it).
    pub capabilities: SourceCapabilities,
}

impl TableDescriptor {
    /// An option value by key.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// The options with every secret value (see [`is_secret_option`]) replaced by
    /// [`REDACTED`]: what may be shown in an API response or a log.
    pub fn redacted_options(&self) -> BTreeMap<String, String> {
        self.options
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_option(k) {
                    REDACTED.to_string()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// The values of this table's secret options (non-empty ones), to scrub from text.
    pub fn secret_values(&self) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(k, v)| is_secret_option(k) && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The table option through which a `PRIMARY KEY (…) NOT ENFORCED` reaches the
/// connector (written by the compiler, `;`-separated column names; every connector
/// accepts it, a keyed sink keys its messages by it).
pub const PRIMARY_KEY_OPTION: &str = "primary-key";

/// What a secret option value is replaced with wherever it would be shown.
pub const REDACTED: &str = "******";

/// True for connector options that hold credentials (`password`, `secret`, `token`,
/// `credential`, access keys, SASL JAAS configs, private keys): their values never
/// appear in API responses, logs or error messages.
pub fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credential",
        "access-key",
        "access_key",
        "accesskey",
        "sasl.jaas",
        "private",
        "api-key",
        "api_key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// `text` with every occurrence of each secret value replaced by [`REDACTED`] (longest
/// values first, so a secret containing another is scrubbed whole).
pub fn scrub_secrets(text: &str, secrets: &[&str]) -> String {
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s, REDACTED);
    }
    out
}

/// Errors a catalog reports.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// The table is already defined.
    #[error("table '{0}' already exists")]
    AlreadyExists(String),
    /// The catalog could not be read (e.g. its backing store failed).
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
}

/// Resolves table names to descriptors. Implementations must be cheap to query:
/// the binder calls [`Catalog::table`] once per table reference.
pub trait Catalog: Send + Sync {
    /// Look a table up by name, case-insensitively. `Ok(None)` when it does not exist.
    fn table(&self, name: &str) -> Result<Option<TableDescriptor>, CatalogError>;
    /// All table names this catalog knows, sorted.
    fn table_names(&self) -> Result<Vec<String>, CatalogError>;
}

/// An in-memory catalog of tables, keyed by lower-cased name, optionally layered
/// over a parent catalog that is consulted for names it does not hold.
#[derive(Default)]
pub struct MemoryCatalog<'a> {
    tables: BTreeMap<String, TableDescriptor>,
    parent: Option<&'a dyn Catalog>,
}

impl<'a> MemoryCatalog<'a> {
    /// An empty catalog.
    pub fn new() -> Self {
        Self {
            tables: BTreeMap::new(),
            parent: None,
        }
    }

    /// An empty catalog whose misses fall through to `parent`.
    pub fn layered(parent: &'a dyn Catalog) -> Self {
        Self {
            tables: BTreeMap::new(),
            parent: Some(parent),
        }
    }

    /// Add a table; fails if one of that name already exists here or in the parent.
    pub fn register(&mut self, table: TableDescriptor) -> Result<(), CatalogError> {
        let key = table.name.to_lowercase();
        if self.tables.contains_key(&key) || self.parent_has(&key)? {
            return Err(CatalogError::AlreadyExists(table.name));
        }
        self.tables.insert(key, table);
        Ok(())
    }

    fn parent_has(&self, key: &str) -> Result<bool, CatalogError> {
        match self.parent {
            Some(p) => Ok(p.table(key)?.is_some()),
            None => Ok(false),
        }
    }
}

impl Catalog for MemoryCatalog<'_> {
    fn table(&self, name: &str) -> Result<Option<TableDescriptor>, CatalogError> {
        if let Some(t) = self.tables.get(&name.to_lowercase()) {
            return Ok(Some(t.clone()));
        }
        match self.parent {
            Some(p) => p.table(name),
            None => Ok(None),
        }
    }

    fn table_names(&self) -> Result<Vec<String>, CatalogError> {
        let mut names: Vec<String> = self.tables.values().map(|t| t.name.clone()).collect();
        if let Some(p) = self.parent {
            names.extend(p.table_names()?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Checks a `CREATE TABLE`'s connector and options at compile time and says what the
/// connector can do. Implemented by `sluice-connectors`' registry; the compiler calls it
/// for every table a script declares (so an unknown connector or a bad option is a
/// compile error with a position, not a runtime failure).
pub trait ConnectorValidator: Send + Sync {
    /// `Err(message)` when the connector is unknown or the options are invalid for it.
    fn validate(
        &self,
        connector: &str,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities, String>;

    /// Whether tables of `connector` accept `INSERT OVERWRITE` (their sink can replace
    /// what the table holds at its first commit). Default: no, append only.
    fn can_overwrite(&self, connector: &str) -> bool {
        let _ = connector;
        false
    }
}
