//! The gateway's module layers, checked: every top-level module sits in one layer and
//! may name only modules of layers below its own, so there are no import cycles and
//! no upward imports. The compiler enforces the crate boundaries (ARCHITECTURE.md);
//! inside the `owl` crate this test does, by reading every `crate::…` path in `src/`.
//! Test modules (`#[cfg(test)] mod …` at the end of a file) may reach anywhere.
//!
//! A new module goes into the layer that matches what it uses; a failure names the
//! file and the import to move.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom first. A module may use modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    // Vocabulary and plumbing that use nothing of owl's.
    &["error", "shutdown"],
    // The policy file.
    &["policy"],
    // What a request carries through every layer above.
    &["context"],
    // Clients of the outside world and in-process accounting.
    &["auth", "couchdb", "controller", "limits"],
    // Built on those clients.
    &["metadata", "activation"],
    // The shared state of one running gateway.
    &["gateway"],
    // Request handlers and what changes the gateway's state.
    &["invoke", "api", "reload"],
    // Sockets and dispatch.
    &["server"],
    // One gateway's lifecycle: start, serve, shut down.
    &["serve"],
    // The other deployables' logic.
    &["sync", "standin"],
    &["demo"],
    &["cli"],
];

/// Crates of the workspace the gateway re-exports under its root (`owl::whisk`, …):
/// below every module, and kept there by the compiler.
const EXTERNAL: &[&str] = &["whisk", "net", "telemetry", "lambda", "loadtest"];

/// The one crate of the workspace that may depend on the AWS SDK.
const AWS_CRATE: &str = "owl-lambda";

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text without its trailing test module.
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    }
}

fn identifier_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a source text names through `crate::`, with the line of
/// each first mention. Handles `crate::a::…` and `use crate::{a, b::c}`.
fn crate_paths(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    for (at, _) in text.match_indices("crate::") {
        // `owl_crate::` or `$crate::` is not ours.
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start => {
                        let id = identifier_at(&group[i..]);
                        if !id.is_empty() {
                            found.push((id.to_string(), line_of(at)));
                        }
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let id = identifier_at(rest);
            if !id.is_empty() {
                found.push((id.to_string(), line_of(at)));
            }
        }
    }
    found
}

/// Every top-level module's file texts (test modules cut off).
fn sources() -> BTreeMap<String, Vec<(PathBuf, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut by_module: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" || module == "layering" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
        let text = without_tests(&text).to_string();
        by_module.entry(module).or_default().push((path, text));
    }
    by_module
}

#[test]
fn every_module_has_a_layer() {
    let lib = include_str!("lib.rs");
    for line in lib.lines() {
        if let Some(m) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
        {
            let m = m.trim_end_matches(';');
            if m == "layering" {
                continue;
            }
            assert!(
                layer_of(m).is_some(),
                "module `{m}` is in no layer: add it to LAYERS in src/layering.rs"
            );
        }
    }
    for module in sources().keys() {
        assert!(
            layer_of(module).is_some(),
            "module `{module}` is in no layer: add it to LAYERS in src/layering.rs"
        );
    }
}

/// The imports of `module`'s `text` that do not point to a lower layer: a message
/// per offending line.
fn not_down(module: &str, text: &str) -> Vec<String> {
    let own = layer_of(module).expect("checked by every_module_has_a_layer");
    let mut found = Vec::new();
    for (target, line) in crate_paths(text) {
        if target == module || EXTERNAL.contains(&target.as_str()) {
            continue; // itself, or a re-exported crate below the gateway
        }
        let Some(theirs) = layer_of(&target) else {
            continue; // a crate-root item, not a module
        };
        if theirs >= own {
            found.push(format!(
                "{line}: `{module}` (layer {own}) names `crate::{target}` (layer {theirs})"
            ));
        }
    }
    found
}

#[test]
fn imports_point_down_only() {
    let mut upward = Vec::new();
    for (module, files) in sources() {
        for (path, text) in files {
            for v in not_down(&module, &text) {
                upward.push(format!("{}:{v}", path.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not point down (src/layering.rs lists the layers):\n{}",
        upward.join("\n")
    );
}

/// The names of the `aws-*` packages a manifest's `[dependencies]` lists.
fn aws_dependencies(manifest: &str) -> Vec<String> {
    let doc: toml::Table = manifest.parse().expect("a valid Cargo.toml");
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|deps| {
            deps.keys()
                .filter(|k| k.starts_with("aws-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// A package without an `aws-*` dependency cannot name an AWS SDK type: the compiler
/// refuses it. This keeps the manifests that way — the gateway package and every
/// crate but `owl-lambda` (dev-dependencies, for tests, may use the SDK as a client).
#[test]
fn only_owl_lambda_depends_on_the_aws_sdk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifests = vec![("owl".to_string(), root.join("Cargo.toml"))];
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/ is readable") {
        let dir = entry.expect("directory entry").path();
        let name = dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        manifests.push((name, dir.join("Cargo.toml")));
    }
    let mut found = Vec::new();
    for (name, path) in manifests {
        let text = std::fs::read_to_string(&path).expect("readable manifest");
        let aws = aws_dependencies(&text);
        if name == AWS_CRATE {
            assert!(!aws.is_empty(), "{AWS_CRATE} is where the AWS SDK lives");
        } else if !aws.is_empty() {
            found.push(format!("{}: {}", path.display(), aws.join(", ")));
        }
    }
    assert!(
        found.is_empty(),
        "AWS SDK dependencies outside {AWS_CRATE} (reach Lambda through owl::lambda):\n{}",
        found.join("\n")
    );
    assert_eq!(
        aws_dependencies(
            "[dependencies]\naws-config = \"1\"\nbytes = \"1\"\n[dev-dependencies]\naws-sdk-lambda = \"1\""
        ),
        ["aws-config"]
    );
}

#[test]
fn the_parser_sees_every_form_of_path() {
    let text = "use crate::a::b;\nfn f() { crate::c::d(); }\nuse crate::{e, f::g, h::{i, j}};\nmacro $crate::x; owl_crate::y";
    let names: Vec<_> = crate_paths(text).into_iter().map(|(m, _)| m).collect();
    assert_eq!(names, ["a", "c", "e", "f", "h"]);
    assert_eq!(without_tests("x\n#[cfg(test)]\nmod tests {}"), "x\n");
}

#[test]
fn upward_and_sideways_imports_are_refused() {
    assert_eq!(
        not_down("error", "//! x\nuse crate::gateway::Gateway;"),
        ["2: `error` (layer 0) names `crate::gateway` (layer 5)"]
    );
    // Same layer: two modules of one layer naming each other would be a cycle.
    assert_eq!(not_down("couchdb", "crate::limits::Slot").len(), 1);
    assert!(
        not_down(
            "gateway",
            "use crate::net::tls; use crate::error::WhiskError;"
        )
        .is_empty()
    );
}
