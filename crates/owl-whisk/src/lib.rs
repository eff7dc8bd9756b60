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
impl Deployment {
    /// The largest request entity a namespace may send: its own `maxPayloadSize`
    /// (the namespace's limits document), capped at the deployment's, as
    /// `UserLimits.allowedMaxPayloadSize` decides [OW common/scala/.../entity/
    /// Identity.scala:62-67]; the deployment's when the namespace sets none (or one
    /// OpenWhisk could not read).
    pub fn payload_max_for(&self, limits: Option<&serde_json::Value>) -> u64 {
        limits
            .and_then(|l| l.get("maxPayloadSize"))
            .and_then(serde_json::Value::as_str)
            .and_then(byte_size)
            .map_or(self.payload_max, |n| n.min(self.payload_max))
    }
}

/// A `ByteSize` as OpenWhisk writes and reads it (`"512 KB"`, `"1m"`): digits, an
/// optional space, a unit of `B`, `K[B]`, `M[B]` or `G[B]` in any case, binary
/// multiples [OW common/scala/.../entity/Size.scala:139-157, 30-90].
pub fn byte_size(text: &str) -> Option<u64> {
    // The pattern `\s?(\d+)\s?(GB|MB|KB|B|G|M|K)\s?`, matched whole.
    let t = text.strip_prefix(char::is_whitespace).unwrap_or(text);
    let t = t.strip_suffix(char::is_whitespace).unwrap_or(t);
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let n: u64 = t[..digits].parse().ok()?;
    let unit = t[digits..]
        .strip_prefix(char::is_whitespace)
        .unwrap_or(&t[digits..]);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "B" => 0,
        "K" | "KB" => 10,
        "M" | "MB" => 20,
        "G" | "GB" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

pub use activation::{Activation, ActivationId, ActivationResponse, StatusCode};
pub use names::{ActionPath, EntityName, NameError};
pub use transaction::TransactionId;

#[cfg(test)]
mod payload_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn byte_sizes_read_as_openwhisk_reads_them() {
        // Size.scala:139-157: `(?i)\s?(\d+)\s?(GB|MB|KB|B|G|M|K)\s?`, binary units.
        for (text, bytes) in [
            ("1 MB", Some(1 << 20)),
            ("1m", Some(1 << 20)),
            ("512 KB", Some(512 << 10)),
            (" 3k ", Some(3 << 10)),
            ("100 B", Some(100)),
            ("2 gb", Some(2 << 30)),
            ("1  MB", None),
            ("MB", None),
            ("1.5 MB", None),
            ("1 TB", None),
            ("-1 B", None),
            ("99999999999999999999 B", None),
        ] {
            assert_eq!(byte_size(text), bytes, "{text:?}");
        }
    }

    #[test]
    fn a_namespace_payload_limit_is_capped_at_the_deployments() {
        let d = Deployment::default();
        assert_eq!(d.payload_max_for(None), d.payload_max);
        let ns = |v: serde_json::Value| json!({ "maxPayloadSize": v });
        assert_eq!(d.payload_max_for(Some(&ns(json!("1 KB")))), 1024);
        assert_eq!(
            d.payload_max_for(Some(&ns(json!("5 MB")))),
            d.payload_max,
            "capped (Identity.scala:62-67)"
        );
        assert_eq!(d.payload_max_for(Some(&ns(json!(1024)))), d.payload_max);
        assert_eq!(d.payload_max_for(Some(&json!({}))), d.payload_max);
    }
}
