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
pub mod response;

use crate::auth::{Credentials, Identity};
use crate::context::{RequestContext, epoch_ms};
use crate::controller::proxy;
use crate::error::WhiskError;
use crate::gateway::{Gateway, Runtime};
use crate::lambda::{self, InvokeRequest, LambdaError, Ran};
use crate::policy::{Fallback, Route};
use crate::whisk::activation::Annotation;
use crate::whisk::names::validate_segment;
use crate::whisk::{
    ActionMetadata, ActionPath, Activation, ActivationId, ActivationResponse, messages, params,
};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri};
use rand::Rng;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// How long owl waits beyond an action's time limit before it stops waiting for
/// Lambda (Lambda enforces the function's own timeout; this is the safety net).
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// How long a request body may take to arrive.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a non-blocking invocation waits for a background slot before 503.
const BACKGROUND_SLOT_WAIT: Duration = Duration::from_secs(5);

/// The original request, kept so it can be sent to the controller unchanged when the
/// route falls back.
#[derive(Debug, Clone)]
pub struct ReplayableRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl ReplayableRequest {
    fn to_request(&self) -> Request<Body> {
        let mut req = Request::new(Body::from(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Handles `POST /api/v1/namespaces/{ns}/actions/{[pkg/]action}`: decides between
/// Lambda and the controller, and answers.
pub async fn handle(
    gw: Arc<Gateway>,
    rt: Arc<Runtime>,
    req: Request<Body>,
    ctx: RequestContext,
    (ns, pkg, action): (String, Option<String>, String),
) -> Response {
    let routes = &rt.policy.routes;
    // Nothing can match: the controller answers, with no identity work here.
    if !routes.may_cover_action_name(&action) {
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    // Names the controller rejects get its exact 400 from the controller.
    let names_valid = (ns == "_" || validate_segment(&ns).is_ok())
        && pkg.as_deref().is_none_or(|p| validate_segment(p).is_ok())
        && validate_segment(&action).is_ok();
    if !names_valid {
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    let requested = ActionPath::new(&ns, pkg.as_deref(), &action);
    let needs_identity = requested.has_default_namespace()
        || routes.find(&requested).is_some()
        || (requested.package.is_some() && routes.may_cover_packaged(&action));
    if !needs_identity {
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    // No request reaches Lambda unauthenticated.
    let creds = match Credentials::from_headers(req.headers()) {
        Ok(c) => c,
        Err(e) => return e.render(&ctx.tid),
    };
    let identity = match rt.directory.identify(&creds, &ctx.tid).await {
        Ok(i) => i,
        Err(e) => return e.render(&ctx.tid),
    };
    let path = requested.resolved(&identity.namespace);
    let mut known_metadata = None;
    let route = match routes.find(&path) {
        Some(r) => Some(r),
        None if path.package.is_some() && routes.may_cover_packaged(&path.action) => {
            // Perhaps a package binding whose bound package is routed.
            match rt.directory.action(&creds, &path, &ctx.tid).await {
                Ok(m) if m.path != path => {
                    let r = routes.find(&m.path);
                    known_metadata = Some(m);
                    r
                }
                _ => None,
            }
        }
        None => None,
    };
    let Some(route) = route else {
        return proxy::forward(&rt.controller, req, &ctx).await;
    };
    if !route.takes(rand::rng().random_range(0.0..100.0)) {
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    let route = route.clone();
    let caller = Caller {
        creds,
        identity: (*identity).clone(),
    };
    lambda_path(gw, rt, route, req, ctx, caller, path, known_metadata).await
}

struct Caller {
    creds: Credentials,
    identity: Identity,
}

#[allow(clippy::too_many_arguments)]
async fn lambda_path(
    gw: Arc<Gateway>,
    rt: Arc<Runtime>,
    route: Route,
    req: Request<Body>,
    ctx: RequestContext,
    caller: Caller,
    path: ActionPath,
    known_metadata: Option<Arc<ActionMetadata>>,
) -> Response {
    let tid = &ctx.tid;
    let metadata = match known_metadata {
        Some(m) => Ok(m),
        None => rt.directory.action(&caller.creds, &path, tid).await,
    };
    // A missing action in the default package is reported after the request has been
    // validated, as the controller does; every other lookup failure comes first.
    let metadata = match metadata {
        Err(e) if !(e.status == http::StatusCode::NOT_FOUND && path.package.is_none()) => {
            return e.render(tid);
        }
        other => other,
    };
    if let Ok(m) = &metadata
        && m.kind == "sequence"
    {
        // Sequences are compositions the controller runs.
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    let (parts, body) = req.into_parts();
    if let Err(e) = request::check_declared_length(&parts.headers, request::MAX_PAYLOAD) {
        return e.render(tid);
    }
    let opts = match request::parse_query(parts.uri.query()) {
        Ok(o) => o,
        Err(e) => return e.render(tid),
    };
    if let Err(e) = request::check_content_type(&parts.headers) {
        return e.render(tid);
    }
    let bytes = match request::read_body(body, request::MAX_PAYLOAD, BODY_READ_TIMEOUT).await {
        Ok(b) => b,
        Err(e) => return e.render(tid),
    };
    let body_params = match request::parse_body(&bytes) {
        Ok(p) => p,
        Err(e) => return e.render(tid),
    };
    let metadata = match metadata {
        Ok(m) => m,
        Err(e) => return e.render(tid),
    };
    let merged = match params::merge(&metadata, body_params) {
        Ok(m) => m,
        Err(_) => return WhiskError::bad_request(messages::PARAMS_NOT_ALLOWED).render(tid),
    };
    let replay = ReplayableRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body: bytes,
    };
    let function = match route.function.render(&metadata.path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(%tid, route_line = route.line, error = %e, "route's function cannot be rendered for this action; sending it to the controller");
            return proxy::forward(&rt.controller, replay.to_request(), &ctx).await;
        }
    };

    let activation_id = ActivationId::generate();
    let limit_ms = route
        .timeout
        .map_or(metadata.limits.timeout_ms, |d| d.as_millis() as u64);
    let api_key = metadata.provides_api_key().then(|| caller.creds.api_key());
    let env = envelope::ActivationContext {
        namespace: &caller.identity.namespace,
        action_name: metadata.path.qualified_name_with_leading_slash(),
        action_version: &metadata.version,
        activation_id: activation_id.as_str(),
        transaction_id: tid.as_str(),
        deadline_ms: epoch_ms(SystemTime::now()) + limit_ms as i64,
        api_key,
        api_host: rt.policy.controller.api_host.as_deref(),
    };
    let payload = envelope::build(route.payload, merged, &env);
    if payload.len() > lambda::MAX_REQUEST_BYTES {
        return WhiskError::entity_too_large().render(tid);
    }
    let binding = (metadata.path != path).then(|| path.entity_namespace());
    let job = Job {
        rt: rt.clone(),
        request: InvokeRequest {
            function,
            qualifier: route.qualifier.clone(),
            payload,
        },
        limit_ms,
        activation_id: activation_id.clone(),
        identity: caller.identity,
        metadata,
        binding,
        route_fallback: route.fallback,
        replay: Arc::new(replay),
        ctx: ctx.clone(),
    };

    if !opts.blocking {
        let permit =
            match tokio::time::timeout(BACKGROUND_SLOT_WAIT, gw.background.clone().acquire_owned())
                .await
            {
                Ok(Ok(p)) => p,
                _ => {
                    tracing::warn!(%tid, "no background slot free for a non-blocking invocation");
                    return WhiskError::service_unavailable(
                        crate::error::Origin::Internal,
                        Some(1),
                    )
                    .render(tid);
                }
            };
        tokio::spawn(async move {
            let outcome = job.run().await;
            outcome.finish_in_background().await;
            drop(permit);
        });
        return response::accepted(&activation_id, tid);
    }

    let (tx, mut rx) = oneshot::channel::<Delivered>();
    tokio::spawn(async move {
        let outcome = job.run().await;
        if let Err(undelivered) = tx.send(Delivered(Some(outcome))) {
            drop(undelivered); // Delivered's Drop finishes it in the background.
        }
    });
    let delivered = match tokio::time::timeout(opts.wait, &mut rx).await {
        Ok(Ok(d)) => Some(d),
        Ok(Err(_)) => None,
        Err(_) => {
            // Close first so a concurrent send either lands here or stays with the task.
            rx.close();
            rx.try_recv().ok()
        }
    };
    let Some(mut delivered) = delivered else {
        return response::accepted(&activation_id, tid);
    };
    let Some(outcome) = delivered.0.take() else {
        return WhiskError::internal().render(tid);
    };
    match outcome {
        Outcome::Done { activation, .. } => response::completed(&activation, opts.result, tid),
        Outcome::Fallback {
            rt,
            replay,
            ctx,
            error,
        } => {
            tracing::info!(tid = %ctx.tid, reason = %error, "Lambda unavailable; invocation sent to the controller");
            proxy::forward(&rt.controller, replay.to_request(), &ctx).await
        }
        Outcome::Refused { error, ctx, .. } => refusal(&error).render(&ctx.tid),
    }
}

/// The error a client gets when Lambda refused and the route has no fallback.
fn refusal(error: &LambdaError) -> WhiskError {
    match error {
        LambdaError::Throttled { retry_after, .. } => {
            WhiskError::too_many_requests(messages::TOO_MANY_REQUESTS, *retry_after)
        }
        LambdaError::TooLarge => WhiskError::entity_too_large(),
        _ => WhiskError::service_unavailable(crate::error::Origin::Lambda, None),
    }
}

/// One invocation on Lambda, with everything needed to finish it anywhere.
struct Job {
    rt: Arc<Runtime>,
    request: InvokeRequest,
    limit_ms: u64,
    activation_id: ActivationId,
    identity: Identity,
    metadata: Arc<ActionMetadata>,
    binding: Option<String>,
    route_fallback: Fallback,
    replay: Arc<ReplayableRequest>,
    ctx: RequestContext,
}

/// How an invocation ended.
enum Outcome {
    /// It ran (or its run failed in a way OpenWhisk records): the activation.
    Done { activation: Box<Activation> },
    /// Lambda did not run it and the route falls back to the controller.
    Fallback {
        rt: Arc<Runtime>,
        replay: Arc<ReplayableRequest>,
        ctx: RequestContext,
        error: LambdaError,
    },
    /// Lambda did not run it and the route has no fallback.
    Refused {
        activation: Box<Activation>,
        ctx: RequestContext,
        error: LambdaError,
    },
}

impl Outcome {
    /// Completes an outcome nobody is waiting for.
    async fn finish_in_background(self) {
        match self {
            Outcome::Done { .. } => {}
            Outcome::Fallback {
                rt,
                replay,
                ctx,
                error,
            } => {
                tracing::info!(tid = %ctx.tid, reason = %error, "Lambda unavailable; invocation sent to the controller in the background");
                let resp = proxy::forward(&rt.controller, replay.to_request(), &ctx).await;
                let controller_id = resp
                    .headers()
                    .get(response::ACTIVATION_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                tracing::info!(tid = %ctx.tid, status = resp.status().as_u16(), controller_activation_id = %controller_id, "controller took the fallback invocation");
            }
            Outcome::Refused { activation, .. } => {
                tracing::warn!(activation_id = %activation.activation_id, "invocation refused by Lambda with no fallback");
            }
        }
    }
}

/// An outcome in transit to the waiting request; if the request is gone before it
/// takes the outcome, dropping this finishes the outcome in the background.
struct Delivered(Option<Outcome>);

impl Drop for Delivered {
    fn drop(&mut self) {
        if let Some(outcome) = self.0.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(outcome.finish_in_background());
        }
    }
}

impl Job {
    async fn run(self) -> Outcome {
        let call_start_wall = SystemTime::now();
        let call_start = Instant::now();
        let wait_ms = call_start.duration_since(self.ctx.received).as_millis() as u64;
        let guard = Duration::from_millis(self.limit_ms) + TIMEOUT_GRACE;
        let result = tokio::time::timeout(guard, self.rt.lambda.invoke(self.request.clone())).await;
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
                let r = lambda::interpret(&reply, self.limit_ms, now);
                (r.response, r.timed_out, r.tail.lines, r.tail.init_ms)
            }
            Ok(Err(error)) if error.ran() == Ran::No => {
                tracing::warn!(tid = %self.ctx.tid, function = %self.request.function, kind = error.kind(), %error, "Lambda did not run the invocation");
                if self.route_fallback == Fallback::Controller
                    && !matches!(error, LambdaError::TooLarge)
                {
                    return Outcome::Fallback {
                        rt: self.rt,
                        replay: self.replay,
                        ctx: self.ctx,
                        error,
                    };
                }
                let activation = self.activation(
                    call_start_wall,
                    end_wall,
                    ActivationResponse::whisk_error(format!(
                        "The action could not be run: {}.",
                        refusal(&error).message.trim_end_matches('.')
                    )),
                    false,
                    Vec::new(),
                    None,
                    wait_ms,
                );
                return Outcome::Refused {
                    activation: Box::new(activation),
                    ctx: self.ctx,
                    error,
                };
            }
            Ok(Err(error)) => {
                tracing::error!(tid = %self.ctx.tid, function = %self.request.function, %error, "Lambda invocation failed after it may have run");
                (
                    ActivationResponse::whisk_error(
                        "The action did not produce a valid response: the connection to AWS Lambda failed while it ran.",
                    ),
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
        tracing::info!(
            tid = %self.ctx.tid,
            activation_id = %activation.activation_id,
            action = %self.metadata.path,
            function = %self.request.function,
            status = activation.response.status_code.status(),
            duration_ms = activation.end - activation.start,
            wait_ms,
            "activation completed on Lambda"
        );
        Outcome::Done {
            activation: Box::new(activation),
        }
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
        let mut limits = self.metadata.limits.json.clone();
        if let Some(obj) = limits.as_object_mut() {
            obj.insert("timeout".into(), self.limit_ms.into());
        }
        let mut annotations = vec![
            Annotation {
                key: "limits".into(),
                value: limits,
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
        Activation {
            namespace: self.identity.namespace.clone(),
            name: self.metadata.path.action.clone(),
            subject: self.identity.subject.clone(),
            activation_id: self.activation_id.clone(),
            start: epoch_ms(start),
            end: epoch_ms(end).max(epoch_ms(start)),
            cause: None,
            response,
            logs,
            version: self.metadata.version.clone(),
            publish: false,
            annotations,
        }
    }
}
