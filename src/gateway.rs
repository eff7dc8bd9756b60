//! The gateway's shared state.
//!
//! A [`Runtime`] is everything built from one policy: the routing table, the
//! controller client, the Lambda client and the metadata caches. The [`Gateway`] holds
//! the current runtime behind an atomic pointer; a request takes a snapshot when it
//! arrives and finishes on it, whatever happens to the policy meanwhile. What outlives
//! a policy — the activation recorder, metrics, the background invocations — lives in
//! the gateway itself.

use crate::activation::Recorder;
use crate::controller::ControllerClient;
use crate::couchdb::CouchDb;
use crate::lambda::{LambdaInvoker, StaticCredentials};
use crate::metadata::Directory;
use crate::policy::{Policy, StoreKind};
use crate::telemetry::Metrics;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// Everything built from one policy.
pub struct Runtime {
    /// The compiled policy.
    pub policy: Arc<Policy>,
    /// Client to the controller.
    pub controller: ControllerClient,
    /// Client to Lambda.
    pub lambda: LambdaInvoker,
    /// Identity and action metadata.
    pub directory: Directory,
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

impl Runtime {
    /// Builds the runtime for `policy`.
    pub async fn build(
        policy: Arc<Policy>,
        opts: &BuildOptions,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let controller = ControllerClient::new(&policy.controller)?;
        let lambda = LambdaInvoker::new(&policy.lambda, opts.lambda_credentials.as_ref()).await?;
        let directory = Directory::new(&policy, controller.clone(), metrics)?;
        Ok(Self {
            policy,
            controller,
            lambda,
            directory,
        })
    }
}

/// The gateway: the current runtime plus what outlives policy changes.
pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    /// Bounds the invocations running on Lambda (blocking and non-blocking), so
    /// invocations whose clients stopped waiting cannot pile up.
    pub invocations: Arc<Semaphore>,
    /// Every invocation task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Activation records.
    pub recorder: Arc<Recorder>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl Gateway {
    /// Builds the runtime for `policy`, opens the activation store, and returns a
    /// gateway serving it.
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
        let permits = policy.lambda.max_invocations;
        let runtime = Runtime::build(Arc::new(policy), opts, metrics.clone()).await?;
        Ok(Arc::new(Self {
            runtime: ArcSwap::from_pointee(runtime),
            invocations: Arc::new(Semaphore::new(permits)),
            tasks: TaskTracker::new(),
            recorder,
            metrics,
        }))
    }

    /// The current runtime (a request keeps this snapshot until it completes).
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// After the server stopped accepting: waits up to `drain` for invocations still
    /// running, then writes every queued record.
    pub async fn shutdown(&self, drain: Duration) {
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
    }
}
