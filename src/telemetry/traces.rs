//! OpenTelemetry traces: one trace per request, exported over OTLP/HTTP.
//!
//! Off unless an OTLP endpoint is configured with the standard variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; protocol,
//! headers, timeout, sampler, service name and resource attributes from their
//! `OTEL_*` variables too). When off, the phase spans are disabled at their call
//! sites and cost next to nothing.
//!
//! Spans are ordinary `tracing` spans: the request span (target [`REQUEST`]) is also
//! seen by the log subscriber, so every log line carries the request's `tid` and
//! `trace_id`; phase spans (target [`PHASE`]) are seen only by the OpenTelemetry layer.
//! W3C `traceparent` from the client becomes the parent of the request span; the
//! current span's context is injected into requests to the controller and to Lambda.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;

/// Target of the request span (seen by logs and traces).
pub const REQUEST: &str = "owl::request";
/// Target of phase spans (seen by traces only).
pub const PHASE: &str = "owl::trace";

static ENABLED: AtomicBool = AtomicBool::new(false);
static PROPAGATOR: LazyLock<TraceContextPropagator> = LazyLock::new(TraceContextPropagator::new);

/// True once an OpenTelemetry layer is installed.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The OTLP encoding the environment asks for, when it asks for trace export at all.
/// The default is `http/protobuf`, as the OpenTelemetry specification says (the
/// exporter crate would otherwise pick JSON when its JSON feature is compiled in, which
/// costs several times more CPU per span).
fn configured() -> anyhow::Result<Option<opentelemetry_otlp::Protocol>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    if let Some(e) = var("OTEL_TRACES_EXPORTER") {
        match e.as_str() {
            "none" => return Ok(None),
            "otlp" => {}
            other => anyhow::bail!(
                "OTEL_TRACES_EXPORTER={other} is not supported: owl exports traces with OTLP (or set it to none)"
            ),
        }
    }
    if var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
        && var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
    {
        return Ok(None);
    }
    let protocol =
        var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match protocol.as_deref() {
        None | Some("http/protobuf") => Ok(Some(opentelemetry_otlp::Protocol::HttpBinary)),
        Some("http/json") => Ok(Some(opentelemetry_otlp::Protocol::HttpJson)),
        Some(p) => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={p} is not supported: owl exports OTLP over HTTP (http/protobuf or http/json)"
        ),
    }
}

/// The export timeout (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT`,
/// milliseconds; 10 s by default).
fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.trim().parse::<u64>().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// A tracer provider exporting over OTLP/HTTP in batches, configured from the
/// environment; `None` when no OTLP endpoint is configured. Needs a Tokio runtime.
pub fn provider_from_env() -> anyhow::Result<Option<SdkTracerProvider>> {
    let Some(protocol) = configured()? else {
        return Ok(None);
    };
    let client = OtlpHttpClient::new(tokio::runtime::Handle::current(), export_timeout())?;
    let exporter = {
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_http_client(client)
            .build()?
    };
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource())
            .build(),
    ))
}

/// The service's resource: `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, else
/// `service.name = owl`, plus the version.
pub fn resource() -> opentelemetry_sdk::Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let mut b = opentelemetry_sdk::Resource::builder().with_attribute(
        opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
    );
    if !named {
        b = b.with_service_name("owl");
    }
    b.build()
}

/// Ends the request span after the response has been written rather than before:
/// closing a span builds and queues its OpenTelemetry record, work the client need not
/// wait for. The drop runs in a task spawned on this worker, which runs once the
/// connection task has flushed the response and yields.
pub fn close_later(span: tracing::Span) {
    if enabled() && tokio::runtime::Handle::try_current().is_ok() {
        tokio::spawn(async move { drop(span) });
    }
}

/// The layer that turns owl's spans into OpenTelemetry spans of `provider`; installing
/// it turns trace propagation on.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    ENABLED.store(true, Ordering::Relaxed);
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("owl"))
        .with_threads(false)
        .with_location(false)
        .with_tracked_inactivity(false)
        .with_filter(
            Targets::new()
                .with_target(REQUEST, tracing::Level::INFO)
                .with_target(PHASE, tracing::Level::INFO)
                .with_target("owl", tracing::Level::WARN),
        )
}

/// The request span for a request with `headers`: child of the client's
/// `traceparent` when tracing is on, with the request's transaction id (and trace id)
/// for every log line inside it. `name` is a low-cardinality route (`POST invoke`).
pub fn request_span(
    name: &'static str,
    method: &http::Method,
    path: &str,
    headers: &HeaderMap,
    tid: &str,
) -> Span {
    // Only `tid` (and `trace_id`) while tracing is off: the log layer formats every
    // field of this span for each request, so it carries no more than logs need.
    let span = tracing::info_span!(
        target: REQUEST,
        "request",
        tid = %tid,
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        http.request.method = tracing::field::Empty,
        url.path = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        owl.path = tracing::field::Empty,
    );
    if enabled() && !span.is_disabled() {
        // Name and kind first: they are fixed once the span starts.
        span.record("otel.name", name);
        span.record("otel.kind", "server");
        span.record("http.request.method", method.as_str());
        span.record("url.path", path);
        let parent = PROPAGATOR.extract(&HeaderExtractor(headers));
        let _ = span.set_parent(parent);
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            span.record("trace_id", tracing::field::display(sc.trace_id()));
        }
    }
    span
}

/// The span of an invocation's own task, which may outlive the request (non-blocking
/// invocations, records written after the response): in the request's trace as a child
/// of `request`, but not holding the request span open, and carrying the same `tid` and
/// `trace_id` for log lines.
pub fn invocation_span(request: &Span, tid: &str) -> Span {
    let span = tracing::info_span!(
        target: REQUEST,
        parent: None,
        "invocation",
        tid = %tid,
        trace_id = tracing::field::Empty,
    );
    if enabled() && !span.is_disabled() {
        let cx = request.context();
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            let _ = span.set_parent(cx);
            span.record("trace_id", tracing::field::display(sc.trace_id()));
        }
    }
    span
}

/// The span context of `span`, when tracing is on and it is being recorded.
pub fn span_context(span: &Span) -> Option<SpanContext> {
    if !enabled() || span.is_disabled() {
        return None;
    }
    let sc = span.context().span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// `traceresponse` (W3C Trace Context Level 2) naming the request's trace and span.
pub fn traceresponse(span: &Span) -> Option<HeaderValue> {
    let sc = span_context(span)?;
    HeaderValue::from_str(&format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    ))
    .ok()
}

/// Writes the current span's context into `headers` (`traceparent`, `tracestate`)
/// when tracing is on; otherwise leaves them as they are (a client's own
/// `traceparent` then passes through unchanged).
pub fn inject(headers: &mut HeaderMap) {
    inject_from(&Span::current(), headers);
}

/// Like [`inject`], from `span`.
pub fn inject_from(span: &Span, headers: &mut HeaderMap) {
    if !enabled() || span.is_disabled() {
        return;
    }
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        PROPAGATOR.inject_context(&cx, &mut HeaderInjector(headers));
    }
}

/// The AWS X-Ray form of a span context (`X-Amzn-Trace-Id`), so Lambda and X-Ray
/// continue the same trace: `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`.
pub fn amzn_trace_id(sc: &SpanContext) -> String {
    let t = sc.trace_id().to_string();
    format!(
        "Root=1-{}-{};Parent={};Sampled={}",
        &t[..8],
        &t[8..],
        sc.span_id(),
        u8::from(sc.is_sampled())
    )
}

/// `traceparent` for `sc`.
pub fn traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// The HTTP client the OTLP exporter uses: owl's hyper client with rustls (system
/// roots), run on the Tokio runtime even though the batch exporter calls it from its
/// own thread.
#[derive(Clone)]
struct OtlpHttpClient {
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

impl std::fmt::Debug for OtlpHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpHttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OtlpHttpClient {
    fn new(runtime: tokio::runtime::Handle, timeout: Duration) -> anyhow::Result<Self> {
        let tls = crate::server::tls::native_roots_client_config()?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Self {
            client,
            runtime,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        use http_body_util::BodyExt;
        let (client, timeout) = (self.client.clone(), self.timeout);
        let request = request.map(http_body_util::Full::new);
        let call = async move {
            let resp = tokio::time::timeout(timeout, client.request(request))
                .await
                .map_err(|_| format!("the OTLP endpoint did not answer within {timeout:?}"))?
                .map_err(|e| e.to_string())?;
            let (parts, body) = resp.into_parts();
            let body = tokio::time::timeout(
                timeout,
                http_body_util::Limited::new(body, 4 * 1024 * 1024).collect(),
            )
            .await
            .map_err(|_| "the OTLP endpoint's answer did not arrive in time".to_string())?
            .map_err(|e| e.to_string())?
            .to_bytes();
            Ok::<_, String>(http::Response::from_parts(parts, body))
        };
        self.runtime
            .spawn(call)
            .await
            .map_err(|e| Box::new(e) as opentelemetry_http::HttpError)?
            .map_err(|e| e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn xray_and_w3c_forms_of_a_span_context() {
        let sc = SpanContext::new(
            TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap(),
            SpanId::from_hex("53995c3f42cd8ad8").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        assert_eq!(
            amzn_trace_id(&sc),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        );
        assert_eq!(
            traceparent(&sc),
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
        );
    }
}
