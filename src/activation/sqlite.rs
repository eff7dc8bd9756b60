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

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
    // only an OS crash may lose the last transactions.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
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
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("owl.db");
        let writer = open(&path)?;
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
        let reader = open(&path)?;
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

    /// Removes pending entries (completed elsewhere, e.g. a fallback the client saw).
    pub fn discard_pending(&self, ids: &[ActivationId]) -> Result<(), StoreError> {
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

    /// Every pending entry (after a restart: invocations that never completed).
    pub fn pending(&self) -> Result<Vec<Activation>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare("SELECT doc FROM pending ORDER BY created")?;
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
            let conn = open(&dir.path().join("owl.db")).unwrap();
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
}
