//! Web actions (`/api/v1/web/{namespace}/{package|default}/{action}[.ext][/rest]`)
//! served from Lambda exactly as the controller's web route serves them
//! (docs/web-actions.md; OpenWhisk's
//! `core/controller/src/main/scala/org/apache/openwhisk/core/controller/WebActions.scala`,
//! cited as WA:line below; the rules are collected in
//! docs/design/openwhisk-web-actions.md).
//!
//! The steps, in the controller's order (first failure wins): the owner of the
//! namespace (no credentials needed), the action as the owner sees it, `web-export`,
//! the owner's throttles, the declared size, CORS and `OPTIONS`, `require-whisk-auth`,
//! the arguments, the blocking invocation as the owner, and the result transcoded by
//! the extension. owl decides only what it can decide exactly: whenever the answer
//! depends on something it cannot see (no way to learn the owner, a lookup that
//! failed, an entitlement the controller decides, a composition), the request goes to
//! the controller unchanged.

use super::{
    Admitted, Job, Outcome, ReplayableRequest, Validated, Waited, draw, is_composition, refusal,
    request, route_for, run_blocking,
};
use crate::auth::Caller;
use crate::context::RequestContext;
use crate::controller::proxy;
use crate::error::WhiskError;
use crate::gateway::{Gateway, Snapshot};
use crate::policy::Route;
use crate::telemetry::timing::{Path, Phase};
use crate::telemetry::traces;
use crate::whisk::names::validate_segment;
use crate::whisk::web::{self, Extension, WebAnswer, WebRequest};
use crate::whisk::{ActionMetadata, ActionPath, ActivationId, StatusCode, TransactionId};
use crate::whisk::{messages, params, transaction};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, header};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The web API's mount point.
pub(crate) const PREFIX: &str = "/api/v1/web/";

/// The `X-Require-Whisk-Auth` header (`WhiskAction.requireWhiskAuthHeader`,
/// WhiskAction.scala:351).
const REQUIRE_WHISK_AUTH_HEADER: &str = "x-require-whisk-auth";

/// The default CORS headers of a web action (CorsSettings.scala:40-44, 56-66).
const CORS_ALLOW_METHODS: &str = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH";
const CORS_ALLOW_HEADERS: &str =
    "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent";

/// A web call, parsed once from its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebTarget {
    /// The action as addressed (the namespace as written: no `_` on the web path).
    pub(crate) path: ActionPath,
    pub(crate) extension: Extension,
    /// Where the path's rest (`__ow_path`) begins.
    pub(crate) rest_at: usize,
}

/// Parses `/api/v1/web/{ns}/{pkg}/{action}[.ext][/rest]` for the methods the web
/// route accepts (WA:404-407, 456-466); anything else is the controller's.
pub(crate) fn split_path(method: &Method, path: &str) -> Option<WebTarget> {
    if !matches!(
        *method,
        Method::GET
            | Method::DELETE
            | Method::POST
            | Method::PUT
            | Method::HEAD
            | Method::OPTIONS
            | Method::PATCH
    ) {
        return None;
    }
    let tail = path.strip_prefix(PREFIX)?;
    let mut parts = tail.splitn(4, '/');
    let (ns, pkg, action) = (parts.next()?, parts.next()?, parts.next()?);
    let rest_at = path.len() - parts.next().map_or(0, |r| r.len() + 1);
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|d| d.into_owned())
    };
    let (ns, pkg, segment) = (decode(ns)?, decode(pkg)?, decode(action)?);
    // Every segment is an entity name, matched whole (WA:406-407, 458-460).
    if validate_segment(&ns).is_err()
        || validate_segment(&pkg).is_err()
        || validate_segment(&segment).is_err()
    {
        return None;
    }
    // `"default".r` matches as a prefix and does not backtrack: a package whose name
    // starts with `default` is unreachable through the web route (WA:407) — the
    // controller answers it.
    let package = match pkg.as_str() {
        "default" => None,
        p if p.starts_with("default") => return None,
        _ => Some(pkg),
    };
    let (name, extension) = web::split_extension(&segment);
    // A name valid with its extension but not without it is the controller's (its
    // route throws while building the name, WA:485).
    if validate_segment(name).is_err() {
        return None;
    }
    let name = name.to_string();
    Some(WebTarget {
        path: ActionPath {
            namespace: ns,
            package,
            action: name,
        },
        extension,
        rest_at,
    })
}

/// OpenWhisk's nginx rewrite of a vanity host (`ansible/roles/nginx/templates/
/// nginx.conf.j2:100-139`): `<namespace>.<vanity_host>/<rest>` is
/// `/api/v1/web/<namespace>/<rest>`, and `/` alone the namespace's
/// `public/index.html`. A namespace must match `[0-9a-zA-Z-]+`; the locations nginx
/// serves itself (`/blackbox.tar.gz`, `/cli…`, `/metrics…`) are not rewritten.
pub(crate) fn vanity_rewrite(host: &str, vanity: &str, path_and_query: &str) -> Option<String> {
    let host = host.split(':').next().unwrap_or(host);
    let ns = host
        .len()
        .checked_sub(vanity.len() + 1)
        .filter(|&n| n > 0)
        .and_then(|n| {
            let (ns, dot_host) = host.split_at(n);
            (dot_host.len() == vanity.len() + 1
                && dot_host.starts_with('.')
                && dot_host[1..].eq_ignore_ascii_case(vanity))
            .then_some(ns)
        })?;
    if !ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let path = path_and_query.split('?').next().unwrap_or("");
    if path == "/" {
        return Some(format!("{PREFIX}{ns}/public/index.html"));
    }
    if ["/blackbox.tar.gz", "/cli", "/metrics"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        return None;
    }
    Some(format!(
        "{PREFIX}{ns}/{}",
        path_and_query.strip_prefix('/').unwrap_or(path_and_query)
    ))
}

/// How the answer carries CORS: OpenWhisk's defaults, or none when the action
/// answers `OPTIONS` itself (`web-custom-options: true`, WA:502-537).
#[derive(Clone)]
pub(crate) enum Cors {
    /// No CORS headers from owl.
    None,
    /// The defaults, echoing the request's `Access-Control-Request-Headers`.
    Default(Option<HeaderValue>),
}

impl Cors {
    /// The CORS of a web action with `metadata`, for a request with `headers`.
    pub(crate) fn for_action(metadata: &ActionMetadata, headers: &HeaderMap) -> Self {
        if annotated_true(metadata, "web-custom-options") {
            Cors::None
        } else {
            Cors::Default(
                headers
                    .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                    .map(|v| {
                        v.to_str()
                            .ok()
                            .and_then(|s| HeaderValue::from_str(&web::allow_headers_echo(s)).ok())
                            .unwrap_or_else(|| v.clone())
                    }),
            )
        }
    }

    pub(crate) fn add(&self, headers: &mut HeaderMap) {
        if let Cors::Default(requested) = self {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(CORS_ALLOW_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                requested
                    .clone()
                    .unwrap_or(HeaderValue::from_static(CORS_ALLOW_HEADERS)),
            );
        }
    }
}

/// An error of the web route: `{"error", "code"}` pretty-printed (WA:49, RA:142-143),
/// with the CORS headers when the error arises inside the CORS directive and the
/// activation id once an activation exists (WA:665, 696).
pub(crate) fn web_error(
    status: http::StatusCode,
    message: &str,
    tid: &TransactionId,
    cors: &Cors,
    activation: Option<&ActivationId>,
) -> Response {
    let body = web::error_body(message, tid.as_str());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    finish_headers(&mut headers, tid, cors, activation);
    (status, headers, body).into_response()
}

fn finish_headers(
    headers: &mut HeaderMap,
    tid: &TransactionId,
    cors: &Cors,
    activation: Option<&ActivationId>,
) {
    cors.add(headers);
    if let Some(id) = activation
        && let Ok(v) = HeaderValue::from_str(id.as_str())
    {
        headers.insert(
            HeaderName::from_static(super::response::ACTIVATION_ID_HEADER),
            v,
        );
    }
    if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
        headers.insert(HeaderName::from_static(transaction::HEADER), v);
    }
}

/// A `WhiskError` of the shared steps (throttles, body reading), in the web route's
/// pretty shape.
fn from_whisk(e: &WhiskError, tid: &TransactionId, cors: &Cors) -> Response {
    let mut resp = web_error(e.status, &e.message, tid, cors, None);
    if let Some(s) = e.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

/// The action's transcoded answer (status, its headers, content type and body).
fn answer(a: WebAnswer, tid: &TransactionId, cors: &Cors, id: &ActivationId) -> Response {
    let status =
        http::StatusCode::from_u16(a.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    // The CORS defaults (WA:507 `respondWithHeaders`) and the activation id
    // (`respondWithActivationIdHeader`) are added before the action's own headers,
    // not instead of them: an action's `Access-Control-Allow-Origin` reaches the
    // client beside the default, as from the controller.
    let mut headers = HeaderMap::with_capacity(a.headers.len() + 6);
    cors.add(&mut headers);
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        headers.append(
            HeaderName::from_static(super::response::ACTIVATION_ID_HEADER),
            v,
        );
    }
    for (k, v) in a.headers {
        headers.append(k, v);
    }
    if let Some(ct) = a.content_type {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
        headers.insert(HeaderName::from_static(transaction::HEADER), v);
    }
    // Built by hand: a body type's `IntoResponse` would add a content type of its own to
    // an answer that must have none (204).
    let mut resp = Response::new(Body::from(a.body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// True when the annotation is JSON `true` (`getAs[Boolean]`, Parameter.scala:114-117).
pub(crate) fn annotated_true(m: &ActionMetadata, key: &str) -> bool {
    m.annotation(key) == Some(&Value::Bool(true))
}

/// `require-whisk-auth` (WA:781-797): absent or `false` allows; `true` needs valid
/// OpenWhisk credentials; a string or number must equal `X-Require-Whisk-Auth` —
/// compared in constant time (the controller uses `==`; the answers are the same);
/// anything else never allows.
pub(crate) fn whisk_auth_allows(
    m: &ActionMetadata,
    headers: &HeaderMap,
    authenticated: bool,
) -> bool {
    let expected = match m.annotation("require-whisk-auth") {
        None | Some(Value::Bool(false)) => return true,
        Some(Value::Bool(true)) => return authenticated,
        Some(Value::String(s)) => s.clone(),
        // `BigDecimal.toString` of the number (`1e3` → `1E+3`).
        Some(n @ Value::Number(_)) => web::compact(n),
        Some(_) => return false,
    };
    headers
        .get(REQUIRE_WHISK_AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| crate::auth::secrets_equal(given, &expected))
}

/// The caller's namespace when the request carries valid Basic credentials
/// (`__ow_user`, WA:109-120); anything else is an anonymous call (RA:215-218).
async fn caller_namespace(
    rt: &Snapshot,
    headers: &HeaderMap,
    ctx: &RequestContext,
) -> Option<String> {
    headers.get(header::AUTHORIZATION)?;
    let started = Instant::now();
    let caller = match Caller::from_headers(headers, false) {
        Ok(c @ Caller::Basic(_)) => c,
        _ => return None,
    };
    let identity = traces::start("auth")
        .instrument(rt.directory.identify(&caller, &ctx.tid))
        .await;
    ctx.timings.add(Phase::Auth, started.elapsed());
    identity.ok().map(|i| i.namespace.clone())
}

/// Handles a web call: served from Lambda when a route covers the action and owl can
/// learn its owner, else proxied unchanged.
pub(crate) async fn handle(
    gw: Arc<Gateway>,
    rt: Arc<Snapshot>,
    req: Request<Body>,
    ctx: RequestContext,
    target: WebTarget,
) -> Response {
    let routes = &rt.policy.routes;
    let matching = Instant::now();
    let direct = routes
        .may_cover_action_name(&target.path.action)
        .then(|| routes.find(&target.path))
        .flatten()
        .filter(|r| r.serves_web())
        .cloned();
    let may_be_binding =
        target.path.package.is_some() && routes.may_cover_packaged(&target.path.action);
    ctx.timings.add(Phase::Route, matching.elapsed());
    if direct.is_none() && !may_be_binding {
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    if let Some(r) = &direct
        && !r.takes(draw())
    {
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    let accept = accept_header(req.headers());
    let tid = ctx.tid.clone();
    // Boxed: the Lambda path's state is large (see `invoke::handle`).
    let resp = Box::pin(served(gw, rt, req, ctx, target, direct)).await;
    negotiated(resp, accept.as_deref(), &tid)
}

/// Pekko negotiates every JSON answer of the web route, its errors included (each
/// `terminate` completes with the JSON marshaller, ErrorResponse.scala:288-293): an
/// `Accept` that does not admit `application/json` turns them into the 406. Answers
/// already negotiated (transcoded results) pass unchanged, and so does a controller's
/// answer, which it negotiated itself.
pub(crate) fn negotiated(resp: Response, accept: Option<&str>, tid: &TransactionId) -> Response {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"));
    if json
        && resp.status() != http::StatusCode::NOT_ACCEPTABLE
        && !accepts(accept, "application/json")
    {
        return WhiskError::not_acceptable("application/json").render(tid);
    }
    resp
}

/// A web call some route may cover.
async fn served(
    gw: Arc<Gateway>,
    rt: Arc<Snapshot>,
    req: Request<Body>,
    ctx: RequestContext,
    target: WebTarget,
    direct: Option<Arc<Route>>,
) -> Response {
    let tid = ctx.tid.clone();
    let WebTarget {
        path,
        extension,
        rest_at,
    } = target;
    // The owner of the namespace: the invocation runs as the owner (WA:570, 728-736).
    let started = Instant::now();
    let owner = traces::start("auth")
        .instrument(rt.directory.owner(&path.namespace, &tid))
        .await;
    ctx.timings.add(Phase::Auth, started.elapsed());
    let owner = match owner {
        Ok(Some(o)) => o,
        // No way to learn the owner, no such namespace, or a store that failed: the
        // controller decides (its 404 for an unknown namespace is the same text).
        Ok(None) | Err(_) => return proxy::forward(&rt.controller, req, &ctx).await,
    };
    let metadata = ctx
        .timings
        .time(
            Phase::Metadata,
            traces::start("metadata").instrument(rt.directory.action(&owner, &path, &tid)),
        )
        .await;
    let metadata = match metadata {
        Ok(m) => m,
        // Missing package, binding or action (WA:717-723).
        Err(e) if e.status == http::StatusCode::NOT_FOUND => {
            return web_error(
                e.status,
                messages::RESOURCE_DOES_NOT_EXIST,
                &tid,
                &Cors::None,
                None,
            );
        }
        // Entitlement the controller decides, or a lookup that failed.
        Err(_) => return proxy::forward(&rt.controller, req, &ctx).await,
    };
    // Only JSON `true` exports (WA:742-755).
    if !annotated_true(&metadata, "web-export") {
        return web_error(
            http::StatusCode::NOT_FOUND,
            messages::RESOURCE_DOES_NOT_EXIST,
            &tid,
            &Cors::None,
            None,
        );
    }
    // A sequence is invoked like any action (WA:652) and composed by owl when it can run
    // every component; conductors are the controller's.
    let is_sequence = metadata.kind == crate::whisk::sequence::KIND;
    if !is_sequence && is_composition(&metadata) {
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    // The route of the action where it lives (a binding's bound action).
    let requested = match direct.or_else(|| routes_find(&rt, &metadata.path)) {
        Some(r) => r,
        None => return proxy::forward(&rt.controller, req, &ctx).await,
    };
    let route = match route_for(&rt.policy.routes, &requested, &metadata, &path, draw) {
        Ok(r) if r.serves_web() => r,
        _ => return proxy::forward(&rt.controller, req, &ctx).await,
    };
    // A sequence's components have functions of their own.
    let function = match route.function.render(&metadata.path) {
        _ if is_sequence => None,
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(%tid, route_line = route.line, error = %e, "route's function cannot be rendered for this action; sending it to the controller");
            return proxy::forward(&rt.controller, req, &ctx).await;
        }
    };
    ctx.timings.set_path(Path::Lambda);
    // The owner's throttles (WA:760-766), before size, CORS and authentication: an
    // OPTIONS request is counted too.
    let limits = crate::limits::Effective::for_namespace(
        &rt.policy.limits,
        &owner.namespace,
        owner.limits.as_ref(),
    );
    let admitted = ctx
        .timings
        .time(
            Phase::Throttle,
            traces::start("throttle").instrument(gw.throttles().admit(&owner.namespace, limits)),
        )
        .await;
    let slot = match admitted {
        Ok(s) => s,
        Err(e) => return from_whisk(&e, &tid, &Cors::None),
    };
    // The owner's payload limit, within the deployment's (WA:498
    // `actionOwnerIdentity.limits`).
    let payload_max = rt.policy.openwhisk.payload_max_for(owner.limits.as_ref());
    // The declared size (WA:498-500): after entitlement, before CORS.
    if let Some(len) = request::content_length(req.headers())
        && len > payload_max
    {
        return from_whisk(
            &WhiskError::payload_too_large(len, payload_max),
            &tid,
            &Cors::None,
        );
    }
    // The whole entity, before CORS, OPTIONS and `require-whisk-auth`: the controller
    // makes it strict before routing (BasicHttpService.scala `toStrictEntity`), so a
    // chunked body over the limit is a 413 without CORS, whatever the method or the
    // credentials.
    let (parts, body) = req.into_parts();
    let bytes =
        match request::read_body(body, payload_max, gw.settings().server.body_read_timeout).await {
            Ok(b) => b,
            Err(e) => return from_whisk(&e, &tid, &Cors::None),
        };
    let custom_options = annotated_true(&metadata, "web-custom-options");
    let cors = Cors::for_action(&metadata, &parts.headers);
    // OPTIONS with the default CORS headers: answered here, the action not invoked
    // (WA:507-508).
    if !custom_options && parts.method == Method::OPTIONS {
        let mut headers = HeaderMap::new();
        finish_headers(&mut headers, &tid, &cors, None);
        return (http::StatusCode::OK, headers).into_response();
    }
    let user = caller_namespace(&rt, &parts.headers, &ctx).await;
    // `require-whisk-auth`, skipped for OPTIONS with custom options (WA:521-527).
    let options_passes = custom_options && parts.method == Method::OPTIONS;
    if !options_passes && !whisk_auth_allows(&metadata, &parts.headers, user.is_some()) {
        return web_error(
            http::StatusCode::UNAUTHORIZED,
            messages::UNAUTHORIZED,
            &tid,
            &cors,
            None,
        );
    }
    let accept = accept_header(&parts.headers);
    let raw = annotated_true(&metadata, "raw-http");
    let final_params = annotated_true(&metadata, "final");
    let immutable = |name: &str| {
        final_params
            && metadata
                .parameters
                .iter()
                .any(|p| p.key == name && !p.value.is_null())
    };
    let rest = &parts.uri.path()[rest_at..];
    let web_request = WebRequest {
        method: &parts.method,
        headers: &parts.headers,
        path: rest,
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
                &tid,
                &cors,
                None,
            );
        }
        // A rejection of the body's unmarshaller: compact, without CORS (BHS:192-199).
        Err(web::ArgumentError::Malformed(text)) => {
            return WhiskError::rejected(text).render(&tid);
        }
    };
    // Always blocking, for the deployment's longest wait (WA:442).
    let wait = Duration::from_millis(rt.policy.openwhisk.max_blocking_wait_ms);
    let replay = ReplayableRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body: bytes,
        web: true,
    };
    let Some(function) = function else {
        // The web arguments alone reach the first component; the sequence's own
        // parameters reach no one (SequenceActions.scala:287-289).
        let admitted = Admitted {
            gw,
            rt,
            route,
            ctx: ctx.clone(),
            identity: owner,
            path,
            known_metadata: None,
            slot,
        };
        let job = match super::sequence::prepare(admitted, metadata, replay, payload, false).await {
            Ok(j) => j,
            Err(proxied) => return proxied,
        };
        let id = job.id.clone();
        let waited = run_blocking(job, wait).await;
        return web_answer(waited, &id, extension, accept.as_deref(), &tid, &cors).await;
    };
    // Final parameters were checked against the query and body above (WA:640-650);
    // the `__ow_*` arguments overwrite any parameter of that name.
    let params = params::merge_over(&metadata, payload);
    // A deprecated runtime is refused as for any invocation (PostActionActivation.scala:59-63).
    let kind = &metadata.kind;
    if rt.deprecated_kinds.contains(
        &rt.controller,
        kind,
        rt.policy.controller.timeout.min(Duration::from_secs(2)),
    ) {
        return web_error(
            http::StatusCode::BAD_REQUEST,
            &messages::runtime_deprecated(kind),
            &tid,
            &cors,
            None,
        );
    }
    let opts = request::InvokeOptions {
        blocking: true,
        result: false,
        wait,
    };
    let valid = Validated {
        metadata: metadata.clone(),
        opts,
        params,
        replay,
    };
    let admitted = Admitted {
        gw,
        rt,
        route: route.clone(),
        ctx: ctx.clone(),
        identity: owner,
        path,
        known_metadata: None,
        slot,
    };
    let (job, opts) = match Job::prepare(admitted, valid, route, function) {
        Ok(j) => j,
        Err(answer) => return *answer,
    };
    let id = job.activation_id.clone();
    let waited = run_blocking(job, opts.wait).await;
    web_answer(waited, &id, extension, accept.as_deref(), &tid, &cors).await
}

/// The web route's answer to a blocking run: the result transcoded, the fallback's
/// answer, a refusal, or past the wait 202 `Response not yet ready.`.
async fn web_answer(
    waited: Waited,
    id: &ActivationId,
    extension: Extension,
    accept: Option<&str>,
    tid: &TransactionId,
    cors: &Cors,
) -> Response {
    match waited {
        Waited::Finished(Outcome::Done { activation, .. } | Outcome::Recorded(activation)) => {
            respond(&activation, extension, accept, tid, cors)
        }
        Waited::Finished(Outcome::Fallback(f)) => (*f).answer().await,
        Waited::Finished(Outcome::Refused { error, .. }) => from_whisk(&refusal(&error), tid, cors),
        // WA:692-698.
        Waited::Expired => web_error(
            http::StatusCode::ACCEPTED,
            messages::RESPONSE_NOT_READY,
            tid,
            cors,
            Some(id),
        ),
        Waited::Failed(e) => from_whisk(&e, tid, cors),
    }
}

/// Every `Accept` value of the request, joined as one list.
pub(crate) fn accept_header(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn routes_find(rt: &Snapshot, path: &ActionPath) -> Option<Arc<Route>> {
    rt.policy
        .routes
        .find(path)
        .filter(|r| r.serves_web())
        .cloned()
}

/// The activation's result transcoded by the extension (WA:661-690).
pub(crate) fn respond(
    activation: &crate::whisk::Activation,
    extension: Extension,
    accept: Option<&str>,
    tid: &TransactionId,
    cors: &Cors,
) -> Response {
    let id = &activation.activation_id;
    let null = Value::Null;
    let result = activation.response.result.as_ref().unwrap_or(&null);
    let outcome = match activation.response.status_code {
        StatusCode::Success => web::Outcome::Success(result),
        StatusCode::ApplicationError => {
            web::Outcome::ApplicationError(result.get("error").unwrap_or(&null))
        }
        _ => web::Outcome::DeveloperOrWhiskError,
    };
    match web::transcode(extension, outcome) {
        Ok(a) => {
            // Pekko's content negotiation, after the action ran (WAT:1942-1988).
            if !a.body.is_empty()
                && let Some(ct) = a.content_type.as_ref().and_then(|v| v.to_str().ok())
            {
                // `.text` completes with a String: the alternative is the media type
                // with an open charset.
                let offered = if extension == Extension::Text {
                    "text/plain"
                } else {
                    ct
                };
                if !accepts(accept, offered) {
                    return WhiskError::not_acceptable(offered).render(tid);
                }
            }
            answer(a, tid, cors, id)
        }
        // A successful result that is not an object: the controller's default
        // exception handler's plain-text 500, without the activation id.
        Err(e) if e.is_unhandled() => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=UTF-8"),
            );
            if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
                headers.insert(HeaderName::from_static(transaction::HEADER), v);
            }
            (http::StatusCode::INTERNAL_SERVER_ERROR, headers, e.message).into_response()
        }
        Err(e) => web_error(
            http::StatusCode::from_u16(e.status).unwrap_or(http::StatusCode::BAD_REQUEST),
            e.message,
            tid,
            cors,
            Some(id),
        ),
    }
}

/// True when `accept` (the request's `Accept`, all of its values) admits
/// `content_type`, as Pekko's `ContentNegotiator` decides for one alternative: no
/// header admits everything; otherwise the most specific range matching the type
/// (`type/subtype`, then `type/*`, then `*/*`) decides, and a q-value of 0 refuses.
fn accepts(accept: Option<&str>, content_type: &str) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    // Pekko keeps an `Accept` it cannot parse as a raw header, which negotiation does
    // not read, and reads an empty one as no ranges: both accept anything
    // (MediaTypeNegotiator: no ranges → `*/*`).
    if !accept_parses(accept) {
        return true;
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    let (main, sub) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let r = parts.next().unwrap_or("").trim();
        if r.is_empty() {
            continue;
        }
        let (rm, rs) = r.split_once('/').unwrap_or((r, ""));
        let specificity = match (rm, rs) {
            ("*", "*") => 0,
            (m, "*") if m.eq_ignore_ascii_case(main) => 1,
            (m, s) if m.eq_ignore_ascii_case(main) && s.eq_ignore_ascii_case(sub) => 2,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.is_some_and(|(_, q)| q > 0.0)
}

/// Whether `accept` is a list of media ranges Pekko parses, with at least one: each
/// `type/subtype` of tokens (`*/*`, `type/*` included), parameters `name=value`, a `q`
/// that is a number.
fn accept_parses(accept: &str) -> bool {
    let token = |t: &str| !t.is_empty() && t.chars().all(crate::whisk::web::is_tchar);
    let mut ranges = 0;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let r = parts.next().unwrap_or("").trim();
        if r.is_empty() {
            continue;
        }
        let Some((main, sub)) = r.split_once('/') else {
            return false;
        };
        if !token(main) || !token(sub) || (main == "*" && sub != "*") {
            return false;
        }
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            if !token(k.trim()) || v.trim().is_empty() {
                return false;
            }
            if k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_err() {
                return false;
            }
        }
        ranges += 1;
    }
    ranges > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: Method, path: &str) -> Option<(String, Extension, String)> {
        split_path(&method, path).map(|t| {
            (
                t.path.to_path_string(),
                t.extension,
                path[t.rest_at..].to_string(),
            )
        })
    }

    #[test]
    fn web_paths_split_as_the_controller_routes_them() {
        // WebActionsApiTests.scala:368-379: three name segments or nothing.
        for p in [
            "/api/v1/web/a",
            "/api/v1/web/a/b",
            "/api/v1/web//a/b",
            "/api/v1/web/",
        ] {
            assert_eq!(target(Method::GET, p), None, "{p}");
        }
        assert_eq!(
            target(Method::GET, "/api/v1/web/guest/default/hello.json"),
            Some(("guest/hello".into(), Extension::Json, String::new()))
        );
        // Trailing slash → `__ow_path` "/" (WebActionsApiTests.scala:577-603).
        assert_eq!(
            target(Method::POST, "/api/v1/web/guest/pkg/hello.json/"),
            Some(("guest/pkg/hello".into(), Extension::Json, "/".into()))
        );
        assert_eq!(
            target(Method::PATCH, "/api/v1/web/guest/pkg/hello/a/b"),
            Some(("guest/pkg/hello".into(), Extension::Http, "/a/b".into()))
        );
        // Unknown extensions are part of the name (WebActionsApiTests.scala:1587-1611).
        assert_eq!(
            target(Method::GET, "/api/v1/web/guest/default/hello.xyz"),
            Some(("guest/hello.xyz".into(), Extension::Http, String::new()))
        );
        // `default…` packages are unreachable; other methods are not web calls.
        assert_eq!(
            target(Method::GET, "/api/v1/web/guest/defaults/hello"),
            None
        );
        assert_eq!(
            target(Method::TRACE, "/api/v1/web/guest/default/hello"),
            None
        );
        // Percent-decoded segments are names.
        assert_eq!(
            target(Method::GET, "/api/v1/web/my%20ns/default/hi"),
            Some(("my ns/hi".into(), Extension::Http, String::new()))
        );
        assert_eq!(target(Method::GET, "/api/v1/web/a%2Fb/default/hi"), None);
    }

    #[test]
    fn accept_is_negotiated_as_pekko_does() {
        // WAT:1942-1956: a text body asked for as JSON.
        assert!(!accepts(
            Some("application/json"),
            "text/html; charset=UTF-8"
        ));
        assert!(accepts(None, "text/html; charset=UTF-8"));
        assert!(accepts(
            Some("text/html,application/xhtml+xml,*/*;q=0.8"),
            "image/png"
        ));
        assert!(accepts(Some("text/*"), "text/plain"));
        // WAT:1971-1988: text/xml does not admit text/html.
        assert!(!accepts(Some("text/xml"), "text/html; charset=UTF-8"));
        // The most specific range decides.
        assert!(!accepts(Some("*/*, text/html;q=0"), "text/html"));
        assert!(accepts(Some("text/*;q=0, text/html"), "text/html"));
        // An empty or unparseable Accept is no constraint: Pekko reads the first as no
        // ranges (`*/*`) and keeps the second as a raw header negotiation ignores.
        for ignored in [
            "",
            " ",
            "garbage",
            "text/html, garbage",
            "*/html",
            "text/html;q=x",
        ] {
            assert!(accepts(Some(ignored), "image/png"), "{ignored:?}");
        }
    }

    #[test]
    fn vanity_hosts_rewrite_as_openwhisks_nginx() {
        let v = "openwhisk.example.com";
        assert_eq!(
            vanity_rewrite("guest.openwhisk.example.com", v, "/demo/hello.json/x?a=1").as_deref(),
            Some("/api/v1/web/guest/demo/hello.json/x?a=1")
        );
        assert_eq!(
            vanity_rewrite("guest.openwhisk.example.com:443", v, "/").as_deref(),
            Some("/api/v1/web/guest/public/index.html")
        );
        assert_eq!(vanity_rewrite("openwhisk.example.com", v, "/x"), None);
        assert_eq!(vanity_rewrite("a_b.openwhisk.example.com", v, "/x"), None);
        assert_eq!(vanity_rewrite("a.b.openwhisk.example.com", v, "/x"), None);
        assert_eq!(vanity_rewrite("guest.other.com", v, "/x"), None);
        assert_eq!(
            vanity_rewrite("guest.openwhisk.example.com", v, "/cli/go"),
            None
        );
    }

    fn with_auth(value: Value) -> ActionMetadata {
        ActionMetadata::from_json(&serde_json::json!({
            "namespace": "guest",
            "name": "a",
            "version": "0.0.1",
            "exec": {"kind": "nodejs:20"},
            "limits": {"timeout": 60000, "memory": 256, "logs": 10},
            "parameters": [],
            "annotations": [{"key": "require-whisk-auth", "value": value}],
        }))
        .expect("action JSON")
    }

    #[test]
    fn require_whisk_auth_follows_the_annotation() {
        let mut h = HeaderMap::new();
        assert!(!whisk_auth_allows(&with_auth(Value::Bool(true)), &h, false));
        assert!(whisk_auth_allows(&with_auth(Value::Bool(true)), &h, true));
        assert!(whisk_auth_allows(&with_auth(Value::Bool(false)), &h, false));
        assert!(!whisk_auth_allows(
            &with_auth(serde_json::json!("s3cret")),
            &h,
            true
        ));
        h.insert(
            REQUIRE_WHISK_AUTH_HEADER,
            HeaderValue::from_static("s3cret"),
        );
        assert!(whisk_auth_allows(
            &with_auth(serde_json::json!("s3cret")),
            &h,
            false
        ));
        assert!(!whisk_auth_allows(
            &with_auth(serde_json::json!("other")),
            &h,
            false
        ));
        h.insert(REQUIRE_WHISK_AUTH_HEADER, HeaderValue::from_static("42"));
        assert!(whisk_auth_allows(
            &with_auth(serde_json::json!(42)),
            &h,
            false
        ));
        assert!(!whisk_auth_allows(
            &with_auth(serde_json::json!({"a": 1})),
            &h,
            true
        ));
        assert!(!whisk_auth_allows(&with_auth(Value::Null), &h, true));
    }
}
