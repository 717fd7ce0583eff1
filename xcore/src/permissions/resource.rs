//! [`Resource`]: what a grant names, typed: a [`Scope`] and a name.

use std::fmt;

use xcore_manifest::{Grants, ResourcePattern};

/// The kind of a resource: the first segment of its grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// A plugin's actions: `plugin:<target>`.
    Plugin,
    /// Events, by name: `events:<event name>`.
    Events,
    /// A database connection: `db.<connection>`.
    Db,
    /// A cache namespace: `cache.<namespace>`.
    Cache,
    /// A service, built in or a host's extension: `service:<name>`.
    Service,
}

impl Scope {
    /// The scope's segment: `plugin`, `events`, `db`, `cache`, `service`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Plugin => "plugin",
            Scope::Events => "events",
            Scope::Db => "db",
            Scope::Cache => "cache",
            Scope::Service => "service",
        }
    }

    /// The separator written between the scope and the name (grants accept either).
    const fn separator(self) -> char {
        match self {
            Scope::Db | Scope::Cache => '.',
            Scope::Plugin | Scope::Events | Scope::Service => ':',
        }
    }

    /// The scope whose segment is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Scope::Plugin,
            Scope::Events,
            Scope::Db,
            Scope::Cache,
            Scope::Service,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether `grants` allow `action` on **every** resource of this scope that `pattern`
    /// matches (a subscription to `user.*` needs `events:user.*` or wider, and no deny
    /// intersecting it).
    pub fn allows_pattern(self, grants: &Grants, pattern: &ResourcePattern, action: &str) -> bool {
        grants.allows_pattern_scoped(self.as_str(), pattern, action)
    }
}

/// A resource, as grants name it: a [`Scope`] and a name, borrowed (building one allocates
/// nothing). Its `Display` is the string grants match and the audit keeps.
///
/// ```
/// use xcore::Grants;
/// use xcore::permissions::Resource;
///
/// assert_eq!(Resource::plugin("billing").to_string(), "plugin:billing");
/// assert_eq!(Resource::event("user.created").to_string(), "events:user.created");
/// assert_eq!(Resource::db("main").to_string(), "db.main");
/// assert_eq!(Resource::cache("sessions").to_string(), "cache.sessions");
/// assert_eq!(Resource::service("email").to_string(), "service:email");
///
/// let grants = Grants::parse(["events:user.*: emit", "db.*: read"]).unwrap();
/// assert!(Resource::event("user.created").allowed_by(&grants, "emit"));
/// assert!(!Resource::event("order.paid").allowed_by(&grants, "emit"));
/// assert!(Resource::db("main").allowed_by(&grants, "read"));
/// assert!(!Resource::db("main").allowed_by(&grants, "write"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resource<'a> {
    scope: Scope,
    name: &'a str,
}

impl<'a> Resource<'a> {
    /// The resource `name` in `scope`.
    pub const fn new(scope: Scope, name: &'a str) -> Self {
        Self { scope, name }
    }

    /// The actions of the plugin `target`: `plugin:<target>`.
    pub const fn plugin(target: &'a str) -> Self {
        Self::new(Scope::Plugin, target)
    }

    /// The event `name`: `events:<name>`.
    pub const fn event(name: &'a str) -> Self {
        Self::new(Scope::Events, name)
    }

    /// The database connection `name`: `db.<name>`.
    pub const fn db(name: &'a str) -> Self {
        Self::new(Scope::Db, name)
    }

    /// The cache namespace `namespace`: `cache.<namespace>`.
    pub const fn cache(namespace: &'a str) -> Self {
        Self::new(Scope::Cache, namespace)
    }

    /// The service `name` (an extension, the scheduler, the worker): `service:<name>`.
    pub const fn service(name: &'a str) -> Self {
        Self::new(Scope::Service, name)
    }

    /// Its scope.
    pub const fn scope(&self) -> Scope {
        self.scope
    }

    /// Its name within the scope.
    pub const fn name(&self) -> &'a str {
        self.name
    }

    /// Whether `grants` allow `action` on it (no deny matches, an allow does). Allocates
    /// nothing.
    pub fn allowed_by(&self, grants: &Grants, action: &str) -> bool {
        grants.allows_scoped(self.scope.as_str(), self.name, action)
    }
}

impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.scope.as_str(),
            self.scope.separator(),
            self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_string_grants_match() {
        let grants = Grants::parse([
            "plugin:billing: refund",
            "events:user.*: emit",
            "db.main: write",
            "cache.sessions: read",
            "service:email: use",
        ])
        .unwrap();
        let cases = [
            (Resource::plugin("billing"), "plugin:billing", "refund"),
            (
                Resource::event("user.created"),
                "events:user.created",
                "emit",
            ),
            (Resource::db("main"), "db.main", "write"),
            (Resource::cache("sessions"), "cache.sessions", "read"),
            (Resource::service("email"), "service:email", "use"),
        ];
        for (resource, text, action) in cases {
            assert_eq!(resource.to_string(), text);
            // The typed check and the check of the string agree.
            assert!(resource.allowed_by(&grants, action), "{text}");
            assert!(grants.allows(text, action), "{text}");
            assert!(!resource.allowed_by(&grants, "other"), "{text}");
            assert_eq!(
                Scope::from_name(resource.scope().as_str()),
                Some(resource.scope())
            );
        }
        assert_eq!(Scope::from_name("tenant"), None);
        // Either separator in a grant matches.
        let grants = Grants::parse(["db:main: read", "service.email: use"]).unwrap();
        assert!(Resource::db("main").allowed_by(&grants, "read"));
        assert!(Resource::service("email").allowed_by(&grants, "use"));
    }

    #[test]
    fn patterns_need_a_covering_allow_and_no_intersecting_deny() {
        let p = |s| ResourcePattern::parse(s).unwrap();
        let grants = Grants::parse([
            "events:user.**: subscribe",
            "!events:user.*.secret: subscribe",
        ])
        .unwrap();
        let cases = [
            ("user.created", true),
            ("user.a*", true),
            ("user.**", false), // intersects the deny
            ("user.*.secret", false),
            ("order.*", false), // not covered
            ("**", false),
        ];
        for (pattern, allowed) in cases {
            assert_eq!(
                Scope::Events.allows_pattern(&grants, &p(pattern), "subscribe"),
                allowed,
                "{pattern}"
            );
        }
        assert!(!Scope::Events.allows_pattern(&grants, &p("user.created"), "emit"));
    }
}
