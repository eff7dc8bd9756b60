//! Exact message texts (reference Appendix A and §1.7). Clients match some of these by
//! text, so they are never paraphrased.

/// 404 default text.
pub const RESOURCE_DOES_NOT_EXIST: &str = "The requested resource does not exist.";
/// 401 without an `Authorization` header.
pub const AUTH_REQUIRED: &str =
    "The resource requires authentication, which was not supplied with the request";
/// 401 for a malformed, wrong or unknown key.
pub const AUTH_INVALID: &str = "The supplied authentication is invalid";
/// `WWW-Authenticate` value that accompanies every 401 (Pekko's basic challenge).
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"OpenWhisk secure realm\",charset=UTF-8";
/// 400 when a body redefines a `final` parameter.
pub const PARAMS_NOT_ALLOWED: &str =
    "Request defines parameters that are not allowed (e.g., reserved properties).";
/// 400 for a non-object JSON body.
pub const JSON_OBJECT_EXPECTED: &str = "The request content was malformed:\nJSON object expected";
/// 500 default text (Pekko).
pub const INTERNAL_SERVER_ERROR: &str = "There was an internal server error.";
/// 503 default text (Pekko).
pub const SERVICE_UNAVAILABLE: &str =
    "The server is currently unavailable (because it is overloaded or down for maintenance).";
/// 408 when a client stalls while sending its request body (owl's own text: the
/// controller's HTTP server closes such connections without an answer).
pub const BODY_STALLED: &str = "The request body was not received in time.";

/// 429 of the rate throttle (`count` includes this attempt) [EN/RateThrottler.scala].
pub fn too_many_per_minute(count: u64, allowed: u64) -> String {
    format!("Too many requests in the last minute (count: {count}, allowed: {allowed}).")
}

/// 429 of the concurrency throttle (`count` excludes this attempt)
/// [EN/ActivationThrottler.scala].
pub fn too_many_in_flight(count: u64, allowed: u64) -> String {
    format!("Too many concurrent requests in flight (count: {count}, allowed: {allowed}).")
}

/// 403 naming the resource.
pub fn not_authorized_for(resource: &str) -> String {
    format!("The supplied authentication is not authorized to access '{resource}'.")
}

/// 400 for a malformed boolean query parameter (`blocking`, `result`).
pub fn malformed_boolean(param: &str, value: &str) -> String {
    format!("The query parameter '{param}' was malformed:\n'{value}' is not a valid Boolean value")
}

/// 400 for a `timeout` query parameter outside `1..=max` milliseconds.
pub fn malformed_timeout(max_ms: u64) -> String {
    format!(
        "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to {max_ms}."
    )
}

/// 413 for a request body over the payload limit.
pub fn request_too_large(len: u64, max: u64) -> String {
    format!("Request larger than allowed: {len} > {max} bytes.")
}

/// 400 for a body that is not valid JSON.
pub fn malformed_content(detail: &str) -> String {
    format!("The request content was malformed:\n{detail}")
}

/// 415 for a content type other than `application/json` (Pekko's wording).
pub fn unsupported_content_type(content_type: &str) -> String {
    format!(
        "The request's Content-Type [{content_type}] is not supported. Expected:\napplication/json"
    )
}

/// Developer error for an action that ran past its time limit.
pub fn timed_out(limit_ms: u64) -> String {
    format!("The action exceeded its time limits of {limit_ms} milliseconds.")
}

/// 400 for an action whose runtime the controller's manifest deprecates
/// [OW common/scala/.../http/ErrorResponse.scala:53 `runtimeDeprecated`].
pub fn runtime_deprecated(kind: &str) -> String {
    format!(
        "The '{kind}' runtime is no longer supported. You may read and delete but not update or invoke this action."
    )
}

/// Whisk error when a run ended without a valid response [OW ErrorResponse.scala:155
/// `abnormalRun`].
pub const ABNORMAL_RUN: &str =
    "The action did not produce a valid response and exited unexpectedly.";
/// Developer error when an action ran out of memory [OW ErrorResponse.scala:156
/// `memoryExhausted`].
pub const MEMORY_EXHAUSTED: &str = "The action exhausted its memory and was aborted.";

/// Developer error for an initialization past the action's time limit.
pub fn init_timed_out(limit_ms: u64) -> String {
    format!("The action exceeded its time limits of {limit_ms} milliseconds during initialization.")
}

/// Application error for a result over the truncation limit.
pub fn truncated_response(len: u64, max: u64, prefix: &str) -> String {
    format!(
        "The action produced a response that exceeded the allowed length: {len} > {max} bytes. The truncated response was: {prefix}"
    )
}

/// Developer error for a result that is neither a JSON object nor an array.
pub fn invalid_run_response(body: &str) -> String {
    if body.is_empty() {
        "The action did not produce a valid JSON or JSON Array response.".to_string()
    } else {
        format!("The action did not produce a valid JSON or JSON Array response: {body}")
    }
}

/// The line OpenWhisk's log store appends to the logs of an activation that ended in
/// a developer error [OW common/scala/src/main/scala/org/apache/openwhisk/http/
/// ErrorResponse.scala:203; appended by DockerToActivationLogStore.scala:118-122].
pub const LOG_WARNING_DEVELOPER_ERROR: &str =
    "The action did not initialize or run as expected. Log data might be missing.";

/// Log line appended when the log tail Lambda returned was cut.
pub fn logs_truncated(limit: usize) -> String {
    format!("Logs were truncated because the total bytes size exceeds the limit of {limit} bytes.")
}

/// 404 when a web response lacks the projected property [OW ErrorResponse.scala:206
/// `propertyNotFound`].
pub const PROPERTY_NOT_FOUND: &str = "Response does not include requested property.";
/// 400 when an `.http` result is not an HTTP response [OW ErrorResponse.scala:207
/// `invalidMedia(message/http)`].
pub const INVALID_MEDIA_HTTP: &str = "Response is not valid 'message/http'.";
/// 400 when a `.json` result is neither object nor array (`invalidMedia(application/json)`).
pub const INVALID_MEDIA_JSON: &str = "Response is not valid 'application/json'.";
/// 400 when an `.html` result has no string (`invalidMedia(text/html)`).
pub const INVALID_MEDIA_HTML: &str = "Response is not valid 'text/html'.";
/// 400 when an `.svg` result has no string (`invalidMedia(image/svg+xml)`).
pub const INVALID_MEDIA_SVG: &str = "Response is not valid 'image/svg+xml'.";
/// 400 when an `.http` result's `content-type` does not parse [OW ErrorResponse.scala:216
/// `httpUnknownContentType`].
pub const HTTP_UNKNOWN_CONTENT_TYPE: &str = "Response did not specify a known content-type.";
/// 400 when an `.http` body does not fit its content type [OW ErrorResponse.scala:217
/// `httpContentTypeError`].
pub const HTTP_CONTENT_TYPE_ERROR: &str =
    "Response type in header did not match generated content type.";
/// 400 for a web action that ended in a developer or whisk error [OW ErrorResponse.scala:218
/// `errorProcessingRequest`].
pub const ERROR_PROCESSING_REQUEST: &str = "There was an error processing your request.";
/// 202 when a web action's blocking wait expired [OW ErrorResponse.scala:215
/// `responseNotReady`].
pub const RESPONSE_NOT_READY: &str = "Response not yet ready.";
/// 401 default text (Pekko `StatusCodes.Unauthorized`, StatusCode.scala:142), answered
/// when `require-whisk-auth` is not satisfied.
pub const UNAUTHORIZED: &str =
    "Authentication is possible but has failed or not yet been provided.";

/// A sequence ran more atomic actions than `actionSequenceLimit` allows (application
/// error in the record at run time, 400 at creation) [OW common/scala/.../http/
/// ErrorResponse.scala:113 `sequenceIsTooLong`].
pub const SEQUENCE_IS_TOO_LONG: &str = "Too many actions in the sequence.";
/// 400 when a sequence is created with no component [OW ErrorResponse.scala:114
/// `sequenceNoComponent`].
pub const SEQUENCE_NO_COMPONENT: &str = "No component specified for the sequence.";
/// 400 when a sequence would contain itself [OW ErrorResponse.scala:115
/// `sequenceIsCyclic`].
pub const SEQUENCE_IS_CYCLIC: &str = "Sequence may not refer to itself.";
/// A sequence component (or a package in its path) does not exist (application error
/// in the record at run time, 400 at creation) [OW ErrorResponse.scala:116
/// `sequenceComponentNotFound`].
pub const SEQUENCE_COMPONENT_NOT_FOUND: &str = "Sequence component does not exist.";
/// Whisk error when a component's activation could not be retrieved in time [OW
/// ErrorResponse.scala:133-134 `sequenceRetrieveActivationTimeout`].
pub fn sequence_retrieve_activation_timeout(id: &str) -> String {
    format!("Timeout reached when retrieving activation {id} for sequence component.")
}
/// Whisk error when invoking a component failed [OW ErrorResponse.scala:135
/// `sequenceActivationFailure`].
pub const SEQUENCE_ACTIVATION_FAILURE: &str = "Sequence failed.";
