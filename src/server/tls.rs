//! TLS termination: owl can take the edge proxy's place. (The client side, owl's
//! outgoing HTTPS, is `net::tls`.)

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Builds an acceptor from a PEM certificate chain and private key (ALPN h2, http/1.1).
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = rustls_pemfile::certs(
        &mut std::fs::read(cert)
            .map_err(|e| anyhow::anyhow!("cannot read tls_cert {}: {e}", cert.display()))?
            .as_slice(),
    )
    .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        anyhow::bail!("tls_cert {} holds no PEM certificate", cert.display());
    }
    let key = rustls_pemfile::private_key(
        &mut std::fs::read(key)
            .map_err(|e| anyhow::anyhow!("cannot read tls_key {}: {e}", key.display()))?
            .as_slice(),
    )?
    .ok_or_else(|| anyhow::anyhow!("tls_key {} holds no PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
