//! Diagnostics: one error with a source span, rendered rustc-style for people and snapshots.

use std::fmt::Write as _;

use super::ast::Span;

/// A parse or type error pointing at the source text it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Diagnostic {
    /// One-line description, PromQL wording where Prometheus has one.
    pub message: String,
    /// Byte range of the offending text in the source the diagnostic was produced from.
    pub span: Span,
    /// Extra hints, rendered as `= note: ...` lines.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic without notes.
    pub fn new(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            notes: Vec::new(),
        }
    }

    /// Adds a note (builder style).
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Moves the span by `bytes`, for when the expression is embedded verbatim in a larger text
    /// (a rule file) and the diagnostic should be rendered against that text.
    pub fn shifted(mut self, bytes: usize) -> Self {
        self.span.start = self.span.start.saturating_add(bytes);
        self.span.end = self.span.end.saturating_add(bytes);
        self
    }

    /// 1-based line and column (column counted in characters) of the span start within `src`.
    pub fn line_col(&self, src: &str) -> (usize, usize) {
        line_col_at(src, self.span.start)
    }

    /// The position of the span start once the expression itself starts at line `by_line`,
    /// column `by_col` (both 1-based) of an enclosing file: only the first line is shifted
    /// sideways, later lines keep their own columns.
    pub fn offset(&self, src: &str, by_line: usize, by_col: usize) -> (usize, usize) {
        let (line, col) = self.line_col(src);
        let by_line = by_line.max(1);
        let by_col = by_col.max(1);
        if line == 1 {
            (by_line, col + by_col - 1)
        } else {
            (line + by_line - 1, col)
        }
    }

    /// Renders the diagnostic with the source line and a caret underline:
    ///
    /// ```text
    /// error: unexpected ")", expected an expression
    ///  --> <expr>:1:31
    ///   |
    /// 1 | sum(rate(http_errors[5m]) / )
    ///   |                               ^
    /// ```
    pub fn render(&self, src: &str, origin: Option<&str>) -> String {
        let (line, col) = self.line_col(src);
        let start = clamp_to_char_boundary(src, self.span.start);
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let text = src[line_start..line_end].trim_end_matches('\r');
        let end = clamp_to_char_boundary(src, self.span.end.max(start))
            .min(line_start + text.len())
            .max(start);
        let width = src[start..end].chars().count().max(1);
        let pad = col.saturating_sub(1);

        // Very long lines (generated rules, minified input) are cut to a window around the caret.
        let (shown, pad, visible) = window(text, pad, width);
        let width = width.min(visible.saturating_sub(pad)).max(1);

        let gutter = line.to_string().len();
        let blank = " ".repeat(gutter);
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        let _ = writeln!(
            out,
            "{blank}--> {}:{line}:{col}",
            origin.unwrap_or("<expr>")
        );
        let _ = writeln!(out, "{blank} |");
        let _ = writeln!(out, "{line} | {}", printable(&shown));
        let _ = write!(out, "{blank} | {}{}", " ".repeat(pad), "^".repeat(width));
        for note in &self.notes {
            let _ = write!(out, "\n{blank} = note: {note}");
        }
        out.push('\n');
        out
    }
}

/// Longest source excerpt shown in a rendered diagnostic, in characters.
const MAX_SHOWN: usize = 100;

/// Cuts `text` to at most [`MAX_SHOWN`] characters around the caret at character `pad`;
/// returns the excerpt, the caret's new offset within it and where the real text ends in it.
fn window(text: &str, pad: usize, width: usize) -> (String, usize, usize) {
    let total = text.chars().count();
    if total <= MAX_SHOWN {
        return (text.to_string(), pad, total);
    }
    let start = pad
        .saturating_sub(MAX_SHOWN / 2)
        .min(total.saturating_sub(MAX_SHOWN));
    let take = MAX_SHOWN.max(width.min(MAX_SHOWN));
    let mut shown: String = text.chars().skip(start).take(take).collect();
    let mut new_pad = pad - start;
    if start > 0 {
        shown.insert_str(0, "...");
        new_pad += 3;
    }
    let visible = shown.chars().count();
    if start + take < total {
        shown.push_str("...");
    }
    (shown, new_pad, visible)
}

/// 1-based (line, column in characters) of byte offset `pos` in `src`; offsets past the end
/// point just after the last character.
pub fn line_col_at(src: &str, pos: usize) -> (usize, usize) {
    let pos = clamp_to_char_boundary(src, pos);
    let before = &src[..pos];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn clamp_to_char_boundary(src: &str, pos: usize) -> usize {
    let mut p = pos.min(src.len());
    while !src.is_char_boundary(p) {
        p -= 1;
    }
    p
}

/// Tabs and control characters would shift the caret; show them as single spaces.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let src = "sum(rate(http_errors[5m]) / )";
        let d = Diagnostic::new(
            "unexpected \")\", expected an expression",
            Span::new(28, 29),
        );
        let want = "error: unexpected \")\", expected an expression\n --> origin:1:29\n  |\n1 | sum(rate(http_errors[5m]) / )\n  |                             ^\n";
        assert_eq!(d.render(src, Some("origin")), want);
    }

    #[test]
    fn columns_count_characters_and_lines() {
        let src = "é + \n  foo";
        assert_eq!(line_col_at(src, 3), (1, 3));
        assert_eq!(line_col_at(src, 8), (2, 3));
        let d = Diagnostic::new("x", Span::new(8, 11));
        assert_eq!(d.offset(src, 10, 5), (11, 3));
        let d = Diagnostic::new("x", Span::new(3, 4));
        assert_eq!(d.offset(src, 10, 5), (10, 7));
    }

    #[test]
    fn span_past_end_is_clamped() {
        let d = Diagnostic::new("unexpected end of input", Span::new(99, 120));
        let r = d.render("foo(", None);
        assert!(r.contains("<expr>:1:5"), "{r}");
    }
}
