//! The command line as a user runs it: `owl policy check`, `owl policy explain`,
//! `owl serve` with a bad policy, and `owl demo --once`.

use std::process::Command;

fn owl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_owl"))
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_accepts_the_shipped_policies() {
    for f in ["policies/demo.toml", "policies/example.toml"] {
        let out = owl()
            .args(["policy", "check", f])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK ("));
    }
}

#[test]
fn check_reports_every_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "bad.toml",
        r#"[controller]
url = "controller.local"
timeout = 30
tiemout = "1s"

[lambda]
region = "US East"
log_tail = "yes"

[metadata]
ttl = "forever"

[[route]]
function = "f"

[[route]]
action = "guest/a*"
function = "owl-{package}"
weight = 150
fallback = "retry"
payload = "xml"
qualifier = "bad qualifier"

[[route]]
action = "_/x"
function = "has space"

[unknown_section]
"#,
    );
    let out = owl().args(["policy", "check"]).arg(&p).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expect = [
        ":2:7: error: `url` in [controller]",
        ":3:11: error: `timeout` in [controller] must be a string",
        ":4:1: error: unknown key `tiemout` in [controller]; did you mean `timeout`?",
        ":7:10: error: `region` in [lambda]",
        ":8:12: error: `log_tail` in [lambda] must be true or false",
        ":11:7: error: `ttl` in [metadata]: \"forever\" is not a duration",
        "error: [[route]] #1 is missing the required key `action`",
        ":17:10: error: `action` in [[route]] #2: `a*`",
        ":18:12: error: `function` in [[route]] #2: `{package}` is used",
        ":19:10: error: `weight` in [[route]] #2 must be between 0 and 100",
        ":20:12: error: `fallback` in [[route]] #2 must be one of \"controller\", \"none\"",
        ":21:11: error: `payload` in [[route]] #2 must be one of \"openwhisk\", \"event\"",
        ":22:13: error: `qualifier` in [[route]] #2",
        ":25:10: error: `action` in [[route]] #3: the namespace `_`",
        ":26:12: error: `function` in [[route]] #3",
        ":28:2: error: unknown key `unknown_section` in the policy",
    ];
    for e in expect {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    assert!(err.contains("bad.toml: 16 errors"), "{err}");
    for line in err.lines().filter(|l| l.contains("error:")) {
        assert!(line.starts_with(&p.display().to_string()), "{line}");
    }
}

#[test]
fn check_reports_syntax_errors_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "syntax.toml",
        "[controller]\nurl = \"http://x:1\"\n[[route]\naction = 1\n",
    );
    let out = owl().args(["policy", "check"]).arg(&p).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("syntax.toml:3:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = owl()
        .args(["policy", "check", "/nonexistent/policy.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the policy"));
}

#[test]
fn explain_names_the_route_and_the_outcome() {
    let out = owl()
        .args(["policy", "explain", "policies/demo.toml", "guest/hello"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("guest/hello: matches route #1"), "{text}");
    assert!(text.contains("function:  owl-demo-hello"), "{text}");
    let out = owl()
        .args(["policy", "explain", "policies/demo.toml", "guest/other"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no route matches"));
    let out = owl()
        .args(["policy", "explain", "policies/demo.toml", "not-an-action"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A sequence's explanation reads its components through the policy's metadata source
/// and names where each would run, as the gateway decides when it composes one
/// (src/invoke/sequence.rs): every atomic component mapped → owl composes it; any
/// component owl does not run → the controller runs the whole sequence
/// (SequenceActions.scala composes on the controller; owl never mixes the two).
#[test]
fn explain_shows_where_a_sequences_components_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "seq.toml",
        r#"[controller]
url = "http://127.0.0.1:9"

[metadata]
source = "file"

[[route]]
action = "guest/lib/*"
function = "owl-lib-{action}"

[[metadata.package]]
package = "guest/lib"

[[metadata.action]]
action = "guest/lib/a"

[[metadata.action]]
action = "guest/lib/b"
kind = "python:3.11"

[[metadata.action]]
action = "guest/other"

[[metadata.action]]
action = "guest/lib/inner"
components = ["guest/lib/b"]

[[metadata.action]]
action = "guest/lib/all"
components = ["guest/lib/a", "guest/lib/inner", "guest/lib/gone"]

[[metadata.action]]
action = "guest/lib/mixed"
components = ["guest/lib/a", "guest/other"]

[[metadata.action]]
action = "guest/lib/nopkg"
components = ["guest/lib/a", "guest/gone/x"]

# OpenWhisk refuses to create a recursive sequence; a store can still hold one.
[[metadata.action]]
action = "guest/lib/loop"
components = ["guest/lib/a", "guest/lib/loop"]
"#,
    );
    let explain = |action: &str| {
        let out = owl()
            .args(["policy", "explain"])
            .arg(&p)
            .arg(action)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let all = explain("guest/lib/all");
    for line in [
        "metadata:  guest/lib/all of kind sequence (as a caller in guest)",
        "sequence:  owl composes it on Lambda",
        "1. guest/lib/a: Lambda function owl-lib-a (route #1, line 7)",
        "2. guest/lib/inner: a sequence of 1",
        "2.1. guest/lib/b: Lambda function owl-lib-b (route #1, line 7)",
        "3. guest/lib/gone: does not exist; the run fails when it reaches it",
    ] {
        assert!(all.contains(line), "missing {line:?} in:\n{all}");
    }
    let mixed = explain("guest/lib/mixed");
    for line in [
        "sequence:  the controller runs the whole sequence: a component is not mapped to Lambda (guest/other)",
        "1. guest/lib/a: Lambda function owl-lib-a",
        "2. guest/other: not run by owl: a component is not mapped to Lambda",
    ] {
        assert!(mixed.contains(line), "missing {line:?} in:\n{mixed}");
    }
    // A direct component in a missing package of the caller's own: the controller's
    // entitlement refuses the invocation before anything runs (Actions.scala:256).
    let nopkg = explain("guest/lib/nopkg");
    for line in [
        "sequence:  refused with 404 \"The requested resource does not exist.\" before any component runs",
        "2. guest/gone/x: its package cannot be read (The requested resource does not exist.)",
    ] {
        assert!(nopkg.contains(line), "missing {line:?} in:\n{nopkg}");
    }
    // Bounded work: the tree is resolved up to 4 × the sequence limit nodes, then the
    // sequence is the controller's (src/invoke/sequence.rs NODES_PER_LIMIT).
    let looped = explain("guest/lib/loop");
    assert!(
        looped.contains(
            "the controller runs the whole sequence: the sequence tree is larger than owl resolves"
        ),
        "{looped}"
    );
    assert!(looped.contains("(the rest is not resolved)"), "{looped}");
    let atomic = explain("guest/lib/b");
    assert!(
        atomic.contains("metadata:  guest/lib/b of kind python:3.11"),
        "{atomic}"
    );
    assert!(!atomic.contains("sequence:"), "{atomic}");
    // The controller shows metadata only to a key: without one, explain says so.
    let keyless = write(
        &dir,
        "keyless.toml",
        "[controller]\nurl = \"http://127.0.0.1:9\"\n[[route]]\naction = \"guest/*\"\nfunction = \"owl-{action}\"\n",
    );
    let out = owl()
        .args(["policy", "explain"])
        .arg(&keyless)
        .arg("guest/hello")
        .env_remove("OWL_EXPLAIN_AUTH")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("give --auth UUID:KEY"), "{text}");
}

#[test]
fn serve_refuses_an_invalid_policy() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "p.toml", "[controller]\nurl = 5\n");
    let out = owl()
        .args(["serve", "--policy"])
        .arg(&p)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("p.toml:2:7"));
}

#[test]
fn the_demo_shows_both_paths() {
    let out = owl()
        .args(["demo", "--once", "--listen", "127.0.0.1:0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stand-in controller (NOT OpenWhisk)"));
    assert!(stdout.contains("Lambda path  guest/hello"), "{stdout}");
    assert!(
        stdout.contains("\"runtime\":\"AWS Lambda (MiniStack, Python)\""),
        "{stdout}"
    );
    assert!(stdout.contains("proxy path   guest/echo"), "{stdout}");
    assert!(stdout.contains("curl -s -u '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:"));
}

/// A reader that leaves early (`owl policy explain … | grep -q controller` under
/// `pipefail`, `| head -1`) is not owl's failure: the report command exits 0 without
/// a panic. The read end is closed before owl starts, so every write meets EPIPE.
#[test]
fn reports_to_a_closed_pipe_exit_quietly() {
    for args in [
        &["policy", "check", "policies/example.toml"][..],
        &[
            "policy",
            "explain",
            "policies/example.toml",
            "shop/checkout",
        ][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = owl()
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
