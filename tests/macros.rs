//! `#[plugin]` and `#[actions]` end to end: the manifests they declare, the registrations they
//! submit, and the dispatch they generate, called directly through `Actions::handle`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xcore::BuildError;
use xcore::plugin::PluginManifest;
use xcore::prelude::*;

/// Every key given.
#[derive(Default)]
#[plugin(
    name = "macro_full",
    version = "2.5.0",
    description = "Exercises every key",
    author = "xcore tests",
    services = ["db", "cache"],
    requires = ["audit@^1.2", "billing"],
    permissions = ["db.default: read, write", "!db.default: drop", "plugin:audit: record"],
    allowed_callers = ["billing", "crm"],
    mode = "trusted",
    timeout = "2s",
    rate_limit = "100/1m",
    max_concurrency = 16,
)]
struct Full {
    hits: AtomicU64,
}

#[async_trait]
impl Plugin for Full {}

#[derive(Debug, Deserialize)]
struct Address {
    city: String,
    zip: u32,
}

#[derive(Debug, Deserialize)]
struct NewUser {
    name: String,
    address: Address,
}

#[derive(Debug, Serialize)]
struct UserId {
    id: u64,
    label: String,
}

/// A business error of the plugin, converted into a `CallError` with its own code.
enum StockError {
    Empty,
}

impl From<StockError> for CallError {
    fn from(err: StockError) -> Self {
        match err {
            StockError::Empty => CallError::new(ErrorCode::Unavailable, "out of stock"),
        }
    }
}

#[actions]
impl Full {
    /// No context, no input, async.
    #[action]
    async fn ping(&self) -> Result<&'static str, CallError> {
        Ok("pong")
    }

    /// Context only, not async, renamed.
    #[action(name = "whoami")]
    fn caller_name(&self, cx: &CallContext) -> Result<String, CallError> {
        Ok(cx.caller().to_string())
    }

    /// Input only.
    #[action]
    async fn hit(&self, by: u64) -> Result<u64, CallError> {
        Ok(self.hits.fetch_add(by, Ordering::Relaxed) + by)
    }

    /// Context and input, with a nested input type.
    #[action]
    async fn register(&self, cx: &xcore::CallContext, user: NewUser) -> Result<UserId, CallError> {
        Ok(UserId {
            id: self.next_id(),
            label: format!(
                "{} from {} ({}) by {}",
                user.name,
                user.address.city,
                user.address.zip,
                cx.caller()
            ),
        })
    }

    /// Input and context in the other order, not async.
    #[action]
    fn echo(&self, input: Value, _cx: &CallContext) -> Result<Value, CallError> {
        Ok(input)
    }

    /// A handler error with its own type.
    #[action]
    async fn buy(&self) -> Result<(), StockError> {
        Err(StockError::Empty)
    }

    /// A plain handler error.
    #[action]
    fn refuse(&self) -> Result<(), CallError> {
        Err(CallError::handler("no"))
    }

    /// Not an action: left alone.
    fn next_id(&self) -> u64 {
        self.hits.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Only `name`: the version is the crate's.
#[derive(Default)]
#[plugin(name = "macro_minimal")]
enum Minimal {
    #[default]
    Idle,
}

#[async_trait]
impl Plugin for Minimal {}

#[actions]
impl Minimal {}

/// Empty lists are accepted (an empty `allowed_callers` admits no plugin).
#[derive(Default)]
#[plugin(name = "macro_closed", version = "0.0.1", services = [], allowed_callers = [])]
pub struct Closed;

#[async_trait]
impl Plugin for Closed {}

#[actions]
impl Closed {
    #[action]
    fn status(&self) -> Result<bool, CallError> {
        Ok(true)
    }
}

async fn call(plugin: &dyn Actions, action: &str, payload: Value) -> Result<Value, CallError> {
    plugin.handle(action, payload, &CallContext::host()).await
}

#[test]
fn manifest_of_every_key() {
    let m = <Full as PluginManifest>::manifest().unwrap();
    assert_eq!(m.name(), "macro_full");
    assert_eq!(m.version().to_string(), "2.5.0");
    assert_eq!(m.description(), "Exercises every key");
    assert_eq!(m.author(), "xcore tests");
    assert_eq!(m.services(), ["db", "cache"]);
    let requires: Vec<String> = m.requires().iter().map(ToString::to_string).collect();
    assert_eq!(requires, ["audit@^1.2", "billing"]);
    assert!(m.permissions().allows("db.default", "write"));
    assert!(!m.permissions().allows("db.default", "drop"));
    assert!(m.permissions().allows("plugin:audit", "record"));
    assert!(m.admits_caller("crm") && !m.admits_caller("shop"));
    assert_eq!(m.mode(), xcore::Mode::Trusted);
    assert_eq!(m.timeout(), std::time::Duration::from_secs(2));
    let limit = m.rate_limit().unwrap();
    assert_eq!(limit.calls().get(), 100);
    assert_eq!(limit.per(), std::time::Duration::from_secs(60));
    assert_eq!(m.max_concurrency().unwrap().get(), 16);
}

#[test]
fn manifest_defaults() {
    let m = <Minimal as PluginManifest>::manifest().unwrap();
    assert_eq!(m.name(), "macro_minimal");
    assert_eq!(m.version().to_string(), env!("CARGO_PKG_VERSION"));
    assert_eq!(m.description(), "");
    assert!(m.services().is_empty() && m.requires().is_empty());
    assert!(m.admits_caller("anyone"));
    assert_eq!(m.rate_limit(), None);
    assert_eq!(m.max_concurrency(), None);

    let m = <Closed as PluginManifest>::manifest().unwrap();
    assert!(m.services().is_empty());
    assert!(m.allowed_callers().is_empty() && !m.admits_caller("anyone"));
}

#[test]
fn plugins_are_registered() {
    let found: Vec<(String, &'static str)> = xcore::plugin::registered()
        .map(|r| (r.manifest().unwrap().name().to_owned(), r.type_name()))
        .filter(|(name, _)| name.starts_with("macro_"))
        .collect();
    for (name, ty) in [
        ("macro_full", "macros::Full"),
        ("macro_minimal", "macros::Minimal"),
        ("macro_closed", "macros::Closed"),
    ] {
        assert!(
            found.iter().any(|(n, t)| n == name && *t == ty),
            "{name} / {ty} not in {found:?}"
        );
    }
    let full = xcore::plugin::registered()
        .find(|r| r.type_name() == "macros::Full")
        .unwrap();
    assert_eq!(full.instantiate().action_names().len(), 7);
}

#[test]
fn action_names_in_declaration_order() {
    assert_eq!(
        Full::default().action_names(),
        ["ping", "whoami", "hit", "register", "echo", "buy", "refuse"]
    );
    assert!(Minimal::default().action_names().is_empty());
}

#[tokio::test]
async fn each_method_shape_dispatches() {
    let p = Full::default();
    assert_eq!(call(&p, "ping", Value::Null).await.unwrap(), json!("pong"));
    // Actions without input ignore the payload.
    assert_eq!(
        call(&p, "ping", json!({"any": 1})).await.unwrap(),
        json!("pong")
    );
    assert_eq!(
        call(&p, "whoami", Value::Null).await.unwrap(),
        json!("host")
    );
    assert_eq!(call(&p, "hit", json!(2)).await.unwrap(), json!(2));
    assert_eq!(call(&p, "hit", json!(3)).await.unwrap(), json!(5));
    let out = call(
        &p,
        "register",
        json!({"name": "ada", "address": {"city": "London", "zip": 1815}}),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        json!({"id": 6, "label": "ada from London (1815) by host"})
    );
    assert_eq!(
        call(&p, "echo", json!([1, "two"])).await.unwrap(),
        json!([1, "two"])
    );
    let closed = Closed;
    assert_eq!(
        call(&closed, "status", Value::Null).await.unwrap(),
        json!(true)
    );
}

#[tokio::test]
async fn unknown_action_lists_the_actions() {
    let err = call(&Full::default(), "pong", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownAction);
    assert!(err.message().contains("`pong`"), "{}", err.message());
    assert!(
        err.message()
            .contains("ping, whoami, hit, register, echo, buy, refuse"),
        "{}",
        err.message()
    );
    // The method name of a renamed action is not an action.
    let err = call(&Full::default(), "caller_name", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownAction);
    // Neither is a method without `#[action]`.
    let err = call(&Full::default(), "next_id", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownAction);
    let err = call(&Minimal::default(), "ping", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownAction);
    assert!(err.message().contains("none"), "{}", err.message());
}

#[tokio::test]
async fn bad_payload_names_the_field() {
    let p = Full::default();
    let err = call(
        &p,
        "register",
        json!({"name": "ada", "address": {"city": "London", "zip": "EC1"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidPayload);
    assert!(err.message().contains("address.zip"), "{}", err.message());
    let err = call(&p, "register", json!({"name": "ada"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidPayload);
    assert!(err.message().contains("address"), "{}", err.message());
    let err = call(&p, "hit", json!("two")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidPayload);
    // The handler did not run.
    assert_eq!(call(&p, "hit", json!(0)).await.unwrap(), json!(0));
}

#[tokio::test]
async fn handler_errors_keep_their_code() {
    let p = Full::default();
    let err = call(&p, "buy", Value::Null).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert_eq!(err.message(), "out of stock");
    let err = call(&p, "refuse", Value::Null).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::HandlerError);
    assert_eq!(err.message(), "no");
}

/// The unknown-field policy of typed payloads: serde's default (unknown fields ignored)
/// unless the input type says `#[serde(deny_unknown_fields)]`, at any depth.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictAddress {
    city: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictUser {
    name: String,
    address: StrictAddress,
}

struct Payloads;

#[actions]
impl Payloads {
    #[action]
    fn lenient(&self, user: NewUser) -> Result<String, CallError> {
        Ok(format!(
            "{} {} {}",
            user.name, user.address.city, user.address.zip
        ))
    }

    #[action]
    fn strict(&self, user: StrictUser) -> Result<String, CallError> {
        Ok(format!("{} {}", user.name, user.address.city))
    }
}

#[tokio::test]
async fn unknown_payload_fields_are_ignored_unless_the_type_denies_them() {
    let lenient = json!({"name": "ada", "admin": true, "address": {"city": "London", "zip": 1}});
    assert_eq!(
        call(&Payloads, "lenient", lenient).await.unwrap(),
        json!("ada London 1")
    );
    let exact = json!({"name": "ada", "address": {"city": "London"}});
    assert_eq!(
        call(&Payloads, "strict", exact).await.unwrap(),
        json!("ada London")
    );
    let err = call(&Payloads, "strict", json!({"name": "ada", "admin": true}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidPayload);
    assert!(
        err.message().contains("unknown field `admin`"),
        "{}",
        err.message()
    );
    let nested = json!({"name": "ada", "address": {"city": "London", "zip": 1}});
    let err = call(&Payloads, "strict", nested).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidPayload);
    assert!(
        err.message().contains("address") && err.message().contains("unknown field `zip`"),
        "{}",
        err.message()
    );
}

#[test]
fn require_registered_fails_loudly_listing_what_is_registered() {
    Xcore::builder()
        .require_registered(["macro_minimal", "macro_full"])
        .build()
        .unwrap();
    let err = Xcore::builder()
        .require_registered(["macro_minimal", "billing", "crm"])
        .build()
        .unwrap_err();
    match &err {
        BuildError::NotRegistered {
            missing,
            registered,
        } => {
            assert_eq!(missing, &["billing", "crm"]);
            assert!(registered.contains("macro_minimal"), "{registered}");
        }
        other => panic!("expected NotRegistered, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("`billing`, `crm`"), "{message}");
    assert!(message.contains("use my_plugin as _;"), "{message}");
}
