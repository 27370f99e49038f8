//! Store round trips, fault classification and the durable-state handle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::alert::{ActiveAlert, AlertState};
use crate::clock::ManualClock;
use crate::dispatch::escalation::{GroupSnapshot, LapsedAck};
use crate::dispatch::silence::SilenceMatcher;
use crate::dispatch::{Alert, Fingerprint};
use crate::model::{Labels, SampleValue};
use crate::rules::{RuleKey, SavedRuleAlerts};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "klaxon-state-unit-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn active(name: &str, state: AlertState) -> ActiveAlert {
    ActiveAlert {
        labels: Labels::from_pairs([("alertname", name), ("instance", "a")]),
        annotations: BTreeMap::from([("summary".to_string(), "s".to_string())]),
        state,
        active_at: 1_000,
        fired_at: (state == AlertState::Firing).then_some(2_000),
        resolved_at: None,
        keep_firing_since: Some(3_000),
        last_sent_at: Some(2_500),
        valid_until: Some(9_000),
        value: SampleValue::Float(42.0),
    }
}

fn notification(key: &str, now: i64) -> Notification {
    Notification {
        receiver: "team".into(),
        group_key: key.into(),
        group_labels: Labels::from_pairs([("alertname", "A")]),
        alerts: vec![Alert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: Labels::empty(),
            starts_at: 1,
            ends_at: 0,
            generator_url: String::new(),
            updated_at: 1,
            timeout: false,
        }],
        now_ms: now,
        external_url: String::new(),
        related: vec![],
        escalation: None,
        digest_of: 0,
    }
}

fn history(name: &str, t: i64, kind: HistoryKind) -> HistoryEvent {
    HistoryEvent {
        time_ms: t,
        kind,
        source: "rule".into(),
        alertname: name.into(),
        fingerprint: format!("{:016x}", t),
        labels: BTreeMap::from([("alertname".to_string(), name.to_string())]),
        from_state: Some("pending".into()),
        to_state: Some("firing".into()),
        integration: None,
        receiver: None,
        channel: None,
        group_key: None,
        outcome: None,
        error: None,
        attempts: None,
    }
}

fn full_batch() -> SaveBatch {
    let rule = RuleRef {
        file: PathBuf::from("rules/a.yml"),
        group: "g".into(),
        rule: RuleKey {
            name: "A".into(),
            labels_hash: "00000000000000ff".into(),
            ordinal: 0,
        },
    };
    let alerts = vec![
        codec::AlertRow::encode(&active("A", AlertState::Firing)).unwrap(),
        codec::AlertRow::encode(&active("A2", AlertState::Pending)).unwrap(),
    ];
    let ack = Ack {
        fingerprint: Fingerprint(0xab),
        labels: Labels::from_pairs([("alertname", "A")]),
        by: "alice".into(),
        comment: "on it".into(),
        at_ms: 5,
    };
    SaveBatch {
        saved_ms: 10_000,
        rule_groups: Some(vec![SavedGroup {
            file: PathBuf::from("rules/a.yml"),
            name: "g".into(),
            last_eval_ms: Some(9_000),
        }]),
        rule_alerts: Some(vec![(rule, alerts)]),
        silences: Some(vec![SilenceSnapshot {
            id: "s1".into(),
            matchers: vec![SilenceMatcher {
                name: "instance".into(),
                value: "a".into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: 1,
            ends_at: 2,
            updated_at: 3,
            created_by: "me".into(),
            comment: "c".into(),
        }]),
        acks: Some(vec![ack.clone()]),
        nflog: Some(vec![EntrySnapshot {
            group_key: "g1".into(),
            integration: "team/webhook[0]".into(),
            firing: vec!["00000000000000ab".into()],
            resolved: vec![],
            related: vec![],
            owed: vec!["00000000000000ab".into()],
            ts: 7,
            expires: 8,
            void: false,
        }]),
        sections: vec![
            (
                "escalation",
                serde_json::to_string(&sqlite::EscalationSection {
                    lapsed: vec![LapsedAck { ack, lapsed_ms: 6 }],
                    groups: vec![GroupSnapshot {
                        group_key: "g1".into(),
                        policy: "p".into(),
                        afters: vec![0, 60_000],
                        cycle_ms: None,
                        next: 1,
                        first_seen: BTreeMap::from([("00000000000000ab".to_string(), 1)]),
                    }],
                })
                .unwrap(),
            ),
            (
                "groups",
                serde_json::to_string(&vec![GroupStateSnapshot {
                    group_key: "g1".into(),
                    receiver: "team".into(),
                    extra_receivers: vec!["boss".into()],
                }])
                .unwrap(),
            ),
        ],
        history: vec![
            history("A", 100, HistoryKind::Alert),
            history("B", 200, HistoryKind::Notification),
            history("A", 300, HistoryKind::Alert),
        ],
        journal_upto: 0,
        clear_outbox: false,
    }
}

#[tokio::test]
async fn sqlite_round_trips_every_section() {
    let dir = temp_dir();
    let path = dir.join("state.db");
    let s = SqliteStore::open(&path, 1).await.unwrap();
    s.save(full_batch()).await.unwrap();
    s.outbox_add(vec![
        OutboxRow {
            integration: "team/webhook[0]".into(),
            notification: notification("g1", 50),
            created_ms: 50,
        },
        OutboxRow {
            integration: "team/webhook[0]".into(),
            notification: notification("g2", 60),
            created_ms: 60,
        },
        OutboxRow {
            integration: "team/email[0]".into(),
            notification: notification("g1", 50),
            created_ms: 50,
        },
    ])
    .await
    .unwrap();
    s.outbox_settle(
        vec![
            Settled {
                integration: "team/webhook[0]".into(),
                group_key: "g1".into(),
                flush_ms: 50,
                delivered: Some((7, 55)),
            },
            Settled {
                integration: "team/email[0]".into(),
                group_key: "g1".into(),
                flush_ms: 50,
                delivered: None,
            },
        ],
        vec![history("C", 400, HistoryKind::Notification)],
    )
    .await
    .unwrap();
    s.close().await.unwrap();

    let s = SqliteStore::open(&path, 2).await.unwrap();
    let l = s.load().await.unwrap();
    assert!(l.skipped.is_empty(), "{:?}", l.skipped);
    assert_eq!(l.saved_ms, Some(10_000));
    assert_eq!(l.rules.groups[0].last_eval_ms, Some(9_000));
    assert_eq!(l.rules.rules.len(), 1);
    let r = &l.rules.rules[0];
    assert_eq!(r.rule.labels_hash, "00000000000000ff");
    assert_eq!(r.alerts.len(), 2);
    assert!(r.alerts.contains(&active("A", AlertState::Firing)));
    assert!(r.alerts.contains(&active("A2", AlertState::Pending)));
    let b = full_batch();
    assert_eq!(Some(l.dispatch.silences.clone()), b.silences);
    assert_eq!(Some(l.dispatch.escalation.acks.clone()), b.acks);
    assert_eq!(Some(l.dispatch.nflog.clone()), b.nflog);
    assert_eq!(l.dispatch.escalation.lapsed.len(), 1);
    assert_eq!(l.dispatch.escalation.groups[0].afters, vec![0, 60_000]);
    assert_eq!(l.dispatch.groups[0].extra_receivers, vec!["boss"]);
    // The failed row is gone, the delivered one kept as journal, the pending one intact.
    assert_eq!(l.outbox.len(), 2);
    assert_eq!(l.max_seq, 7);
    let delivered = l.outbox.iter().find(|o| o.delivered.is_some()).unwrap();
    assert_eq!(delivered.delivered, Some((7, 55)));
    let pending = l.outbox.iter().find(|o| o.delivered.is_none()).unwrap();
    assert_eq!(pending.row.notification, notification("g2", 60));

    // History: filters, newest first, limit; retention.
    let q = |alertname: Option<&str>, limit| HistoryQuery {
        alertname: alertname.map(str::to_string),
        limit,
        ..HistoryQuery::default()
    };
    let all = s.history(q(None, 10)).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.time_ms).collect::<Vec<_>>(),
        [400, 300, 200, 100]
    );
    assert_eq!(all[2].kind, HistoryKind::Notification);
    assert_eq!(all[1], history("A", 300, HistoryKind::Alert));
    assert_eq!(s.history(q(Some("A"), 1)).await.unwrap().len(), 1);
    let by_fp = s
        .history(HistoryQuery {
            fingerprint: Some(format!("{:016x}", 200)),
            since_ms: 150,
            until_ms: 250,
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_fp.len(), 1);
    assert_eq!(s.prune_history(250).await.unwrap(), 2);
    assert_eq!(s.history(q(None, 10)).await.unwrap().len(), 2);

    // A snapshot past the journal's sequence deletes the delivered row; unchanged sections
    // (None) are left as they are.
    s.save(SaveBatch {
        saved_ms: 20_000,
        journal_upto: 7,
        ..SaveBatch::default()
    })
    .await
    .unwrap();
    let l = s.load().await.unwrap();
    assert_eq!(l.outbox.len(), 1);
    assert_eq!(l.dispatch.silences.len(), 1);
    assert_eq!(l.rules.rules[0].alerts.len(), 2);
    s.close().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unreadable_rows_are_skipped_and_reported() {
    let dir = temp_dir();
    let path = dir.join("state.db");
    let s = SqliteStore::open(&path, 1).await.unwrap();
    s.save(full_batch()).await.unwrap();
    s.close().await.unwrap();
    {
        use sqlx::{ConnectOptions, Connection};
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE alert_instances SET state = 'exploded' WHERE labels LIKE '%A2%'")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("UPDATE silences SET matchers = 'not json'")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("INSERT INTO outbox VALUES ('x', 'g', 1, 'r', '{broken', 1, NULL, NULL)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let s = SqliteStore::open(&path, 2).await.unwrap();
    let l = s.load().await.unwrap();
    assert_eq!(l.skipped.len(), 3, "{:?}", l.skipped);
    assert!(l.skipped.iter().any(|w| w.contains("state")));
    assert_eq!(l.rules.rules[0].alerts.len(), 1, "the good alert survives");
    assert!(l.dispatch.silences.is_empty());
    assert_eq!(l.dispatch.escalation.acks.len(), 1);
    s.close().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn faults_are_classified() {
    let dir = temp_dir();
    // Garbage: not a database.
    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let e = SqliteStore::open(&garbage, 1).await.unwrap_err();
    assert_eq!(e.kind(), FaultKind::Corrupt, "{e}");
    assert!(e.to_string().contains("garbage.db"), "{e}");
    // A directory where the file should be: cannot be opened.
    let d = dir.join("dir.db");
    std::fs::create_dir_all(&d).unwrap();
    let e = SqliteStore::open(&d, 1).await.unwrap_err();
    assert_eq!(e.kind(), FaultKind::Unwritable, "{e}");
    // A second opener of a held database is refused as locked.
    let p = dir.join("held.db");
    let first = SqliteStore::open(&p, 1).await.unwrap();
    let e = SqliteStore::open(&p, 2).await.unwrap_err();
    assert_eq!(e.kind(), FaultKind::Locked, "{e}");
    first.close().await.unwrap();
    SqliteStore::open(&p, 3)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_migration_file_is_embedded() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let embedded: Vec<String> = sqlite::MIGRATIONS
        .iter()
        .map(|(v, name, _)| format!("{v:04}_{name}.sql"))
        .collect();
    assert_eq!(files, embedded);
    for (f, (_, _, sql)) in files.iter().zip(sqlite::MIGRATIONS) {
        assert_eq!(std::fs::read_to_string(dir.join(f)).unwrap(), *sql);
    }
}

fn opts(dir: &std::path::Path) -> StateOptions {
    StateOptions::in_dir(dir)
}

#[tokio::test]
async fn corrupt_database_is_moved_aside_and_replaced() {
    let dir = temp_dir();
    std::fs::write(dir.join(DB_FILE), b"this is not sqlite at all, sorry").unwrap();
    std::fs::write(dir.join("state.db-wal"), b"stale wal").unwrap();
    let clock = Arc::new(ManualClock::new(1_234));
    let d = DurableState::open(opts(&dir), clock).await;
    assert!(d.is_open());
    let h = d.health();
    assert!(!h.healthy);
    assert_eq!(h.mode, "sqlite");
    assert!(h.message.contains("was corrupt"), "{}", h.message);
    assert!(dir.join("state.db.corrupt-1234").exists());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(dir.join("state.db-wal.corrupt-1234").exists(), "{names:?}");
    let l = d.load().await.unwrap();
    assert!(l.rules.rules.is_empty() && l.outbox.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unopenable_database_runs_memory_only_with_history_in_memory() {
    let dir = temp_dir();
    std::fs::create_dir_all(dir.join(DB_FILE)).unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let d = DurableState::open(opts(&dir), clock).await;
    assert!(!d.is_open());
    let h = d.health();
    assert!(!h.healthy);
    assert_eq!(h.mode, "memory");
    assert_eq!(h.fault, Some("unwritable"));
    assert!(h.message.contains("state.db"), "{}", h.message);
    assert!(d.load().await.is_none());
    d.record(vec![
        history("A", 10, HistoryKind::Alert),
        history("B", 20, HistoryKind::Alert),
    ]);
    let (rows, warning) = d
        .history(HistoryQuery {
            alertname: Some("B".into()),
            ..HistoryQuery::default()
        })
        .await;
    assert_eq!(rows.len(), 1);
    assert!(warning.unwrap().contains("unavailable"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unchanged_sections_are_not_rewritten() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = temp_dir();
        let d = DurableState::open(opts(&dir), Arc::new(ManualClock::new(5))).await;
        let rules = RuleStateSnapshot {
            groups: vec![],
            rules: vec![SavedRuleAlerts {
                file: "f".into(),
                group: "g".into(),
                rule: RuleKey {
                    name: "A".into(),
                    labels_hash: "0".into(),
                    ordinal: 0,
                },
                alerts: vec![active("A", AlertState::Firing)],
            }],
        };
        let (b, hashes) = d.batch(rules.clone(), DispatchSnapshot::default(), 5, 0);
        assert!(b.rule_alerts.is_some() && b.silences.is_some());
        d.hashes.lock().extend(hashes);
        let (b, _) = d.batch(rules, DispatchSnapshot::default(), 6, 0);
        assert!(b.rule_alerts.is_none() && b.silences.is_none() && b.sections.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[tokio::test]
async fn a_database_that_becomes_usable_is_opened_later_without_foreign_outbox_rows() {
    let dir = temp_dir();
    let path = dir.join(DB_FILE);
    std::fs::create_dir_all(&path).unwrap();
    let d = DurableState::open(opts(&dir), Arc::new(ManualClock::new(1_000))).await;
    assert!(!d.is_open());
    // Someone fixes the path; the file left there has another run's pending notification.
    std::fs::remove_dir(&path).unwrap();
    let other = SqliteStore::open(&path, 1).await.unwrap();
    other
        .outbox_add(vec![OutboxRow {
            integration: "x/webhook[0]".into(),
            notification: notification("g", 5),
            created_ms: 5,
        }])
        .await
        .unwrap();
    other.close().await.unwrap();
    assert!(d.try_open(true).await);
    let h = d.health();
    assert!(h.healthy, "{}", h.message);
    assert!(d.load().await.unwrap().outbox.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}
