//! The streaming reverse proxy to the controller.
//!
//! Method, path, query, headers and body go upstream unchanged (bodies stream in both
//! directions and are never buffered whole); owl only removes hop-by-hop headers, adds
//! `X-Forwarded-For` / `X-Forwarded-Proto` / `X-Forwarded-Host`, sets `Host` to the
//! controller's (as nginx, OpenWhisk's own edge, does by default, so host-routed
//! ingresses in front of the controller keep working), and sends its transaction id
//! as `X-Request-ID` (the client's own when owl adopted it), so the controller's `code`
//! and owl's logs name the same transaction.

use super::client::{ControllerClient, ControllerError};
use crate::context::RequestContext;
use crate::error::WhiskError;
use crate::telemetry::timing::Phase;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Version, header};
use opentelemetry::trace::SpanKind;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, including those named in `Connection`.
/// `Transfer-Encoding` is also connection-specific; hyper re-frames bodies itself.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// Forwards `req` to the controller and streams the answer back.
pub(crate) async fn forward(
    client: &ControllerClient,
    req: Request<Body>,
    ctx: &RequestContext,
) -> Response {
    let (mut parts, body) = req.into_parts();
    prepare_headers(&mut parts.headers, ctx, &parts.uri);
    let original = std::mem::take(&mut parts.uri);
    parts.uri = client.uri_for(original.into_parts().path_and_query);
    parts.headers.insert(header::HOST, client.host().clone());
    parts.version = Version::HTTP_11;
    ctx.timings.proxied();
    let span = crate::telemetry::traces::start_kind("controller", SpanKind::Client);
    if span.recording() {
        span.set("http.request.method", parts.method.as_str().to_string());
    }
    if let Some(sc) = span.context() {
        crate::telemetry::traces::inject_context(&sc, &mut parts.headers);
    }
    let upstream = Request::from_parts(parts, body);
    let started = std::time::Instant::now();
    let sent = client.send(upstream).await;
    let waited = started.elapsed();
    ctx.timings.add(Phase::Upstream, waited);
    ctx.timings.add_awaited(waited);
    match sent {
        Ok(resp) => {
            span.set(
                "http.response.status_code",
                i64::from(resp.status().as_u16()),
            );
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(ControllerError::Timeout(t)) => {
            tracing::warn!(tid = %ctx.tid, timeout = ?t, "controller did not answer in time");
            WhiskError::controller_timeout().render(&ctx.tid)
        }
        Err(ControllerError::Unreachable(e)) => {
            tracing::warn!(tid = %ctx.tid, error = %e, "controller unreachable");
            WhiskError::controller_unreachable().render(&ctx.tid)
        }
        Err(ControllerError::BodyStalled) => {
            tracing::debug!(tid = %ctx.tid, "the client's request body stalled; abandoned");
            WhiskError::body_stalled().render(&ctx.tid)
        }
    }
}

/// Applies owl's changes to a request's headers before it goes upstream.
pub(crate) fn prepare_headers(
    headers: &mut HeaderMap,
    ctx: &RequestContext,
    original_uri: &http::Uri,
) {
    strip_hop_by_hop(headers);
    // HTTP/2 clients send the authority in the URI instead of a Host header.
    let client_host = headers.get(header::HOST).cloned().or_else(|| {
        original_uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    // A client's own X-Forwarded-Host would let it choose the host the controller
    // builds URLs and web-action redirects from: only a trusted proxy's is kept.
    let kept_host = ctx.trusted_peer && headers.contains_key("x-forwarded-host");
    if !kept_host {
        headers.remove("x-forwarded-host");
        if let Some(h) = client_host {
            headers.insert(HeaderName::from_static("x-forwarded-host"), h);
        }
    }
    if let Some(peer) = ctx.peer {
        let ip = peer.ip().to_string();
        let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
            _ => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
    }
    if !(ctx.trusted_peer && headers.contains_key("x-forwarded-proto")) {
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(if ctx.tls { "https" } else { "http" }),
        );
    }
    if let Some(auth) = &ctx.proxy_authorization {
        headers.insert(header::AUTHORIZATION, auth.clone());
    }
    // The controller takes the same transaction id as owl (the client's, when owl
    // adopted it), so `code` in its errors matches owl's logs and answers.
    if let Ok(v) = HeaderValue::from_str(ctx.tid.as_str()) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("authorization", HeaderValue::from_static("Basic x"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("authorization"));
    }
}
