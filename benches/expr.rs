//! Parsing and instant evaluation of four typical alert expressions over synthetic data.
//!
//! Data: `SERIES` is the total number of series across all metrics. 10k series hold one hour of 15 s samples
//! (240 per series, 2.4M samples); 100k series hold ten minutes (40 per series, 4M samples) so setup stays a
//! few seconds, which still covers every 5m window the queries read. Labels are realistic: `endpoint` (20
//! values), `status_code` (5), `instance` (as many as needed for the series budget), `le` (12 buckets,
//! 0.005 ... 10 and +Inf) for the histogram. Evaluation is one instant query at the newest sample's time.
//!
//! Run with `cargo bench --bench expr` (a few minutes: 10 samples per benchmark, short measurement).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use klaxon::eval::{Engine, EngineOptions, Value};

const QUERIES: [(&str, &str); 4] = [
    (
        "latency_ratio",
        "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
    ),
    (
        "error_ratio_by_endpoint",
        r#"sum by (endpoint) (rate(http_requests_total{status_code=~"5.."}[5m])) / sum by (endpoint) (rate(http_requests_total[5m]))"#,
    ),
    (
        "p95_db_latency",
        "histogram_quantile(0.95, sum by (le) (rate(database_query_duration_seconds_bucket[5m])))",
    ),
    (
        "cpu_over_90",
        "avg_over_time(system_cpu_usage_percent[5m]) > 90",
    ),
];

#[path = "support/workload.rs"]
mod workload;

use workload::build_store;

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, q) in QUERIES {
        g.bench_function(name, |b| {
            b.iter(|| klaxon::expr::parse_and_check(black_box(q)).expect("query parses"))
        });
    }
    g.finish();
}

fn bench_eval(c: &mut Criterion) {
    let exprs: Vec<_> = QUERIES
        .iter()
        .map(|(n, q)| (*n, klaxon::expr::parse_and_check(q).expect("query parses")))
        .collect();
    // (label, series, samples per series): 1h of 15s samples at 10k, 10min at 100k.
    for (label, total, samples) in [("10k", 10_000, 240), ("100k", 100_000, 40)] {
        let (store, t) = build_store(total, samples);
        let engine = Engine::new(EngineOptions::default());
        let mut g = c.benchmark_group(format!("eval_{label}"));
        for (name, expr) in &exprs {
            // Guard against measuring an empty answer: every query selects data at `t`.
            let out = engine.instant(&store, expr, t).expect("query evaluates");
            match &out.value {
                Value::Vector(v) if !v.is_empty() => {}
                other => panic!("{name} over {label} series returned no series: {other:?}"),
            }
            g.bench_with_input(BenchmarkId::from_parameter(name), expr, |b, expr| {
                b.iter(|| {
                    engine
                        .instant(&store, black_box(expr), t)
                        .expect("query evaluates")
                })
            });
        }
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_parse, bench_eval
}
criterion_main!(benches);
