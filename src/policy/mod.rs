//! The policy file: which actions are served from Lambda, and how owl reaches the
//! controller and Lambda.
//!
//! A policy is TOML (documented in `docs/policy.md`). It is parsed and compiled once
//! into an immutable [`Policy`] (routing table included); problems are reported all at
//! once, each with its line and column. Nothing in a compiled policy changes afterwards:
//! a new file produces a new `Policy`.

pub(crate) mod diagnostics;
pub(crate) mod explain;
mod reader;
pub mod route;
pub(crate) mod sync;
pub(crate) mod table;

pub use crate::lambda::{LambdaConfig, PayloadMode};
pub use diagnostics::PolicyErrors;
pub use reader::{format_duration, parse_duration};
pub use route::{ActionPattern, Fallback, FunctionTemplate, Route};
pub use sync::{Architecture, SyncConfig, SyncSource};
pub use table::RoutingTable;

use diagnostics::Diagnostic;
use reader::{Errors, TableReader};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::DeTable;

/// `[server]`: how owl itself listens, and how it protects itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// TLS certificate chain (PEM) for terminating TLS.
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub(crate) tls_key: Option<PathBuf>,
    /// Most requests in flight at once; more get 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// Time allowed to receive a request's headers (slowloris).
    pub(crate) header_read_timeout: Duration,
    /// Largest request head in bytes.
    pub(crate) max_header_bytes: usize,
    /// Most header fields in a request.
    pub(crate) max_headers: usize,
    /// Longest pause between two pieces of a request body.
    pub body_read_timeout: Duration,
    /// Time in-flight requests get to finish at shutdown.
    pub(crate) drain_timeout: Duration,
    /// Time between failing readiness and refusing new connections at shutdown.
    pub shutdown_delay: Duration,
    /// Peers (load balancers, an edge nginx) whose `X-Forwarded-Host` and
    /// `X-Forwarded-Proto` owl passes on; from anyone else they are replaced.
    pub(crate) trusted_proxies: Vec<Cidr>,
    /// Most client connections open at once; more are answered 503 and closed.
    pub(crate) max_connections: usize,
    /// A connection with no request in flight and no bytes moving for this long is
    /// closed (HTTP/1.1 keep-alive and HTTP/2 alike).
    pub idle_timeout: Duration,
}

/// An IP network, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr` or `addr/prefix`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: std::net::IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IP address or network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("\"{s}\": the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    /// True if `ip` is in the network (IPv4-mapped IPv6 peers count as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            tls_cert: None,
            tls_key: None,
            max_in_flight: 10_000,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            body_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            shutdown_delay: Duration::from_secs(5),
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// Where namespace throttles are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleBackend {
    /// In this process.
    Local,
    /// In Redis, shared by every gateway using it.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
        /// When Redis cannot be reached: count locally (`true`) or reject (`false`).
        degrade_to_local: bool,
    },
}

/// Throttle values for one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NamespaceThrottles {
    /// Invocations per calendar minute.
    pub per_minute: Option<u64>,
    /// Invocations in flight at once.
    pub(crate) concurrent: Option<u64>,
}

/// `[limits]`: namespace throttles on the Lambda path.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// System default invocations per minute (OpenWhisk's default: 60).
    pub per_minute: u64,
    /// System default concurrent invocations (OpenWhisk's default: 30).
    pub(crate) concurrent: u64,
    /// Per-namespace overrides (they win over the namespace's own limits document).
    pub namespaces: Vec<(String, NamespaceThrottles)>,
    /// Where the counting happens.
    pub backend: ThrottleBackend,
    /// How long a concurrency slot in Redis outlives a gateway that stopped renewing
    /// it (crashed); renewed every third of this while the invocation runs.
    pub lease: Duration,
}

/// `[controller]`: the upstream OpenWhisk API.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Base URL (`http` or `https`, no path).
    pub url: http::Uri,
    /// How long a proxied request may wait for the controller's response headers.
    pub timeout: Duration,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Extra CA certificate (PEM) to trust for an `https` controller.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (OpenWhisk's self-signed default); explicit opt-in.
    pub accept_invalid_certs: bool,
    /// Public API host given to actions as `api_host` (`__OW_API_HOST`).
    pub api_host: Option<String>,
}

/// Where identities (who a key or token belongs to) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// Ask the controller with the caller's credentials.
    Controller,
    /// OpenWhisk's subjects database (`identities` view).
    CouchDb,
    /// A static identities file.
    File,
}

/// Where action, package and binding metadata come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSource {
    /// Ask the controller with the caller's credentials (it also decides entitlement).
    Controller,
    /// OpenWhisk's whisks database; owl decides entitlement as the controller does.
    CouchDb,
    /// Static metadata in the policy (`[[metadata.action]]`, `[[metadata.package]]`).
    File,
}

/// `[auth]`: who is calling.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Where identities come from.
    pub source: IdentitySource,
    /// The identities file (`source = "file"`).
    pub(crate) identities_file: Option<PathBuf>,
    /// Bearer tokens, when accepted.
    pub jwt: Option<JwtConfig>,
}

/// `[web]`: web actions.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Keys of the namespaces whose web actions owl serves with `[auth] source =
    /// "controller"` (`[namespaces]`, namespace → `"uuid:key"`).
    pub(crate) service_keys_file: Option<PathBuf>,
    /// The namespaces that file has keys for (read at compile time, for the checks).
    pub(crate) service_key_namespaces: BTreeSet<String>,
    /// `<namespace>.<vanity_host>/<pkg>/<action>` is served as
    /// `/api/v1/web/<namespace>/<pkg>/<action>` (OpenWhisk's nginx rewrite).
    pub vanity_host: Option<String>,
}

/// `[metadata]`: action metadata and the caches of identities and metadata.
#[derive(Debug, Clone)]
pub struct MetadataConfig {
    /// Where action metadata comes from.
    pub source: MetadataSource,
    /// How long an expired entry may still be served while its source is failing
    /// (0: never).
    pub(crate) stale_if_error: Duration,
    /// Static documents (`source = "file"`): actions and packages in the whisks
    /// database's document form, keyed by document id.
    pub documents: Vec<(String, serde_json::Value)>,
    /// How long a positive answer is reused.
    pub(crate) ttl: Duration,
    /// How long a rejection (401/403/404) is reused.
    pub(crate) negative_ttl: Duration,
    /// Most entries per cache.
    pub(crate) max_entries: u64,
    /// How long one lookup may take.
    pub timeout: Duration,
}

/// Where keys for verifying bearer tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeySource {
    /// A JWKS document fetched (and refreshed) from this URL.
    Jwks(String),
    /// A PEM public key (RSA, EC or Ed25519) read from this file.
    PublicKeyFile(PathBuf),
    /// An HMAC secret read from this file (HS* algorithms only).
    SecretFile(PathBuf),
}

/// `[auth.jwt]`: bearer tokens (JWT) accepted in place of OpenWhisk keys.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// Required `iss` (one of).
    pub issuers: Vec<String>,
    /// Required `aud` (one of).
    pub audiences: Vec<String>,
    /// Accepted algorithms, all of one family (never `none`).
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Where the verification keys come from.
    pub keys: JwtKeySource,
    /// Clock skew tolerated on `exp` / `nbf`.
    pub leeway: Duration,
    /// Claim naming the OpenWhisk namespace the token acts as.
    pub namespace_claim: String,
    /// Claim naming the subject (default: the namespace).
    pub subject_claim: Option<String>,
    /// How long a fetched JWKS is used before it is fetched again.
    pub jwks_ttl: Duration,
    /// Least time between two JWKS fetches (an unknown `kid` triggers one).
    pub jwks_min_refresh: Duration,
    /// File mapping namespaces to their `uuid:key` service keys, for the controller
    /// calls owl makes on a token holder's behalf.
    pub service_keys_file: Option<PathBuf>,
    /// Replace a token with the namespace's service key on proxied requests.
    pub exchange_on_proxy: bool,
}

/// Which store keeps activation records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite in the data directory; owl answers activation reads itself.
    Embedded,
    /// OpenWhisk's activations database in CouchDB; the controller answers reads.
    CouchDb,
}

/// `[activations]`: where activation records go and how long they are kept.
#[derive(Debug, Clone)]
pub struct ActivationsConfig {
    /// The store.
    pub store: StoreKind,
    /// Directory for the embedded database and the pending-invocation journal.
    pub data_dir: PathBuf,
    /// Embedded store: records older than this are deleted.
    pub retention: Duration,
    /// Embedded store: at most this many records are kept (oldest deleted first).
    pub max_records: u64,
    /// Capacity of the queue between invocations and the store writer.
    pub queue: usize,
    /// Most records written in one batch.
    pub batch: usize,
    /// How long a failing batch is retried before it is left to the journal (records
    /// another store holds, written again later) or dropped (the embedded store;
    /// counted and logged).
    pub write_retry: Duration,
    /// Sync the journal to disk at every commit (survives power loss, not only a
    /// crash of the process), at the cost of an fsync per group commit.
    pub fsync: bool,
}

/// `[couchdb]`: OpenWhisk's CouchDB (activations store; identity source later).
#[derive(Debug, Clone)]
pub struct CouchDbConfig {
    /// Base URL, e.g. `http://couchdb:5984` or `https://couchdb:6984`.
    pub url: http::Uri,
    /// Extra CA certificates (PEM) to trust for an `https` CouchDB.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (a self-signed CouchDB); explicit opt-in.
    pub accept_invalid_certs: bool,
    /// User name.
    pub username: Option<String>,
    /// File holding the password (never the password itself in the policy).
    pub password_file: Option<PathBuf>,
    /// Database name prefix (OpenWhisk's `db_prefix`, e.g. `whisk_local_`).
    pub db_prefix: String,
    /// Name of the activations database (default `<prefix>activations`).
    pub activations_db: String,
    /// Name of the subjects database (default `<prefix>subjects`).
    pub subjects_db: String,
    /// Name of the whisks database (default `<prefix>whisks`).
    pub whisks_db: String,
    /// Request timeout.
    pub timeout: Duration,
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    /// Where it was loaded from (for messages and relative paths).
    pub source: String,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[controller]`.
    pub controller: ControllerConfig,
    /// `[lambda]`.
    pub lambda: LambdaConfig,
    /// `[metadata]`.
    pub metadata: MetadataConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[activations]`.
    pub activations: ActivationsConfig,
    /// `[couchdb]`, when present.
    pub couchdb: Option<CouchDbConfig>,
    /// `[sync]`, when present (read by `owl sync` only).
    pub sync: Option<SyncConfig>,
    /// `[openwhisk]`: the deployment's own values of OpenWhisk settings.
    pub openwhisk: crate::whisk::Deployment,
    /// `[web]`: web actions (owner identities, the vanity host).
    pub web: WebConfig,
    /// The compiled `[[route]]`s.
    pub routes: RoutingTable,
    /// Non-fatal remarks (e.g. shadowed routes), located.
    pub(crate) warnings: Vec<String>,
}

const TOP_KEYS: &[&str] = &[
    "server",
    "controller",
    "lambda",
    "metadata",
    "auth",
    "limits",
    "activations",
    "couchdb",
    "sync",
    "openwhisk",
    "web",
    "route",
];
const WEB_KEYS: &[&str] = &["service_keys_file", "vanity_host"];
const OPENWHISK_KEYS: &[&str] = &[
    "max_blocking_wait",
    "payload_max",
    "list_limit",
    "sequence_limit",
];
const AUTH_KEYS: &[&str] = &["source", "identities_file", "jwt"];
const JWT_KEYS: &[&str] = &[
    "issuer",
    "audience",
    "algorithms",
    "jwks_url",
    "allow_insecure_jwks",
    "public_key_file",
    "secret_file",
    "leeway",
    "namespace_claim",
    "subject_claim",
    "jwks_ttl",
    "jwks_min_refresh",
    "service_keys_file",
    "exchange_on_proxy",
];
const STATIC_ACTION_KEYS: &[&str] = &[
    "action",
    "kind",
    "version",
    "timeout",
    "memory",
    "parameters",
    "init_parameters",
    "annotations",
    "components",
];
const STATIC_PACKAGE_KEYS: &[&str] = &["package", "publish", "parameters", "binding"];
const ACTIVATIONS_KEYS: &[&str] = &[
    "store",
    "data_dir",
    "retention",
    "max_records",
    "queue",
    "batch",
    "write_retry",
    "fsync",
];
const COUCHDB_KEYS: &[&str] = &[
    "url",
    "ca_file",
    "accept_invalid_certs",
    "username",
    "password_file",
    "db_prefix",
    "activations_db",
    "subjects_db",
    "whisks_db",
    "timeout",
];
const SERVER_KEYS: &[&str] = &[
    "tls_cert",
    "tls_key",
    "max_in_flight",
    "header_read_timeout",
    "max_header_bytes",
    "max_headers",
    "body_read_timeout",
    "drain_timeout",
    "shutdown_delay",
    "trusted_proxies",
    "max_connections",
    "idle_timeout",
];
const LIMITS_KEYS: &[&str] = &[
    "invocations_per_minute",
    "concurrent_invocations",
    "backend",
    "redis_url",
    "on_redis_error",
    "lease",
    "namespace",
];
const NAMESPACE_LIMIT_KEYS: &[&str] = &["invocations_per_minute", "concurrent_invocations"];
const CONTROLLER_KEYS: &[&str] = &[
    "url",
    "timeout",
    "connect_timeout",
    "ca_file",
    "accept_invalid_certs",
    "api_host",
];
const LAMBDA_KEYS: &[&str] = &[
    "region",
    "endpoint_url",
    "connect_timeout",
    "log_tail",
    "max_invocations",
    "init_allowance",
    "retries",
    "breaker_failures",
    "breaker_cooldown",
];
const METADATA_KEYS: &[&str] = &[
    "source",
    "ttl",
    "negative_ttl",
    "max_entries",
    "timeout",
    "stale_if_error",
    "action",
    "package",
];
const ROUTE_KEYS: &[&str] = &[
    "action",
    "function",
    "qualifier",
    "weight",
    "timeout",
    "fallback",
    "payload",
    "web",
];

/// Longest action time limit OpenWhisk allows (reference §5.3) — Lambda allows 15 min.
const MAX_ROUTE_TIMEOUT: Duration = Duration::from_secs(900);

impl Policy {
    /// Reads and compiles the policy file at `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyErrors::whole_file(&name, format!("cannot read the policy: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &name, base)
    }

    /// Compiles policy `text`; `name` labels messages and `base` anchors relative paths.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Self, PolicyErrors> {
        let (doc, syntax_errors) = DeTable::parse_recoverable(text);
        if !syntax_errors.is_empty() {
            let diags = syntax_errors
                .iter()
                .map(|e| {
                    Diagnostic::new(
                        e.span().unwrap_or(0..0),
                        e.message().trim_end().replace('\n', " "),
                    )
                })
                .collect();
            return Err(PolicyErrors::new(name, text, diags));
        }
        let mut errors = Errors::default();
        let span = doc.span();
        let top = TableReader::new(doc.get_ref(), span, "the policy", TOP_KEYS, &mut errors);
        let policy = compile(&top, text, name, base, &mut errors);
        if errors.0.is_empty()
            && let Some(p) = policy
        {
            return Ok(p);
        }
        Err(PolicyErrors::new(name, text, errors.0))
    }
}

fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn compile(
    top: &TableReader<'_, '_>,
    text: &str,
    name: &str,
    base: &Path,
    errors: &mut Errors,
) -> Option<Policy> {
    let server = compile_server(top, base, errors);
    let controller = compile_controller(top, base, errors);
    let lambda = compile_lambda(top, errors);
    let couchdb = compile_couchdb(top, base, errors);
    let has_couch = matches!(couchdb, Some(Some(_)));
    let metadata = compile_metadata(top, has_couch, errors);
    let auth = compile_auth(top, base, has_couch, errors);
    let limits = compile_limits(top, errors);
    let activations = compile_activations(top, base, couchdb.as_ref(), errors);
    let sync = sync::compile_sync(top, base, top.has("couchdb"), errors);
    let openwhisk = compile_openwhisk(top, errors);
    let web = compile_web(top, base, errors);
    let routes: Vec<(Route, std::ops::Range<usize>)> = top
        .array_of_tables("route", ROUTE_KEYS, errors)
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            compile_route(i, r, text, errors).map(|c| (c, r.value_span("function")))
        })
        .collect();
    // One function per action across routes too: two templates that could render one
    // name for two different actions are refused (a fixed name is a choice to share).
    let mut shapes = route::ShapeIndex::default();
    for (j, (later, span)) in routes.iter().enumerate() {
        let Some(shape) = later.function.name_shape(&later.pattern) else {
            continue;
        };
        if let Some(i) = shapes.insert(j, shape) {
            let earlier = &routes[i].0;
            errors.push(
                span.clone(),
                format!(
                    "`function` \"{}\" of the route for \"{}\" can render the same name as \"{}\" of the route for \"{}\" (line {}) for a different action; make the templates' fixed text differ (e.g. a prefix per route)",
                    later.function.as_str(),
                    later.pattern,
                    earlier.function.as_str(),
                    earlier.pattern,
                    earlier.line
                ),
            );
        }
    }
    let routes_with_spans = routes;
    let routes = RoutingTable::new(routes_with_spans.iter().map(|(r, _)| r.clone()).collect());
    let mut warnings: Vec<String> = routes
        .shadowed()
        .into_iter()
        .map(|(r, first)| {
            format!(
                "{name}:{}: warning: route for \"{}\" can never match: the route on line {} has the same pattern",
                r.line, r.pattern, first.line
            )
        })
        .collect();
    if let (Some(a), Some(w)) = (&auth, &web) {
        check_web_owners(&routes_with_spans, a, w, name, errors, &mut warnings);
    }
    if let (Some(c), Some(o)) = (&controller, &openwhisk)
        && c.timeout < Duration::from_millis(o.max_blocking_wait_ms) + Duration::from_secs(5)
    {
        warnings.push(format!(
            "{name}: warning: [controller] timeout ({}) is shorter than the blocking wait ({} ms, [openwhisk] max_blocking_wait) plus 5 s: a blocking invocation the controller serves may get owl's 504 before the controller answers",
            format_duration(c.timeout),
            o.max_blocking_wait_ms
        ));
    }
    Some(Policy {
        source: name.to_string(),
        server: server?,
        controller: controller?,
        lambda: lambda?,
        metadata: metadata?,
        auth: auth?,
        limits: limits?,
        activations: activations?,
        couchdb: couchdb.flatten(),
        sync: sync?,
        openwhisk: openwhisk?,
        web: web?,
        routes,
        warnings,
    })
}

/// `[web]`: how owl serves web actions (docs/web-actions.md).
fn compile_web(top: &TableReader<'_, '_>, base: &Path, errors: &mut Errors) -> Option<WebConfig> {
    let Some(t) = top.table("web", WEB_KEYS, errors) else {
        return (!top.has("web")).then(WebConfig::default);
    };
    let mut web = WebConfig::default();
    if let Some((p, span)) = t.string("service_keys_file", errors) {
        let path = resolve_path(base, &p);
        match read_key_namespaces(&path) {
            Ok(names) => web.service_key_namespaces = names,
            Err(e) => errors.push(span, format!("`service_keys_file` in [web]: {e}")),
        }
        web.service_keys_file = Some(path);
    }
    if let Some((h, span)) = t.string("vanity_host", errors) {
        let h = h.to_ascii_lowercase();
        let valid = !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            web.vanity_host = Some(h);
        } else {
            errors.push(
                span,
                format!("`vanity_host` in [web]: \"{h}\" is not a host name"),
            );
        }
    }
    Some(web)
}

/// The namespaces a service-keys file (`[namespaces]`, namespace → `"uuid:key"`) has
/// keys for; the keys themselves are read by the metadata layer, never kept here.
fn read_key_namespaces(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match doc.get("namespaces") {
        Some(toml::Value::Table(t)) => Ok(t.keys().cloned().collect()),
        _ => Err(format!("{}: expected a [namespaces] table", path.display())),
    }
}

/// Which web routes owl cannot serve because it has no way to learn the owner of the
/// namespace: with `[auth] source = "controller"` the owner's identity comes from the
/// controller with the namespace's own key, so a namespace needs one in a service-keys
/// file. A route that asks for web calls (`web = true`) is refused; one that leaves
/// `web` unset is warned about (its web calls go to the controller).
fn check_web_owners(
    routes: &[(Route, std::ops::Range<usize>)],
    auth: &AuthConfig,
    web: &WebConfig,
    name: &str,
    errors: &mut Errors,
    warnings: &mut Vec<String>,
) {
    if auth.source != IdentitySource::Controller {
        return;
    }
    // Token holders' service keys serve web owners too.
    let jwt_names = auth
        .jwt
        .as_ref()
        .and_then(|j| j.service_keys_file.as_deref())
        .and_then(|p| read_key_namespaces(p).ok())
        .unwrap_or_default();
    for (r, span) in routes {
        if !r.serves_web() {
            continue;
        }
        let ns = match &r.pattern.namespace {
            route::Segment::Literal(ns) => ns.as_str(),
            route::Segment::Any => "*",
        };
        if ns != "*" && (web.service_key_namespaces.contains(ns) || jwt_names.contains(ns)) {
            continue;
        }
        let why = if ns == "*" {
            "with [auth] source = \"controller\", owl learns a web action's owner with the namespace's own key, and a `*` namespace has keys only for the namespaces in [web] service_keys_file".to_string()
        } else {
            format!(
                "with [auth] source = \"controller\", owl learns a web action's owner with the namespace's own key, and there is no key for \"{ns}\" in [web] service_keys_file (or [auth.jwt] service_keys_file)"
            )
        };
        if r.web == Some(true) && ns != "*" {
            errors.push(
                span.clone(),
                format!("the route for \"{}\" sets web = true, but {why}; add the key, use [auth] source = \"couchdb\" or \"file\", or set web = false", r.pattern),
            );
        } else {
            warnings.push(format!(
                "{name}:{}: warning: web calls of the route for \"{}\" go to the controller where owl has no owner key: {why} (set web = false to say so)",
                r.line, r.pattern
            ));
        }
    }
}

/// `[openwhisk]`: values of a deployment that changed OpenWhisk's defaults, so both
/// paths answer alike.
fn compile_openwhisk(
    top: &TableReader<'_, '_>,
    errors: &mut Errors,
) -> Option<crate::whisk::Deployment> {
    let d = crate::whisk::Deployment::default();
    let Some(t) = top.table("openwhisk", OPENWHISK_KEYS, errors) else {
        return (!top.has("openwhisk")).then_some(d);
    };
    Some(crate::whisk::Deployment {
        max_blocking_wait_ms: t
            .duration(
                "max_blocking_wait",
                Duration::from_secs(1),
                Duration::from_secs(3600),
                errors,
            )
            .map_or(d.max_blocking_wait_ms, |w| w.0.as_millis() as u64),
        payload_max: t
            .integer("payload_max", 1024, 6 * 1024 * 1024, errors)
            .map_or(d.payload_max, |n| n.0),
        list_limit: t
            .integer("list_limit", 1, 10_000, errors)
            .map_or(d.list_limit, |n| n.0),
        sequence_limit: t
            .integer("sequence_limit", 1, 10_000, errors)
            .map_or(d.sequence_limit, |n| n.0),
    })
}

fn compile_couchdb(
    top: &TableReader<'_, '_>,
    base: &Path,
    errors: &mut Errors,
) -> Option<Option<CouchDbConfig>> {
    let Some(t) = top.table("couchdb", COUCHDB_KEYS, errors) else {
        return (!top.has("couchdb")).then_some(None);
    };
    let url = t.required_string("url", errors).and_then(|(u, span)| {
        match parse_base_url(&u) {
            Ok(uri) if uri.authority().is_some_and(|a| !a.as_str().contains('@')) => Some(uri),
            Ok(_) => {
                errors.push(
                    span,
                    "`url` in [couchdb] must not carry credentials; use `username` and `password_file`",
                );
                None
            }
            Err(e) => {
                errors.push(span, format!("`url` in [couchdb]: {e}"));
                None
            }
        }
    });
    let ca_file = t
        .string("ca_file", errors)
        .map(|(p, _)| resolve_path(base, &p));
    let accept_invalid_certs = t
        .boolean("accept_invalid_certs", errors)
        .is_some_and(|b| b.0);
    let username = t.string("username", errors).map(|s| s.0);
    let password_file = t
        .string("password_file", errors)
        .map(|(p, _)| resolve_path(base, &p));
    let db_prefix = t
        .string("db_prefix", errors)
        .map_or_else(|| "whisk_local_".to_string(), |s| s.0);
    let db = |key: &str, suffix: &str, errors: &mut Errors| {
        t.string(key, errors)
            .map_or_else(|| format!("{db_prefix}{suffix}"), |s| s.0)
    };
    let activations_db = db("activations_db", "activations", errors);
    let subjects_db = db("subjects_db", "subjects", errors);
    let whisks_db = db("whisks_db", "whisks", errors);
    let timeout = t
        .duration(
            "timeout",
            Duration::from_millis(100),
            Duration::from_secs(300),
            errors,
        )
        .map_or(Duration::from_secs(10), |d| d.0);
    Some(Some(CouchDbConfig {
        url: url?,
        ca_file,
        accept_invalid_certs,
        username,
        password_file,
        db_prefix,
        activations_db,
        subjects_db,
        whisks_db,
        timeout,
    }))
}

fn compile_activations(
    top: &TableReader<'_, '_>,
    base: &Path,
    couchdb: Option<&Option<CouchDbConfig>>,
    errors: &mut Errors,
) -> Option<ActivationsConfig> {
    let mut cfg = ActivationsConfig {
        store: StoreKind::Embedded,
        data_dir: PathBuf::from("owl-data"),
        retention: Duration::from_secs(7 * 86_400),
        max_records: 10_000_000,
        queue: 10_000,
        batch: 500,
        write_retry: Duration::from_secs(30),
        fsync: false,
    };
    let Some(t) = top.table("activations", ACTIVATIONS_KEYS, errors) else {
        return (!top.has("activations")).then_some(cfg);
    };
    if let Some((s, span)) = t.choice("store", &["embedded", "couchdb"], errors)
        && s == "couchdb"
    {
        cfg.store = StoreKind::CouchDb;
        if matches!(couchdb, Some(None)) {
            errors.push(
                span,
                "store = \"couchdb\" needs a [couchdb] section with the database `url`",
            );
        }
    }
    if let Some((d, _)) = t.string("data_dir", errors) {
        cfg.data_dir = resolve_path(base, &d);
    }
    if let Some((d, _)) = t.duration(
        "retention",
        Duration::from_secs(60),
        Duration::from_secs(3650 * 86_400),
        errors,
    ) {
        cfg.retention = d;
    }
    if let Some((n, _)) = t.integer("max_records", 1, u64::MAX >> 2, errors) {
        cfg.max_records = n;
    }
    if let Some((n, _)) = t.integer("queue", 1, 10_000_000, errors) {
        cfg.queue = n as usize;
    }
    if let Some((n, _)) = t.integer("batch", 1, 100_000, errors) {
        cfg.batch = n as usize;
    }
    if let Some((d, _)) = t.duration(
        "write_retry",
        Duration::ZERO,
        Duration::from_secs(86_400),
        errors,
    ) {
        cfg.write_retry = d;
    }
    if let Some((b, _)) = t.boolean("fsync", errors) {
        cfg.fsync = b;
    }
    Some(cfg)
}

fn compile_server(
    top: &TableReader<'_, '_>,
    base: &Path,
    errors: &mut Errors,
) -> Option<ServerConfig> {
    let d = ServerConfig::default();
    let Some(t) = top.table("server", SERVER_KEYS, errors) else {
        return (!top.has("server")).then_some(d);
    };
    let cert = t.string("tls_cert", errors);
    let key = t.string("tls_key", errors);
    if let (Some((_, span)), None) | (None, Some((_, span))) = (&cert, &key) {
        errors.push(
            span.clone(),
            "[server] needs both `tls_cert` and `tls_key` to terminate TLS",
        );
        return None;
    }
    let dur = |k: &str, min: Duration, max: Duration, default: Duration, errors: &mut Errors| {
        t.duration(k, min, max, errors).map_or(default, |x| x.0)
    };
    Some(ServerConfig {
        tls_cert: cert.map(|(p, _)| resolve_path(base, &p)),
        tls_key: key.map(|(p, _)| resolve_path(base, &p)),
        max_in_flight: t
            .integer("max_in_flight", 1, 10_000_000, errors)
            .map_or(d.max_in_flight, |n| n.0 as usize),
        header_read_timeout: dur(
            "header_read_timeout",
            Duration::from_millis(100),
            Duration::from_secs(600),
            d.header_read_timeout,
            errors,
        ),
        max_header_bytes: t
            .integer("max_header_bytes", 8192, 16 * 1024 * 1024, errors)
            .map_or(d.max_header_bytes, |n| n.0 as usize),
        max_headers: t
            .integer("max_headers", 8, 10_000, errors)
            .map_or(d.max_headers, |n| n.0 as usize),
        body_read_timeout: dur(
            "body_read_timeout",
            Duration::from_millis(100),
            Duration::from_secs(3600),
            d.body_read_timeout,
            errors,
        ),
        drain_timeout: dur(
            "drain_timeout",
            Duration::ZERO,
            Duration::from_secs(3600),
            d.drain_timeout,
            errors,
        ),
        shutdown_delay: dur(
            "shutdown_delay",
            Duration::ZERO,
            Duration::from_secs(600),
            d.shutdown_delay,
            errors,
        ),
        trusted_proxies: t
            .strings("trusted_proxies", errors)
            .map(|(list, span)| {
                list.iter()
                    .filter_map(|s| {
                        Cidr::parse(s)
                            .map_err(|e| {
                                errors.push(
                                    span.clone(),
                                    format!("`trusted_proxies` in [server]: {e}"),
                                )
                            })
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default(),
        max_connections: t
            .integer("max_connections", 1, 10_000_000, errors)
            .map_or(d.max_connections, |n| n.0 as usize),
        idle_timeout: dur(
            "idle_timeout",
            Duration::from_secs(1),
            Duration::from_secs(3600),
            d.idle_timeout,
            errors,
        ),
    })
}

fn compile_limits(top: &TableReader<'_, '_>, errors: &mut Errors) -> Option<LimitsConfig> {
    let mut cfg = LimitsConfig {
        per_minute: 60,
        concurrent: 30,
        namespaces: Vec::new(),
        backend: ThrottleBackend::Local,
        lease: Duration::from_secs(30),
    };
    let Some(t) = top.table("limits", LIMITS_KEYS, errors) else {
        return (!top.has("limits")).then_some(cfg);
    };
    if let Some((n, _)) = t.integer("invocations_per_minute", 0, u32::MAX as u64, errors) {
        cfg.per_minute = n;
    }
    if let Some((n, _)) = t.integer("concurrent_invocations", 0, u32::MAX as u64, errors) {
        cfg.concurrent = n;
    }
    if let Some((d, _)) = t.duration(
        "lease",
        Duration::from_secs(1),
        Duration::from_secs(3600),
        errors,
    ) {
        cfg.lease = d;
    }
    let redis_url = t.string("redis_url", errors);
    let degrade = match t.choice("on_redis_error", &["local", "reject"], errors) {
        Some((s, _)) => s == "local",
        None => true,
    };
    let on_error_set = t.has("on_redis_error");
    let lease_set = t.has("lease");
    match t.choice("backend", &["local", "redis"], errors) {
        Some((b, span)) if b == "redis" => match redis_url {
            Some((u, _)) if u.starts_with("redis://") || u.starts_with("rediss://") => {
                cfg.backend = ThrottleBackend::Redis {
                    url: u,
                    degrade_to_local: degrade,
                };
            }
            Some((u, uspan)) => errors.push(
                uspan,
                format!("`redis_url` in [limits]: \"{u}\" must start with redis:// or rediss://"),
            ),
            None => errors.push(span, "backend = \"redis\" in [limits] needs `redis_url`"),
        },
        _ => {
            // Redis settings without the Redis backend would silently do nothing.
            for (key, set) in [
                ("redis_url", redis_url.is_some()),
                ("on_redis_error", on_error_set),
                ("lease", lease_set),
            ] {
                if set {
                    errors.push(
                        t.value_span(key),
                        format!("`{key}` in [limits] only applies with backend = \"redis\""),
                    );
                }
            }
        }
    }
    for ((name, span), ns) in t.named_tables("namespace", NAMESPACE_LIMIT_KEYS, errors) {
        if crate::whisk::names::validate_segment(&name).is_err() {
            errors.push(
                span,
                format!("[limits.namespace.{name}]: \"{name}\" is not a namespace name"),
            );
            continue;
        }
        let throttles = NamespaceThrottles {
            per_minute: ns
                .integer("invocations_per_minute", 0, u32::MAX as u64, errors)
                .map(|n| n.0),
            concurrent: ns
                .integer("concurrent_invocations", 0, u32::MAX as u64, errors)
                .map(|n| n.0),
        };
        cfg.namespaces.push((name, throttles));
    }
    Some(cfg)
}

fn compile_controller(
    top: &TableReader<'_, '_>,
    base: &Path,
    errors: &mut Errors,
) -> Option<ControllerConfig> {
    let Some(t) = top.table("controller", CONTROLLER_KEYS, errors) else {
        if !top.has("controller") {
            errors.push(
                top.span().start..top.span().start,
                "the policy needs a [controller] section with the `url` of the OpenWhisk API",
            );
        }
        return None;
    };
    let url = t
        .required_string("url", errors)
        .and_then(|(u, span)| match parse_base_url(&u) {
            // Never echoed: the URL would carry the credentials into logs, /owl/status
            // and this very message.
            Ok(uri) if uri.authority().is_some_and(|a| a.as_str().contains('@')) => {
                errors.push(
                    span,
                    "`url` in [controller] must not carry credentials (user info before `@`): owl shows this URL in logs and /owl/status, and every caller's own key authenticates it to the controller",
                );
                None
            }
            Ok(uri) => Some(uri),
            Err(e) if u.contains('@') => {
                errors.push(span, format!("`url` in [controller] is not a base URL: {}", e.replace(&u, "<redacted>")));
                None
            }
            Err(e) => {
                errors.push(span, format!("`url` in [controller]: {e}"));
                None
            }
        });
    let timeout = t
        .duration(
            "timeout",
            Duration::from_millis(100),
            Duration::from_secs(3600),
            errors,
        )
        .map_or(Duration::from_secs(75), |d| d.0);
    let connect_timeout = t
        .duration(
            "connect_timeout",
            Duration::from_millis(10),
            Duration::from_secs(60),
            errors,
        )
        .map_or(Duration::from_secs(5), |d| d.0);
    let ca_file = t
        .string("ca_file", errors)
        .map(|(p, _)| resolve_path(base, &p));
    let accept_invalid_certs = t
        .boolean("accept_invalid_certs", errors)
        .is_some_and(|b| b.0);
    let api_host = t.string("api_host", errors).map(|s| s.0);
    Some(ControllerConfig {
        url: url?,
        timeout,
        connect_timeout,
        ca_file,
        accept_invalid_certs,
        api_host,
    })
}

/// Parses an `http(s)://host[:port]` base URL (a trailing `/` is allowed, a path is not).
pub(crate) fn parse_base_url(u: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = u
        .parse()
        .map_err(|e| format!("\"{u}\" is not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("\"{u}\" must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("\"{u}\" has no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "\"{u}\" must be a base URL without a path (owl forwards request paths unchanged)"
        ));
    }
    Ok(uri)
}

fn compile_lambda(top: &TableReader<'_, '_>, errors: &mut Errors) -> Option<LambdaConfig> {
    let default = LambdaConfig::default();
    let Some(t) = top.table("lambda", LAMBDA_KEYS, errors) else {
        return (!top.has("lambda")).then_some(default);
    };
    let region = t.string("region", errors).and_then(|(r, span)| {
        if !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            Some(r)
        } else {
            errors.push(
                span,
                format!(
                    "`region` in [lambda]: \"{r}\" is not an AWS region name (e.g. \"us-east-1\")"
                ),
            );
            None
        }
    });
    let endpoint_url =
        t.string("endpoint_url", errors)
            .and_then(|(u, span)| match u.parse::<http::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.host().is_some() =>
                {
                    Some(u)
                }
                _ => {
                    errors.push(
                        span,
                        format!("`endpoint_url` in [lambda]: \"{u}\" is not an http(s) URL"),
                    );
                    None
                }
            });
    Some(LambdaConfig {
        region,
        endpoint_url,
        connect_timeout: t
            .duration(
                "connect_timeout",
                Duration::from_millis(10),
                Duration::from_secs(60),
                errors,
            )
            .map_or(default.connect_timeout, |d| d.0),
        log_tail: t.boolean("log_tail", errors).is_none_or(|b| b.0),
        max_invocations: t
            .integer("max_invocations", 1, 100_000, errors)
            .map_or(default.max_invocations, |n| n.0 as usize),
        init_allowance: t
            .duration(
                "init_allowance",
                Duration::ZERO,
                Duration::from_secs(600),
                errors,
            )
            .map_or(default.init_allowance, |d| d.0),
        retries: t
            .integer("retries", 0, 10, errors)
            .map_or(default.retries, |n| n.0 as u32),
        breaker_failures: t
            .integer("breaker_failures", 0, 1_000_000, errors)
            .map_or(default.breaker_failures, |n| n.0 as u32),
        breaker_cooldown: t
            .duration(
                "breaker_cooldown",
                Duration::from_millis(100),
                Duration::from_secs(3600),
                errors,
            )
            .map_or(default.breaker_cooldown, |d| d.0),
    })
}

fn compile_metadata(
    top: &TableReader<'_, '_>,
    has_couch: bool,
    errors: &mut Errors,
) -> Option<MetadataConfig> {
    let default = MetadataConfig {
        source: MetadataSource::Controller,
        stale_if_error: Duration::from_secs(300),
        documents: Vec::new(),
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(5),
        max_entries: 100_000,
        timeout: Duration::from_secs(10),
    };
    let Some(t) = top.table("metadata", METADATA_KEYS, errors) else {
        return (!top.has("metadata")).then_some(default);
    };
    let source = match t.choice("source", &["controller", "couchdb", "file"], errors) {
        Some((s, span)) if s == "couchdb" => {
            if !has_couch {
                errors.push(
                    span,
                    "source = \"couchdb\" in [metadata] needs a [couchdb] section",
                );
            }
            MetadataSource::CouchDb
        }
        Some((s, _)) if s == "file" => MetadataSource::File,
        _ => MetadataSource::Controller,
    };
    let mut documents = Vec::new();
    for a in t.array_of_tables("action", STATIC_ACTION_KEYS, errors) {
        if let Some(doc) = static_action(&a, errors) {
            documents.push(doc);
        }
    }
    for p in t.array_of_tables("package", STATIC_PACKAGE_KEYS, errors) {
        if let Some(doc) = static_package(&p, errors) {
            documents.push(doc);
        }
    }
    if !documents.is_empty() && source != MetadataSource::File {
        errors.push(
            t.span().start..t.span().start,
            "[[metadata.action]] and [[metadata.package]] are only read with source = \"file\" in [metadata]",
        );
    }
    Some(MetadataConfig {
        source,
        stale_if_error: t
            .duration(
                "stale_if_error",
                Duration::ZERO,
                Duration::from_secs(86_400),
                errors,
            )
            .map_or(default.stale_if_error, |d| d.0),
        documents,
        ttl: t
            .duration("ttl", Duration::ZERO, Duration::from_secs(86_400), errors)
            .map_or(default.ttl, |d| d.0),
        negative_ttl: t
            .duration(
                "negative_ttl",
                Duration::ZERO,
                Duration::from_secs(3600),
                errors,
            )
            .map_or(default.negative_ttl, |d| d.0),
        max_entries: t
            .integer("max_entries", 1, 100_000_000, errors)
            .map_or(default.max_entries, |n| n.0),
        timeout: t
            .duration(
                "timeout",
                Duration::from_millis(10),
                Duration::from_secs(300),
                errors,
            )
            .map_or(default.timeout, |d| d.0),
    })
}

/// A `[[metadata.action]]` as the whisks database's action document.
fn static_action(
    a: &TableReader<'_, '_>,
    errors: &mut Errors,
) -> Option<(String, serde_json::Value)> {
    use serde_json::{Value, json};
    let path = a.required_string("action", errors).and_then(|(p, span)| {
        match crate::whisk::ActionPath::parse(&p) {
            Ok(path) if !path.has_default_namespace() => Some(path),
            Ok(_) => {
                errors.push(
                    span,
                    format!(
                        "`action` in {}: name the namespace instead of `_`",
                        a.context()
                    ),
                );
                None
            }
            Err(e) => {
                errors.push(span, format!("`action` in {}: {e}", a.context()));
                None
            }
        }
    })?;
    // A sequence: its components as the whisks database stores them ("/ns/[pkg/]name").
    let components = a.strings("components", errors).map(|(names, span)| {
        let mut stored = Vec::with_capacity(names.len());
        for n in &names {
            match crate::whisk::ActionPath::parse(n) {
                Ok(c) if !c.has_default_namespace() => {
                    stored.push(Value::String(format!("/{}", c.to_path_string())))
                }
                Ok(_) => errors.push(
                    span.clone(),
                    format!(
                        "`components` in {}: name the namespace of {n} instead of `_`",
                        a.context()
                    ),
                ),
                Err(e) => errors.push(
                    span.clone(),
                    format!("`components` in {}: {e}", a.context()),
                ),
            }
        }
        (stored, span)
    });
    let kind = match (a.string("kind", errors), &components) {
        (Some((k, span)), Some(_)) if k != crate::whisk::sequence::KIND => {
            errors.push(
                span,
                format!("`kind` in {}: an action with `components` is a sequence (kind = \"sequence\" or no kind)", a.context()),
            );
            k
        }
        (Some((k, _)), _) => k,
        (None, Some(_)) => crate::whisk::sequence::KIND.to_string(),
        (None, None) => "nodejs:20".to_string(),
    };
    let version = a
        .string("version", errors)
        .map_or_else(|| "0.0.1".to_string(), |v| v.0);
    let timeout = a
        .duration(
            "timeout",
            Duration::from_millis(100),
            MAX_ROUTE_TIMEOUT,
            errors,
        )
        .map_or(60_000, |d| d.0.as_millis() as u64);
    let memory = a
        .integer("memory", 128, 10_240, errors)
        .map_or(256, |m| m.0);
    let init: Vec<String> = a
        .strings("init_parameters", errors)
        .map(|s| s.0)
        .unwrap_or_default();
    let parameters: Vec<Value> = a
        .json_object("parameters", errors)
        .map(|(m, _)| m)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut p = json!({"key": k, "value": v});
            if init.contains(&k) {
                p["init"] = json!(true);
            }
            p
        })
        .collect();
    let mut annotations: Vec<Value> = vec![json!({"key": "exec", "value": kind})];
    for (k, v) in a
        .json_object("annotations", errors)
        .map(|(m, _)| m)
        .unwrap_or_default()
    {
        annotations.retain(|x| x["key"] != Value::String(k.clone()));
        annotations.push(json!({"key": k, "value": v}));
    }
    let id = path.to_path_string();
    Some((
        id.clone(),
        json!({
            "_id": id,
            "entityType": "action",
            "namespace": path.entity_namespace(),
            "name": path.action,
            "version": version,
            "publish": false,
            "exec": match components {
                Some((c, _)) => json!({"kind": kind, "components": c}),
                None => json!({"kind": kind, "binary": false}),
            },
            "parameters": parameters,
            "annotations": annotations,
            "limits": {"timeout": timeout, "memory": memory, "logs": 10, "concurrency": 1},
        }),
    ))
}

/// A `[[metadata.package]]` as the whisks database's package document.
fn static_package(
    p: &TableReader<'_, '_>,
    errors: &mut Errors,
) -> Option<(String, serde_json::Value)> {
    use serde_json::json;
    let two = |key: &str, errors: &mut Errors| -> Option<(String, String)> {
        let (v, span) = p.string(key, errors)?;
        match v.split_once('/') {
            Some((ns, name))
                if crate::whisk::names::validate_segment(ns).is_ok()
                    && crate::whisk::names::validate_segment(name).is_ok() =>
            {
                Some((ns.to_string(), name.to_string()))
            }
            _ => {
                errors.push(
                    span,
                    format!("`{key}` in {} must be \"namespace/package\"", p.context()),
                );
                None
            }
        }
    };
    if !p.has("package") {
        errors.push(
            p.span(),
            format!("{} is missing the required key `package`", p.context()),
        );
        return None;
    }
    let (ns, name) = two("package", errors)?;
    let binding = if p.has("binding") {
        let (bns, bname) = two("binding", errors)?;
        json!({"namespace": bns, "name": bname})
    } else {
        json!({})
    };
    let parameters: Vec<serde_json::Value> = p
        .json_object("parameters", errors)
        .map(|(m, _)| m)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let id = format!("{ns}/{name}");
    Some((
        id.clone(),
        json!({
            "_id": id,
            "entityType": "package",
            "namespace": ns,
            "name": name,
            "version": "0.0.1",
            "publish": p.boolean("publish", errors).is_some_and(|b| b.0),
            "binding": binding,
            "parameters": parameters,
            "annotations": [],
        }),
    ))
}

fn compile_auth(
    top: &TableReader<'_, '_>,
    base: &Path,
    has_couch: bool,
    errors: &mut Errors,
) -> Option<AuthConfig> {
    let default = AuthConfig {
        source: IdentitySource::Controller,
        identities_file: None,
        jwt: None,
    };
    let Some(t) = top.table("auth", AUTH_KEYS, errors) else {
        return (!top.has("auth")).then_some(default);
    };
    let identities_file = t
        .string("identities_file", errors)
        .map(|(p, _)| resolve_path(base, &p));
    let source = match t.choice("source", &["controller", "couchdb", "file"], errors) {
        Some((s, span)) if s == "couchdb" => {
            if !has_couch {
                errors.push(
                    span,
                    "source = \"couchdb\" in [auth] needs a [couchdb] section",
                );
            }
            IdentitySource::CouchDb
        }
        Some((s, span)) if s == "file" => {
            if identities_file.is_none() {
                errors.push(span, "source = \"file\" in [auth] needs `identities_file`");
            }
            IdentitySource::File
        }
        _ => IdentitySource::Controller,
    };
    let jwt = match t.table("jwt", JWT_KEYS, errors) {
        Some(j) => Some(compile_jwt(&j, base, errors)?),
        None => None,
    };
    Some(AuthConfig {
        source,
        identities_file,
        jwt,
    })
}

fn compile_jwt(j: &TableReader<'_, '_>, base: &Path, errors: &mut Errors) -> Option<JwtConfig> {
    use jsonwebtoken::Algorithm;
    let issuers = j.strings("issuer", errors).map(|s| s.0);
    if !j.has("issuer") {
        errors.push(j.span(), "[auth.jwt] is missing the required key `issuer`");
    }
    let audiences = j.strings("audience", errors).map(|s| s.0);
    if !j.has("audience") {
        errors.push(
            j.span(),
            "[auth.jwt] is missing the required key `audience`",
        );
    }
    let algorithms = j.strings("algorithms", errors).and_then(|(names, span)| {
        let mut out = Vec::new();
        for n in names {
            if n.eq_ignore_ascii_case("none") {
                errors.push(span.clone(), "`algorithms` in [auth.jwt]: \"none\" is never accepted");
                return None;
            }
            match n.parse::<Algorithm>() {
                Ok(a) => out.push(a),
                Err(_) => {
                    errors.push(
                        span.clone(),
                        format!("`algorithms` in [auth.jwt]: unknown algorithm \"{n}\" (e.g. RS256, ES256, EdDSA, HS256)"),
                    );
                    return None;
                }
            }
        }
        if out.iter().any(|a| a.family() != out[0].family()) {
            errors.push(span, "`algorithms` in [auth.jwt] must all be of one family (all HS, all RS/PS, all ES, or EdDSA)");
            return None;
        }
        Some(out)
    });
    if !j.has("algorithms") {
        errors.push(
            j.span(),
            "[auth.jwt] is missing the required key `algorithms`",
        );
    }
    let jwks = j.string("jwks_url", errors);
    let pem = j.string("public_key_file", errors);
    let secret = j.string("secret_file", errors);
    let keys = match (jwks, pem, secret) {
        (Some((u, span)), None, None) => match u.parse::<http::Uri>() {
            // Keys fetched over plain http can be replaced in transit, and with them
            // every token's signature: only with an explicit opt-in (a sidecar on
            // loopback, a test).
            Ok(uri)
                if uri.scheme_str() == Some("http")
                    && uri.host().is_some()
                    && !j
                        .boolean("allow_insecure_jwks", errors)
                        .is_some_and(|b| b.0) =>
            {
                errors.push(
                    span,
                    format!("`jwks_url` in [auth.jwt]: \"{u}\" is plain http: keys fetched over it can be replaced in transit; use https, or set `allow_insecure_jwks = true` for a trusted local endpoint"),
                );
                None
            }
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() =>
            {
                Some(JwtKeySource::Jwks(u))
            }
            _ => {
                errors.push(
                    span,
                    format!("`jwks_url` in [auth.jwt]: \"{u}\" is not an http(s) URL"),
                );
                None
            }
        },
        (None, Some((p, _)), None) => Some(JwtKeySource::PublicKeyFile(resolve_path(base, &p))),
        (None, None, Some((p, _))) => Some(JwtKeySource::SecretFile(resolve_path(base, &p))),
        _ => {
            errors.push(
                j.span(),
                "[auth.jwt] needs exactly one of `jwks_url`, `public_key_file`, `secret_file`",
            );
            None
        }
    };
    if let (Some(algs), Some(k)) = (&algorithms, &keys) {
        let hs = algs[0].family() == jsonwebtoken::AlgorithmFamily::Hmac;
        if hs != matches!(k, JwtKeySource::SecretFile(_)) {
            errors.push(
                j.span(),
                "[auth.jwt]: HS* algorithms need `secret_file`, and `secret_file` needs HS* algorithms (keeping symmetric and asymmetric keys apart)",
            );
        }
    }
    let namespace_claim = j
        .string("namespace_claim", errors)
        .map_or_else(|| "namespace".to_string(), |s| s.0);
    let subject_claim = j.string("subject_claim", errors).map(|s| s.0);
    Some(JwtConfig {
        issuers: issuers?,
        audiences: audiences?,
        algorithms: algorithms?,
        keys: keys?,
        leeway: j
            .duration("leeway", Duration::ZERO, Duration::from_secs(3600), errors)
            .map_or(Duration::from_secs(30), |d| d.0),
        namespace_claim,
        subject_claim,
        jwks_ttl: j
            .duration(
                "jwks_ttl",
                Duration::from_secs(1),
                Duration::from_secs(86_400),
                errors,
            )
            .map_or(Duration::from_secs(600), |d| d.0),
        jwks_min_refresh: j
            .duration(
                "jwks_min_refresh",
                Duration::ZERO,
                Duration::from_secs(3600),
                errors,
            )
            .map_or(Duration::from_secs(30), |d| d.0),
        service_keys_file: j
            .string("service_keys_file", errors)
            .map(|(p, _)| resolve_path(base, &p)),
        exchange_on_proxy: j.boolean("exchange_on_proxy", errors).is_some_and(|b| b.0),
    })
}

fn compile_route(
    index: usize,
    r: &TableReader<'_, '_>,
    text: &str,
    errors: &mut Errors,
) -> Option<Route> {
    let pattern = r.required_string("action", errors).and_then(|(a, span)| {
        ActionPattern::parse(&a)
            .map_err(|e| errors.push(span, format!("`action` in {}: {e}", r.context())))
            .ok()
    });
    let has_package = pattern.as_ref().is_some_and(|p| p.package.is_some());
    let function = r.required_string("function", errors).and_then(|(f, span)| {
        FunctionTemplate::parse(&f, has_package)
            .and_then(|t| match &pattern {
                Some(p) => covers_wildcards(&t, p).map(|()| t),
                None => Ok(t),
            })
            .map_err(|e| errors.push(span, format!("`function` in {}: {e}", r.context())))
            .ok()
    });
    let qualifier = r.string("qualifier", errors).and_then(|(q, span)| {
        let ok = !q.is_empty()
            && q.len() <= 128
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$' | '.'));
        if ok {
            Some(q)
        } else {
            errors.push(
                span,
                format!(
                    "`qualifier` in {}: \"{q}\" is not a version or alias name",
                    r.context()
                ),
            );
            None
        }
    });
    let weight = r
        .number("weight", 0.0, 100.0, errors)
        .map_or(100.0, |w| w.0);
    let timeout = r
        .duration(
            "timeout",
            Duration::from_millis(100),
            MAX_ROUTE_TIMEOUT,
            errors,
        )
        .map(|d| d.0);
    let fallback = match r.choice("fallback", &["controller", "none"], errors) {
        Some((f, _)) if f == "none" => Fallback::None,
        _ => Fallback::Controller,
    };
    let payload = match r.choice("payload", &["openwhisk", "event"], errors) {
        Some((p, _)) if p == "event" => PayloadMode::Event,
        _ => PayloadMode::OpenWhisk,
    };
    let web = r.boolean("web", errors).map(|w| w.0);
    let (line, _) = diagnostics::line_col(text, r.span().start);
    let pattern = pattern?;
    Some(Route {
        index,
        line,
        label: pattern.to_string().into(),
        pattern,
        function: function?,
        qualifier,
        weight,
        timeout,
        fallback,
        payload,
        web,
    })
}

/// A template with placeholders must name every `*` segment of its pattern: leaving
/// one out renders one function for actions of different namespaces or packages
/// (`*/*` with `owl-{action}` would run every namespace's `foo` on one function). A
/// fixed name or ARN, with no placeholder, is an explicit choice to share a function.
fn covers_wildcards(t: &FunctionTemplate, p: &route::ActionPattern) -> Result<(), String> {
    use route::{Segment, TemplateSegment};
    if !t.has_placeholders() {
        return Ok(());
    }
    let segments = [
        (Some(&p.namespace), TemplateSegment::Namespace, "namespace"),
        (p.package.as_ref(), TemplateSegment::Package, "package"),
        (Some(&p.action), TemplateSegment::Action, "action"),
    ];
    for (segment, placeholder, name) in segments {
        if segment == Some(&Segment::Any) && !t.uses(placeholder) {
            return Err(format!(
                "\"{}\" leaves out `{{{name}}}`, but the pattern \"{p}\" matches any {name}: actions of different {name}s would share one function; add `{{{name}}}`, or name one function without placeholders to share it on purpose",
                t.as_str()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyErrors> {
        Policy::parse(text, "p.toml", Path::new("/etc/owl"))
    }

    /// Issue 15 §1: a template that leaves out a `*` segment merges actions of
    /// different namespaces or packages into one function; a fixed name is allowed.
    #[test]
    fn templates_must_name_every_wildcard_segment() {
        let with = |action: &str, function: &str| {
            parse(&format!(
                "[controller]\nurl = \"http://c:1\"\n[[route]]\naction = \"{action}\"\nfunction = \"{function}\"\n"
            ))
        };
        let err = with("*/*", "owl-{action}").unwrap_err().to_string();
        assert!(err.contains("leaves out `{namespace}`"), "{err}");
        let err = with("shop/*/*", "owl-shop-{action}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("leaves out `{package}`"), "{err}");
        let err = with("shop/*", "owl-{namespace}").unwrap_err().to_string();
        assert!(err.contains("leaves out `{action}`"), "{err}");
        assert!(with("*/*", "owl-{namespace}-{action}").is_ok());
        assert!(with("shop/*/*", "owl-{package}-{action}").is_ok());
        assert!(with("*/*", "owl-shared").is_ok());
        assert!(
            with(
                "*/*",
                "arn:aws:lambda:us-east-1:123456789012:function:shared"
            )
            .is_ok()
        );
    }

    /// A static sequence is stored as the whisks database stores one: kind
    /// `sequence`, `exec.components` fully qualified (Exec.scala:300-306).
    #[test]
    fn static_sequences_are_stored_as_openwhisk_stores_them() {
        let with = |extra: &str| {
            parse(&format!(
                "[controller]\nurl = \"http://c:1\"\n[metadata]\nsource = \"file\"\n[[metadata.action]]\naction = \"guest/s\"\n{extra}"
            ))
        };
        let p = with("components = [\"guest/a\", \"guest/pkg/b\"]\n").unwrap();
        let (id, doc) = &p.metadata.documents[0];
        assert_eq!(id, "guest/s");
        assert_eq!(
            doc["exec"],
            serde_json::json!({"kind": "sequence", "components": ["/guest/a", "/guest/pkg/b"]})
        );
        let read = crate::whisk::ActionMetadata::from_json(doc).unwrap();
        assert_eq!(read.kind, "sequence");
        assert_eq!(read.components.len(), 2);
        let err = with("components = [\"_/a\"]\n").unwrap_err().to_string();
        assert!(err.contains("name the namespace of _/a"), "{err}");
        let err = with("components = [\"guest/a\"]\nkind = \"nodejs:20\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("an action with `components` is a sequence"),
            "{err}"
        );
        let err = with("components = []\n").unwrap_err().to_string();
        assert!(err.contains("must not be empty"), "{err}");
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.2.3.4".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    /// Issue 15 §19: a controller URL with credentials is refused without echoing
    /// them; a JWKS URL over plain http needs an explicit opt-in.
    #[test]
    fn credentials_and_plain_http_keys_are_refused() {
        let err = parse("[controller]\nurl = \"http://admin:s3cret@c:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not carry credentials"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let jwt = |extra: &str| {
            parse(&format!(
                "[controller]\nurl = \"http://c:1\"\n[auth.jwt]\nissuer = \"i\"\naudience = \"a\"\nalgorithms = [\"RS256\"]\njwks_url = \"http://idp:8080/jwks\"\nnamespace_claim = \"ns\"\n{extra}"
            ))
        };
        let err = jwt("").unwrap_err().to_string();
        assert!(err.contains("plain http"), "{err}");
        assert!(jwt("allow_insecure_jwks = true\n").is_ok());
    }

    /// Issue 15 §18: an https CouchDB takes the controller's CA options.
    #[test]
    fn couchdb_over_https_takes_a_ca_file_or_accepts_a_self_signed_certificate() {
        let couch = |extra: &str| {
            parse(&format!(
                "[controller]\nurl = \"http://c:1\"\n[couchdb]\nurl = \"https://couch:6984\"\n{extra}"
            ))
        };
        let c = couch("ca_file = \"ca.pem\"\n").unwrap().couchdb.unwrap();
        assert_eq!(c.ca_file.as_deref(), Some(Path::new("/etc/owl/ca.pem")));
        assert!(!c.accept_invalid_certs);
        let c = couch("accept_invalid_certs = true\n")
            .unwrap()
            .couchdb
            .unwrap();
        assert!(c.accept_invalid_certs && c.ca_file.is_none());
        let c = couch("").unwrap().couchdb.unwrap();
        assert!(!c.accept_invalid_certs && c.ca_file.is_none());
        let err = couch("accept_invalid_certs = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("accept_invalid_certs"), "{err}");
    }

    #[test]
    fn minimal_policy() {
        let p = parse("[controller]\nurl = \"http://127.0.0.1:3233\"\n").unwrap();
        assert_eq!(p.controller.timeout, Duration::from_secs(75));
        assert!(p.routes.is_empty());
        assert!(p.lambda.log_tail);
    }

    #[test]
    fn full_policy() {
        let p = parse(
            r#"
[server]
tls_cert = "cert.pem"
tls_key = "/abs/key.pem"

[controller]
url = "https://ow.example.com"
timeout = "30s"
accept_invalid_certs = true

[lambda]
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:4566"

[[route]]
action = "guest/*"
function = "owl-{namespace}-{action}"
qualifier = "live"
weight = 25.5
timeout = "3s"
fallback = "none"
payload = "event"
"#,
        )
        .unwrap();
        assert_eq!(p.server.tls_cert.unwrap(), Path::new("/etc/owl/cert.pem"));
        assert_eq!(p.server.tls_key.unwrap(), Path::new("/abs/key.pem"));
        let r = &p.routes.routes()[0];
        assert_eq!(r.line, 15);
        assert_eq!(r.weight, 25.5);
        assert_eq!(r.fallback, Fallback::None);
        assert_eq!(r.payload, PayloadMode::Event);
        assert_eq!(r.timeout, Some(Duration::from_secs(3)));
    }

    #[test]
    fn every_error_is_reported_with_its_position() {
        let err = parse(
            r#"[controller]
url = "ftp://x"
timout = "3s"

[[route]]
action = "guest/a/b/c"
function = "f"
weight = 101

[[route]]
action = "guest/x"
function = "bad name"
timeout = "soon"
fallback = "maybe"
"#,
        )
        .unwrap_err();
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        assert!(
            lines[0].starts_with("p.toml:2:7: error: `url` in [controller]"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("p.toml:3:1: error: unknown key `timout`"),
            "{text}"
        );
        assert!(lines[1].contains("did you mean `timeout`"), "{text}");
        assert!(
            lines[2].starts_with("p.toml:6:10: error: `action`"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("p.toml:8:10: error: `weight`"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("p.toml:12:12: error: `function`"),
            "{text}"
        );
        assert!(
            lines[5].starts_with("p.toml:13:11: error: `timeout`"),
            "{text}"
        );
        assert!(
            lines[6].starts_with("p.toml:14:12: error: `fallback`"),
            "{text}"
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse("[controller\nurl = 1").unwrap_err();
        assert_eq!(err.diagnostics[0].line, 1);
        assert!(!err.to_string().is_empty());
    }

    #[test]
    fn missing_controller_is_an_error() {
        let err = parse("[lambda]\nregion = \"us-east-1\"\n").unwrap_err();
        assert!(err.to_string().contains("[controller]"));
    }

    #[test]
    fn controller_url_must_be_a_base_url() {
        assert!(parse_base_url("http://h:1").is_ok());
        assert!(parse_base_url("http://h:1/").is_ok());
        assert!(parse_base_url("http://h:1/api").is_err());
        assert!(parse_base_url("h:1").is_err());
    }

    #[test]
    fn limits_and_their_redis_settings() {
        let p = parse(
            "[controller]\nurl = \"http://h:1\"\n[limits]\nbackend = \"redis\"\nredis_url = \"redis://r:6379\"\non_redis_error = \"reject\"\nlease = \"10s\"\n[limits.namespace.guest]\ninvocations_per_minute = 5\n",
        )
        .unwrap();
        assert_eq!(
            p.limits.backend,
            ThrottleBackend::Redis {
                url: "redis://r:6379".into(),
                degrade_to_local: false
            }
        );
        assert_eq!(p.limits.lease, Duration::from_secs(10));
        assert_eq!(p.limits.namespaces[0].0, "guest");
        assert_eq!(p.limits.namespaces[0].1.per_minute, Some(5));
        assert_eq!(p.limits.namespaces[0].1.concurrent, None);
        // Redis settings without the Redis backend are errors, not silently ignored.
        let err = parse(
            "[controller]\nurl = \"http://h:1\"\n[limits]\nredis_url = \"redis://r\"\non_redis_error = \"reject\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "p.toml:4:13: error: `redis_url` in [limits] only applies with backend = \"redis\""
            ),
            "{err}"
        );
        assert!(
            err.contains("p.toml:5:18: error: `on_redis_error`"),
            "{err}"
        );
        let err = parse("[controller]\nurl = \"http://h:1\"\n[limits]\nbackend = \"redis\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs `redis_url`"), "{err}");
    }

    #[test]
    fn web_routes_need_a_way_to_find_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys.toml");
        std::fs::write(
            &keys,
            "[namespaces]\nguest = \"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP\"\n",
        )
        .unwrap();
        let route = |ns: &str, web: &str| {
            format!("[[route]]\naction = \"{ns}/a\"\nfunction = \"f-{ns}\"\n{web}\n")
        };
        // `web = true` with the controller as identity source and no key: refused, with
        // the reason and the ways out.
        let err = parse(&format!(
            "[controller]\nurl = \"http://h:1\"\n{}",
            route("alice", "web = true")
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("error: the route for \"alice/a\" sets web = true, but with [auth] source = \"controller\""), "{err}");
        assert!(err.contains("set web = false"), "{err}");
        // Unset: a warning; its web calls go to the controller.
        let p = parse(&format!(
            "[controller]\nurl = \"http://h:1\"\n{}",
            route("alice", "")
        ))
        .unwrap();
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("web calls of the route for \"alice/a\" go to the controller")),
            "{:?}",
            p.warnings
        );
        // A key for the namespace, `web = false`, or an identity source that finds
        // owners by namespace: nothing to say.
        let p = Policy::parse(
            &format!(
                "[controller]\nurl = \"http://h:1\"\n[web]\nservice_keys_file = \"{}\"\n{}{}",
                keys.display(),
                route("guest", "web = true"),
                route("alice", "web = false")
            ),
            "p.toml",
            Path::new("."),
        )
        .unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert!(p.web.service_key_namespaces.contains("guest"));
        let p = parse(&format!(
            "[controller]\nurl = \"http://h:1\"\n[auth]\nsource = \"file\"\nidentities_file = \"ids.toml\"\n{}",
            route("alice", "web = true")
        ))
        .unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        // A missing keys file and a bad vanity host are errors at their keys.
        let err = parse("[controller]\nurl = \"http://h:1\"\n[web]\nservice_keys_file = \"/nonexistent/k.toml\"\nvanity_host = \"a..b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "p.toml:4:21: error: `service_keys_file` in [web]: cannot read /nonexistent/k.toml"
            ),
            "{err}"
        );
        assert!(
            err.contains("`vanity_host` in [web]: \"a..b\" is not a host name"),
            "{err}"
        );
    }
}
