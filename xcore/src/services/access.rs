use crate::{
    CallError, ErrorCode, PluginIdentity,
    permissions::{Audit, Denial, Policy, Resource, Scope},
};

/// Why a plugin could not obtain a service handle, or use it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The plugin lacks the grant.
    #[error(
        "plugin `{plugin}` may not {action} `{resource}`: it holds no grant `{resource}: {action}`"
    )]
    PermissionDenied {
        /// The plugin refused.
        plugin: String,
        /// The resource (`cache.sessions`, `service:email`).
        resource: String,
        /// The action (`write`, `use`).
        action: String,
    },
    /// The plugin did not declare the service in its manifest.
    #[error(
        "plugin `{plugin}` did not declare the service `{service}`; add it to its manifest \
         (`services = [\"{service}\"]`) so that it boots before the plugin"
    )]
    NotDeclared {
        /// The plugin.
        plugin: String,
        /// The service.
        service: String,
    },
    /// No service of that name is running.
    #[error("the service `{service}` is not available: {reason}")]
    Unavailable {
        /// The service.
        service: String,
        /// Why.
        reason: String,
    },
    /// An argument of the request is invalid (a malformed cache namespace, say).
    #[error("invalid argument for the service `{service}`: {reason}")]
    InvalidArgument {
        /// The service.
        service: String,
        /// What is wrong, and the rule.
        reason: String,
    },
    /// A handle was asked of a call context no plugin serves (the host's): handles come from
    /// the context of a call a plugin serves, or from the plugin's own `PluginContext`.
    #[error(
        "no plugin serves this call context, so it gives no `{handle}` handle: take handles \
         from the context of a call a plugin serves (an action's, a route's, an event's, a \
         job's, a task's) or from the plugin's `PluginContext`"
    )]
    Unbound {
        /// The handle type asked for.
        handle: &'static str,
    },
    /// The service exists but is not of the type asked for.
    #[error("the service `{service}` is not a `{expected}`")]
    WrongType {
        /// The service.
        service: String,
        /// The type asked for.
        expected: &'static str,
    },
}

impl From<AccessError> for CallError {
    fn from(err: AccessError) -> Self {
        let code = match err {
            AccessError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            AccessError::NotDeclared { .. }
            | AccessError::WrongType { .. }
            | AccessError::Unbound { .. } => ErrorCode::Internal,
            AccessError::InvalidArgument { .. } => ErrorCode::InvalidPayload,
            AccessError::Unavailable { .. } => ErrorCode::Unavailable,
        };
        CallError::new(code, err.to_string())
    }
}

/// Checks that `plugin` declared `service`.
pub(crate) fn check_declared(plugin: &PluginIdentity, service: &str) -> Result<(), AccessError> {
    if plugin.manifest().services().iter().any(|s| s == service) {
        Ok(())
    } else {
        Err(AccessError::NotDeclared {
            plugin: plugin.name().to_owned(),
            service: service.to_owned(),
        })
    }
}

impl From<Denial> for AccessError {
    fn from(denial: Denial) -> Self {
        AccessError::PermissionDenied {
            plugin: denial.plugin,
            resource: denial.resource,
            action: denial.action,
        }
    }
}

/// Which of `actions` the plugin's grants allow on the resource `name` of `scope` (`db`,
/// `cache`, `service`), as a bit mask (bit *i* for `actions[i]`), through the [`Policy`]
/// ([`Policy::check_any`]). If none is allowed, the denial of the first is recorded and
/// returned; a scope no [`Scope`] names is refused (and recorded) too.
pub(crate) fn grant_mask(
    plugin: &PluginIdentity,
    audit: &Audit,
    scope: &str,
    resource: &str,
    actions: &[&str],
) -> Result<u8, AccessError> {
    let policy = Policy::new(audit);
    match Scope::from_name(scope) {
        Some(scope) => Ok(policy.check_any(plugin, Resource::new(scope, resource), actions)?),
        None => {
            let action = actions.first().copied().unwrap_or("use");
            Err(policy
                .deny_unknown(plugin, format!("{scope}.{resource}"), action)
                .into())
        }
    }
}
