//! Time zones: IANA names, through `chrono-tz`.

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::TriggerError;

/// The zone named `name` (`UTC`, `Europe/Paris`; case-sensitive, as in the IANA database).
pub(crate) fn parse_zone(name: &str) -> Result<Tz, TriggerError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| TriggerError::UnknownTimezone {
            zone: name.chars().take(80).collect(),
        })
}

/// The UTC offset of `zone` at `at`, in seconds.
pub(crate) fn offset_at(zone: &Tz, at: DateTime<Utc>) -> i32 {
    zone.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_zone("Europe/Paris").unwrap(), Tz::Europe__Paris);
        assert_eq!(parse_zone(" UTC ").unwrap(), Tz::UTC);
        let err = parse_zone("Mars/Olympus_Mons").unwrap_err();
        assert!(err.to_string().contains("`Mars/Olympus_Mons`"), "{err}");
    }
}
