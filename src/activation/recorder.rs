//! The recorder: every activation record passes through a local journal before it
//! goes anywhere else, and leaves the response path through bounded queues.
//!
//! - **Journaled before answered.** An accepted non-blocking invocation is journaled
//!   (its skeleton) before its 202 is sent; a blocking invocation's completed record
//!   is journaled before its answer is sent ([`Recorder::commit`]). Journal writes
//!   are group-committed: one SQLite transaction for every invocation that arrived
//!   while the previous one committed, on a task of their own that never waits on
//!   the record store. After a crash, skeletons without a record are completed on
//!   start-up as whisk internal errors saying the gateway restarted, and completed
//!   records are written on, so every activation id a client received ends with a
//!   record.
//! - **Embedded store: the journal is the store.** A completed record is written
//!   once, where it is read, replacing its skeleton in the same transaction.
//! - **Other stores (CouchDB).** The completed record waits in the journal until the
//!   store has it. A batch that keeps failing is retried with backoff for
//!   `write_retry`, then left to the journal (counted as deferred) and written again
//!   by a sweep every `write_retry` until the store takes it; nothing is dropped.
//! - **Backpressure, not loss.** When the store cannot keep up the queues fill and
//!   callers wait. Only a record the journal itself could not take (the embedded
//!   database failing) is dropped after `write_retry`: counted
//!   (`owl_activation_records_dropped_total`), logged with its id, and visible in
//!   readiness.
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

/// Work for the record writer: records on their way to a store other than the
/// journal (or retries of records the journal could not take).
enum Op {
    Write {
        records: Vec<Record>,
        /// The journal holds them: a batch the store keeps refusing is left there
        /// (deferred), not dropped.
        journaled: bool,
        /// Told whether the store took them (the sweep waits for it).
        done: Option<oneshot::Sender<bool>>,
    },
    Flush(oneshot::Sender<()>),
}

/// The answer to a caller waiting for its journal entry.
type Ack = oneshot::Sender<Result<(), StoreError>>;

/// Work on the journal, on a task of its own: what makes a 202 or a blocking answer
/// safe must never wait behind a record store that is retrying.
enum JournalOp {
    /// An accepted invocation's skeleton.
    Pending(Box<Activation>, Ack),
    /// A completed record; acknowledged once durable when the caller waits for it.
    Commit(Box<Record>, Option<Ack>),
    /// Forget the entry of an invocation answered elsewhere.
    Discard(ActivationId),
    /// Acknowledged once everything before it is written.
    Flush(oneshot::Sender<()>),
}

/// Health of the record path, for readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecorderHealth {
    /// True while the last write succeeded.
    pub(crate) healthy: bool,
    /// The last write error, if the last write failed.
    pub(crate) last_error: Option<String>,
}

/// Writes activation records.
pub struct Recorder {
    journal_tx: mpsc::Sender<JournalOp>,
    store: Arc<dyn ActivationStore>,
    healthy: Arc<AtomicBool>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
    metrics: Arc<Metrics>,
    /// The record writer and the journal sweep, stopped by [`close`](Self::close).
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// How long `close` waits for the store.
    close_wait: Duration,
    /// The journal's completed records the writer does not hold (record stores other
    /// than the journal only).
    backlog: Option<Arc<Backlog>>,
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
        // The record writer's queue holds whole groups (each at most `batch` records):
        // sized so that it holds about `queue` records.
        let (tx, rx) = mpsc::channel((cfg.queue / cfg.batch.max(1)).max(2));
        let (journal_tx, journal_rx) = mpsc::channel(cfg.queue);
        let healthy = Arc::new(AtomicBool::new(true));
        let last_error = Arc::new(std::sync::Mutex::new(None));
        metrics.store_healthy.set(1);
        let labels = StoreLabels {
            store: store.kind().to_string(),
        };
        let writer_idle = Arc::new(AtomicBool::new(true));
        let backlog = (!records_in_journal).then(|| {
            Arc::new(Backlog {
                journal: journal.clone(),
                writer: tx.clone(),
                batch: cfg.batch,
                metrics: metrics.clone(),
                draining: Mutex::new(()),
                overflowed: AtomicBool::new(false),
            })
        });
        tokio::spawn(
            JournalWriter {
                rx: journal_rx,
                writer: tx.clone(),
                // Blocking answers wait on this thread: normal priority.
                db: DbThread::start("owl-journal", false)?,
                journal: journal.clone(),
                records_in_journal,
                batch: cfg.batch,
                healthy: healthy.clone(),
                last_error: last_error.clone(),
                metrics: metrics.clone(),
                labels: labels.clone(),
                backlog: backlog.clone(),
            }
            .run(),
        );
        let writer = Writer {
            rx,
            db: DbThread::start("owl-records", true)?,
            idle: writer_idle.clone(),
            journal: journal.clone(),
            store: store.clone(),
            records_in_journal,
            batch: cfg.batch,
            write_retry: cfg.write_retry,
            healthy: healthy.clone(),
            last_error: last_error.clone(),
            metrics: metrics.clone(),
            labels,
        };
        let mut tasks = vec![tokio::spawn(writer.run())];
        if let Some(backlog) = &backlog {
            tasks.push(tokio::spawn(
                Sweep {
                    backlog: backlog.clone(),
                    writer: tx.clone(),
                    writer_idle,
                    every: cfg.write_retry.max(Duration::from_secs(1)),
                }
                .run(),
            ));
        }
        let recorder = Arc::new(Self {
            journal_tx,
            store: store.clone(),
            healthy,
            last_error,
            metrics: metrics.clone(),
            tasks: Mutex::new(tasks),
            close_wait: cfg.write_retry + Duration::from_secs(5),
            backlog,
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

    /// Completes the journal's skeletons left by a previous run: invocations that never
    /// completed are recorded as interrupted. (Completed records it left are the
    /// sweep's, which starts with them.)
    async fn recover(&self, journal: &Arc<SqliteStore>) {
        let j = journal.clone();
        let entries = match tokio::task::spawn_blocking(move || j.skeletons()).await {
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
        for mut act in entries {
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

    /// Journals a completed record and returns once it is durable — in the embedded
    /// store, or in the journal until the record store has it. For an answer that
    /// must not leave before its record is safe. On an error the record is still on
    /// its way to the store (retried); only the guarantee is missing.
    pub(crate) async fn commit(&self, record: Record) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.metrics.record_queue_depth.inc();
        if self
            .journal_tx
            .send(JournalOp::Commit(Box::new(record), Some(ack)))
            .await
            .is_err()
        {
            self.metrics.record_queue_depth.dec();
            return Err(StoreError("recorder stopped".into()));
        }
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
        if self
            .journal_tx
            .send(JournalOp::Commit(Box::new(record), None))
            .await
            .is_err()
        {
            self.metrics.record_queue_depth.dec();
            tracing::error!("recorder stopped; activation record not written");
        }
    }

    /// Forgets a journal entry whose invocation was answered elsewhere.
    pub(crate) async fn discard(&self, id: ActivationId) {
        let _ = self.journal_tx.send(JournalOp::Discard(id)).await;
    }

    /// Waits until everything queued so far is written — or left in the journal,
    /// when the store refuses it past `write_retry`. Records the writer's full queue
    /// left to the journal are written here too, not at the next sweep.
    pub async fn flush(&self) {
        let started = crate::context::epoch_ms(SystemTime::now()) + 1;
        let (ack, done) = oneshot::channel();
        if self.journal_tx.send(JournalOp::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
        if let Some(backlog) = &self.backlog
            && backlog.overflowed.swap(false, Ordering::SeqCst)
        {
            backlog.drain(started).await;
        }
    }

    /// Flushes and stops the writer and the sweep. A store that keeps failing is not
    /// waited for past `write_retry`: what it has not taken stays in the journal for
    /// the next start.
    pub(crate) async fn close(&self) {
        if tokio::time::timeout(self.close_wait, self.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                "the record store did not take every record before shutdown; the rest stays in the journal for the next start"
            );
        }
        for h in self.tasks.lock().await.drain(..) {
            h.abort();
        }
    }

    /// Reads, when owl serves them from its own store.
    pub fn reader(&self) -> Option<&dyn ActivationReader> {
        self.store.reader()
    }

    /// The store's kind.
    pub(crate) fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Current health.
    pub(crate) fn health(&self) -> RecorderHealth {
        RecorderHealth {
            healthy: self.healthy.load(Ordering::SeqCst),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

fn open_journal(cfg: &ActivationsConfig, holds_records: bool) -> anyhow::Result<Arc<SqliteStore>> {
    SqliteStore::open_with(
        &cfg.data_dir,
        cfg.retention,
        cfg.max_records,
        holds_records,
        cfg.fsync,
    )
        .map(Arc::new)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the activation store in {} ({e}); [activations] data_dir must be a writable directory",
                cfg.data_dir.display()
            )
        })
}

/// A thread that runs SQLite work. The journal's runs at normal priority (answers
/// wait for it); the record writer's at a lower one (nice ≈ 10), so clearing the
/// journal behind a store yields the CPU to invocations.
#[derive(Clone)]
struct DbThread {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl DbThread {
    /// A thread named `name`; `lower`: at the lower priority.
    fn start(name: &str, lower: bool) -> std::io::Result<Self> {
        let (jobs, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if lower
                    && let Ok(p) = thread_priority::ThreadPriorityValue::try_from(25u8)
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
    /// Set while nothing is in hand (for the sweep).
    idle: Arc<AtomicBool>,
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
    labels: StoreLabels,
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

/// Marks the store healthy again.
fn note_success(
    healthy: &AtomicBool,
    last_error: &std::sync::Mutex<Option<String>>,
    metrics: &Metrics,
) {
    if !healthy.swap(true, Ordering::SeqCst) {
        tracing::info!("activation store writable again");
    }
    metrics.store_healthy.set(1);
    if let Ok(mut e) = last_error.lock() {
        *e = None;
    }
}

/// The journal's own writer: each group of entries that arrived while the previous
/// group committed is committed in one transaction, never behind the record store's
/// retries.
struct JournalWriter {
    rx: mpsc::Receiver<JournalOp>,
    /// The record writer, for records another store holds (and for retries).
    writer: mpsc::Sender<Op>,
    db: DbThread,
    journal: Arc<SqliteStore>,
    records_in_journal: bool,
    batch: usize,
    healthy: Arc<AtomicBool>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
    metrics: Arc<Metrics>,
    labels: StoreLabels,
    /// Told when the writer's full queue left records to the journal.
    backlog: Option<Arc<Backlog>>,
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
            let mut completed = Vec::new();
            let mut acks = Vec::new();
            let mut discards = Vec::new();
            let mut flushes = Vec::new();
            for op in ops.drain(..) {
                match op {
                    JournalOp::Pending(a, ack) => {
                        pending.push(*a);
                        acks.push(ack);
                    }
                    JournalOp::Commit(r, ack) => {
                        completed.push(*r);
                        acks.extend(ack);
                    }
                    JournalOp::Discard(id) => discards.push(id),
                    JournalOp::Flush(ack) => flushes.push(ack),
                }
            }
            if !pending.is_empty() || !completed.is_empty() {
                // No retries here: callers wait for this answer.
                let j = self.journal.clone();
                let completed = Arc::new(completed);
                let group = completed.clone();
                let result = self.db.run(move || j.journal(&pending, &group)).await;
                match &result {
                    Ok(()) if self.records_in_journal => {
                        note_success(&self.healthy, &self.last_error, &self.metrics)
                    }
                    Ok(()) => {}
                    // The record writer says when the store is writable again.
                    Err(e) => note_failure(&self.healthy, &self.last_error, &self.metrics, e),
                }
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
                let records = Arc::try_unwrap(completed).unwrap_or_else(|a| (*a).clone());
                if !records.is_empty() {
                    if result.is_ok() && self.records_in_journal {
                        // Written where they are read: done.
                        let n = records.len();
                        self.metrics
                            .records_written
                            .get_or_create(&self.labels)
                            .inc_by(n as u64);
                        self.metrics.record_queue_depth.dec_by(n as i64);
                    } else if result.is_ok() {
                        // On to the record store. Never waited for: with the store
                        // slow or down and the writer's queue full, they stay in the
                        // journal and the sweep hands them over later.
                        let n = records.len() as i64;
                        let op = Op::Write {
                            records,
                            journaled: true,
                            done: None,
                        };
                        if self.writer.try_send(op).is_err() {
                            self.metrics.record_queue_depth.dec_by(n);
                            if let Some(b) = &self.backlog {
                                b.overflowed.store(true, Ordering::SeqCst);
                            }
                        }
                    } else {
                        // The journal refused them: retried by the writer until
                        // write_retry (this waits while its queue is full).
                        let _ = self
                            .writer
                            .send(Op::Write {
                                records,
                                journaled: false,
                                done: None,
                            })
                            .await;
                    }
                }
            }
            if !discards.is_empty() {
                let j = self.journal.clone();
                let _ = self.db.run(move || j.discard_pending(&discards)).await;
            }
            for ack in flushes {
                if let Err(mpsc::error::SendError(Op::Flush(ack))) =
                    self.writer.send(Op::Flush(ack)).await
                {
                    let _ = ack.send(());
                }
            }
        }
    }
}

/// The completed records the journal holds but the record writer does not (the
/// store refused them past `write_retry`, the writer's queue was full, or a previous
/// run left them), handed to the writer a batch at a time by the sweep and by
/// [`Recorder::flush`] — one drain at a time, so that none is sent twice by them.
struct Backlog {
    journal: Arc<SqliteStore>,
    writer: mpsc::Sender<Op>,
    batch: usize,
    metrics: Arc<Metrics>,
    draining: Mutex<()>,
    /// Set when the writer's full queue left records to the journal; a flush drains
    /// them then (records the store refused are the sweep's alone).
    overflowed: AtomicBool,
}

impl Backlog {
    /// Writes the journal's completed records journaled before `cutoff` (epoch ms),
    /// batch by batch, until one fails or none is left. (A record journaled before
    /// `cutoff` that the writer is also holding is written twice at worst: the
    /// second write is a conflict, which counts as written.)
    async fn drain(&self, cutoff: i64) {
        let _one_at_a_time = self.draining.lock().await;
        loop {
            let j = self.journal.clone();
            let batch = self.batch;
            let records =
                match tokio::task::spawn_blocking(move || j.completed_backlog(cutoff, batch)).await
                {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot read the journal's completed records");
                        return;
                    }
                    Err(_) => return,
                };
            let full = records.len() == self.batch;
            if records.is_empty() {
                return;
            }
            tracing::info!(
                count = records.len(),
                "writing completed activation records from the journal"
            );
            self.metrics.record_queue_depth.inc_by(records.len() as i64);
            let (done, written) = oneshot::channel();
            let op = Op::Write {
                records,
                journaled: true,
                done: Some(done),
            };
            if self.writer.send(op).await.is_err() || !written.await.unwrap_or(false) || !full {
                return;
            }
        }
    }
}

/// Drains the backlog at start-up, then every `every` while the writer is idle.
struct Sweep {
    backlog: Arc<Backlog>,
    writer: mpsc::Sender<Op>,
    /// True while the writer has nothing queued or in hand: then no record older than
    /// the sweep's cutoff is on its way to the store, and none is sent twice.
    writer_idle: Arc<AtomicBool>,
    every: Duration,
}

impl Sweep {
    async fn run(self) {
        // At start-up everything in the journal is a previous run's.
        let mut cutoff = crate::context::epoch_ms(SystemTime::now()) + 1;
        loop {
            if self.writer_idle.load(Ordering::SeqCst)
                && self.writer.capacity() == self.writer.max_capacity()
            {
                self.backlog.drain(cutoff).await;
            }
            tokio::time::sleep(self.every).await;
            cutoff = crate::context::epoch_ms(SystemTime::now()) - self.every.as_millis() as i64;
        }
    }
}

impl Writer {
    async fn run(mut self) {
        let mut ops = Vec::with_capacity(self.batch);
        loop {
            ops.clear();
            self.idle.store(true, Ordering::SeqCst);
            if self.rx.recv_many(&mut ops, self.batch).await == 0 {
                return;
            }
            self.idle.store(false, Ordering::SeqCst);
            let mut journaled = Vec::new();
            let mut unjournaled = Vec::new();
            let mut dones = Vec::new();
            let mut flushes = Vec::new();
            for op in ops.drain(..) {
                match op {
                    Op::Write {
                        records,
                        journaled: true,
                        done,
                    } => {
                        journaled.extend(records);
                        dones.extend(done);
                    }
                    Op::Write { records, done, .. } => {
                        unjournaled.extend(records);
                        dones.extend(done);
                    }
                    Op::Flush(ack) => flushes.push(ack),
                }
            }
            let mut all_written = true;
            for (mut records, in_journal) in [(journaled, true), (unjournaled, false)] {
                // At most `batch` records per store write.
                while !records.is_empty() {
                    let rest = records.split_off(records.len().min(self.batch));
                    let n = records.len() as i64;
                    all_written &= self.write(records, in_journal).await;
                    self.metrics.record_queue_depth.dec_by(n);
                    records = rest;
                }
            }
            for d in dones {
                let _ = d.send(all_written);
            }
            for f in flushes {
                let _ = f.send(());
            }
        }
    }

    /// One attempt: into the store, then out of the journal (one transaction in the
    /// embedded store, where the journal is the store).
    async fn attempt(&self, batch: &Arc<Vec<Record>>) -> Result<(), StoreError> {
        if !self.records_in_journal {
            self.store.write(batch.clone()).await?;
        }
        let j = self.journal.clone();
        let b = batch.clone();
        self.db.run(move || j.apply(&[], &b)).await
    }

    /// Writes `batch`, retrying with backoff for `write_retry`; then leaves it to the
    /// journal (`in_journal`) or drops it. True when the store took it.
    async fn write(&self, batch: Vec<Record>, in_journal: bool) -> bool {
        // Shared, not cloned, across retries.
        let batch = Arc::new(batch);
        let deadline = Instant::now() + self.write_retry;
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = self.attempt(&batch).await;
            match result {
                Ok(()) => {
                    note_success(&self.healthy, &self.last_error, &self.metrics);
                    self.metrics
                        .records_written
                        .get_or_create(&self.labels)
                        .inc_by(batch.len() as u64);
                    return true;
                }
                Err(e) => {
                    note_failure(&self.healthy, &self.last_error, &self.metrics, &e);
                    self.metrics
                        .record_write_failures
                        .get_or_create(&self.labels)
                        .inc();
                    if Instant::now() + backoff > deadline {
                        let ids: Vec<&str> = batch
                            .iter()
                            .map(|r| r.activation.activation_id.as_str())
                            .collect();
                        if in_journal {
                            self.metrics
                                .records_deferred
                                .get_or_create(&self.labels)
                                .inc_by(batch.len() as u64);
                            tracing::warn!(error = %e, count = ids.len(), ids = ?ids, "activation records left in the journal: the store kept failing; they are written again later");
                        } else {
                            self.metrics
                                .records_dropped
                                .get_or_create(&self.labels)
                                .inc_by(batch.len() as u64);
                            tracing::error!(error = %e, count = ids.len(), ids = ?ids, "activation records dropped: the store kept failing");
                        }
                        return false;
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "activation record write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
