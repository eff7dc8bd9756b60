//! The Lambda path end to end: the gateway in front of the stand-in controller and a
//! real Lambda emulator (MiniStack) running Python functions. Covers every row of the
//! invoke table (reference §1.6) served from Lambda, the envelope, parameters, logs
//! and the record shape.

use crate::common::*;
use serde_json::{Value, json};

fn routes() -> &'static str {
    r#"
[[route]]
action = "guest/hello"
function = "owl-test-hello"

[[route]]
action = "guest/apperr"
function = "owl-test-apperr"

[[route]]
action = "guest/boom"
function = "owl-test-boom"

[[route]]
action = "guest/slow"
function = "owl-test-slow"

[[route]]
action = "guest/array"
function = "owl-test-array"

[[route]]
action = "guest/text"
function = "owl-test-text"

[[route]]
action = "guest/big"
function = "owl-test-big"

[[route]]
action = "guest/unicode"
function = "owl-test-unicode"

[[route]]
action = "guest/echo"
function = "owl-test-echo"

[[route]]
action = "guest/event"
function = "owl-test-echo"
payload = "event"

[[route]]
action = "guest/pkg/*"
function = "owl-test-{action}"

[[route]]
action = "alice/echo"
function = "owl-test-echo"
"#
}

fn actions() -> Vec<StandinAction> {
    let mut v: Vec<StandinAction> = [
        "hello", "apperr", "boom", "array", "text", "big", "unicode", "echo", "event",
    ]
    .iter()
    .map(|a| StandinAction::new(&format!("guest/{a}"), Behaviour::Echo))
    .collect();
    v.push(StandinAction::new("guest/slow", Behaviour::Echo).timeout_ms(2000));
    v.push(
        StandinAction::new("guest/params", Behaviour::Echo)
            .param("fixed", json!("default"))
            .param("open", Value::Null),
    );
    v.push(StandinAction::new("alice/echo", Behaviour::Echo));
    v
}

struct Setup {
    gw: TestGateway,
    controller: Standin,
}

async fn setup() -> Setup {
    setup_with(routes(), actions()).await
}

async fn setup_with(routes: &str, actions: Vec<StandinAction>) -> Setup {
    let lambda = lambda().await;
    let controller = standin(actions).await;
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    Setup { gw, controller }
}

#[tokio::test]
async fn blocking_success_returns_the_full_record() {
    let s = setup().await;
    let (status, headers, body) = invoke(
        &s.gw.invoke_url("guest/hello", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"name":"owl"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["activationId"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(headers["x-openwhisk-activation-id"], id);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(headers["x-request-id"].to_str().unwrap().len(), 32);
    assert_eq!(body["namespace"], "guest");
    assert_eq!(body["name"], "hello");
    assert_eq!(body["subject"], "guest");
    assert_eq!(body["version"], "0.0.1");
    assert_eq!(body["publish"], false);
    assert_eq!(body["logs"], json!([]));
    assert_eq!(
        body["duration"].as_i64().unwrap(),
        body["end"].as_i64().unwrap() - body["start"].as_i64().unwrap()
    );
    assert_eq!(body["response"]["status"], "success");
    assert_eq!(body["response"]["success"], true);
    assert_eq!(
        body["response"]["result"],
        json!({"greeting": "Hello, owl!"})
    );
    assert!(body["response"]["size"].as_u64().unwrap() > 0);
    assert!(body.get("statusCode").is_none());
    assert_eq!(annotation(&body, "path").unwrap(), "guest/hello");
    assert_eq!(annotation(&body, "kind").unwrap(), "nodejs:20");
    assert_eq!(annotation(&body, "timeout").unwrap(), false);
    assert_eq!(annotation(&body, "limits").unwrap()["memory"], 256);
    assert!(annotation(&body, "waitTime").unwrap().is_u64());
    let keys: Vec<&str> = body["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys[..4], ["limits", "path", "kind", "timeout"]);
    assert_eq!(s.controller.invocations(), 0, "the controller ran nothing");
}

#[tokio::test]
async fn blocking_result_only() {
    let s = setup().await;
    let (status, headers, body) = invoke(
        &s.gw.invoke_url("_/hello", "blocking=true&result=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"greeting": "Hello, stranger!"}));
    assert!(headers.contains_key("x-openwhisk-activation-id"));
}

#[tokio::test]
async fn application_error_is_502_with_only_the_error() {
    let s = setup().await;
    for query in ["blocking=true", "blocking=true&result=true"] {
        let (status, headers, body) = invoke(
            &s.gw.invoke_url("guest/apperr", query),
            Some(&guest_auth()),
            None,
        )
        .await;
        assert_eq!(status, 502, "{query}");
        assert!(headers.contains_key("x-openwhisk-activation-id"));
        let result = if query.contains("result") {
            body.clone()
        } else {
            assert_eq!(body["response"]["status"], "application error");
            assert_eq!(body["response"]["success"], false);
            assert!(
                body.get("code").is_none(),
                "never a code on an activation body"
            );
            body["response"]["result"].clone()
        };
        assert_eq!(result, json!({"error": "this went wrong"}), "{query}");
    }
}

#[tokio::test]
async fn thrown_exception_is_a_developer_error() {
    let s = setup().await;
    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/boom", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(body["response"]["status"], "action developer error");
    assert_eq!(body["response"]["result"], json!({"error": "it broke"}));
}

#[tokio::test]
async fn function_timeout_is_a_developer_error_with_openwhisks_text() {
    let s = setup().await;
    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/slow", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"seconds": 5}"#),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["response"]["status"], "action developer error");
    assert_eq!(
        body["response"]["result"]["error"],
        "The action exceeded its time limits of 2000 milliseconds."
    );
    assert_eq!(annotation(&body, "timeout").unwrap(), true);
}

#[tokio::test]
async fn blocking_wait_shorter_than_the_action_answers_202() {
    let s = setup().await;
    let (status, headers, body) = invoke(
        &s.gw.invoke_url("guest/slow", "blocking=true&timeout=300"),
        Some(&guest_auth()),
        Some(r#"{"seconds": 1}"#),
    )
    .await;
    assert_eq!(status, 202);
    let id = body["activationId"].as_str().unwrap();
    assert_eq!(body, json!({"activationId": id}));
    assert_eq!(headers["x-openwhisk-activation-id"], id);
}

#[tokio::test]
async fn non_blocking_answers_202_at_once_and_ignores_result() {
    let s = setup().await;
    let (status, headers, body) = invoke(
        &s.gw.invoke_url("guest/slow", "result=true"),
        Some(&guest_auth()),
        Some(r#"{"seconds": 1}"#),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(
        headers["x-openwhisk-activation-id"],
        body["activationId"].as_str().unwrap()
    );
}

#[tokio::test]
async fn array_results_are_returned_bare() {
    let s = setup().await;
    for query in ["blocking=true", "blocking=true&result=true"] {
        let (status, headers, body) = invoke(
            &s.gw.invoke_url("guest/array", query),
            Some(&guest_auth()),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body, json!([1, 2, 3]), "{query}");
        assert!(headers.contains_key("x-openwhisk-activation-id"));
    }
}

#[tokio::test]
async fn non_object_result_is_a_developer_error() {
    let s = setup().await;
    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/text", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(
        body["response"]["result"]["error"],
        "The action did not produce a valid JSON or JSON Array response: \"just a string\""
    );
}

#[tokio::test]
async fn oversized_result_is_a_truncated_application_error() {
    let s = setup().await;
    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/big", "blocking=true&result=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 502);
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.starts_with("The action produced a response that exceeded the allowed length: "),
        "{}",
        &msg[..100]
    );
    assert!(msg.contains(" > 1048576 bytes. The truncated response was: {\"data\""));
}

#[tokio::test]
async fn unicode_round_trips() {
    let s = setup().await;
    let (status, _, body) = invoke(
        &s.gw
            .invoke_url("guest/unicode", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"name":"élan 🦉"}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["text"], "ünïcödé ✓ 🦉");
    assert_eq!(body["echo"]["name"], "élan 🦉");
}

#[tokio::test]
async fn the_function_receives_the_openwhisk_envelope() {
    let s = setup().await;
    let client = client();
    let resp = client
        .post(s.gw.invoke_url("_/echo", "blocking=true"))
        .header("authorization", guest_auth())
        .header("x-request-id", "my-transaction-17")
        .json(&json!({"name": "owl", "n": 123456789012345678901234567890u128}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "my-transaction-17");
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("123456789012345678901234567890"),
        "big numbers stay exact"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    let event = &body["response"]["result"]["event"];
    assert_eq!(event["value"]["name"], "owl");
    assert_eq!(event["namespace"], "guest");
    assert_eq!(event["action_name"], "/guest/echo");
    assert_eq!(event["action_version"], "0.0.1");
    assert_eq!(event["activation_id"], body["activationId"]);
    assert_eq!(event["transaction_id"], "my-transaction-17");
    let deadline: i64 = event["deadline"].as_str().unwrap().parse().unwrap();
    assert!(deadline > body["start"].as_i64().unwrap());
    assert!(event.get("api_key").is_none(), "provide-api-key is false");
}

#[tokio::test]
async fn api_key_is_passed_only_when_the_action_allows_it() {
    let s = setup_with(
        routes(),
        vec![
            StandinAction::new("guest/echo", Behaviour::Echo)
                .annotation("provide-api-key", json!(true)),
        ],
    )
    .await;
    let (_, _, body) = invoke(
        &s.gw.invoke_url("guest/echo", "blocking=true&result=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(body["event"]["api_key"], guest_key());
}

#[tokio::test]
async fn event_payload_is_the_merged_parameters() {
    let s = setup().await;
    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/event", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"a":[1,2]}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"event": {"a": [1, 2]}}));
}

#[tokio::test]
async fn parameters_merge_and_final_parameters_are_enforced() {
    let routes = r#"
[[route]]
action = "guest/*"
function = "owl-test-echo"
payload = "event"
"#;
    let s = setup_with(
        routes,
        vec![
            StandinAction::new("guest/params", Behaviour::Echo)
                .param("fixed", json!("default"))
                .param("open", Value::Null),
            StandinAction::new("guest/final", Behaviour::Echo)
                .param("fixed", json!("default"))
                .param("open", Value::Null)
                .annotation("final", json!(true)),
        ],
    )
    .await;
    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/params", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"fixed":"mine","extra":1}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["event"],
        json!({"fixed": "mine", "open": null, "extra": 1})
    );

    let (status, headers, body) = invoke(
        &s.gw.invoke_url("guest/final", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"fixed":"mine"}"#),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "Request defines parameters that are not allowed (e.g., reserved properties)."
    );
    assert_eq!(body["code"], headers["x-request-id"].to_str().unwrap());
    assert!(!headers.contains_key("x-openwhisk-activation-id"));

    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/final", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"open":"allowed"}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["event"],
        json!({"fixed": "default", "open": "allowed"})
    );
}

#[tokio::test]
async fn packaged_actions_and_wildcard_templates() {
    let lambda = lambda().await;
    let controller = StandinBuilder::with_guest()
        .package(
            "guest",
            "pkg",
            false,
            vec![("fromPackage".into(), json!(1))],
        )
        .action(StandinAction::new("guest/pkg/echo", Behaviour::Echo))
        .spawn()
        .await
        .unwrap();
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes())).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/pkg/echo", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"x":1}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(annotation(&body, "path").unwrap(), "guest/pkg/echo");
    let event = &body["response"]["result"]["event"];
    assert_eq!(event["action_name"], "/guest/pkg/echo");
    assert_eq!(event["value"], json!({"fromPackage": 1, "x": 1}));
    assert_eq!(controller.invocations(), 0);
}

#[tokio::test]
async fn bindings_resolve_to_the_bound_package_route() {
    let lambda = lambda().await;
    let routes = r#"
[[route]]
action = "alice/shared/*"
function = "owl-test-{action}"
"#;
    let controller = StandinBuilder::with_guest()
        .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
        .package("alice", "shared", true, vec![("p".into(), json!("pkg"))])
        .binding(
            "guest",
            "mybinding",
            "alice",
            "shared",
            vec![("b".into(), json!("binding"))],
        )
        .action(StandinAction::new("alice/shared/echo", Behaviour::Echo))
        .spawn()
        .await
        .unwrap();
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("_/mybinding/echo", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["namespace"], "guest",
        "the activation belongs to the caller"
    );
    assert_eq!(annotation(&body, "path").unwrap(), "alice/shared/echo");
    assert_eq!(annotation(&body, "binding").unwrap(), "guest/mybinding");
    let event = &body["response"]["result"]["event"];
    assert_eq!(event["action_name"], "/alice/shared/echo");
    assert_eq!(event["namespace"], "guest");
    assert_eq!(event["value"], json!({"p": "pkg", "b": "binding"}));
    assert_eq!(controller.invocations(), 0);
}

#[tokio::test]
async fn authentication_and_entitlement_come_from_the_controller() {
    let s = setup().await;
    // no credentials
    let (status, headers, body) =
        invoke(&s.gw.invoke_url("guest/hello", "blocking=true"), None, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"],
        "The resource requires authentication, which was not supplied with the request"
    );
    assert_eq!(
        headers["www-authenticate"],
        "Basic realm=\"OpenWhisk secure realm\",charset=UTF-8"
    );
    // malformed key (not 64 characters)
    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/hello", "blocking=true"),
        Some(&basic("uuid:short")),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "The supplied authentication is invalid");
    // well-formed but unknown key: the controller's answer
    let unknown = format!("{GUEST_UUID}:{}", "x".repeat(64));
    let (status, headers, body) = invoke(
        &s.gw.invoke_url("_/hello", "blocking=true"),
        Some(&basic(&unknown)),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "The supplied authentication is invalid");
    assert_eq!(body["code"], headers["x-request-id"].to_str().unwrap());
    // another namespace's action: 403 naming it
    let (status, _, body) = invoke(
        &s.gw.invoke_url("alice/echo", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"],
        "The supplied authentication is not authorized to access 'alice/echo'."
    );
    // alice may
    let (status, _, body) = invoke(
        &s.gw.invoke_url("alice/echo", "blocking=true"),
        Some(&alice_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["namespace"], "alice");
    assert_eq!(s.controller.invocations(), 0);
}

#[tokio::test]
async fn missing_action_is_404_after_validation() {
    let routes = r#"
[[route]]
action = "guest/*"
function = "owl-test-echo"
"#;
    let s = setup_with(routes, vec![]).await;
    let (status, headers, body) = invoke(
        &s.gw.invoke_url("guest/nothing", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "The requested resource does not exist.");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(!headers.contains_key("x-openwhisk-activation-id"));
    // a malformed query on a missing default-package action: the 400 wins
    let (status, _, _) = invoke(
        &s.gw.invoke_url("guest/nothing", "blocking=maybe"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn query_validation_texts() {
    let s = setup().await;
    for (query, text) in [
        (
            "blocking=maybe",
            "The query parameter 'blocking' was malformed:\n'maybe' is not a valid Boolean value",
        ),
        (
            "blocking=true&result=2",
            "The query parameter 'result' was malformed:\n'2' is not a valid Boolean value",
        ),
        (
            "timeout=0",
            "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 60000.",
        ),
        (
            "timeout=65000",
            "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 60000.",
        ),
        (
            "blocking=false&timeout=abc",
            "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 60000.",
        ),
    ] {
        let (status, headers, body) = invoke(
            &s.gw.invoke_url("guest/hello", query),
            Some(&guest_auth()),
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"], text, "{query}");
        assert_eq!(body["code"], headers["x-request-id"].to_str().unwrap());
        assert!(
            !headers.contains_key("access-control-allow-origin"),
            "rejections carry no CORS"
        );
    }
}

#[tokio::test]
async fn body_validation() {
    let s = setup().await;
    let url = s.gw.invoke_url("guest/hello", "blocking=true&result=true");
    let c = client();
    // empty body with JSON content type is {}
    let r = c
        .post(&url)
        .header("authorization", guest_auth())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // non-object JSON
    let r = c
        .post(&url)
        .header("authorization", guest_auth())
        .header("content-type", "application/json")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["error"],
        "The request content was malformed:\nJSON object expected"
    );
    // invalid JSON
    let r = c
        .post(&url)
        .header("authorization", guest_auth())
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .starts_with("The request content was malformed:\n")
    );
    // curl -d without a content type
    let r = c
        .post(&url)
        .header("authorization", guest_auth())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["error"],
        "The request's Content-Type [application/x-www-form-urlencoded] is not supported. Expected:\napplication/json"
    );
    // text/plain, even empty
    let r = c
        .post(&url)
        .header("authorization", guest_auth())
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // no content type, JSON body: accepted
    let r = c
        .post(&url)
        .header("authorization", guest_auth())
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["greeting"], "Hello, x!");
}

#[tokio::test]
async fn payloads_over_one_mebibyte_get_413() {
    let s = setup().await;
    let url = s.gw.invoke_url("guest/hello", "blocking=true");
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(1_048_576));
    let len = big.len();
    let c = client();
    let r = c
        .post(&url)
        .header("authorization", guest_auth())
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["error"],
        format!("Request larger than allowed: {len} > 1048576 bytes.")
    );
    // chunked: no content-length, the length is counted
    let stream = futures_util::stream::iter(
        big.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = c
        .post(&url)
        .header("authorization", guest_auth())
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["error"],
        format!("Request larger than allowed: {len} > 1048576 bytes.")
    );
}

#[tokio::test]
async fn request_ids_are_honoured_unless_reserved() {
    let s = setup().await;
    let c = client();
    let r = c
        .post(s.gw.invoke_url("guest/hello", "blocking=maybe"))
        .header("authorization", guest_auth())
        .header("x-request-id", "client-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-chosen-id");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "client-chosen-id");
    let r = c
        .post(s.gw.invoke_url("guest/hello", "blocking=true"))
        .header("authorization", guest_auth())
        .header("x-request-id", "sid_system")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "sid_system");
}

#[tokio::test]
async fn options_is_open_with_cors() {
    let s = setup().await;
    let r = client()
        .request(reqwest::Method::OPTIONS, s.gw.invoke_url("guest/hello", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers()["access-control-allow-methods"],
        "GET, DELETE, POST, PUT, HEAD"
    );
    assert_eq!(
        r.headers()["access-control-allow-headers"],
        "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"
    );
    assert_eq!(r.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn weights_split_traffic_between_lambda_and_controller() {
    let routes = r#"
[[route]]
action = "guest/zero"
function = "owl-test-echo"
weight = 0

[[route]]
action = "guest/all"
function = "owl-test-echo"
weight = 100

[[route]]
action = "guest/third"
function = "owl-test-echo"
weight = 30
"#;
    let s = setup_with(
        routes,
        ["zero", "all", "third"]
            .iter()
            .map(|a| StandinAction::new(&format!("guest/{a}"), Behaviour::Echo))
            .collect(),
    )
    .await;
    let count = |action: &'static str, n: usize| {
        let url =
            s.gw.invoke_url(&format!("guest/{action}"), "blocking=true&result=true");
        async move {
            let mut lambda = 0;
            for _ in 0..n {
                let (status, _, body) = invoke(&url, Some(&guest_auth()), None).await;
                assert_eq!(status, 200);
                // the function echoes its envelope; the stand-in echoes the params
                if body.get("event").is_some() {
                    lambda += 1;
                }
            }
            lambda
        }
    };
    assert_eq!(count("zero", 20).await, 0);
    assert_eq!(count("all", 20).await, 20);
    let n = 300;
    let hits = count("third", n).await;
    // Binomial(300, 0.3): mean 90, sd ≈ 7.9; ±5 sd keeps a false failure below 1e-6.
    assert!((50..=130).contains(&hits), "{hits} of {n} went to Lambda");
    assert_eq!(s.controller.invocations() as usize, 20 + n - hits);
}

#[tokio::test]
async fn merged_arguments_over_lambdas_limit_get_the_generic_413() {
    // 5.9 MB of default parameters plus the body exceed Lambda's 6 MB request limit,
    // as they would exceed Kafka's record limit in OpenWhisk.
    let s = setup_with(
        "[[route]]\naction = \"guest/heavy\"\nfunction = \"owl-test-echo\"\n",
        vec![
            StandinAction::new("guest/heavy", Behaviour::Echo)
                .param("blob", json!("b".repeat(5_900_000))),
        ],
    )
    .await;
    let body = format!("{{\"more\":\"{}\"}}", "m".repeat(600_000));
    let (status, headers, body) = invoke(
        &s.gw.invoke_url("guest/heavy", "blocking=true"),
        Some(&guest_auth()),
        Some(&body),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(
        body["error"],
        "The request content is larger than the server is willing or able to process."
    );
    assert!(!headers.contains_key("x-openwhisk-activation-id"));
}

#[tokio::test]
async fn an_oversized_chunked_body_is_413_before_query_and_content_type_errors() {
    let s = setup().await;
    let big = vec![b'x'; 1_100_000];
    let stream = futures_util::stream::iter(
        big.chunks(100_000)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = client()
        .post(s.gw.invoke_url("guest/hello", "blocking=maybe"))
        .header("authorization", guest_auth())
        .header("content-type", "text/plain")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["error"],
        "Request larger than allowed: 1100000 > 1048576 bytes."
    );
}

#[tokio::test]
async fn conductor_actions_and_sequences_are_run_by_the_controller() {
    let routes = "[[route]]\naction = \"guest/*\"\nfunction = \"owl-test-echo\"\n";
    let s = setup_with(
        routes,
        vec![
            StandinAction::new("guest/seq", Behaviour::Greet).kind("sequence"),
            StandinAction::new("guest/cond", Behaviour::Greet).annotation("conductor", json!(true)),
        ],
    )
    .await;
    for a in ["guest/seq", "guest/cond"] {
        let (status, headers, body) = invoke(
            &s.gw.invoke_url(a, "blocking=true&result=true"),
            Some(&guest_auth()),
            None,
        )
        .await;
        assert_eq!(status, 200, "{a}");
        assert_eq!(body, json!({"greeting": "Hello, stranger!"}), "{a}");
        assert_eq!(headers["x-owl-standin"], "true", "{a}");
    }
    assert_eq!(s.controller.invocations(), 2);
}

#[tokio::test]
async fn merged_arguments_over_the_message_limit_get_the_generic_413() {
    // 900 KB of body plus 200 KB of default parameters: within the 1 MiB body limit,
    // over OpenWhisk's activation-message limit (1 MiB + serialisation overhead).
    let s = setup_with(
        "[[route]]\naction = \"guest/medium\"\nfunction = \"owl-test-echo\"\n",
        vec![
            StandinAction::new("guest/medium", Behaviour::Echo)
                .param("blob", json!("b".repeat(200_000))),
        ],
    )
    .await;
    let body = format!("{{\"more\":\"{}\"}}", "m".repeat(900_000));
    let (status, _, body) = invoke(
        &s.gw.invoke_url("guest/medium", "blocking=true"),
        Some(&guest_auth()),
        Some(&body),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(
        body["error"],
        "The request content is larger than the server is willing or able to process."
    );
}
