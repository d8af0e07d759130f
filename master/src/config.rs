//! The command-line clients' profile: `~/.config/sluice/config.toml` (or the file
//! `SLUICE_CONFIG` names). Where a client command finds its master: `--server`, then
//! `SLUICE_SERVER`, then the file's `server`, then `http://127.0.0.1:8080`. Which token
//! it presents: `--token`, then `SLUICE_TOKEN`, then the file's `token`, then — for a
//! master on this machine — the admin token `sluice serve` wrote into its data directory
//! (`--data-dir`/`SLUICE_DATA_DIR`, default `./sluice-data`).
//!
//! ```toml
//! server = "http://sluice.internal:8080"
//! token = "sluice_…"
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The master a client talks to when nothing else says.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The file's contents. Unknown keys are refused, so a typo does not go unnoticed.
#[derive(Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The master's base URL.
    pub server: Option<String>,
    /// The API token to present.
    pub token: Option<String>,
    /// A CA certificate (PEM file) to trust for an `https://` server instead of the
    /// public roots.
    pub ca_cert: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

/// Why the profile could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the client config {path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Where the profile lives: `$SLUICE_CONFIG`, else `$XDG_CONFIG_HOME/sluice/config.toml`,
/// else `$HOME/.config/sluice/config.toml`; `None` without a home.
pub fn config_path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var("SLUICE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("sluice").join("config.toml"))
}

/// Reads the profile at `path`; a missing file is an empty profile.
pub fn load(path: &Path) -> Result<ClientConfig, ConfigError> {
    let err = |message: String| ConfigError {
        path: path.display().to_string(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClientConfig::default()),
        Err(e) => return Err(err(e.to_string())),
    };
    toml::from_str(&text).map_err(|e| err(e.message().to_string()))
}

/// The master to talk to: the flag or `SLUICE_SERVER` (`given`), else the profile's,
/// else [`DEFAULT_SERVER`].
pub fn resolve_server(given: Option<&str>) -> Result<String, ConfigError> {
    if let Some(s) = given {
        return Ok(s.to_string());
    }
    Ok(profile()?
        .server
        .unwrap_or_else(|| DEFAULT_SERVER.to_string()))
}

/// The profile, or an empty one without a home.
pub fn profile() -> Result<ClientConfig, ConfigError> {
    match config_path() {
        Some(p) => load(&p),
        None => Ok(ClientConfig::default()),
    }
}

/// The default data directory of `sluice serve`.
pub const DEFAULT_DATA_DIR: &str = "./sluice-data";

/// Whether `server` is a master on this machine (a loopback host).
pub fn is_local(server: &str) -> bool {
    let rest = server.split_once("://").map(|(_, r)| r).unwrap_or(server);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The token to present: `given` (`--token`/`SLUICE_TOKEN`), else the profile's, else
/// for a local master the admin token file in `data_dir` (default
/// [`DEFAULT_DATA_DIR`]); `None`: no token (the master answers 401 where one is needed).
pub fn resolve_token(
    given: Option<&str>,
    profile: &ClientConfig,
    server: &str,
    data_dir: Option<&Path>,
) -> Option<String> {
    if let Some(t) = given.filter(|t| !t.is_empty()) {
        return Some(t.trim().to_string());
    }
    if let Some(t) = &profile.token {
        return Some(t.trim().to_string());
    }
    if !is_local(server) && data_dir.is_none() {
        return None;
    }
    let dir = data_dir.unwrap_or(Path::new(DEFAULT_DATA_DIR));
    let text = std::fs::read_to_string(crate::auth::admin_token_path(dir)).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_empty_and_a_typo_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(load(&path).unwrap(), ClientConfig::default());
        std::fs::write(&path, "server = \"http://h:1\"\n").unwrap();
        assert_eq!(load(&path).unwrap().server.as_deref(), Some("http://h:1"));
        std::fs::write(&path, "sever = \"http://h:1\"\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("config.toml") && e.contains("sever"), "{e}");
        std::fs::write(&path, "token = \"sluice_x\"\n").unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.token.as_deref(), Some("sluice_x"));
        assert!(!format!("{c:?}").contains("sluice_x"));
    }

    #[test]
    fn the_token_comes_from_the_flag_the_profile_or_a_local_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.token"), "sluice_file\n").unwrap();
        let empty = ClientConfig::default();
        let with = ClientConfig {
            token: Some("sluice_profile".into()),
            ..Default::default()
        };
        let local = "http://127.0.0.1:8080";
        let d = Some(dir.path());
        assert_eq!(
            resolve_token(Some("sluice_flag"), &with, local, d).as_deref(),
            Some("sluice_flag")
        );
        assert_eq!(
            resolve_token(None, &with, local, d).as_deref(),
            Some("sluice_profile")
        );
        assert_eq!(
            resolve_token(None, &empty, local, d).as_deref(),
            Some("sluice_file")
        );
        assert_eq!(
            resolve_token(None, &empty, "http://h.example:80", None),
            None
        );
        assert!(is_local("http://localhost:1") && is_local("https://[::1]:8443/x"));
        assert!(!is_local("http://10.0.0.1:8080"));
    }
}
