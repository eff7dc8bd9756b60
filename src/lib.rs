//! owl: an edge gateway for Apache OpenWhisk.
//!
//! owl sits in front of the OpenWhisk API. Invocations of actions that the policy maps
//! to AWS Lambda functions are answered by calling Lambda directly, exactly as OpenWhisk
//! would answer them; every other request is proxied unchanged to the controller.
//! See `ARCHITECTURE.md` for the map of modules and the request paths.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod policy;
pub mod whisk;
