//! The audit log: one entry per mutation and per denied request, in the sled tree
//! `audit` keyed by a big-endian sequence number, flushed before the response is sent.
//! Entries name who acted, when, the route, the target, the status and the request id —
//! never a credential or a request body. Retention keeps at most `max_entries` entries
//! and none older than `max_age_ms`.

use super::{now_ms, SecurityError};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use utoipa::{IntoParams, ToSchema};

/// How a request ended, as the audit log files it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// 2xx or 3xx.
    Ok,
    /// Refused before the handler: 401, 403 or 429.
    Denied,
    /// The handler refused or failed: any other 4xx or 5xx.
    Failed,
}

impl Outcome {
    /// The outcome of a response status.
    pub fn of(status: u16) -> Outcome {
        match status {
            401 | 403 | 429 => Outcome::Denied,
            s if s >= 400 => Outcome::Failed,
            _ => Outcome::Ok,
        }
    }
}

/// One audit entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct AuditEntry {
    /// Position in the log (increasing).
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Unix milliseconds of `at`.
    pub at_ms: i64,
    /// The token's name; `null`: no valid credential.
    pub who: Option<String>,
    /// The caller's role, when authenticated.
    pub role: Option<String>,
    /// The HTTP method.
    #[schema(example = "POST")]
    pub method: String,
    /// The route (a template, e.g. `/api/v1/jobs/{name}`).
    #[schema(example = "/api/v1/jobs/{name}")]
    pub route: String,
    /// The resource acted on (the path's parameters, `/`-joined; for a create, the name
    /// the response carries), when known.
    pub target: Option<String>,
    /// The HTTP status of the response.
    pub status: u16,
    /// `ok`, `denied` or `failed`.
    pub outcome: Outcome,
    /// The request's id (also its `x-request-id` response header).
    pub request_id: String,
}

/// Retention of the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Keep at most this many entries.
    pub max_entries: u64,
    /// Drop entries older than this (ms).
    pub max_age_ms: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_entries: 100_000,
            max_age_ms: 90 * 86_400_000,
        }
    }
}

/// Filters of `GET /api/v1/audit` and `sluice audit`.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries of this caller (token name); `-` for unauthenticated requests.
    pub who: Option<String>,
    /// Only entries about this target.
    pub target: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339).
    pub until: Option<String>,
    /// Only entries with this outcome.
    pub outcome: Option<Outcome>,
    /// At most this many entries, newest first (default 100, at most 10000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u64>,
}

/// The audit tree.
pub struct AuditLog {
    tree: sled::Tree,
    db: sled::Db,
    next: AtomicU64,
    count: AtomicU64,
    retention: Retention,
    prune: Mutex<()>,
}

fn store_err(e: impl std::fmt::Display) -> SecurityError {
    SecurityError::Store(e.to_string())
}

fn parse_time(s: &str, what: &str) -> Result<i64, SecurityError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| SecurityError::Invalid(format!("invalid {what} '{s}': {e} (use RFC 3339)")))
}

impl AuditLog {
    /// Opens the `audit` tree.
    pub fn open(db: &sled::Db, retention: Retention) -> Result<AuditLog, SecurityError> {
        let tree = db.open_tree("audit").map_err(store_err)?;
        let next = match tree.last().map_err(store_err)? {
            Some((k, _)) => u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])) + 1,
            None => 1,
        };
        let count = tree.len() as u64;
        Ok(AuditLog {
            tree,
            db: db.clone(),
            next: AtomicU64::new(next),
            count: AtomicU64::new(count),
            retention,
            prune: Mutex::new(()),
        })
    }

    /// Appends an entry (its `seq` and time are assigned here) and flushes the store.
    pub fn record(&self, mut entry: AuditEntry) -> Result<AuditEntry, SecurityError> {
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let now = now_ms();
        entry.seq = seq;
        entry.at_ms = now;
        entry.at = super::rfc3339(now);
        let bytes = serde_json::to_vec(&entry).map_err(store_err)?;
        self.tree
            .insert(seq.to_be_bytes(), bytes)
            .map_err(store_err)?;
        self.count.fetch_add(1, Ordering::SeqCst);
        self.enforce_retention(now)?;
        self.db.flush().map_err(store_err)?;
        Ok(entry)
    }

    fn enforce_retention(&self, now: i64) -> Result<(), SecurityError> {
        let _guard = self.prune.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let Some((k, v)) = self.tree.first().map_err(store_err)? else {
                return Ok(());
            };
            let too_many = self.count.load(Ordering::SeqCst) > self.retention.max_entries;
            let too_old = serde_json::from_slice::<AuditEntry>(&v)
                .map(|e| now - e.at_ms > self.retention.max_age_ms)
                .unwrap_or(true);
            if !too_many && !too_old {
                return Ok(());
            }
            if self.tree.remove(k).map_err(store_err)?.is_some() {
                self.count.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Entries matching `q`, newest first.
    pub fn query(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, SecurityError> {
        let since = q
            .since
            .as_deref()
            .map(|s| parse_time(s, "since"))
            .transpose()?;
        let until = q
            .until
            .as_deref()
            .map(|s| parse_time(s, "until"))
            .transpose()?;
        let limit = q.limit.unwrap_or(100);
        if !(1..=10_000).contains(&limit) {
            return Err(SecurityError::Invalid(format!(
                "limit must be between 1 and 10000, not {limit}"
            )));
        }
        let mut out = Vec::new();
        for kv in self.tree.iter().rev() {
            let (_, v) = kv.map_err(store_err)?;
            let e: AuditEntry = serde_json::from_slice(&v).map_err(store_err)?;
            let who_ok = match q.who.as_deref() {
                None => true,
                Some("-") => e.who.is_none(),
                Some(w) => e.who.as_deref() == Some(w),
            };
            let keep = who_ok
                && q.target
                    .as_deref()
                    .is_none_or(|t| e.target.as_deref() == Some(t))
                && since.is_none_or(|s| e.at_ms >= s)
                && until.is_none_or(|u| e.at_ms < u)
                && q.outcome.is_none_or(|o| e.outcome == o);
            if keep {
                out.push(e);
                if out.len() as u64 >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(who: Option<&str>, status: u16) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: String::new(),
            at_ms: 0,
            who: who.map(str::to_string),
            role: None,
            method: "POST".into(),
            route: "/api/v1/jobs".into(),
            target: Some("j".into()),
            status,
            outcome: Outcome::of(status),
            request_id: "r".into(),
        }
    }

    #[test]
    fn entries_are_filtered_newest_first_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let log = AuditLog::open(&db, Retention::default()).unwrap();
            log.record(entry(Some("a"), 201)).unwrap();
            log.record(entry(None, 401)).unwrap();
            log.record(entry(Some("b"), 403)).unwrap();
        }
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let log = AuditLog::open(&db, Retention::default()).unwrap();
        let all = log.query(&AuditQuery::default()).unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2, 1]);
        let anon = AuditQuery {
            who: Some("-".into()),
            ..Default::default()
        };
        assert_eq!(log.query(&anon).unwrap()[0].status, 401);
        let denied = AuditQuery {
            outcome: Some(Outcome::Denied),
            ..Default::default()
        };
        assert_eq!(log.query(&denied).unwrap().len(), 2);
        let next = log.record(entry(Some("a"), 204)).unwrap();
        assert_eq!(next.seq, 4);
        let bad = AuditQuery {
            since: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(matches!(log.query(&bad), Err(SecurityError::Invalid(_))));
    }

    #[test]
    fn retention_keeps_the_newest_entries() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let log = AuditLog::open(
            &db,
            Retention {
                max_entries: 2,
                max_age_ms: i64::MAX,
            },
        )
        .unwrap();
        for _ in 0..5 {
            log.record(entry(Some("a"), 200)).unwrap();
        }
        let seqs: Vec<u64> = log
            .query(&AuditQuery::default())
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [5, 4]);
    }
}
