//! Alertmanager's matcher syntax: `{a="b", c=~"d|e"}`, `a=b`, `a!="b"`, `a!~"x|y"`.
//!
//! Used by route and inhibition `matchers:` and by the API's silence and alert filters, so it
//! accepts what Alertmanager's parser accepts: optional braces, one matcher or several separated
//! by commas (a trailing comma is fine), unquoted or double-quoted names and values (Go escapes
//! in quotes). It never panics; regexes are anchored by `Matcher::new`.

use crate::model::{MatchOp, Matcher, MatcherError};

/// Why a matcher string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad matcher {input:?}: {message} at character {position}")]
pub struct MatcherParseError {
    /// The text as given.
    pub input: String,
    /// 1-based character position of the problem.
    pub position: usize,
    /// What was expected.
    pub message: String,
}

/// Parses a list of matchers; an empty string or `{}` is an empty list.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherParseError> {
    Parser::new(s).parse()
}

/// Parses exactly one matcher (`name="value"`), as label arguments of `klaxon routes test`.
pub fn parse_matcher(s: &str) -> Result<Matcher, MatcherParseError> {
    let mut v = parse_matchers(s)?;
    if v.len() != 1 {
        return Err(MatcherParseError {
            input: s.to_string(),
            position: 1,
            message: format!("expected exactly one matcher, found {}", v.len()),
        });
    }
    Ok(v.remove(0))
}

/// A one-line message for a regex that does not compile (the regex crate's own message is a
/// multi-line snippet of the anchored pattern; its last line says what is wrong).
pub(crate) fn regex_error(e: &MatcherError) -> String {
    let detail = e.source.to_string();
    let reason = detail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .trim_start_matches("error: ");
    format!("invalid regular expression {:?}: {reason}", e.pattern)
}

/// Characters that end an unquoted name or value (Alertmanager's reserved set).
fn is_reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            input,
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn err(&self, at: usize, message: impl Into<String>) -> MatcherParseError {
        MatcherParseError {
            input: self.input.to_string(),
            position: at + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn parse(mut self) -> Result<Vec<Matcher>, MatcherParseError> {
        let mut out = Vec::new();
        self.skip_ws();
        let braced = self.peek() == Some('{');
        if braced {
            self.pos += 1;
        }
        loop {
            self.skip_ws();
            match self.peek() {
                None if braced => return Err(self.err(self.pos, "missing closing '}'")),
                None => break,
                Some('}') if braced => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.pos < self.chars.len() {
                        return Err(self.err(self.pos, "unexpected text after '}'"));
                    }
                    break;
                }
                Some('}') => return Err(self.err(self.pos, "unexpected '}' without '{'")),
                _ => {}
            }
            out.push(self.matcher()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') if braced => {}
                None if !braced => break,
                None => return Err(self.err(self.pos, "missing closing '}'")),
                Some('}') => return Err(self.err(self.pos, "unexpected '}' without '{'")),
                Some(c) => {
                    return Err(self.err(self.pos, format!("expected ',' or '}}', found {c:?}")));
                }
            }
        }
        Ok(out)
    }

    fn matcher(&mut self) -> Result<Matcher, MatcherParseError> {
        let name_at = self.pos;
        let name = self.token("a label name")?;
        if name.is_empty() {
            return Err(self.err(name_at, "expected a label name"));
        }
        self.skip_ws();
        let op_at = self.pos;
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('='), Some('~')) => {
                self.pos += 2;
                MatchOp::Regex
            }
            (Some('!'), Some('=')) => {
                self.pos += 2;
                MatchOp::NotEqual
            }
            (Some('!'), Some('~')) => {
                self.pos += 2;
                MatchOp::NotRegex
            }
            (Some('='), _) => {
                self.pos += 1;
                MatchOp::Equal
            }
            _ => {
                return Err(self.err(op_at, "expected one of '=', '!=', '=~', '!~'"));
            }
        };
        self.skip_ws();
        let value_at = self.pos;
        let value = self.token("a label value")?;
        Matcher::new(op, name, value).map_err(|e| self.err(value_at, regex_error(&e)))
    }

    /// An unquoted run of non-reserved characters, or a double-quoted Go string.
    fn token(&mut self, what: &str) -> Result<String, MatcherParseError> {
        match self.peek() {
            Some('"') => self.quoted(),
            Some(c @ ('\'' | '`' | '\\')) => {
                Err(self.err(self.pos, format!("expected {what}, found {c:?}")))
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| !is_reserved(c)) {
                    self.pos += 1;
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
        }
    }

    fn quoted(&mut self) -> Result<String, MatcherParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(open, "unterminated quoted string"));
            };
            self.pos += 1;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let at = self.pos - 1;
                    let e = self
                        .peek()
                        .ok_or_else(|| self.err(at, "unterminated quoted string"))?;
                    self.pos += 1;
                    match e {
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'v' => out.push('\x0b'),
                        '\\' | '"' | '\'' => out.push(e),
                        'x' => out.push(self.hex(2, at)?),
                        'u' => out.push(self.hex(4, at)?),
                        'U' => out.push(self.hex(8, at)?),
                        '0'..='7' => {
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                let d = self
                                    .peek()
                                    .and_then(|c| c.to_digit(8))
                                    .ok_or_else(|| self.err(at, "invalid octal escape"))?;
                                v = v * 8 + d;
                                self.pos += 1;
                            }
                            out.push(
                                char::from_u32(v)
                                    .filter(|_| v <= 255)
                                    .ok_or_else(|| self.err(at, "invalid octal escape"))?,
                            );
                        }
                        other => {
                            return Err(self.err(at, format!("invalid escape '\\{other}'")));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex(&mut self, n: usize, at: usize) -> Result<char, MatcherParseError> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.err(at, "invalid hex escape"))?;
            v = v
                .checked_mul(16)
                .and_then(|v| v.checked_add(d))
                .unwrap_or(u32::MAX);
            self.pos += 1;
        }
        char::from_u32(v).ok_or_else(|| self.err(at, "escape is not a valid character"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> (String, MatchOp, String) {
        let m = parse_matcher(s).unwrap();
        (m.name, m.op, m.value)
    }

    #[test]
    fn single_matchers() {
        assert_eq!(one("a=b"), ("a".into(), MatchOp::Equal, "b".into()));
        assert_eq!(one(r#"a="b""#), ("a".into(), MatchOp::Equal, "b".into()));
        assert_eq!(
            one(r#"a!="b""#),
            ("a".into(), MatchOp::NotEqual, "b".into())
        );
        assert_eq!(
            one(r#"a=~"x|y""#),
            ("a".into(), MatchOp::Regex, "x|y".into())
        );
        assert_eq!(one("a!~x|y"), ("a".into(), MatchOp::NotRegex, "x|y".into()));
        assert_eq!(one(" a = b "), ("a".into(), MatchOp::Equal, "b".into()));
        assert_eq!(one("a="), ("a".into(), MatchOp::Equal, String::new()));
        assert_eq!(
            one(r#""my label"="v\"q\n""#),
            ("my label".into(), MatchOp::Equal, "v\"q\n".into())
        );
        assert_eq!(one("test=^[12]$").2, "^[12]$");
        assert_eq!(one(r#"x="\u00e9\x41\101""#).2, "éAA");
    }

    #[test]
    fn lists_with_and_without_braces() {
        let v = parse_matchers(r#"{a="b", c=~"d", e!=f}"#).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].op, MatchOp::Regex);
        assert_eq!(parse_matchers("a=b,c=d,").unwrap().len(), 2);
        assert_eq!(parse_matchers("{a=b,}").unwrap().len(), 1);
        assert!(parse_matchers("{}").unwrap().is_empty());
        assert!(parse_matchers("").unwrap().is_empty());
        assert!(parse_matchers("  ").unwrap().is_empty());
    }

    #[test]
    fn regexes_are_anchored() {
        let m = parse_matcher(r#"service=~"foo1|foo2""#).unwrap();
        assert!(m.matches("foo1"));
        assert!(!m.matches("foo12"));
    }

    #[test]
    fn errors_name_the_position() {
        for (s, want) in [
            ("{a=b", "missing closing '}'"),
            ("a", "expected one of"),
            ("=b", "expected a label name"),
            (r#"a="b"#, "unterminated"),
            ("a=~(", "invalid regular expression"),
            ("a=b c=d", "expected ',' or '}'"),
            ("{a=b} x", "unexpected text"),
            ("a=b}", "without '{'"),
            (r#"a="\q""#, "invalid escape"),
            ("a='b'", "expected a label value"),
        ] {
            let e = parse_matchers(s).unwrap_err();
            assert!(e.to_string().contains(want), "{s}: {e}");
        }
        assert_eq!(parse_matchers("a b").unwrap_err().position, 3);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_matchers(&s);
        }

        #[test]
        fn never_panics_on_matcher_like_text(s in r#"[{}a-c=!~,"\\ 'x0-9u]{0,30}"#) {
            let _ = parse_matchers(&s);
        }
    }
}
