//! The function package: the action's code laid out as the owl runtime expects it
//! (docs/runtime.md) — `action.js` / `action.py` for source, `action.zip` for a zip
//! (extracted by the runtime at init), named by the handler — plus `bootstrap` when
//! the runtime is bundled, and the environment (`OW_ACTION_KIND`, `OW_ACTION_MAIN`,
//! init parameters). Zips are built byte for byte reproducibly, so an unchanged action
//! yields the same `CodeSha256` and `owl sync` can tell that nothing needs uploading.

use super::action::{ActionDoc, Code};
use base64::Engine;
use sha2::Digest;
use std::collections::BTreeMap;

/// Largest zip Lambda accepts in a direct upload (`ZipFile`).
pub(crate) const MAX_ZIP_BYTES: usize = 50 * 1024 * 1024;
/// Lambda's limit on all environment variables of a function together.
pub(crate) const MAX_ENVIRONMENT_BYTES: usize = 4 * 1024;

/// A built function package.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// The zip.
    pub zip: Vec<u8>,
    /// Base64 SHA-256 of the zip, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    /// The function's handler: the code file's name.
    pub handler: String,
    /// The function's environment.
    pub environment: BTreeMap<String, String>,
}

/// How the runtime would run `kind`, or `None` if the shipped launchers cannot run
/// source text of that kind.
fn source_file(kind: &str) -> Option<&'static str> {
    match crate::whisk::contract::Kind::parse(kind) {
        crate::whisk::contract::Kind::Nodejs => Some("action.js"),
        crate::whisk::contract::Kind::Python => Some("action.py"),
        crate::whisk::contract::Kind::ActionLoop => None,
    }
}

/// Builds the package of `doc` with `code`; `bootstrap` is bundled when given.
/// `Err` says why the action cannot become a function.
pub(crate) fn build(
    doc: &ActionDoc,
    code: &Code,
    bootstrap: Option<&[u8]>,
) -> Result<Package, String> {
    let (file, bytes): (&str, &[u8]) = match code {
        Code::Text(src) => {
            let file = source_file(&doc.kind).ok_or_else(|| {
                format!(
                    "source actions of kind {} need their runtime's compiler; owl runs Node.js and Python sources, and other kinds as a zip holding an ActionLoop `exec`",
                    doc.kind
                )
            })?;
            (file, src.as_bytes())
        }
        Code::Zip(z) => ("action.zip", z.as_slice()),
    };
    let environment = environment(doc)?;
    let mut files: Vec<(&str, &[u8], bool)> = Vec::new();
    if let Some(b) = bootstrap {
        files.push(("bootstrap", b, true));
    }
    files.push((file, bytes, false));
    let zip = zip(&files).map_err(|e| format!("cannot build the function zip: {e}"))?;
    if zip.len() > MAX_ZIP_BYTES {
        return Err(format!(
            "the function zip is {} MB; Lambda accepts at most 50 MB uploaded directly",
            zip.len() / (1024 * 1024)
        ));
    }
    Ok(Package {
        code_sha256: sha256_b64(&zip),
        zip,
        handler: file.to_string(),
        environment,
    })
}

/// The function's environment: the kind and entry point for the runtime, and the
/// action's init parameters (strings as they are, other values as JSON) — for an
/// action in a package, those of its parameters merged with the package's
/// ([`ActionDoc::inherit`]), as OpenWhisk initialises it.
pub(crate) fn environment(doc: &ActionDoc) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    env.insert("OW_ACTION_KIND".to_string(), doc.kind.clone());
    if let Some(main) = &doc.main
        && main != "main"
    {
        env.insert("OW_ACTION_MAIN".to_string(), main.clone());
    }
    for p in doc.init_parameters() {
        if p.encrypted {
            return Err(format!(
                "init parameter `{}` is stored encrypted; owl cannot pass it on",
                p.key
            ));
        }
        if !is_env_name(&p.key) {
            return Err(format!(
                "init parameter `{}` cannot be an environment variable (letters, digits and _, starting with a letter)",
                p.key
            ));
        }
        if is_reserved(&p.key) {
            return Err(format!(
                "init parameter `{}` would replace a variable reserved by Lambda or the owl runtime",
                p.key
            ));
        }
        let value = match &p.value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        env.insert(p.key.clone(), value);
    }
    let size: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ENVIRONMENT_BYTES {
        return Err(format!(
            "the init parameters need {size} bytes of environment; Lambda allows 4 KB"
        ));
    }
    Ok(env)
}

fn is_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_reserved(k: &str) -> bool {
    const RESERVED: &[&str] = &[
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "TZ",
        "LANG",
        "PATH",
        "LD_LIBRARY_PATH",
        "TMPDIR",
        "NODE_PATH",
        "PYTHONPATH",
    ];
    let upper = k.to_ascii_uppercase();
    RESERVED.contains(&upper.as_str())
        || ["AWS_", "LAMBDA_", "OW_", "__OW_", "OWL_"]
            .iter()
            .any(|p| upper.starts_with(p))
}

/// Base64 SHA-256, the form of Lambda's `CodeSha256`.
pub(crate) fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// A reproducible zip: fixed timestamps, fixed order, `bootstrap` marked 0755.
fn zip(files: &[(&str, &[u8], bool)]) -> zip::result::ZipResult<Vec<u8>> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    for (name, data, exec) in files {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(if *exec { 0o755 } else { 0o644 });
        z.start_file(*name, opts)?;
        z.write_all(data)?;
    }
    z.finish()?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::action::{CodeRef, Parameter};
    use serde_json::json;

    fn doc(kind: &str) -> ActionDoc {
        ActionDoc {
            path: crate::whisk::ActionPath::new("guest", None, "hello"),
            id: "guest/hello".into(),
            version: "0.0.1".into(),
            kind: kind.into(),
            main: None,
            binary: false,
            code: CodeRef::None,
            image: None,
            timeout_ms: 60_000,
            memory_mb: 256,
            parameters: Vec::new(),
            conductor: false,
        }
    }

    #[test]
    fn source_and_zips_are_laid_out_for_the_runtime_and_reproducible() {
        let code = Code::Text("function main() { return {}; }".into());
        let a = build(&doc("nodejs:20"), &code, Some(b"#!/bin/sh\n")).unwrap();
        let b = build(&doc("nodejs:20"), &code, Some(b"#!/bin/sh\n")).unwrap();
        assert_eq!(a.zip, b.zip, "the same action must give the same zip");
        assert_eq!(a.handler, "action.js");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a.zip.clone())).unwrap();
        let boot = archive.by_name("bootstrap").unwrap();
        assert_eq!(boot.unix_mode().unwrap() & 0o777, 0o755);
        drop(boot);
        assert!(archive.by_name("action.js").is_ok());
        assert_eq!(a.environment["OW_ACTION_KIND"], "nodejs:20");

        let py = build(
            &doc("python:3.11"),
            &Code::Text("def main(a): return a".into()),
            None,
        )
        .unwrap();
        assert_eq!(py.handler, "action.py");
        assert_ne!(py.code_sha256, a.code_sha256);
        let z = build(&doc("go:1.22"), &Code::Zip(b"PK".to_vec()), None).unwrap();
        assert_eq!(z.handler, "action.zip");
        let err = build(&doc("go:1.22"), &Code::Text("package main".into()), None).unwrap_err();
        assert!(err.contains("go:1.22"), "{err}");
    }

    #[test]
    fn init_parameters_become_the_environment() {
        let mut d = doc("nodejs:20");
        d.main = Some("greet".into());
        d.parameters = vec![
            Parameter {
                key: "TOKEN".into(),
                value: json!("abc"),
                init: true,
                encrypted: false,
            },
            Parameter {
                key: "LIMITS".into(),
                value: json!({"n": 1}),
                init: true,
                encrypted: false,
            },
            Parameter {
                key: "name".into(),
                value: json!("a run argument"),
                init: false,
                encrypted: false,
            },
        ];
        let env = environment(&d).unwrap();
        assert_eq!(env["TOKEN"], "abc");
        assert_eq!(env["LIMITS"], "{\"n\":1}");
        assert_eq!(env["OW_ACTION_MAIN"], "greet");
        assert!(
            !env.contains_key("name"),
            "run arguments are no environment"
        );
        for (key, encrypted, why) in [
            ("AWS_REGION", false, "reserved"),
            ("my-key", false, "cannot be an environment variable"),
            ("SECRET", true, "encrypted"),
        ] {
            d.parameters = vec![Parameter {
                key: key.into(),
                value: json!("x"),
                init: true,
                encrypted,
            }];
            let err = environment(&d).unwrap_err();
            assert!(err.contains(why), "{key}: {err}");
        }
        d.parameters = vec![Parameter {
            key: "BIG".into(),
            value: json!("x".repeat(5000)),
            init: true,
            encrypted: false,
        }];
        assert!(environment(&d).unwrap_err().contains("4 KB"));
    }

    fn param(key: &str, value: serde_json::Value, init: bool) -> Parameter {
        Parameter {
            key: key.into(),
            value,
            init,
            encrypted: false,
        }
    }

    /// The environment of an action in a package is what OpenWhisk's invoker passes
    /// to `/init`: the init parameters of the package's parameters merged under the
    /// action's [OW …/entity/WhiskAction.scala:216 `inherit`; …/containerpool/
    /// ContainerProxy.scala:1091 `partitionArguments`].
    #[test]
    fn a_package_s_init_parameters_are_in_the_environment_under_the_action_s() {
        let mut d = doc("nodejs:20");
        d.parameters = vec![
            param("TOKEN", json!("action"), true),
            param("MODE", json!("slow"), false),
        ];
        let package = [
            param("REGION", json!("eu-west-1"), true),
            param("TOKEN", json!("package"), true),
            param("MODE", json!("fast"), true),
            param("limit", json!(10), false),
            param("OPTIONS", json!({"retries": 2}), true),
        ];
        let env = environment(&d.inherit(&package)).unwrap();
        assert_eq!(env["REGION"], "eu-west-1");
        assert_eq!(env["TOKEN"], "action", "the action's own value wins");
        assert_eq!(env["OPTIONS"], "{\"retries\":2}");
        assert!(
            !env.contains_key("MODE"),
            "redefined by the action without `init`, it is a run argument"
        );
        assert!(!env.contains_key("limit"), "not an init parameter");
        assert_eq!(env.len(), 4, "{env:?}"); // OW_ACTION_KIND, REGION, TOKEN, OPTIONS
        // The package's checks apply to its parameters too.
        let encrypted = [Parameter {
            encrypted: true,
            ..param("SECRET", json!("x"), true)
        }];
        assert!(
            environment(&d.inherit(&encrypted))
                .unwrap_err()
                .contains("encrypted")
        );
    }
}
