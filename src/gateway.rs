//! The gateway's shared state.
//!
//! A [`Runtime`] is everything built from one policy: the routing table, the
//! controller client, the Lambda client and the metadata caches. The [`Gateway`] holds
//! the current runtime behind an atomic pointer; a request takes a snapshot when it
//! arrives and finishes on it, whatever happens to the policy meanwhile.

use crate::controller::ControllerClient;
use crate::lambda::{LambdaInvoker, StaticCredentials};
use crate::metadata::ControllerDirectory;
use crate::policy::Policy;
use arc_swap::ArcSwap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Everything built from one policy.
pub struct Runtime {
    /// The compiled policy.
    pub policy: Arc<Policy>,
    /// Client to the controller.
    pub controller: ControllerClient,
    /// Client to Lambda.
    pub lambda: LambdaInvoker,
    /// Identity and action metadata.
    pub directory: ControllerDirectory,
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
    pub async fn build(policy: Arc<Policy>, opts: &BuildOptions) -> anyhow::Result<Self> {
        let controller = ControllerClient::new(&policy.controller)?;
        let lambda = LambdaInvoker::new(&policy.lambda, opts.lambda_credentials.as_ref()).await?;
        let directory = ControllerDirectory::new(controller.clone(), &policy.metadata);
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
    /// Bounds the invocations running in the background (non-blocking invocations and
    /// blocking ones whose client stopped waiting).
    pub background: Arc<Semaphore>,
}

impl Gateway {
    /// A gateway serving `runtime`.
    pub fn new(runtime: Runtime) -> Arc<Self> {
        let permits = runtime.policy.lambda.max_background;
        Arc::new(Self {
            runtime: ArcSwap::from_pointee(runtime),
            background: Arc::new(Semaphore::new(permits)),
        })
    }

    /// Builds the runtime for `policy` and a gateway serving it.
    pub async fn start(policy: Policy, opts: &BuildOptions) -> anyhow::Result<Arc<Self>> {
        Ok(Self::new(Runtime::build(Arc::new(policy), opts).await?))
    }

    /// The current runtime (a request keeps this snapshot until it completes).
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }
}
