//! A small CouchDB client for OpenWhisk's databases: JSON over one pooled HTTP(S)
//! connection set (rustls with the system's roots, a CA file or explicit acceptance
//! of a self-signed certificate, as for the controller), Basic authentication from a
//! password file, a timeout on every call.

use crate::policy::CouchDbConfig;
use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Largest response owl reads from CouchDB.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Why a CouchDB call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CouchError {
    /// No answer within the timeout.
    #[error("CouchDB did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection, or it broke.
    #[error("CouchDB could not be reached: {0}")]
    Unreachable(String),
    /// CouchDB answered with an error status.
    #[error("CouchDB answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Body (truncated).
        body: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected CouchDB answer: {0}")]
    Malformed(String),
}

/// A CouchDB server.
#[derive(Clone)]
pub struct CouchDb {
    base: String,
    authorization: Option<HeaderValue>,
    client: Client<HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
}

impl std::fmt::Debug for CouchDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CouchDb").field("base", &self.base).finish()
    }
}

impl CouchDb {
    /// Connects (lazily) to the server `cfg` describes; reads the password file and
    /// the CA file.
    pub fn new(cfg: &CouchDbConfig) -> anyhow::Result<Self> {
        let authorization = match (&cfg.username, &cfg.password_file) {
            (Some(user), Some(file)) => {
                let password = std::fs::read_to_string(file).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read [couchdb] password_file {}: {e}",
                        file.display()
                    )
                })?;
                let token = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{user}:{}",
                    password.trim_end_matches(['\r', '\n'])
                ));
                let mut v = HeaderValue::from_str(&format!("Basic {token}"))?;
                v.set_sensitive(true);
                Some(v)
            }
            (Some(_), None) | (None, Some(_)) => {
                anyhow::bail!("[couchdb] needs both `username` and `password_file`, or neither")
            }
            (None, None) => None,
        };
        let tls = crate::net::tls::client_config(cfg.ca_file.as_deref(), cfg.accept_invalid_certs)
            .map_err(|e| anyhow::anyhow!("[couchdb] {e}"))?;
        let https = crate::net::tls::connector(tls, Duration::from_secs(5), None);
        Ok(Self {
            base: cfg.url.to_string().trim_end_matches('/').to_string(),
            authorization,
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
            timeout: cfg.timeout,
        })
    }

    /// Sends one request; `path` starts with `/` and is already escaped.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), CouchError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json");
        if let Some(a) = &self.authorization {
            req = req.header(header::AUTHORIZATION, a.clone());
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .map_err(|e| CouchError::Malformed(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                // The chain names the cause (a refused certificate, a reset).
                .map_err(|e| CouchError::Unreachable(crate::net::describe(&e)))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| CouchError::Unreachable(crate::net::describe(&*e)))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| CouchError::Timeout(self.timeout))?
    }

    /// A request that must succeed (2xx), with its JSON body.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, CouchError> {
        let (status, bytes) = self
            .request(
                method,
                path,
                body.map(|b| serde_json::to_vec(b).unwrap_or_default()),
            )
            .await?;
        if !status.is_success() {
            return Err(CouchError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| CouchError::Malformed(e.to_string()))
    }

    /// `GET /` succeeds: the server answers.
    pub async fn ping(&self) -> Result<(), CouchError> {
        self.json(Method::GET, "/", None).await.map(|_| ())
    }
}

/// Escapes a database name or document id for a URL path.
pub(crate) fn escape(s: &str) -> String {
    crate::net::encode_segment(s)
}
