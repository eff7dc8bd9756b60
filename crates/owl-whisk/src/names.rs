//! Entity names and invoke paths, validated exactly as OpenWhisk validates them
//! (reference §1.1): each segment matches `\A([\w]|[\w][\w@ .&-]{0,254}[\w@.&-])\z`
//! with Java's ASCII `\w`, and is at most 256 characters long.

use std::fmt;

/// Longest entity name segment OpenWhisk accepts.
pub const ENTITY_NAME_MAX_LENGTH: usize = 256;

/// The namespace placeholder that stands for the caller's own namespace.
pub(crate) const DEFAULT_NAMESPACE: &str = "_";

/// Why a segment is not a valid OpenWhisk entity name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty, or containing characters outside the grammar.
    #[error("illegal characters")]
    Illegal,
    /// Longer than [`ENTITY_NAME_MAX_LENGTH`].
    #[error("longer than allowed: {0} > {ENTITY_NAME_MAX_LENGTH}")]
    TooLong(usize),
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Checks one name segment against OpenWhisk's grammar.
pub fn validate_segment(s: &str) -> Result<(), NameError> {
    let len = s.chars().count();
    if len > ENTITY_NAME_MAX_LENGTH {
        return Err(NameError::TooLong(len));
    }
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return Err(NameError::Illegal);
    };
    if !is_word(first) {
        return Err(NameError::Illegal);
    }
    let rest: Vec<char> = chars.collect();
    if let Some((last, middle)) = rest.split_last() {
        let middle_ok = middle
            .iter()
            .all(|&c| is_word(c) || matches!(c, '@' | ' ' | '.' | '&' | '-'));
        let last_ok = is_word(*last) || matches!(*last, '@' | '.' | '&' | '-');
        if !(middle_ok && last_ok) {
            return Err(NameError::Illegal);
        }
    }
    Ok(())
}

/// A validated entity name segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityName(String);

impl EntityName {
    /// Validates `s` as an entity name.
    pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
        let s = s.into();
        validate_segment(&s)?;
        Ok(Self(s))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fully qualified action: namespace, optional package, action name.
///
/// The namespace may be `_` until it is resolved against the caller's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionPath {
    /// Namespace segment (`_` before resolution).
    pub namespace: String,
    /// Package segment, `None` for the default package.
    pub package: Option<String>,
    /// Action name.
    pub action: String,
}

impl ActionPath {
    /// Builds a path from validated parts.
    pub fn new(namespace: &str, package: Option<&str>, action: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            package: package.map(str::to_string),
            action: action.to_string(),
        }
    }

    /// Parses `ns/action` or `ns/pkg/action` (as typed on a command line), validating
    /// each segment.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim_start_matches('/').split('/').collect();
        let (ns, pkg, action) = match parts.as_slice() {
            [ns, action] => (*ns, None, *action),
            [ns, pkg, action] => (*ns, Some(*pkg), *action),
            _ => {
                return Err(format!(
                    "'{s}' is not NAMESPACE/ACTION or NAMESPACE/PACKAGE/ACTION"
                ));
            }
        };
        if ns != DEFAULT_NAMESPACE {
            validate_segment(ns).map_err(|e| format!("namespace '{ns}': {e}"))?;
        }
        for seg in pkg.iter().chain(std::iter::once(&action)) {
            validate_segment(seg).map_err(|e| format!("name '{seg}': {e}"))?;
        }
        Ok(Self::new(ns, pkg, action))
    }

    /// True while the namespace is still the `_` placeholder.
    pub fn has_default_namespace(&self) -> bool {
        self.namespace == DEFAULT_NAMESPACE
    }

    /// The same path with `_` replaced by `namespace`.
    pub fn resolved(&self, namespace: &str) -> Self {
        if self.has_default_namespace() {
            Self {
                namespace: namespace.to_string(),
                ..self.clone()
            }
        } else {
            self.clone()
        }
    }

    /// This path with `_` replaced by `namespace` (no copy when it names its own).
    pub fn into_resolved(mut self, namespace: &str) -> Self {
        if self.has_default_namespace() {
            self.namespace = namespace.to_string();
        }
        self
    }

    /// `pkg/action` or `action`: the entity name under the namespace.
    pub fn name_in_namespace(&self) -> String {
        match &self.package {
            Some(p) => format!("{p}/{}", self.action),
            None => self.action.clone(),
        }
    }

    /// `ns[/pkg]/action` without a leading slash (the `path` annotation form).
    pub fn to_path_string(&self) -> String {
        format!("{}/{}", self.namespace, self.name_in_namespace())
    }

    /// `/ns[/pkg]/action` (the `action_name` / `__OW_ACTION_NAME` form).
    pub fn qualified_name_with_leading_slash(&self) -> String {
        format!("/{}", self.to_path_string())
    }

    /// The namespace of the package, i.e. `ns/pkg`, or `ns` for the default package:
    /// the value OpenWhisk puts in an entity's `namespace` field.
    pub fn entity_namespace(&self) -> String {
        match &self.package {
            Some(p) => format!("{}/{p}", self.namespace),
            None => self.namespace.clone(),
        }
    }
}

impl fmt::Display for ActionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_path_string())
    }
}

/// Splits an `/api/v1/namespaces/{ns}/actions/{[pkg/]action}` request path into
/// percent-decoded segments. Returns `None` for any other shape (trailing slashes,
/// extra segments, undecodable bytes): such requests are not invocations owl answers.
///
/// Segments are percent-decoded as the controller's HTTP layer does, so an encoded
/// `%2F` stays inside a segment (and then fails name validation).
pub fn split_invoke_path(path: &str) -> Option<(String, Option<String>, String)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let mut it = rest.split('/');
    let ns = it.next()?;
    if it.next()? != "actions" {
        return None;
    }
    let first = it.next()?;
    let second = it.next();
    if it.next().is_some() {
        return None;
    }
    let decode = |s: &str| -> Option<String> {
        if s.is_empty() {
            return None;
        }
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let ns = decode(ns)?;
    match second {
        None => Some((ns, None, decode(first)?)),
        Some(action) => Some((ns, Some(decode(first)?), decode(action)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, ok: bool) {
        assert_eq!(validate_segment(name).is_ok(), ok, "{name:?}");
    }

    #[test]
    fn grammar_matches_openwhisk() {
        for (name, ok) in [
            ("a", true),
            ("_", true),
            ("hello", true),
            ("hello world", true),
            ("a@b.c&d-e", true),
            ("ends.", true),
            ("ends ", false),
            (" starts", false),
            ("-starts", false),
            ("", false),
            ("..", false),
            ("a/b", false),
            ("a%2Fb", false),
            ("ünïcode", false),
            ("tab\tname", false),
        ] {
            check(name, ok);
        }
        check(&"x".repeat(256), true);
        assert_eq!(
            validate_segment(&"x".repeat(257)),
            Err(NameError::TooLong(257))
        );
    }

    #[test]
    fn splits_invoke_paths() {
        assert_eq!(
            split_invoke_path("/api/v1/namespaces/_/actions/hello"),
            Some(("_".into(), None, "hello".into()))
        );
        assert_eq!(
            split_invoke_path("/api/v1/namespaces/guest/actions/pkg/hello%20world"),
            Some(("guest".into(), Some("pkg".into()), "hello world".into()))
        );
        assert_eq!(
            split_invoke_path("/api/v1/namespaces/guest/actions/a%2Fb"),
            Some(("guest".into(), None, "a/b".into()))
        );
        for p in [
            "/api/v1/namespaces/guest/actions/",
            "/api/v1/namespaces/guest/actions/pkg/",
            "/api/v1/namespaces/guest/actions/a/b/c",
            "/api/v1/namespaces/guest/triggers/t",
            "/api/v1/namespaces/guest/actions/%FF",
            "/api/v1/web/guest/default/a",
        ] {
            assert_eq!(split_invoke_path(p), None, "{p}");
        }
    }

    #[test]
    fn action_path_forms() {
        let p = ActionPath::parse("_/pkg/act").unwrap().resolved("guest");
        assert_eq!(p.to_path_string(), "guest/pkg/act");
        assert_eq!(p.qualified_name_with_leading_slash(), "/guest/pkg/act");
        assert_eq!(p.entity_namespace(), "guest/pkg");
        let owned = ActionPath::parse("_/pkg/act")
            .unwrap()
            .into_resolved("guest");
        assert_eq!(owned, p);
        let own = ActionPath::parse("alice/act")
            .unwrap()
            .into_resolved("guest");
        assert_eq!(own.to_path_string(), "alice/act");
        assert!(ActionPath::parse("guest").is_err());
        assert!(ActionPath::parse("guest/a/b/c").is_err());
        assert!(ActionPath::parse("guest/..").is_err());
    }
}
