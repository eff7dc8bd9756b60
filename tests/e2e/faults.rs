//! Fault injection on the Lambda path: throttling, unavailability, hangs, service
//! errors — with and without fallback to the controller. A small fake Lambda injects
//! the faults; one test throttles a real MiniStack function.

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn route(fallback: &str, extra: &str) -> String {
    format!(
        "[[route]]\naction = \"guest/act\"\nfunction = \"fake-fn\"\nqualifier = \"live\"\nfallback = \"{fallback}\"\n{extra}\n"
    )
}

async fn controller() -> Standin {
    standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await
}

#[tokio::test]
async fn throttling_falls_back_to_the_controller() {
    let fake = FakeLambda::start(Fault::Throttle {
        reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
        retry_after: Some(3),
    })
    .await;
    let c = controller().await;
    let gw = TestGateway::start(&policy(&c.url(), &fake.url, &route("controller", ""))).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"x":1}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"x": 1}));
    assert_eq!(headers["x-owl-standin"], "true", "the controller answered");
    assert_eq!(c.invocations(), 1);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function, "fake-fn");
    assert_eq!(calls[0].query.as_deref(), Some("Qualifier=live"));
    assert_eq!(calls[0].headers["x-amz-log-type"], "Tail");
}

#[tokio::test]
async fn throttling_without_fallback_is_429_with_retry_after() {
    let fake = FakeLambda::start(Fault::Throttle {
        reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
        retry_after: Some(3),
    })
    .await;
    let c = controller().await;
    let gw = TestGateway::start(&policy(&c.url(), &fake.url, &route("none", ""))).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    // OpenWhisk's answer when its load balancer has no capacity: 503 with the status's
    // default text [OW core/controller/.../Actions.scala:326-328]; `systemOverloaded`
    // (ErrorResponse.scala:82) is never sent.
    assert_eq!(status, 503);
    assert_eq!(
        body["error"],
        "The server is currently unavailable (because it is overloaded or down for maintenance)."
    );
    assert_eq!(body["code"], headers["x-request-id"].to_str().unwrap());
    assert_eq!(headers["retry-after"], "3");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(c.invocations(), 0);
}

#[tokio::test]
async fn unreachable_lambda_falls_back_or_is_503() {
    let down = upstream::down();
    let c = controller().await;
    let gw = TestGateway::start(&policy(&c.url(), &down, &route("controller", ""))).await;
    let (status, headers, _) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-owl-standin"], "true");

    let gw = TestGateway::start(&policy(&c.url(), &down, &route("none", ""))).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(
        body["error"],
        "The server is currently unavailable (because it is overloaded or down for maintenance)."
    );
}

#[tokio::test]
async fn missing_function_and_eni_errors_fall_back() {
    for fault in [Fault::NotFound, Fault::EniLimit] {
        let fake = FakeLambda::start(fault.clone()).await;
        let c = controller().await;
        let gw = TestGateway::start(&policy(&c.url(), &fake.url, &route("controller", ""))).await;
        let (status, headers, _) = invoke(
            &gw.invoke_url("guest/act", "blocking=true"),
            Some(&guest_auth()),
            None,
        )
        .await;
        assert_eq!(status, 200, "{fault:?}");
        assert_eq!(headers["x-owl-standin"], "true", "{fault:?}");
    }
}

#[tokio::test]
async fn a_service_error_is_never_retried_elsewhere() {
    // A 500 may come after the function ran: running it again on the controller could
    // run it twice, so owl records a whisk internal error instead.
    let fake = FakeLambda::start(Fault::ServiceError).await;
    let c = controller().await;
    let gw = TestGateway::start(&policy(&c.url(), &fake.url, &route("controller", ""))).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["response"]["status"], "whisk internal error");
    assert!(headers.contains_key("x-openwhisk-activation-id"));
    assert_eq!(c.invocations(), 0);
    assert_eq!(fake.calls().len(), 1, "no SDK retry either");
}

#[tokio::test]
async fn a_hanging_lambda_ends_as_a_timeout() {
    let fake = FakeLambda::start(Fault::Hang).await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &route("controller", "timeout = \"200ms\""),
    )
    .replace(
        "region = \"us-east-1\"",
        "region = \"us-east-1\"\ninit_allowance = \"0s\"",
    );
    let gw = TestGateway::start(&p).await;
    let start = Instant::now();
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["response"]["result"]["error"],
        "The action exceeded its time limits of 200 milliseconds."
    );
    assert_eq!(annotation(&body, "timeout").unwrap(), true);
    // The `limits` annotation is the action's own (issue 15 §11), not the route's
    // override [OW ContainerProxy.scala:1075 `job.action.limits.toJson`].
    assert_eq!(annotation(&body, "limits").unwrap()["timeout"], 60000);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(c.invocations(), 0);
}

#[tokio::test]
async fn non_blocking_fallback_happens_in_the_background() {
    let fake = FakeLambda::start(Fault::Throttle {
        reason: "FunctionInvocationRateLimitExceeded",
        retry_after: None,
    })
    .await;
    let c = controller().await;
    let gw = TestGateway::start(&policy(&c.url(), &fake.url, &route("controller", ""))).await;
    let (status, _, body) =
        invoke(&gw.invoke_url("guest/act", ""), Some(&guest_auth()), None).await;
    assert_eq!(status, 202);
    assert!(body["activationId"].is_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.invocations() == 0 {
        assert!(
            Instant::now() < deadline,
            "the controller never got the fallback"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn event_payloads_reach_the_function_and_results_come_back() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = controller().await;
    let gw = TestGateway::start(&policy(
        &c.url(),
        &fake.url,
        &route("controller", "payload = \"event\""),
    ))
    .await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"p":1}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"ok": true}));
    assert_eq!(fake.calls()[0].body, json!({"p": 1}));
}

#[tokio::test]
async fn a_real_throttle_from_ministack_falls_back() {
    let lambda = lambda().await;
    let code = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/functions.py"
    ))
    .unwrap();
    ensure_function(
        &lambda.endpoint,
        &owl::demo::ministack::FunctionSpec {
            name: "owl-test-throttled".into(),
            runtime: "python3.11".into(),
            handler: "functions.echo".into(),
            files: vec![("functions.py".into(), code, false)],
            timeout_s: 2,
            environment: Vec::new(),
        },
    )
    .await;
    lambda_client(&lambda.endpoint)
        .await
        .put_function_concurrency()
        .function_name("owl-test-throttled")
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect("set concurrency 0");
    let c = controller().await;
    let routes = "[[route]]\naction = \"guest/act\"\nfunction = \"owl-test-throttled\"\n";
    let gw = TestGateway::start(&policy(&c.url(), &lambda.endpoint, routes)).await;
    let (status, headers, _) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-owl-standin"], "true");
    let routes = "[[route]]\naction = \"guest/act\"\nfunction = \"owl-test-throttled\"\nfallback = \"none\"\n";
    let gw = TestGateway::start(&policy(&c.url(), &lambda.endpoint, routes)).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    // OpenWhisk's answer when its load balancer has no capacity: 503 with the status's
    // default text [OW core/controller/.../Actions.scala:326-328]; `systemOverloaded`
    // (ErrorResponse.scala:82) is never sent.
    assert_eq!(status, 503);
    assert_eq!(
        body["error"],
        "The server is currently unavailable (because it is overloaded or down for maintenance)."
    );
}

#[tokio::test]
async fn controller_down_during_lookup_is_a_502_in_openwhisk_shape() {
    let fake = FakeLambda::start(Fault::Reply(json!({}))).await;
    let gw = TestGateway::start(&policy(
        &upstream::down(),
        &fake.url,
        &route("controller", ""),
    ))
    .await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(
        body["error"],
        "The OpenWhisk controller could not be reached."
    );
    assert_eq!(body["code"], headers["x-request-id"].to_str().unwrap());
    assert!(
        fake.calls().is_empty(),
        "nothing reaches Lambda unauthenticated"
    );
}

#[tokio::test]
async fn lambdas_report_line_supplies_init_time_on_cold_starts() {
    let fake = FakeLambda::start(Fault::ReplyWithLog(
        json!({"cold": true}),
        "START RequestId: r1 Version: $LATEST\nprinted\nEND RequestId: r1\nREPORT RequestId: r1\tDuration: 3.10 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 150.20 ms\t\n",
    ))
    .await;
    let c = controller().await;
    let gw = TestGateway::start(&policy(&c.url(), &fake.url, &route("controller", ""))).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(annotation(&body, "initTime").unwrap(), 151);
    assert_eq!(body["logs"], json!([]), "blocking responses carry no logs");

    fake.set(Fault::ReplyWithLog(
        json!({"cold": false}),
        "REPORT RequestId: r2\tDuration: 1.00 ms\tBilled Duration: 1 ms\t\n",
    ));
    let (_, _, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert!(
        annotation(&body, "initTime").is_none(),
        "warm starts have no initTime"
    );
}

#[tokio::test]
async fn a_connection_lost_mid_call_is_never_sent_elsewhere() {
    // The request reached "Lambda", then the connection dropped: the function may have
    // run, so owl records a whisk internal error instead of falling back.
    let fake = FakeLambda::start(Fault::Drop).await;
    let c = controller().await;
    let gw = TestGateway::start(&policy(&c.url(), &fake.url, &route("controller", ""))).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["response"]["status"], "whisk internal error");
    assert!(headers.contains_key("x-openwhisk-activation-id"));
    assert_eq!(fake.calls().len(), 1, "sent once");
    assert_eq!(c.invocations(), 0, "never re-sent to the controller");
}

#[tokio::test]
async fn weight_zero_is_a_pure_proxy() {
    let fake = FakeLambda::start(Fault::Reply(json!({}))).await;
    let c = controller().await;
    let gw = TestGateway::start(&policy(
        &c.url(),
        &fake.url,
        &route("controller", "weight = 0"),
    ))
    .await;
    let (status, headers, _) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-owl-standin"], "true");
    let lookups = c
        .counters()
        .namespace_lookups
        .load(std::sync::atomic::Ordering::SeqCst)
        + c.counters()
            .metadata_lookups
            .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(lookups, 0, "no identity work for a route at weight 0");
    assert!(fake.calls().is_empty());
}
