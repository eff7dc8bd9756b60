//! Telemetry: where every millisecond of a request went.
//!
//! - [`metrics`]: Prometheus metrics at `/metrics`, owl's own and OpenWhisk's
//!   user-events names for activations served from Lambda;
//! - [`timing`]: per-request phase timings, given to clients as `Server-Timing` and
//!   kept in the activation's `owl` annotation;
//! - [`traces`]: OpenTelemetry spans exported over OTLP (off unless configured), W3C
//!   trace context accepted from clients and passed on to the controller and Lambda;
//! - [`logging`]: the log subscriber (text or JSON lines with request and trace ids).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod logging;
pub mod metrics;
pub mod timing;
pub mod traces;

pub use metrics::*;
