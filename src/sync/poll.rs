//! The controller's API as a source, for installations where owl cannot read the
//! whisks database: every poll lists the actions of the namespaces the configured
//! key sees (`GET /api/v1/namespaces`, then `…/actions?limit=200&skip=N`), and reads
//! in full (`?code=true`) only those whose version or update time changed since the
//! last poll — or whose package's did (`…/packages?limit=200&skip=N`): an action
//! inherits its package's parameters, and updating a package moves the package's
//! version and update time, not its actions'. The key is read from a file and never
//! logged.

use super::action::ActionDoc;
use crate::controller::ControllerClient;
use crate::net::encode_segment;
use axum::body::Body;
use base64::Engine;
use http::{HeaderValue, Method, Request, header};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Page size of action lists (the controller's maximum).
const PAGE: usize = 200;
/// Largest answer read (an action with 48 MB of code, base64).
const MAX_BODY: usize = 72 * 1024 * 1024;
/// Longest one request may take, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PollError {
    /// The controller could not be reached or did not answer in time.
    #[error("the controller could not be reached: {0}")]
    Unreachable(String),
    /// It answered with an error.
    #[error("the controller answered {status} for {path}: {body}")]
    Status {
        /// Path asked for.
        path: String,
        /// HTTP status.
        status: u16,
        /// Body (truncated).
        body: String,
    },
    /// The answer was not what OpenWhisk sends.
    #[error("unexpected answer from the controller for {0}")]
    Malformed(String),
}

/// What a listing says about one action: enough to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Semantic version.
    pub version: String,
    /// Last update (ms), when the controller reports it.
    pub updated: Option<u64>,
    /// Exec kind.
    pub kind: String,
    /// For an action in a package, what the package listing says of the package
    /// (`None` when it was not listed).
    pub package: Option<Stamp>,
}

/// The version and last update of a listed package: they move on every update
/// of the package [OW core/controller/.../controller/Packages.scala:294 `upPatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Semantic version.
    pub version: String,
    /// Last update (ms), when the controller reports it.
    pub updated: Option<u64>,
}

/// The controller, read with one key.
#[derive(Clone)]
pub(crate) struct ControllerSource {
    client: ControllerClient,
    authorization: HeaderValue,
}

impl std::fmt::Debug for ControllerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerSource").finish_non_exhaustive()
    }
}

impl ControllerSource {
    /// Reads the `uuid:key` in `key_file`.
    pub(crate) fn new(client: ControllerClient, key_file: &Path) -> anyhow::Result<Self> {
        let key = std::fs::read_to_string(key_file).map_err(|e| {
            anyhow::anyhow!("cannot read [sync] key_file {}: {e}", key_file.display())
        })?;
        let key = key.trim();
        if key
            .split_once(':')
            .is_none_or(|(u, k)| u.is_empty() || k.is_empty())
        {
            anyhow::bail!(
                "[sync] key_file {} must hold an OpenWhisk key, uuid:key",
                key_file.display()
            );
        }
        let mut authorization = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ))?;
        authorization.set_sensitive(true);
        Ok(Self {
            client,
            authorization,
        })
    }

    async fn get(&self, path: &str) -> Result<Value, PollError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(self.client.uri(path))
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .map_err(|_| PollError::Malformed(path.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .send(req)
                .await
                .map_err(|e| PollError::Unreachable(e.to_string()))?;
            let status = resp.status();
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                resp.into_body(),
                MAX_BODY,
            ))
            .await
            .map_err(|e| PollError::Unreachable(e.to_string()))?
            .to_bytes();
            if !status.is_success() {
                return Err(PollError::Status {
                    path: path.to_string(),
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
                });
            }
            serde_json::from_slice(&body).map_err(|_| PollError::Malformed(path.to_string()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| PollError::Unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))?
    }

    /// Every action the key sees: id → what the listing says (with its package's
    /// stamp for an action in a package).
    pub(crate) async fn list(&self) -> Result<BTreeMap<String, Listed>, PollError> {
        let namespaces = self.get("/api/v1/namespaces").await?;
        let namespaces: Vec<String> = namespaces
            .as_array()
            .ok_or_else(|| PollError::Malformed("/api/v1/namespaces".into()))?
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        let mut out = BTreeMap::new();
        for ns in namespaces {
            let mut packaged = false;
            for a in self.entities(&ns, "actions").await? {
                let (Some(entity_ns), Some(name)) = (
                    a.get("namespace").and_then(Value::as_str),
                    a.get("name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                packaged |= entity_ns.contains('/');
                out.insert(
                    format!("{entity_ns}/{name}"),
                    Listed {
                        version: a
                            .get("version")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        updated: a.get("updated").and_then(Value::as_u64),
                        kind: a
                            .pointer("/exec/kind")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        package: None,
                    },
                );
            }
            if !packaged {
                continue;
            }
            let mut stamps = BTreeMap::new();
            for p in self.entities(&ns, "packages").await? {
                let (Some(pns), Some(name)) = (
                    p.get("namespace").and_then(Value::as_str),
                    p.get("name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                stamps.insert(
                    format!("{pns}/{name}"),
                    Stamp {
                        version: p
                            .get("version")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        updated: p.get("updated").and_then(Value::as_u64),
                    },
                );
            }
            for (id, l) in out.iter_mut() {
                if let Some((pkg, _)) = id.rsplit_once('/')
                    && pkg.contains('/')
                {
                    l.package = stamps.get(pkg).cloned();
                }
            }
        }
        Ok(out)
    }

    /// Every entity of `collection` (`actions`, `packages`) in namespace `ns`, page
    /// by page.
    async fn entities(&self, ns: &str, collection: &str) -> Result<Vec<Value>, PollError> {
        let mut out = Vec::new();
        let mut skip = 0;
        loop {
            let path = format!(
                "/api/v1/namespaces/{}/{collection}?limit={PAGE}&skip={skip}",
                encode_segment(ns)
            );
            let page = self.get(&path).await?;
            let items = page
                .as_array()
                .ok_or_else(|| PollError::Malformed(path.clone()))?;
            out.extend(items.iter().cloned());
            if items.len() < PAGE {
                return Ok(out);
            }
            skip += PAGE;
        }
    }

    /// The action `id` (`ns/action`, `ns/pkg/action`) with its code; `None` when it
    /// is gone.
    pub(crate) async fn action(&self, id: &str) -> Result<Option<ActionDoc>, PollError> {
        let mut parts = id.splitn(2, '/');
        let (Some(ns), Some(rest)) = (parts.next(), parts.next()) else {
            return Ok(None);
        };
        let rest: Vec<String> = rest.split('/').map(encode_segment).collect();
        let path = format!(
            "/api/v1/namespaces/{}/actions/{}?code=true",
            encode_segment(ns),
            rest.join("/")
        );
        match self.get(&path).await {
            Ok(v) => Ok(ActionDoc::from_json(&v)),
            Err(PollError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
