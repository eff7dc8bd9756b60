//! The owl runtime's cost (issue #8): warm invocation overhead of `owl-runtime` plus
//! its launcher versus a bare Runtime API handler, and cold init time.
//!
//! Three measurements:
//! 1. Warm, against a minimal Runtime API served here: the time from handing out an
//!    event to receiving its response, for a bare handler (this benchmark binary run
//!    as a `bootstrap` with `OWL_BENCH_BARE=1`: a Runtime API loop that answers at
//!    once) and for `owl-runtime` running a Node.js and a Python action.
//! 2. Cold: from spawning the bootstrap to its first `next` (the action loaded, the
//!    launcher acknowledged) and to its first response.
//! 3. Warm through MiniStack's Invoke API (the same emulator for both): the bare
//!    handler and the Node.js action deployed as provided.al2023 functions.
//!
//! Run: `cargo bench --bench runtime` (MiniStack from `OWL_TEST_LAMBDA_ENDPOINT`, or
//! started from .owl/ministack-venv). Results go to docs/benchmarks.md by hand.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The owl runtime's binary, built beside `owl` (`cargo bench` builds the workspace's
/// default members).
fn runtime_binary() -> String {
    std::path::Path::new(env!("CARGO_BIN_EXE_owl"))
        .with_file_name("owl-runtime")
        .display()
        .to_string()
}

const NODE_ACTION: &str =
    "function main(params) { console.log('invoked'); return { ok: true, n: params.n }; }\n";
const PYTHON_ACTION: &str =
    "def main(params):\n    print('invoked')\n    return {'ok': True, 'n': params.get('n')}\n";

fn main() {
    if std::env::var_os("OWL_BENCH_BARE").is_some() {
        bare_bootstrap();
        return;
    }
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes nothing and
    // must not run for minutes, and test runners listing tests (`--list`) must read
    // nothing on stdout.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("runtime benchmark: run with `cargo bench --bench runtime`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

/// A bare custom runtime: next → response, nothing else (one log line per event,
/// like the actions, so the emulator treats both alike).
fn bare_bootstrap() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API");
    let mut conn = TcpStream::connect(&api).expect("connect");
    conn.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    loop {
        let req =
            format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n");
        if conn.write_all(req.as_bytes()).is_err() {
            return;
        }
        let Some((status, id, _)) = read_response(&mut reader) else {
            return;
        };
        if status != 200 {
            return;
        }
        println!("invoked");
        let body = br#"{"ok":true}"#;
        let post = format!(
            "POST /2018-06-01/runtime/invocation/{}/response HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            id.unwrap_or_default(),
            body.len()
        );
        if conn.write_all(post.as_bytes()).is_err() || conn.write_all(body).is_err() {
            return;
        }
        if read_response(&mut reader).is_none() {
            return;
        }
    }
}

/// Reads one HTTP/1.1 response: status, request id header, body.
fn read_response(r: &mut BufReader<TcpStream>) -> Option<(u16, Option<String>, Vec<u8>)> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let (mut len, mut id) = (0usize, None);
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "lambda-runtime-aws-request-id" => id = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((status, id, body))
}

// ----- a minimal Runtime API -------------------------------------------------------

struct Api {
    addr: std::net::SocketAddr,
    events: tokio::sync::mpsc::UnboundedSender<(String, Vec<u8>)>,
    posts: tokio::sync::mpsc::UnboundedReceiver<Instant>,
    first_next: Arc<std::sync::Mutex<Option<Instant>>>,
}

async fn api() -> Api {
    use axum::body::Body;
    use axum::http::{Request, Response};
    let (etx, erx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let (ptx, prx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let erx = Arc::new(tokio::sync::Mutex::new(erx));
    let first_next = Arc::new(std::sync::Mutex::new(None));
    let fnx = first_next.clone();
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let (erx, ptx, fnx) = (erx.clone(), ptx.clone(), fnx.clone());
        async move {
            if req.method() == axum::http::Method::GET {
                fnx.lock().unwrap().get_or_insert_with(Instant::now);
                let Some((id, body)) = erx.lock().await.recv().await else {
                    return Response::builder().status(500).body(Body::empty()).unwrap();
                };
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 30_000;
                return Response::builder()
                    .header("content-type", "application/json")
                    .header("lambda-runtime-aws-request-id", id)
                    .header("lambda-runtime-deadline-ms", deadline.to_string())
                    .body(Body::from(body))
                    .unwrap();
            }
            let _ = axum::body::to_bytes(req.into_body(), usize::MAX).await;
            let _ = ptx.send(Instant::now());
            Response::builder().status(202).body(Body::empty()).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Api {
        addr,
        events: etx,
        posts: prx,
        first_next,
    }
}

enum Subject {
    Bare,
    Node,
    Python,
}

impl Subject {
    fn name(&self) -> &'static str {
        match self {
            Subject::Bare => "bare handler",
            Subject::Node => "owl-runtime + Node.js",
            Subject::Python => "owl-runtime + Python",
        }
    }

    fn spawn(&self, api: &Api, dir: &std::path::Path) -> tokio::process::Child {
        let mut cmd = match self {
            Subject::Bare => {
                let mut c = tokio::process::Command::new(std::env::current_exe().unwrap());
                c.env("OWL_BENCH_BARE", "1");
                c
            }
            Subject::Node => {
                std::fs::write(dir.join("action.js"), NODE_ACTION).unwrap();
                let mut c = tokio::process::Command::new(runtime_binary());
                c.env("_HANDLER", "action.main");
                c
            }
            Subject::Python => {
                std::fs::write(dir.join("action.py"), PYTHON_ACTION).unwrap();
                let mut c = tokio::process::Command::new(runtime_binary());
                c.env("_HANDLER", "action.main");
                c
            }
        };
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("LAMBDA_TASK_ROOT", dir)
            .env("TMPDIR", dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd.spawn().unwrap()
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (
        pct(&v, 50.0),
        pct(&v, 99.0),
        v.iter().sum::<f64>() / v.len() as f64,
    )
}

/// Warm latency (ms) of `n` invocations after `warmup`.
async fn warm(subject: &Subject, n: usize) -> Vec<f64> {
    let mut api = api().await;
    let dir = tempfile::tempdir().unwrap();
    let _child = subject.spawn(&api, dir.path());
    let body = br#"{"value":{"n":1},"namespace":"guest","action_name":"/guest/bench","action_version":"0.0.1","activation_id":"a","transaction_id":"t","deadline":"99999999999999"}"#;
    let mut out = Vec::with_capacity(n);
    for i in 0..(n + 200) {
        let t0 = Instant::now();
        api.events.send((format!("r{i}"), body.to_vec())).unwrap();
        let t1 = tokio::time::timeout(Duration::from_secs(30), api.posts.recv())
            .await
            .expect("no answer")
            .unwrap();
        if i >= 200 {
            out.push((t1 - t0).as_secs_f64() * 1000.0);
        }
    }
    out
}

/// Cold start (ms): spawn → first `next`, spawn → first response.
async fn cold(subject: &Subject, runs: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut init, mut first) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut api = api().await;
        let dir = tempfile::tempdir().unwrap();
        api.events.send(("c".into(), b"{}".to_vec())).unwrap();
        let t0 = Instant::now();
        let mut child = subject.spawn(&api, dir.path());
        let t1 = tokio::time::timeout(Duration::from_secs(30), api.posts.recv())
            .await
            .expect("no answer")
            .unwrap();
        let n = api.first_next.lock().unwrap().expect("no next");
        init.push((n - t0).as_secs_f64() * 1000.0);
        first.push((t1 - t0).as_secs_f64() * 1000.0);
        let _ = child.kill().await;
    }
    (init, first)
}

async fn through_ministack(n: usize) -> Option<Vec<(String, Vec<f64>)>> {
    use owl::demo::ministack::{self, FunctionSpec, MiniStack};
    let mut _owned: Option<MiniStack> = None;
    let endpoint = match std::env::var("OWL_TEST_LAMBDA_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => {
            let bin = ministack::locate()?;
            let ms = MiniStack::start(&bin, 0).await.ok()?;
            let e = ms.endpoint();
            _owned = Some(ms);
            e
        }
    };
    let exe = std::env::current_exe().unwrap();
    let boot = |target: &str| format!("#!/bin/sh\nexec '{target}'\n").into_bytes();
    let specs = [
        FunctionSpec {
            name: "owl-bench-bare".into(),
            runtime: "provided.al2023".into(),
            handler: "bootstrap".into(),
            files: vec![("bootstrap".into(), boot(exe.to_str().unwrap()), true)],
            timeout_s: 10,
            environment: vec![("OWL_BENCH_BARE".into(), "1".into())],
        },
        FunctionSpec {
            name: "owl-bench-node".into(),
            runtime: "provided.al2023".into(),
            handler: "action.main".into(),
            files: vec![
                ("bootstrap".into(), boot(&runtime_binary()), true),
                ("action.js".into(), NODE_ACTION.as_bytes().to_vec(), false),
            ],
            timeout_s: 10,
            environment: Vec::new(),
        },
    ];
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for spec in &specs {
        ministack::deploy(&endpoint, "us-east-1", spec).await.ok()?;
        let url = format!("{endpoint}/2015-03-31/functions/{}/invocations", spec.name);
        let mut v = Vec::with_capacity(n);
        for i in 0..(n + 20) {
            let t0 = Instant::now();
            let r = client
                .post(&url)
                .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0")
                .body(r#"{"n":1}"#)
                .send()
                .await
                .ok()?;
            let ok = r.status().is_success() && r.headers().get("x-amz-function-error").is_none();
            let _ = r.bytes().await;
            assert!(ok, "{} failed", spec.name);
            if i >= 20 {
                v.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
        }
        out.push((spec.name.clone(), v));
    }
    Some(out)
}

async fn run() {
    let n = std::env::var("OWL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    println!(
        "## warm invocation, minimal Runtime API on loopback ({n} invocations after 200 warm-up)\n"
    );
    println!("| subject | p50 ms | p99 ms | mean ms |\n|---|---|---|---|");
    let mut p50s = Vec::new();
    for s in [Subject::Bare, Subject::Node, Subject::Python] {
        let (p50, p99, mean) = summary(warm(&s, n).await);
        p50s.push(p50);
        println!("| {} | {p50:.3} | {p99:.3} | {mean:.3} |", s.name());
    }
    println!(
        "\nadded by the runtime (p50): Node.js {:.3} ms, Python {:.3} ms\n",
        p50s[1] - p50s[0],
        p50s[2] - p50s[0]
    );
    println!("## cold start (20 runs; spawn → first next = init, spawn → first response)\n");
    println!(
        "| subject | init p50 ms | init max ms | first response p50 ms | max ms |\n|---|---|---|---|---|"
    );
    for s in [Subject::Bare, Subject::Node, Subject::Python] {
        let (init, first) = cold(&s, 20).await;
        let (ip50, _, _) = summary(init.clone());
        let imax = init.iter().cloned().fold(0.0, f64::max);
        let (fp50, _, _) = summary(first.clone());
        let fmax = first.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {} | {ip50:.1} | {imax:.1} | {fp50:.1} | {fmax:.1} |",
            s.name()
        );
    }
    println!("\n## warm invocation through MiniStack's Invoke API (300 sequential)\n");
    match through_ministack(300).await {
        Some(rows) => {
            println!("| function | p50 ms | p99 ms | mean ms |\n|---|---|---|---|");
            for (name, v) in rows {
                let (p50, p99, mean) = summary(v);
                println!("| {name} | {p50:.2} | {p99:.2} | {mean:.2} |");
            }
        }
        None => println!("MiniStack not available: skipped"),
    }
}
