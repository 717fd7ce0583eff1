//! How a plugin obtains its [`Cache`] handles: [`NamedHandle`] (`ctx.named::<Cache>("ns")`)
//! and [`Bind`] (`cx.named::<Cache>("ns").await`, for the call's tenant).

use std::{any::Any, sync::Arc};

use super::{Cache, CacheError, CacheService, key::check_namespace};
use crate::{
    CallContext, PluginContext, Xcore,
    plugin::handle::{Bind, NamedHandle, NamedHostHandle},
    services::{AccessError, grant_mask},
};

/// The plugin's handle on the cache namespace `name`.
///
/// The plugin must declare the service (`services = ["cache"]`) and hold a grant on
/// `cache.<namespace>` for at least one of `read`, `write`, `delete`; each operation of the
/// handle is checked against those grants again (see [`Cache`]). A namespace is 1 to 64
/// ASCII letters, digits, `_` and `-`; another one is refused with
/// [`AccessError::InvalidArgument`], naming the rule.
impl NamedHandle for Cache {
    fn obtain_named(ctx: &PluginContext, namespace: &str) -> Result<Self, AccessError> {
        let (shared, service) = ctx.declared_service("cache")?;
        check_namespace(namespace).map_err(|e| AccessError::InvalidArgument {
            service: "cache".into(),
            reason: e.to_string(),
        })?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let cache = any
            .downcast::<CacheService>()
            .map_err(|_| AccessError::WrongType {
                service: "cache".into(),
                expected: std::any::type_name::<CacheService>(),
            })?;
        let mask = grant_mask(
            ctx.identity(),
            shared.audit(),
            "cache",
            namespace,
            &["read", "write", "delete"],
        )?;
        cache
            .plugin_handle(namespace, ctx.name(), mask, shared.audit().clone())
            .map_err(|e| AccessError::Unavailable {
                service: "cache".into(),
                reason: e.to_string(),
            })
    }
}

/// The host's handle on the namespace `name` (not subject to grants), for tenant `default`:
/// `xcore.named::<Cache>("sessions")`. Available once the `cache` service has loaded.
impl NamedHostHandle for Cache {
    type Error = CacheError;

    fn obtain_host_named(xcore: &Xcore, namespace: &str) -> Result<Self, CacheError> {
        let unavailable = |message: &str| CacheError::Unavailable {
            message: message.to_owned(),
        };
        let service = xcore
            .shared
            .service("cache")
            .ok_or_else(|| unavailable("no `cache` service is loaded"))?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let service = any
            .downcast::<CacheService>()
            .map_err(|_| unavailable("the `cache` service is not xcore's CacheService"))?;
        service.handle(namespace)
    }
}

/// The same namespace, the call's tenant's keys.
impl Bind for Cache {
    type Error = AccessError;

    async fn bind(&self, cx: &CallContext) -> Result<Self, AccessError> {
        Ok(self.for_tenant(cx.tenant()))
    }
}
