//! Escalation policies and acknowledgements: which extra receivers a group pages as its
//! un-acknowledged alerts keep firing, and who has taken ownership of which alert.
//!
//! Pure state, no IO: the dispatcher passes the time in and calls [`Escalations::due_steps`]
//! whenever a group is flushed or the returned deadline passes.
//!
//! Semantics (the contract the dispatcher and the docs rely on):
//!
//! - **Schedule.** Steps run in order of `after` (a stable sort, so a policy written out of order
//!   behaves as if sorted; equal `after`s keep their written order). [`DueStep::step`] is the
//!   position in that order.
//! - **Clock.** Every firing alert of a group has its own escalation clock, started by the first
//!   `due_steps` call that lists it. The group's clock is that of its longest-firing
//!   *un-acknowledged* alert: step `i` is due once that alert has been firing for `steps[i].after`.
//! - **Once.** Each step is paged at most once per cycle; a late call pages every step that became
//!   due since the previous call (missed whole cycles of a repeating policy collapse into the
//!   latest cycle, so no step is paged twice in one call).
//! - **Acknowledged.** While every firing alert of the group is acknowledged nothing is paged and
//!   there is no deadline. A new un-acknowledged alert resumes the chain where it stopped: steps
//!   already paged are not paged again, and the next step comes due when that alert has been
//!   firing for the step's `after`.
//! - **Reset.** When nothing fires (an empty `firing` list, or [`Escalations::lapse`] removed the
//!   group's last alert) the group's progress is dropped, so a re-firing alert starts at step 0.
//!   Muted alerts are the caller's business: leaving them out of `firing` counts as not firing.
//! - **Repeat.** With `repeat: true` the chain starts over after the last step. One cycle lasts
//!   `last.after + gap`, where `gap` is the distance between the last two steps (the last step's
//!   own `after` for a one-step policy), at least one minute; cycle `k` pages step `i` at
//!   `k * cycle + steps[i].after`.
//! - **Policy change.** If a group's policy name changes (a reload), its chain restarts at step 0
//!   on the alerts' existing clocks; a changed schedule under the same name keeps the position.
//! - **Acks.** An ack is keyed by fingerprint; acknowledging again replaces `by`, `comment` and
//!   time. An ack lapses when the dispatcher reports the alert resolved or gone, and is kept in a
//!   bounded history of lapsed acks.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::alert::{Alert, Fingerprint};
use crate::config::delivery::EscalationPolicy;
use crate::model::Labels;
use crate::telemetry::time::format_rfc3339_ms;

/// Longest accepted `by`, in characters, so the API cannot grow state without bound.
pub const MAX_BY_CHARS: usize = 256;
/// Longest accepted `comment`, in characters.
pub const MAX_COMMENT_CHARS: usize = 4096;
/// How many lapsed acks are kept for history.
pub const LAPSED_HISTORY: usize = 1000;
/// Shortest cycle of a repeating policy, so a one-step `after: 0m` chain cannot page in a loop.
pub const MIN_REPEAT_GAP_MS: i64 = 60_000;

/// Why an acknowledgement was refused; each maps to a 400 in the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Acks must name who took ownership.
    #[error("\"by\" is required and must not be empty")]
    MissingBy,
    /// Input bounds keep API-driven state small.
    #[error("\"{field}\" is longer than {max} characters")]
    TooLong {
        /// The offending field (`by` or `comment`).
        field: &'static str,
        /// Its limit in characters.
        max: usize,
    },
    /// A group ack needs at least one firing alert to mean anything.
    #[error("no firing alerts to acknowledge")]
    NoAlerts,
}

/// Someone's ownership of one firing alert; stops its escalation until it resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The acknowledged alert.
    #[serde(with = "fp_hex")]
    pub fingerprint: Fingerprint,
    /// Its labels, so the ack list reads without a lookup.
    #[serde(with = "labels_map")]
    pub labels: Labels,
    /// Who acknowledged (trimmed, never empty).
    pub by: String,
    /// Free text.
    pub comment: String,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

impl Ack {
    /// The API shape: fingerprint as 16 hex digits, labels as a map, `at` as RFC 3339.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "fingerprint": self.fingerprint.to_string(),
            "labels": self.labels.to_json(),
            "by": self.by,
            "comment": self.comment,
            "at": format_rfc3339_ms(self.at_ms),
        })
    }
}

/// An ack that ended because its alert resolved, kept so the history can be shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapsedAck {
    /// The ack as it was.
    pub ack: Ack,
    /// When it lapsed.
    pub lapsed_ms: i64,
}

impl LapsedAck {
    /// The ack's API shape plus `lapsedAt`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.ack.to_json();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "lapsedAt".into(),
                serde_json::Value::String(format_rfc3339_ms(self.lapsed_ms)),
            );
        }
        v
    }
}

/// One step the dispatcher must page now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueStep {
    /// Position in the chain ordered by `after` (as written, for a sorted policy).
    pub step: usize,
    /// That step's receivers.
    pub receivers: Vec<String>,
}

/// What one `due_steps` call asks of the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EscalationDue {
    /// Steps to page now, in chain order.
    pub steps: Vec<DueStep>,
    /// When to call again (the next step's due time); `None` when nothing more can come due
    /// without a change (chain done, everything acknowledged, nothing firing).
    pub next_deadline_ms: Option<i64>,
}

/// One group's escalation state, for `/api/v1/status`-style views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationProgress {
    /// The aggregation group.
    pub group_key: String,
    /// Policy name.
    pub policy: String,
    /// Most recently paged step, if any.
    pub last_step: Option<usize>,
    /// Next step to page, `None` once a non-repeating chain is done.
    pub next_step: Option<usize>,
    /// Cycle (0-based) of a repeating policy that `next_step` belongs to; always 0 otherwise.
    pub cycle: u64,
    /// Start of the group's escalation clock (its longest-firing un-acked alert), `None` when
    /// every firing alert is acknowledged.
    pub started_ms: Option<i64>,
    /// When `next_step` comes due, `None` when paused or done.
    pub next_due_ms: Option<i64>,
    /// Every firing alert of the group is acknowledged.
    pub acknowledged: bool,
    /// Firing alerts the group had at the last call.
    pub firing: usize,
}

impl EscalationProgress {
    /// The API shape, with times as RFC 3339.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "groupKey": self.group_key,
            "policy": self.policy,
            "lastStep": self.last_step,
            "nextStep": self.next_step,
            "cycle": self.cycle,
            "startedAt": self.started_ms.map(format_rfc3339_ms),
            "nextDueAt": self.next_due_ms.map(format_rfc3339_ms),
            "acknowledged": self.acknowledged,
            "firing": self.firing,
        })
    }
}

/// A group's schedule as plain data: sorted `after`s plus the repeat cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Schedule {
    /// `after` of each step, ascending.
    afters: Vec<i64>,
    /// Cycle length when the policy repeats.
    cycle_ms: Option<i64>,
}

impl Schedule {
    fn len(&self) -> u64 {
        self.afters.len() as u64
    }

    /// Due time of flattened position `n` (cycle `n / len`, step `n % len`) on a clock started
    /// at `start`; `None` past the end of a non-repeating chain.
    fn due(&self, start: i64, n: u64) -> Option<i64> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let (cycle, step) = (n / len, (n % len) as usize);
        let base = match self.cycle_ms {
            Some(c) => i64::try_from(cycle).ok()?.checked_mul(c)?,
            None if cycle == 0 => 0,
            None => return None,
        };
        start.checked_add(base)?.checked_add(self.afters[step])
    }

    /// How many positions are due at `now` on a clock started at `start`.
    fn due_count(&self, start: i64, now: i64) -> u64 {
        let elapsed = now.saturating_sub(start);
        if elapsed < 0 {
            return 0;
        }
        let count_upto = |t: i64| self.afters.partition_point(|&a| a <= t) as u64;
        match self.cycle_ms {
            None => count_upto(elapsed),
            Some(c) => {
                let cycles = (elapsed / c) as u64;
                cycles
                    .saturating_mul(self.len())
                    .saturating_add(count_upto(elapsed % c))
            }
        }
    }
}

/// Steps of `policy` in due order, with the schedule derived from them.
fn schedule_of(policy: &EscalationPolicy) -> (Schedule, Vec<&[String]>) {
    let mut steps: Vec<_> = policy.steps.iter().collect();
    steps.sort_by_key(|s| s.after.ms().max(0));
    let afters: Vec<i64> = steps.iter().map(|s| s.after.ms().max(0)).collect();
    let cycle_ms = match afters.as_slice() {
        _ if !policy.repeat => None,
        [] => None,
        [only] => Some(only + (*only).max(MIN_REPEAT_GAP_MS)),
        [.., prev, last] => Some(last + (last - prev).max(MIN_REPEAT_GAP_MS)),
    };
    let receivers = steps.iter().map(|s| s.receivers.as_slice()).collect();
    (Schedule { afters, cycle_ms }, receivers)
}

/// One group's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupState {
    policy: String,
    schedule: Schedule,
    /// Next flattened position (`cycle * len + step`) not yet paged.
    next: u64,
    /// When each currently firing alert was first seen by `due_steps`.
    first_seen: HashMap<Fingerprint, i64>,
}

impl GroupState {
    /// Start of the group's clock: the earliest first-seen time among un-acked alerts.
    fn clock_start(&self, acks: &HashMap<Fingerprint, Ack>) -> Option<i64> {
        self.first_seen
            .iter()
            .filter(|(fp, _)| !acks.contains_key(fp))
            .map(|(_, &t)| t)
            .min()
    }
}

/// Acknowledgements and every group's escalation progress; owned by the dispatcher.
#[derive(Debug, Clone, Default)]
pub struct Escalations {
    acks: HashMap<Fingerprint, Ack>,
    lapsed: VecDeque<LapsedAck>,
    groups: HashMap<String, GroupState>,
}

/// Plain-data copy of [`Escalations`] so acks and progress survive a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EscalationSnapshot {
    /// Current acks.
    pub acks: Vec<Ack>,
    /// Lapsed-ack history, oldest first.
    pub lapsed: Vec<LapsedAck>,
    /// Per-group progress.
    pub groups: Vec<GroupSnapshot>,
}

/// One group's progress in an [`EscalationSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// The aggregation group.
    pub group_key: String,
    /// Policy name.
    pub policy: String,
    /// Sorted `after`s of the policy at the last call (ms).
    pub afters: Vec<i64>,
    /// Cycle length of a repeating policy (ms).
    pub cycle_ms: Option<i64>,
    /// Next flattened position (`cycle * steps + step`) not yet paged.
    pub next: u64,
    /// First-seen time of each firing alert, by 16-hex fingerprint.
    pub first_seen: BTreeMap<String, i64>,
}

fn check_input(by: &str, comment: &str) -> Result<String, AckError> {
    let by = by.trim();
    if by.is_empty() {
        return Err(AckError::MissingBy);
    }
    if by.chars().count() > MAX_BY_CHARS {
        return Err(AckError::TooLong {
            field: "by",
            max: MAX_BY_CHARS,
        });
    }
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(AckError::TooLong {
            field: "comment",
            max: MAX_COMMENT_CHARS,
        });
    }
    Ok(by.to_string())
}

impl Escalations {
    /// No acks, no progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (or replaces) an ack; the caller has checked that the alert exists and fires.
    pub fn ack(
        &mut self,
        alert: &Alert,
        by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Ack, AckError> {
        let by = check_input(by, comment)?;
        Ok(self.insert_ack(alert, by, comment, now_ms))
    }

    /// Acknowledges a whole group at once; all or nothing on invalid input.
    pub fn ack_all(
        &mut self,
        alerts: &[&Alert],
        by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Vec<Ack>, AckError> {
        let by = check_input(by, comment)?;
        if alerts.is_empty() {
            return Err(AckError::NoAlerts);
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(alerts.len());
        for a in alerts {
            if seen.insert(a.fingerprint()) {
                out.push(self.insert_ack(a, by.clone(), comment, now_ms));
            }
        }
        Ok(out)
    }

    fn insert_ack(&mut self, alert: &Alert, by: String, comment: &str, now_ms: i64) -> Ack {
        let ack = Ack {
            fingerprint: alert.fingerprint(),
            labels: alert.labels.clone(),
            by,
            comment: comment.to_string(),
            at_ms: now_ms,
        };
        self.acks.insert(ack.fingerprint, ack.clone());
        ack
    }

    /// Whether someone owns this alert (its escalation is paused).
    pub fn is_acked(&self, fp: Fingerprint) -> bool {
        self.acks.contains_key(&fp)
    }

    /// One alert's ack, for API lookups.
    pub fn ack_of(&self, fp: Fingerprint) -> Option<&Ack> {
        self.acks.get(&fp)
    }

    /// Current acks, oldest first (ties by fingerprint) so the list is stable.
    pub fn acks(&self) -> Vec<Ack> {
        let mut v: Vec<Ack> = self.acks.values().cloned().collect();
        v.sort_by_key(|a| (a.at_ms, a.fingerprint));
        v
    }

    /// Recently lapsed acks, oldest first (bounded by [`LAPSED_HISTORY`]).
    pub fn lapsed(&self) -> Vec<LapsedAck> {
        self.lapsed.iter().cloned().collect()
    }

    /// Alerts resolved or gone: their acks lapse and their escalation clocks stop; a group left
    /// with no alert loses its progress, so a re-firing alert escalates from step 0.
    pub fn lapse(&mut self, fps: &[Fingerprint], now_ms: i64) {
        if fps.is_empty() {
            return;
        }
        for fp in fps {
            if let Some(ack) = self.acks.remove(fp) {
                if self.lapsed.len() >= LAPSED_HISTORY {
                    self.lapsed.pop_front();
                }
                self.lapsed.push_back(LapsedAck {
                    ack,
                    lapsed_ms: now_ms,
                });
            }
        }
        let gone: HashSet<Fingerprint> = fps.iter().copied().collect();
        self.groups.retain(|_, g| {
            g.first_seen.retain(|fp, _| !gone.contains(fp));
            !g.first_seen.is_empty()
        });
    }

    /// Steps of `policy` that became due for this group and have not been paged, plus when to
    /// call again; `firing` lists the group's firing, un-muted alerts (see the module docs).
    pub fn due_steps(
        &mut self,
        group_key: &str,
        policy: &EscalationPolicy,
        firing: &[Fingerprint],
        now_ms: i64,
    ) -> EscalationDue {
        let (schedule, receivers) = schedule_of(policy);
        if firing.is_empty() || schedule.afters.is_empty() {
            self.groups.remove(group_key);
            return EscalationDue::default();
        }
        let state = self
            .groups
            .entry(group_key.to_string())
            .or_insert_with(|| GroupState {
                policy: policy.name.clone(),
                schedule: schedule.clone(),
                next: 0,
                first_seen: HashMap::new(),
            });
        if state.policy != policy.name {
            state.policy.clone_from(&policy.name);
            state.next = 0;
        }
        state.schedule = schedule;

        let current: HashSet<Fingerprint> = firing.iter().copied().collect();
        state.first_seen.retain(|fp, _| current.contains(fp));
        for fp in current {
            state.first_seen.entry(fp).or_insert(now_ms);
        }

        let Some(start) = state.clock_start(&self.acks) else {
            return EscalationDue::default();
        };
        let sched = &state.schedule;
        let len = sched.len();
        let due_count = sched.due_count(start, now_ms);
        let mut steps = Vec::new();
        if due_count > state.next {
            let from = state.next.max(due_count.saturating_sub(len));
            for n in from..due_count {
                let step = (n % len) as usize;
                steps.push(DueStep {
                    step,
                    receivers: receivers[step].to_vec(),
                });
            }
            state.next = due_count;
        }
        EscalationDue {
            steps,
            next_deadline_ms: sched.due(start, state.next),
        }
    }

    /// Drops a group that no longer exists.
    pub fn forget_group(&mut self, group_key: &str) {
        self.groups.remove(group_key);
    }

    /// Every tracked group's position, sorted by group key.
    pub fn progress(&self) -> Vec<EscalationProgress> {
        let mut out: Vec<EscalationProgress> = self
            .groups
            .iter()
            .map(|(key, g)| {
                let len = g.schedule.len().max(1);
                let start = g.clock_start(&self.acks);
                let done = g.schedule.due(0, g.next).is_none();
                let in_cycle = g.next % len;
                EscalationProgress {
                    group_key: key.clone(),
                    policy: g.policy.clone(),
                    // At a cycle boundary the last paged step is the previous cycle's last.
                    last_step: (g.next > 0).then(|| ((g.next + len - 1) % len) as usize),
                    next_step: (!done).then_some(in_cycle as usize),
                    cycle: if g.schedule.cycle_ms.is_some() {
                        g.next / len
                    } else {
                        0
                    },
                    started_ms: start,
                    next_due_ms: start.and_then(|s| g.schedule.due(s, g.next)),
                    acknowledged: start.is_none(),
                    firing: g.first_seen.len(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.group_key.cmp(&b.group_key));
        out
    }

    /// Plain-data copy for persistence.
    pub fn snapshot(&self) -> EscalationSnapshot {
        let mut groups: Vec<GroupSnapshot> = self
            .groups
            .iter()
            .map(|(key, g)| GroupSnapshot {
                group_key: key.clone(),
                policy: g.policy.clone(),
                afters: g.schedule.afters.clone(),
                cycle_ms: g.schedule.cycle_ms,
                next: g.next,
                first_seen: g
                    .first_seen
                    .iter()
                    .map(|(fp, &t)| (fp.to_string(), t))
                    .collect(),
            })
            .collect();
        groups.sort_by(|a, b| a.group_key.cmp(&b.group_key));
        EscalationSnapshot {
            acks: self.acks(),
            lapsed: self.lapsed(),
            groups,
        }
    }

    /// Rebuilds from a snapshot; entries that cannot be meant (bad fingerprints, a non-positive
    /// cycle) are dropped rather than failing a restart.
    pub fn restore(snap: EscalationSnapshot) -> Self {
        let acks = snap.acks.into_iter().map(|a| (a.fingerprint, a)).collect();
        let mut lapsed: VecDeque<LapsedAck> = snap.lapsed.into_iter().collect();
        while lapsed.len() > LAPSED_HISTORY {
            lapsed.pop_front();
        }
        let groups = snap
            .groups
            .into_iter()
            .filter_map(|g| {
                let mut afters = g.afters;
                afters.sort_unstable();
                let cycle_ms = g.cycle_ms.filter(|&c| c > 0);
                let first_seen: HashMap<Fingerprint, i64> = g
                    .first_seen
                    .into_iter()
                    .filter_map(|(fp, t)| Some((fp.parse().ok()?, t)))
                    .collect();
                if first_seen.is_empty() || afters.is_empty() {
                    return None;
                }
                Some((
                    g.group_key,
                    GroupState {
                        policy: g.policy,
                        schedule: Schedule { afters, cycle_ms },
                        next: g.next,
                        first_seen,
                    },
                ))
            })
            .collect();
        Escalations {
            acks,
            lapsed,
            groups,
        }
    }
}

/// Serde for `Fingerprint` as the 16-hex string the API shows.
mod fp_hex {
    use super::Fingerprint;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(fp: &Fingerprint, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fp.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fingerprint, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format!("invalid fingerprint {s:?}: {e}")))
    }
}

/// Serde for `Labels` as a name → value map.
mod labels_map {
    use std::collections::BTreeMap;

    use super::Labels;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(labels: &Labels, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(labels.iter().map(|l| (&*l.name, &*l.value)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        Ok(Labels::from_pairs(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::delivery::{Dur, EscalationStep};

    const MIN: i64 = 60_000;

    fn policy(steps: &[(i64, &str)], repeat: bool) -> EscalationPolicy {
        EscalationPolicy {
            name: "guide".into(),
            steps: steps
                .iter()
                .map(|&(after_min, r)| EscalationStep {
                    after: Dur(after_min * MIN),
                    receivers: vec![r.to_string()],
                })
                .collect(),
            repeat,
        }
    }

    fn guide() -> EscalationPolicy {
        policy(
            &[(0, "sre"), (15, "eng-manager"), (30, "vp-eng"), (60, "cto")],
            false,
        )
    }

    fn alert(name: &str, instance: &str) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name), ("instance", instance)]),
            annotations: Labels::empty(),
            starts_at: 0,
            ends_at: 0,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
        }
    }

    fn receivers(d: &EscalationDue) -> Vec<String> {
        d.steps
            .iter()
            .flat_map(|s| s.receivers.iter().cloned())
            .collect()
    }

    fn steps(d: &EscalationDue) -> Vec<usize> {
        d.steps.iter().map(|s| s.step).collect()
    }

    #[test]
    fn guide_chain_walks_step_by_step() {
        let mut e = Escalations::new();
        let p = guide();
        let fp = alert("HighErrorRate", "a").fingerprint();
        let t0 = 1_700_000_000_000;
        let mut paged = Vec::new();
        let mut deadlines = Vec::new();
        // Tick every minute for two hours.
        for m in 0..=120 {
            let d = e.due_steps("g", &p, &[fp], t0 + m * MIN);
            for s in &d.steps {
                paged.push((m, s.step, s.receivers.clone()));
            }
            deadlines.push(d.next_deadline_ms);
        }
        assert_eq!(
            paged,
            vec![
                (0, 0, vec!["sre".to_string()]),
                (15, 1, vec!["eng-manager".to_string()]),
                (30, 2, vec!["vp-eng".to_string()]),
                (60, 3, vec!["cto".to_string()]),
            ]
        );
        assert_eq!(deadlines[0], Some(t0 + 15 * MIN));
        assert_eq!(deadlines[14], Some(t0 + 15 * MIN));
        assert_eq!(deadlines[15], Some(t0 + 30 * MIN));
        assert_eq!(deadlines[59], Some(t0 + 60 * MIN));
        assert_eq!(deadlines[60], None, "chain done");
    }

    #[test]
    fn no_step_early_and_late_call_catches_up_once() {
        let mut e = Escalations::new();
        let p = guide();
        let fp = Fingerprint(1);
        assert_eq!(steps(&e.due_steps("g", &p, &[fp], 0)), vec![0]);
        assert!(e.due_steps("g", &p, &[fp], 15 * MIN - 1).steps.is_empty());
        // The dispatcher was late: both overdue steps are paged in one call, once.
        let d = e.due_steps("g", &p, &[fp], 45 * MIN);
        assert_eq!(steps(&d), vec![1, 2]);
        assert_eq!(d.next_deadline_ms, Some(60 * MIN));
        assert!(e.due_steps("g", &p, &[fp], 45 * MIN).steps.is_empty());
    }

    #[test]
    fn ack_at_20m_stops_later_steps() {
        let mut e = Escalations::new();
        let p = guide();
        let a = alert("HighErrorRate", "a");
        let fp = a.fingerprint();
        e.due_steps("g", &p, &[fp], 0);
        assert_eq!(
            receivers(&e.due_steps("g", &p, &[fp], 15 * MIN)),
            ["eng-manager"]
        );
        let ack = e.ack(&a, " alice ", "looking", 20 * MIN).unwrap();
        assert_eq!(ack.by, "alice");
        assert!(e.is_acked(fp));
        for m in 20..=200 {
            let d = e.due_steps("g", &p, &[fp], m * MIN);
            assert!(d.steps.is_empty(), "paged at {m}m after the ack");
            assert_eq!(d.next_deadline_ms, None);
        }
        let prog = e.progress();
        assert_eq!(prog.len(), 1);
        assert!(prog[0].acknowledged);
        assert_eq!(prog[0].last_step, Some(1));
        assert_eq!(prog[0].next_step, Some(2));
        assert_eq!(prog[0].next_due_ms, None);
    }

    #[test]
    fn new_unacked_alert_resumes_where_it_stopped() {
        let mut e = Escalations::new();
        let p = guide();
        let a = alert("HighErrorRate", "a");
        let b = alert("HighErrorRate", "b");
        e.due_steps("g", &p, &[a.fingerprint()], 0);
        e.due_steps("g", &p, &[a.fingerprint()], 15 * MIN);
        e.ack(&a, "alice", "", 20 * MIN).unwrap();
        // b arrives at 45m: steps 0 and 1 are not paged again; step 2 waits for b's 30m.
        let both = [a.fingerprint(), b.fingerprint()];
        let d = e.due_steps("g", &p, &both, 45 * MIN);
        assert!(d.steps.is_empty());
        assert_eq!(d.next_deadline_ms, Some(75 * MIN));
        assert!(e.due_steps("g", &p, &both, 75 * MIN - 1).steps.is_empty());
        assert_eq!(steps(&e.due_steps("g", &p, &both, 75 * MIN)), vec![2]);
    }

    #[test]
    fn resolve_lapses_ack_and_refire_starts_over() {
        let mut e = Escalations::new();
        let p = guide();
        let a = alert("HighErrorRate", "a");
        let fp = a.fingerprint();
        e.due_steps("g", &p, &[fp], 0);
        e.due_steps("g", &p, &[fp], 15 * MIN);
        e.ack(&a, "alice", "on it", 16 * MIN).unwrap();
        e.lapse(&[fp], 25 * MIN);
        assert!(!e.is_acked(fp));
        assert!(e.acks().is_empty());
        let lapsed = e.lapsed();
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].lapsed_ms, 25 * MIN);
        assert!(
            e.progress().is_empty(),
            "last alert gone → progress dropped"
        );
        // Re-fires at 40m: the chain starts again at step 0.
        assert_eq!(steps(&e.due_steps("g", &p, &[fp], 40 * MIN)), vec![0]);
        assert_eq!(steps(&e.due_steps("g", &p, &[fp], 55 * MIN)), vec![1]);
    }

    #[test]
    fn empty_firing_resets_progress() {
        let mut e = Escalations::new();
        let p = guide();
        let fp = Fingerprint(7);
        e.due_steps("g", &p, &[fp], 0);
        e.due_steps("g", &p, &[fp], 15 * MIN);
        let d = e.due_steps("g", &p, &[], 20 * MIN);
        assert_eq!(d, EscalationDue::default());
        assert_eq!(steps(&e.due_steps("g", &p, &[fp], 21 * MIN)), vec![0]);
    }

    #[test]
    fn repeat_cycles() {
        // 0/15/30/60, gap 30m → cycle 90m.
        let mut e = Escalations::new();
        let mut p = guide();
        p.repeat = true;
        let fp = Fingerprint(3);
        let mut paged = Vec::new();
        for m in 0..=200 {
            for s in e.due_steps("g", &p, &[fp], m * MIN).steps {
                paged.push((m, s.step));
            }
        }
        assert_eq!(
            paged,
            vec![
                (0, 0),
                (15, 1),
                (30, 2),
                (60, 3),
                (90, 0),
                (105, 1),
                (120, 2),
                (150, 3),
                (180, 0),
                (195, 1)
            ]
        );
        let prog = &e.progress()[0];
        assert_eq!(prog.cycle, 2);
        assert_eq!(prog.next_step, Some(2));
        assert_eq!(prog.next_due_ms, Some(210 * MIN));
    }

    #[test]
    fn repeat_single_step_has_a_minimum_cycle() {
        let mut e = Escalations::new();
        let p = policy(&[(0, "sre")], true);
        let fp = Fingerprint(3);
        assert_eq!(steps(&e.due_steps("g", &p, &[fp], 0)), vec![0]);
        let d = e.due_steps("g", &p, &[fp], 30_000);
        assert!(d.steps.is_empty());
        assert_eq!(d.next_deadline_ms, Some(MIN));
        let p10 = policy(&[(10, "sre")], true);
        let mut e = Escalations::new();
        let d = e.due_steps("g", &p10, &[fp], 0);
        assert_eq!(d.next_deadline_ms, Some(10 * MIN));
        assert_eq!(steps(&e.due_steps("g", &p10, &[fp], 10 * MIN)), vec![0]);
        let d = e.due_steps("g", &p10, &[fp], 11 * MIN);
        assert_eq!(d.next_deadline_ms, Some(30 * MIN), "cycle = 10m + 10m");
    }

    #[test]
    fn missed_cycles_collapse() {
        let mut e = Escalations::new();
        let p = policy(&[(0, "a"), (5, "b")], true); // cycle 10m
        let fp = Fingerprint(3);
        e.due_steps("g", &p, &[fp], 0);
        // An hour later: each step once, not six times.
        let d = e.due_steps("g", &p, &[fp], 60 * MIN + 6 * MIN);
        assert_eq!(steps(&d), vec![0, 1]);
        assert_eq!(d.next_deadline_ms, Some(70 * MIN));
    }

    #[test]
    fn groups_are_independent() {
        let mut e = Escalations::new();
        let p = guide();
        let (f1, f2) = (Fingerprint(1), Fingerprint(2));
        assert_eq!(steps(&e.due_steps("g1", &p, &[f1], 0)), vec![0]);
        assert_eq!(steps(&e.due_steps("g2", &p, &[f2], 10 * MIN)), vec![0]);
        assert_eq!(steps(&e.due_steps("g1", &p, &[f1], 15 * MIN)), vec![1]);
        assert!(e.due_steps("g2", &p, &[f2], 15 * MIN).steps.is_empty());
        assert_eq!(steps(&e.due_steps("g2", &p, &[f2], 25 * MIN)), vec![1]);
        e.forget_group("g1");
        let prog = e.progress();
        assert_eq!(prog.len(), 1);
        assert_eq!(prog[0].group_key, "g2");
    }

    #[test]
    fn empty_policy_pages_nothing() {
        let mut e = Escalations::new();
        let p = policy(&[], true);
        let d = e.due_steps("g", &p, &[Fingerprint(1)], 0);
        assert_eq!(d, EscalationDue::default());
        assert!(e.progress().is_empty());
    }

    #[test]
    fn unsorted_policy_runs_in_after_order() {
        let mut e = Escalations::new();
        let p = policy(&[(30, "vp"), (0, "sre"), (15, "mgr")], false);
        let fp = Fingerprint(1);
        assert_eq!(receivers(&e.due_steps("g", &p, &[fp], 0)), ["sre"]);
        let d = e.due_steps("g", &p, &[fp], 15 * MIN);
        assert_eq!(receivers(&d), ["mgr"]);
        assert_eq!(steps(&d), vec![1]);
        assert_eq!(receivers(&e.due_steps("g", &p, &[fp], 30 * MIN)), ["vp"]);
    }

    #[test]
    fn ack_validation_and_group_ack() {
        let mut e = Escalations::new();
        let a = alert("X", "a");
        let b = alert("X", "b");
        assert_eq!(e.ack(&a, "  ", "", 0), Err(AckError::MissingBy));
        assert!(matches!(
            e.ack(&a, "bob", &"x".repeat(MAX_COMMENT_CHARS + 1), 0),
            Err(AckError::TooLong {
                field: "comment",
                ..
            })
        ));
        assert_eq!(e.ack_all(&[], "bob", "", 0), Err(AckError::NoAlerts));
        assert!(e.acks().is_empty());
        let acks = e.ack_all(&[&a, &b, &a], "bob", "group", 5).unwrap();
        assert_eq!(acks.len(), 2);
        assert!(e.is_acked(a.fingerprint()) && e.is_acked(b.fingerprint()));
        // Re-ack replaces.
        e.ack(&a, "carol", "mine", 9).unwrap();
        let list = e.acks();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].by, "carol");
        assert_eq!(list[1].at_ms, 9);
    }

    #[test]
    fn ack_json_shape() {
        let mut e = Escalations::new();
        let a = alert("HighErrorRate", "web-1");
        let ack = e.ack(&a, "alice", "db", 1_705_314_645_123).unwrap();
        let j = ack.to_json();
        assert_eq!(j["fingerprint"], a.fingerprint().to_string());
        assert_eq!(j["fingerprint"].as_str().unwrap().len(), 16);
        assert_eq!(j["labels"]["instance"], "web-1");
        assert_eq!(j["by"], "alice");
        assert_eq!(j["comment"], "db");
        assert_eq!(j["at"], "2024-01-15T10:30:45.123Z");
    }

    #[test]
    fn snapshot_round_trips() {
        let mut e = Escalations::new();
        let p = guide();
        let a = alert("X", "a");
        let b = alert("X", "b");
        e.due_steps("g", &p, &[a.fingerprint(), b.fingerprint()], 0);
        e.due_steps("g", &p, &[a.fingerprint(), b.fingerprint()], 15 * MIN);
        e.ack(&a, "alice", "", 16 * MIN).unwrap();
        e.ack(&b, "bob", "", 17 * MIN).unwrap();
        e.lapse(&[b.fingerprint()], 18 * MIN);
        let snap = e.snapshot();
        let json = serde_json::to_string(&snap).unwrap();
        let back: EscalationSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
        let mut r = Escalations::restore(back);
        assert_eq!(r.acks(), e.acks());
        assert_eq!(r.lapsed(), e.lapsed());
        assert_eq!(r.progress(), e.progress());
        // The restored state continues identically.
        let fa = [a.fingerprint()];
        assert_eq!(
            r.due_steps("g", &p, &fa, 40 * MIN),
            e.due_steps("g", &p, &fa, 40 * MIN)
        );
        assert!(
            serde_json::from_str::<Ack>(
                r#"{"fingerprint":"zz","labels":{},"by":"a","comment":"","at_ms":0}"#
            )
            .is_err()
        );
    }

    #[test]
    fn lapsed_history_is_bounded() {
        let mut e = Escalations::new();
        for i in 0..(LAPSED_HISTORY + 10) {
            let a = alert("X", &i.to_string());
            e.ack(&a, "bob", "", 0).unwrap();
            e.lapse(&[a.fingerprint()], 1);
        }
        assert_eq!(e.lapsed().len(), LAPSED_HISTORY);
    }

    #[test]
    fn policy_rename_restarts_chain() {
        let mut e = Escalations::new();
        let p = guide();
        let fp = Fingerprint(1);
        e.due_steps("g", &p, &[fp], 0);
        let mut q = policy(&[(0, "ops"), (15, "boss")], false);
        q.name = "other".into();
        assert_eq!(receivers(&e.due_steps("g", &q, &[fp], MIN)), ["ops"]);
        assert_eq!(receivers(&e.due_steps("g", &q, &[fp], 15 * MIN)), ["boss"]);
    }
}
