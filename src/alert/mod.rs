//! The alert state machine of one alerting rule, with Prometheus' semantics (`rules/alerting.go`).
//!
//! [`AlertRuleState`] owns every alert of one rule, keyed by the alert's identity: the result's
//! labels minus `__name__`, plus the rule's (and group's) labels rendered with templates, plus
//! `alertname`. Each evaluation moves alerts Inactive → Pending → Firing → Resolved:
//!
//! - a new label set becomes Pending with `active_at = t`; it fires when `t - active_at >= for`
//!   (`for: 0` fires in the same evaluation), with `fired_at = t`;
//! - a Pending alert missing from one evaluation is deleted;
//! - a Firing alert missing from an evaluation stays firing while `t - keep_firing_since <
//!   keep_firing_for`, and otherwise becomes Resolved (`resolved_at = t`, state Inactive), kept
//!   for `resolved_retention` so notifiers can send the resolution, then deleted;
//! - more active alerts than the group's `limit` is an error, and every alert of the rule is dropped.
//!
//! The state is plain data: [`AlertRuleState::snapshot`] / [`AlertRuleState::restore`] let durable
//! state persist it and the rule manager carry it across reloads.

mod template;

use std::collections::BTreeMap;

use crate::eval::Sample;
use crate::model::{Labels, LabelsBuilder, METRIC_NAME, SampleValue};
use crate::rules::{AlertingRule, TemplatePairs};

pub use template::{
    AlertTemplater, BasicTemplater, GoTemplater, QuerySample, RuleQuery, TemplateInput,
};

/// Label carrying the alert name on alerts and `ALERTS` series.
pub const ALERT_NAME_LABEL: &str = "alertname";
/// Label carrying the alert state on `ALERTS` series.
pub const ALERT_STATE_LABEL: &str = "alertstate";
/// Metric name of the per-alert state series.
pub const ALERTS_METRIC: &str = "ALERTS";
/// Metric name of the per-alert `active_at` series (restoring `for` timers).
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";
/// How long a resolved alert is kept (Prometheus' `resolvedRetention`).
pub const DEFAULT_RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Where an alert is in its life cycle; resolved alerts are `Inactive` with `resolved_at` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum AlertState {
    /// Not active (a resolved alert, or a rule without alerts).
    #[default]
    Inactive,
    /// Condition holds, `for` not yet elapsed.
    Pending,
    /// Condition held for `for` (or is kept by `keep_firing_for`).
    Firing,
}

impl AlertState {
    /// The Prometheus API / `alertstate` label spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule, identified by its label set; all times are ms since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// Identity: result labels minus `__name__`, rendered rule labels, `alertname`.
    pub labels: Labels,
    /// Rendered annotations (re-rendered every evaluation with the current value).
    pub annotations: BTreeMap<String, String>,
    /// Current state.
    pub state: AlertState,
    /// When the condition started to hold.
    pub active_at: i64,
    /// When the alert started firing.
    pub fired_at: Option<i64>,
    /// When the alert resolved.
    pub resolved_at: Option<i64>,
    /// Since when `keep_firing_for` has kept the alert firing with its condition gone.
    pub keep_firing_since: Option<i64>,
    /// When the alert was last handed to delivery (delivery work sets it).
    pub last_sent_at: Option<i64>,
    /// Until when the last notification is valid (delivery work sets it).
    pub valid_until: Option<i64>,
    /// The sample value of the last evaluation that returned this alert.
    pub value: SampleValue,
}

impl ActiveAlert {
    /// Whether the alert resolved (was firing, now inactive).
    pub fn is_resolved(&self) -> bool {
        self.state == AlertState::Inactive && self.resolved_at.is_some()
    }
}

/// Why one alerting rule's evaluation failed; worded as Prometheus words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertEvalError {
    /// Two result samples map to the same alert after templating.
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateLabelset,
    /// More active alerts than the group's `limit`; all of the rule's alerts were dropped.
    #[error("exceeded limit of {limit} with {count} alerts")]
    Limit {
        /// The group's limit.
        limit: usize,
        /// Active (pending or firing) alerts this evaluation.
        count: usize,
    },
}

/// The settings of one evaluation that do not live on the rule.
#[derive(Clone, Copy)]
pub struct AlertEvalContext<'a> {
    /// The evaluation timestamp (ms): state transitions happen at this time.
    pub ts: i64,
    /// The group's `limit` (0 = unlimited).
    pub limit: usize,
    /// Group labels, applied before the rule's own labels.
    pub group_labels: &'a TemplatePairs,
    /// Renders label and annotation templates.
    pub templater: &'a dyn AlertTemplater,
    /// Lets templates run queries; `None` disables `query`.
    pub query: Option<&'a dyn RuleQuery>,
}

/// Every alert of one alerting rule; the one owner of alert state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRuleState {
    active: BTreeMap<Labels, ActiveAlert>,
    resolved_retention_ms: i64,
}

impl Default for AlertRuleState {
    fn default() -> Self {
        AlertRuleState::new(DEFAULT_RESOLVED_RETENTION_MS)
    }
}

impl AlertRuleState {
    /// An empty state keeping resolved alerts for `resolved_retention_ms`.
    pub fn new(resolved_retention_ms: i64) -> Self {
        AlertRuleState {
            active: BTreeMap::new(),
            resolved_retention_ms,
        }
    }

    /// Feeds one evaluation's query result (`samples`) through the state machine and returns the
    /// `ALERTS` / `ALERTS_FOR_STATE` samples (the caller writes them at `ts - query_offset`).
    pub fn eval(
        &mut self,
        rule: &AlertingRule,
        samples: &[Sample],
        cx: &AlertEvalContext<'_>,
    ) -> Result<Vec<(Labels, SampleValue)>, AlertEvalError> {
        let ts = cx.ts;
        let mut fresh: BTreeMap<Labels, ActiveAlert> = BTreeMap::new();
        for s in samples {
            let (labels, annotations) = render_alert(rule, s, cx);
            if fresh.contains_key(&labels) {
                return Err(AlertEvalError::DuplicateLabelset);
            }
            fresh.insert(
                labels.clone(),
                ActiveAlert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    keep_firing_since: None,
                    last_sent_at: None,
                    valid_until: None,
                    value: s.value.clone(),
                },
            );
        }
        let returned: std::collections::BTreeSet<Labels> = fresh.keys().cloned().collect();
        for (k, a) in fresh {
            match self.active.get_mut(&k) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(k, a);
                }
            }
        }
        let mut out = Vec::new();
        let mut active_count = 0usize;
        let mut delete = Vec::new();
        for (k, a) in self.active.iter_mut() {
            if !returned.contains(k) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && rule.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < rule.keep_firing_for_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > self.resolved_retention_ms)
                {
                    delete.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            active_count += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= rule.for_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            out.push(alerts_sample(a));
            out.push(for_state_sample(a));
        }
        for k in delete {
            self.active.remove(&k);
        }
        if cx.limit > 0 && active_count > cx.limit {
            self.active.clear();
            return Err(AlertEvalError::Limit {
                limit: cx.limit,
                count: active_count,
            });
        }
        Ok(out)
    }

    /// Every alert the rule holds (pending, firing and retained resolved ones), by label set.
    pub fn alerts(&self) -> impl Iterator<Item = &ActiveAlert> {
        self.active.values()
    }

    /// Pending and firing alerts only (what `/api/v1/alerts` lists).
    pub fn active_alerts(&self) -> impl Iterator<Item = &ActiveAlert> {
        self.active
            .values()
            .filter(|a| a.state != AlertState::Inactive)
    }

    /// The rule's state: the highest state of its alerts (`inactive` when it has none).
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or_default()
    }

    /// A copy of every alert, for durable state and reload carry-over.
    pub fn snapshot(&self) -> Vec<ActiveAlert> {
        self.active.values().cloned().collect()
    }

    /// Replaces the alerts with `alerts` (the last of duplicate label sets wins).
    pub fn restore(&mut self, alerts: Vec<ActiveAlert>) {
        self.active = alerts.into_iter().map(|a| (a.labels.clone(), a)).collect();
    }

    /// Marks an alert as handed to delivery at `t_ms`, valid until `valid_until_ms`.
    pub fn mark_sent(&mut self, labels: &Labels, t_ms: i64, valid_until_ms: i64) {
        if let Some(a) = self.active.get_mut(labels) {
            a.last_sent_at = Some(t_ms);
            a.valid_until = Some(valid_until_ms);
        }
    }
}

/// Renders one result sample's alert identity and annotations.
fn render_alert(
    rule: &AlertingRule,
    s: &Sample,
    cx: &AlertEvalContext<'_>,
) -> (Labels, BTreeMap<String, String>) {
    let tmpl_labels: BTreeMap<String, String> = s
        .labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    let input = TemplateInput {
        labels: &tmpl_labels,
        value: &s.value,
    };
    let expand = |text: &str| -> String {
        if text.contains("{{") {
            cx.templater
                .expand(&rule.name, text, &input, cx.query, cx.ts)
        } else {
            text.to_string()
        }
    };
    let mut lb = LabelsBuilder::new(&s.labels);
    lb.del(METRIC_NAME);
    for (n, v) in cx.group_labels.iter().chain(rule.labels.iter()) {
        lb.set(n, &expand(v));
    }
    lb.set(ALERT_NAME_LABEL, &rule.name);
    let annotations = rule
        .annotations
        .iter()
        .map(|(n, v)| (n.clone(), expand(v)))
        .collect();
    (lb.build(), annotations)
}

/// `ALERTS{alertname, alertstate, <labels>} 1`.
fn alerts_sample(a: &ActiveAlert) -> (Labels, SampleValue) {
    let mut lb = LabelsBuilder::new(&a.labels);
    lb.set(METRIC_NAME, ALERTS_METRIC);
    lb.set(ALERT_STATE_LABEL, a.state.as_str());
    (lb.build(), SampleValue::Float(1.0))
}

/// `ALERTS_FOR_STATE{alertname, <labels>} <active_at in seconds>`.
fn for_state_sample(a: &ActiveAlert) -> (Labels, SampleValue) {
    let mut lb = LabelsBuilder::new(&a.labels);
    lb.set(METRIC_NAME, ALERTS_FOR_STATE_METRIC);
    (
        lb.build(),
        SampleValue::Float(a.active_at.div_euclid(1000) as f64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::SourceLocation;

    fn rule(for_ms: i64, keep: i64) -> AlertingRule {
        AlertingRule {
            name: "HighLatency".into(),
            expr: crate::expr::parse("up").unwrap(),
            expr_text: "up".into(),
            for_ms,
            keep_firing_for_ms: keep,
            labels: vec![("severity".into(), "page".into())],
            annotations: vec![("summary".into(), "v={{ $value }}".into())],
            channels: vec![],
            escalation: None,
            depends_on: vec![],
            location: SourceLocation::default(),
        }
    }

    fn sample(inst: &str, v: f64) -> Sample {
        Sample {
            labels: Labels::from_pairs([("__name__", "up"), ("instance", inst)]),
            t: 0,
            value: SampleValue::Float(v),
        }
    }

    fn step(
        st: &mut AlertRuleState,
        r: &AlertingRule,
        ts: i64,
        s: &[Sample],
        limit: usize,
    ) -> Result<Vec<(Labels, SampleValue)>, AlertEvalError> {
        let gl = TemplatePairs::new();
        let t = BasicTemplater::default();
        let cx = AlertEvalContext {
            ts,
            limit,
            group_labels: &gl,
            templater: &t,
            query: None,
        };
        st.eval(r, s, &cx)
    }

    #[test]
    fn pending_then_firing_then_resolved_then_deleted() {
        let r = rule(60_000, 0);
        let mut st = AlertRuleState::default();
        let s = [sample("a", 3.0)];
        step(&mut st, &r, 0, &s, 0).unwrap();
        assert_eq!(st.state(), AlertState::Pending);
        step(&mut st, &r, 30_000, &s, 0).unwrap();
        assert_eq!(st.state(), AlertState::Pending);
        let out = step(&mut st, &r, 60_000, &s, 0).unwrap();
        assert_eq!(st.state(), AlertState::Firing);
        assert_eq!(out.len(), 2);
        let a = st.snapshot().remove(0);
        assert_eq!(a.fired_at, Some(60_000));
        assert_eq!(a.annotations["summary"], "v=3");
        assert_eq!(a.labels.get("alertname"), Some("HighLatency"));
        assert_eq!(a.labels.get("__name__"), None);
        step(&mut st, &r, 90_000, &[], 0).unwrap();
        assert_eq!(st.state(), AlertState::Inactive);
        assert_eq!(st.snapshot()[0].resolved_at, Some(90_000));
        step(&mut st, &r, 90_000 + 15 * 60_000, &[], 0).unwrap();
        assert_eq!(st.snapshot().len(), 1);
        step(&mut st, &r, 90_000 + 15 * 60_000 + 1, &[], 0).unwrap();
        assert!(st.snapshot().is_empty());
    }

    #[test]
    fn limit_drops_everything() {
        let r = rule(0, 0);
        let mut st = AlertRuleState::default();
        let e = step(&mut st, &r, 0, &[sample("a", 1.0), sample("b", 1.0)], 1).unwrap_err();
        assert_eq!(e.to_string(), "exceeded limit of 1 with 2 alerts");
        assert!(st.snapshot().is_empty());
    }
}
