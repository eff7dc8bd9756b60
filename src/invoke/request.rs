//! Reading an invoke request as the controller reads it (reference §1.3, §1.4):
//! `blocking` / `result` / `timeout` query parameters and the JSON object body, with
//! OpenWhisk's status codes and texts for every malformed input.

use crate::error::WhiskError;
use crate::whisk::messages;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, header};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::time::Duration;

/// The default and largest blocking wait (`whisk.controller.activation.max-wait-for-blocking-activation`).
pub(crate) const MAX_WAIT_MS: u64 = 60_000;
/// Kafka's serialisation overhead OpenWhisk allows on top of the payload limit for the
/// whole activation message (`serdes-overhead`).
pub(crate) const MESSAGE_OVERHEAD: usize = 6068;
/// Beyond this owl stops counting an oversized chunked body and closes the request
/// (the controller's own `max-content-length`).
pub(crate) const HARD_BODY_CAP: u64 = 50 * 1024 * 1024;

/// Options from the query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvokeOptions {
    /// Wait for the result.
    pub blocking: bool,
    /// Answer with the result only (blocking only).
    pub result: bool,
    /// How long a blocking request waits.
    pub wait: Duration,
}

/// Parses `blocking`, `result` and `timeout`; the first malformed one (in that order)
/// is the error, as with the controller's chained parameter directives.
pub(crate) fn parse_query(query: Option<&str>) -> Result<InvokeOptions, WhiskError> {
    parse_query_with(query, MAX_WAIT_MS)
}

/// [`parse_query`] for a deployment whose longest blocking wait is `max_wait_ms`.
pub fn parse_query_with(
    query: Option<&str>,
    max_wait_ms: u64,
) -> Result<InvokeOptions, WhiskError> {
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(k), Some(v)) = (decode_component(k), decode_component(v)) else {
                return Err(WhiskError::rejected(messages::malformed_content(
                    "The request's query string is invalid.",
                )));
            };
            params.push((k, v));
        }
    }
    let first = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let blocking = parse_bool("blocking", first("blocking"))?;
    let result = parse_bool("result", first("result"))?;
    let wait = match first("timeout") {
        None => Duration::from_millis(max_wait_ms),
        Some(v) => match v.parse::<i32>() {
            Ok(ms) if ms > 0 && (ms as u64) <= max_wait_ms => Duration::from_millis(ms as u64),
            _ => {
                return Err(WhiskError::rejected(messages::malformed_timeout(
                    max_wait_ms,
                )));
            }
        },
    };
    Ok(InvokeOptions {
        blocking,
        result,
        wait,
    })
}

fn decode_component(s: &str) -> Option<String> {
    let s = s.replace('+', " ");
    // Reject malformed escapes the way a strict URI parser does.
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return None;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(&s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The HTTP library's Boolean reading: `true/yes/on/1`, `false/no/off/0`, any case;
/// an empty value means the default.
fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, WhiskError> {
    let Some(v) = value else { return Ok(false) };
    // The HTTP library lower-cases the value before matching, and its message shows
    // the lower-cased value.
    match v.to_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" | "" => Ok(false),
        lower => Err(WhiskError::rejected(messages::malformed_boolean(
            name, lower,
        ))),
    }
}

/// The declared body length, if any.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// 413 when the declared length is over `max` (checked before reading anything).
pub(crate) fn check_declared_length(headers: &HeaderMap, max: u64) -> Result<(), WhiskError> {
    match content_length(headers) {
        Some(len) if len > max => Err(WhiskError::payload_too_large(len, max)),
        _ => Ok(()),
    }
}

/// 415 unless the body is `application/json` (any parameters) or has no content type.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), WhiskError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = ct.to_str().unwrap_or("");
    let media = text.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(WhiskError::unsupported_media_type(&render_content_type(
            text,
        )))
    }
}

/// Renders a Content-Type as the HTTP library prints a parsed one: media type in
/// lower case, parameters as `; name=value`, charset names upper-cased.
fn render_content_type(raw: &str) -> String {
    let mut parts = raw.split(';');
    let mut out = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().trim_matches('"');
        if k == "charset" {
            out.push_str(&format!("; charset={}", v.to_ascii_uppercase()));
        } else {
            out.push_str(&format!("; {k}={v}"));
        }
    }
    out
}

/// Reads the body up to `max` bytes, all of it within `read_timeout` (one deadline
/// for the whole body, as the controller's strict-entity timeout). A body over `max` is
/// still counted (up to [`HARD_BODY_CAP`]) so the 413 names its real length, as the
/// controller's does.
pub(crate) async fn read_body(
    body: Body,
    max: u64,
    read_timeout: Duration,
) -> Result<Bytes, WhiskError> {
    let mut buf = BytesMut::new();
    let mut total: u64 = 0;
    let mut body = body;
    let deadline = tokio::time::Instant::now() + read_timeout;
    loop {
        let stalled = WhiskError::body_stalled;
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(stalled()),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                if crate::net::idle_body::is_stall(&e) {
                    return Err(stalled());
                }
                return Err(WhiskError::rejected(messages::malformed_content(
                    "The request body could not be read.",
                )));
            }
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            if total <= max {
                buf.extend_from_slice(&data);
            } else if total > HARD_BODY_CAP {
                return Err(WhiskError::entity_too_large());
            }
        }
    }
    if total > max {
        return Err(WhiskError::payload_too_large(total, max));
    }
    Ok(buf.freeze())
}

/// Parses the body as the controller does: empty means `{}`; otherwise it must be a
/// JSON object.
pub fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, WhiskError> {
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(WhiskError::rejected(messages::JSON_OBJECT_EXPECTED)),
        Err(e) => Err(WhiskError::rejected(messages::malformed_content(
            &e.to_string(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<InvokeOptions, String> {
        parse_query(Some(s)).map_err(|e| e.message)
    }

    #[test]
    fn query_parameters() {
        let o = q("").unwrap();
        assert_eq!(
            (o.blocking, o.result, o.wait),
            (false, false, Duration::from_secs(60))
        );
        let o = q("blocking=YES&result=on&timeout=500").unwrap();
        assert_eq!(
            (o.blocking, o.result, o.wait),
            (true, true, Duration::from_millis(500))
        );
        assert!(!q("blocking=").unwrap().blocking);
        assert!(q("blocking=1&blocking=maybe").unwrap().blocking);
        assert_eq!(
            q("blocking=maybe").unwrap_err(),
            "The query parameter 'blocking' was malformed:\n'maybe' is not a valid Boolean value"
        );
        assert_eq!(
            q("blocking=MAYBE").unwrap_err(),
            "The query parameter 'blocking' was malformed:\n'maybe' is not a valid Boolean value"
        );
        assert_eq!(
            q("blocking=maybe&result=bad").unwrap_err(),
            "The query parameter 'blocking' was malformed:\n'maybe' is not a valid Boolean value"
        );
        for t in ["0", "60001", "65000", "abc", "-5", "1.5", "", "99999999999"] {
            assert_eq!(
                q(&format!("timeout={t}")).unwrap_err(),
                "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 60000.",
                "{t}"
            );
        }
        assert_eq!(q("timeout=60000").unwrap().wait, Duration::from_secs(60));
        assert_eq!(
            q("blocking=%zz").unwrap_err(),
            "The request content was malformed:\nThe request's query string is invalid."
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_body(b"").unwrap().len(), 0);
        assert_eq!(parse_body(br#"{"a":1}"#).unwrap()["a"], 1);
        assert_eq!(
            parse_body(b"[1]").unwrap_err().message,
            "The request content was malformed:\nJSON object expected"
        );
        assert!(
            parse_body(b"{nope")
                .unwrap_err()
                .message
                .starts_with("The request content was malformed:\n")
        );
        let big = parse_body(br#"{"n":123456789012345678901234567890}"#).unwrap();
        assert_eq!(big["n"].to_string(), "123456789012345678901234567890");
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let e = check_content_type(&h).unwrap_err();
        assert_eq!(e.status, 415);
        assert_eq!(
            e.message,
            "The request's Content-Type [application/x-www-form-urlencoded] is not supported. Expected:\napplication/json"
        );
        assert_eq!(
            render_content_type("Text/Plain;Charset=utf-8"),
            "text/plain; charset=UTF-8"
        );
    }

    #[tokio::test]
    async fn oversized_bodies_name_their_length() {
        let e = read_body(Body::from(vec![b' '; 2000]), 1000, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.message, "Request larger than allowed: 2000 > 1000 bytes.");
        assert_eq!(e.status, 413);
    }
}
