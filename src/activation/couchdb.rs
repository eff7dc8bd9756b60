//! The `couchdb` store: records written into OpenWhisk's activations database exactly
//! as an invoker writes them (`_id` = `namespace/activationId`, `entityType`, stored
//! `response.statusCode`), batched with `_bulk_docs`, so the controller serves them to
//! clients with no interception by owl.

use super::store::{ActivationReader, ActivationStore, BoxFuture, Record, StoreError};
use crate::couchdb::{CouchDb, escape};
use crate::whisk::ActivationId;
use http::Method;
use serde_json::{Value, json};
use std::time::SystemTime;

/// Activation records in a CouchDB database.
pub(crate) struct CouchActivationStore {
    db: CouchDb,
    name: String,
}

impl CouchActivationStore {
    /// Records go to database `name` on `db`.
    pub(crate) fn new(db: CouchDb, name: String) -> Self {
        Self { db, name }
    }
}

impl ActivationStore for CouchActivationStore {
    fn kind(&self) -> &'static str {
        "couchdb"
    }

    fn write(&self, batch: std::sync::Arc<Vec<Record>>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let now = crate::context::epoch_ms(SystemTime::now());
            let docs: Vec<Value> = batch
                .iter()
                .map(|r| r.activation.to_document_json(now))
                .collect();
            let answer = self
                .db
                .json(
                    Method::POST,
                    &format!("/{}/_bulk_docs", escape(&self.name)),
                    Some(&json!({ "docs": docs })),
                )
                .await?;
            // Per-document results: a conflict means the record is already there (a
            // retried batch whose first attempt landed), which is what we want.
            let failed: Vec<String> = answer
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r.get("error").is_some_and(|e| e != "conflict"))
                .map(|r| format!("{}: {}", r["id"], r["error"]))
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(StoreError(format!(
                    "CouchDB rejected records: {}",
                    failed.join(", ")
                )))
            }
        })
    }

    fn contains<'a>(
        &'a self,
        namespace: &'a str,
        id: &'a ActivationId,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let path = format!(
                "/{}/{}",
                escape(&self.name),
                escape(&format!("{namespace}/{id}"))
            );
            let (status, _) = self.db.request(Method::HEAD, &path, None).await?;
            Ok(status.is_success())
        })
    }

    fn reader(&self) -> Option<&dyn ActivationReader> {
        // The controller reads OpenWhisk's activations database itself.
        None
    }

    fn prune(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        // Retention of OpenWhisk's activations database is OpenWhisk's business.
        Box::pin(async { Ok(0) })
    }
}
