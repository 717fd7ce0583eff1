use std::{fmt, num::NonZeroU32, time::Duration};

use crate::parse_duration;

/// A call budget: at most `calls` calls per `per`, refilled continuously (a token bucket).
///
/// Written `CALLS/PERIOD`, e.g. `100/1m`, `10/s` or `5/250ms`.
///
/// ```
/// let limit: xcore_manifest::RateLimit = "100/1m".parse().unwrap();
/// assert_eq!(limit.calls().get(), 100);
/// assert_eq!(limit.per().as_secs(), 60);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    calls: NonZeroU32,
    per: Duration,
}

impl RateLimit {
    /// A budget of `calls` calls per `per`. Returns `None` if `per` is zero.
    pub fn new(calls: NonZeroU32, per: Duration) -> Option<Self> {
        (!per.is_zero()).then_some(Self { calls, per })
    }

    /// How many calls the budget admits per period (also the burst size).
    pub fn calls(&self) -> NonZeroU32 {
        self.calls
    }

    /// The period.
    pub fn per(&self) -> Duration {
        self.per
    }
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = "write CALLS/PERIOD, e.g. `100/1m` or `10/s`";
        let (calls, per) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid rate limit `{s}`: no `/`; {hint}"))?;
        let calls: NonZeroU32 = calls.trim().parse().map_err(|_| {
            format!("invalid rate limit `{s}`: `{calls}` is not a positive whole number; {hint}")
        })?;
        let per = per.trim();
        // `10/s` reads as "ten per second": a unit alone means one of it.
        let per = if per.bytes().all(|b| b.is_ascii_alphabetic()) {
            parse_duration(&format!("1{per}"))
        } else {
            parse_duration(per)
        }
        .map_err(|e| format!("invalid rate limit `{s}`: {e}"))?;
        Self::new(calls, per).ok_or_else(|| format!("invalid rate limit `{s}`: the period is zero"))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}ms", self.calls, self.per.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let r: RateLimit = "10/s".parse().unwrap();
        assert_eq!((r.calls().get(), r.per()), (10, Duration::from_secs(1)));
        let r: RateLimit = "5 / 250ms".parse().unwrap();
        assert_eq!((r.calls().get(), r.per()), (5, Duration::from_millis(250)));
        for bad in ["", "10", "0/s", "x/s", "10/", "10/0s", "10/parsec"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }
}
