//! One `[[route]]`: which actions it covers and how they are served from Lambda.

use crate::whisk::names::{ActionPath, validate_segment};
use std::fmt;
use std::time::Duration;

/// One segment of an action pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches exactly this name.
    Literal(String),
    /// `*`: matches any one whole segment.
    Any,
}

impl Segment {
    fn parse(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(Self::Any);
        }
        if s.contains('*') {
            return Err(format!(
                "`{s}`: `*` must stand alone for a whole segment (no partial wildcards)"
            ));
        }
        validate_segment(s).map_err(|e| format!("`{s}` is not a valid OpenWhisk name ({e})"))?;
        Ok(Self::Literal(s.to_string()))
    }

    /// True if the segment matches `name`.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Literal(l) => l == name,
        }
    }

    /// The literal, if this segment is one.
    pub fn literal(&self) -> Option<&str> {
        match self {
            Self::Literal(l) => Some(l),
            Self::Any => None,
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Literal(l) => f.write_str(l),
        }
    }
}

/// `ns/action` or `ns/pkg/action`, each segment a name or `*`.
///
/// A two-segment pattern covers only actions in the default package; a three-segment
/// pattern only actions in a package (packages cannot nest).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionPattern {
    /// Namespace segment.
    pub namespace: Segment,
    /// Package segment (`None`: the default package).
    pub package: Option<Segment>,
    /// Action segment.
    pub action: Segment,
}

impl ActionPattern {
    /// Parses a pattern as written in the policy.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let pattern = match parts.as_slice() {
            [ns, a] => Self {
                namespace: Segment::parse(ns)?,
                package: None,
                action: Segment::parse(a)?,
            },
            [ns, p, a] => Self {
                namespace: Segment::parse(ns)?,
                package: Some(Segment::parse(p)?),
                action: Segment::parse(a)?,
            },
            _ => {
                return Err(format!(
                    "\"{s}\" must be \"namespace/action\" or \"namespace/package/action\""
                ));
            }
        };
        if pattern.namespace == Segment::Literal("_".into()) {
            return Err(
                "the namespace `_` means \"the caller's namespace\" and cannot be routed; name the namespace or use `*`"
                    .into(),
            );
        }
        Ok(pattern)
    }

    /// True if the pattern covers `path` (whose namespace must be resolved).
    pub fn matches(&self, path: &ActionPath) -> bool {
        self.namespace.matches(&path.namespace)
            && self.action.matches(&path.action)
            && match (&self.package, &path.package) {
                (None, None) => true,
                (Some(p), Some(name)) => p.matches(name),
                _ => false,
            }
    }

    /// True if every segment is a literal.
    pub fn is_literal(&self) -> bool {
        self.namespace.literal().is_some()
            && self.action.literal().is_some()
            && self.package.as_ref().is_none_or(|p| p.literal().is_some())
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.package {
            Some(p) => write!(f, "{}/{p}/{}", self.namespace, self.action),
            None => write!(f, "{}/{}", self.namespace, self.action),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Namespace,
    Package,
    Action,
}

/// A Lambda function name, ARN or template using `{namespace}`, `{package}` and
/// `{action}`.
///
/// Substituted values keep `A-Z a-z 0-9 - _` and have every other character replaced
/// by `-`, because Lambda function names allow nothing else; `owl sync` renders
/// names with the same rule, so both agree on every function's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionTemplate {
    source: String,
    pieces: Vec<Piece>,
}

/// Longest bare function name Lambda accepts.
pub const MAX_FUNCTION_NAME: usize = 64;

impl FunctionTemplate {
    /// Parses a template; `has_package` says whether the route's pattern has a package
    /// segment (only then is `{package}` meaningful).
    pub fn parse(s: &str, has_package: bool) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in function \"{s}\""))?
                + open;
            let name = &rest[open + 1..close];
            pieces.push(match name {
                "namespace" => Piece::Namespace,
                "action" => Piece::Action,
                "package" if has_package => Piece::Package,
                "package" => {
                    return Err(
                        "`{package}` is used, but the route's action pattern has no package segment"
                            .into(),
                    );
                }
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{other}}}`; use {{namespace}}, {{package}} or {{action}}"
                    ));
                }
            });
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("unmatched `}}` in function \"{s}\""));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        if s.is_empty() {
            return Err("`function` must not be empty".into());
        }
        for p in &pieces {
            if let Piece::Text(t) = p
                && let Some(c) = t.chars().find(|c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '$'))
                })
            {
                return Err(format!(
                    "function \"{s}\" contains `{c}`; Lambda function names and ARNs allow only A-Z a-z 0-9 - _ and, in ARNs, : . $"
                ));
            }
        }
        let template = Self {
            source: s.to_string(),
            pieces,
        };
        if !template.has_placeholders() {
            validate_function_name(s)?;
        }
        Ok(template)
    }

    /// True if the template has placeholders.
    pub fn has_placeholders(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Text(_)))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Renders the function for `path` (resolved namespace).
    pub fn render(&self, path: &ActionPath) -> Result<String, String> {
        let mut out = String::with_capacity(self.source.len() + 16);
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Namespace => push_sanitized(&mut out, &path.namespace),
                Piece::Package => push_sanitized(&mut out, path.package.as_deref().unwrap_or("")),
                Piece::Action => push_sanitized(&mut out, &path.action),
            }
        }
        if self.has_placeholders() {
            validate_function_name(&out)?;
        }
        Ok(out)
    }
}

fn push_sanitized(out: &mut String, value: &str) {
    out.extend(value.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '-'
        }
    }));
}

/// Checks a rendered function name or ARN against Lambda's limits.
pub fn validate_function_name(s: &str) -> Result<(), String> {
    let name = if let Some(rest) = s.strip_prefix("arn:") {
        // arn:partition:lambda:region:account:function:name[:qualifier]
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() < 6 || parts[1] != "lambda" || parts[4] != "function" {
            return Err(format!(
                "\"{s}\" is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
            ));
        }
        parts[5]
    } else if s.contains(':') {
        // partial ARN: ACCOUNT:function:NAME, or NAME:QUALIFIER
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            [_, "function", name] | [_, "function", name, _] => *name,
            [name, _] => *name,
            _ => return Err(format!("\"{s}\" is not a function name or ARN")),
        }
    } else {
        s
    };
    if name.is_empty() || name.len() > MAX_FUNCTION_NAME {
        return Err(format!(
            "function name \"{name}\" must be 1 to {MAX_FUNCTION_NAME} characters long"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "function name \"{name}\" contains `{c}`; only A-Z a-z 0-9 - _ are allowed"
        ));
    }
    Ok(())
}

/// What happens when Lambda throttles or is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Send the invocation to the controller instead.
    Controller,
    /// Answer 429 / 503.
    None,
}

/// What the function receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// The envelope an OpenWhisk runtime's `/run` receives.
    OpenWhisk,
    /// The merged parameters as the event.
    Event,
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// 0-based position in the file (first match wins).
    pub index: usize,
    /// 1-based line of the `[[route]]` entry.
    pub line: usize,
    /// Which actions the route covers.
    pub pattern: ActionPattern,
    /// The function to call.
    pub function: FunctionTemplate,
    /// Version or alias.
    pub qualifier: Option<String>,
    /// Percentage of invocations sent to Lambda, 0..=100.
    pub weight: f64,
    /// The action's time limit on Lambda (`None`: the action's own limit).
    pub timeout: Option<Duration>,
    /// Behaviour on throttling or unavailability.
    pub fallback: Fallback,
    /// Payload shape.
    pub payload: PayloadMode,
}

impl Route {
    /// Decides, for one invocation, whether it goes to Lambda. `draw` is uniform in
    /// `[0, 100)`.
    pub fn takes(&self, draw: f64) -> bool {
        draw < self.weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> ActionPath {
        ActionPath::parse(s).unwrap()
    }

    #[test]
    fn patterns() {
        let p = ActionPattern::parse("guest/*").unwrap();
        assert!(p.matches(&path("guest/hello")));
        assert!(!p.matches(&path("guest/pkg/hello")));
        assert!(!p.matches(&path("other/hello")));
        let p = ActionPattern::parse("*/pkg/*").unwrap();
        assert!(p.matches(&path("a/pkg/b")));
        assert!(!p.matches(&path("a/b")));
        for bad in ["guest", "a/b/c/d", "gu*st/a", "_/a", "guest/..", "guest/"] {
            assert!(ActionPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates() {
        let t = FunctionTemplate::parse("owl-{namespace}-{package}-{action}", true).unwrap();
        assert_eq!(
            t.render(&path("guest/my pkg/hello.world")).unwrap(),
            "owl-guest-my-pkg-hello-world"
        );
        assert!(FunctionTemplate::parse("owl-{package}", false).is_err());
        assert!(FunctionTemplate::parse("owl-{nope}", false).is_err());
        assert!(FunctionTemplate::parse("owl-{action", false).is_err());
        assert!(FunctionTemplate::parse("owl fn", false).is_err());
        assert!(FunctionTemplate::parse(&"x".repeat(65), false).is_err());
        let long = FunctionTemplate::parse("{action}", false).unwrap();
        assert!(
            long.render(&path(&format!("g/{}", "a".repeat(65))))
                .is_err()
        );
        assert!(
            FunctionTemplate::parse(
                "arn:aws:lambda:us-east-1:123456789012:function:hello",
                false
            )
            .is_ok()
        );
        assert!(FunctionTemplate::parse("arn:aws:s3:::bucket", false).is_err());
        assert!(FunctionTemplate::parse("123456789012:function:hello", false).is_ok());
    }
}
