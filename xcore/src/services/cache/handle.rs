//! [`Cache`], the namespaced, tenant-scoped, typed handle on the cache service.

use std::{
    any::type_name, error::Error as StdError, fmt, future::Future, sync::Arc, time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};

use super::{
    CacheError, KeyTtl, Ttl,
    backend::{Backend, Store},
    flight::{self, Flights, Join},
    key::{FullKey, check_key, check_pattern, escape_glob, scope},
    lru::Blob,
    ops::{Op, OpCounts},
};
use crate::{
    CallContext, TenantId,
    permissions::{Audit, DenialKind},
};

/// What every handle of one service shares: the backend, the key prefix, the default TTL and
/// the flights of `get_or_set`.
pub(crate) struct Core {
    pub(crate) store: Store,
    pub(crate) prefix: String,
    pub(crate) default_ttl: Duration,
    pub(crate) flights: Flights,
    pub(crate) ops: OpCounts,
}

const READ: u8 = 1;
const WRITE: u8 = 2;
const DELETE: u8 = 4;

/// Who holds a handle and what its grants allow (bits `READ`, `WRITE`, `DELETE`).
pub(crate) struct Access {
    plugin: Option<String>,
    mask: u8,
    audit: Option<Arc<Audit>>,
}

impl Access {
    /// The host: everything allowed.
    pub(crate) fn host() -> Self {
        Self {
            plugin: None,
            mask: READ | WRITE | DELETE,
            audit: None,
        }
    }

    /// A plugin whose grants allow `mask` (bit 0 read, 1 write, 2 delete, as
    /// `grant_mask(…, &["read", "write", "delete"])` computes it).
    pub(crate) fn plugin(name: &str, mask: u8, audit: Arc<Audit>) -> Self {
        Self {
            plugin: Some(name.to_owned()),
            mask,
            audit: Some(audit),
        }
    }
}

/// A plugin's (or the host's) handle on one namespace of the cache, for one tenant.
///
/// Every key it touches is stored as `<prefix>:<tenant>:<namespace>:<key>`, for every
/// operation (`get_or_set`, `mget`, `mset`, `incr`, `keys` and `clear` included), so two
/// namespaces or two tenants never see each other's entries. Values are JSON (serde): a value
/// comes back with the type it was written with (the string `"123"` stays a string; read it as
/// the type it was written as).
///
/// A plugin obtains one with `ctx.named::<Cache>(namespace)`, or bound to the call it serves
/// (the call's tenant) with `cx.named::<Cache>(namespace).await`
/// ([`plugin::handle`](crate::plugin::handle)), checked
/// against its grants on `cache.<namespace>`; each operation is checked again:
///
/// | action | operations |
/// |---|---|
/// | `read` | `get`, `exists`, `ttl`, `mget`, `keys` |
/// | `write` | `set`, `incr`, `mset` |
/// | `delete` | `delete`, `delete_pattern`, `clear` |
/// | `read` and `write` | `get_or_set` |
///
/// A refused operation fails with [`CacheError::PermissionDenied`] and is recorded in the
/// audit. The handle is cheap to clone; [`for_tenant`](Self::for_tenant) gives a copy for
/// another tenant.
///
/// ```
/// use std::time::Duration;
/// use xcore::services::cache::{CacheOptions, CacheService, KeyTtl, Ttl};
/// use xcore::TenantId;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = CacheService::connect(CacheOptions::default()).await?;
/// let sessions = service.handle("sessions")?;
///
/// sessions.set("token", &"123", Ttl::Default).await?;
/// assert_eq!(sessions.get::<String>("token").await?, Some("123".to_owned()));
/// assert_eq!(sessions.incr("hits", 2).await?, 2);
/// assert!(matches!(sessions.ttl("token").await?, KeyTtl::Expires(_)));
///
/// // Another tenant sees nothing of it.
/// let acme = sessions.for_tenant(&TenantId::new("acme")?);
/// assert_eq!(acme.get::<String>("token").await?, None);
///
/// let n: u32 = sessions
///     .get_or_set("answer", Ttl::After(Duration::from_secs(60)), || async { Ok::<_, std::io::Error>(42) })
///     .await?;
/// assert_eq!(n, 42);
/// assert_eq!(sessions.keys("*").await?, ["answer", "hits", "token"]);
/// assert_eq!(sessions.clear().await?, 3);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Cache {
    core: Arc<Core>,
    access: Arc<Access>,
    namespace: Arc<str>,
    tenant: TenantId,
    scope: Arc<str>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("plugin", &self.access.plugin)
            .field("namespace", &self.namespace)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A handle on `namespace` (already validated) for the tenant `default`.
    pub(crate) fn new(core: Arc<Core>, access: Access, namespace: &str) -> Self {
        let tenant = TenantId::default();
        let scope = scope(&core.prefix, &tenant, namespace);
        Self {
            core,
            access: Arc::new(access),
            namespace: Arc::from(namespace),
            tenant,
            scope: Arc::from(scope),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The tenant whose keys this handle reaches.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The plugin holding the handle (`None` for the host).
    pub fn plugin(&self) -> Option<&str> {
        self.access.plugin.as_deref()
    }

    /// A copy of this handle for `tenant`: same namespace, same grants.
    #[must_use]
    pub fn for_tenant(&self, tenant: &TenantId) -> Cache {
        Cache {
            core: self.core.clone(),
            access: self.access.clone(),
            namespace: self.namespace.clone(),
            tenant: tenant.clone(),
            scope: Arc::from(scope(&self.core.prefix, tenant, &self.namespace)),
        }
    }

    /// A copy of this handle for the tenant of the call `cx`.
    #[must_use]
    pub fn for_call(&self, cx: &CallContext) -> Cache {
        self.for_tenant(cx.tenant())
    }

    #[inline]
    fn allow(&self, bit: u8) -> Result<(), CacheError> {
        if self.access.mask & bit != 0 {
            return Ok(());
        }
        Err(self.deny(bit))
    }

    #[cold]
    fn deny(&self, bit: u8) -> CacheError {
        let action = match bit {
            READ => "read",
            WRITE => "write",
            _ => "delete",
        };
        let plugin = self.access.plugin.as_deref().unwrap_or("host");
        let resource = format!("cache.{}", self.namespace);
        if let Some(audit) = &self.access.audit {
            audit.record(plugin, &resource, action, DenialKind::Permission);
        }
        CacheError::PermissionDenied {
            plugin: plugin.to_owned(),
            resource,
            action: action.to_owned(),
        }
    }

    /// The stored key of `key`, validated, for a single-key operation.
    #[inline]
    fn key(&self, key: &str) -> Result<FullKey, CacheError> {
        check_key(key)?;
        Ok(FullKey::new(&self.scope, key))
    }

    /// The stored key of `key`, validated, owned (for multi-key operations).
    fn full(&self, key: &str) -> Result<String, CacheError> {
        check_key(key)?;
        let mut full = String::with_capacity(self.scope.len() + key.len());
        full.push_str(&self.scope);
        full.push_str(key);
        Ok(full)
    }

    /// The stored-key glob of `pattern`, validated; the scope part escaped.
    fn full_pattern(&self, pattern: &str) -> Result<String, CacheError> {
        check_pattern(pattern)?;
        let mut full = escape_glob(&self.scope);
        full.push_str(pattern);
        Ok(full)
    }

    fn resolve(&self, ttl: Ttl) -> Result<Option<Duration>, CacheError> {
        ttl.resolve(self.core.default_ttl)
    }

    /// Puts the caller's key back in errors that carry a stored key.
    fn rekey(err: CacheError, key: &str) -> CacheError {
        match err {
            CacheError::NotAnInteger { .. } => CacheError::NotAnInteger {
                key: key.to_owned(),
            },
            CacheError::Overflow { .. } => CacheError::Overflow {
                key: key.to_owned(),
            },
            other => other,
        }
    }

    /// The value at `key`, decoded as `T`; `None` if there is none (or it expired).
    ///
    /// Needs `read`. Fails with [`CacheError::Serialization`] if the stored JSON is not a `T`.
    #[inline]
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        self.allow(READ)?;
        let full = self.key(key)?;
        match self.core.ops.read(self.core.store.get(&full).await)? {
            Some(blob) => decode(key, &blob).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `value` at `key`, living `ttl`.
    ///
    /// Needs `write`. `Ttl::After(Duration::ZERO)` is rejected ([`Ttl`] says why).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Ttl,
    ) -> Result<(), CacheError> {
        self.allow(WRITE)?;
        let full = self.key(key)?;
        let ttl = self.resolve(ttl)?;
        let blob = encode(key, value)?;
        let done = self.core.store.set(&full, blob, ttl).await;
        self.core.ops.done(Op::Set, done)
    }

    /// Deletes `key`; whether it existed. Needs `delete`.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.allow(DELETE)?;
        let full = self.key(key)?;
        let done = self.core.store.delete(&full).await;
        self.core.ops.done(Op::Delete, done)
    }

    /// Whether `key` holds a value. Needs `read`.
    pub async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        self.allow(READ)?;
        let full = self.key(key)?;
        let done = self.core.store.exists(&full).await;
        self.core.ops.done(Op::Exists, done)
    }

    /// Adds `by` (which may be negative) to the integer at `key` and returns the result.
    ///
    /// A missing key counts as 0 and is created **without expiry**; an existing key keeps its
    /// TTL (as Redis `INCRBY` does). Needs `write`. Fails with [`CacheError::NotAnInteger`] if
    /// the key holds something else than an integer, and [`CacheError::Overflow`] past the
    /// `i64` range.
    pub async fn incr(&self, key: &str, by: i64) -> Result<i64, CacheError> {
        self.allow(WRITE)?;
        let full = self.key(key)?;
        let done = self.core.store.incr(&full, by).await;
        self.core
            .ops
            .done(Op::Incr, done)
            .map_err(|e| Self::rekey(e, key))
    }

    /// How long `key` has left. Needs `read`.
    pub async fn ttl(&self, key: &str) -> Result<KeyTtl, CacheError> {
        self.allow(READ)?;
        let full = self.key(key)?;
        let done = self.core.store.ttl(&full).await;
        self.core.ops.done(Op::Ttl, done)
    }

    /// The values at `keys`, in order, each decoded as `T` (`None` where missing), in one round
    /// trip. Needs `read`.
    pub async fn mget<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<T>>, CacheError> {
        self.allow(READ)?;
        let full = keys
            .iter()
            .map(|k| self.full(k.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let blobs = self.core.ops.read_many(self.core.store.mget(&full).await)?;
        keys.iter()
            .zip(blobs)
            .map(|(k, blob)| blob.map(|b| decode(k.as_ref(), &b)).transpose())
            .collect()
    }

    /// Writes every `(key, value)`, all living `ttl`, in one round trip (one `MULTI` on Redis).
    /// Needs `write`.
    pub async fn mset<T: Serialize, K: AsRef<str>>(
        &self,
        entries: &[(K, T)],
        ttl: Ttl,
    ) -> Result<(), CacheError> {
        self.allow(WRITE)?;
        let ttl = self.resolve(ttl)?;
        let encoded = entries
            .iter()
            .map(|(k, v)| Ok((self.full(k.as_ref())?, encode(k.as_ref(), v)?)))
            .collect::<Result<Vec<_>, CacheError>>()?;
        let done = self.core.store.mset(&encoded, ttl).await;
        self.core.ops.done(Op::Mset, done)
    }

    /// The keys of this namespace and tenant matching the glob `pattern` (Redis rules: `*`,
    /// `?`, `[abc]`, `\` to escape), without the prefix, sorted. Needs `read`.
    ///
    /// On Redis this walks the keyspace with `SCAN` (never `KEYS`): it does not block the
    /// server, but costs a round trip per 500 keys scanned.
    pub async fn keys(&self, pattern: &str) -> Result<Vec<String>, CacheError> {
        self.allow(READ)?;
        let full = self.full_pattern(pattern)?;
        let done = self.core.store.keys(&full).await;
        let keys = self.core.ops.done(Op::Keys, done)?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&*self.scope).map(str::to_owned))
            .collect())
    }

    /// Deletes the keys of this namespace and tenant matching the glob `pattern`; how many.
    /// Needs `delete`.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        self.allow(DELETE)?;
        let full = self.full_pattern(pattern)?;
        let done = self.core.store.delete_pattern(&full).await;
        self.core.ops.done(Op::DeletePattern, done)
    }

    /// Deletes every key of this namespace **and tenant** (nothing else: not other namespaces,
    /// not other tenants, not keys xcore does not own); how many. Needs `delete`.
    pub async fn clear(&self) -> Result<u64, CacheError> {
        self.allow(DELETE)?;
        let full = format!("{}*", escape_glob(&self.scope));
        let done = self.core.store.delete_pattern(&full).await;
        self.core.ops.done(Op::DeletePattern, done)
    }

    /// The value at `key`; on a miss, runs `factory`, stores its value for `ttl` and returns it.
    ///
    /// **Single flight**: concurrent misses of one key (in this service) run the factory
    /// once; the others wait for its outcome (its value, or its error). A stored JSON `null`
    /// is a hit: with `T = Option<U>`, a cached `None` is returned without running the factory.
    /// If the factory fails, nothing is stored and the error comes back as
    /// [`CacheError::Factory`]. Needs `read` and `write`.
    pub async fn get_or_set<T, F, Fut, E>(
        &self,
        key: &str,
        ttl: Ttl,
        factory: F,
    ) -> Result<T, CacheError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.allow(READ)?;
        self.allow(WRITE)?;
        let full = self.key(key)?;
        let ttl = self.resolve(ttl)?;
        let mut factory = Some(factory);
        loop {
            if let Some(blob) = self.core.ops.read(self.core.store.get(&full).await)? {
                return decode(key, &blob);
            }
            let leader = match self.core.flights.join(&full) {
                Join::Follower(rx) => match flight::wait(rx).await {
                    Some(outcome) => return decode(key, &outcome?),
                    None => continue,
                },
                Join::Leader(leader) => leader,
            };
            let Some(factory) = factory.take() else {
                // Unreachable: the factory is taken once, by the only leader this call becomes.
                return Err(CacheError::Factory {
                    key: key.to_owned(),
                    message: "the factory was already used".into(),
                });
            };
            let outcome = match factory().await {
                Ok(value) => match encode(key, &value) {
                    Ok(blob) => match self
                        .core
                        .ops
                        .done(Op::Set, self.core.store.set(&full, blob.clone(), ttl).await)
                    {
                        Ok(()) => Ok((value, blob)),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
                Err(e) => Err(CacheError::Factory {
                    key: key.to_owned(),
                    message: e.into().to_string(),
                }),
            };
            return match outcome {
                Ok((value, blob)) => {
                    leader.finish(Ok(blob));
                    Ok(value)
                }
                Err(e) => {
                    leader.finish(Err(e.clone()));
                    Err(e)
                }
            };
        }
    }
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Blob, CacheError> {
    serde_json::to_vec(value)
        .map(Blob::from)
        .map_err(|e| CacheError::Serialization {
            key: key.to_owned(),
            direction: "encoded".into(),
            message: e.to_string(),
        })
}

#[inline]
fn decode<T: DeserializeOwned>(key: &str, blob: &[u8]) -> Result<T, CacheError> {
    serde_json::from_slice(blob).map_err(|e| CacheError::Serialization {
        key: key.to_owned(),
        direction: format!("decoded as `{}`", type_name::<T>()),
        message: e.to_string(),
    })
}
