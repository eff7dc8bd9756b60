//! OpenWhisk web actions without I/O: the extension of the action segment, the
//! arguments the controller builds from an HTTP request, and the transcoding of an
//! activation's result into the HTTP response (design note
//! `docs/design/openwhisk-web-actions.md` §1.5, §3, §4, §11).
//!
//! Rules are OpenWhisk's `WebActions.scala` at apache/openwhisk `1fae641a2b30`
//! (`core/controller/src/main/scala/org/apache/openwhisk/core/controller/`), cited as
//! `WebActions.scala:LINE`; its tests as `WebActionsApiTests.scala:LINE`. Pekko HTTP
//! 1.1.0 and spray-json 1.3.5 behaviour the controller relies on is reproduced where it
//! shows in bytes a client can see (media types, JSON printing, parse errors).
//!
//! Where this module and the design note differ, the Scala was followed:
//! * JSON members print sorted by UTF-16 code units (spray-json 1.3.5 objects are
//!   `TreeMap`s), not in insertion or hash order; so OpenWhisk's error body prints
//!   `code` before `error` (see [`error_body`]).
//! * A `.http` JSON body whose `content-type` does not parse answers
//!   [`messages::HTTP_CONTENT_TYPE_ERROR`], not [`messages::HTTP_UNKNOWN_CONTENT_TYPE`]
//!   (WebActions.scala:319-340 only matches `Success`).

mod codec;
mod json;
mod media;
mod pretty;
mod uri;

pub use media::is_tchar;
pub use pretty::{compact, pretty};

use crate::messages;
use http::header::{CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue};
use media::{ContentType, Kind, MediaType};
use serde_json::{Map, Value};

/// The parameters the controller adds to a web action's input; a request may not set
/// them [WebActions.scala:72-79; WebActionsApiTests.scala:107-119].
pub const RESERVED: [&str; 6] = [
    "__ow_method",
    "__ow_headers",
    "__ow_path",
    "__ow_user",
    "__ow_query",
    "__ow_body",
];

/// The response field naming the status code of an `.http` result [WebActions.scala:69].
const STATUS_CODE: &str = "statusCode";

/// How a web action's result becomes a response: the known extensions, in the order
/// they are tried [WebActions.scala:146-156].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// `.http`, the default: the result describes the HTTP response.
    Http,
    /// `.json`: the result (object or array) pretty-printed.
    Json,
    /// `.html`: the result's `body` or `html` string.
    Html,
    /// `.svg`: the result's `body` or `svg` string.
    Svg,
    /// `.text`: the result's `body` or `text`, any JSON value.
    Text,
}

impl Extension {
    const ALL: [Extension; 5] = [
        Extension::Http,
        Extension::Json,
        Extension::Html,
        Extension::Svg,
        Extension::Text,
    ];

    /// The suffix, with its dot: `.http`, `.json`, `.html`, `.svg`, `.text`.
    pub fn as_str(self) -> &'static str {
        match self {
            Extension::Http => ".http",
            Extension::Json => ".json",
            Extension::Html => ".html",
            Extension::Svg => ".svg",
            Extension::Text => ".text",
        }
    }
}

/// `mediaTranscoderForName` [WebActions.scala:165-175]: the first known extension the
/// whole segment ends with (case-sensitive) is stripped; a segment without one is the
/// action name as it stands, transcoded as `.http` (enforcement is off,
/// WebActions.scala:66). Dots elsewhere are part of the name: `t.wxyz.json` →
/// (`t.wxyz`, `.json`), `t.wxyz` → (`t.wxyz`, `.http`) [WebActionsApiTests.scala:76-99].
pub fn split_extension(segment: &str) -> (&str, Extension) {
    for ext in Extension::ALL {
        if let Some(base) = segment.strip_suffix(ext.as_str()) {
            return (base, ext);
        }
    }
    (segment, Extension::Http)
}

/// The request as the web route sees it.
#[derive(Debug, Clone, Copy)]
pub struct WebRequest<'a> {
    /// The request method.
    pub method: &'a http::Method,
    /// The request headers as received. `content-length` and `transfer-encoding` never
    /// reach `__ow_headers`; a `transfer-encoding` header marks the body as chunked,
    /// which Pekko turns into a (typed) entity even when it is empty.
    pub headers: &'a http::HeaderMap,
    /// The rest of the path after the action segment, as received (`""`, `"/"`,
    /// `"/a/b"`); it becomes `__ow_path` re-encoded as Pekko renders paths.
    pub path: &'a str,
    /// The raw query string without `?`.
    pub query: Option<&'a str>,
    /// The request body.
    pub body: &'a [u8],
    /// The caller's namespace when the request carried valid credentials (`__ow_user`).
    pub user: Option<&'a str>,
}

/// Why a request cannot become an action's arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgumentError {
    /// 400 [`messages::PARAMS_NOT_ALLOWED`]: the query or a JSON/form object body names
    /// a reserved `__ow_*` or an immutable (final) parameter [WebActions.scala:94-104,
    /// 649-655]. OpenWhisk answers it pretty-printed like its other web errors, without
    /// invoking the action.
    NotAllowed,
    /// 400: the body could not be read; the complete text Pekko's rejection handler
    /// answers, which the controller wraps as compact `{"code","error"}` JSON
    /// [OW BasicHttpService.scala:192-199]. A JSON body that does not parse gives
    /// `The request content was malformed:\n<spray-json message>` (Pekko
    /// `RejectionHandler.scala:202-207`); a form body outside the query grammar gives
    /// the form unmarshaller's message alone (`ValidationRejection`,
    /// `RejectionHandler.scala:311`).
    Malformed(String),
}

/// The request's entity as Pekko builds it: `None` is `HttpEntity.Empty` (no body, no
/// valid `Content-Type`, not chunked) [HttpRequestParser.scala:222-240;
/// HttpMessageParser.scala:391-401].
fn entity<'a>(req: &WebRequest<'a>) -> Option<(ContentType, &'a [u8])> {
    let declared = req
        .headers
        .get_all(CONTENT_TYPE)
        .iter()
        .find_map(|v| media::parse_content_type(&String::from_utf8_lossy(v.as_bytes())));
    let chunked = req.headers.contains_key(TRANSFER_ENCODING);
    if req.body.is_empty() && declared.is_none() && !chunked {
        return None;
    }
    let ct = declared.unwrap_or(ContentType {
        media: MediaType::octet_stream(),
        charset: None,
    });
    Some((ct, req.body))
}

/// `Context.metadata` [WebActions.scala:109-120]: `__ow_method`, `__ow_headers`,
/// `__ow_path` and, with credentials, `__ow_user`.
fn metadata(req: &WebRequest<'_>, entity: Option<&ContentType>) -> Map<String, Value> {
    // ctx.request.headers ++ contentTypeFromEntity, then .toMap (last wins)
    // [WebActions.scala:422-433, 112-117]. Pekko's parser keeps Content-Length,
    // Transfer-Encoding and a valid Content-Type out of the list
    // [HttpMessageParser.scala:172-201]; an invalid Content-Type stays a raw header.
    let mut headers = Map::new();
    for (name, value) in req.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        let skip = match name.as_str() {
            "content-length" | "transfer-encoding" => true,
            // the synthetic header Pekko adds, filtered by name [WebActions.scala:114]
            "timeout-access" => true,
            // removed before routing [OW BasicHttpService.scala:80]
            "x-ow-extra-logging" => true,
            "content-type" => media::parse_content_type(&value).is_some(),
            _ => false,
        };
        if !skip {
            headers.insert(name.as_str().to_string(), Value::String(value.into_owned()));
        }
    }
    if let Some(ct) = entity {
        headers.insert("content-type".to_string(), Value::String(ct.render()));
    }
    let mut m = Map::new();
    m.insert(
        RESERVED[0].to_string(),
        Value::String(req.method.as_str().to_lowercase()),
    );
    m.insert(RESERVED[1].to_string(), Value::Object(headers));
    m.insert(
        RESERVED[2].to_string(),
        Value::String(uri::normalize_path(req.path)),
    );
    if let Some(user) = req.user {
        m.insert(RESERVED[3].to_string(), Value::String(user.to_string()));
    }
    m
}

/// Builds the action's payload, before the controller merges the action's parameters
/// under it [WebActions.scala:587-656, 122-141]:
///
/// * metadata: `__ow_method` (lower case), `__ow_headers` (lower-case names → values,
///   last duplicate wins; `content-type` as Pekko renders the entity's content type,
///   present only when there is an entity), `__ow_path`, `__ow_user` when `Some`;
/// * not raw: the query's parameters, each a JSON string (`+` and `%XX` decoded, last
///   duplicate wins, `?a` → `"a": ""`), then the body (design note §3.4): a JSON-family
///   body is parsed, an object's members merged and any other value becomes
///   `__ow_body`; an empty one adds nothing; a form's fields are merged as strings;
///   anything else is `__ow_body`: base64 for binary media types and exactly
///   `application/json`, else the bytes as UTF-8 text;
/// * raw (`raw-http: true`): `__ow_query` (the query re-rendered, `""` when none) and
///   `__ow_body` (base64 or text as above, `""` without an entity); nothing is merged
///   and nothing is checked.
///
/// Keys merge as `metadata ++ query ++ body`: the body wins over the query. Not raw, a
/// query key or a top-level key of an object body that is in [`RESERVED`] or for which
/// `immutable` answers true is [`ArgumentError::NotAllowed`]; non-object bodies are not
/// inspected. The body is read first, so a malformed body wins over a forbidden key.
///
/// OpenWhisk's action receives the members sorted (the invoker re-parses them into
/// spray-json `TreeMap`s); [`compact`] prints a payload that way.
///
/// Header values are passed as received; Pekko re-renders the headers it models
/// (e.g. `Accept: a,b` becomes `a, b`), which is not reproduced.
pub fn build_arguments(
    req: &WebRequest<'_>,
    raw: bool,
    immutable: &dyn Fn(&str) -> bool,
) -> Result<Map<String, Value>, ArgumentError> {
    let entity = entity(req);
    let body: Option<Value> = match &entity {
        None => None,
        Some((ct, data)) if ct.media.is_json_family() && !raw => {
            if data.is_empty() {
                None
            } else {
                let v = json::parse(data)
                    .map_err(|m| ArgumentError::Malformed(messages::malformed_content(&m)))?;
                Some(v)
            }
        }
        Some((ct, data)) if ct.media.is_form() && !raw => {
            // Pekko decodes the form as UTF-8 whatever the charset parameter says
            // (the type has a fixed charset) and parses it as a relaxed query.
            let fields = uri::form_pairs(&String::from_utf8_lossy(data))
                .map_err(ArgumentError::Malformed)?;
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert(k, Value::String(v));
            }
            Some(Value::Object(m))
        }
        Some((ct, data)) => {
            // "for legacy, we are encoding application/json still" [WebActions.scala:614-624]
            if ct.media.kind == Kind::Binary || ct.media.is_application_json() {
                use base64::Engine as _;
                Some(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(data),
                ))
            } else {
                Some(Value::String(String::from_utf8_lossy(data).into_owned()))
            }
        }
    };
    let pairs = uri::query_pairs(req.query.unwrap_or(""));
    if !raw {
        let forbidden = |k: &str| RESERVED.contains(&k) || immutable(k);
        let in_body = match &body {
            Some(Value::Object(m)) => m.keys().any(|k| forbidden(k)),
            _ => false,
        };
        if in_body || pairs.iter().any(|(k, _)| forbidden(k)) {
            return Err(ArgumentError::NotAllowed);
        }
    }
    let mut args = metadata(req, entity.as_ref().map(|(ct, _)| ct));
    if raw {
        args.insert(
            RESERVED[4].to_string(),
            Value::String(uri::render_query(&pairs)),
        );
    } else {
        for (k, v) in pairs {
            args.insert(k, Value::String(v.unwrap_or_default()));
        }
    }
    match body {
        Some(Value::Object(fields)) if !raw => args.extend(fields),
        Some(v) => {
            args.insert(RESERVED[5].to_string(), v);
        }
        None if !raw => {}
        None => {
            args.insert(RESERVED[5].to_string(), Value::String(String::new()));
        }
    }
    Ok(args)
}

/// A web response ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct WebAnswer {
    /// The status code.
    pub status: u16,
    /// The action's `headers` (`.http` only), in OpenWhisk's order (names sorted by
    /// UTF-16 code units, array elements in order, one header each), without
    /// `content-type` and without the headers Pekko refuses to render from raw headers
    /// (`content-length`, `transfer-encoding`, `date`, `server`, `connection`, and any
    /// whose rendered bytes hold CR or LF) [WebActions.scala:371-372;
    /// HttpResponseRendererFactory.scala:208-211; Rendering.scala:214-221]. Headers
    /// the `http` crate cannot represent are left out as well.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The entity's content type (`text/html; charset=UTF-8`, `application/json`,
    /// `image/png`, …); `None` for the empty entity of an `.http` result without body.
    pub content_type: Option<HeaderValue>,
    /// The entity's bytes.
    pub body: Vec<u8>,
}

/// A web error: the status and OpenWhisk's exact text. OpenWhisk answers it as
/// [`error_body`] (pretty-printed `{"code", "error"}`), with the activation id header.
#[derive(Debug, Clone, PartialEq)]
pub struct WebError {
    /// The status code.
    pub status: u16,
    /// The `error` text.
    pub message: &'static str,
}

impl WebError {
    /// True for the one error OpenWhisk does not answer as JSON: a successful result
    /// that is not a JSON object makes `activation.resultAsJson` throw before any
    /// transcoder runs [WebActions.scala:666; WhiskActivation.scala:98], and Pekko's
    /// default exception handler answers 500 with the bare text
    /// [`messages::INTERNAL_SERVER_ERROR`] as `text/plain; charset=UTF-8`, without the
    /// activation id header (design note §4.1).
    pub fn is_unhandled(&self) -> bool {
        self.status == 500
    }
}

/// Which result the activation produced [WebActions.scala:661-690].
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// A successful activation's whole result. A result with a top-level `error` is an
    /// application error in OpenWhisk (the invoker decides, ActivationResult.scala:207-217).
    Success(&'a Value),
    /// An application error: the value of the result's `error` field.
    ApplicationError(&'a Value),
    /// A developer or whisk error (crash, timeout, bad output, system failure).
    DeveloperOrWhiskError,
}

/// Transcodes an activation's outcome for `ext` [WebActions.scala:661-690, 188-372]:
///
/// * developer or whisk error → 400 [`messages::ERROR_PROCESSING_REQUEST`];
/// * success: the whole result, which must be a JSON object (see
///   [`WebError::is_unhandled`]); application error: the `error` value;
/// * `.json`: object or array → 200 `application/json`, pretty; else 400;
/// * `.html` / `.svg`: an object's `body`, else `html`/`svg`; any other value itself;
///   must be a string → 200 `text/html; charset=UTF-8` / `image/svg+xml`; else 400;
/// * `.text`: an object's `body`, else `text` (neither → 404
///   [`messages::PROPERTY_NOT_FOUND`]); any other value itself; 200
///   `text/plain; charset=UTF-8` with objects and arrays pretty, strings as they are,
///   numbers as Java prints them, `null` as `null`;
/// * `.http`: `{statusCode, headers, body}` (design note §4.6).
pub fn transcode(ext: Extension, outcome: Outcome<'_>) -> Result<WebAnswer, WebError> {
    let projection = match outcome {
        Outcome::Success(v) if v.is_object() => v,
        Outcome::Success(_) => {
            return Err(WebError {
                status: 500,
                message: messages::INTERNAL_SERVER_ERROR,
            });
        }
        Outcome::ApplicationError(v) => v,
        Outcome::DeveloperOrWhiskError => {
            return Err(WebError {
                status: 400,
                message: messages::ERROR_PROCESSING_REQUEST,
            });
        }
    };
    match ext {
        Extension::Http => as_http(projection),
        Extension::Json => as_json(projection),
        Extension::Html => as_markup(
            projection,
            "html",
            TEXT_HTML_UTF8,
            messages::INVALID_MEDIA_HTML,
        ),
        Extension::Svg => as_markup(
            projection,
            "svg",
            "image/svg+xml",
            messages::INVALID_MEDIA_SVG,
        ),
        Extension::Text => as_text(projection),
    }
}

const TEXT_HTML_UTF8: &str = "text/html; charset=UTF-8";
const TEXT_PLAIN_UTF8: &str = "text/plain; charset=UTF-8";
const APPLICATION_JSON: &str = "application/json";

fn bad(status: u16, message: &'static str) -> WebError {
    WebError { status, message }
}

fn ok(content_type: &str, body: Vec<u8>) -> WebAnswer {
    WebAnswer {
        status: 200,
        headers: Vec::new(),
        content_type: Some(HeaderValue::from_str(content_type).expect("ASCII content type")),
        body,
    }
}

/// `resultAsJson` [WebActions.scala:229-235].
fn as_json(result: &Value) -> Result<WebAnswer, WebError> {
    match result {
        Value::Object(_) | Value::Array(_) => Ok(ok(APPLICATION_JSON, pretty(result).into_bytes())),
        _ => Err(bad(400, messages::INVALID_MEDIA_JSON)),
    }
}

/// `resultAsHtml` / `resultAsSvg` [WebActions.scala:188-210]. A present `body` that is
/// not a string does not fall back to `html`/`svg`.
fn as_markup(
    result: &Value,
    field: &str,
    content_type: &str,
    invalid: &'static str,
) -> Result<WebAnswer, WebError> {
    let projected = match result {
        Value::Object(f) => f
            .get("body")
            .or_else(|| f.get(field))
            .unwrap_or(&Value::Null),
        other => other,
    };
    match projected {
        Value::String(s) => Ok(ok(content_type, s.clone().into_bytes())),
        _ => Err(bad(400, invalid)),
    }
}

/// `resultAsText` [WebActions.scala:212-227].
fn as_text(result: &Value) -> Result<WebAnswer, WebError> {
    let projected = match result {
        Value::Object(f) => f.get("body").or_else(|| f.get("text")),
        other => Some(other),
    };
    let text = match projected {
        Some(v @ (Value::Object(_) | Value::Array(_))) => pretty(v),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => pretty::number_text(n),
        Some(Value::Null) => "null".to_string(),
        None => return Err(bad(404, messages::PROPERTY_NOT_FOUND)),
    };
    Ok(ok(TEXT_PLAIN_UTF8, text.into_bytes()))
}

/// `headersFromJson` [WebActions.scala:285-291]: strings, booleans and numbers are one
/// header each, arrays one per element (recursively); objects and `null` are invalid.
fn headers_from_json(name: &str, v: &Value, out: &mut Vec<(String, String)>) -> Option<()> {
    match v {
        Value::String(s) => out.push((name.to_string(), s.clone())),
        Value::Bool(b) => out.push((name.to_string(), b.to_string())),
        Value::Number(n) => out.push((name.to_string(), pretty::number_text(n))),
        Value::Array(items) => {
            for item in items {
                headers_from_json(name, item, out)?;
            }
        }
        Value::Null | Value::Object(_) => return None,
    }
    Some(())
}

/// The zeros of the BMP's decimal digit runs (`Character.getType == DECIMAL_DIGIT_NUMBER`),
/// the characters `Character.digit(c, 10)` reads; the same in JDK 17, 21 and 25.
const JAVA_DIGIT_ZEROS: [u32; 37] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10,
];

/// `Integer.parseInt(s)` (what Scala's `c.toInt` calls, WebActions.scala:257): an
/// optional ASCII sign, then at least one decimal digit of any script (a supplementary
/// character is two Java chars, neither a digit), within `Int` range.
fn java_parse_int(s: &str) -> Option<i32> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for c in digits.chars() {
        let c = c as u32;
        let d = JAVA_DIGIT_ZEROS
            .iter()
            .find_map(|&zero| c.checked_sub(zero).filter(|d| *d < 10))?;
        value = value * 10 + i64::from(d);
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    i32::try_from(if negative { -value } else { value }).ok()
}

/// `resultAsHttp` [WebActions.scala:237-275]: anything wrong with the result, its
/// headers or its status code is 400 `Response is not valid 'message/http'.`
fn as_http(result: &Value) -> Result<WebAnswer, WebError> {
    let invalid = || bad(400, messages::INVALID_MEDIA_HTTP);
    let Value::Object(fields) = result else {
        return Err(invalid());
    };
    let mut headers = Vec::new();
    match fields.get("headers") {
        None => {}
        Some(Value::Object(hs)) => {
            for (k, v) in pretty::sorted_members(hs) {
                headers_from_json(k, v, &mut headers).ok_or_else(invalid)?;
            }
        }
        Some(_) => return Err(invalid()),
    }
    let code = match fields.get(STATUS_CODE) {
        None => None,
        Some(Value::Number(n)) => Some(pretty::java_int_exact(&n.to_string()).ok_or_else(invalid)?),
        Some(Value::String(s)) => Some(java_parse_int(s).ok_or_else(invalid)?),
        Some(_) => return Err(invalid()),
    };
    // StatusCodes.getForKey(c).getOrElse(StatusCodes.custom(c, "")): every registered
    // code is in 100..=599 and custom codes outside it throw [StatusCode.scala:97-104]
    let code = match code {
        Some(c) => Some(
            u16::try_from(c)
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(invalid)?,
        ),
        None => None,
    };
    let answer = match fields.get("body") {
        Some(Value::String(s)) if !s.is_empty() => {
            interpret_string(code.unwrap_or(200), &headers, s)?
        }
        Some(Value::String(_)) | Some(Value::Null) | None => WebAnswer {
            status: code.unwrap_or(204),
            headers: response_headers(&headers),
            content_type: None,
            body: Vec::new(),
        },
        Some(js) => interpret_json(code.unwrap_or(200), &headers, js)?,
    };
    // Pekko refuses to build a response whose status allows no entity (every 1xx,
    // 204, 205, 304: `allowsEntity = false`, StatusCode.scala) with a non-empty one,
    // and its default exception handler answers the bare 500 [HttpMessage.scala
    // `HttpResponse` require].
    if !answer.body.is_empty() && !allows_entity(answer.status) {
        return Err(WebError {
            status: 500,
            message: messages::INTERNAL_SERVER_ERROR,
        });
    }
    Ok(answer)
}

/// Whether Pekko lets a response of status `code` carry an entity.
fn allows_entity(code: u16) -> bool {
    !(100..=199).contains(&code) && !matches!(code, 204 | 205 | 304)
}

/// `findContentTypeInHeader` [WebActions.scala:298-309]: the first `content-type` (any
/// case), parsed; `Err` when it does not parse.
fn declared_media_type(headers: &[(String, String)], default: MediaType) -> Result<MediaType, ()> {
    match headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        Some((_, v)) => media::parse_content_type(v).map(|ct| ct.media).ok_or(()),
        None => Ok(default),
    }
}

/// `interpretHttpResponse` [WebActions.scala:343-369]: a non-empty string body.
fn interpret_string(
    code: u16,
    headers: &[(String, String)],
    s: &str,
) -> Result<WebAnswer, WebError> {
    let media = declared_media_type(headers, MediaType::text_html())
        .map_err(|()| bad(400, messages::HTTP_UNKNOWN_CONTENT_TYPE))?;
    let mismatch = || bad(400, messages::HTTP_CONTENT_TYPE_ERROR);
    let body = match media.kind {
        // legacy: base64-looking JSON-family text is decoded (untrimmed)
        Kind::Fixed | Kind::Open if media.is_json_family() && codec::is_binary_code(s) => {
            codec::java_base64_decode(s).ok_or_else(mismatch)?
        }
        Kind::Fixed | Kind::Open => s.as_bytes().to_vec(),
        Kind::Binary => codec::java_base64_decode(s).ok_or_else(mismatch)?,
    };
    Ok(WebAnswer {
        status: code,
        headers: response_headers(headers),
        content_type: content_type_value(&ContentType::render_with_utf8(&media)),
        body,
    })
}

/// `interpretHttpResponseAsJson` [WebActions.scala:315-341]: an object, array, number
/// or boolean body, pretty-printed for `application/json` and other JSON-family types
/// (the latter as `main/sub` with a fixed charset, parameters dropped); any other
/// declared type, or one that does not parse, is a mismatch.
fn interpret_json(
    code: u16,
    headers: &[(String, String)],
    js: &Value,
) -> Result<WebAnswer, WebError> {
    let mismatch = || bad(400, messages::HTTP_CONTENT_TYPE_ERROR);
    let media =
        declared_media_type(headers, MediaType::application_json()).map_err(|()| mismatch())?;
    let content_type = if media.is_application_json() {
        APPLICATION_JSON.to_string()
    } else if media.is_json_family() {
        format!("{}/{}", media.main, media.sub)
    } else {
        return Err(mismatch());
    };
    Ok(WebAnswer {
        status: code,
        headers: response_headers(headers),
        content_type: content_type_value(&content_type),
        body: pretty(js).into_bytes(),
    })
}

fn content_type_value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_bytes(&java_bytes(s)).ok()
}

/// A Java string as Pekko's `ByteArrayRendering` writes it: the low byte of each UTF-16
/// unit [Rendering.scala:327-331].
fn java_bytes(s: &str) -> Vec<u8> {
    s.encode_utf16().map(|u| u as u8).collect()
}

/// The action's headers as the client receives them (see [`WebAnswer::headers`]).
fn response_headers(headers: &[(String, String)]) -> Vec<(HeaderName, HeaderValue)> {
    const SUPPRESSED: [&str; 6] = [
        "content-type",
        "content-length",
        "transfer-encoding",
        "date",
        "server",
        "connection",
    ];
    headers
        .iter()
        .filter(|(k, _)| !SUPPRESSED.iter().any(|s| k.eq_ignore_ascii_case(s)))
        .filter_map(|(k, v)| {
            let (name, value) = (java_bytes(k), java_bytes(v));
            if name.iter().chain(&value).any(|&b| b == b'\r' || b == b'\n') {
                return None;
            }
            Some((
                HeaderName::from_bytes(&name).ok()?,
                HeaderValue::from_bytes(&value).ok()?,
            ))
        })
        .collect()
}

/// Binary-ness of a media type (`main/sub`, any case) as Pekko's registry decides it
/// (design note §3.4): `multipart/*` and registered binary types (`image/*` including
/// `image/svg+xml`, `audio/*`, `video/*`, `font/*`, `message/*`,
/// `application/octet-stream`, `application/pdf`, …) are binary; registered text types
/// (`text/*`, `application/json`, the registered `+json` and `+xml` types,
/// `application/x-www-form-urlencoded`, `application/javascript`, …) are not; an
/// unregistered type is binary unless its `Content-Type` carried a `charset`
/// parameter [Pekko CommonActions.scala:55-62].
pub fn is_binary_media_type(media_type: &str, has_charset_param: bool) -> bool {
    media::is_binary(media_type, has_charset_param)
}

/// The `Access-Control-Allow-Headers` value echoing a request's
/// `Access-Control-Request-Headers` (WA:416-419 `h.value`): Pekko parses that header
/// into its token list and renders it back joined by `", "`, so
/// `content-type,x-a` is answered `content-type, x-a`. A value that is not a token
/// list stays a raw header, echoed as sent.
pub fn allow_headers_echo(requested: &str) -> std::borrow::Cow<'_, str> {
    let is_wsp = |c: char| c == ' ' || c == '\t';
    let tokens: Vec<&str> = requested
        .trim_matches(is_wsp)
        .split(',')
        .map(|t| t.trim_matches(is_wsp))
        .collect();
    if tokens
        .iter()
        .any(|t| t.is_empty() || !t.chars().all(media::is_tchar))
    {
        return std::borrow::Cow::Borrowed(requested);
    }
    std::borrow::Cow::Owned(tokens.join(", "))
}

/// OpenWhisk's web error body: `{"error": message, "code": tid}` pretty-printed
/// [WebActions.scala:49; OW ErrorResponse.scala:277-306], members in spray-json's
/// order, so `code` first:
///
/// ```text
/// {
///   "code": "<tid>",
///   "error": "<message>"
/// }
/// ```
pub fn error_body(message: &str, code: &str) -> String {
    let mut m = Map::new();
    m.insert("error".to_string(), Value::String(message.to_string()));
    m.insert("code".to_string(), Value::String(code.to_string()));
    pretty(&Value::Object(m))
}

#[cfg(test)]
mod tests;
