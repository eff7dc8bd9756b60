//! The Lambda path: an invocation of a mapped action, answered from Lambda exactly as
//! the controller would answer it.
//!
//! Order of checks follows the controller's (reference §1.2): credentials, then the
//! caller's rights on the action (the controller's answer through the metadata
//! lookup), then payload size, query parameters, body, action existence, `final`
//! parameters. The invocation itself runs in its own task so that it completes even
//! when the client stops waiting (blocking wait expired, non-blocking call, client
//! gone); its outcome is never dropped: whoever holds it last finishes it.

pub mod envelope;
pub mod request;
pub(crate) mod response;
mod sequence;
pub(crate) mod web;

pub(crate) use sequence::explain as explain_sequence;

use crate::activation::Recorder;
use crate::activation::store::Record;
use crate::auth::{Caller, Identity};
use crate::context::{RequestContext, epoch_ms};
use crate::controller::proxy;
use crate::error::WhiskError;
use crate::gateway::{Gateway, Snapshot};
use crate::lambda::{self, InvokeRequest, LambdaError, Ran};
use crate::policy::{Fallback, Route};
use crate::telemetry::timing::{Path, Phase};
use crate::telemetry::traces;
use crate::whisk::activation::Annotation;
use crate::whisk::names::validate_segment;
use crate::whisk::{
    ActionMetadata, ActionPath, Activation, ActivationId, ActivationResponse, messages, params,
};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri};
use opentelemetry::trace::SpanKind;
use rand::Rng;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tracing::Instrument;

/// How long owl waits beyond an action's time limit before it stops waiting for
/// Lambda (Lambda enforces the function's own timeout; this is the safety net).
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// The activation annotation with owl's path and phase timings.
pub(crate) const OWL_ANNOTATION: &str = "owl";
/// How long an invocation waits for a free slot before 503.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// The original request, kept so it can be sent to the controller unchanged when the
/// route falls back.
#[derive(Debug, Clone)]
pub(crate) struct ReplayableRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// A web call: replayed as it came (it is always blocking; its query is the
    /// action's).
    web: bool,
}

impl ReplayableRequest {
    fn to_request(&self) -> Request<Body> {
        let mut req = Request::new(Body::from(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// The same invocation as a blocking one that returns the whole record (used when
    /// owl must learn the outcome of an invocation it handed to the controller).
    fn to_blocking_request(&self) -> Request<Body> {
        let mut req = self.to_request();
        if self.web {
            return req;
        }
        let kept: Vec<&str> = self
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| {
                let k = p.split('=').next().unwrap_or("");
                !p.is_empty() && !matches!(k, "blocking" | "result" | "timeout")
            })
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("blocking=true");
        let path_and_query = format!("{}?{query}", self.uri.path());
        if let Ok(uri) = Uri::builder().path_and_query(path_and_query).build() {
            *req.uri_mut() = uri;
        }
        req
    }
}

/// Handles `POST /api/v1/namespaces/{ns}/actions/{[pkg/]action}`: decides between
/// Lambda and the controller, and answers.
pub(crate) async fn handle(
    gw: Arc<Gateway>,
    rt: Arc<Snapshot>,
    req: Request<Body>,
    ctx: RequestContext,
    (ns, pkg, action): (String, Option<String>, String),
) -> Response {
    let routes = &rt.policy.routes;
    let timings = ctx.timings.clone();
    let matching = Instant::now();
    let span = traces::start("route");
    let decided = first_match(routes, ns, pkg, action);
    drop(span);
    timings.add(Phase::Route, matching.elapsed());
    let Some((requested, direct)) = decided else {
        return proxy::forward(&rt.controller, req, &ctx).await;
    };
    let direct = direct.cloned();
    // Boxed: what follows (identity, metadata, throttles, the Lambda call) is a large
    // state machine; inline, every request's future — the proxied ones too — would be
    // that large, and each move of it a copy of that size.
    Box::pin(covered(gw, rt, req, ctx, requested, direct)).await
}

/// A request some route may cover: authenticate, find the route, admit, invoke.
async fn covered(
    gw: Arc<Gateway>,
    rt: Arc<Snapshot>,
    req: Request<Body>,
    ctx: RequestContext,
    requested: ActionPath,
    direct: Option<Arc<Route>>,
) -> Response {
    let routes = &rt.policy.routes;
    let timings = ctx.timings.clone();
    // No request reaches Lambda unauthenticated.
    let identity = match authenticate(&rt, req.headers(), &ctx).await {
        Ok(i) => i,
        Err(e) => return e.render(&ctx.tid),
    };
    let matching = Instant::now();
    let path = requested.into_resolved(&identity.namespace);
    let mut known_metadata = None;
    let route = match direct {
        Some(r) => Some(r),
        None => match find_route(routes, &path) {
            Some(r) if r.takes(draw()) => Some(r.clone()),
            Some(_) => {
                timings.add(Phase::Route, matching.elapsed());
                return proxy::forward(&rt.controller, req, &ctx).await;
            }
            None if path.package.is_some() && routes.may_cover_packaged(&path.action) => {
                timings.add(Phase::Route, matching.elapsed());
                // Perhaps a package binding whose bound package is routed.
                let looked_up = timings
                    .time(
                        Phase::Metadata,
                        traces::start("metadata")
                            .instrument(rt.directory.action(&identity, &path, &ctx.tid)),
                    )
                    .await;
                match looked_up {
                    Ok(m) if m.path != path => {
                        let r = routes.find(&m.path).filter(|r| r.takes(draw())).cloned();
                        known_metadata = Some(m);
                        r
                    }
                    _ => None,
                }
            }
            None => None,
        },
    };
    timings.add(Phase::Route, matching.elapsed());
    let Some(route) = route else {
        return proxy::forward(&rt.controller, req, &ctx).await;
    };
    timings.set_path(Path::Lambda);
    // Namespace throttles, in OpenWhisk's order: after authentication, before the
    // action's existence and the caller's rights are checked.
    let limits = crate::limits::Effective::for_namespace(
        &rt.policy.limits,
        &identity.namespace,
        identity.limits.as_ref(),
    );
    let admitted = timings
        .time(
            Phase::Throttle,
            traces::start("throttle").instrument(gw.throttles().admit(&identity.namespace, limits)),
        )
        .await;
    let slot = match admitted {
        Ok(s) => s,
        Err(e) => return e.render(&ctx.tid),
    };
    // Boxed: the Lambda path's state (the SDK call inside it) is tens of kilobytes;
    // inline, it would make every request's future that large, and each move of it (as
    // the server boxes and wraps it) a copy of that size — proxied requests included.
    let admitted = Admitted {
        gw,
        rt,
        route,
        ctx,
        identity,
        path,
        known_metadata,
        slot,
    };
    Box::pin(lambda_path(admitted, req)).await
}

/// What can be decided before the caller is known: `None` sends the request to the
/// controller (no route can cover it, a name the controller must reject, or a route
/// whose weight sent this one to the controller); otherwise the requested path and
/// the route that covers it as written (none yet when `_` must be resolved first or it
/// may be a binding).
fn first_match(
    routes: &crate::policy::RoutingTable,
    ns: String,
    pkg: Option<String>,
    action: String,
) -> Option<(ActionPath, Option<&Arc<Route>>)> {
    // Nothing can match: the controller answers, with no identity work here.
    if !routes.may_cover_action_name(&action) {
        return None;
    }
    // Names the controller rejects get its exact 400 from the controller.
    let names_valid = (ns == "_" || validate_segment(&ns).is_ok())
        && pkg.as_deref().is_none_or(|p| validate_segment(p).is_ok())
        && validate_segment(&action).is_ok();
    if !names_valid {
        return None;
    }
    // The parsed segments become the path (moved, not copied).
    let requested = ActionPath {
        namespace: ns,
        package: pkg,
        action,
    };
    let direct = (!requested.has_default_namespace())
        .then(|| routes.find(&requested))
        .flatten();
    let may_be_binding =
        requested.package.is_some() && routes.may_cover_packaged(&requested.action);
    if !requested.has_default_namespace() && direct.is_none() && !may_be_binding {
        return None;
    }
    // A route found without identity work draws its weight first, so `weight = 0` is
    // a pure proxy.
    if let Some(r) = direct
        && !r.takes(draw())
    {
        return None;
    }
    Some((requested, direct))
}

/// The route covering `path` (the `route` phase's span around the lookup).
fn find_route<'r>(
    routes: &'r crate::policy::RoutingTable,
    path: &ActionPath,
) -> Option<&'r Arc<Route>> {
    let _span = traces::start("route");
    routes.find(path)
}

/// Credentials parsed exactly as the controller parses them, and the caller's
/// identity looked up (the `auth` phase).
pub async fn authenticate(
    rt: &Snapshot,
    headers: &HeaderMap,
    ctx: &RequestContext,
) -> Result<Arc<Identity>, WhiskError> {
    let started = Instant::now();
    let result = traces::start("auth")
        .instrument(async {
            let caller = Caller::from_headers(headers, rt.directory.bearer_enabled())?;
            rt.directory.identify(&caller, &ctx.tid).await
        })
        .await;
    ctx.timings.add(Phase::Auth, started.elapsed());
    result
}

/// A uniform draw in `[0, 100)` for route weights.
fn draw() -> f64 {
    rand::rng().random_range(0.0..100.0)
}

/// True for actions the controller must run itself: sequences and conductor
/// compositions.
fn is_composition(m: &ActionMetadata) -> bool {
    m.kind == "sequence" || m.annotation_is_truthy("conductor", false)
}

/// An invocation admitted to the Lambda path: authenticated, covered by `route`, and
/// holding its namespace's throttle slot.
struct Admitted {
    gw: Arc<Gateway>,
    rt: Arc<Snapshot>,
    /// The route covering the action as requested.
    route: Arc<Route>,
    ctx: RequestContext,
    identity: Arc<Identity>,
    /// The action as requested, its namespace resolved.
    path: ActionPath,
    /// The action's metadata, when finding the route already looked it up.
    known_metadata: Option<Arc<ActionMetadata>>,
    slot: crate::limits::Slot,
}

/// Where a step leaves an invocation that does not go on to Lambda.
#[derive(Debug)]
enum Exit {
    /// Answer with this error, in OpenWhisk's shape. The throttle slot is released and
    /// its attempt stays counted, as OpenWhisk counts a request it refuses.
    Answer(WhiskError),
    /// The controller decides: the request goes there unchanged and the namespace's
    /// throttle count is given back (the controller counts it itself: a request is
    /// throttled once). The path is how the request is reported.
    Controller(Path),
}

impl Admitted {
    /// Leaves the Lambda path at `exit`; `request` is what the controller gets.
    async fn leave(self, exit: Exit, request: Request<Body>) -> Response {
        match exit {
            Exit::Answer(e) => e.render(&self.ctx.tid),
            Exit::Controller(path) => {
                self.slot.refund();
                self.ctx.timings.set_path(path);
                proxy::forward(&self.rt.controller, request, &self.ctx).await
            }
        }
    }
}

/// The Lambda path, step by step: the action's metadata ([`triage`]), the request
/// validated as the controller validates it ([`validate`]), the route and function of
/// the action where it lives ([`route_for`]), the job ([`Job::prepare`]) and its
/// delivery, blocking or not ([`deliver`]). Each step either hands the next one what
/// it needs or says where the invocation leaves ([`Exit`]).
async fn lambda_path(inv: Admitted, req: Request<Body>) -> Response {
    let metadata = match inv.known_metadata.clone() {
        Some(m) => Ok(m),
        None => {
            inv.ctx
                .timings
                .time(
                    Phase::Metadata,
                    traces::start("metadata").instrument(inv.rt.directory.action(
                        &inv.identity,
                        &inv.path,
                        &inv.ctx.tid,
                    )),
                )
                .await
        }
    };
    let metadata = match triage(metadata, &inv.path) {
        Ok(m) => m,
        Err(exit) => return inv.leave(exit, req).await,
    };
    // The caller's own payload limit, within the deployment's (Entities.scala:119-125).
    let deployment = crate::whisk::Deployment {
        payload_max: inv
            .rt
            .policy
            .openwhisk
            .payload_max_for(inv.identity.limits.as_ref()),
        ..inv.rt.policy.openwhisk
    };
    let valid = match validate(
        req,
        metadata,
        deployment,
        inv.gw.settings().server.body_read_timeout,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return e.render(&inv.ctx.tid),
    };
    // A deprecated runtime is refused after the request is validated, as the
    // controller's invokeAction does [OW core/controller/.../actions/
    // PostActionActivation.scala:59-63].
    let kind = &valid.metadata.kind;
    if inv.rt.deprecated_kinds.contains(
        &inv.rt.controller,
        kind,
        inv.rt.policy.controller.timeout.min(Duration::from_secs(2)),
    ) {
        return WhiskError::bad_request(messages::runtime_deprecated(kind)).render(&inv.ctx.tid);
    }
    let route = route_for(
        &inv.rt.policy.routes,
        &inv.route,
        &valid.metadata,
        &inv.path,
        draw,
    );
    let route = match route {
        Ok(r) => r,
        Err(exit) => {
            let request = valid.replay.to_request();
            return inv.leave(exit, request).await;
        }
    };
    if valid.metadata.kind == "sequence" {
        return sequence::compose(inv, valid).await;
    }
    let function = match route.function.render(&valid.metadata.path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(tid = %inv.ctx.tid, route_line = route.line, error = %e, "route's function cannot be rendered for this action; sending it to the controller");
            let request = valid.replay.to_request();
            return inv.leave(Exit::Controller(Path::Fallback), request).await;
        }
    };
    let (job, opts) = match Job::prepare(inv, valid, route, function) {
        Ok(j) => j,
        Err(answer) => return *answer,
    };
    deliver(job, opts).await
}

/// The metadata lookup's answer, sorted as the controller sorts it: the action, a
/// failure to report only after the request is validated, or an exit now.
///
/// Entitlement failures and a missing package come first; an action lookup failure in
/// the default package is reported after the request has been validated, as the
/// controller does (its package check precedes validation, its action fetch follows).
/// Compositions are the controller's to run.
fn triage(
    looked_up: Result<Arc<ActionMetadata>, WhiskError>,
    path: &ActionPath,
) -> Result<Result<Arc<ActionMetadata>, WhiskError>, Exit> {
    match looked_up {
        // The controller refused to show the action. With
        // `whisk.shared-packages-execute-only = true` it refuses the metadata GET of
        // any action outside the caller's namespace that it would still run [OW
        // core/controller/.../Actions.scala:402 `executeOnly && user.namespace.name !=
        // entityName.namespace`]: the controller decides — it runs the invocation or
        // answers its own 403.
        Err(e)
            if e.status == http::StatusCode::FORBIDDEN
                && e.origin == crate::error::Origin::Controller =>
        {
            Err(Exit::Controller(Path::Proxy))
        }
        // Whoever decided the 404 (the controller, or owl from CouchDB or a file), it
        // comes after validation; owl's own lookup failures come at once.
        Err(e)
            if path.package.is_some()
                || e.is_unauthorized()
                || e.status == http::StatusCode::FORBIDDEN
                || (e.origin != crate::error::Origin::Controller
                    && e.status != http::StatusCode::NOT_FOUND) =>
        {
            Err(Exit::Answer(e))
        }
        // Sequences are composed by owl when it can run every component
        // ([`sequence::compose`]); conductors are the controller's.
        Ok(m) if m.kind != "sequence" && is_composition(&m) => Err(Exit::Controller(Path::Proxy)),
        other => Ok(other),
    }
}

/// A request validated as the controller validates an invocation.
#[derive(Debug)]
struct Validated {
    metadata: Arc<ActionMetadata>,
    opts: request::InvokeOptions,
    /// The action's parameters merged with the request's.
    params: serde_json::Map<String, Value>,
    replay: ReplayableRequest,
}

/// Reads and validates the request in the controller's order: the whole entity made
/// strict first (413 by declared or counted length), then the query, the content
/// type and the body; then a lookup failure held back by [`triage`]; then the
/// parameters merged, where overriding a `final` one is a 400.
async fn validate(
    req: Request<Body>,
    metadata: Result<Arc<ActionMetadata>, WhiskError>,
    deployment: crate::whisk::Deployment,
    read_timeout: Duration,
) -> Result<Validated, WhiskError> {
    let (parts, body) = req.into_parts();
    request::check_declared_length(&parts.headers, deployment.payload_max)?;
    let bytes = request::read_body(body, deployment.payload_max, read_timeout).await?;
    let opts = request::parse_query_with(parts.uri.query(), deployment.max_blocking_wait_ms)?;
    request::check_content_type(&parts.headers)?;
    let body_params = request::parse_body(&bytes)?;
    let metadata = metadata?;
    let params = params::merge(&metadata, body_params)
        .map_err(|_| WhiskError::bad_request(messages::PARAMS_NOT_ALLOWED))?;
    Ok(Validated {
        metadata,
        opts,
        params,
        replay: ReplayableRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body: bytes,
            web: false,
        },
    })
}

/// The route that decides for the action where it lives.
///
/// The function is always the resolved action's. A route that matched the path as
/// requested may have matched a binding's own path (`guest/*/*` for a binding
/// `guest/b` of `/alice/pub`): the route covering the action where it lives decides
/// (drawing its own weight unless it is the same route), else the controller runs it.
fn route_for(
    routes: &crate::policy::RoutingTable,
    requested: &Arc<Route>,
    metadata: &ActionMetadata,
    path: &ActionPath,
    draw: impl FnOnce() -> f64,
) -> Result<Arc<Route>, Exit> {
    if metadata.path == *path {
        return Ok(requested.clone());
    }
    match routes.find(&metadata.path) {
        Some(r) if r.index == requested.index || r.takes(draw()) => Ok(r.clone()),
        _ => Err(Exit::Controller(Path::Proxy)),
    }
}

/// Runs the job: non-blocking, journaled and answered 202 at once; blocking, answered
/// with its outcome, or 202 when the wait expires first. Either way the job runs in
/// its own task and is finished by whoever holds its outcome last.
async fn deliver(job: impl Invocation, opts: request::InvokeOptions) -> Response {
    let ctx = job.context().clone();
    let tid = &ctx.tid;
    let activation_id = job.id().clone();
    if opts.blocking {
        return match run_blocking(job, opts.wait).await {
            Waited::Finished(outcome) => match outcome {
                Outcome::Done { activation, .. } | Outcome::Recorded(activation) => {
                    response::completed(&activation, opts.result, tid)
                }
                Outcome::Fallback(f) => (*f).answer().await,
                Outcome::Refused { error, tid, .. } => refusal(&error).render(&tid),
            },
            Waited::Expired => response::accepted(&activation_id, tid),
            Waited::Failed(e) => e.render(tid),
        };
    }
    let gw = job.gateway().clone();
    let Some(permit) = invocation_slot(&gw, tid).await else {
        return WhiskError::service_unavailable(crate::error::Origin::Internal, Some(1))
            .render(tid);
    };
    // Durable before the 202: a crash from here on still ends with a record.
    let journaled = ctx
        .timings
        .time(
            Phase::Record,
            traces::start("activation.journal").instrument(gw.recorder().pending(&job.skeleton())),
        )
        .await;
    if let Err(e) = journaled {
        tracing::error!(%tid, error = %e, "cannot journal a non-blocking invocation; refusing it");
        return WhiskError::service_unavailable(crate::error::Origin::Internal, Some(1))
            .render(tid);
    }
    ctx.id_given
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // The invocation's task has its own span: it may outlive the request.
    gw.tasks().spawn(
        traces::start("invocation").instrument(
            async move {
                let outcome = job.run().await;
                outcome.finish_in_background().await;
                drop(permit);
            }
            .instrument(ctx.span.clone()),
        ),
    );
    response::accepted(&activation_id, tid)
}

/// What [`deliver`] and [`run_blocking`] need of an invocation: one action on
/// Lambda ([`Job`]) or a sequence owl composes ([`sequence::SequenceJob`]).
trait Invocation: Send + 'static {
    fn gateway(&self) -> &Arc<Gateway>;
    fn context(&self) -> &RequestContext;
    /// The activation id the client gets.
    fn id(&self) -> &ActivationId;
    /// The record journaled while it runs (the client holds the id).
    fn skeleton(&self) -> Activation;
    fn run(self) -> impl std::future::Future<Output = Outcome> + Send;
}

impl Invocation for Job {
    fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }
    fn context(&self) -> &RequestContext {
        &self.ctx
    }
    fn id(&self) -> &ActivationId {
        &self.activation_id
    }
    fn skeleton(&self) -> Activation {
        Job::skeleton(self)
    }
    fn run(self) -> impl std::future::Future<Output = Outcome> + Send {
        Job::run(self)
    }
}

/// Every invocation holds a slot while it runs on Lambda, so invocations whose
/// clients stopped waiting cannot pile up; `None` after [`SLOT_WAIT`].
async fn invocation_slot(
    gw: &Gateway,
    tid: &crate::whisk::TransactionId,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    match tokio::time::timeout(SLOT_WAIT, gw.invocations().clone().acquire_owned()).await {
        Ok(Ok(p)) => Some(p),
        _ => {
            tracing::warn!(%tid, "no invocation slot free");
            None
        }
    }
}

/// How a blocking wait for an invocation ended.
enum Waited {
    /// The outcome arrived in time (a finished run is journaled already).
    Finished(Outcome),
    /// The wait expired first: the client gets the activation id (journaled as
    /// running); the outcome is finished in the background.
    Expired,
    /// No invocation slot, or the invocation's task vanished: answer this.
    Failed(WhiskError),
}

/// Runs `job` in its own task and waits up to `wait` for its outcome (the blocking
/// invocation of the REST API and every web action).
async fn run_blocking(job: impl Invocation, wait: Duration) -> Waited {
    let gw = job.gateway().clone();
    let ctx = job.context().clone();
    let tid = &ctx.tid;
    let Some(permit) = invocation_slot(&gw, tid).await else {
        return Waited::Failed(WhiskError::service_unavailable(
            crate::error::Origin::Internal,
            Some(1),
        ));
    };
    let (tx, mut rx) = oneshot::channel::<Delivered>();
    let recorder = gw.recorder().clone();
    let skeleton = job.skeleton();
    gw.tasks().spawn(
        traces::start("invocation").instrument(
            async move {
                // The record is journaled before the answer can leave: a client that
                // holds an activation id can always read its record, even when the
                // gateway dies the moment after answering.
                let outcome = job.run().await.journaled().await;
                // Nobody waits: Delivered's Drop finishes it in the background.
                if let Err(undelivered) = tx.send(Delivered::new(outcome)) {
                    drop(undelivered);
                }
                drop(permit);
            }
            .instrument(ctx.span.clone()),
        ),
    );
    let waiting = Instant::now();
    let waited = tokio::time::timeout(wait, &mut rx).await;
    ctx.timings.add_awaited(waiting.elapsed());
    let delivered = match waited {
        Ok(Ok(d)) => Some(d),
        Ok(Err(_)) => None,
        Err(_) => {
            // Close first so a concurrent send either lands here or stays with the task.
            rx.close();
            match rx.try_recv().ok() {
                Some(d) => Some(d),
                None => {
                    // From here the client gets owl's id (set before anything else, so
                    // an outcome finished meanwhile in the background sees it).
                    ctx.id_given
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    // The client gets the id and may read the record later: journal it
                    // so a crash before completion still leaves a record.
                    let journaled = ctx
                        .timings
                        .time(
                            Phase::Record,
                            traces::start("activation.journal")
                                .instrument(recorder.pending(&skeleton)),
                        )
                        .await;
                    if let Err(e) = journaled {
                        tracing::error!(%tid, error = %e, "cannot journal a still-running invocation");
                    }
                    return Waited::Expired;
                }
            }
        }
    };
    match delivered.and_then(|mut d| d.outcome.take()) {
        Some(outcome) => Waited::Finished(outcome),
        None => Waited::Failed(WhiskError::internal()),
    }
}

/// The error a client gets when Lambda refused and the route has no fallback.
fn refusal(error: &LambdaError) -> WhiskError {
    match error {
        // Lambda out of capacity is OpenWhisk's load balancer without invokers
        // (`LoadBalancerException`): 503 with the status's default text [OW core/
        // controller/.../Actions.scala:326-328, WebActions.scala:702-704] — its
        // `systemOverloaded` message is defined but never sent — plus Lambda's
        // Retry-After.
        LambdaError::Throttled { retry_after, .. } => {
            WhiskError::service_unavailable(crate::error::Origin::Lambda, *retry_after)
        }
        LambdaError::TooLarge => WhiskError::entity_too_large(),
        LambdaError::BreakerOpen { retry_after } => {
            WhiskError::service_unavailable(crate::error::Origin::Lambda, Some(*retry_after))
        }
        _ => WhiskError::service_unavailable(crate::error::Origin::Lambda, None),
    }
}

/// One invocation on Lambda, with everything needed to finish it anywhere.
struct Job {
    rt: Arc<Snapshot>,
    recorder: Arc<Recorder>,
    request: InvokeRequest,
    limit_ms: u64,
    /// Where the activation's logs come from (the tail, or the owl runtime's answer).
    logs: lambda::logs::LogRequest,
    activation_id: ActivationId,
    identity: Arc<Identity>,
    metadata: Arc<ActionMetadata>,
    binding: Option<String>,
    /// The route that decided (its fallback, retries' labels).
    route: Arc<Route>,
    replay: Arc<ReplayableRequest>,
    ctx: RequestContext,
    gw: Arc<Gateway>,
    /// The namespace's concurrency slot, held until the job ends (given back with
    /// its count when the invocation falls back to the controller). A sequence's
    /// component holds none: the sequence holds it.
    slot: Option<crate::limits::Slot>,
    /// The enclosing sequence's activation, for a sequence's component.
    cause: Option<ActivationId>,
}

/// An invocation Lambda did not run, on its way to the controller.
struct FallbackJob {
    /// The namespace's slot: given back (attempt and concurrency) once the invocation
    /// is handed to the controller, which counts it itself; only released when the
    /// invocation ends here after all (then the attempt stays counted, as OpenWhisk
    /// counts every accepted activation).
    slot: Option<crate::limits::Slot>,
    rt: Arc<Snapshot>,
    recorder: Arc<Recorder>,
    replay: Arc<ReplayableRequest>,
    ctx: RequestContext,
    error: LambdaError,
    /// The record owl keeps under its own activation id when the client got that id.
    skeleton: Box<Activation>,
    limit_ms: u64,
}

/// How an invocation ended.
enum Outcome {
    /// It ran (or its run failed in a way OpenWhisk records): the activation, already
    /// on its way to the recorder.
    Done {
        activation: Box<Activation>,
        recorder: Arc<Recorder>,
    },
    /// It ran and its record is journaled: nothing is left to do but answer.
    Recorded(Box<Activation>),
    /// Lambda did not run it and the route falls back to the controller.
    Fallback(Box<FallbackJob>),
    /// Lambda did not run it and the route has no fallback.
    Refused {
        activation: Box<Activation>,
        recorder: Arc<Recorder>,
        tid: crate::whisk::TransactionId,
        error: LambdaError,
    },
}

impl Outcome {
    /// Journals a finished run's record and waits until it is durable: called before
    /// the answer is handed to the client. A journal that fails is logged; the answer
    /// still goes out (the action ran) and the record is still retried.
    async fn journaled(self) -> Self {
        match self {
            Outcome::Done {
                activation,
                recorder,
            } => {
                let record = Record::new(activation.clone());
                // The same span as a record queued after the answer: either way it
                // is the record's write (here durable before the answer leaves).
                let committed = traces::start("activation.record")
                    .instrument(recorder.commit(record))
                    .await;
                if let Err(e) = committed {
                    tracing::error!(activation_id = %activation.activation_id, error = %e, "cannot journal a completed activation before answering");
                }
                Outcome::Recorded(activation)
            }
            other => other,
        }
    }

    /// Completes an outcome nobody is waiting for (the client has the activation id).
    async fn finish_in_background(self) {
        match self {
            Outcome::Recorded(_) => {}
            Outcome::Done {
                activation,
                recorder,
            } => {
                traces::start("activation.record")
                    .instrument(recorder.complete(*activation))
                    .await;
            }
            Outcome::Fallback(f) => f.run_in_background().await,
            Outcome::Refused {
                activation,
                recorder,
                error,
                ..
            } => {
                tracing::warn!(activation_id = %activation.activation_id, %error, "invocation refused by Lambda with no fallback");
                traces::start("activation.record")
                    .instrument(recorder.complete(*activation))
                    .await;
            }
        }
    }
}

/// An outcome in transit to the waiting request; if the request is gone before it
/// takes the outcome, dropping this finishes the outcome in the background — in the
/// invocation's trace and log span, taken when it was sent (the drop happens wherever
/// the request's future is dropped, outside them).
struct Delivered {
    outcome: Option<Outcome>,
    trace: Option<traces::Current>,
    span: tracing::Span,
}

impl Delivered {
    /// `outcome`, in the current trace and log span.
    fn new(outcome: Outcome) -> Self {
        Self {
            outcome: Some(outcome),
            trace: traces::current(),
            span: tracing::Span::current(),
        }
    }
}

impl Drop for Delivered {
    fn drop(&mut self) {
        if let Some(outcome) = self.outcome.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(traces::scope(
                self.trace.take(),
                outcome.finish_in_background().instrument(self.span.clone()),
            ));
        }
    }
}

impl FallbackJob {
    /// Hands the invocation to the controller for the client still waiting, and
    /// answers with whatever the controller answers.
    async fn answer(self) -> Response {
        let FallbackJob {
            slot,
            rt,
            replay,
            ctx,
            error,
            ..
        } = self;
        // The controller counts it (throttled once).
        if let Some(slot) = slot {
            slot.refund();
        }
        tracing::info!(tid = %ctx.tid, reason = %error, "Lambda unavailable; invocation sent to the controller");
        ctx.timings.set_path(Path::Fallback);
        let tid = ctx.tid.clone();
        // In its own task: a client that disconnects now must not cancel the only
        // attempt to run the invocation.
        let span = ctx.span.clone();
        let forward = tokio::spawn(traces::scope(
            traces::current(),
            async move { proxy::forward(&rt.controller, replay.to_request(), &ctx).await }
                .instrument(span),
        ));
        match forward.await {
            Ok(resp) => resp,
            Err(_) => WhiskError::internal().render(&tid),
        }
    }

    /// Sends the invocation to the controller and waits for its activation, then
    /// records it under owl's activation id (the one the client holds), annotated with
    /// the controller's id.
    async fn run_in_background(mut self) {
        let tid = self.ctx.tid.clone();
        if self.recorder.store_kind() == "couchdb"
            && self.ctx.id_given.load(std::sync::atomic::Ordering::SeqCst)
        {
            // The client holds owl's id. In OpenWhisk's activations database owl's record
            // and the controller's activation would both be listed for one invocation, so
            // the invocation ends as OpenWhisk ends an accepted activation it cannot run:
            // a whisk error under the id the client holds.
            // Ends here: the slot is released, its attempt stays counted (dropped
            // below), as OpenWhisk counts every accepted activation.
            tracing::warn!(%tid, reason = %self.error, "Lambda did not run an accepted invocation; recorded as a whisk error (no fallback once the client holds the id, with the couchdb store)");
            let mut record = *self.skeleton;
            record.end = crate::context::epoch_ms(SystemTime::now()).max(record.start);
            record.response = ActivationResponse::whisk_error(refusal(&self.error).message.clone());
            self.recorder.complete(record).await;
            return;
        }
        tracing::info!(%tid, reason = %self.error, "Lambda unavailable; invocation sent to the controller in the background");
        // The controller counts it (throttled once).
        if let Some(slot) = self.slot.take() {
            slot.refund();
        }
        let resp = proxy::forward(
            &self.rt.controller,
            self.replay.to_blocking_request(),
            &self.ctx,
        )
        .await;
        let status = resp.status();
        let controller_id = resp
            .headers()
            .get(response::ACTIVATION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut record = (*self.skeleton).clone();
        let mut from_controller = serde_json::from_slice::<Value>(&body)
            .ok()
            .as_ref()
            .and_then(Activation::from_json);
        if from_controller.is_none()
            && status == http::StatusCode::ACCEPTED
            && let Some(cid) = &controller_id
        {
            from_controller = self.poll_controller(cid).await;
        }
        match (&from_controller, &controller_id) {
            (Some(theirs), _) => {
                record.start = theirs.start;
                record.end = theirs.end.max(theirs.start);
                record.duration_ms = theirs.duration_ms;
                record.response = theirs.response.clone();
                record.logs = theirs.logs.clone();
                // What the controller recorded of the run (a sequence's `limits`, the
                // invoker's `waitTime`, `initTime`, …) is the truth; owl's own
                // annotation stays.
                for a in &theirs.annotations {
                    if a.key == OWL_ANNOTATION {
                        continue;
                    }
                    match record.annotations.iter_mut().find(|o| o.key == a.key) {
                        Some(o) => o.value = a.value.clone(),
                        None => record.annotations.push(a.clone()),
                    }
                }
            }
            (None, Some(cid)) => {
                record.end = crate::context::epoch_ms(SystemTime::now()).max(record.start);
                record.response = ActivationResponse::whisk_error(format!(
                    "Lambda did not run the invocation; the controller runs it as activation {cid}, whose result was not available in time."
                ));
            }
            (None, None) => {
                let text = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                record.end = crate::context::epoch_ms(SystemTime::now()).max(record.start);
                record.response = ActivationResponse::whisk_error(format!(
                    "Lambda did not run the invocation and the controller did not take it ({}{}{}).",
                    status.as_u16(),
                    if text.is_empty() { "" } else { ": " },
                    text
                ));
            }
        }
        if let Some(a) = record
            .annotations
            .iter_mut()
            .find(|a| a.key == OWL_ANNOTATION)
        {
            a.value = self.ctx.timings.annotation(Path::Fallback);
        }
        if let Some(cid) = controller_id {
            record.annotations.push(Annotation {
                key: "fallback".into(),
                value: serde_json::json!({ "to": "controller", "activationId": cid, "reason": self.error.kind() }),
            });
        }
        tracing::info!(%tid, status = status.as_u16(), "controller took the fallback invocation");
        self.recorder.complete(record).await;
    }

    /// Polls the controller for activation `cid` until it appears or the action's time
    /// limit (plus a minute) has passed.
    async fn poll_controller(&self, cid: &str) -> Option<Activation> {
        let deadline =
            Instant::now() + Duration::from_millis(self.limit_ms) + Duration::from_secs(60);
        // A bearer-token caller's request went to the controller with its namespace's
        // exchanged key (`proxy_authorization`): the controller knows that, not the
        // token.
        let auth = match &self.ctx.proxy_authorization {
            Some(key) => key.clone(),
            None => self
                .replay
                .headers
                .get(http::header::AUTHORIZATION)?
                .clone(),
        };
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let req = Request::builder()
                .method(Method::GET)
                .uri(
                    self.rt
                        .controller
                        .uri(&format!("/api/v1/namespaces/_/activations/{cid}")),
                )
                .header(http::header::AUTHORIZATION, auth.clone())
                .body(Body::empty())
                .ok()?;
            if let Ok(resp) = self.rt.controller.send(req).await
                && resp.status() == http::StatusCode::OK
                && let Ok(body) = http_body_util::BodyExt::collect(resp.into_body()).await
            {
                return serde_json::from_slice::<Value>(&body.to_bytes())
                    .ok()
                    .as_ref()
                    .and_then(Activation::from_json);
            }
        }
        None
    }
}

/// What every job of one request shares.
#[derive(Clone)]
struct Parts {
    gw: Arc<Gateway>,
    rt: Arc<Snapshot>,
    ctx: RequestContext,
    /// Who runs it (the caller, or a web action's owner).
    identity: Arc<Identity>,
    /// The request as it came, for a fallback to the controller.
    replay: Arc<ReplayableRequest>,
}

impl Job {
    /// A job running `metadata`'s action as `function` under `route` with `params`
    /// (an object, or the bare array a sequence hands on), within OpenWhisk's message
    /// limit (else the 413, with the context to render it in).
    #[allow(clippy::too_many_arguments)]
    fn new(
        parts: Parts,
        metadata: Arc<ActionMetadata>,
        binding: Option<String>,
        route: Arc<Route>,
        function: String,
        params: Value,
        slot: Option<crate::limits::Slot>,
        cause: Option<ActivationId>,
    ) -> Result<Job, Box<(WhiskError, RequestContext)>> {
        let Parts {
            gw,
            rt,
            ctx,
            identity,
            replay,
        } = parts;
        let activation_id = ActivationId::generate();
        let limit_ms = route
            .timeout
            .map_or(metadata.limits.timeout_ms, |d| d.as_millis() as u64);
        let api_key = metadata
            .provides_api_key()
            .then(|| identity.key.as_ref().map(|k| k.api_key()))
            .flatten();
        let env = envelope::ActivationContext {
            namespace: &identity.namespace,
            action_name: metadata.path.qualified_name_with_leading_slash(),
            action_version: &metadata.version,
            activation_id: activation_id.as_str(),
            transaction_id: ctx.tid.as_str(),
            deadline_ms: epoch_ms(SystemTime::now()) + limit_ms as i64,
            api_key,
            api_host: rt.policy.controller.api_host.as_deref(),
        };
        // The owl runtime returns the activation's whole log when asked (issue 15 §15).
        let logs = lambda::logs::LogRequest::for_action(
            &metadata.limits.json,
            route.payload,
            rt.policy.lambda.log_tail,
        );
        let payload = envelope::build_for(route.payload, params, &env, &logs);
        // OpenWhisk bounds the activation message by Kafka's record limit (payload
        // limit + serialisation overhead); Lambda's own limit (6 MB) is looser.
        if payload.len() > rt.policy.openwhisk.payload_max as usize + request::MESSAGE_OVERHEAD {
            return Err(Box::new((WhiskError::entity_too_large(), ctx)));
        }
        Ok(Job {
            recorder: gw.recorder().clone(),
            request: InvokeRequest {
                function,
                qualifier: route.qualifier.clone(),
                payload,
            },
            limit_ms,
            logs,
            activation_id,
            identity,
            metadata,
            binding,
            route,
            replay,
            rt,
            ctx,
            gw,
            slot,
            cause,
        })
    }

    /// The job for a validated invocation of `function` under `route`: the payload in
    /// the route's shape, within OpenWhisk's message limit (else the 413 answer).
    fn prepare(
        inv: Admitted,
        valid: Validated,
        route: Arc<Route>,
        function: String,
    ) -> Result<(Job, request::InvokeOptions), Box<Response>> {
        let Admitted {
            gw,
            rt,
            ctx,
            identity,
            path,
            slot,
            ..
        } = inv;
        let Validated {
            metadata,
            opts,
            params,
            replay,
        } = valid;
        let binding = (metadata.path != path).then(|| path.entity_namespace());
        let job = Job::new(
            Parts {
                gw,
                rt,
                ctx,
                identity,
                replay: Arc::new(replay),
            },
            metadata,
            binding,
            route,
            function,
            Value::Object(params),
            Some(slot),
            None,
        );
        let job = match job {
            Ok(j) => j,
            Err(e) => return Err(Box::new(e.0.render(&e.1.tid))),
        };
        Ok((job, opts))
    }

    async fn run(self) -> Outcome {
        let call_start_wall = SystemTime::now();
        let call_start = Instant::now();
        let wait_ms = call_start.duration_since(self.ctx.received).as_millis() as u64;
        // Lambda does not count a cold start's init against the function timeout.
        let guard = Duration::from_millis(self.limit_ms)
            + self.rt.policy.lambda.init_allowance
            + TIMEOUT_GRACE;
        let result = tokio::time::timeout(guard, self.call_lambda()).await;
        let end_wall = SystemTime::now();
        let now = time::OffsetDateTime::from(end_wall);
        let (response, timed_out, logs, init_ms) = match result {
            Err(_) => (
                ActivationResponse::error(
                    crate::whisk::StatusCode::DeveloperError,
                    messages::timed_out(self.limit_ms).into(),
                    None,
                ),
                true,
                Vec::new(),
                None,
            ),
            Ok(Ok(reply)) => {
                let r = lambda::outcome::interpret_logged(
                    &reply,
                    self.limit_ms,
                    self.rt.policy.openwhisk.payload_max as usize,
                    self.logs,
                    now,
                );
                (r.response, r.timed_out, r.tail.lines, r.tail.init_ms)
            }
            Ok(Err(error)) if error.ran() == Ran::No => {
                tracing::warn!(tid = %self.ctx.tid, function = %self.request.function, kind = error.kind(), %error, "Lambda did not run the invocation");
                if self.route.fallback == Fallback::Controller
                    && !matches!(error, LambdaError::TooLarge)
                {
                    let skeleton = Box::new(self.skeleton());
                    return Outcome::Fallback(Box::new(FallbackJob {
                        slot: self.slot,
                        rt: self.rt,
                        recorder: self.recorder,
                        replay: self.replay,
                        ctx: self.ctx,
                        error,
                        skeleton,
                        limit_ms: self.limit_ms,
                    }));
                }
                let activation = self.activation(
                    call_start_wall,
                    end_wall,
                    ActivationResponse::whisk_error(refusal(&error).message.clone()),
                    false,
                    Vec::new(),
                    None,
                    wait_ms,
                );
                self.gw
                    .metrics()
                    .openwhisk
                    .record(&activation, &self.identity.namespace);
                return Outcome::Refused {
                    activation: Box::new(activation),
                    recorder: self.recorder,
                    tid: self.ctx.tid.clone(),
                    error,
                };
            }
            Ok(Err(error)) => {
                tracing::error!(tid = %self.ctx.tid, function = %self.request.function, %error, "Lambda invocation failed after it may have run");
                (
                    // What the invoker records when it loses the container mid-run
                    // [OW ContainerProxy.scala:868, ErrorResponse.scala:155 `abnormalRun`].
                    ActivationResponse::whisk_error(messages::ABNORMAL_RUN),
                    false,
                    Vec::new(),
                    None,
                )
            }
        };
        let activation = self.activation(
            call_start_wall,
            end_wall,
            response,
            timed_out,
            logs,
            init_ms,
            wait_ms,
        );
        // Debug, not info: one line per invocation would cost more CPU than the rest
        // of owl's own work on the path; metrics and the record carry the same facts.
        tracing::debug!(
            tid = %self.ctx.tid,
            activation_id = %activation.activation_id,
            action = %self.metadata.path,
            function = %self.request.function,
            status = activation.response.status_code.status(),
            duration_ms = activation.end - activation.start,
            wait_ms,
            "activation completed on Lambda"
        );
        self.gw
            .metrics()
            .openwhisk
            .record(&activation, &self.identity.namespace);
        Outcome::Done {
            activation: Box::new(activation),
            recorder: self.recorder,
        }
    }

    /// Calls Lambda through the function's breaker, retrying only what Lambda did not
    /// run (throttled before running, or not reachable).
    async fn call_lambda(&self) -> Result<lambda::LambdaReply, LambdaError> {
        let span = traces::start_kind("lambda.invoke", SpanKind::Client);
        if span.recording() {
            span.set("faas.invoked_provider", "aws");
            span.set("faas.invoked_name", self.request.function.clone());
            span.set("owl.route", self.route.label.to_string());
        }
        let started = Instant::now();
        let (result, attempts) = traces::scope(span.current(), self.call_with_retries()).await;
        self.ctx.timings.add(Phase::Lambda, started.elapsed());
        if span.recording() {
            span.set("owl.attempts", i64::from(attempts));
            span.set(
                "owl.outcome",
                match &result {
                    Ok(r) if r.function_error.is_some() => "function_error",
                    Ok(_) => "ok",
                    Err(e) => e.kind(),
                },
            );
        }
        drop(span);
        result
    }

    /// Calls Lambda through the function's breaker, retrying only what Lambda did not
    /// run (throttled before running, or not reachable). Returns the outcome and the
    /// number of attempts.
    async fn call_with_retries(&self) -> (Result<lambda::LambdaReply, LambdaError>, u32) {
        let cfg = &self.rt.policy.lambda;
        let function = self.request.function.as_str();
        let metrics = &self.gw.metrics();
        let mut attempt = 0;
        loop {
            if let crate::lambda::breaker::Permit::Open(wait) =
                self.gw.breakers().check(function, cfg.breaker_cooldown)
            {
                let e = LambdaError::BreakerOpen {
                    retry_after: wait.as_secs().max(1),
                };
                self.count_error(&e);
                return (Err(e), attempt);
            }
            let call_started = Instant::now();
            let result = self.rt.lambda.invoke(self.request.clone()).await;
            metrics
                .lambda_call_duration
                .get_or_create(&crate::telemetry::RouteLabels {
                    route: self.route.label.clone(),
                })
                .observe(call_started.elapsed().as_secs_f64());
            attempt += 1;
            if let Err(e) = &result {
                self.count_error(e);
            }
            let lambda_failed = matches!(
                &result,
                Err(LambdaError::Throttled { .. }
                    | LambdaError::Unreachable(_)
                    | LambdaError::Refused { .. }
                    | LambdaError::Indeterminate(_))
            );
            self.gw.breakers().record(
                function,
                &self.route.label,
                lambda_failed,
                cfg.breaker_failures,
                cfg.breaker_cooldown,
            );
            let retryable = match &result {
                Err(LambdaError::Throttled { retry_after, .. }) => {
                    retry_after.is_none_or(|s| s <= 1)
                }
                Err(LambdaError::Unreachable(_)) => true,
                _ => false,
            };
            if !retryable || attempt > cfg.retries {
                return (result, attempt);
            }
            // Exponential backoff (50 ms, 100 ms, ...) with jitter, so gateways that
            // were throttled together do not retry together.
            let base = 25u64 << attempt.min(8);
            let delay = rand::rng().random_range(base / 2..=base);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }

    /// Counts a Lambda call that produced no reply.
    fn count_error(&self, e: &LambdaError) {
        let metrics = &self.gw.metrics();
        metrics
            .lambda_errors
            .get_or_create(&crate::telemetry::LambdaErrorLabels {
                route: self.route.label.clone(),
                reason: e.kind(),
            })
            .inc();
        if let LambdaError::Throttled { reason, .. } = e {
            metrics
                .lambda_throttles
                .get_or_create(&crate::telemetry::LambdaThrottleLabels {
                    route: self.route.label.clone(),
                    reason: reason.clone(),
                })
                .inc();
        }
    }

    /// The record journaled for an accepted invocation: what a restart records if the
    /// invocation never completes (`end` is set then).
    fn skeleton(&self) -> Activation {
        let now = SystemTime::now();
        let mut a = self.activation(
            now,
            now,
            ActivationResponse::whisk_error(crate::activation::recorder::RESTART_MESSAGE),
            false,
            Vec::new(),
            None,
            self.ctx.received.elapsed().as_millis() as u64,
        );
        a.end = 0;
        a
    }

    #[allow(clippy::too_many_arguments)]
    fn activation(
        &self,
        start: SystemTime,
        end: SystemTime,
        response: ActivationResponse,
        timed_out: bool,
        logs: Vec<String>,
        init_ms: Option<f64>,
        wait_ms: u64,
    ) -> Activation {
        // The action's own limits, as the invoker writes them [OW core/invoker/.../
        // containerpool/ContainerProxy.scala:1075 `job.action.limits.toJson`]; a
        // route's `timeout` changes how long Lambda may run, not what the action
        // declares.
        let mut annotations = vec![
            Annotation {
                key: "limits".into(),
                value: self.metadata.limits.json.clone(),
            },
            Annotation {
                key: "path".into(),
                value: self.metadata.path.to_path_string().into(),
            },
            Annotation {
                key: "kind".into(),
                value: self.metadata.kind.clone().into(),
            },
            Annotation {
                key: "timeout".into(),
                value: timed_out.into(),
            },
        ];
        // A sequence's component, in the invoker's order: `causedBy` after `timeout`
        // [OW common/scala/.../connector/Message.scala:74 `causedBySequence =
        // cause.isDefined`; core/invoker/.../ContainerProxy.scala:1047-1080].
        if self.cause.is_some() {
            annotations.push(Annotation {
                key: "causedBy".into(),
                value: Value::String("sequence".into()),
            });
        }
        if let Some(init) = init_ms {
            annotations.push(Annotation {
                key: "initTime".into(),
                value: (init.ceil() as u64).into(),
            });
        }
        annotations.push(Annotation {
            key: "waitTime".into(),
            value: wait_ms.into(),
        });
        if let Some(b) = &self.binding {
            annotations.push(Annotation {
                key: "binding".into(),
                value: Value::String(b.clone()),
            });
        }
        // owl's own: the path taken and where the time went.
        annotations.push(Annotation {
            key: OWL_ANNOTATION.into(),
            value: self.ctx.timings.annotation(Path::Lambda),
        });
        Activation {
            duration_ms: None,
            namespace: self.identity.namespace.clone(),
            name: self.metadata.path.action.clone(),
            subject: self.identity.subject.clone(),
            activation_id: self.activation_id.clone(),
            start: epoch_ms(start),
            end: epoch_ms(end).max(epoch_ms(start)),
            cause: self.cause.as_ref().map(|c| c.as_str().to_string()),
            response,
            logs,
            version: self.metadata.version.clone(),
            publish: false,
            annotations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Origin;
    use crate::policy::PayloadMode;
    use crate::policy::RoutingTable;
    use crate::policy::route::{ActionPattern, FunctionTemplate};
    use serde_json::json;

    fn path(s: &str) -> ActionPath {
        ActionPath::parse(s).unwrap()
    }

    fn action(namespace: &str, name: &str, extra: Value) -> Arc<ActionMetadata> {
        let mut doc = json!({
            "namespace": namespace,
            "name": name,
            "version": "0.0.1",
            "exec": {"kind": "nodejs:20"},
            "limits": {"timeout": 60000, "memory": 256, "logs": 10},
            "parameters": [],
            "annotations": [],
        });
        if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        Arc::new(ActionMetadata::from_json(&doc).expect("action JSON"))
    }

    fn from_controller(status: http::StatusCode) -> WhiskError {
        WhiskError::from_controller(
            status,
            &HeaderMap::new(),
            Bytes::from_static(br#"{"error":"x","code":"t"}"#),
        )
    }

    fn exit(r: Result<Result<Arc<ActionMetadata>, WhiskError>, Exit>) -> String {
        match r {
            Ok(Ok(_)) => "found".into(),
            Ok(Err(e)) => format!("later {}", e.status.as_u16()),
            Err(Exit::Answer(e)) => format!("answer {}", e.status.as_u16()),
            Err(Exit::Controller(p)) => format!("controller {}", p.label()),
        }
    }

    /// The controller's order of lookup failures [OW core/controller/.../Actions.scala:
    /// 279-300 `invoke`: the package is fetched (and entitlement checked) before the
    /// request is validated; the action in the default package after].
    #[test]
    fn triage_sorts_lookup_answers_as_the_controller_does() {
        let plain = path("guest/a");
        let packaged = path("guest/p/a");
        let found = action("guest", "a", json!({}));
        assert_eq!(exit(triage(Ok(found.clone()), &plain)), "found");
        // The controller's 403 on a metadata GET: it decides (execute-only packages).
        assert_eq!(
            exit(triage(
                Err(from_controller(http::StatusCode::FORBIDDEN)),
                &plain
            )),
            "controller proxy"
        );
        // owl's own 403 (an identity without rights) is answered.
        assert_eq!(
            exit(triage(Err(WhiskError::forbidden("guest/a")), &plain)),
            "answer 403"
        );
        assert_eq!(
            exit(triage(Err(WhiskError::auth_invalid()), &plain)),
            "answer 401"
        );
        // A missing action in the default package is reported after validation…
        assert_eq!(
            exit(triage(
                Err(from_controller(http::StatusCode::NOT_FOUND)),
                &plain
            )),
            "later 404"
        );
        assert_eq!(
            exit(triage(Err(WhiskError::not_found()), &plain)),
            "later 404"
        );
        // …a missing package (or action in one) at once.
        assert_eq!(
            exit(triage(Err(WhiskError::not_found()), &packaged)),
            "answer 404"
        );
        // owl's own failures (metadata source down) at once.
        assert_eq!(
            exit(triage(
                Err(WhiskError::service_unavailable(Origin::Internal, None)),
                &plain
            )),
            "answer 503"
        );
        // The controller's other failures, like its 404, after validation.
        assert_eq!(
            exit(triage(
                Err(from_controller(http::StatusCode::BAD_GATEWAY)),
                &plain
            )),
            "later 502"
        );
        // Sequences go on (owl composes them when it can run every component);
        // conductors are the controller's; the `conductor` annotation has no effect on
        // a sequence [OW PrimitiveActions.scala:94-95].
        let sequence = action(
            "guest",
            "s",
            json!({"exec": {"kind": "sequence", "components": ["/guest/a"]}, "annotations": [{"key": "conductor", "value": true}]}),
        );
        assert_eq!(exit(triage(Ok(sequence), &plain)), "found");
        let conductor = action(
            "guest",
            "c",
            json!({"annotations": [{"key": "conductor", "value": true}]}),
        );
        assert_eq!(exit(triage(Ok(conductor), &plain)), "controller proxy");
    }

    fn post(uri: &str, headers: &[(&str, &str)], body: &'static str) -> Request<Body> {
        let mut b = Request::builder().method(Method::POST).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::from(body)).unwrap()
    }

    async fn validated(
        req: Request<Body>,
        metadata: Result<Arc<ActionMetadata>, WhiskError>,
    ) -> Result<Validated, String> {
        let deployment = crate::whisk::Deployment {
            payload_max: 64,
            ..Default::default()
        };
        validate(req, metadata, deployment, Duration::from_secs(5))
            .await
            .map_err(|e| format!("{} {}", e.status.as_u16(), e.message))
    }

    /// Validation in the controller's order [OW core/controller/.../Actions.scala:279
    /// `entity(as[Option[JsObject]])` after the strict entity; reference §1.2]: size,
    /// query, content type, body, then a held-back lookup failure, then `final`
    /// parameters.
    #[tokio::test]
    async fn validate_checks_in_the_controllers_order() {
        let found = || {
            Ok(action(
                "guest",
                "a",
                json!({"parameters": [{"key": "fixed", "value": 1}], "annotations": [{"key": "final", "value": true}]}),
            ))
        };
        let missing = || Err(WhiskError::not_found());
        let uri = "/api/v1/namespaces/guest/actions/a";
        // 413 by declared length comes before a malformed query.
        let big = post(
            &format!("{uri}?blocking=maybe"),
            &[("content-length", "65")],
            "",
        );
        assert!(
            validated(big, found())
                .await
                .unwrap_err()
                .starts_with("413 "),
        );
        // A malformed query before a wrong content type.
        let r = post(
            &format!("{uri}?blocking=maybe"),
            &[("content-type", "text/plain")],
            "x",
        );
        assert!(
            validated(r, found())
                .await
                .unwrap_err()
                .starts_with("400 The query parameter 'blocking'")
        );
        // A wrong content type before a malformed body.
        let r = post(uri, &[("content-type", "text/plain")], "{nope");
        assert!(validated(r, found()).await.unwrap_err().starts_with("415 "));
        // A malformed body before the missing action.
        let r = post(uri, &[("content-type", "application/json")], "[1]");
        assert_eq!(
            validated(r, missing()).await.unwrap_err(),
            "400 The request content was malformed:\nJSON object expected"
        );
        // A valid request for a missing action: the held-back 404.
        let r = post(uri, &[("content-type", "application/json")], "{}");
        assert!(
            validated(r, missing())
                .await
                .unwrap_err()
                .starts_with("404 ")
        );
        // Overriding a final parameter.
        let r = post(
            uri,
            &[("content-type", "application/json")],
            r#"{"fixed":2}"#,
        );
        assert_eq!(
            validated(r, found()).await.unwrap_err(),
            format!("400 {}", messages::PARAMS_NOT_ALLOWED)
        );
        // A good one: options, merged parameters, the request kept for a replay.
        let r = post(
            &format!("{uri}?blocking=true&result=true"),
            &[("content-type", "application/json")],
            r#"{"name":"owl"}"#,
        );
        let v = validated(r, found()).await.unwrap();
        assert!(v.opts.blocking && v.opts.result);
        assert_eq!(v.params["name"], "owl");
        assert_eq!(v.params["fixed"], 1);
        assert_eq!(v.replay.body, Bytes::from_static(br#"{"name":"owl"}"#));
        assert_eq!(
            v.replay.to_request().uri().query(),
            Some("blocking=true&result=true")
        );
    }

    fn table(routes: &[(&str, f64)]) -> RoutingTable {
        RoutingTable::new(
            routes
                .iter()
                .enumerate()
                .map(|(i, (pattern, weight))| {
                    let pattern = ActionPattern::parse(pattern).unwrap();
                    Route {
                        index: i,
                        line: i + 1,
                        label: pattern.to_string().into(),
                        pattern,
                        function: FunctionTemplate::parse("f-{action}", false).unwrap(),
                        qualifier: None,
                        weight: *weight,
                        timeout: None,
                        fallback: Fallback::Controller,
                        payload: PayloadMode::OpenWhisk,
                        web: None,
                    }
                })
                .collect(),
        )
    }

    fn routed(r: Result<Arc<Route>, Exit>) -> String {
        match r {
            Ok(r) => format!("route {}", r.label),
            Err(Exit::Controller(p)) => format!("controller {}", p.label()),
            Err(Exit::Answer(e)) => format!("answer {}", e.status.as_u16()),
        }
    }

    /// The route of the action where it lives decides: a binding's own route does not
    /// run another namespace's action on its function.
    #[test]
    fn route_for_follows_the_action_where_it_lives() {
        let t = table(&[
            ("guest/*/*", 100.0),
            ("alice/pub/*", 100.0),
            ("bob/*/*", 0.0),
        ]);
        let guest_route = t.find(&path("guest/b/a")).unwrap().clone();
        let never = || -> f64 { panic!("no draw when the route is the requested one") };
        // Not a binding: the requested route, no second draw.
        let own = action("guest/b", "a", json!({}));
        assert_eq!(
            routed(route_for(&t, &guest_route, &own, &path("guest/b/a"), never)),
            "route guest/*/*"
        );
        // A binding of alice/pub: alice's route decides.
        let bound = action("alice/pub", "a", json!({}));
        assert_eq!(
            routed(route_for(
                &t,
                &guest_route,
                &bound,
                &path("guest/b/a"),
                || 50.0
            )),
            "route alice/pub/*"
        );
        // A binding of a package no route covers, or whose route draws the controller.
        let uncovered = action("carol/pub", "a", json!({}));
        assert_eq!(
            routed(route_for(
                &t,
                &guest_route,
                &uncovered,
                &path("guest/b/a"),
                || 50.0
            )),
            "controller proxy"
        );
        let weighed_out = action("bob/pub", "a", json!({}));
        assert_eq!(
            routed(route_for(
                &t,
                &guest_route,
                &weighed_out,
                &path("guest/b/a"),
                || 50.0
            )),
            "controller proxy"
        );
    }
}
