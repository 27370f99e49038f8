//! The alert store: the latest version of every alert posted, keyed by fingerprint, with
//! Alertmanager's rule for merging a repeated post (`provider/mem.Alerts.Put`).
//!
//! Aggregation groups hold their own copies (as Alertmanager's do), so the store may forget a
//! resolved alert as soon as no group needs it any more.

use std::collections::HashMap;

use super::alert::{Alert, Fingerprint};

/// Every known alert by fingerprint.
#[derive(Debug, Clone, Default)]
pub struct AlertStore {
    alerts: HashMap<Fingerprint, Alert>,
}

impl AlertStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `alert`, merging it with the stored version when their activity ranges overlap
    /// (Alertmanager merges only then; otherwise the new post replaces the old alert, which is
    /// how a re-fired alert gets a fresh `starts_at`). Returns the alert as stored.
    pub fn put(&mut self, alert: Alert, now: i64) -> Alert {
        let fp = alert.fingerprint();
        let stored = match self.alerts.get(&fp) {
            Some(old) if overlaps(old, &alert) => old.merge(&alert, now),
            _ => alert,
        };
        self.alerts.insert(fp, stored.clone());
        stored
    }

    /// Inserts without merging (restoring a snapshot).
    pub fn insert_raw(&mut self, alert: Alert) {
        self.alerts.insert(alert.fingerprint(), alert);
    }

    /// The stored alert.
    pub fn get(&self, fp: Fingerprint) -> Option<&Alert> {
        self.alerts.get(&fp)
    }

    /// Every stored alert, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// Number of stored alerts.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Forgets resolved alerts that `keep` does not claim; returns their fingerprints so acks
    /// and escalation clocks can lapse.
    pub fn gc(&mut self, now: i64, keep: impl Fn(Fingerprint) -> bool) -> Vec<Fingerprint> {
        let mut gone = Vec::new();
        self.alerts.retain(|fp, a| {
            let drop = a.resolved_at(now) && !keep(*fp);
            if drop {
                gone.push(*fp);
            }
            !drop
        });
        gone.sort();
        gone
    }
}

/// Alertmanager's overlap test: the new end or the new start falls strictly inside the old
/// alert's activity range.
fn overlaps(old: &Alert, new: &Alert) -> bool {
    let inside = |t: i64| t > old.starts_at && t < old.ends_at;
    inside(new.ends_at) || inside(new.starts_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn a(starts: i64, ends: i64, updated: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "x")]),
            annotations: Labels::empty(),
            starts_at: starts,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: updated,
            timeout: false,
        }
    }

    #[test]
    fn overlapping_posts_merge_keeping_the_earliest_start() {
        let mut s = AlertStore::new();
        s.put(a(100, 1_000, 100), 100);
        let m = s.put(a(200, 2_000, 200), 200);
        assert_eq!((m.starts_at, m.ends_at), (100, 2_000));
    }

    #[test]
    fn a_post_after_the_old_range_replaces_it() {
        let mut s = AlertStore::new();
        s.put(a(100, 500, 100), 100);
        let m = s.put(a(900, 2_000, 900), 900);
        assert_eq!(
            (m.starts_at, m.ends_at),
            (900, 2_000),
            "re-fired alert starts anew"
        );
    }

    #[test]
    fn gc_drops_only_unclaimed_resolved_alerts() {
        let mut s = AlertStore::new();
        let r = a(100, 200, 100);
        s.put(r.clone(), 100);
        assert!(s.gc(300, |_| true).is_empty());
        assert_eq!(s.gc(300, |_| false), vec![r.fingerprint()]);
        assert!(s.is_empty());
    }
}
