//! Entitlement and package resolution exactly as OpenWhisk decides them (reference
//! §4.4), for metadata sources that read OpenWhisk's documents themselves (CouchDB's
//! whisks database, or static documents in the policy).
//!
//! - Own namespace: full rights; a missing package or action is 404, an entity of
//!   another type 409, an unreadable one 500.
//! - Another namespace's default package: 403 naming `ns/action`, whatever exists.
//! - Another namespace's package: allowed only when published; bindings are usable
//!   only by their owner and only when the bound package is public or owned
//!   (recursively); refusals are 403 naming the package, and never reveal existence.
//! - Parameters: bound package < binding < action.

use crate::error::WhiskError;
use crate::whisk::{ActionMetadata, ActionPath};
use serde_json::{Map, Value};
use std::future::Future;

/// One lookup in OpenWhisk's whisks database.
#[derive(Debug, Clone)]
pub enum Doc {
    /// No document with that id.
    Missing,
    /// The document.
    Found(Value),
}

/// Outcome of a resolution: `Ok(Ok(..))` the action; `Ok(Err(..))` a definite
/// rejection (cacheable); `Err(..)` the source failed (not cacheable).
pub(crate) type Resolution = Result<Result<ActionMetadata, WhiskError>, WhiskError>;

const CONFORMANCE: &str = "Resource by this name exists but is not in this collection.";
const CORRUPTED: &str = "Resource is corrupted and cannot be read.";

fn conflict() -> WhiskError {
    let mut e = WhiskError::bad_request(CONFORMANCE);
    e.status = http::StatusCode::CONFLICT;
    e
}

fn corrupted() -> WhiskError {
    let mut e = WhiskError::internal();
    e.message = CORRUPTED.into();
    e
}

fn circular(name: &str) -> WhiskError {
    let mut e = WhiskError::bad_request(format!(
        "Package binding '{name}' contains a circular reference."
    ));
    e.status = http::StatusCode::UNPROCESSABLE_ENTITY;
    e
}

enum Typed {
    Missing,
    WrongType,
    Corrupt,
    Ok(Value),
}

fn typed(doc: Doc, entity_type: &str) -> Typed {
    match doc {
        Doc::Missing => Typed::Missing,
        Doc::Found(v) => match v.get("entityType").and_then(Value::as_str) {
            Some(t) if t == entity_type => {
                if v.get("name").and_then(Value::as_str).is_some()
                    && v.get("namespace").and_then(Value::as_str).is_some()
                {
                    Typed::Ok(v)
                } else {
                    Typed::Corrupt
                }
            }
            // Documents written before entityType existed are recognised by shape.
            None if entity_type == "action" && v.get("exec").is_some() => Typed::Ok(v),
            None if entity_type == "package" && v.get("binding").is_some() => Typed::Ok(v),
            _ => Typed::WrongType,
        },
    }
}

/// `(namespace, name)` of a package document's binding, if it is one.
fn binding_of(pkg: &Value) -> Option<(String, String)> {
    let b = pkg.get("binding")?.as_object()?;
    Some((
        b.get("namespace")?.as_str()?.to_string(),
        b.get("name")?.as_str()?.to_string(),
    ))
}

fn parameters(doc: &Value) -> Vec<Value> {
    doc.get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `base` overridden by `over`, by key, keeping first-seen order.
/// Linear in the parameters: a tenant's documents decide how many there are.
fn merge_params(base: Vec<Value>, over: Vec<Value>) -> Vec<Value> {
    fn key(p: &Value) -> Option<&str> {
        p.get("key").and_then(Value::as_str)
    }
    let overridden: std::collections::HashSet<Option<&str>> = over.iter().map(key).collect();
    let mut out: Vec<Value> = base
        .iter()
        .filter(|p| !overridden.contains(&key(p)))
        .cloned()
        .collect();
    out.extend(over);
    out
}

/// May the caller read package `ns/name` (owner flag as OpenWhisk computes it)?
/// `Err` for the owner-visible errors (404, 409, 500, 422) and source failures.
async fn package_readable<F, Fut>(
    caller: &str,
    owner: bool,
    ns: &str,
    name: &str,
    get: &F,
    depth: u8,
) -> Result<Result<bool, WhiskError>, WhiskError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Doc, WhiskError>>,
{
    let id = format!("{ns}/{name}");
    match typed(get(id.clone()).await?, "package") {
        Typed::Missing => Ok(if owner {
            Err(WhiskError::not_found())
        } else {
            Ok(false)
        }),
        Typed::WrongType => Ok(if owner { Err(conflict()) } else { Ok(false) }),
        Typed::Corrupt => Ok(if owner { Err(corrupted()) } else { Ok(false) }),
        Typed::Ok(pkg) => match binding_of(&pkg) {
            None => {
                Ok(Ok(owner
                    || pkg.get("publish").and_then(Value::as_bool)
                        == Some(true)))
            }
            Some(_) if !owner => Ok(Ok(false)),
            Some((bns, bname)) => {
                if bns == ns && bname == name || depth > 8 {
                    return Ok(Err(circular(&format!("/{bns}/{bname}"))));
                }
                Box::pin(package_readable(
                    caller,
                    caller == bns,
                    &bns,
                    &bname,
                    get,
                    depth + 1,
                ))
                .await
            }
        },
    }
}

/// May `caller` read package `namespace/name`, as OpenWhisk checks the package of an
/// action it activates (ActionCollection.implicitRights → PackageCollection
/// .checkPackageReadPermission): `Err` with the owner-visible refusal (404, 409, 422,
/// 500) or 403, reading documents with `get`.
pub async fn package<F, Fut>(
    caller: &str,
    namespace: &str,
    name: &str,
    get: F,
) -> Result<Result<(), WhiskError>, WhiskError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Doc, WhiskError>>,
{
    let owner = caller == namespace;
    Ok(
        match package_readable(caller, owner, namespace, name, &get, 0).await? {
            Ok(true) => Ok(()),
            Ok(false) => Err(WhiskError::forbidden(&format!("{namespace}/{name}"))),
            Err(e) => Err(e),
        },
    )
}

/// Resolves an invocation of `path` (namespace resolved) by `caller`, reading
/// documents with `get` (document id → document).
pub async fn resolve<F, Fut>(caller: &str, path: &ActionPath, get: F) -> Resolution
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Doc, WhiskError>>,
{
    let owner = caller == path.namespace;
    let Some(pkg) = &path.package else {
        if !owner {
            return Ok(Err(WhiskError::forbidden(&path.to_path_string())));
        }
        return Ok(action_doc(get(path.to_path_string()).await?, Vec::new()));
    };
    match package_readable(caller, owner, &path.namespace, pkg, &get, 0).await? {
        Err(e) => return Ok(Err(e)),
        Ok(false) => {
            return Ok(Err(WhiskError::forbidden(&format!(
                "{}/{pkg}",
                path.namespace
            ))));
        }
        Ok(true) => {}
    }
    // Resolve bindings to the package that holds the action, merging parameters.
    let mut params: Vec<Value> = Vec::new();
    let (mut ns, mut name) = (path.namespace.clone(), pkg.clone());
    for _ in 0..10 {
        let Typed::Ok(doc) = typed(get(format!("{ns}/{name}")).await?, "package") else {
            return Ok(Err(WhiskError::not_found()));
        };
        params = merge_params(parameters(&doc), params);
        match binding_of(&doc) {
            Some((bns, bname)) => (ns, name) = (bns, bname),
            None => break,
        }
    }
    let resolved = ActionPath::new(&ns, Some(&name), &path.action);
    Ok(action_doc(get(resolved.to_path_string()).await?, params))
}

fn action_doc(doc: Doc, package_params: Vec<Value>) -> Result<ActionMetadata, WhiskError> {
    match typed(doc, "action") {
        Typed::Missing => Err(WhiskError::not_found()),
        Typed::WrongType => Err(conflict()),
        Typed::Corrupt => Err(corrupted()),
        Typed::Ok(mut doc) => {
            let merged = merge_params(package_params, parameters(&doc));
            if let Some(o) = doc.as_object_mut() {
                o.insert("parameters".into(), Value::Array(merged));
            }
            ActionMetadata::from_json(&doc).ok_or_else(corrupted)
        }
    }
}

/// An in-memory set of documents (static metadata from the policy).
pub fn lookup_in(docs: &Map<String, Value>, id: &str) -> Doc {
    docs.get(id).cloned().map_or(Doc::Missing, Doc::Found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docs() -> Map<String, Value> {
        let mut m = Map::new();
        let mut add = |v: Value| {
            m.insert(v["_id"].as_str().unwrap().to_string(), v);
        };
        let action = |id: &str, ns: &str, name: &str, params: Value| json!({"_id": id, "entityType": "action", "namespace": ns, "name": name, "exec": {"kind": "nodejs:20"}, "parameters": params, "annotations": [], "limits": {"timeout": 1000, "memory": 128}});
        let package = |id: &str,
                       ns: &str,
                       name: &str,
                       publish: bool,
                       binding: Value,
                       params: Value| {
            json!({"_id": id, "entityType": "package", "namespace": ns, "name": name, "publish": publish, "binding": binding, "parameters": params})
        };
        add(action("guest/a", "guest", "a", json!([])));
        add(action("alice/a", "alice", "a", json!([])));
        add(action(
            "alice/pub/x",
            "alice/pub",
            "x",
            json!([{"key": "p", "value": "action"}]),
        ));
        add(action("alice/priv/x", "alice/priv", "x", json!([])));
        add(package(
            "alice/pub",
            "alice",
            "pub",
            true,
            json!({}),
            json!([{"key": "p", "value": "pkg"}, {"key": "q", "value": "pkg"}]),
        ));
        add(package(
            "alice/priv",
            "alice",
            "priv",
            false,
            json!({}),
            json!([]),
        ));
        add(package(
            "guest/b",
            "guest",
            "b",
            false,
            json!({"namespace": "alice", "name": "pub"}),
            json!([{"key": "q", "value": "binding"}]),
        ));
        add(package(
            "guest/bp",
            "guest",
            "bp",
            false,
            json!({"namespace": "alice", "name": "priv"}),
            json!([]),
        ));
        add(package(
            "guest/self",
            "guest",
            "self",
            false,
            json!({"namespace": "guest", "name": "self"}),
            json!([]),
        ));
        add(package(
            "alice/bind",
            "alice",
            "bind",
            true,
            json!({"namespace": "alice", "name": "pub"}),
            json!([]),
        ));
        add(
            json!({"_id": "guest/trig", "entityType": "trigger", "namespace": "guest", "name": "trig"}),
        );
        m
    }

    async fn check(caller: &str, path: &str) -> Result<ActionMetadata, (u16, String)> {
        let d = docs();
        let r = resolve(caller, &ActionPath::parse(path).unwrap(), |id| {
            let doc = lookup_in(&d, &id);
            async move { Ok(doc) }
        })
        .await
        .unwrap();
        r.map_err(|e| (e.status.as_u16(), e.message))
    }

    fn forbidden(what: &str) -> (u16, String) {
        (
            403,
            format!("The supplied authentication is not authorized to access '{what}'."),
        )
    }

    #[tokio::test]
    async fn the_reference_matrix() {
        assert!(check("guest", "guest/a").await.is_ok());
        assert_eq!(check("guest", "guest/missing").await.unwrap_err().0, 404);
        assert_eq!(
            check("guest", "guest/trig").await.unwrap_err(),
            (409, CONFORMANCE.to_string())
        );
        // another namespace's default package: 403 whether it exists or not
        assert_eq!(
            check("guest", "alice/a").await.unwrap_err(),
            forbidden("alice/a")
        );
        assert_eq!(
            check("guest", "alice/nope").await.unwrap_err(),
            forbidden("alice/nope")
        );
        // another namespace's packages
        let m = check("guest", "alice/pub/x").await.unwrap();
        assert_eq!(m.path.to_path_string(), "alice/pub/x");
        assert_eq!(
            check("guest", "alice/priv/x").await.unwrap_err(),
            forbidden("alice/priv")
        );
        assert_eq!(
            check("guest", "alice/ghost/x").await.unwrap_err(),
            forbidden("alice/ghost")
        );
        assert_eq!(
            check("guest", "alice/pub/missing").await.unwrap_err().0,
            404
        );
        // someone else's binding is not usable, even to a public package
        assert_eq!(
            check("guest", "alice/bind/x").await.unwrap_err(),
            forbidden("alice/bind")
        );
        // own package missing
        assert_eq!(check("guest", "guest/nopkg/x").await.unwrap_err().0, 404);
    }

    #[tokio::test]
    async fn bindings_and_parameters() {
        let m = check("guest", "guest/b/x").await.unwrap();
        assert_eq!(m.path.to_path_string(), "alice/pub/x");
        let params: Vec<(String, Value)> = m
            .parameters
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        assert_eq!(
            params,
            vec![
                ("q".into(), json!("binding")),
                ("p".into(), json!("action"))
            ]
        );
        // a binding to a private package of another namespace
        assert_eq!(
            check("guest", "guest/bp/x").await.unwrap_err(),
            forbidden("guest/bp")
        );
        assert_eq!(check("guest", "guest/self/x").await.unwrap_err().0, 422);
        // the owner may use its own binding to its own public package
        assert!(check("alice", "alice/bind/x").await.is_ok());
    }
}
