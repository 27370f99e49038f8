//! Durable state: everything that must outlive the process, behind one trait.
//!
//! [`StateStore`] is the seam: [`SqliteStore`] (an embedded database file,
//! `<data-dir>/state.db`, no server to install) implements it today; a PostgreSQL store for
//! several replicas sharing one state can implement the same trait with `sqlx`'s `postgres`
//! feature (the queries are plain SQL, the schema lives in `migrations/<backend>/`).
//!
//! What is kept: rule alert instances (state, active since, fired at, keep-firing since,
//! resolved at, last sent), the dispatcher's alerts, notification log, silences,
//! acknowledgements, escalation progress and escalated receivers, the outbox of notifications
//! handed to the notifier, and the history of alert state changes and notification attempts.
//!
//! When it is written ([`DurableState`]):
//!
//! - a snapshot of rule and dispatcher state every `--state-save-interval` (1s) and at a clean
//!   shutdown, in one transaction, skipping sections that did not change; alert state-change
//!   history is buffered in memory and written with it (so it is as durable as the state it
//!   describes);
//! - outbox rows synchronously: inserted before a notification is submitted, and settled right
//!   after its delivery report together with the attempt's history rows (deleted on failure; on
//!   success marked delivered and kept as a journal entry until the next snapshot, which then
//!   holds the notification-log record, commits).
//!
//! Delivery is at least once: a send the receiver acknowledged whose report was not yet
//! committed when the process died is sent again after restart (the window is the time between
//! the receiver's answer and the commit of the outbox update, a few milliseconds); a notification
//! whose outbox row committed is never lost, and one marked delivered is never repeated.
//!
//! Faults never stop the server: an unwritable directory, a locked (another klaxon) or
//! unmigratable database leaves klaxon running memory-only (retrying every 30s); a corrupt file
//! is moved aside as `state.db.corrupt-<ms>` and a fresh database started; write failures (a full
//! disk) keep the state in memory and retry at the next save. Each is logged with the path and
//! cause (rate-limited) and reported by the `state` check of `/health/detailed`.

pub mod codec;
pub mod error;
pub mod history;
pub mod restore;
pub mod sqlite;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

pub use error::{FaultKind, StateError};
pub use history::{HistoryEvent, HistoryKind, HistoryQuery};
pub use restore::ForRestore;
pub use sqlite::SqliteStore;

use crate::clock::SharedClock;
use crate::dispatch::api_types::AlertSnapshot;
use crate::dispatch::escalation::Ack;
use crate::dispatch::nflog::EntrySnapshot;
use crate::dispatch::silence::SilenceSnapshot;
use crate::dispatch::{DispatchSnapshot, Dispatcher, GroupStateSnapshot, Notification};
use crate::rules::{AlertChange, AlertEvents, Manager, RuleKey, RuleStateSnapshot, SavedGroup};
use codec::AlertRow;

/// The future every [`StateStore`] method returns (boxed, so the trait stays object safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// Durable storage of klaxon's state; implemented by [`SqliteStore`], later by a shared
/// PostgreSQL store.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// Where the state lives (a path or a redacted URL), for logs and health.
    fn location(&self) -> String;
    /// Reads everything back (start-up); unreadable rows are skipped and listed.
    fn load(&self) -> StoreFuture<'_, LoadedState>;
    /// Writes one snapshot (changed sections only) and buffered history in one transaction.
    fn save(&self, batch: SaveBatch) -> StoreFuture<'_, ()>;
    /// Records notifications about to be submitted (committed before they are).
    fn outbox_add(&self, rows: Vec<OutboxRow>) -> StoreFuture<'_, ()>;
    /// Settles outbox rows after their delivery reports and records the attempts' history, in
    /// one transaction.
    fn outbox_settle(
        &self,
        settled: Vec<Settled>,
        history: Vec<HistoryEvent>,
    ) -> StoreFuture<'_, ()>;
    /// Answers a history query, newest first.
    fn history(&self, q: HistoryQuery) -> StoreFuture<'_, Vec<HistoryEvent>>;
    /// Deletes history older than `before_ms`; returns the rows deleted.
    fn prune_history(&self, before_ms: i64) -> StoreFuture<'_, u64>;
    /// Flushes and releases the store (clean shutdown).
    fn close(&self) -> StoreFuture<'_, ()>;
}

/// A notification handed to the notifier, keyed by integration, group key and flush time.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Integration id.
    pub integration: String,
    /// What is being sent.
    pub notification: Notification,
    /// When the row was written (ms).
    pub created_ms: i64,
}

/// An outbox row read back at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The row.
    pub row: OutboxRow,
    /// `(sequence, time)` when its delivery succeeded but no snapshot holds it yet.
    pub delivered: Option<(u64, i64)>,
}

/// How one outbox row was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Integration id.
    pub integration: String,
    /// Group key.
    pub group_key: String,
    /// Flush time of the notification (ms).
    pub flush_ms: i64,
    /// `Some((sequence, time))`: delivered, keep as journal; `None`: failed, delete.
    pub delivered: Option<(u64, i64)>,
}

/// Which rule a list of stored alerts belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleRef {
    /// Group file.
    pub file: PathBuf,
    /// Group name.
    pub group: String,
    /// The rule within the group.
    pub rule: RuleKey,
}

/// One snapshot write; `None` sections did not change since the last successful save.
#[derive(Debug, Clone, Default)]
pub struct SaveBatch {
    /// Snapshot time (ms).
    pub saved_ms: i64,
    /// Groups' last evaluations.
    pub rule_groups: Option<Vec<SavedGroup>>,
    /// Rule alerts, encoded.
    pub rule_alerts: Option<Vec<(RuleRef, Vec<AlertRow>)>>,
    /// Silences.
    pub silences: Option<Vec<SilenceSnapshot>>,
    /// Acks in force.
    pub acks: Option<Vec<Ack>>,
    /// Notification log.
    pub nflog: Option<Vec<EntrySnapshot>>,
    /// Changed opaque sections (`alerts`, `escalation`, `groups`) as JSON.
    pub sections: Vec<(&'static str, String)>,
    /// History events to append.
    pub history: Vec<HistoryEvent>,
    /// Delivered outbox rows up to this sequence are now in the notification log: delete them.
    pub journal_upto: u64,
    /// Delete every outbox row (on a late open: the rows are another run's).
    pub clear_outbox: bool,
}

/// Everything read back at start-up.
#[derive(Debug, Clone, Default)]
pub struct LoadedState {
    /// When the last snapshot was written (ms).
    pub saved_ms: Option<i64>,
    /// Rule alert state.
    pub rules: RuleStateSnapshot,
    /// Dispatcher state.
    pub dispatch: DispatchSnapshot,
    /// Outbox rows (pending and delivered-not-yet-snapshotted).
    pub outbox: Vec<OutboxEntry>,
    /// Highest delivered sequence in the outbox.
    pub max_seq: u64,
    /// Rows that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Settings of durable state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateOptions {
    /// The database file.
    pub path: PathBuf,
    /// `--state sqlite`; false (`--state off`) keeps everything in memory by choice.
    pub enabled: bool,
    /// Snapshot period (ms).
    pub save_interval_ms: i64,
    /// How long history is kept (ms).
    pub history_retention_ms: i64,
    /// Restart rules for `for` state.
    pub for_restore: ForRestore,
}

impl StateOptions {
    /// Defaults for `<data_dir>/state.db`.
    pub fn in_dir(data_dir: &Path) -> StateOptions {
        StateOptions {
            path: data_dir.join(DB_FILE),
            enabled: true,
            save_interval_ms: 1_000,
            history_retention_ms: DEFAULT_HISTORY_RETENTION_MS,
            for_restore: ForRestore::default(),
        }
    }
}

/// The database file name inside `--data-dir`.
pub const DB_FILE: &str = "state.db";
/// Default `--history-retention`: a week.
pub const DEFAULT_HISTORY_RETENTION_MS: i64 = 7 * 24 * 3_600_000;
/// Most history events held in memory (unwritten, or all of them when memory-only).
pub const MAX_BUFFERED_HISTORY: usize = 50_000;
/// How often a missing database is retried.
const REOPEN_INTERVAL_MS: i64 = 30_000;
/// How often history retention runs.
const PRUNE_INTERVAL_MS: i64 = 3_600_000;
/// Repeated failures are logged at most this often.
const LOG_EVERY_MS: i64 = 60_000;

/// The `state` check of `/health/detailed`.
#[derive(Debug, Clone, Serialize)]
pub struct StateHealth {
    /// Persisting normally.
    pub healthy: bool,
    /// `sqlite`, `memory` (the database is unavailable) or `disabled`.
    pub mode: &'static str,
    /// The database file.
    pub path: String,
    /// One line: what is wrong and where, or that all is well.
    pub message: String,
    /// `corrupt`, `locked`, `full`, `unwritable`, `migration` or `error`.
    pub fault: Option<&'static str>,
    /// The last error.
    pub last_error: Option<String>,
    /// Where a corrupt database was moved.
    pub corrupt_copy: Option<String>,
    /// Last successful snapshot (ms).
    pub last_save_ms: Option<i64>,
    /// Failed writes since start.
    pub write_failures: u64,
    /// Rows skipped at start-up because they could not be read.
    pub skipped_rows: usize,
    /// History events waiting in memory.
    pub history_buffered: usize,
    /// History events dropped because the buffer was full.
    pub history_dropped: u64,
}

#[derive(Debug, Default)]
struct Status {
    fault: Option<(FaultKind, String)>,
    corrupt_copy: Option<PathBuf>,
    last_save_ms: Option<i64>,
    write_failures: u64,
    skipped_rows: usize,
    last_log_ms: i64,
    suppressed: u64,
    last_open_ms: i64,
}

/// The process's handle on durable state: the store (or none, memory-only), health, the
/// history buffer, the outbox sequence and the snapshot loop.
pub struct DurableState {
    opts: StateOptions,
    clock: SharedClock,
    store: RwLock<Option<Arc<dyn StateStore>>>,
    status: Mutex<Status>,
    history: Mutex<VecDeque<HistoryEvent>>,
    history_dropped: AtomicU64,
    seq: AtomicU64,
    hashes: Mutex<HashMap<&'static str, u64>>,
}

impl std::fmt::Debug for DurableState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableState")
            .field("path", &self.opts.path)
            .field("open", &self.store.read().is_some())
            .finish_non_exhaustive()
    }
}

fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Hash of a section's JSON form, for sections without a `Hash` impl.
fn json_hash<T: Serialize>(v: &T) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    match serde_json::to_vec(v) {
        Ok(bytes) => h.write(&bytes),
        // Unserializable: a fresh value every time, so the section is always written (and fails).
        Err(_) => h.write_u64(rand_like()),
    }
    h.finish()
}

fn rand_like() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Moves a corrupt database (and its WAL) aside; returns the new name of the main file.
fn move_aside(path: &Path, now_ms: i64) -> Result<PathBuf, StateError> {
    let suffix = format!(".corrupt-{now_ms}");
    let target = PathBuf::from(format!("{}{suffix}", path.display()));
    std::fs::rename(path, &target).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        what: "moving the corrupt database aside",
        source,
    })?;
    for side in ["-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{side}", path.display()));
        if p.exists() {
            let _ = std::fs::rename(&p, format!("{}{side}{suffix}", path.display()));
        }
    }
    Ok(target)
}

impl DurableState {
    /// Opens the store (see the module docs for what happens on each fault); never fails.
    pub async fn open(opts: StateOptions, clock: SharedClock) -> Arc<DurableState> {
        let st = Arc::new(DurableState {
            opts,
            clock,
            store: RwLock::new(None),
            status: Mutex::new(Status::default()),
            history: Mutex::new(VecDeque::new()),
            history_dropped: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            hashes: Mutex::new(HashMap::new()),
        });
        if st.opts.enabled {
            st.try_open(false).await;
        } else {
            tracing::warn!(
                event_type = "system",
                "durable state off (--state off): alert state, silences and acks do not survive a restart"
            );
        }
        st
    }

    /// The options in force.
    pub fn options(&self) -> &StateOptions {
        &self.opts
    }

    fn current(&self) -> Option<Arc<dyn StateStore>> {
        self.store.read().clone()
    }

    /// Whether a database is open.
    pub fn is_open(&self) -> bool {
        self.store.read().is_some()
    }

    async fn try_open(&self, late: bool) -> bool {
        let path = self.opts.path.clone();
        let now = self.clock.now_ms();
        self.status.lock().last_open_ms = now;
        let mut result = SqliteStore::open(&path, now).await;
        if let Err(e) = &result
            && e.kind() == FaultKind::Corrupt
        {
            tracing::error!(event_type = "error", path = %path.display(), error = %e,
                "state database is corrupt; moving it aside and starting with empty state");
            match move_aside(&path, now) {
                Ok(copy) => {
                    self.status.lock().corrupt_copy = Some(copy);
                    result = SqliteStore::open(&path, now).await;
                }
                Err(e2) => result = Err(e2),
            }
        }
        if late && let Ok(s) = &result {
            // Its outbox rows belong to another run (this one could not write any): drop them
            // before this run's rows go in.
            let clear = SaveBatch {
                saved_ms: now,
                clear_outbox: true,
                ..SaveBatch::default()
            };
            if let Err(e) = s.save(clear).await {
                let _ = s.close().await;
                result = Err(e);
            }
        }
        match result {
            Ok(s) => {
                tracing::info!(event_type = "system", path = %path.display(), "state database open");
                *self.store.write() = Some(Arc::new(s));
                self.hashes.lock().clear();
                self.status.lock().fault = None;
                if late {
                    tracing::info!(event_type = "system", path = %path.display(),
                        "state database available again; persisting the current state");
                }
                true
            }
            Err(e) => {
                let first = self.status.lock().fault.is_none();
                if first {
                    tracing::error!(event_type = "error", path = %path.display(), fault = e.kind().as_str(),
                        error = %e, "cannot open the state database; running memory-only (state will not survive a restart)");
                }
                self.status.lock().fault = Some((e.kind(), e.to_string()));
                false
            }
        }
    }

    /// Records a failure: health turns degraded; logged at once, then at most once a minute.
    fn note_error(&self, what: &str, e: &StateError) {
        let now = self.clock.now_ms();
        let mut st = self.status.lock();
        st.write_failures += 1;
        let first = st.fault.is_none();
        st.fault = Some((e.kind(), e.to_string()));
        if first || now.saturating_sub(st.last_log_ms) >= LOG_EVERY_MS {
            let suppressed = std::mem::take(&mut st.suppressed);
            st.last_log_ms = now;
            drop(st);
            tracing::error!(event_type = "error", path = %self.opts.path.display(), operation = what,
                fault = e.kind().as_str(), error = %e, suppressed,
                "state write failed; keeping state in memory and retrying");
        } else {
            st.suppressed += 1;
        }
        if e.kind() == FaultKind::Corrupt {
            // The file went bad under us: drop it; the reopen loop moves it aside.
            *self.store.write() = None;
        }
    }

    fn note_ok(&self) {
        let mut st = self.status.lock();
        if st.fault.take().is_some() {
            tracing::info!(event_type = "system", path = %self.opts.path.display(),
                "state writes succeed again");
        }
        st.suppressed = 0;
    }

    /// Reads the saved state back (start-up); `None` when there is no database or reading failed.
    pub async fn load(&self) -> Option<LoadedState> {
        let store = self.current()?;
        match store.load().await {
            Ok(l) => {
                self.seq.fetch_max(l.max_seq, Ordering::SeqCst);
                for why in l.skipped.iter().take(20) {
                    tracing::warn!(event_type = "error", path = %self.opts.path.display(),
                        row = %why, "unreadable state row skipped");
                }
                self.status.lock().skipped_rows = l.skipped.len();
                tracing::info!(event_type = "system", path = %self.opts.path.display(),
                    rules = l.rules.rules.len(), alerts = l.dispatch.alerts.len(),
                    silences = l.dispatch.silences.len(), acks = l.dispatch.escalation.acks.len(),
                    nflog = l.dispatch.nflog.len(), outbox = l.outbox.len(),
                    skipped = l.skipped.len(), "durable state loaded");
                Some(l)
            }
            Err(e) => {
                self.note_error("load", &e);
                None
            }
        }
    }

    /// Buffers history events (written with the next snapshot; kept in memory when memory-only).
    pub fn record(&self, events: Vec<HistoryEvent>) {
        if events.is_empty() {
            return;
        }
        let mut h = self.history.lock();
        h.extend(events);
        let over = h.len().saturating_sub(MAX_BUFFERED_HISTORY);
        if over > 0 {
            h.drain(..over);
            self.history_dropped
                .fetch_add(over as u64, Ordering::Relaxed);
        }
    }

    /// The next delivered-outbox sequence number (call after the dispatcher logged the delivery).
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Writes outbox rows before their notifications are submitted; a failure is reported and
    /// the notifications go out anyway (delivery never waits for a disk).
    pub async fn outbox_add(&self, rows: Vec<OutboxRow>) {
        let Some(store) = self.current() else { return };
        if rows.is_empty() {
            return;
        }
        match store.outbox_add(rows).await {
            Ok(()) => self.note_ok(),
            Err(e) => self.note_error("outbox insert", &e),
        }
    }

    /// Settles outbox rows after their delivery reports, with the attempts' history rows in the
    /// same transaction (so a recorded delivery is never lost to a crash); without a database, or
    /// when the write fails, the history waits in memory for the next snapshot.
    pub async fn outbox_settle(&self, settled: Vec<Settled>, history: Vec<HistoryEvent>) {
        let Some(store) = self.current() else {
            self.record(history);
            return;
        };
        if settled.is_empty() && history.is_empty() {
            return;
        }
        let keep = history.clone();
        match store.outbox_settle(settled, history).await {
            Ok(()) => self.note_ok(),
            Err(e) => {
                self.record(keep);
                self.note_error("outbox settle", &e);
            }
        }
    }

    /// Builds the snapshot batch, keeping only sections whose content changed; returns the new
    /// section hashes to remember once the write commits.
    fn batch(
        &self,
        rules: RuleStateSnapshot,
        disp: DispatchSnapshot,
        now: i64,
        upto: u64,
    ) -> (SaveBatch, Vec<(&'static str, u64)>) {
        let known = self.hashes.lock().clone();
        let mut new_hashes = Vec::new();
        let mut changed = |name: &'static str, h: u64| -> bool {
            new_hashes.push((name, h));
            known.get(name) != Some(&h)
        };
        let mut b = SaveBatch {
            saved_ms: now,
            journal_upto: upto,
            ..SaveBatch::default()
        };
        let groups_h = hash_of(
            &rules
                .groups
                .iter()
                .map(|g| (&g.file, &g.name, g.last_eval_ms))
                .collect::<Vec<_>>(),
        );
        if changed("rule_groups", groups_h) {
            b.rule_groups = Some(rules.groups);
        }
        let rows: Vec<(RuleRef, Vec<AlertRow>)> = rules
            .rules
            .into_iter()
            .map(|r| {
                let rows = r
                    .alerts
                    .iter()
                    .filter_map(|a| AlertRow::encode(a).ok())
                    .collect();
                (
                    RuleRef {
                        file: r.file,
                        group: r.group,
                        rule: r.rule,
                    },
                    rows,
                )
            })
            .collect();
        if changed("rule_alerts", hash_of(&rows)) {
            b.rule_alerts = Some(rows);
        }
        if changed("silences", json_hash(&disp.silences)) {
            b.silences = Some(disp.silences);
        }
        if changed("acks", json_hash(&disp.escalation.acks)) {
            b.acks = Some(disp.escalation.acks);
        }
        if changed("nflog", json_hash(&disp.nflog)) {
            b.nflog = Some(disp.nflog);
        }
        let esc = sqlite::EscalationSection {
            lapsed: disp.escalation.lapsed,
            groups: disp.escalation.groups,
        };
        let sections: [(&'static str, Option<String>); 3] = [
            (
                "alerts",
                serde_json::to_string::<Vec<AlertSnapshot>>(&disp.alerts).ok(),
            ),
            ("escalation", serde_json::to_string(&esc).ok()),
            (
                "groups",
                serde_json::to_string::<Vec<GroupStateSnapshot>>(&disp.groups).ok(),
            ),
        ];
        for (name, body) in sections {
            if let Some(body) = body
                && changed(name, hash_of(&body))
            {
                b.sections.push((name, body));
            }
        }
        (b, new_hashes)
    }

    /// Takes and writes one snapshot of `rules` and `dispatcher` plus the buffered history;
    /// returns whether it committed.
    pub async fn save(&self, rules: &Manager, dispatcher: &Arc<Dispatcher>) -> bool {
        let Some(store) = self.current() else {
            return false;
        };
        // Read the journal watermark before the snapshot: every delivery numbered up to it is
        // already in the dispatcher's notification log the snapshot copies.
        let upto = self.seq.load(Ordering::SeqCst);
        let (mgr, disp) = (rules.clone(), Arc::clone(dispatcher));
        let Ok((rule_snap, disp_snap)) =
            tokio::task::spawn_blocking(move || (mgr.snapshot_alert_state(), disp.snapshot()))
                .await
        else {
            return false;
        };
        let now = self.clock.now_ms();
        let (mut batch, hashes) = self.batch(rule_snap, disp_snap, now, upto);
        batch.history = self.history.lock().drain(..).collect();
        let history_len = batch.history.len();
        let unwritten = (history_len > 0).then(|| batch.history.clone());
        match store.save(batch).await {
            Ok(()) => {
                self.hashes.lock().extend(hashes);
                self.status.lock().last_save_ms = Some(now);
                self.note_ok();
                true
            }
            Err(e) => {
                // Put the history back in front of anything recorded meanwhile.
                if let Some(mut old) = unwritten {
                    let mut h = self.history.lock();
                    old.extend(h.drain(..));
                    *h = old.into();
                    let over = h.len().saturating_sub(MAX_BUFFERED_HISTORY);
                    h.drain(..over);
                }
                self.note_error("snapshot", &e);
                false
            }
        }
    }

    /// Deletes history past retention (in the database and the in-memory buffer).
    pub async fn prune(&self) {
        let before = self.clock.now_ms() - self.opts.history_retention_ms;
        self.history.lock().retain(|e| e.time_ms >= before);
        let Some(store) = self.current() else { return };
        match store.prune_history(before).await {
            Ok(n) if n > 0 => {
                tracing::debug!(event_type = "system", rows = n, "history retention pass");
            }
            Ok(_) => {}
            Err(e) => self.note_error("history retention", &e),
        }
    }

    /// Answers a history query from the database plus events not written yet; the second value
    /// is a warning when the database could not be read (the answer then holds memory only).
    pub async fn history(&self, q: HistoryQuery) -> (Vec<HistoryEvent>, Option<String>) {
        let mut out: Vec<HistoryEvent> = self
            .history
            .lock()
            .iter()
            .filter(|e| q.matches(e))
            .cloned()
            .collect();
        let mut warning = None;
        match self.current() {
            Some(store) => match store.history(q.clone()).await {
                Ok(rows) => out.extend(rows),
                Err(e) => {
                    warning = Some(format!(
                        "history database unreadable ({e}); showing unwritten events only"
                    ));
                }
            },
            None => {
                let why = self
                    .status
                    .lock()
                    .fault
                    .as_ref()
                    .map_or_else(|| "disabled".to_string(), |(_, m)| m.clone());
                warning = Some(format!(
                    "state database unavailable ({why}); showing the in-memory history of this run only"
                ));
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.time_ms));
        out.truncate(q.limit as usize);
        (out, warning)
    }

    /// The `state` health check.
    pub fn health(&self) -> StateHealth {
        let st = self.status.lock();
        let open = self.is_open();
        let mode = if !self.opts.enabled {
            "disabled"
        } else if open {
            "sqlite"
        } else {
            "memory"
        };
        let path = self.opts.path.display().to_string();
        let mut problems = Vec::new();
        if let Some((kind, msg)) = &st.fault {
            problems.push(if open {
                format!("writes failing ({}): {msg}", kind.as_str())
            } else {
                format!(
                    "memory-only, state will not survive a restart ({}): {msg}",
                    kind.as_str()
                )
            });
        }
        if let Some(c) = &st.corrupt_copy {
            problems.push(format!(
                "{path} was corrupt: moved to {}; started with empty state",
                c.display()
            ));
        }
        if st.skipped_rows > 0 {
            problems.push(format!(
                "{} unreadable row(s) skipped at start-up",
                st.skipped_rows
            ));
        }
        let healthy = problems.is_empty();
        let message = if !self.opts.enabled {
            "durable state off (--state off): state does not survive a restart".to_string()
        } else if healthy {
            format!("persisting to {path}")
        } else {
            problems.join("; ")
        };
        StateHealth {
            healthy: healthy || !self.opts.enabled,
            mode,
            path,
            message,
            fault: st.fault.as_ref().map(|(k, _)| k.as_str()),
            last_error: st.fault.as_ref().map(|(_, m)| m.clone()),
            corrupt_copy: st.corrupt_copy.as_ref().map(|c| c.display().to_string()),
            last_save_ms: st.last_save_ms,
            write_failures: st.write_failures,
            skipped_rows: st.skipped_rows,
            history_buffered: self.history.lock().len(),
            history_dropped: self.history_dropped.load(Ordering::Relaxed),
        }
    }

    /// The snapshot loop: saves every interval, prunes history hourly and retries a missing
    /// database every 30s, until `shutdown` fires (the final save is the caller's, after the
    /// rule manager and the pipeline stopped).
    pub async fn run(
        self: Arc<Self>,
        rules: Manager,
        dispatcher: Arc<Dispatcher>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut last_prune = i64::MIN;
        loop {
            let next = self.clock.now_ms() + self.opts.save_interval_ms.max(10);
            tokio::select! {
                _ = self.clock.sleep_until(next) => {}
                _ = shutdown.changed() => return,
            }
            let now = self.clock.now_ms();
            if self.opts.enabled && !self.is_open() {
                let last = self.status.lock().last_open_ms;
                if now.saturating_sub(last) >= REOPEN_INTERVAL_MS {
                    self.try_open(true).await;
                }
            }
            if now.saturating_sub(last_prune) >= PRUNE_INTERVAL_MS {
                last_prune = now;
                self.prune().await;
            }
            self.save(&rules, &dispatcher).await;
        }
    }

    /// Final save and close at a clean shutdown.
    pub async fn shutdown(&self, rules: &Manager, dispatcher: &Arc<Dispatcher>) {
        if self.save(rules, dispatcher).await {
            tracing::info!(event_type = "system", path = %self.opts.path.display(), "state saved");
        }
        let store = self.store.write().take();
        if let Some(s) = store
            && let Err(e) = s.close().await
        {
            tracing::warn!(event_type = "error", error = %e, "closing the state database failed");
        }
    }
}

impl AlertEvents for DurableState {
    fn changed(&self, changes: Vec<AlertChange>) {
        self.record(changes.iter().map(HistoryEvent::from_rule).collect());
    }
}

/// Outbox keys of notifications re-submitted after a restart, to hold back new flushes of
/// the same group and integration until they are settled.
pub type RestoredKeys = HashSet<(String, String, i64)>;

#[cfg(test)]
mod tests;
