//! The JDK's base64 decoder and OpenWhisk's "looks like base64" test, as the `.http`
//! transcoder applies them to string bodies [WebActions.scala:349-355].

/// `java.util.Base64.getDecoder().decode(String)` (JDK `Base64.Decoder.decode0`, basic
/// alphabet): padding optional but, when present, complete; no whitespace or other
/// characters anywhere; a final unit of one character is an error; non-zero trailing
/// bits are accepted. `None` where Java throws `IllegalArgumentException`.
pub(crate) fn java_base64_decode(s: &str) -> Option<Vec<u8>> {
    // decode(String) reads the string as ISO-8859-1 bytes: anything beyond ASCII is
    // outside the alphabet either way.
    let src = s.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4 * 3 + 3);
    let mut bits: u32 = 0;
    let mut shift: i32 = 18;
    let mut sp = 0;
    while sp < src.len() {
        let b = src[sp];
        sp += 1;
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                // "=" alone, "x=" and "xx=" without its second "=" are wrong endings
                if shift == 6 && (sp == src.len() || src[sp] != b'=') || shift == 18 {
                    return None;
                }
                if shift == 6 {
                    sp += 1;
                }
                break;
            }
            _ => return None,
        };
        bits |= u32::from(v) << shift;
        shift -= 6;
        if shift < 0 {
            out.extend_from_slice(&[(bits >> 16) as u8, (bits >> 8) as u8, bits as u8]);
            shift = 18;
            bits = 0;
        }
    }
    match shift {
        6 => out.push((bits >> 16) as u8),
        0 => out.extend_from_slice(&[(bits >> 16) as u8, (bits >> 8) as u8]),
        12 => return None,
        _ => {}
    }
    // anything after the padding is an error
    (sp == src.len()).then_some(out)
}

/// `Exec.isBinaryCode` [OW common/scala/.../entity/Exec.scala:358-365]: after Java's
/// `trim` (which drops characters up to U+0020 at both ends), non-empty, a multiple of
/// four long and matching
/// `^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$`.
pub(crate) fn is_binary_code(s: &str) -> bool {
    let t = s.trim_matches(|c: char| c <= ' ');
    let b = t.as_bytes();
    if b.is_empty() || b.len() % 4 != 0 {
        return false;
    }
    let alpha = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let (body, last) = b.split_at(b.len() - 4);
    body.iter().all(|&c| alpha(c))
        && match last {
            [a, b, c, d] if alpha(*a) && alpha(*b) && alpha(*c) => alpha(*d) || *d == b'=',
            [a, b, b'=', b'='] => alpha(*a) && alpha(*b),
            _ => false,
        }
}
