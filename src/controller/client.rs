//! One pooled HTTP(S) client to the controller, built once per policy.

use crate::policy::ControllerConfig;
use axum::body::Body;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
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
    client: Client<HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
}

impl ControllerClient {
    /// Builds the client for `cfg` (reads the CA file, if any).
    pub fn new(cfg: &ControllerConfig) -> anyhow::Result<Self> {
        let tls = tls_config(cfg)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(512)
            .build(https);
        let parts = cfg.url.clone().into_parts();
        Ok(Self {
            scheme: parts.scheme.unwrap_or(http::uri::Scheme::HTTP),
            authority: parts
                .authority
                .ok_or_else(|| anyhow::anyhow!("controller URL has no host"))?,
            client,
            timeout: cfg.timeout,
        })
    }

    /// The controller URI for `path_and_query` (which starts with `/`).
    pub fn uri(&self, path_and_query: &str) -> Uri {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .unwrap_or_else(|_| Uri::from_static("/"))
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
    pub async fn send_within(
        &self,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, ControllerError> {
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(ControllerError::Timeout(timeout)),
            Ok(Err(e)) if crate::server::idle_body::is_stall(&e) => {
                Err(ControllerError::BodyStalled)
            }
            Ok(Err(e)) => Err(ControllerError::Unreachable(describe(&e))),
            Ok(Ok(r)) => Ok(r),
        }
    }
}

fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn tls_config(cfg: &ControllerConfig) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if cfg.accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read ca_file {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots.add(cert?)?;
                added += 1;
            }
            if added == 0 {
                anyhow::bail!("ca_file {} holds no PEM certificate", path.display());
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// Accepts any server certificate: only for `accept_invalid_certs = true`, which an
/// operator sets explicitly for OpenWhisk's self-signed default certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
