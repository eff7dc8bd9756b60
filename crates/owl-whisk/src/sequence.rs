//! Sequences as OpenWhisk's controller composes them: what each component receives,
//! when the run stops, the running account, and the sequence's own activation record.
//! Pure vocabulary, no I/O: whoever drives a sequence (owl's composer, the stand-in
//! controller) runs the components and feeds their records in here.
//!
//! Read rule by rule from OpenWhisk at `1fae641a2b30`, cited as `SequenceActions.scala:LINE`
//! (`core/controller/src/main/scala/org/apache/openwhisk/core/controller/actions/`);
//! docs/design/openwhisk-sequences.md collects the rules. A driver does, per sequence
//! (SequenceActions.scala:92-149, 265-401):
//!
//! ```text
//! id = new id; start = now; account = Accounting::new(atomic_so_far)
//! previous = placeholder_for(input)
//! for each component c (its metadata resolved when the sequence starts):
//!     if !account.may_run_another(limit) { previous = too_long(); break }
//!     c missing                          { previous = component_missing(); break }
//!     input = Input::from_result(previous.result)
//!     c is a sequence: run it with input, cause = id, its own account starting at
//!                      Accounting::new(account.atomic());
//!                      account.add_nested(&record, its_account.atomic())
//!     c is atomic:     run it with component_arguments(c, input), cause = id;
//!                      account.add_atomic(&record)
//!                      (not retrieved in time: account.add_timed_out(cid),
//!                       previous = component_timeout(&cid); break;
//!                       any other failure: previous = failed(); break)
//!     previous = the record's response
//!     if account.atomic() > limit { previous = too_long(); break }   (defensive)
//!     if stops(&previous) { break }
//! record = sequence_activation(SequenceRecord { .., end: now }, &account, previous)
//! ```

use crate::action::ActionMetadata;
use crate::activation::{Activation, ActivationId, ActivationResponse, Annotation, StatusCode};
use crate::messages;
use crate::names::{ActionPath, validate_segment};
use serde_json::{Map, Value, json};

/// The longest sequence, in atomic actions across the whole tree, OpenWhisk's
/// deployments allow (`limits.actions.sequence.maxLength`, `actionSequenceLimit`:
/// ansible/group_vars/all:83, standalone.conf:57; read at SequenceActions.scala:411).
pub const DEFAULT_LIMIT: usize = 50;

/// The exec kind of a sequence (`Exec.SEQUENCE`, Exec.scala:243).
pub const KIND: &str = "sequence";

/// The default intra-container concurrency (`whisk.concurrency-limit.std`,
/// application.conf:509): what the `limits` annotation of a sequence record shows,
/// whatever the sequence's own (SequenceActions.scala:211 builds `ActionLimits` with
/// the default `IntraConcurrencyLimit()`).
const DEFAULT_CONCURRENCY: u64 = 1;

/// The default log limit in MB (`whisk.log-limit.std`), for a sequence whose limits
/// lack `logs`.
const DEFAULT_LOGS_MB: u64 = 10;

/// One component name as stored in `exec.components` (`"/ns/[pkg/]name"`), read as
/// `EntityPath(name).toFullyQualifiedEntityName` does (FullyQualifiedEntityName.scala:80,
/// EntityPath.scala:107-112, 141-145): empty segments (so any leading slash) are
/// dropped, every segment must be an entity name, and there must be a namespace and a
/// name. `_` stays as written: it is resolved against the caller when the sequence runs
/// (SequenceActions.scala:403-408, [`ActionPath::resolved`]). `None` for anything else,
/// including a path of four or more segments, which OpenWhisk would store but no
/// action can live at.
pub fn component_name(s: &str) -> Option<ActionPath> {
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| validate_segment(p).is_err()) {
        return None;
    }
    match parts.as_slice() {
        [ns, name] => Some(ActionPath::new(ns, None, name)),
        [ns, pkg, name] => Some(ActionPath::new(ns, Some(pkg), name)),
        _ => None,
    }
}

/// `exec.components` of a sequence (Exec.scala:300-306): an array of names, each read
/// by [`component_name`]. `None` when it is missing, not an array, or any name does not
/// read: such a sequence cannot be composed (OpenWhisk itself refuses to read it).
pub fn parse_components(components: &Value) -> Option<Vec<ActionPath>> {
    components
        .as_array()?
        .iter()
        .map(|c| component_name(c.as_str()?))
        .collect()
}

/// What a component receives: the previous response's result when it is an object or
/// an array, otherwise nothing (SequenceActions.scala:350-355).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An object result (or the request body, for the first component).
    Object(Map<String, Value>),
    /// An array result, passed bare (PrimitiveActions.scala:162).
    Array(Vec<Value>),
    /// No result, or one that is neither object nor array.
    Nothing,
}

impl Input {
    /// The input made from the previous response's `result` (SequenceActions.scala:351-355).
    pub fn from_result(prev: Option<&Value>) -> Self {
        match prev {
            Some(Value::Object(o)) => Self::Object(o.clone()),
            Some(Value::Array(a)) => Self::Array(a.clone()),
            _ => Self::Nothing,
        }
    }

    /// The payload a nested sequence starts with (its `inputPayload`,
    /// SequenceActions.scala:363-371, boxed by [`placeholder`]).
    pub fn into_payload(self) -> Option<Value> {
        match self {
            Self::Object(o) => Some(Value::Object(o)),
            Self::Array(a) => Some(Value::Array(a)),
            Self::Nothing => None,
        }
    }
}

/// The run arguments of an atomic component (`invokeSimpleAction`,
/// PrimitiveActions.scala:159-164): an object input overlays the component's
/// parameters (package < binding < action, as `meta.parameters` already holds them;
/// input keys win, Parameter.scala:105-108); an array is passed alone, without the
/// parameters; nothing gives the parameters. Init parameters are never run arguments
/// (the invoker partitions them out, ContainerProxy.scala:1091-1100), as in
/// [`crate::params::merge`]. No `final` check: inside a sequence OpenWhisk enforces
/// none (Actions.scala:262-264 checks only the invoked sequence's own parameters).
pub fn component_arguments(meta: &ActionMetadata, input: Input) -> Value {
    let overlay = match input {
        Input::Array(a) => return Value::Array(a),
        Input::Object(o) => o,
        Input::Nothing => Map::new(),
    };
    let mut args = Map::with_capacity(meta.parameters.len() + overlay.len());
    for p in &meta.parameters {
        args.insert(p.key.clone(), p.value.clone());
    }
    args.extend(overlay);
    for p in meta.parameters.iter().filter(|p| p.init) {
        args.remove(&p.key);
    }
    Value::Object(args)
}

/// The response the first component's input is read from: the payload boxed as an
/// application error (`ActivationResponse.payloadPlaceholder`, ActivationResult.scala:114;
/// SequenceActions.scala:287-289): for the topmost sequence the request body
/// ([`Input::Nothing`] without one), for a nested one its input. It is never checked
/// for an `error` key; it is the sequence's response only when there is no component.
pub fn placeholder_for(input: Input) -> ActivationResponse {
    ActivationResponse {
        status_code: StatusCode::ApplicationError,
        result: input.into_payload(),
        size: None,
    }
}

/// True when a component's response stops the sequence: its result is an object with an
/// `error` key, whatever its status code (SequenceActions.scala:464-471).
pub fn stops(r: &ActivationResponse) -> bool {
    matches!(&r.result, Some(Value::Object(o)) if o.contains_key("error"))
}

/// The application error ending a sequence that would run more than the limit
/// (SequenceActions.scala:311-313, 478-483).
pub fn too_long() -> ActivationResponse {
    ActivationResponse::error(
        StatusCode::ApplicationError,
        messages::SEQUENCE_IS_TOO_LONG.into(),
        None,
    )
}

/// The application error ending a sequence whose next component (or a package on its
/// path) does not exist (SequenceActions.scala:305-310).
pub fn component_missing() -> ActivationResponse {
    ActivationResponse::error(
        StatusCode::ApplicationError,
        messages::SEQUENCE_COMPONENT_NOT_FOUND.into(),
        None,
    )
}

/// The whisk error ending a sequence whose component could not be invoked
/// (SequenceActions.scala:393-399).
pub fn failed() -> ActivationResponse {
    ActivationResponse::whisk_error(messages::SEQUENCE_ACTIVATION_FAILURE)
}

/// The whisk error ending a sequence whose component's activation `id` was not
/// retrieved in time (SequenceActions.scala:386-390).
pub fn component_timeout(id: &ActivationId) -> ActivationResponse {
    ActivationResponse::whisk_error(messages::sequence_retrieve_activation_timeout(id.as_str()))
}

/// The running account of one sequence (`SequenceAccounting`,
/// SequenceActions.scala:428-536, without the previous response, which the driver
/// keeps): the atomic actions run so far across the whole tree, the ids of the direct
/// components, the sum of their durations and their largest memory limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounting {
    atomic: usize,
    logs: Vec<ActivationId>,
    duration: i64,
    max_memory: Option<i64>,
}

impl Accounting {
    /// The account of a sequence starting after `atomic_so_far` atomic actions of the
    /// enclosing tree, 0 for the topmost (SequenceActions.scala:287-289, 371, 533-535).
    pub fn new(atomic_so_far: usize) -> Self {
        Self {
            atomic: atomic_so_far,
            ..Self::default()
        }
    }

    /// Atomic actions run so far across the tree (`atomicActionCnt`).
    pub fn atomic(&self) -> usize {
        self.atomic
    }

    /// True while another component may start: fewer than `limit` atomic actions ran
    /// (SequenceActions.scala:295). A nested sequence is checked the same way before it
    /// starts.
    pub fn may_run_another(&self, limit: usize) -> bool {
        self.atomic < limit
    }

    /// The ids of the direct components, in order; a nested sequence contributes its
    /// own id only (`finalLogs`, SequenceActions.scala:436, 521).
    pub fn logs(&self) -> &[ActivationId] {
        &self.logs
    }

    /// The sum of the logged components' durations in ms (SequenceActions.scala:527):
    /// the sequence record's `duration`, not its `end - start`.
    pub fn duration(&self) -> i64 {
        self.duration
    }

    /// The largest numeric `limits.memory` annotation of the logged components
    /// (SequenceActions.scala:448-453, 504-506).
    pub fn max_memory(&self) -> Option<i64> {
        self.max_memory
    }

    /// An atomic component's record came back (SequenceActions.scala:375-377, 383-384,
    /// 439-454, 509-530): one more atomic action, its id logged, its duration
    /// (`end - start`, as the invoker sets it, ContainerProxy.scala:1072) and memory
    /// limit accounted. Whether it stops the run is [`stops`] of its response.
    pub fn add_atomic(&mut self, activation: &Activation) {
        self.log(activation, activation.duration(), self.atomic + 1);
    }

    /// A nested sequence finished with the record `nested`, leaving the tree's atomic
    /// count at `atomic_after` (its account's [`atomic`](Self::atomic),
    /// SequenceActions.scala:173, 371, 383-384): its id logged, its duration and memory
    /// limit accounted. OpenWhisk adds the nested record's own `duration`, the sum of its
    /// components' (SequenceActions.scala:247, 445); [`Activation::duration`] is
    /// `end - start` until `Activation` carries that field, so until then the nested
    /// record must be given with `end - start` equal to its account's duration.
    pub fn add_nested(&mut self, nested: &Activation, atomic_after: usize) {
        self.log(nested, nested.duration(), atomic_after);
    }

    /// A component whose activation was not retrieved in time: logged, nothing else
    /// (`fail(…, Some(id))`, SequenceActions.scala:386-390, 457-461).
    pub fn add_timed_out(&mut self, id: ActivationId) {
        self.logs.push(id);
    }

    fn log(&mut self, activation: &Activation, duration: Option<i64>, atomic_after: usize) {
        self.atomic = atomic_after;
        self.logs.push(activation.activation_id.clone());
        if let Some(d) = duration {
            self.duration = self.duration.saturating_add(d);
        }
        let memory = activation
            .annotation("limits")
            .and_then(|l| l.get("memory"))
            .and_then(memory_mb);
        self.max_memory = self.max_memory.max(memory);
    }
}

/// `memory.toInt` of a `JsNumber` (SequenceActions.scala:450-451): the integral part.
fn memory_mb(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    n.as_i64()
        .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
        .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
}

/// Who ran a sequence, and when: the parts of its record that are not in its
/// [`Accounting`] (`makeSequenceActivation`, SequenceActions.scala:198-248).
#[derive(Debug, Clone)]
pub struct SequenceRecord<'a> {
    /// The invoking identity's namespace (SequenceActions.scala:231), not the owner's.
    pub namespace: &'a str,
    /// The invoking identity's subject (SequenceActions.scala:233).
    pub subject: &'a str,
    /// The sequence as resolved (its `path` is where it really lives, through bindings).
    pub sequence: &'a ActionMetadata,
    /// Made when the sequence started, before any component (SequenceActions.scala:104).
    pub id: ActivationId,
    /// When the sequence started, epoch ms (SequenceActions.scala:107).
    pub start: i64,
    /// When its run finished, epoch ms (SequenceActions.scala:170).
    pub end: i64,
    /// The enclosing sequence's id; `None` for the topmost (SequenceActions.scala:237).
    pub cause: Option<ActivationId>,
    /// ms from the request's receipt (the transaction's start) to `start`
    /// (SequenceActions.scala:220-222); about 0 for a nested sequence.
    pub wait_time_ms: i64,
    /// `ns/binding` when the sequence was invoked through a package binding
    /// (SequenceActions.scala:225-227).
    pub binding: Option<String>,
}

/// The sequence's own record as `makeSequenceActivation` writes it
/// (SequenceActions.scala:198-248): the caller's namespace and subject, the sequence's
/// name and version, `cause` for a nested sequence only, `response` (the last
/// component's, or a controller-made end), `logs`
/// = the direct components' ids, and the annotations in the code's order (:242-246):
/// `topmost`, `path`, `kind: "sequence"`, `causedBy: "sequence"` (nested only),
/// `waitTime`, `binding` (through a binding only), and `limits` only when some logged
/// component had a memory limit: `{"timeout","memory","logs","concurrency"}` with the
/// sequence's own timeout and logs, the largest memory, and the default concurrency
/// (:207-212; Limits.scala:51-57, 77-94).
///
/// Its `duration` is [`Accounting::duration`] (:247), the sum of the logged
/// components' durations.
pub fn sequence_activation(
    rec: SequenceRecord<'_>,
    account: &Accounting,
    response: ActivationResponse,
) -> Activation {
    let seq = rec.sequence;
    let topmost = rec.cause.is_none();
    let annotation = |key: &str, value: Value| Annotation {
        key: key.into(),
        value,
    };
    let mut annotations = vec![
        annotation("topmost", topmost.into()),
        annotation("path", seq.path.to_path_string().into()),
        annotation("kind", KIND.into()),
    ];
    if !topmost {
        annotations.push(annotation("causedBy", KIND.into()));
    }
    annotations.push(annotation("waitTime", rec.wait_time_ms.into()));
    if let Some(b) = rec.binding {
        annotations.push(annotation("binding", b.into()));
    }
    if let Some(memory) = account.max_memory {
        let logs = seq
            .limits
            .json
            .get("logs")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_LOGS_MB);
        annotations.push(annotation(
            "limits",
            json!({
                "timeout": seq.limits.timeout_ms,
                "memory": memory,
                "logs": logs,
                "concurrency": DEFAULT_CONCURRENCY,
            }),
        ));
    }
    Activation {
        // The sum of the logged components' durations, not `end - start` (SA:247).
        duration_ms: Some(account.duration),
        namespace: rec.namespace.into(),
        name: seq.path.action.clone(),
        subject: rec.subject.into(),
        activation_id: rec.id,
        start: rec.start,
        end: rec.end,
        cause: rec.cause.map(String::from),
        response,
        logs: account.logs.iter().map(|id| id.as_str().into()).collect(),
        version: seq.version.clone(),
        publish: false,
        annotations,
    }
}

#[cfg(test)]
mod tests {
    //! Citations: SequenceActions.scala (SA:line), SequenceAccountingTests.scala (SAT:line),
    //! WskSequenceTests.scala (WST:line), SequenceApiTests.scala (SAPI:line), all at
    //! OpenWhisk `1fae641a2b30`.

    use super::*;

    fn id(n: u8) -> ActivationId {
        format!("{:032x}", n).parse().unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn action(extra: Value) -> ActionMetadata {
        let mut doc = json!({
            "namespace": "guest/pkg", "name": "a", "version": "0.0.2",
            "exec": {"kind": "nodejs:20"},
            "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
            "parameters": [
                {"key": "p", "value": "package"},
                {"key": "a", "value": "action"},
                {"key": "TOKEN", "value": "s3cret", "init": true}
            ],
            "annotations": [{"key": "final", "value": true}]
        });
        doc.as_object_mut().unwrap().extend(obj(extra));
        ActionMetadata::from_json(&doc).unwrap()
    }

    /// A component record as the invoker writes it (ContainerProxy.scala:1063-1080).
    fn component(n: u8, response: ActivationResponse, duration: i64, memory: u64) -> Activation {
        Activation {
            duration_ms: None,
            namespace: "guest".into(),
            name: format!("c{n}"),
            subject: "guest".into(),
            activation_id: id(n),
            start: 1_000,
            end: 1_000 + duration,
            cause: Some(id(100).to_string()),
            response,
            logs: vec![],
            version: "0.0.1".into(),
            publish: false,
            annotations: vec![Annotation {
                key: "limits".into(),
                value: json!({"timeout": 1000, "memory": memory, "logs": 1, "concurrency": 1}),
            }],
        }
    }

    fn ok(v: Value) -> ActivationResponse {
        ActivationResponse::success(v, None)
    }

    /// Exec.scala:267-268, 300-306; FQN:80; EP:107-112, 141-145; SAPI:294-330.
    #[test]
    fn components_read_as_openwhisk_reads_them() {
        let m = |components: Value| {
            ActionMetadata::from_json(&json!({
                "namespace": "guest", "name": "s",
                "exec": {"kind": "sequence", "components": components},
            }))
            .unwrap()
            .components
        };
        assert_eq!(
            m(json!(["/guest/a", "/guest/pkg/b", "//other//c", "_/d"])),
            vec![
                ActionPath::new("guest", None, "a"),
                ActionPath::new("guest", Some("pkg"), "b"),
                ActionPath::new("other", None, "c"),
                ActionPath::new("_", None, "d"),
            ]
        );
        // One bad name makes the whole sequence unreadable, so not composable.
        for bad in [
            json!(["/guest/a", "a"]),
            json!(["/guest/a", "/a/b/c/d"]),
            json!(["/guest/a b!"]),
            json!(["/guest/a", 1]),
            json!("/guest/a"),
            json!(null),
        ] {
            assert_eq!(m(bad.clone()), vec![], "{bad}");
        }
        let plain = ActionMetadata::from_json(&json!({
            "namespace": "guest", "name": "a",
            "exec": {"kind": "nodejs:20", "components": ["/guest/b"]},
        }))
        .unwrap();
        assert!(plain.components.is_empty());
    }

    /// SA:350-355: only an object or an array is passed on.
    #[test]
    fn the_input_is_an_object_an_array_or_nothing() {
        assert_eq!(
            Input::from_result(Some(&json!({"a": 1}))),
            Input::Object(obj(json!({"a": 1})))
        );
        assert_eq!(
            Input::from_result(Some(&json!([1, 2]))),
            Input::Array(vec![json!(1), json!(2)])
        );
        for v in [json!("s"), json!(1), json!(true), Value::Null] {
            assert_eq!(Input::from_result(Some(&v)), Input::Nothing);
        }
        assert_eq!(Input::from_result(None), Input::Nothing);
        assert_eq!(Input::Nothing.into_payload(), None);
        assert_eq!(Input::Array(vec![]).into_payload(), Some(json!([])));
    }

    /// PA:159-164; WST:217-265 (the input beats the action's parameters, which beat the
    /// package's); WST:544-567 (an array goes alone); ACT:262-264 (no `final` check
    /// inside a sequence); init parameters are never run arguments (CP:1091-1100).
    #[test]
    fn component_arguments_merge_as_invoke_simple_action() {
        let a = action(json!({}));
        assert_eq!(
            component_arguments(
                &a,
                Input::Object(obj(json!({"a": "input", "x": 1, "TOKEN": "t"})))
            ),
            json!({"p": "package", "a": "input", "x": 1})
        );
        assert_eq!(
            component_arguments(&a, Input::Nothing),
            json!({"p": "package", "a": "action"})
        );
        assert_eq!(
            component_arguments(&a, Input::Array(vec![json!("b"), json!("a")])),
            json!(["b", "a"])
        );
    }

    /// What a test sequence meets at each step.
    enum Step {
        Atomic(Activation),
        Nested(Activation, usize),
        Missing,
        TimedOut(ActivationId),
    }

    /// The driver of the module documentation, over steps given in advance: the
    /// account, the sequence's response and the input each step received.
    fn run(
        limit: usize,
        atomic_so_far: usize,
        input: Input,
        steps: Vec<Step>,
    ) -> (Accounting, ActivationResponse, Vec<Input>) {
        let mut account = Accounting::new(atomic_so_far);
        let mut previous = placeholder_for(input);
        let mut inputs = Vec::new();
        for step in steps {
            if !account.may_run_another(limit) {
                previous = too_long();
                break;
            }
            inputs.push(Input::from_result(previous.result.as_ref()));
            match step {
                Step::Missing => {
                    previous = component_missing();
                    break;
                }
                Step::TimedOut(cid) => {
                    previous = component_timeout(&cid);
                    account.add_timed_out(cid);
                    break;
                }
                Step::Atomic(a) => {
                    account.add_atomic(&a);
                    previous = a.response;
                }
                Step::Nested(n, atomic_after) => {
                    account.add_nested(&n, atomic_after);
                    previous = n.response;
                }
            }
            if account.atomic() > limit {
                previous = too_long();
                break;
            }
            if stops(&previous) {
                break;
            }
        }
        (account, previous, inputs)
    }

    /// SA:287-289, AR:114: the payload boxed as an application error; never checked for
    /// `error` (WST:97-107: a body with `error` reaches the first component).
    #[test]
    fn the_placeholder_never_stops_the_sequence() {
        let body = Input::Object(obj(json!({"error": "not an error yet"})));
        assert_eq!(
            placeholder_for(body.clone()).to_api_json(),
            json!({"result": {"error": "not an error yet"}, "status": "application error", "success": false})
        );
        let a = component(1, ok(json!({"n": 1})), 5, 128);
        let (account, response, inputs) = run(50, 0, body.clone(), vec![Step::Atomic(a)]);
        assert_eq!(inputs, vec![body]);
        assert_eq!(account.logs(), &[id(1)]);
        assert_eq!(response, ok(json!({"n": 1})));
        assert_eq!(
            placeholder_for(Input::Nothing).to_api_json(),
            json!({"status": "application error", "success": false})
        );
        // No component: the placeholder is the response (SA:287-296).
        let (_, response, _) = run(50, 0, Input::Nothing, vec![]);
        assert_eq!(response, placeholder_for(Input::Nothing));
    }

    /// SA:464-471: only an object result with an `error` key stops, whatever the status.
    #[test]
    fn an_error_key_stops_the_sequence() {
        assert!(stops(&ActivationResponse::error(
            StatusCode::DeveloperError,
            json!("x"),
            None
        )));
        assert!(stops(&ok(json!({"error": null}))));
        assert!(!stops(&ok(json!({"errors": 1}))));
        assert!(!stops(&ok(json!([{"error": 1}]))));
        assert!(!stops(&ActivationResponse {
            status_code: StatusCode::ApplicationError,
            result: None,
            size: None
        }));
    }

    /// MSG:113-116, 133-135; SA:308, 312, 389, 398.
    #[test]
    fn controller_made_ends() {
        assert_eq!(
            too_long().to_api_json(),
            json!({"result": {"error": "Too many actions in the sequence."}, "status": "application error", "success": false})
        );
        assert_eq!(
            component_missing().to_api_json(),
            json!({"result": {"error": "Sequence component does not exist."}, "status": "application error", "success": false})
        );
        assert_eq!(
            failed().to_api_json(),
            json!({"result": {"error": "Sequence failed."}, "status": "whisk internal error", "success": false})
        );
        assert_eq!(
            component_timeout(&id(7)).to_api_json(),
            json!({"result": {"error": "Timeout reached when retrieving activation 00000000000000000000000000000007 for sequence component."}, "status": "whisk internal error", "success": false})
        );
        assert_eq!(
            messages::SEQUENCE_NO_COMPONENT,
            "No component specified for the sequence."
        );
        assert_eq!(
            messages::SEQUENCE_IS_CYCLIC,
            "Sequence may not refer to itself."
        );
    }

    /// SAT:68-76.
    #[test]
    fn initial_account() {
        let s = Accounting::new(2);
        assert_eq!(s.atomic(), 2);
        assert!(s.logs().is_empty());
        assert_eq!(s.duration(), 0);
        assert_eq!(s.max_memory(), None);
    }

    /// SAT:78-102: a success is accounted; an error result is accounted and stops.
    #[test]
    fn success_then_short_circuit() {
        let ok2 = ok(json!({"res": 2}));
        let failed_res = ActivationResponse::error(StatusCode::ApplicationError, json!(3), None);
        let a = component(1, ok2.clone(), 123, 128);
        let b = component(2, failed_res.clone(), 234, 256);
        let c = component(3, ok(json!({})), 1, 1024);
        let (s, response, inputs) = run(
            5,
            2,
            Input::Object(obj(json!({"res": 1}))),
            vec![Step::Atomic(a), Step::Atomic(b), Step::Atomic(c)],
        );
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[1], Input::Object(obj(json!({"res": 2}))));
        assert_eq!(s.atomic(), 4);
        assert_eq!(response, failed_res);
        assert_eq!(s.logs(), &[id(1), id(2)]);
        assert_eq!(s.duration(), 123 + 234);
        assert_eq!(s.max_memory(), Some(256));
    }

    /// SAT:104-114 (the defensive branch, SA:478-483): over the limit, still logged.
    #[test]
    fn over_the_limit_is_logged_and_too_long() {
        let a = component(1, ok(json!({"res": 2})), 123, 128);
        let mut s = Accounting::new(2);
        s.add_atomic(&a);
        assert_eq!(s.atomic(), 3);
        assert!(!s.may_run_another(2));
        assert_eq!(s.logs(), &[id(1)]);
        assert_eq!(s.duration(), 123);
        assert_eq!(s.max_memory(), Some(128));
        // Before a component: (a) at the limit, nothing more runs, nothing logged.
        let (s, response, inputs) = run(
            3,
            2,
            Input::Nothing,
            vec![Step::Atomic(a.clone()), Step::Atomic(a)],
        );
        assert_eq!(response, too_long());
        assert_eq!(inputs.len(), 1);
        assert_eq!(s.logs(), &[id(1)]);
    }

    /// SAT:116-127, SA:386-390, 457-461: a failure keeps the account; a component not
    /// retrieved in time is logged.
    #[test]
    fn failures_keep_the_account() {
        let a = component(1, ok(json!({"res": 2})), 123, 128);
        let (s, response, _) = run(
            5,
            2,
            Input::Nothing,
            vec![Step::Atomic(a.clone()), Step::TimedOut(id(9))],
        );
        assert_eq!(s.atomic(), 3);
        assert_eq!(response, component_timeout(&id(9)));
        assert_eq!(s.logs(), &[id(1), id(9)]);
        assert_eq!(s.duration(), 123);
        assert_eq!(s.max_memory(), Some(128));
        let (s, response, _) = run(50, 0, Input::Nothing, vec![Step::Atomic(a), Step::Missing]);
        assert_eq!(response, component_missing());
        assert_eq!(s.logs(), &[id(1)]);
    }

    /// SAT:129-136 via records; SA:448-453: no `limits` annotation, or one without a
    /// numeric memory, leaves the memory.
    #[test]
    fn max_memory() {
        let mut s = Accounting::new(0);
        let mut a = component(1, ok(json!({})), 5, 512);
        a.annotations.clear();
        s.add_atomic(&a);
        assert_eq!(s.max_memory(), None);
        s.add_atomic(&component(2, ok(json!({})), 5, 128));
        s.add_atomic(&component(3, ok(json!({})), 5, 64));
        assert_eq!(s.max_memory(), Some(128));
        let mut odd = component(4, ok(json!({})), 5, 1);
        odd.annotations[0].value = json!({"timeout": 1});
        s.add_atomic(&odd);
        assert_eq!(s.max_memory(), Some(128));
        assert_eq!(s.atomic(), 4);
    }

    /// SA:295: the limit is checked before each component on the tree's count; SA:363-384,
    /// WST:160-215: a nested sequence shares the count, is logged as one id with the sum
    /// of its components' durations, and its error stops the parent with its response.
    #[test]
    fn nested_sequences_share_the_count() {
        let limit = 3;
        let first = component(1, ok(json!({"n": 1})), 10, 128);
        let (inner, inner_response, inner_inputs) = run(
            limit,
            1,
            Input::Object(obj(json!({"n": 1}))),
            (2..=4)
                .map(|n| Step::Atomic(component(n, ok(json!({"n": n})), 10, 256)))
                .collect(),
        );
        assert_eq!(inner_inputs.len(), 2);
        assert_eq!(inner_response, too_long());
        assert_eq!(inner.atomic(), 3);
        let nested = sequence_activation(
            SequenceRecord {
                namespace: "guest",
                subject: "guest",
                sequence: &sequence("inner"),
                id: id(20),
                start: 1_000,
                end: 1_000 + inner.duration(),
                cause: Some(id(10)),
                wait_time_ms: 0,
                binding: None,
            },
            &inner,
            inner_response,
        );
        assert_eq!(nested.logs, vec![id(2).to_string(), id(3).to_string()]);
        let (outer, response, _) = run(
            limit,
            0,
            Input::Nothing,
            vec![
                Step::Atomic(first),
                Step::Nested(nested, inner.atomic()),
                Step::Atomic(component(5, ok(json!({})), 1, 1)),
            ],
        );
        assert_eq!(outer.atomic(), 3);
        assert_eq!(outer.logs(), &[id(1), id(20)]);
        assert_eq!(outer.duration(), 30);
        assert_eq!(outer.max_memory(), Some(256));
        assert_eq!(response, too_long());
    }

    fn sequence(name: &str) -> ActionMetadata {
        ActionMetadata::from_json(&json!({
            "namespace": "guest/pkg", "name": name, "version": "0.0.3",
            "exec": {"kind": "sequence", "components": ["/guest/a", "/guest/b"]},
            "limits": {"timeout": 30000, "memory": 512, "logs": 5, "concurrency": 4},
            "parameters": [{"key": "_actions", "value": ["/guest/a", "/guest/b"]}],
        }))
        .unwrap()
    }

    /// SA:198-248 for a topmost sequence: no cause, `topmost: true`, no `causedBy`, the
    /// `limits` from the sequence's timeout and logs with the largest component memory and
    /// the default concurrency; SAPI:54-81: a missing component after one ran gives 1 log
    /// and `Sequence component does not exist.`.
    #[test]
    fn the_topmost_record_exactly() {
        let seq = sequence("s");
        let mut account = Accounting::new(0);
        account.add_atomic(&component(1, ok(json!({"x": 2})), 57, 128));
        let record = sequence_activation(
            SequenceRecord {
                namespace: "alice",
                subject: "alice-subject",
                sequence: &seq,
                id: id(100),
                start: 1_700_000_000_000,
                end: 1_700_000_000_090,
                cause: None,
                wait_time_ms: 3,
                binding: None,
            },
            &account,
            component_missing(),
        );
        assert_eq!(
            serde_json::to_string(&record.api_form(true)).unwrap(),
            concat!(
                r#"{"namespace":"alice","name":"s","subject":"alice-subject","#,
                r#""activationId":"00000000000000000000000000000064","#,
                r#""start":1700000000000,"end":1700000000090,"duration":57,"#,
                r#""response":{"result":{"error":"Sequence component does not exist."},"status":"application error","success":false},"#,
                r#""logs":["00000000000000000000000000000001"],"version":"0.0.3","publish":false,"#,
                r#""annotations":[{"key":"topmost","value":true},{"key":"path","value":"guest/pkg/s"},"#,
                r#"{"key":"kind","value":"sequence"},{"key":"waitTime","value":3},"#,
                r#"{"key":"limits","value":{"timeout":30000,"memory":128,"logs":5,"concurrency":1}}]}"#
            )
        );
        // `duration` is the account's, the components' sum, not `end - start` (SA:247).
        assert_eq!(account.duration(), 57);
    }

    /// SA:215-217, 225-227, 237: a nested record has the parent as cause, `topmost:
    /// false`, `causedBy`; a binding is annotated; no component memory → no `limits`
    /// (SA:208: a sequence that ran nothing).
    #[test]
    fn the_nested_record_exactly() {
        let seq = sequence("inner");
        let account = Accounting::new(7);
        let record = sequence_activation(
            SequenceRecord {
                namespace: "guest",
                subject: "guest",
                sequence: &seq,
                id: id(101),
                start: 10,
                end: 11,
                cause: Some(id(100)),
                wait_time_ms: 0,
                binding: Some("guest/bound".into()),
            },
            &account,
            placeholder_for(Input::Array(vec![json!(1)])),
        );
        assert_eq!(
            record.to_api_json(true),
            json!({
                "namespace": "guest", "name": "inner", "subject": "guest",
                "activationId": id(101).as_str(), "start": 10, "end": 11,
                "cause": id(100).as_str(), "duration": 0,
                "response": {"result": [1], "status": "application error", "success": false},
                "logs": [], "version": "0.0.3", "publish": false,
                "annotations": [
                    {"key": "topmost", "value": false},
                    {"key": "path", "value": "guest/pkg/inner"},
                    {"key": "kind", "value": "sequence"},
                    {"key": "causedBy", "value": "sequence"},
                    {"key": "waitTime", "value": 0},
                    {"key": "binding", "value": "guest/bound"}
                ]
            })
        );
    }
}
