//! The one source of "now": every component that waits or stamps time reads a `Clock`, so tests can
//! drive hours of evaluation, `for` windows and timers in milliseconds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::Timestamp;

/// Tells the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in ms since the epoch.
    fn now_ms(&self) -> Timestamp;

    /// Resolves once the clock reads at least `t_ms`: real time for the system clock, the next
    /// `set`/`advance` past `t_ms` for a manual one (so retry backoff and timers run in tests
    /// without real waiting).
    fn sleep_until(&self, t_ms: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = (t_ms - self.now_ms()).max(0);
        Box::pin(tokio::time::sleep(std::time::Duration::from_millis(
            wait as u64,
        )))
    }
}

/// Waits `d_ms` on `clock`.
pub async fn sleep(clock: &dyn Clock, d_ms: i64) {
    clock.sleep_until(clock.now_ms().saturating_add(d_ms)).await;
}

/// Shared handle to the process clock.
pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time, for production.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Timestamp {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to, for deterministic tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
    moved: tokio::sync::Notify,
}

impl ManualClock {
    /// A clock stopped at `start_ms`.
    pub fn new(start_ms: Timestamp) -> Self {
        ManualClock {
            now: AtomicI64::new(start_ms),
            moved: tokio::sync::Notify::new(),
        }
    }

    /// Jumps to `t_ms`.
    pub fn set(&self, t_ms: Timestamp) {
        self.now.store(t_ms, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    /// Moves forward by `d_ms`.
    pub fn advance(&self, d_ms: i64) {
        self.now.fetch_add(d_ms, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Timestamp {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, t_ms: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                let moved = self.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.now_ms() >= t_ms {
                    return;
                }
                moved.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1_500);
        c.set(10);
        assert_eq!(c.now_ms(), 10);
    }

    #[tokio::test]
    async fn manual_sleep_wakes_only_when_the_clock_passes_the_deadline() {
        let c = Arc::new(ManualClock::new(0));
        let c2 = Arc::clone(&c);
        let waiter = tokio::spawn(async move { c2.sleep_until(1_000).await });
        tokio::task::yield_now().await;
        c.advance(999);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        c.advance(1);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woke")
            .expect("joined");
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
