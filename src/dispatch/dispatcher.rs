//! The dispatcher: Alertmanager's alert store, routing, aggregation groups, notification log,
//! inhibition and silences, plus klaxon's rule channels, escalation, acknowledgements and
//! correlation, driven entirely by the `now_ms` its callers pass (it never reads a clock or
//! sleeps; the server loop calls [`Dispatcher::tick`] at [`Dispatcher::next_deadline`]).
//!
//! Semantic choices beyond Alertmanager (each one a fix of a known Alertmanager problem or a
//! klaxon feature):
//!
//! - **Rule channels.** An alert whose rule names `channels: [..]` is not routed through the
//!   tree: it goes to the receivers of those names, grouped with the root route's `group_by`
//!   and timers, under the route key `<root key>/channel:<name>`. A name with no receiver is
//!   kept and counted as undelivered.
//! - **Start-up grace.** For the first `group_wait` after start (or after [`Dispatcher::restore`])
//!   a new group does not flush early for an old alert, so alerts that should be inhibited are
//!   not sent before their inhibiting alerts have been re-sent (Alertmanager fires them after a
//!   restart). Restored groups wait `group_wait` before their first flush.
//! - **Resolved after mute.** A resolved alert that an integration was told is firing is shown
//!   to it even if a silence or inhibition now matches it, so the receiver gets its resolved
//!   notification (Alertmanager never sends it).
//! - **Time-interval mute keeps resolved alerts.** While a route is muted by
//!   `mute_time_intervals`/`active_time_intervals` nothing is sent and nothing is dropped; the
//!   first flush after the interval sends what is still news.
//! - **Unconfigured integrations** still get their notifications (the notifier reports
//!   `unconfigured`); those are kept and counted per receiver and logged as "void" so the first
//!   notification after the integration is configured goes out at once.
//! - **Acknowledged groups** are not re-sent on `repeat_interval` while every firing alert is
//!   acknowledged; new alerts and resolutions are still sent, and acknowledged alerts do not
//!   escalate.
//! - **Escalation.** A group's policy is the `escalation:` of the first (by alertname) rule of
//!   its alerts that names one, else its route's. Due steps page their receivers with the
//!   group's notification; those receivers then get the group's updates until it empties.
//! - **Correlation.** Incidents are computed over the firing, unmuted alerts at each flush; a
//!   symptom is left out of its own group's notification and attached (`related`) to every
//!   group notification that shows its root; a root's group is re-notified when its related
//!   set grows. When the root stops firing, the symptom pages with its own group. With
//!   `correlation.hold`, an alert in no incident is held that long after it started.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::alert::{Alert, Fingerprint, RuleMeta};
use super::api_types::{
    AlertFilter, AlertSnapshot, AlertStatus, DispatchStats, PostableSilence, PostedAlert,
    UndeliveredSummary, alert_json,
};
use super::correlate::{Incident, incidents, symptom_roots};
use super::escalation::{Ack, AckError, EscalationSnapshot, Escalations};
use super::group::{AggrGroup, GroupId, GroupOpts, alert_order, group_labels};
use super::inhibit::Inhibitor;
use super::nflog::{EntrySnapshot, LogRecord, NotificationLog, Visible, needs_update};
use super::notification::{EscalationInfo, Notification};
use super::silence::{Silence, SilenceSnapshot, SilenceState, Silences};
use super::store::AlertStore;
use crate::config::delivery::EscalationPolicy;
use crate::config::route::{GroupBy, RouteNode};
use crate::config::{CompiledDelivery, IntegrationSpec};
use crate::model::Labels;

/// Most alerts kept per undeliverable receiver (the latest version of each).
pub const MAX_UNDELIVERED_ALERTS: usize = 100;
/// Delivery reports older than this are no longer matched to their flush.
const PENDING_TTL_MS: i64 = 24 * 3_600_000;
/// Notification-log retention when a group's repeat interval is unknown.
const DEFAULT_RETENTION_MS: i64 = 8 * 3_600_000;

/// Why a dispatcher call was refused; the API maps `NotFound` to 404 and the rest to 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// Invalid input, naming the field (`[2].labels`, `matchers[0]`, `endsAt`).
    #[error("{field}: {message}")]
    Invalid {
        /// Where.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such alert, group or silence.
    #[error("{0} not found")]
    NotFound(String),
    /// The alert exists but is resolved.
    #[error("alert {0} is not firing")]
    NotFiring(String),
    /// The acknowledgement was refused.
    #[error(transparent)]
    Ack(#[from] AckError),
}

/// One notification for one integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// `IntegrationSpec::id()` (`receiver/kind[i]`).
    pub integration: String,
    /// What to send.
    pub notification: Notification,
}

/// An alert whose status changed when it was put, for the durable history.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// The alert as stored after the put.
    pub alert: Alert,
    /// `firing` or `resolved` before; `None` for an alert the dispatcher did not hold.
    pub from: Option<&'static str>,
    /// `firing` or `resolved` after.
    pub to: &'static str,
}

/// A group's state worth keeping across a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStateSnapshot {
    /// Group key.
    pub group_key: String,
    /// Receiver.
    pub receiver: String,
    /// Receivers added by escalation.
    pub extra_receivers: Vec<String>,
}

/// Everything the dispatcher must not forget over a restart, as plain data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DispatchSnapshot {
    /// Alerts (firing, and resolved ones not yet notified).
    pub alerts: Vec<AlertSnapshot>,
    /// Notification log.
    pub nflog: Vec<EntrySnapshot>,
    /// Silences, expired ones within retention included.
    pub silences: Vec<SilenceSnapshot>,
    /// Acks and escalation progress.
    pub escalation: EscalationSnapshot,
    /// Escalated receivers of groups.
    pub groups: Vec<GroupStateSnapshot>,
}

/// Alerts a receiver could not get.
#[derive(Debug, Clone)]
struct Undelivered {
    reason: String,
    count: u64,
    last_ms: i64,
    alerts: BTreeMap<Fingerprint, Alert>,
}

impl Undelivered {
    fn keep(&mut self, a: &Alert) {
        let fp = a.fingerprint();
        if !self.alerts.contains_key(&fp) && self.alerts.len() >= MAX_UNDELIVERED_ALERTS {
            let oldest = self
                .alerts
                .iter()
                .min_by_key(|(_, a)| a.updated_at)
                .map(|(fp, _)| *fp);
            if let Some(o) = oldest {
                self.alerts.remove(&o);
            }
        }
        self.alerts.insert(fp, a.clone());
    }
}

/// A notification handed out and not reported yet.
#[derive(Debug, Clone)]
struct PendingSend {
    gid: GroupId,
    rec: LogRecord,
    /// Part of a regular flush (its outcome decides whether resolved alerts are dropped).
    flush: bool,
}

/// Where an alert goes: route settings, grouping, and the node for the group key.
struct Destination {
    node: RouteNode,
    group_by: GroupBy,
}

/// Muting and correlation facts at one instant.
struct Ctx {
    now: i64,
    silences: Vec<Silence>,
    inhibitor: Inhibitor,
    /// Symptom → its root.
    symptom_of: HashMap<Fingerprint, Fingerprint>,
    /// Root → its symptoms.
    related_of: HashMap<Fingerprint, Vec<Fingerprint>>,
    /// Members of any incident.
    in_incident: HashSet<Fingerprint>,
    hold_ms: i64,
    incidents: Vec<Incident>,
}

impl Ctx {
    fn silenced_by(&self, labels: &Labels) -> Vec<String> {
        let mut v: Vec<String> = self
            .silences
            .iter()
            .filter(|s| s.matches(labels))
            .map(|s| s.id.clone())
            .collect();
        v.sort();
        v
    }

    fn muted(&self, labels: &Labels) -> bool {
        self.silences.iter().any(|s| s.matches(labels))
            || !self.inhibitor.inhibited_by(labels).is_empty()
    }
}

struct Inner {
    delivery: Arc<CompiledDelivery>,
    meta: HashMap<String, RuleMeta>,
    store: AlertStore,
    groups: BTreeMap<GroupId, AggrGroup>,
    nflog: NotificationLog,
    silences: Silences,
    esc: Escalations,
    undelivered: BTreeMap<String, Undelivered>,
    pending: HashMap<(String, String, i64), PendingSend>,
    started_at: Option<i64>,
    last_now: i64,
}

/// Alert routing, grouping, deduplication, muting, escalation and correlation; `Send + Sync`.
pub struct Dispatcher {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

fn invalid(field: String, message: impl Into<String>) -> DispatchError {
    DispatchError::Invalid {
        field,
        message: message.into(),
    }
}

/// A copy of the alert as a notification shows it: firing alerts carry no end time
/// (Alertmanager's flush clears it so they do not "resolve" as time moves on).
fn shown(a: &Alert, now: i64) -> Alert {
    let mut a = a.clone();
    if !a.resolved_at(now) {
        a.ends_at = 0;
    }
    a
}

/// Names of the time intervals muting a route at `now`.
fn time_muted(delivery: &CompiledDelivery, opts: &GroupOpts, now: i64) -> Vec<String> {
    let within = |n: &String| {
        delivery
            .time_intervals
            .get(n)
            .is_some_and(|ti| ti.contains(now))
    };
    let mut by: Vec<String> = opts
        .mute_time_intervals
        .iter()
        .filter(|n| within(n))
        .cloned()
        .collect();
    if !opts.active_time_intervals.is_empty() && !opts.active_time_intervals.iter().any(within) {
        by.extend(opts.active_time_intervals.iter().cloned());
    }
    by
}

fn find_integration<'a>(delivery: &'a CompiledDelivery, id: &str) -> Option<&'a IntegrationSpec> {
    delivery
        .receivers
        .values()
        .flat_map(|r| &r.integrations)
        .find(|i| i.id() == id)
}

impl Inner {
    /// Ensures the start-up grace has a beginning and remembers the latest time seen.
    fn note(&mut self, now: i64) {
        self.started_at.get_or_insert(now);
        self.last_now = self.last_now.max(now);
    }

    fn allow_early(&self, opts: &GroupOpts, now: i64) -> bool {
        self.started_at
            .is_none_or(|s| now >= s.saturating_add(opts.group_wait_ms))
    }

    fn depends_on(&self) -> HashMap<String, Vec<String>> {
        self.meta
            .iter()
            .filter(|(_, m)| !m.depends_on.is_empty())
            .map(|(k, m)| (k.clone(), m.depends_on.clone()))
            .collect()
    }

    /// Where an alert goes, plus channel names that have no receiver.
    fn destinations(&self, labels: &Labels) -> (Vec<Destination>, Vec<String>) {
        let name = labels.get("alertname").unwrap_or("");
        let channels = self
            .meta
            .get(name)
            .map(|m| m.channels.as_slice())
            .unwrap_or_default();
        if channels.is_empty() {
            let ds = self
                .delivery
                .routes
                .match_alert(labels)
                .into_iter()
                .map(|n| Destination {
                    node: n.clone(),
                    group_by: n.group_by.clone(),
                })
                .collect();
            return (ds, Vec::new());
        }
        let root = self.delivery.routes.root();
        let mut ds = Vec::new();
        let mut unknown = Vec::new();
        let mut seen = HashSet::new();
        for ch in channels {
            if !seen.insert(ch.as_str()) {
                continue;
            }
            if !self.delivery.receivers.contains_key(ch) {
                unknown.push(ch.clone());
                continue;
            }
            let mut node = root.clone();
            node.receiver.clone_from(ch);
            node.key = format!("{}/channel:{ch}", root.key);
            node.continue_matching = false;
            ds.push(Destination {
                group_by: root.group_by.clone(),
                node,
            });
        }
        (ds, unknown)
    }

    /// Receiver names an alert is routed to (for the API), in routing order.
    fn receivers_of(&self, labels: &Labels) -> Vec<String> {
        let (ds, unknown) = self.destinations(labels);
        let mut out: Vec<String> = Vec::new();
        for r in ds.into_iter().map(|d| d.node.receiver).chain(unknown) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }

    fn record_undeliverable(&mut self, receiver: &str, reason: &str, alerts: &[&Alert], now: i64) {
        let u = self
            .undelivered
            .entry(receiver.to_string())
            .or_insert_with(|| Undelivered {
                reason: reason.to_string(),
                count: 0,
                last_ms: now,
                alerts: BTreeMap::new(),
            });
        u.reason = reason.to_string();
        u.count += 1;
        u.last_ms = now;
        for a in alerts {
            u.keep(a);
        }
    }

    /// Routes one stored alert into its groups.
    fn route_alert(&mut self, alert: &Alert, now: i64) {
        let (ds, unknown) = self.destinations(&alert.labels);
        for d in ds {
            let opts = GroupOpts::from_node(&d.node);
            let gl = group_labels(&alert.labels, &d.group_by);
            let key = crate::config::route::group_key(&d.node, &gl);
            let allow_early = self.allow_early(&opts, now);
            let gid = (key.clone(), opts.receiver.clone());
            self.groups
                .entry(gid)
                .or_insert_with(|| AggrGroup::new(key, gl, opts, now))
                .insert(alert.clone(), now, allow_early);
        }
        for name in unknown {
            let fresh = self.undelivered.get(&name).is_none_or(|u| {
                u.alerts
                    .get(&alert.fingerprint())
                    .is_none_or(|old| old.starts_at != alert.starts_at)
            });
            if fresh && !alert.resolved_at(now) {
                self.record_undeliverable(
                    &name,
                    "no receiver or channel of this name",
                    &[alert],
                    now,
                );
            } else if let Some(u) = self.undelivered.get_mut(&name) {
                u.keep(alert);
            }
        }
    }

    /// Re-routes every alert (after a config or rule change), keeping the timers, escalated
    /// receivers and outstanding flushes of groups that still exist.
    fn rebuild(&mut self, now: i64) {
        let old = std::mem::take(&mut self.groups);
        let in_old: HashSet<Fingerprint> = old
            .values()
            .flat_map(|g| g.alerts.keys().copied())
            .collect();
        let mut alerts: Vec<Alert> = self
            .store
            .iter()
            .filter(|a| !a.resolved_at(now) || in_old.contains(&a.fingerprint()))
            .cloned()
            .collect();
        alerts.sort_by_key(Alert::fingerprint);
        for a in &alerts {
            self.route_alert(a, now);
        }
        let mut old_keys: HashSet<String> = HashSet::new();
        for (gid, og) in old {
            old_keys.insert(gid.0.clone());
            if let Some(g) = self.groups.get_mut(&gid) {
                g.extra_receivers = og.extra_receivers;
                let receivers = &self.delivery.receivers;
                g.extra_receivers.retain(|r| receivers.contains_key(r));
                g.next_flush = og.next_flush;
                g.has_flushed = og.has_flushed;
                g.flush = og.flush;
                g.esc_deadline = og.esc_deadline;
                g.hold_until = og.hold_until;
                g.muted_by = og.muted_by;
            }
        }
        let live: HashSet<&String> = self.groups.keys().map(|(k, _)| k).collect();
        for k in old_keys.iter().filter(|k| !live.contains(k)) {
            self.esc.forget_group(k);
        }
    }

    /// Muting and correlation facts at `now`.
    fn ctx(&self, now: i64) -> Ctx {
        let silences: Vec<Silence> = self.silences.active(now).into_iter().cloned().collect();
        let inhibitor = Inhibitor::new(&self.delivery.inhibit_rules, self.store.iter(), now);
        let mut ctx = Ctx {
            now,
            silences,
            inhibitor,
            symptom_of: HashMap::new(),
            related_of: HashMap::new(),
            in_incident: HashSet::new(),
            hold_ms: self.delivery.correlation.hold.ms(),
            incidents: Vec::new(),
        };
        let depends_on = self.depends_on();
        if self.delivery.correlation.labels.is_empty() && depends_on.is_empty() {
            ctx.hold_ms = 0;
            return ctx;
        }
        let mut firing: Vec<&Alert> = self
            .store
            .iter()
            .filter(|a| !a.resolved_at(now) && !ctx.muted(&a.labels))
            .collect();
        firing.sort_by_key(|a| a.fingerprint());
        let incs = incidents(&firing, &self.delivery.correlation, &depends_on);
        ctx.symptom_of = symptom_roots(&incs);
        for (s, r) in &ctx.symptom_of {
            ctx.related_of.entry(*r).or_default().push(*s);
        }
        for v in ctx.related_of.values_mut() {
            v.sort();
        }
        ctx.in_incident = incs
            .iter()
            .flat_map(|i| i.members.iter().copied())
            .collect();
        ctx.incidents = incs;
        ctx
    }

    /// The escalation policy of a group (see the module docs).
    fn policy_of(&self, g: &AggrGroup) -> Option<EscalationPolicy> {
        let names: BTreeSet<&str> = g.alerts.values().map(Alert::name).collect();
        let name = names
            .iter()
            .find_map(|n| self.meta.get(*n).and_then(|m| m.escalation.clone()))
            .or_else(|| g.opts.escalation.clone())?;
        self.delivery.escalation_policies.get(&name).cloned()
    }

    fn retention(g: &AggrGroup) -> i64 {
        match g.opts.repeat_interval_ms.saturating_mul(2) {
            0 => DEFAULT_RETENTION_MS,
            r => r,
        }
    }

    /// Runs what is due for one group.
    fn process(&mut self, gid: &GroupId, ctx: &Ctx) -> Vec<Dispatch> {
        let now = ctx.now;
        let Some(mut g) = self.groups.remove(gid) else {
            return Vec::new();
        };
        let regular = g.next_flush <= now;
        let hold_due = g.hold_until.is_some_and(|h| h <= now);
        let esc_due = g.esc_deadline.is_some_and(|e| e <= now);
        if regular {
            g.next_flush = now.saturating_add(g.opts.group_interval_ms);
            g.has_flushed = true;
        }
        if hold_due {
            g.hold_until = None;
        }
        if esc_due {
            g.esc_deadline = None;
        }
        let out = if g.alerts.is_empty() {
            Vec::new()
        } else {
            self.flush(&mut g, ctx, regular || hold_due)
        };
        self.groups.insert(gid.clone(), g);
        out
    }

    /// One flush (`full`) or an escalation-only evaluation of a group.
    fn flush(&mut self, g: &mut AggrGroup, ctx: &Ctx, full: bool) -> Vec<Dispatch> {
        let now = ctx.now;
        let delivery = Arc::clone(&self.delivery);
        g.muted_by = time_muted(&delivery, &g.opts, now);
        if !g.muted_by.is_empty() {
            return Vec::new();
        }

        let mut ordered: Vec<Alert> = g.alerts.values().map(|a| shown(a, now)).collect();
        ordered.sort_by(alert_order);
        let mut firing_vis = BTreeSet::new();
        let mut resolved_base = BTreeSet::new();
        let mut resolved_all = BTreeSet::new();
        let mut hold_until: Option<i64> = None;
        for a in &ordered {
            let fp = a.fingerprint();
            let muted = ctx.muted(&a.labels);
            if a.resolved_at(now) {
                resolved_all.insert(fp);
                if !muted {
                    resolved_base.insert(fp);
                }
                continue;
            }
            if muted || ctx.symptom_of.contains_key(&fp) {
                continue;
            }
            let hold_end = a.starts_at.saturating_add(ctx.hold_ms);
            if ctx.hold_ms > 0 && !ctx.in_incident.contains(&fp) && hold_end > now {
                hold_until = Some(hold_until.map_or(hold_end, |h| h.min(hold_end)));
                continue;
            }
            firing_vis.insert(fp);
        }
        if full {
            g.hold_until = hold_until;
        }

        // Symptoms attached to the roots this group shows.
        let mut related: Vec<Alert> = firing_vis
            .iter()
            .filter_map(|fp| ctx.related_of.get(fp))
            .flatten()
            .filter_map(|s| self.store.get(*s))
            .filter(|a| !a.resolved_at(now))
            .map(|a| shown(a, now))
            .collect();
        related.sort_by(alert_order);
        related.dedup_by_key(|a| a.fingerprint());
        let related_fps: BTreeSet<Fingerprint> = related.iter().map(Alert::fingerprint).collect();

        let all_acked =
            !firing_vis.is_empty() && firing_vis.iter().all(|fp| self.esc.is_acked(*fp));
        let retention = Self::retention(g);
        let members: HashSet<Fingerprint> = g.alerts.keys().copied().collect();
        let (gkey, glabels) = (g.key.clone(), g.labels.clone());
        let build =
            |receiver: &str, resolved: &BTreeSet<Fingerprint>, send_resolved: bool| Notification {
                receiver: receiver.to_string(),
                group_key: gkey.clone(),
                group_labels: glabels.clone(),
                alerts: ordered
                    .iter()
                    .filter(|a| {
                        let fp = a.fingerprint();
                        firing_vis.contains(&fp) || (send_resolved && resolved.contains(&fp))
                    })
                    .cloned()
                    .collect(),
                now_ms: now,
                external_url: delivery.external_url.clone(),
                related: related.clone(),
                escalation: None,
                digest_of: 0,
            };

        let mut out: Vec<Dispatch> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut outstanding = BTreeSet::new();
        let mut new_pending: Vec<(String, PendingSend)> = Vec::new();
        let gid = g.id();

        if full {
            for receiver in g.recipients() {
                let Some(spec) = delivery.receivers.get(&receiver) else {
                    let shown_alerts: Vec<&Alert> = ordered
                        .iter()
                        .filter(|a| firing_vis.contains(&a.fingerprint()))
                        .collect();
                    if !shown_alerts.is_empty() {
                        self.record_undeliverable(
                            &receiver,
                            "no receiver of this name",
                            &shown_alerts,
                            now,
                        );
                    }
                    continue;
                };
                for integ in &spec.integrations {
                    let id = integ.id();
                    let entry = self
                        .nflog
                        .get(&g.key, &id)
                        .filter(|e| !(e.void && integ.unconfigured.is_none()));
                    let mut resolved_vis = resolved_base.clone();
                    if let Some(e) = entry {
                        resolved_vis.extend(resolved_all.intersection(&e.owed).copied());
                    }
                    if firing_vis.is_empty() && resolved_vis.is_empty() {
                        continue;
                    }
                    let v = Visible {
                        firing: &firing_vis,
                        resolved: &resolved_vis,
                        related: &related_fps,
                    };
                    let reason = needs_update(
                        entry,
                        v,
                        integ.send_resolved,
                        g.opts.repeat_interval_ms,
                        now,
                        all_acked,
                    );
                    if !reason.notify() {
                        continue;
                    }
                    let rec = LogRecord {
                        firing: firing_vis.clone(),
                        resolved: resolved_vis.clone(),
                        related: related_fps.clone(),
                        retention_ms: retention,
                        void: integ.unconfigured.is_some(),
                    };
                    if !integ.send_resolved && firing_vis.is_empty() {
                        // Nothing to send, but the log must learn that everything resolved.
                        self.nflog
                            .log(&g.key, &id, rec, now, Some(&|fp| members.contains(&fp)));
                        continue;
                    }
                    let n = build(&receiver, &resolved_vis, integ.send_resolved);
                    outstanding.insert(id.clone());
                    new_pending.push((
                        id.clone(),
                        PendingSend {
                            gid: gid.clone(),
                            rec,
                            flush: true,
                        },
                    ));
                    index.insert(id.clone(), out.len());
                    out.push(Dispatch {
                        integration: id,
                        notification: n,
                    });
                }
            }
        }

        match self.policy_of(g) {
            Some(policy) => {
                let firing: Vec<Fingerprint> = firing_vis.iter().copied().collect();
                let due = self.esc.due_steps(&g.key, &policy, &firing, now);
                g.esc_deadline = due.next_deadline_ms;
                for step in due.steps {
                    let info = EscalationInfo {
                        policy: policy.name.clone(),
                        step: step.step,
                        steps: policy.steps.len(),
                    };
                    for receiver in step.receivers {
                        if receiver != g.opts.receiver {
                            g.extra_receivers.insert(receiver.clone());
                        }
                        let Some(spec) = delivery.receivers.get(&receiver) else {
                            let shown_alerts: Vec<&Alert> = ordered
                                .iter()
                                .filter(|a| firing_vis.contains(&a.fingerprint()))
                                .collect();
                            self.record_undeliverable(
                                &receiver,
                                "no receiver of this name",
                                &shown_alerts,
                                now,
                            );
                            continue;
                        };
                        for integ in &spec.integrations {
                            let id = integ.id();
                            if let Some(&i) = index.get(&id) {
                                out[i].notification.escalation = Some(info.clone());
                                continue;
                            }
                            let entry = self
                                .nflog
                                .get(&g.key, &id)
                                .filter(|e| !(e.void && integ.unconfigured.is_none()));
                            let mut resolved_vis = resolved_base.clone();
                            if let Some(e) = entry {
                                resolved_vis.extend(resolved_all.intersection(&e.owed).copied());
                            }
                            let mut n = build(&receiver, &resolved_vis, integ.send_resolved);
                            n.escalation = Some(info.clone());
                            if full {
                                outstanding.insert(id.clone());
                            }
                            new_pending.push((
                                id.clone(),
                                PendingSend {
                                    gid: gid.clone(),
                                    rec: LogRecord {
                                        firing: firing_vis.clone(),
                                        resolved: resolved_vis,
                                        related: related_fps.clone(),
                                        retention_ms: retention,
                                        void: integ.unconfigured.is_some(),
                                    },
                                    flush: full,
                                },
                            ));
                            index.insert(id.clone(), out.len());
                            out.push(Dispatch {
                                integration: id,
                                notification: n,
                            });
                        }
                    }
                }
            }
            None => {
                if g.esc_deadline.take().is_some() {
                    self.esc.forget_group(&g.key);
                }
            }
        }

        for (id, p) in new_pending {
            self.pending.insert((id, g.key.clone(), now), p);
        }
        if full {
            let resolved: Vec<(Fingerprint, i64)> = g
                .alerts
                .values()
                .filter(|a| a.resolved_at(now))
                .map(|a| (a.fingerprint(), a.updated_at))
                .collect();
            if outstanding.is_empty() {
                g.delete_if_not_modified(&resolved);
                g.flush = None;
            } else {
                g.flush = Some(super::group::FlushRecord {
                    at: now,
                    outstanding,
                    failed: false,
                    resolved,
                });
            }
        }
        out
    }

    /// Acks of alerts that resolved or are gone lapse.
    fn lapse_acks(&mut self, now: i64) {
        let gone: Vec<Fingerprint> = self
            .esc
            .acks()
            .into_iter()
            .map(|a| a.fingerprint)
            .filter(|fp| self.store.get(*fp).is_none_or(|a| a.resolved_at(now)))
            .collect();
        self.esc.lapse(&gone, now);
    }

    /// Drops empty groups, forgotten alerts, expired log entries, silences and stale reports.
    fn gc(&mut self, now: i64) {
        let empty: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.alerts.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &empty {
            self.groups.remove(id);
        }
        let live: HashSet<String> = self.groups.keys().map(|(k, _)| k.clone()).collect();
        for (k, _) in &empty {
            if !live.contains(k) {
                self.esc.forget_group(k);
            }
        }
        let in_group: HashSet<Fingerprint> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.keys().copied())
            .collect();
        let gone = self.store.gc(now, |fp| in_group.contains(&fp));
        self.esc.lapse(&gone, now);
        self.nflog.gc(now, |k| live.contains(k));
        self.silences.gc(now);
        self.pending
            .retain(|(_, _, at), _| at.saturating_add(PENDING_TTL_MS) > now);
    }

    /// The API status of a stored alert.
    fn status_of(&self, ctx: &Ctx, a: &Alert, in_group: &HashSet<Fingerprint>) -> AlertStatus {
        AlertStatus {
            silenced_by: ctx.silenced_by(&a.labels),
            inhibited_by: ctx
                .inhibitor
                .inhibited_by(&a.labels)
                .into_iter()
                .map(|fp| fp.to_string())
                .collect(),
            muted_by: Vec::new(),
            unprocessed: !in_group.contains(&a.fingerprint()),
        }
    }
}

impl Dispatcher {
    /// A dispatcher with no alerts, silences or history.
    pub fn new(delivery: Arc<CompiledDelivery>) -> Self {
        Dispatcher {
            inner: Mutex::new(Inner {
                delivery,
                meta: HashMap::new(),
                store: AlertStore::new(),
                groups: BTreeMap::new(),
                nflog: NotificationLog::new(),
                silences: Silences::new(),
                esc: Escalations::new(),
                undelivered: BTreeMap::new(),
                pending: HashMap::new(),
                started_at: None,
                last_now: i64::MIN,
            }),
        }
    }

    /// Hot reload: re-routes every alert; groups that still exist keep their timers, and the
    /// notification log, silences and acks are kept, so unchanged groups are not re-notified.
    pub fn apply_config(&self, delivery: Arc<CompiledDelivery>, now_ms: i64) {
        let mut inner = self.inner.lock();
        inner.note(now_ms);
        inner.delivery = delivery;
        inner.rebuild(now_ms);
    }

    /// Per-alertname settings from the rule files; alerts are re-routed when they change.
    pub fn set_rule_meta(&self, meta: HashMap<String, RuleMeta>) {
        let mut inner = self.inner.lock();
        if inner.meta == meta {
            return;
        }
        inner.meta = meta;
        let now = inner.last_now.max(inner.started_at.unwrap_or(0));
        if !inner.store.is_empty() {
            inner.rebuild(now);
        }
    }

    /// Validates and normalises alerts posted to `/api/v2/alerts` the way Alertmanager does:
    /// empty label values dropped, `startsAt` defaulting to `endsAt` or now, `endsAt` to now +
    /// `resolve_timeout` (marked as a timeout), `updatedAt` now. All or nothing: the first
    /// invalid alert is reported by index and field.
    pub fn normalize_posted(
        &self,
        alerts: Vec<PostedAlert>,
        now_ms: i64,
    ) -> Result<Vec<Alert>, DispatchError> {
        let resolve_timeout = self.inner.lock().delivery.global.resolve_timeout.ms();
        let mut out = Vec::with_capacity(alerts.len());
        for (i, p) in alerts.into_iter().enumerate() {
            let starts_at = p.starts_at.or(p.ends_at).unwrap_or(now_ms);
            let (ends_at, timeout) = match p.ends_at {
                Some(e) => (e, false),
                None => (now_ms.saturating_add(resolve_timeout), true),
            };
            if ends_at < starts_at {
                return Err(invalid(
                    format!("[{i}].endsAt"),
                    "start time must be before end time",
                ));
            }
            let labels: Vec<(String, String)> = p
                .labels
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect();
            if labels.is_empty() {
                return Err(invalid(
                    format!("[{i}].labels"),
                    "at least one label pair required",
                ));
            }
            if let Some((n, _)) = labels.iter().find(|(n, _)| n.trim().is_empty()) {
                return Err(invalid(
                    format!("[{i}].labels"),
                    format!("invalid name {n:?}"),
                ));
            }
            if let Some(n) = p.annotations.keys().find(|n| n.trim().is_empty()) {
                return Err(invalid(
                    format!("[{i}].annotations"),
                    format!("invalid name {n:?}"),
                ));
            }
            out.push(Alert {
                labels: Labels::from_pairs(labels),
                annotations: Labels::from_pairs(p.annotations),
                starts_at,
                ends_at,
                generator_url: p.generator_url,
                updated_at: now_ms,
                timeout,
            });
        }
        Ok(out)
    }

    /// Merges alerts into the store (Alertmanager's merge of repeated posts) and inserts them
    /// into their aggregation groups.
    pub fn put_alerts(&self, alerts: Vec<Alert>, now_ms: i64) {
        self.put_alerts_tracked(alerts, now_ms);
    }

    /// [`Dispatcher::put_alerts`], returning the alerts whose status (new, firing, resolved)
    /// changed, for the durable history.
    pub fn put_alerts_tracked(&self, alerts: Vec<Alert>, now_ms: i64) -> Vec<StatusChange> {
        let status = |a: &Alert| {
            if a.resolved_at(now_ms) {
                "resolved"
            } else {
                "firing"
            }
        };
        let mut inner = self.inner.lock();
        inner.note(now_ms);
        let mut changes = Vec::new();
        for a in alerts {
            let from = inner.store.get(a.fingerprint()).map(status);
            let stored = inner.store.put(a, now_ms);
            let to = status(&stored);
            if from != Some(to) {
                changes.push(StatusChange {
                    alert: stored.clone(),
                    from,
                    to,
                });
            }
            inner.route_alert(&stored, now_ms);
        }
        changes
    }

    /// Everything due at `now_ms`, one [`Dispatch`] per integration and notification.
    pub fn tick(&self, now_ms: i64) -> Vec<Dispatch> {
        let mut inner = self.inner.lock();
        inner.note(now_ms);
        inner.lapse_acks(now_ms);
        let due: Vec<GroupId> = inner
            .groups
            .iter()
            .filter(|(_, g)| g.deadline() <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        if !due.is_empty() {
            let ctx = inner.ctx(now_ms);
            for gid in &due {
                out.extend(inner.process(gid, &ctx));
            }
        }
        inner.gc(now_ms);
        out
    }

    /// The earliest time [`Dispatcher::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.inner
            .lock()
            .groups
            .values()
            .map(AggrGroup::deadline)
            .min()
    }

    /// Records the outcome of one notification for one integration: success (or an
    /// unconfigured integration) writes the notification log; a failure logs nothing so the next
    /// flush retries; resolved alerts leave their group once every integration of the flush
    /// succeeded.
    pub fn delivered(
        &self,
        integration: &str,
        n: &Notification,
        ok: bool,
        unconfigured: bool,
        now_ms: i64,
    ) {
        let mut inner = self.inner.lock();
        inner.note(now_ms);
        let key = (integration.to_string(), n.group_key.clone(), n.now_ms);
        let pending = inner.pending.remove(&key);
        let (gid, rec, flush) = match pending {
            Some(p) => (Some(p.gid), p.rec, p.flush),
            None => {
                let gid = inner
                    .groups
                    .iter()
                    .find(|(id, g)| id.0 == n.group_key && g.recipients().contains(&n.receiver))
                    .map(|(id, _)| id.clone());
                let (firing, resolved) = n.fingerprint_sets();
                let rec = LogRecord {
                    firing: firing.into_iter().collect(),
                    resolved: resolved.into_iter().collect(),
                    related: n.related.iter().map(Alert::fingerprint).collect(),
                    retention_ms: DEFAULT_RETENTION_MS,
                    void: false,
                };
                (gid, rec, false)
            }
        };
        if unconfigured {
            let delivery = Arc::clone(&inner.delivery);
            let reason = find_integration(&delivery, integration)
                .and_then(|i| i.unconfigured.clone())
                .map_or_else(
                    || format!("{integration} is not configured"),
                    |why| format!("{integration}: {why}"),
                );
            let alerts: Vec<&Alert> = n.alerts.iter().collect();
            inner.record_undeliverable(&n.receiver, &reason, &alerts, now_ms);
        }
        if ok || unconfigured {
            let members: Option<HashSet<Fingerprint>> = gid
                .as_ref()
                .and_then(|id| inner.groups.get(id))
                .map(|g| g.alerts.keys().copied().collect());
            let rec = LogRecord {
                void: unconfigured,
                ..rec
            };
            let keep = members.map(|m| move |fp: Fingerprint| m.contains(&fp));
            inner.nflog.log(
                &n.group_key,
                integration,
                rec,
                now_ms,
                keep.as_ref().map(|k| k as &dyn Fn(Fingerprint) -> bool),
            );
        }
        if !flush {
            return;
        }
        let Some(gid) = gid else { return };
        let Some(g) = inner.groups.get_mut(&gid) else {
            return;
        };
        let Some(f) = g.flush.as_mut().filter(|f| f.at == n.now_ms) else {
            return;
        };
        f.outstanding.remove(integration);
        if !(ok || unconfigured) {
            f.failed = true;
        }
        if f.outstanding.is_empty() {
            let done = g.flush.take();
            if let Some(f) = done
                && !f.failed
            {
                g.delete_if_not_modified(&f.resolved);
            }
            if g.alerts.is_empty() {
                inner.gc(now_ms);
            }
        }
    }

    /// Receivers that could not get their notifications, with the alerts kept for them.
    pub fn undelivered(&self) -> Vec<UndeliveredSummary> {
        self.inner
            .lock()
            .undelivered
            .iter()
            .map(|(r, u)| {
                let mut alerts: Vec<Alert> = u.alerts.values().cloned().collect();
                alerts.sort_by(alert_order);
                UndeliveredSummary {
                    receiver: r.clone(),
                    reason: u.reason.clone(),
                    count: u.count,
                    last_ms: u.last_ms,
                    alerts,
                }
            })
            .collect()
    }

    /// `GET /api/v2/alerts`: unresolved alerts with receivers and muting, by fingerprint.
    pub fn alerts_json(&self, filter: &AlertFilter, now_ms: i64) -> serde_json::Value {
        let inner = self.inner.lock();
        let ctx = inner.ctx(now_ms);
        let in_group: HashSet<Fingerprint> = inner
            .groups
            .values()
            .flat_map(|g| g.alerts.keys().copied())
            .collect();
        let mut rows: Vec<(String, serde_json::Value)> = Vec::new();
        for a in inner.store.iter() {
            if a.ends_at != 0 && a.ends_at < now_ms {
                continue;
            }
            let receivers = inner.receivers_of(&a.labels);
            if let Some(re) = &filter.receiver
                && !receivers.iter().any(|r| re.is_match(r))
            {
                continue;
            }
            let status = inner.status_of(&ctx, a, &in_group);
            if !status.passes(filter) || !filter.matches_labels(&a.labels) {
                continue;
            }
            rows.push((
                a.fingerprint().to_string(),
                alert_json(a, &receivers, &status),
            ));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        serde_json::Value::Array(rows.into_iter().map(|(_, v)| v).collect())
    }

    /// `GET /api/v2/alerts/groups`, plus klaxon's group `id` (for group acks).
    pub fn groups_json(&self, filter: &AlertFilter, now_ms: i64) -> serde_json::Value {
        let inner = self.inner.lock();
        let ctx = inner.ctx(now_ms);
        let in_group: HashSet<Fingerprint> = inner
            .groups
            .values()
            .flat_map(|g| g.alerts.keys().copied())
            .collect();
        let mut receivers_of: HashMap<Fingerprint, BTreeSet<String>> = HashMap::new();
        for g in inner.groups.values() {
            for fp in g.alerts.keys() {
                receivers_of
                    .entry(*fp)
                    .or_default()
                    .insert(g.opts.receiver.clone());
            }
        }
        let mut groups: Vec<&AggrGroup> = inner.groups.values().collect();
        groups.sort_by(|a, b| {
            a.labels
                .cmp(&b.labels)
                .then_with(|| a.opts.receiver.cmp(&b.opts.receiver))
        });
        let mut out = Vec::new();
        for g in groups {
            if let Some(re) = &filter.receiver
                && !re.is_match(&g.opts.receiver)
            {
                continue;
            }
            let muted_by = time_muted(&inner.delivery, &g.opts, now_ms);
            let mut alerts: Vec<&Alert> = g
                .alerts
                .values()
                .filter(|a| !(a.ends_at != 0 && a.ends_at < now_ms))
                .collect();
            alerts.sort_by(|a, b| alert_order(a, b));
            let mut rows = Vec::new();
            for a in alerts {
                let mut status = inner.status_of(&ctx, a, &in_group);
                if !status.passes(filter) || !filter.matches_labels(&a.labels) {
                    continue;
                }
                status.muted_by.clone_from(&muted_by);
                let receivers: Vec<String> = receivers_of
                    .get(&a.fingerprint())
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                rows.push(alert_json(a, &receivers, &status));
            }
            if rows.is_empty() {
                continue;
            }
            out.push(serde_json::json!({
                "id": g.api_id(),
                "labels": g.labels.to_json(),
                "receiver": {"name": g.opts.receiver},
                "alerts": rows,
            }));
        }
        serde_json::Value::Array(out)
    }

    /// `GET /api/v2/receivers`.
    pub fn receivers_json(&self) -> serde_json::Value {
        let inner = self.inner.lock();
        serde_json::Value::Array(
            inner
                .delivery
                .receivers
                .keys()
                .map(|n| serde_json::json!({ "name": n }))
                .collect(),
        )
    }

    /// `POST /api/v2/silences`: creates or updates a silence; returns its id.
    pub fn put_silence(&self, s: PostableSilence, now_ms: i64) -> Result<String, DispatchError> {
        let mut inner = self.inner.lock();
        inner.note(now_ms);
        inner.silences.set(s, now_ms)
    }

    /// `GET /api/v2/silence/{id}`.
    pub fn silence_json(&self, id: &str, now_ms: i64) -> Option<serde_json::Value> {
        self.inner
            .lock()
            .silences
            .get(id)
            .map(|s| s.to_json(now_ms))
    }

    /// `GET /api/v2/silences` with `filter=` matchers.
    pub fn silences_json(
        &self,
        matchers: &[crate::model::Matcher],
        now_ms: i64,
    ) -> serde_json::Value {
        self.inner.lock().silences.list_json(matchers, now_ms)
    }

    /// `DELETE /api/v2/silence/{id}`.
    pub fn expire_silence(&self, id: &str, now_ms: i64) -> Result<(), DispatchError> {
        let mut inner = self.inner.lock();
        inner.note(now_ms);
        inner.silences.expire(id, now_ms)
    }

    /// Acknowledges one firing alert (stops its escalation).
    pub fn ack(
        &self,
        fp: Fingerprint,
        by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Ack, DispatchError> {
        let mut inner = self.inner.lock();
        inner.note(now_ms);
        let alert = inner
            .store
            .get(fp)
            .cloned()
            .ok_or_else(|| DispatchError::NotFound(format!("alert {fp}")))?;
        if alert.resolved_at(now_ms) {
            return Err(DispatchError::NotFiring(fp.to_string()));
        }
        Ok(inner.esc.ack(&alert, by, comment, now_ms)?)
    }

    /// Acknowledges every firing alert of a group (by the `id` of the groups view).
    pub fn ack_group(
        &self,
        group_id: &str,
        by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Vec<Ack>, DispatchError> {
        let mut inner = self.inner.lock();
        inner.note(now_ms);
        let g = inner
            .groups
            .values()
            .find(|g| g.api_id() == group_id)
            .ok_or_else(|| DispatchError::NotFound(format!("group {group_id}")))?;
        let alerts: Vec<Alert> = g
            .alerts
            .keys()
            .filter_map(|fp| inner.store.get(*fp))
            .filter(|a| !a.resolved_at(now_ms))
            .cloned()
            .collect();
        let refs: Vec<&Alert> = alerts.iter().collect();
        Ok(inner.esc.ack_all(&refs, by, comment, now_ms)?)
    }

    /// Acknowledgements in force, oldest first.
    pub fn acks_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.inner
                .lock()
                .esc
                .acks()
                .iter()
                .map(Ack::to_json)
                .collect(),
        )
    }

    /// Incidents among the firing, unmuted alerts.
    pub fn incidents_json(&self, now_ms: i64) -> serde_json::Value {
        let inner = self.inner.lock();
        let ctx = inner.ctx(now_ms);
        let by_fp: HashMap<Fingerprint, &Alert> =
            inner.store.iter().map(|a| (a.fingerprint(), a)).collect();
        serde_json::Value::Array(ctx.incidents.iter().map(|i| i.to_json(&by_fp)).collect())
    }

    /// Counters for health and metrics, as of the latest time the dispatcher saw.
    pub fn status_counts(&self) -> DispatchStats {
        let inner = self.inner.lock();
        let now = inner.last_now;
        let firing = inner.store.iter().filter(|a| !a.resolved_at(now)).count();
        DispatchStats {
            alerts_firing: firing,
            alerts_resolved: inner.store.len() - firing,
            groups: inner.groups.len(),
            silences_active: inner.silences.count(SilenceState::Active, now),
            silences_pending: inner.silences.count(SilenceState::Pending, now),
            nflog_entries: inner.nflog.len(),
            acks: inner.esc.acks().len(),
            undelivered: inner
                .undelivered
                .iter()
                .map(|(r, u)| (r.clone(), u.count))
                .collect(),
        }
    }

    /// Plain data of alerts, notification log, silences, acks, escalation progress and
    /// escalated receivers.
    pub fn snapshot(&self) -> DispatchSnapshot {
        let inner = self.inner.lock();
        let mut alerts: Vec<&Alert> = inner.store.iter().collect();
        alerts.sort_by_key(|a| a.fingerprint());
        DispatchSnapshot {
            alerts: alerts.into_iter().map(AlertSnapshot::from).collect(),
            nflog: inner.nflog.snapshot(),
            silences: inner.silences.snapshot(),
            escalation: inner.esc.snapshot(),
            groups: inner
                .groups
                .values()
                .filter(|g| !g.extra_receivers.is_empty())
                .map(|g| GroupStateSnapshot {
                    group_key: g.key.clone(),
                    receiver: g.opts.receiver.clone(),
                    extra_receivers: g.extra_receivers.iter().cloned().collect(),
                })
                .collect(),
        }
    }

    /// Restores a snapshot (at start-up): alerts are re-routed, and every group waits
    /// `group_wait` before its first flush so inhibiting alerts are known first.
    pub fn restore(&self, snap: DispatchSnapshot, now_ms: i64) {
        let mut inner = self.inner.lock();
        inner.started_at = Some(now_ms);
        inner.last_now = inner.last_now.max(now_ms);
        inner.silences.restore(snap.silences);
        inner.nflog.restore(snap.nflog);
        inner.esc = Escalations::restore(snap.escalation);
        for s in snap.alerts {
            let a = Alert::from(s);
            if inner
                .store
                .get(a.fingerprint())
                .is_some_and(|cur| cur.updated_at >= a.updated_at)
            {
                continue;
            }
            inner.store.insert_raw(a);
        }
        // Resolved alerts from the snapshot still owe their notification: route them too.
        let old = std::mem::take(&mut inner.groups);
        let mut alerts: Vec<Alert> = inner.store.iter().cloned().collect();
        alerts.sort_by_key(Alert::fingerprint);
        for a in &alerts {
            inner.route_alert(a, now_ms);
        }
        for (gid, og) in old {
            if let Some(g) = inner.groups.get_mut(&gid) {
                g.extra_receivers = og.extra_receivers;
            }
        }
        for gs in snap.groups {
            if let Some(g) = inner.groups.get_mut(&(gs.group_key, gs.receiver)) {
                g.extra_receivers.extend(gs.extra_receivers);
            }
        }
    }
}
