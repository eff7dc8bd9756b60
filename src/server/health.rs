//! `/healthz` (liveness: the process serves) and `/readyz` (readiness: the gateway can
//! do its job — today, that activation records can be written).

use crate::gateway::Gateway;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

/// Liveness: 200 while the process answers.
pub fn liveness() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

/// Readiness: 200 when every check passes, else 503 with what failed.
pub fn readiness(gw: &Gateway) -> Response {
    let store = gw.recorder.health();
    let checks = json!({
        "activation_store": {
            "ok": store.healthy,
            "kind": gw.recorder.store_kind(),
            "error": store.last_error,
        }
    });
    let ready = store.healthy;
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
