//! Lexer and parser for Go `text/template` syntax, producing a small tree the executor walks.
//!
//! Parse errors use Go's wording (`unclosed action`, `unexpected EOF`, `function "x" not defined`,
//! `undefined variable "$x"`, ...) and carry the 1-based line, as Go reports them.

use std::collections::HashMap;

/// Maximum nesting of control structures and parenthesised pipelines (guards the stack).
const MAX_DEPTH: usize = 100;

/// A parse failure: Go's message and the 1-based line it occurred on.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// Go's message, e.g. `unclosed action`.
    pub msg: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Left { trim: bool },
    Right { trim: bool },
    Space,
    Ident(String),
    Field(String),
    Var(String),
    Dot,
    Str(String),
    Char(i64),
    Number(String),
    Bool(bool),
    Nil,
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Comment,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

fn line_of(src: &str, pos: usize) -> usize {
    let pos = pos.min(src.len());
    1 + src.as_bytes()[..pos]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
}

impl<'a> Lexer<'a> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: line_of(self.src, pos),
            msg: msg.into(),
        }
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        self.toks.push(Token { tok, pos });
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn run(mut self) -> Result<Vec<Token>, ParseError> {
        let mut trim_next = false;
        loop {
            let start = self.pos;
            let Some(off) = self.rest().find("{{") else {
                let mut text = self.rest();
                if trim_next {
                    text = text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
                }
                if !text.is_empty() {
                    self.push(Tok::Text(text.to_string()), start);
                }
                self.push(Tok::Eof, self.src.len());
                return Ok(self.toks);
            };
            let mut text = &self.src[start..start + off];
            self.pos = start + off;
            let after = &self.src[self.pos + 2..];
            let ab = after.as_bytes();
            let trim_left = ab.len() >= 2 && ab[0] == b'-' && is_space(ab[1]);
            if trim_next {
                text = text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
            }
            if trim_left {
                text = text.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
            }
            if !text.is_empty() {
                self.push(Tok::Text(text.to_string()), start);
            }
            let left_pos = self.pos;
            self.pos += 2;
            if trim_left {
                self.pos += 2;
            }
            // Comment?
            let r = self.rest();
            let r_trim = r.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
            if r.starts_with("/*")
                || (trim_left && r_trim.starts_with("/*") && r.len() != r_trim.len())
            {
                let cstart = self.pos + (r.len() - r_trim.len());
                let Some(end) = self.src[cstart + 2..].find("*/") else {
                    return Err(self.err(left_pos, "unclosed comment"));
                };
                self.pos = cstart + 2 + end + 2;
                let r = self.rest();
                let (trim_right, close) = if r.starts_with(" -}}")
                    || r.starts_with("\t-}}")
                    || r.starts_with("\n-}}")
                    || r.starts_with("\r-}}")
                {
                    (true, 4)
                } else if r.starts_with("}}") {
                    (false, 2)
                } else {
                    return Err(self.err(left_pos, "comment ends before closing delimiter"));
                };
                self.pos += close;
                trim_next = trim_right;
                self.push(Tok::Left { trim: trim_left }, left_pos);
                self.push(Tok::Comment, left_pos);
                self.push(Tok::Right { trim: trim_right }, self.pos - close);
                continue;
            }
            self.push(Tok::Left { trim: trim_left }, left_pos);
            trim_next = self.lex_action(left_pos)?;
        }
    }

    /// Lexes inside an action up to and including the right delimiter; returns its trim flag.
    fn lex_action(&mut self, left_pos: usize) -> Result<bool, ParseError> {
        let mut parens = 0i32;
        loop {
            let r = self.rest();
            let b = r.as_bytes();
            let p = self.pos;
            if b.is_empty() {
                return Err(self.err(left_pos, "unclosed action"));
            }
            if b.len() >= 4 && is_space(b[0]) && b[1] == b'-' && b[2] == b'}' && b[3] == b'}' {
                self.push(Tok::Space, p);
                self.push(Tok::Right { trim: true }, p + 1);
                self.pos += 4;
                return Ok(true);
            }
            if r.starts_with("}}") {
                if parens > 0 {
                    return Err(self.err(p, "unclosed left paren"));
                }
                self.push(Tok::Right { trim: false }, p);
                self.pos += 2;
                return Ok(false);
            }
            let c = r.chars().next().unwrap_or(' ');
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    let n = r.len()
                        - r.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8))
                            .len();
                    // A trim marker needs the space: leave it for the check above.
                    let after = &r[n..];
                    if after.starts_with("-}}") {
                        self.pos += n - 1;
                    } else {
                        self.pos += n;
                        self.push(Tok::Space, p);
                    }
                }
                '(' => {
                    parens += 1;
                    self.pos += 1;
                    self.push(Tok::LParen, p);
                }
                ')' => {
                    parens -= 1;
                    if parens < 0 {
                        return Err(self.err(p, "unexpected right paren"));
                    }
                    self.pos += 1;
                    self.push(Tok::RParen, p);
                    self.lex_fields()?;
                }
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, p);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, p);
                }
                ':' => {
                    if r.starts_with(":=") {
                        self.pos += 2;
                        self.push(Tok::Declare, p);
                    } else {
                        return Err(self.err(p, "expected :="));
                    }
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, p);
                }
                '"' => {
                    let s = self.lex_quote(p)?;
                    self.push(Tok::Str(s), p);
                }
                '`' => {
                    let Some(end) = r[1..].find('`') else {
                        return Err(self.err(p, "unterminated raw quoted string"));
                    };
                    let s = r[1..1 + end].to_string();
                    self.pos += end + 2;
                    self.push(Tok::Str(s), p);
                }
                '\'' => {
                    let v = self.lex_char(p)?;
                    self.push(Tok::Char(v), p);
                }
                '$' => {
                    let n = r[1..].find(|c: char| !is_alnum(c)).unwrap_or(r.len() - 1);
                    let name = r[..1 + n].to_string();
                    self.pos += 1 + n;
                    self.push(Tok::Var(name), p);
                    self.lex_fields()?;
                }
                '.' => {
                    let next = r[1..].chars().next();
                    if next.is_some_and(|c| c.is_ascii_digit()) {
                        self.lex_number(p)?;
                    } else {
                        self.lex_fields_or_dot(p)?;
                    }
                }
                '+' | '-' | '0'..='9' => self.lex_number(p)?,
                c if is_alnum(c) => {
                    let n = r.find(|c: char| !is_alnum(c)).unwrap_or(r.len());
                    let word = &r[..n];
                    self.pos += n;
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Tok::Ident(word.to_string()),
                    };
                    self.push(tok, p);
                    self.lex_fields()?;
                }
                c => {
                    return Err(self.err(
                        p,
                        format!("bad character U+{:04X} '{}' in action", c as u32, c),
                    ));
                }
            }
        }
    }

    fn lex_fields_or_dot(&mut self, p: usize) -> Result<(), ParseError> {
        let r = self.rest();
        let next = r[1..].chars().next();
        if next.is_some_and(is_alnum) {
            self.lex_fields()
        } else {
            self.pos += 1;
            self.push(Tok::Dot, p);
            Ok(())
        }
    }

    /// Lexes a run of `.Field` selectors directly following an operand.
    fn lex_fields(&mut self) -> Result<(), ParseError> {
        loop {
            let r = self.rest();
            if !r.starts_with('.') {
                return Ok(());
            }
            let p = self.pos;
            let n = r[1..].find(|c: char| !is_alnum(c)).unwrap_or(r.len() - 1);
            if n == 0 {
                return Err(self.err(p, "bad character after '.'"));
            }
            self.push(Tok::Field(r[1..1 + n].to_string()), p);
            self.pos += 1 + n;
        }
    }

    fn lex_number(&mut self, p: usize) -> Result<(), ParseError> {
        let r = self.rest();
        let n = r
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric()
                    || c == '.'
                    || c == '_'
                    || ((c == '+' || c == '-')
                        && (i == 0 || matches!(r.as_bytes()[i - 1], b'e' | b'E' | b'p' | b'P'))))
            })
            .map(|(i, _)| i)
            .unwrap_or(r.len());
        let text = &r[..n];
        if parse_number(text).is_none() {
            return Err(self.err(p, format!("bad number syntax: \"{text}\"")));
        }
        self.pos += n;
        self.push(Tok::Number(text.to_string()), p);
        Ok(())
    }

    fn lex_quote(&mut self, p: usize) -> Result<String, ParseError> {
        let r = self.rest();
        let mut out = String::new();
        let mut it = r.char_indices().skip(1);
        while let Some((i, c)) = it.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\n' => break,
                '\\' => {
                    let Some((_, e)) = it.next() else { break };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'v' => out.push('\x0b'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'x' | 'u' | 'U' => {
                            let len = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let mut v = 0u32;
                            for _ in 0..len {
                                let d = it.next().and_then(|(_, d)| d.to_digit(16));
                                let Some(d) = d else {
                                    return Err(self.err(p, "invalid syntax"));
                                };
                                v = v * 16 + d;
                            }
                            out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(self.err(p, "invalid syntax")),
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.err(p, "unterminated quoted string"))
    }

    fn lex_char(&mut self, p: usize) -> Result<i64, ParseError> {
        let r = self.rest();
        let mut it = r.char_indices().skip(1);
        let v = match it.next() {
            Some((_, '\\')) => match it.next() {
                Some((_, 'n')) => '\n',
                Some((_, 't')) => '\t',
                Some((_, '\\')) => '\\',
                Some((_, '\'')) => '\'',
                Some((_, 'r')) => '\r',
                Some((_, '0')) => '\0',
                _ => return Err(self.err(p, "unterminated character constant")),
            },
            Some((_, '\'')) | Some((_, '\n')) | None => {
                return Err(self.err(p, "unterminated character constant"));
            }
            Some((_, c)) => c,
        };
        match it.next() {
            Some((i, '\'')) => {
                self.pos += i + 1;
                Ok(v as i64)
            }
            _ => Err(self.err(p, "unterminated character constant")),
        }
    }
}

/// A number constant: Go's ideal constants become `int` unless written as a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer constant.
    Int(i64),
    /// A floating-point constant.
    Float(f64),
}

fn parse_number(text: &str) -> Option<Number> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|b| b.is_ascii_digit()) {
        lower.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(Number::Int(if neg { -i } else { i }));
    }
    if lower.starts_with("0x") || lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    if !lower
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = lower.parse().ok()?;
    Some(Number::Float(if neg { -f } else { f }))
}

/// A node of the parsed template.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{pipeline}}`: evaluate and print (unless it declares variables).
    Action(Pipe),
    /// `{{if}}`, `{{with}}` or `{{range}}`.
    Control(Box<Control>),
    /// `{{template "name" pipeline}}`.
    Template {
        /// Byte offset.
        pos: usize,
        /// The template invoked.
        name: String,
        /// The new dot, if given.
        pipe: Option<Pipe>,
    },
    /// `{{break}}`.
    Break(usize),
    /// `{{continue}}`.
    Continue(usize),
}

/// Which control structure a [`Control`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// `if`.
    If,
    /// `with`.
    With,
    /// `range`.
    Range,
}

/// `{{if|with|range pipeline}} list {{else}} else_list {{end}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// The kind.
    pub kind: ControlKind,
    /// The condition / value.
    pub pipe: Pipe,
    /// The body.
    pub list: Vec<Node>,
    /// The `{{else}}` branch.
    pub else_list: Option<Vec<Node>>,
}

/// A pipeline: optional variable declarations and commands joined by `|`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    /// Byte offset.
    pub pos: usize,
    /// Declared or assigned variables (`$x :=`, `$i, $v :=`).
    pub decl: Vec<String>,
    /// `=` rather than `:=`.
    pub is_assign: bool,
    /// The commands.
    pub cmds: Vec<Cmd>,
}

/// A command: a function call, or a single operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    /// Byte offset of the first token.
    pub pos: usize,
    /// Source text (Go's node `String()`, approximately) for error context.
    pub text: String,
    /// The operands; the first one decides what the command is.
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.` followed by fields (`.Labels.instance`); empty for plain `.`.
    Field(Vec<String>),
    /// `$x` followed by fields.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// A string constant.
    Str(String),
    /// A number constant.
    Num(Number),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `(pipeline)` followed by fields.
    Pipe(Box<Pipe>, Vec<String>),
}

impl Arg {
    /// Go's `String()` of the operand, for error messages.
    pub fn go_string(&self) -> String {
        let fields = |f: &[String]| f.iter().map(|x| format!(".{x}")).collect::<String>();
        match self {
            Arg::Field(f) if f.is_empty() => ".".into(),
            Arg::Field(f) => fields(f),
            Arg::Var(n, f) => format!("{n}{}", fields(f)),
            Arg::Func(n) => n.clone(),
            Arg::Str(s) => super::gofmt::quote(s),
            Arg::Num(Number::Int(i)) => i.to_string(),
            Arg::Num(Number::Float(f)) => super::gofmt::format_g(*f, None),
            Arg::Bool(b) => b.to_string(),
            Arg::Nil => "nil".into(),
            Arg::Pipe(_, f) => format!("(...){}", fields(f)),
        }
    }
}

/// A parsed template with its `{{define}}`d sub-templates.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// The template's name (used in error messages).
    pub name: String,
    /// The source (for error positions).
    pub(crate) src: String,
    /// The top-level body.
    pub(crate) root: Vec<Node>,
    /// Named templates.
    pub(crate) defines: HashMap<String, Vec<Node>>,
}

impl Tree {
    /// Go's `line:col` for a byte offset (col is the 0-based byte offset in the line).
    pub fn line_col(&self, pos: usize) -> (usize, usize) {
        let pos = pos.min(self.src.len());
        let before = &self.src.as_bytes()[..pos];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let col = match before.iter().rposition(|b| *b == b'\n') {
            Some(i) => pos - i - 1,
            None => pos,
        };
        (line, col)
    }
}

/// What ended a list.
enum End {
    Finish(usize),
    Else(usize),
    Eof,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    is_func: &'a dyn Fn(&str) -> bool,
    depth: usize,
    range_depth: usize,
    defines: HashMap<String, Vec<Node>>,
}

/// Parses `src` (named `name`); `is_func` says which function names exist (Go checks at parse time).
pub fn parse(name: &str, src: &str, is_func: &dyn Fn(&str) -> bool) -> Result<Tree, ParseError> {
    let toks = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
    }
    .run()?;
    let mut p = Parser {
        src,
        toks,
        i: 0,
        vars: vec!["$".to_string()],
        is_func,
        depth: 0,
        range_depth: 0,
        defines: HashMap::new(),
    };
    let (root, end) = p.list(true)?;
    match end {
        End::Eof => {}
        End::Finish(pos) => return Err(p.err_at(pos, "unexpected {{end}}")),
        End::Else(pos) => return Err(p.err_at(pos, "unexpected {{else}}")),
    }
    Ok(Tree {
        name: name.to_string(),
        src: src.to_string(),
        root,
        defines: p.defines,
    })
}

impl Parser<'_> {
    fn err_at(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: line_of(self.src, pos),
            msg: msg.into(),
        }
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
        self.peek().clone()
    }

    fn describe(t: &Tok) -> String {
        match t {
            Tok::Right { .. } => "\"}}\"".into(),
            Tok::Left { .. } => "\"{{\"".into(),
            Tok::Ident(s) => format!("<{s}>"),
            Tok::Field(s) => format!("<.{s}>"),
            Tok::Var(s) => format!("<{s}>"),
            Tok::Dot => "<.>".into(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Number(s) => format!("<{s}>"),
            Tok::Char(c) => format!("<{c}>"),
            Tok::Bool(b) => format!("<{b}>"),
            Tok::Nil => "<nil>".into(),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::Pipe => "\"|\"".into(),
            Tok::Declare => "\":=\"".into(),
            Tok::Assign => "\"=\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Eof => "EOF".into(),
            Tok::Text(_) | Tok::Space | Tok::Comment => "text".into(),
        }
    }

    fn unexpected(&self, t: &Token, ctx: &str) -> ParseError {
        if t.tok == Tok::Eof {
            return self.err_at(t.pos, "unclosed action");
        }
        self.err_at(
            t.pos,
            format!("unexpected {} in {ctx}", Self::describe(&t.tok)),
        )
    }

    fn enter(&mut self, pos: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_at(pos, format!("max nesting depth {MAX_DEPTH} exceeded")));
        }
        Ok(())
    }

    fn expect_right(&mut self, ctx: &str) -> Result<(), ParseError> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Right { .. } => Ok(()),
            _ => Err(self.unexpected(&t, ctx)),
        }
    }

    /// Parses nodes until `{{end}}`, `{{else}}` or EOF.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, End), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => return Ok((nodes, End::Eof)),
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Left { .. } => {
                    let inner = self.peek_non_space();
                    match &inner.tok {
                        Tok::Comment => {
                            self.next();
                            self.expect_right("comment")?;
                        }
                        Tok::Ident(kw) => match kw.as_str() {
                            "end" => {
                                self.next();
                                self.expect_right("end")?;
                                return Ok((nodes, End::Finish(inner.pos)));
                            }
                            "else" => {
                                self.next();
                                return Ok((nodes, End::Else(inner.pos)));
                            }
                            "if" | "with" | "range" => {
                                self.next();
                                let kind = match kw.as_str() {
                                    "if" => ControlKind::If,
                                    "with" => ControlKind::With,
                                    _ => ControlKind::Range,
                                };
                                nodes.push(self.control(kind, inner.pos)?);
                            }
                            "define" => {
                                self.next();
                                if !top || self.depth > 0 {
                                    return Err(
                                        self.err_at(inner.pos, "unexpected <define> in command")
                                    );
                                }
                                self.define(inner.pos, None)?;
                            }
                            "block" => {
                                self.next();
                                let (name, pipe) = self.template_args(inner.pos, "block")?;
                                self.define(inner.pos, Some(name.clone()))?;
                                nodes.push(Node::Template {
                                    pos: inner.pos,
                                    name,
                                    pipe,
                                });
                            }
                            "template" => {
                                self.next();
                                let (name, pipe) = self.template_args(inner.pos, "template")?;
                                nodes.push(Node::Template {
                                    pos: inner.pos,
                                    name,
                                    pipe,
                                });
                            }
                            "break" | "continue" => {
                                self.next();
                                if self.range_depth == 0 {
                                    return Err(self.err_at(
                                        inner.pos,
                                        format!("{{{{{kw}}}}} outside {{{{range}}}}"),
                                    ));
                                }
                                let node = if kw == "break" {
                                    Node::Break(inner.pos)
                                } else {
                                    Node::Continue(inner.pos)
                                };
                                self.expect_right(kw.clone().as_str())?;
                                nodes.push(node);
                            }
                            _ => {
                                let pipe = self.pipeline("command", true)?;
                                nodes.push(Node::Action(pipe));
                            }
                        },
                        _ => {
                            let pipe = self.pipeline("command", true)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                _ => return Err(self.unexpected(&t, "input")),
            }
        }
    }

    fn template_args(
        &mut self,
        pos: usize,
        ctx: &str,
    ) -> Result<(String, Option<Pipe>), ParseError> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return Err(self.unexpected(&t, &format!("{ctx} clause")));
        };
        let after = self.peek_non_space();
        let pipe = if matches!(after.tok, Tok::Right { .. }) {
            self.next();
            None
        } else {
            Some(self.pipeline(ctx, false)?)
        };
        if ctx == "block" && pipe.is_none() {
            return Err(self.err_at(pos, "missing value for block"));
        }
        Ok((name, pipe))
    }

    fn define(&mut self, pos: usize, block_name: Option<String>) -> Result<(), ParseError> {
        let name = match block_name {
            Some(n) => n,
            None => {
                let t = self.next_non_space();
                let Tok::Str(name) = t.tok else {
                    return Err(self.unexpected(&t, "define clause"));
                };
                self.expect_right("define clause")?;
                name
            }
        };
        self.enter(pos)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (body, end) = self.list(false)?;
        self.vars = saved;
        self.range_depth = saved_range;
        self.depth -= 1;
        match end {
            End::Finish(_) => {}
            End::Else(p) => return Err(self.err_at(p, "unexpected {{else}}")),
            End::Eof => return Err(self.err_at(self.src.len(), "unexpected EOF")),
        }
        self.defines.insert(name, body);
        Ok(())
    }

    fn control(&mut self, kind: ControlKind, pos: usize) -> Result<Node, ParseError> {
        self.enter(pos)?;
        let mark = self.vars.len();
        let ctx = match kind {
            ControlKind::If => "if",
            ControlKind::With => "with",
            ControlKind::Range => "range",
        };
        let pipe = self.pipeline(ctx, false)?;
        if kind == ControlKind::Range {
            self.range_depth += 1;
        }
        let (list, end) = self.list(false)?;
        if kind == ControlKind::Range {
            self.range_depth -= 1;
        }
        let else_list = match end {
            End::Finish(_) => None,
            End::Eof => return Err(self.err_at(self.src.len(), "unexpected EOF")),
            End::Else(_) => {
                let after = self.peek_non_space();
                let chained = match (&after.tok, kind) {
                    (Tok::Ident(k), ControlKind::If) if k == "if" => Some(ControlKind::If),
                    (Tok::Ident(k), ControlKind::With) if k == "with" => Some(ControlKind::With),
                    _ => None,
                };
                if let Some(k) = chained {
                    // `{{else if ...}}`: a nested control that consumes our `{{end}}`.
                    self.next();
                    self.vars.truncate(mark.max(1));
                    let nested = self.control(k, after.pos)?;
                    Some(vec![nested])
                } else {
                    self.expect_right("else")?;
                    let (else_list, end) = self.list(false)?;
                    match end {
                        End::Finish(_) => {}
                        End::Else(p) => return Err(self.err_at(p, "expected end; found {{else}}")),
                        End::Eof => return Err(self.err_at(self.src.len(), "unexpected EOF")),
                    }
                    Some(else_list)
                }
            }
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(Node::Control(Box::new(Control {
            kind,
            pipe,
            list,
            else_list,
        })))
    }

    /// Parses a pipeline up to `}}` (or `)` when `ctx == "parenthesized pipeline"`).
    fn pipeline(&mut self, ctx: &str, _action: bool) -> Result<Pipe, ParseError> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $v :=` (two only in range).
        let save = self.i;
        let mut decls = Vec::new();
        loop {
            let t = self.peek_non_space();
            let Tok::Var(name) = &t.tok else { break };
            let name = name.clone();
            self.next();
            // A variable with fields is not a declaration.
            let nt = self.peek_non_space();
            match nt.tok {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    decls.push(name);
                    pipe.is_assign = nt.tok == Tok::Assign;
                    break;
                }
                Tok::Comma if ctx == "range" && decls.is_empty() => {
                    self.next();
                    decls.push(name);
                    continue;
                }
                Tok::Comma => {
                    return Err(self.err_at(nt.pos, format!("too many declarations in {ctx}")));
                }
                _ => {
                    if !decls.is_empty() {
                        return Err(self
                            .err_at(nt.pos, format!("missing := after multiple decls in {ctx}")));
                    }
                    break;
                }
            }
        }
        if pipe.decl.is_empty() && decls.is_empty() {
            self.i = save;
        }
        for d in &decls {
            if pipe.is_assign && !self.vars.contains(d) {
                return Err(self.err_at(pipe.pos, format!("undefined variable \"{d}\"")));
            }
        }
        pipe.decl = decls;
        let closing_paren = ctx == "parenthesized pipeline";
        let mut after_pipe = false;
        loop {
            let t = self.peek_non_space();
            match t.tok {
                Tok::Right { .. } | Tok::RParen
                    if after_pipe && (matches!(t.tok, Tok::RParen) == closing_paren) =>
                {
                    return Err(self.err_at(t.pos, "empty command"));
                }
                Tok::Right { .. } if !closing_paren => {
                    self.next();
                    break;
                }
                Tok::RParen if closing_paren => {
                    self.next();
                    break;
                }
                Tok::Eof => return Err(self.err_at(t.pos, "unclosed action")),
                Tok::Pipe => return Err(self.unexpected(&t, ctx)),
                _ => {
                    let cmd = self.command(closing_paren)?;
                    after_pipe = matches!(self.toks[self.i.saturating_sub(1)].tok, Tok::Pipe);
                    pipe.cmds.push(cmd);
                }
            }
        }
        if pipe.cmds.is_empty() {
            return Err(self.err_at(pipe.pos, format!("missing value for {ctx}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(Arg::Bool(_) | Arg::Nil | Arg::Num(_) | Arg::Str(_)) = c.args.first() {
                return Err(self.err_at(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        if !pipe.is_assign {
            for d in &pipe.decl {
                self.vars.push(d.clone());
            }
        }
        Ok(pipe)
    }

    fn command(&mut self, closing_paren: bool) -> Result<Cmd, ParseError> {
        let start = self.peek_non_space().pos;
        let mut cmd = Cmd {
            pos: start,
            text: String::new(),
            args: Vec::new(),
        };
        let mut end = start;
        loop {
            self.peek_non_space();
            if let Some(a) = self.operand()? {
                cmd.args.push(a);
                end = self.toks[self.i.saturating_sub(1)].pos;
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::Right { .. } if !closing_paren => {
                    self.i -= 1;
                }
                Tok::RParen if closing_paren => {
                    self.i -= 1;
                }
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.err_at(start, "empty command"));
        }
        let end_tok = self.toks[self.i.min(self.toks.len() - 1)].pos;
        let _ = end;
        cmd.text = self.src[start..end_tok.max(start)]
            .trim_end_matches(|c: char| c.is_whitespace() || c == '|')
            .to_string();
        Ok(cmd)
    }

    fn fields(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            out.push(f.clone());
            self.i += 1;
        }
        out
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseError> {
        let t = self.peek().clone();
        let arg = match t.tok {
            Tok::Field(_) => Arg::Field(self.fields()),
            Tok::Dot => {
                self.next();
                Arg::Field(Vec::new())
            }
            Tok::Var(name) => {
                self.next();
                if !self.vars.contains(&name) {
                    return Err(self.err_at(t.pos, format!("undefined variable \"{name}\"")));
                }
                Arg::Var(name, self.fields())
            }
            Tok::Ident(name) => {
                self.next();
                if matches!(
                    name.as_str(),
                    "if" | "else"
                        | "end"
                        | "range"
                        | "with"
                        | "define"
                        | "template"
                        | "block"
                        | "break"
                        | "continue"
                ) {
                    return Err(self.err_at(t.pos, format!("unexpected <{name}> in command")));
                }
                if !(self.is_func)(&name) {
                    return Err(self.err_at(t.pos, format!("function \"{name}\" not defined")));
                }
                let f = self.fields();
                if !f.is_empty() {
                    return Err(self.err_at(t.pos, format!("unexpected . after term \"{name}\"")));
                }
                Arg::Func(name)
            }
            Tok::Str(s) => {
                self.next();
                Arg::Str(s)
            }
            Tok::Char(c) => {
                self.next();
                Arg::Num(Number::Int(c))
            }
            Tok::Number(n) => {
                self.next();
                match parse_number(&n) {
                    Some(v) => Arg::Num(v),
                    None => return Err(self.err_at(t.pos, format!("bad number syntax: \"{n}\""))),
                }
            }
            Tok::Bool(b) => {
                self.next();
                Arg::Bool(b)
            }
            Tok::Nil => {
                self.next();
                Arg::Nil
            }
            Tok::LParen => {
                self.next();
                self.enter(t.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                self.depth -= 1;
                let f = self.fields();
                Arg::Pipe(Box::new(pipe), f)
            }
            _ => return Ok(None),
        };
        if let Tok::Field(_) = self.peek().tok {
            // e.g. `"x".Foo` or `1.Foo`: fields on a constant.
            return Err(self.err_at(t.pos, "unexpected . after term"));
        }
        Ok(Some(arg))
    }
}
