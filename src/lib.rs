//! owl: an edge gateway for Apache OpenWhisk.
//!
//! owl sits in front of the OpenWhisk API. Invocations of actions that the policy maps
//! to AWS Lambda functions are answered by calling Lambda directly, exactly as OpenWhisk
//! would answer them; every other request is proxied unchanged to the controller.
//! See `ARCHITECTURE.md` for the map of modules and the request paths.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod activation;
pub(crate) mod api;
pub mod auth;
pub mod cli;
pub mod context;
pub(crate) mod controller;
pub mod couchdb;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod invoke;
pub(crate) mod limits;
pub mod metadata;
pub mod policy;
pub(crate) mod reload;
pub mod serve;
pub mod server;
pub(crate) mod shutdown;
pub mod standin;
pub mod sync;
/// OpenWhisk's vocabulary, a crate of its own (`crates/owl-whisk`): no I/O, no other crate of owl.
pub use owl_lambda as lambda;
pub use owl_loadtest as loadtest;
pub use owl_net as net;
pub use owl_telemetry as telemetry;
pub use owl_whisk as whisk;

#[cfg(test)]
mod layering;
