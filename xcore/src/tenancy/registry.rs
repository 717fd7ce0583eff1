//! [`Tenants`]: which tenant ids are admitted, and how many.

use std::{collections::HashSet, fmt, sync::RwLock};

use serde::Deserialize;

use super::TenantId;

/// What happens to a tenant id seen for the first time (`tenancy.provision`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provision {
    /// Admitted (and its databases provisioned on first use) while fewer than `max_tenants`
    /// tenants are known; refused beyond. The default.
    #[default]
    Auto,
    /// Refused unless the host registered it ([`Tenants::register`], or `tenancy.tenants` in
    /// the config): an HTTP request for it answers 404 `unknown_tenant` and creates nothing.
    Known,
}

/// Why a tenant id was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantRejection {
    /// `provision: known` and the host never registered this tenant.
    #[error("unknown tenant `{0}`: this host serves registered tenants only")]
    Unknown(TenantId),
    /// `provision: auto` and `max_tenants` tenants are known already.
    #[error(
        "tenant `{tenant}` refused: this host already serves its maximum of {max} tenants \
         (`tenancy.max_tenants`)"
    )]
    Limit {
        /// The tenant refused.
        tenant: TenantId,
        /// The maximum.
        max: usize,
    },
}

impl TenantRejection {
    /// The stable code: `unknown_tenant` or `tenant_limit`.
    pub fn code(&self) -> &'static str {
        match self {
            TenantRejection::Unknown(_) => "unknown_tenant",
            TenantRejection::Limit { .. } => "tenant_limit",
        }
    }

    /// The HTTP status: 404 for an unknown tenant, 403 when the limit is reached.
    pub fn http_status(&self) -> u16 {
        match self {
            TenantRejection::Unknown(_) => 404,
            TenantRejection::Limit { .. } => 403,
        }
    }
}

/// The tenants an `Xcore` serves: the admission policy for tenant ids that come from outside
/// (HTTP requests) before anything is provisioned for them, and the bound on how many there
/// are. Tenant `default` is always admitted.
///
/// The web layer admits the tenant of every request (404 `unknown_tenant`, 403
/// `tenant_limit`); the database service admits the tenant of every
/// [`Db::for_tenant`](crate::services::db::Db::for_tenant) too, so plugin code handing it an
/// id from a payload provisions nothing either.
///
/// ```
/// use xcore::tenancy::{Provision, Tenants};
/// use xcore::TenantId;
///
/// let tenants = Tenants::new(Provision::Known, 100);
/// let acme = TenantId::new("acme").unwrap();
/// assert!(tenants.admit(&acme).is_err());
/// tenants.register(acme.clone());
/// assert!(tenants.admit(&acme).is_ok());
///
/// let auto = Tenants::new(Provision::Auto, 1);
/// assert!(auto.admit(&acme).is_ok());
/// let err = auto.admit(&TenantId::new("globex").unwrap()).unwrap_err();
/// assert_eq!(err.code(), "tenant_limit");
/// ```
pub struct Tenants {
    provision: Provision,
    max: usize,
    known: RwLock<HashSet<TenantId>>,
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenants")
            .field("provision", &self.provision)
            .field("max", &self.max)
            .field("known", &self.len())
            .finish()
    }
}

impl Default for Tenants {
    /// `auto`, at most [`Tenants::DEFAULT_MAX`] tenants.
    fn default() -> Self {
        Self::new(Provision::Auto, Self::DEFAULT_MAX)
    }
}

impl Tenants {
    /// The default `tenancy.max_tenants`.
    pub const DEFAULT_MAX: usize = 100;

    /// A policy and a maximum number of tenants (registered ones included).
    pub fn new(provision: Provision, max: usize) -> Self {
        Self {
            provision,
            max,
            known: RwLock::new(HashSet::new()),
        }
    }

    /// The policy.
    pub fn provision(&self) -> Provision {
        self.provision
    }

    /// The maximum number of tenants.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Registers a tenant (whatever the policy and the maximum: the host decides). Returns
    /// whether it was new.
    pub fn register(&self, tenant: TenantId) -> bool {
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant)
    }

    /// Forgets a tenant: later requests for it are admitted again by the policy. Its data
    /// stays where it is.
    pub fn remove(&self, tenant: &TenantId) -> bool {
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant)
    }

    /// Whether the tenant is known (registered or admitted).
    pub fn contains(&self, tenant: &TenantId) -> bool {
        tenant.as_str() == "default"
            || self
                .known
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(tenant)
    }

    /// How many tenants are known.
    pub fn len(&self) -> usize {
        self.known.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no tenant is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Admits a tenant: known ones always; unseen ones by the policy (and, with `auto`, they
    /// become known while fewer than the maximum are).
    pub fn admit(&self, tenant: &TenantId) -> Result<(), TenantRejection> {
        if self.contains(tenant) {
            return Ok(());
        }
        match self.provision {
            Provision::Known => Err(TenantRejection::Unknown(tenant.clone())),
            Provision::Auto => {
                let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
                if known.contains(tenant) {
                    return Ok(());
                }
                if known.len() >= self.max {
                    return Err(TenantRejection::Limit {
                        tenant: tenant.clone(),
                        max: self.max,
                    });
                }
                known.insert(tenant.clone());
                Ok(())
            }
        }
    }
}
