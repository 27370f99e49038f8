//! Retry policy: which failures are worth retrying, exponential backoff with jitter, and the
//! peer's `Retry-After`. The waiting itself happens on the [`crate::clock::Clock`].

use super::gotime::parse_http_date;

/// Whether an HTTP status is worth retrying: 408, 429 and every 5xx.
pub fn http_status_retryable(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Whether an SMTP reply code is worth retrying: 4xx is transient, 5xx permanent.
pub fn smtp_code_retryable(code: u16) -> bool {
    (400..=499).contains(&code)
}

/// The un-jittered delay before retry number `retry` (1 = the first retry):
/// `base * 2^(retry-1)`, capped at `max`.
pub fn backoff_ceiling(retry: u32, base_ms: i64, max_ms: i64) -> i64 {
    let base = base_ms.max(1);
    let shift = retry.saturating_sub(1).min(40);
    base.saturating_mul(1_i64 << shift).min(max_ms.max(base))
}

/// SplitMix64: a tiny, good-enough mixer for jitter (no `rand` dependency).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Delay before retry number `retry` with "equal jitter": uniformly in `[ceiling/2, ceiling]`,
/// drawn from `seed` (derive it from the clock and the alerts so concurrent senders spread).
pub fn backoff_delay(retry: u32, base_ms: i64, max_ms: i64, seed: u64) -> i64 {
    let ceiling = backoff_ceiling(retry, base_ms, max_ms);
    let half = ceiling / 2;
    let span = (ceiling - half) as u64 + 1;
    half + (mix(seed ^ u64::from(retry)) % span) as i64
}

/// Parses a `Retry-After` value (delta seconds or an HTTP date) to a wait in ms from `now_ms`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<i64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(i64::try_from(secs).ok()?.saturating_mul(1000));
    }
    parse_http_date(v).map(|t| (t - now_ms).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(http_status_retryable(s), "{s}");
        }
        for s in [200, 301, 400, 401, 403, 404, 413, 422] {
            assert!(!http_status_retryable(s), "{s}");
        }
        assert!(smtp_code_retryable(451));
        assert!(smtp_code_retryable(421));
        assert!(!smtp_code_retryable(550));
        assert!(!smtp_code_retryable(554));
    }

    #[test]
    fn backoff_grows_monotonically_and_is_capped() {
        let mut prev = 0;
        for r in 1..70 {
            let c = backoff_ceiling(r, 500, 60_000);
            assert!(c >= prev, "retry {r}: {c} < {prev}");
            assert!(c <= 60_000);
            prev = c;
        }
        assert_eq!(backoff_ceiling(1, 500, 60_000), 500);
        assert_eq!(backoff_ceiling(2, 500, 60_000), 1_000);
        assert_eq!(backoff_ceiling(4, 500, 60_000), 4_000);
        assert_eq!(backoff_ceiling(30, 500, 60_000), 60_000);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..500u64 {
            for r in 1..10 {
                let c = backoff_ceiling(r, 1_000, 30_000);
                let d = backoff_delay(r, 1_000, 30_000, seed);
                assert!(
                    d >= c / 2 && d <= c,
                    "retry {r} seed {seed}: {d} not in [{}, {c}]",
                    c / 2
                );
            }
            seen.insert(backoff_delay(3, 1_000, 30_000, seed));
        }
        assert!(seen.len() > 50, "jitter spreads delays: {}", seen.len());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2", 0), Some(2_000));
        assert_eq!(parse_retry_after(" 120 ", 0), Some(120_000));
        let now = 784_111_770_000;
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(7_000)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 60_000),
            Some(0)
        );
        assert_eq!(parse_retry_after("-1", 0), None);
        assert_eq!(parse_retry_after("later", 0), None);
    }
}
