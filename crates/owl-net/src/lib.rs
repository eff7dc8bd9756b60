//! Network plumbing every owl crate may use, and that uses nothing of owl's: client
//! TLS configurations, the request body that fails on a stalled sender, the
//! description of a client error with its causes, and URL path-segment encoding.
//! They sit here, at the bottom, so the gateway's server, controller client, CouchDB,
//! JWKS and OTLP clients and the load generator share them without importing one
//! another. The gateway re-exports this crate as `owl::net`.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod idle_body;
pub mod tls;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment (of a controller or CouchDB URL).
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// An error with its chain of sources (`a: b: c`): hyper's connection errors say
/// what went wrong (a refused certificate, a reset) only in their sources. A source
/// whose text the description already holds (errors that repeat their cause) is not
/// repeated.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(encode_segment("hello world"), "hello%20world");
        assert_eq!(encode_segment("a/b"), "a%2Fb");
        assert_eq!(encode_segment("a.b-c_d"), "a.b-c_d");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("client error")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn describe_follows_the_sources() {
        let e = Outer(std::io::Error::other("certificate unknown"));
        assert_eq!(e.to_string(), "client error");
        assert_eq!(describe(&e), "client error: certificate unknown");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connect failed: refused")]
    struct Repeating(#[source] std::io::Error);

    #[test]
    fn describe_does_not_repeat_a_cause_already_said() {
        let e = Repeating(std::io::Error::other("refused"));
        assert_eq!(describe(&e), "connect failed: refused");
    }
}
