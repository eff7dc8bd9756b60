//! TLS on both sides: owl terminating TLS (HTTP/1.1 and HTTP/2), and an https
//! controller trusted through a CA file or, explicitly, accepted as self-signed.

use crate::common::*;
use owl::server::{self, ServerLimits};
use serde_json::json;

struct Pki {
    dir: tempfile::TempDir,
    cert_pem: String,
}

impl Pki {
    fn new() -> Self {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
        Self {
            cert_pem: ck.cert.pem(),
            dir,
        }
    }
    fn cert(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }
    fn key(&self) -> String {
        self.dir.path().join("key.pem").display().to_string()
    }
}

/// Serves a stand-in controller over TLS with `pki`'s certificate.
async fn tls_controller(pki: &Pki) -> (String, owl::standin::StandinState) {
    let (router, state) = StandinBuilder::with_guest()
        .action(StandinAction::new("guest/greet", Behaviour::Greet))
        .router();
    let acceptor = server::tls::acceptor(
        pki.dir.path().join("cert.pem").as_path(),
        pki.dir.path().join("key.pem").as_path(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(server::run(
        listener,
        router,
        Some(acceptor),
        ServerLimits::default(),
        std::future::pending(),
    ));
    (url, state)
}

#[tokio::test]
async fn owl_terminates_tls_for_http1_and_http2() {
    let pki = Pki::new();
    let c = standin(vec![StandinAction::new("guest/greet", Behaviour::Greet)]).await;
    let p = format!(
        "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n{}",
        pki.cert(),
        pki.key(),
        policy(&c.url(), &upstream::down(), "")
    );
    let gw = TestGateway::start(&p).await;
    assert!(gw.url.starts_with("https://"));
    let url = gw
        .invoke_url("guest/greet", "blocking=true&result=true")
        .replace("127.0.0.1", "localhost");
    for http2 in [false, true] {
        let mut b = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pki.cert_pem.as_bytes()).unwrap());
        if !http2 {
            b = b.http1_only();
        }
        let r = b
            .build()
            .unwrap()
            .post(&url)
            .header("authorization", guest_auth())
            .json(&json!({"name": "tls"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.version(),
            if http2 {
                reqwest::Version::HTTP_2
            } else {
                reqwest::Version::HTTP_11
            }
        );
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap(),
            json!({"greeting": "Hello, tls!"})
        );
    }
    // Plain HTTP to the TLS port is not served.
    let plain = gw.url.replace("https://", "http://");
    assert!(
        client()
            .get(format!("{plain}/api/v1"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn https_controller_with_a_ca_file() {
    let pki = Pki::new();
    let (url, state) = tls_controller(&pki).await;
    let p = policy(&url, &upstream::down(), "").replace(
        "timeout = \"10s\"",
        &format!("timeout = \"10s\"\nca_file = \"{}\"", pki.cert()),
    );
    let gw = TestGateway::start(&p).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/greet", "blocking=true&result=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"greeting": "Hello, stranger!"}));
    assert_eq!(state.invocations(), 1);
}

#[tokio::test]
async fn untrusted_controller_certificates_are_refused_unless_accepted_explicitly() {
    let pki = Pki::new();
    let (url, state) = tls_controller(&pki).await;
    let gw = TestGateway::start(&policy(&url, &upstream::down(), "")).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/greet", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"],
        "The OpenWhisk controller could not be reached."
    );
    assert_eq!(state.invocations(), 0);

    let p = policy(&url, &upstream::down(), "").replace(
        "timeout = \"10s\"",
        "timeout = \"10s\"\naccept_invalid_certs = true",
    );
    let gw = TestGateway::start(&p).await;
    let (status, _, _) = invoke(
        &gw.invoke_url("guest/greet", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state.invocations(), 1);
}
