//! Activation records: written for every Lambda-served invocation, readable through
//! the activations API exactly like the controller's, merged with the controller's
//! list, never lost — across crashes, shutdowns and store failures.

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::*;
use owl::activation::store::{
    ActivationReader, ActivationStore, BoxFuture, ListQuery, Record, StoreError,
};
use owl::whisk::{Activation, ActivationId};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUTES: &str = r#"
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
"#;

async fn setup() -> (TestGateway, Standin) {
    let lambda = lambda().await;
    let c = StandinBuilder::with_guest()
        .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
        .action(StandinAction::new("guest/hello", Behaviour::Echo))
        .action(StandinAction::new("guest/apperr", Behaviour::Echo))
        .action(StandinAction::new("guest/boom", Behaviour::Echo))
        .action(StandinAction::new("guest/slow", Behaviour::Echo).timeout_ms(2000))
        .action(StandinAction::new("guest/greet", Behaviour::Greet))
        .action(StandinAction::new("alice/greet", Behaviour::Greet))
        .spawn()
        .await
        .unwrap();
    let gw = TestGateway::start(&policy(&c.url(), &lambda.endpoint, ROUTES)).await;
    (gw, c)
}

async fn get(url: &str, auth: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = client()
        .get(url)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn activations_url(gw: &TestGateway, rest: &str) -> String {
    format!("{}/api/v1/namespaces/_/activations{rest}", gw.url)
}

/// Invokes `action` blocking and returns the activation id.
async fn run(gw: &TestGateway, action: &str, body: Option<&str>) -> String {
    let (_, headers, _) = invoke(
        &gw.invoke_url(action, "blocking=true"),
        Some(&guest_auth()),
        body,
    )
    .await;
    headers["x-openwhisk-activation-id"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_outcome_leaves_a_record_in_openwhisks_shape() {
    let (gw, _c) = setup().await;
    let ok = run(&gw, "guest/hello", Some(r#"{"name":"rec"}"#)).await;
    let app = run(&gw, "guest/apperr", None).await;
    let dev = run(&gw, "guest/boom", None).await;
    let timeout = run(&gw, "guest/slow", Some(r#"{"seconds":5}"#)).await;
    gw.flush().await;

    let (status, headers, rec) = get(&activations_url(&gw, &format!("/{ok}")), &guest_auth()).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(rec["activationId"], ok.as_str());
    assert_eq!(rec["namespace"], "guest");
    assert_eq!(rec["subject"], "guest");
    assert_eq!(rec["name"], "hello");
    assert_eq!(
        rec["response"],
        json!({"result": {"greeting": "Hello, rec!"}, "size": rec["response"]["size"], "status": "success", "success": true})
    );
    assert!(rec.get("statusCode").is_none());
    assert_eq!(annotation(&rec, "path").unwrap(), "guest/hello");
    assert_eq!(annotation(&rec, "kind").unwrap(), "nodejs:20");
    assert!(annotation(&rec, "waitTime").unwrap().is_u64());
    assert_eq!(annotation(&rec, "limits").unwrap()["timeout"], 60000);
    let logs: Vec<&str> = rec["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let line = logs
        .iter()
        .find(|l| l.ends_with("hello log line"))
        .unwrap_or_else(|| panic!("{logs:?}"));
    // `<timestamp padded to 30> stdout: text`
    assert_eq!(&line[30..], " stdout: hello log line", "{line}");
    assert!(line[..30].trim_end().ends_with('Z'));

    let (_, _, l) = get(&activations_url(&gw, &format!("/{ok}/logs")), &guest_auth()).await;
    assert_eq!(l, json!({"logs": rec["logs"]}));
    let (_, _, r) = get(
        &activations_url(&gw, &format!("/{ok}/result")),
        &guest_auth(),
    )
    .await;
    assert_eq!(r, rec["response"]);

    for (id, status, result) in [
        (
            &app,
            "application error",
            json!({"error": "this went wrong"}),
        ),
        (&dev, "action developer error", json!({"error": "it broke"})),
        (
            &timeout,
            "action developer error",
            json!({"error": "The action exceeded its time limits of 2000 milliseconds."}),
        ),
    ] {
        let (code, _, rec) = get(&activations_url(&gw, &format!("/{id}")), &guest_auth()).await;
        assert_eq!(code, 200, "{rec}");
        assert_eq!(rec["response"]["status"], status);
        assert_eq!(rec["response"]["success"], false);
        assert_eq!(rec["response"]["result"], result);
    }
    let (_, _, t) = get(&activations_url(&gw, &format!("/{timeout}")), &guest_auth()).await;
    assert_eq!(annotation(&t, "timeout").unwrap(), true);
    let metrics = client()
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("owl_activation_records_written_total{store=\"embedded\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn non_blocking_records_appear_when_the_activation_completes() {
    let (gw, _c) = setup().await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/slow", ""),
        Some(&guest_auth()),
        Some(r#"{"seconds":1}"#),
    )
    .await;
    assert_eq!(status, 202);
    let id = body["activationId"].as_str().unwrap().to_string();
    // Not yet: OpenWhisk has no record before completion either.
    let (status, _, _) = get(&activations_url(&gw, &format!("/{id}")), &guest_auth()).await;
    assert_eq!(status, 404);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, rec) = get(&activations_url(&gw, &format!("/{id}")), &guest_auth()).await;
        if status == 200 {
            assert_eq!(rec["response"]["result"], json!({"slept": true}));
            break;
        }
        assert!(Instant::now() < deadline, "no record for {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn lists_merge_both_sources_newest_first_and_page_correctly() {
    let (gw, c) = setup().await;
    let mut mine = Vec::new();
    for i in 0..6 {
        mine.push(run(&gw, "guest/hello", Some(&format!(r#"{{"name":"{i}"}}"#))).await);
        tokio::time::sleep(Duration::from_millis(3)).await;
        run(&gw, "guest/greet", None).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    gw.flush().await;
    assert_eq!(c.activations().len(), 6, "six ran on the controller");
    let (status, _, all) = get(&activations_url(&gw, "?limit=200"), &guest_auth()).await;
    assert_eq!(status, 200);
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 12);
    let starts: Vec<i64> = all.iter().map(|a| a["start"].as_i64().unwrap()).collect();
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {starts:?}"
    );
    // summaries: statusCode present, no response
    assert_eq!(all[0]["statusCode"], 0);
    assert!(all[0].get("response").is_none());
    let ids: Vec<String> = all
        .iter()
        .map(|a| a["activationId"].as_str().unwrap().to_string())
        .collect();
    for id in &mine {
        assert!(ids.contains(id), "owl's {id} is listed");
    }
    // Pages of 5 concatenate to the whole list.
    let mut paged = Vec::new();
    for skip in [0, 5, 10] {
        let (_, _, page) = get(
            &activations_url(&gw, &format!("?limit=5&skip={skip}")),
            &guest_auth(),
        )
        .await;
        paged.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|a| a["activationId"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(paged, ids);
    let (_, _, count) = get(&activations_url(&gw, "?count=true"), &guest_auth()).await;
    assert_eq!(count, json!({"activations": 12}));
    let (_, _, count) = get(&activations_url(&gw, "?count=true&skip=5"), &guest_auth()).await;
    assert_eq!(count, json!({"activations": 7}));
    let (_, _, named) = get(&activations_url(&gw, "?name=hello&limit=0"), &guest_auth()).await;
    let named: Vec<&str> = named
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activationId"].as_str().unwrap())
        .collect();
    assert_eq!(named.len(), 6);
    assert!(named.iter().all(|id| mine.iter().any(|m| m == id)));
    let (_, _, docs) = get(&activations_url(&gw, "?docs=true&limit=3"), &guest_auth()).await;
    assert!(
        docs.as_array()
            .unwrap()
            .iter()
            .all(|a| a["response"]["status"].is_string())
    );
    let mid = starts[6];
    let (_, _, recent) = get(
        &activations_url(&gw, &format!("?since={mid}&limit=200")),
        &guest_auth(),
    )
    .await;
    assert!(
        recent
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["start"].as_i64().unwrap() >= mid)
    );
    let (_, _, older) = get(
        &activations_url(&gw, &format!("?upto={mid}&limit=200")),
        &guest_auth(),
    )
    .await;
    assert!(
        older
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["start"].as_i64().unwrap() <= mid)
    );
    assert_eq!(
        recent.as_array().unwrap().len() + older.as_array().unwrap().len(),
        12 + all
            .iter()
            .filter(|a| a["start"].as_i64() == Some(mid))
            .count()
    );
}

#[tokio::test]
async fn list_validation_and_foreign_reads_are_answered_like_the_controller() {
    let (gw, _c) = setup().await;
    for (q, text) in [
        (
            "?limit=201",
            "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for activations.",
        ),
        (
            "?skip=-1",
            "The query parameter 'skip' was malformed:\nThe value '-1' is not greater than or equal to 0 for activations.",
        ),
        (
            "?since=x",
            "The query parameter 'since' was malformed:\nParameter is not a valid value for epoch seconds: x",
        ),
        (
            "?name=a/b/c",
            "The query parameter 'name' was malformed:\nParameter may be a 'simple' name or 'package-name/simple' name: a/b/c",
        ),
        (
            "?count=true&docs=true",
            "The parameter 'docs' is not permitted with 'count'.",
        ),
    ] {
        let (status, headers, body) = get(&activations_url(&gw, q), &guest_auth()).await;
        assert_eq!(status, 400, "{q}");
        assert_eq!(body["error"], text, "{q}");
        assert_eq!(body["code"], headers["x-request-id"].to_str().unwrap());
    }
    // Alice cannot read guest's activations: the controller's 403.
    let id = run(&gw, "guest/hello", None).await;
    gw.flush().await;
    let (status, headers, _) = get(
        &format!("{}/api/v1/namespaces/guest/activations/{id}", gw.url),
        &alice_auth(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-owl-standin"], "true");
    // A malformed id: the controller's 400.
    let (status, _, body) = get(&activations_url(&gw, "/not-an-id"), &guest_auth()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Activation id length is 9 but must be 32.");
    // No credentials: the controller's 401.
    let r = client()
        .get(activations_url(&gw, &format!("/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// A store that takes its time, for backpressure.
struct SlowStore {
    inner: owl::activation::sqlite::EmbeddedStore,
    delay: Duration,
}

impl ActivationStore for SlowStore {
    fn kind(&self) -> &'static str {
        "slow"
    }
    fn write(&self, batch: Arc<Vec<Record>>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.write(batch).await
        })
    }
    fn contains<'a>(
        &'a self,
        ns: &'a str,
        id: &'a ActivationId,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.contains(ns, id)
    }
    fn prune(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.prune()
    }
    fn reader(&self) -> Option<&dyn ActivationReader> {
        self.inner.reader()
    }
}

#[tokio::test]
async fn a_slow_store_applies_backpressure_and_loses_nothing() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let records = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(
        owl::activation::sqlite::SqliteStore::open(
            records.path(),
            Duration::from_secs(3600),
            1000,
            true,
        )
        .unwrap(),
    );
    let store = Arc::new(SlowStore {
        inner: owl::activation::sqlite::EmbeddedStore(sqlite.clone()),
        delay: Duration::from_millis(100),
    });
    let data = tempfile::tempdir().unwrap();
    let p = policy(
        &c.url(),
        &fake.url,
        "[[route]]\naction = \"guest/act\"\nfunction = \"f\"\n",
    ) + &format!(
        "\n[activations]\ndata_dir = \"{}\"\nqueue = 2\nbatch = 1\n",
        data.path().display()
    );
    let gw = TestGateway::start_with_store(&p, store).await;
    let url = gw.invoke_url("guest/act", "blocking=true");
    let calls = (0..12).map(|_| {
        let url = url.clone();
        async move { invoke(&url, Some(&guest_auth()), None).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let ids: Vec<String> = results
        .iter()
        .map(|(status, headers, _)| {
            assert_eq!(*status, 200);
            headers["x-openwhisk-activation-id"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    gw.flush().await;
    let metrics = client()
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("owl_activation_records_written_total{store=\"slow\"} 12"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("owl_activation_records_dropped_total{"),
        "{metrics}"
    );
    for id in ids {
        let id: ActivationId = id.parse().unwrap();
        assert!(sqlite.has_record(&id).unwrap(), "{id} written");
    }
}

#[tokio::test]
async fn retention_by_age_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        owl::activation::sqlite::SqliteStore::open(dir.path(), Duration::from_secs(3600), 5, true)
            .unwrap();
    let now = owl::context::epoch_ms(std::time::SystemTime::now());
    let mk = |start: i64| Activation {
        duration_ms: None,
        namespace: "guest".into(),
        name: "a".into(),
        subject: "guest".into(),
        activation_id: ActivationId::generate(),
        start,
        end: start + 1,
        cause: None,
        response: owl::whisk::ActivationResponse::success(json!({}), None),
        logs: vec![],
        version: "0.0.1".into(),
        publish: false,
        annotations: vec![],
    };
    let old: Vec<Activation> = (0..3).map(|i| mk(now - 2 * 3_600_000 - i)).collect();
    let new: Vec<Activation> = (0..8).map(|i| mk(now - i)).collect();
    let old: Vec<Record> = old.into_iter().map(Record::new).collect();
    let new: Vec<Record> = new.into_iter().map(Record::new).collect();
    store.apply(&[], &old).unwrap();
    store.apply(&[], &new).unwrap();
    let embedded = owl::activation::sqlite::EmbeddedStore(Arc::new(store));
    let deleted = embedded.prune().await.unwrap();
    assert_eq!(deleted, 6, "3 by age, 3 by count");
    let q = ListQuery {
        skip: 0,
        limit: 100,
        name: None,
        since: None,
        upto: None,
        docs: false,
        count: false,
    };
    let left = embedded.reader().unwrap().list("guest", &q).await.unwrap();
    let left: Vec<i64> = left.iter().map(|a| a.start).collect();
    assert_eq!(
        left,
        (0..5).map(|i| now - i).collect::<Vec<_>>(),
        "the newest five remain"
    );
}
