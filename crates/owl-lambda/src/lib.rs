//! AWS Lambda: the one crate of owl that depends on the AWS SDK (`aws-*`); the
//! gateway, `owl sync` and the demo reach Lambda only through it.
//!
//! One [`LambdaInvoker`] per policy holds one SDK client (one connection pool, one
//! credentials provider with its cache). SDK retries are off: an Invoke is not
//! idempotent, so owl decides itself what may be retried or sent elsewhere, from the
//! error's class ([`LambdaError::ran`]), never from message text.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod breaker;
mod config;
pub mod control;
pub mod logs;
pub mod outcome;
mod trace_context;

pub use config::{LambdaConfig, PayloadMode};
pub use outcome::{LambdaReply, RunResult, interpret, interpret_with};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use base64::Engine;
use bytes::Bytes;
use std::error::Error as StdError;

/// Largest synchronous Invoke request Lambda accepts (6 MB).
pub(crate) const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

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
    client: aws_sdk_lambda::Client,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    log_tail: bool,
}

impl LambdaInvoker {
    /// Builds the client from `cfg` and the standard AWS environment (credentials,
    /// profiles, web identity, `AWS_ENDPOINT_URL_LAMBDA`, region), or `credentials`.
    pub async fn new(
        cfg: &LambdaConfig,
        credentials: Option<&StaticCredentials>,
    ) -> anyhow::Result<Self> {
        let conf = sdk_config(cfg, credentials).await?;
        Ok(Self {
            credentials: conf.credentials_provider(),
            client: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(&conf)
                    .interceptor(trace_context::TraceInterceptor)
                    .build(),
            ),
            log_tail: cfg.log_tail,
        })
    }

    /// True if credentials can be obtained from the configured provider within
    /// `budget` (readiness).
    pub async fn credentials_resolvable(&self, budget: std::time::Duration) -> Result<(), String> {
        use aws_credential_types::provider::ProvideCredentials;
        let Some(provider) = &self.credentials else {
            return Err("no AWS credentials provider configured".into());
        };
        match tokio::time::timeout(budget, provider.provide_credentials()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("AWS credentials not available: {e}")),
            Err(_) => Err(format!("AWS credentials not resolved within {budget:?}")),
        }
    }

    /// Invokes synchronously (`RequestResponse`) and returns the function's answer.
    /// With tracing on, the call's phases are spans under the current span and its
    /// context goes to Lambda.
    pub async fn invoke(&self, req: InvokeRequest) -> Result<LambdaReply, LambdaError> {
        if req.payload.len() > MAX_REQUEST_BYTES {
            return Err(LambdaError::TooLarge);
        }
        let mut call = self
            .client
            .invoke()
            .function_name(req.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(Vec::from(req.payload)));
        if let Some(q) = req.qualifier {
            call = call.qualifier(q);
        }
        if self.log_tail {
            call = call.log_type(LogType::Tail);
        }
        let out = call.send().await.map_err(classify)?;
        let log_tail = out.log_result().and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .map(|raw| String::from_utf8_lossy(&raw).into_owned())
        });
        Ok(LambdaReply {
            function_error: out.function_error().map(str::to_string),
            executed_version: out.executed_version().map(str::to_string),
            log_tail,
            payload: out
                .payload
                .map(|b| Bytes::from(b.into_inner()))
                .unwrap_or_default(),
        })
    }
}

fn classify(err: SdkError<InvokeError, aws_sdk_lambda::config::http::HttpResponse>) -> LambdaError {
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            match e {
                InvokeError::TooManyRequestsException(t) => LambdaError::Throttled {
                    reason: t.reason().map_or_else(
                        || "TooManyRequestsException".to_string(),
                        |r| r.as_str().to_string(),
                    ),
                    retry_after: t.retry_after_seconds().and_then(|s| s.trim().parse().ok()),
                },
                InvokeError::ResourceNotFoundException(n) => {
                    LambdaError::NotFound(n.message().unwrap_or("").to_string())
                }
                InvokeError::RequestTooLargeException(_)
                | InvokeError::SerializedRequestEntityTooLargeException(_) => LambdaError::TooLarge,
                _ if status == 413 => LambdaError::TooLarge,
                _ if status == 429 => LambdaError::Throttled {
                    reason: code,
                    retry_after: None,
                },
                _ if REFUSED_BEFORE_RUNNING.contains(&code.as_str()) => {
                    LambdaError::Refused { code, status }
                }
                // Anything else (500 ServiceException, 410 EFSIOException, codes this
                // build does not know) may come after the function ran.
                _ => LambdaError::Indeterminate(format!("{code} (HTTP {status})")),
            }
        }
        SdkError::DispatchFailure(_) => {
            // Only a failed connection proves nothing was sent; any other dispatch
            // failure (a reset or timeout mid-exchange) may come after the request
            // reached the function.
            if is_connect_failure(&err) {
                LambdaError::Unreachable(describe(&err))
            } else {
                LambdaError::Indeterminate(describe(&err))
            }
        }
        SdkError::ConstructionFailure(_) => {
            // Includes failing to resolve credentials: nothing was sent.
            LambdaError::Refused {
                code: format!("ConstructionFailure: {}", describe(&err)),
                status: 0,
            }
        }
        SdkError::TimeoutError(_) => LambdaError::Indeterminate(describe(&err)),
        _ => LambdaError::Indeterminate(describe(&err)),
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

fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}
