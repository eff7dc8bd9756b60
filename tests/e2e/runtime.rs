//! The owl runtime (`owl-runtime`, the bootstrap of a provided.al2023 function).
//!
//! Part one drives the whole chain on loopback: the gateway → MiniStack's Invoke API →
//! MiniStack running this bootstrap on the host behind its Runtime API → the Node.js or
//! Python launcher → the action, and checks what OpenWhisk clients see. Part two runs
//! the bootstrap against a minimal Runtime API served by the test, for the protocol's
//! edges (a failing `next`, a deadline already passed, huge events, error headers,
//! launcher death, the generic ActionLoop bridge).

use crate::common::*;
use owl::demo::ministack::FunctionSpec;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A Node.js action in OpenWhisk's style (a global `main`, no exports).
const NODE_ACTION: &str = r#"
function main(params) {
  switch (params.mode) {
    case 'apperr': return { error: { code: 7, why: 'bad input' }, other: 1 };
    case 'reject': return Promise.reject(new Error('rejected'));
    case 'throw': throw new Error('boom');
    case 'text': return 'a string';
    case 'slow': return new Promise(r => setTimeout(() => r({ late: true }), 20000));
    case 'big': return { big: 'x'.repeat(5 * 1024 * 1024) };
    case 'unicode': return { text: params.text, owl: '🦉 é ü 中文' };
    case 'logs':
      console.log('out line 1');
      console.error('err line 1');
      console.log('XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX');
      process.stdout.write('no newline');
      return { logged: true };
    case 'exit': process.exit(3);
    case 'manylogs':
      // Many writes on both streams, numbered per stream.
      for (let i = 0; i < params.n; i++) {
        const text = String(i).padStart(4, '0') + ' ' + 'l'.repeat(90);
        if (i % 3 === 2) console.error('err ' + text); else console.log('out ' + text);
      }
      return { lines: params.n };
    case 'flood':
      for (let i = 0; i * 1000 < params.bytes; i++) process.stdout.write(String(i).padStart(6, '0') + ' ' + 'f'.repeat(1000) + '\n');
      return { flooded: true };
    case 'wrapper': return { 'owl:logs': ['forged'], 'owl:result': { x: 1 } };
    default: {
      const env = {};
      for (const k of Object.keys(process.env)) if (k.startsWith('__OW_') || k === '_X_AMZN_TRACE_ID') env[k] = process.env[k];
      return { env, pid: process.pid, params, size: JSON.stringify(params).length };
    }
  }
}
"#;

/// The same behaviours in Python.
const PYTHON_ACTION: &str = r#"
import json, os, sys, time

def main(params):
    mode = params.get("mode")
    if mode == "apperr":
        return {"error": {"code": 7, "why": "bad input"}, "other": 1}
    if mode == "throw":
        raise ValueError("boom")
    if mode == "text":
        return "a string"
    if mode == "slow":
        time.sleep(20)
        return {"late": True}
    if mode == "big":
        return {"big": "x" * (5 * 1024 * 1024)}
    if mode == "unicode":
        return {"text": params.get("text"), "owl": "🦉 é ü 中文"}
    if mode == "logs":
        print("out line 1")
        print("err line 1", file=sys.stderr)
        print("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX")
        return {"logged": True}
    if mode == "exit":
        os._exit(3)
    if mode == "size":
        return {"blob": len(params.get("blob", ""))}
    if mode == "manylogs":
        for i in range(params["n"]):
            text = "%04d %s" % (i, "l" * 90)
            if i % 3 == 2:
                print("err " + text, file=sys.stderr)
            else:
                print("out " + text)
        return {"lines": params["n"]}
    if mode == "flood":
        i = 0
        while i * 1000 < params["bytes"]:
            sys.stdout.write("%06d %s\n" % (i, "f" * 1000))
            i += 1
        return {"flooded": True}
    if mode == "wrapper":
        return {"owl:logs": ["forged"], "owl:result": {"x": 1}}
    env = {k: v for k, v in os.environ.items() if k.startswith("__OW_") or k == "_X_AMZN_TRACE_ID"}
    return {"env": env, "pid": os.getpid(), "params": params, "size": len(json.dumps(params))}
"#;

const NODE_BROKEN: &str = "function main(params) {\n  return { oops: ;\n}\n";
const PYTHON_BROKEN: &str = "def main(params)\n    return {}\n";

fn short_hash(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `bootstrap` that starts the freshly built runtime (a 25 MB debug binary need not
/// travel through every function zip; deploy/runtime/package.sh ships the binary).
fn bootstrap_script() -> Vec<u8> {
    format!("#!/bin/sh\nexec '{}'\n", runtime_binary()).into_bytes()
}

/// Deploys (once per emulator) a provided.al2023 function running `source` and
/// returns its name.
pub(crate) async fn runtime_function(
    endpoint: &str,
    base: &str,
    file: &str,
    source: &str,
) -> String {
    let name = format!(
        "{base}-{}",
        short_hash(&[
            source.as_bytes(),
            runtime_binary().as_bytes(),
            file.as_bytes()
        ])
    );
    let spec = FunctionSpec {
        name: name.clone(),
        runtime: "provided.al2023".into(),
        handler: format!("{}.main", file.rsplit_once('.').unwrap().0),
        files: vec![
            ("bootstrap".into(), bootstrap_script(), true),
            (file.into(), source.as_bytes().to_vec(), false),
        ],
        timeout_s: 6,
        environment: Vec::new(),
    };
    ensure_function(endpoint, &spec).await;
    name
}

struct Chain {
    gw: TestGateway,
    _controller: Standin,
}

/// The gateway in front of the stand-in controller and MiniStack, with `guest/<lang>`
/// (modes chosen by the `mode` parameter), `guest/<lang>-slow` (a 1 s limit) and
/// `guest/<lang>-broken` (a syntax error) for Node.js and Python.
async fn chain() -> Chain {
    let lambda = lambda().await;
    let ep = &lambda.endpoint;
    let node = runtime_function(ep, "owl-rt-node", "action.js", NODE_ACTION).await;
    let node_bad = runtime_function(ep, "owl-rt-node-bad", "action.js", NODE_BROKEN).await;
    let py = runtime_function(ep, "owl-rt-py", "action.py", PYTHON_ACTION).await;
    let py_bad = runtime_function(ep, "owl-rt-py-bad", "action.py", PYTHON_BROKEN).await;
    let mut routes = String::new();
    let mut actions = Vec::new();
    for (lang, f, bad) in [("node", &node, &node_bad), ("python", &py, &py_bad)] {
        routes.push_str(&format!(
            "[[route]]\naction = \"guest/{lang}\"\nfunction = \"{f}\"\n\n\
             [[route]]\naction = \"guest/{lang}-slow\"\nfunction = \"{f}\"\n\n\
             [[route]]\naction = \"guest/{lang}-broken\"\nfunction = \"{bad}\"\n\n"
        ));
        let kind = if lang == "node" {
            "nodejs:20"
        } else {
            "python:3.11"
        };
        actions.push(
            StandinAction::new(&format!("guest/{lang}"), Behaviour::Echo)
                .kind(kind)
                .annotation("provide-api-key", json!(true)),
        );
        actions.push(
            StandinAction::new(&format!("guest/{lang}-slow"), Behaviour::Echo)
                .kind(kind)
                .timeout_ms(1000),
        );
        actions
            .push(StandinAction::new(&format!("guest/{lang}-broken"), Behaviour::Echo).kind(kind));
    }
    let controller = standin(actions).await;
    let gw = TestGateway::start(&policy(&controller.url(), ep, &routes)).await;
    Chain {
        gw,
        _controller: controller,
    }
}

impl Chain {
    async fn call(&self, action: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        invoke(
            &self.gw.invoke_url(action, "blocking=true"),
            Some(&guest_auth()),
            Some(&body.to_string()),
        )
        .await
    }

    /// The stored record (with its logs) of activation `id`.
    async fn record(&self, id: &str) -> Value {
        self.gw.flush().await;
        let r = client()
            .get(format!(
                "{}/api/v1/namespaces/_/activations/{id}",
                self.gw.url
            ))
            .header("authorization", guest_auth())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

fn status_and_result(body: &Value) -> (&str, &Value) {
    (
        body["response"]["status"].as_str().unwrap_or_default(),
        &body["response"]["result"],
    )
}

async fn success_env_and_warm_reuse(lang: &str) {
    let c = chain().await;
    let (status, headers, body) = c
        .call(&format!("guest/{lang}"), json!({"name": "owl"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (s, r) = status_and_result(&body);
    assert_eq!(s, "success", "{body}");
    assert_eq!(r["params"], json!({"name": "owl"}));
    let env = &r["env"];
    assert_eq!(env["__OW_NAMESPACE"], "guest");
    assert_eq!(env["__OW_ACTION_NAME"], format!("/guest/{lang}"));
    assert_eq!(env["__OW_ACTION_VERSION"], "0.0.1");
    assert_eq!(env["__OW_ACTIVATION_ID"], body["activationId"]);
    assert_eq!(
        env["__OW_TRANSACTION_ID"],
        headers["x-request-id"].to_str().unwrap()
    );
    assert_eq!(env["__OW_API_KEY"], guest_key());
    let deadline: u64 = env["__OW_DEADLINE"].as_str().unwrap().parse().unwrap();
    let start = body["start"].as_u64().unwrap();
    assert!(
        deadline > start && deadline <= start + 70_000,
        "{deadline} vs {start}"
    );
    assert!(
        env["__OW_LAMBDA_REQUEST_ID"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{env}"
    );
    // Later invocations reuse a warm launcher process. Other tests invoke the same
    // function concurrently, so the emulator may run more than one execution
    // environment (each with its own launcher): over five invocations, some launcher
    // must have served more than one — a launcher started per invocation never would.
    let mut pids = vec![r["pid"].clone()];
    for n in 2..=5 {
        let (status, _, again) = c.call(&format!("guest/{lang}"), json!({"n": n})).await;
        assert_eq!(status, 200, "{again}");
        assert_ne!(
            again["response"]["result"]["env"]["__OW_ACTIVATION_ID"],
            env["__OW_ACTIVATION_ID"]
        );
        pids.push(again["response"]["result"]["pid"].clone());
    }
    let distinct: std::collections::HashSet<String> = pids.iter().map(|p| p.to_string()).collect();
    assert!(
        distinct.len() < pids.len(),
        "no launcher was reused across five invocations: {pids:?}"
    );
}

#[tokio::test]
async fn node_success_env_and_warm_reuse() {
    success_env_and_warm_reuse("node").await;
}

#[tokio::test]
async fn python_success_env_and_warm_reuse() {
    success_env_and_warm_reuse("python").await;
}

async fn errors_as_openwhisk_reports_them(lang: &str) {
    let c = chain().await;
    let a = format!("guest/{lang}");
    // An `error` key: an application error that keeps only `error`.
    let (status, _, body) = c.call(&a, json!({"mode": "apperr"})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        status_and_result(&body),
        (
            "application error",
            &json!({"error": {"code": 7, "why": "bad input"}})
        )
    );
    // A thrown exception: Node.js reports a developer error, Python an application error.
    let (status, _, body) = c.call(&a, json!({"mode": "throw"})).await;
    assert_eq!(status, 502, "{body}");
    if lang == "node" {
        assert_eq!(
            status_and_result(&body),
            (
                "action developer error",
                &json!({"error": "An error has occurred: Error: boom"})
            )
        );
        let (_, _, body) = c.call(&a, json!({"mode": "reject"})).await;
        let (s, r) = status_and_result(&body);
        assert_eq!(s, "application error", "{body}");
        assert_eq!(r["error"]["message"], "rejected");
        assert_eq!(r["error"]["name"], "Error");
    } else {
        assert_eq!(
            status_and_result(&body),
            ("application error", &json!({"error": "boom"}))
        );
    }
    // Not a dictionary.
    let (status, _, body) = c.call(&a, json!({"mode": "text"})).await;
    assert_eq!(status, 502, "{body}");
    let text = if lang == "node" {
        "The action did not return a dictionary."
    } else {
        "The action did not return a dictionary or array."
    };
    assert_eq!(
        status_and_result(&body),
        ("action developer error", &json!({"error": text}))
    );
    // The launcher dies: OpenWhisk's text, then a fresh launcher serves the next call.
    let (_, _, before) = c.call(&a, json!({})).await;
    let (status, _, body) = c.call(&a, json!({"mode": "exit"})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        status_and_result(&body),
        (
            "action developer error",
            &json!({"error": "The action did not produce a valid response and exited unexpectedly."})
        )
    );
    let (status, _, after) = c.call(&a, json!({})).await;
    assert_eq!(status, 200, "{after}");
    assert_ne!(
        after["response"]["result"]["pid"],
        before["response"]["result"]["pid"]
    );
}

#[tokio::test]
async fn node_errors_as_openwhisk_reports_them() {
    errors_as_openwhisk_reports_them("node").await;
}

#[tokio::test]
async fn python_errors_as_openwhisk_reports_them() {
    errors_as_openwhisk_reports_them("python").await;
}

async fn init_failure(lang: &str) {
    let c = chain().await;
    let (status, _, body) = c.call(&format!("guest/{lang}-broken"), json!({})).await;
    assert_eq!(status, 502, "{body}");
    let (s, r) = status_and_result(&body);
    assert_eq!(s, "action developer error", "{body}");
    let err = r["error"].as_str().unwrap();
    let rec = c.record(body["activationId"].as_str().unwrap()).await;
    let logs = rec["logs"].to_string();
    if lang == "node" {
        assert!(
            err.starts_with("Initialization has failed due to: "),
            "{err}"
        );
        assert!(err.contains("SyntaxError: Unexpected token"), "{err}");
    } else {
        assert_eq!(err, "Cannot start action. Check logs for details.");
        assert!(logs.contains("SyntaxError"), "{logs}");
    }
    assert!(!logs.contains("XXX_THE_END"), "{logs}");
    // Every invocation tries again and reports the same failure.
    let (status, _, again) = c.call(&format!("guest/{lang}-broken"), json!({})).await;
    assert_eq!(status, 502);
    assert_eq!(again["response"]["result"], body["response"]["result"]);
}

#[tokio::test]
async fn node_init_failure() {
    init_failure("node").await;
}

#[tokio::test]
async fn python_init_failure() {
    init_failure("python").await;
}

async fn timeout_then_recovery(lang: &str) {
    let c = chain().await;
    let started = Instant::now();
    let (status, _, body) = c
        .call(&format!("guest/{lang}-slow"), json!({"mode": "slow"}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        status_and_result(&body),
        (
            "action developer error",
            &json!({"error": "The action exceeded its time limits of 1000 milliseconds."})
        )
    );
    assert_eq!(annotation(&body, "timeout").unwrap(), true);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (status, _, body) = c.call(&format!("guest/{lang}-slow"), json!({"n": 1})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn node_timeout_then_recovery() {
    timeout_then_recovery("node").await;
}

#[tokio::test]
async fn python_timeout_then_recovery() {
    timeout_then_recovery("python").await;
}

async fn big_unicode_and_logs(lang: &str) {
    let c = chain().await;
    let a = format!("guest/{lang}");
    // 5 MB: through Lambda, then truncated by OpenWhisk's 1 MB rule.
    let (status, _, body) = c.call(&a, json!({"mode": "big"})).await;
    assert_eq!(
        status,
        502,
        "{}",
        &body.to_string()[..300.min(body.to_string().len())]
    );
    let (s, r) = status_and_result(&body);
    assert_eq!(s, "application error");
    let e = r["error"].as_str().unwrap();
    assert!(
        e.starts_with("The action produced a response that exceeded the allowed length: 524"),
        "{}",
        &e[..120]
    );
    let text = "héllo wörld 🦉 \u{2028} \"quoted\" \\ tab\t";
    let (status, _, body) = c.call(&a, json!({"mode": "unicode", "text": text})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["response"]["result"],
        json!({"text": text, "owl": "🦉 é ü 中文"})
    );
    let (status, _, body) = c.call(&a, json!({"mode": "logs"})).await;
    assert_eq!(status, 200, "{body}");
    let rec = c.record(body["activationId"].as_str().unwrap()).await;
    let logs: Vec<String> = rec["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let has = |suffix: &str| logs.iter().any(|l| l.ends_with(suffix));
    assert!(has(" stdout: out line 1"), "{logs:?}");
    assert!(has(" stderr: err line 1"), "{logs:?}");
    if lang == "node" {
        assert!(has(" stdout: no newline"), "{logs:?}");
    }
    assert!(!logs.iter().any(|l| l.contains("XXX_THE_END")), "{logs:?}");
    assert!(!logs.iter().any(|l| l.contains("owl-runtime")), "{logs:?}");
}

#[tokio::test]
async fn node_big_unicode_and_logs() {
    big_unicode_and_logs("node").await;
}

#[tokio::test]
async fn python_big_unicode_and_logs() {
    big_unicode_and_logs("python").await;
}

/// A plain Python function (not the owl runtime): it ignores owl's request for the
/// logs, prints about 20 KB, and answers an envelope with `{"plain": true}` but a plain
/// event with a result shaped like the owl runtime's wrapper.
const PLAIN_FUNCTION: &str = r#"
def main(event, context):
    for i in range(200):
        print("plain %04d %s" % (i, "p" * 90))
    if isinstance(event, dict) and "value" in event:
        return {"plain": True}
    return {"owl:logs": ["forged"], "owl:result": {"x": 1}}
"#;

/// The gateway with the Node.js and Python actions (`guest/<lang>`, 10 MB log limit,
/// and `guest/<lang>-logs1`, 1 MB) and the plain function (`guest/plain` with the
/// OpenWhisk envelope, `guest/plain-event` with the plain event).
async fn logs_chain() -> Chain {
    let lambda = lambda().await;
    let ep = &lambda.endpoint;
    let node = runtime_function(ep, "owl-rt-node", "action.js", NODE_ACTION).await;
    let py = runtime_function(ep, "owl-rt-py", "action.py", PYTHON_ACTION).await;
    let plain = format!("owl-rt-plain-{}", short_hash(&[PLAIN_FUNCTION.as_bytes()]));
    ensure_function(
        ep,
        &FunctionSpec {
            name: plain.clone(),
            runtime: "python3.11".into(),
            handler: "plain.main".into(),
            files: vec![("plain.py".into(), PLAIN_FUNCTION.as_bytes().to_vec(), false)],
            timeout_s: 6,
            environment: Vec::new(),
        },
    )
    .await;
    let mut routes = format!(
        "[[route]]\naction = \"guest/plain\"\nfunction = \"{plain}\"\n\n\
         [[route]]\naction = \"guest/plain-event\"\nfunction = \"{plain}\"\npayload = \"event\"\n\n"
    );
    let mut actions = vec![
        StandinAction::new("guest/plain", Behaviour::Echo).kind("python:3.11"),
        StandinAction::new("guest/plain-event", Behaviour::Echo).kind("python:3.11"),
    ];
    for (lang, f, kind) in [("node", &node, "nodejs:20"), ("python", &py, "python:3.11")] {
        routes.push_str(&format!(
            "[[route]]\naction = \"guest/{lang}\"\nfunction = \"{f}\"\n\n\
             [[route]]\naction = \"guest/{lang}-logs1\"\nfunction = \"{f}\"\n\n"
        ));
        actions.push(StandinAction::new(&format!("guest/{lang}"), Behaviour::Echo).kind(kind));
        let mut small =
            StandinAction::new(&format!("guest/{lang}-logs1"), Behaviour::Echo).kind(kind);
        small.limits["logs"] = json!(1);
        actions.push(small);
    }
    let controller = standin(actions).await;
    let gw = TestGateway::start(&policy(&controller.url(), ep, &routes)).await;
    Chain {
        gw,
        _controller: controller,
    }
}

impl Chain {
    /// Invokes `action` (blocking) and returns the answer and the stored record's logs.
    async fn logs_of(&self, action: &str, params: Value) -> (Value, Vec<String>) {
        let (status, _, body) = self.call(action, params).await;
        assert_eq!(
            status,
            200,
            "{}",
            &body.to_string()[..300.min(body.to_string().len())]
        );
        assert_eq!(body["logs"], json!([]), "blocking answers carry no logs");
        let rec = self.record(body["activationId"].as_str().unwrap()).await;
        let logs = rec["logs"]
            .as_array()
            .unwrap_or_else(|| panic!("{rec}"))
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        (body, logs)
    }
}

/// OpenWhisk's stored line: the ISO timestamp with its fraction, padded to 30
/// characters, the stream, the text [OW common/scala/.../logging/
/// DockerToActivationLogStore.scala:41 `toFormattedString`].
fn split_line(line: &str) -> (&str, &str) {
    let (ts, rest) = line.split_at(30);
    let ts = ts.trim_end();
    assert!(
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok()
            && ts.contains('.')
            && ts.ends_with('Z'),
        "{line}"
    );
    let rest = rest.strip_prefix(' ').unwrap_or_else(|| panic!("{line}"));
    rest.split_once(": ").unwrap_or_else(|| panic!("{line}"))
}

const TRUNCATED_1MB: &str =
    "Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes.";
const TRUNCATED_10MB: &str =
    "Logs were truncated because the total bytes size exceeds the limit of 10485760 bytes.";

/// Issue 15 §15: an action's whole log reaches its activation, not Lambda's 4 KB tail.
async fn all_lines_in_order(lang: &str) {
    let c = logs_chain().await;
    let n = 200;
    let (body, logs) = c
        .logs_of(
            &format!("guest/{lang}"),
            json!({"mode": "manylogs", "n": n}),
        )
        .await;
    assert_eq!(body["response"]["result"], json!({"lines": n}));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for line in &logs {
        let (stream, text) = split_line(line);
        match (stream, text.split_once(' ')) {
            ("stdout", Some(("out", rest))) => out.push(rest[..4].parse::<usize>().unwrap()),
            ("stderr", Some(("err", rest))) => err.push(rest[..4].parse::<usize>().unwrap()),
            _ => panic!("unexpected line {line:?} in {logs:?}"),
        }
    }
    let want_out: Vec<usize> = (0..n).filter(|i| i % 3 != 2).collect();
    let want_err: Vec<usize> = (0..n).filter(|i| i % 3 == 2).collect();
    assert_eq!(out, want_out, "{logs:?}");
    assert_eq!(err, want_err, "{logs:?}");
    assert!(logs.iter().map(String::len).sum::<usize>() > 20_000);
}

#[tokio::test]
async fn node_all_lines_in_order() {
    all_lines_in_order("node").await;
}

#[tokio::test]
async fn python_all_lines_in_order() {
    all_lines_in_order("python").await;
}

/// Past the action's log limit (1 MB here, 1.5 MB printed) the log is cut as
/// OpenWhisk's invoker cuts it: whole lines up to the limit, then its truncation line
/// [OW core/invoker/.../docker/DockerContainer.scala:313-330].
async fn cut_at_the_log_limit(lang: &str) {
    let c = logs_chain().await;
    let (body, logs) = c
        .logs_of(
            &format!("guest/{lang}-logs1"),
            json!({"mode": "flood", "bytes": 1_500_000}),
        )
        .await;
    assert_eq!(body["response"]["result"], json!({"flooded": true}));
    let (last, kept) = logs.split_last().unwrap();
    assert_eq!(split_line(last), ("stderr", TRUNCATED_1MB));
    for (i, line) in kept.iter().enumerate() {
        let (stream, text) = split_line(line);
        assert_eq!(stream, "stdout");
        assert_eq!(text, format!("{i:06} {}", "f".repeat(1000)));
    }
    // Each line counts as Docker's JSON record of it: 1007 characters + 71.
    assert_eq!(kept.len(), 1_048_576 / (1007 + 71));
}

#[tokio::test]
async fn node_cut_at_the_log_limit() {
    cut_at_the_log_limit("node").await;
}

#[tokio::test]
async fn python_cut_at_the_log_limit() {
    cut_at_the_log_limit("python").await;
}

/// The wrapper is the runtime's: an action's result shaped like it is the action's own.
#[tokio::test]
async fn a_result_shaped_like_the_wrapper_is_the_actions() {
    let c = logs_chain().await;
    for lang in ["node", "python"] {
        let (body, logs) = c
            .logs_of(&format!("guest/{lang}"), json!({"mode": "wrapper"}))
            .await;
        assert_eq!(
            body["response"]["result"],
            json!({"owl:logs": ["forged"], "owl:result": {"x": 1}})
        );
        assert!(!logs.iter().any(|l| l.contains("forged")), "{logs:?}");
    }
}

/// A function that is not the owl runtime keeps Lambda's tail, cut with OpenWhisk's
/// line for the action's limit; without the request its result is never unwrapped.
#[tokio::test]
async fn other_functions_keep_the_tail() {
    let c = logs_chain().await;
    let (body, logs) = c.logs_of("guest/plain", json!({})).await;
    assert_eq!(body["response"]["result"], json!({"plain": true}));
    let (last, kept) = logs.split_last().unwrap();
    assert_eq!(split_line(last), ("stderr", TRUNCATED_10MB));
    assert!(kept.len() < 50, "{}", kept.len());
    assert!(kept.last().unwrap().contains("plain 0199 "), "{kept:?}");
    let (body, logs) = c.logs_of("guest/plain-event", json!({})).await;
    assert_eq!(
        body["response"]["result"],
        json!({"owl:logs": ["forged"], "owl:result": {"x": 1}})
    );
    assert_eq!(split_line(logs.last().unwrap()), ("stderr", TRUNCATED_10MB));
}

// ---------------------------------------------------------------------------------
// Part two: the bootstrap against a minimal Runtime API served by the test.
// ---------------------------------------------------------------------------------

/// One event the fake Runtime API hands out.
struct Event {
    id: String,
    status: u16,
    deadline_ms: Option<u64>,
    trace: Option<String>,
    body: Vec<u8>,
}

/// What the runtime posted.
#[derive(Debug)]
struct Post {
    path: String,
    error_type: Option<String>,
    body: Value,
}

struct FakeApi {
    addr: std::net::SocketAddr,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    posts: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Post>>,
    _server: tokio::task::JoinHandle<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl FakeApi {
    async fn start() -> FakeApi {
        use axum::body::Body;
        use axum::http::{Request, Response};
        let (etx, erx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let (ptx, prx) = tokio::sync::mpsc::unbounded_channel::<Post>();
        let erx = Arc::new(tokio::sync::Mutex::new(erx));
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let erx = erx.clone();
            let ptx = ptx.clone();
            async move {
                let path = req.uri().path().to_string();
                if req.method() == axum::http::Method::GET
                    && path.ends_with("/runtime/invocation/next")
                {
                    let Some(ev) = erx.lock().await.recv().await else {
                        return Response::builder().status(500).body(Body::empty()).unwrap();
                    };
                    let mut b = Response::builder()
                        .status(ev.status)
                        .header("content-type", "application/json")
                        .header("lambda-runtime-aws-request-id", &ev.id)
                        .header(
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:000000000000:function:fake",
                        );
                    if let Some(d) = ev.deadline_ms {
                        b = b.header("lambda-runtime-deadline-ms", d.to_string());
                    }
                    if let Some(t) = &ev.trace {
                        b = b.header("lambda-runtime-trace-id", t);
                    }
                    return b.body(Body::from(ev.body)).unwrap();
                }
                let error_type = req
                    .headers()
                    .get("lambda-runtime-function-error-type")
                    .map(|v| v.to_str().unwrap().to_string());
                let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let body = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
                let _ = ptx.send(Post {
                    path,
                    error_type,
                    body,
                });
                Response::builder()
                    .status(202)
                    .body(Body::from(r#"{"status":"OK"}"#))
                    .unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApi {
            addr,
            events: etx,
            posts: tokio::sync::Mutex::new(prx),
            _server: server,
        }
    }

    async fn next_post(&self) -> Post {
        tokio::time::timeout(Duration::from_secs(30), self.posts.lock().await.recv())
            .await
            .expect("the runtime posted nothing within 30 s")
            .expect("server gone")
    }

    /// Hands out `body` (5 s deadline) and returns what the runtime posted.
    async fn invoke(&self, id: &str, body: Value) -> Post {
        self.invoke_raw(Event {
            id: id.into(),
            status: 200,
            deadline_ms: Some(now_ms() + 5000),
            trace: Some(format!("Root=1-{id}")),
            body: serde_json::to_vec(&body).unwrap(),
        })
        .await
    }

    async fn invoke_raw(&self, ev: Event) -> Post {
        self.events.send(ev).unwrap();
        self.next_post().await
    }
}

/// A bootstrap process under test, with its log stream captured.
struct Boot {
    child: tokio::process::Child,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Boot {
    async fn start(api: &FakeApi, files: &[(&str, &str)], env: &[(&str, &str)]) -> Boot {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            if !name.contains('.') {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let mut cmd = tokio::process::Command::new(runtime_binary());
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("LAMBDA_TASK_ROOT", dir.path())
            .env("TMPDIR", dir.path())
            .env("AWS_LAMBDA_FUNCTION_NAME", "fake")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    logs.lock().unwrap().push(l);
                }
            });
        }
        Boot {
            child,
            logs,
            _dir: dir,
        }
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the runtime did not exit")
            .unwrap()
            .code()
    }
}

#[tokio::test]
async fn next_answering_500_makes_the_runtime_exit() {
    let api = FakeApi::start().await;
    let mut boot = Boot::start(
        &api,
        &[("action.js", NODE_ACTION)],
        &[("_HANDLER", "action.main")],
    )
    .await;
    api.events
        .send(Event {
            id: "x".into(),
            status: 500,
            deadline_ms: None,
            trace: None,
            body: br#"{"errorMessage":"container error"}"#.to_vec(),
        })
        .unwrap();
    let code = boot.exit_code(Duration::from_secs(5)).await;
    assert_eq!(code, Some(1));
    assert!(
        boot.logs()
            .iter()
            .any(|l| l
                .contains("owl-runtime: Runtime API answered 500 Internal Server Error to next")),
        "{:?}",
        boot.logs()
    );
}

#[tokio::test]
async fn protocol_headers_errors_and_a_passed_deadline() {
    let api = FakeApi::start().await;
    let _boot = Boot::start(
        &api,
        &[("action.js", NODE_ACTION)],
        &[("_HANDLER", "action.main")],
    )
    .await;
    // A plain event is the params; Lambda's request id, ARN and trace id reach the action.
    let p = api.invoke("req-1", json!({"a": 1})).await;
    assert_eq!(p.path, "/2018-06-01/runtime/invocation/req-1/response");
    assert_eq!(p.body["params"], json!({"a": 1}));
    let env = &p.body["env"];
    assert_eq!(env["__OW_ACTIVATION_ID"], "req-1");
    assert_eq!(env["__OW_ACTION_NAME"], "fake");
    assert_eq!(env["_X_AMZN_TRACE_ID"], "Root=1-req-1");
    assert_eq!(
        env["__OW_LAMBDA_FUNCTION_ARN"],
        "arn:aws:lambda:us-east-1:000000000000:function:fake"
    );
    // Errors: the body and the header Lambda expects.
    let p = api.invoke("req-2", json!({"mode": "throw"})).await;
    assert_eq!(p.path, "/2018-06-01/runtime/invocation/req-2/error");
    assert_eq!(p.error_type.as_deref(), Some("Runtime.HandlerError"));
    assert_eq!(
        p.body,
        json!({"errorMessage": "An error has occurred: Error: boom", "errorType": "Runtime.HandlerError"})
    );
    // A deadline already passed: reported at once as a timeout, the action never runs.
    let started = Instant::now();
    let p = api
        .invoke_raw(Event {
            id: "req-3".into(),
            status: 200,
            deadline_ms: Some(now_ms() - 1000),
            trace: None,
            body: br#"{"mode":"logs"}"#.to_vec(),
        })
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(p.path, "/2018-06-01/runtime/invocation/req-3/error");
    assert_eq!(p.error_type.as_deref(), Some("Sandbox.Timedout"));
    assert!(
        p.body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("The action exceeded its time limits of")
    );
    assert!(!_boot.logs().iter().any(|l| l.contains("out line 1")));
    // The same launcher still serves.
    let p = api.invoke("req-4", json!({})).await;
    assert!(p.path.ends_with("/req-4/response"), "{p:?}");
}

#[tokio::test]
async fn huge_events() {
    let api = FakeApi::start().await;
    let _boot = Boot::start(
        &api,
        &[("action.py", PYTHON_ACTION)],
        &[("_HANDLER", "action.main")],
    )
    .await;
    // 7 MB (over Lambda's own limit, which emulators may not enforce) is still served.
    let blob = "é".repeat(3_500_000);
    let p = api
        .invoke("big-1", json!({"mode": "size", "blob": blob}))
        .await;
    assert!(p.path.ends_with("/big-1/response"), "{p:?}");
    assert_eq!(p.body["blob"], 3_500_000);
    // Echoed back, it is over Lambda's response limit: reported as Lambda would.
    let p = api.invoke("big-1b", json!({"blob": blob})).await;
    assert!(p.path.ends_with("/big-1b/error"), "{p:?}");
    assert_eq!(
        p.error_type.as_deref(),
        Some("Function.ResponseSizeTooLarge")
    );
    // Over the runtime's bound: refused without buffering it, and the runtime goes on.
    let p = api
        .invoke_raw(Event {
            id: "big-2".into(),
            status: 200,
            deadline_ms: Some(now_ms() + 10_000),
            trace: None,
            body: vec![b' '; 33 * 1024 * 1024],
        })
        .await;
    assert!(p.path.ends_with("/big-2/error"), "{p:?}");
    assert_eq!(p.body["errorType"], "Runtime.EventTooLarge");
    let p = api.invoke("big-3", json!({})).await;
    assert!(p.path.ends_with("/big-3/response"), "{p:?}");
    // Not JSON.
    let p = api
        .invoke_raw(Event {
            id: "bad".into(),
            status: 200,
            deadline_ms: Some(now_ms() + 10_000),
            trace: None,
            body: b"{nope".to_vec(),
        })
        .await;
    assert_eq!(p.body["errorType"], "Runtime.InvalidEvent");
}

#[tokio::test]
async fn a_missing_handler_is_an_init_error() {
    let api = FakeApi::start().await;
    let mut boot = Boot::start(
        &api,
        &[("action.js", NODE_ACTION)],
        &[("_HANDLER", "nothere.main")],
    )
    .await;
    let p = api.next_post().await;
    assert_eq!(p.path, "/2018-06-01/runtime/init/error");
    assert_eq!(p.error_type.as_deref(), Some("Runtime.NoSuchHandler"));
    assert!(
        p.body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("nothere.main"),
        "{p:?}"
    );
    assert_eq!(boot.exit_code(Duration::from_secs(5)).await, Some(1));
}

#[tokio::test]
async fn sigterm_stops_runtime_and_launcher() {
    let api = FakeApi::start().await;
    let mut boot = Boot::start(
        &api,
        &[("action.js", NODE_ACTION)],
        &[("_HANDLER", "action.main")],
    )
    .await;
    let p = api.invoke("t-1", json!({})).await;
    let pid = p.body["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(boot.child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(boot.exit_code(Duration::from_secs(5)).await, Some(0));
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err();
    assert!(gone, "the launcher outlived the runtime");
}

/// An ActionLoop executable that is not one of owl's launchers: the generic bridge.
const SHELL_ACTIONLOOP: &str = r#"#!/bin/sh
echo '{"ok": true}' >&3
while read -r line; do
  echo "shell got a line"
  echo "shell stderr" >&2
  case "$line" in
    *'"mode":"text"'*) echo '"just text"' >&3 ;;
    *) act=$(printf '%s' "$line" | sed -n 's/.*"activation_id":"\([^"]*\)".*/\1/p')
       echo "{\"shell\": true, \"activation\": \"$act\"}" >&3 ;;
  esac
done
"#;

#[tokio::test]
async fn the_generic_bridge_runs_any_actionloop_executable() {
    let api = FakeApi::start().await;
    let boot = Boot::start(
        &api,
        &[("exec", SHELL_ACTIONLOOP)],
        &[("OW_ACTION_KIND", "go:1.22"), ("OW_WAIT_FOR_ACK", "1")],
    )
    .await;
    let envelope = json!({"value": {"x": 1}, "namespace": "guest", "action_name": "/guest/sh",
        "action_version": "0.0.1", "activation_id": "0123abc", "transaction_id": "tid",
        "deadline": (now_ms() + 4000).to_string()});
    let p = api.invoke("g-1", envelope).await;
    assert_eq!(
        p.body,
        json!({"shell": true, "activation": "0123abc"}),
        "{p:?}"
    );
    let p = api.invoke("g-2", json!({"mode": "text"})).await;
    assert_eq!(
        p.body["errorMessage"],
        "The action did not return a dictionary or array."
    );
    let logs = boot.logs();
    let line = logs
        .iter()
        .find(|l| l.ends_with("\tshell got a line"))
        .unwrap_or_else(|| panic!("{logs:?}"));
    let parts: Vec<&str> = line.splitn(4, '\t').collect();
    assert_eq!(parts[1..3], ["g-1", "INFO"], "{line}");
    assert!(
        logs.iter()
            .any(|l| l.ends_with("\tg-1\tERROR\tshell stderr")),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("XXX_THE_END")), "{logs:?}");
}

#[tokio::test]
async fn zipped_actions_and_plain_logs() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = owl::demo::ministack::zip_files(&[
        (
            "package.json".into(),
            br#"{"main": "lib/index.js"}"#.to_vec(),
            false,
        ),
        (
            "lib/index.js".into(),
            b"exports.hello = p => { console.log('zipped'); return { zipped: p.who } }".to_vec(),
            false,
        ),
    ])
    .unwrap();
    std::fs::write(dir.path().join("action.zip"), zip).unwrap();
    let zip_path = dir.path().join("action.zip");
    let boot = Boot::start(
        &api,
        &[],
        &[
            ("OW_ACTION_CODE", zip_path.to_str().unwrap()),
            ("OW_ACTION_MAIN", "hello"),
            ("OW_LOG_FORMAT", "plain"),
        ],
    )
    .await;
    let p = api.invoke("z-1", json!({"who": "zip"})).await;
    assert_eq!(p.body, json!({"zipped": "zip"}), "{p:?}");
    assert!(
        boot.logs().iter().any(|l| l == "zipped"),
        "{:?}",
        boot.logs()
    );
}

/// Issue 15 §15, the runtime's side: an envelope with `owl:log_limit` gets the
/// activation's lines with its answer — a result wrapped unchanged, a failure with
/// `owl:logs` beside Lambda's fields — and the action never sees the request. Without
/// it the answer is bare.
#[tokio::test]
async fn asked_the_runtime_returns_the_logs_with_the_answer() {
    let api = FakeApi::start().await;
    let boot = Boot::start(
        &api,
        &[("action.js", NODE_ACTION)],
        &[("_HANDLER", "action.main")],
    )
    .await;
    let envelope = |params: Value, limit: Option<u64>| {
        let mut e = json!({"value": params, "namespace": "guest", "action_name": "/guest/a",
            "action_version": "0.0.1", "activation_id": "0123abc", "transaction_id": "tid",
            "deadline": (now_ms() + 4000).to_string()});
        if let Some(l) = limit {
            e["owl:log_limit"] = json!(l);
        }
        e
    };
    let p = api
        .invoke(
            "w-1",
            envelope(json!({"mode": "manylogs", "n": 3}), Some(1_048_576)),
        )
        .await;
    assert!(p.path.ends_with("/w-1/response"), "{p:?}");
    assert_eq!(p.body["owl:result"], json!({"lines": 3}), "{p:?}");
    let lines: Vec<(String, String)> = p.body["owl:logs"]
        .as_array()
        .unwrap_or_else(|| panic!("{p:?}"))
        .iter()
        .map(|l| {
            let (s, t) = split_line(l.as_str().unwrap());
            (s.to_string(), t[..8].to_string())
        })
        .collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("stderr".to_string(), "err 0002".to_string()),
            ("stdout".to_string(), "out 0000".to_string()),
            ("stdout".to_string(), "out 0001".to_string()),
        ]
    );
    // The same lines reach the Lambda log stream.
    assert!(
        boot.logs()
            .iter()
            .any(|l| l.contains("\tw-1\tERROR\terr 0002")),
        "{:?}",
        boot.logs()
    );
    // The action never sees owl's request.
    let p = api
        .invoke("w-2", envelope(json!({}), Some(1_048_576)))
        .await;
    let env = &p.body["owl:result"]["env"];
    assert_eq!(env["__OW_ACTIVATION_ID"], "0123abc", "{p:?}");
    assert!(
        !env.as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("LOG_LIMIT")),
        "{env}"
    );
    // A failure keeps Lambda's fields and adds the lines.
    let p = api
        .invoke("w-3", envelope(json!({"mode": "throw"}), Some(1_048_576)))
        .await;
    assert!(p.path.ends_with("/w-3/error"), "{p:?}");
    assert_eq!(p.body["errorMessage"], "An error has occurred: Error: boom");
    assert_eq!(p.body["errorType"], "Runtime.HandlerError");
    let logs = p.body["owl:logs"]
        .as_array()
        .unwrap_or_else(|| panic!("{p:?}"));
    assert!(
        logs.iter()
            .any(|l| l.as_str().unwrap().contains(" stderr: Error: boom")),
        "{logs:?}"
    );
    // A small limit: whole lines up to it, then OpenWhisk's line for it.
    let p = api
        .invoke(
            "w-4",
            envelope(json!({"mode": "flood", "bytes": 5000}), Some(2500)),
        )
        .await;
    let logs: Vec<&str> = p.body["owl:logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert_eq!(
        split_line(logs[2]),
        (
            "stderr",
            "Logs were truncated because the total bytes size exceeds the limit of 2500 bytes."
        )
    );
    // Not asked: the bare result, as before.
    let p = api
        .invoke("w-5", envelope(json!({"mode": "wrapper"}), None))
        .await;
    assert_eq!(
        p.body,
        json!({"owl:logs": ["forged"], "owl:result": {"x": 1}})
    );
}
