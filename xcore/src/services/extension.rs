use std::{any::Any, fmt, ops::Deref, sync::Arc};

use async_trait::async_trait;

use crate::{
    CallContext, Health, PluginContext, Service, ServiceContext, ServiceError,
    plugin::handle::{Bind, NamedHandle},
    services::{AccessError, grant_mask},
};

/// A host service registered under a name of the host's choosing
/// ([`XcoreBuilder::extension`](crate::XcoreBuilder::extension)): the inner service's name is
/// ignored, everything else is delegated.
pub struct Extension<T> {
    name: String,
    inner: T,
}

impl<T> Extension<T> {
    pub(crate) fn new(name: &str, inner: T) -> Self {
        Self {
            name: name.to_owned(),
            inner,
        }
    }
}

impl<T> fmt::Debug for Extension<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extension")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<T: Service> Service for Extension<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn dependencies(&self) -> Vec<String> {
        self.inner.dependencies()
    }

    async fn init(&mut self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        self.inner.init(ctx).await
    }

    async fn start(&self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        self.inner.start(ctx).await
    }

    async fn health(&self) -> Health {
        self.inner.health().await
    }

    async fn shutdown(&self) -> Result<(), ServiceError> {
        self.inner.shutdown().await
    }
}

/// A plugin's typed handle on an extension: derefs to the host's service.
///
/// Obtained like every handle: `ctx.named::<ExtensionHandle<Email>>("email")` in a hook,
/// `cx.named::<ExtensionHandle<Email>>("email").await` in a call (see
/// [`plugin::handle`](crate::plugin::handle)). The plugin must declare the extension
/// (`services = ["email"]`) and hold `service:<name>: use`. A handle bound to a call carries
/// its [`call_context`](Self::call_context), for the extension's methods that take one.
pub struct ExtensionHandle<T> {
    ext: Arc<Extension<T>>,
    call: Option<CallContext>,
}

impl<T> ExtensionHandle<T> {
    /// The name the extension is registered under.
    pub fn name(&self) -> &str {
        &self.ext.name
    }

    /// The call this handle is bound to (its tenant, its trace); `None` for a plugin-level
    /// handle.
    pub fn call_context(&self) -> Option<&CallContext> {
        self.call.as_ref()
    }
}

impl<T> Clone for ExtensionHandle<T> {
    fn clone(&self) -> Self {
        Self {
            ext: self.ext.clone(),
            call: self.call.clone(),
        }
    }
}

impl<T> Deref for ExtensionHandle<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.ext.inner
    }
}

impl<T> fmt::Debug for ExtensionHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionHandle")
            .field("name", &self.ext.name)
            .field("tenant", &self.call.as_ref().map(CallContext::tenant))
            .finish()
    }
}

impl<T: Service> Bind for ExtensionHandle<T> {
    type Error = AccessError;

    async fn bind(&self, cx: &CallContext) -> Result<Self, AccessError> {
        Ok(Self {
            ext: self.ext.clone(),
            call: Some(cx.clone()),
        })
    }
}

/// The host extension registered as `name`
/// ([`XcoreBuilder::extension`](crate::XcoreBuilder::extension)), typed: the plugin declares
/// it and holds `service:<name>: use`.
impl<T: Service> NamedHandle for ExtensionHandle<T> {
    fn obtain_named(ctx: &PluginContext, name: &str) -> Result<Self, AccessError> {
        let (shared, service) = ctx.declared_service(name)?;
        grant_mask(ctx.identity(), shared.audit(), "service", name, &["use"])?;
        let any: Arc<dyn Any + Send + Sync> = service;
        any.downcast::<Extension<T>>()
            .map(|ext| Self { ext, call: None })
            .map_err(|_| AccessError::WrongType {
                service: name.to_owned(),
                expected: std::any::type_name::<T>(),
            })
    }
}
