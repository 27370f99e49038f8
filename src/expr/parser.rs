//! Source text to [`Expr`]: the pest grammar in `grammar/expr.pest`, a Pratt parser for operator
//! precedence, the checks Prometheus makes while parsing, and limits against hostile input.

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::{LazyLock, Once};

use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::{
    AggOp, AtModifier, BinModifier, BinOp, Cardinality, Expr, Grouping, Span, UnaryOp,
    VectorMatching, VectorSelector,
};
use super::diag::Diagnostic;
use super::duration::{UnitsError, parse_number, parse_units, seconds_to_ms};
use super::functions;
use crate::model::{Labels, METRIC_NAME, MatchOp, Matcher};

#[derive(pest_derive::Parser)]
#[grammar = "grammar/expr.pest"]
struct ExprParser;

/// Longest accepted expression in bytes; longer input is refused before parsing.
pub const MAX_EXPR_LEN: usize = 64 * 1024;
/// Deepest accepted nesting of `(`, `[` and `{`; checked before the recursive descent starts.
pub const MAX_NESTING: usize = 128;
/// Most operators (unary and binary) in one operator chain; bounds the Pratt parser's recursion.
pub const MAX_OPERATORS: usize = 512;
/// Deepest accepted expression tree; keeps every recursive pass over the tree (checker,
/// printer, evaluator) far from the end of the stack.
pub const MAX_TREE_DEPTH: usize = 512;
/// Budget of grammar rule calls for one parse (pest's process-wide call limit).
const CALL_LIMIT: usize = 50_000_000;

/// Parser switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept experimental and native-histogram functions and the `limitk`/`limit_ratio`
    /// aggregations (off by default, as in Prometheus).
    pub experimental_functions: bool,
}

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    use Assoc::{Left, Right};
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Left))
        .op(Op::infix(Rule::op_and, Left) | Op::infix(Rule::op_unless, Left))
        .op(Op::infix(Rule::op_eq, Left)
            | Op::infix(Rule::op_ne, Left)
            | Op::infix(Rule::op_lt, Left)
            | Op::infix(Rule::op_le, Left)
            | Op::infix(Rule::op_gt, Left)
            | Op::infix(Rule::op_ge, Left))
        .op(Op::infix(Rule::op_add, Left) | Op::infix(Rule::op_sub, Left))
        .op(Op::infix(Rule::op_mul, Left)
            | Op::infix(Rule::op_div, Left)
            | Op::infix(Rule::op_mod, Left)
            | Op::infix(Rule::op_atan2, Left))
        // Unary operators get their own level between `*` and `^`: PromQL's `%prec MUL` taken
        // literally would make `-2^---1*3` evaluate to -0.125 instead of -1.5.
        .op(Op::prefix(Rule::neg) | Op::prefix(Rule::pos))
        .op(Op::infix(Rule::op_pow, Right))
});

static CALL_LIMIT_INIT: Once = Once::new();

/// Parses with the given options (see [`super::parse`]).
pub fn parse_with(src: &str, opts: ParseOptions) -> Result<Expr, Diagnostic> {
    prescan(src)?;
    let root = run(Rule::root, src)?;
    let b = Builder::new(src, opts);
    let expr = first_child(root, Rule::expr, src)?;
    Ok(b.expr(expr)?.expr)
}

/// Parses a series description (`metric{a="b"}`) into a label set; only `=` matchers allowed.
pub fn parse_series_labels(src: &str) -> Result<Labels, Diagnostic> {
    prescan(src)?;
    let root = run(Rule::series_root, src)?;
    let vs = first_child(root, Rule::vector_selector, src)?;
    series_from_pair(src, vs)
}

/// Parses a series description at the start of `src` and returns its labels and the byte
/// length consumed, so the rest of a test-script `load` line (the values) can follow.
pub fn parse_series_labels_prefix(src: &str) -> Result<(Labels, usize), Diagnostic> {
    // Only the selector itself needs to be well formed; the rest of the line is the caller's.
    let root = run(Rule::series_prefix, src)?;
    let vs = first_child(root, Rule::vector_selector, src)?;
    let end = trim_end(src, vs.as_span().start(), vs.as_span().end());
    Ok((series_from_pair(src, vs)?, end))
}

fn series_from_pair(src: &str, vs: Pair<'_, Rule>) -> Result<Labels, Diagnostic> {
    let b = Builder::new(src, ParseOptions::default());
    let sel = b.vector_selector(vs)?;
    if let Some(m) = sel.matchers.iter().find(|m| m.op != MatchOp::Equal) {
        return Err(Diagnostic::new(
            format!(
                "series descriptions may only use \"=\" matchers, found \"{}\"",
                m.op.as_str()
            ),
            sel.span,
        ));
    }
    Ok(Labels::from_pairs(
        sel.matchers
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str())),
    ))
}

/// Parses a lone duration (`5m`, `-1h`, `300`) with PromQL's parser, so callers report errors
/// with a span. Milliseconds.
pub(crate) fn parse_duration_diag(src: &str) -> Result<i64, Diagnostic> {
    let root = run(Rule::duration_root, src)?;
    let d = first_child(root, Rule::duration, src)?;
    Builder::new(src, ParseOptions::default()).duration(d)
}

fn run(rule: Rule, src: &str) -> Result<Pair<'_, Rule>, Diagnostic> {
    if src.len() > MAX_EXPR_LEN {
        return Err(Diagnostic::new(
            format!(
                "expression is too long: {} bytes, the limit is {MAX_EXPR_LEN}",
                src.len()
            ),
            Span::new(MAX_EXPR_LEN, MAX_EXPR_LEN),
        ));
    }
    CALL_LIMIT_INIT.call_once(|| pest::set_call_limit(NonZeroUsize::new(CALL_LIMIT)));
    let mut pairs = ExprParser::parse(rule, src).map_err(|e| pest_error(src, &e))?;
    pairs.next().ok_or_else(|| internal(src.len()))
}

fn first_child<'i>(
    pair: Pair<'i, Rule>,
    rule: Rule,
    src: &str,
) -> Result<Pair<'i, Rule>, Diagnostic> {
    pair.into_inner()
        .find(|p| p.as_rule() == rule)
        .ok_or_else(|| internal(src.len()))
}

fn internal(pos: usize) -> Diagnostic {
    Diagnostic::new(
        "internal parser error: unexpected parse tree shape",
        Span::new(pos, pos),
    )
}

/// One lexical pass before pest runs: reports unterminated strings precisely and refuses input
/// nested deeper than [`MAX_NESTING`], which would otherwise recurse deeply in the parser.
fn prescan(src: &str) -> Result<(), Diagnostic> {
    if src.len() > MAX_EXPR_LEN {
        return Err(Diagnostic::new(
            format!(
                "expression is too long: {} bytes, the limit is {MAX_EXPR_LEN}",
                src.len()
            ),
            Span::new(MAX_EXPR_LEN, MAX_EXPR_LEN),
        ));
    }
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let start = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None | Some(b'\n') => {
                            return Err(Diagnostic::new(
                                "unterminated quoted string",
                                Span::new(start, i),
                            ));
                        }
                        Some(b'\\') => i += 2,
                        Some(&c) if c == q => break,
                        Some(_) => i += 1,
                    }
                }
            }
            b'`' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                if i >= b.len() {
                    return Err(Diagnostic::new(
                        "unterminated raw string",
                        Span::new(start, i),
                    ));
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Diagnostic::new(
                        format!(
                            "expression nests too deeply: more than {MAX_NESTING} levels of parentheses, brackets or braces"
                        ),
                        Span::new(i, i + 1),
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// An expression under construction with the depth of its tree.
struct Built {
    expr: Expr,
    depth: usize,
}

struct Builder<'s> {
    src: &'s str,
    opts: ParseOptions,
    /// Start offset of a selector exempt from the non-empty-matcher rule: the second argument
    /// of `info()`, as in Prometheus.
    lenient_selector_at: Cell<Option<usize>>,
}

type Res<T> = Result<T, Diagnostic>;

impl<'s> Builder<'s> {
    fn new(src: &'s str, opts: ParseOptions) -> Self {
        Builder {
            src,
            opts,
            lenient_selector_at: Cell::new(None),
        }
    }

    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(s.start(), trim_end(self.src, s.start(), s.end()))
    }

    fn node(&self, expr: Expr, depth: usize) -> Res<Built> {
        if depth > MAX_TREE_DEPTH {
            return Err(Diagnostic::new(
                format!(
                    "expression nests too deeply: the tree is more than {MAX_TREE_DEPTH} levels deep"
                ),
                expr.span(),
            ));
        }
        Ok(Built { expr, depth })
    }

    fn expr(&self, pair: Pair<'_, Rule>) -> Res<Built> {
        let inner = pair.into_inner();
        let mut ops = inner.clone().filter(|p| p.as_rule() != Rule::term);
        if let Some(op) = ops.nth(MAX_OPERATORS) {
            return Err(Diagnostic::new(
                format!("too many operators in one expression: the limit is {MAX_OPERATORS}"),
                self.span(&op),
            ));
        }
        PRATT
            .map_primary(|p| self.term(p))
            .map_prefix(|op, rhs| self.unary(&op, rhs?))
            .map_infix(|lhs, op, rhs| self.binary(lhs?, op, rhs?))
            .parse(inner)
    }

    fn unary(&self, op: &Pair<'_, Rule>, operand: Built) -> Res<Built> {
        let neg = op.as_rule() == Rule::neg;
        let start = op.as_span().start();
        match operand.expr {
            // Prometheus folds a sign into a number literal: `-1` is the number -1.
            Expr::Number { value, span } => Ok(Built {
                expr: Expr::Number {
                    value: if neg { -value } else { value },
                    span: Span::new(start, span.end),
                },
                depth: operand.depth,
            }),
            e => {
                let span = Span::new(start, e.span().end);
                let op = if neg { UnaryOp::Neg } else { UnaryOp::Pos };
                self.node(
                    Expr::Unary {
                        op,
                        expr: Box::new(e),
                        span,
                    },
                    operand.depth + 1,
                )
            }
        }
    }

    fn binary(&self, lhs: Built, op: Pair<'_, Rule>, rhs: Built) -> Res<Built> {
        let bin = match op.as_rule() {
            Rule::op_add => BinOp::Add,
            Rule::op_sub => BinOp::Sub,
            Rule::op_mul => BinOp::Mul,
            Rule::op_div => BinOp::Div,
            Rule::op_mod => BinOp::Mod,
            Rule::op_pow => BinOp::Pow,
            Rule::op_atan2 => BinOp::Atan2,
            Rule::op_eq => BinOp::Eq,
            Rule::op_ne => BinOp::Ne,
            Rule::op_gt => BinOp::Gt,
            Rule::op_lt => BinOp::Lt,
            Rule::op_ge => BinOp::Ge,
            Rule::op_le => BinOp::Le,
            Rule::op_and => BinOp::And,
            Rule::op_or => BinOp::Or,
            Rule::op_unless => BinOp::Unless,
            _ => return Err(internal(op.as_span().start())),
        };
        let mut modifier = BinModifier::default();
        let mut on_labels: Option<(Vec<String>, Span)> = None;
        for m in op.into_inner() {
            match m.as_rule() {
                Rule::bool_mod => {
                    if !bin.is_comparison() {
                        return Err(Diagnostic::new(
                            "bool modifier can only be used on comparison operators",
                            self.span(&m),
                        ));
                    }
                    modifier.return_bool = true;
                }
                Rule::matching => {
                    let span = self.span(&m);
                    let mut it = m.into_inner();
                    let kw = it.next().ok_or_else(|| internal(span.start))?;
                    let on = kw.as_rule() == Rule::kw_on;
                    let labels = match it.next() {
                        Some(l) => self.label_list(l)?,
                        None => Vec::new(),
                    };
                    if on {
                        on_labels = Some((labels.clone(), span));
                    }
                    modifier.matching = Some(VectorMatching { on, labels });
                }
                Rule::group_mod => {
                    let span = self.span(&m);
                    if bin.is_set() {
                        return Err(Diagnostic::new(
                            format!("no grouping allowed for \"{}\" operation", bin.as_str()),
                            span,
                        ));
                    }
                    let mut it = m.into_inner();
                    let kw = it.next().ok_or_else(|| internal(span.start))?;
                    let labels = match it.next() {
                        Some(l) => self.label_list(l)?,
                        None => Vec::new(),
                    };
                    if let Some((on, _)) = &on_labels
                        && let Some(dup) = labels.iter().find(|l| on.contains(l))
                    {
                        return Err(Diagnostic::new(
                            format!(
                                "label \"{dup}\" must not occur in ON and GROUP clause at once"
                            ),
                            span,
                        ));
                    }
                    modifier.card = if kw.as_rule() == Rule::kw_group_left {
                        Cardinality::ManyToOne(labels)
                    } else {
                        Cardinality::OneToMany(labels)
                    };
                }
                _ => {}
            }
        }
        if bin.is_set() {
            modifier.card = Cardinality::ManyToMany;
        }
        let span = Span::new(lhs.expr.span().start, rhs.expr.span().end);
        let depth = lhs.depth.max(rhs.depth) + 1;
        self.node(
            Expr::Binary {
                op: bin,
                lhs: Box::new(lhs.expr),
                rhs: Box::new(rhs.expr),
                modifier,
                span,
            },
            depth,
        )
    }

    /// A primary followed by `[range]`, `[range:step]`, `offset` and `@` suffixes.
    fn term(&self, pair: Pair<'_, Rule>) -> Res<Built> {
        let mut inner = pair.into_inner();
        let first = inner.next().ok_or_else(|| internal(0))?;
        let mut cur = self.primary(first)?;
        // Whether the current node already has an offset / @ written (an explicit `offset 0`
        // counts as written, unlike in Prometheus).
        let mut has_offset = false;
        let mut has_at = false;
        for suffix in inner {
            let sspan = self.span(&suffix);
            let whole = Span::new(cur.expr.span().start, sspan.end);
            match suffix.as_rule() {
                Rule::range => {
                    let d = suffix
                        .into_inner()
                        .next()
                        .ok_or_else(|| internal(sspan.start))?;
                    let range = self.duration(d)?;
                    let Expr::VectorSelector(selector) = cur.expr else {
                        return Err(Diagnostic::new(
                            "ranges only allowed for vector selectors",
                            whole,
                        ));
                    };
                    if has_offset {
                        return Err(Diagnostic::new(
                            "no offset modifiers allowed before range",
                            whole,
                        ));
                    }
                    if has_at {
                        return Err(Diagnostic::new(
                            "no @ modifiers allowed before range",
                            whole,
                        ));
                    }
                    cur = self.node(
                        Expr::MatrixSelector {
                            selector,
                            range,
                            span: whole,
                        },
                        cur.depth + 1,
                    )?;
                }
                Rule::subquery => {
                    let mut range = None;
                    let mut step = None;
                    for p in suffix.into_inner() {
                        if p.as_rule() == Rule::duration {
                            let d = self.duration(p.clone())?;
                            if range.is_none() {
                                range = Some(d);
                            } else {
                                if d <= 0 {
                                    return Err(Diagnostic::new(
                                        "subquery step must be greater than 0",
                                        self.span(&p),
                                    ));
                                }
                                step = Some(d);
                            }
                        }
                    }
                    let range = range.ok_or_else(|| internal(sspan.start))?;
                    let depth = cur.depth + 1;
                    cur = self.node(
                        Expr::Subquery {
                            expr: Box::new(cur.expr),
                            range,
                            step,
                            offset: 0,
                            at: None,
                            span: whole,
                        },
                        depth,
                    )?;
                    has_offset = false;
                    has_at = false;
                }
                Rule::offset => {
                    let mut neg = false;
                    let mut ms = None;
                    for p in suffix.into_inner() {
                        match p.as_rule() {
                            Rule::sign => neg = p.as_str() == "-",
                            Rule::duration => ms = Some(self.duration(p)?),
                            _ => {}
                        }
                    }
                    let ms = ms.ok_or_else(|| internal(sspan.start))?;
                    let ms = if neg { -ms } else { ms };
                    if has_offset {
                        return Err(Diagnostic::new(
                            "offset may not be set multiple times",
                            sspan,
                        ));
                    }
                    has_offset = true;
                    let mut expr = cur.expr;
                    match &mut expr {
                        Expr::VectorSelector(vs) | Expr::MatrixSelector { selector: vs, .. } => {
                            vs.offset = ms
                        }
                        Expr::Subquery { offset, .. } => *offset = ms,
                        _ => {
                            return Err(Diagnostic::new(
                                "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                                sspan,
                            ));
                        }
                    }
                    set_span(&mut expr, whole);
                    cur = Built {
                        expr,
                        depth: cur.depth,
                    };
                }
                Rule::at => {
                    let at = self.at_modifier(suffix)?;
                    if has_at {
                        return Err(Diagnostic::new(
                            "@ <timestamp> may not be set multiple times",
                            sspan,
                        ));
                    }
                    has_at = true;
                    let mut expr = cur.expr;
                    match &mut expr {
                        Expr::VectorSelector(vs) | Expr::MatrixSelector { selector: vs, .. } => {
                            vs.at = Some(at)
                        }
                        Expr::Subquery { at: a, .. } => *a = Some(at),
                        _ => {
                            return Err(Diagnostic::new(
                                "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                                sspan,
                            ));
                        }
                    }
                    set_span(&mut expr, whole);
                    cur = Built {
                        expr,
                        depth: cur.depth,
                    };
                }
                _ => return Err(internal(sspan.start)),
            }
        }
        Ok(cur)
    }

    fn at_modifier(&self, pair: Pair<'_, Rule>) -> Res<AtModifier> {
        let span = self.span(&pair);
        let mut neg = false;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::at_start => return Ok(AtModifier::Start),
                Rule::at_end => return Ok(AtModifier::End),
                Rule::sign => neg = p.as_str() == "-",
                Rule::duration => {
                    let d = p.into_inner().next().ok_or_else(|| internal(span.start))?;
                    let ms = match d.as_rule() {
                        Rule::plain_number => {
                            let secs =
                                parse_number(d.as_str()).ok_or_else(|| self.bad_number(&d))?;
                            let secs = if neg { -secs } else { secs };
                            return seconds_to_ms(secs).map(AtModifier::Timestamp).ok_or_else(
                                || {
                                    Diagnostic::new(
                                        format!("timestamp out of bounds for @ modifier: {secs}"),
                                        span,
                                    )
                                },
                            );
                        }
                        _ => self.duration_inner(d)?,
                    };
                    return Ok(AtModifier::Timestamp(if neg { -ms } else { ms }));
                }
                _ => {}
            }
        }
        Err(internal(span.start))
    }

    fn primary(&self, pair: Pair<'_, Rule>) -> Res<Built> {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::number_lit => {
                let value = self.number(pair)?;
                self.node(Expr::Number { value, span }, 1)
            }
            Rule::string_lit => {
                let value = self.string(pair)?;
                self.node(Expr::String { value, span }, 1)
            }
            Rule::paren_expr => {
                let inner = first_child(pair, Rule::expr, self.src)?;
                let b = self.expr(inner)?;
                self.node(
                    Expr::Paren {
                        expr: Box::new(b.expr),
                        span,
                    },
                    b.depth + 1,
                )
            }
            Rule::vector_selector => {
                let vs = self.vector_selector(pair)?;
                self.node(Expr::VectorSelector(vs), 1)
            }
            Rule::call => self.call(pair),
            Rule::aggregate => self.aggregate(pair),
            _ => Err(internal(span.start)),
        }
    }

    fn call(&self, pair: Pair<'_, Rule>) -> Res<Built> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = inner.next().ok_or_else(|| internal(span.start))?;
        let fname = name.as_str();
        let Some(sig) = functions::lookup(fname) else {
            return Err(Diagnostic::new(
                format!("unknown function with name \"{fname}\""),
                self.span(&name),
            ));
        };
        if sig.experimental && !self.opts.experimental_functions {
            return Err(Diagnostic::new(
                format!("function \"{fname}\" is not enabled"),
                self.span(&name),
            )
            .with_note("experimental and native-histogram functions are disabled"));
        }
        let args = inner.next().ok_or_else(|| internal(span.start))?;
        if fname == "info" {
            let second = args
                .clone()
                .into_inner()
                .filter(|p| p.as_rule() == Rule::expr)
                .nth(1);
            self.lenient_selector_at
                .set(second.map(|p| p.as_span().start()));
        }
        let (args, depth) = self.args(args)?;
        self.node(
            Expr::Call {
                func: fname.to_string(),
                args,
                span,
            },
            depth + 1,
        )
    }

    /// Arguments of a call or aggregation, with the deepest argument's depth.
    fn args(&self, pair: Pair<'_, Rule>) -> Res<(Vec<Expr>, usize)> {
        let mut args = Vec::new();
        let mut depth = 0;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::expr => {
                    let b = self.expr(p)?;
                    depth = depth.max(b.depth);
                    args.push(b.expr);
                }
                Rule::trailing_comma => {
                    return Err(Diagnostic::new(
                        "trailing commas not allowed in function call args",
                        self.span(&p),
                    ));
                }
                _ => {}
            }
        }
        Ok((args, depth))
    }

    fn aggregate(&self, pair: Pair<'_, Rule>) -> Res<Built> {
        let span = self.span(&pair);
        let mut op = None;
        let mut grouping = None;
        let mut args = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::agg_op => {
                    let a = AggOp::from_name(p.as_str()).ok_or_else(|| internal(span.start))?;
                    if matches!(a, AggOp::Limitk | AggOp::LimitRatio)
                        && !self.opts.experimental_functions
                    {
                        return Err(Diagnostic::new(
                            format!("aggregation \"{}\" is not enabled", a.as_str()),
                            self.span(&p),
                        )
                        .with_note("limitk and limit_ratio are experimental"));
                    }
                    op = Some(a);
                }
                Rule::grouping => {
                    let mut it = p.into_inner();
                    let kw = it.next().ok_or_else(|| internal(span.start))?;
                    let labels = match it.next() {
                        Some(l) => self.label_list(l)?,
                        None => Vec::new(),
                    };
                    grouping = Some(if kw.as_rule() == Rule::kw_by {
                        Grouping::By(labels)
                    } else {
                        Grouping::Without(labels)
                    });
                }
                Rule::call_args => args = Some(self.args(p)?),
                _ => {}
            }
        }
        let op = op.ok_or_else(|| internal(span.start))?;
        let (mut args, depth) = args.ok_or_else(|| internal(span.start))?;
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            return Err(Diagnostic::new(
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
                span,
            ));
        }
        let expr = args.pop().ok_or_else(|| internal(span.start))?;
        let param = args.pop().map(Box::new);
        self.node(
            Expr::Aggregate {
                op,
                expr: Box::new(expr),
                param,
                grouping,
                span,
            },
            depth + 1,
        )
    }

    fn vector_selector(&self, pair: Pair<'_, Rule>) -> Res<VectorSelector> {
        let span = self.span(&pair);
        let mut name: Option<String> = None;
        let mut matchers: Vec<Matcher> = Vec::new();
        let mut inner_name: Option<(String, Span)> = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::metric_name => name = Some(p.as_str().to_string()),
                Rule::matchers => {
                    for m in p.into_inner() {
                        match m.as_rule() {
                            Rule::label_matcher => {
                                let mspan = self.span(&m);
                                let mut it = m.into_inner();
                                let (lname, op, value) = match (it.next(), it.next(), it.next()) {
                                    (Some(n), Some(o), Some(v)) => (n, o, v),
                                    _ => return Err(internal(mspan.start)),
                                };
                                let lname = self.label_name(lname)?;
                                let op = match op.as_str() {
                                    "=" => MatchOp::Equal,
                                    "!=" => MatchOp::NotEqual,
                                    "=~" => MatchOp::Regex,
                                    _ => MatchOp::NotRegex,
                                };
                                let vspan = self.span(&value);
                                let value = self.string(value)?;
                                if lname == METRIC_NAME
                                    && op == MatchOp::Equal
                                    && inner_name.is_none()
                                {
                                    inner_name = Some((value.clone(), mspan));
                                }
                                matchers.push(self.matcher(op, lname, value, vspan)?);
                            }
                            Rule::quoted_metric => {
                                let mspan = self.span(&m);
                                let s =
                                    m.into_inner().next().ok_or_else(|| internal(mspan.start))?;
                                let value = self.string(s)?;
                                if let Some((prev, _)) = &inner_name {
                                    return Err(Diagnostic::new(
                                        format!(
                                            "metric name must not be set twice: \"{prev}\" or \"{value}\""
                                        ),
                                        mspan,
                                    ));
                                }
                                inner_name = Some((value.clone(), mspan));
                                matchers.push(self.matcher(
                                    MatchOp::Equal,
                                    METRIC_NAME.to_string(),
                                    value,
                                    mspan,
                                )?);
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = &name {
            if let Some(m) = matchers.iter().find(|m| m.name == METRIC_NAME) {
                let mspan = inner_name.as_ref().map_or(span, |(_, s)| *s);
                return Err(Diagnostic::new(
                    format!(
                        "metric name must not be set twice: \"{n}\" or \"{}\"",
                        m.value
                    ),
                    mspan,
                ));
            }
            matchers.insert(
                0,
                self.matcher(MatchOp::Equal, METRIC_NAME.to_string(), n.clone(), span)?,
            );
        }
        if matchers.iter().all(Matcher::matches_empty)
            && self.lenient_selector_at.get() != Some(span.start)
        {
            return Err(Diagnostic::new(
                "vector selector must contain at least one non-empty matcher",
                span,
            ));
        }
        Ok(VectorSelector {
            name,
            matchers,
            offset: 0,
            at: None,
            span,
        })
    }

    fn matcher(&self, op: MatchOp, name: String, value: String, span: Span) -> Res<Matcher> {
        Matcher::new(op, name, value).map_err(|e| {
            let reason = match &e.source {
                regex::Error::Syntax(s) => s
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string(),
                other => other.to_string(),
            };
            Diagnostic::new(
                format!("invalid regular expression {:?}: {reason}", e.pattern),
                span,
            )
        })
    }

    fn label_list(&self, pair: Pair<'_, Rule>) -> Res<Vec<String>> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::label_name)
            .map(|p| self.label_name(p))
            .collect()
    }

    fn label_name(&self, pair: Pair<'_, Rule>) -> Res<String> {
        let span = self.span(&pair);
        let inner = pair
            .into_inner()
            .next()
            .ok_or_else(|| internal(span.start))?;
        match inner.as_rule() {
            Rule::label_ident => Ok(inner.as_str().to_string()),
            _ => {
                let s = self.string(inner)?;
                if s.is_empty() {
                    return Err(Diagnostic::new("label name must not be empty", span));
                }
                Ok(s)
            }
        }
    }

    fn string(&self, pair: Pair<'_, Rule>) -> Res<String> {
        let span = self.span(&pair);
        let inner = if pair.as_rule() == Rule::string_lit {
            pair.into_inner()
                .next()
                .ok_or_else(|| internal(span.start))?
        } else {
            pair
        };
        unquote(inner.as_str(), span.start)
    }

    fn number(&self, pair: Pair<'_, Rule>) -> Res<f64> {
        let span = self.span(&pair);
        let inner = pair
            .into_inner()
            .next()
            .ok_or_else(|| internal(span.start))?;
        match inner.as_rule() {
            Rule::duration_units => {
                let ms = self.units(&inner)?;
                Ok(ms as f64 / 1000.0)
            }
            Rule::plain_number => {
                parse_number(inner.as_str()).ok_or_else(|| self.bad_number(&inner))
            }
            _ => Err(self.bad_number(&inner)),
        }
    }

    fn duration(&self, pair: Pair<'_, Rule>) -> Res<i64> {
        let span = self.span(&pair);
        let inner = pair
            .into_inner()
            .next()
            .ok_or_else(|| internal(span.start))?;
        self.duration_inner(inner)
    }

    fn duration_inner(&self, inner: Pair<'_, Rule>) -> Res<i64> {
        match inner.as_rule() {
            Rule::duration_units => self.units(&inner),
            Rule::plain_number => {
                let secs = parse_number(inner.as_str()).ok_or_else(|| self.bad_number(&inner))?;
                seconds_to_ms(secs).filter(|_| secs >= 0.0).ok_or_else(|| {
                    Diagnostic::new(
                        format!("invalid duration: {}", inner.as_str()),
                        self.span(&inner),
                    )
                })
            }
            _ => Err(self.bad_number(&inner)),
        }
    }

    fn units(&self, pair: &Pair<'_, Rule>) -> Res<i64> {
        parse_units(pair.as_str()).map_err(|e| {
            let msg = match e {
                UnitsError::Syntax => format!("not a valid duration string: \"{}\"", pair.as_str()),
                UnitsError::Overflow => format!("duration out of range: \"{}\"", pair.as_str()),
            };
            Diagnostic::new(msg, self.span(pair))
        })
    }

    fn bad_number(&self, pair: &Pair<'_, Rule>) -> Diagnostic {
        Diagnostic::new(
            format!("bad number or duration syntax: \"{}\"", pair.as_str()),
            self.span(pair),
        )
    }
}

fn set_span(e: &mut Expr, s: Span) {
    match e {
        Expr::VectorSelector(vs) => vs.span = s,
        Expr::MatrixSelector { span, .. } | Expr::Subquery { span, .. } => *span = s,
        _ => {}
    }
}

/// End of `[start, end)` without trailing whitespace (pest spans include skipped whitespace).
fn trim_end(src: &str, start: usize, end: usize) -> usize {
    let b = src.as_bytes();
    let mut e = end.min(b.len());
    while e > start && matches!(b[e - 1], b' ' | b'\t' | b'\r' | b'\n') {
        e -= 1;
    }
    e
}

/// Resolves a quoted literal (with its quotes) the way Go/PromQL does: `\a \b \f \n \r \t \v
/// \\`, the literal's own quote, `\NNN` octal, `\xHH`, `\uHHHH`, `\UHHHHHHHH`; backtick strings
/// are raw. Byte escapes must add up to valid UTF-8.
pub(crate) fn unquote(lit: &str, offset: usize) -> Res<String> {
    let Some(q) = lit.chars().next() else {
        return Err(internal(offset));
    };
    let body = lit.get(1..lit.len().saturating_sub(1)).unwrap_or("");
    if q == '`' {
        return Ok(body.to_string());
    }
    if !body.contains('\\') {
        return Ok(body.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let esc_start = offset + 1 + i;
        let bad =
            |len: usize, msg: String| Diagnostic::new(msg, Span::new(esc_start, esc_start + len));
        let Some((_, e)) = chars.next() else {
            return Err(bad(1, "escape sequence not terminated".to_string()));
        };
        let simple = match e {
            'a' => Some(0x07u8),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            c if c == q => Some(c as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (n, radix, is_byte) = match e {
            '0'..='7' => (2, 8, true),
            'x' => (2, 16, true),
            'u' => (4, 16, false),
            'U' => (8, 16, false),
            other => {
                return Err(bad(
                    1 + other.len_utf8(),
                    format!("unknown escape sequence \"\\{other}\""),
                ));
            }
        };
        let mut v: u32 = if e.is_digit(8) && is_byte && radix == 8 {
            e.to_digit(8).unwrap_or(0)
        } else {
            0
        };
        for k in 0..n {
            match chars.next() {
                Some((_, d)) if d.is_digit(radix) => v = v * radix + d.to_digit(radix).unwrap_or(0),
                _ => {
                    return Err(bad(
                        2 + k,
                        format!("invalid escape sequence: expected {n} digits after \"\\{e}\""),
                    ));
                }
            }
        }
        if is_byte {
            if v > 255 {
                return Err(bad(4, format!("octal escape value {v} > 255")));
            }
            out.push(v as u8);
        } else {
            let Some(ch) = char::from_u32(v) else {
                return Err(bad(
                    2 + n,
                    format!("invalid Unicode code point U+{v:X} in escape sequence"),
                ));
            };
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    String::from_utf8(out).map_err(|_| {
        Diagnostic::new(
            "string literal is not valid UTF-8",
            Span::new(offset, offset + lit.len()),
        )
        .with_note("\\x and octal escapes produce bytes, and the bytes must form UTF-8 text")
    })
}

// ------------------------------------------------------------------------- pest errors

fn pest_error(src: &str, e: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let (found, len) = describe_token(src, pos);
            let expected = expected_words(positives);
            let message = if expected.is_empty() {
                format!("unexpected {found}")
            } else {
                format!("unexpected {found}, expected {}", join_or(&expected))
            };
            Diagnostic::new(message, Span::new(pos, pos + len))
        }
        ErrorVariant::CustomError { message } => {
            let message = if message.contains("limit reached") {
                format!("expression is too complex to parse ({message})")
            } else {
                message.clone()
            };
            Diagnostic::new(message, Span::new(pos, pos))
        }
    }
}

/// Human words for what the grammar wanted, most general first, without duplicates.
fn expected_words(positives: &[Rule]) -> Vec<&'static str> {
    use Rule::*;
    let mut words: Vec<&'static str> = Vec::new();
    let mut push = |w: &'static str| {
        if !words.contains(&w) {
            words.push(w);
        }
    };
    for r in positives {
        let w = match r {
            expr | term | neg | pos | number_lit | paren_expr | aggregate | agg_op | call
            | func_name | vector_selector | metric_name => "an expression",
            op_pow | op_mul | op_div | op_mod | op_atan2 | op_add | op_sub | op_eq | op_ne
            | op_le | op_lt | op_ge | op_gt | op_and | op_or | op_unless => "an operator",
            EOI => "end of input",
            rparen => "\")\"",
            rbrace => "\"}\"",
            rbracket => "\"]\"",
            colon => "\":\"",
            call_args => "\"(\"",
            label_list => "\"(\"",
            matchers => "\"{\"",
            label_matcher | quoted_metric => "a label matcher",
            label_name | label_ident => "a label name",
            match_op => "a match operator (=, !=, =~ or !~)",
            string_lit | dq_string | sq_string | raw_string => "a string",
            duration | duration_units | plain_number => "a duration",
            at_start | kw_start => "\"start()\"",
            at_end | kw_end => "\"end()\"",
            _ => continue,
        };
        push(w);
    }
    let has = |w: &str| words.contains(&w);
    // Inside braces both a label name and a quoted metric name may start the next item.
    let matcher = has("a label name") && has("a string") && !has("an expression");
    let mut out: Vec<&'static str> = Vec::new();
    let expression = has("an expression");
    let operator = has("an operator");
    for w in &words {
        let drop = (expression && *w == "a string")
            || (matcher && matches!(*w, "a label name" | "a string"))
            || (operator && matches!(*w, "\"(\"" | "\"{\""))
            || (has("\"start()\"") && *w == "a duration");
        if !drop {
            out.push(w);
        }
    }
    if has("\"start()\"") {
        out.push("a timestamp");
    }
    if matcher {
        out.push("a label matcher");
    }
    // Stable order: general words first, then punctuation, end of input last.
    out.sort_by_key(|w| match *w {
        "an expression" => 0,
        "a label matcher" => 1,
        "a label name" => 2,
        "a string" => 3,
        "a duration" => 4,
        "an operator" => 6,
        "end of input" => 9,
        _ => 5,
    });
    out
}

fn join_or(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A short description of the token at `pos` and its length in bytes, for "unexpected ..." text.
fn describe_token(src: &str, pos: usize) -> (String, usize) {
    let Some(rest) = src.get(pos..) else {
        return ("end of input".to_string(), 0);
    };
    let Some(c) = rest.chars().next() else {
        return ("end of input".to_string(), 0);
    };
    let word_len = |pred: &dyn Fn(char) -> bool| {
        rest.char_indices()
            .find(|(_, c)| !pred(*c))
            .map_or(rest.len(), |(i, _)| i)
    };
    if c.is_ascii_alphabetic() || c == '_' {
        let n = word_len(&|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let w = &rest[..n];
        let lower = w.to_ascii_lowercase();
        let kw = matches!(
            lower.as_str(),
            "and"
                | "or"
                | "unless"
                | "atan2"
                | "bool"
                | "on"
                | "ignoring"
                | "group_left"
                | "group_right"
                | "by"
                | "without"
                | "offset"
        );
        return (
            if kw {
                format!("keyword \"{w}\"")
            } else {
                format!("identifier \"{w}\"")
            },
            n,
        );
    }
    if c.is_ascii_digit() || (c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit())) {
        let n = word_len(&|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        return (format!("number \"{}\"", &rest[..n]), n);
    }
    if matches!(c, '"' | '\'' | '`') {
        let end = rest[1..].find(c).map_or(rest.len(), |i| i + 2);
        let text: String = rest[..end].chars().take(24).collect();
        let text = if text.len() < end {
            format!("{text}...")
        } else {
            text
        };
        return (format!("string {text}"), end);
    }
    for op in ["==", "!=", ">=", "<=", "=~", "!~"] {
        if rest.starts_with(op) {
            return (format!("\"{op}\""), 2);
        }
    }
    if c.is_control() {
        return (format!("character {:?}", c), c.len_utf8());
    }
    (format!("\"{c}\""), c.len_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        match parse_with(s, ParseOptions::default()) {
            Ok(e) => e,
            Err(d) => panic!("{s}: {}", d.render(s, None)),
        }
    }

    /// Constant folding over the literal subset, to check precedence by value.
    fn eval(e: &Expr) -> f64 {
        match e {
            Expr::Number { value, .. } => *value,
            Expr::Paren { expr, .. } => eval(expr),
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
                ..
            } => -eval(expr),
            Expr::Unary {
                op: UnaryOp::Pos,
                expr,
                ..
            } => eval(expr),
            Expr::Binary { op, lhs, rhs, .. } => {
                let (a, b) = (eval(lhs), eval(rhs));
                match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div => a / b,
                    BinOp::Mod => a % b,
                    BinOp::Pow => a.powf(b),
                    BinOp::Atan2 => a.atan2(b),
                    BinOp::Eq => f64::from(u8::from(a == b)),
                    BinOp::Ne => f64::from(u8::from(a != b)),
                    BinOp::Gt => f64::from(u8::from(a > b)),
                    BinOp::Lt => f64::from(u8::from(a < b)),
                    BinOp::Ge => f64::from(u8::from(a >= b)),
                    BinOp::Le => f64::from(u8::from(a <= b)),
                    _ => f64::NAN,
                }
            }
            _ => f64::NAN,
        }
    }

    #[test]
    fn precedence_by_value() {
        for (src, want) in [
            ("-2^---1*3", -1.5),
            ("- - - 1", -1.0),
            ("-2^2", -4.0),
            ("1 - -1 * 2", 3.0),
            ("2^3^2", 512.0),
            ("8 / 2 / 2", 2.0),
            ("1 + 2 * 3", 7.0),
            ("(1 + 2) * 3", 9.0),
            ("2 * 3 % 4", 2.0),
            ("10 - 2 - 3", 5.0),
            ("1 + 2 == bool 3", 1.0),
            ("2 ^ -1", 0.5),
            ("-1 ^ 2", -1.0),
            ("0x10 + 010", 24.0),
            ("1h / 1m", 60.0),
            (".5 + 2.", 2.5),
            ("1e3 + 12.34e-2", 1000.1234),
        ] {
            let got = eval(&p(src));
            assert!((got - want).abs() < 1e-9, "{src}: got {got}, want {want}");
        }
    }

    #[test]
    fn tree_shapes() {
        // `-1` is folded into the literal; `-x` stays a unary node.
        assert!(matches!(p("-1"), Expr::Number { value, .. } if value == -1.0));
        assert!(matches!(
            p("-foo"),
            Expr::Unary {
                op: UnaryOp::Neg,
                ..
            }
        ));
        // Suffixes bind tighter than unary minus.
        match p("-foo offset 5m") {
            Expr::Unary { expr, .. } => {
                assert!(matches!(*expr, Expr::VectorSelector(ref vs) if vs.offset == 300_000));
            }
            e => panic!("{e:?}"),
        }
        // `and` binds tighter than `or`.
        match p("a or b and c") {
            Expr::Binary {
                op: BinOp::Or, rhs, ..
            } => assert!(matches!(*rhs, Expr::Binary { op: BinOp::And, .. })),
            e => panic!("{e:?}"),
        }
        // Comparisons bind looser than arithmetic, tighter than `and`.
        match p("a + b > c and d") {
            Expr::Binary {
                op: BinOp::And,
                lhs,
                ..
            } => match *lhs {
                Expr::Binary {
                    op: BinOp::Gt, lhs, ..
                } => assert!(matches!(*lhs, Expr::Binary { op: BinOp::Add, .. })),
                e => panic!("{e:?}"),
            },
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn selectors_and_modifiers() {
        let Expr::MatrixSelector {
            selector, range, ..
        } = p(r#"http_requests_total{status_code=~"5..",}[5m] @ 100 offset -1m"#)
        else {
            panic!()
        };
        assert_eq!(range, 300_000);
        assert_eq!(selector.offset, -60_000);
        assert_eq!(selector.at, Some(AtModifier::Timestamp(100_000)));
        assert_eq!(selector.matchers.len(), 2);
        assert_eq!(selector.matchers[0].name, METRIC_NAME);
        let Expr::VectorSelector(vs) = p(r#"{"my.metric", "a.b"="x"}"#) else {
            panic!()
        };
        assert_eq!(vs.name, None);
        assert_eq!(vs.matchers[0].value, "my.metric");
        assert_eq!(vs.matchers[1].name, "a.b");
        let Expr::Subquery {
            range,
            step,
            at,
            offset,
            ..
        } = p("rate(x[5m])[30m:1m] offset 1h @ end()")
        else {
            panic!()
        };
        assert_eq!(
            (range, step, offset, at),
            (1_800_000, Some(60_000), 3_600_000, Some(AtModifier::End))
        );
        assert!(matches!(p("x[30m:]"), Expr::Subquery { step: None, .. }));
        assert!(matches!(
            p("foo @ 1.234"),
            Expr::VectorSelector(VectorSelector {
                at: Some(AtModifier::Timestamp(1234)),
                ..
            })
        ));
    }

    #[test]
    fn contextual_keywords() {
        for src in [
            "offset",
            "offset offset 5m",
            "by",
            "sum",
            "sum + 1",
            "sum{job=\"x\"}",
            "sum by (on, bool, by) (x)",
            "SUM BY (group) (http_requests{job=\"api-server\"})",
            "a AND b Or c UNLESS d",
            "x{on=\"1\", bool=\"2\", offset=\"3\"}",
            "start + end",
            "and",
            "nan_count",
            "inf_x",
            "count_values(\"value\", x)",
            "sum(x) without (a,)",
            "# comment\n up # trailing",
            "foo:bar:rate5m",
            "a > bool b",
            "a * on(x) group_left(y) b",
            "a * ignoring() group_right b",
            "a and on() b",
            "topk(3, x)",
            "quantile without (a) (0.9, x)",
            "foo and on(x) bar",
            "`raw\\n` + 'a\\'b' + \"\\u00e9\\x41\\101\"",
        ] {
            p(src);
        }
    }

    #[test]
    fn strings() {
        assert!(
            matches!(p(r#""\u00e9\x41\101\t""#), Expr::String { ref value, .. } if value == "éAA\t")
        );
        assert!(matches!(p(r"`a\nb`"), Expr::String { ref value, .. } if value == "a\\nb"));
        assert!(matches!(p(r"'it\'s'"), Expr::String { ref value, .. } if value == "it's"));
        assert!(parse_with(r#""a\xc5z""#, ParseOptions::default()).is_err());
        assert!(parse_with(r#""\q""#, ParseOptions::default()).is_err());
        assert!(parse_with(r#""\'""#, ParseOptions::default()).is_err());
    }

    #[test]
    fn errors_have_words_not_rules() {
        for (src, want) in [
            (
                "sum(rate(http_errors[5m]) / )",
                "unexpected \")\", expected an expression",
            ),
            ("foo{a=1}", "unexpected number \"1\", expected a string"),
            ("", "unexpected end of input, expected an expression"),
            (
                "foo bar",
                "unexpected identifier \"bar\", expected an operator or end of input",
            ),
            ("rate(foo[5x])", "bad number or duration syntax: \"5x\""),
            (
                "foo offset 5m offset 1m",
                "offset may not be set multiple times",
            ),
            (
                "{}",
                "vector selector must contain at least one non-empty matcher",
            ),
            ("foo(1)", "unknown function with name \"foo\""),
            (
                "a + bool b",
                "bool modifier can only be used on comparison operators",
            ),
        ] {
            let err = parse_with(src, ParseOptions::default()).expect_err(src);
            assert_eq!(err.message, want, "{src}");
        }
    }

    #[test]
    fn limits() {
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(
            parse_with(&deep, ParseOptions::default())
                .unwrap_err()
                .message
                .contains("nests too deeply")
        );
        let ok = format!("{}1{}", "(".repeat(120), ")".repeat(120));
        p(&ok);
        let long = "1+".repeat(40_000) + "1";
        assert!(
            parse_with(&long, ParseOptions::default())
                .unwrap_err()
                .message
                .contains("too long")
        );
        let many = "2^".repeat(1000) + "1";
        assert!(
            parse_with(&many, ParseOptions::default())
                .unwrap_err()
                .message
                .contains("too many operators")
        );
        let minus = "-".repeat(1000) + "1";
        assert!(parse_with(&minus, ParseOptions::default()).is_err());
    }

    #[test]
    fn deep_but_legal_trees_survive_every_pass() {
        // Runs on a default 2 MiB test thread: parse, check, print and drop must all fit.
        for src in [
            "up".to_string() + &" + up".repeat(MAX_OPERATORS - 1),
            "2".to_string() + &" ^ 2".repeat(MAX_OPERATORS - 1),
            "-".repeat(MAX_OPERATORS - 1) + "up",
            format!(
                "{}up{}",
                "abs(".repeat(MAX_NESTING - 1),
                ")".repeat(MAX_NESTING - 1)
            ),
            format!(
                "{}up{}",
                "sum(-(".repeat(MAX_NESTING / 2 - 1),
                "))".repeat(MAX_NESTING / 2 - 1)
            ),
        ] {
            let e = p(&src);
            let _ = crate::expr::check(&e);
            let printed = e.to_string();
            assert_eq!(
                parse_with(&printed, ParseOptions::default()).as_ref(),
                Ok(&e)
            );
        }
        let too_deep = format!(
            "{}up{}",
            "sum(-(".repeat(MAX_NESTING / 2 + 1),
            "))".repeat(MAX_NESTING / 2 + 1)
        );
        assert!(parse_with(&too_deep, ParseOptions::default()).is_err());
    }

    #[test]
    fn series_labels() {
        let l = parse_series_labels(r#"http_requests{job="api", instance="0"}"#).unwrap();
        assert_eq!(l.get("__name__"), Some("http_requests"));
        assert_eq!(l.get("job"), Some("api"));
        assert!(parse_series_labels(r#"x{a=~"b"}"#).is_err());
        let (l, n) = parse_series_labels_prefix(r#"{"my.metric", a="1"} 0+10x10"#).unwrap();
        assert_eq!(l.get("__name__"), Some("my.metric"));
        assert_eq!(n, 20);
        let (l, n) = parse_series_labels_prefix("up 1 2 3").unwrap();
        assert_eq!((l.len(), n), (1, 2));
    }
}
