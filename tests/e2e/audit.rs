//! Issue 15, the multi-tenant audit: isolation between tenants, bounded work per
//! request and the exactness fixes, each checked end to end through owl.

use crate::common::*;
use owl::demo::ministack::FunctionSpec;

use serde_json::json;

const SHOP_UUID: &str = "5b0b0000-0000-4000-8000-000000000011";
const TEAM_UUID: &str = "7ea70000-0000-4000-8000-000000000012";
const TEAMA_UUID: &str = "7ea7a000-0000-4000-8000-000000000013";

fn key_of(c: char) -> String {
    c.to_string().repeat(64)
}

/// A Python function that answers with the action it was deployed for.
async fn deploy_owner(endpoint: &str, function: &str, owner: &str) {
    let code =
        b"import os\ndef main(event, context):\n    return {\"owner\": os.environ[\"OWNER\"]}\n";
    let spec = FunctionSpec {
        name: function.into(),
        runtime: "python3.11".into(),
        handler: "owner.main".into(),
        files: vec![("owner.py".into(), code.to_vec(), false)],
        timeout_s: 5,
        environment: vec![("OWNER".into(), owner.into())],
    };
    ensure_function(endpoint, &spec).await;
}

fn encoded(path: &str) -> String {
    path.replace(' ', "%20")
        .replace('@', "%40")
        .replace('&', "%26")
}

/// Issue 15 §1: actions whose names used to render to one function (characters
/// replaced by `-`, `-` joining segments, a `*` namespace route across tenants) each
/// reach the function deployed for them, and no other.
#[tokio::test]
async fn distinct_actions_reach_distinct_functions() {
    let lambda = lambda().await;
    let routes = r#"
[[route]]
action = "shop/*/*"
function = "owl-iso-{namespace}-{package}-{action}"

[[route]]
action = "*/*"
function = "owl-iso-{namespace}-{action}"
"#;
    let policy_text = policy("http://127.0.0.1:9", &lambda.endpoint, routes);
    let compiled =
        owl::policy::Policy::parse(&policy_text, "t.toml", std::path::Path::new(".")).unwrap();
    let actions = [
        ("shop", "shop/images/a.b"),
        ("shop", "shop/images/a-b"),
        ("shop", "shop/images/a b"),
        ("shop", "shop/images/a@b"),
        ("shop", "shop/a-b/c"),
        ("shop", "shop/a/b-c"),
        ("team", "team/a-report"),
        ("team-a", "team-a/report"),
    ];
    let mut builder = StandinBuilder::with_guest()
        .identity("shop", "shop", SHOP_UUID, &key_of('s'))
        .identity("team", "team", TEAM_UUID, &key_of('t'))
        .identity("team-a", "team-a", TEAMA_UUID, &key_of('u'));
    for pkg in ["images", "a-b", "a"] {
        builder = builder.package("shop", pkg, false, vec![]);
    }
    let mut functions = std::collections::HashSet::new();
    for (_, action) in actions {
        builder = builder.action(StandinAction::new(action, Behaviour::Echo));
        let path = owl::whisk::ActionPath::parse(action).unwrap();
        let function = compiled
            .routes
            .find(&path)
            .unwrap()
            .function
            .render(&path)
            .unwrap();
        assert!(
            functions.insert(function.clone()),
            "{action} renders to {function} twice"
        );
        deploy_owner(&lambda.endpoint, &function, action).await;
    }
    let controller = builder.spawn().await.unwrap();
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    for (owner, action) in actions {
        let key = match owner {
            "shop" => format!("{SHOP_UUID}:{}", key_of('s')),
            "team" => format!("{TEAM_UUID}:{}", key_of('t')),
            _ => format!("{TEAMA_UUID}:{}", key_of('u')),
        };
        let (status, _, body) = invoke(
            &gw.invoke_url(&encoded(action), "blocking=true&result=true"),
            Some(&basic(&key)),
            None,
        )
        .await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(
            body,
            json!({"owner": action}),
            "{action} ran another action's function"
        );
    }
    assert_eq!(controller.invocations(), 0);
}

/// Issue 15 §2: a route matching a binding's own path (`guest/*/*`) does not run a
/// function of the caller's for the bound action (`alice/pub/x`): the route covering
/// the bound action decides, else the controller runs it.
#[tokio::test]
async fn a_binding_runs_the_bound_actions_function() {
    let lambda = lambda().await;
    deploy_owner(&lambda.endpoint, "owl-iso-guest-pub-x", "guest/pub/x").await;
    deploy_owner(&lambda.endpoint, "owl-iso-alice-pub-x", "alice/pub/x").await;
    let controller = || {
        StandinBuilder::with_guest()
            .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
            .package("alice", "pub", true, vec![])
            .package("guest", "pub", false, vec![])
            .binding("guest", "b", "alice", "pub", vec![])
            .action(StandinAction::new("alice/pub/x", Behaviour::Echo))
            .action(StandinAction::new("guest/pub/x", Behaviour::Echo))
            .spawn()
    };
    // Only the caller's namespace is routed: the bound action is the controller's.
    let only_guest =
        "[[route]]\naction = \"guest/*/*\"\nfunction = \"owl-iso-guest-{package}-{action}\"\n";
    let standin = controller().await.unwrap();
    let gw = TestGateway::start(&policy(&standin.url(), &lambda.endpoint, only_guest)).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/b/x", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        standin.invocations(),
        1,
        "the controller runs alice/pub/x: {body}"
    );
    assert_ne!(body["response"]["result"], json!({"owner": "guest/pub/x"}));
    // guest's own action still runs on its own function
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/pub/x", "blocking=true&result=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"owner": "guest/pub/x"})));
    gw.stop().await;

    // With alice's package routed too, the binding runs alice's function.
    let both = format!(
        "{only_guest}\n[[route]]\naction = \"alice/pub/*\"\nfunction = \"owl-iso-alice-pub-{{action}}\"\n"
    );
    let standin = controller().await.unwrap();
    let gw = TestGateway::start(&policy(&standin.url(), &lambda.endpoint, &both)).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/b/x", "blocking=true&result=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"owner": "alice/pub/x"})));
    assert_eq!(standin.invocations(), 0);
}

/// Issue 15 §5: parameters marked `init: true` are never run arguments, whether they
/// come from the action or from the body, with either payload shape — on Lambda as on
/// the controller (the stand-in partitions them as the invoker does).
#[tokio::test]
async fn init_parameters_are_not_run_arguments() {
    let lambda = lambda().await;
    let routes = r#"
[[route]]
action = "guest/withinit"
function = "owl-test-echo"

[[route]]
action = "guest/withinit-event"
function = "owl-test-echo"
payload = "event"
"#;
    let action = |path: &str| {
        StandinAction::new(path, Behaviour::Echo)
            .init_param("TOKEN", json!("s3cret"))
            .param("x", json!(1))
    };
    let controller = StandinBuilder::with_guest()
        .action(action("guest/withinit"))
        .action(action("guest/withinit-event"))
        .action(action("guest/unmapped"))
        .spawn()
        .await
        .unwrap();
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    let body = Some(r#"{"TOKEN": "from-body", "y": 2}"#);
    let (status, _, r) = invoke(
        &gw.invoke_url("guest/withinit", "blocking=true&result=true"),
        Some(&guest_auth()),
        body,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["event"]["value"], json!({"x": 1, "y": 2}));
    let (status, _, r) = invoke(
        &gw.invoke_url("guest/withinit-event", "blocking=true&result=true"),
        Some(&guest_auth()),
        body,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["event"], json!({"x": 1, "y": 2}));
    let (status, _, r) = invoke(
        &gw.invoke_url("guest/unmapped", "blocking=true&result=true"),
        Some(&guest_auth()),
        body,
    )
    .await;
    assert_eq!((status, r), (200, json!({"x": 1, "y": 2})));
}

/// Issue 15 §3: the operator endpoints are not on the public listener. `/metrics` is
/// denied there (as OpenWhisk's edge denies it), `/readyz` and `/owl/status` are not
/// owl's to answer there (the controller gets them like any other path), `/healthz`
/// stays; the admin listener serves them all.
#[tokio::test]
async fn operator_endpoints_are_on_the_admin_listener_only() {
    let lambda = lambda().await;
    let controller = standin(vec![]).await;
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, "")).await;
    let get = |url: String| async move { client().get(url).send().await.unwrap() };
    for spelled in ["/%6Detrics", "//metrics"] {
        assert_eq!(
            get(format!("{}{spelled}", gw.url)).await.status(),
            403,
            "{spelled}"
        );
    }
    let r = get(format!("{}/metrics", gw.url)).await;
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["code"].is_string(), "{body}");
    assert!(!body.to_string().contains("owl_"), "{body}");
    for path in ["/readyz", "/owl/status"] {
        let r = get(format!("{}{path}", gw.url)).await;
        assert!(
            r.headers().contains_key("x-owl-standin"),
            "{path} is the controller's"
        );
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("checks") && !text.contains("breakers"),
            "{path}: {text}"
        );
    }
    let r = get(format!("{}/healthz", gw.url)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );

    let r = get(format!("{}/metrics", gw.admin)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("owl_"));
    let r = get(format!("{}/readyz", gw.admin)).await;
    assert!(r.json::<serde_json::Value>().await.unwrap()["checks"].is_object());
    let r = get(format!("{}/owl/status", gw.admin)).await;
    assert!(r.json::<serde_json::Value>().await.unwrap()["policy"].is_object());
    // the admin listener answers nothing else: no proxying from it
    let r = get(format!("{}/api/v1/namespaces/guest/actions", gw.admin)).await;
    assert_eq!(r.status(), 404);
}

/// Issue 15 §16: when the controller cannot say what a namespace's limits are, the
/// identity is not taken with the system defaults (a namespace blocked with a limit of
/// 0 would run): the invocation fails and nothing reaches Lambda.
#[tokio::test]
async fn a_failed_limits_lookup_does_not_admit_with_default_limits() {
    let lambda = lambda().await;
    let controller = StandinBuilder::with_guest()
        .limits_unavailable("guest")
        .action(StandinAction::new("guest/hello", Behaviour::Echo))
        .spawn()
        .await
        .unwrap();
    let routes = "[[route]]\naction = \"guest/hello\"\nfunction = \"owl-test-hello\"\n";
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    for _ in 0..2 {
        let (status, _, body) = invoke(
            &gw.invoke_url("guest/hello", "blocking=true"),
            Some(&guest_auth()),
            None,
        )
        .await;
        assert_eq!(status, 503, "{body}");
        assert!(body["code"].is_string(), "{body}");
    }
    assert_eq!(controller.invocations(), 0);
}

/// Issue 15 §21: text logs written to a file (journald, `kubectl logs`, a redirect)
/// carry no ANSI colour codes.
#[tokio::test]
async fn text_logs_to_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        format!(
            "[controller]\nurl = \"http://127.0.0.1:9\"\n[lambda]\nregion = \"us-east-1\"\n[activations]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("owl.log");
    let mut owl = crate::common::owl_process::OwlProcess::start_with(
        &file,
        &["--log-format", "text"],
        &[("OWL_LOG", "info")],
        Some(&log),
    )
    .await;
    owl.signal("TERM");
    owl.exited(std::time::Duration::from_secs(30)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("owl is serving"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
}

/// Issue 15 §9: with owl deciding metadata (here from files), a missing action in the
/// default package gets the 400 for a bad `blocking` before the 404, as the controller
/// orders them (its action fetch follows validation).
#[tokio::test]
async fn owl_decided_metadata_keeps_the_controllers_order_of_checks() {
    let lambda = lambda().await;
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("identities.toml");
    std::fs::write(
        &ids,
        format!(
            "[[identity]]\nsubject = \"guest\"\nnamespace = \"guest\"\nuuid = \"{}\"\nkey = \"{}\"\n",
            owl::standin::GUEST_UUID,
            owl::standin::GUEST_KEY
        ),
    )
    .unwrap();
    let extra = format!(
        "[[route]]\naction = \"guest/*\"\nfunction = \"owl-test-{{action}}\"\n\n[auth]\nsource = \"file\"\nidentities_file = \"{}\"\n\n[metadata]\nsource = \"file\"\n\n[[metadata.action]]\naction = \"guest/hello\"\n",
        ids.display()
    );
    let gw = TestGateway::start(&policy("http://127.0.0.1:9", &lambda.endpoint, &extra)).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/nope", "blocking=maybe"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "The query parameter 'blocking' was malformed:\n'maybe' is not a valid Boolean value"
    );
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/nope", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

/// Issue 15 §6: an activations list costs memory in proportion to `limit` and a small
/// number of controller requests whatever `skip` is (bisection over owl's own records
/// with count requests, then one page), and pages still concatenate to the merged list.
#[tokio::test]
async fn activation_lists_cost_a_bounded_number_of_controller_requests() {
    use owl::whisk::{Activation, ActivationId, ActivationResponse};
    use std::sync::atomic::Ordering;
    let lambda = lambda().await;
    let controller = standin(vec![StandinAction::new("guest/hello", Behaviour::Echo)]).await;
    let routes = "[[route]]\naction = \"guest/hello\"\nfunction = \"owl-test-hello\"\n";
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    let now = owl::context::epoch_ms(std::time::SystemTime::now());
    let seeded: Vec<Activation> = (0..3000)
        .map(|i| Activation {
            duration_ms: None,
            namespace: "guest".into(),
            name: "seeded".into(),
            subject: "guest".into(),
            activation_id: ActivationId::generate(),
            start: now - 20_000 + i * 10,
            end: now - 20_000 + i * 10 + 1,
            cause: None,
            response: ActivationResponse::success(json!({}), Some(2)),
            logs: vec![],
            version: "0.0.1".into(),
            publish: false,
            annotations: vec![],
        })
        .collect();
    controller.add_activations(seeded);
    let mut mine = Vec::new();
    for _ in 0..5 {
        let (status, headers, _) = invoke(
            &gw.invoke_url("guest/hello", "blocking=true"),
            Some(&guest_auth()),
            None,
        )
        .await;
        assert_eq!(status, 200);
        mine.push(
            headers["x-openwhisk-activation-id"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    gw.flush().await;
    let list = |skip: u64| {
        let url = format!(
            "{}/api/v1/namespaces/_/activations?limit=200&skip={skip}",
            gw.url
        );
        async move {
            let r = client()
                .get(url)
                .header("authorization", guest_auth())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    list(0).await; // identity cached
    let requests = || controller.counters().requests.load(Ordering::SeqCst);
    let mut all = Vec::new();
    let mut skip = 0;
    loop {
        let before = requests();
        let page = list(skip).await;
        let used = requests() - before;
        // one page, plus at most ⌈log2(min(skip, 5) + 1)⌉ = 3 counts
        assert!(used <= 4, "skip={skip}: {used} controller requests");
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        all.extend(page);
        skip += 200;
    }
    assert_eq!(all.len(), 3005);
    let starts: Vec<i64> = all.iter().map(|a| a["start"].as_i64().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let ids: std::collections::HashSet<&str> = all
        .iter()
        .map(|a| a["activationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3005, "no record twice");
    assert!(mine.iter().all(|m| ids.contains(m.as_str())));
    for skip in [10_000, 2_000_000] {
        let before = requests();
        assert_eq!(list(skip).await, json!([]));
        assert!(requests() - before <= 4, "skip={skip}");
    }
}

/// Issue 15 §19: a client's own `X-Forwarded-Host` / `-Proto` are replaced (they would
/// choose the host the controller builds URLs from); a trusted proxy's are kept.
#[tokio::test]
async fn forwarded_host_is_only_taken_from_trusted_proxies() {
    let up = crate::common::upstream::echo().await;
    for (trusted, expect_kept) in [
        ("", false),
        ("[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n", true),
    ] {
        let gw =
            TestGateway::start(&policy(&up.url, &crate::common::upstream::down(), trusted)).await;
        let r = client()
            .get(format!("{}/api/v1/namespaces/guest/triggers", gw.url))
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        let h = r.headers();
        let host = h["x-echo-h-x-forwarded-host"].to_str().unwrap();
        let proto = h["x-echo-h-x-forwarded-proto"].to_str().unwrap();
        if expect_kept {
            assert_eq!((host, proto), ("evil.example", "https"));
        } else {
            assert_eq!(
                (host, proto),
                (gw.url.trim_start_matches("http://"), "http")
            );
        }
    }
}

/// Issue 15 §7: connections are bounded — one over the bound gets OpenWhisk's 503 and
/// is closed, however many try, and the server serves again once a slot frees — and a
/// connection that does nothing is closed after `idle_timeout`.
#[tokio::test]
async fn connections_are_bounded_and_idle_ones_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let controller = standin(vec![]).await;
    let lambda = lambda().await;
    let extra = "[server]\nmax_connections = 4\nidle_timeout = \"1s\"\n";
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, extra)).await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    let get = b"GET /healthz HTTP/1.1\r\nhost: owl\r\n\r\n";
    async fn answer(s: &mut tokio::net::TcpStream) -> String {
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    }
    // Four connections hold every slot (each busy with a first request).
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(get).await.unwrap();
        assert!(answer(&mut s).await.starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // Many more are each answered 503 in OpenWhisk's shape and closed.
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let text = answer(&mut s).await;
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("retry-after: 1"), "{text}");
        assert!(text.contains("\"code\""), "{text}");
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the refused connection is closed");
    }
    // Idle connections are closed after idle_timeout, freeing their slots.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    for s in &mut held {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed by the server")
            .unwrap_or(0);
        assert_eq!(n, 0, "idle connection closed");
    }
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(get).await.unwrap();
    assert!(answer(&mut s).await.starts_with("HTTP/1.1 200"));
}

/// Issue 15 §8: a request that ends on the controller (here a sequence, which the
/// controller composes) is throttled by the controller, not counted by owl too: a
/// namespace near its limit is not refused by owl for what OpenWhisk would accept,
/// and owl's own count stays exact for what it serves.
#[tokio::test]
async fn requests_ending_on_the_controller_are_throttled_once() {
    let lambda = lambda().await;
    // Counts are per calendar minute: start well inside one.
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second > 45 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - second)).await;
    }
    let controller = StandinBuilder::with_guest()
        .limits("guest", json!({"invocationsPerMinute": 2}))
        .action(StandinAction::new("guest/seq", Behaviour::Echo).kind("sequence"))
        .action(StandinAction::new("guest/hello", Behaviour::Echo))
        .spawn()
        .await
        .unwrap();
    let routes = "[[route]]\naction = \"guest/*\"\nfunction = \"owl-test-{action}\"\n";
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    let call = |action: &str| {
        let url = gw.invoke_url(action, "blocking=true");
        async move { invoke(&url, Some(&guest_auth()), None).await.0 }
    };
    for _ in 0..4 {
        assert_eq!(
            call("guest/seq").await,
            200,
            "the controller composes the sequence"
        );
    }
    assert_eq!(controller.invocations(), 4);
    assert_eq!(call("guest/hello").await, 200);
    assert_eq!(call("guest/hello").await, 200);
    assert_eq!(call("guest/hello").await, 429, "owl counts what it serves");
}

/// Issue 15 §12: an action whose runtime the controller's manifest (`GET /`) marks
/// deprecated is refused with OpenWhisk's 400 instead of being invoked.
#[tokio::test]
async fn deprecated_runtimes_are_refused() {
    let lambda = lambda().await;
    let controller = StandinBuilder::with_guest()
        .action(StandinAction::new("guest/old", Behaviour::Echo).kind("nodejs:10"))
        .action(StandinAction::new("guest/hello", Behaviour::Echo))
        .spawn()
        .await
        .unwrap();
    let routes = "[[route]]\naction = \"guest/*\"\nfunction = \"owl-test-{action}\"\n";
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    // The manifest is read in the background as the gateway starts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (status, headers, body) = loop {
        let answer = invoke(
            &gw.invoke_url("guest/old", "blocking=true"),
            Some(&guest_auth()),
            None,
        )
        .await;
        if answer.0 == 400 || std::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "The 'nodejs:10' runtime is no longer supported. You may read and delete but not update or invoke this action."
    );
    assert!(!headers.contains_key("x-openwhisk-activation-id"));
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/hello", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Issue 15 §17: with `whisk.shared-packages-execute-only = true` the controller
/// refuses the metadata GET of a shared action it would still run: owl sends the
/// invocation to the controller instead of answering the GET's 403.
#[tokio::test]
async fn execute_only_shared_actions_go_to_the_controller() {
    let lambda = lambda().await;
    let controller = StandinBuilder::with_guest()
        .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
        .execute_only()
        .package("alice", "pub", true, vec![])
        .action(StandinAction::new("alice/pub/tool", Behaviour::Echo))
        .spawn()
        .await
        .unwrap();
    let routes = "[[route]]\naction = \"alice/pub/*\"\nfunction = \"owl-test-{action}\"\n";
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, routes)).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("alice/pub/tool", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"x": 1}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"x": 1}));
    assert!(
        headers.contains_key("x-owl-standin"),
        "the controller ran it"
    );
    assert_eq!(controller.invocations(), 1);
}

/// Issue 15 §13: a deployment that changed OpenWhisk's tunable values (`[openwhisk]`)
/// gets the same limits on the Lambda path: the blocking wait's bound, the payload
/// limit and its 413 text, the list page bound.
#[tokio::test]
async fn deployment_values_are_configurable() {
    let lambda = lambda().await;
    let controller = standin(vec![StandinAction::new("guest/echo", Behaviour::Echo)]).await;
    let extra = "[[route]]\naction = \"guest/echo\"\nfunction = \"owl-test-echo\"\n\n[openwhisk]\nmax_blocking_wait = \"5s\"\npayload_max = 2048\nlist_limit = 50\n";
    let gw = TestGateway::start(&policy(&controller.url(), &lambda.endpoint, extra)).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/echo", "blocking=true&timeout=6000"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 5000."
    );
    let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(3000));
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/echo", "blocking=true"),
        Some(&guest_auth()),
        Some(&big),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["error"],
        format!("Request larger than allowed: {} > 2048 bytes.", big.len())
    );
    let r = client()
        .get(format!(
            "{}/api/v1/namespaces/_/activations?limit=51",
            gw.url
        ))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("is not in the range of 0 to 50"),
        "{body}"
    );
}

/// Issue 15 §20: a fallback after the client already holds owl's activation id leaves
/// one listed activation for the invocation — the controller's — while owl's id stays
/// readable, with the controller's outcome and a `fallback` annotation naming it.
#[tokio::test]
async fn a_late_fallback_is_listed_once() {
    use crate::common::fake_lambda::{FakeLambda, Fault};
    let fake = FakeLambda::start(Fault::Throttle {
        reason: "FunctionInvocationRateLimitExceeded",
        retry_after: None,
    })
    .await;
    let controller = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let routes = "[[route]]\naction = \"guest/act\"\nfunction = \"f\"\nfallback = \"controller\"\n";
    let gw = TestGateway::start(&policy(&controller.url(), &fake.url, routes)).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/act", ""),
        Some(&guest_auth()),
        Some(r#"{"n": 7}"#),
    )
    .await;
    assert_eq!(status, 202);
    let mine = body["activationId"].as_str().unwrap().to_string();
    let get = |path: String| {
        let url = format!("{}/api/v1/namespaces/_/activations{path}", gw.url);
        async move {
            let r = client()
                .get(url)
                .header("authorization", guest_auth())
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let record = loop {
        gw.flush().await;
        let (status, record) = get(format!("/{mine}")).await;
        if status == 200 && record["annotations"].to_string().contains("fallback") {
            break record;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record for {mine}: {record}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(record["response"]["result"], json!({"n": 7}));
    let theirs = annotation(&record, "fallback").unwrap()["activationId"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, list) = get("?limit=200".into()).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activationId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![theirs.as_str()],
        "one listed activation, the controller's"
    );
    let (_, count) = get("?count=true".into()).await;
    assert_eq!(count, json!({"activations": 1}));
}
