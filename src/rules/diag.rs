//! Rule-file diagnostics: one problem at a `file:line:col`, rendered like expression diagnostics.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One problem (error or warning) found while loading rule files, pointing into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDiagnostic {
    /// The rule file (as given on the command line or found in a directory).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file (unreadable, missing).
    pub line: usize,
    /// 1-based column in characters; 0 when unknown.
    pub column: usize,
    /// One-line description.
    pub message: String,
    /// The file's text at `line`, shown under the location when rendering.
    pub source_line: Option<String>,
}

impl RuleDiagnostic {
    /// A diagnostic about a whole file (no line), e.g. an I/O error.
    pub fn file_level(file: &Path, message: impl Into<String>) -> Self {
        RuleDiagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            source_line: None,
        }
    }

    /// A diagnostic at `line:column` of `src` (the file's full text), capturing the source line.
    pub fn at(
        file: &Path,
        src: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        let source_line = if line == 0 {
            None
        } else {
            src.lines()
                .nth(line - 1)
                .map(|l| l.trim_end_matches('\r').to_string())
        };
        RuleDiagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            source_line,
        }
    }

    /// Renders as an error, rustc style (same look as `expr::Diagnostic::render`).
    pub fn render(&self) -> String {
        self.render_level("error")
    }

    /// Renders as a warning.
    pub fn render_warning(&self) -> String {
        self.render_level("warning")
    }

    /// Renders with the given level word (`error`, `warning`).
    pub fn render_level(&self, level: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{level}: {}", self.message);
        let file = self.file.display();
        if self.line == 0 {
            let _ = writeln!(out, " --> {file}");
            return out;
        }
        let gutter = self.line.to_string().len();
        let blank = " ".repeat(gutter);
        let _ = writeln!(out, "{blank}--> {file}:{}:{}", self.line, self.column);
        if let Some(text) = &self.source_line {
            let (shown, pad) = window(text, self.column.saturating_sub(1));
            let _ = writeln!(out, "{blank} |");
            let _ = writeln!(out, "{} | {}", self.line, shown);
            let _ = writeln!(out, "{blank} | {}^", " ".repeat(pad));
        }
        out
    }
}

impl std::fmt::Display for RuleDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Longest source excerpt shown in a rendered diagnostic, in characters.
const MAX_SHOWN: usize = 100;

/// The source line to show (cut to a window around the caret when very long, control characters
/// as spaces so the caret stays aligned) and the caret's offset in it.
fn window(text: &str, pad: usize) -> (String, usize) {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars.len() <= MAX_SHOWN {
        return (chars.into_iter().collect(), pad);
    }
    let start = pad
        .saturating_sub(MAX_SHOWN / 2)
        .min(chars.len() - MAX_SHOWN);
    let mut shown: String = chars[start..start + MAX_SHOWN].iter().collect();
    let mut pad = pad - start.min(pad);
    if start > 0 {
        shown.insert_str(0, "...");
        pad += 3;
    }
    if start + MAX_SHOWN < chars.len() {
        shown.push_str("...");
    }
    (shown, pad)
}

/// Loading failed: every error found (and the warnings), for callers that want a `Result`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", summarize(.errors))]
pub struct LoadError {
    /// Every error, in file order.
    pub errors: Vec<RuleDiagnostic>,
    /// Warnings found along the way.
    pub warnings: Vec<RuleDiagnostic>,
}

fn summarize(errors: &[RuleDiagnostic]) -> String {
    let mut out = format!("{} error(s) in rule files", errors.len());
    for e in errors {
        let _ = write!(out, "\n  {e}");
    }
    out
}
