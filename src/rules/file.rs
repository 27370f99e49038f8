//! The raw side of a rule file: YAML documents read into a spanned node tree.
//!
//! Rule files are read into a generic tree (not derived structs) so validation can report every
//! problem of a file in one run — unknown fields, duplicate keys, wrong types — each at its own
//! line and column. serde-saphyr does the YAML (anchors, merges, multi-document); duplicate keys are
//! passed through and detected by the validator so they don't stop the run.

use serde_saphyr::{DuplicateKeyPolicy, Location, Spanned};

use crate::yaml::RawValue;

/// A position in the file text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// Byte offset of the node's text, when known.
    pub byte: Option<usize>,
    /// Byte length of the node's text (0 for collections).
    pub len: usize,
}

impl Pos {
    fn from_location(l: &Location) -> Pos {
        let span = l.span();
        Pos {
            line: usize::try_from(l.line()).unwrap_or(0),
            column: usize::try_from(l.column()).unwrap_or(0),
            byte: span.byte_offset().and_then(|b| usize::try_from(b).ok()),
            len: span
                .byte_len()
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(0),
        }
    }
}

/// A YAML value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// A string (quotes and block indentation already resolved).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order, duplicates kept.
    Map(Vec<(Node, Node)>),
}

/// A YAML node with where it is used (`at`) and where its text is (`def`, differs for aliases).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The value.
    pub value: Value,
    /// Where the node is referenced (the alias or merge site for aliased values).
    pub at: Pos,
    /// Where the node's text is defined.
    pub def: Pos,
}

impl Node {
    /// The node's text in the file (the defining occurrence), if known.
    pub fn raw<'a>(&self, src: &'a str) -> Option<&'a str> {
        let b = self.def.byte?;
        src.get(b..b.checked_add(self.def.len)?)
    }

    /// A scalar as a string: strings as decoded, numbers and booleans as written.
    pub fn scalar_string(&self, src: &str) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(
                self.raw(src)
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string()),
            ),
            Value::Float(f) => Some(
                self.raw(src)
                    .map(str::to_string)
                    .unwrap_or_else(|| f.to_string()),
            ),
            Value::Bool(b) => Some(
                self.raw(src)
                    .map(str::to_string)
                    .unwrap_or_else(|| b.to_string()),
            ),
            _ => None,
        }
    }

    /// What kind of YAML value this is, for "expected X, got Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Byte offset in the file of byte `pos` of this string scalar's decoded value.
    ///
    /// Exact for plain and single-line quoted scalars and for literal blocks (`|`); folded
    /// blocks, multi-line plain scalars and escapes are aligned character by character, falling
    /// back to the scalar's start when the alignment is lost.
    pub fn map_offset(&self, src: &str, value: &str, pos: usize) -> Option<usize> {
        let start = self.def.byte?;
        let raw = src.get(start..start.checked_add(self.def.len)?)?;
        Some(start + align(value, raw, pos).unwrap_or(0))
    }
}

/// Aligns the decoded `value` against its `raw` text greedily; returns the raw byte offset that
/// corresponds to value byte `pos` (or just past the last matched character for `pos` at the end).
fn align(value: &str, raw: &str, pos: usize) -> Option<usize> {
    let raw_chars: Vec<(usize, char)> = raw.char_indices().collect();
    let mut r = 0usize;
    let mut after = 0usize;
    for (vi, vc) in value.char_indices() {
        // Skip raw characters that are not in the value: quotes, escapes' backslashes, indentation.
        loop {
            let &(ri, rc) = raw_chars.get(r)?;
            if rc == vc || (vc == ' ' && rc == '\n') || (vc == '\n' && rc == '\n') {
                if vi >= pos {
                    return Some(ri);
                }
                r += 1;
                after = ri + rc.len_utf8();
                break;
            }
            r += 1;
        }
    }
    Some(after)
}

fn convert(s: Spanned<RawValue>) -> Node {
    let at = Pos::from_location(&s.referenced);
    let def = Pos::from_location(&s.defined);
    let value = match s.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::Float(f) => Value::Float(f),
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(v) => Value::Seq(v.into_iter().map(convert).collect()),
        RawValue::Map(v) => Value::Map(
            v.into_iter()
                .map(|(k, x)| (convert(k), convert(x)))
                .collect(),
        ),
    };
    Node { value, at, def }
}

/// A YAML syntax error (or a budget breach), with its position when known.
#[derive(Debug, Clone)]
pub(crate) struct YamlError {
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// The parser's message without the trailing location.
    pub message: String,
}

/// Reads every YAML document of a file (null documents are skipped).
pub(crate) fn parse_documents(src: &str) -> Result<Vec<Node>, YamlError> {
    let mut opts = serde_saphyr::options::Options::default();
    opts.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    opts.with_snippet = false;
    let docs: Result<Vec<Spanned<RawValue>>, _> =
        serde_saphyr::from_str_multiple_with_options(src, opts);
    match docs {
        Ok(d) => Ok(d.into_iter().map(convert).collect()),
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| {
                    (
                        usize::try_from(l.line()).unwrap_or(0),
                        usize::try_from(l.column()).unwrap_or(0),
                    )
                })
                .unwrap_or((0, 0));
            let full = e.to_string();
            let flat = full.split_whitespace().collect::<Vec<_>>().join(" ");
            let suffix = format!(" at line {line}, column {column}");
            let message = match flat.find(&suffix) {
                Some(i) if line > 0 => format!("{}{}", &flat[..i], &flat[i + suffix.len()..]),
                _ => flat,
            };
            Err(YamlError {
                line,
                column,
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_quoted_and_block_scalars() {
        assert_eq!(align("foo + ", "\"foo + \"", 4), Some(5));
        assert_eq!(align("it's x", "'it''s x'", 5), Some(7));
        let raw = "sum(\n    rate(x))\n  ";
        assert_eq!(align("sum(\nrate(x))\n", raw, 5), Some(9));
        assert_eq!(align("up == 0", "up ==\n    0\n", 6), Some(10));
        assert_eq!(align("abc", "abc", 3), Some(3));
    }

    #[test]
    fn keeps_duplicate_keys() {
        let docs = parse_documents("a: 1\na: 2\n").unwrap();
        let Value::Map(m) = &docs[0].value else {
            panic!()
        };
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].0.at.line, 2);
    }
}
