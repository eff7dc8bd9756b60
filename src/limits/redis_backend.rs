//! Throttle counters in Redis, shared by every gateway that uses the same server.
//!
//! One Lua script per admission does the whole check atomically: count the attempt
//! in the calendar minute's hash (one field per gateway), compare the sum with the
//! rate limit, drop expired leases, count the leases in flight, and add this
//! invocation's lease. Leases are renewed by this process while their invocations
//! run and expire otherwise.
//!
//! Each gateway also keeps its own count of the minute's attempts (`Local`). The
//! script raises the gateway's field to that count before adding the attempt, so a
//! Redis that restarted empty (or missed the attempts a gateway admitted alone while
//! Redis was away) is re-seeded with every gateway's attempts; after an outage, or
//! when a heartbeat finds its registration gone, a gateway re-seeds every namespace
//! it counted this minute and re-adds its live leases at once. Gateways register in
//! `owl:replicas` with a heartbeat, so each knows how many share the limits: while
//! Redis is away it admits only its share.

use super::{Effective, Local, concurrency_rejection, rate_rejection};
use crate::error::WhiskError;
use crate::telemetry::Metrics;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest a Redis call may take before owl treats Redis as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// KEYS: the minute's hash, the in-flight leases. ARGV: rate limit, concurrency
/// limit, now, lease expiry, lease id, this gateway, the attempts this gateway
/// counted this minute before this one.
const ADMIT: &str = r"
local mine = tonumber(redis.call('HGET', KEYS[1], ARGV[6]) or '0')
local known = tonumber(ARGV[7])
if mine < known then mine = known end
redis.call('HSET', KEYS[1], ARGV[6], mine + 1)
redis.call('PEXPIRE', KEYS[1], 120000)
local count = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do count = count + tonumber(v) end
if count > tonumber(ARGV[1]) then return {1, count} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local inflight = redis.call('ZCARD', KEYS[2])
if inflight >= tonumber(ARGV[2]) then return {2, inflight} end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[2], 3600000)
return {0, count}
";

/// Raises this gateway's field of a minute's hash to its own count (KEYS: the hash;
/// ARGV: the gateway, its count).
const SEED: &str = r"
local mine = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if mine < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], 120000)
end
return 0
";

/// Gives one attempt back to this gateway's field, if the minute's hash still exists.
const REFUND: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return redis.call('HINCRBY', KEYS[1], ARGV[1], -1) end
return 0
";

/// The gateways sharing this Redis: member = gateway id, score = registration expiry.
const REPLICAS_KEY: &str = "owl:replicas";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The minute's attempts, one field per gateway. (Named apart from the plain
/// counters of earlier versions, which hold another type.)
fn rate_key(ns: &str, minute: u64) -> String {
    format!("owl:{{{ns}}}:attempts:{minute}")
}

fn inflight_key(ns: &str) -> String {
    format!("owl:{{{ns}}}:inflight")
}

/// The Redis side of the throttles.
pub(super) struct RedisThrottle {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    admit: redis::Script,
    seed: redis::Script,
    refund: redis::Script,
    /// This gateway's id: its field in the minutes' hashes and its registration.
    id: String,
    /// This gateway's own counts (what it re-seeds Redis with).
    local: Arc<Local>,
    /// Gateways registered, as last seen (at least 1).
    replicas: AtomicU64,
    /// Redis's clock minus this host's, in ms (from `TIME` at each heartbeat):
    /// lease and registration expiries are on Redis's clock, so gateways whose
    /// clocks disagree do not expire each other's.
    clock_offset_ms: AtomicI64,
    /// Live leases: id → namespace.
    live: Mutex<HashMap<String, String>>,
    renewer: AtomicBool,
    /// This gateway has registered once (a later registration that Redis did not
    /// have means Redis lost its data).
    registered: AtomicBool,
    /// A lease lives this long unless renewed (renewed every third of it).
    lease: Duration,
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    metrics: Arc<Metrics>,
}

impl RedisThrottle {
    /// A client for `url` (no connection yet).
    pub(super) fn new(
        url: &str,
        lease: Duration,
        metrics: Arc<Metrics>,
        local: Arc<Local>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)
                .map_err(|e| anyhow::anyhow!("[limits] redis_url: {e}"))?,
            conn: tokio::sync::Mutex::new(None),
            admit: redis::Script::new(ADMIT),
            seed: redis::Script::new(SEED),
            refund: redis::Script::new(REFUND),
            id: uuid::Uuid::new_v4().simple().to_string(),
            local,
            replicas: AtomicU64::new(1),
            clock_offset_ms: AtomicI64::new(0),
            live: Mutex::new(HashMap::new()),
            renewer: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            lease,
            reachable: AtomicBool::new(true),
            last_error: Mutex::new(None),
            metrics,
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let c = tokio::time::timeout(
            CALL_TIMEOUT * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| "connecting to Redis timed out".to_string())?
        .map_err(|e| e.to_string())?;
        *guard = Some(c.clone());
        Ok(c)
    }

    fn note(self: &Arc<Self>, result: Result<(), &str>) {
        match result {
            Ok(()) => {
                if !self.reachable.swap(true, Ordering::SeqCst) {
                    tracing::info!("Redis reachable again; throttles are shared again");
                    // What this gateway counted alone is added back, and an emptied
                    // Redis gets this gateway's counts and leases again.
                    self.reseed();
                }
                self.metrics.throttle_redis_up.set(1);
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
            }
            Err(e) => {
                if self.reachable.swap(false, Ordering::SeqCst) {
                    tracing::warn!(error = %e, "Redis unreachable");
                }
                self.metrics.throttle_redis_up.set(0);
                self.metrics.throttle_redis_errors.inc();
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.to_string());
                }
            }
        }
    }

    /// Now on Redis's clock (epoch ms), as of the last heartbeat.
    fn now_ms(&self) -> u64 {
        (now_ms() as i64 + self.clock_offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }

    /// A lease for a slot admitted while Redis is away: kept with the live ones, so
    /// it is written to Redis when Redis is back, and released like any other.
    pub(super) fn adopt(&self, ns: &str) -> String {
        let lease = uuid::Uuid::new_v4().simple().to_string();
        if let Ok(mut live) = self.live.lock() {
            live.insert(lease.clone(), ns.to_string());
        }
        lease
    }

    /// Gateways sharing the limits, as last seen (at least 1).
    pub(super) fn replicas(&self) -> u64 {
        self.replicas.load(Ordering::Relaxed).max(1)
    }

    /// Writes this gateway's counts of the current minute and its live leases into
    /// Redis again (in the background): after an outage, or when Redis lost them.
    fn reseed(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        handle.spawn(async move {
            let Ok(mut conn) = this.connection().await else {
                return;
            };
            let (minute, counts) = this.local.current();
            for (ns, attempts) in &counts {
                let mut inv = this.seed.prepare_invoke();
                inv.key(rate_key(ns, minute)).arg(&this.id).arg(*attempts);
                let r =
                    tokio::time::timeout(CALL_TIMEOUT, inv.invoke_async::<i64>(&mut conn)).await;
                if !matches!(r, Ok(Ok(_))) {
                    tracing::debug!(namespace = %ns, "re-seeding a throttle count failed");
                    return;
                }
            }
            let leases = this.live_leases();
            if !leases.is_empty() {
                let expiry = this.now_ms() + this.lease.as_millis() as u64;
                let mut pipe = redis::pipe();
                for (lease, ns) in &leases {
                    pipe.cmd("ZADD")
                        .arg(inflight_key(ns))
                        .arg(expiry)
                        .arg(lease)
                        .ignore()
                        .cmd("PEXPIRE")
                        .arg(inflight_key(ns))
                        .arg(3_600_000)
                        .ignore();
                }
                let _ = tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
                // A lease released meanwhile may have been added back: remove it.
                let live = this.live_leases();
                let mut pipe = redis::pipe();
                let mut stale = 0;
                for (lease, ns) in leases.iter().filter(|l| !live.contains(l)) {
                    pipe.cmd("ZREM").arg(inflight_key(ns)).arg(lease).ignore();
                    stale += 1;
                }
                if stale > 0 {
                    let _ =
                        tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
                }
            }
            tracing::info!(
                namespaces = counts.len(),
                leases = leases.len(),
                "throttle counts and leases written to Redis again"
            );
        });
    }

    fn live_leases(&self) -> Vec<(String, String)> {
        self.live
            .lock()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// `Ok((minute, Ok(lease)))` admitted, `Ok((minute, Err(429)))` throttled (either
    /// way counted in `minute`), `Err(reason)` Redis failed. `known`: the attempts
    /// this gateway counted this minute before this one.
    pub(super) async fn admit(
        self: &Arc<Self>,
        ns: &str,
        limits: Effective,
        minute: u64,
        known: u64,
    ) -> Result<(u64, Result<String, WhiskError>), String> {
        self.start_renewer();
        let outcome = async {
            let mut conn = self.connection().await?;
            let lease = uuid::Uuid::new_v4().simple().to_string();
            let now = self.now_ms();
            let mut inv = self.admit.prepare_invoke();
            inv.key(rate_key(ns, minute))
                .key(inflight_key(ns))
                .arg(limits.per_minute)
                .arg(limits.concurrent)
                .arg(now)
                .arg(now + self.lease.as_millis() as u64)
                .arg(&lease)
                .arg(&self.id)
                .arg(known);
            let (code, n): (u64, u64) =
                tokio::time::timeout(CALL_TIMEOUT, inv.invoke_async(&mut conn))
                    .await
                    .map_err(|_| "Redis did not answer in time".to_string())?
                    .map_err(|e| e.to_string())?;
            Ok::<_, String>(match code {
                0 => {
                    if let Ok(mut live) = self.live.lock() {
                        live.insert(lease.clone(), ns.to_string());
                    }
                    (minute, Ok(lease))
                }
                1 => (minute, Err(rate_rejection(n, limits.per_minute))),
                _ => (minute, Err(concurrency_rejection(n, limits.concurrent))),
            })
        }
        .await;
        self.note(outcome.as_ref().map(|_| ()).map_err(String::as_str));
        outcome
    }

    /// Gives one attempt back to `minute`'s count (best effort, in the background).
    pub(super) fn refund(self: &Arc<Self>, ns: &str, minute: u64) {
        let this = self.clone();
        let key = rate_key(ns, minute);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Ok(mut conn) = this.connection().await {
                    let _ = tokio::time::timeout(
                        CALL_TIMEOUT,
                        this.refund
                            .key(key)
                            .arg(&this.id)
                            .invoke_async::<i64>(&mut conn),
                    )
                    .await;
                }
            });
        }
    }

    /// Releases a lease (best effort: an unreleased lease expires).
    pub(super) fn release(self: &Arc<Self>, ns: &str, lease: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(lease);
        }
        let this = self.clone();
        let (key, lease) = (inflight_key(ns), lease.to_string());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Ok(mut conn) = this.connection().await {
                    let _ = tokio::time::timeout(
                        CALL_TIMEOUT,
                        redis::cmd("ZREM")
                            .arg(key)
                            .arg(lease)
                            .query_async::<i64>(&mut conn),
                    )
                    .await;
                }
            });
        }
    }

    /// Starts (once) the task that registers this gateway every third of a lease and
    /// renews its leases.
    pub(super) fn start_renewer(self: &Arc<Self>) {
        if self.renewer.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.renewer.store(false, Ordering::SeqCst);
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        handle.spawn(async move {
            loop {
                let Some(this) = weak.upgrade() else { return };
                this.heartbeat().await;
                let leases = this.live_leases();
                if !leases.is_empty()
                    && let Ok(mut conn) = this.connection().await
                {
                    let expiry = this.now_ms() + this.lease.as_millis() as u64;
                    let mut pipe = redis::pipe();
                    for (lease, ns) in &leases {
                        pipe.cmd("ZADD")
                            .arg(inflight_key(ns))
                            .arg("XX")
                            .arg(expiry)
                            .arg(lease)
                            .ignore();
                    }
                    let r = tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<()>(&mut conn))
                        .await;
                    if !matches!(r, Ok(Ok(()))) {
                        tracing::debug!(lease = ?this.lease, "renewing throttle leases failed; they expire unless renewed");
                    }
                }
                let every = this.lease / 3;
                drop(this);
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Registers this gateway until a lease from now, drops expired registrations and
    /// reads how many remain. A registration Redis no longer had means Redis lost its
    /// data (a restart): this gateway's counts and leases are written again.
    async fn heartbeat(self: &Arc<Self>) {
        let outcome = async {
            let mut conn = self.connection().await?;
            let (secs, micros): (String, String) =
                tokio::time::timeout(CALL_TIMEOUT, redis::cmd("TIME").query_async(&mut conn))
                    .await
                    .map_err(|_| "Redis did not answer in time".to_string())?
                    .map_err(|e| e.to_string())?;
            if let (Ok(s), Ok(us)) = (secs.parse::<i64>(), micros.parse::<i64>()) {
                let offset = s * 1000 + us / 1000 - now_ms() as i64;
                self.clock_offset_ms.store(offset, Ordering::Relaxed);
            }
            let now = self.now_ms();
            let (added, _, replicas): (u64, u64, u64) = tokio::time::timeout(
                CALL_TIMEOUT,
                redis::pipe()
                    .atomic()
                    .cmd("ZADD")
                    .arg(REPLICAS_KEY)
                    .arg(now + self.lease.as_millis() as u64)
                    .arg(&self.id)
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(REPLICAS_KEY)
                    .arg("-inf")
                    .arg(now)
                    .cmd("ZCARD")
                    .arg(REPLICAS_KEY)
                    .query_async(&mut conn),
            )
            .await
            .map_err(|_| "Redis did not answer in time".to_string())?
            .map_err(|e| e.to_string())?;
            Ok::<_, String>((added, replicas))
        }
        .await;
        match outcome {
            Ok((added, replicas)) => {
                self.replicas.store(replicas.max(1), Ordering::Relaxed);
                let recovering = !self.reachable.load(Ordering::SeqCst);
                self.note(Ok(()));
                if added == 1 && !recovering && self.registered.swap(true, Ordering::SeqCst) {
                    tracing::warn!(
                        "this gateway's Redis registration was gone (Redis restarted?); writing its counts again"
                    );
                    self.reseed();
                }
                self.registered.store(true, Ordering::SeqCst);
            }
            Err(e) => tracing::debug!(error = %e, "Redis heartbeat failed"),
        }
    }

    /// Removes this gateway's registration (best effort, on shutdown).
    pub(super) async fn deregister(&self) {
        if let Ok(mut conn) = self.connection().await {
            let _ = tokio::time::timeout(
                CALL_TIMEOUT,
                redis::cmd("ZREM")
                    .arg(REPLICAS_KEY)
                    .arg(&self.id)
                    .query_async::<i64>(&mut conn),
            )
            .await;
        }
    }

    /// `(reachable, last error)`.
    /// Asks Redis for a PONG (readiness), noting whether it answered.
    pub(super) async fn ping(self: &Arc<Self>) {
        let outcome = async {
            let mut conn = self.connection().await?;
            tokio::time::timeout(
                CALL_TIMEOUT,
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await
            .map_err(|_| "Redis did not answer in time".to_string())?
            .map_err(|e| e.to_string())
        }
        .await;
        self.note(outcome.as_ref().map(|_| ()).map_err(String::as_str));
    }

    pub(super) fn health(&self) -> (bool, Option<String>) {
        (
            self.reachable.load(Ordering::SeqCst),
            self.last_error.lock().ok().and_then(|e| e.clone()),
        )
    }
}
