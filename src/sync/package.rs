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
pub const MAX_ZIP_BYTES: usize = 50 * 1024 * 1024;
/// Lambda's limit on all environment variables of a function together.
pub const MAX_ENVIRONMENT_BYTES: usize = 4 * 1024;

/// A built function package.
#[derive(Debug, Clone)]
pub struct Package {
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
    match crate::runtime::config::Kind::parse(kind) {
        crate::runtime::config::Kind::Nodejs => Some("action.js"),
        crate::runtime::config::Kind::Python => Some("action.py"),
        crate::runtime::config::Kind::ActionLoop => None,
    }
}

/// Builds the package of `doc` with `code`; `bootstrap` is bundled when given.
/// `Err` says why the action cannot become a function.
pub fn build(doc: &ActionDoc, code: &Code, bootstrap: Option<&[u8]>) -> Result<Package, String> {
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
/// action's init parameters (strings as they are, other values as JSON).
pub fn environment(doc: &ActionDoc) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    env.insert("OW_ACTION_KIND".to_string(), doc.kind.clone());
    if let Some(main) = &doc.main
        && main != "main"
    {
        env.insert("OW_ACTION_MAIN".to_string(), main.clone());
    }
    for p in &doc.init_parameters {
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
pub fn sha256_b64(bytes: &[u8]) -> String {
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
    use crate::sync::action::{CodeRef, InitParameter};
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
            init_parameters: Vec::new(),
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
        d.init_parameters = vec![
            InitParameter {
                key: "TOKEN".into(),
                value: json!("abc"),
                encrypted: false,
            },
            InitParameter {
                key: "LIMITS".into(),
                value: json!({"n": 1}),
                encrypted: false,
            },
        ];
        let env = environment(&d).unwrap();
        assert_eq!(env["TOKEN"], "abc");
        assert_eq!(env["LIMITS"], "{\"n\":1}");
        assert_eq!(env["OW_ACTION_MAIN"], "greet");
        for (key, encrypted, why) in [
            ("AWS_REGION", false, "reserved"),
            ("my-key", false, "cannot be an environment variable"),
            ("SECRET", true, "encrypted"),
        ] {
            d.init_parameters = vec![InitParameter {
                key: key.into(),
                value: json!("x"),
                encrypted,
            }];
            let err = environment(&d).unwrap_err();
            assert!(err.contains(why), "{key}: {err}");
        }
        d.init_parameters = vec![InitParameter {
            key: "BIG".into(),
            value: json!("x".repeat(5000)),
            encrypted: false,
        }];
        assert!(environment(&d).unwrap_err().contains("4 KB"));
    }
}
