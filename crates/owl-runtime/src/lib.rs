//! The owl runtime: the `bootstrap` of a `provided.al2023` Lambda function that runs
//! unchanged OpenWhisk actions (docs/runtime.md).
//!
//! One side speaks Lambda's Runtime API (`runtime_api`): it takes an invocation,
//! answers with a response or an error, and reports a broken set-up as an init
//! error. The other side speaks OpenWhisk's ActionLoop protocol (`actionloop`) to one
//! warm launcher process — the shipped Node.js and Python launchers, or any
//! ActionLoop executable (the generic bridge). In between: `config` reads the
//! function's environment and prepares the action once, `envelope` turns an event
//! (owl's OpenWhisk envelope or a plain event) into the launcher's input line,
//! `messages` holds OpenWhisk's texts for what can go wrong, and `logs` passes the
//! action's output to the Lambda log stream — and, when owl asks, keeps it to return
//! with the answer (`answer`), so the activation's logs are not only Lambda's 4 KB tail.
//!
//! One invocation runs at a time. A launcher that times out or dies is stopped and
//! replaced right after its invocation is answered; an action that fails to load is
//! reported on every invocation and tried again on the next.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod actionloop;
pub mod answer;
pub mod config;
pub mod envelope;
pub mod logs;
pub mod messages;
pub mod runtime_api;

use actionloop::{DEVELOPER_ERROR_KEY, Launcher, RunOutcome};
use bytes::Bytes;
use config::{Action, Kind, Settings};
use logs::{ActivationLogs, LogSink};
use messages::RuntimeFailure;
use runtime_api::{Invocation, Posted, RuntimeApi};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// How long an invocation without any deadline may run.
const DEFAULT_BUDGET_MS: u64 = 15 * 60 * 1000;

/// Runs the runtime in this process until the Runtime API goes away. The binary's
/// `main`.
pub fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("owl-runtime: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run_from_env())
}

/// Reads the environment, prepares the action, starts the launcher and serves
/// invocations.
pub(crate) async fn run_from_env() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(f) => {
            eprintln!("owl-runtime: {f}");
            if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
                let _ = RuntimeApi::new(&api).init_error(&f).await;
            }
            return ExitCode::FAILURE;
        }
    };
    let api = RuntimeApi::new(&settings.runtime_api);
    let sink = LogSink::new(settings.log_format);
    let action = match config::prepare(&settings) {
        Ok(a) => a,
        Err(f) => {
            sink.runtime(&f.to_string());
            if let Err(e) = api.init_error(&f).await {
                sink.runtime(&e.to_string());
            }
            return ExitCode::FAILURE;
        }
    };
    let mut rt = Runtime::new(api, action, sink, &settings);
    rt.init().await;
    rt.serve().await
}

/// The runtime's state between invocations.
pub struct Runtime {
    api: RuntimeApi,
    action: Action,
    sink: Arc<LogSink>,
    init_timeout: Duration,
    function_name: String,
    launcher: Option<Launcher>,
    init_failure: Option<RuntimeFailure>,
    restart: bool,
}

/// What one invocation produced: its result or failure, and the activation's logs
/// when owl asked for them.
#[derive(Debug)]
pub struct Answer {
    /// The result to post, or the failure to report.
    pub result: Result<Bytes, RuntimeFailure>,
    /// The activation's log lines, when the envelope asked (`owl:log_limit`).
    pub logs: Option<ActivationLogs>,
}

impl Answer {
    fn without_logs(f: RuntimeFailure) -> Self {
        Self {
            result: Err(f),
            logs: None,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Runtime {
    /// A runtime for `action`, not started yet.
    pub fn new(api: RuntimeApi, action: Action, sink: Arc<LogSink>, s: &Settings) -> Self {
        Self {
            api,
            action,
            sink,
            init_timeout: s.init_timeout,
            function_name: s.function_name.clone(),
            launcher: None,
            init_failure: None,
            restart: false,
        }
    }

    /// Starts the launcher (the init phase). A failure is kept for the first
    /// invocation, as OpenWhisk reports an init failure as that activation's result.
    pub async fn init(&mut self) {
        match Launcher::start(
            &self.action,
            self.sink.clone(),
            Instant::now() + self.init_timeout,
        )
        .await
        {
            Ok(l) => self.launcher = Some(l),
            Err(f) => self.init_failure = Some(f),
        }
    }

    /// Serves invocations until the Runtime API fails or SIGTERM arrives.
    pub async fn serve(mut self) -> ExitCode {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            let next = tokio::select! {
                n = self.api.next() => n,
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {
                    self.shutdown().await;
                    return ExitCode::SUCCESS;
                }
            };
            let inv = match next {
                Ok(i) => i,
                Err(e) => {
                    self.sink.runtime(&format!("{e}; exiting"));
                    self.shutdown().await;
                    return ExitCode::FAILURE;
                }
            };
            let id = inv.request_id.clone();
            let answer = self.handle(inv).await;
            match self.post(&id, answer).await {
                Ok(Posted::Accepted | Posted::TooLarge) => {}
                Ok(Posted::Rejected(status, body)) => self.sink.runtime(&format!(
                    "the Runtime API refused the answer to {id}: {status} {body}"
                )),
                Err(e) => {
                    self.sink.runtime(&format!("{e}; exiting"));
                    self.shutdown().await;
                    return ExitCode::FAILURE;
                }
            }
            if self.restart {
                self.restart = false;
                self.init().await;
            }
        }
    }

    /// Posts an invocation's answer: the result (wrapped with its logs when asked), or
    /// the failure. A result Lambda cannot carry becomes `Function.ResponseSizeTooLarge`.
    async fn post(&self, id: &str, answer: Answer) -> Result<Posted, runtime_api::ApiError> {
        let now = time::OffsetDateTime::now_utc();
        let failure = match answer.result {
            Ok(result) => {
                let len = result.len();
                let body = match &answer.logs {
                    None => Some(result),
                    Some(logs) => answer::wrap_result(&result, logs, now).map(Bytes::from),
                };
                if let Some(body) = body {
                    match self.api.response(id, body).await? {
                        Posted::TooLarge => {}
                        other => return Ok(other),
                    }
                }
                RuntimeFailure::too_large(len)
            }
            Err(f) => f,
        };
        let body = match &answer.logs {
            Some(logs) => answer::error_body(&failure, logs, now),
            None => failure.body(),
        };
        self.api
            .error_with_body(id, failure.error_type, Bytes::from(body))
            .await
    }

    async fn shutdown(&mut self) {
        if let Some(l) = self.launcher.take() {
            l.stop().await;
        }
    }

    /// Runs one invocation: the result to post, or the failure to report, with the
    /// activation's logs when its envelope asked for them.
    pub async fn handle(&mut self, inv: Invocation) -> Answer {
        self.sink.set_request(&inv.request_id);
        let now = now_ms();
        let Some(event) = inv.event.as_deref() else {
            return Answer::without_logs(RuntimeFailure::new(
                "Runtime.EventTooLarge",
                format!(
                    "The event is larger than the runtime accepts ({} bytes).",
                    runtime_api::MAX_EVENT
                ),
            ));
        };
        let ctx = envelope::LambdaContext {
            request_id: &inv.request_id,
            deadline_ms: inv.deadline_ms,
            function_arn: inv.function_arn.as_deref(),
            trace_id: inv.trace_id.as_deref(),
            function_name: &self.function_name,
        };
        let act = match envelope::activation(event, &ctx, now, DEFAULT_BUDGET_MS) {
            Ok(a) => a,
            Err(f) => return Answer::without_logs(f),
        };
        // From here every line (and those written since the last activation) is this
        // activation's, if it asked.
        self.sink.collect(act.log_limit);
        let result = self.run(&act, now).await;
        let logs = match act.log_limit {
            Some(_) => self.sink.take_collected(),
            None => None,
        };
        Answer { result, logs }
    }

    /// Runs the activation on the launcher (starting one if needed).
    async fn run(&mut self, act: &envelope::Activation, now: u64) -> Result<Bytes, RuntimeFailure> {
        let budget_ms = act.stop_at_ms.saturating_sub(now);
        if budget_ms == 0 {
            return Err(RuntimeFailure::timeout(0));
        }
        let deadline = Instant::now() + Duration::from_millis(budget_ms);

        if let Some(l) = self.launcher.as_mut()
            && l.exited()
        {
            self.sink
                .runtime("the launcher had exited; starting a new one");
            if let Some(l) = self.launcher.take() {
                l.stop().await;
            }
        }
        if self.launcher.is_none() {
            if let Some(f) = self.init_failure.take() {
                return Err(f);
            }
            let init_deadline = deadline.min(Instant::now() + self.init_timeout);
            self.launcher =
                Some(Launcher::start(&self.action, self.sink.clone(), init_deadline).await?);
        }
        let Some(launcher) = self.launcher.as_mut() else {
            return Err(RuntimeFailure::init(messages::CANNOT_START));
        };
        match launcher.run(&act.line, deadline).await {
            RunOutcome::Result(bytes) => classify(bytes, self.action.kind),
            RunOutcome::TooLarge(len) => Err(RuntimeFailure::too_large(len)),
            RunOutcome::Timeout => {
                self.stop_launcher().await;
                Err(RuntimeFailure::timeout(budget_ms))
            }
            RunOutcome::Exited => {
                self.stop_launcher().await;
                Err(RuntimeFailure::exited())
            }
        }
    }

    async fn stop_launcher(&mut self) {
        if let Some(l) = self.launcher.take() {
            l.stop().await;
        }
        self.restart = true;
    }
}

/// Reads a result line: a JSON object or array is the result; anything else is
/// OpenWhisk's developer error for the kind.
pub fn classify(line: Vec<u8>, kind: Kind) -> Result<Bytes, RuntimeFailure> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let structured = matches!(first, Some(b'{' | b'['))
        && serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_ok();
    if !structured {
        return Err(RuntimeFailure::handler(match kind {
            Kind::Nodejs => messages::NOT_A_DICTIONARY,
            _ => messages::NOT_A_DICTIONARY_OR_ARRAY,
        }));
    }
    if kind.is_own() && first == Some(b'{') && is_developer_error(&line) {
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
        let text = v[DEVELOPER_ERROR_KEY]
            .as_str()
            .unwrap_or(messages::EXITED_DURING_RUN)
            .to_string();
        return Err(RuntimeFailure::handler(text));
    }
    if line.len() > messages::RESPONSE_LIMIT {
        return Err(RuntimeFailure::too_large(line.len()));
    }
    Ok(Bytes::from(line))
}

fn is_developer_error(line: &[u8]) -> bool {
    let key = format!("{{\"{DEVELOPER_ERROR_KEY}\":");
    line.trim_ascii_start().starts_with(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_classified_like_openwhisk() {
        assert_eq!(
            classify(br#"{"a":1}"#.to_vec(), Kind::Python).unwrap(),
            Bytes::from_static(br#"{"a":1}"#)
        );
        assert!(classify(b"[1]".to_vec(), Kind::Nodejs).is_ok());
        assert_eq!(
            classify(b"\"text\"".to_vec(), Kind::Nodejs)
                .unwrap_err()
                .message,
            "The action did not return a dictionary."
        );
        assert_eq!(
            classify(b"42".to_vec(), Kind::Python).unwrap_err().message,
            "The action did not return a dictionary or array."
        );
        assert_eq!(
            classify(b"{broken".to_vec(), Kind::ActionLoop)
                .unwrap_err()
                .message,
            "The action did not return a dictionary or array."
        );
        let dev = classify(
            br#"{"__owl_developer_error":"An error has occurred: Error: x"}"#.to_vec(),
            Kind::Nodejs,
        )
        .unwrap_err();
        assert_eq!(dev.message, "An error has occurred: Error: x");
        // A generic executable's result is never reinterpreted.
        assert!(
            classify(
                br#"{"__owl_developer_error":"x"}"#.to_vec(),
                Kind::ActionLoop
            )
            .is_ok()
        );
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(messages::RESPONSE_LIMIT));
        assert_eq!(
            classify(big.into_bytes(), Kind::Python)
                .unwrap_err()
                .error_type,
            "Function.ResponseSizeTooLarge"
        );
    }
}
