//! Activation records (reference §2): ids, status codes, the response object and the
//! two JSON forms (API form and stored CouchDB document form).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;
use std::str::FromStr;

/// A 32-character lowercase hex activation id made from a random v4 UUID (§2.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActivationId(String);

impl ActivationId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not an activation id; the texts are OpenWhisk's (Appendix A).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationIdError {
    /// Not 32 characters long.
    #[error("Activation id length is {0} but must be 32.")]
    Length(usize),
    /// 32 characters, but not all lowercase hex.
    #[error("The activation id is not valid.")]
    Invalid,
}

impl FromStr for ActivationId {
    type Err = ActivationIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = s.chars().count();
        if len != 32 {
            return Err(ActivationIdError::Length(len));
        }
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ActivationIdError::Invalid);
        }
        Ok(Self(s.to_string()))
    }
}

impl TryFrom<String> for ActivationId {
    type Error = ActivationIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ActivationId> for String {
    fn from(id: ActivationId) -> String {
        id.0
    }
}

impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Outcome class of an activation (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// 0: the action returned a result.
    Success,
    /// 1: the action returned `{"error": ...}`.
    ApplicationError,
    /// 2: the action failed to run properly (crash, timeout, bad result).
    DeveloperError,
    /// 3: the platform failed.
    WhiskError,
}

impl StatusCode {
    /// The stored numeric code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::ApplicationError => 1,
            Self::DeveloperError => 2,
            Self::WhiskError => 3,
        }
    }

    /// From the stored numeric code.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Success,
            1 => Self::ApplicationError,
            2 => Self::DeveloperError,
            3 => Self::WhiskError,
            _ => return None,
        })
    }

    /// The API `status` string (with spaces, exactly as clients match it).
    pub fn status(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ApplicationError => "application error",
            Self::DeveloperError => "action developer error",
            Self::WhiskError => "whisk internal error",
        }
    }

    /// The HTTP status of a blocking invoke with this outcome (§1.6).
    pub fn http_status(self) -> http::StatusCode {
        match self {
            Self::Success => http::StatusCode::OK,
            Self::ApplicationError | Self::DeveloperError => http::StatusCode::BAD_GATEWAY,
            Self::WhiskError => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The `response` object of an activation.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationResponse {
    /// Outcome class.
    pub status_code: StatusCode,
    /// The result (for errors, `{"error": ...}`).
    pub result: Option<Value>,
    /// Length of the raw result as the action produced it, when known.
    pub size: Option<u64>,
}

impl ActivationResponse {
    /// A success with `result`.
    pub fn success(result: Value, size: Option<u64>) -> Self {
        Self {
            status_code: StatusCode::Success,
            result: Some(result),
            size,
        }
    }

    /// An error of class `code` whose result is `{"error": error}`.
    pub fn error(code: StatusCode, error: Value, size: Option<u64>) -> Self {
        Self {
            status_code: code,
            result: Some(json!({ "error": error })),
            size,
        }
    }

    /// A whisk internal error with a message.
    pub fn whisk_error(message: impl Into<String>) -> Self {
        Self::error(StatusCode::WhiskError, Value::String(message.into()), None)
    }

    /// API form: `{"result", "size"?, "status", "success"}`.
    pub fn to_api_json(&self) -> Value {
        serde_json::to_value(ResponseApiForm(self)).unwrap_or(Value::Null)
    }

    /// Stored form: `{"result", "size"?, "statusCode"}`.
    pub fn to_document_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(r) = &self.result {
            m.insert("result".into(), r.clone());
        }
        if let Some(s) = self.size {
            m.insert("size".into(), s.into());
        }
        m.insert("statusCode".into(), self.status_code.code().into());
        Value::Object(m)
    }

    /// Parses either form.
    pub fn from_json(v: &Value) -> Option<Self> {
        let status_code = match v.get("statusCode").and_then(Value::as_u64) {
            Some(code) => StatusCode::from_code(code)?,
            None => match v.get("status").and_then(Value::as_str)? {
                "success" => StatusCode::Success,
                "application error" => StatusCode::ApplicationError,
                "action developer error" => StatusCode::DeveloperError,
                "whisk internal error" => StatusCode::WhiskError,
                _ => return None,
            },
        };
        Some(Self {
            status_code,
            result: v.get("result").cloned(),
            size: v.get("size").and_then(Value::as_u64),
        })
    }
}

/// One `{"key", "value"}` annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Annotation name.
    pub key: String,
    /// Annotation value.
    pub value: Value,
}

/// The API form of an activation (`toExtendedJson`), serialised in OpenWhisk's field
/// order: `namespace, name, subject, activationId, start, end?, cause?, duration?,
/// response, logs, version, publish, annotations` — `end` and `duration` absent while
/// the end is unknown, `cause` for sequence components only.
#[derive(Debug, Clone, Copy)]
pub struct ApiForm<'a> {
    activation: &'a Activation,
    with_logs: bool,
}

impl Serialize for ApiForm<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let a = self.activation;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("namespace", &a.namespace)?;
        m.serialize_entry("name", &a.name)?;
        m.serialize_entry("subject", &a.subject)?;
        m.serialize_entry("activationId", a.activation_id.as_str())?;
        m.serialize_entry("start", &a.start)?;
        if a.end != 0 {
            m.serialize_entry("end", &a.end)?;
        }
        if let Some(c) = &a.cause {
            m.serialize_entry("cause", c)?;
        }
        if let Some(d) = a.duration() {
            m.serialize_entry("duration", &d)?;
        }
        m.serialize_entry("response", &ResponseApiForm(&a.response))?;
        let no_logs: &[String] = &[];
        m.serialize_entry("logs", if self.with_logs { &a.logs[..] } else { no_logs })?;
        m.serialize_entry("version", &a.version)?;
        m.serialize_entry("publish", &a.publish)?;
        m.serialize_entry("annotations", &a.annotations)?;
        m.end()
    }
}

/// The API form of an activation's response: `{"result"?, "size"?, "status",
/// "success"}`.
struct ResponseApiForm<'a>(&'a ActivationResponse);

impl Serialize for ResponseApiForm<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(result) = &r.result {
            m.serialize_entry("result", result)?;
        }
        if let Some(size) = r.size {
            m.serialize_entry("size", &size)?;
        }
        m.serialize_entry("status", r.status_code.status())?;
        m.serialize_entry("success", &(r.status_code == StatusCode::Success))?;
        m.end()
    }
}

/// An activation record.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    /// Namespace of the invoking identity.
    pub namespace: String,
    /// Action name (without package).
    pub name: String,
    /// Subject of the invoking identity.
    pub subject: String,
    /// The activation id.
    pub activation_id: ActivationId,
    /// Start, epoch milliseconds (includes init time on a cold start).
    pub start: i64,
    /// End, epoch milliseconds; 0 while unknown.
    pub end: i64,
    /// Enclosing activation (sequences only).
    pub cause: Option<String>,
    /// The response.
    pub response: ActivationResponse,
    /// Log lines in OpenWhisk's line format.
    pub logs: Vec<String>,
    /// Action version.
    pub version: String,
    /// Always false for activations.
    pub publish: bool,
    /// Annotations in OpenWhisk's order.
    pub annotations: Vec<Annotation>,
    /// The duration when it is not `end - start`: a sequence's is the sum of its
    /// components' [OW core/controller/.../actions/SequenceActions.scala:247].
    pub duration_ms: Option<i64>,
}

impl Activation {
    /// Value of annotation `key`, if present.
    pub fn annotation(&self, key: &str) -> Option<&Value> {
        self.annotations
            .iter()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    fn common_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("namespace".into(), self.namespace.clone().into());
        m.insert("name".into(), self.name.clone().into());
        m.insert("subject".into(), self.subject.clone().into());
        m.insert("activationId".into(), self.activation_id.as_str().into());
        m.insert("start".into(), self.start.into());
        if self.end != 0 {
            m.insert("end".into(), self.end.into());
        }
        if let Some(c) = &self.cause {
            m.insert("cause".into(), c.clone().into());
        }
        m
    }

    fn tail_fields(&self, m: &mut Map<String, Value>, logs: bool) {
        let logs = if logs { self.logs.clone() } else { Vec::new() };
        m.insert("logs".into(), logs.into());
        m.insert("version".into(), self.version.clone().into());
        m.insert("publish".into(), self.publish.into());
        m.insert(
            "annotations".into(),
            serde_json::to_value(&self.annotations).unwrap_or(Value::Array(Vec::new())),
        );
    }

    /// Duration in ms (`end - start`), or `None` while the end is unknown. Saturates:
    /// times read from documents can be anything, and must not overflow.
    pub fn duration(&self) -> Option<i64> {
        (self.end != 0).then(|| {
            self.duration_ms
                .unwrap_or_else(|| self.end.saturating_sub(self.start))
        })
    }

    /// API form (`toExtendedJson`), with or without logs (blocking responses carry `[]`).
    pub fn to_api_json(&self, with_logs: bool) -> Value {
        serde_json::to_value(self.api_form(with_logs)).unwrap_or(Value::Null)
    }

    /// The API form as something to serialise straight to bytes (no intermediate
    /// `Value`, nothing copied): what an answer and the embedded store write.
    pub fn api_form(&self, with_logs: bool) -> ApiForm<'_> {
        ApiForm {
            activation: self,
            with_logs,
        }
    }

    /// Stored CouchDB document form (§2.1): `_id = ns/id`, `entityType`, `updated`,
    /// and `response.statusCode` instead of `status`/`success`.
    pub fn to_document_json(&self, updated_ms: i64) -> Value {
        let mut m = Map::new();
        m.insert(
            "_id".into(),
            format!("{}/{}", self.namespace, self.activation_id).into(),
        );
        m.extend(self.common_fields());
        if let Some(d) = self.duration() {
            m.insert("duration".into(), d.into());
        }
        m.insert("response".into(), self.response.to_document_json());
        self.tail_fields(&mut m, true);
        m.insert("entityType".into(), "activation".into());
        m.insert("updated".into(), updated_ms.into());
        Value::Object(m)
    }

    /// The list-summary form (`{namespace,name,version,publish,annotations,activationId,
    /// start,end,duration,cause,statusCode}`, absent values omitted).
    pub fn to_summary_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("namespace".into(), self.namespace.clone().into());
        m.insert("name".into(), self.name.clone().into());
        m.insert("version".into(), self.version.clone().into());
        m.insert("publish".into(), self.publish.into());
        m.insert(
            "annotations".into(),
            serde_json::to_value(&self.annotations).unwrap_or(Value::Array(Vec::new())),
        );
        m.insert("activationId".into(), self.activation_id.as_str().into());
        m.insert("start".into(), self.start.into());
        if self.end != 0 {
            m.insert("end".into(), self.end.into());
            m.insert("duration".into(), self.duration().unwrap_or(0).into());
            m.insert("statusCode".into(), self.response.status_code.code().into());
        }
        if let Some(c) = &self.cause {
            m.insert("cause".into(), c.clone().into());
        }
        Value::Object(m)
    }

    /// Parses either JSON form (API or stored document).
    pub fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            namespace: s("namespace")?,
            name: s("name")?,
            subject: s("subject").unwrap_or_default(),
            activation_id: s("activationId")?.parse().ok()?,
            start: v.get("start").and_then(Value::as_i64)?,
            end: v.get("end").and_then(Value::as_i64).unwrap_or(0),
            cause: s("cause"),
            response: ActivationResponse::from_json(v.get("response")?)?,
            logs: v
                .get("logs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|l| l.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            version: s("version").unwrap_or_else(|| "0.0.1".into()),
            publish: v.get("publish").and_then(Value::as_bool).unwrap_or(false),
            annotations: v
                .get("annotations")
                .and_then(|a| serde_json::from_value(a.clone()).ok())
                .unwrap_or_default(),
            // Kept only where it is not `end - start` (a sequence's).
            duration_ms: v.get("duration").and_then(Value::as_i64).filter(|d| {
                let end = v.get("end").and_then(Value::as_i64).unwrap_or(0);
                let start = v.get("start").and_then(Value::as_i64).unwrap_or(0);
                end == 0 || *d != end.saturating_sub(start)
            }),
        })
    }
}

/// Formats one log line as OpenWhisk stores it (§2.1): the ISO-8601 timestamp padded
/// on the right to 30 characters, the stream, a colon and the text.
pub fn format_log_line(timestamp: time::OffsetDateTime, stream: LogStream, text: &str) -> String {
    // Java's `Instant.toString` (what OpenWhisk's LogLine prints): the fraction in
    // groups of three digits — but never none, since `wsk activation logs --strip`
    // matches `.\d+Z` (a whole second gets `.000`).
    // An instant past the range `time` holds in UTC (`9999-12-31T23:59:59-01:00` in
    // a function's log line) is clamped to that range's end, not a panic.
    let t = timestamp
        .checked_to_offset(time::UtcOffset::UTC)
        .unwrap_or_else(|| {
            let edge = if timestamp.offset().is_negative() {
                time::PrimitiveDateTime::MAX
            } else {
                time::PrimitiveDateTime::MIN
            };
            edge.assume_utc()
        });
    let nanos = t.nanosecond();
    let fraction = if nanos.is_multiple_of(1_000_000) {
        format!("{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{:06}", nanos / 1_000)
    } else {
        format!("{nanos:09}")
    };
    let ts = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{fraction}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    format!("{ts:<30} {}: {text}", stream.as_str())
}

/// The stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Activation {
        Activation {
            duration_ms: None,
            namespace: "guest".into(),
            name: "hello".into(),
            subject: "guest".into(),
            activation_id: "3f1e2d4c5b6a4978a1b2c3d4e5f60718".parse().unwrap(),
            start: 1_700_000_000_000,
            end: 1_700_000_000_057,
            cause: None,
            response: ActivationResponse::success(json!({"payload": "Hello"}), Some(19)),
            logs: vec!["line".into()],
            version: "0.0.1".into(),
            publish: false,
            annotations: vec![Annotation {
                key: "path".into(),
                value: "guest/hello".into(),
            }],
        }
    }

    #[test]
    fn ids_are_v4_hex() {
        let id = ActivationId::generate();
        let s = id.as_str();
        assert_eq!(s.len(), 32);
        assert_eq!(&s[12..13], "4");
        assert!(matches!(&s[16..17], "8" | "9" | "a" | "b"));
        assert_eq!(s.parse::<ActivationId>().unwrap(), id);
        assert_eq!(
            "abc".parse::<ActivationId>().unwrap_err().to_string(),
            "Activation id length is 3 but must be 32."
        );
        assert_eq!(
            "3F1E2D4C5B6A4978A1B2C3D4E5F60718"
                .parse::<ActivationId>()
                .unwrap_err()
                .to_string(),
            "The activation id is not valid."
        );
    }

    /// The API form, byte for byte: field order, optional fields, logs on request.
    #[test]
    fn the_api_form_is_serialised_in_openwhisks_order() {
        let mut a = sample();
        let text = serde_json::to_string(&a.api_form(true)).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"namespace":"guest","name":"hello","subject":"guest","#,
                r#""activationId":"3f1e2d4c5b6a4978a1b2c3d4e5f60718","#,
                r#""start":1700000000000,"end":1700000000057,"duration":57,"#,
                r#""response":{"result":{"payload":"Hello"},"size":19,"status":"success","success":true},"#,
                r#""logs":["line"],"version":"0.0.1","publish":false,"#,
                r#""annotations":[{"key":"path","value":"guest/hello"}]}"#
            )
        );
        assert_eq!(text, serde_json::to_string(&a.to_api_json(true)).unwrap());
        // Unknown end: neither end nor duration; a cause; an error's response; no logs.
        a.end = 0;
        a.cause = Some("0123456789abcdef0123456789abcdef".into());
        a.response = ActivationResponse::error(StatusCode::ApplicationError, json!("no"), None);
        assert_eq!(
            serde_json::to_string(&a.api_form(false)).unwrap(),
            concat!(
                r#"{"namespace":"guest","name":"hello","subject":"guest","#,
                r#""activationId":"3f1e2d4c5b6a4978a1b2c3d4e5f60718","#,
                r#""start":1700000000000,"cause":"0123456789abcdef0123456789abcdef","#,
                r#""response":{"result":{"error":"no"},"status":"application error","success":false},"#,
                r#""logs":[],"version":"0.0.1","publish":false,"#,
                r#""annotations":[{"key":"path","value":"guest/hello"}]}"#
            )
        );
    }

    #[test]
    fn api_form_matches_the_reference_example() {
        let v = sample().to_api_json(false);
        assert_eq!(v["duration"], 57);
        assert_eq!(
            v["response"],
            json!({"result": {"payload": "Hello"}, "size": 19, "status": "success", "success": true})
        );
        assert_eq!(v["logs"], json!([]));
        assert_eq!(v["publish"], false);
        assert!(v.get("statusCode").is_none());
        assert!(v.get("cause").is_none());
        assert_eq!(sample().to_api_json(true)["logs"], json!(["line"]));
    }

    #[test]
    fn document_form_has_stored_fields() {
        let v = sample().to_document_json(1);
        assert_eq!(v["_id"], "guest/3f1e2d4c5b6a4978a1b2c3d4e5f60718");
        assert_eq!(v["entityType"], "activation");
        assert_eq!(v["response"]["statusCode"], 0);
        assert!(v["response"].get("status").is_none());
        assert_eq!(Activation::from_json(&v).unwrap(), sample());
        assert_eq!(
            Activation::from_json(&sample().to_api_json(true)).unwrap(),
            sample()
        );
    }

    #[test]
    fn status_strings_have_spaces() {
        assert_eq!(StatusCode::ApplicationError.status(), "application error");
        assert_eq!(
            StatusCode::DeveloperError.status(),
            "action developer error"
        );
        assert_eq!(StatusCode::WhiskError.status(), "whisk internal error");
        assert_eq!(StatusCode::WhiskError.http_status(), 500);
        assert_eq!(StatusCode::ApplicationError.http_status(), 502);
    }

    #[test]
    fn log_lines_are_padded() {
        let t = time::macros::datetime!(2017-06-28 16:09:33.178 UTC);
        assert_eq!(
            format_log_line(t, LogStream::Stdout, "hi"),
            "2017-06-28T16:09:33.178Z       stdout: hi"
        );
        // issue 15 §15: a whole second still has a fraction
        let whole = time::macros::datetime!(2017-06-28 16:09:33 UTC);
        assert_eq!(
            format_log_line(whole, LogStream::Stderr, "x"),
            "2017-06-28T16:09:33.000Z       stderr: x"
        );
        let micros = time::macros::datetime!(2017-06-28 16:09:33.000_001 UTC);
        assert!(
            format_log_line(micros, LogStream::Stdout, "x")
                .starts_with("2017-06-28T16:09:33.000001Z ")
        );
    }
}
