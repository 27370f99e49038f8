//! Storage forms of in-memory types that carry no serde derives (rule alerts, notifications):
//! plain structs with JSON (de)serialization and lossless conversions both ways.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::{ActiveAlert, AlertState};
use crate::dispatch::api_types::AlertSnapshot;
use crate::dispatch::{Alert, EscalationInfo, Notification};
use crate::model::{Labels, SampleValue};

/// A label set as a sorted JSON object.
pub fn labels_to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// The state's storage spelling (Prometheus' `alertstate` values).
pub fn state_str(s: AlertState) -> &'static str {
    s.as_str()
}

/// Parses a stored state; `None` for anything else (the row is skipped and reported).
pub fn parse_state(s: &str) -> Option<AlertState> {
    match s {
        "inactive" => Some(AlertState::Inactive),
        "pending" => Some(AlertState::Pending),
        "firing" => Some(AlertState::Firing),
        _ => None,
    }
}

/// A sample value as JSON: `{"f": "1.5"}` (float text, so NaN and infinities survive JSON) or
/// `{"s": "down"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoredValue {
    /// A float as Rust prints it (`1.5`, `NaN`, `inf`, `-inf`).
    #[serde(rename = "f")]
    Float(String),
    /// A string sample.
    #[serde(rename = "s")]
    Str(String),
}

impl From<&SampleValue> for StoredValue {
    fn from(v: &SampleValue) -> Self {
        match v {
            SampleValue::Float(f) => StoredValue::Float(format!("{f:?}")),
            SampleValue::Str(s) => StoredValue::Str(s.to_string()),
        }
    }
}

impl From<StoredValue> for SampleValue {
    fn from(v: StoredValue) -> Self {
        match v {
            StoredValue::Float(s) => SampleValue::Float(s.parse().unwrap_or(f64::NAN)),
            StoredValue::Str(s) => SampleValue::Str(Arc::from(s)),
        }
    }
}

/// A notification as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNotification {
    /// Receiver name.
    pub receiver: String,
    /// Group key.
    pub group_key: String,
    /// Group labels.
    pub group_labels: BTreeMap<String, String>,
    /// Alerts as of the flush.
    pub alerts: Vec<AlertSnapshot>,
    /// Flush time (ms).
    pub now_ms: i64,
    /// `.ExternalURL`.
    pub external_url: String,
    /// Correlated symptoms.
    pub related: Vec<AlertSnapshot>,
    /// Escalation step that produced it.
    pub escalation: Option<StoredEscalation>,
    /// Folded notifications.
    pub digest_of: usize,
}

/// [`EscalationInfo`] as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEscalation {
    /// Policy name.
    pub policy: String,
    /// Zero-based step.
    pub step: usize,
    /// Steps in the policy.
    pub steps: usize,
}

impl From<&Notification> for StoredNotification {
    fn from(n: &Notification) -> Self {
        StoredNotification {
            receiver: n.receiver.clone(),
            group_key: n.group_key.clone(),
            group_labels: labels_to_map(&n.group_labels),
            alerts: n.alerts.iter().map(AlertSnapshot::from).collect(),
            now_ms: n.now_ms,
            external_url: n.external_url.clone(),
            related: n.related.iter().map(AlertSnapshot::from).collect(),
            escalation: n.escalation.as_ref().map(|e| StoredEscalation {
                policy: e.policy.clone(),
                step: e.step,
                steps: e.steps,
            }),
            digest_of: n.digest_of,
        }
    }
}

impl From<StoredNotification> for Notification {
    fn from(s: StoredNotification) -> Self {
        Notification {
            receiver: s.receiver,
            group_key: s.group_key,
            group_labels: Labels::from_pairs(s.group_labels),
            alerts: s.alerts.into_iter().map(Alert::from).collect(),
            now_ms: s.now_ms,
            external_url: s.external_url,
            related: s.related.into_iter().map(Alert::from).collect(),
            escalation: s.escalation.map(|e| EscalationInfo {
                policy: e.policy,
                step: e.step,
                steps: e.steps,
            }),
            digest_of: s.digest_of,
        }
    }
}

/// Encodes a notification for the outbox.
pub fn encode_notification(n: &Notification) -> Result<String, serde_json::Error> {
    serde_json::to_string(&StoredNotification::from(n))
}

/// Decodes an outbox notification.
pub fn decode_notification(s: &str) -> Result<Notification, serde_json::Error> {
    serde_json::from_str::<StoredNotification>(s).map(Notification::from)
}

/// One rule alert's columns, as written and read by the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertRow {
    /// Labels as a JSON object.
    pub labels: String,
    /// Fingerprint (16 hex digits).
    pub fingerprint: String,
    /// Annotations as a JSON object.
    pub annotations: String,
    /// `inactive`, `pending` or `firing`.
    pub state: String,
    /// Active since (ms).
    pub active_at: i64,
    /// Fired at (ms).
    pub fired_at: Option<i64>,
    /// Resolved at (ms).
    pub resolved_at: Option<i64>,
    /// Kept firing since (ms).
    pub keep_firing_since: Option<i64>,
    /// Last handed to delivery (ms).
    pub last_sent_at: Option<i64>,
    /// Validity of the last send (ms).
    pub valid_until: Option<i64>,
    /// [`StoredValue`] as JSON.
    pub value: String,
}

impl AlertRow {
    /// The row of an alert.
    pub fn encode(a: &ActiveAlert) -> Result<AlertRow, serde_json::Error> {
        Ok(AlertRow {
            labels: serde_json::to_string(&labels_to_map(&a.labels))?,
            fingerprint: crate::dispatch::fingerprint(&a.labels).to_string(),
            annotations: serde_json::to_string(&a.annotations)?,
            state: state_str(a.state).to_string(),
            active_at: a.active_at,
            fired_at: a.fired_at,
            resolved_at: a.resolved_at,
            keep_firing_since: a.keep_firing_since,
            last_sent_at: a.last_sent_at,
            valid_until: a.valid_until,
            value: serde_json::to_string(&StoredValue::from(&a.value))?,
        })
    }

    /// The alert of a row, or why the row is unusable.
    pub fn decode(self) -> Result<ActiveAlert, String> {
        let labels: BTreeMap<String, String> =
            serde_json::from_str(&self.labels).map_err(|e| format!("labels: {e}"))?;
        if labels.is_empty() {
            return Err("labels: empty".into());
        }
        let annotations: BTreeMap<String, String> =
            serde_json::from_str(&self.annotations).map_err(|e| format!("annotations: {e}"))?;
        let state = parse_state(&self.state).ok_or_else(|| format!("state {:?}", self.state))?;
        let value: StoredValue =
            serde_json::from_str(&self.value).map_err(|e| format!("value: {e}"))?;
        Ok(ActiveAlert {
            labels: Labels::from_pairs(labels),
            annotations,
            state,
            active_at: self.active_at,
            fired_at: self.fired_at,
            resolved_at: self.resolved_at,
            keep_firing_since: self.keep_firing_since,
            last_sent_at: self.last_sent_at,
            valid_until: self.valid_until,
            value: value.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name), ("instance", "a")]),
            annotations: Labels::from_pairs([("summary", "s")]),
            starts_at: 10,
            ends_at: 0,
            generator_url: "http://x/graph".into(),
            updated_at: 20,
            timeout: true,
        }
    }

    #[test]
    fn notification_round_trips() {
        let n = Notification {
            receiver: "team".into(),
            group_key: "{}:{alertname=\"A\"}".into(),
            group_labels: Labels::from_pairs([("alertname", "A")]),
            alerts: vec![alert("A")],
            now_ms: 1234,
            external_url: "http://k".into(),
            related: vec![alert("B")],
            escalation: Some(EscalationInfo {
                policy: "p".into(),
                step: 1,
                steps: 3,
            }),
            digest_of: 2,
        };
        let s = encode_notification(&n).unwrap();
        assert_eq!(decode_notification(&s).unwrap(), n);
        assert!(decode_notification("{").is_err());
    }

    #[test]
    fn alert_row_round_trips_and_rejects_bad_rows() {
        for v in [
            SampleValue::Float(1.5),
            SampleValue::Float(f64::INFINITY),
            SampleValue::Float(f64::NEG_INFINITY),
            SampleValue::Str(Arc::from("down")),
        ] {
            let a = ActiveAlert {
                labels: Labels::from_pairs([("alertname", "A"), ("x", "1")]),
                annotations: BTreeMap::from([("summary".to_string(), "hi".to_string())]),
                state: AlertState::Firing,
                active_at: 1,
                fired_at: Some(2),
                resolved_at: None,
                keep_firing_since: Some(3),
                last_sent_at: Some(4),
                valid_until: Some(5),
                value: v,
            };
            assert_eq!(AlertRow::encode(&a).unwrap().decode().unwrap(), a);
        }
        let nan = ActiveAlert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: BTreeMap::new(),
            state: AlertState::Pending,
            active_at: 1,
            fired_at: None,
            resolved_at: None,
            keep_firing_since: None,
            last_sent_at: None,
            valid_until: None,
            value: SampleValue::Float(f64::NAN),
        };
        let back = AlertRow::encode(&nan).unwrap().decode().unwrap();
        assert!(matches!(back.value, SampleValue::Float(f) if f.is_nan()));
        let mut bad = AlertRow::encode(&nan).unwrap();
        bad.state = "exploded".into();
        assert!(bad.decode().unwrap_err().contains("state"));
        let mut bad = AlertRow::encode(&nan).unwrap();
        bad.labels = "[1,2]".into();
        assert!(bad.decode().unwrap_err().contains("labels"));
    }
}
