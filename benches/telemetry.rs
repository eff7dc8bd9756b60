//! What tracing costs: throughput and latency of the Lambda path with trace export on
//! (every request sampled, spans batched to an OTLP/HTTP receiver) versus off (no
//! OTLP endpoint). Metrics, `Server-Timing` and logs at `info` are on in both, as in
//! production.
//!
//! Each configuration runs in its own child process (the gateway, the stand-in
//! controller and an in-process Invoke endpoint that answers at once); this process
//! generates the load and runs the OTLP receiver (pinned to different cores where
//! there are two). Configurations alternate, five rounds each; medians are reported. A run with any failed request is refused.
//!
//! Run: `cargo bench --bench telemetry`.

use owl::gateway::BuildOptions;
use owl::policy::Policy;
use owl::standin::{Behaviour, GUEST_KEY, GUEST_UUID, StandinAction, StandinBuilder};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
static PIN_GATEWAY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
const CONCURRENCY: usize = 16;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(5);
const LATENCY_SAMPLES: usize = 3_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // nothing for test runners to list
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1]);
    }
    // With two or more cores: the gateway on core 0, this process (load and the OTLP
    // receiver) on the last one, so the two do not steal each other's time.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 2 {
        let _ = Command::new("taskset")
            .args([
                "-acp",
                &(cores - 1).to_string(),
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::null())
            .status();
        PIN_GATEWAY.store(true, Ordering::Relaxed);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(parent());
}

/// The gateway under test; prints its invoke URL, serves until stdin closes.
fn child(mode: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // As `owl serve` does: logs at info (to stderr, discarded by the parent), and
        // trace export when an OTLP endpoint is in the environment.
        let telemetry = owl::telemetry::logging::init(false, "info", true).unwrap();
        assert_eq!(telemetry.tracing(), mode != "off", "tracing as configured");
        let controller = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/bench", Behaviour::Echo))
            .spawn()
            .await
            .unwrap();
        let app = axum::Router::new().route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(|| async {
                ([("content-type", "application/json")], r#"{"ok":true}"#)
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lambda = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
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
        println!(
            "READY {}/api/v1/namespaces/guest/actions/bench?blocking=true&result=true",
            serving.url()
        );
        std::io::stdout().flush().unwrap();
        // Serve until the parent closes stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {}
        })
        .await;
        serving.shutdown(owl::serve::Shutdown::Fast).await.unwrap();
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    });
}

/// An OTLP/HTTP receiver that accepts and counts export requests.
async fn otlp_sink() -> (String, Arc<AtomicU64>) {
    let exports = Arc::new(AtomicU64::new(0));
    let counter = exports.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                ([("content-type", "application/x-protobuf")], "")
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, exports)
}

struct Run {
    throughput: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(url: &str) -> Run {
    let auth = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{GUEST_UUID}:{GUEST_KEY}"))
        )
    };
    let client = reqwest::Client::new();
    let failures = Arc::new(AtomicU64::new(0));
    let call = |client: reqwest::Client, url: String, auth: String, failures: Arc<AtomicU64>| async move {
        match client
            .post(&url)
            .header("authorization", &auth)
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => {
                let _ = r.bytes().await;
            }
            _ => {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    // Warm-up: caches, connections.
    for _ in 0..500 {
        call(
            client.clone(),
            url.to_string(),
            auth.clone(),
            failures.clone(),
        )
        .await;
    }
    // Closed loop at CONCURRENCY for the window.
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, auth, failures, done) = (
                client.clone(),
                url.to_string(),
                auth.clone(),
                failures.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    call(client.clone(), url.clone(), auth.clone(), failures.clone()).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let throughput = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    // Sequential latency.
    let mut lat = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let t = Instant::now();
        call(
            client.clone(),
            url.to_string(),
            auth.clone(),
            failures.clone(),
        )
        .await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let failed = failures.load(Ordering::Relaxed);
    assert_eq!(
        failed, 0,
        "{failed} requests failed: refusing to report this run"
    );
    Run {
        throughput,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
    }
}

async fn parent() {
    let (sink, exports) = otlp_sink().await;
    let exe = std::env::current_exe().unwrap();
    // off: no OTLP endpoint; on: every request sampled; sampled: 10 % of traces
    // (parentbased_traceidratio), a common production setting.
    // OWL_BENCH_MODES=on (or off, sampled) runs one configuration only (e.g. under a
    // profiler).
    let modes: Vec<&str> = match std::env::var("OWL_BENCH_MODES").as_deref() {
        Ok("on") => vec!["on"],
        Ok("off") => vec!["off"],
        Ok("sampled") => vec!["sampled"],
        _ => vec!["off", "on", "sampled"],
    };
    let mut results: Vec<(&str, Run)> = Vec::new();
    for round in 1..=ROUNDS {
        for mode in modes.iter().copied() {
            let mut cmd = if PIN_GATEWAY.load(Ordering::Relaxed) {
                let mut c = Command::new("taskset");
                c.args(["-c", "0"]).arg(&exe);
                c
            } else {
                Command::new(&exe)
            };
            cmd.args(["--child", mode])
                .env("OWL_LOG", "info")
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            match mode {
                "on" => {
                    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &sink)
                        .env("OTEL_TRACES_SAMPLER", "always_on");
                }
                "sampled" => {
                    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &sink)
                        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
                        .env("OTEL_TRACES_SAMPLER_ARG", "0.1");
                }
                _ => {}
            }
            let mut child = cmd.spawn().unwrap();
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let url = line
                .trim()
                .strip_prefix("READY ")
                .unwrap_or_else(|| panic!("child said {line:?}"))
                .to_string();
            let before = exports.load(Ordering::Relaxed);
            let run = measure(&url).await;
            drop(child.stdin.take());
            let _ = child.wait();
            let exported = exports.load(Ordering::Relaxed) - before;
            if mode != "off" {
                assert!(exported > 0, "tracing {mode} exported nothing");
            } else {
                assert_eq!(exported, 0, "tracing off exported spans");
            }
            println!(
                "round {round} tracing {mode:<7}  {:>8.0} req/s   p50 {:>8.1?}   p99 {:>8.1?}   ({exported} OTLP exports)",
                run.throughput, run.p50, run.p99
            );
            results.push((mode, run));
        }
    }
    if modes.len() < 3 {
        return;
    }
    let med = |mode: &str, f: &dyn Fn(&Run) -> f64| {
        median(
            results
                .iter()
                .filter(|(m, _)| *m == mode)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    let (tp_off, tp_on) = (med("off", &|r| r.throughput), med("on", &|r| r.throughput));
    let p50 = |r: &Run| r.p50.as_secs_f64() * 1e6;
    let p99 = |r: &Run| r.p99.as_secs_f64() * 1e6;
    let (p50_off, p50_on) = (med("off", &p50), med("on", &p50));
    let (p99_off, p99_on) = (med("off", &p99), med("on", &p99));
    let (tp_s, p50_s, p99_s) = (
        med("sampled", &|r| r.throughput),
        med("sampled", &p50),
        med("sampled", &p99),
    );
    println!();
    println!("| tracing | throughput (req/s, {CONCURRENCY} clients) | p50 (µs) | p99 (µs) |");
    println!("|---|---|---|---|");
    println!("| off | {tp_off:.0} | {p50_off:.0} | {p99_off:.0} |");
    println!("| on (100 % sampled, OTLP/HTTP batches) | {tp_on:.0} | {p50_on:.0} | {p99_on:.0} |");
    println!(
        "| cost | {:.1} % | {:+.0} µs | {:+.0} µs |",
        (1.0 - tp_on / tp_off) * 100.0,
        p50_on - p50_off,
        p99_on - p99_off
    );
    println!("| on (10 % of traces sampled) | {tp_s:.0} | {p50_s:.0} | {p99_s:.0} |");
    println!(
        "| cost | {:.1} % | {:+.0} µs | {:+.0} µs |",
        (1.0 - tp_s / tp_off) * 100.0,
        p50_s - p50_off,
        p99_s - p99_off
    );
}
