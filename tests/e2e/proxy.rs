//! The proxy path: everything that is not a mapped invocation goes to the controller
//! unchanged, streamed both ways.

use crate::common::*;
use futures_util::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

const ROUTES: &str = "[[route]]\naction = \"guest/mapped\"\nfunction = \"owl-test-echo\"\n";

#[tokio::test]
async fn unmapped_invocations_and_other_apis_reach_the_controller() {
    let lambda = lambda().await;
    let c = standin(vec![
        StandinAction::new("guest/greet", Behaviour::Greet),
        StandinAction::new("guest/mapped", Behaviour::Echo),
    ])
    .await;
    let gw = TestGateway::start(&policy(&c.url(), &lambda.endpoint, ROUTES)).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("_/greet", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"name":"proxy"}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"greeting": "Hello, proxy!"}));
    assert_eq!(headers["x-owl-standin"], "true");
    assert_eq!(c.invocations(), 1);
    // The same call straight to the controller gives the same answer.
    let (direct_status, _, direct_body) = invoke(
        &format!(
            "{}/api/v1/namespaces/_/actions/greet?blocking=true&result=true",
            c.url()
        ),
        Some(&guest_auth()),
        Some(r#"{"name":"proxy"}"#),
    )
    .await;
    assert_eq!((direct_status, direct_body), (status, body));
    // Another API
    let r = client()
        .get(format!("{}/api/v1/namespaces", gw.url))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!(["guest"])
    );
}

#[tokio::test]
async fn requests_pass_unchanged_plus_forwarding_headers() {
    let up = upstream::echo().await;
    let gw = TestGateway::start(&policy(&up.url, &upstream::down(), ROUTES)).await;
    let r = client()
        .put(format!(
            "{}/api/v1/namespaces/guest/triggers/t%20x?a=1&b=%2F",
            gw.url
        ))
        .header("authorization", "Basic abc")
        .header("x-custom", "kept")
        .header("connection", "x-hop")
        .header("x-hop", "dropped")
        .header("x-forwarded-for", "10.1.2.3")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["x-echo-method"], "PUT");
    assert!(
        h["x-echo-uri"]
            .to_str()
            .unwrap()
            .ends_with("/api/v1/namespaces/guest/triggers/t%20x?a=1&b=%2F")
    );
    assert_eq!(h["x-echo-h-authorization"], "Basic abc");
    assert_eq!(h["x-echo-h-x-custom"], "kept");
    assert!(!h.contains_key("x-echo-h-x-hop"));
    assert_eq!(h["x-echo-h-x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(h["x-echo-h-x-forwarded-proto"], "http");
    assert_eq!(h["x-echo-h-host"], up.url.trim_start_matches("http://"));
    assert_eq!(
        h["x-echo-h-x-forwarded-host"],
        gw.url.trim_start_matches("http://")
    );
    assert_eq!(h["x-echo-h-x-request-id"].to_str().unwrap().len(), 32);
    assert_eq!(r.text().await.unwrap(), "payload");
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let up = upstream::echo().await;
    let gw = TestGateway::start(&policy(&up.url, &upstream::down(), ROUTES)).await;
    let data: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r = client()
        .post(format!(
            "{}/api/v1/namespaces/guest/actions/unmapped?blocking=true",
            gw.url
        ))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-echo-h-content-length"],
        data.len().to_string().as_str()
    );
    let back = r.bytes().await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the body came back byte for byte");

    // A chunked request (no length) arrives whole and chunked.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(100_000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let r = client()
        .post(format!(
            "{}/api/v1/namespaces/guest/actions/unmapped",
            gw.url
        ))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-echo-h-transfer-encoding"], "chunked");
    assert!(r.bytes().await.unwrap() == data);
}

#[tokio::test]
async fn responses_stream_without_waiting_for_the_end() {
    // An upstream that sends one chunk, then waits: the client must see the first
    // chunk long before the upstream finishes.
    let app = axum::Router::new().fallback(|| async {
        let s = futures_util::stream::iter(0..2).then(|i| async move {
            if i == 1 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Ok::<_, std::io::Error>(bytes::Bytes::from(format!("chunk{i}\n")))
        });
        axum::body::Body::from_stream(s)
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    let gw = TestGateway::start(&policy(&up, &upstream::down(), ROUTES)).await;
    let start = Instant::now();
    let r = client()
        .get(format!("{}/api/v1/anything", gw.url))
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"chunk0\n");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "first chunk took {:?}",
        start.elapsed()
    );
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!(&second[..], b"chunk1\n");
}

#[tokio::test]
async fn controller_down_is_502_and_slow_is_504() {
    let gw = TestGateway::start(&policy(&upstream::down(), &upstream::down(), ROUTES)).await;
    let r = client()
        .get(format!("{}/api/v1/namespaces", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        b,
        json!({"error": "The OpenWhisk controller could not be reached.", "code": id})
    );

    let slow = upstream::hanging().await;
    let p = policy(&slow.url, &upstream::down(), ROUTES)
        .replace("timeout = \"10s\"", "timeout = \"300ms\"");
    let gw = TestGateway::start(&p).await;
    let start = Instant::now();
    let r = client()
        .get(format!("{}/api/v1/namespaces", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(start.elapsed() < Duration::from_secs(5));
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        b["error"],
        "The OpenWhisk controller did not answer in time."
    );
}

#[tokio::test]
async fn unmapped_actions_never_touch_identity_or_lambda() {
    let fake =
        crate::common::fake_lambda::FakeLambda::start(crate::common::fake_lambda::Fault::Hang)
            .await;
    let c = standin(vec![StandinAction::new("guest/other", Behaviour::Echo)]).await;
    let gw = TestGateway::start(&policy(&c.url(), &fake.url, ROUTES)).await;
    let (status, _, _) = invoke(
        &gw.invoke_url("guest/other", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(fake.calls().is_empty());
    let lookups = c
        .counters()
        .namespace_lookups
        .load(std::sync::atomic::Ordering::SeqCst)
        + c.counters()
            .metadata_lookups
            .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(lookups, 0, "owl made no identity or metadata lookups");
}
