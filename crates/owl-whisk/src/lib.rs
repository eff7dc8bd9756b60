//! OpenWhisk's vocabulary: entity names, transaction ids, activation records, action
//! metadata, parameter merging and the exact message texts clients read.
//!
//! Nothing here performs I/O. Everything that must look exactly as OpenWhisk makes it
//! (texts, id formats, JSON shapes) is defined once, here, so the Lambda path and the
//! tests share one source of truth. Facts are cited from `openwhisk-api.md` (the
//! reference) by section.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod action;
pub mod activation;
pub mod contract;
pub mod messages;
pub mod names;
pub mod params;
pub mod sequence;
pub mod transaction;
pub mod web;

pub use action::{ActionLimits, ActionMetadata};

/// OpenWhisk values a deployment may change in its `whisk.*` configuration. Both paths
/// must agree on them, so owl takes the deployment's values from `[openwhisk]`; the
/// defaults are OpenWhisk's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// Longest blocking wait, the largest `timeout` accepted
    /// (`whisk.controller.activation.max-wait-for-blocking-activation`, 60 s).
    pub max_blocking_wait_ms: u64,
    /// Largest request entity and longest result before truncation
    /// (`whisk.activation.payload.max`, 1 MiB: OpenWhisk uses it for both
    /// [OW common/scala/.../entity/ActivationEntityLimit.scala:44, containerpool/
    /// Container.scala:130]).
    pub payload_max: u64,
    /// Largest activations list page (`whisk.query-limit.max-list-limit`, 200).
    pub list_limit: u64,
    /// Most atomic actions one sequence tree runs (`actionSequenceLimit`,
    /// `limits.actions.sequence.maxLength`, 50) [OW common/scala/.../core/
    /// WhiskConfig.scala:86, 192].
    pub sequence_limit: u64,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            max_blocking_wait_ms: 60_000,
            payload_max: 1_048_576,
            list_limit: 200,
            sequence_limit: sequence::DEFAULT_LIMIT as u64,
        }
    }
}
pub use activation::{Activation, ActivationId, ActivationResponse, StatusCode};
pub use names::{ActionPath, EntityName, NameError};
pub use transaction::TransactionId;
