//! Checks serde cannot express: values in range, and secrets in production.

use super::{
    Config,
    error::{ConfigError, Origin},
    node::Source,
    sections::Environment,
};

/// Placeholders seen in examples and tutorials; never accepted as production secrets.
const PLACEHOLDERS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "changeit",
    "secret",
    "xcore",
    "password",
    "default",
    "admin",
    "token",
    "test",
    "dev",
];

/// The shortest secret accepted in production.
const MIN_SECRET_LEN: usize = 16;

/// Value checks that hold in every environment.
pub(crate) fn check_values(config: &Config) -> Result<(), ConfigError> {
    if config.services.worker.concurrency == 0 {
        return Err(invalid(
            config,
            "services.worker.concurrency",
            "must be at least 1",
            "set it to 1 or more",
        ));
    }
    let header = &config.tenancy.header;
    if header.is_empty()
        || !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(invalid(
            config,
            "tenancy.header",
            "is not an HTTP header name",
            "use letters, digits and `-`, e.g. `X-Tenant-ID`",
        ));
    }
    if config.tenancy.default.is_empty() {
        return Err(invalid(
            config,
            "tenancy.default",
            "is empty",
            "name the default tenant, e.g. `default`",
        ));
    }
    // The cache service runs the same check at boot; running it here names the file.
    if let Err(err) = config.services.cache.check() {
        return Err(invalid(
            config,
            "services.cache",
            &err.to_string(),
            "fix the cache options",
        ));
    }
    Ok(())
}

/// With `app.env: production`, every secret must be set, long enough, not a placeholder, and
/// distinct from the others.
pub(crate) fn check_production(config: &Config) -> Result<(), ConfigError> {
    if config.app.env != Environment::Production {
        return Ok(());
    }
    let secret = &config.app.secret_key;
    if secret.is_empty() {
        return Err(insecure(
            config,
            "app.secret_key",
            "it is empty; set it to a random value of at least 16 characters from the environment, \
             e.g. `secret_key: ${XCORE_SECRET_KEY}` (generate one with `openssl rand -hex 32`)",
        ));
    }
    check_strength(config, "app.secret_key", secret)?;
    if let Some(token) = &config.app.admin_token {
        if token.is_empty() {
            return Err(insecure(
                config,
                "app.admin_token",
                "it is empty; set a random token of at least 16 characters, or remove the key to disable token access",
            ));
        }
        check_strength(config, "app.admin_token", token)?;
        if token == secret {
            return Err(insecure(
                config,
                "app.admin_token",
                "it equals `app.secret_key`; use two distinct random values",
            ));
        }
    }
    Ok(())
}

fn check_strength(config: &Config, key: &str, value: &str) -> Result<(), ConfigError> {
    let lower = value.trim().to_lowercase();
    if PLACEHOLDERS.contains(&lower.as_str()) {
        return Err(insecure(
            config,
            key,
            "it is a well-known placeholder; set a random value of at least 16 characters \
             (generate one with `openssl rand -hex 32`)",
        ));
    }
    if value.chars().count() < MIN_SECRET_LEN {
        return Err(insecure(
            config,
            key,
            &format!(
                "it is shorter than {MIN_SECRET_LEN} characters; set a random value of at least \
                 {MIN_SECRET_LEN} characters (generate one with `openssl rand -hex 32`)"
            ),
        ));
    }
    Ok(())
}

/// The origin and line of a key of the loaded tree (the config's origin without a tree).
fn locate(config: &Config, key: &str) -> (Origin, Option<usize>) {
    let path: Vec<&str> = key.split('.').collect();
    match config.tree.as_deref().and_then(|tree| tree.entry(&path)) {
        Some(entry) => match &entry.value.source {
            Source::Override(var) => (Origin::Env(var.as_str().into()), None),
            _ => (config.origin.clone(), entry.key_line.or(entry.value.line)),
        },
        None => (config.origin.clone(), None),
    }
}

fn insecure(config: &Config, key: &str, message: &str) -> ConfigError {
    let (origin, line) = locate(config, key);
    ConfigError::Insecure {
        origin,
        line,
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

fn invalid(config: &Config, key: &str, message: &str, hint: &'static str) -> ConfigError {
    let (origin, line) = locate(config, key);
    ConfigError::Invalid {
        origin,
        line,
        key: key.to_owned(),
        message: message.to_owned(),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production(secret: &str, token: Option<&str>) -> Config {
        let mut config = Config::default();
        config.app.env = Environment::Production;
        config.app.secret_key = secret.to_owned();
        config.app.admin_token = token.map(str::to_owned);
        config
    }

    #[test]
    fn development_accepts_anything() {
        assert!(check_production(&Config::default()).is_ok());
    }

    #[test]
    fn production_needs_strong_distinct_secrets() {
        let strong = "4f1c9a7e2b6d8e0f3a5c7b9d";
        let other = "9d7b5c3a1f0e8d6b2e7a9c1f";
        assert!(check_production(&production(strong, None)).is_ok());
        assert!(check_production(&production(strong, Some(other))).is_ok());
        for (secret, token, key, needle) in [
            ("", None, "app.secret_key", "empty"),
            ("change-me", None, "app.secret_key", "placeholder"),
            ("CHANGEME", None, "app.secret_key", "placeholder"),
            ("short-secret", None, "app.secret_key", "shorter than 16"),
            (strong, Some("secret"), "app.admin_token", "placeholder"),
            (strong, Some(""), "app.admin_token", "empty"),
            (strong, Some(strong), "app.admin_token", "distinct"),
        ] {
            let err = check_production(&production(secret, token)).unwrap_err();
            assert_eq!(err.key(), Some(key));
            assert!(err.to_string().contains(needle), "{err}");
            assert!(
                !strong.is_empty() && !err.to_string().contains(strong),
                "secrets stay out of messages"
            );
        }
    }

    #[test]
    fn value_checks() {
        let mut config = Config::default();
        assert!(check_values(&config).is_ok());
        config.services.worker.concurrency = 0;
        assert_eq!(
            check_values(&config).unwrap_err().key(),
            Some("services.worker.concurrency")
        );
        let mut config = Config::default();
        config.tenancy.header = "X Tenant".into();
        assert_eq!(
            check_values(&config).unwrap_err().key(),
            Some("tenancy.header")
        );
    }
}
