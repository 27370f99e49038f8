//! Delivery self-metrics, labelled by channel kind only (`email`, `slack`, `webhook`, or the
//! name of an unsupported Alertmanager integration), so cardinality stays fixed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-channel counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// Integration kind.
    pub channel: String,
}

/// Labels of the notification outcome counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Integration kind.
    pub channel: String,
    /// `success`, `failure`, `unconfigured` or `dropped`.
    pub outcome: String,
}

/// How a submitted notification ended, for `klaxon_notifications_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered (or nothing was left to send after `send_resolved: false`).
    Success,
    /// Every attempt failed, or the failure was permanent.
    Failure,
    /// The integration cannot send (missing settings, unsupported kind).
    Unconfigured,
    /// Still queued or in flight when shutdown's deadline passed.
    Dropped,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unconfigured => "unconfigured",
            Outcome::Dropped => "dropped",
        }
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Counters and latency of notification delivery; one set shared by every notifier
/// generation so counts survive reloads.
#[derive(Debug)]
pub struct NotifyMetrics {
    /// Submitted notifications by channel and outcome (each notification of a digest counts).
    pub notifications: Family<OutcomeLabels, Counter>,
    /// Send attempts (first tries and retries).
    pub attempts: Family<ChannelLabels, Counter>,
    /// Attempts that were retries.
    pub retries: Family<ChannelLabels, Counter>,
    /// Duration of each attempt.
    pub latency: HistogramFamily<ChannelLabels>,
    /// Notifications that had to wait for the rate limiter.
    pub rate_limit_hits: Family<ChannelLabels, Counter>,
    /// Notifications folded into a digest by the rate limiter.
    pub digested: Family<ChannelLabels, Counter>,
}

impl Default for NotifyMetrics {
    fn default() -> Self {
        NotifyMetrics {
            notifications: Family::default(),
            attempts: Family::default(),
            retries: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            rate_limit_hits: Family::default(),
            digested: Family::default(),
        }
    }
}

fn ch(channel: &str) -> ChannelLabels {
    ChannelLabels {
        channel: channel.to_string(),
    }
}

impl NotifyMetrics {
    /// Registers every family (names prefixed `klaxon_`, counters end in `_total`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "klaxon_notifications",
            "Notifications by channel and outcome (success, failure, unconfigured, dropped)",
            self.notifications.clone(),
        );
        registry.register(
            "klaxon_notification_attempts",
            "Notification send attempts by channel",
            self.attempts.clone(),
        );
        registry.register(
            "klaxon_notification_retries",
            "Notification send attempts that were retries, by channel",
            self.retries.clone(),
        );
        registry.register(
            "klaxon_notification_latency_seconds",
            "Duration of notification send attempts by channel",
            self.latency.clone(),
        );
        registry.register(
            "rate_limit_hits",
            "Notifications that waited for their channel's rate limit",
            self.rate_limit_hits.clone(),
        );
        registry.register(
            "klaxon_notifications_digested",
            "Notifications folded into a digest by the rate limiter",
            self.digested.clone(),
        );
    }

    /// Counts `n` notifications ending with `outcome` on `channel`.
    pub fn outcome(&self, channel: &str, outcome: Outcome, n: u64) {
        self.notifications
            .get_or_create(&OutcomeLabels {
                channel: channel.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc_by(n);
    }

    /// Current value of `klaxon_notifications_total{channel, outcome}`.
    pub fn outcome_count(&self, channel: &str, outcome: Outcome) -> u64 {
        self.notifications
            .get_or_create(&OutcomeLabels {
                channel: channel.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .get()
    }

    /// Current value of `klaxon_notification_attempts_total{channel}`.
    pub fn attempt_count(&self, channel: &str) -> u64 {
        self.attempts.get_or_create(&ch(channel)).get()
    }

    /// Current value of `klaxon_notification_retries_total{channel}`.
    pub fn retry_count(&self, channel: &str) -> u64 {
        self.retries.get_or_create(&ch(channel)).get()
    }

    /// Current value of `rate_limit_hits_total{channel}` (the guide's name).
    pub fn rate_limit_hit_count(&self, channel: &str) -> u64 {
        self.rate_limit_hits.get_or_create(&ch(channel)).get()
    }

    /// Current value of `klaxon_notifications_digested_total{channel}`.
    pub fn digested_count(&self, channel: &str) -> u64 {
        self.digested.get_or_create(&ch(channel)).get()
    }

    pub(crate) fn attempt(&self, channel: &str, retry: bool, seconds: f64) {
        self.attempts.get_or_create(&ch(channel)).inc();
        if retry {
            self.retries.get_or_create(&ch(channel)).inc();
        }
        self.latency.get_or_create(&ch(channel)).observe(seconds);
    }

    pub(crate) fn rate_limit_hit(&self, channel: &str) {
        self.rate_limit_hits.get_or_create(&ch(channel)).inc();
    }

    pub(crate) fn digest(&self, channel: &str, folded: u64) {
        self.digested.get_or_create(&ch(channel)).inc_by(folded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_hits_use_the_guides_metric_name() {
        let m = NotifyMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.rate_limit_hits.get_or_create(&ch("slack")).inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("rate_limit_hits_total{channel=\"slack\"} 1"),
            "{text}"
        );
        assert!(!text.contains("klaxon_rate_limit"), "{text}");
    }
}
