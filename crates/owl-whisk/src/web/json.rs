//! spray-json 1.3.5's `JsonParser` over the bytes of a request body, as Pekko's
//! `SprayJsonByteStringParserInput` feeds it (spray-json `JsonParser.scala`; Pekko
//! `SprayJsonByteStringParserInput.scala`). Ported rather than delegated to serde_json
//! because the controller answers a body it cannot parse with the parser's own message
//! (`MalformedRequestContentRejection(e.getMessage)`, Pekko `MarshallingDirectives.scala:56`,
//! `RejectionHandler.scala:202-207`), and because the two parsers accept different
//! inputs (nesting up to 1000 levels, numbers up to 100 characters, lone surrogate
//! escapes).
//!
//! Values come out as the action would receive them after the controller's compact
//! printing: numbers as `BigDecimal.toString` of their text, lone UTF-16 surrogates
//! (which Java strings may hold) as `?` (Java's UTF-8 encoder's replacement).

use super::pretty::java_decimal_string;
use serde_json::{Map, Number, Value};

const EOI: u32 = 0xFFFF;
const ERROR_CHAR: u32 = 0xFFFD;
/// `JsonParserSettings.default.maxDepth`.
const MAX_DEPTH: usize = 1000;
/// `JsonParserSettings.default.maxNumberCharacters`.
const MAX_NUMBER_CHARACTERS: i64 = 100;

/// Parses `bytes` as one JSON value; `Err` carries `ParsingException.getMessage`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut p = Parser {
        input: bytes,
        cursor: -1,
        pending: None,
        cursor_char: 0,
        sb: Vec::new(),
    };
    p.cursor_char = p.next_char();
    p.ws();
    let v = p.value(MAX_DEPTH)?;
    p.require(EOI)?;
    Ok(v)
}

struct Parser<'a> {
    input: &'a [u8],
    /// `IndexedBytesParserInput._cursor`: the byte index of the current character (its
    /// last byte for a multi-byte one).
    cursor: i64,
    /// The low surrogate of a 4-byte sequence, returned by the next `next_utf8_char`.
    pending: Option<u32>,
    cursor_char: u32,
    /// UTF-16 code units of the string being read.
    sb: Vec<u16>,
}

type Step<T> = Result<T, String>;

impl Parser<'_> {
    fn len(&self) -> i64 {
        self.input.len() as i64
    }

    /// `nextChar`: the next byte as a character (Latin-1), or EOI.
    fn next_char(&mut self) -> u32 {
        self.cursor += 1;
        if self.cursor < self.len() {
            u32::from(self.input[self.cursor as usize])
        } else {
            EOI
        }
    }

    /// `nextUtf8Char`: the next UTF-16 code unit of the UTF-8 input; U+FFFD for a
    /// malformed sequence (whose announced length is consumed regardless).
    fn next_utf8_char(&mut self) -> u32 {
        if let Some(low) = self.pending.take() {
            return low;
        }
        self.cursor += 1;
        if self.cursor >= self.len() {
            return EOI;
        }
        let first = self.input[self.cursor as usize];
        let more = match first {
            0x00..=0x7f => return u32::from(first),
            b if b & 0xe0 == 0xc0 => 1,
            b if b & 0xf0 == 0xe0 => 2,
            b if b & 0xf8 == 0xf0 => 3,
            _ => return ERROR_CHAR,
        };
        let mut buf = vec![first];
        for _ in 0..more {
            self.cursor += 1;
            if self.cursor < self.len() {
                buf.push(self.input[self.cursor as usize]);
            } else {
                return ERROR_CHAR;
            }
        }
        match std::str::from_utf8(&buf)
            .ok()
            .and_then(|s| s.chars().next())
        {
            Some(c) => {
                let mut units = [0u16; 2];
                let units = c.encode_utf16(&mut units);
                if units.len() == 2 {
                    self.pending = Some(u32::from(units[1]));
                }
                u32::from(units[0])
            }
            None => ERROR_CHAR,
        }
    }

    fn advance(&mut self) -> bool {
        self.cursor_char = self.next_char();
        true
    }

    fn ch(&mut self, c: u32) -> bool {
        if self.cursor_char == c {
            self.advance()
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.cursor_char, 0x20 | 0x0a | 0x0d | 0x09) {
            self.advance();
        }
    }

    fn ws_char(&mut self, c: u32) -> bool {
        if self.ch(c) {
            self.ws();
            true
        } else {
            false
        }
    }

    fn require(&mut self, c: u32) -> Step<()> {
        if self.ch(c) {
            Ok(())
        } else {
            let target = if c == EOI {
                "end-of-input".to_string()
            } else {
                format!("'{}'", char::from_u32(c).unwrap_or('?'))
            };
            Err(self.fail(&target, self.cursor, self.cursor_char))
        }
    }

    fn fail_here(&mut self, target: &str) -> String {
        self.fail(target, self.cursor, self.cursor_char)
    }

    /// `JsonParser.fail` [JsonParser.scala:220-236]: the summary, `:`, then the line with
    /// a caret under the position.
    fn fail(&mut self, target: &str, cursor: i64, error_char: u32) -> String {
        let (line, column, text) = self.get_line(cursor);
        let unexpected = if error_char == EOI {
            "end-of-input".to_string()
        } else if is_iso_control(error_char) {
            format!("character '\\u{error_char:04x}'")
        } else {
            format!("character '{}'", java_char(error_char))
        };
        let sanitized: String = text
            .chars()
            .map(|c| if is_iso_control(c as u32) { '?' } else { c })
            .collect();
        let caret = " ".repeat(usize::try_from(column - 1).unwrap_or(0));
        format!(
            "Unexpected {unexpected} at input index {cursor} (line {line}, position {column}), expected {target}:\n{sanitized}\n{caret}^\n"
        )
    }

    /// `DefaultParserInput.getLine` [JsonParser.scala:272-287]: re-reads the input from
    /// the start counting characters (UTF-16 units) against the byte index `index`.
    fn get_line(&mut self, index: i64) -> (i64, i64, String) {
        let saved = (self.cursor, self.pending.take());
        self.cursor = -1;
        let mut units: Vec<u16> = Vec::new();
        let (mut ix, mut line_start, mut line) = (0i64, 0i64, 1i64);
        let result = loop {
            let c = self.next_utf8_char();
            if c == u32::from(b'\n') && index > ix {
                units.clear();
                line_start = ix + 1;
                line += 1;
            } else if c == u32::from(b'\n') || c == EOI {
                break (line, index - line_start + 1, java_string(&units));
            } else {
                units.push(c as u16);
            }
            ix += 1;
        };
        (self.cursor, self.pending) = saved;
        result
    }

    fn value(&mut self, remaining: usize) -> Step<Value> {
        if remaining == 0 {
            return Err("JSON input nested too deeply:JSON input was nested more deeply than the configured limit of maxNesting = 1000".to_string());
        }
        let mark = self.cursor;
        let simple = |p: &mut Self, matched: bool, v: Value| {
            if matched {
                Ok(v)
            } else {
                Err(p.fail("JSON Value", mark, p.cursor_char))
            }
        };
        match self.cursor_char {
            0x66 /* f */ => {
                let m = self.advance()
                    && self.ch(u32::from(b'a'))
                    && self.ch(u32::from(b'l'))
                    && self.ch(u32::from(b's'))
                    && self.ws_char(u32::from(b'e'));
                simple(self, m, Value::Bool(false))
            }
            0x6e /* n */ => {
                let m = self.advance()
                    && self.ch(u32::from(b'u'))
                    && self.ch(u32::from(b'l'))
                    && self.ws_char(u32::from(b'l'));
                simple(self, m, Value::Null)
            }
            0x74 /* t */ => {
                let m = self.advance()
                    && self.ch(u32::from(b'r'))
                    && self.ch(u32::from(b'u'))
                    && self.ws_char(u32::from(b'e'));
                simple(self, m, Value::Bool(true))
            }
            0x7b /* { */ => {
                self.advance();
                self.object(remaining)
            }
            0x5b /* [ */ => {
                self.advance();
                self.array(remaining)
            }
            0x30..=0x39 | 0x2d => self.number(),
            0x22 => {
                self.string()?;
                Ok(Value::String(java_string(&self.sb)))
            }
            _ => Err(self.fail_here("JSON Value")),
        }
    }

    fn object(&mut self, remaining: usize) -> Step<Value> {
        self.ws();
        let mut map = Map::new();
        if self.cursor_char != u32::from(b'}') {
            loop {
                self.string()?;
                self.require(u32::from(b':'))?;
                self.ws();
                let key = java_string(&self.sb);
                let v = self.value(remaining - 1)?;
                map.insert(key, v);
                if !self.ws_char(u32::from(b',')) {
                    break;
                }
            }
            self.require(u32::from(b'}'))?;
        } else {
            self.advance();
        }
        self.ws();
        Ok(Value::Object(map))
    }

    fn array(&mut self, remaining: usize) -> Step<Value> {
        self.ws();
        let mut list = Vec::new();
        if self.cursor_char != u32::from(b']') {
            loop {
                list.push(self.value(remaining - 1)?);
                if !self.ws_char(u32::from(b',')) {
                    break;
                }
            }
            self.require(u32::from(b']'))?;
        } else {
            self.advance();
        }
        self.ws();
        Ok(Value::Array(list))
    }

    fn digit(&mut self) -> bool {
        (0x30..=0x39).contains(&self.cursor_char) && self.advance()
    }

    fn one_or_more_digits(&mut self) -> Step<()> {
        if self.digit() {
            while self.digit() {}
            Ok(())
        } else {
            Err(self.fail_here("DIGIT"))
        }
    }

    fn number(&mut self) -> Step<Value> {
        let start = self.cursor;
        let start_char = self.cursor_char;
        self.ch(u32::from(b'-'));
        if !self.ch(u32::from(b'0')) {
            self.one_or_more_digits()?;
        }
        if self.ch(u32::from(b'.')) {
            self.one_or_more_digits()?;
        }
        if self.ch(u32::from(b'e')) || self.ch(u32::from(b'E')) {
            let _ = self.ch(u32::from(b'-')) || self.ch(u32::from(b'+'));
            self.one_or_more_digits()?;
        }
        let length = self.cursor - start;
        let text = String::from_utf8_lossy(&self.input[start as usize..self.cursor as usize]);
        let v = if start_char == u32::from(b'0') && length == 1 {
            Number::from(0)
        } else if length <= MAX_NUMBER_CHARACTERS {
            let normal = java_decimal_string(&text).unwrap_or_else(|| text.to_string());
            normal
                .parse::<Number>()
                .map_err(|_| self.fail("DIGIT", start, start_char))?
        } else {
            let snippet: String = text.chars().take(20).collect();
            return Err(format!(
                "Number too long:The number starting with '{snippet}' had {length} characters which is more than the allowed limit maxNumberCharacters = {MAX_NUMBER_CHARACTERS}. If this is legit input consider increasing the limit."
            ));
        };
        self.ws();
        Ok(Value::Number(v))
    }

    fn string(&mut self) -> Step<()> {
        if self.cursor_char == u32::from(b'"') {
            self.cursor_char = self.next_utf8_char();
        } else {
            return Err(self.fail_here("'\"'"));
        }
        self.sb.clear();
        while self.string_char()? {
            self.cursor_char = self.next_utf8_char();
        }
        self.require(u32::from(b'"'))?;
        self.ws();
        Ok(())
    }

    /// `char()`: appends the current character; `false` at `"`, EOI or a control
    /// character.
    fn string_char(&mut self) -> Step<bool> {
        match self.cursor_char {
            0x22 | EOI => Ok(false),
            0x5c => {
                self.advance();
                self.escaped()?;
                Ok(true)
            }
            c if c >= 0x20 => {
                self.sb.push(c as u16);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn escaped(&mut self) -> Step<()> {
        let c = match self.cursor_char {
            c @ (0x22 | 0x2f | 0x5c) => c as u16,
            0x62 => 0x08,
            0x66 => 0x0c,
            0x6e => 0x0a,
            0x72 => 0x0d,
            0x74 => 0x09,
            0x75 => {
                self.advance();
                let mut value = 0u16;
                for i in 0..4 {
                    if i > 0 {
                        self.advance();
                    }
                    let digit = char::from_u32(self.cursor_char)
                        .and_then(|c| c.to_digit(16))
                        .ok_or_else(|| self.fail_here("hex digit"))?;
                    value = (value << 4) + digit as u16;
                }
                value
            }
            _ => return Err(self.fail_here("JSON escape sequence")),
        };
        self.sb.push(c);
        Ok(())
    }
}

/// `Character.isISOControl`.
fn is_iso_control(c: u32) -> bool {
    c <= 0x1f || (0x7f..=0x9f).contains(&c)
}

/// One Java `char` as text; a lone surrogate becomes `?` as Java's UTF-8 encoder
/// writes it.
fn java_char(c: u32) -> char {
    char::from_u32(c).unwrap_or('?')
}

/// A Java string (UTF-16 units) as Rust text; lone surrogates become `?`.
fn java_string(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|r| r.unwrap_or('?'))
        .collect()
}
