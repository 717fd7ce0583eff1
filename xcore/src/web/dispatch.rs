//! [`Dispatch`]: the admin API first, then `/plugin/<name>/…` to the running plugin's routes.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response, Uri, uri::PathAndQuery};
use tower::Service;

use crate::{CallError, ErrorCode};

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
        let live = match self.state.admin.xcore.shared.running(name) {
            Ok(live) => live,
            Err(err) => return ready(absent(name, &err).into_response()),
        };
        let Some(routes) = live.routes() else {
            return ready(
                HttpError::not_found(format!("plugin `{name}` serves no HTTP routes"))
                    .into_response(),
            );
        };
        match rewrite(request, rest_at) {
            Ok(request) => routes.serve(request),
            Err(err) => ready(err.into_response()),
        }
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
