//! One pooled HTTP(S) client to the controller, built once per policy.

use crate::policy::ControllerConfig;
use axum::body::Body;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why a controller exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// No response headers within the configured timeout.
    #[error("the controller did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection could not be made, or broke before a response.
    #[error("the controller could not be reached: {0}")]
    Unreachable(String),
    /// The client's request body stalled while it was being sent upstream.
    #[error("the request body stalled")]
    BodyStalled,
}

/// A pooled client bound to the controller's base URL.
#[derive(Clone)]
pub struct ControllerClient {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The controller's authority as a `Host` header, made once.
    host: http::HeaderValue,
    client: Client<HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
}

impl ControllerClient {
    /// Builds the client for `cfg` (reads the CA file, if any).
    pub fn new(cfg: &ControllerConfig) -> anyhow::Result<Self> {
        let tls = crate::net::tls::client_config(cfg.ca_file.as_deref(), cfg.accept_invalid_certs)?;
        let https =
            crate::net::tls::connector(tls, cfg.connect_timeout, Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(512)
            .build(https);
        let parts = cfg.url.clone().into_parts();
        let authority = parts
            .authority
            .ok_or_else(|| anyhow::anyhow!("controller URL has no host"))?;
        Ok(Self {
            scheme: parts.scheme.unwrap_or(http::uri::Scheme::HTTP),
            host: http::HeaderValue::from_str(authority.as_str())?,
            authority,
            client,
            timeout: cfg.timeout,
        })
    }

    /// The controller URI for `path_and_query` (which starts with `/`).
    pub fn uri(&self, path_and_query: &str) -> Uri {
        match http::uri::PathAndQuery::try_from(path_and_query) {
            Ok(pq) => self.uri_for(Some(pq)),
            Err(_) => Uri::from_static("/"),
        }
    }

    /// The controller URI for a request's own path and query: put together from parts
    /// (shared, not copied or parsed again).
    pub(crate) fn uri_for(&self, path_and_query: Option<http::uri::PathAndQuery>) -> Uri {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query =
            Some(path_and_query.unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")));
        Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
    }

    /// The controller's authority, as a `Host` header value.
    pub(crate) fn host(&self) -> &http::HeaderValue {
        &self.host
    }

    /// The configured response-header timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `req` (whose URI must already point at the controller) and waits for the
    /// response headers within the configured timeout. The body streams afterwards.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>, ControllerError> {
        self.send_within(req, self.timeout).await
    }

    /// Like [`send`](Self::send) with an explicit timeout.
    pub(crate) async fn send_within(
        &self,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, ControllerError> {
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(ControllerError::Timeout(timeout)),
            Ok(Err(e)) if crate::net::idle_body::is_stall(&e) => Err(ControllerError::BodyStalled),
            Ok(Err(e)) => Err(ControllerError::Unreachable(crate::net::describe(&e))),
            Ok(Ok(r)) => Ok(r),
        }
    }
}
