//! `owl demo`: both paths working on one machine, with nothing but Python and this
//! binary.
//!
//! It starts, on loopback: MiniStack as the local Lambda (installed into
//! `.owl/ministack-venv` on first use) with a sample function deployed, a stand-in
//! controller (clearly labelled, not OpenWhisk) on the policy's controller URL, and the
//! gateway serving `policies/demo.toml`. Then it prints how to call it and shows one
//! invocation on each path with its latency.

pub mod ministack;

use crate::gateway::BuildOptions;
use crate::policy::Policy;
use crate::standin::{Behaviour, GUEST_KEY, GUEST_UUID, StandinAction, StandinBuilder};
use anyhow::Context;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

/// The sample function deployed into MiniStack: an OpenWhisk-style action written as
/// a plain Python Lambda handler that reads the owl envelope.
pub(crate) const HELLO_PY: &str = r#"import os

def handler(event, context):
    # payload = "openwhisk": the parameters are in event["value"], the activation
    # context beside them, as an OpenWhisk runtime's /run receives them.
    params = event.get("value", {}) if isinstance(event, dict) else {}
    name = params.get("name", "stranger")
    print(f"hello invoked for {name} in activation {event.get('activation_id')}")
    return {"greeting": f"Hello, {name}!", "runtime": "AWS Lambda (MiniStack, Python)"}
"#;

/// The web action of the demo: a page for browsers, served from Lambda as OpenWhisk
/// serves a web action (`{statusCode, headers, body}`, the `.http` extension).
pub(crate) const PAGE_PY: &str = r#"import html

def handler(event, context):
    params = event.get("value", {}) if isinstance(event, dict) else {}
    name = html.escape(str(params.get("name", "stranger")))
    method = params.get("__ow_method", "get")
    page = (
        "<!doctype html><title>owl</title>"
        f"<h1>Hello, {name}!</h1>"
        f"<p>An OpenWhisk web action ({method.upper()}), served from AWS Lambda (MiniStack) by owl."
        " Add <code>?name=you</code> to the URL.</p>"
    )
    return {"statusCode": 200, "headers": {"content-type": "text/html"}, "body": page}
"#;

/// Runs the demo.
pub async fn run(policy_file: PathBuf, listen: SocketAddr, once: bool) -> anyhow::Result<()> {
    let mut policy =
        Policy::load(&policy_file).map_err(|e| anyhow::anyhow!("invalid demo policy:\n{e}"))?;
    // The demo keeps its activation records in a scratch directory.
    let data_dir = std::env::temp_dir().join(format!("owl-demo-{}", std::process::id()));
    policy.activations.data_dir = data_dir.clone();
    let controller_port = policy
        .controller
        .url
        .port_u16()
        .context("the demo policy's controller url needs an explicit port")?;
    let endpoint = policy
        .lambda
        .endpoint_url
        .clone()
        .context("the demo policy needs [lambda] endpoint_url (the local MiniStack)")?;
    let lambda_port = endpoint
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.port_u16())
        .context("the demo policy's endpoint_url needs an explicit port")?;
    let region = policy
        .lambda
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".into());

    println!("owl demo — everything below runs on 127.0.0.1\n");
    let bin = match ministack::locate() {
        Some(b) => b,
        None => {
            println!(
                "• installing MiniStack {} into {} (first run only)…",
                ministack::VERSION,
                ministack::DEFAULT_VENV
            );
            ministack::install(std::path::Path::new(ministack::DEFAULT_VENV)).await?
        }
    };
    let lambda = ministack::MiniStack::start(&bin, lambda_port)
        .await
        .with_context(|| format!("starting MiniStack on port {lambda_port}"))?;
    println!("• Lambda:     MiniStack at {}", lambda.endpoint());
    ministack::deploy(
        &lambda.endpoint(),
        &region,
        &ministack::FunctionSpec {
            name: "owl-demo-hello".into(),
            runtime: "python3.11".into(),
            handler: "hello.handler".into(),
            files: vec![("hello.py".into(), HELLO_PY.as_bytes().to_vec(), false)],
            timeout_s: 10,
            environment: Vec::new(),
        },
    )
    .await?;
    ministack::deploy(
        &lambda.endpoint(),
        &region,
        &ministack::FunctionSpec {
            name: "owl-demo-page".into(),
            runtime: "python3.11".into(),
            handler: "page.handler".into(),
            files: vec![("page.py".into(), PAGE_PY.as_bytes().to_vec(), false)],
            timeout_s: 10,
            environment: Vec::new(),
        },
    )
    .await?;
    println!("              deployed functions owl-demo-hello and owl-demo-page (Python)");

    let controller_listener = tokio::net::TcpListener::bind(("127.0.0.1", controller_port))
        .await
        .with_context(|| format!("port {controller_port} (the demo controller) is in use"))?;
    let _controller = StandinBuilder::with_guest()
        .action(StandinAction::new("guest/hello", Behaviour::Greet).kind("python:3"))
        .action(StandinAction::new("guest/echo", Behaviour::Echo))
        .action(
            StandinAction::new("guest/page", Behaviour::Echo)
                .kind("python:3")
                .annotation("web-export", serde_json::Value::Bool(true)),
        )
        .serve(controller_listener);
    println!(
        "• Controller: stand-in controller (NOT OpenWhisk) at http://127.0.0.1:{controller_port} with actions guest/hello, guest/echo, guest/page (a web action)"
    );

    let serving = crate::serve::start(crate::serve::Config {
        options: BuildOptions::emulator(),
        ..crate::serve::Config::new(policy, listen, None)
    })
    .await?;
    let base = serving.url();
    let auth = format!("{GUEST_UUID}:{GUEST_KEY}");
    println!(
        "• Gateway:    owl at {base} with {}\n",
        policy_file.display()
    );
    println!("Credentials (OpenWhisk's guest key):\n  {auth}\n");
    println!("Try it:");
    println!(
        "  curl -s -u '{auth}' -X POST '{base}/api/v1/namespaces/_/actions/hello?blocking=true&result=true' -H 'Content-Type: application/json' -d '{{\"name\":\"owl\"}}'"
    );
    println!(
        "  curl -s -u '{auth}' -X POST '{base}/api/v1/namespaces/_/actions/echo?blocking=true&result=true' -H 'Content-Type: application/json' -d '{{\"name\":\"owl\"}}'"
    );
    println!("  wsk -i --apihost {base} --auth '{auth}' action invoke hello -p name owl --result");
    println!("  owl policy explain policies/demo.toml guest/hello");
    println!("In a browser (a web action, no credentials):");
    println!("  {base}/api/v1/web/guest/default/page?name=owl\n");

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<axum::body::Body>();
    for (label, action) in [("Lambda path", "hello"), ("proxy path ", "echo")] {
        let mut timings = Vec::new();
        let mut last = String::new();
        for _ in 0..3 {
            let (ms, body) = invoke(&client, &base, &auth, action).await?;
            timings.push(ms);
            last = body;
        }
        println!(
            "{label}  guest/{action:<5}  first {:>7.2} ms, then {:>6.2} ms, {:>6.2} ms   → {last}",
            timings[0], timings[1], timings[2]
        );
    }
    let (ms, page) = web_page(&client, &base).await?;
    println!("web action guest/page  {ms:>7.2} ms   → {page}");
    println!(
        "\n(The first call fills owl's identity and metadata caches; the Lambda path skips controller, Kafka and invoker.)"
    );
    if !once {
        println!("\nServing until Ctrl-C.");
        crate::shutdown::signal().await;
    }
    serving.shutdown(crate::serve::Shutdown::Fast).await?;
    drop(lambda);
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

/// `GET /api/v1/web/guest/default/page?name=owl`, as a browser would (no credentials).
async fn web_page(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        axum::body::Body,
    >,
    base: &str,
) -> anyhow::Result<(f64, String)> {
    let req = http::Request::get(format!("{base}/api/v1/web/guest/default/page?name=owl"))
        .body(axum::body::Body::empty())?;
    let start = Instant::now();
    let resp = client.request(req).await?;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.into_body().collect().await?.to_bytes();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        status.is_success(),
        "guest/page answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok((
        ms,
        format!("{status} {content_type}, {} bytes of HTML", body.len()),
    ))
}

async fn invoke(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        axum::body::Body,
    >,
    base: &str,
    auth: &str,
    action: &str,
) -> anyhow::Result<(f64, String)> {
    use base64::Engine;
    let req = http::Request::post(format!(
        "{base}/api/v1/namespaces/_/actions/{action}?blocking=true&result=true"
    ))
    .header(
        "authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(auth)
        ),
    )
    .header("content-type", "application/json")
    .body(axum::body::Body::from(r#"{"name":"owl"}"#))?;
    let start = Instant::now();
    let resp = client.request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        status.is_success(),
        "guest/{action} answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok((ms, String::from_utf8_lossy(&body).into_owned()))
}
