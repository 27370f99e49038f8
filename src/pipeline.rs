//! The running delivery pipeline of `klaxon serve`: alert sources (rule evaluations, the
//! Alertmanager and trigger APIs) feed the dispatcher; one loop on the clock ticks it at its
//! deadlines, hands due notifications to the notifier, and feeds delivery reports back into the
//! notification log. Config reloads swap both halves without losing alerts, silences or acks.
//!
//! With durable state attached ([`Pipeline::set_durable`]), every notification gets an outbox row
//! before it is submitted and the row is settled right after its report; at start-up
//! [`Pipeline::restore`] brings back the dispatcher and re-submits what was still in the outbox.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::clock::SharedClock;
use crate::config::{CompiledDelivery, Config};
use crate::dispatch::{Alert, Dispatch, DispatchSnapshot, Dispatcher};
use crate::notify::{DeliveryReport, Notifier, NotifierOptions, NotifyMetrics};
use crate::rules::AlertSink;
use crate::state::{DurableState, HistoryEvent, OutboxEntry, OutboxRow, RestoredKeys, Settled};

/// The outcome of the last delivery-config load, for `/health/detailed` and the logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigStatus {
    /// The file, when one is used.
    pub path: Option<PathBuf>,
    /// The last load succeeded.
    pub ok: bool,
    /// Why the last load failed (the previous config stays active).
    pub error: Option<String>,
    /// Clock ms of the last load attempt.
    pub loaded_ms: i64,
    /// `receiver/kind[i]: reason` for every integration that cannot send.
    pub unconfigured: Vec<String>,
}

/// Shared handle of the delivery pipeline.
pub struct Pipeline {
    /// Routing, grouping, muting, escalation and correlation state.
    pub dispatcher: Arc<Dispatcher>,
    notifier: ArcSwap<Notifier>,
    delivery: ArcSwap<CompiledDelivery>,
    clock: SharedClock,
    wake: tokio::sync::Notify,
    metrics: Arc<NotifyMetrics>,
    reports_tx: mpsc::UnboundedSender<DeliveryReport>,
    reports_rx: Mutex<Option<mpsc::UnboundedReceiver<DeliveryReport>>>,
    opts: NotifierOptions,
    status: Mutex<ConfigStatus>,
    durable: OnceLock<Arc<DurableState>>,
    /// Outbox notifications re-submitted after a restart and not yet settled.
    restored: Mutex<RestoredKeys>,
    /// Shutdown began: failed sends stay in the outbox for the next start.
    stopping: AtomicBool,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").finish_non_exhaustive()
    }
}

/// Lists integrations that cannot send, with the reason (never a secret).
fn unconfigured(delivery: &CompiledDelivery) -> Vec<String> {
    delivery
        .unconfigured()
        .into_iter()
        .map(|(id, why)| format!("{id}: {why}"))
        .collect()
}

impl Pipeline {
    /// Builds the pipeline over a compiled configuration; must run inside a tokio runtime
    /// (integration workers are spawned on it).
    pub fn new(
        delivery: CompiledDelivery,
        clock: SharedClock,
        metrics: Arc<NotifyMetrics>,
        opts: NotifierOptions,
        path: Option<PathBuf>,
    ) -> Result<Arc<Pipeline>, crate::notify::NotifyError> {
        let delivery = Arc::new(delivery);
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let notifier = Notifier::new(
            Arc::clone(&delivery),
            Arc::clone(&clock),
            Arc::clone(&metrics),
            reports_tx.clone(),
            opts.clone(),
        )?;
        let status = ConfigStatus {
            path,
            ok: true,
            error: None,
            loaded_ms: clock.now_ms(),
            unconfigured: unconfigured(&delivery),
        };
        Ok(Arc::new(Pipeline {
            dispatcher: Arc::new(Dispatcher::new(Arc::clone(&delivery))),
            notifier: ArcSwap::from_pointee(notifier),
            delivery: ArcSwap::new(delivery),
            clock,
            wake: tokio::sync::Notify::new(),
            metrics,
            reports_tx,
            reports_rx: Mutex::new(Some(reports_rx)),
            opts,
            status: Mutex::new(status),
            durable: OnceLock::new(),
            restored: Mutex::new(RestoredKeys::new()),
            stopping: AtomicBool::new(false),
        }))
    }

    /// The active compiled configuration.
    pub fn delivery(&self) -> Arc<CompiledDelivery> {
        self.delivery.load_full()
    }

    /// The last load outcome.
    pub fn config_status(&self) -> ConfigStatus {
        self.status.lock().clone()
    }

    /// Self-metrics of the notify stage.
    pub fn metrics(&self) -> &Arc<NotifyMetrics> {
        &self.metrics
    }

    /// Attaches durable state: outbox rows, settled reports and history from now on.
    pub fn set_durable(&self, durable: Arc<DurableState>) {
        let _ = self.durable.set(durable);
    }

    /// Takes alerts from any source and wakes the loop.
    pub fn put_alerts(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        let changes = self.dispatcher.put_alerts_tracked(alerts, now);
        if let Some(d) = self.durable.get() {
            d.record(
                changes
                    .iter()
                    .map(|c| HistoryEvent::from_dispatcher(c, now))
                    .collect(),
            );
        }
        self.wake.notify_one();
    }

    /// Start-up: restores the dispatcher from `snap`, replays deliveries the snapshot missed
    /// (journal rows of the outbox) into the notification log, and re-submits notifications that
    /// were still pending; returns (replayed, re-submitted).
    pub async fn restore(
        &self,
        snap: DispatchSnapshot,
        outbox: Vec<OutboxEntry>,
        now_ms: i64,
    ) -> (usize, usize) {
        let logged: HashMap<(String, String), i64> = snap
            .nflog
            .iter()
            .map(|e| ((e.group_key.clone(), e.integration.clone()), e.ts))
            .collect();
        self.dispatcher.restore(snap, now_ms);
        let (mut delivered, pending): (Vec<OutboxEntry>, Vec<OutboxEntry>) =
            outbox.into_iter().partition(|e| e.delivered.is_some());
        delivered.sort_by_key(|e| e.delivered.map(|(seq, _)| seq));
        let mut replayed = 0;
        for e in delivered {
            let Some((_, at)) = e.delivered else { continue };
            let n = &e.row.notification;
            let key = (n.group_key.clone(), e.row.integration.clone());
            if logged.get(&key).is_some_and(|ts| *ts >= at) {
                continue;
            }
            self.dispatcher
                .delivered(&e.row.integration, n, true, false, at);
            replayed += 1;
        }
        // A later notification of the same group supersedes earlier ones (each carries the
        // whole group): only the newest per group and integration is sent again.
        let mut newest: HashMap<(String, String), OutboxEntry> = HashMap::new();
        let mut dropped = Vec::new();
        for e in pending {
            let k = (
                e.row.integration.clone(),
                e.row.notification.group_key.clone(),
            );
            let older = match newest.remove(&k) {
                Some(cur) if cur.row.notification.now_ms > e.row.notification.now_ms => {
                    newest.insert(k, cur);
                    e
                }
                Some(cur) => {
                    newest.insert(k, e);
                    cur
                }
                None => {
                    newest.insert(k, e);
                    continue;
                }
            };
            dropped.push(Settled {
                integration: older.row.integration,
                group_key: older.row.notification.group_key,
                flush_ms: older.row.notification.now_ms,
                delivered: None,
            });
        }
        let mut pending: Vec<OutboxEntry> = newest.into_values().collect();
        pending.sort_by_key(|e| (e.row.created_ms, e.row.notification.now_ms));
        let notifier = self.notifier.load();
        let mut resubmitted = 0;
        for e in pending {
            let OutboxRow {
                integration,
                notification: n,
                ..
            } = e.row;
            let key = (integration.clone(), n.group_key.clone(), n.now_ms);
            self.restored.lock().insert(key.clone());
            if let Err(err) = notifier.submit(&integration, n) {
                tracing::warn!(event_type = "notification", integration = %integration, error = %err,
                    "pending notification from before the restart cannot be sent; dropped");
                self.restored.lock().remove(&key);
                dropped.push(Settled {
                    integration: key.0,
                    group_key: key.1,
                    flush_ms: key.2,
                    delivered: None,
                });
            } else {
                resubmitted += 1;
            }
        }
        if let Some(d) = self.durable.get() {
            d.outbox_settle(dropped, Vec::new()).await;
        }
        if replayed + resubmitted > 0 {
            tracing::info!(
                event_type = "notification",
                replayed,
                resubmitted,
                "outbox restored: deliveries replayed into the notification log, pending notifications re-submitted"
            );
        }
        self.wake.notify_one();
        (replayed, resubmitted)
    }

    /// Wakes the loop (after silences or acks changed).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Swaps in a new configuration; on error the old one stays active and the error is kept
    /// for `/health/detailed`.
    pub fn apply(&self, delivery: CompiledDelivery) -> Result<(), crate::notify::NotifyError> {
        let delivery = Arc::new(delivery);
        let notifier = Notifier::new(
            Arc::clone(&delivery),
            Arc::clone(&self.clock),
            Arc::clone(&self.metrics),
            self.reports_tx.clone(),
            self.opts.clone(),
        )?;
        let now = self.clock.now_ms();
        self.dispatcher.apply_config(Arc::clone(&delivery), now);
        let old = self.notifier.swap(Arc::new(notifier));
        let deadline = now + 30_000;
        tokio::spawn(async move { old.shutdown(deadline).await });
        let mut st = self.status.lock();
        st.ok = true;
        st.error = None;
        st.loaded_ms = now;
        st.unconfigured = unconfigured(&delivery);
        self.delivery.store(delivery);
        self.wake.notify_one();
        Ok(())
    }

    /// Reloads the config file at `path` (no-op success without one); a broken file keeps the
    /// running configuration.
    pub fn reload_file(&self, path: &Path) -> Result<(), String> {
        let result = Config::load(path)
            .map_err(|e| e.to_string())
            .and_then(|c| c.compile_delivery().map_err(|e| e.to_string()))
            .and_then(|d| self.apply(d).map_err(|e| e.to_string()));
        if let Err(e) = &result {
            let mut st = self.status.lock();
            st.ok = false;
            st.error = Some(e.clone());
            st.loaded_ms = self.clock.now_ms();
        }
        result
    }

    /// Runs one dispatcher tick at the clock's now and submits what is due; returns how many
    /// notifications were submitted (tests and benchmarks drive this directly; no outbox).
    pub fn tick(&self) -> usize {
        let now = self.clock.now_ms();
        let due = self.hold_back(self.dispatcher.tick(now), now);
        self.submit(due)
    }

    /// [`Pipeline::tick`] with the outbox: rows are committed before anything is submitted.
    pub async fn tick_durable(&self) -> usize {
        let now = self.clock.now_ms();
        let due = self.hold_back(self.dispatcher.tick(now), now);
        if let Some(d) = self.durable.get()
            && !due.is_empty()
        {
            let rows = due
                .iter()
                .map(|x| OutboxRow {
                    integration: x.integration.clone(),
                    notification: x.notification.clone(),
                    created_ms: now,
                })
                .collect();
            d.outbox_add(rows).await;
        }
        self.submit(due)
    }

    /// Drops due notifications for a group and integration whose pre-restart notification is
    /// still in flight (the flush counts as failed and is retried at the next group interval),
    /// so a restart never sends the same news twice.
    fn hold_back(&self, due: Vec<Dispatch>, now: i64) -> Vec<Dispatch> {
        let restored = self.restored.lock();
        if restored.is_empty() {
            return due;
        }
        let busy = |d: &Dispatch| {
            restored
                .iter()
                .any(|(i, g, _)| *i == d.integration && *g == d.notification.group_key)
        };
        let (held, due): (Vec<Dispatch>, Vec<Dispatch>) = due.into_iter().partition(busy);
        drop(restored);
        for d in held {
            tracing::debug!(event_type = "notification", integration = %d.integration,
                "flush held back: the notification from before the restart is still in flight");
            self.dispatcher
                .delivered(&d.integration, &d.notification, false, false, now);
        }
        due
    }

    fn submit(&self, due: Vec<Dispatch>) -> usize {
        let n = due.len();
        let notifier = self.notifier.load();
        for d in due {
            if let Err(e) = notifier.submit(&d.integration, d.notification) {
                tracing::warn!(event_type = "notification", integration = %d.integration,
                    error = %e, "notification could not be queued");
            }
        }
        n
    }

    /// Feeds one delivery outcome back into the dispatcher.
    pub fn report(&self, r: &DeliveryReport) {
        let ok = r.result.is_ok();
        for n in &r.covers {
            self.dispatcher
                .delivered(&r.integration, n, ok, r.unconfigured, r.finished_ms);
        }
    }

    /// [`Pipeline::report`], then the outbox: a delivered notification's row is marked (after
    /// the dispatcher logged it), a failed one's deleted (kept when shutting down, so it is sent
    /// after the restart); the attempt goes to the history.
    pub async fn report_durable(&self, r: &DeliveryReport) {
        self.report(r);
        {
            let mut restored = self.restored.lock();
            if !restored.is_empty() {
                for n in &r.covers {
                    restored.remove(&(r.integration.clone(), n.group_key.clone(), n.now_ms));
                }
            }
        }
        let Some(d) = self.durable.get() else { return };
        let stopping = self.stopping.load(Ordering::SeqCst);
        let logged = r.result.is_ok() || r.unconfigured;
        let settled: Vec<Settled> = r
            .covers
            .iter()
            .filter(|_| logged || !stopping)
            .map(|n| Settled {
                integration: r.integration.clone(),
                group_key: n.group_key.clone(),
                flush_ms: n.now_ms,
                delivered: logged.then(|| (d.next_seq(), r.finished_ms)),
            })
            .collect();
        let history = r
            .covers
            .iter()
            .flat_map(|n| HistoryEvent::from_report(r, n, stopping))
            .collect();
        d.outbox_settle(settled, history).await;
    }

    /// The pipeline loop: ticks at the dispatcher's deadlines (at least once a second), submits
    /// due notifications and records outcomes, until `shutdown` fires.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(mut reports) = self.reports_rx.lock().take() else {
            return;
        };
        loop {
            self.tick_durable().await;
            let now = self.clock.now_ms();
            let deadline = self
                .dispatcher
                .next_deadline()
                .map_or(now + 1_000, |d| d.min(now + 1_000));
            tokio::select! {
                _ = self.clock.sleep_until(deadline) => {}
                _ = self.wake.notified() => {}
                Some(r) = reports.recv() => {
                    self.report_durable(&r).await;
                    while let Ok(r) = reports.try_recv() {
                        self.report_durable(&r).await;
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        self.stopping.store(true, Ordering::SeqCst);
        let notifier = self.notifier.load_full();
        notifier.shutdown(self.clock.now_ms() + 10_000).await;
        while let Ok(r) = reports.try_recv() {
            self.report_durable(&r).await;
        }
    }
}

impl AlertSink for Pipeline {
    fn send(&self, alerts: Vec<Alert>) {
        self.put_alerts(alerts);
    }
}
