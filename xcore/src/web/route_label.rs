//! [`RouteLabels`]: what a request is labelled with in spans and metrics — the plugin and the
//! route **template**, never the raw path (see [`observability`](crate::observability)).

use std::sync::Arc;

use http::Method;

use super::{
    admin::ENDPOINTS,
    prefix::{Prefix, first_segment},
};
use crate::Xcore;

/// The labels of one request: the plugin (`""` when none) and the route template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteLabel {
    pub(crate) plugin: Arc<str>,
    pub(crate) route: String,
}

/// Labels requests by the prefixes and the endpoints the running plugins declare.
#[derive(Debug)]
pub(crate) struct RouteLabels {
    pub(crate) xcore: Xcore,
    pub(crate) admin: Prefix,
    pub(crate) plugins: Prefix,
}

impl RouteLabels {
    /// The labels of a request for `path` with `method`:
    ///
    /// | path | plugin | route |
    /// |---|---|---|
    /// | an admin endpoint | `""` | `{admin}` + its template (`/xcore/ipc/{plugin}/{action}`) |
    /// | another admin path | `""` | `{admin}` |
    /// | a declared endpoint of a running plugin | the plugin | `{plugins}/<plugin>` + the endpoint's path |
    /// | another path of a plugin of the plan | the plugin | `{plugins}/<plugin>` |
    /// | a plugin not in the plan | `""` | `{plugins}` |
    /// | anything else | `""` | `""` |
    pub(crate) fn label(&self, method: &Method, path: &str) -> RouteLabel {
        let none = || Arc::<str>::from("");
        if let Some(rest) = self.admin.strip(path) {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            let template = ENDPOINTS
                .iter()
                .filter(|(_, template)| matches(template, rest))
                .max_by_key(|(m, template)| (*m == method.as_str(), literal_score(template)))
                .map_or("", |(_, template)| template);
            return RouteLabel {
                plugin: none(),
                route: format!("{}{template}", self.admin),
            };
        }
        let Some(rest) = self.plugins.strip(path) else {
            return RouteLabel {
                plugin: none(),
                route: String::new(),
            };
        };
        let Some((name, inner)) = first_segment(rest) else {
            return RouteLabel {
                plugin: none(),
                route: self.plugins.to_string(),
            };
        };
        let shared = &self.xcore.shared;
        let Some(identity) = shared.identities.iter().find(|i| i.name() == name) else {
            return RouteLabel {
                plugin: none(),
                route: self.plugins.to_string(),
            };
        };
        let live = shared.running(name).ok();
        let template = live
            .as_ref()
            .and_then(|live| live.routes())
            .and_then(|routes| {
                routes
                    .endpoints()
                    .iter()
                    .filter(|e| matches(e.path(), inner))
                    .max_by_key(|e| (e.method() == method, literal_score(e.path())))
                    .map(|e| e.path())
            });
        let route = match template {
            Some(template) if template != "/" => format!("{}/{name}{template}", self.plugins),
            _ => format!("{}/{name}", self.plugins),
        };
        RouteLabel {
            plugin: Arc::from(identity.name()),
            route,
        }
    }
}

/// Whether `path` matches `template`, segment by segment: `{name}` matches one non-empty
/// segment, `{*name}` the rest (at least one segment), anything else itself.
pub(crate) fn matches(template: &str, path: &str) -> bool {
    let mut template = segments(template);
    let mut path = segments(path);
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t.starts_with("{*") && t.ends_with('}') => return !p.is_empty(),
            (Some(t), Some(p)) if t.starts_with('{') && t.ends_with('}') => {
                if p.is_empty() {
                    return false;
                }
            }
            (Some(t), Some(p)) if t == p => {}
            _ => return false,
        }
    }
}

/// Segments of a path without its leading `/` (`/` has one empty segment).
fn segments(path: &str) -> std::str::Split<'_, char> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

/// How specific a template is: literal segments first win (as axum prefers static routes).
fn literal_score(template: &str) -> Vec<u8> {
    segments(template)
        .map(|s| match (s.starts_with("{*"), s.starts_with('{')) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 2,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_segments() {
        let cases = [
            ("/users/{id}", "/users/42", true),
            ("/users/{id}", "/users/", false),
            ("/users/{id}", "/users", false),
            ("/users/{id}", "/users/42/x", false),
            ("/users", "/users", true),
            ("/users", "/users/", false),
            ("/", "/", true),
            ("/", "/x", false),
            ("/files/{*path}", "/files/a/b/c", true),
            ("/files/{*path}", "/files", false),
            ("", "", true),
            ("/ipc/{plugin}/{action}", "/ipc/p/a", true),
        ];
        for (template, path, expected) in cases {
            assert_eq!(matches(template, path), expected, "{template} vs {path}");
        }
    }

    #[test]
    fn literal_segments_are_preferred() {
        assert!(literal_score("/users/me") > literal_score("/users/{id}"));
        assert!(literal_score("/users/{id}") > literal_score("/users/{*rest}"));
    }
}
