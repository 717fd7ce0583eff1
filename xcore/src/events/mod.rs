//! The event bus: named events, glob subscriptions, priorities, `once`, error isolation.
//!
//! Every `Xcore` has its own bus. The host reaches it with [`Xcore::events`](crate::Xcore::events),
//! a plugin with [`PluginContext::events`](crate::PluginContext::events); a plugin's emits and
//! subscriptions are checked against its grants (`events:<name>: emit`, `events:<pattern>:
//! subscribe`).
//!
//! - **Names and patterns** use the grant grammar: segments split by `.` or `:`, `*` within a
//!   segment, `**` across segments (`user.*` matches `user.created`, not `user.created.v2`);
//!   at most [`MAX_PATTERN_LEN`](crate::MAX_PATTERN_LEN) bytes and
//!   [`MAX_PATTERN_SEGMENTS`](crate::MAX_PATTERN_SEGMENTS) segments.
//! - **A subscription is checked as a pattern**, not as a name: it is allowed only when every
//!   event it can match is allowed — an allow grant covers the whole pattern and no deny grant
//!   intersects it ([`Grants::allows_pattern`](crate::Grants::allows_pattern), whose module
//!   docs hold the table of cases). `events:user.*: subscribe` admits `user.*` and
//!   `user.created`, not `user.**`; `events:*.x: subscribe` does not admit `**.x`.
//! - **Priority**: higher first, ties in subscription order. One rule, everywhere.
//! - **Dispatch**: [`Dispatch::Sequential`] (the default) runs handlers one after the other in
//!   priority order, and a handler returning [`Flow::Stop`] stops the ones after it;
//!   [`Dispatch::Concurrent`] starts them all together.
//! - **`once`**: a `once` subscription is removed when it is selected for an emit, atomically,
//!   so it fires exactly once even under concurrent emits.
//! - **Isolation**: a handler that fails or panics is reported in the [`EmitReport`]; the
//!   others run.
//! - **Background emits** are tracked and joined (within the stop timeout) on shutdown.
//! - **Across instances** (feature `postgres` or `redis`): the [`EventBridge`] service
//!   publishes the events matching its routes' patterns through Postgres `LISTEN`/`NOTIFY`,
//!   Redis pub/sub (at most once) or Redis Streams (at least once), the backend chosen per
//!   pattern, and emits those of the other instances here, without echo (see [`bridge`]).
//! - **A plugin's subscriptions** (made through its handle, `ctx.handle::<Events>()`) pass its
//!   instance's [gate](crate::runtime) on each delivery: a stopped instance's handler is not
//!   run (the delivery is reported [`Outcome::Failed`], naming the plugin), and the handler
//!   runs in the entry's span with the event's [`context`](Event::context) bound to the
//!   instance and the event's tenant, from which it takes its handles
//!   (`event.context().handle::<Db>().await`). They are removed when the plugin stops.
//! - **Bound emits**: a handle taken from a call (`cx.handle::<Events>().await`)
//!   [`publish`](Events::publish)es with the call's tenant and trace.
//!
//! # Kernel events
//!
//! The container emits these events itself (source [`EventSource::Kernel`], tenant `default`),
//! awaited and in this order:
//!
//! | event | when | payload |
//! |---|---|---|
//! | `plugin.<name>.loaded` | the plugin's `on_load` succeeded | `{"plugin", "version", "wave"}` |
//! | `plugin.<name>.started` | its `on_start` succeeded: it serves calls | `{"plugin", "version", "wave"}` |
//! | `plugin.<name>.failed` | it failed (plan, load or start) or was skipped | `{"plugin", "state", "phase", "reason"}` |
//! | `xcore.booted` | the boot finished | `{"started", "failed", "skipped"}` (plugin names) |
//! | `xcore.shutdown` | the shutdown begins, before any plugin stops | `{}` |
//! | `plugin.<name>.stopped` | its `on_stop` returned (or timed out): at shutdown, or stopped at runtime (then with why, when a plugin it requires stopped) | `{"plugin", "outcome"}` (`"reason"` too at runtime) |
//! | `plugin.<name>.started` | started again at runtime ([`Xcore::start_plugin`](crate::Xcore::start_plugin), a restart) | `{"plugin", "version", "wave"}` |
//! | `plugin.<name>.reloaded` | a fresh instance replaced it ([`Xcore::reload_plugin`](crate::Xcore::reload_plugin)) | `{"plugin", "version", "took_ms"}` |

#[cfg(any(feature = "postgres", feature = "redis"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "redis"))))]
pub mod bridge;
mod bus;
mod event;
mod handle;

#[cfg(any(feature = "postgres", feature = "redis"))]
pub use bridge::{BridgeOptions, BridgeRoute, BridgeStats, Delivery, EventBridge};
pub(crate) use bus::EventBus;
pub use bus::{EmitReport, HandlerOutcome, Outcome, SubscribeOptions, SubscriptionId};
pub use event::{Dispatch, Event, EventError, EventHandler, EventSource, Flow, HandlerFuture};
pub use handle::Events;
