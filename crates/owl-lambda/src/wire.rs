//! Lambda's Invoke on the wire, without the SDK's orchestrator: the request the SDK
//! would send (same path, query, headers and body), signed with the `aws-sigv4`
//! crate under the same settings, and the answer read as the SDK reads it.
//!
//! Every piece is a plain function of its inputs — the endpoint, the request, the
//! signing time and credentials, the response — so each is checked against the SDK
//! itself: the differential test below builds one Invoke through the SDK (with a
//! fixed clock and credentials) and through these functions, and requires the same
//! method, URI, body, headers and signature; AWS's published SigV4 vectors pass
//! through [`sign`] too.
//!
//! Sources (aws-sdk-lambda 1.156.0, aws-sigv4 1.6.4, aws-runtime 1.10.2):
//! `operation/invoke.rs` (path, query, headers, signing options),
//! `protocol_serde/shape_invoke.rs` (headers in and out, error shapes),
//! `json_errors.rs` (error code and message), `config.rs` (endpoint URL sources).

use crate::credentials::Current;
use crate::{InvokeRequest, LambdaError, LambdaReply, REFUSED_BEFORE_RUNNING};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign as sigv4};
use aws_sigv4::sign::v4;
use base64::Engine;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use std::fmt::Write;
use std::time::SystemTime;

/// What a URI label or query value keeps unencoded: RFC 3986's unreserved characters
/// only, as the SDK's `aws_smithy_http::label::fmt_string` (`/` and `:` included:
/// an ARN becomes `arn%3Aaws%3A…`).
const LABEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The service name requests are signed for.
pub const SIGNING_NAME: &str = "lambda";

/// `User-Agent` of owl's Invoke calls (not signed, as the SDK does not sign it).
const OWL_USER_AGENT: &str = concat!("owl/", env!("CARGO_PKG_VERSION"));

/// Where Invoke calls go: scheme, authority and an optional base path, as the SDK's
/// endpoint resolver returned them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://authority[/path]`, without a trailing `/`.
    base: String,
}

impl Endpoint {
    /// The endpoint of `url`. A path is kept (requests go below it); a query is
    /// dropped, as the SDK drops it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid Lambda endpoint \"{url}\": {e}"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(format!(
                "invalid Lambda endpoint \"{url}\": expected scheme://host[:port]"
            ));
        };
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "invalid Lambda endpoint \"{url}\": the scheme must be http or https"
            ));
        }
        let path = uri.path().trim_end_matches('/');
        Ok(Self {
            base: format!("{scheme}://{authority}{path}"),
        })
    }

    /// The URL of this endpoint (for logs and readiness).
    pub fn as_str(&self) -> &str {
        &self.base
    }

    /// `POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=…]`.
    pub fn invoke_uri(&self, function: &str, qualifier: Option<&str>) -> Result<Uri, String> {
        let mut s = String::with_capacity(self.base.len() + function.len() + 64);
        s.push_str(&self.base);
        s.push_str("/2015-03-31/functions/");
        let _ = write!(s, "{}", utf8_percent_encode(function, LABEL));
        s.push_str("/invocations");
        if let Some(q) = qualifier {
            let _ = write!(s, "?Qualifier={}", utf8_percent_encode(q, LABEL));
        }
        s.parse()
            .map_err(|e| format!("cannot form the Invoke URI for \"{function}\": {e}"))
    }
}

/// The endpoint the SDK would call for `sdk`'s settings: an endpoint URL set in
/// owl's policy, else `AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL` or the profile's
/// (`services` section, then `endpoint_url`), else Lambda's regional endpoint with
/// the FIPS and dual-stack settings (`AWS_USE_FIPS_ENDPOINT`,
/// `AWS_USE_DUALSTACK_ENDPOINT`, profile) — resolved by the SDK's own resolver.
pub(crate) async fn resolve_endpoint(sdk: &aws_config::SdkConfig) -> anyhow::Result<Endpoint> {
    use aws_sdk_lambda::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let region = sdk
        .region()
        .ok_or_else(|| anyhow::anyhow!("no AWS region"))?
        .to_string();
    let params = Params::builder()
        .region(region)
        .use_fips(sdk.use_fips().unwrap_or(false))
        .use_dual_stack(sdk.use_dual_stack().unwrap_or(false))
        .set_endpoint(configured_endpoint_url(sdk))
        .build()
        .map_err(|e| anyhow::anyhow!("Lambda endpoint parameters: {e}"))?;
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|e| anyhow::anyhow!("cannot resolve the Lambda endpoint: {e}"))?;
    Endpoint::parse(endpoint.url()).map_err(|e| anyhow::anyhow!(e))
}

/// The endpoint URL as `aws_sdk_lambda::config::Builder::from(&SdkConfig)` picks it
/// (config.rs:1584-1629): a programmatic one wins, then the service-specific
/// environment and profile settings, then the shared one.
fn configured_endpoint_url(sdk: &aws_config::SdkConfig) -> Option<String> {
    use aws_types::service_config::ServiceConfigKey;
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_owned);
    }
    let key = ServiceConfigKey::builder()
        .service_id("Lambda")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
}

/// The Invoke request for `req`, before signing: `RequestResponse`, the log tail when
/// asked, the payload as an octet stream (the SDK's default content type for a blob).
pub fn request(
    endpoint: &Endpoint,
    req: &InvokeRequest,
    log_tail: bool,
) -> Result<Request<Bytes>, LambdaError> {
    let uri = endpoint
        .invoke_uri(&req.function, req.qualifier.as_deref())
        .map_err(|e| LambdaError::Refused {
            code: format!("InvalidRequest: {e}"),
            status: 0,
        })?;
    let mut r = Request::new(req.payload.clone());
    *r.method_mut() = Method::POST;
    *r.uri_mut() = uri;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(req.payload.len()));
    h.insert(
        "x-amz-invocation-type",
        HeaderValue::from_static("RequestResponse"),
    );
    if log_tail {
        h.insert("x-amz-log-type", HeaderValue::from_static("Tail"));
    }
    h.insert(USER_AGENT, HeaderValue::from_static(OWL_USER_AGENT));
    Ok(r)
}

/// Signs `req` in place (SigV4 in headers: `x-amz-date`, `x-amz-security-token` when
/// the credentials carry one, `authorization`) with the SDK's settings for Lambda —
/// `SigningSettings::default()`: path normalised and double-encoded in the canonical
/// request, the payload hashed but no `x-amz-content-sha256` header, the session
/// token signed; `user-agent` and `x-amzn-trace-id` excluded.
pub fn sign(
    req: &mut Request<Bytes>,
    credentials: &Current,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let params = v4::SigningParams::builder()
        .identity(&credentials.identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let uri = req.uri().to_string();
    let mut headers = Vec::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        let value = value
            .to_str()
            .map_err(|_| format!("header {name} is not visible ASCII"))?;
        headers.push((name.as_str(), value));
    }
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(req.body()),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _signature) = sigv4(signable, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

/// One header's value as the SDK reads it (`one_or_none`): trimmed; absent → `None`;
/// repeated → an unreadable answer.
fn one_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, LambdaError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(LambdaError::Indeterminate(format!(
            "Lambda's answer repeats the header {name}"
        )));
    }
    let text = first.to_str().map_err(|_| {
        LambdaError::Indeterminate(format!("Lambda's answer has an unreadable {name}"))
    })?;
    Ok(Some(text.trim().to_string()))
}

/// Reads Lambda's answer: a 2xx is the function's reply (its error flag, log tail and
/// executed version from the headers); anything else is classified as
/// [`classify_error`] does.
pub fn reply(
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<LambdaReply, LambdaError> {
    if !status.is_success() {
        return Err(classify_error(status, headers, &body));
    }
    let function_error = one_header(headers, "x-amz-function-error")?;
    let executed_version = one_header(headers, "x-amz-executed-version")?;
    let log_tail = one_header(headers, "x-amz-log-result")?.and_then(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
    });
    Ok(LambdaReply {
        function_error,
        executed_version,
        log_tail,
        payload: body,
    })
}

/// An error code as the SDK sanitises it: cut at the first `:` (a URL suffix), then
/// what follows the first `#` (a namespace).
fn sanitize_code(raw: &str) -> &str {
    let code = raw.split(':').next().unwrap_or(raw);
    code.split_once('#').map_or(code, |(_, c)| c)
}

/// Lambda's refusal, classified by whether the function may have run — the same
/// classes as the SDK path had: the code from `x-amzn-errortype`, else the body's
/// `code`, else `__type`; throttles with their `Reason` and `Retry-After`; the codes
/// Lambda answers before running anything; everything else (500 `ServiceException`,
/// codes unknown here) may come after the function ran.
pub fn classify_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> LambdaError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).and_then(Value::as_str);
    let code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .or_else(|| field("code"))
        .or_else(|| field("__type"))
        .map(sanitize_code)
        .filter(|c| !c.is_empty())
        .unwrap_or("Unknown")
        .to_string();
    let message = || {
        ["message", "Message", "errorMessage"]
            .iter()
            .find_map(|k| field(k))
            .unwrap_or("")
            .to_string()
    };
    let status = status.as_u16();
    match code.as_str() {
        "TooManyRequestsException" => LambdaError::Throttled {
            reason: field("Reason")
                .unwrap_or("TooManyRequestsException")
                .to_string(),
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse().ok()),
        },
        "ResourceNotFoundException" => LambdaError::NotFound(message()),
        "RequestTooLargeException" | "SerializedRequestEntityTooLargeException" => {
            LambdaError::TooLarge
        }
        _ if status == 413 => LambdaError::TooLarge,
        _ if status == 429 => LambdaError::Throttled {
            reason: code,
            retry_after: None,
        },
        c if REFUSED_BEFORE_RUNNING.contains(&c) => LambdaError::Refused { code, status },
        _ => LambdaError::Indeterminate(format!("{code} (HTTP {status})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use std::time::{Duration, UNIX_EPOCH};

    fn current(key: &str, secret: &str, token: Option<&str>) -> Current {
        let credentials = Credentials::new(key, secret, token.map(str::to_string), None, "test");
        Current::new(credentials, SystemTime::now())
    }

    fn invoke(function: &str, qualifier: Option<&str>, payload: &'static [u8]) -> InvokeRequest {
        InvokeRequest {
            function: function.into(),
            qualifier: qualifier.map(str::to_string),
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn function_names_and_qualifiers_are_encoded_as_the_sdk_encodes_labels() {
        let e = Endpoint::parse("https://lambda.us-east-1.amazonaws.com/").unwrap();
        assert_eq!(
            e.invoke_uri(
                "arn:aws:lambda:us-east-1:123456789012:function:f",
                Some("$LATEST")
            )
            .unwrap()
            .to_string(),
            "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations?Qualifier=%24LATEST"
        );
        assert_eq!(
            e.invoke_uri("owl-guest--hello_1.x~", None).unwrap().path(),
            "/2015-03-31/functions/owl-guest--hello_1.x~/invocations"
        );
        // A path in the endpoint is kept, a query dropped.
        let e = Endpoint::parse("http://127.0.0.1:4566/proxy/?x=1").unwrap();
        assert_eq!(e.as_str(), "http://127.0.0.1:4566/proxy");
        assert!(Endpoint::parse("127.0.0.1:4566").is_err());
        assert!(Endpoint::parse("ftp://example.com").is_err());
    }

    #[test]
    fn the_request_carries_what_the_sdk_sends() {
        let e = Endpoint::parse("http://127.0.0.1:4566").unwrap();
        let r = request(&e, &invoke("f", Some("live"), b"{\"a\":1}"), true).unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(r.headers()["content-length"], "7");
        assert_eq!(r.headers()["x-amz-invocation-type"], "RequestResponse");
        assert_eq!(r.headers()["x-amz-log-type"], "Tail");
        let r = request(&e, &invoke("f", None, b""), false).unwrap();
        assert_eq!(r.headers()["content-length"], "0");
        assert!(r.headers().get("x-amz-log-type").is_none());
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_reply_is_read_from_headers_and_body() {
        let tail = base64::engine::general_purpose::STANDARD.encode("START\nEND\n");
        let r = reply(
            StatusCode::OK,
            &headers(&[
                ("x-amz-function-error", " Unhandled "),
                ("x-amz-executed-version", "$LATEST"),
                ("x-amz-log-result", &tail),
            ]),
            Bytes::from_static(b"{\"errorMessage\":\"x\"}"),
        )
        .unwrap();
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        assert_eq!(r.executed_version.as_deref(), Some("$LATEST"));
        assert_eq!(r.log_tail.as_deref(), Some("START\nEND\n"));
        assert_eq!(&r.payload[..], b"{\"errorMessage\":\"x\"}");
        // An undecodable tail is no tail; an empty body is an empty payload.
        let r = reply(
            StatusCode::OK,
            &headers(&[("x-amz-log-result", "%%%")]),
            Bytes::new(),
        )
        .unwrap();
        assert_eq!(r.log_tail, None);
        assert!(r.payload.is_empty());
        // A repeated header is an answer owl cannot read: the function may have run.
        let e = reply(
            StatusCode::OK,
            &headers(&[("x-amz-function-error", "a"), ("x-amz-function-error", "b")]),
            Bytes::new(),
        )
        .unwrap_err();
        assert_eq!(e.ran(), crate::Ran::Maybe);
    }

    #[test]
    fn errors_are_classified_by_whether_the_function_may_have_run() {
        let throttled = classify_error(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[
                ("x-amzn-errortype", "TooManyRequestsException:http://internal.amazon.com/"),
                ("retry-after", " 3 "),
            ]),
            br#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate exceeded","retryAfterSeconds":"9"}"#,
        );
        match throttled {
            LambdaError::Throttled {
                reason,
                retry_after,
            } => {
                assert_eq!(reason, "ReservedFunctionConcurrentInvocationLimitExceeded");
                // The header, not the body (shape_invoke.rs:679-702).
                assert_eq!(retry_after, Some(3));
            }
            other => panic!("{other:?}"),
        }
        // Code from the body when the header is absent; `code` before `__type`;
        // namespaces and URL suffixes removed.
        let e = classify_error(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            br#"{"__type":"com.amazon#ResourceNotFoundException","Message":"Function not found: f"}"#,
        );
        assert!(
            matches!(&e, LambdaError::NotFound(m) if m == "Function not found: f"),
            "{e:?}"
        );
        let e = classify_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"{"code":"InvalidRequestContentException","__type":"ServiceException"}"#,
        );
        assert!(
            matches!(&e, LambdaError::Refused { code, status: 400 } if code == "InvalidRequestContentException"),
            "{e:?}"
        );
        assert_eq!(e.ran(), crate::Ran::No);
        let e = classify_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &headers(&[("x-amzn-errortype", "RequestTooLargeException")]),
            b"{}",
        );
        assert!(matches!(e, LambdaError::TooLarge));
        // 413 / 429 without a known code.
        assert!(matches!(
            classify_error(StatusCode::PAYLOAD_TOO_LARGE, &HeaderMap::new(), b"<html>"),
            LambdaError::TooLarge
        ));
        assert!(matches!(
            classify_error(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b""),
            LambdaError::Throttled { reason, retry_after: None } if reason == "Unknown"
        ));
        // A service error, or anything unknown, may come after the function ran.
        let e = classify_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &headers(&[("x-amzn-errortype", "ServiceException")]),
            b"{}",
        );
        assert_eq!(e.ran(), crate::Ran::Maybe);
        assert_eq!(
            e.to_string(),
            "the Lambda invocation failed and may or may not have run: ServiceException (HTTP 500)"
        );
        let e = classify_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"not json");
        assert_eq!(e.ran(), crate::Ran::Maybe);
        assert!(e.to_string().contains("Unknown (HTTP 502)"), "{e}");
    }

    /// One case of AWS's SigV4 suite: `request.txt` parsed, signed, and the signature
    /// and signed headers compared with the suite's.
    fn sigv4_case(dir: &std::path::Path) {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let context: Value = serde_json::from_str(&read("context.json")).unwrap();
        let raw = read("request.txt");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut lines = head.lines();
        let request_line = lines.next().unwrap();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap();
        let target = parts.next().unwrap();
        let mut req = Request::new(Bytes::from(body.to_string()));
        *req.method_mut() = method.parse().unwrap();
        let mut host = String::new();
        for line in lines {
            let (k, v) = line.split_once(':').unwrap();
            if k.eq_ignore_ascii_case("host") {
                host = v.to_string();
            }
            req.headers_mut().append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        *req.uri_mut() = format!("https://{host}{target}").parse().unwrap();
        let c = &context["credentials"];
        let creds = current(
            c["access_key_id"].as_str().unwrap(),
            c["secret_access_key"].as_str().unwrap(),
            c["token"].as_str(),
        );
        let at = time::OffsetDateTime::parse(
            context["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        sign(
            &mut req,
            &creds,
            context["region"].as_str().unwrap(),
            context["service"].as_str().unwrap(),
            SystemTime::from(at),
        )
        .unwrap();
        let authorization = req.headers()["authorization"].to_str().unwrap();
        let want = read("header-signature.txt");
        assert!(
            authorization.ends_with(&format!("Signature={}", want.trim())),
            "{name}: {authorization}"
        );
        // Every header of the suite's signed request is on ours, with its value.
        let signed = read("header-signed-request.txt");
        for line in signed.split("\n\n").next().unwrap().lines().skip(1) {
            let (k, v) = line.split_once(':').unwrap();
            let ours: Vec<_> = req
                .headers()
                .get_all(k)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert!(ours.contains(&v), "{name}: {k}: {v} not in {ours:?}");
        }
    }

    #[test]
    fn aws_sigv4_test_vectors_pass() {
        let suite = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sigv4-suite");
        let mut cases = 0;
        for entry in std::fs::read_dir(&suite).unwrap() {
            let dir = entry.unwrap().path();
            if dir.is_dir() {
                sigv4_case(&dir);
                cases += 1;
            }
        }
        assert!(cases >= 12, "{cases} cases");
    }

    /// The differential test: one Invoke through the SDK (fixed clock, fixed
    /// credentials with a session token, an ARN and a qualifier that need encoding)
    /// and the same through [`request`] and [`sign`]. The SDK's request is caught
    /// just before it is sent. Headers the SDK adds for itself and does not sign
    /// (`amz-sdk-invocation-id`, `amz-sdk-request`, `user-agent`) are not compared;
    /// its `x-amz-user-agent`, which owl does not send, is removed before the SDK
    /// signs. Everything else — method, URI, body, every header, and so the
    /// canonical request and the signature — must be identical.
    #[tokio::test]
    async fn the_lean_request_is_the_one_the_sdk_sends() {
        use aws_sdk_lambda::config::interceptors::{
            BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
        };
        use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
        use aws_sdk_lambda::error::BoxError;
        use std::sync::{Arc, Mutex};

        type Caught = (String, String, Vec<(String, String)>, Vec<u8>);
        #[derive(Debug, Clone, Default)]
        struct Catch(Arc<Mutex<Option<Caught>>>);
        impl Intercept for Catch {
            fn name(&self) -> &'static str {
                "owl.test.Catch"
            }
            fn modify_before_signing(
                &self,
                context: &mut BeforeTransmitInterceptorContextMut<'_>,
                _rc: &RuntimeComponents,
                _cfg: &mut ConfigBag,
            ) -> Result<(), BoxError> {
                context
                    .request_mut()
                    .headers_mut()
                    .remove("x-amz-user-agent");
                Ok(())
            }
            fn read_before_transmit(
                &self,
                context: &BeforeTransmitInterceptorContextRef<'_>,
                _rc: &RuntimeComponents,
                _cfg: &mut ConfigBag,
            ) -> Result<(), BoxError> {
                let r = context.request();
                let headers = r
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                *self.0.lock().unwrap() = Some((
                    r.method().to_string(),
                    r.uri().to_string(),
                    headers,
                    r.body().bytes().unwrap_or_default().to_vec(),
                ));
                Err("caught before transmit".into())
            }
        }

        let at = UNIX_EPOCH + Duration::from_secs(1_764_806_400);
        let (key, secret, token) = (
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "FQoGZXIvYXdzEJr//////////token",
        );
        for (function, qualifier, log_tail, endpoint) in [
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:owl-guest--hello",
                Some("$LATEST"),
                true,
                "https://lambda.eu-west-1.amazonaws.com",
            ),
            ("owl-alice-pkg-echo", None, false, "http://127.0.0.1:4566"),
            (
                "owl-alice-pkg-echo",
                Some("live"),
                true,
                "http://localhost:4566/base",
            ),
        ] {
            let catch = Catch::default();
            let conf = aws_sdk_lambda::Config::builder()
                .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
                .region(aws_sdk_lambda::config::Region::new("eu-west-1"))
                .endpoint_url(endpoint)
                .credentials_provider(Credentials::new(
                    key,
                    secret,
                    Some(token.into()),
                    None,
                    "test",
                ))
                .time_source(aws_smithy_async::time::StaticTimeSource::new(at))
                .interceptor(catch.clone())
                .build();
            let client = aws_sdk_lambda::Client::from_conf(conf);
            let mut call = client
                .invoke()
                .function_name(function)
                .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
                .payload(aws_sdk_lambda::primitives::Blob::new(
                    &b"{\"name\":\"owl\"}"[..],
                ));
            if let Some(q) = qualifier {
                call = call.qualifier(q);
            }
            if log_tail {
                call = call.log_type(aws_sdk_lambda::types::LogType::Tail);
            }
            assert!(call.send().await.is_err());
            let (method, uri, sdk_headers, body) = catch.0.lock().unwrap().take().expect("caught");

            let ep = Endpoint::parse(endpoint).unwrap();
            let mut ours = request(
                &ep,
                &InvokeRequest {
                    function: function.into(),
                    qualifier: qualifier.map(str::to_string),
                    payload: Bytes::from_static(b"{\"name\":\"owl\"}"),
                },
                log_tail,
            )
            .unwrap();
            sign(
                &mut ours,
                &current(key, secret, Some(token)),
                "eu-west-1",
                SIGNING_NAME,
                at,
            )
            .unwrap();

            assert_eq!(ours.method().as_str(), method);
            assert_eq!(ours.uri().to_string(), uri);
            assert_eq!(&ours.body()[..], &body[..]);
            let unsigned_sdk_own = ["amz-sdk-invocation-id", "amz-sdk-request", "user-agent"];
            let mut theirs: Vec<(String, String)> = sdk_headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .filter(|(k, _)| !unsigned_sdk_own.contains(&k.as_str()))
                .collect();
            let mut mine: Vec<(String, String)> = ours
                .headers()
                .iter()
                .filter(|(k, _)| *k != USER_AGENT)
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            theirs.sort();
            mine.sort();
            assert_eq!(mine, theirs, "{function} {qualifier:?} {endpoint}");
            assert!(
                mine.iter()
                    .any(|(k, v)| k == "x-amz-security-token" && v == token)
            );
        }
    }
}
