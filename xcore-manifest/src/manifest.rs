use std::{num::NonZeroUsize, time::Duration};

use semver::Version;

use crate::{
    Grant, GrantSpec, Grants, ManifestError, RateLimit, Requirement, parse_duration, validate_name,
};

/// The default per-call timeout of a plugin, when its manifest sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a plugin runs.
///
/// Every xcore plugin is Rust code linked into the host and runs in the host's process, with
/// the host's privileges: `trusted` is the one mode. xcore does not call an in-process plugin
/// "sandboxed" (the Python framework did, and its sandbox was not a boundary); what confines a
/// plugin are its grants, checked at every boundary xcore controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// In-process, one shared instance serving concurrent calls.
    #[default]
    Trusted,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trusted" => Ok(Mode::Trusted),
            other => Err(format!("unknown mode `{other}`; the one mode is `trusted`")),
        }
    }
}

/// A plugin's manifest: who it is, what it needs, what it may do, and its call limits.
///
/// Built by `#[plugin(...)]` or by hand with [`Manifest::builder`].
#[derive(Debug, Clone)]
pub struct Manifest {
    name: String,
    version: Version,
    description: String,
    author: String,
    services: Vec<String>,
    requires: Vec<Requirement>,
    permissions: Grants,
    allowed_callers: Vec<String>,
    mode: Mode,
    timeout: Duration,
    rate_limit: Option<RateLimit>,
    max_concurrency: Option<NonZeroUsize>,
}

impl Manifest {
    /// Starts a manifest for plugin `name` at semver `version`.
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ManifestBuilder {
        ManifestBuilder {
            name: name.into(),
            version: version.into(),
            ..ManifestBuilder::default()
        }
    }

    /// The plugin's name, unique in one `Xcore`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// A one-line description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The author.
    pub fn author(&self) -> &str {
        &self.author
    }

    /// The services the plugin needs; they are started before it.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// The plugins the plugin requires; they are started before it.
    pub fn requires(&self) -> &[Requirement] {
        &self.requires
    }

    /// The plugin's grants.
    pub fn permissions(&self) -> &Grants {
        &self.permissions
    }

    /// Which plugins may call this one (names, or `*` for any plugin holding a grant for it).
    pub fn allowed_callers(&self) -> &[String] {
        &self.allowed_callers
    }

    /// Whether plugin `caller` is admitted by [`allowed_callers`](Self::allowed_callers).
    pub fn admits_caller(&self, caller: &str) -> bool {
        self.allowed_callers.iter().any(|c| c == "*" || c == caller)
    }

    /// The execution mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The per-call timeout (10 s unless the manifest says otherwise).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The call budget, if any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// The most calls the plugin serves at once, if limited; further calls get `overloaded`.
    pub fn max_concurrency(&self) -> Option<NonZeroUsize> {
        self.max_concurrency
    }
}

/// Builds a [`Manifest`]; every value is checked by [`build`](Self::build).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ManifestBuilder {
    name: String,
    version: String,
    description: String,
    author: String,
    services: Vec<String>,
    requires: Vec<String>,
    permissions: Vec<String>,
    grant_specs: Vec<GrantSpec>,
    allowed_callers: Option<Vec<String>>,
    mode: Option<String>,
    timeout: Option<String>,
    timeout_duration: Option<Duration>,
    rate_limit: Option<String>,
    max_concurrency: Option<usize>,
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl ManifestBuilder {
    /// A one-line description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The author.
    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.author = author.into();
        self
    }

    /// Services the plugin needs (by service name).
    pub fn services<I, S>(mut self, services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.services.extend(strings(services));
        self
    }

    /// Plugins the plugin requires: `name` or `name@REQ` (`audit@^1.2`).
    pub fn requires<I, S>(mut self, requires: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.requires.extend(strings(requires));
        self
    }

    /// Grants in string form (`db.default: read, write`).
    pub fn permissions<I, S>(mut self, grants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.permissions.extend(strings(grants));
        self
    }

    /// Grants in config form.
    pub fn grant_specs(mut self, specs: impl IntoIterator<Item = GrantSpec>) -> Self {
        self.grant_specs.extend(specs);
        self
    }

    /// Plugins allowed to call this one: names, or `*` (the default) for any plugin holding a
    /// grant for it. An empty list admits no plugin (the host can still call).
    pub fn allowed_callers<I, S>(mut self, callers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_callers = Some(strings(callers));
        self
    }

    /// The execution mode (`trusted`).
    pub fn mode(mut self, mode: impl Into<String>) -> Self {
        self.mode = Some(mode.into());
        self
    }

    /// The per-call timeout, written as a duration (`10s`, `500ms`).
    pub fn timeout(mut self, timeout: impl Into<String>) -> Self {
        self.timeout = Some(timeout.into());
        self.timeout_duration = None;
        self
    }

    /// The per-call timeout as a [`Duration`].
    pub fn timeout_duration(mut self, timeout: Duration) -> Self {
        self.timeout_duration = Some(timeout);
        self.timeout = None;
        self
    }

    /// The call budget, `CALLS/PERIOD` (`100/1m`).
    pub fn rate_limit(mut self, limit: impl Into<String>) -> Self {
        self.rate_limit = Some(limit.into());
        self
    }

    /// The most calls served at once.
    pub fn max_concurrency(mut self, max: usize) -> Self {
        self.max_concurrency = Some(max);
        self
    }

    /// Checks every value and builds the manifest. The error names the key at fault.
    pub fn build(self) -> Result<Manifest, ManifestError> {
        let plugin = self.name.as_str();
        let err = |key, msg: String| ManifestError::new(plugin, key, msg);
        validate_name(plugin).map_err(|e| err("name", e.to_string()))?;
        let version = Version::parse(self.version.trim()).map_err(|e| {
            err(
                "version",
                format!(
                    "`{}` is not a semver version ({e}); write e.g. `1.2.0`",
                    self.version
                ),
            )
        })?;
        for service in &self.services {
            validate_name(service).map_err(|e| err("services", e.to_string()))?;
        }
        let requires = self
            .requires
            .iter()
            .map(|r| r.parse::<Requirement>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err("requires", e))?;
        for (i, r) in requires.iter().enumerate() {
            if r.name() == plugin {
                return Err(err(
                    "requires",
                    format!("the plugin requires itself (`{r}`)"),
                ));
            }
            if requires[..i].iter().any(|o| o.name() == r.name()) {
                return Err(err("requires", format!("`{}` is listed twice", r.name())));
            }
        }
        let mut grants = self
            .permissions
            .iter()
            .map(|g| Grant::parse(g))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err("permissions", e.to_string()))?;
        for spec in &self.grant_specs {
            grants.push(Grant::from_spec(spec).map_err(|e| err("permissions", e.to_string()))?);
        }
        let allowed_callers = self.allowed_callers.unwrap_or_else(|| vec!["*".to_owned()]);
        for caller in &allowed_callers {
            if caller != "*" {
                validate_name(caller)
                    .map_err(|e| err("allowed_callers", format!("{e} (or `*`)")))?;
            }
        }
        let mode = match &self.mode {
            Some(m) => m.parse().map_err(|e| err("mode", e))?,
            None => Mode::default(),
        };
        let timeout = match (&self.timeout, self.timeout_duration) {
            (Some(t), _) => parse_duration(t).map_err(|e| err("timeout", e))?,
            (None, Some(d)) => d,
            (None, None) => DEFAULT_TIMEOUT,
        };
        if timeout.is_zero() {
            return Err(err(
                "timeout",
                "the timeout is zero; a call could never finish".into(),
            ));
        }
        let rate_limit = self
            .rate_limit
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| err("rate_limit", e))?;
        let max_concurrency = self
            .max_concurrency
            .map(|m| {
                NonZeroUsize::new(m).ok_or_else(|| {
                    err(
                        "max_concurrency",
                        "must be at least 1 (omit it for no limit)".into(),
                    )
                })
            })
            .transpose()?;
        Ok(Manifest {
            name: self.name,
            version,
            description: self.description,
            author: self.author,
            services: self.services,
            requires,
            permissions: Grants::from_grants(grants),
            allowed_callers,
            mode,
            timeout,
            rate_limit,
            max_concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_manifest() {
        let m = Manifest::builder("user_manager", "2.5.0")
            .description("users")
            .author("me")
            .services(["db", "cache"])
            .requires(["audit@^1.2"])
            .permissions(["db.default: read, write", "plugin:audit: record"])
            .allowed_callers(["billing"])
            .mode("trusted")
            .timeout("2s")
            .rate_limit("10/s")
            .max_concurrency(4)
            .build()
            .unwrap();
        assert_eq!(m.services(), ["db", "cache"]);
        assert_eq!(m.requires()[0].to_string(), "audit@^1.2");
        assert!(m.permissions().allows("plugin:audit", "record"));
        assert!(m.admits_caller("billing") && !m.admits_caller("crm"));
        assert_eq!(m.timeout(), Duration::from_secs(2));
        assert_eq!(m.max_concurrency().unwrap().get(), 4);
    }

    #[test]
    fn defaults() {
        let m = Manifest::builder("a", "0.1.0").build().unwrap();
        assert_eq!(m.timeout(), DEFAULT_TIMEOUT);
        assert!(m.admits_caller("anyone"));
        assert!(m.permissions().is_empty());
        assert_eq!(m.mode(), Mode::Trusted);
    }

    #[test]
    fn each_bad_key_is_named() {
        let base = || Manifest::builder("a", "1.0.0");
        let cases = [
            (Manifest::builder("A", "1.0.0"), "name"),
            (Manifest::builder("a", "1.0"), "version"),
            (base().services(["Db"]), "services"),
            (base().requires(["b@^x"]), "requires"),
            (base().requires(["a"]), "requires"),
            (base().requires(["b", "b@1"]), "requires"),
            (base().permissions(["db.x"]), "permissions"),
            (base().allowed_callers(["B"]), "allowed_callers"),
            (base().mode("sandboxed"), "mode"),
            (base().timeout("10"), "timeout"),
            (base().timeout("0s"), "timeout"),
            (base().rate_limit("fast"), "rate_limit"),
            (base().max_concurrency(0), "max_concurrency"),
        ];
        for (builder, key) in cases {
            let e = builder.build().unwrap_err();
            assert_eq!(e.key(), key, "{e}");
            assert!(e.to_string().contains(key));
        }
    }
}
