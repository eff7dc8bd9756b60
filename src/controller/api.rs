//! The controller API calls owl makes with the caller's own credentials: who the
//! caller is (`GET /api/v1/namespaces`) and what an action is
//! (`GET /api/v1/namespaces/{ns}/actions/{name}?code=false`). The controller stays the
//! authority: its 401/403/404 answers come back as they came.

use super::client::{ControllerClient, ControllerError};
use crate::error::WhiskError;
use crate::net::encode_segment;
use crate::whisk::{ActionMetadata, ActionPath, TransactionId};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use std::time::Duration;

/// Largest controller answer owl reads for metadata (action metadata carries
/// parameters, which OpenWhisk bounds at 1 MB).
const MAX_METADATA_BODY: usize = 8 * 1024 * 1024;

/// How a lookup failed.
#[derive(Debug, Clone)]
pub(crate) enum ApiFailure {
    /// The controller answered with a definite rejection (401, 403, 404, 409): safe
    /// to cache briefly and replay.
    Rejected(WhiskError),
    /// The controller failed or could not be reached: not cached.
    Failed(WhiskError),
}

async fn get(
    client: &ControllerClient,
    path_and_query: &str,
    authorization: Option<&HeaderValue>,
    tid: &TransactionId,
    timeout: Duration,
) -> Result<Bytes, ApiFailure> {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(client.uri(path_and_query))
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("owl/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(auth) = authorization {
        req = req.header(header::AUTHORIZATION, auth.clone());
    }
    if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
        req = req.header("x-request-id", v);
    }
    let mut req = req
        .body(Body::empty())
        .map_err(|_| ApiFailure::Failed(WhiskError::internal()))?;
    crate::telemetry::traces::inject(req.headers_mut());
    let resp = client.send_within(req, timeout).await.map_err(|e| {
        tracing::warn!(%tid, error = %e, "controller lookup failed");
        ApiFailure::Failed(match e {
            ControllerError::Timeout(_) => WhiskError::controller_timeout(),
            ControllerError::Unreachable(_) => WhiskError::controller_unreachable(),
            ControllerError::BodyStalled => WhiskError::body_stalled(),
        })
    })?;
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(
        timeout,
        http_body_util::Limited::new(body, MAX_METADATA_BODY).collect(),
    )
    .await
    .map_err(|_| ApiFailure::Failed(WhiskError::controller_timeout()))?
    .map_err(|_| ApiFailure::Failed(WhiskError::controller_unreachable()))?
    .to_bytes();
    match parts.status {
        StatusCode::OK => Ok(body),
        StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::NOT_FOUND
        | StatusCode::CONFLICT => Err(ApiFailure::Rejected(WhiskError::from_controller(
            parts.status,
            &parts.headers,
            body,
        ))),
        status => {
            tracing::warn!(%tid, %status, "controller lookup answered with an error");
            Err(ApiFailure::Failed(WhiskError::from_controller(
                status,
                &parts.headers,
                body,
            )))
        }
    }
}

/// The namespace the credentials in `authorization` belong to.
pub(crate) async fn caller_namespace(
    client: &ControllerClient,
    authorization: &HeaderValue,
    tid: &TransactionId,
    timeout: Duration,
) -> Result<String, ApiFailure> {
    let body = get(
        client,
        "/api/v1/namespaces",
        Some(authorization),
        tid,
        timeout,
    )
    .await?;
    serde_json::from_slice::<Vec<String>>(&body)
        .ok()
        .and_then(|v| v.into_iter().next())
        .ok_or_else(|| {
            tracing::warn!(%tid, "controller's namespace list was not a JSON array of names");
            ApiFailure::Failed(WhiskError::internal())
        })
}

/// The effective limits of the caller's namespace (`GET /api/v1/namespaces/_/limits`):
/// `Ok(None)` when the controller has no such endpoint (404, older controllers), a
/// failure otherwise. A failed lookup must never pass for "no limits": a namespace
/// blocked with a limit of 0 would run under the system defaults.
pub(crate) async fn caller_limits(
    client: &ControllerClient,
    authorization: &HeaderValue,
    tid: &TransactionId,
    timeout: Duration,
) -> Result<Option<serde_json::Value>, WhiskError> {
    let body = match get(
        client,
        "/api/v1/namespaces/_/limits",
        Some(authorization),
        tid,
        timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(ApiFailure::Rejected(e)) if e.status == StatusCode::NOT_FOUND => return Ok(None),
        Err(ApiFailure::Rejected(e) | ApiFailure::Failed(e)) => return Err(e),
    };
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v.is_object() => Ok(Some(v)),
        _ => {
            tracing::warn!(%tid, "controller's limits were not a JSON object");
            Err(WhiskError::internal())
        }
    }
}

/// The metadata of the action at `path` (resolved namespace) as the caller may see it.
pub(crate) async fn action_metadata(
    client: &ControllerClient,
    authorization: &HeaderValue,
    path: &ActionPath,
    tid: &TransactionId,
    timeout: Duration,
) -> Result<ActionMetadata, ApiFailure> {
    let mut p = format!(
        "/api/v1/namespaces/{}/actions/",
        encode_segment(&path.namespace)
    );
    if let Some(pkg) = &path.package {
        p.push_str(&encode_segment(pkg));
        p.push('/');
    }
    p.push_str(&encode_segment(&path.action));
    p.push_str("?code=false");
    let body = get(client, &p, Some(authorization), tid, timeout).await?;
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .as_ref()
        .and_then(ActionMetadata::from_json)
        .ok_or_else(|| {
            tracing::warn!(%tid, action = %path, "controller's action metadata could not be read");
            ApiFailure::Failed(WhiskError::internal())
        })
}

/// Whether the credentials in `authorization` may read package `namespace/package`
/// (`GET …/packages/{package}`): the controller's entitlement check on the package of
/// an action it activates, whose refusals (404 missing, 409 not a package, 422 a
/// circular binding) are what an invocation through that package is answered.
pub(crate) async fn package_readable(
    client: &ControllerClient,
    authorization: &HeaderValue,
    namespace: &str,
    package: &str,
    tid: &TransactionId,
    timeout: Duration,
) -> Result<(), ApiFailure> {
    let p = format!(
        "/api/v1/namespaces/{}/packages/{}",
        encode_segment(namespace),
        encode_segment(package)
    );
    get(client, &p, Some(authorization), tid, timeout)
        .await
        .map(drop)
}

/// The runtime kinds the controller's manifest marks deprecated (`GET /`, its
/// `runtimes` families), read in the background: at start-up, then again whenever a
/// request finds it older than [`MANIFEST_TTL`] (after a failed read, [`MANIFEST_RETRY`]),
/// keeping what was known meanwhile. No request ever waits for it. The action document
/// carries no such flag: OpenWhisk decides from its manifest, and refuses to invoke
/// those actions [OW core/controller/.../actions/PostActionActivation.scala:59-63].
#[derive(Debug, Clone, Default)]
pub(crate) struct DeprecatedKinds {
    /// What is known: when it was read, how long it holds, the kinds.
    known: std::sync::Arc<arc_swap::ArcSwapOption<(std::time::Instant, Duration, Vec<String>)>>,
    /// A read is under way.
    reading: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// How long the manifest read from the controller is used.
pub(crate) const MANIFEST_TTL: Duration = Duration::from_secs(300);
/// How soon a failed manifest read is tried again.
pub(crate) const MANIFEST_RETRY: Duration = Duration::from_secs(30);

impl DeprecatedKinds {
    /// True if the manifest, as last read, marks `kind` deprecated (false while it has
    /// not been read); starts a background read when it is stale.
    pub(crate) fn contains(
        &self,
        client: &ControllerClient,
        kind: &str,
        timeout: Duration,
    ) -> bool {
        let known = self.known.load_full();
        if known.as_ref().is_none_or(|k| k.0.elapsed() >= k.1) {
            self.refresh(client, timeout);
        }
        known
            .as_ref()
            .is_some_and(|k| k.2.iter().any(|d| d == kind))
    }

    /// Starts a background read of the manifest, unless one is under way.
    pub(crate) fn refresh(&self, client: &ControllerClient, timeout: Duration) {
        use std::sync::atomic::Ordering;
        if self.reading.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.reading.store(false, Ordering::SeqCst);
            return;
        };
        let (this, client) = (self.clone(), client.clone());
        handle.spawn(async move {
            let now = std::time::Instant::now();
            let next = match deprecated_kinds(&client, timeout).await {
                Some(kinds) => (now, MANIFEST_TTL, kinds),
                None => (
                    now,
                    MANIFEST_RETRY,
                    this.known
                        .load_full()
                        .map(|k| k.2.clone())
                        .unwrap_or_default(),
                ),
            };
            this.known.store(Some(std::sync::Arc::new(next)));
            this.reading.store(false, Ordering::SeqCst);
        });
    }
}

/// Reads the deprecated kinds from the controller's info document.
async fn deprecated_kinds(client: &ControllerClient, timeout: Duration) -> Option<Vec<String>> {
    let body = get(client, "/", None, &TransactionId::generate(), timeout)
        .await
        .ok()?;
    let info: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let families = info.get("runtimes")?.as_object()?;
    Some(
        families
            .values()
            .filter_map(serde_json::Value::as_array)
            .flatten()
            .filter(|rt| rt.get("deprecated") == Some(&serde_json::Value::Bool(true)))
            .filter_map(|rt| rt.get("kind")?.as_str().map(str::to_string))
            .collect(),
    )
}
