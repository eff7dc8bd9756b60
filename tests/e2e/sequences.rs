//! Sequences composed by owl, end to end: owl → MiniStack → the owl runtime running
//! each component, with the stand-in controller as metadata source (it knows the
//! sequences) and as the controller that runs what owl does not compose.
//!
//! Expected behaviour is OpenWhisk's, from
//! `core/controller/src/main/scala/org/apache/openwhisk/core/controller/actions/SequenceActions.scala`
//! (SA:line) and `tests/src/test/scala/system/basic/WskSequenceTests.scala` (WST:line).

use crate::common::*;
use crate::runtime::runtime_function;
use serde_json::{Value, json};
use std::time::Duration;

/// The component on Lambda: what it does is its own parameter `op` (the previous
/// result never carries `op`, so each component keeps its own).
const STEP: &str = r#"
function main(p) {
  const n = Number(p.n || 0);
  const trail = (p.trail || []).concat(p.op);
  switch (p.op) {
    case 'inc': return { n: n + 1, trail };
    case 'double': return { n: n * 2, trail };
    case 'fail': return { error: 'failed at ' + n };
    case 'nap': return new Promise((ok) => setTimeout(() => ok({ n, trail }), 600));
    case 'tid': return { n, trail, tids: (p.tids || []).concat(process.env.__OW_TRANSACTION_ID) };
    default: return p;
  }
}
"#;

struct Seq {
    gw: TestGateway,
    controller: Standin,
}

fn step(path: &str, op: &str) -> StandinAction {
    StandinAction::new(path, Behaviour::Echo)
        .kind("nodejs:20")
        .param("op", json!(op))
}

async fn setup() -> Seq {
    setup_with("").await
}

async fn setup_with(extra: &str) -> Seq {
    let lambda = lambda().await;
    let f = runtime_function(&lambda.endpoint, "owl-seq-step", "action.js", STEP).await;
    let long: Vec<String> = (0..51).map(|_| "/guest/inc".to_string()).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let actions = vec![
        step("guest/inc", "inc"),
        step("guest/double", "double"),
        step("guest/fail", "fail"),
        step("guest/unmapped", "inc"),
        step("guest/nap", "nap"),
        step("guest/tid", "tid"),
        StandinAction::sequence("guest/tids", &["/guest/nap", "/guest/tid", "/guest/tid"]),
        // A direct component in a package of guest's that does not exist, mapped and
        // (the -c twin) left to the controller; and a missing action in one that does.
        StandinAction::sequence("guest/nopkg", &["/guest/inc", "/guest/gone/inc"]),
        StandinAction::sequence("guest/nopkg-c", &["/guest/inc", "/guest/gone/inc"]),
        StandinAction::sequence("guest/noaction", &["/guest/inc", "/guest/lib/nope"]),
        // Stored as an old controller may have left it: the default namespace.
        StandinAction::sequence("guest/defaultns", &["/_/inc", "/_/double"]),
        StandinAction::sequence("guest/seq3", &["/guest/inc", "/guest/double", "/guest/inc"]),
        StandinAction::sequence("guest/outer", &["/guest/inc", "/guest/seq3", "/guest/inc"]),
        StandinAction::sequence(
            "guest/failing",
            &["/guest/inc", "/guest/fail", "/guest/inc"],
        ),
        StandinAction::sequence("guest/broken", &["/guest/inc", "/guest/nope"]),
        StandinAction::sequence("guest/mixed", &["/guest/inc", "/guest/unmapped"]),
        StandinAction::sequence("guest/long", &long),
    ];
    let mut b = StandinBuilder::with_guest()
        .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
        .package("guest", "lib", false, Vec::new());
    for a in actions {
        b = b.action(a);
    }
    let controller = b.spawn().await.expect("stand-in");
    let mut routes = String::new();
    for a in [
        "inc",
        "double",
        "fail",
        "seq3",
        "outer",
        "failing",
        "broken",
        "mixed",
        "long",
        "nap",
        "tid",
        "tids",
        "nopkg",
        "noaction",
        "defaultns",
    ] {
        routes.push_str(&format!(
            "[[route]]\naction = \"guest/{a}\"\nfunction = \"{f}\"\n\n"
        ));
    }
    let gw = TestGateway::start(&policy(
        &controller.url(),
        &lambda.endpoint,
        &format!("{extra}\n{routes}"),
    ))
    .await;
    Seq { gw, controller }
}

impl Seq {
    async fn call(
        &self,
        action: &str,
        query: &str,
        body: Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        invoke(
            &self.gw.invoke_url(action, query),
            Some(&guest_auth()),
            Some(&body.to_string()),
        )
        .await
    }

    async fn record(&self, id: &str) -> Value {
        self.gw.flush().await;
        let r = client()
            .get(format!(
                "{}/api/v1/namespaces/guest/activations/{id}",
                self.gw.url
            ))
            .header("authorization", guest_auth())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "record {id}");
        r.json().await.unwrap()
    }
}

fn ids(record: &Value) -> Vec<String> {
    record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_sequence_of_mapped_actions_is_composed_by_owl() {
    let s = setup().await;
    // The first component gets the body; each next one the previous result.
    let (status, headers, body) = s.call("guest/seq3", "blocking=true", json!({"n": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert!(!headers.contains_key("x-owl-standin"));
    assert_eq!(
        body["response"]["result"],
        json!({"n": 5, "trail": ["inc", "double", "inc"]})
    );
    assert_eq!(
        s.controller.invocations(),
        0,
        "no component reached the controller"
    );
    // The blocking answer carries the component ids in logs (SA:239).
    let logs = ids(&body);
    assert_eq!(logs.len(), 3);
    let id = body["activationId"].as_str().unwrap().to_string();
    assert_eq!(headers["x-openwhisk-activation-id"], id.as_str());
    // The sequence's record (SA:198-248).
    let record = s.record(&id).await;
    assert_eq!(record["name"], "seq3");
    assert!(record.get("cause").is_none());
    assert_eq!(annotation(&record, "topmost"), Some(&json!(true)));
    assert_eq!(annotation(&record, "kind"), Some(&json!("sequence")));
    assert_eq!(annotation(&record, "path"), Some(&json!("guest/seq3")));
    assert!(annotation(&record, "causedBy").is_none());
    assert!(annotation(&record, "waitTime").is_some());
    assert_eq!(ids(&record), logs);
    // Each component's record: cause and causedBy; the sequence's duration is the sum
    // of theirs (WST:598-633, SA:247).
    let mut sum = 0;
    for (c, op) in logs.iter().zip(["inc", "double", "inc"]) {
        let r = s.record(c).await;
        sum += r["duration"].as_i64().unwrap();
        assert_eq!(r["cause"], id.as_str());
        assert_eq!(annotation(&r, "causedBy"), Some(&json!("sequence")));
        assert_eq!(r["name"], op);
        assert_eq!(r["response"]["status"], "success");
    }
    assert_eq!(record["duration"], sum);
    // result=true: the result alone.
    let (status, _, body) = s
        .call("guest/seq3", "blocking=true&result=true", json!({"n": 0}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["n"], 3);
}

#[tokio::test]
async fn the_first_failing_component_ends_the_sequence() {
    let s = setup().await;
    // SA:464-492, WST:354-383: the failing component's response, verbatim; 502.
    let (status, _, body) = s
        .call("guest/failing", "blocking=true", json!({"n": 1}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["response"]["status"], "application error");
    assert_eq!(body["response"]["result"], json!({"error": "failed at 2"}));
    assert_eq!(ids(&body).len(), 2, "the third component never ran");
    // A missing component fails when reached, after the earlier ones ran (SA:305-310).
    let (status, _, body) = s.call("guest/broken", "blocking=true", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["response"]["result"],
        json!({"error": "Sequence component does not exist."})
    );
    assert_eq!(ids(&body).len(), 1);
    assert_eq!(s.controller.invocations(), 0);
}

#[tokio::test]
async fn nested_sequences_are_records_of_their_own() {
    let s = setup().await;
    let (status, _, body) = s
        .call("guest/outer", "blocking=true", json!({"n": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    // 1 → 2 → (3, 6, 7) → 8.
    assert_eq!(body["response"]["result"]["n"], 8);
    let outer = body["activationId"].as_str().unwrap().to_string();
    let logs = ids(&body);
    assert_eq!(logs.len(), 3, "not flattened (WST:110-148)");
    let nested = s.record(&logs[1]).await;
    assert_eq!(nested["name"], "seq3");
    assert_eq!(nested["cause"], outer.as_str());
    assert_eq!(annotation(&nested, "topmost"), Some(&json!(false)));
    assert_eq!(annotation(&nested, "causedBy"), Some(&json!("sequence")));
    let inner = ids(&nested);
    assert_eq!(inner.len(), 3);
    // Durations add up through the tree (SA:247, 527).
    let mut sum = 0;
    for c in &logs {
        sum += s.record(c).await["duration"].as_i64().unwrap();
    }
    assert_eq!(s.record(&outer).await["duration"], sum);
    let r = s.record(&inner[0]).await;
    assert_eq!(
        r["cause"],
        logs[1].as_str(),
        "a component's cause is its own sequence"
    );
    assert_eq!(s.controller.invocations(), 0);
}

#[tokio::test]
async fn too_long_sequences_stop_at_the_limit() {
    let s = setup().await;
    // SA:295, 311-313: 50 atomic actions run, the 51st ends the sequence.
    let (status, _, body) = s.call("guest/long", "blocking=true", json!({"n": 0})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["response"]["result"],
        json!({"error": "Too many actions in the sequence."})
    );
    assert_eq!(ids(&body).len(), 50);
}

#[tokio::test]
async fn mixed_sequences_go_to_the_controller_whole() {
    let s = setup().await;
    let (status, headers, body) = s
        .call("guest/mixed", "blocking=true", json!({"n": 1}))
        .await;
    assert!(headers.contains_key("x-owl-standin"), "proxied whole");
    assert_eq!(status, 200, "{body}");
    assert!(
        s.controller.invocations() >= 2,
        "the controller ran both components"
    );
}

#[tokio::test]
async fn non_blocking_sequences_answer_at_once_and_record_later() {
    let s = setup().await;
    let (status, headers, body) = s.call("guest/seq3", "", json!({"n": 2})).await;
    assert_eq!(status, 202, "{body}");
    let id = body["activationId"].as_str().unwrap().to_string();
    assert_eq!(headers["x-openwhisk-activation-id"], id.as_str());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        s.gw.flush().await;
        let r = client()
            .get(format!(
                "{}/api/v1/namespaces/guest/activations/{id}",
                s.gw.url
            ))
            .header("authorization", guest_auth())
            .send()
            .await
            .unwrap();
        let record: Value = r.json().await.unwrap();
        if record["end"].as_i64().unwrap_or(0) != 0 {
            assert_eq!(record["response"]["result"]["n"], 7);
            assert_eq!(ids(&record).len(), 3);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{record}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_limit_is_the_deployments_and_a_sequence_is_throttled_once() {
    // `[openwhisk] sequence_limit` (limits.actions.sequence.maxLength).
    let s = setup_with(
        "[openwhisk]\nsequence_limit = 2\n\n[limits.namespace.guest]\ninvocations_per_minute = 3\n",
    )
    .await;
    let (status, _, body) = s.call("guest/seq3", "blocking=true", json!({"n": 1})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["response"]["result"],
        json!({"error": "Too many actions in the sequence."})
    );
    assert_eq!(ids(&body).len(), 2);
    // A sequence counts once however many components ran (ThrottleTests.scala:361-397):
    // two more sequences of two components each fit in a limit of 3 per minute.
    for _ in 0..2 {
        let (status, _, body) = s.call("guest/seq3", "blocking=true", json!({})).await;
        assert_eq!(status, 502, "{body}");
    }
    let (status, _, body) = s.call("guest/seq3", "blocking=true", json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body["error"],
        "Too many requests in the last minute (count: 4, allowed: 3)."
    );
}

/// Every activation guest can list.
async fn listed(s: &Seq) -> Vec<Value> {
    s.gw.flush().await;
    let r = client()
        .get(format!(
            "{}/api/v1/namespaces/guest/activations?limit=200",
            s.gw.url
        ))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Vec<Value>>().await.unwrap()
}

/// The controller checks the caller's right to activate each direct component before
/// the sequence starts (Actions.scala:256 `entitleReferencedEntitiesMetaData`, 494-502):
/// for an action in a package of the caller's own namespace it reads the package
/// (ActionCollection.scala:43-49 → PackageCollection.scala:114-120), and a missing one
/// is the request's 404, with nothing run. A missing action in an existing package is
/// found by the run instead (SA:305-310).
#[tokio::test]
async fn a_missing_package_of_a_direct_component_refuses_the_sequence_before_it_runs() {
    let s = setup().await;
    let (status, headers, body) = s
        .call("guest/nopkg", "blocking=true", json!({"n": 1}))
        .await;
    assert!(!headers.contains_key("x-owl-standin"), "owl answered");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "The requested resource does not exist.");
    assert!(body["code"].is_string(), "{body}");
    assert_eq!(
        listed(&s).await.len(),
        0,
        "no component ran, nothing recorded"
    );
    // The controller answers its own twin the same.
    let (status, headers, twin) = s
        .call("guest/nopkg-c", "blocking=true", json!({"n": 1}))
        .await;
    assert!(headers.contains_key("x-owl-standin"));
    assert_eq!(status, 404, "{twin}");
    assert_eq!(twin["error"], body["error"]);
    assert_eq!(s.controller.invocations(), 0);
    // The package exists, the action does not: the first component runs, then the
    // sequence fails where it meets the missing one.
    let (status, _, body) = s
        .call("guest/noaction", "blocking=true", json!({"n": 1}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["response"]["result"],
        json!({"error": "Sequence component does not exist."})
    );
    assert_eq!(ids(&body).len(), 1);
}

/// Each component runs under a child transaction of its own, started when it is
/// invoked (SA:344 `TransactionId.childOf`; TransactionId.scala:262-266): its
/// `__OW_TRANSACTION_ID` is its own, and its `waitTime` is its own wait
/// (ContainerProxy.scala:1051-1054), not the time its predecessors ran.
#[tokio::test]
async fn components_run_under_transactions_of_their_own() {
    let s = setup().await;
    let (status, _, body) = s.call("guest/tids", "blocking=true", json!({"n": 1})).await;
    assert_eq!(status, 200, "{body}");
    let tids = body["response"]["result"]["tids"].as_array().unwrap();
    assert_eq!(tids.len(), 2, "{body}");
    for t in tids {
        let t = t.as_str().unwrap();
        assert_eq!(t.len(), 32, "{t}");
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()), "{t}");
    }
    assert_ne!(tids[0], tids[1], "one transaction per component");
    let logs = ids(&body);
    let nap = s.record(&logs[0]).await;
    let napped = nap["duration"].as_i64().unwrap();
    assert!(napped >= 600, "{nap}");
    for c in &logs[1..] {
        let r = s.record(c).await;
        let wait = annotation(&r, "waitTime").and_then(Value::as_i64).unwrap();
        assert!(
            wait < napped,
            "waitTime {wait} ms includes the previous component's {napped} ms: {r}"
        );
    }
}

/// A component stored with the default namespace `_` is the caller's
/// (SequenceActions.scala:282, 403-408 `resolveDefaultNamespace`): composed by owl, and
/// not a binding.
#[tokio::test]
async fn default_namespace_components_are_the_callers() {
    let s = setup().await;
    let (status, headers, body) = s
        .call("guest/defaultns", "blocking=true", json!({"n": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!headers.contains_key("x-owl-standin"), "composed by owl");
    assert_eq!(body["response"]["result"]["n"], 4);
    for c in ids(&body) {
        let r = s.record(&c).await;
        assert_eq!(r["namespace"], "guest");
        assert!(annotation(&r, "binding").is_none(), "{r}");
    }
    assert_eq!(s.controller.invocations(), 0);
}

/// A non-blocking sequence whose first component Lambda refuses before it runs goes to
/// the controller whole (the route falls back); the id the client holds then reads as
/// the controller's run of it: its response, logs, duration (the sum of its components',
/// SA:247) and its annotations (SA:242-246), plus owl's `fallback` annotation.
#[tokio::test]
async fn a_non_blocking_fallback_records_the_controllers_run_of_the_sequence() {
    use crate::common::fake_lambda::{FakeLambda, Fault};
    let fake = FakeLambda::start(Fault::Throttle {
        reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
        retry_after: None,
    })
    .await;
    let controller = standin(vec![
        StandinAction::new("guest/a", Behaviour::Echo),
        StandinAction::new("guest/b", Behaviour::Sleep(Duration::from_millis(50))),
        StandinAction::sequence("guest/ab", &["/guest/a", "/guest/b"]),
    ])
    .await;
    let mut routes = String::new();
    for a in ["a", "b", "ab"] {
        routes.push_str(&format!(
            "[[route]]\naction = \"guest/{a}\"\nfunction = \"f\"\nfallback = \"controller\"\n\n"
        ));
    }
    let gw = TestGateway::start(&policy(&controller.url(), &fake.url, &routes)).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/ab", ""),
        Some(&guest_auth()),
        Some(r#"{"n": 3}"#),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let mine = body["activationId"].as_str().unwrap().to_string();
    let get = |id: String| {
        let url = format!("{}/api/v1/namespaces/_/activations/{id}", gw.url);
        async move {
            let r = client()
                .get(url)
                .header("authorization", guest_auth())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let record = loop {
        gw.flush().await;
        let (status, record) = get(mine.clone()).await;
        if status == 200 && annotation(&record, "fallback").is_some() {
            break record;
        }
        assert!(std::time::Instant::now() < deadline, "{record}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let theirs_id = annotation(&record, "fallback").unwrap()["activationId"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, theirs) = get(theirs_id).await;
    assert_eq!(record["response"], theirs["response"]);
    assert_eq!(record["response"]["result"]["n"], 3);
    assert_eq!(record["logs"], theirs["logs"]);
    assert_eq!(record["logs"].as_array().unwrap().len(), 2);
    assert_eq!(record["duration"], theirs["duration"], "{record}\n{theirs}");
    for key in ["topmost", "path", "kind", "limits"] {
        assert_eq!(
            annotation(&record, key),
            annotation(&theirs, key),
            "{key}: {record}\n{theirs}"
        );
    }
    assert_eq!(
        controller.invocations(),
        2,
        "the controller ran both components"
    );
}
