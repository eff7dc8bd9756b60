//! What the Lambda function receives (`payload` in the route).
//!
//! `openwhisk`: the body an OpenWhisk runtime's `/run` receives (reference §7.1), so an
//! unchanged OpenWhisk action (through the owl runtime) sees exactly what it would see
//! in an OpenWhisk container. `event`: the merged parameters alone.

use crate::policy::PayloadMode;
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

/// Serialises the payload for `mode`.
pub fn build(mode: PayloadMode, params: Map<String, Value>, ctx: &ActivationContext<'_>) -> Bytes {
    let value = match mode {
        PayloadMode::Event => Value::Object(params),
        PayloadMode::OpenWhisk => {
            let mut m = Map::with_capacity(9);
            m.insert("value".into(), Value::Object(params));
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
    fn event_payload_is_the_params() {
        let params = json!({"a": [1, 2]}).as_object().unwrap().clone();
        let b = build(PayloadMode::Event, params, &ctx(Some("u:k".into())));
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap(),
            json!({"a": [1, 2]})
        );
    }
}
