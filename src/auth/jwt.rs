//! Bearer tokens (JWT) accepted in place of OpenWhisk keys: signature, algorithm and
//! claim checks, and the verification keys (a PEM public key, an HMAC secret, or a
//! JWKS document fetched and refreshed over HTTP(S)).
//!
//! A token is checked in this order: its shape and header (`alg` must be one of the
//! configured algorithms, never `none`), its key (by `kid` for JWKS), its signature,
//! then its claims (`exp`, `nbf`, `iss`, `aud`, the namespace and subject claims).
//! `jsonwebtoken` checks only the algorithm and the signature; the claims are checked
//! here, after the signature, so that each failure maps to one [`JwtError`] and `iss`
//! must be a single string (the library also accepts an array).
//!
//! Error messages never contain the token or key material.

use crate::policy::{JwtConfig, JwtKeySource};
use arc_swap::ArcSwapOption;
use base64::Engine;
use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest token accepted (the compact form), in bytes.
const MAX_TOKEN_LENGTH: usize = 64 * 1024;
/// How long one JWKS fetch (connect, headers and body) may take.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted, in bytes.
const JWKS_MAX_BODY: usize = 1024 * 1024;

/// The identity a valid token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// The OpenWhisk namespace (from the configured namespace claim).
    pub namespace: String,
    /// The subject (from the configured subject claim, else the namespace).
    pub subject: String,
    /// When the token expires (its `exp`).
    pub(crate) expires_at: Option<SystemTime>,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a compact JWT, or a part of it cannot be decoded, or a required time claim
    /// is missing or not a number.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not one of the configured algorithms (this includes
    /// `none`, unknown names, and algorithms of another family).
    #[error("token algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// No verification key matches the token's `kid` (or, without a `kid`, there is
    /// not exactly one key for its algorithm).
    #[error("token key id is unknown")]
    UnknownKeyId,
    /// The signature does not verify with the key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iss` is missing or not one of the accepted issuers.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// `aud` is missing or names none of the accepted audiences.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The namespace claim is missing.
    #[error("token has no namespace claim")]
    MissingNamespace,
    /// The namespace claim is not a string naming a valid OpenWhisk namespace.
    #[error("token namespace claim is not a valid namespace")]
    InvalidNamespace,
    /// The configured subject claim is missing or not a non-empty string.
    #[error("token subject claim is missing or not a string")]
    InvalidSubject,
    /// The verification keys could not be fetched (JWKS).
    #[error("token verification keys are unavailable")]
    KeysUnavailable,
}

impl JwtError {
    /// A short label for metrics and logs, e.g. `"expired"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::UnknownKeyId => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingNamespace => "missing_namespace",
            Self::InvalidNamespace => "invalid_namespace",
            Self::InvalidSubject => "invalid_subject",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// Validates bearer tokens against one `[auth.jwt]` configuration.
///
/// Cheap to share behind an `Arc`; all state (the JWKS cache) is internal.
pub struct JwtValidator {
    /// One `jsonwebtoken` validation per accepted algorithm; it checks only the
    /// algorithm and the signature (claims are checked here).
    validations: Vec<(Algorithm, Validation)>,
    keys: Keys,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: u64,
    namespace_claim: String,
    subject_claim: Option<String>,
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithms: Vec<Algorithm> = self.validations.iter().map(|(a, _)| *a).collect();
        let keys = match &self.keys {
            Keys::Static(_) => "static",
            Keys::Jwks(_) => "jwks",
        };
        f.debug_struct("JwtValidator")
            .field("algorithms", &algorithms)
            .field("keys", &keys)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

enum Keys {
    /// A PEM public key or an HMAC secret.
    Static(DecodingKey),
    /// Keys from a JWKS document.
    Jwks(Box<Jwks>),
}

impl JwtValidator {
    /// Builds from config; reads PEM / secret files now (errors name the file); for
    /// JWKS it does NOT fetch at construction (the first token does).
    pub fn new(cfg: &JwtConfig) -> anyhow::Result<Self> {
        let Some(first) = cfg.algorithms.first() else {
            anyhow::bail!("[auth.jwt]: `algorithms` must name at least one algorithm");
        };
        let family = first.family();
        if cfg.algorithms.iter().any(|a| a.family() != family) {
            anyhow::bail!(
                "[auth.jwt]: `algorithms` must all be of one family (all HS, all RS/PS, all ES, or EdDSA)"
            );
        }
        if cfg.issuers.is_empty() {
            anyhow::bail!("[auth.jwt]: `issuer` must name at least one issuer");
        }
        if cfg.audiences.is_empty() {
            anyhow::bail!("[auth.jwt]: `audience` must name at least one audience");
        }
        if cfg.namespace_claim.is_empty() {
            anyhow::bail!("[auth.jwt]: `namespace_claim` must not be empty");
        }
        let hmac = family == AlgorithmFamily::Hmac;
        let keys = match &cfg.keys {
            JwtKeySource::SecretFile(path) => {
                if !hmac {
                    anyhow::bail!(
                        "[auth.jwt]: `secret_file` needs HS* algorithms (keeping symmetric and asymmetric keys apart)"
                    );
                }
                let mut secret = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("cannot read secret_file {}: {e}", path.display())
                })?;
                while secret.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                    secret.pop();
                }
                if secret.is_empty() {
                    anyhow::bail!("secret_file {} is empty", path.display());
                }
                if secret.len() < 32 {
                    tracing::warn!(
                        file = %path.display(),
                        "JWT secret_file holds fewer than 32 bytes; HMAC secrets should be longer"
                    );
                }
                Keys::Static(DecodingKey::from_secret(&secret))
            }
            JwtKeySource::PublicKeyFile(path) => {
                if hmac {
                    anyhow::bail!(
                        "[auth.jwt]: HS* algorithms need `secret_file`, not `public_key_file` (keeping symmetric and asymmetric keys apart)"
                    );
                }
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("cannot read public_key_file {}: {e}", path.display())
                })?;
                let (key, what) = match family {
                    AlgorithmFamily::Rsa => (DecodingKey::from_rsa_pem(&pem), "an RSA"),
                    AlgorithmFamily::Ec => (DecodingKey::from_ec_pem(&pem), "an EC"),
                    AlgorithmFamily::Ed | AlgorithmFamily::Hmac => {
                        (DecodingKey::from_ed_pem(&pem), "an Ed25519")
                    }
                };
                let key = key.map_err(|e| {
                    anyhow::anyhow!(
                        "public_key_file {} is not {what} public key in PEM format ({e})",
                        path.display()
                    )
                })?;
                Keys::Static(key)
            }
            JwtKeySource::Jwks(url) => {
                if hmac {
                    anyhow::bail!(
                        "[auth.jwt]: HS* algorithms need `secret_file`, not `jwks_url` (keeping symmetric and asymmetric keys apart)"
                    );
                }
                Keys::Jwks(Box::new(Jwks::new(
                    url,
                    family,
                    cfg.jwks_ttl,
                    cfg.jwks_min_refresh,
                )?))
            }
        };
        let validations = cfg
            .algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                v.required_spec_claims.clear();
                v.validate_exp = false;
                v.validate_nbf = false;
                v.validate_aud = false;
                v.leeway = 0;
                (alg, v)
            })
            .collect();
        Ok(Self {
            validations,
            keys,
            issuers: cfg.issuers.clone(),
            audiences: cfg.audiences.clone(),
            leeway: cfg.leeway.as_secs(),
            namespace_claim: cfg.namespace_claim.clone(),
            subject_claim: cfg.subject_claim.clone(),
        })
    }

    /// Validates a compact JWT (the text after `Bearer `). Returns the identity the
    /// token acts as.
    pub async fn validate(&self, token: &str) -> Result<TokenIdentity, JwtError> {
        let token = token.trim();
        let head = parse_header(token)?;
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == head.alg)
            .map(|(_, v)| v)
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        let claims = match &self.keys {
            Keys::Static(key) => verify(token, key, head.alg, validation)?,
            Keys::Jwks(jwks) => {
                let key = jwks.key_for(head.kid.as_deref(), head.alg).await?;
                verify(token, &key.key, head.alg, validation)?
            }
        };
        self.check_claims(&claims, now_secs())
    }

    /// Checks the (already authenticated) claims at time `now` (seconds since the epoch).
    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<TokenIdentity, JwtError> {
        let exp = match claims.get("exp") {
            None | Some(Value::Null) => return Err(JwtError::Malformed("token has no exp claim")),
            Some(v) => numeric_date(v).ok_or(JwtError::Malformed("exp claim is not a number"))?,
        };
        if exp.saturating_add(self.leeway) < now {
            return Err(JwtError::Expired);
        }
        match claims.get("nbf") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let nbf =
                    numeric_date(v).ok_or(JwtError::Malformed("nbf claim is not a number"))?;
                if nbf > now.saturating_add(self.leeway) {
                    return Err(JwtError::NotYetValid);
                }
            }
        }
        match claims.get("iss") {
            Some(Value::String(iss)) if self.issuers.iter().any(|i| i == iss) => {}
            _ => return Err(JwtError::WrongIssuer),
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audiences.iter().any(|a| a == aud),
            Some(Value::Array(auds)) => auds.iter().any(|aud| {
                aud.as_str()
                    .is_some_and(|aud| self.audiences.iter().any(|a| a == aud))
            }),
            _ => false,
        };
        if !audience_ok {
            return Err(JwtError::WrongAudience);
        }
        let namespace = match claims.get(&self.namespace_claim) {
            None | Some(Value::Null) => return Err(JwtError::MissingNamespace),
            Some(Value::String(ns)) if crate::whisk::names::validate_segment(ns).is_ok() => {
                ns.clone()
            }
            Some(_) => return Err(JwtError::InvalidNamespace),
        };
        let subject = match &self.subject_claim {
            None => namespace.clone(),
            Some(name) => match claims.get(name) {
                Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
                _ => return Err(JwtError::InvalidSubject),
            },
        };
        Ok(TokenIdentity {
            namespace,
            subject,
            expires_at: UNIX_EPOCH.checked_add(Duration::from_secs(exp)),
        })
    }
}

/// What the validator needs from a token's header.
#[derive(Debug)]
struct TokenHead {
    alg: Algorithm,
    kid: Option<String>,
}

/// Reads the header of a compact JWS without trusting it: the shape, `alg` (names
/// `jsonwebtoken` does not know, such as `none`, are an algorithm error) and `kid`.
fn parse_header(token: &str) -> Result<TokenHead, JwtError> {
    if token.is_empty() {
        return Err(JwtError::Malformed("empty token"));
    }
    if token.len() > MAX_TOKEN_LENGTH {
        return Err(JwtError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not a compact JWT"));
    };
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed("header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|_| JwtError::Malformed("header is not a JSON object"))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg
            .parse::<Algorithm>()
            .map_err(|_| JwtError::AlgorithmNotAllowed)?,
        Some(_) => return Err(JwtError::Malformed("header alg is not a string")),
        None => return Err(JwtError::Malformed("header has no alg")),
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(JwtError::Malformed("header kid is not a string")),
    };
    if header.contains_key("crit") {
        return Err(JwtError::Malformed(
            "header has unsupported critical extensions",
        ));
    }
    Ok(TokenHead { alg, kid })
}

/// Verifies the algorithm and signature, and decodes the claims.
fn verify(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    validation: &Validation,
) -> Result<Map<String, Value>, JwtError> {
    if key.family() != alg.family() {
        return Err(JwtError::AlgorithmNotAllowed);
    }
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => JwtError::BadSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm => JwtError::AlgorithmNotAllowed,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
            ErrorKind::InvalidAudience => JwtError::WrongAudience,
            ErrorKind::Base64(_) => JwtError::Malformed("a token part is not base64url"),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                JwtError::Malformed("a token part is not valid JSON")
            }
            _ => JwtError::Malformed("token could not be decoded"),
        }),
    }
}

/// A JWT NumericDate as whole seconds (negative values count as 0, fractions are
/// dropped, huge values saturate).
fn numeric_date(v: &Value) -> Option<u64> {
    let n = v.as_number()?;
    if let Some(u) = n.as_u64() {
        return Some(u);
    }
    if n.as_i64().is_some() {
        return Some(0);
    }
    let f = n.as_f64()?;
    if !f.is_finite() {
        return None;
    }
    // `as` saturates for out-of-range floats.
    Some(if f <= 0.0 { 0 } else { f as u64 })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One usable verification key from a JWKS document.
struct JwksKey {
    /// `alg` the document pins the key to, if any.
    alg: Option<Algorithm>,
    /// Curve of an EC / OKP key.
    curve: Option<EllipticCurve>,
    key: DecodingKey,
}

impl JwksKey {
    fn usable_for(&self, alg: Algorithm) -> bool {
        if self.key.family() != alg.family() || self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match alg {
            Algorithm::ES256 => self.curve == Some(EllipticCurve::P256),
            Algorithm::ES384 => self.curve == Some(EllipticCurve::P384),
            Algorithm::EdDSA => self.curve == Some(EllipticCurve::Ed25519),
            _ => true,
        }
    }
}

/// The keys of one fetched JWKS document.
struct JwksSet {
    fetched_at: Instant,
    by_kid: HashMap<String, Vec<Arc<JwksKey>>>,
    all: Vec<Arc<JwksKey>>,
}

/// What a key lookup found.
enum Lookup {
    Found(Arc<JwksKey>),
    /// No key for this `kid` (or, without `kid`, none for the algorithm).
    Missing,
    /// No `kid`, and more than one key fits the algorithm.
    Ambiguous,
}

impl JwksSet {
    fn from_jwks(jwks: Vec<Jwk>, family: AlgorithmFamily, fetched_at: Instant) -> Self {
        let mut by_kid: HashMap<String, Vec<Arc<JwksKey>>> = HashMap::new();
        let mut all = Vec::new();
        for jwk in jwks {
            let Some(key) = usable_key(&jwk, family) else {
                continue;
            };
            let key = Arc::new(key);
            if let Some(kid) = &jwk.common.key_id {
                by_kid.entry(kid.clone()).or_default().push(key.clone());
            }
            all.push(key);
        }
        Self {
            fetched_at,
            by_kid,
            all,
        }
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        match kid {
            Some(kid) => self
                .by_kid
                .get(kid)
                .and_then(|keys| keys.iter().find(|k| k.usable_for(alg)))
                .map_or(Lookup::Missing, |k| Lookup::Found(k.clone())),
            None => {
                let mut usable = self.all.iter().filter(|k| k.usable_for(alg));
                match (usable.next(), usable.next()) {
                    (Some(k), None) => Lookup::Found(k.clone()),
                    (None, _) => Lookup::Missing,
                    (Some(_), Some(_)) => Lookup::Ambiguous,
                }
            }
        }
    }
}

/// The verification key for `jwk`, if it is a signing key of `family`.
fn usable_key(jwk: &Jwk, family: AlgorithmFamily) -> Option<JwksKey> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(ka) => Some(Algorithm::try_from(ka).ok()?),
    };
    let curve = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => Some(p.curve.clone()),
        AlgorithmParameters::OctetKeyPair(p) => Some(p.curve.clone()),
        AlgorithmParameters::RSA(_) => None,
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    if key.family() != family || alg.is_some_and(|a| a.family() != family) {
        return None;
    }
    Some(JwksKey { alg, curve, key })
}

/// How long past `jwks_ttl` cached keys keep validating tokens while the JWKS
/// endpoint cannot be reached.
const JWKS_STALE_LIMIT: Duration = Duration::from_secs(3600);

/// A JWKS document fetched on demand and cached by `kid`.
struct Jwks {
    url: String,
    uri: Uri,
    family: AlgorithmFamily,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    ttl: Duration,
    min_refresh: Duration,
    current: ArcSwapOption<JwksSet>,
    /// Held while fetching, so concurrent callers never fetch in parallel; holds when
    /// the last fetch was attempted (successful or not), for the rate limit.
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    fn new(
        url: &str,
        family: AlgorithmFamily,
        ttl: Duration,
        min_refresh: Duration,
    ) -> anyhow::Result<Self> {
        let uri: Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("[auth.jwt]: `jwks_url` \"{url}\" is not a URL: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            anyhow::bail!("[auth.jwt]: `jwks_url` \"{url}\" is not an http(s) URL");
        }
        let tls = crate::net::tls::native_roots_client_config()?;
        let https = crate::net::tls::connector(tls, JWKS_FETCH_TIMEOUT, None);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(https);
        Ok(Self {
            url: url.to_string(),
            uri,
            family,
            client,
            ttl,
            min_refresh,
            current: ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(None),
        })
    }

    fn is_fresh(&self, set: &JwksSet, now: Instant) -> bool {
        now.saturating_duration_since(set.fetched_at) < self.ttl
    }

    /// The key for a token with `kid` and `alg`, fetching the document when the
    /// cached one is older than the TTL or does not know `kid` (rate limited).
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<JwksKey>, JwtError> {
        if let Some(set) = self.current.load_full()
            && self.is_fresh(&set, Instant::now())
        {
            match set.find(kid, alg) {
                Lookup::Found(k) => return Ok(k),
                Lookup::Ambiguous => return Err(JwtError::UnknownKeyId),
                Lookup::Missing => {}
            }
        }
        let mut last_attempt = self.refresh.lock().await;
        // Another caller may have fetched while this one waited.
        let cached = self.current.load_full();
        let now = Instant::now();
        if let Some(set) = &cached
            && self.is_fresh(set, now)
        {
            match set.find(kid, alg) {
                Lookup::Found(k) => return Ok(k),
                Lookup::Ambiguous => return Err(JwtError::UnknownKeyId),
                Lookup::Missing => {}
            }
        }
        // Without a fresh answer, fall back to the cached keys — stale ones only for a
        // bounded time, so a key removed during an outage does not stay valid forever.
        let from_cache = |missing: JwtError| match &cached {
            Some(set)
                if now.saturating_duration_since(set.fetched_at) >= self.ttl + JWKS_STALE_LIMIT =>
            {
                Err(JwtError::KeysUnavailable)
            }
            Some(set) => match set.find(kid, alg) {
                Lookup::Found(k) => Ok(k),
                Lookup::Missing | Lookup::Ambiguous => Err(missing),
            },
            None => Err(JwtError::KeysUnavailable),
        };
        if last_attempt.is_some_and(|t| now.saturating_duration_since(t) < self.min_refresh) {
            return from_cache(JwtError::UnknownKeyId);
        }
        *last_attempt = Some(now);
        match self.fetch().await {
            Ok(jwks) => {
                let set = Arc::new(JwksSet::from_jwks(jwks, self.family, Instant::now()));
                if set.all.is_empty() {
                    tracing::warn!(url = %self.url, "JWKS document holds no usable signing key");
                }
                self.current.store(Some(set.clone()));
                match set.find(kid, alg) {
                    Lookup::Found(k) => Ok(k),
                    Lookup::Missing | Lookup::Ambiguous => Err(JwtError::UnknownKeyId),
                }
            }
            Err(reason) => {
                tracing::warn!(url = %self.url, error = %reason, "JWKS fetch failed");
                from_cache(JwtError::KeysUnavailable)
            }
        }
    }

    /// Fetches and parses the document (keys that cannot be read are skipped).
    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        let req = Request::get(self.uri.clone())
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .header(
                header::USER_AGENT,
                concat!("owl/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| describe(&e))?;
            if !resp.status().is_success() {
                return Err(format!("answered with HTTP status {}", resp.status()));
            }
            let body = Limited::new(resp.into_body(), JWKS_MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        format!("document is larger than {JWKS_MAX_BODY} bytes")
                    } else {
                        format!("reading the document failed: {}", describe(&*e))
                    }
                })?;
            Ok::<_, String>(body.to_bytes())
        };
        let body = tokio::time::timeout(JWKS_FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no complete answer within {JWKS_FETCH_TIMEOUT:?}"))??;
        parse_jwks(&body)
    }
}

/// Parses a JWKS document; when the whole set does not parse, keys are read one by
/// one and those that do not parse are skipped.
fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, String> {
    if let Ok(set) = serde_json::from_slice::<JwkSet>(body) {
        return Ok(set.keys);
    }
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<Value>,
    }
    let raw: RawSet =
        serde_json::from_slice(body).map_err(|e| format!("document is not a JWK set: {e}"))?;
    Ok(raw
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
        .collect())
}

fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use http::StatusCode;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const ISSUER: &str = "https://issuer.example";
    const AUDIENCE: &str = "owl";

    fn config(keys: JwtKeySource, algorithms: Vec<Algorithm>) -> JwtConfig {
        JwtConfig {
            issuers: vec!["https://other.example".into(), ISSUER.into()],
            audiences: vec![AUDIENCE.into()],
            algorithms,
            keys,
            leeway: Duration::from_secs(5),
            namespace_claim: "namespace".into(),
            subject_claim: None,
            jwks_ttl: Duration::from_secs(600),
            jwks_min_refresh: Duration::from_secs(30),
            service_keys_file: None,
            exchange_on_proxy: false,
        }
    }

    /// An EC P-256 key pair: the signing key and the public key in PEM.
    struct EcKey {
        encoding: EncodingKey,
        public_pem: String,
    }

    fn ec_key() -> EcKey {
        let kp = rcgen::KeyPair::generate().expect("generate P-256 key");
        EcKey {
            encoding: EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes())
                .expect("EC encoding key"),
            public_pem: kp.public_key_pem(),
        }
    }

    fn temp_file(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(content).expect("write temp file");
        f
    }

    fn pem_validator(key: &EcKey) -> (JwtValidator, tempfile::NamedTempFile) {
        let file = temp_file(key.public_pem.as_bytes());
        let cfg = config(
            JwtKeySource::PublicKeyFile(file.path().to_path_buf()),
            vec![Algorithm::ES256],
        );
        (JwtValidator::new(&cfg).expect("validator"), file)
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": now_secs() + 300,
            "namespace": "guest",
            "sub": "alice@example.com",
        })
    }

    fn mint(claims: &Value, key: &EncodingKey, alg: Algorithm, kid: Option<&str>) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        encode(&header, claims, key).expect("encode token")
    }

    fn es256(claims: &Value, key: &EcKey) -> String {
        mint(claims, &key.encoding, Algorithm::ES256, None)
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn validator_is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<JwtValidator>();
        check::<JwtError>();
    }

    #[tokio::test]
    async fn valid_token_yields_identity() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let c = claims();
        let id = v.validate(&es256(&c, &key)).await.expect("valid");
        assert_eq!(id.namespace, "guest");
        assert_eq!(id.subject, "guest");
        let exp = c["exp"].as_u64().expect("exp");
        assert_eq!(id.expires_at, Some(UNIX_EPOCH + Duration::from_secs(exp)));
    }

    #[tokio::test]
    async fn subject_claim_and_audience_list() {
        let key = ec_key();
        let file = temp_file(key.public_pem.as_bytes());
        let mut cfg = config(
            JwtKeySource::PublicKeyFile(file.path().to_path_buf()),
            vec![Algorithm::ES256],
        );
        cfg.subject_claim = Some("sub".into());
        let v = JwtValidator::new(&cfg).expect("validator");
        let mut c = claims();
        c["aud"] = json!(["someone-else", AUDIENCE]);
        let id = v.validate(&es256(&c, &key)).await.expect("valid");
        assert_eq!(id.subject, "alice@example.com");
        assert_eq!(id.namespace, "guest");

        c["sub"] = json!(42);
        let err = v.validate(&es256(&c, &key)).await.unwrap_err();
        assert_eq!(err, JwtError::InvalidSubject);
    }

    #[tokio::test]
    async fn expired_token_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let mut c = claims();
        c["exp"] = json!(now_secs() - 100);
        let err = v.validate(&es256(&c, &key)).await.unwrap_err();
        assert_eq!(err, JwtError::Expired);
        assert_eq!(err.kind(), "expired");

        // Within the leeway (5 s) it is still accepted.
        c["exp"] = json!(now_secs() - 2);
        assert!(v.validate(&es256(&c, &key)).await.is_ok());
    }

    #[tokio::test]
    async fn missing_exp_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let mut c = claims();
        c.as_object_mut().expect("object").remove("exp");
        let err = v.validate(&es256(&c, &key)).await.unwrap_err();
        assert!(matches!(err, JwtError::Malformed(_)), "{err:?}");
        c["exp"] = json!("tomorrow");
        let err = v.validate(&es256(&c, &key)).await.unwrap_err();
        assert!(matches!(err, JwtError::Malformed(_)), "{err:?}");
    }

    #[tokio::test]
    async fn not_yet_valid_token_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let mut c = claims();
        c["nbf"] = json!(now_secs() + 100);
        let err = v.validate(&es256(&c, &key)).await.unwrap_err();
        assert_eq!(err, JwtError::NotYetValid);

        c["nbf"] = json!(now_secs() + 2);
        assert!(v.validate(&es256(&c, &key)).await.is_ok());
    }

    #[tokio::test]
    async fn wrong_issuer_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let mut c = claims();
        c["iss"] = json!("https://evil.example");
        assert_eq!(
            v.validate(&es256(&c, &key)).await.unwrap_err(),
            JwtError::WrongIssuer
        );
        c["iss"] = json!([ISSUER]);
        assert_eq!(
            v.validate(&es256(&c, &key)).await.unwrap_err(),
            JwtError::WrongIssuer
        );
        c.as_object_mut().expect("object").remove("iss");
        assert_eq!(
            v.validate(&es256(&c, &key)).await.unwrap_err(),
            JwtError::WrongIssuer
        );
    }

    #[tokio::test]
    async fn wrong_audience_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let mut c = claims();
        c["aud"] = json!("not-owl");
        assert_eq!(
            v.validate(&es256(&c, &key)).await.unwrap_err(),
            JwtError::WrongAudience
        );
        c["aud"] = json!(["a", "b"]);
        assert_eq!(
            v.validate(&es256(&c, &key)).await.unwrap_err(),
            JwtError::WrongAudience
        );
        c.as_object_mut().expect("object").remove("aud");
        assert_eq!(
            v.validate(&es256(&c, &key)).await.unwrap_err(),
            JwtError::WrongAudience
        );
    }

    #[tokio::test]
    async fn bad_signature_is_rejected() {
        let key = ec_key();
        let other = ec_key();
        let (v, _f) = pem_validator(&key);
        let err = v.validate(&es256(&claims(), &other)).await.unwrap_err();
        assert_eq!(err, JwtError::BadSignature);

        // A payload swapped under a genuine signature.
        let genuine = es256(&claims(), &key);
        let mut forged_claims = claims();
        forged_claims["namespace"] = json!("admin");
        let forged = es256(&forged_claims, &other);
        let g: Vec<&str> = genuine.split('.').collect();
        let f: Vec<&str> = forged.split('.').collect();
        let spliced = format!("{}.{}.{}", g[0], f[1], g[2]);
        assert_eq!(
            v.validate(&spliced).await.unwrap_err(),
            JwtError::BadSignature
        );
    }

    #[tokio::test]
    async fn alg_none_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let payload = b64(claims().to_string().as_bytes());
        for header in ["eyJhbGciOiJub25lIn0".to_string(), b64(br#"{"alg":"None"}"#)] {
            let token = format!("{header}.{payload}.");
            let err = v.validate(&token).await.unwrap_err();
            assert_eq!(err, JwtError::AlgorithmNotAllowed, "{header}");
        }
        // An unknown algorithm name is an algorithm error too.
        let token = format!("{}.{payload}.c2ln", b64(br#"{"alg":"XS999"}"#));
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::AlgorithmNotAllowed
        );
    }

    #[tokio::test]
    async fn hs_token_against_asymmetric_key_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        // The classic confusion: the public key's PEM bytes used as an HMAC secret.
        let secret = EncodingKey::from_secret(key.public_pem.as_bytes());
        let token = mint(&claims(), &secret, Algorithm::HS256, None);
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::AlgorithmNotAllowed
        );
    }

    #[tokio::test]
    async fn algorithm_outside_the_list_is_rejected() {
        let key = ec_key();
        let file = temp_file(key.public_pem.as_bytes());
        let cfg = config(
            JwtKeySource::PublicKeyFile(file.path().to_path_buf()),
            vec![Algorithm::ES384],
        );
        let v = JwtValidator::new(&cfg).expect("validator");
        let err = v.validate(&es256(&claims(), &key)).await.unwrap_err();
        assert_eq!(err, JwtError::AlgorithmNotAllowed);
    }

    #[tokio::test]
    async fn missing_namespace_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let mut c = claims();
        c.as_object_mut().expect("object").remove("namespace");
        let err = v.validate(&es256(&c, &key)).await.unwrap_err();
        assert_eq!(err, JwtError::MissingNamespace);
        assert_eq!(err.kind(), "missing_namespace");
    }

    #[tokio::test]
    async fn invalid_namespace_is_rejected() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        for bad in [
            json!(""),
            json!("a/b"),
            json!(" lead"),
            json!(42),
            json!(["guest"]),
        ] {
            let mut c = claims();
            c["namespace"] = bad.clone();
            let err = v.validate(&es256(&c, &key)).await.unwrap_err();
            assert_eq!(err, JwtError::InvalidNamespace, "{bad}");
        }
    }

    #[tokio::test]
    async fn secret_file_hs256() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let mut content = secret.to_vec();
        content.extend_from_slice(b"\n");
        let file = temp_file(&content);
        let cfg = config(
            JwtKeySource::SecretFile(file.path().to_path_buf()),
            vec![Algorithm::HS256, Algorithm::HS512],
        );
        let v = JwtValidator::new(&cfg).expect("validator");
        let token = mint(
            &claims(),
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
            None,
        );
        let id = v.validate(&token).await.expect("valid");
        assert_eq!(id.namespace, "guest");
        let token = mint(
            &claims(),
            &EncodingKey::from_secret(secret),
            Algorithm::HS512,
            None,
        );
        assert!(v.validate(&token).await.is_ok());

        // The trailing newline is not part of the secret.
        let token = mint(
            &claims(),
            &EncodingKey::from_secret(&content),
            Algorithm::HS256,
            None,
        );
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::BadSignature
        );
        // HS384 is not in the list.
        let token = mint(
            &claims(),
            &EncodingKey::from_secret(secret),
            Algorithm::HS384,
            None,
        );
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::AlgorithmNotAllowed
        );
    }

    #[tokio::test]
    async fn ed25519_public_key_file() {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
        let enc = EncodingKey::from_ed_pem(kp.serialize_pem().as_bytes()).expect("Ed key");
        let file = temp_file(kp.public_key_pem().as_bytes());
        let cfg = config(
            JwtKeySource::PublicKeyFile(file.path().to_path_buf()),
            vec![Algorithm::EdDSA],
        );
        let v = JwtValidator::new(&cfg).expect("validator");
        let token = mint(&claims(), &enc, Algorithm::EdDSA, None);
        assert_eq!(v.validate(&token).await.expect("valid").namespace, "guest");
    }

    #[tokio::test]
    async fn malformed_tokens_never_panic() {
        let key = ec_key();
        let (v, _f) = pem_validator(&key);
        let good = es256(&claims(), &key);
        let parts: Vec<&str> = good.split('.').collect();
        let long = "a".repeat(MAX_TOKEN_LENGTH + 1);
        let cases = [
            String::new(),
            "abc".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            "...".into(),
            "!!!.###.$$$".into(),
            format!("{}.e30.", b64(b"not json")),
            format!("{}.e30.", b64(b"[1,2]")),
            format!("{}.e30.", b64(br#"{"alg":7}"#)),
            format!("{}.e30.", b64(br#"{"typ":"JWT"}"#)),
            format!("{}.e30.", b64(br#"{"alg":"ES256","kid":5}"#)),
            format!(
                "{}.{}.{}",
                b64(br#"{"alg":"ES256","crit":["x"]}"#),
                parts[1],
                parts[2]
            ),
            format!("{}.!!.{}", parts[0], parts[2]),
            format!("{}.{}.!!", parts[0], parts[1]),
            format!("{}.{}.", parts[0], b64(b"not json")),
            format!("{}.{}.{}", parts[0], b64(b"[]"), parts[2]),
            long,
        ];
        for token in &cases {
            let err = v.validate(token).await.unwrap_err();
            assert!(
                matches!(err, JwtError::Malformed(_) | JwtError::BadSignature),
                "{token:.40}: {err:?}"
            );
            assert!(!err.to_string().contains(&good));
        }
    }

    #[test]
    fn new_rejects_bad_configs() {
        let key = ec_key();
        let pem = temp_file(key.public_pem.as_bytes());
        let secret = temp_file(b"0123456789abcdef0123456789abcdef");
        let pem_path = pem.path().to_path_buf();
        let secret_path = secret.path().to_path_buf();
        let jwks = JwtKeySource::Jwks("https://issuer.example/jwks".into());

        let err = |cfg: JwtConfig| JwtValidator::new(&cfg).unwrap_err().to_string();

        let e = err(config(
            JwtKeySource::PublicKeyFile(pem_path.clone()),
            vec![Algorithm::ES256, Algorithm::RS256],
        ));
        assert!(e.contains("one family"), "{e}");
        let e = err(config(
            JwtKeySource::SecretFile(secret_path.clone()),
            vec![Algorithm::HS256, Algorithm::RS256],
        ));
        assert!(e.contains("one family"), "{e}");
        let e = err(config(
            JwtKeySource::SecretFile(secret_path.clone()),
            vec![Algorithm::ES256],
        ));
        assert!(e.contains("secret_file"), "{e}");
        let e = err(config(
            JwtKeySource::PublicKeyFile(pem_path.clone()),
            vec![Algorithm::HS256],
        ));
        assert!(e.contains("public_key_file"), "{e}");
        let e = err(config(jwks.clone(), vec![Algorithm::HS256]));
        assert!(e.contains("jwks_url"), "{e}");
        let e = err(config(
            JwtKeySource::PublicKeyFile(pem_path.clone()),
            vec![],
        ));
        assert!(e.contains("at least one"), "{e}");
        let e = err(config(
            JwtKeySource::Jwks("ftp://x/jwks".into()),
            vec![Algorithm::RS256],
        ));
        assert!(e.contains("http(s)"), "{e}");

        let missing = PathBuf::from("/nonexistent/owl-jwt-key.pem");
        let e = err(config(
            JwtKeySource::PublicKeyFile(missing.clone()),
            vec![Algorithm::ES256],
        ));
        assert!(e.contains("/nonexistent/owl-jwt-key.pem"), "{e}");
        let e = err(config(
            JwtKeySource::SecretFile(missing),
            vec![Algorithm::HS256],
        ));
        assert!(e.contains("/nonexistent/owl-jwt-key.pem"), "{e}");

        let not_pem = temp_file(b"hello");
        let e = err(config(
            JwtKeySource::PublicKeyFile(not_pem.path().to_path_buf()),
            vec![Algorithm::ES256],
        ));
        assert!(e.contains(&not_pem.path().display().to_string()), "{e}");
        let empty = temp_file(b"\n");
        let e = err(config(
            JwtKeySource::SecretFile(empty.path().to_path_buf()),
            vec![Algorithm::HS256],
        ));
        assert!(e.contains("empty"), "{e}");

        // An EC PEM where RSA is configured.
        let e = err(config(
            JwtKeySource::PublicKeyFile(pem_path),
            vec![Algorithm::RS256],
        ));
        assert!(e.contains("RSA"), "{e}");
    }

    #[test]
    fn error_kinds_are_distinct() {
        let all = [
            JwtError::Malformed("x"),
            JwtError::AlgorithmNotAllowed,
            JwtError::UnknownKeyId,
            JwtError::BadSignature,
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::WrongIssuer,
            JwtError::WrongAudience,
            JwtError::MissingNamespace,
            JwtError::InvalidNamespace,
            JwtError::InvalidSubject,
            JwtError::KeysUnavailable,
        ];
        let kinds: std::collections::HashSet<_> = all.iter().map(JwtError::kind).collect();
        assert_eq!(kinds.len(), all.len());
        assert!(all.iter().all(|e| !e.to_string().is_empty()));
    }

    /// A JWKS document served on 127.0.0.1 whose content the test swaps.
    struct JwksServer {
        url: String,
        doc: Arc<Mutex<(StatusCode, String)>>,
        fetches: Arc<AtomicUsize>,
    }

    impl JwksServer {
        async fn start(doc: String) -> Self {
            let state = Arc::new(Mutex::new((StatusCode::OK, doc)));
            let fetches = Arc::new(AtomicUsize::new(0));
            let (s, n) = (state.clone(), fetches.clone());
            let app = Router::new().route(
                "/jwks",
                get(move || {
                    let (s, n) = (s.clone(), n.clone());
                    async move {
                        n.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = s.lock().expect("lock").clone();
                        (status, [(header::CONTENT_TYPE, "application/json")], body)
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Self {
                url: format!("http://{addr}/jwks"),
                doc: state,
                fetches,
            }
        }

        fn set(&self, status: StatusCode, doc: String) {
            *self.doc.lock().expect("lock") = (status, doc);
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    fn jwk(key: &EcKey, kid: Option<&str>) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&key.encoding, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = kid.map(str::to_string);
        jwk
    }

    fn jwks_doc(keys: Vec<Jwk>) -> String {
        serde_json::to_string(&JwkSet { keys }).expect("jwks json")
    }

    fn jwks_validator(url: &str, ttl: Duration, min_refresh: Duration) -> JwtValidator {
        let mut cfg = config(JwtKeySource::Jwks(url.to_string()), vec![Algorithm::ES256]);
        cfg.jwks_ttl = ttl;
        cfg.jwks_min_refresh = min_refresh;
        JwtValidator::new(&cfg).expect("validator")
    }

    #[tokio::test]
    async fn jwks_rotation_and_rate_limit() {
        let (k1, k2, k3) = (ec_key(), ec_key(), ec_key());
        let server = JwksServer::start(jwks_doc(vec![jwk(&k1, Some("k1"))])).await;
        let min_refresh = Duration::from_millis(500);
        let v = jwks_validator(&server.url, Duration::from_secs(600), min_refresh);
        assert_eq!(server.fetches(), 0, "no fetch at construction");

        let t1 = mint(&claims(), &k1.encoding, Algorithm::ES256, Some("k1"));
        assert_eq!(v.validate(&t1).await.expect("k1 valid").namespace, "guest");
        assert_eq!(server.fetches(), 1);
        assert!(v.validate(&t1).await.is_ok());
        assert_eq!(server.fetches(), 1, "cached");

        // Rotate to k2 only; once the rate limit allows, an unknown kid refetches.
        server.set(StatusCode::OK, jwks_doc(vec![jwk(&k2, Some("k2"))]));
        tokio::time::sleep(min_refresh + Duration::from_millis(100)).await;
        let t2 = mint(&claims(), &k2.encoding, Algorithm::ES256, Some("k2"));
        assert_eq!(v.validate(&t2).await.expect("k2 valid").namespace, "guest");
        assert_eq!(server.fetches(), 2);

        // Another unknown kid within jwks_min_refresh: rejected without a fetch.
        let t3 = mint(&claims(), &k3.encoding, Algorithm::ES256, Some("k3"));
        assert_eq!(v.validate(&t3).await.unwrap_err(), JwtError::UnknownKeyId);
        // k1 was rotated out.
        assert_eq!(v.validate(&t1).await.unwrap_err(), JwtError::UnknownKeyId);
        assert_eq!(server.fetches(), 2);

        // A token signed by k3 but naming k2 does not verify.
        let forged = mint(&claims(), &k3.encoding, Algorithm::ES256, Some("k2"));
        assert_eq!(
            v.validate(&forged).await.unwrap_err(),
            JwtError::BadSignature
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn jwks_concurrent_callers_fetch_once() {
        let k1 = ec_key();
        let server = JwksServer::start(jwks_doc(vec![jwk(&k1, Some("k1"))])).await;
        let v = Arc::new(jwks_validator(
            &server.url,
            Duration::from_secs(600),
            Duration::from_secs(30),
        ));
        let token = mint(&claims(), &k1.encoding, Algorithm::ES256, Some("k1"));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (v, token) = (v.clone(), token.clone());
            tasks.push(tokio::spawn(async move { v.validate(&token).await }));
        }
        for t in tasks {
            assert!(t.await.expect("task").is_ok());
        }
        assert_eq!(server.fetches(), 1);
    }

    #[tokio::test]
    async fn jwks_refetches_after_ttl() {
        let k1 = ec_key();
        let server = JwksServer::start(jwks_doc(vec![jwk(&k1, Some("k1"))])).await;
        let v = jwks_validator(&server.url, Duration::from_millis(200), Duration::ZERO);
        let token = mint(&claims(), &k1.encoding, Algorithm::ES256, Some("k1"));
        assert!(v.validate(&token).await.is_ok());
        assert!(v.validate(&token).await.is_ok());
        assert_eq!(server.fetches(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(v.validate(&token).await.is_ok());
        assert_eq!(server.fetches(), 2);

        // When a refetch fails, the stale keys keep working.
        server.set(StatusCode::INTERNAL_SERVER_ERROR, String::new());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(v.validate(&token).await.is_ok());
        assert_eq!(server.fetches(), 3);
    }

    #[tokio::test]
    async fn jwks_tokens_without_kid() {
        let (k1, k2) = (ec_key(), ec_key());
        let server = JwksServer::start(jwks_doc(vec![jwk(&k1, Some("k1"))])).await;
        let v = jwks_validator(
            &server.url,
            Duration::from_secs(600),
            Duration::from_secs(30),
        );
        let token = mint(&claims(), &k1.encoding, Algorithm::ES256, None);
        assert!(v.validate(&token).await.is_ok(), "one key: accepted");

        let server =
            JwksServer::start(jwks_doc(vec![jwk(&k1, Some("k1")), jwk(&k2, Some("k2"))])).await;
        let v = jwks_validator(
            &server.url,
            Duration::from_secs(600),
            Duration::from_secs(30),
        );
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::UnknownKeyId
        );
    }

    #[tokio::test]
    async fn jwks_skips_unusable_keys() {
        let k1 = ec_key();
        let mut enc = jwk(&k1, Some("enc"));
        enc.common.public_key_use = Some(PublicKeyUse::Encryption);
        let doc = json!({"keys": [
            {"kty": "weird", "kid": "odd", "use": 7},
            serde_json::to_value(&enc).expect("jwk json"),
            serde_json::to_value(jwk(&k1, Some("k1"))).expect("jwk json"),
        ]});
        let server = JwksServer::start(doc.to_string()).await;
        let v = jwks_validator(&server.url, Duration::from_secs(600), Duration::ZERO);
        let ok = mint(&claims(), &k1.encoding, Algorithm::ES256, Some("k1"));
        assert!(v.validate(&ok).await.is_ok());
        let enc_token = mint(&claims(), &k1.encoding, Algorithm::ES256, Some("enc"));
        assert_eq!(
            v.validate(&enc_token).await.unwrap_err(),
            JwtError::UnknownKeyId
        );
    }

    #[tokio::test]
    async fn jwks_unavailable() {
        let k1 = ec_key();
        let token = mint(&claims(), &k1.encoding, Algorithm::ES256, Some("k1"));

        // Nothing listens on the port.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let v = jwks_validator(
            &format!("http://{addr}/jwks"),
            Duration::from_secs(600),
            Duration::from_secs(30),
        );
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::KeysUnavailable
        );

        // A server error, then a document over 1 MiB, then not JSON.
        let server = JwksServer::start(String::new()).await;
        server.set(StatusCode::INTERNAL_SERVER_ERROR, String::new());
        let v = jwks_validator(&server.url, Duration::from_secs(600), Duration::ZERO);
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::KeysUnavailable
        );
        let mut big = jwks_doc(vec![jwk(&k1, Some("k1"))]);
        big.push_str(&" ".repeat(JWKS_MAX_BODY));
        server.set(StatusCode::OK, big);
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::KeysUnavailable
        );
        server.set(StatusCode::OK, "<html>".into());
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            JwtError::KeysUnavailable
        );
        server.set(StatusCode::OK, jwks_doc(vec![jwk(&k1, Some("k1"))]));
        assert!(v.validate(&token).await.is_ok());
        assert_eq!(server.fetches(), 4);
    }
}
