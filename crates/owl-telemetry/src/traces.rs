//! OpenTelemetry traces: one trace per request, exported over OTLP/HTTP.
//!
//! Off unless an OTLP endpoint is configured with the standard variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; protocol,
//! headers, timeout, sampler, service name and resource attributes from their
//! `OTEL_*` variables too).
//!
//! Built for the request path's budget. The configured sampler decides when the
//! request arrives. For a request that is not sampled nothing is recorded: its
//! context (trace id, the request span's id, `sampled=0`) is only passed on. For a
//! sampled one, each span is a few words in the request's shared trace — name, ids,
//! two `Instant`s, attributes — turned into span data after the response, once the
//! request and its invocation are both done, and handed straight to the span
//! processor (batching OTLP export); no SDK span objects are made. Span ids are drawn
//! when a phase starts, so the `traceparent` sent to Lambda or the controller names
//! the span that is later exported.
//!
//! The span a piece of work belongs to is a Tokio task-local ([`Current`]): phases
//! started inside it become its children, and [`inject`] writes its context into
//! outgoing requests.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample, SpanData,
    SpanEvents, SpanLinks, SpanProcessor,
};
use std::borrow::Cow;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Where owl's spans go: the sampler that decides for each request, and the span
/// processor that receives finished spans.
struct Pipeline {
    sampler: Box<dyn ShouldSample>,
    processor: Box<dyn SpanProcessor>,
    scope: InstrumentationScope,
    ids: RandomIdGenerator,
}

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
static PROPAGATOR: LazyLock<TraceContextPropagator> = LazyLock::new(TraceContextPropagator::new);

/// At most this many phase spans are kept for one request (retries add a few each);
/// beyond it, phases are still timed but not traced.
const MAX_SPANS: usize = 64;

/// True once tracing is installed.
pub fn enabled() -> bool {
    PIPELINE.get().is_some()
}

/// Turns tracing on: finished spans go to `processor` (with owl's [`resource`]), and
/// each request is sampled by the sampler `OTEL_TRACES_SAMPLER` /
/// `OTEL_TRACES_SAMPLER_ARG` configure (parent-based, always on, by default). The
/// first call wins: one pipeline per process.
pub fn install(mut processor: impl SpanProcessor + 'static) {
    processor.set_resource(&resource());
    let _ = PIPELINE.set(Pipeline {
        sampler: opentelemetry_sdk::trace::Config::default().sampler,
        processor: Box::new(processor),
        scope: InstrumentationScope::builder("owl")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
        ids: RandomIdGenerator::default(),
    });
}

/// Exports what is buffered and stops the processor (bounded by its timeout).
pub fn shutdown() {
    if let Some(p) = PIPELINE.get() {
        // Spans of requests finished but not yet built go first.
        drop(Drain);
        if let Err(e) = p.processor.force_flush() {
            tracing::warn!(error = %e, "exporting the last spans failed");
        }
        let _ = p.processor.shutdown();
    }
}

fn new_span_id() -> SpanId {
    use rand::Rng as _;
    let mut rng = rand::rng();
    loop {
        let id: u64 = rng.random();
        if id != 0 {
            return SpanId::from(id);
        }
    }
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

/// A span processor exporting over OTLP/HTTP in batches (`OTEL_BSP_*`), configured
/// from the environment; `None` when no OTLP endpoint is configured. Needs a Tokio
/// runtime.
pub(crate) fn processor_from_env() -> anyhow::Result<Option<BatchSpanProcessor>> {
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
    Ok(Some(BatchSpanProcessor::builder(exporter).build()))
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

/// One request's trace, shared by the request's task and its invocation's task. When
/// the last of them lets go, the sampled spans are built and exported (in a task of
/// their own, after the response).
struct Shared {
    /// The request span's context: trace id, the request span's id, the sampling
    /// decision and the trace state.
    root: SpanContext,
    /// When the request arrived, on both clocks: spans' wall-clock times are derived
    /// from monotonic instants.
    origin: (Instant, SystemTime),
    /// What a sampled request recorded; `None` when not sampled.
    recording: Option<Mutex<Recording>>,
}

struct Recording {
    /// The request span's name (a low-cardinality route).
    request_name: &'static str,
    /// The client's span the request continues, if it sent one.
    client: Option<SpanContext>,
    /// The request span's attributes.
    request_attributes: Vec<KeyValue>,
    /// When the response was ready.
    request_end: Option<Instant>,
    /// Phase spans in the order they started (a parent before its children).
    spans: Vec<Recorded>,
}

struct Recorded {
    name: &'static str,
    kind: SpanKind,
    id: SpanId,
    parent: SpanId,
    start: Instant,
    end: Option<Instant>,
    attributes: Vec<KeyValue>,
}

impl Shared {
    fn wall(&self, at: Instant) -> SystemTime {
        let (origin, wall) = self.origin;
        match at.checked_duration_since(origin) {
            Some(d) => wall + d,
            None => wall - origin.duration_since(at),
        }
    }

    fn context_of(&self, span: SpanId) -> SpanContext {
        SpanContext::new(
            self.root.trace_id(),
            span,
            self.root.trace_flags(),
            false,
            self.root.trace_state().clone(),
        )
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Some(recording) = self.recording.take() else {
            return;
        };
        let recording = recording.into_inner().unwrap_or_else(|p| p.into_inner());
        let finished = Shared {
            root: self.root.clone(),
            origin: self.origin,
            recording: None,
        };
        // Off the path of whatever response is being written now, and in batches:
        // one task empties the queue for every request finished meanwhile.
        let Ok(h) = tokio::runtime::Handle::try_current() else {
            return finished.emit(recording);
        };
        let first = {
            let mut q = FINISHED.lock().unwrap_or_else(PoisonError::into_inner);
            q.push((finished, recording));
            q.len() == 1
        };
        if first {
            let drain = Drain;
            h.spawn(async move { drop(drain) });
        }
    }
}

/// Builds the spans of every finished request queued, when dropped — by the task it
/// was given to, or with that task if the runtime drops it unrun (shutting down), so
/// the queue is never left waiting for a task that will not come.
struct Drain;

impl Drop for Drain {
    fn drop(&mut self) {
        let batch = std::mem::take(&mut *FINISHED.lock().unwrap_or_else(PoisonError::into_inner));
        for (finished, recording) in batch {
            finished.emit(recording);
        }
    }
}

/// Sampled requests that are done, waiting for their spans to be built.
static FINISHED: Mutex<Vec<(Shared, Recording)>> = Mutex::new(Vec::new());

impl Shared {
    /// Hands the spans of a finished, sampled request to the span processor.
    fn emit(&self, recording: Recording) {
        let Some(p) = PIPELINE.get() else {
            return;
        };
        let now = Instant::now();
        let data = |span_context: SpanContext,
                    parent: (SpanId, bool),
                    kind: SpanKind,
                    name: &'static str,
                    (start, end): (SystemTime, SystemTime),
                    attributes: Vec<KeyValue>| SpanData {
            span_context,
            parent_span_id: parent.0,
            parent_span_is_remote: parent.1,
            span_kind: kind,
            name: Cow::Borrowed(name),
            start_time: start,
            end_time: end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: p.scope.clone(),
        };
        for s in recording.spans {
            p.processor.on_end(data(
                self.context_of(s.id),
                (s.parent, false),
                s.kind,
                s.name,
                (self.wall(s.start), self.wall(s.end.unwrap_or(now))),
                s.attributes,
            ));
        }
        let client = recording
            .client
            .as_ref()
            .map_or((SpanId::INVALID, false), |c| (c.span_id(), c.is_remote()));
        p.processor.on_end(data(
            self.root.clone(),
            client,
            SpanKind::Server,
            recording.request_name,
            (
                self.origin.1,
                self.wall(recording.request_end.unwrap_or(now)),
            ),
            recording.request_attributes,
        ));
    }
}

/// Where work stands in its request's trace: the request span itself, or one of its
/// phase spans. The task-local value of this type is the span new phases belong to.
#[derive(Clone)]
pub struct Current {
    shared: Arc<Shared>,
    /// The phase span (index into the recording, id); `None`: the request span (or an
    /// unsampled request).
    span: Option<(usize, SpanId)>,
}

tokio::task_local! {
    static CURRENT: Current;
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current")
            .field("trace_id", &self.shared.root.trace_id())
            .field("span_id", &self.span_id())
            .field("sampled", &self.shared.root.is_sampled())
            .finish()
    }
}

impl Current {
    /// The request's trace, once it arrives: the request span (named `name`, a
    /// low-cardinality route) is a child of the client's `traceparent`, and the
    /// configured sampler decides whether the request is recorded. `None` when
    /// tracing is off.
    pub fn begin(
        name: &'static str,
        method: &http::Method,
        path: &str,
        headers: &HeaderMap,
        received: (Instant, SystemTime),
    ) -> Option<Self> {
        let p = PIPELINE.get()?;
        let cx = PROPAGATOR.extract(&HeaderExtractor(headers));
        let client = cx.span().span_context().clone();
        let trace_id = if client.is_valid() {
            client.trace_id()
        } else {
            p.ids.new_trace_id()
        };
        let decision =
            p.sampler
                .should_sample(Some(&cx), trace_id, name, &SpanKind::Server, &[], &[]);
        let sampled = decision.decision == SamplingDecision::RecordAndSample;
        let flags = if client.is_valid() {
            client.trace_flags()
        } else {
            TraceFlags::default()
        };
        let root = SpanContext::new(
            trace_id,
            new_span_id(),
            flags.with_sampled(sampled),
            false,
            decision.trace_state,
        );
        let recording = sampled.then(|| {
            let mut request_attributes = decision.attributes;
            request_attributes.push(KeyValue::new(
                "http.request.method",
                method.as_str().to_string(),
            ));
            request_attributes.push(KeyValue::new("url.path", path.to_string()));
            Mutex::new(Recording {
                request_name: name,
                client: client.is_valid().then_some(client),
                request_attributes,
                request_end: None,
                spans: Vec::with_capacity(12),
            })
        });
        Some(Self {
            shared: Arc::new(Shared {
                root,
                origin: received,
                recording,
            }),
            span: None,
        })
    }

    /// The trace's id.
    pub fn trace_id(&self) -> TraceId {
        self.shared.root.trace_id()
    }

    fn span_id(&self) -> SpanId {
        self.span.map_or(self.shared.root.span_id(), |(_, id)| id)
    }

    /// This span's context, as sent downstream.
    pub fn context(&self) -> SpanContext {
        self.shared.context_of(self.span_id())
    }

    /// A new phase span, child of this one (inert when the request is not sampled).
    pub fn child(&self, name: &'static str, kind: SpanKind) -> Guard {
        let inert = Guard {
            at: Some(self.clone()),
            owned: false,
        };
        let Some(recording) = &self.shared.recording else {
            return inert;
        };
        let id = new_span_id();
        let index = {
            let Ok(mut r) = recording.lock() else {
                return inert;
            };
            if r.spans.len() >= MAX_SPANS {
                return inert;
            }
            r.spans.push(Recorded {
                name,
                kind,
                id,
                parent: self.span_id(),
                start: Instant::now(),
                end: None,
                attributes: Vec::new(),
            });
            r.spans.len() - 1
        };
        Guard {
            at: Some(Self {
                shared: self.shared.clone(),
                span: Some((index, id)),
            }),
            owned: true,
        }
    }

    fn with_recorded(&self, f: impl FnOnce(&mut Recorded)) {
        if let (Some(recording), Some((index, _))) = (&self.shared.recording, self.span)
            && let Ok(mut r) = recording.lock()
            && let Some(s) = r.spans.get_mut(index)
        {
            f(s);
        }
    }

    /// Sets an attribute of this span (when recorded).
    pub fn set(&self, key: &'static str, value: impl Into<Value>) {
        self.with_recorded(|s| s.attributes.push(KeyValue::new(key, value)));
    }

    /// Ends the request span: the response is ready, with `status`, having gone
    /// `path` (`lambda`, `proxy`...).
    pub fn finish_request(&self, status: u16, path: &'static str) {
        if let Some(recording) = &self.shared.recording
            && let Ok(mut r) = recording.lock()
        {
            r.request_end = Some(Instant::now());
            r.request_attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            r.request_attributes.push(KeyValue::new("owl.path", path));
        }
    }

    /// Ends the request span with `owl.cancelled = true` when dropped before
    /// [`finish_request`](Self::finish_request) — the client went away and the
    /// request's future was dropped (its invocation may go on).
    pub fn end_guard(&self) -> EndGuard {
        EndGuard(self.clone())
    }

    /// `traceresponse` (W3C Trace Context Level 2) naming the request's trace and span.
    pub fn traceresponse(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&traceparent(&self.shared.root)).ok()
    }

    /// Runs `fut` with this as its current span.
    pub fn scope<F: Future>(self, fut: F) -> InSpan<F> {
        InSpan {
            fut,
            current: Some(self),
            guard: None,
        }
    }
}

/// See [`Current::end_guard`].
#[derive(Debug)]
pub struct EndGuard(Current);

impl Drop for EndGuard {
    fn drop(&mut self) {
        if let Some(recording) = &self.0.shared.recording
            && let Ok(mut r) = recording.lock()
            && r.request_end.is_none()
        {
            r.request_end = Some(Instant::now());
            r.request_attributes
                .push(KeyValue::new("owl.cancelled", true));
        }
    }
}

/// The span the running task works in, when tracing is on.
pub fn current() -> Option<Current> {
    if !enabled() {
        return None;
    }
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `fut` in `current` (as taken by [`current`] before handing work to another
/// task); as it is when `None`.
pub fn scope<F: Future>(current: Option<Current>, fut: F) -> InSpan<F> {
    InSpan {
        fut,
        current,
        guard: None,
    }
}

pin_project_lite::pin_project! {
    /// A future run with a current span (and, for a phase, ending that span when it
    /// completes). Polled in place: wrapping a large future costs no copy of it.
    pub struct InSpan<F> {
        #[pin]
        fut: F,
        current: Option<Current>,
        guard: Option<Guard>,
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let fut = this.fut;
        let out = match this.current {
            Some(c) => CURRENT.sync_scope(c.clone(), || fut.poll(cx)),
            None => fut.poll(cx),
        };
        if out.is_ready() {
            // The phase ends with its work, not when the caller drops this.
            this.guard.take();
        }
        out
    }
}

/// A phase span: started when made, ended when dropped (or when the future given to
/// [`instrument`](Self::instrument) completes). Inert when tracing is off or the
/// request is not sampled.
#[derive(Debug)]
pub struct Guard {
    /// The span's place (or, when it is not recorded, its parent's).
    at: Option<Current>,
    /// True when this guard ends a recorded span.
    owned: bool,
}

/// A new phase span named `name`, child of the current span.
pub fn start(name: &'static str) -> Guard {
    start_kind(name, SpanKind::Internal)
}

/// A new phase span of `kind`, child of the current span.
pub fn start_kind(name: &'static str, kind: SpanKind) -> Guard {
    let at = current();
    match at {
        Some(c) => c.child(name, kind),
        None => Guard {
            at: None,
            owned: false,
        },
    }
}

impl Guard {
    /// True when this span is recorded (worth computing attributes for).
    pub fn recording(&self) -> bool {
        self.owned
    }

    /// Sets an attribute (when recorded).
    pub fn set(&self, key: &'static str, value: impl Into<Value>) {
        if self.owned
            && let Some(at) = &self.at
        {
            at.set(key, value);
        }
    }

    /// The span's context (its parent's when not recorded), to send downstream.
    pub fn context(&self) -> Option<SpanContext> {
        self.at.as_ref().map(Current::context)
    }

    /// Where this span is, for work handed to other code.
    pub fn current(&self) -> Option<Current> {
        self.at.clone()
    }

    /// Runs `fut` inside this span, which ends when `fut` completes. (When the span
    /// is not recorded, `fut` runs in its parent, so a task spawned with it still
    /// passes the trace on.)
    pub fn instrument<F: Future>(self, fut: F) -> InSpan<F> {
        InSpan {
            fut,
            current: self.at.clone(),
            guard: Some(self),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.owned
            && let Some(at) = &self.at
        {
            at.with_recorded(|s| {
                s.end.get_or_insert_with(Instant::now);
            });
        }
    }
}

/// Sets an attribute of the current span (when recorded).
pub fn record(key: &'static str, value: impl Into<Value>) {
    if let Some(c) = current() {
        c.set(key, value);
    }
}

/// Writes the current span's context into `headers` (`traceparent`, `tracestate`)
/// when tracing is on; otherwise leaves them as they are (a client's own
/// `traceparent` then passes through unchanged).
pub fn inject(headers: &mut HeaderMap) {
    if let Some(c) = current() {
        inject_context(&c.context(), headers);
    }
}

/// Writes `sc` into `headers` as `traceparent` (and `tracestate`, when not empty).
pub fn inject_context(sc: &SpanContext, headers: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&traceparent(sc)) {
        headers.insert(HeaderName::from_static("traceparent"), v);
    }
    let state = sc.trace_state().header();
    match HeaderValue::from_str(&state) {
        Ok(v) if !state.is_empty() => {
            headers.insert(HeaderName::from_static("tracestate"), v);
        }
        _ => {
            headers.remove("tracestate");
        }
    }
}

/// The AWS X-Ray form of a span context (`X-Amzn-Trace-Id`), so Lambda and X-Ray
/// continue the same trace: `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`.
pub fn amzn_trace_id(sc: &SpanContext) -> String {
    let t = sc.trace_id().to_bytes();
    let mut s = String::with_capacity(76);
    s.push_str("Root=1-");
    push_hex(&mut s, &t[..4]);
    s.push('-');
    push_hex(&mut s, &t[4..]);
    s.push_str(";Parent=");
    push_hex(&mut s, &sc.span_id().to_bytes());
    s.push_str(if sc.is_sampled() {
        ";Sampled=1"
    } else {
        ";Sampled=0"
    });
    s
}

/// `traceparent` for `sc`.
pub fn traceparent(sc: &SpanContext) -> String {
    let mut s = String::with_capacity(55);
    s.push_str("00-");
    push_hex(&mut s, &sc.trace_id().to_bytes());
    s.push('-');
    push_hex(&mut s, &sc.span_id().to_bytes());
    s.push_str(if sc.is_sampled() { "-01" } else { "-00" });
    s
}

/// A trace id in its usual form (32 lowercase hex digits).
pub(crate) fn trace_id_hex(t: TraceId) -> String {
    let mut s = String::with_capacity(32);
    push_hex(&mut s, &t.to_bytes());
    s
}

/// Lowercase hex, without the formatting machinery (on every traced request).
fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
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
        let tls = owl_net::tls::native_roots_client_config()?;
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
        assert_eq!(
            trace_id_hex(sc.trace_id()),
            "5759e988bd862e3fe1be46a994272793"
        );
        let unsampled = SpanContext::new(
            TraceId::from_hex("0000000000000000000000000000000a").unwrap(),
            SpanId::from_hex("00000000000000f1").unwrap(),
            TraceFlags::default(),
            true,
            TraceState::default(),
        );
        assert_eq!(
            traceparent(&unsampled),
            "00-0000000000000000000000000000000a-00000000000000f1-00"
        );
        assert_eq!(
            amzn_trace_id(&unsampled),
            "Root=1-00000000-00000000000000000000000a;Parent=00000000000000f1;Sampled=0"
        );
    }
}
