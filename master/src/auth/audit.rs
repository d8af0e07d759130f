//! The audit log: one entry per mutation and per denied request, in the sled tree
//! `audit` keyed by a big-endian sequence number, flushed before the response is sent.
//! Entries name who acted, when, the route, the target, the status and the request id —
//! never a credential or a request body. Retention keeps at most `max_entries` entries
//! and none older than `max_age_ms`.
//!
//! Anonymous requests (no valid credential) cannot make the master sync its disk nor
//! push real entries out: their entries are written without a flush (sled writes them
//! out within half a second), and only as many as the [`AnonymousBudget`] admits (a
//! token bucket). Those beyond it are counted, and the count is written as one summary
//! entry per status (`suppressed: n`, method and route `*`) before the next entry that
//! is written, or when the log is read.

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
    /// Present on a summary entry only: this many anonymous requests that ended with
    /// `status` were not logged one by one (beyond the anonymous audit budget,
    /// `--audit-anonymous-per-min` / `--audit-anonymous-burst`); its method and route
    /// are `*` and its request id is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
}

/// How many entries of anonymous requests the log takes: `burst` at once, refilled at
/// `per_minute`.
#[derive(Debug, Clone, Copy)]
pub struct AnonymousBudget {
    /// Entries per minute on average.
    pub per_minute: std::num::NonZeroU32,
    /// Entries in a burst.
    pub burst: std::num::NonZeroU32,
}

impl Default for AnonymousBudget {
    fn default() -> Self {
        AnonymousBudget {
            per_minute: std::num::NonZeroU32::new(60).unwrap_or(std::num::NonZeroU32::MIN),
            burst: std::num::NonZeroU32::new(1000).unwrap_or(std::num::NonZeroU32::MIN),
        }
    }
}

/// The anonymous budget's state: the bucket and the counts not yet summarized.
struct Anonymous {
    limiter: governor::DefaultDirectRateLimiter,
    /// status → anonymous requests with that status not logged since the last summary.
    suppressed: std::collections::BTreeMap<u16, u64>,
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
    anonymous: Mutex<Anonymous>,
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
    /// Opens the `audit` tree, with the default [`AnonymousBudget`].
    pub fn open(db: &sled::Db, retention: Retention) -> Result<AuditLog, SecurityError> {
        Self::open_with(db, retention, AnonymousBudget::default())
    }

    /// Opens the `audit` tree.
    pub fn open_with(
        db: &sled::Db,
        retention: Retention,
        budget: AnonymousBudget,
    ) -> Result<AuditLog, SecurityError> {
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
            anonymous: Mutex::new(Anonymous {
                limiter: governor::RateLimiter::direct(
                    governor::Quota::per_minute(budget.per_minute).allow_burst(budget.burst),
                ),
                suppressed: Default::default(),
            }),
        })
    }

    /// Appends an entry (its `seq` and time are assigned here) and flushes the store.
    /// An anonymous entry (`who` is none) is written without a flush, and only within
    /// the anonymous budget; beyond it, it is counted for a summary and `None` is
    /// returned.
    pub fn record(&self, entry: AuditEntry) -> Result<Option<AuditEntry>, SecurityError> {
        if entry.who.is_some() {
            self.write_summaries()?;
            let written = self.append(entry)?;
            self.db.flush().map_err(store_err)?;
            return Ok(Some(written));
        }
        let admitted = {
            let mut anon = self.anonymous.lock().unwrap_or_else(|p| p.into_inner());
            let admitted = anon.limiter.check().is_ok();
            if !admitted {
                *anon.suppressed.entry(entry.status).or_default() += 1;
            }
            admitted
        };
        if !admitted {
            return Ok(None);
        }
        self.write_summaries()?;
        self.append(entry).map(Some)
    }

    /// Writes the pending counts of unlogged anonymous requests, one summary entry per
    /// status.
    fn write_summaries(&self) -> Result<(), SecurityError> {
        let pending = {
            let mut anon = self.anonymous.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut anon.suppressed)
        };
        for (status, n) in pending {
            self.append(AuditEntry {
                seq: 0,
                at: String::new(),
                at_ms: 0,
                who: None,
                role: None,
                method: "*".into(),
                route: "*".into(),
                target: None,
                status,
                outcome: Outcome::of(status),
                request_id: String::new(),
                suppressed: Some(n),
            })?;
        }
        Ok(())
    }

    /// Appends an entry without flushing.
    fn append(&self, mut entry: AuditEntry) -> Result<AuditEntry, SecurityError> {
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

    /// Entries matching `q`, newest first (pending summaries are written first).
    pub fn query(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, SecurityError> {
        self.write_summaries()?;
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
            suppressed: None,
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
        let next = log.record(entry(Some("a"), 204)).unwrap().unwrap();
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

    #[test]
    fn anonymous_entries_beyond_the_budget_become_a_counted_summary() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let n = |v: u32| std::num::NonZeroU32::new(v).unwrap();
        let log = AuditLog::open_with(
            &db,
            Retention::default(),
            AnonymousBudget {
                per_minute: n(1),
                burst: n(5),
            },
        )
        .unwrap();
        let written = (0..500)
            .filter(|i| {
                let status = if i % 100 == 99 { 405 } else { 401 };
                log.record(entry(None, status)).unwrap().is_some()
            })
            .count();
        assert_eq!(written, 5);
        // An authenticated entry is never held back; the summaries come before it.
        log.record(entry(Some("a"), 201)).unwrap().unwrap();
        let all = log.query(&AuditQuery::default()).unwrap();
        assert_eq!(all.len(), 5 + 2 + 1, "{all:?}");
        let summaries: Vec<(u16, u64)> = all
            .iter()
            .filter_map(|e| e.suppressed.map(|n| (e.status, n)))
            .collect();
        assert_eq!(summaries, [(405, 5), (401, 490)]);
        let summary = all.iter().find(|e| e.suppressed.is_some()).unwrap();
        assert_eq!(
            (summary.method.as_str(), summary.route.as_str()),
            ("*", "*")
        );
        assert_eq!(summary.who, None);
        // Counts still pending are written when the log is read.
        assert!(log.record(entry(None, 401)).unwrap().is_none());
        let anon = AuditQuery {
            who: Some("-".into()),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(log.query(&anon).unwrap()[0].suppressed, Some(1));
    }
}
