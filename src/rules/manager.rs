//! The rule manager: one evaluation task per group on the injectable clock, transactional reloads
//! with state carry-over, and the read side the APIs use (Prometheus' `rules/manager.go`).
//!
//! # Scheduling
//!
//! Each group evaluates at `aligned_eval_ts` slots: a stable per-group offset within its interval
//! (see [`group_offset_ms`]). The task reads "now" only from the [`Clock`](crate::clock::Clock),
//! sleeps `next slot - now`, and evaluates at the slot's timestamp (not at the wake-up time);
//! slots missed because an evaluation overran are skipped and counted. Evaluation runs on the
//! blocking pool, holding the group's runner lock.
//!
//! # Reload
//!
//! [`Manager::reload`] asks the loader for a complete rule set; on any error the running groups
//! stay untouched and the errors are kept for `GET /api/v1/status/reload`. On success, groups are
//! matched by (file, name): an unchanged group keeps its task and state, a changed group gets a new
//! runner that takes over alert state rule by rule ([`GroupRunner::copy_state_from`]), and a
//! removed group stops after writing stale markers for its series.
//!
//! # Event-driven evaluation
//!
//! [`Manager::eval_group_now`] evaluates one group immediately at the clock's current time, on the
//! caller's thread, through the same runner (and lock) as its scheduled evaluations. Future
//! event-driven triggers (an ingest of a watched metric, a dependency finishing) call it; the
//! periodic schedule continues unchanged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::group::{GroupStatus, RuleKey, first_eval_ts, group_offset_ms, next_tick};
use super::{Group, GroupEvalReport, GroupOptions, GroupRunner, Rule, RuleSet};
use crate::alert::ActiveAlert;
use crate::clock::SharedClock;
use crate::eval::Engine;
use crate::state::restore::{ForRestore, RestoreOutcome, restore_rule_alerts};
use crate::store::Store;
use crate::telemetry::Metrics;

/// Loads the whole rule set from disk: `Ok` with every group, or `Err` with rendered diagnostics.
pub type RuleLoader = Arc<dyn Fn() -> Result<RuleSet, Vec<String>> + Send + Sync>;

/// Identity of a group across reloads.
pub type GroupKey = (PathBuf, String);

/// The outcome of the last reload, for `/api/v1/status/reload` and the reload gauges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReloadStatus {
    /// Whether the last reload applied.
    pub success: bool,
    /// When the last reload was attempted (ms), if ever.
    pub last_reload_ms: Option<i64>,
    /// When a reload last succeeded (ms), if ever.
    pub last_success_ms: Option<i64>,
    /// Rendered diagnostics of the last reload (empty on success).
    pub errors: Vec<String>,
}

/// Why a manager operation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagerError {
    /// No loaded group has that name.
    #[error("no rule group named {0:?}")]
    NoSuchGroup(String),
}

/// Everything the manager needs from the process.
#[derive(Clone)]
pub struct ManagerOptions {
    /// Query engine for rule expressions.
    pub engine: Engine,
    /// The store rules read and write.
    pub store: Arc<Store>,
    /// The one source of "now".
    pub clock: SharedClock,
    /// Self-metrics (reload gauges, evaluation counters).
    pub metrics: Option<Arc<Metrics>>,
    /// Templating, retention and history settings for every group.
    pub group: GroupOptions,
    /// Reads rule files; `None` makes `reload` a no-op success with the current set.
    pub loader: Option<RuleLoader>,
}

impl std::fmt::Debug for ManagerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerOptions")
            .field("engine", &self.engine)
            .field("clock", &self.clock)
            .field("group", &self.group)
            .field("loader", &self.loader.is_some())
            .finish_non_exhaustive()
    }
}

/// A running group: definition, runner and (when scheduling) its task.
struct GroupSlot {
    key: GroupKey,
    group: Arc<Group>,
    runner: Arc<Mutex<GroupRunner>>,
    stopped: Arc<AtomicBool>,
    stop_tx: Option<tokio::sync::watch::Sender<bool>>,
}

impl GroupSlot {
    /// Stops the task; once this returns no scheduled evaluation of this slot starts again.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(tx) = &self.stop_tx {
            let _ = tx.send(true);
        }
        // Wait out an evaluation in progress: it holds the runner lock.
        drop(self.runner.lock());
    }
}

/// Where firing and resolved alerts go after each evaluation (the dispatcher in `klaxon serve`).
pub trait AlertSink: Send + Sync {
    /// Takes the alerts one group evaluation decided to send.
    fn send(&self, alerts: Vec<crate::dispatch::Alert>);
}

/// The sink plus Prometheus' sending knobs.
#[derive(Clone)]
pub struct SinkOptions {
    /// Receives the alerts.
    pub sink: Arc<dyn AlertSink>,
    /// Re-send firing alerts this often (Prometheus' `--rules.alert.resend-delay`, 1m).
    pub resend_delay_ms: i64,
    /// Base of generator URLs.
    pub external_url: String,
}

/// One alerting rule's alerts as durable state keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedRuleAlerts {
    /// The group's file.
    pub file: PathBuf,
    /// The group's name.
    pub group: String,
    /// The rule within the group.
    pub rule: RuleKey,
    /// Its alerts (pending, firing, retained resolved).
    pub alerts: Vec<ActiveAlert>,
}

/// One group's last evaluation, the "down at" time of `for` restoration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedGroup {
    /// The group's file.
    pub file: PathBuf,
    /// The group's name.
    pub name: String,
    /// Its last evaluation timestamp (ms).
    pub last_eval_ms: Option<i64>,
}

/// Every rule's alert state, for durable state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleStateSnapshot {
    /// Groups with their last evaluation.
    pub groups: Vec<SavedGroup>,
    /// Alerts by rule.
    pub rules: Vec<SavedRuleAlerts>,
}

/// Saved state waiting for its groups to be loaded.
struct PendingRestore {
    /// When the snapshot was taken (fallback "down at").
    saved_ms: i64,
    down_at: HashMap<GroupKey, i64>,
    rules: HashMap<GroupKey, Vec<(RuleKey, Vec<ActiveAlert>)>>,
    opts: ForRestore,
}

/// Per-alertname delivery settings declared on rules, for the dispatcher.
pub type RuleMetaMap = std::collections::HashMap<String, crate::dispatch::RuleMeta>;

struct Inner {
    opts: ManagerOptions,
    sink: Mutex<Option<SinkOptions>>,
    groups: Mutex<Vec<GroupSlot>>,
    reload: Mutex<ReloadStatus>,
    reload_lock: Mutex<()>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    restore: Mutex<Option<PendingRestore>>,
}

/// Owns every rule group: scheduling, reloads, and the state the APIs read.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("groups", &self.inner.groups.lock().len())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager with no groups that does not schedule until [`Manager::start`].
    pub fn new(opts: ManagerOptions) -> Self {
        Manager {
            inner: Arc::new(Inner {
                opts,
                sink: Mutex::new(None),
                groups: Mutex::new(Vec::new()),
                reload: Mutex::new(ReloadStatus::default()),
                reload_lock: Mutex::new(()),
                runtime: Mutex::new(None),
                restore: Mutex::new(None),
            }),
        }
    }

    /// Starts scheduling on the current tokio runtime: every loaded group (and every group a later
    /// reload adds) gets an evaluation task. Must be called inside a runtime.
    pub fn start(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                event_type = "error",
                "rule manager started outside an async runtime"
            );
            return;
        };
        *self.inner.runtime.lock() = Some(handle);
        let mut groups = self.inner.groups.lock();
        for slot in groups.iter_mut() {
            if slot.stop_tx.is_none() {
                slot.stop_tx =
                    Some(self.spawn(Arc::clone(&slot.runner), Arc::clone(&slot.stopped)));
            }
        }
    }

    /// Stops every group task (shutdown); the groups stay loaded.
    pub fn stop(&self) {
        *self.inner.runtime.lock() = None;
        let mut groups = self.inner.groups.lock();
        for slot in groups.iter_mut() {
            slot.stop();
            slot.stop_tx = None;
            slot.stopped = Arc::new(AtomicBool::new(false));
        }
    }

    /// Loads the rule files through the loader and applies them as one transaction.
    pub fn reload(&self) -> ReloadStatus {
        let _serial = self.inner.reload_lock.lock();
        let now = self.inner.opts.clock.now_ms();
        let result = match &self.inner.opts.loader {
            Some(load) => load(),
            None => Ok(RuleSet {
                groups: self.groups().into_iter().map(|g| g.group).collect(),
            }),
        };
        let status = {
            let mut st = self.inner.reload.lock();
            st.last_reload_ms = Some(now);
            match result {
                Ok(set) => {
                    let n = set.groups.len();
                    self.apply(set);
                    st.success = true;
                    st.last_success_ms = Some(now);
                    st.errors.clear();
                    tracing::info!(event_type = "system", groups = n, "rules loaded");
                }
                Err(errors) => {
                    for e in &errors {
                        tracing::error!(event_type = "error", error = %e, "rule file error; keeping the previous rules");
                    }
                    st.success = false;
                    st.errors = errors;
                }
            }
            st.clone()
        };
        if let Some(m) = &self.inner.opts.metrics {
            m.record_rules_reload(
                status.success,
                status.last_success_ms,
                self.inner.groups.lock().len(),
            );
        }
        status
    }

    /// The outcome of the last reload.
    pub fn reload_status(&self) -> ReloadStatus {
        self.inner.reload.lock().clone()
    }

    /// Replaces the running groups with `set`: unchanged groups keep task and state, changed ones
    /// take over their predecessor's state, removed ones stop and mark their series stale.
    pub fn apply(&self, set: RuleSet) {
        let opts = &self.inner.opts;
        let mut groups = self.inner.groups.lock();
        let mut old: HashMap<GroupKey, GroupSlot> =
            groups.drain(..).map(|s| (s.key.clone(), s)).collect();
        let mut next = Vec::with_capacity(set.groups.len());
        for g in set.groups {
            let key: GroupKey = (g.file.clone(), g.name.clone());
            match old.remove(&key) {
                Some(slot) if *slot.group == *g => next.push(slot),
                Some(slot) => {
                    slot.stop();
                    let mut runner = GroupRunner::new(Arc::clone(&g), opts.group.clone());
                    runner.copy_state_from(&slot.runner.lock());
                    next.push(self.slot(key, g, runner));
                }
                None => {
                    let mut runner = GroupRunner::new(Arc::clone(&g), opts.group.clone());
                    self.restore_group(&key, &mut runner);
                    next.push(self.slot(key, g, runner));
                }
            }
        }
        // Saved state is for the first rule set only; groups it names that no longer exist lose it.
        if let Some(p) = self.inner.restore.lock().take()
            && !p.rules.is_empty()
        {
            let lost: usize = p.rules.values().map(Vec::len).sum();
            tracing::warn!(
                event_type = "system",
                rules = lost,
                "saved alert state of rules no longer loaded was discarded"
            );
        }
        let now = opts.clock.now_ms();
        for (_, slot) in old {
            slot.stop();
            slot.runner.lock().mark_all_stale(now, &opts.store);
        }
        *groups = next;
    }

    /// Hands saved alert state to the first load of the groups: each group's alerts are restored
    /// with the restart rules of `opts` when it is loaded; groups already loaded get it now.
    pub fn restore_alert_state(&self, snap: RuleStateSnapshot, saved_ms: i64, opts: ForRestore) {
        let mut p = PendingRestore {
            saved_ms,
            down_at: HashMap::new(),
            rules: HashMap::new(),
            opts,
        };
        for g in snap.groups {
            if let Some(t) = g.last_eval_ms {
                p.down_at.insert((g.file, g.name), t);
            }
        }
        for r in snap.rules {
            p.rules
                .entry((r.file, r.group))
                .or_default()
                .push((r.rule, r.alerts));
        }
        *self.inner.restore.lock() = Some(p);
        let groups = self.inner.groups.lock();
        for slot in groups.iter() {
            self.restore_group(&slot.key, &mut slot.runner.lock());
        }
        if !groups.is_empty() {
            self.inner.restore.lock().take();
        }
    }

    /// Restores one group's saved alerts, if any are pending.
    fn restore_group(&self, key: &GroupKey, runner: &mut GroupRunner) {
        let mut pending = self.inner.restore.lock();
        let Some(p) = pending.as_mut() else { return };
        let Some(saved) = p.rules.remove(key) else {
            return;
        };
        let now = self.inner.opts.clock.now_ms();
        let down_at = p.down_at.get(key).copied().unwrap_or(p.saved_ms);
        let opts = p.opts;
        let mut outcome = RestoreOutcome::default();
        let matched = runner.restore_alerts(saved, |rule, alerts| {
            let (alerts, o) = restore_rule_alerts(alerts, rule.for_ms, down_at, now, opts);
            outcome.add(o);
            alerts
        });
        tracing::info!(event_type = "system", group = %key.1, file = %key.0.display(), rules = matched,
            alerts_kept = outcome.kept, alerts_shifted = outcome.shifted,
            alerts_dropped = outcome.dropped, downtime_seconds = (now - down_at).max(0) / 1000,
            "alert state restored");
    }

    /// Every group's alert state and last evaluation time, for durable state.
    pub fn snapshot_alert_state(&self) -> RuleStateSnapshot {
        let slots: Vec<(GroupKey, Arc<Mutex<GroupRunner>>)> = self
            .inner
            .groups
            .lock()
            .iter()
            .map(|s| (s.key.clone(), Arc::clone(&s.runner)))
            .collect();
        let mut out = RuleStateSnapshot::default();
        for ((file, name), runner) in slots {
            let r = runner.lock();
            out.groups.push(SavedGroup {
                file: file.clone(),
                name: name.clone(),
                last_eval_ms: r.last_eval_ts(),
            });
            for (rule, alerts) in r.alert_snapshot() {
                out.rules.push(SavedRuleAlerts {
                    file: file.clone(),
                    group: name.clone(),
                    rule,
                    alerts,
                });
            }
        }
        out
    }

    fn slot(&self, key: GroupKey, group: Arc<Group>, runner: GroupRunner) -> GroupSlot {
        let runner = Arc::new(Mutex::new(runner));
        let stopped = Arc::new(AtomicBool::new(false));
        let scheduling = self.inner.runtime.lock().is_some();
        let stop_tx = scheduling.then(|| self.spawn(Arc::clone(&runner), Arc::clone(&stopped)));
        GroupSlot {
            key,
            group,
            runner,
            stopped,
            stop_tx,
        }
    }

    fn spawn(
        &self,
        runner: Arc<Mutex<GroupRunner>>,
        stopped: Arc<AtomicBool>,
    ) -> tokio::sync::watch::Sender<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let handle = self.inner.runtime.lock().clone();
        if let Some(h) = handle {
            h.spawn(group_loop(Arc::clone(&self.inner), runner, stopped, rx));
        }
        tx
    }

    /// Evaluates the group named `name` now (the clock's current time) on this thread, through the
    /// same runner as its scheduled evaluations: the hook for event-driven evaluation.
    pub fn eval_group_now(&self, name: &str) -> Result<GroupEvalReport, ManagerError> {
        let runner = self
            .inner
            .groups
            .lock()
            .iter()
            .find(|s| s.key.1 == name)
            .map(|s| Arc::clone(&s.runner))
            .ok_or_else(|| ManagerError::NoSuchGroup(name.to_string()))?;
        let opts = &self.inner.opts;
        let t = opts.clock.now_ms();
        let report = {
            let mut r = runner.lock();
            let report = r.eval(t, &opts.engine, &opts.store);
            send_alerts(&self.inner, &mut r, t);
            report
        };
        observe_eval(&self.inner, &report);
        Ok(report)
    }

    /// Routes alerts of every later evaluation to `sink`.
    pub fn set_alert_sink(&self, sink: SinkOptions) {
        *self.inner.sink.lock() = Some(sink);
    }

    /// Delivery settings by alert name (`channels`, `escalation`, `depends_on`) from the loaded
    /// rules; several rules with one name contribute the union.
    pub fn rule_meta(&self) -> RuleMetaMap {
        let mut out = RuleMetaMap::new();
        for slot in self.inner.groups.lock().iter() {
            for rule in &slot.group.rules {
                let Rule::Alerting(a) = rule else { continue };
                let m = out.entry(a.name.clone()).or_default();
                for c in &a.channels {
                    if !m.channels.contains(c) {
                        m.channels.push(c.clone());
                    }
                }
                for d in &a.depends_on {
                    if !m.depends_on.contains(d) {
                        m.depends_on.push(d.clone());
                    }
                }
                if m.escalation.is_none() {
                    m.escalation.clone_from(&a.escalation);
                }
            }
        }
        out
    }

    /// A snapshot of every group's definition and runtime state, in load order.
    pub fn groups(&self) -> Vec<GroupStatus> {
        let runners: Vec<_> = self
            .inner
            .groups
            .lock()
            .iter()
            .map(|s| Arc::clone(&s.runner))
            .collect();
        runners.iter().map(|r| r.lock().status()).collect()
    }
}

/// Hands the alerts due for sending after an evaluation at `ts` to the sink, if one is set.
fn send_alerts(inner: &Inner, runner: &mut GroupRunner, ts: i64) {
    let Some(sink) = inner.sink.lock().clone() else {
        return;
    };
    let alerts = runner.alerts_to_send(ts, sink.resend_delay_ms, &sink.external_url);
    if !alerts.is_empty() {
        sink.sink.send(alerts);
    }
}

fn observe_eval(inner: &Inner, report: &GroupEvalReport) {
    if let Some(m) = &inner.opts.metrics {
        m.record_rule_group_eval(report);
    }
}

/// The scheduling loop of one group.
async fn group_loop(
    inner: Arc<Inner>,
    runner: Arc<Mutex<GroupRunner>>,
    stopped: Arc<AtomicBool>,
    mut stop_rx: tokio::sync::watch::Receiver<bool>,
) {
    let group = Arc::clone(runner.lock().group());
    let interval = group.interval_ms.max(1);
    let offset = group_offset_ms(&group.name, &group.file.to_string_lossy(), interval);
    let clock = Arc::clone(&inner.opts.clock);
    let mut due = first_eval_ts(clock.now_ms(), interval, offset);
    loop {
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let now = clock.now_ms();
        let Some(tick) = next_tick(due, now, interval) else {
            let wait = Duration::from_millis((due - now).clamp(1, interval).unsigned_abs());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop_rx.changed() => return,
            }
            continue;
        };
        if tick.missed > 0 {
            if let Some(m) = &inner.opts.metrics {
                m.record_rule_group_missed(tick.missed);
            }
            tracing::warn!(event_type = "performance", group = %group.name, missed = tick.missed,
                "rule group evaluation fell behind; skipped evaluations");
        }
        due = tick.next_ts;
        let (inner2, runner2, stopped2) = (
            Arc::clone(&inner),
            Arc::clone(&runner),
            Arc::clone(&stopped),
        );
        let res = tokio::task::spawn_blocking(move || {
            let mut r = runner2.lock();
            if stopped2.load(Ordering::SeqCst) {
                return None;
            }
            let report = r.eval(tick.eval_ts, &inner2.opts.engine, &inner2.opts.store);
            send_alerts(&inner2, &mut r, tick.eval_ts);
            Some(report)
        })
        .await;
        match res {
            Ok(Some(report)) => {
                for r in &report.rules {
                    if let Some(e) = &r.error {
                        tracing::warn!(event_type = "error", group = %group.name, rule = %r.name,
                            error = %e, "rule evaluation failed");
                    }
                }
                observe_eval(&inner, &report);
            }
            Ok(None) => return,
            Err(e) => {
                tracing::error!(event_type = "error", group = %group.name, error = %e, "rule evaluation task failed")
            }
        }
    }
}
