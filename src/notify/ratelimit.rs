//! Per-integration token buckets: `governor`'s GCRA limiter running on klaxon's
//! [`Clock`](crate::clock::Clock), so a `ManualClock` drives rate limits in tests exactly as it
//! drives every other timer.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::SharedClock;
use crate::config::delivery::RateLimit;

/// Adapts a [`SharedClock`] to governor: instants are the time since the epoch.
#[derive(Clone, Debug)]
pub struct ClockAdapter(pub SharedClock);

impl GovernorClock for ClockAdapter {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now_ms()).unwrap_or(0))
    }
}

/// A token bucket for one integration.
pub struct Limiter {
    inner: RateLimiter<NotKeyed, InMemoryState, ClockAdapter, NoOpMiddleware<Duration>>,
    clock: SharedClock,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiter")
    }
}

impl Limiter {
    /// `limit` sends per `per`, bursting to `burst` (default `limit`); `None` when `limit` is 0
    /// (unlimited).
    pub fn new(rl: &RateLimit, clock: SharedClock) -> Option<Limiter> {
        let limit = NonZeroU32::new(rl.limit)?;
        let per_ns = u64::try_from(rl.per.ms().max(1))
            .unwrap_or(1)
            .saturating_mul(1_000_000);
        let interval = Duration::from_nanos((per_ns / u64::from(limit.get())).max(1));
        let burst = NonZeroU32::new(rl.burst.unwrap_or(limit.get())).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(interval)?.allow_burst(burst);
        Some(Limiter {
            inner: RateLimiter::direct_with_clock(quota, ClockAdapter(clock.clone())),
            clock,
        })
    }

    /// Takes a token: `Ok` when the send may go now, else the clock time (ms) when it may.
    pub fn check(&self) -> Result<(), i64> {
        match self.inner.check() {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(ClockAdapter(self.clock.clone()).now());
                let wait_ms =
                    i64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
                Err(self.clock.now_ms().saturating_add(wait_ms.max(1)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::delivery::Dur;
    use std::sync::Arc;

    #[test]
    fn bucket_follows_the_manual_clock() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let l = Limiter::new(
            &RateLimit {
                limit: 1,
                per: Dur(1_000),
                burst: Some(2),
            },
            clock.clone(),
        )
        .unwrap();
        assert!(l.check().is_ok());
        assert!(l.check().is_ok());
        let until = l.check().unwrap_err();
        assert_eq!(until, 1_001_000);
        clock.advance(999);
        assert!(l.check().is_err());
        clock.advance(1);
        assert!(l.check().is_ok());
        assert!(l.check().is_err());
    }

    #[test]
    fn per_minute_limits_space_sends_evenly() {
        let clock = Arc::new(ManualClock::new(0));
        let l = Limiter::new(
            &RateLimit {
                limit: 30,
                per: Dur(60_000),
                burst: Some(1),
            },
            clock.clone(),
        )
        .unwrap();
        assert!(l.check().is_ok());
        assert_eq!(l.check().unwrap_err(), 2_000);
    }

    #[test]
    fn zero_limit_means_unlimited() {
        let clock = Arc::new(ManualClock::new(0));
        assert!(
            Limiter::new(
                &RateLimit {
                    limit: 0,
                    per: Dur(1_000),
                    burst: None
                },
                clock
            )
            .is_none()
        );
    }
}
