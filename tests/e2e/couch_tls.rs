//! CouchDB over https (issue 15 §18): a TLS-terminating front with a self-signed
//! certificate, forwarding bytes to the suite's pouchdb-server, stands in for an
//! https CouchDB. With `accept_invalid_certs` or a `ca_file` naming the certificate,
//! identities, action metadata, activation records and `owl sync`'s reads go through
//! it; without them the certificate is refused, with an error that says so.

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::openwhisk_db::OpenWhiskDbs;
use crate::common::*;
use owl::policy::Policy;
use owl::sync::status::Outcome;
use owl::sync::{SyncOptions, Syncer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A TLS front for a plain-http server: accepts TLS on 127.0.0.1 with a fresh
/// self-signed certificate for `localhost` and relays the decrypted bytes.
struct TlsFront {
    /// `https://localhost:<port>`.
    url: String,
    dir: tempfile::TempDir,
    /// Completed handshakes.
    handshakes: Arc<AtomicUsize>,
    /// Handshakes the client broke off (or that failed otherwise).
    refused: Arc<AtomicUsize>,
}

impl TlsFront {
    async fn start(upstream: &str) -> Self {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
        let acceptor =
            owl::server::tls::acceptor(&dir.path().join("cert.pem"), &dir.path().join("key.pem"))
                .unwrap();
        let upstream = upstream
            .strip_prefix("http://")
            .expect("a plain-http upstream")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let handshakes = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (done, failed) = (handshakes.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                let (done, failed) = (done.clone(), failed.clone());
                tokio::spawn(async move {
                    let mut tls = match acceptor.accept(tcp).await {
                        Ok(s) => s,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    done.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self {
            url,
            dir,
            handshakes,
            refused,
        }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// The databases (guest and its action `guest/hello`, an activations database) and
/// the TLS front before them.
struct World {
    dbs: OpenWhiskDbs,
    activations: String,
    front: TlsFront,
}

impl World {
    async fn new() -> Self {
        let couch = couchdb().await;
        let dbs = OpenWhiskDbs::create(couch).await;
        dbs.subject("guest@example.com", "guest", GUEST_UUID, GUEST_KEY, false)
            .await;
        dbs.action(
            "guest/hello",
            json!([{"key": "greeting", "value": "hi"}]),
            json!([]),
        )
        .await;
        let activations = couch.fresh_db("whisk_test_activations_").await;
        let front = TlsFront::start(&couch.url).await;
        Self {
            dbs,
            activations,
            front,
        }
    }

    /// `[couchdb]` at the https front; `tls` adds the CA options.
    fn couch_section(&self, tls: &str) -> String {
        format!(
            "[couchdb]\nurl = \"{}\"\nsubjects_db = \"{}\"\nwhisks_db = \"{}\"\nactivations_db = \"{}\"\ntimeout = \"5s\"\n{tls}\n",
            self.front.url, self.dbs.subjects, self.dbs.whisks, self.activations
        )
    }

    /// A gateway whose identities, metadata and activation records all come from
    /// (and go to) CouchDB over https; the controller is down.
    fn gateway_policy(&self, lambda: &str, tls: &str) -> String {
        policy(
            &upstream::down(),
            lambda,
            &format!(
                "[[route]]\naction = \"guest/*\"\nfunction = \"fn-{{namespace}}-{{action}}\"\n\n\
                 [auth]\nsource = \"couchdb\"\n\n[metadata]\nsource = \"couchdb\"\nttl = \"0s\"\nnegative_ttl = \"0s\"\n\n\
                 [activations]\nstore = \"couchdb\"\n\n{}",
                self.couch_section(tls)
            ),
        )
    }

    /// The activation document `id` as stored, read over plain http.
    async fn stored(&self, id: &str) -> Option<Value> {
        let r = client()
            .get(format!(
                "{}/{}/guest%2F{id}",
                self.dbs.url, self.activations
            ))
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            return None;
        }
        r.json().await.ok()
    }
}

/// Invokes `guest/hello` through a gateway whose `[couchdb]` has the CA options
/// `tls` gives for the world's front, and checks that the identity, the action's
/// metadata and the activation record all went over https.
async fn the_gateway_works_over_https(tls: impl Fn(&World) -> String) {
    let w = World::new().await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let gw = TestGateway::start(&w.gateway_policy(&fake.url, &tls(&w))).await;
    let (status, headers, body) = invoke(
        &gw.invoke_url("guest/hello", "blocking=true"),
        Some(&guest_auth()),
        Some(r#"{"name":"tls"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The identity: the subject document's id, from the subjects database.
    assert_eq!(body["subject"], "guest@example.com");
    assert_eq!(body["namespace"], "guest");
    // The metadata: the action's kind and parameters, from the whisks database.
    assert_eq!(annotation(&body, "kind").unwrap(), "python:3");
    assert_eq!(
        fake.calls()[0].body["value"],
        json!({"greeting": "hi", "name": "tls"})
    );
    assert_eq!(body["response"]["result"], json!({"ok": true}));
    // The record, written to the activations database.
    let id = headers["x-openwhisk-activation-id"]
        .to_str()
        .unwrap()
        .to_string();
    gw.flush().await;
    let doc = w
        .stored(&id)
        .await
        .expect("the activation record was written");
    assert_eq!(doc["activationId"], id.as_str());
    assert_eq!(doc["response"]["result"], json!({"ok": true}));
    assert!(w.front.handshakes() > 0, "CouchDB was reached over TLS");
    assert_eq!(w.front.refused(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn accept_invalid_certs_reaches_a_self_signed_couchdb() {
    the_gateway_works_over_https(|_| "accept_invalid_certs = true".into()).await;
}

#[tokio::test]
async fn a_ca_file_trusts_the_couchdb_certificate() {
    the_gateway_works_over_https(|w| format!("ca_file = \"{}\"", w.front.cert().display())).await;
}

#[tokio::test]
async fn owl_sync_reads_the_whisks_database_over_https() {
    let w = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").unwrap();
    let text = policy(
        &upstream::down(),
        &lambda().await.endpoint,
        &format!(
            "[[route]]\naction = \"guest/*\"\nfunction = \"tls{}-{{namespace}}-{{action}}\"\n\n{}\n\
             [sync]\nrole = \"arn:aws:iam::000000000000:role/owl-actions\"\nbootstrap = \"{}\"\nstate_file = \"{}\"\n",
            &uuid_like()[..6],
            w.couch_section(&format!("ca_file = \"{}\"", w.front.cert().display())),
            dir.path().join("bootstrap").display(),
            dir.path().join("sync.state").display(),
        ),
    );
    let p = Policy::parse(&text, "sync.toml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let sync = Syncer::new(
        p,
        SyncOptions {
            dry_run: true,
            lambda_credentials: Some(owl::lambda::StaticCredentials::emulator()),
        },
    )
    .await
    .expect("syncer");
    let report = sync.once().await.unwrap();
    let r = report
        .get("guest/hello")
        .unwrap_or_else(|| panic!("guest/hello not in the report:\n{report}"));
    assert_eq!(r.outcome, Outcome::Created, "{report}");
    assert!(w.front.handshakes() > 0, "the feed was read over TLS");
}

/// The CouchDB client as the policy builds it.
fn couch_client(w: &World, tls: &str) -> owl::couchdb::CouchDb {
    let text = format!(
        "[controller]\nurl = \"http://127.0.0.1:1\"\n{}",
        w.couch_section(tls)
    );
    let p = Policy::parse(&text, "p.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    owl::couchdb::CouchDb::new(p.couchdb.as_ref().unwrap()).expect("client")
}

#[tokio::test]
async fn an_unknown_certificate_is_refused_with_a_clear_error() {
    let w = World::new().await;
    // The client says why: the certificate.
    let err = couch_client(&w, "").ping().await.unwrap_err().to_string();
    assert!(
        err.contains("invalid peer certificate"),
        "the error names the certificate: {err}"
    );
    // Another certificate in the CA file is no better.
    let other = TlsFront::start(&couchdb().await.url).await;
    let err = couch_client(&w, &format!("ca_file = \"{}\"", other.cert().display()))
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid peer certificate"), "{err}");
    // With the right one, the same server answers.
    couch_client(&w, &format!("ca_file = \"{}\"", w.front.cert().display()))
        .ping()
        .await
        .expect("trusted through the CA file");

    // Through the gateway: no identity can be read, nothing reaches Lambda.
    let before = w.front.handshakes();
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let gw = TestGateway::start(&w.gateway_policy(&fake.url, "")).await;
    let (status, _, body) = invoke(
        &gw.invoke_url("guest/hello", "blocking=true"),
        Some(&guest_auth()),
        None,
    )
    .await;
    assert!(status >= 500, "{status} {body}");
    assert!(fake.calls().is_empty());
    assert_eq!(w.front.handshakes(), before, "no TLS session was completed");
    assert!(w.front.refused() > 0);
    gw.stop().await;

    // A CA file that holds no certificate is a start-up error naming the section.
    let empty = w.front.dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let text = format!(
        "[controller]\nurl = \"http://127.0.0.1:1\"\n{}",
        w.couch_section(&format!("ca_file = \"{}\"", empty.display()))
    );
    let p = Policy::parse(&text, "p.toml", Path::new(".")).unwrap();
    let err = owl::couchdb::CouchDb::new(p.couchdb.as_ref().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[couchdb]") && err.contains("no PEM certificate"),
        "{err}"
    );
}
