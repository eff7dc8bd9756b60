//! The stand-in runs sequences as OpenWhisk's controller does (SequenceActions.scala,
//! cited SA:line at `1fae641a2b30`; docs/design/openwhisk-sequences.md), with owl's own
//! vocabulary (`crate::whisk::sequence`), so that a sequence owl composes can be
//! compared with the controller's and a sequence owl proxies runs.
//!
//! A sequence invoked through `POST .../actions/{seq}` (or as a web action) gets an id
//! and runs in the background to the end, whatever the caller waits for (SA:108-148).
//! Its direct components are resolved through packages and bindings when it starts
//! (SA:282-284); each atomic one is an ordinary stand-in invocation (counted in
//! `invocations`) with `cause` = the sequence's id and `causedBy: "sequence"`; a nested
//! sequence runs the same way with the tree's atomic count (SA:359-371). The run stops
//! as `Accounting` says; then the sequence's record is stored, under the caller's
//! namespace, with `logs` = the direct components' ids and `duration` = the sum of
//! theirs. The stand-in has no throttles and nothing fails to be invoked, so
//! `Sequence failed.` comes only from a deprecated component kind (PAA:62-63). A
//! component name that does not read is treated as a missing component (OpenWhisk would
//! not read such a sequence at all; it can only be written into the stand-in).

use super::{
    Inner, Resolved, StandinAction, StandinIdentity, accepted, blocking_answer, error,
    is_deprecated, start,
};
use crate::error::WhiskError;
use crate::invoke::request::InvokeOptions;
use crate::whisk::sequence::{
    self, Accounting, Input, KIND, SequenceRecord, component_arguments, component_missing,
    component_name, component_timeout, placeholder_for, sequence_activation, stops, too_long,
};
use crate::whisk::{ActionMetadata, ActionPath, Activation, ActivationId, TransactionId};
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

impl StandinAction {
    /// A sequence of `components`, each `/ns/[pkg/]name` (the leading slash optional), as
    /// the controller stores it (Actions.scala:450-480): kind `sequence` with
    /// `exec.components`, the single parameter `_actions` listing them, the `exec`
    /// annotation, and default limits. Its components are not checked: define them
    /// (or leave them out, to have the sequence meet a missing component).
    pub fn sequence(path: &str, components: &[&str]) -> Self {
        let mut a = Self::new(path, super::Behaviour::Echo)
            .kind(KIND)
            .annotation("exec", json!(KIND));
        a.components = components.iter().map(|c| c.to_string()).collect();
        a.parameters = vec![("_actions".into(), a.components_json())];
        a
    }

    /// True when invoking it runs a sequence: kind `sequence` with components. An action
    /// given only the kind (`StandinAction::new(..).kind("sequence")`, which OpenWhisk
    /// cannot store: `No component specified for the sequence.`, SAPI:101) runs its
    /// behaviour as any action, as the stand-in always ran it.
    pub(super) fn runs_as_sequence(&self) -> bool {
        self.kind == KIND && !self.components.is_empty()
    }

    /// The `exec` of the metadata: `{"kind","binary"}`, or `{"kind":"sequence",
    /// "components"}` for a sequence (Exec.scala:267-268, 401-402).
    pub(super) fn exec_json(&self) -> Value {
        if self.kind == KIND {
            json!({"kind": KIND, "components": self.components_json()})
        } else {
            json!({"kind": self.kind, "binary": false})
        }
    }

    /// The components with a leading slash (`qualifiedNameWithLeadingSlash`); one that
    /// does not read as written.
    fn components_json(&self) -> Value {
        self.components
            .iter()
            .map(|c| {
                component_name(c)
                    .map(|p| p.qualified_name_with_leading_slash())
                    .unwrap_or_else(|| c.clone())
            })
            .collect()
    }
}

/// A topmost sequence invocation.
pub(super) struct Call {
    /// The invoking identity (the caller; a web action's owner).
    pub me: StandinIdentity,
    /// The sequence, where it really lives.
    pub sequence: StandinAction,
    /// Its package's (and binding's) parameters, for its metadata.
    pub package_params: Vec<(String, Value)>,
    /// `ns/binding` when invoked through a binding.
    pub binding: Option<String>,
    /// The request body, the first component's input (Actions.scala:251).
    pub payload: Option<Map<String, Value>>,
    /// When the request arrived, epoch ms (the transaction's start, for `waitTime`).
    pub received: i64,
}

/// `POST .../actions/{seq}`: the invoke-time entitlement on the direct components
/// (Actions.scala:256, 494-502), then the run, answered as any invocation (§3.5:
/// Actions.scala:288-316), the record returned with its logs.
pub(super) async fn invoke(
    inner: &Arc<Inner>,
    call: Call,
    opts: InvokeOptions,
    tid: &TransactionId,
) -> Response {
    if let Err(e) = entitle_components(inner, &call.me, &call.sequence) {
        return error(e, tid);
    }
    let (id, task) = spawn(inner, call);
    if !opts.blocking {
        return accepted(&id, tid);
    }
    match tokio::time::timeout(opts.wait, task).await {
        Ok(Ok(record)) => blocking_answer(inner, &record, opts.result, true, tid),
        _ => accepted(&id, tid),
    }
}

/// Starts a topmost sequence in the background: its id, and the task that ends with its
/// record (stored by then). Used by the web route too, which checks no component
/// entitlement (WebActions.scala:652).
pub(super) fn spawn(
    inner: &Arc<Inner>,
    call: Call,
) -> (ActivationId, tokio::task::JoinHandle<Activation>) {
    let id = ActivationId::generate();
    let run = Run {
        me: call.me,
        sequence: (call.sequence, call.package_params, call.binding),
        input: call.payload.map_or(Input::Nothing, Input::Object),
        cause: None,
        atomic_so_far: 0,
        id: id.clone(),
        received: call.received,
    };
    let task = run_sequence(inner.clone(), run);
    (id, tokio::spawn(async move { task.await.0 }))
}

/// One sequence run (`invokeSequence`, SA:92-149).
struct Run {
    me: StandinIdentity,
    sequence: Resolved,
    /// The input boxed by the placeholder: the body, or a nested sequence's input.
    input: Input,
    /// The enclosing sequence; `None` for the topmost.
    cause: Option<ActivationId>,
    atomic_so_far: usize,
    id: ActivationId,
    received: i64,
}

type Running = Pin<Box<dyn Future<Output = (Activation, Accounting)> + Send>>;

/// Runs a sequence to its end and stores its record: `invokeSequenceComponents`
/// (SA:265-323) with `invokeNextAction` (SA:338-401) and `makeSequenceActivation`
/// (SA:198-248). Returns the record and the account (the tree's atomic count, for a
/// parent).
fn run_sequence(inner: Arc<Inner>, run: Run) -> Running {
    Box::pin(async move {
        let start_ms = now_ms();
        let limit = inner.sequence_limit;
        let me = run.me;
        let (action, package_params, binding) = run.sequence;
        let meta = metadata(&action, &package_params);
        // SA:282-284: every direct component, resolved when the sequence starts.
        let components: Vec<Option<Resolved>> = action
            .components
            .iter()
            .map(|c| {
                component_name(c)
                    .and_then(|p| resolve_component(&inner, &p.resolved(&me.namespace)))
            })
            .collect();
        let mut account = Accounting::new(run.atomic_so_far);
        let mut previous = placeholder_for(run.input);
        for component in components {
            // SA:295, 311-313.
            if !account.may_run_another(limit) {
                previous = too_long();
                break;
            }
            // SA:305-310.
            let Some((c, c_params, c_binding)) = component else {
                previous = component_missing();
                break;
            };
            let input = Input::from_result(previous.result.as_ref());
            if c.runs_as_sequence() {
                // SA:359-371: blocking by definition, the count carried in and out.
                let nested = Run {
                    me: me.clone(),
                    sequence: (c, c_params, c_binding),
                    input,
                    cause: Some(run.id.clone()),
                    atomic_so_far: account.atomic(),
                    id: ActivationId::generate(),
                    received: now_ms(),
                };
                let (record, nested_account) = run_sequence(inner.clone(), nested).await;
                // The record as OpenWhisk has it, `duration` the account's (SA:247):
                // `Activation` derives its duration from `end - start`.
                let mut as_accounted = record;
                as_accounted.start = as_accounted.end - nested_account.duration();
                account.add_nested(&as_accounted, nested_account.atomic());
                previous = as_accounted.response;
            } else if is_deprecated(&c.kind) {
                // PAA:62-63, recovered at SA:393-399.
                previous = sequence::failed();
                break;
            } else {
                // SA:372-378: waited for up to the component's time limit + 1 minute.
                let c_meta = metadata(&c, &c_params);
                let args = component_arguments(&c_meta, input);
                let wait =
                    Duration::from_millis(c_meta.limits.timeout_ms) + Duration::from_secs(60);
                let (cid, task) = start(&inner, &me, c, c_binding, args, Some(run.id.clone()));
                match tokio::time::timeout(wait, task).await {
                    Ok(Ok(record)) => {
                        account.add_atomic(&record);
                        previous = record.response;
                    }
                    Ok(Err(_)) => {
                        previous = sequence::failed();
                        break;
                    }
                    // SA:386-390.
                    Err(_) => {
                        previous = component_timeout(&cid);
                        account.add_timed_out(cid);
                        break;
                    }
                }
            }
            // SA:472, 478-483 (defensive), then SA:468-471.
            if account.atomic() > limit {
                previous = too_long();
                break;
            }
            if stops(&previous) {
                break;
            }
        }
        let end_ms = now_ms().max(start_ms);
        let record = sequence_activation(
            SequenceRecord {
                namespace: &me.namespace,
                subject: &me.subject,
                sequence: &meta,
                id: run.id,
                start: start_ms,
                end: end_ms,
                cause: run.cause,
                wait_time_ms: start_ms.saturating_sub(run.received).max(0),
                binding,
            },
            &account,
            previous,
        );
        if let Ok(mut d) = inner.durations.lock() {
            d.insert(record.activation_id.to_string(), account.duration());
        }
        if let Ok(mut all) = inner.activations.lock() {
            all.push(record.clone());
        }
        (record, account)
    })
}

fn now_ms() -> i64 {
    crate::context::epoch_ms(SystemTime::now())
}

/// The action's metadata as the controller serves it, package parameters merged.
fn metadata(action: &StandinAction, package_params: &[(String, Value)]) -> ActionMetadata {
    ActionMetadata::from_json(&action.metadata_json(package_params))
        .expect("the stand-in's metadata reads")
}

/// `WhiskActionMetaData.resolveActionAndMergeParameters` (WhiskAction.scala:622-647):
/// the action `path` names, through a binding, with the package's parameters (a
/// binding's over its package's); no entitlement. `None` when the action, or a package
/// on its path, does not exist (`NoDocumentException`).
fn resolve_component(inner: &Inner, path: &ActionPath) -> Option<Resolved> {
    let Some(pkg_name) = &path.package else {
        let action = inner.actions.get(&path.to_path_string())?;
        return Some((action.clone(), Vec::new(), None));
    };
    let pkg_key = format!("{}/{pkg_name}", path.namespace);
    let pkg = inner.packages.get(&pkg_key)?;
    let mut params = Vec::new();
    let (target, binding) = match &pkg.binding {
        Some((tns, tpkg)) => {
            let bound = inner.packages.get(&format!("{tns}/{tpkg}"))?;
            params.extend(bound.parameters.iter().cloned());
            (
                ActionPath::new(tns, Some(tpkg), &path.action),
                Some(pkg_key),
            )
        }
        None => (path.clone(), None),
    };
    for (k, v) in &pkg.parameters {
        params.retain(|(pk, _)| pk != k);
        params.push((k.clone(), v.clone()));
    }
    let action = inner.actions.get(&target.to_path_string())?;
    Some((action.clone(), params, binding))
}

/// ACTIVATE on the direct components (Entitlement.scala:463-470, `noThrottle`): a
/// component in the caller's default package is implicitly allowed, one in another
/// namespace's default package is not (ActionCollection.scala:50); a component in a
/// package needs READ on the package (ActionCollection.scala:43-49,
/// PackageCollection.scala:84-143), whose refusal names the package. Refused default
/// package components are named together, sorted (Entitlement.scala:272-279). A
/// missing component in an allowed place passes: the run meets it (SA:305-310).
fn entitle_components(
    inner: &Inner,
    me: &StandinIdentity,
    seq: &StandinAction,
) -> Result<(), WhiskError> {
    let mut refused = BTreeSet::new();
    for c in seq.components.iter().filter_map(|c| component_name(c)) {
        let c = c.resolved(&me.namespace);
        match &c.package {
            None if c.namespace != me.namespace => {
                refused.insert(c.to_path_string());
            }
            None => {}
            Some(pkg) => {
                let owner = c.namespace == me.namespace;
                let key = format!("{}/{pkg}", c.namespace);
                if !package_readable(inner, me, &key, owner, 0)? {
                    return Err(WhiskError::forbidden(&key));
                }
            }
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        let names: Vec<String> = refused.into_iter().collect();
        Err(WhiskError::forbidden(&names.join(", ")))
    }
}

/// `checkPackageReadPermission` (PackageCollection.scala:84-143): a package is readable
/// when published or owned; a binding when owned and its package is readable; a
/// missing one is 404 for its owner, unreadable for anyone else.
pub(super) fn package_readable(
    inner: &Inner,
    me: &StandinIdentity,
    key: &str,
    owner: bool,
    depth: usize,
) -> Result<bool, WhiskError> {
    let Some(pkg) = inner.packages.get(key) else {
        return if owner {
            Err(WhiskError::not_found())
        } else {
            Ok(false)
        };
    };
    match &pkg.binding {
        None => Ok(pkg.publish || owner),
        Some(_) if !owner || depth > 8 => Ok(false),
        Some((tns, tpkg)) => package_readable(
            inner,
            me,
            &format!("{tns}/{tpkg}"),
            *tns == me.namespace,
            depth + 1,
        ),
    }
}

#[cfg(test)]
mod tests {
    //! Citations: SequenceActions.scala (SA:line), WskSequenceTests.scala (WST:line),
    //! SequenceApiTests.scala (SAPI:line), Actions.scala (ACT:line), OpenWhisk
    //! `1fae641a2b30`.

    use super::super::{Behaviour, GUEST_KEY, GUEST_UUID, Standin, StandinAction, StandinBuilder};
    use crate::whisk::StatusCode;
    use serde_json::{Value, json};

    const ALICE_UUID: &str = "7a9b2c3d-1e2f-4a5b-8c6d-0e1f2a3b4c5d";
    const ALICE_KEY: &str = "Zk9o3sW1qYx2V8bNc4LmT7rHe6Ud5JaPq0Gf3Ki9Ow2Xy8Bv1Nm4Ct7Rs6Ea5Dh";

    fn client() -> reqwest::Client {
        reqwest::Client::new()
    }

    async fn post(s: &Standin, path: &str, query: &str, body: Option<Value>) -> reqwest::Response {
        let mut r = client()
            .post(format!("{}/api/v1/namespaces/{path}?{query}", s.url()))
            .basic_auth(GUEST_UUID, Some(GUEST_KEY));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    async fn get(s: &Standin, path: &str) -> Value {
        client()
            .get(format!("{}/api/v1/namespaces/_/{path}", s.url()))
            .basic_auth(GUEST_UUID, Some(GUEST_KEY))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn annotation<'a>(record: &'a Value, key: &str) -> Option<&'a Value> {
        record["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| &a["value"])
    }

    fn keys(record: &Value) -> Vec<String> {
        record["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap().to_string())
            .collect()
    }

    fn ids(record: &Value) -> Vec<String> {
        record["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    }

    /// Checks each component record as WST:598-633 does (cause, causedBy, waitTime) and
    /// the sequence's duration (the sum) and memory (the max); returns the components.
    async fn check_components(s: &Standin, seq: &Value) -> Vec<Value> {
        let mut sum = 0;
        let mut max_memory = None;
        let mut out = Vec::new();
        for id in ids(seq) {
            let c = get(s, &format!("activations/{id}")).await;
            assert_eq!(c["cause"], seq["activationId"], "{c}");
            assert_eq!(annotation(&c, "causedBy"), Some(&json!("sequence")));
            assert!(annotation(&c, "waitTime").is_some());
            sum += c["duration"].as_i64().unwrap();
            if let Some(m) = annotation(&c, "limits").and_then(|l| l["memory"].as_i64()) {
                max_memory = max_memory.max(Some(m));
            }
            out.push(c);
        }
        assert_eq!(seq["duration"].as_i64().unwrap(), sum);
        assert_eq!(
            annotation(seq, "limits").map(|l| l["memory"].as_i64().unwrap()),
            max_memory
        );
        out
    }

    fn memory(mut a: StandinAction, mb: u64) -> StandinAction {
        a.limits["memory"] = mb.into();
        a
    }

    /// WST:52-107: the results chain, a body with `error` does not stop the sequence,
    /// and the record is the caller's with the component ids as logs (SA:198-248);
    /// ACT:293-316: 200 with the whole record, `x-openwhisk-activation-id`.
    #[tokio::test]
    async fn all_components_succeed() {
        let s = StandinBuilder::with_guest()
            .package("guest", "pkg", false, vec![("p".into(), json!("package"))])
            .action(StandinAction::new("guest/a", Behaviour::Greet).param("name", json!("param")))
            .action(memory(
                StandinAction::new(
                    "guest/pkg/b",
                    Behaviour::Sleep(std::time::Duration::from_millis(15)),
                )
                .param("b", json!(2)),
                512,
            ))
            .action(StandinAction::sequence(
                "guest/s",
                &["/guest/a", "guest/pkg/b"],
            ))
            .spawn()
            .await
            .unwrap();
        let metadata = get(&s, "actions/s").await;
        assert_eq!(
            metadata["exec"],
            json!({"kind": "sequence", "components": ["/guest/a", "/guest/pkg/b"]})
        );
        assert_eq!(
            metadata["parameters"],
            json!([{"key": "_actions", "value": ["/guest/a", "/guest/pkg/b"]}])
        );

        let r = post(
            &s,
            "_/actions/s",
            "blocking=true",
            Some(json!({"error": "not yet", "name": "owl"})),
        )
        .await;
        assert_eq!(r.status(), 200);
        let id = r.headers()["x-openwhisk-activation-id"]
            .to_str()
            .unwrap()
            .to_string();
        let record: Value = r.json().await.unwrap();
        assert_eq!(record["activationId"], id.as_str());
        assert_eq!(
            record["response"],
            json!({"result": {"p": "package", "b": 2, "greeting": "Hello, owl!"}, "size": 46, "status": "success", "success": true})
        );
        assert_eq!(record["name"], "s");
        assert!(record.get("cause").is_none());
        assert_eq!(
            keys(&record),
            ["topmost", "path", "kind", "waitTime", "limits"]
        );
        assert_eq!(annotation(&record, "topmost"), Some(&json!(true)));
        assert_eq!(annotation(&record, "path"), Some(&json!("guest/s")));
        assert_eq!(
            annotation(&record, "limits"),
            Some(&json!({"timeout": 60000, "memory": 512, "logs": 10, "concurrency": 1}))
        );
        assert_eq!(s.invocations(), 2);
        let components = check_components(&s, &record).await;
        assert_eq!(components[0]["name"], "a");
        assert_eq!(
            keys(&components[0]),
            ["limits", "path", "kind", "timeout", "causedBy", "waitTime"]
        );
        assert_eq!(
            components[0]["response"]["result"],
            json!({"greeting": "Hello, owl!"})
        );
        assert_eq!(
            annotation(&components[1], "path"),
            Some(&json!("guest/pkg/b"))
        );
        // The stored record is the one answered.
        assert_eq!(get(&s, &format!("activations/{id}")).await, record);
        let listed = get(&s, "activations").await;
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 3);
        // The summary carries the sequence's own duration (WhiskActivation.scala:85).
        let summary = listed
            .iter()
            .find(|a| a["activationId"] == id.as_str())
            .unwrap();
        assert_eq!(summary["duration"], record["duration"]);
        assert_eq!(summary["statusCode"], 0);
        assert!(record["duration"].as_i64().unwrap() >= 15, "{record}");
        assert_eq!(
            get(&s, &format!("activations/{id}/logs")).await,
            json!({"logs": ids(&record)})
        );

        // result=true: the result only.
        let r = post(&s, "guest/actions/s", "blocking=true&result=true", None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"p": "package", "b": 2, "greeting": "Hello, param!"})
        );
        assert_eq!(s.invocations(), 4);
    }

    /// WST:354-383, SA:464-492: a component's error stops the sequence with that
    /// response; the next component does not run; 502 (ACT:303-310).
    #[tokio::test]
    async fn a_failing_component_stops_the_sequence() {
        let s = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/a", Behaviour::Echo))
            .action(StandinAction::new(
                "guest/fail",
                Behaviour::Fail("on purpose".into()),
            ))
            .action(StandinAction::new("guest/never", Behaviour::Echo))
            .action(StandinAction::sequence(
                "guest/s",
                &["/guest/a", "/guest/fail", "/guest/never"],
            ))
            .spawn()
            .await
            .unwrap();
        let r = post(&s, "_/actions/s", "blocking=true", None).await;
        assert_eq!(r.status(), 502);
        let record: Value = r.json().await.unwrap();
        assert_eq!(
            record["response"],
            json!({"result": {"error": "on purpose"}, "size": 22, "status": "application error", "success": false})
        );
        assert_eq!(ids(&record).len(), 2);
        assert_eq!(s.invocations(), 2);
        let components = check_components(&s, &record).await;
        assert_eq!(components[1]["response"], record["response"]);
        // result=true: the error result, still 502.
        let r = post(&s, "_/actions/s", "blocking=true&result=true", None).await;
        assert_eq!(r.status(), 502);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "on purpose"})
        );
    }

    /// WST:110-148, SA:359-371, PA:130-138: `s -> a, x, c` with `x -> b`: the outer logs
    /// are not flattened, `x` is caused by `s` with `topmost: false` and `causedBy`, `b`
    /// by `x`; WST:544-567: an array result flows bare and is answered bare.
    #[tokio::test]
    async fn nested_sequences_and_arrays() {
        let s = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/a", Behaviour::WebScript))
            .action(StandinAction::new("guest/b", Behaviour::Echo).param("ignored", json!(1)))
            .action(StandinAction::new("guest/c", Behaviour::Echo))
            .action(StandinAction::sequence("guest/x", &["/guest/b"]))
            .action(StandinAction::sequence(
                "guest/s",
                &["/guest/a", "/guest/x", "/guest/c"],
            ))
            .spawn()
            .await
            .unwrap();
        let r = post(
            &s,
            "_/actions/s",
            "blocking=true",
            Some(json!({"respond": "[3, 1, 2]"})),
        )
        .await;
        assert_eq!(r.status(), 200);
        let id = r.headers()["x-openwhisk-activation-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(r.json::<Value>().await.unwrap(), json!([3, 1, 2]));
        assert_eq!(s.invocations(), 3);
        let record = get(&s, &format!("activations/{id}")).await;
        assert_eq!(ids(&record).len(), 3);
        let components = check_components(&s, &record).await;
        let x = &components[1];
        assert_eq!(x["name"], "x");
        assert_eq!(
            keys(x),
            ["topmost", "path", "kind", "causedBy", "waitTime", "limits"]
        );
        assert_eq!(annotation(x, "topmost"), Some(&json!(false)));
        assert_eq!(x["response"]["result"], json!([3, 1, 2]));
        let inner = check_components(&s, x).await;
        assert_eq!(inner.len(), 1);
        assert_eq!(inner[0]["name"], "b");
        assert_eq!(
            record["duration"],
            components
                .iter()
                .map(|c| c["duration"].as_i64().unwrap())
                .sum::<i64>()
        );
    }

    /// WST:160-215 with a limit of 3: `s -> a, x, a` with `x -> 3 × a`: `x` runs one `a`
    /// and stops too long; `s` stops with `x`'s response and logs `[a, x]`.
    #[tokio::test]
    async fn too_long_at_run_time() {
        let s = StandinBuilder::with_guest()
            .sequence_limit(3)
            .action(StandinAction::new("guest/a", Behaviour::Echo))
            .action(StandinAction::sequence(
                "guest/x",
                &["/guest/a", "/guest/a", "/guest/a"],
            ))
            .action(StandinAction::sequence(
                "guest/s",
                &["/guest/a", "/guest/x", "/guest/a"],
            ))
            .spawn()
            .await
            .unwrap();
        let r = post(&s, "_/actions/s", "blocking=true", None).await;
        assert_eq!(r.status(), 502);
        let record: Value = r.json().await.unwrap();
        let too_long = json!({"result": {"error": "Too many actions in the sequence."}, "status": "application error", "success": false});
        assert_eq!(record["response"], too_long);
        assert_eq!(ids(&record).len(), 2);
        let components = check_components(&s, &record).await;
        assert_eq!(components[1]["response"], too_long);
        assert_eq!(ids(&components[1]).len(), 2);
        assert_eq!(s.invocations(), 3);
    }

    /// The default limit, 50 (SA:411): 51 direct components run 50.
    #[tokio::test]
    async fn the_default_limit_is_fifty() {
        let components = vec!["/guest/a"; 51];
        let s = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/a", Behaviour::Echo))
            .action(StandinAction::sequence("guest/s", &components))
            .spawn()
            .await
            .unwrap();
        let r = post(&s, "_/actions/s", "blocking=true&result=true", None).await;
        assert_eq!(r.status(), 502);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "Too many actions in the sequence."})
        );
        assert_eq!(s.invocations(), 50);
    }

    /// SAPI:54-81: the components before a missing one run; 502 with `Sequence component
    /// does not exist.` and their ids only. A missing package counts as missing.
    #[tokio::test]
    async fn missing_component() {
        let s = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/a", Behaviour::Echo))
            .action(StandinAction::sequence(
                "guest/s",
                &["/guest/a", "/guest/gone", "/guest/a"],
            ))
            .action(StandinAction::sequence(
                "guest/t",
                &["/guest/a", "/guest/nopkg/b"],
            ))
            .spawn()
            .await
            .unwrap();
        let missing = json!({"result": {"error": "Sequence component does not exist."}, "status": "application error", "success": false});
        let r = post(&s, "_/actions/s", "blocking=true", None).await;
        assert_eq!(r.status(), 502);
        let record: Value = r.json().await.unwrap();
        assert_eq!(record["response"], missing);
        assert_eq!(ids(&record).len(), 1);
        check_components(&s, &record).await;
        assert_eq!(s.invocations(), 1);
        // A missing package of the caller's own is 404 at entitlement (PC:119-120).
        let r = post(&s, "_/actions/t", "blocking=true", None).await;
        assert_eq!(r.status(), 404);
        assert_eq!(s.invocations(), 1);
    }

    /// SA:139-142, ACT:288-292: non-blocking is 202 `{"activationId"}` with the header,
    /// and the sequence still runs to its record.
    #[tokio::test]
    async fn non_blocking() {
        let s = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/a", Behaviour::Echo))
            .action(StandinAction::sequence(
                "guest/s",
                &["/guest/a", "/guest/a"],
            ))
            .spawn()
            .await
            .unwrap();
        let r = post(&s, "_/actions/s", "", Some(json!({"k": 1}))).await;
        assert_eq!(r.status(), 202);
        let id = r.headers()["x-openwhisk-activation-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"activationId": id})
        );
        let mut record = Value::Null;
        for _ in 0..100 {
            if let Some(found) = s
                .activations()
                .into_iter()
                .find(|a| a.activation_id.as_str() == id)
            {
                record = get(&s, &format!("activations/{}", found.activation_id)).await;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(record["response"]["result"], json!({"k": 1}));
        assert_eq!(ids(&record).len(), 2);
        assert_eq!(s.invocations(), 2);
    }

    /// WST:302-348: the `binding` annotation on the sequence invoked through a binding and
    /// on a component named through one; the binding's parameters reach the component.
    /// The records are the caller's, whoever owns the sequence (SA:231-233).
    #[tokio::test]
    async fn bindings_and_shared_packages() {
        let s = StandinBuilder::with_guest()
            .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
            .package(
                "alice",
                "shared",
                true,
                vec![("p".into(), json!("package"))],
            )
            .binding(
                "guest",
                "bound",
                "alice",
                "shared",
                vec![("p".into(), json!("binding"))],
            )
            .action(StandinAction::new("alice/shared/a", Behaviour::Echo))
            .action(StandinAction::sequence(
                "alice/shared/s",
                &["/guest/bound/a"],
            ))
            .spawn()
            .await
            .unwrap();
        let r = post(&s, "_/actions/bound/s", "blocking=true", None).await;
        assert_eq!(r.status(), 200);
        let record: Value = r.json().await.unwrap();
        assert_eq!(record["namespace"], "guest");
        assert_eq!(annotation(&record, "binding"), Some(&json!("guest/bound")));
        assert_eq!(annotation(&record, "path"), Some(&json!("alice/shared/s")));
        assert_eq!(record["response"]["result"], json!({"p": "binding"}));
        let components = check_components(&s, &record).await;
        assert_eq!(
            annotation(&components[0], "binding"),
            Some(&json!("guest/bound"))
        );
        assert_eq!(
            annotation(&components[0], "path"),
            Some(&json!("alice/shared/a"))
        );
    }

    /// ACT:256, ENT:272-279, AC:50: a component in another namespace's default package is
    /// refused at invoke, named with the others, sorted; nothing runs.
    #[tokio::test]
    async fn components_are_entitled_at_invoke() {
        let s = StandinBuilder::with_guest()
            .identity("alice", "alice", ALICE_UUID, ALICE_KEY)
            .package("alice", "private", false, vec![])
            .action(StandinAction::new("guest/a", Behaviour::Echo))
            .action(StandinAction::new("alice/z", Behaviour::Echo))
            .action(StandinAction::new("alice/b", Behaviour::Echo))
            .action(StandinAction::new("alice/private/c", Behaviour::Echo))
            .action(StandinAction::sequence(
                "guest/s",
                &["/guest/a", "/alice/z", "/alice/b"],
            ))
            .action(StandinAction::sequence(
                "guest/t",
                &["/guest/a", "/alice/private/c"],
            ))
            .spawn()
            .await
            .unwrap();
        let r = post(&s, "_/actions/s", "blocking=true", None).await;
        assert_eq!(r.status(), 403);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"],
            "The supplied authentication is not authorized to access 'alice/b, alice/z'."
        );
        let r = post(&s, "_/actions/t", "blocking=true", None).await;
        assert_eq!(r.status(), 403);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"],
            "The supplied authentication is not authorized to access 'alice/private'."
        );
        assert_eq!(s.invocations(), 0);
    }

    /// A deprecated component kind fails the sequence with a whisk error, unlogged
    /// (PAA:62-63, SA:393-399): 500.
    #[tokio::test]
    async fn a_deprecated_component_fails_the_sequence() {
        let s = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/a", Behaviour::Echo))
            .action(StandinAction::new("guest/old", Behaviour::Echo).kind("nodejs:10"))
            .action(StandinAction::sequence(
                "guest/s",
                &["/guest/a", "/guest/old"],
            ))
            .spawn()
            .await
            .unwrap();
        let r = post(&s, "_/actions/s", "blocking=true", None).await;
        assert_eq!(r.status(), 500);
        let record: Value = r.json().await.unwrap();
        assert_eq!(
            record["response"],
            json!({"result": {"error": "Sequence failed."}, "status": "whisk internal error", "success": false})
        );
        assert_eq!(ids(&record).len(), 1);
        assert_eq!(s.invocations(), 1);
    }

    /// An action given only the kind `sequence` (which OpenWhisk cannot store) runs its
    /// behaviour, as before sequences ran.
    #[tokio::test]
    async fn a_kind_only_sequence_runs_its_behaviour() {
        let s = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/seq", Behaviour::Greet).kind("sequence"))
            .spawn()
            .await
            .unwrap();
        let r = post(&s, "_/actions/seq", "blocking=true&result=true", None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"greeting": "Hello, stranger!"})
        );
        assert_eq!(s.invocations(), 1);
    }

    /// A sequence exported as a web action runs as the owner with the web arguments
    /// (WebActions.scala:649-652); the sequence's result is transcoded.
    #[tokio::test]
    async fn web_sequences() {
        let s = StandinBuilder::with_guest()
            .action(StandinAction::new("guest/a", Behaviour::Echo).param("a", json!(1)))
            .action(StandinAction::new(
                "guest/fail",
                Behaviour::Fail("teapot".into()),
            ))
            .action(StandinAction::sequence("guest/s", &["/guest/a", "/guest/a"]).web_export())
            .action(StandinAction::sequence("guest/f", &["/guest/a", "/guest/fail"]).web_export())
            .spawn()
            .await
            .unwrap();
        let r = client()
            .get(format!("{}/api/v1/web/guest/default/s.json?q=1", s.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id = r.headers()["x-openwhisk-activation-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["a"], 1);
        assert_eq!(body["q"], "1");
        assert_eq!(body["__ow_method"], "get");
        assert!(body.get("_actions").is_none());
        let record = get(&s, &format!("activations/{id}")).await;
        assert_eq!(record["subject"], "guest");
        assert_eq!(ids(&record).len(), 2);
        check_components(&s, &record).await;
        let r = client()
            .get(format!("{}/api/v1/web/guest/default/f.text", s.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "teapot");
        assert_eq!(s.invocations(), 4);
        let last = s.activations().pop().unwrap();
        assert_eq!(last.response.status_code, StatusCode::ApplicationError);
    }
}
