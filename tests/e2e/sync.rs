//! `owl sync` on loopback: pouchdb-server as OpenWhisk's whisks database (or a small
//! fake controller API), MiniStack as Lambda's control plane, and the gateway
//! in-process serving the actions through the functions sync made — which run the
//! actions' own code through the owl runtime.
//!
//! MiniStack runs a provided.al2023 function only from a `bootstrap` in the
//! function's own zip (it does not mount layers at /opt), so the functions invoked
//! here bundle the runtime (`[sync] bootstrap`, a two-line script starting the freshly
//! built `owl-runtime`); layer configuration is checked on the function's settings.

use crate::common::openwhisk_db::OpenWhiskDbs;
use crate::common::*;
use owl::policy::Policy;
use owl::sync::status::Outcome;
use owl::sync::{SyncOptions, Syncer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const ROLE: &str = "arn:aws:iam::000000000000:role/owl-actions";

const NODE_V1: &str = r#"
function main(params) {
  return { greeting: 'hello ' + (params.name || 'stranger'), v: 1, token: process.env.TOKEN, kind: process.env.__OW_ACTION_NAME };
}
"#;
const NODE_V2: &str = r#"
function main(params) {
  return { greeting: 'hi ' + (params.name || 'stranger'), v: 2 };
}
"#;
const PYTHON: &str = "def main(args):\n    return {\"py\": args.get(\"n\", 0) + 1}\n";

/// One test's world: the databases, the bootstrap script, a unique function prefix,
/// and the policy text.
struct World {
    dbs: OpenWhiskDbs,
    dir: tempfile::TempDir,
    prefix: String,
    lambda: String,
    controller: Option<Standin>,
}

impl World {
    async fn new() -> Self {
        let lambda = lambda().await.endpoint.clone();
        let dbs = OpenWhiskDbs::create(couchdb().await).await;
        dbs.subject("guest@example.com", "guest", GUEST_UUID, GUEST_KEY, false)
            .await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bootstrap"),
            format!("#!/bin/sh\nexec '{}'\n", runtime_binary()),
        )
        .unwrap();
        Self {
            dbs,
            dir,
            prefix: format!("sync{}", &uuid_like()[..6]),
            lambda,
            controller: None,
        }
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("sync.state")
    }

    fn function(&self, action: &str) -> String {
        format!("{}-guest-{action}", self.prefix)
    }

    /// The policy: couchdb identities and metadata, one route for guest's default
    /// package (alias `live`), `[sync]` with the bundled runtime; `extra` is appended.
    fn policy_text(&self, extra: &str) -> String {
        let controller = self
            .controller
            .as_ref()
            .map_or_else(upstream::down, |c| c.url());
        policy(
            &controller,
            &self.lambda,
            &format!(
                "[[route]]\naction = \"guest/*\"\nfunction = \"{}-{{namespace}}-{{action}}\"\nqualifier = \"live\"\n\n\
                 [auth]\nsource = \"couchdb\"\n\n[metadata]\nsource = \"couchdb\"\nttl = \"0s\"\nnegative_ttl = \"0s\"\n\n{}\n\
                 [sync]\nrole = \"{ROLE}\"\nbootstrap = \"{}\"\nstate_file = \"{}\"\nconcurrency = 3\ntags = {{ team = \"owl-tests\" }}\n{extra}\n",
                self.prefix,
                self.dbs.policy_section(),
                self.dir.path().join("bootstrap").display(),
                self.state_file().display(),
            ),
        )
    }

    async fn syncer(&self, extra: &str, dry_run: bool) -> Syncer {
        let p = Policy::parse(&self.policy_text(extra), "sync.toml", self.dir.path())
            .unwrap_or_else(|e| panic!("{e}"));
        Syncer::new(
            p,
            SyncOptions {
                dry_run,
                lambda_credentials: Some(owl::lambda::StaticCredentials::emulator()),
            },
        )
        .await
        .expect("syncer")
    }

    /// The policy of a sync polling `controller` with guest's key, one route
    /// (`action`, `function` templates as in the policy file).
    fn polling_policy(&self, controller: &str, action: &str, function: &str) -> String {
        let key_file = self.dir.path().join("sync.key");
        std::fs::write(&key_file, format!("{}\n", guest_key())).unwrap();
        policy(
            controller,
            &self.lambda,
            &format!(
                "[[route]]\naction = \"{action}\"\nfunction = \"{}-{function}\"\n\n\
                 [sync]\nrole = \"{ROLE}\"\nsource = \"controller\"\nkey_file = \"{}\"\nbootstrap = \"{}\"\n",
                self.prefix,
                key_file.display(),
                self.dir.path().join("bootstrap").display()
            ),
        )
    }

    /// A syncer for a policy text made here.
    async fn syncer_for(text: &str) -> Syncer {
        Syncer::new(
            Policy::parse(text, "sync.toml", Path::new("/")).unwrap(),
            SyncOptions {
                dry_run: false,
                lambda_credentials: Some(owl::lambda::StaticCredentials::emulator()),
            },
        )
        .await
        .unwrap()
    }

    fn doc_url(&self, id: &str) -> String {
        format!(
            "{}/{}/{}",
            self.dbs.url,
            self.dbs.whisks,
            owl::net::encode_segment(id)
        )
    }

    /// Creates or replaces an action document (`exec` as OpenWhisk stores it).
    async fn put_action(&self, id: &str, exec: Value, parameters: Value, limits: Value) {
        self.put_action_at(id, "0.0.1", exec, parameters, limits)
            .await;
    }

    /// Like `put_action`, with the document's `version`.
    async fn put_action_at(
        &self,
        id: &str,
        version: &str,
        exec: Value,
        parameters: Value,
        limits: Value,
    ) {
        let (ns, name) = id.rsplit_once('/').unwrap();
        let mut doc = json!({
            "entityType": "action", "namespace": ns, "name": name, "version": version,
            "publish": false, "exec": exec, "parameters": parameters,
            "annotations": [{"key": "exec", "value": "nodejs:20"}],
            "limits": limits, "updated": 1_700_000_000_000_i64
        });
        if let Some(rev) = self.rev(id).await {
            doc["_rev"] = json!(rev);
        }
        let r = client()
            .put(self.doc_url(id))
            .json(&doc)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "PUT {id}: {}",
            r.text().await.unwrap()
        );
    }

    async fn rev(&self, id: &str) -> Option<String> {
        let r = client().get(self.doc_url(id)).send().await.unwrap();
        if r.status() != 200 {
            return None;
        }
        let v: Value = r.json().await.unwrap();
        v["_rev"].as_str().map(str::to_string)
    }

    async fn delete_action(&self, id: &str) {
        let rev = self.rev(id).await.expect("document to delete");
        let r = client()
            .delete(format!("{}?rev={rev}", self.doc_url(id)))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

fn limits(timeout_ms: u64, memory: u64) -> Value {
    json!({"timeout": timeout_ms, "memory": memory, "logs": 10, "concurrency": 1})
}

fn node(code: &str) -> Value {
    json!({"kind": "nodejs:20", "code": code, "binary": false})
}

async fn sdk() -> aws_sdk_lambda::Client {
    lambda_client(&lambda().await.endpoint).await
}

fn outcome(report: &owl::sync::status::Report, action: &str) -> Outcome {
    report
        .get(action)
        .unwrap_or_else(|| panic!("{action} not in the report:\n{report}"))
        .outcome
}

#[tokio::test]
async fn an_action_gets_a_function_that_serves_it_and_follows_its_changes() {
    let w = World::new().await;
    w.put_action(
        "guest/hello",
        node(NODE_V1),
        json!([{"key": "TOKEN", "value": "t0ken", "init": true}]),
        limits(5000, 192),
    )
    .await;
    let sync = w.syncer("", false).await;
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/hello"),
        Outcome::Created,
        "{report}"
    );

    // The function's configuration follows the action.
    let lambda = sdk().await;
    let name = w.function("hello");
    let f = lambda
        .get_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let c = f.configuration().unwrap();
    assert_eq!(c.runtime().unwrap().as_str(), "provided.al2023");
    assert_eq!(c.memory_size(), Some(192));
    assert_eq!(
        c.timeout(),
        Some(6),
        "the 5 s limit plus a second for the runtime"
    );
    assert_eq!(c.role(), Some(ROLE));
    assert_eq!(c.handler(), Some("action.js"));
    let env = c.environment().unwrap().variables().unwrap();
    assert_eq!(env["OW_ACTION_KIND"], "nodejs:20");
    assert_eq!(
        env["TOKEN"], "t0ken",
        "init parameters become the environment"
    );
    let tags = f.tags().unwrap();
    assert_eq!(tags["owl:managed-by"], "owl-sync");
    assert_eq!(tags["owl:action"], "guest/hello");
    assert_eq!(tags["team"], "owl-tests");
    let alias = lambda
        .get_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    let first_version = alias.function_version().unwrap().to_string();
    assert_ne!(first_version, "$LATEST");

    // Invoked through owl, the action's own code answers as OpenWhisk would.
    let gw = TestGateway::start(&w.policy_text("")).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/hello", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"name":"owl"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-openwhisk-activation-id"));
    assert_eq!(body["response"]["status"], "success");
    assert_eq!(body["response"]["result"]["greeting"], "hello owl");
    assert_eq!(body["response"]["result"]["v"], 1);
    assert_eq!(body["response"]["result"]["token"], "t0ken");
    assert_eq!(body["response"]["result"]["kind"], "/guest/hello");

    // New code: a new version, and the alias the gateway calls moves to it.
    w.put_action("guest/hello", node(NODE_V2), json!([]), limits(5000, 256))
        .await;
    let report = sync.once().await.unwrap();
    let r = report.get("guest/hello").unwrap();
    assert_eq!(r.outcome, Outcome::Updated, "{report}");
    assert!(r.detail.contains("code"), "{report}");
    assert!(
        r.detail.contains("memory") && r.detail.contains("environment"),
        "{report}"
    );
    let alias = lambda
        .get_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_ne!(alias.function_version().unwrap(), first_version);
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/hello", "blocking=true&result=true"),
        Some(&guest_auth()),
        Some(r#"{"name":"owl"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"greeting": "hi owl", "v": 2}));

    // Nothing changed: reconciling again from the beginning touches nothing.
    std::fs::remove_file(w.state_file()).unwrap();
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/hello"),
        Outcome::Unchanged,
        "{report}"
    );

    // Deleted: the function goes.
    w.delete_action("guest/hello").await;
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/hello"),
        Outcome::Deleted,
        "{report}"
    );
    let gone = lambda.get_function().function_name(&name).send().await;
    assert!(gone.is_err(), "the function must be gone");

    let metrics = sync.metrics().render();
    for line in [
        "owl_sync_actions_total{outcome=\"created\"} 1",
        "owl_sync_actions_total{outcome=\"updated\"} 1",
        "owl_sync_actions_total{outcome=\"deleted\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    gw.stop().await;
}

/// The environment variables of function `name`.
async fn environment(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
) -> std::collections::HashMap<String, String> {
    lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .unwrap()
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default()
}

/// An action in a package is initialised with its package's init parameters beneath
/// its own, as OpenWhisk's invoker initialises it: `resolveActionAndMergeParameters`
/// calls `inherit(package.parameters)`, `inherit(p) = copy(parameters = p ++
/// parameters)` [OW common/scala/src/main/scala/org/apache/openwhisk/core/entity/
/// WhiskAction.scala:216, :622-647], and `partitionArguments` hands the merged init
/// parameters to `/init` [OW core/invoker/.../containerpool/ContainerProxy.scala:1091].
/// Updating the package updates its actions' functions.
#[tokio::test]
async fn an_action_in_a_package_inherits_the_package_s_init_parameters() {
    let w = World::new().await;
    let put_package = |parameters: Value| {
        let url = w.doc_url("guest/utils");
        async move {
            let mut doc = json!({
                "entityType": "package", "namespace": "guest", "name": "utils",
                "version": "0.0.1", "publish": false, "binding": {},
                "parameters": parameters, "annotations": [], "updated": 1_700_000_000_000_i64
            });
            if let Ok(r) = client().get(&url).send().await
                && r.status() == 200
            {
                let v: Value = r.json().await.unwrap();
                doc["_rev"] = v["_rev"].clone();
            }
            let r = client().put(&url).json(&doc).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    };
    put_package(json!([
        {"key": "REGION", "value": "eu-west-1", "init": true},
        {"key": "TOKEN", "value": "package", "init": true},
        {"key": "MODE", "value": "fast", "init": true},
        {"key": "limit", "value": 10}
    ]))
    .await;
    w.put_action(
        "guest/utils/hello",
        node(NODE_V1),
        json!([
            {"key": "TOKEN", "value": "action", "init": true},
            {"key": "MODE", "value": "slow"}
        ]),
        limits(3000, 256),
    )
    .await;
    let route = format!(
        "\n[[route]]\naction = \"guest/utils/*\"\nfunction = \"{}-{{namespace}}-{{package}}-{{action}}\"\n",
        w.prefix
    );
    let sync = w.syncer(&route, false).await;
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/utils/hello"),
        Outcome::Created,
        "{report}"
    );
    let lambda = sdk().await;
    let name = format!("{}-guest-utils-hello", w.prefix);
    let env = environment(&lambda, &name).await;
    assert_eq!(
        env.get("REGION").map(String::as_str),
        Some("eu-west-1"),
        "{env:?}"
    );
    assert_eq!(
        env.get("TOKEN").map(String::as_str),
        Some("action"),
        "the action's own value wins: {env:?}"
    );
    assert!(
        !env.contains_key("MODE"),
        "redefined by the action without `init`, MODE is a run argument: {env:?}"
    );
    assert!(!env.contains_key("limit"), "not an init parameter: {env:?}");

    // The package changes: the function follows from the feed alone.
    put_package(json!([
        {"key": "REGION", "value": "us-east-2", "init": true},
        {"key": "TOKEN", "value": "package", "init": true}
    ]))
    .await;
    let report = sync.once().await.unwrap();
    let r = report
        .get("guest/utils/hello")
        .unwrap_or_else(|| panic!("the package's action is handled again:\n{report}"));
    assert_eq!(r.outcome, Outcome::Updated, "{report}");
    assert!(r.detail.contains("environment"), "{report}");
    let env = environment(&lambda, &name).await;
    assert_eq!(
        env.get("REGION").map(String::as_str),
        Some("us-east-2"),
        "{env:?}"
    );
    assert_eq!(
        env.get("TOKEN").map(String::as_str),
        Some("action"),
        "{env:?}"
    );

    // Nothing changed since: a pass from the beginning finds it in step.
    std::fs::remove_file(w.state_file()).unwrap();
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/utils/hello"),
        Outcome::Unchanged,
        "{report}"
    );
}

/// `$LATEST`'s description, and the alias `live`'s version and its description.
async fn descriptions(lambda: &aws_sdk_lambda::Client, name: &str) -> (String, String, String) {
    let latest = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .unwrap();
    let alias = lambda
        .get_alias()
        .function_name(name)
        .name("live")
        .send()
        .await
        .unwrap();
    let version = alias.function_version().unwrap().to_string();
    let published = lambda
        .get_function_configuration()
        .function_name(name)
        .qualifier(&version)
        .send()
        .await
        .unwrap();
    (
        latest.description().unwrap_or_default().to_string(),
        version,
        published.description().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn the_description_names_the_action_version_after_every_update() {
    let w = World::new().await;
    let lambda = sdk().await;
    let name = w.function("versioned");
    let described = |v: &str| format!("OpenWhisk action /guest/versioned {v} (owl sync)");
    w.put_action_at(
        "guest/versioned",
        "0.0.1",
        node(NODE_V1),
        json!([]),
        limits(3000, 256),
    )
    .await;
    let sync = w.syncer("", false).await;
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/versioned"),
        Outcome::Created,
        "{report}"
    );
    let (latest, v1, published) = descriptions(&lambda, &name).await;
    assert_eq!(latest, described("0.0.1"));
    assert_eq!(published, described("0.0.1"));

    // New code, nothing else: `$LATEST` and the new version both name 0.0.2.
    w.put_action_at(
        "guest/versioned",
        "0.0.2",
        node(NODE_V2),
        json!([]),
        limits(3000, 256),
    )
    .await;
    let report = sync.once().await.unwrap();
    let r = report.get("guest/versioned").unwrap();
    assert_eq!(r.outcome, Outcome::Updated, "{report}");
    assert!(r.detail.contains("code"), "{report}");
    let (latest, v2, published) = descriptions(&lambda, &name).await;
    assert_ne!(v2, v1, "new code is a new version");
    assert_eq!(
        latest,
        described("0.0.2"),
        "a code-only update renames $LATEST"
    );
    assert_eq!(published, described("0.0.2"));

    // The version alone: an update of the description; the alias's version runs the
    // same code and settings, so it stays.
    w.put_action_at(
        "guest/versioned",
        "0.0.3",
        node(NODE_V2),
        json!([]),
        limits(3000, 256),
    )
    .await;
    let report = sync.once().await.unwrap();
    let r = report.get("guest/versioned").unwrap();
    assert_eq!(
        r.outcome,
        Outcome::Updated,
        "a version-only change is an update:\n{report}"
    );
    assert_eq!(r.detail, "description", "{report}");
    let (latest, v3, _) = descriptions(&lambda, &name).await;
    assert_eq!(latest, described("0.0.3"));
    assert_eq!(v3, v2);

    // In step: reconciling again from the beginning changes nothing.
    std::fs::remove_file(w.state_file()).unwrap();
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/versioned"),
        Outcome::Unchanged,
        "{report}"
    );
}

#[tokio::test]
async fn code_in_attachments_and_zips_is_packaged_for_the_runtime() {
    let w = World::new().await;
    // Python source in a CouchDB attachment, as OpenWhisk stores code over 16 KB.
    w.put_action(
        "guest/py",
        json!({"kind": "python:3.11", "code": {"attachmentName": "couch:0a1b2c", "attachmentType": "text/plain; charset=UTF-8"}, "binary": false}),
        json!([]),
        limits(3000, 256),
    )
    .await;
    let rev = w.rev("guest/py").await.unwrap();
    let r = client()
        .put(format!("{}/0a1b2c?rev={rev}", w.doc_url("guest/py")))
        .header("content-type", "text/plain")
        .body(PYTHON)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // A Node.js zip (base64 inline), with its own entry point.
    let zip = owl::demo::ministack::zip_files(&[(
        "index.js".into(),
        b"exports.run = (p) => ({ zipped: true, n: p.n });".to_vec(),
        false,
    )])
    .unwrap();
    use base64::Engine;
    w.put_action(
        "guest/zipped",
        json!({"kind": "nodejs:20", "code": base64::engine::general_purpose::STANDARD.encode(zip), "binary": true, "main": "run"}),
        json!([]),
        limits(3000, 256),
    )
    .await;
    let report = w.syncer("", false).await.once().await.unwrap();
    assert_eq!(outcome(&report, "guest/py"), Outcome::Created, "{report}");
    assert_eq!(
        outcome(&report, "guest/zipped"),
        Outcome::Created,
        "{report}"
    );
    let gw = TestGateway::start(&w.policy_text("")).await;
    for (action, body, expected) in [
        ("guest/py", r#"{"n":41}"#, json!({"py": 42})),
        (
            "guest/zipped",
            r#"{"n":7}"#,
            json!({"zipped": true, "n": 7}),
        ),
    ] {
        let (status, _, result) = invoke(
            &gw.invoke_url(action, "blocking=true&result=true"),
            Some(&guest_auth()),
            Some(body),
        )
        .await;
        assert_eq!((status, result), (200, expected), "{action}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_restart_resumes_from_the_saved_sequence() {
    let w = World::new().await;
    w.put_action("guest/first", node(NODE_V1), json!([]), limits(3000, 256))
        .await;
    let report = w.syncer("", false).await.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/first"),
        Outcome::Created,
        "{report}"
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(w.state_file()).unwrap()).unwrap();
    assert_eq!(state["db"], w.dbs.whisks.as_str());

    // A new process: only what changed since the saved sequence is read.
    w.put_action("guest/second", node(NODE_V2), json!([]), limits(3000, 256))
        .await;
    let report = w.syncer("", false).await.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/second"),
        Outcome::Created,
        "{report}"
    );
    assert!(
        report.get("guest/first").is_none(),
        "the first action was handled before the restart:\n{report}"
    );

    // Without the state, the feed is read from the beginning (and nothing changes).
    std::fs::remove_file(w.state_file()).unwrap();
    let report = w.syncer("", false).await.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/first"),
        Outcome::Unchanged,
        "{report}"
    );
    assert_eq!(
        outcome(&report, "guest/second"),
        Outcome::Unchanged,
        "{report}"
    );
}

#[tokio::test]
async fn a_running_sync_follows_the_feed() {
    let w = World::new().await;
    let sync = std::sync::Arc::new(w.syncer("", false).await);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let sync = sync.clone();
        tokio::spawn(async move {
            sync.run(async {
                let _ = stopped.await;
            })
            .await
        })
    };
    w.put_action("guest/live", node(NODE_V1), json!([]), limits(3000, 256))
        .await;
    let lambda = sdk().await;
    let name = w.function("live");
    let mut found = false;
    for _ in 0..150 {
        if lambda
            .get_alias()
            .function_name(&name)
            .name("live")
            .send()
            .await
            .is_ok()
        {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(found, "the running sync did not create {name}");
    assert_eq!(
        sync.metrics().status_json()["guest/live"]["outcome"],
        "created"
    );
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), runner)
        .await
        .expect("sync stops when asked")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn functions_owl_did_not_create_are_left_alone() {
    let w = World::new().await;
    let name = w.function("theirs");
    let spec = owl::demo::ministack::FunctionSpec {
        name: name.clone(),
        runtime: "python3.11".into(),
        handler: "f.main".into(),
        files: vec![("f.py".into(), b"def main(e, c): return 1".to_vec(), false)],
        timeout_s: 3,
        environment: Vec::new(),
    };
    owl::demo::ministack::deploy(&w.lambda, "us-east-1", &spec)
        .await
        .unwrap();
    let lambda = sdk().await;
    let before = lambda
        .get_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let sha = before
        .configuration()
        .unwrap()
        .code_sha256()
        .unwrap()
        .to_string();

    w.put_action("guest/theirs", node(NODE_V1), json!([]), limits(3000, 256))
        .await;
    let report = w.syncer("", false).await.once().await.unwrap();
    let r = report.get("guest/theirs").unwrap();
    assert_eq!(r.outcome, Outcome::Conflict, "{report}");
    assert!(r.detail.contains("did not create"), "{report}");
    w.delete_action("guest/theirs").await;
    let report = w.syncer("", false).await.once().await.unwrap();
    assert!(report.get("guest/theirs").is_none(), "{report}");

    let after = lambda
        .get_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let c = after.configuration().unwrap();
    assert_eq!(c.code_sha256(), Some(sha.as_str()), "code untouched");
    assert_eq!(c.runtime().unwrap().as_str(), "python3.11");
    assert!(
        after
            .tags()
            .is_none_or(|t| !t.contains_key("owl:managed-by"))
    );
    let _ = lambda.delete_function().function_name(&name).send().await;
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let w = World::new().await;
    w.put_action("guest/planned", node(NODE_V1), json!([]), limits(3000, 256))
        .await;
    let report = w.syncer("", true).await.once().await.unwrap();
    let text = report.to_string();
    assert!(
        text.contains("create     guest/planned") && text.contains(&w.function("planned")),
        "{text}"
    );
    assert!(text.contains("alias live"), "{text}");
    let lambda = sdk().await;
    assert!(
        lambda
            .get_function()
            .function_name(w.function("planned"))
            .send()
            .await
            .is_err(),
        "a dry run creates nothing"
    );
    assert!(!w.state_file().exists(), "a dry run saves no sequence");

    w.syncer("", false).await.once().await.unwrap();
    let sha = |f: aws_sdk_lambda::operation::get_function::GetFunctionOutput| {
        f.configuration()
            .unwrap()
            .code_sha256()
            .unwrap()
            .to_string()
    };
    let before = sha(lambda
        .get_function()
        .function_name(w.function("planned"))
        .send()
        .await
        .unwrap());
    w.put_action("guest/planned", node(NODE_V2), json!([]), limits(3000, 256))
        .await;
    let report = w.syncer("", true).await.once().await.unwrap();
    assert!(
        report.to_string().contains("update     guest/planned"),
        "{report}"
    );
    let after = sha(lambda
        .get_function()
        .function_name(w.function("planned"))
        .send()
        .await
        .unwrap());
    assert_eq!(before, after, "a dry run uploads nothing");

    // The command line prints the same plan.
    let policy = w.dir.path().join("sync.toml");
    std::fs::write(&policy, w.policy_text("")).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_owl"))
        .args(["sync", "--dry-run", "--policy"])
        .arg(&policy)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("OWL_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("update     guest/planned"), "{stdout}");
}

#[tokio::test]
async fn sequences_and_blackbox_actions_are_skipped_and_fall_back_to_the_controller() {
    let mut w = World::new().await;
    w.controller = Some(
        standin(vec![
            StandinAction::new("guest/boxed", Behaviour::Echo).kind("blackbox"),
        ])
        .await,
    );
    w.put_action(
        "guest/seq",
        json!({"kind": "sequence", "components": ["/guest/a", "/guest/b"]}),
        json!([]),
        limits(3000, 256),
    )
    .await;
    // An action that had a function and became a blackbox loses its function.
    w.put_action("guest/boxed", node(NODE_V1), json!([]), limits(3000, 256))
        .await;
    let report = w.syncer("", false).await.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/boxed"),
        Outcome::Created,
        "{report}"
    );
    w.put_action(
        "guest/boxed",
        json!({"kind": "blackbox", "image": "openwhisk/example", "binary": false}),
        json!([]),
        limits(3000, 256),
    )
    .await;
    let report = w.syncer("", false).await.once().await.unwrap();
    let r = report.get("guest/boxed").unwrap();
    assert_eq!(r.outcome, Outcome::Skipped, "{report}");
    assert!(
        r.detail.contains("container images") && r.detail.contains("deleted"),
        "{report}"
    );
    assert!(
        report.get("guest/seq").is_none(),
        "handled before:\n{report}"
    );
    std::fs::remove_file(w.state_file()).unwrap();
    let report = w.syncer("", false).await.once().await.unwrap();
    let r = report.get("guest/seq").unwrap();
    assert_eq!(r.outcome, Outcome::Skipped, "{report}");
    assert!(r.detail.contains("sequence"), "{report}");
    let lambda = sdk().await;
    for a in ["seq", "boxed"] {
        assert!(
            lambda
                .get_function()
                .function_name(w.function(a))
                .send()
                .await
                .is_err(),
            "{a}"
        );
    }

    // The route covers the blackbox action, but with no function the invocation
    // goes to the controller.
    let gw = TestGateway::start(&w.policy_text("")).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/boxed", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"x":1}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers.get("x-owl-standin").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    gw.stop().await;
}

#[tokio::test]
async fn layers_are_chosen_by_kind() {
    let w = World::new().await;
    let lambda = sdk().await;
    let layer = lambda
        .publish_layer_version()
        .layer_name(format!("{}-py", w.prefix))
        .content(
            aws_sdk_lambda::types::LayerVersionContentInput::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(
                    owl::demo::ministack::zip_files(&[(
                        "bin/python3".into(),
                        b"#!/bin/sh\n".to_vec(),
                        true,
                    )])
                    .unwrap(),
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let arn = layer.layer_version_arn().unwrap().to_string();
    // No bundled runtime: only kinds with a layer get a function.
    let text = w
        .policy_text(&format!("[sync.layers]\npython = \"{arn}\"\n"))
        .replace(
            &format!(
                "bootstrap = \"{}\"\n",
                w.dir.path().join("bootstrap").display()
            ),
            "",
        );
    let p = Policy::parse(&text, "sync.toml", Path::new("/")).unwrap();
    assert!(p.sync.as_ref().unwrap().bootstrap.is_none());
    w.put_action(
        "guest/layered",
        json!({"kind": "python:3.11", "code": PYTHON, "binary": false}),
        json!([]),
        limits(3000, 256),
    )
    .await;
    w.put_action("guest/nolayer", node(NODE_V1), json!([]), limits(3000, 256))
        .await;
    let sync = Syncer::new(
        p,
        SyncOptions {
            dry_run: false,
            lambda_credentials: Some(owl::lambda::StaticCredentials::emulator()),
        },
    )
    .await
    .unwrap();
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/layered"),
        Outcome::Created,
        "{report}"
    );
    let r = report.get("guest/nolayer").unwrap();
    assert_eq!(r.outcome, Outcome::Skipped, "{report}");
    assert!(
        r.detail.contains("no runtime for kind nodejs:20"),
        "{report}"
    );
    let c = lambda
        .get_function_configuration()
        .function_name(w.function("layered"))
        .send()
        .await
        .unwrap();
    let layers: Vec<&str> = c.layers().iter().filter_map(|l| l.arn()).collect();
    assert_eq!(layers, vec![arn.as_str()]);
    assert_eq!(c.handler(), Some("action.py"));
}

/// A fake controller API serving a mutable set of actions to one key.
mod fake_controller {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// Entities by name (`name`, or `pkg/name` for an action in a package).
    pub type Actions = Arc<Mutex<BTreeMap<String, Value>>>;

    fn authorized(h: &HeaderMap) -> bool {
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&super::guest_auth())
    }

    pub async fn start(actions: Actions) -> String {
        start_with_packages(actions, Actions::default()).await
    }

    /// Like `start`, with packages: listed under `…/packages`, and their actions
    /// read at `…/actions/{pkg}/{name}` (stored as the controller answers them, with
    /// the package's parameters merged in).
    pub async fn start_with_packages(actions: Actions, packages: Actions) -> String {
        let app = axum::Router::new()
            .route(
                "/api/v1/namespaces",
                get(|h: HeaderMap| async move {
                    if !authorized(&h) {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "no"})));
                    }
                    (StatusCode::OK, axum::Json(json!(["guest"])))
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/actions",
                get(|State(a): State<Actions>, h: HeaderMap| async move {
                    if !authorized(&h) {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "no"})));
                    }
                    let list: Vec<Value> = a
                        .lock()
                        .unwrap()
                        .values()
                        .map(|v| {
                            let mut v = v.clone();
                            v["exec"].as_object_mut().unwrap().remove("code");
                            v
                        })
                        .collect();
                    (StatusCode::OK, axum::Json(Value::Array(list)))
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/actions/{name}",
                get(|State(a): State<Actions>, Path((_ns, name)): Path<(String, String)>| async move {
                    match a.lock().unwrap().get(&name) {
                        Some(v) => (StatusCode::OK, axum::Json(v.clone())),
                        None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "The requested resource does not exist."}))),
                    }
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/actions/{pkg}/{name}",
                get(|State(a): State<Actions>, Path((_ns, pkg, name)): Path<(String, String, String)>| async move {
                    match a.lock().unwrap().get(&format!("{pkg}/{name}")) {
                        Some(v) => (StatusCode::OK, axum::Json(v.clone())),
                        None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "The requested resource does not exist."}))),
                    }
                }),
            )
            .with_state(actions)
            .route(
                "/api/v1/namespaces/{ns}/packages",
                get(move |h: HeaderMap| async move {
                    if !authorized(&h) {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "no"})));
                    }
                    let list: Vec<Value> = packages.lock().unwrap().values().cloned().collect();
                    (StatusCode::OK, axum::Json(Value::Array(list)))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
}

#[tokio::test]
async fn the_controller_can_be_polled_instead_of_the_database() {
    let w = World::new().await;
    let actions: fake_controller::Actions = Default::default();
    let action = |code: &str, version: &str| {
        json!({"namespace": "guest", "name": "polled", "version": version, "updated": 1,
               "exec": {"kind": "nodejs:20", "code": code, "binary": false},
               "limits": limits(3000, 256), "parameters": [], "annotations": []})
    };
    actions
        .lock()
        .unwrap()
        .insert("polled".into(), action(NODE_V1, "0.0.1"));
    let controller = fake_controller::start(actions.clone()).await;
    let text = w.polling_policy(&controller, "guest/*", "{namespace}-{action}");
    let key_file = w.dir.path().join("sync.key");
    let sync = World::syncer_for(&text).await;
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/polled"),
        Outcome::Created,
        "{report}"
    );
    // Unchanged listings are not read again.
    let report = sync.once().await.unwrap();
    assert!(report.get("guest/polled").is_none(), "{report}");
    actions
        .lock()
        .unwrap()
        .insert("polled".into(), action(NODE_V2, "0.0.2"));
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/polled"),
        Outcome::Updated,
        "{report}"
    );
    let lambda = sdk().await;
    assert!(
        lambda
            .get_function()
            .function_name(w.function("polled"))
            .send()
            .await
            .is_ok()
    );
    actions.lock().unwrap().clear();
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/polled"),
        Outcome::Deleted,
        "{report}"
    );
    assert!(
        lambda
            .get_function()
            .function_name(w.function("polled"))
            .send()
            .await
            .is_err()
    );

    // A wrong key is a clear error, not an empty source that deletes everything.
    std::fs::write(&key_file, "not-a-key").unwrap();
    let err = Syncer::new(
        Policy::parse(&text, "sync.toml", Path::new("/")).unwrap(),
        SyncOptions::default(),
    )
    .await
    .err()
    .expect("a malformed key is refused");
    assert!(err.to_string().contains("uuid:key"), "{err}");
}

/// Polling the controller, a change of a package is seen on its actions: updating a
/// package moves the package's version and update time, not its actions'
/// [OW core/controller/src/main/scala/org/apache/openwhisk/core/controller/Packages.scala
/// `update`, WhiskPackage.scala `revision`], so the listing of packages is compared too;
/// the controller's `GET …/actions/{pkg}/{name}` answers with the package's parameters
/// merged in [OW …/controller/Actions.scala:366 `resolveActionAndMergeParameters`].
#[tokio::test]
async fn polling_sees_a_package_change_on_its_actions() {
    let w = World::new().await;
    let actions: fake_controller::Actions = Default::default();
    let packages: fake_controller::Actions = Default::default();
    let action = |region: &str| {
        json!({"namespace": "guest/utils", "name": "hello", "version": "0.0.1", "updated": 1,
               "exec": {"kind": "nodejs:20", "code": NODE_V1, "binary": false},
               "limits": limits(3000, 256), "annotations": [],
               "parameters": [{"key": "REGION", "value": region, "init": true}]})
    };
    let package = |version: &str| {
        json!({"namespace": "guest", "name": "utils", "version": version, "updated": 1,
               "binding": false, "publish": false})
    };
    actions
        .lock()
        .unwrap()
        .insert("utils/hello".into(), action("eu-west-1"));
    packages
        .lock()
        .unwrap()
        .insert("utils".into(), package("0.0.1"));
    let controller = fake_controller::start_with_packages(actions.clone(), packages.clone()).await;
    let text = w.polling_policy(
        &controller,
        "guest/utils/*",
        "{namespace}-{package}-{action}",
    );
    let sync = World::syncer_for(&text).await;
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/utils/hello"),
        Outcome::Created,
        "{report}"
    );
    let lambda = sdk().await;
    let name = format!("{}-guest-utils-hello", w.prefix);
    assert_eq!(environment(&lambda, &name).await["REGION"], "eu-west-1");
    let report = sync.once().await.unwrap();
    assert!(report.get("guest/utils/hello").is_none(), "{report}");

    // The package is updated: the action's own listing entry does not move.
    actions
        .lock()
        .unwrap()
        .insert("utils/hello".into(), action("us-east-2"));
    packages
        .lock()
        .unwrap()
        .insert("utils".into(), package("0.0.2"));
    let report = sync.once().await.unwrap();
    assert_eq!(
        outcome(&report, "guest/utils/hello"),
        Outcome::Updated,
        "{report}"
    );
    assert_eq!(environment(&lambda, &name).await["REGION"], "us-east-2");
}

#[tokio::test]
async fn throttled_calls_are_retried_then_reported_and_the_sequence_waits() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut w = World::new().await;
    // A Lambda control plane that throttles every call.
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [
                    ("x-amzn-errortype", "TooManyRequestsException"),
                    ("content-type", "application/json"),
                ],
                r#"{"Type":"User","message":"Rate exceeded","Reason":"CallerRateLimitExceeded"}"#,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    w.lambda = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    w.put_action("guest/busy", node(NODE_V1), json!([]), limits(3000, 256))
        .await;
    let sync = w.syncer("retries = 2\n", false).await;
    let started = std::time::Instant::now();
    let report = sync.once().await.unwrap();
    let r = report.get("guest/busy").unwrap();
    assert_eq!(r.outcome, Outcome::Failed, "{report}");
    assert!(r.detail.contains("TooManyRequestsException"), "{report}");
    assert!(
        report
            .get("(full pass)")
            .is_some_and(|r| r.outcome == Outcome::Failed),
        "{report}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        6,
        "one call and two retries, for the action and for the full pass"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "retries back off"
    );
    assert!(
        !w.state_file().exists(),
        "the sequence is not saved past a failed action"
    );
    assert!(
        sync.metrics()
            .render()
            .contains("owl_sync_lambda_retries_total{reason=\"throttled\"} 4")
    );
}
