//! Which tenant an HTTP request is for: a resolver of the host's, a header, a subdomain.

use std::{fmt, sync::Arc};

use http::{HeaderName, header, request::Parts};

use super::HttpError;
use crate::TenantId;

/// A host's way of naming the tenant of a request (from an authenticated principal, say).
///
/// `Ok(Some(tenant))` decides; `Ok(None)` lets the header, then the subdomain, then the
/// default decide; `Err` rejects the request with that error (a 401 or 403, say). Closures
/// `Fn(&Parts) -> Result<Option<TenantId>, HttpError>` are resolvers.
///
/// ```
/// use xcore::{TenantId, web::{HttpError, TenantResolver}};
///
/// fn from_api_key(parts: &http::request::Parts) -> Result<Option<TenantId>, HttpError> {
///     match parts.headers.get("x-api-key").map(|v| v.as_bytes()) {
///         Some(b"acme-key") => Ok(Some(TenantId::new("acme")?)),
///         Some(_) => Err(HttpError::unauthorized("unknown API key")),
///         None => Ok(None),
///     }
/// }
/// fn takes(_: impl TenantResolver) {}
/// takes(from_api_key);
/// ```
pub trait TenantResolver: Send + Sync + 'static {
    /// The tenant of a request, if this resolver can tell.
    fn resolve(&self, parts: &Parts) -> Result<Option<TenantId>, HttpError>;
}

impl<F> TenantResolver for F
where
    F: Fn(&Parts) -> Result<Option<TenantId>, HttpError> + Send + Sync + 'static,
{
    fn resolve(&self, parts: &Parts) -> Result<Option<TenantId>, HttpError> {
        self(parts)
    }
}

/// How requests are resolved to tenants: off (everything is `default`), or in order the
/// host's resolver, the header, the subdomain, the configured default.
#[derive(Clone)]
pub(crate) struct TenantResolution {
    pub(crate) enabled: bool,
    pub(crate) header: HeaderName,
    pub(crate) subdomain: bool,
    pub(crate) default: TenantId,
    pub(crate) resolver: Option<Arc<dyn TenantResolver>>,
    /// The `Xcore`'s tenants: a resolved tenant must be admitted (404 `unknown_tenant`,
    /// 403 `tenant_limit`) before anything runs for it.
    pub(crate) admission: Option<Arc<crate::tenancy::Tenants>>,
}

impl Default for TenantResolution {
    fn default() -> Self {
        Self {
            enabled: false,
            header: HeaderName::from_static("x-tenant-id"),
            subdomain: false,
            default: TenantId::default(),
            resolver: None,
            admission: None,
        }
    }
}

impl fmt::Debug for TenantResolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantResolution")
            .field("enabled", &self.enabled)
            .field("header", &self.header)
            .field("subdomain", &self.subdomain)
            .field("default", &self.default)
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}

impl TenantResolution {
    /// The tenant of a request, admitted; an invalid tenant id, or the header given more
    /// than once, is an error, never a fallback.
    pub(crate) fn resolve(&self, parts: &Parts) -> Result<TenantId, HttpError> {
        if !self.enabled {
            return Ok(TenantId::default());
        }
        let tenant = self.name(parts)?;
        if let Some(tenants) = &self.admission
            && let Err(rejection) = tenants.admit(&tenant)
        {
            return Err(HttpError::new(
                http::StatusCode::from_u16(rejection.http_status())
                    .unwrap_or(http::StatusCode::FORBIDDEN),
                rejection.code(),
                rejection.to_string(),
            ));
        }
        Ok(tenant)
    }

    /// The tenant a request names.
    fn name(&self, parts: &Parts) -> Result<TenantId, HttpError> {
        if let Some(resolver) = &self.resolver
            && let Some(tenant) = resolver.resolve(parts)?
        {
            return Ok(tenant);
        }
        let mut values = parts.headers.get_all(&self.header).iter();
        if let Some(value) = values.next() {
            if values.next().is_some() {
                return Err(HttpError::new(
                    http::StatusCode::BAD_REQUEST,
                    "invalid_tenant",
                    format!(
                        "the `{}` header is given more than once; name one tenant",
                        self.header
                    ),
                ));
            }
            let value = value.to_str().map_err(|_| {
                HttpError::new(
                    http::StatusCode::BAD_REQUEST,
                    "invalid_tenant",
                    format!("the `{}` header is not visible ASCII", self.header),
                )
            })?;
            let tenant = TenantId::new(value.trim())?;
            if self.subdomain
                && let Some(label) = subdomain(parts)
                && label != tenant.as_str()
            {
                return Err(HttpError::new(
                    http::StatusCode::BAD_REQUEST,
                    "invalid_tenant",
                    format!(
                        "the `{}` header names tenant `{tenant}` but the host names `{label}`; \
                         name one tenant",
                        self.header
                    ),
                ));
            }
            return Ok(tenant);
        }
        if self.subdomain
            && let Some(label) = subdomain(parts)
        {
            return Ok(TenantId::new(&label)?);
        }
        Ok(self.default.clone())
    }
}

/// The first label of the request's host when it has at least three labels and is not an IP
/// address (`acme.example.com` → `acme`), lowercased.
fn subdomain(parts: &Parts) -> Option<String> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    let mut labels = host.split('.');
    let first = labels.next()?;
    (labels.count() >= 2).then(|| first.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().uri("/x");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn resolution_order() {
        let off = TenantResolution::default();
        assert_eq!(
            off.resolve(&parts(&[("x-tenant-id", "acme")]))
                .unwrap()
                .as_str(),
            "default"
        );
        let on = TenantResolution {
            enabled: true,
            subdomain: true,
            default: TenantId::new("fallback").unwrap(),
            ..TenantResolution::default()
        };
        assert_eq!(
            on.resolve(&parts(&[("X-Tenant-ID", "acme")]))
                .unwrap()
                .as_str(),
            "acme"
        );
        assert_eq!(on.resolve(&parts(&[])).unwrap().as_str(), "fallback");
        assert_eq!(
            on.resolve(&parts(&[("host", "Beta.example.com:8080")]))
                .unwrap()
                .as_str(),
            "beta"
        );
        assert_eq!(
            on.resolve(&parts(&[("host", "example.com")]))
                .unwrap()
                .as_str(),
            "fallback"
        );
        assert_eq!(
            on.resolve(&parts(&[("host", "127.0.0.1:80")]))
                .unwrap()
                .as_str(),
            "fallback"
        );
        for bad in ["Acme", "a b", "", &"a".repeat(64)] {
            let err = on.resolve(&parts(&[("x-tenant-id", bad)])).unwrap_err();
            assert_eq!(err.code(), "invalid_tenant", "{bad}");
        }
        let mut twice = parts(&[("x-tenant-id", "acme")]);
        twice
            .headers
            .append("x-tenant-id", http::HeaderValue::from_static("globex"));
        assert_eq!(on.resolve(&twice).unwrap_err().code(), "invalid_tenant");
        // Header and host naming two tenants: refused; naming the same one: fine.
        let conflict = parts(&[("x-tenant-id", "acme"), ("host", "globex.example.com")]);
        assert_eq!(on.resolve(&conflict).unwrap_err().code(), "invalid_tenant");
        let agree = parts(&[("x-tenant-id", "acme"), ("host", "acme.example.com")]);
        assert_eq!(on.resolve(&agree).unwrap().as_str(), "acme");
        let with_resolver = TenantResolution {
            resolver: Some(Arc::new(|p: &Parts| {
                if p.headers.contains_key("x-deny") {
                    return Err(HttpError::unauthorized("denied"));
                }
                Ok(p.headers
                    .contains_key("x-gold")
                    .then(|| TenantId::new("gold").unwrap()))
            })),
            ..on
        };
        assert_eq!(
            with_resolver
                .resolve(&parts(&[("x-gold", "1"), ("x-tenant-id", "acme")]))
                .unwrap()
                .as_str(),
            "gold"
        );
        assert_eq!(
            with_resolver
                .resolve(&parts(&[("x-tenant-id", "acme")]))
                .unwrap()
                .as_str(),
            "acme"
        );
        assert_eq!(
            with_resolver
                .resolve(&parts(&[("x-deny", "1")]))
                .unwrap_err()
                .status(),
            401
        );
    }
}
