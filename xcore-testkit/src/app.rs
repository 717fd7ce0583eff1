use std::time::Duration;

use serde_json::Value;
use xcore::{
    BootError, BootReport, BuildError, CallContext, CallError, Manifest, Plugin, Service,
    ShutdownReport, Xcore, XcoreBuilder,
};

use crate::{FakePlugin, TestClient};

/// The admin token of [`TestApp::client`].
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token";

/// Builds a [`TestApp`]. Unlike [`Xcore::builder`], it starts with **no** registered plugin
/// (choose them with [`plugins`](Self::plugins)), so tests in one binary do not see each
/// other's plugins, and with short timeouts (5 s load and start, 2 s stop).
#[must_use]
#[derive(Debug)]
pub struct TestAppBuilder {
    inner: XcoreBuilder,
    errors: Vec<xcore::ManifestError>,
}

impl TestAppBuilder {
    /// Uses these registered (`#[plugin]`) plugins.
    pub fn plugins<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner = self.inner.only_registered(names);
        self
    }

    /// Adds a plugin by hand.
    pub fn plugin<P: Plugin>(mut self, manifest: Manifest, plugin: P) -> Self {
        self.inner = self.inner.plugin(manifest, plugin);
        self
    }

    /// Adds a [`FakePlugin`].
    pub fn fake_plugin(mut self, plugin: FakePlugin) -> Self {
        match plugin.into_parts() {
            Ok((manifest, plugin)) => self.inner = self.inner.plugin(manifest, plugin),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Adds a service (a [`FakeService`](crate::FakeService), say).
    pub fn service<S: Service>(mut self, service: S) -> Self {
        self.inner = self.inner.service(service);
        self
    }

    /// Anything else: edits the underlying [`XcoreBuilder`].
    pub fn configure(mut self, edit: impl FnOnce(XcoreBuilder) -> XcoreBuilder) -> Self {
        self.inner = edit(self.inner);
        self
    }

    /// Builds the `Xcore` without booting it.
    ///
    /// # Panics
    ///
    /// If a fake plugin's manifest is invalid: that is a bug in the test.
    pub fn build(self) -> Result<Xcore, BuildError> {
        if let Some(e) = self.errors.first() {
            panic!("invalid FakePlugin manifest: {e}");
        }
        self.inner.build()
    }

    /// Builds and boots.
    ///
    /// # Panics
    ///
    /// If the build fails (an invalid registration is a bug in the test).
    pub async fn boot(self) -> Result<TestApp, BootError> {
        let xcore = self
            .build()
            .unwrap_or_else(|e| panic!("building the TestApp failed: {e}"));
        let report = xcore.boot().await?;
        Ok(TestApp { xcore, report })
    }
}

/// A booted [`Xcore`] for a test.
#[derive(Debug)]
pub struct TestApp {
    xcore: Xcore,
    report: BootReport,
}

impl TestApp {
    /// Starts a builder.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            inner: Xcore::builder()
                .without_registered()
                .load_timeout(Duration::from_secs(5))
                .start_timeout(Duration::from_secs(5))
                .stop_timeout(Duration::from_secs(2)),
            errors: Vec::new(),
        }
    }

    /// The `Xcore` under test.
    pub fn xcore(&self) -> &Xcore {
        &self.xcore
    }

    /// The boot report.
    pub fn report(&self) -> &BootReport {
        &self.report
    }

    /// Calls a plugin as the host.
    pub async fn call(
        &self,
        plugin: &str,
        action: &str,
        payload: Value,
    ) -> Result<Value, CallError> {
        self.xcore.call(plugin, action, payload).await
    }

    /// Calls a plugin with an explicit context.
    pub async fn call_with(
        &self,
        cx: CallContext,
        plugin: &str,
        action: &str,
        payload: Value,
    ) -> Result<Value, CallError> {
        self.xcore.call_with(cx, plugin, action, payload).await
    }

    /// A client of the web layer (no socket), with tenancy on (`X-Tenant-ID`) and the admin
    /// API guarded by the token `test-admin-token`.
    ///
    /// # Panics
    ///
    /// If the web layer cannot be built (a bug in the test).
    pub fn client(&self) -> TestClient {
        let mut tenancy = xcore::config::TenancyConfig::default();
        tenancy.enabled = true;
        let web = self
            .xcore
            .web()
            .tenancy(&tenancy)
            .admin_token(TEST_ADMIN_TOKEN)
            .build()
            .unwrap_or_else(|e| panic!("building the web layer failed: {e}"));
        TestClient::new(web)
    }

    /// Shuts down.
    pub async fn shutdown(self) -> ShutdownReport {
        self.xcore.shutdown().await
    }
}
