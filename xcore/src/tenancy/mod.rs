//! Tenants: the [`TenantId`] every call carries, and [`Tenants`], the admission of tenant ids
//! that come from outside.
//!
//! Until tenancy is configured, every call runs for the tenant `default`. With tenancy on,
//! each HTTP request's tenant is resolved (header, subdomain or a host resolver) and then
//! admitted by the `Xcore`'s [`Tenants`] before anything runs or is provisioned for it:
//!
//! | `tenancy.provision` | unseen tenant id | answer when refused |
//! |---|---|---|
//! | `auto` (default) | admitted while fewer than `max_tenants` (default 100) are known | 403 `tenant_limit` |
//! | `known` | refused unless registered ([`Tenants::register`], `tenancy.tenants`) | 404 `unknown_tenant` |
//!
//! The database service applies the same admission to [`Db::for_tenant`](crate::services::db::Db::for_tenant).
//!
//! With `auto`, any client that can name a tenant (a header, a subdomain) can spend the
//! `max_tenants` slots on ids of its choosing, after which new legitimate tenants are refused:
//! `auto` bounds the damage, it does not authenticate. Hosts facing untrusted clients use
//! `known` (or a [`TenantResolver`](crate::web::TenantResolver) that derives the tenant from an
//! authenticated principal).

use std::{fmt, sync::Arc};

mod registry;

pub use registry::{Provision, TenantRejection, Tenants};

/// The longest tenant id.
pub const MAX_TENANT_LEN: usize = 63;

/// A validated tenant id: 1 to 63 characters among lowercase letters, digits, `_` and `-`.
///
/// ```
/// use xcore::TenantId;
/// let acme = TenantId::new("acme").unwrap();
/// assert_eq!(acme.as_str(), "acme");
/// assert_eq!(TenantId::default().as_str(), "default");
/// assert!(TenantId::new("Acme Inc").is_err());
/// ```
#[derive(Clone, Default)]
pub struct TenantId(
    /// `None` is `default`: the tenant of every call without tenancy, made without allocating.
    Option<Arc<str>>,
);

impl PartialEq for TenantId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TenantId {}

impl std::hash::Hash for TenantId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for TenantId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TenantId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Why a tenant id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid tenant id `{id}`: {reason}; a tenant id is 1 to 63 characters among lowercase \
     letters, digits, `_` and `-`"
)]
pub struct InvalidTenantId {
    id: String,
    reason: &'static str,
}

impl TenantId {
    /// Validates and wraps a tenant id.
    pub fn new(id: &str) -> Result<Self, InvalidTenantId> {
        let reason = if id.is_empty() {
            "it is empty"
        } else if id.len() > MAX_TENANT_LEN {
            "it is longer than 63 characters"
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            "it holds a character other than a-z, 0-9, `_` and `-`"
        } else {
            return Ok(if id == "default" {
                Self::default()
            } else {
                Self(Some(Arc::from(id)))
            });
        };
        Err(InvalidTenantId {
            id: id.chars().take(80).collect(),
            reason,
        })
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("default")
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({:?})", self.as_str())
    }
}

impl std::str::FromStr for TenantId {
    type Err = InvalidTenantId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        for ok in ["a", "acme", "globex-2", "t_1", &"a".repeat(63)] {
            assert!(TenantId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Acme", "a b", "a.b", "a/b", "é", &"a".repeat(64)] {
            let e = TenantId::new(bad).unwrap_err();
            assert!(e.to_string().contains("invalid tenant id"));
        }
    }
}
