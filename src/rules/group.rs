//! One rule group's evaluation, as a pure synchronous step: [`GroupRunner::eval`] runs every rule
//! of the group in order at one timestamp over a real store, writes recording-rule results, `ALERTS`
//! and `ALERTS_FOR_STATE` back, and marks series that disappeared stale (Prometheus'
//! `rules/group.go`). No tokio and no wall clock: the scheduler (`manager`) and the `promtool test
//! rules` runner both call it with explicit times.
//!
//! Scheduling math lives here too as pure functions: [`group_offset_ms`] spreads groups over their
//! interval by a hash of name and file, [`aligned_eval_ts`] and [`next_tick`] give the timestamps.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::alert::{
    ActiveAlert, AlertEvalContext, AlertEvalError, AlertRuleState, AlertState, AlertTemplater,
    DEFAULT_RESOLVED_RETENTION_MS, GoTemplater, QuerySample, RuleQuery,
};
use crate::eval::{Engine, EvalError, Sample, Value};
use crate::model::{Labels, LabelsBuilder, METRIC_NAME, SampleValue, stale_nan};
use crate::store::{AppendError, Store};

use super::{AlertingRule, Group, RecordingRule, Rule};

/// How many past evaluations each rule remembers for the API.
pub const DEFAULT_HISTORY_LEN: usize = 20;

/// Knobs of group evaluation that come from the process, not the rule file.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// Renders alert label and annotation templates.
    pub templater: Arc<dyn AlertTemplater>,
    /// How long resolved alerts are kept (Prometheus: 15m).
    pub resolved_retention_ms: i64,
    /// Evaluations remembered per rule (`evaluations` in `/api/v1/rules`).
    pub history_len: usize,
    /// Told about every alert state change (durable history); `None` skips the bookkeeping.
    pub events: Option<Arc<dyn AlertEvents>>,
}

/// One alert's state change in one evaluation, for the durable history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    /// Evaluation timestamp (ms).
    pub at_ms: i64,
    /// The alert's labels.
    pub labels: Labels,
    /// State before the evaluation (`Inactive` for a new alert).
    pub from: AlertState,
    /// State after it (`Inactive` for resolved or dropped alerts).
    pub to: AlertState,
}

/// Receives the alert state changes of rule evaluations.
pub trait AlertEvents: Send + Sync + std::fmt::Debug {
    /// Takes the changes of one rule's evaluation (never empty).
    fn changed(&self, changes: Vec<AlertChange>);
}

/// Identity of an alerting rule inside its group that survives restarts: name, a hash of its
/// label templates, and its position among rules of the same name and labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleKey {
    /// Alert name.
    pub name: String,
    /// 16 hex digits of the label templates' hash.
    pub labels_hash: String,
    /// Index among the group's rules with the same name and labels.
    pub ordinal: usize,
}

/// The [`RuleKey`] of every rule of `group` (`None` for recording rules).
fn rule_keys(group: &Group) -> Vec<Option<RuleKey>> {
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    group
        .rules
        .iter()
        .map(|r| {
            let Rule::Alerting(a) = r else { return None };
            let labels_hash = format!(
                "{:016x}",
                Labels::from_pairs(a.labels.iter().map(|(n, v)| (n, v))).hash64()
            );
            let n = seen
                .entry((a.name.clone(), labels_hash.clone()))
                .or_insert(0);
            let key = RuleKey {
                name: a.name.clone(),
                labels_hash,
                ordinal: *n,
            };
            *n += 1;
            Some(key)
        })
        .collect()
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            templater: Arc::new(GoTemplater::default()),
            resolved_retention_ms: DEFAULT_RESOLVED_RETENTION_MS,
            history_len: DEFAULT_HISTORY_LEN,
            events: None,
        }
    }
}

/// Why one rule's evaluation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleEvalError {
    /// The query failed.
    #[error(transparent)]
    Query(#[from] EvalError),
    /// The alert state machine rejected the result (duplicate label sets, limit).
    #[error(transparent)]
    Alert(#[from] AlertEvalError),
    /// The expression returned something other than a vector or scalar.
    #[error("rule result is not a vector or scalar")]
    NotVector,
    /// Two output series of a recording rule share a label set.
    #[error("vector contains metrics with the same labelset after applying rule labels")]
    RecordingDuplicate,
    /// A recording rule produced more series than the group's `limit`.
    #[error("exceeded limit of {limit} with {count} series")]
    RecordingLimit {
        /// The group's limit.
        limit: usize,
        /// Series produced.
        count: usize,
    },
}

/// Whether a rule's last evaluation worked (`health` in `/api/v1/rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleHealth {
    /// Not evaluated yet.
    #[default]
    Unknown,
    /// Last evaluation succeeded.
    Ok,
    /// Last evaluation failed.
    Err,
}

impl RuleHealth {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleHealth::Unknown => "unknown",
            RuleHealth::Ok => "ok",
            RuleHealth::Err => "err",
        }
    }
}

/// One past evaluation of a rule (klaxon's `evaluations` extension).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRecord {
    /// Evaluation timestamp (ms).
    pub time_ms: i64,
    /// Wall time the evaluation took.
    pub duration: Duration,
    /// Samples produced.
    pub samples: usize,
    /// The error, if it failed.
    pub error: Option<String>,
}

/// The outcome of one rule within a group evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleEvalReport {
    /// Alert name or recorded metric.
    pub name: String,
    /// Samples produced (recorded series, or `ALERTS` + `ALERTS_FOR_STATE` samples).
    pub samples: usize,
    /// The error, if the rule failed.
    pub error: Option<RuleEvalError>,
    /// Wall time the rule took.
    pub duration: Duration,
}

/// The outcome of one group evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEvalReport {
    /// The evaluation timestamp (alert state transitions happen here).
    pub ts: i64,
    /// The query timestamp (`ts - query_offset`): results and stale markers are written here.
    pub query_ts: i64,
    /// Per rule, in group order.
    pub rules: Vec<RuleEvalReport>,
    /// Samples appended to the store (including stale markers).
    pub appended: usize,
    /// Samples the store refused (out of order, invalid, series limit).
    pub append_failures: usize,
    /// Wall time of the whole group.
    pub duration: Duration,
}

impl GroupEvalReport {
    /// Whether any rule failed.
    pub fn has_errors(&self) -> bool {
        self.rules.iter().any(|r| r.error.is_some())
    }
}

/// Per-rule runtime state.
#[derive(Debug, Clone, Default)]
struct RuleRuntime {
    health: RuleHealth,
    last_error: Option<String>,
    last_eval_ts: Option<i64>,
    last_duration: Duration,
    alerts: Option<AlertRuleState>,
    series_prev: HashSet<Labels>,
    history: VecDeque<EvalRecord>,
}

/// A read-only view of one rule's runtime state, for the APIs.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    /// Health of the last evaluation.
    pub health: RuleHealth,
    /// Last error message.
    pub last_error: Option<String>,
    /// Timestamp of the last evaluation.
    pub last_eval_ts: Option<i64>,
    /// Duration of the last evaluation.
    pub last_duration: Duration,
    /// The rule's alerts (alerting rules), including retained resolved ones.
    pub alerts: Vec<ActiveAlert>,
    /// The rule's state (highest alert state; `Inactive` for recording rules).
    pub state: AlertState,
    /// Recent evaluations, oldest first.
    pub history: Vec<EvalRecord>,
}

/// A read-only view of one group's runtime state, for the APIs.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    /// The group definition.
    pub group: Arc<Group>,
    /// Per rule, in group order.
    pub rules: Vec<RuleStatus>,
    /// Timestamp of the last evaluation.
    pub last_eval_ts: Option<i64>,
    /// Duration of the last evaluation.
    pub last_duration: Duration,
}

/// Evaluates one group; owns its rules' alert state and previously written series.
#[derive(Debug, Clone)]
pub struct GroupRunner {
    group: Arc<Group>,
    opts: GroupOptions,
    rules: Vec<RuleRuntime>,
    last_eval_ts: Option<i64>,
    last_duration: Duration,
}

/// Template `query` support over the evaluating engine and store.
struct StoreQuery<'a> {
    engine: &'a Engine,
    store: &'a Store,
}

impl RuleQuery for StoreQuery<'_> {
    fn query(&self, q: &str, t_ms: i64) -> Result<Vec<QuerySample>, String> {
        let expr = crate::expr::parse_and_check(q).map_err(|d| d.to_string())?;
        let out = self
            .engine
            .instant(self.store, &expr, t_ms)
            .map_err(|e| e.to_string())?;
        Ok(match out.value {
            Value::Vector(v) => v
                .into_iter()
                .map(|s| QuerySample {
                    labels: s.labels,
                    value: s.value,
                })
                .collect(),
            Value::Scalar(f) => vec![QuerySample {
                labels: Labels::empty(),
                value: SampleValue::Float(f),
            }],
            Value::String(s) => vec![QuerySample {
                labels: Labels::empty(),
                value: SampleValue::Str(s.into()),
            }],
            Value::Matrix(_) => return Err("query returned a range vector".into()),
        })
    }
}

impl GroupRunner {
    /// A runner for `group` with fresh state.
    pub fn new(group: Arc<Group>, opts: GroupOptions) -> Self {
        let rules = group
            .rules
            .iter()
            .map(|r| RuleRuntime {
                alerts: matches!(r, Rule::Alerting(_))
                    .then(|| AlertRuleState::new(opts.resolved_retention_ms)),
                ..RuleRuntime::default()
            })
            .collect();
        GroupRunner {
            group,
            opts,
            rules,
            last_eval_ts: None,
            last_duration: Duration::ZERO,
        }
    }

    /// The group definition.
    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// Timestamp of the last evaluation.
    pub fn last_eval_ts(&self) -> Option<i64> {
        self.last_eval_ts
    }

    /// Takes over state from the runner of the previous version of this group (reload): for each
    /// rule, the first unused old rule with the same kind, name and labels gives its alerts,
    /// health, history and written series, so `for` timers and firing alerts survive.
    pub fn copy_state_from(&mut self, old: &GroupRunner) {
        let mut used = vec![false; old.group.rules.len()];
        for (i, rule) in self.group.rules.iter().enumerate() {
            let found = old
                .group
                .rules
                .iter()
                .enumerate()
                .find(|(j, o)| !used[*j] && same_identity(rule, o));
            let Some((j, _)) = found else { continue };
            used[j] = true;
            if let (Some(new_rt), Some(old_rt)) = (self.rules.get_mut(i), old.rules.get(j)) {
                let alerts = match (&mut new_rt.alerts, &old_rt.alerts) {
                    (Some(a), Some(o)) => {
                        a.restore(o.snapshot());
                        new_rt.alerts.take()
                    }
                    _ => new_rt.alerts.take(),
                };
                *new_rt = RuleRuntime {
                    alerts,
                    ..old_rt.clone()
                };
            }
        }
        self.last_eval_ts = old.last_eval_ts;
        self.last_duration = old.last_duration;
    }

    /// The alert state of the rule at `index` (alerting rules only).
    pub fn alert_state(&self, index: usize) -> Option<&AlertRuleState> {
        self.rules.get(index).and_then(|r| r.alerts.as_ref())
    }

    /// Mutable alert state of the rule at `index`, for restoring durable state.
    pub fn alert_state_mut(&mut self, index: usize) -> Option<&mut AlertRuleState> {
        self.rules.get_mut(index).and_then(|r| r.alerts.as_mut())
    }

    /// Every alerting rule's alerts by [`RuleKey`] (rules without alerts left out), for durable
    /// state.
    pub fn alert_snapshot(&self) -> Vec<(RuleKey, Vec<ActiveAlert>)> {
        rule_keys(&self.group)
            .into_iter()
            .zip(&self.rules)
            .filter_map(|(k, rt)| {
                let alerts = rt.alerts.as_ref()?.snapshot();
                (!alerts.is_empty()).then_some((k?, alerts))
            })
            .collect()
    }

    /// Puts saved alerts back into the rules they came from (matched by [`RuleKey`]), each
    /// through `restore` (the restart rules for `for` state); returns how many rules matched.
    pub fn restore_alerts(
        &mut self,
        saved: Vec<(RuleKey, Vec<ActiveAlert>)>,
        mut restore: impl FnMut(&AlertingRule, Vec<ActiveAlert>) -> Vec<ActiveAlert>,
    ) -> usize {
        let keys = rule_keys(&self.group);
        let mut by_key: HashMap<RuleKey, Vec<ActiveAlert>> = saved.into_iter().collect();
        let mut matched = 0;
        for ((key, rule), rt) in keys.iter().zip(&self.group.rules).zip(&mut self.rules) {
            let (Some(key), Rule::Alerting(rule)) = (key, rule) else {
                continue;
            };
            let Some(alerts) = by_key.remove(key) else {
                continue;
            };
            matched += 1;
            let alerts = restore(rule, alerts);
            rt.alerts
                .get_or_insert_with(|| AlertRuleState::new(self.opts.resolved_retention_ms))
                .restore(alerts);
        }
        matched
    }

    /// A read-only copy of the runtime state, for the APIs.
    pub fn status(&self) -> GroupStatus {
        GroupStatus {
            group: Arc::clone(&self.group),
            rules: self
                .rules
                .iter()
                .map(|r| RuleStatus {
                    health: r.health,
                    last_error: r.last_error.clone(),
                    last_eval_ts: r.last_eval_ts,
                    last_duration: r.last_duration,
                    alerts: r.alerts.as_ref().map(|a| a.snapshot()).unwrap_or_default(),
                    state: r.alerts.as_ref().map(|a| a.state()).unwrap_or_default(),
                    history: r.history.iter().cloned().collect(),
                })
                .collect(),
            last_eval_ts: self.last_eval_ts,
            last_duration: self.last_duration,
        }
    }

    /// Evaluates every rule in order at `ts` (queries at `ts - query_offset`), writing results into
    /// `store` so later rules of the group see them.
    pub fn eval(&mut self, ts: i64, engine: &Engine, store: &Store) -> GroupEvalReport {
        let started = Instant::now();
        let group = Arc::clone(&self.group);
        let query_ts = ts - group.query_offset_ms;
        let query = StoreQuery { engine, store };
        let mut report = GroupEvalReport {
            ts,
            query_ts,
            rules: Vec::with_capacity(group.rules.len()),
            appended: 0,
            append_failures: 0,
            duration: Duration::ZERO,
        };
        for (rule, rt) in group.rules.iter().zip(self.rules.iter_mut()) {
            let rule_started = Instant::now();
            let before = self
                .opts
                .events
                .as_ref()
                .and(rt.alerts.as_ref())
                .map(states);
            let result = eval_rule(
                &group, rule, rt, ts, query_ts, engine, store, &query, &self.opts,
            );
            if let (Some(events), Some(before)) = (&self.opts.events, before) {
                let changes = state_changes(before, rt.alerts.as_ref(), ts);
                if !changes.is_empty() {
                    events.changed(changes);
                }
            }
            let (samples, error) = match result {
                Ok(out) => {
                    let n = out.len();
                    let mut returned = HashSet::with_capacity(n);
                    for (labels, v) in out {
                        match store.append(&labels, query_ts, v) {
                            Ok(_) => {
                                report.appended += 1;
                                returned.insert(labels);
                            }
                            Err(AppendError::OutOfOrder { .. }) => {
                                report.append_failures += 1;
                                returned.insert(labels);
                            }
                            Err(_) => report.append_failures += 1,
                        }
                    }
                    for gone in rt.series_prev.difference(&returned) {
                        match store.append(gone, query_ts, SampleValue::Float(stale_nan())) {
                            Ok(_) => report.appended += 1,
                            Err(_) => report.append_failures += 1,
                        }
                    }
                    rt.series_prev = returned;
                    (n, None)
                }
                Err(e) => (0, Some(e)),
            };
            let took = rule_started.elapsed();
            rt.health = if error.is_some() {
                RuleHealth::Err
            } else {
                RuleHealth::Ok
            };
            rt.last_error = error.as_ref().map(|e| e.to_string());
            rt.last_eval_ts = Some(ts);
            rt.last_duration = took;
            if self.opts.history_len > 0 {
                while rt.history.len() >= self.opts.history_len {
                    rt.history.pop_front();
                }
                rt.history.push_back(EvalRecord {
                    time_ms: ts,
                    duration: took,
                    samples,
                    error: rt.last_error.clone(),
                });
            }
            report.rules.push(RuleEvalReport {
                name: rule.name().to_string(),
                samples,
                error,
                duration: took,
            });
        }
        self.last_eval_ts = Some(ts);
        self.last_duration = started.elapsed();
        report.duration = self.last_duration;
        report
    }

    /// Prometheus' `sendAlerts`: every firing alert not sent within `resend_delay_ms`, and every
    /// alert resolved since its last send, as delivery alerts; marks them sent with a validity of
    /// four evaluation intervals (or resend delays), so a missed evaluation does not resolve them.
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        external_url: &str,
    ) -> Vec<crate::dispatch::Alert> {
        let delta = self.group.interval_ms.max(resend_delay_ms);
        let mut out = Vec::new();
        for (rule, rt) in self.group.rules.iter().zip(self.rules.iter_mut()) {
            let (Rule::Alerting(rule), Some(state)) = (rule, rt.alerts.as_mut()) else {
                continue;
            };
            let due: Vec<_> = state
                .alerts()
                .filter(|a| needs_sending(a, ts, resend_delay_ms))
                .cloned()
                .collect();
            for a in due {
                let valid_until = ts + 4 * delta;
                state.mark_sent(&a.labels, ts, valid_until);
                out.push(crate::dispatch::Alert {
                    labels: a.labels.clone(),
                    annotations: Labels::from_pairs(a.annotations.iter()),
                    starts_at: a.fired_at.unwrap_or(a.active_at),
                    ends_at: a.resolved_at.unwrap_or(valid_until),
                    generator_url: generator_url(external_url, &rule.expr_text),
                    updated_at: ts,
                    timeout: false,
                });
            }
        }
        out
    }

    /// Writes stale markers at `ts` for every series the group wrote last time (group removed).
    pub fn mark_all_stale(&mut self, ts: i64, store: &Store) {
        for rt in &mut self.rules {
            for labels in rt.series_prev.drain() {
                let _ = store.append(&labels, ts, SampleValue::Float(stale_nan()));
            }
        }
    }
}

/// Each alert's state, before an evaluation.
fn states(s: &AlertRuleState) -> HashMap<Labels, AlertState> {
    s.alerts().map(|a| (a.labels.clone(), a.state)).collect()
}

/// What changed between `before` and the state after an evaluation at `ts`.
fn state_changes(
    mut before: HashMap<Labels, AlertState>,
    after: Option<&AlertRuleState>,
    ts: i64,
) -> Vec<AlertChange> {
    let mut out = Vec::new();
    for a in after.into_iter().flat_map(AlertRuleState::alerts) {
        let from = before.remove(&a.labels).unwrap_or_default();
        if from != a.state {
            out.push(AlertChange {
                at_ms: ts,
                labels: a.labels.clone(),
                from,
                to: a.state,
            });
        }
    }
    let mut gone: Vec<(Labels, AlertState)> = before
        .into_iter()
        .filter(|(_, s)| *s != AlertState::Inactive)
        .collect();
    gone.sort();
    out.extend(gone.into_iter().map(|(labels, from)| AlertChange {
        at_ms: ts,
        labels,
        from,
        to: AlertState::Inactive,
    }));
    out
}

/// Prometheus' `needsSending`: firing alerts every resend delay, resolved ones once more.
fn needs_sending(a: &crate::alert::ActiveAlert, ts: i64, resend_delay_ms: i64) -> bool {
    if a.state == crate::alert::AlertState::Pending {
        return false;
    }
    if a.state == crate::alert::AlertState::Inactive && a.resolved_at.is_none() {
        return false;
    }
    let last = a.last_sent_at;
    if let (Some(resolved), Some(sent)) = (a.resolved_at, last)
        && resolved > sent
    {
        return true;
    }
    match last {
        None => true,
        Some(sent) => sent + resend_delay_ms < ts,
    }
}

/// Prometheus' generator URL: the expression in the graph page of `external_url`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let mut enc = String::with_capacity(expr.len() * 3);
    for b in expr.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!(
        "{}/graph?g0.expr={enc}&g0.tab=1",
        external_url.trim_end_matches('/')
    )
}

/// Whether two rules are "the same rule" for reload carry-over: kind, name and labels.
fn same_identity(a: &Rule, b: &Rule) -> bool {
    match (a, b) {
        (Rule::Alerting(x), Rule::Alerting(y)) => x.name == y.name && x.labels == y.labels,
        (Rule::Recording(x), Rule::Recording(y)) => x.record == y.record && x.labels == y.labels,
        _ => false,
    }
}

/// Runs one rule's query and turns the result into the samples to write.
#[allow(clippy::too_many_arguments)]
fn eval_rule(
    group: &Group,
    rule: &Rule,
    rt: &mut RuleRuntime,
    ts: i64,
    query_ts: i64,
    engine: &Engine,
    store: &Store,
    query: &StoreQuery<'_>,
    opts: &GroupOptions,
) -> Result<Vec<(Labels, SampleValue)>, RuleEvalError> {
    let out = engine.instant(store, rule.expr(), query_ts)?;
    let samples = match out.value {
        Value::Vector(v) => v,
        Value::Scalar(f) => vec![Sample {
            labels: Labels::empty(),
            t: query_ts,
            value: SampleValue::Float(f),
        }],
        _ => return Err(RuleEvalError::NotVector),
    };
    match rule {
        Rule::Recording(r) => record(group, r, samples),
        Rule::Alerting(r) => {
            let state = rt
                .alerts
                .get_or_insert_with(|| AlertRuleState::new(opts.resolved_retention_ms));
            let cx = AlertEvalContext {
                ts,
                limit: group.limit,
                group_labels: &group.labels,
                templater: opts.templater.as_ref(),
                query: Some(query),
            };
            Ok(state.eval(r, &samples, &cx)?)
        }
    }
}

/// Renames a recording rule's result and applies group and rule labels (string samples are kept:
/// klaxon's store holds string series).
fn record(
    group: &Group,
    r: &RecordingRule,
    samples: Vec<Sample>,
) -> Result<Vec<(Labels, SampleValue)>, RuleEvalError> {
    let mut out = Vec::with_capacity(samples.len());
    let mut seen = HashSet::with_capacity(samples.len());
    for s in samples {
        let mut lb = LabelsBuilder::new(&s.labels);
        lb.set(METRIC_NAME, &r.record);
        for (n, v) in group.labels.iter().chain(r.labels.iter()) {
            lb.set(n, v);
        }
        let labels = lb.build();
        if !seen.insert(labels.clone()) {
            return Err(RuleEvalError::RecordingDuplicate);
        }
        out.push((labels, s.value));
    }
    if group.limit > 0 && out.len() > group.limit {
        return Err(RuleEvalError::RecordingLimit {
            limit: group.limit,
            count: out.len(),
        });
    }
    Ok(out)
}

/// The group's stable offset within its interval, from a hash of its name and file (Prometheus:
/// the hash of the label set `{name, file}` modulo the interval), so groups do not all evaluate at once.
pub fn group_offset_ms(name: &str, file: &str, interval_ms: i64) -> i64 {
    if interval_ms <= 0 {
        return 0;
    }
    let h = Labels::from_pairs([("name", name), ("file", file)]).hash64();
    (h % interval_ms.unsigned_abs()) as i64
}

/// The latest evaluation slot at or before `now`: `floor((now - offset) / interval) * interval + offset`.
pub fn aligned_eval_ts(now_ms: i64, interval_ms: i64, offset_ms: i64) -> i64 {
    if interval_ms <= 0 {
        return now_ms;
    }
    (now_ms - offset_ms).div_euclid(interval_ms) * interval_ms + offset_ms
}

/// The scheduler's decision after waking at `now` for the slot `due`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Evaluate at this timestamp (the latest slot that has arrived).
    pub eval_ts: i64,
    /// Slots skipped because evaluation fell behind.
    pub missed: u64,
    /// The next slot to wait for.
    pub next_ts: i64,
}

/// Given the slot `due` the scheduler waited for and the time `now` it woke, decides what to evaluate:
/// the latest slot `<= now` (skipping missed ones, as Prometheus does), or `None` if woken early.
pub fn next_tick(due_ms: i64, now_ms: i64, interval_ms: i64) -> Option<Tick> {
    if now_ms < due_ms {
        return None;
    }
    let interval = interval_ms.max(1);
    let missed = (now_ms - due_ms) / interval;
    let eval_ts = due_ms + missed * interval;
    Some(Tick {
        eval_ts,
        missed: missed.unsigned_abs(),
        next_ts: eval_ts + interval,
    })
}

/// The first slot a newly started group waits for: the first aligned slot after `now`.
pub fn first_eval_ts(now_ms: i64, interval_ms: i64, offset_ms: i64) -> i64 {
    aligned_eval_ts(now_ms, interval_ms, offset_ms) + interval_ms.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_in_range() {
        let a = group_offset_ms("g", "f.yml", 15_000);
        assert_eq!(a, group_offset_ms("g", "f.yml", 15_000));
        assert!((0..15_000).contains(&a));
        assert_eq!(group_offset_ms("g", "f.yml", 0), 0);
    }

    #[test]
    fn alignment() {
        assert_eq!(aligned_eval_ts(100_000, 15_000, 2_000), 92_000);
        assert_eq!(aligned_eval_ts(92_000, 15_000, 2_000), 92_000);
        assert_eq!(aligned_eval_ts(1_000, 15_000, 2_000), -13_000);
        assert_eq!(first_eval_ts(100_000, 15_000, 2_000), 107_000);
    }

    #[test]
    fn ticks() {
        assert_eq!(next_tick(10_000, 9_999, 1_000), None);
        assert_eq!(
            next_tick(10_000, 10_000, 1_000),
            Some(Tick {
                eval_ts: 10_000,
                missed: 0,
                next_ts: 11_000
            })
        );
        assert_eq!(
            next_tick(10_000, 13_500, 1_000),
            Some(Tick {
                eval_ts: 13_000,
                missed: 3,
                next_ts: 14_000
            })
        );
    }
}
