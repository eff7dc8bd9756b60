//! Protection without loss: namespace throttles (local and shared through Redis),
//! circuit breakers and retries, overload, slowloris, hot reload under load, and the
//! shutdown sequence — all by fault injection on loopback.

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::owl_process::OwlProcess;
use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn route(extra: &str) -> String {
    format!("[[route]]\naction = \"guest/act\"\nfunction = \"fake-fn\"\n{extra}\n")
}

async fn controller() -> Standin {
    standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await
}

/// Rate limits count per calendar minute: a test that spends one waits out a minute
/// boundary that is near, so its attempts all fall in one minute.
async fn clear_of_minute_boundary() {
    clear_of_minute_boundary_for(Duration::from_secs(10)).await;
}

/// Waits for the next minute unless `needed` is left in this one.
async fn clear_of_minute_boundary_for(needed: Duration) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let left = 60_000 - ms % 60_000;
    if left < needed.as_millis() as u64 {
        tokio::time::sleep(Duration::from_millis(left + 200)).await;
    }
}

/// Writes `policy` plus its own data directory to `dir/<name>.toml`, for `owl serve`.
fn policy_file(dir: &std::path::Path, name: &str, policy: &str) -> std::path::PathBuf {
    let file = dir.join(format!("{name}.toml"));
    let data = dir.join(format!("{name}-data"));
    std::fs::write(
        &file,
        format!(
            "{policy}\n[activations]\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    file
}

async fn body_text(url: &str, path: &str) -> String {
    client()
        .get(format!("{url}{path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn rate_and_concurrency_throttles_answer_with_openwhisks_texts_and_order() {
    let fake = FakeLambda::start(Fault::Delay(
        Duration::from_millis(400),
        json!({"ok": true}),
    ))
    .await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("")
            + "\n[limits.namespace.guest]\ninvocations_per_minute = 6\nconcurrent_invocations = 2\n"),
    );
    let gw = TestGateway::start(&p).await;
    let url = gw.invoke_url("_/act", "blocking=true");
    clear_of_minute_boundary().await;
    // Three at once: two run, the third is over the concurrency limit.
    let auth = guest_auth();
    let calls: Vec<_> = (0..3).map(|_| invoke(&url, Some(&auth), None)).collect();
    let mut statuses: Vec<(u16, Value)> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|(s, _, b)| (s, b))
        .collect();
    statuses.sort_by_key(|(s, _)| *s);
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200);
    assert_eq!(statuses[2].0, 429);
    assert_eq!(
        statuses[2].1["error"],
        "Too many concurrent requests in flight (count: 2, allowed: 2)."
    );
    // Three more this minute are allowed (6 attempts in all, the rejected one too)...
    for _ in 0..3 {
        assert_eq!(invoke(&url, Some(&guest_auth()), None).await.0, 200);
    }
    // ...then the rate limit, counting every attempt.
    let (s, h, b) = invoke(&url, Some(&guest_auth()), None).await;
    assert_eq!(s, 429);
    assert_eq!(
        b["error"],
        "Too many requests in the last minute (count: 7, allowed: 6)."
    );
    assert_eq!(b["code"], h["x-request-id"].to_str().unwrap());
    assert_eq!(h["access-control-allow-origin"], "*");
    // Throttles come before existence and ownership, as in OpenWhisk.
    let (s, _, b) = invoke(
        &gw.invoke_url("guest/act", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(s, 429, "{b}");
    let metrics = body_text(&gw.admin, "/metrics").await;
    assert!(
        metrics.contains("owl_throttle_rejections_total{reason=\"concurrency\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("owl_throttle_rejections_total{reason=\"rate\"} 2"),
        "{metrics}"
    );
    assert_eq!(fake.calls().len(), 5);
}

fn redis_limits(redis: &RedisServer, extra: &str) -> String {
    format!(
        "\n[limits]\nbackend = \"redis\"\nredis_url = \"{}\"\n{extra}\n[limits.namespace.guest]\ninvocations_per_minute = 10\nconcurrent_invocations = 2\n",
        redis.url()
    )
}

#[tokio::test]
async fn two_gateway_processes_sharing_redis_enforce_one_limit() {
    let redis = RedisServer::start().await;
    let fake = FakeLambda::start(Fault::Delay(
        Duration::from_millis(300),
        json!({"ok": true}),
    ))
    .await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + &redis_limits(&redis, "")),
    );
    let dir = tempfile::tempdir().unwrap();
    let a = OwlProcess::start(&policy_file(dir.path(), "a", &p)).await;
    let b = OwlProcess::start(&policy_file(dir.path(), "b", &p)).await;
    clear_of_minute_boundary().await;
    // Concurrency: one slot on each gateway fills the shared limit of 2.
    let ua = a.invoke_url("_/act", "blocking=true");
    let ub = b.invoke_url("_/act", "blocking=true");
    let auth = guest_auth();
    let (ra, rb, rc) = tokio::join!(
        invoke(&ua, Some(&auth), None),
        invoke(&ub, Some(&auth), None),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            invoke(&ua, Some(&auth), None).await
        }
    );
    assert_eq!((ra.0, rb.0), (200, 200));
    assert_eq!(rc.0, 429);
    assert_eq!(
        rc.2["error"],
        "Too many concurrent requests in flight (count: 2, allowed: 2)."
    );
    // Rate: 3 attempts so far; alternate gateways until the shared minute is spent.
    let mut ok = 0;
    let mut last = Value::Null;
    for i in 0..8 {
        let url = if i % 2 == 0 { &ua } else { &ub };
        let (s, _, body) = invoke(url, Some(&auth), None).await;
        if s == 200 {
            ok += 1;
        } else {
            last = body;
        }
    }
    assert_eq!(ok, 10 - 3, "10 attempts allowed in all: 3 before, 7 now");
    assert_eq!(
        last["error"],
        "Too many requests in the last minute (count: 11, allowed: 10)."
    );
}

#[tokio::test]
async fn redis_dying_during_load_degrades_to_local_limits_and_recovers() {
    let mut redis = RedisServer::start().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + &redis_limits(&redis, "on_redis_error = \"local\"")),
    )
    .replace(
        "invocations_per_minute = 10",
        "invocations_per_minute = 1000",
    );
    let gw = TestGateway::start(&p).await;
    let url = gw.invoke_url("_/act", "blocking=true");
    let mut failures = 0;
    for i in 0..60 {
        if i == 20 {
            redis.kill();
        }
        if i == 40 {
            redis.restart().await;
        }
        if invoke(&url, Some(&guest_auth()), None).await.0 != 200 {
            failures += 1;
        }
        if i == 30 {
            let ready: Value = client()
                .get(format!("{}/readyz", gw.admin))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(ready["checks"]["throttles"]["shared"], false);
            assert_eq!(
                ready["checks"]["throttles"]["ok"], true,
                "degraded to local: still ready"
            );
        }
    }
    assert_eq!(failures, 0, "no invocation failed while Redis was away");
    let metrics = body_text(&gw.admin, "/metrics").await;
    assert!(
        metrics.contains("owl_throttle_redis_up 1"),
        "shared again after the restart"
    );
    assert!(
        !metrics.contains("owl_throttle_redis_errors_total 0"),
        "{metrics}"
    );
}

/// Issue 20, finding 2: a limit of 12 per minute through three gateways holds across
/// a Redis restart. While Redis is away each gateway admits only its share (12 / 3,
/// counting what it admitted through Redis this minute), as OpenWhisk divides a limit
/// among controllers [OW core/controller/src/main/scala/org/apache/openwhisk/core/
/// entitlement/Entitlement.scala:121-133 `calculateIndividualLimit`]; when Redis comes
/// back empty the gateways write their counts of the minute again. Before: 6 + 12 + 6
/// accepted (each gateway counted from zero alone, then Redis started from zero).
#[tokio::test]
async fn a_limit_holds_across_a_redis_restart_with_three_gateways() {
    let mut redis = RedisServer::start().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + &redis_limits(&redis, "on_redis_error = \"local\"\nlease = \"1500ms\"")),
    )
    .replace("invocations_per_minute = 10", "invocations_per_minute = 12")
    .replace("concurrent_invocations = 2", "concurrent_invocations = 30");
    let dir = tempfile::tempdir().unwrap();
    let mut gws = Vec::new();
    for name in ["a", "b", "c"] {
        gws.push(OwlProcess::start(&policy_file(dir.path(), name, &p)).await);
    }
    // Each gateway sees the three registrations (a heartbeat every 500 ms).
    for gw in &gws {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status: Value = client()
                .get(format!("{}/owl/status", gw.admin))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if status["throttles"]["replicas"] == 3 {
                break;
            }
            assert!(Instant::now() < deadline, "{status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    clear_of_minute_boundary_for(Duration::from_secs(25)).await;
    let urls: Vec<String> = gws
        .iter()
        .map(|g| g.invoke_url("guest/act", "blocking=true"))
        .collect();
    let auth = guest_auth();
    let round = |n: usize| {
        let (urls, auth) = (urls.clone(), auth.clone());
        async move {
            let mut answers = Vec::new();
            for i in 0..n {
                let (s, _, b) = invoke(&urls[i % 3], Some(&auth), None).await;
                answers.push((s, b));
            }
            answers
        }
    };
    let accepted = |answers: &[(u16, Value)]| answers.iter().filter(|(s, _)| *s == 200).count();

    let before = round(6).await;
    assert_eq!(accepted(&before), 6);

    redis.kill();
    let during = round(12).await;
    assert_eq!(
        accepted(&during),
        6,
        "each gateway admits its share, 4, less the 2 it admitted before: {during:?}"
    );
    let refused = during.iter().find(|(s, _)| *s == 429).unwrap();
    assert_eq!(
        refused.1["error"],
        "Too many requests in the last minute (count: 5, allowed: 4)."
    );

    redis.restart().await;
    // Each gateway notices within a heartbeat and writes its count again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = round(6).await;
    assert_eq!(
        accepted(&after),
        0,
        "the restarted Redis knows the minute's attempts: {after:?}"
    );
    assert!(
        after[0].1["error"]
            .as_str()
            .unwrap()
            .starts_with("Too many requests in the last minute (count: "),
        "{after:?}"
    );
    assert_eq!(accepted(&before) + accepted(&during) + accepted(&after), 12);
}

/// A slot admitted while Redis is away is written to Redis when it returns: an
/// invocation that started during the outage still counts against the shared
/// concurrency limit afterwards.
#[tokio::test]
async fn slots_taken_while_redis_is_away_count_once_it_is_back() {
    let mut redis = RedisServer::start().await;
    let fake = FakeLambda::start(Fault::Delay(Duration::from_secs(4), json!({"ok": true}))).await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + &redis_limits(&redis, "on_redis_error = \"local\"\nlease = \"1500ms\"")),
    )
    .replace("concurrent_invocations = 2", "concurrent_invocations = 1");
    let dir = tempfile::tempdir().unwrap();
    let a = OwlProcess::start(&policy_file(dir.path(), "a", &p)).await;
    let b = OwlProcess::start(&policy_file(dir.path(), "b", &p)).await;
    redis.kill();
    let ua = a.invoke_url("guest/act", "blocking=true");
    let auth = guest_auth();
    let running = tokio::spawn({
        let auth = auth.clone();
        async move { invoke(&ua, Some(&auth), None).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart().await;
    // Gateway a notices within a heartbeat and writes its lease back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, _, body) = invoke(
        &b.invoke_url("guest/act", "blocking=true"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(
        body["error"],
        "Too many concurrent requests in flight (count: 1, allowed: 1)."
    );
    assert_eq!(running.await.unwrap(), 200);
}

#[tokio::test]
async fn redis_down_with_reject_refuses_and_fails_readiness() {
    let mut redis = RedisServer::start().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + &redis_limits(&redis, "on_redis_error = \"reject\"")),
    );
    let gw = TestGateway::start(&p).await;
    let url = gw.invoke_url("_/act", "blocking=true");
    assert_eq!(invoke(&url, Some(&guest_auth()), None).await.0, 200);
    redis.kill();
    // Readiness notices by itself (it pings Redis), before any invocation fails.
    let r = client()
        .get(format!("{}/readyz", gw.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["checks"]["throttles"]["ok"], false, "{ready}");
    assert_eq!(ready["checks"]["throttles"]["on_error"], "reject");
    assert!(ready["checks"]["throttles"]["error"].is_string(), "{ready}");
    let (s, h, b) = invoke(&url, Some(&guest_auth()), None).await;
    assert_eq!(s, 503, "{b}");
    assert!(h.contains_key("retry-after"));
    assert!(b["code"].is_string());
    assert_eq!(fake.calls().len(), 1, "nothing reaches Lambda unthrottled");
    let metrics = body_text(&gw.admin, "/metrics").await;
    assert!(metrics.contains("owl_throttle_redis_up 0"), "{metrics}");
}

#[tokio::test]
async fn a_crashed_gateways_slots_expire() {
    let redis = RedisServer::start().await;
    let fake = FakeLambda::start(Fault::Delay(Duration::from_secs(60), json!({"ok": true}))).await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + &redis_limits(&redis, "lease = \"2s\"")),
    )
    .replace("concurrent_invocations = 2", "concurrent_invocations = 1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        format!(
            "{p}\n[activations]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut holder = OwlProcess::start(&file).await;
    let auth = guest_auth();
    assert_eq!(
        invoke(&holder.invoke_url("guest/act", ""), Some(&auth), None)
            .await
            .0,
        202,
        "holds the only slot"
    );
    // The holder crashes: its slot is neither released nor renewed.
    holder.signal("KILL");
    holder.exited(Duration::from_secs(5)).await;
    let other = TestGateway::start(&p).await;
    let url = other.invoke_url("_/act", "");
    let (s, _, b) = invoke(&url, Some(&auth), None).await;
    assert_eq!(s, 429, "the slot is still leased: {b}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (s, _, _) = invoke(&url, Some(&auth), None).await;
        if s == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the crashed gateway's slot never expired"
        );
    }
}

#[tokio::test]
async fn a_live_gateways_slots_are_renewed_past_the_lease() {
    let redis = RedisServer::start().await;
    let fake = FakeLambda::start(Fault::Delay(Duration::from_secs(4), json!({"ok": true}))).await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + &redis_limits(&redis, "lease = \"1500ms\"")),
    )
    .replace("concurrent_invocations = 2", "concurrent_invocations = 1");
    let a = TestGateway::start(&p).await;
    let b = TestGateway::start(&p).await;
    let auth = guest_auth();
    assert_eq!(
        invoke(&a.invoke_url("_/act", ""), Some(&auth), None)
            .await
            .0,
        202
    );
    // Well past the lease, the running invocation still holds its slot.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (s, _, body) = invoke(&b.invoke_url("_/act", ""), Some(&auth), None).await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(
        body["error"],
        "Too many concurrent requests in flight (count: 1, allowed: 1)."
    );
}

#[tokio::test]
async fn a_cancelled_request_gives_its_slot_back_when_its_invocation_ends() {
    for backend in ["local", "redis"] {
        let redis = RedisServer::start().await;
        let fake = FakeLambda::start(Fault::Delay(
            Duration::from_millis(600),
            json!({"ok": true}),
        ))
        .await;
        let c = controller().await;
        let limits = if backend == "redis" {
            redis_limits(&redis, "")
        } else {
            "\n[limits.namespace.guest]\ninvocations_per_minute = 1000\nconcurrent_invocations = 2\n".to_string()
        };
        let p = policy(&c.url(), &fake.url, &(route("") + &limits))
            .replace(
                "invocations_per_minute = 10\n",
                "invocations_per_minute = 1000\n",
            )
            .replace("concurrent_invocations = 2", "concurrent_invocations = 1");
        let gw = TestGateway::start(&p).await;
        let url = gw.invoke_url("_/act", "blocking=true&result=true");
        let auth = guest_auth();
        // The client gives up while Lambda runs the invocation.
        let cancelled =
            tokio::time::timeout(Duration::from_millis(150), invoke(&url, Some(&auth), None)).await;
        assert!(cancelled.is_err(), "{backend}: the client went away");
        // The invocation still runs on Lambda: its slot is held until it ends...
        let (s, _, b) = invoke(&url, Some(&auth), None).await;
        assert_eq!(s, 429, "{backend}: {b}");
        // ...and given back then.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let (s, _, b) = invoke(&url, Some(&auth), None).await;
        assert_eq!((s, b), (200, json!({"ok": true})), "{backend}");
        assert_eq!(fake.calls().len(), 2, "{backend}");
    }
}

#[tokio::test]
async fn sigterm_fails_readiness_first_then_drains_and_exits() {
    let fake = FakeLambda::start(Fault::Delay(
        Duration::from_millis(1500),
        json!({"ok": true}),
    ))
    .await;
    let c = controller().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    let p = policy(&c.url(), &fake.url, &route(""));
    std::fs::write(
        &file,
        format!(
            "{p}\n[server]\nshutdown_delay = \"1500ms\"\ndrain_timeout = \"10s\"\n[activations]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut owl = OwlProcess::start(&file).await;
    let auth = guest_auth();
    assert_eq!(
        client()
            .get(format!("{}/readyz", owl.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let running = tokio::spawn({
        let url = owl.invoke_url("guest/act", "blocking=true&result=true");
        let auth = auth.clone();
        async move { invoke(&url, Some(&auth), None).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    owl.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // During shutdown_delay: not ready (load balancers stop sending), still serving.
    let r = client()
        .get(format!("{}/readyz", owl.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["checks"]["draining"]["ok"], false, "{ready}");
    let status: Value = client()
        .get(format!("{}/owl/status", owl.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["draining"], true);
    assert_eq!(
        client()
            .get(format!("{}/healthz", owl.url))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "alive while draining"
    );
    let (s, _, _) = invoke(
        &owl.invoke_url("guest/act", "blocking=false"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(
        s, 202,
        "requests arriving during shutdown_delay are still served"
    );
    // The in-flight invocation completes; then owl exits 0.
    let (s, _, b) = running.await.unwrap();
    assert_eq!((s, b), (200, json!({"ok": true})));
    let status = owl.exited(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}");
    assert!(
        client()
            .get(format!("{}/healthz", owl.url))
            .send()
            .await
            .is_err(),
        "no longer listening"
    );
}

/// One drain deadline: open requests and running invocations share `drain_timeout`
/// from the moment the listener closes (docs/operations.md, "Shutdown"); it used to
/// be applied once to connections and again to invocations.
#[tokio::test]
async fn requests_and_invocations_drain_under_one_deadline() {
    let fake = FakeLambda::start(Fault::Delay(Duration::from_secs(60), json!({"ok": true}))).await;
    let c = controller().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    let p = policy(&c.url(), &fake.url, &route(""));
    std::fs::write(
        &file,
        format!(
            "{p}\n[server]\nshutdown_delay = \"0s\"\ndrain_timeout = \"4s\"\n[activations]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut owl = OwlProcess::start(&file).await;
    let auth = guest_auth();
    // A running invocation nobody waits for, and a blocking request still in flight.
    let (s, _, b) = invoke(
        &owl.invoke_url("guest/act", "blocking=false"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let _waiting = tokio::spawn({
        let url = owl.invoke_url("guest/act", "blocking=true&timeout=60000");
        let auth = auth.clone();
        async move { invoke(&url, Some(&auth), None).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = std::time::Instant::now();
    owl.signal("TERM");
    let status = owl.exited(Duration::from_secs(30)).await;
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took >= Duration::from_secs(4),
        "owl waited the drain deadline for what was running: {took:?}"
    );
    assert!(
        took < Duration::from_secs(7),
        "one deadline of 4 s, not one for requests and another for invocations: {took:?}"
    );
}

#[tokio::test]
async fn owl_serve_reloads_on_file_change_and_on_sighup_and_keeps_the_old_policy_when_invalid() {
    let fake = FakeLambda::start(Fault::Reply(json!({"from": "lambda"}))).await;
    let c = controller().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    let data = format!(
        "\n[activations]\ndata_dir = \"{}\"\n",
        dir.path().join("data").display()
    );
    let without = policy(&c.url(), &fake.url, &data);
    let with = policy(&c.url(), &fake.url, &(route("") + &data));
    std::fs::write(&file, &without).unwrap();
    let owl = OwlProcess::start(&file).await;
    let url = owl.invoke_url("guest/act", "blocking=true&result=true");
    let auth = guest_auth();
    let served_by_lambda = |h: &reqwest::header::HeaderMap| !h.contains_key("x-owl-standin");
    let (s, h, _) = invoke(&url, Some(&auth), None).await;
    assert_eq!(s, 200);
    assert!(!served_by_lambda(&h), "no route yet: the controller serves");
    let status = |owl_url: String| async move {
        client()
            .get(format!("{owl_url}/owl/status"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    // 1. The file changes: the watcher applies it.
    std::fs::write(&file, &with).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(owl.admin.clone()).await["policy"]["routes"] != 1 {
        assert!(Instant::now() < deadline, "the file change was not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, h, b) = invoke(&url, Some(&auth), None).await;
    assert_eq!((s, b), (200, json!({"from": "lambda"})));
    assert!(served_by_lambda(&h));
    // 2. An invalid edit is refused; the current policy stays and the error is shown.
    std::fs::write(&file, format!("{with}\n[[route]]\naction = 42\n")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = status(owl.admin.clone()).await;
        if st["policy"]["reloads"]["failed"] == 1 {
            assert!(
                st["policy"]["reloads"]["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("action"),
                "{st}"
            );
            assert_eq!(st["policy"]["routes"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the invalid edit was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, h, _) = invoke(&url, Some(&auth), None).await;
    assert_eq!(s, 200);
    assert!(served_by_lambda(&h), "still the previous policy");
    // 3. SIGHUP re-reads the file even though it did not change (still invalid).
    owl.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(owl.admin.clone()).await["policy"]["reloads"]["failed"] != 2 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 4. A valid edit again: the route is gone, the controller serves.
    std::fs::write(&file, &without).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(owl.admin.clone()).await["policy"]["routes"] != 0 {
        assert!(Instant::now() < deadline, "the file change was not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, h, _) = invoke(&url, Some(&auth), None).await;
    assert_eq!(s, 200);
    assert!(!served_by_lambda(&h));
}

#[tokio::test]
async fn a_breaker_opens_after_consecutive_throttles_and_closes_after_a_probe() {
    let fake = FakeLambda::start(Fault::Throttle {
        reason: "ConcurrentInvocationLimitExceeded",
        retry_after: None,
    })
    .await;
    let c = controller().await;
    let p = policy(&c.url(), &fake.url, &route("")).replace(
        "region = \"us-east-1\"",
        "region = \"us-east-1\"\nretries = 1\nbreaker_failures = 4\nbreaker_cooldown = \"500ms\"",
    );
    let gw = TestGateway::start(&p).await;
    let url = gw.invoke_url("_/act", "blocking=true&result=true");
    for _ in 0..2 {
        let (s, h, _) = invoke(&url, Some(&guest_auth()), None).await;
        assert_eq!(
            (s, h["x-owl-standin"].to_str().unwrap()),
            (200, "true"),
            "fallback"
        );
    }
    assert_eq!(
        fake.calls().len(),
        4,
        "each invocation: one try and one retry of a throttle"
    );
    // Open: Lambda is not called; the controller answers.
    let (s, _, _) = invoke(&url, Some(&guest_auth()), None).await;
    assert_eq!(s, 200);
    assert_eq!(fake.calls().len(), 4);
    let status: Value = client()
        .get(format!("{}/owl/status", gw.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["breakers"][0]["function"], "fake-fn");
    assert_eq!(status["breakers"][0]["state"], "open");
    assert_eq!(status["breakers"][0]["route"], "guest/act");
    let metrics = body_text(&gw.admin, "/metrics").await;
    assert!(metrics.contains("owl_breakers_open 1"), "{metrics}");
    // After the cooldown a probe goes through; Lambda answers; the breaker closes.
    fake.set(Fault::Reply(json!({"from": "lambda"})));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, h, b) = invoke(&url, Some(&guest_auth()), None).await;
    assert_eq!((s, b), (200, json!({"from": "lambda"})));
    assert!(!h.contains_key("x-owl-standin"));
    let status: Value = client()
        .get(format!("{}/owl/status", gw.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["breakers"][0]["state"], "closed");
}

#[tokio::test]
async fn an_open_breaker_without_fallback_is_503_with_retry_after() {
    let fake = FakeLambda::start(Fault::ServiceError).await;
    let c = controller().await;
    let p = policy(&c.url(), &fake.url, &route("fallback = \"none\"")).replace(
        "region = \"us-east-1\"",
        "region = \"us-east-1\"\nbreaker_failures = 2\nbreaker_cooldown = \"30s\"",
    );
    let gw = TestGateway::start(&p).await;
    let url = gw.invoke_url("_/act", "blocking=true");
    for _ in 0..2 {
        assert_eq!(
            invoke(&url, Some(&guest_auth()), None).await.0,
            500,
            "service errors: whisk errors"
        );
    }
    let (s, h, b) = invoke(&url, Some(&guest_auth()), None).await;
    assert_eq!(s, 503, "{b}");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn overload_is_refused_at_once_with_retry_after() {
    let fake = FakeLambda::start(Fault::Delay(
        Duration::from_millis(500),
        json!({"ok": true}),
    ))
    .await;
    let c = controller().await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + "\n[server]\nmax_in_flight = 2\n"),
    );
    let gw = TestGateway::start(&p).await;
    let url = gw.invoke_url("_/act", "blocking=true");
    let auth = guest_auth();
    let calls: Vec<_> = (0..5).map(|_| invoke(&url, Some(&auth), None)).collect();
    let started = Instant::now();
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(ok, 2);
    assert_eq!(refused.len(), 3);
    assert_eq!(refused[0].1["retry-after"], "1");
    assert!(refused[0].2["code"].is_string());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused at once, not queued"
    );
    // Health answers even when full.
    assert_eq!(
        client()
            .get(format!("{}/healthz", gw.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn slowloris_and_oversized_headers_are_cut_off_while_others_are_served() {
    let c = controller().await;
    let p = policy(
        &c.url(),
        &upstream::down(),
        "[server]\nheader_read_timeout = \"500ms\"\nmax_headers = 20\n",
    );
    let gw = TestGateway::start(&p).await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    // A slow sender: one byte of headers every 100 ms.
    let slow = tokio::spawn({
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let started = Instant::now();
            for b in b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Slow: "
                .iter()
                .cycle()
            {
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 256];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
                {
                    let _ = n;
                    break; // the server answered (408) or closed
                }
                if started.elapsed() > Duration::from_secs(5) {
                    break;
                }
            }
            started.elapsed()
        }
    });
    // Meanwhile others are served.
    for _ in 0..5 {
        let r = client()
            .get(format!("{}/api/v1", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let cut_after = slow.await.unwrap();
    assert!(
        cut_after < Duration::from_secs(3),
        "the slow client was cut off after {cut_after:?}"
    );
    // Too many header fields.
    let mut req = client().get(format!("{}/api/v1", gw.url));
    for i in 0..30 {
        req = req.header(format!("x-h-{i}"), "v");
    }
    match req.send().await {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect(), "{e}"),
    }
    let r = client()
        .get(format!("{}/api/v1", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_thousand_invocations_across_policy_reloads_have_zero_failures() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = controller().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    let v1 = policy(&c.url(), &fake.url, &route("weight = 100"));
    let v2 = policy(&c.url(), &fake.url, &route("weight = 50\ntimeout = \"5s\""));
    std::fs::write(&file, &v1).unwrap();
    let gw = TestGateway::start(&v1).await;
    let url = gw.invoke_url("_/act", "blocking=true");
    let auth = guest_auth();
    let load = async {
        let mut failures = 0;
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (url, auth) = (url.clone(), auth.clone());
                async move {
                    let mut f = 0;
                    for _ in 0..125 {
                        if invoke(&url, Some(&auth), None).await.0 != 200 {
                            f += 1;
                        }
                    }
                    f
                }
            })
            .collect();
        for f in futures_util::future::join_all(workers).await {
            failures += f;
        }
        failures
    };
    let reloads = async {
        for i in 0..10 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            std::fs::write(&file, if i % 2 == 0 { &v2 } else { &v1 }).unwrap();
            gw.gw.reload_from(&file).await.unwrap();
        }
    };
    let (failures, ()) = tokio::join!(load, reloads);
    assert_eq!(failures, 0);
    assert_eq!(gw.gw.reload_status().applied, 11);
    // A broken file keeps the current policy, says why, and is counted.
    std::fs::write(&file, "[controller]\nurl = 3\n").unwrap();
    let err = gw.gw.reload_from(&file).await.unwrap_err();
    assert!(err.contains("policy.toml:2:7"), "{err}");
    assert_eq!(invoke(&url, Some(&auth), None).await.0, 200);
    let status: Value = client()
        .get(format!("{}/owl/status", gw.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["policy"]["reloads"]["failed"], 1);
    let metrics = body_text(&gw.admin, "/metrics").await;
    assert!(
        metrics.contains("owl_policy_reloads_total{result=\"failure\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("owl_policy_reloads_total{result=\"success\"} 10"),
        "{metrics}"
    );
}

/// Sends a request head announcing a body of 100 bytes, then 10 bytes, then stalls;
/// returns what came back (status line and body) and how long it took.
async fn stalled_body(addr: &str, path: &str, auth: &str) -> (String, Duration) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\": \"123"
    );
    let started = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

/// `[server]` settings are restart-only (docs/operations.md, "Reload"): a reload that
/// changes `body_read_timeout` or `max_in_flight` leaves the values the gateway
/// started with in force, and `/owl/status` keeps counting against the bound it has.
#[tokio::test]
async fn server_settings_keep_their_start_up_values_across_a_reload() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let with = |server: &str| policy(&c.url(), &fake.url, &(route("") + server));
    let gw = TestGateway::start(&with(
        "\n[server]\nbody_read_timeout = \"500ms\"\nmax_in_flight = 50\n",
    ))
    .await;
    let reloaded = owl::policy::Policy::parse(
        &with("\n[server]\nbody_read_timeout = \"60s\"\nmax_in_flight = 5000\n"),
        "reloaded.toml",
        std::path::Path::new("."),
    )
    .unwrap();
    gw.gw.apply(reloaded).await.unwrap();
    assert_eq!(
        gw.gw.snapshot().policy.server.body_read_timeout,
        Duration::from_secs(60),
        "the reload was applied"
    );
    let addr = gw.url.trim_start_matches("http://").to_string();
    let (answer, took) = stalled_body(
        &addr,
        "/api/v1/namespaces/_/actions/act?blocking=true",
        &guest_auth(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        took < Duration::from_secs(3),
        "the start-up 500 ms still apply: {took:?}"
    );
    let status: Value = client()
        .get(format!("{}/owl/status", gw.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["requests_in_flight"], 0, "{status}");
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_off_on_both_paths() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = standin(vec![
        StandinAction::new("guest/act", Behaviour::Echo),
        StandinAction::new("guest/other", Behaviour::Echo),
    ])
    .await;
    let p = policy(
        &c.url(),
        &fake.url,
        &(route("") + "\n[server]\nbody_read_timeout = \"500ms\"\n"),
    );
    let gw = TestGateway::start(&p).await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    // Lambda path: 408 in OpenWhisk's error shape; Lambda is never called.
    let (answer, took) = stalled_body(
        &addr,
        "/api/v1/namespaces/_/actions/act?blocking=true",
        &guest_auth(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"error\":\"The request body was not received in time.\""),
        "{answer}"
    );
    assert!(answer.contains("\"code\":"), "{answer}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(fake.calls().is_empty());
    // Proxy path: the stalled upload is abandoned (and answered the same way) instead of
    // holding a connection to the controller open.
    let (answer, took) = stalled_body(
        &addr,
        "/api/v1/namespaces/_/actions/other?blocking=true",
        &guest_auth(),
    )
    .await;
    assert!(
        took < Duration::from_secs(3),
        "the stalled proxied upload was held {took:?}: {answer}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"error\":\"The request body was not received in time.\""),
        "{answer}"
    );
    // And the gateway still serves.
    let (s, _, b) = invoke(
        &gw.invoke_url("_/act", "blocking=true&result=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!((s, b), (200, json!({"ok": true})));
}
