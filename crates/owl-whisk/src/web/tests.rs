//! One test per applicable row of the design note's §9 table (`WebActionsApiTests.scala`
//! line cited), then the printers, the parsers and the media registry.

use super::*;
use base64::Engine as _;
use http::{HeaderMap, Method};
use serde_json::json;

const ALL_METHODS: [Method; 7] = [
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::GET,
    Method::OPTIONS,
    Method::HEAD,
];

/// WebActionsApiTests.scala:200-204.
const PNG_SAMPLE: &str = "iVBORw0KGgoAAAANSUhEUgAAAAoAAAAGCAYAAAD68A/GAAAA/klEQVQYGWNgAAEHBxaG//+ZQMyyn581Pfas+cRQnf1LfF\
Ljf+62smUgcUbt0FA2Zh7drf/ffMy9vLn3RurrW9e5hCU11i2azfD4zu1/DHz8TAy/foUxsXBrFzHzC7r8+M9S1vn1qxQT07dDjL\
9fdemrqKxlYGT6z8AIMo6hgeUfA0PUvy9fGFh5GWK3z7vNxSWt++jX99+8SoyiGQwsW38w8PJEM7x5v5SJ8f+/xv8MDAzffv9hev\
fkWjiXBGMpMx+j2awovjcMjFztDO8+7GF49LkbZDCDeXLTWnZO7qDfn1/+5jbw/8pjYWS4wZLztXnuEuYTk2M+MzIw/AcA36Vewa\
D6fzsAAAAASUVORK5CYII=";

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

struct Req {
    method: Method,
    headers: HeaderMap,
    path: String,
    query: Option<String>,
    body: Vec<u8>,
    user: Option<String>,
}

impl Req {
    fn new(method: Method) -> Self {
        Req {
            method,
            headers: HeaderMap::new(),
            path: String::new(),
            query: None,
            body: Vec::new(),
            user: None,
        }
    }
    fn query(mut self, q: &str) -> Self {
        self.query = Some(q.to_string());
        self
    }
    fn path(mut self, p: &str) -> Self {
        self.path = p.to_string();
        self
    }
    fn user(mut self, u: Option<&str>) -> Self {
        self.user = u.map(str::to_string);
        self
    }
    fn body(mut self, content_type: &str, body: &[u8]) -> Self {
        self.headers = header_map(&[("content-type", content_type)]);
        self.body = body.to_vec();
        self
    }
    fn json(self, v: &Value) -> Self {
        // Pekko's test kit marshals a JsObject compactly (spray's member order).
        let text = compact(v);
        self.body("application/json", text.as_bytes())
    }
    fn build(
        &self,
        raw: bool,
        immutable: &dyn Fn(&str) -> bool,
    ) -> Result<Map<String, Value>, ArgumentError> {
        let req = WebRequest {
            method: &self.method,
            headers: &self.headers,
            path: &self.path,
            query: self.query.as_deref(),
            body: &self.body,
            user: self.user.as_deref(),
        };
        build_arguments(&req, raw, immutable)
    }
}

fn nothing_final(_: &str) -> bool {
    false
}

/// The fixture action's immutable parameters: `final: true` with package parameters
/// `x`, `z` and action parameters `y`, `z`, `empty: null` [WebActionsApiTests.scala:206-261];
/// null-valued parameters stay overridable.
fn fixture_final(k: &str) -> bool {
    matches!(k, "x" | "y" | "z")
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// `metaPayload` [WebActionsApiTests.scala:333-355] without the action parameters the
/// controller merges afterwards: the metadata plus `extra`.
fn meta(
    method: &Method,
    user: Option<&str>,
    path: &str,
    headers: Value,
    extra: Value,
) -> Map<String, Value> {
    let mut m = obj(json!({
        "__ow_method": method.as_str().to_lowercase(),
        "__ow_headers": headers,
        "__ow_path": path,
    }));
    if let Some(u) = user {
        m.insert("__ow_user".into(), json!(u));
    }
    m.extend(obj(extra));
    m
}

const CREDS: [Option<&str>; 2] = [None, Some("caller-ns")];

fn answer(status: u16, content_type: Option<&str>, body: &[u8]) -> WebAnswer {
    WebAnswer {
        status,
        headers: Vec::new(),
        content_type: content_type.map(|c| HeaderValue::from_str(c).unwrap()),
        body: body.to_vec(),
    }
}

fn http(result: Value) -> Result<WebAnswer, WebError> {
    transcode(Extension::Http, Outcome::Success(&result))
}

fn err(status: u16, message: &'static str) -> Result<WebAnswer, WebError> {
    Err(WebError { status, message })
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

// ---------------------------------------------------------------- §9 rows

/// WebActionsApiTests.scala:76-99.
#[test]
fn extension_splitter_splits_name_and_extension() {
    for ext in [".http", ".json", ".text", ".html", ".svg"] {
        for s in ["t", "tt", "t.wxyz", "tt.wxyz"] {
            let segment = format!("{s}{ext}");
            let (name, e) = split_extension(&segment);
            assert_eq!(name, s);
            assert_eq!(e.as_str(), ext);
        }
    }
    for s in ["t", "tt", "abcde", "abcdef", "t.wxyz"] {
        assert_eq!(split_extension(s), (s, Extension::Http));
    }
    // case-sensitive: `.JSON` is part of the name
    assert_eq!(split_extension("a.JSON"), ("a.JSON", Extension::Http));
    assert_eq!(split_extension("a.json.json"), ("a.json", Extension::Json));
}

/// WebActionsApiTests.scala:107-119.
#[test]
fn properties_match_version() {
    assert_eq!(
        RESERVED,
        [
            "__ow_method",
            "__ow_headers",
            "__ow_path",
            "__ow_user",
            "__ow_query",
            "__ow_body"
        ]
    );
    assert_eq!(STATUS_CODE, "statusCode");
}

/// WebActionsApiTests.scala:524-537: the 202 body, pretty-printed `{code, error}`.
#[test]
fn response_not_ready_body() {
    assert_eq!(
        error_body(messages::RESPONSE_NOT_READY, "abc"),
        "{\n  \"code\": \"abc\",\n  \"error\": \"Response not yet ready.\"\n}"
    );
}

/// WebActionsApiTests.scala:554-575.
#[test]
fn invoke_action_and_merge_query_parameters() {
    for user in CREDS {
        for m in ALL_METHODS {
            let args = Req::new(m.clone())
                .query("a=b&c=d")
                .user(user)
                .build(false, &fixture_final);
            assert_eq!(
                args,
                Ok(meta(&m, user, "", json!({}), json!({"a": "b", "c": "d"})))
            );
        }
    }
}

/// WebActionsApiTests.scala:577-603 (trailing slash → `__ow_path` "/", content-type in
/// `__ow_headers`).
#[test]
fn invoke_action_and_merge_body_parameters() {
    let content = json!({"extra": "read all about it", "yummy": true});
    for user in CREDS {
        for path in ["", "/"] {
            for m in &ALL_METHODS[..6] {
                let args = Req::new(m.clone())
                    .path(path)
                    .user(user)
                    .json(&content)
                    .build(false, &fixture_final);
                let headers = json!({"content-type": "application/json"});
                assert_eq!(args, Ok(meta(m, user, path, headers, content.clone())));
            }
        }
    }
}

/// WebActionsApiTests.scala:605-628: `""` and `{}` add nothing, `[]` and `null` are
/// `__ow_body` values.
#[test]
fn invoke_action_which_receives_an_empty_entity() {
    for (arg, extra) in [
        ("", json!({})),
        ("[]", json!({"__ow_body": []})),
        ("{}", json!({})),
        ("null", json!({"__ow_body": null})),
    ] {
        let args = Req::new(Method::POST)
            .body("application/json", arg.as_bytes())
            .build(false, &fixture_final);
        let headers = json!({"content-type": "application/json"});
        assert_eq!(
            args,
            Ok(meta(&Method::POST, None, "", headers, extra)),
            "{arg}"
        );
    }
}

/// WebActionsApiTests.scala:630-654; the body wins over the query [WebActions.scala:139-140].
#[test]
fn invoke_action_and_merge_query_and_body_parameters() {
    let content = json!({"extra": "read all about it", "yummy": true});
    let args = Req::new(Method::POST)
        .query("a=b&c=d")
        .json(&content)
        .build(false, &fixture_final);
    let headers = json!({"content-type": "application/json"});
    let expected = json!({"a": "b", "c": "d", "extra": "read all about it", "yummy": true});
    assert_eq!(
        args,
        Ok(meta(&Method::POST, None, "", headers.clone(), expected))
    );

    let args = Req::new(Method::POST)
        .query("extra=query")
        .json(&content)
        .build(false, &fixture_final);
    assert_eq!(args.unwrap()["extra"], json!("read all about it"));
}

/// WebActionsApiTests.scala:781-832 and 1631-1672: query or body naming a final
/// parameter is refused; the null-valued `empty` may be set.
#[test]
fn reject_request_that_tries_to_override_final_parameters() {
    for m in &ALL_METHODS[..6] {
        for req in [
            Req::new(m.clone()).query("x=overridden"),
            Req::new(m.clone()).query("y=overridden"),
            Req::new(m.clone()).json(&json!({"x": "overridden"})),
            Req::new(m.clone())
                .query("y=overridden")
                .json(&json!({"z": "overridden"})),
        ] {
            assert_eq!(
                req.build(false, &fixture_final),
                Err(ArgumentError::NotAllowed)
            );
        }
        let args = Req::new(m.clone())
            .query("empty=overridden")
            .build(false, &fixture_final);
        assert_eq!(
            args,
            Ok(meta(m, None, "", json!({}), json!({"empty": "overridden"})))
        );
    }
}

/// WebActionsApiTests.scala:877-896.
#[test]
fn pass_the_unmatched_segment_to_the_action() {
    for m in ALL_METHODS {
        let args = Req::new(m.clone())
            .path("/content")
            .build(false, &fixture_final);
        assert_eq!(args, Ok(meta(&m, None, "/content", json!({}), json!({}))));
    }
}

/// WebActionsApiTests.scala:898-913: 404 and a four-line pretty body.
#[test]
fn respond_with_error_when_expected_text_property_does_not_exist() {
    let result = json!({"pkg": "ns/proxy", "action": "export_c", "content": {}});
    let e = transcode(Extension::Text, Outcome::Success(&result));
    assert_eq!(e, err(404, messages::PROPERTY_NOT_FOUND));
    let body = error_body(e.unwrap_err().message, "tid");
    assert_eq!(body.lines().count(), 4);
    assert_eq!(
        body,
        "{\n  \"code\": \"tid\",\n  \"error\": \"Response does not include requested property.\"\n}"
    );
}

/// WebActionsApiTests.scala:915-932.
#[test]
fn use_action_status_code_and_headers_to_terminate_an_http_response() {
    let a =
        http(json!({"headers": {"location": "http://openwhisk.org"}, "statusCode": 302})).unwrap();
    assert_eq!(a.status, 302);
    assert_eq!(
        a.headers,
        vec![(
            HeaderName::from_static("location"),
            HeaderValue::from_static("http://openwhisk.org")
        )]
    );
    assert_eq!((a.content_type, a.body), (None, vec![]));
}

/// WebActionsApiTests.scala:934-947.
#[test]
fn use_non_standard_action_status_code() {
    assert_eq!(http(json!({"statusCode": 444})), Ok(answer(444, None, b"")));
}

/// WebActionsApiTests.scala:949-1031.
#[test]
fn use_default_field_projection_for_extension() {
    let a =
        http(json!({"headers": {"location": "http://openwhisk.org"}, "statusCode": 302})).unwrap();
    assert_eq!((a.status, a.headers.len()), (302, 1));

    let r = json!({"text": "default text"});
    assert_eq!(
        transcode(Extension::Text, Outcome::Success(&r)),
        Ok(answer(
            200,
            Some("text/plain; charset=UTF-8"),
            b"default text"
        ))
    );

    let r = json!({"foobar": "foobar"});
    assert_eq!(
        transcode(Extension::Json, Outcome::Success(&r)),
        Ok(answer(
            200,
            Some("application/json"),
            b"{\n  \"foobar\": \"foobar\"\n}"
        ))
    );

    let html = "<html>hi</htlml>";
    let r = json!({"html": html});
    assert_eq!(
        transcode(Extension::Html, Outcome::Success(&r)),
        Ok(answer(
            200,
            Some("text/html; charset=UTF-8"),
            html.as_bytes()
        ))
    );

    let svg = r#"<svg><circle cx="3" cy="3" r="3" fill="blue"/></svg>"#;
    let r = json!({"svg": svg});
    assert_eq!(
        transcode(Extension::Svg, Outcome::Success(&r)),
        Ok(answer(200, Some("image/svg+xml"), svg.as_bytes()))
    );
}

/// WebActionsApiTests.scala:1033-1066: 204, no entity, no header of the action's.
#[test]
fn handle_http_web_action_and_provide_defaults() {
    for r in [json!({}), json!({"body": ""}), json!({"body": null})] {
        assert_eq!(http(r), Ok(answer(204, None, b"")));
    }
}

/// WebActionsApiTests.scala:1068-1092.
#[test]
fn handle_all_json_values_with_text_extension() {
    for (v, text) in [
        (json!({"a": "A"}), "{\n  \"a\": \"A\"\n}"),
        (json!(["a"]), "[\"a\"]"),
        (json!("a"), "a"),
        (json!(true), "true"),
        (json!(1), "1"),
        (json!(null), "null"),
    ] {
        let r = json!({ "body": v });
        assert_eq!(
            transcode(Extension::Text, Outcome::Success(&r)),
            Ok(answer(
                200,
                Some("text/plain; charset=UTF-8"),
                text.as_bytes()
            ))
        );
    }
}

/// WebActionsApiTests.scala:1094-1115.
#[test]
fn handle_http_web_action_with_json_object_as_string_response() {
    for code in [200, 201] {
        let r = json!({
            "headers": {"content-type": "application/json"},
            "statusCode": code,
            "body": "{\"field\":\"value\"}",
        });
        assert_eq!(
            http(r),
            Ok(answer(
                code,
                Some("application/json"),
                b"{\"field\":\"value\"}"
            ))
        );
    }
}

/// WebActionsApiTests.scala:1117-1195 and 1197-1234 (an `Accept` header changes
/// nothing here).
#[test]
fn handle_http_web_action_with_partially_specified_result() {
    // omit status code
    let r = json!({"headers": {"content-type": "application/json"}, "body": {"field": "value"}});
    assert_eq!(
        http(r),
        Ok(answer(
            200,
            Some("application/json"),
            b"{\n  \"field\": \"value\"\n}"
        ))
    );
    // omit status code and headers
    let r = json!({"body": "{\"field\":\"value\"}"});
    assert_eq!(
        http(r),
        Ok(answer(
            200,
            Some("text/html; charset=UTF-8"),
            b"{\"field\":\"value\"}"
        ))
    );
    // omit headers only
    let r = json!({"statusCode": 201, "body": "{\"field\":\"value\"}"});
    assert_eq!(
        http(r),
        Ok(answer(
            201,
            Some("text/html; charset=UTF-8"),
            b"{\"field\":\"value\"}"
        ))
    );
    // omit body and headers
    for code in [200, 201, 204] {
        assert_eq!(
            http(json!({ "statusCode": code })),
            Ok(answer(code, None, b""))
        );
    }
    // omit body, include headers: content-type dropped, Set-Cookie kept
    for code in [200, 201, 204] {
        let r = json!({
            "headers": {"Set-Cookie": "a=b", "content-type": "application/json"},
            "statusCode": code,
        });
        let mut expected = answer(code, None, b"");
        expected.headers = vec![(
            HeaderName::from_static("set-cookie"),
            HeaderValue::from_static("a=b"),
        )];
        assert_eq!(http(r), Ok(expected));
    }
}

/// WebActionsApiTests.scala:1236-1266.
#[test]
fn handle_http_web_action_with_json_object_response() {
    for (headers, expected) in [
        (
            json!({"content-type": "application/json"}),
            Ok(answer(
                200,
                Some("application/json"),
                b"{\n  \"field\": \"value\"\n}",
            )),
        ),
        (
            json!({}),
            Ok(answer(
                200,
                Some("application/json"),
                b"{\n  \"field\": \"value\"\n}",
            )),
        ),
        (
            json!({"content-type": "text/html"}),
            err(400, messages::HTTP_CONTENT_TYPE_ERROR),
        ),
    ] {
        let r = json!({"headers": headers, "statusCode": 200, "body": {"field": "value"}});
        assert_eq!(http(r), expected);
    }
}

/// WebActionsApiTests.scala:1267-1288.
#[test]
fn handle_http_web_action_with_base64_encoded_known_plus_json_response() {
    let encoded = base64::engine::general_purpose::STANDARD.encode(b"{\"field\":\"value\"}");
    let r = json!({
        "headers": {"content-type": "application/json-patch+json"},
        "statusCode": 200,
        "body": encoded,
    });
    assert_eq!(
        http(r),
        Ok(answer(
            200,
            Some("application/json-patch+json"),
            b"{\"field\":\"value\"}"
        ))
    );
}

/// WebActionsApiTests.scala:1290-1319.
#[test]
fn handle_http_web_action_for_known_plus_json_response() {
    let r = json!({"headers": {"content-type": "application/json-patch+json"}, "statusCode": 200, "body": {"field": "value"}});
    assert_eq!(
        http(r),
        Ok(answer(
            200,
            Some("application/json-patch+json"),
            b"{\n  \"field\": \"value\"\n}"
        ))
    );
    let r = json!({"headers": {"content-type": "text/html"}, "statusCode": 200, "body": {"field": "value"}});
    assert_eq!(http(r), err(400, messages::HTTP_CONTENT_TYPE_ERROR));
}

/// WebActionsApiTests.scala:1321-1363.
#[test]
fn handle_http_web_action_for_unknown_plus_json_response() {
    let r = json!({"headers": {"content-type": "application/hal+json"}, "statusCode": 200, "body": {"field": "value"}});
    assert_eq!(
        http(r),
        Ok(answer(
            200,
            Some("application/hal+json"),
            b"{\n  \"field\": \"value\"\n}"
        ))
    );
    let r = json!({"headers": {"content-type": "text/html"}, "statusCode": 200, "body": {"field": "value"}});
    assert_eq!(http(r), err(400, messages::HTTP_CONTENT_TYPE_ERROR));
    assert_eq!(
        http(json!({"statusCode": 200, "body": 3})),
        Ok(answer(200, Some("application/json"), b"3"))
    );
}

/// WebActionsApiTests.scala:1365-1383.
#[test]
fn handle_http_web_action_with_base64_encoded_binary_response() {
    let r = json!({"headers": {"content-type": "image/png"}, "body": PNG_SAMPLE});
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG_SAMPLE)
        .unwrap();
    assert_eq!(http(r), Ok(answer(200, Some("image/png"), &png)));
}

/// WebActionsApiTests.scala:1385-1400.
#[test]
fn handle_http_web_action_with_html_text_response() {
    assert_eq!(
        http(json!({"statusCode": 200, "body": "hello world"})),
        Ok(answer(
            200,
            Some("text/html; charset=UTF-8"),
            b"hello world"
        ))
    );
}

/// WebActionsApiTests.scala:1402-1423: not base64, so sent as it is, typed
/// `application/json`, and no header of the action's.
#[test]
fn allow_web_action_with_incorrect_application_json_header_and_text_response() {
    let r = json!({"headers": {"content-type": "application/json"}, "statusCode": 200, "body": "hello world"});
    assert_eq!(
        http(r),
        Ok(answer(200, Some("application/json"), b"hello world"))
    );
}

/// WebActionsApiTests.scala:1425-1443.
#[test]
fn reject_http_web_action_with_invalid_content_type_header() {
    let r =
        json!({"headers": {"content-type": "xyzbar"}, "statusCode": 200, "body": "hello world"});
    assert_eq!(http(r), err(400, messages::HTTP_UNKNOWN_CONTENT_TYPE));
}

/// WebActionsApiTests.scala:1445-1463.
#[test]
fn handle_an_activation_that_results_in_application_error() {
    let e = json!({"statusCode": 200, "body": "no hello for you"});
    assert_eq!(
        transcode(Extension::Http, Outcome::ApplicationError(&e)),
        Ok(answer(
            200,
            Some("text/html; charset=UTF-8"),
            b"no hello for you"
        ))
    );
}

/// WebActionsApiTests.scala:1465-1479.
#[test]
fn application_error_that_does_not_match_json_extension() {
    let e = json!("bad response type");
    assert_eq!(
        transcode(Extension::Json, Outcome::ApplicationError(&e)),
        err(400, messages::INVALID_MEDIA_JSON)
    );
}

/// WebActionsApiTests.scala:1481-1502.
#[test]
fn handle_an_activation_that_results_in_developer_or_system_error() {
    for ext in [Extension::Json, Extension::Text] {
        assert_eq!(
            transcode(ext, Outcome::DeveloperOrWhiskError),
            err(400, messages::ERROR_PROCESSING_REQUEST)
        );
    }
}

/// WebActionsApiTests.scala:1504-1517.
#[test]
fn support_formdata() {
    let args = Req::new(Method::POST)
        .body(
            "application/x-www-form-urlencoded",
            b"field1=value1&field2=value2",
        )
        .build(false, &fixture_final);
    let headers = json!({"content-type": "application/x-www-form-urlencoded"});
    let extra = json!({"field1": "value1", "field2": "value2"});
    assert_eq!(args, Ok(meta(&Method::POST, None, "", headers, extra)));
}

/// WebActionsApiTests.scala:1587-1611: unknown extensions stay in the name (the lookup
/// then fails with 404).
#[test]
fn reject_unknown_extensions() {
    for s in ["export_c.xyz", "export_c.xyzz"] {
        assert_eq!(split_extension(s), (s, Extension::Http));
    }
}

/// WebActionsApiTests.scala:1613-1629.
#[test]
fn reject_request_that_tries_to_override_reserved_properties() {
    for m in &ALL_METHODS[..6] {
        for p in RESERVED {
            let q = Req::new(m.clone()).query(&format!("{p}=YYY"));
            assert_eq!(
                q.build(false, &nothing_final),
                Err(ArgumentError::NotAllowed)
            );
            let b = Req::new(m.clone()).json(&json!({ p: "YYY" }));
            assert_eq!(
                b.build(false, &nothing_final),
                Err(ArgumentError::NotAllowed)
            );
        }
    }
}

/// WebActionsApiTests.scala:1674-1720.
#[test]
fn inline_body_when_receiving_entity_that_is_not_a_jsobject() {
    let args = Req::new(Method::POST)
        .body("text/html; charset=UTF-8", b"1,2,3")
        .build(false, &fixture_final);
    let headers = json!({"content-type": "text/html; charset=UTF-8"});
    assert_eq!(
        args,
        Ok(meta(
            &Method::POST,
            None,
            "",
            headers,
            json!({"__ow_body": "1,2,3"})
        ))
    );

    let args = Req::new(Method::POST)
        .query("a=b&c=d")
        .build(false, &fixture_final);
    assert_eq!(
        args,
        Ok(meta(
            &Method::POST,
            None,
            "",
            json!({}),
            json!({"a": "b", "c": "d"})
        ))
    );

    let args = Req::new(Method::POST)
        .query("a=b&c=d")
        .json(&json!({}))
        .build(false, &fixture_final);
    let headers = json!({"content-type": "application/json"});
    assert_eq!(
        args,
        Ok(meta(
            &Method::POST,
            None,
            "",
            headers,
            json!({"a": "b", "c": "d"})
        ))
    );
}

/// WebActionsApiTests.scala:1782-1795.
#[test]
fn support_multiple_values_for_headers() {
    let a = http(json!({"headers": {"Set-Cookie": ["a=b", "c=d; Path = /"]}})).unwrap();
    assert_eq!(
        a.headers,
        vec![
            (
                HeaderName::from_static("set-cookie"),
                HeaderValue::from_static("a=b")
            ),
            (
                HeaderName::from_static("set-cookie"),
                HeaderValue::from_static("c=d; Path = /")
            ),
        ]
    );
}

/// WebActionsApiTests.scala:1822-1833: HEAD is invoked as `head` and its headers kept.
#[test]
fn invoke_action_with_head_verb() {
    let args = Req::new(Method::HEAD).build(false, &fixture_final).unwrap();
    assert_eq!(args["__ow_method"], json!("head"));
    let a = http(json!({"headers": {"location": "http://openwhisk.org"}})).unwrap();
    assert_eq!(a.status, 204);
    assert_eq!(a.headers[0].1, "http://openwhisk.org");
}

/// WebActionsApiTests.scala:1835-1856: `.html` is always `text/html; charset=UTF-8`.
#[test]
fn handle_html_web_action_with_text_xml_response() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?><note><from>test</from></note>"#;
    let r = json!({ "html": xml });
    assert_eq!(
        transcode(Extension::Html, Outcome::Success(&r)),
        Ok(answer(
            200,
            Some("text/html; charset=UTF-8"),
            xml.as_bytes()
        ))
    );
}

/// WebActionsApiTests.scala:1858-1893.
#[test]
fn raw_http_action_is_not_checked_for_overlapping_parameters() {
    let q = "x=overridden&key2=value2";
    let args = Req::new(Method::POST).query(q).build(true, &fixture_final);
    let extra = json!({"__ow_body": "", "__ow_query": q});
    assert_eq!(args, Ok(meta(&Method::POST, None, "", json!({}), extra)));

    let body = json!({"x": "overridden", "key2": "value2"});
    let args = Req::new(Method::POST)
        .json(&body)
        .build(true, &fixture_final);
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(b"{\"key2\":\"value2\",\"x\":\"overridden\"}");
    let headers = json!({"content-type": "application/json"});
    let extra = json!({"__ow_query": "", "__ow_body": encoded});
    assert_eq!(args, Ok(meta(&Method::POST, None, "", headers, extra)));
}

/// WebActionsApiTests.scala:1895-1922: any `application/json` text is base64.
#[test]
fn invoke_raw_action_ensuring_body_and_query_arguments_are_set_properly() {
    let q = "key1=value1&key2=value2";
    for s in [
        "1,2,3",
        "{\n  \"a\": \"A\",\n  \"b\": \"B\"\n}",
        "{\"a\":\"A\",\"b\":\"B\"}",
    ] {
        let args = Req::new(Method::POST)
            .query(q)
            .body("application/json", s.as_bytes())
            .build(true, &fixture_final);
        let encoded = base64::engine::general_purpose::STANDARD.encode(s);
        let headers = json!({"content-type": "application/json"});
        let extra = json!({"__ow_body": encoded, "__ow_query": q});
        assert_eq!(args, Ok(meta(&Method::POST, None, "", headers, extra)));
    }
}

/// WebActionsApiTests.scala:1924-1940.
#[test]
fn raw_body_and_query_arguments_are_empty_strings_when_not_specified() {
    let args = Req::new(Method::POST).build(true, &fixture_final);
    let extra = json!({"__ow_body": "", "__ow_query": ""});
    assert_eq!(args, Ok(meta(&Method::POST, None, "", json!({}), extra)));
}

/// WebActionsApiTests.scala:1990-2012.
#[test]
fn json_value_body_arguments_are_received_as_is() {
    for v in [
        json!("this is a string"),
        json!([1, "str str", false]),
        json!(true),
        json!(99),
    ] {
        let args = Req::new(Method::POST).json(&v).build(false, &fixture_final);
        let headers = json!({"content-type": "application/json"});
        assert_eq!(
            args,
            Ok(meta(
                &Method::POST,
                None,
                "",
                headers,
                json!({ "__ow_body": v })
            ))
        );
    }
}

/// WebActionsApiTests.scala:2014-2032.
#[test]
fn binary_body_is_base64_encoded() {
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG_SAMPLE)
        .unwrap();
    let args = Req::new(Method::POST)
        .body("image/png", &png)
        .build(false, &fixture_final);
    let headers = json!({"content-type": "image/png"});
    assert_eq!(
        args,
        Ok(meta(
            &Method::POST,
            None,
            "",
            headers,
            json!({ "__ow_body": PNG_SAMPLE })
        ))
    );
}

/// WebActionsApiTests.scala:2034-2052.
#[test]
fn allowed_string_based_status_code() {
    assert_eq!(
        http(json!({"statusCode": "200"})).map(|a| a.status),
        Ok(200)
    );
    assert_eq!(
        http(json!({"statusCode": "444"})).map(|a| a.status),
        Ok(444)
    );
    assert_eq!(
        http(json!({"statusCode": "xyz"})),
        err(400, messages::INVALID_MEDIA_HTTP)
    );
}

/// WebActionsApiTests.scala:2054-2069: `+json` bodies, registered or not, are parsed.
#[test]
fn support_json_including_plus_json_subtypes() {
    for ct in ["application/cloudevents+json", "application/json"] {
        let args = Req::new(Method::POST)
            .body(ct, b"{\"field1\":\"value1\"}")
            .build(false, &fixture_final);
        let headers = json!({ "content-type": ct });
        assert_eq!(
            args,
            Ok(meta(
                &Method::POST,
                None,
                "",
                headers,
                json!({"field1": "value1"})
            ))
        );
    }
}

// ---------------------------------------------------------------- arguments, beyond the table

/// `__ow_headers`: names lower case, last duplicate wins, Content-Length and
/// Transfer-Encoding never present [WebActions.scala:112-117; design note §3.1].
#[test]
fn ow_headers_are_the_request_headers() {
    let mut r = Req::new(Method::GET);
    r.headers = header_map(&[
        ("x-custom", "first"),
        ("x-custom", "second"),
        ("authorization", "Basic abc"),
        ("content-length", "0"),
        ("x-ow-extra-logging", "on"),
    ]);
    let args = r.build(false, &nothing_final).unwrap();
    assert_eq!(
        args["__ow_headers"],
        json!({"x-custom": "second", "authorization": "Basic abc"})
    );
}

/// The entity's content type as Pekko renders it (`ContentType.toString`): charsets
/// canonical, fixed-charset and binary types without one, parameters sorted and quoted.
#[test]
fn content_type_is_rendered_as_pekko_renders_it() {
    for (sent, rendered) in [
        ("text/plain;charset=utf-8", "text/plain; charset=UTF-8"),
        ("text/html; charset=latin1", "text/html; charset=ISO-8859-1"),
        ("application/json; charset=utf-8", "application/json"),
        ("image/png; charset=utf-8", "image/png"),
        ("TEXT/Plain", "text/plain"),
        (
            "application/foo+json; b=2; a=\"x y\"",
            "application/foo+json; a=\"x y\"; b=2",
        ),
        (
            "multipart/form-data; boundary=xyz",
            "multipart/form-data; boundary=xyz",
        ),
        (
            "text/x-thing; charset=\"my-cs\"",
            "text/x-thing; charset=my-cs",
        ),
    ] {
        let args = Req::new(Method::POST)
            .body(sent, b"x")
            .build(true, &nothing_final)
            .unwrap();
        assert_eq!(
            args["__ow_headers"]["content-type"],
            json!(rendered),
            "{sent}"
        );
    }
}

/// Which bodies are base64 and which are text (design note §3.4 rows 5-6).
#[test]
fn opaque_bodies_are_base64_when_binary() {
    let b64 = |s: &str| json!(base64::engine::general_purpose::STANDARD.encode(s));
    for (ct, body) in [
        ("text/plain", json!("hi")),
        ("application/xml", json!("hi")),
        ("application/json-patch+json; foo=bar", json!("hi")),
        ("application/json; foo=bar", json!("hi")),
        ("application/foo; charset=utf-8", json!("hi")),
        ("application/foo", b64("hi")),
        ("application/octet-stream", b64("hi")),
        ("image/svg+xml", b64("hi")),
        ("text/foo", b64("hi")),
    ] {
        let args = Req::new(Method::POST)
            .body(ct, b"hi")
            .build(false, &nothing_final)
            .unwrap();
        assert_eq!(args["__ow_body"], body, "{ct}");
    }
    // a registered +json type is text for raw actions; exactly application/json is not
    let args = Req::new(Method::POST)
        .body("application/json-patch+json", b"{}")
        .build(true, &nothing_final);
    assert_eq!(args.unwrap()["__ow_body"], json!("{}"));
}

/// A body without a (valid) Content-Type is `application/octet-stream`; an empty one is
/// no entity at all, unless it came chunked [HttpRequestParser.scala:222-240].
#[test]
fn entity_without_content_type() {
    let mut r = Req::new(Method::POST);
    r.body = b"abc".to_vec();
    let args = r.build(false, &nothing_final).unwrap();
    assert_eq!(args["__ow_body"], json!("YWJj"));
    assert_eq!(
        args["__ow_headers"],
        json!({"content-type": "application/octet-stream"})
    );

    let mut r = Req::new(Method::POST);
    r.headers = header_map(&[("content-type", "xyz"), ("transfer-encoding", "chunked")]);
    let args = r.build(false, &nothing_final).unwrap();
    assert_eq!(args["__ow_body"], json!(""));
    assert_eq!(
        args["__ow_headers"],
        json!({"content-type": "application/octet-stream"})
    );

    // an invalid Content-Type without a body stays a plain header, and there is no entity
    let mut r = Req::new(Method::POST);
    r.headers = header_map(&[("content-type", "xyz")]);
    let args = r.build(false, &nothing_final).unwrap();
    assert_eq!(args["__ow_headers"], json!({"content-type": "xyz"}));
    assert!(!args.contains_key("__ow_body"));
}

/// The query as `Query.toMap` decodes it and as `Query.toString` re-renders it for raw
/// actions [Uri.scala:683-687, 1030-1044].
#[test]
fn query_is_decoded_and_rerendered() {
    let raw = "a=b%20c&d&e=&f=%3D%3B+x&g=caf%C3%A9&a=last";
    let args = Req::new(Method::GET)
        .query(raw)
        .build(false, &nothing_final)
        .unwrap();
    for (k, v) in [
        ("a", "last"),
        ("d", ""),
        ("e", ""),
        ("f", "=; x"),
        ("g", "café"),
    ] {
        assert_eq!(args[k], json!(v), "{k}");
    }
    let args = Req::new(Method::GET)
        .query(raw)
        .build(true, &nothing_final)
        .unwrap();
    assert_eq!(
        args["__ow_query"],
        json!("a=b+c&d&e=&f=%3D%3B+x&g=caf%C3%A9&a=last")
    );
}

/// `__ow_path` is the unmatched path re-encoded [WebActions.scala:432; Uri.scala:1020-1028].
#[test]
fn ow_path_is_reencoded() {
    let args = Req::new(Method::GET)
        .path("/a%2Fb/%7e/caf%c3%a9/x%20y/,;/")
        .build(false, &nothing_final)
        .unwrap();
    assert_eq!(args["__ow_path"], json!("/a%2Fb/~/caf%C3%A9/x%20y/,;/"));
}

/// JSON bodies as the action receives them: numbers as Java prints them, lone
/// surrogates as `?`, nesting to 1000 levels.
#[test]
fn json_body_values_as_openwhisk_passes_them() {
    let body =
        br#"{"n": [1e10, 1.50, -0, 0.0000001], "s": "a\ud800b\ud83d\ude00", "dup": 1, "dup": 2}"#;
    let args = Req::new(Method::POST)
        .body("application/json", body)
        .build(false, &nothing_final)
        .unwrap();
    assert_eq!(compact(&args["n"]), "[1E+10,1.50,0,1E-7]");
    assert_eq!(args["s"], json!("a?b\u{1f600}"));
    assert_eq!(args["dup"], json!(2));

    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    assert!(json::parse(deep.as_bytes()).is_ok());
    let deeper = format!("{}{}", "[".repeat(1001), "]".repeat(1001));
    assert_eq!(
        json::parse(deeper.as_bytes()),
        Err("JSON input nested too deeply:JSON input was nested more deeply than the configured limit of maxNesting = 1000".into())
    );
}

/// A JSON body that does not parse: Pekko's rejection text around spray-json's message
/// [RejectionHandler.scala:202-207; JsonParser.scala:220-236].
#[test]
fn malformed_json_body() {
    let malformed = |body: &[u8]| {
        Req::new(Method::POST)
            .body("application/json", body)
            .build(false, &nothing_final)
    };
    assert_eq!(
        malformed(b"{\"a\":}"),
        Err(ArgumentError::Malformed(
            "The request content was malformed:\nUnexpected character '}' at input index 5 (line 1, position 6), expected JSON Value:\n{\"a\":}\n     ^\n".into()
        ))
    );
    assert_eq!(
        malformed(b"{\n  \"a\" 1}"),
        Err(ArgumentError::Malformed(
            "The request content was malformed:\nUnexpected character '1' at input index 8 (line 2, position 7), expected ':':\n  \"a\" 1}\n      ^\n".into()
        ))
    );
    assert_eq!(
        malformed(b"tru"),
        Err(ArgumentError::Malformed(
            "The request content was malformed:\nUnexpected end-of-input at input index 0 (line 1, position 1), expected JSON Value:\ntru\n^\n".into()
        ))
    );
    assert_eq!(
        malformed(b"\"a\nb\""),
        Err(ArgumentError::Malformed(
            "The request content was malformed:\nUnexpected character '\\u000a' at input index 2 (line 1, position 3), expected '\"':\n\"a\n  ^\n".into()
        ))
    );
    assert_eq!(
        malformed(b"{} x"),
        Err(ArgumentError::Malformed(
            "The request content was malformed:\nUnexpected character 'x' at input index 3 (line 1, position 4), expected end-of-input:\n{} x\n   ^\n".into()
        ))
    );
    let long = "1".repeat(101);
    assert_eq!(
        malformed(long.as_bytes()),
        Err(ArgumentError::Malformed(format!(
            "The request content was malformed:\nNumber too long:The number starting with '{}' had 101 characters which is more than the allowed limit maxNumberCharacters = 100. If this is legit input consider increasing the limit.",
            "1".repeat(20)
        )))
    );
    // a malformed body wins over a forbidden query key
    let r = Req::new(Method::POST)
        .query("__ow_body=1")
        .body("application/json", b"[");
    assert!(matches!(
        r.build(false, &nothing_final),
        Err(ArgumentError::Malformed(_))
    ));
}

/// A form body outside Pekko's relaxed query grammar is refused with the form
/// unmarshaller's message. The position and line are Pekko's; the "expected" list is
/// our reading of parboiled2 2.5.1's error reporting (not observed on a controller).
#[test]
fn malformed_form_body() {
    let r = Req::new(Method::POST).body("application/x-www-form-urlencoded", b"name=John Doe");
    assert_eq!(
        r.build(false, &nothing_final),
        Err(ArgumentError::Malformed(
            "Illegal query: Invalid input ' ', expected '+', query-char, pct-encoded, '&' or 'EOI' (line 1, column 10): name=John Doe\n         ^".into()
        ))
    );
    let r = Req::new(Method::POST).body("application/x-www-form-urlencoded", b"a=%zz");
    assert_eq!(
        r.build(false, &nothing_final),
        Err(ArgumentError::Malformed(
            "Illegal query: Invalid input 'z', expected HEXDIG (line 1, column 4): a=%zz\n   ^"
                .into()
        ))
    );
    // empty form and `+`/percent decoding
    let r = Req::new(Method::POST).body("application/x-www-form-urlencoded", b"a=1+2%2B3&b&c=x=y");
    assert_eq!(
        r.build(false, &nothing_final).unwrap(),
        meta(
            &Method::POST,
            None,
            "",
            json!({"content-type": "application/x-www-form-urlencoded"}),
            json!({"a": "1 2+3", "b": "", "c": "x=y"})
        )
    );
}

// ---------------------------------------------------------------- transcoding, beyond the table

/// `.http` errors: non-object results, bad headers, bad status codes
/// [WebActions.scala:238-274].
#[test]
fn http_result_must_be_a_valid_message() {
    let invalid = err(400, messages::INVALID_MEDIA_HTTP);
    for r in [
        json!("a string"),
        json!({"headers": "x"}),
        json!({"headers": {"a": {"b": 1}}}),
        json!({"headers": {"a": [null]}}),
        json!({"statusCode": null}),
        json!({"statusCode": true}),
        json!({"statusCode": 99}),
        json!({"statusCode": 600}),
        json!({"statusCode": "600"}),
        json!({"statusCode": " 200"}),
        json!({"statusCode": "200.0"}),
        json!({"statusCode": -200}),
        parsed(r#"{"statusCode": 200.5}"#),
        parsed(r#"{"statusCode": 1e10}"#),
    ] {
        let result = match &r {
            Value::Object(_) => http(r.clone()),
            _ => transcode(Extension::Http, Outcome::ApplicationError(&r)),
        };
        assert_eq!(result, invalid, "{r}");
    }
    for (r, code) in [
        (parsed(r#"{"statusCode": 200.00}"#), 200),
        (parsed(r#"{"statusCode": 2e2}"#), 200),
        (json!({"statusCode": "+201"}), 201),
        (json!({"statusCode": "0404"}), 404),
        (json!({"statusCode": 599}), 599),
        (json!({"statusCode": 100}), 100),
    ] {
        assert_eq!(http(r).map(|a| a.status), Ok(code));
    }
}

/// Header values from booleans and numbers; names sorted by UTF-16 units (the action's
/// `headers` object is a spray-json `TreeMap`); headers Pekko will not render from a
/// raw header are dropped, and values are Java chars' low bytes.
#[test]
fn http_headers_as_rendered() {
    let r = parsed(
        r#"{"headers": {"b": 1.50, "A": true, "a": ["3", 4e2], "Date": "x", "Server": "y",
            "Content-Length": "3", "connection": "close", "transfer-encoding": "chunked",
            "X-Bad": "a\nb", "X-Bad2": "\u010a", "X-Latin": "é"}, "statusCode": 200}"#,
    );
    let a = http(r).unwrap();
    let got: Vec<(&str, &[u8])> = a
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", &b"true"[..]),
            ("x-latin", &[0xe9][..]),
            ("a", &b"3"[..]),
            ("a", &b"4E+2"[..]),
            ("b", &b"1.50"[..]),
        ]
    );
}

/// String bodies and their content types [WebActions.scala:343-369].
#[test]
fn http_string_bodies() {
    let with = |ct: &str, body: &str| http(json!({"headers": {"Content-Type": ct}, "body": body}));
    // the declared charset is replaced by UTF-8; parameters other than charset stay
    assert_eq!(
        with("text/plain; charset=iso-8859-1", "x"),
        Ok(answer(200, Some("text/plain; charset=UTF-8"), b"x"))
    );
    assert_eq!(
        with("text/html; level=1", "x"),
        Ok(answer(200, Some("text/html; level=1; charset=UTF-8"), b"x"))
    );
    assert_eq!(
        with("text/event-stream", "x"),
        Ok(answer(200, Some("text/event-stream"), b"x"))
    );
    // unregistered: text with a charset parameter, binary (base64) without
    assert_eq!(
        with("application/foo; charset=utf-8", "hi"),
        Ok(answer(200, Some("application/foo; charset=UTF-8"), b"hi"))
    );
    assert_eq!(
        with("application/foo", "aGk="),
        Ok(answer(200, Some("application/foo"), b"hi"))
    );
    assert_eq!(
        with("image/png", "not base64!"),
        err(400, messages::HTTP_CONTENT_TYPE_ERROR)
    );
    // legacy: base64-looking JSON-family text is decoded, even when it was meant as text
    assert_eq!(
        with("application/json", "1234"),
        Ok(answer(200, Some("application/json"), &[0xd7, 0x6d, 0xf8]))
    );
    // ... tested trimmed, decoded untrimmed
    assert_eq!(
        with("application/json", " eyJhIjoxfQ=="),
        err(400, messages::HTTP_CONTENT_TYPE_ERROR)
    );
    // `text/html;` (a dangling `;`) is not a content type
    assert_eq!(
        with("text/html;", "x"),
        err(400, messages::HTTP_UNKNOWN_CONTENT_TYPE)
    );
}

/// JSON bodies: an unparseable content type is a mismatch here, not "unknown"
/// [WebActions.scala:319-340]; JSON-family detection reads the whole media type value.
#[test]
fn http_json_bodies() {
    let with = |ct: &str, body: Value| http(json!({"headers": {"content-type": ct}, "body": body}));
    assert_eq!(
        with("xyzbar", json!({})),
        err(400, messages::HTTP_CONTENT_TYPE_ERROR)
    );
    assert_eq!(
        with("application/hal+json; profile=x", json!([1])),
        err(400, messages::HTTP_CONTENT_TYPE_ERROR)
    );
    assert_eq!(
        with("Application/Problem+JSON", json!(true)),
        Ok(answer(200, Some("application/problem+json"), b"true"))
    );
    assert_eq!(
        with("text/html; x=a+json", json!([1, 2])),
        Ok(answer(200, Some("text/html"), b"[1, 2]"))
    );
}

/// `.html`/`.svg`/`.text` projections and the application-error table (design note §4.1).
#[test]
fn projections_and_application_errors() {
    let t = |ext, v: Value| transcode(ext, Outcome::ApplicationError(&v));
    // a present non-string body does not fall back
    assert_eq!(
        t(Extension::Html, json!({"body": 1, "html": "x"})),
        err(400, messages::INVALID_MEDIA_HTML)
    );
    assert_eq!(
        t(Extension::Svg, json!({"svg": 1})),
        err(400, messages::INVALID_MEDIA_SVG)
    );
    assert_eq!(
        t(Extension::Html, json!("boom")),
        Ok(answer(200, Some("text/html; charset=UTF-8"), b"boom"))
    );
    assert_eq!(
        t(Extension::Text, json!("boom")),
        Ok(answer(200, Some("text/plain; charset=UTF-8"), b"boom"))
    );
    assert_eq!(
        t(Extension::Http, json!("boom")),
        err(400, messages::INVALID_MEDIA_HTTP)
    );
    assert_eq!(
        t(Extension::Json, json!([1])),
        Ok(answer(200, Some("application/json"), b"[1]"))
    );
    assert_eq!(
        t(Extension::Html, json!([1])),
        err(400, messages::INVALID_MEDIA_HTML)
    );
    assert_eq!(
        t(Extension::Text, json!([1])),
        Ok(answer(200, Some("text/plain; charset=UTF-8"), b"[1]"))
    );
    assert_eq!(
        t(Extension::Json, json!(1)),
        err(400, messages::INVALID_MEDIA_JSON)
    );
    assert_eq!(
        t(Extension::Text, json!({"body": null})),
        Ok(answer(200, Some("text/plain; charset=UTF-8"), b"null"))
    );
    assert_eq!(
        t(Extension::Text, parsed("1e3")),
        Ok(answer(200, Some("text/plain; charset=UTF-8"), b"1E+3"))
    );
}

/// A successful result that is not an object fails before transcoding
/// [WebActions.scala:666].
#[test]
fn successful_non_object_result_is_unhandled() {
    let e = transcode(Extension::Json, Outcome::Success(&json!([1]))).unwrap_err();
    assert_eq!(
        e,
        WebError {
            status: 500,
            message: messages::INTERNAL_SERVER_ERROR
        }
    );
    assert!(e.is_unhandled());
    assert!(
        !transcode(Extension::Json, Outcome::DeveloperOrWhiskError)
            .unwrap_err()
            .is_unhandled()
    );
}

// ---------------------------------------------------------------- printers

/// PrettyPrinter.scala:42-59: nested objects and arrays, empty ones, escapes
/// (JsonPrinter.scala:55-105: only `"`, `\` and controls; DEL and non-ASCII as they are).
#[test]
fn pretty_prints_as_spray() {
    let v = json!({
        "s": "q\"\\\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}é/",
        "b": [1, {"y": [], "x": {}}],
        "a": {"d": "e", "c": null},
        "e": {},
    });
    let expected = "{\n  \"a\": {\n    \"c\": null,\n    \"d\": \"e\"\n  },\n  \"b\": [1, {\n    \"x\": {\n\n    },\n    \"y\": []\n  }],\n  \"e\": {\n\n  },\n  \"s\": \"q\\\"\\\\\\u0001\\b\\f\\n\\r\\t\\u001f\u{7f}é/\"\n}";
    assert_eq!(pretty(&v), expected);
    assert_eq!(pretty(&json!({})), "{\n\n}");
    assert_eq!(pretty(&json!([])), "[]");
    assert_eq!(pretty(&json!([[], [{}]])), "[[], [{\n\n}]]");
    assert_eq!(
        compact(&v),
        "{\"a\":{\"c\":null,\"d\":\"e\"},\"b\":[1,{\"x\":{},\"y\":[]}],\"e\":{},\"s\":\"q\\\"\\\\\\u0001\\b\\f\\n\\r\\t\\u001f\u{7f}é/\"}"
    );
}

/// Numbers as `java.math.BigDecimal.toString` of the text as parsed.
#[test]
fn pretty_prints_numbers_as_java_bigdecimal() {
    let v = parsed(
        "[1e10, 1.50, -0, 100, 0.0000001, 0.000001, -1.5e3, 12.5e-1, 1e0, 0.000, 0e3, -0.0, 1E-10, 1.0e-10, 123456789012345678901234567890]",
    );
    assert_eq!(
        pretty(&v),
        "[1E+10, 1.50, 0, 100, 1E-7, 0.000001, -1.5E+3, 1.25, 1, 0.000, 0E+3, 0.0, 1E-10, 1.0E-10, 123456789012345678901234567890]"
    );
}

/// Objects of any size print sorted by UTF-16 code units. How the order was derived:
/// spray-json 1.3.5 (OpenWhisk's, `common/scala/build.gradle:49`) parses every object
/// into a `TreeMap[String, JsValue]` (JsonParser.scala `object`: `members(TreeMap.empty)`;
/// commit 855b35e, CVE-2018-18854), and the controller only prints parsed objects;
/// `TreeMap` iterates in `Ordering.String` order = `String.compareTo`, which compares
/// UTF-16 code units. So no Scala `HashMap` order is involved at any size. The keys
/// below include U+FF21 (one unit, 0xFF21) and U+10000 (units 0xD800 0xDC00): UTF-16
/// order puts U+10000 first, where UTF-8 byte order would not.
#[test]
fn pretty_orders_members_by_utf16_code_units() {
    let mut m = Map::new();
    for (i, k) in ["b", "\u{ff21}", "a", "C", "\u{10000}", "_", "aa", "é", ""]
        .iter()
        .enumerate()
    {
        m.insert((*k).to_string(), json!(i));
    }
    assert_eq!(
        compact(&Value::Object(m.clone())),
        "{\"\":8,\"C\":3,\"_\":5,\"a\":2,\"aa\":6,\"b\":0,\"é\":7,\"\u{10000}\":4,\"\u{ff21}\":1}"
    );
    assert!(pretty(&Value::Object(m)).starts_with("{\n  \"\": 8,\n  \"C\": 3,\n"));
}

/// OpenWhisk's error body prints `code` before `error` (ErrorResponse.scala:306 builds
/// `JsObject("error" -> …, "code" -> …)`, a `TreeMap`), and escapes as spray does.
#[test]
fn error_body_orders_code_first() {
    assert_eq!(
        error_body("a \"quoted\"\ntext", "t1"),
        "{\n  \"code\": \"t1\",\n  \"error\": \"a \\\"quoted\\\"\\ntext\"\n}"
    );
}

// ---------------------------------------------------------------- media registry and codecs

/// Pekko's registry (MediaType.scala:353-572; CommonActions.scala:31-66).
#[test]
fn binary_media_registry() {
    for (mt, charset, binary) in [
        ("image/png", false, true),
        ("image/svg+xml", false, true),
        ("IMAGE/PNG", false, true),
        ("audio/webm", false, true),
        ("video/mp4", false, true),
        ("font/woff2", false, true),
        ("message/http", false, true),
        ("application/octet-stream", false, true),
        ("Application/PDF", false, true),
        (
            "application/vnd.ms-excel.addin.macroenabled.12",
            false,
            true,
        ),
        ("multipart/form-data", true, true),
        ("text/plain", false, false),
        ("text/html", true, false),
        ("text/event-stream", false, false),
        ("application/json", false, false),
        ("application/json-patch+json", false, false),
        ("application/vnd.api+json", false, false),
        ("application/x-www-form-urlencoded", false, false),
        ("application/javascript", false, false),
        ("application/xml", false, false),
        ("application/base64", false, false),
        ("application/cloudevents+json", false, true),
        ("application/cloudevents+json", true, false),
        ("text/foo", false, true),
        ("text/foo", true, false),
    ] {
        assert_eq!(
            is_binary_media_type(mt, charset),
            binary,
            "{mt} charset={charset}"
        );
    }
}

/// `java.util.Base64.getDecoder().decode` and `Exec.isBinaryCode`.
#[test]
fn java_base64_and_binary_code() {
    for (s, decoded) in [
        ("QQ==", Some(&b"A"[..])),
        ("QQ", Some(b"A")),
        ("QUI=", Some(b"AB")),
        ("QUI", Some(b"AB")),
        ("QUJD", Some(b"ABC")),
        ("QR==", Some(b"A")),
        ("", Some(b"")),
        ("QQ=", None),
        ("Q", None),
        ("Q===", None),
        ("QUJD=", None),
        ("QQ==QQ==", None),
        (" QQ==", None),
        ("QQ==\n", None),
        ("Q-_A", None),
    ] {
        assert_eq!(codec::java_base64_decode(s).as_deref(), decoded, "{s:?}");
    }
    for (s, looks) in [
        ("1234", true),
        ("ab==", true),
        ("abc=", true),
        (" ab==\n", true),
        ("abc", false),
        ("a===", false),
        ("ab=c", false),
        ("", false),
        ("    ", false),
        ("hello world!", false),
    ] {
        assert_eq!(codec::is_binary_code(s), looks, "{s:?}");
    }
}

/// `Integer.parseInt` as the JDK reads string status codes (checked against JDK 17):
/// any script's decimal digits, an ASCII sign, nothing else.
#[test]
fn java_parse_int_reads_unicode_digits() {
    for (s, v) in [
        ("200", Some(200)),
        ("+201", Some(201)),
        ("-200", Some(-200)),
        ("0404", Some(404)),
        ("\u{662}\u{660}\u{660}", Some(200)),
        ("\u{ff12}\u{ff10}\u{ff10}", Some(200)),
        ("2147483647", Some(i32::MAX)),
        ("-2147483648", Some(i32::MIN)),
        ("2147483648", None),
        ("+", None),
        ("", None),
        (" 200", None),
        ("200.0", None),
        ("\u{104a2}", None),
    ] {
        assert_eq!(java_parse_int(s), v, "{s:?}");
    }
    assert_eq!(
        http(json!({"statusCode": "\u{662}\u{660}\u{661}"})).map(|a| a.status),
        Ok(201)
    );
}

#[test]
fn requested_cors_headers_are_echoed_as_pekko_renders_them() {
    // WA:416-419: the parsed header's `value`, a token list joined by ", ".
    for (sent, echoed) in [
        ("content-type,x-a", "content-type, x-a"),
        ("X-Custom", "X-Custom"),
        ("a ,  b,c", "a, b, c"),
        ("a b", "a b"),
        ("a,,b", "a,,b"),
        ("", ""),
    ] {
        assert_eq!(allow_headers_echo(sent), echoed, "{sent:?}");
    }
}

#[test]
fn a_body_on_a_status_without_entity_is_the_bare_500() {
    // Pekko: 1xx, 204, 205 and 304 allow no entity; HttpResponse's require throws and
    // the default exception handler answers 500 (WebError::is_unhandled).
    for code in [204, 205, 304, 103] {
        let r = json!({"statusCode": code, "body": "x"});
        let e = transcode(Extension::Http, Outcome::Success(&r)).unwrap_err();
        assert!(e.is_unhandled(), "{code}: {e:?}");
        let r = json!({"statusCode": code, "body": {"a": 1}});
        assert!(
            transcode(Extension::Http, Outcome::Success(&r))
                .unwrap_err()
                .is_unhandled()
        );
        // Without a body the status goes out as it is (WAT:1163-1192).
        let r = json!({"statusCode": code, "headers": {"content-type": "application/json"}});
        let a = transcode(Extension::Http, Outcome::Success(&r)).unwrap();
        assert_eq!((a.status, a.body.len()), (code as u16, 0));
    }
    // 206 and custom 2xx/3xx codes allow one.
    for code in [206, 299, 399] {
        let r = json!({"statusCode": code, "body": "x"});
        assert_eq!(
            transcode(Extension::Http, Outcome::Success(&r))
                .unwrap()
                .status,
            code as u16
        );
    }
}
