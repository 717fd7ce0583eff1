//! Permissions: grants checked at every boundary, and the audit of denials.
//!
//! A plugin's grants come from its manifest (`#[plugin(permissions = [...])]`), in the grammar
//! of [`Grant`](crate::Grant): `RESOURCE: ACTIONS`, `!` for a deny, segments split by `.` or
//! `:`, `*` within a segment, `**` across segments, deny wins, no match is a deny. They are
//! parsed once, when the manifest is built; a check parses nothing.
//!
//! | resource | actions | checked when |
//! |---|---|---|
//! | `plugin:<target>` | the target's action names | a plugin calls another (plus the target's `allowed_callers`) |
//! | `events:<event name>` | `emit`, `subscribe` | a plugin emits an event, or subscribes to a pattern (the pattern must be covered) |
//! | `db.<connection>` | `read`, `write` | `ctx.named::<Db>(name)`, `cx.handle::<Db>()`: `write` gives a read-write handle, `read` alone a read-only one |
//! | `cache.<namespace>` | `read`, `write`, `delete` | `ctx.named::<Cache>(namespace)`, then each operation (get/exists/ttl/mget/keys: `read`; set/incr/mset: `write`; delete/delete_pattern/clear: `delete`) |
//! | `service:<extension>` | `use` | `ctx.named::<ExtensionHandle<T>>(name)` |
//!
//! A plugin must also declare the services it uses (`services = ["db"]`), which orders the
//! boot: the service is ready before the plugin loads.
//!
//! The host is not a plugin: its calls, emits and subscriptions are not subject to grants.
//! Every denial is logged (`tracing` at `warn`), counted, and kept in the bounded [`Audit`]
//! of its `Xcore`.

pub(crate) mod audit;

pub use audit::{Audit, DEFAULT_AUDIT_CAPACITY, Denial, DenialKind};
