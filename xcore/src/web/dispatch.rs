//! [`Dispatch`]: the admin API first, then `/plugin/<name>/…` to the running plugin's routes.

use std::sync::Arc;

use http::{Request, Uri, uri::PathAndQuery};

use crate::{
    CallContext, CallError, ErrorCode,
    runtime::{self, Instance, Pass, Refused, Way},
};

use super::{
    Body, HttpError, ResponseFuture,
    admin::Admin,
    pipeline::{RouteGuard, Trace},
    prefix::{Prefix, first_segment},
};

/// Routes a request by its path, segment by segment: under the admin prefix to the admin
/// API (always first, so no plugin can shadow it), under the plugin prefix to the routes of
/// the running plugin named by the next segment (with the prefix and the name stripped from
/// the path it sees), anywhere else to a 404 envelope. Every way out finishes the request's
/// [`Trace`].
///
/// The plugin is looked up at request time: a plugin that failed, or has stopped, is a 503
/// (`unavailable`, `not_ready`); an unknown one, or one without routes, a 404.
#[derive(Debug)]
pub(crate) struct Dispatch {
    admin: Admin,
    plugins: Prefix,
}

impl Dispatch {
    pub(crate) fn new(admin: Admin, plugins: Prefix) -> Self {
        Self { admin, plugins }
    }

    /// Serves `request`, traced by `trace`.
    pub(crate) fn call(&self, request: Request<Body>, trace: Trace) -> ResponseFuture {
        let path = request.uri().path();
        if let Some(rest) = self.admin.prefix.strip(path) {
            let rest = rest.to_owned();
            let uri = request.uri().clone();
            return trace.after(uri, self.admin.call(request, &rest));
        }
        if let Some(rest) = self.plugins.strip(path) {
            let rest_at = path.len() - rest.len();
            return self.plugin(request, rest_at, trace);
        }
        let err = HttpError::not_found(format!(
            "no route `{path}`: plugins are under `{}/<plugin>/…`, the admin API under `{}`",
            self.plugins, self.admin.prefix
        ));
        trace.reject(err, request.uri())
    }

    fn plugin(&self, request: Request<Body>, rest_at: usize, trace: Trace) -> ResponseFuture {
        let path = request.uri().path();
        let Some((name, _)) = first_segment(&path[rest_at..]) else {
            let err = HttpError::not_found(format!(
                "no plugin named in `{path}`; plugin routes are under `{}/<plugin>/…`",
                self.plugins
            ));
            return trace.reject(err, request.uri());
        };
        let shared = &self.admin.xcore.shared;
        let Some(slot) = shared.runtime().slot(name) else {
            let err = absent(name, &shared.absent(name, None));
            return trace.reject(err, request.uri());
        };
        // The running instance's gate, at once; a reload in progress (or an instance that
        // began to stop) takes the slow path, which waits for the new instance, and so does
        // a cluster-wide rate limit (a round trip to Redis).
        if let Some(instance) = slot
            .running()
            .filter(|i| !i.ctx.gate().rate_is_cluster_wide())
        {
            match instance.ctx.gate().admit(Way::Route) {
                Ok(pass) => return serve(instance, pass, request, rest_at, trace),
                Err(err) if err.code() == ErrorCode::Unavailable => {}
                Err(err) => return trace.reject(HttpError::from(err).public(), request.uri()),
            }
        }
        let xcore = self.admin.xcore.clone();
        let name = name.to_owned();
        let uri = request.uri().clone();
        let span = trace.span().clone();
        let waited = async move {
            let shared = &xcore.shared;
            let Some(slot) = shared.runtime().slot(&name) else {
                let err = absent(&name, &shared.absent(&name, None));
                return trace.reject(err, request.uri()).await;
            };
            let cx = request
                .extensions()
                .get::<CallContext>()
                .cloned()
                .unwrap_or_else(CallContext::host);
            let wait = shared.swap_wait(&cx);
            let response = match runtime::enter(slot, Way::Route, wait, &cx).await {
                Ok((instance, pass)) => {
                    return serve(instance, pass, request, rest_at, trace).await;
                }
                Err(Refused::Limit(err)) => HttpError::from(err).public().into_response(),
                Err(Refused::Absent(live)) => {
                    absent(&name, &shared.absent(&name, Some(&live))).into_response()
                }
            };
            Ok(trace.finish(response, &uri))
        };
        Box::pin(tracing::Instrument::instrument(waited, span))
    }
}

/// Serves `request` by the routes of `instance`, admitted by its gate (`pass`): the call
/// context bound to the instance, then the routes' service under a [`RouteGuard`].
fn serve(
    instance: Arc<Instance>,
    pass: Pass,
    request: Request<Body>,
    rest_at: usize,
    trace: Trace,
) -> ResponseFuture {
    let Some(routes) = instance.routes() else {
        let err = HttpError::not_found(format!(
            "plugin `{}` serves no HTTP routes",
            instance.ctx.name()
        ));
        return trace.reject(err, request.uri());
    };
    let mut request = request;
    let uri = match rewrite(&mut request, rest_at) {
        Ok(sent) => sent,
        Err(err) => return trace.reject(err, request.uri()),
    };
    let gate = instance.ctx.gate();
    let span = {
        // The gate's span is a child of the request's.
        let _entered = (!trace.span().is_disabled()).then(|| trace.span().enter());
        match request.extensions_mut().get_mut::<CallContext>() {
            Some(cx) => {
                cx.set_scope(instance.ctx.clone());
                gate.span(Way::Route, cx)
            }
            None => gate.span(Way::Route, &CallContext::host()),
        }
    };
    let limit = instance.ctx.manifest().timeout();
    let guard = RouteGuard {
        pass,
        instance: instance.clone(),
        limit,
        span,
        trace,
        uri,
    };
    routes.serve_guarded(request, guard)
}

/// Why a plugin's routes cannot be served, for anyone on the network: the code and status
/// of the call error, without the list of plugins or the reason of a failure (the admin API
/// shows those).
fn absent(name: &str, err: &CallError) -> HttpError {
    match err.code() {
        ErrorCode::NotFound => {
            HttpError::from(CallError::new(err.code(), format!("no plugin `{name}`")))
        }
        ErrorCode::Unavailable => HttpError::from(CallError::new(
            err.code(),
            format!("plugin `{name}` is not running"),
        ))
        .public(),
        _ => HttpError::from(err),
    }
}

/// Makes the request the plugin sees: the path without the prefix and the plugin's name
/// (`/plugin/users/42?x=1` → `/42?x=1`; `/plugin/users` → `/`); returns the URI the client
/// sent (moved out, not copied).
fn rewrite(request: &mut Request<Body>, rest_at: usize) -> Result<Uri, HttpError> {
    let sent = request.uri();
    let path = sent.path();
    let inner = first_segment(&path[rest_at..]).map_or("/", |(_, inner)| inner);
    let query = sent.query();
    let mut path_and_query = String::with_capacity(inner.len() + query.map_or(0, |q| q.len() + 1));
    path_and_query.push_str(inner);
    if let Some(query) = query {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let path_and_query = PathAndQuery::try_from(path_and_query)
        .map_err(|e| HttpError::bad_request(format!("invalid path: {e}")))?;
    let uri = if sent.scheme().is_none() && sent.authority().is_none() {
        // Origin form (`GET /path HTTP/1.1`): the path is the URI.
        Uri::from(path_and_query)
    } else {
        let mut parts = http::uri::Parts::default();
        parts.scheme = sent.scheme().cloned();
        parts.authority = sent.authority().cloned();
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).map_err(|e| HttpError::bad_request(format!("invalid URI: {e}")))?
    };
    Ok(std::mem::replace(request.uri_mut(), uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_paths() {
        let cases = [
            ("/plugin/users/42?x=1", "/42?x=1"),
            ("/plugin/users", "/"),
            ("/plugin/users/", "/"),
            ("http://h:1/plugin/users/a/b", "/a/b"),
        ];
        for (from, to) in cases {
            let mut req = Request::builder().uri(from).body(Body::empty()).unwrap();
            let rest_at = "/plugin".len();
            let sent = rewrite(&mut req, rest_at).unwrap();
            assert_eq!(req.uri().path_and_query().unwrap().as_str(), to, "{from}");
            assert_eq!(sent.to_string(), from);
        }
    }
}
