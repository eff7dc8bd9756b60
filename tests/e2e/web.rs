//! Web actions (`/api/v1/web/{ns}/{pkg}/{action}[.ext][/rest]`) served from Lambda,
//! end to end: owl → MiniStack → the owl runtime (Node.js and Python) running an
//! unchanged OpenWhisk web action, with the stand-in controller as the metadata
//! source and as the controller that answers the unmapped twin of each action.
//!
//! Expected answers are OpenWhisk's, from
//! `tests/src/test/scala/org/apache/openwhisk/core/controller/test/WebActionsApiTests.scala`
//! (WAT:line) and `core/controller/src/main/scala/org/apache/openwhisk/core/controller/WebActions.scala`
//! (WA:line) at apache/openwhisk 1fae641a2b30.

use crate::common::*;
use crate::runtime::runtime_function;
use base64::Engine;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::time::Duration;

/// The web action on Lambda: echoes its arguments, answers what the caller asks it to
/// (`respond`, a JSON text), sleeps, or crashes. The stand-in's `Behaviour::WebScript`
/// does the same for the unmapped twin.
const WEB_NODE: &str = r#"
function main(params) {
  if (params.crash) throw new Error("crashed");
  if (params.sleep) return new Promise(r => setTimeout(() => r({ slept: true }), Number(params.sleep)));
  if (typeof params.respond === "string") return JSON.parse(params.respond);
  return params;
}
"#;

const WEB_PYTHON: &str = r#"
import json

def main(params):
    if params.get("crash"):
        raise Exception("crashed")
    if isinstance(params.get("respond"), str):
        return json.loads(params["respond"])
    return params
"#;

struct Web {
    gw: TestGateway,
    controller: Standin,
    _keys: tempfile::TempDir,
}

fn web_action(path: &str, kind: &str) -> StandinAction {
    StandinAction::new(path, Behaviour::WebScript)
        .kind(kind)
        .annotation("web-export", json!(true))
}

/// The gateway in front of the stand-in and MiniStack. Mapped: `guest/echo` and the
/// annotated variants (`secret`, `authed`, `custom`, `raw`, `final`, `hidden`,
/// `slow`) on Node.js, `guest/py` on Python. Unmapped twins (`…-twin`) have the same
/// metadata and are answered by the stand-in through owl's proxy. `extra` is added to
/// the policy; `keys` writes `[web] service_keys_file` for guest.
async fn web(extra: &str, keys: bool) -> Web {
    web_with(extra, keys, None).await
}

/// [`web`] with `limits` merged into guest's limits document.
async fn web_with(extra: &str, keys: bool, limits: Option<Value>) -> Web {
    let lambda = lambda().await;
    let ep = &lambda.endpoint;
    let node = runtime_function(ep, "owl-web-node", "action.js", WEB_NODE).await;
    let py = runtime_function(ep, "owl-web-py", "action.py", WEB_PYTHON).await;
    let mut actions = Vec::new();
    let mut routes = String::new();
    let variants: [(&str, Option<(&str, Value)>); 8] = [
        ("echo", None),
        ("secret", Some(("require-whisk-auth", json!("s3cret")))),
        ("authed", Some(("require-whisk-auth", json!(true)))),
        ("custom", Some(("web-custom-options", json!(true)))),
        ("raw", Some(("raw-http", json!(true)))),
        ("final", Some(("final", json!(true)))),
        ("hidden", None),
        ("slow", None),
    ];
    for (name, annotation) in variants {
        for path in [format!("guest/{name}"), format!("guest/{name}-twin")] {
            let mut a = if name == "hidden" {
                StandinAction::new(&path, Behaviour::WebScript).kind("nodejs:20")
            } else {
                web_action(&path, "nodejs:20")
            };
            if let Some((k, v)) = &annotation {
                a = a.annotation(k, v.clone());
            }
            if name == "final" {
                // A parameter named like a web argument is overwritten by it, not a
                // final one the request could violate (WA:640-650).
                a = a
                    .param("x", json!("fixed"))
                    .param("empty", Value::Null)
                    .param("__ow_method", json!("not-this"));
            }
            actions.push(a);
        }
        routes.push_str(&format!(
            "[[route]]\naction = \"guest/{name}\"\nfunction = \"{node}\"\n\n"
        ));
    }
    // Sequences of web actions: composed by owl (mapped) and by the controller (twin).
    actions.push(
        StandinAction::sequence("guest/wseq", &["/guest/echo", "/guest/echo"])
            .annotation("web-export", json!(true)),
    );
    actions.push(
        StandinAction::sequence("guest/wseq-twin", &["/guest/echo-twin", "/guest/echo-twin"])
            .annotation("web-export", json!(true)),
    );
    routes.push_str(&format!(
        "[[route]]\naction = \"guest/wseq\"\nfunction = \"{node}\"\n\n"
    ));
    actions.push(web_action("guest/py", "python:3.11"));
    actions.push(web_action("guest/py-twin", "python:3.11"));
    routes.push_str(&format!(
        "[[route]]\naction = \"guest/py\"\nfunction = \"{py}\"\n\n"
    ));
    let mut b = StandinBuilder::with_guest().identity("alice", "alice", ALICE_UUID, ALICE_KEY);
    if let Some(l) = limits {
        b = b.limits("guest", l);
    }
    for a in actions {
        b = b.action(a);
    }
    let controller = b.spawn().await.expect("stand-in");
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys.toml");
    std::fs::write(
        &keys_file,
        format!("[namespaces]\nguest = \"{}\"\n", guest_key()),
    )
    .unwrap();
    let web_section = if keys {
        format!(
            "[web]\nservice_keys_file = \"{}\"\n{extra}\n",
            keys_file.display()
        )
    } else {
        extra.to_string()
    };
    let gw = TestGateway::start(&policy(
        &controller.url(),
        ep,
        &format!("{web_section}\n{routes}"),
    ))
    .await;
    Web {
        gw,
        controller,
        _keys: dir,
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Served by the controller (the stand-in marks its answers).
    fn by_controller(&self) -> bool {
        self.headers.contains_key("x-owl-standin")
    }
}

impl Web {
    fn url(&self, rest: &str) -> String {
        format!("{}/api/v1/web/guest/{rest}", self.gw.url)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        rest: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Answer {
        // Redirects are answers to check, not to follow.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut req = client.request(method, self.url(rest));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        let resp = req.send().await.expect("request");
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.unwrap().to_vec(),
        }
    }

    async fn get(&self, rest: &str) -> Answer {
        self.send(reqwest::Method::GET, rest, &[], None).await
    }
}

/// `?respond=<json>`: the action returns that value.
fn respond(v: &Value) -> String {
    format!(
        "respond={}",
        percent_encoding::utf8_percent_encode(&v.to_string(), percent_encoding::NON_ALPHANUMERIC)
    )
}

/// The pretty error body of the web route (WA:49, ErrorResponse.scala: `{error, code}`).
fn assert_web_error(a: &Answer, status: u16, text: &str) {
    assert_eq!(a.status, status, "{}", a.text());
    let tid = a.header("x-request-id").expect("x-request-id");
    assert_eq!(
        a.text(),
        format!("{{\n  \"code\": \"{tid}\",\n  \"error\": \"{text}\"\n}}"),
        "the web route's errors are pretty-printed, members sorted (spray-json's TreeMap)"
    );
    assert_eq!(a.header("content-type"), Some("application/json"));
}

fn has_default_cors(a: &Answer) -> bool {
    a.header("access-control-allow-origin") == Some("*")
        && a.header("access-control-allow-methods")
            == Some("OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH")
}

#[tokio::test]
async fn http_results_are_transcoded_as_openwhisk_does() {
    let w = web("", true).await;
    // WAT:915-932: statusCode and headers terminate the response.
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"statusCode": 302, "headers": {"location": "http://openwhisk.org"}}))
        ))
        .await;
    assert!(!a.by_controller());
    assert_eq!(a.status, 302, "{}", a.text());
    assert_eq!(a.header("location"), Some("http://openwhisk.org"));
    assert!(a.header("x-openwhisk-activation-id").is_some());
    assert!(has_default_cors(&a));
    // WAT:934-947: a non-standard status code.
    let a = w
        .get(&format!(
            "default/echo.http?{}",
            respond(&json!({"statusCode": 444}))
        ))
        .await;
    assert_eq!(a.status, 444);
    // WAT:1033-1066: no body → 204, empty.
    for r in [json!({}), json!({"body": ""}), json!({"body": null})] {
        let a = w.get(&format!("default/echo?{}", respond(&r))).await;
        assert_eq!(a.status, 204, "{r}");
        assert!(a.body.is_empty());
        assert!(a.header("content-type").is_none(), "{r}");
    }
    // A body on a status that allows none (204, 205, 304, 1xx): Pekko refuses to build
    // the response and its default exception handler answers the bare 500
    // (StatusCode.scala `allowsEntity`), mapped and unmapped alike.
    for action in ["echo", "echo-twin"] {
        let a = w
            .get(&format!(
                "default/{action}?{}",
                respond(&json!({"statusCode": 204, "body": "x"}))
            ))
            .await;
        assert_eq!(a.status, 500, "{action}: {}", a.text());
        assert_eq!(a.text(), "There was an internal server error.", "{action}");
        assert_eq!(a.header("content-type"), Some("text/plain; charset=UTF-8"));
        assert!(a.header("x-openwhisk-activation-id").is_none(), "{action}");
    }
    // WAT:1385-1400: a string body without headers is HTML.
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"body": "<h1>hi</h1>"}))
        ))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(a.text(), "<h1>hi</h1>");
    // WAT:1365-1383: base64 bodies of binary types are decoded.
    let png = [0x89u8, b'P', b'N', b'G', 0, 1, 2, 255];
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"headers": {"content-type": "image/png"}, "body": b64}))
        ))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("image/png"));
    assert_eq!(a.body, png);
    // WAT:1236-1266: an object body with the JSON type, pretty-printed.
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"headers": {"content-type": "application/json"}, "body": {"a": 1}}))
        ))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.text(), "{\n  \"a\": 1\n}");
    // WAT:1425-1443: an unknown content type.
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"headers": {"content-type": "xyzbar"}, "body": "x"}))
        ))
        .await;
    assert_web_error(&a, 400, "Response did not specify a known content-type.");
    assert!(a.header("x-openwhisk-activation-id").is_some());
    // WAT:1782-1795: multiple values for a header.
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"headers": {"Set-Cookie": ["a=b", "c=d; Path = /"]}, "body": "x"}))
        ))
        .await;
    let cookies: Vec<_> = a.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=b", "c=d; Path = /"]);
    // WAT:2034-2052: string status codes.
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"statusCode": "444"}))
        ))
        .await;
    assert_eq!(a.status, 444);
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"statusCode": "xyz"}))
        ))
        .await;
    assert_web_error(&a, 400, "Response is not valid 'message/http'.");
}

#[tokio::test]
async fn extensions_project_and_render_as_openwhisk_does() {
    let w = web("", true).await;
    // WAT:949-1031: .json pretty-printed, .text / .html / .svg projections.
    let a = w
        .get(&format!(
            "default/echo.json?{}",
            respond(&json!({"a": "b"}))
        ))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.text(), "{\n  \"a\": \"b\"\n}");
    let a = w
        .get(&format!(
            "default/echo.text?{}",
            respond(&json!({"text": "plain"}))
        ))
        .await;
    assert_eq!(a.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(a.text(), "plain");
    let a = w
        .get(&format!(
            "default/echo.html?{}",
            respond(&json!({"html": "<b>x</b>"}))
        ))
        .await;
    assert_eq!(a.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(a.text(), "<b>x</b>");
    let a = w
        .get(&format!(
            "default/echo.svg?{}",
            respond(&json!({"svg": "<svg/>"}))
        ))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), "<svg/>");
    // WAT:898-913: .text without body or text.
    let a = w
        .get(&format!("default/echo.text?{}", respond(&json!({"x": 1}))))
        .await;
    assert_web_error(&a, 404, "Response does not include requested property.");
    // WAT:1445-1463: an application error on .http is the response it describes.
    let a = w
        .get(&format!(
            "default/echo?{}",
            respond(&json!({"error": {"statusCode": 200, "body": "app error body"}}))
        ))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), "app error body");
    // WAT:1465-1479: a string error on .json.
    let a = w
        .get(&format!(
            "default/echo.json?{}",
            respond(&json!({"error": "boom"}))
        ))
        .await;
    assert_web_error(&a, 400, "Response is not valid 'application/json'.");
    // WAT:1481-1502: a developer error.
    for ext in ["json", "text", "http"] {
        let a = w.get(&format!("default/echo.{ext}?crash=1")).await;
        assert_web_error(&a, 400, "There was an error processing your request.");
        assert!(a.header("x-openwhisk-activation-id").is_some());
    }
    // WAT:1942-1956: an answer the request's Accept refuses, after the action ran:
    // Pekko's 406, compact, as the controller's rejection handler renders it.
    let a = w
        .send(
            reqwest::Method::GET,
            &format!(
                "default/echo.http?{}",
                respond(&json!({"body": "Plain text"}))
            ),
            &[("accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(a.status, 406);
    assert_eq!(
        a.json()["error"],
        "Resource representation is only available with these types:\ntext/html; charset=UTF-8"
    );
    // A browser's Accept admits everything.
    let a = w
        .send(
            reqwest::Method::GET,
            &format!(
                "default/echo.http?{}",
                respond(&json!({"body": "Plain text"}))
            ),
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    // WAT:1587-1611: an unknown extension is part of the name: no such action.
    let a = w.get("default/echo.xyz").await;
    assert_eq!(a.status, 404);
    // The route's errors are JSON and negotiated too (ErrorResponse.scala:288-293): an
    // Accept without JSON turns the 401 and the 404 into the 406, mapped and unmapped.
    for rest in [
        "default/secret.json",
        "default/secret-twin.json",
        "default/nope.json",
    ] {
        let html = w
            .send(reqwest::Method::GET, rest, &[("accept", "text/html")], None)
            .await;
        assert_eq!(html.status, 406, "{rest}: {}", html.text());
        assert_eq!(
            html.json()["error"],
            "Resource representation is only available with these types:\napplication/json",
            "{rest}"
        );
        let json = w
            .send(
                reqwest::Method::GET,
                rest,
                &[("accept", "application/json")],
                None,
            )
            .await;
        assert!(matches!(json.status, 401 | 404), "{rest}: {}", json.text());
    }
}

#[tokio::test]
async fn arguments_reach_the_function_as_an_openwhisk_web_action_receives_them() {
    let w = web("", true).await;
    // WAT:554-575, 877-896: query parameters as strings, the method, the rest of the
    // path, headers with lower-case names.
    let a = w
        .send(
            reqwest::Method::GET,
            "default/echo.json/some/path?a=1&b=x%20y",
            &[("X-Custom", "v")],
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let p = a.json();
    assert_eq!(p["__ow_method"], "get");
    assert_eq!(p["__ow_path"], "/some/path");
    assert_eq!(p["a"], "1");
    assert_eq!(p["b"], "x y");
    assert_eq!(p["__ow_headers"]["x-custom"], "v");
    assert!(p.get("__ow_user").is_none(), "anonymous: no __ow_user");
    // WAT:577-603, 630-654: a JSON body merged, over the query; content-type among the
    // headers; a trailing slash is the path "/".
    let a = w
        .send(
            reqwest::Method::POST,
            "default/echo.json/?a=query&q=1",
            &[("content-type", "application/json")],
            Some(br#"{"a":"body","n":5}"#),
        )
        .await;
    let p = a.json();
    assert_eq!(p["a"], "body");
    assert_eq!(p["q"], "1");
    assert_eq!(p["n"], 5);
    assert_eq!(p["__ow_method"], "post");
    assert_eq!(p["__ow_path"], "/");
    assert_eq!(p["__ow_headers"]["content-type"], "application/json");
    // WAT:1504-1517: form data.
    let a = w
        .send(
            reqwest::Method::PUT,
            "default/echo.json",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"f=1&g=two+words"),
        )
        .await;
    let p = a.json();
    assert_eq!((&p["f"], &p["g"]), (&json!("1"), &json!("two words")));
    // WAT:1674-1692: a text body is __ow_body.
    let a = w
        .send(
            reqwest::Method::POST,
            "default/echo.json",
            &[("content-type", "text/html")],
            Some(b"<p>hi</p>"),
        )
        .await;
    assert_eq!(a.json()["__ow_body"], "<p>hi</p>");
    // WAT:2014-2032: a binary body, base64.
    let a = w
        .send(
            reqwest::Method::POST,
            "default/echo.json",
            &[("content-type", "image/png")],
            Some(&[1, 2, 3, 250]),
        )
        .await;
    assert_eq!(a.json()["__ow_body"], "AQID+g==");
    // WAT:1990-2012: a JSON body that is not an object is __ow_body as JSON.
    let a = w
        .send(
            reqwest::Method::POST,
            "default/echo.json",
            &[("content-type", "application/json")],
            Some(b"[1,2]"),
        )
        .await;
    assert_eq!(a.json()["__ow_body"], json!([1, 2]));
    // WA:109-120: valid credentials add __ow_user (the caller's namespace).
    let a = w
        .send(
            reqwest::Method::GET,
            "default/echo.json",
            &[("authorization", &alice_auth())],
            None,
        )
        .await;
    assert_eq!(a.json()["__ow_user"], "alice");
    // The Python runtime receives the same.
    let a = w.get("default/py.json/x?k=v").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let p = a.json();
    assert!(!a.by_controller());
    assert_eq!((&p["__ow_path"], &p["k"]), (&json!("/x"), &json!("v")));
}

#[tokio::test]
async fn raw_http_actions_get_the_query_and_body_unparsed() {
    let w = web("", true).await;
    // WAT:1858-1893: raw: __ow_query, a JSON body base64 in __ow_body, no override check.
    let a = w
        .send(
            reqwest::Method::POST,
            "default/raw.json?a=1&__ow_method=x",
            &[("content-type", "application/json")],
            Some(br#"{"k":"v"}"#),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let p = a.json();
    assert_eq!(p["__ow_query"], "a=1&__ow_method=x");
    assert_eq!(
        p["__ow_body"],
        base64::engine::general_purpose::STANDARD.encode(br#"{"k":"v"}"#)
    );
    assert!(p.get("a").is_none());
    // WAT:1924-1940: nothing given → empty strings.
    let p = w.get("default/raw.json").await.json();
    assert_eq!(
        (&p["__ow_query"], &p["__ow_body"]),
        (&json!(""), &json!(""))
    );
}

#[tokio::test]
async fn reserved_and_final_parameters_cannot_be_overridden() {
    let w = web("", true).await;
    // WAT:1613-1629: reserved names.
    for q in ["__ow_method=x", "__ow_user=x", "__ow_body=x"] {
        let a = w.get(&format!("default/echo.json?{q}")).await;
        assert_web_error(
            &a,
            400,
            "Request defines parameters that are not allowed (e.g., reserved properties).",
        );
        assert!(
            has_default_cors(&a),
            "inside the CORS directive (WA:505-506)"
        );
        assert!(a.header("x-openwhisk-activation-id").is_none());
    }
    // WAT:1631-1672: final parameters; a null one is overridable.
    let a = w.get("default/final.json?x=other").await;
    assert_eq!(a.status, 400);
    let a = w
        .send(
            reqwest::Method::POST,
            "default/final.json",
            &[("content-type", "application/json")],
            Some(br#"{"x":"other"}"#),
        )
        .await;
    assert_eq!(a.status, 400);
    let a = w.get("default/final.json?empty=filled").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let p = a.json();
    assert_eq!((&p["x"], &p["empty"]), (&json!("fixed"), &json!("filled")));
    // The action's own `__ow_method` parameter is the request's method, mapped and
    // unmapped alike.
    for action in ["final", "final-twin"] {
        let a = w.get(&format!("default/{action}.json")).await;
        assert_eq!(a.status, 200, "{action}: {}", a.text());
        assert_eq!(a.json()["__ow_method"], "get", "{action}");
    }
}

#[tokio::test]
async fn require_whisk_auth_is_enforced() {
    let w = web("", true).await;
    // WAT:451-522: a string annotation must equal X-Require-Whisk-Auth.
    let a = w.get("default/secret.json").await;
    assert_web_error(
        &a,
        401,
        "Authentication is possible but has failed or not yet been provided.",
    );
    assert!(has_default_cors(&a));
    let a = w
        .send(
            reqwest::Method::GET,
            "default/secret.json",
            &[("x-require-whisk-auth", "wrong")],
            None,
        )
        .await;
    assert_eq!(a.status, 401);
    let a = w
        .send(
            reqwest::Method::GET,
            "default/secret.json",
            &[("x-require-whisk-auth", "s3cret")],
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    // The header reaches the action (WAT:512).
    assert_eq!(a.json()["__ow_headers"]["x-require-whisk-auth"], "s3cret");
    // OPTIONS is answered before the check (WAT:411-449).
    let a = w
        .send(reqwest::Method::OPTIONS, "default/secret.json", &[], None)
        .await;
    assert_eq!(a.status, 200);
    // WAT:411-449: `true` needs valid OpenWhisk credentials, any namespace's.
    let a = w.get("default/authed.json").await;
    assert_eq!(a.status, 401);
    let a = w
        .send(
            reqwest::Method::GET,
            "default/authed.json",
            &[(
                "authorization",
                &basic(&format!("{GUEST_UUID}:{}", "x".repeat(64))),
            )],
            None,
        )
        .await;
    assert_eq!(a.status, 401, "invalid credentials are anonymous");
    let a = w
        .send(
            reqwest::Method::GET,
            "default/authed.json",
            &[("authorization", &alice_auth())],
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["__ow_user"], "alice");
}

#[tokio::test]
async fn cors_and_options_follow_the_annotations() {
    let w = web("", true).await;
    // WAT:1797-1820: default CORS on every method; OPTIONS not invoked; requested
    // headers echoed.
    let a = w
        .send(
            reqwest::Method::OPTIONS,
            "default/echo",
            &[("access-control-request-headers", "x-one, x-two")],
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body.is_empty());
    assert!(has_default_cors(&a));
    assert_eq!(
        a.header("access-control-allow-headers"),
        Some("x-one, x-two")
    );
    assert!(
        a.header("x-openwhisk-activation-id").is_none(),
        "no activation"
    );
    let a = w.get("default/echo.json").await;
    assert_eq!(
        a.header("access-control-allow-headers"),
        Some("Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent")
    );
    // WA:416-419: the requested headers are echoed as Pekko renders the parsed list.
    for action in ["echo", "echo-twin"] {
        let a = w
            .send(
                reqwest::Method::OPTIONS,
                &format!("default/{action}"),
                &[("access-control-request-headers", "content-type,x-a")],
                None,
            )
            .await;
        assert_eq!(
            a.header("access-control-allow-headers"),
            Some("content-type, x-a"),
            "{action}"
        );
    }
    // WA:507 `respondWithHeaders` adds the defaults; the action's own CORS headers
    // (and activation id header) are not replaced but sent beside them.
    let own = respond(&json!({
        "statusCode": 200,
        "headers": {"Access-Control-Allow-Origin": "https://example.com", "x-openwhisk-activation-id": "mine"},
        "body": "ok"
    }));
    let mut answers = Vec::new();
    for action in ["echo", "echo-twin"] {
        let a = w.get(&format!("default/{action}?{own}")).await;
        assert_eq!(a.status, 200, "{action}: {}", a.text());
        let origins: Vec<&str> = a
            .headers
            .get_all("access-control-allow-origin")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(origins, ["*", "https://example.com"], "{action}");
        let ids: Vec<&str> = a
            .headers
            .get_all("x-openwhisk-activation-id")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{action}: {ids:?}");
        assert_eq!(ids[1], "mine", "{action}");
        answers.push(a);
    }
    assert_alike(&answers[0], &answers[1], "own CORS headers");
    // WAT:1738-1754: custom options: the action answers OPTIONS; no CORS from owl.
    let a = w
        .send(
            reqwest::Method::OPTIONS,
            &format!(
                "default/custom?{}",
                respond(&json!({"headers": {"Access-Control-Allow-Methods": "OPTIONS, GET, PATCH"}, "statusCode": 200}))
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.header("access-control-allow-methods"),
        Some("OPTIONS, GET, PATCH")
    );
    assert!(a.header("access-control-allow-origin").is_none());
    assert!(a.header("x-openwhisk-activation-id").is_some());
    // WAT:1822-1833: HEAD is invoked.
    let a = w
        .send(
            reqwest::Method::HEAD,
            &format!(
                "default/echo?{}",
                respond(&json!({"statusCode": 200, "headers": {"x-h": "1"}}))
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-h"), Some("1"));
}

#[tokio::test]
async fn lookups_answer_404_and_unmapped_actions_go_to_the_controller() {
    let w = web("", true).await;
    // WAT:381-409: not exported.
    let a = w.get("default/hidden.json").await;
    assert_web_error(&a, 404, "The requested resource does not exist.");
    assert!(a.header("access-control-allow-origin").is_none());
    // An unmapped web action is the controller's, unchanged.
    let a = w.get("default/echo-twin.json?k=v").await;
    assert!(a.by_controller(), "unmapped: proxied");
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["k"], "v");
    // A namespace owl cannot learn the owner of goes to the controller too.
    let a = client()
        .get(format!("{}/api/v1/web/alice/default/echo.json", w.gw.url))
        .send()
        .await
        .unwrap();
    assert!(a.headers().contains_key("x-owl-standin"));
}

/// The same requests against the mapped action (Lambda) and its unmapped twin (the
/// controller stand-in, through owl's proxy) give the same status, the same headers
/// that matter and the same body.
#[tokio::test]
async fn mapped_and_unmapped_web_actions_answer_alike() {
    let w = web("", true).await;
    type Case<'a> = (
        reqwest::Method,
        String,
        Vec<(&'a str, &'a str)>,
        Option<&'a [u8]>,
    );
    let cases: Vec<Case> = vec![
        (
            reqwest::Method::GET,
            format!(
                "?{}",
                respond(&json!({"statusCode": 302, "headers": {"location": "/x"}}))
            ),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!(".json?{}", respond(&json!({"a": [1, 2], "b": {"c": null}}))),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!(".text?{}", respond(&json!({"text": "t"}))),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!(".text?{}", respond(&json!({"x": 1}))),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!("?{}", respond(&json!({"body": ""}))),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!(
                "?{}",
                respond(&json!({"headers": {"content-type": "xyzbar"}, "body": "x"}))
            ),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!(".json?{}", respond(&json!({"error": "boom"}))),
            vec![],
            None,
        ),
        (reqwest::Method::GET, ".json?crash=1".into(), vec![], None),
        (
            reqwest::Method::GET,
            ".json?__ow_path=x".into(),
            vec![],
            None,
        ),
        (
            reqwest::Method::OPTIONS,
            String::new(),
            vec![("access-control-request-headers", "x-a")],
            None,
        ),
        (
            reqwest::Method::POST,
            format!(
                "?{}",
                respond(
                    &json!({"headers": {"content-type": "application/json"}, "body": {"k": "v"}})
                )
            ),
            vec![("content-type", "application/json")],
            Some(b"{}"),
        ),
    ];
    for (method, rest, headers, body) in cases {
        let mapped = w
            .send(
                method.clone(),
                &format!("default/echo{rest}"),
                &headers,
                body,
            )
            .await;
        let twin = w
            .send(
                method.clone(),
                &format!("default/echo-twin{rest}"),
                &headers,
                body,
            )
            .await;
        assert_alike(&mapped, &twin, &format!("{method} {rest}"));
    }
}

/// The same status, the headers that matter and the same body (each error body carries
/// its own request's transaction id); `mapped` from Lambda, `twin` from the controller.
fn assert_alike(mapped: &Answer, twin: &Answer, label: &str) {
    assert!(!mapped.by_controller() && twin.by_controller(), "{label}");
    assert_eq!(
        mapped.status,
        twin.status,
        "{label}: {} / {}",
        mapped.text(),
        twin.text()
    );
    for h in [
        "content-type",
        "location",
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
    ] {
        assert_eq!(mapped.header(h), twin.header(h), "{label}: {h}");
    }
    assert_eq!(
        mapped.headers.contains_key("x-openwhisk-activation-id"),
        twin.headers.contains_key("x-openwhisk-activation-id"),
        "{label}"
    );
    let normalise = |a: &Answer| {
        let tid = a.header("x-request-id").unwrap_or("-").to_string();
        a.text().replace(&tid, "TID")
    };
    assert_eq!(normalise(mapped), normalise(twin), "{label}");
}

/// A web-exported sequence is invoked like any action (WA:652, PostActionActivation.scala
/// 53-60): the web arguments reach the first component alone, each next one gets the
/// previous result (SequenceActions.scala:287-289, 350-355), and the last response is
/// transcoded as an action's. Composed by owl when every component is mapped: the same
/// answers as the controller's, and no component reaches the controller.
#[tokio::test]
async fn web_sequences_are_composed_by_owl_and_answer_as_the_controllers() {
    let w = web("", true).await;
    let cases: Vec<(reqwest::Method, String)> = vec![
        (
            reqwest::Method::GET,
            format!(".json?{}", respond(&json!({"a": [1, 2], "b": {"c": null}}))),
        ),
        (
            reqwest::Method::GET,
            format!(
                "?{}",
                respond(&json!({"statusCode": 302, "headers": {"location": "/x"}}))
            ),
        ),
        (
            reqwest::Method::GET,
            format!(
                ".http?{}",
                respond(&json!({"headers": {"content-type": "text/html"}, "body": "<b>hi</b>"}))
            ),
        ),
        (
            reqwest::Method::GET,
            format!(".json?{}", respond(&json!({"error": "boom"}))),
        ),
        (reqwest::Method::GET, ".json?crash=1".into()),
        (reqwest::Method::OPTIONS, String::new()),
        (reqwest::Method::GET, ".json?__ow_method=x".into()),
    ];
    for (method, rest) in cases {
        let before = w.controller.invocations();
        let mapped = w
            .send(method.clone(), &format!("default/wseq{rest}"), &[], None)
            .await;
        assert_eq!(
            w.controller.invocations(),
            before,
            "{method} {rest}: the composed sequence reached the controller"
        );
        let twin = w
            .send(
                method.clone(),
                &format!("default/wseq-twin{rest}"),
                &[],
                None,
            )
            .await;
        assert_alike(&mapped, &twin, &format!("{method} {rest}"));
    }
    // The record is the sequence's, as the owner's, listing its two components.
    let a = w
        .get(&format!("default/wseq.json?{}", respond(&json!({"k": 1}))))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json(), json!({"k": 1}));
    let id = a.header("x-openwhisk-activation-id").unwrap().to_string();
    w.gw.flush().await;
    let r = client()
        .get(format!(
            "{}/api/v1/namespaces/guest/activations/{id}",
            w.gw.url
        ))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let record: Value = r.json().await.unwrap();
    assert_eq!(record["name"], "wseq");
    assert_eq!(annotation(&record, "kind"), Some(&json!("sequence")));
    assert_eq!(record["logs"].as_array().map(Vec::len), Some(2), "{record}");
}

#[tokio::test]
async fn web_activations_belong_to_the_owner_and_are_recorded() {
    let w = web("[openwhisk]\nmax_blocking_wait = \"2s\"\n", true).await;
    let a = w
        .send(
            reqwest::Method::GET,
            "default/echo.json?k=v",
            &[("authorization", &alice_auth())],
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let id = a.header("x-openwhisk-activation-id").unwrap().to_string();
    w.gw.flush().await;
    // The owner's record (WA:652; docs/webactions.md): guest reads it, with the
    // action's result.
    let r = client()
        .get(format!(
            "{}/api/v1/namespaces/guest/activations/{id}",
            w.gw.url
        ))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let record: Value = r.json().await.unwrap();
    assert_eq!(record["namespace"], "guest");
    assert_eq!(record["name"], "echo");
    assert_eq!(record["response"]["result"]["k"], "v");
    assert_eq!(annotation(&record, "path"), Some(&json!("guest/echo")));
    // WAT:524-537: past the wait, 202 `Response not yet ready.` with the id.
    let a = w.get("default/slow.json?sleep=4000").await;
    assert_web_error(&a, 202, "Response not yet ready.");
    let id = a.header("x-openwhisk-activation-id").unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(4)).await;
    w.gw.flush().await;
    let r = client()
        .get(format!(
            "{}/api/v1/namespaces/guest/activations/{id}",
            w.gw.url
        ))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let record: Value = r.json().await.unwrap();
    assert_eq!(record["response"]["result"], json!({"slept": true}));
    assert_eq!(
        w.controller.invocations(),
        0,
        "nothing mapped reached the controller"
    );
}

/// WAT:1545-1585: the owner's own `maxPayloadSize` bounds the request entity, below
/// the deployment's (WA:498 `actionOwnerIdentity.limits`, Identity.scala:62-67), with
/// the 413 text naming the namespace's limit; mapped and unmapped alike. The REST
/// invoke path applies the caller's the same way (Entities.scala:119-125).
#[tokio::test]
async fn the_owners_payload_limit_applies() {
    let w = web_with("", true, Some(json!({"maxPayloadSize": "1 KB"}))).await;
    let fits = format!(r#"{{"a":"{}"}}"#, "a".repeat(1024 - 8));
    let over = format!(r#"{{"a":"{}"}}"#, "a".repeat(1024 - 7));
    let json = [("content-type", "application/json")];
    for action in ["echo", "echo-twin"] {
        let rest = format!("default/{action}.json");
        let a = w
            .send(reqwest::Method::POST, &rest, &json, Some(fits.as_bytes()))
            .await;
        assert_eq!(a.status, 200, "{action}: {}", a.text());
        let a = w
            .send(reqwest::Method::POST, &rest, &json, Some(over.as_bytes()))
            .await;
        assert_eq!(a.by_controller(), action.ends_with("-twin"));
        assert_web_error(
            &a,
            413,
            &format!("Request larger than allowed: {} > 1024 bytes.", over.len()),
        );
        // A form body is counted as sent (WAT:1577-1583).
        let form = format!("a={}", "a".repeat(1024 - 1));
        let a = w
            .send(
                reqwest::Method::POST,
                &rest,
                &[("content-type", "application/x-www-form-urlencoded")],
                Some(form.as_bytes()),
            )
            .await;
        assert_web_error(
            &a,
            413,
            &format!("Request larger than allowed: {} > 1024 bytes.", form.len()),
        );
    }
    // A chunked body over the limit: the controller reads the whole entity before
    // routing (BasicHttpService.scala `toStrictEntity`), so it is a 413 without CORS
    // before OPTIONS and `require-whisk-auth` (401 without it).
    let chunked = || {
        reqwest::Body::wrap_stream(futures_util::stream::iter(
            over.clone()
                .into_bytes()
                .chunks(256)
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        ))
    };
    for action in ["secret", "secret-twin", "echo", "echo-twin"] {
        for method in [reqwest::Method::POST, reqwest::Method::OPTIONS] {
            let r = client()
                .request(method.clone(), w.url(&format!("default/{action}.json")))
                .header("content-type", "application/json")
                .body(chunked())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert!(
                r.headers().get("access-control-allow-origin").is_none(),
                "{action} {method}"
            );
            let text = r.text().await.unwrap();
            assert_eq!(status, 413, "{action} {method}: {text}");
            assert!(
                text.contains(&format!(
                    "Request larger than allowed: {} > 1024 bytes.",
                    over.len()
                )),
                "{action} {method}: {text}"
            );
        }
    }
    // The REST invoke of a mapped action, as guest.
    let (status, _, body) = invoke(
        &w.gw.invoke_url("guest/echo", "blocking=true"),
        Some(&guest_auth()),
        Some(&over),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["error"],
        format!("Request larger than allowed: {} > 1024 bytes.", over.len())
    );
}

/// WAT:1722-1736: the owner's namespace is throttled, whoever calls.
#[tokio::test]
async fn the_owners_throttles_apply() {
    let w = web(
        "[limits.namespace.guest]\ninvocations_per_minute = 2\n",
        true,
    )
    .await;
    for _ in 0..2 {
        assert_eq!(w.get("default/echo.json").await.status, 200);
    }
    let a = w.get("default/echo.json").await;
    assert_web_error(
        &a,
        429,
        "Too many requests in the last minute (count: 3, allowed: 2).",
    );
}

#[tokio::test]
async fn owners_come_from_an_identities_file_and_vanity_hosts_are_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("identities.toml");
    std::fs::write(
        &ids,
        format!(
            "[[identity]]\nsubject = \"guest\"\nnamespace = \"guest\"\nuuid = \"{GUEST_UUID}\"\nkey = \"{GUEST_KEY}\"\n"
        ),
    )
    .unwrap();
    let w = web(
        &format!(
            "[auth]\nsource = \"file\"\nidentities_file = \"{}\"\n\n[web]\nvanity_host = \"owl.test\"\n",
            ids.display()
        ),
        false,
    )
    .await;
    let a = w.get("default/echo.json?k=v").await;
    assert!(!a.by_controller());
    assert_eq!(a.json()["k"], "v");
    // nginx.conf.j2:100-139: <namespace>.<host>/<pkg>/<action> is the web action.
    let r = client()
        .get(format!("{}/default/echo.json?k=vanity", w.gw.url))
        .header("host", "guest.owl.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("x-owl-standin"));
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["k"], "vanity");
}

/// Owners found as the controller finds them: OpenWhisk's subjects database, the
/// `identities` view by namespace name (blocked subjects are not in it), with the
/// action metadata from the whisks database and owl deciding entitlement.
#[tokio::test]
async fn owners_come_from_openwhisks_subjects_database() {
    use crate::common::openwhisk_db::OpenWhiskDbs;
    let lambda = lambda().await;
    let node = runtime_function(&lambda.endpoint, "owl-web-node", "action.js", WEB_NODE).await;
    let dbs = OpenWhiskDbs::create(couchdb().await).await;
    dbs.subject("guest@example.com", "guest", GUEST_UUID, GUEST_KEY, false)
        .await;
    dbs.subject("alice", "alice", ALICE_UUID, ALICE_KEY, false)
        .await;
    dbs.subject(
        "mallory",
        "mallory",
        "ma11041e-0000-4000-8000-000000000003",
        &"m".repeat(64),
        true,
    )
    .await;
    let exported = json!([{"key": "web-export", "value": true}]);
    dbs.action(
        "guest/page",
        json!([{"key": "p", "value": "action"}]),
        exported.clone(),
    )
    .await;
    dbs.action("alice/page", json!([]), exported.clone()).await;
    dbs.action("alice/secret", json!([]), json!([])).await;
    dbs.action("mallory/page", json!([]), exported.clone())
        .await;
    dbs.package(
        "alice",
        "pub",
        true,
        None,
        json!([{"key": "from", "value": "package"}]),
    )
    .await;
    dbs.action("alice/pub/tool", json!([]), exported).await;
    dbs.package("guest", "mine", false, Some(("alice", "pub")), json!([]))
        .await;
    let controller = standin(Vec::new()).await;
    let gw = TestGateway::start(&policy(
        &controller.url(),
        &lambda.endpoint,
        &format!(
            "{}\n[auth]\nsource = \"couchdb\"\n\n[metadata]\nsource = \"couchdb\"\n\n\
             [[route]]\naction = \"*/*\"\nfunction = \"{node}\"\n\n\
             [[route]]\naction = \"*/*/*\"\nfunction = \"{node}\"\n",
            dbs.policy_section()
        ),
    ))
    .await;
    let get = |path: &str| {
        let url = format!("{}/api/v1/web/{path}", gw.url);
        async move {
            let r = client().get(url).send().await.unwrap();
            let standin = r.headers().contains_key("x-owl-standin");
            let id = r
                .headers()
                .get("x-openwhisk-activation-id")
                .map(|v| v.to_str().unwrap().to_string());
            let status = r.status().as_u16();
            (status, standin, id, r.text().await.unwrap())
        }
    };
    // Anonymous, served from Lambda as guest's owner; the action's parameters under
    // the query's.
    let (status, standin, id, body) = get("guest/default/page.json?k=v").await;
    assert_eq!(status, 200, "{body}");
    assert!(!standin);
    let p: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((&p["k"], &p["p"]), (&json!("v"), &json!("action")));
    gw.flush().await;
    let record: Value = client()
        .get(format!(
            "{}/api/v1/namespaces/guest/activations/{}",
            gw.url,
            id.unwrap()
        ))
        .header("authorization", guest_auth())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        record["subject"], "guest@example.com",
        "the owner's subject"
    );
    // Through guest's binding of alice's public package: the bound action, annotated
    // with the binding (WAT:696-715), package parameters included.
    let (status, standin, _, body) = get("guest/mine/tool.json").await;
    assert_eq!(status, 200, "{body}");
    assert!(!standin);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["from"],
        "package"
    );
    // Not exported: 404 in the web route's shape.
    let (status, _, _, body) = get("alice/default/secret.json").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("\"error\": \"The requested resource does not exist.\""),
        "{body}"
    );
    // A blocked subject is not in the identities view: owl does not serve it.
    let (_, standin, _, _) = get("mallory/default/page.json").await;
    assert!(standin, "no owner found: the controller decides");
}
