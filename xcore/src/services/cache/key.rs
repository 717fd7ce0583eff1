//! Namespaces, keys and patterns: validation, and the `<prefix>:<tenant>:<namespace>:` scope
//! every stored key starts with.

use super::{CacheError, error::shown};
use crate::TenantId;

/// The longest key (and key pattern), in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// The longest namespace.
pub const MAX_NAMESPACE_LEN: usize = 64;

/// Checks a namespace: 1 to 64 ASCII letters, digits, `_` and `-` (a grant segment without
/// wildcards, so that `cache.<namespace>` names it exactly).
pub(crate) fn check_namespace(namespace: &str) -> Result<(), CacheError> {
    let reason = if namespace.is_empty() {
        "it is empty"
    } else if namespace.len() > MAX_NAMESPACE_LEN {
        "it is longer than 64 characters"
    } else if !namespace
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        "it holds a character other than a letter, a digit, `_` and `-`"
    } else {
        return Ok(());
    };
    Err(CacheError::InvalidNamespace {
        namespace: shown(namespace),
        reason,
    })
}

/// Why `text` is not a usable key or pattern, if it is not.
fn defect(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("it is empty")
    } else if text.len() > MAX_KEY_LEN {
        Some("it is longer than 512 bytes")
    } else if has_control(text) {
        Some("it holds a control character")
    } else {
        None
    }
}

fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    text.chars().any(char::is_control)
}

/// Checks a key: 1 to 512 bytes, no control characters.
#[inline]
pub(crate) fn check_key(key: &str) -> Result<(), CacheError> {
    match defect(key) {
        None => Ok(()),
        Some(reason) => Err(CacheError::InvalidKey {
            key: shown(key),
            reason,
        }),
    }
}

/// Checks a glob pattern: the same rules as keys.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), CacheError> {
    match defect(pattern) {
        None => Ok(()),
        Some(reason) => Err(CacheError::InvalidPattern {
            pattern: shown(pattern),
            reason,
        }),
    }
}

/// `<prefix>:<tenant>:<namespace>:`, the start of every key of one namespace and tenant.
pub(crate) fn scope(prefix: &str, tenant: &TenantId, namespace: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + tenant.as_str().len() + namespace.len() + 3);
    s.push_str(prefix);
    s.push(':');
    s.push_str(tenant.as_str());
    s.push(':');
    s.push_str(namespace);
    s.push(':');
    s
}

/// How long a stored key may be and still be built on the stack.
const INLINE: usize = 112;

/// A stored key, `<scope><key>`, built without a heap allocation when it is short (the hot
/// path of `get`).
pub(crate) enum FullKey {
    Inline { buf: [u8; INLINE], len: usize },
    Heap(String),
}

impl FullKey {
    /// `scope` followed by `key`.
    #[inline]
    pub(crate) fn new(scope: &str, key: &str) -> Self {
        let len = scope.len() + key.len();
        if len <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..scope.len()].copy_from_slice(scope.as_bytes());
            buf[scope.len()..len].copy_from_slice(key.as_bytes());
            FullKey::Inline { buf, len }
        } else {
            let mut s = String::with_capacity(len);
            s.push_str(scope);
            s.push_str(key);
            FullKey::Heap(s)
        }
    }
}

impl std::ops::Deref for FullKey {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        match self {
            // Two `str`s end to end are UTF-8: this never falls back.
            FullKey::Inline { buf, len } => std::str::from_utf8(&buf[..*len]).unwrap_or_default(),
            FullKey::Heap(s) => s,
        }
    }
}

/// `text` with the glob metacharacters (`*`, `?`, `[`, `]`, `\`) escaped, so that it matches
/// itself only.
pub(crate) fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for ok in ["sessions", "a", "user-2_x", &"n".repeat(64)] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.b", "a:b", "a*", "é", "a b", &"n".repeat(65)] {
            assert!(
                matches!(
                    check_namespace(bad),
                    Err(CacheError::InvalidNamespace { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_and_patterns() {
        for ok in [
            "k",
            "user:42",
            "with space",
            "ünï",
            "a*b?[c]",
            &"k".repeat(512),
        ] {
            assert!(check_key(ok).is_ok(), "{ok}");
            assert!(check_pattern(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a\nb", "a\u{7f}", "a\u{85}", &"k".repeat(513)] {
            assert!(
                matches!(check_key(bad), Err(CacheError::InvalidKey { .. })),
                "{bad:?}"
            );
            assert!(
                matches!(check_pattern(bad), Err(CacheError::InvalidPattern { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn full_keys() {
        let short = FullKey::new("xcore:default:ns:", "k");
        assert!(matches!(short, FullKey::Inline { .. }));
        assert_eq!(&*short, "xcore:default:ns:k");
        let long_key = "ü".repeat(100);
        let long = FullKey::new("xcore:default:ns:", &long_key);
        assert!(matches!(long, FullKey::Heap(_)));
        assert_eq!(&*long, format!("xcore:default:ns:{long_key}"));
    }

    #[test]
    fn scope_and_escape() {
        let acme = TenantId::new("acme").unwrap();
        assert_eq!(scope("xcore", &acme, "users"), "xcore:acme:users:");
        assert_eq!(escape_glob(r"a*b?[c]\d"), r"a\*b\?\[c\]\\d");
    }
}
