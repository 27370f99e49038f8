//! What the dispatcher hands to a receiver: one aggregation group's alerts at flush time.

use super::alert::{Alert, Fingerprint};
use crate::model::Labels;

/// One message-to-be for one receiver; the notify stage renders it per integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Receiver name (an Alertmanager receiver or a `channels:` entry).
    pub receiver: String,
    /// Alertmanager's group key: the route key, `:`, and the group labels.
    pub group_key: String,
    /// The labels the group was formed on (`.GroupLabels`).
    pub group_labels: Labels,
    /// The group's alerts as of the flush, firing and resolved, sorted by labels.
    pub alerts: Vec<Alert>,
    /// Flush time (ms); decides which alerts count as resolved.
    pub now_ms: i64,
    /// `.ExternalURL`.
    pub external_url: String,
    /// Correlated symptom alerts attached to this root's notification.
    pub related: Vec<Alert>,
    /// Set when this notification was sent because an escalation step became due.
    pub escalation: Option<EscalationInfo>,
    /// Several notifications folded into one by the rate limiter.
    pub digest_of: usize,
}

impl Notification {
    /// Alerts still firing at `now_ms`.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| !a.resolved_at(self.now_ms))
    }

    /// Alerts resolved at `now_ms`.
    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.resolved_at(self.now_ms))
    }

    /// `firing` when any alert fires, else `resolved` (Alertmanager's `.Status`).
    pub fn status(&self) -> &'static str {
        if self.firing().next().is_some() {
            "firing"
        } else {
            "resolved"
        }
    }

    /// Fingerprints of the firing and of the resolved alerts, as the notification log stores them.
    pub fn fingerprint_sets(&self) -> (Vec<Fingerprint>, Vec<Fingerprint>) {
        let mut firing: Vec<_> = self.firing().map(Alert::fingerprint).collect();
        let mut resolved: Vec<_> = self.resolved().map(Alert::fingerprint).collect();
        firing.sort();
        resolved.sort();
        (firing, resolved)
    }
}

/// Which escalation step produced a notification.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationInfo {
    /// Policy name.
    pub policy: String,
    /// Zero-based step index.
    pub step: usize,
    /// Number of steps in the policy.
    pub steps: usize,
}
