//! The whisks database as a source: its `_changes` feed, followed from the last
//! sequence handled (persisted in the state file after every batch, so a restart
//! resumes where the last run stopped), plus single-document reads for full passes,
//! code attachments and the packages that hold actions, and the listing of a
//! package's actions.
//!
//! The feed is followed with long polls, each bounded by `[couchdb] timeout`: the
//! continuous feed's behaviour, with no connection that lives forever. A long poll
//! that the server does not end in time (pouchdb-server ignores `timeout`) is
//! simply issued again from the same sequence.

use super::action::{ActionDoc, PackageDoc};
use crate::couchdb::{CouchDb, CouchError, escape};
use http::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Documents read per request.
const BATCH: usize = 100;
/// Ids read per `_all_docs` request.
const LIST_PAGE: usize = 500;

/// A change of the whisks database.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// An action was created or updated.
    Upsert(Box<ActionDoc>),
    /// The document with this id was deleted (an action, or a package: its id
    /// cannot tell). A deleted package deletes no function by itself: OpenWhisk
    /// deletes a package only once its actions are gone, each its own change.
    Removed(String),
    /// The package with this id (`ns/pkg`, not a binding) was created or updated:
    /// its actions inherit its parameters, so each is handled again.
    PackageUpdated(String),
}

impl Change {
    /// The document id.
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Upsert(d) => &d.id,
            Self::Removed(id) | Self::PackageUpdated(id) => id,
        }
    }
}

/// One batch of the feed.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The changes, in feed order.
    pub changes: Vec<Change>,
    /// The sequence to resume from after them.
    pub(crate) last_seq: Value,
    /// True when the feed had more than fit in this batch.
    pub more: bool,
}

/// The whisks database.
#[derive(Clone, Debug)]
pub(crate) struct Whisks {
    couch: CouchDb,
    db: String,
    timeout: Duration,
}

impl Whisks {
    /// The database `db` on `couch` (whose calls time out after `timeout`).
    pub(crate) fn new(couch: CouchDb, db: String, timeout: Duration) -> Self {
        Self { couch, db, timeout }
    }

    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        &self.db
    }

    /// Changes after `since`. With `wait`, a long poll: the call returns when
    /// something changes, or with no changes when the server's (or the client's)
    /// timeout passes.
    pub(crate) async fn changes(&self, since: &Value, wait: bool) -> Result<Batch, CouchError> {
        let since_s = match since {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut path = format!(
            "/{}/_changes?include_docs=true&limit={BATCH}&since={}",
            escape(&self.db),
            percent_encoding::utf8_percent_encode(&since_s, percent_encoding::NON_ALPHANUMERIC)
        );
        if wait {
            let ms = self
                .timeout
                .saturating_sub(Duration::from_secs(1))
                .as_millis()
                .max(100);
            path.push_str(&format!("&feed=longpoll&timeout={ms}"));
        }
        let body = match self.couch.json(Method::GET, &path, None).await {
            Ok(b) => b,
            Err(CouchError::Timeout(_)) if wait => {
                return Ok(Batch {
                    changes: Vec::new(),
                    last_seq: since.clone(),
                    more: false,
                });
            }
            Err(e) => return Err(e),
        };
        let results = body
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| CouchError::Malformed("`_changes` without `results`".into()))?;
        let last_seq = body
            .get("last_seq")
            .cloned()
            .ok_or_else(|| CouchError::Malformed("`_changes` without `last_seq`".into()))?;
        let mut changes = Vec::new();
        for r in results {
            let Some(id) = r.get("id").and_then(Value::as_str) else {
                continue;
            };
            if id.starts_with("_design/") {
                continue;
            }
            let doc = r.get("doc");
            if r.get("deleted").and_then(Value::as_bool) == Some(true) {
                changes.push(Change::Removed(id.to_string()));
            } else if let Some(doc) = doc.and_then(ActionDoc::from_json) {
                changes.push(Change::Upsert(Box::new(doc)));
            } else if let Some(pkg) = doc.and_then(PackageDoc::from_json)
                && pkg.binding.is_none()
            {
                // A binding holds no actions, and its parameters never reach a
                // function (one function serves every binding: docs/sync.md).
                changes.push(Change::PackageUpdated(id.to_string()));
            }
        }
        Ok(Batch {
            more: results.len() >= BATCH,
            changes,
            last_seq,
        })
    }

    /// The action document `id`, or `None` when it does not exist (or is not an
    /// action).
    pub(crate) async fn action(&self, id: &str) -> Result<Option<ActionDoc>, CouchError> {
        let path = format!("/{}/{}", escape(&self.db), escape(id));
        match self.couch.json(Method::GET, &path, None).await {
            Ok(doc) => Ok(ActionDoc::from_json(&doc)),
            Err(CouchError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The package document `id` (`ns/pkg`), or `None` when it does not exist (or is
    /// not a package).
    pub(crate) async fn package(&self, id: &str) -> Result<Option<PackageDoc>, CouchError> {
        let path = format!("/{}/{}", escape(&self.db), escape(id));
        match self.couch.json(Method::GET, &path, None).await {
            Ok(doc) => Ok(PackageDoc::from_json(&doc)),
            Err(CouchError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The ids of the documents in package `id`: `ns/pkg/…`, the ids OpenWhisk gives
    /// the actions of a package. Read from `_all_docs` by id range (no design
    /// document needed), `LIST_PAGE` ids per request.
    pub(crate) async fn package_members(&self, id: &str) -> Result<Vec<String>, CouchError> {
        let prefix = format!("{id}/");
        let key = |k: &str| {
            percent_encoding::utf8_percent_encode(
                &Value::from(k).to_string(),
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string()
        };
        let end = key(&format!("{prefix}\u{fff0}"));
        let mut out: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        loop {
            // The next page starts at the last id read, skipping it.
            let (start, skip) = match &last {
                Some(l) => (key(l), 1),
                None => (key(&prefix), 0),
            };
            let path = format!(
                "/{}/_all_docs?startkey={start}&endkey={end}&limit={LIST_PAGE}&skip={skip}",
                escape(&self.db)
            );
            let body = self.couch.json(Method::GET, &path, None).await?;
            let ids: Vec<&str> = body
                .get("rows")
                .and_then(Value::as_array)
                .ok_or_else(|| CouchError::Malformed("`_all_docs` without `rows`".into()))?
                .iter()
                .filter_map(|r| r.get("id").and_then(Value::as_str))
                .collect();
            // Only `ns/pkg/name`, whatever the server's collation let through.
            out.extend(
                ids.iter()
                    .filter(|i| {
                        i.strip_prefix(&prefix)
                            .is_some_and(|n| !n.is_empty() && !n.contains('/'))
                    })
                    .map(|i| i.to_string()),
            );
            match ids.last() {
                Some(l) if ids.len() >= LIST_PAGE => last = Some(l.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// The attachment `name` of document `id` (`None`: gone, a newer revision
    /// replaced it).
    pub(crate) async fn attachment(
        &self,
        id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, CouchError> {
        let path = format!("/{}/{}/{}", escape(&self.db), escape(id), escape(name));
        let (status, body) = self.couch.request(Method::GET, &path, None).await?;
        match status.as_u16() {
            200 => Ok(Some(body.to_vec())),
            404 => Ok(None),
            s => Err(CouchError::Status {
                status: s,
                body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            }),
        }
    }
}

/// The persisted feed position: `{"db": "...", "since": <sequence>}`.
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state kept at `path`.
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// The saved sequence for `db`; `0` (the beginning) when there is none, or it
    /// was saved for another database.
    pub(crate) fn load(&self, db: &str) -> anyhow::Result<Value> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Value::from(0)),
            Err(e) => anyhow::bail!("cannot read the sync state {}: {e}", self.path.display()),
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "the sync state {} is not valid JSON ({e}); delete it to start from the beginning",
                self.path.display()
            )
        })?;
        if v.get("db").and_then(Value::as_str) != Some(db) {
            tracing::warn!(state = %self.path.display(), db, "the sync state belongs to another database; starting from the beginning");
            return Ok(Value::from(0));
        }
        Ok(v.get("since").cloned().unwrap_or(Value::from(0)))
    }

    /// Saves `since` for `db` (written to a temporary file, then renamed, so a
    /// crash leaves the old state or the new one).
    pub(crate) fn save(&self, db: &str, since: &Value) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        let text = serde_json::to_string(&serde_json::json!({"db": db, "since": since}))?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| anyhow::anyhow!("cannot save the sync state {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_survives_and_belongs_to_one_database() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateFile::new(&dir.path().join("sub/sync.state"));
        assert_eq!(s.load("whisks").unwrap(), Value::from(0));
        s.save("whisks", &Value::from("42-g1AAAA")).unwrap();
        assert_eq!(s.load("whisks").unwrap(), Value::from("42-g1AAAA"));
        assert_eq!(s.load("other").unwrap(), Value::from(0));
        std::fs::write(dir.path().join("sub/sync.state"), "{").unwrap();
        assert!(
            s.load("whisks")
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
    }
}
