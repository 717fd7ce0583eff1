//! [`Dispatch`]: the admin API first, then `/plugin/<name>/…` to the running plugin's routes.

use std::{
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response, Uri, uri::PathAndQuery};
use tower::Service;

use futures_util::FutureExt;
use tracing::Instrument;

use crate::{
    CallContext, CallError, ErrorCode,
    call::layers::catch_panic_message,
    runtime::{self, Instance, Pass, Refused, Way},
};

use super::{
    Body, HttpError, ResponseFuture,
    admin::Admin,
    layers::ready,
    prefix::{Prefix, first_segment},
};

/// Routes a request by its path, segment by segment: under the admin prefix to the admin
/// API (always first, so no plugin can shadow it), under the plugin prefix to the routes of
/// the running plugin named by the next segment (with the prefix and the name stripped from
/// the path it sees), anywhere else to a 404 envelope.
///
/// The plugin is looked up at request time: a plugin that failed, or has stopped, is a 503
/// (`unavailable`, `not_ready`); an unknown one, or one without routes, a 404.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    admin: Admin,
    plugins: Prefix,
}

impl Dispatch {
    pub(crate) fn new(admin: Admin, plugins: Prefix) -> Self {
        Self {
            state: Arc::new(State { admin, plugins }),
        }
    }

    fn plugin(&self, request: Request<Body>, rest_at: usize) -> ResponseFuture {
        let path = request.uri().path();
        let Some((name, _)) = first_segment(&path[rest_at..]) else {
            return ready(
                HttpError::not_found(format!(
                    "no plugin named in `{path}`; plugin routes are under `{}/<plugin>/…`",
                    self.state.plugins
                ))
                .into_response(),
            );
        };
        let shared = &self.state.admin.xcore.shared;
        let Some(slot) = shared.runtime().slot(name) else {
            return ready(absent(name, &shared.absent(name, None)).into_response());
        };
        // The running instance's gate, at once; a reload in progress (or an instance that
        // began to stop) takes the slow path, which waits for the new instance, and so does
        // a cluster-wide rate limit (a round trip to Redis).
        if let Some(instance) = slot
            .running()
            .filter(|i| !i.ctx.gate().rate_is_cluster_wide())
        {
            match instance.ctx.gate().admit(Way::Route) {
                Ok(pass) => return serve(instance, pass, request, rest_at),
                Err(err) if err.code() == ErrorCode::Unavailable => {}
                Err(err) => return ready(HttpError::from(err).public().into_response()),
            }
        }
        let xcore = self.state.admin.xcore.clone();
        let name = name.to_owned();
        Box::pin(async move {
            let shared = &xcore.shared;
            let Some(slot) = shared.runtime().slot(&name) else {
                return Ok(absent(&name, &shared.absent(&name, None)).into_response());
            };
            let cx = request
                .extensions()
                .get::<CallContext>()
                .cloned()
                .unwrap_or_else(CallContext::host);
            let wait = shared.swap_wait(&cx);
            match runtime::enter(slot, Way::Route, wait, &cx).await {
                Ok((instance, pass)) => serve(instance, pass, request, rest_at).await,
                Err(Refused::Limit(err)) => Ok(HttpError::from(err).public().into_response()),
                Err(Refused::Absent(live)) => {
                    Ok(absent(&name, &shared.absent(&name, Some(&live))).into_response())
                }
            }
        })
    }
}

/// Serves `request` by the routes of `instance`, admitted by its gate (`pass`): the call
/// context bound to the instance, then the routes' service under a [`RouteGuard`].
fn serve(
    instance: Arc<Instance>,
    pass: Pass,
    request: Request<Body>,
    rest_at: usize,
) -> ResponseFuture {
    let Some(routes) = instance.routes() else {
        return ready(
            HttpError::not_found(format!(
                "plugin `{}` serves no HTTP routes",
                instance.ctx.name()
            ))
            .into_response(),
        );
    };
    let mut request = match rewrite(request, rest_at) {
        Ok(request) => request,
        Err(err) => return ready(err.into_response()),
    };
    let gate = instance.ctx.gate();
    let span = match request.extensions_mut().get_mut::<CallContext>() {
        Some(cx) => {
            cx.set_scope(instance.ctx.clone());
            gate.span(Way::Route, cx)
        }
        None => gate.span(Way::Route, &CallContext::host()),
    };
    let limit = instance.ctx.manifest().timeout();
    let guard = RouteGuard {
        _pass: pass,
        instance: instance.clone(),
        limit,
        span,
    };
    routes.serve_guarded(request, guard)
}

/// What a route request admitted by a plugin's gate runs under: the manifest's timeout
/// (504 `timeout`), a panic answered 500 (`panicked`, with an error id; the cause is logged),
/// the gate's span; the pass is held until the response head is ready.
pub(crate) struct RouteGuard {
    _pass: Pass,
    instance: Arc<Instance>,
    limit: Duration,
    span: tracing::Span,
}

impl RouteGuard {
    /// Runs `response` (the routes' service's future) under the guard.
    pub(crate) async fn run(
        self,
        response: impl Future<Output = Response<Body>>,
    ) -> Result<Response<Body>, Infallible> {
        let RouteGuard {
            _pass,
            instance,
            limit,
            span,
        } = self;
        let guarded = async {
            let mut response = std::pin::pin!(AssertUnwindSafe(response).catch_unwind());
            // A route that answers at once never needs a timer (nor the clock).
            if let Poll::Ready(out) =
                std::future::poll_fn(|cx| Poll::Ready(response.as_mut().poll(cx))).await
            {
                return Ok(out);
            }
            tokio::time::timeout(limit, response).await
        };
        let outcome = guarded.instrument(span).await;
        drop(_pass);
        let plugin = instance.ctx.name();
        Ok(match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(panic)) => {
                let why = catch_panic_message(&*panic);
                HttpError::from(CallError::new(
                    ErrorCode::Panicked,
                    format!("plugin `{plugin}` panicked in a route: {why}"),
                ))
                .into_response()
            }
            Err(_) => HttpError::from(CallError::new(
                ErrorCode::Timeout,
                format!("plugin `{plugin}` did not answer within its timeout of {limit:?}"),
            ))
            .public()
            .into_response(),
        })
    }
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

/// The request as the plugin sees it: the path without the prefix and the plugin's name
/// (`/plugin/users/42?x=1` → `/42?x=1`; `/plugin/users` → `/`).
fn rewrite(request: Request<Body>, rest_at: usize) -> Result<Request<Body>, HttpError> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path();
    let inner = first_segment(&path[rest_at..]).map_or("/", |(_, inner)| inner);
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{inner}?{query}"),
        None => inner.to_owned(),
    };
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.path_and_query = Some(
        PathAndQuery::try_from(path_and_query)
            .map_err(|e| HttpError::bad_request(format!("invalid path: {e}")))?,
    );
    parts.uri =
        Uri::from_parts(uri).map_err(|e| HttpError::bad_request(format!("invalid URI: {e}")))?;
    Ok(Request::from_parts(parts, body))
}

impl Service<Request<Body>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        let path = request.uri().path();
        if let Some(rest) = self.state.admin.prefix.strip(path) {
            let rest = rest.to_owned();
            return self.state.admin.call(request, &rest);
        }
        if let Some(rest) = self.state.plugins.strip(path) {
            let rest_at = path.len() - rest.len();
            return self.plugin(request, rest_at);
        }
        ready(
            HttpError::not_found(format!(
                "no route `{path}`: plugins are under `{}/<plugin>/…`, the admin API under `{}`",
                self.state.plugins, self.state.admin.prefix
            ))
            .into_response(),
        )
    }
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
            let req = Request::builder().uri(from).body(Body::empty()).unwrap();
            let rest_at = "/plugin".len();
            let out = rewrite(req, rest_at).unwrap();
            assert_eq!(out.uri().path_and_query().unwrap().as_str(), to, "{from}");
        }
    }
}
