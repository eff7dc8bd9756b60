//! Parsing the activations list query exactly as the controller does (reference §3):
//! parameters read in the controller's order (`skip`, `limit`, `count`, `docs`, `name`,
//! `since`, `upto`), each failure a 400 with the controller's text.

use super::store::ListQuery;
use crate::error::WhiskError;
use crate::whisk::messages;
use crate::whisk::names::validate_segment;

/// Default page size (`whisk.query-limit.default-list-limit`).
pub const DEFAULT_LIMIT: u64 = 30;
/// Largest page (`whisk.query-limit.max-list-limit`).
pub const MAX_LIMIT: u64 = 200;

fn malformed(param: &str, text: &str) -> WhiskError {
    WhiskError::rejected(format!(
        "The query parameter '{param}' was malformed:\n{text}"
    ))
}

fn decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn parse_bool(name: &str, v: Option<&str>) -> Result<bool, WhiskError> {
    match v.map(str::to_lowercase).as_deref() {
        None | Some("") | Some("false" | "no" | "off" | "0") => Ok(false),
        Some("true" | "yes" | "on" | "1") => Ok(true),
        Some(lower) => Err(WhiskError::rejected(messages::malformed_boolean(
            name, lower,
        ))),
    }
}

/// Parses a list query string.
pub fn parse(query: Option<&str>) -> Result<ListQuery, WhiskError> {
    parse_with(query, MAX_LIMIT)
}

/// [`parse`] for a deployment whose largest page is `max_limit`.
pub fn parse_with(query: Option<&str>, max_limit: u64) -> Result<ListQuery, WhiskError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match (decode(k), decode(v)) {
            (Some(k), Some(v)) => pairs.push((k, v)),
            _ => {
                return Err(WhiskError::rejected(messages::malformed_content(
                    "The request's query string is invalid.",
                )));
            }
        }
    }
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let skip = match get("skip") {
        None => 0,
        Some(v) => match v.parse::<i32>() {
            Ok(n) if n >= 0 => n as u64,
            Ok(n) => {
                return Err(malformed(
                    "skip",
                    &format!("The value '{n}' is not greater than or equal to 0 for activations."),
                ));
            }
            Err(_) => {
                return Err(malformed(
                    "skip",
                    &format!("The value '{v}' is not an integer for activations."),
                ));
            }
        },
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<i32>() {
            Ok(0) => max_limit,
            Ok(n) if n > 0 && (n as u64) <= max_limit => n as u64,
            Ok(n) => {
                return Err(malformed(
                    "limit",
                    &format!(
                        "The value '{n}' is not in the range of 0 to {max_limit} for activations."
                    ),
                ));
            }
            Err(_) => {
                return Err(malformed(
                    "limit",
                    &format!("The value '{v}' is not an integer for activations."),
                ));
            }
        },
    };
    let count = parse_bool("count", get("count"))?;
    let docs = parse_bool("docs", get("docs"))?;
    let name = match get("name") {
        None => None,
        Some(v) => {
            let segments: Vec<&str> = v.split('/').filter(|s| !s.is_empty()).collect();
            let valid = !segments.is_empty()
                && segments.len() <= 2
                && segments.iter().all(|s| validate_segment(s).is_ok());
            if valid {
                Some(segments.join("/"))
            } else if v.trim().is_empty() {
                None
            } else {
                return Err(malformed(
                    "name",
                    &format!("Parameter may be a 'simple' name or 'package-name/simple' name: {v}"),
                ));
            }
        }
    };
    let epoch = |param: &str| -> Result<Option<i64>, WhiskError> {
        match get(param) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                malformed(
                    param,
                    &format!("Parameter is not a valid value for epoch seconds: {v}"),
                )
            }),
        }
    };
    let since = epoch("since")?;
    let upto = epoch("upto")?;
    if count && docs {
        return Err(WhiskError::bad_request(
            "The parameter 'docs' is not permitted with 'count'.",
        ));
    }
    Ok(ListQuery {
        skip,
        limit,
        name,
        since,
        upto,
        docs,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        parse(Some(q)).unwrap_err().message
    }

    #[test]
    fn defaults_and_values() {
        let q = parse(None).unwrap();
        assert_eq!((q.skip, q.limit, q.docs, q.count), (0, 30, false, false));
        let q = parse(Some(
            "limit=0&skip=5&name=pkg//act&since=10&upto=20&docs=true",
        ))
        .unwrap();
        assert_eq!(q.limit, 200);
        assert_eq!(q.skip, 5);
        assert_eq!(q.name.as_deref(), Some("pkg/act"));
        assert_eq!((q.since, q.upto), (Some(10), Some(20)));
        assert!(parse(Some("name=%20")).unwrap().name.is_none());
    }

    #[test]
    fn texts() {
        assert_eq!(
            err("limit=201"),
            "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for activations."
        );
        assert_eq!(
            err("limit=-1"),
            "The query parameter 'limit' was malformed:\nThe value '-1' is not in the range of 0 to 200 for activations."
        );
        assert_eq!(
            err("limit=x"),
            "The query parameter 'limit' was malformed:\nThe value 'x' is not an integer for activations."
        );
        assert_eq!(
            err("skip=-2"),
            "The query parameter 'skip' was malformed:\nThe value '-2' is not greater than or equal to 0 for activations."
        );
        assert_eq!(
            err("skip=x&limit=x"),
            "The query parameter 'skip' was malformed:\nThe value 'x' is not an integer for activations."
        );
        assert_eq!(
            err("name=a/b/c"),
            "The query parameter 'name' was malformed:\nParameter may be a 'simple' name or 'package-name/simple' name: a/b/c"
        );
        assert_eq!(
            err("since=yesterday"),
            "The query parameter 'since' was malformed:\nParameter is not a valid value for epoch seconds: yesterday"
        );
        assert_eq!(
            err("docs=maybe"),
            "The query parameter 'docs' was malformed:\n'maybe' is not a valid Boolean value"
        );
        let e = parse(Some("count=true&docs=true")).unwrap_err();
        assert_eq!(
            e.message,
            "The parameter 'docs' is not permitted with 'count'."
        );
        assert!(e.cors);
    }
}
