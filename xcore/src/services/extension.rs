use std::{fmt, ops::Deref, sync::Arc};

use async_trait::async_trait;

use crate::{Health, Service, ServiceContext, ServiceError};

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
pub struct ExtensionHandle<T>(Arc<Extension<T>>);

impl<T> ExtensionHandle<T> {
    pub(crate) fn new(ext: Arc<Extension<T>>) -> Self {
        Self(ext)
    }

    /// The name the extension is registered under.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl<T> Clone for ExtensionHandle<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Deref for ExtensionHandle<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.inner
    }
}

impl<T> fmt::Debug for ExtensionHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ExtensionHandle")
            .field(&self.0.name)
            .finish()
    }
}
