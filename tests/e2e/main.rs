//! owl's end-to-end suites, in one test binary: each module starts gateways in
//! process (or the `owl` binary) in front of MiniStack, pouchdb-server, the stand-in
//! controller and small fakes, and checks what a client sees. One binary links the
//! gateway once instead of once per suite. The fault drill (`tests/drill.rs`) and
//! the hostile-input properties (`tests/hostile.rs`, which installs a counting
//! allocator for the whole process) stay binaries of their own.

#[path = "../common/mod.rs"]
mod common;

mod activations;
mod audit;
mod auth_sources;
mod bad_input;
mod cli;
mod couch_tls;
mod couchdb_store;
mod durability;
mod faults;
mod jwt;
mod lambda_path;
mod loadtest;
mod npm_client;
mod operations;
mod proxy;
mod runtime;
mod sequences;
mod sync;
mod telemetry;
mod tls;
mod web;
