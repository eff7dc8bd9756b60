//! A client of Lambda's Runtime API (lambda.md §3.1): `next` (a long poll, no
//! timeout — the environment may be frozen between events), `response`, `error` and
//! `init/error`, on one pooled HTTP/1.1 connection.

use super::messages::RuntimeFailure;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// How long a `response` / `error` post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// Events larger than this are refused without being buffered whole.
pub(crate) const MAX_EVENT: usize = 32 * 1024 * 1024;

/// One invocation handed out by `next`.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms` (epoch ms), when sent and valid.
    pub deadline_ms: Option<u64>,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub function_arn: Option<String>,
    /// `Lambda-Runtime-Trace-Id` (becomes `_X_AMZN_TRACE_ID` for the action).
    pub trace_id: Option<String>,
    /// The event, or `None` if it was larger than [`MAX_EVENT`].
    pub event: Option<Bytes>,
}

/// Why the runtime cannot go on (it exits, as the Runtime API asks).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The Runtime API could not be reached or broke the connection.
    #[error("Runtime API unreachable: {0}")]
    Transport(String),
    /// The Runtime API answered with an unexpected status.
    #[error("Runtime API answered {status} to {what}: {body}")]
    Status {
        /// What was asked.
        what: &'static str,
        /// The status.
        status: StatusCode,
        /// The body, shortened.
        body: String,
    },
    /// `next` answered without a request id.
    #[error("Runtime API sent an event without Lambda-Runtime-Aws-Request-Id")]
    NoRequestId,
}

/// What a post's answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    /// 2xx.
    Accepted,
    /// 413: the response is over Lambda's limit.
    TooLarge,
    /// Another 4xx (an unknown or finished request id): logged, the loop goes on.
    Rejected(StatusCode, String),
}

/// The Runtime API client.
#[derive(Clone)]
pub struct RuntimeApi {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl RuntimeApi {
    /// A client of `host:port[/prefix]` (`AWS_LAMBDA_RUNTIME_API`).
    pub fn new(endpoint: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(None)
            .pool_max_idle_per_host(2)
            .build(connector);
        Self {
            base: format!(
                "http://{}/2018-06-01",
                endpoint.trim_start_matches("http://").trim_end_matches('/')
            ),
            client,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<http::Response<hyper::body::Incoming>, ApiError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(
                "user-agent",
                concat!("owl-runtime/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        self.client
            .request(req)
            .await
            .map_err(|e| ApiError::Transport(format!("{e:?}")))
    }

    /// Waits for the next invocation.
    pub async fn next(&self) -> Result<Invocation, ApiError> {
        let resp = self
            .send(Method::GET, "/runtime/invocation/next", Bytes::new(), &[])
            .await?;
        let status = resp.status();
        let h = resp.headers().clone();
        if !status.is_success() {
            let body = short_body(resp.into_body()).await;
            return Err(ApiError::Status {
                what: "next",
                status,
                body,
            });
        }
        let header = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let request_id = header("lambda-runtime-aws-request-id").ok_or(ApiError::NoRequestId)?;
        let event = match Limited::new(resp.into_body(), MAX_EVENT).collect().await {
            Ok(b) => Some(b.to_bytes()),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                None
            }
            Err(e) => return Err(ApiError::Transport(e.to_string())),
        };
        Ok(Invocation {
            request_id,
            deadline_ms: header("lambda-runtime-deadline-ms").and_then(|d| d.parse().ok()),
            function_arn: header("lambda-runtime-invoked-function-arn"),
            trace_id: header("lambda-runtime-trace-id"),
            event,
        })
    }

    async fn post(
        &self,
        what: &'static str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<Posted, ApiError> {
        let resp = tokio::time::timeout(POST_TIMEOUT, self.send(Method::POST, path, body, headers))
            .await
            .map_err(|_| {
                ApiError::Transport(format!("{what} not answered within {POST_TIMEOUT:?}"))
            })??;
        let status = resp.status();
        let body = short_body(resp.into_body()).await;
        if status.is_success() {
            Ok(Posted::Accepted)
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            Ok(Posted::TooLarge)
        } else if status.is_client_error() {
            Ok(Posted::Rejected(status, body))
        } else {
            Err(ApiError::Status { what, status, body })
        }
    }

    /// Posts the result of invocation `id`.
    pub async fn response(&self, id: &str, result: Bytes) -> Result<Posted, ApiError> {
        self.post(
            "response",
            &format!("/runtime/invocation/{id}/response"),
            result,
            &[("content-type", "application/json")],
        )
        .await
    }

    /// Posts the failure of invocation `id`.
    pub async fn error(&self, id: &str, f: &RuntimeFailure) -> Result<Posted, ApiError> {
        self.error_with_body(id, f.error_type, Bytes::from(f.body()))
            .await
    }

    /// Posts the failure of invocation `id` as `body` (`{"errorMessage", "errorType",
    /// …}`), of Lambda error type `error_type`.
    pub(crate) async fn error_with_body(
        &self,
        id: &str,
        error_type: &str,
        body: Bytes,
    ) -> Result<Posted, ApiError> {
        self.post(
            "error",
            &format!("/runtime/invocation/{id}/error"),
            body,
            &[
                ("content-type", "application/vnd.aws.lambda.error+json"),
                ("lambda-runtime-function-error-type", error_type),
            ],
        )
        .await
    }

    /// Reports a failed initialization (the runtime exits afterwards).
    pub(crate) async fn init_error(&self, f: &RuntimeFailure) -> Result<Posted, ApiError> {
        self.post(
            "init error",
            "/runtime/init/error",
            Bytes::from(f.body()),
            &[
                ("content-type", "application/vnd.aws.lambda.error+json"),
                ("lambda-runtime-function-error-type", f.error_type),
            ],
        )
        .await
    }
}

async fn short_body(b: hyper::body::Incoming) -> String {
    let bytes = match Limited::new(b, 4096).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    String::from_utf8_lossy(&bytes).into_owned()
}
