//! The layers of the call pipeline, each a `Thing` + `ThingLayer` pair.
//!
//! They are assembled by xcore for every plugin; they are public so a host can read what each
//! does and reuse them in its own stacks.

mod authorize;
mod catch_panic;
mod concurrency;
mod handler;
mod rate_limit;
mod timeout;
mod trace;

pub use authorize::{Authorize, AuthorizeLayer};
pub(crate) use catch_panic::catch_panic_message;
pub use catch_panic::{CatchPanic, CatchPanicLayer};
pub use concurrency::{ConcurrencyLimit, ConcurrencyLimitLayer};
pub use handler::Handler;
pub(crate) use rate_limit::ClusterSlot;
#[cfg(feature = "redis")]
pub(crate) use rate_limit::{ClusterRate, Verdict, VerdictFuture};
pub use rate_limit::{RateLimit, RateLimitLayer};
pub use timeout::{Timeout, TimeoutLayer};
pub use trace::{Trace, TraceLayer};

use futures_util::future::{Either, Ready, ready};
use serde_json::Value;

use crate::CallError;

/// The future of a layer that either rejects at once or passes the call on.
pub type Admit<F> = Either<Ready<Result<Value, CallError>>, F>;

fn reject<F>(err: CallError) -> Admit<F> {
    Either::Left(ready(Err(err)))
}
