//! Deciding, without side effects, what an action's function should be and which
//! control-plane steps bring Lambda there: the action's route gives the function's
//! name and alias, `[sync]` the role, layers and tags, the action its kind, limits,
//! init parameters and code.

use super::action::ActionDoc;
use super::package::Package;
use crate::lambda::control::{
    ACTION_TAG, Function, FunctionSpec, MANAGED_TAG, MANAGED_VALUE, Settings,
};
use crate::policy::{Route, SyncConfig};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The only runtime the owl runtime is built for.
pub(crate) const RUNTIME: &str = "provided.al2023";
/// Lambda's memory range.
const MEMORY_MB: std::ops::RangeInclusive<u64> = 128..=10_240;
/// Lambda's longest timeout.
const MAX_TIMEOUT_S: u64 = 900;

/// Why an action does not get a function. Its route then falls back to the
/// controller (a missing function is a 404 Lambda did not run).
pub(crate) fn unsupported(doc: &ActionDoc, cfg: &SyncConfig) -> Option<String> {
    let family = doc.kind.split(':').next().unwrap_or("");
    if doc.kind == "sequence" {
        return Some("sequence: the controller runs sequences".into());
    }
    if doc.conductor {
        return Some("conductor action: the controller runs compositions".into());
    }
    if family == "blackbox" || doc.image.is_some() {
        return Some(format!(
            "{} action{}: the owl runtime cannot run container images",
            doc.kind,
            doc.image
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default()
        ));
    }
    if cfg.bootstrap.is_none() && cfg.layers_for(&doc.kind).is_none() {
        return Some(format!(
            "no runtime for kind {}: add it to [sync.layers] or set `bootstrap` in [sync]",
            doc.kind
        ));
    }
    if !MEMORY_MB.contains(&doc.memory_mb.max(128)) {
        return Some(format!(
            "memory limit {} MB is more than Lambda's 10240 MB",
            doc.memory_mb
        ));
    }
    None
}

/// The alias `owl sync` moves for `route`: its qualifier unless that is a version
/// number or `$LATEST` (then `$LATEST` is what the gateway calls).
pub(crate) fn managed_alias(route: &Route) -> Option<&str> {
    route
        .qualifier
        .as_deref()
        .filter(|q| !q.starts_with('$') && !q.chars().all(|c| c.is_ascii_digit()))
}

/// The function `doc` should have.
pub(crate) fn desired(
    doc: &ActionDoc,
    route: &Route,
    cfg: &SyncConfig,
    function: &str,
    package: Package,
) -> FunctionSpec {
    // The runtime enforces the action's own deadline; Lambda's timeout leaves it a
    // second more so the runtime, not Lambda, reports OpenWhisk's timeout.
    let limit_ms = route
        .timeout
        .map_or(doc.timeout_ms, |t| t.as_millis() as u64);
    let timeout_s = (limit_ms.div_ceil(1000) + 1).clamp(1, MAX_TIMEOUT_S) as i32;
    let memory_mb = doc.memory_mb.clamp(*MEMORY_MB.start(), *MEMORY_MB.end()) as i32;
    let mut tags: BTreeMap<String, String> = cfg.tags.iter().cloned().collect();
    tags.insert(MANAGED_TAG.into(), MANAGED_VALUE.into());
    tags.insert(ACTION_TAG.into(), doc.id.clone());
    FunctionSpec {
        name: function.to_string(),
        settings: Settings {
            runtime: RUNTIME.into(),
            role: cfg.role.clone(),
            handler: package.handler,
            memory_mb,
            timeout_s,
            environment: package.environment,
            layers: cfg
                .layers_for(&doc.kind)
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
        },
        architecture: cfg.architecture.as_str().to_string(),
        tags,
        code_sha256: package.code_sha256,
        zip: Arc::new(package.zip),
        description: truncate(
            &format!("OpenWhisk action /{} {} (owl sync)", doc.id, doc.version),
            256,
        ),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// One control-plane step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Create the function.
    Create,
    /// Upload the code to `$LATEST`.
    UpdateCode,
    /// Update `$LATEST`'s configuration (the fields that differ, `description`
    /// included).
    UpdateConfiguration(Vec<&'static str>),
    /// Set the tags.
    Tag,
    /// Publish `$LATEST` and point the alias at the new version.
    PublishAndMoveAlias(String),
}

/// What to do about one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Apply these steps (none: already in step).
    Apply(Vec<Step>),
    /// Leave the function alone, for this reason.
    Conflict(String),
}

/// Compares `spec` with what Lambda has.
pub(crate) fn decide(
    spec: &FunctionSpec,
    action: &str,
    alias: Option<&str>,
    actual: Option<&Function>,
) -> Decision {
    let Some(actual) = actual else {
        let mut steps = vec![Step::Create];
        if let Some(a) = alias {
            steps.push(Step::PublishAndMoveAlias(a.to_string()));
        }
        return Decision::Apply(steps);
    };
    match actual.managed_action() {
        None => {
            return Decision::Conflict(
                "a function of this name exists that owl sync did not create; left alone".into(),
            );
        }
        Some(other) if other != action => {
            return Decision::Conflict(format!(
                "the function serves the action {other}; two actions map to one function name"
            ));
        }
        Some(_) => {}
    }
    let mut steps = Vec::new();
    let latest = &actual.latest;
    let new_code =
        latest.code_sha256 != spec.code_sha256 || latest.architecture != spec.architecture;
    if new_code {
        steps.push(Step::UpdateCode);
    }
    let mut changed = changed_fields(&latest.settings, &spec.settings);
    // What the function runs changes: the alias follows.
    let runs_differently = new_code || !changed.is_empty();
    // The description names the action's version, which every update of the action
    // moves (code only, or nothing but the version): `UpdateFunctionCode` leaves it
    // as it was.
    if latest.description != spec.description {
        changed.push("description");
    }
    if !changed.is_empty() {
        steps.push(Step::UpdateConfiguration(changed));
    }
    if spec.tags.iter().any(|(k, v)| actual.tags.get(k) != Some(v)) {
        steps.push(Step::Tag);
    }
    if let Some(a) = alias {
        // The alias must serve exactly the desired code and settings: after a change,
        // or when an earlier run stopped between uploading and moving the alias. A
        // new description alone leaves it where it is: its version runs the same code
        // with the same settings (and keeps the description it was published with).
        let in_step = actual.alias.as_ref().is_some_and(|v| {
            v.code_sha256 == spec.code_sha256
                && v.architecture == spec.architecture
                && changed_fields(&v.settings, &spec.settings).is_empty()
        });
        if !in_step || runs_differently {
            steps.push(Step::PublishAndMoveAlias(a.to_string()));
        }
    }
    Decision::Apply(steps)
}

fn changed_fields(have: &Settings, want: &Settings) -> Vec<&'static str> {
    let mut out = Vec::new();
    if have.runtime != want.runtime {
        out.push("runtime");
    }
    if have.role != want.role {
        out.push("role");
    }
    if have.handler != want.handler {
        out.push("handler");
    }
    if have.memory_mb != want.memory_mb {
        out.push("memory");
    }
    if have.timeout_s != want.timeout_s {
        out.push("timeout");
    }
    if have.environment != want.environment {
        out.push("environment");
    }
    if have.layers != want.layers {
        out.push("layers");
    }
    out
}

/// A short description of the steps, for reports.
pub(crate) fn describe(steps: &[Step], spec: &FunctionSpec) -> String {
    let mut parts = Vec::new();
    for s in steps {
        match s {
            Step::Create => parts.push(format!(
                "{} MB, {} s, {} code {} B",
                spec.settings.memory_mb,
                spec.settings.timeout_s,
                spec.settings.handler,
                spec.zip.len()
            )),
            Step::UpdateCode => parts.push("code".into()),
            Step::UpdateConfiguration(f) => parts.push(f.join(", ")),
            Step::Tag => parts.push("tags".into()),
            Step::PublishAndMoveAlias(a) => parts.push(format!("alias {a} → new version")),
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::control::Version;

    fn spec() -> FunctionSpec {
        let mut tags = BTreeMap::new();
        tags.insert(MANAGED_TAG.to_string(), MANAGED_VALUE.to_string());
        tags.insert(ACTION_TAG.to_string(), "guest/a".to_string());
        FunctionSpec {
            name: "owl-guest-a".into(),
            settings: Settings {
                runtime: RUNTIME.into(),
                role: "arn:aws:iam::123456789012:role/r".into(),
                handler: "action.js".into(),
                memory_mb: 256,
                timeout_s: 61,
                environment: BTreeMap::new(),
                layers: vec![],
            },
            architecture: "x86_64".into(),
            tags,
            zip: Arc::new(vec![1, 2, 3]),
            code_sha256: "abc".into(),
            description: "OpenWhisk action /guest/a 0.0.1 (owl sync)".into(),
        }
    }

    fn function(spec: &FunctionSpec, alias: bool) -> Function {
        let v = Version {
            version: "$LATEST".into(),
            settings: spec.settings.clone(),
            code_sha256: spec.code_sha256.clone(),
            architecture: spec.architecture.clone(),
            description: spec.description.clone(),
        };
        Function {
            arn: "arn".into(),
            tags: spec.tags.clone(),
            alias: alias.then(|| Version {
                version: "3".into(),
                ..v.clone()
            }),
            latest: v,
        }
    }

    #[test]
    fn a_plan_for_every_difference() {
        let s = spec();
        assert_eq!(
            decide(&s, "guest/a", Some("live"), None),
            Decision::Apply(vec![Step::Create, Step::PublishAndMoveAlias("live".into())])
        );
        let f = function(&s, true);
        assert_eq!(
            decide(&s, "guest/a", Some("live"), Some(&f)),
            Decision::Apply(vec![])
        );
        assert_eq!(
            decide(&s, "guest/a", None, Some(&function(&s, false))),
            Decision::Apply(vec![])
        );
        // An alias left behind by an interrupted run is moved.
        assert_eq!(
            decide(&s, "guest/a", Some("live"), Some(&function(&s, false))),
            Decision::Apply(vec![Step::PublishAndMoveAlias("live".into())])
        );
        let mut changed = s.clone();
        changed.code_sha256 = "new".into();
        changed.settings.memory_mb = 512;
        changed.settings.environment.insert("A".into(), "1".into());
        assert_eq!(
            decide(&changed, "guest/a", Some("live"), Some(&f)),
            Decision::Apply(vec![
                Step::UpdateCode,
                Step::UpdateConfiguration(vec!["memory", "environment"]),
                Step::PublishAndMoveAlias("live".into())
            ])
        );
        let mut foreign = f.clone();
        foreign.tags.clear();
        assert!(matches!(
            decide(&s, "guest/a", None, Some(&foreign)),
            Decision::Conflict(_)
        ));
        assert!(
            matches!(decide(&s, "guest/b", None, Some(&f)), Decision::Conflict(m) if m.contains("guest/a"))
        );
    }

    /// The spec for version `version` of the action, with `code`.
    fn at_version(version: &str, code: &str) -> FunctionSpec {
        let mut s = spec();
        s.description = format!("OpenWhisk action /guest/a {version} (owl sync)");
        s.code_sha256 = code.into();
        s
    }

    #[test]
    fn a_code_only_update_also_renames_latest() {
        let f = function(&spec(), true);
        let next = at_version("0.0.2", "new");
        assert_eq!(
            decide(&next, "guest/a", Some("live"), Some(&f)),
            Decision::Apply(vec![
                Step::UpdateCode,
                Step::UpdateConfiguration(vec!["description"]),
                Step::PublishAndMoveAlias("live".into())
            ])
        );
        assert_eq!(
            decide(&next, "guest/a", None, Some(&function(&spec(), false))),
            Decision::Apply(vec![
                Step::UpdateCode,
                Step::UpdateConfiguration(vec!["description"])
            ])
        );
        // Once applied, nothing is left to do.
        assert_eq!(
            decide(&next, "guest/a", Some("live"), Some(&function(&next, true))),
            Decision::Apply(vec![])
        );
    }

    #[test]
    fn a_version_only_change_is_an_update_of_the_description() {
        let f = function(&spec(), true);
        let next = at_version("0.0.2", "abc");
        let steps = vec![Step::UpdateConfiguration(vec!["description"])];
        // The alias's version runs the same code and settings: it stays.
        assert_eq!(
            decide(&next, "guest/a", Some("live"), Some(&f)),
            Decision::Apply(steps.clone())
        );
        assert_eq!(
            decide(&next, "guest/a", None, Some(&function(&spec(), false))),
            Decision::Apply(steps.clone())
        );
        assert_eq!(describe(&steps, &next), "description");
        // The description goes with the other fields that changed.
        let mut bigger = next.clone();
        bigger.settings.memory_mb = 512;
        assert_eq!(
            decide(&bigger, "guest/a", Some("live"), Some(&f)),
            Decision::Apply(vec![
                Step::UpdateConfiguration(vec!["memory", "description"]),
                Step::PublishAndMoveAlias("live".into())
            ])
        );
    }
}
