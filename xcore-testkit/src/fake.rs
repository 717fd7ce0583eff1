use std::time::Duration;

use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, Health, Manifest, ManifestBuilder, Plugin, PluginContext,
    PluginError, Service, ServiceContext, ServiceError, StartedPlugin, async_trait,
};

use crate::HookLog;

/// What a fake hook does.
#[derive(Debug, Clone, Default)]
pub enum Behavior {
    /// Succeeds at once.
    #[default]
    Succeed,
    /// Sleeps, then succeeds.
    Sleep(Duration),
    /// Fails with this message.
    Fail(String),
    /// Panics with this message.
    Panic(String),
    /// Never returns (until the hook's timeout drops it).
    Hang,
}

impl Behavior {
    async fn run(&self, log: Option<&HookLog>, entry: String) -> Result<(), PluginError> {
        if let Some(log) = log {
            log.push(entry);
        }
        match self {
            Behavior::Succeed => Ok(()),
            Behavior::Sleep(d) => {
                tokio::time::sleep(*d).await;
                Ok(())
            }
            Behavior::Fail(msg) => Err(PluginError::msg(msg)),
            Behavior::Panic(msg) => panic!("{msg}"),
            Behavior::Hang => std::future::pending().await,
        }
    }
}

/// A service whose hooks behave as told and are written to a [`HookLog`] (`"db: init"`,
/// `"db: start"`, `"db: users stopping"`, `"db: shutdown"`).
#[derive(Debug, Clone)]
pub struct FakeService {
    name: String,
    dependencies: Vec<String>,
    init: Behavior,
    start: Behavior,
    shutdown: Behavior,
    health: Option<Health>,
    refused: Vec<String>,
    log: Option<HookLog>,
}

impl FakeService {
    /// A service that succeeds at everything.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            dependencies: Vec::new(),
            init: Behavior::Succeed,
            start: Behavior::Succeed,
            shutdown: Behavior::Succeed,
            health: Some(Health::healthy()),
            refused: Vec::new(),
            log: None,
        }
    }

    /// Refuses these plugins in `on_plugin_start` (as a scheduler refuses a plugin whose
    /// declared jobs it cannot take).
    pub fn refuse_plugins<I, S>(mut self, plugins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.refused.extend(plugins.into_iter().map(Into::into));
        self
    }

    /// What `health` answers.
    pub fn health(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }

    /// `health` never answers (until the health timeout drops it).
    pub fn health_hangs(mut self) -> Self {
        self.health = None;
        self
    }

    /// Services it depends on.
    pub fn depends_on<I, S>(mut self, deps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.dependencies.extend(deps.into_iter().map(Into::into));
        self
    }

    /// What `init` does.
    pub fn on_init(mut self, behavior: Behavior) -> Self {
        self.init = behavior;
        self
    }

    /// What `start` does.
    pub fn on_start(mut self, behavior: Behavior) -> Self {
        self.start = behavior;
        self
    }

    /// What `shutdown` does.
    pub fn on_shutdown(mut self, behavior: Behavior) -> Self {
        self.shutdown = behavior;
        self
    }

    /// Writes `"<name>: init"` etc. to `log`.
    pub fn log(mut self, log: &HookLog) -> Self {
        self.log = Some(log.clone());
        self
    }
}

#[async_trait]
impl Service for FakeService {
    fn name(&self) -> &str {
        &self.name
    }

    fn dependencies(&self) -> Vec<String> {
        self.dependencies.clone()
    }

    async fn init(&mut self, _: &ServiceContext) -> Result<(), ServiceError> {
        self.init
            .run(self.log.as_ref(), format!("{}: init", self.name))
            .await
    }

    async fn start(&self, _: &ServiceContext) -> Result<(), ServiceError> {
        self.start
            .run(self.log.as_ref(), format!("{}: start", self.name))
            .await
    }

    async fn health(&self) -> Health {
        match &self.health {
            Some(h) => h.clone(),
            None => std::future::pending().await,
        }
    }

    async fn on_plugin_start(&self, plugin: &StartedPlugin<'_>) -> Result<(), ServiceError> {
        if let Some(log) = &self.log {
            log.push(format!("{}: {} started", self.name, plugin.name()));
        }
        if self.refused.iter().any(|r| r == plugin.name()) {
            return Err(ServiceError::msg(format!(
                "refuses plugin `{}`",
                plugin.name()
            )));
        }
        Ok(())
    }

    async fn on_plugin_stop(&self, plugin: &str) {
        if let Some(log) = &self.log {
            log.push(format!("{}: {plugin} stopping", self.name));
        }
    }

    async fn shutdown(&self) -> Result<(), ServiceError> {
        self.shutdown
            .run(self.log.as_ref(), format!("{}: shutdown", self.name))
            .await
    }
}

/// A plugin whose hooks behave as told, with a few actions useful in tests:
///
/// | action | payload | does |
/// |---|---|---|
/// | `ping` | — | answers `"pong"` |
/// | `echo` | any | answers the payload |
/// | `tenant` | — | answers the call's tenant |
/// | `sleep` | `{"ms": u64}` | sleeps, then answers `"slept"` |
/// | `fail` | `{"message": str}` | returns a `handler_error` |
/// | `panic` | — | panics |
/// | `call` | `{"target", "action", "payload"}` | calls another plugin, passing the call's context on |
pub struct FakePlugin {
    manifest: ManifestBuilder,
    on_load: Behavior,
    on_start: Behavior,
    on_stop: Behavior,
    log: Option<HookLog>,
    ctx: Option<PluginContext>,
}

impl FakePlugin {
    /// A plugin at version 1.0.0 that succeeds at everything.
    pub fn new(name: &str) -> Self {
        Self::versioned(name, "1.0.0")
    }

    /// A plugin at `version`.
    pub fn versioned(name: &str, version: &str) -> Self {
        Self {
            manifest: Manifest::builder(name, version),
            on_load: Behavior::Succeed,
            on_start: Behavior::Succeed,
            on_stop: Behavior::Succeed,
            log: None,
            ctx: None,
        }
    }

    /// Edits the manifest (grants, limits, ...).
    pub fn manifest(mut self, edit: impl FnOnce(ManifestBuilder) -> ManifestBuilder) -> Self {
        self.manifest = edit(self.manifest);
        self
    }

    /// Services it needs.
    pub fn services<I, S>(self, services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.manifest(|m| m.services(services))
    }

    /// Plugins it requires (`name` or `name@REQ`).
    pub fn requires<I, S>(self, requires: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.manifest(|m| m.requires(requires))
    }

    /// What `on_load` does.
    pub fn on_load(mut self, behavior: Behavior) -> Self {
        self.on_load = behavior;
        self
    }

    /// What `on_start` does.
    pub fn on_start(mut self, behavior: Behavior) -> Self {
        self.on_start = behavior;
        self
    }

    /// What `on_stop` does.
    pub fn on_stop(mut self, behavior: Behavior) -> Self {
        self.on_stop = behavior;
        self
    }

    /// Writes `"<name>: on_load"` etc. to `log`.
    pub fn log(mut self, log: &HookLog) -> Self {
        self.log = Some(log.clone());
        self
    }

    /// Splits into the manifest and the plugin, for `XcoreBuilder::plugin`.
    pub fn into_parts(self) -> Result<(Manifest, Self), xcore::ManifestError> {
        let manifest = self.manifest.clone().build()?;
        Ok((manifest, self))
    }
}

impl std::fmt::Debug for FakePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePlugin").finish_non_exhaustive()
    }
}

const ACTIONS: &[&str] = &["ping", "echo", "tenant", "sleep", "fail", "panic", "call"];

#[async_trait]
impl Actions for FakePlugin {
    fn action_names(&self) -> &'static [&'static str] {
        ACTIONS
    }

    async fn handle(
        &self,
        action: &str,
        payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "ping" => Ok(json!("pong")),
            "echo" => Ok(payload),
            "tenant" => Ok(json!(cx.tenant().as_str())),
            "sleep" => {
                let ms = payload["ms"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(json!("slept"))
            }
            "fail" => Err(CallError::handler(
                payload["message"].as_str().unwrap_or("failed"),
            )),
            "panic" => panic!("fake plugin asked to panic"),
            "call" => {
                let ctx = self
                    .ctx
                    .as_ref()
                    .ok_or_else(|| CallError::internal("the plugin has not loaded"))?;
                let target = payload["target"].as_str().unwrap_or_default();
                let action = payload["action"].as_str().unwrap_or_default();
                ctx.plugin(target)
                    .call(cx, action, payload["payload"].clone())
                    .await
            }
            other => Err(CallError::unknown_action(other, ACTIONS)),
        }
    }
}

#[async_trait]
impl Plugin for FakePlugin {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.ctx = Some(ctx.clone());
        self.on_load
            .run(self.log.as_ref(), format!("{}: on_load", ctx.name()))
            .await
    }

    async fn on_start(&self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.on_start
            .run(self.log.as_ref(), format!("{}: on_start", ctx.name()))
            .await
    }

    async fn on_stop(&self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.on_stop
            .run(self.log.as_ref(), format!("{}: on_stop", ctx.name()))
            .await
    }
}
