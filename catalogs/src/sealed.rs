//! Secrets at rest: connector option values that are secrets (see
//! [`is_secret_option`](crate::is_secret_option)) are stored sealed — encrypted and
//! authenticated with ChaCha20-Poly1305 under a key only the master's data directory
//! holds — in the master's store, in instance requests and in checkpoints, and opened
//! only in the worker process that uses them. A sealed value reads
//! `sealed:v1:<hex of nonce ‖ ciphertext>`; a value without the prefix is plain.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::collections::BTreeMap;

/// The prefix of a sealed value.
pub const SEALED_PREFIX: &str = "sealed:v1:";

/// Why a value could not be opened (the value itself is never part of the message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key file is missing, unreadable or not 32 bytes.
    #[error("secret key: {0}")]
    Key(String),
    /// A sealed value is malformed, or was sealed under another key, or was altered.
    #[error("the sealed value of option '{0}' cannot be opened (another data directory's key, or altered)")]
    Open(String),
}

/// A 32-byte sealing key.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(…)")
    }
}

/// True when `value` is sealed.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

impl SealKey {
    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealKey, SealError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SealError::Key(format!("expected 32 bytes, got {}", bytes.len())))?;
        Ok(SealKey(arr))
    }

    /// Reads a key file written by [`SealKey::load_or_create`].
    pub fn load(path: &std::path::Path) -> Result<SealKey, SealError> {
        let bytes = std::fs::read(path)
            .map_err(|e| SealError::Key(format!("cannot read {}: {e}", path.display())))?;
        SealKey::from_bytes(&bytes)
    }

    /// Reads the key file, or creates it (mode 0600) from `random` when absent.
    pub fn load_or_create(
        path: &std::path::Path,
        random: impl FnOnce() -> [u8; 32],
    ) -> Result<SealKey, SealError> {
        if path.exists() {
            return SealKey::load(path);
        }
        let key = random();
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&tmp)
                .map_err(|e| SealError::Key(format!("cannot create {}: {e}", tmp.display())))?;
            f.write_all(&key)
                .and_then(|_| f.sync_all())
                .map_err(|e| SealError::Key(format!("cannot write {}: {e}", tmp.display())))?;
        }
        std::fs::rename(&tmp, path)
            .map_err(|e| SealError::Key(format!("cannot create {}: {e}", path.display())))?;
        Ok(SealKey(key))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Seals `plain` with a fresh `nonce` (12 random bytes; never reuse one).
    pub fn seal(&self, nonce: [u8; 12], plain: &str) -> String {
        let ct = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut out = String::with_capacity(SEALED_PREFIX.len() + 2 * (12 + ct.len()));
        out.push_str(SEALED_PREFIX);
        for b in nonce.iter().chain(ct.iter()) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Opens a sealed value (a plain value is returned as it is). `option` names the
    /// option in the error.
    pub fn open(&self, option: &str, value: &str) -> Result<String, SealError> {
        let Some(hex) = value.strip_prefix(SEALED_PREFIX) else {
            return Ok(value.to_string());
        };
        let err = || SealError::Open(option.to_string());
        if hex.len() % 2 != 0 || hex.len() < 2 * (12 + 16) {
            return Err(err());
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| err())?;
        let (nonce, ct) = bytes.split_at(12);
        let plain = self
            .cipher()
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| err())?;
        String::from_utf8(plain).map_err(|_| err())
    }

    /// Seals every plain, non-empty secret option value of `options`; returns
    /// `(plain, sealed)` for each value it sealed.
    pub fn seal_options(
        &self,
        options: &mut BTreeMap<String, String>,
        mut nonce: impl FnMut() -> [u8; 12],
    ) -> Vec<(String, String)> {
        let mut sealed = Vec::new();
        for (k, v) in options.iter_mut() {
            if crate::is_secret_option(k) && !v.is_empty() && !is_sealed(v) {
                let s = self.seal(nonce(), v);
                sealed.push((std::mem::replace(v, s.clone()), s));
            }
        }
        sealed
    }

    /// Opens every sealed option value of `options` in place.
    pub fn open_options(&self, options: &mut BTreeMap<String, String>) -> Result<(), SealError> {
        for (k, v) in options.iter_mut() {
            if is_sealed(v) {
                *v = self.open(k, v)?;
            }
        }
        Ok(())
    }
}

/// A single-quoted SQL string starting at byte `i` of `sql` (which is a `'`): its
/// value (with `''` unescaped) and the byte just after its closing quote.
fn quoted_at(sql: &str, i: usize) -> Option<(String, usize)> {
    let bytes = sql.as_bytes();
    let mut j = i + 1;
    let mut value = String::new();
    let mut start = j;
    while j < bytes.len() {
        if bytes[j] == b'\'' {
            value.push_str(&sql[start..j]);
            if bytes.get(j + 1) == Some(&b'\'') {
                value.push('\'');
                j += 2;
                start = j;
                continue;
            }
            return Some((value, j + 1));
        }
        j += 1;
    }
    None
}

impl SealKey {
    /// `sql` with the value of every `'secret key' = 'value'` option pair sealed (values
    /// already sealed, and empty ones, are left alone). Comments and other strings are
    /// untouched.
    pub fn seal_sql_options(&self, sql: &str, mut nonce: impl FnMut() -> [u8; 12]) -> String {
        let bytes = sql.as_bytes();
        let mut out = String::with_capacity(sql.len());
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'\'' => {
                    let Some((key, after_key)) = quoted_at(sql, i) else {
                        break;
                    };
                    let mut k = after_key;
                    while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if crate::is_secret_option(&key) && bytes.get(k) == Some(&b'=') {
                        k += 1;
                        while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                            k += 1;
                        }
                        if bytes.get(k) == Some(&b'\'') {
                            if let Some((value, after_value)) = quoted_at(sql, k) {
                                if !value.is_empty() && !is_sealed(&value) {
                                    out.push_str(&sql[copied..k]);
                                    out.push('\'');
                                    out.push_str(&self.seal(nonce(), &value));
                                    out.push('\'');
                                    copied = after_value;
                                }
                                i = after_value;
                                continue;
                            }
                        }
                    }
                    i = after_key;
                }
                _ => i += 1,
            }
        }
        out.push_str(&sql[copied..]);
        out
    }
}

/// `text` with every sealed value replaced by [`REDACTED`](crate::REDACTED).
pub fn redact_sealed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(SEALED_PREFIX) {
        out.push_str(&rest[..pos]);
        out.push_str(crate::REDACTED);
        let after = &rest[pos + SEALED_PREFIX.len()..];
        let end = after
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_key_and_unaltered() {
        let key = SealKey::from_bytes(&[7u8; 32]).unwrap();
        let other = SealKey::from_bytes(&[8u8; 32]).unwrap();
        let s = key.seal([1u8; 12], "CANARY-secret");
        assert!(is_sealed(&s));
        assert!(!s.contains("CANARY"));
        assert_eq!(key.open("k", &s).unwrap(), "CANARY-secret");
        assert_eq!(key.open("k", "plain").unwrap(), "plain");
        assert!(matches!(other.open("k", &s), Err(SealError::Open(_))));
        let mut tampered = s.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(key.open("k", &tampered).is_err());
        assert!(key.open("k", "sealed:v1:zz").is_err());
        // Two seals of one value differ (fresh nonces).
        assert_ne!(key.seal([2u8; 12], "x"), key.seal([3u8; 12], "x"));
    }

    #[test]
    fn only_secret_options_are_sealed_and_they_round_trip() {
        let key = SealKey::from_bytes(&[9u8; 32]).unwrap();
        let mut opts: BTreeMap<String, String> = [
            ("s3.secret-access-key", "S"),
            ("s3.region", "eu"),
            ("properties.sasl.password", "P"),
            ("token", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let original = opts.clone();
        let mut n = 0u8;
        let sealed = key.seal_options(&mut opts, || {
            n += 1;
            [n; 12]
        });
        assert_eq!(sealed.len(), 2);
        assert_eq!(opts["s3.region"], "eu");
        assert_eq!(opts["token"], "");
        assert!(is_sealed(&opts["s3.secret-access-key"]));
        // Sealing again leaves sealed values alone.
        assert!(key.seal_options(&mut opts, || [0; 12]).is_empty());
        key.open_options(&mut opts).unwrap();
        assert_eq!(opts, original);
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("sluice-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        let _ = std::fs::remove_file(&path);
        let a = SealKey::load_or_create(&path, || [5u8; 32]).unwrap();
        let b = SealKey::load_or_create(&path, || [6u8; 32]).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secret_option_values_in_sql_text_are_sealed_and_redacted() {
        let key = SealKey::from_bytes(&[4u8; 32]).unwrap();
        let sql = "-- 'password' = 'not an option'\n\
                   CREATE TABLE t (a INT) WITH ('connector' = 'x', 's3.secret-access-key' = 'CANARY-1',\n\
                   'properties.sasl.password'='it''s CANARY-2', 'path' = 'CANARY-3', 'token' = '');";
        let mut n = 0u8;
        let sealed = key.seal_sql_options(sql, || {
            n += 1;
            [n; 12]
        });
        assert!(!sealed.contains("CANARY-1"), "{sealed}");
        assert!(!sealed.contains("CANARY-2"), "{sealed}");
        assert!(sealed.contains("'path' = 'CANARY-3'"), "{sealed}");
        assert!(sealed.contains("'not an option'"), "{sealed}");
        assert!(sealed.contains("'token' = ''"), "{sealed}");
        assert_eq!(key.seal_sql_options(&sealed, || [0; 12]), sealed);
        let shown = redact_sealed(&sealed);
        assert!(
            shown.contains("'s3.secret-access-key' = '******'"),
            "{shown}"
        );
        assert!(!shown.contains(SEALED_PREFIX));
    }
}
