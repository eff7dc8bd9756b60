//! The benchmark ladder of `../shared/reference/performance.md`, on this machine, in
//! one run:
//!
//! | level | path |
//! |---|---|
//! | L0 | client → echo server (the loopback + HTTP floor) |
//! | L1 | client → a bare hyper reverse proxy (no logic) → echo |
//! | L2n | client → nginx reverse proxy → echo (skipped with a note when nginx cannot be installed) |
//! | L2 | client → `owl serve`, proxy path (unmapped action) → echo as the controller |
//! | L3 | client → `owl serve`, Lambda path (mapped action; auth, metadata, SigV4, activation record, metrics) → a local Invoke endpoint with a fixed service time |
//! | L3s | a sequence of three mapped actions (`guest/bench3` → bench, bench, bench), composed by owl: three Invoke calls, four records |
//! | L2s | the same sequence unmapped (`guest/bench3c`), proxied to the controller stand-in, which runs it itself (in memory: not OpenWhisk's Kafka path) |
//! | L3w | the same action called as a web action (`POST /api/v1/web/guest/default/bench.json`, no credentials: the owner looked up by namespace, arguments built, the result transcoded) |
//!
//! Each level gets, per repetition, an open-loop run at a constant rate (latency,
//! coordinated-omission corrected) and a closed-loop run (maximum throughput, and the
//! CPU time per request of the process under test from /proc). Levels alternate within
//! each repetition; medians and spreads are reported, with ratios to L1 against the
//! targets. A run with any failed request is refused. With two or more cores the
//! process under test is pinned to core 0 and the load generator and upstreams to the
//! last core.
//!
//! Run: `cargo bench --bench ladder [-- --rate 1000 --duration 5 --reps 5
//! --connections 32 --service-time-ms 0 --quick --append]`. `--append` adds the report
//! to docs/benchmarks.md and the chart to docs/benchmarks/ladder-latency.svg; without
//! it both go to target/ladder/.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use owl::loadtest::generator::{self, Target};
use owl::loadtest::report::{self, Rep, Row};
use owl::loadtest::{cpu, stats};
use owl::standin::{Behaviour, GUEST_KEY, GUEST_UUID, StandinAction, StandinBuilder};
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Settings {
    rate: f64,
    duration: Duration,
    reps: usize,
    connections: usize,
    service_time: Duration,
    append: bool,
}

impl Settings {
    fn from_args(args: &[String]) -> Self {
        let mut s = Self {
            rate: 1000.0,
            duration: Duration::from_secs(5),
            reps: 5,
            connections: 32,
            service_time: Duration::ZERO,
            append: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = |name: &str| -> f64 {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{name} needs a number"))
            };
            match a.as_str() {
                "--rate" => s.rate = num("--rate"),
                "--duration" => s.duration = Duration::from_secs_f64(num("--duration")),
                "--reps" => s.reps = num("--reps") as usize,
                "--connections" => s.connections = num("--connections") as usize,
                "--service-time-ms" => {
                    s.service_time = Duration::from_secs_f64(num("--service-time-ms") / 1e3)
                }
                "--quick" => {
                    s.duration = Duration::from_secs(2);
                    s.reps = 3;
                }
                "--append" => s.append = true,
                _ => {} // cargo bench's own flags (--bench)
            }
        }
        s
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return; // nothing for test runners to list
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1..]);
    }
    let settings = Settings::from_args(&args);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinning = cores >= 2 && which("taskset").is_some();
    if pinning {
        // The generator (this process) and the upstreams on the last core.
        let _ = Command::new("taskset")
            .args([
                "-acp",
                &(cores - 1).to_string(),
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::null())
            .status();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Err(e) = rt.block_on(parent(settings, pinning.then_some(cores - 1))) {
        eprintln!("ladder: {e:#}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------
// Child processes: the upstreams, and the bare proxy.

fn child(args: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match args.first().map(String::as_str) {
            Some("upstreams") => {
                let service_us: u64 = args[1].parse().unwrap();
                let echo = serve(|req: http::Request<Incoming>| async {
                    // Read the whole request body, as a real server would.
                    let _ = req.into_body().collect().await;
                    reply(r#"{"ok":true}"#)
                })
                .await;
                let lambda = serve(move |req: http::Request<Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    if service_us > 0 {
                        tokio::time::sleep(Duration::from_micros(service_us)).await;
                    }
                    reply(r#"{"ok":true}"#)
                })
                .await;
                // Limits no run reaches (a fast machine passes the default 100,000
                // a minute across the levels): the checks still run, none refuses.
                let controller = StandinBuilder::with_guest()
                    .limits(
                        "guest",
                        serde_json::json!({"invocationsPerMinute": 1_000_000_000u64, "concurrentInvocations": 1_000_000}),
                    )
                    .action(
                        StandinAction::new("guest/bench", Behaviour::Echo)
                            .annotation("web-export", serde_json::Value::Bool(true)),
                    )
                    .action(StandinAction::sequence(
                        "guest/bench3",
                        &["/guest/bench", "/guest/bench", "/guest/bench"],
                    ))
                    .action(StandinAction::sequence(
                        "guest/bench3c",
                        &["/guest/bench", "/guest/bench", "/guest/bench"],
                    ))
                    .spawn()
                    .await
                    .unwrap();
                println!(
                    "READY echo={echo} lambda={lambda} controller={}",
                    controller.url()
                );
                std::io::stdout().flush().unwrap();
                wait_for_stdin_close().await;
                drop(controller);
            }
            Some("bare-proxy") => {
                let upstream: hyper::Uri = args[1].parse().unwrap();
                let client: hyper_util::client::legacy::Client<_, Incoming> =
                    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .pool_max_idle_per_host(256)
                        .build_http();
                let url = serve(move |mut req: http::Request<Incoming>| {
                    let client = client.clone();
                    let upstream = upstream.clone();
                    async move {
                        let pq = req
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_string();
                        *req.uri_mut() = format!("{upstream}{}", pq.trim_start_matches('/'))
                            .parse()
                            .unwrap();
                        req.headers_mut().remove(http::header::HOST);
                        match client.request(req).await {
                            Ok(resp) => {
                                let (parts, body) = resp.into_parts();
                                let body = body.collect().await.map(|b| b.to_bytes());
                                match body {
                                    Ok(b) => http::Response::from_parts(parts, Full::new(b)),
                                    Err(_) => bad_gateway(),
                                }
                            }
                            Err(_) => bad_gateway(),
                        }
                    }
                })
                .await;
                println!("READY {url}");
                std::io::stdout().flush().unwrap();
                wait_for_stdin_close().await;
            }
            other => panic!("unknown child {other:?}"),
        }
    });
}

fn reply(body: &'static str) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn bad_gateway() -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(502)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// An HTTP/1.1 server on a free loopback port answering with `handler`; returns its
/// base URL (with a trailing slash).
async fn serve<F, Fut>(handler: F) -> String
where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let handler = handler.clone();
                    async move { Ok::<_, std::convert::Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    url
}

async fn wait_for_stdin_close() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {}
    })
    .await;
}

// ---------------------------------------------------------------------------------
// The parent: processes under test, load, report.

/// A process the ladder started; killed on drop.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => anyhow::bail!("{} exited during the run ({status})", self.name),
        }
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

/// `cmd`, pinned to `core` when pinning.
fn pinned(core: Option<usize>, program: &Path) -> Command {
    match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// Starts a child of this executable and reads its READY line.
fn spawn_child(name: &'static str, core: Option<usize>, args: &[&str]) -> (Proc, String) {
    let exe = std::env::current_exe().unwrap();
    let mut child = pinned(core, &exe)
        .arg("--child")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ready = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("{name} said {line:?}"))
        .to_string();
    (Proc { child, name }, ready)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(url: &str, what: &str) -> anyhow::Result<()> {
    let client = generator::client(1)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let req = http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Ok(r) = client.request(req).await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Installs nginx where the package manager is usable (root, Debian); `None` with the
/// reason otherwise.
fn nginx_binary() -> Result<PathBuf, String> {
    if let Some(n) = which("nginx") {
        return Ok(n);
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || which("apt-get").is_none() {
        return Err("nginx is not installed and cannot be installed here (needs root and apt-get): install the Debian package nginx-light to add L2n".into());
    }
    eprintln!("ladder: installing nginx-light with apt-get for L2n");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-qq", "nginx-light"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null())
            .status();
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "nginx-light"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status();
    }
    which("nginx").ok_or_else(|| "apt-get could not install nginx-light".into())
}

fn start_nginx(core: Option<usize>, dir: &Path, echo: &str) -> Result<(Proc, String), String> {
    let nginx = nginx_binary()?;
    let port = free_port();
    let upstream = echo
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\nevents {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  upstream echo {{ server {upstream}; keepalive 64; }}\n  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://echo;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).map_err(|e| e.to_string())?;
    let child = pinned(core, &nginx)
        .arg("-c")
        .arg(&file)
        .arg("-p")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    Ok((
        Proc {
            child,
            name: "nginx",
        },
        format!("http://127.0.0.1:{port}/"),
    ))
}

fn start_owl(
    core: Option<usize>,
    dir: &Path,
    name: &str,
    controller: &str,
    lambda: &str,
) -> (Proc, String, String) {
    let port = free_port();
    // Each owl gets its own admin listener (readiness is there, not on the public
    // port, and two owls cannot share the default one).
    let admin_port = free_port();
    let data = dir.join(format!("{name}-data"));
    let policy = dir.join(format!("{name}.toml"));
    // Web calls carry no credentials: owl learns guest's owner with guest's key.
    let keys = dir.join(format!("{name}-keys.toml"));
    std::fs::write(
        &keys,
        format!("[namespaces]\nguest = \"{GUEST_UUID}:{GUEST_KEY}\"\n"),
    )
    .unwrap();
    std::fs::write(
        &policy,
        format!(
            "[controller]\nurl = \"{}\"\n[lambda]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\nlog_tail = false\n[activations]\ndata_dir = \"{}\"\n[web]\nservice_keys_file = \"{}\"\n[[route]]\naction = \"guest/bench\"\nfunction = \"bench\"\n[[route]]\naction = \"guest/bench3\"\nfunction = \"bench\"\n",
            controller.trim_end_matches('/'),
            lambda.trim_end_matches('/'),
            data.display(),
            keys.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = pinned(core, Path::new(env!("CARGO_BIN_EXE_owl")))
        .args(["serve", "--policy"])
        .arg(&policy)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn owl");
    (
        Proc { child, name: "owl" },
        format!("http://127.0.0.1:{port}/"),
        format!("http://127.0.0.1:{admin_port}/"),
    )
}

struct Level {
    row: Row,
    target: Target,
    /// The process whose CPU time is charged (None: not measured).
    pid: Option<u32>,
}

fn target(base: &str, action: &str) -> anyhow::Result<Target> {
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{GUEST_UUID}:{GUEST_KEY}"))
    );
    Target::post_json(
        &format!("{base}api/v1/namespaces/guest/actions/{action}?blocking=true&result=true"),
        r#"{"name":"owl"}"#,
    )?
    .header("authorization", &auth)
}

async fn parent(s: Settings, generator_core: Option<usize>) -> anyhow::Result<()> {
    let gateway_core = generator_core.map(|_| 0);
    let dir = tempfile::tempdir()?;
    eprintln!(
        "ladder: {} | rate {} req/s, {:?} runs, {} repetitions, {} closed-loop connections, Lambda service time {:?}{}",
        report::machine_description(),
        s.rate,
        s.duration,
        s.reps,
        s.connections,
        s.service_time,
        if generator_core.is_some() {
            ", gateway on core 0, load and upstreams on the last core"
        } else {
            ", no pinning"
        }
    );
    let (mut upstreams, ready) = spawn_child(
        "upstreams",
        generator_core,
        &["upstreams", &s.service_time.as_micros().to_string()],
    );
    let field = |k: &str| {
        ready
            .split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let (echo, lambda, controller) = (field("echo"), field("lambda"), field("controller"));
    let (mut bare, bare_url) = spawn_child("bare-proxy", gateway_core, &["bare-proxy", &echo]);
    let (mut owl_proxy, owl_proxy_url, owl_proxy_admin) =
        start_owl(gateway_core, dir.path(), "owl-proxy", &echo, &lambda);
    let (mut owl_lambda, owl_lambda_url, owl_lambda_admin) =
        start_owl(gateway_core, dir.path(), "owl-lambda", &controller, &lambda);
    wait_ready(&format!("{owl_proxy_admin}readyz"), "owl (proxy path)").await?;
    wait_ready(&format!("{owl_lambda_admin}readyz"), "owl (Lambda path)").await?;
    let nginx = start_nginx(gateway_core, dir.path(), &echo);
    let mut notes = Vec::new();
    let mut levels = vec![
        Level {
            row: Row::new("L0", "echo server (floor)"),
            target: target(&echo, "bench")?,
            pid: Some(upstreams.pid()),
        },
        Level {
            row: Row::new("L1", "bare hyper proxy → echo"),
            target: target(&bare_url, "bench")?,
            pid: Some(bare.pid()),
        },
    ];
    let mut nginx_proc = match nginx {
        Ok((p, url)) => {
            wait_ready(&format!("{url}healthz"), "nginx").await?;
            levels.push(Level {
                row: Row::new("L2n", "nginx → echo"),
                target: target(&url, "bench")?,
                pid: Some(p.pid()),
            });
            Some(p)
        }
        Err(why) => {
            notes.push(format!("L2n skipped: {why}."));
            None
        }
    };
    levels.push(Level {
        row: Row::new("L2", "owl, proxy path → echo"),
        target: target(&owl_proxy_url, "unmapped")?,
        pid: Some(owl_proxy.pid()),
    });
    levels.push(Level {
        row: Row::new("L3", "owl, Lambda path → Invoke endpoint"),
        target: target(&owl_lambda_url, "bench")?,
        pid: Some(owl_lambda.pid()),
    });
    levels.push(Level {
        row: Row::new(
            "L3s",
            "owl, 3-action sequence composed → Invoke endpoint ×3",
        ),
        target: target(&owl_lambda_url, "bench3")?,
        pid: Some(owl_lambda.pid()),
    });
    levels.push(Level {
        row: Row::new("L2s", "owl, same sequence unmapped → controller stand-in"),
        target: target(&owl_lambda_url, "bench3c")?,
        pid: Some(owl_lambda.pid()),
    });
    levels.push(Level {
        row: Row::new("L3w", "owl, web action from Lambda → Invoke endpoint"),
        target: Target::post_json(
            &format!("{owl_lambda_url}api/v1/web/guest/default/bench.json"),
            r#"{"name":"owl"}"#,
        )?,
        pid: Some(owl_lambda.pid()),
    });

    // Warm-up: connections, caches (identity, metadata), allocator.
    for l in &levels {
        let failed = generator::warm_up(&l.target, 300).await?;
        anyhow::ensure!(
            failed == 0,
            "{}: {failed} warm-up requests failed",
            l.row.name
        );
        generator::closed_loop(&l.target, s.connections, Duration::from_secs(1))
            .await?
            .ensure_clean()?;
    }
    for rep in 1..=s.reps {
        for l in levels.iter_mut() {
            let mut open = generator::open_loop(&l.target, s.rate, s.duration, 10_000).await?;
            open.ensure_clean()
                .map_err(|e| anyhow::anyhow!("{} open loop, repetition {rep}: {e}", l.row.name))?;
            let mut r = Rep::from_samples(&mut open.latencies);
            l.row.pooled.merge(&open.latencies);
            let cpu_before = l.pid.map(cpu::process_cpu).transpose()?;
            let closed = generator::closed_loop(&l.target, s.connections, s.duration).await?;
            let cpu_after = l.pid.map(cpu::process_cpu).transpose()?;
            closed.ensure_clean().map_err(|e| {
                anyhow::anyhow!("{} closed loop, repetition {rep}: {e}", l.row.name)
            })?;
            r.throughput = closed.throughput();
            if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
                r.cpu_per_request = Some((b - a).as_secs_f64() * 1e6 / closed.ok as f64);
            }
            eprintln!(
                "rep {rep} {:<4} p50 {:>7.0} µs  p99 {:>7.0} µs  {:>7.0} req/s  {} µs CPU/req",
                l.row.name,
                r.p50,
                r.p99,
                r.throughput,
                r.cpu_per_request
                    .map_or_else(|| "—".into(), |c| format!("{c:.1}"))
            );
            l.row.reps.push(r);
        }
    }
    let rows: Vec<Row> = levels.iter().map(|l| l.row.clone()).collect();
    let out = render(&s, &rows, &notes, generator_core.is_some());
    println!("{out}");
    let (report_dir, svg_name) = if s.append {
        (PathBuf::from("docs/benchmarks"), "ladder-latency.svg")
    } else {
        (PathBuf::from("target/ladder"), "latency.svg")
    };
    std::fs::create_dir_all(&report_dir)?;
    let mut series: Vec<(String, stats::Samples)> = levels
        .iter()
        .map(|l| {
            (
                format!("{} {}", l.row.name, label(&l.row.name)),
                l.row.pooled.clone(),
            )
        })
        .collect();
    let svg = report::percentile_chart(
        &format!("Latency by percentile at {} req/s (open loop)", s.rate),
        &mut series,
    );
    let svg_path = report_dir.join(svg_name);
    std::fs::write(&svg_path, svg)?;
    eprintln!("ladder: chart written to {}", svg_path.display());
    if s.append {
        let mut doc = std::fs::read_to_string("docs/benchmarks.md")?;
        let _ = write!(
            doc,
            "\n### Ladder run of {}\n\n{out}\n![latency by percentile](benchmarks/{svg_name})\n",
            time::OffsetDateTime::now_utc().date()
        );
        std::fs::write("docs/benchmarks.md", doc)?;
        eprintln!("ladder: report appended to docs/benchmarks.md");
    }
    // A process under test that died mid-run would make the figures meaningless.
    for p in [&mut owl_proxy, &mut owl_lambda, &mut bare, &mut upstreams]
        .into_iter()
        .chain(nginx_proc.as_mut())
    {
        p.ensure_running()?;
    }
    Ok(())
}

/// The chart's legend for a level.
fn label(level: &str) -> &'static str {
    match level {
        "L0" => "echo",
        "L1" => "bare proxy",
        "L2n" => "nginx",
        "L2" => "owl proxy",
        "L3" => "owl Lambda",
        "L3w" => "owl web action",
        "L3s" => "owl sequence",
        "L2s" => "sequence via controller",
        _ => "",
    }
}

fn render(s: &Settings, rows: &[Row], notes: &[String], pinned: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}. Open loop at {} req/s for {:?} and closed loop with {} connections for {:?}, {} repetitions, levels alternating; medians (min–max). Lambda service time {:?}. {}\n",
        report::machine_description(),
        s.rate,
        s.duration,
        s.connections,
        s.duration,
        s.reps,
        s.service_time,
        if pinned {
            "Process under test on core 0, load generator and upstreams on the other core."
        } else {
            "No core pinning (one core)."
        }
    );
    out.push_str(&report::absolute_table(rows));
    if let Some(ratios) = report::ladder_ratios(rows, s.service_time.as_secs_f64() * 1e6) {
        out.push_str(&ratios);
    }
    if let Some(line) = per_component(rows, s.service_time.as_secs_f64() * 1e6) {
        let _ = writeln!(out, "\n{line}");
    }
    for n in notes {
        let _ = writeln!(out, "\n{n}");
    }
    out
}

/// Components in the L3s and L2s sequence (`guest/bench3`).
const SEQUENCE_LENGTH: f64 = 3.0;

/// What a composed sequence costs per component: L3s's added p50 (over L0, less the
/// Lambda service time of each component) and CPU per request, divided by the number
/// of components, beside L3's figures for one direct invocation and L2s's for the
/// same sequence through the controller stand-in. `None` unless L0, L3 and L3s ran.
fn per_component(rows: &[Row], service_time_us: f64) -> Option<String> {
    let find = |n: &str| rows.iter().find(|r| r.name == n);
    let med = |r: &Row, f: fn(&Rep) -> Option<f64>| {
        stats::median(&r.reps.iter().filter_map(f).collect::<Vec<_>>())
    };
    let (l0, l3, l3s) = (find("L0")?, find("L3")?, find("L3s")?);
    let floor = med(l0, |x| Some(x.p50))?;
    let added =
        |r: &Row, calls: f64| med(r, |x| Some(x.p50)).map(|p| p - floor - calls * service_time_us);
    let cpu = |r: &Row| med(r, |x| x.cpu_per_request);
    let seq_added = added(l3s, SEQUENCE_LENGTH)?;
    let mut line = format!(
        "Sequences: owl adds {:.0} µs p50 per component of a composed sequence (L3s: {seq_added:.0} µs over L0 for {SEQUENCE_LENGTH} components) against {:.0} µs for one direct invocation (L3)",
        seq_added / SEQUENCE_LENGTH,
        added(l3, 1.0)?,
    );
    if let (Some(s), Some(one)) = (cpu(l3s), cpu(l3)) {
        let _ = write!(
            line,
            "; CPU {:.1} µs per component against {one:.1} µs",
            s / SEQUENCE_LENGTH
        );
    }
    if let Some(via) = find("L2s").and_then(|r| added(r, 0.0)) {
        let _ = write!(
            line,
            ". The same sequence through the controller stand-in (L2s) adds {via:.0} µs p50 in all; the stand-in composes it in memory, without OpenWhisk's Kafka and invoker trip per component"
        );
    }
    line.push('.');
    Some(line)
}
