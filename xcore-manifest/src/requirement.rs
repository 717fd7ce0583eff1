use std::fmt;

use semver::{Version, VersionReq};

use crate::validate_name;

/// A dependency on another plugin: its name and an optional semver constraint.
///
/// Written `name` or `name@REQ`, where REQ uses Cargo's requirement syntax (`^1.2`, `>=1, <3`,
/// `~1.4`, `=2.0.1`). As in Cargo, `^0.2` does not accept `0.3.0`.
///
/// ```
/// let req: xcore_manifest::Requirement = "audit@^1.2".parse().unwrap();
/// assert_eq!(req.name(), "audit");
/// assert!(req.matches(&"1.9.0".parse().unwrap()));
/// assert!(!req.matches(&"2.0.0".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    name: String,
    version: Option<VersionReq>,
}

impl Requirement {
    /// The required plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version constraint, if any.
    pub fn version(&self) -> Option<&VersionReq> {
        self.version.as_ref()
    }

    /// Whether `version` satisfies the constraint (always true without one).
    pub fn matches(&self, version: &Version) -> bool {
        self.version.as_ref().is_none_or(|req| req.matches(version))
    }
}

impl std::str::FromStr for Requirement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, version) = match s.split_once('@') {
            Some((name, req)) => {
                let req = VersionReq::parse(req.trim()).map_err(|e| {
                    format!(
                        "invalid requirement `{s}`: bad version constraint `{}`: {e}; \
                         write e.g. `audit@^1.2`",
                        req.trim()
                    )
                })?;
                (name.trim(), Some(req))
            }
            None => (s.trim(), None),
        };
        validate_name(name).map_err(|e| format!("invalid requirement `{s}`: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            version,
        })
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(req) => write!(f, "{}@{}", self.name, req),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_follows_cargo() {
        let req: Requirement = "a@^0.2".parse().unwrap();
        assert!(req.matches(&Version::new(0, 2, 9)));
        assert!(!req.matches(&Version::new(0, 3, 0)));
        let any: Requirement = "a".parse().unwrap();
        assert!(any.matches(&Version::new(9, 0, 0)));
        assert_eq!(any.to_string(), "a");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in ["", "@^1", "A@1", "a@", "a@^x", "a@@1"] {
            assert!(bad.parse::<Requirement>().is_err(), "{bad}");
        }
    }
}
