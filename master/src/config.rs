//! The command-line clients' profile: `~/.config/sluice/config.toml` (or the file
//! `SLUICE_CONFIG` names). Where a client command finds its master: `--server`, then
//! `SLUICE_SERVER`, then the file's `server`, then `http://127.0.0.1:8080`.
//!
//! ```toml
//! server = "http://sluice.internal:8080"
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The master a client talks to when nothing else says.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The file's contents. Unknown keys are refused, so a typo does not go unnoticed.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The master's base URL.
    pub server: Option<String>,
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
    let from_file = match config_path() {
        Some(p) => load(&p)?.server,
        None => None,
    };
    Ok(from_file.unwrap_or_else(|| DEFAULT_SERVER.to_string()))
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
    }
}
