//! The launcher process, driven by OpenWhisk's ActionLoop protocol (reference §7.2):
//! one JSON line per activation on its stdin, the result as one JSON line on its fd 3,
//! its stdout and stderr as the action's logs. One launcher lives per execution
//! environment; the runtime starts another when it dies or is stopped.
//!
//! The launcher runs in its own process group (a timeout kills the action and
//! anything it started) and never sees the Runtime API's address.

use super::config::Action;
use super::logs::{self, LogSink, Stream};
use super::messages::{self, RuntimeFailure};
use command_fds::{CommandFdExt, FdMapping};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::watch;
use tokio::time::Instant;

/// Largest result line read; the rest of a longer line is counted and dropped.
pub(crate) const MAX_RESULT: usize = 16 * 1024 * 1024;

/// How long the runtime waits for the log readers to catch up after an activation.
const LOG_SYNC: Duration = Duration::from_secs(2);

/// How long a launcher that does not acknowledge gets to fail at once (the
/// ActionLoop proxy's start timeout).
const START_GRACE: Duration = Duration::from_millis(5);

/// What one activation produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RunOutcome {
    /// The result line (without its newline).
    Result(Vec<u8>),
    /// A result line longer than [`MAX_RESULT`]; its length.
    TooLarge(usize),
    /// The deadline passed; the launcher was killed.
    Timeout,
    /// The launcher exited (or closed fd 3) without a result.
    Exited,
}

/// A running launcher.
pub(crate) struct Launcher {
    child: Child,
    stdin: ChildStdin,
    results: BufReader<tokio::net::unix::pipe::Receiver>,
    out_w: std::io::PipeWriter,
    err_w: std::io::PipeWriter,
    out_seen: watch::Receiver<u64>,
    err_seen: watch::Receiver<u64>,
    seq: u64,
    sink: Arc<LogSink>,
    /// Whether this is one of the runtime's own launchers.
    pub own: bool,
}

fn io_fail(what: &str, e: std::io::Error) -> RuntimeFailure {
    RuntimeFailure::init(format!("{what}: {e}"))
}

impl Launcher {
    /// Starts the launcher for `action` and waits for it to load the action (its
    /// acknowledgement on fd 3) until `deadline`. A failure carries OpenWhisk's text.
    pub(crate) async fn start(
        action: &Action,
        sink: Arc<LogSink>,
        deadline: Instant,
    ) -> Result<Launcher, RuntimeFailure> {
        let (res_r, res_w) = std::io::pipe().map_err(|e| io_fail("cannot create a pipe", e))?;
        let (out_r, out_w) = std::io::pipe().map_err(|e| io_fail("cannot create a pipe", e))?;
        let (err_r, err_w) = std::io::pipe().map_err(|e| io_fail("cannot create a pipe", e))?;
        let out_keep = out_w
            .try_clone()
            .map_err(|e| io_fail("cannot clone a pipe", e))?;
        let err_keep = err_w
            .try_clone()
            .map_err(|e| io_fail("cannot clone a pipe", e))?;
        let (out_tx, out_seen) = watch::channel(0);
        let (err_tx, err_seen) = watch::channel(0);
        logs::pump(out_r, Stream::Stdout, sink.clone(), out_tx);
        logs::pump(err_r, Stream::Stderr, sink.clone(), err_tx);

        let spawned = {
            let mut cmd = tokio::process::Command::new(&action.command[0]);
            cmd.args(&action.command[1..])
                .current_dir(&action.cwd)
                .env_remove("AWS_LAMBDA_RUNTIME_API")
                .envs(action.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(Stdio::from(out_w))
                .stderr(Stdio::from(err_w))
                .process_group(0)
                .kill_on_drop(true);
            cmd.fd_mappings(vec![FdMapping {
                parent_fd: OwnedFd::from(res_w),
                child_fd: 3,
            }])
            .map_err(|e| RuntimeFailure::init(format!("cannot map fd 3: {e}")))?;
            cmd.spawn()
            // `cmd` drops here, closing the parent's copies of the child's pipe ends.
        };
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                sink.runtime(&format!(
                    "cannot start {}: {e}",
                    action.command[0].to_string_lossy()
                ));
                return Err(RuntimeFailure::init(messages::CANNOT_START));
            }
        };
        let stdin = child.stdin.take().expect("piped stdin");
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(res_r))
            .map_err(|e| io_fail("cannot read fd 3", e))?;
        let mut l = Launcher {
            child,
            stdin,
            results: BufReader::with_capacity(64 * 1024, receiver),
            out_w: out_keep,
            err_w: err_keep,
            out_seen,
            err_seen,
            seq: 0,
            sink,
            own: action.kind.is_own(),
        };
        match l.await_ack(action, deadline).await {
            Ok(()) => Ok(l),
            Err(f) => {
                l.stop().await;
                Err(f)
            }
        }
    }

    async fn await_ack(
        &mut self,
        action: &Action,
        deadline: Instant,
    ) -> Result<(), RuntimeFailure> {
        let budget_ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u64;
        if !action.wait_for_ack {
            return tokio::select! {
                _ = self.child.wait() => {
                    self.sync_logs().await;
                    Err(RuntimeFailure::init(messages::CANNOT_START))
                }
                _ = tokio::time::sleep(START_GRACE) => Ok(()),
            };
        }
        let outcome = read_line_until(&mut self.results, &mut self.child, deadline).await;
        self.sync_logs().await;
        match outcome {
            RunOutcome::Result(line) => {
                let ack: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                if ack.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
                    return Ok(());
                }
                match ack.get("error").and_then(serde_json::Value::as_str) {
                    Some(text) if self.own => Err(RuntimeFailure::init(text)),
                    _ => Err(RuntimeFailure::init(messages::CANNOT_START)),
                }
            }
            RunOutcome::Timeout => Err(RuntimeFailure::new(
                messages::TIMEOUT_TYPE,
                messages::init_timed_out(budget_ms),
            )),
            RunOutcome::TooLarge(_) | RunOutcome::Exited => {
                Err(RuntimeFailure::init(messages::EXITED_DURING_INIT))
            }
        }
    }

    /// Sends one activation line and waits for its result until `deadline`. On
    /// `Timeout` and `Exited` the launcher is finished: stop it.
    pub(crate) async fn run(&mut self, line: &[u8], deadline: Instant) -> RunOutcome {
        let mut framed = Vec::with_capacity(line.len() + 1);
        framed.extend_from_slice(line);
        framed.push(b'\n');
        let wrote = tokio::select! {
            r = self.stdin.write_all(&framed) => r.is_ok(),
            _ = self.child.wait() => false,
            _ = tokio::time::sleep_until(deadline) => {
                self.sync_logs().await;
                return RunOutcome::Timeout;
            }
        };
        let outcome = if wrote {
            read_line_until(&mut self.results, &mut self.child, deadline).await
        } else {
            RunOutcome::Exited
        };
        self.sync_logs().await;
        outcome
    }

    /// Waits until every line the launcher wrote so far is in the log.
    pub(crate) async fn sync_logs(&mut self) {
        self.seq += 1;
        let seq = self.seq;
        let m = logs::marker(seq);
        let _ = self.out_w.write_all(&m);
        let _ = self.err_w.write_all(&m);
        let wait = async {
            let _ = self.out_seen.wait_for(|v| *v >= seq).await;
            let _ = self.err_seen.wait_for(|v| *v >= seq).await;
        };
        if tokio::time::timeout(LOG_SYNC, wait).await.is_err() {
            self.sink
                .runtime("the action's output did not drain in time; some lines may follow late");
        }
    }

    /// True once the launcher process has exited.
    pub(crate) fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the launcher and everything in its process group.
    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
    }
}

/// Reads one line from fd 3, racing the launcher's exit and the deadline.
async fn read_line_until(
    results: &mut BufReader<tokio::net::unix::pipe::Receiver>,
    child: &mut Child,
    deadline: Instant,
) -> RunOutcome {
    let read = read_bounded_line(results);
    tokio::pin!(read);
    tokio::select! {
        biased;
        r = &mut read => r,
        _ = child.wait() => {
            // A result written just before exiting is still in the pipe.
            match tokio::time::timeout(Duration::from_millis(50), read).await {
                Ok(r) => r,
                Err(_) => RunOutcome::Exited,
            }
        }
        _ = tokio::time::sleep_until(deadline) => RunOutcome::Timeout,
    }
}

/// One line of at most [`MAX_RESULT`] bytes.
async fn read_bounded_line(r: &mut BufReader<tokio::net::unix::pipe::Receiver>) -> RunOutcome {
    let mut line = Vec::new();
    let mut len = 0usize;
    loop {
        let buf = match r.fill_buf().await {
            Ok([]) | Err(_) => return RunOutcome::Exited,
            Ok(b) => b,
        };
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        len += chunk.len();
        if len <= MAX_RESULT {
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            if len > MAX_RESULT {
                return RunOutcome::TooLarge(len);
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return RunOutcome::Result(line);
        }
    }
}

/// The key the runtime's own launchers use for a developer error.
pub(crate) const DEVELOPER_ERROR_KEY: &str = "__owl_developer_error";
