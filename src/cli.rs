//! The command line: `owl serve`, `owl policy check|explain`, `owl demo`, `owl bench`,
//! `owl sync`.

use crate::policy::{Policy, explain::explain};
use crate::telemetry;
use crate::whisk::ActionPath;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// owl: an edge gateway for Apache OpenWhisk that answers mapped invocations from AWS
/// Lambda and proxies everything else to the controller.
#[derive(Debug, Parser)]
#[command(name = "owl", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "OWL_LOG_FORMAT", default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// The policy file.
        #[arg(long, env = "OWL_POLICY")]
        policy: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "OWL_LISTEN", default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// Address of the admin listener: /metrics, /readyz, /owl/status, /healthz.
        /// They name tenants and actions, so keep it off the public network (loopback,
        /// or a port that only probes and the metrics scraper reach).
        #[arg(long, env = "OWL_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
        admin_listen: SocketAddr,
    },
    /// Check or explain a policy file.
    Policy {
        /// What to do with the policy.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Run a self-contained demo on loopback: MiniStack as Lambda, a stand-in
    /// controller, and the gateway with policies/demo.toml.
    Demo {
        /// The demo policy.
        #[arg(long, default_value = "policies/demo.toml")]
        policy: PathBuf,
        /// Address the gateway listens on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Show the two invocations and exit instead of serving until Ctrl-C.
        #[arg(long)]
        once: bool,
    },
    /// Compare the standard path and the direct path on a real deployment: invoke the
    /// same action through the OpenWhisk API host and through owl in front of it, and
    /// print latency, throughput and the activations' waitTime/initTime/duration.
    Bench(BenchArgs),
    /// Keep a Lambda function in step with every action the policy maps: create,
    /// update and delete functions as actions change (docs/sync.md).
    Sync(SyncArgs),
}

/// `owl sync` options.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The policy file (its `[sync]` section and routes).
    #[arg(long, env = "OWL_POLICY")]
    pub policy: PathBuf,
    /// Handle every pending change and a full pass, then exit (non-zero if an action
    /// failed).
    #[arg(long)]
    pub once: bool,
    /// Print what would be done, change nothing (implies --once).
    #[arg(long)]
    pub dry_run: bool,
    /// Serve /metrics, /status and /healthz on this address while running.
    #[arg(long, env = "OWL_SYNC_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<SocketAddr>,
}

/// `owl bench` options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The OpenWhisk API host (the standard path), e.g. https://openwhisk.example.com.
    #[arg(long)]
    pub standard: String,
    /// owl in front of it (the direct path), e.g. http://owl.example.com:8080.
    #[arg(long)]
    pub direct: String,
    /// The action, NAMESPACE/ACTION or NAMESPACE/PACKAGE/ACTION; owl's policy should
    /// map it to Lambda.
    #[arg(long)]
    pub action: String,
    /// UUID:KEY of a namespace allowed to invoke it (as AUTH in ~/.wskprops).
    #[arg(long, env = "OWL_BENCH_AUTH", hide_env_values = true)]
    pub auth: String,
    /// The action's parameters, a JSON object.
    #[arg(long, default_value = "{}")]
    pub params: String,
    /// Open-loop rate, invocations per second (mind the namespace's invocation limits).
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Length of each run, e.g. 20s.
    #[arg(long, default_value = "20s", value_parser = parse_duration_arg)]
    pub duration: std::time::Duration,
    /// Closed-loop connections for a maximum-throughput run (0: skip it).
    #[arg(long, default_value_t = 0)]
    pub connections: usize,
    /// Repetitions; the two paths alternate within each.
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Warm-up invocations per path.
    #[arg(long, default_value_t = 10)]
    pub warm_up: usize,
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::policy::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration such as 500ms, 20s or 2m"))
}

/// `owl policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy; print every error with its line and column.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Show which route covers an action and what would happen to its invocations.
    Explain {
        /// The policy file.
        file: PathBuf,
        /// NAMESPACE/ACTION or NAMESPACE/PACKAGE/ACTION.
        action: String,
        /// UUID:KEY to read the action's metadata with, as that namespace's caller,
        /// when the metadata source is the controller (with the subjects database, an
        /// identities file or a service key owl reads it as the owner without one).
        /// With the metadata, a sequence's components are shown with where each runs.
        #[arg(long, env = "OWL_EXPLAIN_AUTH", hide_env_values = true)]
        auth: Option<String>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo talks to a person; its own log lines would only get in the way.
    let default_level = if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    };
    let json = matches!(cli.log_format, LogFormat::Json);
    match cli.command {
        Command::Policy { command } => {
            let _ = telemetry::logging::init(json, default_level, false);
            policy_command(command)
        }
        Command::Serve {
            policy,
            listen,
            admin_listen,
        } => block_on(async move {
            let telemetry = telemetry::logging::init(json, default_level, true)?;
            if telemetry.tracing() {
                tracing::info!("exporting traces over OTLP");
            }
            let result = serve(policy, listen, admin_listen).await;
            // The exporter's flush blocks; it must not hold up a runtime thread.
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
            result
        }),
        Command::Demo {
            policy,
            listen,
            once,
        } => block_on(async move {
            let _ = telemetry::logging::init(json, default_level, false);
            crate::demo::run(policy, listen, once).await
        }),
        Command::Sync(args) => block_on(async move {
            let _ = telemetry::logging::init(json, default_level, false);
            sync(args).await
        }),
        Command::Bench(args) => block_on(async move {
            let _ = telemetry::logging::init(json, "warn", false);
            let report = crate::loadtest::compare::compare(&args.into()).await?;
            emit(report);
            Ok(())
        }),
    }
}

/// Writes a command's report to stdout. A reader that went away (`owl policy explain
/// … | head -1`, or `grep -q`) is not owl's failure: exit 0 quietly, as command-line
/// tools do, instead of the panic (exit 101) of `print!` on a closed pipe.
fn emit(text: impl std::fmt::Display) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = write!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("owl: cannot write the report: {e}");
        std::process::exit(1);
    }
}

impl From<BenchArgs> for crate::loadtest::compare::CompareOptions {
    fn from(a: BenchArgs) -> Self {
        Self {
            standard: a.standard,
            direct: a.direct,
            action: a.action,
            auth: a.auth,
            params: a.params,
            rate: a.rate,
            duration: a.duration,
            connections: a.connections,
            repetitions: a.repetitions,
            warm_up: a.warm_up,
        }
    }
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("owl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("owl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn policy_command(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Check { file } => match Policy::load(&file) {
            Ok(p) => {
                for w in &p.warnings {
                    eprintln!("{w}");
                }
                emit(format_args!(
                    "{}: OK ({} route{})\n",
                    file.display(),
                    p.routes.len(),
                    if p.routes.len() == 1 { "" } else { "s" }
                ));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                let n = e.diagnostics.len();
                eprintln!(
                    "{}: {n} error{}",
                    file.display(),
                    if n == 1 { "" } else { "s" }
                );
                ExitCode::FAILURE
            }
        },
        PolicyCommand::Explain { file, action, auth } => {
            let policy = match Policy::load(&file) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let path = match ActionPath::parse(&action) {
                Ok(path) => path,
                Err(e) => {
                    eprintln!("owl: {e}");
                    return ExitCode::FAILURE;
                }
            };
            emit(explain(&policy, &path));
            if path.has_default_namespace() {
                return ExitCode::SUCCESS;
            }
            block_on(async move {
                emit(explain_metadata(policy, &path, auth).await?);
                Ok(())
            })
        }
    }
}

/// The part of `owl policy explain` that reads the action's metadata through the
/// policy's sources: its kind, and for a sequence where each component would run.
async fn explain_metadata(
    policy: Policy,
    path: &ActionPath,
    auth: Option<String>,
) -> anyhow::Result<String> {
    use crate::auth::{Caller, Credentials, Identity};
    use crate::policy::MetadataSource;
    let controller = crate::controller::ControllerClient::new(&policy.controller)?;
    let directory = crate::metadata::Directory::new(
        &policy,
        controller,
        std::sync::Arc::new(telemetry::Metrics::new()),
    )?;
    let tid = crate::whisk::TransactionId::generate();
    let identity = match auth {
        Some(key) => {
            let creds = Credentials::from_api_key(&key)
                .ok_or_else(|| anyhow::anyhow!("--auth is not UUID:KEY with a 64-character key"))?;
            match directory.identify(&Caller::Basic(creds), &tid).await {
                Ok(i) => i,
                Err(e) => {
                    return Ok(format!(
                        "  metadata:  not read: the key of --auth is refused ({} {})\n",
                        e.status.as_u16(),
                        e.message
                    ));
                }
            }
        }
        // The controller answers per key: read as the owner when owl has a way.
        None if policy.metadata.source == MetadataSource::Controller => {
            match directory.owner(&path.namespace, &tid).await {
                Ok(Some(i)) => i,
                Ok(None) => {
                    return Ok(format!(
                        "  metadata:  not read: the controller shows an action only to a key; give --auth UUID:KEY of a caller in {} to see its kind, and a sequence's components\n",
                        path.namespace
                    ));
                }
                Err(e) => {
                    return Ok(format!(
                        "  metadata:  not read: the owner of {} cannot be found ({} {})\n",
                        path.namespace,
                        e.status.as_u16(),
                        e.message
                    ));
                }
            }
        }
        // owl decides entitlement from the caller's namespace alone: read as the owner.
        None => std::sync::Arc::new(Identity {
            namespace: path.namespace.clone(),
            subject: path.namespace.clone(),
            limits: None,
            key: None,
        }),
    };
    let m = match directory.action(&identity, path, &tid).await {
        Ok(m) => m,
        Err(e) => {
            return Ok(format!(
                "  metadata:  {} {} (as a caller in {})\n",
                e.status.as_u16(),
                e.message,
                identity.namespace
            ));
        }
    };
    let mut out = format!(
        "  metadata:  {} of kind {} (as a caller in {})\n",
        m.path, m.kind, identity.namespace
    );
    if m.kind == crate::whisk::sequence::KIND {
        let covered = policy.routes.find(path).is_some() || policy.routes.find(&m.path).is_some();
        out.push_str(
            &crate::invoke::explain_sequence(&policy, &directory, &identity, &m, covered).await,
        );
    } else if m.annotation_is_truthy("conductor", false) {
        out.push_str("  conductor: the controller runs conductor actions (docs/sequences.md)\n");
    }
    Ok(out)
}

/// Loads the policy and serves until SIGTERM or SIGINT; reloads the policy when the
/// file changes or on SIGHUP.
async fn serve(
    policy_file: PathBuf,
    listen: SocketAddr,
    admin_listen: SocketAddr,
) -> anyhow::Result<()> {
    let policy = Policy::load(&policy_file).map_err(|e| anyhow::anyhow!("invalid policy:\n{e}"))?;
    let serving = crate::serve::start(crate::serve::Config::new(
        policy,
        listen,
        Some(admin_listen),
    ))
    .await?;
    let gw = serving.gateway().clone();
    let _watch = crate::reload::watch(gw.clone(), policy_file.clone())
        .map_err(|e| tracing::warn!(error = %e, "cannot watch the policy file; reload with SIGHUP"))
        .ok();
    crate::reload::reload_on_sighup(gw.clone(), policy_file.clone());
    tracing::info!(
        address = %serving.local_addr(),
        admin = %admin_listen,
        url = %serving.url(),
        routes = gw.snapshot().policy.routes.len(),
        controller = %gw.snapshot().policy.controller.url,
        "owl is serving"
    );
    serving.run_until(crate::shutdown::signal()).await?;
    tracing::info!("owl stopped");
    Ok(())
}

/// `owl sync`: one pass (`--once`, `--dry-run`) printing its report, or follows the
/// source until SIGTERM / SIGINT.
async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let policy = Policy::load(&args.policy).map_err(|e| anyhow::anyhow!("invalid policy:\n{e}"))?;
    let syncer = crate::sync::Syncer::new(
        policy,
        crate::sync::SyncOptions {
            dry_run: args.dry_run,
            lambda_credentials: None,
        },
    )
    .await?;
    if args.once || args.dry_run {
        let report = syncer.once().await?;
        emit(&report);
        if report.has_failures() {
            anyhow::bail!("some actions failed (see above); run again to retry them");
        }
        return Ok(());
    }
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        tracing::info!(address = %listener.local_addr()?, "serving sync metrics");
        let app = crate::sync::metrics_app(syncer.metrics());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the metrics listener stopped");
            }
        });
    }
    tracing::info!("owl sync is following its source");
    syncer.run(crate::shutdown::signal()).await?;
    tracing::info!("owl sync stopped");
    Ok(())
}
