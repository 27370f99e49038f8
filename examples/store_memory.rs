//! Loads realistic series into the store and prints bytes per series, from `Store::memory_bytes()` and from the
//! process RSS delta (/proc/self/statm), plus load and select timings.
//!
//! `cargo run --release --example store_memory -- [SERIES] [SAMPLES] [--unique] [--jitter]`
//! (defaults: 100000 series, 240 samples at 15 s steps; `--unique` gives every series its own `instance` value,
//! `--jitter` adds scrape-time jitter of up to ±25 ms to each timestamp).

use std::time::Instant;

use klaxon::model::{Labels, MatchOp, Matcher, SampleValue};
use klaxon::store::{SeriesSource, Store, StoreOptions};

#[path = "../benches/support/http_series.rs"]
mod http_series;

/// Resident set size in bytes (second field of /proc/self/statm, in 4 KiB pages on x86-64/aarch64 Linux).
fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// xorshift64*: deterministic, dependency-free noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Series `i`: 50 series per instance (methods × codes × 2 endpoints) unless `unique`.
fn labels(i: usize, unique: bool) -> Labels {
    http_series::http_labels(i, if unique { i } else { i / 50 })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let series = nums.first().copied().unwrap_or(100_000);
    let samples = nums.get(1).copied().unwrap_or(240);
    let unique = args.iter().any(|a| a == "--unique");
    let jitter = args.iter().any(|a| a == "--jitter");
    let step: i64 = 15_000;
    let t0: i64 = 1_700_000_000_000;

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Per-series counter state, allocated before the baseline so only the store is measured.
    let mut state: Vec<(f64, u64)> = (0..series)
        .map(|_| (rng.below(1_000_000) as f64, 1 + rng.below(40)))
        .collect();
    let mut refs = Vec::with_capacity(series);

    let rss0 = rss_bytes().unwrap_or(0);
    let store = Store::new(StoreOptions {
        retention_ms: 0,
        ..Default::default()
    });
    let start = Instant::now();
    for i in 0..series {
        match store.get_or_create(&labels(i, unique)) {
            Ok(r) => refs.push(r),
            Err(e) => {
                eprintln!("series {i}: {e}");
                return;
            }
        }
    }
    let mut dropped = 0usize;
    for k in 0..samples {
        let base = t0 + k as i64 * step;
        for (r, (v, rate)) in refs.iter().zip(state.iter_mut()) {
            // A counter: about `rate` requests/s, integer increments, sometimes flat.
            let inc = if rng.below(10) == 0 {
                0
            } else {
                *rate * 15 + rng.below(*rate * 4 + 1) - *rate * 2
            };
            *v += inc as f64;
            let t = if jitter {
                base + rng.below(51) as i64 - 25
            } else {
                base
            };
            if store.append_ref(*r, t, SampleValue::Float(*v)).is_err() {
                dropped += 1;
            }
        }
    }
    let load = start.elapsed();
    let rss1 = rss_bytes().unwrap_or(0);
    let mem = store.memory_bytes();
    let n = store.series_count().max(1);
    let total = store.sample_count();
    println!(
        "series={} samples/series={} unique_instance={unique} jitter={jitter} dropped={dropped}",
        store.series_count(),
        samples
    );
    println!(
        "load: {:.2}s ({:.1} M samples/s, one thread)",
        load.as_secs_f64(),
        total as f64 / load.as_secs_f64() / 1e6
    );
    println!(
        "memory_bytes(): {} bytes = {:.0} bytes/series, {:.2} bytes/sample",
        mem,
        mem as f64 / n as f64,
        mem as f64 / total.max(1) as f64
    );
    println!(
        "RSS delta:      {} bytes = {:.0} bytes/series, {:.2} bytes/sample",
        rss1.saturating_sub(rss0),
        rss1.saturating_sub(rss0) as f64 / n as f64,
        rss1.saturating_sub(rss0) as f64 / total.max(1) as f64
    );

    let tmax = t0 + (samples as i64 - 1) * step;
    let name = |v: &str| Matcher::new(MatchOp::Equal, "__name__", v).ok();
    let job = Matcher::new(MatchOp::Equal, "job", "api").ok();
    let code = Matcher::new(MatchOp::Regex, "status_code", "5..").ok();
    let inst = Matcher::new(MatchOp::Equal, "instance", "host-7:9090").ok();
    let cases: Vec<(&str, Vec<Matcher>)> = vec![
        (
            "all series, last 5m",
            name("http_requests_total").into_iter().collect(),
        ),
        (
            "job=\"api\", last 5m",
            name("http_requests_total")
                .into_iter()
                .chain(job.clone())
                .collect(),
        ),
        (
            "job=\"api\",status_code=~\"5..\", last 5m",
            name("http_requests_total")
                .into_iter()
                .chain(job)
                .chain(code)
                .collect(),
        ),
        (
            "instance=\"host-7:9090\", last 5m",
            inst.into_iter().collect(),
        ),
    ];
    for (what, ms) in cases {
        // Best of 5: the machine may be shared, and the minimum is the least disturbed run.
        let mut best = f64::MAX;
        let (mut series_n, mut pts) = (0, 0);
        for _ in 0..5 {
            let start = Instant::now();
            let got = store.select(&ms, tmax - 5 * 60 * 1000, tmax);
            best = best.min(start.elapsed().as_secs_f64());
            series_n = got.len();
            pts = got.iter().map(|s| s.samples.len()).sum();
        }
        println!(
            "select {what}: {series_n} series, {pts} samples in {:.2} ms (best of 5)",
            best * 1e3
        );
    }
}
