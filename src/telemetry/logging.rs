//! The process's log subscriber: text or JSON lines on stderr, filtered by `OWL_LOG`,
//! plus the OpenTelemetry layer when trace export is configured.
//!
//! Log lines inside a request carry its request span's fields: the transaction id
//! (`tid`) and, when tracing is on, the `trace_id`. Phase spans are for traces only
//! and never appear in logs.

use super::traces;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What was installed; [`shutdown`](Self::shutdown) flushes spans still buffered.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// True when traces are exported.
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered and stops the exporter (bounded by the export timeout).
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.force_flush() {
                tracing::warn!(error = %e, "exporting the last spans failed");
            }
            let _ = p.shutdown();
        }
    }
}

/// The filter of the log layer: `OWL_LOG` (else `default_level`), never phase spans.
fn log_filter(default_level: &str) -> EnvFilter {
    let filter =
        EnvFilter::try_from_env("OWL_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    match format!("{}=off", traces::PHASE).parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    }
}

/// Installs the global subscriber: logs as text or JSON, and — when `traces` is true
/// and an OTLP endpoint is configured (needs a Tokio runtime) — span export.
pub fn init(json: bool, default_level: &str, traces: bool) -> anyhow::Result<Telemetry> {
    let provider = if traces {
        traces::provider_from_env()?
    } else {
        None
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(log_filter(default_level))
            .boxed()
    } else {
        fmt.with_filter(log_filter(default_level)).boxed()
    };
    let otel = provider.as_ref().map(traces::layer);
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(Telemetry { provider })
}
