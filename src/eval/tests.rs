//! End-to-end tests of the evaluator over an in-memory `SeriesSource`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::model::{Labels, Matcher, SampleValue, stale_nan};
use crate::store::{SeriesSamples, SeriesSource};

/// A `Vec`-backed source that counts `select` calls.
#[derive(Default)]
struct VecSource {
    series: Vec<(Labels, Vec<(i64, SampleValue)>)>,
    selects: AtomicUsize,
    windows: Mutex<Vec<(i64, i64)>>,
}

impl VecSource {
    fn add(&mut self, labels: &[(&str, &str)], points: Vec<(i64, SampleValue)>) {
        self.series
            .push((Labels::from_pairs(labels.iter().copied()), points));
    }

    /// A float series sampled every `step_ms` from 0.
    fn floats(&mut self, labels: &[(&str, &str)], step_ms: i64, vals: &[f64]) {
        let pts = vals
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * step_ms, SampleValue::Float(*v)))
            .collect();
        self.add(labels, pts);
    }
}

impl SeriesSource for VecSource {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        self.selects.fetch_add(1, Ordering::Relaxed);
        self.windows.lock().unwrap().push((mint, maxt));
        self.series
            .iter()
            .filter(|(l, _)| matchers.iter().all(|m| m.matches_labels(l)))
            .map(|(l, pts)| SeriesSamples {
                labels: l.clone(),
                samples: pts
                    .iter()
                    .filter(|(t, _)| *t >= mint && *t <= maxt)
                    .cloned()
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect()
    }
}

fn parse(q: &str) -> crate::expr::Expr {
    crate::expr::parse_and_check(q).unwrap_or_else(|e| panic!("{q}: {e:?}"))
}

fn instant(src: &VecSource, q: &str, t: i64) -> Result<Outcome, EvalError> {
    Engine::new(EngineOptions::default()).instant(src, &parse(q), t)
}

fn vector(src: &VecSource, q: &str, t: i64) -> Vec<(String, f64)> {
    match instant(src, q, t).unwrap().value {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> = v
                .into_iter()
                .map(|s| match s.value {
                    SampleValue::Float(f) => (s.labels.to_string(), f),
                    SampleValue::Str(x) => (format!("{}={x}", s.labels), f64::NAN),
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{q}: not a vector: {other:?}"),
    }
}

fn http_requests() -> VecSource {
    let mut s = VecSource::default();
    for (job, inst, group, inc) in [
        ("api-server", "0", "production", 10.0),
        ("api-server", "1", "production", 20.0),
        ("api-server", "0", "canary", 30.0),
        ("api-server", "1", "canary", 40.0),
    ] {
        let vals: Vec<f64> = (0..=10).map(|i| inc * i as f64).collect();
        s.floats(
            &[
                ("__name__", "http_requests"),
                ("job", job),
                ("instance", inst),
                ("group", group),
            ],
            300_000,
            &vals,
        );
    }
    s
}

#[test]
fn sum_by_and_rates() {
    let s = http_requests();
    assert_eq!(
        vector(&s, "sum by (group) (http_requests)", 3_000_000),
        vec![
            ("{group=\"canary\"}".to_string(), 700.0),
            ("{group=\"production\"}".to_string(), 300.0)
        ]
    );
    let v = vector(&s, "rate(http_requests{instance=\"0\"}[10m])", 3_000_000);
    assert_eq!(v.len(), 2);
    assert!((v[0].1 - 0.1).abs() < 1e-12);
    // rate on a name without a counter suffix is flagged.
    let out = instant(&s, "rate(http_requests[10m])", 3_000_000).unwrap();
    assert_eq!(
        out.infos,
        vec![
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"http_requests\" (1:6)"
        ]
    );
}

#[test]
fn kahan_sum_aggregation() {
    let mut s = VecSource::default();
    for (p, v) in [("a", 2.0), ("b", 8.0), ("c", 1e100), ("d", -1e100)] {
        s.floats(&[("__name__", "data"), ("point", p)], 10_000, &[v]);
    }
    assert_eq!(
        vector(&s, "sum(data)", 60_000),
        vec![("{}".to_string(), 10.0)]
    );
}

#[test]
fn select_is_called_once_per_selector_in_range_queries() {
    let s = http_requests();
    let e = parse("rate(http_requests[10m]) / rate(http_requests[15m] offset 1m)");
    let out = Engine::new(EngineOptions::default())
        .range(&s, &e, 0, 3_000_000, 15_000)
        .unwrap();
    assert_eq!(s.selects.load(Ordering::Relaxed), 2);
    let w = s.windows.lock().unwrap().clone();
    assert!(w.contains(&(-600_000, 3_000_000)));
    assert!(w.contains(&(-960_000, 2_940_000)));
    let Value::Matrix(m) = out.value else {
        panic!()
    };
    assert_eq!(m.len(), 4);
}

#[test]
fn many_to_many_error() {
    let mut s = VecSource::default();
    s.floats(
        &[("__name__", "a"), ("job", "x"), ("i", "1")],
        60_000,
        &[1.0],
    );
    s.floats(
        &[("__name__", "b"), ("job", "x"), ("i", "1")],
        60_000,
        &[1.0],
    );
    s.floats(
        &[("__name__", "b"), ("job", "x"), ("i", "2")],
        60_000,
        &[1.0],
    );
    let err = instant(&s, "a + on(job) b", 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "found duplicate series for the match group {job=\"x\"} on the right hand-side of the operation: [{__name__=\"b\", i=\"1\", job=\"x\"}, {__name__=\"b\", i=\"2\", job=\"x\"}];many-to-many matching not allowed: matching labels must be unique on one side"
    );
    let err = instant(&s, "b + on(job) a", 0).unwrap_err();
    assert_eq!(err, EvalError::MultipleMatches);
    // Filtering comparisons do not hide the ambiguity.
    let err = instant(&s, "b > on(job) a", 0).unwrap_err();
    assert_eq!(err, EvalError::MultipleMatches);
    let out = vector(&s, "b * on(job) group_left a", 0);
    assert_eq!(out.len(), 2);
    let err = instant(&s, "a * on(job) group_right b", 0).unwrap();
    let Value::Vector(v) = err.value else {
        panic!()
    };
    assert_eq!(v.len(), 2);
}

#[test]
fn delayed_name_removal_collisions() {
    let mut s = VecSource::default();
    s.add(
        &[("__name__", "m1"), ("a", "b")],
        vec![(0, SampleValue::Float(1.0))],
    );
    s.add(
        &[("__name__", "m2"), ("a", "b")],
        vec![(1_200_000, SampleValue::Float(2.0))],
    );
    // Same labels after dropping the name, but never at the same time: merged in range queries.
    let out = Engine::new(EngineOptions::default())
        .range(&s, &parse("-{a=\"b\"}"), 0, 1_200_000, 1_200_000)
        .unwrap();
    let Value::Matrix(m) = out.value else {
        panic!()
    };
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].points,
        vec![
            (0, SampleValue::Float(-1.0)),
            (1_200_000, SampleValue::Float(-2.0))
        ]
    );
    s.add(
        &[("__name__", "m3"), ("a", "b")],
        vec![(0, SampleValue::Float(3.0))],
    );
    assert_eq!(
        instant(&s, "-{a=\"b\"}", 0).unwrap_err(),
        EvalError::DuplicateLabelset
    );
    // Without delayed removal the collision is caught too.
    let eager = Engine::new(EngineOptions {
        delayed_name_removal: false,
        ..EngineOptions::default()
    });
    assert_eq!(
        eager.instant(&s, &parse("-{a=\"b\"}"), 0).unwrap_err(),
        EvalError::DuplicateLabelset
    );
    assert!(eager.instant(&s, &parse("-m1"), 0).is_ok());
    // The name survives comparisons and label_replace onto __name__.
    assert_eq!(
        vector(&s, "m1 > 0", 0),
        vec![("m1{a=\"b\"}".to_string(), 1.0)]
    );
    assert_eq!(
        vector(
            &s,
            "label_replace(rate(m1[5m]) or -m1, \"__name__\", \"x_$1\", \"__name__\", \"(.+)\")",
            0
        ),
        vec![("x_m1{a=\"b\"}".to_string(), -1.0)]
    );
}

#[test]
fn string_samples() {
    let mut s = VecSource::default();
    s.add(
        &[("__name__", "database_health"), ("db", "a")],
        vec![
            (0, SampleValue::Str("healthy".into())),
            (60_000, SampleValue::Str("unhealthy".into())),
        ],
    );
    s.add(
        &[("__name__", "database_health"), ("db", "b")],
        vec![(0, SampleValue::Str("healthy".into()))],
    );
    s.add(
        &[("__name__", "database_health"), ("db", "c")],
        vec![(0, SampleValue::Float(1.0))],
    );
    let v = vector(&s, "database_health == 'unhealthy'", 90_000);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, "database_health{db=\"a\"}=unhealthy");
    let v = vector(&s, "'unhealthy' != database_health", 90_000);
    assert_eq!(v.len(), 1);
    assert!(v[0].0.starts_with("database_health{db=\"b\"}"));
    assert_eq!(
        vector(&s, "count(database_health)", 90_000),
        vec![("{}".to_string(), 3.0)]
    );
    assert_eq!(
        vector(&s, "sum(database_health)", 90_000),
        vec![("{}".to_string(), 1.0)]
    );
    assert_eq!(
        vector(&s, "count_over_time(database_health[5m])", 90_000).len(),
        3
    );
    assert_eq!(
        vector(&s, "count_values(\"state\", database_health)", 90_000),
        vec![
            ("{state=\"1\"}".to_string(), 1.0),
            ("{state=\"healthy\"}".to_string(), 1.0),
            ("{state=\"unhealthy\"}".to_string(), 1.0)
        ]
    );
    assert!(
        vector(&s, "abs(database_health)", 90_000)
            .iter()
            .all(|(l, _)| l.contains("db=\"c\""))
    );
}

#[test]
fn string_comparison_end_to_end_with_the_store() {
    use crate::store::{Store, StoreOptions};
    let store = Store::new(StoreOptions {
        retention_ms: 0,
        ..StoreOptions::default()
    });
    let a = Labels::from_pairs([("__name__", "database_health"), ("db", "orders")]);
    let b = Labels::from_pairs([("__name__", "database_health"), ("db", "users")]);
    store
        .append(&a, 0, SampleValue::Str("healthy".into()))
        .unwrap();
    store
        .append(&a, 30_000, SampleValue::Str("unhealthy".into()))
        .unwrap();
    store
        .append(&b, 0, SampleValue::Str("healthy".into()))
        .unwrap();
    let out = Engine::new(EngineOptions::default())
        .instant(&store, &parse("database_health == 'unhealthy'"), 60_000)
        .unwrap();
    let Value::Vector(v) = out.value else {
        panic!()
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].labels, a);
    assert_eq!(v[0].value, SampleValue::Str("unhealthy".into()));
    let out = Engine::new(EngineOptions::default())
        .range(
            &store,
            &parse("count(database_health != \"unhealthy\")"),
            0,
            60_000,
            30_000,
        )
        .unwrap();
    let Value::Matrix(m) = out.value else {
        panic!()
    };
    assert_eq!(
        m[0].points,
        vec![
            (0, SampleValue::Float(2.0)),
            (30_000, SampleValue::Float(1.0)),
            (60_000, SampleValue::Float(1.0))
        ]
    );
}

#[test]
fn staleness_and_lookback() {
    let mut s = VecSource::default();
    s.add(
        &[("__name__", "metric")],
        vec![
            (0, SampleValue::Float(0.0)),
            (10_000, SampleValue::Float(1.0)),
            (20_000, SampleValue::Float(stale_nan())),
            (30_000, SampleValue::Float(2.0)),
        ],
    );
    assert_eq!(vector(&s, "metric", 10_000).len(), 1);
    assert_eq!(vector(&s, "metric", 25_000).len(), 0);
    assert_eq!(vector(&s, "metric", 329_000).len(), 1);
    assert_eq!(vector(&s, "metric", 330_000).len(), 0);
    assert_eq!(
        vector(&s, "count_over_time(metric[1m])", 30_000),
        vec![("{}".to_string(), 3.0)]
    );
}

#[test]
fn subquery_steps_are_aligned() {
    let mut s = VecSource::default();
    s.floats(
        &[("__name__", "metric1_total")],
        10_000,
        &(0..=100).map(f64::from).collect::<Vec<_>>(),
    );
    for off in ["10s", "9s", "7s", "5s", "3s"] {
        let q = format!("sum_over_time(metric1_total[30s:10s] offset {off})");
        assert_eq!(
            vector(&s, &q, 1_010_000),
            vec![("{}".to_string(), 297.0)],
            "{q}"
        );
    }
    assert_eq!(
        vector(&s, "sum_over_time(metric1_total[30s:5s])", 1_000_000),
        vec![("{}".to_string(), 591.0)]
    );
    let v = vector(
        &s,
        "rate(sum_over_time(metric1_total[30s:10s])[50s:10s])",
        1_000_000,
    );
    assert!((v[0].1 - 0.3).abs() < 1e-9, "{v:?}");
}

#[test]
fn no_panics_on_odd_inputs() {
    let s = http_requests();
    let e = Engine::new(EngineOptions::default());
    assert!(e.range(&s, &parse("http_requests"), 0, 1000, 0).is_err());
    assert!(e.range(&s, &parse("http_requests"), 1000, 0, 10).is_err());
    assert!(
        e.range(&s, &parse("http_requests"), i64::MIN, i64::MAX, 1)
            .is_err()
    );
    assert_eq!(
        instant(&s, "topk(NaN, http_requests)", 0)
            .unwrap_err()
            .to_string(),
        "Parameter value is NaN"
    );
    let out = instant(&s, "quantile(2, http_requests)", 0).unwrap();
    assert_eq!(
        out.warnings,
        vec!["PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)"]
    );
    assert_eq!(
        vector(&s, "quantile(2, http_requests)", 0),
        vec![("{}".to_string(), f64::INFINITY)]
    );
    assert!(instant(&s, "http_requests[100000d]", i64::MAX).is_ok());
    assert!(instant(&s, "sum_over_time(http_requests[1000000d:1ms])", 0).is_err());
    assert!(instant(&s, "http_requests offset -100000000000d", 0).is_ok());
    assert!(instant(&s, "topk(1e300, http_requests)", 0).is_err());
    assert!(vector(&s, "bottomk(-1, http_requests)", 0).is_empty());
    assert!(
        vector(&s, "round(http_requests, NaN)", 0)
            .iter()
            .all(|p| p.1.is_nan())
    );
    assert!(instant(&s, "histogram_quantile(NaN, http_requests)", 0).is_ok());
    assert!(instant(&s, "year(vector(1e300))", 0).is_ok());
    assert!(
        instant(
            &s,
            "label_replace(http_requests, \"a\", \"$1\", \"job\", \"(\")",
            0
        )
        .is_err()
    );
}

#[test]
fn too_many_samples() {
    let s = http_requests();
    let e = Engine::new(EngineOptions {
        max_samples: 3,
        ..EngineOptions::default()
    });
    assert_eq!(
        e.instant(&s, &parse("http_requests"), 0).unwrap_err(),
        EvalError::TooManySamples
    );
    assert_eq!(
        EvalError::TooManySamples.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
}

#[test]
fn topk_orders_and_keeps_labels() {
    let s = http_requests();
    let out = instant(&s, "topk(3, http_requests)", 3_000_000).unwrap();
    let Value::Vector(v) = out.value else {
        panic!()
    };
    let vals: Vec<f64> = v
        .iter()
        .map(|s| {
            if let SampleValue::Float(f) = s.value {
                f
            } else {
                0.0
            }
        })
        .collect();
    assert_eq!(vals, vec![400.0, 300.0, 200.0]);
    assert_eq!(v[0].labels.metric_name(), Some("http_requests"));
}

#[test]
fn experimental_functions() {
    let opts = crate::expr::ParseOptions {
        experimental_functions: true,
    };
    let mut s = VecSource::default();
    for (le, v) in [("0.1", 5.0), ("1", 10.0), ("+Inf", 10.0)] {
        s.floats(&[("__name__", "h_bucket"), ("le", le)], 60_000, &[v]);
    }
    let e = crate::expr::parse_with("histogram_quantiles(h_bucket, \"q\", 0.5, 1)", opts).unwrap();
    let out = Engine::new(EngineOptions::default())
        .instant(&s, &e, 0)
        .unwrap();
    let Value::Vector(mut v) = out.value else {
        panic!()
    };
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(v[0].labels.to_string(), "{q=\"0.5\"}");
    assert_eq!(v[0].value, SampleValue::Float(0.1));
    assert_eq!(v[1].labels.to_string(), "{q=\"1.0\"}");
    assert_eq!(v[1].value, SampleValue::Float(1.0));
    let e = crate::expr::parse_with("sort_by_label(h_bucket, \"le\")", opts).unwrap();
    let Value::Vector(v) = Engine::new(EngineOptions::default())
        .instant(&s, &e, 0)
        .unwrap()
        .value
    else {
        panic!()
    };
    let les: Vec<_> = v
        .iter()
        .map(|s| s.labels.get("le").unwrap_or("").to_string())
        .collect();
    assert_eq!(les, vec!["+Inf", "0.1", "1"]);
}

#[test]
fn absent_labels_from_equality_matchers() {
    let s = VecSource::default();
    assert_eq!(
        vector(
            &s,
            "absent(nonexistent{job=\"testjob\", instance=\"testinstance\", method=~\".x\"})",
            0
        ),
        vec![(
            "{instance=\"testinstance\", job=\"testjob\"}".to_string(),
            1.0
        )]
    );
    assert_eq!(
        vector(
            &s,
            "absent(nonexistent{job=\"a\",job=\"b\",foo=\"bar\"})",
            0
        ),
        vec![("{foo=\"bar\"}".to_string(), 1.0)]
    );
}

/// Every query of the conformance corpus, at ordinary and extreme times and steps, never panics.
#[test]
fn conformance_queries_never_panic() {
    let Ok(tsv) = std::fs::read_to_string("../shared/conformance/promqltest/evals.tsv") else {
        eprintln!("conformance corpus not found; skipped");
        return;
    };
    let mut s = VecSource::default();
    for (name, vals) in [
        ("http_requests_total", vec![0.0, 10.0, 5.0, f64::NAN, 20.0]),
        ("metric", vec![1.0, f64::INFINITY, -1.0, 0.0, 3.0]),
        ("foo", vec![1.0, 2.0]),
    ] {
        for (job, le) in [("a", "0.1"), ("b", "+Inf"), ("a", "x")] {
            s.floats(
                &[("__name__", name), ("job", job), ("le", le)],
                60_000,
                &vals,
            );
        }
    }
    s.add(
        &[("__name__", "metric"), ("job", "s")],
        vec![
            (0, SampleValue::Str("up".into())),
            (60_000, SampleValue::Float(stale_nan())),
        ],
    );
    let engine = Engine::new(EngineOptions {
        max_samples: 200_000,
        ..EngineOptions::default()
    });
    let mut parsed = 0;
    for line in tsv.lines().skip(1) {
        let Some(q) = line.split('\t').nth(7) else {
            continue;
        };
        let q = q
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .map_or(q.to_string(), |q| q.replace("\"\"", "\""));
        let Ok(e) = crate::expr::parse_and_check(&q) else {
            continue;
        };
        parsed += 1;
        for t in [0, 90_000, -1, i64::MAX, i64::MIN + 1] {
            let _ = engine.instant(&s, &e, t);
        }
        for (start, end, step) in [
            (0, 300_000, 60_000),
            (-1, 1, 1),
            (i64::MAX - 10, i64::MAX, 3),
            (0, 10_000_000, 7_000),
        ] {
            let _ = engine.range(&s, &e, start, end, step);
        }
    }
    assert!(parsed > 500, "only {parsed} queries parsed");
}

/// Times the benchmark queries over a store shaped like `/work/shared/bench/workload.py`
/// (559 instances, 1h at 15s). Run with `cargo test --release -- --ignored bench_queries --nocapture`.
#[test]
#[ignore]
fn bench_queries() {
    use crate::store::{Store, StoreOptions};
    let store = Store::new(StoreOptions {
        retention_ms: 0,
        ..StoreOptions::default()
    });
    let end: i64 = 3_600_000;
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf",
    ];
    let eps = [
        "/api/v1/chat",
        "/api/v1/completions",
        "/api/v1/experiments",
        "/api/v1/metrics",
        "/health",
    ];
    let mut series: Vec<(Labels, f64)> = Vec::new();
    for i in 0..559 {
        let inst = format!("host-{i:05}:9100");
        let base = |name: &str| {
            vec![
                ("__name__".to_string(), name.to_string()),
                ("instance".to_string(), inst.clone()),
                ("job".to_string(), "llm".to_string()),
            ]
        };
        for m in ["GET", "POST"] {
            for ep in eps {
                for sc in ["200", "400", "500", "503"] {
                    let mut l = base("http_requests_total");
                    l.extend([
                        ("method".into(), m.into()),
                        ("endpoint".into(), ep.into()),
                        ("status_code".into(), sc.into()),
                    ]);
                    series.push((Labels::from_pairs(l), 1.0 + (i % 7) as f64));
                }
            }
        }
        for ep in eps {
            for le in les {
                let mut l = base("http_request_duration_seconds_bucket");
                l.extend([("endpoint".into(), ep.into()), ("le".into(), le.into())]);
                series.push((Labels::from_pairs(l), 2.0));
            }
            for n in [
                "http_request_duration_seconds_sum",
                "http_request_duration_seconds_count",
            ] {
                let mut l = base(n);
                l.push(("endpoint".into(), ep.into()));
                series.push((Labels::from_pairs(l), 3.0));
            }
        }
        for op in ["select", "insert", "update"] {
            for (k, le) in les.iter().enumerate() {
                let mut l = base("database_query_duration_seconds_bucket");
                l.extend([
                    ("operation".into(), op.into()),
                    ("le".into(), le.to_string()),
                ]);
                series.push((Labels::from_pairs(l), 1.0 + k as f64));
            }
        }
        for c in 0..4 {
            let mut l = base("system_cpu_usage_percent");
            l.push(("core".into(), c.to_string()));
            series.push((Labels::from_pairs(l), -1.0));
        }
    }
    let t0 = std::time::Instant::now();
    let mut t = 0;
    while t <= end {
        for (k, (l, slope)) in series.iter().enumerate() {
            let v = if *slope < 0.0 {
                50.0 + 45.0 * ((t / 1000 + k as i64) as f64 / 600.0).sin()
            } else {
                slope * (t / 1000) as f64
            };
            store.append(l, t, SampleValue::Float(v)).unwrap();
        }
        t += 15_000;
    }
    eprintln!("loaded {} series in {:?}", series.len(), t0.elapsed());
    let engine = Engine::new(EngineOptions::default());
    for sel in [
        "http_requests_total",
        "http_requests_total{status_code=~\"5..\"}",
        "database_query_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
    ] {
        let e = parse(sel);
        let crate::expr::Expr::VectorSelector(vs) = &e else {
            panic!()
        };
        let s = std::time::Instant::now();
        let r = store.select(&vs.matchers, end - 600_000, end);
        eprintln!("select {sel}: {} series in {:?}", r.len(), s.elapsed());
    }
    for q in [
        "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
        "sum by (endpoint) (rate(http_requests_total{status_code=~\"5..\"}[5m])) / sum by (endpoint) (rate(http_requests_total[5m]))",
        "histogram_quantile(0.95, sum by (le) (rate(database_query_duration_seconds_bucket[5m])))",
        "avg_over_time(system_cpu_usage_percent[5m]) > 90",
        "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| std::env::var("BENCH_Q").map_or(true, |q| q == i.to_string()))
    .map(|(_, q)| q)
    {
        let e = parse(q);
        let mut times = Vec::new();
        let mut n = 0;
        for rep in 0..std::env::var("BENCH_REPS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(12)
        {
            let at = end - rep * 7_300;
            let s = std::time::Instant::now();
            let out = engine.instant(&store, &e, at).unwrap();
            times.push(s.elapsed());
            if let Value::Vector(v) = out.value {
                n = v.len();
            }
        }
        times.sort();
        eprintln!("{:>8.2?} median, {n} series: {q}", times[times.len() / 2]);
        if std::env::var_os("BENCH_NO_RANGE").is_none() {
            let s = std::time::Instant::now();
            engine
                .range(&store, &e, end - 3_600_000, end, 60_000)
                .unwrap();
            eprintln!("{:>8.2?} range 1h/1m", s.elapsed());
        }
    }
}
