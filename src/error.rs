//! The gateway's error type: every failure owl answers itself, rendered in OpenWhisk's
//! error shape `{"code": <transaction id>, "error": <text>}` (reference §1.7; members
//! printed sorted, as spray-json prints them).
//!
//! An error records where it came from ([`Origin`]) so that callers decide on fallback
//! and logging from data, not from message text. Errors that the controller produced
//! (401/403/404 for the caller's credentials) are replayed as they came, with only the
//! `code` rewritten to the current transaction id.

use crate::whisk::{TransactionId, messages, transaction};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The request itself is wrong (bad query, body, credentials).
    Client,
    /// The controller answered with, or failed with, this error.
    Controller,
    /// Lambda failed.
    Lambda,
    /// owl itself failed.
    Internal,
}

/// The CORS headers OpenWhisk puts on every completed `/api/v1` response (§1.8).
pub(crate) const CORS_HEADERS: [(&str, &str); 3] = [
    ("access-control-allow-origin", "*"),
    (
        "access-control-allow-methods",
        "GET, DELETE, POST, PUT, HEAD",
    ),
    (
        "access-control-allow-headers",
        "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
    ),
];

/// Adds the CORS headers to `headers`.
pub(crate) fn add_cors(headers: &mut HeaderMap) {
    for (k, v) in CORS_HEADERS {
        headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
}

/// A response the controller gave, kept so it can be replayed to later callers with
/// the same credentials (negative caching).
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    /// Response headers worth replaying (content type, CORS, `WWW-Authenticate`).
    pub headers: HeaderMap,
    /// The body as it came.
    pub body: Bytes,
}

/// An error owl answers with.
#[derive(Debug, Clone)]
pub struct WhiskError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `error` text.
    pub message: String,
    /// Where it came from.
    pub origin: Origin,
    /// True when OpenWhisk's answer carries CORS headers (errors produced inside the
    /// route); false for rejection-handler errors (401, 415, malformed input).
    pub(crate) cors: bool,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// A controller answer to replay instead of rendering `message`.
    pub(crate) replay: Option<Box<Replay>>,
}

impl WhiskError {
    fn new(status: StatusCode, message: impl Into<String>, origin: Origin, cors: bool) -> Self {
        Self {
            status,
            message: message.into(),
            origin,
            cors,
            retry_after: None,
            replay: None,
        }
    }

    /// 401: no credentials.
    pub(crate) fn auth_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            messages::AUTH_REQUIRED,
            Origin::Client,
            false,
        )
    }

    /// 401: malformed, wrong or unknown credentials.
    pub(crate) fn auth_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            messages::AUTH_INVALID,
            Origin::Client,
            false,
        )
    }

    /// 400 produced by the rejection handler (query or body malformed): no CORS.
    pub(crate) fn rejected(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, Origin::Client, false)
    }

    /// 400 produced inside the route (e.g. final parameters): with CORS.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, Origin::Client, true)
    }

    /// 404 `The requested resource does not exist.`
    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            messages::RESOURCE_DOES_NOT_EXIST,
            Origin::Client,
            true,
        )
    }

    /// 403 naming `resource`.
    pub(crate) fn forbidden(resource: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            messages::not_authorized_for(resource),
            Origin::Client,
            true,
        )
    }

    /// 403 for a path the public listener never serves (`/metrics`, as OpenWhisk's
    /// edge denies it).
    pub(crate) fn forbidden_path() -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", Origin::Client, false)
    }

    /// 403 for reading an action outside the caller's namespace under
    /// `shared-packages-execute-only` [OW common/scala/.../http/ErrorResponse.scala:268
    /// `forbiddenGetAction`].
    pub(crate) fn forbidden_get_action(path: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("GET not permitted for '{path}' since it's an action in a shared package"),
            Origin::Controller,
            true,
        )
    }

    /// 413 for a body over the payload limit.
    pub(crate) fn payload_too_large(len: u64, max: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            messages::request_too_large(len, max),
            Origin::Client,
            true,
        )
    }

    /// 413 with the HTTP library's default text (merged arguments too large).
    pub(crate) fn entity_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request content is larger than the server is willing or able to process.",
            Origin::Client,
            true,
        )
    }

    /// 415 for a content type other than JSON.
    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            messages::unsupported_content_type(content_type),
            Origin::Client,
            false,
        )
    }

    /// 429 with `message`.
    pub(crate) fn too_many_requests(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, message, Origin::Lambda, true);
        e.retry_after = retry_after;
        e
    }

    /// 503 with the HTTP library's default text.
    pub(crate) fn service_unavailable(origin: Origin, retry_after: Option<u64>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            messages::SERVICE_UNAVAILABLE,
            origin,
            true,
        );
        e.retry_after = retry_after;
        e
    }

    /// 408: the client paused too long while sending its request body.
    pub(crate) fn body_stalled() -> Self {
        Self {
            status: StatusCode::REQUEST_TIMEOUT,
            message: messages::BODY_STALLED.into(),
            origin: Origin::Client,
            cors: false,
            retry_after: None,
            replay: None,
        }
    }

    /// 502: the controller could not be reached.
    pub(crate) fn controller_unreachable() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "The OpenWhisk controller could not be reached.",
            Origin::Controller,
            true,
        )
    }

    /// 504: the controller did not answer in time.
    pub(crate) fn controller_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "The OpenWhisk controller did not answer in time.",
            Origin::Controller,
            true,
        )
    }

    /// 500 with the HTTP library's default text.
    /// 406 of Pekko's content negotiation: the answer's type is not acceptable
    /// (`UnacceptableResponseContentTypeException`, wrapped by the controller's
    /// rejection handler as compact `{"error", "code"}`, BasicHttpService.scala:192-199).
    pub(crate) fn not_acceptable(content_type: &str) -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Resource representation is only available with these types:\n{content_type}"),
            Origin::Client,
            false,
        )
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            messages::INTERNAL_SERVER_ERROR,
            Origin::Internal,
            true,
        )
    }

    /// An answer of the controller, replayed as it came.
    pub(crate) fn from_controller(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Self {
        let mut kept = HeaderMap::new();
        for name in [
            header::CONTENT_TYPE,
            header::WWW_AUTHENTICATE,
            header::RETRY_AFTER,
        ] {
            for v in headers.get_all(&name) {
                kept.append(name.clone(), v.clone());
            }
        }
        for (k, _) in CORS_HEADERS {
            if let Some(v) = headers.get(k) {
                kept.insert(HeaderName::from_static(k), v.clone());
            }
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_default();
        let cors = kept.contains_key("access-control-allow-origin");
        Self {
            status,
            message,
            origin: Origin::Controller,
            cors,
            retry_after: None,
            replay: Some(Box::new(Replay {
                headers: kept,
                body,
            })),
        }
    }

    /// True if this is a 401.
    pub(crate) fn is_unauthorized(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
    }

    /// Renders the response for transaction `tid`.
    pub fn render(&self, tid: &TransactionId) -> Response {
        let mut headers = HeaderMap::new();
        let body = match &self.replay {
            Some(replay) => {
                headers = replay.headers.clone();
                rewrite_code(&replay.body, tid)
            }
            None => {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                if self.cors {
                    add_cors(&mut headers);
                }
                if self.status == StatusCode::UNAUTHORIZED {
                    headers.insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(messages::WWW_AUTHENTICATE),
                    );
                }
                if let Some(s) = self.retry_after {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
                }
                error_body(&self.message, tid)
            }
        };
        if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
            headers.insert(HeaderName::from_static(transaction::HEADER), v);
        }
        (self.status, headers, body).into_response()
    }
}

/// `{"code": tid, "error": message}`, compact, members in the order the controller
/// prints them: `ErrorResponse`'s writer builds `JsObject("error" -> …, "code" -> …)`,
/// and spray-json 1.3.5 keeps an object's members in a `TreeMap`, so `code` comes first
/// [OW common/scala/.../http/ErrorResponse.scala:305-306; spray-json JsValue.scala:56-58].
pub(crate) fn error_body(message: &str, tid: &TransactionId) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({ "code": tid.as_str(), "error": message }))
            .unwrap_or_default(),
    )
}

/// Replaces the `code` field of a JSON error body with `tid`; any other body is kept.
fn rewrite_code(body: &Bytes, tid: &TransactionId) -> Bytes {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut m)) if m.contains_key("code") => {
            m.insert("code".into(), tid.as_str().into());
            Bytes::from(serde_json::to_vec(&m).unwrap_or_default())
        }
        _ => body.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(r: Response) -> serde_json::Value {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&b).unwrap()
    }

    #[tokio::test]
    async fn renders_openwhisk_shape() {
        let tid = TransactionId::generate();
        let r = WhiskError::auth_required().render(&tid);
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"OpenWhisk secure realm\",charset=UTF-8"
        );
        assert!(r.headers().get("access-control-allow-origin").is_none());
        assert_eq!(r.headers()["x-request-id"], tid.as_str());
        assert_eq!(
            body_of(r).await,
            serde_json::json!({"error": messages::AUTH_REQUIRED, "code": tid.as_str()})
        );
        let r = WhiskError::not_found().render(&tid);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        // Byte for byte as the controller's CompactPrinter writes it: `code` first.
        let b = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            b,
            format!(
                r#"{{"code":"{}","error":"The requested resource does not exist."}}"#,
                tid.as_str()
            )
        );
    }

    #[tokio::test]
    async fn replays_controller_answers_with_the_new_code() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic x"),
        );
        h.insert(header::SERVER, HeaderValue::from_static("dropped"));
        let e = WhiskError::from_controller(
            StatusCode::UNAUTHORIZED,
            &h,
            Bytes::from_static(
                br#"{"error":"The supplied authentication is invalid","code":"old"}"#,
            ),
        );
        assert_eq!(e.message, messages::AUTH_INVALID);
        let tid = TransactionId::generate();
        let r = e.render(&tid);
        assert_eq!(r.headers()["www-authenticate"], "Basic x");
        assert!(r.headers().get("server").is_none());
        assert_eq!(body_of(r).await["code"], tid.as_str());
    }
}
