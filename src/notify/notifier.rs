//! The delivery queue: one worker per integration, rate limiting with digests, retries with
//! backoff, and a [`DeliveryReport`] for every submitted notification.
//!
//! A worker takes the next notification. When the integration's token bucket admits it, it is
//! sent alone. When the bucket is empty, the worker counts a rate-limit hit, logs it, and waits
//! on the clock; once a token is free, the held notification and everything queued behind it
//! are folded into one digest ([`fold_digest`]) and sent as one message, so a backlog never
//! grows and nothing is dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::channel::{Channel, unconfigured_reason};
use super::email::TransportCache;
use super::error::{NotifyError, SendError};
use super::metrics::{NotifyMetrics, Outcome};
use super::ratelimit::Limiter;
use super::retry::{backoff_delay, mix};
use super::templates::TemplateSet;
use crate::clock::{self, SharedClock};
use crate::config::CompiledDelivery;
use crate::dispatch::{Alert, Notification};
use crate::model::Labels;

/// Timeouts and retry policy of the notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierOptions {
    /// Per-request network timeout (a webhook's own `timeout` wins), in ms.
    pub request_timeout_ms: i64,
    /// Most attempts per notification (first try included).
    pub max_attempts: u32,
    /// Stop retrying once the next attempt would start this long after the first one.
    pub max_retry_ms: i64,
    /// First retry delay; doubles per retry.
    pub backoff_base_ms: i64,
    /// Longest retry delay (before jitter), unless the peer's `Retry-After` asks for more.
    pub backoff_max_ms: i64,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            request_timeout_ms: 10_000,
            max_attempts: 10,
            max_retry_ms: 5 * 60_000,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
        }
    }
}

/// How one send (possibly a digest) ended, for the notification log and the API.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryReport {
    /// Integration id (`receiver/kind[index]`).
    pub integration: String,
    /// Receiver name.
    pub receiver: String,
    /// Channel kind (`email`, `slack`, `webhook`, or the unsupported kind's name).
    pub channel: String,
    /// Every submitted notification this send carried (more than one for a digest).
    pub covers: Vec<Notification>,
    /// Delivered, or the last error.
    pub result: Result<(), SendError>,
    /// Attempts made (0 when nothing was tried).
    pub attempts: u32,
    /// Clock time when the outcome was known.
    pub finished_ms: i64,
    /// The integration cannot send (missing settings or unsupported kind).
    pub unconfigured: bool,
}

/// Folds notifications held by the rate limiter into one: alerts merged by fingerprint (the
/// most recently updated version wins, later notifications win ties), related alerts merged
/// the same way, the latest flush time and escalation, group labels common to all parts, and
/// `digest_of` counting the folded notifications. The group key is the parts' key when they
/// share one, else `digest(<key1> | <key2> ...)` listing each distinct key once.
pub fn fold_digest(parts: &[Notification]) -> Notification {
    fn merge(into: &mut BTreeMap<u64, Alert>, alerts: &[Alert]) {
        for a in alerts {
            let fp = a.fingerprint().0;
            match into.get(&fp) {
                Some(old) if old.updated_at > a.updated_at => {}
                _ => {
                    into.insert(fp, a.clone());
                }
            }
        }
    }
    let Some(first) = parts.first() else {
        return Notification {
            receiver: String::new(),
            group_key: String::new(),
            group_labels: Labels::empty(),
            alerts: Vec::new(),
            now_ms: 0,
            external_url: String::new(),
            related: Vec::new(),
            escalation: None,
            digest_of: 0,
        };
    };
    let mut alerts = BTreeMap::new();
    let mut related = BTreeMap::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut group = first.group_labels.clone();
    for p in parts {
        merge(&mut alerts, &p.alerts);
        merge(&mut related, &p.related);
        if !keys.contains(&p.group_key.as_str()) {
            keys.push(&p.group_key);
        }
        group = Labels::from_pairs(
            group
                .iter()
                .filter(|l| p.group_labels.get(&l.name) == Some(&*l.value))
                .map(|l| (l.name.to_string(), l.value.to_string())),
        );
    }
    let mut alerts: Vec<Alert> = alerts.into_values().collect();
    alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut related: Vec<Alert> = related.into_values().collect();
    related.sort_by(|a, b| a.labels.cmp(&b.labels));
    related.retain(|r| !alerts.iter().any(|a| a.labels == r.labels));
    Notification {
        receiver: first.receiver.clone(),
        group_key: if keys.len() == 1 {
            keys[0].to_string()
        } else {
            format!("digest({})", keys.join(" | "))
        },
        group_labels: group,
        alerts,
        now_ms: parts.iter().map(|p| p.now_ms).max().unwrap_or(0),
        external_url: first.external_url.clone(),
        related,
        escalation: parts.iter().rev().find_map(|p| p.escalation.clone()),
        digest_of: parts.iter().map(|p| p.digest_of.max(1)).sum(),
    }
}

#[derive(Default)]
struct SlotState {
    queue: VecDeque<Notification>,
    inflight: Vec<Notification>,
    worker: Option<JoinHandle<()>>,
    /// Shutdown's deadline passed: leftovers were reported as dropped.
    dropped: bool,
}

struct Slot {
    id: String,
    receiver: String,
    kind: String,
    unconfigured: Option<String>,
    channel: Option<Channel>,
    limiter: Option<Limiter>,
    state: Mutex<SlotState>,
    wake: tokio::sync::Notify,
    closed: AtomicBool,
}

struct Inner {
    clock: SharedClock,
    metrics: Arc<NotifyMetrics>,
    reports: UnboundedSender<DeliveryReport>,
    opts: NotifierOptions,
    slots: HashMap<String, Arc<Slot>>,
    closed: AtomicBool,
    /// Submitted notifications not yet reported.
    pending: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for s in self.slots.values() {
            s.closed.store(true, Ordering::SeqCst);
            s.wake.notify_waiters();
        }
    }
}

/// Sends notifications through the configured integrations; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("integrations", &self.inner.slots.len())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Builds clients (one HTTP client per HTTP integration, one pooled SMTP transport per
    /// distinct SMTP setting), parses every template (so typos fail at load, naming the
    /// integration and field) and builds the rate limiters.
    pub fn new(
        delivery: Arc<CompiledDelivery>,
        clock: SharedClock,
        metrics: Arc<NotifyMetrics>,
        reports: UnboundedSender<DeliveryReport>,
        opts: NotifierOptions,
    ) -> Result<Notifier, NotifyError> {
        let templates = TemplateSet::new(&delivery.template_files)?;
        let mut cache = TransportCache::new();
        let mut slots = HashMap::new();
        for r in delivery.receivers.values() {
            for spec in &r.integrations {
                let channel = Channel::build(spec, &templates, &opts, &mut cache)?;
                let limiter = spec
                    .rate_limit
                    .as_ref()
                    .and_then(|rl| Limiter::new(rl, clock.clone()));
                let id = spec.id();
                slots.insert(
                    id.clone(),
                    Arc::new(Slot {
                        id,
                        receiver: spec.receiver.clone(),
                        kind: spec.kind.name().to_string(),
                        unconfigured: unconfigured_reason(spec),
                        channel,
                        limiter,
                        state: Mutex::new(SlotState::default()),
                        wake: tokio::sync::Notify::new(),
                        closed: AtomicBool::new(false),
                    }),
                );
            }
        }
        Ok(Notifier {
            inner: Arc::new(Inner {
                clock,
                metrics,
                reports,
                opts,
                slots,
                closed: AtomicBool::new(false),
                pending: AtomicUsize::new(0),
                idle: tokio::sync::Notify::new(),
            }),
        })
    }

    /// Ids of every integration, sorted.
    pub fn integrations(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.inner.slots.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Queues `n` for integration `integration_id` without blocking. An integration that
    /// cannot send gets an immediate `unconfigured` report (counted, never silently dropped).
    pub fn submit(&self, integration_id: &str, n: Notification) -> Result<(), NotifyError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(NotifyError::ShuttingDown);
        }
        let slot = inner
            .slots
            .get(integration_id)
            .ok_or_else(|| NotifyError::UnknownIntegration(integration_id.to_string()))?;
        if let Some(reason) = &slot.unconfigured {
            tracing::warn!(integration = %slot.id, reason = %reason, "notification not sent: integration is not configured");
            inner.metrics.outcome(&slot.kind, Outcome::Unconfigured, 1);
            let _ = inner.reports.send(DeliveryReport {
                integration: slot.id.clone(),
                receiver: slot.receiver.clone(),
                channel: slot.kind.clone(),
                covers: vec![n],
                result: Err(SendError::permanent(format!("unconfigured: {reason}"))),
                attempts: 0,
                finished_ms: inner.clock.now_ms(),
                unconfigured: true,
            });
            return Ok(());
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        inner.pending.fetch_add(1, Ordering::SeqCst);
        let mut st = slot.state.lock();
        st.queue.push_back(n);
        if st.worker.as_ref().is_none_or(|w| w.is_finished()) {
            let weak = Arc::downgrade(inner);
            let s = slot.clone();
            st.worker = Some(handle.spawn(worker(weak, s)));
        }
        drop(st);
        slot.wake.notify_one();
        Ok(())
    }

    /// Submitted notifications not yet reported.
    pub fn pending(&self) -> usize {
        self.inner.pending.load(Ordering::SeqCst)
    }

    /// Stops accepting notifications and waits until every queue has drained or the clock
    /// reaches `deadline_ms` (absolute, on the notifier's clock); what is still queued or in
    /// flight then is reported and counted as `dropped`.
    pub async fn shutdown(&self, deadline_ms: i64) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        for s in inner.slots.values() {
            s.closed.store(true, Ordering::SeqCst);
            s.wake.notify_waiters();
        }
        let drained = loop {
            let idle = inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if inner.pending.load(Ordering::SeqCst) == 0 {
                break true;
            }
            tokio::select! {
                _ = &mut idle => {}
                _ = inner.clock.sleep_until(deadline_ms) => break false,
            }
        };
        for s in inner.slots.values() {
            let (handle, leftovers) = {
                let mut st = s.state.lock();
                let mut left = std::mem::take(&mut st.inflight);
                left.extend(st.queue.drain(..));
                if !drained {
                    st.dropped = true;
                }
                (st.worker.take(), left)
            };
            if let Some(h) = handle {
                if drained {
                    let _ = h.await;
                } else {
                    h.abort();
                }
            }
            if !drained && !leftovers.is_empty() {
                tracing::warn!(integration = %s.id, notifications = leftovers.len(), "shutdown deadline passed: notifications dropped");
                inner
                    .metrics
                    .outcome(&s.kind, Outcome::Dropped, leftovers.len() as u64);
                inner.pending.fetch_sub(leftovers.len(), Ordering::SeqCst);
                let _ = inner.reports.send(DeliveryReport {
                    integration: s.id.clone(),
                    receiver: s.receiver.clone(),
                    channel: s.kind.clone(),
                    covers: leftovers,
                    result: Err(SendError::permanent(
                        "dropped: shutdown deadline passed before delivery",
                    )),
                    attempts: 0,
                    finished_ms: inner.clock.now_ms(),
                    unconfigured: false,
                });
            }
        }
    }
}

/// Waits for the next queued notification; `None` once the slot is closed and empty.
async fn next(slot: &Slot) -> Option<Notification> {
    loop {
        let woken = slot.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        {
            let mut st = slot.state.lock();
            if let Some(n) = st.queue.pop_front() {
                st.inflight = vec![n.clone()];
                return Some(n);
            }
        }
        if slot.closed.load(Ordering::SeqCst) {
            return None;
        }
        woken.await;
    }
}

async fn worker(inner: Weak<Inner>, slot: Arc<Slot>) {
    while let Some(first) = next(&slot).await {
        let Some(inner) = inner.upgrade() else {
            let left = slot.state.lock().queue.len() + 1;
            tracing::warn!(integration = %slot.id, notifications = left, "notifier dropped without shutdown: notifications discarded");
            return;
        };
        process(&inner, &slot, first).await;
    }
}

async fn process(inner: &Inner, slot: &Slot, first: Notification) {
    let clock = &inner.clock;
    let mut batch = vec![first];
    if let Some(limiter) = &slot.limiter {
        let mut waited = false;
        while let Err(until) = limiter.check() {
            if !waited {
                waited = true;
                inner.metrics.rate_limit_hit(&slot.kind);
                tracing::warn!(
                    integration = %slot.id,
                    wait_ms = until - clock.now_ms(),
                    queued = slot.state.lock().queue.len() + 1,
                    "rate limited: holding notifications to send as one digest"
                );
            }
            clock.sleep_until(until).await;
        }
        if waited {
            // Everything queued behind the held notification waited too: fold it in.
            let mut st = slot.state.lock();
            batch.extend(st.queue.drain(..));
            st.inflight = batch.clone();
            drop(st);
            for _ in 1..batch.len() {
                inner.metrics.rate_limit_hit(&slot.kind);
            }
        }
    }
    let n = if batch.len() > 1 {
        inner.metrics.digest(&slot.kind, batch.len() as u64);
        tracing::info!(integration = %slot.id, notifications = batch.len(), "folded rate-limited notifications into one digest");
        fold_digest(&batch)
    } else {
        batch[0].clone()
    };
    let (result, attempts) = match &slot.channel {
        Some(ch) => send_with_retries(inner, slot, ch, &n).await,
        None => (Err(SendError::permanent("unconfigured")), 0),
    };
    let covers = {
        let mut st = slot.state.lock();
        if st.dropped {
            return; // shutdown reported it
        }
        std::mem::take(&mut st.inflight)
    };
    let outcome = if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    if let Err(e) = &result {
        tracing::warn!(integration = %slot.id, attempts, status = ?e.status, retryable = e.retryable, error = %e.message, "notification failed");
    } else {
        tracing::debug!(integration = %slot.id, attempts, "notification delivered");
    }
    inner
        .metrics
        .outcome(&slot.kind, outcome, covers.len() as u64);
    let count = covers.len();
    let _ = inner.reports.send(DeliveryReport {
        integration: slot.id.clone(),
        receiver: slot.receiver.clone(),
        channel: slot.kind.clone(),
        covers,
        result,
        attempts,
        finished_ms: clock.now_ms(),
        unconfigured: false,
    });
    inner.pending.fetch_sub(count, Ordering::SeqCst);
    inner.idle.notify_waiters();
}

fn seed(slot: &Slot, n: &Notification, now_ms: i64) -> u64 {
    let mut h = mix(now_ms as u64);
    for b in slot.id.bytes() {
        h = mix(h ^ u64::from(b));
    }
    for a in &n.alerts {
        h = mix(h ^ a.fingerprint().0);
    }
    h
}

async fn send_with_retries(
    inner: &Inner,
    slot: &Slot,
    ch: &Channel,
    n: &Notification,
) -> (Result<(), SendError>, u32) {
    let clock = &inner.clock;
    let opts = &inner.opts;
    let start = clock.now_ms();
    let seed = seed(slot, n, start);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        tracing::debug!(integration = %slot.id, attempt, alerts = n.alerts.len(), "sending notification");
        let t0 = Instant::now();
        let r = ch.send(n, clock.now_ms()).await;
        inner
            .metrics
            .attempt(&slot.kind, attempt > 1, t0.elapsed().as_secs_f64());
        let e = match r {
            Ok(()) => return (Ok(()), attempt),
            Err(e) => e,
        };
        if !e.retryable {
            return (Err(e), attempt);
        }
        if attempt >= opts.max_attempts.max(1) {
            return (Err(e), attempt);
        }
        let backoff = backoff_delay(attempt, opts.backoff_base_ms, opts.backoff_max_ms, seed);
        let delay = backoff.max(e.retry_after_ms.unwrap_or(0));
        if clock.now_ms().saturating_add(delay) - start > opts.max_retry_ms {
            let mut e = e;
            e.message = format!(
                "{} (giving up: next retry would pass the {} ms retry budget)",
                e.message, opts.max_retry_ms
            );
            return (Err(e), attempt);
        }
        tracing::debug!(integration = %slot.id, attempt, delay_ms = delay, status = ?e.status, error = %e.message, "send failed; will retry");
        clock::sleep(clock.as_ref(), delay).await;
    }
}

/// Renders and sends `n` through `spec` once: no queue, no retry, no rate limit (for
/// `routes test --send`, benchmarks and tests). Template files come from `delivery`.
pub async fn send_once(
    spec: &crate::config::IntegrationSpec,
    delivery: &CompiledDelivery,
    n: &Notification,
    opts: &NotifierOptions,
) -> Result<(), SendError> {
    let templates = TemplateSet::new(&delivery.template_files)
        .map_err(|e| SendError::permanent(e.to_string()))?;
    let ch =
        Channel::new(spec, &templates, opts).map_err(|e| SendError::permanent(e.to_string()))?;
    match ch {
        Some(ch) => ch.send(n, n.now_ms).await,
        None => Err(SendError::permanent(format!(
            "unconfigured: {}",
            unconfigured_reason(spec).unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, updated: i64, summary: &str) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name)]),
            annotations: Labels::from_pairs([("summary", summary)]),
            starts_at: 1,
            ends_at: 0,
            generator_url: String::new(),
            updated_at: updated,
            timeout: false,
        }
    }

    fn n(key: &str, group: &[(&str, &str)], alerts: Vec<Alert>, now: i64) -> Notification {
        Notification {
            receiver: "r".into(),
            group_key: key.into(),
            group_labels: Labels::from_pairs(group.iter().copied()),
            alerts,
            now_ms: now,
            external_url: "http://k".into(),
            related: vec![],
            escalation: None,
            digest_of: 0,
        }
    }

    #[test]
    fn digest_unions_alerts_keeping_the_newest() {
        let parts = vec![
            n(
                "{}:{a=\"1\"}",
                &[("a", "1"), ("b", "x")],
                vec![alert("A", 10, "old"), alert("B", 10, "b")],
                100,
            ),
            n(
                "{}:{a=\"1\"}",
                &[("a", "1"), ("b", "y")],
                vec![alert("A", 20, "new")],
                200,
            ),
            n("{}:{a=\"2\"}", &[("a", "1")], vec![alert("C", 5, "c")], 150),
        ];
        let d = fold_digest(&parts);
        assert_eq!(d.digest_of, 3);
        assert_eq!(d.now_ms, 200);
        assert_eq!(d.group_key, "digest({}:{a=\"1\"} | {}:{a=\"2\"})");
        assert_eq!(d.group_labels, Labels::from_pairs([("a", "1")]));
        let names: Vec<_> = d.alerts.iter().map(|a| a.name().to_string()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!(d.alerts[0].annotations.get("summary"), Some("new"));
        let nested = fold_digest(&[d.clone(), parts[0].clone()]);
        assert_eq!(nested.digest_of, 4);
    }
}
