//! Micro-benchmarks of the Lambda path's per-request work (criterion):
//!
//! - `policy/find_10k_routes`: route lookup in a 10,000-route table (exact routes,
//!   namespace wildcards and `*` namespaces mixed), for a hit on the last exact route,
//!   a wildcard hit and a miss;
//! - `payload/openwhisk_envelope`: invoke body → parameters merged with the action's
//!   defaults → the `payload = "openwhisk"` envelope Lambda receives;
//! - `activation/from_lambda_reply`: Lambda's answer → OpenWhisk activation response
//!   → the activation record with OpenWhisk's annotations;
//! - `activation/to_json`: the record → the JSON the API answers with;
//! - `identity/cached_lookup`: Basic credentials parsed and hashed, then a hit in the
//!   identity cache;
//! - `lambda/build_and_sign_invoke`: the Invoke request for an ARN with a qualifier
//!   and a 1 KB payload, signed with SigV4 (session token included) — what owl does
//!   per invocation instead of the SDK's orchestrator;
//! - `activation/to_store_text`: the record → the text the embedded store writes,
//!   straight from the record; `…_via_value` the same through a `serde_json::Value`;
//! - `metrics/record_activation`: OpenWhisk's user-events metrics of one activation
//!   (`openwhisk_action_*`), its series already known.
//!
//! Run: `cargo bench --bench hot_path`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use owl::auth::Credentials;
use owl::invoke::envelope::{self, ActivationContext};
use owl::lambda::outcome::{LambdaReply, interpret};
use owl::metadata::cache::SwrCache;
use owl::policy::{PayloadMode, Policy};
use owl::telemetry::Metrics;
use owl::whisk::activation::Annotation;
use owl::whisk::{ActionMetadata, ActionPath, Activation, ActivationId};
use serde_json::json;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn table_10k() -> Policy {
    let mut text = String::from(
        "[controller]\nurl = \"http://127.0.0.1:1\"\n[lambda]\nregion = \"us-east-1\"\n",
    );
    for i in 0..10_000 {
        let pattern = match i % 10 {
            // Mostly exact routes, some namespace wildcards and a few `*` namespaces.
            0..=7 => format!("ns{}/pkg{}/action{i}", i % 500, i % 7),
            8 => format!("ns{}/*", i % 500 + 1000),
            _ => format!("*/svc{i}/*"),
        };
        text.push_str(&format!(
            "[[route]]\naction = \"{pattern}\"\nfunction = \"fn-{i}\"\n"
        ));
    }
    Policy::parse(&text, "bench.toml", Path::new(".")).expect("valid policy")
}

fn policy_match(c: &mut Criterion) {
    let policy = table_10k();
    assert_eq!(policy.routes.len(), 10_000);
    let mut g = c.benchmark_group("policy/find_10k_routes");
    for (name, path) in [
        ("exact_hit", "ns497/pkg1/action9997"), // the last exact route (i = 9997)
        ("namespace_wildcard_hit", "ns1498/anything"),
        ("any_namespace_wildcard_hit", "someone/svc9999/x"),
        ("miss", "guest/unmapped"),
    ] {
        let path = ActionPath::parse(path).unwrap();
        let expect_hit = name != "miss";
        assert_eq!(policy.routes.find(&path).is_some(), expect_hit, "{name}");
        g.bench_with_input(BenchmarkId::from_parameter(name), &path, |b, p| {
            b.iter(|| policy.routes.find(black_box(p)).is_some())
        });
    }
    g.finish();
}

fn action() -> ActionMetadata {
    ActionMetadata::from_json(&json!({
        "namespace": "guest",
        "name": "hello",
        "version": "0.0.3",
        "exec": {"kind": "nodejs:20"},
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
        "parameters": [{"key": "greeting", "value": "hello"}, {"key": "place", "value": "world"}],
        "annotations": [{"key": "provide-api-key", "value": false}, {"key": "exec", "value": "nodejs:20"}]
    }))
    .expect("action JSON")
}

fn payload(c: &mut Criterion) {
    let action = action();
    let body = br#"{"name":"owl","count":3,"tags":["a","b","c"],"nested":{"x":1.5,"y":"z"}}"#;
    c.bench_function("payload/openwhisk_envelope", |b| {
        b.iter(|| {
            let params = owl::invoke::request::parse_body(black_box(body)).unwrap();
            let merged = owl::whisk::params::merge(&action, params).unwrap();
            let ctx = ActivationContext {
                namespace: "guest",
                action_name: "/guest/hello".into(),
                action_version: &action.version,
                activation_id: "0123456789abcdef0123456789abcdef",
                transaction_id: "owl-0123456789abcdef",
                deadline_ms: 1_764_000_000_000,
                api_key: None,
                api_host: Some("https://openwhisk.example.com"),
            };
            envelope::build(PayloadMode::OpenWhisk, merged, &ctx)
        })
    });
}

fn record(response: owl::whisk::ActivationResponse, action: &ActionMetadata) -> Activation {
    Activation {
        duration_ms: None,
        namespace: "guest".into(),
        name: action.path.action.clone(),
        subject: "guest".into(),
        activation_id: ActivationId::generate(),
        start: 1_764_000_000_000,
        end: 1_764_000_000_012,
        cause: None,
        response,
        logs: Vec::new(),
        version: action.version.clone(),
        publish: false,
        annotations: vec![
            Annotation {
                key: "limits".into(),
                value: action.limits.json.clone(),
            },
            Annotation {
                key: "path".into(),
                value: action.path.to_path_string().into(),
            },
            Annotation {
                key: "kind".into(),
                value: action.kind.clone().into(),
            },
            Annotation {
                key: "timeout".into(),
                value: false.into(),
            },
            Annotation {
                key: "waitTime".into(),
                value: 1.into(),
            },
            Annotation {
                key: "owl".into(),
                value: json!({"path": "lambda", "phases": {"auth": 0.01, "route": 0.002, "lambda": 11.5}, "total": 12.0}),
            },
        ],
    }
}

fn activation(c: &mut Criterion) {
    let action = action();
    let reply = LambdaReply {
        payload: bytes::Bytes::from_static(
            br#"{"greeting":"hello owl","count":3,"items":[1,2,3],"ok":true}"#,
        ),
        function_error: None,
        log_tail: None,
        executed_version: Some("7".into()),
    };
    let now = time::OffsetDateTime::now_utc();
    c.bench_function("activation/from_lambda_reply", |b| {
        b.iter(|| {
            let run = interpret(black_box(&reply), 60_000, now);
            record(run.response, &action)
        })
    });
    let act = record(interpret(&reply, 60_000, now).response, &action);
    c.bench_function("activation/to_json", |b| {
        b.iter(|| serde_json::to_vec(&black_box(&act).to_api_json(false)).unwrap())
    });
    // What the store writes per record: straight from the record (`api_form`), and the
    // way it was written before issue 17, through a `Value` (for comparison).
    c.bench_function("activation/to_store_text", |b| {
        b.iter(|| serde_json::to_string(&black_box(&act).api_form(true)).unwrap())
    });
    c.bench_function("activation/to_store_text_via_value", |b| {
        b.iter(|| black_box(&act).to_api_json(true).to_string())
    });
    // OpenWhisk's user-events metrics of one activation, its series already known.
    let metrics = Metrics::new();
    metrics.openwhisk.record(&act, "guest");
    c.bench_function("metrics/record_activation", |b| {
        b.iter(|| {
            metrics
                .openwhisk
                .record(black_box(&act), black_box("guest"))
        })
    });
}

fn signing(c: &mut Criterion) {
    use owl::lambda::wire::{self, Endpoint};
    use owl::lambda::{InvokeRequest, SigningCredentials};
    let endpoint = Endpoint::parse("https://lambda.us-east-1.amazonaws.com").unwrap();
    let credentials = SigningCredentials::from_keys(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("FQoGZXIvYXdzEJr//////////wEaDOwl+session+token"),
    );
    let payload = bytes::Bytes::from(format!(
        "{{\"value\":{{\"text\":\"{}\"}}}}",
        "x".repeat(1000)
    ));
    let req = InvokeRequest {
        function: "arn:aws:lambda:us-east-1:123456789012:function:owl-guest--hello".into(),
        qualifier: Some("live".into()),
        payload,
    };
    c.bench_function("lambda/build_and_sign_invoke", |b| {
        b.iter(|| {
            let mut r = wire::request(&endpoint, black_box(&req), true).unwrap();
            wire::sign(
                &mut r,
                &credentials,
                "us-east-1",
                wire::SIGNING_NAME,
                std::time::SystemTime::now(),
            )
            .unwrap();
            r
        })
    });
}

fn identity(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache: SwrCache<String> = SwrCache::new(
        "identity",
        10_000,
        Duration::from_secs(300),
        Duration::from_secs(10),
        Duration::from_secs(3600),
        Arc::new(Metrics::new()),
    );
    let key = format!("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:{}", "k".repeat(64));
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &key)
        )
        .parse()
        .unwrap(),
    );
    // Fill the cache: the benchmark measures hits.
    let creds = Credentials::from_headers(&headers).unwrap();
    rt.block_on(cache.get(*creds.hash(), None, async { Ok(Ok("guest".to_string())) }))
        .unwrap();
    let loads = AtomicU64::new(0);
    c.bench_function("identity/cached_lookup", |b| {
        b.to_async(&rt).iter(|| async {
            let creds = Credentials::from_headers(black_box(&headers)).unwrap();
            let v = cache
                .get(*creds.hash(), None, async {
                    loads.fetch_add(1, Ordering::Relaxed);
                    Ok(Ok("guest".to_string()))
                })
                .await
                .unwrap();
            black_box(v);
        })
    });
    assert_eq!(
        loads.load(Ordering::Relaxed),
        0,
        "every lookup must be a hit"
    );
}

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = quick(); targets = policy_match, payload, activation, identity, signing }
criterion_main!(benches);
