//! Shared fixtures for the end-to-end tests: a real Lambda emulator (MiniStack) with
//! the test functions deployed, the gateway started in-process on port 0, the stand-in
//! controller, and small fakes for fault injection.
#![allow(dead_code)]

pub mod fake_lambda;
pub mod openwhisk_db;
pub mod owl_process;
pub mod switch;
pub mod upstream;

/// The owl runtime's binary (`crates/owl-runtime`), built beside `owl` by a build of
/// the workspace (`tests/run`, `cargo test`, `cargo nextest run` from the top). A
/// binary of another package has no `CARGO_BIN_EXE_` variable here.
#[allow(dead_code)]
pub fn runtime_binary() -> String {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_owl")).with_file_name("owl-runtime");
    assert!(
        path.exists(),
        "{} is missing: build the workspace (cargo build -p owl-runtime)",
        path.display()
    );
    path.display().to_string()
}

use owl::demo::ministack::{self, FunctionSpec, MiniStack};
use owl::gateway::{BuildOptions, Gateway};
use owl::policy::Policy;
use owl::server::ServerLimits;
pub use owl::standin::{Behaviour, GUEST_KEY, GUEST_UUID, Standin, StandinAction, StandinBuilder};
use std::path::Path;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The guest `uuid:key`.
pub fn guest_key() -> String {
    format!("{GUEST_UUID}:{GUEST_KEY}")
}

/// `Authorization: Basic …` for `uuid:key`.
pub fn basic(api_key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(api_key)
    )
}

/// The guest's `Authorization` header value.
pub fn guest_auth() -> String {
    basic(&guest_key())
}

/// A second identity, owner of namespace `alice`.
pub const ALICE_UUID: &str = "a11ce000-0000-4000-8000-000000000001";
/// Alice's key.
pub const ALICE_KEY: &str = "AliceKeyAliceKeyAliceKeyAliceKeyAliceKeyAliceKeyAliceKeyAliceKey";

/// Alice's `Authorization` header value.
pub fn alice_auth() -> String {
    basic(&format!("{ALICE_UUID}:{ALICE_KEY}"))
}

/// A shared HTTP client.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// The Lambda emulator the tests share, with the test functions deployed.
pub struct LambdaFixture {
    /// Invoke / control-plane endpoint.
    pub endpoint: String,
    _owned: Option<MiniStack>,
}

static LAMBDA: OnceCell<LambdaFixture> = OnceCell::const_new();

/// The names of the deployed test functions: `owl-test-<handler>`.
pub const FUNCTIONS: &[&str] = &[
    "echo", "hello", "apperr", "boom", "slow", "array", "text", "big", "unicode",
];

/// MiniStack, started once per test process unless `OWL_TEST_LAMBDA_ENDPOINT` names
/// one that the test command started for the whole run.
pub async fn lambda() -> &'static LambdaFixture {
    LAMBDA
        .get_or_init(|| async {
            let (endpoint, owned) = match std::env::var("OWL_TEST_LAMBDA_ENDPOINT") {
                Ok(e) if !e.is_empty() => (e, None),
                _ => {
                    let bin = ministack::locate().expect(
                        "MiniStack not found: run tests/run (it installs it), or set OWL_MINISTACK",
                    );
                    let ms = MiniStack::start(&bin, 0).await.expect("start MiniStack");
                    (ms.endpoint(), Some(ms))
                }
            };
            deploy_test_functions(&endpoint).await;
            LambdaFixture {
                endpoint,
                _owned: owned,
            }
        })
        .await
}

async fn deploy_test_functions(endpoint: &str) {
    let code =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions.py"))
            .expect("functions.py");
    for f in FUNCTIONS {
        let spec = FunctionSpec {
            name: format!("owl-test-{f}"),
            runtime: "python3.11".into(),
            handler: format!("functions.{f}"),
            files: vec![("functions.py".into(), code.clone(), false)],
            timeout_s: 2,
            environment: Vec::new(),
        };
        ensure_function(endpoint, &spec).await;
    }
}

/// Creates the function unless another test process already did.
pub async fn ensure_function(endpoint: &str, spec: &FunctionSpec) {
    let client = lambda_client(endpoint).await;
    if client
        .get_function()
        .function_name(&spec.name)
        .send()
        .await
        .is_ok()
    {
        return;
    }
    if let Err(e) = ministack::deploy(endpoint, "us-east-1", spec).await {
        // A concurrent test process may have created it meanwhile.
        assert!(
            client
                .get_function()
                .function_name(&spec.name)
                .send()
                .await
                .is_ok(),
            "deploying {}: {e:#}",
            spec.name
        );
    }
}

/// An SDK client for the emulator's control plane.
pub async fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    let cfg = owl::policy::LambdaConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.into()),
        connect_timeout: Duration::from_secs(3),
        log_tail: false,
        ..Default::default()
    };
    let conf = owl::lambda::sdk_config(&cfg, Some(&owl::lambda::StaticCredentials::emulator()))
        .await
        .expect("sdk config");
    aws_sdk_lambda::Client::new(&conf)
}

/// A CouchDB-compatible server (pouchdb-server, in memory) shared by the tests of one
/// process, unless `OWL_TEST_COUCHDB_URL` names one the test command started.
pub struct CouchFixture {
    /// Base URL.
    pub url: String,
    _child: Option<std::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

static COUCH: OnceCell<CouchFixture> = OnceCell::const_new();

/// The shared CouchDB-compatible server.
pub async fn couchdb() -> &'static CouchFixture {
    COUCH
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("OWL_TEST_COUCHDB_URL")
                && !url.is_empty()
            {
                return CouchFixture {
                    url,
                    _child: None,
                    _dir: None,
                };
            }
            let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/js/node_modules/.bin/pouchdb-server");
            assert!(
                bin.is_file(),
                "pouchdb-server is not installed: run tests/run (npm ci in tests/js)"
            );
            let dir = tempfile::tempdir().unwrap();
            let port = ministack::free_port().unwrap();
            // Under owl's guard: it stops when this test process exits.
            let script = format!(
                "cd '{}' && exec '{}' --in-memory --host 127.0.0.1 --port {port}",
                dir.path().display(),
                bin.display()
            );
            let child = ministack::guarded(Path::new("sh"), &["-c", &script], &[])
                .expect("start pouchdb-server");
            let url = format!("http://127.0.0.1:{port}");
            let c = client();
            for _ in 0..300 {
                if c.get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            CouchFixture {
                url,
                _child: Some(child),
                _dir: Some(dir),
            }
        })
        .await
}

impl CouchFixture {
    /// Creates a database with a unique name and returns it.
    pub async fn fresh_db(&self, prefix: &str) -> String {
        let name = format!("{prefix}{}", uuid_like());
        let r = client()
            .put(format!("{}/{name}", self.url))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create db {name}: {}", r.status());
        name
    }
}

/// A short random lowercase suffix.
pub fn uuid_like() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..10)
        .map(|_| (b'a' + r.random_range(0..26)) as char)
        .collect()
}

/// A policy with the given controller and Lambda endpoints and extra TOML (routes).
pub fn policy(controller: &str, lambda: &str, extra: &str) -> String {
    format!(
        "[controller]\nurl = \"{controller}\"\ntimeout = \"10s\"\n\n[lambda]\nregion = \"us-east-1\"\nendpoint_url = \"{lambda}\"\n\n{extra}\n"
    )
}

/// A gateway running in-process on 127.0.0.1:0; stopped when dropped.
pub struct TestGateway {
    /// Base URL.
    pub url: String,
    /// Base URL of the admin listener (`/metrics`, `/readyz`, `/owl/status`).
    pub admin: String,
    /// The gateway (for its recorder and metrics).
    pub gw: std::sync::Arc<Gateway>,
    /// Dropped before `data`: a gateway a test did not stop stops accepting before
    /// its data directory goes.
    serving: Option<owl::serve::Serving>,
    /// The data directory (removed on drop unless the policy named one).
    pub data: Option<tempfile::TempDir>,
}

impl TestGateway {
    /// Starts a gateway serving `policy_toml` (connection limits from its `[server]`).
    pub async fn start(policy_toml: &str) -> Self {
        let p = Policy::parse(policy_toml, "test.toml", Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"));
        Self::start_with(policy_toml, ServerLimits::from(&p.server)).await
    }

    /// Starts a gateway whose activation records go to `store`.
    pub async fn start_with_store(
        policy_toml: &str,
        store: std::sync::Arc<dyn owl::activation::ActivationStore>,
    ) -> Self {
        let p = Policy::parse(policy_toml, "test.toml", Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"));
        Self::build(policy_toml, ServerLimits::from(&p.server), Some(store)).await
    }

    /// Starts a gateway with explicit connection limits.
    pub async fn start_with(policy_toml: &str, limits: ServerLimits) -> Self {
        Self::build(policy_toml, limits, None).await
    }

    async fn build(
        policy_toml: &str,
        limits: ServerLimits,
        store: Option<std::sync::Arc<dyn owl::activation::ActivationStore>>,
    ) -> Self {
        let mut policy = Policy::parse(policy_toml, "test.toml", Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"));
        let data = if policy_toml.contains("data_dir") {
            None
        } else {
            let d = tempfile::tempdir().unwrap();
            policy.activations.data_dir = d.path().to_path_buf();
            Some(d)
        };
        let serving = owl::serve::start(owl::serve::Config {
            options: BuildOptions::emulator(),
            store,
            limits: Some(limits),
            ..owl::serve::Config::new(
                policy,
                "127.0.0.1:0".parse().unwrap(),
                Some("127.0.0.1:0".parse().unwrap()),
            )
        })
        .await
        .expect("gateway");
        Self {
            url: serving.url(),
            admin: format!(
                "http://{}",
                serving.admin_addr().expect("an admin listener")
            ),
            gw: serving.gateway().clone(),
            data,
            serving: Some(serving),
        }
    }

    /// `POST` URL for invoking `action` (`ns/name` or `ns/pkg/name`) with `query`.
    pub fn invoke_url(&self, action: &str, query: &str) -> String {
        let (ns, rest) = action.split_once('/').unwrap();
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{}/api/v1/namespaces/{ns}/actions/{rest}{q}", self.url)
    }

    /// Stops the gateway, waits for it to drain, and flushes its records.
    pub async fn stop(mut self) {
        if let Some(serving) = self.serving.take() {
            serving
                .shutdown(owl::serve::Shutdown::Fast)
                .await
                .expect("a clean shutdown");
        }
    }

    /// Waits until every record queued so far is written.
    pub async fn flush(&self) {
        self.gw.recorder().flush().await;
    }
}

/// The stand-in controller with guest and alice, and the given actions.
pub async fn standin(actions: Vec<StandinAction>) -> Standin {
    let mut b = StandinBuilder::with_guest().identity("alice", "alice", ALICE_UUID, ALICE_KEY);
    for a in actions {
        b = b.action(a);
    }
    b.spawn().await.expect("stand-in")
}

/// Sends a blocking invoke as the guest and returns status, headers and JSON body.
pub async fn invoke(
    url: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut req = client().post(url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, headers, json)
}

/// The value of annotation `key` in an activation record.
pub fn annotation<'a>(record: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    record["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

/// A real Redis server (Debian's redis-server) on a free loopback port, under owl's
/// process guard; it can be killed and restarted on the same port.
pub struct RedisServer {
    /// Port.
    pub port: u16,
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one.
    pub async fn start() -> Self {
        let mut r = Self {
            port: ministack::free_port().unwrap(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        r.restart().await;
        r
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGTERM to its process group) and waits.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
        // Wait until the port is free again.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// (Re)starts it on the same port and waits for PONG.
    pub async fn restart(&mut self) {
        let bin = which("redis-server")
            .expect("redis-server is not installed: run tests/run (it apt-get installs it)");
        let port = self.port.to_string();
        let dir = self.dir.path().display().to_string();
        self.child = Some(
            ministack::guarded(
                &bin,
                &[
                    "--port",
                    &port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    &dir,
                ],
                &[],
            )
            .expect("start redis-server"),
        );
        for _ in 0..200 {
            if ping(self.port).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), s.read_exact(&mut buf)).await,
        Ok(Ok(_))
    ) && &buf == b"+PONG\r\n"
}

/// The path of `bin` on `PATH`.
pub fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    })
}
