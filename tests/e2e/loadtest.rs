//! The benchmark harness is measured, not trusted: it must count every failure and
//! refuse to report a run that had one, charge a server's stall to every request it
//! delayed in open loop, send what it was asked to, and `owl bench` must compare two
//! real paths end to end. (Figures are never asserted: only behaviour.)

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::{Behaviour, StandinAction, TestGateway, guest_key, policy, standin};
use owl::loadtest::generator::{self, Target};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A server answering 200, except as `fail` says for the n-th request (from 1); each
/// request takes the global lock for `hold(n)`, so a stall delays everyone behind it.
async fn server(
    fail: impl Fn(u64) -> bool + Send + Sync + 'static,
    hold: impl Fn(u64) -> Duration + Send + Sync + 'static,
) -> String {
    let count = Arc::new(AtomicU64::new(0));
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let (fail, hold) = (Arc::new(fail), Arc::new(hold));
    let app = axum::Router::new().fallback(move || {
        let (count, lock, fail, hold) = (count.clone(), lock.clone(), fail.clone(), hold.clone());
        async move {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let _g = lock.lock().await;
            let d = hold(n);
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
            if fail(n) {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no")
            } else {
                (axum::http::StatusCode::OK, "{}")
            }
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

#[tokio::test]
async fn failed_requests_are_counted_and_the_run_is_refused() {
    let url = server(|n| n % 5 == 0, |_| Duration::ZERO).await;
    let t = Target::post_json(&url, "{}").unwrap();
    let open = generator::open_loop(&t, 200.0, Duration::from_millis(500), 100)
        .await
        .unwrap();
    assert_eq!(open.sent, 100, "200 req/s for 0.5 s");
    assert_eq!(open.failed, 20);
    assert_eq!(open.ok, 80);
    assert_eq!(open.latencies.len(), 80, "only successes have latencies");
    assert_eq!(open.errors.get("status 500"), Some(&20));
    let err = open.ensure_clean().unwrap_err().to_string();
    assert!(err.contains("20 of 100 requests failed"), "{err}");
    assert!(err.contains("refusing to report"), "{err}");

    let closed = generator::closed_loop(&t, 4, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(closed.failed > 0 && closed.ok > 0);
    assert_eq!(closed.sent, closed.ok + closed.failed);
    assert!(closed.ensure_clean().is_err());
}

#[tokio::test]
async fn connection_errors_and_timeouts_are_failures_too() {
    // Nothing listens on this port.
    let port = owl::demo::ministack::free_port().unwrap();
    let t = Target::post_json(&format!("http://127.0.0.1:{port}/"), "{}").unwrap();
    let run = generator::open_loop(&t, 100.0, Duration::from_millis(100), 100)
        .await
        .unwrap();
    assert_eq!(run.failed, run.sent);
    assert!(run.errors.keys().all(|k| k.starts_with("connection error")));
    assert!(run.ensure_clean().is_err());

    let slow = server(|_| false, |_| Duration::from_millis(400)).await;
    let mut t = Target::post_json(&slow, "{}").unwrap();
    t.timeout = Duration::from_millis(100);
    // Long enough that a loaded machine still sends a request before the run ends.
    let run = generator::closed_loop(&t, 1, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(run.failed >= 1, "{run:?}");
    assert!(run.errors.keys().any(|k| k.starts_with("timeout")));
    assert!(run.ensure_clean().is_err());
}

#[tokio::test]
async fn a_clean_run_reports() {
    let url = server(|_| false, |_| Duration::ZERO).await;
    let t = Target::post_json(&url, "{}").unwrap();
    let mut run = generator::open_loop(&t, 300.0, Duration::from_millis(500), 100)
        .await
        .unwrap();
    assert_eq!(run.sent, 150);
    assert_eq!(run.ok, 150);
    run.ensure_clean().unwrap();
    assert!(run.latencies.percentile(50.0).unwrap() <= run.latencies.max().unwrap());
    assert!(run.throughput() > 0.0);
}

#[tokio::test]
async fn open_loop_charges_a_stall_to_every_request_it_delayed() {
    // Request 10 holds the server for 600 ms; everyone else is instant. At 100 req/s
    // about 60 requests are due during the stall.
    let url = server(
        |_| false,
        |n| {
            if n == 10 {
                Duration::from_millis(600)
            } else {
                Duration::ZERO
            }
        },
    )
    .await;
    let t = Target::post_json(&url, "{}").unwrap();
    let mut open = generator::open_loop(&t, 100.0, Duration::from_secs(2), 1000)
        .await
        .unwrap();
    open.ensure_clean().unwrap();
    let delayed = |s: &mut owl::loadtest::stats::Samples, min: Duration| {
        let n = s.len();
        (1..=1000)
            .filter(|i| s.percentile(*i as f64 / 10.0).unwrap() >= min)
            .count()
            * n
            / 1000
    };
    let slow_open = delayed(&mut open.latencies, Duration::from_millis(100));
    assert!(
        slow_open >= 30,
        "open loop saw only {slow_open} of {} requests delayed ≥ 100 ms",
        open.latencies.len()
    );
    // p90 of the open loop includes the queue behind the stall.
    assert!(open.latencies.percentile(90.0).unwrap() >= Duration::from_millis(100));
}

#[tokio::test]
async fn owl_bench_compares_the_standard_and_the_direct_path() {
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let gw = TestGateway::start(&policy(
        &c.url(),
        &fake.url,
        "[[route]]\naction = \"guest/act\"\nfunction = \"fake-fn\"\n",
    ))
    .await;
    let auth = guest_key();
    let (std_url, gw_url) = (c.url(), gw.url.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_owl"))
            .args(["bench", "--standard", &std_url, "--direct", &gw_url])
            .args(["--action", "guest/act", "--params", r#"{"name":"owl"}"#])
            .args(["--rate", "40", "--duration", "500ms", "--repetitions", "2"])
            .args(["--connections", "2", "--warm-up", "3"])
            .env("OWL_BENCH_AUTH", &auth)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| standard | OpenWhisk API"), "{stdout}");
    assert!(stdout.contains("| direct | owl → Lambda"), "{stdout}");
    // Two repetitions of 20 open-loop requests per path, all read as activations.
    let breakdown = |path: &str| {
        stdout
            .lines()
            .filter(|l| l.starts_with(&format!("| {path} | ")))
            .nth(1)
            .unwrap_or_else(|| panic!("no breakdown row for {path}: {stdout}"))
            .split('|')
            .map(str::trim)
            .map(String::from)
            .collect::<Vec<_>>()
    };
    for path in ["standard", "direct"] {
        let row = breakdown(path);
        let activations: u64 = row[2].parse().unwrap();
        assert!(activations >= 40, "{path}: {row:?}");
        assert_ne!(row[3], "—", "{path} has waitTime annotations: {row:?}");
    }
    assert!(stdout.contains("The direct path answers in"), "{stdout}");
    assert!(
        fake.calls().len() >= 40,
        "the direct path really went to Lambda"
    );
}

#[tokio::test]
async fn owl_bench_refuses_a_path_it_cannot_invoke() {
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let url = c.url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_owl"))
            .args(["bench", "--standard", &url, "--direct", &url])
            .args(["--action", "guest/act", "--duration", "200ms"])
            .env("OWL_BENCH_AUTH", "not-a-real:key")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("10 of 10 warm-up requests to the standard path"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-a-real:key"),
        "the key is never printed"
    );
}
