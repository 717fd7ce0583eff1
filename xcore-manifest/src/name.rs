use std::fmt;

/// The longest name a plugin or service may have.
pub const MAX_NAME_LEN: usize = 64;

/// Why a plugin or service name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    name: String,
    reason: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid name `{}`: {}; a name starts with a lowercase letter and holds only \
             lowercase letters, digits, `_` and `-` (at most {MAX_NAME_LEN} characters)",
            self.name, self.reason
        )
    }
}

impl std::error::Error for NameError {}

/// Checks a plugin or service name.
///
/// Names appear in URLs (`/plugin/<name>`), in grants (`plugin:<name>: ping`) and in logs, so
/// they are restricted to lowercase ASCII letters, digits, `_` and `-`, start with a letter and
/// are at most 64 characters long.
///
/// ```
/// assert!(xcore_manifest::validate_name("user_manager").is_ok());
/// assert!(xcore_manifest::validate_name("User").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME_LEN {
        "it is too long"
    } else if !name.as_bytes()[0].is_ascii_lowercase() {
        "it does not start with a lowercase letter"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        "it holds a character other than a-z, 0-9, `_` and `-`"
    } else {
        return Ok(());
    };
    Err(NameError {
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        for ok in ["a", "user_manager", "audit-log", "x1"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "_a", "A", "a.b", "a b", "a:b", &"a".repeat(65)] {
            let err = validate_name(bad).unwrap_err();
            assert!(err.to_string().contains("invalid name"), "{err}");
        }
    }
}
