//! Who may invoke what: identities and action metadata, looked up from the configured
//! source and cached.
//!
//! The `controller` source asks the controller with the caller's own credentials, so
//! the controller stays the authority on authentication and entitlement: a 401, 403 or
//! 404 comes back exactly as it came. Answers are cached per credential hash (positive
//! answers for `ttl`, rejections for `negative_ttl`, bounded size); lookups for the same
//! key are coalesced so a burst of new callers costs one controller request each.

use crate::auth::{CredentialHash, Credentials, Identity, cache_key};
use crate::controller::ControllerClient;
use crate::controller::api::{self, ApiFailure};
use crate::error::WhiskError;
use crate::policy::MetadataConfig;
use crate::whisk::{ActionMetadata, ActionPath, TransactionId};
use moka::Expiry;
use moka::future::Cache;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cached lookup: the answer, or the controller's rejection to replay.
type Cached<T> = Result<Arc<T>, WhiskError>;

struct TtlPolicy {
    ttl: Duration,
    negative_ttl: Duration,
}

impl<T> Expiry<CredentialHash, Cached<T>> for TtlPolicy {
    fn expire_after_create(
        &self,
        _key: &CredentialHash,
        value: &Cached<T>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.is_ok() {
            self.ttl
        } else {
            self.negative_ttl
        })
    }
}

fn cache<T: Send + Sync + 'static>(cfg: &MetadataConfig) -> Cache<CredentialHash, Cached<T>> {
    Cache::builder()
        .max_capacity(cfg.max_entries)
        .expire_after(TtlPolicy {
            ttl: cfg.ttl,
            negative_ttl: cfg.negative_ttl,
        })
        .build()
}

/// Identity and action metadata from the controller, cached.
pub struct ControllerDirectory {
    client: ControllerClient,
    timeout: Duration,
    identities: Cache<CredentialHash, Cached<Identity>>,
    actions: Cache<CredentialHash, Cached<ActionMetadata>>,
}

impl ControllerDirectory {
    /// A directory asking `client`, cached as `cfg` says.
    pub fn new(client: ControllerClient, cfg: &MetadataConfig) -> Self {
        Self {
            client,
            timeout: cfg.timeout,
            identities: cache(cfg),
            actions: cache(cfg),
        }
    }

    /// The identity behind `creds`.
    ///
    /// With the controller as the source, the subject is not visible through the API;
    /// owl reports the namespace as the subject (true for namespaces created with
    /// `wskadmin user create`, whose default namespace is named after the subject).
    pub async fn identify(
        &self,
        creds: &Credentials,
        tid: &TransactionId,
    ) -> Result<Arc<Identity>, WhiskError> {
        let key = *creds.hash();
        let lookup = async {
            match api::caller_namespace(&self.client, creds.authorization(), tid, self.timeout)
                .await
            {
                Ok(ns) => Ok(Ok(Arc::new(Identity {
                    subject: ns.clone(),
                    namespace: ns,
                }))),
                Err(ApiFailure::Rejected(e)) => Ok(Err(e)),
                Err(ApiFailure::Failed(e)) => Err(e),
            }
        };
        flatten(self.identities.try_get_with(key, lookup).await)
    }

    /// The metadata of the action at `path` (resolved namespace), as the caller may
    /// see it.
    pub async fn action(
        &self,
        creds: &Credentials,
        path: &ActionPath,
        tid: &TransactionId,
    ) -> Result<Arc<ActionMetadata>, WhiskError> {
        let key = cache_key(&[creds.hash(), path.to_path_string().as_bytes()]);
        let lookup = async {
            match api::action_metadata(&self.client, creds.authorization(), path, tid, self.timeout)
                .await
            {
                Ok(m) => Ok(Ok(Arc::new(m))),
                Err(ApiFailure::Rejected(e)) => Ok(Err(e)),
                Err(ApiFailure::Failed(e)) => Err(e),
            }
        };
        flatten(self.actions.try_get_with(key, lookup).await)
    }
}

fn flatten<T>(r: Result<Cached<T>, Arc<WhiskError>>) -> Result<Arc<T>, WhiskError> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e),
        Err(e) => Err((*e).clone()),
    }
}
