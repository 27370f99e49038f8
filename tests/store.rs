//! Behaviour of the in-memory series store through its public API.

use std::collections::BTreeMap;
use std::sync::Arc;

use klaxon::model::{
    Labels, MatchOp, Matcher, STALE_NAN_BITS, SampleValue, is_stale_nan, stale_nan,
};
use klaxon::store::{AppendError, Appended, SeriesSamples, SeriesSource, Store, StoreOptions};
use proptest::prelude::*;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).expect("valid matcher")
}

fn eq(name: &str, value: &str) -> Matcher {
    m(MatchOp::Equal, name, value)
}

fn f(v: f64) -> SampleValue {
    SampleValue::Float(v)
}

fn s(v: &str) -> SampleValue {
    SampleValue::Str(Arc::from(v))
}

/// Selected series sorted by labels, for order-independent comparisons.
fn sel(st: &Store, ms: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
    let mut v = st.select(ms, mint, maxt);
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    v
}

fn names(st: &Store, ms: &[Matcher]) -> Vec<String> {
    let mut v: Vec<String> = sel(st, ms, i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| s.labels.get("i").unwrap_or("-").to_string())
        .collect();
    v.sort();
    v
}

/// Five series: with and without `env`, differing `code`.
fn fixture() -> Store {
    let st = Store::default();
    let sets: [&[(&str, &str)]; 5] = [
        &[
            ("__name__", "req"),
            ("i", "a"),
            ("code", "200"),
            ("env", "prod"),
        ],
        &[
            ("__name__", "req"),
            ("i", "b"),
            ("code", "500"),
            ("env", "prod"),
        ],
        &[("__name__", "req"), ("i", "c"), ("code", "503")],
        &[
            ("__name__", "req"),
            ("i", "d"),
            ("code", "200"),
            ("env", "dev"),
        ],
        &[("__name__", "up"), ("i", "e")],
    ];
    for set in sets {
        st.append(&l(set), 1000, f(1.0)).expect("append");
    }
    st
}

#[test]
fn equality_and_regex_matchers() {
    let st = fixture();
    assert_eq!(names(&st, &[eq("__name__", "req")]), ["a", "b", "c", "d"]);
    assert_eq!(
        names(&st, &[eq("__name__", "req"), eq("code", "200")]),
        ["a", "d"]
    );
    assert_eq!(
        names(
            &st,
            &[eq("__name__", "req"), m(MatchOp::Regex, "code", "5..")]
        ),
        ["b", "c"]
    );
    assert_eq!(
        names(
            &st,
            &[eq("__name__", "req"), m(MatchOp::Regex, "code", "200|503")]
        ),
        ["a", "c", "d"]
    );
    assert_eq!(
        names(
            &st,
            &[
                eq("__name__", "req"),
                m(MatchOp::NotRegex, "code", "200|503")
            ]
        ),
        ["b"]
    );
    assert_eq!(
        names(
            &st,
            &[eq("__name__", "req"), m(MatchOp::NotRegex, "code", "5.*")]
        ),
        ["a", "d"]
    );
    assert_eq!(
        names(
            &st,
            &[eq("__name__", "req"), m(MatchOp::NotEqual, "code", "200")]
        ),
        ["b", "c"]
    );
    assert_eq!(
        names(&st, &[m(MatchOp::Regex, "code", "20")]),
        Vec::<String>::new(),
        "regex is anchored"
    );
    assert_eq!(names(&st, &[eq("__name__", "nope")]), Vec::<String>::new());
    assert_eq!(names(&st, &[eq("nolabel", "x")]), Vec::<String>::new());
    assert_eq!(
        names(&st, &[eq("__name__", "req"), eq("code", "404")]),
        Vec::<String>::new()
    );
}

#[test]
fn matchers_that_match_empty() {
    let st = fixture();
    // `{env=""}`: series without env.
    assert_eq!(names(&st, &[eq("__name__", "req"), eq("env", "")]), ["c"]);
    assert_eq!(names(&st, &[eq("env", "")]), ["c", "e"]);
    // `{env!=""}`: series with env.
    assert_eq!(
        names(&st, &[m(MatchOp::NotEqual, "env", "")]),
        ["a", "b", "d"]
    );
    // `{env=~"dev|"}`: dev or absent.
    assert_eq!(
        names(
            &st,
            &[eq("__name__", "req"), m(MatchOp::Regex, "env", "dev|")]
        ),
        ["c", "d"]
    );
    // `{env!="prod"}` includes series lacking env.
    assert_eq!(
        names(&st, &[m(MatchOp::NotEqual, "env", "prod")]),
        ["c", "d", "e"]
    );
    // `{env!~"prod|dev"}`: only those lacking env.
    assert_eq!(
        names(&st, &[m(MatchOp::NotRegex, "env", "prod|dev")]),
        ["c", "e"]
    );
    // A lone `=~".*"` returns everything; so does an empty matcher list.
    assert_eq!(
        names(&st, &[m(MatchOp::Regex, "__name__", ".*")]),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(names(&st, &[]), ["a", "b", "c", "d", "e"]);
    // A label no series has: matchers matching "" ignore it, others match nothing.
    assert_eq!(
        names(&st, &[m(MatchOp::NotEqual, "zone", "x"), eq("i", "a")]),
        ["a"]
    );
    assert_eq!(
        names(&st, &[m(MatchOp::Regex, "zone", ".+")]),
        Vec::<String>::new()
    );
    assert_eq!(names(&st, &[eq("zone", ""), eq("__name__", "up")]), ["e"]);
    // `.+` requires the label.
    assert_eq!(
        names(&st, &[m(MatchOp::Regex, "env", ".+")]),
        ["a", "b", "d"]
    );
    assert_eq!(
        names(&st, &[m(MatchOp::Regex, "env", ".*"), eq("code", "200")]),
        ["a", "d"]
    );
}

#[test]
fn regex_filter_on_few_candidates_and_many_values() {
    let st = Store::new(StoreOptions {
        shards: 2,
        ..Default::default()
    });
    for i in 0..500 {
        let inst = format!("host-{i}");
        let env = if i % 3 == 0 { "" } else { "prod" };
        st.append(
            &l(&[("__name__", "x"), ("instance", &inst), ("env", env)]),
            1,
            f(i as f64),
        )
        .expect("append");
    }
    let one = sel(
        &st,
        &[eq("instance", "host-43"), m(MatchOp::Regex, "env", "pr.d")],
        0,
        10,
    );
    assert_eq!(one.len(), 1);
    let none = sel(
        &st,
        &[eq("instance", "host-43"), m(MatchOp::Regex, "env", "")],
        0,
        10,
    );
    assert!(none.is_empty(), "host-43 has env");
    let lacking = sel(
        &st,
        &[eq("instance", "host-42"), m(MatchOp::Regex, "env", "")],
        0,
        10,
    );
    assert_eq!(lacking.len(), 1, "host-42 lacks env");
    let absent = sel(
        &st,
        &[eq("instance", "host-42"), m(MatchOp::NotRegex, "zone", "a")],
        0,
        10,
    );
    assert_eq!(absent.len(), 1);
    assert_eq!(
        sel(&st, &[m(MatchOp::Regex, "instance", "host-4.")], 0, 10).len(),
        10
    );
    assert_eq!(
        sel(
            &st,
            &[m(MatchOp::Regex, "instance", "host-1.*"), eq("env", "")],
            0,
            10
        )
        .len(),
        36
    );
    assert_eq!(sel(&st, &[eq("env", "")], 0, 10).len(), 167);
}

#[test]
fn window_is_inclusive_and_ordered() {
    let st = Store::default();
    let a = l(&[("__name__", "m")]);
    for t in (0..=100).step_by(10) {
        st.append(&a, t, f(t as f64)).expect("append");
    }
    let got = sel(&st, &[eq("__name__", "m")], 20, 40);
    let ts: Vec<i64> = got[0].samples.iter().map(|p| p.0).collect();
    assert_eq!(ts, [20, 30, 40]);
    assert_eq!(
        sel(&st, &[eq("__name__", "m")], 100, 100)[0].samples,
        vec![(100, f(100.0))]
    );
    assert!(
        sel(&st, &[eq("__name__", "m")], 101, 200).is_empty(),
        "no sample in window, no series"
    );
    assert!(sel(&st, &[eq("__name__", "m")], 21, 29).is_empty());
    assert!(
        sel(&st, &[eq("__name__", "m")], 40, 20).is_empty(),
        "inverted window"
    );
    assert_eq!(
        st.series(&[eq("__name__", "m")], 21, 29),
        Vec::<Labels>::new()
    );
    assert_eq!(st.series(&[eq("__name__", "m")], 20, 20), vec![a]);
}

#[test]
fn out_of_order_and_duplicates() {
    let st = Store::default();
    let a = l(&[("__name__", "m")]);
    assert_eq!(st.append(&a, 100, f(1.0)), Ok(Appended::Stored));
    assert_eq!(st.append(&a, 100, f(1.0)), Ok(Appended::Duplicate));
    assert_eq!(
        st.append(&a, 100, f(2.0)),
        Err(AppendError::OutOfOrder {
            t: 100,
            newest: 100
        })
    );
    assert_eq!(
        st.append(&a, 50, f(1.0)),
        Err(AppendError::OutOfOrder { t: 50, newest: 100 })
    );
    assert_eq!(st.append(&a, 101, s("x")), Ok(Appended::Stored));
    assert_eq!(st.append(&a, 101, s("x")), Ok(Appended::Duplicate));
    assert_eq!(
        st.append(&a, 101, s("y")),
        Err(AppendError::OutOfOrder {
            t: 101,
            newest: 101
        })
    );
    assert_eq!(
        st.append(&a, 101, f(1.0)),
        Err(AppendError::OutOfOrder {
            t: 101,
            newest: 101
        })
    );
    assert_eq!(st.sample_count(), 2);
    // NaN duplicates compare by bits.
    assert_eq!(st.append(&a, 200, f(f64::NAN)), Ok(Appended::Stored));
    assert_eq!(st.append(&a, 200, f(f64::NAN)), Ok(Appended::Duplicate));
    assert_eq!(
        st.append(&a, 200, f(stale_nan())),
        Err(AppendError::OutOfOrder {
            t: 200,
            newest: 200
        })
    );
}

#[test]
fn invalid_labels_are_errors() {
    let st = Store::default();
    assert!(matches!(
        st.append(&Labels::empty(), 1, f(1.0)),
        Err(AppendError::InvalidLabels(_))
    ));
    let bad = Labels::from_sorted(vec![klaxon::model::Label {
        name: Arc::from("a"),
        value: Arc::from(""),
    }]);
    assert!(matches!(
        st.append(&bad, 1, f(1.0)),
        Err(AppendError::InvalidLabels(_))
    ));
    assert!(matches!(
        st.get_or_create(&bad),
        Err(AppendError::InvalidLabels(_))
    ));
    assert_eq!(st.series_count(), 0);
}

#[test]
fn stale_markers_and_special_values_roundtrip() {
    let st = Store::default();
    let a = l(&[("__name__", "m")]);
    let vals = [
        1.0,
        stale_nan(),
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        2.5,
    ];
    for (i, v) in vals.iter().enumerate() {
        st.append(&a, i as i64 * 15_000, f(*v)).expect("append");
    }
    let got = &sel(&st, &[eq("__name__", "m")], 0, i64::MAX)[0].samples;
    let bits: Vec<u64> = got
        .iter()
        .map(|(_, v)| match v {
            SampleValue::Float(x) => x.to_bits(),
            SampleValue::Str(_) => 0,
        })
        .collect();
    let want: Vec<u64> = vals.iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, want);
    assert_eq!(bits[1], STALE_NAN_BITS);
    assert!(got[1].1.is_stale());
    assert!(matches!(got[2].1, SampleValue::Float(x) if x.is_nan() && !is_stale_nan(x)));
}

#[test]
fn string_samples_mix_with_floats() {
    let st = Store::new(StoreOptions {
        samples_per_chunk: 2,
        ..Default::default()
    });
    let a = l(&[("__name__", "database_health"), ("db", "main")]);
    st.append(&a, 10, f(1.0)).expect("append");
    st.append(&a, 20, s("unhealthy")).expect("append");
    st.append(&a, 30, f(2.0)).expect("append");
    st.append(&a, 40, f(3.0)).expect("append");
    st.append(&a, 50, s("healthy")).expect("append");
    st.append(&a, 60, s("unhealthy")).expect("append");
    st.append(&a, 70, f(stale_nan())).expect("append");
    let got = &sel(&st, &[eq("db", "main")], 0, 100)[0].samples;
    let ts: Vec<i64> = got.iter().map(|p| p.0).collect();
    assert_eq!(ts, [10, 20, 30, 40, 50, 60, 70]);
    assert_eq!(got[1].1, s("unhealthy"));
    assert_eq!(got[4].1, s("healthy"));
    assert_eq!(got[3].1, f(3.0));
    let mid = &sel(&st, &[eq("db", "main")], 20, 50)[0].samples;
    assert_eq!(
        mid.iter().map(|p| p.0).collect::<Vec<_>>(),
        [20, 30, 40, 50]
    );
    let only_str = &sel(&st, &[eq("db", "main")], 55, 65)[0].samples;
    assert_eq!(only_str, &vec![(60, s("unhealthy"))]);
}

#[test]
fn gc_drops_old_chunks_series_and_postings() {
    let st = Store::new(StoreOptions {
        retention_ms: 1000,
        samples_per_chunk: 4,
        ..Default::default()
    });
    let old = l(&[("__name__", "m"), ("i", "old"), ("only_old", "yes")]);
    let new = l(&[("__name__", "m"), ("i", "new")]);
    let strs = l(&[("__name__", "s"), ("i", "str")]);
    for t in 0..10 {
        st.append(&old, t * 100, f(t as f64)).expect("append");
        st.append(&new, t * 100, f(t as f64)).expect("append");
    }
    st.append(&strs, 100, s("gone-soon")).expect("append");
    for t in 10..30 {
        st.append(&new, t * 100, f(t as f64)).expect("append");
    }
    assert_eq!(st.series_count(), 3);
    let before = st.memory_bytes();
    // cutoff = 2900 - 1000 = 1900: `old` (newest 900) and `strs` go; `new` keeps chunks reaching >= 1900.
    let out = st.gc(2900);
    assert_eq!(out.series_removed, 2);
    assert_eq!(st.series_count(), 1);
    assert!(names(&st, &[eq("only_old", "yes")]).is_empty());
    assert_eq!(st.label_values("i", &[], i64::MIN, i64::MAX), ["new"]);
    assert_eq!(st.label_names(&[], i64::MIN, i64::MAX), ["__name__", "i"]);
    let left = &sel(&st, &[eq("i", "new")], 0, i64::MAX)[0].samples;
    assert!(
        left.first()
            .is_some_and(|p| p.0 <= 1900 && p.0 > 1900 - 400),
        "whole chunks only: {left:?}"
    );
    assert_eq!(left.last().map(|p| p.0), Some(2900));
    assert!(st.memory_bytes() < before);
    // The deleted series can start again, from any time.
    assert_eq!(st.append(&old, 5, f(1.0)), Ok(Appended::Stored));
    assert_eq!(names(&st, &[eq("only_old", "yes")]), ["old"]);
    // Everything old: all series go.
    st.gc(1_000_000);
    assert_eq!(st.series_count(), 0);
    assert_eq!(st.sample_count(), 0);
}

#[test]
fn gc_without_retention_keeps_samples() {
    let st = Store::new(StoreOptions {
        retention_ms: 0,
        ..Default::default()
    });
    st.append(&l(&[("a", "b")]), 1, f(1.0)).expect("append");
    assert_eq!(st.gc(i64::MAX).series_removed, 0);
    assert_eq!(st.sample_count(), 1);
}

#[test]
fn series_refs_and_clear() {
    let st = Store::default();
    let a = l(&[("__name__", "m"), ("x", "1")]);
    let r = st.get_or_create(&a).expect("create");
    assert_eq!(st.get_or_create(&a), Ok(r));
    assert_eq!(st.append_ref(r, 1, f(1.0)), Ok(Appended::Stored));
    assert_eq!(st.append_ref(r, 2, s("s")), Ok(Appended::Stored));
    assert_eq!(st.append(&a, 3, f(3.0)), Ok(Appended::Stored));
    assert_eq!(st.sample_count(), 3);
    st.clear();
    assert_eq!(st.series_count(), 0);
    assert_eq!(st.append_ref(r, 4, f(1.0)), Err(AppendError::UnknownSeries));
    let r2 = st.get_or_create(&a).expect("create");
    assert_ne!(r, r2, "a stale ref never aliases a new series");
    assert_eq!(st.append_ref(r, 4, f(1.0)), Err(AppendError::UnknownSeries));
    assert_eq!(st.append_ref(r2, 4, f(1.0)), Ok(Appended::Stored));
}

#[test]
fn series_limit() {
    let st = Store::new(StoreOptions {
        max_series: 2,
        ..Default::default()
    });
    st.append(&l(&[("a", "1")]), 1, f(1.0)).expect("append");
    st.append(&l(&[("a", "2")]), 1, f(1.0)).expect("append");
    assert_eq!(
        st.append(&l(&[("a", "3")]), 1, f(1.0)),
        Err(AppendError::SeriesLimit { limit: 2 })
    );
    assert_eq!(
        st.append(&l(&[("a", "2")]), 2, f(1.0)),
        Ok(Appended::Stored)
    );
}

#[test]
fn batch_append_counts() {
    let st = Store::new(StoreOptions {
        shards: 4,
        ..Default::default()
    });
    let mut batch = Vec::new();
    for i in 0..50 {
        let set = l(&[("__name__", "b"), ("i", &i.to_string())]);
        batch.push((set.clone(), 10, f(1.0)));
        batch.push((set.clone(), 20, f(2.0)));
        batch.push((set.clone(), 15, f(2.0))); // out of order
        batch.push((set.clone(), 20, f(2.0))); // duplicate
        batch.push((set, 30, s("up")));
    }
    batch.push((Labels::empty(), 1, f(1.0)));
    let out = st.append_batch(&batch);
    assert_eq!(out.stored, 150);
    assert_eq!(out.dropped_out_of_order, 50);
    assert_eq!(out.duplicates, 50);
    assert_eq!(out.dropped_invalid, 1);
    let got = sel(&st, &[eq("i", "7")], 0, 100);
    assert_eq!(
        got[0].samples,
        vec![(10, f(1.0)), (20, f(2.0)), (30, s("up"))]
    );
    // Second batch: existing series take the read-lock path.
    let out = st.append_batch(&[(l(&[("__name__", "b"), ("i", "7")]), 40, f(4.0))]);
    assert_eq!(out.stored, 1);
}

#[test]
fn label_names_values_and_series_api() {
    let st = fixture();
    assert_eq!(
        st.label_names(&[], i64::MIN, i64::MAX),
        ["__name__", "code", "env", "i"]
    );
    assert_eq!(
        st.label_names(&[eq("__name__", "up")], 0, 2000),
        ["__name__", "i"]
    );
    assert!(
        st.label_names(&[eq("__name__", "up")], 2000, 3000)
            .is_empty()
    );
    assert_eq!(
        st.label_values("code", &[], i64::MIN, i64::MAX),
        ["200", "500", "503"]
    );
    assert_eq!(
        st.label_values("code", &[eq("env", "prod")], 0, 2000),
        ["200", "500"]
    );
    assert!(st.label_values("nope", &[], i64::MIN, i64::MAX).is_empty());
    let series = st.series(&[eq("code", "200")], 0, 2000);
    assert_eq!(series.len(), 2);
    assert!(series.windows(2).all(|w| w[0] < w[1]), "sorted");
}

#[test]
fn memory_and_counts_are_reported() {
    let st = Store::default();
    let empty = st.memory_bytes();
    for i in 0..100 {
        for t in 0..10 {
            st.append(
                &l(&[("__name__", "m"), ("i", &i.to_string())]),
                t,
                f(t as f64),
            )
            .expect("append");
        }
    }
    assert_eq!(st.series_count(), 100);
    assert_eq!(st.sample_count(), 1000);
    assert!(st.memory_bytes() > empty);
}

#[test]
fn concurrent_writers_and_readers_lose_nothing() {
    let st = Arc::new(Store::new(StoreOptions {
        shards: 8,
        samples_per_chunk: 16,
        ..Default::default()
    }));
    const WRITERS: usize = 4;
    const SERIES: usize = 50;
    const SAMPLES: i64 = 200;
    std::thread::scope(|sc| {
        for w in 0..WRITERS {
            let st = &st;
            sc.spawn(move || {
                // Each writer owns its series but interleaves with the others in every shard.
                for t in 0..SAMPLES {
                    for i in 0..SERIES {
                        let set = l(&[
                            ("__name__", "c"),
                            ("w", &w.to_string()),
                            ("i", &i.to_string()),
                        ]);
                        let v = if t % 50 == 49 {
                            s("str")
                        } else {
                            f((t * 2) as f64)
                        };
                        assert_eq!(st.append(&set, t * 1000, v), Ok(Appended::Stored));
                    }
                }
            });
        }
        // A writer using refs and batches on its own series.
        let st2 = &st;
        sc.spawn(move || {
            let refs: Vec<_> = (0..SERIES)
                .map(|i| {
                    st2.get_or_create(&l(&[
                        ("__name__", "c"),
                        ("w", "ref"),
                        ("i", &i.to_string()),
                    ]))
                })
                .collect::<Result<_, _>>()
                .expect("refs");
            for t in 0..SAMPLES {
                for r in &refs {
                    assert_eq!(
                        st2.append_ref(*r, t * 1000, f((t * 2) as f64)),
                        Ok(Appended::Stored)
                    );
                }
            }
        });
        for _ in 0..2 {
            let st = &st;
            sc.spawn(move || {
                for k in 0..200 {
                    let got = st.select(&[eq("__name__", "c")], 0, i64::MAX);
                    for series in &got {
                        // Every read is a time-ordered prefix of what the writer appends.
                        for (n, (t, _)) in series.samples.iter().enumerate() {
                            assert_eq!(*t, n as i64 * 1000, "{}", series.labels);
                        }
                    }
                    if k % 50 == 0 {
                        let _ = st.label_values("i", &[], i64::MIN, i64::MAX);
                        let _ = st.memory_bytes();
                    }
                }
            });
        }
    });
    let got = st.select(&[eq("__name__", "c")], 0, i64::MAX);
    assert_eq!(got.len(), (WRITERS + 1) * SERIES);
    for series in got {
        assert_eq!(series.samples.len(), SAMPLES as usize, "{}", series.labels);
    }
    assert_eq!(st.sample_count(), (WRITERS + 1) * SERIES * SAMPLES as usize);
}

#[derive(Debug, Clone)]
enum Op {
    Append { series: u8, t: i64, v: Val },
    Gc { now: i64 },
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    F(u64),
    S(u8),
}

impl Val {
    fn sample(&self) -> SampleValue {
        match self {
            Val::F(b) => SampleValue::Float(f64::from_bits(*b)),
            Val::S(n) => SampleValue::Str(Arc::from(format!("s{n}"))),
        }
    }
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        6 => (0u64..20).prop_map(|n| Val::F((n as f64).to_bits())),
        2 => any::<u64>().prop_map(Val::F),
        1 => Just(Val::F(STALE_NAN_BITS)),
        1 => (0u8..3).prop_map(Val::S),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0u8..4, -50i64..400, val()).prop_map(|(series, t, v)| Op::Append { series, t, v }),
        1 => (0i64..600).prop_map(|now| Op::Gc { now }),
    ]
}

fn series_labels(n: u8) -> Labels {
    l(&[
        ("__name__", "p"),
        ("n", &n.to_string()),
        ("odd", if n % 2 == 1 { "y" } else { "" }),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random appends (and GCs at chunk granularity 1, so the model can follow them) read back like a naive model.
    #[test]
    fn matches_naive_model(ops in proptest::collection::vec(op(), 0..300), mint in -60i64..300, len in 0i64..400) {
        let st = Store::new(StoreOptions { retention_ms: 100, samples_per_chunk: 1 + (len as u16 % 7), shards: 2, ..Default::default() });
        let exact_gc = st.options().samples_per_chunk == 1;
        let mut model: BTreeMap<u8, Vec<(i64, Val)>> = BTreeMap::new();
        for op in &ops {
            match op {
                Op::Append { series, t, v } => {
                    let got = st.append(&series_labels(*series), *t, v.sample());
                    let s = model.entry(*series).or_default();
                    let want = match s.last() {
                        Some((lt, lv)) if *t == *lt && lv == v => Ok(Appended::Duplicate),
                        Some((lt, _)) if *t <= *lt => Err(AppendError::OutOfOrder { t: *t, newest: *lt }),
                        _ => { s.push((*t, v.clone())); Ok(Appended::Stored) }
                    };
                    prop_assert_eq!(got, want);
                }
                Op::Gc { now } if exact_gc => {
                    st.gc(*now);
                    for s in model.values_mut() {
                        s.retain(|(t, _)| *t >= now - 100);
                    }
                    // A GC'd series restarts from scratch, so drop empty ones from the model as well.
                    model.retain(|_, s| !s.is_empty());
                }
                Op::Gc { .. } => {}
            }
        }
        let maxt = mint + len;
        let mut got = st.select(&[m(MatchOp::Regex, "__name__", "p")], mint, maxt);
        got.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut want: Vec<SeriesSamples> = model
            .iter()
            .filter_map(|(n, s)| {
                let samples: Vec<(i64, SampleValue)> =
                    s.iter().filter(|(t, _)| *t >= mint && *t <= maxt).map(|(t, v)| (*t, v.sample())).collect();
                (!samples.is_empty()).then(|| SeriesSamples { labels: series_labels(*n), samples })
            })
            .collect();
        want.sort_by(|a, b| a.labels.cmp(&b.labels));
        // Compare floats by bits (NaN != NaN under PartialEq).
        let key = |v: &[SeriesSamples]| -> Vec<(String, Vec<(i64, String)>)> {
            v.iter().map(|s| (s.labels.to_string(), s.samples.iter().map(|(t, v)| (*t, match v {
                SampleValue::Float(x) => format!("f{:x}", x.to_bits()),
                SampleValue::Str(x) => format!("s{x}"),
            })).collect())).collect()
        };
        prop_assert_eq!(key(&got), key(&want));
        let odd = st.select(&[m(MatchOp::Regex, "__name__", "p"), eq("odd", "")], mint, maxt);
        prop_assert!(odd.iter().all(|s| !s.labels.has("odd")));
        prop_assert_eq!(st.series_count(), model.len());
    }
}
