//! From a Lambda event to the launcher's input line.
//!
//! owl's `payload = "openwhisk"` envelope (src/invoke/envelope.rs) is the body of an
//! OpenWhisk `/run`: `{"value": params, "namespace", "action_name", "action_version",
//! "activation_id", "transaction_id", "deadline", "api_key"?, "api_host"?}`. It is
//! passed on as the ActionLoop line, whose non-`value` keys the launcher exports as
//! `__OW_<KEY>`. Any other event is the action's parameters, with the activation
//! context taken from Lambda (request id, deadline, function name). Either way the
//! line also carries `lambda_request_id`, `lambda_function_arn` and
//! `lambda_trace_id` (the action sees `_X_AMZN_TRACE_ID`), and `deadline` is never
//! later than Lambda's own. owl's request for the activation's logs
//! (`owl:log_limit`, see `answer`) is taken out of the envelope: the action never sees
//! it.

use super::answer::LOG_LIMIT_KEY;
use super::messages::RuntimeFailure;
use serde_json::{Map, Value};

/// Time kept back before Lambda's deadline to report a timeout ourselves.
pub(crate) const DEADLINE_MARGIN_MS: u64 = 50;

/// What Lambda said about the invocation.
#[derive(Debug, Clone, Default)]
pub struct LambdaContext<'a> {
    /// AWS request id.
    pub request_id: &'a str,
    /// Lambda's deadline (epoch ms).
    pub deadline_ms: Option<u64>,
    /// The invoked function's ARN.
    pub function_arn: Option<&'a str>,
    /// The X-Ray trace header.
    pub trace_id: Option<&'a str>,
    /// The function's name (the action name of a plain event).
    pub function_name: &'a str,
}

/// An activation ready for the launcher.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    /// The ActionLoop line (no newline inside).
    pub line: Vec<u8>,
    /// When the runtime stops waiting (epoch ms): the action's deadline, or Lambda's
    /// minus a margin, whichever is first.
    pub(crate) stop_at_ms: u64,
    /// True if the event was owl's envelope.
    pub envelope: bool,
    /// The log limit (bytes) of an envelope that asks for the activation's logs.
    pub log_limit: Option<usize>,
}

/// Is `v` owl's OpenWhisk envelope?
pub(crate) fn is_envelope(o: &Map<String, Value>) -> bool {
    o.contains_key("value") && o.get("activation_id").is_some_and(Value::is_string)
}

fn as_ms(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Builds the launcher line for `event`. `default_budget_ms` bounds an invocation
/// that has no deadline at all.
pub fn activation(
    event: &[u8],
    lambda: &LambdaContext<'_>,
    now_ms: u64,
    default_budget_ms: u64,
) -> Result<Activation, RuntimeFailure> {
    let parsed: Value = serde_json::from_slice(event).map_err(|e| {
        RuntimeFailure::new(
            "Runtime.InvalidEvent",
            format!("The event is not valid JSON: {e}"),
        )
    })?;
    let lambda_stop = lambda
        .deadline_ms
        .map(|d| d.saturating_sub(DEADLINE_MARGIN_MS));
    let (mut m, envelope) = match parsed {
        Value::Object(o) if is_envelope(&o) => (o, true),
        other => {
            let mut m = Map::with_capacity(8);
            m.insert("value".into(), other);
            m.insert("activation_id".into(), lambda.request_id.into());
            m.insert("transaction_id".into(), lambda.request_id.into());
            if !lambda.function_name.is_empty() {
                m.insert("action_name".into(), lambda.function_name.into());
            }
            (m, false)
        }
    };
    let log_limit = if envelope {
        m.remove(LOG_LIMIT_KEY)
            .and_then(|v| v.as_u64())
            .map(|l| usize::try_from(l).unwrap_or(usize::MAX))
    } else {
        None
    };
    let action_deadline = m.get("deadline").and_then(as_ms);
    let deadline = match (action_deadline, lambda.deadline_ms) {
        (Some(a), Some(l)) => a.min(l),
        (a, l) => a.or(l).unwrap_or(now_ms + default_budget_ms),
    };
    let stop_at_ms = match lambda_stop {
        Some(l) => deadline.min(l),
        None => deadline,
    };
    m.insert("deadline".into(), deadline.to_string().into());
    m.insert("lambda_request_id".into(), lambda.request_id.into());
    if let Some(a) = lambda.function_arn {
        m.insert("lambda_function_arn".into(), a.into());
    }
    if let Some(t) = lambda.trace_id {
        m.insert("lambda_trace_id".into(), t.into());
    }
    // Compact JSON has no raw newline: the line is one ActionLoop line.
    let line = serde_json::to_vec(&Value::Object(m)).map_err(|e| {
        RuntimeFailure::new(
            "Runtime.InvalidEvent",
            format!("cannot encode the event: {e}"),
        )
    })?;
    Ok(Activation {
        line,
        stop_at_ms,
        envelope,
        log_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> LambdaContext<'static> {
        LambdaContext {
            request_id: "req-1",
            deadline_ms: Some(10_000),
            function_arn: Some("arn:aws:lambda:us-east-1:000000000000:function:f"),
            trace_id: Some("Root=1-abc"),
            function_name: "f",
        }
    }

    fn line(a: &Activation) -> Value {
        assert!(!a.line.contains(&b'\n'));
        serde_json::from_slice(&a.line).unwrap()
    }

    #[test]
    fn owls_envelope_is_passed_on() {
        let ev = json!({"value": {"name": "a\nb"}, "namespace": "guest", "action_name": "/guest/hello",
            "action_version": "0.0.1", "activation_id": "abc", "transaction_id": "tid",
            "deadline": "5000", "api_key": "u:k"});
        let a = activation(&serde_json::to_vec(&ev).unwrap(), &ctx(), 1000, 60_000).unwrap();
        assert!(a.envelope);
        assert_eq!(a.stop_at_ms, 5000);
        let l = line(&a);
        assert_eq!(l["value"], json!({"name": "a\nb"}));
        assert_eq!(l["api_key"], "u:k");
        assert_eq!(l["activation_id"], "abc");
        assert_eq!(l["deadline"], "5000");
        assert_eq!(l["lambda_request_id"], "req-1");
        assert_eq!(l["lambda_trace_id"], "Root=1-abc");
        assert_eq!(a.log_limit, None);
    }

    /// owl's request for the logs is the runtime's, never the action's; in a plain
    /// event the key is a parameter like any other.
    #[test]
    fn the_log_request_is_taken_out() {
        let ev = json!({"value": {"owl:log_limit": 5}, "activation_id": "abc", "owl:log_limit": 1048576});
        let a = activation(&serde_json::to_vec(&ev).unwrap(), &ctx(), 1000, 60_000).unwrap();
        assert_eq!(a.log_limit, Some(1_048_576));
        let l = line(&a);
        assert!(l.get("owl:log_limit").is_none(), "{l}");
        assert_eq!(l["value"], json!({"owl:log_limit": 5}));
        let plain = json!({"owl:log_limit": 7});
        let a = activation(&serde_json::to_vec(&plain).unwrap(), &ctx(), 1000, 60_000).unwrap();
        assert_eq!(a.log_limit, None);
        assert_eq!(line(&a)["value"], plain);
    }

    #[test]
    fn lambdas_deadline_wins_when_earlier() {
        let ev = json!({"value": {}, "activation_id": "abc", "deadline": "99999"});
        let a = activation(&serde_json::to_vec(&ev).unwrap(), &ctx(), 1000, 60_000).unwrap();
        assert_eq!(a.stop_at_ms, 10_000 - DEADLINE_MARGIN_MS);
        assert_eq!(line(&a)["deadline"], "10000");
    }

    #[test]
    fn a_plain_event_is_the_params() {
        let a = activation(br#"{"value": 1, "x": [1]}"#, &ctx(), 1000, 60_000).unwrap();
        assert!(!a.envelope);
        let l = line(&a);
        assert_eq!(l["value"], json!({"value": 1, "x": [1]}));
        assert_eq!(l["activation_id"], "req-1");
        assert_eq!(l["action_name"], "f");
        assert_eq!(l["deadline"], "10000");
        let none = LambdaContext {
            deadline_ms: None,
            ..ctx()
        };
        let a = activation(b"[1,2]", &none, 1000, 60_000).unwrap();
        assert_eq!(a.stop_at_ms, 61_000);
        assert_eq!(line(&a)["value"], json!([1, 2]));
    }

    #[test]
    fn bad_json_is_refused() {
        let e = activation(b"{nope", &ctx(), 0, 1).unwrap_err();
        assert_eq!(e.error_type, "Runtime.InvalidEvent");
        assert!(
            e.message.starts_with("The event is not valid JSON"),
            "{}",
            e.message
        );
    }
}
