//! Permission grants: `RESOURCE: ACTIONS`, `!` in front for a deny.
//!
//! - RESOURCE is segments separated by `.` or `:` (the two are equivalent); `*` matches within
//!   one segment (`user*`, `*`), `**` as a whole segment matches any number of segments, zero
//!   included. Matching is case-sensitive.
//! - ACTIONS is a list separated by `,` or spaces; `*` is every action.
//! - The resource and the actions are separated by a colon followed by a space (`: `), so the
//!   colons inside `service:worker` or `plugin:audit` are never ambiguous.
//! - In a set of grants, a deny that matches wins over any allow; no match is a deny.

use std::fmt;

use serde::Deserialize;

/// Whether a grant allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The grant allows the actions on the resource.
    #[default]
    Allow,
    /// The grant denies them, whatever other grants say.
    Deny,
}

/// Why a grant was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    grant: String,
    reason: String,
}

impl GrantError {
    fn new(grant: &str, reason: impl Into<String>) -> Self {
        Self {
            grant: grant.to_owned(),
            reason: reason.into(),
        }
    }

    /// The grant as written.
    pub fn grant(&self) -> &str {
        &self.grant
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid grant `{}`: {}; a grant is `RESOURCE: ACTIONS`, e.g. `db.default: read, write` \
             or `!plugin:billing: refund`",
            self.grant, self.reason
        )
    }
}

impl std::error::Error for GrantError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A segment without wildcard.
    Literal(String),
    /// `*`: any one segment.
    Any,
    /// `**`: any number of segments, zero included.
    AnyPath,
    /// A segment with `*` inside, split around the stars (`us*r*` → `["us", "r", ""]`).
    Glob(Vec<String>),
}

impl Segment {
    fn matches(&self, s: &str) -> bool {
        match self {
            Segment::Literal(lit) => lit == s,
            Segment::Any => true,
            Segment::AnyPath => unreachable_any_path(),
            Segment::Glob(parts) => glob_match(parts, s),
        }
    }
}

// `AnyPath` is handled by `match_segments` before `Segment::matches` is reached; a lone
// `matches` on it still answers sensibly (one segment is "any number").
fn unreachable_any_path() -> bool {
    true
}

/// `parts` are the pieces between stars: the first is a prefix, the last a suffix, the middle
/// ones must appear in order.
fn glob_match(parts: &[String], s: &str) -> bool {
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return s.is_empty(),
    };
    let Some(mut s) = s.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return s.is_empty();
    };
    for part in middle {
        match s.find(part.as_str()) {
            Some(i) => s = &s[i + part.len()..],
            None => return false,
        }
    }
    s.len() >= last.len() && s.ends_with(last.as_str())
}

/// A compiled resource pattern such as `db.*`, `plugin:audit` or `events:user.**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePattern {
    segments: Vec<Segment>,
}

const SEPARATORS: [char; 2] = ['.', ':'];

impl ResourcePattern {
    /// Parses a resource pattern.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err("the resource is empty".into());
        }
        let mut segments = Vec::new();
        for seg in pattern.split(SEPARATORS) {
            if seg.is_empty() {
                return Err(format!(
                    "the resource `{pattern}` has an empty segment (two separators in a row, \
                     or one at an end)"
                ));
            }
            if let Some(c) = seg
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*')))
            {
                return Err(format!(
                    "the resource `{pattern}` holds `{c}`; segments hold letters, digits, `_`, \
                     `-` and `*`, separated by `.` or `:`"
                ));
            }
            segments.push(match seg {
                "*" => Segment::Any,
                "**" => Segment::AnyPath,
                s if s.contains("**") => {
                    return Err(format!(
                        "`**` must be a whole segment (as in `db.**`), not part of `{s}`"
                    ));
                }
                s if s.contains('*') => Segment::Glob(s.split('*').map(str::to_owned).collect()),
                s => Segment::Literal(s.to_owned()),
            });
        }
        Ok(Self { segments })
    }

    /// Whether the concrete resource (`db.default`, `plugin:audit`) matches. No allocation.
    pub fn matches(&self, resource: &str) -> bool {
        match_segments(&self.segments, resource.split(SEPARATORS))
    }

    /// Whether `scope:resource` matches, without building that string (`events` and
    /// `user.created` for `events:user.created`).
    pub fn matches_scoped(&self, scope: &str, resource: &str) -> bool {
        match_segments(
            &self.segments,
            scope.split(SEPARATORS).chain(resource.split(SEPARATORS)),
        )
    }
}

fn match_segments<'a, I>(patterns: &[Segment], mut resource: I) -> bool
where
    I: Iterator<Item = &'a str> + Clone,
{
    match patterns.split_first() {
        None => resource.next().is_none(),
        Some((Segment::AnyPath, rest)) => loop {
            if match_segments(rest, resource.clone()) {
                return true;
            }
            if resource.next().is_none() {
                return false;
            }
        },
        Some((seg, rest)) => match resource.next() {
            Some(s) if seg.matches(s) => match_segments(rest, resource),
            _ => false,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ActionSet {
    Any,
    List(Vec<String>),
}

/// One parsed grant: an effect, a resource pattern and a set of actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    effect: Effect,
    resource: ResourcePattern,
    actions: ActionSet,
    text: String,
}

impl Grant {
    /// Parses the string form, `RESOURCE: ACTIONS` or `!RESOURCE: ACTIONS`.
    ///
    /// ```
    /// use xcore_manifest::{Effect, Grant};
    /// let g = Grant::parse("!db.*: write").unwrap();
    /// assert_eq!(g.effect(), Effect::Deny);
    /// assert!(g.matches("db.default", "write"));
    /// assert!(!g.matches("db.default", "read"));
    /// assert!(Grant::parse("db.default").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, GrantError> {
        let trimmed = text.trim();
        let (effect, body) = match trimmed.strip_prefix('!') {
            Some(rest) => (Effect::Deny, rest.trim_start()),
            None => (Effect::Allow, trimmed),
        };
        let split = body
            .char_indices()
            .rev()
            .find(|&(i, c)| {
                c == ':' && body[i + 1..].chars().next().is_none_or(char::is_whitespace)
            })
            .map(|(i, _)| i);
        let Some(split) = split else {
            return Err(GrantError::new(
                text,
                "no `: ` (a colon then a space) separates the resource from the actions",
            ));
        };
        let resource =
            ResourcePattern::parse(&body[..split]).map_err(|e| GrantError::new(text, e))?;
        let actions = body[split + 1..]
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|a| !a.is_empty());
        let actions = parse_actions(actions).map_err(|e| GrantError::new(text, e))?;
        Ok(Self {
            effect,
            resource,
            actions,
            text: trimmed.to_owned(),
        })
    }

    /// Builds a grant from its config form.
    ///
    /// ```
    /// use xcore_manifest::{Grant, GrantSpec};
    /// let spec: GrantSpec = serde_json::from_str(
    ///     r#"{"resource": "cache.sessions", "actions": ["read", "write"], "effect": "allow"}"#,
    /// ).unwrap();
    /// let g = Grant::from_spec(&spec).unwrap();
    /// assert!(g.matches("cache.sessions", "write"));
    /// ```
    pub fn from_spec(spec: &GrantSpec) -> Result<Self, GrantError> {
        let text = format!(
            "{}{}: {}",
            if spec.effect == Effect::Deny { "!" } else { "" },
            spec.resource,
            spec.actions.join(", ")
        );
        let resource =
            ResourcePattern::parse(&spec.resource).map_err(|e| GrantError::new(&text, e))?;
        let actions = parse_actions(spec.actions.iter().map(|a| a.trim()))
            .map_err(|e| GrantError::new(&text, e))?;
        Ok(Self {
            effect: spec.effect,
            resource,
            actions,
            text,
        })
    }

    /// Allow or deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// The resource pattern.
    pub fn resource(&self) -> &ResourcePattern {
        &self.resource
    }

    /// Whether this grant speaks about `action` on `resource` (whatever its effect).
    pub fn matches(&self, resource: &str, action: &str) -> bool {
        self.covers_action(action) && self.resource.matches(resource)
    }

    /// Whether this grant speaks about `action` on `scope:resource`.
    pub fn matches_scoped(&self, scope: &str, resource: &str, action: &str) -> bool {
        self.covers_action(action) && self.resource.matches_scoped(scope, resource)
    }

    fn covers_action(&self, action: &str) -> bool {
        match &self.actions {
            ActionSet::Any => true,
            ActionSet::List(list) => list.iter().any(|a| a == action),
        }
    }
}

fn parse_actions<'a>(actions: impl Iterator<Item = &'a str>) -> Result<ActionSet, String> {
    let mut list = Vec::new();
    let mut any = false;
    for action in actions {
        if action == "*" {
            any = true;
        } else if let Some(c) = action
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(format!(
                "the action `{action}` holds `{c}`; actions hold letters, digits, `_`, `-` and \
                 `.`, or are `*`"
            ));
        } else {
            list.push(action.to_owned());
        }
    }
    if !any && list.is_empty() {
        return Err("the action list is empty".into());
    }
    Ok(if any {
        ActionSet::Any
    } else {
        ActionSet::List(list)
    })
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Grant {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The config form of a grant: `{resource, actions, effect}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    /// The resource pattern, e.g. `db.default`.
    pub resource: String,
    /// The actions, e.g. `["read", "write"]` or `["*"]`.
    pub actions: Vec<String>,
    /// `allow` (the default) or `deny`.
    #[serde(default)]
    pub effect: Effect,
}

/// A plugin's compiled grants: deny wins over allow, no match is a deny.
///
/// ```
/// use xcore_manifest::Grants;
/// let grants = Grants::parse(["db.*: read", "!db.secrets: *"]).unwrap();
/// assert!(grants.allows("db.default", "read"));
/// assert!(!grants.allows("db.secrets", "read"));
/// assert!(!grants.allows("cache.sessions", "read"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    allow: Vec<Grant>,
    deny: Vec<Grant>,
}

impl Grants {
    /// Parses a list of grants in string form; stops at the first bad one.
    pub fn parse<I, S>(grants: I) -> Result<Self, GrantError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        grants
            .into_iter()
            .map(|g| Grant::parse(g.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from_grants)
    }

    /// Groups parsed grants into a set.
    pub fn from_grants(grants: impl IntoIterator<Item = Grant>) -> Self {
        let (deny, allow) = grants.into_iter().partition(|g| g.effect == Effect::Deny);
        Self { allow, deny }
    }

    /// Whether `action` on `resource` is allowed: no matching deny, and a matching allow.
    pub fn allows(&self, resource: &str, action: &str) -> bool {
        !self.deny.iter().any(|g| g.matches(resource, action))
            && self.allow.iter().any(|g| g.matches(resource, action))
    }

    /// Whether `action` on `scope:resource` is allowed, without building that string.
    ///
    /// ```
    /// use xcore_manifest::Grants;
    /// let grants = Grants::parse(["events:user.*: emit"]).unwrap();
    /// assert!(grants.allows_scoped("events", "user.created", "emit"));
    /// assert!(!grants.allows_scoped("events", "order.paid", "emit"));
    /// ```
    pub fn allows_scoped(&self, scope: &str, resource: &str, action: &str) -> bool {
        !self
            .deny
            .iter()
            .any(|g| g.matches_scoped(scope, resource, action))
            && self
                .allow
                .iter()
                .any(|g| g.matches_scoped(scope, resource, action))
    }

    /// Every grant, the denies first.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.deny.iter().chain(&self.allow)
    }

    /// Whether the set holds no grant (and so allows nothing).
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (grants, resource, action, allowed)
    const TABLE: &[(&[&str], &str, &str, bool)] = &[
        (&["db.default: read"], "db.default", "read", true),
        (&["db.default: read"], "db.default", "write", false),
        (&["db.default: read"], "db.other", "read", false),
        (&["db.default: read, write"], "db.default", "write", true),
        (&["db.default: read write"], "db.default", "write", true),
        (&["db.*: read"], "db.users", "read", true),
        (&["db.*: read"], "db.users.secret", "read", false),
        (&["db.*: read"], "db", "read", false),
        (&["db.**: read"], "db.users.secret", "read", true),
        (&["db.**: read"], "db", "read", true),
        (&["**: read"], "anything.at:all", "read", true),
        (&["db.user*: read"], "db.users", "read", true),
        (&["db.user*: read"], "db.user", "read", true),
        (&["db.user*: read"], "db.admins", "read", false),
        (&["db.*s: read"], "db.users", "read", true),
        (&["db.u*r*s: read"], "db.users", "read", true),
        (&["db.u*r*s: read"], "db.us", "read", false),
        (&["db.default: *"], "db.default", "drop", true),
        (&["DB.default: read"], "db.default", "read", false),
        (&["db.default: Read"], "db.default", "read", false),
        (&["db.*: *", "!db.secrets: *"], "db.secrets", "read", false),
        (&["!db.secrets: *", "db.*: *"], "db.secrets", "read", false),
        (
            &["db.*: *", "!db.secrets: write"],
            "db.secrets",
            "read",
            true,
        ),
        (&["db.users: read", "!db.*: *"], "db.users", "read", false),
        (&["db.users: read", "!db.*: *"], "db.posts", "read", false),
        (&[], "db.default", "read", false),
        (
            &["service:worker: execute"],
            "service:worker",
            "execute",
            true,
        ),
        (
            &["service:worker: execute"],
            "service.worker",
            "execute",
            true,
        ),
        (&["service:*: *"], "service:scheduler", "schedule", true),
        (&["plugin:audit: record"], "plugin:audit", "record", true),
        (&["plugin:audit: record"], "plugin:audit", "reset", false),
        (&["plugin:*: ping"], "plugin:billing", "ping", true),
        (
            &["events:user.*: emit"],
            "events:user.created",
            "emit",
            true,
        ),
        (
            &["events:user.*: emit"],
            "events:user.created.v2",
            "emit",
            false,
        ),
        (
            &["events:user.**: emit"],
            "events:user.created.v2",
            "emit",
            true,
        ),
        (
            &["events:user.*: emit"],
            "events:user.created",
            "subscribe",
            false,
        ),
        (
            &["events:**: subscribe"],
            "events:order.paid",
            "subscribe",
            true,
        ),
        (&["cache.sessions: read"], "cache.sessions", "write", false),
        (
            &["cache.*: read, write, delete"],
            "cache.sessions",
            "delete",
            true,
        ),
        (&["!**: *"], "db.default", "read", false),
    ];

    #[test]
    fn matcher_table() {
        for (i, (grants, resource, action, want)) in TABLE.iter().enumerate() {
            let set = Grants::parse(grants.iter()).unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(
                set.allows(resource, action),
                *want,
                "case {i}: {grants:?} on {resource} / {action}"
            );
        }
    }

    #[test]
    fn scoped_matches_like_the_joined_string() {
        for (grants, resource, action, want) in TABLE {
            let set = Grants::parse(grants.iter()).unwrap();
            if let Some((scope, rest)) = resource.split_once([':', '.']) {
                assert_eq!(
                    set.allows_scoped(scope, rest, action),
                    *want,
                    "{grants:?} {resource}"
                );
            }
        }
    }

    #[test]
    fn malformed_grants() {
        let cases = [
            ("db.default", "no `: `"),
            ("db.default:read", "no `: `"),
            ("db.default: ", "empty"),
            (": read", "empty"),
            ("db..x: read", "empty segment"),
            ("db.: read", "empty segment"),
            ("db.a**: read", "whole segment"),
            ("db/x: read", "holds `/`"),
            ("db.x: re@d", "holds `@`"),
            ("!: read", "empty"),
        ];
        for (grant, needle) in cases {
            let err = Grant::parse(grant).unwrap_err();
            assert!(err.to_string().contains(needle), "{grant}: {err}");
            assert_eq!(err.grant(), grant);
        }
    }

    #[test]
    fn config_form() {
        let spec: GrantSpec =
            serde_json::from_str(r#"{"resource": "db.x", "actions": ["write"], "effect": "deny"}"#)
                .unwrap();
        let g = Grant::from_spec(&spec).unwrap();
        assert_eq!(g.effect(), Effect::Deny);
        assert_eq!(g.to_string(), "!db.x: write");
        let bad = GrantSpec {
            resource: "db.x".into(),
            actions: vec![],
            effect: Effect::Allow,
        };
        assert!(
            Grant::from_spec(&bad)
                .unwrap_err()
                .reason()
                .contains("empty")
        );
        assert!(
            serde_json::from_str::<GrantSpec>(
                r#"{"resource": "x", "actions": [], "effect": "maybe"}"#
            )
            .is_err()
        );
    }
}
