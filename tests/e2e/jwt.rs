//! Bearer tokens end to end: a local JWKS endpoint, tokens minted by the test, the
//! gateway validating them on the Lambda path and acting as the token's namespace,
//! the controller reached with the namespace's service key, key rotation, and every
//! way a token can be wrong.

use crate::common::fake_lambda::{FakeLambda, Fault};
use crate::common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// An EC P-256 signing key with its JWK.
struct Key {
    kid: String,
    pair: rcgen::KeyPair,
}

impl Key {
    fn new(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            pair: rcgen::KeyPair::generate().unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        use base64::Engine;
        let raw = self.pair.public_key_raw(); // 0x04 || X || Y
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
               "x": b64(&raw[1..33]), "y": b64(&raw[33..65])})
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = EncodingKey::from_ec_pem(self.pair.serialize_pem().as_bytes()).unwrap();
        encode(&header, claims, &key).unwrap()
    }
}

/// A JWKS endpoint whose key set the test can replace.
struct Jwks {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
}

async fn jwks(keys: Vec<Value>) -> Jwks {
    let state = Arc::new(Mutex::new(keys));
    let served = state.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let served = served.clone();
            async move { axum::Json(json!({"keys": *served.lock().unwrap()})) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    Jwks { url, keys: state }
}

fn now() -> i64 {
    owl::context::epoch_ms(std::time::SystemTime::now()) / 1000
}

fn claims() -> Value {
    json!({"iss": "https://idp.test/", "aud": "openwhisk", "sub": "user@idp.test",
           "ns": "guest", "exp": now() + 600, "iat": now()})
}

struct Setup {
    gw: TestGateway,
    fake: FakeLambda,
    controller: Standin,
    jwks: Jwks,
    k1: Key,
    _dir: tempfile::TempDir,
}

async fn setup(extra_jwt: &str) -> Setup {
    let k1 = Key::new("k1");
    let jwks = jwks(vec![k1.jwk()]).await;
    let fake = FakeLambda::start(Fault::Reply(json!({"ok": true}))).await;
    let controller = standin(vec![
        StandinAction::new("guest/act", Behaviour::Echo).annotation("provide-api-key", json!(true)),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("service-keys.toml");
    std::fs::write(
        &keys,
        format!("[namespaces]\nguest = \"{}\"\n", guest_key()),
    )
    .unwrap();
    let p = policy(
        &controller.url(),
        &fake.url,
        &format!(
            r#"[[route]]
action = "guest/act"
function = "f"

[auth.jwt]
issuer = "https://idp.test/"
audience = ["openwhisk", "other"]
algorithms = ["ES256"]
jwks_url = "{}"
allow_insecure_jwks = true
leeway = "5s"
namespace_claim = "ns"
subject_claim = "sub"
jwks_min_refresh = "0s"
service_keys_file = "{}"
{extra_jwt}
"#,
            jwks.url,
            keys.display()
        ),
    );
    let gw = TestGateway::start(&p).await;
    Setup {
        gw,
        fake,
        controller,
        jwks,
        k1,
        _dir: dir,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn a_valid_token_acts_as_its_namespace() {
    let s = setup("").await;
    let token = s.k1.sign(&claims());
    let (status, _, body) = invoke(
        &s.gw.invoke_url("_/act", "blocking=true"),
        Some(&bearer(&token)),
        Some(r#"{"a":1}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["namespace"], "guest");
    assert_eq!(body["subject"], "user@idp.test");
    let call = &s.fake.calls()[0];
    assert_eq!(call.body["namespace"], "guest");
    assert_eq!(
        call.body["api_key"],
        guest_key(),
        "the namespace's service key, not the token"
    );
    // The controller was asked for the action's metadata with the service key.
    assert!(
        s.controller
            .counters()
            .metadata_lookups
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1
    );
    assert_eq!(
        s.controller
            .counters()
            .namespace_lookups
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn every_kind_of_bad_token_is_401_and_never_reaches_lambda() {
    let s = setup("").await;
    let url = s.gw.invoke_url("_/act", "blocking=true");
    let other = Key::new("k1"); // same kid, different key: a forged signature
    let mut cases: Vec<(&str, String)> = vec![
        ("expired", s.k1.sign(&with("exp", json!(now() - 60)))),
        ("not yet valid", s.k1.sign(&with("nbf", json!(now() + 600)))),
        (
            "wrong issuer",
            s.k1.sign(&with("iss", json!("https://evil.test/"))),
        ),
        (
            "wrong audience",
            s.k1.sign(&with("aud", json!("someone-else"))),
        ),
        ("bad signature", other.sign(&claims())),
        ("no namespace", s.k1.sign(&with("ns", json!(null)))),
        ("invalid namespace", s.k1.sign(&with("ns", json!("../etc")))),
    ];
    // alg none
    {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        cases.push((
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&claims())
            ),
        ));
    }
    // HS256 signed with the public key as the secret (algorithm confusion)
    {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let public_pem = s.k1.pair.public_key_pem();
        cases.push((
            "HS256 with the public key",
            encode(
                &h,
                &claims(),
                &EncodingKey::from_secret(public_pem.as_bytes()),
            )
            .unwrap(),
        ));
    }
    cases.push(("garbage", "not.a.jwt".into()));
    for (what, token) in cases {
        let (status, headers, body) = invoke(&url, Some(&bearer(&token)), None).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(
            body["error"], "The supplied authentication is invalid",
            "{what}"
        );
        assert!(headers.contains_key("www-authenticate"));
    }
    assert!(s.fake.calls().is_empty());
}

/// `claims()` with one claim replaced.
fn with(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

#[tokio::test]
async fn key_rotation_is_picked_up_from_the_jwks() {
    let s = setup("").await;
    let url = s.gw.invoke_url("_/act", "blocking=true");
    assert_eq!(
        invoke(&url, Some(&bearer(&s.k1.sign(&claims()))), None)
            .await
            .0,
        200
    );
    let k2 = Key::new("k2");
    *s.jwks.keys.lock().unwrap() = vec![k2.jwk()];
    // A token naming the new kid makes owl fetch the set again.
    let t2 = k2.sign(&with("sub", json!("second")));
    let (status, _, body) = invoke(&url, Some(&bearer(&t2)), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], "second");
    // The retired key no longer validates new tokens.
    let t1 = s.k1.sign(&with("sub", json!("third")));
    assert_eq!(invoke(&url, Some(&bearer(&t1)), None).await.0, 401);
}

#[tokio::test]
async fn bearer_without_jwt_configured_is_missing_credentials() {
    let fake = FakeLambda::start(Fault::Reply(json!({}))).await;
    let c = standin(vec![StandinAction::new("guest/act", Behaviour::Echo)]).await;
    let gw = TestGateway::start(&policy(
        &c.url(),
        &fake.url,
        "[[route]]\naction = \"guest/act\"\nfunction = \"f\"\n",
    ))
    .await;
    let (status, _, body) = invoke(
        &gw.invoke_url("_/act", "blocking=true"),
        Some("Bearer abc.def.ghi"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"],
        "The resource requires authentication, which was not supplied with the request"
    );
}

#[tokio::test]
async fn proxied_requests_keep_the_token_unless_exchange_is_on() {
    for (exchange, expected) in [(false, None), (true, Some(guest_auth()))] {
        let k1 = Key::new("k1");
        let jwks = jwks(vec![k1.jwk()]).await;
        let up = upstream::echo().await;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys.toml");
        std::fs::write(
            &keys,
            format!("[namespaces]\nguest = \"{}\"\n", guest_key()),
        )
        .unwrap();
        let p = policy(
            &up.url,
            &upstream::down(),
            &format!(
                "[auth.jwt]\nissuer = \"https://idp.test/\"\naudience = \"openwhisk\"\nalgorithms = [\"ES256\"]\njwks_url = \"{}\"\nallow_insecure_jwks = true\nnamespace_claim = \"ns\"\nservice_keys_file = \"{}\"\nexchange_on_proxy = {exchange}\n",
                jwks.url,
                keys.display()
            ),
        );
        let gw = TestGateway::start(&p).await;
        let token = k1.sign(&claims());
        let r = client()
            .get(format!("{}/api/v1/namespaces/_/actions", gw.url))
            .header("authorization", bearer(&token))
            .send()
            .await
            .unwrap();
        let seen = r.headers()["x-echo-h-authorization"]
            .to_str()
            .unwrap()
            .to_string();
        match expected {
            None => assert_eq!(seen, bearer(&token), "untouched by default"),
            Some(basic) => assert_eq!(seen, basic, "exchanged for the namespace's key"),
        }
    }
}
