//! The HTTP front: sockets, TLS, connections and the dispatch of each request to the
//! Lambda path or the proxy. The only module that knows about sockets.

mod conn;
pub(crate) mod health;
pub mod tls;

use crate::api;
use crate::auth::Caller;
use crate::context::RequestContext;
use crate::controller::proxy;
use crate::gateway::Gateway;
use crate::invoke;
use crate::net::idle_body;
use crate::telemetry::timing::{Phase, Timings};
use crate::telemetry::{logging, traces};
use crate::whisk::names::split_invoke_path;
use crate::whisk::{TransactionId, transaction};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::Method;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::Instrument;

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionInfo {
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// True for TLS connections.
    pub tls: bool,
}

/// The application: every request goes through [`dispatch`].
pub fn app(gw: Arc<Gateway>) -> Router {
    Router::new().fallback(dispatch).with_state(gw)
}

/// The operator endpoints, served on the admin listener only (`--admin-listen`,
/// loopback by default): `/metrics`, `/readyz` with its checks, `/owl/status` and
/// `/healthz`. They name tenants' namespaces and actions, who invokes whom, the
/// controller's URL and raw errors, so they never share the public API's listener.
pub(crate) fn admin_app(gw: Arc<Gateway>) -> Router {
    Router::new().fallback(admin).with_state(gw)
}

async fn admin(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => metrics(&gw),
        (&Method::GET, "/healthz") => health::liveness(),
        (&Method::GET, "/readyz") => health::readiness(&gw).await,
        (&Method::GET, "/owl/status") => health::status(&gw),
        _ => (
            http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": "The admin listener serves /metrics, /readyz, /owl/status and /healthz."
            })),
        )
            .into_response(),
    }
}

/// Routes one request: invocations to the invoke handler, `OPTIONS` on the REST API
/// answered locally, everything else proxied.
pub(crate) async fn dispatch(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    // Liveness is answered even under overload; the public listener says nothing more
    // about owl (the operator endpoints are on the admin listener).
    if req.method() == Method::GET && req.uri().path() == "/healthz" {
        return health::liveness();
    }
    // OpenWhisk's own edge denies /metrics (ansible/roles/nginx/templates/
    // nginx.conf.j2:155 `location /metrics { deny all; }`, a prefix matched on the
    // decoded path): neither owl's nor the controller's metrics are public.
    if is_metrics_path(req.uri().path()) {
        let tid = TransactionId::from_header(req.headers().get(transaction::HEADER));
        return crate::error::WhiskError::forbidden_path().render(&tid);
    }
    // A bound on work in flight: excess is refused at once, never queued.
    let Ok(_permit) = gw.in_flight().clone().try_acquire_owned() else {
        gw.metrics().overload_rejections.inc();
        let tid = TransactionId::from_header(req.headers().get(transaction::HEADER));
        return crate::error::WhiskError::service_unavailable(
            crate::error::Origin::Internal,
            Some(1),
        )
        .render(&tid);
    };
    let received = Instant::now();
    let received_at = SystemTime::now();
    let req = vanity(&gw, req);
    let tid_header = req.headers().get(transaction::HEADER);
    let tid = TransactionId::from_header(tid_header);
    // Parsed once: the span's name and the routing below both use it.
    let target = Target::of(req.method(), req.uri().path());
    let trace = traces::Current::begin(
        span_name(req.method(), &target),
        req.method(),
        req.uri().path(),
        req.headers(),
        (received, received_at),
    );
    let span = logging::request_span(tid.as_str(), trace.as_ref().map(|t| t.trace_id()));
    let timings = Arc::new(Timings::default());
    let conn = req.extensions().get::<ConnectionInfo>().copied();
    let ctx = RequestContext {
        tid,
        received,
        peer: conn.map(|c| c.peer),
        tls: conn.is_some_and(|c| c.tls),
        // Decided in `route`, with the runtime snapshot it takes anyway.
        trusted_peer: false,
        proxy_authorization: None,
        timings: timings.clone(),
        id_given: Arc::default(),
        span: span.clone(),
    };
    // A client that goes away mid-request still ends the request span then.
    let _ended = trace.as_ref().map(traces::Current::end_guard);
    let resp = traces::scope(
        trace.clone(),
        route(gw.clone(), req, ctx, target).instrument(span),
    )
    .await;
    finish(&gw, resp, &timings, received, trace.as_ref())
}

/// A request to a vanity host (`[web] vanity_host`) as OpenWhisk's nginx rewrites it:
/// to the namespace's web actions ([`invoke::web::vanity_rewrite`]).
fn vanity(gw: &Gateway, mut req: Request) -> Request {
    let rt = gw.snapshot();
    let Some(vanity) = rt.policy.web.vanity_host.as_deref() else {
        return req;
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().host());
    let rewritten = host.and_then(|h| {
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        invoke::web::vanity_rewrite(h, vanity, pq)
    });
    if let Some(pq) = rewritten
        && let Ok(uri) = http::Uri::builder().path_and_query(pq).build()
    {
        *req.uri_mut() = uri;
    }
    req
}

/// True for `/metrics…` as nginx's `location /metrics` matches it: a prefix of the
/// percent-decoded path with repeated slashes merged (so neither `/%6Detrics` nor
/// `//metrics` is a way around it).
fn is_metrics_path(path: &str) -> bool {
    // Nothing to decode or merge (nearly every request): no allocation.
    if !path.contains('%') && !path.contains("//") {
        return path.starts_with("/metrics");
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(path).collect();
    let mut merged = Vec::with_capacity(decoded.len());
    for b in decoded {
        if !(b == b'/' && merged.last() == Some(&b'/')) {
            merged.push(b);
        }
    }
    merged.starts_with(b"/metrics")
}

/// What a request asks for, parsed once from its method and path.
enum Target {
    /// `POST /api/v1/namespaces/{ns}/actions/{[pkg/]action}`.
    Invoke((String, Option<String>, String)),
    /// `GET /api/v1/namespaces/{ns}/activations[/{id}[/{sub}]]`.
    Activations(api::activations::ActivationsTarget),
    /// `/api/v1/web/{ns}/{pkg}/{action}[.ext][/rest]`, a web action.
    Web(invoke::web::WebTarget),
    /// `OPTIONS` under `/api/v1/namespaces`: answered by owl, as the controller does.
    Options,
    /// Anything else: the controller's.
    Other,
}

impl Target {
    fn of(method: &Method, path: &str) -> Self {
        if *method == Method::POST
            && let Some(t) = split_invoke_path(path)
        {
            return Self::Invoke(t);
        }
        if *method == Method::GET
            && let Some(t) = api::activations::split_path(path)
        {
            return Self::Activations(t);
        }
        if let Some(t) = invoke::web::split_path(method, path) {
            return Self::Web(t);
        }
        if *method == Method::OPTIONS && path.starts_with("/api/v1/namespaces") {
            return Self::Options;
        }
        Self::Other
    }
}

/// A low-cardinality name for the request's span (OpenTelemetry's HTTP conventions:
/// method and route template, or the method alone).
fn span_name(method: &Method, target: &Target) -> &'static str {
    match target {
        Target::Invoke(_) => return "POST /api/v1/namespaces/{namespace}/actions/{action}",
        Target::Activations(_) => return "GET /api/v1/namespaces/{namespace}/activations",
        Target::Web(_) => return "/api/v1/web/{namespace}/{package}/{action}",
        Target::Options | Target::Other => {}
    }
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "HTTP",
    }
}

/// Sends the request the way it must go.
async fn route(
    gw: Arc<Gateway>,
    req: Request,
    mut ctx: RequestContext,
    target: Target,
) -> Response {
    let rt = gw.snapshot();
    ctx.trusted_peer = ctx.peer.is_some_and(|peer| {
        rt.policy
            .server
            .trusted_proxies
            .iter()
            .any(|n| n.contains(peer.ip()))
    });
    if rt.directory.exchanges_tokens()
        && let Ok(caller @ Caller::Bearer(_)) = Caller::from_headers(req.headers(), true)
    {
        ctx.proxy_authorization = ctx
            .timings
            .time(
                Phase::Auth,
                // Boxed: a large state machine only token holders need.
                Box::pin(rt.directory.proxy_authorization(&caller, &ctx.tid)),
            )
            .await;
    }
    // No request body may stall: each piece must arrive within body_read_timeout
    // (the Lambda path answers 408; a proxied upload is abandoned).
    let idle = gw.settings().server.body_read_timeout;
    let req = req.map(|b| Body::new(idle_body::IdleTimeout::new(b, idle)));
    match target {
        Target::Invoke(t) => invoke::handle(gw.clone(), rt, req, ctx, t).await,
        // Boxed for the same reason as the Lambda path: keep the request's future small.
        Target::Activations(t) => {
            Box::pin(api::activations::handle(gw.clone(), rt, req, ctx, t)).await
        }
        Target::Web(t) => invoke::web::handle(gw.clone(), rt, req, ctx, t).await,
        Target::Options => invoke::response::options(&ctx.tid),
        Target::Other => proxy::forward(&rt.controller, req, &ctx).await,
    }
}

/// Adds `Server-Timing` (and `traceresponse` when tracing) to a response and counts
/// it.
fn finish(
    gw: &Gateway,
    mut resp: Response,
    timings: &Timings,
    received: Instant,
    trace: Option<&traces::Current>,
) -> Response {
    let total = received.elapsed();
    let path = timings.path();
    let headers = resp.headers_mut();
    headers.append(
        http::header::HeaderName::from_static("server-timing"),
        timings.server_timing(total),
    );
    if let Some(trace) = trace {
        if let Some(v) = trace.traceresponse() {
            headers.insert(http::header::HeaderName::from_static("traceresponse"), v);
        }
        trace.finish_request(resp.status().as_u16(), path.label());
    }
    gw.metrics()
        .observe_request(path.label(), resp.status(), total, timings.awaited());
    resp
}

fn metrics(gw: &Gateway) -> Response {
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics().render(),
    )
        .into_response()
}

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time allowed to receive a request's headers.
    pub(crate) header_read_timeout: Duration,
    /// Largest request head (HTTP/1) in bytes.
    pub(crate) max_header_bytes: usize,
    /// Most header fields in a request (HTTP/1).
    pub(crate) max_headers: usize,
    /// Time allowed for in-flight requests to finish at shutdown.
    pub(crate) drain_timeout: Duration,
    /// Most connections open at once; more are answered 503 and closed.
    pub(crate) max_connections: usize,
    /// A connection with no request in flight and no bytes moving for this long is
    /// closed.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self::from(&crate::policy::ServerConfig::default())
    }
}

impl From<&crate::policy::ServerConfig> for ServerLimits {
    fn from(c: &crate::policy::ServerConfig) -> Self {
        Self {
            header_read_timeout: c.header_read_timeout,
            max_header_bytes: c.max_header_bytes,
            max_headers: c.max_headers,
            drain_timeout: c.drain_timeout,
            max_connections: c.max_connections,
            idle_timeout: c.idle_timeout,
        }
    }
}

/// Serves `app` on `listener` (optionally behind TLS) until `shutdown` resolves, then
/// stops accepting and lets in-flight requests finish (up to the drain timeout).
pub async fn run(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    // HTTP/2: pings find peers that vanished without closing (the idle check below
    // closes the ones that stay but do nothing).
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    // Connections are bounded; each one's task is tracked so shutdown can wait for
    // them, and told to close gracefully when shutdown starts or it has been idle.
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let refusals = Arc::new(tokio::sync::Semaphore::new(64));
    let tasks = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the bound: a plain-HTTP client is told (503, Retry-After) and the
            // connection closed; a TLS one is closed before any handshake work.
            tracing::debug!(%peer, "too many connections; refused");
            // Answering is bounded too: past a few dozen at once, excess is just closed.
            if tls.is_none()
                && let Ok(answering) = refusals.clone().try_acquire_owned()
            {
                tasks.spawn(async move {
                    conn::refuse(stream).await;
                    drop(answering);
                });
            }
            continue;
        };
        let activity = conn::Activity::new();
        let service = ConnService {
            app: app.clone(),
            info: ConnectionInfo {
                peer,
                tls: tls.is_some(),
            },
            activity: activity.clone(),
        };
        let builder = builder.clone();
        let stop = stop.clone();
        let idle = limits.idle_timeout;
        match &tls {
            None => {
                tasks.spawn(async move {
                    serve_connection(&builder, stream, service, &activity, idle, &stop, peer).await;
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tasks.spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    serve_connection(&builder, stream, service, &activity, idle, &stop, peer).await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    stop.cancel();
    tasks.close();
    tokio::select! {
        () = tasks.wait() => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!("drain timeout reached; closing remaining connections");
        }
    }
    Ok(())
}

/// The application as one connection's service: the connection's facts go into each
/// request, and each request in flight keeps the connection from counting as idle.
#[derive(Clone)]
struct ConnService {
    app: Router,
    info: ConnectionInfo,
    activity: Arc<conn::Activity>,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = std::convert::Infallible;
    // Boxed: axum's own future is boxed too; this one only adds the in-flight guard.
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.info);
        let busy = self.activity.request();
        let fut = self.app.clone().oneshot(req.map(Body::new));
        Box::pin(async move {
            let resp = fut.await;
            drop(busy);
            resp
        })
    }
}

/// Serves one connection until it ends; asks it to close gracefully when the server
/// stops or when it has been idle (no request in flight, no bytes) for `idle`.
async fn serve_connection<S>(
    builder: &auto::Builder<TokioExecutor>,
    io: S,
    service: ConnService,
    activity: &conn::Activity,
    idle: Duration,
    stop: &tokio_util::sync::CancellationToken,
    peer: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    tokio::pin!(conn);
    let check = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(check), if !closing => {
                if activity.idle_for(idle) {
                    tracing::debug!(%peer, "idle connection closed");
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_is_denied_however_spelled() {
        for p in [
            "/metrics",
            "/metrics/",
            "/%6Detrics",
            "//metrics",
            "/metrics%2F",
            "/metricsx",
        ] {
            assert!(super::is_metrics_path(p), "{p}");
        }
        for p in ["/", "/api/v1/metrics", "/Metrics", "/healthz"] {
            assert!(!super::is_metrics_path(p), "{p}");
        }
    }
}
