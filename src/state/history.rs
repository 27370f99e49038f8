//! The history of alert state changes and notification attempts: the event type written by
//! the rule engine, the dispatcher and the notifier, the query of `GET /api/v1/history`, and its
//! JSON shape.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::alert::AlertState;
use crate::dispatch::{Alert, Notification, StatusChange};
use crate::model::Labels;
use crate::notify::DeliveryReport;
use crate::rules::AlertChange;
use crate::state::codec::labels_to_map;
use crate::telemetry::time::format_rfc3339_ms;

/// Default `limit` of a history query.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest `limit` of a history query.
pub const MAX_LIMIT: u32 = 10_000;

/// Whether an event is an alert state change or a notification attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    /// An alert changed state.
    Alert,
    /// A notification was attempted.
    Notification,
}

impl HistoryKind {
    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Alert => "alert",
            HistoryKind::Notification => "notification",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<HistoryKind> {
        match s {
            "alert" => Some(HistoryKind::Alert),
            "notification" => Some(HistoryKind::Notification),
            _ => None,
        }
    }
}

/// One history row: a state change of one alert, or one notification attempt for one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// When it happened (ms).
    pub time_ms: i64,
    /// Alert change or notification.
    pub kind: HistoryKind,
    /// `rule` (rule evaluation), `dispatcher` (alert received) or `notifier`.
    pub source: String,
    /// The alert's name.
    pub alertname: String,
    /// The alert's fingerprint (16 hex digits).
    pub fingerprint: String,
    /// The alert's labels.
    pub labels: BTreeMap<String, String>,
    /// Previous state (alert changes): `inactive`, `pending`, `firing`, `resolved`.
    pub from_state: Option<String>,
    /// New state (alert changes).
    pub to_state: Option<String>,
    /// Integration id (notifications).
    pub integration: Option<String>,
    /// Receiver (notifications).
    pub receiver: Option<String>,
    /// Channel kind (notifications).
    pub channel: Option<String>,
    /// Aggregation group key (notifications).
    pub group_key: Option<String>,
    /// `success`, `failure`, `unconfigured` or `dropped` (notifications).
    pub outcome: Option<String>,
    /// The last error of a failed attempt.
    pub error: Option<String>,
    /// Attempts made (notifications).
    pub attempts: Option<u32>,
}

impl HistoryEvent {
    fn alert(time_ms: i64, source: &str, labels: &Labels) -> HistoryEvent {
        HistoryEvent {
            time_ms,
            kind: HistoryKind::Alert,
            source: source.to_string(),
            alertname: labels.get("alertname").unwrap_or("").to_string(),
            fingerprint: crate::dispatch::fingerprint(labels).to_string(),
            labels: labels_to_map(labels),
            from_state: None,
            to_state: None,
            integration: None,
            receiver: None,
            channel: None,
            group_key: None,
            outcome: None,
            error: None,
            attempts: None,
        }
    }

    /// A rule evaluation's state change (Prometheus' states; a resolved alert goes to `inactive`).
    pub fn from_rule(c: &AlertChange) -> HistoryEvent {
        let name = |s: AlertState| s.as_str().to_string();
        HistoryEvent {
            from_state: Some(name(c.from)),
            to_state: Some(name(c.to)),
            ..HistoryEvent::alert(c.at_ms, "rule", &c.labels)
        }
    }

    /// An alert the dispatcher received as new, firing again, or resolved.
    pub fn from_dispatcher(c: &StatusChange, now_ms: i64) -> HistoryEvent {
        HistoryEvent {
            from_state: c.from.map(str::to_string),
            to_state: Some(c.to.to_string()),
            ..HistoryEvent::alert(now_ms, "dispatcher", &c.alert.labels)
        }
    }

    /// One row per alert of notification `n` covered by delivery report `r`.
    pub fn from_report(r: &DeliveryReport, n: &Notification, stopping: bool) -> Vec<HistoryEvent> {
        let (outcome, error) = match &r.result {
            Ok(()) => ("success", None),
            Err(_) if r.unconfigured => ("unconfigured", None),
            Err(e) if stopping || e.message.starts_with("dropped:") => {
                ("dropped", Some(e.message.clone()))
            }
            Err(e) => ("failure", Some(e.message.clone())),
        };
        n.alerts
            .iter()
            .map(|a: &Alert| HistoryEvent {
                kind: HistoryKind::Notification,
                integration: Some(r.integration.clone()),
                receiver: Some(r.receiver.clone()),
                channel: Some(r.channel.clone()),
                group_key: Some(n.group_key.clone()),
                outcome: Some(outcome.to_string()),
                error: error.clone(),
                attempts: Some(r.attempts),
                to_state: Some(
                    if a.resolved_at(n.now_ms) {
                        "resolved"
                    } else {
                        "firing"
                    }
                    .to_string(),
                ),
                ..HistoryEvent::alert(r.finished_ms, "notifier", &a.labels)
            })
            .collect()
    }

    /// The API shape: an alert change shows `from_state`/`to_state`; a notification shows the
    /// integration, outcome, error and attempts (and `to_state`, the alert's status in it).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "time": format_rfc3339_ms(self.time_ms),
            "kind": self.kind.as_str(),
            "source": self.source,
            "alertname": self.alertname,
            "fingerprint": self.fingerprint,
            "labels": self.labels,
        });
        let Some(o) = v.as_object_mut() else {
            return v;
        };
        match self.kind {
            HistoryKind::Alert => {
                o.insert("from_state".into(), json!(self.from_state));
                o.insert("to_state".into(), json!(self.to_state));
            }
            HistoryKind::Notification => {
                o.insert("integration".into(), json!(self.integration));
                o.insert("receiver".into(), json!(self.receiver));
                o.insert("channel".into(), json!(self.channel));
                o.insert("group_key".into(), json!(self.group_key));
                o.insert("outcome".into(), json!(self.outcome));
                o.insert("error".into(), json!(self.error));
                o.insert("attempts".into(), json!(self.attempts));
                o.insert("alert_status".into(), json!(self.to_state));
            }
        }
        v
    }
}

/// The filters of `GET /api/v1/history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only this alert name.
    pub alertname: Option<String>,
    /// Only this fingerprint (16 lower-case hex digits).
    pub fingerprint: Option<String>,
    /// Not before (ms, inclusive).
    pub since_ms: i64,
    /// Not after (ms, inclusive).
    pub until_ms: i64,
    /// At most this many rows, newest first.
    pub limit: u32,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            alertname: None,
            fingerprint: None,
            since_ms: i64::MIN,
            until_ms: i64::MAX,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl HistoryQuery {
    /// Whether `e` passes the filters (for events not yet written).
    pub fn matches(&self, e: &HistoryEvent) -> bool {
        self.alertname.as_ref().is_none_or(|n| *n == e.alertname)
            && self
                .fingerprint
                .as_ref()
                .is_none_or(|f| *f == e.fingerprint)
            && e.time_ms >= self.since_ms
            && e.time_ms <= self.until_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::SendError;

    fn alert(name: &str, ends_at: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name), ("instance", "a")]),
            annotations: Labels::empty(),
            starts_at: 1,
            ends_at,
            generator_url: String::new(),
            updated_at: 1,
            timeout: false,
        }
    }

    #[test]
    fn report_rows_carry_outcome_and_error_per_alert() {
        let n = Notification {
            receiver: "team".into(),
            group_key: "g".into(),
            group_labels: Labels::empty(),
            alerts: vec![alert("A", 0), alert("B", 5)],
            now_ms: 10,
            external_url: String::new(),
            related: vec![],
            escalation: None,
            digest_of: 0,
        };
        let r = DeliveryReport {
            integration: "team/webhook[0]".into(),
            receiver: "team".into(),
            channel: "webhook".into(),
            covers: vec![n.clone()],
            result: Err(SendError::permanent("HTTP 500")),
            attempts: 3,
            finished_ms: 99,
            unconfigured: false,
        };
        let rows = HistoryEvent::from_report(&r, &n, false);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].alertname, "A");
        assert_eq!(rows[0].outcome.as_deref(), Some("failure"));
        assert_eq!(rows[0].error.as_deref(), Some("HTTP 500"));
        assert_eq!(rows[1].to_state.as_deref(), Some("resolved"));
        let j = rows[0].to_json();
        assert_eq!(j["kind"], "notification");
        assert_eq!(j["attempts"], 3);
        assert_eq!(j["integration"], "team/webhook[0]");
        assert_eq!(
            HistoryEvent::from_report(&r, &n, true)[0]
                .outcome
                .as_deref(),
            Some("dropped")
        );
        let q = HistoryQuery {
            alertname: Some("B".into()),
            ..HistoryQuery::default()
        };
        assert!(!q.matches(&rows[0]) && q.matches(&rows[1]));
    }

    #[test]
    fn rule_changes_use_prometheus_states() {
        let e = HistoryEvent::from_rule(&AlertChange {
            at_ms: 5,
            labels: Labels::from_pairs([("alertname", "A")]),
            from: AlertState::Pending,
            to: AlertState::Firing,
        });
        let j = e.to_json();
        assert_eq!(j["from_state"], "pending");
        assert_eq!(j["to_state"], "firing");
        assert_eq!(j["source"], "rule");
        assert_eq!(j["fingerprint"].as_str().unwrap().len(), 16);
    }
}
