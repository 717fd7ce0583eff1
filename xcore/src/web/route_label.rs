//! [`RouteLabels`]: what a request is labelled with in spans and metrics — the plugin and the
//! route **template**, never the raw path (see [`observability`](crate::observability)).

use std::{
    collections::HashMap,
    hash::BuildHasherDefault,
    sync::{Arc, RwLock},
    time::Duration,
};

use http::Method;

use super::{
    admin::ENDPOINTS,
    prefix::{Prefix, first_segment},
};
use crate::{Xcore, observability::RouteMeter};

/// Labels requests by the prefixes and the endpoints the running plugins declare, and keeps
/// one [`RouteMeter`] per label (so a request costs no string building and no registry
/// lookup once its route has been seen).
#[derive(Debug)]
pub(crate) struct RouteLabels {
    xcore: Xcore,
    admin: Prefix,
    plugins: Prefix,
    /// One per admin endpoint, then one for any other admin path.
    admin_meters: Box<[Arc<RouteMeter>]>,
    /// The admin endpoints' templates compiled, with their specificity, in `ENDPOINTS` order.
    admin_templates: Box<[(Template, Vec<u8>)]>,
    /// A plugin not in the plan, or no plugin named.
    unknown_plugin: Arc<RouteMeter>,
    /// Outside both prefixes.
    outside: Arc<RouteMeter>,
    /// The clock of the meters.
    clock: quanta::Clock,
    /// The running plugins seen so far (bounded by the plan).
    running: RwLock<
        HashMap<Arc<str>, Arc<PluginRoutes>, BuildHasherDefault<crate::runtime::NameHasher>>,
    >,
}

#[derive(Debug)]
struct PluginRoutes {
    /// `{plugins}/<plugin>`: paths no declared endpoint matches.
    mount: Arc<RouteMeter>,
    endpoints: Box<[EndpointLabel]>,
    /// The instance whose routes these are: once it is gone (stopped, reloaded), they are
    /// computed again from the next instance.
    instance: std::sync::Weak<crate::runtime::Instance>,
}

impl PluginRoutes {
    /// The meter of the most specific declared endpoint matching `path` (the request's method
    /// first), else the mount's.
    fn pick(&self, method: &Method, path: &str) -> &Arc<RouteMeter> {
        self.endpoints
            .iter()
            .filter(|e| e.template.matches(path))
            .max_by(|a, b| (a.method == method, &a.score).cmp(&(b.method == method, &b.score)))
            .map_or(&self.mount, |e| &e.meter)
    }
}

#[derive(Debug)]
struct EndpointLabel {
    method: Method,
    template: Template,
    score: Vec<u8>,
    meter: Arc<RouteMeter>,
}

impl RouteLabels {
    pub(crate) fn new(xcore: Xcore, admin: Prefix, plugins: Prefix) -> Self {
        let metrics = xcore.metrics().clone();
        // One clock for every meter of this web layer (calibrated once).
        let clock = metrics.clock();
        let none: Arc<str> = Arc::from("");
        let meter = |plugin: &Arc<str>, route: String| {
            Arc::new(RouteMeter::new(&metrics, plugin.clone(), Arc::from(route)))
        };
        let admin_meters = ENDPOINTS
            .iter()
            .map(|(_, template)| meter(&none, format!("{admin}{template}")))
            .chain([meter(&none, admin.to_string())])
            .collect();
        Self {
            unknown_plugin: meter(&none, plugins.to_string()),
            clock: clock.clone(),
            outside: meter(&none, String::new()),
            admin_meters,
            admin_templates: ENDPOINTS
                .iter()
                .map(|(_, template)| (Template::new(template), literal_score(template)))
                .collect(),
            running: RwLock::default(),
            xcore,
            admin,
            plugins,
        }
    }

    /// The labels (and meter) of a request for `path` with `method`:
    ///
    /// | path | plugin | route |
    /// |---|---|---|
    /// | an admin endpoint | `""` | `{admin}` + its template (`/xcore/ipc/{plugin}/{action}`) |
    /// | another admin path | `""` | `{admin}` |
    /// | a declared endpoint of a running plugin | the plugin | `{plugins}/<plugin>` + the endpoint's path (the most specific match, the request's method first) |
    /// | another path of a plugin of the plan | the plugin | `{plugins}/<plugin>` |
    /// | a plugin not in the plan | `""` | `{plugins}` |
    /// | anything else | `""` | `""` |
    pub(crate) fn label(&self, method: &Method, path: &str) -> Arc<RouteMeter> {
        self.with_meter(method, path, Arc::clone)
    }

    /// Records a request for `path` with `method` answered `status` after `took`, on the
    /// meter [`label`](Self::label) gives, without taking a reference to it.
    pub(crate) fn record(&self, method: &Method, path: &str, status: u16, took: Duration) {
        self.with_meter(method, path, |meter| meter.record(status, took));
    }

    /// The clock of the meters.
    pub(crate) fn clock(&self) -> &quanta::Clock {
        &self.clock
    }

    /// Runs `f` on the meter of a request for `path` with `method` (see [`label`](Self::label)).
    fn with_meter<R>(
        &self,
        method: &Method,
        path: &str,
        f: impl FnOnce(&Arc<RouteMeter>) -> R,
    ) -> R {
        // Plugin paths first: most of the traffic.
        if let Some(rest) = self.plugins.strip(path) {
            let Some((name, inner)) = first_segment(rest) else {
                return f(&self.unknown_plugin);
            };
            {
                let running = self.running.read().unwrap_or_else(|p| p.into_inner());
                if let Some(routes) = running.get(name)
                    && routes.instance.strong_count() > 0
                {
                    return f(routes.pick(method, inner));
                }
            }
            return match self.first_seen(name) {
                Some(routes) => f(routes.pick(method, inner)),
                None => f(&self.unknown_plugin),
            };
        }
        if let Some(rest) = self.admin.strip(path) {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            let at = ENDPOINTS
                .iter()
                .zip(&self.admin_templates)
                .enumerate()
                .filter(|(_, (_, (template, _)))| template.matches(rest))
                .max_by(|(_, (a, (_, a_score))), (_, (b, (_, b_score)))| {
                    (a.0 == method.as_str(), a_score).cmp(&(b.0 == method.as_str(), b_score))
                })
                .map_or(ENDPOINTS.len(), |(i, _)| i);
            return f(&self.admin_meters[at]);
        }
        f(&self.outside)
    }

    /// The routes of plugin `name` the first time it is asked for: cached while its instance
    /// runs (an instance's routes are fixed); the mount alone, uncached, for a plugin of the plan
    /// that does not run; `None` for a name not in the plan.
    fn first_seen(&self, name: &str) -> Option<Arc<PluginRoutes>> {
        let shared = &self.xcore.shared;
        let identity = shared.identities().iter().find(|i| i.name() == name)?;
        let metrics = self.xcore.metrics();
        let plugin: Arc<str> = Arc::from(identity.name());
        let mount = format!("{}/{name}", self.plugins);
        let meter =
            |route: String| Arc::new(RouteMeter::new(metrics, plugin.clone(), Arc::from(route)));
        let Some(live) = shared.runtime().running(name) else {
            return Some(Arc::new(PluginRoutes {
                mount: meter(mount),
                endpoints: Box::new([]),
                instance: std::sync::Weak::new(),
            }));
        };
        let endpoints = live
            .routes()
            .map(|routes| routes.endpoints())
            .unwrap_or_default()
            .iter()
            .map(|e| EndpointLabel {
                method: e.method().clone(),
                template: Template::new(e.path()),
                score: literal_score(e.path()),
                meter: meter(match e.path() {
                    "/" | "" => mount.clone(),
                    template => format!("{mount}{template}"),
                }),
            })
            .collect();
        let routes = Arc::new(PluginRoutes {
            mount: meter(mount),
            endpoints,
            instance: Arc::downgrade(&live),
        });
        let mut running = self.running.write().unwrap_or_else(|p| p.into_inner());
        running.insert(plugin, routes.clone());
        Some(routes)
    }
}

/// Whether `path` matches `template`, segment by segment: `{name}` matches one non-empty
/// segment, `{name}.ext` one that ends with `.ext` after at least one character, `{*name}`
/// the rest (at least one segment), anything else itself.
#[cfg(test)]
fn matches(template: &str, path: &str) -> bool {
    Template::new(template).matches(path)
}

/// A route template compiled once: its segments.
#[derive(Debug)]
pub(crate) struct Template {
    segments: Box<[Segment]>,
}

#[derive(Debug)]
enum Segment {
    /// Itself.
    Literal(Box<str>),
    /// `{name}`: one non-empty segment.
    Param,
    /// `{name}.ext`: a non-empty capture, then the suffix.
    ParamWithSuffix(Box<str>),
    /// `{*name}`: the rest, at least one segment.
    Rest,
}

impl Template {
    pub(crate) fn new(template: &str) -> Self {
        let segments = segments(template)
            .map(|t| {
                if t.starts_with("{*") && t.ends_with('}') {
                    Segment::Rest
                } else if t.starts_with('{') && t.ends_with('}') {
                    Segment::Param
                } else if t.starts_with('{') && t.contains('}') {
                    let suffix = t.split_once('}').map_or("", |(_, suffix)| suffix);
                    Segment::ParamWithSuffix(suffix.into())
                } else {
                    Segment::Literal(t.into())
                }
            })
            .collect();
        Self { segments }
    }

    /// Whether `path` matches (see [`matches`]).
    pub(crate) fn matches(&self, path: &str) -> bool {
        let mut path = Segments::new(path);
        let mut template = self.segments.iter();
        loop {
            match (template.next(), path.next()) {
                (None, None) => return true,
                (Some(Segment::Rest), Some(p)) => return !p.is_empty(),
                (Some(Segment::Param), Some(p)) => {
                    if p.is_empty() {
                        return false;
                    }
                }
                (Some(Segment::ParamWithSuffix(suffix)), Some(p)) => {
                    if p.len() <= suffix.len() || !p.ends_with(&**suffix) {
                        return false;
                    }
                }
                (Some(Segment::Literal(t)), Some(p)) if **t == *p => {}
                _ => return false,
            }
        }
    }
}

/// The segments of a path without its leading `/`, as `split('/')` gives them (`/` has one
/// empty segment), found with a plain byte scan (paths are short).
struct Segments<'a> {
    rest: Option<&'a str>,
}

impl<'a> Segments<'a> {
    fn new(path: &'a str) -> Self {
        Self {
            rest: Some(path.strip_prefix('/').unwrap_or(path)),
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == b'/') {
            Some(at) => {
                self.rest = Some(&rest[at + 1..]);
                Some(&rest[..at])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
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
            ("/openapi/{plugin}.json", "/openapi/p.json", true),
            ("/openapi/{plugin}.json", "/openapi/.json", false),
            ("/openapi/{plugin}.json", "/openapi/p.yaml", false),
            ("/openapi/{plugin}.json", "/openapi/p", false),
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
