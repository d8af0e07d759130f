//! The `filesystem` connector: CSV, JSON-lines and Parquet files in any
//! [`object_store`]: local paths, `file://`, `s3://`, `gs://` and `az://` URLs (storage
//! options and credentials: [`STORAGE_KEYS`]).
//!
//! Options:
//!
//! | key | meaning |
//! |-----|---------|
//! | `path` (required) | a file or a directory: `/abs/dir`, `rel/dir` (against the current dir), `file:///abs/dir` |
//! | `format` (required) | `csv`, `json` (JSON lines) or `parquet` |
//! | `csv.field-delimiter` | one ASCII character, default `,` |
//! | `csv.header` | `false` (default, as Flink's `csv` format): every line is data and sinks write no header. `true`: the first line of each file is a header and is skipped, and sinks write one |
//! | `csv.null-literal` | unquoted text that means NULL; default the empty field |
//! | `format.on-error` | `fail` (default), `skip` or `dead-letter` (applied by the dataflow) |
//! | `source.monitor-interval` | list the directory again this often (`10s`) and read the files that appeared (Flink's option): an unbounded source. Files are dealt to workers by a hash of their name; positions record every file read, so a restore (at any worker count) reads each file once. Write files atomically (object stores do; locally, write elsewhere and rename in) |
//! | `partition.columns` | set by `PARTITIONED BY (a, b)`: Hive-style `a=…/b=…/` directories; the sink leaves these columns out of the files, the source reads them from the directory names and skips directories a pushed-down filter on them excludes (see [`partition`]) |
//! | `dead-letter.path` | where `dead-letter` writes bad records (this or `dead-letter.topic` is required with it) |
//! | `dead-letter.topic` | or: a Kafka topic for them, with `dead-letter.properties.bootstrap.servers` (and other `dead-letter.properties.*`) |
//! | `sink.rolling-policy.file-size` | roll sink files after this size, default `128MB` |
//! | `sink.rolling-policy.rollover-interval` | also roll a file this long after it was opened (`15min`, `30s`…), default never; a checkpoint always rolls |
//! | `parquet.compression` | `snappy` (default), `zstd` or `uncompressed` |
//! | `sink.overwrite` | not a table option: set on the sink's copy of the table by `INSERT OVERWRITE` (see [`sink`]) |
//! | `s3.*`, `gs.*`, `az.*` | storage options (endpoint, region, credentials): [`STORAGE_KEYS`]. S3 credentials come from `s3.access-key-id`/`s3.secret-access-key` only, unless `'s3.auth' = 'ambient'` ([`S3_AUTH`]) |
//!
//! A directory is listed recursively; names (of files or of directories below `path`)
//! starting with `_` or `.` are skipped, and files are read in key order. File `i` of
//! the sorted list is read by worker `i % workers`.

pub mod checkpoint_store;
mod dead_letter;
mod objdir;
mod prune;
mod sink;
pub(crate) mod source;
pub use objdir::ObjectDir;
#[cfg(test)]
mod tests;

pub use dead_letter::DeadLetterWriter;
pub(crate) mod partition;

use crate::options::{boolean, check_keys, choice, csv_delimiter, parse_size, required};
use crate::{Connector, ConnectorError, Result, Sink, Source, WorkerContext};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sluice_catalogs::{Schema, SourceCapabilities, TableDescriptor};
use sluice_expr::ScalarExpr;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};

/// File formats of the filesystem connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma- (or otherwise) separated values.
    Csv,
    /// One JSON object per line.
    Json,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// The file name extension sinks use.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
            FileFormat::Parquet => "parquet",
        }
    }
}

/// Option `key` as a positive duration in ms (`'30s'`, `'15min'`: Flink's syntax), if set.
fn positive_duration_ms(options: &BTreeMap<String, String>, key: &str) -> Result<Option<u64>> {
    let Some(v) = options.get(key) else {
        return Ok(None);
    };
    sluice_expr::options::parse_duration_ms(v)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Some)
        .ok_or_else(|| {
            ConnectorError::Config(format!(
                "option '{key}' is invalid: '{v}' is not a positive duration (e.g. '10s', '15min')"
            ))
        })
}

/// Parquet compression codecs sinks can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParquetCompression {
    Snappy,
    Zstd,
    Uncompressed,
}

/// The parsed, validated options of a filesystem table.
#[derive(Clone, Debug)]
pub(crate) struct FsOptions {
    pub path: String,
    pub format: FileFormat,
    pub delimiter: u8,
    pub header: bool,
    pub null_literal: String,
    pub roll_size: u64,
    /// Roll a part this long after it was opened (ms).
    pub roll_interval_ms: Option<u64>,
    pub compression: ParquetCompression,
    /// `s3.*`, `gs.*`, `az.*` options.
    pub storage: BTreeMap<String, String>,
    /// `PARTITIONED BY` columns (`'partition.columns'`), in order.
    pub partition_columns: Vec<String>,
    /// `'source.monitor-interval'`: list the directory again this often (ms) and read
    /// new files; the source never ends.
    pub monitor_interval_ms: Option<u64>,
    /// `INSERT OVERWRITE`: the job's first commit replaces the files of the directories
    /// it writes.
    pub overwrite: bool,
}

const FS_KEYS: &[&str] = &[
    "path",
    "format",
    "csv.field-delimiter",
    "csv.header",
    "csv.null-literal",
    "format.on-error",
    "scan.late-records",
    "dead-letter.path",
    "dead-letter.topic",
    "sink.rolling-policy.file-size",
    "sink.rolling-policy.rollover-interval",
    "parquet.compression",
    "partition.columns",
    "source.monitor-interval",
    sluice_expr::options::OVERWRITE_OPTION,
];

impl FsOptions {
    pub(crate) fn parse(options: &BTreeMap<String, String>) -> Result<FsOptions> {
        check_keys(
            "filesystem",
            options,
            FS_KEYS,
            &["s3.", "gs.", "az.", "dead-letter.properties."],
        )?;
        if let Some(k) = options.keys().find(|k| {
            (k.starts_with("s3.") || k.starts_with("gs.") || k.starts_with("az."))
                && !STORAGE_KEYS.iter().any(|(o, _)| o == k)
        }) {
            return Err(ConnectorError::Config(format!(
                "unknown option '{k}' for connector 'filesystem': storage options are {}",
                STORAGE_KEYS
                    .iter()
                    .map(|(o, _)| *o)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let path = required(options, "path")?.to_string();
        if path.trim().is_empty() {
            return Err(ConnectorError::Config("option 'path' is empty".into()));
        }
        required(options, "format")?;
        let format = match choice(options, "format", &["csv", "json", "parquet"])?.as_deref() {
            Some("csv") => FileFormat::Csv,
            Some("json") => FileFormat::Json,
            _ => FileFormat::Parquet,
        };
        let delimiter = csv_delimiter(options)?;
        let header = boolean(options, "csv.header", false)?;
        let null_literal = options.get("csv.null-literal").cloned().unwrap_or_default();
        crate::format::parse_on_error(options)?;
        let roll_size = match options.get("sink.rolling-policy.file-size") {
            None => 128 << 20,
            Some(v) => parse_size(v).map_err(|e| {
                ConnectorError::Config(format!(
                    "option 'sink.rolling-policy.file-size' is invalid: {e}"
                ))
            })?,
        };
        let roll_interval_ms =
            positive_duration_ms(options, "sink.rolling-policy.rollover-interval")?;
        let compression = match choice(
            options,
            "parquet.compression",
            &["snappy", "zstd", "uncompressed"],
        )?
        .as_deref()
        {
            Some("zstd") => ParquetCompression::Zstd,
            Some("uncompressed") => ParquetCompression::Uncompressed,
            _ => ParquetCompression::Snappy,
        };
        let partition_columns: Vec<String> = options
            .get("partition.columns")
            .map(|v| {
                v.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let monitor_interval_ms = positive_duration_ms(options, "source.monitor-interval")?;
        let overwrite = boolean(options, sluice_expr::options::OVERWRITE_OPTION, false)?;
        Ok(FsOptions {
            overwrite,
            monitor_interval_ms,
            partition_columns,
            storage: storage_options(options),
            path,
            format,
            delimiter,
            header,
            null_literal,
            roll_size,
            roll_interval_ms,
            compression,
        })
    }
}

/// A place in an object store: the store, the root path in it, and how to show
/// paths to users.
#[derive(Clone, Debug)]
pub(crate) struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub root: Path,
    /// `file://` or `scheme://authority`, prefixed to `/`+path when displaying.
    url_base: String,
    /// The local directory, for local stores.
    pub local: Option<std::path::PathBuf>,
}

impl Location {
    /// Resolve a URL or a local path; `storage` holds the table's `s3.*`, `gs.*` and
    /// `az.*` options (see [`STORAGE_KEYS`]). S3 credentials come from the options only,
    /// unless `'s3.credentials' = 'ambient'` (see [`S3_CREDENTIALS`]); GCS and Azure
    /// credentials not given as options come from the environment (`GOOGLE_*`,
    /// `AZURE_*`), as each SDK reads them. Error messages never contain option values.
    pub(crate) fn parse_with(s: &str, storage: &BTreeMap<String, String>) -> Result<Location> {
        let cfg = |e: String| ConnectorError::Config(format!("invalid path '{s}': {e}"));
        let looks_like_url = s.contains("://");
        let local_path = if looks_like_url {
            let url = url::Url::parse(s).map_err(|e| cfg(e.to_string()))?;
            if url.scheme() != "file" {
                let secrets: Vec<&str> = storage
                    .iter()
                    .filter(|(k, v)| sluice_catalogs::is_secret_option(k) && !v.is_empty())
                    .map(|(_, v)| v.as_str())
                    .collect();
                let scrub = |e: String| cfg(sluice_catalogs::scrub_secrets(&e, &secrets));
                let ambient = match url.scheme() {
                    "s3" | "s3a" => s3_ambient(storage, s)?,
                    _ => false,
                };
                let (store, root) = cloud_store(&url, storage, ambient).map_err(scrub)?;
                let url_base = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
                return Ok(Location {
                    store,
                    root,
                    url_base,
                    local: None,
                });
            }
            url.to_file_path()
                .map_err(|_| cfg("not a local file URL".into()))?
        } else {
            std::path::absolute(s).map_err(|e| cfg(e.to_string()))?
        };
        let root = Path::from_absolute_path(&local_path).map_err(|e| cfg(e.to_string()))?;
        Ok(Location {
            store: Arc::new(LocalFileSystem::new()),
            root,
            url_base: "file://".into(),
            local: Some(local_path),
        })
    }

    /// A path below the root.
    pub(crate) fn child(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    /// `rel`, whose segments are already percent-encoded (Hive partition directories),
    /// under the root, kept as written.
    pub(crate) fn child_encoded(&self, rel: &str) -> Path {
        let root = self.root.as_ref();
        let full = if root.is_empty() {
            rel.to_string()
        } else {
            format!("{root}/{rel}")
        };
        Path::parse(&full).unwrap_or_else(|_| self.child(rel))
    }

    /// A user-facing URL of a path in this store.
    pub(crate) fn display(&self, p: &Path) -> String {
        format!("{}/{}", self.url_base, p)
    }

    /// The data files under the root (or the root itself when it is a file), sorted,
    /// skipping hidden (`.`) and internal (`_`) names.
    pub(crate) async fn list_files(&self) -> Result<Vec<Path>> {
        match self.store.head(&self.root).await {
            Ok(meta) => return Ok(vec![meta.location]),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(io(e)),
        }
        if let Some(local) = &self.local {
            if !local.exists() {
                return Err(ConnectorError::Io(format!(
                    "path '{}' does not exist",
                    local.display()
                )));
            }
        }
        let metas: Vec<_> = self
            .store
            .list(Some(&self.root))
            .try_collect()
            .await
            .map_err(io)?;
        let root_parts = self.root.parts().count();
        let mut files: Vec<Path> = metas
            .into_iter()
            .map(|m| m.location)
            .filter(|p| {
                p.parts().skip(root_parts).all(|part| {
                    let s = part.as_ref();
                    !s.starts_with('_') && !s.starts_with('.')
                })
            })
            .collect();
        files.sort();
        Ok(files)
    }
}

/// The storage options a filesystem table accepts, and the object_store config key
/// each one sets: `s3.*` for `s3://` URLs, `gs.*` for `gs://`, `az.*` for `az://`,
/// `abfs://` and `azure://`.
pub const STORAGE_KEYS: &[(&str, &str)] = &[
    ("s3.endpoint", "aws_endpoint"),
    ("s3.region", "aws_region"),
    ("s3.access-key-id", "aws_access_key_id"),
    ("s3.secret-access-key", "aws_secret_access_key"),
    ("s3.session-token", "aws_session_token"),
    ("s3.allow-http", "aws_allow_http"),
    (
        "s3.virtual-hosted-style-request",
        "aws_virtual_hosted_style_request",
    ),
    (S3_AUTH, ""),
    ("gs.service-account-path", "google_service_account"),
    ("gs.service-account-key", "google_service_account_key"),
    (
        "gs.application-credentials",
        "google_application_credentials",
    ),
    ("az.account-name", "azure_storage_account_name"),
    ("az.access-key", "azure_storage_account_key"),
    ("az.endpoint", "azure_storage_endpoint"),
    ("az.use-emulator", "azure_storage_use_emulator"),
    ("az.allow-http", "azure_allow_http"),
];

/// Where S3 credentials come from (`'s3.auth'`): `options` (the default) means only
/// `'s3.access-key-id'`/`'s3.secret-access-key'` (and `'s3.session-token'`), and a
/// table without them is refused; `ambient` means the worker process's own AWS
/// environment: `AWS_*` variables, profiles, web identity, then the instance metadata
/// endpoint. A worker started by `sluice serve` has the master's environment, never
/// the environment of the shell that ran a `sluice` CLI command.
pub const S3_AUTH: &str = "s3.auth";

/// Whether `storage` asks for ambient S3 credentials; an error for a bad value or for
/// a table with neither keys nor `ambient` (before the SDK would fall through to the
/// instance metadata endpoint).
fn s3_ambient(storage: &BTreeMap<String, String>, path: &str) -> Result<bool> {
    let ambient = match storage.get(S3_AUTH).map(String::as_str) {
        None | Some("options") => false,
        Some("ambient") => true,
        Some(other) => {
            return Err(ConnectorError::Config(format!(
                "option '{S3_AUTH}' must be 'options' or 'ambient', not '{other}'"
            )))
        }
    };
    let has = |k: &str| storage.get(k).is_some_and(|v| !v.is_empty());
    let keys = has("s3.access-key-id") && has("s3.secret-access-key");
    if !(ambient || keys) {
        return Err(ConnectorError::Config(format!(
            "no S3 credentials for path '{path}': set 's3.access-key-id' and \
             's3.secret-access-key', or '{S3_AUTH}' = 'ambient' to use the worker process's \
             AWS environment (AWS_* variables, profiles, instance metadata; variables exported \
             in the shell of a `sluice` CLI command do not reach workers a master starts)"
        )));
    }
    Ok(ambient)
}

/// The table's storage options (`s3.*`, `gs.*`, `az.*`).
pub fn storage_options(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    options
        .iter()
        .filter(|(k, _)| STORAGE_KEYS.iter().any(|(o, _)| o == k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A cloud object store for `url` configured from `storage` (and from the environment:
/// for S3 only when `ambient`, see [`S3_AUTH`]).
fn cloud_store(
    url: &url::Url,
    storage: &BTreeMap<String, String>,
    s3_ambient: bool,
) -> std::result::Result<(Arc<dyn ObjectStore>, Path), String> {
    let config = |prefix: &str| -> Vec<(&'static str, String)> {
        STORAGE_KEYS
            .iter()
            .filter(|(o, k)| o.starts_with(prefix) && !k.is_empty())
            .filter_map(|(o, k)| storage.get(*o).map(|v| (*k, v.clone())))
            .collect()
    };
    let path = Path::from_url_path(url.path()).map_err(|e| e.to_string())?;
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => {
            let b = if s3_ambient {
                object_store::aws::AmazonS3Builder::from_env()
            } else {
                object_store::aws::AmazonS3Builder::new()
            };
            let mut b = b.with_url(url.as_str());
            for (k, v) in config("s3.") {
                let key = k.parse().map_err(|e: object_store::Error| e.to_string())?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        "gs" => {
            let mut b =
                object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            for (k, v) in config("gs.") {
                let key = k.parse().map_err(|e: object_store::Error| e.to_string())?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        "az" | "abfs" | "abfss" | "azure" | "adl" => {
            let mut b =
                object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            for (k, v) in config("az.") {
                let key = k.parse().map_err(|e: object_store::Error| e.to_string())?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "unsupported URL scheme '{other}': use a local path, file://, s3://, gs:// or az://"
            ))
        }
    };
    Ok((store, path))
}

/// An object store error as a connector error.
pub(crate) fn io(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Io(e.to_string())
}

/// Run a future to completion on the connectors' shared tokio runtime. Sources and
/// sinks are called from (non-async) dataflow worker threads; when called from inside
/// some other tokio runtime, the future runs on a helper thread instead (blocking a
/// runtime thread on another runtime would panic).
pub(crate) fn block_on<F>(f: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-connectors-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match rt {
        Ok(rt) if tokio::runtime::Handle::try_current().is_ok() => {
            std::thread::scope(|scope| scope.spawn(|| rt.block_on(f)).join())
                .map_err(|_| ConnectorError::Internal("the I/O helper thread panicked".into()))
        }
        Ok(rt) => Ok(rt.block_on(f)),
        Err(e) => Err(ConnectorError::Internal(format!(
            "cannot start the I/O runtime: {e}"
        ))),
    }
}

/// The `filesystem` connector.
#[derive(Clone, Copy, Debug, Default)]
pub struct FilesystemConnector;

impl Connector for FilesystemConnector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn validate(
        &self,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities> {
        if options.contains_key(sluice_expr::options::OVERWRITE_OPTION) {
            return Err(ConnectorError::Config(format!(
                "option '{}' is not a table option: write INSERT OVERWRITE instead of INSERT INTO",
                sluice_expr::options::OVERWRITE_OPTION
            )));
        }
        let opts = FsOptions::parse(options)?;
        Location::parse_with(&opts.path, &storage_options(options))?;
        if schema.is_empty() {
            return Err(ConnectorError::Config(
                "a filesystem table needs at least one column".into(),
            ));
        }
        partition::Partitioning::new(&opts.partition_columns, schema)?;
        Ok(SourceCapabilities {
            filter_pushdown: true,
            projection_pushdown: true,
            bounded: opts.monitor_interval_ms.is_none(),
            ..Default::default()
        })
    }

    fn create_source(
        &self,
        table: &TableDescriptor,
        projection: &[usize],
        filters: &[ScalarExpr],
        ctx: WorkerContext,
    ) -> Result<Box<dyn Source>> {
        let source: Box<dyn Source> =
            Box::new(source::FileSource::new(table, projection, filters, ctx)?);
        Ok(crate::filter::with_filters(
            source, table, projection, filters,
        ))
    }

    fn can_overwrite(&self) -> bool {
        true
    }

    fn create_sink(&self, table: &TableDescriptor, ctx: WorkerContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::FileSink::new(table, ctx)?))
    }
}

/// Run `f`, turning a panic inside a third-party decoder (on corrupt input) into a
/// [`ConnectorError::Format`] error about `what`.
pub(crate) fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(ConnectorError::Format(format!(
            "cannot decode {what}: {msg}"
        )))
    })
}
