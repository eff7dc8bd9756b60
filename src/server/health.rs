//! `/healthz` (liveness: the process serves), `/readyz` (readiness: owl can do its
//! job) and `/owl/status` (what owl is doing, for operators).
//!
//! Readiness fails while draining for shutdown, when activation records cannot be
//! written, when Redis is unreachable and throttles are set to reject, when Lambda
//! credentials cannot be resolved, or when the controller does not answer within a
//! budget. Checks that leave the process are the gateway's
//! ([`Gateway::remote_checks`]), cached there so frequent probes do not turn into load.

use crate::gateway::Gateway;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

/// Liveness: 200 while the process answers.
pub(crate) fn liveness() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

/// Readiness: 200 when every check passes, else 503 with what failed.
pub(crate) async fn readiness(gw: &Gateway) -> Response {
    let store = gw.recorder().health();
    let (mut checks, remote_ok) = gw.remote_checks().await;
    let throttles = gw.throttles().health();
    let throttles_ok = throttles.reachable || throttles.on_error == "local";
    checks["policy"] = json!({ "ok": true, "routes": gw.snapshot().policy.routes.len() });
    checks["draining"] = json!({ "ok": !gw.is_draining() });
    checks["activation_store"] = json!({
        "ok": store.healthy,
        "kind": gw.recorder().store_kind(),
        "error": store.last_error,
    });
    checks["throttles"] = json!({
        "ok": throttles_ok,
        "backend": throttles.backend,
        "shared": throttles.reachable,
        "on_error": throttles.on_error,
        "error": throttles.error,
    });
    let ready = !gw.is_draining() && store.healthy && throttles_ok && remote_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({ "ready": ready, "checks": checks })),
    )
        .into_response()
}

/// `/owl/status`: policy, reloads, breakers, throttles, store, load.
pub(crate) fn status(gw: &Gateway) -> Response {
    let rt = gw.snapshot();
    let p = &rt.policy;
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "draining": gw.is_draining(),
        "policy": {
            "source": p.source,
            "routes": p.routes.len(),
            "controller": p.controller.url.to_string(),
            "reloads": gw.reload_status(),
        },
        "breakers": gw.breakers().status(),
        "throttles": gw.throttles().health(),
        "activation_store": {
            "kind": gw.recorder().store_kind(),
            "healthy": gw.recorder().health().healthy,
        },
        "invocations_running": gw.tasks().len(),
        "requests_in_flight": gw.settings().server.max_in_flight.saturating_sub(gw.in_flight().available_permits()),
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}
