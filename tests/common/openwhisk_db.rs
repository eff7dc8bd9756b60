//! OpenWhisk's CouchDB databases, seeded into pouchdb-server for tests: the subjects
//! database (subject and limits documents, and an `identities` view with the keys
//! and values OpenWhisk's view emits, written here from the documented semantics) and
//! the whisks database (action and package documents in OpenWhisk's stored form).

use super::{CouchFixture, client};
use serde_json::{Value, json};

/// The `identities` view: for every subject that is not blocked, for each of its
/// namespaces, key `[name]` and key `[uuid, key]`, value naming the namespace's limits
/// document so `include_docs=true` returns it.
const IDENTITIES_MAP: &str = r#"function (doc) {
  if (doc.namespaces && !doc.blocked) {
    doc.namespaces.forEach(function (ns) {
      var value = { _id: ns.name + '/limits', namespace: ns.name, uuid: ns.uuid, key: ns.key };
      emit([ns.name], value);
      emit([ns.uuid, ns.key], value);
    });
  }
}"#;

/// A subjects and a whisks database with unique names.
pub struct OpenWhiskDbs {
    /// Server URL.
    pub url: String,
    /// Subjects database.
    pub subjects: String,
    /// Whisks database.
    pub whisks: String,
}

async fn put(url: &str, doc: &Value) {
    let r = client().put(url).json(doc).send().await.unwrap();
    assert!(
        r.status().is_success(),
        "PUT {url}: {}",
        r.text().await.unwrap()
    );
}

impl OpenWhiskDbs {
    /// Creates both databases and the identities view.
    pub async fn create(couch: &CouchFixture) -> Self {
        let subjects = couch.fresh_db("whisk_test_subjects_").await;
        let whisks = couch.fresh_db("whisk_test_whisks_").await;
        put(
            &format!("{}/{subjects}/_design/subjects.v2.0.0", couch.url),
            &json!({"views": {"identities": {"map": IDENTITIES_MAP}}, "language": "javascript"}),
        )
        .await;
        Self {
            url: couch.url.clone(),
            subjects,
            whisks,
        }
    }

    /// Adds a subject owning one namespace.
    pub async fn subject(
        &self,
        subject: &str,
        namespace: &str,
        uuid: &str,
        key: &str,
        blocked: bool,
    ) {
        let mut doc = json!({
            "subject": subject,
            "namespaces": [{"name": namespace, "uuid": uuid, "key": key}]
        });
        if blocked {
            doc["blocked"] = json!(true);
        }
        put(
            &format!("{}/{}/{}", self.url, self.subjects, urlencode(subject)),
            &doc,
        )
        .await;
    }

    /// Deletes a subject (revokes its keys).
    pub async fn delete_subject(&self, subject: &str) {
        let url = format!("{}/{}/{}", self.url, self.subjects, urlencode(subject));
        let doc: Value = client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rev = doc["_rev"].as_str().unwrap();
        let r = client()
            .delete(format!("{url}?rev={rev}"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Adds a namespace limits document.
    pub async fn limits(&self, namespace: &str, limits: Value) {
        put(
            &format!(
                "{}/{}/{}",
                self.url,
                self.subjects,
                urlencode(&format!("{namespace}/limits"))
            ),
            &limits,
        )
        .await;
    }

    /// Adds an action document (`ns/action` or `ns/pkg/action`).
    pub async fn action(&self, path: &str, params: Value, annotations: Value) {
        let (entity_ns, name) = path.rsplit_once('/').unwrap();
        put(
            &format!("{}/{}/{}", self.url, self.whisks, urlencode(path)),
            &json!({
                "entityType": "action",
                "namespace": entity_ns,
                "name": name,
                "version": "0.0.1",
                "publish": false,
                "exec": {"kind": "python:3", "code": "def main(args): return args", "binary": false},
                "parameters": params,
                "annotations": annotations,
                "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
                "updated": 1_700_000_000_000_i64
            }),
        )
        .await;
    }

    /// Adds a package document; `binding` is `Some(("ns", "pkg"))` for a binding.
    pub async fn package(
        &self,
        ns: &str,
        name: &str,
        publish: bool,
        binding: Option<(&str, &str)>,
        params: Value,
    ) {
        let binding = binding.map_or(json!({}), |(b, n)| json!({"namespace": b, "name": n}));
        put(
            &format!(
                "{}/{}/{}",
                self.url,
                self.whisks,
                urlencode(&format!("{ns}/{name}"))
            ),
            &json!({
                "entityType": "package",
                "namespace": ns,
                "name": name,
                "version": "0.0.1",
                "publish": publish,
                "binding": binding,
                "parameters": params,
                "annotations": [],
                "updated": 1_700_000_000_000_i64
            }),
        )
        .await;
    }

    /// The `[couchdb]` section naming these databases.
    pub fn policy_section(&self) -> String {
        format!(
            "[couchdb]\nurl = \"{}\"\nsubjects_db = \"{}\"\nwhisks_db = \"{}\"\n",
            self.url, self.subjects, self.whisks
        )
    }
}

fn urlencode(s: &str) -> String {
    owl::net::encode_segment(s)
}
