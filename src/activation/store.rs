//! The store interface every activation store implements.

use crate::whisk::{Activation, ActivationId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, for the object-safe store interface.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(format!("sqlite: {e}"))
    }
}

impl From<crate::couchdb::CouchError> for StoreError {
    fn from(e: crate::couchdb::CouchError) -> Self {
        Self(e.to_string())
    }
}

/// A completed activation ready to store: the record (shared with the answer that
/// carries it, not copied) and its API-form JSON, serialised straight to text by the
/// caller (on the invocation's task, in parallel) rather than by the single writer.
#[derive(Debug, Clone)]
pub struct Record {
    /// The activation.
    pub activation: Arc<Activation>,
    /// `activation.api_form(true)` as text.
    pub doc: String,
}

impl Record {
    /// Serialises `activation`.
    pub fn new(activation: impl Into<Arc<Activation>>) -> Self {
        let activation = activation.into();
        let doc = serde_json::to_string(&activation.api_form(true)).unwrap_or_default();
        Self { activation, doc }
    }
}

/// A validated list query (reference §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Records to skip (newest first).
    pub skip: u64,
    /// Records to return.
    pub limit: u64,
    /// `pkg/action` or `action`, as the filters view keys it.
    pub name: Option<String>,
    /// Earliest `start` (epoch ms, inclusive).
    pub since: Option<i64>,
    /// Latest `start` (epoch ms, inclusive).
    pub upto: Option<i64>,
    /// Full records instead of summaries.
    pub docs: bool,
    /// Only the number of records.
    pub count: bool,
}

/// Where completed activation records live.
pub trait ActivationStore: Send + Sync + 'static {
    /// Short name for logs and metrics (`embedded`, `couchdb`).
    fn kind(&self) -> &'static str;

    /// Writes completed records (idempotent: writing a record twice keeps one).
    fn write(&self, batch: std::sync::Arc<Vec<Record>>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// True if a record `namespace/id` is already stored (used when completing
    /// journal entries after a restart).
    fn contains<'a>(
        &'a self,
        namespace: &'a str,
        id: &'a ActivationId,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes records beyond the retention limits; returns how many.
    fn prune(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// The read side, when owl answers activation reads from this store itself; `None`
    /// when the controller reads the same database (CouchDB).
    fn reader(&self) -> Option<&dyn ActivationReader>;
}

/// Reading records back (the activations API).
pub trait ActivationReader: Send + Sync {
    /// The record `id` of `namespace`, if held.
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        id: &'a ActivationId,
    ) -> BoxFuture<'a, Result<Option<Activation>, StoreError>>;

    /// Records `skip .. skip + limit` of `namespace` matching `q`, newest first: memory
    /// in proportion to `limit`, whatever `skip` is.
    fn list<'a>(
        &'a self,
        namespace: &'a str,
        q: &'a ListQuery,
    ) -> BoxFuture<'a, Result<Vec<Activation>, StoreError>>;

    /// How many records of `namespace` match `q` (ignoring skip/limit).
    fn count<'a>(
        &'a self,
        namespace: &'a str,
        q: &'a ListQuery,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
}

/// True for owl's record of an invocation the controller ran after a fallback, when the
/// client already held owl's id: the controller's own activation (named in the
/// `fallback` annotation) is the one listed, so one invocation is listed once; owl's
/// record stays readable by the id the client holds.
pub(crate) fn stands_for_another(act: &Activation) -> bool {
    act.annotation("fallback")
        .and_then(|f| f.get("activationId"))
        .is_some()
}

/// The key OpenWhisk's filters view uses for an activation's name: `pkg/name` when
/// the action ran in a package (the binding's package when invoked through one),
/// else `name`.
pub(crate) fn name_key(act: &Activation) -> String {
    let from = |key: &str| {
        act.annotation(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    if let Some(binding) = from("binding")
        && let Some(pkg) = binding.split('/').nth(1)
    {
        return format!("{pkg}/{}", act.name);
    }
    if let Some(path) = from("path") {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() == 3 {
            return format!("{}/{}", parts[1], act.name);
        }
    }
    act.name.clone()
}
