//! The synthetic workload shared by the benchmarks: label sets modelled on the operations guide's metrics
//! and deterministic sample values, loaded straight into a `Store`.
//!
//! `SERIES` is the total number of series across all metrics: http_requests_total 40%, the duration sum
//! and count 15% each, the histogram buckets 25% and CPU usage 5%. Labels: `endpoint` (20 values),
//! `status_code` (5), `instance` (as many as needed), `operation` (4) and `le` (12 buckets, 0.005 ... 10 and
//! +Inf) for the histogram, `cpu` (8) for CPU usage.

#![allow(dead_code)]

use klaxon::model::{Labels, SampleValue};
use klaxon::store::{Store, StoreOptions};

/// Distinct `endpoint` label values.
pub const ENDPOINTS: usize = 20;
/// `status_code` label values.
pub const STATUS_CODES: [&str; 5] = ["200", "201", "404", "500", "503"];
/// Histogram bucket bounds.
pub const BUCKETS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
/// Sample spacing.
pub const STEP_MS: i64 = 15_000;

/// A deterministic pseudo-random sequence (xorshift), so every run loads the same data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How a synthetic series' samples evolve.
#[derive(Clone, Copy)]
pub enum Shape {
    /// A counter growing by about `rate` per second.
    Counter { rate: f64 },
    /// A gauge wandering around `level`.
    Gauge { level: f64 },
}

/// The label sets of every series: http_requests_total 40%, the duration sum and count 15% each, the
/// histogram buckets 25% and CPU usage 5% of the total.
pub fn series_set(total: usize) -> Vec<(Labels, Shape)> {
    let mut out = Vec::with_capacity(total);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let share = |pct: usize| total * pct / 100;
    // http_requests_total and the duration summary: endpoint x status_code x instance.
    for (metric, pct) in [
        ("http_requests_total", 40),
        ("http_request_duration_seconds_sum", 15),
        ("http_request_duration_seconds_count", 15),
    ] {
        let n = share(pct);
        for i in 0..n {
            let endpoint = format!("/api/v1/resource{}", i % ENDPOINTS);
            let status = STATUS_CODES[(i / ENDPOINTS) % STATUS_CODES.len()];
            let instance = format!(
                "10.0.{}.{}:8080",
                i / (ENDPOINTS * STATUS_CODES.len()) / 250,
                i / (ENDPOINTS * 5) % 250
            );
            let labels = Labels::from_pairs([
                ("__name__", metric),
                ("job", "api"),
                ("endpoint", endpoint.as_str()),
                ("status_code", status),
                ("instance", instance.as_str()),
            ]);
            let rate = if metric.ends_with("_sum") {
                0.05 + rng.next() * 0.5
            } else {
                1.0 + rng.next() * 20.0
            };
            out.push((labels, Shape::Counter { rate }));
        }
    }
    // The histogram: le x instance x operation; bucket rates grow with le so buckets stay cumulative.
    let n = share(25) / BUCKETS.len();
    for i in 0..n {
        let instance = format!("db-{}:9187", i / 4);
        let operation = ["select", "insert", "update", "delete"][i % 4];
        let base = 5.0 + rng.next() * 50.0;
        for (b, le) in BUCKETS.iter().enumerate() {
            let labels = Labels::from_pairs([
                ("__name__", "database_query_duration_seconds_bucket"),
                ("job", "postgres"),
                ("instance", instance.as_str()),
                ("operation", operation),
                ("le", le),
            ]);
            let frac = (b + 1) as f64 / BUCKETS.len() as f64;
            out.push((
                labels,
                Shape::Counter {
                    rate: base * frac.sqrt(),
                },
            ));
        }
    }
    // CPU usage: instance x cpu.
    let rest = total.saturating_sub(out.len());
    for i in 0..rest {
        let instance = format!("node-{}:9100", i / 8);
        let cpu = (i % 8).to_string();
        let labels = Labels::from_pairs([
            ("__name__", "system_cpu_usage_percent"),
            ("instance", instance.as_str()),
            ("cpu", cpu.as_str()),
        ]);
        out.push((
            labels,
            Shape::Gauge {
                level: 40.0 + rng.next() * 60.0,
            },
        ));
    }
    out
}

/// Builds a store with `total` series and `samples` samples each; returns it with the newest timestamp.
pub fn build_store(total: usize, samples: usize) -> (Store, i64) {
    let store = Store::new(StoreOptions {
        retention_ms: 0,
        ..StoreOptions::default()
    });
    let mut rng = Rng(42);
    for (labels, shape) in series_set(total) {
        let r = store
            .get_or_create(&labels)
            .expect("synthetic series are valid");
        let mut v = 0.0;
        for i in 0..samples {
            let t = i as i64 * STEP_MS;
            v = match shape {
                Shape::Counter { rate } => v + rate * 15.0 * (0.5 + rng.next()),
                Shape::Gauge { level } => (level + (rng.next() - 0.5) * 20.0).clamp(0.0, 100.0),
            };
            store
                .append_ref(r, t, SampleValue::Float(v))
                .expect("samples are in order");
        }
    }
    (store, (samples as i64 - 1) * STEP_MS)
}
