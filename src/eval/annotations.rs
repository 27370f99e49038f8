//! Prometheus' annotations: non-fatal warnings and infos about a query, rendered as the API
//! renders them (`PromQL warning: ... (line:col)`), where the position is that of the expression
//! the annotation is about.

use std::collections::HashSet;

use crate::expr::Span;

use super::value::format_g;
use crate::model::quote as go_quote;

/// Severity of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Level {
    /// `PromQL warning:`
    Warn,
    /// `PromQL info:`
    Info,
}

/// The annotations collected while evaluating one query, deduplicated like Prometheus' map.
#[derive(Debug, Default)]
pub(crate) struct Annotations {
    items: Vec<(Level, String, Span)>,
    seen: HashSet<(String, usize)>,
}

impl Annotations {
    /// Adds an annotation about the expression at `span`.
    pub fn add(&mut self, level: Level, msg: String, span: Span) {
        if self.seen.insert((msg.clone(), span.start)) {
            self.items.push((level, msg, span));
        }
    }

    /// Renders warnings and infos with their positions.
    pub fn render(&self, text: Option<&str>) -> (Vec<String>, Vec<String>) {
        let mut warnings = Vec::new();
        let mut infos = Vec::new();
        for (level, msg, span) in &self.items {
            let s = format!("{msg} ({})", position(*span, text));
            match level {
                Level::Warn => warnings.push(s),
                Level::Info => infos.push(s),
            }
        }
        (warnings, infos)
    }
}

/// `line:col` of a span start (1-based, byte columns as Prometheus); line 1 when the text is unknown.
fn position(span: Span, text: Option<&str>) -> String {
    let pos = span.start;
    match text {
        Some(t) if pos <= t.len() && t.is_char_boundary(pos) => {
            let before = &t[..pos];
            let line = before.matches('\n').count() + 1;
            let col = match before.rfind('\n') {
                Some(nl) => pos - nl,
                None => pos + 1,
            };
            format!("{line}:{col}")
        }
        _ => format!("1:{}", pos + 1),
    }
}

/// `rate`/`increase` on a series whose name does not look like a counter.
pub(crate) fn possible_non_counter(metric: &str) -> String {
    format!(
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
        go_quote(metric)
    )
}

/// A quantile outside [0, 1].
pub(crate) fn invalid_quantile(q: f64) -> String {
    format!(
        "PromQL warning: quantile value should be between 0 and 1, got {}",
        format_g(q)
    )
}

/// A classic histogram bucket whose `le` label is missing or not a number.
pub(crate) fn bad_bucket_label(metric: &str, le: &str) -> String {
    format!(
        "PromQL warning: bucket label \"le\" is missing or has a malformed value of {} for metric name {}",
        go_quote(le),
        go_quote(metric)
    )
}

/// Bucket counts that had to be made monotonic.
pub(crate) fn forced_monotonicity(metric: &str) -> String {
    format!(
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {}",
        go_quote(metric)
    )
}

/// `sort` and friends in a range query.
pub(crate) fn sort_in_range_query() -> String {
    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        assert_eq!(position(Span::new(5, 9), None), "1:6");
        assert_eq!(position(Span::new(5, 9), Some("rate(\nfoo[5m])")), "1:6");
        assert_eq!(position(Span::new(6, 9), Some("rate(\nfoo[5m])")), "2:1");
    }

    #[test]
    fn dedup() {
        let mut a = Annotations::default();
        a.add(Level::Warn, invalid_quantile(2.0), Span::new(0, 1));
        a.add(Level::Warn, invalid_quantile(2.0), Span::new(0, 1));
        a.add(Level::Info, possible_non_counter("foo"), Span::new(5, 8));
        let (w, i) = a.render(None);
        assert_eq!(
            w,
            vec![
                "PromQL warning: quantile value should be between 0 and 1, got 2 (1:1)".to_string()
            ]
        );
        assert_eq!(
            i,
            vec![
                "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"foo\" (1:6)"
                    .to_string()
            ]
        );
    }
}
