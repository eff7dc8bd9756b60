//! AWS Lambda: the one crate of owl that depends on the AWS SDK (`aws-*`); the
//! gateway, `owl sync` and the demo reach Lambda only through it.
//!
//! One [`LambdaInvoker`] per policy holds one pooled HTTP client, the endpoint and
//! the credentials cache. An Invoke does not go through the SDK's generic
//! orchestrator (runtime plugins, interceptors, config bags: a tenth of the Lambda
//! path's CPU): [`wire`] builds the request the SDK would send, signs it with the
//! `aws-sigv4` crate and reads the answer as the SDK reads it, and a differential
//! test holds the two to the same bytes. The SDK still resolves the configuration
//! (region, endpoint, credentials chain) and is the client of the control plane
//! ([`control`]: `owl sync`, the demo). An Invoke is not idempotent and is never
//! retried here: owl decides itself what may be retried or sent elsewhere, from the
//! error's class ([`LambdaError::ran`]), never from message text.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod breaker;
mod config;
pub mod control;
mod credentials;
pub mod logs;
pub mod outcome;
pub mod wire;

pub use config::{LambdaConfig, PayloadMode};
pub use credentials::Current as SigningCredentials;
pub use outcome::{LambdaReply, RunResult, interpret, interpret_with};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use bytes::Bytes;
use credentials::CredentialCache;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::SpanKind;
use owl_telemetry::traces;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Largest synchronous Invoke request Lambda accepts (6 MB).
pub(crate) const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// Largest answer read from Lambda. A synchronous response is at most 6 MB; more is
/// not Lambda's answer, and is not buffered.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Idle pooled connections to Lambda are closed after this, before the usual 60 s
/// idle timeout of the load balancers in front of an endpoint, so that a request is
/// rarely written to a connection the other side is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Error codes with which Lambda refuses an invocation before any function code runs
/// (request validation, permissions, missing or not-ready functions, execution
/// environment set-up). Only these, throttling and a failed connection allow sending
/// the invocation elsewhere.
const REFUSED_BEFORE_RUNNING: &[&str] = &[
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "RecursiveInvocationException",
    "NoPublishedVersionException",
    "ModeNotSupportedException",
    "ServiceQuotaExceededException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "EFSMountFailureException",
    "EFSMountConnectivityException",
    "EFSMountTimeoutException",
    "S3FilesMountFailureException",
    "S3FilesMountConnectivityException",
    "S3FilesMountTimeoutException",
    "ResourceConflictException",
    "ResourceNotReadyException",
    "SnapStartNotReadyException",
    "SnapStartRegenerationFailureException",
    "CodeArtifactUserPendingException",
    "CodeArtifactUserFailedException",
    "CodeArtifactUserDeletedException",
    "RuntimeVersionDeletedException",
    "RuntimeAliasDeletedException",
    "UnsupportedMediaTypeException",
    "EC2AccessDeniedException",
    "EC2ThrottledException",
    "EC2UnexpectedException",
    "ENILimitReachedException",
    "ENINotReadyException",
    "SubnetIPAddressLimitReachedException",
    "InvalidSubnetIDException",
    "InvalidSecurityGroupIDException",
    "InvalidRuntimeException",
    "InvalidZipFileException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
];

/// Whether the function may have run when an invoke failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Lambda refused or never received the request: the function did not run, so
    /// sending the invocation elsewhere cannot run it twice.
    No,
    /// The request may have reached the function.
    Maybe,
}

/// Why an invoke did not produce a reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LambdaError {
    /// 429 `TooManyRequestsException`.
    #[error("Lambda throttled the invocation ({reason})")]
    Throttled {
        /// Lambda's `Reason`.
        reason: String,
        /// `retryAfterSeconds`, when given.
        retry_after: Option<u64>,
    },
    /// 404 `ResourceNotFoundException`: function, version or alias missing.
    #[error("Lambda function not found: {0}")]
    NotFound(String),
    /// The request exceeded Lambda's size limit.
    #[error("the request is larger than Lambda accepts")]
    TooLarge,
    /// Lambda answered with an error before running the function (4xx other than the
    /// above, 409 pending, 502-class infrastructure errors, 503).
    #[error("Lambda refused the invocation: {code} (HTTP {status})")]
    Refused {
        /// Error code.
        code: String,
        /// HTTP status.
        status: u16,
    },
    /// No connection to Lambda could be made.
    #[error("Lambda could not be reached: {0}")]
    Unreachable(String),
    /// The function's circuit breaker is open: Lambda was not called.
    #[error("the function's circuit breaker is open")]
    BreakerOpen {
        /// Seconds until the breaker probes again.
        retry_after: u64,
    },
    /// The exchange failed after the request may have reached the function
    /// (500 `ServiceException`, connection lost mid-response, unreadable answer).
    #[error("the Lambda invocation failed and may or may not have run: {0}")]
    Indeterminate(String),
}

impl LambdaError {
    /// Whether the function may have run.
    pub fn ran(&self) -> Ran {
        match self {
            Self::Indeterminate(_) => Ran::Maybe,
            _ => Ran::No,
        }
    }

    /// A short label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "throttled",
            Self::NotFound(_) => "not_found",
            Self::TooLarge => "too_large",
            Self::Refused { .. } => "refused",
            Self::Unreachable(_) => "unreachable",
            Self::Indeterminate(_) => "indeterminate",
            Self::BreakerOpen { .. } => "breaker_open",
        }
    }
}

/// What to invoke.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// Function name or ARN.
    pub function: String,
    /// Version or alias.
    pub qualifier: Option<String>,
    /// The event bytes (JSON).
    pub payload: Bytes,
}

/// Static credentials, for emulators that accept any key (demo, tests, benchmarks).
/// Real deployments use the AWS default credential chain.
#[derive(Clone)]
pub struct StaticCredentials {
    /// Access key id.
    pub(crate) access_key_id: String,
    /// Secret access key.
    pub(crate) secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl StaticCredentials {
    /// The dummy keys local emulators accept.
    pub fn emulator() -> Self {
        Self {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
        }
    }
}

/// Loads the AWS SDK configuration for `cfg`: region, endpoint override, no SDK
/// retries, the connect timeout, and credentials from the default chain unless
/// `credentials` are given.
pub async fn sdk_config(
    cfg: &LambdaConfig,
    credentials: Option<&StaticCredentials>,
) -> anyhow::Result<aws_config::SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        // owl bounds every call itself (the invocation's guard timeout); the SDK's
        // per-body throughput monitor only adds timers to each request.
        .stalled_stream_protection(
            aws_sdk_lambda::config::StalledStreamProtectionConfig::disabled(),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(cfg.connect_timeout)
                .build(),
        );
    if let Some(region) = &cfg.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &cfg.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            None,
            None,
            "owl-static",
        ));
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        anyhow::bail!("no AWS region: set `region` in [lambda] or AWS_REGION in the environment");
    }
    Ok(conf)
}

/// Calls Lambda's Invoke API.
#[derive(Clone, Debug)]
pub struct LambdaInvoker {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: wire::Endpoint,
    /// The region requests are signed for (also with a custom endpoint, as the SDK).
    region: String,
    credentials: Option<Arc<CredentialCache>>,
    log_tail: bool,
}

impl LambdaInvoker {
    /// Builds the invoker from `cfg` and the standard AWS environment (credentials,
    /// profiles, web identity, `AWS_ENDPOINT_URL_LAMBDA`, FIPS and dual-stack
    /// settings, region), or `credentials`.
    pub async fn new(
        cfg: &LambdaConfig,
        credentials: Option<&StaticCredentials>,
    ) -> anyhow::Result<Self> {
        let conf = sdk_config(cfg, credentials).await?;
        let region = conf
            .region()
            .map(ToString::to_string)
            .ok_or_else(|| anyhow::anyhow!("no AWS region"))?;
        let endpoint = wire::resolve_endpoint(&conf).await?;
        let tls = owl_net::tls::native_roots_client_config()?;
        let https = owl_net::tls::connector(tls, cfg.connect_timeout, None);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(https);
        Ok(Self {
            http,
            endpoint,
            region,
            credentials: conf.credentials_provider().map(CredentialCache::new),
            log_tail: cfg.log_tail,
        })
    }

    /// True if credentials can be obtained within `budget` (readiness): the cached
    /// ones while valid, else from the provider.
    pub async fn credentials_resolvable(&self, budget: Duration) -> Result<(), String> {
        match &self.credentials {
            Some(c) => c.check(budget).await,
            None => Err("no AWS credentials provider configured".into()),
        }
    }

    /// Invokes synchronously (`RequestResponse`) and returns the function's answer.
    /// With tracing on, signing and the HTTP exchange are spans under the current
    /// span, and the exchange's context goes to Lambda (`traceparent`,
    /// `X-Amzn-Trace-Id`, added after signing as the SDK adds them).
    pub async fn invoke(&self, req: InvokeRequest) -> Result<LambdaReply, LambdaError> {
        if req.payload.len() > MAX_REQUEST_BYTES {
            return Err(LambdaError::TooLarge);
        }
        // Nothing is sent without credentials: the function did not run.
        let no_credentials = |why: String| LambdaError::Refused {
            code: format!("ConstructionFailure: {why}"),
            status: 0,
        };
        let credentials = match &self.credentials {
            Some(c) => c.get().await.map_err(|e| no_credentials(e.0))?,
            None => {
                return Err(no_credentials(
                    "no AWS credentials provider configured".into(),
                ));
            }
        };
        let mut request = wire::request(&self.endpoint, &req, self.log_tail)?;
        {
            let _span = traces::start("lambda.sign");
            wire::sign(
                &mut request,
                &credentials,
                &self.region,
                wire::SIGNING_NAME,
                SystemTime::now(),
            )
            .map_err(no_credentials)?;
        }
        let span = traces::start_kind("lambda.http", SpanKind::Client);
        if span.recording() {
            span.set("http.request.method", "POST");
        }
        if let Some(sc) = span.context() {
            let headers = request.headers_mut();
            if let Ok(v) = http::HeaderValue::try_from(traces::traceparent(&sc)) {
                headers.insert("traceparent", v);
            }
            if let Ok(v) = http::HeaderValue::try_from(traces::amzn_trace_id(&sc)) {
                headers.insert("x-amzn-trace-id", v);
            }
        }
        let response = match self.http.request(request.map(Full::new)).await {
            Ok(r) => r,
            Err(e) => {
                span.set("error.type", "no_response");
                // Only a failed connection proves nothing was sent; any other
                // failure (a reset or timeout mid-exchange) may come after the
                // request reached the function.
                return Err(if is_connect_failure(&e) {
                    LambdaError::Unreachable(owl_net::describe(&e))
                } else {
                    LambdaError::Indeterminate(owl_net::describe(&e))
                });
            }
        };
        span.set(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        );
        drop(span);
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                LambdaError::Indeterminate(format!("reading Lambda's answer failed: {e}"))
            })?
            .to_bytes();
        wire::reply(parts.status, &parts.headers, body)
    }
}

/// True if the error chain shows that no connection was established.
fn is_connect_failure(err: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<hyper_util::client::legacy::Error>()
            && h.is_connect()
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            )
        {
            return true;
        }
        cur = e.source();
    }
    false
}
