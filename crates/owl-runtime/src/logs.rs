//! The action's stdout and stderr, passed to the Lambda log stream line by line.
//!
//! Each stream is read by its own thread. Lines are written to the runtime's stdout
//! (Lambda captures it) in the Node.js runtime's format, `timestamp<TAB>request
//! id<TAB>INFO|ERROR<TAB>text`, so owl's log-tail reader turns them back into
//! OpenWhisk `stdout` / `stderr` lines; `OW_LOG_FORMAT=plain` writes them unchanged.
//! OpenWhisk's end-of-activation sentinel is never written: the runtime appends it
//! (with a sequence number) to both pipes itself after each activation and waits
//! until both readers have reached it, so every line an activation printed is in the
//! log before its result is posted — and sentinels an action or a launcher prints are
//! dropped.
//!
//! When owl asks for the activation's logs (`owl:log_limit` in its envelope), the sink
//! also keeps every line in OpenWhisk's stored format (`<timestamp> stdout: text`,
//! [`format_log_line`]) until the action's log limit, counting and cutting as
//! OpenWhisk's invoker does; the runtime returns them with its answer
//! (`src/runtime/answer.rs`), so the activation's logs are not limited to Lambda's 4 KB
//! log tail. Lines written between activations (the action loading at a cold start, a
//! launcher restarted after a failure, late output) belong to the next activation, as
//! in an OpenWhisk container's log.

use super::config::LogFormat;
use owl_whisk::activation::{LogStream, format_log_line};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// OpenWhisk's end-of-activation log sentinel.
pub(crate) const SENTINEL: &[u8] = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// Longest line written as one log line; longer ones are split.
pub(crate) const MAX_LINE: usize = 256 * 1024;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The action's stdout (`INFO`).
    Stdout,
    /// The action's stderr, and the runtime's own messages (`ERROR`).
    Stderr,
}

impl From<Stream> for LogStream {
    fn from(s: Stream) -> Self {
        match s {
            Stream::Stdout => LogStream::Stdout,
            Stream::Stderr => LogStream::Stderr,
        }
    }
}

/// The log limit applied to lines written before any activation said its own: a cold
/// start's output is kept up to OpenWhisk's default (and largest) action log limit,
/// 10 MB, then cut to the limit of the activation that receives it.
pub(crate) const DEFAULT_LOG_LIMIT: usize = 10 * 1024 * 1024;

/// What Docker's `json-file` log driver adds around the JSON-escaped text of one line:
/// `{"log":"` … `\n","stream":"stdout","time":"` + a 30-character RFC 3339 time with
/// nanoseconds + `"}` and the record's newline. OpenWhisk's invoker counts these
/// records against the action's log limit (see [`record_size`]).
const RECORD_OVERHEAD: usize = 71;

/// The size OpenWhisk's invoker counts for a line of `text`: the Docker `json-file`
/// record it reads, plus its newline [OW core/invoker/.../docker/DockerContainer.scala:313
/// `limitWeighted(limit.toBytes) { obj => obj.size + 1 }`]. The text is escaped as Go's
/// `encoding/json` escapes it (HTML characters and U+2028 / U+2029 included).
pub(crate) fn record_size(text: &str) -> usize {
    let escaped: usize = text
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' => 2,
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => 6,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum();
    escaped + RECORD_OVERHEAD
}

/// What an activation logged, for owl: its lines in OpenWhisk's stored format, and
/// whether more was written than its log limit allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationLogs {
    /// The lines kept, oldest first (without any truncation line).
    pub lines: Vec<String>,
    /// True if a line did not fit in the limit: it and everything after it were
    /// dropped, as OpenWhisk stops collecting at the first line over the limit.
    pub truncated: bool,
    /// The action's log limit in bytes (named by OpenWhisk's truncation line).
    pub limit: usize,
}

/// The lines kept for owl, between two [`LogSink::take_collected`] calls.
#[derive(Debug)]
struct Collector {
    /// False when the current activation did not ask for its logs.
    on: bool,
    limit: usize,
    /// Sum of the kept lines' [`record_size`]s.
    used: usize,
    /// Each line with its record size.
    lines: Vec<(String, usize)>,
    truncated: bool,
}

impl Collector {
    fn keep(&mut self, at: OffsetDateTime, stream: Stream, text: &[u8]) {
        if !self.on || self.truncated {
            return;
        }
        let text = String::from_utf8_lossy(text);
        let size = record_size(&text);
        if self.used + size > self.limit {
            self.truncated = true;
            return;
        }
        self.used += size;
        self.lines
            .push((format_log_line(at, stream.into(), &text), size));
    }

    fn apply(&mut self, limit: Option<usize>) {
        let Some(limit) = limit else {
            self.on = false;
            self.lines = Vec::new();
            self.used = 0;
            self.truncated = false;
            return;
        };
        self.on = true;
        self.limit = limit;
        while self.used > limit {
            let Some((_, size)) = self.lines.pop() else {
                break;
            };
            self.used -= size;
            self.truncated = true;
        }
    }
}

/// Where log lines go: the runtime's stdout, tagged with the current request id (and,
/// when owl asked, the activation's collected lines).
#[derive(Debug)]
pub struct LogSink {
    format: LogFormat,
    request_id: Mutex<String>,
    collected: Mutex<Collector>,
}

impl LogSink {
    /// A sink writing in `format`, keeping lines for the first activation (up to
    /// [`DEFAULT_LOG_LIMIT`]) until it says whether it wants them.
    pub fn new(format: LogFormat) -> Arc<Self> {
        Arc::new(Self {
            format,
            request_id: Mutex::new("-".into()),
            collected: Mutex::new(Collector {
                on: true,
                limit: DEFAULT_LOG_LIMIT,
                used: 0,
                lines: Vec::new(),
                truncated: false,
            }),
        })
    }

    /// The current activation wants its lines up to `limit` bytes (`None`: it does
    /// not, and nothing is kept until one does). Lines already kept for it (written
    /// since the last activation) are cut to the limit.
    pub fn collect(&self, limit: Option<usize>) {
        if let Ok(mut c) = self.collected.lock() {
            c.apply(limit);
        }
    }

    /// The lines kept since the last call, if the current activation asked for them.
    /// Keeping goes on, under the same limit, for the next activation.
    pub(crate) fn take_collected(&self) -> Option<ActivationLogs> {
        let mut c = self.collected.lock().ok()?;
        if !c.on {
            return None;
        }
        let lines = std::mem::take(&mut c.lines)
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        let out = ActivationLogs {
            lines,
            truncated: c.truncated,
            limit: c.limit,
        };
        c.used = 0;
        c.truncated = false;
        Some(out)
    }

    /// Lines from now on belong to invocation `id`.
    pub(crate) fn set_request(&self, id: &str) {
        if let Ok(mut r) = self.request_id.lock() {
            r.clear();
            r.push_str(id);
        }
    }

    /// Formats one line (without its newline), stamped now.
    #[cfg(test)]
    fn format(&self, stream: Stream, text: &[u8]) -> Vec<u8> {
        self.format_at(OffsetDateTime::now_utc(), stream, text)
    }

    fn format_at(&self, now: OffsetDateTime, stream: Stream, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() + 80);
        if self.format == LogFormat::Lambda {
            let ts = now
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .unwrap_or_default();
            out.extend_from_slice(ts.as_bytes());
            out.push(b'\t');
            if let Ok(id) = self.request_id.lock() {
                out.extend_from_slice(id.as_bytes());
            }
            out.extend_from_slice(match stream {
                Stream::Stdout => b"\tINFO\t",
                Stream::Stderr => b"\tERROR\t",
            });
        }
        out.extend_from_slice(text);
        out.push(b'\n');
        out
    }

    /// Writes one line to the log stream (and keeps it for owl when asked). Both
    /// carry the same time: milliseconds in the log stream, all its digits in
    /// OpenWhisk's line, as Docker's timestamps have.
    pub fn line(&self, stream: Stream, text: &[u8]) {
        let now = OffsetDateTime::now_utc();
        let out = self.format_at(now, stream, text);
        {
            let mut so = std::io::stdout().lock();
            let _ = so.write_all(&out);
            let _ = so.flush();
        }
        if let Ok(mut c) = self.collected.lock() {
            c.keep(now, stream, text);
        }
    }

    /// Writes one of the runtime's own messages (as an `ERROR` line).
    pub fn runtime(&self, message: &str) {
        self.line(Stream::Stderr, format!("owl-runtime: {message}").as_bytes());
    }
}

/// Splits a sentinel off the end of a line: the text before it (if any) and the
/// runtime's sequence number (if the sentinel carries one).
pub(crate) fn split_sentinel(line: &[u8]) -> (Option<&[u8]>, Option<u64>) {
    let Some(pos) = find_last(line, SENTINEL) else {
        return (Some(line), None);
    };
    let rest = &line[pos + SENTINEL.len()..];
    let seq = match rest {
        [] => None,
        [b':', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
        }
        // Text after the sentinel: not a sentinel line.
        _ => return (Some(line), None),
    };
    let before = &line[..pos];
    ((!before.is_empty()).then_some(before), seq)
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

/// The marker the runtime appends to a pipe after activation `seq`.
pub fn marker(seq: u64) -> Vec<u8> {
    let mut m = SENTINEL.to_vec();
    m.extend_from_slice(format!(":{seq}\n").as_bytes());
    m
}

/// Reads `pipe` until it closes, writing its lines to `sink` and reporting markers
/// through `seen`.
pub(crate) fn pump(
    pipe: impl Read + Send + 'static,
    stream: Stream,
    sink: Arc<LogSink>,
    seen: tokio::sync::watch::Sender<u64>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("owl-log-{stream:?}"))
        .spawn(move || {
            let mut r = BufReader::with_capacity(64 * 1024, pipe);
            let mut line = Vec::new();
            loop {
                let (done, used) = match r.fill_buf() {
                    Ok([]) | Err(_) => {
                        if !line.is_empty() {
                            emit(&sink, stream, &seen, &line);
                        }
                        return;
                    }
                    Ok(buf) => match buf.iter().position(|b| *b == b'\n') {
                        Some(i) => {
                            line.extend_from_slice(&buf[..i]);
                            (true, i + 1)
                        }
                        None => {
                            let take = buf.len().min(MAX_LINE.saturating_sub(line.len()));
                            line.extend_from_slice(&buf[..take]);
                            (line.len() >= MAX_LINE, take)
                        }
                    },
                };
                r.consume(used);
                if done {
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    emit(&sink, stream, &seen, &line);
                    line.clear();
                }
            }
        })
        .expect("spawn a log thread")
}

fn emit(sink: &LogSink, stream: Stream, seen: &tokio::sync::watch::Sender<u64>, line: &[u8]) {
    let (text, seq) = split_sentinel(line);
    if let Some(t) = text {
        sink.line(stream, t);
    }
    if let Some(s) = seq {
        seen.send_replace(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_are_stripped() {
        assert_eq!(split_sentinel(b"hello"), (Some(&b"hello"[..]), None));
        assert_eq!(split_sentinel(SENTINEL), (None, None));
        assert_eq!(
            split_sentinel(&marker(7)[..marker(7).len() - 1]),
            (None, Some(7))
        );
        let mut partial = b"no newline".to_vec();
        partial.extend_from_slice(&marker(3)[..marker(3).len() - 1]);
        assert_eq!(
            split_sentinel(&partial),
            (Some(&b"no newline"[..]), Some(3))
        );
        let mut other = SENTINEL.to_vec();
        other.extend_from_slice(b" and more");
        assert_eq!(split_sentinel(&other), (Some(&other[..]), None));
    }

    #[test]
    fn lines_carry_time_request_and_level() {
        let sink = LogSink::new(LogFormat::Lambda);
        sink.set_request("req-1");
        let l = String::from_utf8(sink.format(Stream::Stderr, "é\tx".as_bytes())).unwrap();
        let parts: Vec<&str> = l.trim_end().splitn(4, '\t').collect();
        assert_eq!(parts[1..], ["req-1", "ERROR", "é\tx"]);
        assert!(
            time::OffsetDateTime::parse(parts[0], &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{l}"
        );
        let plain = LogSink::new(LogFormat::Plain);
        assert_eq!(plain.format(Stream::Stdout, b"as is"), b"as is\n");
    }

    fn collector(limit: usize) -> Collector {
        Collector {
            on: true,
            limit,
            used: 0,
            lines: Vec::new(),
            truncated: false,
        }
    }

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-01-02 03:04:05.123456789 UTC)
    }

    /// Docker's `json-file` record: `{"log":"<text>\n","stream":"stdout","time":"<30
    /// characters>"}` and its newline.
    #[test]
    fn lines_weigh_what_openwhisk_counts() {
        let record = |text: &str| {
            let log = serde_json::to_string(&format!("{text}\n")).unwrap();
            format!(r#"{{"log":{log},"stream":"stdout","time":"2026-01-02T03:04:05.123456789Z"}}"#)
                .len()
                + 1
        };
        for text in ["", "hello", "tab\there \"quoted\" \\", "é 🦉 中文"] {
            assert_eq!(record_size(text), record(text), "{text}");
        }
        // Go also escapes HTML characters and U+2028/U+2029 (`\u003c`).
        assert_eq!(record_size("<&>"), record("") + 18);
        assert_eq!(record_size("\u{2028}"), record("") + 6);
    }

    #[test]
    fn lines_are_kept_in_openwhisks_format_until_the_limit() {
        let mut c = collector(3 * record_size("0123456789"));
        c.keep(at(), Stream::Stdout, b"0123456789");
        c.keep(at(), Stream::Stderr, b"0123456789");
        c.keep(at(), Stream::Stdout, b"0123456789");
        assert!(!c.truncated);
        c.keep(at(), Stream::Stdout, b"x");
        // Past the limit nothing more is kept, even a line that would fit.
        assert!(c.truncated);
        let lines: Vec<&str> = c.lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "2026-01-02T03:04:05.123456789Z stdout: 0123456789",
                "2026-01-02T03:04:05.123456789Z stderr: 0123456789",
                "2026-01-02T03:04:05.123456789Z stdout: 0123456789",
            ]
        );
        // A smaller limit for the activation cuts what was kept before it.
        c.truncated = false;
        c.apply(Some(2 * record_size("0123456789") - 1));
        assert_eq!(c.lines.len(), 1);
        assert!(c.truncated);
        // Not asked: nothing kept.
        c.apply(None);
        c.keep(at(), Stream::Stdout, b"y");
        assert!(c.lines.is_empty() && !c.on);
    }

    #[test]
    fn each_activation_takes_its_own_lines() {
        let sink = LogSink::new(LogFormat::Plain);
        sink.collect(Some(1024));
        if let Ok(mut c) = sink.collected.lock() {
            c.keep(at(), Stream::Stdout, b"one");
            c.keep(at(), Stream::Stdout, &[b'x'; 2000]);
        }
        let first = sink.take_collected().unwrap();
        assert_eq!(first.lines.len(), 1);
        assert!(first.truncated);
        assert_eq!(first.limit, 1024);
        let second = sink.take_collected().unwrap();
        assert_eq!(
            second,
            ActivationLogs {
                lines: vec![],
                truncated: false,
                limit: 1024
            }
        );
        sink.collect(None);
        assert_eq!(sink.take_collected(), None);
    }

    #[test]
    fn pump_reports_markers_after_the_lines_before_them() {
        let sink = LogSink::new(LogFormat::Plain);
        let (tx, rx) = tokio::sync::watch::channel(0);
        let mut input = b"one\ntwo".to_vec();
        input.extend_from_slice(&marker(5));
        input.extend_from_slice(&vec![b'x'; MAX_LINE + 10]);
        let t = pump(std::io::Cursor::new(input), Stream::Stdout, sink, tx);
        t.join().unwrap();
        assert_eq!(*rx.borrow(), 5);
    }
}
