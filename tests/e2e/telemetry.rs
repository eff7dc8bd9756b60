//! Where every millisecond went: spans (in-memory exporter, and a real OTLP/HTTP export
//! from `owl serve` to a receiver in this test), trace propagation to Lambda and the
//! controller, `Server-Timing`, the activation's `owl` annotation, `/metrics` values
//! after a scripted run, the Grafana dashboard's queries, and JSON logs.

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::owl_process::OwlProcess;
use crate::common::*;
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor, SpanData};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// In-process traces: one global subscriber per test binary, spans told apart by the
// trace id each test sends in its own `traceparent`.

fn exporter() -> &'static InMemorySpanExporter {
    static TRACING: OnceLock<InMemorySpanExporter> = OnceLock::new();
    TRACING.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        owl::telemetry::traces::install(SimpleSpanProcessor::new(exporter.clone()));
        exporter
    })
}

/// A fresh client trace context: (trace id, the client's span id, `traceparent`).
fn client_trace() -> (TraceId, SpanId, String) {
    let t = uuid::Uuid::new_v4().simple().to_string();
    let s = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let header = format!("00-{t}-{s}-01");
    (
        TraceId::from_hex(&t).unwrap(),
        SpanId::from_hex(s).unwrap(),
        header,
    )
}

/// The finished spans of `trace`, once `names` are all among them.
async fn spans_of(trace: TraceId, names: &[&str]) -> Vec<SpanData> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans: Vec<SpanData> = exporter()
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .collect();
        if names
            .iter()
            .all(|n| spans.iter().any(|s| s.name.as_ref() == *n))
        {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans {names:?} not all exported; got {:?}",
            spans.iter().map(|s| s.name.to_string()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "exactly one {name} span");
    found[0]
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn duration_ms(span: &SpanData) -> f64 {
    span.end_time
        .duration_since(span.start_time)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// `Server-Timing` as a map of metric → milliseconds.
fn server_timing(headers: &reqwest::header::HeaderMap) -> BTreeMap<String, f64> {
    headers
        .get_all("server-timing")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .filter_map(|m| {
            let mut parts = m.trim().split(';');
            let name = parts.next()?.to_string();
            let dur = parts.find_map(|p| p.trim().strip_prefix("dur="))?;
            Some((name, dur.parse().ok()?))
        })
        .collect()
}

const INVOKE_SPAN: &str = "POST /api/v1/namespaces/{namespace}/actions/{action}";

async fn traced_invoke(url: &str, traceparent: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client()
        .post(url)
        .header("authorization", guest_auth())
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn lambda_policy(controller: &str, lambda: &str, extra: &str) -> String {
    policy(
        controller,
        lambda,
        &format!("[[route]]\naction = \"guest/act\"\nfunction = \"fake-fn\"\n{extra}\n"),
    )
}

/// A gateway routing `guest/act` to a fake Lambda answering with `fault`, in front
/// of a stand-in controller that knows the action.
async fn lambda_gateway(fault: Fault) -> (FakeLambda, Standin, TestGateway) {
    let fake = FakeLambda::start(fault).await;
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let gw = TestGateway::start(&lambda_policy(&c.url(), &fake.url, "")).await;
    (fake, c, gw)
}

#[tokio::test]
async fn a_lambda_invocation_is_one_trace_with_every_phase_under_the_request() {
    exporter();
    let (fake, c, gw) = lambda_gateway(Fault::Reply(json!({"ok": true}))).await;
    let url = gw.invoke_url("guest/act", "blocking=true");
    let (trace, client_span, tp) = client_trace();
    let (status, headers, body) = traced_invoke(&url, &tp).await;
    assert_eq!(status, 200, "{body}");

    let spans = spans_of(
        trace,
        &[
            INVOKE_SPAN,
            "route",
            "auth",
            "throttle",
            "metadata",
            "invocation",
            "lambda.invoke",
            "lambda.sign",
            "lambda.http",
            "activation.record",
        ],
    )
    .await;
    let root = one(&spans, INVOKE_SPAN);
    assert_eq!(root.span_kind, SpanKind::Server);
    assert_eq!(
        root.parent_span_id, client_span,
        "child of the client's span"
    );
    assert!(root.parent_span_is_remote);
    assert_eq!(
        attr(root, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(root, "owl.path").as_deref(), Some("lambda"));
    let root_id = root.span_context.span_id();
    for phase in ["route", "auth", "throttle", "metadata", "invocation"] {
        assert_eq!(
            one(&spans, phase).parent_span_id,
            root_id,
            "{phase} is a child of the request span"
        );
    }
    // The invocation's task (which may outlive the request) has its own span.
    let invocation = one(&spans, "invocation").span_context.span_id();
    for inner in ["lambda.invoke", "activation.record"] {
        assert_eq!(
            one(&spans, inner).parent_span_id,
            invocation,
            "{inner} is a child of the invocation span"
        );
    }
    let invoke = one(&spans, "lambda.invoke");
    assert_eq!(invoke.span_kind, SpanKind::Client);
    assert_eq!(
        attr(invoke, "faas.invoked_name").as_deref(),
        Some("fake-fn")
    );
    assert_eq!(attr(invoke, "owl.route").as_deref(), Some("guest/act"));
    assert_eq!(attr(invoke, "owl.attempts").as_deref(), Some("1"));
    assert_eq!(attr(invoke, "owl.outcome").as_deref(), Some("ok"));
    for inner in ["lambda.sign", "lambda.http"] {
        assert_eq!(
            one(&spans, inner).parent_span_id,
            invoke.span_context.span_id(),
            "{inner} is a child of lambda.invoke"
        );
    }
    let http = one(&spans, "lambda.http");
    assert_eq!(
        attr(http, "http.response.status_code").as_deref(),
        Some("200")
    );
    // First lookups miss the caches.
    assert_eq!(
        attr(one(&spans, "auth"), "owl.cache").as_deref(),
        Some("miss")
    );
    assert_eq!(
        attr(one(&spans, "metadata"), "owl.cache").as_deref(),
        Some("miss")
    );

    // The trace reached Lambda: W3C and X-Ray forms of the lambda.http span.
    let call = &fake.calls()[0];
    let sent = call.headers["traceparent"].to_str().unwrap();
    assert_eq!(
        sent,
        format!("00-{}-{}-01", trace, http.span_context.span_id())
    );
    let xray = call.headers["x-amzn-trace-id"].to_str().unwrap();
    let t = trace.to_string();
    assert_eq!(
        xray,
        format!(
            "Root=1-{}-{};Parent={};Sampled=1",
            &t[..8],
            &t[8..],
            http.span_context.span_id()
        )
    );
    // ...and the controller saw it on the identity and metadata lookups.
    let seen = c.counters().traceparents.lock().unwrap().clone();
    let lookups: Vec<_> = seen.iter().filter(|(_, _, tp)| tp.contains(&t)).collect();
    assert!(
        lookups.len() >= 2,
        "identity and metadata lookups carried the trace: {seen:?}"
    );

    // The client learns the trace: traceresponse names the request span.
    assert_eq!(
        headers["traceresponse"].to_str().unwrap(),
        format!("00-{t}-{root_id}-01")
    );

    // Server-Timing agrees with the trace.
    let st = server_timing(&headers);
    for phase in ["auth", "route", "throttle", "metadata", "lambda", "total"] {
        assert!(st.contains_key(phase), "{phase} in Server-Timing: {st:?}");
    }
    assert!(!st.contains_key("upstream"), "no controller on this path");
    let phases: f64 = st
        .iter()
        .filter(|(k, _)| *k != "total")
        .map(|(_, v)| v)
        .sum();
    assert!(
        phases <= st["total"] + 0.01,
        "phases fit in the total: {st:?}"
    );
    let lambda_span = duration_ms(invoke);
    assert!(
        (st["lambda"] - lambda_span).abs() < 2.0,
        "Server-Timing lambda {} vs span {lambda_span}",
        st["lambda"]
    );
    assert!(
        st["total"] <= duration_ms(root) + 1.0,
        "total {} within the request span {}",
        st["total"],
        duration_ms(root)
    );

    // A second call hits the caches.
    let (trace2, _, tp2) = client_trace();
    assert_eq!(traced_invoke(&url, &tp2).await.0, 200);
    let spans = spans_of(trace2, &["auth", "metadata"]).await;
    assert_eq!(
        attr(one(&spans, "auth"), "owl.cache").as_deref(),
        Some("hit")
    );
    assert_eq!(
        attr(one(&spans, "metadata"), "owl.cache").as_deref(),
        Some("hit")
    );
}

#[tokio::test]
async fn an_unsampled_request_records_nothing_and_passes_its_decision_on() {
    exporter();
    let (fake, c, gw) = lambda_gateway(Fault::Reply(json!({"ok": true}))).await;
    let url = gw.invoke_url("guest/act", "blocking=true");
    // The client decided not to sample (flags 00); the default sampler follows it.
    let (trace, client_span, tp) = client_trace();
    let tp = format!("{}-00", tp.strip_suffix("-01").unwrap());
    let (status, headers, body) = traced_invoke(&url, &tp).await;
    assert_eq!(status, 200, "{body}");

    // The decision and the trace go on: the client learns owl's request span...
    let t = trace.to_string();
    let response = headers["traceresponse"].to_str().unwrap().to_string();
    let parts: Vec<&str> = response.split('-').collect();
    assert_eq!(parts.len(), 4, "{response}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", t.as_str(), "00"));
    let request_span = parts[2].to_string();
    assert_ne!(request_span, client_span.to_string(), "owl's own span id");
    // ...and Lambda and the controller's lookups get that span as parent, unsampled.
    let call = &fake.calls()[0];
    assert_eq!(
        call.headers["traceparent"].to_str().unwrap(),
        format!("00-{t}-{request_span}-00")
    );
    assert!(
        call.headers["x-amzn-trace-id"]
            .to_str()
            .unwrap()
            .ends_with(&format!(";Parent={request_span};Sampled=0")),
        "{:?}",
        call.headers["x-amzn-trace-id"]
    );
    let seen = c.counters().traceparents.lock().unwrap().clone();
    let lookups: Vec<_> = seen.iter().filter(|(_, _, tp)| tp.contains(&t)).collect();
    assert!(lookups.len() >= 2, "{seen:?}");
    for (_, _, sent) in &lookups {
        assert_eq!(*sent, format!("00-{t}-{request_span}-00"));
    }

    // Nothing of it is exported: a sampled request made afterwards is, in full, while
    // the unsampled one left no span.
    let (later, _, tp) = client_trace();
    assert_eq!(traced_invoke(&url, &tp).await.0, 200);
    spans_of(later, &[INVOKE_SPAN, "lambda.http", "activation.record"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let leaked: Vec<String> = exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .map(|s| s.name.to_string())
        .collect();
    assert!(leaked.is_empty(), "unsampled spans exported: {leaked:?}");
}

#[tokio::test]
async fn a_non_blocking_request_span_ends_with_the_202_while_its_invocation_runs_on() {
    exporter();
    let (_fake, _c, gw) =
        lambda_gateway(Fault::Delay(Duration::from_millis(600), json!({"ok": 1}))).await;
    let (trace, _, tp) = client_trace();
    let (s, h, _) = traced_invoke(&gw.invoke_url("guest/act", ""), &tp).await;
    assert_eq!(s, 202);
    assert!(
        server_timing(&h).contains_key("record"),
        "journaled before the 202"
    );
    let spans = spans_of(
        trace,
        &[
            INVOKE_SPAN,
            "activation.journal",
            "lambda.invoke",
            "activation.record",
        ],
    )
    .await;
    let root = one(&spans, INVOKE_SPAN);
    assert!(
        duration_ms(root) < 400.0,
        "the request span ends with the 202: {} ms",
        duration_ms(root)
    );
    assert_eq!(
        one(&spans, "activation.journal").parent_span_id,
        root.span_context.span_id()
    );
    let invocation = one(&spans, "invocation");
    assert_eq!(invocation.parent_span_id, root.span_context.span_id());
    assert!(
        duration_ms(invocation) >= 600.0,
        "{}",
        duration_ms(invocation)
    );
}

#[tokio::test]
async fn a_client_that_leaves_ends_the_request_span_while_its_invocation_is_still_traced() {
    exporter();
    let (_fake, _c, gw) =
        lambda_gateway(Fault::Delay(Duration::from_millis(600), json!({"ok": 1}))).await;
    let (trace, _, tp) = client_trace();
    // A blocking invoke whose client gives up long before Lambda answers.
    let gave_up = client()
        .post(gw.invoke_url("guest/act", "blocking=true"))
        .header("authorization", guest_auth())
        .header("traceparent", &tp)
        .json(&json!({}))
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client timed out");
    let spans = spans_of(
        trace,
        &[
            INVOKE_SPAN,
            "invocation",
            "lambda.invoke",
            "activation.record",
        ],
    )
    .await;
    let root = one(&spans, INVOKE_SPAN);
    assert_eq!(attr(root, "owl.cancelled").as_deref(), Some("true"));
    assert!(
        duration_ms(root) < 450.0,
        "the request span ends when the client leaves: {} ms",
        duration_ms(root)
    );
    // The invocation finished (and was recorded) in the background, in the trace.
    let invocation = one(&spans, "invocation");
    assert!(
        duration_ms(invocation) >= 600.0,
        "{}",
        duration_ms(invocation)
    );
    assert_eq!(
        one(&spans, "activation.record").parent_span_id,
        invocation.span_context.span_id()
    );
}

#[tokio::test]
async fn the_activation_keeps_owls_path_and_phases() {
    exporter();
    let (_fake, _c, gw) = lambda_gateway(Fault::Reply(json!({"ok": true}))).await;
    let (s, h, body) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let owl = annotation(&body, "owl").expect("owl annotation").clone();
    assert_eq!(owl["path"], "lambda");
    let st = server_timing(&h);
    for phase in ["auth", "route", "throttle", "metadata", "lambda"] {
        let ms = owl["phases"][phase]
            .as_f64()
            .unwrap_or_else(|| panic!("{phase}: {owl}"));
        assert!(
            (ms - st[phase]).abs() < 0.0011,
            "{phase}: {ms} vs {}",
            st[phase]
        );
    }
    // The same annotation in the stored record.
    gw.flush().await;
    let id = body["activationId"].as_str().unwrap();
    let stored: Value = client()
        .get(format!("{}/api/v1/namespaces/_/activations/{id}", gw.url))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(annotation(&stored, "owl").unwrap(), &owl);
    // waitTime (receipt to the Lambda call) covers the phases before the call.
    let wait = annotation(&body, "waitTime").unwrap().as_f64().unwrap();
    let before: f64 = ["auth", "route", "throttle", "metadata"]
        .iter()
        .map(|p| owl["phases"][p].as_f64().unwrap())
        .sum();
    assert!(
        wait + 1.0 >= before,
        "waitTime {wait} vs phases before the call {before}"
    );
}

#[tokio::test]
async fn the_proxy_path_has_a_controller_span_and_passes_the_trace_on() {
    exporter();
    let up = upstream::echo().await;
    let gw = TestGateway::start(&policy(&up.url, &upstream::down(), "")).await;
    let (trace, client_span, tp) = client_trace();
    let resp = client()
        .get(format!("{}/api/v1/namespaces/_/packages", gw.url))
        .header("authorization", guest_auth())
        .header("traceparent", &tp)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    let spans = spans_of(trace, &["GET", "controller"]).await;
    let root = one(&spans, "GET");
    assert_eq!(root.parent_span_id, client_span);
    assert_eq!(attr(root, "owl.path").as_deref(), Some("proxy"));
    let upstream_span = one(&spans, "controller");
    assert_eq!(upstream_span.parent_span_id, root.span_context.span_id());
    assert_eq!(upstream_span.span_kind, SpanKind::Client);
    assert_eq!(
        attr(upstream_span, "http.response.status_code").as_deref(),
        Some("200")
    );
    // The controller receives owl's controller span as the parent.
    assert_eq!(
        headers["x-echo-h-traceparent"].to_str().unwrap(),
        format!("00-{trace}-{}-01", upstream_span.span_context.span_id())
    );
    let st = server_timing(&headers);
    assert!(
        st.contains_key("upstream") && st.contains_key("total"),
        "{st:?}"
    );
    assert!(st["upstream"] <= st["total"]);
    assert!((st["upstream"] - duration_ms(upstream_span)).abs() < 2.0);
}

// ---------------------------------------------------------------------------------
// Metrics.

/// One sample of the exposition: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn parse_exposition(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            types.insert(
                it.next().unwrap().to_string(),
                it.next().unwrap().to_string(),
            );
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (k, after) = rest.split_once("=\"").expect("label");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let mut end = after.len();
                    while let Some((i, ch)) = chars.next() {
                        match ch {
                            '\\' => {
                                if let Some((_, e)) = chars.next() {
                                    value.push(match e {
                                        'n' => '\n',
                                        other => other,
                                    });
                                }
                            }
                            '"' => {
                                end = i;
                                break;
                            }
                            other => value.push(other),
                        }
                    }
                    labels.insert(k.trim_start_matches(',').to_string(), value);
                    rest = after[end + 1..].trim_start_matches(',');
                }
                (n.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        samples.push((name, labels, value.parse::<f64>().expect("number")));
    }
    (samples, types)
}

/// The value of the sample `name` whose labels include `labels` (0 when absent; panics
/// when several match).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert!(
        found.len() <= 1,
        "{name} {labels:?} matches {} samples",
        found.len()
    );
    found.first().copied().unwrap_or(0.0)
}

async fn scrape(url: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let r = client().get(format!("{url}/metrics")).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    parse_exposition(&r.text().await.unwrap())
}

async fn clear_of_minute_boundary() {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let left = 60_000 - ms % 60_000;
    if left < 10_000 {
        tokio::time::sleep(Duration::from_millis(left + 200)).await;
    }
}

const COLD_LOG: &str = "START RequestId: 1 Version: $LATEST\nREPORT RequestId: 1\tDuration: 3.10 ms\tBilled Duration: 60 ms\tMemory Size: 256 MB\tMax Memory Used: 40 MB\tInit Duration: 55.20 ms\t\n";

#[tokio::test]
async fn metrics_after_a_scripted_run_have_the_right_values() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = standin(vec![
        StandinAction::new("guest/act", Behaviour::Echo),
        StandinAction::new("guest/other", Behaviour::Echo),
    ])
    .await;
    let gw = TestGateway::start(&lambda_policy(
        &c.url(),
        &fake.url,
        "\n[limits.namespace.guest]\ninvocations_per_minute = 5\n",
    ))
    .await;
    let url = gw.invoke_url("guest/act", "blocking=true");
    let auth = guest_auth();
    clear_of_minute_boundary().await;
    // 1. success, 2. application error, 3. success with a statusCode, 4. a cold start,
    // 5. success, 6. over the rate limit.
    let script = [
        (Fault::Reply(json!({"ok": 1})), 200),
        (Fault::Reply(json!({"error": "boom"})), 502),
        (
            Fault::Reply(json!({"statusCode": 201, "body": "made"})),
            200,
        ),
        (Fault::ReplyWithLog(json!({"ok": 4}), COLD_LOG), 200),
        (Fault::Reply(json!({"ok": 5})), 200),
        (Fault::Reply(json!({"ok": 6})), 429),
    ];
    for (fault, expected) in script {
        fake.set(fault);
        let (s, _, b) = invoke(&url, Some(&auth), None).await;
        assert_eq!(s, expected, "{b}");
    }
    // A proxied request and an unauthenticated one.
    assert_eq!(
        invoke(
            &gw.invoke_url("guest/other", "blocking=true"),
            Some(&auth),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(invoke(&url, None, None).await.0, 401);

    let (m, types) = scrape(&gw.admin).await;
    let action = [
        ("namespace", "guest"),
        ("initiator", "guest"),
        ("action", "act"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = action.to_vec();
        l.push(extra);
        l
    };
    // OpenWhisk's user-events names.
    let mut activations = action.to_vec();
    activations.extend([("kind", "nodejs:20"), ("memory", "256")]);
    assert_eq!(
        value(&m, "openwhisk_action_activations_total", &activations),
        5.0
    );
    assert_eq!(
        value(&m, "openwhisk_action_status", &with(("status", "success"))),
        4.0
    );
    assert_eq!(
        value(
            &m,
            "openwhisk_action_status",
            &with(("status", "application_error"))
        ),
        1.0
    );
    assert_eq!(types["openwhisk_action_status"], "unknown");
    assert_eq!(
        value(
            &m,
            "openwhisk_action_status_code",
            &with(("status_code", "201"))
        ),
        1.0
    );
    assert_eq!(value(&m, "openwhisk_action_coldStarts_total", &action), 1.0);
    assert_eq!(
        value(&m, "openwhisk_action_initTime_seconds_count", &action),
        1.0
    );
    let init = value(&m, "openwhisk_action_initTime_seconds_sum", &action);
    assert!((init - 0.056).abs() < 1e-9, "initTime {init}");
    assert_eq!(
        value(&m, "openwhisk_action_waitTime_seconds_count", &action),
        5.0
    );
    assert_eq!(
        value(&m, "openwhisk_action_duration_seconds_count", &action),
        5.0
    );
    assert_eq!(
        value(
            &m,
            "openwhisk_action_duration_seconds_bucket",
            &with(("le", "+Inf"))
        ),
        5.0
    );
    assert_eq!(value(&m, "openwhisk_action_memory", &action), 256.0);
    assert_eq!(
        value(
            &m,
            "openwhisk_action_limit_timed_total",
            &[("namespace", "guest")]
        ),
        1.0
    );
    assert!(value(&m, "openwhisk_action_response_size_bytes_count", &action) >= 4.0);
    // owl's own.
    let req = |path: &'static str, outcome: &'static str| {
        value(
            &m,
            "owl_requests_total",
            &[("path", path), ("outcome", outcome)],
        )
    };
    assert_eq!(req("lambda", "2xx"), 4.0);
    assert_eq!(req("lambda", "5xx"), 1.0, "the application error's 502");
    assert_eq!(req("lambda", "4xx"), 1.0, "the 429");
    assert_eq!(req("proxy", "2xx"), 1.0);
    assert_eq!(
        req("local", "4xx"),
        1.0,
        "the 401, answered before any route"
    );
    assert_eq!(
        value(
            &m,
            "owl_request_duration_seconds_count",
            &[("path", "lambda"), ("outcome", "2xx")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            "owl_gateway_overhead_seconds_count",
            &[("path", "lambda")]
        ),
        6.0
    );
    assert_eq!(
        value(
            &m,
            "owl_lambda_call_duration_seconds_count",
            &[("route", "guest/act")]
        ),
        5.0
    );
    assert_eq!(
        value(&m, "owl_throttle_rejections_total", &[("reason", "rate")]),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "owl_cache_requests_total",
            &[("cache", "identity"), ("result", "miss")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "owl_cache_requests_total",
            &[("cache", "identity"), ("result", "hit")]
        ),
        5.0,
        "the other five authenticated calls"
    );
    // The gateway's own time is a small part of each Lambda request.
    let overhead = value(
        &m,
        "owl_gateway_overhead_seconds_sum",
        &[("path", "lambda")],
    );
    let total: f64 = ["2xx", "4xx", "5xx"]
        .iter()
        .map(|o| {
            value(
                &m,
                "owl_request_duration_seconds_sum",
                &[("path", "lambda"), ("outcome", o)],
            )
        })
        .sum();
    assert!(
        overhead > 0.0 && overhead < total,
        "overhead {overhead} of {total}"
    );
}

#[tokio::test]
async fn lambda_errors_and_throttles_are_counted_by_route_and_reason() {
    let fake = FakeLambda::start(Fault::Throttle {
        reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
        retry_after: None,
    })
    .await;
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let p = lambda_policy(&c.url(), &fake.url, "").replace(
        "region = \"us-east-1\"",
        "region = \"us-east-1\"\nretries = 1",
    );
    let gw = TestGateway::start(&p).await;
    let (s, h, _) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(s, 200, "fell back to the controller");
    assert!(server_timing(&h).contains_key("upstream"));
    let (m, _) = scrape(&gw.admin).await;
    let route = ("route", "guest/act");
    assert_eq!(
        value(
            &m,
            "owl_lambda_errors_total",
            &[route, ("reason", "throttled")]
        ),
        2.0,
        "a try and a retry"
    );
    assert_eq!(
        value(
            &m,
            "owl_lambda_throttles_total",
            &[
                route,
                (
                    "reason",
                    "ReservedFunctionConcurrentInvocationLimitExceeded"
                )
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            "owl_requests_total",
            &[("path", "fallback"), ("outcome", "2xx")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "openwhisk_action_activations_total",
            &[("action", "act")]
        ),
        0.0,
        "the controller ran it and reports it itself"
    );
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_metrics_owl_exposes() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/owl-dashboard.json"
    ))
    .unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("valid JSON");
    let mut exprs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", Value::String(s)) => out.push(s.clone()),
                        ("query", Value::String(s)) if s.contains("label_values") => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dashboard, &mut exprs);
    assert!(exprs.len() > 20, "the dashboard has queries");
    let metrics = owl::telemetry::Metrics::new();
    let known = metrics.sample_names();
    let mut used = std::collections::BTreeSet::new();
    for e in &exprs {
        let bytes = e.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let rest = &e[i..];
            let starts_word =
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
            if starts_word && (rest.starts_with("owl_") || rest.starts_with("openwhisk_")) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                i += name.len();
                used.insert(name);
            } else {
                i += 1;
            }
        }
    }
    let unknown: Vec<_> = used.iter().filter(|n| !known.contains(n)).collect();
    assert!(
        unknown.is_empty(),
        "dashboard queries unknown metrics: {unknown:?}"
    );
    assert!(used.contains("owl_gateway_overhead_seconds_bucket"));
    assert!(used.contains("openwhisk_action_activations_total"));
}

// ---------------------------------------------------------------------------------
// `owl serve` as a process: OTLP/HTTP export (JSON and protobuf), the flush at
// shutdown, JSON logs, and tracing off by default.

/// A local OTLP/HTTP receiver: keeps every request to `/v1/traces`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(String, bytes::Bytes)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver() -> Receiver {
    let got: Arc<Mutex<Vec<(String, bytes::Bytes)>>> = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: http::HeaderMap, body: bytes::Bytes| {
            let store = store.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                store.lock().unwrap().push((ct.clone(), body));
                if ct.contains("json") {
                    ([("content-type", "application/json")], "{}".to_string())
                } else {
                    ([("content-type", "application/x-protobuf")], String::new())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { url, got, task }
}

/// (trace id, span name, parent span id) of every span in OTLP JSON bodies, and the
/// service names.
fn spans_from_json(bodies: &[bytes::Bytes]) -> (Vec<(String, String, String)>, Vec<String>) {
    let mut spans = Vec::new();
    let mut services = Vec::new();
    for b in bodies {
        let v: Value = serde_json::from_slice(b).expect("OTLP JSON");
        for rs in v["resourceSpans"].as_array().unwrap() {
            for a in rs["resource"]["attributes"].as_array().unwrap() {
                if a["key"] == "service.name" {
                    services.push(a["value"]["stringValue"].as_str().unwrap().to_string());
                }
            }
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for s in ss["spans"].as_array().unwrap() {
                    spans.push((
                        s["traceId"].as_str().unwrap().to_lowercase(),
                        s["name"].as_str().unwrap().to_string(),
                        s["parentSpanId"].as_str().unwrap_or("").to_lowercase(),
                    ));
                }
            }
        }
    }
    (spans, services)
}

fn spans_from_protobuf(bodies: &[bytes::Bytes]) -> Vec<(String, String, String)> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut spans = Vec::new();
    for b in bodies {
        let req = ExportTraceServiceRequest::decode(b.as_ref()).expect("OTLP protobuf");
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push((hex(&s.trace_id), s.name, hex(&s.parent_span_id)));
                }
            }
        }
    }
    spans
}

fn process_policy(dir: &std::path::Path, controller: &str, lambda: &str) -> std::path::PathBuf {
    let file = dir.join("policy.toml");
    std::fs::write(
        &file,
        format!(
            "{}\n[activations]\ndata_dir = \"{}\"\n[server]\nshutdown_delay = \"0s\"\n",
            lambda_policy(controller, lambda, ""),
            dir.join("data").display()
        ),
    )
    .unwrap();
    file
}

async fn export_round_trip(protocol: &str) -> (String, Vec<(String, String, String)>, Vec<String>) {
    let rx = receiver().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = process_policy(dir.path(), &c.url(), &fake.url);
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url.as_str()),
        // Long enough that only the flush at shutdown exports.
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
    ];
    // http/protobuf is the default: only JSON is asked for explicitly.
    if protocol != "http/protobuf" {
        env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", protocol));
    }
    let mut owl = OwlProcess::start_with(&file, &[], &env, None).await;
    let (trace, _, tp) = client_trace();
    let (s, h, _) = traced_invoke(&owl.invoke_url("guest/act", "blocking=true"), &tp).await;
    assert_eq!(s, 200);
    assert!(
        h["traceresponse"]
            .to_str()
            .unwrap()
            .contains(&trace.to_string())
    );
    // The record span ends after the response: let it finish, then stop owl.
    tokio::time::sleep(Duration::from_millis(300)).await;
    owl.signal("TERM");
    let status = owl.exited(Duration::from_secs(20)).await;
    assert!(status.success());
    let got = rx.got.lock().unwrap().clone();
    assert!(!got.is_empty(), "spans were exported at shutdown");
    let want = if protocol == "http/json" {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    assert!(
        got.iter().all(|(ct, _)| ct == want),
        "{:?}",
        got.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    let bodies: Vec<bytes::Bytes> = got.into_iter().map(|(_, b)| b).collect();
    let (spans, services) = if protocol == "http/json" {
        spans_from_json(&bodies)
    } else {
        (spans_from_protobuf(&bodies), vec!["owl".to_string()])
    };
    (trace.to_string(), spans, services)
}

fn check_exported(trace: &str, spans: &[(String, String, String)]) {
    let ours: Vec<_> = spans.iter().filter(|(t, _, _)| t == trace).collect();
    for name in [
        INVOKE_SPAN,
        "auth",
        "metadata",
        "throttle",
        "lambda.invoke",
        "lambda.http",
        "activation.record",
    ] {
        assert!(
            ours.iter().any(|(_, n, _)| n == name),
            "{name} exported: {ours:?}"
        );
    }
}

#[tokio::test]
async fn owl_serve_exports_spans_over_otlp_http_json_and_flushes_them_at_shutdown() {
    let (trace, spans, services) = export_round_trip("http/json").await;
    check_exported(&trace, &spans);
    assert!(services.iter().all(|s| s == "owl"), "{services:?}");
}

#[tokio::test]
async fn owl_serve_exports_spans_over_otlp_http_protobuf_by_default() {
    let (trace, spans, _) = export_round_trip("http/protobuf").await;
    check_exported(&trace, &spans);
}

#[tokio::test]
async fn json_logs_carry_the_request_and_trace_ids() {
    let rx = receiver().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = process_policy(dir.path(), &c.url(), &fake.url);
    let log = dir.path().join("owl.log");
    let mut owl = OwlProcess::start_with(
        &file,
        &["--log-format", "json"],
        &[
            // The per-activation line is a debug line.
            ("OWL_LOG", "owl=debug,info"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url.as_str()),
        ],
        Some(&log),
    )
    .await;
    let (trace, _, tp) = client_trace();
    let resp = client()
        .post(owl.invoke_url("guest/act", "blocking=true"))
        .header("authorization", guest_auth())
        .header("traceparent", &tp)
        .header("x-request-id", "my-request-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    owl.signal("TERM");
    owl.exited(Duration::from_secs(20)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let completed = lines
        .iter()
        .find(|l| l["message"] == "activation completed on Lambda")
        .unwrap_or_else(|| panic!("no completion line in {text}"));
    assert_eq!(completed["span"]["tid"], "my-request-0001");
    assert_eq!(completed["span"]["trace_id"], trace.to_string());
    assert_eq!(completed["level"], "DEBUG");
    assert!(
        !text.contains(&guest_key()),
        "credentials never reach the logs"
    );
}

#[tokio::test]
async fn without_an_otlp_endpoint_tracing_is_off_and_a_clients_traceparent_passes_through() {
    let up = upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let file = process_policy(dir.path(), &up.url, &upstream::down());
    let owl = OwlProcess::start(&file).await;
    let (_, _, tp) = client_trace();
    let resp = client()
        .get(format!("{}/api/v1/namespaces/_/packages", owl.url))
        .header("traceparent", &tp)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert!(!h.contains_key("traceresponse"), "no trace of owl's own");
    assert_eq!(h["x-echo-h-traceparent"].to_str().unwrap(), tp, "unchanged");
    let st = server_timing(h);
    assert!(
        st.contains_key("upstream") && st.contains_key("total"),
        "{st:?}"
    );
}
