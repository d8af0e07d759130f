//! API tokens: minted by an admin, shown once, kept in the sled tree `auth_tokens` only as
//! a salted SHA-256 of their secret, with expiry, revocation and last use.
//!
//! A token reads `sluice_<id>_<secret>`: `id` (12 hex digits) is the record's key and is
//! not secret; `secret` is 256 random bits (64 hex digits). Because the secret is random
//! and long, a fast hash is enough; the comparison is constant-time.

use super::{now_ms, AuthError, Principal, Role, SecurityError};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "sluice_";
const ID_HEX: usize = 12;
const SECRET_HEX: usize = 64;

/// One token as stored (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRecord {
    /// The record's format (`crate::model::FORMAT_VERSION` when written; records written
    /// before the field existed read as 1). A record of a newer format is refused, not
    /// misread.
    #[serde(default = "first_format")]
    pub format_version: u32,
    /// The public part of the token (the key).
    pub id: String,
    /// A unique name among active tokens: who the audit log says acted.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Random salt (hex).
    pub salt: String,
    /// SHA-256 of salt ‖ secret (hex).
    pub hash: String,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it stops working (Unix ms); none: never.
    pub expires_at: Option<i64>,
    /// When it was revoked (Unix ms).
    pub revoked_at: Option<i64>,
    /// When it last authenticated a request (Unix ms).
    pub last_used_at: Option<i64>,
}

fn first_format() -> u32 {
    1
}

/// A stored token record, refused if a newer master wrote it.
fn decode(bytes: &[u8]) -> Result<TokenRecord, SecurityError> {
    let record: TokenRecord = serde_json::from_slice(bytes).map_err(|e| {
        SecurityError::Store(format!(
            "a token record is unreadable (written by a newer master?): {e}"
        ))
    })?;
    if record.format_version > crate::model::FORMAT_VERSION {
        return Err(SecurityError::Store(format!(
            "a token record has format {} (this master reads up to {}): written by a newer master",
            record.format_version,
            crate::model::FORMAT_VERSION
        )));
    }
    Ok(record)
}

impl TokenRecord {
    /// Not revoked and not expired at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A newly minted token: its record and the value, which exists nowhere else.
pub struct Minted {
    /// The stored record.
    pub record: TokenRecord,
    /// `sluice_<id>_<secret>`: show it once.
    pub value: String,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("record", &self.record)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// The sled tree of tokens.
pub struct TokenStore {
    tree: sled::Tree,
    db: sled::Db,
}

fn store_err(e: impl std::fmt::Display) -> SecurityError {
    SecurityError::Store(e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(n_bytes: usize) -> String {
    let mut buf = vec![0u8; n_bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex(&buf)
}

fn digest(salt: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(secret.as_bytes());
    hex(&h.finalize())
}

/// Token names: 1–64 of `A-Z a-z 0-9 . _ -`, so they print safely everywhere.
pub fn validate_name(name: &str) -> Result<(), SecurityError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SecurityError::Invalid(format!(
            "invalid token name '{}': use 1-64 letters, digits, '.', '_' or '-'",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Splits `sluice_<id>_<secret>` (checking the shape only).
fn split(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    (id.len() == ID_HEX && secret.len() == SECRET_HEX && is_hex(id) && is_hex(secret))
        .then_some((id, secret))
}

/// Whether `value` has the shape of an API token (used to tell a malformed credential
/// from a JWT).
pub fn looks_like_token(value: &str) -> bool {
    value.starts_with(PREFIX)
}

impl TokenStore {
    /// Opens the `auth_tokens` tree.
    pub fn open(db: &sled::Db) -> Result<TokenStore, SecurityError> {
        Ok(TokenStore {
            tree: db.open_tree("auth_tokens").map_err(store_err)?,
            db: db.clone(),
        })
    }

    /// Every token, active or not, by name then creation.
    pub fn list(&self) -> Result<Vec<TokenRecord>, SecurityError> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let (_, v) = kv.map_err(store_err)?;
            out.push(decode(&v)?);
        }
        out.sort_by(|a, b| (&a.name, a.created_at).cmp(&(&b.name, b.created_at)));
        Ok(out)
    }

    /// Mints a token. The name must be free among active tokens.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        expires_in_ms: Option<i64>,
        created_by: &str,
    ) -> Result<Minted, SecurityError> {
        validate_name(name)?;
        let now = now_ms();
        if self
            .list()?
            .iter()
            .any(|t| t.name == name && t.is_active(now))
        {
            return Err(SecurityError::Conflict(format!(
                "an active token named '{name}' exists already (revoke it first)"
            )));
        }
        let id = random_hex(ID_HEX / 2);
        let secret = random_hex(SECRET_HEX / 2);
        let salt = random_hex(16);
        let record = TokenRecord {
            format_version: crate::model::FORMAT_VERSION,
            id: id.clone(),
            name: name.to_string(),
            role,
            hash: digest(&salt, &secret),
            salt,
            created_at: now,
            created_by: created_by.to_string(),
            expires_at: expires_in_ms.map(|d| now.saturating_add(d)),
            revoked_at: None,
            last_used_at: None,
        };
        let bytes = serde_json::to_vec(&record).map_err(store_err)?;
        self.tree
            .compare_and_swap(id.as_bytes(), None::<&[u8]>, Some(bytes))
            .map_err(store_err)?
            .map_err(|_| SecurityError::Store("token id collision".into()))?;
        self.db.flush().map_err(store_err)?;
        Ok(Minted {
            record,
            value: format!("{PREFIX}{id}_{secret}"),
        })
    }

    /// Revokes the active token named `name`.
    pub fn revoke(&self, name: &str) -> Result<TokenRecord, SecurityError> {
        let now = now_ms();
        let mut found = self
            .list()?
            .into_iter()
            .filter(|t| t.name == name && t.revoked_at.is_none())
            .collect::<Vec<_>>();
        let Some(mut t) = found.pop() else {
            return Err(SecurityError::NotFound(format!(
                "no unrevoked token named '{name}'"
            )));
        };
        t.revoked_at = Some(now);
        self.put(&t)?;
        self.db.flush().map_err(store_err)?;
        Ok(t)
    }

    fn put(&self, t: &TokenRecord) -> Result<(), SecurityError> {
        let bytes = serde_json::to_vec(t).map_err(store_err)?;
        self.tree
            .insert(t.id.as_bytes(), bytes)
            .map_err(store_err)?;
        Ok(())
    }

    /// Checks a presented token; records its use (at most once a second).
    pub fn authenticate(&self, value: &str) -> Result<Principal, AuthError> {
        let (id, secret) = split(value).ok_or(AuthError::Malformed)?;
        let record = self
            .tree
            .get(id.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| decode(&v).ok());
        // Hash even when the id is unknown, so both paths cost the same.
        let (salt, expected) = match &record {
            Some(r) => (r.salt.as_str(), r.hash.as_str()),
            None => ("", ""),
        };
        let presented = digest(salt, secret);
        let matches: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
        let Some(mut record) = record.filter(|_| matches) else {
            return Err(AuthError::Unknown);
        };
        let now = now_ms();
        if record.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if record.expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::Expired);
        }
        if record.last_used_at.is_none_or(|t| now - t >= 1000) {
            record.last_used_at = Some(now);
            // Last use is advisory: a failed write does not refuse the request.
            let _ = self.put(&record);
        }
        Ok(Principal {
            name: record.name,
            role: record.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, TokenStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, TokenStore::open(&db).unwrap())
    }

    /// Records carry their format: one written before the field existed reads as
    /// format 1; one of a newer format is refused by name, never misread.
    #[test]
    fn token_records_carry_their_format_and_a_newer_one_is_refused() {
        let (_d, s) = store();
        let m = s.create("ci", Role::Agent, None, "admin").unwrap();
        let stored = s.tree.get(m.record.id.as_bytes()).unwrap().unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(v["format_version"], crate::model::FORMAT_VERSION);
        v.as_object_mut().unwrap().remove("format_version");
        s.tree
            .insert(m.record.id.as_bytes(), serde_json::to_vec(&v).unwrap())
            .unwrap();
        assert_eq!(s.list().unwrap()[0].format_version, 1);
        assert!(s.authenticate(&m.value).is_ok());
        v["format_version"] = serde_json::json!(crate::model::FORMAT_VERSION + 1);
        s.tree
            .insert(m.record.id.as_bytes(), serde_json::to_vec(&v).unwrap())
            .unwrap();
        let e = s.list().unwrap_err().to_string();
        assert!(e.contains("newer master"), "{e}");
        assert_eq!(s.authenticate(&m.value), Err(AuthError::Unknown));
    }

    #[test]
    fn a_minted_token_authenticates_and_only_its_hash_is_stored() {
        let (_d, s) = store();
        let m = s.create("ci", Role::Editor, None, "admin").unwrap();
        assert_eq!(
            s.authenticate(&m.value).unwrap(),
            Principal {
                name: "ci".into(),
                role: Role::Editor
            }
        );
        let (_, secret) = split(&m.value).unwrap();
        for kv in s.tree.iter() {
            let (_, v) = kv.unwrap();
            let text = String::from_utf8_lossy(&v);
            assert!(!text.contains(secret), "the secret is stored: {text}");
        }
        assert!(!format!("{m:?}").contains(secret));
        assert!(s.list().unwrap()[0].last_used_at.is_some());
    }

    #[test]
    fn wrong_secret_unknown_id_malformed_revoked_and_expired_are_refused() {
        let (_d, s) = store();
        let m = s.create("a", Role::Admin, None, "x").unwrap();
        let mut wrong = m.value.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert_eq!(s.authenticate(&wrong), Err(AuthError::Unknown));
        let other_id = format!("sluice_{}_{}", "0".repeat(12), "a".repeat(64));
        assert_eq!(s.authenticate(&other_id), Err(AuthError::Unknown));
        for bad in ["", "sluice_", "Bearer", "sluice_zz_zz", &m.value[..20]] {
            assert_eq!(s.authenticate(bad), Err(AuthError::Malformed), "{bad}");
        }
        s.revoke("a").unwrap();
        assert_eq!(s.authenticate(&m.value), Err(AuthError::Revoked));
        let e = s.create("e", Role::Viewer, Some(1), "x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(s.authenticate(&e.value), Err(AuthError::Expired));
    }

    #[test]
    fn names_are_unique_among_active_tokens_and_validated() {
        let (_d, s) = store();
        s.create("a", Role::Viewer, None, "x").unwrap();
        assert!(matches!(
            s.create("a", Role::Viewer, None, "x"),
            Err(SecurityError::Conflict(_))
        ));
        s.revoke("a").unwrap();
        s.create("a", Role::Viewer, None, "x").unwrap();
        assert_eq!(s.list().unwrap().len(), 2);
        assert!(matches!(
            s.create("a b", Role::Viewer, None, "x"),
            Err(SecurityError::Invalid(_))
        ));
        assert!(matches!(s.revoke("zz"), Err(SecurityError::NotFound(_))));
    }
}
