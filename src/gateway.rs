//! The gateway's shared state.
//!
//! A [`Snapshot`] is everything built from one policy: the routing table, the
//! controller client, the Lambda client, the identity and metadata sources and their
//! caches. The [`Gateway`] holds the current snapshot behind an atomic pointer; a
//! request takes it when it arrives and finishes on it, whatever happens to the
//! policy meanwhile. What outlives a policy — the activation recorder, throttle
//! counters, circuit breakers, metrics, running invocations, and the restart-only
//! [`Settings`] the first policy fixed — lives in the gateway itself, behind methods.

use crate::activation::Recorder;
use crate::controller::ControllerClient;
use crate::couchdb::CouchDb;
use crate::lambda::breaker::Breakers;
use crate::lambda::{LambdaInvoker, StaticCredentials};
use crate::limits::Throttles;
use crate::metadata::Directory;
use crate::policy::{Policy, StoreKind};
use crate::telemetry::{Metrics, ReloadLabels};
use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// Everything built from one policy: what a request works on from arrival to answer.
pub struct Snapshot {
    /// The compiled policy.
    pub policy: Arc<Policy>,
    /// Client to the controller.
    pub controller: ControllerClient,
    /// Client to Lambda.
    pub lambda: LambdaInvoker,
    /// Identity and action metadata.
    pub directory: Directory,
    /// Runtime kinds the controller no longer runs.
    pub(crate) deprecated_kinds: crate::controller::api::DeprecatedKinds,
}

/// Start-up choices that are not part of the policy.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Static Lambda credentials (emulators only); `None` uses the AWS default chain.
    pub lambda_credentials: Option<StaticCredentials>,
}

impl BuildOptions {
    /// Options for a local Lambda emulator.
    pub fn emulator() -> Self {
        Self {
            lambda_credentials: Some(StaticCredentials::emulator()),
        }
    }
}

impl Snapshot {
    /// Builds the snapshot for `policy`.
    pub async fn build(
        policy: Arc<Policy>,
        opts: &BuildOptions,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let controller = ControllerClient::new(&policy.controller)?;
        let lambda = LambdaInvoker::new(&policy.lambda, opts.lambda_credentials.as_ref()).await?;
        let directory = Directory::new(&policy, controller.clone(), metrics)?;
        // Read the runtime manifest now, in the background: requests never wait for it.
        let deprecated_kinds = crate::controller::api::DeprecatedKinds::default();
        deprecated_kinds.refresh(
            &controller,
            policy.controller.timeout.min(Duration::from_secs(2)),
        );
        Ok(Self {
            policy,
            controller,
            lambda,
            directory,
            deprecated_kinds,
        })
    }
}

/// The last reload, for `/owl/status`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReloadStatus {
    /// The policy file, when loaded from one.
    pub file: Option<String>,
    /// Policies applied (start-up included).
    pub applied: u64,
    /// Reloads refused (the previous policy stayed).
    pub failed: u64,
    /// When the current policy was applied (epoch ms).
    pub(crate) applied_at_ms: i64,
    /// Why the last refused reload was refused.
    pub(crate) last_error: Option<String>,
}

/// How long the outcome of a remote readiness check is reused.
const CHECK_CACHE: Duration = Duration::from_secs(5);
/// Budget of each remote readiness check.
const CHECK_BUDGET: Duration = Duration::from_secs(2);

/// Cached outcomes of the readiness checks that leave the process.
#[derive(Default)]
struct RemoteChecks {
    cached: Mutex<Option<(Instant, Value, bool)>>,
}

/// The gateway: the current snapshot plus what outlives policy changes.
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    opts: BuildOptions,
    /// Bounds the invocations running on Lambda (blocking and non-blocking), so
    /// invocations whose clients stopped waiting cannot pile up.
    invocations: Arc<Semaphore>,
    /// Bounds the requests in flight (`[server] max_in_flight`).
    in_flight: Arc<Semaphore>,
    /// Every invocation task, so shutdown can wait for them.
    tasks: TaskTracker,
    recorder: Arc<Recorder>,
    throttles: Throttles,
    breakers: Breakers,
    metrics: Arc<Metrics>,
    draining: AtomicBool,
    reloads: Mutex<ReloadStatus>,
    /// Cached outcomes of readiness checks that leave the process.
    remote_checks: RemoteChecks,
    /// What the first policy fixed for the process lifetime (changes need a restart).
    settings: Settings,
}

/// The restart-only settings: read from the first policy at start-up and kept for the
/// process lifetime. A reload that changes them is applied otherwise and warned about;
/// readers of these values use [`Gateway::settings`], never the current snapshot's
/// policy, so a reload cannot half-apply them.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `[server]`: listeners, connection limits, body and drain timeouts.
    pub server: crate::policy::ServerConfig,
    /// `[activations] store`.
    pub(crate) activations_store: StoreKind,
    /// `[activations] data_dir`.
    pub data_dir: PathBuf,
    /// `[limits] backend`.
    pub(crate) throttle_backend: crate::policy::ThrottleBackend,
    /// `[limits] lease`.
    pub(crate) throttle_lease: std::time::Duration,
    /// `[lambda] max_invocations`.
    pub(crate) max_invocations: usize,
}

impl Settings {
    fn of(p: &Policy) -> Self {
        Self {
            server: p.server.clone(),
            activations_store: p.activations.store,
            data_dir: p.activations.data_dir.clone(),
            throttle_backend: p.limits.backend.clone(),
            throttle_lease: p.limits.lease,
            max_invocations: p.lambda.max_invocations,
        }
    }
}

impl Gateway {
    /// The readiness checks that leave the process — the controller answers, Lambda
    /// credentials resolve, the throttles' Redis is probed — each within a budget and
    /// cached for a few seconds, so frequent probes do not turn into load. Returns each
    /// check's outcome and whether all passed.
    pub(crate) async fn remote_checks(&self) -> (Value, bool) {
        if let Some((at, v, ok)) = self
            .remote_checks
            .cached
            .lock()
            .ok()
            .and_then(|c| c.clone())
            && at.elapsed() < CHECK_CACHE
        {
            return (v, ok);
        }
        let rt = self.snapshot();
        let controller = async {
            let req = http::Request::get(rt.controller.uri("/api/v1"))
                .body(axum::body::Body::empty())
                .expect("static request");
            match rt.controller.send_within(req, CHECK_BUDGET).await {
                Ok(r) if !r.status().is_server_error() => Ok(()),
                Ok(r) => Err(format!("the controller answered {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        };
        let (controller, credentials, ()) = tokio::join!(
            controller,
            rt.lambda.credentials_resolvable(CHECK_BUDGET),
            self.throttles.probe()
        );
        let ok = controller.is_ok() && credentials.is_ok();
        let v = json!({
            "controller": { "ok": controller.is_ok(), "error": controller.err() },
            "lambda_credentials": { "ok": credentials.is_ok(), "error": credentials.err() },
        });
        if let Ok(mut c) = self.remote_checks.cached.lock() {
            *c = Some((Instant::now(), v.clone(), ok));
        }
        (v, ok)
    }

    /// Opens what lives for the whole process from `policy` (activation store,
    /// throttle counters), then applies `policy` as the first reload.
    pub async fn start(policy: Policy, opts: &BuildOptions) -> anyhow::Result<Arc<Self>> {
        let metrics = Arc::new(Metrics::new());
        let couch = match (&policy.couchdb, policy.activations.store) {
            (Some(c), StoreKind::CouchDb) => Some((CouchDb::new(c)?, c.activations_db.clone())),
            _ => None,
        };
        let recorder = Recorder::start(&policy.activations, couch, metrics.clone()).await?;
        Self::assemble(policy, opts, recorder, metrics).await
    }

    /// Like [`start`](Self::start), with activation records going to `store` (for
    /// stores owl does not ship, and for fault injection in tests).
    pub async fn start_with_store(
        policy: Policy,
        opts: &BuildOptions,
        store: Arc<dyn crate::activation::ActivationStore>,
    ) -> anyhow::Result<Arc<Self>> {
        let metrics = Arc::new(Metrics::new());
        let recorder =
            Recorder::start_with_store(&policy.activations, store, metrics.clone()).await?;
        Self::assemble(policy, opts, recorder, metrics).await
    }

    async fn assemble(
        policy: Policy,
        opts: &BuildOptions,
        recorder: Arc<Recorder>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Self>> {
        for w in &policy.warnings {
            tracing::warn!("{w}");
        }
        let settings = Settings::of(&policy);
        let throttles = Throttles::new(&policy.limits, metrics.clone())?;
        let source = policy.source.clone();
        let snapshot = Snapshot::build(Arc::new(policy), opts, metrics.clone()).await?;
        let gw = Arc::new(Self {
            invocations: Arc::new(Semaphore::new(settings.max_invocations)),
            in_flight: Arc::new(Semaphore::new(settings.server.max_in_flight)),
            snapshot: ArcSwap::from_pointee(snapshot),
            opts: opts.clone(),
            tasks: TaskTracker::new(),
            recorder,
            throttles,
            breakers: Breakers::new(metrics.clone()),
            metrics,
            draining: AtomicBool::new(false),
            reloads: Mutex::new(ReloadStatus::default()),
            remote_checks: Default::default(),
            settings,
        });
        gw.applied(source);
        Ok(gw)
    }

    /// Builds a snapshot for `policy` and makes it current (a reload). Requests in flight finish
    /// on the snapshot they started with.
    pub async fn apply(&self, policy: Policy) -> anyhow::Result<()> {
        if Settings::of(&policy) != self.settings {
            tracing::warn!(
                "the new policy changes [server], [activations] store or data_dir, [limits] backend or lease, or [lambda] max_invocations; those take effect at the next restart"
            );
        }
        for w in &policy.warnings {
            tracing::warn!("{w}");
        }
        let source = policy.source.clone();
        let snapshot = Snapshot::build(Arc::new(policy), &self.opts, self.metrics.clone()).await?;
        self.snapshot.store(Arc::new(snapshot));
        self.applied(source);
        Ok(())
    }

    /// Counts a policy made current (the first one included).
    fn applied(&self, source: String) {
        if let Ok(mut r) = self.reloads.lock() {
            r.applied += 1;
            r.applied_at_ms = crate::context::epoch_ms(SystemTime::now());
            r.file = Some(source);
        }
    }

    /// Reloads the policy file at `path`: a file that does not compile (or whose
    /// snapshot cannot be built) keeps the current policy, is logged with every error,
    /// and is counted.
    pub async fn reload_from(&self, path: &Path) -> Result<(), String> {
        let result = match Policy::load(path) {
            Err(e) => Err(e.to_string()),
            Ok(p) => self.apply(p).await.map_err(|e| format!("{e:#}")),
        };
        match &result {
            Ok(()) => {
                self.metrics
                    .reloads
                    .get_or_create(&ReloadLabels { result: "success" })
                    .inc();
                tracing::info!(file = %path.display(), routes = self.snapshot().policy.routes.len(), "policy reloaded");
            }
            Err(e) => {
                self.metrics
                    .reloads
                    .get_or_create(&ReloadLabels { result: "failure" })
                    .inc();
                if let Ok(mut r) = self.reloads.lock() {
                    r.failed += 1;
                    r.last_error = Some(e.clone());
                }
                tracing::error!(file = %path.display(), "policy reload refused; the previous policy stays:\n{e}");
            }
        }
        result
    }

    /// The current snapshot (a request keeps it until it completes).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The restart-only settings the first policy fixed.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Bounds the invocations running on Lambda (`[lambda] max_invocations`).
    pub fn invocations(&self) -> &Arc<Semaphore> {
        &self.invocations
    }

    /// Bounds the requests in flight (`[server] max_in_flight`).
    pub(crate) fn in_flight(&self) -> &Arc<Semaphore> {
        &self.in_flight
    }

    /// Every invocation task, so shutdown can wait for them.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Activation records.
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Namespace throttles.
    pub(crate) fn throttles(&self) -> &Throttles {
        &self.throttles
    }

    /// Circuit breakers of Lambda functions.
    pub(crate) fn breakers(&self) -> &Breakers {
        &self.breakers
    }

    /// The Prometheus registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The reload bookkeeping.
    pub fn reload_status(&self) -> ReloadStatus {
        self.reloads.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Starts draining: readiness fails from now on.
    pub(crate) fn begin_drain(&self) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            self.metrics.draining.set(1);
            tracing::info!("draining: readiness now fails");
        }
    }

    /// True while draining.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// After the server stopped accepting: waits up to `drain` for invocations still
    /// running, then writes every queued record.
    pub async fn shutdown(&self, drain: Duration) {
        self.begin_drain();
        self.tasks.close();
        if tokio::time::timeout(drain, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.tasks.len(),
                "drain timeout: invocations still running are completed as interrupted at the next start"
            );
        }
        self.recorder.close().await;
        self.throttles.close().await;
    }
}
