//! [`PluginContext::cache`]: how a plugin obtains its [`Cache`] handles.

use std::{any::Any, sync::Arc};

use super::{Cache, CacheService, key::check_namespace};
use crate::{PluginContext, services::AccessError};

impl PluginContext {
    /// The plugin's handle on the cache namespace `namespace`, for the tenant `default` (use
    /// [`Cache::for_tenant`] or [`Cache::for_call`] inside a call).
    ///
    /// The plugin must declare the service (`services = ["cache"]`) and hold a grant on
    /// `cache.<namespace>` for at least one of `read`, `write`, `delete`; each operation of the
    /// handle is checked against those grants again (see [`Cache`]). A namespace is 1 to 64
    /// ASCII letters, digits, `_` and `-`; another one is refused with
    /// [`AccessError::InvalidArgument`], naming the rule.
    pub fn cache(&self, namespace: &str) -> Result<Cache, AccessError> {
        let (shared, service) = self.declared_service("cache")?;
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
        let mask = crate::services::grant_mask(
            self.identity(),
            &shared.audit,
            "cache",
            namespace,
            &["read", "write", "delete"],
        )?;
        cache
            .plugin_handle(namespace, self.name(), mask, shared.audit.clone())
            .map_err(|e| AccessError::Unavailable {
                service: "cache".into(),
                reason: e.to_string(),
            })
    }
}
