//! AWS credentials for the lean Invoke path: fetched from the provider chain
//! aws-config builds (environment, profiles, SSO, web identity, container and
//! instance metadata), cached, and refreshed ahead of their expiry off the request
//! path.
//!
//! The SDK caches credentials in its client's identity cache, not in the provider;
//! calling Invoke without the SDK's orchestrator means owning that cache. An
//! invocation reads the current credentials with one atomic load. When they are
//! within [`REFRESH_AHEAD`] of expiring, the first invocation to notice starts one
//! refresh in a task of its own and goes on with the credentials it has; only when
//! there are none (the first call) or they have expired does an invocation wait for a
//! fetch, and then all waiters share one.

use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Credentials this close to their expiry are refreshed (or, when they were issued
/// for less than twice this, half-way through their life). The SDK's own cache
/// refreshes 5–10 s before expiry, on the request path; five minutes leave a refresh
/// that fails time to be retried while the credentials in hand still work.
pub(crate) const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

/// Credentials without an expiry (environment, profile files) are fetched again this
/// often, as the SDK's cache does (`DEFAULT_EXPIRATION`), so a rotated profile file
/// is picked up.
pub(crate) const REFETCH_UNEXPIRING: Duration = Duration::from_secs(15 * 60);

/// After a failed background refresh, the next one starts no sooner than this (the
/// credentials in hand are still valid; the provider is not asked at request rate).
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The longest a fetch may take before the invocation waiting for it fails.
pub(crate) const FETCH_BUDGET: Duration = Duration::from_secs(5);

/// Credentials as the signer wants them (with when to refresh them).
#[derive(Debug)]
pub struct Current {
    /// For expiry checks.
    pub(crate) credentials: Credentials,
    /// The same credentials as the signer's identity.
    pub(crate) identity: Identity,
    /// From then on an invocation starts a refresh.
    refresh_at: SystemTime,
}

impl Current {
    /// `credentials` fetched at `now`.
    pub(crate) fn new(credentials: Credentials, now: SystemTime) -> Self {
        let refresh_at = match credentials.expiry() {
            Some(at) => {
                let life = at.duration_since(now).unwrap_or_default();
                at - REFRESH_AHEAD.min(life / 2)
            }
            None => now + REFETCH_UNEXPIRING,
        };
        Self {
            identity: Identity::from(credentials.clone()),
            credentials,
            refresh_at,
        }
    }

    /// Fixed keys (benchmarks, tests): an access key id, its secret, and a session
    /// token when there is one.
    pub fn from_keys(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> Self {
        let c = Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.map(str::to_string),
            None,
            "owl-fixed",
        );
        Self::new(c, SystemTime::now())
    }

    fn expired(&self, now: SystemTime) -> bool {
        self.credentials.expiry().is_some_and(|at| at <= now)
    }
}

/// The cache: the provider, the current credentials, and a flag that keeps refreshes
/// to one at a time.
#[derive(Debug)]
pub(crate) struct CredentialCache {
    provider: SharedCredentialsProvider,
    current: ArcSwapOption<Current>,
    refreshing: AtomicBool,
    /// No background refresh starts before this many milliseconds after `born`.
    retry_at_ms: AtomicU64,
    born: Instant,
    retry_delay: Duration,
    /// Waiters for a fetch share it.
    fetch: tokio::sync::Mutex<()>,
}

/// Why no credentials could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unavailable(pub(crate) String);

impl CredentialCache {
    /// A cache over `provider`, empty until first used.
    pub(crate) fn new(provider: SharedCredentialsProvider) -> Arc<Self> {
        Self::with_retry_delay(provider, RETRY_AFTER_FAILURE)
    }

    fn with_retry_delay(provider: SharedCredentialsProvider, retry_delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            provider,
            current: ArcSwapOption::empty(),
            refreshing: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
            born: Instant::now(),
            retry_delay,
            fetch: tokio::sync::Mutex::new(()),
        })
    }

    /// Usable credentials: the cached ones while they have not expired (starting a
    /// refresh in the background when they are about to), else fresh ones.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Arc<Current>, Unavailable> {
        let now = SystemTime::now();
        if let Some(c) = self.current.load_full() {
            if now < c.refresh_at {
                return Ok(c);
            }
            if !c.expired(now) {
                self.refresh_in_background();
                return Ok(c);
            }
        }
        self.fetch_now(now).await
    }

    /// Fetches unless a fetch that finished while this one waited already did.
    async fn fetch_now(&self, asked_at: SystemTime) -> Result<Arc<Current>, Unavailable> {
        let _one = self.fetch.lock().await;
        if let Some(c) = self.current.load_full()
            && !c.expired(asked_at)
        {
            return Ok(c);
        }
        let fresh = tokio::time::timeout(FETCH_BUDGET, self.provider.provide_credentials())
            .await
            .map_err(|_| {
                Unavailable(format!(
                    "AWS credentials were not resolved within {FETCH_BUDGET:?}"
                ))
            })?
            .map_err(|e| Unavailable(format!("AWS credentials not available: {e}")))?;
        if fresh.expiry().is_some_and(|at| at <= SystemTime::now()) {
            return Err(Unavailable(
                "the AWS credentials provider returned expired credentials".into(),
            ));
        }
        let c = Arc::new(Current::new(fresh, SystemTime::now()));
        self.current.store(Some(c.clone()));
        Ok(c)
    }

    /// Starts one refresh in a task of its own, unless one is running. A failed
    /// refresh keeps the current credentials (they are still valid) and is tried
    /// again, [`RETRY_AFTER_FAILURE`] later, by the next invocation that finds them
    /// close to expiry.
    fn refresh_in_background(self: &Arc<Self>) {
        if self.since_born_ms() < self.retry_at_ms.load(Ordering::Acquire)
            || self.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            let _one = cache.fetch.lock().await;
            let failure = match tokio::time::timeout(
                FETCH_BUDGET,
                cache.provider.provide_credentials(),
            )
            .await
            {
                Ok(Ok(fresh)) if fresh.expiry().is_none_or(|at| at > SystemTime::now()) => {
                    cache
                        .current
                        .store(Some(Arc::new(Current::new(fresh, SystemTime::now()))));
                    None
                }
                Ok(Ok(_)) => Some("the provider returned expired credentials".to_string()),
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("not resolved within {FETCH_BUDGET:?}")),
            };
            if let Some(why) = failure {
                tracing::warn!(error = %why, "AWS credentials refresh failed; the current ones are used until they expire");
                let retry_at = cache.since_born_ms() + cache.retry_delay.as_millis() as u64;
                cache.retry_at_ms.store(retry_at, Ordering::Release);
            }
            cache.refreshing.store(false, Ordering::Release);
        });
    }

    fn since_born_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Resolves credentials now (readiness): `Ok` when the cache holds or can fetch
    /// unexpired ones within `budget`.
    pub(crate) async fn check(self: &Arc<Self>, budget: Duration) -> Result<(), String> {
        match tokio::time::timeout(budget, self.get()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(Unavailable(e))) => Err(e),
            Err(_) => Err(format!("AWS credentials not resolved within {budget:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future::ProvideCredentials as Fut;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    /// A provider that hands out scripted answers and counts its calls.
    #[derive(Debug)]
    struct Scripted {
        answers: Mutex<Vec<Result<Credentials, String>>>,
        calls: AtomicUsize,
    }

    impl Scripted {
        fn new(answers: Vec<Result<Credentials, String>>) -> Arc<Self> {
            Arc::new(Self {
                answers: Mutex::new(answers.into_iter().rev().collect()),
                calls: AtomicUsize::new(0),
            })
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl ProvideCredentials for Scripted {
        fn provide_credentials<'a>(&'a self) -> Fut<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self
                .answers
                .lock()
                .unwrap()
                .pop()
                .expect("a scripted answer");
            Fut::ready(
                next.map_err(aws_credential_types::provider::error::CredentialsError::not_loaded),
            )
        }
    }

    #[derive(Debug, Clone)]
    struct Shared(Arc<Scripted>);
    impl ProvideCredentials for Shared {
        fn provide_credentials<'a>(&'a self) -> Fut<'a>
        where
            Self: 'a,
        {
            self.0.provide_credentials()
        }
    }

    fn creds(key: &str, expires_in: Option<Duration>) -> Credentials {
        Credentials::new(
            key,
            "secret",
            Some("token".into()),
            expires_in.map(|d| SystemTime::now() + d),
            "test",
        )
    }

    fn cache(p: &Arc<Scripted>) -> Arc<CredentialCache> {
        CredentialCache::with_retry_delay(
            SharedCredentialsProvider::new(Shared(p.clone())),
            Duration::ZERO,
        )
    }

    #[tokio::test]
    async fn credentials_without_expiry_are_fetched_once() {
        let p = Scripted::new(vec![Ok(creds("A", None))]);
        let c = cache(&p);
        for _ in 0..3 {
            let got = c.get().await.unwrap();
            assert_eq!(got.credentials.access_key_id(), "A");
            assert_eq!(got.credentials.session_token(), Some("token"));
        }
        assert_eq!(p.calls(), 1);
    }

    #[tokio::test]
    async fn credentials_near_expiry_are_refreshed_in_the_background() {
        // Short-lived: due for a refresh half-way through their second.
        let p = Scripted::new(vec![
            Ok(creds("OLD", Some(Duration::from_secs(1)))),
            Ok(creds("NEW", Some(Duration::from_secs(3600)))),
        ]);
        let c = cache(&p);
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "OLD");
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "OLD");
        assert_eq!(p.calls(), 1, "not due yet");
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Due: the next call still gets the old (valid) ones at once and starts a refresh.
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "OLD");
        for _ in 0..100 {
            if c.get().await.unwrap().credentials.access_key_id() == "NEW" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "NEW");
        assert_eq!(
            p.calls(),
            2,
            "one refresh, however many calls saw the window"
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_valid_credentials() {
        let p = Scripted::new(vec![
            Ok(creds("OLD", Some(Duration::from_secs(2)))),
            Err("the metadata service is down".into()),
            Ok(creds("NEW", Some(Duration::from_secs(3600)))),
        ]);
        let c = cache(&p);
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "OLD");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "OLD");
        // Wait for the failed refresh to finish, then the next call tries again.
        while p.calls() < 2 || c.refreshing.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "OLD");
        while c.get().await.unwrap().credentials.access_key_id() != "NEW" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(p.calls(), 3);
    }

    #[tokio::test]
    async fn after_a_failed_refresh_the_provider_rests() {
        let p = Scripted::new(vec![
            Ok(creds("OLD", Some(Duration::from_secs(2)))),
            Err("the metadata service is down".into()),
        ]);
        let c = CredentialCache::with_retry_delay(
            SharedCredentialsProvider::new(Shared(p.clone())),
            Duration::from_secs(60),
        );
        c.get().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        c.get().await.unwrap();
        while p.calls() < 2 || c.refreshing.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for _ in 0..50 {
            assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "OLD");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(p.calls(), 2, "no refresh within the retry delay");
    }

    #[test]
    fn refreshes_are_due_ahead_of_expiry_or_every_fifteen_minutes() {
        let now = SystemTime::now();
        let expiring = |secs| {
            let mut c = creds("A", None);
            *c.expiry_mut() = Some(now + Duration::from_secs(secs));
            Current::new(c, now)
        };
        let hour = expiring(3600);
        assert_eq!(
            hour.refresh_at,
            now + Duration::from_secs(3600) - REFRESH_AHEAD
        );
        // Short-lived credentials: half-way.
        assert_eq!(expiring(120).refresh_at, now + Duration::from_secs(60));
        let forever = Current::new(creds("A", None), now);
        assert_eq!(forever.refresh_at, now + REFETCH_UNEXPIRING);
        assert!(!forever.expired(now + Duration::from_secs(86_400)));
    }

    #[tokio::test]
    async fn expired_credentials_are_never_used() {
        let p = Scripted::new(vec![
            Ok(creds("SHORT", Some(Duration::from_millis(50)))),
            Err("no credentials in the environment".into()),
            Ok(creds("NEW", None)),
        ]);
        let c = cache(&p);
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "SHORT");
        tokio::time::sleep(Duration::from_millis(80)).await;
        // Expired, and the refresh fails: the invocation is refused, not signed with
        // expired keys.
        let err = c.get().await.unwrap_err();
        assert!(err.0.contains("AWS credentials not available"), "{err:?}");
        assert!(c.check(Duration::from_secs(1)).await.is_ok());
        assert_eq!(c.get().await.unwrap().credentials.access_key_id(), "NEW");
    }

    #[tokio::test]
    async fn a_provider_that_returns_expired_credentials_is_an_error() {
        let mut expired = creds("X", None);
        *expired.expiry_mut() = Some(SystemTime::now() - Duration::from_secs(1));
        let p = Scripted::new(vec![Ok(expired)]);
        let err = cache(&p).get().await.unwrap_err();
        assert!(err.0.contains("expired"), "{err:?}");
    }
}
