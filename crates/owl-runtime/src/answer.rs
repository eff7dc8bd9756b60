//! The runtime's answer when owl asked for the activation's logs.
//!
//! Lambda hands owl only the last 4 KB of a function's log. When owl's envelope carries
//! `owl:log_limit` ([`LOG_LIMIT_KEY`], the action's log limit in bytes), the runtime
//! returns the activation's log lines with its answer instead:
//!
//! - a result is posted to `/response` as `{"owl:logs": [lines…], "owl:result": <the
//!   result's bytes, unchanged>}`;
//! - a failure is posted to `/error` as the usual `{"errorMessage", "errorType"}` with
//!   `"owl:logs": [lines…]` added, so Lambda (and its error metrics) still see a
//!   function error.
//!
//! The lines are cut so that the answer fits in Lambda's response limit: the result
//! always has priority, and a cut (by the log limit or by this budget) ends the lines
//! with OpenWhisk's truncation line for the action's limit [OW core/invoker/.../docker/
//! DockerContainer.scala:330, common/scala/.../http/ErrorResponse.scala:199
//! `truncateLogs`]. A result too large to be wrapped at all is reported as
//! `Function.ResponseSizeTooLarge`, never posted bare: an action's own result must not
//! pass for the runtime's wrapper, since owl unwraps every answer to an envelope that
//! asked. owl reads the answer back in `crates/owl-lambda/src/logs.rs` (`unwrap_answer`).

use super::logs::ActivationLogs;
use super::messages::{RESPONSE_LIMIT, RuntimeFailure};
use owl_whisk::activation::{LogStream, format_log_line};
use owl_whisk::messages;
use time::OffsetDateTime;

pub use owl_whisk::contract::{LOG_LIMIT_KEY, LOGS_KEY, RESULT_KEY};

const OPEN: &[u8] = b"{\"owl:logs\":";
const BETWEEN: &[u8] = b",\"owl:result\":";

/// OpenWhisk's truncation line for a log limit of `limit` bytes, at `at`.
pub(crate) fn truncation_line(at: OffsetDateTime, limit: usize) -> String {
    format_log_line(at, LogStream::Stderr, &messages::logs_truncated(limit))
}

/// The response body for `result` with the activation's logs, or `None` when the
/// result leaves no room for the wrapper in Lambda's response.
pub fn wrap_result(result: &[u8], logs: &ActivationLogs, now: OffsetDateTime) -> Option<Vec<u8>> {
    let fixed = OPEN.len() + BETWEEN.len() + result.len() + 1;
    let budget = RESPONSE_LIMIT.checked_sub(fixed)?;
    let lines = lines_within(logs, budget, now)?;
    let mut out = Vec::with_capacity(fixed + lines.len());
    out.extend_from_slice(OPEN);
    out.extend_from_slice(&lines);
    out.extend_from_slice(BETWEEN);
    out.extend_from_slice(result);
    out.push(b'}');
    Some(out)
}

/// The error body for `failure` with the activation's logs (as many as fit).
pub fn error_body(failure: &RuntimeFailure, logs: &ActivationLogs, now: OffsetDateTime) -> Vec<u8> {
    let mut body = failure.body();
    // `body()` is a compact JSON object: open it again before its closing brace.
    if body.pop() != Some(b'}') {
        return failure.body();
    }
    let key = format!(",\"{LOGS_KEY}\":");
    let budget = RESPONSE_LIMIT.saturating_sub(body.len() + key.len() + 1);
    let lines = lines_within(logs, budget, now).unwrap_or_else(|| b"[]".to_vec());
    body.extend_from_slice(key.as_bytes());
    body.extend_from_slice(&lines);
    body.push(b'}');
    body
}

/// The JSON array of the lines that fit in `budget` bytes, ending with the truncation
/// line when some were cut; `None` if not even `[]` fits.
fn lines_within(logs: &ActivationLogs, budget: usize, now: OffsetDateTime) -> Option<Vec<u8>> {
    if budget < 2 {
        return None;
    }
    // `[` then each line with its separator; `ends[i]` is the length after line i.
    let mut buf = Vec::with_capacity(logs.lines.iter().map(|l| l.len() + 3).sum::<usize>() + 2);
    buf.push(b'[');
    let mut ends = Vec::with_capacity(logs.lines.len());
    for (i, line) in logs.lines.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        if serde_json::to_writer(&mut buf, line).is_err() {
            return None;
        }
        ends.push(buf.len());
        if buf.len() > budget {
            // Nothing after this line can fit.
            break;
        }
    }
    let all = ends.len() == logs.lines.len() && buf.len() < budget;
    if all && !logs.truncated {
        buf.push(b']');
        return Some(buf);
    }
    let notice = serde_json::to_vec(&truncation_line(now, logs.limit)).ok()?;
    // The most lines that leave room for `,` + the notice + `]`.
    let room = notice.len() + 2;
    let keep = ends.iter().take_while(|&&end| end + room <= budget).count();
    buf.truncate(if keep == 0 { 1 } else { ends[keep - 1] });
    if keep == 0 && room > budget {
        // No room even for the notice alone.
        buf.push(b']');
        return Some(buf);
    }
    if keep > 0 {
        buf.push(b',');
    }
    buf.extend_from_slice(&notice);
    buf.push(b']');
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-01-02 03:04:05.123456789 UTC)
    }

    fn logs(lines: &[&str], truncated: bool) -> ActivationLogs {
        ActivationLogs {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            truncated,
            limit: 1_048_576,
        }
    }

    const NOTICE: &str = "2026-01-02T03:04:05.123456789Z stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes.";

    #[test]
    fn the_result_keeps_its_bytes() {
        let result = br#"{"a": 1, "t": "\u00e9"}"#;
        let w = wrap_result(result, &logs(&["l1", "l\"2"], false), now()).unwrap();
        let text = String::from_utf8(w.clone()).unwrap();
        assert_eq!(
            text,
            r#"{"owl:logs":["l1","l\"2"],"owl:result":{"a": 1, "t": "\u00e9"}}"#
        );
        let v: Value = serde_json::from_slice(&w).unwrap();
        assert_eq!(v[RESULT_KEY], json!({"a": 1, "t": "é"}));
    }

    #[test]
    fn a_cut_ends_with_openwhisks_line() {
        let w = wrap_result(b"[]", &logs(&["a", "b"], true), now()).unwrap();
        let v: Value = serde_json::from_slice(&w).unwrap();
        assert_eq!(v[LOGS_KEY], json!(["a", "b", NOTICE]));
    }

    /// Lambda's response limit: the result has priority, the lines are cut to fit.
    #[test]
    fn lines_are_cut_to_fit_lambdas_response() {
        let line = "x".repeat(1000);
        let many: Vec<&str> = (0..3000).map(|_| line.as_str()).collect();
        let result = format!("{{\"r\":\"{}\"}}", "y".repeat(4 * 1024 * 1024));
        let w = wrap_result(result.as_bytes(), &logs(&many, false), now()).unwrap();
        assert!(w.len() <= RESPONSE_LIMIT, "{}", w.len());
        assert!(w.len() > RESPONSE_LIMIT - 1100, "{}", w.len());
        let v: Value = serde_json::from_slice(&w).unwrap();
        let lines = v[LOGS_KEY].as_array().unwrap();
        assert!(lines.len() > 2000 && lines.len() < 3000, "{}", lines.len());
        assert_eq!(lines.last().unwrap(), NOTICE);
        assert_eq!(v[RESULT_KEY]["r"].as_str().unwrap().len(), 4 * 1024 * 1024);
        // Everything fits: no notice.
        let w = wrap_result(b"{}", &logs(&many, false), now()).unwrap();
        let v: Value = serde_json::from_slice(&w).unwrap();
        assert_eq!(v[LOGS_KEY].as_array().unwrap().len(), 3000);
    }

    #[test]
    fn a_result_with_no_room_for_the_wrapper_is_not_wrapped() {
        let result = vec![b' '; RESPONSE_LIMIT - 20];
        assert_eq!(wrap_result(&result, &logs(&["a"], false), now()), None);
        // Room for `[]` only: no lines, no notice.
        let result = vec![b' '; RESPONSE_LIMIT - OPEN.len() - BETWEEN.len() - 3];
        let w = wrap_result(&result, &logs(&["a"], false), now()).unwrap();
        assert!(w.starts_with(b"{\"owl:logs\":[],"));
        assert_eq!(w.len(), RESPONSE_LIMIT);
    }

    #[test]
    fn failures_carry_the_lines_beside_lambdas_fields() {
        let f = RuntimeFailure::handler("boom");
        let b = error_body(&f, &logs(&["a"], false), now());
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            json!({"errorMessage": "boom", "errorType": "Runtime.HandlerError", "owl:logs": ["a"]})
        );
        assert!(b.starts_with(&f.body()[..f.body().len() - 1]));
    }
}
