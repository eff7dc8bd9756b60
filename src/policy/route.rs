//! One `[[route]]`: which actions it covers and how they are served from Lambda.

use crate::lambda::PayloadMode;
use crate::whisk::names::{ActionPath, validate_segment};
use std::fmt;
use std::sync::Arc;
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
    pub(crate) fn literal(&self) -> Option<&str> {
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
    pub(crate) fn is_literal(&self) -> bool {
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
/// Rendering is injective: two different actions never render to the same function,
/// so one tenant's invocation can never run another action's code. Each substituted
/// value is escaped reversibly ([`escape_segment`]: letters and digits stay, `-`
/// becomes `__`, any other character `_` and its two hex digits), so escaped values
/// never contain `-`; the template must separate its placeholders with text holding a
/// `-` (checked when parsed), so the values can always be read back. A bare name that
/// would pass Lambda's 64 characters has its values shortened and a hash of the fully
/// qualified action name appended after `--` (15 hex digits of SHA-256): template text
/// may not hold `--` and values hold no `-`, so no unshortened name of any template
/// contains `--` — shortened and unshortened names never meet. Across the routes of a
/// policy, a [`ShapeIndex`] of their name shapes finds templates whose names could meet.
/// `owl sync` renders names with this same function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionTemplate {
    source: String,
    pieces: Vec<Piece>,
}

/// Longest bare function name Lambda accepts.
pub const MAX_FUNCTION_NAME: usize = 64;

/// Hex digits of the action's hash in a shortened function name.
const HASH_HEX: usize = 15;
/// What precedes the hash in a shortened name: never in an unshortened one.
const HASH_MARK: &str = "--";

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
        for p in &pieces {
            if let Piece::Text(t) = p {
                if t.contains(HASH_MARK) && pieces.iter().any(|p| !matches!(p, Piece::Text(_))) {
                    return Err(format!(
                        "function \"{s}\": `{HASH_MARK}` is reserved for shortened names (a template's own text may not hold it)"
                    ));
                }
                if !s.contains(':')
                    && let Some(c) = t.chars().find(|c| matches!(c, '.' | '$'))
                {
                    return Err(format!(
                        "function \"{s}\" contains `{c}`, which only an ARN or a qualifier may hold; Lambda function names allow A-Z a-z 0-9 - _"
                    ));
                }
            }
        }
        // Values never contain `-` once escaped: text holding a `-` between two
        // placeholders is what tells where one value ends and the next begins.
        let mut previous_placeholder = false;
        let mut separated = true;
        for p in &pieces {
            match p {
                Piece::Text(t) => separated = t.contains('-'),
                _ if previous_placeholder && !separated => {
                    return Err(format!(
                        "function \"{s}\": placeholders must be separated by text containing `-` (e.g. `{{namespace}}-{{action}}`), or two actions could render to the same function"
                    ));
                }
                _ => {}
            }
            if !matches!(p, Piece::Text(_)) {
                previous_placeholder = true;
                separated = false;
            }
        }
        let template = Self {
            source: s.to_string(),
            pieces,
        };
        if !template.has_placeholders() {
            validate_function_name(s)?;
        } else if !s.contains(':') {
            let text: usize = template
                .pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.len(),
                    _ => 1,
                })
                .sum();
            if text + HASH_MARK.len() + HASH_HEX > MAX_FUNCTION_NAME {
                return Err(format!(
                    "function \"{s}\" leaves no room for the action's names within Lambda's {MAX_FUNCTION_NAME} characters"
                ));
            }
        }
        Ok(template)
    }

    /// True if the template has placeholders.
    pub(crate) fn has_placeholders(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Text(_)))
    }

    /// True if the template uses the placeholder for this segment.
    pub fn uses(&self, segment: TemplateSegment) -> bool {
        self.pieces.iter().any(|p| {
            matches!(
                (p, segment),
                (Piece::Namespace, TemplateSegment::Namespace)
                    | (Piece::Package, TemplateSegment::Package)
                    | (Piece::Action, TemplateSegment::Action)
            )
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Renders the function for `path` (resolved namespace).
    pub fn render(&self, path: &ActionPath) -> Result<String, String> {
        if !self.has_placeholders() {
            return Ok(self.source.clone());
        }
        let mut values: Vec<String> = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Text(_) => String::new(),
                Piece::Namespace => escape_segment(&path.namespace),
                Piece::Package => escape_segment(path.package.as_deref().unwrap_or("")),
                Piece::Action => escape_segment(&path.action),
            })
            .collect();
        let out = self.join(&values, None);
        if out.contains(':') || out.len() <= MAX_FUNCTION_NAME {
            validate_function_name(&out)?;
            return Ok(out);
        }
        // Too long for Lambda: shorten the longest values until the name and the hash
        // fit (parse() made sure the template's own text leaves room).
        let mut excess = out.len() + HASH_MARK.len() + HASH_HEX - MAX_FUNCTION_NAME;
        while excess > 0 {
            let Some(longest) = values
                .iter_mut()
                .filter(|v| v.len() > 1)
                .max_by_key(|v| v.len())
            else {
                return Err(format!("function \"{}\" cannot fit {out}", self.source));
            };
            longest.pop();
            excess -= 1;
        }
        let hashed = self.join(&values, Some(&action_hash(path)));
        validate_function_name(&hashed)?;
        Ok(hashed)
    }

    fn join(&self, values: &[String], hash: Option<&str>) -> String {
        let mut out = String::with_capacity(MAX_FUNCTION_NAME + 16);
        for (p, v) in self.pieces.iter().zip(values) {
            match p {
                Piece::Text(t) => out.push_str(t),
                _ => out.push_str(v),
            }
        }
        if let Some(h) = hash {
            out.push_str(HASH_MARK);
            out.push_str(h);
        }
        out
    }
}

/// One position of a template's rendering, for comparing templates: a known byte, or a
/// substituted value (one or more of `A-Z a-z 0-9 _`, what escaped values hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tok {
    Byte(u8),
    Value,
}

/// A piece of one `-`-separated field, as an automaton position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Byte(u8),
    /// One value character.
    One,
    /// Zero or more value characters.
    Many,
}

fn value_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn elems(field: &[Tok]) -> Vec<Elem> {
    field
        .iter()
        .flat_map(|t| match t {
            Tok::Byte(b) => vec![Elem::Byte(*b)],
            Tok::Value => vec![Elem::One, Elem::Many],
        })
        .collect()
}

/// True if some string matches both fields (a product of their automata).
fn fields_meet(a: &[Tok], b: &[Tok]) -> bool {
    let (a, b) = (elems(a), elems(b));
    let (n, m) = (a.len(), b.len());
    let mut seen = vec![false; (n + 1) * (m + 1)];
    let mut stack = vec![(0, 0)];
    while let Some((i, j)) = stack.pop() {
        if std::mem::replace(&mut seen[i * (m + 1) + j], true) {
            continue;
        }
        if i == n && j == m {
            return true;
        }
        // `Many` may match nothing.
        if i < n && a[i] == Elem::Many {
            stack.push((i + 1, j));
        }
        if j < m && b[j] == Elem::Many {
            stack.push((i, j + 1));
        }
        if i < n && j < m {
            let meet = match (a[i], b[j]) {
                (Elem::Byte(x), Elem::Byte(y)) => x == y,
                (Elem::Byte(x), _) | (_, Elem::Byte(x)) => value_byte(x),
                _ => true,
            };
            if meet {
                let ni = if a[i] == Elem::Many { i } else { i + 1 };
                let nj = if b[j] == Elem::Many { j } else { j + 1 };
                stack.push((ni, nj));
            }
        }
    }
    false
}

impl FunctionTemplate {
    /// The rendering as bytes and values, with the placeholders of literal pattern
    /// segments filled in; `None` for ARNs and qualified names (not compared) and for
    /// fixed names (sharing one is a choice).
    /// The shape of the names this template renders for a route with `pattern`, for
    /// comparing routes ([`NameShape::may_meet`]); built once per route.
    pub(crate) fn name_shape(&self, pattern: &ActionPattern) -> Option<NameShape> {
        let tokens = self.shape(pattern)?;
        Some(NameShape {
            fields: tokens
                .split(|t| *t == Tok::Byte(b'-'))
                .map(<[Tok]>::to_vec)
                .collect(),
        })
    }

    fn shape(&self, pattern: &ActionPattern) -> Option<Vec<Tok>> {
        if self.source.contains(':') || !self.has_placeholders() {
            return None;
        }
        let mut out = Vec::new();
        for p in &self.pieces {
            let literal = match p {
                Piece::Text(t) => {
                    out.extend(t.bytes().map(Tok::Byte));
                    continue;
                }
                Piece::Namespace => pattern.namespace.literal(),
                Piece::Package => pattern.package.as_ref().and_then(Segment::literal),
                Piece::Action => pattern.action.literal(),
            };
            match literal {
                Some(l) => out.extend(escape_segment(l).bytes().map(Tok::Byte)),
                None => out.push(Tok::Value),
            }
        }
        Some(out)
    }

    /// True if this template (of a route with `pattern`) and `other` (of a route with
    /// `other_pattern`) could render the same function name for two different
    /// actions. Values hold no `-`, so names meet only field by field between `-`s;
    /// shortened names (with `--`) meet no unshortened one, and each other only through
    /// their hashes. (The policy compiles every route's shape into a
    /// [`ShapeIndex`] instead, which finds a meeting in linear time; this pairwise
    /// form is the index's oracle in tests.)
    #[cfg(test)]
    pub(crate) fn may_share(
        &self,
        pattern: &ActionPattern,
        other: &FunctionTemplate,
        other_pattern: &ActionPattern,
    ) -> bool {
        match (self.name_shape(pattern), other.name_shape(other_pattern)) {
            (Some(a), Some(b)) => a.may_meet(&b),
            _ => false,
        }
    }
}

/// The names a route's template renders, as `-`-separated fields of known bytes and
/// values (values hold no `-`). `None` from [`FunctionTemplate::name_shape`] for ARNs,
/// qualified names and fixed names, which are not compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameShape {
    fields: Vec<Vec<Tok>>,
}

impl NameShape {
    fn fixed(field: &[Tok]) -> bool {
        field.iter().all(|t| matches!(t, Tok::Byte(_)))
    }

    /// Which fields are fixed bytes.
    fn mask(&self) -> Vec<bool> {
        self.fields.iter().map(|f| Self::fixed(f)).collect()
    }

    /// The fixed fields' bytes, in order.
    fn fixed_fields(&self) -> Vec<&[Tok]> {
        self.fields
            .iter()
            .filter(|f| Self::fixed(f))
            .map(Vec::as_slice)
            .collect()
    }

    /// True if some name has both shapes. Fixed fields are compared first (no
    /// allocation), the automaton only where a value is involved.
    pub(crate) fn may_meet(&self, other: &NameShape) -> bool {
        let fixed = Self::fixed;
        self.fields.len() == other.fields.len()
            && self
                .fields
                .iter()
                .zip(&other.fields)
                .all(|(a, b)| if fixed(a) && fixed(b) { a == b } else { true })
            && self
                .fields
                .iter()
                .zip(&other.fields)
                .all(|(a, b)| (fixed(a) && fixed(b)) || fields_meet(a, b))
    }
}

/// The routes' name shapes seen so far, indexed so a policy's check costs about one
/// lookup per route: shapes with the same fixed fields in the same places meet only
/// when those fields are equal (a hash lookup); only shapes of other layouts — few in
/// any policy — are compared one by one.
#[derive(Debug, Default)]
pub(crate) struct ShapeIndex {
    groups: Vec<ShapeGroup>,
}

#[derive(Debug)]
struct ShapeGroup {
    mask: Vec<bool>,
    by_fixed: std::collections::HashMap<Vec<Vec<Tok>>, Vec<(usize, NameShape)>>,
}

impl ShapeIndex {
    /// Adds the shape of route `id`; returns an earlier route whose names could meet it.
    pub(crate) fn insert(&mut self, id: usize, shape: NameShape) -> Option<usize> {
        let mask = shape.mask();
        let key: Vec<Vec<Tok>> = shape
            .fixed_fields()
            .into_iter()
            .map(<[Tok]>::to_vec)
            .collect();
        let mut found = None;
        for g in self.groups.iter().filter(|g| g.mask.len() == mask.len()) {
            let candidates: Box<dyn Iterator<Item = &(usize, NameShape)>> = if g.mask == mask {
                Box::new(g.by_fixed.get(&key).into_iter().flatten())
            } else {
                Box::new(g.by_fixed.values().flatten())
            };
            if let Some((earlier, _)) = candidates
                .filter(|(_, s)| s.may_meet(&shape))
                .min_by_key(|(i, _)| *i)
            {
                found = Some(found.map_or(*earlier, |f: usize| f.min(*earlier)));
            }
        }
        let group = match self.groups.iter_mut().position(|g| g.mask == mask) {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(ShapeGroup {
                    mask,
                    by_fixed: std::collections::HashMap::new(),
                });
                self.groups.last_mut().expect("just pushed")
            }
        };
        group.by_fixed.entry(key).or_default().push((id, shape));
        found
    }
}

/// A placeholder of a function template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSegment {
    /// `{namespace}`.
    Namespace,
    /// `{package}`.
    Package,
    /// `{action}`.
    Action,
}

/// Escapes one OpenWhisk name segment for a Lambda function name, reversibly: ASCII
/// letters and digits stay, `-` becomes `__`, every other byte becomes `_` and two
/// uppercase hex digits (`a.b` → `a_2Eb`, `a b` → `a_20b`, `a_b` → `a_5Fb`). The codes
/// are prefix-free (`__` vs `_HH`), and the result never contains `-`.
pub fn escape_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            b'-' => out.push_str("__"),
            other => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('_');
                out.push(HEX[usize::from(other >> 4)] as char);
                out.push(HEX[usize::from(other & 0xF)] as char);
            }
        }
    }
    out
}

/// The first [`HASH_HEX`] hex digits of SHA-256 over `/namespace[/package]/action`.
fn action_hash(path: &ActionPath) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(path.qualified_name_with_leading_slash().as_bytes());
    let mut hex = String::with_capacity(HASH_HEX);
    for b in &digest[..HASH_HEX.div_ceil(2)] {
        hex.push_str(&format!("{b:02x}"));
    }
    hex.truncate(HASH_HEX);
    hex
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

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// 0-based position in the file (first match wins).
    pub index: usize,
    /// 1-based line of the `[[route]]` entry.
    pub line: usize,
    /// Which actions the route covers.
    pub pattern: ActionPattern,
    /// The pattern as written (`guest/*`): the route's name in metrics, logs and
    /// traces, made once.
    pub label: Arc<str>,
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
    /// Web calls (`/api/v1/web/…`) of the actions it covers: `Some(false)` leaves them
    /// to the controller; unset serves them where owl can look up the owner.
    pub web: Option<bool>,
}

impl Route {
    /// True when the route serves web calls of its actions.
    pub(crate) fn serves_web(&self) -> bool {
        self.web != Some(false)
    }
}

impl Route {
    /// Decides, for one invocation, whether it goes to Lambda. `draw` is uniform in
    /// `[0, 100)`.
    pub(crate) fn takes(&self, draw: f64) -> bool {
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
            "owl-guest-my_20pkg-hello_2Eworld"
        );
        assert_eq!(
            t.render(&path("guest/pkg/hello-world")).unwrap(),
            "owl-guest-pkg-hello__world"
        );
        assert!(FunctionTemplate::parse("owl-{package}", false).is_err());
        assert!(FunctionTemplate::parse("owl-{nope}", false).is_err());
        assert!(FunctionTemplate::parse("owl-{action", false).is_err());
        assert!(FunctionTemplate::parse("owl fn", false).is_err());
        assert!(FunctionTemplate::parse(&"x".repeat(65), false).is_err());
        // placeholders must be told apart: text with a `-` between them
        assert!(FunctionTemplate::parse("{namespace}{action}", false).is_err());
        assert!(FunctionTemplate::parse("{namespace}_{action}", false).is_err());
        assert!(FunctionTemplate::parse("x{namespace}-{action}y", false).is_ok());
        // no room left for the values within 64 characters
        assert!(FunctionTemplate::parse(&format!("{}-{{action}}", "x".repeat(47)), false).is_err());
        assert!(FunctionTemplate::parse(&format!("{}-{{action}}", "x".repeat(45)), false).is_ok());
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

    /// Templates of two routes that could render one name are found; templates that
    /// cannot are not flagged.
    #[test]
    fn templates_of_two_routes_that_could_meet() {
        let t = |s: &str, pkg: bool| FunctionTemplate::parse(s, pkg).unwrap();
        let p = |s: &str| ActionPattern::parse(s).unwrap();
        let meet = |a: (&str, &str), b: (&str, &str)| {
            let (pa, pb) = (p(a.0), p(b.0));
            t(a.1, pa.package.is_some()).may_share(&pa, &t(b.1, pb.package.is_some()), &pb)
        };
        // the reviewer's cases
        assert!(meet(
            ("*/*", "a-{namespace}-{action}"),
            ("*/*/*", "{namespace}-{package}-{action}")
        ));
        assert!(meet(("alice/*", "owl-{action}"), ("bob/*", "owl-{action}")));
        // the documented pair: different numbers of fields, never meet
        assert!(!meet(
            ("*/*", "owl-{namespace}-{action}"),
            ("*/*/*", "owl-{namespace}-{package}-{action}")
        ));
        // literal segments filled in
        assert!(!meet(
            ("alice/*", "owl-{namespace}-{action}"),
            ("bob/*", "owl-{namespace}-{action}")
        ));
        assert!(!meet(
            ("shop/*", "owl-shop-{action}"),
            ("team/*", "owl-team-{action}")
        ));
        assert!(meet(
            ("shop/*", "owl-shop-{action}"),
            ("*/*", "owl-{namespace}-{action}")
        ));
        // a literal that no value can hold
        assert!(!meet(("a/*", "x{action}-y"), ("b/*", "x-{action}")));
        assert!(meet(("a/*", "x{action}"), ("b/*", "xy{action}")));
        assert!(!meet(("a/*", "x{action}"), ("b/*", "fixed")));
    }

    /// The audit's examples (issue 15 §1): each pair used to render to one function.
    #[test]
    fn distinct_actions_render_to_distinct_functions() {
        let t3 = FunctionTemplate::parse("owl-{namespace}-{package}-{action}", true).unwrap();
        let t2 = FunctionTemplate::parse("owl-{namespace}-{action}", false).unwrap();
        let groups: [(&FunctionTemplate, &[&str]); 3] = [
            (
                &t3,
                &[
                    "shop/images/a.b",
                    "shop/images/a-b",
                    "shop/images/a b",
                    "shop/images/a@b",
                    "shop/images/a_b",
                    "shop/images/a&b",
                ],
            ),
            (
                &t3,
                &["shop/a-b/c", "shop/a/b-c", "shop/a_b/c", "shop/a/b_c"],
            ),
            (
                &t2,
                &[
                    "team/a-report",
                    "team-a/report",
                    "team_a/report",
                    "team/a_report",
                ],
            ),
        ];
        for (t, paths) in groups {
            let rendered: Vec<String> = paths.iter().map(|p| t.render(&path(p)).unwrap()).collect();
            let unique: std::collections::HashSet<&String> = rendered.iter().collect();
            assert_eq!(unique.len(), paths.len(), "{paths:?} -> {rendered:?}");
        }
    }

    #[test]
    fn escape_is_reversible() {
        fn unescape(s: &str) -> String {
            let b = s.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'_' {
                    if b[i + 1] == b'_' {
                        out.push(b'-');
                        i += 2;
                    } else {
                        out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                        i += 3;
                    }
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        }
        for v in [
            "a",
            "a-b",
            "a--b",
            "a_b",
            "_a",
            "a-_b",
            "a.b c@d&e-",
            "x__y",
            "A_2D",
        ] {
            let e = escape_segment(v);
            assert!(!e.contains('-'), "{e}");
            assert_eq!(unescape(&e), v);
        }
    }

    /// Names past 64 characters are shortened and carry a hash of the action's fully
    /// qualified name: still distinct, still valid, and told apart from unhashed names
    /// by one more `-`.
    #[test]
    fn long_names_are_hashed() {
        let t = FunctionTemplate::parse("owl-{namespace}-{action}", false).unwrap();
        let long = "a".repeat(80);
        let a = t.render(&path(&format!("ns/{long}"))).unwrap();
        let b = t.render(&path(&format!("ns/{long}b"))).unwrap();
        assert_eq!(a.len(), MAX_FUNCTION_NAME);
        assert_eq!(b.len(), MAX_FUNCTION_NAME);
        assert_ne!(a, b);
        assert!(a.starts_with("owl-ns-aaaa"), "{a}");
        assert_eq!(a.matches('-').count(), 4, "{a}");
        assert!(a.contains("--"), "{a}");
        assert!(validate_function_name(&a).is_ok());
        // the same path always renders the same name (owl sync and the gateway agree)
        assert_eq!(a, t.render(&path(&format!("ns/{long}"))).unwrap());
        // both values are shortened when both are long
        let c = t
            .render(&path(&format!("{}/{long}", "n".repeat(60))))
            .unwrap();
        assert_eq!(c.len(), MAX_FUNCTION_NAME);
        assert!(c.starts_with("owl-nnnn"), "{c}");
    }
}
