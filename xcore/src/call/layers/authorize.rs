use std::{
    sync::Arc,
    task::{Context, Poll},
};

use serde_json::{Value, json};
use tower::{Layer, Service};

use super::{Admit, reject};
use crate::{
    CallError, Caller, ErrorCode, PluginIdentity,
    call::CallRequest,
    permissions::{Audit, Denial, DenialKind, Policy, Resource},
};

/// Applies [`Authorize`]: checks that the caller may call the target's action.
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    /// One reference count for both (the stack is cloned per call).
    shared: Arc<(PluginIdentity, Arc<Audit>)>,
}

impl AuthorizeLayer {
    /// Authorisation of calls to `target`; denials go to `audit`.
    pub fn new(target: PluginIdentity, audit: Arc<Audit>) -> Self {
        Self {
            shared: Arc::new((target, audit)),
        }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            layer: self.clone(),
        }
    }
}

/// Caller authorisation.
///
/// A plugin calling `target.action` needs the grant `plugin:<target>: <action>` in its own
/// manifest (`permission_denied` otherwise), **and** the target's `allowed_callers` must admit
/// it (`caller_denied` otherwise). The host is not a plugin: its calls are not subject to
/// grants. The check parses nothing and allocates nothing on the allowed path.
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    layer: AuthorizeLayer,
}

impl<S> Authorize<S> {
    fn check(&self, caller: &Caller, action: &str) -> Result<(), CallError> {
        let Caller::Plugin(caller) = caller else {
            return Ok(());
        };
        let (target, audit) = &*self.layer.shared;
        let policy = Policy::new(audit);
        policy
            .check(caller, Resource::plugin(target.name()), action)
            .and_then(|()| policy.check_caller(caller, target, action))
            .map_err(|denial| refusal(target, denial))
    }
}

/// The error of a call `Policy` refused: `permission_denied` for a missing grant,
/// `caller_denied` for the target's `allowed_callers`.
#[cold]
fn refusal(target: &PluginIdentity, denial: Denial) -> CallError {
    let Denial {
        plugin,
        resource,
        action,
        kind,
        ..
    } = &denial;
    let error = match kind {
        DenialKind::Permission => CallError::new(
            ErrorCode::PermissionDenied,
            format!(
                "plugin `{plugin}` may not call `{}.{action}`: it holds no grant \
                 `{resource}: {action}`",
                target.name(),
            ),
        ),
        DenialKind::Caller => CallError::new(
            ErrorCode::CallerDenied,
            format!(
                "plugin `{}` does not accept calls from plugin `{plugin}` (allowed_callers: [{}])",
                target.name(),
                target.manifest().allowed_callers().join(", ")
            ),
        ),
    };
    error.with_details(json!({
        "plugin": plugin,
        "resource": resource,
        "action": action,
    }))
}

impl<S> Service<CallRequest> for Authorize<S>
where
    S: Service<CallRequest, Response = Value, Error = CallError>,
{
    type Response = Value;
    type Error = CallError;
    type Future = Admit<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: CallRequest) -> Self::Future {
        match self.check(req.context().caller(), req.action()) {
            Ok(()) => futures_util::future::Either::Right(self.inner.call(req)),
            Err(err) => reject(err),
        }
    }
}
