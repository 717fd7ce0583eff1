//! Path prefixes, matched segment by segment: `/plugin/a` never matches `/plugin/ab`.

use std::fmt;

/// A validated path prefix: `/` then segments separated by `/`, no trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prefix(String);

impl Prefix {
    /// Validates a prefix (`/plugin`, `/api/v1/xcore`); a trailing `/` is dropped.
    pub(crate) fn new(prefix: &str) -> Result<Self, &'static str> {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        if !trimmed.starts_with('/') {
            return Err("it must start with `/`");
        }
        if trimmed.len() < 2 {
            return Err("it must have at least one segment (the root is not a prefix)");
        }
        if trimmed[1..].split('/').any(str::is_empty) {
            return Err("it has an empty segment (`//`)");
        }
        if !trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'))
        {
            return Err("it may hold only letters, digits, `-`, `_`, `.`, `~` and `/`");
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The rest of `path` after the prefix (`""` or `/…`), if the prefix matches whole
    /// segments.
    pub(crate) fn strip<'a>(&self, path: &'a str) -> Option<&'a str> {
        let rest = path.strip_prefix(self.0.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    /// Whether `self` lies inside `other` (or is it).
    pub(crate) fn within(&self, other: &Prefix) -> bool {
        other.strip(&self.0).is_some()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `/name/rest…` into `("name", "/rest…")`; the rest is `/` when empty. `None` when
/// there is no first segment.
pub(crate) fn first_segment(path: &str) -> Option<(&str, &str)> {
    let path = path.strip_prefix('/')?;
    // A byte scan: cheaper than `find` for the short names of a request path.
    let (name, rest) = match path.bytes().position(|b| b == b'/') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, "/"),
    };
    (!name.is_empty()).then_some((name, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_aware() {
        let p = Prefix::new("/plugin/").unwrap();
        assert_eq!(p.as_str(), "/plugin");
        assert_eq!(p.strip("/plugin"), Some(""));
        assert_eq!(p.strip("/plugin/a/b"), Some("/a/b"));
        assert_eq!(p.strip("/plugins/a"), None);
        assert_eq!(p.strip("/plugi"), None);
        assert_eq!(first_segment("/a"), Some(("a", "/")));
        assert_eq!(first_segment("/a/"), Some(("a", "/")));
        assert_eq!(first_segment("/ab/x?"), Some(("ab", "/x?")));
        assert_eq!(first_segment("/"), None);
        assert_eq!(first_segment(""), None);
        assert_eq!(first_segment("//x"), None);
    }

    #[test]
    fn validation() {
        for bad in ["", "/", "plugin", "/a//b", "/a b", "/{x}"] {
            assert!(Prefix::new(bad).is_err(), "{bad}");
        }
        let admin = Prefix::new("/p/xcore").unwrap();
        assert!(admin.within(&Prefix::new("/p").unwrap()));
        assert!(!admin.within(&Prefix::new("/px").unwrap()));
    }
}
