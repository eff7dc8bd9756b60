//! Load generation and benchmark reporting, shared by the bundled benchmarks
//! (`cargo bench --bench ladder`) and `owl bench`, which compares the standard and
//! the direct path on a real deployment.
//!
//! - [`generator`]: open-loop (constant rate, coordinated-omission corrected) and
//!   closed-loop (maximum throughput) HTTP load that counts every failure.
//! - [`stats`]: percentiles, medians, spreads, ratios.
//! - [`cpu`]: CPU time of a process, for CPU per request.
//! - [`report`]: markdown tables, the machine's description, the SVG chart.
//! - [`compare`]: `owl bench` against a real OpenWhisk and owl in front of it.
//!
//! The gateway re-exports it as `owl::loadtest`.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compare;
pub mod cpu;
pub mod generator;
pub mod report;
pub mod stats;
