//! What the runtime reports when an action does not produce a result: OpenWhisk's
//! texts (reference §2.2 and the runtimes' proxies, §7) paired with the Lambda error
//! types the Runtime API expects (lambda.md §3.2). owl reads `errorMessage` back as
//! the activation's `error`, and `Sandbox.Timedout` / `Function.ResponseSizeTooLarge`
//! as a timeout / truncation, so these texts reach OpenWhisk clients unchanged.

use serde_json::json;

/// Node.js proxy: a result that is not an object.
pub(crate) const NOT_A_DICTIONARY: &str = "The action did not return a dictionary.";
/// ActionLoop (Go) proxy: a result that is neither an object nor an array.
pub(crate) const NOT_A_DICTIONARY_OR_ARRAY: &str =
    "The action did not return a dictionary or array.";
/// ActionLoop proxy: the launcher could not start (`OW_LOG_INIT_ERROR` form).
pub(crate) const CANNOT_START: &str = "Cannot start action. Check logs for details.";
/// Invoker: the action process died during initialization.
pub(crate) const EXITED_DURING_INIT: &str =
    "The action did not initialize and exited unexpectedly.";
/// Invoker: the action process died while running.
pub(crate) const EXITED_DURING_RUN: &str =
    "The action did not produce a valid response and exited unexpectedly.";
/// Lambda's synchronous response limit.
pub(crate) const RESPONSE_LIMIT: usize = 6_291_556;

/// Lambda error type of a timeout (owl flags the activation `timeout: true`).
pub(crate) const TIMEOUT_TYPE: &str = "Sandbox.Timedout";

/// Developer error for a run past the deadline.
pub fn timed_out(limit_ms: u64) -> String {
    owl_whisk::messages::timed_out(limit_ms)
}

/// Developer error for an initialization past its time limit.
pub fn init_timed_out(limit_ms: u64) -> String {
    format!("The action exceeded its time limits of {limit_ms} milliseconds during initialization.")
}

/// Lambda's text for a response over its limit (owl reads `len` back).
pub(crate) fn response_too_large(len: usize) -> String {
    format!(
        "Response payload size ({len} bytes) exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes)."
    )
}

/// A failure reported to the Runtime API: `{errorMessage, errorType}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeFailure {
    /// `errorMessage`: the OpenWhisk text.
    pub message: String,
    /// `errorType`, also sent as `Lambda-Runtime-Function-Error-Type`.
    pub error_type: &'static str,
}

impl RuntimeFailure {
    /// A failure with an explicit type.
    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            error_type,
        }
    }

    /// A bad runtime setting (reported as an init error; the runtime exits).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new("Runtime.InitError", message)
    }

    /// The action's code cannot be found.
    pub(crate) fn no_handler(message: impl Into<String>) -> Self {
        Self::new("Runtime.NoSuchHandler", message)
    }

    /// The action could not be loaded.
    pub fn init(message: impl Into<String>) -> Self {
        Self::new("Runtime.InitError", message)
    }

    /// The action failed while running (developer error).
    pub fn handler(message: impl Into<String>) -> Self {
        Self::new("Runtime.HandlerError", message)
    }

    /// The action ran out of time.
    pub fn timeout(limit_ms: u64) -> Self {
        Self::new(TIMEOUT_TYPE, timed_out(limit_ms))
    }

    /// The action process died.
    pub fn exited() -> Self {
        Self::new("Runtime.ExitError", EXITED_DURING_RUN)
    }

    /// The result is over Lambda's response limit.
    pub(crate) fn too_large(len: usize) -> Self {
        Self::new("Function.ResponseSizeTooLarge", response_too_large(len))
    }

    /// The JSON body the Runtime API expects.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"errorMessage": self.message, "errorType": self.error_type}))
            .unwrap_or_default()
    }
}

impl std::fmt::Display for RuntimeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for RuntimeFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_what_lambda_and_owl_read() {
        let b: serde_json::Value =
            serde_json::from_slice(&RuntimeFailure::timeout(1500).body()).unwrap();
        assert_eq!(
            b,
            json!({"errorMessage": "The action exceeded its time limits of 1500 milliseconds.", "errorType": "Sandbox.Timedout"})
        );
        // owl reads the length back from the first parenthesis.
        let m = RuntimeFailure::too_large(7_000_000).message;
        assert_eq!(
            m.split('(').nth(1).unwrap().split_whitespace().next(),
            Some("7000000")
        );
    }
}
