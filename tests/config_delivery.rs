//! The delivery configuration: Alertmanager's conformance configs load (and the invalid ones fail
//! with clear, placed errors), `${VAR}` interpolation never leaks a secret, the shipped
//! `klaxon.yaml` compiles with and without its variables, and routes, receivers, channels, rate
//! limits, time intervals and templates compile as documented.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use klaxon::config::{
    Config, ConfigError, GroupBy, IntegrationKind, RateLimit, SmtpTls, group_key, labels_from_args,
};
use klaxon::model::Labels;

const AM_DIR: &str = "../shared/conformance/alertmanager";

fn am_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join(AM_DIR);
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipping: {AM_DIR} is absent (conformance data lives outside the repository)");
        None
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml_with_env(text, Path::new("test.yml"), &no_env)
}

fn load_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    Config::from_yaml_with_env(text, Path::new("test.yml"), env)
}

fn err(text: &str) -> String {
    load(text)
        .expect_err("config should be rejected")
        .to_string()
}

fn labels(pairs: &[&str]) -> Labels {
    let args: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
    labels_from_args(&args).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Conformance configs.

/// Files that must be rejected, and a phrase the error must contain.
const BAD: &[(&str, &str)] = &[
    ("cli-testdata/conf.bad.yml", "must be a YAML mapping"),
    (
        "config-testdata/conf.nil-match_re-route.yml",
        "invalid_label",
    ),
    (
        "config-testdata/conf.nil-source_match_re-inhibition.yml",
        "invalid_source_label",
    ),
    (
        "config-testdata/conf.nil-target_match_re-inhibition.yml",
        "invalid_target_label",
    ),
];

#[test]
fn every_conformance_config_loads_or_fails_as_expected() {
    let Some(dir) = am_dir() else { return };
    let mut files = Vec::new();
    for sub in ["cli-testdata", "config-testdata", "doc-examples"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                files.push(format!(
                    "{sub}/{}",
                    p.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    files.sort();
    assert!(files.len() >= 13, "{files:?}");
    let mut bad_messages = String::new();
    for rel in &files {
        let text = std::fs::read_to_string(dir.join(rel)).unwrap();
        let name = Path::new(rel).file_name().unwrap();
        let result = Config::from_yaml_with_env(&text, Path::new(name), &no_env);
        match BAD.iter().find(|(f, _)| f == rel) {
            Some((_, phrase)) => {
                let e = result.expect_err(rel).to_string();
                assert!(e.contains(phrase), "{rel}: {e}");
                bad_messages.push_str(&format!("{rel}\n  {e}\n"));
            }
            None => {
                let cfg = result.unwrap_or_else(|e| panic!("{rel}: {e}"));
                cfg.compile_delivery()
                    .unwrap_or_else(|e| panic!("{rel}: {e}"));
            }
        }
    }
    insta::assert_snapshot!("conformance_invalid", bad_messages);
}

#[test]
fn conformance_good_config_compiles_like_alertmanager() {
    let Some(dir) = am_dir() else { return };
    let cfg = Config::load_with_env(&dir.join("config-testdata/conf.good.yml"), &no_env).unwrap();
    let d = cfg.compile_delivery().unwrap();
    let root = d.routes.root();
    assert_eq!(root.receiver, "team-X-mails");
    assert_eq!(
        root.group_by,
        GroupBy::Labels(vec!["alertname".into(), "cluster".into(), "service".into()])
    );
    assert_eq!(root.repeat_interval_ms, 3 * 3_600_000);
    let db = d
        .routes
        .nodes
        .iter()
        .find(|n| n.receiver == "team-DB-pager")
        .unwrap();
    assert_eq!(
        db.group_by,
        GroupBy::Labels(vec![
            "alertname".into(),
            "cluster".into(),
            "database".into()
        ])
    );
    assert_eq!(db.key, r#"{}/{service="database"}"#);
    assert_eq!(db.group_wait_ms, 30_000);

    // team-X-mails: email with global defaults applied.
    let mails = &d.receivers["team-X-mails"].integrations[0];
    let IntegrationKind::Email(e) = &mails.kind else {
        panic!("{mails:?}")
    };
    assert_eq!((e.host.as_str(), e.port), ("localhost", 25));
    assert_eq!(e.from, "alertmanager@example.org");
    assert_eq!(e.username, "alertmanager");
    assert_eq!(e.password.expose(), "multiline\nmysecret");
    assert_eq!(e.hello, "host.example.org");
    assert_eq!(e.to, ["team-X+alerts@example.org"]);
    assert_eq!(e.tls, SmtpTls::StartTls);
    assert!(!mails.send_resolved);
    assert_eq!(mails.unconfigured, None);
    assert_eq!(mails.id(), "team-X-mails/email[0]");

    // team-X-pager: email plus an unsupported pagerduty integration.
    let pager = &d.receivers["team-X-pager"].integrations;
    assert_eq!(pager.len(), 2);
    assert_eq!(
        pager[1].kind,
        IntegrationKind::Unsupported("pagerduty".into())
    );
    assert_eq!(
        pager[1].unconfigured.as_deref(),
        Some("klaxon does not implement pagerduty")
    );
    assert!(pager[1].send_resolved);

    // slack-receiver: global slack_api_url and http_config apply.
    let slack = &d.receivers["slack-receiver"].integrations[0];
    let IntegrationKind::Slack(s) = &slack.kind else {
        panic!("{slack:?}")
    };
    assert_eq!(s.api_url.expose(), "http://mysecret.example.com/");
    assert_eq!(s.channel, "#my-channel");
    assert_eq!(
        slack.http.proxy_url.as_deref(),
        Some("http://127.0.0.1:1025")
    );
    assert!(!slack.send_resolved, "Alertmanager's slack default");
    assert_eq!(
        slack.rate_limit,
        Some(RateLimit {
            limit: 1,
            per: klaxon::config::Dur(1000),
            burst: Some(5)
        })
    );

    assert_eq!(d.inhibit_rules.len(), 1);
    assert_eq!(
        d.inhibit_rules[0].equal,
        ["alertname", "cluster", "service"]
    );
    assert_eq!(d.template_files, Vec::<(String, String)>::new());

    // Secrets from the file never show in Debug output.
    let dbg = format!("{cfg:?}{d:?}");
    assert!(!dbg.contains("mysecret"), "secret in Debug output");
}

#[test]
fn conformance_http_config_is_replaced_not_merged() {
    let Some(dir) = am_dir() else { return };
    let cfg = Config::load_with_env(
        &dir.join("config-testdata/conf.http-config.good.yml"),
        &no_env,
    )
    .unwrap();
    let d = cfg.compile_delivery().unwrap();
    let s = &d.receivers["team-X-slack"].integrations[0];
    assert_eq!(s.http.proxy_url.as_deref(), Some("foo"));
    assert_eq!(s.http.follow_redirects, None, "as in Alertmanager");
    assert_eq!(cfg.global.notify.http_config.follow_redirects, Some(false));
}

#[test]
fn conformance_group_by_all_and_route_labels() {
    let Some(dir) = am_dir() else { return };
    let d = Config::load_with_env(&dir.join("config-testdata/conf.group-by-all.yml"), &no_env)
        .unwrap()
        .compile_delivery()
        .unwrap();
    assert_eq!(d.routes.root().group_by, GroupBy::All);
    let d = Config::load_with_env(&dir.join("doc-examples/route_labels.yml"), &no_env)
        .unwrap()
        .compile_delivery()
        .unwrap();
    let dba = d.routes.nodes.iter().find(|n| n.receiver == "dba").unwrap();
    assert_eq!(dba.labels["reason"], "database {{ .GroupLabels.database }}");
    assert!(
        dba.labels["description"].contains("routeLabels"),
        "inherited"
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-written invalid configs: messages are snapshotted.

#[test]
fn invalid_configs_have_placed_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "unknown_receiver",
            "route:\n  receiver: a\n  routes:\n    - receiver: nope\nreceivers:\n  - name: a\n",
        ),
        (
            "bad_duration",
            "route:\n  receiver: a\n  group_wait: 5x\nreceivers:\n  - name: a\n",
        ),
        (
            "unknown_key",
            "route:\n  receiver: a\n  recevier: b\nreceivers:\n  - name: a\n",
        ),
        (
            "unknown_top_level_key",
            "route:\n  receiver: a\nreceivers:\n  - name: a\nchanels: {}\n",
        ),
        (
            "unknown_integration",
            "route:\n  receiver: a\nreceivers:\n  - name: a\n    email_config: []\n",
        ),
        ("unknown_global_key", "global:\n  smtp_smarthostt: x:25\n"),
        (
            "bad_matcher",
            "route:\n  receiver: a\n  routes:\n    - matchers: ['severity=~\"(\"']\nreceivers:\n  - name: a\n",
        ),
        (
            "bad_matcher_syntax",
            "route:\n  receiver: a\n  routes:\n    - matchers: ['severity critical']\nreceivers:\n  - name: a\n",
        ),
        (
            "root_matchers",
            "route:\n  receiver: a\n  match: {x: y}\nreceivers:\n  - name: a\n",
        ),
        ("root_without_receiver", "route:\n  group_by: [a]\n"),
        ("no_route", "receivers:\n  - name: a\n"),
        (
            "duplicate_receiver",
            "route:\n  receiver: a\nreceivers:\n  - name: a\n  - name: a\n",
        ),
        (
            "group_by_wildcard_mixed",
            "route:\n  receiver: a\n  group_by: ['...', alertname]\nreceivers:\n  - name: a\n",
        ),
        (
            "group_by_duplicate",
            "route:\n  receiver: a\n  group_by: [x, x]\nreceivers:\n  - name: a\n",
        ),
        (
            "group_interval_zero",
            "route:\n  receiver: a\n  routes:\n    - group_interval: 0s\nreceivers:\n  - name: a\n",
        ),
        (
            "undefined_time_interval",
            "route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [night]\nreceivers:\n  - name: a\n",
        ),
        (
            "bad_time_interval",
            "time_intervals:\n  - name: t\n    time_intervals:\n      - weekdays: ['friday:monday']\n",
        ),
        (
            "unsupported_time_zone",
            "time_intervals:\n  - name: t\n    time_intervals:\n      - location: Europe/Berlin\n",
        ),
        (
            "undefined_escalation",
            "route:\n  receiver: a\n  escalation: pager\nreceivers:\n  - name: a\n",
        ),
        (
            "escalation_unknown_receiver",
            "escalation_policies:\n  - name: e\n    steps:\n      - after: 0m\n        receivers: [sre]\n",
        ),
        (
            "channel_unknown_type",
            "channels:\n  pager:\n    url: http://x.example\n",
        ),
        (
            "channel_wrong_field",
            "channels:\n  slack:\n    smtp_host: smtp.example.com\n",
        ),
        (
            "channel_named_like_receiver",
            "route:\n  receiver: slack\nreceivers:\n  - name: slack\nchannels:\n  slack: {}\n",
        ),
        (
            "bad_url",
            "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: not-a-url\n",
        ),
        (
            "wrong_type",
            "route:\n  receiver: a\nreceivers:\n  - name: a\n    email_configs:\n      - to: x@example.com\n        send_resolved: maybe\n",
        ),
        ("yaml_syntax", "route:\n  receiver: [a\n"),
        ("not_a_mapping", "- a\n- b\n"),
        (
            "unterminated_variable",
            "channels:\n  slack:\n    webhook_url: ${SLACK_WEBHOOK_URL\n",
        ),
        (
            "correlation_bad_label",
            "correlation:\n  labels: [instance, 'not-a-label']\n",
        ),
    ];
    for (name, text) in cases {
        let msg = err(text);
        insta::assert_snapshot!(format!("invalid_{name}"), msg, text);
    }
}

#[test]
fn validation_errors_are_config_errors_with_positions() {
    let e =
        load("route:\n  receiver: a\n  routes:\n    - receiver: nope\nreceivers:\n  - name: a\n")
            .unwrap_err();
    let ConfigError::Located {
        line,
        column,
        message,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!((line, column), (4, 7));
    assert!(
        message.starts_with("route.routes[0].receiver: "),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Interpolation.

const CHANNELS: &str = r##"
channels:
  email:
    smtp_host: ${SMTP_HOST:-}
    smtp_port: ${SMTP_PORT:-587}
    username: ${SMTP_USERNAME:-}
    password: "${SMTP_PASSWORD:-}"
    from_email: ${ALERT_FROM_EMAIL:-}
    to_emails: ${ALERT_TO_EMAILS:-}
    tls: true
  slack:
    webhook_url: "${SLACK_WEBHOOK_URL:-}"
    channel: "#alerts"
    username: AlertBot
"##;

#[test]
fn interpolation_defaults_missing_and_escapes() {
    let env = env_of(&[("SMTP_HOST", "smtp.example.com"), ("SMTP_PORT", "2525")]);
    let text = "global:\n  external_url: \"https://$${HOST}/${PATH_PART:-alerts}/${UNSET}x\"\n  external_labels:\n    host: ${SMTP_HOST}\n    port: ${SMTP_PORT}\n    cost: $5\n";
    let c = load_env(text, &env).unwrap();
    assert_eq!(c.global.external_url, "https://${HOST}/alerts/x");
    assert_eq!(c.global.external_labels["host"], "smtp.example.com");
    assert_eq!(c.global.external_labels["port"], "2525");
    assert_eq!(c.global.external_labels["cost"], "$5");
    assert_eq!(c.source.missing_env["global.external_url"], ["UNSET"]);
    assert!(
        !c.source
            .missing_env
            .contains_key("global.external_labels.host")
    );
}

#[test]
fn interpolated_numbers_and_lists_parse() {
    let env = env_of(&[
        ("SMTP_HOST", "smtp.example.com"),
        ("SMTP_PORT", "465"),
        ("ALERT_FROM_EMAIL", "alerts@example.com"),
        ("ALERT_TO_EMAILS", "admin@example.com, oncall@example.com"),
    ]);
    let d = load_env(CHANNELS, &env)
        .unwrap()
        .compile_delivery()
        .unwrap();
    let email = &d.receivers["email"].integrations[0];
    let IntegrationKind::Email(e) = &email.kind else {
        panic!()
    };
    assert_eq!(e.port, 465);
    assert_eq!(e.tls, SmtpTls::Implicit, "port 465 is implicit TLS");
    assert_eq!(e.to, ["admin@example.com", "oncall@example.com"]);
    assert_eq!(email.unconfigured, None);
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    const SECRET: &str = "hunter2-super-secret";
    let env = env_of(&[("SECRET", SECRET)]);
    for text in [
        // A type error on an interpolated value.
        "channels:\n  email:\n    smtp_port: ${SECRET}\n",
        // A custom error that quotes the value.
        "route:\n  receiver: a\n  group_wait: ${SECRET}\nreceivers:\n  - name: a\n",
        // Inside a flattened section.
        "global:\n  resolve_timeout: \"${SECRET}\"\n",
        // A URL that is not one.
        "channels:\n  webhook:\n    url: ${SECRET}\n",
        // A matcher built from the environment.
        "route:\n  receiver: a\n  routes:\n    - matchers: ['x=~\"(${SECRET}\"']\nreceivers:\n  - name: a\n",
    ] {
        let e = load_env(text, &env).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(SECRET), "{text}: {shown}");
    }
    let ok = format!(
        "{CHANNELS}  webhook:\n    url: https://hooks.example.com/x\n    headers:\n      Authorization: \"Bearer ${{SECRET}}\"\n"
    );
    let env = env_of(&[
        ("SECRET", SECRET),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/hunter2-super-secret",
        ),
    ]);
    let cfg = load_env(&ok, &env).unwrap();
    let d = cfg.compile_delivery().unwrap();
    let shown = format!("{cfg:?} {d:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    let IntegrationKind::Webhook(w) = &d.receivers["webhook"].integrations[0].kind else {
        panic!()
    };
    assert_eq!(
        w.headers["Authorization"].expose(),
        format!("Bearer {SECRET}")
    );
}

#[test]
fn numeric_secrets_from_the_environment_stay_strings() {
    let env = env_of(&[("SMTP_PASSWORD", "123456")]);
    let c = load_env(
        "global:\n  smtp_auth_password: ${SMTP_PASSWORD}\nchannels:\n  email:\n    password: ${SMTP_PASSWORD}\n",
        &env,
    )
    .unwrap();
    assert_eq!(c.global.notify.smtp_auth_password.expose(), "123456");
    assert_eq!(
        c.channels["email"].password.as_ref().map(|p| p.expose()),
        Some("123456")
    );
}

#[test]
fn a_value_from_the_environment_cannot_change_the_structure() {
    let env = env_of(&[("SLACK_WEBHOOK_URL", "https://x.example/a # b\nroute: {}")]);
    let d = load_env(CHANNELS, &env)
        .unwrap()
        .compile_delivery()
        .unwrap();
    let IntegrationKind::Slack(s) = &d.receivers["slack"].integrations[0].kind else {
        panic!()
    };
    assert_eq!(s.api_url.expose(), "https://x.example/a # b\nroute: {}");
}

// ---------------------------------------------------------------------------------------------
// The shipped example.

fn shipped() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("klaxon.yaml")).unwrap()
}

#[test]
fn shipped_example_compiles_without_any_variable() {
    let cfg = Config::from_yaml_with_env(&shipped(), Path::new("klaxon.yaml"), &no_env).unwrap();
    let d = cfg.compile_delivery().unwrap();
    for name in ["email", "slack", "webhook"] {
        assert!(d.receivers[name].from_channel, "{name}");
    }
    for name in ["sre", "eng-manager", "vp-engineering", "cto"] {
        assert!(d.receivers.contains_key(name), "{name}");
    }
    let unconfigured: Vec<String> = d
        .unconfigured()
        .into_iter()
        .map(|(id, why)| format!("{id}: {why}"))
        .collect();
    insta::assert_snapshot!("shipped_unconfigured", unconfigured.join("\n"));
    assert_eq!(
        d.receivers["slack"].integrations[0].unconfigured.as_deref(),
        Some("SLACK_WEBHOOK_URL not set")
    );
    // The route tree and the escalation chain of the guide.
    let r = |l: &[&str]| d.routes.receivers_for(&labels(l)).join(",");
    assert_eq!(r(&["severity=critical"]), "sre,email,slack");
    assert_eq!(r(&["severity=high"]), "email,slack");
    assert_eq!(r(&["severity=warning"]), "slack");
    let sre = d.routes.match_alert(&labels(&["severity=critical"]))[0];
    assert_eq!(sre.escalation.as_deref(), Some("oncall"));
    let chain: Vec<&str> = d.escalation_policies["oncall"]
        .steps
        .iter()
        .flat_map(|s| s.receivers.iter().map(String::as_str))
        .collect();
    assert_eq!(chain, ["sre", "eng-manager", "vp-engineering", "cto"]);
    assert_eq!(d.correlation.labels, ["instance"]);
    assert_eq!(d.inhibit_rules.len(), 1);
    // Default rate limits of the guide.
    assert_eq!(
        d.receivers["email"].integrations[0].rate_limit,
        Some(RateLimit {
            limit: 30,
            per: klaxon::config::Dur(60_000),
            burst: Some(30)
        })
    );
    assert_eq!(d.receivers["webhook"].integrations[0].rate_limit, None);
}

#[test]
fn shipped_example_channels_are_configured_from_the_environment() {
    let env = env_of(&[
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/xyz",
        ),
        ("ALERT_FROM_EMAIL", "alerts@yourcompany.com"),
        (
            "ALERT_TO_EMAILS",
            "admin@yourcompany.com,oncall@yourcompany.com",
        ),
        ("SMTP_HOST", "smtp.gmail.com"),
        ("SMTP_USERNAME", "alerts@yourcompany.com"),
        ("SMTP_PASSWORD", "app-password"),
        (
            "ALERT_WEBHOOK_URL",
            "https://monitoring.example.com/api/alerts",
        ),
        ("ALERT_WEBHOOK_TOKEN", "api-token"),
        ("SRE_PAGER_URL", "https://pager.example.com/sre"),
        ("ENG_MANAGER_EMAIL", "em@yourcompany.com"),
        ("VP_ENGINEERING_EMAIL", "vp@yourcompany.com"),
        ("CTO_EMAIL", "cto@yourcompany.com"),
    ]);
    let cfg = Config::from_yaml_with_env(&shipped(), Path::new("klaxon.yaml"), &env).unwrap();
    let d = cfg.compile_delivery().unwrap();
    assert_eq!(d.unconfigured(), Vec::<(String, String)>::new());
    let IntegrationKind::Email(e) = &d.receivers["email"].integrations[0].kind else {
        panic!()
    };
    assert_eq!(
        (e.host.as_str(), e.port, e.tls),
        ("smtp.gmail.com", 587, SmtpTls::StartTls)
    );
    assert_eq!(e.username, "alerts@yourcompany.com");
    assert_eq!(e.password.expose(), "app-password");
    assert_eq!(e.from, "alerts@yourcompany.com");
    assert_eq!(e.to, ["admin@yourcompany.com", "oncall@yourcompany.com"]);
    let IntegrationKind::Slack(s) = &d.receivers["slack"].integrations[0].kind else {
        panic!()
    };
    assert_eq!(
        s.api_url.expose(),
        "https://hooks.slack.com/services/T0/B0/xyz"
    );
    assert_eq!(
        (s.channel.as_str(), s.username.as_str()),
        ("#alerts", "AlertBot")
    );
    let IntegrationKind::Webhook(w) = &d.receivers["webhook"].integrations[0].kind else {
        panic!()
    };
    assert_eq!(w.url.expose(), "https://monitoring.example.com/api/alerts");
    assert_eq!(w.headers["Authorization"].expose(), "Bearer api-token");
    assert_eq!(w.headers["Content-Type"].expose(), "application/json");
    // The escalation receivers use the global SMTP settings built from the same variables.
    let IntegrationKind::Email(cto) = &d.receivers["cto"].integrations[0].kind else {
        panic!()
    };
    assert_eq!((cto.host.as_str(), cto.port), ("smtp.gmail.com", 587));
    assert_eq!(cto.to, ["cto@yourcompany.com"]);
}

// ---------------------------------------------------------------------------------------------
// Routes, receivers and channels.

#[test]
fn group_keys_and_inheritance() {
    let d = load(
        r#"
route:
  receiver: a
  group_by: [alertname]
  group_interval: 1m
  routes:
    - matchers: ['team="db"', 'severity=~"crit.*"']
      receiver: b
      mute_time_intervals: [weekend]
      routes:
        - match: {env: prod}
          group_by: []
time_intervals:
  - name: weekend
    time_intervals: [{weekdays: ['saturday', 'sunday']}]
receivers: [{name: a}, {name: b}]
"#,
    )
    .unwrap()
    .compile_delivery()
    .unwrap();
    let leaf = d.routes.match_alert(&labels(&[
        "team=db",
        "severity=critical",
        "env=prod",
        "alertname=X",
    ]))[0];
    assert_eq!(leaf.receiver, "b");
    assert_eq!(leaf.group_interval_ms, 60_000);
    assert_eq!(leaf.group_by, GroupBy::Labels(vec![]));
    assert!(leaf.mute_time_intervals.is_empty(), "not inherited");
    assert_eq!(
        leaf.key,
        r#"{}/{severity=~"crit.*",team="db"}/{env="prod"}"#
    );
    assert_eq!(
        group_key(leaf, &labels(&["alertname=X", "env=prod"])),
        r#"{}/{severity=~"crit.*",team="db"}/{env="prod"}:{alertname="X", env="prod"}"#
    );
    let parent = &d.routes.nodes[leaf.parent.unwrap()];
    assert_eq!(parent.mute_time_intervals, ["weekend"]);
    // 2026-11-28 is a Saturday.
    let sat = 1_795_824_000_000 + 12 * 3_600_000;
    assert!(d.time_intervals["weekend"].contains(sat));
    assert!(!d.time_intervals["weekend"].contains(sat - 2 * 86_400_000));
}

#[test]
fn no_route_and_no_receivers_is_a_valid_minimal_config() {
    let d = load("global:\n  external_url: https://klaxon.example\n")
        .unwrap()
        .compile_delivery()
        .unwrap();
    assert_eq!(d.routes.root().receiver, "default");
    assert!(d.receivers["default"].integrations.is_empty());
    assert_eq!(d.external_url, "https://klaxon.example");
    let d = load("channels:\n  slack: {}\n")
        .unwrap()
        .compile_delivery()
        .unwrap();
    assert_eq!(
        d.receivers["slack"].integrations[0].unconfigured.as_deref(),
        Some("webhook_url is not set")
    );
}

#[test]
fn rate_limits_and_send_resolved_defaults() {
    let d = load(
        r#"
route: {receiver: r}
receivers:
  - name: r
    rate_limit: {limit: 10, per: 1m}
    email_configs: [{to: a@x.example, smarthost: 'mail.example:465', from: b@x.example}]
    slack_configs: [{api_url: 'https://hooks.slack.com/x'}]
    webhook_configs: [{url: 'https://x.example/hook'}]
  - name: u
    webhook_configs: [{url: 'https://x.example/hook'}]
    pagerduty_configs: [{routing_key: k}, {routing_key: k2, send_resolved: false}]
channels:
  slack:
    webhook_url: https://hooks.slack.com/y
    rate_limit: {limit: 0}
  mail:
    type: email
    smtp_host: mail.example
    from_email: a@x.example
    to_emails: [b@x.example]
    tls: none
"#,
    )
    .unwrap()
    .compile_delivery()
    .unwrap();
    let r = &d.receivers["r"].integrations;
    let ten = Some(RateLimit {
        limit: 10,
        per: klaxon::config::Dur(60_000),
        burst: None,
    });
    assert!(r.iter().all(|i| i.rate_limit == ten), "{r:?}");
    assert_eq!(
        r.iter().map(|i| i.send_resolved).collect::<Vec<_>>(),
        [false, false, true]
    );
    let IntegrationKind::Email(e) = &r[0].kind else {
        panic!()
    };
    assert_eq!((e.port, e.tls), (465, SmtpTls::Implicit));
    let u = &d.receivers["u"].integrations;
    assert_eq!(u.len(), 3);
    assert_eq!(u[2].id(), "u/pagerduty[1]");
    assert!(!u[2].send_resolved);
    assert_eq!(d.receivers["slack"].integrations[0].rate_limit, None);
    assert!(d.receivers["slack"].integrations[0].send_resolved);
    let IntegrationKind::Email(m) = &d.receivers["mail"].integrations[0].kind else {
        panic!()
    };
    assert_eq!((m.port, m.tls), (587, SmtpTls::None));
}

#[test]
fn templates_and_secret_files_are_read_relative_to_the_config() {
    let dir = std::env::temp_dir().join(format!("klaxon-config-delivery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("templates/b.tmpl"), "{{ define \"b\" }}B{{ end }}").unwrap();
    std::fs::write(dir.join("templates/a.tmpl"), "{{ define \"a\" }}A{{ end }}").unwrap();
    std::fs::write(dir.join("templates/skip.txt"), "x").unwrap();
    std::fs::write(dir.join("url.txt"), "https://hooks.example.com/from-file\n").unwrap();
    let path = dir.join("klaxon.yaml");
    std::fs::write(
        &path,
        "templates: ['templates/*.tmpl', '/nonexistent/*.tmpl']\nroute: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs: [{url_file: url.txt}, {url_file: missing.txt}]\n",
    )
    .unwrap();
    let d = Config::load_with_env(&path, &no_env)
        .unwrap()
        .compile_delivery()
        .unwrap();
    let names: Vec<&str> = d
        .template_files
        .iter()
        .map(|(p, _)| Path::new(p).file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(names, ["a.tmpl", "b.tmpl"]);
    assert!(d.template_files[0].1.contains("define \"a\""));
    let hooks = &d.receivers["r"].integrations;
    let IntegrationKind::Webhook(w) = &hooks[0].kind else {
        panic!()
    };
    assert_eq!(w.url.expose(), "https://hooks.example.com/from-file");
    assert!(
        hooks[1]
            .unconfigured
            .as_deref()
            .is_some_and(|u| u.contains("missing.txt")),
        "{:?}",
        hooks[1].unconfigured
    );
    let _ = std::fs::remove_dir_all(&dir);
}
