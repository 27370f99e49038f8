//! The expression tree shared by the parser, the type checker, the printer and the evaluator.
//!
//! Durations and offsets are milliseconds. Every node carries a `Span` into its source so that
//! type errors can point at the right column; spans never take part in tree equality, so
//! `parse(print(parse(s))) == parse(s)` holds even though the printed text differs.

use std::fmt;

use crate::model::Matcher;

/// Byte range `[start, end)` of a node in the source text.
#[derive(Debug, Clone, Copy, Default, Eq)]
pub struct Span {
    /// First byte of the node.
    pub start: usize,
    /// One past the last byte of the node.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// Spans are positions, not meaning: two trees that differ only in layout are equal.
impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Consistent with `PartialEq`: all spans are equal, so all hash alike.
impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// The static type of an expression, as PromQL names it in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// A single float.
    Scalar,
    /// One sample per series at the evaluation time.
    Vector,
    /// A window of samples per series.
    Matrix,
    /// A string literal.
    String,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        })
    }
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AtModifier {
    /// `@ <unix seconds>`, stored in milliseconds.
    Timestamp(i64),
    /// `@ start()`
    Start,
    /// `@ end()`
    End,
}

/// `metric{label="value"} offset 5m @ 100`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// Metric name when written outside the braces (also present as a `__name__` matcher).
    pub name: Option<String>,
    /// All matchers, including the `__name__` one implied by `name`.
    pub matchers: Vec<Matcher>,
    /// `offset` in milliseconds (negative allowed).
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
    /// Source position.
    pub span: Span,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `+x`
    Pos,
}

/// Binary operators, in PromQL's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        use BinOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "^",
            Atan2 => "atan2",
            Eq => "==",
            Ne => "!=",
            Gt => ">",
            Lt => "<",
            Ge => ">=",
            Le => "<=",
            And => "and",
            Or => "or",
            Unless => "unless",
        }
    }

    /// `== != > < >= <=`: filter unless `bool` is given.
    pub fn is_comparison(self) -> bool {
        use BinOp::*;
        matches!(self, Eq | Ne | Gt | Lt | Ge | Le)
    }

    /// `and or unless`: always many-to-many, vectors only.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Binding strength, higher binds tighter (PromQL's table); the printer uses it to place parentheses.
    pub fn precedence(self) -> u8 {
        use BinOp::*;
        match self {
            Or => 1,
            And | Unless => 2,
            Eq | Ne | Gt | Lt | Ge | Le => 3,
            Add | Sub => 4,
            Mul | Div | Mod | Atan2 => 5,
            Pow => 7,
        }
    }

    /// Only `^` is right-associative.
    pub fn is_right_assoc(self) -> bool {
        self == BinOp::Pow
    }
}

/// How series on both sides of a vector operation are paired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cardinality {
    /// Default: each left series matches at most one right series.
    OneToOne,
    /// `group_left(extra...)`: many left series per right series; extra labels copied from the right.
    ManyToOne(Vec<String>),
    /// `group_right(extra...)`: many right series per left series; extra labels copied from the left.
    OneToMany(Vec<String>),
    /// Set operators.
    ManyToMany,
}

/// `on(...)` / `ignoring(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    /// True for `on`, false for `ignoring`.
    pub on: bool,
    /// The listed label names.
    pub labels: Vec<String>,
}

/// Everything that may follow a binary operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinModifier {
    /// `bool` on a comparison.
    pub return_bool: bool,
    /// `on`/`ignoring`, if written.
    pub matching: Option<VectorMatching>,
    /// `group_left`/`group_right`, or `ManyToMany` for set operators.
    pub card: Cardinality,
}

impl Default for BinModifier {
    fn default() -> Self {
        BinModifier {
            return_bool: false,
            matching: None,
            card: Cardinality::OneToOne,
        }
    }
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggOp {
    /// `sum`
    Sum,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `avg`
    Avg,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `count`
    Count,
    /// `count_values(label, v)`
    CountValues,
    /// `bottomk(k, v)`
    Bottomk,
    /// `topk(k, v)`
    Topk,
    /// `quantile(q, v)`
    Quantile,
    /// `limitk(k, v)` (experimental upstream; parsed so errors are precise)
    Limitk,
    /// `limit_ratio(r, v)` (experimental upstream)
    LimitRatio,
}

impl AggOp {
    /// All operators with their PromQL names (case-insensitive in source).
    pub const ALL: [(&'static str, AggOp); 14] = [
        ("sum", AggOp::Sum),
        ("min", AggOp::Min),
        ("max", AggOp::Max),
        ("avg", AggOp::Avg),
        ("group", AggOp::Group),
        ("stddev", AggOp::Stddev),
        ("stdvar", AggOp::Stdvar),
        ("count", AggOp::Count),
        ("count_values", AggOp::CountValues),
        ("bottomk", AggOp::Bottomk),
        ("topk", AggOp::Topk),
        ("quantile", AggOp::Quantile),
        ("limitk", AggOp::Limitk),
        ("limit_ratio", AggOp::LimitRatio),
    ];

    /// Looks an operator up by name, ignoring case as PromQL does.
    pub fn from_name(s: &str) -> Option<AggOp> {
        AggOp::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, op)| *op)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        AggOp::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Whether the operator takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        use AggOp::*;
        matches!(
            self,
            CountValues | Bottomk | Topk | Quantile | Limitk | LimitRatio
        )
    }
}

/// `by (...)` or `without (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    /// `by (labels)`; `by ()` is an empty list.
    By(Vec<String>),
    /// `without (labels)`.
    Without(Vec<String>),
}

/// An expression node.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A float literal (also `Inf`, `NaN`, hex and durations used as numbers).
    Number {
        /// The value.
        value: f64,
        /// Source position.
        span: Span,
    },
    /// A string literal, escapes already resolved.
    String {
        /// The value.
        value: String,
        /// Source position.
        span: Span,
    },
    /// An instant vector selector.
    VectorSelector(VectorSelector),
    /// `selector[range]`.
    MatrixSelector {
        /// The selector, carrying any `offset` / `@`.
        selector: VectorSelector,
        /// Window length in ms.
        range: i64,
        /// Source position.
        span: Span,
    },
    /// `expr[range:step] offset x @ t`.
    Subquery {
        /// Inner expression (an instant vector).
        expr: Box<Expr>,
        /// Window length in ms.
        range: i64,
        /// Resolution in ms; `None` means the global evaluation interval.
        step: Option<i64>,
        /// `offset` in ms.
        offset: i64,
        /// `@` modifier.
        at: Option<AtModifier>,
        /// Source position.
        span: Span,
    },
    /// `( expr )`.
    Paren {
        /// The inner expression.
        expr: Box<Expr>,
        /// Source position.
        span: Span,
    },
    /// `-expr` / `+expr`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<Expr>,
        /// Source position.
        span: Span,
    },
    /// `lhs op modifiers rhs`.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// `bool`, `on`/`ignoring`, `group_left`/`group_right`.
        modifier: BinModifier,
        /// Source position.
        span: Span,
    },
    /// `op by (...) (param, expr)`.
    Aggregate {
        /// The aggregation.
        op: AggOp,
        /// The vector being aggregated.
        expr: Box<Expr>,
        /// The parameter of `topk`, `quantile`, `count_values`...
        param: Option<Box<Expr>>,
        /// `by`/`without`, if written.
        grouping: Option<Grouping>,
        /// Source position.
        span: Span,
    },
    /// `func(args...)`.
    Call {
        /// Function name as in the function table (lower case, as written).
        func: String,
        /// Arguments.
        args: Vec<Expr>,
        /// Source position.
        span: Span,
    },
}

impl Expr {
    /// Source position of the node.
    pub fn span(&self) -> Span {
        match self {
            Expr::Number { span, .. }
            | Expr::String { span, .. }
            | Expr::MatrixSelector { span, .. }
            | Expr::Subquery { span, .. }
            | Expr::Paren { span, .. }
            | Expr::Unary { span, .. }
            | Expr::Binary { span, .. }
            | Expr::Aggregate { span, .. }
            | Expr::Call { span, .. } => *span,
            Expr::VectorSelector(vs) => vs.span,
        }
    }

    /// Resets every span in the tree to `Span::default()`, so that `Debug` output of two trees
    /// compares by structure only (handy in tests and fuzzers, where `NaN != NaN` defeats `==`).
    pub fn clear_spans(&mut self) {
        match self {
            Expr::Number { span, .. } | Expr::String { span, .. } => *span = Span::default(),
            Expr::VectorSelector(vs) => vs.span = Span::default(),
            Expr::MatrixSelector { selector, span, .. } => {
                selector.span = Span::default();
                *span = Span::default();
            }
            Expr::Subquery { expr, span, .. }
            | Expr::Paren { expr, span }
            | Expr::Unary { expr, span, .. } => {
                expr.clear_spans();
                *span = Span::default();
            }
            Expr::Binary { lhs, rhs, span, .. } => {
                lhs.clear_spans();
                rhs.clear_spans();
                *span = Span::default();
            }
            Expr::Aggregate {
                expr, param, span, ..
            } => {
                expr.clear_spans();
                if let Some(p) = param {
                    p.clear_spans();
                }
                *span = Span::default();
            }
            Expr::Call { args, span, .. } => {
                args.iter_mut().for_each(Expr::clear_spans);
                *span = Span::default();
            }
        }
    }

    /// Strips any number of enclosing parentheses.
    pub fn unparen(&self) -> &Expr {
        match self {
            Expr::Paren { expr, .. } => expr.unparen(),
            e => e,
        }
    }
}
