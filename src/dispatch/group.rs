//! Aggregation groups and their timers, as Alertmanager's `dispatch.aggrGroup`: a new group
//! flushes `group_wait` after its first alert (at once when that alert started more than
//! `group_wait` ago), then every `group_interval`; the notification log decides whether a flush
//! sends anything.

use std::collections::{BTreeMap, BTreeSet};

use super::alert::{Alert, Fingerprint};
use crate::config::route::{GroupBy, RouteNode};
use crate::model::Labels;

/// Identity of a group: its group key and receiver (two sibling routes with identical matchers
/// share a route key, so the receiver keeps them apart).
pub type GroupId = (String, String);

/// The route settings a group runs with, copied so a reload can swap the tree underneath.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOpts {
    /// Route key (Alertmanager's, or `<root>/channel:<name>` for rule channels).
    pub route_key: String,
    /// Receiver name.
    pub receiver: String,
    /// ms.
    pub group_wait_ms: i64,
    /// ms.
    pub group_interval_ms: i64,
    /// ms.
    pub repeat_interval_ms: i64,
    /// Named intervals during which the group is muted.
    pub mute_time_intervals: Vec<String>,
    /// Named intervals outside which the group is muted.
    pub active_time_intervals: Vec<String>,
    /// The route's escalation policy.
    pub escalation: Option<String>,
}

impl GroupOpts {
    /// Settings of a route node.
    pub fn from_node(node: &RouteNode) -> Self {
        GroupOpts {
            route_key: node.key.clone(),
            receiver: node.receiver.clone(),
            group_wait_ms: node.group_wait_ms.max(0),
            group_interval_ms: node.group_interval_ms.max(1),
            repeat_interval_ms: node.repeat_interval_ms.max(0),
            mute_time_intervals: node.mute_time_intervals.clone(),
            active_time_intervals: node.active_time_intervals.clone(),
            escalation: node.escalation.clone(),
        }
    }
}

/// The labels a route groups an alert by.
pub fn group_labels(labels: &Labels, group_by: &GroupBy) -> Labels {
    match group_by {
        GroupBy::All => labels.clone(),
        GroupBy::Labels(names) => labels.keep(names),
    }
}

/// A flush waiting for its deliveries to be reported, so resolved alerts are dropped only after
/// every integration succeeded (Alertmanager deletes them when the whole pipeline succeeded).
#[derive(Debug, Clone, PartialEq)]
pub struct FlushRecord {
    /// Flush time (the notifications' `now_ms`).
    pub at: i64,
    /// Integration ids not reported yet.
    pub outstanding: BTreeSet<String>,
    /// Some integration failed: keep the resolved alerts for the next flush.
    pub failed: bool,
    /// Resolved alerts of the flush with their `updated_at`, deleted if not modified since.
    pub resolved: Vec<(Fingerprint, i64)>,
}

/// One aggregation group.
#[derive(Debug, Clone)]
pub struct AggrGroup {
    /// Alertmanager's group key.
    pub key: String,
    /// The group labels.
    pub labels: Labels,
    /// Route settings.
    pub opts: GroupOpts,
    /// The group's copies of its alerts.
    pub alerts: BTreeMap<Fingerprint, Alert>,
    /// When the group timer fires next (ms).
    pub next_flush: i64,
    /// The timer fired at least once.
    pub has_flushed: bool,
    /// Receivers added by escalation steps; notified like the route's receiver until the group
    /// empties.
    pub extra_receivers: BTreeSet<String>,
    /// The last flush, while deliveries are outstanding.
    pub flush: Option<FlushRecord>,
    /// When the escalation policy has a step due (ms).
    pub esc_deadline: Option<i64>,
    /// When a correlation hold on one of its alerts ends (ms).
    pub hold_until: Option<i64>,
    /// Time intervals muting the group at its last flush.
    pub muted_by: Vec<String>,
}

impl AggrGroup {
    /// A group whose first flush is `group_wait` from `now`.
    pub fn new(key: String, labels: Labels, opts: GroupOpts, now: i64) -> Self {
        let next_flush = now.saturating_add(opts.group_wait_ms);
        AggrGroup {
            key,
            labels,
            opts,
            alerts: BTreeMap::new(),
            next_flush,
            has_flushed: false,
            extra_receivers: BTreeSet::new(),
            flush: None,
            esc_deadline: None,
            hold_until: None,
            muted_by: Vec::new(),
        }
    }

    /// This group's identity.
    pub fn id(&self) -> GroupId {
        (self.key.clone(), self.opts.receiver.clone())
    }

    /// Adds or replaces an alert; before the first flush, an alert that started more than
    /// `group_wait` ago makes the group flush now (`allow_early` is false during the start-up
    /// grace, when inhibiting alerts may not have been re-sent yet).
    pub fn insert(&mut self, alert: Alert, now: i64, allow_early: bool) {
        let early = alert.starts_at.saturating_add(self.opts.group_wait_ms) < now;
        self.alerts.insert(alert.fingerprint(), alert);
        if allow_early && !self.has_flushed && early {
            self.next_flush = self.next_flush.min(now);
        }
    }

    /// Deletes resolved alerts that were not updated since the flush that showed them.
    pub fn delete_if_not_modified(&mut self, resolved: &[(Fingerprint, i64)]) -> Vec<Fingerprint> {
        let mut gone = Vec::new();
        for (fp, updated) in resolved {
            if self
                .alerts
                .get(fp)
                .is_some_and(|a| a.updated_at == *updated)
            {
                self.alerts.remove(fp);
                gone.push(*fp);
            }
        }
        gone
    }

    /// Every receiver the group notifies: the route's, then escalated ones.
    pub fn recipients(&self) -> Vec<String> {
        let mut v = vec![self.opts.receiver.clone()];
        v.extend(
            self.extra_receivers
                .iter()
                .filter(|r| **r != self.opts.receiver)
                .cloned(),
        );
        v
    }

    /// The earliest time the group has something to do.
    pub fn deadline(&self) -> i64 {
        let mut d = self.next_flush;
        if let Some(e) = self.esc_deadline {
            d = d.min(e);
        }
        if let Some(h) = self.hold_until {
            d = d.min(h);
        }
        d
    }

    /// Stable id for the API (`/alerts/groups/{id}/ack`): FNV-1a of the group key and receiver.
    pub fn api_id(&self) -> String {
        group_api_id(&self.key, &self.opts.receiver)
    }
}

/// The group id the API shows, from the group key and receiver.
pub fn group_api_id(key: &str, receiver: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain([0xff]).chain(receiver.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Alertmanager's notification order (`types.AlertSlice`): by `job`, then `instance` (alerts
/// having the label first), then by label set.
pub fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    for key in ["job", "instance"] {
        match (a.labels.get(key), b.labels.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return std::cmp::Ordering::Greater,
            (Some(_), None) => return std::cmp::Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    a.labels.cmp(&b.labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> GroupOpts {
        GroupOpts {
            route_key: "{}".into(),
            receiver: "r".into(),
            group_wait_ms: 30_000,
            group_interval_ms: 300_000,
            repeat_interval_ms: 4 * 3_600_000,
            mute_time_intervals: vec![],
            active_time_intervals: vec![],
            escalation: None,
        }
    }

    fn alert(name: &str, starts: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name)]),
            annotations: Labels::empty(),
            starts_at: starts,
            ends_at: 0,
            generator_url: String::new(),
            updated_at: starts,
            timeout: false,
        }
    }

    #[test]
    fn old_alert_flushes_a_new_group_at_once() {
        let mut g = AggrGroup::new("k".into(), Labels::empty(), opts(), 100_000);
        g.insert(alert("a", 90_000), 100_000, true);
        assert_eq!(g.next_flush, 130_000, "recent alert waits group_wait");
        g.insert(alert("b", 0), 100_000, false);
        assert_eq!(g.next_flush, 130_000, "no early flush during the grace");
        g.insert(alert("b", 0), 100_000, true);
        assert_eq!(g.next_flush, 100_000);
    }

    #[test]
    fn order_is_job_instance_then_labels() {
        let mut a = alert("a", 0);
        a.labels = Labels::from_pairs([("alertname", "z"), ("job", "a")]);
        let b = alert("a", 0);
        assert_eq!(alert_order(&a, &b), std::cmp::Ordering::Less);
        assert_eq!(group_api_id("k", "r").len(), 16);
    }
}
