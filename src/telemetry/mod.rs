//! Telemetry: Prometheus metrics (served at `/metrics`).
//!
//! Metric labels are bounded: store kinds, outcomes, route patterns — never raw paths,
//! ids or credentials.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

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
    /// Activation records written to the store.
    pub records_written: Family<StoreLabels, Counter>,
    /// Failed batch writes (each retried).
    pub record_write_failures: Family<StoreLabels, Counter>,
    /// Records dropped after the retry budget ran out.
    pub records_dropped: Family<StoreLabels, Counter>,
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
        let records_written = Family::<StoreLabels, Counter>::default();
        registry.register(
            "owl_activation_records_written",
            "Activation records written to the store",
            records_written.clone(),
        );
        let record_write_failures = Family::<StoreLabels, Counter>::default();
        registry.register(
            "owl_activation_record_write_failures",
            "Failed attempts to write a batch of activation records (retried)",
            record_write_failures.clone(),
        );
        let records_dropped = Family::<StoreLabels, Counter>::default();
        registry.register(
            "owl_activation_records_dropped",
            "Activation records dropped after the store kept failing for write_retry",
            records_dropped.clone(),
        );
        let record_queue_depth = Gauge::default();
        registry.register(
            "owl_activation_record_queue_depth",
            "Activation records waiting to be written",
            record_queue_depth.clone(),
        );
        let store_healthy = Gauge::default();
        registry.register(
            "owl_activation_store_healthy",
            "1 while the last write to the activation store succeeded",
            store_healthy.clone(),
        );
        let records_recovered = Counter::default();
        registry.register(
            "owl_activation_records_recovered",
            "Accepted invocations completed as interrupted after a restart",
            records_recovered.clone(),
        );
        let cache_requests = Family::<CacheLabels, Counter>::default();
        registry.register(
            "owl_cache_requests",
            "Identity and action-metadata cache lookups by result (hit, miss, stale, error)",
            cache_requests.clone(),
        );
        let throttle_rejections = Family::<ThrottleLabels, Counter>::default();
        registry.register(
            "owl_throttle_rejections",
            "Lambda-path invocations refused by namespace throttles (429)",
            throttle_rejections.clone(),
        );
        let throttle_redis_errors = Counter::default();
        registry.register(
            "owl_throttle_redis_errors",
            "Failed calls to the Redis server that shares throttles",
            throttle_redis_errors.clone(),
        );
        let throttle_redis_up = Gauge::default();
        throttle_redis_up.set(1);
        registry.register(
            "owl_throttle_redis_up",
            "1 while Redis answers (0: throttles are local or rejecting)",
            throttle_redis_up.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "owl_policy_reloads",
            "Policy reloads by result",
            reloads.clone(),
        );
        let breaker_transitions = Family::<BreakerLabels, Counter>::default();
        registry.register(
            "owl_breaker_transitions",
            "Circuit-breaker transitions of Lambda functions, by route",
            breaker_transitions.clone(),
        );
        let breakers_open = Gauge::default();
        registry.register(
            "owl_breakers_open",
            "Lambda functions whose breaker is open or half-open",
            breakers_open.clone(),
        );
        let draining = Gauge::default();
        registry.register(
            "owl_draining",
            "1 while owl drains for shutdown",
            draining.clone(),
        );
        let overload_rejections = Counter::default();
        registry.register(
            "owl_overload_rejections",
            "Requests refused with 503 because max_in_flight requests were running",
            overload_rejections.clone(),
        );
        Self {
            registry: Mutex::new(registry),
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
            record_queue_depth,
            store_healthy,
            records_recovered,
        }
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
