//! An action as `owl sync` needs it, read from a whisks database document or from
//! the controller's answer to `GET …/actions/{name}?code=true` (both shapes are
//! OpenWhisk's `WhiskAction` JSON; the database may keep the code in an attachment),
//! and the package that holds it (`WhiskPackage` JSON), whose parameters the action
//! inherits as OpenWhisk's invoker sees them.

use crate::whisk::action::{DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS, is_truthy};
use crate::whisk::names::ActionPath;
use base64::Engine;
use serde_json::Value;

/// Where the action's code is.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeRef {
    /// No code (sequences; blackbox actions without a zip).
    None,
    /// Inline: source text, or base64 of a zip when the action is binary.
    Inline(String),
    /// The bytes themselves (an attachment inlined in its name, `mem:`).
    Bytes(Vec<u8>),
    /// A CouchDB attachment of the action's document, by name.
    CouchAttachment(String),
    /// An attachment in a store owl cannot read (e.g. OpenWhisk's S3 attachment store).
    Unreadable(String),
}

/// The code, ready to package.
#[derive(Debug, Clone, PartialEq)]
pub enum Code {
    /// A source file.
    Text(String),
    /// A zip archive.
    Zip(Vec<u8>),
}

/// One parameter of an action or a package, as OpenWhisk stores it
/// (`{"key", "value", "init"?, "encryption"?}`). Init parameters (`init: true`) become
/// the function's environment; the others are run arguments, which the gateway
/// merges per invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Name.
    pub key: String,
    /// Value.
    pub value: Value,
    /// `init: true`: handed to the action when it is initialised, never as a run
    /// argument.
    pub init: bool,
    /// True when OpenWhisk stored the value encrypted (owl cannot read it).
    pub encrypted: bool,
}

/// The `parameters` array of an action or package document, in order.
fn parameters(v: &Value) -> Vec<Parameter> {
    v.get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some(Parameter {
                        key: p.get("key")?.as_str()?.to_string(),
                        value: p.get("value").cloned().unwrap_or(Value::Null),
                        init: p.get("init").and_then(Value::as_bool) == Some(true),
                        encrypted: p
                            .get("encryption")
                            .is_some_and(|e| !e.is_null() && e != "noop"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `under ++ over` as OpenWhisk's `Parameters.++` computes it
/// [OW common/scala/src/main/scala/org/apache/openwhisk/core/entity/Parameter.scala:56
/// `new Parameters(params ++ p.params)`]: a map union in which a parameter of `over`
/// replaces the one of `under` with the same name whole — value, `init` flag and
/// encryption — so a package's init parameter that the action redefines without
/// `init` is no init parameter any more. Order: `under`'s names first (a replaced one
/// keeps its place), then `over`'s new ones. Within one list the last of a name
/// wins, as when OpenWhisk reads the list into its map.
pub fn merge_parameters(under: &[Parameter], over: &[Parameter]) -> Vec<Parameter> {
    let mut out: Vec<Parameter> = Vec::with_capacity(under.len() + over.len());
    // Where each name sits in `out`: linear in the parameters, however many.
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in under.iter().chain(over) {
        match at.get(p.key.as_str()) {
            Some(&i) => out[i] = p.clone(),
            None => {
                at.insert(p.key.as_str(), out.len());
                out.push(p.clone());
            }
        }
    }
    out
}

/// What `owl sync` reads of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionDoc {
    /// Where it lives.
    pub path: ActionPath,
    /// The document id, `ns/action` or `ns/pkg/action`.
    pub id: String,
    /// Semantic version.
    pub version: String,
    /// Exec kind (`nodejs:20`, `python:3.11`, `blackbox`, `sequence`…).
    pub kind: String,
    /// Entry point, when not `main`.
    pub main: Option<String>,
    /// True when the code is a (base64) zip.
    pub binary: bool,
    /// The code.
    pub code: CodeRef,
    /// Container image (blackbox).
    pub(crate) image: Option<String>,
    /// Time limit in ms.
    pub timeout_ms: u64,
    /// Memory in MB.
    pub(crate) memory_mb: u64,
    /// Parameters, in order: the action's own as read, its package's beneath them
    /// once [`ActionDoc::inherit`] merged them.
    pub parameters: Vec<Parameter>,
    /// True for conductor actions (the controller runs their compositions).
    pub(crate) conductor: bool,
}

impl ActionDoc {
    /// Reads an action from its JSON (database document or controller answer); `None`
    /// when it is not an action.
    pub fn from_json(v: &Value) -> Option<Self> {
        if v.get("entityType")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "action")
        {
            return None;
        }
        let exec = v.get("exec")?.as_object()?;
        let kind = exec.get("kind")?.as_str()?.to_string();
        let namespace = v.get("namespace")?.as_str()?;
        let name = v.get("name")?.as_str()?;
        let (ns, pkg) = match namespace.split_once('/') {
            Some((ns, pkg)) => (ns, Some(pkg)),
            None => (namespace, None),
        };
        let path = ActionPath::new(ns, pkg, name);
        let binary = exec.get("binary").and_then(Value::as_bool).unwrap_or(false);
        // Java actions once kept their code under "jar".
        let code = match exec.get("code").or_else(|| exec.get("jar")) {
            None | Some(Value::Null) => CodeRef::None,
            Some(Value::String(s)) => CodeRef::Inline(s.clone()),
            Some(Value::Object(att)) => attachment(att),
            Some(_) => CodeRef::Unreadable("`exec.code` is neither text nor an attachment".into()),
        };
        let limits = v.get("limits");
        let limit = |k: &str, d: u64| {
            limits
                .and_then(|l| l.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(d)
        };
        let conductor = v
            .get("annotations")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|x| x.get("key") == Some(&Value::from("conductor")))
            })
            .and_then(|x| x.get("value"))
            .is_some_and(is_truthy);
        Some(Self {
            id: path.to_path_string(),
            path,
            version: v
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("0.0.1")
                .to_string(),
            kind,
            main: exec
                .get("main")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(str::to_string),
            binary,
            code,
            image: exec
                .get("image")
                .and_then(Value::as_str)
                .map(str::to_string),
            timeout_ms: limit("timeout", DEFAULT_TIMEOUT_MS),
            memory_mb: limit("memory", DEFAULT_MEMORY_MB),
            parameters: parameters(v),
            conductor,
        })
    }

    /// The package that holds the action (`ns/pkg`), `None` in the default package.
    pub fn package_id(&self) -> Option<String> {
        self.path
            .package
            .is_some()
            .then(|| self.path.entity_namespace())
    }

    /// The action with its package's parameters merged beneath its own, as OpenWhisk
    /// hands them to the invoker. `resolveActionAndMergeParameters` reads the action's
    /// package and calls `inherit(resolvedPkg.parameters)`
    /// [OW common/scala/src/main/scala/org/apache/openwhisk/core/entity/WhiskAction.scala:622-647],
    /// where `inherit(p) = copy(parameters = p ++ parameters)` (:216; `WhiskAction`'s
    /// own at :148): the package first, the action's parameters win. The controller
    /// then names the merged set's init parameters in the activation message
    /// (`action.parameters.initParameters`, core/controller/.../actions/PrimitiveActions.scala:189;
    /// Parameter.scala:75), and the invoker passes exactly those to `/init`
    /// (`ContainerProxy.partitionArguments`, core/invoker/.../containerpool/ContainerProxy.scala:1091,
    /// called from `initializeAndRun`:782).
    pub fn inherit(&self, package: &[Parameter]) -> ActionDoc {
        ActionDoc {
            parameters: merge_parameters(package, &self.parameters),
            ..self.clone()
        }
    }

    /// The init parameters (`init: true`), in order: the function's environment.
    pub(crate) fn init_parameters(&self) -> impl Iterator<Item = &Parameter> {
        self.parameters.iter().filter(|p| p.init)
    }
}

/// What `owl sync` reads of a package: its parameters, and whether it is a binding.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageDoc {
    /// The document id, `ns/pkg`.
    pub id: String,
    /// Parameters, in order.
    pub parameters: Vec<Parameter>,
    /// For a binding, the package it is bound to (`ns/pkg`).
    pub binding: Option<String>,
}

impl PackageDoc {
    /// Reads a package from its JSON (database document or controller answer);
    /// `None` when it is not a package. OpenWhisk stores `binding: {}` for a package
    /// that is no binding [OW …/entity/WhiskPackage.scala:249-254]; listings say
    /// `false`.
    pub fn from_json(v: &Value) -> Option<Self> {
        match v.get("entityType").and_then(Value::as_str) {
            Some("package") => {}
            // Documents written before `entityType`: a package has a `binding` field
            // and no `exec`.
            None if v.get("binding").is_some() && v.get("exec").is_none() => {}
            _ => return None,
        }
        let namespace = v.get("namespace")?.as_str()?;
        let name = v.get("name")?.as_str()?;
        let binding = v.get("binding").and_then(Value::as_object).and_then(|b| {
            let ns = b.get("namespace")?.as_str()?;
            let name = b.get("name")?.as_str()?;
            Some(format!("{ns}/{name}"))
        });
        Some(Self {
            id: format!("{namespace}/{name}"),
            parameters: parameters(v),
            binding,
        })
    }
}

/// An `Attached` record: `mem:<base64url>` holds the bytes in its name (OpenWhisk
/// inlines attachments up to 16 KB that way), `couch:<name>` or a bare name is a
/// CouchDB attachment of the document; anything else lives in a store owl cannot read.
fn attachment(att: &serde_json::Map<String, Value>) -> CodeRef {
    let Some(name) = att.get("attachmentName").and_then(Value::as_str) else {
        return CodeRef::Unreadable("`exec.code` is an object without `attachmentName`".into());
    };
    match name.split_once(':') {
        Some(("mem", data)) => {
            let engine = base64::engine::general_purpose::URL_SAFE;
            match engine
                .decode(data)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data))
            {
                Ok(bytes) => CodeRef::Bytes(bytes),
                Err(e) => CodeRef::Unreadable(format!("inlined attachment is not base64: {e}")),
            }
        }
        Some(("couch", name)) => CodeRef::CouchAttachment(name.to_string()),
        None => CodeRef::CouchAttachment(name.to_string()),
        Some((scheme, _)) => CodeRef::Unreadable(format!(
            "the code is in OpenWhisk's `{scheme}` attachment store, which owl sync cannot read"
        )),
    }
}

/// Turns attachment bytes or inline text into code, following `binary`.
pub fn code_from(binary: bool, code: &CodeRef, fetched: Option<Vec<u8>>) -> Result<Code, String> {
    let bytes_to_code = |bytes: Vec<u8>| {
        if binary {
            Ok(Code::Zip(bytes))
        } else {
            String::from_utf8(bytes)
                .map(Code::Text)
                .map_err(|_| "the action's source is not UTF-8 text".to_string())
        }
    };
    match (code, fetched) {
        (_, Some(bytes)) => bytes_to_code(bytes),
        (CodeRef::Inline(s), None) if binary => base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map(Code::Zip)
            .map_err(|e| format!("the action's zip is not valid base64: {e}")),
        (CodeRef::Inline(s), None) => Ok(Code::Text(s.clone())),
        (CodeRef::Bytes(b), None) => bytes_to_code(b.clone()),
        (CodeRef::None, None) => Err("the action has no code".into()),
        (CodeRef::Unreadable(why), None) => Err(why.clone()),
        (CodeRef::CouchAttachment(n), None) => {
            Err(format!("the code attachment `{n}` was not fetched"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn database_documents_and_controller_answers() {
        let doc = json!({
            "_id": "guest/utils/hello", "entityType": "action", "namespace": "guest/utils",
            "name": "hello", "version": "0.0.3",
            "exec": {"kind": "nodejs:20", "code": {"attachmentName": "couch:0b5f", "attachmentType": "text/plain"}, "binary": false, "main": "greet"},
            "parameters": [{"key": "a", "value": 1}, {"key": "TOKEN", "value": "s", "init": true}],
            "limits": {"timeout": 3000, "memory": 512},
            "annotations": [{"key": "exec", "value": "nodejs:20"}]
        });
        let a = ActionDoc::from_json(&doc).unwrap();
        assert_eq!(a.id, "guest/utils/hello");
        assert_eq!(a.code, CodeRef::CouchAttachment("0b5f".into()));
        assert_eq!(a.main.as_deref(), Some("greet"));
        assert_eq!((a.timeout_ms, a.memory_mb), (3000, 512));
        let init: Vec<&str> = a.init_parameters().map(|p| p.key.as_str()).collect();
        assert_eq!(init, ["TOKEN"]);
        assert_eq!(a.package_id().as_deref(), Some("guest/utils"));
        assert!(!a.conductor);

        let inline = json!({"namespace": "guest", "name": "z", "exec": {"kind": "python:3", "code": "UEsDBA==", "binary": true}});
        let a = ActionDoc::from_json(&inline).unwrap();
        assert_eq!(
            code_from(a.binary, &a.code, None).unwrap(),
            Code::Zip(b"PK\x03\x04".to_vec())
        );
        assert_eq!((a.timeout_ms, a.memory_mb), (60_000, 256));

        let mem = json!({"namespace": "guest", "name": "m", "exec": {"kind": "nodejs:20", "code": {"attachmentName": "mem:ZnVuY3Rpb24gbWFpbigpIHt9"}}});
        let a = ActionDoc::from_json(&mem).unwrap();
        assert_eq!(
            code_from(a.binary, &a.code, None).unwrap(),
            Code::Text("function main() {}".into())
        );

        let s3 = json!({"namespace": "guest", "name": "s", "exec": {"kind": "nodejs:20", "code": {"attachmentName": "s3:abc"}}});
        let a = ActionDoc::from_json(&s3).unwrap();
        assert!(
            code_from(a.binary, &a.code, None)
                .unwrap_err()
                .contains("`s3` attachment store")
        );

        let package = json!({"entityType": "package", "namespace": "guest", "name": "p"});
        assert!(ActionDoc::from_json(&package).is_none());
        let seq = json!({"namespace": "guest", "name": "s", "exec": {"kind": "sequence", "components": ["/guest/a"]}});
        assert_eq!(ActionDoc::from_json(&seq).unwrap().code, CodeRef::None);
    }

    /// `(key, value, init)` of each parameter, in order.
    fn listed(ps: &[Parameter]) -> Vec<(&str, Value, bool)> {
        ps.iter()
            .map(|p| (p.key.as_str(), p.value.clone(), p.init))
            .collect()
    }

    /// OpenWhisk's `inherit(p) = copy(parameters = p ++ parameters)`
    /// [OW common/scala/src/main/scala/org/apache/openwhisk/core/entity/WhiskAction.scala:216,
    /// :148; `++` at Parameter.scala:56]: the package's parameters first, the action's
    /// win, a redefined parameter replaced whole (its `init` flag too).
    #[test]
    fn an_action_inherits_its_package_parameters_beneath_its_own() {
        let package = PackageDoc::from_json(&json!({
            "_id": "guest/utils", "entityType": "package", "namespace": "guest", "name": "utils",
            "binding": {}, "version": "0.0.2",
            "parameters": [
                {"key": "REGION", "value": "eu-west-1", "init": true},
                {"key": "TOKEN", "value": "package", "init": true},
                {"key": "MODE", "value": "fast", "init": true},
                {"key": "limit", "value": 10}
            ]
        }))
        .unwrap();
        assert_eq!(package.id, "guest/utils");
        assert_eq!(package.binding, None);
        let action = ActionDoc::from_json(&json!({
            "entityType": "action", "namespace": "guest/utils", "name": "hello",
            "exec": {"kind": "nodejs:20", "code": "function main() {}"},
            "parameters": [
                {"key": "TOKEN", "value": "action", "init": true},
                {"key": "MODE", "value": "slow"},
                {"key": "DEBUG", "value": 1, "init": true}
            ]
        }))
        .unwrap();
        let merged = action.inherit(&package.parameters);
        assert_eq!(
            listed(&merged.parameters),
            [
                ("REGION", json!("eu-west-1"), true),
                ("TOKEN", json!("action"), true),
                ("MODE", json!("slow"), false),
                ("limit", json!(10), false),
                ("DEBUG", json!(1), true),
            ]
        );
        let init: Vec<&str> = merged.init_parameters().map(|p| p.key.as_str()).collect();
        assert_eq!(init, ["REGION", "TOKEN", "DEBUG"]);
        // The action as read is left as it was.
        assert_eq!(action.parameters.len(), 3);
        // No package parameters: the action's own, the last of a name winning.
        let twice = vec![
            Parameter {
                key: "A".into(),
                value: json!(1),
                init: true,
                encrypted: false,
            },
            Parameter {
                key: "A".into(),
                value: json!(2),
                init: false,
                encrypted: false,
            },
        ];
        assert_eq!(
            listed(&merge_parameters(&[], &twice)),
            [("A", json!(2), false)]
        );
    }

    #[test]
    fn packages_and_bindings() {
        let binding = json!({"entityType": "package", "namespace": "guest", "name": "mine",
            "binding": {"namespace": "alice", "name": "pub"},
            "parameters": [{"key": "K", "value": "v", "init": true, "encryption": "AES-256"}]});
        let b = PackageDoc::from_json(&binding).unwrap();
        assert_eq!(b.binding.as_deref(), Some("alice/pub"));
        assert!(b.parameters[0].encrypted && b.parameters[0].init);
        // A controller listing says `binding: false`; documents from before
        // `entityType` are told by `binding` without `exec`.
        let old = json!({"namespace": "guest", "name": "p", "binding": false});
        assert_eq!(PackageDoc::from_json(&old).unwrap().binding, None);
        let action = json!({"entityType": "action", "namespace": "guest", "name": "a", "exec": {"kind": "nodejs:20"}});
        assert!(PackageDoc::from_json(&action).is_none());
        let untyped_action = json!({"namespace": "guest", "name": "a", "exec": {"kind": "nodejs:20"}, "binding": {}});
        assert!(PackageDoc::from_json(&untyped_action).is_none());
        assert_eq!(
            ActionDoc::from_json(&untyped_action).unwrap().package_id(),
            None
        );
    }
}
