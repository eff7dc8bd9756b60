//! Who may invoke what: identities and action metadata from the configured sources,
//! cached.
//!
//! Identity sources (`[auth] source`): the controller (asked with the caller's own
//! credentials), OpenWhisk's subjects database in CouchDB (the `identities` view, as
//! the controller reads it), or a static identities file. Bearer tokens (`[auth.jwt]`)
//! are validated locally and act as their namespace's identity.
//!
//! Metadata sources (`[metadata] source`): the controller (which then also decides
//! entitlement), OpenWhisk's whisks database, or static documents in the policy — for
//! the last two owl decides entitlement itself, exactly as OpenWhisk does
//! ([`crate::auth::entitlement`]). With a CouchDB or file source for both, the Lambda
//! path needs no controller round trip at all.

pub mod cache;
pub(crate) mod sources;

use crate::auth::jwt::JwtValidator;
use crate::auth::{Caller, Credentials, Identity, cache_key};
use crate::controller::ControllerClient;
use crate::error::WhiskError;
use crate::policy::Policy;
use crate::telemetry::Metrics;
use crate::whisk::{ActionMetadata, ActionPath, TransactionId};
use cache::SwrCache;
use sources::{IdentityStore, MetadataStore};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

/// Identities and action metadata, cached.
pub struct Directory {
    identities: IdentityStore,
    metadata: MetadataStore,
    jwt: Option<Arc<JwtValidator>>,
    service_keys: HashMap<String, Credentials>,
    /// `[web] service_keys_file`: keys to learn web-action owners from the controller.
    web_keys: HashMap<String, Credentials>,
    exchange_on_proxy: bool,
    identity_cache: SwrCache<Identity>,
    action_cache: SwrCache<ActionMetadata>,
}

impl Directory {
    /// Builds the sources `policy` names (reads identities and service-keys files).
    pub fn new(
        policy: &Policy,
        controller: ControllerClient,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let m = &policy.metadata;
        let jwt = match &policy.auth.jwt {
            Some(cfg) => Some(Arc::new(JwtValidator::new(cfg)?)),
            None => None,
        };
        let service_keys = match policy
            .auth
            .jwt
            .as_ref()
            .and_then(|j| j.service_keys_file.as_ref())
        {
            Some(path) => sources::read_service_keys(path)?,
            None => HashMap::new(),
        };
        let web_keys = match &policy.web.service_keys_file {
            Some(path) => sources::read_service_keys(path)?,
            None => HashMap::new(),
        };
        Ok(Self {
            web_keys,
            identities: IdentityStore::new(policy, controller.clone())?,
            metadata: MetadataStore::new(policy, controller)?,
            jwt,
            service_keys,
            exchange_on_proxy: policy
                .auth
                .jwt
                .as_ref()
                .is_some_and(|j| j.exchange_on_proxy),
            identity_cache: SwrCache::new(
                "identity",
                m.max_entries,
                m.ttl,
                m.negative_ttl,
                m.stale_if_error,
                metrics.clone(),
            ),
            action_cache: SwrCache::new(
                "action",
                m.max_entries,
                m.ttl,
                m.negative_ttl,
                m.stale_if_error,
                metrics,
            ),
        })
    }

    /// True when valid bearer tokens are exchanged for service keys on proxied requests.
    pub(crate) fn exchanges_tokens(&self) -> bool {
        self.exchange_on_proxy
    }

    /// True when bearer tokens are accepted.
    pub(crate) fn bearer_enabled(&self) -> bool {
        self.jwt.is_some()
    }

    /// The identity behind `caller`.
    pub(crate) async fn identify(
        &self,
        caller: &Caller,
        tid: &TransactionId,
    ) -> Result<Arc<Identity>, WhiskError> {
        match caller {
            Caller::Basic(creds) => {
                let load = self.identities.identify(creds, tid);
                self.identity_cache.get(*creds.hash(), None, load).await
            }
            Caller::Bearer(token) => {
                let Some(jwt) = &self.jwt else {
                    return Err(WhiskError::auth_required());
                };
                // Validated locally; cached no longer than the token lives.
                let claims = jwt.validate(token.token()).await;
                let remaining = match &claims {
                    Ok(c) => c
                        .expires_at
                        .and_then(|e| e.duration_since(SystemTime::now()).ok()),
                    Err(_) => None,
                };
                let load = async {
                    match claims {
                        Err(e) => {
                            tracing::debug!(%tid, reason = e.kind(), "bearer token rejected");
                            Ok(Err(WhiskError::auth_invalid()))
                        }
                        Ok(c) => {
                            let (key, limits) = match self.service_keys.get(&c.namespace) {
                                Some(k) => (Some(k.clone()), None),
                                None => self.identities.namespace_key(&c.namespace, tid).await?,
                            };
                            Ok(Ok(Identity {
                                namespace: c.namespace,
                                subject: c.subject,
                                limits,
                                key,
                            }))
                        }
                    }
                };
                self.identity_cache
                    .get(*token.hash(), remaining, load)
                    .await
            }
        }
    }

    /// The owner of `namespace`, as the controller's web route finds it without the
    /// caller's credentials: from the subjects database or the identities file, or —
    /// with the controller as identity source — through the controller with the
    /// namespace's service key. `Ok(None)`: owl has no way to learn it (the
    /// controller must serve the request); a 404 error: no such namespace.
    pub(crate) async fn owner(
        &self,
        namespace: &str,
        tid: &TransactionId,
    ) -> Result<Option<Arc<Identity>>, WhiskError> {
        if matches!(self.identities, IdentityStore::Controller { .. }) {
            let Some(key) = self
                .web_keys
                .get(namespace)
                .or_else(|| self.service_keys.get(namespace))
            else {
                return Ok(None);
            };
            return self
                .identify(&Caller::Basic(key.clone()), tid)
                .await
                .map(Some);
        }
        let key = cache_key(&[b"web-owner", namespace.as_bytes()]);
        let load = async {
            self.identities
                .owner(namespace)
                .await
                .unwrap_or_else(|| Ok(Err(WhiskError::not_found())))
        };
        self.identity_cache.get(key, None, load).await.map(Some)
    }

    /// The metadata of the action at `path` (namespace resolved) as `identity` may see
    /// it, with entitlement decided (by the controller or by owl).
    pub async fn action(
        &self,
        identity: &Identity,
        path: &ActionPath,
        tid: &TransactionId,
    ) -> Result<Arc<ActionMetadata>, WhiskError> {
        let path_key = path.to_path_string();
        let key = match &self.metadata {
            // The controller answers per credentials.
            MetadataStore::Controller { .. } => match &identity.key {
                Some(k) => cache_key(&[k.hash(), path_key.as_bytes()]),
                None => {
                    tracing::error!(%tid, namespace = %identity.namespace, "no OpenWhisk key for this namespace to ask the controller with; configure [auth.jwt] service_keys_file or an identity store");
                    return Err(WhiskError::internal());
                }
            },
            // Entitlement depends only on the caller's namespace.
            _ => cache_key(&[identity.namespace.as_bytes(), path_key.as_bytes()]),
        };
        let load = self.metadata.action(identity, path, tid);
        self.action_cache.get(key, None, load).await
    }

    /// May `identity` read the package `path` is in (`Err`: OpenWhisk's refusal, or the
    /// source's failure). Not cached: asked only on the rare path where a sequence's
    /// direct component was not found.
    pub(crate) async fn package(
        &self,
        identity: &Identity,
        path: &ActionPath,
        tid: &TransactionId,
    ) -> Result<(), WhiskError> {
        let Some(package) = &path.package else {
            return Ok(());
        };
        self.metadata
            .package(identity, &path.namespace, package, tid)
            .await
            .and_then(|r| r)
    }

    /// For `exchange_on_proxy`: the `Authorization` to send to the controller instead
    /// of a valid bearer token (the namespace's service key).
    pub(crate) async fn proxy_authorization(
        &self,
        caller: &Caller,
        tid: &TransactionId,
    ) -> Option<http::HeaderValue> {
        if !self.exchange_on_proxy || !matches!(caller, Caller::Bearer(_)) {
            return None;
        }
        let identity = self.identify(caller, tid).await.ok()?;
        identity.key.as_ref().map(|k| k.authorization().clone())
    }
}
