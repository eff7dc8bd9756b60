//! What a Lambda answer means in OpenWhisk's terms (reference §2.2): the activation
//! response, whether the action timed out, and its logs — the log tail's lines, or the
//! owl runtime's own when the envelope asked for them ([`LogRequest`]), whose answer is
//! unwrapped before anything else reads it.

use super::logs::{LogRequest, ParsedTail, parse_tail_for, unwrap_answer};
use owl_whisk::activation::{ActivationResponse, StatusCode};
use owl_whisk::messages;
use serde_json::Value;
use time::OffsetDateTime;

/// OpenWhisk's result truncation limit (1 MB, reference §5.4).
pub const TRUNCATION_LIMIT: usize = 1024 * 1024;

/// A Lambda function's answer to a synchronous invoke.
#[derive(Debug, Clone, Default)]
pub struct LambdaReply {
    /// The payload bytes (result, or error object when `function_error` is set).
    pub payload: bytes::Bytes,
    /// `X-Amz-Function-Error`, when the function failed.
    pub function_error: Option<String>,
    /// The decoded log tail, when asked for.
    pub log_tail: Option<String>,
    /// The version that ran.
    pub executed_version: Option<String>,
}

/// The activation-level reading of a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The response object.
    pub response: ActivationResponse,
    /// True if the action ran out of time.
    pub timed_out: bool,
    /// The activation's log lines (the runtime's, or the tail's) and what the tail's
    /// `REPORT` line said.
    pub tail: ParsedTail,
}

/// The `size` OpenWhisk reports: the length of the response as a (JVM) string, in
/// UTF-16 code units.
fn utf16_len(bytes: &[u8]) -> u64 {
    String::from_utf8_lossy(bytes).encode_utf16().count() as u64
}

/// Lambda's synchronous response limit, named in `Function.ResponseSizeTooLarge`.
const LAMBDA_RESPONSE_LIMIT: u64 = 6_291_556;

/// True for Lambda's own timeout message, `Task timed out after 3.00 seconds`, as it
/// stands alone or after Lambda's `<timestamp> <request id>` prefix — not any text
/// that merely contains those words.
fn is_lambda_timeout(message: &str) -> bool {
    let words: Vec<&str> = message.split_whitespace().collect();
    let tail = match words.len() {
        6 => &words[..],
        8 => &words[2..],
        _ => return false,
    };
    matches!(tail, ["Task", "timed", "out", "after", n, "seconds"] if n.parse::<f64>().is_ok())
}

/// Interprets `reply` for an action whose time limit is `limit_ms`.
pub fn interpret(reply: &LambdaReply, limit_ms: u64, now: OffsetDateTime) -> RunResult {
    interpret_with(reply, limit_ms, TRUNCATION_LIMIT, now)
}

/// [`interpret`] for a deployment whose results are truncated past `truncation` bytes,
/// with the logs from the tail only ([`LogRequest::tail_only`]).
pub fn interpret_with(
    reply: &LambdaReply,
    limit_ms: u64,
    truncation: usize,
    now: OffsetDateTime,
) -> RunResult {
    interpret_logged(reply, limit_ms, truncation, LogRequest::tail_only(), now)
}

/// [`interpret_with`] for an invocation whose logs were asked for as `logs` says: an
/// answer of the owl runtime to an envelope that asked is unwrapped — its lines are
/// the activation's logs, and the function's own payload is classified as any other —
/// while any other answer is read as it is, with the tail's lines (a cut tail ending
/// with OpenWhisk's truncation line for the action's limit). The tail's `REPORT`
/// figures are read either way.
pub fn interpret_logged(
    reply: &LambdaReply,
    limit_ms: u64,
    truncation: usize,
    logs: LogRequest,
    now: OffsetDateTime,
) -> RunResult {
    let mut tail = reply
        .log_tail
        .as_deref()
        .map(|t| parse_tail_for(t, logs.limit, now))
        .unwrap_or_default();
    let unwrapped = if logs.from_runtime {
        unwrap_answer(&reply.payload, reply.function_error.is_some())
    } else {
        None
    };
    let collected = unwrapped.is_some() || reply.log_tail.is_some();
    let payload = match unwrapped {
        Some((lines, payload)) => {
            tail.lines = lines;
            payload
        }
        None => reply.payload.clone(),
    };
    let (response, timed_out) = classify(
        &payload,
        reply.function_error.is_some(),
        limit_ms,
        truncation,
    );
    // OpenWhisk's log store ends a developer error's logs with a warning
    // [OW common/scala/.../containerpool/logging/DockerToActivationLogStore.scala:118-122,
    // `isDeveloperError = activation.response.isContainerError` :177].
    if collected && response.status_code == StatusCode::DeveloperError {
        tail.lines.push(owl_whisk::activation::format_log_line(
            now,
            owl_whisk::activation::LogStream::Stderr,
            messages::LOG_WARNING_DEVELOPER_ERROR,
        ));
    }
    RunResult {
        response,
        timed_out,
        tail,
    }
}

/// The activation response for a function's `payload` (an error object when
/// `function_error`), and whether the action timed out.
fn classify(
    payload: &[u8],
    function_error: bool,
    limit_ms: u64,
    truncation: usize,
) -> (ActivationResponse, bool) {
    let size = Some(utf16_len(payload));
    if function_error {
        let err: Option<Value> = serde_json::from_slice(payload).ok();
        let error_type = err
            .as_ref()
            .and_then(|e| e.get("errorType"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let error_message = err
            .as_ref()
            .and_then(|e| e.get("errorMessage"))
            .and_then(Value::as_str);
        let timed_out = error_type == "Sandbox.Timedout"
            || (error_type.is_empty() && error_message.is_some_and(is_lambda_timeout));
        let during_init =
            timed_out && error_message.is_some_and(|m| m.ends_with("during initialization."));
        let response = if error_type == "Runtime.OutOfMemory" {
            // OpenWhisk's text for an action killed for its memory [OW common/scala/
            // .../entity/ActivationResult.scala:251 `memoryExhausted`].
            ActivationResponse::error(
                StatusCode::DeveloperError,
                messages::MEMORY_EXHAUSTED.into(),
                size,
            )
        } else if error_type == "Function.ResponseSizeTooLarge" {
            // Over Lambda's 6 MB, so over OpenWhisk's 1 MB truncation limit: OpenWhisk
            // records an application error with its truncation text.
            let len = error_message
                .and_then(|m| m.split('(').nth(1))
                .and_then(|m| m.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(LAMBDA_RESPONSE_LIMIT);
            ActivationResponse::error(
                StatusCode::ApplicationError,
                format!(
                    "The action produced a response that exceeded the allowed length: {len} > {truncation} bytes."
                )
                .into(),
                Some(len),
            )
        } else if timed_out {
            // OpenWhisk's texts: `… milliseconds.` for a run, `… milliseconds during
            // initialization.` for an init past the limit [OW common/scala/.../http/
            // ErrorResponse.scala:243 `Messages.timedoutActivation`].
            let text = if during_init {
                messages::init_timed_out(limit_ms)
            } else {
                messages::timed_out(limit_ms)
            };
            ActivationResponse::error(StatusCode::DeveloperError, text.into(), None)
        } else {
            let error = match (error_message, &err) {
                (Some(m), _) => Value::String(m.to_string()),
                (None, Some(Value::Object(o))) if o.contains_key("error") => o["error"].clone(),
                (None, Some(v)) if !v.is_null() => v.clone(),
                _ => Value::String(messages::invalid_run_response(&String::from_utf8_lossy(
                    payload,
                ))),
            };
            ActivationResponse::error(StatusCode::DeveloperError, error, size)
        };
        return (response, timed_out);
    }
    let response = if payload.len() > truncation {
        let prefix = String::from_utf8_lossy(&payload[..truncation]);
        ActivationResponse::error(
            StatusCode::ApplicationError,
            messages::truncated_response(payload.len() as u64, truncation as u64, &prefix).into(),
            size,
        )
    } else {
        match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(mut o)) => match o.remove("error") {
                // An `error` key makes it an application error whose result keeps only it.
                Some(e) => ActivationResponse::error(StatusCode::ApplicationError, e, size),
                None => ActivationResponse::success(Value::Object(o), size),
            },
            Ok(a @ Value::Array(_)) => ActivationResponse::success(a, size),
            _ => ActivationResponse::error(
                StatusCode::DeveloperError,
                Value::String(messages::invalid_run_response(&String::from_utf8_lossy(
                    payload,
                ))),
                size,
            ),
        }
    };
    (response, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(payload: &str, error: bool) -> LambdaReply {
        LambdaReply {
            payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
            function_error: error.then(|| "Unhandled".to_string()),
            ..Default::default()
        }
    }

    fn check(payload: &str, error: bool, status: StatusCode, result: Value) {
        let r = interpret(&reply(payload, error), 3000, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(r.response.status_code, status, "{payload}");
        assert_eq!(r.response.result, Some(result), "{payload}");
    }

    #[test]
    fn classification_table() {
        use StatusCode::*;
        check(r#"{"a":1}"#, false, Success, json!({"a": 1}));
        check(r#"[1,2]"#, false, Success, json!([1, 2]));
        check(
            r#"{"error":"bad","x":1}"#,
            false,
            ApplicationError,
            json!({"error": "bad"}),
        );
        check(
            r#"{"error":{"code":7}}"#,
            false,
            ApplicationError,
            json!({"error": {"code": 7}}),
        );
        check(
            r#""a string""#,
            false,
            DeveloperError,
            json!({"error": "The action did not produce a valid JSON or JSON Array response: \"a string\""}),
        );
        check(
            "",
            false,
            DeveloperError,
            json!({"error": "The action did not produce a valid JSON or JSON Array response."}),
        );
        check(
            r#"{"errorMessage":"it broke","errorType":"Runtime.HandlerError"}"#,
            true,
            DeveloperError,
            json!({"error": "it broke"}),
        );
        check(
            r#"{"errorMessage":"Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}"#,
            true,
            DeveloperError,
            json!({"error": "The action exceeded its time limits of 3000 milliseconds."}),
        );
    }

    #[test]
    fn timeouts_are_flagged() {
        let r = interpret(
            &reply(
                r#"{"errorMessage":"2026-01-01 x Task timed out after 3.00 seconds"}"#,
                true,
            ),
            3000,
            OffsetDateTime::UNIX_EPOCH,
        );
        assert!(r.timed_out);
        assert_eq!(r.response.size, None);
    }

    /// Issue 15 §13: Lambda's out-of-memory is OpenWhisk's memory-exhausted developer
    /// error.
    #[test]
    fn out_of_memory_is_memory_exhausted() {
        check(
            r#"{"errorMessage":"Runtime exited with error: signal: killed","errorType":"Runtime.OutOfMemory"}"#,
            true,
            StatusCode::DeveloperError,
            json!({"error": "The action exhausted its memory and was aborted."}),
        );
    }

    /// Issue 15 §10: only a real timeout is flagged; an init timeout keeps OpenWhisk's
    /// `during initialization.` text.
    #[test]
    fn only_real_timeouts_are_flagged() {
        let flagged =
            |body: &str| interpret(&reply(body, true), 3000, OffsetDateTime::UNIX_EPOCH).timed_out;
        assert!(flagged(
            r#"{"errorMessage":"Task timed out after 3.00 seconds"}"#
        ));
        assert!(!flagged(
            r#"{"errorMessage":"upstream said: Task timed out after 3.00 seconds, retrying"}"#
        ));
        assert!(!flagged(
            r#"{"errorMessage":"Task timed out after 3.00 seconds","errorType":"Error"}"#
        ));
        check(
            r#"{"errorMessage":"The action exceeded its time limits of 3000 milliseconds during initialization.","errorType":"Sandbox.Timedout"}"#,
            true,
            StatusCode::DeveloperError,
            json!({"error": "The action exceeded its time limits of 3000 milliseconds during initialization."}),
        );
    }

    #[test]
    fn oversized_results_are_truncated_application_errors() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(TRUNCATION_LIMIT));
        let r = interpret(&reply(&big, false), 1, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(r.response.status_code, StatusCode::ApplicationError);
        let msg = r.response.result.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(msg.starts_with(&format!(
            "The action produced a response that exceeded the allowed length: {} > 1048576 bytes. The truncated response was: {{\"a\":\"xxx",
            big.len()
        )));
        assert_eq!(r.response.size, Some(big.len() as u64));
    }

    #[test]
    fn lambdas_own_size_limit_is_a_truncation() {
        check(
            r#"{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}"#,
            true,
            StatusCode::ApplicationError,
            json!({"error": "The action produced a response that exceeded the allowed length: 6291556 > 1048576 bytes."}),
        );
    }

    fn asked() -> LogRequest {
        LogRequest {
            limit: 1_048_576,
            from_runtime: true,
        }
    }

    fn tail_of(lines: &[&str]) -> String {
        lines
            .iter()
            .map(|l| format!("2026-01-02T03:04:05.100Z\tr\tINFO\t{l}\n"))
            .collect::<String>()
            + "REPORT RequestId: r\tDuration: 2.00 ms\tInit Duration: 9.00 ms\t\n"
    }

    /// A developer error's logs end with OpenWhisk's warning, whether they came from
    /// the owl runtime or from the tail [OW common/scala/.../containerpool/logging/
    /// DockerToActivationLogStore.scala:118-122]; other outcomes' logs, and runs with
    /// no logs collected, get none.
    #[test]
    fn a_developer_error_s_logs_end_with_openwhisk_s_warning() {
        let warning = "2026-01-02T03:04:05.000Z       stderr: The action did not initialize or run as expected. Log data might be missing.";
        let now = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let failed = r#"{"errorMessage": "An error has occurred: boom", "errorType": "Runtime.ActionDeveloperError"}"#;
        let mut r = reply(failed, true);
        r.log_tail = Some(tail_of(&["before the crash"]));
        let out = interpret_logged(&r, 1000, TRUNCATION_LIMIT, LogRequest::tail_only(), now);
        assert_eq!(out.response.status_code, StatusCode::DeveloperError);
        assert_eq!(out.tail.lines.len(), 2, "{:?}", out.tail.lines);
        assert_eq!(out.tail.lines[1], warning);
        let wrapped = r#"{"errorMessage": "An error has occurred: boom", "errorType": "Runtime.ActionDeveloperError", "owl:logs": ["L1"]}"#;
        let out = interpret_logged(&reply(wrapped, true), 1000, TRUNCATION_LIMIT, asked(), now);
        assert_eq!(out.response.status_code, StatusCode::DeveloperError);
        assert_eq!(out.tail.lines, ["L1", warning]);
        // No logs collected (`log_tail = false`): none invented.
        let out = interpret_logged(
            &reply(failed, true),
            1000,
            TRUNCATION_LIMIT,
            LogRequest::tail_only(),
            now,
        );
        assert!(out.tail.lines.is_empty());
        // An application error is the action's answer, not a developer error.
        let mut r = reply(r#"{"error": "bad"}"#, false);
        r.log_tail = Some(tail_of(&["fine"]));
        let out = interpret_logged(&r, 1000, TRUNCATION_LIMIT, LogRequest::tail_only(), now);
        assert_eq!(out.response.status_code, StatusCode::ApplicationError);
        assert_eq!(out.tail.lines.len(), 1);
    }

    /// Issue 15 §15: the owl runtime's lines replace the tail's; its result is then
    /// read exactly as a bare answer (here: an application error, and its `size`).
    #[test]
    fn the_runtimes_lines_replace_the_tail() {
        let mut r = reply(
            r#"{"owl:logs":["L1","L2"],"owl:result":{"error": "bad", "x": 1}}"#,
            false,
        );
        r.log_tail = Some(tail_of(&["from the tail"]));
        let out = interpret_logged(&r, 1, TRUNCATION_LIMIT, asked(), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(out.tail.lines, ["L1", "L2"]);
        assert_eq!(out.tail.init_ms, Some(9.0));
        assert_eq!(out.response.status_code, StatusCode::ApplicationError);
        assert_eq!(out.response.result, Some(json!({"error": "bad"})));
        assert_eq!(
            out.response.size,
            Some(r#"{"error": "bad", "x": 1}"#.len() as u64)
        );
        // The 1 MB truncation applies to the inner result.
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(TRUNCATION_LIMIT));
        let wrapped = format!(r#"{{"owl:logs":["L"],"owl:result":{big}}}"#);
        let out = interpret_logged(
            &reply(&wrapped, false),
            1,
            TRUNCATION_LIMIT,
            asked(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let msg = out.response.result.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.starts_with(&format!("The action produced a response that exceeded the allowed length: {} > 1048576 bytes. The truncated response was: {{\"a\":\"xx", big.len())),
            "{}",
            &msg[..150]
        );
        assert_eq!(out.tail.lines, ["L"]);
    }

    #[test]
    fn the_runtimes_failures_keep_their_meaning() {
        let r = reply(
            r#"{"errorMessage":"The action exceeded its time limits of 3000 milliseconds.","errorType":"Sandbox.Timedout","owl:logs":["L"]}"#,
            true,
        );
        let out = interpret_logged(
            &r,
            3000,
            TRUNCATION_LIMIT,
            asked(),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert!(out.timed_out);
        // A timeout is a developer error: OpenWhisk's warning ends its logs.
        assert_eq!(out.tail.lines.len(), 2);
        assert_eq!(out.tail.lines[0], "L");
        assert!(out.tail.lines[1].ends_with("Log data might be missing."));
        assert_eq!(
            out.response.result,
            Some(json!({"error": "The action exceeded its time limits of 3000 milliseconds."}))
        );
    }

    /// An answer is unwrapped only when the envelope asked: otherwise a result shaped
    /// like the wrapper is the action's own.
    #[test]
    fn only_an_asked_answer_is_unwrapped() {
        let body = r#"{"owl:logs":["forged"],"owl:result":{"a":1}}"#;
        let mut r = reply(body, false);
        r.log_tail = Some(tail_of(&["real"]));
        let out = interpret_logged(
            &r,
            1,
            TRUNCATION_LIMIT,
            LogRequest::for_action(&json!({"logs": 10}), crate::PayloadMode::Event, true),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(
            out.response.result,
            Some(serde_json::from_str::<Value>(body).unwrap())
        );
        assert_eq!(
            out.tail.lines,
            ["2026-01-02T03:04:05.100Z       stdout: real"]
        );
    }

    /// A function that ignores the request keeps the tail; a cut tail names the
    /// action's limit.
    #[test]
    fn other_functions_keep_the_tail() {
        let mut r = reply(r#"{"a":1}"#, false);
        let mut tail = String::from("cut\n");
        while tail.len() < crate::logs::TAIL_LIMIT {
            tail.push_str("line\n");
        }
        r.log_tail = Some(tail);
        let out = interpret_logged(&r, 1, TRUNCATION_LIMIT, asked(), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(out.response.result, Some(json!({"a": 1})));
        assert!(
            out.tail.lines.last().unwrap().ends_with(
                "stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."
            ),
            "{:?}",
            out.tail.lines.last()
        );
    }

    #[test]
    fn size_counts_utf16_units_like_the_jvm() {
        let r = interpret(
            &reply(r#"{"t":"é🦉"}"#, false),
            1,
            OffsetDateTime::UNIX_EPOCH,
        );
        // 8 ASCII + é (1 unit) + 🦉 (2 units)
        assert_eq!(r.response.size, Some(11));
    }
}
