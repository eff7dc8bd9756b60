//! Hostile input at scale (issue 20): property-based tests of every parser that reads
//! what a client, Lambda, the controller or CouchDB sends — the policy file, the
//! `Authorization` header and bearer tokens, invoke paths, queries and bodies, web
//! calls' arguments and results,
//! activation list queries, Lambda's answers and log tails, CouchDB documents.
//!
//! Every property says the parser never panics, that what it allocates is bounded by
//! what it was given (measured by the counting allocator below), and, where a value is
//! written and read back, that it round-trips.
//!
//! Each property runs `PROPTEST_CASES` cases (proptest's default, 256, in the test
//! suite). The long run recorded in docs/reliability.md sets it higher, in a debug
//! build so that arithmetic overflow panics: `PROPTEST_CASES=10000 cargo test --test
//! hostile` (plain `cargo test`: nextest's 180 s limit per test is too short for it).
//! A failing case is kept below as a plain `#[test]` regression case.

#![deny(unsafe_code)]

use futures_util::FutureExt;
use owl::activation::query as list_query;
use owl::auth::entitlement::{self, Doc};
use owl::auth::jwt::{JwtError, JwtValidator};
use owl::auth::{Caller, Credentials, KEY_LENGTH};
use owl::invoke::request::{parse_body, parse_query_with};
use owl::lambda::logs::{TAIL_LIMIT, parse_tail};
use owl::lambda::{LambdaReply, interpret_with};
use owl::policy::route::{
    ActionPattern, FunctionTemplate, MAX_FUNCTION_NAME, TemplateSegment, escape_segment,
    validate_function_name,
};
use owl::policy::{Cidr, JwtConfig, JwtKeySource, Policy, format_duration, parse_duration};
use owl::sync::action::{ActionDoc, CodeRef, PackageDoc, code_from, merge_parameters};
use owl::whisk::activation::{Activation, ActivationResponse, Annotation};
use owl::whisk::names::{ENTITY_NAME_MAX_LENGTH, split_invoke_path, validate_segment};
use owl::whisk::{ActionMetadata, ActionPath, ActivationId, StatusCode, TransactionId};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Map, Number, Value, json};
use std::cell::Cell;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;
use time::OffsetDateTime;

// ---------------------------------------------------------------------------------
// Allocation meter: the most heap bytes a call held at once, per thread.
// ---------------------------------------------------------------------------------

/// Counts every allocation of this test binary per thread, so a property can assert
/// that a parser's peak heap use is bounded by its input. Only this module is unsafe:
/// a global allocator cannot be written otherwise; it forwards every call unchanged.
#[allow(unsafe_code)]
mod meter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn note(delta: isize) {
        let _ = LIVE.try_with(|live| {
            let now = live.get() + delta;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    /// The system allocator, counted.
    pub struct Metered;

    // SAFETY: every method forwards to `System` with the caller's arguments and
    // returns its answer; counting touches only const-initialised thread-locals,
    // which never allocate.
    unsafe impl GlobalAlloc for Metered {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                note(layout.size() as isize);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as for `alloc`.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                note(layout.size() as isize);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from this allocator (i.e. from `System`) with `layout`.
            unsafe { System.dealloc(ptr, layout) };
            note(-(layout.size() as isize));
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: as for `dealloc`, and `new_size` is the caller's.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                note(new_size as isize - layout.size() as isize);
            }
            p
        }
    }

    /// Runs `f`; returns its result and the most heap bytes held at once during the
    /// call above what was held before it (the result included).
    pub fn peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let out = f();
        let top = PEAK.with(Cell::get);
        (out, usize::try_from(top - base).unwrap_or(0))
    }
}

#[global_allocator]
static METER: meter::Metered = meter::Metered;

/// Heap a parser may hold per byte of input: JSON trees cost tens of bytes per input
/// byte (`Value` nodes, map indexes, vectors grown by doubling); anything near this
/// factor times the input is an amplification worth knowing about.
const ALLOC_PER_BYTE: usize = 64;
/// Fixed allowance per call (first-use statics, small-input overheads).
const ALLOC_SLACK: usize = 256 * 1024;

fn alloc_bound(input_len: usize) -> usize {
    input_len * ALLOC_PER_BYTE + ALLOC_SLACK
}

// ---------------------------------------------------------------------------------
// Configuration and strategies
// ---------------------------------------------------------------------------------

/// proptest's default configuration (so `PROPTEST_CASES` sets the case count), with
/// no regression files written into the tree: failures become `#[test]`s below.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces that break naive parsers: separators, escapes, bad UTF-8 escapes, numbers at
/// the edges of their types, control and bidirectional characters.
const NOISE: &[&str] = &[
    "",
    " ",
    "\t",
    "\n",
    "\r\n",
    "/",
    "//",
    "%",
    "%2",
    "%2F",
    "%25",
    "%FF",
    "%e9",
    "%C3%A9",
    "%00",
    "&",
    "=",
    "+",
    "*",
    ".",
    "..",
    "-",
    "_",
    "@",
    ":",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "\\",
    "\0",
    "\u{7f}",
    "é",
    "İ",
    "\u{FFFD}",
    "\u{202E}",
    "𝔘",
    "0",
    "1",
    "-1",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999",
    "1e308",
    "NaN",
    "true",
];

/// Text made of `vocabulary` words, noise and arbitrary characters.
fn soup(vocabulary: &'static [&'static str], max_pieces: usize) -> BoxedStrategy<String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(vocabulary).prop_map(str::to_string),
            4 => prop::sample::select(NOISE).prop_map(str::to_string),
            1 => any::<char>().prop_map(String::from),
            1 => ".{0,12}",
        ],
        0..max_pieces,
    )
    .prop_map(|pieces| pieces.concat())
    .boxed()
}

/// A name segment OpenWhisk accepts (reference §1.1), mostly short, sometimes at the
/// 256-character limit.
fn segment() -> BoxedStrategy<String> {
    prop_oneof![
        8 => "[A-Za-z0-9_]([A-Za-z0-9_@ .&-]{0,12}[A-Za-z0-9_@.&-])?",
        1 => "[A-Za-z0-9_][A-Za-z0-9_@ .&-]{200,254}[A-Za-z0-9_@.&-]",
    ]
    .boxed()
}

/// Segments over a tiny alphabet, so that two different paths often differ only in
/// where one segment ends and the next begins.
fn tight_segment() -> BoxedStrategy<String> {
    prop_oneof![
        8 => "[ab_]([ab_.@& -]{0,4}[ab_.@&-])?",
        1 => "[ab_][ab_.-]{60,120}[ab_]",
    ]
    .boxed()
}

/// Text shaped like a path: segments, valid or not, between slashes.
fn path_like(words: &'static [&'static str]) -> BoxedStrategy<String> {
    (
        "/{0,2}",
        prop::collection::vec(prop_oneof![segment(), soup(words, 3)], 1..5),
    )
        .prop_map(|(lead, segments)| format!("{lead}{}", segments.join("/")))
        .boxed()
}

fn action_path() -> BoxedStrategy<ActionPath> {
    (segment(), prop::option::of(segment()), segment())
        .prop_map(|(ns, pkg, action)| ActionPath::new(&ns, pkg.as_deref(), &action))
        .boxed()
}

/// Keys the documents owl reads use, so generated objects hit their branches.
const KEYS: &[&str] = &[
    "namespace",
    "name",
    "subject",
    "activationId",
    "start",
    "end",
    "duration",
    "cause",
    "response",
    "result",
    "status",
    "statusCode",
    "success",
    "size",
    "logs",
    "version",
    "publish",
    "annotations",
    "key",
    "value",
    "init",
    "encryption",
    "exec",
    "kind",
    "code",
    "jar",
    "binary",
    "main",
    "image",
    "attachmentName",
    "limits",
    "timeout",
    "memory",
    "parameters",
    "entityType",
    "binding",
    "error",
    "errorType",
    "errorMessage",
    "_id",
    "updated",
    "path",
    "conductor",
    "provide-api-key",
];

/// String values the documents owl reads give meaning to.
const WORDS: &[&str] = &[
    "action",
    "package",
    "activation",
    "success",
    "application error",
    "action developer error",
    "whisk internal error",
    "noop",
    "aes-256",
    "nodejs:20",
    "python:3.11",
    "blackbox",
    "sequence",
    "guest",
    "guest/pkg",
    "a/b/c",
    "/",
    "mem:",
    "mem:aGVsbG8",
    "mem:aGVsbG8=",
    "mem:!!",
    "couch:code",
    "codefile",
    "s3:bucket/key",
    "0123456789abcdef0123456789abcdef",
    "0123456789ABCDEF0123456789ABCDEF",
    "Runtime.OutOfMemory",
    "Sandbox.Timedout",
    "Function.ResponseSizeTooLarge",
    "Response payload size (7000000 bytes) exceeded maximum allowed payload size (6291556 bytes).",
    "Response payload size (99999999999999999999999 bytes)",
    "Task timed out after 3.00 seconds",
    "2026-01-02T03:04:05.000Z 8f5 Task timed out after 1e999 seconds",
    "Task timed out after 3.00 seconds during initialization.",
];

fn json_key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => ".{0,8}",
    ]
    .boxed()
}

fn json_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(str::to_string),
        2 => "[a-z0-9_/:.@ -]{0,12}",
        1 => ".{0,24}",
    ]
    .boxed()
}

/// Numbers of every shape JSON allows, including those no machine type holds
/// (owl's `serde_json` keeps the text of such numbers).
fn json_number() -> BoxedStrategy<Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        "-?[0-9]{19,40}(\\.[0-9]{1,5})?".prop_filter_map("number", |s| s.parse().ok()),
        "-?[0-9]{1,3}(\\.[0-9]{1,3})?[eE][+-]?[0-9]{1,6}"
            .prop_filter_map("number", |s| s.parse().ok()),
    ]
    .boxed()
}

/// Any JSON value, nested at most four deep.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number().prop_map(Value::Number),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// An object with `fields`, each usually of the expected shape, sometimes any JSON,
/// sometimes absent, plus a few unrelated keys.
fn object_of(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .into_iter()
        .map(|(key, expected)| {
            prop_oneof![
                6 => expected.prop_map(move |v| Some((key.to_string(), v))),
                1 => json_value().prop_map(move |v| Some((key.to_string(), v))),
                1 => Just(None),
            ]
            .boxed()
        })
        .collect();
    (
        fields,
        prop::collection::vec((json_key(), json_value()), 0..3),
    )
        .prop_map(|(fields, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            m.extend(fields.into_iter().flatten());
            Value::Object(m)
        })
        .boxed()
}

fn str_value(s: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    s.prop_map(Value::String).boxed()
}

fn epoch_ms() -> BoxedStrategy<i64> {
    prop_oneof![4 => 0i64..4_000_000_000_000, 1 => any::<i64>()].boxed()
}

fn activation_id() -> BoxedStrategy<String> {
    "[0-9a-f]{32}".boxed()
}

fn parameters_value() -> BoxedStrategy<Value> {
    prop::collection::vec(
        object_of(vec![
            ("key", str_value(json_string())),
            ("value", json_value()),
            ("init", any::<bool>().prop_map(Value::Bool).boxed()),
            (
                "encryption",
                prop_oneof![
                    Just(Value::Null),
                    Just(json!("noop")),
                    Just(json!("aes-256"))
                ]
                .boxed(),
            ),
        ]),
        0..5,
    )
    .prop_map(Value::Array)
    .boxed()
}

fn annotations_value() -> BoxedStrategy<Value> {
    prop::collection::vec(
        object_of(vec![
            ("key", str_value(json_string())),
            ("value", json_value()),
        ]),
        0..4,
    )
    .prop_map(Value::Array)
    .boxed()
}

/// An activation as the controller or CouchDB hands it over, in either form, damaged
/// here and there.
fn activation_doc() -> BoxedStrategy<Value> {
    let response = object_of(vec![
        ("statusCode", (0u64..6).prop_map(Value::from).boxed()),
        (
            "status",
            str_value(prop::sample::select(WORDS).prop_map(str::to_string).boxed()),
        ),
        ("result", json_value()),
        ("size", any::<u64>().prop_map(Value::from).boxed()),
    ]);
    object_of(vec![
        ("namespace", str_value(segment())),
        ("name", str_value(segment())),
        ("subject", str_value(segment())),
        ("activationId", str_value(activation_id())),
        ("start", epoch_ms().prop_map(Value::from).boxed()),
        ("end", epoch_ms().prop_map(Value::from).boxed()),
        ("cause", str_value(activation_id())),
        ("response", response),
        (
            "logs",
            prop::collection::vec(json_string().prop_map(Value::String), 0..4)
                .prop_map(Value::Array)
                .boxed(),
        ),
        ("version", str_value("[0-9]\\.[0-9]\\.[0-9]{1,2}".boxed())),
        ("publish", any::<bool>().prop_map(Value::Bool).boxed()),
        ("annotations", annotations_value()),
    ])
}

/// An action or package document as the whisks database or the controller hands it
/// over, damaged here and there.
fn whisk_doc() -> BoxedStrategy<Value> {
    let namespace = prop_oneof![
        segment(),
        (segment(), segment()).prop_map(|(ns, pkg)| format!("{ns}/{pkg}")),
        json_string(),
    ]
    .boxed();
    let code = prop_oneof![
        json_string().prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|bytes| {
            use base64::Engine;
            let data = base64::engine::general_purpose::URL_SAFE.encode(bytes);
            json!({"attachmentName": format!("mem:{data}"), "attachmentType": "application/zip"})
        }),
        json_string().prop_map(|name| json!({ "attachmentName": name })),
        json_value(),
    ]
    .boxed();
    let exec = object_of(vec![
        ("kind", str_value(json_string())),
        ("code", code),
        ("binary", any::<bool>().prop_map(Value::Bool).boxed()),
        ("main", str_value(json_string())),
        ("image", str_value(json_string())),
    ]);
    let limits = object_of(vec![
        ("timeout", json_number().prop_map(Value::Number).boxed()),
        ("memory", json_number().prop_map(Value::Number).boxed()),
    ]);
    let binding = prop_oneof![
        Just(json!({})),
        Just(json!(false)),
        (segment(), segment()).prop_map(|(ns, name)| json!({"namespace": ns, "name": name})),
    ]
    .boxed();
    object_of(vec![
        (
            "entityType",
            prop_oneof![Just(json!("action")), Just(json!("package")), json_value()].boxed(),
        ),
        ("namespace", str_value(namespace)),
        ("name", str_value(segment())),
        ("version", str_value("[0-9]\\.[0-9]\\.[0-9]{1,2}".boxed())),
        ("exec", exec),
        ("limits", limits),
        ("parameters", parameters_value()),
        ("annotations", annotations_value()),
        ("binding", binding),
        ("publish", any::<bool>().prop_map(Value::Bool).boxed()),
    ])
}

fn serialized_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(0, |b| b.len())
}

/// Percent-encodes each character of `s` or not, as `mask` says (cycled), so one
/// value reaches the parser in many spellings; delimiters are always encoded.
fn spell(s: &str, mask: &[bool]) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        let encode = mask.get(i % mask.len().max(1)).copied().unwrap_or(false);
        if encode || matches!(c, '%' | '&' | '=' | '+' | '#' | '/' | '?') || !c.is_ascii_graphic() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Entity names, invoke paths, transaction and activation ids
// ---------------------------------------------------------------------------------

const PATH_WORDS: &[&str] = &[
    "guest",
    "_",
    "pkg",
    "hello",
    "a b",
    "a.",
    "a&b",
    "x@y",
    "api",
    "v1",
    "namespaces",
    "actions",
    "/actions/",
];

/// OpenWhisk's name grammar, `\A([\w]|[\w][\w@ .&-]{0,254}[\w@.&-])\z` with ASCII
/// `\w`, written out independently of owl's validator.
fn in_grammar(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<char> = s.chars().collect();
    match chars.as_slice() {
        [] => false,
        [only] => word(*only),
        [first, middle @ .., last] => {
            chars.len() <= ENTITY_NAME_MAX_LENGTH
                && word(*first)
                && middle.iter().all(|&c| word(c) || "@ .&-".contains(c))
                && (word(*last) || "@.&-".contains(*last))
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Every name the controller accepts is accepted: a refused valid name would send
    /// a mapped action to the controller instead of Lambda.
    #[test]
    fn names_in_the_grammar_are_accepted(s in segment()) {
        prop_assert_eq!(validate_segment(&s), Ok(()));
    }

    /// Every name the controller refuses is refused: names choose a tenant's function,
    /// so `..`, `a/b`, control or bidirectional characters and over-long names must
    /// never pass.
    #[test]
    fn names_outside_the_grammar_are_refused(s in prop_oneof![soup(PATH_WORDS, 12), ".{250,260}"]) {
        prop_assert_eq!(validate_segment(&s).is_ok(), in_grammar(&s), "{:?}", s);
    }

    /// `ns/[pkg/]action` as typed on a command line: never panics; what it accepts is
    /// made of valid segments and renders back to text that parses to the same path.
    #[test]
    fn action_paths_parse_and_render_back(s in prop_oneof![soup(PATH_WORDS, 12), path_like(PATH_WORDS)]) {
        if let Ok(p) = ActionPath::parse(&s) {
            prop_assert!(p.namespace == "_" || validate_segment(&p.namespace).is_ok());
            prop_assert!(p.package.iter().chain([&p.action]).all(|seg| validate_segment(seg).is_ok()));
            prop_assert!(p.to_path_string().len() <= s.len());
            prop_assert_eq!(ActionPath::parse(&p.to_path_string()), Ok(p.clone()));
            prop_assert_eq!(ActionPath::parse(&p.qualified_name_with_leading_slash()), Ok(p));
        }
    }

    /// Every valid path round-trips through its text form exactly.
    #[test]
    fn valid_action_paths_round_trip(p in action_path()) {
        prop_assert_eq!(ActionPath::parse(&p.to_path_string()), Ok(p.clone()));
        prop_assert_eq!(ActionPath::parse(&p.qualified_name_with_leading_slash()), Ok(p));
    }

    /// An invoke's request path: any segments, percent-encoded in any spelling, come
    /// back exactly, and an encoded `/` stays inside its segment (so `a%2Fb` can never
    /// address package `a`).
    #[test]
    fn invoke_paths_split_back_into_their_segments(
        ns in ".{1,16}",
        pkg in prop::option::of(".{1,16}"),
        action in ".{1,16}",
        mask in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let path = match &pkg {
            Some(p) => format!(
                "/api/v1/namespaces/{}/actions/{}/{}",
                spell(&ns, &mask),
                spell(p, &mask),
                spell(&action, &mask)
            ),
            None => format!("/api/v1/namespaces/{}/actions/{}", spell(&ns, &mask), spell(&action, &mask)),
        };
        prop_assert_eq!(split_invoke_path(&path), Some((ns, pkg, action)));
    }

    /// Any request path: never panics, never yields an empty segment, never grows.
    #[test]
    fn arbitrary_invoke_paths_never_panic(tail in soup(PATH_WORDS, 16)) {
        let path = format!("/api/v1/namespaces/{tail}");
        if let Some((ns, pkg, action)) = split_invoke_path(&path) {
            prop_assert!(!ns.is_empty() && !action.is_empty());
            prop_assert!(pkg.as_ref().is_none_or(|p| !p.is_empty()));
            prop_assert!(ns.len() + pkg.map_or(0, |p| p.len()) + action.len() <= path.len());
        }
    }

    /// `X-Request-ID` is echoed to clients, put in error bodies and logged: a client's
    /// id is kept verbatim (trimmed) unless it claims the system's `sid_` prefix; any
    /// other value is replaced by a fresh 32-character id.
    #[test]
    fn transaction_ids_from_any_header(
        prefix in prop::sample::select(&["", "sid_", " sid_", "x", " "][..]),
        bytes in prop::collection::vec(prop_oneof![9 => 0x20u8..0x7f, 1 => any::<u8>()], 0..64),
    ) {
        let mut raw = prefix.as_bytes().to_vec();
        raw.extend(bytes);
        let Ok(value) = http::HeaderValue::from_bytes(&raw) else { return Ok(()) };
        let id = TransactionId::from_header(Some(&value));
        match value.to_str().map(str::trim) {
            Ok(text) if !text.starts_with("sid_") => prop_assert_eq!(id.as_str(), text),
            _ => {
                prop_assert_eq!(id.as_str().len(), 32);
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
            }
        }
    }

    /// Activation ids arrive in request paths and in documents: only 32 lowercase hex
    /// digits parse, and they render back unchanged, also through JSON.
    #[test]
    fn activation_ids_parse_only_their_shape(s in prop_oneof![activation_id(), "[0-9a-fA-F]{30,34}", ".{0,40}"]) {
        match s.parse::<ActivationId>() {
            Ok(id) => {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert!(s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                let back: ActivationId = serde_json::from_value(serde_json::to_value(&id).unwrap()).unwrap();
                prop_assert_eq!(back, id);
            }
            Err(_) => {
                prop_assert!(s.len() != 32 || s.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                prop_assert!(serde_json::from_value::<ActivationId>(Value::String(s)).is_err());
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The policy file, routes and function templates
// ---------------------------------------------------------------------------------

const DURATION_WORDS: &[&str] = &["ms", "s", "m", "min", "h", "d", ".", "5", "250", "1.5"];

const POLICY_WORDS: &[&str] = &[
    "[controller]\n",
    "[lambda]\n",
    "[metadata]\n",
    "[server]\n",
    "[limits]\n",
    "[limits.namespace.batch]\n",
    "[auth]\n",
    "[auth.jwt]\n",
    "[activations]\n",
    "[couchdb]\n",
    "[sync]\n",
    "[openwhisk]\n",
    "[[route]]\n",
    "[[metadata.action]]\n",
    "[[metadata.package]]\n",
    "components = ",
    "[\"guest/a\", \"_/b\", \"x\"]",
    "url = ",
    "\"http://127.0.0.1:3233\"",
    "\"https://[::1]:99999\"",
    "timeout = ",
    "ttl = ",
    "\"75s\"",
    "\"0ms\"",
    "\"99999999999999999999s\"",
    "\"1.5e3s\"",
    "action = ",
    "\"guest/*\"",
    "\"*/pkg/*\"",
    "\"_/x\"",
    "function = ",
    "\"owl-{namespace}-{action}\"",
    "\"owl-{package}\"",
    "\"arn:aws:lambda:us-east-1:123456789012:function:f\"",
    "weight = ",
    "1e400",
    "-0.0",
    "nan",
    "inf",
    "qualifier = ",
    "fallback = ",
    "payload = ",
    "\"event\"",
    "region = ",
    "trusted_proxies = ",
    "[\"10.0.0.0/8\", \"::1/129\"]",
    "max_in_flight = ",
    "list_limit = ",
    "payload_max = ",
    "18446744073709551615",
    "-9223372036854775808",
    "parameters = ",
    "{ a = 1, b = [1, \"x\"] }",
    "algorithms = [\"HS256\", \"RS256\", \"none\"]",
    "secret_file = \"s\"\n",
    "issuer = \"i\"\n",
    "\n",
    " = ",
    "\"",
    "'''",
    "\"\"\"",
    "#",
    ",",
    "true",
    "1979-05-27T07:32:00Z",
    "\\u00e9",
    "\\uD800",
];

const POLICIES: &[&str] = &[
    include_str!("../policies/example.toml"),
    include_str!("../policies/demo.toml"),
];

/// One damage done to a valid policy.
#[derive(Debug, Clone)]
enum Edit {
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, String),
    DuplicateLine(prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
}

fn edit() -> BoxedStrategy<Edit> {
    use prop::sample::Index;
    prop_oneof![
        (any::<Index>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), soup(POLICY_WORDS, 4)).prop_map(|(i, s)| Edit::Insert(i, s)),
        any::<Index>().prop_map(Edit::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
    .boxed()
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn damage(text: &str, edits: &[Edit]) -> String {
    let mut s = text.to_string();
    for e in edits {
        match e {
            Edit::Delete(at, n) => {
                let start = floor_boundary(&s, at.index(s.len() + 1));
                let end = floor_boundary(&s, (start + n).min(s.len()));
                s.replace_range(start..end, "");
            }
            Edit::Insert(at, piece) => {
                let at = floor_boundary(&s, at.index(s.len() + 1));
                s.insert_str(at, piece);
            }
            Edit::DuplicateLine(at) => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let k = at.index(lines.len());
                    lines.insert(k, lines[k]);
                }
                s = lines.join("\n");
            }
            Edit::SwapLines(a, b) => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                    lines.swap(a, b);
                }
                s = lines.join("\n");
            }
        }
    }
    s
}

/// Compiles `text` and checks what any policy text must give: no panic, memory
/// bounded by the text's size, and errors that point inside the file.
fn check_policy(text: &str) -> Result<(), TestCaseError> {
    let (result, peak) =
        meter::peak(|| Policy::parse(text, "hostile.toml", Path::new("/nonexistent")));
    prop_assert!(
        peak <= alloc_bound(text.len()),
        "{} heap bytes for {} bytes of policy",
        peak,
        text.len()
    );
    if let Err(errors) = result {
        prop_assert!(!errors.diagnostics.is_empty());
        let lines = text.lines().count() + 1;
        for d in &errors.diagnostics {
            prop_assert!(
                d.line >= 1 && d.line <= lines && d.column >= 1,
                "{}:{} is outside the file: {}",
                d.line,
                d.column,
                d.message
            );
        }
    }
    Ok(())
}

/// A tiny alphabet for route patterns and the paths matched against them, so that
/// patterns and paths often meet.
fn pattern_segment() -> BoxedStrategy<String> {
    prop_oneof![Just("*".to_string()), "[ab]{1,2}"].boxed()
}

fn pattern_text() -> BoxedStrategy<String> {
    (
        pattern_segment(),
        prop::option::of(pattern_segment()),
        pattern_segment(),
    )
        .prop_map(|(ns, pkg, action)| match pkg {
            Some(p) => format!("{ns}/{p}/{action}"),
            None => format!("{ns}/{action}"),
        })
        .boxed()
}

/// One `[[route]]` as an operator writes it.
#[derive(Debug, Clone)]
struct RouteSpec {
    action: String,
    weight_tenths: u32,
    timeout_ms: Option<u64>,
    qualifier: Option<String>,
    fallback_none: bool,
    event_payload: bool,
}

fn route_spec() -> BoxedStrategy<RouteSpec> {
    (
        pattern_text(),
        0u32..=1000,
        prop::option::of(100u64..=900_000),
        prop::option::of("[A-Za-z0-9_$.-]{1,20}"),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(action, weight_tenths, timeout_ms, qualifier, fallback_none, event_payload)| {
                RouteSpec {
                    action,
                    weight_tenths,
                    timeout_ms,
                    qualifier,
                    fallback_none,
                    event_payload,
                }
            },
        )
        .boxed()
}

/// The function of route `i`: the first one a template naming every segment, the
/// others fixed names (sharing a fixed name is the operator's choice, so routes never
/// conflict).
fn function_of(i: usize, spec: &RouteSpec) -> String {
    match (i, spec.action.matches('/').count()) {
        (0, 2) => "owl-{namespace}-{package}-{action}".to_string(),
        (0, _) => "owl-{namespace}-{action}".to_string(),
        _ => format!("fn-{i}"),
    }
}

fn policy_text(routes: &[RouteSpec]) -> String {
    let mut text = String::from("[controller]\nurl = \"http://127.0.0.1:3233\"\n");
    for (i, r) in routes.iter().enumerate() {
        text.push_str(&format!(
            "\n[[route]]\naction = \"{}\"\nfunction = \"{}\"\nweight = {}.{}\nfallback = \"{}\"\npayload = \"{}\"\n",
            r.action,
            function_of(i, r),
            r.weight_tenths / 10,
            r.weight_tenths % 10,
            if r.fallback_none { "none" } else { "controller" },
            if r.event_payload { "event" } else { "openwhisk" },
        ));
        if let Some(ms) = r.timeout_ms {
            text.push_str(&format!(
                "timeout = \"{}\"\n",
                format_duration(Duration::from_millis(ms))
            ));
        }
        if let Some(q) = &r.qualifier {
            text.push_str(&format!("qualifier = \"{q}\"\n"));
        }
    }
    text
}

fn tight_path() -> BoxedStrategy<ActionPath> {
    ("[ab]{1,2}", prop::option::of("[ab]{1,2}"), "[ab]{1,2}")
        .prop_map(|(ns, pkg, action)| ActionPath::new(&ns, pkg.as_deref(), &action))
        .boxed()
}

const PATTERN_WORDS: &[&str] = &["guest", "*", "_", "pkg", "a*", "**", "hello"];

const TEMPLATE_WORDS: &[&str] = &[
    "{namespace}",
    "{package}",
    "{action}",
    "{nope}",
    "{{action}}",
    "owl",
    "fn",
    "-",
    "--",
    "_",
    ":",
    "arn:aws:lambda:us-east-1:123456789012:function:",
    "123456789012:function:",
    ":live",
    "$LATEST",
    "0123456789012345678901234567890123456789",
];

/// `{namespace}`, `{package}` and `{action}` in any order, separated by text holding a
/// `-` as the policy requires.
fn separated_template() -> BoxedStrategy<String> {
    (
        Just(vec!["{namespace}", "{package}", "{action}"]).prop_shuffle(),
        "[a-z0-9_]{0,6}",
        "[a-z0-9_]{0,3}-[a-z0-9_]{0,3}",
        "[a-z0-9_]{0,3}-[a-z0-9_]{0,3}",
        "[a-z0-9_]{0,6}",
    )
        .prop_map(|(order, pre, s1, s2, post)| {
            format!("{pre}{}{s1}{}{s2}{}{post}", order[0], order[1], order[2])
        })
        .boxed()
}

/// Inverse of `escape_segment`, written from its documented scheme: `__` is `-`,
/// `_HH` a byte, anything else itself.
fn unescape(e: &str) -> Option<Vec<u8>> {
    let b = e.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'_' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'_') {
            out.push(b'-');
            i += 2;
        } else {
            out.push(u8::from_str_radix(e.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        }
    }
    Some(out)
}

const CIDR_WORDS: &[&str] = &[
    "10.0.0.0",
    "::1",
    "::ffff:10.0.0.1",
    "/",
    "/8",
    "/0",
    "/32",
    "/128",
    "/129",
    "/255",
    "/256",
];

proptest! {
    #![proptest_config(config())]

    /// Every duration the policy prints (`owl policy explain`) reads back as itself,
    /// up to 90 days (past about 97 days the parse, through `f64` seconds, is off by
    /// nanoseconds: see docs/reliability.md).
    #[test]
    fn durations_round_trip(ms in prop_oneof![0u64..100_000, 0u64..=90 * 86_400_000]) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)), Some(d));
    }

    /// Durations in the policy and on the command line: a number of any size with any
    /// unit never panics, and what parses is finite and not negative.
    #[test]
    fn durations_never_panic(s in prop_oneof![
        "[0-9]{1,30}(\\.[0-9]{0,6})? ?(ms|s|m|min|h|d|)",
        soup(DURATION_WORDS, 8),
    ]) {
        if let Some(d) = parse_duration(&s) {
            prop_assert!(s.trim().starts_with(|c: char| c.is_ascii_digit() || c == '.'), "{:?} -> {:?}", s, d);
        }
    }

    /// Any text as a policy (a bad deploy, a truncated ConfigMap): never panics, its
    /// errors point inside the file, its memory is bounded by its size.
    #[test]
    fn policy_text_never_panics(text in soup(POLICY_WORDS, 48)) {
        check_policy(&text)?;
    }

    /// The shipped policies, damaged: lines deleted, duplicated, swapped, pieces of
    /// TOML inserted anywhere — the same guarantees.
    #[test]
    fn damaged_policies_never_panic(
        base in prop::sample::select(POLICIES),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        check_policy(&damage(base, &edits))?;
    }

    /// Routes as an operator writes them compile to exactly what was written, and the
    /// compiled table picks, for any action, the first route in file order that covers
    /// it — the indexes never change which route serves an action.
    #[test]
    fn routes_compile_as_written(
        routes in prop::collection::vec(route_spec(), 1..8),
        paths in prop::collection::vec(tight_path(), 1..8),
    ) {
        let text = policy_text(&routes);
        let policy = Policy::parse(&text, "routes.toml", Path::new("/nonexistent"));
        prop_assert!(policy.is_ok(), "{}\n{}", text, policy.unwrap_err());
        let policy = policy.unwrap();
        let compiled = policy.routes.routes();
        prop_assert_eq!(compiled.len(), routes.len());
        for (i, (r, c)) in routes.iter().zip(compiled).enumerate() {
            prop_assert_eq!(c.index, i);
            prop_assert_eq!(c.pattern.to_string(), r.action.clone());
            prop_assert_eq!(c.function.as_str(), function_of(i, r));
            prop_assert_eq!(c.weight, f64::from(r.weight_tenths) / 10.0);
            prop_assert_eq!(c.timeout, r.timeout_ms.map(Duration::from_millis));
            prop_assert_eq!(c.qualifier.as_ref(), r.qualifier.as_ref());
        }
        for p in &paths {
            let expected = compiled.iter().position(|r| r.pattern.matches(p));
            prop_assert_eq!(policy.routes.find(p).map(|r| r.index), expected, "{}", p);
        }
    }

    /// Action patterns: never panic; what parses prints back exactly as written.
    #[test]
    fn action_patterns_print_back(s in prop_oneof![soup(PATTERN_WORDS, 8), path_like(PATTERN_WORDS)]) {
        if let Ok(p) = ActionPattern::parse(&s) {
            prop_assert_eq!(p.to_string(), s);
            prop_assert_eq!(ActionPattern::parse(&p.to_string()), Ok(p));
        }
    }

    /// Function templates: never panic; an accepted template renders every valid
    /// action to a name Lambda accepts — within 64 characters unless it is an ARN —
    /// and only an ARN or qualified name can ever fail to render.
    #[test]
    fn function_templates_render_lambda_names(
        s in soup(TEMPLATE_WORDS, 8),
        path in action_path(),
        package in segment(),
    ) {
        for has_package in [false, true] {
            let Ok(t) = FunctionTemplate::parse(&s, has_package) else { continue };
            prop_assert_eq!(t.as_str(), s.as_str());
            let mut path = path.clone();
            path.package = has_package.then(|| package.clone());
            match t.render(&path) {
                Ok(name) => {
                    prop_assert_eq!(validate_function_name(&name), Ok(()));
                    if !name.contains(':') {
                        prop_assert!(name.len() <= MAX_FUNCTION_NAME, "{}", name);
                    }
                }
                Err(e) => prop_assert!(s.contains(':'), "{} cannot render {}: {}", s, path, e),
            }
        }
    }

    /// One function per action (an Architecture Invariant): a template naming every
    /// segment never renders two different actions to one function, whether the names
    /// are short or shortened with a hash — one tenant can never run another's code.
    #[test]
    fn function_names_are_injective(
        t in separated_template(),
        a in (tight_segment(), tight_segment(), tight_segment()),
        b in (tight_segment(), tight_segment(), tight_segment()),
    ) {
        let template = FunctionTemplate::parse(&t, true);
        prop_assert!(template.is_ok(), "{}: {:?}", t, template);
        let template = template.unwrap();
        prop_assert!(template.uses(TemplateSegment::Namespace) && template.uses(TemplateSegment::Package) && template.uses(TemplateSegment::Action));
        let a = ActionPath::new(&a.0, Some(&a.1), &a.2);
        let b = ActionPath::new(&b.0, Some(&b.1), &b.2);
        let (na, nb) = (template.render(&a), template.render(&b));
        prop_assert!(na.is_ok() && nb.is_ok(), "{:?} {:?}", na, nb);
        prop_assert_eq!(a == b, na == nb, "{} and {} both render {:?}", a, b, na);
    }

    /// Segment escaping is reversible and never yields `-`, which is what keeps
    /// rendered names injective; it at most triples the length.
    #[test]
    fn escaped_segments_decode_back(s in prop_oneof![segment(), ".{0,40}"]) {
        let e = escape_segment(&s);
        prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{}", e);
        prop_assert!(e.len() <= 3 * s.len());
        prop_assert_eq!(unescape(&e), Some(s.into_bytes()));
    }

    /// Trusted-proxy networks (they decide whose `X-Forwarded-*` is believed): never
    /// panic; a network contains its own address, `/0` every address of its family.
    #[test]
    fn networks_contain_their_address(
        ip in any::<std::net::IpAddr>(),
        prefix in prop::option::of(0u16..300),
        other in any::<std::net::IpAddr>(),
        noise in soup(CIDR_WORDS, 4),
    ) {
        let _ = Cidr::parse(&noise).map(|c| c.contains(other));
        let text = match prefix {
            Some(p) => format!("{ip}/{p}"),
            None => ip.to_string(),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match Cidr::parse(&text) {
            Ok(c) => {
                prop_assert!(prefix.is_none_or(|p| p <= max));
                // A network written as an IPv4-mapped IPv6 address matches nothing:
                // peers are read as IPv4, such networks are not (docs/reliability.md).
                let mapped = matches!(ip, std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
                prop_assert!(mapped || c.contains(ip));
                if prefix == Some(0) {
                    prop_assert_eq!(c.contains(other), ip.is_ipv4() == other.to_canonical().is_ipv4());
                }
            }
            Err(_) => prop_assert!(prefix.is_some_and(|p| p > max)),
        }
    }
}

// ---------------------------------------------------------------------------------
// Invoke queries and bodies, activation list queries
// ---------------------------------------------------------------------------------

const QUERY_WORDS: &[&str] = &[
    "blocking",
    "result",
    "timeout",
    "=",
    "&",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "TRUE",
    "Yes",
    "60000",
    "60001",
    "-5",
    "0x10",
    "1e3",
    "%74rue",
    "bl%6Fcking",
];

const TRUE_WORDS: &[&str] = &["true", "yes", "on", "1"];
const FALSE_WORDS: &[&str] = &["false", "no", "off", "0", ""];

/// A Boolean as a client may spell it: any accepted word, in any case.
fn spelled_bool(value: bool, word: usize, case: u32) -> String {
    let words = if value { TRUE_WORDS } else { FALSE_WORDS };
    words[word % words.len()]
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if case >> (i % 32) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Bodies that nest deeper than any parser should follow.
fn deep_json() -> BoxedStrategy<Vec<u8>> {
    (
        prop::sample::select(&["[", "{\"a\":", "[{\"a\":"][..]),
        1usize..20_000,
    )
        .prop_map(|(open, depth)| open.repeat(depth).into_bytes())
        .boxed()
}

const JSON_WORDS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"a\"",
    "\"error\"",
    "null",
    "true",
    "-0",
    "1e999",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"\\",
    "0.",
    "01",
];

const LIST_WORDS: &[&str] = &[
    "skip",
    "limit",
    "count",
    "docs",
    "name",
    "since",
    "upto",
    "=",
    "&",
    "true",
    "0",
    "200",
    "201",
    "pkg/act",
    "a//b",
    "a/b/c",
    "%2F",
    "-9223372036854775808",
];

proptest! {
    #![proptest_config(config())]

    /// Invoke query strings: never panic; an accepted one waits a positive time no
    /// longer than the deployment's maximum; a refused one is a 400 whose text (which
    /// echoes the value) stays within a constant of the query's size.
    #[test]
    fn invoke_queries_never_panic(
        q in soup(QUERY_WORDS, 16),
        max_wait in prop_oneof![Just(60_000u64), 1u64..=u64::MAX],
    ) {
        match parse_query_with(Some(&q), max_wait) {
            Ok(o) => prop_assert!(!o.wait.is_zero() && o.wait <= Duration::from_millis(max_wait)),
            Err(e) => {
                prop_assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
                prop_assert!(e.message.len() <= 2 * q.len() + 200, "{}", e.message);
            }
        }
    }

    /// Every spelling the controller accepts means what it says, whatever the
    /// percent-encoding, order or other parameters, and the first occurrence of a
    /// parameter wins over later ones.
    #[test]
    fn invoke_queries_round_trip(
        blocking in any::<bool>(),
        result in any::<bool>(),
        timeout in prop::option::of(1u64..=60_000),
        words in (any::<usize>(), any::<usize>(), any::<u32>(), any::<u32>()),
        mask in prop::collection::vec(any::<bool>(), 1..8),
        order in Just(vec![0usize, 1, 2]).prop_shuffle(),
        noise in prop::collection::vec(("x[a-z]{0,6}", "[a-z0-9]{0,8}"), 0..3),
    ) {
        let values = [
            ("blocking", spelled_bool(blocking, words.0, words.2)),
            ("result", spelled_bool(result, words.1, words.3)),
            ("timeout", timeout.map(|t| t.to_string()).unwrap_or_default()),
        ];
        let mut pairs: Vec<String> = noise.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for i in order {
            let (k, v) = &values[i];
            if *k != "timeout" || timeout.is_some() {
                pairs.push(format!("{}={}", spell(k, &mask), spell(v, &mask)));
            }
        }
        pairs.push("blocking=maybe&result=perhaps".into());
        if timeout.is_some() {
            pairs.push("timeout=-1".into());
        }
        let o = parse_query_with(Some(&pairs.join("&")), 60_000);
        prop_assert!(o.is_ok(), "{}: {:?}", pairs.join("&"), o.map_err(|e| e.message));
        let o = o.unwrap();
        prop_assert_eq!((o.blocking, o.result), (blocking, result));
        prop_assert_eq!(o.wait, Duration::from_millis(timeout.unwrap_or(60_000)));
    }

    /// Invoke bodies: never panic on any bytes, however deeply nested; accepted means
    /// a JSON object (or nothing); the error text never echoes the body; memory is
    /// bounded by the body's size.
    #[test]
    fn invoke_bodies_never_panic(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        soup(JSON_WORDS, 32).prop_map(String::into_bytes),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        deep_json(),
    ]) {
        let (parsed, peak) = meter::peak(|| parse_body(&body));
        prop_assert!(peak <= alloc_bound(body.len()), "{} heap bytes for {} bytes", peak, body.len());
        match parsed {
            Ok(m) if body.is_empty() => prop_assert!(m.is_empty()),
            Ok(m) => prop_assert_eq!(serde_json::from_slice::<Value>(&body).ok(), Some(Value::Object(m))),
            Err(e) => {
                prop_assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
                prop_assert!(e.message.len() <= 200, "{}", e.message);
            }
        }
    }

    /// Every JSON object a client sends reaches the action unchanged.
    #[test]
    fn invoke_bodies_round_trip(entries in prop::collection::vec((json_key(), json_value()), 0..8)) {
        let object: Map<String, Value> = entries.into_iter().collect();
        let body = serde_json::to_vec(&object).unwrap();
        prop_assert_eq!(parse_body(&body).map_err(|e| e.message), Ok(object));
    }

    /// Activation list queries: never panic; an explicit page size is within the
    /// deployment's maximum, the name filter is one or two valid segments, and
    /// `count` and `docs` never come together.
    #[test]
    fn list_queries_never_panic(
        q in soup(LIST_WORDS, 16),
        max in prop_oneof![Just(list_query::MAX_LIMIT), 1u64..=10_000],
    ) {
        match list_query::parse_with(Some(&q), max) {
            Ok(l) => {
                prop_assert!(l.limit >= 1);
                prop_assert!(l.limit <= max || l.limit == list_query::DEFAULT_LIMIT);
                prop_assert!(l.skip <= i32::MAX as u64);
                prop_assert!(!(l.count && l.docs));
                if let Some(name) = &l.name {
                    let segments: Vec<&str> = name.split('/').collect();
                    prop_assert!((1..=2).contains(&segments.len()));
                    prop_assert!(segments.iter().all(|s| validate_segment(s).is_ok()), "{}", name);
                }
            }
            Err(e) => prop_assert!(e.status.is_client_error()),
        }
    }

    /// Every list query a client can write reads back as meant, in any spelling.
    #[test]
    fn list_queries_round_trip(
        skip in prop::option::of(0u64..=i32::MAX as u64),
        limit in prop::option::of(0u64..=200),
        mode in 0u8..3,
        name in prop::option::of((segment(), prop::option::of(segment()))),
        since in prop::option::of(any::<i64>()),
        upto in prop::option::of(any::<i64>()),
        mask in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let name = name.map(|(a, b)| match b {
            Some(b) => format!("{a}/{b}"),
            None => a,
        });
        let mut pairs = Vec::new();
        let mut add = |k: &str, v: String| pairs.push(format!("{}={}", spell(k, &mask), spell(&v, &mask)));
        if let Some(s) = skip { add("skip", s.to_string()); }
        if let Some(l) = limit { add("limit", l.to_string()); }
        if mode == 1 { add("count", "true".into()); }
        if mode == 2 { add("docs", "yes".into()); }
        if let Some(n) = &name { add("name", n.clone()); }
        if let Some(s) = since { add("since", s.to_string()); }
        if let Some(u) = upto { add("upto", u.to_string()); }
        let q = pairs.join("&");
        let l = list_query::parse(Some(&q));
        prop_assert!(l.is_ok(), "{}: {:?}", q, l.map_err(|e| e.message));
        let l = l.unwrap();
        prop_assert_eq!(l.skip, skip.unwrap_or(0));
        prop_assert_eq!(l.limit, match limit {
            None => list_query::DEFAULT_LIMIT,
            Some(0) => list_query::MAX_LIMIT,
            Some(n) => n,
        });
        prop_assert_eq!((l.count, l.docs), (mode == 1, mode == 2));
        prop_assert_eq!(l.name, name);
        prop_assert_eq!((l.since, l.upto), (since, upto));
    }
}

// ---------------------------------------------------------------------------------
// The Authorization header and bearer tokens
// ---------------------------------------------------------------------------------

const AUTH_WORDS: &[&str] = &[
    "Basic",
    "basic",
    "BASIC",
    "Bearer",
    "bearer",
    " ",
    "  ",
    "=",
    "==",
    "dXNlcjpwYXNz",
    "Og==",
    "Og",
    "YTpi",
    "eyJhbGciOiJIUzI1NiJ9",
    ".",
    "-",
    "_",
    "~",
    "+",
    "/",
];

/// `Basic` and base64 of something close to `uuid:key`: keys of about 64 characters,
/// colons anywhere, padding or not, blanks around.
fn basic_like() -> BoxedStrategy<Vec<u8>> {
    (
        prop::sample::select(&["Basic", "basic", "BASIC", "Bearer"][..]),
        soup(AUTH_WORDS, 3),
        ".{60,68}",
        any::<bool>(),
        prop::sample::select(&["", " ", "  ", "\t"][..]),
    )
        .prop_map(|(scheme, uuid, key, pad, blank)| {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{uuid}:{key}"));
            let token = if pad {
                encoded.as_str()
            } else {
                encoded.trim_end_matches('=')
            };
            format!("{blank}{scheme} {token}{blank}").into_bytes()
        })
        .boxed()
}

fn authorization(value: http::HeaderValue) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    headers
}

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "owl";
const SECRET: &[u8] = b"an HMAC secret of more than thirty-two bytes, for tests only";

/// A validator for HS256 tokens signed with `SECRET`, namespace in `ns`, subject in
/// `sub` — a static key, so validation never waits on the network.
static VALIDATOR: LazyLock<JwtValidator> = LazyLock::new(|| {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), SECRET).expect("secret written");
    JwtValidator::new(&JwtConfig {
        issuers: vec![ISSUER.into()],
        audiences: vec![AUDIENCE.into()],
        algorithms: vec![jsonwebtoken::Algorithm::HS256],
        keys: JwtKeySource::SecretFile(file.path().to_path_buf()),
        leeway: Duration::from_secs(30),
        namespace_claim: "ns".into(),
        subject_claim: Some("sub".into()),
        jwks_ttl: Duration::from_secs(300),
        jwks_min_refresh: Duration::from_secs(10),
        service_keys_file: None,
        exchange_on_proxy: false,
    })
    .expect("validator")
});

fn validate(token: &str) -> Result<owl::auth::jwt::TokenIdentity, JwtError> {
    VALIDATOR
        .validate(token)
        .now_or_never()
        .expect("a static key never waits")
}

fn sign(claims: &Value, alg: jsonwebtoken::Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("signed")
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims of every shape: usually valid, sometimes of the wrong type, absent, or at
/// the edges of their ranges.
fn claims() -> BoxedStrategy<Value> {
    let now = now_secs();
    let time = move |valid: i64| {
        prop_oneof![
            6 => Just(json!(valid)),
            1 => any::<i64>().prop_map(Value::from),
            1 => json_number().prop_map(Value::Number),
            1 => Just(json!("tomorrow")),
        ]
        .boxed()
    };
    object_of(vec![
        (
            "iss",
            prop_oneof![
                4 => Just(json!(ISSUER)),
                1 => Just(json!([ISSUER])),
                1 => str_value(json_string()),
            ]
            .boxed(),
        ),
        (
            "aud",
            prop_oneof![
                3 => Just(json!(AUDIENCE)),
                2 => Just(json!(["x", AUDIENCE])),
                1 => Just(json!([1, null])),
                1 => str_value(json_string()),
            ]
            .boxed(),
        ),
        ("exp", time(now + 3600)),
        ("nbf", time(now - 60)),
        (
            "ns",
            prop_oneof![4 => str_value(segment()), 1 => str_value(json_string())].boxed(),
        ),
        ("sub", str_value(json_string())),
    ])
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const JWT_WORDS: &[&str] = &[
    "eyJhbGciOiJub25lIn0",
    "eyJhbGciOiJIUzI1NiJ9",
    "e30",
    ".",
    "..",
    "=",
    "-",
    "_",
    "+",
    "/",
];

/// Tokens nobody signed with the key: garbage, `alg: none`, other algorithms,
/// `crit`, bad `kid`s, over-long tokens.
fn forged_token() -> BoxedStrategy<String> {
    let header = object_of(vec![
        (
            "alg",
            prop::sample::select(
                &[
                    "none", "HS256", "HS384", "RS256", "ES256", "EdDSA", "hs256", "",
                ][..],
            )
            .prop_map(Value::from)
            .boxed(),
        ),
        ("typ", Just(json!("JWT")).boxed()),
        ("kid", str_value(json_string())),
        ("crit", Just(json!(["exp"])).boxed()),
    ]);
    prop_oneof![
        soup(JWT_WORDS, 12),
        (header, claims(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(h, c, sig)| {
            format!(
                "{}.{}.{}",
                b64url(&serde_json::to_vec(&h).unwrap()),
                b64url(&serde_json::to_vec(&c).unwrap()),
                b64url(&sig)
            )
        }),
        (1usize..3).prop_map(|n| format!("{}.e30.", "e".repeat(n * 40_000))),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config())]

    /// The `Authorization` header, any bytes, bearer tokens on or off: never panics;
    /// Basic credentials that parse carry a 64-character key and the very header they
    /// came in; everything refused is a 401.
    #[test]
    fn authorization_headers_never_panic(
        raw in prop_oneof![
            soup(AUTH_WORDS, 12).prop_map(String::into_bytes),
            prop::collection::vec(prop_oneof![9 => 0x20u8..0x7f, 1 => 0x80u8..=0xff], 0..96),
            basic_like(),
        ],
        bearer in any::<bool>(),
    ) {
        let Ok(value) = http::HeaderValue::from_bytes(&raw) else { return Ok(()) };
        match Caller::from_headers(&authorization(value.clone()), bearer) {
            Ok(Caller::Basic(c)) => {
                prop_assert_eq!(c.key().chars().count(), KEY_LENGTH);
                prop_assert!(!c.uuid.contains(':'));
                prop_assert_eq!(c.authorization(), &value);
                prop_assert_eq!(c.api_key(), format!("{}:{}", c.uuid, c.key()));
            }
            Ok(Caller::Bearer(t)) => {
                prop_assert!(bearer);
                prop_assert!(!t.token().is_empty() && t.token().len() <= raw.len());
            }
            Err(e) => prop_assert_eq!(e.status, http::StatusCode::UNAUTHORIZED),
        }
    }

    /// Every OpenWhisk key is read back exactly — uuid and key — whatever the padding,
    /// the scheme's case or surrounding blanks, and hashes the same each way (one
    /// cache entry per key, whatever the spelling).
    #[test]
    fn basic_credentials_round_trip(
        uuid in "[^:]{0,40}",
        key in ".{64}",
        pad in any::<bool>(),
        scheme in prop::sample::select(&["Basic", "basic", "BASIC", "bAsIc"][..]),
        blank in prop::sample::select(&["", " ", "  "][..]),
    ) {
        use base64::Engine;
        let api_key = format!("{uuid}:{key}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&api_key);
        let token = if pad { encoded.as_str() } else { encoded.trim_end_matches('=') };
        let value = http::HeaderValue::from_str(&format!("{blank}{scheme} {token}{blank}")).unwrap();
        let c = Credentials::from_headers(&authorization(value));
        prop_assert!(c.is_ok(), "{:?}", c.map_err(|e| e.message));
        let c = c.unwrap();
        prop_assert_eq!(&c.uuid, &uuid);
        prop_assert_eq!(c.key(), key.as_str());
        prop_assert_eq!(c.api_key(), api_key.clone());
        let again = Credentials::from_api_key(&api_key);
        prop_assert!(again.is_some());
        let again = again.unwrap();
        prop_assert_eq!(again.hash(), c.hash());
    }

    /// A `uuid:key` string from a keys file: never panics; what parses renders back
    /// to the same string.
    #[test]
    fn api_keys_render_back(s in prop_oneof![soup(AUTH_WORDS, 8), "[a-z]{0,8}:.{60,68}"]) {
        if let Some(c) = Credentials::from_api_key(&s) {
            prop_assert_eq!(c.api_key(), s);
        }
    }

    /// Bearer tokens are taken verbatim when enabled, and are no credentials at all
    /// (401 "requires authentication") when not.
    #[test]
    fn bearer_tokens_round_trip(
        token in "[!-~]{1,200}",
        scheme in prop::sample::select(&["Bearer", "bearer", "BEARER"][..]),
    ) {
        let headers = authorization(http::HeaderValue::from_str(&format!("{scheme} {token}")).unwrap());
        match Caller::from_headers(&headers, true) {
            Ok(Caller::Bearer(t)) => prop_assert_eq!(t.token(), token.as_str()),
            other => prop_assert!(false, "{:?}", other.map_err(|e| e.message)),
        }
        prop_assert!(Caller::from_headers(&headers, false).is_err());
    }

    /// Tokens signed with the right key but carrying any claims at all: never panic;
    /// an accepted token names a valid namespace, the configured issuer and audience,
    /// a non-empty subject, and has not expired.
    #[test]
    fn signed_tokens_with_any_claims(claims in claims()) {
        let token = sign(&claims, jsonwebtoken::Algorithm::HS256, SECRET);
        if let Ok(id) = validate(&token) {
            prop_assert_eq!(Some(id.namespace.as_str()), claims["ns"].as_str());
            prop_assert!(validate_segment(&id.namespace).is_ok());
            prop_assert_eq!(&claims["iss"], &json!(ISSUER));
            prop_assert!(claims["aud"] == json!(AUDIENCE) || claims["aud"].as_array().is_some_and(|a| a.contains(&json!(AUDIENCE))));
            prop_assert_eq!(Some(id.subject.as_str()), claims["sub"].as_str());
            prop_assert!(!id.subject.is_empty());
            let exp = claims["exp"].as_f64();
            prop_assert!(exp.is_some_and(|e| e + 30.0 >= now_secs() as f64), "exp {:?}", claims["exp"]);
        }
    }

    /// A valid token's identity is read back exactly; the same claims signed with
    /// another key, or with an algorithm not configured, are refused for that reason.
    #[test]
    fn valid_tokens_round_trip(
        ns in segment(),
        sub in "[!-~]{1,40}",
        extra in prop::collection::vec(("x[a-z]{0,6}", json_value()), 0..3),
    ) {
        let mut claims: Map<String, Value> = extra.into_iter().collect();
        claims.insert("iss".into(), json!(ISSUER));
        claims.insert("aud".into(), json!(AUDIENCE));
        claims.insert("exp".into(), json!(now_secs() + 3600));
        claims.insert("ns".into(), json!(ns));
        claims.insert("sub".into(), json!(sub));
        let claims = Value::Object(claims);
        let id = validate(&sign(&claims, jsonwebtoken::Algorithm::HS256, SECRET));
        prop_assert!(id.is_ok(), "{:?}", id);
        let id = id.unwrap();
        prop_assert_eq!((id.namespace, id.subject), (ns, sub));
        prop_assert_eq!(
            validate(&sign(&claims, jsonwebtoken::Algorithm::HS256, b"another secret, just as long as the first")),
            Err(JwtError::BadSignature)
        );
        prop_assert_eq!(
            validate(&sign(&claims, jsonwebtoken::Algorithm::HS384, SECRET)),
            Err(JwtError::AlgorithmNotAllowed)
        );
    }

    /// Any token not signed with the key is refused, and nothing in it makes the
    /// validator panic.
    #[test]
    fn forged_tokens_are_refused(token in forged_token()) {
        prop_assert!(validate(&token).is_err());
    }
}

// ---------------------------------------------------------------------------------
// Lambda's answers and log tails
// ---------------------------------------------------------------------------------

const LEVELS: &[&str] = &[
    "INFO", "ERROR", "WARN", "WARNING", "DEBUG", "FATAL", "CRITICAL", "",
];

const TAIL_WORDS: &[&str] = &[
    "START RequestId:",
    "END RequestId:",
    "REPORT RequestId:",
    "INIT_START ",
    "\tDuration: ",
    "\tInit Duration: ",
    " ms",
    "ms",
    "\t",
    "[ERROR]",
    "2026-01-02T03:04:05.100Z",
    "\r",
];

/// RFC 3339 timestamps, including the edges of the representable range: years 0000
/// and 9999 with offsets that push them past it, leap seconds, nine fraction digits.
fn rfc3339() -> BoxedStrategy<String> {
    let offset = prop_oneof![
        Just("Z".to_string()),
        Just("z".to_string()),
        (any::<bool>(), 0u32..=23, 0u32..=59)
            .prop_map(|(plus, h, m)| format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' })),
    ];
    let date = prop_oneof![
        3 => (0u32..=9999, 1u32..=12, 1u32..=31),
        1 => prop_oneof![Just((9999, 12, 31)), Just((0, 1, 1))],
    ];
    (
        date,
        (0u32..=23, 0u32..=59, 0u32..=60),
        prop::option::of("[0-9]{1,9}"),
        offset,
    )
        .prop_map(|((y, mo, d), (h, mi, s), fraction, offset)| {
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}{offset}")
        })
        .boxed()
}

/// One line of a Lambda log tail: the Node.js and Python runtimes' formats, Lambda's
/// own START / END / REPORT / INIT_START lines, and anything the function printed.
fn tail_line() -> BoxedStrategy<String> {
    let request_id = "[0-9a-f-]{0,36}";
    prop_oneof![
        (
            rfc3339(),
            request_id,
            prop::sample::select(LEVELS),
            ".{0,40}"
        )
            .prop_map(|(ts, id, level, text)| format!("{ts}\t{id}\t{level}\t{text}")),
        (
            prop::sample::select(LEVELS),
            rfc3339(),
            request_id,
            ".{0,40}"
        )
            .prop_map(|(level, ts, id, text)| format!("[{level}]\t{ts}\t{id}\t{text}")),
        (json_number(), prop::option::of(json_number())).prop_map(|(d, init)| {
            let init = init
                .map(|i| format!("Init Duration: {i} ms\t"))
                .unwrap_or_default();
            format!("REPORT RequestId: r\tDuration: {d} ms\tBilled Duration: 1 ms\t{init}")
        }),
        Just("START RequestId: r Version: $LATEST".to_string()),
        Just("END RequestId: r".to_string()),
        ".{0,60}",
        soup(TAIL_WORDS, 8),
    ]
    .boxed()
}

/// A log tail: a few lines, sometimes after filler that makes it a full 4 KB tail
/// whose first line was cut.
fn log_tail() -> BoxedStrategy<String> {
    (
        prop::collection::vec(tail_line(), 0..12),
        prop_oneof![3 => Just(0usize), 1 => 1usize..6000],
        prop::sample::select(&["\n", "\r\n"][..]),
    )
        .prop_map(|(lines, filler, eol)| {
            let mut tail = "x".repeat(filler);
            if filler > 0 {
                tail.push_str(eol);
            }
            tail.push_str(&lines.join(eol));
            tail
        })
        .boxed()
}

/// What a function (the tenant's code) or Lambda may put in an Invoke payload.
fn lambda_payload() -> BoxedStrategy<Vec<u8>> {
    let error_object = object_of(vec![
        (
            "errorType",
            str_value(prop::sample::select(WORDS).prop_map(str::to_string).boxed()),
        ),
        ("errorMessage", str_value(json_string())),
        ("trace", json_value()),
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        error_object.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        soup(JSON_WORDS, 16).prop_map(String::into_bytes),
    ]
    .boxed()
}

fn utf16_len(bytes: &[u8]) -> u64 {
    String::from_utf8_lossy(bytes).encode_utf16().count() as u64
}

fn some_time() -> BoxedStrategy<OffsetDateTime> {
    (0i64..4_102_444_800)
        .prop_map(|s| OffsetDateTime::from_unix_timestamp(s).expect("in range"))
        .boxed()
}

proptest! {
    #![proptest_config(config())]

    /// The log tail is the function's output, i.e. written by the tenant: never
    /// panics; every line it yields is one input line plus OpenWhisk's fixed prefix,
    /// never more lines than it was given (plus the truncation notice), and a full
    /// tail always says it was cut.
    #[test]
    fn log_tails_are_bounded(tail in log_tail(), now in some_time()) {
        let (parsed, peak) = meter::peak(|| parse_tail(&tail, now));
        prop_assert!(peak <= alloc_bound(tail.len()), "{} heap bytes for {} bytes", peak, tail.len());
        let longest = tail.lines().map(str::len).max().unwrap_or(0).max(100);
        prop_assert!(parsed.lines.len() <= tail.lines().count() + 1);
        for line in &parsed.lines {
            prop_assert!(line.len() <= longest + 40, "{:?}", line);
        }
        if tail.len() >= TAIL_LIMIT {
            prop_assert!(parsed.lines.last().is_some_and(|l| l.contains("Logs were truncated")));
        }
    }

    /// The REPORT line's figures are read back exactly: they become the activation's
    /// duration and its `initTime`.
    #[test]
    fn report_durations_round_trip(duration in 0.0f64..1e7, init in prop::option::of(0.0f64..1e6)) {
        let d = format!("{duration:.2}");
        let i = init.map(|i| format!("{i:.2}"));
        let tail = format!(
            "START RequestId: r Version: $LATEST\nEND RequestId: r\nREPORT RequestId: r\tDuration: {d} ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\t{}\n",
            i.as_ref().map(|i| format!("Init Duration: {i} ms\t")).unwrap_or_default()
        );
        let parsed = parse_tail(&tail, OffsetDateTime::UNIX_EPOCH);
        prop_assert_eq!(parsed.duration_ms, Some(d.parse::<f64>().unwrap()));
        prop_assert_eq!(parsed.init_ms, i.map(|i| i.parse::<f64>().unwrap()));
        prop_assert!(parsed.lines.is_empty());
    }

    /// Lambda's answer, whatever the function returned: never panics; the activation
    /// always has a result; a time-out is only ever read from a function error; an
    /// answer over the truncation limit is cut; success is exactly a JSON object
    /// without `error`, or an array; the result is bounded by the payload's size.
    #[test]
    fn lambda_answers_are_classified(
        payload in lambda_payload(),
        function_error in prop::option::of(prop::sample::select(&["Unhandled", "Handled", ""][..])),
        tail in prop::option::of(log_tail()),
        limit_ms in any::<u64>(),
        truncation in prop_oneof![0usize..256, Just(owl::lambda::outcome::TRUNCATION_LIMIT)],
        now in some_time(),
    ) {
        let reply = LambdaReply {
            payload: bytes::Bytes::from(payload.clone()),
            function_error: function_error.map(str::to_string),
            log_tail: tail.clone(),
            executed_version: None,
        };
        let (run, peak) = meter::peak(|| interpret_with(&reply, limit_ms, truncation, now));
        let input = payload.len() + tail.as_ref().map_or(0, String::len);
        prop_assert!(peak <= alloc_bound(input), "{} heap bytes for {} bytes", peak, input);
        let result = run.response.result.clone();
        prop_assert!(result.is_some());
        let result = result.unwrap();
        prop_assert!(serialized_len(&result) <= 6 * payload.len() + 512);
        if run.timed_out {
            prop_assert!(function_error.is_some());
        }
        if function_error.is_none() {
            prop_assert_eq!(run.response.size, Some(utf16_len(&payload)));
            let status = run.response.status_code;
            if payload.len() > truncation {
                prop_assert_eq!(status, StatusCode::ApplicationError);
            } else {
                match serde_json::from_slice::<Value>(&payload) {
                    Ok(Value::Object(o)) => match o.get("error") {
                        Some(e) => {
                            prop_assert_eq!(status, StatusCode::ApplicationError);
                            prop_assert_eq!(result, json!({ "error": e }));
                        }
                        None => {
                            prop_assert_eq!(status, StatusCode::Success);
                            prop_assert_eq!(result, Value::Object(o));
                        }
                    },
                    Ok(a @ Value::Array(_)) => {
                        prop_assert_eq!(status, StatusCode::Success);
                        prop_assert_eq!(result, a);
                    }
                    _ => prop_assert_eq!(status, StatusCode::DeveloperError),
                }
            }
        } else {
            prop_assert_ne!(run.response.status_code, StatusCode::Success);
        }
    }
}

// ---------------------------------------------------------------------------------
// Documents from the controller and CouchDB
// ---------------------------------------------------------------------------------

fn activation() -> BoxedStrategy<Activation> {
    let response = (
        0u64..4,
        prop::option::of(json_value()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(code, result, size)| ActivationResponse {
            status_code: StatusCode::from_code(code).expect("0..4 are codes"),
            result,
            size,
        });
    (
        (segment(), segment(), segment(), activation_id()),
        (epoch_ms(), epoch_ms(), prop::option::of(activation_id())),
        response,
        prop::collection::vec(".{0,40}", 0..4),
        "[0-9]\\.[0-9]\\.[0-9]{1,2}",
        prop::collection::vec((json_string(), json_value()), 0..4),
    )
        .prop_map(
            |(
                (namespace, name, subject, id),
                (start, end, cause),
                response,
                logs,
                version,
                annotations,
            )| {
                Activation {
                    duration_ms: None,
                    namespace,
                    name,
                    subject,
                    activation_id: id.parse().expect("generated ids are valid"),
                    start,
                    end,
                    cause,
                    response,
                    logs,
                    version,
                    publish: false,
                    annotations: annotations
                        .into_iter()
                        .map(|(key, value)| Annotation { key, value })
                        .collect(),
                }
            },
        )
        .boxed()
}

fn sync_parameters() -> BoxedStrategy<Vec<owl::sync::action::Parameter>> {
    prop::collection::vec(
        ("[ab]{1,2}", json_value(), any::<bool>(), any::<bool>()).prop_map(
            |(key, value, init, encrypted)| owl::sync::action::Parameter {
                key,
                value,
                init,
                encrypted,
            },
        ),
        0..8,
    )
    .boxed()
}

const NAMESPACES: &[&str] = &["alice", "bob"];
const PACKAGES: &[&str] = &["p", "q"];
const DOC_IDS: &[&str] = &[
    "alice/p",
    "alice/q",
    "bob/p",
    "bob/q",
    "alice/a",
    "bob/a",
    "alice/p/a",
    "alice/q/a",
    "bob/p/a",
    "bob/q/a",
];

/// The whisks database of two namespaces, `alice` and `bob`, each with packages `p`
/// and `q` and actions `a`: each document usually there and of its type, published or
/// not, bindings to any package (cycles too); sometimes of the other type, of no type,
/// garbage, or missing.
/// Parameters whose values do not matter, only their names and order.
fn small_parameters() -> BoxedStrategy<Value> {
    prop::collection::vec(
        ("[ab]", any::<i8>()).prop_map(|(key, value)| json!({"key": key, "value": value})),
        0..3,
    )
    .prop_map(Value::Array)
    .boxed()
}

fn whisks_database() -> BoxedStrategy<Map<String, Value>> {
    let package = |ns: &'static str, name: &'static str| {
        object_of(vec![
            ("entityType", Just(json!("package")).boxed()),
            ("namespace", Just(json!(ns)).boxed()),
            ("name", Just(json!(name)).boxed()),
            (
                "publish",
                prop_oneof![3 => Just(json!(true)), 1 => Just(json!(false))].boxed(),
            ),
            (
                "binding",
                prop_oneof![
                    2 => Just(json!({})),
                    1 => (
                        prop::sample::select(NAMESPACES),
                        prop::sample::select(PACKAGES)
                    )
                        .prop_map(|(ns, name)| json!({"namespace": ns, "name": name})),
                ]
                .boxed(),
            ),
            ("parameters", small_parameters()),
        ])
    };
    let action = |ns: &'static str| {
        object_of(vec![
            ("entityType", Just(json!("action")).boxed()),
            ("namespace", Just(json!(ns)).boxed()),
            ("name", Just(json!("a")).boxed()),
            ("exec", Just(json!({"kind": "nodejs:20"})).boxed()),
            ("parameters", small_parameters()),
        ])
    };
    let documents: Vec<BoxedStrategy<Option<(String, Value)>>> = DOC_IDS
        .iter()
        .map(|&id| {
            let (typed, other) = match id.split('/').collect::<Vec<_>>().as_slice() {
                [ns, "a"] => (action(ns), package(ns, "a")),
                [ns, pkg] => (package(ns, pkg), action(ns)),
                _ => (
                    action(&id[..id.rfind('/').unwrap_or(0)]),
                    package("alice", "p"),
                ),
            };
            prop_oneof![
                6 => typed.prop_map(move |d| Some((id.to_string(), d))),
                1 => other.prop_map(move |d| Some((id.to_string(), d))),
                1 => json_value().prop_map(move |d| Some((id.to_string(), d))),
                1 => Just(None),
            ]
            .boxed()
        })
        .collect();
    documents
        .prop_map(|docs| docs.into_iter().flatten().collect())
        .boxed()
}

/// True for a package document another namespace may use: a package (by type, or by
/// shape for old documents), not a binding, published.
fn public_package(doc: &Value) -> bool {
    let is_package = match doc.get("entityType").and_then(Value::as_str) {
        Some("package") => doc["name"].is_string() && doc["namespace"].is_string(),
        Some(_) => false,
        None => doc.get("binding").is_some(),
    };
    let is_binding = doc
        .get("binding")
        .and_then(Value::as_object)
        .is_some_and(|b| {
            b.get("namespace").is_some_and(Value::is_string)
                && b.get("name").is_some_and(Value::is_string)
        });
    is_package && !is_binding && doc.get("publish").and_then(Value::as_bool) == Some(true)
}

proptest! {
    #![proptest_config(config())]

    /// Activations read back from the controller (fallback, lists), CouchDB or the
    /// journal: any shape never panics; an activation that parses renders to every
    /// JSON form, within a bound of its document's size, without panicking.
    #[test]
    fn activation_documents_never_panic(doc in prop_oneof![activation_doc(), json_value()]) {
        let n = serialized_len(&doc);
        let (parsed, peak) = meter::peak(|| Activation::from_json(&doc));
        prop_assert!(peak <= alloc_bound(n), "{} heap bytes for {} bytes", peak, n);
        let _ = ActivationResponse::from_json(&doc);
        if let Some(a) = parsed {
            let _ = a.duration();
            for form in [a.to_api_json(true), a.to_api_json(false), a.to_document_json(0), a.to_summary_json()] {
                prop_assert!(serialized_len(&form) <= 2 * n + 1024);
            }
        }
    }

    /// An activation reads back equal from both of its JSON forms: records survive
    /// the journal, the store and the API unchanged.
    #[test]
    fn activations_round_trip(a in activation(), updated in any::<i64>()) {
        prop_assert_eq!(Activation::from_json(&a.to_document_json(updated)), Some(a.clone()));
        prop_assert_eq!(Activation::from_json(&a.to_api_json(true)), Some(a));
    }

    /// Action metadata from the controller or the whisks database: never panics; what
    /// parses keeps the document's name and no more parameters or annotations than it
    /// listed.
    #[test]
    fn action_metadata_never_panics(doc in prop_oneof![whisk_doc(), json_value()]) {
        let n = serialized_len(&doc);
        let (parsed, peak) = meter::peak(|| ActionMetadata::from_json(&doc));
        prop_assert!(peak <= alloc_bound(n), "{} heap bytes for {} bytes", peak, n);
        if let Some(m) = parsed {
            prop_assert_eq!(Some(m.path.action.as_str()), doc["name"].as_str());
            prop_assert!(m.parameters.len() <= doc["parameters"].as_array().map_or(0, Vec::len));
            prop_assert!(m.annotations.len() <= doc["annotations"].as_array().map_or(0, Vec::len));
            let _ = m.provides_api_key();
        }
    }

    /// What `owl sync` reads of actions and packages: never panics; an inlined
    /// attachment decodes to no more bytes than its name holds; reading the code and
    /// merging a package's parameters never panic.
    #[test]
    fn sync_documents_never_panic(doc in prop_oneof![whisk_doc(), json_value()]) {
        let n = serialized_len(&doc);
        let (parsed, peak) = meter::peak(|| ActionDoc::from_json(&doc));
        prop_assert!(peak <= alloc_bound(n), "{} heap bytes for {} bytes", peak, n);
        if let Some(a) = parsed {
            prop_assert_eq!(&a.id, &a.path.to_path_string());
            if let CodeRef::Bytes(b) = &a.code {
                prop_assert!(b.len() <= n);
            }
            let _ = code_from(a.binary, &a.code, None);
            let _ = a.package_id();
            prop_assert!(a.inherit(&a.parameters).parameters.len() <= a.parameters.len());
        }
        if let Some(p) = PackageDoc::from_json(&doc) {
            prop_assert!(p.id.len() <= n);
            prop_assert!(p.parameters.len() <= doc["parameters"].as_array().map_or(0, Vec::len));
        }
    }

    /// Code inlined in an attachment's name (`mem:` and base64url, padded or not)
    /// reads back byte for byte, as a zip or as UTF-8 text.
    #[test]
    fn inlined_code_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..512), pad in any::<bool>(), binary in any::<bool>()) {
        use base64::Engine;
        let data = if pad {
            base64::engine::general_purpose::URL_SAFE.encode(&bytes)
        } else {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes)
        };
        let doc = json!({
            "entityType": "action", "namespace": "guest", "name": "a",
            "exec": {"kind": "nodejs:20", "binary": binary, "code": {"attachmentName": format!("mem:{data}")}},
        });
        let a = ActionDoc::from_json(&doc);
        prop_assert!(a.is_some());
        let a = a.unwrap();
        prop_assert_eq!(&a.code, &CodeRef::Bytes(bytes.clone()));
        match code_from(binary, &a.code, None) {
            Ok(owl::sync::action::Code::Zip(z)) => prop_assert!(binary && z == bytes),
            Ok(owl::sync::action::Code::Text(t)) => prop_assert!(!binary && t.into_bytes() == bytes),
            Err(_) => prop_assert!(!binary && String::from_utf8(bytes).is_err()),
        }
    }

    /// Parameter merge (package beneath action, as OpenWhisk's invoker sees them):
    /// names stay unique, the last value of a name in the action wins, then the last
    /// in the package; nothing is invented.
    #[test]
    fn parameter_merge_is_a_map_union(under in sync_parameters(), over in sync_parameters()) {
        let merged = merge_parameters(&under, &over);
        let mut keys: Vec<&str> = merged.iter().map(|p| p.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        prop_assert_eq!(keys.len(), merged.len());
        for p in &merged {
            let expected = over.iter().rev().chain(under.iter().rev()).find(|q| q.key == p.key);
            prop_assert_eq!(Some(p), expected);
        }
        for q in under.iter().chain(&over) {
            prop_assert!(merged.iter().any(|p| p.key == q.key));
        }
    }

    /// Entitlement over documents tenants shape themselves (their packages and
    /// bindings, cycles included): never panics, ends within a bounded number of
    /// lookups, and another namespace's action is reachable only through a published
    /// package that is not a binding.
    #[test]
    fn entitlement_never_leaks(
        docs in whisks_database(),
        caller in prop::sample::select(NAMESPACES),
        ns in prop::sample::select(NAMESPACES),
        package in prop::option::of(prop::sample::select(PACKAGES)),
    ) {
        let path = ActionPath::new(ns, package, "a");
        let lookups = Cell::new(0usize);
        let get = |id: String| {
            lookups.set(lookups.get() + 1);
            std::future::ready(Ok::<Doc, owl::error::WhiskError>(entitlement::lookup_in(&docs, &id)))
        };
        let resolved = entitlement::resolve(caller, &path, get).now_or_never();
        prop_assert!(resolved.is_some(), "resolution waited on ready lookups");
        prop_assert!(lookups.get() <= 21, "{} lookups", lookups.get());
        if caller != ns && matches!(resolved, Some(Ok(Ok(_)))) {
            prop_assert!(package.is_some(), "{} reached {}'s default package", caller, ns);
            let id = format!("{ns}/{}", package.unwrap_or_default());
            prop_assert!(public_package(&docs[&id]), "{} reached {} through {:?}", caller, path, docs.get(&id));
        }
    }
}

// ---------------------------------------------------------------------------------
// Regression cases: inputs the properties found, kept as plain tests.
// ---------------------------------------------------------------------------------

/// Found by `durations_never_panic`: a duration too large for `Duration` made
/// `Duration::from_secs_f64` panic — in `owl policy check`, in a reload, in
/// `owl bench --duration`.
#[test]
fn huge_durations_are_refused_not_a_panic() {
    assert_eq!(parse_duration("310000000000000000m"), None);
    assert_eq!(parse_duration("99999999999999999999s"), None);
    let policy = "[controller]\nurl = \"http://127.0.0.1:3233\"\n\n[[route]]\naction = \"guest/a\"\nfunction = \"f\"\ntimeout = \"99999999999999999999s\"\n";
    let errors = Policy::parse(policy, "p.toml", Path::new("/nonexistent")).unwrap_err();
    assert_eq!(errors.diagnostics.len(), 1, "{errors}");
    assert_eq!(errors.diagnostics[0].line, 7, "{errors}");
    assert!(
        errors.diagnostics[0].message.contains("is not a duration"),
        "{errors}"
    );
}

/// Found by `activations_round_trip`: `end - start` overflowed (a panic in debug
/// builds, a wrapped duration in release) for times a document can hold.
#[test]
fn activation_durations_saturate() {
    let doc = json!({
        "namespace": "a", "name": "a", "activationId": "0aaaaaa0aa00a0aaaaa0aa00aa0a0a0a",
        "start": 605179862516409883i64, "end": -8618192174338365926i64,
        "response": {"statusCode": 0},
    });
    let a = Activation::from_json(&doc).unwrap();
    assert_eq!(a.duration(), Some(i64::MIN));
    assert_eq!(a.to_api_json(false)["duration"], json!(i64::MIN));
    assert_eq!(a.to_summary_json()["duration"], json!(i64::MIN));
    let mut late = a.clone();
    (late.start, late.end) = (i64::MIN, i64::MAX);
    assert_eq!(late.to_document_json(0)["duration"], json!(i64::MAX));
}

/// Found by `log_tails_are_bounded` (its generator weights the edges of the date
/// range): a function's log line stamped `9999-12-31T23:59:59-00:01` is past the last
/// instant `time` holds in UTC, and formatting it panicked.
#[test]
fn log_lines_past_the_last_instant_are_clamped() {
    for (line, stamp) in [
        (
            "9999-12-31T23:59:59-00:01\tr\tINFO\thello",
            "9999-12-31T23:59:59.999999999Z",
        ),
        (
            "[ERROR]\t9999-12-31T23:00:00-23:59\tr\thello",
            "9999-12-31T23:59:59.999999999Z",
        ),
    ] {
        let parsed = parse_tail(line, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(parsed.lines.len(), 1, "{line}");
        assert!(parsed.lines[0].starts_with(stamp), "{:?}", parsed.lines);
        assert!(parsed.lines[0].ends_with(": hello"), "{:?}", parsed.lines);
    }
}

// ---------------------------------------------------------------------------------
// Web actions: the arguments of a web call and the transcoding of a result
// ---------------------------------------------------------------------------------

const WEB_CONTENT_TYPES: &[&str] = &[
    "",
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/cloudevents+json",
    "application/foo; charset=latin1",
    "text/plain",
    "text/html; charset=\"weird",
    "image/png",
    "multipart/form-data; boundary=x",
    "x",
    ";;;",
    "a/b; q",
];

proptest! {
    #![proptest_config(config())]

    /// A web call's arguments: never panic on any body, query, path and content type,
    /// however deeply nested the JSON; memory bounded by the input; an accepted call's
    /// arguments always carry the context OpenWhisk gives (`__ow_method`, headers,
    /// path) and, raw, the query and body.
    #[test]
    fn web_arguments_never_panic(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            soup(JSON_WORDS, 32).prop_map(String::into_bytes),
            deep_json(),
        ],
        content_type in prop::sample::select(WEB_CONTENT_TYPES),
        query in prop_oneof![Just(None), ".{0,64}".prop_map(Some), soup(&["a", "=", "&", "%", "%2", "%zz", "+", "__ow_body", "ü"][..], 16).prop_map(Some)],
        path in prop_oneof![Just(String::new()), "(/[a-z%0-9 ]{0,6}){0,4}"],
        raw in any::<bool>(),
    ) {
        let mut headers = http::HeaderMap::new();
        if !content_type.is_empty() {
            headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        }
        let method = http::Method::POST;
        let req = owl::whisk::web::WebRequest {
            method: &method,
            headers: &headers,
            path: &path,
            query: query.as_deref(),
            body: &body,
            user: None,
        };
        let input = body.len() + query.as_ref().map_or(0, String::len) + path.len();
        let (built, peak) = meter::peak(|| owl::whisk::web::build_arguments(&req, raw, &|k| k == "fixed"));
        prop_assert!(peak <= alloc_bound(input), "{} heap bytes for {} bytes", peak, input);
        match built {
            Ok(args) => {
                prop_assert_eq!(&args["__ow_method"], &json!("post"));
                prop_assert!(args["__ow_headers"].is_object());
                prop_assert!(args["__ow_path"].is_string());
                if raw {
                    prop_assert!(args["__ow_query"].is_string() && args.contains_key("__ow_body"));
                } else {
                    prop_assert!(!args.contains_key("fixed"), "a final parameter was overridden");
                }
            }
            Err(owl::whisk::web::ArgumentError::NotAllowed) => prop_assert!(!raw),
            // spray-json's message quotes the offending line and a caret under it, as
            // OpenWhisk's does: bounded by twice the body.
            Err(owl::whisk::web::ArgumentError::Malformed(m)) => prop_assert!(m.len() <= 2 * body.len() + 512, "{} for {}", m.len(), body.len()),
        }
    }

    /// Transcoding any result by any extension never panics, and answers either a
    /// status between 100 and 999 or one of OpenWhisk's texts.
    #[test]
    fn web_results_transcode_without_panicking(
        result in prop_oneof![
            json_value(),
            object_of(vec![
                ("statusCode", prop_oneof![json_value(), (0i64..1200).prop_map(|c| json!(c)), "[0-9 x]{0,4}".prop_map(|s| json!(s))].boxed()),
                ("headers", prop_oneof![json_value(), prop::collection::vec(("[a-zA-Z-]{0,8}", json_value()), 0..4).prop_map(|v| Value::Object(v.into_iter().collect()))].boxed()),
                ("body", prop_oneof![json_value(), "[A-Za-z0-9+/=]{0,16}".prop_map(|s| json!(s))].boxed()),
            ]),
        ],
        ext in prop::sample::select(&["", ".json", ".html", ".svg", ".text", ".http"][..]),
        kind in 0u8..3,
    ) {
        use owl::whisk::web::{Outcome, split_extension, transcode};
        let (_, ext) = split_extension(&format!("a{ext}"));
        let outcome = match kind {
            0 => Outcome::Success(&result),
            1 => Outcome::ApplicationError(&result),
            _ => Outcome::DeveloperOrWhiskError,
        };
        match transcode(ext, outcome) {
            Ok(a) => prop_assert!((100..1000).contains(&a.status), "{}", a.status),
            Err(e) => prop_assert!(!e.message.is_empty() && (400..=500).contains(&e.status)),
        }
    }
}
