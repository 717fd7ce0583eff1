//! The `#[plugin]` and `#[actions]` attributes of xcore.
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
#![forbid(unsafe_code)]

mod actions;
mod plugin;
mod suggest;

use proc_macro::TokenStream;

/// Declares a plugin type: its manifest and its registration.
///
/// `#[plugin(name = "...", version = "...", ...)]` on a non-generic struct or enum that
/// implements `Default` and `xcore::Plugin`. See the [crate documentation](crate) for the
/// keys.
#[proc_macro_attribute]
pub fn plugin(attr: TokenStream, item: TokenStream) -> TokenStream {
    plugin::expand(attr.into(), item.into()).into()
}

/// Implements `xcore::Actions` from the `#[action]` methods of an inherent impl block.
///
/// See the [crate documentation](crate) for the accepted method shapes.
#[proc_macro_attribute]
pub fn actions(attr: TokenStream, item: TokenStream) -> TokenStream {
    actions::expand(attr.into(), item.into()).into()
}
