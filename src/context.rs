//! Per-request facts established when a request arrives, before any routing.

use crate::telemetry::timing::Timings;
use crate::whisk::TransactionId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What owl knows about a request before it looks at the path.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The transaction id (client's `X-Request-ID` or a fresh one).
    pub tid: TransactionId,
    /// When the request arrived (monotonic, for durations).
    pub received: Instant,
    /// The client's address, when known.
    pub(crate) peer: Option<SocketAddr>,
    /// True if the client connected over TLS.
    pub tls: bool,
    /// True if the peer is a trusted proxy (`[server] trusted_proxies`): its
    /// `X-Forwarded-Host` / `-Proto` are passed on; anyone else's are replaced.
    pub(crate) trusted_peer: bool,
    /// The `Authorization` proxied requests carry instead of the client's (a bearer
    /// token exchanged for its namespace's service key, when configured).
    pub(crate) proxy_authorization: Option<http::HeaderValue>,
    /// Where the request's time goes (shared with its invocation's task).
    pub(crate) timings: Arc<Timings>,
    /// Set once owl has answered with its own activation id (a 202): from then on the
    /// client holds that id (shared with the invocation's task).
    pub(crate) id_given: Arc<std::sync::atomic::AtomicBool>,
    /// The request's log span (transaction id, trace id): tasks that work for the
    /// request run inside it, so their log lines carry both.
    pub span: tracing::Span,
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
