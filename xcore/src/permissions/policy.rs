//! [`Policy`]: the one check of a plugin's grants at a boundary — the grants, the audit of a
//! denial, the typed error.

use std::time::SystemTime;

use xcore_manifest::{Grants, ResourcePattern};

use super::{Audit, Denial, DenialKind, Resource, Scope};
use crate::PluginIdentity;

/// The most actions [`Policy::check_any`] weighs at once (the bits of its mask).
pub const MAX_MASK_ACTIONS: usize = 8;

/// The check every boundary makes: whether a plugin's grants allow an action on a
/// [`Resource`]. An allowed check allocates nothing; a denied one is recorded **once** in the
/// [`Audit`] (logged, counted, kept) and returned as a [`Denial`], which the boundary turns
/// into its own error (`permission_denied`, `caller_denied`, `AccessError`, `EventError`).
///
/// The host is not a plugin and is never checked: boundaries call the policy only for a
/// plugin.
///
/// A host's service can check a plugin's grants the same way, on the identity it sees in
/// [`Service::on_plugin_start`](crate::Service::on_plugin_start):
///
/// ```
/// use xcore::PluginIdentity;
/// use xcore::permissions::{Audit, Policy, Resource};
///
/// /// Whether `plugin` may send mail: `service:email: send`; a refusal is audited.
/// fn may_send(audit: &Audit, plugin: &PluginIdentity) -> bool {
///     Policy::new(audit)
///         .check(plugin, Resource::service("email"), "send")
///         .is_ok()
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    audit: &'a Audit,
}

impl<'a> Policy<'a> {
    /// The policy recording its denials in `audit` (the `Xcore`'s).
    pub fn new(audit: &'a Audit) -> Self {
        Self { audit }
    }

    /// Whether `plugin` may `action` on `resource`.
    pub fn check(
        &self,
        plugin: &PluginIdentity,
        resource: Resource<'_>,
        action: &str,
    ) -> Result<(), Denial> {
        self.check_with(plugin, resource, action, |grants| {
            resource.allowed_by(grants, action)
        })
    }

    /// Which of `actions` `plugin` may do on `resource`, as a mask (bit *i* for `actions[i]`),
    /// for a handle that is checked once and then carries what it may do. Only the first
    /// [`MAX_MASK_ACTIONS`] actions are weighed. When none is allowed, the denial of the first
    /// is recorded and returned.
    pub fn check_any(
        &self,
        plugin: &PluginIdentity,
        resource: Resource<'_>,
        actions: &[&str],
    ) -> Result<u8, Denial> {
        let grants = plugin.manifest().permissions();
        let mask = actions
            .iter()
            .take(MAX_MASK_ACTIONS)
            .enumerate()
            .filter(|(_, a)| resource.allowed_by(grants, a))
            .fold(0u8, |m, (i, _)| m | (1 << i));
        if mask != 0 {
            return Ok(mask);
        }
        let action = actions.first().copied().unwrap_or("use");
        Err(self.deny(plugin, resource, action, DenialKind::Permission))
    }

    /// Whether `plugin` may `action` on **every** resource of `scope` that `pattern` matches
    /// (a subscription): an allow covers the pattern and no deny intersects it. The denial
    /// names the resource as `<scope>:<pattern text>`.
    pub fn check_pattern(
        &self,
        plugin: &PluginIdentity,
        scope: Scope,
        text: &str,
        pattern: &ResourcePattern,
        action: &str,
    ) -> Result<(), Denial> {
        self.check_with(plugin, Resource::new(scope, text), action, |grants| {
            scope.allows_pattern(grants, pattern, action)
        })
    }

    /// Whether the target's `allowed_callers` admit `caller` (the second check of a call
    /// between plugins, after [`check`](Self::check) on `plugin:<target>`). The denial is a
    /// [`DenialKind::Caller`] on `plugin:<target>`.
    pub fn check_caller(
        &self,
        caller: &PluginIdentity,
        target: &PluginIdentity,
        action: &str,
    ) -> Result<(), Denial> {
        if target.manifest().admits_caller(caller.name()) {
            return Ok(());
        }
        Err(self.deny(
            caller,
            Resource::plugin(target.name()),
            action,
            DenialKind::Caller,
        ))
    }

    /// The check the others are made of: `allowed` decides on `plugin`'s grants; a refusal is
    /// recorded as a denial of `action` on `resource`.
    pub fn check_with(
        &self,
        plugin: &PluginIdentity,
        resource: Resource<'_>,
        action: &str,
        allowed: impl FnOnce(&Grants) -> bool,
    ) -> Result<(), Denial> {
        if allowed(plugin.manifest().permissions()) {
            Ok(())
        } else {
            Err(self.deny(plugin, resource, action, DenialKind::Permission))
        }
    }

    /// Refuses `plugin` a resource no [`Scope`] names (fails closed), recorded as a denial.
    pub(crate) fn deny_unknown(
        &self,
        plugin: &PluginIdentity,
        resource: String,
        action: &str,
    ) -> Denial {
        self.keep(Denial {
            plugin: plugin.name().to_owned(),
            resource,
            action: action.to_owned(),
            kind: DenialKind::Permission,
            at: SystemTime::now(),
        })
    }

    #[cold]
    fn deny(
        &self,
        plugin: &PluginIdentity,
        resource: Resource<'_>,
        action: &str,
        kind: DenialKind,
    ) -> Denial {
        self.keep(Denial {
            plugin: plugin.name().to_owned(),
            resource: resource.to_string(),
            action: action.to_owned(),
            kind,
            at: SystemTime::now(),
        })
    }

    fn keep(&self, denial: Denial) -> Denial {
        self.audit.push(denial.clone());
        denial
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;

    fn plugin(name: &str, grants: &[&str], callers: &[&str]) -> PluginIdentity {
        let mut builder = Manifest::builder(name, "1.0.0").permissions(grants.iter().copied());
        if !callers.is_empty() {
            builder = builder.allowed_callers(callers.iter().copied());
        }
        PluginIdentity::new(std::sync::Arc::new(builder.build().unwrap()))
    }

    #[test]
    fn an_allowed_check_records_nothing_a_denied_one_once() {
        let audit = Audit::with_capacity(10);
        let policy = Policy::new(&audit);
        let crm = plugin(
            "crm",
            &["plugin:billing: refund", "!plugin:billing: purge"],
            &[],
        );
        assert_eq!(
            policy.check(&crm, Resource::plugin("billing"), "refund"),
            Ok(())
        );
        assert_eq!(audit.total(), 0);

        // A deny wins over an allow; no match is a deny.
        for (resource, action) in [
            (Resource::plugin("billing"), "purge"),
            (Resource::plugin("billing"), "charge"),
            (Resource::event("user.created"), "emit"),
        ] {
            let before = audit.total();
            let denial = policy.check(&crm, resource, action).unwrap_err();
            assert_eq!(audit.total(), before + 1, "{resource}");
            let kept = audit.denials(None, 1).pop().unwrap();
            assert_eq!(kept, denial);
            assert_eq!(
                (
                    denial.plugin.as_str(),
                    denial.resource.as_str(),
                    denial.action.as_str()
                ),
                ("crm", resource.to_string().as_str(), action)
            );
            assert_eq!(denial.kind, DenialKind::Permission);
        }
        assert_eq!(audit.total(), 3);
    }

    #[test]
    fn a_mask_weighs_eight_actions_at_most() {
        let audit = Audit::with_capacity(10);
        let policy = Policy::new(&audit);
        let p = plugin("p", &["cache.s: write, delete", "db.main: a8"], &[]);
        let crud = ["read", "write", "delete"];
        assert_eq!(policy.check_any(&p, Resource::cache("s"), &crud), Ok(0b110));
        // Eight actions: the eighth is bit 7.
        let eight = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a8"];
        assert_eq!(
            policy.check_any(&p, Resource::db("main"), &eight),
            Ok(0b1000_0000)
        );
        assert_eq!(audit.total(), 0);
        // A ninth is not weighed: the only allowed action is past the bound, so it is denied
        // (the first action's denial), never a shift past the mask.
        let nine = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
        let denial = policy
            .check_any(&p, Resource::db("main"), &nine)
            .unwrap_err();
        assert_eq!(
            (denial.resource.as_str(), denial.action.as_str()),
            ("db.main", "a0")
        );
        // No action at all: a denial of `use`.
        let denial = policy
            .check_any(&p, Resource::service("x"), &[])
            .unwrap_err();
        assert_eq!(
            (denial.resource.as_str(), denial.action.as_str()),
            ("service:x", "use")
        );
        assert_eq!(audit.total(), 2);
    }

    #[test]
    fn patterns_are_checked_as_a_whole() {
        let audit = Audit::with_capacity(10);
        let policy = Policy::new(&audit);
        let p = plugin(
            "p",
            &[
                "events:user.**: subscribe",
                "!events:user.*.secret: subscribe",
            ],
            &[],
        );
        let check = |text: &str| {
            let pattern = ResourcePattern::parse(text).unwrap();
            policy.check_pattern(&p, Scope::Events, text, &pattern, "subscribe")
        };
        assert_eq!(check("user.created"), Ok(()));
        assert_eq!(check("user.*"), Ok(()));
        assert_eq!(audit.total(), 0);
        for text in ["user.**", "user.*.secret", "*.created", "**"] {
            let denial = check(text).unwrap_err();
            assert_eq!(denial.resource, format!("events:{text}"));
        }
        assert_eq!(audit.total(), 4);
    }

    #[test]
    fn allowed_callers_are_the_targets_word() {
        let audit = Audit::with_capacity(10);
        let policy = Policy::new(&audit);
        let crm = plugin("crm", &["plugin:*: *"], &[]);
        let shop = plugin("shop", &["plugin:*: *"], &[]);
        let billing = plugin("billing", &[], &["crm"]);
        let open = plugin("open", &[], &[]);
        assert_eq!(policy.check_caller(&crm, &billing, "refund"), Ok(()));
        assert_eq!(policy.check_caller(&shop, &open, "refund"), Ok(()));
        let denial = policy.check_caller(&shop, &billing, "refund").unwrap_err();
        assert_eq!(denial.kind, DenialKind::Caller);
        assert_eq!(denial.resource, "plugin:billing");
        assert_eq!(
            denial.to_string(),
            "plugin `shop` is not among the allowed callers of `plugin:billing` (refund)"
        );
        assert_eq!(audit.total(), 1);
    }

    #[test]
    fn an_unknown_scope_fails_closed_and_is_audited() {
        let audit = Audit::with_capacity(10);
        let p = plugin("p", &["**: *"], &[]);
        let denial = Policy::new(&audit).deny_unknown(&p, "tenant.acme".into(), "read");
        assert_eq!(denial.resource, "tenant.acme");
        assert_eq!(audit.total(), 1);
    }
}
