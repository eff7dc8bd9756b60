//! The recorder: activation records leave the response path through a bounded queue
//! and are written in batches by one writer task.
//!
//! - **Backpressure, not loss.** When the store cannot keep up, the queue fills and
//!   `complete` waits. A batch that keeps failing is retried with backoff for
//!   `write_retry`; only then are its records dropped — counted
//!   (`owl_activation_records_dropped_total`), logged with their ids, and visible in
//!   readiness.
//! - **Pending journal.** An accepted non-blocking invocation is journaled (durably,
//!   group-committed) before its 202 is sent. After a crash, journal entries without a
//!   record are completed on start-up as whisk internal errors saying the gateway
//!   restarted, so every accepted activation id ends with a record.
//! - **Flush on shutdown.** `flush` waits until everything queued is written.

use super::couchdb::CouchActivationStore;
use super::sqlite::{EmbeddedStore, SqliteStore};
use super::store::{ActivationReader, ActivationStore, Record, StoreError};
use crate::couchdb::CouchDb;
use crate::policy::{ActivationsConfig, StoreKind};
use crate::telemetry::{Metrics, StoreLabels};
use crate::whisk::{Activation, ActivationId, ActivationResponse};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Mutex, mpsc, oneshot};

/// The text of records completed after a restart.
pub const RESTART_MESSAGE: &str = "The activation was interrupted because the owl gateway restarted before it completed; the action may or may not have run.";

enum Op {
    Complete(Box<Record>),
    Flush(oneshot::Sender<()>),
}

/// Work on the pending journal, on a task of its own: an invocation's journal entry
/// (what makes its 202 safe) must never wait behind a record store that is retrying.
enum JournalOp {
    Pending(Box<Activation>, oneshot::Sender<Result<(), StoreError>>),
    Discard(ActivationId),
}

/// Health of the record path, for readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderHealth {
    /// True while the last write succeeded.
    pub healthy: bool,
    /// The last write error, if the last write failed.
    pub last_error: Option<String>,
}

/// Writes activation records.
pub struct Recorder {
    tx: mpsc::Sender<Op>,
    journal_tx: mpsc::Sender<JournalOp>,
    store: Arc<dyn ActivationStore>,
    healthy: Arc<AtomicBool>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
    metrics: Arc<Metrics>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Recorder {
    /// Opens the stores `cfg` names, completes journal entries left by a previous run,
    /// and starts the writer and the retention task.
    pub async fn start(
        cfg: &ActivationsConfig,
        couch: Option<(CouchDb, String)>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Self>> {
        let holds = cfg.store == StoreKind::Embedded;
        let journal = open_journal(cfg, holds)?;
        let store: Arc<dyn ActivationStore> = match (cfg.store, couch) {
            (StoreKind::Embedded, _) => Arc::new(EmbeddedStore(journal.clone())),
            (StoreKind::CouchDb, Some((db, name))) => Arc::new(CouchActivationStore::new(db, name)),
            (StoreKind::CouchDb, None) => anyhow::bail!("store = \"couchdb\" needs [couchdb]"),
        };
        Self::start_on(cfg, journal, store, holds, metrics).await
    }

    /// Like [`start`](Self::start) with records going to `store` (the journal stays in
    /// the data directory): for stores owl does not ship, and for fault injection.
    pub async fn start_with_store(
        cfg: &ActivationsConfig,
        store: Arc<dyn ActivationStore>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Self>> {
        let journal = open_journal(cfg, false)?;
        Self::start_on(cfg, journal, store, false, metrics).await
    }

    async fn start_on(
        cfg: &ActivationsConfig,
        journal: Arc<SqliteStore>,
        store: Arc<dyn ActivationStore>,
        records_in_journal: bool,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Self>> {
        let (tx, rx) = mpsc::channel(cfg.queue);
        let (journal_tx, journal_rx) = mpsc::channel(cfg.queue);
        let healthy = Arc::new(AtomicBool::new(true));
        let last_error = Arc::new(std::sync::Mutex::new(None));
        metrics.store_healthy.set(1);
        let db = DbThread::start()?;
        tokio::spawn(
            JournalWriter {
                rx: journal_rx,
                db: db.clone(),
                journal: journal.clone(),
                batch: cfg.batch,
                healthy: healthy.clone(),
                last_error: last_error.clone(),
                metrics: metrics.clone(),
            }
            .run(),
        );
        let writer = Writer {
            rx,
            db,
            journal: journal.clone(),
            store: store.clone(),
            records_in_journal,
            batch: cfg.batch,
            write_retry: cfg.write_retry,
            healthy: healthy.clone(),
            last_error: last_error.clone(),
            metrics: metrics.clone(),
        };
        let handle = tokio::spawn(writer.run());
        let recorder = Arc::new(Self {
            tx,
            journal_tx,
            store: store.clone(),
            healthy,
            last_error,
            metrics: metrics.clone(),
            writer: Mutex::new(Some(handle)),
        });
        recorder.recover(&journal).await;
        let pruner = store.clone();
        tokio::spawn(async move {
            loop {
                match pruner.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "activation retention"),
                    Err(e) => tracing::warn!(error = %e, "activation retention failed"),
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        });
        Ok(recorder)
    }

    /// Completes the journal entries of a previous run that never completed.
    async fn recover(&self, journal: &Arc<SqliteStore>) {
        let j = journal.clone();
        let pending = match tokio::task::spawn_blocking(move || j.pending()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the pending journal");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pending journal");
                return;
            }
        };
        let mut recovered = 0;
        for mut act in pending {
            match self
                .store
                .contains(&act.namespace, &act.activation_id)
                .await
            {
                Ok(true) => self.discard(act.activation_id.clone()).await,
                _ => {
                    act.end = crate::context::epoch_ms(SystemTime::now()).max(act.start);
                    act.response = ActivationResponse::whisk_error(RESTART_MESSAGE);
                    act.logs = Vec::new();
                    tracing::warn!(activation_id = %act.activation_id, "completing an activation interrupted by a restart");
                    self.complete(act).await;
                    recovered += 1;
                }
            }
        }
        if recovered > 0 {
            self.metrics.records_recovered.inc_by(recovered);
            tracing::warn!(
                count = recovered,
                "activations interrupted by the last restart were recorded as whisk internal errors"
            );
        }
    }

    /// Journals an accepted invocation; returns once it is durable.
    pub async fn pending(&self, skeleton: &Activation) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.journal_tx
            .send(JournalOp::Pending(Box::new(skeleton.clone()), ack))
            .await
            .map_err(|_| StoreError("recorder stopped".into()))?;
        done.await
            .map_err(|_| StoreError("recorder stopped".into()))?
    }

    /// Queues a completed record (waits while the queue is full). The record is
    /// serialised here, on the caller's task.
    pub async fn complete(&self, act: Activation) {
        self.complete_record(Record::new(act)).await;
    }

    /// Queues an already serialised record (waits while the queue is full).
    pub async fn complete_record(&self, record: Record) {
        self.metrics.record_queue_depth.inc();
        if self.tx.send(Op::Complete(Box::new(record))).await.is_err() {
            self.metrics.record_queue_depth.dec();
            tracing::error!("recorder stopped; activation record not written");
        }
    }

    /// Forgets a journal entry whose invocation was answered elsewhere.
    pub async fn discard(&self, id: ActivationId) {
        let _ = self.journal_tx.send(JournalOp::Discard(id)).await;
    }

    /// Waits until everything queued so far is written (or dropped).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Op::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Flushes and stops the writer.
    pub async fn close(&self) {
        self.flush().await;
        if let Some(h) = self.writer.lock().await.take() {
            h.abort();
        }
    }

    /// Reads, when owl serves them from its own store.
    pub fn reader(&self) -> Option<&dyn ActivationReader> {
        self.store.reader()
    }

    /// The store's kind.
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Current health.
    pub fn health(&self) -> RecorderHealth {
        RecorderHealth {
            healthy: self.healthy.load(Ordering::SeqCst),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

fn open_journal(cfg: &ActivationsConfig, holds_records: bool) -> anyhow::Result<Arc<SqliteStore>> {
    SqliteStore::open(&cfg.data_dir, cfg.retention, cfg.max_records, holds_records)
        .map(Arc::new)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the activation store in {} ({e}); [activations] data_dir must be a writable directory",
                cfg.data_dir.display()
            )
        })
}

/// The thread that runs the writer's SQLite work. It runs at a lower scheduling
/// priority than the request path (nice ≈ 10), so a burst of record writes yields the
/// CPU to invocations; the bounded queue absorbs the difference.
#[derive(Clone)]
struct DbThread {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl DbThread {
    fn start() -> std::io::Result<Self> {
        let (jobs, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        std::thread::Builder::new()
            .name("owl-records".into())
            .spawn(move || {
                if let Ok(p) = thread_priority::ThreadPriorityValue::try_from(25u8)
                    && let Err(e) = thread_priority::set_current_thread_priority(
                        thread_priority::ThreadPriority::Crossplatform(p),
                    )
                {
                    tracing::debug!(error = ?e, "cannot lower the record writer's priority");
                }
                while let Ok(job) = rx.recv() {
                    job();
                }
            })?;
        Ok(Self { jobs })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| StoreError("record writer thread stopped".into()))?;
        rx.await
            .map_err(|_| StoreError("record writer thread stopped".into()))?
    }
}

struct Writer {
    rx: mpsc::Receiver<Op>,
    db: DbThread,
    journal: Arc<SqliteStore>,
    store: Arc<dyn ActivationStore>,
    /// True when the store is the journal's own database (embedded): the record and
    /// the journal entry change in one transaction.
    records_in_journal: bool,
    batch: usize,
    write_retry: Duration,
    healthy: Arc<AtomicBool>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
    metrics: Arc<Metrics>,
}

/// Marks the store unhealthy with `e` (readiness and `owl_activation_store_healthy`).
fn note_failure(
    healthy: &AtomicBool,
    last_error: &std::sync::Mutex<Option<String>>,
    metrics: &Metrics,
    e: &StoreError,
) {
    healthy.store(false, Ordering::SeqCst);
    metrics.store_healthy.set(0);
    if let Ok(mut last) = last_error.lock() {
        *last = Some(e.to_string());
    }
}

/// The journal's own writer: entries group-committed as they come, never behind the
/// record store's retries.
struct JournalWriter {
    rx: mpsc::Receiver<JournalOp>,
    db: DbThread,
    journal: Arc<SqliteStore>,
    batch: usize,
    healthy: Arc<AtomicBool>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
    metrics: Arc<Metrics>,
}

impl JournalWriter {
    async fn run(mut self) {
        let mut ops = Vec::with_capacity(self.batch);
        loop {
            ops.clear();
            if self.rx.recv_many(&mut ops, self.batch).await == 0 {
                return;
            }
            let mut pending = Vec::new();
            let mut acks = Vec::new();
            let mut discards = Vec::new();
            for op in ops.drain(..) {
                match op {
                    JournalOp::Pending(a, ack) => {
                        pending.push(*a);
                        acks.push(ack);
                    }
                    JournalOp::Discard(id) => discards.push(id),
                }
            }
            if !pending.is_empty() {
                // No retries: a caller waits for this answer before accepting.
                let j = self.journal.clone();
                let result = self.db.run(move || j.apply(&pending, &[])).await;
                if let Err(e) = &result {
                    // Only failures are noted here: the record writer says when the
                    // store is writable again.
                    note_failure(&self.healthy, &self.last_error, &self.metrics, e);
                }
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
            if !discards.is_empty() {
                let j = self.journal.clone();
                let _ = self.db.run(move || j.discard_pending(&discards)).await;
            }
        }
    }
}

impl Writer {
    async fn run(mut self) {
        let mut ops = Vec::with_capacity(self.batch);
        loop {
            ops.clear();
            if self.rx.recv_many(&mut ops, self.batch).await == 0 {
                return;
            }
            let mut completed = Vec::new();
            let mut flushes = Vec::new();
            for op in ops.drain(..) {
                match op {
                    Op::Complete(a) => completed.push(*a),
                    Op::Flush(ack) => flushes.push(ack),
                }
            }
            if !completed.is_empty() {
                let n = completed.len() as i64;
                self.write_completed(completed).await;
                self.metrics.record_queue_depth.dec_by(n);
            }
            for f in flushes {
                let _ = f.send(());
            }
        }
    }

    async fn blocking_apply(
        &self,
        pending: Vec<Activation>,
        completed: Arc<Vec<Record>>,
    ) -> Result<(), StoreError> {
        let j = self.journal.clone();
        self.db.run(move || j.apply(&pending, &completed)).await
    }

    fn note(&self, result: &Result<(), StoreError>) {
        match result {
            Ok(()) => {
                if !self.healthy.swap(true, Ordering::SeqCst) {
                    tracing::info!("activation store writable again");
                }
                self.metrics.store_healthy.set(1);
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
            }
            Err(e) => note_failure(&self.healthy, &self.last_error, &self.metrics, e),
        }
    }

    async fn write_completed(&self, batch: Vec<Record>) {
        // Shared, not cloned, across retries.
        let batch = Arc::new(batch);
        let labels = StoreLabels {
            store: self.store.kind().to_string(),
        };
        let deadline = Instant::now() + self.write_retry;
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = if self.records_in_journal {
                self.blocking_apply(Vec::new(), batch.clone()).await
            } else {
                match self.store.write(batch.clone()).await {
                    Ok(()) => self.blocking_apply(Vec::new(), batch.clone()).await,
                    Err(e) => Err(e),
                }
            };
            self.note(&result);
            match result {
                Ok(()) => {
                    self.metrics
                        .records_written
                        .get_or_create(&labels)
                        .inc_by(batch.len() as u64);
                    return;
                }
                Err(e) => {
                    self.metrics
                        .record_write_failures
                        .get_or_create(&labels)
                        .inc();
                    if Instant::now() + backoff > deadline {
                        let ids: Vec<&str> = batch
                            .iter()
                            .map(|r| r.activation.activation_id.as_str())
                            .collect();
                        self.metrics
                            .records_dropped
                            .get_or_create(&labels)
                            .inc_by(batch.len() as u64);
                        tracing::error!(error = %e, count = ids.len(), ids = ?ids, "activation records dropped: the store kept failing");
                        return;
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "activation record write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
