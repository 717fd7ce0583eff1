//! The one typed way to a service: [`Handle`], [`NamedHandle`] and [`Bind`].
//!
//! A plugin obtains every handle — built-in services and host extensions alike — through its
//! [`PluginContext`] (in hooks, for tenant `default`) or through the [`CallContext`] of the
//! call it serves (in actions, routes, event handlers, jobs and tasks, for the call's tenant):
//!
//! | handle | plugin-level, in hooks | bound to the call | binding adds | grant checked once |
//! |---|---|---|---|---|
//! | [`Db`](crate::services::db::Db) | `ctx.handle::<Db>()` (`default`), `ctx.named::<Db>("reports")` | `cx.handle::<Db>().await`, `cx.named::<Db>(..)` | the tenant's database (provisioned on first use) | `db.<name>: read` / `write` |
//! | [`Cache`](crate::services::cache::Cache) | `ctx.named::<Cache>("sessions")` | `cx.named::<Cache>("sessions").await` | the tenant's keys | `cache.<namespace>: read` / `write` / `delete` |
//! | [`Worker`](crate::services::worker::Worker) | `ctx.handle::<Worker>()` | `cx.handle::<Worker>().await` | tasks sent for the tenant, in the trace | `service:worker: execute` |
//! | [`Scheduler`](crate::services::scheduler::Scheduler) | `ctx.handle::<Scheduler>()` | `cx.handle::<Scheduler>().await` | jobs of the tenant | `service:scheduler: schedule` |
//! | [`Events`](crate::events::Events) | `ctx.handle::<Events>()` | `cx.handle::<Events>().await` | [`Events::publish`](crate::events::Events::publish) carries the tenant and trace | per emit and subscription |
//! | [`ExtensionHandle<T>`](crate::services::ExtensionHandle) | `ctx.named::<ExtensionHandle<T>>("email")` | `cx.named::<ExtensionHandle<T>>("email").await` | [`call_context`](crate::services::ExtensionHandle::call_context) | `service:<name>: use` |
//!
//! Where the call context comes from:
//!
//! | code | its `CallContext` |
//! |---|---|
//! | an action (`#[action] async fn f(&self, cx: &CallContext, ..)`) | `cx` |
//! | a route (axum) | the `CallContext` extractor, or [`Bound<H>`](crate::web::axum::Bound) |
//! | an event handler | [`Event::context`](crate::events::Event::context) |
//! | a job | [`JobContext::call_context`](crate::services::scheduler::JobContext::call_context) |
//! | a task | [`TaskContext::call_context`](crate::services::worker::TaskContext::call_context) |
//!
//! A plugin that only takes handles from the call never names a tenant and is isolated per
//! tenant everywhere. Reaching another tenant stays explicit (`for_tenant`, greppable).
//!
//! **Grants once per handle.** The plugin-level handle is checked against the plugin's grants
//! the first time it is asked for, then kept by the plugin instance (keyed by type and
//! name): asking again, from a hot path, costs a map look-up and a clone. A refusal
//! (`PermissionDenied`, `NotDeclared`) is kept too, so it is audited once per instance. A
//! new instance (the plugin stopped and started, or reloaded) checks again. At most
//! [`MAX_KEPT_HANDLES`] handles are kept per instance; past that, handles are checked on
//! every request (still correct, only slower).
//!
//! Each built-in handle type implements [`Bind`] and [`Handle`] or [`NamedHandle`] in its own
//! service's module. A host extension is reached as
//! [`ExtensionHandle<T>`](crate::services::ExtensionHandle); a crate that wants its own handle
//! type implements the same traits on top of it (obtain the `ExtensionHandle<T>` with
//! `ctx.named`, wrap it), and is then reached the same way.
//!
//! **The host** takes its own handles (not subject to grants, for tenant `default`) the same
//! way from its [`Xcore`]: `xcore.handle::<Worker>()`, `xcore.handle::<Scheduler>()`,
//! `xcore.named::<Db>("default")`, `xcore.named::<Cache>("sessions")`, through
//! [`HostHandle`] and [`NamedHostHandle`].

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    future::Future,
    sync::RwLock,
};

use crate::{CallContext, PluginContext, Xcore, services::AccessError};

/// How many handles one plugin instance keeps (see the [module docs](self)).
pub const MAX_KEPT_HANDLES: usize = 256;

/// A handle that can be bound to a call: the same handle, for the call's tenant (and trace).
pub trait Bind: Clone + Send + Sync + 'static {
    /// Why binding fails (a tenant's database that cannot be provisioned, say); it answers
    /// a call as a [`CallError`](crate::CallError).
    type Error: From<AccessError>
        + Into<crate::CallError>
        + std::error::Error
        + Send
        + Sync
        + 'static;

    /// The same handle for the call `cx`: its tenant, its trace.
    fn bind(&self, cx: &CallContext) -> impl Future<Output = Result<Self, Self::Error>> + Send;
}

/// A handle a plugin obtains without a name: `ctx.handle::<Worker>()`.
pub trait Handle: Bind {
    /// The plugin's handle, checked against its manifest and grants, for tenant `default`.
    fn obtain(ctx: &PluginContext) -> Result<Self, AccessError>;
}

/// A handle a plugin obtains by name: `ctx.named::<Cache>("sessions")`.
pub trait NamedHandle: Bind {
    /// The plugin's handle on `name`, checked against its manifest and grants, for tenant
    /// `default`.
    fn obtain_named(ctx: &PluginContext, name: &str) -> Result<Self, AccessError>;
}

/// A handle the host obtains from its `Xcore` without a name: `xcore.handle::<Worker>()`.
pub trait HostHandle: Sized {
    /// Why it cannot be had (the service is not loaded, say).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The host's handle (not subject to grants), for tenant `default`.
    fn obtain_host(xcore: &Xcore) -> Result<Self, Self::Error>;
}

/// A handle the host obtains from its `Xcore` by name: `xcore.named::<Db>("default")`.
pub trait NamedHostHandle: Sized {
    /// Why it cannot be had (no such connection, say).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The host's handle on `name` (not subject to grants), for tenant `default`.
    fn obtain_host_named(xcore: &Xcore, name: &str) -> Result<Self, Self::Error>;
}

impl Xcore {
    /// The host's handle `H` ([`HostHandle`]: `Worker`, `Scheduler`, the `default` database),
    /// not subject to grants, for tenant `default`. Available once its service has loaded.
    pub fn handle<H: HostHandle>(&self) -> Result<H, H::Error> {
        H::obtain_host(self)
    }

    /// The host's handle `H` on `name` ([`NamedHostHandle`]: a database connection, a cache
    /// namespace), not subject to grants, for tenant `default`.
    pub fn named<H: NamedHostHandle>(&self, name: &str) -> Result<H, H::Error> {
        H::obtain_host_named(self, name)
    }
}

type Kept = Result<Box<dyn Any + Send + Sync>, AccessError>;

/// The handles one plugin instance has obtained, by type and name (`""` for unnamed ones).
#[derive(Default)]
pub(crate) struct KeptHandles {
    map: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    by_type: HashMap<TypeId, HashMap<Box<str>, Kept>>,
    len: usize,
}

/// Whether a failure depends only on the manifest (so it stays true for the instance).
fn lasting(err: &AccessError) -> bool {
    matches!(
        err,
        AccessError::PermissionDenied { .. } | AccessError::NotDeclared { .. }
    )
}

impl KeptHandles {
    /// The kept handle of type `H` and name `name`, or the one `obtain` gives (kept when it
    /// is a handle or a lasting refusal, up to [`MAX_KEPT_HANDLES`]).
    pub(crate) fn get_or_obtain<H: Clone + Send + Sync + 'static>(
        &self,
        name: &str,
        obtain: impl FnOnce() -> Result<H, AccessError>,
    ) -> Result<H, AccessError> {
        let id = TypeId::of::<H>();
        {
            let table = self.map.read().unwrap_or_else(|p| p.into_inner());
            if let Some(kept) = table.by_type.get(&id).and_then(|m| m.get(name)) {
                return match kept {
                    Ok(any) => {
                        any.downcast_ref::<H>()
                            .cloned()
                            .ok_or_else(|| AccessError::WrongType {
                                service: name.to_owned(),
                                expected: std::any::type_name::<H>(),
                            })
                    }
                    Err(err) => Err(err.clone()),
                };
            }
        }
        let obtained = obtain();
        let keep: Option<Kept> = match &obtained {
            Ok(handle) => Some(Ok(Box::new(handle.clone()))),
            Err(err) if lasting(err) => Some(Err(err.clone())),
            Err(_) => None,
        };
        if let Some(kept) = keep {
            let mut table = self.map.write().unwrap_or_else(|p| p.into_inner());
            if table.len < MAX_KEPT_HANDLES {
                let slot = table.by_type.entry(id).or_default();
                if !slot.contains_key(name) {
                    slot.insert(Box::from(name), kept);
                    table.len += 1;
                }
            }
        }
        obtained
    }

    /// How many handles are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_handles_and_lasting_refusals_within_the_bound() {
        let kept = KeptHandles::default();
        let mut calls = 0;
        for _ in 0..3 {
            let v: u32 = kept
                .get_or_obtain("a", || {
                    calls += 1;
                    Ok(7)
                })
                .unwrap();
            assert_eq!(v, 7);
        }
        assert_eq!(calls, 1, "obtained once");
        let denied = || {
            Err::<u32, _>(AccessError::PermissionDenied {
                plugin: "p".into(),
                resource: "cache.x".into(),
                action: "read".into(),
            })
        };
        assert!(kept.get_or_obtain("x", denied).is_err());
        let mut again = false;
        let second = kept.get_or_obtain("x", || {
            again = true;
            Ok(1u32)
        });
        assert!(second.is_err() && !again, "a refusal is kept");
        // A passing failure is not kept.
        let unavailable = || {
            Err::<u32, _>(AccessError::Unavailable {
                service: "db".into(),
                reason: "not yet".into(),
            })
        };
        assert!(kept.get_or_obtain("u", unavailable).is_err());
        assert_eq!(kept.get_or_obtain("u", || Ok(2u32)).unwrap(), 2);
        // The bound: past it, handles are obtained each time.
        for i in 0..(MAX_KEPT_HANDLES + 10) {
            let _ = kept.get_or_obtain(&format!("n{i}"), || Ok(i));
        }
        assert_eq!(kept.len(), MAX_KEPT_HANDLES);
        let mut fresh = 0;
        for _ in 0..2 {
            let _ = kept.get_or_obtain("late", || {
                fresh += 1;
                Ok(0usize)
            });
        }
        assert_eq!(fresh, 2);
    }
}
