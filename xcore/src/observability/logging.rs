//! [`init_tracing`]: the `observability` config section applied, for binaries.

use tracing::Subscriber;
use tracing_subscriber::{Layer, Registry, fmt::MakeWriter, prelude::*};

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
    /// `observability.otlp_endpoint` is set but the OTLP exporter cannot be built: xcore was
    /// built without its `opentelemetry` feature, or the endpoint is not a valid URL.
    #[error("cannot export traces to `{endpoint}`: {reason}")]
    Otlp {
        /// The endpoint configured.
        endpoint: String,
        /// Why, and what to do.
        reason: String,
    },
}

/// Installs the process's global `tracing` subscriber from the `observability` section:
///
/// | setting | applied as |
/// |---|---|
/// | `RUST_LOG` (environment), when set and not blank | the filter, in `tracing_subscriber::EnvFilter` syntax (`info,xcore=debug`); it wins over the config, so an operator can turn a module up without editing the file |
/// | `observability.log_level` | the filter otherwise (default `info`) |
/// | `observability.log_format: text` | human-readable lines on stdout (the default) |
/// | `observability.log_format: json` | one JSON object per line on stdout, with the current span and its parents (`xcore.http`: `plugin`, `route`, `tenant`, `status`, `latency_ms`) |
/// | `observability.otlp_endpoint` (feature `opentelemetry`) | spans are also exported over OTLP/HTTP (protobuf) to `{endpoint}/v1/traces`, in batches from a thread of their own, as service `observability.service_name` (default `xcore`): spans at INFO and above, and xcore's own at DEBUG and above (`xcore.http`, `xcore.call`), whatever the log filter; `xcore.http` continues the `traceparent` it receives |
///
/// For binaries (the examples call it first thing): a tracing subscriber is process-wide by
/// nature, so a library never calls this, and a host that installs its own subscriber does not
/// either. A bad filter or endpoint is an error naming it, never a silent default. Keep the
/// [`TracingGuard`] until the end of `main`: dropping it flushes and stops the exporter.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = xcore::config::Config::from_file("xcore.yaml")?;
/// let _tracing = xcore::observability::init_tracing(&config.observability)?;
/// # Ok(())
/// # }
/// ```
pub fn init_tracing(config: &ObservabilityConfig) -> Result<TracingGuard, LogInitError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (subscriber, guard) = tracing_subscriber(config, rust_log.as_deref(), std::io::stdout)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| LogInitError::AlreadyInstalled(e.to_string()))?;
    Ok(guard)
}

/// The subscriber [`init_tracing`] installs, writing to `writer`, with `rust_log` standing for
/// the `RUST_LOG` variable, and the guard of its exporter: for a host that installs it its own
/// way (or a test, with `tracing::subscriber::set_default`).
pub fn tracing_subscriber<W>(
    config: &ObservabilityConfig,
    rust_log: Option<&str>,
    writer: W,
) -> Result<(Box<dyn Subscriber + Send + Sync>, TracingGuard), LogInitError>
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
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let mut layers: Vec<BoxedLayer> = vec![match config.log_format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_ansi(false).with_filter(filter).boxed(),
    }];
    let guard = match config.otlp_endpoint.as_deref().map(str::trim) {
        None | Some("") => TracingGuard::default(),
        Some(endpoint) => {
            let (layer, guard) = otlp(endpoint, &config.service_name)?;
            layers.push(layer);
            guard
        }
    };
    let subscriber = tracing_subscriber::registry().with(layers);
    Ok((Box::new(subscriber), guard))
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// What keeps the span exporter of [`init_tracing`] running: dropping it exports what is
/// left (bounded by the exporter's timeout) and stops it. Without an exporter it does
/// nothing.
#[derive(Default)]
#[must_use = "dropping the guard stops the span exporter"]
pub struct TracingGuard {
    #[cfg(feature = "opentelemetry")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl TracingGuard {
    /// Exports the spans ended so far now (blocking until the exporter answers or times out).
    pub fn flush(&self) {
        #[cfg(feature = "opentelemetry")]
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "the span exporter could not flush");
        }
    }
}

impl std::fmt::Debug for TracingGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "opentelemetry")]
        let exporting = self.provider.is_some();
        #[cfg(not(feature = "opentelemetry"))]
        let exporting = false;
        f.debug_struct("TracingGuard")
            .field("exporting", &exporting)
            .finish()
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        #[cfg(feature = "opentelemetry")]
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

#[cfg(feature = "opentelemetry")]
fn otlp(endpoint: &str, service_name: &str) -> Result<(BoxedLayer, TracingGuard), LogInitError> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let failed = |reason: String| LogInitError::Otlp {
        endpoint: endpoint.to_owned(),
        reason,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(failed(
            "give an http:// URL of an OTLP/HTTP collector, like `http://127.0.0.1:4318`".into(),
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer("xcore");
    // Its own filter, whatever the log level: spans at INFO, and xcore's request and call
    // spans (DEBUG).
    let spans = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("xcore", tracing::Level::DEBUG);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(spans)
        .boxed();
    Ok((
        layer,
        TracingGuard {
            provider: Some(provider),
        },
    ))
}

#[cfg(not(feature = "opentelemetry"))]
fn otlp(endpoint: &str, _: &str) -> Result<(BoxedLayer, TracingGuard), LogInitError> {
    Err(LogInitError::Otlp {
        endpoint: endpoint.to_owned(),
        reason: "xcore was built without its `opentelemetry` feature: enable it, or remove \
                 `observability.otlp_endpoint`"
            .into(),
    })
}
