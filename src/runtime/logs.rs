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

use super::config::LogFormat;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// OpenWhisk's end-of-activation log sentinel.
pub const SENTINEL: &[u8] = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// Longest line written as one log line; longer ones are split.
pub const MAX_LINE: usize = 256 * 1024;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The action's stdout (`INFO`).
    Stdout,
    /// The action's stderr, and the runtime's own messages (`ERROR`).
    Stderr,
}

/// Where log lines go: the runtime's stdout, tagged with the current request id.
#[derive(Debug)]
pub struct LogSink {
    format: LogFormat,
    request_id: Mutex<String>,
}

impl LogSink {
    /// A sink writing in `format`.
    pub fn new(format: LogFormat) -> Arc<Self> {
        Arc::new(Self {
            format,
            request_id: Mutex::new("-".into()),
        })
    }

    /// Lines from now on belong to invocation `id`.
    pub fn set_request(&self, id: &str) {
        if let Ok(mut r) = self.request_id.lock() {
            r.clear();
            r.push_str(id);
        }
    }

    /// Formats one line (without its newline).
    pub fn format(&self, stream: Stream, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() + 80);
        if self.format == LogFormat::Lambda {
            let now = time::OffsetDateTime::now_utc();
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

    /// Writes one line to the log stream.
    pub fn line(&self, stream: Stream, text: &[u8]) {
        let out = self.format(stream, text);
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(&out);
        let _ = so.flush();
    }

    /// Writes one of the runtime's own messages (as an `ERROR` line).
    pub fn runtime(&self, message: &str) {
        self.line(Stream::Stderr, format!("owl-runtime: {message}").as_bytes());
    }
}

/// Splits a sentinel off the end of a line: the text before it (if any) and the
/// runtime's sequence number (if the sentinel carries one).
pub fn split_sentinel(line: &[u8]) -> (Option<&[u8]>, Option<u64>) {
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
pub fn pump(
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
