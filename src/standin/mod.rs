//! A stand-in OpenWhisk controller, for the demo, the tests and the benchmarks.
//!
//! It is *not* OpenWhisk: it keeps identities, packages and actions in memory and
//! "runs" actions with built-in behaviours instead of containers. What it does
//! reproduce is the REST surface owl depends on — Basic authentication, `_`
//! resolution, entitlement (own namespace, published packages, bindings), action
//! metadata, invocation with OpenWhisk's status codes and bodies, and activation
//! reads — with the texts of the reference, so owl's controller-facing code can be
//! exercised end to end without a real deployment. Every answer carries the header
//! `x-owl-standin: true` so nobody mistakes it for the real thing.

use crate::auth::Credentials;
use crate::error::{WhiskError, add_cors};
use crate::invoke::request::parse_query;
use crate::whisk::activation::Annotation;
use crate::whisk::names::ActionPath;
use crate::whisk::{Activation, ActivationId, ActivationResponse, StatusCode, TransactionId};
use axum::Router;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, header};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

mod sequence;
mod web;

/// The well-known guest credentials of OpenWhisk's development deployments.
pub const GUEST_UUID: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502";
/// The guest key.
pub const GUEST_KEY: &str = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// What an action does when the stand-in "runs" it.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Returns its parameters.
    Echo,
    /// Returns `{"greeting": "Hello, <name>!"}` (name defaults to "stranger").
    Greet,
    /// Returns `{"error": text}` (an application error).
    Fail(String),
    /// Sleeps, then echoes.
    Sleep(Duration),
    /// The web tests' function, as the mapped twin runs it on Lambda (Node.js, or
    /// Python for a `python…` kind): `crash` throws, `sleep` (Node.js) waits that many
    /// ms and returns `{"slept": true}`, a string `respond` is parsed as JSON and
    /// returned, and otherwise the parameters are echoed; the result is classified as
    /// owl's runtime and Lambda path classify it (see `web::script`).
    WebScript,
}

/// An identity the stand-in knows.
#[derive(Debug, Clone)]
pub(crate) struct StandinIdentity {
    /// Subject.
    pub subject: String,
    /// Namespace.
    pub namespace: String,
    /// uuid.
    pub uuid: String,
    /// 64-character key.
    pub key: String,
    /// The namespace's limits document (`GET /namespaces/_/limits`).
    pub limits: Value,
}

impl StandinIdentity {
    /// The `uuid:key` string.
    pub(crate) fn api_key(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }
}

/// An action the stand-in knows.
#[derive(Debug, Clone)]
pub struct StandinAction {
    /// Where it lives.
    pub path: ActionPath,
    /// Exec kind.
    pub kind: String,
    /// Version.
    pub version: String,
    /// Default parameters.
    pub parameters: Vec<(String, Value)>,
    /// Keys of the parameters marked `init: true`.
    pub(crate) init_keys: Vec<String>,
    /// Annotations.
    pub annotations: Vec<(String, Value)>,
    /// Limits object.
    pub limits: Value,
    /// What running it does.
    pub(crate) behaviour: Behaviour,
    /// For a sequence (kind `sequence`), its components as written
    /// (see [`StandinAction::sequence`]).
    pub(crate) components: Vec<String>,
}

impl StandinAction {
    /// A `nodejs:20` action with default limits.
    pub fn new(path: &str, behaviour: Behaviour) -> Self {
        Self {
            path: ActionPath::parse(path).expect("valid action path"),
            kind: "nodejs:20".into(),
            version: "0.0.1".into(),
            parameters: Vec::new(),
            init_keys: Vec::new(),
            annotations: vec![
                ("exec".into(), json!("nodejs:20")),
                ("provide-api-key".into(), json!(false)),
            ],
            limits: json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}),
            behaviour,
            components: Vec::new(),
        }
    }

    /// Adds a default parameter.
    pub fn param(mut self, key: &str, value: Value) -> Self {
        self.parameters.push((key.into(), value));
        self
    }

    /// Adds an init parameter (`init: true`): never a run argument.
    pub fn init_param(mut self, key: &str, value: Value) -> Self {
        self.init_keys.push(key.into());
        self.param(key, value)
    }

    /// Sets an annotation.
    pub fn annotation(mut self, key: &str, value: Value) -> Self {
        self.annotations.retain(|(k, _)| k != key);
        self.annotations.push((key.into(), value));
        self
    }

    /// Exports it as a web action (annotation `web-export: true`).
    pub fn web_export(self) -> Self {
        self.annotation("web-export", json!(true))
    }

    /// Sets the time limit (ms).
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.limits["timeout"] = ms.into();
        self
    }

    /// Sets the kind.
    pub fn kind(mut self, kind: &str) -> Self {
        self.kind = kind.into();
        self
    }

    fn metadata_json(&self, package_params: &[(String, Value)]) -> Value {
        let mut params: Vec<(String, Value)> = package_params.to_vec();
        for (k, v) in &self.parameters {
            params.retain(|(pk, _)| pk != k);
            params.push((k.clone(), v.clone()));
        }
        json!({
            "namespace": self.path.entity_namespace(),
            "name": self.path.action,
            "version": self.version,
            "publish": false,
            "exec": self.exec_json(),
            "annotations": self.annotations.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "parameters": params.iter().map(|(k, v)| if self.init_keys.contains(k) {
                json!({"key": k, "value": v, "init": true})
            } else {
                json!({"key": k, "value": v})
            }).collect::<Vec<_>>(),
            "limits": self.limits,
            "updated": 1_700_000_000_000_i64,
        })
    }
}

/// A package the stand-in knows (or a binding to one).
#[derive(Debug, Clone)]
pub(crate) struct StandinPackage {
    /// Owner namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Shared with other namespaces.
    pub publish: bool,
    /// `(namespace, package)` this binding points at.
    pub binding: Option<(String, String)>,
    /// Package parameters.
    pub parameters: Vec<(String, Value)>,
}

/// Counters the tests read to see which path served a request.
#[derive(Debug, Default)]
pub struct Counters {
    /// Invocations the stand-in ran.
    pub invocations: AtomicU64,
    /// `GET /api/v1/namespaces` calls.
    pub namespace_lookups: AtomicU64,
    /// Action metadata reads.
    pub metadata_lookups: AtomicU64,
    /// Every request.
    pub requests: AtomicU64,
    /// `traceparent` of each request that carried one (method, path, value), the
    /// latest 1000: shows trace propagation.
    pub traceparents: Mutex<Vec<(String, String, String)>>,
}

struct Inner {
    identities: Vec<StandinIdentity>,
    actions: HashMap<String, StandinAction>,
    packages: HashMap<String, StandinPackage>,
    activations: Mutex<Vec<Activation>>,
    /// The `duration` of records whose duration is not `end - start`: sequences
    /// (SequenceActions.scala:247), by activation id.
    durations: Mutex<HashMap<String, i64>>,
    /// The longest sequence in atomic actions (`actionSequenceLimit`).
    sequence_limit: usize,
    counters: Counters,
    couch_activations: Option<(crate::couchdb::CouchDb, String)>,
    execute_only: bool,
}

/// Builder for a stand-in controller.
#[derive(Debug, Clone, Default)]
pub struct StandinBuilder {
    identities: Vec<StandinIdentity>,
    actions: Vec<StandinAction>,
    packages: Vec<StandinPackage>,
    couch_activations: Option<(crate::couchdb::CouchDb, String)>,
    execute_only: bool,
    sequence_limit: Option<usize>,
}

impl StandinBuilder {
    /// Sets `actionSequenceLimit` (`limits.actions.sequence.maxLength`), 50 by default
    /// as in OpenWhisk's deployments: the most atomic actions one sequence tree runs.
    pub fn sequence_limit(mut self, limit: usize) -> Self {
        self.sequence_limit = Some(limit);
        self
    }

    /// As `whisk.shared-packages-execute-only = true`: the metadata `GET` of an action
    /// outside the caller's namespace is refused (403) though invoking it is not
    /// [OW core/controller/.../Actions.scala:402].
    pub fn execute_only(mut self) -> Self {
        self.execute_only = true;
        self
    }

    /// An empty stand-in with the guest identity.
    pub fn with_guest() -> Self {
        Self::default().identity("guest", "guest", GUEST_UUID, GUEST_KEY)
    }

    /// Adds an identity.
    pub fn identity(mut self, subject: &str, namespace: &str, uuid: &str, key: &str) -> Self {
        self.identities.push(StandinIdentity {
            subject: subject.into(),
            namespace: namespace.into(),
            uuid: uuid.into(),
            key: key.into(),
            // Generous by default so tests and demos are not throttled by accident;
            // set real values with `limits`.
            limits: json!({"invocationsPerMinute": 100000, "concurrentInvocations": 10000, "firesPerMinute": 60}),
        });
        self
    }

    /// Makes `GET /namespaces/_/limits` fail (503) for the identities owning
    /// `namespace`, as a controller in trouble would.
    pub fn limits_unavailable(mut self, namespace: &str) -> Self {
        for i in self
            .identities
            .iter_mut()
            .filter(|i| i.namespace == namespace)
        {
            i.limits = Value::Null;
        }
        self
    }

    /// Sets the limits of the identities owning `namespace` (merged over the defaults).
    pub fn limits(mut self, namespace: &str, limits: Value) -> Self {
        for i in self
            .identities
            .iter_mut()
            .filter(|i| i.namespace == namespace)
        {
            if let (Some(base), Some(extra)) = (i.limits.as_object_mut(), limits.as_object()) {
                base.extend(extra.clone());
            }
        }
        self
    }

    /// Adds an action.
    pub fn action(mut self, action: StandinAction) -> Self {
        self.actions.push(action);
        self
    }

    /// Adds a package.
    pub fn package(
        mut self,
        namespace: &str,
        name: &str,
        publish: bool,
        parameters: Vec<(String, Value)>,
    ) -> Self {
        self.packages.push(StandinPackage {
            namespace: namespace.into(),
            name: name.into(),
            publish,
            binding: None,
            parameters,
        });
        self
    }

    /// Reads activations it does not hold from OpenWhisk's activations database
    /// `db` in CouchDB, as the real controller does: document `namespace/id`.
    pub fn activations_from_couchdb(mut self, couch: crate::couchdb::CouchDb, db: &str) -> Self {
        self.couch_activations = Some((couch, db.to_string()));
        self
    }

    /// Adds a binding `namespace/name` → `target_ns/target_pkg`.
    pub fn binding(
        mut self,
        namespace: &str,
        name: &str,
        target_ns: &str,
        target_pkg: &str,
        parameters: Vec<(String, Value)>,
    ) -> Self {
        self.packages.push(StandinPackage {
            namespace: namespace.into(),
            name: name.into(),
            publish: false,
            binding: Some((target_ns.into(), target_pkg.into())),
            parameters,
        });
        self
    }

    /// The stand-in as a router (to serve it behind TLS, for example) and a handle on
    /// its state.
    pub fn router(self) -> (Router, StandinState) {
        let inner = self.build();
        (
            Router::new().fallback(handle).with_state(inner.clone()),
            StandinState(inner),
        )
    }

    fn build(self) -> Arc<Inner> {
        Arc::new(Inner {
            identities: self.identities,
            actions: self
                .actions
                .into_iter()
                .map(|a| (a.path.to_path_string(), a))
                .collect(),
            packages: self
                .packages
                .into_iter()
                .map(|p| (format!("{}/{}", p.namespace, p.name), p))
                .collect(),
            activations: Mutex::new(Vec::new()),
            durations: Mutex::new(HashMap::new()),
            sequence_limit: self
                .sequence_limit
                .unwrap_or(crate::whisk::sequence::DEFAULT_LIMIT),
            counters: Counters::default(),
            couch_activations: self.couch_activations,
            execute_only: self.execute_only,
        })
    }

    /// Serves on `listener` in the background.
    pub fn serve(self, listener: tokio::net::TcpListener) -> Standin {
        let addr = listener.local_addr().expect("bound listener");
        let inner = self.build();
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Standin { addr, inner, task }
    }

    /// Binds 127.0.0.1 on a free port and serves.
    pub async fn spawn(self) -> std::io::Result<Standin> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Ok(self.serve(listener))
    }
}

/// A handle on a stand-in's state, for stand-ins served by the caller.
#[derive(Clone)]
pub struct StandinState(Arc<Inner>);

impl StandinState {
    /// Invocations it ran so far.
    pub fn invocations(&self) -> u64 {
        self.0.counters.invocations.load(Ordering::SeqCst)
    }
}

/// A running stand-in controller; stops when dropped.
pub struct Standin {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Standin {
    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Invocations it ran so far.
    pub fn invocations(&self) -> u64 {
        self.inner.counters.invocations.load(Ordering::SeqCst)
    }

    /// Adds activations to those it holds (as if it had run them).
    pub fn add_activations(&self, acts: impl IntoIterator<Item = Activation>) {
        if let Ok(mut all) = self.inner.activations.lock() {
            all.extend(acts);
        }
    }

    /// Activations it holds, newest last.
    pub fn activations(&self) -> Vec<Activation> {
        self.inner
            .activations
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }
}

fn standin_headers(h: &mut HeaderMap, tid: &TransactionId) {
    h.insert("x-owl-standin", HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
        h.insert("x-request-id", v);
    }
}

fn json_response(
    status: http::StatusCode,
    body: &Value,
    tid: &TransactionId,
    extra: &[(&str, String)],
) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_cors(&mut h);
    standin_headers(&mut h, tid);
    for (k, v) in extra {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    (status, h, serde_json::to_vec(body).unwrap_or_default()).into_response()
}

fn error(e: WhiskError, tid: &TransactionId) -> Response {
    let mut r = e.render(tid);
    r.headers_mut()
        .insert("x-owl-standin", HeaderValue::from_static("true"));
    r
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    inner.counters.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        && let Ok(mut seen) = inner.counters.traceparents.lock()
    {
        if seen.len() >= 1000 {
            seen.remove(0);
        }
        seen.push((
            req.method().to_string(),
            req.uri().path().to_string(),
            tp.to_string(),
        ));
    }
    let tid = TransactionId::from_header(req.headers().get("x-request-id"));
    let path = req.uri().path().to_string();
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    // The web route comes first: it answers its own OPTIONS (WebActions.scala; see
    // `web`). Anything it does not match falls through to the usual handling.
    if let Some(target) = crate::invoke::web::split_path(req.method(), &path) {
        return web::handle(&inner, req, target, &tid).await;
    }
    if req.method() == Method::OPTIONS {
        let mut h = HeaderMap::new();
        add_cors(&mut h);
        standin_headers(&mut h, &tid);
        return (http::StatusCode::OK, h, "OK").into_response();
    }
    if path == "/" && req.method() == Method::GET {
        // The controller's info document (Controller.scala `info`): its runtime
        // manifest says which kinds are deprecated.
        return json_response(
            http::StatusCode::OK,
            &json!({
                "description": "OpenWhisk (owl stand-in controller, not OpenWhisk)",
                "runtimes": runtime_manifest(),
            }),
            &tid,
            &[],
        );
    }
    if seg == ["api", "v1"] && req.method() == Method::GET {
        return json_response(
            http::StatusCode::OK,
            &json!({"description": "OpenWhisk API (owl stand-in controller, not OpenWhisk)", "api_version": "1.0.0", "api_version_path": "v1"}),
            &tid,
            &[],
        );
    }
    if seg.len() < 3 || seg[0] != "api" || seg[1] != "v1" || seg[2] != "namespaces" {
        return error(
            WhiskError {
                status: http::StatusCode::NOT_FOUND,
                message: "The requested resource could not be found.".into(),
                ..WhiskError::not_found()
            },
            &tid,
        );
    }
    let creds = match Credentials::from_headers(req.headers()) {
        Ok(c) => c,
        Err(e) => return error(e, &tid),
    };
    let Some(me) = identify(&inner, &creds).cloned() else {
        return error(WhiskError::auth_invalid(), &tid);
    };
    let rest: Vec<&str> = seg[3..].to_vec();
    if rest.is_empty() {
        inner
            .counters
            .namespace_lookups
            .fetch_add(1, Ordering::SeqCst);
        return json_response(http::StatusCode::OK, &json!([me.namespace]), &tid, &[]);
    }
    let ns = if rest[0] == "_" {
        me.namespace.clone()
    } else {
        rest[0].to_string()
    };
    match (req.method().clone(), rest.get(1).copied()) {
        (Method::GET, Some("limits")) if rest.len() == 2 && me.limits.is_null() => error(
            WhiskError::service_unavailable(crate::error::Origin::Controller, None),
            &tid,
        ),
        (Method::GET, Some("limits")) if rest.len() == 2 => {
            json_response(http::StatusCode::OK, &me.limits, &tid, &[])
        }
        (Method::GET, Some("actions")) if rest.len() == 3 || rest.len() == 4 => {
            inner
                .counters
                .metadata_lookups
                .fetch_add(1, Ordering::SeqCst);
            let requested = action_path(&ns, &rest[2..]);
            if inner.execute_only && ns != me.namespace {
                return error(
                    WhiskError::forbidden_get_action(&requested.to_path_string()),
                    &tid,
                );
            }
            match resolve(&inner, &me, &requested) {
                Ok((action, pkg_params, _)) => json_response(
                    http::StatusCode::OK,
                    &action.metadata_json(&pkg_params),
                    &tid,
                    &[],
                ),
                Err(e) => error(e, &tid),
            }
        }
        // A package as its reader may see it (Packages.scala `fetch` behind
        // PackageCollection.checkPackageReadPermission): 404 for its owner when missing,
        // 403 for anyone it is not readable by. Only the fields owl reads.
        (Method::GET, Some("packages")) if rest.len() == 3 => {
            let key = format!("{ns}/{}", rest[2]);
            match sequence::package_readable(&inner, &me, &key, ns == me.namespace, 0) {
                Ok(true) => {
                    let pkg = &inner.packages[&key];
                    let binding = match &pkg.binding {
                        Some((tns, tpkg)) => json!({"namespace": tns, "name": tpkg}),
                        None => json!({}),
                    };
                    let parameters: Vec<Value> = pkg
                        .parameters
                        .iter()
                        .map(|(k, v)| json!({"key": k, "value": v}))
                        .collect();
                    json_response(
                        http::StatusCode::OK,
                        &json!({
                            "namespace": pkg.namespace, "name": pkg.name,
                            "publish": pkg.publish, "binding": binding,
                            "parameters": parameters, "annotations": [],
                            "version": "0.0.1", "actions": [], "feeds": []
                        }),
                        &tid,
                        &[],
                    )
                }
                Ok(false) => error(WhiskError::forbidden(&key), &tid),
                Err(e) => error(e, &tid),
            }
        }
        (Method::POST, Some("actions")) if rest.len() == 3 || rest.len() == 4 => {
            let requested = action_path(&ns, &rest[2..]);
            invoke(&inner, &me, &requested, req, &tid).await
        }
        (Method::GET, Some("activations")) => {
            if let (Some((couch, db)), [id, more @ ..]) = (&inner.couch_activations, &rest[2..])
                && ns == me.namespace
                && !inner
                    .activations
                    .lock()
                    .map(|a| a.iter().any(|x| x.activation_id.as_str() == *id))
                    .unwrap_or(false)
            {
                return couch_activation(couch, db, &ns, id, more, &tid).await;
            }
            activations(&inner, &me, &ns, &rest[2..], req.uri().query(), &tid)
        }
        _ => error(
            WhiskError {
                status: http::StatusCode::NOT_FOUND,
                message: "The requested resource could not be found.".into(),
                ..WhiskError::not_found()
            },
            &tid,
        ),
    }
}

/// Reads `namespace/id` from the activations database, as the controller does.
async fn couch_activation(
    couch: &crate::couchdb::CouchDb,
    db: &str,
    ns: &str,
    id: &str,
    more: &[&str],
    tid: &TransactionId,
) -> Response {
    use crate::couchdb::escape;
    let path = format!("/{}/{}", escape(db), escape(&format!("{ns}/{id}")));
    let doc = match couch.json(Method::GET, &path, None).await {
        Ok(d) => d,
        Err(_) => return error(WhiskError::not_found(), tid),
    };
    let Some(act) = Activation::from_json(&doc) else {
        return error(WhiskError::internal(), tid);
    };
    match more {
        [] => json_response(http::StatusCode::OK, &act.to_api_json(true), tid, &[]),
        ["logs"] => json_response(http::StatusCode::OK, &json!({"logs": act.logs}), tid, &[]),
        ["result"] => json_response(http::StatusCode::OK, &act.response.to_api_json(), tid, &[]),
        _ => error(WhiskError::not_found(), tid),
    }
}

fn action_path(ns: &str, rest: &[&str]) -> ActionPath {
    match rest {
        [a] => ActionPath::new(ns, None, a),
        [p, a] => ActionPath::new(ns, Some(p), a),
        _ => ActionPath::new(ns, None, ""),
    }
}

/// The action to run, the inherited package parameters, and the binding used.
type Resolved = (StandinAction, Vec<(String, Value)>, Option<String>);

/// Entitlement and binding resolution as the controller does them (reference §4.4).
fn resolve(
    inner: &Inner,
    me: &StandinIdentity,
    requested: &ActionPath,
) -> Result<Resolved, WhiskError> {
    let owner = requested.namespace == me.namespace;
    let Some(pkg_name) = &requested.package else {
        if !owner {
            return Err(WhiskError::forbidden(&requested.to_path_string()));
        }
        return inner
            .actions
            .get(&requested.to_path_string())
            .cloned()
            .map(|a| (a, Vec::new(), None))
            .ok_or_else(WhiskError::not_found);
    };
    let pkg_key = format!("{}/{pkg_name}", requested.namespace);
    let Some(pkg) = inner.packages.get(&pkg_key) else {
        return Err(if owner {
            WhiskError::not_found()
        } else {
            WhiskError::forbidden(&pkg_key)
        });
    };
    if !owner && !pkg.publish {
        return Err(WhiskError::forbidden(&pkg_key));
    }
    let mut params = Vec::new();
    let (target, binding) = match &pkg.binding {
        Some((tns, tpkg)) => {
            if !owner {
                return Err(WhiskError::forbidden(&pkg_key));
            }
            let bound = inner
                .packages
                .get(&format!("{tns}/{tpkg}"))
                .ok_or_else(WhiskError::not_found)?;
            if bound.namespace != me.namespace && !bound.publish {
                return Err(WhiskError::forbidden(&format!("{tns}/{tpkg}")));
            }
            params.extend(bound.parameters.iter().cloned());
            (
                ActionPath::new(tns, Some(tpkg), &requested.action),
                Some(pkg_key.clone()),
            )
        }
        None => (requested.clone(), None),
    };
    for (k, v) in &pkg.parameters {
        params.retain(|(pk, _)| pk != k);
        params.push((k.clone(), v.clone()));
    }
    let action = inner
        .actions
        .get(&target.to_path_string())
        .cloned()
        .ok_or_else(WhiskError::not_found)?;
    Ok((action, params, binding))
}

/// The identity whose credentials these are.
fn identify<'a>(inner: &'a Inner, creds: &Credentials) -> Option<&'a StandinIdentity> {
    inner
        .identities
        .iter()
        .find(|i| i.uuid == creds.uuid && creds.api_key() == i.api_key())
}

/// The runtimes the controller's info document lists, with which are deprecated.
fn runtime_manifest() -> Value {
    json!({
        "nodejs": [
            {"kind": "nodejs:10", "deprecated": true, "default": false},
            {"kind": "nodejs:20", "deprecated": false, "default": true}
        ],
        "python": [{"kind": "python:3", "deprecated": false, "default": true}]
    })
}

/// True when the manifest marks `kind` deprecated: invoking it is refused
/// (PostActionActivation.scala:59-63).
fn is_deprecated(kind: &str) -> bool {
    runtime_manifest()
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(Value::as_array)
        .flatten()
        .any(|r| r["kind"] == kind && r["deprecated"] == true)
}

async fn invoke(
    inner: &Arc<Inner>,
    me: &StandinIdentity,
    requested: &ActionPath,
    req: Request,
    tid: &TransactionId,
) -> Response {
    let received = crate::context::epoch_ms(SystemTime::now());
    let (action, pkg_params, binding) = match resolve(inner, me, requested) {
        Ok(r) => r,
        Err(e) => return error(e, tid),
    };
    let opts = match parse_query(req.uri().query()) {
        Ok(o) => o,
        Err(e) => return error(e, tid),
    };
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => return error(WhiskError::payload_too_large(0, 1 << 20), tid),
    };
    let payload = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => Some(m),
            _ => {
                return error(
                    WhiskError::rejected(crate::whisk::messages::JSON_OBJECT_EXPECTED),
                    tid,
                );
            }
        }
    };
    if action.runs_as_sequence() {
        let call = sequence::Call {
            me: me.clone(),
            sequence: action,
            package_params: pkg_params,
            binding,
            payload,
            received,
        };
        return sequence::invoke(inner, call, opts, tid).await;
    }
    let mut params: Map<String, Value> = Map::new();
    for (k, v) in pkg_params.iter().chain(action.parameters.iter()) {
        params.insert(k.clone(), v.clone());
    }
    params.extend(payload.unwrap_or_default());
    // As the invoker: init parameters are never run arguments.
    params.retain(|k, _| !action.init_keys.contains(k));
    let (id, handle) = start(inner, me, action, binding, Value::Object(params), None);
    if !opts.blocking {
        return accepted(&id, tid);
    }
    match tokio::time::timeout(opts.wait, handle).await {
        // The active ack's record: no logs.
        Ok(Ok(act)) => blocking_answer(inner, &act, opts.result, false, tid),
        _ => accepted(&id, tid),
    }
}

/// 202 with the activation id: a non-blocking invoke, or a blocking one whose wait
/// expired (Actions.scala:288-292).
fn accepted(id: &ActivationId, tid: &TransactionId) -> Response {
    json_response(
        http::StatusCode::ACCEPTED,
        &json!({"activationId": id.as_str()}),
        tid,
        &[("x-openwhisk-activation-id", id.to_string())],
    )
}

/// The answer of a blocking invoke that finished in time (Actions.scala:293-316): an
/// array result bare whatever `result` says, else the result (`result=true`) or the
/// record, with the status of its outcome.
fn blocking_answer(
    inner: &Inner,
    act: &Activation,
    result: bool,
    with_logs: bool,
    tid: &TransactionId,
) -> Response {
    let body = match &act.response.result {
        Some(a @ Value::Array(_)) => a.clone(),
        r if result => r.clone().unwrap_or(json!({})),
        _ => api_json(inner, act, with_logs),
    };
    json_response(
        act.response.status_code.http_status(),
        &body,
        tid,
        &[("x-openwhisk-activation-id", act.activation_id.to_string())],
    )
}

/// The API form of a record, with its own `duration` when it has one (sequences).
fn api_json(inner: &Inner, act: &Activation, with_logs: bool) -> Value {
    with_duration(inner, act, act.to_api_json(with_logs))
}

/// `form` (a JSON form of `act`) with `act`'s own `duration` when it has one: the
/// record's `duration` field (WhiskActivation.scala:64, 85, 105), which [`Activation`]
/// derives from `end - start`.
fn with_duration(inner: &Inner, act: &Activation, mut form: Value) -> Value {
    let own = inner
        .durations
        .lock()
        .ok()
        .and_then(|d| d.get(act.activation_id.as_str()).copied());
    if let (Some(d), Some(slot)) = (own, form.get_mut("duration")) {
        *slot = d.into();
    }
    form
}

/// What running `behaviour` with `args` returns. The arguments are an object, or an
/// array inside a sequence (PrimitiveActions.scala:162), which a function receives as
/// its `params` as is.
async fn run(action: &StandinAction, args: Value) -> ActivationResponse {
    let params = match args {
        Value::Object(params) => params,
        other => return run_with_non_object(action, other).await,
    };
    match &action.behaviour {
        Behaviour::Echo => ActivationResponse::success(Value::Object(params), None),
        Behaviour::Greet => {
            let name = params
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("stranger");
            ActivationResponse::success(json!({"greeting": format!("Hello, {name}!")}), None)
        }
        Behaviour::Fail(text) => {
            ActivationResponse::error(StatusCode::ApplicationError, text.clone().into(), None)
        }
        Behaviour::Sleep(d) => {
            tokio::time::sleep(*d).await;
            ActivationResponse::success(Value::Object(params), None)
        }
        Behaviour::WebScript => web::script(&action.kind, params).await,
    }
}

/// [`run`] for arguments that are not an object (an array from a sequence): echoing
/// returns them, greeting finds no name, and the web script returns them on Node.js
/// (none of its properties is set) while on Python `params.get` raises.
async fn run_with_non_object(action: &StandinAction, args: Value) -> ActivationResponse {
    match &action.behaviour {
        Behaviour::Echo => ActivationResponse::success(args, None),
        Behaviour::Greet => {
            ActivationResponse::success(json!({"greeting": "Hello, stranger!"}), None)
        }
        Behaviour::Fail(text) => {
            ActivationResponse::error(StatusCode::ApplicationError, text.clone().into(), None)
        }
        Behaviour::Sleep(d) => {
            tokio::time::sleep(*d).await;
            ActivationResponse::success(args, None)
        }
        Behaviour::WebScript if action.kind.starts_with("python") => ActivationResponse::error(
            StatusCode::ApplicationError,
            "'list' object has no attribute 'get'".into(),
            None,
        ),
        Behaviour::WebScript => ActivationResponse::success(args, None),
    }
}

/// Runs `action` with its final arguments `params` as `me` (the invoking identity: the
/// caller for `POST /actions`, the owner for a web action) in the background, and
/// records its activation as the invoker does (namespace and subject of `me`,
/// `binding` when invoked through one, `cause` and `causedBy: "sequence"` inside a
/// sequence: ContainerProxy.scala:1047-1080). Counts an invocation. Returns the
/// activation id and the task that ends with the record.
fn start(
    inner: &Arc<Inner>,
    me: &StandinIdentity,
    action: StandinAction,
    binding: Option<String>,
    params: Value,
    cause: Option<ActivationId>,
) -> (ActivationId, tokio::task::JoinHandle<Activation>) {
    inner.counters.invocations.fetch_add(1, Ordering::SeqCst);
    let id = ActivationId::generate();
    let start = crate::context::epoch_ms(SystemTime::now());
    let me = me.clone();
    let inner = inner.clone();
    let id2 = id.clone();
    let finish = async move {
        let mut response = run(&action, params).await;
        if let Some(r) = response.result.as_ref() {
            response.size = Some(serde_json::to_vec(r).map(|v| v.len() as u64).unwrap_or(0));
        }
        let end = crate::context::epoch_ms(SystemTime::now());
        let mut annotations = vec![
            Annotation {
                key: "limits".into(),
                value: action.limits.clone(),
            },
            Annotation {
                key: "path".into(),
                value: action.path.to_path_string().into(),
            },
            Annotation {
                key: "kind".into(),
                value: action.kind.clone().into(),
            },
            Annotation {
                key: "timeout".into(),
                value: false.into(),
            },
        ];
        if cause.is_some() {
            annotations.push(Annotation {
                key: "causedBy".into(),
                value: crate::whisk::sequence::KIND.into(),
            });
        }
        annotations.push(Annotation {
            key: "waitTime".into(),
            value: 1.into(),
        });
        if let Some(b) = binding {
            annotations.push(Annotation {
                key: "binding".into(),
                value: b.into(),
            });
        }
        let now = time::OffsetDateTime::now_utc();
        let mut logs = vec![crate::whisk::activation::format_log_line(
            now,
            crate::whisk::activation::LogStream::Stdout,
            "ran on the owl stand-in controller",
        )];
        // The log store ends a developer error's logs with its warning, as owl's
        // Lambda path does.
        if response.status_code == StatusCode::DeveloperError {
            logs.push(crate::whisk::activation::format_log_line(
                now,
                crate::whisk::activation::LogStream::Stderr,
                crate::whisk::messages::LOG_WARNING_DEVELOPER_ERROR,
            ));
        }
        let act = Activation {
            duration_ms: None,
            namespace: me.namespace.clone(),
            name: action.path.action.clone(),
            subject: me.subject.clone(),
            activation_id: id2,
            start,
            end: end.max(start),
            cause: cause.map(String::from),
            response,
            logs,
            version: action.version.clone(),
            publish: false,
            annotations,
        };
        if let Ok(mut all) = inner.activations.lock() {
            all.push(act.clone());
        }
        act
    };
    (id, tokio::spawn(finish))
}

fn activations(
    inner: &Inner,
    me: &StandinIdentity,
    ns: &str,
    rest: &[&str],
    query: Option<&str>,
    tid: &TransactionId,
) -> Response {
    if ns != me.namespace {
        let resource = match rest.first() {
            Some(id) => format!("{ns}/{id}"),
            None => ns.to_string(),
        };
        return error(WhiskError::forbidden(&resource), tid);
    }
    let all = inner
        .activations
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default();
    match rest {
        [] | [""] => {
            let q = match crate::activation::query::parse(query) {
                Ok(q) => q,
                Err(e) => return error(e, tid),
            };
            let mut mine: Vec<&Activation> = all
                .iter()
                .filter(|a| a.namespace == me.namespace)
                .filter(|a| {
                    q.name
                        .as_ref()
                        .is_none_or(|n| &crate::activation::store::name_key(a) == n)
                })
                .filter(|a| q.since.is_none_or(|s| a.start >= s))
                .filter(|a| q.upto.is_none_or(|u| a.start <= u))
                .collect();
            mine.sort_by_key(|a| std::cmp::Reverse((a.start, a.activation_id.clone())));
            if q.count {
                let n = (mine.len() as u64).saturating_sub(q.skip);
                return json_response(http::StatusCode::OK, &json!({"activations": n}), tid, &[]);
            }
            let page: Vec<Value> = mine
                .into_iter()
                .skip(q.skip as usize)
                .take(q.limit as usize)
                .map(|a| {
                    if q.docs {
                        api_json(inner, a, true)
                    } else {
                        with_duration(inner, a, a.to_summary_json())
                    }
                })
                .collect();
            json_response(http::StatusCode::OK, &Value::Array(page), tid, &[])
        }
        [id, more @ ..] => {
            if let Err(e) = id.parse::<ActivationId>() {
                return error(WhiskError::rejected(e.to_string()), tid);
            }
            let Some(act) = all
                .iter()
                .find(|a| a.activation_id.as_str() == *id && a.namespace == me.namespace)
            else {
                return error(WhiskError::not_found(), tid);
            };
            match more {
                [] => json_response(http::StatusCode::OK, &api_json(inner, act, true), tid, &[]),
                ["logs"] => {
                    json_response(http::StatusCode::OK, &json!({"logs": act.logs}), tid, &[])
                }
                ["result"] => {
                    json_response(http::StatusCode::OK, &act.response.to_api_json(), tid, &[])
                }
                _ => error(WhiskError::not_found(), tid),
            }
        }
    }
}
