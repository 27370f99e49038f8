//! Rule evaluation over a real store at explicit times: the alert state machine, recording-rule
//! write-back, `ALERTS` / `ALERTS_FOR_STATE`, errors, and state carry-over across a reload.

use std::path::Path;
use std::sync::Arc;

use klaxon::alert::AlertState;
use klaxon::clock::ManualClock;
use klaxon::eval::{Engine, EngineOptions};
use klaxon::model::{Labels, MatchOp, Matcher, SampleValue, is_stale_nan};
use klaxon::rules::{
    Group, GroupOptions, GroupRunner, LoadOptions, Manager, ManagerOptions, RuleSet, load_str,
};
use klaxon::store::{SeriesSource, Store};

const MIN: i64 = 60_000;

fn group(yaml: &str) -> Arc<Group> {
    let set = load_set(yaml);
    Arc::clone(&set.groups[0])
}

fn load_set(yaml: &str) -> RuleSet {
    let r = load_str(yaml, Path::new("test.yml"), &LoadOptions::default());
    assert!(
        r.is_ok(),
        "{:?}",
        r.errors.iter().map(|e| e.render()).collect::<Vec<_>>()
    );
    r.rule_set
}

struct Env {
    store: Store,
    engine: Engine,
}

impl Env {
    fn new() -> Env {
        Env {
            store: Store::default(),
            engine: Engine::new(EngineOptions::default()),
        }
    }

    fn push(&self, labels: &[(&str, &str)], t: i64, v: f64) {
        self.store
            .append(
                &Labels::from_pairs(labels.iter().copied()),
                t,
                SampleValue::Float(v),
            )
            .unwrap();
    }

    /// Non-stale samples of the series named `name` at exactly `t`.
    fn at(&self, name: &str, t: i64) -> Vec<(Labels, f64)> {
        let m = Matcher::new(MatchOp::Equal, "__name__", name).unwrap();
        let mut out: Vec<(Labels, f64)> = self
            .store
            .select(&[m], t, t)
            .into_iter()
            .filter_map(|s| {
                s.samples
                    .iter()
                    .find(|p| p.0 == t)
                    .and_then(|p| match &p.1 {
                        SampleValue::Float(f) if !is_stale_nan(*f) => Some((s.labels.clone(), *f)),
                        SampleValue::Float(_) => None,
                        SampleValue::Str(_) => None,
                    })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn state(r: &GroupRunner, i: usize) -> Vec<(String, AlertState)> {
    r.alert_state(i)
        .unwrap()
        .alerts()
        .map(|a| (a.labels.to_string(), a.state))
        .collect()
}

const ALERT_5M: &str = r#"
groups:
  - name: g
    interval: 1m
    rules:
      - alert: High
        expr: load > 1
        for: 5m
        labels:
          severity: page
        annotations:
          summary: "load is {{ $value }} on {{ $labels.instance }}"
"#;

#[test]
fn pending_to_firing_at_exactly_for_and_series_values() {
    let env = Env::new();
    let mut r = GroupRunner::new(group(ALERT_5M), GroupOptions::default());
    for i in 0..=5 {
        let t = i * MIN;
        env.push(&[("__name__", "load"), ("instance", "a")], t, 2.0);
        let rep = r.eval(t, &env.engine, &env.store);
        assert!(!rep.has_errors(), "{rep:?}");
        let st = r.alert_state(0).unwrap();
        let want = if i < 5 {
            AlertState::Pending
        } else {
            AlertState::Firing
        };
        assert_eq!(st.state(), want, "at {i}m");
        let alerts = env.at("ALERTS", t);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].0.get("alertstate"), Some(want.as_str()));
        assert_eq!(alerts[0].0.get("alertname"), Some("High"));
        assert_eq!(alerts[0].0.get("severity"), Some("page"));
        assert_eq!(alerts[0].0.get("instance"), Some("a"));
        assert_eq!(alerts[0].1, 1.0);
        let fs = env.at("ALERTS_FOR_STATE", t);
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].1, 0.0, "ActiveAt in seconds");
        assert_eq!(fs[0].0.get("alertstate"), None);
    }
    let a = r.alert_state(0).unwrap().snapshot().remove(0);
    assert_eq!(a.active_at, 0);
    assert_eq!(a.fired_at, Some(5 * MIN));
    assert_eq!(a.annotations["summary"], "load is 2 on a");
    // The pending series went stale when the alert switched to firing.
    let m = Matcher::new(MatchOp::Equal, "alertstate", "pending").unwrap();
    let pending = env.store.select(&[m], 5 * MIN, 5 * MIN);
    assert_eq!(pending.len(), 1);
    assert!(matches!(pending[0].samples[0].1, SampleValue::Float(f) if is_stale_nan(f)));
}

#[test]
fn for_zero_fires_at_once_and_resolves() {
    let env = Env::new();
    let g = group(
        r#"
groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
"#,
    );
    let mut r = GroupRunner::new(g, GroupOptions::default());
    env.push(&[("__name__", "up"), ("job", "x")], 0, 0.0);
    r.eval(0, &env.engine, &env.store);
    assert_eq!(r.alert_state(0).unwrap().state(), AlertState::Firing);
    env.push(&[("__name__", "up"), ("job", "x")], MIN, 1.0);
    r.eval(MIN, &env.engine, &env.store);
    let a = r.alert_state(0).unwrap().snapshot().remove(0);
    assert_eq!(a.state, AlertState::Inactive);
    assert_eq!(a.resolved_at, Some(MIN));
    // ALERTS{alertstate="firing"} ends with a stale marker.
    let m = Matcher::new(MatchOp::Equal, "__name__", "ALERTS").unwrap();
    let s = env.store.select(&[m], MIN, MIN);
    assert!(matches!(s[0].samples[0].1, SampleValue::Float(f) if is_stale_nan(f)));
    // Retained for 15 minutes, then deleted.
    r.eval(MIN + 15 * MIN, &env.engine, &env.store);
    assert_eq!(r.alert_state(0).unwrap().snapshot().len(), 1);
    r.eval(MIN + 16 * MIN, &env.engine, &env.store);
    assert!(r.alert_state(0).unwrap().snapshot().is_empty());
}

#[test]
fn pending_dropped_on_one_missed_eval() {
    let env = Env::new();
    let mut r = GroupRunner::new(group(ALERT_5M), GroupOptions::default());
    env.push(&[("__name__", "load"), ("instance", "a")], 0, 2.0);
    r.eval(0, &env.engine, &env.store);
    env.push(&[("__name__", "load"), ("instance", "a")], MIN, 0.5);
    r.eval(MIN, &env.engine, &env.store);
    assert!(r.alert_state(0).unwrap().snapshot().is_empty());
    env.push(&[("__name__", "load"), ("instance", "a")], 2 * MIN, 2.0);
    r.eval(2 * MIN, &env.engine, &env.store);
    let a = r.alert_state(0).unwrap().snapshot().remove(0);
    assert_eq!(a.active_at, 2 * MIN, "the for timer restarted");
}

#[test]
fn keep_firing_for() {
    let env = Env::new();
    let g = group(
        r#"
groups:
  - name: g
    rules:
      - alert: Flap
        expr: x > 0
        keep_firing_for: 2m
"#,
    );
    let mut r = GroupRunner::new(g, GroupOptions::default());
    env.push(&[("__name__", "x")], 0, 1.0);
    r.eval(0, &env.engine, &env.store);
    env.push(&[("__name__", "x")], MIN, 0.0);
    r.eval(MIN, &env.engine, &env.store);
    let a = r.alert_state(0).unwrap().snapshot().remove(0);
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.keep_firing_since, Some(MIN));
    r.eval(2 * MIN, &env.engine, &env.store);
    assert_eq!(r.alert_state(0).unwrap().state(), AlertState::Firing);
    r.eval(3 * MIN, &env.engine, &env.store);
    let a = r.alert_state(0).unwrap().snapshot().remove(0);
    assert_eq!(a.state, AlertState::Inactive);
    assert_eq!(a.resolved_at, Some(3 * MIN));
}

#[test]
fn limit_error_drops_all_alerts() {
    let env = Env::new();
    let g = group(
        r#"
groups:
  - name: g
    limit: 1
    rules:
      - alert: Many
        expr: x > 0
"#,
    );
    let mut r = GroupRunner::new(g, GroupOptions::default());
    env.push(&[("__name__", "x"), ("i", "1")], 0, 1.0);
    env.push(&[("__name__", "x"), ("i", "2")], 0, 1.0);
    let rep = r.eval(0, &env.engine, &env.store);
    let err = rep.rules[0].error.as_ref().unwrap().to_string();
    assert_eq!(err, "exceeded limit of 1 with 2 alerts");
    assert!(r.alert_state(0).unwrap().snapshot().is_empty());
    let st = r.status();
    assert_eq!(st.rules[0].health.as_str(), "err");
    assert_eq!(st.rules[0].last_error.as_deref(), Some(err.as_str()));
}

#[test]
fn duplicate_labelset_after_templating_is_an_error() {
    let env = Env::new();
    let g = group(
        r#"
groups:
  - name: g
    rules:
      - alert: Dup
        expr: x > 0
        labels:
          instance: fixed
"#,
    );
    let mut r = GroupRunner::new(g, GroupOptions::default());
    env.push(&[("__name__", "x"), ("instance", "1")], 0, 1.0);
    env.push(&[("__name__", "x"), ("instance", "2")], 0, 1.0);
    let rep = r.eval(0, &env.engine, &env.store);
    assert_eq!(
        rep.rules[0].error.as_ref().unwrap().to_string(),
        "vector contains metrics with the same labelset after applying alert labels"
    );
}

#[test]
fn templated_labels_form_the_identity() {
    let env = Env::new();
    let g = group(
        r#"
groups:
  - name: g
    rules:
      - alert: Tmpl
        expr: x > 0
        labels:
          where: "host-{{ $labels.instance }}"
"#,
    );
    let mut r = GroupRunner::new(g, GroupOptions::default());
    env.push(&[("__name__", "x"), ("instance", "1")], 0, 1.0);
    env.push(&[("__name__", "x"), ("instance", "2")], 0, 1.0);
    let rep = r.eval(0, &env.engine, &env.store);
    assert!(!rep.has_errors(), "{rep:?}");
    let got = state(&r, 0);
    assert_eq!(got.len(), 2);
    assert!(got[0].0.contains(r#"where="host-1""#), "{got:?}");
    assert!(got[1].0.contains(r#"where="host-2""#), "{got:?}");
}

#[test]
fn recording_rule_output_feeds_a_later_rule() {
    let env = Env::new();
    let g = group(
        r#"
groups:
  - name: g
    rules:
      - record: job:load:sum
        expr: sum by (job) (load)
        labels:
          source: rule
      - alert: JobHot
        expr: job:load:sum > 3
"#,
    );
    let mut r = GroupRunner::new(g, GroupOptions::default());
    env.push(&[("__name__", "load"), ("job", "a"), ("i", "1")], 0, 2.0);
    env.push(&[("__name__", "load"), ("job", "a"), ("i", "2")], 0, 2.0);
    let rep = r.eval(0, &env.engine, &env.store);
    assert!(!rep.has_errors(), "{rep:?}");
    let rec = env.at("job:load:sum", 0);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].1, 4.0);
    assert_eq!(rec[0].0.get("source"), Some("rule"));
    assert_eq!(r.alert_state(1).unwrap().state(), AlertState::Firing);
}

#[test]
fn state_carries_over_a_reload_with_a_changed_group() {
    let store = Arc::new(Store::default());
    let clock = Arc::new(ManualClock::new(0));
    let mgr = Manager::new(ManagerOptions {
        engine: Engine::new(EngineOptions::default()),
        store: Arc::clone(&store),
        clock: clock.clone(),
        metrics: None,
        group: GroupOptions::default(),
        loader: None,
    });
    mgr.apply(load_set(ALERT_5M));
    let step = |t: i64| {
        clock.set(t);
        store
            .append(
                &Labels::from_pairs([("__name__", "load"), ("instance", "a")]),
                t,
                SampleValue::Float(2.0),
            )
            .unwrap();
        let rep = mgr.eval_group_now("g").unwrap();
        assert!(!rep.has_errors(), "{rep:?}");
        mgr.groups()[0].rules.iter().map(|r| r.state).max().unwrap()
    };
    for i in 0..3 {
        assert_eq!(step(i * MIN), AlertState::Pending);
    }
    // Changed group: a new rule first, a new interval, a different annotation.
    let changed = ALERT_5M
        .replace("interval: 1m", "interval: 30s")
        .replace("load is", "load now is")
        .replace(
            "    rules:\n",
            "    rules:\n      - record: load:copy\n        expr: load\n",
        );
    mgr.apply(load_set(&changed));
    let g = &mgr.groups()[0];
    assert_eq!(g.group.interval_ms, 30_000);
    assert_eq!(g.rules[1].alerts.len(), 1, "alert carried over");
    assert_eq!(g.rules[1].alerts[0].active_at, 0);
    assert_eq!(step(3 * MIN), AlertState::Pending);
    assert_eq!(step(4 * MIN), AlertState::Pending);
    assert_eq!(step(5 * MIN), AlertState::Firing, "for timer not reset");
    let a = &mgr.groups()[0].rules[1].alerts[0];
    assert_eq!(a.annotations["summary"], "load now is 2 on a");
    // Re-applying the same set keeps the runner and its state.
    mgr.apply(load_set(&changed));
    assert_eq!(mgr.groups()[0].rules[1].state, AlertState::Firing);
    assert_eq!(mgr.groups()[0].last_eval_ts, Some(5 * MIN));
    // Removing the group marks its series stale.
    clock.set(6 * MIN);
    mgr.apply(RuleSet::default());
    assert!(mgr.groups().is_empty());
    let m = Matcher::new(MatchOp::Equal, "__name__", "ALERTS").unwrap();
    let s = store.select(&[m], 6 * MIN, 6 * MIN);
    assert!(matches!(s[0].samples[0].1, SampleValue::Float(f) if is_stale_nan(f)));
}

#[test]
fn hours_of_evaluation_are_fast() {
    let env = Env::new();
    let mut r = GroupRunner::new(group(ALERT_5M), GroupOptions::default());
    let started = std::time::Instant::now();
    for i in 0..(6 * 60) {
        let t = i * MIN;
        let v = if (i / 30) % 2 == 0 { 2.0 } else { 0.0 };
        env.push(&[("__name__", "load"), ("instance", "a")], t, v);
        r.eval(t, &env.engine, &env.store);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_evaluates_on_aligned_slots_of_the_clock() {
    let store = Arc::new(Store::default());
    let clock = Arc::new(ManualClock::new(1_000_000));
    let mgr = Manager::new(ManagerOptions {
        engine: Engine::new(EngineOptions::default()),
        store: Arc::clone(&store),
        clock: clock.clone(),
        metrics: None,
        group: GroupOptions::default(),
        loader: None,
    });
    mgr.start();
    mgr.apply(load_set(
        "groups:\n  - name: s\n    interval: 1s\n    rules:\n      - record: one\n        expr: vector(1)\n",
    ));
    let offset = klaxon::rules::group::group_offset_ms("s", "test.yml", 1_000);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let wait_past = |min: i64| {
        let mgr = mgr.clone();
        async move {
            loop {
                if let Some(t) = mgr.groups()[0].last_eval_ts.filter(|t| *t > min) {
                    return t;
                }
                assert!(std::time::Instant::now() < deadline, "never evaluated");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    // Let the task read the clock, then move one interval: it evaluates at the next aligned slot.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    clock.advance(1_000);
    let first = wait_past(0).await;
    assert_eq!(
        (first - offset).rem_euclid(1_000),
        0,
        "aligned to the group's offset"
    );
    assert!(
        first > 1_000_000 && first <= 1_001_000,
        "first slot: {first}"
    );
    // Jump ahead ten intervals: one evaluation, at the latest slot (missed ones are skipped).
    clock.set(1_011_000);
    let last = wait_past(first).await;
    assert_eq!((last - offset).rem_euclid(1_000), 0);
    assert!(last > 1_010_000 && last <= 1_011_000, "latest slot: {last}");
    mgr.stop();
}
