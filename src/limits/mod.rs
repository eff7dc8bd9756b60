//! Namespace throttles on the Lambda path, enforced as OpenWhisk enforces them
//! (reference §5.1, §1.7): invocations per calendar minute (every attempt counts,
//! rejected ones too) and invocations in flight, checked in that order, with the
//! controller's 429 texts.
//!
//! Counting happens in this process by default, or in Redis with atomic scripts so
//! that every gateway sharing it enforces one limit. A concurrency slot is a lease in
//! Redis that this process keeps renewing while the invocation runs; a crashed gateway
//! stops renewing, so its slots expire instead of leaking. When Redis cannot be
//! reached owl rejects, or admits only this gateway's share of each limit (the limit
//! divided by the gateways registered in Redis, as OpenWhisk divides a limit among
//! controllers), as configured, and says so in readiness and metrics. This gateway's
//! own counts of the minute are kept either way: they count against its share while
//! Redis is away and re-seed Redis when it comes back empty.

mod redis_backend;

use crate::error::WhiskError;
use crate::policy::{LimitsConfig, ThrottleBackend};
use crate::telemetry::{Metrics, ThrottleLabels};
use redis_backend::RedisThrottle;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The limits that apply to one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Effective {
    /// Invocations per calendar minute.
    pub per_minute: u64,
    /// Invocations in flight.
    pub(crate) concurrent: u64,
}

impl Effective {
    /// Policy override for `ns`, else the namespace's own limits document, else the
    /// system defaults of the policy.
    pub(crate) fn for_namespace(cfg: &LimitsConfig, ns: &str, doc: Option<&Value>) -> Self {
        let over = cfg
            .namespaces
            .iter()
            .find(|(n, _)| n == ns)
            .map(|(_, t)| *t);
        let from_doc = |k: &str| doc.and_then(|d| d.get(k)).and_then(Value::as_u64);
        Self {
            per_minute: over
                .and_then(|o| o.per_minute)
                .or_else(|| from_doc("invocationsPerMinute"))
                .unwrap_or(cfg.per_minute),
            concurrent: over
                .and_then(|o| o.concurrent)
                .or_else(|| from_doc("concurrentInvocations"))
                .unwrap_or(cfg.concurrent),
        }
    }
}

/// The 429 for the rate limit (`count` includes this request).
pub(crate) fn rate_rejection(count: u64, allowed: u64) -> WhiskError {
    let mut e = WhiskError::too_many_requests(
        crate::whisk::messages::too_many_per_minute(count, allowed),
        None,
    );
    e.origin = crate::error::Origin::Client;
    e
}

/// The 429 for the concurrency limit (`count` excludes this request).
pub(crate) fn concurrency_rejection(count: u64, allowed: u64) -> WhiskError {
    let mut e = WhiskError::too_many_requests(
        crate::whisk::messages::too_many_in_flight(count, allowed),
        None,
    );
    e.origin = crate::error::Origin::Client;
    e
}

/// The current calendar minute (`currentTimeMillis / 60000`).
pub(crate) fn current_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64 / 60_000)
}

/// The limit one of `replicas` gateways enforces alone when the counts are not
/// shared, as OpenWhisk divides a limit among its controllers: 0 stays 0, anything
/// else at least 1 [OW core/controller/.../entitlement/Entitlement.scala:121-133
/// `calculateIndividualLimit`]. (OpenWhisk also dilates the limit by 20 % for
/// unfair load balancing; owl does not, to stay within the limit.)
pub(crate) fn share(limit: u64, replicas: u64) -> u64 {
    if limit == 0 {
        0
    } else {
        (limit / replicas.max(1)).max(1)
    }
}

/// This gateway's own counts for one namespace.
#[derive(Default)]
struct Own {
    /// The calendar minute `attempts` counts.
    minute: u64,
    /// Attempts this gateway counted in `minute`, wherever they were counted (Redis
    /// or here): what it re-seeds an emptied Redis with.
    attempts: u64,
    /// Slots this gateway holds.
    in_flight: u64,
}

/// This gateway's own counters: the whole count with the `local` backend, and with
/// Redis what lets the gateway admit its share while Redis is away and re-seed Redis
/// when it comes back empty.
#[derive(Default)]
struct Local {
    namespaces: Mutex<HashMap<String, Own>>,
}

impl Local {
    fn with<T>(&self, ns: &str, f: impl FnOnce(&mut Own, u64) -> T) -> T {
        let minute = current_minute();
        let mut map = self.namespaces.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, s| s.in_flight > 0 || s.minute + 1 >= minute);
        }
        let s = map.entry(ns.to_string()).or_default();
        if s.minute != minute {
            s.minute = minute;
            s.attempts = 0;
        }
        f(s, minute)
    }

    /// Counts an attempt here against `limits` shared among `replicas`, and takes a
    /// slot; returns the minute it was counted in.
    fn admit(&self, ns: &str, limits: Effective, replicas: u64) -> Result<u64, WhiskError> {
        let (per_minute, concurrent) = (
            share(limits.per_minute, replicas),
            share(limits.concurrent, replicas),
        );
        self.with(ns, |s, minute| {
            s.attempts += 1;
            if s.attempts > per_minute {
                return Err(rate_rejection(s.attempts, per_minute));
            }
            if s.in_flight >= concurrent {
                return Err(concurrency_rejection(s.in_flight, concurrent));
            }
            s.in_flight += 1;
            Ok(minute)
        })
    }

    /// The attempts counted so far in `minute` (0 once it has passed).
    fn attempts(&self, ns: &str, minute: u64) -> u64 {
        self.with(ns, |s, now| if now == minute { s.attempts } else { 0 })
    }

    /// Notes an attempt Redis counted (`admitted`: with a slot) in `minute`.
    fn counted_in_redis(&self, ns: &str, minute: u64, admitted: bool) {
        self.with(ns, |s, now| {
            if now == minute {
                s.attempts += 1;
            }
            if admitted {
                s.in_flight += 1;
            }
        });
    }

    /// This gateway's attempts in the current minute, by namespace (for re-seeding).
    fn current(&self) -> (u64, Vec<(String, u64)>) {
        let minute = current_minute();
        let map = self.namespaces.lock().unwrap_or_else(|e| e.into_inner());
        let counts = map
            .iter()
            .filter(|(_, s)| s.minute == minute && s.attempts > 0)
            .map(|(ns, s)| (ns.clone(), s.attempts))
            .collect();
        (minute, counts)
    }

    fn release(&self, ns: &str) {
        let mut map = self.namespaces.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(ns) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }

    fn refund(&self, ns: &str, minute: u64) {
        let mut map = self.namespaces.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(ns)
            && s.minute == minute
        {
            s.attempts = s.attempts.saturating_sub(1);
        }
    }
}

/// Where a slot was taken.
enum Held {
    /// Counted here (the `local` backend, or Redis away).
    Local(Arc<Local>),
    /// Counted in Redis, with this lease; also held in this gateway's own counts.
    Redis(Arc<Local>, Arc<RedisThrottle>, String),
}

/// A concurrency slot; released when dropped.
pub(crate) struct Slot {
    ns: String,
    /// The calendar minute the attempt was counted in.
    minute: u64,
    held: Held,
}

impl Slot {
    /// The attempt ends on the controller after all (a composition, a function owl
    /// cannot name, a fallback): the controller throttles it itself, so owl gives the
    /// attempt back to the minute it was counted in — a request is counted once — and
    /// the concurrency slot with it.
    pub(crate) fn refund(self) {
        match &self.held {
            Held::Local(l) => l.refund(&self.ns, self.minute),
            Held::Redis(l, r, _) => {
                l.refund(&self.ns, self.minute);
                r.refund(&self.ns, self.minute);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        match &self.held {
            Held::Local(l) => l.release(&self.ns),
            Held::Redis(l, r, lease) => {
                l.release(&self.ns);
                r.release(&self.ns, lease);
            }
        }
    }
}

/// Health of the shared counter, for readiness.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ThrottleHealth {
    /// `local` or `redis`.
    pub backend: &'static str,
    /// Redis answered the last call (always true for `local`).
    pub(crate) reachable: bool,
    /// What happens while Redis is unreachable: `local` or `reject`.
    pub(crate) on_error: &'static str,
    /// The last Redis error, if the last call failed.
    pub error: Option<String>,
    /// Gateways sharing the counts, as last seen in Redis (1 for `local`): while
    /// Redis is away each admits its share of a limit.
    pub replicas: u64,
}

/// Namespace throttles.
pub(crate) struct Throttles {
    local: Arc<Local>,
    redis: Option<(Arc<RedisThrottle>, bool)>,
    metrics: Arc<Metrics>,
}

impl Throttles {
    /// Counters for `cfg`'s backend (Redis is connected lazily and reconnected).
    pub(crate) fn new(cfg: &LimitsConfig, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let local = Arc::new(Local::default());
        let redis = match &cfg.backend {
            ThrottleBackend::Local => None,
            ThrottleBackend::Redis {
                url,
                degrade_to_local,
            } => {
                let r = Arc::new(RedisThrottle::new(
                    url,
                    cfg.lease,
                    metrics.clone(),
                    local.clone(),
                )?);
                // Registered from the start, so the other gateways count this one
                // before Redis goes away.
                r.start_renewer();
                Some((r, *degrade_to_local))
            }
        };
        Ok(Self {
            local,
            redis,
            metrics,
        })
    }

    /// Leaves the set of gateways sharing Redis (on shutdown; best effort).
    pub(crate) async fn close(&self) {
        if let Some((r, _)) = &self.redis {
            r.deregister().await;
        }
    }

    fn rejected(&self, ns: &str, e: WhiskError) -> WhiskError {
        let rate = e
            .message
            .starts_with("Too many requests in the last minute");
        self.metrics
            .throttle_rejections
            .get_or_create(&ThrottleLabels {
                reason: if rate { "rate" } else { "concurrency" },
            })
            .inc();
        // OpenWhisk's user-events names: TimedRateLimit and ConcurrentRateLimit.
        let labels = crate::telemetry::NamespaceLabels {
            namespace: ns.to_string(),
        };
        if rate {
            self.metrics
                .openwhisk
                .limit_timed
                .get_or_create(&labels)
                .inc();
        } else {
            self.metrics
                .openwhisk
                .limit_concurrent
                .get_or_create(&labels)
                .inc();
        }
        e
    }

    /// Counts one invocation attempt of `ns` and takes a concurrency slot, or answers
    /// with the controller's 429.
    pub(crate) async fn admit(&self, ns: &str, limits: Effective) -> Result<Slot, WhiskError> {
        let mut replicas = 1;
        if let Some((redis, degrade)) = &self.redis {
            // One minute for both counts: a boundary passing while Redis answers must
            // not carry this minute's count into the next one.
            let minute = current_minute();
            let known = self.local.attempts(ns, minute);
            match redis.admit(ns, limits, minute, known).await {
                Ok((minute, Ok(lease))) => {
                    self.local.counted_in_redis(ns, minute, true);
                    return Ok(Slot {
                        ns: ns.to_string(),
                        minute,
                        held: Held::Redis(self.local.clone(), redis.clone(), lease),
                    });
                }
                Ok((minute, Err(e))) => {
                    self.local.counted_in_redis(ns, minute, false);
                    return Err(self.rejected(ns, e));
                }
                Err(e) => {
                    if !degrade {
                        tracing::warn!(error = %e, "Redis unreachable; rejecting (on_redis_error = reject)");
                        return Err(WhiskError::service_unavailable(
                            crate::error::Origin::Internal,
                            Some(1),
                        ));
                    }
                    replicas = redis.replicas();
                    tracing::debug!(error = %e, replicas, "Redis unreachable; admitting this gateway's share");
                }
            }
        }
        match self.local.admit(ns, limits, replicas) {
            Ok(minute) => Ok(Slot {
                ns: ns.to_string(),
                minute,
                held: match &self.redis {
                    // Admitted while Redis is away: the slot still gets a lease,
                    // written to Redis when it is back, so the invocations running
                    // then count against the shared limit.
                    Some((redis, _)) => {
                        Held::Redis(self.local.clone(), redis.clone(), redis.adopt(ns))
                    }
                    None => Held::Local(self.local.clone()),
                },
            }),
            Err(e) => Err(self.rejected(ns, e)),
        }
    }

    /// Checks that the shared counter answers (readiness); a no-op for `local`.
    pub(crate) async fn probe(&self) {
        if let Some((r, _)) = &self.redis {
            r.ping().await;
        }
    }

    /// For readiness and status.
    pub(crate) fn health(&self) -> ThrottleHealth {
        match &self.redis {
            None => ThrottleHealth {
                backend: "local",
                reachable: true,
                on_error: "local",
                error: None,
                replicas: 1,
            },
            Some((r, degrade)) => {
                let (reachable, error) = r.health();
                ThrottleHealth {
                    backend: "redis",
                    reachable,
                    on_error: if *degrade { "local" } else { "reject" },
                    error,
                    replicas: r.replicas(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::NamespaceThrottles;
    use serde_json::json;

    fn cfg() -> LimitsConfig {
        LimitsConfig {
            per_minute: 60,
            concurrent: 30,
            namespaces: vec![(
                "big".into(),
                NamespaceThrottles {
                    per_minute: Some(1000),
                    concurrent: None,
                },
            )],
            backend: ThrottleBackend::Local,
            lease: std::time::Duration::from_secs(30),
        }
    }

    #[test]
    fn precedence() {
        let doc = json!({"invocationsPerMinute": 5, "concurrentInvocations": 2});
        assert_eq!(
            Effective::for_namespace(&cfg(), "x", None),
            Effective {
                per_minute: 60,
                concurrent: 30
            }
        );
        assert_eq!(
            Effective::for_namespace(&cfg(), "x", Some(&doc)),
            Effective {
                per_minute: 5,
                concurrent: 2
            }
        );
        assert_eq!(
            Effective::for_namespace(&cfg(), "big", Some(&doc)),
            Effective {
                per_minute: 1000,
                concurrent: 2
            }
        );
    }

    #[tokio::test]
    async fn local_counting_matches_openwhisk() {
        let t = Throttles::new(&cfg(), Arc::new(Metrics::new())).unwrap();
        let limits = Effective {
            per_minute: 3,
            concurrent: 2,
        };
        let a = t.admit("ns", limits).await.unwrap();
        let _b = t.admit("ns", limits).await.unwrap();
        let e = t.admit("ns", limits).await.err().unwrap();
        assert_eq!(
            e.message,
            "Too many concurrent requests in flight (count: 2, allowed: 2)."
        );
        drop(a);
        let e = t.admit("ns", limits).await.err().unwrap();
        // the fourth attempt this minute: rejected attempts count too
        assert_eq!(
            e.message,
            "Too many requests in the last minute (count: 4, allowed: 3)."
        );
        assert_eq!(e.status, 429);
        let zero = Effective {
            per_minute: 0,
            concurrent: 10,
        };
        assert_eq!(
            t.admit("blocked", zero).await.err().unwrap().message,
            "Too many requests in the last minute (count: 1, allowed: 0)."
        );
    }

    #[test]
    fn a_share_is_openwhisks_individual_limit() {
        assert_eq!(share(12, 3), 4);
        assert_eq!(share(10, 3), 3);
        assert_eq!(share(2, 3), 1, "at least one");
        assert_eq!(share(0, 3), 0, "a blocked namespace stays blocked");
        assert_eq!(share(7, 0), 7);
    }

    /// Alone (Redis away), a gateway counts what it admitted through Redis this
    /// minute against its share.
    #[test]
    fn a_share_counts_the_minutes_attempts_through_redis() {
        let local = Local::default();
        let limits = Effective {
            per_minute: 12,
            concurrent: 30,
        };
        let minute = current_minute();
        local.counted_in_redis("ns", minute, true);
        local.counted_in_redis("ns", minute, false);
        assert_eq!(local.attempts("ns", minute), 2);
        assert_eq!(
            local.attempts("ns", minute + 1),
            0,
            "a new minute starts at 0"
        );
        assert!(local.admit("ns", limits, 3).is_ok());
        assert!(local.admit("ns", limits, 3).is_ok());
        let e = local.admit("ns", limits, 3).err().unwrap();
        assert_eq!(
            e.message,
            "Too many requests in the last minute (count: 5, allowed: 4)."
        );
        assert_eq!(local.current().1, vec![("ns".to_string(), 5)]);
    }
}
