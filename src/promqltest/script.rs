//! Parsing a test script into commands (`load`, `clear`, `eval`) with their blocks of lines.
//!
//! The parser never fails as a whole: a broken line becomes an error attached to the command it belongs to
//! (or an [`Command::Invalid`] at top level), so one bad line costs only the evals it affects.

use regex::Regex;

use super::series::{SeqValue, parse_time, parse_values, split_series_line};
use crate::model::Labels;

/// A parsed script: commands in file order.
#[derive(Debug, Default)]
pub struct Script {
    /// The commands, in the order they appear.
    pub commands: Vec<Command>,
}

/// One top-level command.
#[derive(Debug)]
pub enum Command {
    /// `load <interval>` / `load_with_nhcb <interval>` and its series lines.
    Load(Load),
    /// `clear`: drop all data.
    Clear {
        /// 1-based line of the command.
        line: usize,
    },
    /// `eval ...` and its expectation lines.
    Eval(Box<Eval>),
    /// A top-level line that is no command.
    Invalid {
        /// 1-based line.
        line: usize,
        /// Why it was rejected.
        message: String,
    },
}

/// A `load` block.
#[derive(Debug)]
pub struct Load {
    /// 1-based line of the `load` command.
    pub line: usize,
    /// Milliseconds between consecutive points.
    pub interval: i64,
    /// `load_with_nhcb`: classic histograms are also loaded as native histograms with custom buckets.
    pub nhcb: bool,
    /// The series lines that parsed.
    pub series: Vec<LoadSeries>,
    /// Lines that did not parse: (line, why).
    pub errors: Vec<(usize, String)>,
}

/// One series line of a `load` block.
#[derive(Debug)]
pub struct LoadSeries {
    /// 1-based line.
    pub line: usize,
    /// Series labels (`__name__` included).
    pub labels: Labels,
    /// Points at `0, interval, 2*interval, ...`.
    pub values: Vec<SeqValue>,
    /// `metric@st ...`: the line gives start timestamps, not samples (not supported; ignored by the runner).
    pub start_timestamps: bool,
}

/// Whether an eval is an instant or a range query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalKind {
    /// `eval instant at <t>`.
    Instant {
        /// Evaluation time (ms).
        at: i64,
    },
    /// `eval range from <start> to <end> step <step>`.
    Range {
        /// First step (ms).
        start: i64,
        /// Last possible step (ms).
        end: i64,
        /// Step (ms, > 0).
        step: i64,
    },
}

/// What an `expect` line checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectKind {
    /// The query fails.
    Fail,
    /// At least one warning annotation.
    Warn,
    /// At least one info annotation.
    Info,
    /// No warning annotation.
    NoWarn,
    /// No info annotation.
    NoInfo,
}

/// How an expectation matches a message.
#[derive(Debug, Clone)]
pub enum MessageMatch {
    /// Any message.
    Any,
    /// `msg:` exact text.
    Exact(String),
    /// `regex:` unanchored regular expression.
    Regex(Regex),
}

impl MessageMatch {
    /// Whether `msg` satisfies the matcher.
    pub fn matches(&self, msg: &str) -> bool {
        match self {
            MessageMatch::Any => true,
            MessageMatch::Exact(s) => s == msg,
            MessageMatch::Regex(r) => r.is_match(msg),
        }
    }
}

impl std::fmt::Display for MessageMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageMatch::Any => Ok(()),
            MessageMatch::Exact(s) => write!(f, " msg: {s}"),
            MessageMatch::Regex(r) => write!(f, " regex: {}", r.as_str()),
        }
    }
}

/// One `expect fail|warn|info|no_warn|no_info` line.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// What is checked.
    pub kind: ExpectKind,
    /// How messages must look (always `Any` for `no_*`).
    pub message: MessageMatch,
}

/// One expected series of an eval.
#[derive(Debug, Clone)]
pub struct ExpectedSeries {
    /// 1-based line.
    pub line: usize,
    /// Labels as they must appear in the result.
    pub labels: Labels,
    /// Expected points (one for instant vectors; one per step for range results).
    pub values: Vec<SeqValue>,
}

/// An `eval` command with everything its block says.
#[derive(Debug)]
pub struct Eval {
    /// 1-based line of the `eval` command.
    pub line: usize,
    /// Instant or range.
    pub kind: EvalKind,
    /// The query text.
    pub query: String,
    /// `expect fail|warn|info|no_warn|no_info` lines (and their deprecated spellings).
    pub expectations: Vec<Expectation>,
    /// `expect ordered` / `eval_ordered`.
    pub ordered: bool,
    /// `expect string "..."`.
    pub expect_string: Option<String>,
    /// `expect range vector from <start> to <end> step <step>` (instant queries returning a range vector).
    pub range_vector: Option<(i64, i64, i64)>,
    /// A bare number line: the result must be this scalar.
    pub scalar: Option<f64>,
    /// Expected series.
    pub series: Vec<ExpectedSeries>,
    /// Whether an expected value is a native histogram literal.
    pub histograms: bool,
    /// The first line of the block that did not parse: (line, why).
    pub error: Option<(usize, String)>,
}

impl Eval {
    /// Whether the query is expected to fail.
    pub fn expects_fail(&self) -> bool {
        self.expectations.iter().any(|e| e.kind == ExpectKind::Fail)
    }
}

/// Parses label text (`metric{a="b"}`) into a label set; supplied by the caller so the script parser
/// shares the expression language's quoting rules.
pub type LabelParser<'a> = &'a dyn Fn(&str) -> Result<Labels, String>;

/// Parses a whole script. Never fails: errors are attached to commands.
pub fn parse_script(src: &str, parse_labels: LabelParser<'_>) -> Script {
    // As upstream: lines are trimmed, whole-line comments become blank lines, blank lines end blocks.
    let lines: Vec<&str> = src
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') { "" } else { t }
        })
        .collect();
    let mut script = Script::default();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let line_no = i + 1;
        if l.is_empty() {
            i += 1;
            continue;
        }
        let block_end = (i + 1..lines.len())
            .find(|&j| lines[j].is_empty())
            .unwrap_or(lines.len());
        let block: Vec<(usize, &str)> = (i + 1..block_end).map(|j| (j + 1, lines[j])).collect();
        let word = l.split_whitespace().next().unwrap_or("");
        match word {
            "load" | "load_with_nhcb" => {
                script
                    .commands
                    .push(Command::Load(parse_load(line_no, l, &block, parse_labels)));
                i = block_end;
            }
            "clear" if l == "clear" => {
                script.commands.push(Command::Clear { line: line_no });
                i += 1;
            }
            w if w.starts_with("eval") => {
                let (eval, used) = parse_eval(line_no, l, &block, parse_labels);
                script.commands.push(Command::Eval(Box::new(eval)));
                i += 1 + used;
            }
            _ => {
                script.commands.push(Command::Invalid {
                    line: line_no,
                    message: format!("unknown command {:?}", truncate(l, 60)),
                });
                i += 1;
            }
        }
    }
    script
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

fn parse_load(
    line: usize,
    header: &str,
    block: &[(usize, &str)],
    parse_labels: LabelParser<'_>,
) -> Load {
    let mut words = header.split_whitespace();
    let nhcb = words.next() == Some("load_with_nhcb");
    let mut load = Load {
        line,
        interval: 0,
        nhcb,
        series: Vec::new(),
        errors: Vec::new(),
    };
    match (words.next(), words.next()) {
        (Some(iv), None) => match parse_time(iv) {
            Ok(ms) if ms > 0 => load.interval = ms,
            Ok(_) => load
                .errors
                .push((line, format!("load interval must be positive, got {iv:?}"))),
            Err(e) => load.errors.push((line, e)),
        },
        _ => load
            .errors
            .push((line, "expected `load <interval>`".to_string())),
    }
    for &(n, text) in block {
        match parse_series_line(text, parse_labels) {
            Ok((labels, values, st)) => load.series.push(LoadSeries {
                line: n,
                labels,
                values,
                start_timestamps: st,
            }),
            Err(e) => load.errors.push((n, e)),
        }
    }
    load
}

/// Parses `<series> <values>`; the bool reports a `@st` (start timestamps) suffix on the series.
fn parse_series_line(
    text: &str,
    parse_labels: LabelParser<'_>,
) -> Result<(Labels, Vec<SeqValue>, bool), String> {
    let (desc, rest) =
        split_series_line(text).ok_or_else(|| format!("unterminated label set in {text:?}"))?;
    let (desc, st) = match desc.strip_suffix("@st") {
        Some(d) => (d, true),
        None => (desc, false),
    };
    if desc.is_empty() {
        return Err(format!("missing series labels in {:?}", truncate(text, 60)));
    }
    let labels = parse_labels(desc).map_err(|e| format!("bad series {desc:?}: {e}"))?;
    let values = parse_values(rest)?;
    Ok((labels, values, st))
}

fn eval_header_regexes() -> &'static (Regex, Regex) {
    static RE: std::sync::OnceLock<(Regex, Regex)> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        (
            Regex::new(r"^eval(?:_(fail|warn|info|ordered))?\s+instant\s+(?:at\s+(\S+)\s+)?(.+)$").unwrap_or_else(
                |e| unreachable!("static regex: {e}"),
            ),
            Regex::new(r"^eval(?:_(fail|warn|info|ordered))?\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$")
                .unwrap_or_else(|e| unreachable!("static regex: {e}")),
        )
    })
}

/// Parses an eval command and its block; returns the eval and how many block lines it consumed.
fn parse_eval(
    line: usize,
    header: &str,
    block: &[(usize, &str)],
    parse_labels: LabelParser<'_>,
) -> (Eval, usize) {
    let mut ev = Eval {
        line,
        kind: EvalKind::Instant { at: 0 },
        query: String::new(),
        expectations: Vec::new(),
        ordered: false,
        expect_string: None,
        range_vector: None,
        scalar: None,
        series: Vec::new(),
        histograms: false,
        error: None,
    };
    let set_err = |ev: &mut Eval, n: usize, msg: String| {
        if ev.error.is_none() {
            ev.error = Some((n, msg));
        }
    };
    let (instant_re, range_re) = eval_header_regexes();
    let variant;
    if let Some(c) = instant_re.captures(header) {
        variant = c.get(1).map(|m| m.as_str().to_string());
        ev.query = c[3].trim().to_string();
        match c.get(2).map(|m| parse_time(m.as_str())).unwrap_or(Ok(0)) {
            Ok(at) => ev.kind = EvalKind::Instant { at },
            Err(e) => set_err(&mut ev, line, e),
        }
    } else if let Some(c) = range_re.captures(header) {
        variant = c.get(1).map(|m| m.as_str().to_string());
        ev.query = c[5].trim().to_string();
        match (parse_time(&c[2]), parse_time(&c[3]), parse_time(&c[4])) {
            (Ok(start), Ok(end), Ok(step)) if step > 0 && end >= start => {
                ev.kind = EvalKind::Range { start, end, step }
            }
            (Ok(_), Ok(_), Ok(_)) => set_err(
                &mut ev,
                line,
                "range needs step > 0 and end >= start".to_string(),
            ),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => set_err(&mut ev, line, e),
        }
    } else {
        variant = None;
        set_err(
            &mut ev,
            line,
            format!("invalid eval command {:?}", truncate(header, 80)),
        );
    }
    match variant.as_deref() {
        Some("fail") => ev.expectations.push(Expectation {
            kind: ExpectKind::Fail,
            message: MessageMatch::Any,
        }),
        Some("warn") => ev.expectations.push(Expectation {
            kind: ExpectKind::Warn,
            message: MessageMatch::Any,
        }),
        Some("info") => ev.expectations.push(Expectation {
            kind: ExpectKind::Info,
            message: MessageMatch::Any,
        }),
        Some("ordered") => ev.ordered = true,
        _ => {}
    }

    let mut used = 0;
    for &(n, text) in block {
        used += 1;
        if let Some(rest) = text.strip_prefix("expected_fail_message") {
            ev.expectations.push(Expectation {
                kind: ExpectKind::Fail,
                message: MessageMatch::Exact(rest.trim().to_string()),
            });
            continue;
        }
        if let Some(rest) = text.strip_prefix("expected_fail_regexp") {
            match Regex::new(rest.trim()) {
                Ok(re) => ev.expectations.push(Expectation {
                    kind: ExpectKind::Fail,
                    message: MessageMatch::Regex(re),
                }),
                Err(e) => set_err(&mut ev, n, format!("bad regex: {e}")),
            }
            continue;
        }
        if text.starts_with("expect ") || text == "expect" {
            if let Err(e) = parse_expect_line(&mut ev, text) {
                set_err(&mut ev, n, e);
            }
            continue;
        }
        if ev.scalar.is_some() {
            set_err(
                &mut ev,
                n,
                "unexpected line after a scalar result".to_string(),
            );
            continue;
        }
        if let Ok(v) = parse_values(text)
            && let [SeqValue::Float(f)] = v.as_slice()
            && ev.series.is_empty()
        {
            ev.scalar = Some(*f);
            continue;
        }
        match parse_series_line(text, parse_labels) {
            Ok((_, _, true)) => set_err(
                &mut ev,
                n,
                "`@st` is not allowed in expected results".to_string(),
            ),
            Ok((labels, values, false)) => {
                if values.iter().any(|v| matches!(v, SeqValue::Histogram(_))) {
                    ev.histograms = true;
                }
                if ev.series.iter().any(|s| s.labels == labels) {
                    set_err(&mut ev, n, format!("duplicate expected series {labels}"));
                } else {
                    ev.series.push(ExpectedSeries {
                        line: n,
                        labels,
                        values,
                    });
                }
            }
            Err(e) => set_err(&mut ev, n, e),
        }
    }
    if matches!(ev.kind, EvalKind::Instant { .. })
        && ev.range_vector.is_none()
        && let Some(n) = ev
            .series
            .iter()
            .find(|s| s.values.len() > 1)
            .map(|s| s.line)
    {
        set_err(
            &mut ev,
            n,
            "multiple values in an instant eval need `expect range vector`".to_string(),
        );
    }
    if ev.scalar.is_some() && !ev.series.is_empty() {
        set_err(
            &mut ev,
            line,
            "an eval cannot expect both a scalar and series".to_string(),
        );
    }
    (ev, used)
}

/// Parses one `expect ...` line into `ev`.
fn parse_expect_line(ev: &mut Eval, text: &str) -> Result<(), String> {
    let rest = text["expect".len()..].trim_start();
    let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let after = after.trim();
    let kind = match word {
        "fail" => ExpectKind::Fail,
        "warn" => ExpectKind::Warn,
        "info" => ExpectKind::Info,
        "no_warn" => ExpectKind::NoWarn,
        "no_info" => ExpectKind::NoInfo,
        "ordered" => {
            if !after.is_empty() {
                return Err(format!("`expect ordered` takes no argument, got {after:?}"));
            }
            ev.ordered = true;
            return Ok(());
        }
        "string" => {
            let q = after
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '`' || *c == '\'');
            let parsed = q.and_then(|_| match parse_values(after) {
                Ok(v) => match v.as_slice() {
                    [SeqValue::Str(s)] => Some(s.clone()),
                    _ => None,
                },
                Err(_) => None,
            });
            ev.expect_string =
                Some(parsed.ok_or_else(|| format!("expected a quoted string, got {after:?}"))?);
            return Ok(());
        }
        "range" => {
            let spec = after
                .strip_prefix("vector")
                .ok_or_else(|| format!("unknown expectation {text:?}"))?;
            let words: Vec<&str> = spec.split_whitespace().collect();
            let words = match words.first() {
                Some(&"from") => &words[1..],
                _ => &words[..],
            };
            let [start, "to", end, "step", step] = words else {
                return Err(
                    "expected `expect range vector from <start> to <end> step <step>`".to_string(),
                );
            };
            let (start, end, step) = (parse_time(start)?, parse_time(end)?, parse_time(step)?);
            if step <= 0 || end < start {
                return Err("range vector needs step > 0 and end >= start".to_string());
            }
            ev.range_vector = Some((start, end, step));
            return Ok(());
        }
        _ => return Err(format!("unknown expectation {:?}", truncate(text, 60))),
    };
    let message = if after.is_empty() {
        MessageMatch::Any
    } else if matches!(kind, ExpectKind::NoWarn | ExpectKind::NoInfo) {
        return Err(format!("`expect {word}` takes no message"));
    } else if let Some(m) = after.strip_prefix("msg:") {
        MessageMatch::Exact(m.trim().to_string())
    } else if let Some(r) = after.strip_prefix("regex:") {
        MessageMatch::Regex(Regex::new(r.trim()).map_err(|e| format!("bad regex: {e}"))?)
    } else {
        return Err(format!(
            "expected `msg:` or `regex:` after `expect {word}`, got {after:?}"
        ));
    };
    ev.expectations.push(Expectation { kind, message });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Script {
        parse_script(src, &crate::promqltest::parse_labels)
    }

    #[test]
    fn load_clear_eval() {
        let s = parse(
            "# comment\nload 5m\n  a{x=\"1\"} 0+1x2\n  b 1 _ 3\n\nclear\neval instant at 50m sum(a)\n  {} 3\n",
        );
        assert_eq!(s.commands.len(), 3);
        let Command::Load(l) = &s.commands[0] else {
            panic!()
        };
        assert_eq!((l.line, l.interval, l.series.len()), (2, 300_000, 2));
        assert_eq!(l.series[0].values.len(), 3);
        assert!(matches!(s.commands[1], Command::Clear { line: 6 }));
        let Command::Eval(e) = &s.commands[2] else {
            panic!()
        };
        assert_eq!(e.line, 7);
        assert_eq!(e.kind, EvalKind::Instant { at: 3_000_000 });
        assert_eq!(e.query, "sum(a)");
        assert_eq!(e.series.len(), 1);
        assert!(e.series[0].labels.is_empty());
        assert!(e.error.is_none());
    }

    #[test]
    fn comment_ends_block() {
        let s = parse("load 1m\n  a 1\n# c\n  b 2\n");
        assert_eq!(s.commands.len(), 2);
        assert!(matches!(s.commands[1], Command::Invalid { line: 4, .. }));
    }

    #[test]
    fn expect_lines() {
        let s = parse(
            "eval range from 0 to 2m step 1m rate(x[5m])\n  expect fail msg: boom\n  expect warn regex: a.c\n  expect no_info\n  expect ordered\n  x 1 2 3\n",
        );
        let Command::Eval(e) = &s.commands[0] else {
            panic!()
        };
        assert_eq!(
            e.kind,
            EvalKind::Range {
                start: 0,
                end: 120_000,
                step: 60_000
            }
        );
        assert_eq!(e.expectations.len(), 3);
        assert!(e.expects_fail());
        assert!(e.expectations[1].message.matches("xxabcxx"));
        assert!(e.ordered);
        assert_eq!(e.series[0].values.len(), 3);
        assert!(e.error.is_none(), "{:?}", e.error);
    }

    #[test]
    fn scalar_string_range_vector_and_deprecated() {
        let s = parse(
            "eval instant at 50m 1+1\n  2\n\neval instant at 50m \"Foo\"\n  expect string \"Foo\"\n\neval instant at 1m m[1m]\n  expect range vector from 10s to 1m step 10s\n  m 1 2 3 4 5 6\n\neval_fail instant at 0 foo\n  expected_fail_message bad thing\n\neval_ordered instant at 0 x\n",
        );
        let evals: Vec<&Eval> = s
            .commands
            .iter()
            .filter_map(|c| {
                if let Command::Eval(e) = c {
                    Some(&**e)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(evals.len(), 5);
        assert_eq!(evals[0].scalar, Some(2.0));
        assert_eq!(evals[1].expect_string.as_deref(), Some("Foo"));
        assert_eq!(evals[2].range_vector, Some((10_000, 60_000, 10_000)));
        assert!(evals[2].error.is_none());
        assert!(evals[3].expects_fail());
        assert!(
            evals[3]
                .expectations
                .iter()
                .any(|e| e.message.matches("bad thing"))
        );
        assert!(!evals[3].expectations.iter().all(|e| e.message.matches("x")));
        assert!(evals[4].ordered);
        assert_eq!(evals[4].kind, EvalKind::Instant { at: 0 });
    }

    #[test]
    fn errors_are_attached() {
        let s = parse(
            "load 1m\n  a 1 zz\n  b 2\n\neval instant at 1m a\n  expect bogus\n  {} 1\n\nfoo bar\neval instant at xx a\n",
        );
        let Command::Load(l) = &s.commands[0] else {
            panic!()
        };
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].0, 2);
        assert_eq!(l.series.len(), 1);
        let Command::Eval(e) = &s.commands[1] else {
            panic!()
        };
        assert_eq!(e.error.as_ref().map(|e| e.0), Some(6));
        assert!(matches!(s.commands[2], Command::Invalid { line: 9, .. }));
        let Command::Eval(e) = &s.commands[3] else {
            panic!()
        };
        assert!(e.error.is_some());
    }

    #[test]
    fn instant_with_many_values_is_an_error() {
        let s = parse("eval instant at 1m a\n  {} 1 2\n");
        let Command::Eval(e) = &s.commands[0] else {
            panic!()
        };
        assert!(e.error.is_some());
    }

    #[test]
    fn histogram_and_start_timestamps() {
        let s =
            parse("load 1m\n  a {{count:1}}\n  b@st -1s\n\neval instant at 0 a\n  a {{count:1}}\n");
        let Command::Load(l) = &s.commands[0] else {
            panic!()
        };
        assert!(l.series[1].start_timestamps);
        let Command::Eval(e) = &s.commands[1] else {
            panic!()
        };
        assert!(e.histograms);
    }
}
