//! Bad input never crashes the gateway, never reaches Lambda, and never leaks
//! internals: malformed paths, `..` and encoded slashes, huge headers, invalid UTF-8,
//! malformed credentials, garbage on the wire.

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUTES: &str = "[[route]]\naction = \"guest/*\"\nfunction = \"fake-fn\"\n\n[[route]]\naction = \"*/pkg/*\"\nfunction = \"fake-fn\"\n";

async fn setup() -> (TestGateway, FakeLambda, Standin) {
    let fake = FakeLambda::start(Fault::Reply(serde_json::json!({"ok": true}))).await;
    let c = standin(vec![StandinAction::new("guest/ok", Behaviour::Echo)]).await;
    let gw = TestGateway::start(&policy(&c.url(), &fake.url, ROUTES)).await;
    (gw, fake, c)
}

/// Sends raw bytes and returns the status line (or "" if the connection closed).
async fn raw(url: &str, request: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .map(|r| r.unwrap_or(0))
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

async fn still_serving(gw: &TestGateway) {
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/ok", "blocking=true&result=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn malformed_paths_go_to_the_controller_not_to_lambda() {
    let (gw, fake, _c) = setup().await;
    for path in [
        "/api/v1/namespaces/guest/actions/..",
        "/api/v1/namespaces/guest/actions/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/namespaces/guest/actions/a%2Fb",
        "/api/v1/namespaces/guest/actions/%00",
        "/api/v1/namespaces/guest/actions/%FF%FE",
        "/api/v1/namespaces/gu%20est%20/actions/x",
        "/api/v1/namespaces/guest/actions/pkg/a/b/c",
        "/api/v1/namespaces//actions/x",
        "/api/v1/namespaces/guest/actions/",
        "/api/v1/namespaces/guest/actions/-leading",
    ] {
        let r = client()
            .post(format!("{}{path}?blocking=true", gw.url))
            .header("authorization", guest_auth())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
        assert_eq!(
            r.headers()["x-owl-standin"],
            "true",
            "{path}: the controller answered"
        );
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("panicked") && !text.contains("owl::"),
            "{path}: {text}"
        );
    }
    let long = format!("/api/v1/namespaces/guest/actions/{}", "a".repeat(300));
    let r = client()
        .post(format!("{}{long}", gw.url))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert!(fake.calls().is_empty(), "nothing reached Lambda");
    still_serving(&gw).await;
}

#[tokio::test]
async fn malformed_authorization_headers_get_401s() {
    let (gw, fake, _c) = setup().await;
    let url = gw.invoke_url("guest/ok", "blocking=true");
    let missing = "The resource requires authentication, which was not supplied with the request";
    let invalid = "The supplied authentication is invalid";
    let cases: Vec<(String, &str)> = vec![
        ("Bearer abc".into(), missing),
        ("Digest username=x".into(), missing),
        ("Basic".into(), missing),
        ("Basic ".into(), missing),
        ("Basic ====".into(), missing),
        ("Basic !@#$%^&*()".into(), missing),
        (basic(":"), invalid),
        (basic("user:"), invalid),
        (basic("nocolon"), invalid),
        (basic(&format!("{GUEST_UUID}:{}", "k".repeat(63))), invalid),
        (basic(&format!("{GUEST_UUID}:{}", "k".repeat(65))), invalid),
        (basic(&format!("{GUEST_UUID}:{}", "k".repeat(64))), invalid),
        (format!("Basic {}", "A".repeat(20_000)), invalid),
        // Whitespace inside the token is not a token68: not credentials at all.
        (
            format!(
                "Basic {} {}",
                &basic(&guest_key())[6..20],
                &basic(&guest_key())[20..]
            ),
            missing,
        ),
        ("Basic abc-def".into(), invalid),
        ("basic    ".into(), missing),
    ];
    for (value, text) in cases {
        let (status, headers, body) = invoke(&url, Some(&value), None).await;
        assert_eq!(status, 401, "{value:.40}");
        assert_eq!(body["error"], text, "{value:.40}");
        assert_eq!(
            headers["www-authenticate"],
            "Basic realm=\"OpenWhisk secure realm\",charset=UTF-8"
        );
        assert!(!body.to_string().contains(GUEST_KEY));
    }
    // Non-UTF-8 bytes in the header
    let status = raw(
        &gw.url,
        b"POST /api/v1/namespaces/guest/actions/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xfe\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(status.contains(" 401 "), "{status}");
    assert!(fake.calls().is_empty());
    still_serving(&gw).await;
}

#[tokio::test]
async fn huge_headers_and_garbage_are_cut_off() {
    let (gw, fake, _c) = setup().await;
    let r = client()
        .post(gw.invoke_url("guest/ok", ""))
        .header("authorization", guest_auth())
        .header("x-huge", "h".repeat(200_000))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_body() || e.is_connect(), "{e}"),
    }
    let mut many = String::from("GET /api/v1 HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        many.push_str(&format!("x-h-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let status = raw(&gw.url, many.as_bytes()).await;
    assert!(
        status.is_empty() || status.contains(" 431 ") || status.contains(" 200 "),
        "{status}"
    );
    let status = raw(&gw.url, b"\x00\x01\x02 garbage garbage\r\n\r\n").await;
    assert!(status.is_empty() || status.contains(" 400 "), "{status}");
    let status = raw(&gw.url, b"POST /api/v1/namespaces/guest/actions/ok HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n").await;
    assert!(status.is_empty() || status.contains(" 400 "), "{status}");
    assert!(fake.calls().is_empty());
    still_serving(&gw).await;
}

#[tokio::test]
async fn invalid_utf8_bodies_are_400s() {
    let (gw, fake, _c) = setup().await;
    let r = client()
        .post(gw.invoke_url("guest/ok", "blocking=true"))
        .header("authorization", guest_auth())
        .header("content-type", "application/json")
        .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .starts_with("The request content was malformed:\n")
    );
    assert!(fake.calls().is_empty());
}
