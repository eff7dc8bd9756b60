//! The stand-in's web route (`/api/v1/web/{namespace}/{package|default}/{action}[.ext][/rest]`):
//! what owl proxies when it does not serve a web action itself, answered as OpenWhisk's
//! controller answers it (WebActions.scala, cited WA:line; the rules are collected in
//! docs/design/openwhisk-web-actions.md). It reuses owl's own web path
//! (`crate::invoke::web`) for the path grammar, CORS, `require-whisk-auth`, the error
//! shape and the transcoding of the result, and `crate::whisk::web` for the
//! arguments, so that a mapped action (served from Lambda) and an unmapped one
//! (answered here) give the same answers.
//!
//! The steps, in the controller's order (first failure wins): the owner of the
//! namespace, the action as the owner sees it, `web-export`, entitlement, the declared
//! size, CORS and `OPTIONS`, `require-whisk-auth`, the arguments, the blocking
//! invocation as the owner, and the result transcoded by the extension. The stand-in
//! has no throttles.

use super::{Inner, Resolved, StandinIdentity, identify, is_deprecated, resolve, start};
use crate::auth::Credentials;
use crate::error::WhiskError;
use crate::invoke::request::{content_length, read_body};
use crate::invoke::web::{
    Cors, WebTarget, accept_header, annotated_true, respond, web_error, whisk_auth_allows,
};
use crate::whisk::action::is_truthy;
use crate::whisk::web::{self, WebRequest};
use crate::whisk::{
    ActionMetadata, ActionPath, ActivationResponse, Deployment, StatusCode, TransactionId,
    messages, params, transaction,
};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long the controller gives a request entity to arrive (`toStrictEntity(30.seconds)`,
/// BasicHttpService.scala:83).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Answers a web call, marked as the stand-in's.
pub(super) async fn handle(
    inner: &Arc<Inner>,
    req: Request,
    target: WebTarget,
    tid: &TransactionId,
) -> Response {
    let accept = crate::invoke::web::accept_header(req.headers());
    let r = serve(inner, req, target, tid).await;
    let mut r = crate::invoke::web::negotiated(r, accept.as_deref(), tid);
    r.headers_mut()
        .insert("x-owl-standin", HeaderValue::from_static("true"));
    r
}

async fn serve(
    inner: &Arc<Inner>,
    req: Request,
    target: WebTarget,
    tid: &TransactionId,
) -> Response {
    let deployment = Deployment::default();
    let received = crate::context::epoch_ms(std::time::SystemTime::now());
    let WebTarget {
        path,
        extension,
        rest_at,
    } = target;
    let not_found = || {
        web_error(
            http::StatusCode::NOT_FOUND,
            messages::RESOURCE_DOES_NOT_EXIST,
            tid,
            &Cors::None,
            None,
        )
    };
    // The owner of the namespace, looked up by name: no credentials needed, and the
    // invocation runs as the owner (WA:570, 728-736).
    let Some(owner) = inner
        .identities
        .iter()
        .find(|i| i.namespace == path.namespace)
        .cloned()
    else {
        return not_found();
    };
    // The action as the owner sees it, with the package's (and binding's) parameters
    // merged (WA:571, 717-723), exported (WA:742-755), then entitled (WA:760-766).
    let (action, pkg_params, binding) = match lookup(inner, &owner, &path) {
        Ok(r) => r,
        Err(e) if e.status == http::StatusCode::NOT_FOUND => return not_found(),
        Err(e) => return web_error(e.status, &e.message, tid, &Cors::None, None),
    };
    let Some(metadata) = ActionMetadata::from_json(&action.metadata_json(&pkg_params)) else {
        return web_error(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            messages::INTERNAL_SERVER_ERROR,
            tid,
            &Cors::None,
            None,
        );
    };
    if !annotated_true(&metadata, "web-export") {
        return not_found();
    }
    // The owner's payload limit (WA:498, Identity.scala:62-67).
    let deployment = Deployment {
        payload_max: deployment.payload_max_for(Some(&owner.limits)),
        ..deployment
    };
    // The declared size (WA:498-500): after entitlement, before CORS.
    if let Some(len) = content_length(req.headers())
        && len > deployment.payload_max
    {
        let e = WhiskError::payload_too_large(len, deployment.payload_max);
        return web_error(e.status, &e.message, tid, &Cors::None, None);
    }
    // The whole entity first, as the controller makes it strict before routing
    // (BasicHttpService.scala `toStrictEntity`).
    let (parts, body) = req.into_parts();
    let bytes = match read_body(body, deployment.payload_max, BODY_READ_TIMEOUT).await {
        Ok(b) => b,
        Err(e) => return web_error(e.status, &e.message, tid, &Cors::None, None),
    };
    let custom_options = annotated_true(&metadata, "web-custom-options");
    let cors = Cors::for_action(&metadata, &parts.headers);
    // OPTIONS with the default CORS headers: answered here, the action not invoked
    // (WA:507-508).
    if !custom_options && parts.method == Method::OPTIONS {
        let mut headers = HeaderMap::new();
        cors.add(&mut headers);
        if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
            headers.insert(HeaderName::from_static(transaction::HEADER), v);
        }
        return (http::StatusCode::OK, headers).into_response();
    }
    // The caller, when the request carries Basic credentials of a known identity
    // (`__ow_user`, WA:109-120); anything else is an anonymous call (RA:215-218).
    let user = Credentials::from_headers(&parts.headers)
        .ok()
        .and_then(|c| identify(inner, &c).map(|i| i.namespace.clone()));
    // `require-whisk-auth`, skipped for OPTIONS with custom options (WA:521-527).
    let options_passes = custom_options && parts.method == Method::OPTIONS;
    if !options_passes && !whisk_auth_allows(&metadata, &parts.headers, user.is_some()) {
        return web_error(
            http::StatusCode::UNAUTHORIZED,
            messages::UNAUTHORIZED,
            tid,
            &cors,
            None,
        );
    }
    let raw = annotated_true(&metadata, "raw-http");
    let final_params = annotated_true(&metadata, "final");
    let immutable = |name: &str| {
        final_params
            && metadata
                .parameters
                .iter()
                .any(|p| p.key == name && !p.value.is_null())
    };
    let web_request = WebRequest {
        method: &parts.method,
        headers: &parts.headers,
        path: &parts.uri.path()[rest_at..],
        query: parts.uri.query(),
        body: &bytes,
        user: user.as_deref(),
    };
    let payload = match web::build_arguments(&web_request, raw, &immutable) {
        Ok(p) => p,
        Err(web::ArgumentError::NotAllowed) => {
            return web_error(
                http::StatusCode::BAD_REQUEST,
                messages::PARAMS_NOT_ALLOWED,
                tid,
                &cors,
                None,
            );
        }
        // A rejection of the body's unmarshaller: compact, without CORS (BHS:192-199).
        Err(web::ArgumentError::Malformed(text)) => {
            return super::error(WhiskError::rejected(text), tid);
        }
    };
    // Pekko negotiates the answer's content type after the action ran (WAT:1942-1988).
    let accept = accept_header(&parts.headers);
    // Always blocking, as the owner, for the deployment's longest wait (WA:442, 652).
    let (id, task) = if action.runs_as_sequence() {
        // A sequence gets the web arguments alone: its own parameters reach no
        // component (SequenceActions.scala:92-149).
        let call = super::sequence::Call {
            me: owner,
            sequence: action,
            package_params: pkg_params,
            binding,
            payload: Some(payload),
            received,
        };
        super::sequence::spawn(inner, call)
    } else {
        // The action's parameters under the payload, init parameters dropped (PA:159-164).
        // Final parameters were checked against the query and body (WA:640-650).
        let params = params::merge_over(&metadata, payload);
        // A deprecated runtime is refused as for any invocation
        // (PostActionActivation.scala:59-63).
        if is_deprecated(&metadata.kind) {
            return web_error(
                http::StatusCode::BAD_REQUEST,
                &messages::runtime_deprecated(&metadata.kind),
                tid,
                &cors,
                None,
            );
        }
        start(inner, &owner, action, binding, Value::Object(params), None)
    };
    let wait = Duration::from_millis(deployment.max_blocking_wait_ms);
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(activation)) => respond(&activation, extension, accept.as_deref(), tid, &cors),
        // WA:700-708.
        Ok(Err(_)) => web_error(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            messages::INTERNAL_SERVER_ERROR,
            tid,
            &cors,
            None,
        ),
        // WA:692-698.
        Err(_) => web_error(
            http::StatusCode::ACCEPTED,
            messages::RESPONSE_NOT_READY,
            tid,
            &cors,
            Some(&id),
        ),
    }
}

/// `resolve` as the web route orders its checks: the controller resolves packages and
/// bindings without entitlement (WhiskAction.scala:622-647), checks `web-export`, and
/// only then entitlement (WA:742-766). So a binding the owner may not use answers 404
/// unless the action behind it exists and is exported, and 403 only then.
fn lookup(
    inner: &Inner,
    owner: &StandinIdentity,
    path: &ActionPath,
) -> Result<Resolved, WhiskError> {
    match resolve(inner, owner, path) {
        Err(e) if e.status == http::StatusCode::FORBIDDEN => {
            let exported = bound_action(inner, path).is_some_and(|a| {
                a.annotations
                    .iter()
                    .any(|(k, v)| k == "web-export" && *v == Value::Bool(true))
            });
            Err(if exported { e } else { WhiskError::not_found() })
        }
        r => r,
    }
}

/// The action `path` names through a binding, whoever may use it.
fn bound_action<'a>(inner: &'a Inner, path: &ActionPath) -> Option<&'a super::StandinAction> {
    let pkg = inner
        .packages
        .get(&format!("{}/{}", path.namespace, path.package.as_ref()?))?;
    let (tns, tpkg) = pkg.binding.as_ref()?;
    inner
        .actions
        .get(&ActionPath::new(tns, Some(tpkg), &path.action).to_path_string())
}

/// [`Behaviour::WebScript`](super::Behaviour::WebScript): the web tests' function,
/// for an action of `kind`. On Node.js (any kind but Python's):
///
/// ```js
/// function main(params) {
///   if (params.crash) throw new Error("crashed");
///   if (params.sleep) return new Promise(r => setTimeout(() => r({ slept: true }), Number(params.sleep)));
///   if (typeof params.respond === "string") return JSON.parse(params.respond);
///   return params;
/// }
/// ```
///
/// On Python:
///
/// ```python
/// def main(params):
///     if params.get("crash"):
///         raise Exception("crashed")
///     if isinstance(params.get("respond"), str):
///         return json.loads(params["respond"])
///     return params
/// ```
///
/// The result is classified as owl's runtime (`crates/owl-runtime/src/lib.rs`
/// `classify`, `launchers/launcher.{js,py}`) and Lambda path
/// (`crates/owl-lambda/src/outcome.rs`) classify it: an error thrown synchronously by
/// a Node.js function is the developer error `An error has occurred: <error>`, an
/// exception of a Python function the application error `str(ex)`; an object with
/// `error` is an application error keeping only `error`; any other object, or an
/// array, a success; anything else (string, number, boolean, null) the developer error
/// `The action did not return a dictionary.` (Node.js) or `… dictionary or array.`
/// (Python).
pub(super) async fn script(kind: &str, params: Map<String, Value>) -> ActivationResponse {
    let python = kind.starts_with("python");
    let result = if python {
        python_script(params)
    } else {
        node_script(params).await
    };
    match result {
        Err(e) if python => ActivationResponse::error(StatusCode::ApplicationError, e.into(), None),
        Err(e) => ActivationResponse::error(
            StatusCode::DeveloperError,
            format!("An error has occurred: {e}").into(),
            None,
        ),
        Ok(Value::Object(mut o)) => match o.remove("error") {
            Some(e) => ActivationResponse::error(StatusCode::ApplicationError, e, None),
            None => ActivationResponse::success(Value::Object(o), None),
        },
        Ok(a @ Value::Array(_)) => ActivationResponse::success(a, None),
        Ok(_) => ActivationResponse::error(
            StatusCode::DeveloperError,
            if python {
                "The action did not return a dictionary or array."
            } else {
                "The action did not return a dictionary."
            }
            .into(),
            None,
        ),
    }
}

/// The Node.js function's result, or the text of what it threw.
async fn node_script(params: Map<String, Value>) -> Result<Value, String> {
    // JavaScript's truthiness is OpenWhisk's.
    if params.get("crash").is_some_and(is_truthy) {
        return Err("Error: crashed".into());
    }
    if let Some(sleep) = params.get("sleep").filter(|v| is_truthy(v)) {
        tokio::time::sleep(Duration::from_millis(timeout_delay(sleep))).await;
        return Ok(serde_json::json!({"slept": true}));
    }
    match params.get("respond") {
        // V8's wording of a parse error differs; a developer error is a 400 on the web
        // route whatever its text (WA:687-689).
        Some(Value::String(text)) => {
            serde_json::from_str(text).map_err(|e| format!("SyntaxError: {e}"))
        }
        _ => Ok(Value::Object(params)),
    }
}

/// `setTimeout(f, Number(v))`'s delay in ms: `Number` of a string is its trimmed
/// decimal value (`""` → 0), of a boolean 0 or 1, anything unrepresentable NaN; a
/// delay that is NaN or outside 1..=2^31-1 is 1 ms (Node.js `timers`).
fn timeout_delay(v: &Value) -> u64 {
    let n = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s.trim().is_empty() => 0.0,
        Value::String(s) => s.trim().parse().unwrap_or(f64::NAN),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Null => 0.0,
        _ => f64::NAN,
    };
    if (1.0..=2_147_483_647.0).contains(&n) {
        n as u64
    } else {
        1
    }
}

/// The Python function's result, or the text of the exception it raised.
fn python_script(params: Map<String, Value>) -> Result<Value, String> {
    let truthy = |v: &Value| match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        other => is_truthy(other),
    };
    if params.get("crash").is_some_and(truthy) {
        return Err("crashed".into());
    }
    match params.get("respond") {
        // Python's wording of a parse error differs.
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| e.to_string()),
        _ => Ok(Value::Object(params)),
    }
}

#[cfg(test)]
mod tests {
    //! Citations are to OpenWhisk's `WebActionsApiTests.scala` (WAT:line, HEAD
    //! `1fae641a2b30`).

    use super::super::{Behaviour, GUEST_KEY, GUEST_UUID, Standin, StandinAction, StandinBuilder};
    use crate::whisk::web::pretty;
    use crate::whisk::{StatusCode, messages};
    use reqwest::Method;
    use serde_json::{Value, json};

    const ALICE_UUID: &str = "7a9b2c3d-1e2f-4a5b-8c6d-0e1f2a3b4c5d";
    const ALICE_KEY: &str = "aLiCeKeY0123456789aLiCeKeY0123456789aLiCeKeY0123456789aLiCeKeY01";

    /// guest, and alice who owns `alice/pkg/*` (package parameters `p`, `q`) and
    /// `alice/*`.
    async fn standin(actions: Vec<StandinAction>) -> Standin {
        let mut b = StandinBuilder::with_guest()
            .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
            .package(
                "alice",
                "pkg",
                false,
                vec![("p".into(), json!("from package")), ("q".into(), json!(1))],
            );
        for a in actions {
            b = b.action(a);
        }
        b.spawn().await.expect("stand-in starts")
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    fn call(s: &Standin, method: Method, path: &str, tid: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, format!("{}/api/v1/web/{path}", s.url()))
            .header("x-request-id", tid)
    }

    fn error_text(message: &str, tid: &str) -> String {
        pretty(&json!({"error": message, "code": tid}))
    }

    fn script(path: &str) -> StandinAction {
        StandinAction::new(path, Behaviour::WebScript).web_export()
    }

    /// WAT:381-409: unknown namespace, missing package, action not exported (and
    /// `web-export` not JSON `true`), missing action → 404, for every method and with
    /// or without credentials; the error is `{error, code}` pretty (WAT:357-365,
    /// 898-913: four lines), without CORS and without invoking anything.
    #[tokio::test]
    async fn unknown_or_unexported_actions_are_not_found() {
        let s = standin(vec![
            StandinAction::new("alice/pkg/hidden", Behaviour::Echo),
            StandinAction::new("alice/stringly", Behaviour::Echo)
                .annotation("web-export", json!("true")),
        ])
        .await;
        for path in [
            "nobody/default/a.json",
            "alice/nopkg/a.json",
            "alice/pkg/hidden.json",
            "alice/pkg/hidden",
            "alice/default/stringly.json",
            "alice/default/missing.json",
        ] {
            for method in [Method::GET, Method::POST, Method::OPTIONS, Method::DELETE] {
                for creds in [false, true] {
                    let mut r = call(&s, method.clone(), path, "tid-404");
                    if creds {
                        r = r.basic_auth(GUEST_UUID, Some(GUEST_KEY));
                    }
                    let r = r.send().await.unwrap();
                    assert_eq!(r.status(), 404, "{method} {path}");
                    assert_eq!(r.headers()["x-owl-standin"], "true");
                    assert_eq!(r.headers()["x-request-id"], "tid-404");
                    assert_eq!(r.headers()["content-type"], "application/json");
                    assert!(r.headers().get("access-control-allow-origin").is_none());
                    assert!(r.headers().get("x-openwhisk-activation-id").is_none());
                    let body = r.text().await.unwrap();
                    assert_eq!(
                        body,
                        error_text(messages::RESOURCE_DOES_NOT_EXIST, "tid-404"),
                        "{method} {path}"
                    );
                    assert_eq!(body.lines().count(), 4);
                }
            }
        }
        assert_eq!(s.invocations(), 0);
    }

    /// WAT:411-449 and 1797-1820: OPTIONS on an exported action answers 200, empty,
    /// with the default CORS headers (echoing `Access-Control-Request-Headers`), never
    /// checks `require-whisk-auth` and never invokes the action.
    #[tokio::test]
    async fn options_answers_cors_without_invoking() {
        let s = standin(vec![
            script("alice/pkg/open"),
            script("alice/pkg/guarded").annotation("require-whisk-auth", json!(true)),
        ])
        .await;
        for path in [
            "alice/pkg/open.json",
            "alice/pkg/guarded.json",
            "alice/pkg/open.http/x",
        ] {
            let r = call(&s, Method::OPTIONS, path, "tid-options")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let h = r.headers();
            assert_eq!(h["access-control-allow-origin"], "*");
            assert_eq!(
                h["access-control-allow-methods"],
                "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
            );
            assert_eq!(
                h["access-control-allow-headers"],
                "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"
            );
            assert!(h.get("x-openwhisk-activation-id").is_none());
            assert_eq!(h["x-request-id"], "tid-options");
            assert_eq!(r.text().await.unwrap(), "");
        }
        let r = call(&s, Method::OPTIONS, "alice/pkg/open", "tid-options")
            .header("access-control-request-headers", "x-custom-header")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["access-control-allow-headers"],
            "x-custom-header"
        );
        assert_eq!(s.invocations(), 0);
        assert_eq!(
            s.counters()
                .invocations
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert!(s.activations().is_empty());
    }

    /// WAT:451-522: `require-whisk-auth` as a string needs `X-Require-Whisk-Auth` with
    /// that value — wrong or missing → 401 pretty with CORS, not invoked; right → the
    /// action runs and sees the header. WAT:411-449: `true` needs valid credentials of
    /// any identity, and `__ow_user` is the caller's namespace, not the owner's.
    #[tokio::test]
    async fn require_whisk_auth_checks_the_secret_or_the_credentials() {
        let s = standin(vec![
            script("alice/pkg/secret").annotation("require-whisk-auth", json!("s3cret")),
            script("alice/pkg/members").annotation("require-whisk-auth", json!(true)),
        ])
        .await;
        let unauthorized = error_text(messages::UNAUTHORIZED, "tid-auth");
        for given in [None, Some("s3cret-bad")] {
            let mut r = call(&s, Method::GET, "alice/pkg/secret.json", "tid-auth");
            if let Some(g) = given {
                r = r.header("x-require-whisk-auth", g);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 401, "{given:?}");
            assert_eq!(r.headers()["access-control-allow-origin"], "*");
            assert!(r.headers().get("www-authenticate").is_none());
            assert!(r.headers().get("x-openwhisk-activation-id").is_none());
            assert_eq!(r.text().await.unwrap(), unauthorized);
        }
        assert_eq!(s.invocations(), 0);
        let r = call(&s, Method::GET, "alice/pkg/secret.json", "tid-auth")
            .header("x-require-whisk-auth", "s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["__ow_headers"]["x-require-whisk-auth"], "s3cret");
        assert!(body.get("__ow_user").is_none());
        assert_eq!(s.invocations(), 1);

        let r = call(&s, Method::POST, "alice/pkg/members.json", "tid-auth")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.text().await.unwrap(), unauthorized);
        // Credentials that are not an identity's are an anonymous call (RA:215-218).
        let r = call(&s, Method::POST, "alice/pkg/members.json", "tid-auth")
            .basic_auth(GUEST_UUID, Some(ALICE_KEY))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = call(&s, Method::POST, "alice/pkg/members.json", "tid-auth")
            .basic_auth(GUEST_UUID, Some(GUEST_KEY))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["__ow_user"], "guest");
        assert_eq!(s.invocations(), 2);
    }

    /// `.json` echoes the arguments pretty (WAT:982-1000) with the HTTP context
    /// (WAT:107-119): `__ow_method`, `__ow_headers` (with the body's content type,
    /// WAT:577-603), `__ow_path` (WAT:877-896); query then body merged over the
    /// package's and action's parameters (WAT:554-575, 630-654, 834-875).
    #[tokio::test]
    async fn json_echoes_the_arguments_with_the_http_context() {
        let s = standin(vec![
            script("alice/pkg/echo")
                .param("q", json!("from action"))
                .param("a", json!("default")),
        ])
        .await;
        let r = call(
            &s,
            Method::POST,
            "alice/pkg/echo.json/content/more?a=b&c=d",
            "tid-json",
        )
        .header("x-custom", "hello")
        .json(&json!({"extra": "read all about it", "c": "from body"}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["x-request-id"], "tid-json");
        assert_eq!(h["x-owl-standin"], "true");
        let id = h["x-openwhisk-activation-id"].to_str().unwrap().to_string();
        let text = r.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, pretty(&body), "the body is pretty-printed");
        assert_eq!(body["__ow_method"], "post");
        assert_eq!(body["__ow_path"], "/content/more");
        assert_eq!(body["__ow_headers"]["x-custom"], "hello");
        assert_eq!(body["__ow_headers"]["content-type"], "application/json");
        assert!(body.get("__ow_user").is_none());
        assert_eq!(body["p"], "from package");
        assert_eq!(body["q"], "from action");
        assert_eq!(body["a"], "b");
        assert_eq!(body["c"], "from body");
        assert_eq!(body["extra"], "read all about it");
        let recorded = s.activations();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].activation_id.as_str(), id);

        // GET on the default package, no rest: `__ow_path` is "" (WAT:656-673).
        let r = call(&s, Method::GET, "alice/pkg/echo.json", "tid-json")
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["__ow_method"], "get");
        assert_eq!(body["__ow_path"], "");
        assert_eq!(body["a"], "default");
    }

    /// WAT:915-932: `.http` answers with the result's `statusCode` and `headers`; the
    /// result is given by the caller through `respond`.
    #[tokio::test]
    async fn http_answers_the_status_and_headers_the_action_returns() {
        let s = standin(vec![script("alice/redirect")]).await;
        let r = call(&s, Method::GET, "alice/default/redirect.http", "tid-http")
            .query(&[(
                "respond",
                r#"{"statusCode":302,"headers":{"location":"x"}}"#,
            )])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "x");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert!(r.headers().get("x-openwhisk-activation-id").is_some());
        assert_eq!(r.text().await.unwrap(), "");
        // No extension is `.http` too (WAT:949-965).
        let r = call(&s, Method::GET, "alice/default/redirect", "tid-http")
            .query(&[(
                "respond",
                r#"{"statusCode":302,"headers":{"location":"x"}}"#,
            )])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
    }

    /// WAT:1481-1502: a developer error (the action threw) is 400 `There was an error
    /// processing your request.` with the activation id; the record keeps the Node.js
    /// runtime's text. A non-dictionary result is a developer error too; an `error`
    /// key an application error.
    #[tokio::test]
    async fn errors_are_classified_as_the_lambda_path_does() {
        let s = standin(vec![script("alice/pkg/js")]).await;
        let r = call(&s, Method::GET, "alice/pkg/js.json?crash=true", "tid-crash")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let id = r.headers()["x-openwhisk-activation-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            r.text().await.unwrap(),
            error_text(messages::ERROR_PROCESSING_REQUEST, "tid-crash")
        );
        let act = s.activations().pop().unwrap();
        assert_eq!(act.activation_id.as_str(), id);
        assert_eq!(act.response.status_code, StatusCode::DeveloperError);
        assert_eq!(
            act.response.result,
            Some(json!({"error": "An error has occurred: Error: crashed"}))
        );
        // An empty query value is falsy.
        let r = call(&s, Method::GET, "alice/pkg/js.json?crash=", "tid-crash")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        let r = call(&s, Method::GET, "alice/pkg/js.json", "tid-crash")
            .query(&[("respond", "\"text\"")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let act = s.activations().pop().unwrap();
        assert_eq!(
            act.response.result,
            Some(json!({"error": "The action did not return a dictionary."}))
        );

        // WAT:1445-1463: an application error transcodes its `error`.
        let r = call(&s, Method::GET, "alice/pkg/js.http", "tid-crash")
            .query(&[(
                "respond",
                r#"{"error":{"statusCode":418,"body":"teapot"},"x":1}"#,
            )])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 418);
        assert_eq!(r.text().await.unwrap(), "teapot");
        let act = s.activations().pop().unwrap();
        assert_eq!(act.response.status_code, StatusCode::ApplicationError);
        assert_eq!(
            act.response.result,
            Some(json!({"error": {"statusCode": 418, "body": "teapot"}}))
        );
    }

    /// WAT:1613-1629: the query may not name a reserved property; WAT:1519-1585: a
    /// declared length over the limit is 413 without CORS. Neither invokes.
    #[tokio::test]
    async fn refused_arguments_and_sizes_do_not_invoke() {
        let s = standin(vec![script("alice/pkg/js")]).await;
        let r = call(
            &s,
            Method::GET,
            "alice/pkg/js.json?__ow_method=put",
            "tid-args",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            r.text().await.unwrap(),
            error_text(messages::PARAMS_NOT_ALLOWED, "tid-args")
        );
        let r = call(&s, Method::POST, "alice/pkg/js.json", "tid-args")
            .body(vec![b'x'; (1 << 20) + 1])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert!(r.headers().get("access-control-allow-origin").is_none());
        assert_eq!(
            r.text().await.unwrap(),
            error_text(
                "Request larger than allowed: 1048577 > 1048576 bytes.",
                "tid-args"
            )
        );
        assert_eq!(s.invocations(), 0);
    }

    /// WAT:411-449 with the record of doc §2.7: the activation belongs to the owner
    /// (namespace and subject), whoever called, and the owner's activations list shows
    /// it, through a binding with its `binding` annotation (WAT:675-694).
    #[tokio::test]
    async fn the_record_is_the_owners_and_listed() {
        let s = StandinBuilder::with_guest()
            .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
            .package("alice", "pkg", false, vec![])
            .binding(
                "alice",
                "bound",
                "alice",
                "pkg",
                vec![("b".into(), json!("from binding"))],
            )
            .action(script("alice/pkg/js"))
            .spawn()
            .await
            .unwrap();
        let r = call(&s, Method::PUT, "alice/bound/js.json", "tid-record")
            .basic_auth(GUEST_UUID, Some(GUEST_KEY))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id = r.headers()["x-openwhisk-activation-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["__ow_user"], "guest");
        assert_eq!(body["b"], "from binding");
        let listed: Value = client()
            .get(format!("{}/api/v1/namespaces/_/activations", s.url()))
            .basic_auth(ALICE_UUID, Some(ALICE_KEY))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["activationId"], id.as_str());
        assert_eq!(listed[0]["namespace"], "alice");
        assert_eq!(listed[0]["name"], "js");
        let record: Value = client()
            .get(format!("{}/api/v1/namespaces/_/activations/{id}", s.url()))
            .basic_auth(ALICE_UUID, Some(ALICE_KEY))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(record["subject"], "alice");
        let annotations = record["annotations"].as_array().unwrap();
        assert!(annotations.contains(&json!({"key": "path", "value": "alice/pkg/js"})));
        assert!(annotations.contains(&json!({"key": "binding", "value": "alice/bound"})));
        // The caller's own list does not show it.
        let mine: Value = client()
            .get(format!("{}/api/v1/namespaces/_/activations", s.url()))
            .basic_auth(GUEST_UUID, Some(GUEST_KEY))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(mine, json!([]));
    }

    /// The classification of the script's results, without a server.
    #[tokio::test]
    async fn script_results_are_classified_like_the_runtimes() {
        let node = |v: Value| super::script("nodejs:20", v.as_object().unwrap().clone());
        let r = node(json!({"a": 1})).await;
        assert_eq!(r.status_code, StatusCode::Success);
        assert_eq!(r.result, Some(json!({"a": 1})));
        let r = node(json!({"respond": "[1]"})).await;
        assert_eq!(r.status_code, StatusCode::Success);
        assert_eq!(r.result, Some(json!([1])));
        for text in ["\"text\"", "1", "null", "true"] {
            let r = node(json!({"respond": text})).await;
            assert_eq!(r.status_code, StatusCode::DeveloperError, "{text}");
            assert_eq!(
                r.result,
                Some(json!({"error": "The action did not return a dictionary."}))
            );
        }
        let r = node(json!({"respond": "{broken"})).await;
        assert_eq!(r.status_code, StatusCode::DeveloperError);
        // Only a string is parsed; "crash" follows JavaScript's truthiness.
        let r = node(json!({"respond": {"a": 1}})).await;
        assert_eq!(r.status_code, StatusCode::Success);
        assert_eq!(
            node(json!({"crash": 0})).await.status_code,
            StatusCode::Success
        );
        assert_eq!(
            node(json!({"crash": "false"})).await.status_code,
            StatusCode::DeveloperError
        );
        let r = node(json!({"sleep": "5"})).await;
        assert_eq!(r.result, Some(json!({"slept": true})));
        assert_eq!(super::timeout_delay(&json!("2000")), 2000);
        assert_eq!(super::timeout_delay(&json!("x")), 1);
        assert_eq!(super::timeout_delay(&json!(1e12)), 1);

        let py = |v: Value| super::script("python:3.11", v.as_object().unwrap().clone());
        let r = py(json!({"crash": "1"})).await;
        assert_eq!(r.status_code, StatusCode::ApplicationError);
        assert_eq!(r.result, Some(json!({"error": "crashed"})));
        assert_eq!(
            py(json!({"crash": []})).await.status_code,
            StatusCode::Success
        );
        let r = py(json!({"respond": "\"text\""})).await;
        assert_eq!(
            r.result,
            Some(json!({"error": "The action did not return a dictionary or array."}))
        );
        assert_eq!(
            py(json!({"sleep": "5"})).await.status_code,
            StatusCode::Success
        );
    }
}
