//! `owl serve` as a real child process on a free port: for crashes (kill -9), signals
//! (SIGTERM, SIGHUP) and anything else only a separate process can show.

use super::client;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `owl serve`.
pub struct OwlProcess {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The admin listener, `http://127.0.0.1:<port>`.
    pub admin: String,
}

impl OwlProcess {
    /// Starts `owl serve --policy <policy_file>` and waits for `/healthz`.
    pub async fn start(policy_file: &Path) -> Self {
        Self::start_with(policy_file, &[], &[], None).await
    }

    /// Like [`start`](Self::start) with extra global `args` (e.g. `--log-format json`),
    /// environment and, optionally, stderr written to a file.
    pub async fn start_with(
        policy_file: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Option<&Path>,
    ) -> Self {
        // Free ports are only free when asked: another test may take one before owl
        // binds it. So owl is ready when its own admin listener names this policy
        // file; an owl that exits during start-up (a port taken) is started again on
        // fresh ports.
        for _ in 0..5 {
            let port = owl::demo::ministack::free_port().unwrap();
            let admin_port = owl::demo::ministack::free_port().unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_owl"));
            cmd.args(args)
                .args(["serve", "--policy"])
                .arg(policy_file)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("OWL_LOG", "error")
                .stdout(Stdio::null())
                .stderr(match stderr {
                    Some(p) => Stdio::from(std::fs::File::create(p).expect("stderr file")),
                    None => Stdio::inherit(),
                });
            for (k, v) in env {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().expect("spawn owl");
            let url = format!("http://127.0.0.1:{port}");
            let admin = format!("http://127.0.0.1:{admin_port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break; // exited during start-up: try other ports
                }
                if Self::is_ours(&admin, policy_file).await
                    && client().get(format!("{url}/healthz")).send().await.is_ok()
                {
                    return Self { child, url, admin };
                }
                assert!(Instant::now() < deadline, "owl did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("owl exited during start-up five times");
    }

    /// True when the admin listener at `admin` is an owl serving `policy_file`.
    async fn is_ours(admin: &str, policy_file: &Path) -> bool {
        let Ok(r) = client().get(format!("{admin}/owl/status")).send().await else {
            return false;
        };
        let Ok(status) = r.json::<serde_json::Value>().await else {
            return false;
        };
        status["policy"]["source"].as_str() == Some(&policy_file.display().to_string())
    }

    /// The invoke URL of `ns/name` with `query`.
    pub fn invoke_url(&self, action: &str, query: &str) -> String {
        let (ns, rest) = action.split_once('/').unwrap();
        format!("{}/api/v1/namespaces/{ns}/actions/{rest}?{query}", self.url)
    }

    /// Sends `signal` (`TERM`, `HUP`, `KILL`, ...).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{signal}");
    }

    /// Waits for the process to exit, without blocking the test's runtime.
    pub async fn exited(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "owl did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for OwlProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
