//! Transaction ids (reference §1.8): the `X-Request-ID` of a request, echoed in the
//! response and used as `code` in error bodies and as the action's transaction id.

use rand::Rng;
use std::fmt;

/// Header that carries the transaction id.
pub const HEADER: &str = "x-request-id";
/// Ids with this prefix are reserved for the system and never taken from a client.
const SYSTEM_PREFIX: &str = "sid_";

/// A request's transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

impl TransactionId {
    /// Generates a random id of 32 characters from `[A-Za-z0-9]`, as the controller does.
    pub fn generate() -> Self {
        const DICT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let id: String = (0..32)
            .map(|_| DICT[rng.random_range(0..DICT.len())] as char)
            .collect();
        Self(id)
    }

    /// Adopts the client's `X-Request-ID` as the controller does — any value, even an
    /// empty one, unless it starts with the reserved `sid_` — and otherwise (absent,
    /// reserved, or not representable as text) generates a fresh id.
    pub fn from_header(value: Option<&http::HeaderValue>) -> Self {
        value
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.starts_with(SYSTEM_PREFIX))
            .map(|v| Self(v.to_string()))
            .unwrap_or_else(Self::generate)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn generated_ids_look_like_the_controllers() {
        let id = TransactionId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, TransactionId::generate());
    }

    #[test]
    fn client_ids_are_honoured_unless_reserved() {
        let v = HeaderValue::from_static("my-request-1");
        assert_eq!(
            TransactionId::from_header(Some(&v)).as_str(),
            "my-request-1"
        );
        let sid = HeaderValue::from_static("sid_invoker");
        assert_ne!(
            TransactionId::from_header(Some(&sid)).as_str(),
            "sid_invoker"
        );
        let long = HeaderValue::from_str(&"x".repeat(300)).unwrap();
        assert_eq!(TransactionId::from_header(Some(&long)).as_str().len(), 300);
        let empty = HeaderValue::from_static("");
        assert_eq!(TransactionId::from_header(Some(&empty)).as_str(), "");
        let binary = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        assert_eq!(TransactionId::from_header(Some(&binary)).as_str().len(), 32);
        assert_eq!(TransactionId::from_header(None).as_str().len(), 32);
    }
}
