//! [`WebBuilder`]: prefixes, the admin token, tenancy, the body limit.

use std::{fmt, sync::Arc};

use http::HeaderName;

use super::{
    Edge, EdgeLimits, TenantResolver, Web,
    admin::{Admin, AdminToken},
    dispatch::Dispatch,
    pipeline::Tracing,
    prefix::Prefix,
    route_label::RouteLabels,
    tenant::TenantResolution,
};
use crate::{
    TenantId, Xcore,
    config::{Config, TenancyConfig},
    tenancy::InvalidTenantId,
};

/// The body limit by default: 2 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Builds a [`Web`]: from [`Xcore::web`] or [`Web::builder`].
///
/// Defaults: plugins under `/plugin`, the admin API under `/xcore` with no token (only its
/// health endpoints answer), tenancy off (every request is for `default`), bodies up to
/// 2 MiB. [`config`](Self::config) takes the tenancy and the admin token from the config file.
///
/// ```
/// use xcore::{Xcore, config::{Config, Format}};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::from_str(
///     "app: { admin_token: a-long-random-admin-token }\ntenancy: { enabled: true }\n",
///     Format::Yaml,
/// )?;
/// let xcore = Xcore::builder().without_registered().build()?;
/// let web = xcore.web().config(&config).plugin_prefix("/api/plugins").body_limit(64 * 1024).build()?;
/// assert_eq!(web.plugin_prefix(), "/api/plugins");
/// assert!(xcore.web().plugin_prefix("/xcore/p").build().is_err()); // inside the admin API
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct WebBuilder {
    xcore: Xcore,
    plugin_prefix: String,
    admin_prefix: String,
    admin_token: Option<Result<AdminToken, ()>>,
    tenancy: TenancyConfig,
    resolver: Option<Arc<dyn TenantResolver>>,
    body_limit: usize,
    limits: EdgeLimits,
}

impl WebBuilder {
    /// A builder with the defaults.
    pub fn new(xcore: Xcore) -> Self {
        Self {
            xcore,
            plugin_prefix: "/plugin".to_owned(),
            admin_prefix: "/xcore".to_owned(),
            admin_token: None,
            tenancy: TenancyConfig::default(),
            resolver: None,
            body_limit: DEFAULT_BODY_LIMIT,
            limits: EdgeLimits::default(),
        }
    }

    /// Takes the `tenancy` section, the edge limits of the `web` section and `app.admin_token`
    /// (when set) from the config.
    pub fn config(self, config: &Config) -> Self {
        let this = self
            .tenancy(&config.tenancy)
            .edge_limits(EdgeLimits::from(&config.web));
        match &config.app.admin_token {
            Some(token) => this.admin_token(token),
            None => this,
        }
    }

    /// How requests are resolved to tenants: off by default; when enabled, the header
    /// (`X-Tenant-ID`), then the subdomain if enabled, then the configured default.
    pub fn tenancy(mut self, tenancy: &TenancyConfig) -> Self {
        self.tenancy = tenancy.clone();
        self
    }

    /// A resolver of the host's, asked first for every request (and turning tenancy on).
    pub fn tenant_resolver(mut self, resolver: impl TenantResolver) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// The admin API's bearer token. Only its SHA-256 digest is kept; requests are checked
    /// against it in constant time.
    pub fn admin_token(mut self, token: impl AsRef<str>) -> Self {
        let token = token.as_ref();
        self.admin_token = Some(if token.is_empty() {
            Err(())
        } else {
            Ok(AdminToken::new(token))
        });
        self
    }

    /// Where plugins are mounted: `/plugin` by default.
    pub fn plugin_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.plugin_prefix = prefix.into();
        self
    }

    /// Where the admin API is mounted: `/xcore` by default. It may lie inside the plugin
    /// prefix (it is matched first), not the other way round.
    pub fn admin_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.admin_prefix = prefix.into();
        self
    }

    /// The largest request body accepted, in bytes (2 MiB by default); larger is 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The time limits at the edge (see [`EdgeLimits`]; the defaults otherwise).
    pub fn edge_limits(mut self, limits: EdgeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks the settings and builds the service.
    pub fn build(self) -> Result<Web, WebBuildError> {
        let prefix = |which: &'static str, value: &str| {
            Prefix::new(value).map_err(|reason| WebBuildError::InvalidPrefix {
                which,
                prefix: value.to_owned(),
                reason,
            })
        };
        let plugins = prefix("plugin", &self.plugin_prefix)?;
        let admin = prefix("admin", &self.admin_prefix)?;
        if plugins.within(&admin) {
            return Err(WebBuildError::PluginsInsideAdmin {
                plugins: plugins.to_string(),
                admin: admin.to_string(),
            });
        }
        let token = self
            .admin_token
            .transpose()
            .map_err(|()| WebBuildError::EmptyAdminToken)?;
        let header =
            HeaderName::from_bytes(self.tenancy.header.trim().as_bytes()).map_err(|_| {
                WebBuildError::InvalidTenantHeader {
                    header: self.tenancy.header.clone(),
                }
            })?;
        let default =
            TenantId::new(&self.tenancy.default).map_err(WebBuildError::InvalidDefaultTenant)?;
        let tenancy = TenantResolution {
            enabled: self.tenancy.enabled || self.resolver.is_some(),
            header,
            subdomain: self.tenancy.subdomain,
            default,
            resolver: self.resolver,
            admission: Some(self.xcore.tenants().clone()),
        };
        let admin = Admin {
            #[cfg(feature = "openapi")]
            openapi: Arc::new(super::openapi::OpenApiDocs::new(
                self.xcore.clone(),
                admin.clone(),
                plugins.clone(),
                tenancy.enabled.then(|| tenancy.header.clone()),
            )),
            xcore: self.xcore,
            token,
            prefix: admin.clone(),
            plugin_prefix: plugins.clone(),
        };
        let trace = Tracing::new(
            RouteLabels::new(admin.xcore.clone(), admin.prefix.clone(), plugins.clone()),
            admin.xcore.metrics().is_enabled(),
        );
        Ok(Web::new(
            Dispatch::new(admin.clone(), plugins.clone()),
            trace,
            plugins,
            admin.prefix,
            self.body_limit,
            tenancy,
            Edge::new(self.limits),
        ))
    }
}

impl fmt::Debug for WebBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebBuilder")
            .field("plugin_prefix", &self.plugin_prefix)
            .field("admin_prefix", &self.admin_prefix)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("tenancy", &self.tenancy)
            .field("resolver", &self.resolver.is_some())
            .field("body_limit", &self.body_limit)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why a [`Web`] could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WebBuildError {
    /// A prefix is not a path of at least one segment.
    #[error("invalid {which} prefix `{prefix}`: {reason}")]
    InvalidPrefix {
        /// `plugin` or `admin`.
        which: &'static str,
        /// The prefix given.
        prefix: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The plugin prefix lies inside the admin prefix: no plugin could be reached.
    #[error(
        "the plugin prefix `{plugins}` lies inside the admin prefix `{admin}`, which is matched first; \
         choose prefixes apart (the admin prefix may lie inside the plugin prefix)"
    )]
    PluginsInsideAdmin {
        /// The plugin prefix.
        plugins: String,
        /// The admin prefix.
        admin: String,
    },
    /// The admin token is empty.
    #[error("the admin token is empty; set a long random token, or none to disable token access")]
    EmptyAdminToken,
    /// `tenancy.header` is not a valid HTTP header name.
    #[error("`tenancy.header` `{header}` is not a valid HTTP header name")]
    InvalidTenantHeader {
        /// The header name given.
        header: String,
    },
    /// `tenancy.default` is not a valid tenant id.
    #[error("`tenancy.default`: {0}")]
    InvalidDefaultTenant(InvalidTenantId),
}
