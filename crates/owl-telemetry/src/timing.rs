//! Per-request phase timings: what each request spent where, measured with the
//! monotonic clock wherever the work happens (the request's task or its invocation's
//! task), then given to the client as a `Server-Timing` header, kept in the
//! activation's `owl` annotation, and fed to the latency metrics.

use http::HeaderValue;
use serde_json::{Map, Value, json};
use std::fmt::Write;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A phase of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Credentials parsed and the caller's identity looked up.
    Auth = 0,
    /// Policy routes matched (and the route's weight drawn).
    Route = 1,
    /// The namespace's throttles consulted.
    Throttle = 2,
    /// The action's metadata (and the caller's rights) looked up.
    Metadata = 3,
    /// Calling Lambda (every attempt, and the pauses between retries).
    Lambda = 4,
    /// Waiting for the controller's response headers.
    Upstream = 5,
    /// Journaling an accepted invocation before answering with its id.
    Record = 6,
}

/// In the order they (first) happen.
const PHASES: [Phase; 7] = [
    Phase::Route,
    Phase::Auth,
    Phase::Throttle,
    Phase::Metadata,
    Phase::Lambda,
    Phase::Upstream,
    Phase::Record,
];

impl Phase {
    /// The name used in `Server-Timing`, the annotation and span names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Route => "route",
            Self::Throttle => "throttle",
            Self::Metadata => "metadata",
            Self::Lambda => "lambda",
            Self::Upstream => "upstream",
            Self::Record => "record",
        }
    }
}

/// Which way a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Answered by owl itself (`OPTIONS`, activation reads from owl's store).
    Local = 0,
    /// Served from Lambda (including requests refused on the way, such as a 401 or a
    /// 429 from the namespace throttles).
    Lambda = 1,
    /// Proxied to the controller.
    Proxy = 2,
    /// Routed to Lambda, which did not run it; sent to the controller.
    Fallback = 3,
}

impl Path {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Lambda => "lambda",
            Self::Proxy => "proxy",
            Self::Fallback => "fallback",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Lambda,
            2 => Self::Proxy,
            3 => Self::Fallback,
            _ => Self::Local,
        }
    }
}

/// The timings of one request; shared (behind an `Arc`) by the request's task and its
/// invocation's task.
#[derive(Debug, Default)]
pub struct Timings {
    nanos: [AtomicU64; 7],
    seen: AtomicU32,
    path: AtomicU8,
    /// Time the request's own task spent waiting for Lambda or the controller.
    awaited: AtomicU64,
}

impl Timings {
    /// Adds `d` to `phase`.
    pub fn add(&self, phase: Phase, d: Duration) {
        let i = phase as usize;
        self.nanos[i].fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.seen.fetch_or(1 << i, Ordering::Relaxed);
    }

    /// Runs `fut`, adding its duration to `phase`.
    pub async fn time<F: Future>(&self, phase: Phase, fut: F) -> F::Output {
        let t = Instant::now();
        let out = fut.await;
        self.add(phase, t.elapsed());
        out
    }

    /// Time spent in `phase` so far (zero if it did not happen).
    pub fn get(&self, phase: Phase) -> Duration {
        Duration::from_nanos(self.nanos[phase as usize].load(Ordering::Relaxed))
    }

    fn happened(&self, phase: Phase) -> bool {
        self.seen.load(Ordering::Relaxed) & (1 << phase as usize) != 0
    }

    /// Records which way the request went.
    pub fn set_path(&self, path: Path) {
        self.path.store(path as u8, Ordering::Relaxed);
    }

    /// Records that the request is being proxied: `proxy`, unless it was already
    /// marked as a `fallback`.
    pub fn proxied(&self) {
        let _ = self
            .path
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                (Path::from_u8(p) != Path::Fallback).then_some(Path::Proxy as u8)
            });
    }

    /// Which way the request went.
    pub fn path(&self) -> Path {
        Path::from_u8(self.path.load(Ordering::Relaxed))
    }

    /// Adds time the request's task spent waiting for Lambda or the controller.
    pub fn add_awaited(&self, d: Duration) {
        self.awaited
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Time the request's task spent waiting for Lambda or the controller.
    pub fn awaited(&self) -> Duration {
        Duration::from_nanos(self.awaited.load(Ordering::Relaxed))
    }

    /// The `Server-Timing` value: every phase that happened, then `total`, in
    /// milliseconds (`auth;dur=0.412, lambda;dur=12.3, total;dur=13.1`).
    pub fn server_timing(&self, total: Duration) -> HeaderValue {
        let mut s = String::with_capacity(96);
        // Integer arithmetic: exact-precision float formatting costs far more, on
        // every response.
        let dur = |s: &mut String, d: Duration| {
            let us = d.as_micros();
            let _ = write!(s, "{}.{:03}", us / 1000, us % 1000);
        };
        for p in PHASES {
            if self.happened(p) {
                s.push_str(p.name());
                s.push_str(";dur=");
                dur(&mut s, self.get(p));
                s.push_str(", ");
            }
        }
        s.push_str("total;dur=");
        dur(&mut s, total);
        HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("total"))
    }

    /// The value of the activation's `owl` annotation: the path taken and every phase
    /// so far, in milliseconds.
    pub fn annotation(&self, path: Path) -> Value {
        let mut phases = Map::new();
        for p in PHASES {
            if self.happened(p) {
                phases.insert(p.name().into(), json!(round3(ms(self.get(p)))));
            }
        }
        json!({ "path": path.label(), "phases": phases })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_lists_phases_that_happened_in_order_then_total() {
        let t = Timings::default();
        t.add(Phase::Lambda, Duration::from_micros(12_345));
        t.add(Phase::Auth, Duration::from_micros(400));
        t.add(Phase::Auth, Duration::from_micros(12));
        t.add(Phase::Route, Duration::ZERO);
        let v = t.server_timing(Duration::from_micros(13_001));
        assert_eq!(
            v.to_str().unwrap(),
            "route;dur=0.000, auth;dur=0.412, lambda;dur=12.345, total;dur=13.001"
        );
        assert_eq!(
            t.annotation(Path::Lambda),
            json!({"path": "lambda", "phases": {"auth": 0.412, "route": 0.0, "lambda": 12.345}})
        );
    }

    #[test]
    fn proxying_keeps_a_fallback_a_fallback() {
        let t = Timings::default();
        assert_eq!(t.path(), Path::Local);
        t.proxied();
        assert_eq!(t.path(), Path::Proxy);
        t.set_path(Path::Fallback);
        t.proxied();
        assert_eq!(t.path(), Path::Fallback);
    }
}
