//! A bounded cache for identities and action metadata: positive answers for `ttl`,
//! rejections for `negative_ttl`, failures for [`FAILURE_TTL`] (so a source in trouble
//! gets one lookup per key per second, not one per request); lookups of one key run one at a time
//! (a burst of callers costs one source request); and when an expired entry's source
//! fails, the entry is served for up to `stale_if_error` longer (counted as `stale`).

use crate::auth::CredentialHash;
use crate::error::WhiskError;
use crate::telemetry::{CacheLabels, Metrics};
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a source answered: `Ok(Ok(v))` a value, `Ok(Err(e))` a definite rejection to
/// replay, `Err(e)` a failure (source down), cached only for [`FAILURE_TTL`].
pub(crate) type Lookup<V> = Result<Result<V, WhiskError>, WhiskError>;

/// How long a failed lookup is answered from the cache (when no stale value can be
/// served): brief, so a recovered source is used again within a second.
pub(crate) const FAILURE_TTL: Duration = Duration::from_secs(1);

struct Entry<V> {
    value: Result<Arc<V>, WhiskError>,
    fetched: Instant,
    /// Freshness of this entry (ttl, negative_ttl, or less for a token near expiry).
    fresh_for: Duration,
}

impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            fetched: self.fetched,
            fresh_for: self.fresh_for,
        }
    }
}

struct Lifetime {
    stale_if_error: Duration,
}

impl<V> Expiry<CredentialHash, Entry<V>> for Lifetime {
    fn expire_after_create(
        &self,
        _k: &CredentialHash,
        e: &Entry<V>,
        _at: Instant,
    ) -> Option<Duration> {
        Some(if e.value.is_ok() {
            e.fresh_for + self.stale_if_error
        } else {
            e.fresh_for
        })
    }

    fn expire_after_update(
        &self,
        k: &CredentialHash,
        e: &Entry<V>,
        at: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(k, e, at)
    }
}

/// The cache.
pub struct SwrCache<V> {
    name: &'static str,
    inner: Cache<CredentialHash, Entry<V>>,
    ttl: Duration,
    negative_ttl: Duration,
    stale_if_error: Duration,
    metrics: Arc<Metrics>,
}

impl<V: Send + Sync + 'static> SwrCache<V> {
    /// A cache named `name` (a metric label).
    pub fn new(
        name: &'static str,
        max_entries: u64,
        ttl: Duration,
        negative_ttl: Duration,
        stale_if_error: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            name,
            inner: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(Lifetime { stale_if_error })
                .build(),
            ttl,
            negative_ttl,
            stale_if_error,
            metrics,
        }
    }

    fn count(&self, result: &'static str) {
        // The phase span (`auth` or `metadata`) says how the lookup was answered.
        crate::telemetry::traces::record("owl.cache", result);
        self.metrics
            .cache_requests
            .get_or_create(&CacheLabels {
                cache: self.name,
                result,
            })
            .inc();
    }

    /// The value for `key`, from the cache or from `load`. `max_fresh` caps freshness
    /// (a token's remaining lifetime).
    pub async fn get<Fut>(
        &self,
        key: CredentialHash,
        max_fresh: Option<Duration>,
        load: Fut,
    ) -> Result<Arc<V>, WhiskError>
    where
        Fut: Future<Output = Lookup<V>>,
    {
        if let Some(e) = self.inner.get(&key).await
            && e.fetched.elapsed() < e.fresh_for
        {
            self.count("hit");
            return e.value;
        }
        let (ttl, negative_ttl, stale) = (self.ttl, self.negative_ttl, self.stale_if_error);
        let mut outcome = "miss";
        let result = self
            .inner
            .entry(key)
            .and_try_compute_with(|existing| async {
                if let Some(e) = &existing
                    && e.value().fetched.elapsed() < e.value().fresh_for
                {
                    // Another caller refreshed it while this one waited.
                    outcome = "hit";
                    return Ok(Op::Nop);
                }
                match load.await {
                    Ok(answer) => {
                        let fresh_for = match (&answer, max_fresh) {
                            (Ok(_), Some(cap)) => ttl.min(cap),
                            (Ok(_), None) => ttl,
                            (Err(_), _) => negative_ttl,
                        };
                        Ok(Op::Put(Entry {
                            value: answer.map(Arc::new),
                            fetched: Instant::now(),
                            fresh_for,
                        }))
                    }
                    Err(failure) => match existing {
                        Some(e)
                            if e.value().value.is_ok()
                                && e.value().fetched.elapsed() < e.value().fresh_for + stale =>
                        {
                            outcome = "stale";
                            Ok(Op::Nop)
                        }
                        _ => {
                            outcome = "error";
                            Ok(Op::Put(Entry {
                                value: Err(failure),
                                fetched: Instant::now(),
                                fresh_for: FAILURE_TTL,
                            }))
                        }
                    },
                }
            })
            .await;
        match result {
            Ok(r) => {
                self.count(outcome);
                match r.into_entry() {
                    Some(e) => e.into_value().value,
                    None => Err(WhiskError::internal()),
                }
            }
            Err(failure) => {
                self.count("error");
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Issue 15 §16: a failed lookup is answered from the cache for a second — one
    /// source request per key per second while it fails — and never stands for a value.
    #[tokio::test]
    async fn failures_are_cached_briefly() {
        let cache: SwrCache<u32> = SwrCache::new(
            "identity",
            100,
            Duration::from_secs(60),
            Duration::from_secs(10),
            Duration::ZERO,
            Arc::new(Metrics::new()),
        );
        let calls = AtomicUsize::new(0);
        let failing = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(WhiskError::internal())
        };
        for _ in 0..5 {
            assert!(cache.get([1; 32], None, failing()).await.is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(FAILURE_TTL + Duration::from_millis(100)).await;
        let v = cache
            .get([1; 32], None, async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(Ok(7))
            })
            .await
            .unwrap();
        assert_eq!((*v, calls.load(Ordering::SeqCst)), (7, 2));
    }
}
