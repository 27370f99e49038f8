//! Properties of the expression front end:
//! - printing any tree the parser can produce and parsing it again gives the same tree;
//! - the parser never panics, on arbitrary text or on mutations of valid expressions;
//! - every seed in `fuzz/corpus/expr_parse/` satisfies both (the fuzz target's property).

use std::path::Path;

use klaxon::expr::{
    AggOp, AtModifier, BinModifier, BinOp, Cardinality, Expr, Grouping, Span, UnaryOp,
    VectorMatching, VectorSelector, functions, parse,
};
use klaxon::model::{MatchOp, Matcher};
use proptest::prelude::*;

/// Structural identity: spans ignored, NaN equal to NaN, -0 distinct from 0.
fn key(e: &Expr) -> String {
    let mut e = e.clone();
    e.clear_spans();
    format!("{e:?}")
}

/// The fuzz target's property: no panic; a tree that parses prints to text that parses back to
/// the same tree and prints identically.
fn check_roundtrip(src: &str) {
    if let Ok(e) = parse(src) {
        let printed = e.to_string();
        let again = parse(&printed)
            .unwrap_or_else(|d| panic!("{src:?} printed as {printed:?}: {}", d.message));
        assert_eq!(key(&again), key(&e), "{src:?} printed as {printed:?}");
        assert_eq!(again.to_string(), printed);
        let _ = klaxon::expr::check(&e);
    }
}

// ------------------------------------------------------------------ generators

const S: Span = Span { start: 0, end: 0 };

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("up".to_string()),
        Just("http_requests_total".to_string()),
        Just("job:errors:rate5m".to_string()),
        // Keywords are legal metric names where an operand is expected.
        Just("offset".to_string()),
        Just("by".to_string()),
        Just("sum".to_string()),
        Just("and".to_string()),
        Just("start".to_string()),
        Just("Infinity".to_string()),
        "[a-z_][a-z0-9_:]{0,8}".prop_filter("reserved", |s| {
            ![
                "bool",
                "on",
                "ignoring",
                "group_left",
                "group_right",
                "atan2",
                "inf",
                "nan",
            ]
            .contains(&s.as_str())
        }),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("job".to_string()),
        Just("on".to_string()),
        Just("bool".to_string()),
        Just("offset".to_string()),
        Just("label.with.dots".to_string()),
        Just("ünïcode".to_string()),
        "[a-z_][a-z0-9_]{0,6}",
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9]{1,5}",
        any::<String>(),
        Just("\"'`\\\n\t\u{7f}\u{85}".to_string())
    ]
}

fn matcher() -> impl Strategy<Value = Matcher> {
    let plain = (
        label_name(),
        prop_oneof![Just(MatchOp::Equal), Just(MatchOp::NotEqual)],
        label_value(),
    )
        .prop_map(|(n, op, v)| Matcher::new(op, n, v).expect("non-regex matcher"));
    let regex = (
        label_name(),
        prop_oneof![Just(MatchOp::Regex), Just(MatchOp::NotRegex)],
        prop_oneof![
            Just("5.."),
            Just(".*"),
            Just("a|b"),
            Just("(?i)x+"),
            Just("")
        ],
    )
        .prop_map(|(n, op, v)| Matcher::new(op, n, v).expect("valid regex"));
    prop_oneof![plain, regex]
}

fn at_modifier() -> impl Strategy<Value = Option<AtModifier>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(AtModifier::Start)),
        1 => Just(Some(AtModifier::End)),
        1 => (-1_000_000_000_000i64..1_000_000_000_000).prop_map(|t| Some(AtModifier::Timestamp(t))),
    ]
}

fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 1 => -100_000_000_000i64..100_000_000_000]
}

fn selector() -> impl Strategy<Value = VectorSelector> {
    (
        proptest::option::of(metric_name()),
        proptest::collection::vec(matcher(), 0..3),
        "[a-z]{1,4}",
        offset(),
        at_modifier(),
    )
        .prop_map(|(name, mut matchers, fallback, offset, at)| {
            match &name {
                Some(n) => matchers.insert(
                    0,
                    Matcher::new(MatchOp::Equal, "__name__", n.clone()).expect("eq"),
                ),
                None if matchers.iter().all(Matcher::matches_empty) => {
                    matchers.push(Matcher::new(MatchOp::Equal, "job", fallback).expect("eq"));
                }
                None => {}
            }
            VectorSelector {
                name,
                matchers,
                offset,
                at,
                span: S,
            }
        })
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..1000).prop_map(f64::from),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(-0.0),
        Just(1e-300),
        Just(f64::MAX),
    ]
}

fn duration() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        1i64..10_000,
        (1i64..1_000_000).prop_map(|s| s * 1000),
        0i64..1_000_000_000_000
    ]
}

fn labels() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(label_name(), 0..3)
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        number().prop_map(|value| Expr::Number { value, span: S }),
        any::<String>().prop_map(|value| Expr::String { value, span: S }),
        selector().prop_map(Expr::VectorSelector),
        (selector(), duration()).prop_map(|(selector, range)| Expr::MatrixSelector {
            selector,
            range,
            span: S
        }),
    ]
}

fn bin_op() -> impl Strategy<Value = BinOp> {
    use BinOp::*;
    proptest::sample::select(vec![
        Add, Sub, Mul, Div, Mod, Pow, Atan2, Eq, Ne, Gt, Lt, Ge, Le, And, Or, Unless,
    ])
}

fn modifier(op: BinOp) -> impl Strategy<Value = BinModifier> {
    (
        any::<bool>(),
        proptest::option::of((any::<bool>(), labels())),
        0u8..3,
        labels(),
    )
        .prop_map(move |(b, matching, card, extra)| {
            let matching = matching.map(|(on, labels)| VectorMatching { on, labels });
            let card = if op.is_set() {
                Cardinality::ManyToMany
            } else if matching.is_none() || card == 0 {
                Cardinality::OneToOne
            } else {
                // `on(x) group_left(x)` is an error; keep the include list disjoint.
                let on_labels: &[String] = matching
                    .as_ref()
                    .filter(|m| m.on)
                    .map_or(&[], |m| &m.labels);
                let extra: Vec<String> = extra
                    .into_iter()
                    .filter(|l| !on_labels.contains(l))
                    .collect();
                if card == 1 {
                    Cardinality::ManyToOne(extra)
                } else {
                    Cardinality::OneToMany(extra)
                }
            };
            BinModifier {
                return_bool: b && op.is_comparison(),
                matching,
                card,
            }
        })
}

fn tree() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let stable: Vec<&'static str> = functions::FUNCTIONS
            .iter()
            .filter(|f| !f.experimental)
            .map(|f| f.name)
            .collect();
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Paren {
                expr: Box::new(e),
                span: S
            }),
            (any::<bool>(), inner.clone()).prop_map(|(neg, e)| Expr::Unary {
                op: if neg { UnaryOp::Neg } else { UnaryOp::Pos },
                expr: Box::new(e),
                span: S
            }),
            (bin_op(), inner.clone(), inner.clone())
                .prop_flat_map(|(op, l, r)| (Just(op), Just(l), Just(r), modifier(op)))
                .prop_map(|(op, l, r, modifier)| Expr::Binary {
                    op,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                    modifier,
                    span: S
                }),
            (
                proptest::sample::select(
                    AggOp::ALL
                        .iter()
                        .map(|(_, op)| *op)
                        .filter(|op| { !matches!(op, AggOp::Limitk | AggOp::LimitRatio) })
                        .collect::<Vec<_>>()
                ),
                inner.clone(),
                inner.clone(),
                proptest::option::of((any::<bool>(), labels())),
            )
                .prop_map(|(op, e, p, g)| Expr::Aggregate {
                    op,
                    expr: Box::new(e),
                    param: op.has_param().then(|| Box::new(p)),
                    grouping: g.map(|(by, l)| if by {
                        Grouping::By(l)
                    } else {
                        Grouping::Without(l)
                    }),
                    span: S
                }),
            (
                proptest::sample::select(stable),
                proptest::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(f, args)| Expr::Call {
                    func: f.to_string(),
                    args,
                    span: S
                }),
            (
                inner,
                duration(),
                proptest::option::of(1i64..100_000_000),
                offset(),
                at_modifier()
            )
                .prop_map(|(e, range, step, offset, at)| Expr::Subquery {
                    expr: Box::new(e),
                    range,
                    step,
                    offset,
                    at,
                    span: S
                }),
        ]
    })
}

/// Inserts the parentheses the parser would have needed to produce this tree, mirroring the
/// printer's rules, so the result is a tree `parse` can return.
fn canonical(e: Expr) -> Expr {
    fn paren(e: Expr) -> Expr {
        Expr::Paren {
            expr: Box::new(e),
            span: S,
        }
    }
    fn negative_number(e: &Expr) -> bool {
        matches!(e, Expr::Number { value, .. } if value.is_sign_negative() && !value.is_nan())
    }
    match e {
        Expr::Paren { expr, span } => Expr::Paren {
            expr: Box::new(canonical(*expr)),
            span,
        },
        Expr::Unary { op, expr, span } => {
            let inner = canonical(*expr);
            let wrap = match &inner {
                Expr::Binary { op, .. } => *op != BinOp::Pow,
                Expr::Number { .. } => true,
                _ => false,
            };
            Expr::Unary {
                op,
                expr: Box::new(if wrap { paren(inner) } else { inner }),
                span,
            }
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            modifier,
            span,
        } => {
            let (l, r) = (canonical(*lhs), canonical(*rhs));
            let prec = op.precedence();
            let lw = match &l {
                Expr::Binary { op: o, .. } => {
                    o.precedence() < prec || (o.precedence() == prec && op.is_right_assoc())
                }
                Expr::Unary { .. } => op == BinOp::Pow,
                n @ Expr::Number { .. } => op == BinOp::Pow && negative_number(n),
                _ => false,
            };
            let rw = match &r {
                Expr::Binary { op: o, .. } => {
                    o.precedence() < prec || (o.precedence() == prec && !op.is_right_assoc())
                }
                _ => false,
            };
            Expr::Binary {
                op,
                lhs: Box::new(if lw { paren(l) } else { l }),
                rhs: Box::new(if rw { paren(r) } else { r }),
                modifier,
                span,
            }
        }
        Expr::Subquery {
            expr,
            range,
            step,
            offset,
            at,
            span,
        } => {
            let inner = canonical(*expr);
            let wrap = matches!(inner, Expr::Binary { .. } | Expr::Unary { .. })
                || negative_number(&inner);
            Expr::Subquery {
                expr: Box::new(if wrap { paren(inner) } else { inner }),
                range,
                step,
                offset,
                at,
                span,
            }
        }
        Expr::Aggregate {
            op,
            expr,
            param,
            grouping,
            span,
        } => Expr::Aggregate {
            op,
            expr: Box::new(canonical(*expr)),
            param: param.map(|p| Box::new(canonical(*p))),
            grouping,
            span,
        },
        Expr::Call { func, args, span } => Expr::Call {
            func,
            args: args.into_iter().map(canonical).collect(),
            span,
        },
        leaf => leaf,
    }
}

/// Small edits that turn valid expressions into near-misses.
fn mutate(src: &str, edits: &[(usize, u8)]) -> String {
    const TOKENS: [&str; 16] = [
        "(", ")", "[", "]", "{", "}", ",", "-", "5m", "\"", "offset", "@", " by ", "==", ":", "#",
    ];
    let mut s: Vec<char> = src.chars().collect();
    for &(pos, what) in edits {
        let at = if s.is_empty() { 0 } else { pos % (s.len() + 1) };
        match what % 3 {
            0 if at < s.len() => {
                s.remove(at);
            }
            1 => {
                let t = TOKENS[usize::from(what) % TOKENS.len()];
                for (k, c) in t.chars().enumerate() {
                    s.insert(at + k, c);
                }
            }
            _ if at + 1 < s.len() => s.swap(at, at + 1),
            _ => {}
        }
    }
    s.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn print_then_parse_is_identity(e in tree()) {
        let e = canonical(e);
        let printed = e.to_string();
        let parsed = parse(&printed).map_err(|d| TestCaseError::fail(format!("{printed:?}: {}", d.message)))?;
        prop_assert_eq!(key(&parsed), key(&e), "printed: {}", printed);
        prop_assert_eq!(parsed.to_string(), printed);
    }

    #[test]
    fn parse_never_panics(s in ".*") {
        check_roundtrip(&s);
    }

    #[test]
    fn parse_never_panics_on_near_misses(e in tree(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let src = mutate(&canonical(e).to_string(), &edits);
        check_roundtrip(&src);
    }
}

#[test]
fn fuzz_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/expr_parse");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory exists") {
        let path = entry.expect("dir entry").path();
        let bytes = std::fs::read(&path).expect("corpus file");
        check_roundtrip(&String::from_utf8_lossy(&bytes));
        n += 1;
    }
    assert!(n >= 20, "corpus has only {n} files");
}

#[test]
fn known_tricky_inputs() {
    for src in [
        "-2^---1*3",
        "- - -foo",
        "-(1)",
        "(-1)^2",
        "2^-1",
        "-foo^2",
        "foo offset -5m @ -1.5",
        "x[5m:] offset 1h",
        "(-foo)[5m:]",
        "{\"a\\\"b\"}",
        "sum(x) by ()",
        "1e-320",
        "-0",
        "0x_",
        "\u{0}",
        "foo{a=\"\\x00\\u0085\"}",
        "`",
        "a=b",
        "rate(x[5m",
        "\"\\U0010FFFF\"",
        "\"\\UFFFFFFFF\"",
        "\"\\400\"",
    ] {
        check_roundtrip(src);
    }
}

/// Byte offset of the `n`-th whitespace-separated token of `line`.
fn token_offset(line: &str, n: usize) -> Option<usize> {
    let mut count = 0;
    let mut in_token = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            in_token = false;
        } else if !in_token {
            if count == n {
                return Some(i);
            }
            count += 1;
            in_token = true;
        }
    }
    None
}

/// Every `eval` query of Prometheus' PromQL test scripts (in `../shared/conformance`) parses and
/// type-checks, or fails where the script expects a failure. Experimental syntax the tree cannot
/// represent (duration expressions, anchored/smoothed, fill modifiers, trim operators) is skipped.
#[test]
fn promql_conformance_queries_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/promqltest");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: {} not found", dir.display());
        return;
    };
    const SKIP_FILES: [&str; 1] = ["duration_expression.test"];
    const SKIP_MARKERS: [&str; 13] = [
        "</",
        ">/",
        "anchored",
        "smoothed",
        "fill",
        "step()",
        "start()",
        "end()",
        "range()",
        "min_of",
        "max_of",
        "start_timestamp",
        "STEP()",
    ];
    let opts = klaxon::expr::ParseOptions {
        experimental_functions: true,
    };
    let (mut total, mut ok, mut skipped) = (0, 0, 0);
    let mut unexpected = Vec::new();
    let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
    {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let text = std::fs::read_to_string(path).expect("test script");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if !t.starts_with("eval") {
                continue;
            }
            let query_at = if t.split_whitespace().nth(1) == Some("range") {
                8
            } else {
                4
            };
            let Some(off) = token_offset(t, query_at) else {
                continue;
            };
            let query = t[off..].trim();
            total += 1;
            if SKIP_FILES.contains(&name.as_str()) || SKIP_MARKERS.iter().any(|m| query.contains(m))
            {
                skipped += 1;
                continue;
            }
            let expects_fail = t.starts_with("eval_fail")
                || lines[i + 1..]
                    .iter()
                    .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with("eval"))
                    .any(|l| l.trim_start().starts_with("expect fail"));
            match klaxon::expr::parse_with(query, opts)
                .and_then(|e| klaxon::expr::check(&e).map(|_| e))
            {
                Ok(e) => {
                    ok += 1;
                    check_roundtrip(&e.to_string());
                }
                Err(_) if expects_fail => ok += 1,
                Err(d) => unexpected.push(format!("{name}:{}: {query}\n    {}", i + 1, d.message)),
            }
        }
    }
    eprintln!(
        "conformance queries: {total} total, {ok} parse as expected, {skipped} skipped (unsupported experimental syntax)"
    );
    assert!(
        unexpected.is_empty(),
        "{} queries failed to parse:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(total > 1000, "only {total} eval lines found");
}
