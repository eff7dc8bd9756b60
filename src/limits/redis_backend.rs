//! Throttle counters in Redis, shared by every gateway that uses the same server.
//!
//! One Lua script per admission does the whole check atomically: count the attempt in
//! the calendar minute's key, compare with the rate limit, drop expired leases, count
//! the leases in flight, and add this invocation's lease. Leases are renewed by this
//! process while their invocations run and expire otherwise.

use super::{Effective, concurrency_rejection, current_minute, rate_rejection};
use crate::error::WhiskError;
use crate::telemetry::Metrics;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest a Redis call may take before owl treats Redis as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

const ADMIT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], 120000) end
if count > tonumber(ARGV[1]) then return {1, count} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local inflight = redis.call('ZCARD', KEYS[2])
if inflight >= tonumber(ARGV[2]) then return {2, inflight} end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[2], 3600000)
return {0, count}
";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rate_key(ns: &str, minute: u64) -> String {
    format!("owl:{{{ns}}}:rate:{minute}")
}

/// Gives one attempt back to a minute's count, if that minute's key still exists.
const REFUND: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
";

fn inflight_key(ns: &str) -> String {
    format!("owl:{{{ns}}}:inflight")
}

/// The Redis side of the throttles.
pub struct RedisThrottle {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    admit: redis::Script,
    refund: redis::Script,
    /// Live leases: id → namespace.
    live: Mutex<HashMap<String, String>>,
    renewer: AtomicBool,
    /// A lease lives this long unless renewed (renewed every third of it).
    lease: Duration,
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    metrics: Arc<Metrics>,
}

impl RedisThrottle {
    /// A client for `url` (no connection yet).
    pub fn new(url: &str, lease: Duration, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)
                .map_err(|e| anyhow::anyhow!("[limits] redis_url: {e}"))?,
            conn: tokio::sync::Mutex::new(None),
            admit: redis::Script::new(ADMIT),
            refund: redis::Script::new(REFUND),
            live: Mutex::new(HashMap::new()),
            renewer: AtomicBool::new(false),
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

    fn note(&self, result: Result<(), &str>) {
        match result {
            Ok(()) => {
                if !self.reachable.swap(true, Ordering::SeqCst) {
                    tracing::info!("Redis reachable again; throttles are shared again");
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

    /// `Ok(Ok((lease, minute)))` admitted, `Ok(Err(429))` throttled, `Err(reason)`
    /// Redis failed.
    pub async fn admit(
        self: &Arc<Self>,
        ns: &str,
        limits: Effective,
    ) -> Result<Result<(String, u64), WhiskError>, String> {
        self.start_renewer();
        let outcome = async {
            let mut conn = self.connection().await?;
            let lease = uuid::Uuid::new_v4().simple().to_string();
            let now = now_ms();
            let minute = current_minute();
            let mut inv = self.admit.prepare_invoke();
            inv.key(rate_key(ns, minute))
                .key(inflight_key(ns))
                .arg(limits.per_minute)
                .arg(limits.concurrent)
                .arg(now)
                .arg(now + self.lease.as_millis() as u64)
                .arg(&lease);
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
                    Ok((lease, minute))
                }
                1 => Err(rate_rejection(n, limits.per_minute)),
                _ => Err(concurrency_rejection(n, limits.concurrent)),
            })
        }
        .await;
        self.note(outcome.as_ref().map(|_| ()).map_err(String::as_str));
        outcome
    }

    /// Gives one attempt back to `minute`'s count (best effort, in the background).
    pub fn refund(self: &Arc<Self>, ns: &str, minute: u64) {
        let this = self.clone();
        let key = rate_key(ns, minute);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Ok(mut conn) = this.connection().await {
                    let _ = tokio::time::timeout(
                        CALL_TIMEOUT,
                        this.refund.key(key).invoke_async::<i64>(&mut conn),
                    )
                    .await;
                }
            });
        }
    }

    /// Releases a lease (best effort: an unreleased lease expires).
    pub fn release(self: &Arc<Self>, ns: &str, lease: &str) {
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

    fn start_renewer(self: &Arc<Self>) {
        if self.renewer.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let every = match weak.upgrade() {
                    Some(t) => t.lease / 3,
                    None => return,
                };
                tokio::time::sleep(every).await;
                let Some(this) = weak.upgrade() else { return };
                let leases: Vec<(String, String)> = this
                    .live
                    .lock()
                    .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                if leases.is_empty() {
                    continue;
                }
                let Ok(mut conn) = this.connection().await else {
                    continue;
                };
                let expiry = now_ms() + this.lease.as_millis() as u64;
                let mut pipe = redis::pipe();
                for (lease, ns) in &leases {
                    pipe.cmd("ZADD")
                        .arg(inflight_key(ns))
                        .arg("XX")
                        .arg(expiry)
                        .arg(lease)
                        .ignore();
                }
                let r = tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
                if !matches!(r, Ok(Ok(()))) {
                    tracing::debug!(lease = ?this.lease, "renewing throttle leases failed; they expire unless renewed");
                }
            }
        });
    }

    /// `(reachable, last error)`.
    /// Asks Redis for a PONG (readiness), noting whether it answered.
    pub async fn ping(&self) {
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

    pub fn health(&self) -> (bool, Option<String>) {
        (
            self.reachable.load(Ordering::SeqCst),
            self.last_error.lock().ok().and_then(|e| e.clone()),
        )
    }
}
