//! The embedded SQLite implementation of [`StateStore`]: one file (`<data-dir>/state.db`), one
//! connection (the single writer), WAL journal with `synchronous=FULL` (a committed outbox row
//! survives a power cut, not only a crash), `locking_mode=EXCLUSIVE` (a second klaxon on the same
//! directory is refused instead of interleaving writes), and the schema migrations of
//! `migrations/sqlite/` embedded in the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Connection, Row, SqlSafeStr};

use super::codec::{AlertRow, decode_notification, encode_notification};
use super::error::{FaultKind, StateError};
use super::history::{HistoryEvent, HistoryKind, HistoryQuery};
use super::{LoadedState, OutboxEntry, OutboxRow, SaveBatch, Settled, StateStore, StoreFuture};
use crate::dispatch::api_types::AlertSnapshot;
use crate::dispatch::escalation::{Ack, GroupSnapshot, LapsedAck};
use crate::dispatch::nflog::EntrySnapshot;
use crate::dispatch::silence::{SilenceMatcher, SilenceSnapshot};
use crate::dispatch::{DispatchSnapshot, Fingerprint, GroupStateSnapshot};
use crate::model::Labels;
use crate::rules::{RuleKey, SavedGroup, SavedRuleAlerts};

/// The schema migrations, in order; each file is embedded, so the binary needs no migration
/// directory at run time. A test checks that every file of `migrations/sqlite/` is listed.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../../migrations/sqlite/0001_init.sql"),
)];

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The escalation section: what of [`crate::dispatch::EscalationSnapshot`] has no table.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct EscalationSection {
    /// Lapsed acks, oldest first.
    pub lapsed: Vec<LapsedAck>,
    /// Per-group escalation progress.
    pub groups: Vec<GroupSnapshot>,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(v, name, sql)| {
                Migration::new(
                    *v,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// SQLite state store; see the module docs.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: tokio::sync::Mutex<Option<SqliteConnection>>,
}

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Io { path, what, source }
}

fn corrupt(path: &Path, detail: String) -> StateError {
    StateError::Db {
        path: path.to_path_buf(),
        kind: FaultKind::Corrupt,
        source: sqlx::Error::Protocol(detail),
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, checks its integrity, applies the
    /// migrations and takes the exclusive lock by writing `meta.opened_ms`.
    pub fn open(path: &Path, now_ms: i64) -> StoreFuture<'static, SqliteStore> {
        let path = path.to_path_buf();
        Box::pin(async move { Self::open_inner(&path, now_ms).await })
    }

    async fn open_inner(path: &Path, now_ms: i64) -> Result<SqliteStore, StateError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io(dir, "creating the data directory"))?;
        }
        check_header(path)?;
        // Connect without touching the file (no pragma that reads it), so every later failure
        // goes through `close`, which waits until SQLite has let go of the file: a corrupt file
        // is only moved aside once nothing can still write next to it.
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .connect()
            .await
            .map_err(|e| StateError::db(path, e))?;
        match prepare(&mut conn, path, now_ms).await {
            Ok(()) => Ok(SqliteStore {
                path: path.to_path_buf(),
                conn: tokio::sync::Mutex::new(Some(conn)),
            }),
            Err(e) => {
                let _ = conn.close().await;
                Err(e)
            }
        }
    }

    fn err(&self, e: sqlx::Error) -> StateError {
        StateError::db(&self.path, e)
    }

    fn closed(&self) -> StateError {
        StateError::Unavailable(format!("{}: closed", self.path.display()))
    }

    async fn load_inner(&self) -> Result<LoadedState, StateError> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(|| self.closed())?;
        let mut out = LoadedState::default();
        let saved: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'saved_ms'")
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| self.err(e))?;
        out.saved_ms = saved.and_then(|s| s.parse().ok());

        let rows = sqlx::query("SELECT file, name, last_eval_ms FROM rule_groups")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?;
        for r in rows {
            match (|| -> Result<SavedGroup, sqlx::Error> {
                Ok(SavedGroup {
                    file: PathBuf::from(r.try_get::<String, _>("file")?),
                    name: r.try_get("name")?,
                    last_eval_ms: r.try_get("last_eval_ms")?,
                })
            })() {
                Ok(g) => out.rules.groups.push(g),
                Err(e) => out.skipped.push(format!("rule_groups: {e}")),
            }
        }

        let rows = sqlx::query(
            "SELECT * FROM alert_instances ORDER BY rule_file, rule_group, rule_name, \
             rule_labels_hash, rule_ordinal",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| self.err(e))?;
        let mut by_rule: BTreeMap<(String, String, RuleKey), Vec<crate::alert::ActiveAlert>> =
            BTreeMap::new();
        for r in rows {
            match alert_row(&r) {
                Ok((file, group, key, alert)) => {
                    by_rule.entry((file, group, key)).or_default().push(alert)
                }
                Err(e) => out.skipped.push(format!("alert_instances: {e}")),
            }
        }
        out.rules.rules = by_rule
            .into_iter()
            .map(|((file, group, rule), alerts)| SavedRuleAlerts {
                file: PathBuf::from(file),
                group,
                rule,
                alerts,
            })
            .collect();

        let mut snap = DispatchSnapshot::default();
        for r in sqlx::query("SELECT * FROM silences ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?
        {
            match silence_row(&r) {
                Ok(s) => snap.silences.push(s),
                Err(e) => out.skipped.push(format!("silences: {e}")),
            }
        }
        for r in sqlx::query("SELECT * FROM acks ORDER BY at_ms, fingerprint")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?
        {
            match ack_row(&r) {
                Ok(a) => snap.escalation.acks.push(a),
                Err(e) => out.skipped.push(format!("acks: {e}")),
            }
        }
        for r in sqlx::query("SELECT * FROM nflog ORDER BY group_key, integration")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?
        {
            match nflog_row(&r) {
                Ok(e) => snap.nflog.push(e),
                Err(e) => out.skipped.push(format!("nflog: {e}")),
            }
        }
        let sections = sqlx::query("SELECT section, body FROM dispatch_state")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?;
        for r in sections {
            let (Ok(section), Ok(body)) = (
                r.try_get::<String, _>("section"),
                r.try_get::<String, _>("body"),
            ) else {
                out.skipped.push("dispatch_state: unreadable row".into());
                continue;
            };
            let bad = |e: serde_json::Error| format!("dispatch_state.{section}: {e}");
            match section.as_str() {
                "alerts" => match serde_json::from_str::<Vec<AlertSnapshot>>(&body) {
                    Ok(v) => snap.alerts = v,
                    Err(e) => out.skipped.push(bad(e)),
                },
                "escalation" => match serde_json::from_str::<EscalationSection>(&body) {
                    Ok(v) => {
                        snap.escalation.lapsed = v.lapsed;
                        snap.escalation.groups = v.groups;
                    }
                    Err(e) => out.skipped.push(bad(e)),
                },
                "groups" => match serde_json::from_str::<Vec<GroupStateSnapshot>>(&body) {
                    Ok(v) => snap.groups = v,
                    Err(e) => out.skipped.push(bad(e)),
                },
                other => out
                    .skipped
                    .push(format!("dispatch_state: unknown section {other:?}")),
            }
        }
        out.dispatch = snap;

        for r in sqlx::query("SELECT * FROM outbox ORDER BY created_ms, flush_ms")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?
        {
            match outbox_row(&r) {
                Ok(o) => out.outbox.push(o),
                Err(e) => out.skipped.push(format!("outbox: {e}")),
            }
        }
        let max_seq: Option<i64> = sqlx::query_scalar("SELECT MAX(delivered_seq) FROM outbox")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| self.err(e))?;
        out.max_seq = max_seq.unwrap_or(0).max(0).unsigned_abs();
        Ok(out)
    }

    async fn save_inner(&self, b: SaveBatch) -> Result<(), StateError> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(|| self.closed())?;
        let mut tx = conn.begin().await.map_err(|e| self.err(e))?;
        let e = |e| StateError::db(&self.path, e);
        if let Some(groups) = &b.rule_groups {
            sqlx::query("DELETE FROM rule_groups")
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            for g in groups {
                sqlx::query(
                    "INSERT OR REPLACE INTO rule_groups (file, name, last_eval_ms) VALUES (?, ?, ?)",
                )
                .bind(g.file.to_string_lossy().into_owned())
                .bind(&g.name)
                .bind(g.last_eval_ms)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            }
        }
        if let Some(rules) = &b.rule_alerts {
            sqlx::query("DELETE FROM alert_instances")
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            for (r, rows) in rules {
                for a in rows {
                    sqlx::query(
                        "INSERT OR REPLACE INTO alert_instances (rule_file, rule_group, rule_name, \
                         rule_labels_hash, rule_ordinal, labels, fingerprint, annotations, state, \
                         active_at, fired_at, resolved_at, keep_firing_since, last_sent_at, \
                         valid_until, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(r.file.to_string_lossy().into_owned())
                    .bind(&r.group)
                    .bind(&r.rule.name)
                    .bind(&r.rule.labels_hash)
                    .bind(i64::try_from(r.rule.ordinal).unwrap_or(i64::MAX))
                    .bind(&a.labels)
                    .bind(&a.fingerprint)
                    .bind(&a.annotations)
                    .bind(&a.state)
                    .bind(a.active_at)
                    .bind(a.fired_at)
                    .bind(a.resolved_at)
                    .bind(a.keep_firing_since)
                    .bind(a.last_sent_at)
                    .bind(a.valid_until)
                    .bind(&a.value)
                    .execute(&mut *tx)
                    .await
                    .map_err(e)?;
                }
            }
        }
        if let Some(silences) = &b.silences {
            sqlx::query("DELETE FROM silences")
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            for s in silences {
                sqlx::query(
                    "INSERT OR REPLACE INTO silences (id, matchers, starts_at, ends_at, updated_at, \
                     created_by, comment) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&s.id)
                .bind(json(&s.matchers, "silence matchers")?)
                .bind(s.starts_at)
                .bind(s.ends_at)
                .bind(s.updated_at)
                .bind(&s.created_by)
                .bind(&s.comment)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            }
        }
        if let Some(acks) = &b.acks {
            sqlx::query("DELETE FROM acks")
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            for a in acks {
                sqlx::query(
                    "INSERT OR REPLACE INTO acks (fingerprint, labels, acked_by, comment, at_ms) \
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(a.fingerprint.to_string())
                .bind(json(&super::codec::labels_to_map(&a.labels), "ack labels")?)
                .bind(&a.by)
                .bind(&a.comment)
                .bind(a.at_ms)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            }
        }
        if let Some(nflog) = &b.nflog {
            sqlx::query("DELETE FROM nflog")
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            for n in nflog {
                sqlx::query(
                    "INSERT OR REPLACE INTO nflog (group_key, integration, firing, resolved, \
                     related, owed, ts, expires, void) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&n.group_key)
                .bind(&n.integration)
                .bind(json(&n.firing, "nflog")?)
                .bind(json(&n.resolved, "nflog")?)
                .bind(json(&n.related, "nflog")?)
                .bind(json(&n.owed, "nflog")?)
                .bind(n.ts)
                .bind(n.expires)
                .bind(n.void)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
            }
        }
        for (section, body) in &b.sections {
            sqlx::query(
                "INSERT OR REPLACE INTO dispatch_state (section, body, saved_ms) VALUES (?, ?, ?)",
            )
            .bind(*section)
            .bind(body)
            .bind(b.saved_ms)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        }
        for h in &b.history {
            insert_history(&mut tx, h).await.map_err(e)?;
        }
        if b.clear_outbox {
            sqlx::query("DELETE FROM outbox")
                .execute(&mut *tx)
                .await
                .map_err(e)?;
        } else {
            sqlx::query(
                "DELETE FROM outbox WHERE delivered_seq IS NOT NULL AND delivered_seq <= ?",
            )
            .bind(i64::try_from(b.journal_upto).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        }
        sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES ('saved_ms', ?)")
            .bind(b.saved_ms.to_string())
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)
    }

    async fn outbox_add_inner(&self, rows: Vec<OutboxRow>) -> Result<(), StateError> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(|| self.closed())?;
        let mut tx = conn.begin().await.map_err(|e| self.err(e))?;
        for r in &rows {
            let body =
                encode_notification(&r.notification).map_err(|source| StateError::Encode {
                    what: "notification",
                    source,
                })?;
            sqlx::query(
                "INSERT OR REPLACE INTO outbox (integration, group_key, flush_ms, receiver, \
                 notification, created_ms, delivered_seq, delivered_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
            )
            .bind(&r.integration)
            .bind(&r.notification.group_key)
            .bind(r.notification.now_ms)
            .bind(&r.notification.receiver)
            .bind(body)
            .bind(r.created_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn outbox_settle_inner(
        &self,
        settled: Vec<Settled>,
        history: Vec<HistoryEvent>,
    ) -> Result<(), StateError> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(|| self.closed())?;
        let mut tx = conn.begin().await.map_err(|e| self.err(e))?;
        for s in &settled {
            let q = match s.delivered {
                Some((seq, at)) => sqlx::query(
                    "UPDATE outbox SET delivered_seq = ?, delivered_ms = ? \
                     WHERE integration = ? AND group_key = ? AND flush_ms = ?",
                )
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(at),
                None => sqlx::query(
                    "DELETE FROM outbox WHERE integration = ? AND group_key = ? AND flush_ms = ?",
                ),
            };
            q.bind(&s.integration)
                .bind(&s.group_key)
                .bind(s.flush_ms)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        for h in &history {
            insert_history(&mut tx, h).await.map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn history_inner(&self, q: HistoryQuery) -> Result<Vec<HistoryEvent>, StateError> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(|| self.closed())?;
        let query = match (&q.alertname, &q.fingerprint) {
            (None, None) => sqlx::query(
                "SELECT * FROM history WHERE time_ms >= ? AND time_ms <= ? \
                 ORDER BY time_ms DESC, id DESC LIMIT ?",
            )
            .bind(q.since_ms)
            .bind(q.until_ms),
            (Some(n), None) => sqlx::query(
                "SELECT * FROM history WHERE time_ms >= ? AND time_ms <= ? AND alertname = ? \
                 ORDER BY time_ms DESC, id DESC LIMIT ?",
            )
            .bind(q.since_ms)
            .bind(q.until_ms)
            .bind(n.clone()),
            (None, Some(f)) => sqlx::query(
                "SELECT * FROM history WHERE time_ms >= ? AND time_ms <= ? AND fingerprint = ? \
                 ORDER BY time_ms DESC, id DESC LIMIT ?",
            )
            .bind(q.since_ms)
            .bind(q.until_ms)
            .bind(f.clone()),
            (Some(n), Some(f)) => sqlx::query(
                "SELECT * FROM history WHERE time_ms >= ? AND time_ms <= ? AND alertname = ? \
                 AND fingerprint = ? ORDER BY time_ms DESC, id DESC LIMIT ?",
            )
            .bind(q.since_ms)
            .bind(q.until_ms)
            .bind(n.clone())
            .bind(f.clone()),
        };
        let rows = query
            .bind(i64::from(q.limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?;
        // A row that cannot be read is left out of the answer rather than failing it.
        Ok(rows.iter().filter_map(|r| history_row(r).ok()).collect())
    }

    async fn prune_inner(&self, before_ms: i64) -> Result<u64, StateError> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(|| self.closed())?;
        sqlx::query("DELETE FROM history WHERE time_ms < ?")
            .bind(before_ms)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| self.err(e))
    }

    async fn close_inner(&self) -> Result<(), StateError> {
        let conn = self.conn.lock().await.take();
        match conn {
            Some(c) => c.close().await.map_err(|e| self.err(e)),
            None => Ok(()),
        }
    }
}

impl StateStore for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> StoreFuture<'_, LoadedState> {
        Box::pin(self.load_inner())
    }

    fn save(&self, batch: SaveBatch) -> StoreFuture<'_, ()> {
        Box::pin(self.save_inner(batch))
    }

    fn outbox_add(&self, rows: Vec<OutboxRow>) -> StoreFuture<'_, ()> {
        Box::pin(self.outbox_add_inner(rows))
    }

    fn outbox_settle(
        &self,
        settled: Vec<Settled>,
        history: Vec<HistoryEvent>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.outbox_settle_inner(settled, history))
    }

    fn history(&self, q: HistoryQuery) -> StoreFuture<'_, Vec<HistoryEvent>> {
        Box::pin(self.history_inner(q))
    }

    fn prune_history(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        Box::pin(self.prune_inner(before_ms))
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.close_inner())
    }
}

/// SQLite's file header; a non-empty file without it is not a database (checked before SQLite
/// opens it, so a garbage file never gets a WAL of its own).
const HEADER: &[u8; 16] = b"SQLite format 3\0";

fn check_header(path: &Path) -> Result<(), StateError> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Unreadable or a directory: SQLite reports it with its own words.
        Err(_) => return Ok(()),
    };
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return Ok(()),
        }
    }
    if n == 0 || head == *HEADER {
        Ok(())
    } else {
        Err(corrupt(path, "file is not a database (bad header)".into()))
    }
}

/// Locking, journal and durability settings, integrity check, migrations, and the write that
/// takes the exclusive lock.
async fn prepare(conn: &mut SqliteConnection, path: &Path, now_ms: i64) -> Result<(), StateError> {
    let db = |e| StateError::db(path, e);
    for pragma in [
        "PRAGMA locking_mode = EXCLUSIVE",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL",
    ] {
        sqlx::query(pragma).execute(&mut *conn).await.map_err(db)?;
    }
    let check: String = sqlx::query_scalar("PRAGMA quick_check(1)")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if check != "ok" {
        return Err(corrupt(path, format!("integrity check: {check}")));
    }
    // `run_direct` is sqlx's documented way around "`Acquire` is not general enough" when
    // the future must be `Send` (it is what `run` calls).
    migrator()
        .run_direct(None, &mut *conn, false)
        .await
        .map_err(|source| StateError::Migrate {
            path: path.to_path_buf(),
            source,
        })?;
    sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_ms', ?)")
        .bind(now_ms.to_string())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

fn json<T: serde::Serialize + ?Sized>(v: &T, what: &'static str) -> Result<String, StateError> {
    serde_json::to_string(v).map_err(|source| StateError::Encode { what, source })
}

async fn insert_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    h: &HistoryEvent,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO history (time_ms, kind, source, alertname, fingerprint, labels, from_state, \
         to_state, integration, receiver, channel, group_key, outcome, error, attempts) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(h.time_ms)
    .bind(h.kind.as_str())
    .bind(&h.source)
    .bind(&h.alertname)
    .bind(&h.fingerprint)
    .bind(serde_json::to_string(&h.labels).unwrap_or_else(|_| "{}".into()))
    .bind(&h.from_state)
    .bind(&h.to_state)
    .bind(&h.integration)
    .bind(&h.receiver)
    .bind(&h.channel)
    .bind(&h.group_key)
    .bind(&h.outcome)
    .bind(&h.error)
    .bind(h.attempts.map(i64::from))
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

type RowResult<T> = Result<T, String>;

fn get<'r, T>(r: &'r SqliteRow, col: &str) -> RowResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    r.try_get(col).map_err(|e| format!("{col}: {e}"))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, col: &str) -> RowResult<T> {
    serde_json::from_str(s).map_err(|e| format!("{col}: {e}"))
}

fn alert_row(r: &SqliteRow) -> RowResult<(String, String, RuleKey, crate::alert::ActiveAlert)> {
    let file: String = get(r, "rule_file")?;
    let group: String = get(r, "rule_group")?;
    let ordinal: i64 = get(r, "rule_ordinal")?;
    let key = RuleKey {
        name: get(r, "rule_name")?,
        labels_hash: get(r, "rule_labels_hash")?,
        ordinal: usize::try_from(ordinal).map_err(|_| format!("rule_ordinal {ordinal}"))?,
    };
    let row = AlertRow {
        labels: get(r, "labels")?,
        fingerprint: get(r, "fingerprint")?,
        annotations: get(r, "annotations")?,
        state: get(r, "state")?,
        active_at: get(r, "active_at")?,
        fired_at: get(r, "fired_at")?,
        resolved_at: get(r, "resolved_at")?,
        keep_firing_since: get(r, "keep_firing_since")?,
        last_sent_at: get(r, "last_sent_at")?,
        valid_until: get(r, "valid_until")?,
        value: get(r, "value")?,
    };
    let alert = row.decode()?;
    Ok((file, group, key, alert))
}

fn silence_row(r: &SqliteRow) -> RowResult<SilenceSnapshot> {
    let matchers: String = get(r, "matchers")?;
    Ok(SilenceSnapshot {
        id: get(r, "id")?,
        matchers: from_json::<Vec<SilenceMatcher>>(&matchers, "matchers")?,
        starts_at: get(r, "starts_at")?,
        ends_at: get(r, "ends_at")?,
        updated_at: get(r, "updated_at")?,
        created_by: get(r, "created_by")?,
        comment: get(r, "comment")?,
    })
}

fn ack_row(r: &SqliteRow) -> RowResult<Ack> {
    let fp: String = get(r, "fingerprint")?;
    let labels: String = get(r, "labels")?;
    let labels: BTreeMap<String, String> = from_json(&labels, "labels")?;
    Ok(Ack {
        fingerprint: fp
            .parse::<Fingerprint>()
            .map_err(|e| format!("fingerprint {fp:?}: {e}"))?,
        labels: Labels::from_pairs(labels),
        by: get(r, "acked_by")?,
        comment: get(r, "comment")?,
        at_ms: get(r, "at_ms")?,
    })
}

fn nflog_row(r: &SqliteRow) -> RowResult<EntrySnapshot> {
    let list = |col: &str| -> RowResult<Vec<String>> {
        let s: String = get(r, col)?;
        from_json(&s, col)
    };
    Ok(EntrySnapshot {
        group_key: get(r, "group_key")?,
        integration: get(r, "integration")?,
        firing: list("firing")?,
        resolved: list("resolved")?,
        related: list("related")?,
        owed: list("owed")?,
        ts: get(r, "ts")?,
        expires: get(r, "expires")?,
        void: get(r, "void")?,
    })
}

fn outbox_row(r: &SqliteRow) -> RowResult<OutboxEntry> {
    let body: String = get(r, "notification")?;
    let seq: Option<i64> = get(r, "delivered_seq")?;
    let at: Option<i64> = get(r, "delivered_ms")?;
    let notification = decode_notification(&body).map_err(|e| format!("notification: {e}"))?;
    let group_key: String = get(r, "group_key")?;
    let flush_ms: i64 = get(r, "flush_ms")?;
    if notification.group_key != group_key || notification.now_ms != flush_ms {
        return Err("notification does not match its key".into());
    }
    Ok(OutboxEntry {
        row: OutboxRow {
            integration: get(r, "integration")?,
            notification,
            created_ms: get(r, "created_ms")?,
        },
        delivered: match (seq, at) {
            (Some(s), Some(t)) => Some((s.max(0).unsigned_abs(), t)),
            _ => None,
        },
    })
}

fn history_row(r: &SqliteRow) -> RowResult<HistoryEvent> {
    let kind: String = get(r, "kind")?;
    let labels: String = get(r, "labels")?;
    let attempts: Option<i64> = get(r, "attempts")?;
    Ok(HistoryEvent {
        time_ms: get(r, "time_ms")?,
        kind: HistoryKind::parse(&kind).ok_or_else(|| format!("kind {kind:?}"))?,
        source: get(r, "source")?,
        alertname: get(r, "alertname")?,
        fingerprint: get(r, "fingerprint")?,
        labels: from_json(&labels, "labels")?,
        from_state: get(r, "from_state")?,
        to_state: get(r, "to_state")?,
        integration: get(r, "integration")?,
        receiver: get(r, "receiver")?,
        channel: get(r, "channel")?,
        group_key: get(r, "group_key")?,
        outcome: get(r, "outcome")?,
        error: get(r, "error")?,
        attempts: attempts.and_then(|a| u32::try_from(a).ok()),
    })
}
