//! Store benchmarks: append throughput (by labels, by ref, batched) and select latency over a 5 m window.
//!
//! `cargo bench --bench store` (bytes per series: `cargo run --release --example store_memory`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use klaxon::model::{Labels, MatchOp, Matcher, SampleValue};
use klaxon::store::{SeriesRef, SeriesSource, Store, StoreOptions};

#[path = "support/http_series.rs"]
mod http_series;

const STEP: i64 = 15_000;
const T0: i64 = 1_700_000_000_000;

fn labels(i: usize) -> Labels {
    http_series::http_labels(i, i / 50)
}

/// A counter value for series `i` at step `k`: integral, increasing by a few hundred per step.
fn value(i: usize, k: i64) -> f64 {
    let rate = (i % 40 + 1) as i64;
    (i as i64 * 1000 + k * rate * 15 + (k * 7919 + i as i64) % (rate * 3 + 1)) as f64
}

/// `series` series with `samples` samples each, loaded time-major as scrapes arrive.
fn loaded(series: usize, samples: i64) -> (Store, Vec<SeriesRef>) {
    let store = Store::new(StoreOptions {
        retention_ms: 0,
        ..Default::default()
    });
    let refs: Vec<SeriesRef> = (0..series)
        .filter_map(|i| store.get_or_create(&labels(i)).ok())
        .collect();
    for k in 0..samples {
        for (i, r) in refs.iter().enumerate() {
            let _ = store.append_ref(*r, T0 + k * STEP, SampleValue::Float(value(i, k)));
        }
    }
    (store, refs)
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    const N: usize = 10_000;
    g.throughput(Throughput::Elements(N as u64));

    // One scrape of 10k existing series through resolved refs (the ingest hot path).
    let (store, refs) = loaded(N, 1);
    let mut k = 1;
    g.bench_function("append_ref/10k_series", |b| {
        b.iter(|| {
            for (i, r) in refs.iter().enumerate() {
                let _ =
                    black_box(store.append_ref(*r, T0 + k * STEP, SampleValue::Float(value(i, k))));
            }
            k += 1;
        })
    });

    // The same through labels (hash + lookup per sample).
    let (store, _) = loaded(N, 1);
    let sets: Vec<Labels> = (0..N).map(labels).collect();
    let mut k = 1;
    g.bench_function("append_labels/10k_series", |b| {
        b.iter(|| {
            for (i, l) in sets.iter().enumerate() {
                let _ = black_box(store.append(l, T0 + k * STEP, SampleValue::Float(value(i, k))));
            }
            k += 1;
        })
    });

    // Batched, one shard lock per shard per batch.
    let (store, _) = loaded(N, 1);
    let mut k = 1;
    g.bench_function("append_batch/10k_series", |b| {
        b.iter_batched(
            || {
                let batch: Vec<(Labels, i64, SampleValue)> = sets
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.clone(), T0 + k * STEP, SampleValue::Float(value(i, k))))
                    .collect();
                k += 1;
                batch
            },
            |batch| black_box(store.append_batch(&batch)),
            BatchSize::LargeInput,
        )
    });

    // Series creation (first sample of new series).
    g.bench_function("create/10k_series", |b| {
        b.iter_batched(
            Store::default,
            |store| {
                for (i, l) in sets.iter().enumerate() {
                    let _ = store.append(l, T0, SampleValue::Float(value(i, 0)));
                }
                store
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn select(c: &mut Criterion) {
    let mut g = c.benchmark_group("select");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    // 40k series x 240 samples (1 h at 15 s); the job="api" selector matches 10k of them.
    let samples = 240;
    let (store, _) = loaded(40_000, samples);
    let tmax = T0 + (samples - 1) * STEP;
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).expect("matcher");
    let name = m(MatchOp::Equal, "__name__", "http_requests_total");
    let cases = [
        (
            "10k_series_5m",
            vec![name.clone(), m(MatchOp::Equal, "job", "api")],
        ),
        (
            "10k_series_1h",
            vec![name.clone(), m(MatchOp::Equal, "job", "api")],
        ),
        (
            "4k_series_regex_5m",
            vec![
                name.clone(),
                m(MatchOp::Equal, "job", "api"),
                m(MatchOp::Regex, "status_code", "5.."),
            ],
        ),
        (
            "1_series_5m",
            vec![
                m(MatchOp::Equal, "instance", "host-7:9090"),
                m(MatchOp::Equal, "method", "GET"),
                m(MatchOp::Equal, "status_code", "200"),
                m(MatchOp::Equal, "endpoint", "/api/v1/users"),
            ],
        ),
    ];
    for (what, ms) in cases {
        let mint = if what.ends_with("1h") {
            T0
        } else {
            tmax - 5 * 60 * 1000
        };
        let n = store.select(&ms, mint, tmax).len();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(what, |b| {
            b.iter(|| black_box(store.select(&ms, mint, tmax)))
        });
    }
    g.finish();
}

criterion_group!(benches, append, select);
criterion_main!(benches);
