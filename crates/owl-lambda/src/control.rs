//! Lambda's control plane, as `owl sync` uses it: read a function (configuration,
//! tags, the alias and the version it points to), create, update code and
//! configuration, publish a version, move an alias, delete, list owl's functions;
//! and [`replace`], the one-call deployment the demo and the tests use.
//!
//! Every call has a timeout and is retried with jittered exponential backoff when
//! Lambda throttles (429), answers that the function is still being updated
//! (`ResourceConflictException` on an update), is briefly unavailable (5xx), or cannot
//! be reached. Nothing else is retried. After a change the client waits until the
//! function is `Active` and its last update `Successful`, as Lambda requires before
//! the next change.

use super::StaticCredentials;
use crate::LambdaConfig;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State,
};
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Tag marking a function as created by `owl sync`.
pub const MANAGED_TAG: &str = "owl:managed-by";
/// Its value.
pub const MANAGED_VALUE: &str = "owl-sync";
/// Tag naming the action a function serves (`ns/action` or `ns/pkg/action`).
pub const ACTION_TAG: &str = "owl:action";

/// Longest one control-plane call may take (uploads of up to 50 MB included).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for a function to become ready after a change.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// A failed control-plane call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: {code}: {message}")]
pub struct ControlError {
    /// The operation (`CreateFunction`…).
    pub operation: &'static str,
    /// Lambda's error code, or `Unreachable` / `Timeout`.
    pub code: String,
    /// HTTP status, when Lambda answered.
    pub status: Option<u16>,
    /// What happened.
    pub message: String,
    /// `retryAfterSeconds` of a throttle.
    pub retry_after: Option<u64>,
}

impl ControlError {
    /// True for 404 `ResourceNotFoundException`.
    pub fn not_found(&self) -> bool {
        self.code == "ResourceNotFoundException" || self.status == Some(404)
    }

    /// Why a retry may help, or `None`.
    fn retry_reason(&self, conflict_retryable: bool) -> Option<&'static str> {
        match (self.code.as_str(), self.status) {
            ("TooManyRequestsException" | "ThrottlingException", _) | (_, Some(429)) => {
                Some("throttled")
            }
            ("ResourceConflictException", _) if conflict_retryable => Some("in_progress"),
            ("ResourceNotReadyException", _) => Some("in_progress"),
            ("Unreachable" | "Timeout", _) => Some("unavailable"),
            (_, Some(s)) if s >= 500 => Some("unavailable"),
            _ => None,
        }
    }
}

fn control_error<E>(
    operation: &'static str,
    e: SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
) -> ControlError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let (code, message) = match &e {
        SdkError::ServiceError(ctx) => (
            ctx.err().code().unwrap_or("Unknown").to_string(),
            ctx.err().message().unwrap_or("").to_string(),
        ),
        SdkError::DispatchFailure(_) => ("Unreachable".into(), DisplayErrorContext(&e).to_string()),
        SdkError::TimeoutError(_) => ("Timeout".into(), DisplayErrorContext(&e).to_string()),
        _ => ("Unknown".into(), DisplayErrorContext(&e).to_string()),
    };
    let retry_after = e
        .raw_response()
        .and_then(|r| std::str::from_utf8(r.body().bytes()?).ok())
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| {
            v.get("retryAfterSeconds").and_then(|s| {
                s.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| s.as_u64())
            })
        });
    ControlError {
        operation,
        code,
        status,
        message,
        retry_after,
    }
}

/// A function's settings that `owl sync` decides (everything but the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Lambda runtime, `provided.al2023`.
    pub runtime: String,
    /// Execution role ARN.
    pub role: String,
    /// Handler.
    pub handler: String,
    /// Memory in MB.
    pub memory_mb: i32,
    /// Timeout in seconds.
    pub timeout_s: i32,
    /// Environment variables.
    pub environment: BTreeMap<String, String>,
    /// Layer version ARNs, in order.
    pub layers: Vec<String>,
}

/// One version of a function as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// `$LATEST` or a number.
    pub version: String,
    /// Its settings.
    pub settings: Settings,
    /// Base64 SHA-256 of its code.
    pub code_sha256: String,
    /// Its architecture.
    pub architecture: String,
    /// Its description (owl's names the action and its version).
    pub description: String,
}

/// A function as found in Lambda.
#[derive(Debug, Clone)]
pub struct Function {
    /// Its ARN.
    pub arn: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// `$LATEST`.
    pub latest: Version,
    /// The version the requested alias points to (`None`: no such alias).
    pub alias: Option<Version>,
}

impl Function {
    /// The action a function created by owl serves; `None` when owl did not create it.
    pub fn managed_action(&self) -> Option<&str> {
        (self.tags.get(MANAGED_TAG).map(String::as_str) == Some(MANAGED_VALUE))
            .then(|| self.tags.get(ACTION_TAG).map(String::as_str).unwrap_or(""))
    }
}

/// What to create or update.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Function name (or ARN).
    pub name: String,
    /// Settings.
    pub settings: Settings,
    /// Architecture.
    pub architecture: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The code zip.
    pub zip: Arc<Vec<u8>>,
    /// Its base64 SHA-256.
    pub code_sha256: String,
    /// Description (names the action and its version): set on `$LATEST` by
    /// `CreateFunction` and `UpdateFunctionConfiguration`, and given to each version
    /// `PublishVersion` makes.
    pub description: String,
}

/// The control-plane client.
#[derive(Clone)]
pub struct Control {
    client: aws_sdk_lambda::Client,
    retries: u32,
    on_retry: OnRetry,
}

/// Told the reason of every retry (`owl sync` counts them in its metrics).
pub(crate) type OnRetry = Arc<dyn Fn(&'static str) + Send + Sync>;

impl Control {
    /// Builds the client from `[lambda]` (region, endpoint) and the AWS default
    /// credential chain, or static emulator `credentials`.
    pub async fn new(
        cfg: &LambdaConfig,
        credentials: Option<&StaticCredentials>,
        retries: u32,
        on_retry: OnRetry,
    ) -> anyhow::Result<Self> {
        let conf = super::sdk_config(cfg, credentials).await?;
        Ok(Self {
            client: aws_sdk_lambda::Client::new(&conf),
            retries,
            on_retry,
        })
    }

    /// Runs `call` with a timeout, retrying what may succeed later.
    async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        conflict_retryable: bool,
        mut call: F,
    ) -> Result<T, ControlError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ControlError>>,
    {
        let mut attempt = 0u32;
        loop {
            let result = match tokio::time::timeout(CALL_TIMEOUT, call()).await {
                Ok(r) => r,
                Err(_) => Err(ControlError {
                    operation,
                    code: "Timeout".into(),
                    status: None,
                    message: format!("no answer within {CALL_TIMEOUT:?}"),
                    retry_after: None,
                }),
            };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(reason) = err.retry_reason(conflict_retryable) else {
                return Err(err);
            };
            if attempt >= self.retries {
                return Err(err);
            }
            attempt += 1;
            (self.on_retry)(reason);
            let base = 200u64 << attempt.min(6);
            let mut delay = Duration::from_millis(rand::rng().random_range(base / 2..=base));
            if let Some(s) = err.retry_after {
                delay = delay.max(Duration::from_secs(s.min(60)));
            }
            tracing::debug!(operation, reason, attempt, ?delay, error = %err, "retrying a Lambda call");
            tokio::time::sleep(delay).await;
        }
    }

    /// Reads `name` and, when `alias` is given, the version that alias points to.
    /// `None` when the function does not exist.
    pub async fn get(
        &self,
        name: &str,
        alias: Option<&str>,
    ) -> Result<Option<Function>, ControlError> {
        let out = self
            .call("GetFunction", true, || async {
                self.client
                    .get_function()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(|e| control_error("GetFunction", e))
            })
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(cfg) = out.configuration() else {
            return Ok(None);
        };
        let latest = version_of(cfg);
        let arn = cfg.function_arn().unwrap_or(name).to_string();
        let tags: BTreeMap<String, String> = match out.tags() {
            Some(t) => t.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => self.tags(&arn).await?,
        };
        let alias = match alias {
            None => None,
            Some(a) => match self.alias_version(name, a).await? {
                None => None,
                Some(v) => {
                    let c = self
                        .call("GetFunctionConfiguration", true, || async {
                            self.client
                                .get_function_configuration()
                                .function_name(name)
                                .qualifier(&v)
                                .send()
                                .await
                                .map_err(|e| control_error("GetFunctionConfiguration", e))
                        })
                        .await?;
                    Some(version_of_output(&c))
                }
            },
        };
        Ok(Some(Function {
            arn,
            tags,
            latest,
            alias,
        }))
    }

    async fn alias_version(&self, name: &str, alias: &str) -> Result<Option<String>, ControlError> {
        match self
            .call("GetAlias", true, || async {
                self.client
                    .get_alias()
                    .function_name(name)
                    .name(alias)
                    .send()
                    .await
                    .map_err(|e| control_error("GetAlias", e))
            })
            .await
        {
            Ok(a) => Ok(a.function_version().map(str::to_string)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The tags of the function `arn`.
    pub async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, ControlError> {
        let out = self
            .call("ListTags", true, || async {
                self.client
                    .list_tags()
                    .resource(arn)
                    .send()
                    .await
                    .map_err(|e| control_error("ListTags", e))
            })
            .await?;
        Ok(out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    /// Creates the function (unpublished) and waits until it is active.
    pub async fn create(&self, spec: &FunctionSpec) -> Result<(), ControlError> {
        self.call("CreateFunction", false, || async {
            self.client
                .create_function()
                .function_name(&spec.name)
                .runtime(Runtime::from(spec.settings.runtime.as_str()))
                .role(&spec.settings.role)
                .handler(&spec.settings.handler)
                .memory_size(spec.settings.memory_mb)
                .timeout(spec.settings.timeout_s)
                .environment(environment(&spec.settings.environment))
                .set_layers(Some(spec.settings.layers.clone()))
                .architectures(Architecture::from(spec.architecture.as_str()))
                .set_tags(Some(to_hash(&spec.tags)))
                .description(&spec.description)
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(spec.zip.as_slice()))
                        .build(),
                )
                .publish(false)
                .send()
                .await
                .map_err(|e| control_error("CreateFunction", e))
        })
        .await?;
        self.wait_ready(&spec.name).await
    }

    /// Uploads new code (and architecture) to `$LATEST` and waits for it.
    pub async fn update_code(&self, spec: &FunctionSpec) -> Result<(), ControlError> {
        self.call("UpdateFunctionCode", true, || async {
            self.client
                .update_function_code()
                .function_name(&spec.name)
                .zip_file(Blob::new(spec.zip.as_slice()))
                .architectures(Architecture::from(spec.architecture.as_str()))
                .publish(false)
                .send()
                .await
                .map_err(|e| control_error("UpdateFunctionCode", e))
        })
        .await?;
        self.wait_ready(&spec.name).await
    }

    /// Updates `$LATEST`'s configuration and waits for it.
    pub async fn update_configuration(&self, spec: &FunctionSpec) -> Result<(), ControlError> {
        self.call("UpdateFunctionConfiguration", true, || async {
            self.client
                .update_function_configuration()
                .function_name(&spec.name)
                .runtime(Runtime::from(spec.settings.runtime.as_str()))
                .role(&spec.settings.role)
                .handler(&spec.settings.handler)
                .memory_size(spec.settings.memory_mb)
                .timeout(spec.settings.timeout_s)
                .environment(environment(&spec.settings.environment))
                .set_layers(Some(spec.settings.layers.clone()))
                .description(&spec.description)
                .send()
                .await
                .map_err(|e| control_error("UpdateFunctionConfiguration", e))
        })
        .await?;
        self.wait_ready(&spec.name).await
    }

    /// Sets tags (adds or overwrites).
    pub async fn tag(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ControlError> {
        self.call("TagResource", true, || async {
            self.client
                .tag_resource()
                .resource(arn)
                .set_tags(Some(to_hash(tags)))
                .send()
                .await
                .map_err(|e| control_error("TagResource", e))
        })
        .await
        .map(|_| ())
    }

    /// Publishes `$LATEST` as a version, only if its code is still `code_sha256`
    /// (another writer's upload in between fails the call instead of being
    /// published). Returns the version.
    pub async fn publish(
        &self,
        name: &str,
        code_sha256: &str,
        description: &str,
    ) -> Result<String, ControlError> {
        let out = self
            .call("PublishVersion", true, || async {
                self.client
                    .publish_version()
                    .function_name(name)
                    .code_sha256(code_sha256)
                    .description(description)
                    .send()
                    .await
                    .map_err(|e| control_error("PublishVersion", e))
            })
            .await?;
        out.version()
            .map(str::to_string)
            .ok_or_else(|| ControlError {
                operation: "PublishVersion",
                code: "Malformed".into(),
                status: None,
                message: "no version in the answer".into(),
                retry_after: None,
            })
    }

    /// Points `alias` at `version` (creating the alias if needed): the switch the
    /// gateway sees, in one call.
    pub async fn point_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<(), ControlError> {
        let updated = self
            .call("UpdateAlias", true, || async {
                self.client
                    .update_alias()
                    .function_name(name)
                    .name(alias)
                    .function_version(version)
                    .send()
                    .await
                    .map_err(|e| control_error("UpdateAlias", e))
            })
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => self
                .call("CreateAlias", false, || async {
                    self.client
                        .create_alias()
                        .function_name(name)
                        .name(alias)
                        .function_version(version)
                        .description("moved by owl sync")
                        .send()
                        .await
                        .map_err(|e| control_error("CreateAlias", e))
                })
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    }

    /// Deletes the function with all its versions and aliases (absent is fine).
    pub async fn delete(&self, name: &str) -> Result<(), ControlError> {
        match self
            .call("DeleteFunction", true, || async {
                self.client
                    .delete_function()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(|e| control_error("DeleteFunction", e))
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until the function is `Active` and its last update `Successful`.
    async fn wait_ready(&self, name: &str) -> Result<(), ControlError> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut pause = Duration::from_millis(100);
        loop {
            let c = self
                .call("GetFunctionConfiguration", true, || async {
                    self.client
                        .get_function_configuration()
                        .function_name(name)
                        .send()
                        .await
                        .map_err(|e| control_error("GetFunctionConfiguration", e))
                })
                .await?;
            let failed = |why: Option<&str>| ControlError {
                operation: "GetFunctionConfiguration",
                code: "FunctionFailed".into(),
                status: None,
                message: why.unwrap_or("the function's update failed").to_string(),
                retry_after: None,
            };
            if matches!(c.state(), Some(State::Failed)) {
                return Err(failed(c.state_reason()));
            }
            if matches!(c.last_update_status(), Some(LastUpdateStatus::Failed)) {
                return Err(failed(c.last_update_status_reason()));
            }
            let pending = matches!(c.state(), Some(State::Pending))
                || matches!(c.last_update_status(), Some(LastUpdateStatus::InProgress));
            if !pending {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ControlError {
                    operation: "GetFunctionConfiguration",
                    code: "Timeout".into(),
                    status: None,
                    message: format!("the function did not become ready within {READY_TIMEOUT:?}"),
                    retry_after: None,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Functions created by owl sync whose names start with one of `prefixes`: (name,
    /// the action of their `owl:action` tag). Only candidates' tags are read.
    pub async fn list_managed(
        &self,
        prefixes: &[String],
    ) -> Result<Vec<(String, String)>, ControlError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .call("ListFunctions", true, || async {
                    self.client
                        .list_functions()
                        .set_marker(marker.clone())
                        .max_items(50)
                        .send()
                        .await
                        .map_err(|e| control_error("ListFunctions", e))
                })
                .await?;
            for f in page.functions() {
                let (Some(name), Some(arn)) = (f.function_name(), f.function_arn()) else {
                    continue;
                };
                if !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                    continue;
                }
                let tags = self.tags(arn).await?;
                if tags.get(MANAGED_TAG).map(String::as_str) == Some(MANAGED_VALUE) {
                    out.push((
                        name.to_string(),
                        tags.get(ACTION_TAG).cloned().unwrap_or_default(),
                    ));
                }
            }
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => return Ok(out),
            }
        }
    }
}

fn to_hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn environment(vars: &BTreeMap<String, String>) -> Environment {
    Environment::builder()
        .set_variables(Some(to_hash(vars)))
        .build()
}

/// The same fields read from either answer type (they share accessor names, not a
/// trait).
macro_rules! version_from {
    ($c:expr) => {{
        let c = $c;
        Version {
            version: c.version().unwrap_or("$LATEST").to_string(),
            settings: Settings {
                runtime: c
                    .runtime()
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
                role: c.role().unwrap_or_default().to_string(),
                handler: c.handler().unwrap_or_default().to_string(),
                memory_mb: c.memory_size().unwrap_or(128),
                timeout_s: c.timeout().unwrap_or(3),
                environment: c
                    .environment()
                    .and_then(|e| e.variables())
                    .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                layers: c
                    .layers()
                    .iter()
                    .filter_map(|l| l.arn().map(str::to_string))
                    .collect(),
            },
            code_sha256: c.code_sha256().unwrap_or_default().to_string(),
            architecture: c
                .architectures()
                .first()
                .map_or("x86_64", |a| a.as_str())
                .to_string(),
            description: c.description().unwrap_or_default().to_string(),
        }
    }};
}

fn version_of(c: &FunctionConfiguration) -> Version {
    version_from!(c)
}

fn version_of_output(
    c: &aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput,
) -> Version {
    version_from!(c)
}

/// A function [`replace`] deploys.
#[derive(Debug, Clone)]
pub struct Replacement<'a> {
    /// Function name.
    pub name: &'a str,
    /// Lambda runtime, e.g. `python3.11`, `nodejs20.x`, `provided.al2023`.
    pub runtime: &'a str,
    /// Handler string.
    pub handler: &'a str,
    /// The code zip.
    pub zip: Vec<u8>,
    /// Timeout in seconds.
    pub timeout_s: i32,
    /// Environment variables.
    pub environment: &'a [(String, String)],
}

/// Deletes `f.name` if it exists and creates it afresh through the control plane at
/// `endpoint` with emulator credentials: the demo's and the tests' deployment to a
/// local Lambda (MiniStack). `owl sync` uses [`Control`] instead.
pub async fn replace(endpoint: &str, region: &str, f: Replacement<'_>) -> anyhow::Result<()> {
    let cfg = LambdaConfig {
        region: Some(region.into()),
        endpoint_url: Some(endpoint.into()),
        connect_timeout: Duration::from_secs(3),
        log_tail: false,
        ..Default::default()
    };
    let conf = super::sdk_config(&cfg, Some(&StaticCredentials::emulator())).await?;
    let client = aws_sdk_lambda::Client::new(&conf);
    let _ = client.delete_function().function_name(f.name).send().await;
    let mut env = Environment::builder();
    for (k, v) in f.environment {
        env = env.variables(k, v);
    }
    client
        .create_function()
        .function_name(f.name)
        .runtime(Runtime::from(f.runtime))
        .role("arn:aws:iam::000000000000:role/owl-demo")
        .handler(f.handler)
        .timeout(f.timeout_s)
        .environment(env.build())
        .code(FunctionCode::builder().zip_file(Blob::new(f.zip)).build())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating function {}: {}", f.name, DisplayErrorContext(e)))?;
    Ok(())
}
