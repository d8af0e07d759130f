//! When a workflow's ticks fall, and which of them are due: pure functions of the cron
//! expression, its time zone, the last tick scheduled and `now` (injected, never read).
//!
//! Cron expressions are parsed by `croner` (5 fields, 6 with seconds first, 7 with a
//! year last) and read in an IANA zone (`chrono-tz`). Daylight saving time follows
//! Vixie cron: a fixed-time job whose time falls into a spring-forward gap runs right
//! after the gap that day; one whose time repeats on a fall-back day runs once, at the
//! first pass; interval jobs (`*/N`) run at every matching instant of real time.

use super::CatchupPolicy;
use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// Most ticks one call of [`due_ticks`] returns (`all` catches up over several cycles).
pub const MAX_TICKS_PER_CALL: usize = 100;

/// An expression or zone that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression is invalid.
    #[error("invalid cron expression '{expr}': {message}")]
    Cron {
        /// The expression.
        expr: String,
        /// Why.
        message: String,
    },
    /// The time zone is unknown.
    #[error("unknown time zone '{0}': use an IANA name such as 'UTC' or 'Europe/Berlin'")]
    TimeZone(String),
}

/// A parsed schedule: a cron expression in a time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// Parses `cron` and `timezone`. An expression that never fires is an error too.
    pub fn parse(cron: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let tz: Tz = timezone
            .parse()
            .map_err(|_| ScheduleError::TimeZone(timezone.chars().take(80).collect()))?;
        let cron_err = |message: String| ScheduleError::Cron {
            expr: cron.chars().take(120).collect(),
            message,
        };
        if cron.len() > 256 {
            return Err(cron_err("longer than 256 characters".to_string()));
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|e| cron_err(e.to_string()))?;
        let schedule = Schedule { cron: parsed, tz };
        // An expression such as `0 0 30 2 *` (February 30th) parses but never fires.
        let probe = DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default(); // 2024-01-01
        let mut from = probe.timestamp_millis();
        let mut fires = false;
        // Years-specific expressions may lie ahead: look a few years on.
        for _ in 0..8 {
            if schedule.next_after(from).is_some() {
                fires = true;
                break;
            }
            from += 366 * 24 * 3600 * 1000;
        }
        if !fires {
            return Err(cron_err("it never fires".to_string()));
        }
        Ok(schedule)
    }

    /// The time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        self.tz.timestamp_millis_opt(ms).single()
    }

    /// The first tick strictly after `ms` (ms, whole seconds).
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        let from = self.at(ms)?;
        let next = self.cron.find_next_occurrence(&from, false).ok()?;
        let t = next.timestamp() * 1000;
        (t > ms).then_some(t)
    }

    /// The last tick at or before `ms` (ms, whole seconds).
    pub fn latest_at_or_before(&self, ms: i64) -> Option<i64> {
        let from = self.at(ms)?;
        let prev = self.cron.find_previous_occurrence(&from, true).ok()?;
        let t = prev.timestamp() * 1000;
        (t <= ms).then_some(t)
    }

    /// The ticks in `(after_ms, until_ms]`, oldest first, at most `limit`.
    pub fn ticks_between(&self, after_ms: i64, until_ms: i64, limit: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut from = after_ms;
        while out.len() < limit {
            match self.next_after(from) {
                Some(t) if t <= until_ms => {
                    out.push(t);
                    from = t;
                }
                _ => break,
            }
        }
        out
    }
}

/// What [`due_ticks`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DueTicks {
    /// The ticks to create runs for, oldest first.
    pub run: Vec<i64>,
    /// Ticks that fell due but are passed over by the catch-up policy.
    pub passed_over: u64,
    /// The new "last tick scheduled" (`None`: nothing fell due, keep the old one).
    pub advance_to: Option<i64>,
}

/// The ticks due at `now_ms` after `last_tick_ms` (exclusive), under `catchup`:
///
/// * `all`: every tick in `(last, now]`, oldest first (at most [`MAX_TICKS_PER_CALL`];
///   the rest on the next call, since `advance_to` is then the last one returned);
/// * `latest`: only the newest tick in `(last, now]`;
/// * `none`: the newest tick only when it fell due within `grace_ms` of `now`; older
///   ones (missed while the master was down) are passed over.
///
/// A tick is never returned twice as long as the caller stores `advance_to`.
pub fn due_ticks(
    schedule: &Schedule,
    catchup: CatchupPolicy,
    last_tick_ms: i64,
    now_ms: i64,
    grace_ms: i64,
) -> DueTicks {
    if now_ms <= last_tick_ms {
        return DueTicks::default();
    }
    match catchup {
        CatchupPolicy::All => {
            let run = schedule.ticks_between(last_tick_ms, now_ms, MAX_TICKS_PER_CALL);
            DueTicks {
                advance_to: run.last().copied(),
                run,
                passed_over: 0,
            }
        }
        CatchupPolicy::Latest | CatchupPolicy::None => {
            let Some(latest) = schedule.latest_at_or_before(now_ms) else {
                return DueTicks::default();
            };
            if latest <= last_tick_ms {
                return DueTicks::default();
            }
            // How many fell due in all (capped: only for reporting).
            let due = schedule
                .ticks_between(last_tick_ms, now_ms, MAX_TICKS_PER_CALL)
                .len()
                .max(1) as u64;
            let on_time = catchup == CatchupPolicy::Latest || now_ms - latest <= grace_ms;
            DueTicks {
                run: if on_time { vec![latest] } else { vec![] },
                passed_over: due - u64::from(on_time),
                advance_to: Some(latest),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn iso(ms: i64) -> String {
        DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn ticks(s: &Schedule, from: &str, to: &str) -> Vec<String> {
        s.ticks_between(ms(from), ms(to), 1000)
            .into_iter()
            .map(iso)
            .collect()
    }

    #[test]
    fn workflow_schedule_berlin_0230_on_spring_forward_runs_once_after_the_gap() {
        // 2024-03-31: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
        let s = Schedule::parse("0 30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            ticks(&s, "2024-03-29T12:00:00Z", "2024-04-01T12:00:00Z"),
            [
                "2024-03-30T01:30:00Z", // 02:30 CET
                "2024-03-31T01:00:00Z", // 03:00 CEST, the first instant after the gap
                "2024-04-01T00:30:00Z", // 02:30 CEST
            ]
        );
    }

    #[test]
    fn workflow_schedule_berlin_0230_on_fall_back_runs_once() {
        // 2024-10-27: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            ticks(&s, "2024-10-25T12:00:00Z", "2024-10-28T12:00:00Z"),
            [
                "2024-10-26T00:30:00Z", // 02:30 CEST
                "2024-10-27T00:30:00Z", // the first 02:30 (CEST) only
                "2024-10-28T01:30:00Z", // 02:30 CET
            ]
        );
    }

    #[test]
    fn workflow_schedule_interval_jobs_follow_real_time_across_dst() {
        // Every 30 minutes: the fall-back day has 25 hours, the spring-forward day 23.
        let s = Schedule::parse("*/30 * * * *", "Europe/Berlin").unwrap();
        let fall = s.ticks_between(
            ms("2024-10-26T22:00:00Z"), // Berlin midnight (CEST)
            ms("2024-10-27T23:00:00Z"), // next Berlin midnight (CET)
            1000,
        );
        assert_eq!(fall.len(), 50);
        assert!(fall.windows(2).all(|w| w[1] - w[0] == 30 * 60 * 1000));
        let spring = s.ticks_between(ms("2024-03-30T23:00:00Z"), ms("2024-03-31T22:00:00Z"), 1000);
        assert_eq!(spring.len(), 46);
        assert!(spring.windows(2).all(|w| w[1] - w[0] == 30 * 60 * 1000));
    }

    #[test]
    fn workflow_schedule_utc_with_seconds_and_ds_boundaries() {
        let s = Schedule::parse("*/2 * * * * *", "UTC").unwrap();
        assert_eq!(
            ticks(&s, "2024-01-01T00:00:00Z", "2024-01-01T00:00:07Z"),
            [
                "2024-01-01T00:00:02Z",
                "2024-01-01T00:00:04Z",
                "2024-01-01T00:00:06Z"
            ]
        );
        // Sub-second positions: strictly after, at or before.
        assert_eq!(
            s.next_after(ms("2024-01-01T00:00:01.999Z")),
            Some(ms("2024-01-01T00:00:02Z"))
        );
        assert_eq!(
            s.next_after(ms("2024-01-01T00:00:02Z")),
            Some(ms("2024-01-01T00:00:04Z"))
        );
        assert_eq!(
            s.latest_at_or_before(ms("2024-01-01T00:00:03.5Z")),
            Some(ms("2024-01-01T00:00:02Z"))
        );
        assert_eq!(
            s.latest_at_or_before(ms("2024-01-01T00:00:04Z")),
            Some(ms("2024-01-01T00:00:04Z"))
        );
        let daily = Schedule::parse("@daily", "UTC").unwrap();
        assert_eq!(
            daily.next_after(ms("2024-02-28T10:00:00Z")),
            Some(ms("2024-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn workflow_schedule_rejects_bad_expressions_and_zones() {
        assert!(matches!(
            Schedule::parse("61 * * * *", "UTC"),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            Schedule::parse("not cron", "UTC"),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            Schedule::parse("0 0 30 2 *", "UTC"),
            Err(ScheduleError::Cron { .. })
        ));
        assert_eq!(
            Schedule::parse("* * * * *", "Mars/Olympus").unwrap_err(),
            ScheduleError::TimeZone("Mars/Olympus".into())
        );
    }

    #[test]
    fn workflow_catchup_policies_after_a_gap() {
        // Every minute; the master was down from 10:00:30 to 10:05:10.
        let s = Schedule::parse("* * * * *", "UTC").unwrap();
        let last = ms("2024-01-01T10:00:00Z");
        let now = ms("2024-01-01T10:05:10Z");
        let grace = 15_000;
        let all = due_ticks(&s, CatchupPolicy::All, last, now, grace);
        assert_eq!(
            all.run.iter().map(|&t| iso(t)).collect::<Vec<_>>(),
            [
                "2024-01-01T10:01:00Z",
                "2024-01-01T10:02:00Z",
                "2024-01-01T10:03:00Z",
                "2024-01-01T10:04:00Z",
                "2024-01-01T10:05:00Z"
            ]
        );
        assert_eq!(all.advance_to, Some(ms("2024-01-01T10:05:00Z")));
        let latest = due_ticks(&s, CatchupPolicy::Latest, last, now, grace);
        assert_eq!(latest.run, [ms("2024-01-01T10:05:00Z")]);
        assert_eq!(latest.passed_over, 4);
        assert_eq!(latest.advance_to, Some(ms("2024-01-01T10:05:00Z")));
        // `none`: the 10:05 tick is 10 s late, within the grace: it runs, the rest not.
        let none = due_ticks(&s, CatchupPolicy::None, last, now, grace);
        assert_eq!(none.run, [ms("2024-01-01T10:05:00Z")]);
        assert_eq!(none.passed_over, 4);
        // 40 s late: nothing runs, but the ticks are passed over for good.
        let later = ms("2024-01-01T10:05:40Z");
        let none = due_ticks(&s, CatchupPolicy::None, last, later, grace);
        assert_eq!(none.run, Vec::<i64>::new());
        assert_eq!(none.passed_over, 5);
        assert_eq!(none.advance_to, Some(ms("2024-01-01T10:05:00Z")));
        // Nothing new is due right after advancing, whatever the policy.
        for p in [
            CatchupPolicy::All,
            CatchupPolicy::Latest,
            CatchupPolicy::None,
        ] {
            assert_eq!(
                due_ticks(&s, p, ms("2024-01-01T10:05:00Z"), now, grace),
                DueTicks::default()
            );
        }
    }

    #[test]
    fn workflow_catchup_all_is_bounded_per_call_and_resumes() {
        let s = Schedule::parse("* * * * * *", "UTC").unwrap();
        let mut last = ms("2024-01-01T00:00:00Z");
        let now = last + 250_000;
        let mut seen = Vec::new();
        for _ in 0..5 {
            let d = due_ticks(&s, CatchupPolicy::All, last, now, 0);
            assert!(d.run.len() <= MAX_TICKS_PER_CALL);
            seen.extend(d.run.iter().copied());
            if let Some(a) = d.advance_to {
                last = a;
            }
        }
        let expected: Vec<i64> = (1..=250)
            .map(|i| ms("2024-01-01T00:00:00Z") + i * 1000)
            .collect();
        assert_eq!(seen, expected);
    }
}
