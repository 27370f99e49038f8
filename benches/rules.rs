//! One evaluation round of 1,000 alerting rules over 100k series: the cost a rule engine pays every
//! interval.
//!
//! Data: the shared synthetic workload (`support/workload.rs`), 100k series with ten minutes of 15 s
//! samples, which covers every 5m window the rules read. Rules: four families cycled as in the side-by-side
//! harness's generator, each restricted to a slice of the fleet so one rule touches hundreds to thousands
//! of series: latency ratio per endpoint, 5xx ratio per endpoint and status class, p95 database latency per
//! operation, and CPU per core; thresholds vary per rule so part of the alerts fire. Ten groups of 100
//! rules, evaluated with `GroupRunner::eval` as the scheduler does, each round a little later than the last
//! so `ALERTS` writes and alert state transitions are part of the measured cost.
//!
//! Run with `cargo bench --bench rules`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use klaxon::eval::{Engine, EngineOptions};
use klaxon::rules::{GroupOptions, GroupRunner, LoadOptions, load_str};

#[path = "support/workload.rs"]
mod workload;

use workload::{ENDPOINTS, STEP_MS, build_store};

const RULES: usize = 1_000;
const GROUPS: usize = 10;
const OPERATIONS: [&str; 4] = ["select", "insert", "update", "delete"];

/// The `i`-th rule's name and expression.
fn rule(i: usize) -> (String, String) {
    let j = i / 4;
    let endpoint = format!("/api/v1/resource{}", j % ENDPOINTS);
    match i % 4 {
        0 => (
            format!("LatencyHigh_{i:04}"),
            format!(
                r#"rate(http_request_duration_seconds_sum{{endpoint="{endpoint}"}}[5m]) / rate(http_request_duration_seconds_count{{endpoint="{endpoint}"}}[5m]) > {}"#,
                0.01 + 0.0002 * j as f64
            ),
        ),
        1 => (
            format!("ErrorRatioHigh_{i:04}"),
            format!(
                r#"sum by (endpoint) (rate(http_requests_total{{status_code=~"5..",endpoint="{endpoint}"}}[5m])) / sum by (endpoint) (rate(http_requests_total{{endpoint="{endpoint}"}}[5m])) > {}"#,
                0.2 + 0.002 * j as f64
            ),
        ),
        2 => (
            format!("DBSlow_{i:04}"),
            format!(
                r#"histogram_quantile(0.95, sum by (le) (rate(database_query_duration_seconds_bucket{{operation="{}"}}[5m]))) > {}"#,
                OPERATIONS[j % OPERATIONS.len()],
                1.0 + 0.01 * j as f64
            ),
        ),
        _ => (
            format!("CPUHot_{i:04}"),
            format!(
                r#"avg_over_time(system_cpu_usage_percent{{cpu="{}"}}[5m]) > {}"#,
                j % 8,
                90.0 + 0.02 * j as f64
            ),
        ),
    }
}

/// The rule file: `GROUPS` groups sharing the rules evenly.
fn rule_file() -> String {
    let mut y = String::from("groups:\n");
    let per = RULES / GROUPS;
    for g in 0..GROUPS {
        y.push_str(&format!(
            "  - name: bench-{g:02}\n    interval: 15s\n    rules:\n"
        ));
        for i in g * per..(g + 1) * per {
            let (name, expr) = rule(i);
            y.push_str(&format!(
                "      - alert: {name}\n        expr: '{expr}'\n        labels: {{severity: warning}}\n"
            ));
        }
    }
    y
}

fn bench_round(c: &mut Criterion) {
    let report = load_str(
        &rule_file(),
        std::path::Path::new("bench.yml"),
        &LoadOptions::default(),
    );
    assert!(report.is_ok(), "bench rules load: {:?}", report.errors);
    let (store, mut t) = build_store(100_000, 40);
    let engine = Engine::new(EngineOptions::default());
    let mut runners: Vec<GroupRunner> = report
        .rule_set
        .groups
        .iter()
        .map(|g| GroupRunner::new(Arc::clone(g), GroupOptions::default()))
        .collect();
    // Guard against measuring nothing: the first round must evaluate every rule without errors.
    for r in &mut runners {
        let rep = r.eval(t, &engine, &store);
        assert!(!rep.has_errors(), "bench round has rule errors");
    }
    let mut g = c.benchmark_group("rules");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    g.bench_function("round_1000_alerting_rules_100k_series", |b| {
        b.iter(|| {
            // Each round is 15 ms after the last, so its ALERTS writes are new samples while the data's
            // newest samples stay inside every 5m window for the whole measurement.
            t += STEP_MS / 1_000;
            for r in &mut runners {
                r.eval(t, &engine, &store);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_round);
criterion_main!(benches);
