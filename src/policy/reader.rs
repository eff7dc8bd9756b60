//! A small typed reader over toml's spanned document tree that collects every error
//! (unknown keys, wrong types, bad values) instead of stopping at the first, so
//! `owl policy check` can print them all with their positions.

use super::diagnostics::Diagnostic;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Reads one TOML table, remembering which keys were consumed.
pub(super) struct TableReader<'a, 'i> {
    table: &'a DeTable<'i>,
    span: Range<usize>,
    context: String,
    allowed: &'static [&'static str],
}

/// Error collector shared by all readers of one document.
#[derive(Default)]
pub(super) struct Errors(pub Vec<Diagnostic>);

impl Errors {
    /// Records a problem at `span`.
    pub(super) fn push(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.0.push(Diagnostic::new(span, message));
    }
}

/// A value with the span of the text it came from.
pub(super) type At<T> = (T, Range<usize>);

impl<'a, 'i> TableReader<'a, 'i> {
    /// A reader for `table` (named `context` in messages, e.g. `[controller]`) whose
    /// valid keys are `allowed`. Unknown keys are reported immediately.
    pub(super) fn new(
        table: &'a DeTable<'i>,
        span: Range<usize>,
        context: impl Into<String>,
        allowed: &'static [&'static str],
        errors: &mut Errors,
    ) -> Self {
        let context = context.into();
        for (k, _) in table.iter() {
            if !allowed.contains(&k.get_ref().as_ref()) {
                let hint = closest(k.get_ref(), allowed)
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                errors.push(
                    k.span(),
                    format!(
                        "unknown key `{}` in {context}; {hint}valid keys: {}",
                        k.get_ref(),
                        allowed.join(", ")
                    ),
                );
            }
        }
        Self {
            table,
            span,
            context,
            allowed,
        }
    }

    /// The span of the table itself.
    pub(super) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The context name used in messages.
    pub(super) fn context(&self) -> &str {
        &self.context
    }

    fn raw(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        debug_assert!(self.allowed.contains(&key), "{key} not declared");
        self.table.get(key)
    }

    /// A string value.
    pub(super) fn string(&self, key: &str, errors: &mut Errors) -> Option<At<String>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span())),
            other => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` in {} must be a string, not {}",
                        self.context,
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A required string value.
    pub(super) fn required_string(&self, key: &str, errors: &mut Errors) -> Option<At<String>> {
        if self.raw(key).is_none() {
            errors.push(
                self.span(),
                format!("{} is missing the required key `{key}`", self.context),
            );
            return None;
        }
        self.string(key, errors)
    }

    /// A boolean value.
    pub(super) fn boolean(&self, key: &str, errors: &mut Errors) -> Option<At<bool>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some((*b, v.span())),
            other => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` in {} must be true or false, not {}",
                        self.context,
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A number (integer or float) within `range`.
    pub(super) fn number(
        &self,
        key: &str,
        min: f64,
        max: f64,
        errors: &mut Errors,
    ) -> Option<At<f64>> {
        let v = self.raw(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|i| i as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            other => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` in {} must be a number, not {}",
                        self.context,
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        match n {
            Some(n) if n.is_finite() && n >= min && n <= max => Some((n, v.span())),
            _ => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` in {} must be between {min} and {max}",
                        self.context
                    ),
                );
                None
            }
        }
    }

    /// A positive integer within `min..=max`.
    pub(super) fn integer(
        &self,
        key: &str,
        min: u64,
        max: u64,
        errors: &mut Errors,
    ) -> Option<At<u64>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match u64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if n >= min && n <= max => Some((n, v.span())),
                _ => {
                    errors.push(
                        v.span(),
                        format!(
                            "`{key}` in {} must be an integer from {min} to {max}",
                            self.context
                        ),
                    );
                    None
                }
            },
            other => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` in {} must be an integer, not {}",
                        self.context,
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A duration written with a unit: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, within
    /// `min..=max`.
    pub(super) fn duration(
        &self,
        key: &str,
        min: Duration,
        max: Duration,
        errors: &mut Errors,
    ) -> Option<At<Duration>> {
        let (s, span) = self.string(key, errors)?;
        match parse_duration(&s) {
            Some(d) if d >= min && d <= max => Some((d, span)),
            Some(_) => {
                errors.push(
                    span,
                    format!(
                        "`{key}` in {} must be between {} and {}",
                        self.context,
                        format_duration(min),
                        format_duration(max)
                    ),
                );
                None
            }
            None => {
                errors.push(
                    span,
                    format!(
                        "`{key}` in {}: \"{s}\" is not a duration; write a number and a unit, e.g. \"250ms\", \"30s\", \"5m\"",
                        self.context
                    ),
                );
                None
            }
        }
    }

    /// A string that must be one of `choices`.
    pub(super) fn choice(
        &self,
        key: &str,
        choices: &[&str],
        errors: &mut Errors,
    ) -> Option<At<String>> {
        let (s, span) = self.string(key, errors)?;
        if choices.contains(&s.as_str()) {
            Some((s, span))
        } else {
            let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
            errors.push(
                span,
                format!(
                    "`{key}` in {} must be one of {}, not \"{s}\"",
                    self.context,
                    quoted.join(", ")
                ),
            );
            None
        }
    }

    /// A sub-table.
    pub(super) fn table(
        &self,
        key: &str,
        allowed: &'static [&'static str],
        errors: &mut Errors,
    ) -> Option<TableReader<'a, 'i>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(TableReader::new(
                t,
                v.span(),
                format!("[{}]", join_context(&self.context, key)),
                allowed,
                errors,
            )),
            other => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` in {} must be a table, not {}",
                        self.context,
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A table of named tables (`[key.<name>]`), each read with `allowed` keys.
    pub(super) fn named_tables(
        &self,
        key: &str,
        allowed: &'static [&'static str],
        errors: &mut Errors,
    ) -> Vec<(At<String>, TableReader<'a, 'i>)> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let DeValue::Table(t) = v.get_ref() else {
            errors.push(
                v.span(),
                format!("`{key}` in {} must be a table", self.context),
            );
            return Vec::new();
        };
        t.iter()
            .filter_map(|(name, val)| match val.get_ref() {
                DeValue::Table(inner) => Some((
                    (name.get_ref().to_string(), name.span()),
                    TableReader::new(
                        inner,
                        val.span(),
                        format!("[{}.{}]", join_context(&self.context, key), name.get_ref()),
                        allowed,
                        errors,
                    ),
                )),
                other => {
                    errors.push(
                        val.span(),
                        format!(
                            "`{key}.{}` must be a table, not {}",
                            name.get_ref(),
                            type_name(other)
                        ),
                    );
                    None
                }
            })
            .collect()
    }

    /// An array of tables (`[[key]]`).
    pub(super) fn array_of_tables(
        &self,
        key: &str,
        allowed: &'static [&'static str],
        errors: &mut Errors,
    ) -> Vec<TableReader<'a, 'i>> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item.get_ref() {
                    DeValue::Table(t) => Some(TableReader::new(
                        t,
                        item.span(),
                        format!("[[{key}]] #{}", i + 1),
                        allowed,
                        errors,
                    )),
                    other => {
                        errors.push(
                            item.span(),
                            format!(
                                "each `{key}` must be a table ([[{key}]]), not {}",
                                type_name(other)
                            ),
                        );
                        None
                    }
                })
                .collect(),
            other => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` must be an array of tables ([[{key}]]), not {}",
                        type_name(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// A string or an array of strings (at least one).
    pub(super) fn strings(&self, key: &str, errors: &mut Errors) -> Option<At<Vec<String>>> {
        let v = self.raw(key)?;
        let list = match v.get_ref() {
            DeValue::String(s) => vec![s.to_string()],
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(s.to_string()),
                        other => {
                            errors.push(
                                item.span(),
                                format!(
                                    "`{key}` in {} must hold strings, not {}",
                                    self.context,
                                    type_name(other)
                                ),
                            );
                            return None;
                        }
                    }
                }
                out
            }
            other => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` in {} must be a string or an array of strings, not {}",
                        self.context,
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        if list.is_empty() {
            errors.push(
                v.span(),
                format!("`{key}` in {} must not be empty", self.context),
            );
            return None;
        }
        Some((list, v.span()))
    }

    /// A free-form table, converted to a JSON object (datetimes become strings).
    pub(super) fn json_object(
        &self,
        key: &str,
        errors: &mut Errors,
    ) -> Option<At<serde_json::Map<String, serde_json::Value>>> {
        let v = self.raw(key)?;
        match to_json(v.get_ref()) {
            serde_json::Value::Object(m) => Some((m, v.span())),
            _ => {
                errors.push(
                    v.span(),
                    format!(
                        "`{key}` in {} must be a table, e.g. {{ name = \"value\" }}",
                        self.context
                    ),
                );
                None
            }
        }
    }

    /// The entries of a free-form table (`[key]` whose keys are data, not settings):
    /// each key and its value (as JSON) with their spans.
    pub(super) fn entries(
        &self,
        key: &str,
        errors: &mut Errors,
    ) -> Vec<(At<String>, At<serde_json::Value>)> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let DeValue::Table(t) = v.get_ref() else {
            errors.push(
                v.span(),
                format!("`{key}` in {} must be a table", self.context),
            );
            return Vec::new();
        };
        t.iter()
            .map(|(k, val)| {
                (
                    (k.get_ref().to_string(), k.span()),
                    (to_json(val.get_ref()), val.span()),
                )
            })
            .collect()
    }

    /// True if `key` is present.
    pub(super) fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// Where `key`'s value is (the table's span when the key is absent).
    pub(super) fn value_span(&self, key: &str) -> Range<usize> {
        self.raw(key).map_or_else(|| self.span(), |v| v.span())
    }
}

fn join_context(context: &str, key: &str) -> String {
    let inner = context.trim_start_matches('[').trim_end_matches(']');
    if inner.is_empty() || context == "the policy" {
        key.to_string()
    } else {
        format!("{inner}.{key}")
    }
}

/// Converts a TOML value to JSON.
pub(super) fn to_json(v: &DeValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(Value::from)
            .unwrap_or(Value::Null),
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(|i| to_json(i.get_ref())).collect()),
        DeValue::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref())))
                .collect(),
        ),
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Parses `"250ms"`, `"30s"`, `"1.5s"`, `"5m"`, `"1h"`, `"7d"`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return None,
    };
    // `try_`: a number too large for a `Duration` is not a duration (no panic).
    Duration::try_from_secs_f64(secs).ok()
}

/// Formats a duration the way the policy file writes it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The allowed word closest to `word` by edit distance, if close enough to be a typo.
fn closest<'s>(word: &str, allowed: &[&'s str]) -> Option<&'s str> {
    allowed
        .iter()
        .map(|a| (edit_distance(word, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn typo_hints() {
        assert_eq!(closest("wieght", &["weight", "action"]), Some("weight"));
        assert_eq!(closest("zzz", &["weight", "action"]), None);
    }
}
