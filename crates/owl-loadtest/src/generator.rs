//! HTTP load: an open-loop generator at a constant rate whose latencies are measured
//! from each request's *intended* start (so a stalled server is charged for every
//! request it delayed — coordinated-omission correction, as wrk2 does), and a
//! closed-loop generator (N connections, each sending its next request when the last
//! one answered) for maximum throughput.
//!
//! Every run counts its failures (connection errors, timeouts, unexpected statuses);
//! [`RunResult::ensure_clean`] refuses a run that had any.

use super::stats::Samples;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Called with each successful response body (e.g. to read activation annotations).
pub(crate) type BodyInspector = Arc<dyn Fn(&Bytes) + Send + Sync>;

/// One kind of request, sent over and over.
#[derive(Clone)]
pub struct Target {
    /// `http://` or `https://` URL.
    pub url: Uri,
    /// Method.
    pub method: Method,
    /// Request headers (e.g. authorization, content-type).
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
    /// The status a correct answer has; anything else is a failure.
    pub expect: StatusCode,
    /// Per-request timeout; a request over it is a failure.
    pub timeout: Duration,
    /// Sees every successful body.
    pub(crate) inspect: Option<BodyInspector>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("expect", &self.expect)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A POST of `body` (JSON) to `url`, expecting 200.
    pub fn post_json(url: &str, body: &str) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(Self {
            url: url.parse()?,
            method: Method::POST,
            headers,
            body: Bytes::copy_from_slice(body.as_bytes()),
            expect: StatusCode::OK,
            timeout: Duration::from_secs(30),
            inspect: None,
        })
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: &str) -> anyhow::Result<Self> {
        self.headers.insert(name, value.parse()?);
        Ok(self)
    }

    fn request(&self) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.url.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Requests started.
    pub sent: u64,
    /// Requests answered with the expected status.
    pub ok: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Failure reasons and their counts.
    pub errors: BTreeMap<String, u64>,
    /// Latencies of successful requests (from the intended start in open loop).
    pub latencies: Samples,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
}

impl RunResult {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    /// `Err` describing the failures when any request failed or none succeeded: such
    /// a run's figures are not reported.
    pub fn ensure_clean(&self) -> anyhow::Result<()> {
        if self.failed > 0 {
            let reasons: Vec<String> = self
                .errors
                .iter()
                .map(|(r, n)| format!("{n} × {r}"))
                .collect();
            anyhow::bail!(
                "{} of {} requests failed ({}): refusing to report this run",
                self.failed,
                self.sent,
                reasons.join("; ")
            );
        }
        if self.ok == 0 {
            anyhow::bail!("no request succeeded: refusing to report this run");
        }
        Ok(())
    }

    fn count(&mut self, outcome: Result<Duration, String>) {
        self.sent += 1;
        match outcome {
            Ok(latency) => {
                self.ok += 1;
                self.latencies.record(latency);
            }
            Err(reason) => {
                self.failed += 1;
                *self.errors.entry(reason).or_default() += 1;
            }
        }
    }
}

/// A client for the generator: HTTP/1.1 keep-alive, HTTPS with the system's roots,
/// at most `idle_per_host` idle connections kept.
pub fn client(idle_per_host: usize) -> anyhow::Result<HttpsClient> {
    let tls = owl_net::tls::native_roots_client_config()?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle_per_host)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

/// Sends one request; `Ok` with nothing when the answer had the expected status.
async fn send(client: &HttpsClient, target: &Target) -> Result<(), String> {
    let exchange = async {
        let resp = client
            .request(target.request())
            .await
            .map_err(|e| format!("connection error: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body error: {e}"))?
            .to_bytes();
        if status != target.expect {
            return Err(format!("status {}", status.as_u16()));
        }
        if let Some(inspect) = &target.inspect {
            inspect(&body);
        }
        Ok(())
    };
    match tokio::time::timeout(target.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("timeout after {:?}", target.timeout)),
    }
}

/// Sends `n` requests one after another (warm-up: connections, caches, JIT of the
/// upstream); returns how many failed.
pub async fn warm_up(target: &Target, n: usize) -> anyhow::Result<u64> {
    let client = client(4)?;
    let mut failed = 0;
    for _ in 0..n {
        if send(&client, target).await.is_err() {
            failed += 1;
        }
    }
    Ok(failed)
}

/// Closed loop: `connections` workers, each sending its next request as soon as the
/// last one is answered, for `duration`. Latencies are per request as observed.
pub async fn closed_loop(
    target: &Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<RunResult> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        // One client per worker: each keeps exactly one connection.
        let client = client(1)?;
        let target = target.clone();
        workers.spawn(async move {
            let mut run = RunResult::default();
            while Instant::now() < deadline {
                let t = Instant::now();
                let outcome = send(&client, &target).await.map(|()| t.elapsed());
                run.count(outcome);
            }
            run
        });
    }
    let mut total = RunResult::default();
    while let Some(r) = workers.join_next().await {
        let r = r?;
        total.sent += r.sent;
        total.ok += r.ok;
        total.failed += r.failed;
        for (k, v) in r.errors {
            *total.errors.entry(k).or_default() += v;
        }
        total.latencies.merge(&r.latencies);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Open loop: requests start at a constant `rate` per second for `duration`, whether
/// or not earlier ones have been answered (up to `max_in_flight`; past that a request
/// counts as failed rather than silently waiting). Each latency runs from the moment
/// the request *should* have started, so queueing behind a slow answer is measured.
pub async fn open_loop(
    target: &Target,
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
) -> anyhow::Result<RunResult> {
    anyhow::ensure!(
        rate.is_finite() && rate > 0.0,
        "the rate must be a positive number"
    );
    let period = Duration::from_secs_f64(1.0 / rate);
    let total = (duration.as_secs_f64() * rate).round() as u64;
    let client = client(max_in_flight)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let start = Instant::now() + Duration::from_millis(5);
    // The schedule runs on its own thread: tokio's timer has millisecond resolution,
    // which would bunch requests at rates over a few hundred per second.
    let ticker = std::thread::Builder::new()
        .name("owl-loadtest-ticker".into())
        .spawn(move || {
            precise_timers();
            for i in 0..total {
                let at = start + period.mul_f64(i as f64);
                sleep_until(at);
                if tx.send(at).is_err() {
                    return;
                }
            }
        })?;
    let result = Arc::new(Mutex::new(RunResult::default()));
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(intended) = rx.recv().await {
        if in_flight.load(std::sync::atomic::Ordering::Relaxed) >= max_in_flight {
            result
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .count(Err(format!("over {max_in_flight} requests in flight")));
            continue;
        }
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (client, target, result, in_flight) = (
            client.clone(),
            target.clone(),
            result.clone(),
            in_flight.clone(),
        );
        tasks.spawn(async move {
            let outcome = send(&client, &target).await.map(|()| intended.elapsed());
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            result
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .count(outcome);
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let _ = ticker.join();
    let mut run = std::mem::take(&mut *result.lock().unwrap_or_else(|e| e.into_inner()));
    run.elapsed = start.elapsed();
    Ok(run)
}

/// Asks the kernel for exact sleeps on this thread (the default timer slack of 50 µs
/// would delay every scheduled request).
fn precise_timers() {
    // Linux ≥ 4.6; elsewhere the spin in `sleep_until` absorbs the slack.
    let _ = std::fs::write("/proc/thread-self/timerslack_ns", "1");
}

/// Sleeps until `at`: the kernel for most of the wait, a short spin for the rest.
fn sleep_until(at: Instant) {
    const SPIN: Duration = Duration::from_micros(60);
    let now = Instant::now();
    if at > now + SPIN {
        std::thread::sleep(at - now - SPIN);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}
