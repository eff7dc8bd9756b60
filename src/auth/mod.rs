//! Who is calling: credentials from the `Authorization` header — OpenWhisk keys parsed
//! exactly as the controller parses them (reference §4.1), or, when configured, bearer
//! tokens (JWT) — and the identity they stand for.
//!
//! Secrets never appear in `Debug` output or logs, and caches are keyed by a SHA-256
//! hash of the credentials, never by the secret itself.

pub mod entitlement;
pub mod jwt;

use crate::error::WhiskError;
use base64::Engine;
use http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use std::fmt;

/// Length every OpenWhisk key must have.
pub const KEY_LENGTH: usize = 64;

/// A SHA-256 digest used as a cache key in place of a secret.
pub(crate) type CredentialHash = [u8; 32];

/// Basic credentials `uuid:key`.
#[derive(Clone)]
pub struct Credentials {
    /// The uuid part (not secret).
    pub uuid: String,
    key: String,
    authorization: HeaderValue,
    hash: CredentialHash,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("uuid", &self.uuid)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The `uuid:key` string an action receives as its API key.
    pub fn api_key(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }

    /// The `Authorization` header to present to the controller on the caller's behalf.
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// The hash identifying these credentials in caches.
    pub fn hash(&self) -> &CredentialHash {
        &self.hash
    }

    /// The key part, for constant-time comparison by identity sources.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Credentials from a `uuid:key` string (service keys files, identity stores).
    pub fn from_api_key(api_key: &str) -> Option<Self> {
        let value = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(api_key)
        ))
        .ok()?;
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        Self::from_headers(&headers).ok()
    }

    /// Parses the request's credentials.
    ///
    /// Like the controller: no header, or a scheme other than `Basic`, is "missing"
    /// (401 "requires authentication"); `Basic` with a key that is not 64 characters
    /// is "invalid" (401 "supplied authentication is invalid").
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, WhiskError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(WhiskError::auth_required());
        };
        let Ok(text) = value.to_str() else {
            return Err(WhiskError::auth_required());
        };
        let text = text.trim();
        let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
        let token = token.trim();
        // The HTTP library reads Basic credentials only when a token68 follows the
        // scheme; anything else is not credentials at all ("missing").
        if !scheme.eq_ignore_ascii_case("basic") || !is_token68(token) {
            return Err(WhiskError::auth_required());
        }
        let decoded = decode_base64_lenient(token).ok_or_else(WhiskError::auth_invalid)?;
        let decoded = String::from_utf8(decoded).map_err(|_| WhiskError::auth_invalid())?;
        let (uuid, key) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
        if key.chars().count() != KEY_LENGTH {
            return Err(WhiskError::auth_invalid());
        }
        let mut hasher = Sha256::new();
        hasher.update(b"basic\0");
        hasher.update(uuid.as_bytes());
        hasher.update(b":");
        hasher.update(key.as_bytes());
        Ok(Self {
            uuid: uuid.to_string(),
            key: key.to_string(),
            authorization: value.clone(),
            hash: hasher.finalize().into(),
        })
    }
}

/// RFC 7235 token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Base64 with optional padding.
fn decode_base64_lenient(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// A bearer token (the text after `Bearer `).
#[derive(Clone)]
pub struct BearerToken {
    token: String,
    hash: CredentialHash,
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// The compact token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The hash identifying the token in caches.
    pub fn hash(&self) -> &CredentialHash {
        &self.hash
    }
}

/// What a request presents.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An OpenWhisk key.
    Basic(Credentials),
    /// A bearer token (only when `[auth.jwt]` is configured).
    Bearer(BearerToken),
}

impl Caller {
    /// Parses the request's `Authorization`. Bearer tokens are recognised only when
    /// `bearer_enabled`; otherwise, as for the controller, they are "no credentials".
    pub fn from_headers(headers: &HeaderMap, bearer_enabled: bool) -> Result<Self, WhiskError> {
        if bearer_enabled
            && let Some(text) = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
        {
            let text = text.trim();
            if let Some((scheme, token)) = text.split_once(' ')
                && scheme.eq_ignore_ascii_case("bearer")
            {
                let token = token.trim();
                if token.is_empty() {
                    return Err(WhiskError::auth_invalid());
                }
                return Ok(Self::Bearer(BearerToken {
                    hash: cache_key(&[b"bearer", token.as_bytes()]),
                    token: token.to_string(),
                }));
            }
        }
        Credentials::from_headers(headers).map(Self::Basic)
    }

    /// The hash identifying what was presented.
    pub fn hash(&self) -> &CredentialHash {
        match self {
            Self::Basic(c) => c.hash(),
            Self::Bearer(b) => b.hash(),
        }
    }
}

/// The identity a caller stands for.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The namespace (what `_` resolves to; the activation's namespace).
    pub namespace: String,
    /// The subject that owns the namespace.
    pub subject: String,
    /// The namespace's limits document (`UserLimits` JSON), when the source has one.
    pub limits: Option<serde_json::Value>,
    /// The OpenWhisk key that acts for this caller: the caller's own, or for a token
    /// holder the namespace's service key (if any). Presented to the controller on the
    /// caller's behalf and given to actions that ask for their API key.
    pub key: Option<Credentials>,
}

/// Hashes `parts` into a cache key.
pub(crate) fn cache_key(parts: &[&[u8]]) -> CredentialHash {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update((p.len() as u64).to_le_bytes());
        hasher.update(p);
    }
    hasher.finalize().into()
}

/// Compares two secrets in constant time (for equal lengths).
pub(crate) fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn parses_basic_credentials() {
        let c = Credentials::from_headers(&headers(&basic(GUEST))).unwrap();
        assert_eq!(c.uuid, "23bc46b1-71f6-4ed5-8c54-816aa4f8c502");
        assert_eq!(c.api_key(), GUEST);
        assert!(!format!("{c:?}").contains("123zO3"));
        let lower = Credentials::from_headers(&headers(&basic(GUEST).replace("Basic", "basic")));
        assert!(lower.is_ok());
    }

    #[test]
    fn missing_versus_invalid() {
        let missing = |h: &HeaderMap| {
            Credentials::from_headers(h).unwrap_err().message
                == crate::whisk::messages::AUTH_REQUIRED
        };
        assert!(missing(&HeaderMap::new()));
        assert!(missing(&headers("Bearer abc")));
        assert!(missing(&headers("Digest x")));
        assert!(missing(&headers("Basic")));
        assert!(missing(&headers("Basic ====")));
        assert!(missing(&headers("Basic !!!not base64!!!")));
        let invalid = |v: &str| {
            Credentials::from_headers(&headers(v)).unwrap_err().message
                == crate::whisk::messages::AUTH_INVALID
        };
        assert!(invalid(&basic("uuid:short")));
        assert!(invalid(&basic("no-colon-at-all")));
        assert!(invalid("Basic abc-def"));
        assert!(invalid(&basic(&format!("u:{}", "k".repeat(65)))));
    }

    #[test]
    fn hashes_differ_per_key() {
        let a = Credentials::from_headers(&headers(&basic(GUEST))).unwrap();
        let other = GUEST.replace("123zO3", "999zO3");
        let b = Credentials::from_headers(&headers(&basic(&other))).unwrap();
        assert_ne!(a.hash(), b.hash());
    }
}
