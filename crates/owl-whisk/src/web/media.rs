//! Media types as Pekko HTTP 1.1.0 (the version OpenWhisk pins, `settings.gradle:104`)
//! parses, classifies and renders them: the `Content-Type` grammar, the registry of
//! predefined types with their binary/charset kind, and `ContentType.toString`.
//!
//! Sources (apache/pekko-http v1.1.0): `MediaType.scala` (registry, lines 353-572;
//! `renderValue` 216-220; equality on `value`, 71-75), `ContentType.scala:75-135`,
//! `impl/model/parser/ContentTypeHeader.scala`, `CommonActions.scala:31-71`,
//! `CommonRules.scala` (`media-type`, `token`, `quoted-string`),
//! `HttpHeader.scala:87-108` and `HeaderParser.scala:60-73` (value preprocessing),
//! `HttpCharset.scala` (charset registry).

use std::collections::BTreeMap;

/// How Pekko classifies a media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `MediaType.Binary`: bytes, never a charset.
    Binary,
    /// `MediaType.WithFixedCharset`: text with a prescribed charset (UTF-8 for all
    /// predefined ones), rendered without a charset parameter.
    Fixed,
    /// `MediaType.WithOpenCharset`: text whose charset the content type names.
    Open,
}

/// A parsed media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaType {
    /// Main type, lower case.
    pub(crate) main: String,
    /// Subtype, lower case.
    pub(crate) sub: String,
    /// `MediaType.value`: the registered spelling, or `main/sub` plus the non-charset
    /// parameters (sorted) for custom types and types with parameters.
    pub(crate) value: String,
    pub(crate) kind: Kind,
}

impl MediaType {
    /// `WhiskWebActionsApi.isJsonFamily` [WebActions.scala:311-313]: exactly
    /// `application/json`, or a `value` ending in `+json`.
    pub(crate) fn is_json_family(&self) -> bool {
        self.is_application_json() || self.value.ends_with("+json")
    }

    /// `== MediaTypes.application/json` (equality is on `value`, ignoring case).
    pub(crate) fn is_application_json(&self) -> bool {
        self.value.eq_ignore_ascii_case("application/json")
    }

    /// `== MediaTypes.application/x-www-form-urlencoded`.
    pub(crate) fn is_form(&self) -> bool {
        self.value
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    }

    /// The registered `text/html` (the `.http` default for string bodies, WA:344).
    pub(crate) fn text_html() -> Self {
        registered("text", "html").expect("registered")
    }

    /// The registered `application/json` (the `.http` default for JSON bodies, WA:319).
    pub(crate) fn application_json() -> Self {
        registered("application", "json").expect("registered")
    }

    /// The registered `application/octet-stream`: Pekko's content type for an entity
    /// sent without (a valid) `Content-Type` [HttpMessageParser.scala:391-394].
    pub(crate) fn octet_stream() -> Self {
        registered("application", "octet-stream").expect("registered")
    }
}

/// A parsed `Content-Type` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    pub(crate) media: MediaType,
    /// The canonical name of the `charset` parameter's charset, when one was given.
    pub(crate) charset: Option<String>,
}

impl ContentType {
    /// `ContentType.toString`: the media type's value, plus `; charset=<name>` for an
    /// open-charset type that has one (`ContentType.WithCharset`); binary and
    /// fixed-charset types never render a charset.
    pub(crate) fn render(&self) -> String {
        match (self.media.kind, &self.charset) {
            (Kind::Open, Some(cs)) => format!("{}; charset={cs}", self.media.value),
            _ => self.media.value.clone(),
        }
    }

    /// `ContentType(mediaType, () => HttpCharsets.UTF-8)` rendered [WebActions.scala:345;
    /// ContentType.scala:117-122]: open-charset types get `; charset=UTF-8`.
    pub(crate) fn render_with_utf8(media: &MediaType) -> String {
        match media.kind {
            Kind::Open => format!("{}; charset=UTF-8", media.value),
            Kind::Binary | Kind::Fixed => media.value.clone(),
        }
    }
}

/// Parses a `Content-Type` header value as `ContentType.parse` does (`None` where Pekko
/// answers `Left(errors)`).
pub(crate) fn parse_content_type(value: &str) -> Option<ContentType> {
    let chars: Vec<char> = field_value(value)?.chars().collect();
    let mut p = Grammar { s: &chars, i: 0 };
    let main = p.token()?;
    if !p.eat('/') {
        return None;
    }
    let sub = p.token()?;
    let mut params = Vec::new();
    loop {
        let mark = p.i;
        match p.parameter() {
            Some(kv) => params.push(kv),
            None => {
                p.i = mark;
                break;
            }
        }
    }
    if p.i != chars.len() {
        return None;
    }
    let mut charset = None;
    let mut others = BTreeMap::new();
    for (k, v) in params {
        if k.eq_ignore_ascii_case("charset") {
            charset = Some(charset_name(&v));
        } else {
            others.insert(k, v);
        }
    }
    Some(ContentType {
        media: media_type(&main, &sub, charset.is_some(), &others),
        charset,
    })
}

/// Binary-ness of `media_type` (`main/sub`) as Pekko's registry decides it
/// [CommonActions.scala:31-66]: `multipart/*` and registered binary types are binary,
/// registered text types are not, and an unregistered type is binary unless its
/// `Content-Type` carried a `charset` parameter (`customBinary` vs
/// `customWithOpenCharset`).
pub(crate) fn is_binary(media_type: &str, has_charset_param: bool) -> bool {
    let (main, sub) = media_type.split_once('/').unwrap_or((media_type, ""));
    media_type_kind(main, sub, has_charset_param) == Kind::Binary
}

fn media_type_kind(main: &str, sub: &str, charset_defined: bool) -> Kind {
    if main.eq_ignore_ascii_case("multipart") {
        return Kind::Binary;
    }
    match registered(main, sub) {
        Some(m) => m.kind,
        None if charset_defined => Kind::Open,
        None => Kind::Binary,
    }
}

/// `CommonActions.getMediaType` [CommonActions.scala:31-66], `withParams` included.
fn media_type(
    main: &str,
    sub: &str,
    charset_defined: bool,
    params: &BTreeMap<String, String>,
) -> MediaType {
    let main = main.to_ascii_lowercase();
    let sub = sub.to_ascii_lowercase();
    let kind = media_type_kind(&main, &sub, charset_defined);
    let value = match registered(&main, &sub) {
        Some(m) if params.is_empty() && main != "multipart" => m.value,
        _ => render_value(&main, &sub, params),
    };
    MediaType {
        main,
        sub,
        value,
        kind,
    }
}

/// `MediaType.renderValue` [MediaType.scala:216-220]: `main/sub; k=v…`, values quoted
/// unless they are non-empty tokens (`~~#`).
fn render_value(main: &str, sub: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = format!("{main}/{sub}");
    for (k, v) in params {
        out.push_str("; ");
        out.push_str(k);
        out.push('=');
        if !v.is_empty() && v.chars().all(is_tchar) {
            out.push_str(v);
        } else {
            out.push('"');
            for c in v.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    out
}

fn registered(main: &str, sub: &str) -> Option<MediaType> {
    let main_l = main.to_ascii_lowercase();
    let sub_l = sub.to_ascii_lowercase();
    REGISTRY.iter().find_map(|&(value, kind)| {
        let (m, s) = value.split_once('/')?;
        (m == main_l && s.eq_ignore_ascii_case(&sub_l)).then(|| MediaType {
            main: main_l.clone(),
            sub: sub_l.clone(),
            value: value.to_string(),
            kind,
        })
    })
}

/// `HttpCharsets.getForKeyCaseInsensitive(name).getOrElse(HttpCharset.custom(name))`
/// rendered: the registered name for a known name or alias, else the name as given
/// [HttpCharset.scala, `HttpCharsets`; CommonActions.scala:68-71].
fn charset_name(name: &str) -> String {
    let lower = name.to_lowercase();
    CHARSETS
        .iter()
        .find(|(canonical, aliases)| {
            canonical.to_lowercase() == lower || aliases.iter().any(|a| a.to_lowercase() == lower)
        })
        .map(|(canonical, _)| (*canonical).to_string())
        .unwrap_or_else(|| name.to_string())
}

/// RFC 7230 `tchar` as Pekko defines it: visible ASCII minus the separators
/// [CharacterClasses.scala:39-41].
pub fn is_tchar(c: char) -> bool {
    ('\x21'..='\x7e').contains(&c) && !"()<>@,;:\\\"/[]?={}".contains(c)
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `VCHAR | obs-text` (`obs-text` = U+0080..=U+FFFE, which includes both halves of a
/// surrogate pair in Java's UTF-16).
fn is_field_value_char(c: char) -> bool {
    ('\x21'..='\x7e').contains(&c) || (c >= '\u{80}' && c != '\u{ffff}')
}

/// `header-field-value` [HeaderParser.scala:60-73]: leading and trailing whitespace
/// (with obsolete line folding) dropped, inner whitespace runs collapsed to one space;
/// any other character (controls) fails.
fn field_value(s: &str) -> Option<String> {
    let c: Vec<char> = s.chars().collect();
    let fws = |i: &mut usize| {
        while *i < c.len() && is_wsp(c[*i]) {
            *i += 1;
        }
        while *i + 2 < c.len() && c[*i] == '\r' && c[*i + 1] == '\n' && is_wsp(c[*i + 2]) {
            *i += 2;
            while *i < c.len() && is_wsp(c[*i]) {
                *i += 1;
            }
        }
    };
    let mut i = 0;
    fws(&mut i);
    let mut out = String::new();
    loop {
        let start = i;
        while i < c.len() && is_field_value_char(c[i]) {
            out.push(c[i]);
            i += 1;
        }
        if i == start {
            break;
        }
        let ws = i;
        fws(&mut i);
        if i < c.len() && is_field_value_char(c[i]) {
            if i > ws {
                out.push(' ');
            }
        } else {
            break;
        }
    }
    fws(&mut i);
    (i == c.len()).then_some(out)
}

/// The `media-type` rule [CommonRules.scala:161-173] over a preprocessed value.
struct Grammar<'a> {
    s: &'a [char],
    i: usize,
}

impl Grammar<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn ows(&mut self) {
        while self.peek().is_some_and(is_wsp) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `token = capture(oneOrMore(tchar)) ~ OWS`.
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        let t: String = self.s[start..self.i].iter().collect();
        self.ows();
        Some(t)
    }

    /// `ws(';') ~ attribute ~ ws('=') ~ (token | quoted-string)`.
    fn parameter(&mut self) -> Option<(String, String)> {
        if !self.eat(';') {
            return None;
        }
        self.ows();
        let key = self.token()?;
        if !self.eat('=') {
            return None;
        }
        self.ows();
        let value = match self.token() {
            Some(t) => t,
            None => self.quoted_string()?,
        };
        Some((key, value))
    }

    fn quoted_string(&mut self) -> Option<String> {
        if !self.eat('"') {
            return None;
        }
        let mut out = String::new();
        loop {
            match self.peek()? {
                '"' => {
                    self.i += 1;
                    break;
                }
                '\\' => {
                    let c = *self.s.get(self.i + 1)?;
                    if !(is_wsp(c) || is_field_value_char(c)) {
                        return None;
                    }
                    out.push(c);
                    self.i += 2;
                }
                c if c == '\t'
                    || c == ' '
                    || c == '\x21'
                    || ('\x23'..='\x5b').contains(&c)
                    || ('\x5d'..='\x7e').contains(&c)
                    || (c >= '\u{80}' && c != '\u{ffff}') =>
                {
                    out.push(c);
                    self.i += 1;
                }
                _ => return None,
            }
        }
        self.ows();
        Some(out)
    }
}

/// Pekko's charset registry: canonical name and aliases [HttpCharset.scala, `HttpCharsets`].
const CHARSETS: &[(&str, &[&str])] = &[
    (
        "US-ASCII",
        &[
            "iso-ir-6",
            "ANSI_X3.4-1968",
            "ANSI_X3.4-1986",
            "ISO_646.irv:1991",
            "ASCII",
            "ISO646-US",
            "us",
            "IBM367",
            "cp367",
            "csASCII",
        ],
    ),
    (
        "ISO-8859-1",
        &[
            "iso-ir-100",
            "ISO_8859-1",
            "latin1",
            "l1",
            "IBM819",
            "CP819",
            "csISOLatin1",
        ],
    ),
    ("UTF-8", &["UTF8"]),
    ("UTF-16", &["UTF16"]),
    ("UTF-16BE", &[]),
    ("UTF-16LE", &[]),
    (
        "ISO-8859-2",
        &["iso-ir-101", "ISO_8859-2", "latin2", "l2", "csISOLatin2"],
    ),
    (
        "ISO-8859-3",
        &["iso-ir-109", "ISO_8859-3", "latin3", "l3", "csISOLatin3"],
    ),
    (
        "ISO-8859-4",
        &["iso-ir-110", "ISO_8859-4", "latin4", "l4", "csISOLatin4"],
    ),
    (
        "ISO-8859-5",
        &["iso-ir-144", "ISO_8859-5", "cyrillic", "csISOLatinCyrillic"],
    ),
    (
        "ISO-8859-6",
        &[
            "iso-ir-127",
            "ISO_8859-6",
            "ECMA-114",
            "ASMO-708",
            "arabic",
            "csISOLatinArabic",
        ],
    ),
    (
        "ISO-8859-7",
        &[
            "iso-ir-126",
            "ISO_8859-7",
            "ELOT_928",
            "ECMA-118",
            "greek",
            "greek8",
            "csISOLatinGreek",
        ],
    ),
    (
        "ISO-8859-8",
        &["iso-ir-138", "ISO_8859-8", "hebrew", "csISOLatinHebrew"],
    ),
    (
        "ISO-8859-9",
        &["iso-ir-148", "ISO_8859-9", "latin5", "l5", "csISOLatin5"],
    ),
    (
        "ISO-8859-10",
        &["iso-ir-157", "l6", "ISO_8859-10", "csISOLatin6", "latin6"],
    ),
    ("UTF-32", &["UTF32"]),
    ("UTF-32BE", &[]),
    ("UTF-32LE", &[]),
    ("windows-1250", &["cp1250", "cp5346"]),
    ("windows-1251", &["cp1251", "cp5347"]),
    ("windows-1252", &["cp1252", "cp5348"]),
    ("windows-1253", &["cp1253", "cp5349"]),
    ("windows-1254", &["cp1254", "cp5350"]),
    ("windows-1257", &["cp1257", "cp5353"]),
];

/// Pekko's predefined media types with their kind, generated from
/// `MediaType.scala:367-572` (`abin`/`aud`/`img`/`msg`/`vid`/`fnt` → binary, `awfc`/`txtfc`
/// → fixed charset, `awoc`/`txt` → open charset). `image/svgz` is not in the registry
/// (only its file extension is registered); `multipart/*` is handled apart.
const REGISTRY: &[(&str, Kind)] = &[
    ("application/atom+xml", Kind::Open),
    ("application/base64", Kind::Open),
    ("application/cbor", Kind::Binary),
    ("application/excel", Kind::Binary),
    ("application/font-woff", Kind::Binary),
    ("application/gnutar", Kind::Binary),
    ("application/java-archive", Kind::Binary),
    ("application/javascript", Kind::Open),
    ("application/json", Kind::Fixed),
    ("application/json-patch+json", Kind::Fixed),
    ("application/merge-patch+json", Kind::Fixed),
    ("application/problem+json", Kind::Fixed),
    ("application/grpc+proto", Kind::Binary),
    ("application/lha", Kind::Binary),
    ("application/lzx", Kind::Binary),
    ("application/mspowerpoint", Kind::Binary),
    ("application/msword", Kind::Binary),
    ("application/octet-stream", Kind::Binary),
    ("application/pdf", Kind::Binary),
    ("application/postscript", Kind::Binary),
    ("application/rss+xml", Kind::Open),
    ("application/soap+xml", Kind::Open),
    ("application/vnd.api+json", Kind::Fixed),
    ("application/vnd.google-earth.kml+xml", Kind::Open),
    ("application/vnd.google-earth.kmz", Kind::Binary),
    ("application/vnd.ms-excel", Kind::Binary),
    (
        "application/vnd.ms-excel.addin.macroEnabled.12",
        Kind::Binary,
    ),
    (
        "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
        Kind::Binary,
    ),
    (
        "application/vnd.ms-excel.sheet.macroEnabled.12",
        Kind::Binary,
    ),
    (
        "application/vnd.ms-excel.template.macroEnabled.12",
        Kind::Binary,
    ),
    ("application/vnd.ms-fontobject", Kind::Binary),
    ("application/vnd.ms-powerpoint", Kind::Binary),
    (
        "application/vnd.ms-powerpoint.addin.macroEnabled.12",
        Kind::Binary,
    ),
    (
        "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
        Kind::Binary,
    ),
    (
        "application/vnd.ms-powerpoint.slideshow.macroEnabled.12",
        Kind::Binary,
    ),
    (
        "application/vnd.ms-word.document.macroEnabled.12",
        Kind::Binary,
    ),
    (
        "application/vnd.ms-word.template.macroEnabled.12",
        Kind::Binary,
    ),
    ("application/vnd.oasis.opendocument.chart", Kind::Binary),
    ("application/vnd.oasis.opendocument.database", Kind::Binary),
    ("application/vnd.oasis.opendocument.formula", Kind::Binary),
    ("application/vnd.oasis.opendocument.graphics", Kind::Binary),
    ("application/vnd.oasis.opendocument.image", Kind::Binary),
    (
        "application/vnd.oasis.opendocument.presentation",
        Kind::Binary,
    ),
    (
        "application/vnd.oasis.opendocument.spreadsheet",
        Kind::Binary,
    ),
    ("application/vnd.oasis.opendocument.text", Kind::Binary),
    (
        "application/vnd.oasis.opendocument.text-master",
        Kind::Binary,
    ),
    ("application/vnd.oasis.opendocument.text-web", Kind::Binary),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Kind::Binary,
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.slide",
        Kind::Binary,
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
        Kind::Binary,
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.template",
        Kind::Binary,
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Kind::Binary,
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
        Kind::Binary,
    ),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Kind::Binary,
    ),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
        Kind::Binary,
    ),
    ("application/x-7z-compressed", Kind::Binary),
    ("application/x-ace-compressed", Kind::Binary),
    ("application/x-apple-diskimage", Kind::Binary),
    ("application/x-arc-compressed", Kind::Binary),
    ("application/x-bzip", Kind::Binary),
    ("application/x-bzip2", Kind::Binary),
    ("application/x-chrome-extension", Kind::Binary),
    ("application/x-compress", Kind::Binary),
    ("application/x-compressed", Kind::Binary),
    ("application/x-debian-package", Kind::Binary),
    ("application/x-dvi", Kind::Binary),
    ("application/x-font-truetype", Kind::Binary),
    ("application/x-font-opentype", Kind::Binary),
    ("application/x-gtar", Kind::Binary),
    ("application/x-gzip", Kind::Binary),
    ("application/x-latex", Kind::Open),
    ("application/x-rar-compressed", Kind::Binary),
    ("application/x-redhat-package-manager", Kind::Binary),
    ("application/x-shockwave-flash", Kind::Binary),
    ("application/x-tar", Kind::Binary),
    ("application/x-tex", Kind::Binary),
    ("application/x-texinfo", Kind::Binary),
    ("application/x-vrml", Kind::Open),
    ("application/x-www-form-urlencoded", Kind::Fixed),
    ("application/x-x509-ca-cert", Kind::Binary),
    ("application/x-xpinstall", Kind::Binary),
    ("application/xhtml+xml", Kind::Open),
    ("application/xml-dtd", Kind::Open),
    ("application/xml", Kind::Open),
    ("application/problem+xml", Kind::Open),
    ("application/zip", Kind::Binary),
    ("audio/aiff", Kind::Binary),
    ("audio/basic", Kind::Binary),
    ("audio/midi", Kind::Binary),
    ("audio/mod", Kind::Binary),
    ("audio/mpeg", Kind::Binary),
    ("audio/ogg", Kind::Binary),
    ("audio/voc", Kind::Binary),
    ("audio/vorbis", Kind::Binary),
    ("audio/voxware", Kind::Binary),
    ("audio/wav", Kind::Binary),
    ("audio/x-pn-realaudio", Kind::Binary),
    ("audio/x-psid", Kind::Binary),
    ("audio/xm", Kind::Binary),
    ("audio/webm", Kind::Binary),
    ("font/woff", Kind::Binary),
    ("font/woff2", Kind::Binary),
    ("image/gif", Kind::Binary),
    ("image/jpeg", Kind::Binary),
    ("image/pict", Kind::Binary),
    ("image/png", Kind::Binary),
    ("image/svg+xml", Kind::Binary),
    ("image/tiff", Kind::Binary),
    ("image/x-icon", Kind::Binary),
    ("image/x-ms-bmp", Kind::Binary),
    ("image/x-pcx", Kind::Binary),
    ("image/x-pict", Kind::Binary),
    ("image/x-quicktime", Kind::Binary),
    ("image/x-rgb", Kind::Binary),
    ("image/x-xbitmap", Kind::Binary),
    ("image/x-xpixmap", Kind::Binary),
    ("image/webp", Kind::Binary),
    ("message/http", Kind::Binary),
    ("message/delivery-status", Kind::Binary),
    ("message/rfc822", Kind::Binary),
    ("text/asp", Kind::Open),
    ("text/cache-manifest", Kind::Open),
    ("text/calendar", Kind::Open),
    ("text/css", Kind::Open),
    ("text/csv", Kind::Open),
    ("text/event-stream", Kind::Fixed),
    ("text/html", Kind::Open),
    ("text/markdown", Kind::Open),
    ("text/mcf", Kind::Open),
    ("text/plain", Kind::Open),
    ("text/richtext", Kind::Open),
    ("text/tab-separated-values", Kind::Open),
    ("text/uri-list", Kind::Open),
    ("text/vnd.wap.wml", Kind::Open),
    ("text/vnd.wap.wmlscript", Kind::Open),
    ("text/x-asm", Kind::Open),
    ("text/x-c", Kind::Open),
    ("text/x-component", Kind::Open),
    ("text/x-h", Kind::Open),
    ("text/x-java-source", Kind::Open),
    ("text/x-pascal", Kind::Open),
    ("text/x-script", Kind::Open),
    ("text/x-scriptcsh", Kind::Open),
    ("text/x-scriptelisp", Kind::Open),
    ("text/x-scriptksh", Kind::Open),
    ("text/x-scriptlisp", Kind::Open),
    ("text/x-scriptperl", Kind::Open),
    ("text/x-scriptperl-module", Kind::Open),
    ("text/x-scriptphyton", Kind::Open),
    ("text/x-scriptrexx", Kind::Open),
    ("text/x-scriptscheme", Kind::Open),
    ("text/x-scriptsh", Kind::Open),
    ("text/x-scripttcl", Kind::Open),
    ("text/x-scripttcsh", Kind::Open),
    ("text/x-scriptzsh", Kind::Open),
    ("text/x-server-parsed-html", Kind::Open),
    ("text/x-setext", Kind::Open),
    ("text/x-sgml", Kind::Open),
    ("text/x-speech", Kind::Open),
    ("text/x-uuencode", Kind::Open),
    ("text/x-vcalendar", Kind::Open),
    ("text/x-vcard", Kind::Open),
    ("text/xml", Kind::Open),
    ("video/avs-video", Kind::Binary),
    ("video/divx", Kind::Binary),
    ("video/gl", Kind::Binary),
    ("video/mp4", Kind::Binary),
    ("video/mpeg", Kind::Binary),
    ("video/ogg", Kind::Binary),
    ("video/quicktime", Kind::Binary),
    ("video/x-dv", Kind::Binary),
    ("video/x-flv", Kind::Binary),
    ("video/x-motion-jpeg", Kind::Binary),
    ("video/x-ms-asf", Kind::Binary),
    ("video/x-msvideo", Kind::Binary),
    ("video/x-sgi-movie", Kind::Binary),
    ("video/webm", Kind::Binary),
];
