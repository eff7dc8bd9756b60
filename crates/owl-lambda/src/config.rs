//! How owl calls Lambda: the `[lambda]` settings and the payload shape of a route.
//! The policy file compiles into these types (`owl::policy`); this crate only reads them.

use std::time::Duration;

/// `[lambda]`: how owl calls Lambda.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// Region; `None` uses the AWS default chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint override (emulators); `None` uses the default chain
    /// (`AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL`, profile) or AWS itself.
    pub endpoint_url: Option<String>,
    /// Connect timeout for Lambda.
    pub connect_timeout: Duration,
    /// Ask Lambda for the log tail (becomes the activation's logs).
    pub log_tail: bool,
    /// Most invocations running on Lambda at once (blocking and non-blocking).
    pub max_invocations: usize,
    /// Time a cold start may spend initialising on top of the action's time limit
    /// before owl stops waiting (Lambda does not count init against the timeout).
    pub init_allowance: Duration,
    /// Retries of an invocation Lambda did not run (throttled, not reachable).
    pub retries: u32,
    /// Consecutive throttles or service errors that open a function's breaker.
    pub breaker_failures: u32,
    /// How long an open breaker sends invocations elsewhere before a probe.
    pub breaker_cooldown: Duration,
}

impl Default for LambdaConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            connect_timeout: Duration::from_secs(3),
            log_tail: true,
            max_invocations: 1024,
            init_allowance: Duration::from_secs(10),
            retries: 2,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// What the function receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// The envelope an OpenWhisk runtime's `/run` receives.
    OpenWhisk,
    /// The merged parameters as the event.
    Event,
}
