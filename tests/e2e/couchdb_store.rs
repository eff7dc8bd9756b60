//! The `couchdb` activation store against a real CouchDB-compatible server
//! (pouchdb-server): records land in OpenWhisk's activations database in the form an
//! invoker writes, and the controller serves them with no interception by owl.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn couch_policy(controller: &str, lambda: &str, couch_url: &str, db: &str, extra: &str) -> String {
    policy(
        controller,
        lambda,
        &format!(
            r#"
[[route]]
action = "guest/hello"
function = "owl-test-hello"

[activations]
store = "couchdb"
{extra}

[couchdb]
url = "{couch_url}"
activations_db = "{db}"
"#
        ),
    )
}

fn couch_client(url: &str) -> owl::couchdb::CouchDb {
    owl::couchdb::CouchDb::new(&owl::policy::CouchDbConfig {
        url: url.parse().unwrap(),
        ca_file: None,
        accept_invalid_certs: false,
        username: None,
        password_file: None,
        db_prefix: "whisk_local_".into(),
        activations_db: "unused".into(),
        subjects_db: "unused".into(),
        whisks_db: "unused".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn records_land_in_the_activations_database_as_an_invoker_writes_them() {
    let lambda = lambda().await;
    let couch = couchdb().await;
    let db = couch.fresh_db("whisk_test_activations_").await;
    let c = StandinBuilder::with_guest()
        .action(StandinAction::new("guest/hello", Behaviour::Echo))
        .activations_from_couchdb(couch_client(&couch.url), &db)
        .spawn()
        .await
        .unwrap();
    let gw = TestGateway::start(&couch_policy(
        &c.url(),
        &lambda.endpoint,
        &couch.url,
        &db,
        "",
    ))
    .await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/hello", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"name":"couch"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = headers["x-openwhisk-activation-id"]
        .to_str()
        .unwrap()
        .to_string();
    gw.flush().await;

    // The stored document, read straight from the database.
    let doc: Value = client()
        .get(format!("{}/{db}/guest%2F{id}", couch.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["_id"], format!("guest/{id}"));
    assert_eq!(doc["entityType"], "activation");
    assert_eq!(doc["activationId"], id.as_str());
    assert_eq!(doc["namespace"], "guest");
    assert_eq!(doc["name"], "hello");
    assert_eq!(doc["response"]["statusCode"], 0);
    assert_eq!(
        doc["response"]["result"],
        json!({"greeting": "Hello, couch!"})
    );
    assert!(doc["response"].get("status").is_none() && doc["response"].get("success").is_none());
    assert!(doc["updated"].is_i64());
    assert!(
        doc["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().ends_with("stdout: hello log line"))
    );
    assert_eq!(
        doc["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == "path")
            .unwrap()["value"],
        "guest/hello"
    );

    // Through owl: proxied to the controller, which reads the database itself.
    let r = client()
        .get(format!("{}/api/v1/namespaces/_/activations/{id}", gw.url))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-owl-standin"],
        "true",
        "the controller served it"
    );
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["response"]["status"], "success");
    assert_eq!(rec["response"]["success"], true);
    assert_eq!(rec["logs"], doc["logs"]);
    let metrics = client()
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("owl_activation_records_written_total{store=\"couchdb\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn couchdb_down_is_counted_and_surfaced_never_fatal() {
    let lambda = lambda().await;
    let c = standin(vec![StandinAction::new("guest/hello", Behaviour::Echo)]).await;
    let p = couch_policy(
        &c.url(),
        &lambda.endpoint,
        &upstream::down(),
        "whisk_local_activations",
        "write_retry = \"500ms\"",
    );
    let gw = TestGateway::start(&p).await;
    let (status, _, _) = invoke(
        &gw.invoke_url("guest/hello", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert_eq!(status, 200, "invocations are still answered");
    let (status, _, _) = invoke(&gw.invoke_url("guest/hello", ""), Some(&guest_auth()), None).await;
    assert_eq!(
        status, 202,
        "the journal is local: non-blocking calls are still accepted"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.flush().await;
    let r = client()
        .get(format!("{}/readyz", gw.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["checks"]["activation_store"]["kind"], "couchdb");
    assert!(
        ready["checks"]["activation_store"]["error"]
            .as_str()
            .unwrap()
            .contains("CouchDB")
    );
    let metrics = client()
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("owl_activation_records_deferred_total{store=\"couchdb\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("owl_activation_record_write_failures_total{store=\"couchdb\"}"),
        "{metrics}"
    );
}
