//! The executor: walks a parsed [`Tree`] against data, with Go `text/template` semantics and
//! hard limits on output size, evaluation steps and template recursion.

use std::sync::Arc;

use super::gofmt;
use super::parse::{Arg, Cmd, ControlKind, Node, Number, Pipe, Tree};
use super::value::Value;

/// Names of Go's predefined template functions (always available).
pub const BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js",
    "urlquery", "eq", "ne", "lt", "le", "gt", "ge",
];

/// A failure inside a template function.
#[derive(Debug, Clone, PartialEq)]
pub enum FuncError {
    /// The function returned an error: rendered as `error calling NAME: MSG`, like Go.
    Call(String),
    /// An argument problem Go reports without the `error calling` prefix (e.g. wrong arg count).
    Raw(String),
}

/// Template functions supplied by the embedding application (Prometheus' or Alertmanager's set).
pub trait Functions {
    /// Whether `name` is a function (checked at parse time, like Go).
    fn has(&self, name: &str) -> bool;
    /// Calls `name` with evaluated arguments (which may be [`Value::Object`]s: use
    /// [`Value::plain`] where the methods do not matter).
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, FuncError>;
    /// Extra execution steps charged per call of `name` (e.g. for queries); default 0.
    fn cost(&self, _name: &str) -> u64 {
        0
    }
}

/// Resource limits for one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum output size in bytes.
    pub max_output: usize,
    /// Maximum evaluation steps (nodes plus commands), bounding loops over large query results.
    pub max_steps: u64,
    /// Maximum nesting of control structures plus `{{template}}` calls (bounds the stack).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output: 1 << 20,
            max_steps: 1_000_000,
            max_depth: 200,
        }
    }
}

/// An execution failure at a source position, with Go's context (`at <...>`) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecError {
    /// Byte offset in the template source.
    pub pos: usize,
    /// The node being executed, as source text.
    pub context: String,
    /// Go's message.
    pub msg: String,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, ExecError>;

struct Exec<'a> {
    tree: &'a Tree,
    funcs: &'a dyn Functions,
    limits: Limits,
    vars: Vec<(String, Value)>,
    out: String,
    steps: u64,
    depth: usize,
}

/// Executes `tree` against `data`.
pub fn execute(
    tree: &Tree,
    data: &Value,
    funcs: &dyn Functions,
    limits: Limits,
) -> Result<String, ExecError> {
    let mut ex = Exec {
        tree,
        funcs,
        limits,
        vars: vec![("$".to_string(), data.clone())],
        out: String::new(),
        steps: 0,
        depth: 0,
    };
    ex.walk(data, &tree.root)?;
    Ok(ex.out)
}

fn err(pos: usize, context: &str, msg: impl Into<String>) -> ExecError {
    ExecError {
        pos,
        context: context.to_string(),
        msg: msg.into(),
    }
}

impl Exec<'_> {
    fn step(&mut self, pos: usize, ctx: &str) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(err(
                pos,
                ctx,
                format!(
                    "exceeded maximum number of execution steps ({})",
                    self.limits.max_steps
                ),
            ));
        }
        Ok(())
    }

    fn enter(&mut self, pos: usize, ctx: &str) -> R<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(err(
                pos,
                ctx,
                format!(
                    "exceeded maximum template depth ({})",
                    self.limits.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn write(&mut self, pos: usize, ctx: &str, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.limits.max_output {
            return Err(err(
                pos,
                ctx,
                format!(
                    "output exceeds maximum size of {} bytes",
                    self.limits.max_output
                ),
            ));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> R<Flow> {
        for node in nodes {
            match node {
                Node::Text(t) => {
                    self.step(0, "text")?;
                    self.write(0, "text", t)?;
                }
                Node::Action(pipe) => {
                    let ctx = pipe.cmds.first().map(|c| c.text.as_str()).unwrap_or("");
                    self.step(pipe.pos, ctx)?;
                    let v = self.eval_pipe(dot, pipe, true)?;
                    if pipe.decl.is_empty() {
                        let s = v.to_go_string();
                        self.write(pipe.pos, ctx, &s)?;
                    }
                }
                Node::Control(c) => {
                    let ctx = c
                        .pipe
                        .cmds
                        .first()
                        .map(|c| c.text.clone())
                        .unwrap_or_default();
                    self.step(c.pipe.pos, &ctx)?;
                    let mark = self.vars.len();
                    self.enter(c.pipe.pos, &ctx)?;
                    let flow = match c.kind {
                        ControlKind::If | ControlKind::With => {
                            let v = self.eval_pipe(dot, &c.pipe, true)?;
                            if v.truthy() {
                                let d = if c.kind == ControlKind::With {
                                    v
                                } else {
                                    dot.clone()
                                };
                                self.walk(&d, &c.list)?
                            } else if let Some(e) = &c.else_list {
                                self.walk(dot, e)?
                            } else {
                                Flow::Normal
                            }
                        }
                        ControlKind::Range => self.range(dot, c, &ctx)?,
                    };
                    self.vars.truncate(mark);
                    self.depth -= 1;
                    match flow {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::Template { pos, name, pipe } => {
                    let ctx = format!("template \"{name}\"");
                    self.step(*pos, &ctx)?;
                    let Some(body) = self.tree.defines.get(name) else {
                        return Err(err(*pos, &ctx, format!("no such template \"{name}\"")));
                    };
                    let new_dot = match pipe {
                        Some(p) => self.eval_pipe(dot, p, false)?,
                        None => Value::Nil,
                    };
                    self.enter(*pos, &ctx)?;
                    let saved =
                        std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
                    let r = self.walk(&new_dot, body);
                    self.vars = saved;
                    self.depth -= 1;
                    r?;
                }
                Node::Break(_) => return Ok(Flow::Break),
                Node::Continue(_) => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, dot: &Value, c: &super::parse::Control, ctx: &str) -> R<Flow> {
        let v = self.eval_pipe(dot, &c.pipe, false)?;
        let v = v.plain().clone();
        let len = match &v {
            Value::List(l) => l.len() as i64,
            Value::Map(m) => m.len() as i64,
            Value::Int(n) => {
                if c.pipe.decl.len() > 1 {
                    return Err(err(
                        c.pipe.pos,
                        ctx,
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                (*n).max(0)
            }
            Value::Missing | Value::Nil => 0,
            other => {
                return Err(err(
                    c.pipe.pos,
                    ctx,
                    format!("range can't iterate over {}", other.to_go_string()),
                ));
            }
        };
        if len == 0 {
            if let Some(e) = &c.else_list {
                return self.walk(dot, e);
            }
            return Ok(Flow::Normal);
        }
        match &v {
            Value::List(l) => {
                for (i, e) in l.iter().enumerate() {
                    if self.iteration(c, ctx, Value::Int(i as i64), e)? {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, e) in m.iter() {
                    if self.iteration(c, ctx, Value::str(k.as_str()), e)? {
                        break;
                    }
                }
            }
            _ => {
                for i in 0..len {
                    if self.iteration(c, ctx, Value::Int(i), &Value::Int(i))? {
                        break;
                    }
                }
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs one `range` iteration; returns true on `{{break}}`.
    fn iteration(
        &mut self,
        c: &super::parse::Control,
        ctx: &str,
        key: Value,
        elem: &Value,
    ) -> R<bool> {
        self.step(c.pipe.pos, ctx)?;
        let mark = self.vars.len();
        match c.pipe.decl.as_slice() {
            [one] => self.bind(one, elem.clone(), c.pipe.is_assign),
            [a, b] => {
                self.bind(a, key, c.pipe.is_assign);
                self.bind(b, elem.clone(), c.pipe.is_assign);
            }
            _ => {}
        }
        let flow = self.walk(elem, &c.list)?;
        self.vars.truncate(mark);
        Ok(matches!(flow, Flow::Break))
    }

    fn bind(&mut self, name: &str, v: Value, assign: bool) {
        if assign && let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
            return;
        }
        self.vars.push((name.to_string(), v));
    }

    fn eval_pipe(&mut self, dot: &Value, pipe: &Pipe, bind_decls: bool) -> R<Value> {
        let mut val: Option<Value> = None;
        for cmd in &pipe.cmds {
            self.step(cmd.pos, &cmd.text)?;
            val = Some(self.eval_cmd(dot, cmd, val)?);
        }
        let val = val.unwrap_or(Value::Missing);
        if bind_decls {
            for d in &pipe.decl {
                self.bind(d, val.clone(), pipe.is_assign);
            }
        }
        Ok(val)
    }

    fn var(&self, cmd: &Cmd, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| err(cmd.pos, &cmd.text, format!("undefined variable: {name}")))
    }

    /// Calls method `name` of `recv` when `recv` is an object with that method.
    fn method(&self, cmd: &Cmd, recv: &Value, name: &str, args: &[Value]) -> R<Option<Value>> {
        let Value::Object(o) = recv else {
            return Ok(None);
        };
        if !o.methods.has(name) {
            return Ok(None);
        }
        match o.methods.call(&o.inner, name, args) {
            Ok(v) => Ok(Some(v)),
            Err(FuncError::Call(m)) => Err(err(
                cmd.pos,
                &cmd.text,
                format!("error calling {name}: {m}"),
            )),
            Err(FuncError::Raw(m)) => Err(err(cmd.pos, &cmd.text, m)),
        }
    }

    fn fields(&self, cmd: &Cmd, mut v: Value, fields: &[String]) -> R<Value> {
        for f in fields {
            if let Some(r) = self.method(cmd, &v, f, &[])? {
                v = r;
                continue;
            }
            v = match &v {
                Value::Object(o) => match o.inner.plain() {
                    Value::Map(m) => m.get(f).cloned().unwrap_or_else(|| o.methods.missing_key()),
                    _ => {
                        return Err(err(
                            cmd.pos,
                            &cmd.text,
                            format!("can't evaluate field {f} in type {}", o.type_name),
                        ));
                    }
                },
                Value::Map(m) => m.get(f).cloned().unwrap_or(Value::Missing),
                Value::Struct(s) => match s.fields.iter().find(|(n, _)| n == f) {
                    Some((_, v)) => v.clone(),
                    None => {
                        return Err(err(
                            cmd.pos,
                            &cmd.text,
                            format!("can't evaluate field {f} in type {}", s.type_name),
                        ));
                    }
                },
                Value::Missing => Value::Missing,
                Value::Nil => {
                    return Err(err(
                        cmd.pos,
                        &cmd.text,
                        format!("nil pointer evaluating interface {{}}.{f}"),
                    ));
                }
                other => {
                    return Err(err(
                        cmd.pos,
                        &cmd.text,
                        format!("can't evaluate field {f} in type {}", other.type_name()),
                    ));
                }
            };
        }
        Ok(v)
    }

    fn eval_cmd(&mut self, dot: &Value, cmd: &Cmd, fin: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return Err(err(cmd.pos, &cmd.text, "empty command"));
        };
        if let Arg::Func(name) = first {
            return self.call(dot, cmd, name, &cmd.args[1..], fin);
        }
        if cmd.args.len() > 1 || fin.is_some() {
            // `.Labels.Remove .Names`: the last field of the chain may be a method taking
            // the command's remaining arguments (Go's evalFieldChain).
            if let Some(v) = self.method_call(dot, cmd, first, fin.clone())? {
                return Ok(v);
            }
            return Err(err(
                cmd.pos,
                &cmd.text,
                format!("can't give argument to non-function {}", first.go_string()),
            ));
        }
        if let Arg::Nil = first {
            return Err(err(cmd.pos, &cmd.text, "nil is not a command"));
        }
        self.eval_arg(dot, cmd, first)
    }

    /// Evaluates `first` (a field chain) up to its last field and, when the receiver has a
    /// method of that name, calls it with the command's other arguments and `fin`.
    fn method_call(
        &mut self,
        dot: &Value,
        cmd: &Cmd,
        first: &Arg,
        fin: Option<Value>,
    ) -> R<Option<Value>> {
        let (base, chain) = match first {
            Arg::Field(f) if !f.is_empty() => (dot.clone(), f),
            Arg::Var(name, f) if !f.is_empty() => (self.var(cmd, name)?, f),
            Arg::Pipe(p, f) if !f.is_empty() => (self.eval_pipe(dot, p, true)?, f),
            _ => return Ok(None),
        };
        let (last, init) = chain.split_last().expect("non-empty chain");
        let recv = self.fields(cmd, base, init)?;
        let Value::Object(o) = &recv else {
            return Ok(None);
        };
        if !o.methods.has(last) {
            return Ok(None);
        }
        let mut vals = Vec::with_capacity(cmd.args.len());
        for a in &cmd.args[1..] {
            vals.push(self.eval_arg(dot, cmd, a)?);
        }
        vals.extend(fin);
        self.method(cmd, &recv, last, &vals)
    }

    fn eval_arg(&mut self, dot: &Value, cmd: &Cmd, arg: &Arg) -> R<Value> {
        Ok(match arg {
            Arg::Field(f) => self.fields(cmd, dot.clone(), f)?,
            Arg::Var(name, f) => {
                let v = self.var(cmd, name)?;
                self.fields(cmd, v, f)?
            }
            Arg::Func(name) => self.call(dot, cmd, name, &[], None)?,
            Arg::Str(s) => Value::str(s.as_str()),
            Arg::Num(Number::Int(i)) => Value::Int(*i),
            Arg::Num(Number::Float(f)) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Nil,
            Arg::Pipe(p, f) => {
                let v = self.eval_pipe(dot, p, true)?;
                self.fields(cmd, v, f)?
            }
        })
    }

    fn call(
        &mut self,
        dot: &Value,
        cmd: &Cmd,
        name: &str,
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let n = args.len() + usize::from(fin.is_some());
        if name == "and" || name == "or" {
            if n == 0 {
                return Err(err(
                    cmd.pos,
                    &cmd.text,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(dot, cmd, a)?;
                if (name == "and") != last.truthy() {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(n);
        for a in args {
            vals.push(self.eval_arg(dot, cmd, a)?);
        }
        if let Some(f) = fin {
            vals.push(f);
        }
        let r = if BUILTINS.contains(&name) {
            // Builtins see plain values; the printing ones see Go's `String()` of objects.
            let printing = matches!(
                name,
                "print" | "printf" | "println" | "html" | "js" | "urlquery"
            );
            if vals.iter().any(|v| matches!(v, Value::Object(_))) {
                vals = vals
                    .iter()
                    .map(|v| {
                        if printing {
                            v.printable()
                        } else {
                            v.plain().clone()
                        }
                    })
                    .collect();
            }
            builtin(name, &vals)
        } else {
            self.steps = self.steps.saturating_add(self.funcs.cost(name));
            self.funcs.call(name, &vals)
        };
        let v = r.map_err(|e| match e {
            FuncError::Call(m) => err(cmd.pos, &cmd.text, format!("error calling {name}: {m}")),
            FuncError::Raw(m) => err(cmd.pos, &cmd.text, m),
        })?;
        if let Value::Str(s) = &v {
            if s.len() > self.limits.max_output {
                return Err(err(
                    cmd.pos,
                    &cmd.text,
                    format!(
                        "result of {name} exceeds maximum size of {} bytes",
                        self.limits.max_output
                    ),
                ));
            }
            // Building strings is work too: charge it so loops of large printf calls stop.
            self.steps = self.steps.saturating_add(s.len() as u64 / 64);
        }
        self.step(cmd.pos, &cmd.text)?;
        Ok(v)
    }
}

/// Checks a function's argument count, with Go's message.
pub fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return Err(FuncError::Raw(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

/// Extracts a string argument, with Go's type error.
pub fn arg_str(v: &Value) -> Result<&str, FuncError> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Missing | Value::Nil => Err(FuncError::Raw("invalid value; expected string".into())),
        other => Err(FuncError::Raw(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        ))),
    }
}

fn evaluated_string(args: &[Value]) -> String {
    match args {
        [Value::Str(s)] => s.to_string(),
        _ => gofmt::sprint(args),
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
}

fn kind(v: &Value) -> Result<Kind, FuncError> {
    match v {
        Value::Bool(_) => Ok(Kind::Bool),
        Value::Int(_) => Ok(Kind::Int),
        Value::Float(_) => Ok(Kind::Float),
        Value::Str(_) => Ok(Kind::Str),
        Value::Missing | Value::Nil => Err(FuncError::Call("invalid type for comparison".into())),
        other => Err(FuncError::Call(format!(
            "non-comparable type {}: {}",
            other.to_go_string(),
            other.type_name()
        ))),
    }
}

fn compare(a: &Value, b: &Value, ordered: bool) -> Result<std::cmp::Ordering, FuncError> {
    use std::cmp::Ordering;
    let (ka, kb) = (kind(a)?, kind(b)?);
    if ka != kb {
        return Err(FuncError::Call("incompatible types for comparison".into()));
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => {
            if ordered {
                return Err(FuncError::Call("invalid type for comparison".into()));
            }
            x.cmp(y)
        }
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(if ordered {
            Ordering::Greater
        } else {
            Ordering::Less
        }),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => return Err(FuncError::Call("invalid type for comparison".into())),
    })
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn index_int(v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Missing | Value::Nil => {
            Err(FuncError::Call("cannot index slice/array with nil".into()))
        }
        other => Err(FuncError::Call(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        ))),
    }
}

fn builtin(name: &str, args: &[Value]) -> Result<Value, FuncError> {
    use std::cmp::Ordering;
    match name {
        "not" => {
            want_args(name, args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            want_args(name, args, 1)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                Value::Missing | Value::Nil => Err(FuncError::Call("len of nil pointer".into())),
                other => Err(FuncError::Call(format!(
                    "len of type {}",
                    other.type_name()
                ))),
            }
        }
        "index" => {
            let Some((item, idxs)) = args.split_first() else {
                return Err(FuncError::Raw(
                    "wrong number of args for index: want at least 1 got 0".into(),
                ));
            };
            let mut item = item.clone();
            for idx in idxs {
                item = match &item {
                    Value::List(l) => {
                        let i = index_int(idx)?;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| l.get(i))
                            .cloned()
                            .ok_or_else(|| FuncError::Call(format!("index out of range: {i}")))?
                    }
                    Value::Str(s) => {
                        let i = index_int(idx)?;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| s.as_bytes().get(i))
                            .map(|b| Value::Int(i64::from(*b)))
                            .ok_or_else(|| FuncError::Call(format!("index out of range: {i}")))?
                    }
                    Value::Map(m) => {
                        let Value::Str(k) = idx else {
                            return Err(FuncError::Call(format!(
                                "value has type {}; should be string",
                                idx.type_name()
                            )));
                        };
                        match m.get(&**k) {
                            Some(v) => v.clone(),
                            None if m.values().all(|v| matches!(v, Value::Str(_))) => {
                                Value::str("")
                            }
                            None => Value::Nil,
                        }
                    }
                    Value::Missing | Value::Nil => {
                        return Err(FuncError::Call("index of untyped nil".into()));
                    }
                    other => {
                        return Err(FuncError::Call(format!(
                            "can't index item of type {}",
                            other.type_name()
                        )));
                    }
                };
            }
            Ok(item)
        }
        "slice" => {
            let Some((item, idxs)) = args.split_first() else {
                return Err(FuncError::Raw(
                    "wrong number of args for slice: want at least 1 got 0".into(),
                ));
            };
            let len = match item {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Missing | Value::Nil => {
                    return Err(FuncError::Call("slice of untyped nil".into()));
                }
                other => {
                    return Err(FuncError::Call(format!(
                        "can't slice item of type {}",
                        other.type_name()
                    )));
                }
            };
            if idxs.len() > 3 || (idxs.len() == 3 && matches!(item, Value::Str(_))) {
                return Err(FuncError::Call(format!(
                    "too many slice indexes: {}",
                    idxs.len()
                )));
            }
            let mut ix = [0usize, len, len];
            for (k, v) in idxs.iter().enumerate() {
                let i = index_int(v)?;
                let i = usize::try_from(i)
                    .ok()
                    .filter(|i| *i <= len)
                    .ok_or_else(|| FuncError::Call(format!("index out of range: {i}")))?;
                ix[k] = i;
            }
            if ix[0] > ix[1] {
                return Err(FuncError::Call(format!(
                    "invalid slice index: {} > {}",
                    ix[0], ix[1]
                )));
            }
            match item {
                Value::Str(s) => s
                    .get(ix[0]..ix[1])
                    .map(Value::str)
                    .ok_or_else(|| FuncError::Call("slice splits a UTF-8 sequence".into())),
                Value::List(l) => Ok(Value::List(Arc::new(l[ix[0]..ix[1]].to_vec()))),
                _ => Ok(Value::Nil),
            }
        }
        "print" => Ok(Value::str(gofmt::sprint(args))),
        "println" => Ok(Value::str(gofmt::sprintln(args))),
        "printf" => {
            let Some((f, rest)) = args.split_first() else {
                return Err(FuncError::Raw(
                    "wrong number of args for printf: want at least 1 got 0".into(),
                ));
            };
            Ok(Value::str(gofmt::sprintf(arg_str(f)?, rest)))
        }
        "html" => Ok(Value::str(html_escape(&evaluated_string(args)))),
        "js" => Ok(Value::str(js_escape(&evaluated_string(args)))),
        "urlquery" => Ok(Value::str(query_escape(&evaluated_string(args)))),
        "eq" => {
            let Some((a, rest)) = args.split_first() else {
                return Err(FuncError::Raw(
                    "wrong number of args for eq: want at least 1 got 0".into(),
                ));
            };
            if rest.is_empty() {
                return Err(FuncError::Call("missing argument for comparison".into()));
            }
            for b in rest {
                if compare(a, b, false)? == Ordering::Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want_args(name, args, 2)?;
            let o = compare(&args[0], &args[1], name != "ne")?;
            let nan = matches!((&args[0], &args[1]), (Value::Float(x), Value::Float(y)) if x.is_nan() || y.is_nan());
            Ok(Value::Bool(match name {
                "ne" => o != Ordering::Equal || nan,
                _ if nan => false,
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        _ => Err(FuncError::Raw(format!("function \"{name}\" not defined"))),
    }
}
