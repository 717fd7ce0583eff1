//! Cron expressions: normalisation, parsing (croner), and a DST-correct "next instant after".

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};

use super::{TriggerError, zone::offset_at};

/// The longest a daylight-saving shift lasts (the repeated hour of a "fall back" is at most
/// this long in the IANA database).
const MAX_SHIFT: TimeDelta = TimeDelta::hours(3);

/// A parsed cron expression, in its normalised 6- or 7-field form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CronSpec {
    cron: Cron,
    normalised: String,
}

/// `@daily` and friends, as 6-field expressions.
fn nickname(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        _ => return None,
    })
}

impl CronSpec {
    /// Parses `expression`: 5 fields get a leading `0` seconds field; 6 fields are seconds
    /// first; 7 fields are seconds first and a year last.
    pub(crate) fn parse(expression: &str) -> Result<Self, TriggerError> {
        let invalid = |reason: String| TriggerError::InvalidCron {
            expression: expression.chars().take(200).collect(),
            reason,
        };
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let normalised = match fields.len() {
            1 if fields[0].starts_with('@') => nickname(fields[0])
                .ok_or_else(|| invalid(format!("unknown nickname `{}`", fields[0])))?
                .to_owned(),
            5 => format!("0 {}", fields.join(" ")),
            6 | 7 => fields.join(" "),
            n => return Err(invalid(format!("it has {n} fields"))),
        };
        if normalised.contains('@') {
            return Err(invalid(
                "`@` is only allowed in a nickname such as `@daily`".into(),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Optional)
            .build()
            .parse(&normalised)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self { cron, normalised })
    }

    /// The expression in its normalised form (seconds first).
    pub(crate) fn normalised(&self) -> &str {
        &self.normalised
    }

    /// The first instant after `after` whose wall-clock time in `zone` matches.
    ///
    /// Daylight saving, as croner defines it, made monotonic:
    /// - spring forward: a time that does not exist (02:30 in Paris on the last Sunday of
    ///   March) fires, for a fixed-time expression (single second, minute and hour), at the
    ///   first instant after the gap (03:00 local); an expression with wildcards or steps
    ///   skips the missing times;
    /// - fall back: a fixed-time expression fires once, at the first of the two instants with
    ///   that wall-clock time; an expression with wildcards or steps fires at both.
    pub(crate) fn next_after(&self, zone: &Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Croner counts in whole seconds from a wall-clock time.
        let base = after.with_nanosecond(0)?;
        let mut best = self.first_from(zone, base, false, after);
        // If `after` is near a "fall back", the second pass of the repeated hour may hold an
        // earlier match than the one found (croner walks wall-clock time, which goes back).
        if let Some(start) = fall_back_near(zone, after)
            && let Some(c) = self.first_from(zone, start, true, after)
        {
            best = Some(best.map_or(c, |b| b.min(c)));
        }
        if best.is_some() {
            return best;
        }
        // Every candidate croner gave was at or before `after` (wall-clock ambiguity): look on.
        let mut from = base;
        for _ in 0..4 {
            from = from.checked_add_signed(MAX_SHIFT)?;
            if let Some(c) = self.first_from(zone, from, false, after) {
                return Some(c);
            }
        }
        None
    }

    /// The earliest of the next few occurrences from `start` (in `zone`) that is after
    /// `after`.
    fn first_from(
        &self,
        zone: &Tz,
        start: DateTime<Utc>,
        inclusive: bool,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let local = start.with_timezone(zone);
        let iter = if inclusive {
            self.cron.iter_from(local, croner::Direction::Forward)
        } else {
            self.cron.iter_after(local)
        };
        iter.take(4)
            .map(|d| d.with_timezone(&Utc))
            .filter(|d| *d > after)
            .min()
    }
}

/// The instant a "fall back" (the UTC offset decreasing) happens within [`MAX_SHIFT`] of
/// `after`, if any.
fn fall_back_near(zone: &Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let here = offset_at(zone, after);
    let later = after.checked_add_signed(MAX_SHIFT)?;
    let earlier = after.checked_sub_signed(MAX_SHIFT)?;
    let (mut lo, mut hi) = if offset_at(zone, later) < here {
        (after, later)
    } else if offset_at(zone, earlier) > here {
        (earlier, after)
    } else {
        return None;
    };
    let before = offset_at(zone, lo);
    // Bisect to the first second with the new offset.
    while hi - lo > TimeDelta::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if offset_at(zone, mid) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi.with_nanosecond(0).unwrap_or(hi))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            CronSpec::parse("5 4 * * *").unwrap().normalised(),
            "0 5 4 * * *"
        );
        assert_eq!(
            CronSpec::parse("  1  5 4 * * * ").unwrap().normalised(),
            "1 5 4 * * *"
        );
        assert_eq!(
            CronSpec::parse("@HOURLY").unwrap().normalised(),
            "0 0 * * * *"
        );
        assert!(CronSpec::parse("0 @daily * * *").is_err());
    }

    #[test]
    fn the_fall_back_instant_is_found_from_either_side() {
        let paris = Tz::Europe__Paris;
        // 2026-10-25 01:00 UTC: 03:00 CEST becomes 02:00 CET.
        let change = utc(2026, 10, 25, 1, 0, 0);
        assert_eq!(
            fall_back_near(&paris, utc(2026, 10, 24, 23, 30, 0)),
            Some(change)
        );
        assert_eq!(
            fall_back_near(&paris, utc(2026, 10, 25, 2, 59, 0)),
            Some(change)
        );
        assert_eq!(fall_back_near(&paris, utc(2026, 10, 25, 6, 0, 0)), None);
        // Spring forward is not a fall back.
        assert_eq!(fall_back_near(&paris, utc(2026, 3, 29, 0, 30, 0)), None);
        assert_eq!(fall_back_near(&Tz::UTC, change), None);
    }
}
