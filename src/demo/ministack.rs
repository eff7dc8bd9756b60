//! MiniStack, the local Lambda emulator (PyPI `ministack`): find or install it, start
//! it on loopback, and deploy functions into it.
//!
//! Used by `owl demo`, the test suite and the benchmarks. A MiniStack owl starts is
//! tied to owl's process: a small shell guard stops it when owl exits, even if owl is
//! killed, so no emulator outlives the run that needed it.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The MiniStack version owl is tested with.
pub(crate) const VERSION: &str = "1.5.33";

/// Where `owl demo` installs MiniStack when it is not found.
pub(crate) const DEFAULT_VENV: &str = ".owl/ministack-venv";

/// Finds a MiniStack executable: `$OWL_MINISTACK`, the default venv, then `PATH`.
pub fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OWL_MINISTACK") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    let venv = Path::new(DEFAULT_VENV).join("bin/ministack");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ministack"))
            .find(|p| p.is_file())
    })
}

/// Installs MiniStack into a virtual environment at `venv` and returns its executable.
pub async fn install(venv: &Path) -> anyhow::Result<PathBuf> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = tokio::process::Command::new(&python)
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .await
        .with_context(|| format!("cannot run {python} to create a virtual environment"))?;
    anyhow::ensure!(
        status.success(),
        "{python} -m venv {} failed",
        venv.display()
    );
    let status = tokio::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("ministack=={VERSION}"))
        .status()
        .await
        .context("cannot run pip")?;
    anyhow::ensure!(status.success(), "pip install ministack=={VERSION} failed");
    Ok(venv.join("bin/ministack"))
}

/// A running MiniStack; stopped when dropped.
pub struct MiniStack {
    child: Child,
    port: u16,
}

impl MiniStack {
    /// Starts MiniStack from `bin` on `127.0.0.1:port` (0 picks a free port) and waits
    /// until it answers.
    pub async fn start(bin: &Path, port: u16) -> anyhow::Result<Self> {
        let port = if port == 0 { free_port()? } else { port };
        let child = guarded(
            bin,
            &[],
            &[
                ("BIND_HOST", "127.0.0.1"),
                ("GATEWAY_PORT", &port.to_string()),
            ],
        )
        .with_context(|| format!("cannot start MiniStack ({})", bin.display()))?;
        let mut ms = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = ms.child.try_wait()? {
                anyhow::bail!("MiniStack exited during start-up ({status}); is port {port} free?");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
                && http_ok(port, "/_ministack/health").await
            {
                return Ok(ms);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "MiniStack did not start within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for MiniStack {
    fn drop(&mut self) {
        // The guard shell forwards the signal to MiniStack's process group.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Spawns `bin args` under a shell guard that stops it (and its process group) when
/// this process exits or the guard is signalled.
pub fn guarded(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> std::io::Result<Child> {
    // `setsid` gives the child its own process group (job control via `set -m`
    // does not without a terminal), so the guard can stop it together with
    // everything it spawned; a child that ignores SIGTERM gets SIGKILL after 5 s.
    let script = r#"
setsid "$@" &
child=$!
stop() {
  kill -TERM -$child 2>/dev/null || kill -TERM $child 2>/dev/null
  i=0
  while kill -0 $child 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL -$child 2>/dev/null
  wait $child 2>/dev/null
}
trap 'stop; exit 0' TERM INT HUP
while kill -0 "$OWL_GUARD_PARENT" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1 & wait $!; done
stop
"#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg("owl-guard")
        .arg(bin)
        .args(args)
        .env("OWL_GUARD_PARENT", std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn http_ok(port: u16, path: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await,
        Ok(Ok(_))
    ) && buf.starts_with(b"HTTP/1.1 200")
}

/// A function to deploy.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Function name.
    pub name: String,
    /// Lambda runtime, e.g. `python3.11`, `nodejs20.x`, `provided.al2023`.
    pub runtime: String,
    /// Handler string.
    pub handler: String,
    /// Files of the code zip: (path, contents, executable).
    pub files: Vec<(String, Vec<u8>, bool)>,
    /// Timeout in seconds.
    pub timeout_s: i32,
    /// Environment variables.
    pub environment: Vec<(String, String)>,
}

/// Packs files into a zip (executables marked 0755).
pub fn zip_files(files: &[(String, Vec<u8>, bool)]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut out);
        for (name, data, exec) in files {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(if *exec { 0o755 } else { 0o644 });
            z.start_file(name.as_str(), opts)?;
            z.write_all(data)?;
        }
        z.finish()?;
    }
    Ok(out.into_inner())
}

/// Creates (or replaces) a function through Lambda's control plane at `endpoint`.
pub async fn deploy(endpoint: &str, region: &str, spec: &FunctionSpec) -> anyhow::Result<()> {
    crate::lambda::control::replace(
        endpoint,
        region,
        crate::lambda::control::Replacement {
            name: &spec.name,
            runtime: &spec.runtime,
            handler: &spec.handler,
            zip: zip_files(&spec.files)?,
            timeout_s: spec.timeout_s,
            environment: &spec.environment,
        },
    )
    .await
}
