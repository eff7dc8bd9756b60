//! Action metadata as the controller serves it (`GET .../actions/{name}?code=false`)
//! and as it is stored in the whisks database: what owl needs to invoke an action
//! faithfully (version, kind, limits, parameters, annotations).

use crate::names::ActionPath;
use serde_json::{Value, json};

/// Default action time limit (reference §5.3).
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Default action memory limit.
pub const DEFAULT_MEMORY_MB: u64 = 256;

/// An action's limits, kept as OpenWhisk serialises them for the `limits` annotation.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionLimits {
    /// Time limit in ms.
    pub timeout_ms: u64,
    /// Memory in MB.
    pub memory_mb: u64,
    /// The limits object verbatim (`{"timeout","memory","logs","concurrency"[,"instances"]}`).
    pub json: Value,
}

impl Default for ActionLimits {
    fn default() -> Self {
        Self {
            timeout_ms: DEFAULT_TIMEOUT_MS,
            memory_mb: DEFAULT_MEMORY_MB,
            json: json!({"timeout": DEFAULT_TIMEOUT_MS, "memory": DEFAULT_MEMORY_MB, "logs": 10, "concurrency": 1}),
        }
    }
}

/// One action parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Name.
    pub key: String,
    /// Default value.
    pub value: Value,
    /// True for init parameters (`init: true`).
    pub init: bool,
}

/// The metadata of an action (no code).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionMetadata {
    /// Where the action really lives (for bindings, the resolved package).
    pub path: ActionPath,
    /// Semantic version, e.g. `0.0.1`.
    pub version: String,
    /// Exec kind, e.g. `nodejs:20`, `blackbox`, `sequence`.
    pub kind: String,
    /// Limits.
    pub limits: ActionLimits,
    /// Parameters after package and binding merge, in order.
    pub parameters: Vec<Parameter>,
    /// Annotations, as `{"key","value"}` objects.
    pub annotations: Vec<(String, Value)>,
    /// For a sequence (`exec.kind == "sequence"`), its components as stored in
    /// `exec.components` (`"/ns/[pkg/]name"`, Exec.scala:267-268, 300-306), read by
    /// [`crate::sequence::parse_components`]; `_` is kept, to be resolved against the
    /// caller. Empty for any other kind, and for a sequence whose components do not
    /// all read: OpenWhisk never stores a sequence without components
    /// (`No component specified for the sequence.`), so an empty list on a sequence
    /// means "not composable", never "nothing to run".
    pub components: Vec<ActionPath>,
}

impl ActionMetadata {
    /// Parses the controller's JSON for an action. `namespace` in that JSON is `ns` or
    /// `ns/pkg` (the resolved package for bindings).
    pub fn from_json(v: &Value) -> Option<Self> {
        let namespace = v.get("namespace")?.as_str()?;
        let name = v.get("name")?.as_str()?;
        let (ns, pkg) = match namespace.split_once('/') {
            Some((ns, pkg)) => (ns, Some(pkg)),
            None => (namespace, None),
        };
        let limits_json = v
            .get("limits")
            .cloned()
            .unwrap_or_else(|| ActionLimits::default().json);
        let limits = ActionLimits {
            timeout_ms: limits_json
                .get("timeout")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_TIMEOUT_MS),
            memory_mb: limits_json
                .get("memory")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_MEMORY_MB),
            json: limits_json,
        };
        let parameters = v
            .get("parameters")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        Some(Parameter {
                            key: p.get("key")?.as_str()?.to_string(),
                            value: p.get("value").cloned().unwrap_or(Value::Null),
                            init: p.get("init").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let annotations = v
            .get("annotations")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        Some((
                            p.get("key")?.as_str()?.to_string(),
                            p.get("value").cloned().unwrap_or(Value::Null),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let kind = v
            .pointer("/exec/kind")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let components = if kind == crate::sequence::KIND {
            v.pointer("/exec/components")
                .and_then(crate::sequence::parse_components)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Some(Self {
            path: ActionPath::new(ns, pkg, name),
            version: v
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("0.0.1")
                .to_string(),
            kind,
            limits,
            parameters,
            annotations,
            components,
        })
    }

    /// Value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&Value> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// OpenWhisk's `isTruthy`: absent → `default`; `false`, `null`, `0`, `""` → false.
    pub fn annotation_is_truthy(&self, key: &str, default: bool) -> bool {
        match self.annotation(key) {
            None => default,
            Some(v) => is_truthy(v),
        }
    }

    /// True when the action's API key must be passed to it (`provide-api-key` truthy or
    /// absent; reference §7.1).
    pub fn provides_api_key(&self) -> bool {
        self.annotation_is_truthy("provide-api-key", true)
    }
}

/// OpenWhisk's truthiness for annotation values.
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_controller_json() {
        let v = json!({
            "namespace": "guest/utils", "name": "hello", "version": "0.0.3",
            "exec": {"kind": "nodejs:20", "binary": false},
            "limits": {"timeout": 3000, "memory": 128, "logs": 10, "concurrency": 1},
            "parameters": [{"key": "a", "value": 1}, {"key": "b", "value": null, "init": true}],
            "annotations": [{"key": "provide-api-key", "value": false}],
            "publish": false
        });
        let m = ActionMetadata::from_json(&v).unwrap();
        assert_eq!(m.path.to_path_string(), "guest/utils/hello");
        assert_eq!(m.limits.timeout_ms, 3000);
        assert_eq!(m.kind, "nodejs:20");
        assert_eq!(m.parameters.len(), 2);
        assert!(m.parameters[1].init);
        assert!(!m.provides_api_key());
    }

    #[test]
    fn truthiness() {
        assert!(is_truthy(&json!(true)));
        assert!(is_truthy(&json!("yes")));
        assert!(!is_truthy(&json!("")));
        assert!(!is_truthy(&json!(0)));
        assert!(!is_truthy(&Value::Null));
    }
}
