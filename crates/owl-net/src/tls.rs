//! The client TLS configurations of owl's outgoing HTTPS clients (controller,
//! CouchDB, JWKS, OTLP, the load generator).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// A client TLS configuration trusting the system's roots (aws-lc-rs, TLS 1.2 and
/// 1.3): what owl's outgoing HTTPS clients use unless a policy names a CA.
pub fn native_roots_client_config() -> anyhow::Result<rustls::ClientConfig> {
    client_config(None, false)
}

/// A client TLS configuration for an upstream the policy describes (aws-lc-rs, TLS
/// 1.2 and 1.3): the system's roots plus every PEM certificate in `ca_file`, or —
/// with `accept_invalid_certs`, which an operator sets explicitly for a self-signed
/// certificate such as OpenWhisk's default — any certificate.
pub fn client_config(
    ca_file: Option<&Path>,
    accept_invalid_certs: bool,
) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if accept_invalid_certs {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
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
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any server certificate: only for `accept_invalid_certs = true`. Signatures
/// are still checked, so the handshake proves possession of the certificate's key.
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

/// The connector of owl's HTTP clients: `http://` and `https://` URLs alike (TLS with
/// `tls`), HTTP/1.1, `TCP_NODELAY`, and a bound on connecting. Callers add what is
/// theirs (keep-alive probes, pool sizes) to the connector or the client.
pub fn connector(
    tls: rustls::ClientConfig,
    connect_timeout: std::time::Duration,
    keepalive: Option<std::time::Duration>,
) -> hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(keepalive);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}
