//! Sequences composed by owl (docs/sequences.md): when a route covers the sequence and
//! every atomic component of its tree — nested sequences included — is mapped, owl
//! runs the components on Lambda one after the other, exactly as the controller's
//! `SequenceActions` does (`core/controller/src/main/scala/org/apache/openwhisk/core/
//! controller/actions/SequenceActions.scala`, cited SA:line; the rules are collected
//! in docs/design/openwhisk-sequences.md), and nothing of it reaches Kafka.
//!
//! The tree is resolved before anything runs. A component owl cannot run (not mapped,
//! a weight that sends it to the controller, a conductor, a deprecated runtime, a
//! lookup that failed for another reason than "does not exist") sends the **whole**
//! sequence to the controller: a component run by the controller on owl's behalf could
//! not carry OpenWhisk's `cause` links. A component that does not exist is not a reason
//! to leave: OpenWhisk fails the sequence when the run reaches it, after the earlier
//! components ran (SA:305-310), and so does owl.
//!
//! The sequence is admitted once (its namespace's throttles count it once, SA's
//! components are never throttled) and holds its slot for the whole run.

use super::{
    Admitted, Exit, Invocation, Job, Outcome, Parts, ReplayableRequest, Validated, deliver, draw,
    refusal, request,
};
use crate::auth::Identity;
use crate::context::epoch_ms;
use crate::error::WhiskError;
use crate::gateway::{Gateway, Snapshot};
use crate::lambda::LambdaError;
use crate::policy::{Policy, Route};
use crate::telemetry::timing::{Path, Phase};
use crate::telemetry::traces;
use crate::whisk::sequence::{self, Accounting, Input, SequenceRecord};
use crate::whisk::{
    ActionMetadata, ActionPath, Activation, ActivationId, ActivationResponse, TransactionId,
};
use axum::response::Response;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Most components (atomic and nested, over the whole tree) owl resolves for one
/// sequence, as a multiple of the sequence limit; a larger tree is the controller's
/// (it fails at the limit anyway).
const NODES_PER_LIMIT: usize = 4;

/// Composes the sequence `valid` names, or sends it whole to the controller when owl
/// cannot run every component (the throttle slot given back: the controller counts
/// it).
pub(super) async fn compose(inv: Admitted, valid: Validated) -> Response {
    // Only the body reaches the first component (SA:287-289); it was validated.
    let body = request::parse_body(&valid.replay.body).unwrap_or_default();
    match prepare(inv, valid.metadata, valid.replay, body, true).await {
        Ok(job) => deliver(job, valid.opts).await,
        Err(proxied) => proxied,
    }
}

/// The job running the sequence `metadata` with `body` as the first component's input
/// (an invocation's body, or a web call's arguments), its tree resolved; or, when owl
/// cannot run every component, the controller's answer to `replay` (the slot given
/// back: the controller counts it).
///
/// `entitle_components`: check the caller's right to each direct component's package
/// first, as the REST invoke route does (ACT:256); the web route does not.
pub(super) async fn prepare(
    inv: Admitted,
    metadata: Arc<ActionMetadata>,
    replay: ReplayableRequest,
    body: Map<String, Value>,
    entitle_components: bool,
) -> Result<SequenceJob, Response> {
    let mut budget = NODES_PER_LIMIT * (inv.rt.policy.openwhisk.sequence_limit as usize).max(1);
    let resolved = inv
        .ctx
        .timings
        .time(
            Phase::Metadata,
            traces::start("metadata").instrument(resolve(
                &inv.rt,
                &inv.identity,
                &inv.ctx.tid,
                &metadata.components,
                &mut budget,
            )),
        )
        .await;
    let children = match resolved {
        Ok(c) if !c.is_empty() => c,
        other => {
            let why = match other {
                Err(Declined(why)) => why,
                _ => "the sequence has no components owl can read",
            };
            tracing::debug!(tid = %inv.ctx.tid, sequence = %metadata.path, why, "sequence sent to the controller");
            let request = replay.to_request();
            return Err(inv.leave(Exit::Controller(Path::Proxy), request).await);
        }
    };
    if entitle_components
        && let Some(refusal) = refused_before_running(&inv, &metadata.components, &children).await
    {
        let request = replay.to_request();
        return Err(inv.leave(Exit::Answer(refusal), request).await);
    }
    let binding = (metadata.path != inv.path).then(|| inv.path.entity_namespace());
    let Admitted {
        gw,
        rt,
        ctx,
        identity,
        slot,
        ..
    } = inv;
    let limit = rt.policy.openwhisk.sequence_limit as usize;
    Ok(SequenceJob {
        parts: Parts {
            gw,
            rt,
            ctx,
            identity,
            replay: Arc::new(replay),
        },
        metadata,
        binding,
        children,
        body,
        id: ActivationId::generate(),
        slot: Some(slot),
        limit,
    })
}

/// OpenWhisk's refusal of the whole invocation, before any component runs, for a
/// direct component that owl found missing: the controller checks the caller's right
/// to activate each direct component first (ACT:256 `entitleReferencedEntitiesMetaData`),
/// and for an action in a package of the caller's own namespace that reads the package
/// (ActionCollection.implicitRights → PackageCollection.checkPackageReadPermission):
/// a missing package is 404, a document that is not a package 409, a binding to itself
/// 422. A missing action in a readable package is the run's failure instead (SA:305-310).
/// Asked only for missing components, so the common path does no extra lookup.
/// Each package is asked about once, however many components name it.
async fn refused_before_running(
    inv: &Admitted,
    components: &[ActionPath],
    nodes: &[Node],
) -> Option<WhiskError> {
    let mut asked = std::collections::HashSet::new();
    for (path, node) in components.iter().zip(nodes) {
        let path = path.resolved(&inv.identity.namespace);
        if !matches!(node, Node::Missing)
            || !asked.insert((path.namespace.clone(), path.package.clone()))
        {
            continue;
        }
        if let Some(e) =
            package_refusal(&inv.rt.directory, &inv.identity, &path, &inv.ctx.tid).await
        {
            return Some(e);
        }
    }
    None
}

/// The pre-run refusal (404, 409, 422) the package of `path`, a direct component the
/// caller `identity` could not find, brings about: only a package of the caller's own
/// namespace is read for it (PackageCollection.checkPackageReadPermission; another
/// namespace's unreadable package is a 403 the controller gives, owl leaving it there).
async fn package_refusal(
    directory: &crate::metadata::Directory,
    identity: &Identity,
    path: &ActionPath,
    tid: &TransactionId,
) -> Option<WhiskError> {
    if path.package.is_none() || path.namespace != identity.namespace {
        return None;
    }
    directory
        .package(identity, path, tid)
        .await
        .err()
        .filter(|e| matches!(e.status.as_u16(), 404 | 409 | 422))
}

/// A component, resolved when the sequence starts.
pub(super) enum Node {
    /// An action owl runs on Lambda.
    Atomic(Box<Atomic>),
    /// A nested sequence, its own components resolved.
    Sequence(Box<Nested>),
    /// Did not exist when the sequence started: the run ends there.
    Missing,
}

pub(super) struct Atomic {
    metadata: Arc<ActionMetadata>,
    /// `ns/binding` when the component is named through a binding.
    binding: Option<String>,
    route: Arc<Route>,
    function: String,
}

pub(super) struct Nested {
    metadata: Arc<ActionMetadata>,
    binding: Option<String>,
    children: Vec<Node>,
}

/// Why owl leaves a sequence to the controller.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Declined(pub(super) &'static str);

/// Resolves `components` (and, depth first, those of nested sequences) as `identity`
/// sees them; `Declined` when any atomic component is not one owl runs.
pub(super) async fn resolve(
    rt: &Snapshot,
    identity: &Identity,
    tid: &TransactionId,
    components: &[ActionPath],
    budget: &mut usize,
) -> Result<Vec<Node>, Declined> {
    let mut nodes = Vec::with_capacity(components.len());
    for path in components {
        if *budget == 0 {
            return Err(Declined("the sequence tree is larger than owl resolves"));
        }
        *budget -= 1;
        // Stored components may name the default namespace: the caller's (SA:282, 403-408).
        let path = &path.resolved(&identity.namespace);
        let looked_up = rt.directory.action(identity, path, tid).await;
        let metadata = match looked_up {
            Ok(m) => m,
            Err(e) if e.status == http::StatusCode::NOT_FOUND => {
                nodes.push(Node::Missing);
                continue;
            }
            Err(_) => return Err(Declined("a component's lookup failed or was refused")),
        };
        let binding = (metadata.path != *path).then(|| path.entity_namespace());
        if metadata.kind == "sequence" {
            if metadata.components.is_empty() {
                return Err(Declined("a nested sequence has no components owl can read"));
            }
            // Boxed: the recursion's future.
            let children =
                Box::pin(resolve(rt, identity, tid, &metadata.components, budget)).await?;
            nodes.push(Node::Sequence(Box::new(Nested {
                metadata,
                binding,
                children,
            })));
            continue;
        }
        let deprecated = rt.deprecated_kinds.contains(
            &rt.controller,
            &metadata.kind,
            rt.policy.controller.timeout.min(Duration::from_secs(2)),
        );
        let (route, function) = placement(&rt.policy, &metadata, deprecated)?;
        if !route.takes(draw()) {
            return Err(Declined("a component's route weight chose the controller"));
        }
        let route = route.clone();
        nodes.push(Node::Atomic(Box::new(Atomic {
            metadata,
            binding,
            route,
            function,
        })));
    }
    Ok(nodes)
}

/// Where the atomic component `metadata` runs when owl composes its sequence, the
/// route's weight aside: its route and function, or why the whole sequence is left to
/// the controller. `deprecated`: the controller's manifest marks its kind deprecated.
fn placement<'p>(
    policy: &'p Policy,
    metadata: &ActionMetadata,
    deprecated: bool,
) -> Result<(&'p Arc<Route>, String), Declined> {
    if metadata.annotation_is_truthy("conductor", false) {
        return Err(Declined("a component is a conductor action"));
    }
    if deprecated {
        return Err(Declined("a component's runtime is deprecated"));
    }
    let Some(route) = policy.routes.find(&metadata.path) else {
        return Err(Declined("a component is not mapped to Lambda"));
    };
    let Ok(function) = route.function.render(&metadata.path) else {
        return Err(Declined("a component's function cannot be rendered"));
    };
    Ok((route, function))
}

/// `owl policy explain` for a sequence: its component tree as `identity` sees it,
/// each component with where it would run, and the verdict. The same lookups and the
/// same [`placement`] as [`resolve`]; what a request decides at run time (a route's
/// weight, the controller's list of deprecated runtimes) is named, not drawn.
pub(crate) async fn explain(
    policy: &Policy,
    directory: &crate::metadata::Directory,
    identity: &Identity,
    sequence: &ActionMetadata,
    covered: bool,
) -> String {
    use std::fmt::Write;
    let tid = TransactionId::generate();
    let limit = policy.openwhisk.sequence_limit as usize;
    let mut budget = NODES_PER_LIMIT * limit.max(1);
    let mut lines = Vec::new();
    let mut declined: Option<String> = None;
    // OpenWhisk's refusal of the invocation before any component runs.
    let mut refused: Option<String> = None;
    let mut atomic = 0usize;
    let mut partial = false;
    // Depth first, as the run goes: (components, next index, numbering prefix).
    let mut stack = vec![(sequence.components.clone(), 0usize, String::new())];
    while let Some((components, next, prefix)) = stack.last_mut() {
        let Some(path) = components
            .get(*next)
            .map(|p| p.resolved(&identity.namespace))
        else {
            stack.pop();
            continue;
        };
        *next += 1;
        let number = format!("{prefix}{next}.");
        let indent = "  ".repeat(stack.len() + 1);
        if budget == 0 {
            partial = true;
            declined
                .get_or_insert_with(|| "the sequence tree is larger than owl resolves".to_string());
            break;
        }
        budget -= 1;
        let text = match directory.action(identity, &path, &tid).await {
            Err(e) if e.status == http::StatusCode::NOT_FOUND => {
                atomic += 1;
                // A direct component's own package is checked before the run (ACT:256).
                let direct = stack.len() == 1;
                let pre_run = match direct {
                    true => package_refusal(directory, identity, &path, &tid).await,
                    false => None,
                };
                match pre_run {
                    Some(e) => {
                        refused.get_or_insert_with(|| {
                            format!("{} \"{}\"", e.status.as_u16(), e.message)
                        });
                        format!(
                            "{path}: its package cannot be read ({}); OpenWhisk refuses the invocation before any component runs",
                            e.message
                        )
                    }
                    None => format!(
                        "{path}: does not exist; the run fails when it reaches it, as in OpenWhisk"
                    ),
                }
            }
            Err(e) => {
                declined.get_or_insert_with(|| {
                    format!("a component's lookup failed or was refused ({path})")
                });
                format!(
                    "{path}: cannot be read ({} {})",
                    e.status.as_u16(),
                    e.message
                )
            }
            Ok(m) if m.kind == sequence::KIND => {
                if m.components.is_empty() {
                    declined.get_or_insert_with(|| {
                        format!("a nested sequence has no components owl can read ({path})")
                    });
                }
                let n = m.components.len();
                lines.push(format!("{indent}{number} {path}: a sequence of {n}"));
                stack.push((m.components.clone(), 0, number));
                continue;
            }
            Ok(m) => {
                atomic += 1;
                match placement(policy, &m, false) {
                    Ok((route, function)) => {
                        let mut t = format!(
                            "{path}: Lambda function {function} (route #{}, line {})",
                            route.index + 1,
                            route.line
                        );
                        if route.weight < 100.0 {
                            let _ = write!(
                                t,
                                "; weight {}%: otherwise the whole sequence goes to the controller",
                                route.weight
                            );
                        }
                        t
                    }
                    Err(Declined(why)) => {
                        declined.get_or_insert_with(|| format!("{why} ({path})"));
                        format!("{path}: not run by owl: {why}")
                    }
                }
            }
        };
        lines.push(format!("{indent}{number} {text}"));
    }
    let mut out = String::new();
    let verdict = match (&declined, covered) {
        _ if refused.is_some() => format!(
            "refused with {} before any component runs, by owl and the controller alike",
            refused.as_deref().unwrap_or_default()
        ),
        (Some(why), _) => format!("the controller runs the whole sequence: {why}"),
        (None, false) => {
            "the controller runs the whole sequence: no route covers the sequence itself"
                .to_string()
        }
        (None, true) => {
            "owl composes it on Lambda; nothing of it reaches the controller's invoke path"
                .to_string()
        }
    };
    let _ = writeln!(out, "  sequence:  {verdict}");
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    if partial {
        let _ = writeln!(out, "    … (the rest is not resolved)");
    }
    if declined.is_none() && atomic > limit {
        let _ = writeln!(
            out,
            "  It runs {atomic} actions, more than the limit of {limit}: the run fails with \"{}\"",
            crate::whisk::messages::SEQUENCE_IS_TOO_LONG
        );
    }
    let _ = writeln!(
        out,
        "  At run time a component of a runtime the controller deprecates also sends the sequence to the controller."
    );
    out
}

/// A sequence owl composes: the topmost sequence's run, delivered like one
/// invocation (blocking, non-blocking, the wait's 202).
pub(super) struct SequenceJob {
    pub(super) parts: Parts,
    pub(super) metadata: Arc<ActionMetadata>,
    pub(super) binding: Option<String>,
    pub(super) children: Vec<Node>,
    /// The request's body: what the first component receives (SA:287-289).
    pub(super) body: Map<String, Value>,
    pub(super) id: ActivationId,
    /// The namespace's slot, held for the whole run (the sequence is admitted once).
    pub(super) slot: Option<crate::limits::Slot>,
    pub(super) limit: usize,
}

/// How a run of components ended.
enum Ended {
    /// The sequence's response.
    Response(ActivationResponse),
    /// Lambda refused the first component before running it and its route falls
    /// back: nothing ran, so the whole sequence may go to the controller.
    NothingRan(LambdaError),
}

impl SequenceJob {
    fn record(
        &self,
        start: SystemTime,
        wait_time_ms: i64,
        account: &Accounting,
        response: ActivationResponse,
    ) -> Activation {
        let identity = &self.parts.identity;
        let start_ms = epoch_ms(start);
        sequence::sequence_activation(
            SequenceRecord {
                namespace: &identity.namespace,
                subject: &identity.subject,
                sequence: &self.metadata,
                id: self.id.clone(),
                start: start_ms,
                end: epoch_ms(SystemTime::now()).max(start_ms),
                cause: None,
                wait_time_ms,
                binding: self.binding.clone(),
            },
            account,
            response,
        )
    }

    async fn run_sequence(mut self) -> Outcome {
        let start = SystemTime::now();
        // From the request's arrival to the sequence's start (SA:245 `waitTime`).
        let wait_ms = self.parts.ctx.received.elapsed().as_millis() as i64;
        let mut account = Accounting::new(0);
        let input = Input::Object(std::mem::take(&mut self.body));
        let ended = run_components(
            &self.parts,
            &self.children,
            input,
            &self.id,
            &mut account,
            self.limit,
            true,
        )
        .await;
        let gw = self.parts.gw.clone();
        let response = match ended {
            Ended::Response(r) => r,
            Ended::NothingRan(error) => {
                let skeleton = Box::new(Invocation::skeleton(&self));
                let Parts {
                    rt, ctx, replay, ..
                } = self.parts;
                return Outcome::Fallback(Box::new(super::FallbackJob {
                    slot: self.slot,
                    recorder: gw.recorder().clone(),
                    rt,
                    replay,
                    ctx,
                    error,
                    skeleton,
                    // Its components run one after the other, each within its own
                    // limit: the sequence's own `timeout` does not bound it.
                    limit_ms: longest_run_ms(&self.children),
                }));
            }
        };
        let activation = self.record(start, wait_ms, &account, response);
        gw.metrics()
            .openwhisk
            .record(&activation, &self.parts.identity.namespace);
        Outcome::Done {
            activation: Box::new(activation),
            recorder: gw.recorder().clone(),
        }
    }
}

impl Invocation for SequenceJob {
    fn gateway(&self) -> &Arc<Gateway> {
        &self.parts.gw
    }
    fn context(&self) -> &crate::context::RequestContext {
        &self.parts.ctx
    }
    fn id(&self) -> &ActivationId {
        &self.id
    }
    fn skeleton(&self) -> Activation {
        let mut a = self.record(
            SystemTime::now(),
            self.parts.ctx.received.elapsed().as_millis() as i64,
            &Accounting::new(0),
            ActivationResponse::whisk_error(crate::activation::recorder::RESTART_MESSAGE),
        );
        a.end = 0;
        a
    }
    fn run(self) -> impl std::future::Future<Output = Outcome> + Send {
        self.run_sequence()
    }
}

/// The longest the components of `nodes` can run one after the other: the sum of their
/// time limits, through nested sequences.
fn longest_run_ms(nodes: &[Node]) -> u64 {
    nodes
        .iter()
        .map(|n| match n {
            Node::Atomic(a) => a.metadata.limits.timeout_ms,
            Node::Sequence(n) => longest_run_ms(&n.children),
            Node::Missing => 0,
        })
        .fold(0, u64::saturating_add)
}

/// A component's share of the request: a child transaction of its own, started now
/// (SA:344 `TransactionId.childOf`), so the component's `waitTime` is its own wait, not
/// its predecessors' run, and its `__OW_TRANSACTION_ID` is its own id.
fn child_of(parts: &Parts) -> Parts {
    let mut child = parts.clone();
    child.ctx.tid = TransactionId::generate();
    child.ctx.received = std::time::Instant::now();
    child
}

/// Runs `nodes` in order (SA:292-322): each gets the previous result (the first one
/// `input`), the first response with an `error` ends the run with that response, the
/// limit on atomic actions counts across the whole tree, and a nested sequence is an
/// activation of its own whose logs are its direct components.
async fn run_components(
    parts: &Parts,
    nodes: &[Node],
    input: Input,
    cause: &ActivationId,
    account: &mut Accounting,
    limit: usize,
    may_fall_back: bool,
) -> Ended {
    let recorder = parts.gw.recorder().clone();
    let mut previous = sequence::placeholder_for(input);
    for node in nodes {
        // (a) SA:295, 311-313.
        if !account.may_run_another(limit) {
            return Ended::Response(sequence::too_long());
        }
        let input = Input::from_result(previous.result.as_ref());
        match node {
            // (b) SA:305-310.
            Node::Missing => return Ended::Response(sequence::component_missing()),
            Node::Atomic(a) => {
                let args = sequence::component_arguments(&a.metadata, input);
                let job = Job::new(
                    child_of(parts),
                    a.metadata.clone(),
                    a.binding.clone(),
                    a.route.clone(),
                    a.function.clone(),
                    args,
                    None,
                    Some(cause.clone()),
                );
                // A message too large for OpenWhisk's bus fails the sequence (SA:393-399).
                let Ok(job) = job else {
                    return Ended::Response(sequence::failed());
                };
                match job.run().await.journaled().await {
                    Outcome::Recorded(act)
                    | Outcome::Done {
                        activation: act, ..
                    } => {
                        account.add_atomic(&act);
                        previous = act.response.clone();
                    }
                    Outcome::Fallback(f) if may_fall_back && account.logs().is_empty() => {
                        return Ended::NothingRan(f.error);
                    }
                    // Refused, or a fallback after something ran: the invocation failed
                    // (SA:393-399). Its refusal is not a record the sequence lists.
                    Outcome::Fallback(f) => {
                        tracing::warn!(tid = %parts.ctx.tid, reason = %f.error, "a sequence's component was not run by Lambda after earlier components ran; the sequence fails");
                        return Ended::Response(sequence::failed());
                    }
                    Outcome::Refused { error, .. } => {
                        tracing::warn!(tid = %parts.ctx.tid, reason = %refusal(&error).message, "a sequence's component was refused by Lambda; the sequence fails");
                        return Ended::Response(sequence::failed());
                    }
                }
            }
            Node::Sequence(n) => {
                let id = ActivationId::generate();
                let start = SystemTime::now();
                let mut inner = Accounting::new(account.atomic());
                // Boxed: the recursion's future.
                let ended = Box::pin(run_components(
                    parts,
                    &n.children,
                    input,
                    &id,
                    &mut inner,
                    limit,
                    false,
                ))
                .await;
                let response = match ended {
                    Ended::Response(r) => r,
                    Ended::NothingRan(_) => sequence::failed(),
                };
                let start_ms = epoch_ms(start);
                let record = sequence::sequence_activation(
                    SequenceRecord {
                        namespace: &parts.identity.namespace,
                        subject: &parts.identity.subject,
                        sequence: &n.metadata,
                        id,
                        start: start_ms,
                        end: epoch_ms(SystemTime::now()).max(start_ms),
                        cause: Some(cause.clone()),
                        wait_time_ms: 0,
                        binding: n.binding.clone(),
                    },
                    &inner,
                    response,
                );
                parts
                    .gw
                    .metrics()
                    .openwhisk
                    .record(&record, &parts.identity.namespace);
                // Journaled before its id can reach a client in the parent's logs.
                if let Err(e) = recorder
                    .commit(crate::activation::store::Record::new(record.clone()))
                    .await
                {
                    tracing::error!(activation_id = %record.activation_id, error = %e, "cannot journal a nested sequence's record");
                }
                account.add_nested(&record, inner.atomic());
                previous = record.response;
            }
        }
        // (c), (d): SA:464-492.
        if account.atomic() > limit {
            return Ended::Response(sequence::too_long());
        }
        if sequence::stops(&previous) {
            return Ended::Response(previous);
        }
    }
    Ended::Response(previous)
}
