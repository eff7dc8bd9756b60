//! The real `openwhisk` npm client (tests/js) invoking through the gateway: it must
//! not be able to tell a Lambda-served action from a controller-served one.

use crate::common::*;
use std::path::Path;

#[tokio::test]
async fn the_openwhisk_npm_client_cannot_tell_the_paths_apart() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js.join("node_modules/openwhisk").is_dir(),
        "the openwhisk npm client is not installed: run tests/run (it runs npm ci in tests/js)"
    );
    let lambda = lambda().await;
    let c = StandinBuilder::with_guest()
        .action(StandinAction::new("guest/hello", Behaviour::Greet))
        .action(StandinAction::new("guest/greet", Behaviour::Greet))
        .action(StandinAction::new("guest/apperr", Behaviour::Echo))
        .action(StandinAction::new(
            "guest/fails",
            Behaviour::Fail("this went wrong".into()),
        ))
        .action(StandinAction::sequence(
            "guest/twice",
            &["/guest/hello", "/guest/hello"],
        ))
        .action(StandinAction::sequence(
            "guest/twice-greet",
            &["/guest/greet", "/guest/greet"],
        ))
        .package("guest", "pkg", false, vec![])
        .spawn()
        .await
        .unwrap();
    let routes = r#"
[[route]]
action = "guest/hello"
function = "owl-test-hello"

# A sequence of mapped actions: composed by owl.
[[route]]
action = "guest/twice"
function = "owl-test-hello"

[[route]]
action = "guest/apperr"
function = "owl-test-apperr"

[[route]]
action = "guest/nothing-here"
function = "owl-test-hello"

[[route]]
action = "guest/pkg/*"
function = "owl-test-hello"
"#;
    let gw = TestGateway::start(&policy(&c.url(), &lambda.endpoint, routes)).await;
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=tap", "client.test.mjs"])
        .current_dir(&js)
        .env("OWL_API_HOST", &gw.url)
        .env("OWL_API_KEY", guest_key())
        .output()
        .await
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node tests failed:\n{stdout}");
    assert!(stdout.contains("# pass 9"), "{stdout}");
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
