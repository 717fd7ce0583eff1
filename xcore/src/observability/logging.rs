//! [`init_tracing`]: the `observability` config section applied, for binaries.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogFormat, ObservabilityConfig};

/// Why the log setup could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogInitError {
    /// The filter (`RUST_LOG`, else `observability.log_level`) does not parse.
    #[error("invalid log filter `{filter}` (from {origin}): {reason}")]
    InvalidFilter {
        /// The filter given.
        filter: String,
        /// `RUST_LOG` or `observability.log_level`.
        origin: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// A global `tracing` subscriber is already installed (by the host, or a second call).
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Installs the process's global `tracing` subscriber from the `observability` section:
///
/// | setting | applied as |
/// |---|---|
/// | `RUST_LOG` (environment), when set and not blank | the filter, in `tracing_subscriber::EnvFilter` syntax (`info,xcore=debug`); it wins over the config, so an operator can turn a module up without editing the file |
/// | `observability.log_level` | the filter otherwise (default `info`) |
/// | `observability.log_format: text` | human-readable lines on stdout (the default) |
/// | `observability.log_format: json` | one JSON object per line on stdout, with the current span and its parents (`xcore.http`: `plugin`, `route`, `tenant`, `status`, `latency_ms`) |
///
/// For binaries (the examples call it first thing): a tracing subscriber is process-wide by
/// nature, so a library never calls this, and a host that installs its own subscriber does not
/// either. A bad filter is an error naming it, never a silent default.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = xcore::config::Config::from_file("xcore.yaml")?;
/// xcore::observability::init_tracing(&config.observability)?;
/// # Ok(())
/// # }
/// ```
pub fn init_tracing(config: &ObservabilityConfig) -> Result<(), LogInitError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let subscriber = tracing_subscriber(config, rust_log.as_deref(), std::io::stdout)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| LogInitError::AlreadyInstalled(e.to_string()))
}

/// The subscriber [`init_tracing`] installs, writing to `writer`, with `rust_log` standing for
/// the `RUST_LOG` variable: for a host that installs it its own way (or a test, with
/// `tracing::subscriber::set_default`).
pub fn tracing_subscriber<W>(
    config: &ObservabilityConfig,
    rust_log: Option<&str>,
    writer: W,
) -> Result<Box<dyn Subscriber + Send + Sync>, LogInitError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, origin) = match rust_log.map(str::trim) {
        Some(env) if !env.is_empty() => (env, "RUST_LOG"),
        _ => (config.log_level.trim(), "observability.log_level"),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| {
        LogInitError::InvalidFilter {
            filter: filter.chars().take(200).collect(),
            origin,
            reason: e.to_string(),
        }
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    Ok(match config.log_format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().with_ansi(false).finish()),
    })
}
