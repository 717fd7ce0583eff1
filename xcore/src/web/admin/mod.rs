//! The admin API: plugins, the boot report, health, calls.
//!
//! | endpoint | auth | answers |
//! |---|---|---|
//! | `GET {admin}/health/live` | none | 200 `{"status":"ok","result":{"live":true}}` |
//! | `GET {admin}/health/ready` | none | 200 `{"ready":true,"status":…,"nodes":[{"name":…,"status":…}]}` when not unhealthy, else 503 `unavailable` with the same in `details`: status names only |
//! | `GET {admin}/health` | token | the health report: every node's status, message, timing |
//! | `GET {admin}` | token | the endpoints |
//! | `GET {admin}/plugins` | token | every plugin: name, live state (`running`, `reloading`, `stopped`, `failed`, …), reason, version, wave, routes |
//! | `POST {admin}/plugins/<plugin>/stop` | token | [`Xcore::stop_plugin`](crate::Xcore::stop_plugin): 200 with the report (`stopped`: dependents first); 409 `conflict` when not running; 404 `not_found` |
//! | `POST {admin}/plugins/<plugin>/start` | token | [`Xcore::start_plugin`](crate::Xcore::start_plugin): 200 with the report (`started`: the plugin, then dependents); 409 `conflict` (running, a dependency down, no factory); 503 `unavailable` when the fresh instance fails |
//! | `POST {admin}/plugins/<plugin>/reload` | token | [`Xcore::reload_plugin`](crate::Xcore::reload_plugin): 200 with the report; 409 `conflict` (not running, no factory, the config no longer loads); 503 `unavailable` when the fresh instance fails |
//! | `POST {admin}/plugins/<plugin>/restart` | token | [`Xcore::restart_plugin`](crate::Xcore::restart_plugin): 200 with the report |
//! | `GET {admin}/boot` | token | the boot report (503 `not_ready` before boot) |
//! | `GET {admin}/metrics` | token | the Prometheus text (`text/plain; version=0.0.4`) of [`Metrics::prometheus`](crate::observability::Metrics), gauges sampled first; 404 `not_found` without that exporter |
//! | `POST {admin}/ipc/<plugin>/<action>` | token | the call's envelope |
//! | `GET {admin}/openapi.json` | token | the OpenAPI 3.1 document (feature `openapi`, see [`openapi`](crate::web::openapi)); 404 `not_found` without the feature |
//! | `GET {admin}/openapi/<plugin>.json` | token | one plugin's document; 404 `not_found` (no such plugin, or without the feature), 503 `unavailable` (not running) |

mod auth;
mod ipc;
mod views;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::json;

pub(crate) use self::auth::AdminToken;
use super::{
    Body, HttpError, ResponseFuture, json_response, ok_response, pipeline::ready, prefix::Prefix,
};
use crate::{HealthStatus, Xcore, runtime::LifecycleAction};

/// The admin API of one `Xcore`, matched before plugin routes.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub(crate) xcore: Xcore,
    pub(crate) token: Option<AdminToken>,
    pub(crate) prefix: Prefix,
    pub(crate) plugin_prefix: Prefix,
    /// The OpenAPI documents, built once per set of running instances.
    #[cfg(feature = "openapi")]
    pub(crate) openapi: std::sync::Arc<crate::web::openapi::OpenApiDocs>,
}

/// The endpoints, for `GET {admin}` and the route labels.
pub(crate) const ENDPOINTS: [(&str, &str); 11] = [
    ("GET", ""),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/health"),
    ("GET", "/plugins"),
    ("GET", "/boot"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/openapi/{plugin}.json"),
    ("POST", "/ipc/{plugin}/{action}"),
    ("POST", "/plugins/{plugin}/{action}"),
];

impl Admin {
    /// Serves `request`, whose path under the admin prefix is `rest` (`""` or `/…`).
    pub(crate) fn call(&self, request: Request<Body>, rest: &str) -> ResponseFuture {
        let rest = match rest.strip_suffix('/') {
            Some(trimmed) => trimmed,
            None => rest,
        };
        let method = request.method().clone();
        match rest {
            "/health/live" => {
                return only(&method, Method::GET, || {
                    ready(ok_response(json!({ "live": true })))
                });
            }
            "/health/ready" => {
                return only(&method, Method::GET, || {
                    let xcore = self.xcore.clone();
                    Box::pin(async move { Ok(readiness(&xcore).await) })
                });
            }
            _ => {}
        }
        if let Err(err) = AdminToken::check(self.token.as_ref(), request.headers()) {
            return ready(err.into_response());
        }
        match rest {
            "" => only(&method, Method::GET, || {
                ready(ok_response(self.endpoints()))
            }),
            "/health" => only(&method, Method::GET, || {
                let xcore = self.xcore.clone();
                Box::pin(async move { Ok(ok_response(views::health(&xcore.health().await))) })
            }),
            "/plugins" => only(&method, Method::GET, || {
                ready(ok_response(views::plugins(
                    &self.xcore,
                    &self.plugin_prefix,
                )))
            }),
            "/boot" => only(&method, Method::GET, || {
                ready(match self.xcore.boot_report() {
                    Some(report) => ok_response(views::boot(&report)),
                    None => HttpError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not_ready",
                        "xcore has not booted (or its boot failed)",
                    )
                    .public()
                    .into_response(),
                })
            }),
            "/metrics" => only(&method, Method::GET, || ready(metrics(&self.xcore))),
            "/openapi.json" => only(&method, Method::GET, || ready(self.openapi(None))),
            _ if openapi_target(rest).is_some() => {
                only(&method, Method::GET, || ready(self.openapi(openapi_target(rest))))
            }
            _ if rest.starts_with("/plugins/") => match lifecycle_target(rest) {
                Some((plugin, action)) => {
                    let plugin = plugin.to_owned();
                    let xcore = self.xcore.clone();
                    only(&method, Method::POST, || {
                        Box::pin(async move { Ok(change(&xcore, &plugin, action).await) })
                    })
                }
                None => ready(
                    HttpError::not_found(format!(
                        "no admin endpoint `{}{rest}`; plugins change with `POST {}/plugins/<plugin>/stop|start|reload|restart`",
                        self.prefix, self.prefix
                    ))
                    .into_response(),
                ),
            },
            _ => match ipc_target(rest) {
                Some((plugin, action)) => {
                    let (plugin, action) = (plugin.to_owned(), action.to_owned());
                    let xcore = self.xcore.clone();
                    only(&method, Method::POST, || {
                        Box::pin(async move { Ok(ipc::call(xcore, request, plugin, action).await) })
                    })
                }
                None => ready(
                    HttpError::not_found(format!(
                        "no admin endpoint `{}{rest}`; see `GET {}`",
                        self.prefix, self.prefix
                    ))
                    .into_response(),
                ),
            },
        }
    }

    /// `GET {admin}/openapi.json` (`plugin` `None`) or `GET {admin}/openapi/<plugin>.json`:
    /// the cached document; 404 without feature `openapi`.
    fn openapi(&self, plugin: Option<&str>) -> Response<Body> {
        #[cfg(feature = "openapi")]
        {
            let document = match plugin {
                None => self.openapi.full(),
                Some(name) => self.openapi.plugin(name),
            };
            match document {
                Ok(bytes) => {
                    let mut response = Response::new(Body::from(bytes));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                }
                Err(err) => err.into_response(),
            }
        }
        #[cfg(not(feature = "openapi"))]
        {
            let _ = plugin;
            HttpError::not_found("no OpenAPI document: xcore is built without feature `openapi`")
                .into_response()
        }
    }

    fn endpoints(&self) -> serde_json::Value {
        let list: Vec<_> = ENDPOINTS
            .iter()
            .map(|(method, path)| json!({ "method": method, "path": format!("{}{path}", self.prefix) }))
            .collect();
        json!({ "endpoints": list })
    }
}

/// `<plugin>/<action>` of `/ipc/<plugin>/<action>`.
fn ipc_target(rest: &str) -> Option<(&str, &str)> {
    let (plugin, action) = rest.strip_prefix("/ipc/")?.split_once('/')?;
    (!plugin.is_empty() && !action.is_empty() && !action.contains('/')).then_some((plugin, action))
}

/// `<plugin>` of `/openapi/<plugin>.json`.
fn openapi_target(rest: &str) -> Option<&str> {
    let plugin = rest.strip_prefix("/openapi/")?.strip_suffix(".json")?;
    (!plugin.is_empty() && !plugin.contains('/')).then_some(plugin)
}

/// `<plugin>` and the action of `/plugins/<plugin>/<action>`.
fn lifecycle_target(rest: &str) -> Option<(&str, LifecycleAction)> {
    let (plugin, action) = rest.strip_prefix("/plugins/")?.split_once('/')?;
    if plugin.is_empty() {
        return None;
    }
    Some((plugin, LifecycleAction::from_name(action)?))
}

/// `POST {admin}/plugins/<plugin>/<action>`: the change's report, or its error (the admin
/// sees the message: the endpoint needs the token).
async fn change(xcore: &Xcore, plugin: &str, action: LifecycleAction) -> Response<Body> {
    let outcome = match action {
        LifecycleAction::Stop => xcore.stop_plugin(plugin).await,
        LifecycleAction::Start => xcore.start_plugin(plugin).await,
        LifecycleAction::Reload => xcore.reload_plugin(plugin).await,
        LifecycleAction::Restart => xcore.restart_plugin(plugin).await,
    };
    match outcome {
        Ok(report) => ok_response(report.to_json()),
        Err(err) => HttpError::from(crate::CallError::from(&err))
            .public()
            .into_response(),
    }
}

/// Serves with `serve` when the method is `allowed`, else 405 with `allow`.
fn only(
    method: &Method,
    allowed: Method,
    serve: impl FnOnce() -> ResponseFuture,
) -> ResponseFuture {
    if *method == allowed {
        return serve();
    }
    let mut response =
        HttpError::method_not_allowed(format!("{method} is not allowed here; use {allowed}"))
            .into_response();
    if let Ok(value) = HeaderValue::from_str(allowed.as_str()) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    ready(response)
}

/// `GET {admin}/metrics`: the gauges sampled, then the Prometheus text; 404 when the
/// `Xcore` records into no Prometheus exporter of its own.
fn metrics(xcore: &Xcore) -> Response<Body> {
    #[cfg(feature = "prometheus")]
    if let Some(text) = {
        xcore.sample_metrics();
        xcore.metrics().render_prometheus()
    } {
        let mut response = Response::new(Body::from(text));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return response;
    }
    let _ = xcore;
    HttpError::not_found(
        "no Prometheus exporter: build the Xcore with `.metrics(Metrics::prometheus())` \
         (feature `prometheus`)",
    )
    .into_response()
}

/// `GET {admin}/health/ready`: whether xcore is ready, and each node's status name — no
/// messages (they may name servers or hold counts): those need the token (`/health`).
async fn readiness(xcore: &Xcore) -> Response<Body> {
    let report = xcore.health().await;
    let ready = report.status() != HealthStatus::Unhealthy;
    let view = views::readiness(&report, ready);
    if ready {
        ok_response(view)
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "status": "error",
                "code": "unavailable",
                "message": "xcore is not ready",
                "details": view,
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipc_targets() {
        assert_eq!(ipc_target("/ipc/p/a"), Some(("p", "a")));
        assert_eq!(ipc_target("/ipc/p"), None);
        assert_eq!(ipc_target("/ipc//a"), None);
        assert_eq!(ipc_target("/ipc/p/a/b"), None);
        assert_eq!(ipc_target("/ipcx/p/a"), None);
    }

    #[test]
    fn openapi_targets() {
        assert_eq!(openapi_target("/openapi/p.json"), Some("p"));
        assert_eq!(openapi_target("/openapi/.json"), None);
        assert_eq!(openapi_target("/openapi/p"), None);
        assert_eq!(openapi_target("/openapi/a/b.json"), None);
        assert_eq!(openapi_target("/openapi.json"), None);
    }

    #[test]
    fn lifecycle_targets() {
        assert_eq!(
            lifecycle_target("/plugins/p/stop"),
            Some(("p", LifecycleAction::Stop))
        );
        assert_eq!(
            lifecycle_target("/plugins/p/reload"),
            Some(("p", LifecycleAction::Reload))
        );
        assert_eq!(lifecycle_target("/plugins/p/explode"), None);
        assert_eq!(lifecycle_target("/plugins//stop"), None);
        assert_eq!(lifecycle_target("/plugins/p"), None);
        assert_eq!(lifecycle_target("/plugins/p/stop/x"), None);
    }
}
