//! Query strings, form bodies and paths as Pekko HTTP 1.1.0 decodes and re-renders them
//! (`Uri.scala`, `impl/model/parser/UriParser.scala:262-301`,
//! `impl/model/parser/CharacterClasses.scala:40-66`, `UriRendering` in `Uri.scala:1000-1070`).

/// One `key[=value]` pair; `None` is Pekko's `Query.EmptyValue` (a key without `=`).
pub(crate) type Pair = (String, Option<String>);

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes `s` (and `+` as space when `plus`) to UTF-8 text; undecodable bytes
/// become U+FFFD. A `%` not followed by two hex digits is kept as is (Pekko's server
/// rejects such request targets before routing; see [`query_pairs`]).
fn decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus => out.push(b' '),
            b'%' if i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some() => {
                out.push(hex(b[i + 1]).unwrap_or(0) << 4 | hex(b[i + 2]).unwrap_or(0));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `uri.query()` (relaxed mode) of the raw query string: pairs split at `&`, key and
/// value at the first `=`, `+` and `%XX` decoded as UTF-8 [UriParser.scala:268-301]. An
/// empty string has no pairs; otherwise every `&`-separated piece is a pair (so `a&`
/// is `a` and an empty key).
///
/// Lenient where Pekko is not: the controller's HTTP server parses the request target
/// in strict mode and answers 400 before routing when the query holds characters or
/// percent sequences it does not accept; here such characters pass through literally.
/// Whether such a request reaches the gateway is the HTTP server's business.
pub(crate) fn query_pairs(raw: &str) -> Vec<Pair> {
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split('&')
        .map(|piece| match piece.split_once('=') {
            Some((k, v)) => (decode(k, true), Some(decode(v, true))),
            None => (decode(piece, true), None),
        })
        .collect()
}

/// `strict-query-char-np`, the characters `Query.toString` leaves as they are:
/// unreserved, sub-delims other than `& = ; +`, and `@ : / ?`.
fn is_query_keep(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$'()*,@:/?".contains(c)
}

/// `pchar-base`, the characters `Path.toString` leaves as they are.
fn is_pchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=@:".contains(c)
}

/// `UriRendering.encode`: kept characters as they are, a space as `+` when
/// `spaces`, everything else as upper-case `%XX` of its UTF-8 bytes.
fn encode(out: &mut String, s: &str, keep: fn(char) -> bool, spaces: bool) {
    for c in s.chars() {
        if keep(c) {
            out.push(c);
        } else if c == ' ' && spaces {
            out.push('+');
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
}

/// `Query.toString` [Uri.scala:709, 1030-1044]: the parsed query re-rendered, which is
/// what raw web actions receive as `__ow_query` [WebActions.scala:124].
pub(crate) fn render_query(pairs: &[Pair]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(&mut out, k, is_query_keep, true);
        if let Some(v) = v {
            out.push('=');
            encode(&mut out, v, is_query_keep, true);
        }
    }
    out
}

/// `ctx.unmatchedPath.toString` [WebActions.scala:432; Uri.scala:588, 1020-1028]: each
/// segment percent-decoded (UTF-8) and re-encoded with `pchar-base` kept.
pub(crate) fn normalize_path(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, segment) in raw.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode(&mut out, &decode(segment, false), is_pchar, false);
    }
    out
}

/// Why a form body is not a query in Pekko's relaxed grammar, as the message of the
/// `IllegalArgumentException` the form unmarshaller throws
/// [PredefinedFromEntityUnmarshallers.scala:49-60]: `ErrorInfo.formatPretty` of
/// `Illegal query: <parboiled2 error> (line 1, column N)` and the error line with a caret.
///
/// The wording of the "expected" list is read off parboiled2 2.5.1's trace reporting
/// (`ErrorFormatter`, `RuleTrace.dropUnreportedPrefix`), not observed.
pub(crate) fn form_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let units: Vec<u16> = s.encode_utf16().collect();
    let chars: Vec<char> = s.chars().collect();
    // character index → UTF-16 index, for the column parboiled2 reports.
    let mut utf16_at = Vec::with_capacity(chars.len() + 1);
    let mut n = 0;
    for c in &chars {
        utf16_at.push(n);
        n += c.len_utf16();
    }
    utf16_at.push(n);
    let fail = |at: usize, expected: &str| -> String {
        let column = utf16_at[at] + 1;
        let problem = match chars.get(at) {
            None => "Unexpected end of input".to_string(),
            Some(c) => format!("Invalid input '{}'", parboiled_escape(*c)),
        };
        let line: String = char::decode_utf16(units.iter().copied().take_while(|&u| u != 0x0a))
            .map(|r| r.unwrap_or('?'))
            .collect();
        format!(
            "Illegal query: {problem}, expected {expected} (line 1, column {column}): {line}\n{}^",
            " ".repeat(column - 1)
        )
    };
    if chars.is_empty() {
        return Ok(Vec::new());
    }
    let is_vchar = |c: char| ('\x21'..='\x7e').contains(&c);
    let key_char = |c: char| is_vchar(c) && !"%&=#".contains(c);
    let value_char = |c: char| is_vchar(c) && !"%&#".contains(c);
    let mut pairs = Vec::new();
    let mut i = 0;
    loop {
        let pair_start = i;
        // the key part
        let key_start = i;
        while i < chars.len() && (chars[i] == '+' || key_char(chars[i]) || chars[i] == '%') {
            if chars[i] == '%' {
                pct(&chars, &mut i).map_err(|at| fail(at, "HEXDIG"))?;
            } else {
                i += 1;
            }
        }
        let key: String = chars[key_start..i].iter().collect();
        let mut value = String::new();
        let mut in_value = false;
        if chars.get(i) == Some(&'=') {
            i += 1;
            in_value = true;
            let value_start = i;
            while i < chars.len() && (chars[i] == '+' || value_char(chars[i]) || chars[i] == '%') {
                if chars[i] == '%' {
                    pct(&chars, &mut i).map_err(|at| fail(at, "HEXDIG"))?;
                } else {
                    i += 1;
                }
            }
            value = chars[value_start..i].iter().collect();
        }
        pairs.push((decode(&key, true), decode(&value, true)));
        match chars.get(i) {
            Some('&') => i += 1,
            None => return Ok(pairs),
            Some(_) => {
                let expected = if i == 0 {
                    "query or 'EOI'"
                } else if pair_start == i {
                    "keyValuePairs or 'EOI'"
                } else if in_value {
                    "'+', query-char, pct-encoded, '&' or 'EOI'"
                } else {
                    "'+', query-char, pct-encoded, '=', '&' or 'EOI'"
                };
                return Err(fail(i, expected));
            }
        }
    }
}

/// `pct-encoded = '%' HEXDIG HEXDIG` at `chars[*i]`; on failure the index of the
/// offending character.
fn pct(chars: &[char], i: &mut usize) -> Result<(), usize> {
    for k in 1..=2 {
        if !chars.get(*i + k).is_some_and(|c| c.is_ascii_hexdigit()) {
            return Err(*i + k);
        }
    }
    *i += 3;
    Ok(())
}

/// parboiled2 `CharUtils.escape(c)`.
fn parboiled_escape(c: char) -> String {
    match c {
        '\t' => "\\t".to_string(),
        '\r' => "\\r".to_string(),
        '\n' => "\\n".to_string(),
        '\u{ffff}' => "EOI".to_string(),
        c if (c as u32) <= 0x1f || (0x7f..=0x9f).contains(&(c as u32)) => {
            format!("\\u{:04x}", c as u32)
        }
        // a supplementary character is two Java chars; the first alone is a lone
        // surrogate, which Java's UTF-8 encoder writes as '?'
        c if c.len_utf16() == 2 => "?".to_string(),
        c => c.to_string(),
    }
}
