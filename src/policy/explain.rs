//! `owl policy explain`: which route covers an action and what would happen to an
//! invocation of it.

use super::PayloadMode;
use super::route::Fallback;
use super::{Policy, format_duration};
use crate::whisk::names::ActionPath;
use std::fmt::Write;

/// Describes, in plain text, how `path` would be served.
pub(crate) fn explain(policy: &Policy, path: &ActionPath) -> String {
    let mut out = String::new();
    let controller = &policy.controller.url;
    if path.has_default_namespace() {
        let _ = writeln!(
            out,
            "{path}: `_` stands for the caller's namespace and is resolved from the credentials at request time."
        );
        let _ = writeln!(
            out,
            "Name the namespace to see which route applies, e.g. `guest/{}`.",
            path.name_in_namespace()
        );
        return out;
    }
    let Some(route) = policy.routes.find(path) else {
        let _ = writeln!(out, "{path}: no route matches.");
        let _ = writeln!(
            out,
            "Invocations are proxied unchanged to the controller at {controller}."
        );
        if path.package.is_some() {
            let _ = writeln!(
                out,
                "If {} is a package binding, owl also tries the routes of the package it is bound to.",
                path.entity_namespace()
            );
        }
        return out;
    };
    let _ = writeln!(
        out,
        "{path}: matches route #{} (line {}): action = \"{}\"",
        route.index + 1,
        route.line,
        route.pattern
    );
    match route.function.render(path) {
        Ok(f) => {
            let _ = write!(out, "  function:  {f}");
            if let Some(q) = &route.qualifier {
                let _ = write!(out, " (qualifier {q})");
            }
            let _ = writeln!(out);
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "  function:  cannot be rendered for this action ({e}); invocations go to the controller"
            );
        }
    }
    let w = route.weight;
    let _ = writeln!(
        out,
        "  weight:    {w}% of invocations go to Lambda, {}% to the controller",
        100.0 - w
    );
    let _ = writeln!(
        out,
        "  payload:   {}",
        match route.payload {
            PayloadMode::OpenWhisk =>
                "the OpenWhisk /run envelope (value, namespace, action_name, activation_id, ...)",
            PayloadMode::Event => "the merged parameters as the event",
        }
    );
    let _ = writeln!(
        out,
        "  timeout:   {}",
        route.timeout.map_or_else(
            || "the action's own time limit (from its metadata)".to_string(),
            format_duration
        )
    );
    let _ = writeln!(
        out,
        "  fallback:  {}",
        match route.fallback {
            Fallback::Controller => format!(
                "throttled or unavailable invocations are sent to the controller at {controller}"
            ),
            Fallback::None =>
                "throttled invocations get 429 and an unavailable Lambda 503 (no fallback)"
                    .to_string(),
        }
    );
    let web = if !route.serves_web() {
        "web calls (/api/v1/web/…) go to the controller (web = false)".to_string()
    } else if policy.auth.source != super::IdentitySource::Controller {
        "web calls (/api/v1/web/…) of actions annotated web-export are served from Lambda as the owner, who is found by namespace".to_string()
    } else if policy.web.service_key_namespaces.contains(&path.namespace) {
        format!(
            "web calls (/api/v1/web/…) of actions annotated web-export are served from Lambda as the owner, learned from the controller with {}'s key in [web] service_keys_file",
            path.namespace
        )
    } else {
        format!(
            "web calls (/api/v1/web/…) go to the controller: owl has no key to learn the owner of {} ([web] service_keys_file)",
            path.namespace
        )
    };
    let _ = writeln!(out, "  web:       {web}");
    let identities = match policy.auth.source {
        super::IdentitySource::Controller => "the controller",
        super::IdentitySource::CouchDb => "OpenWhisk's subjects database",
        super::IdentitySource::File => "the identities file",
    };
    let metadata = match policy.metadata.source {
        super::MetadataSource::Controller => "the controller (which decides entitlement)",
        super::MetadataSource::CouchDb => "OpenWhisk's whisks database (owl decides entitlement)",
        super::MetadataSource::File => "the policy's static metadata (owl decides entitlement)",
    };
    let _ = writeln!(
        out,
        "  auth:      identities from {identities}{}; action metadata from {metadata}; cached {}",
        if policy.auth.jwt.is_some() {
            ", or bearer tokens"
        } else {
            ""
        },
        format_duration(policy.metadata.ttl)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn explains_matches_and_misses() {
        let p = Policy::parse(
            "[controller]\nurl = \"http://c:1\"\n[[route]]\naction = \"guest/*\"\nfunction = \"owl-{action}\"\nweight = 30\n",
            "p",
            Path::new("."),
        )
        .unwrap();
        let hit = explain(&p, &ActionPath::parse("guest/hello").unwrap());
        assert!(hit.contains("matches route #1 (line 3)"), "{hit}");
        assert!(hit.contains("function:  owl-hello"), "{hit}");
        assert!(
            hit.contains("30% of invocations go to Lambda, 70%"),
            "{hit}"
        );
        let miss = explain(&p, &ActionPath::parse("other/hello").unwrap());
        assert!(miss.contains("no route matches"), "{miss}");
        assert!(
            hit.contains(
                "web:       web calls (/api/v1/web/…) go to the controller: owl has no key"
            ),
            "{hit}"
        );
        let default = explain(&p, &ActionPath::parse("_/hello").unwrap());
        assert!(default.contains("caller's namespace"), "{default}");
    }
}
