//! A programmable stand-in for Lambda's Invoke API, for faults the real emulator
//! cannot produce on demand (throttling with a reason, a hang, a 500, a dropped
//! connection). It records every call.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake does with the next invocations.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 200 with this JSON body.
    Reply(Value),
    /// 200 with this JSON body after a delay.
    Delay(Duration, Value),
    /// 200 with this JSON body and this log tail (`X-Amz-Log-Result`).
    ReplyWithLog(Value, &'static str),
    /// 429 TooManyRequestsException.
    Throttle {
        reason: &'static str,
        retry_after: Option<u64>,
    },
    /// Never answers.
    Hang,
    /// 500 ServiceException.
    ServiceError,
    /// 404 ResourceNotFoundException.
    NotFound,
    /// 502 ENILimitReachedException (did not run).
    EniLimit,
    /// Reads the request, then closes the connection without answering.
    Drop,
}

/// One recorded invoke.
#[derive(Debug, Clone)]
pub struct Call {
    /// Function name from the path.
    pub function: String,
    /// Query string.
    pub query: Option<String>,
    /// Request headers.
    pub headers: http::HeaderMap,
    /// Parsed body.
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    fault: Mutex<Option<Fault>>,
    calls: Mutex<Vec<Call>>,
}

/// A running fake.
pub struct FakeLambda {
    /// Endpoint URL.
    pub url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLambda {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLambda {
    /// Starts the fake answering with `fault`.
    pub async fn start(fault: Fault) -> Self {
        if matches!(fault, Fault::Drop) {
            return Self::start_dropping().await;
        }
        let inner = Arc::new(Inner::default());
        *inner.fault.lock().unwrap() = Some(fault);
        let app = Router::new()
            .route(
                "/2015-03-31/functions/{name}/invocations",
                axum::routing::post(invoke),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner, task }
    }

    /// A raw TCP server that reads each request fully, records it, and closes the
    /// connection without a response.
    async fn start_dropping() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = inner.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf);
                        if let Some(head_end) = text.find("\r\n\r\n") {
                            let len = text[..head_end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if buf.len() >= head_end + 4 + len {
                                let function = text
                                    .split_whitespace()
                                    .nth(1)
                                    .and_then(|p| p.split('/').nth(3))
                                    .unwrap_or("")
                                    .to_string();
                                state.calls.lock().unwrap().push(Call {
                                    function,
                                    query: None,
                                    headers: http::HeaderMap::new(),
                                    body: serde_json::from_slice(&buf[head_end + 4..])
                                        .unwrap_or(Value::Null),
                                });
                                let _ = sock.shutdown().await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        Self { url, inner, task }
    }

    /// Changes the behaviour.
    pub fn set(&self, fault: Fault) {
        *self.inner.fault.lock().unwrap() = Some(fault);
    }

    /// Calls received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }
}

async fn invoke(
    State(inner): State<Arc<Inner>>,
    Path(name): Path<String>,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    inner.calls.lock().unwrap().push(Call {
        function: name,
        query: uri.query().map(str::to_string),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let fault = inner.fault.lock().unwrap().clone();
    let err = |status: u16, code: &str, body: Value| {
        (
            http::StatusCode::from_u16(status).unwrap(),
            [
                ("x-amzn-errortype", code.to_string()),
                ("content-type", "application/json".into()),
            ],
            body.to_string(),
        )
            .into_response()
    };
    match fault {
        Some(Fault::Reply(v)) => (
            [
                ("content-type", "application/json"),
                ("x-amz-executed-version", "$LATEST"),
            ],
            v.to_string(),
        )
            .into_response(),
        Some(Fault::Delay(d, v)) => {
            tokio::time::sleep(d).await;
            ([("content-type", "application/json")], v.to_string()).into_response()
        }
        Some(Fault::ReplyWithLog(v, log)) => {
            use base64::Engine;
            (
                [
                    ("content-type", "application/json".to_string()),
                    (
                        "x-amz-log-result",
                        base64::engine::general_purpose::STANDARD.encode(log),
                    ),
                ],
                v.to_string(),
            )
                .into_response()
        }
        Some(Fault::Throttle {
            reason,
            retry_after,
        }) => {
            let mut r = err(
                429,
                "TooManyRequestsException",
                json!({"Type": "User", "message": "Rate Exceeded.", "Reason": reason}),
            );
            // Lambda's model carries retryAfterSeconds in the Retry-After header.
            if let Some(s) = retry_after {
                r.headers_mut().insert("retry-after", s.into());
            }
            r
        }
        Some(Fault::Hang) | Some(Fault::Drop) | None => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            ().into_response()
        }
        Some(Fault::ServiceError) => err(
            500,
            "ServiceException",
            json!({"Type": "Service", "Message": "internal"}),
        ),
        Some(Fault::NotFound) => err(
            404,
            "ResourceNotFoundException",
            json!({"Type": "User", "Message": "Function not found"}),
        ),
        Some(Fault::EniLimit) => err(
            502,
            "ENILimitReachedException",
            json!({"Type": "Service", "Message": "ENI limit"}),
        ),
    }
}
