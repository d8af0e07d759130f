//! The job sandbox of `sluice serve`: what a job's tables may touch on the master's
//! machine and network. Checked when SQL is compiled under the master (job submit and
//! update, `validate`, catalog tables, workflow tasks), through [`SandboxedValidator`],
//! which wraps the connector registry, so a violation is a compile error pointing at
//! the offending option (422 with line and column). `sluice run` (local, single user)
//! compiles against the bare registry and is not sandboxed.
//!
//! The rules, for every table of a job:
//! - a local path (`path`, `dead-letter.path`, `gs.service-account-path`, any
//!   `….location`/`….keytab` librdkafka file) resolves — relative to the master's
//!   working directory, `..` removed lexically, then symlinks resolved in the longest
//!   prefix that exists — inside one of the allowed roots (`--allow-path`), and neither
//!   inside nor above the master's data directory (its secret key, instance requests,
//!   checkpoints);
//! - librdkafka settings that load code or run commands (`plugin.library.paths`,
//!   `ssl.engine.location`, `sasl.kerberos.kinit.cmd`) are refused;
//! - with `--allow-bucket` given, an `s3://` (`s3a://`) or `gs://` location must be in
//!   one of the listed buckets (without it, any bucket: the endpoint and credential
//!   rules below still apply);
//! - a custom object-store endpoint (`s3.endpoint`, `az.endpoint`, `az.use-emulator`)
//!   must be listed by `--allow-endpoint`; the providers' public endpoints need nothing;
//! - the master's ambient cloud credentials (`'s3.auth' = 'ambient'`; a `gs://` table
//!   without credential options; an `az://` table without `az.access-key`) reach a job
//!   only for an endpoint listed by `--allow-ambient-credentials` (`aws`, `gcs`,
//!   `azure` for the public ones, or a custom endpoint's URL).
//!
//! Every message names its option as `'key'`, which the compiler turns into the
//! option's position.

use sluice_catalogs::{ConnectorValidator, Schema, SourceCapabilities};
use sluice_connectors::Registry;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Why a sandbox could not be set up from the master's flags.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SandboxError(String);

/// What jobs under this master may touch (see the module docs).
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// Allowed roots, canonical.
    roots: Vec<PathBuf>,
    /// The master's data directory, canonical: never reachable.
    data_dir: PathBuf,
    /// Relative paths resolve against this (the workers' working directory).
    base: PathBuf,
    /// Custom endpoints allowed, as origins (`http://127.0.0.1:9000`).
    endpoints: Vec<String>,
    /// Where ambient credentials may go: `aws`, `gcs`, `azure` or origins.
    ambient: Vec<String>,
    /// Buckets allowed, as `s3://name` or `gs://name`; empty: any.
    buckets: Vec<String>,
}

/// The public endpoint names `--allow-ambient-credentials` accepts besides URLs.
pub const PROVIDERS: &[&str] = &["aws", "gcs", "azure"];

/// Options that make librdkafka load code or run a command: refused under a master.
const CODE_OPTIONS: &[&str] = &[
    "plugin.library.paths",
    "ssl.engine.location",
    "sasl.kerberos.kinit.cmd",
];

impl Sandbox {
    /// A sandbox allowing `roots` (each must exist) and never `data_dir`; `endpoints`
    /// are the custom endpoints allowed, `ambient` where ambient credentials may go.
    pub fn new(
        roots: &[PathBuf],
        data_dir: &Path,
        endpoints: &[String],
        ambient: &[String],
    ) -> Result<Sandbox, SandboxError> {
        let base = std::env::current_dir()
            .map_err(|e| SandboxError(format!("cannot read the working directory: {e}")))?;
        let canonical = |what: &str, p: &Path| {
            p.canonicalize()
                .map_err(|e| SandboxError(format!("{what} {}: {e}", p.display())))
        };
        let roots = roots
            .iter()
            .map(|r| canonical("--allow-path", r))
            .collect::<Result<Vec<_>, _>>()?;
        let data_dir = canonical("the data directory", data_dir)?;
        let endpoints = endpoints
            .iter()
            .map(|e| origin(e).map_err(|m| SandboxError(format!("--allow-endpoint {e}: {m}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let ambient = ambient
            .iter()
            .map(|e| {
                let lower = e.to_ascii_lowercase();
                if PROVIDERS.contains(&lower.as_str()) {
                    Ok(lower)
                } else {
                    origin(e).map_err(|m| {
                        SandboxError(format!(
                            "--allow-ambient-credentials {e}: {m} (or one of {})",
                            PROVIDERS.join(", ")
                        ))
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sandbox {
            roots,
            data_dir,
            base,
            endpoints,
            ambient,
            buckets: Vec::new(),
        })
    }

    /// Only these object-store buckets (`s3://name`, `s3a://name` or `gs://name`) may be
    /// used; with none given, any bucket may.
    pub fn with_buckets(mut self, buckets: &[String]) -> Result<Sandbox, SandboxError> {
        self.buckets = buckets
            .iter()
            .map(|b| {
                bucket_of(b).map_err(|m| {
                    SandboxError(format!(
                        "--allow-bucket {b}: {m} (expected s3://bucket or gs://bucket)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self)
    }

    /// The allowed roots (canonical), for messages.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// `Err(message naming the option)` when a table with these options would reach
    /// outside the sandbox.
    pub fn check(&self, options: &BTreeMap<String, String>) -> Result<(), String> {
        // Endpoints first: where the credentials would go is the first thing to refuse.
        for key in ["s3.endpoint", "az.endpoint"] {
            if let Some(v) = options.get(key) {
                self.check_endpoint(key, v)?;
            }
        }
        if flag(options, "az.use-emulator") {
            self.check_endpoint("az.use-emulator", AZURITE)?;
        }
        for (key, value) in options {
            let bare = key
                .strip_prefix("dead-letter.properties.")
                .or_else(|| key.strip_prefix("properties."))
                .unwrap_or(key);
            if CODE_OPTIONS.contains(&bare) {
                return Err(format!(
                    "option '{key}' is not allowed in a job under a master (it loads code or runs a command)"
                ));
            }
            if is_path_option(key) && !is_probe(key, value) {
                self.check_location(key, value, options)?;
            }
        }
        Ok(())
    }

    /// One path-valued option: a local path inside the roots, or an object-store URL
    /// whose credentials may be used.
    fn check_location(
        &self,
        key: &str,
        value: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        if !value.contains("://") {
            return self.check_local(key, value, Path::new(value));
        }
        let url =
            url::Url::parse(value).map_err(|e| format!("option '{key}': invalid URL: {e}"))?;
        match url.scheme() {
            "file" => {
                let p = url
                    .to_file_path()
                    .map_err(|()| format!("option '{key}': not a local file URL"))?;
                self.check_local(key, value, &p)
            }
            "s3" | "s3a" => {
                self.check_bucket(key, &url)?;
                let ambient = options.get("s3.auth").is_some_and(|v| v == "ambient");
                let at = match options.get("s3.endpoint") {
                    Some(e) => origin(e).map_err(|m| format!("option 's3.endpoint': {m}"))?,
                    None => "aws".to_string(),
                };
                self.check_ambient("s3.auth", ambient, &at)
            }
            "gs" => {
                self.check_bucket(key, &url)?;
                let ambient = ![
                    "gs.service-account-path",
                    "gs.service-account-key",
                    "gs.application-credentials",
                ]
                .iter()
                .any(|k| options.contains_key(*k));
                self.check_ambient(key, ambient, "gcs")
            }
            "az" | "abfs" | "abfss" | "azure" | "adl" => {
                let emulator = flag(options, "az.use-emulator");
                let ambient = !emulator && !options.contains_key("az.access-key");
                let at = match options.get("az.endpoint") {
                    Some(e) => origin(e).map_err(|m| format!("option 'az.endpoint': {m}"))?,
                    None => "azure".to_string(),
                };
                self.check_ambient(key, ambient, &at)
            }
            // The connector refuses other schemes with its own message.
            _ => Ok(()),
        }
    }

    fn check_local(&self, key: &str, value: &str, path: &Path) -> Result<(), String> {
        let resolved = resolve(&self.base, path);
        if resolved.starts_with(&self.data_dir) || self.data_dir.starts_with(&resolved) {
            return Err(format!(
                "option '{key}': '{value}' reaches into the master's data directory, which jobs may not touch"
            ));
        }
        if !self.roots.iter().any(|r| resolved.starts_with(r)) {
            let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
            return Err(format!(
                "option '{key}': '{value}' is outside the directories this master lets jobs use ({}; the master's --allow-path)",
                roots.join(", ")
            ));
        }
        Ok(())
    }

    fn check_bucket(&self, key: &str, url: &url::Url) -> Result<(), String> {
        if self.buckets.is_empty() {
            return Ok(());
        }
        let bucket = bucket_of(url.as_str()).map_err(|m| format!("option '{key}': {m}"))?;
        if self.buckets.contains(&bucket) {
            return Ok(());
        }
        Err(format!(
            "option '{key}': bucket {bucket} is not allowed on this master (it lets jobs use {}; the operator lists buckets with --allow-bucket)",
            self.buckets.join(", ")
        ))
    }

    fn check_endpoint(&self, key: &str, value: &str) -> Result<(), String> {
        let o = origin(value).map_err(|m| format!("option '{key}': {m}"))?;
        if self.endpoints.contains(&o) {
            Ok(())
        } else {
            Err(format!(
                "option '{key}': endpoint {o} is not allowed on this master (the operator lists custom endpoints with --allow-endpoint)"
            ))
        }
    }

    fn check_ambient(&self, key: &str, ambient: bool, at: &str) -> Result<(), String> {
        if !ambient || self.ambient.iter().any(|a| a == at) {
            return Ok(());
        }
        Err(format!(
            "option '{key}': this table would use the master's own cloud credentials for {at}, \
             which this master does not lend to jobs (give the table its own credentials, or \
             the operator allows it with --allow-ambient-credentials {at})"
        ))
    }
}

/// Azurite's default endpoint, which `az.use-emulator` points at.
const AZURITE: &str = "http://127.0.0.1:10000";

fn flag(options: &BTreeMap<String, String>, key: &str) -> bool {
    options
        .get(key)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Whether an option's value names a local file or directory (or an object-store URL).
fn is_path_option(key: &str) -> bool {
    key == "path"
        || key.ends_with(".path")
        || key.ends_with("-path")
        || key.ends_with(".location")
        || key.ends_with(".keytab")
        || key == "gs.application-credentials"
}

/// librdkafka's `ssl.ca.location = probe` (the system's CA paths) names no file.
fn is_probe(key: &str, value: &str) -> bool {
    key.ends_with("ssl.ca.location") && value == "probe"
}

/// `s3://bucket` or `gs://bucket` of an object-store URL (`s3a` counts as `s3`), the
/// form buckets are compared in.
fn bucket_of(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("invalid URL: {e}"))?;
    let scheme = match url.scheme() {
        "s3" | "s3a" => "s3",
        "gs" => "gs",
        other => return Err(format!("buckets are s3:// or gs://, not {other}://")),
    };
    match url.host_str() {
        Some(b) if !b.is_empty() => Ok(format!("{scheme}://{b}")),
        _ => Err("the URL names no bucket".to_string()),
    }
}

/// `scheme://host[:port]` of an http(s) URL, the form endpoints are compared in.
fn origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("an endpoint is an http:// or https:// URL with a host".to_string());
    }
    Ok(url.origin().ascii_serialization())
}

/// `path` made absolute against `base`, `..` and `.` removed lexically, then the
/// longest prefix that exists canonicalized (symlinks resolved), the rest appended.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    let mut lexical = PathBuf::new();
    for c in base.join(path).components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut existing = lexical.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if let Ok(mut c) = existing.canonicalize() {
            c.extend(rest.iter().rev());
            return c;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

/// The connector registry with the sandbox's checks before each table's own
/// validation; without a sandbox, the registry alone.
pub struct SandboxedValidator<'a> {
    /// The connectors.
    pub registry: &'a Registry,
    /// The sandbox, when the master has one.
    pub sandbox: Option<&'a Sandbox>,
}

impl ConnectorValidator for SandboxedValidator<'_> {
    fn validate(
        &self,
        connector: &str,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities, String> {
        // The sandbox first: what a table may reach is judged before the connector
        // looks at it (and its message points at the option).
        if let Some(s) = self.sandbox {
            s.check(options)?;
        }
        self.registry.validate(connector, options, schema)
    }

    fn can_overwrite(&self, connector: &str) -> bool {
        self.registry.can_overwrite(connector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        sandbox: Sandbox,
    }

    /// A root `<tmp>/root` holding the data dir `<tmp>/root/data`, and `<tmp>/outside`.
    fn fixture(endpoints: &[&str], ambient: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/data")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let root = dir.path().join("root").canonicalize().unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let sandbox = Sandbox::new(
            std::slice::from_ref(&root),
            &root.join("data"),
            &s(endpoints),
            &s(ambient),
        )
        .unwrap();
        Fixture {
            _dir: dir,
            root,
            sandbox,
        }
    }

    fn path_err(f: &Fixture, p: &str) -> Option<String> {
        f.sandbox.check(&opts(&[("path", p)])).err()
    }

    #[test]
    fn paths_resolve_inside_the_roots_only() {
        let f = fixture(&[], &[]);
        let r = f.root.display().to_string();
        assert_eq!(path_err(&f, &format!("{r}/out/new/dir")), None);
        assert_eq!(path_err(&f, &format!("file://{r}/in.csv")), None);
        let e = path_err(&f, "/etc/passwd").unwrap();
        assert!(e.contains("option 'path'") && e.contains("outside"), "{e}");
        assert!(path_err(&f, &format!("{r}/../outside/x")).is_some());
        assert!(path_err(&f, &format!("file://{r}/../outside")).is_some());
        assert!(path_err(&f, "relative/not/under/root").is_some());
        let e = path_err(&f, &format!("{r}/data/secret.key")).unwrap();
        assert!(e.contains("data directory"), "{e}");
        // A directory above the data directory would list it.
        assert!(path_err(&f, &r).unwrap().contains("data directory"));
        assert!(path_err(&f, &format!("{r}/x/../data/instances")).is_some());
    }

    #[test]
    fn a_symlink_out_of_a_root_is_followed() {
        let f = fixture(&[], &[]);
        let outside = f.root.parent().unwrap().join("outside");
        std::os::unix::fs::symlink(&outside, f.root.join("link")).unwrap();
        std::os::unix::fs::symlink(f.root.join("data"), f.root.join("d")).unwrap();
        let r = f.root.display();
        assert!(path_err(&f, &format!("{r}/link/new-file")).is_some());
        assert!(path_err(&f, &format!("{r}/d/secret.key"))
            .unwrap()
            .contains("data directory"));
    }

    #[test]
    fn other_path_options_and_code_loading_settings() {
        let f = fixture(&[], &[]);
        let e = f
            .sandbox
            .check(&opts(&[("dead-letter.path", "/tmp/../etc")]))
            .unwrap_err();
        assert!(e.contains("'dead-letter.path'"), "{e}");
        let e = f
            .sandbox
            .check(&opts(&[("properties.ssl.key.location", "/etc/shadow")]))
            .unwrap_err();
        assert!(e.contains("'properties.ssl.key.location'"), "{e}");
        assert!(f
            .sandbox
            .check(&opts(&[("properties.ssl.ca.location", "probe")]))
            .is_ok());
        let e = f
            .sandbox
            .check(&opts(&[("properties.plugin.library.paths", "x")]))
            .unwrap_err();
        assert!(e.contains("loads code"), "{e}");
    }

    #[test]
    fn endpoints_and_ambient_credentials_need_the_operator() {
        let f = fixture(&["http://127.0.0.1:9000/"], &["http://127.0.0.1:9000"]);
        let s3 = |extra: &[(&str, &str)]| {
            let mut o = opts(&[("path", "s3://bucket/x")]);
            o.extend(opts(extra));
            f.sandbox.check(&o)
        };
        assert!(s3(&[("s3.access-key-id", "a"), ("s3.secret-access-key", "b")]).is_ok());
        let e = s3(&[("s3.endpoint", "http://evil.example:80")]).unwrap_err();
        assert!(
            e.contains("'s3.endpoint'") && e.contains("--allow-endpoint"),
            "{e}"
        );
        assert!(s3(&[("s3.endpoint", "http://127.0.0.1:9000")]).is_ok());
        assert!(s3(&[
            ("s3.endpoint", "http://127.0.0.1:9000"),
            ("s3.auth", "ambient")
        ])
        .is_ok());
        let e = s3(&[("s3.auth", "ambient")]).unwrap_err();
        assert!(e.contains("'s3.auth'") && e.contains("aws"), "{e}");
        let gs = f.sandbox.check(&opts(&[("path", "gs://b/x")])).unwrap_err();
        assert!(gs.contains("gcs"), "{gs}");
        assert!(f
            .sandbox
            .check(&opts(&[
                ("path", "gs://b/x"),
                ("gs.service-account-key", "{}")
            ]))
            .is_ok());
        assert!(f
            .sandbox
            .check(&opts(&[("az.use-emulator", "true")]))
            .is_err());
        let open = fixture(&[], &["aws", "gcs"]);
        assert!(open
            .sandbox
            .check(&opts(&[("path", "s3://b/x"), ("s3.auth", "ambient")]))
            .is_ok());
    }

    #[test]
    fn with_buckets_listed_only_those_buckets_are_allowed() {
        let f = fixture(&[], &[]);
        let key = [("s3.access-key-id", "a"), ("s3.secret-access-key", "b")];
        let at = |s: &Sandbox, path: &str| {
            let mut o = opts(&[("path", path), ("gs.service-account-key", "{}")]);
            o.extend(opts(&key));
            s.check(&o)
        };
        // None listed: any bucket (today's behaviour).
        assert!(at(&f.sandbox, "s3://anything/x").is_ok());
        let s = f
            .sandbox
            .clone()
            .with_buckets(&["s3://lake".into(), "gs://exports/".into()])
            .unwrap();
        assert!(at(&s, "s3://lake/t/part-0.parquet").is_ok());
        assert!(at(&s, "s3a://lake/t").is_ok());
        assert!(at(&s, "gs://exports/x").is_ok());
        let e = at(&s, "s3://other/x").unwrap_err();
        assert!(
            e.contains("'path'") && e.contains("s3://other") && e.contains("--allow-bucket"),
            "{e}"
        );
        // The bucket, not the scheme or a prefix, is what is compared.
        assert!(at(&s, "gs://lake/x").is_err());
        assert!(at(&s, "s3://lake-other/x").is_err());
        let e = s
            .check(&opts(&[("dead-letter.path", "s3://other/dlq")]))
            .unwrap_err();
        assert!(e.contains("'dead-letter.path'"), "{e}");
        for bad in ["lake", "http://lake", "s3://"] {
            assert!(
                f.sandbox.clone().with_buckets(&[bad.into()]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_flags_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        assert!(Sandbox::new(&[d.join("missing")], &d, &[], &[]).is_err());
        assert!(Sandbox::new(std::slice::from_ref(&d), &d, &["not a url".into()], &[]).is_err());
        assert!(Sandbox::new(std::slice::from_ref(&d), &d, &[], &["ftp://x".into()]).is_err());
    }
}
