//! spray-json 1.3.5's printers, byte for byte, over serde_json values.
//!
//! * Member order. spray-json 1.3.5 builds every parsed object, and every object made
//!   with `JsObject(fields*)`, on an immutable `TreeMap` ordered by Scala's
//!   `Ordering[String]` (`String.compareTo`: UTF-16 code units)
//!   [spray-json `JsonParser.scala` `object`: `members(TreeMap.empty)`, `JsValue.scala`
//!   `JsObject.apply`; commit 855b35e "CVE-2018-18854 Use TreeMap instead of HashMap",
//!   first released in v1.3.5, the version OpenWhisk pins in
//!   `common/scala/build.gradle:49`]. Every object the web route prints is one of
//!   those: activation results reach the controller parsed (active ack or database),
//!   and the error body is `JsObject("error" -> …, "code" -> …)` [OW ErrorResponse.scala:306].
//!   So members print sorted by UTF-16 code units, whatever order the action wrote
//!   them in, and `{"error", "code"}` prints `code` first.
//! * Numbers. `JsNumber` holds a `scala.math.BigDecimal` made exactly from the text
//!   (`BigDecimal(chars)` = `exact`, Scala 2.12 `BigDecimal.scala:273`), printed with
//!   `sb.append(x)`, i.e. `java.math.BigDecimal.toString` [JsonPrinter.scala:49].
//! * Strings. Only `"`, `\` and characters below U+0020 are escaped; `\b \f \n \r \t`
//!   by name, the rest as `\u00xx` with lower-case hex [JsonPrinter.scala:55-105].

use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// Scala's `Ordering[String]`: lexicographic over UTF-16 code units. It differs from
/// Rust's byte order only between U+E000..=U+FFFF and supplementary characters.
pub(crate) fn utf16_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The members of `m` in the order spray-json prints them (see the module docs).
pub(crate) fn sorted_members(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut members: Vec<_> = m.iter().collect();
    members.sort_by(|a, b| utf16_cmp(a.0, b.0));
    members
}

/// spray-json 1.3.5 `PrettyPrinter` output of `value` as OpenWhisk's web route prints it
/// (design note §11; spray-json `PrettyPrinter.scala:25-69`): objects open with `{` and
/// a newline, one member per line indented two spaces deeper than the object as
/// `"key": value`, members separated by `,\n`, then a newline, the object's indent and
/// `}` (so an empty object is `{\n\n}`); arrays on one line as `[a, b]`; members sorted by
/// UTF-16 code units; numbers as `java.math.BigDecimal.toString` of the text (`1e10`
/// prints `1E+10`, `1.50` stays `1.50`, `-0` prints `0`).
pub fn pretty(value: &Value) -> String {
    let mut out = String::new();
    print_pretty(value, &mut out, 0);
    out
}

/// spray-json 1.3.5 `CompactPrinter` output of `value` [CompactPrinter.scala:24-49]: no
/// whitespace, members sorted as by [`pretty`], the same numbers and escapes. This is
/// the text OpenWhisk's own components exchange (e.g. the action arguments after the
/// controller's message to the invoker), and the body of Pekko rejections the
/// controller wraps [OW BasicHttpService.scala:192-199].
pub fn compact(value: &Value) -> String {
    let mut out = String::new();
    print_compact(value, &mut out);
    out
}

fn print_pretty(value: &Value, out: &mut String, indent: usize) {
    match value {
        Value::Object(m) => {
            out.push_str("{\n");
            for (i, (k, v)) in sorted_members(m).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                push_indent(out, indent + 2);
                print_string(k, out);
                out.push_str(": ");
                print_pretty(v, out, indent + 2);
            }
            out.push('\n');
            push_indent(out, indent);
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_pretty(v, out, indent);
            }
            out.push(']');
        }
        leaf => print_leaf(leaf, out),
    }
}

fn print_compact(value: &Value, out: &mut String) {
    match value {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, v)) in sorted_members(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                print_string(k, out);
                out.push(':');
                print_compact(v, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                print_compact(v, out);
            }
            out.push(']');
        }
        leaf => print_leaf(leaf, out),
    }
}

fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// `JsonPrinter.printLeaf` [JsonPrinter.scala:44-53].
fn print_leaf(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => print_string(s, out),
        Value::Array(_) | Value::Object(_) => unreachable!("not a leaf"),
    }
}

/// `JsonPrinter.printString` [JsonPrinter.scala:55-86, 97-105].
fn print_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number as spray-json prints it: `java.math.BigDecimal.toString` of the number
/// as parsed (the text serde_json kept, `arbitrary_precision`).
pub(crate) fn number_text(n: &Number) -> String {
    let text = n.to_string();
    java_decimal_string(&text).unwrap_or(text)
}

/// A decimal as `java.math.BigDecimal(String)` reads it: sign, unscaled digits without
/// leading zeros, scale. `None` where Java throws (no digits, scale outside `int`).
struct Decimal {
    negative: bool,
    /// The unscaled value's digits, no leading zeros ("0" for zero).
    coefficient: String,
    scale: i64,
}

fn parse_decimal(text: &str) -> Option<Decimal> {
    let b = text.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut digits = String::new();
    let mut fraction: i64 = 0;
    let mut seen_point = false;
    while i < b.len() {
        match b[i] {
            d @ b'0'..=b'9' => {
                digits.push(d as char);
                if seen_point {
                    fraction += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return None,
        }
        i += 1;
    }
    if digits.is_empty() {
        return None;
    }
    let mut exponent: i64 = 0;
    if i < b.len() {
        i += 1;
        let exponent_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        if i == b.len() {
            return None;
        }
        for &d in &b[i..] {
            if !d.is_ascii_digit() {
                return None;
            }
            exponent = exponent.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
            if exponent > i64::from(u32::MAX) {
                return None;
            }
        }
        if exponent_negative {
            exponent = -exponent;
        }
    }
    let scale = fraction - exponent;
    if scale < i64::from(i32::MIN) || scale > i64::from(i32::MAX) {
        return None;
    }
    let coefficient = digits.trim_start_matches('0');
    let coefficient = if coefficient.is_empty() {
        "0"
    } else {
        coefficient
    };
    Some(Decimal {
        negative,
        coefficient: coefficient.to_string(),
        scale,
    })
}

/// `new java.math.BigDecimal(text).toString()` (JDK `BigDecimal.layoutChars(true)`):
/// plain notation when the scale is not negative and the adjusted exponent is at least
/// -6, scientific (`1E+10`, `1.5E-7`) otherwise; a zero has no sign.
pub(crate) fn java_decimal_string(text: &str) -> Option<String> {
    let d = parse_decimal(text)?;
    let coeff = d.coefficient.as_str();
    let mut out = String::new();
    if d.negative && coeff != "0" {
        out.push('-');
    }
    if d.scale == 0 {
        out.push_str(coeff);
        return Some(out);
    }
    let len = coeff.len() as i64;
    let adjusted = -d.scale + (len - 1);
    if d.scale > 0 && adjusted >= -6 {
        let pad = d.scale - len;
        if pad >= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', pad as usize));
            out.push_str(coeff);
        } else {
            let point = (len - d.scale) as usize;
            out.push_str(&coeff[..point]);
            out.push('.');
            out.push_str(&coeff[point..]);
        }
    } else {
        out.push_str(&coeff[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&coeff[1..]);
        }
        if adjusted != 0 {
            out.push('E');
            if adjusted > 0 {
                out.push('+');
            }
            out.push_str(&adjusted.to_string());
        }
    }
    Some(out)
}

/// `scala.math.BigDecimal.toIntExact` (`java.math.BigDecimal.intValueExact`): the value
/// when it is whole and fits an `Int`, else `None` (Java throws).
pub(crate) fn java_int_exact(text: &str) -> Option<i32> {
    let d = parse_decimal(text)?;
    let coeff = d.coefficient.as_str();
    let whole: String = if coeff == "0" {
        "0".to_string()
    } else if d.scale > 0 {
        let scale = usize::try_from(d.scale).ok()?;
        if scale >= coeff.len() || !coeff[coeff.len() - scale..].bytes().all(|b| b == b'0') {
            return None;
        }
        coeff[..coeff.len() - scale].to_string()
    } else {
        let zeros = usize::try_from(-d.scale).ok()?;
        if coeff.len() + zeros > 11 {
            return None;
        }
        format!("{coeff}{}", "0".repeat(zeros))
    };
    let magnitude: i64 = whole.parse().ok()?;
    let value = if d.negative { -magnitude } else { magnitude };
    i32::try_from(value).ok()
}
