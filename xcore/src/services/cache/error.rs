//! [`CacheError`]: what can go wrong with a cache operation, and what to do about it.

use std::time::Duration;

use crate::{CallError, ErrorCode};

/// Why a cache operation failed.
///
/// Every message says what went wrong and what to do. The error is `Clone` (a single-flight
/// [`get_or_set`](super::Cache::get_or_set) hands the leader's outcome to every waiter) and
/// converts into a [`CallError`] with `?` inside an action:
///
/// | variant | [`ErrorCode`] |
/// |---|---|
/// | `PermissionDenied` | `permission_denied` |
/// | `Timeout` | `timeout` |
/// | `Unavailable`, `Backend` | `unavailable` |
/// | `InvalidNamespace`, `InvalidKey`, `InvalidPattern`, `InvalidTtl`, `NotAnInteger`, `Overflow`, `Factory` | `handler_error` |
/// | `Serialization`, `InvalidOptions` | `internal` |
///
/// ```
/// use xcore::services::cache::CacheError;
/// use xcore::{CallError, ErrorCode};
///
/// let err = CacheError::Timeout { operation: "GET".into(), after: std::time::Duration::from_secs(1) };
/// assert!(err.to_string().contains("command_timeout"));
/// assert_eq!(CallError::from(err).code(), ErrorCode::Timeout);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The plugin's grants do not allow this action on this namespace.
    #[error(
        "plugin `{plugin}` may not {action} `{resource}`: add the grant `{resource}: {action}` to \
         its manifest"
    )]
    PermissionDenied {
        /// The plugin refused.
        plugin: String,
        /// The resource, `cache.<namespace>`.
        resource: String,
        /// The action: `read`, `write` or `delete`.
        action: String,
    },
    /// The namespace is not a grant segment.
    #[error(
        "invalid cache namespace `{namespace}`: {reason}; a namespace is 1 to 64 ASCII letters, \
         digits, `_` and `-` (it is the `<namespace>` of the grant `cache.<namespace>`)"
    )]
    InvalidNamespace {
        /// The namespace (cut to 80 characters).
        namespace: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key is empty, too long or holds a control character.
    #[error(
        "invalid cache key `{key}`: {reason}; a key is 1 to 512 bytes without control characters"
    )]
    InvalidKey {
        /// The key (cut to 80 characters, control characters escaped).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The glob pattern is empty, too long or holds a control character.
    #[error(
        "invalid cache key pattern `{pattern}`: {reason}; a pattern is 1 to 512 bytes without \
         control characters (`*`, `?`, `[...]` and `\\` work as in Redis globs)"
    )]
    InvalidPattern {
        /// The pattern (cut to 80 characters, control characters escaped).
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TTL cannot be used.
    #[error("invalid cache TTL: {reason}")]
    InvalidTtl {
        /// What is wrong with it, and what to use instead.
        reason: String,
    },
    /// A value could not be encoded to JSON, or the stored JSON is not of the type asked for.
    #[error(
        "the value of cache key `{key}` could not be {direction}: {message}; read a key with the \
         type it was written with"
    )]
    Serialization {
        /// The key (without the namespace prefix).
        key: String,
        /// `encoded` or `decoded as <type>`.
        direction: String,
        /// serde's message.
        message: String,
    },
    /// `incr` on a value that is not an integer.
    #[error(
        "cache key `{key}` does not hold an integer, so `incr` cannot add to it; `incr` works on \
         keys that are missing or were written as integers"
    )]
    NotAnInteger {
        /// The key (without the namespace prefix).
        key: String,
    },
    /// `incr` would leave the 64-bit signed range.
    #[error("`incr` on cache key `{key}` would overflow a 64-bit signed integer")]
    Overflow {
        /// The key (without the namespace prefix).
        key: String,
    },
    /// The backend did not answer in time.
    #[error(
        "the cache operation `{operation}` timed out after {after:?}: the Redis server is slow or \
         unreachable; check it, or raise `services.cache.redis.command_timeout` if it is only slow"
    )]
    Timeout {
        /// The operation (a Redis command).
        operation: String,
        /// The limit that was reached.
        after: Duration,
    },
    /// No connection to the backend could be had, or the service is not ready.
    #[error("the cache is unavailable: {message}")]
    Unavailable {
        /// Why, and what to do.
        message: String,
    },
    /// The backend answered with an error.
    #[error("the cache backend failed `{operation}`: {message}")]
    Backend {
        /// The operation (a Redis command).
        operation: String,
        /// The backend's message.
        message: String,
    },
    /// The factory of a `get_or_set` failed; nothing was cached.
    #[error(
        "the factory of `get_or_set` for cache key `{key}` failed (nothing was cached): {message}"
    )]
    Factory {
        /// The key (without the namespace prefix).
        key: String,
        /// The factory's error.
        message: String,
    },
    /// The cache options are unusable.
    #[error("invalid cache options: {message}")]
    InvalidOptions {
        /// What is wrong, naming the `services.cache` key.
        message: String,
    },
}

impl From<CacheError> for CallError {
    fn from(err: CacheError) -> Self {
        let code = match err {
            CacheError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            CacheError::Timeout { .. } => ErrorCode::Timeout,
            CacheError::Unavailable { .. } | CacheError::Backend { .. } => ErrorCode::Unavailable,
            CacheError::Serialization { .. } | CacheError::InvalidOptions { .. } => {
                ErrorCode::Internal
            }
            CacheError::InvalidNamespace { .. }
            | CacheError::InvalidKey { .. }
            | CacheError::InvalidPattern { .. }
            | CacheError::InvalidTtl { .. }
            | CacheError::NotAnInteger { .. }
            | CacheError::Overflow { .. }
            | CacheError::Factory { .. } => ErrorCode::HandlerError,
        };
        CallError::new(code, err.to_string())
    }
}

/// A shortened, printable copy of user input for an error message.
pub(crate) fn shown(input: &str) -> String {
    let mut out: String = input
        .chars()
        .take(80)
        .flat_map(char::escape_debug)
        .collect();
    if input.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_error_codes() {
        let cases = [
            (
                CacheError::PermissionDenied {
                    plugin: "p".into(),
                    resource: "cache.users".into(),
                    action: "read".into(),
                },
                ErrorCode::PermissionDenied,
            ),
            (
                CacheError::Unavailable {
                    message: "down".into(),
                },
                ErrorCode::Unavailable,
            ),
            (
                CacheError::Backend {
                    operation: "GET".into(),
                    message: "WRONGTYPE".into(),
                },
                ErrorCode::Unavailable,
            ),
            (
                CacheError::NotAnInteger { key: "k".into() },
                ErrorCode::HandlerError,
            ),
            (
                CacheError::InvalidTtl {
                    reason: "zero".into(),
                },
                ErrorCode::HandlerError,
            ),
            (
                CacheError::Serialization {
                    key: "k".into(),
                    direction: "encoded".into(),
                    message: "m".into(),
                },
                ErrorCode::Internal,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(CallError::from(err).code(), code);
        }
    }

    #[test]
    fn shown_is_bounded_and_escaped() {
        assert_eq!(shown("a\nb"), "a\\nb");
        let long = "x".repeat(200);
        assert_eq!(shown(&long).chars().count(), 81);
    }
}
