//! Prometheus text exposition (0.0.4) and OpenMetrics text: a hand-written byte-level parser.
//!
//! The body is checked as UTF-8 once; every token is then a borrowed slice, and label values
//! are copied only when they contain escapes. One pass, no regex, no per-line allocation
//! besides the label strings (which are interned per request).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use super::series::{SeriesBuilder, check_body_len, too_many_samples};
use super::{Decoded, DecodedSample, FamilyMetadata, IngestError, Limits, Location, MetricType};
use crate::model::{
    METRIC_NAME, SampleValue, Timestamp, is_legacy_label_name, is_legacy_metric_name,
};

/// Which text dialect a body is in; they differ in timestamps (ms vs s), types and `# EOF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4`: integer millisecond timestamps.
    PromText,
    /// `application/openmetrics-text`: float-second timestamps, `# EOF` required, `_created` dropped.
    OpenMetrics,
}

impl Format {
    /// Picks the dialect from a `Content-Type` header; anything but OpenMetrics is 0.0.4 text.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::PromText
        }
    }
}

/// Parses a Prometheus text 0.0.4 body; samples without a timestamp get `default_ts` (ms).
pub fn parse_prom_text(
    body: &[u8],
    default_ts: i64,
    limits: &Limits,
) -> Result<Vec<DecodedSample>, IngestError> {
    parse_text(body, Format::PromText, default_ts, limits).map(|d| d.samples)
}

/// Parses an OpenMetrics text body (timestamps in seconds, `# EOF` required).
pub fn parse_openmetrics(
    body: &[u8],
    default_ts: i64,
    limits: &Limits,
) -> Result<Vec<DecodedSample>, IngestError> {
    parse_text(body, Format::OpenMetrics, default_ts, limits).map(|d| d.samples)
}

/// Parses either text dialect, also returning family metadata and counts of skipped parts.
pub fn parse_text(
    body: &[u8],
    format: Format,
    default_ts: i64,
    limits: &Limits,
) -> Result<Decoded, IngestError> {
    check_body_len(body.len(), limits)?;
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + body[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            return Err(IngestError::line(line, "invalid UTF-8"));
        }
    };
    let mut p = TextParser {
        format,
        default_ts,
        limits,
        series: SeriesBuilder::new(limits),
        pairs: Vec::with_capacity(16),
        families: HashMap::new(),
        out: Decoded::default(),
    };
    let mut eof_line = None;
    let mut lineno = 0usize;
    let mut rest = text;
    while !rest.is_empty() {
        lineno += 1;
        let (line, next) = match rest.as_bytes().iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if let Some(eof) = eof_line {
            if !line.is_empty() {
                return Err(IngestError::line(
                    lineno,
                    format!("unexpected content after \"# EOF\" on line {eof}"),
                ));
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if line.as_bytes()[0] == b'#' {
            if p.comment(line, lineno)? {
                eof_line = Some(lineno);
            }
        } else {
            p.sample(line, lineno)?;
        }
    }
    if format == Format::OpenMetrics && eof_line.is_none() {
        return Err(IngestError::line(
            lineno.max(1),
            "unexpected end of input, expected \"# EOF\" to end the OpenMetrics body",
        ));
    }
    Ok(p.out)
}

struct TextParser<'a, 'l> {
    format: Format,
    default_ts: i64,
    limits: &'l Limits,
    series: SeriesBuilder<'l>,
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Family name -> index into `out.metadata`, plus whether TYPE / HELP were seen.
    families: HashMap<Cow<'a, str>, (usize, bool, bool)>,
    out: Decoded,
}

/// A position inside one line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn err(&self, msg: impl Into<String>) -> IngestError {
        IngestError::line(self.line, msg)
    }

    /// `found 'x'` / `found end of line`, for "expected ..." messages.
    fn found(&self) -> String {
        match self.s[self.pos.min(self.s.len())..].chars().next() {
            Some(c) => format!("found {c:?}"),
            None => "found end of line".to_string(),
        }
    }

    fn expected(&self, what: &str) -> IngestError {
        if self.at_end() {
            self.err(format!("unexpected end of line, expected {what}"))
        } else {
            self.err(format!("expected {what}, {}", self.found()))
        }
    }

    /// Bytes while `ok`, as a slice.
    fn take_while(&mut self, ok: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&ok) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A token up to the next blank.
    fn token(&mut self) -> &'a str {
        self.take_while(|b| b != b' ' && b != b'\t')
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    fn legacy_metric_name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {
                Some(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
            }
            _ => None,
        }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    fn legacy_label_name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                Some(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_'))
            }
            _ => None,
        }
    }

    /// A double-quoted string starting at the cursor, unescaping `\\`, `\"` and `\n`
    /// (other escapes are kept verbatim, as Prometheus does).
    fn quoted(&mut self, what: &str) -> Result<Cow<'a, str>, IngestError> {
        if self.peek() != Some(b'"') {
            return Err(self.expected(what));
        }
        self.pos += 1;
        let start = self.pos;
        let bytes = self.s.as_bytes();
        let mut owned: Option<String> = None;
        let mut seg = start;
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(&self.s[start..i]),
                        Some(mut o) => {
                            o.push_str(&self.s[seg..i]);
                            Cow::Owned(o)
                        }
                    });
                }
                b'\\' => {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&self.s[seg..i]);
                    match bytes.get(i + 1) {
                        Some(b'\\') => o.push('\\'),
                        Some(b'"') => o.push('"'),
                        Some(b'n') => o.push('\n'),
                        // Verbatim: keep the backslash, the next character is copied as usual.
                        _ => {
                            o.push('\\');
                            i += 1;
                            seg = i;
                            continue;
                        }
                    }
                    i += 2;
                    seg = i;
                }
                _ => i += 1,
            }
        }
        self.pos = bytes.len();
        Err(self.err(format!(
            "unterminated quoted {what}, expected a closing '\"'"
        )))
    }

    /// A metric name on a `# HELP` / `# TYPE` line: plain or quoted.
    fn family_name(&mut self) -> Result<Cow<'a, str>, IngestError> {
        if self.peek() == Some(b'"') {
            let n = self.quoted("metric name")?;
            if n.is_empty() {
                return Err(self.err("empty metric name"));
            }
            return Ok(n);
        }
        self.legacy_metric_name()
            .map(Cow::Borrowed)
            .ok_or_else(|| self.expected("a metric name"))
    }
}

fn parse_type(word: &str, format: Format) -> Option<MetricType> {
    Some(match (word, format) {
        ("counter", _) => MetricType::Counter,
        ("gauge", _) => MetricType::Gauge,
        ("histogram", _) => MetricType::Histogram,
        ("summary", _) => MetricType::Summary,
        ("untyped", Format::PromText) | ("unknown", Format::OpenMetrics) => MetricType::Untyped,
        ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
        ("info", Format::OpenMetrics) => MetricType::Info,
        ("stateset", Format::OpenMetrics) => MetricType::StateSet,
        _ => return None,
    })
}

/// Unescapes `\\` and `\n` in HELP text.
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

impl<'a> TextParser<'a, '_> {
    /// Handles a `#` line; returns true for an OpenMetrics `# EOF`.
    fn comment(&mut self, line: &'a str, lineno: usize) -> Result<bool, IngestError> {
        let mut c = Cursor {
            s: line,
            pos: 1,
            line: lineno,
        };
        c.skip_ws();
        let word = c.token();
        let is_help = word == "HELP";
        match word {
            "EOF" if self.format == Format::OpenMetrics => {
                c.skip_ws();
                if !c.at_end() {
                    return Err(c.expected("end of line after \"# EOF\""));
                }
                Ok(true)
            }
            "HELP" | "TYPE" => {
                if !c.skip_ws() {
                    return Err(c.expected(&format!("a space and a metric name after # {word}")));
                }
                let name = c.family_name()?;
                let had_space = c.skip_ws();
                if !c.at_end() && !had_space {
                    return Err(c.expected("a space after the metric name"));
                }
                let rest = &line[c.pos..];
                let idx = self.family(name.clone());
                let entry = self.families.get_mut(&name).map(|e| {
                    let seen = if is_help { &mut e.2 } else { &mut e.1 };
                    std::mem::replace(seen, true)
                });
                if entry == Some(true) {
                    return Err(c.err(format!("second # {word} line for metric {:?}", &*name)));
                }
                let meta = self.out.metadata.get_mut(idx);
                if is_help {
                    if let Some(m) = meta {
                        m.help = Some(unescape_help(rest));
                    }
                } else {
                    let Some(kind) = parse_type(rest, self.format) else {
                        let expected = match self.format {
                            Format::PromText => "counter, gauge, histogram, summary or untyped",
                            Format::OpenMetrics => {
                                "counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown"
                            }
                        };
                        if rest.is_empty() {
                            return Err(c.expected(&format!("a metric type ({expected})")));
                        }
                        return Err(
                            c.err(format!("unknown metric type {rest:?}, expected {expected}"))
                        );
                    };
                    if let Some(m) = meta {
                        m.kind = kind;
                    }
                }
                Ok(false)
            }
            // `# UNIT` and free comments carry nothing klaxon stores.
            _ => Ok(false),
        }
    }

    fn family(&mut self, name: Cow<'a, str>) -> usize {
        if let Some(e) = self.families.get(&name) {
            return e.0;
        }
        let idx = self.out.metadata.len();
        self.out.metadata.push(FamilyMetadata {
            name: name.to_string(),
            kind: MetricType::Untyped,
            help: None,
        });
        self.families.insert(name, (idx, false, false));
        idx
    }

    /// `_created` samples of OpenMetrics counters / histograms / summaries are dropped.
    fn is_created(&self, name: &str) -> bool {
        if self.format != Format::OpenMetrics {
            return false;
        }
        let Some(base) = name.strip_suffix("_created") else {
            return false;
        };
        self.families
            .get(base)
            .and_then(|e| self.out.metadata.get(e.0))
            .is_some_and(|m| {
                matches!(
                    m.kind,
                    MetricType::Counter
                        | MetricType::Histogram
                        | MetricType::Summary
                        | MetricType::GaugeHistogram
                )
            })
    }

    fn sample(&mut self, line: &'a str, lineno: usize) -> Result<(), IngestError> {
        let mut c = Cursor {
            s: line,
            pos: 0,
            line: lineno,
        };
        self.pairs.clear();
        let mut name: Option<Cow<'a, str>> = None;
        if c.peek() != Some(b'{') {
            match c.legacy_metric_name() {
                Some(n) => name = Some(Cow::Borrowed(n)),
                None => return Err(c.expected("a metric name or '{'")),
            }
        }
        if c.peek() == Some(b'{') {
            c.pos += 1;
            self.labels(&mut c, &mut name)?;
        }
        let name = match name {
            Some(n) => n,
            // `{__name__="x"}` names the metric through the reserved label.
            None => match self.pairs.iter().position(|p| p.0 == METRIC_NAME) {
                Some(i) => self.pairs.swap_remove(i).1,
                None => {
                    return Err(c.err(
                        "missing metric name, expected a name before '{' or a quoted name inside",
                    ));
                }
            },
        };
        if c.at_end() {
            return Err(c.expected("a value"));
        }
        if !c.skip_ws() {
            return Err(c.expected("a space before the value"));
        }
        if c.at_end() {
            return Err(c.expected("a value"));
        }
        let vtok = c.token();
        let value = parse_value(vtok).ok_or_else(|| {
            c.err(format!(
                "invalid value {vtok:?}, expected a number, NaN, +Inf or -Inf"
            ))
        })?;
        c.skip_ws();
        let mut ts = self.default_ts;
        if !c.at_end() && c.peek() != Some(b'#') {
            let ttok = c.token();
            ts = match self.format {
                Format::PromText => ttok.parse::<i64>().map_err(|_| {
                    c.err(format!(
                        "invalid timestamp {ttok:?}, expected integer milliseconds"
                    ))
                })?,
                Format::OpenMetrics => seconds_to_ms(ttok).ok_or_else(|| {
                    c.err(format!("invalid timestamp {ttok:?}, expected seconds"))
                })?,
            };
            c.skip_ws();
        }
        if !c.at_end() {
            if c.peek() != Some(b'#') {
                return Err(c.expected("end of line or an exemplar (\" # {...} value\")"));
            }
            c.pos += 1;
            c.skip_ws();
            if c.peek() != Some(b'{') {
                return Err(c.expected("'{' starting an exemplar"));
            }
            // Exemplars are not stored; their content is not checked further.
            self.out.ignored.exemplars += 1;
        }
        if self.is_created(&name) {
            self.out.ignored.created += 1;
            return Ok(());
        }
        if self.out.samples.len() >= self.limits.max_samples {
            return Err(too_many_samples(self.limits, Location::Line(lineno)));
        }
        let pairs = std::iter::once((METRIC_NAME, &*name))
            .chain(self.pairs.iter().map(|(n, v)| (&**n, &**v)));
        let labels = self
            .series
            .build(pairs)
            .map_err(|p| p.into_error(Location::Line(lineno)))?;
        self.out
            .samples
            .push((labels, ts, SampleValue::Float(value)));
        Ok(())
    }

    /// Label pairs after `{`, through `}`; a leading quoted string without `=` is the metric name.
    fn labels(
        &mut self,
        c: &mut Cursor<'a>,
        name: &mut Option<Cow<'a, str>>,
    ) -> Result<(), IngestError> {
        let mut first = true;
        loop {
            c.skip_ws();
            match c.peek() {
                Some(b'}') => {
                    c.pos += 1;
                    return Ok(());
                }
                None => return Err(c.expected("a label name or '}'")),
                _ => {}
            }
            let label = if c.peek() == Some(b'"') {
                let s = c.quoted("label name")?;
                c.skip_ws();
                if c.peek() != Some(b'=') {
                    if !first || name.is_some() {
                        return Err(c.expected(&format!("'=' after label name {:?}", &*s)));
                    }
                    if s.is_empty() {
                        return Err(c.err("empty metric name"));
                    }
                    *name = Some(s);
                    first = false;
                    if !Self::label_separator(c)? {
                        return Ok(());
                    }
                    continue;
                }
                s
            } else {
                match c.legacy_label_name() {
                    Some(n) => Cow::Borrowed(n),
                    None => return Err(c.expected("a label name or '}'")),
                }
            };
            first = false;
            c.skip_ws();
            if c.peek() != Some(b'=') {
                return Err(c.expected(&format!("'=' after label name {:?}", &*label)));
            }
            c.pos += 1;
            c.skip_ws();
            let value = c.quoted("label value")?;
            self.pairs.push((label, value));
            if !Self::label_separator(c)? {
                return Ok(());
            }
        }
    }

    /// After a label: `,` (true, more may follow) or `}` (false, done).
    fn label_separator(c: &mut Cursor<'a>) -> Result<bool, IngestError> {
        c.skip_ws();
        match c.peek() {
            Some(b',') => {
                c.pos += 1;
                Ok(true)
            }
            Some(b'}') => {
                c.pos += 1;
                Ok(false)
            }
            _ => Err(c.expected("',' or '}'")),
        }
    }
}

/// Go `ParseFloat`-compatible enough: decimals, exponents, `NaN`, `±Inf` (any case).
fn parse_value(tok: &str) -> Option<f64> {
    match tok {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => {
            // Rust also accepts "infinity"/"nan" in any case, as Go does; anything else
            // (hex, underscores) is rejected by both.
            let v = tok.parse::<f64>().ok()?;
            // Normalise NaN so every NaN from text is the same value; the stale marker cannot
            // be written in text.
            Some(if v.is_nan() { f64::NAN } else { v })
        }
    }
}

/// OpenMetrics timestamp (float seconds) to integer milliseconds.
fn seconds_to_ms(tok: &str) -> Option<Timestamp> {
    let s = tok.parse::<f64>().ok()?;
    let ms = (s * 1000.0).round();
    // `as` saturates; refuse values that would.
    if !(-9.2e18..=9.2e18).contains(&ms) {
        return None;
    }
    Some(ms as i64)
}

/// Writes samples as Prometheus text 0.0.4, one line each with its timestamp.
///
/// Exists for tests, benches and fuzzing: `parse_prom_text(encode_prom_text(x)) == x` for every
/// float sample set the parser can produce. String samples have no text form and are skipped.
pub fn encode_prom_text(samples: &[DecodedSample], out: &mut String) {
    for (labels, ts, value) in samples {
        let SampleValue::Float(v) = value else {
            continue;
        };
        let name = labels.metric_name().unwrap_or("");
        let legacy_name = is_legacy_metric_name(name);
        let mut first = true;
        if legacy_name {
            out.push_str(name);
        } else {
            out.push('{');
            write_quoted(out, name);
            first = false;
        }
        for l in labels.iter().filter(|l| &*l.name != METRIC_NAME) {
            out.push(if first { '{' } else { ',' });
            first = false;
            if is_legacy_label_name(&l.name) {
                out.push_str(&l.name);
            } else {
                write_quoted(out, &l.name);
            }
            out.push('=');
            write_quoted(out, &l.value);
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        write_float(out, *v);
        let _ = writeln!(out, " {ts}");
    }
}

fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // `{:?}` is the shortest representation that parses back to the same bits.
        let _ = write!(out, "{v:?}");
    }
}
