//! Label sets: sorted by name, unique names, cheap to clone.

use std::fmt;
use std::sync::Arc;

/// The reserved label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair; names and values are shared strings so cloning a set never copies text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// Label name.
    pub name: Arc<str>,
    /// Label value (never empty inside a `Labels`: empty means absent, as in Prometheus).
    pub value: Arc<str>,
}

/// A label set sorted by name with unique names, so equality and hashing do not depend on input order.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// The empty set.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a set from pairs in any order; the last of duplicate names wins, empty values are dropped.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut b = LabelsBuilder::new(&Labels::empty());
        for (n, v) in pairs {
            b.set(n.as_ref(), v.as_ref());
        }
        b.build()
    }

    /// Wraps labels that are already sorted and unique (checked in debug builds).
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Labels(labels)
    }

    /// The set as a JSON object (`{"name": "value"}`), the shape every API and payload uses.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.iter()
                .map(|l| {
                    (
                        l.name.to_string(),
                        serde_json::Value::String(l.value.to_string()),
                    )
                })
                .collect(),
        )
    }

    /// Value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &*self.0[i].value)
    }

    /// Metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Whether the set has `name` with a non-empty value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Iterates labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The set without `__name__`.
    pub fn without_metric_name(&self) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| &*l.name != METRIC_NAME)
                .cloned()
                .collect(),
        )
    }

    /// Only the labels whose names are in `names` (`by (...)` / `on (...)`).
    pub fn keep(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| names.iter().any(|n| **n == *l.name))
                .cloned()
                .collect(),
        )
    }

    /// All labels except those in `names`; `__name__` too when `drop_name` (`without (...)` / `ignoring (...)`).
    pub fn drop(&self, names: &[String], drop_name: bool) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| {
                    (!drop_name || &*l.name != METRIC_NAME) && !names.iter().any(|n| **n == *l.name)
                })
                .cloned()
                .collect(),
        )
    }

    /// Consumes the set into its sorted vector.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Prometheus' 64-bit label-set hash input order: name, 0xff, value, 0xff per label. Stable across runs.
    pub fn hash64(&self) -> u64 {
        // FNV-1a over the same byte layout Prometheus feeds xxhash; stable and dependency-free.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for l in &self.0 {
            for b in l
                .name
                .bytes()
                .chain([0xffu8])
                .chain(l.value.bytes())
                .chain([0xffu8])
            {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prometheus' text form: `name{a="b", c="d"}`, with the metric name outside the braces when it is a plain identifier.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        let plain_name = name.filter(|n| is_legacy_metric_name(n));
        if let Some(n) = plain_name {
            f.write_str(n)?;
        }
        f.write_str("{")?;
        let mut first = true;
        if let (Some(n), None) = (name, plain_name) {
            write!(f, "{}", quote(n))?;
            first = false;
        }
        for l in self.0.iter().filter(|l| &*l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            if is_legacy_label_name(&l.name) {
                f.write_str(&l.name)?;
            } else {
                write!(f, "{}", quote(&l.name))?;
            }
            write!(f, "={}", quote(&l.value))?;
        }
        f.write_str("}")
    }
}

/// Go's `strconv.Quote`, the way Prometheus prints label values, names and strings everywhere.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: names that need no quotes in PromQL.
pub fn is_legacy_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: label names that need no quotes in PromQL.
pub fn is_legacy_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Edits a label set without re-sorting on every change.
#[derive(Debug, Clone)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// Starts from an existing set.
    pub fn new(base: &Labels) -> Self {
        LabelsBuilder {
            labels: base.0.clone(),
        }
    }

    /// Sets `name` to `value`; an empty value deletes the label, as in Prometheus.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.labels.binary_search_by(|l| (*l.name).cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.labels.remove(i);
            }
            Ok(i) => self.labels[i].value = Arc::from(value),
            Err(_) if value.is_empty() => {}
            Err(i) => self.labels.insert(
                i,
                Label {
                    name: Arc::from(name),
                    value: Arc::from(value),
                },
            ),
        }
        self
    }

    /// Removes `name`.
    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.labels.binary_search_by(|l| (*l.name).cmp(name)) {
            self.labels.remove(i);
        }
        self
    }

    /// Finishes the set.
    pub fn build(&self) -> Labels {
        Labels(self.labels.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter() {
        let a = Labels::from_pairs([("b", "2"), ("a", "1")]);
        let b = Labels::from_pairs([("a", "1"), ("b", "2")]);
        assert_eq!(a, b);
        assert_eq!(a.hash64(), b.hash64());
        assert_ne!(a.hash64(), Labels::from_pairs([("a", "1")]).hash64());
    }

    #[test]
    fn display_quotes_utf8_names() {
        let l = Labels::from_pairs([("__name__", "my.metric"), ("job", "a\"b")]);
        assert_eq!(l.to_string(), r#"{"my.metric", job="a\"b"}"#);
        let l = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        assert_eq!(l.to_string(), r#"up{job="x"}"#);
    }

    #[test]
    fn empty_value_deletes() {
        let l = Labels::from_pairs([("a", "1"), ("a", "")]);
        assert!(l.is_empty());
    }
}
