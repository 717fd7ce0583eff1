//! The `#[plugin]` and `#[actions]` attributes of xcore (with `#[job]`, inside `#[actions]`).
//!
//! Use them through `xcore` (`use xcore::prelude::*;`), not from this crate: the code they
//! write names `::xcore`. They generate nothing a person could not write by hand.
//!
//! ```ignore
//! use xcore::prelude::*;
//!
//! #[derive(Default)]
//! #[plugin(name = "greeter", version = "1.0.0", timeout = "2s")]
//! struct Greeter;
//!
//! #[async_trait]
//! impl Plugin for Greeter {}
//!
//! #[actions]
//! impl Greeter {
//!     #[action]
//!     async fn greet(&self, name: String) -> Result<String, CallError> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//! ```
//!
//! # `#[plugin(...)]`
//!
//! Goes on a non-generic struct or enum that implements `Default` and `xcore::Plugin`. It
//! implements `xcore::plugin::PluginManifest` for the type (its manifest, built from the keys
//! below) and registers the plugin with `inventory`, so that an `Xcore` finds it.
//!
//! **Linking.** A `#[plugin]` registers itself in the binary it is linked into, and the linker
//! leaves out a crate nothing references: a plugin crate the host lists in `Cargo.toml` but
//! never names in its code is silently **not linked**, so its plugin is not registered and
//! `Xcore::builder().build()` does not see it. Reference each plugin crate once from the host:
//!
//! ```rust,ignore
//! use my_plugin as _; // links my_plugin, and with it its #[plugin] registration
//! ```
//!
//! and make a missing one fail loudly at build time, listing what is registered:
//! `Xcore::builder().require_registered(["my_plugin", "billing"]).build()` returns
//! `BuildError::NotRegistered` when one is absent.
//!
//! | key | value | default | meaning |
//! |---|---|---|---|
//! | `name` | string, **required** | — | the plugin's name: lowercase letters, digits, `_`, `-`, starting with a letter |
//! | `version` | string | the crate's version (`CARGO_PKG_VERSION`) | semver version, `"1.2.0"` |
//! | `description` | string | `""` | a one-line description |
//! | `author` | string | `""` | the author |
//! | `services` | array of strings | `[]` | services the plugin needs, started before it: `["db", "cache"]` |
//! | `requires` | array of strings | `[]` | plugins it requires, `name` or `name@REQ`: `["audit@^1.2"]` |
//! | `permissions` | array of strings | `[]` | grants, `RESOURCE: ACTIONS`, `!` for a deny: `["db.default: read, write"]` |
//! | `allowed_callers` | array of strings | `["*"]` | plugins allowed to call this one (`*`: any plugin holding a grant) |
//! | `mode` | string | `"trusted"` | execution mode; `"trusted"` is the one mode |
//! | `timeout` | string | `"10s"` | per-call timeout: `"500ms"`, `"10s"`, `"1m30s"` |
//! | `rate_limit` | string | none | call budget, `CALLS/PERIOD`: `"100/1m"` |
//! | `max_concurrency` | integer | none | most calls served at once, at least 1 |
//!
//! The manifest is checked at compile time with the same builder registration uses
//! (`xcore_manifest::Manifest::builder`), so both reject exactly the same values. An unknown
//! key (with the closest valid key suggested), a key given twice, a value of the wrong kind, a
//! missing `name` and every invalid value are compile errors pointing at the key, the value
//! or, in a list, the element at fault.
//!
//! # `#[actions]`
//!
//! Goes on an inherent `impl` block of the plugin type and implements `xcore::Actions` for it:
//! each method marked `#[action]` becomes an action, named after the method or after
//! `#[action(name = "...")]`. Other methods are left alone.
//!
//! | `#[action(...)]` key | value | default | meaning |
//! |---|---|---|---|
//! | `name` | string | the method's name | the action's name: ASCII letters, digits, `_`, `-`, `.` |
//!
//! An action method is `async` or not, takes `&self`, optionally a `&CallContext` (any
//! reference to a type path ending in `CallContext`) and at most one input, in any order, and
//! returns a `Result`:
//!
//! ```text
//! fn a(&self) -> Result<O, E>
//! fn b(&self, cx: &CallContext) -> Result<O, E>
//! async fn c(&self, input: I) -> Result<O, E>
//! async fn d(&self, cx: &CallContext, input: I) -> Result<O, E>
//! ```
//!
//! with `I: serde::de::DeserializeOwned`, `O: serde::Serialize` and `E: Into<CallError>`. The
//! payload is decoded into `I` (an `invalid_payload` error naming the field path if it does not
//! fit; an action without input ignores the payload), the output is encoded to JSON, and an
//! unknown action is an `unknown_action` error listing the actions. A method of another shape,
//! two actions of one name and an unknown `#[action]` key are compile errors.
//!
//! **Unknown fields are ignored** (serde's default): `{"name": "ada", "admin": true}` decodes
//! into a `struct User { name: String }`. To reject them, put `#[serde(deny_unknown_fields)]`
//! on the input type (and on each nested type that should be strict): the call then fails with
//! `invalid_payload` naming the field (``unknown field `admin` ``, with its path when nested).
//!
//! # `#[job(...)]`
//!
//! Goes on a method of an `#[actions]` block, with or without `#[action]`: the method is an
//! action (named as above), and the scheduler calls it on a schedule while the plugin runs.
//! `#[actions]` then also implements `Actions::declarations`: the block's jobs, as
//! `xcore::services::scheduler::DeclaredJob`s in the bag the scheduler reads.
//!
//! ```ignore
//! #[derive(Default)]
//! #[plugin(
//!     name = "reports",
//!     services = ["scheduler"],
//!     permissions = ["service:scheduler: schedule"],
//! )]
//! struct Reports;
//!
//! #[actions]
//! impl Reports {
//!     #[job(cron = "0 3 * * *", timezone = "Europe/Paris")]
//!     async fn nightly(&self) -> Result<(), CallError> {
//!         Ok(())
//!     }
//!
//!     #[job(every = "30s", id = "heartbeat")]
//!     fn beat(&self, cx: &CallContext) -> Result<(), CallError> {
//!         Ok(())
//!     }
//! }
//! ```
//!
//! | `#[job(...)]` key | value | default | meaning |
//! |---|---|---|---|
//! | `cron` | string | — | a cron expression: 5 fields `m h dom mon dow`, 6 (seconds first), 7 (seconds first, year last), or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` |
//! | `every` | string | — | an interval of at least `1s`: `"30s"`, `"5m"`, `"1h30m"` |
//! | `id` | string | the method's name | the job's id, unique in the block: ASCII letters, digits, `_`, `-`, `.` |
//! | `timezone` | string | the scheduler's zone | the IANA time zone the `cron` expression is read in: `"Europe/Paris"` |
//!
//! Exactly one of `cron` and `every` is given; `timezone` goes with `cron` only. A method may
//! carry several `#[job]`s with distinct ids. A job method takes no input (`&self`, optionally
//! a `&CallContext`): the scheduler calls it with the payload `null`, as the host, for the
//! tenant `default`, through the plugin's call pipeline (its timeout, limits and panic
//! isolation apply); a failed run is logged and counted, and the job keeps its schedule.
//!
//! The scheduler registers the jobs when the plugin starts, under the plugin's own namespace
//! (they show in its `ctx.handle::<Scheduler>()?.list()`), and removes them when it stops. The plugin
//! must declare `services = ["scheduler"]` and hold `service:scheduler: schedule`: otherwise,
//! or if an expression or a time zone turns out invalid, the plugin fails to start, with the
//! reason. A job registered by the plugin itself under the same id is replaced.
//!
//! At compile time, an unknown key (with the closest valid key suggested), a key given twice,
//! no schedule or two, `timezone` with `every`, a job method with an input, two jobs of one id,
//! an invalid id, a cron expression with a wrong number of fields or an unknown nickname, and
//! an `every` that is no duration or is shorter than `1s` are errors pointing at the key, the
//! value or the method at fault. Cron fields and time zones are parsed in full when the plugin
//! starts.
#![forbid(unsafe_code)]

mod actions;
mod job;
mod plugin;
mod suggest;

use proc_macro::TokenStream;

/// Declares a plugin type: its manifest and its registration.
///
/// `#[plugin(name = "...", version = "...", ...)]` on a non-generic struct or enum that
/// implements `Default` and `xcore::Plugin`. See the [crate documentation](crate) for the
/// keys.
///
/// The registration exists only if the plugin's crate is linked into the host: a crate the
/// host depends on but never references is not. Reference it once from the host
/// (`use my_plugin as _;`), and check with
/// `Xcore::builder().require_registered(["my_plugin"])`, which fails the build with
/// `BuildError::NotRegistered` (listing what is registered) when it is missing.
#[proc_macro_attribute]
pub fn plugin(attr: TokenStream, item: TokenStream) -> TokenStream {
    plugin::expand(attr.into(), item.into()).into()
}

/// Implements `xcore::Actions` from the `#[action]` and `#[job(...)]` methods of an inherent
/// impl block.
///
/// See the [crate documentation](crate) for the accepted method shapes and the `#[job]` keys.
#[proc_macro_attribute]
pub fn actions(attr: TokenStream, item: TokenStream) -> TokenStream {
    actions::expand(attr.into(), item.into()).into()
}
