//! The validated rule model, shared by the loader, the group scheduler, the alert state machine
//! and the APIs. Both file formats (Prometheus rule groups and the operations guide's flat list)
//! map onto these types.

use std::path::PathBuf;
use std::sync::Arc;

use crate::expr::Expr;

/// Where a rule or group was written, for diagnostics and `/api/v1/rules`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceLocation {
    /// The rule file.
    pub file: PathBuf,
    /// 1-based line of the rule's first key.
    pub line: usize,
    /// 1-based column of the rule's first key.
    pub column: usize,
}

/// An ordered list of (name, value-template) pairs; templates are rendered per alert.
pub type TemplatePairs = Vec<(String, String)>;

/// An alerting rule: a condition plus how long it must hold and what the alert carries.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRule {
    /// The alert name (`alert:` or the flat format's `name:`).
    pub name: String,
    /// The parsed, type-checked condition.
    pub expr: Expr,
    /// The condition as written (for the APIs and `ALERTS` debugging).
    pub expr_text: String,
    /// `for`: how long the condition must hold before firing (ms; 0 fires at once).
    pub for_ms: i64,
    /// `keep_firing_for`: how long a firing alert stays firing after the condition clears (ms).
    pub keep_firing_for_ms: i64,
    /// Extra labels, values are templates (`severity` from the flat format lands here).
    pub labels: TemplatePairs,
    /// Annotations, values are templates (`description` from the flat format lands here).
    pub annotations: TemplatePairs,
    /// Notification channels named by the flat format (`channels: [email, slack]`); empty for Prometheus rules.
    pub channels: Vec<String>,
    /// Escalation policy named on the rule (delivery work), if any.
    pub escalation: Option<String>,
    /// Alert names this alert is a symptom of (correlation, delivery work).
    pub depends_on: Vec<String>,
    /// Where the rule was written.
    pub location: SourceLocation,
}

/// A recording rule: an expression whose result is written back to the store under a new name.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    /// The metric name written (`record:`).
    pub record: String,
    /// The parsed, type-checked expression.
    pub expr: Expr,
    /// The expression as written.
    pub expr_text: String,
    /// Labels added to (or overriding on) every output series; not templated.
    pub labels: TemplatePairs,
    /// Where the rule was written.
    pub location: SourceLocation,
}

/// One rule of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `alert:` rules and the flat format's entries.
    Alerting(AlertingRule),
    /// `record:` rules.
    Recording(RecordingRule),
}

impl Rule {
    /// The alert name or recorded metric name.
    pub fn name(&self) -> &str {
        match self {
            Rule::Alerting(r) => &r.name,
            Rule::Recording(r) => &r.record,
        }
    }

    /// The rule's expression.
    pub fn expr(&self) -> &Expr {
        match self {
            Rule::Alerting(r) => &r.expr,
            Rule::Recording(r) => &r.expr,
        }
    }

    /// Where the rule was written.
    pub fn location(&self) -> &SourceLocation {
        match self {
            Rule::Alerting(r) => &r.location,
            Rule::Recording(r) => &r.location,
        }
    }
}

/// A group: rules evaluated in order at one timestamp, on one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Group name, unique per file.
    pub name: String,
    /// The file the group came from (flat-format files form groups named by their `group:` field or the file).
    pub file: PathBuf,
    /// Evaluation interval (ms); the global `evaluation_interval` when the file gives none.
    pub interval_ms: i64,
    /// `query_offset`: evaluate at `t - offset` to tolerate late pushes (ms).
    pub query_offset_ms: i64,
    /// `limit`: maximum alerts (or recorded series) per rule per evaluation; 0 = unlimited.
    pub limit: usize,
    /// Group-level labels added to every rule's output (rule labels win).
    pub labels: TemplatePairs,
    /// The rules, in file order (evaluation order inside the group).
    pub rules: Vec<Rule>,
}

/// Every loaded group; swapped atomically on reload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    /// Groups in load order (files sorted by path, groups in file order).
    pub groups: Vec<Arc<Group>>,
}
