//! Where an activation's logs come from. Lambda's log tail (the last 4 KB of the
//! execution log, `LogType: Tail`) is turned into OpenWhisk log lines, and gives the
//! figures of Lambda's `REPORT` line. A function running the owl runtime, asked through
//! owl's envelope ([`LogRequest`]), returns the activation's whole log (up to the
//! action's log limit) with its answer instead; [`unwrap_answer`] takes it out again.
//! Only an answer to an envelope that asked is ever unwrapped, so an action's result
//! shaped like the wrapper reaches its client intact otherwise.

use crate::PayloadMode;
use bytes::Bytes;
use owl_whisk::activation::{LogStream, format_log_line};
use owl_whisk::contract::{LOGS_KEY, RESULT_KEY};
use owl_whisk::messages;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Size of the tail Lambda returns; a tail this long was probably cut at its start.
pub const TAIL_LIMIT: usize = 4096;

/// OpenWhisk's default action log limit, in MB (`LogLimit`), for limits that name none.
const DEFAULT_LOG_LIMIT_MB: u64 = 10;

/// The action's log limit in bytes: its `limits.logs` (MB; OpenWhisk's `ByteSize` MB
/// is 1024 × 1024 bytes [OW common/scala/.../entity/Size.scala:62]), 10 MB when absent.
pub(crate) fn action_log_limit(limits: &Value) -> u64 {
    limits
        .get("logs")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_LOG_LIMIT_MB)
        .saturating_mul(1024 * 1024)
}

/// How an invocation gets its activation's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRequest {
    /// The action's log limit in bytes (named by OpenWhisk's truncation line).
    pub limit: u64,
    /// True if the envelope asks the function (the owl runtime) for the logs.
    pub from_runtime: bool,
}

impl LogRequest {
    /// For an action with `limits` sent as `mode`: an `openwhisk` envelope asks the owl
    /// runtime for the logs whenever logs are on (`[lambda] log_tail`); other
    /// functions ignore the request and keep the tail.
    pub fn for_action(limits: &Value, mode: PayloadMode, logs_on: bool) -> Self {
        Self {
            limit: action_log_limit(limits),
            from_runtime: logs_on && mode == PayloadMode::OpenWhisk,
        }
    }

    /// Logs from the tail only, for a function whose log limit is not known: a cut
    /// tail's notice names the tail's own size.
    pub fn tail_only() -> Self {
        Self {
            limit: TAIL_LIMIT as u64,
            from_runtime: false,
        }
    }

    /// The limit to write into the envelope, when the runtime is asked.
    pub fn runtime_limit(&self) -> Option<u64> {
        self.from_runtime.then_some(self.limit)
    }
}

/// The owl runtime's answer taken apart (`src/runtime/answer.rs`): the activation's
/// log lines, and the function's payload as it would be without them — a result's
/// bytes unchanged, or the error object without `owl:logs`. `None` when `payload` is
/// not such an answer (a function that does not run the owl runtime): use it as is.
pub fn unwrap_answer(payload: &Bytes, function_error: bool) -> Option<(Vec<String>, Bytes)> {
    if function_error {
        let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(payload) else {
            return None;
        };
        let lines = string_array(o.get(LOGS_KEY)?)?;
        o.remove(LOGS_KEY);
        let rest = serde_json::to_vec(&Value::Object(o)).ok()?;
        return Some((lines, Bytes::from(rest)));
    }
    let (lines, result) = split_wrapper(payload)?;
    Some((lines, payload.slice(result)))
}

fn string_array(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|l| l.as_str().map(str::to_string))
        .collect()
}

/// Reads `{"owl:logs": [...], "owl:result": <any>}` (either order, any whitespace, no
/// other key): the lines and the byte range of the result's own text.
fn split_wrapper(b: &[u8]) -> Option<(Vec<String>, std::ops::Range<usize>)> {
    fn ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }
    /// One JSON value of type `T` starting at `i`: it and the offset after it.
    fn value<'a, T: serde::Deserialize<'a>>(b: &'a [u8], i: usize) -> Option<(T, usize)> {
        let mut s = serde_json::Deserializer::from_slice(b.get(i..)?).into_iter::<T>();
        let v = s.next()?.ok()?;
        Some((v, i + s.byte_offset()))
    }
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let (mut lines, mut result) = (None, None);
    loop {
        i = ws(b, i + 1);
        let (key, after): (String, usize) = value(b, i)?;
        i = ws(b, after);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        match key.as_str() {
            LOGS_KEY if lines.is_none() => {
                let (l, after): (Vec<String>, usize) = value(b, i)?;
                lines = Some(l);
                i = after;
            }
            RESULT_KEY if result.is_none() => {
                let (_, after): (serde::de::IgnoredAny, usize) = value(b, i)?;
                result = Some(i..after);
                i = after;
            }
            _ => return None,
        }
        i = ws(b, i);
        match b.get(i) {
            Some(b',') => continue,
            Some(b'}') => break,
            _ => return None,
        }
    }
    if ws(b, i + 1) != b.len() {
        return None;
    }
    Some((lines?, result?))
}

/// What the log tail says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParsedTail {
    /// Log lines in OpenWhisk's format.
    pub lines: Vec<String>,
    /// `Duration` from the `REPORT` line, in ms.
    pub duration_ms: Option<f64>,
    /// `Init Duration` from the `REPORT` line (cold starts only), in ms.
    pub init_ms: Option<f64>,
}

/// Parses a decoded log tail of a function whose log limit is not known: a cut tail
/// ends with OpenWhisk's truncation line naming the tail's size. Lines without their
/// own timestamp get `now`.
pub fn parse_tail(tail: &str, now: OffsetDateTime) -> ParsedTail {
    parse_tail_for(tail, TAIL_LIMIT as u64, now)
}

/// Parses a decoded log tail of an action whose log limit is `log_limit` bytes: a cut
/// tail (its start is missing) ends with OpenWhisk's truncation line for that limit,
/// the line OpenWhisk appends when it stops collecting an action's log [OW core/
/// invoker/.../docker/DockerContainer.scala:330] and reads back to detect a cut log
/// [OW common/scala/.../logging/DockerToActivationLogStore.scala:150].
pub(crate) fn parse_tail_for(tail: &str, log_limit: u64, now: OffsetDateTime) -> ParsedTail {
    let mut out = ParsedTail::default();
    let mut lines: Vec<&str> = tail.lines().collect();
    let truncated = tail.len() >= TAIL_LIMIT;
    if truncated && !lines.is_empty() {
        // The first line of a full tail is almost always a fragment.
        lines.remove(0);
    }
    for line in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if line.starts_with("START RequestId:")
            || line.starts_with("END RequestId:")
            || line.starts_with("INIT_START ")
        {
            continue;
        }
        if let Some(report) = line.strip_prefix("REPORT RequestId:") {
            out.duration_ms = report_field(report, "Duration");
            out.init_ms = report_field(report, "Init Duration");
            continue;
        }
        let (ts, stream, text) = split_runtime_line(line).unwrap_or((now, LogStream::Stdout, line));
        out.lines.push(format_log_line(ts, stream, text));
    }
    if truncated {
        out.lines.push(format_log_line(
            now,
            LogStream::Stderr,
            &messages::logs_truncated(usize::try_from(log_limit).unwrap_or(usize::MAX)),
        ));
    }
    out
}

/// Reads `"<name>: 12.34 ms"` from the tab-separated fields of a REPORT line.
fn report_field(report: &str, name: &str) -> Option<f64> {
    report.split('\t').find_map(|f| {
        let v = f.trim().strip_prefix(name)?.strip_prefix(':')?;
        v.trim().strip_suffix("ms")?.trim().parse().ok()
    })
}

fn level_stream(level: &str) -> LogStream {
    match level {
        "ERROR" | "WARN" | "WARNING" | "FATAL" | "CRITICAL" => LogStream::Stderr,
        _ => LogStream::Stdout,
    }
}

/// Recognises the runtimes' own line formats:
/// Node.js `TIMESTAMP\tREQUEST_ID\tLEVEL\tmessage` and
/// Python `[LEVEL]\tTIMESTAMP\tREQUEST_ID\tmessage`.
fn split_runtime_line(line: &str) -> Option<(OffsetDateTime, LogStream, &str)> {
    let mut parts = line.splitn(4, '\t');
    let a = parts.next()?;
    let b = parts.next()?;
    let c = parts.next()?;
    let d = parts.next()?;
    if let Ok(ts) = OffsetDateTime::parse(a, &Rfc3339) {
        return Some((ts, level_stream(c), d));
    }
    let level = a.strip_prefix('[')?.strip_suffix(']')?;
    let ts = OffsetDateTime::parse(b, &Rfc3339).ok()?;
    Some((ts, level_stream(level), d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-01-02 03:04:05.5 UTC)
    }

    #[test]
    fn real_lambda_tail() {
        let tail = "START RequestId: 8f5 Version: $LATEST\n\
2026-01-02T03:04:05.100Z\t8f5\tINFO\thello\n\
2026-01-02T03:04:05.200Z\t8f5\tERROR\tbad\n\
[WARNING]\t2026-01-02T03:04:05.300Z\t8f5\tpy warn\n\
plain print\n\
END RequestId: 8f5\n\
REPORT RequestId: 8f5\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 150.20 ms\t\n";
        let p = parse_tail(tail, now());
        assert_eq!(
            p.lines,
            vec![
                "2026-01-02T03:04:05.100Z       stdout: hello",
                "2026-01-02T03:04:05.200Z       stderr: bad",
                "2026-01-02T03:04:05.300Z       stderr: py warn",
                "2026-01-02T03:04:05.500Z       stdout: plain print",
            ]
        );
        assert_eq!(p.duration_ms, Some(12.34));
        assert_eq!(p.init_ms, Some(150.2));
    }

    #[test]
    fn warm_report_has_no_init() {
        let p = parse_tail("REPORT RequestId: x\tDuration: 1.00 ms\t\n", now());
        assert_eq!(p.init_ms, None);
        assert!(p.lines.is_empty());
    }

    #[test]
    fn full_tails_drop_the_fragment_and_say_so() {
        let mut tail = String::from("agment of a cut line\n");
        while tail.len() < TAIL_LIMIT {
            tail.push_str("line\n");
        }
        let p = parse_tail(&tail, now());
        assert!(!p.lines.iter().any(|l| l.contains("agment")));
        assert!(p.lines.last().unwrap().contains("Logs were truncated"));
        // Issue 15 §15: for an action of known limit, OpenWhisk's line for that limit
        // [OW common/scala/.../logging/DockerToActivationLogStore.scala:150].
        let p = parse_tail_for(&tail, 10 * 1024 * 1024, now());
        assert_eq!(
            p.lines.last().unwrap(),
            "2026-01-02T03:04:05.500Z       stderr: Logs were truncated because the total bytes size exceeds the limit of 10485760 bytes."
        );
    }

    #[test]
    fn log_limits_are_megabytes_of_1024_squared() {
        assert_eq!(action_log_limit(&json!({"logs": 1})), 1_048_576);
        assert_eq!(action_log_limit(&json!({"logs": 0})), 0);
        assert_eq!(action_log_limit(&json!({"timeout": 1})), 10_485_760);
        let r = LogRequest::for_action(&json!({"logs": 3}), PayloadMode::OpenWhisk, true);
        assert_eq!(r.runtime_limit(), Some(3 * 1_048_576));
        assert_eq!(LogRequest::tail_only().runtime_limit(), None);
    }

    /// The runtime's wrapper comes apart into the lines and the result's own bytes,
    /// whatever the spacing and order (an emulator may re-serialise it).
    #[test]
    fn the_runtimes_answer_is_unwrapped() {
        use owl_runtime::answer::wrap_result;
        use owl_runtime::logs::ActivationLogs;
        let logs = ActivationLogs {
            lines: vec!["a \"q\"".into(), "é".into()],
            truncated: false,
            limit: 1024,
        };
        let result = br#"{"x": [1, 2], "t": "\u00e9"}"#;
        let wrapped = Bytes::from(wrap_result(result, &logs, now()).unwrap());
        let (lines, inner) = unwrap_answer(&wrapped, false).unwrap();
        assert_eq!(lines, logs.lines);
        assert_eq!(&inner[..], &result[..]);
        let spaced = Bytes::from_static(
            b" { \"owl:result\" : [1,{\"a\":\"}\"}] ,\n \"owl:logs\": [\"l\"] } ",
        );
        let (lines, inner) = unwrap_answer(&spaced, false).unwrap();
        assert_eq!(lines, ["l"]);
        assert_eq!(&inner[..], br#"[1,{"a":"}"}]"#);
        let number = Bytes::from_static(br#"{"owl:logs":[],"owl:result":12}"#);
        assert_eq!(&unwrap_answer(&number, false).unwrap().1[..], b"12");
    }

    #[test]
    fn anything_else_is_not_the_runtimes_answer() {
        for other in [
            r#"{"owl:logs":["a"]}"#,
            r#"{"owl:result":{}}"#,
            r#"{"owl:logs":["a"],"owl:result":{},"x":1}"#,
            r#"{"owl:logs":["a"],"owl:result":{},"owl:result":{}}"#,
            r#"{"owl:logs":[1],"owl:result":{}}"#,
            r#"{"owl:logs":["a"],"owl:result":{}} []"#,
            r#"{"owl:logs":["a"],"owl:result":{"#,
            r#"[{"owl:logs":["a"],"owl:result":{}}]"#,
            r#"{"a":1}"#,
            "{}",
            "",
        ] {
            assert_eq!(unwrap_answer(&Bytes::from(other), false), None, "{other}");
        }
    }

    #[test]
    fn failures_carry_their_lines_beside_lambdas_fields() {
        let body = Bytes::from_static(
            br#"{"errorMessage":"boom","errorType":"Runtime.HandlerError","owl:logs":["l1"]}"#,
        );
        let (lines, rest) = unwrap_answer(&body, true).unwrap();
        assert_eq!(lines, ["l1"]);
        assert_eq!(
            &rest[..],
            br#"{"errorMessage":"boom","errorType":"Runtime.HandlerError"}"#
        );
        // Lambda's own errors carry no lines.
        let lambdas =
            Bytes::from_static(br#"{"errorMessage":"Task timed out after 3.00 seconds"}"#);
        assert_eq!(unwrap_answer(&lambdas, true), None);
    }
}
