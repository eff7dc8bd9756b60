//! One gateway's lifecycle, written once: [`start`] builds the gateway from a policy,
//! binds the API listener and the admin listener and serves both; [`Serving::shutdown`]
//! takes it down in the documented order (docs/operations.md, "Shutdown"). `owl
//! serve`, `owl demo`, the tests and the benchmarks all start and stop a gateway
//! through here, so the order and the drain deadline cannot drift between them.

use crate::activation::ActivationStore;
use crate::gateway::{BuildOptions, Gateway};
use crate::policy::Policy;
use crate::server::{self, ServerLimits};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the admin listener waits for its own requests at the very end.
const ADMIN_DRAIN: Duration = Duration::from_secs(1);

/// What a gateway is started with.
pub struct Config {
    /// The policy (its `[server]` settings are the listeners' limits).
    pub policy: Policy,
    /// The API listener's address (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The admin listener's address (`/metrics`, `/readyz`, `/owl/status`), or none.
    pub admin_listen: Option<SocketAddr>,
    /// How the gateway's clients are built.
    pub options: BuildOptions,
    /// A record store owl does not ship (tests' fault injection); `None` uses the
    /// policy's `[activations] store`.
    pub store: Option<Arc<dyn ActivationStore>>,
    /// Connection limits other than the policy's (tests).
    pub limits: Option<ServerLimits>,
}

impl Config {
    /// `policy` served on `listen` with the admin listener on `admin_listen`.
    pub fn new(policy: Policy, listen: SocketAddr, admin_listen: Option<SocketAddr>) -> Self {
        Self {
            policy,
            listen,
            admin_listen,
            options: BuildOptions::default(),
            store: None,
            limits: None,
        }
    }
}

/// How to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// As in production: readiness fails, owl keeps serving for `[server]
    /// shutdown_delay` so load balancers stop sending, then stops accepting and drains.
    Graceful,
    /// Without the `shutdown_delay` wait (nothing routes to this gateway: the demo,
    /// tests, benchmarks). Requests and invocations still drain and records are
    /// still flushed.
    Fast,
}

/// A running gateway.
pub struct Serving {
    gateway: Arc<Gateway>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    tls: bool,
    shutdown_delay: Duration,
    drain: Duration,
    stop: CancellationToken,
    api: Option<JoinHandle<std::io::Result<()>>>,
    admin_stop: CancellationToken,
    admin: Option<JoinHandle<std::io::Result<()>>>,
}

/// Builds the gateway from `config.policy` and serves it.
pub async fn start(config: Config) -> anyhow::Result<Serving> {
    let Config {
        policy,
        listen,
        admin_listen,
        options,
        store,
        limits,
    } = config;
    let tls = match (&policy.server.tls_cert, &policy.server.tls_key) {
        (Some(c), Some(k)) => Some(server::tls::acceptor(c, k)?),
        _ => None,
    };
    let limits = limits.unwrap_or_else(|| ServerLimits::from(&policy.server));
    let shutdown_delay = policy.server.shutdown_delay;
    // Bind before building: a taken port fails at once, before any client is built.
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let admin_listener = match admin_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (--admin-listen)"))?,
        ),
        None => None,
    };
    let gateway = match store {
        Some(store) => Gateway::start_with_store(policy, &options, store).await?,
        None => Gateway::start(policy, &options).await?,
    };
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let api = tokio::spawn(server::run(
        listener,
        server::app(gateway.clone()),
        tls.clone(),
        limits.clone(),
        stop.clone().cancelled_owned(),
    ));
    // The admin listener outlives the drain: probes see readiness fail while in-flight
    // requests finish, and metrics stay readable until the very end.
    let admin_stop = CancellationToken::new();
    let (admin, admin_addr) = match admin_listener {
        Some(l) => {
            let a = l.local_addr()?;
            let task = tokio::spawn(server::run(
                l,
                server::admin_app(gateway.clone()),
                None,
                ServerLimits {
                    drain_timeout: ADMIN_DRAIN,
                    ..limits.clone()
                },
                admin_stop.clone().cancelled_owned(),
            ));
            (Some(task), Some(a))
        }
        None => (None, None),
    };
    Ok(Serving {
        gateway,
        addr,
        admin_addr,
        tls: tls.is_some(),
        shutdown_delay,
        drain: limits.drain_timeout,
        stop,
        api: Some(api),
        admin_stop,
        admin,
    })
}

impl Serving {
    /// The gateway being served.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// The API listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The API's base URL (`http://…` or `https://…`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Serves until `signal` resolves, then shuts down gracefully.
    pub(crate) async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        self.shutdown(Shutdown::Graceful).await
    }

    /// Stops: readiness fails; with [`Shutdown::Graceful`] owl keeps serving for
    /// `shutdown_delay`; then the listener closes, and open requests and running
    /// invocations drain under one deadline, `drain_timeout` from that moment (an
    /// invocation still running then is journaled and completed as interrupted at the
    /// next start); every queued record is written; the admin listener closes last.
    pub async fn shutdown(mut self, how: Shutdown) -> anyhow::Result<()> {
        self.gateway.begin_drain();
        if how == Shutdown::Graceful {
            tokio::time::sleep(self.shutdown_delay).await;
        }
        let deadline = Instant::now() + self.drain;
        self.stop.cancel();
        // `server::run` gives its connections `drain` from the same moment.
        let served = match self.api.take() {
            Some(api) => api.await,
            None => Ok(Ok(())),
        };
        self.gateway
            .shutdown(deadline.saturating_duration_since(Instant::now()))
            .await;
        self.admin_stop.cancel();
        if let Some(admin) = self.admin.take() {
            let _ = admin.await;
        }
        match served {
            Ok(r) => r.context("the API listener failed"),
            Err(e) => Err(anyhow::anyhow!("the API listener's task failed: {e}")),
        }
    }
}

impl Drop for Serving {
    /// A `Serving` dropped without [`shutdown`](Self::shutdown) (a test that panicked)
    /// stops accepting on both listeners; records already queued are still written by
    /// the recorder's own tasks.
    fn drop(&mut self) {
        self.stop.cancel();
        self.admin_stop.cancel();
    }
}
