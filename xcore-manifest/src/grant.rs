//! Permission grants: `RESOURCE: ACTIONS`, `!` in front for a deny.
//!
//! - RESOURCE is segments separated by `.` or `:` (the two are equivalent); `*` matches within
//!   one segment (`user*`, `*`), `**` as a whole segment matches any number of segments, zero
//!   included. Matching is case-sensitive.
//! - ACTIONS is a list separated by `,` or spaces; `*` is every action.
//! - The resource and the actions are separated by a colon followed by a space (`: `), so the
//!   colons inside `service:worker` or `plugin:audit` are never ambiguous.
//! - In a set of grants, a deny that matches wins over any allow; no match is a deny.
//!
//! # Limits
//!
//! | input | limit | error |
//! |---|---|---|
//! | a grant as written | [`MAX_GRANT_LEN`] bytes | [`GrantErrorKind::TooLong`] |
//! | a resource pattern | [`MAX_PATTERN_LEN`] bytes | [`GrantErrorKind::TooLong`] |
//! | segments of a resource pattern | [`MAX_PATTERN_SEGMENTS`] | [`GrantErrorKind::TooManySegments`] |
//!
//! Matching runs in `O(pattern segments × resource segments)` whatever the pattern: it tracks
//! the set of pattern positions reachable so far (one bit each) instead of backtracking on
//! `**`. Consecutive wildcard segments are normalised when parsed (`**.**` is `**`, `**.*` is
//! `*.**`), which changes no match.
//!
//! # Patterns against patterns
//!
//! A subscription names a *pattern* (`user.*`), not one resource, so
//! [`Grants::allows_pattern`] asks whether **every** resource the pattern can match is allowed:
//!
//! - some allow grant for the action **covers** the pattern ([`ResourcePattern::covers`]):
//!   each of the grant's segments absorbs the pattern's segments — its `**` any run of them
//!   (`**` included), its `*` one segment that is not `**`, a literal or glob one segment whose
//!   every match it matches;
//! - and no deny grant for the action **intersects** the pattern
//!   ([`ResourcePattern::intersects`]): a deny that could match even one of the pattern's
//!   resources refuses the whole subscription.
//!
//! The test is sound (it never admits a resource the grants refuse) and exact for one grant;
//! a pattern covered only by the union of several allows (`a` and `a.*.**` for `a.**`) is
//! refused: grant the pattern itself.
//!
//! | grants | pattern | covered? |
//! |---|---|---|
//! | `user.*` | `user.created` | yes |
//! | `user.*` | `user.*` | yes |
//! | `user.*` | `user.**` | no: `user.created.v2` and `user` are not granted |
//! | `user.*` | `user.*.*` | no |
//! | `user.*` | `*.created` | no |
//! | `user.**` | `user.**` | yes |
//! | `user.**` | `user.*.v2` | yes |
//! | `user.**` | `user` | yes |
//! | `*.x` | `**.x` | no: a single `*` does not absorb `**` |
//! | `*.x` | `*.x` | yes |
//! | `**.x` | `*.*.x` | yes |
//! | `**` | `**` | yes |
//! | `user.c*` | `user.cr*` | yes |
//! | `user.c*` | `user.*` | no |
//! | `user.*d` | `user.c*d` | yes |
//! | `user.*d` | `user.c*` | no |
//! | `a.*.**` | `a.**.*` | yes (the same resources) |
//! | `user.*`, `!user.secret` | `user.*` | no: the deny intersects |
//! | `user.*`, `!user.secret` | `user.created` | yes |
//! | `user.**`, `!user.*.secret` | `user.a*` | yes: no resource of the pattern is denied |
//! | `user.**`, `!*.secret` | `user.**` | no: `user.secret` is denied |
//! | `user.*`, `!user.s*` | `user.*t` | no: `user.st` is denied |
//! | `user.a`, `user.b` | `user.*` | no |
//! | (none) | `user.*` | no |

use std::fmt;

use serde::Deserialize;

/// The longest grant accepted, as written, in bytes.
pub const MAX_GRANT_LEN: usize = 1024;
/// The longest resource pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 256;
/// The most segments a resource pattern may have.
pub const MAX_PATTERN_SEGMENTS: usize = 32;

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

/// What kind of mistake a [`GrantError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// The grant or its resource pattern is longer than its limit.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit ([`MAX_GRANT_LEN`] or [`MAX_PATTERN_LEN`]).
        max: usize,
    },
    /// The resource pattern has more than [`MAX_PATTERN_SEGMENTS`] segments.
    TooManySegments {
        /// How many it has.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a grant (or a resource pattern) was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    grant: String,
    reason: String,
    kind: GrantErrorKind,
}

/// How much of an over-long input an error quotes.
const QUOTE_LEN: usize = 120;

impl GrantError {
    fn new(grant: &str, reason: impl Into<String>) -> Self {
        Self::with_kind(grant, reason, GrantErrorKind::Syntax)
    }

    fn with_kind(grant: &str, reason: impl Into<String>, kind: GrantErrorKind) -> Self {
        let grant = if grant.len() > QUOTE_LEN {
            let mut end = QUOTE_LEN;
            while !grant.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &grant[..end])
        } else {
            grant.to_owned()
        };
        Self {
            grant,
            reason: reason.into(),
            kind,
        }
    }

    /// Re-attributes a pattern error to the grant that holds the pattern.
    fn in_grant(self, grant: &str) -> Self {
        Self::with_kind(grant, self.reason, self.kind)
    }

    /// The grant as written (its first 120 bytes when longer).
    pub fn grant(&self) -> &str {
        &self.grant
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The kind of mistake.
    pub fn kind(&self) -> GrantErrorKind {
        self.kind
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
    /// Whether this one-segment matcher matches `s`. `AnyPath` answers `true` (it absorbs any
    /// one segment too); the automaton treats it apart before asking.
    fn matches(&self, s: &str) -> bool {
        match self {
            Segment::Literal(lit) => lit == s,
            Segment::Any | Segment::AnyPath => true,
            Segment::Glob(parts) => glob_match(parts, s),
        }
    }

    /// The segment as written (`*` where the stars are).
    fn text(&self) -> String {
        match self {
            Segment::Literal(lit) => lit.clone(),
            Segment::Any | Segment::AnyPath => "*".to_owned(),
            Segment::Glob(parts) => parts.join("*"),
        }
    }

    /// Whether every segment `other` matches, this one matches (neither is `**`).
    fn covers(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Any | Segment::AnyPath, _) => true,
            (_, Segment::Literal(lit)) => self.matches(lit),
            (Segment::Literal(_), _) => false,
            _ => wildcard_covers(self.text().as_bytes(), other.text().as_bytes()),
        }
    }

    /// Whether some segment matches both (neither is `**`).
    fn intersects(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Literal(lit), seg) | (seg, Segment::Literal(lit)) => seg.matches(lit),
            _ => {
                // Two globs (`*` is one): a common match exists iff their prefixes agree and
                // their suffixes agree; the middle pieces then fit in between.
                let (a, b) = (self.text(), other.text());
                let (ap, bp) = (prefix(&a), prefix(&b));
                let (as_, bs) = (suffix(&a), suffix(&b));
                (ap.starts_with(bp) || bp.starts_with(ap))
                    && (as_.ends_with(bs) || bs.ends_with(as_))
            }
        }
    }
}

/// The text before the first `*`.
fn prefix(glob: &str) -> &str {
    glob.split('*').next().unwrap_or("")
}

/// The text after the last `*`.
fn suffix(glob: &str) -> &str {
    glob.rsplit('*').next().unwrap_or("")
}

/// Whether the glob `cover` matches every string the glob `inner` matches: `cover` must match
/// `inner`'s text where each of `inner`'s `*` is a symbol only a `*` of `cover` absorbs. Sound;
/// `O(|cover| × |inner|)`.
fn wildcard_covers(cover: &[u8], inner: &[u8]) -> bool {
    // reach[j]: cover[..i] matches inner[..j].
    let mut reach = vec![false; inner.len() + 1];
    reach[0] = true;
    for &c in cover {
        if c == b'*' {
            let mut any = false;
            for r in reach.iter_mut() {
                any |= *r;
                *r = any;
            }
        } else {
            for j in (1..=inner.len()).rev() {
                reach[j] = reach[j - 1] && inner[j - 1] == c;
            }
            reach[0] = false;
        }
    }
    reach[inner.len()]
}

/// `parts` are the pieces between stars: the first is a prefix, the last a suffix, the middle
/// ones must appear in order (leftmost is right for star-only globs: linear, no backtracking).
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
    /// Bit `i` is set when `segments[i]` is `**`.
    any_path: u64,
}

const SEPARATORS: [char; 2] = ['.', ':'];

impl ResourcePattern {
    /// Parses a resource pattern; [`GrantError::grant`] is then the pattern.
    ///
    /// ```
    /// use xcore_manifest::{GrantErrorKind, ResourcePattern, MAX_PATTERN_SEGMENTS};
    /// assert!(ResourcePattern::parse("user.**").unwrap().matches("user.created.v2"));
    /// let deep = vec!["a"; MAX_PATTERN_SEGMENTS + 1].join(".");
    /// let err = ResourcePattern::parse(&deep).unwrap_err();
    /// assert!(matches!(err.kind(), GrantErrorKind::TooManySegments { .. }));
    /// ```
    pub fn parse(pattern: &str) -> Result<Self, GrantError> {
        let written = pattern;
        let pattern = pattern.trim();
        let syntax = |reason: String| GrantError::new(written, reason);
        if pattern.is_empty() {
            return Err(syntax("the resource is empty".into()));
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(GrantError::with_kind(
                written,
                format!(
                    "the resource is {} bytes long, more than the {MAX_PATTERN_LEN} allowed",
                    pattern.len()
                ),
                GrantErrorKind::TooLong {
                    len: pattern.len(),
                    max: MAX_PATTERN_LEN,
                },
            ));
        }
        let count = pattern.split(SEPARATORS).count();
        if count > MAX_PATTERN_SEGMENTS {
            return Err(GrantError::with_kind(
                written,
                format!(
                    "the resource has {count} segments, more than the {MAX_PATTERN_SEGMENTS} \
                     allowed"
                ),
                GrantErrorKind::TooManySegments {
                    count,
                    max: MAX_PATTERN_SEGMENTS,
                },
            ));
        }
        let mut segments = Vec::with_capacity(count);
        for seg in pattern.split(SEPARATORS) {
            if seg.is_empty() {
                return Err(syntax(format!(
                    "the resource `{pattern}` has an empty segment (two separators in a row, \
                     or one at an end)"
                )));
            }
            if let Some(c) = seg
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*')))
            {
                return Err(syntax(format!(
                    "the resource `{pattern}` holds `{c}`; segments hold letters, digits, `_`, \
                     `-` and `*`, separated by `.` or `:`"
                )));
            }
            segments.push(match seg {
                "*" => Segment::Any,
                "**" => Segment::AnyPath,
                s if s.contains("**") => {
                    return Err(syntax(format!(
                        "`**` must be a whole segment (as in `db.**`), not part of `{s}`"
                    )));
                }
                s if s.contains('*') => Segment::Glob(s.split('*').map(str::to_owned).collect()),
                s => Segment::Literal(s.to_owned()),
            });
        }
        Ok(Self::from_segments(segments))
    }

    /// Normalises runs of `*` and `**` (the `*`s first, one `**` at most: the same
    /// resources) and indexes the `**`s.
    fn from_segments(segments: Vec<Segment>) -> Self {
        let mut out: Vec<Segment> = Vec::with_capacity(segments.len());
        let mut run_any = 0usize;
        let mut run_path = false;
        let flush = |out: &mut Vec<Segment>, run_any: &mut usize, run_path: &mut bool| {
            out.extend(std::iter::repeat_n(Segment::Any, *run_any));
            if *run_path {
                out.push(Segment::AnyPath);
            }
            *run_any = 0;
            *run_path = false;
        };
        for seg in segments {
            match seg {
                Segment::Any => run_any += 1,
                Segment::AnyPath => run_path = true,
                other => {
                    flush(&mut out, &mut run_any, &mut run_path);
                    out.push(other);
                }
            }
        }
        flush(&mut out, &mut run_any, &mut run_path);
        let any_path = out
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Segment::AnyPath)
            .fold(0u64, |mask, (i, _)| mask | 1 << i);
        Self {
            segments: out,
            any_path,
        }
    }

    /// This pattern behind the literal segments of `scope` (`events` + `user.*` is
    /// `events.user.*`); `None` if `scope` is not a plain resource or the result is too long.
    fn scoped(&self, scope: &str) -> Option<Self> {
        let mut segments = Vec::with_capacity(self.segments.len() + 1);
        for seg in scope.split(SEPARATORS) {
            if seg.is_empty() || seg.contains('*') {
                return None;
            }
            segments.push(Segment::Literal(seg.to_owned()));
        }
        segments.extend(self.segments.iter().cloned());
        (segments.len() < 64).then(|| Self::from_segments(segments))
    }

    /// Whether the concrete resource (`db.default`, `plugin:audit`) matches. No allocation.
    pub fn matches(&self, resource: &str) -> bool {
        self.match_segments(resource.split(SEPARATORS))
    }

    /// Whether `scope:resource` matches, without building that string (`events` and
    /// `user.created` for `events:user.created`).
    pub fn matches_scoped(&self, scope: &str, resource: &str) -> bool {
        self.match_segments(scope.split(SEPARATORS).chain(resource.split(SEPARATORS)))
    }

    /// Whether every resource `other` matches, this pattern matches (see the module docs:
    /// sound, exact for the usual shapes).
    ///
    /// ```
    /// use xcore_manifest::ResourcePattern;
    /// let p = |s| ResourcePattern::parse(s).unwrap();
    /// assert!(p("user.**").covers(&p("user.*")));
    /// assert!(!p("user.*").covers(&p("user.**")));
    /// assert!(!p("*.x").covers(&p("**.x")));
    /// ```
    pub fn covers(&self, other: &ResourcePattern) -> bool {
        // The automaton of `self` run over `other`'s segments as symbols: a `**` of `other`
        // only a `**` of `self` absorbs; any other segment, a `**` or a segment covering it.
        let end = self.segments.len();
        let mut states = self.close(1);
        for seg in &other.segments {
            let mut next = states & self.any_path;
            if *seg != Segment::AnyPath {
                let mut single = states & !self.any_path & !(1u64 << end);
                while single != 0 {
                    let i = single.trailing_zeros() as usize;
                    single &= single - 1;
                    if self.segments[i].covers(seg) {
                        next |= 1 << (i + 1);
                    }
                }
            }
            states = self.close(next);
            if states == 0 {
                return false;
            }
        }
        states & (1 << end) != 0
    }

    /// Whether some resource matches both patterns.
    ///
    /// ```
    /// use xcore_manifest::ResourcePattern;
    /// let p = |s| ResourcePattern::parse(s).unwrap();
    /// assert!(p("user.*").intersects(&p("*.secret")));
    /// assert!(!p("user.*").intersects(&p("user.*.*")));
    /// ```
    pub fn intersects(&self, other: &ResourcePattern) -> bool {
        // Reachability in the product of the two automata: (i, j) means a common prefix
        // brings `self` to position i and `other` to position j.
        let (a, b) = (&self.segments, &other.segments);
        let width = b.len() + 1;
        let mut seen = vec![false; (a.len() + 1) * width];
        let mut todo = vec![(0usize, 0usize)];
        seen[0] = true;
        while let Some((i, j)) = todo.pop() {
            if i == a.len() && j == b.len() {
                return true;
            }
            let mut next = Vec::with_capacity(3);
            if a.get(i) == Some(&Segment::AnyPath) {
                next.push((i + 1, j));
            }
            if b.get(j) == Some(&Segment::AnyPath) {
                next.push((i, j + 1));
            }
            if let (Some(sa), Some(sb)) = (a.get(i), b.get(j))
                && sa.intersects(sb)
            {
                let ni = if *sa == Segment::AnyPath { i } else { i + 1 };
                let nj = if *sb == Segment::AnyPath { j } else { j + 1 };
                next.push((ni, nj));
            }
            for (ni, nj) in next {
                let k = ni * width + nj;
                if !seen[k] {
                    seen[k] = true;
                    todo.push((ni, nj));
                }
            }
        }
        false
    }

    /// The states reachable from `states` without consuming a segment: past each `**`.
    fn close(&self, mut states: u64) -> u64 {
        loop {
            let next = states | (states & self.any_path) << 1;
            if next == states {
                return states;
            }
            states = next;
        }
    }

    fn match_segments<'a>(&self, mut resource: impl Iterator<Item = &'a str>) -> bool {
        let segments = &self.segments;
        if self.any_path == 0 {
            // No `**`: one segment for one segment.
            for seg in segments {
                match resource.next() {
                    Some(s) if seg.matches(s) => {}
                    _ => return false,
                }
            }
            return resource.next().is_none();
        }
        // The segments before the first `**`, one for one (most grants fail here, cheaply).
        let first = self.any_path.trailing_zeros() as usize;
        for seg in &segments[..first] {
            match resource.next() {
                Some(s) if seg.matches(s) => {}
                _ => return false,
            }
        }
        // Then the set of pattern positions reached so far, one bit each (at most
        // MAX_PATTERN_SEGMENTS + a scope < 64): O(pattern × resource), no backtracking.
        let end = segments.len();
        let mut states = self.close(1 << first);
        for s in resource {
            let mut next = states & self.any_path;
            let mut single = states & !self.any_path & !(1u64 << end);
            while single != 0 {
                let i = single.trailing_zeros() as usize;
                single &= single - 1;
                if segments[i].matches(s) {
                    next |= 1 << (i + 1);
                }
            }
            states = self.close(next);
            if states == 0 {
                return false;
            }
        }
        states & (1 << end) != 0
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
        check_len(text)?;
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
        let resource = ResourcePattern::parse(&body[..split]).map_err(|e| e.in_grant(text))?;
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
        check_len(&text)?;
        let resource = ResourcePattern::parse(&spec.resource).map_err(|e| e.in_grant(&text))?;
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

/// Rejects a grant longer than [`MAX_GRANT_LEN`].
fn check_len(text: &str) -> Result<(), GrantError> {
    if text.len() > MAX_GRANT_LEN {
        return Err(GrantError::with_kind(
            text,
            format!(
                "the grant is {} bytes long, more than the {MAX_GRANT_LEN} allowed",
                text.len()
            ),
            GrantErrorKind::TooLong {
                len: text.len(),
                max: MAX_GRANT_LEN,
            },
        ));
    }
    Ok(())
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

    /// Whether `action` is allowed on **every** resource `pattern` matches: an allow grant
    /// covers the whole pattern and no deny grant could match any of its resources (see the
    /// module docs for the table of cases).
    ///
    /// ```
    /// use xcore_manifest::{Grants, ResourcePattern};
    /// let grants = Grants::parse(["user.**: subscribe", "!user.*.secret: subscribe"]).unwrap();
    /// let p = |s| ResourcePattern::parse(s).unwrap();
    /// assert!(grants.allows_pattern(&p("user.a*"), "subscribe"));
    /// assert!(!grants.allows_pattern(&p("user.**"), "subscribe"));
    /// ```
    pub fn allows_pattern(&self, pattern: &ResourcePattern, action: &str) -> bool {
        !self
            .deny
            .iter()
            .any(|g| g.covers_action(action) && g.resource.intersects(pattern))
            && self
                .allow
                .iter()
                .any(|g| g.covers_action(action) && g.resource.covers(pattern))
    }

    /// Whether `action` is allowed on every resource `scope:pattern` matches, e.g. `events`
    /// and `user.*` for a subscription to `user.*`. `false` when `scope` holds a wildcard.
    ///
    /// ```
    /// use xcore_manifest::{Grants, ResourcePattern};
    /// let grants = Grants::parse(["events:user.*: subscribe"]).unwrap();
    /// let p = |s| ResourcePattern::parse(s).unwrap();
    /// assert!(grants.allows_pattern_scoped("events", &p("user.*"), "subscribe"));
    /// assert!(!grants.allows_pattern_scoped("events", &p("user.**"), "subscribe"));
    /// ```
    pub fn allows_pattern_scoped(
        &self,
        scope: &str,
        pattern: &ResourcePattern,
        action: &str,
    ) -> bool {
        pattern
            .scoped(scope)
            .is_some_and(|scoped| self.allows_pattern(&scoped, action))
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

    /// The table of the module docs: (grants, pattern, covered).
    const COVERAGE: &[(&[&str], &str, bool)] = &[
        (&["user.*"], "user.created", true),
        (&["user.*"], "user.*", true),
        (&["user.*"], "user.**", false),
        (&["user.*"], "user.*.*", false),
        (&["user.*"], "*.created", false),
        (&["user.**"], "user.**", true),
        (&["user.**"], "user.*.v2", true),
        (&["user.**"], "user", true),
        (&["*.x"], "**.x", false),
        (&["*.x"], "*.x", true),
        (&["**.x"], "*.*.x", true),
        (&["**"], "**", true),
        (&["user.c*"], "user.cr*", true),
        (&["user.c*"], "user.*", false),
        (&["user.*d"], "user.c*d", true),
        (&["user.*d"], "user.c*", false),
        (&["a.*.**"], "a.**.*", true),
        (&["user.*", "!user.secret"], "user.*", false),
        (&["user.*", "!user.secret"], "user.created", true),
        (&["user.**", "!user.*.secret"], "user.a*", true),
        (&["user.**", "!*.secret"], "user.**", false),
        (&["user.*", "!user.s*"], "user.*t", false),
        (&["user.a", "user.b"], "user.*", false),
        (&[], "user.*", false),
    ];

    #[test]
    fn coverage_table() {
        for (i, (grants, pattern, want)) in COVERAGE.iter().enumerate() {
            let grants: Vec<String> = grants
                .iter()
                .map(|g| match g.strip_prefix('!') {
                    Some(deny) => format!("!events:{deny}: subscribe"),
                    None => format!("events:{g}: subscribe"),
                })
                .collect();
            let set = Grants::parse(&grants).unwrap();
            let pattern = ResourcePattern::parse(pattern).unwrap();
            assert_eq!(
                set.allows_pattern_scoped("events", &pattern, "subscribe"),
                *want,
                "case {i}: {grants:?} for {pattern:?}"
            );
            // Another action is never covered by these grants.
            assert!(!set.allows_pattern_scoped("events", &pattern, "emit"));
        }
    }

    #[test]
    fn a_concrete_pattern_is_allowed_like_its_resource() {
        for (grants, resource, action, want) in TABLE {
            let set = Grants::parse(grants.iter()).unwrap();
            let pattern = ResourcePattern::parse(resource).unwrap();
            assert_eq!(
                set.allows_pattern(&pattern, action),
                *want,
                "{grants:?} {resource}"
            );
        }
    }

    /// xorshift64*: deterministic, dependency-free.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }

        fn pattern(&mut self, max_len: usize, pieces: &[&str]) -> String {
            let len = 1 + self.below(max_len);
            (0..len)
                .map(|_| pieces[self.below(pieces.len())])
                .collect::<Vec<_>>()
                .join(".")
        }
    }

    /// The backtracking matcher this module used to have: exponential on many `**`, but
    /// simple enough to trust as a reference on small inputs.
    fn reference_match(pattern: &[Segment], resource: &[&str]) -> bool {
        match pattern.split_first() {
            None => resource.is_empty(),
            Some((Segment::AnyPath, rest)) => {
                (0..=resource.len()).any(|k| reference_match(rest, &resource[k..]))
            }
            Some((seg, rest)) => match resource.split_first() {
                Some((s, tail)) => seg.matches(s) && reference_match(rest, tail),
                None => false,
            },
        }
    }

    fn raw_segments(pattern: &str) -> Vec<Segment> {
        pattern
            .split('.')
            .map(|s| match s {
                "*" => Segment::Any,
                "**" => Segment::AnyPath,
                s if s.contains('*') => Segment::Glob(s.split('*').map(str::to_owned).collect()),
                s => Segment::Literal(s.to_owned()),
            })
            .collect()
    }

    /// Every resource of 0 to `max` segments over `alphabet`.
    fn universe(alphabet: &[&'static str], max: usize) -> Vec<Vec<&'static str>> {
        let mut all = vec![vec![]];
        let mut layer: Vec<Vec<&str>> = vec![vec![]];
        for _ in 0..max {
            layer = layer
                .iter()
                .flat_map(|r| {
                    alphabet.iter().map(move |s| {
                        let mut r = r.clone();
                        r.push(s);
                        r
                    })
                })
                .collect();
            all.extend(layer.iter().cloned());
        }
        all
    }

    const PIECES: &[&str] = &["a", "b", "ab", "*", "**", "a*", "*b", "a*b"];
    const ALPHABET: &[&str] = &["a", "b", "ab", "ba", "abb", "c"];

    #[test]
    fn the_automaton_matches_like_the_reference() {
        let mut rng = Rng(0x5eed_1234);
        let names = universe(ALPHABET, 4);
        for _ in 0..300 {
            let text = rng.pattern(5, PIECES);
            let pattern = ResourcePattern::parse(&text).unwrap();
            let raw = raw_segments(&text);
            for name in &names {
                let joined = name.join(".");
                if joined.is_empty() {
                    continue;
                }
                assert_eq!(
                    pattern.matches(&joined),
                    reference_match(&raw, name),
                    "{text} on {joined}"
                );
            }
        }
    }

    #[test]
    fn covers_is_sound_and_intersects_is_exact_on_a_small_universe() {
        let mut rng = Rng(0xc0ff_ee00);
        // Witnesses of 1 to 4 segments suffice for patterns of 2 segments.
        let names: Vec<String> = universe(ALPHABET, 4)
            .into_iter()
            .filter(|n| !n.is_empty())
            .map(|n| n.join("."))
            .collect();
        let (mut covered, mut crossing) = (0, 0);
        for _ in 0..400 {
            let (gt, pt) = (rng.pattern(2, PIECES), rng.pattern(2, PIECES));
            let (g, p) = (
                ResourcePattern::parse(&gt).unwrap(),
                ResourcePattern::parse(&pt).unwrap(),
            );
            if g.covers(&p) {
                covered += 1;
                for n in &names {
                    assert!(!p.matches(n) || g.matches(n), "{gt} covers {pt}, not {n}");
                }
            }
            let common = names.iter().any(|n| g.matches(n) && p.matches(n));
            assert_eq!(g.intersects(&p), common, "{gt} ∩ {pt}");
            assert_eq!(p.intersects(&g), common, "{pt} ∩ {gt}");
            crossing += usize::from(common);
        }
        // Both answers occur: the test exercises each side.
        assert!(covered > 20 && covered < 380, "{covered}");
        assert!(crossing > 20 && crossing < 380, "{crossing}");
    }

    #[test]
    fn many_double_stars_match_in_polynomial_time() {
        // Ten `**` between literals against 64 segments that almost match: the old
        // backtracking matcher never finished this.
        let pattern = ResourcePattern::parse(&["**", "x"].repeat(10).join(".")).unwrap();
        let miss = ["x"; 63].join(".") + ".y";
        let hit = ["x"; 64].join(".");
        assert!(!pattern.matches(&miss));
        assert!(pattern.matches(&hit));
        assert!(pattern.covers(&pattern));
        assert!(pattern.intersects(&pattern));
    }

    #[test]
    fn limits_at_the_bound() {
        let at = vec!["a"; MAX_PATTERN_SEGMENTS].join(".");
        assert!(ResourcePattern::parse(&at).unwrap().matches(&at));
        let over = vec!["a"; MAX_PATTERN_SEGMENTS + 1].join(".");
        let err = ResourcePattern::parse(&over).unwrap_err();
        assert_eq!(
            err.kind(),
            GrantErrorKind::TooManySegments {
                count: MAX_PATTERN_SEGMENTS + 1,
                max: MAX_PATTERN_SEGMENTS
            }
        );
        assert!(err.reason().contains("33 segments"), "{err}");

        let long = "a".repeat(MAX_PATTERN_LEN);
        assert!(ResourcePattern::parse(&long).is_ok());
        let err = ResourcePattern::parse(&(long.clone() + "a")).unwrap_err();
        assert_eq!(
            err.kind(),
            GrantErrorKind::TooLong {
                len: MAX_PATTERN_LEN + 1,
                max: MAX_PATTERN_LEN
            }
        );
        // The grant quotes the start of the text only.
        let err = Grant::parse(&format!("{long}a: read")).unwrap_err();
        assert!(matches!(err.kind(), GrantErrorKind::TooLong { .. }));
        assert!(err.grant().len() < 200, "{}", err.grant());

        let actions = vec!["r"; (MAX_GRANT_LEN - 3) / 2].join(",");
        let grant = format!("a: {actions}");
        assert!(grant.len() <= MAX_GRANT_LEN);
        assert!(Grant::parse(&grant).is_ok());
        let err = Grant::parse(&format!("{grant},rr")).unwrap_err();
        assert_eq!(
            err.kind(),
            GrantErrorKind::TooLong {
                len: grant.len() + 3,
                max: MAX_GRANT_LEN
            }
        );
        // A scope on a pattern at the limit still fits the automaton.
        let grants =
            Grants::parse([format!("events.{}: subscribe", vec!["a"; 31].join("."))]).unwrap();
        assert!(grants.allows_pattern_scoped(
            "events",
            &ResourcePattern::parse(&vec!["a"; 31].join(".")).unwrap(),
            "subscribe"
        ));
    }

    #[test]
    fn normalised_wildcard_runs_match_the_same() {
        for (a, b) in [("**.**", "**"), ("**.*", "*.**"), ("*.**.*.**", "*.*.**")] {
            assert_eq!(
                ResourcePattern::parse(a).unwrap(),
                ResourcePattern::parse(b).unwrap()
            );
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
