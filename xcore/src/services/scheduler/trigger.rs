//! [`Trigger`]: when a job fires, and [`Trigger::next_after`], the one function that plans
//! every firing.

use std::{fmt, time::Duration};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;

use super::{TriggerError, cron::CronSpec, zone::parse_zone};

/// The shortest interval of [`Trigger::every`].
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// When a job fires: a cron expression in a time zone, a fixed interval, or once.
///
/// Every firing is planned by [`next_after`](Self::next_after), a pure function of the
/// trigger and an instant: every instance of a multi-node deployment computes the same
/// instants, and tests check schedules with it without waiting.
///
/// - **Cron** ([`cron`](Self::cron), [`cron_in`](Self::cron_in)), as
///   [croner](https://docs.rs/croner/3) 3 reads it: 5 fields `m h dom mon dow` (normalised by
///   prepending a `0` seconds field), 6 fields with seconds first, or 7 fields with seconds
///   first and a year (1–5000) last; names (`MON`, `JAN`), ranges, lists, steps, `L`, `W`, `#`
///   and `?`; day of week 0–7 with 0 and 7 Sunday; when both day of month and day of week are
///   restricted, either matching is enough (as in Vixie cron); `@hourly`, `@daily`,
///   `@weekly`, `@monthly`, `@yearly`. The wall-clock time is read in a real time zone, so a
///   job at `0 9 * * *` in `Europe/Paris` runs at 09:00 local all year (08:00 UTC in winter,
///   07:00 UTC in summer). Daylight-saving changes: a time that does not exist (02:30 on the
///   spring-forward day) fires at the first instant after the gap (03:00 local) for a
///   fixed-time expression, and is skipped by an expression with wildcards or steps; a time
///   that happens twice (fall back) fires once for a fixed-time expression (at the first of
///   the two) and at both for an expression with wildcards or steps. A cron trigger built
///   without a zone uses the scheduler's (`SchedulerOptions::timezone`) once added.
/// - **Interval** ([`every`](Self::every)): at every multiple of the period since the Unix
///   epoch (so `every(1h)` fires on the hour, UTC, and every instance agrees); at least 1 s.
/// - **Once** ([`at`](Self::at), [`after`](Self::after)).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use xcore::services::scheduler::Trigger;
///
/// let nine = Trigger::cron_in("0 9 * * *", "Europe/Paris").unwrap();
/// assert_eq!(nine.expression(), Some("0 0 9 * * *"));
/// // 28 March 2026 is a winter day in Paris (UTC+1), 29 March a summer one (UTC+2).
/// let friday = Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap();
/// let saturday = nine.next_after(friday).unwrap();
/// assert_eq!(saturday, Utc.with_ymd_and_hms(2026, 3, 28, 8, 0, 0).unwrap());
/// assert_eq!(nine.next_after(saturday), Some(Utc.with_ymd_and_hms(2026, 3, 29, 7, 0, 0).unwrap()));
///
/// assert!(Trigger::cron("61 * * * *").is_err());
/// assert!(Trigger::cron_in("* * * * *", "Europe/Pariss").is_err());
/// ```
#[derive(Clone, PartialEq)]
pub struct Trigger {
    kind: Kind,
}

#[derive(Clone, PartialEq)]
enum Kind {
    Cron {
        spec: Box<CronSpec>,
        zone: Option<Tz>,
    },
    Every {
        period_ms: i64,
    },
    At(DateTime<Utc>),
}

impl Trigger {
    /// A cron trigger in the scheduler's time zone (UTC until added to a scheduler).
    pub fn cron(expression: &str) -> Result<Self, TriggerError> {
        Ok(Self {
            kind: Kind::Cron {
                spec: Box::new(CronSpec::parse(expression)?),
                zone: None,
            },
        })
    }

    /// A cron trigger in the IANA time zone `zone` (`Europe/Paris`).
    pub fn cron_in(expression: &str, zone: &str) -> Result<Self, TriggerError> {
        let zone = parse_zone(zone)?;
        Ok(Self {
            kind: Kind::Cron {
                spec: Box::new(CronSpec::parse(expression)?),
                zone: Some(zone),
            },
        })
    }

    /// Every `period` (at least 1 s, counted in milliseconds), at the multiples of `period`
    /// since the Unix epoch.
    pub fn every(period: Duration) -> Result<Self, TriggerError> {
        let invalid = |reason| TriggerError::InvalidInterval { period, reason };
        if period < MIN_INTERVAL {
            return Err(invalid("an interval is at least 1s"));
        }
        let period_ms = i64::try_from(period.as_millis()).map_err(|_| invalid("it is too long"))?;
        Ok(Self {
            kind: Kind::Every { period_ms },
        })
    }

    /// Once, at `instant`.
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self {
            kind: Kind::At(instant),
        }
    }

    /// Once, at an RFC 3339 instant (`2026-06-01T08:00:00Z`, `2026-06-01T10:00:00+02:00`).
    pub fn at_rfc3339(instant: &str) -> Result<Self, TriggerError> {
        DateTime::parse_from_rfc3339(instant.trim())
            .map(|at| Self::at(at.with_timezone(&Utc)))
            .map_err(|e| TriggerError::InvalidInstant {
                instant: instant.chars().take(80).collect(),
                reason: e.to_string(),
            })
    }

    /// Once, `delay` from now. (Every instance computes its own "now": with a lock shared
    /// by several instances, give them one instant with [`at`](Self::at).)
    pub fn after(delay: Duration) -> Self {
        let delay = TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX);
        Self::at(
            Utc::now()
                .checked_add_signed(delay)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// The first firing strictly after `after`, or `None` if there is none (a one-shot at or
    /// before `after`, a cron expression no later date matches).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron { spec, zone } => spec.next_after(&zone.unwrap_or(Tz::UTC), after),
            Kind::Every { period_ms } => {
                let k = after
                    .timestamp_millis()
                    .div_euclid(*period_ms)
                    .checked_add(1)?;
                DateTime::from_timestamp_millis(k.checked_mul(*period_ms)?)
            }
            Kind::At(at) => (*at > after).then_some(*at),
        }
    }

    /// The cron expression, normalised (seconds first), if this is a cron trigger.
    pub fn expression(&self) -> Option<&str> {
        match &self.kind {
            Kind::Cron { spec, .. } => Some(spec.normalised()),
            _ => None,
        }
    }

    /// The time zone of a cron trigger, if it names one.
    pub fn timezone(&self) -> Option<&'static str> {
        match &self.kind {
            Kind::Cron {
                zone: Some(zone), ..
            } => Some(zone.name()),
            _ => None,
        }
    }

    /// The period of an interval trigger.
    pub fn period(&self) -> Option<Duration> {
        match &self.kind {
            Kind::Every { period_ms } => u64::try_from(*period_ms).ok().map(Duration::from_millis),
            _ => None,
        }
    }

    /// The instant of a one-shot trigger.
    pub fn instant(&self) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::At(at) => Some(*at),
            _ => None,
        }
    }

    /// Whether `other` fires at the same instants (a cheap check: the same normalised
    /// expression and zone, period, or instant).
    pub(crate) fn same_schedule(&self, other: &Trigger) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Cron { spec: a, zone: za }, Kind::Cron { spec: b, zone: zb }) => {
                za == zb && a.normalised() == b.normalised()
            }
            (Kind::Every { period_ms: a }, Kind::Every { period_ms: b }) => a == b,
            (Kind::At(a), Kind::At(b)) => a == b,
            _ => false,
        }
    }

    /// The same trigger, a cron trigger that names no zone taking `zone`.
    pub(crate) fn with_default_zone(mut self, default: Tz) -> Self {
        if let Kind::Cron {
            zone: zone @ None, ..
        } = &mut self.kind
        {
            *zone = Some(default);
        }
        self
    }
}

/// `cron "0 0 9 * * *" in Europe/Paris`, `every 5s`, `once at 2026-06-01T08:00:00Z`.
impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Cron { spec, zone } => {
                write!(f, "cron \"{}\"", spec.normalised())?;
                match zone {
                    Some(zone) => write!(f, " in {}", zone.name()),
                    None => f.write_str(" in the scheduler's zone"),
                }
            }
            Kind::Every { .. } => write!(f, "every {:?}", self.period().unwrap_or_default()),
            Kind::At(at) => write!(
                f,
                "once at {}",
                at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ),
        }
    }
}

impl fmt::Debug for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Trigger({self})")
    }
}
