//! Inputs and views of the dispatcher in Alertmanager's v2 API shapes (`api/v2/openapi.yaml`):
//! posted alerts, silences, alert filters, and the JSON of alerts and groups.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::alert::Alert;
use crate::model::{Labels, Matcher};
use crate::telemetry::time::{format_rfc3339_ms, parse_rfc3339_ms};

/// An alert as posted to `/api/v2/alerts`, before validation; times in ms, `None` when absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostedAlert {
    /// Identifying labels (empty values are dropped, as Alertmanager does).
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `startsAt`.
    pub starts_at: Option<i64>,
    /// `endsAt`.
    pub ends_at: Option<i64>,
    /// `generatorURL`.
    pub generator_url: String,
}

/// One matcher of a posted silence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableMatcher {
    /// Label name.
    pub name: String,
    /// Value or regex.
    pub value: String,
    /// `=~` / `!~`.
    pub is_regex: bool,
    /// `=` / `=~` (default) rather than `!=` / `!~`.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// `postableSilence`: times are RFC 3339 in JSON, ms here; `id` set to update a silence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    /// Silence to update; `None` (or "") creates one.
    #[serde(default)]
    pub id: Option<String>,
    /// Matchers; all must match.
    pub matchers: Vec<PostableMatcher>,
    /// Start.
    #[serde(deserialize_with = "rfc3339")]
    pub starts_at: i64,
    /// End.
    #[serde(deserialize_with = "rfc3339")]
    pub ends_at: i64,
    /// Author (required, may be empty as in Alertmanager).
    pub created_by: String,
    /// Why (required, may be empty as in Alertmanager).
    pub comment: String,
}

fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let s = String::deserialize(d)?;
    parse_rfc3339_ms(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
}

/// Query filters of `GET /api/v2/alerts` and `/alerts/groups`.
#[derive(Debug, Clone)]
pub struct AlertFilter {
    /// Include active (unmuted) alerts.
    pub active: bool,
    /// Include silenced alerts.
    pub silenced: bool,
    /// Include inhibited alerts.
    pub inhibited: bool,
    /// Include alerts no group has taken (klaxon: routed only to unknown receivers).
    pub unprocessed: bool,
    /// Only alerts with a receiver matching this (already anchored) regex.
    pub receiver: Option<regex::Regex>,
    /// Only alerts whose labels match all of these (`filter=`).
    pub matchers: Vec<Matcher>,
}

impl Default for AlertFilter {
    fn default() -> Self {
        AlertFilter {
            active: true,
            silenced: true,
            inhibited: true,
            unprocessed: true,
            receiver: None,
            matchers: Vec::new(),
        }
    }
}

impl AlertFilter {
    /// Alertmanager's `matchFilterLabels`: an empty-valued matcher is skipped when the label is
    /// absent (`=`, `=~`) or present (`!=`, `!~`).
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        use crate::model::MatchOp;
        self.matchers.iter().all(|m| {
            let v = labels.get(&m.name);
            let skip = m.value.is_empty()
                && match m.op {
                    MatchOp::NotEqual | MatchOp::NotRegex => v.is_some(),
                    MatchOp::Equal | MatchOp::Regex => v.is_none(),
                };
            skip || m.matches(v.unwrap_or(""))
        })
    }
}

/// An alert's muting as the API reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertStatus {
    /// Ids of active silences matching it.
    pub silenced_by: Vec<String>,
    /// Fingerprints of the alerts inhibiting it.
    pub inhibited_by: Vec<String>,
    /// Time intervals muting its groups now.
    pub muted_by: Vec<String>,
    /// No aggregation group holds it.
    pub unprocessed: bool,
}

impl AlertStatus {
    /// `active`, `suppressed` or `unprocessed`.
    pub fn state(&self) -> &'static str {
        if !self.silenced_by.is_empty()
            || !self.inhibited_by.is_empty()
            || !self.muted_by.is_empty()
        {
            "suppressed"
        } else if self.unprocessed {
            "unprocessed"
        } else {
            "active"
        }
    }

    /// Whether `filter` lets an alert with this status through.
    pub fn passes(&self, filter: &AlertFilter) -> bool {
        let state = self.state();
        if !filter.active && state == "active" {
            return false;
        }
        if !filter.unprocessed && state == "unprocessed" {
            return false;
        }
        if !filter.silenced && !self.silenced_by.is_empty() {
            return false;
        }
        if !filter.inhibited && !self.inhibited_by.is_empty() {
            return false;
        }
        true
    }
}

/// The v2 API's `gettableAlert`.
pub fn alert_json(a: &Alert, receivers: &[String], status: &AlertStatus) -> serde_json::Value {
    serde_json::json!({
        "labels": a.labels.to_json(),
        "annotations": a.annotations.to_json(),
        "startsAt": format_rfc3339_ms(a.starts_at),
        "endsAt": format_rfc3339_ms(a.ends_at),
        "updatedAt": format_rfc3339_ms(a.updated_at),
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint().to_string(),
        "receivers": receivers.iter().map(|r| serde_json::json!({"name": r})).collect::<Vec<_>>(),
        "status": {
            "state": status.state(),
            "silencedBy": status.silenced_by,
            "inhibitedBy": status.inhibited_by,
            "mutedBy": status.muted_by,
        },
    })
}

/// Counters for `/health/detailed` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchStats {
    /// Alerts firing now.
    pub alerts_firing: usize,
    /// Resolved alerts still held for a resolved notification.
    pub alerts_resolved: usize,
    /// Aggregation groups.
    pub groups: usize,
    /// Silences active now.
    pub silences_active: usize,
    /// Silences not started yet.
    pub silences_pending: usize,
    /// Notification-log entries.
    pub nflog_entries: usize,
    /// Acknowledgements in force.
    pub acks: usize,
    /// Per receiver: notifications that could not be delivered because the receiver or one of
    /// its integrations is not configured (monotonic).
    pub undelivered: BTreeMap<String, u64>,
}

/// Alerts kept for a receiver that cannot send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UndeliveredSummary {
    /// Receiver (or channel) name.
    pub receiver: String,
    /// Why it cannot send.
    pub reason: String,
    /// Notifications (or, for unknown receivers, alerts) not delivered so far.
    pub count: u64,
    /// When the last one was recorded (ms).
    pub last_ms: i64,
    /// The latest version of each undelivered alert (bounded), by labels.
    #[serde(skip)]
    pub alerts: Vec<Alert>,
}

impl UndeliveredSummary {
    /// JSON view with the kept alerts' labels and times.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "receiver": self.receiver,
            "reason": self.reason,
            "count": self.count,
            "lastAt": format_rfc3339_ms(self.last_ms),
            "alerts": self.alerts.iter().map(|a| serde_json::json!({
                "fingerprint": a.fingerprint().to_string(),
                "labels": a.labels.to_json(),
                "annotations": a.annotations.to_json(),
                "startsAt": format_rfc3339_ms(a.starts_at),
                "endsAt": format_rfc3339_ms(a.ends_at),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Plain-data alert for snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSnapshot {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms, 0 = unset).
    pub ends_at: i64,
    /// Source link.
    pub generator_url: String,
    /// Last update (ms).
    pub updated_at: i64,
    /// End derived from `resolve_timeout`.
    pub timeout: bool,
}

fn label_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

impl From<&Alert> for AlertSnapshot {
    fn from(a: &Alert) -> Self {
        AlertSnapshot {
            labels: label_map(&a.labels),
            annotations: label_map(&a.annotations),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            generator_url: a.generator_url.clone(),
            updated_at: a.updated_at,
            timeout: a.timeout,
        }
    }
}

impl From<AlertSnapshot> for Alert {
    fn from(s: AlertSnapshot) -> Self {
        Alert {
            labels: Labels::from_pairs(s.labels),
            annotations: Labels::from_pairs(s.annotations),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            generator_url: s.generator_url,
            updated_at: s.updated_at,
            timeout: s.timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    #[test]
    fn postable_silence_parses_alertmanager_json() {
        let s: PostableSilence = serde_json::from_str(
            r#"{"matchers":[{"name":"a","value":"b","isRegex":false}],
                "startsAt":"2024-01-01T00:00:00Z","endsAt":"2024-01-01T01:00:00.000Z",
                "createdBy":"me","comment":""}"#,
        )
        .unwrap();
        assert!(s.matchers[0].is_equal, "isEqual defaults to true");
        assert_eq!(s.ends_at - s.starts_at, 3_600_000);
        assert!(
            serde_json::from_str::<PostableSilence>(
                r#"{"matchers":[],"startsAt":"x","endsAt":"2024-01-01T01:00:00Z","createdBy":"","comment":""}"#
            )
            .is_err()
        );
    }

    #[test]
    fn filter_skips_empty_matchers_like_alertmanager() {
        let f = AlertFilter {
            matchers: vec![Matcher::new(MatchOp::Equal, "team", "").unwrap()],
            ..AlertFilter::default()
        };
        assert!(f.matches_labels(&Labels::from_pairs([("a", "b")])));
        assert!(!f.matches_labels(&Labels::from_pairs([("team", "x")])));
    }
}
