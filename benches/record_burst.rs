//! Does a burst of activation-record writes disturb the invoke path?
//!
//! Runs the gateway in-process in front of the stand-in controller and a minimal
//! in-process Lambda Invoke endpoint that answers at once, measures the latency of
//! sequential blocking invocations (Lambda path, records on), then measures again
//! while another task pushes a burst of records through the recorder as fast as it
//! can. Prints p50 / p99 for both. Run: `cargo bench --bench record_burst`.

use owl::activation::store::Record;
use owl::gateway::BuildOptions;
use owl::policy::Policy;
use owl::standin::{Behaviour, GUEST_KEY, GUEST_UUID, StandinAction, StandinBuilder};
use owl::whisk::{Activation, ActivationId, ActivationResponse};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const INVOCATIONS: usize = 3_000;
const BURST: u64 = 60_000;

async fn fake_lambda() -> String {
    let app = axum::Router::new().route(
        "/2015-03-31/functions/{name}/invocations",
        axum::routing::post(|| async {
            ([("content-type", "application/json")], r#"{"ok":true}"#)
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(client: &reqwest::Client, url: &str, auth: &str) -> (Duration, Duration) {
    let mut lat = Vec::with_capacity(INVOCATIONS);
    for _ in 0..INVOCATIONS {
        let t = Instant::now();
        let r = client
            .post(url)
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    (percentile(&lat, 0.5), percentile(&lat, 0.99))
}

fn record(i: u64) -> Activation {
    Activation {
        duration_ms: None,
        namespace: "burst".into(),
        name: "a".into(),
        subject: "burst".into(),
        activation_id: ActivationId::generate(),
        start: 1_700_000_000_000 + i as i64,
        end: 1_700_000_000_001 + i as i64,
        cause: None,
        response: ActivationResponse::success(json!({"i": i}), None),
        logs: vec!["2026-01-01T00:00:00Z                 stdout: x".into()],
        version: "0.0.1".into(),
        publish: false,
        annotations: vec![],
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // nothing for test runners to list
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let controller = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/bench", Behaviour::Echo))
            .spawn()
            .await
            .unwrap();
        let lambda = fake_lambda().await;
        let data = tempfile::tempdir().unwrap();
        let text = format!(
            "[controller]\nurl = \"{}\"\n[lambda]\nregion = \"us-east-1\"\nendpoint_url = \"{lambda}\"\nlog_tail = false\n[activations]\ndata_dir = \"{}\"\n[[route]]\naction = \"guest/bench\"\nfunction = \"bench\"\n",
            controller.url(),
            data.path().display()
        );
        let policy = Policy::parse(&text, "bench.toml", Path::new(".")).unwrap();
        let serving = owl::serve::start(owl::serve::Config {
            options: BuildOptions::emulator(),
            ..owl::serve::Config::new(policy, "127.0.0.1:0".parse().unwrap(), None)
        })
        .await
        .unwrap();
        let gw = serving.gateway().clone();
        let url = format!(
            "{}/api/v1/namespaces/guest/actions/bench?blocking=true&result=true",
            serving.url()
        );
        let auth = {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{GUEST_UUID}:{GUEST_KEY}")))
        };
        let client = reqwest::Client::new();
        let _ = measure(&client, &url, &auth).await; // warm-up: caches, connections
        let (p50, p99) = measure(&client, &url, &auth).await;
        println!("invoke path, quiet store                      p50 {p50:>9.1?}  p99 {p99:>9.1?}");
        for (label, rate) in [("20k records/s", Some(20_000u64)), ("as fast as possible", None)] {
            let recorder = gw.recorder().clone();
            // Serialised beforehand, as invocation tasks serialise their own records:
            // the burst measures the writer's effect on the invoke path.
            let records: Vec<Record> = (0..BURST).map(|i| Record::new(record(i))).collect();
            let burst = tokio::spawn(async move {
                let t = Instant::now();
                for (i, r) in records.into_iter().enumerate() {
                    if let Some(rate) = rate
                        && i % 100 == 0
                    {
                        let due = Duration::from_secs_f64(i as f64 / rate as f64);
                        if let Some(wait) = due.checked_sub(t.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    recorder.complete_record(r).await;
                }
                recorder.flush().await;
                t.elapsed()
            });
            let (p50b, p99b) = measure(&client, &url, &auth).await;
            let took = burst.await.unwrap();
            println!(
                "invoke path, burst {label:<20} p50 {p50b:>9.1?}  p99 {p99b:>9.1?}  (p99 ×{:.2}; {BURST} records in {took:.2?} = {:.0}/s)",
                p99b.as_secs_f64() / p99.as_secs_f64(),
                BURST as f64 / took.as_secs_f64()
            );
        }
        serving.shutdown(owl::serve::Shutdown::Fast).await.unwrap();
    });
}
