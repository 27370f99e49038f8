//! The dispatcher as a pure state machine: hours of Alertmanager timers driven by a manual clock.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use klaxon::clock::{Clock, ManualClock};
use klaxon::config::{CompiledDelivery, Config};
use klaxon::dispatch::{
    Alert, AlertFilter, Dispatch, DispatchError, Dispatcher, PostableMatcher, PostableSilence,
    PostedAlert, RuleMeta,
};
use klaxon::model::{Labels, MatchOp, Matcher};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const S: i64 = 1_000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

const BASE: &str = r#"
global:
  resolve_timeout: 5m
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - receiver: pager
      matchers: ['severity="page"']
      continue: true
    - receiver: db
      matchers: ['team="db"']
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/team"}]
  - name: pager
    webhook_configs: [{url: "http://127.0.0.1:9/pager", send_resolved: false}]
  - name: db
    webhook_configs: [{url: "http://127.0.0.1:9/db"}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
"#;

fn delivery(yaml: &str) -> Arc<CompiledDelivery> {
    let cfg = Config::from_yaml(yaml, Path::new("test.yml")).expect("config parses");
    Arc::new(cfg.compile_delivery().expect("config compiles"))
}

/// The dispatcher plus the clock and "notifier" of a test: every dispatch is reported delivered
/// at the time it was produced unless a test says otherwise.
struct Harness {
    d: Dispatcher,
    clock: ManualClock,
}

impl Harness {
    fn new(yaml: &str) -> Self {
        Harness {
            d: Dispatcher::new(delivery(yaml)),
            clock: ManualClock::new(T0),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn set(&self, t: i64) {
        self.clock.set(t);
    }

    /// Posts one alert through the API path (validation, defaults) at the current time.
    fn post(&self, pairs: &[(&str, &str)], starts: Option<i64>, ends: Option<i64>) {
        let now = self.now();
        let posted = PostedAlert {
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::from([("summary".to_string(), "s".to_string())]),
            starts_at: starts,
            ends_at: ends,
            generator_url: "http://prom/graph".into(),
        };
        let alerts = self.d.normalize_posted(vec![posted], now).unwrap();
        self.d.put_alerts(alerts, now);
    }

    /// A firing alert valid for a day (no resolve_timeout in play).
    fn fire(&self, pairs: &[(&str, &str)]) {
        self.post(pairs, Some(self.now()), Some(self.now() + 24 * H));
    }

    fn resolve(&self, pairs: &[(&str, &str)]) {
        self.post(pairs, Some(T0 - H), Some(self.now()));
    }

    fn tick(&self) -> Vec<Dispatch> {
        self.d.tick(self.now())
    }

    fn deliver(&self, ds: &[Dispatch]) {
        for d in ds {
            self.d
                .delivered(&d.integration, &d.notification, true, false, self.now());
        }
    }

    /// Ticks at every deadline up to and including `until`, delivering everything; returns
    /// what was sent, with the time.
    fn run_until(&self, until: i64) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        while let Some(t) = self.d.next_deadline() {
            if t > until {
                break;
            }
            self.set(t.max(self.now()));
            let ds = self.tick();
            self.deliver(&ds);
            out.extend(ds.iter().map(|d| (self.now() - T0, show(d))));
        }
        self.set(until.max(self.now()));
        out
    }
}

fn name(a: &Alert) -> String {
    let n = a.labels.get("alertname").unwrap_or("?");
    match a.labels.get("instance").or(a.labels.get("cluster")) {
        Some(i) => format!("{n}/{i}"),
        None => n.to_string(),
    }
}

fn show(d: &Dispatch) -> String {
    let n = &d.notification;
    let f: Vec<String> = n.firing().map(name).collect();
    let r: Vec<String> = n.resolved().map(name).collect();
    let mut s = format!("{} firing={f:?} resolved={r:?}", d.integration);
    if !n.related.is_empty() {
        let rel: Vec<String> = n.related.iter().map(name).collect();
        s.push_str(&format!(" related={rel:?}"));
    }
    if let Some(e) = &n.escalation {
        s.push_str(&format!(" escalation={}#{}", e.policy, e.step));
    }
    s
}

fn shows(ds: &[Dispatch]) -> Vec<String> {
    ds.iter().map(show).collect()
}

fn at(v: &[(i64, String)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(t, s)| (klaxon::expr::format_duration(*t), s.clone()))
        .collect()
}

#[test]
fn group_wait_interval_and_repeat_timeline() {
    let h = Harness::new(BASE);
    h.fire(&[("alertname", "A"), ("instance", "1")]);
    h.set(T0 + 29 * S);
    assert!(h.tick().is_empty(), "group_wait not over");
    assert_eq!(h.d.next_deadline(), Some(T0 + 30 * S));

    let sent = h.run_until(T0 + M);
    assert_eq!(
        at(&sent),
        [(
            "30s".into(),
            r#"team/webhook[0] firing=["A/1"] resolved=[]"#.into()
        )]
    );
    h.fire(&[("alertname", "A"), ("instance", "2")]);
    h.fire(&[("alertname", "A"), ("instance", "1")]); // Prometheus' resend: nothing new.

    // The next flush is group_interval after the first; then nothing until repeat_interval.
    let sent = h.run_until(T0 + 30 * S + 245 * M);
    assert_eq!(
        at(&sent),
        [(
            "5m30s".into(),
            r#"team/webhook[0] firing=["A/1", "A/2"] resolved=[]"#.into()
        )]
    );
    // Exactly repeat_interval after the last notification is not "before now - repeat".
    let sent = h.run_until(T0 + 30 * S + 250 * M);
    assert_eq!(
        at(&sent),
        [(
            "4h10m30s".into(),
            r#"team/webhook[0] firing=["A/1", "A/2"] resolved=[]"#.into()
        )]
    );

    h.set(T0 + 4 * H + 12 * M);
    h.resolve(&[("alertname", "A"), ("instance", "1")]);
    let sent = h.run_until(T0 + 4 * H + 30 * M);
    assert_eq!(
        at(&sent),
        [(
            "4h15m30s".into(),
            r#"team/webhook[0] firing=["A/2"] resolved=["A/1"]"#.into()
        )]
    );
    h.resolve(&[("alertname", "A"), ("instance", "2")]);
    let sent = h.run_until(T0 + 5 * H);
    assert_eq!(
        at(&sent),
        [(
            "4h30m30s".into(),
            r#"team/webhook[0] firing=[] resolved=["A/2"]"#.into()
        )]
    );
    assert_eq!(h.d.next_deadline(), None, "empty group deleted");
    assert_eq!(
        h.d.status_counts().alerts_resolved,
        0,
        "resolved alerts collected"
    );
}

#[test]
fn an_old_alert_flushes_a_new_group_at_once_after_the_startup_grace() {
    let h = Harness::new(BASE);
    assert!(h.tick().is_empty());
    h.set(T0 + M);
    h.post(&[("alertname", "Old")], Some(T0 - H), Some(T0 + H));
    assert_eq!(
        h.d.next_deadline(),
        Some(T0 + M),
        "Alertmanager's immediate flush"
    );
    assert_eq!(h.tick().len(), 1);
}

#[test]
fn repeated_posts_merge() {
    let h = Harness::new(BASE);
    h.post(&[("alertname", "A")], Some(T0), None);
    h.set(T0 + M);
    // A later start inside the first one's range is merged: the earliest start wins.
    h.post(&[("alertname", "A")], Some(T0 + 30 * S), None);
    let v = h.d.alerts_json(&AlertFilter::default(), h.now());
    assert_eq!(v[0]["startsAt"], "2023-11-14T22:13:20.000Z");
    // The timeout-derived end moves with the latest post.
    assert_eq!(v[0]["endsAt"], "2023-11-14T22:19:20.000Z");
    // An explicit end is not shortened by a later timeout-derived one.
    h.post(&[("alertname", "A")], Some(T0), Some(T0 + H));
    h.set(T0 + 2 * M);
    h.post(&[("alertname", "A")], Some(T0), None);
    let v = h.d.alerts_json(&AlertFilter::default(), h.now());
    assert_eq!(v[0]["endsAt"], "2023-11-14T23:13:20.000Z");
    // After it resolved, a new firing is a new alert with a new start.
    h.set(T0 + 2 * H);
    h.post(&[("alertname", "A")], None, None);
    let v = h.d.alerts_json(&AlertFilter::default(), h.now());
    assert_eq!(v[0]["startsAt"], "2023-11-15T00:13:20.000Z");
}

#[test]
fn resolve_timeout_resolves_an_alert_that_is_not_re_sent() {
    let h = Harness::new(BASE);
    h.post(&[("alertname", "T")], None, None);
    let sent = h.run_until(T0 + 20 * M);
    assert_eq!(
        at(&sent),
        [
            (
                "30s".into(),
                r#"team/webhook[0] firing=["T"] resolved=[]"#.into()
            ),
            (
                "5m30s".into(),
                r#"team/webhook[0] firing=[] resolved=["T"]"#.into()
            ),
        ]
    );
    assert_eq!(h.d.next_deadline(), None);
}

#[test]
fn failed_delivery_is_retried_and_keeps_resolved_alerts() {
    let h = Harness::new(BASE);
    h.fire(&[("alertname", "F")]);
    h.set(T0 + 30 * S);
    let ds = h.tick();
    assert_eq!(ds.len(), 1);
    h.d.delivered(
        &ds[0].integration,
        &ds[0].notification,
        false,
        false,
        h.now(),
    );
    h.set(T0 + 5 * M + 30 * S);
    let ds = h.tick();
    assert_eq!(shows(&ds), [r#"team/webhook[0] firing=["F"] resolved=[]"#]);
    h.deliver(&ds);
    // A resolution whose notification fails stays in the group and is sent again.
    h.set(T0 + 6 * M);
    h.resolve(&[("alertname", "F")]);
    h.set(T0 + 10 * M + 30 * S);
    let ds = h.tick();
    assert_eq!(shows(&ds), [r#"team/webhook[0] firing=[] resolved=["F"]"#]);
    h.d.delivered(
        &ds[0].integration,
        &ds[0].notification,
        false,
        false,
        h.now(),
    );
    h.set(T0 + 15 * M + 30 * S);
    let ds = h.tick();
    assert_eq!(shows(&ds), [r#"team/webhook[0] firing=[] resolved=["F"]"#]);
    h.deliver(&ds);
    assert_eq!(h.d.next_deadline(), None);
}

#[test]
fn send_resolved_false_sends_no_resolved_notification() {
    let h = Harness::new(BASE);
    let labels = [("alertname", "P"), ("severity", "page")];
    h.fire(&labels);
    let sent = h.run_until(T0 + M);
    assert_eq!(
        at(&sent),
        [(
            "30s".into(),
            r#"pager/webhook[0] firing=["P"] resolved=[]"#.into()
        )]
    );
    h.resolve(&labels);
    assert!(h.run_until(T0 + 10 * M).is_empty());
    assert_eq!(h.d.next_deadline(), None, "the group still emptied");
    // The log learned it resolved: a re-fire is a first notification again.
    h.fire(&labels);
    let sent = h.run_until(T0 + 11 * M);
    assert_eq!(
        at(&sent),
        [(
            "10m30s".into(),
            r#"pager/webhook[0] firing=["P"] resolved=[]"#.into()
        )]
    );
}

#[test]
fn continue_routes_to_separate_groups() {
    let h = Harness::new(BASE);
    h.fire(&[("alertname", "X"), ("severity", "page"), ("team", "db")]);
    h.set(T0 + 30 * S);
    let ds = h.tick();
    let keys: Vec<(&str, &str)> = ds
        .iter()
        .map(|d| (d.integration.as_str(), d.notification.group_key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (
                "pager/webhook[0]",
                r#"{}/{severity="page"}:{alertname="X"}"#
            ),
            ("db/webhook[0]", r#"{}/{team="db"}:{alertname="X"}"#),
        ]
    );
    let v = h.d.alerts_json(&AlertFilter::default(), h.now());
    assert_eq!(
        v[0]["receivers"],
        serde_json::json!([{"name": "pager"}, {"name": "db"}])
    );
}

#[test]
fn inhibition_respects_equal() {
    let h = Harness::new(BASE);
    h.fire(&[
        ("alertname", "Crit"),
        ("severity", "critical"),
        ("cluster", "a"),
    ]);
    h.fire(&[
        ("alertname", "Warn"),
        ("severity", "warning"),
        ("cluster", "a"),
    ]);
    h.fire(&[
        ("alertname", "Warn"),
        ("severity", "warning"),
        ("cluster", "b"),
    ]);
    let sent = h.run_until(T0 + M);
    assert_eq!(
        at(&sent),
        [
            (
                "30s".into(),
                r#"team/webhook[0] firing=["Crit/a"] resolved=[]"#.into()
            ),
            (
                "30s".into(),
                r#"team/webhook[0] firing=["Warn/b"] resolved=[]"#.into()
            ),
        ]
    );
    let inhibited = AlertFilter {
        active: false,
        ..AlertFilter::default()
    };
    let v = h.d.alerts_json(&inhibited, h.now());
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["labels"]["cluster"], "a");
    assert_eq!(v[0]["status"]["state"], "suppressed");
    // When the source resolves, the target is news at the next flush.
    h.resolve(&[
        ("alertname", "Crit"),
        ("severity", "critical"),
        ("cluster", "a"),
    ]);
    let sent = h.run_until(T0 + 6 * M);
    assert_eq!(
        at(&sent),
        [
            (
                "5m30s".into(),
                r#"team/webhook[0] firing=[] resolved=["Crit/a"]"#.into()
            ),
            (
                "5m30s".into(),
                r#"team/webhook[0] firing=["Warn/a", "Warn/b"] resolved=[]"#.into()
            ),
        ]
    );
}

#[test]
fn inhibited_alerts_stay_inhibited_after_a_restart() {
    // A restart without state: Prometheus re-sends the target before the source; the target
    // started long ago, which in Alertmanager triggers an immediate flush.
    let h = Harness::new(BASE);
    let target = [
        ("alertname", "Warn"),
        ("severity", "warning"),
        ("cluster", "a"),
    ];
    h.post(&target, Some(T0 - H), Some(T0 + H));
    h.set(T0 + 10 * S);
    assert!(
        h.tick().is_empty(),
        "no early flush during the start-up grace"
    );
    h.post(
        &[
            ("alertname", "Crit"),
            ("severity", "critical"),
            ("cluster", "a"),
        ],
        Some(T0 - H),
        Some(T0 + H),
    );
    // The target's group flushes first (30s), but its source is known by then.
    let sent = h.run_until(T0 + M);
    assert_eq!(
        at(&sent),
        [(
            "40s".into(),
            r#"team/webhook[0] firing=["Crit/a"] resolved=[]"#.into()
        )]
    );
}

fn matcher(name: &str, value: &str, is_regex: bool) -> PostableMatcher {
    PostableMatcher {
        name: name.into(),
        value: value.into(),
        is_regex,
        is_equal: true,
    }
}

fn silence(id: Option<&str>, ms: Vec<PostableMatcher>, start: i64, end: i64) -> PostableSilence {
    PostableSilence {
        id: id.map(str::to_string),
        matchers: ms,
        starts_at: start,
        ends_at: end,
        created_by: "alice".into(),
        comment: "maintenance".into(),
    }
}

#[test]
fn silences_mute_with_anchored_regexes_and_can_be_updated_and_expired() {
    let h = Harness::new(BASE);
    let id =
        h.d.put_silence(
            silence(None, vec![matcher("service", "bar", true)], T0, T0 + H),
            T0,
        )
        .unwrap();
    h.fire(&[("alertname", "S"), ("service", "bar"), ("instance", "bar")]);
    h.fire(&[
        ("alertname", "S"),
        ("service", "foobar"),
        ("instance", "foobar"),
    ]);
    let sent = h.run_until(T0 + M);
    assert_eq!(
        at(&sent),
        [(
            "30s".into(),
            r#"team/webhook[0] firing=["S/foobar"] resolved=[]"#.into()
        )]
    );
    // Extending an active silence keeps its id; changing its matchers replaces it.
    let same =
        h.d.put_silence(
            silence(
                Some(&id),
                vec![matcher("service", "bar", true)],
                T0,
                T0 + 2 * H,
            ),
            h.now(),
        )
        .unwrap();
    assert_eq!(same, id);
    let new_id =
        h.d.put_silence(
            silence(
                Some(&id),
                vec![matcher("service", "ba.", true)],
                T0,
                T0 + 2 * H,
            ),
            h.now(),
        )
        .unwrap();
    assert_ne!(new_id, id);
    assert_eq!(
        h.d.silence_json(&id, h.now()).unwrap()["status"]["state"],
        "expired"
    );
    assert_eq!(
        h.d.silence_json(&new_id, h.now()).unwrap()["status"]["state"],
        "active"
    );
    assert!(
        h.run_until(T0 + 6 * M).is_empty(),
        "still silenced by the replacement"
    );
    h.d.expire_silence(&new_id, h.now()).unwrap();
    assert!(matches!(
        h.d.expire_silence("nope", h.now()),
        Err(DispatchError::NotFound(_))
    ));
    let sent = h.run_until(T0 + 11 * M);
    assert_eq!(
        at(&sent),
        [(
            "10m30s".into(),
            r#"team/webhook[0] firing=["S/bar", "S/foobar"] resolved=[]"#.into()
        )]
    );
}

#[test]
fn a_silenced_alert_that_resolves_still_sends_resolved() {
    // Alertmanager drops this resolved notification; klaxon sends it because the receiver
    // was told the alert is firing.
    let h = Harness::new(BASE);
    let labels = [("alertname", "Q"), ("instance", "1")];
    h.fire(&labels);
    h.fire(&[("alertname", "Q"), ("instance", "2")]);
    assert_eq!(h.run_until(T0 + M).len(), 1);
    h.d.put_silence(
        silence(None, vec![matcher("instance", "1", false)], h.now(), T0 + H),
        h.now(),
    )
    .unwrap();
    h.set(T0 + 2 * M);
    h.resolve(&labels);
    let sent = h.run_until(T0 + 6 * M);
    assert_eq!(
        at(&sent),
        [(
            "5m30s".into(),
            r#"team/webhook[0] firing=["Q/2"] resolved=["Q/1"]"#.into()
        )]
    );
    // An alert silenced before it was ever shown does not produce a resolved notification.
    h.d.put_silence(
        silence(None, vec![matcher("instance", "3", false)], h.now(), T0 + H),
        h.now(),
    )
    .unwrap();
    h.fire(&[("alertname", "Q"), ("instance", "3")]);
    assert!(h.run_until(T0 + 11 * M).is_empty());
    h.resolve(&[("alertname", "Q"), ("instance", "3")]);
    assert!(h.run_until(T0 + 16 * M).is_empty());
}

#[test]
fn reload_preserves_the_notification_log() {
    let h = Harness::new(BASE);
    h.fire(&[("alertname", "R")]);
    assert_eq!(h.run_until(T0 + M).len(), 1);
    h.d.apply_config(delivery(BASE), h.now());
    // A changed tree whose route for this alert is unchanged.
    let changed = BASE.replace(
        "    - receiver: db\n",
        "    - receiver: db\n      matchers: ['team=\"web\"']\n    - receiver: db\n",
    );
    h.set(T0 + 2 * M);
    h.d.apply_config(delivery(&changed), h.now());
    assert!(
        h.run_until(T0 + 3 * H).is_empty(),
        "no re-notification after reload"
    );
    let sent = h.run_until(T0 + 5 * H);
    assert_eq!(sent.len(), 1, "the repeat still comes: {sent:?}");
}

const CHANNELS: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/team"}]
channels:
  email:
    smtp_host: smtp.example.com
    from_email: klaxon@example.com
    to_emails: [oncall@example.com]
  slack: {}
"#;

fn meta(channels: &[&str], escalation: Option<&str>, depends_on: &[&str]) -> RuleMeta {
    RuleMeta {
        channels: channels.iter().map(|s| s.to_string()).collect(),
        escalation: escalation.map(str::to_string),
        depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn rule_channels_replace_the_route_tree_and_unknown_or_unconfigured_are_kept() {
    let h = Harness::new(CHANNELS);
    h.d.set_rule_meta(HashMap::from([(
        "DbDown".to_string(),
        meta(&["email", "slack", "sms"], None, &[]),
    )]));
    h.fire(&[("alertname", "DbDown"), ("instance", "db-1")]);
    h.set(T0 + 30 * S);
    let ds = h.tick();
    let got: Vec<(&str, &str, &str)> = ds
        .iter()
        .map(|d| {
            (
                d.integration.as_str(),
                d.notification.receiver.as_str(),
                d.notification.group_key.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "email/email[0]",
                "email",
                r#"{}/channel:email:{alertname="DbDown"}"#
            ),
            (
                "slack/slack[0]",
                "slack",
                r#"{}/channel:slack:{alertname="DbDown"}"#
            ),
        ]
    );
    // The notifier answers "unconfigured" for slack.
    h.d.delivered(
        &ds[0].integration,
        &ds[0].notification,
        true,
        false,
        h.now(),
    );
    h.d.delivered(
        &ds[1].integration,
        &ds[1].notification,
        false,
        true,
        h.now(),
    );
    let und = h.d.undelivered();
    let counts: Vec<(&str, u64, usize)> = und
        .iter()
        .map(|u| (u.receiver.as_str(), u.count, u.alerts.len()))
        .collect();
    assert_eq!(counts, [("slack", 1, 1), ("sms", 1, 1)]);
    assert!(und[0].reason.contains("webhook_url"), "{}", und[0].reason);
    // Not re-dispatched every group_interval while unconfigured.
    assert!(h.run_until(T0 + 30 * M).is_empty());
    // Once slack is configured, the kept alert goes out at the next flush.
    let fixed = CHANNELS.replace(
        "slack: {}",
        "slack: {webhook_url: \"http://127.0.0.1:9/slack\"}",
    );
    h.d.apply_config(delivery(&fixed), h.now());
    let sent = h.run_until(T0 + 36 * M);
    assert_eq!(
        at(&sent),
        [(
            "30m30s".into(),
            r#"slack/slack[0] firing=["DbDown/db-1"] resolved=[]"#.into()
        )]
    );
    assert_eq!(h.d.status_counts().undelivered.get("sms"), Some(&1));
}

const ESCALATION: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  escalation: guide
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/team"}]
  - name: lead
    webhook_configs: [{url: "http://127.0.0.1:9/lead"}]
  - name: vp
    webhook_configs: [{url: "http://127.0.0.1:9/vp"}]
escalation_policies:
  - name: guide
    steps:
      - {after: 0m, receivers: [team]}
      - {after: 12m, receivers: [lead]}
      - {after: 30m, receivers: [vp]}
"#;

#[test]
fn escalation_steps_page_until_acknowledged() {
    let h = Harness::new(ESCALATION);
    h.fire(&[("alertname", "E"), ("instance", "1")]);
    let sent = h.run_until(T0 + 20 * M);
    assert_eq!(
        at(&sent),
        [
            (
                "30s".into(),
                r#"team/webhook[0] firing=["E/1"] resolved=[]"#.to_string() + " escalation=guide#0"
            ),
            (
                "12m30s".into(),
                r#"lead/webhook[0] firing=["E/1"] resolved=[]"#.to_string() + " escalation=guide#1"
            ),
        ]
    );
    // The escalated receiver now gets the group's updates.
    h.fire(&[("alertname", "E"), ("instance", "2")]);
    let sent = h.run_until(T0 + 21 * M);
    assert_eq!(
        at(&sent),
        [
            (
                "20m30s".into(),
                r#"team/webhook[0] firing=["E/1", "E/2"] resolved=[]"#.into()
            ),
            (
                "20m30s".into(),
                r#"lead/webhook[0] firing=["E/1", "E/2"] resolved=[]"#.into()
            ),
        ]
    );
    // Acknowledging everything stops the chain and the repeat.
    let groups = h.d.groups_json(&AlertFilter::default(), h.now());
    let gid = groups[0]["id"].as_str().unwrap().to_string();
    let acks = h.d.ack_group(&gid, "alice", "on it", h.now()).unwrap();
    assert_eq!(acks.len(), 2);
    assert!(
        h.run_until(T0 + 3 * H).is_empty(),
        "no vp, no repeat while acked"
    );
    assert_eq!(h.d.acks_json().as_array().unwrap().len(), 2);
    // Resolutions still go out.
    h.resolve(&[("alertname", "E"), ("instance", "1")]);
    let sent = h.run_until(T0 + 3 * H + 10 * M);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        h.d.acks_json().as_array().unwrap().len(),
        1,
        "the resolved alert's ack lapsed"
    );
}

#[test]
fn ack_errors() {
    let h = Harness::new(ESCALATION);
    let fp = "0123456789abcdef".parse().unwrap();
    assert!(matches!(
        h.d.ack(fp, "bob", "", h.now()),
        Err(DispatchError::NotFound(_))
    ));
    h.post(&[("alertname", "Gone")], Some(T0 - H), Some(T0 - M));
    let fp = klaxon::dispatch::fingerprint(&Labels::from_pairs([("alertname", "Gone")]));
    assert!(matches!(
        h.d.ack(fp, "bob", "", h.now()),
        Err(DispatchError::NotFiring(_))
    ));
    h.fire(&[("alertname", "Live")]);
    let fp = klaxon::dispatch::fingerprint(&Labels::from_pairs([("alertname", "Live")]));
    assert!(matches!(
        h.d.ack(fp, " ", "", h.now()),
        Err(DispatchError::Ack(_))
    ));
    assert!(matches!(
        h.d.ack_group("nope", "bob", "", h.now()),
        Err(DispatchError::NotFound(_))
    ));
}

const CORRELATION: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/team"}]
correlation:
  labels: [instance]
"#;

#[test]
fn correlated_symptoms_ride_with_their_root() {
    let h = Harness::new(CORRELATION);
    h.d.set_rule_meta(HashMap::from([(
        "ApiErrors".to_string(),
        meta(&[], None, &["DbDown"]),
    )]));
    h.fire(&[("alertname", "ApiErrors"), ("instance", "db-1")]);
    h.fire(&[("alertname", "DbDown"), ("instance", "db-1")]);
    let sent = h.run_until(T0 + M);
    assert_eq!(
        at(&sent),
        [(
            "30s".into(),
            r#"team/webhook[0] firing=["DbDown/db-1"] resolved=[] related=["ApiErrors/db-1"]"#
                .into()
        )]
    );
    let inc = h.d.incidents_json(h.now());
    assert_eq!(inc[0]["symptoms"].as_array().unwrap().len(), 1);
    // A new symptom re-notifies the root's group at its next flush.
    h.fire(&[
        ("alertname", "ApiErrors"),
        ("instance", "db-1"),
        ("path", "/x"),
    ]);
    let sent = h.run_until(T0 + 6 * M);
    assert_eq!(
        at(&sent),
        [(
            "5m30s".into(),
            r#"team/webhook[0] firing=["DbDown/db-1"] resolved=[] related=["ApiErrors/db-1", "ApiErrors/db-1"]"#
                .into()
        )]
    );
    // The root resolves: the symptoms page with their own group at its next flush (and,
    // sharing `instance`, are now an incident of their own).
    h.resolve(&[("alertname", "DbDown"), ("instance", "db-1")]);
    let sent = h.run_until(T0 + 11 * M);
    assert_eq!(
        at(&sent),
        [
            (
                "10m30s".into(),
                r#"team/webhook[0] firing=["ApiErrors/db-1"] resolved=[] related=["ApiErrors/db-1"]"#
                    .into()
            ),
            (
                "10m30s".into(),
                r#"team/webhook[0] firing=[] resolved=["DbDown/db-1"]"#.into()
            ),
        ]
    );
}

#[test]
fn mute_time_intervals_hold_notifications_until_the_interval_ends() {
    let yaml = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['alertname="N"']
      mute_time_intervals: [night]
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/team"}]
time_intervals:
  - name: night
    time_intervals:
      - times: [{start_time: "00:00", end_time: "06:00"}]
"#;
    let h = Harness::new(yaml);
    let midnight = 1_700_006_400_000; // 2023-11-15T00:00:00Z
    h.set(midnight - 10 * M);
    h.fire(&[("alertname", "N")]);
    assert_eq!(h.run_until(midnight - 9 * M).len(), 1);
    h.set(midnight + 10 * M);
    h.resolve(&[("alertname", "N")]);
    assert!(
        h.run_until(midnight + 6 * H - S).is_empty(),
        "muted at night"
    );
    let groups = h.d.groups_json(&AlertFilter::default(), h.now());
    assert_eq!(
        groups.as_array().unwrap().len(),
        0,
        "resolved alerts are not listed"
    );
    let sent = h.run_until(midnight + 6 * H + 5 * M);
    assert_eq!(
        sent.len(),
        1,
        "the resolution is sent in the morning: {sent:?}"
    );
    assert!(sent[0].1.contains(r#"resolved=["N"]"#), "{sent:?}");
}

#[test]
fn snapshot_restore_does_not_re_notify() {
    let h = Harness::new(BASE);
    h.fire(&[("alertname", "P"), ("instance", "1")]);
    assert_eq!(h.run_until(T0 + M).len(), 1);
    h.d.put_silence(
        silence(
            None,
            vec![matcher("alertname", "Z", false)],
            h.now(),
            T0 + 3 * H,
        ),
        h.now(),
    )
    .unwrap();
    let snap = h.d.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    let back: klaxon::dispatch::DispatchSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);

    let h2 = Harness::new(BASE);
    h2.set(T0 + 10 * M);
    h2.d.restore(back, h2.now());
    assert_eq!(
        h2.d.next_deadline(),
        Some(T0 + 10 * M + 30 * S),
        "group_wait after restore"
    );
    assert!(
        h2.run_until(T0 + 2 * H).is_empty(),
        "the restored log knows it was sent"
    );
    assert_eq!(h2.d.status_counts().silences_active, 1);
}

#[test]
fn alerts_and_groups_json_shapes() {
    let h = Harness::new(BASE);
    h.d.put_silence(
        silence(
            None,
            vec![matcher("alertname", "Silenced", false)],
            T0,
            T0 + H,
        ),
        T0,
    )
    .unwrap();
    h.fire(&[
        ("alertname", "Active"),
        ("instance", "web-1"),
        ("job", "api"),
    ]);
    h.fire(&[("alertname", "Silenced")]);
    h.fire(&[
        ("alertname", "Crit"),
        ("severity", "critical"),
        ("cluster", "a"),
    ]);
    h.fire(&[
        ("alertname", "Warn"),
        ("severity", "warning"),
        ("cluster", "a"),
    ]);
    let v = h.d.alerts_json(&AlertFilter::default(), h.now());
    insta::assert_snapshot!("alerts_json", serde_json::to_string_pretty(&v).unwrap());
    let only_db = AlertFilter {
        receiver: Some(regex::Regex::new("^(?:db)$").unwrap()),
        ..AlertFilter::default()
    };
    assert_eq!(h.d.alerts_json(&only_db, h.now()), serde_json::json!([]));
    let filtered = AlertFilter {
        matchers: vec![Matcher::new(MatchOp::Regex, "alertname", "Act.*").unwrap()],
        silenced: false,
        ..AlertFilter::default()
    };
    assert_eq!(
        h.d.alerts_json(&filtered, h.now())
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let g = h.d.groups_json(&AlertFilter::default(), h.now());
    insta::assert_snapshot!("groups_json", serde_json::to_string_pretty(&g).unwrap());
    assert_eq!(
        h.d.receivers_json(),
        serde_json::json!([{"name": "db"}, {"name": "pager"}, {"name": "team"}])
    );
}

#[test]
fn silences_json_shape_and_order() {
    let h = Harness::new(BASE);
    let a =
        h.d.put_silence(
            silence(None, vec![matcher("a", "1", false)], T0, T0 + 2 * H),
            T0,
        )
        .unwrap();
    h.d.put_silence(
        silence(None, vec![matcher("b", "x|y", true)], T0, T0 + H),
        T0,
    )
    .unwrap();
    h.d.put_silence(
        silence(None, vec![matcher("c", "1", false)], T0 + H, T0 + 3 * H),
        T0,
    )
    .unwrap();
    h.set(T0 + M);
    h.d.expire_silence(&a, h.now()).unwrap();
    let v = h.d.silences_json(&[], h.now());
    insta::assert_snapshot!("silences_json", serde_json::to_string_pretty(&v).unwrap());
    let f = [Matcher::new(MatchOp::Regex, "b", "x|y").unwrap()];
    assert_eq!(h.d.silences_json(&f, h.now()).as_array().unwrap().len(), 1);
}

#[test]
fn invalid_posted_alerts_and_silences_are_reported() {
    let h = Harness::new(BASE);
    let ok = PostedAlert {
        labels: BTreeMap::from([("alertname".into(), "A".into())]),
        ..PostedAlert::default()
    };
    let cases: Vec<(&str, PostedAlert)> = vec![
        ("no labels", PostedAlert::default()),
        (
            "only empty values",
            PostedAlert {
                labels: BTreeMap::from([("a".into(), String::new())]),
                ..PostedAlert::default()
            },
        ),
        (
            "end before start",
            PostedAlert {
                starts_at: Some(T0),
                ends_at: Some(T0 - 1),
                ..ok.clone()
            },
        ),
        (
            "empty label name",
            PostedAlert {
                labels: BTreeMap::from([("".into(), "x".into()), ("a".into(), "b".into())]),
                ..PostedAlert::default()
            },
        ),
        (
            "empty annotation name",
            PostedAlert {
                annotations: BTreeMap::from([(" ".into(), "x".into())]),
                ..ok.clone()
            },
        ),
    ];
    let mut report = String::new();
    for (what, bad) in cases {
        let e = h.d.normalize_posted(vec![ok.clone(), bad], T0).unwrap_err();
        report.push_str(&format!("{what}: {e}\n"));
    }
    let silences: Vec<(&str, PostableSilence)> = vec![
        ("no matchers", silence(None, vec![], T0, T0 + H)),
        (
            "matches empty",
            silence(None, vec![matcher("a", ".*", true)], T0, T0 + H),
        ),
        (
            "bad regex",
            silence(None, vec![matcher("a", "(", true)], T0, T0 + H),
        ),
        (
            "ends before start",
            silence(None, vec![matcher("a", "b", false)], T0, T0),
        ),
        (
            "ends in the past",
            silence(None, vec![matcher("a", "b", false)], T0 - H, T0 - M),
        ),
        (
            "unknown id",
            silence(Some("x"), vec![matcher("a", "b", false)], T0, T0 + H),
        ),
    ];
    for (what, s) in silences {
        let e = h.d.put_silence(s, T0).unwrap_err();
        report.push_str(&format!("silence {what}: {e}\n"));
    }
    insta::assert_snapshot!("invalid_input", report);

    let a = h.d.normalize_posted(vec![ok], T0).unwrap();
    assert_eq!(
        (a[0].starts_at, a[0].ends_at, a[0].timeout),
        (T0, T0 + 5 * M, true)
    );
}

#[test]
fn correlation_hold_delays_an_alert_in_no_incident() {
    let h = Harness::new(&format!("{CORRELATION}  hold: 2m\n"));
    h.fire(&[("alertname", "Lone"), ("instance", "web-1")]);
    let sent = h.run_until(T0 + 3 * M);
    assert_eq!(
        at(&sent),
        [(
            "2m".into(),
            r#"team/webhook[0] firing=["Lone/web-1"] resolved=[]"#.into()
        )]
    );
}

#[test]
fn dispatcher_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Dispatcher>();
}
