//! Restart restoration without a process: the rule manager takes saved alert state on its first
//! load (with Prometheus' `for` rules), and the pipeline replays delivered outbox rows and re-sends
//! only the newest pending notification of a group.

#[path = "support/http_sink.rs"]
mod http_sink;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_sink::HttpSink;
use klaxon::alert::AlertState;
use klaxon::clock::{ManualClock, SharedClock, SystemClock};
use klaxon::config::Config;
use klaxon::dispatch::{Alert, DispatchSnapshot, Notification};
use klaxon::eval::{Engine, EngineOptions};
use klaxon::model::{Labels, SampleValue};
use klaxon::notify::{NotifierOptions, NotifyMetrics};
use klaxon::pipeline::Pipeline;
use klaxon::rules::{GroupOptions, LoadOptions, Manager, ManagerOptions, RuleSet, load_str};
use klaxon::state::{ForRestore, OutboxEntry, OutboxRow};
use klaxon::store::Store;

const MIN: i64 = 60_000;

const RULES: &str = r#"
groups:
  - name: g
    interval: 1m
    rules:
      - alert: Slow
        expr: load > 1
        for: 25m
      - alert: Fast
        expr: load > 1
        for: 0s
        labels:
          kind: fast
"#;

fn load_set(yaml: &str) -> RuleSet {
    let r = load_str(yaml, Path::new("test.yml"), &LoadOptions::default());
    assert!(r.is_ok());
    r.rule_set
}

fn manager(store: &Arc<Store>, clock: &Arc<ManualClock>) -> Manager {
    Manager::new(ManagerOptions {
        engine: Engine::new(EngineOptions::default()),
        store: Arc::clone(store),
        clock: clock.clone(),
        metrics: None,
        group: GroupOptions::default(),
        loader: None,
    })
}

fn alert_of(m: &Manager, name: &str) -> klaxon::alert::ActiveAlert {
    m.groups()[0]
        .rules
        .iter()
        .flat_map(|r| r.alerts.iter())
        .find(|a| a.labels.get("alertname") == Some(name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} alert"))
}

#[test]
fn manager_restores_saved_alerts_on_first_load_with_the_restart_rules() {
    let store = Arc::new(Store::default());
    let clock = Arc::new(ManualClock::new(0));
    let m = manager(&store, &clock);
    m.apply(load_set(RULES));
    for i in 0..=20 {
        let t = i * MIN;
        clock.set(t);
        store
            .append(
                &Labels::from_pairs([("__name__", "load"), ("instance", "a")]),
                t,
                SampleValue::Float(2.0),
            )
            .unwrap();
        m.eval_group_now("g").unwrap();
    }
    assert_eq!(alert_of(&m, "Slow").state, AlertState::Pending);
    assert_eq!(alert_of(&m, "Fast").state, AlertState::Firing);
    let snap = m.snapshot_alert_state();
    assert_eq!(snap.groups[0].last_eval_ms, Some(20 * MIN));
    assert_eq!(snap.rules.len(), 2);

    // Restart three minutes later.
    clock.set(23 * MIN);
    let m2 = manager(&store, &clock);
    m2.restore_alert_state(snap.clone(), 20 * MIN, ForRestore::default());
    m2.apply(load_set(RULES));
    let slow = alert_of(&m2, "Slow");
    // for 25m, active since 0, down at 20m: 5m left < 10m grace, so it fires 10m after the
    // restart: active_at = 23m + 10m - 25m.
    assert_eq!(slow.active_at, 8 * MIN);
    assert_eq!(slow.state, AlertState::Pending);
    let fast = alert_of(&m2, "Fast");
    assert_eq!(fast.state, AlertState::Firing);
    assert_eq!(fast.active_at, 0, "firing alerts keep their start");
    assert_eq!(fast.fired_at, Some(0));

    // The saved state is for the first load only.
    m2.apply(load_set(&RULES.replace("for: 25m", "for: 26m")));
    assert_eq!(
        alert_of(&m2, "Slow").active_at,
        8 * MIN,
        "carried over, not re-restored"
    );

    // Past the outage tolerance nothing comes back.
    clock.set(90 * MIN);
    let m3 = manager(&store, &clock);
    m3.restore_alert_state(snap, 20 * MIN, ForRestore::default());
    m3.apply(load_set(RULES));
    assert!(m3.groups()[0].rules.iter().all(|r| r.alerts.is_empty()));
}

fn notification(now: i64) -> Notification {
    Notification {
        receiver: "hook".into(),
        group_key: "{}:{alertname=\"A\"}".into(),
        group_labels: Labels::from_pairs([("alertname", "A")]),
        alerts: vec![Alert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: Labels::from_pairs([("flush", now.to_string())]),
            starts_at: 1,
            ends_at: 0,
            generator_url: String::new(),
            updated_at: now,
            timeout: false,
        }],
        now_ms: now,
        external_url: String::new(),
        related: vec![],
        escalation: None,
        digest_of: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_resends_only_the_newest_pending_notification_of_a_group() {
    let mut sink = HttpSink::ok(None).await;
    let yaml = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1h\nreceivers:\n  \
         - name: hook\n    webhook_configs:\n      - url: \"{}\"\n",
        sink.url("/hook")
    );
    let cfg = Config::from_yaml(&yaml, Path::new("t.yml")).unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let p = Pipeline::new(
        cfg.compile_delivery().unwrap(),
        Arc::clone(&clock),
        Arc::new(NotifyMetrics::default()),
        NotifierOptions::default(),
        None,
    )
    .unwrap();
    let row = |now: i64, delivered: Option<(u64, i64)>| OutboxEntry {
        row: OutboxRow {
            integration: "hook/webhook[0]".into(),
            notification: notification(now),
            created_ms: now,
        },
        delivered,
    };
    let (replayed, resubmitted) = p
        .restore(
            DispatchSnapshot::default(),
            vec![row(200, None), row(100, None), row(50, Some((3, 60)))],
            clock.now_ms(),
        )
        .await;
    assert_eq!((replayed, resubmitted), (1, 1));
    let got = sink.next(Duration::from_secs(10)).await.expect("re-sent");
    assert_eq!(got.json()["alerts"][0]["annotations"]["flush"], "200");
    assert!(sink.next(Duration::from_millis(500)).await.is_none());
}
