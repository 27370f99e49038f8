//! Write-ahead log figures: in-process ingest throughput (WAL + store, as the ingest handler does it) with the
//! WAL off and under each fsync policy, and the start-up replay time of 1 h of 100k series at 15 s.
//!
//! `cargo run --release --example wal_bench -- [ingest|replay|all] [--series N] [--samples M] [--threads T]
//! [--dir PATH] [--runs R]`
//! (defaults: all, 100000 series, 240 samples per series for replay, 20 timed timestamps for ingest, 4 threads,
//! a scratch directory under the system temp dir, 3 runs per policy). Each request is 10k samples, one per
//! series, like the server benchmark's loader.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use klaxon::model::{Labels, SampleValue};
use klaxon::store::{Store, StoreOptions};
use klaxon::wal::{FsyncPolicy, Wal, WalOptions};

#[path = "../benches/support/http_series.rs"]
mod http_series;

const BATCH: usize = 10_000;

/// One request's samples.
type Batch = Vec<(Labels, i64, SampleValue)>;
const STEP: i64 = 15_000;
const T0: i64 = 1_700_000_000_000;

/// Series `i`, the same shape as `examples/store_memory.rs` (50 series per instance).
fn labels(i: usize) -> Labels {
    http_series::http_labels(i, i / 50)
}

/// A counter-like value for series `i` at step `k` (cheap, deterministic).
fn value(i: usize, k: usize) -> f64 {
    let rate = (i % 40 + 1) as f64;
    (k as f64) * rate * 15.0 + ((i * 7 + k * 13) % 11) as f64
}

struct Args {
    what: String,
    series: usize,
    samples: usize,
    ingest_steps: usize,
    threads: usize,
    runs: usize,
    dir: PathBuf,
}

fn parse_args() -> Args {
    let mut a = Args {
        what: "all".into(),
        series: 100_000,
        samples: 240,
        ingest_steps: 20,
        threads: 4,
        runs: 3,
        dir: std::env::temp_dir().join(format!("klaxon-wal-bench-{}", std::process::id())),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "ingest" | "replay" | "all" => a.what = arg,
            "--series" => a.series = num("--series"),
            "--samples" => a.samples = num("--samples"),
            "--steps" => a.ingest_steps = num("--steps"),
            "--threads" => a.threads = num("--threads").max(1),
            "--runs" => a.runs = num("--runs").max(1),
            "--dir" => a.dir = PathBuf::from(it.next().expect("--dir needs a path")),
            other => panic!("unknown argument {other:?}"),
        }
    }
    a
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of the file are utime and stime; `after` starts at field 3.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn store() -> Store {
    Store::new(StoreOptions {
        retention_ms: 0,
        ..StoreOptions::default()
    })
}

/// Batches of `BATCH` series each, built once; timestamps and values are rewritten in place per step.
fn batches(series: usize) -> Vec<Batch> {
    (0..series)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|ids| {
            ids.iter()
                .map(|&i| (labels(i), 0, SampleValue::Float(0.0)))
                .collect()
        })
        .collect()
}

fn fill(batch: &mut [(Labels, i64, SampleValue)], first: usize, k: usize) {
    for (j, s) in batch.iter_mut().enumerate() {
        s.1 = T0 + k as i64 * STEP;
        s.2 = SampleValue::Float(value(first + j, k));
    }
}

/// One timed ingest run; returns samples/s and CPU µs/sample of the timed steps (step 0 creates the series,
/// untimed).
fn ingest_run(a: &Args, policy: FsyncPolicy, all: &mut [Batch]) -> (f64, f64) {
    let dir = a.dir.join(format!("ingest-{policy}"));
    let _ = std::fs::remove_dir_all(&dir);
    let st = store();
    let wal = (policy != FsyncPolicy::Off).then(|| {
        let mut o = WalOptions::new(&dir);
        o.fsync = policy;
        Wal::open(o, &st, i64::MIN).0
    });
    let push = |b: &[(Labels, i64, SampleValue)]| {
        if let Some(w) = &wal {
            w.append(b).expect("WAL append");
        }
        st.append_batch(b);
    };
    for (bi, b) in all.iter_mut().enumerate() {
        fill(b, bi * BATCH, 0);
        push(b);
    }
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let threads = a.threads;
    std::thread::scope(|sc| {
        // Thread `t` owns batches t, t + threads, ...: per-series time order holds, like the loader's workers.
        let mut owned: Vec<Vec<(usize, &mut Batch)>> = (0..threads).map(|_| Vec::new()).collect();
        for (bi, b) in all.iter_mut().enumerate() {
            owned[bi % threads].push((bi, b));
        }
        for mine in owned {
            let push = &push;
            sc.spawn(move || {
                let mut mine = mine;
                for k in 1..=a.ingest_steps {
                    for (bi, b) in mine.iter_mut() {
                        fill(b, *bi * BATCH, k);
                        push(b);
                    }
                }
            });
        }
    });
    if let Some(w) = &wal {
        w.sync().expect("final fsync");
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let n = (a.series * a.ingest_steps) as f64;
    assert_eq!(st.sample_count(), a.series * (a.ingest_steps + 1));
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
    (n / secs, cpu * 1e6 / n)
}

fn ingest(a: &Args) {
    let mut all = batches(a.series);
    println!(
        "ingest: {} series, {} timed samples per run ({} steps x 1 sample/series, {}-sample requests), {} threads",
        a.series,
        a.series * a.ingest_steps,
        a.ingest_steps,
        BATCH,
        a.threads
    );
    let policies = [
        FsyncPolicy::Off,
        FsyncPolicy::Interval(Duration::from_secs(1)),
        FsyncPolicy::Interval(Duration::from_millis(100)),
        FsyncPolicy::Request,
    ];
    for policy in policies {
        let runs: Vec<(f64, f64)> = (0..a.runs)
            .map(|_| ingest_run(a, policy, &mut all))
            .collect();
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "  wal {:>8}: median {:>10.0} samples/s, {:.3} CPU us/sample  (runs: {})",
            policy.to_string(),
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
            runs.iter()
                .map(|r| format!("{:.0}/s {:.3}us", r.0, r.1))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn replay(a: &Args) {
    let dir = a.dir.join("replay");
    let _ = std::fs::remove_dir_all(&dir);
    let total = a.series * a.samples;
    {
        let st = store();
        let (wal, _) = Wal::open(WalOptions::new(&dir), &st, i64::MIN);
        let mut all = batches(a.series);
        let started = Instant::now();
        for k in 0..a.samples {
            for (bi, b) in all.iter_mut().enumerate() {
                fill(b, bi * BATCH, k);
                wal.append(b).expect("WAL append");
            }
        }
        wal.sync().expect("fsync");
        let secs = started.elapsed().as_secs_f64();
        println!(
            "replay: wrote {} series x {} samples = {} samples in {:.2}s (WAL only, one thread): {} segments, {:.1} MiB, {:.2} bytes/sample",
            a.series,
            a.samples,
            total,
            secs,
            wal.segments().len(),
            dir_bytes(&dir) as f64 / (1 << 20) as f64,
            dir_bytes(&dir) as f64 / total as f64
        );
    }
    let st = store();
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let (wal, report) = Wal::open(WalOptions::new(&dir), &st, i64::MIN);
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    assert!(report.corruptions.is_empty(), "{report:?}");
    assert_eq!(st.sample_count(), total);
    println!(
        "replay: {:.2}s ({:.2} CPU s) for {} segments / {:.1} MiB -> {} series, {} samples ({:.1} M samples/s); store {:.0} bytes/series",
        secs,
        cpu,
        report.segments,
        report.bytes as f64 / (1 << 20) as f64,
        st.series_count(),
        st.sample_count(),
        total as f64 / secs / 1e6,
        st.memory_bytes() as f64 / st.series_count().max(1) as f64
    );
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let a = parse_args();
    std::fs::create_dir_all(&a.dir).expect("bench directory");
    if a.what == "ingest" || a.what == "all" {
        ingest(&a);
    }
    if a.what == "replay" || a.what == "all" {
        replay(&a);
    }
    let _ = std::fs::remove_dir_all(&a.dir);
}
