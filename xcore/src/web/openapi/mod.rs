//! The OpenAPI 3.1 description of the web layer: plugin routes, typed actions, the admin API.
//!
//! With feature `openapi`, the admin API serves
//!
//! | endpoint | auth | answers |
//! |---|---|---|
//! | `GET {admin}/openapi.json` | token (like the other admin reads) | the document of everything below |
//! | `GET {admin}/openapi/<plugin>.json` | token | the document of one plugin: its routes and typed actions; 404 `not_found` for a plugin not in the plan, 503 `unavailable` for one not running |
//!
//! Without the feature both are 404 `not_found`. The documents are built on the first request
//! after the running plugins changed (boot, stop, start, reload) and then served from a cache:
//! a request never rebuilds them. A panic while building (a hand-written `JsonSchema` or
//! `action_schemas`) is logged and answered 500 `internal` with an error id; the next request
//! tries again. `operationId`s are unique in a document (`_2`, `_3`, … appended to one taken).
//!
//! What is documented, and from what:
//!
//! | part | path | from |
//! |---|---|---|
//! | a plugin's route | `{plugins}/<plugin>` + its template (`/plugin/user_manager/v2/register`; `{*rest}` is written `{rest}`) | the [`Endpoint`](super::Endpoint)s of its [`Routes`](super::Routes), documented with [`Operation`] (`Routes::doc`, or [`RoutesBuilder::doc`](super::axum::RoutesBuilder::doc) with axum); an undocumented endpoint is listed with a `default` response |
//! | its parameters | — | the tenant header (`components.parameters.Tenant`, the `tenancy.header` name) when the web layer resolves tenants; each `{name}` of the template (required, a string) |
//! | its request body and responses | — | [`Operation::body`]`::<T>()`, [`Operation::response`]`::<T>(201)`, [`Operation::status`], [`Operation::error`]`(409)`: JSON Schemas of the Rust types by schemars (JSON Schema 2020-12, OpenAPI 3.1's dialect), named types under `#/components/schemas` |
//! | errors | every operation's `default` response, and each [`Operation::error`] | one `components.schemas.Error`: `{"status":"error","code":…,"message":…,"details":…}` ([`HttpError`](super::HttpError)) |
//! | a typed action | `POST {admin}/ipc/<plugin>/<action>` | [`Actions::action_schemas`](crate::Actions::action_schemas), emitted by `#[actions]`: the method's doc comment, its input type as the request body, its output as `result` of the `{"status":"ok","plugin":…,"action":…,"result":…}` envelope (a type without `schemars::JsonSchema` is any JSON: [`ActionSchema`](crate::plugin::ActionSchema)) |
//! | the admin API | `{admin}`, `{admin}/health`, … | its endpoint table; `security` is the `adminToken` bearer scheme but for `health/live` and `health/ready` |
//!
//! Schemas describe how types **deserialize** (schemars' default contract), for bodies and
//! responses alike.
//!
//! A plugin's routes, declared and documented once:
//!
//! ```
//! # #[cfg(all(feature = "openapi", feature = "axum"))] {
//! use axum::http::StatusCode;
//! use xcore::web::{Routes, axum::Json, openapi::Operation};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Register { username: String }
//!
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! struct User { id: u64 }
//!
//! async fn register(Json(r): Json<Register>) -> (StatusCode, Json<User>) {
//!     (StatusCode::CREATED, Json(User { id: r.username.len() as u64 }))
//! }
//!
//! let routes = Routes::axum()
//!     .post("/v2/register", register)
//!     .doc(
//!         Operation::new()
//!             .summary("Registers a user")
//!             .body::<Register>()
//!             .response::<User>(201)
//!             .error(409)
//!             .error(422),
//!     )
//!     .build();
//! assert_eq!(routes.endpoints()[0].operation().unwrap().statuses().collect::<Vec<_>>(), [201, 409, 422]);
//! # }
//! ```

#[cfg(feature = "openapi")]
mod document;
mod operation;

#[cfg(feature = "openapi")]
pub(crate) use self::document::OpenApiDocs;
pub use self::operation::Operation;
#[cfg(feature = "openapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub use schemars;
