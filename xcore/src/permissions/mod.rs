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
//!
//! The host is not a plugin: its calls, emits and subscriptions are not subject to grants.
//! Every denial is logged (`tracing` at `warn`), counted, and kept in the bounded [`Audit`]
//! of its `Xcore`.

pub(crate) mod audit;

pub use audit::{Audit, DEFAULT_AUDIT_CAPACITY, Denial, DenialKind};
