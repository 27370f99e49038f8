//! Per-file validation: the YAML node tree of one file into typed groups, with every problem
//! reported at its own line and column (the run never stops at the first one).

use std::collections::HashMap;
use std::path::Path;

use super::diag::RuleDiagnostic;
use super::file::{Node, Pos, Value, parse_documents};
use super::load::LoadOptions;
use super::model::{AlertingRule, Group, RecordingRule, Rule, SourceLocation, TemplatePairs};
use crate::expr::diag::line_col_at;
use crate::expr::{Expr, ValueType};
use crate::model::{METRIC_NAME, is_legacy_metric_name};

const GROUP_FIELDS: &[&str] = &[
    "name",
    "interval",
    "query_offset",
    "limit",
    "labels",
    "rules",
];
const RULE_FIELDS: &[&str] = &[
    "record",
    "alert",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];
const FLAT_FIELDS: &[&str] = &[
    "name",
    "description",
    "condition",
    "severity",
    "channels",
    "duration_minutes",
    "labels",
    "annotations",
    "group",
    "escalation",
    "depends_on",
];
const CRD_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];

/// What one file produced.
pub(crate) struct FileOutcome {
    /// Groups, in file order (flat-format groups after the Prometheus ones).
    pub groups: Vec<Group>,
    /// Errors, in file order.
    pub errors: Vec<RuleDiagnostic>,
    /// Warnings.
    pub warnings: Vec<RuleDiagnostic>,
}

/// Validates one file's text.
pub(crate) fn validate_file(file: &Path, src: &str, opts: &LoadOptions) -> FileOutcome {
    let mut cx = Cx {
        file,
        src,
        opts,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut groups = Vec::new();
    match parse_documents(src) {
        Err(e) => {
            let msg = format!("YAML parse error: {}", e.message);
            let d = if e.line == 0 {
                RuleDiagnostic::file_level(file, msg)
            } else {
                RuleDiagnostic::at(file, src, e.line, e.column, msg)
            };
            cx.errors.push(d);
        }
        Ok(docs) => {
            let mut flat: Vec<FlatGroup> = Vec::new();
            let mut seen_groups: HashMap<String, usize> = HashMap::new();
            for doc in &docs {
                cx.document(doc, &mut groups, &mut flat, &mut seen_groups);
            }
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "rules".to_string());
            for fg in flat {
                let name = fg.name.unwrap_or_else(|| stem.clone());
                if let Some(first) = seen_groups.get(&name) {
                    let msg = format!(
                        "duplicate group name {name:?} in the same file (first defined at line {first})"
                    );
                    cx.error(fg.pos, msg);
                    continue;
                }
                seen_groups.insert(name.clone(), fg.pos.line);
                let group = Group {
                    name,
                    file: file.to_path_buf(),
                    interval_ms: opts.default_interval_ms,
                    query_offset_ms: 0,
                    limit: 0,
                    labels: Vec::new(),
                    rules: fg.rules,
                };
                cx.duplicate_rules(&group);
                groups.push(group);
            }
        }
    }
    FileOutcome {
        groups,
        errors: cx.errors,
        warnings: cx.warnings,
    }
}

/// Flat-format rules collected under one `group:` name.
struct FlatGroup {
    name: Option<String>,
    pos: Pos,
    rules: Vec<Rule>,
}

/// A mapping's fields after duplicate and unknown-key checks.
struct Fields<'n> {
    entries: Vec<(String, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, _, v)| *v)
    }

    fn key(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, k, _)| *k)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PairKind {
    Labels,
    Annotations,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExprRole {
    Alert,
    Record,
}

struct Cx<'a> {
    file: &'a Path,
    src: &'a str,
    opts: &'a LoadOptions,
    errors: Vec<RuleDiagnostic>,
    warnings: Vec<RuleDiagnostic>,
}

impl Cx<'_> {
    fn error(&mut self, pos: Pos, msg: impl Into<String>) {
        self.errors.push(RuleDiagnostic::at(
            self.file, self.src, pos.line, pos.column, msg,
        ));
    }

    fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.warnings.push(RuleDiagnostic::at(
            self.file, self.src, pos.line, pos.column, msg,
        ));
    }

    fn location(&self, pos: Pos) -> SourceLocation {
        SourceLocation {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
        }
    }

    /// Checks a mapping's keys: strings, no duplicates, only `allowed` ones.
    fn fields<'n>(&mut self, node: &'n Node, allowed: &[&str], what: &str) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            let msg = format!("{what} must be a mapping, got {}", node.kind());
            self.error(node.at, msg);
            return None;
        };
        let mut out: Vec<(String, &Node, &Node)> = Vec::new();
        for (k, v) in entries {
            let Some(name) = k.scalar_string(self.src) else {
                self.error(
                    k.at,
                    format!("{what} keys must be strings, got {}", k.kind()),
                );
                continue;
            };
            if let Some((_, first, _)) = out.iter().find(|(n, _, _)| *n == name) {
                let msg = format!(
                    "duplicate key {name:?} in {what} (first defined at line {})",
                    first.at.line
                );
                self.error(k.at, msg);
                continue;
            }
            if !allowed.contains(&name.as_str()) {
                let expected = allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let msg = format!("unknown field `{name}` in {what}, expected one of {expected}");
                self.error(k.at, msg);
                continue;
            }
            out.push((name, k, v));
        }
        Some(Fields { entries: out })
    }

    fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        match node.scalar_string(self.src) {
            Some(s) => Some(s),
            None => {
                let msg = format!("`{field}` must be a string, got {}", node.kind());
                self.error(node.at, msg);
                None
            }
        }
    }

    fn string_list(&mut self, node: &Node, field: &str) -> Vec<String> {
        match &node.value {
            Value::Null => Vec::new(),
            Value::Seq(items) => items.iter().filter_map(|i| self.string(i, field)).collect(),
            _ => {
                let msg = format!("`{field}` must be a list of strings, got {}", node.kind());
                self.error(node.at, msg);
                Vec::new()
            }
        }
    }

    fn duration(&mut self, node: &Node, field: &str) -> Option<i64> {
        if matches!(node.value, Value::Null) {
            return Some(0);
        }
        let text = self.string(node, field)?;
        match crate::expr::parse_duration(&text) {
            Ok(ms) if ms < 0 => {
                self.error(node.at, format!("`{field}` must not be negative: {text:?}"));
                None
            }
            Ok(ms) => Some(ms),
            Err(e) => {
                self.error(node.at, format!("invalid duration in `{field}`: {e}"));
                None
            }
        }
    }

    fn pairs(&mut self, node: &Node, kind: PairKind) -> TemplatePairs {
        let field = match kind {
            PairKind::Labels => "labels",
            PairKind::Annotations => "annotations",
        };
        let Value::Map(entries) = &node.value else {
            if !matches!(node.value, Value::Null) {
                let msg = format!("`{field}` must be a mapping, got {}", node.kind());
                self.error(node.at, msg);
            }
            return Vec::new();
        };
        let mut out: TemplatePairs = Vec::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for (k, v) in entries {
            let Some(name) = k.scalar_string(self.src) else {
                self.error(
                    k.at,
                    format!("{field} names must be strings, got {}", k.kind()),
                );
                continue;
            };
            if let Some(line) = first_line.get(&name) {
                let msg =
                    format!("duplicate key {name:?} in {field} (first defined at line {line})");
                self.error(k.at, msg);
                continue;
            }
            first_line.insert(name.clone(), k.at.line);
            let bad = match kind {
                PairKind::Labels => name.is_empty() || name == METRIC_NAME,
                PairKind::Annotations => name.is_empty(),
            };
            if bad {
                let msg = match kind {
                    PairKind::Labels => format!("invalid label name {name:?}"),
                    PairKind::Annotations => format!("invalid annotation name {name:?}"),
                };
                self.error(k.at, msg);
                continue;
            }
            let value = match &v.value {
                Value::Null => String::new(),
                _ => match v.scalar_string(self.src) {
                    Some(s) => s,
                    None => {
                        let msg = format!(
                            "value of {field} {name:?} must be a string, got {}",
                            v.kind()
                        );
                        self.error(v.at, msg);
                        continue;
                    }
                },
            };
            out.push((name, value));
        }
        out
    }

    /// Parses and type-checks an expression, pointing errors into the YAML.
    fn expr(&mut self, node: &Node, role: ExprRole, rule_pos: Pos) -> Option<(Expr, String)> {
        let text = match &node.value {
            Value::Null => None,
            _ => Some(self.string(node, "expr")?),
        };
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            self.error(rule_pos, "expr must be set (the rule has no expression)");
            return None;
        };
        let result = crate::expr::parse(&text).and_then(|e| {
            let t = crate::expr::check(&e)?;
            Ok((e, t))
        });
        match result {
            Ok((e, t)) => {
                match (t, role) {
                    (ValueType::Vector, _) | (ValueType::Scalar, ExprRole::Record) => {}
                    (ValueType::Scalar, ExprRole::Alert) => {
                        let msg = "alerting rule expression is a scalar: the alert is active whatever its value (compare it, e.g. `vector(x) > 0`)";
                        self.warn(node.def, msg);
                    }
                    (other, _) => {
                        let what = match role {
                            ExprRole::Alert => "alerting",
                            ExprRole::Record => "recording",
                        };
                        let msg = format!(
                            "{what} rule expression must be of type instant vector or scalar, got {other}"
                        );
                        self.error(node.def, msg);
                        return None;
                    }
                }
                Some((e, text))
            }
            Err(d) => {
                let via = if node.at.line != node.def.line || node.at.column != node.def.column {
                    format!(" (used through the alias at line {})", node.at.line)
                } else {
                    String::new()
                };
                let mut msg = format!("parse error in expr{via}: {}", d.message);
                for n in &d.notes {
                    msg.push_str(&format!(" (note: {n})"));
                }
                let (line, column) = match node.map_offset(self.src, &text, d.span.start) {
                    Some(off) => line_col_at(self.src, off),
                    None => d.offset(&text, node.def.line, node.def.column),
                };
                self.errors
                    .push(RuleDiagnostic::at(self.file, self.src, line, column, msg));
                None
            }
        }
    }

    fn document(
        &mut self,
        doc: &Node,
        groups: &mut Vec<Group>,
        flat: &mut Vec<FlatGroup>,
        seen: &mut HashMap<String, usize>,
    ) {
        match &doc.value {
            Value::Null => {}
            Value::Seq(items) => {
                for item in items {
                    self.flat_rule(item, flat);
                }
            }
            Value::Map(entries) => {
                let is_crd = entries.iter().any(|(k, _)| {
                    matches!(&k.value, Value::Str(s) if s == "apiVersion" || s == "kind" || s == "spec")
                });
                let top = if is_crd {
                    let Some(f) = self.fields(doc, CRD_FIELDS, "the PrometheusRule resource")
                    else {
                        return;
                    };
                    let Some(spec) = f.get("spec") else {
                        self.error(doc.at, "`spec` must be set in a PrometheusRule resource");
                        return;
                    };
                    match self.fields(spec, &["groups"], "`spec`") {
                        Some(f) => f.get("groups"),
                        None => return,
                    }
                } else {
                    match self.fields(doc, &["groups"], "the rule file") {
                        Some(f) => f.get("groups"),
                        None => return,
                    }
                };
                let Some(list) = top else {
                    return;
                };
                match &list.value {
                    Value::Null => {}
                    Value::Seq(items) => {
                        for g in items {
                            if let Some(group) = self.group(g, seen) {
                                groups.push(group);
                            }
                        }
                    }
                    _ => {
                        let msg = format!("`groups` must be a list, got {}", list.kind());
                        self.error(list.at, msg);
                    }
                }
            }
            _ => {
                let msg = format!(
                    "a rule file holds a mapping with `groups:` (Prometheus format) or a list of alerts (flat format), got {}",
                    doc.kind()
                );
                self.error(doc.at, msg);
            }
        }
    }

    fn group(&mut self, node: &Node, seen: &mut HashMap<String, usize>) -> Option<Group> {
        let errors_before = self.errors.len();
        let f = self.fields(node, GROUP_FIELDS, "a group")?;
        let mut ok = true;
        let name = match f.get("name") {
            Some(n) => self.string(n, "name").unwrap_or_default(),
            None => String::new(),
        };
        if name.is_empty() {
            let pos = f.get("name").map_or(node.at, |n| n.at);
            self.error(pos, "group name must be set");
            ok = false;
        } else if let Some(first) = seen.get(&name) {
            let pos = f.get("name").map_or(node.at, |n| n.at);
            let msg = format!(
                "duplicate group name {name:?} in the same file (first defined at line {first})"
            );
            self.error(pos, msg);
            ok = false;
        } else {
            seen.insert(name.clone(), node.at.line);
        }
        let mut interval_ms = self.opts.default_interval_ms;
        if let Some(n) = f.get("interval") {
            match self.duration(n, "interval") {
                Some(0) => {}
                Some(ms) => interval_ms = ms,
                None => ok = false,
            }
        }
        let mut query_offset_ms = 0;
        if let Some(n) = f.get("query_offset") {
            match self.duration(n, "query_offset") {
                Some(ms) => query_offset_ms = ms,
                None => ok = false,
            }
        }
        let mut limit = 0usize;
        if let Some(n) = f.get("limit") {
            match &n.value {
                Value::Null => {}
                Value::Int(i) if *i >= 0 => limit = usize::try_from(*i).unwrap_or(usize::MAX),
                _ => {
                    self.error(
                        n.at,
                        format!("`limit` must be a non-negative integer, got {}", n.kind()),
                    );
                    ok = false;
                }
            }
        }
        let labels = match f.get("labels") {
            Some(n) => self.pairs(n, PairKind::Labels),
            None => Vec::new(),
        };
        // Group-level problems (unknown fields, bad labels) drop the group; rule problems drop the rule.
        if self.errors.len() != errors_before {
            ok = false;
        }
        let mut rules = Vec::new();
        if let Some(list) = f.get("rules") {
            match &list.value {
                Value::Null => {}
                Value::Seq(items) => {
                    for r in items {
                        match self.prom_rule(r) {
                            Some(rule) => rules.push(rule),
                            None => ok = false,
                        }
                    }
                }
                _ => {
                    self.error(
                        list.at,
                        format!("`rules` must be a list, got {}", list.kind()),
                    );
                    ok = false;
                }
            }
        }
        let group = Group {
            name,
            file: self.file.to_path_buf(),
            interval_ms,
            query_offset_ms,
            limit,
            labels,
            rules,
        };
        self.duplicate_rules(&group);
        ok.then_some(group)
    }

    fn prom_rule(&mut self, node: &Node) -> Option<Rule> {
        let f = self.fields(node, RULE_FIELDS, "a rule")?;
        let errors_before = self.errors.len();
        let pos = node.at;
        let record = f.get("record").and_then(|n| self.string(n, "record"));
        let alert = f.get("alert").and_then(|n| self.string(n, "alert"));
        let record = record.filter(|s| !s.is_empty());
        let alert = alert.filter(|s| !s.is_empty());
        let role = match (&record, &alert) {
            (Some(_), Some(_)) => {
                let at = f.key("alert").map_or(pos, |k| k.at);
                self.error(at, "only one of record and alert must be set");
                None
            }
            (None, None) => {
                self.error(pos, "one of record or alert must be set");
                None
            }
            (Some(_), None) => Some(ExprRole::Record),
            (None, Some(_)) => Some(ExprRole::Alert),
        };
        if let Some(r) = &record
            && !is_legacy_metric_name(r)
        {
            let at = f.get("record").map_or(pos, |n| n.at);
            self.error(at, format!("invalid recording rule name {r:?}"));
        }
        if record.is_some() && alert.is_none() {
            for field in ["for", "keep_firing_for", "annotations"] {
                if let Some(k) = f.key(field) {
                    let msg = format!("invalid field '{field}' in a recording rule");
                    self.error(k.at, msg);
                }
            }
        }
        let expr = match f.get("expr") {
            Some(n) => self.expr(n, role.unwrap_or(ExprRole::Record), pos),
            None => {
                self.error(pos, "expr must be set (the rule has no `expr` field)");
                None
            }
        };
        let for_ms = match f.get("for") {
            Some(n) => self.duration(n, "for").unwrap_or(0),
            None => 0,
        };
        let keep_firing_for_ms = match f.get("keep_firing_for") {
            Some(n) => self.duration(n, "keep_firing_for").unwrap_or(0),
            None => 0,
        };
        let labels = match f.get("labels") {
            Some(n) => self.pairs(n, PairKind::Labels),
            None => Vec::new(),
        };
        let annotations = match f.get("annotations") {
            Some(n) => self.pairs(n, PairKind::Annotations),
            None => Vec::new(),
        };
        let (expr, expr_text) = expr?;
        if self.errors.len() != errors_before {
            return None;
        }
        let location = self.location(pos);
        match (record, alert) {
            (Some(record), None) => Some(Rule::Recording(RecordingRule {
                record,
                expr,
                expr_text,
                labels,
                location,
            })),
            (None, Some(name)) => Some(Rule::Alerting(AlertingRule {
                name,
                expr,
                expr_text,
                for_ms,
                keep_firing_for_ms,
                labels,
                annotations,
                channels: Vec::new(),
                escalation: None,
                depends_on: Vec::new(),
                location,
            })),
            _ => None,
        }
    }

    fn flat_rule(&mut self, node: &Node, flat: &mut Vec<FlatGroup>) {
        let Some(f) = self.fields(node, FLAT_FIELDS, "an alert") else {
            return;
        };
        let errors_before = self.errors.len();
        let pos = node.at;
        let name = f.get("name").and_then(|n| self.string(n, "name"));
        let name = name.filter(|s| !s.is_empty());
        if name.is_none() {
            self.error(pos, "alert `name` must be set");
        }
        let expr = match f.get("condition") {
            Some(n) => self.expr(n, ExprRole::Alert, pos),
            None => {
                self.error(pos, "expr must be set (the alert has no `condition` field)");
                None
            }
        };
        let mut labels = match f.get("labels") {
            Some(n) => self.pairs(n, PairKind::Labels),
            None => Vec::new(),
        };
        let mut annotations = match f.get("annotations") {
            Some(n) => self.pairs(n, PairKind::Annotations),
            None => Vec::new(),
        };
        if let Some(n) = f.get("severity")
            && let Some(sev) = self.string(n, "severity")
        {
            if labels.iter().any(|(k, _)| k == "severity") {
                self.error(
                    n.at,
                    "severity is given twice: as `severity` and in `labels`",
                );
            } else {
                labels.push(("severity".to_string(), sev));
            }
        }
        if let Some(n) = f.get("description")
            && let Some(desc) = self.string(n, "description")
        {
            if annotations.iter().any(|(k, _)| k == "description") {
                self.error(
                    n.at,
                    "description is given twice: as `description` and in `annotations`",
                );
            } else {
                annotations.push(("description".to_string(), desc));
            }
        }
        let mut for_ms = 0;
        if let Some(n) = f.get("duration_minutes") {
            let minutes = match &n.value {
                Value::Null => Some(0.0),
                Value::Int(i) => Some(*i as f64),
                Value::Float(x) => Some(*x),
                _ => None,
            };
            match minutes {
                Some(m) if m.is_finite() && m >= 0.0 && m * 60_000.0 < i64::MAX as f64 => {
                    for_ms = (m * 60_000.0).round() as i64;
                }
                _ => self.error(
                    n.at,
                    format!(
                        "`duration_minutes` must be a non-negative number of minutes, got {}",
                        n.kind()
                    ),
                ),
            }
        }
        let channels = match f.get("channels") {
            Some(n) => self.string_list(n, "channels"),
            None => Vec::new(),
        };
        let depends_on = match f.get("depends_on") {
            Some(n) => self.string_list(n, "depends_on"),
            None => Vec::new(),
        };
        let escalation = f.get("escalation").and_then(|n| match n.value {
            Value::Null => None,
            _ => self.string(n, "escalation"),
        });
        let group = f.get("group").and_then(|n| self.string(n, "group"));
        if let (Some(g), Some(n)) = (&group, f.get("group"))
            && g.is_empty()
        {
            self.error(n.at, "`group` must not be empty");
        }
        let Some((expr, expr_text)) = expr else {
            return;
        };
        let Some(name) = name else {
            return;
        };
        if self.errors.len() != errors_before {
            return;
        }
        let rule = Rule::Alerting(AlertingRule {
            name,
            expr,
            expr_text,
            for_ms,
            keep_firing_for_ms: 0,
            labels,
            annotations,
            channels,
            escalation,
            depends_on,
            location: self.location(pos),
        });
        match flat.iter_mut().find(|g| g.name == group) {
            Some(g) => g.rules.push(rule),
            None => flat.push(FlatGroup {
                name: group,
                pos,
                rules: vec![rule],
            }),
        }
    }

    /// Warns about rules with the same name and labels in one group.
    fn duplicate_rules(&mut self, group: &Group) {
        let mut seen: HashMap<(bool, String, TemplatePairs), usize> = HashMap::new();
        for rule in &group.rules {
            let (alerting, labels) = match rule {
                Rule::Alerting(r) => (true, &r.labels),
                Rule::Recording(r) => (false, &r.labels),
            };
            let mut labels = labels.clone();
            labels.sort();
            let key = (alerting, rule.name().to_string(), labels);
            let loc = rule.location();
            if let Some(first) = seen.get(&key) {
                let msg = format!(
                    "duplicate rule {:?} in group {:?}: same name and labels as the rule at line {first}",
                    rule.name(),
                    group.name
                );
                let pos = Pos {
                    line: loc.line,
                    column: loc.column,
                    byte: None,
                    len: 0,
                };
                self.warn(pos, msg);
            } else {
                seen.insert(key, loc.line);
            }
        }
    }
}
