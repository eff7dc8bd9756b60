//! The process's log subscriber: text or JSON lines on stderr, filtered by `OWL_LOG`;
//! and, when trace export is configured, the process's tracer.
//!
//! Log lines inside a request carry its log span's fields: the transaction id
//! (`tid`) and, when tracing is on, the `trace_id`. Trace spans are not `tracing`
//! spans (see [`traces`]) and never appear in logs.

use super::traces;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What was installed; [`shutdown`](Self::shutdown) flushes spans still buffered.
#[derive(Default)]
pub struct Telemetry {
    tracing: bool,
}

impl Telemetry {
    /// True when traces are exported.
    pub fn tracing(&self) -> bool {
        self.tracing
    }

    /// Exports what is buffered and stops the exporter (bounded by the export timeout).
    pub fn shutdown(self) {
        if self.tracing {
            traces::shutdown();
        }
    }
}

/// Target of a request's log span.
pub(crate) const REQUEST: &str = "owl::request";

/// The log span of a request: every log line inside it carries the request's
/// transaction id and, when tracing is on, its trace id. Only those two fields: the
/// log layer formats every field of this span for each request.
pub fn request_span(tid: &str, trace_id: Option<opentelemetry::trace::TraceId>) -> tracing::Span {
    let span = tracing::info_span!(
        target: REQUEST,
        "request",
        tid = %tid,
        trace_id = tracing::field::Empty,
    );
    if let Some(t) = trace_id
        && !span.is_disabled()
    {
        span.record("trace_id", super::traces::trace_id_hex(t).as_str());
    }
    span
}

/// The filter of the log layer: `OWL_LOG`, else `default_level`.
fn log_filter(default_level: &str) -> EnvFilter {
    EnvFilter::try_from_env("OWL_LOG").unwrap_or_else(|_| EnvFilter::new(default_level))
}

/// Colour codes only on a terminal, and never with `NO_COLOR` set to anything but the
/// empty string (no-color.org): a file, a pipe, journald or `kubectl logs` get plain
/// text.
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Installs the global subscriber: logs as text or JSON, and — when `traces` is true
/// and an OTLP endpoint is configured (needs a Tokio runtime) — the tracer exporting
/// spans.
pub fn init(json: bool, default_level: &str, traces: bool) -> anyhow::Result<Telemetry> {
    let processor = if traces {
        traces::processor_from_env()?
    } else {
        None
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ));
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
    tracing_subscriber::registry()
        .with(fmt)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    let tracing = processor.is_some();
    if let Some(p) = processor {
        traces::install(p);
    }
    Ok(Telemetry { tracing })
}

#[cfg(test)]
mod colour_tests {
    use super::colour;
    use std::ffi::OsStr;

    /// Issue 15 §21.
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }
}
