//! Lambda's log tail (the last 4 KB of the execution log, `LogType: Tail`) turned into
//! OpenWhisk log lines, plus the figures of Lambda's `REPORT` line.

use crate::whisk::activation::{LogStream, format_log_line};
use crate::whisk::messages;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Size of the tail Lambda returns; a tail this long was probably cut at its start.
pub const TAIL_LIMIT: usize = 4096;

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

/// Parses a decoded log tail. Lines without their own timestamp get `now`.
pub fn parse_tail(tail: &str, now: OffsetDateTime) -> ParsedTail {
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
            &messages::logs_truncated(TAIL_LIMIT),
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
    }
}
