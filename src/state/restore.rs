//! Restoring a rule's alerts after a restart, with Prometheus' rules for `for` state
//! (`rules/group.go` `RestoreForState`, flags `--rules.alert.for-outage-tolerance` and
//! `--rules.alert.for-grace-period`), adapted to a store that holds the exact state:
//!
//! - **Outage tolerance.** If the process was down (last evaluation before the snapshot to
//!   restart) longer than the tolerance, nothing of the rule is restored: its alerts start over,
//!   as in Prometheus.
//! - **Firing** alerts keep `active_at`, `fired_at` and `keep_firing_since` and stay firing (the
//!   Prometheus case "time remaining pending <= 0"; klaxon also keeps them for rules whose `for`
//!   is shorter than the grace period, because it knows they fired rather than inferring it).
//! - **Pending** alerts: if the rule's `for` is shorter than the grace period, the alert waits
//!   its whole `for` again from the restart (`active_at = now`), as Prometheus does. Otherwise,
//!   with `remaining = for - (down_at - active_at)`: `remaining <= 0` keeps `active_at`;
//!   `remaining < grace` moves `active_at` so the alert fires `grace` after the restart; and
//!   otherwise `active_at` moves forward by the downtime, so time spent down does not count.
//! - **Resolved** alerts are kept as they were (the resolution may still owe a notification).

use crate::alert::{ActiveAlert, AlertState};

/// Prometheus' default `--rules.alert.for-outage-tolerance`.
pub const DEFAULT_OUTAGE_TOLERANCE_MS: i64 = 3_600_000;
/// Prometheus' default `--rules.alert.for-grace-period`.
pub const DEFAULT_GRACE_PERIOD_MS: i64 = 600_000;

/// The two knobs of `for` restoration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForRestore {
    /// Longest downtime after which state is still restored (ms).
    pub outage_tolerance_ms: i64,
    /// Least time between restart and a restored pending alert firing (ms).
    pub grace_period_ms: i64,
}

impl Default for ForRestore {
    fn default() -> Self {
        ForRestore {
            outage_tolerance_ms: DEFAULT_OUTAGE_TOLERANCE_MS,
            grace_period_ms: DEFAULT_GRACE_PERIOD_MS,
        }
    }
}

/// Counts of what restoration did with one rule's saved alerts, for the start-up log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// Alerts restored unchanged.
    pub kept: usize,
    /// Pending alerts whose `active_at` was moved.
    pub shifted: usize,
    /// Alerts not restored (outage longer than the tolerance).
    pub dropped: usize,
}

impl RestoreOutcome {
    /// Adds another rule's counts.
    pub fn add(&mut self, o: RestoreOutcome) {
        self.kept += o.kept;
        self.shifted += o.shifted;
        self.dropped += o.dropped;
    }
}

/// Applies the restore rules to one rule's saved alerts: `for_ms` is the rule's `for`,
/// `down_at` the last evaluation before the snapshot, `now` the restart time.
pub fn restore_rule_alerts(
    saved: Vec<ActiveAlert>,
    for_ms: i64,
    down_at: i64,
    now: i64,
    opts: ForRestore,
) -> (Vec<ActiveAlert>, RestoreOutcome) {
    let mut out = RestoreOutcome::default();
    let downtime = now.saturating_sub(down_at).max(0);
    if downtime > opts.outage_tolerance_ms {
        out.dropped = saved.len();
        return (Vec::new(), out);
    }
    let mut alerts = Vec::with_capacity(saved.len());
    for mut a in saved {
        if a.state == AlertState::Pending {
            let original = a.active_at;
            if for_ms < opts.grace_period_ms {
                a.active_at = now;
            } else {
                let spent = down_at.saturating_sub(a.active_at);
                let remaining = for_ms.saturating_sub(spent);
                if remaining <= 0 {
                    // Would have fired at the next evaluation: keep the original start.
                } else if remaining < opts.grace_period_ms {
                    a.active_at = now
                        .saturating_add(opts.grace_period_ms)
                        .saturating_sub(for_ms);
                } else {
                    a.active_at = a.active_at.saturating_add(downtime);
                }
            }
            if a.active_at == original {
                out.kept += 1;
            } else {
                out.shifted += 1;
            }
        } else {
            out.kept += 1;
        }
        alerts.push(a);
    }
    (alerts, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Labels, SampleValue};
    use std::collections::BTreeMap;

    const MIN: i64 = 60_000;

    fn alert(state: AlertState, active_at: i64) -> ActiveAlert {
        ActiveAlert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: BTreeMap::new(),
            state,
            active_at,
            fired_at: (state == AlertState::Firing).then_some(active_at + MIN),
            resolved_at: None,
            keep_firing_since: None,
            last_sent_at: None,
            valid_until: None,
            value: SampleValue::Float(1.0),
        }
    }

    fn one(a: ActiveAlert, for_ms: i64, down_at: i64, now: i64) -> Option<ActiveAlert> {
        restore_rule_alerts(vec![a], for_ms, down_at, now, ForRestore::default())
            .0
            .pop()
    }

    #[test]
    fn firing_alerts_keep_their_times() {
        let mut a = alert(AlertState::Firing, 1_000);
        a.keep_firing_since = Some(5 * MIN);
        let r = one(a.clone(), 5 * MIN, 10 * MIN, 11 * MIN).unwrap();
        assert_eq!(r, a, "firing (for < grace) is restored unchanged");
        let r = one(a.clone(), 30 * MIN, 40 * MIN, 41 * MIN).unwrap();
        assert_eq!(r, a, "firing (for >= grace) is restored unchanged");
    }

    #[test]
    fn outage_longer_than_tolerance_restores_nothing() {
        let (v, o) = restore_rule_alerts(
            vec![
                alert(AlertState::Firing, 0),
                alert(AlertState::Pending, MIN),
            ],
            30 * MIN,
            2 * MIN,
            2 * MIN + 61 * MIN,
            ForRestore::default(),
        );
        assert!(v.is_empty());
        assert_eq!(o.dropped, 2);
        // Exactly the tolerance still restores.
        assert!(one(alert(AlertState::Firing, 0), 30 * MIN, 2 * MIN, 62 * MIN).is_some());
    }

    #[test]
    fn pending_with_short_for_waits_again_from_restart() {
        let r = one(alert(AlertState::Pending, 0), 5 * MIN, 3 * MIN, 4 * MIN).unwrap();
        assert_eq!(r.active_at, 4 * MIN);
        assert_eq!(r.state, AlertState::Pending);
    }

    #[test]
    fn pending_with_little_time_left_gets_the_grace_period() {
        // for 30m, active since 0, down at 25m (5m left < 10m grace), restart at 27m:
        // fires at 37m = restart + grace, so active_at = 37m - 30m = 7m.
        let r = one(alert(AlertState::Pending, 0), 30 * MIN, 25 * MIN, 27 * MIN).unwrap();
        assert_eq!(r.active_at, 7 * MIN);
        assert_eq!(r.active_at + 30 * MIN, 27 * MIN + DEFAULT_GRACE_PERIOD_MS);
    }

    #[test]
    fn pending_with_much_time_left_shifts_by_the_downtime() {
        // for 1h, active since 10m, down at 20m, restart at 23m: 3m of downtime do not count.
        let r = one(
            alert(AlertState::Pending, 10 * MIN),
            60 * MIN,
            20 * MIN,
            23 * MIN,
        )
        .unwrap();
        assert_eq!(r.active_at, 13 * MIN);
        let (_, o) = restore_rule_alerts(
            vec![alert(AlertState::Pending, 10 * MIN)],
            60 * MIN,
            20 * MIN,
            23 * MIN,
            ForRestore::default(),
        );
        assert_eq!(o.shifted, 1);
    }

    #[test]
    fn pending_already_due_keeps_its_start() {
        let r = one(alert(AlertState::Pending, 0), 20 * MIN, 25 * MIN, 26 * MIN).unwrap();
        assert_eq!(r.active_at, 0);
    }

    #[test]
    fn resolved_alerts_are_kept_and_clock_skew_is_harmless() {
        let mut a = alert(AlertState::Inactive, 0);
        a.resolved_at = Some(5 * MIN);
        assert_eq!(
            one(a.clone(), 30 * MIN, 6 * MIN, 7 * MIN).unwrap(),
            a.clone()
        );
        // A restart "before" the snapshot (clock stepped back) counts as no downtime.
        let r = one(
            alert(AlertState::Pending, 10 * MIN),
            60 * MIN,
            20 * MIN,
            19 * MIN,
        )
        .unwrap();
        assert_eq!(r.active_at, 10 * MIN);
    }
}
