//! Permissions: one typed [`Resource`], one [`Policy`] check at every boundary, and the audit
//! of denials.
//!
//! A plugin's grants come from its manifest (`#[plugin(permissions = [...])]`), in the grammar
//! of [`Grant`](crate::Grant): `RESOURCE: ACTIONS`, `!` for a deny, segments split by `.` or
//! `:`, `*` within a segment, `**` across segments, deny wins, no match is a deny. They are
//! parsed once, when the manifest is built; a check parses nothing.
//!
//! Every boundary names what it guards as a [`Resource`] (a [`Scope`] and a name, borrowed:
//! building one allocates nothing; its `Display` is the string grants match and the audit
//! keeps) and asks the [`Policy`] of its `Xcore`: [`check`](Policy::check) for one action,
//! [`check_any`](Policy::check_any) for the actions a handle may carry,
//! [`check_pattern`](Policy::check_pattern) for a subscription,
//! [`check_caller`](Policy::check_caller) for the target's `allowed_callers`. A refusal is
//! recorded **once** in the [`Audit`] and comes back as a [`Denial`], which the boundary turns
//! into its own typed error.
//!
//! | resource | built with | actions | checked when | policy | error |
//! |---|---|---|---|---|---|
//! | `plugin:<target>` | [`Resource::plugin`] | the target's action names | a plugin calls another (the call pipeline's `Authorize` layer), then the target's `allowed_callers` | `check`, `check_caller` | `permission_denied`, `caller_denied` |
//! | `events:<event name>` | [`Resource::event`] | `emit`, `subscribe` | a plugin emits an event, or subscribes to a pattern (the pattern must be covered) | `check_with` (`emit`), a pattern check (`subscribe`) | `EventError::PermissionDenied` |
//! | `db.<connection>` | [`Resource::db`] | `read`, `write` | `ctx.named::<Db>(name)`, `cx.named::<Db>(name)`: `write` gives a read-write handle, `read` alone a read-only one | `check_any` | `AccessError::PermissionDenied` |
//! | `cache.<namespace>` | [`Resource::cache`] | `read`, `write`, `delete` | `ctx.named::<Cache>(namespace)`, `cx.named::<Cache>(namespace)`, then each operation (get/exists/ttl/mget/keys: `read`; set/incr/mset: `write`; delete/delete_pattern/clear: `delete`) against the mask the handle carries | `check_any` | `AccessError::PermissionDenied`, `CacheError::PermissionDenied` |
//! | `service:<extension>` | [`Resource::service`] | `use` | `ctx.named::<ExtensionHandle<T>>(name)` | `check_any` | `AccessError::PermissionDenied` |
//! | `service:scheduler` | [`Resource::service`] | `schedule` | `ctx.handle::<Scheduler>()`, and when a plugin declaring `#[job]`s starts | `check_any` | `AccessError::PermissionDenied`, a failed start |
//! | `service:worker` | [`Resource::service`] | `execute` | `ctx.handle::<Worker>()` | `check_any` | `AccessError::PermissionDenied` |
//!
//! A plugin must also declare the services it uses (`services = ["db"]`), which orders the
//! boot: the service is ready before the plugin loads.
//!
//! The host is not a plugin: its calls, emits and subscriptions are not subject to grants.
//! Every denial is logged (`tracing` at `warn`), counted (`xcore_denials_total`), and kept in
//! the bounded [`Audit`] of its `Xcore`.
//!
//! | bound | value | past it |
//! |---|---|---|
//! | denials kept by an [`Audit`] | [`DEFAULT_AUDIT_CAPACITY`] (the builder's `audit_capacity`) | the oldest is dropped; the total still counts it |
//! | actions weighed by [`Policy::check_any`] | [`MAX_MASK_ACTIONS`] | not weighed (never allowed through the mask) |

pub(crate) mod audit;
mod policy;
mod resource;

pub use audit::{Audit, DEFAULT_AUDIT_CAPACITY, Denial, DenialKind};
pub use policy::{MAX_MASK_ACTIONS, Policy};
pub use resource::{Resource, Scope};
