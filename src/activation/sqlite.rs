//! The embedded store: SQLite in WAL mode in the data directory, indexed for the list
//! queries, with retention by age and count. The same database holds the journal of
//! pending invocations (accepted, not yet completed), which lets a restarted gateway
//! complete every activation it accepted.

use super::store::{
    ActivationReader, ActivationStore, BoxFuture, ListQuery, Record, StoreError, name_key,
};
use crate::whisk::{Activation, ActivationId};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// SQLite-backed activation store and pending journal.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    retention: Duration,
    max_records: u64,
    holds_records: bool,
}

/// Records are appended in rowid order (`seq`), so the table and the time-ordered
/// indexes grow at their ends; only the id index takes random inserts, and ids are
/// stored as 16-byte blobs to keep it small. Every index ends in the rowid, which
/// breaks ties between records of the same millisecond.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS activations (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    name_key TEXT NOT NULL,
    start INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activations_by_namespace ON activations(namespace, start);
CREATE INDEX IF NOT EXISTS activations_by_name ON activations(namespace, name_key, start);
CREATE INDEX IF NOT EXISTS activations_by_start ON activations(start);
CREATE TABLE IF NOT EXISTS pending (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
";

/// A journal entry: an accepted invocation still running (its skeleton), or a
/// completed record not yet in the record store.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// The activation: the skeleton, or the completed record.
    pub activation: Activation,
    /// True when `activation` is the completed record.
    pub completed: bool,
}

fn open(path: &Path, fsync: bool) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
    // only an OS crash or power loss may lose the last transactions. FULL (`fsync =
    // true`) syncs the log at every commit, so those survive too.
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Fewer, larger checkpoints: each page is copied back once per checkpoint, so
    // rarer checkpoints copy hot index pages far fewer times.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    Ok(conn)
}

/// The 16 bytes of a 32-hex activation id.
fn id_blob(id: &ActivationId) -> Vec<u8> {
    let s = id.as_str().as_bytes();
    (0..16)
        .map(|i| {
            let hex = |c: u8| match c {
                b'0'..=b'9' => c - b'0',
                _ => c - b'a' + 10,
            };
            (hex(s[2 * i]) << 4) | hex(s[2 * i + 1])
        })
        .collect()
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/owl.db`. With `holds_records = false` it is only
    /// the pending journal (records go to another store).
    pub fn open(
        dir: &Path,
        retention: Duration,
        max_records: u64,
        holds_records: bool,
    ) -> Result<Self, StoreError> {
        Self::open_with(dir, retention, max_records, holds_records, false)
    }

    /// Like [`open`](Self::open); with `fsync` every commit is synced to disk.
    pub(crate) fn open_with(
        dir: &Path,
        retention: Duration,
        max_records: u64,
        holds_records: bool,
        fsync: bool,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("owl.db");
        let writer = open(&path, fsync)?;
        writer.execute_batch(SCHEMA)?;
        // `listed = 0`: a record readable by its id but not listed — owl's own id for an
        // invocation the controller ran (and lists) after a fallback. Added to stores
        // created before the column existed.
        let has_listed = writer
            .prepare("SELECT 1 FROM pragma_table_info('activations') WHERE name = 'listed'")?
            .exists([])?;
        if !has_listed {
            writer.execute_batch(
                "ALTER TABLE activations ADD COLUMN listed INTEGER NOT NULL DEFAULT 1",
            )?;
        }
        // `done = 1`: the entry is a completed record on its way to another store.
        let has_done = writer
            .prepare("SELECT 1 FROM pragma_table_info('pending') WHERE name = 'done'")?
            .exists([])?;
        if !has_done {
            writer.execute_batch(
                "ALTER TABLE pending ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
                 CREATE INDEX IF NOT EXISTS pending_by_done ON pending(done, created);",
            )?;
        }
        let reader = open(&path, fsync)?;
        Ok(Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            retention,
            max_records,
            holds_records,
        })
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| StoreError("writer lock poisoned".into()))?;
        f(&mut conn)
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError("reader lock poisoned".into()))?;
        f(&conn)
    }

    /// Applies one batch in one transaction: pending entries added, records written
    /// (when this store holds them), and pending entries of completed ids removed.
    pub fn apply(&self, pending: &[Activation], completed: &[Record]) -> Result<(), StoreError> {
        let now = crate::context::epoch_ms(SystemTime::now());
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            {
                let mut add_pending = tx.prepare_cached(
                    "INSERT OR IGNORE INTO pending (id, doc, created) VALUES (?1, ?2, ?3)",
                )?;
                for a in pending {
                    add_pending.execute(params![
                        a.activation_id.as_str(),
                        a.to_api_json(true).to_string(),
                        now
                    ])?;
                }
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO activations (id, namespace, name_key, start, doc, listed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                let mut done = tx.prepare_cached("DELETE FROM pending WHERE id = ?1")?;
                for r in completed {
                    let a = &r.activation;
                    if self.holds_records {
                        put.execute(params![
                            id_blob(&a.activation_id),
                            a.namespace,
                            name_key(a),
                            a.start,
                            r.doc,
                            !super::store::stands_for_another(a)
                        ])?;
                    }
                    done.execute(params![a.activation_id.as_str()])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Journals one group in one transaction (one commit for many invocations):
    /// skeletons of accepted invocations, and completed records. This store holds
    /// records: a completed record is written where it is read, replacing its
    /// skeleton. Records go elsewhere: the completed record replaces its skeleton in
    /// the journal, to stay there until the record store has it
    /// ([`apply`](Self::apply) with the same records removes it).
    pub fn journal(&self, pending: &[Activation], completed: &[Record]) -> Result<(), StoreError> {
        if self.holds_records {
            return self.apply(pending, completed);
        }
        let now = crate::context::epoch_ms(SystemTime::now());
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            {
                let mut add_pending = tx.prepare_cached(
                    "INSERT OR IGNORE INTO pending (id, doc, created, done) VALUES (?1, ?2, ?3, 0)",
                )?;
                for a in pending {
                    add_pending.execute(params![
                        a.activation_id.as_str(),
                        a.to_api_json(true).to_string(),
                        now
                    ])?;
                }
                let mut add_done = tx.prepare_cached(
                    "INSERT OR REPLACE INTO pending (id, doc, created, done) VALUES (?1, ?2, ?3, 1)",
                )?;
                for r in completed {
                    add_done.execute(params![r.activation.activation_id.as_str(), r.doc, now])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Completed records journaled before `before` (epoch ms) and not yet in the
    /// record store, oldest first, at most `limit`.
    pub(crate) fn completed_backlog(
        &self,
        before: i64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT doc FROM pending WHERE done = 1 AND created < ?1 ORDER BY created LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![before, limit as i64], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for doc in rows {
                let doc = doc?;
                if let Some(a) = serde_json::from_str(&doc)
                    .ok()
                    .as_ref()
                    .and_then(Activation::from_json)
                {
                    out.push(Record {
                        activation: Arc::new(a),
                        doc,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Removes pending entries (completed elsewhere, e.g. a fallback the client saw).
    pub(crate) fn discard_pending(&self, ids: &[ActivationId]) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            {
                let mut del = tx.prepare_cached("DELETE FROM pending WHERE id = ?1")?;
                for id in ids {
                    del.execute(params![id.as_str()])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// The skeletons in the journal (after a restart: invocations that never
    /// completed).
    pub(crate) fn skeletons(&self) -> Result<Vec<Activation>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt =
                conn.prepare("SELECT doc FROM pending WHERE done = 0 ORDER BY created")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for doc in rows {
                if let Some(a) = serde_json::from_str(&doc?)
                    .ok()
                    .as_ref()
                    .and_then(Activation::from_json)
                {
                    out.push(a);
                }
            }
            Ok(out)
        })
    }

    /// Every journal entry (after a restart: invocations that never completed, and
    /// completed records the record store does not have yet).
    pub fn pending(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare("SELECT doc, done FROM pending ORDER BY created")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (doc, done) = row?;
                if let Some(a) = serde_json::from_str(&doc)
                    .ok()
                    .as_ref()
                    .and_then(Activation::from_json)
                {
                    out.push(JournalEntry {
                        activation: a,
                        completed: done != 0,
                    });
                }
            }
            Ok(out)
        })
    }

    /// True if a completed record `id` is held.
    pub fn has_record(&self, id: &ActivationId) -> Result<bool, StoreError> {
        self.with_reader(|conn| {
            Ok(conn
                .query_row(
                    "SELECT 1 FROM activations WHERE id = ?1",
                    params![id_blob(id)],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
    }

    fn filter_sql(q: &ListQuery) -> (String, Vec<rusqlite::types::Value>) {
        let mut sql = String::from(" WHERE namespace = ?1 AND listed = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(n) = &q.name {
            args.push(n.clone().into());
            sql.push_str(&format!(" AND name_key = ?{}", args.len() + 1));
        }
        if let Some(s) = q.since {
            args.push(s.into());
            sql.push_str(&format!(" AND start >= ?{}", args.len() + 1));
        }
        if let Some(u) = q.upto {
            args.push(u.into());
            sql.push_str(&format!(" AND start <= ?{}", args.len() + 1));
        }
        (sql, args)
    }

    fn list_sync(&self, namespace: &str, q: &ListQuery) -> Result<Vec<Activation>, StoreError> {
        let (filter, args) = Self::filter_sql(q);
        let sql = format!(
            "SELECT doc FROM activations{filter} ORDER BY start DESC, seq DESC LIMIT {} OFFSET {}",
            q.limit.min(i64::MAX as u64),
            q.skip.min(i64::MAX as u64)
        );
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut all: Vec<rusqlite::types::Value> = vec![namespace.to_string().into()];
            all.extend(args);
            let rows =
                stmt.query_map(rusqlite::params_from_iter(all), |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for doc in rows {
                if let Some(a) = serde_json::from_str(&doc?)
                    .ok()
                    .as_ref()
                    .and_then(Activation::from_json)
                {
                    out.push(a);
                }
            }
            Ok(out)
        })
    }

    fn count_sync(&self, namespace: &str, q: &ListQuery) -> Result<u64, StoreError> {
        let (filter, args) = Self::filter_sql(q);
        let sql = format!("SELECT COUNT(*) FROM activations{filter}");
        self.with_reader(|conn| {
            let mut all: Vec<rusqlite::types::Value> = vec![namespace.to_string().into()];
            all.extend(args);
            Ok(conn.query_row(&sql, rusqlite::params_from_iter(all), |r| {
                r.get::<_, i64>(0)
            })? as u64)
        })
    }

    fn get_sync(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        self.with_reader(|conn| {
            let doc: Option<String> = conn
                .query_row(
                    "SELECT doc FROM activations WHERE id = ?1 AND namespace = ?2",
                    params![id_blob(id), namespace],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(doc
                .and_then(|d| serde_json::from_str(&d).ok())
                .as_ref()
                .and_then(Activation::from_json))
        })
    }

    fn prune_sync(&self) -> Result<u64, StoreError> {
        let cutoff =
            crate::context::epoch_ms(SystemTime::now()) - self.retention.as_millis() as i64;
        self.with_writer(|conn| {
            let by_age = conn.execute("DELETE FROM activations WHERE start < ?1", params![cutoff])?;
            let by_count = conn.execute(
                "DELETE FROM activations WHERE seq IN (SELECT seq FROM activations ORDER BY start DESC, seq DESC LIMIT -1 OFFSET ?1)",
                params![self.max_records as i64],
            )?;
            Ok((by_age + by_count) as u64)
        })
    }
}

fn blocking<T: Send + 'static>(
    store: Arc<SqliteStore>,
    f: impl FnOnce(&SqliteStore) -> Result<T, StoreError> + Send + 'static,
) -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError(format!("store task failed: {e}")))?
    })
}

/// The embedded store as an [`ActivationStore`] (shares the database with the journal).
#[derive(Clone)]
pub struct EmbeddedStore(pub Arc<SqliteStore>);

impl ActivationStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn write(&self, batch: Arc<Vec<Record>>) -> BoxFuture<'_, Result<(), StoreError>> {
        blocking(self.0.clone(), move |s| s.apply(&[], &batch))
    }

    fn contains<'a>(
        &'a self,
        _namespace: &'a str,
        id: &'a ActivationId,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let id = id.clone();
        blocking(self.0.clone(), move |s| s.has_record(&id))
    }

    fn prune(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        blocking(self.0.clone(), |s| s.prune_sync())
    }

    fn reader(&self) -> Option<&dyn ActivationReader> {
        Some(self)
    }
}

impl ActivationReader for EmbeddedStore {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        id: &'a ActivationId,
    ) -> BoxFuture<'a, Result<Option<Activation>, StoreError>> {
        let (ns, id) = (namespace.to_string(), id.clone());
        blocking(self.0.clone(), move |s| s.get_sync(&ns, &id))
    }

    fn list<'a>(
        &'a self,
        namespace: &'a str,
        q: &'a ListQuery,
    ) -> BoxFuture<'a, Result<Vec<Activation>, StoreError>> {
        let (ns, q) = (namespace.to_string(), q.clone());
        blocking(self.0.clone(), move |s| s.list_sync(&ns, &q))
    }

    fn count<'a>(
        &'a self,
        namespace: &'a str,
        q: &'a ListQuery,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let (ns, q) = (namespace.to_string(), q.clone());
        blocking(self.0.clone(), move |s| s.count_sync(&ns, &q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store created before the `listed` column existed opens, gains the column, and
    /// keeps listing its records.
    #[test]
    fn older_stores_gain_the_listed_column() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = open(&dir.path().join("owl.db"), false).unwrap();
            conn.execute_batch(
                "CREATE TABLE activations (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, namespace TEXT NOT NULL, name_key TEXT NOT NULL, start INTEGER NOT NULL, doc TEXT NOT NULL);
                 INSERT INTO activations (id, namespace, name_key, start, doc) VALUES (x'00', 'guest', 'a', 1, '{}');",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path(), Duration::from_secs(3600), 10, true).unwrap();
        let q = ListQuery {
            skip: 0,
            limit: 10,
            name: None,
            since: None,
            upto: None,
            docs: false,
            count: false,
        };
        assert_eq!(store.count_sync("guest", &q).unwrap(), 1);
        // and a second open finds the column there
        drop(store);
        SqliteStore::open(dir.path(), Duration::from_secs(3600), 10, true).unwrap();
    }

    fn activation(i: i64) -> Activation {
        Activation {
            duration_ms: None,
            namespace: "guest".into(),
            name: "a".into(),
            subject: "guest".into(),
            activation_id: ActivationId::generate(),
            start: 1_700_000_000_000 + i,
            end: 1_700_000_000_001 + i,
            cause: None,
            response: crate::whisk::ActivationResponse::success(serde_json::json!({"i": i}), None),
            logs: vec![],
            version: "0.0.1".into(),
            publish: false,
            annotations: vec![],
        }
    }

    /// Records another store holds: a completed record replaces its skeleton in the
    /// journal, survives a reopen as completed, is offered to the sweep once old
    /// enough, and leaves the journal when the store has it.
    #[test]
    fn completed_records_wait_in_the_journal_until_the_store_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let (running, done) = (activation(1), activation(2));
        let record = Record::new(done.clone());
        {
            let j = SqliteStore::open(dir.path(), Duration::from_secs(3600), 10, false).unwrap();
            j.journal(&[running.clone(), done.clone()], &[]).unwrap();
            j.journal(&[], std::slice::from_ref(&record)).unwrap();
        }
        let j = SqliteStore::open(dir.path(), Duration::from_secs(3600), 10, false).unwrap();
        let mut entries = j.pending().unwrap();
        entries.sort_by_key(|e| e.completed);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].activation.activation_id, running.activation_id);
        assert!(!entries[0].completed);
        assert_eq!(entries[1].activation, done);
        assert!(entries[1].completed);
        let now = crate::context::epoch_ms(SystemTime::now());
        assert!(j.completed_backlog(now - 60_000, 10).unwrap().is_empty());
        let backlog = j.completed_backlog(now + 1, 10).unwrap();
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].doc, record.doc);
        j.apply(&[], &backlog).unwrap();
        let left = j.pending().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].activation.activation_id, running.activation_id);
    }
}
