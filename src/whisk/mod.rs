//! OpenWhisk's vocabulary: entity names, transaction ids, activation records, action
//! metadata, parameter merging and the exact message texts clients read.
//!
//! Nothing here performs I/O. Everything that must look exactly as OpenWhisk makes it
//! (texts, id formats, JSON shapes) is defined once, here, so the Lambda path and the
//! tests share one source of truth. Facts are cited from `openwhisk-api.md` (the
//! reference) by section.

pub mod action;
pub mod activation;
pub mod messages;
pub mod names;
pub mod params;
pub mod transaction;

pub use action::{ActionLimits, ActionMetadata};
pub use activation::{Activation, ActivationId, ActivationResponse, StatusCode};
pub use names::{ActionPath, EntityName, NameError};
pub use transaction::TransactionId;
