//! Invoke responses exactly as the controller shapes them (reference §1.6, §1.8).

use crate::error::add_cors;
use crate::whisk::{Activation, ActivationId, TransactionId, transaction};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// Header carrying the activation id on 200/202/500/502 invoke responses.
pub(crate) const ACTIVATION_ID_HEADER: &str = "x-openwhisk-activation-id";

fn headers(id: &ActivationId, tid: &TransactionId) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        h.insert(HeaderName::from_static(ACTIVATION_ID_HEADER), v);
    }
    if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
        h.insert(HeaderName::from_static(transaction::HEADER), v);
    }
    add_cors(&mut h);
    h
}

/// 202 `{"activationId": id}`: accepted (non-blocking) or still running (wait expired).
pub(crate) fn accepted(id: &ActivationId, tid: &TransactionId) -> Response {
    let body = serde_json::to_vec(&json!({ "activationId": id.as_str() })).unwrap_or_default();
    (StatusCode::ACCEPTED, headers(id, tid), body).into_response()
}

/// The answer to a blocking invocation that completed: 200 / 502 / 500 with the
/// record (logs always `[]`) or, with `result=true`, the result alone. An array result
/// is returned bare in either case.
pub(crate) fn completed(act: &Activation, result_only: bool, tid: &TransactionId) -> Response {
    let status = act.response.status_code.http_status();
    // Serialised straight from the record: nothing is copied into a `Value` first.
    let body = match &act.response.result {
        Some(a @ Value::Array(_)) => serde_json::to_vec(a),
        Some(r) if result_only => serde_json::to_vec(r),
        None if result_only => Ok(b"{}".to_vec()),
        // A sequence's record carries its components' ids, even in the blocking
        // answer [OW SequenceActions.scala:239; SequenceApiTests.scala:54-81]; a
        // primitive action's active-ack record has none.
        _ => serde_json::to_vec(&act.api_form(is_sequence(act))),
    }
    .unwrap_or_default();
    (status, headers(&act.activation_id, tid), body).into_response()
}

fn is_sequence(act: &Activation) -> bool {
    act.annotation("kind").and_then(Value::as_str) == Some("sequence")
}

/// `OPTIONS` on the REST API: 200 with the CORS headers and no authentication.
pub(crate) fn options(tid: &TransactionId) -> Response {
    let mut h = HeaderMap::new();
    add_cors(&mut h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
        h.insert(HeaderName::from_static(transaction::HEADER), v);
    }
    (StatusCode::OK, h, "OK").into_response()
}
