//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! owl's own metrics carry bounded labels only: paths (`lambda`, `proxy`,
//! `fallback`), status classes, store kinds, reasons, route patterns — never raw
//! request paths, ids or credentials. The `openwhisk_action_*` family reproduces the
//! names and labels of OpenWhisk's user-events service for the activations owl serves
//! from Lambda, so existing OpenWhisk dashboards keep working; its label sets
//! (namespace, initiator, action) are capped at [`MAX_ACTION_SERIES`], beyond which
//! actions are counted under `action="_other"`.

use arc_swap::ArcSwap;
use owl_whisk::Activation;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// Most distinct (namespace, initiator, action) label sets in the `openwhisk_action_*`
/// family; later actions are counted under `action="_other"`.
pub(crate) const MAX_ACTION_SERIES: usize = 2000;

/// The default buckets of Prometheus' Java client, which OpenWhisk's user-events
/// service uses for its time histograms (seconds).
const OPENWHISK_TIME_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Buckets for owl's latency histograms: 100 µs to ~105 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 21)
}

/// Buckets for the gateway's own overhead: 10 µs to ~0.33 s, doubling.
fn overhead_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.00001, 2.0, 16)
}

/// Registers `metric` and notes the sample names it exposes.
fn reg<M>(registry: &mut Registry, names: &mut Vec<String>, name: &str, help: &str, metric: M)
where
    M: prometheus_client::registry::Metric + TypedMetric,
{
    match M::TYPE {
        MetricType::Counter => names.push(format!("{name}_total")),
        MetricType::Histogram => {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.push(format!("{name}{suffix}"));
            }
        }
        _ => names.push(name.to_string()),
    }
    registry.register(name, help, metric);
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

fn overhead_histogram() -> Histogram {
    Histogram::new(overhead_buckets())
}

fn openwhisk_time_histogram() -> Histogram {
    Histogram::new(OPENWHISK_TIME_BUCKETS)
}

fn openwhisk_size_histogram() -> Histogram {
    // OpenWhisk: linearBuckets(0, MAX_ACTIVATION_ENTITY_LIMIT (1 MB), 10).
    Histogram::new(linear_buckets(0.0, 1_048_576.0, 10))
}

/// A counter exposed without the `_total` suffix, as OpenWhisk's user-events service
/// (Prometheus Java client 0.6) exposes `openwhisk_action_status` and
/// `openwhisk_action_status_code`; typed `unknown` so the exposition stays valid.
#[derive(Debug, Default, Clone)]
pub(crate) struct UntypedCounter(Counter);

impl UntypedCounter {
    /// Adds one.
    pub(crate) fn inc(&self) {
        self.0.inc();
    }
}

impl TypedMetric for UntypedCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for UntypedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

/// Labels of owl's request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `lambda`, `proxy` or `fallback`.
    pub path: &'static str,
    /// The HTTP status class: `2xx` … `5xx`.
    pub outcome: &'static str,
}

/// Label naming the path a request took.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PathLabels {
    /// `lambda`, `proxy` or `fallback`.
    pub path: &'static str,
}

/// Label naming a route by its action pattern.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's action pattern, e.g. `guest/*` (shared: labelling allocates nothing).
    pub route: Arc<str>,
}

/// Labels of Lambda failures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LambdaErrorLabels {
    /// The route's action pattern.
    pub route: Arc<str>,
    /// What failed (`throttled`, `unreachable`, … see `LambdaError::kind`).
    pub reason: &'static str,
}

/// Labels of Lambda throttles.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LambdaThrottleLabels {
    /// The route's action pattern.
    pub route: Arc<str>,
    /// Lambda's `Reason` (e.g. `ConcurrentInvocationLimitExceeded`).
    pub reason: String,
}

/// OpenWhisk user-events labels of an action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ActionLabels {
    /// The action's namespace (the root of its path).
    pub namespace: String,
    /// The invoking identity's namespace.
    pub(crate) initiator: String,
    /// The action's name within its namespace (`pkg/name` or `name`).
    pub action: String,
}

/// OpenWhisk user-events labels of `openwhisk_action_activations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ActivationLabels {
    /// The action's namespace.
    pub namespace: String,
    /// The invoking identity's namespace.
    pub(crate) initiator: String,
    /// The action's name within its namespace.
    pub action: String,
    /// The action's kind.
    pub kind: String,
    /// The action's memory limit in MB.
    pub memory: String,
}

/// OpenWhisk user-events labels of `openwhisk_action_status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabels {
    /// The action's namespace.
    pub namespace: String,
    /// The invoking identity's namespace.
    pub(crate) initiator: String,
    /// The action's name within its namespace.
    pub action: String,
    /// `success`, `application_error`, `action_developer_error`, `whisk_internal_error`.
    pub status: &'static str,
}

/// OpenWhisk user-events labels of `openwhisk_action_status_code`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusCodeLabels {
    /// The action's namespace.
    pub namespace: String,
    /// The invoking identity's namespace.
    pub(crate) initiator: String,
    /// The action's name within its namespace.
    pub action: String,
    /// The `statusCode` the action put in its result (or its `error`).
    pub status_code: &'static str,
}

/// OpenWhisk user-events label of the limit counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    /// The throttled namespace.
    pub namespace: String,
}

/// The `openwhisk_action_*` family.
pub struct OpenWhiskMetrics {
    activations: Family<ActivationLabels, Counter>,
    cold_starts: Family<ActionLabels, Counter>,
    status: Family<StatusLabels, UntypedCounter>,
    status_code: Family<StatusCodeLabels, UntypedCounter>,
    wait_time: HistogramFamily<ActionLabels>,
    init_time: HistogramFamily<ActionLabels>,
    duration: HistogramFamily<ActionLabels>,
    response_size: HistogramFamily<ActionLabels>,
    memory: Family<ActionLabels, Gauge>,
    /// `openwhisk_action_limit_concurrent_total{namespace}`.
    pub limit_concurrent: Family<NamespaceLabels, Counter>,
    /// `openwhisk_action_limit_timed_total{namespace}`.
    pub limit_timed: Family<NamespaceLabels, Counter>,
    /// Each series' handles, read without a lock.
    series: ArcSwap<SeriesMap>,
    /// The (namespace, initiator, action) triples with a series of their own; held
    /// while a new series is built.
    admitted: Mutex<HashSet<(String, String, String)>>,
    hasher: RandomState,
}

impl OpenWhiskMetrics {
    fn register(registry: &mut Registry, names: &mut Vec<String>) -> Self {
        let m = Self {
            activations: Family::default(),
            cold_starts: Family::default(),
            status: Family::default(),
            status_code: Family::default(),
            wait_time: Family::new_with_constructor(openwhisk_time_histogram),
            init_time: Family::new_with_constructor(openwhisk_time_histogram),
            duration: Family::new_with_constructor(openwhisk_time_histogram),
            response_size: Family::new_with_constructor(openwhisk_size_histogram),
            memory: Family::default(),
            limit_concurrent: Family::default(),
            limit_timed: Family::default(),
            series: ArcSwap::default(),
            admitted: Mutex::new(HashSet::new()),
            hasher: RandomState::new(),
        };
        reg(
            registry,
            names,
            "openwhisk_action_activations",
            "Activation Count",
            m.activations.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_coldStarts",
            "Cold start counts",
            m.cold_starts.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_status",
            "Activation failure status type",
            m.status.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_status_code",
            "status code returned in action result response set by developer",
            m.status_code.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_waitTime_seconds",
            "Internal system hold time",
            m.wait_time.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_initTime_seconds",
            "Time it took to initialize an action, e.g. docker init",
            m.init_time.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_duration_seconds",
            "Actual time the action code was running",
            m.duration.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_response_size_bytes",
            "Activation Response size",
            m.response_size.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_memory",
            "Memory consumption of the action containers",
            m.memory.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_limit_concurrent",
            "a user has exceeded its limit for concurrent invocations",
            m.limit_concurrent.clone(),
        );
        reg(
            registry,
            names,
            "openwhisk_action_limit_timed",
            "the user has reached its per minute limit for the number of invocations",
            m.limit_timed.clone(),
        );
        m
    }

    /// Counts an activation owl completed, as OpenWhisk's user-events service counts
    /// the activation events invokers emit. `initiator` is the invoking namespace.
    ///
    /// On the hot path this allocates nothing and takes no lock: the series' handles
    /// are found in a copy-on-write map read without locking ([`ArcSwap`]); only the
    /// first activation of a series builds its handles, under the admission lock.
    pub fn record(&self, a: &Activation, initiator: &str) {
        // OpenWhisk derives the action from the `path` annotation (`ns/[pkg/]name`).
        let Some(path) = a.annotation("path").and_then(Value::as_str) else {
            return;
        };
        let (namespace, action) = path.split_once('/').unwrap_or((path, ""));
        let kind = a.annotation("kind").and_then(Value::as_str).unwrap_or("");
        let memory = a
            .annotation("limits")
            .and_then(|l| l.get("memory"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let key = SeriesKey {
            namespace,
            initiator,
            action,
            kind,
            memory,
        };
        let series = self.series(&key);
        series.activations.inc();
        series.memory.set(memory as i64);
        let ms = |key: &str| a.annotation(key).and_then(Value::as_u64).unwrap_or(0);
        let init = ms("initTime");
        if init > 0 {
            series
                .cold_starts
                .get_or_init(|| self.cold_starts.get_or_create(&series.labels).clone())
                .inc();
            series
                .init_time
                .get_or_init(|| self.init_time.get_or_create(&series.labels).clone())
                .observe(init as f64 / 1000.0);
        }
        series.wait_time.observe(ms("waitTime") as f64 / 1000.0);
        let duration = (a.end - a.start).max(0) as f64 / 1000.0;
        series.duration.observe(duration);
        let status = match a.response.status_code {
            owl_whisk::StatusCode::Success => 0,
            owl_whisk::StatusCode::ApplicationError => 1,
            owl_whisk::StatusCode::DeveloperError => 2,
            owl_whisk::StatusCode::WhiskError => 3,
        };
        series.status[status]
            .get_or_init(|| {
                self.status
                    .get_or_create(&StatusLabels {
                        namespace: series.labels.namespace.clone(),
                        initiator: series.labels.initiator.clone(),
                        action: series.labels.action.clone(),
                        status: STATUS_LABELS[status],
                    })
                    .clone()
            })
            .inc();
        if let Some(size) = a.response.size {
            series
                .response_size
                .get_or_init(|| self.response_size.get_or_create(&series.labels).clone())
                .observe(size as f64);
        }
        if let Some(code) = user_defined_status_code(a.response.result.as_ref()) {
            self.status_code(&series, status_code_label(code)).inc();
        }
    }

    /// The handles of `key`'s series: built once, then found without a lock.
    fn series(&self, key: &SeriesKey<'_>) -> Arc<ActionSeries> {
        let hash = self.hasher.hash_one(key);
        if let Some(s) = self
            .series
            .load()
            .get(&hash)
            .and_then(|c| c.iter().find(|s| s.is(key)))
        {
            return s.clone();
        }
        let mut admitted = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
        // Another activation of the series may have built it meanwhile.
        let map = self.series.load_full();
        if let Some(s) = map.get(&hash).and_then(|c| c.iter().find(|s| s.is(key))) {
            return s.clone();
        }
        let triple = (
            key.namespace.to_string(),
            key.initiator.to_string(),
            key.action.to_string(),
        );
        let action = if admitted.contains(&triple) || admitted.len() < MAX_ACTION_SERIES {
            admitted.insert(triple);
            key.action.to_string()
        } else {
            OTHER_ACTION.to_string()
        };
        let series = Arc::new(self.build_series(key, action));
        // The map stays bounded: past the cap, actions counted under `_other` are not
        // cached (each builds its handles again — correct, only slower).
        if map.values().map(Vec::len).sum::<usize>() < MAX_CACHED_SERIES {
            let mut grown = HashMap::clone(&map);
            grown.entry(hash).or_default().push(series.clone());
            self.series.store(Arc::new(grown));
        }
        series
    }

    /// A series' handles (registering its labels with the families).
    fn build_series(&self, key: &SeriesKey<'_>, action: String) -> ActionSeries {
        let labels = ActionLabels {
            namespace: key.namespace.to_string(),
            initiator: key.initiator.to_string(),
            action,
        };
        let activations = self
            .activations
            .get_or_create(&ActivationLabels {
                namespace: labels.namespace.clone(),
                initiator: labels.initiator.clone(),
                action: labels.action.clone(),
                kind: key.kind.to_string(),
                memory: key.memory.to_string(),
            })
            .clone();
        ActionSeries {
            action: key.action.into(),
            kind: key.kind.into(),
            memory_mb: key.memory,
            activations,
            memory: self.memory.get_or_create(&labels).clone(),
            wait_time: self.wait_time.get_or_create(&labels).clone(),
            duration: self.duration.get_or_create(&labels).clone(),
            cold_starts: OnceLock::new(),
            init_time: OnceLock::new(),
            response_size: OnceLock::new(),
            status: Default::default(),
            status_codes: RwLock::new(Vec::new()),
            labels,
        }
    }

    /// The `openwhisk_action_status_code` counter of `series` for `code` (a bounded
    /// label: see [`status_code_label`]).
    fn status_code(&self, series: &ActionSeries, code: &'static str) -> UntypedCounter {
        let known = series
            .status_codes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, counter)| counter.clone());
        if let Some(counter) = known {
            return counter;
        }
        let counter = self
            .status_code
            .get_or_create(&StatusCodeLabels {
                namespace: series.labels.namespace.clone(),
                initiator: series.labels.initiator.clone(),
                action: series.labels.action.clone(),
                status_code: code,
            })
            .clone();
        let mut codes = series
            .status_codes
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if !codes.iter().any(|(c, _)| *c == code) {
            codes.push((code, counter.clone()));
        }
        counter
    }
}

/// The `action` label of actions past [`MAX_ACTION_SERIES`].
const OTHER_ACTION: &str = "_other";

/// Most series whose handles are cached (a series per action, kind and memory, so a
/// few per admitted action at most).
const MAX_CACHED_SERIES: usize = 4 * MAX_ACTION_SERIES;

/// The `status` label by index: success, application error, developer error, whisk
/// error (OpenWhisk's `Activation.statusCodeToString`).
const STATUS_LABELS: [&str; 4] = [
    "success",
    "application_error",
    "action_developer_error",
    "whisk_internal_error",
];

/// What identifies a series of the `openwhisk_action_*` family, borrowed from the
/// activation (hashing and comparing it allocates nothing).
#[derive(Hash)]
struct SeriesKey<'a> {
    namespace: &'a str,
    initiator: &'a str,
    action: &'a str,
    kind: &'a str,
    memory: u64,
}

/// The handles of one series: the shared state of the families' metrics (cloning a
/// prometheus-client metric clones a handle, not the value). Metrics OpenWhisk only
/// shows once they have a sample are created on first use.
struct ActionSeries {
    /// The rest of the [`SeriesKey`] the series was built for (its namespace and
    /// initiator are the labels'): the action as recorded (the label may be `_other`),
    /// the kind and the memory limit.
    action: Box<str>,
    kind: Box<str>,
    memory_mb: u64,
    labels: ActionLabels,
    activations: Counter,
    memory: Gauge,
    wait_time: Histogram,
    duration: Histogram,
    cold_starts: OnceLock<Counter>,
    init_time: OnceLock<Histogram>,
    response_size: OnceLock<Histogram>,
    status: [OnceLock<UntypedCounter>; 4],
    status_codes: RwLock<Vec<(&'static str, UntypedCounter)>>,
}

impl ActionSeries {
    fn is(&self, k: &SeriesKey<'_>) -> bool {
        self.labels.namespace == k.namespace
            && self.labels.initiator == k.initiator
            && *self.action == *k.action
            && *self.kind == *k.kind
            && self.memory_mb == k.memory
    }
}

/// Series handles by the hash of their key (collisions share a bucket).
type SeriesMap = HashMap<u64, Vec<Arc<ActionSeries>>, BuildHasherDefault<PrehashedKey>>;

/// A hasher for keys that already are hashes.
#[derive(Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The `statusCode` an action set in its result, as OpenWhisk reads it: `error.statusCode`,
/// else `statusCode`; a value that is not an integer counts as 400.
fn user_defined_status_code(result: Option<&Value>) -> Option<i64> {
    let obj = result?.as_object()?;
    let v = obj
        .get("error")
        .and_then(|e| e.get("statusCode"))
        .or_else(|| obj.get("statusCode"))?;
    Some(v.as_i64().unwrap_or(400))
}

/// The `status_code` label of a code an action chose: a registered HTTP status keeps
/// its number; any other value in 100..=599 becomes its class (`4xx`), anything else
/// `other` — an action cannot grow the registry by returning new integers.
fn status_code_label(code: i64) -> &'static str {
    match u16::try_from(code)
        .ok()
        .and_then(|c| http::StatusCode::from_u16(c).ok())
    {
        Some(s) if s.as_u16() < 600 => STATUS_CODE_LABELS[usize::from(s.as_u16() - 100)],
        _ => "other",
    }
}

/// The `status_code` label of each code in 100..=599, made once: the code itself
/// for a registered status, its class (`4xx`) for any other.
static STATUS_CODE_LABELS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    (100..600u16)
        .map(|c| match http::StatusCode::from_u16(c) {
            Ok(s) if s.canonical_reason().is_some() => &*c.to_string().leak(),
            _ => ["1xx", "2xx", "3xx", "4xx", "5xx"][usize::from(c / 100) - 1],
        })
        .collect()
});

/// Label set naming an activation store.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    /// `embedded` or `couchdb`.
    pub store: String,
}

/// Label set of a cache lookup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `identity` or `action`.
    pub cache: &'static str,
    /// `hit`, `miss`, `stale` (served past its TTL because the source failed) or
    /// `error` (the source failed and nothing could be served).
    pub result: &'static str,
}

/// Label set of a throttle rejection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThrottleLabels {
    /// `rate` or `concurrency`.
    pub reason: &'static str,
}

/// Label set of a policy reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// Label set of a breaker transition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerLabels {
    /// The route's action pattern.
    pub route: String,
    /// `opened`, `half_open` or `closed`.
    pub to: &'static str,
}

/// All of owl's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// The sample names every registered family can expose.
    names: Vec<String>,
    /// Activation records written to the store.
    pub records_written: Family<StoreLabels, Counter>,
    /// Failed batch writes (each retried).
    pub record_write_failures: Family<StoreLabels, Counter>,
    /// Records dropped after the retry budget ran out.
    pub records_dropped: Family<StoreLabels, Counter>,
    /// Records left in the journal after the retry budget ran out (retried later).
    pub records_deferred: Family<StoreLabels, Counter>,
    /// Records waiting to be written.
    pub record_queue_depth: Gauge,
    /// 1 while the last store write succeeded.
    pub store_healthy: Gauge,
    /// Pending journal entries completed as interrupted after a restart.
    pub records_recovered: Counter,
    /// Identity and metadata cache lookups by result.
    pub cache_requests: Family<CacheLabels, Counter>,
    /// Invocations refused by namespace throttles.
    pub throttle_rejections: Family<ThrottleLabels, Counter>,
    /// Failed calls to Redis.
    pub throttle_redis_errors: Counter,
    /// 1 while Redis answers (shared throttles).
    pub throttle_redis_up: Gauge,
    /// Policy reloads by result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Breaker transitions by route.
    pub breaker_transitions: Family<BreakerLabels, Counter>,
    /// Breakers currently open (or half-open).
    pub breakers_open: Gauge,
    /// 1 while draining for shutdown.
    pub draining: Gauge,
    /// Requests refused because too many were in flight.
    pub overload_rejections: Counter,
    /// Requests by path and status class.
    pub requests: Family<RequestLabels, Counter>,
    /// Time to response headers by path and status class.
    pub(crate) request_duration: HistogramFamily<RequestLabels>,
    /// Time to response headers minus the upstream's (Lambda or controller) time.
    pub(crate) gateway_overhead: HistogramFamily<PathLabels>,
    /// One Lambda Invoke attempt, by route.
    pub lambda_call_duration: HistogramFamily<RouteLabels>,
    /// Lambda calls that did not produce a reply, by route and reason.
    pub lambda_errors: Family<LambdaErrorLabels, Counter>,
    /// Lambda throttles by route and Lambda's reason.
    pub lambda_throttles: Family<LambdaThrottleLabels, Counter>,
    /// OpenWhisk's user-events metrics for activations served from Lambda.
    pub openwhisk: OpenWhiskMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut names = Vec::new();
        let records_written = Family::<StoreLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_activation_records_written",
            "Activation records written to the store",
            records_written.clone(),
        );
        let record_write_failures = Family::<StoreLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_activation_record_write_failures",
            "Failed attempts to write a batch of activation records (retried)",
            record_write_failures.clone(),
        );
        let records_dropped = Family::<StoreLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_activation_records_dropped",
            "Activation records dropped after the store kept failing for write_retry",
            records_dropped.clone(),
        );
        let records_deferred = Family::<StoreLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_activation_records_deferred",
            "Activation records kept in the local journal after the store kept failing for write_retry; written later",
            records_deferred.clone(),
        );
        let record_queue_depth = Gauge::default();
        reg(
            &mut registry,
            &mut names,
            "owl_activation_record_queue_depth",
            "Activation records waiting to be written",
            record_queue_depth.clone(),
        );
        let store_healthy = Gauge::default();
        reg(
            &mut registry,
            &mut names,
            "owl_activation_store_healthy",
            "1 while the last write to the activation store succeeded",
            store_healthy.clone(),
        );
        let records_recovered = Counter::default();
        reg(
            &mut registry,
            &mut names,
            "owl_activation_records_recovered",
            "Accepted invocations completed as interrupted after a restart",
            records_recovered.clone(),
        );
        let cache_requests = Family::<CacheLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_cache_requests",
            "Identity and action-metadata cache lookups by result (hit, miss, stale, error)",
            cache_requests.clone(),
        );
        let throttle_rejections = Family::<ThrottleLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_throttle_rejections",
            "Lambda-path invocations refused by namespace throttles (429)",
            throttle_rejections.clone(),
        );
        let throttle_redis_errors = Counter::default();
        reg(
            &mut registry,
            &mut names,
            "owl_throttle_redis_errors",
            "Failed calls to the Redis server that shares throttles",
            throttle_redis_errors.clone(),
        );
        let throttle_redis_up = Gauge::default();
        throttle_redis_up.set(1);
        reg(
            &mut registry,
            &mut names,
            "owl_throttle_redis_up",
            "1 while Redis answers (0: throttles are local or rejecting)",
            throttle_redis_up.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_policy_reloads",
            "Policy reloads by result",
            reloads.clone(),
        );
        let breaker_transitions = Family::<BreakerLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_breaker_transitions",
            "Circuit-breaker transitions of Lambda functions, by route",
            breaker_transitions.clone(),
        );
        let breakers_open = Gauge::default();
        reg(
            &mut registry,
            &mut names,
            "owl_breakers_open",
            "Lambda functions whose breaker is open or half-open",
            breakers_open.clone(),
        );
        let draining = Gauge::default();
        reg(
            &mut registry,
            &mut names,
            "owl_draining",
            "1 while owl drains for shutdown",
            draining.clone(),
        );
        let overload_rejections = Counter::default();
        reg(
            &mut registry,
            &mut names,
            "owl_overload_rejections",
            "Requests refused with 503 because max_in_flight requests were running",
            overload_rejections.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_requests",
            "Requests by path (lambda, proxy, fallback) and HTTP status class",
            requests.clone(),
        );
        let request_duration: HistogramFamily<RequestLabels> =
            Family::new_with_constructor(latency_histogram);
        reg(
            &mut registry,
            &mut names,
            "owl_request_duration_seconds",
            "Time from a request's arrival to its response headers, by path and status class",
            request_duration.clone(),
        );
        let gateway_overhead: HistogramFamily<PathLabels> =
            Family::new_with_constructor(overhead_histogram);
        reg(
            &mut registry,
            &mut names,
            "owl_gateway_overhead_seconds",
            "Time to response headers minus the time spent waiting for Lambda or the controller",
            gateway_overhead.clone(),
        );
        let lambda_call_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        reg(
            &mut registry,
            &mut names,
            "owl_lambda_call_duration_seconds",
            "Duration of one Lambda Invoke attempt, by route",
            lambda_call_duration.clone(),
        );
        let lambda_errors = Family::<LambdaErrorLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_lambda_errors",
            "Lambda calls that produced no reply, by route and reason",
            lambda_errors.clone(),
        );
        let lambda_throttles = Family::<LambdaThrottleLabels, Counter>::default();
        reg(
            &mut registry,
            &mut names,
            "owl_lambda_throttles",
            "Lambda throttles by route and Lambda's reason",
            lambda_throttles.clone(),
        );
        let openwhisk = OpenWhiskMetrics::register(&mut registry, &mut names);
        Self {
            registry: Mutex::new(registry),
            names,
            requests,
            request_duration,
            gateway_overhead,
            lambda_call_duration,
            lambda_errors,
            lambda_throttles,
            openwhisk,
            throttle_rejections,
            throttle_redis_errors,
            throttle_redis_up,
            reloads,
            breaker_transitions,
            breakers_open,
            draining,
            overload_rejections,
            cache_requests,
            records_written,
            record_write_failures,
            records_dropped,
            records_deferred,
            record_queue_depth,
            store_healthy,
            records_recovered,
        }
    }

    /// Counts a request that got its response headers after `total`, of which
    /// `upstream` was spent waiting for Lambda or the controller.
    pub fn observe_request(
        &self,
        path: &'static str,
        status: http::StatusCode,
        total: Duration,
        upstream: Duration,
    ) {
        let outcome = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let labels = RequestLabels { path, outcome };
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(&labels)
            .observe(total.as_secs_f64());
        self.gateway_overhead
            .get_or_create(&PathLabels { path })
            .observe(total.saturating_sub(upstream).as_secs_f64());
    }

    /// Every sample name owl can expose (`_total` for counters; `_bucket`, `_sum`,
    /// `_count` for histograms), whether or not it has samples yet.
    pub fn sample_names(&self) -> &[String] {
        &self.names
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15 §4: the label takes a bounded set of values whatever the actions return.
    #[test]
    fn status_code_labels_are_bounded() {
        assert_eq!(status_code_label(200), "200");
        assert_eq!(status_code_label(404), "404");
        assert_eq!(status_code_label(418), "418");
        assert_eq!(status_code_label(499), "4xx");
        assert_eq!(status_code_label(599), "5xx");
        assert_eq!(status_code_label(600), "other");
        assert_eq!(status_code_label(-1), "other");
        assert_eq!(status_code_label(i64::MAX), "other");
        let labels: std::collections::HashSet<&str> =
            (-1000..100_000).map(status_code_label).collect();
        assert!(labels.len() < 80, "{}", labels.len());
    }

    fn activation(path: &str, kind: &str, result: Value, init_ms: Option<u64>) -> Activation {
        use owl_whisk::activation::Annotation;
        let mut annotations = vec![
            Annotation {
                key: "limits".into(),
                value: serde_json::json!({"timeout": 60000, "memory": 256, "logs": 10}),
            },
            Annotation {
                key: "path".into(),
                value: path.into(),
            },
            Annotation {
                key: "kind".into(),
                value: kind.into(),
            },
            Annotation {
                key: "waitTime".into(),
                value: 3.into(),
            },
        ];
        if let Some(init) = init_ms {
            annotations.push(Annotation {
                key: "initTime".into(),
                value: init.into(),
            });
        }
        Activation {
            duration_ms: None,
            namespace: "guest".into(),
            name: "a".into(),
            subject: "guest".into(),
            activation_id: owl_whisk::ActivationId::generate(),
            start: 1000,
            end: 1250,
            cause: None,
            response: owl_whisk::ActivationResponse::success(result, Some(12)),
            logs: Vec::new(),
            version: "0.0.1".into(),
            publish: false,
            annotations,
        }
    }

    /// The value of the sample `name{labels}` in `text` (labels as exposed, sorted as
    /// registered).
    fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
        let prefix = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
    }

    /// Series handles count into the same families the exposition reads: every
    /// sample of an activation appears under its labels, repeated activations add up,
    /// and metrics OpenWhisk shows only once used (cold starts, init time, a status
    /// code) appear only then.
    #[test]
    fn activations_are_counted_under_their_series() {
        let m = Metrics::new();
        let warm = activation(
            "guest/pkg/a",
            "nodejs:20",
            serde_json::json!({"ok": true}),
            None,
        );
        m.openwhisk.record(&warm, "alice");
        m.openwhisk.record(&warm, "alice");
        let text = m.render();
        let action = r#"namespace="guest",initiator="alice",action="pkg/a""#;
        assert_eq!(
            sample(
                &text,
                "openwhisk_action_activations_total",
                &format!(r#"{action},kind="nodejs:20",memory="256""#)
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "openwhisk_action_status",
                &format!(r#"{action},status="success""#)
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "openwhisk_action_memory", action),
            Some(256.0)
        );
        assert_eq!(
            sample(&text, "openwhisk_action_duration_seconds_sum", action),
            Some(0.5)
        );
        assert_eq!(
            sample(&text, "openwhisk_action_waitTime_seconds_count", action),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "openwhisk_action_response_size_bytes_count", action),
            Some(2.0)
        );
        assert!(
            !text.contains("openwhisk_action_coldStarts_total{"),
            "{text}"
        );
        assert!(!text.contains("openwhisk_action_status_code{"), "{text}");

        let cold = activation(
            "guest/pkg/a",
            "nodejs:20",
            serde_json::json!({"statusCode": 404}),
            Some(120),
        );
        m.openwhisk.record(&cold, "alice");
        m.openwhisk.record(&cold, "alice");
        let text = m.render();
        assert_eq!(
            sample(&text, "openwhisk_action_coldStarts_total", action),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "openwhisk_action_initTime_seconds_sum", action),
            Some(0.24)
        );
        assert_eq!(
            sample(
                &text,
                "openwhisk_action_status_code",
                &format!(r#"{action},status_code="404""#)
            ),
            Some(2.0)
        );
        // Another kind is another activations series, the same action series.
        let other_kind = activation("guest/pkg/a", "python:3", serde_json::json!({}), None);
        m.openwhisk.record(&other_kind, "alice");
        let text = m.render();
        assert_eq!(
            sample(
                &text,
                "openwhisk_action_activations_total",
                &format!(r#"{action},kind="python:3",memory="256""#)
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "openwhisk_action_status",
                &format!(r#"{action},status="success""#)
            ),
            Some(5.0)
        );
    }

    /// Past the cap, new actions are counted under `_other`; admitted ones keep their
    /// own series, and the cache of handles stays bounded.
    #[test]
    fn action_series_are_capped() {
        let m = Metrics::new();
        for i in 0..MAX_ACTION_SERIES {
            m.openwhisk.record(
                &activation(&format!("guest/a{i}"), "nodejs:20", Value::Null, None),
                "guest",
            );
        }
        for i in 0..3 {
            m.openwhisk.record(
                &activation(&format!("guest/late{i}"), "nodejs:20", Value::Null, None),
                "guest",
            );
        }
        m.openwhisk.record(
            &activation("guest/a0", "nodejs:20", Value::Null, None),
            "guest",
        );
        let text = m.render();
        let with = |action: &str| {
            format!(
                r#"namespace="guest",initiator="guest",action="{action}",kind="nodejs:20",memory="256""#
            )
        };
        assert_eq!(
            sample(&text, "openwhisk_action_activations_total", &with("_other")),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, "openwhisk_action_activations_total", &with("a0")),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "openwhisk_action_activations_total", &with("late0")),
            None
        );
        let cached: usize = m.openwhisk.series.load().values().map(Vec::len).sum();
        assert!(cached <= MAX_CACHED_SERIES, "{cached}");
    }
}
