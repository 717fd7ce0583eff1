//! [`CacheService`], the `cache` node of the container.

use std::{fmt, sync::Arc, time::Instant};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{
    CacheBackendKind, CacheError, CacheOptions, CacheStats,
    backend::{Backend, Store},
    flight::Flights,
    handle::{Access, Cache, Core},
    key::check_namespace,
    memory::MemoryBackend,
    ops::OpCounts,
};
use crate::{Health, Service, ServiceContext, ServiceError, permissions::Audit};

/// The cache service, named `cache`: memory (the default), Redis, or tiered (memory over
/// Redis), as [`CacheOptions::backend`] says.
///
/// Register it with [`XcoreBuilder::service`](crate::XcoreBuilder::service); plugins that
/// declare `services = ["cache"]` get handles with
/// `ctx.named::<Cache>(namespace)` ([`plugin::handle`](crate::plugin::handle)). It is cheap to clone and clones share
/// everything, so a host can keep one to reach the cache itself ([`handle`](Self::handle),
/// [`stats`](Self::stats)). It belongs to one `Xcore`: its `shutdown` stops what its `init`
/// started.
///
/// - `init` validates the options and, for `redis` and `tiered`, opens the pool and pings the
///   server: a server that is down fails the boot with a message naming the URL and the
///   error. `tiered` also subscribes to the invalidation channel.
/// - `health` is healthy with the counters for `memory`; for `redis` and `tiered` it is a
///   `PING` under the command timeout (and `tiered` is degraded while its invalidation
///   subscription is down, when its L1 is bypassed).
/// - `shutdown` stops the invalidation subscriber of `tiered`.
///
/// ```
/// use xcore::prelude::*;
/// use xcore::services::cache::{CacheOptions, CacheService, Ttl};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = CacheService::new(CacheOptions::default());
/// let xcore = Xcore::builder().without_registered().service(cache.clone()).build()?;
/// xcore.boot().await?;
///
/// let jobs = cache.handle("jobs")?;
/// jobs.set("last", &42, Ttl::Default).await?;
/// assert_eq!(jobs.get::<i32>("last").await?, Some(42));
/// assert_eq!(cache.stats().hits, 1);
/// xcore.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CacheService {
    inner: Arc<Inner>,
}

struct Inner {
    options: CacheOptions,
    core: OnceCell<Arc<Core>>,
}

impl fmt::Debug for CacheService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("backend", &self.inner.options.backend)
            .field("ready", &self.inner.core.initialized())
            .finish_non_exhaustive()
    }
}

impl CacheService {
    /// A service for `options`, to register in an `Xcore` (which opens it during boot).
    ///
    /// A valid memory cache is usable at once; a Redis or tiered one after `init` (or use
    /// [`connect`](Self::connect)).
    pub fn new(options: CacheOptions) -> Self {
        let ready =
            (options.backend == CacheBackendKind::Memory && options.check().is_ok()).then(|| {
                Arc::new(core(
                    &options,
                    Store::Memory(MemoryBackend::new(options.max_size)),
                ))
            });
        Self {
            inner: Arc::new(Inner {
                core: OnceCell::new_with(ready),
                options,
            }),
        }
    }

    /// A service for `options`, opened now (what `init` does): for hosts and tests that use
    /// the cache without an `Xcore`.
    pub async fn connect(options: CacheOptions) -> Result<Self, CacheError> {
        let service = Self::new(options);
        service.open().await?;
        Ok(service)
    }

    /// The options.
    pub fn options(&self) -> &CacheOptions {
        &self.inner.options
    }

    /// Whether the service is open (handles can be had).
    pub fn is_ready(&self) -> bool {
        self.inner.core.initialized()
    }

    async fn open(&self) -> Result<&Arc<Core>, CacheError> {
        self.inner
            .core
            .get_or_try_init(|| async {
                let options = &self.inner.options;
                options.check()?;
                let store = open_store(options).await?;
                Ok(Arc::new(core(options, store)))
            })
            .await
    }

    fn ready(&self) -> Result<&Arc<Core>, CacheError> {
        self.inner
            .core
            .get()
            .ok_or_else(|| CacheError::Unavailable {
                message:
                    "the cache service is not open yet: boot the `Xcore` it is registered in, \
                      or open it with `CacheService::connect`"
                        .into(),
            })
    }

    /// An unrestricted handle on `namespace` for the host (every action allowed), tenant
    /// `default`. Plugins get theirs from `ctx.named::<Cache>(namespace)`.
    pub fn handle(&self, namespace: &str) -> Result<Cache, CacheError> {
        check_namespace(namespace)?;
        Ok(Cache::new(self.ready()?.clone(), Access::host(), namespace))
    }

    /// A plugin's handle: `mask` is what its grants allow.
    pub(crate) fn plugin_handle(
        &self,
        namespace: &str,
        plugin: &str,
        mask: u8,
        audit: Arc<Audit>,
    ) -> Result<Cache, CacheError> {
        Ok(Cache::new(
            self.ready()?.clone(),
            Access::plugin(plugin, mask, audit),
            namespace,
        ))
    }

    /// The counters since the service opened (zeros before).
    pub fn stats(&self) -> CacheStats {
        self.inner
            .core
            .get()
            .map(|core| core.store.stats())
            .unwrap_or_default()
    }
}

fn core(options: &CacheOptions, store: Store) -> Core {
    Core {
        store,
        prefix: options.prefix.clone(),
        default_ttl: std::time::Duration::from_secs(options.ttl),
        flights: Flights::default(),
        ops: OpCounts::default(),
    }
}

#[cfg(feature = "redis")]
async fn open_store(options: &CacheOptions) -> Result<Store, CacheError> {
    use super::{redis::RedisBackend, tiered::TieredBackend};
    Ok(match options.backend {
        CacheBackendKind::Memory => Store::Memory(MemoryBackend::new(options.max_size)),
        CacheBackendKind::Redis => Store::Redis(RedisBackend::connect(&options.redis).await?),
        CacheBackendKind::Tiered => Store::Tiered(
            TieredBackend::connect(
                &options.redis,
                &options.prefix,
                options.max_size,
                std::time::Duration::from_secs(options.ttl),
            )
            .await?,
        ),
    })
}

#[cfg(not(feature = "redis"))]
async fn open_store(options: &CacheOptions) -> Result<Store, CacheError> {
    match options.backend {
        CacheBackendKind::Memory => Ok(Store::Memory(MemoryBackend::new(options.max_size))),
        other => Err(CacheError::InvalidOptions {
            message: format!(
                "`services.cache.backend` is `{}`, but xcore was built without its `redis` \
                 feature; enable it, or use `memory`",
                if other == CacheBackendKind::Redis {
                    "redis"
                } else {
                    "tiered"
                }
            ),
        }),
    }
}

#[async_trait]
impl Service for CacheService {
    fn name(&self) -> &str {
        "cache"
    }

    async fn init(&mut self, _ctx: &ServiceContext) -> Result<(), ServiceError> {
        self.open().await?;
        Ok(())
    }

    async fn health(&self) -> Health {
        let core = match self.ready() {
            Ok(core) => core,
            Err(e) => return Health::unhealthy(e.to_string()),
        };
        let stats = core.store.stats();
        if matches!(core.store, Store::Memory(_)) {
            return Health::healthy_with(format!("memory: {stats}"));
        }
        let started = Instant::now();
        if let Err(e) = core.store.ping().await {
            return Health::unhealthy(e.to_string());
        }
        let took = started.elapsed();
        #[cfg(feature = "redis")]
        if let Store::Tiered(t) = &core.store
            && !t.subscribed()
        {
            return Health::degraded(format!(
                "PING in {took:?}, but the invalidation subscription is down: the L1 cache is \
                 bypassed until it is back; {stats}"
            ));
        }
        Health::healthy_with(format!("PING in {took:?}; {stats}"))
    }

    fn sample_metrics(&self, metrics: &crate::observability::Metrics) {
        if let Some(core) = self.inner.core.get() {
            let backend = match self.inner.options.backend {
                CacheBackendKind::Memory => "memory",
                CacheBackendKind::Redis => "redis",
                CacheBackendKind::Tiered => "tiered",
            };
            core.ops.report(metrics, backend);
        }
    }

    async fn shutdown(&self) -> Result<(), ServiceError> {
        #[cfg(feature = "redis")]
        if let Some(core) = self.inner.core.get()
            && let Store::Tiered(t) = &core.store
        {
            t.stop().await;
        }
        Ok(())
    }
}
