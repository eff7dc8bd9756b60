//! Parameter merge and `final` enforcement (reference §1.5): action defaults (already
//! merged with package and binding parameters by the metadata source) are overridden by
//! the invoke body; with `final: true`, parameters with non-null defaults are immutable.

use crate::action::ActionMetadata;
use serde_json::{Map, Value};

/// The body tried to redefine a `final` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalParameterViolation;

/// Merges `body` over the action's defaults, enforcing `final` parameters.
pub fn merge(
    action: &ActionMetadata,
    body: Map<String, Value>,
) -> Result<Map<String, Value>, FinalParameterViolation> {
    // `final` is read with getAs[Boolean]: only JSON `true` counts.
    let final_params = action.annotation("final") == Some(&Value::Bool(true));
    // Sets, not nested loops: the client decides the body's keys, the tenant the
    // action's parameters; their product must not be the work done.
    if final_params {
        let fixed: std::collections::HashSet<&str> = action
            .parameters
            .iter()
            .filter(|p| !p.value.is_null())
            .map(|p| p.key.as_str())
            .collect();
        if body.keys().any(|k| fixed.contains(k.as_str())) {
            return Err(FinalParameterViolation);
        }
    }
    Ok(merge_over(action, body))
}

/// Merges `body` over the action's defaults without the `final` check: for a web
/// action, whose request was checked already (only its query and body keys count,
/// WA:640-650) and whose `__ow_*` arguments overwrite any parameter of that name.
pub fn merge_over(action: &ActionMetadata, body: Map<String, Value>) -> Map<String, Value> {
    let mut merged = Map::with_capacity(action.parameters.len() + body.len());
    for p in &action.parameters {
        merged.insert(p.key.clone(), p.value.clone());
    }
    for (k, v) in body {
        merged.insert(k, v);
    }
    // Init parameters are never run arguments: the invoker partitions them out of the
    // merged arguments, body keys naming them included, and hands them over only at
    // init [OW core/invoker/.../containerpool/ContainerProxy.scala:1091
    // `partitionArguments`, called from `initializeAndRun`:782]. On Lambda they are
    // the function's environment (`owl sync`), never the event.
    if action.parameters.iter().any(|p| p.init) {
        let init: std::collections::HashSet<&str> = action
            .parameters
            .iter()
            .filter(|p| p.init)
            .map(|p| p.key.as_str())
            .collect();
        merged.retain(|k, _| !init.contains(k.as_str()));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(final_annotation: Value) -> ActionMetadata {
        ActionMetadata::from_json(&json!({
            "namespace": "guest", "name": "a",
            "parameters": [{"key": "x", "value": 1}, {"key": "y", "value": null}, {"key": "z", "value": "d"}],
            "annotations": [{"key": "final", "value": final_annotation}]
        }))
        .unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn body_overrides_defaults() {
        let m = merge(&action(json!(false)), obj(json!({"x": 2, "w": 3}))).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"x": 2, "y": null, "z": "d", "w": 3})
        );
    }

    /// Issue 15 §5: init parameters, and body keys naming them, never reach a run.
    #[test]
    fn init_parameters_are_not_run_arguments() {
        let a = ActionMetadata::from_json(&json!({
            "namespace": "guest", "name": "a",
            "parameters": [{"key": "TOKEN", "value": "s3cret", "init": true}, {"key": "x", "value": 1}],
        }))
        .unwrap();
        let m = merge(&a, obj(json!({"TOKEN": "override", "y": 2}))).unwrap();
        assert_eq!(Value::Object(m), json!({"x": 1, "y": 2}));
        let only_init = ActionMetadata::from_json(&json!({
            "namespace": "guest", "name": "a",
            "parameters": [{"key": "TOKEN", "value": "s3cret", "init": true}],
        }))
        .unwrap();
        assert_eq!(
            Value::Object(merge(&only_init, Map::new()).unwrap()),
            json!({})
        );
    }

    #[test]
    fn final_parameters_are_immutable_unless_null() {
        let a = action(json!(true));
        assert_eq!(
            merge(&a, obj(json!({"x": 2}))),
            Err(FinalParameterViolation)
        );
        assert!(merge(&a, obj(json!({"y": 2, "w": 1}))).is_ok());
        // only JSON true enables final
        assert!(merge(&action(json!("true")), obj(json!({"x": 2}))).is_ok());
    }
}
