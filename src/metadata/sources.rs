//! The identity and metadata sources behind the caches.

use super::cache::Lookup;
use crate::auth::entitlement::{self, Doc};
use crate::auth::{Credentials, Identity, secrets_equal};
use crate::controller::ControllerClient;
use crate::controller::api::{self, ApiFailure};
use crate::couchdb::{CouchDb, escape};
use crate::error::{Origin, WhiskError};
use crate::policy::{IdentitySource, MetadataSource, Policy};
use crate::whisk::{ActionMetadata, ActionPath, TransactionId};
use http::Method;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// OpenWhisk's design document and view for identities in the subjects database.
const IDENTITIES_VIEW: &str = "_design/subjects.v2.0.0/_view/identities";

fn store_down(what: &str, e: impl std::fmt::Display) -> WhiskError {
    tracing::warn!(error = %e, "{what} unavailable");
    WhiskError::service_unavailable(Origin::Internal, None)
}

fn from_api<T>(r: Result<T, ApiFailure>) -> Lookup<T> {
    match r {
        Ok(m) => Ok(Ok(m)),
        Err(ApiFailure::Rejected(e)) => Ok(Err(e)),
        Err(ApiFailure::Failed(e)) => Err(e),
    }
}

/// Where identities come from.
pub(crate) enum IdentityStore {
    /// The controller.
    Controller {
        /// Client.
        client: ControllerClient,
        /// Lookup timeout.
        timeout: Duration,
    },
    /// The subjects database.
    CouchDb {
        /// Server.
        db: CouchDb,
        /// Database name.
        name: String,
    },
    /// A static identities file.
    File(IdentityFile),
}

impl IdentityStore {
    /// The store `policy` names.
    pub(crate) fn new(policy: &Policy, controller: ControllerClient) -> anyhow::Result<Self> {
        Ok(match policy.auth.source {
            IdentitySource::Controller => Self::Controller {
                client: controller,
                timeout: policy.metadata.timeout,
            },
            IdentitySource::CouchDb => {
                let c = policy.couchdb.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("[auth] source = \"couchdb\" needs [couchdb]")
                })?;
                Self::CouchDb {
                    db: CouchDb::new(c)?,
                    name: c.subjects_db.clone(),
                }
            }
            IdentitySource::File => {
                let path = policy.auth.identities_file.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("[auth] source = \"file\" needs identities_file")
                })?;
                Self::File(IdentityFile::load(path)?)
            }
        })
    }

    /// Who `creds` belong to.
    pub(crate) async fn identify(
        &self,
        creds: &Credentials,
        tid: &TransactionId,
    ) -> Lookup<Identity> {
        match self {
            Self::Controller { client, timeout } => {
                match api::caller_namespace(client, creds.authorization(), tid, *timeout).await {
                    // A failed limits lookup fails the identity (not cached; a stale
                    // identity may be served): never the defaults in its place.
                    Ok(ns) => Ok(Ok(Identity {
                        subject: ns.clone(),
                        namespace: ns,
                        limits: api::caller_limits(client, creds.authorization(), tid, *timeout)
                            .await?,
                        key: Some(creds.clone()),
                    })),
                    Err(ApiFailure::Rejected(e)) => Ok(Err(e)),
                    Err(ApiFailure::Failed(e)) => Err(e),
                }
            }
            Self::CouchDb { db, name } => {
                let rows = view(db, name, &serde_json::json!([creds.uuid, creds.key()])).await?;
                match rows.as_slice() {
                    [] => Ok(Err(WhiskError::auth_invalid())),
                    [row] => {
                        let v = &row["value"];
                        let uuid_ok = v["uuid"].as_str() == Some(creds.uuid.as_str());
                        let key_ok = v["key"]
                            .as_str()
                            .is_some_and(|k| secrets_equal(k, creds.key()));
                        match (uuid_ok && key_ok, v["namespace"].as_str()) {
                            (true, Some(ns)) => Ok(Ok(Identity {
                                namespace: ns.to_string(),
                                subject: row["id"].as_str().unwrap_or(ns).to_string(),
                                limits: row.get("doc").filter(|d| d.is_object()).cloned(),
                                key: Some(creds.clone()),
                            })),
                            _ => Ok(Err(WhiskError::auth_invalid())),
                        }
                    }
                    _ => {
                        tracing::error!(%tid, "the identities view returned several rows for one key");
                        Err(WhiskError::internal())
                    }
                }
            }
            Self::File(f) => Ok(f.identify(creds)),
        }
    }

    /// A namespace's key and limits (for token holders), when the store knows them.
    pub(crate) async fn namespace_key(
        &self,
        namespace: &str,
        _tid: &TransactionId,
    ) -> Result<(Option<Credentials>, Option<Value>), WhiskError> {
        match self {
            Self::Controller { .. } => Ok((None, None)),
            Self::CouchDb { db, name } => {
                let rows = view(db, name, &serde_json::json!([namespace])).await?;
                Ok(rows
                    .first()
                    .map(|row| {
                        let v = &row["value"];
                        let key = match (v["uuid"].as_str(), v["key"].as_str()) {
                            (Some(u), Some(k)) => Credentials::from_api_key(&format!("{u}:{k}")),
                            _ => None,
                        };
                        (key, row.get("doc").filter(|d| d.is_object()).cloned())
                    })
                    .unwrap_or((None, None)))
            }
            Self::File(f) => Ok(f
                .by_namespace
                .get(namespace)
                .map_or((None, None), |i| (i.key.clone(), i.limits.clone()))),
        }
    }

    /// The owner of `namespace` as the controller's web route finds it
    /// (`Identity.get` by namespace name: the identities view's first row), for the
    /// stores that can answer without the owner's key; `None` from the controller.
    pub(crate) async fn owner(&self, namespace: &str) -> Option<Lookup<Identity>> {
        match self {
            Self::Controller { .. } => None,
            Self::CouchDb { db, name } => {
                let rows = match view(db, name, &serde_json::json!([namespace])).await {
                    Ok(r) => r,
                    Err(e) => return Some(Err(e)),
                };
                let found = rows.first().and_then(|row| {
                    let v = &row["value"];
                    let key = Credentials::from_api_key(&format!(
                        "{}:{}",
                        v["uuid"].as_str()?,
                        v["key"].as_str()?
                    ))?;
                    Some(Identity {
                        namespace: v["namespace"].as_str().unwrap_or(namespace).to_string(),
                        subject: row["id"].as_str().unwrap_or(namespace).to_string(),
                        limits: row.get("doc").filter(|d| d.is_object()).cloned(),
                        key: Some(key),
                    })
                });
                Some(Ok(found.ok_or_else(WhiskError::not_found)))
            }
            Self::File(f) => Some(Ok(f
                .by_namespace
                .get(namespace)
                .cloned()
                .ok_or_else(WhiskError::not_found))),
        }
    }
}

/// Rows of the identities view for `key` (limits documents included).
async fn view(db: &CouchDb, name: &str, key: &Value) -> Result<Vec<Value>, WhiskError> {
    let key = crate::net::encode_segment(&key.to_string());
    let path = format!(
        "/{}/{IDENTITIES_VIEW}?key={key}&include_docs=true&limit=2",
        escape(name)
    );
    let answer = db
        .json(Method::GET, &path, None)
        .await
        .map_err(|e| store_down("the subjects database", e))?;
    Ok(answer["rows"].as_array().cloned().unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentitiesToml {
    #[serde(default)]
    identity: Vec<IdentityToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityToml {
    subject: String,
    namespace: String,
    uuid: String,
    key: String,
    #[serde(default)]
    limits: Option<Value>,
}

/// A static identities file, indexed by credential hash (so an unknown uuid and a
/// wrong key cost the same) and by namespace.
pub(crate) struct IdentityFile {
    by_hash: HashMap<[u8; 32], (Identity, String)>,
    by_namespace: HashMap<String, Identity>,
}

impl IdentityFile {
    /// Reads and checks `path`.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read identities file {}: {e}", path.display()))?;
        let parsed: IdentitiesToml = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("identities file {}: {e}", path.display()))?;
        let mut by_hash = HashMap::new();
        let mut by_namespace = HashMap::new();
        for (i, id) in parsed.identity.into_iter().enumerate() {
            let n = i + 1;
            crate::whisk::names::validate_segment(&id.namespace).map_err(|e| {
                anyhow::anyhow!(
                    "identities file {}: identity #{n}: namespace {e}",
                    path.display()
                )
            })?;
            let creds =
                Credentials::from_api_key(&format!("{}:{}", id.uuid, id.key)).ok_or_else(|| {
                    anyhow::anyhow!(
                        "identities file {}: identity #{n}: the key must be {} characters",
                        path.display(),
                        crate::auth::KEY_LENGTH
                    )
                })?;
            let identity = Identity {
                namespace: id.namespace.clone(),
                subject: id.subject,
                limits: id.limits.clone(),
                key: Some(creds.clone()),
            };
            by_namespace
                .entry(id.namespace)
                .or_insert_with(|| identity.clone());
            by_hash.insert(*creds.hash(), (identity, id.key));
        }
        Ok(Self {
            by_hash,
            by_namespace,
        })
    }

    fn identify(&self, creds: &Credentials) -> Result<Identity, WhiskError> {
        match self.by_hash.get(creds.hash()) {
            Some((identity, key)) if secrets_equal(key, creds.key()) => Ok(identity.clone()),
            _ => Err(WhiskError::auth_invalid()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceKeysToml {
    namespaces: HashMap<String, String>,
}

/// Reads a service-keys file: `[namespaces]` mapping each namespace to `"uuid:key"`.
pub(crate) fn read_service_keys(path: &Path) -> anyhow::Result<HashMap<String, Credentials>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read service_keys_file {}: {e}", path.display()))?;
    let parsed: ServiceKeysToml = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("service_keys_file {}: {e}", path.display()))?;
    parsed
        .namespaces
        .into_iter()
        .map(|(ns, key)| {
            Credentials::from_api_key(&key)
                .map(|c| (ns.clone(), c))
                .ok_or_else(|| anyhow::anyhow!("service_keys_file {}: the key of {ns} is not uuid:key with a 64-character key", path.display()))
        })
        .collect()
}

/// Where action metadata comes from.
pub(crate) enum MetadataStore {
    /// The controller (decides entitlement too).
    Controller {
        /// Client.
        client: ControllerClient,
        /// Lookup timeout.
        timeout: Duration,
    },
    /// The whisks database.
    CouchDb {
        /// Server.
        db: CouchDb,
        /// Database name.
        name: String,
    },
    /// Static documents.
    File(Arc<Map<String, Value>>),
}

impl MetadataStore {
    /// The store `policy` names.
    pub(crate) fn new(policy: &Policy, controller: ControllerClient) -> anyhow::Result<Self> {
        Ok(match policy.metadata.source {
            MetadataSource::Controller => Self::Controller {
                client: controller,
                timeout: policy.metadata.timeout,
            },
            MetadataSource::CouchDb => {
                let c = policy.couchdb.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("[metadata] source = \"couchdb\" needs [couchdb]")
                })?;
                Self::CouchDb {
                    db: CouchDb::new(c)?,
                    name: c.whisks_db.clone(),
                }
            }
            MetadataSource::File => Self::File(Arc::new(
                policy.metadata.documents.iter().cloned().collect(),
            )),
        })
    }

    /// The action at `path` as `identity` may see it.
    pub(crate) async fn action(
        &self,
        identity: &Identity,
        path: &ActionPath,
        tid: &TransactionId,
    ) -> Lookup<ActionMetadata> {
        match self {
            Self::Controller { client, timeout } => {
                let Some(key) = &identity.key else {
                    return Err(WhiskError::internal());
                };
                from_api(
                    api::action_metadata(client, key.authorization(), path, tid, *timeout).await,
                )
            }
            Self::CouchDb { db, name } => {
                entitlement::resolve(&identity.namespace, path, |id| whisks_doc(db, name, id)).await
            }
            Self::File(docs) => {
                entitlement::resolve(&identity.namespace, path, |id| {
                    let doc = entitlement::lookup_in(docs, &id);
                    async move { Ok(doc) }
                })
                .await
            }
        }
    }

    /// May `identity` read package `namespace/package`, as the entitlement of an action
    /// activated through it decides (`Ok(Err(..))`: OpenWhisk's refusal).
    pub(crate) async fn package(
        &self,
        identity: &Identity,
        namespace: &str,
        package: &str,
        tid: &TransactionId,
    ) -> Lookup<()> {
        match self {
            Self::Controller { client, timeout } => {
                let Some(key) = &identity.key else {
                    return Err(WhiskError::internal());
                };
                from_api(
                    api::package_readable(
                        client,
                        key.authorization(),
                        namespace,
                        package,
                        tid,
                        *timeout,
                    )
                    .await,
                )
            }
            Self::CouchDb { db, name } => {
                entitlement::package(&identity.namespace, namespace, package, |id| {
                    whisks_doc(db, name, id)
                })
                .await
            }
            Self::File(docs) => {
                entitlement::package(&identity.namespace, namespace, package, |id| {
                    let doc = entitlement::lookup_in(docs, &id);
                    async move { Ok(doc) }
                })
                .await
            }
        }
    }
}

/// The document `id` of the whisks database `name`.
async fn whisks_doc(db: &CouchDb, name: &str, id: String) -> Result<Doc, WhiskError> {
    let p = format!("/{}/{}", escape(name), escape(&id));
    match db.request(Method::GET, &p, None).await {
        Ok((s, body)) if s.is_success() => serde_json::from_slice(&body)
            .map(Doc::Found)
            .map_err(|e| store_down("the whisks database", e)),
        Ok((s, _)) if s == http::StatusCode::NOT_FOUND => Ok(Doc::Missing),
        Ok((s, _)) => Err(store_down("the whisks database", format!("HTTP {s}"))),
        Err(e) => Err(store_down("the whisks database", e)),
    }
}
