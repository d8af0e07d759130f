//! Who may call the master's REST API, and the record of what they did.
//!
//! ```text
//! request ─▶ api::guard (route_layer) ─▶ Security::authenticate(bearer) ─▶ Principal{name, role}
//!                │  role ≥ the route's declared role?  (else 401 / 403)
//!                ▼
//!             handler ─▶ response ─▶ AuditLog::record (mutations and denials, flushed) ─▶ client
//! ```
//!
//! Roles are ordered: `viewer` (read) < `editor` (jobs, tables, workflows) < `admin`
//! (tokens, audit, clusters, everything). Beside them, `agent` is what a `sluice agent`
//! holds: it may register and heartbeat as an agent, which `admin` also may, and nothing
//! else (a host's token cannot read jobs or submit them). API tokens ([`tokens`]) are 256-bit random
//! secrets of which the store keeps only a salted SHA-256; the audit log ([`audit`]) is a
//! sled tree written before the response leaves.

pub mod audit;
pub mod jwt;
pub mod tokens;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use utoipa::ToSchema;

/// What a caller may do. `Viewer` < `Editor` < `Admin`: a higher role may do everything
/// a lower one may. `Agent` stands apart ([`Role::allows`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A `sluice agent`: registers and heartbeats as one; nothing else.
    Agent,
    /// Reads everything but tokens and the audit log.
    Viewer,
    /// Also submits, changes and deletes jobs, tables and workflows.
    Editor,
    /// Also manages tokens, reads the audit log, kills instances: everything.
    Admin,
}

impl Role {
    /// The role's name as the API and the CLI write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Whether a caller of this role may call a route that needs `needed`: an agent's
    /// routes take an agent (or an admin); every other route a role at least `needed`,
    /// which an agent never is.
    pub fn allows(self, needed: Role) -> bool {
        match (self, needed) {
            (Role::Agent, needed) => needed == Role::Agent,
            (role, Role::Agent) => role == Role::Admin,
            (role, needed) => role >= needed,
        }
    }

    /// Parses `agent`, `viewer`, `editor` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller: the token's name (or a JWT's subject) and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: an API token's name.
    pub name: String,
    /// What they may do.
    pub role: Role,
}

/// Why a bearer credential was not accepted (always a 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("this route needs a bearer token (Authorization: Bearer <token>)")]
    Missing,
    /// A header that is not `Bearer <token>` or a token of the wrong shape.
    #[error("the Authorization header is not a well-formed bearer token")]
    Malformed,
    /// No such token, or its secret does not match.
    #[error("the token is not valid")]
    Unknown,
    /// The token was revoked.
    #[error("the token was revoked")]
    Revoked,
    /// The token's expiry has passed.
    #[error("the token has expired")]
    Expired,
    /// A JWT that does not verify (the reason, never the token).
    #[error("{0}")]
    Jwt(String),
}

/// Errors of the token and audit stores.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// Bad input (a name, a role, an expiry).
    #[error("{0}")]
    Invalid(String),
    /// A token with that name is active already.
    #[error("{0}")]
    Conflict(String),
    /// No such token.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("the security store failed: {0}")]
    Store(String),
}

tokio::task_local! {
    /// Who the request being handled acts for (its token's name); job events name them.
    pub static ACTOR: Option<String>;
}

/// The caller of the request this task handles, if any.
pub fn current_actor() -> Option<String> {
    ACTOR.try_with(|a| a.clone()).ok().flatten()
}

/// The authentication and audit state the API's guard holds.
pub struct Security {
    /// API tokens.
    pub tokens: tokens::TokenStore,
    /// The audit log.
    pub audit: audit::AuditLog,
    /// Serve `/metrics` without a token (`--metrics-public`).
    pub metrics_public: bool,
    /// Requests per second each caller may make (none: unlimited).
    pub rate_limit: Option<RateLimit>,
    /// Jobs one owner (the token that submitted them) may hold (0: unlimited).
    pub max_jobs_per_owner: u64,
    /// Verifies JWTs from an identity provider (`--jwks`); none: API tokens only.
    pub jwt: Option<jwt::JwtVerifier>,
    /// How long a request body may take to arrive after its head (`--body-timeout-ms`).
    pub body_timeout: std::time::Duration,
}

/// A per-caller request rate limit (a token bucket per token name).
pub struct RateLimit {
    limiter: governor::DefaultKeyedRateLimiter<String>,
}

impl RateLimit {
    /// `per_second` requests a second on average, bursts of up to `burst`.
    pub fn new(per_second: std::num::NonZeroU32, burst: std::num::NonZeroU32) -> RateLimit {
        let quota = governor::Quota::per_second(per_second).allow_burst(burst);
        RateLimit {
            limiter: governor::RateLimiter::keyed(quota),
        }
    }

    /// `Ok` when `who` may make a request now, else how long to wait.
    pub fn check(&self, who: &str) -> Result<(), std::time::Duration> {
        use governor::clock::Clock;
        let key = who.to_string();
        match self.limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let now = governor::clock::DefaultClock::default().now();
                Err(not_until.wait_time_from(now))
            }
        }
    }
}

impl Security {
    /// Opens the token and audit trees of `db`.
    pub fn open(
        db: &sled::Db,
        retention: audit::Retention,
        anonymous: audit::AnonymousBudget,
    ) -> Result<Security, SecurityError> {
        Ok(Security {
            tokens: tokens::TokenStore::open(db)?,
            audit: audit::AuditLog::open_with(db, retention, anonymous)?,
            metrics_public: false,
            rate_limit: None,
            max_jobs_per_owner: 0,
            jwt: None,
            body_timeout: std::time::Duration::from_secs(30),
        })
    }
}

impl Security {
    /// Checks a bearer credential.
    pub fn authenticate(&self, value: &str) -> Result<Principal, AuthError> {
        match &self.jwt {
            Some(v) if !tokens::looks_like_token(value) => v.verify(value),
            _ => self.tokens.authenticate(value),
        }
    }
}

/// The file under the data directory that holds the bootstrap admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// The bootstrap admin token's file under `data_dir`.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_TOKEN_FILE)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 (milliseconds, UTC) of a Unix-epoch millisecond time.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Parses a duration such as `90d`, `12h`, `30m`, `45s` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, SecurityError> {
    let s = s.trim();
    let bad = || {
        SecurityError::Invalid(format!(
            "invalid duration '{s}': expected a number with a unit s, m, h or d (e.g. 90d)"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(unit_ms).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        for r in [Role::Agent, Role::Viewer, Role::Editor, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    /// An agent's token reaches the agent routes only; of the others, only an admin's
    /// reaches them too.
    #[test]
    fn an_agent_may_call_only_the_agent_routes() {
        use Role::*;
        let all = [Agent, Viewer, Editor, Admin];
        for needed in all {
            let callers: Vec<Role> = all.into_iter().filter(|r| r.allows(needed)).collect();
            let expected = match needed {
                Agent => vec![Agent, Admin],
                Viewer => vec![Viewer, Editor, Admin],
                Editor => vec![Editor, Admin],
                Admin => vec![Admin],
            };
            assert_eq!(callers, expected, "callers of a route that needs {needed}");
        }
    }

    #[test]
    fn durations_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_duration_ms("90d").unwrap(), 90 * 86_400_000);
        assert_eq!(parse_duration_ms("45s").unwrap(), 45_000);
        for bad in ["", "d", "10", "10w", "-5m", "0h", "99999999999999999d"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }
}
