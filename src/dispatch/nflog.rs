//! The notification log (Alertmanager's `nflog` plus `notify.DedupStage.needsUpdate`): what was
//! last delivered to each integration for each aggregation group, and whether a flush has
//! anything new to say.
//!
//! klaxon additions, each recorded in the entry:
//! - `related`: correlated symptoms attached to the notification; the group is re-notified when
//!   that set grows.
//! - `owed`: alerts the integration was told are firing and never told are resolved; a resolved
//!   alert in this set is shown even when a silence or inhibition now matches it (Alertmanager
//!   drops those resolved notifications).
//! - `void`: the integration was unconfigured when this was "delivered"; once it is configured
//!   the entry is ignored so the first real notification goes out at once.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::alert::Fingerprint;

/// One integration's record for one group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Firing alerts of the last notification.
    pub firing: BTreeSet<Fingerprint>,
    /// Resolved alerts of the last notification.
    pub resolved: BTreeSet<Fingerprint>,
    /// Symptoms attached to the last notification.
    pub related: BTreeSet<Fingerprint>,
    /// Alerts shown as firing and not yet shown as resolved.
    pub owed: BTreeSet<Fingerprint>,
    /// When it was logged (ms).
    pub ts: i64,
    /// When it may be forgotten (ms), unless its group still exists.
    pub expires: i64,
    /// Logged for an unconfigured integration.
    pub void: bool,
}

/// Why a flush notifies an integration (Alertmanager's `NotifyReason`, plus klaxon's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Nothing new.
    None,
    /// Never notified (or the last notification resolved everything).
    First,
    /// Firing alerts the integration has not seen.
    NewAlerts,
    /// Newly resolved alerts and `send_resolved`.
    NewResolved,
    /// Everything resolved.
    AllResolved,
    /// More correlated symptoms than last time.
    NewRelated,
    /// `repeat_interval` passed.
    Repeat,
}

impl Reason {
    /// Whether to send.
    pub fn notify(self) -> bool {
        self != Reason::None
    }
}

/// What a flush shows one integration.
#[derive(Debug, Clone, Copy)]
pub struct Visible<'a> {
    /// Firing alerts.
    pub firing: &'a BTreeSet<Fingerprint>,
    /// Resolved alerts.
    pub resolved: &'a BTreeSet<Fingerprint>,
    /// Attached symptoms.
    pub related: &'a BTreeSet<Fingerprint>,
}

/// Alertmanager's `needsUpdate`; `all_acked` (every firing alert acknowledged) suppresses only
/// the repeat, never news.
pub fn needs_update(
    entry: Option<&Entry>,
    v: Visible<'_>,
    send_resolved: bool,
    repeat_ms: i64,
    now: i64,
    all_acked: bool,
) -> Reason {
    let Some(e) = entry else {
        return if v.firing.is_empty() {
            Reason::None
        } else {
            Reason::First
        };
    };
    if !v.firing.is_subset(&e.firing) {
        return if e.firing.is_empty() {
            Reason::First
        } else {
            Reason::NewAlerts
        };
    }
    if v.firing.is_empty() {
        return if e.firing.is_empty() {
            Reason::None
        } else {
            Reason::AllResolved
        };
    }
    if send_resolved && !v.resolved.is_subset(&e.resolved) {
        return Reason::NewResolved;
    }
    if !v.related.is_subset(&e.related) {
        return Reason::NewRelated;
    }
    if e.ts < now.saturating_sub(repeat_ms) && !all_acked {
        return Reason::Repeat;
    }
    Reason::None
}

/// Plain-data entry for snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySnapshot {
    /// Group key.
    pub group_key: String,
    /// Integration id (`receiver/kind[i]`).
    pub integration: String,
    /// Firing fingerprints (16 hex digits).
    pub firing: Vec<String>,
    /// Resolved fingerprints.
    pub resolved: Vec<String>,
    /// Attached symptoms.
    pub related: Vec<String>,
    /// Shown firing, not yet shown resolved.
    pub owed: Vec<String>,
    /// Log time (ms).
    pub ts: i64,
    /// Expiry (ms).
    pub expires: i64,
    /// Logged for an unconfigured integration.
    pub void: bool,
}

fn hex(set: &BTreeSet<Fingerprint>) -> Vec<String> {
    set.iter().map(Fingerprint::to_string).collect()
}

fn unhex(v: &[String]) -> BTreeSet<Fingerprint> {
    v.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Entries by (group key, integration id).
#[derive(Debug, Clone, Default)]
pub struct NotificationLog {
    entries: HashMap<(String, String), Entry>,
}

/// What one successful delivery records.
#[derive(Debug, Clone, Default)]
pub struct LogRecord {
    /// Firing alerts shown.
    pub firing: BTreeSet<Fingerprint>,
    /// Resolved alerts (all of the flush's resolved ones, even when `send_resolved` hid them).
    pub resolved: BTreeSet<Fingerprint>,
    /// Symptoms attached.
    pub related: BTreeSet<Fingerprint>,
    /// Keep the entry at least this long (ms).
    pub retention_ms: i64,
    /// Logged for an unconfigured integration.
    pub void: bool,
}

impl NotificationLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry for a group and integration.
    pub fn get(&self, group_key: &str, integration: &str) -> Option<&Entry> {
        self.entries
            .get(&(group_key.to_string(), integration.to_string()))
    }

    /// Records a delivery at `now`; `members` (when the group still exists) bounds the owed set
    /// to alerts still in the group.
    pub fn log(
        &mut self,
        group_key: &str,
        integration: &str,
        rec: LogRecord,
        now: i64,
        members: Option<&dyn Fn(Fingerprint) -> bool>,
    ) {
        let k = (group_key.to_string(), integration.to_string());
        let mut owed = self
            .entries
            .get(&k)
            .map(|e| e.owed.clone())
            .unwrap_or_default();
        owed.extend(rec.firing.iter().copied());
        owed.retain(|fp| !rec.resolved.contains(fp));
        if let Some(keep) = members {
            owed.retain(|fp| keep(*fp));
        }
        self.entries.insert(
            k,
            Entry {
                firing: rec.firing,
                resolved: rec.resolved,
                related: rec.related,
                owed,
                ts: now,
                expires: now.saturating_add(rec.retention_ms),
                void: rec.void,
            },
        );
    }

    /// Forgets expired entries whose group no longer exists.
    pub fn gc(&mut self, now: i64, live_group: impl Fn(&str) -> bool) {
        self.entries
            .retain(|(gk, _), e| e.expires > now || live_group(gk));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Plain data for persistence, sorted for stable output.
    pub fn snapshot(&self) -> Vec<EntrySnapshot> {
        let mut v: Vec<EntrySnapshot> = self
            .entries
            .iter()
            .map(|((gk, id), e)| EntrySnapshot {
                group_key: gk.clone(),
                integration: id.clone(),
                firing: hex(&e.firing),
                resolved: hex(&e.resolved),
                related: hex(&e.related),
                owed: hex(&e.owed),
                ts: e.ts,
                expires: e.expires,
                void: e.void,
            })
            .collect();
        v.sort_by(|a, b| (&a.group_key, &a.integration).cmp(&(&b.group_key, &b.integration)));
        v
    }

    /// Merges snapshot entries; the newer of two entries for the same key wins.
    pub fn restore(&mut self, snap: Vec<EntrySnapshot>) {
        for s in snap {
            let k = (s.group_key, s.integration);
            if self.entries.get(&k).is_some_and(|e| e.ts >= s.ts) {
                continue;
            }
            self.entries.insert(
                k,
                Entry {
                    firing: unhex(&s.firing),
                    resolved: unhex(&s.resolved),
                    related: unhex(&s.related),
                    owed: unhex(&s.owed),
                    ts: s.ts,
                    expires: s.expires,
                    void: s.void,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<Fingerprint> {
        v.iter().map(|&x| Fingerprint(x)).collect()
    }

    fn entry(firing: &[u64], resolved: &[u64], ts: i64) -> Entry {
        Entry {
            firing: set(firing),
            resolved: set(resolved),
            ts,
            ..Entry::default()
        }
    }

    fn nu(e: Option<&Entry>, f: &[u64], r: &[u64], send_resolved: bool, now: i64) -> Reason {
        let (f, r, rel) = (set(f), set(r), set(&[]));
        let v = Visible {
            firing: &f,
            resolved: &r,
            related: &rel,
        };
        needs_update(e, v, send_resolved, 100, now, false)
    }

    #[test]
    fn needs_update_matches_alertmanager() {
        assert_eq!(nu(None, &[], &[1], true, 0), Reason::None);
        assert_eq!(nu(None, &[1], &[], true, 0), Reason::First);
        let e = entry(&[1, 2], &[], 0);
        assert_eq!(nu(Some(&e), &[1, 3], &[], true, 10), Reason::NewAlerts);
        assert_eq!(nu(Some(&e), &[1], &[2], true, 10), Reason::NewResolved);
        assert_eq!(nu(Some(&e), &[1], &[2], false, 10), Reason::None);
        assert_eq!(nu(Some(&e), &[], &[1, 2], false, 10), Reason::AllResolved);
        assert_eq!(
            nu(Some(&e), &[1, 2], &[], true, 100),
            Reason::None,
            "not before repeat"
        );
        assert_eq!(nu(Some(&e), &[1, 2], &[], true, 101), Reason::Repeat);
        let resolved = entry(&[], &[1], 0);
        assert_eq!(nu(Some(&resolved), &[], &[1], true, 10), Reason::None);
        assert_eq!(nu(Some(&resolved), &[1], &[], true, 10), Reason::First);
    }

    #[test]
    fn owed_tracks_firing_until_resolved() {
        let mut log = NotificationLog::new();
        let rec = |f: &[u64], r: &[u64]| LogRecord {
            firing: set(f),
            resolved: set(r),
            related: set(&[]),
            retention_ms: 10,
            void: false,
        };
        log.log("g", "i", rec(&[1, 2], &[]), 0, None);
        log.log("g", "i", rec(&[2, 3], &[]), 1, None);
        assert_eq!(log.get("g", "i").unwrap().owed, set(&[1, 2, 3]));
        log.log("g", "i", rec(&[3], &[1]), 2, None);
        assert_eq!(log.get("g", "i").unwrap().owed, set(&[2, 3]));
        let snap = log.snapshot();
        let mut back = NotificationLog::new();
        back.restore(snap);
        assert_eq!(back.get("g", "i"), log.get("g", "i"));
        back.gc(100, |_| true);
        assert_eq!(back.len(), 1);
        back.gc(100, |_| false);
        assert!(back.is_empty());
    }
}
