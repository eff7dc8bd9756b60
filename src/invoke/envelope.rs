//! What the Lambda function receives (`payload` in the route).
//!
//! `openwhisk`: the body an OpenWhisk runtime's `/run` receives (reference §7.1), so an
//! unchanged OpenWhisk action (through the owl runtime) sees exactly what it would see
//! in an OpenWhisk container. `event`: the merged parameters alone.
//!
//! An `openwhisk` envelope may also ask for the activation's logs (`owl:log_limit`,
//! the action's log limit in bytes): the owl runtime then returns them with its
//! answer, up to that limit, instead of leaving owl Lambda's 4 KB log tail
//! (docs/runtime.md). The runtime takes the key out before the action sees the
//! envelope; other functions ignore it.

use crate::lambda::logs::LogRequest;
use crate::policy::PayloadMode;
use crate::whisk::contract::LOG_LIMIT_KEY;
use bytes::Bytes;
use serde_json::{Map, Value};

/// The activation context an OpenWhisk action receives beside its parameters.
#[derive(Debug, Clone)]
pub struct ActivationContext<'a> {
    /// Namespace of the invoking identity (`__OW_NAMESPACE`).
    pub namespace: &'a str,
    /// `/ns[/pkg]/action` of the action that runs (`__OW_ACTION_NAME`).
    pub action_name: String,
    /// Action version (`__OW_ACTION_VERSION`).
    pub action_version: &'a str,
    /// Activation id (`__OW_ACTIVATION_ID`).
    pub activation_id: &'a str,
    /// Transaction id (`__OW_TRANSACTION_ID`).
    pub transaction_id: &'a str,
    /// Epoch ms by which the action must finish (`__OW_DEADLINE`, a string).
    pub deadline_ms: i64,
    /// `uuid:key`, only when the action's `provide-api-key` annotation allows it.
    pub api_key: Option<String>,
    /// Public API host (`__OW_API_HOST`), when configured.
    pub api_host: Option<&'a str>,
}

/// Serialises the payload for `mode`, without asking for the logs.
pub fn build(mode: PayloadMode, params: Map<String, Value>, ctx: &ActivationContext<'_>) -> Bytes {
    build_for(mode, Value::Object(params), ctx, &LogRequest::tail_only())
}

/// Serialises the payload for `mode`; an `openwhisk` envelope asks for the logs when
/// `logs` says the runtime should return them.
pub(crate) fn build_for(
    mode: PayloadMode,
    params: Value,
    ctx: &ActivationContext<'_>,
    logs: &LogRequest,
) -> Bytes {
    let value = match mode {
        PayloadMode::Event => params,
        PayloadMode::OpenWhisk => {
            let mut m = Map::with_capacity(10);
            m.insert("value".into(), params);
            m.insert("namespace".into(), ctx.namespace.into());
            m.insert("action_name".into(), ctx.action_name.clone().into());
            m.insert("action_version".into(), ctx.action_version.into());
            m.insert("activation_id".into(), ctx.activation_id.into());
            m.insert("transaction_id".into(), ctx.transaction_id.into());
            m.insert("deadline".into(), ctx.deadline_ms.to_string().into());
            if let Some(k) = &ctx.api_key {
                m.insert("api_key".into(), k.clone().into());
            }
            if let Some(h) = ctx.api_host {
                m.insert("api_host".into(), h.into());
            }
            if let Some(limit) = logs.runtime_limit() {
                m.insert(LOG_LIMIT_KEY.into(), limit.into());
            }
            Value::Object(m)
        }
    };
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(api_key: Option<String>) -> ActivationContext<'static> {
        ActivationContext {
            namespace: "guest",
            action_name: "/guest/pkg/hello".into(),
            action_version: "0.0.1",
            activation_id: "abc",
            transaction_id: "tid",
            deadline_ms: 1_700_000_060_000,
            api_key,
            api_host: None,
        }
    }

    #[test]
    fn openwhisk_envelope() {
        let params = json!({"name": "owl"}).as_object().unwrap().clone();
        let b = build(PayloadMode::OpenWhisk, params.clone(), &ctx(None));
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            json!({"value": {"name": "owl"}, "namespace": "guest", "action_name": "/guest/pkg/hello",
                   "action_version": "0.0.1", "activation_id": "abc", "transaction_id": "tid",
                   "deadline": "1700000060000"})
        );
        let b = build(PayloadMode::OpenWhisk, params, &ctx(Some("u:k".into())));
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["api_key"], "u:k");
    }

    #[test]
    fn the_envelope_asks_for_the_logs() {
        let params = json!({"n": 1}).as_object().unwrap().clone();
        let limits = json!({"timeout": 60000, "memory": 256, "logs": 2, "concurrency": 1});
        let asks = LogRequest::for_action(&limits, PayloadMode::OpenWhisk, true);
        let b = build_for(
            PayloadMode::OpenWhisk,
            Value::Object(params.clone()),
            &ctx(None),
            &asks,
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["owl:log_limit"], 2 * 1024 * 1024);
        assert_eq!(v["value"], json!({"n": 1}));
        // Logs off, or an event payload: nothing asked, nothing added.
        let off = LogRequest::for_action(&limits, PayloadMode::OpenWhisk, false);
        let b = build_for(
            PayloadMode::OpenWhisk,
            Value::Object(params.clone()),
            &ctx(None),
            &off,
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert!(v.get("owl:log_limit").is_none());
        let event = LogRequest::for_action(&limits, PayloadMode::Event, true);
        assert!(!event.from_runtime);
        let b = build_for(
            PayloadMode::Event,
            Value::Object(params),
            &ctx(None),
            &event,
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap(),
            json!({"n": 1})
        );
    }

    #[test]
    fn event_payload_is_the_params() {
        let params = json!({"a": [1, 2]}).as_object().unwrap().clone();
        let b = build(PayloadMode::Event, params, &ctx(Some("u:k".into())));
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap(),
            json!({"a": [1, 2]})
        );
    }
}
