//! Identity and metadata without the controller: OpenWhisk's CouchDB databases
//! (pouchdb-server seeded with OpenWhisk's documents) and static files; entitlement
//! decided by owl exactly as OpenWhisk decides it; caches, revocation, stale serving;
//! timing; a battery of malformed credentials.

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::openwhisk_db::OpenWhiskDbs;
use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ROUTES: &str = r#"
[[route]]
action = "*/*"
function = "fn-{namespace}-{action}"

[[route]]
action = "*/*/*"
function = "fn-{namespace}-{package}-{action}"
"#;

/// Seeds the databases with guest (subject `guest@example.com`), alice, a blocked
/// user, and actions/packages covering the entitlement matrix.
async fn seeded() -> OpenWhiskDbs {
    let dbs = OpenWhiskDbs::create(couchdb().await).await;
    dbs.subject("guest@example.com", "guest", GUEST_UUID, GUEST_KEY, false)
        .await;
    dbs.subject("alice", "alice", ALICE_UUID, ALICE_KEY, false)
        .await;
    dbs.subject(
        "mallory",
        "mallory",
        "ma11041e-0000-4000-8000-000000000003",
        &"m".repeat(64),
        true,
    )
    .await;
    dbs.limits("guest", json!({"invocationsPerMinute": 100}))
        .await;
    dbs.action(
        "guest/hello",
        json!([{"key": "greeting", "value": "hi"}]),
        json!([]),
    )
    .await;
    dbs.action("alice/secret", json!([]), json!([])).await;
    dbs.package(
        "alice",
        "pub",
        true,
        None,
        json!([{"key": "p", "value": "pkg"}]),
    )
    .await;
    dbs.package("alice", "priv", false, None, json!([])).await;
    dbs.action("alice/pub/tool", json!([]), json!([])).await;
    dbs.action("alice/priv/tool", json!([]), json!([])).await;
    dbs.package(
        "guest",
        "mine",
        false,
        Some(("alice", "pub")),
        json!([{"key": "b", "value": "binding"}]),
    )
    .await;
    dbs
}

fn couch_policy(dbs: &OpenWhiskDbs, lambda: &str, extra: &str) -> String {
    // The controller URL points nowhere: the Lambda path must not need it.
    policy(
        &upstream::down(),
        lambda,
        &format!(
            "{ROUTES}\n[auth]\nsource = \"couchdb\"\n\n[metadata]\nsource = \"couchdb\"\n{extra}\n\n{}",
            dbs.policy_section()
        ),
    )
}

async fn status_and_error(url: &str, auth: &str) -> (u16, Value) {
    let (s, _, b) = invoke(url, Some(auth), None).await;
    (s, b)
}

#[tokio::test]
async fn couchdb_sources_serve_the_lambda_path_with_no_controller() {
    let dbs = seeded().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let gw = TestGateway::start(&couch_policy(&dbs, &fake.url, "")).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("_/hello", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"name":"x"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["subject"], "guest@example.com",
        "the subject document's id"
    );
    assert_eq!(body["namespace"], "guest");
    assert_eq!(annotation(&body, "kind").unwrap(), "python:3");
    let call = &fake.calls()[0];
    assert_eq!(call.function, "fn-guest-hello");
    assert_eq!(call.body["value"], json!({"greeting": "hi", "name": "x"}));

    // Entitlement, decided by owl from the documents.
    let url = |a: &str| gw.invoke_url(a, "blocking=true");
    let forbidden =
        |what: &str| format!("The supplied authentication is not authorized to access '{what}'.");
    assert_eq!(
        status_and_error(&url("alice/secret"), &guest_auth())
            .await
            .1["error"],
        forbidden("alice/secret")
    );
    assert_eq!(
        status_and_error(&url("alice/ghost"), &guest_auth()).await.1["error"],
        forbidden("alice/ghost")
    );
    assert_eq!(
        status_and_error(&url("alice/pub/tool"), &guest_auth())
            .await
            .0,
        200
    );
    assert_eq!(
        status_and_error(&url("alice/priv/tool"), &guest_auth())
            .await
            .1["error"],
        forbidden("alice/priv")
    );
    assert_eq!(
        status_and_error(&url("alice/nopkg/tool"), &guest_auth())
            .await
            .1["error"],
        forbidden("alice/nopkg")
    );
    let (s, b) = status_and_error(&url("guest/missing"), &guest_auth()).await;
    assert_eq!(
        (s, b["error"].as_str().unwrap()),
        (404, "The requested resource does not exist.")
    );
    let (s, b) = status_and_error(&url("alice/secret"), &alice_auth()).await;
    assert_eq!(s, 200, "{b}");
    // A binding resolves to the bound package; parameters merge package < binding.
    let (s, b) = status_and_error(&url("_/mine/tool"), &guest_auth()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(annotation(&b, "binding").unwrap(), "guest/mine");
    assert_eq!(annotation(&b, "path").unwrap(), "alice/pub/tool");
    let last = fake.calls().last().unwrap().clone();
    assert_eq!(last.function, "fn-alice-pub-tool");
    assert_eq!(last.body["value"], json!({"p": "pkg", "b": "binding"}));

    // Authentication, decided by owl from the subjects database.
    let wrong = basic(&format!("{GUEST_UUID}:{}", "w".repeat(64)));
    let (s, b) = status_and_error(&url("_/hello"), &wrong).await;
    assert_eq!(
        (s, b["error"].as_str().unwrap()),
        (401, "The supplied authentication is invalid")
    );
    let blocked = basic(&format!(
        "ma11041e-0000-4000-8000-000000000003:{}",
        "m".repeat(64)
    ));
    assert_eq!(status_and_error(&url("_/hello"), &blocked).await.0, 401);
}

#[tokio::test]
async fn file_sources_serve_the_lambda_path_with_no_controller() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("identities.toml");
    std::fs::write(
        &ids,
        format!(
            "[[identity]]\nsubject = \"guest-subject\"\nnamespace = \"guest\"\nuuid = \"{GUEST_UUID}\"\nkey = \"{GUEST_KEY}\"\nlimits = {{ invocationsPerMinute = 5 }}\n\n[[identity]]\nsubject = \"alice\"\nnamespace = \"alice\"\nuuid = \"{ALICE_UUID}\"\nkey = \"{ALICE_KEY}\"\n"
        ),
    )
    .unwrap();
    let p = policy(
        &upstream::down(),
        &fake.url,
        &format!(
            r#"{ROUTES}
[auth]
source = "file"
identities_file = "{}"

[metadata]
source = "file"

[[metadata.action]]
action = "guest/hello"
kind = "nodejs:20"
timeout = "3s"
parameters = {{ greeting = "hi" }}
annotations = {{ "provide-api-key" = true }}

[[metadata.package]]
package = "alice/pub"
publish = true
parameters = {{ p = "pkg" }}

[[metadata.action]]
action = "alice/pub/tool"

[[metadata.package]]
package = "alice/priv"

[[metadata.action]]
action = "alice/priv/tool"
"#,
            ids.display()
        ),
    );
    let gw = TestGateway::start(&p).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("_/hello", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], "guest-subject");
    assert_eq!(annotation(&body, "limits").unwrap()["timeout"], 3000);
    let call = &fake.calls()[0];
    assert_eq!(call.body["value"], json!({"greeting": "hi"}));
    assert_eq!(call.body["api_key"], guest_key());
    let (s, _) = status_and_error(
        &gw.invoke_url("alice/pub/tool", "blocking=true"),
        &guest_auth(),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = status_and_error(
        &gw.invoke_url("alice/priv/tool", "blocking=true"),
        &guest_auth(),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str().unwrap()),
        (
            403,
            "The supplied authentication is not authorized to access 'alice/priv'."
        )
    );
    let (s, _) =
        status_and_error(&gw.invoke_url("guest/none", "blocking=true"), &guest_auth()).await;
    assert_eq!(s, 404);
    let (s, _) = status_and_error(
        &gw.invoke_url("_/hello", "blocking=true"),
        &basic(&format!("{GUEST_UUID}:{}", "z".repeat(64))),
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn revocation_is_visible_after_the_ttl() {
    let dbs = seeded().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let gw = TestGateway::start(&couch_policy(
        &dbs,
        &fake.url,
        "ttl = \"1s\"\nstale_if_error = \"0s\"",
    ))
    .await;
    let url = gw.invoke_url("alice/secret", "blocking=true");
    assert_eq!(status_and_error(&url, &alice_auth()).await.0, 200);
    dbs.delete_subject("alice").await;
    assert_eq!(
        status_and_error(&url, &alice_auth()).await.0,
        200,
        "cached within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (s, b) = status_and_error(&url, &alice_auth()).await;
    assert_eq!(
        (s, b["error"].as_str().unwrap()),
        (401, "The supplied authentication is invalid")
    );
}

#[tokio::test]
async fn cached_identities_keep_working_while_the_controller_is_down() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let controller = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let routes = "[[route]]\naction = \"guest/act\"\nfunction = \"f\"\n\n[metadata]\nttl = \"1s\"\nstale_if_error = \"1m\"\n";
    let gw = TestGateway::start(&policy(&controller.url(), &fake.url, routes)).await;
    let url = gw.invoke_url("_/act", "blocking=true");
    assert_eq!(status_and_error(&url, &guest_auth()).await.0, 200);
    drop(controller); // the controller stops
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        status_and_error(&url, &guest_auth()).await.0,
        200,
        "fresh cache"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        status_and_error(&url, &guest_auth()).await.0,
        200,
        "stale, served while the controller is down"
    );
    let metrics = client()
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("owl_cache_requests_total{cache=\"identity\",result=\"stale\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("owl_cache_requests_total{cache=\"action\",result=\"hit\"}"),
        "{metrics}"
    );
    // A caller never seen before cannot be served from the cache.
    let (s, _) = status_and_error(&url, &alice_auth()).await;
    assert_eq!(s, 502);
}

#[tokio::test]
async fn an_unknown_uuid_and_a_wrong_key_take_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("identities.toml");
    std::fs::write(
        &ids,
        format!("[[identity]]\nsubject = \"guest\"\nnamespace = \"guest\"\nuuid = \"{GUEST_UUID}\"\nkey = \"{GUEST_KEY}\"\n"),
    )
    .unwrap();
    let p = policy(
        &upstream::down(),
        &upstream::down(),
        &format!(
            "[[route]]\naction = \"guest/*\"\nfunction = \"f\"\n[auth]\nsource = \"file\"\nidentities_file = \"{}\"\n[metadata]\nsource = \"file\"\n",
            ids.display()
        ),
    );
    let gw = TestGateway::start(&p).await;
    let url = gw.invoke_url("_/x", "blocking=true");
    let c = client();
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    use rand::Rng;
    let mut rng = rand::rng();
    let mut random_key = || -> String {
        (0..64)
            .map(|_| (b'a' + rng.random_range(0..26)) as char)
            .collect()
    };
    for i in 0..600 {
        // Fresh credentials every time, so every request reaches the identity source.
        let (auth, bucket) = if i % 2 == 0 {
            (
                basic(&format!("{}:{}", uuid_like(), random_key())),
                &mut unknown,
            )
        } else {
            (basic(&format!("{GUEST_UUID}:{}", random_key())), &mut wrong)
        };
        let t = Instant::now();
        let r = c
            .post(&url)
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        let elapsed = t.elapsed();
        assert_eq!(r.status(), 401);
        if i >= 100 {
            bucket.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (mu, mw) = (median(&mut unknown), median(&mut wrong));
    let diff = (mu - mw).abs();
    // A leak that skips the lookup for unknown uuids would show as a gap far larger
    // than this bound; equal work leaves only noise.
    assert!(
        diff < 0.15 * mu.max(mw) + 20.0,
        "median unknown uuid {mu:.1} µs, wrong key {mw:.1} µs"
    );
}

#[tokio::test]
async fn a_battery_of_malformed_credentials_only_ever_gets_401() {
    let dbs = seeded().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let gw = TestGateway::start(&couch_policy(&dbs, &fake.url, "")).await;
    let url = gw.invoke_url("_/hello", "blocking=true");
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(4242);
    let alphabet: Vec<char> = "ABCxyz019+/=-_:. \t\"'\\{}[]%€".chars().collect();
    let c = client();
    for i in 0..400 {
        let len = rng.random_range(0..120);
        let noise: String = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let value = match i % 5 {
            0 => noise.clone(),
            1 => format!("Basic {noise}"),
            2 => basic(&noise),
            3 => basic(&format!("{GUEST_UUID}:{noise}")),
            _ => format!("Bearer {noise}"),
        };
        let Ok(header) = reqwest::header::HeaderValue::from_str(&value) else {
            continue;
        };
        let r = c
            .post(&url)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{value:?}");
        let b: Value = r.json().await.unwrap();
        let text = b["error"].as_str().unwrap();
        assert!(
            text == "The supplied authentication is invalid"
                || text
                    == "The resource requires authentication, which was not supplied with the request",
            "{value:?}: {text}"
        );
    }
    assert!(fake.calls().is_empty(), "nothing reached Lambda");
}

#[tokio::test]
async fn the_entitlement_matrix_is_the_same_on_both_paths() {
    // The same world twice: in OpenWhisk's databases (owl decides, Lambda path) and in
    // the stand-in controller (the controller decides, proxy path).
    let dbs = seeded().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let owl_gw = TestGateway::start(&couch_policy(&dbs, &fake.url, "")).await;
    let controller = StandinBuilder::with_guest()
        .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
        .action(StandinAction::new("guest/hello", Behaviour::Echo))
        .action(StandinAction::new("alice/secret", Behaviour::Echo))
        .package("alice", "pub", true, vec![("p".into(), json!("pkg"))])
        .package("alice", "priv", false, vec![])
        .action(StandinAction::new("alice/pub/tool", Behaviour::Echo))
        .action(StandinAction::new("alice/priv/tool", Behaviour::Echo))
        .binding(
            "guest",
            "mine",
            "alice",
            "pub",
            vec![("b".into(), json!("binding"))],
        )
        .spawn()
        .await
        .unwrap();
    let proxy_gw = TestGateway::start(&policy(&controller.url(), &upstream::down(), "")).await;
    for (who, auth) in [("guest", guest_auth()), ("alice", alice_auth())] {
        for action in [
            "guest/hello",
            "guest/missing",
            "alice/secret",
            "alice/ghost",
            "alice/pub/tool",
            "alice/pub/missing",
            "alice/priv/tool",
            "alice/nopkg/tool",
            "guest/mine/tool",
            "guest/nopkg/tool",
            "_/hello",
            "_/mine/tool",
        ] {
            let (a, _, ab) = invoke(
                &owl_gw.invoke_url(action, "blocking=true"),
                Some(&auth),
                None,
            )
            .await;
            let (b, _, bb) = invoke(
                &proxy_gw.invoke_url(action, "blocking=true"),
                Some(&auth),
                None,
            )
            .await;
            assert_eq!(a, b, "{who} → {action}: Lambda path {ab}, controller {bb}");
            if a >= 400 {
                assert_eq!(ab["error"], bb["error"], "{who} → {action}");
            }
        }
    }
}
