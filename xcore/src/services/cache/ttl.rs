//! [`Ttl`], how long a written entry lives, and [`KeyTtl`], how long a stored one has left.

use std::time::Duration;

use super::CacheError;

/// The longest TTL accepted: 100 years. Longer is almost surely a bug (`Duration::MAX` meant as
/// "forever"); write [`Ttl::Never`] for that.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long an entry written by `set`, `mset` or `get_or_set` lives.
///
/// - `Default`: the service's default, `services.cache.ttl` seconds (300 unless configured).
/// - `Never`: no expiry (the entry still goes when it is deleted, or evicted from a memory
///   cache that is full).
/// - `After(d)`: `d`, rounded **up** to a whole millisecond (Redis counts milliseconds).
///
/// **A zero duration is rejected** with [`CacheError::InvalidTtl`]: an entry that expires as
/// it is written is almost always a bug (a TTL computed from a date in the past, say), and the
/// Python framework xcore replaces read `0` as "never", which silently kept such entries
/// forever. Write `Never` for no expiry, and skip the write for an already-expired value.
/// Durations over [`MAX_TTL`] are rejected too.
///
/// ```
/// use std::time::Duration;
/// use xcore::services::cache::Ttl;
///
/// let default = Duration::from_secs(300);
/// assert_eq!(Ttl::Default.resolve(default).unwrap(), Some(default));
/// assert_eq!(Ttl::Never.resolve(default).unwrap(), None);
/// assert_eq!(
///     Ttl::After(Duration::from_micros(1_500)).resolve(default).unwrap(),
///     Some(Duration::from_millis(2)),
/// );
/// assert!(Ttl::After(Duration::ZERO).resolve(default).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ttl {
    /// The service's default TTL (`services.cache.ttl` seconds).
    #[default]
    Default,
    /// No expiry.
    Never,
    /// This long, rounded up to a whole millisecond; zero is rejected.
    After(Duration),
}

impl From<Duration> for Ttl {
    fn from(d: Duration) -> Self {
        Ttl::After(d)
    }
}

impl Ttl {
    /// The expiry this TTL stands for, given the service's default: `None` is no expiry.
    ///
    /// Fails with [`CacheError::InvalidTtl`] for a zero duration or one over [`MAX_TTL`].
    pub fn resolve(self, default: Duration) -> Result<Option<Duration>, CacheError> {
        match self {
            Ttl::Never => Ok(None),
            Ttl::Default => Ok(Some(default)),
            Ttl::After(d) if d.is_zero() => Err(CacheError::InvalidTtl {
                reason: "`Ttl::After(Duration::ZERO)` would expire the entry as it is written; \
                         use `Ttl::Never` for no expiry, or skip the write"
                    .into(),
            }),
            Ttl::After(d) if d > MAX_TTL => Err(CacheError::InvalidTtl {
                reason: format!(
                    "{d:?} is longer than the 100 years allowed; use `Ttl::Never` for no expiry"
                ),
            }),
            Ttl::After(d) => Ok(Some(round_up_to_millis(d))),
        }
    }
}

fn round_up_to_millis(d: Duration) -> Duration {
    let millis = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// Whole milliseconds of a resolved TTL, as Redis takes them.
#[cfg(feature = "redis")]
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// How long a stored entry has left ([`Cache::ttl`](super::Cache::ttl)).
///
/// ```
/// use std::time::Duration;
/// use xcore::services::cache::KeyTtl;
///
/// let ttl = KeyTtl::Expires(Duration::from_secs(5));
/// assert_eq!(ttl.remaining(), Some(Duration::from_secs(5)));
/// assert!(ttl.exists());
/// assert!(!KeyTtl::Missing.exists());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyTtl {
    /// No such entry (or it has expired).
    Missing,
    /// The entry never expires.
    Persistent,
    /// The entry expires after this long (millisecond precision).
    Expires(Duration),
}

impl KeyTtl {
    /// Whether the entry exists.
    pub fn exists(&self) -> bool {
        !matches!(self, KeyTtl::Missing)
    }

    /// The time left, for an entry that expires.
    pub fn remaining(&self) -> Option<Duration> {
        match self {
            KeyTtl::Expires(d) => Some(*d),
            _ => None,
        }
    }

    #[cfg(any(test, feature = "redis"))]
    /// From a Redis `PTTL` reply: `-2` missing, `-1` persistent, else milliseconds left.
    pub(crate) fn from_pttl(pttl: i64) -> Self {
        match pttl {
            -1 => KeyTtl::Persistent,
            ms if ms >= 0 => KeyTtl::Expires(Duration::from_millis(ms.unsigned_abs())),
            _ => KeyTtl::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        let def = Duration::from_secs(7);
        assert_eq!(Ttl::Default.resolve(def), Ok(Some(def)));
        assert_eq!(Ttl::Never.resolve(def), Ok(None));
        assert_eq!(
            Ttl::After(Duration::from_nanos(1)).resolve(def),
            Ok(Some(Duration::from_millis(1)))
        );
        assert_eq!(
            Ttl::After(Duration::from_millis(250)).resolve(def),
            Ok(Some(Duration::from_millis(250)))
        );
        assert!(matches!(
            Ttl::After(Duration::ZERO).resolve(def),
            Err(CacheError::InvalidTtl { .. })
        ));
        assert!(matches!(
            Ttl::After(Duration::MAX).resolve(def),
            Err(CacheError::InvalidTtl { .. })
        ));
        assert_eq!(Ttl::After(MAX_TTL).resolve(def), Ok(Some(MAX_TTL)));
        assert_eq!(
            Ttl::from(Duration::from_secs(1)),
            Ttl::After(Duration::from_secs(1))
        );
    }

    #[test]
    fn pttl() {
        assert_eq!(KeyTtl::from_pttl(-2), KeyTtl::Missing);
        assert_eq!(KeyTtl::from_pttl(-1), KeyTtl::Persistent);
        assert_eq!(KeyTtl::from_pttl(0), KeyTtl::Expires(Duration::ZERO));
        assert_eq!(
            KeyTtl::from_pttl(1500),
            KeyTtl::Expires(Duration::from_millis(1500))
        );
        #[cfg(feature = "redis")]
        assert_eq!(millis(Duration::from_micros(10)), 1);
    }
}
