//! `[sync]` and `[sync.layers]`: how `owl sync` builds a Lambda function for every
//! action a route maps (see docs/sync.md). Read and validated with the rest of the
//! policy, so `owl policy check` reports its errors with their positions too.

use super::reader::{At, Errors, TableReader};
use super::resolve_path;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where `owl sync` learns about actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncSource {
    /// OpenWhisk's whisks database (`[couchdb]`), followed through its `_changes`
    /// feed; the last sequence handled is kept in `state_file`.
    CouchDb {
        /// Where the feed's sequence is persisted.
        state_file: PathBuf,
    },
    /// The controller's API (`[controller] url`), polled with one key.
    Controller {
        /// File holding the `uuid:key` used to list and read actions.
        key_file: PathBuf,
        /// Time between two polls.
        poll_interval: Duration,
    },
}

/// Instruction-set architecture of the functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `x86_64`.
    X86_64,
    /// `arm64` (Graviton).
    Arm64,
}

impl Architecture {
    /// Lambda's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

/// `[sync]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncConfig {
    /// Where actions come from.
    pub source: SyncSource,
    /// The execution role every function gets.
    pub role: String,
    /// A file bundled as `bootstrap` into every function's zip (the owl runtime
    /// binary, or a script starting it); without it, every kind needs a layer.
    pub bootstrap: Option<PathBuf>,
    /// Layers by kind (`nodejs:20`) or kind family (`nodejs`), in file order.
    pub layers: Vec<(String, Vec<String>)>,
    /// Extra tags on every function (owl's own `owl:` tags are added).
    pub tags: Vec<(String, String)>,
    /// Functions reconciled at once.
    pub(crate) concurrency: usize,
    /// Retries of a Lambda call that was throttled or met a function still updating.
    pub retries: u32,
    /// Time between two full passes over owl's functions (deleting those whose
    /// action is gone or no longer mapped).
    pub(crate) resync_interval: Duration,
    /// Architecture of the functions.
    pub(crate) architecture: Architecture,
}

impl SyncConfig {
    /// The layers for `kind`: an entry for the exact kind wins over one for its family.
    pub(crate) fn layers_for(&self, kind: &str) -> Option<&[String]> {
        let family = kind.split(':').next().unwrap_or(kind);
        self.layers
            .iter()
            .find(|(k, _)| k == kind)
            .or_else(|| self.layers.iter().find(|(k, _)| k == family))
            .map(|(_, l)| l.as_slice())
    }
}

pub(super) const SYNC_KEYS: &[&str] = &[
    "source",
    "role",
    "bootstrap",
    "layers",
    "tags",
    "concurrency",
    "retries",
    "state_file",
    "key_file",
    "poll_interval",
    "resync_interval",
    "architecture",
];

/// Lambda allows five layers per function.
const MAX_LAYERS: usize = 5;
/// Lambda allows 50 tags per function; owl uses two.
const MAX_EXTRA_TAGS: usize = 48;

/// Reads `[sync]`; `Some(None)` when absent, `None` after errors.
pub(super) fn compile_sync(
    top: &TableReader<'_, '_>,
    base: &Path,
    has_couch: bool,
    errors: &mut Errors,
) -> Option<Option<SyncConfig>> {
    let Some(t) = top.table("sync", SYNC_KEYS, errors) else {
        return (!top.has("sync")).then_some(None);
    };
    let role = t.required_string("role", errors).and_then(|(r, span)| {
        if is_role_arn(&r) {
            Some(r)
        } else {
            errors.push(
                span,
                format!(
                    "`role` in [sync]: \"{r}\" is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
                ),
            );
            None
        }
    });
    let source_choice = t.choice("source", &["couchdb", "controller"], errors);
    let controller_source = source_choice
        .as_ref()
        .is_some_and(|(s, _)| s == "controller");
    let key_file = t.string("key_file", errors);
    let state_file = t.string("state_file", errors);
    let poll_interval = t.duration(
        "poll_interval",
        Duration::from_secs(1),
        Duration::from_secs(86_400),
        errors,
    );
    let source = if controller_source {
        if state_file.is_some() {
            errors.push(
                t.value_span("state_file"),
                "`state_file` in [sync] only applies with source = \"couchdb\"",
            );
        }
        match key_file {
            Some((k, _)) => Some(SyncSource::Controller {
                key_file: resolve_path(base, &k),
                poll_interval: poll_interval.map_or(Duration::from_secs(30), |d| d.0),
            }),
            None => {
                errors.push(
                    t.value_span("source"),
                    "source = \"controller\" in [sync] needs `key_file` (a file holding the uuid:key to read actions with)",
                );
                None
            }
        }
    } else {
        if !has_couch {
            let span = source_choice
                .as_ref()
                .map_or_else(|| t.span(), |(_, s)| s.clone());
            errors.push(
                span,
                "[sync] reads the whisks database (source = \"couchdb\", the default) and needs a [couchdb] section; or set source = \"controller\"",
            );
        }
        for key in ["key_file", "poll_interval"] {
            if t.has(key) {
                errors.push(
                    t.value_span(key),
                    format!("`{key}` in [sync] only applies with source = \"controller\""),
                );
            }
        }
        Some(SyncSource::CouchDb {
            state_file: state_file.map_or_else(
                || base.join("owl-sync.state"),
                |(p, _)| resolve_path(base, &p),
            ),
        })
    };
    let bootstrap = t
        .string("bootstrap", errors)
        .map(|(p, _)| resolve_path(base, &p));
    let layers = read_layers(t.entries("layers", errors), errors);
    let tags = read_tags(t.entries("tags", errors), errors);
    let architecture = match t.choice("architecture", &["x86_64", "arm64"], errors) {
        Some((a, _)) if a == "arm64" => Architecture::Arm64,
        _ => Architecture::X86_64,
    };
    Some(Some(SyncConfig {
        source: source?,
        role: role?,
        bootstrap,
        layers,
        tags,
        concurrency: t
            .integer("concurrency", 1, 64, errors)
            .map_or(4, |n| n.0 as usize),
        retries: t
            .integer("retries", 0, 20, errors)
            .map_or(6, |n| n.0 as u32),
        resync_interval: t
            .duration(
                "resync_interval",
                Duration::from_secs(10),
                Duration::from_secs(7 * 86_400),
                errors,
            )
            .map_or(Duration::from_secs(600), |d| d.0),
        architecture,
    }))
}

fn read_layers(
    entries: Vec<(At<String>, At<serde_json::Value>)>,
    errors: &mut Errors,
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for ((kind, kind_span), (value, span)) in entries {
        if kind.is_empty()
            || !kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_'))
        {
            errors.push(
                kind_span,
                format!("[sync.layers]: \"{kind}\" is not an action kind (e.g. \"nodejs:20\", or a family such as \"python\")"),
            );
            continue;
        }
        let arns: Option<Vec<String>> = match &value {
            serde_json::Value::String(s) => Some(vec![s.clone()]),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => None,
        };
        let Some(arns) = arns.filter(|a| !a.is_empty()) else {
            errors.push(
                span,
                format!("[sync.layers] \"{kind}\" must be a layer version ARN or a list of them"),
            );
            continue;
        };
        if arns.len() > MAX_LAYERS {
            errors.push(
                span,
                format!("[sync.layers] \"{kind}\": Lambda allows at most {MAX_LAYERS} layers per function"),
            );
            continue;
        }
        if let Some(bad) = arns.iter().find(|a| !is_layer_version_arn(a)) {
            errors.push(
                span,
                format!("[sync.layers] \"{kind}\": \"{bad}\" is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)"),
            );
            continue;
        }
        out.push((kind, arns));
    }
    out
}

fn read_tags(
    entries: Vec<(At<String>, At<serde_json::Value>)>,
    errors: &mut Errors,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ((k, key_span), (v, span)) in entries {
        let Some(v) = v.as_str() else {
            errors.push(
                span,
                format!("`tags` in [sync]: the value of \"{k}\" must be a string"),
            );
            continue;
        };
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("owl:") {
            errors.push(
                key_span,
                format!("`tags` in [sync]: \"{k}\": the prefixes aws: and owl: are reserved"),
            );
            continue;
        }
        if k.is_empty() || k.len() > 128 || v.len() > 256 || !tag_chars(&k) || !tag_chars(v) {
            errors.push(
                span,
                format!("`tags` in [sync]: \"{k}\" = \"{v}\" is not a valid Lambda tag (keys of 1-128 and values of up to 256 characters: letters, digits, spaces and _ . : / = + - @)"),
            );
            continue;
        }
        if out.len() == MAX_EXTRA_TAGS {
            errors.push(
                key_span,
                format!(
                    "`tags` in [sync]: at most {MAX_EXTRA_TAGS} tags (Lambda allows 50, owl uses 2)"
                ),
            );
            break;
        }
        out.push((k, v.to_string()));
    }
    out
}

fn tag_chars(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
    })
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME`.
fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}

/// `arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION`.
pub(crate) fn is_layer_version_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    matches!(parts.as_slice(),
        ["arn", partition, "lambda", region, account, "layer", name, version]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !version.is_empty()
                && version.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;
    use std::path::Path;

    const BASE: &str = "[controller]\nurl = \"http://h:1\"\n[couchdb]\nurl = \"http://c:5984\"\n";

    fn parse(extra: &str) -> Result<Policy, String> {
        Policy::parse(&format!("{BASE}{extra}"), "p.toml", Path::new("/etc/owl"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_sync_section() {
        let p = parse(
            r#"[sync]
role = "arn:aws:iam::123456789012:role/owl-actions"
bootstrap = "owl-runtime"
concurrency = 8
retries = 3
state_file = "/var/lib/owl/sync.state"
tags = { team = "platform", "cost center" = "42" }
architecture = "arm64"

[sync.layers]
"nodejs:20" = "arn:aws:lambda:eu-west-1:123456789012:layer:owl-nodejs:3"
python = ["arn:aws:lambda:eu-west-1:123456789012:layer:owl-runtime:4", "arn:aws:lambda:eu-west-1:123456789012:layer:python311:1"]
"#,
        )
        .unwrap();
        let s = p.sync.unwrap();
        assert_eq!(s.concurrency, 8);
        assert_eq!(s.retries, 3);
        assert_eq!(
            s.bootstrap.as_deref(),
            Some(Path::new("/etc/owl/owl-runtime"))
        );
        assert_eq!(
            s.source,
            super::SyncSource::CouchDb {
                state_file: "/var/lib/owl/sync.state".into()
            }
        );
        assert_eq!(s.architecture, super::Architecture::Arm64);
        assert_eq!(s.tags.len(), 2);
        assert_eq!(s.layers_for("python:3.11").unwrap().len(), 2);
        assert!(s.layers_for("go:1.22").is_none());
    }

    fn p_sync() -> super::SyncConfig {
        parse(
            r#"[sync]
role = "arn:aws:iam::123456789012:role/r"
[sync.layers]
"nodejs:20" = "arn:aws:lambda:us-east-1:123456789012:layer:node20:1"
nodejs = "arn:aws:lambda:us-east-1:123456789012:layer:node:7"
"#,
        )
        .unwrap()
        .sync
        .unwrap()
    }

    #[test]
    fn layers_by_kind_then_family() {
        let s = p_sync();
        assert_eq!(
            s.layers_for("nodejs:20").unwrap()[0],
            "arn:aws:lambda:us-east-1:123456789012:layer:node20:1"
        );
        assert_eq!(
            s.layers_for("nodejs:22").unwrap()[0],
            "arn:aws:lambda:us-east-1:123456789012:layer:node:7"
        );
        assert!(s.layers_for("python:3.11").is_none());
    }

    #[test]
    fn controller_source_needs_a_key_file() {
        let p = parse(
            "[sync]\nrole = \"arn:aws:iam::123456789012:role/r\"\nsource = \"controller\"\nkey_file = \"sync.key\"\npoll_interval = \"5s\"\n",
        )
        .unwrap();
        assert_eq!(
            p.sync.unwrap().source,
            super::SyncSource::Controller {
                key_file: "/etc/owl/sync.key".into(),
                poll_interval: std::time::Duration::from_secs(5)
            }
        );
        let err =
            parse("[sync]\nrole = \"arn:aws:iam::123456789012:role/r\"\nsource = \"controller\"\n")
                .unwrap_err();
        assert!(
            err.contains("p.toml:7:10: error: source = \"controller\" in [sync] needs `key_file`"),
            "{err}"
        );
    }

    #[test]
    fn every_mistake_is_located() {
        let err = parse(
            r#"[sync]
role = "owl-role"
key_file = "k"
concurency = 3
tags = { "aws:x" = "y" }
[sync.layers]
"nodejs:20" = "arn:aws:lambda:us-east-1:123:layer:x:1"
"#,
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("p.toml:6:8: error: `role` in [sync]")),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("p.toml:7:12: error: `key_file` in [sync] only applies")),
            "{err}"
        );
        assert!(
            lines.iter().any(
                |l| l.starts_with("p.toml:8:1: error: unknown key `concurency`")
                    && l.contains("did you mean `concurrency`")
            ),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("the prefixes aws: and owl: are reserved")),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("is not a layer version ARN")),
            "{err}"
        );
    }

    #[test]
    fn couchdb_source_needs_couchdb() {
        let err = Policy::parse(
            "[controller]\nurl = \"http://h:1\"\n[sync]\nrole = \"arn:aws:iam::123456789012:role/r\"\n",
            "p.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("needs a [couchdb] section"), "{err}");
    }
}
