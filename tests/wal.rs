//! The write-ahead log in-process: round trips, damaged segments, retention, failures and fuzzed input.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use klaxon::model::{Labels, MatchOp, Matcher, STALE_NAN_BITS, SampleValue, stale_nan};
use klaxon::store::{SeriesSource, Store, StoreOptions};
use klaxon::wal::{FsyncPolicy, Wal, WalOptions, parse_size, read_segment};
use proptest::prelude::*;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "klaxon-wal-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn wal(&self) -> PathBuf {
        self.0.join("wal")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Sample = (Labels, i64, SampleValue);
/// A sample in comparable form (see `norm`).
type Normed = (Labels, i64, V);

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn f(v: f64) -> SampleValue {
    SampleValue::Float(v)
}

fn s(v: &str) -> SampleValue {
    SampleValue::Str(Arc::from(v))
}

/// A comparable form: floats by bit pattern (NaN and the stale marker compare exactly).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum V {
    F(u64),
    S(String),
}

fn norm(v: &SampleValue) -> V {
    match v {
        SampleValue::Float(x) => V::F(x.to_bits()),
        SampleValue::Str(s) => V::S(s.to_string()),
    }
}

fn norm_all(samples: &[Sample]) -> Vec<Normed> {
    samples
        .iter()
        .map(|(l, t, v)| (l.clone(), *t, norm(v)))
        .collect()
}

/// Everything in the store, series sorted by labels, samples in time order.
fn dump(store: &Store) -> Vec<Normed> {
    let all = Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap();
    let mut series = store.select(&[all], i64::MIN, i64::MAX);
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    series
        .into_iter()
        .flat_map(|s| {
            let labels = s.labels;
            s.samples
                .into_iter()
                .map(move |(t, v)| (labels.clone(), t, norm(&v)))
        })
        .collect()
}

/// What the store should hold after `batches` (all in order, no rejections), in `dump` order.
fn expected(batches: &[Vec<Sample>]) -> Vec<Normed> {
    let mut v: Vec<Normed> = batches.iter().flat_map(|b| norm_all(b)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    v
}

fn store() -> Store {
    Store::new(StoreOptions {
        retention_ms: 0,
        ..StoreOptions::default()
    })
}

fn opts(dir: &Path, fsync: FsyncPolicy) -> WalOptions {
    WalOptions {
        dir: dir.to_path_buf(),
        fsync,
        segment_bytes: 64 << 20,
    }
}

/// Opens the WAL over a fresh store, keeping every sample (`min_ts` = MIN).
fn open(o: WalOptions) -> (Arc<Wal>, Store, klaxon::wal::ReplayReport) {
    let st = store();
    let (wal, report) = Wal::open(o, &st, i64::MIN);
    (wal, st, report)
}

fn mixed_batches() -> Vec<Vec<Sample>> {
    let up_a = l(&[("__name__", "up"), ("job", "api"), ("instance", "a:1")]);
    let up_b = l(&[("__name__", "up"), ("job", "api"), ("instance", "b:1")]);
    let health = l(&[("__name__", "database_health"), ("db", "main")]);
    let uni = l(&[("__name__", "temp"), ("city", "Zürich ☃")]);
    vec![
        vec![
            (up_a.clone(), 1_000, f(1.0)),
            (up_b.clone(), 1_000, f(0.0)),
            (health.clone(), 1_000, s("healthy")),
        ],
        vec![
            (up_a.clone(), 16_000, f(f64::INFINITY)),
            (up_b.clone(), 16_000, f(stale_nan())),
            (health.clone(), 16_000, s("unhealthy")),
            (uni.clone(), 16_000, f(-0.0)),
        ],
        vec![
            (
                up_a.clone(),
                31_000,
                f(f64::from_bits(0x7ff8_0000_0000_0001)),
            ),
            (health, 31_000, s("")),
            (uni, -5, f(f64::MIN_POSITIVE)),
        ],
    ]
}

#[test]
fn write_reopen_replay_is_identical() {
    let d = TempDir::new();
    let batches = mixed_batches();
    {
        let (wal, _st, report) = open(opts(&d.wal(), FsyncPolicy::Request));
        assert_eq!(report.segments, 0);
        for b in &batches {
            wal.append(b).unwrap();
        }
        assert!(wal.health().healthy, "{:?}", wal.health());
    }
    let (wal, st, report) = open(opts(&d.wal(), FsyncPolicy::Request));
    assert!(report.corruptions.is_empty(), "{report:?}");
    assert_eq!(report.samples, 10);
    // The "uni" sample at -5 comes after its series' sample at 16000: the store drops it live and on replay.
    assert_eq!(report.counts.stored, 9);
    assert_eq!(report.counts.dropped, 1);
    let want: Vec<Sample> = batches
        .iter()
        .flatten()
        .filter(|x| x.1 != -5)
        .cloned()
        .collect();
    assert_eq!(dump(&st), expected(&[want]));
    // Stale marker bits survive exactly.
    let stale = dump(&st)
        .into_iter()
        .find(|(l, t, _)| l.get("instance") == Some("b:1") && *t == 16_000)
        .unwrap();
    assert_eq!(stale.2, V::F(STALE_NAN_BITS));
    // A fresh segment is opened after replay; the old one is kept.
    let segs = wal.segments();
    assert_eq!(segs.len(), 2, "{segs:?}");
    assert!(segs[1].active && !segs[0].active);
    // The file decodes to exactly what was written, in order.
    let raw = std::fs::read(&segs[0].path).unwrap();
    let got = read_segment(&raw);
    assert_eq!(got.error, None);
    assert_eq!(got.valid_len, raw.len());
    let written: Vec<Sample> = batches.concat();
    assert_eq!(norm_all(&got.samples), norm_all(&written));
}

#[test]
fn replay_matches_live_store_for_every_policy() {
    for policy in [
        FsyncPolicy::Request,
        FsyncPolicy::Interval(Duration::from_millis(5)),
        FsyncPolicy::Off,
    ] {
        let d = TempDir::new();
        let live = {
            let (wal, st, _) = open(opts(&d.wal(), policy));
            for i in 0..50i64 {
                let batch: Vec<Sample> = (0..20)
                    .map(|j| {
                        let lab = l(&[("__name__", "m"), ("j", &j.to_string())]);
                        (lab, i * 15_000, f((i * j) as f64))
                    })
                    .collect();
                wal.append(&batch).unwrap();
                st.append_batch(&batch);
            }
            wal.sync().unwrap();
            dump(&st)
        };
        let (_wal, st, report) = open(opts(&d.wal(), policy));
        assert_eq!(report.counts.stored, 1000, "{policy}");
        assert_eq!(dump(&st), live, "{policy}");
    }
}

#[test]
fn concurrent_appends_all_replay() {
    let d = TempDir::new();
    {
        let (wal, _st, _) = open(opts(&d.wal(), FsyncPolicy::Request));
        std::thread::scope(|sc| {
            for th in 0..4 {
                let wal = Arc::clone(&wal);
                sc.spawn(move || {
                    for i in 0..100i64 {
                        let lab = l(&[("__name__", "c"), ("thread", &th.to_string())]);
                        wal.append(&[(lab, i, f(i as f64))]).unwrap();
                    }
                });
            }
        });
    }
    let (_wal, st, report) = open(opts(&d.wal(), FsyncPolicy::Request));
    assert_eq!(report.counts.stored, 400);
    assert_eq!(dump(&st).len(), 400);
}

#[test]
fn truncated_segment_keeps_prefix_reports_offset_and_accepts_appends() {
    let d = TempDir::new();
    let batches = mixed_batches();
    let (seg_path, good_len) = {
        let (wal, _st, _) = open(opts(&d.wal(), FsyncPolicy::Request));
        wal.append(&batches[0]).unwrap();
        wal.append(&batches[1]).unwrap();
        let good_len = wal.segments()[0].bytes;
        wal.append(&batches[2]).unwrap();
        (wal.segments()[0].path.clone(), good_len)
    };
    let full_len = std::fs::metadata(&seg_path).unwrap().len();
    assert!(full_len > good_len + 10);
    // Cut the last record in the middle.
    let cut = good_len + (full_len - good_len) / 2;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg_path)
        .unwrap();
    file.set_len(cut).unwrap();
    drop(file);

    let (wal, st, report) = open(opts(&d.wal(), FsyncPolicy::Request));
    assert_eq!(report.corruptions.len(), 1, "{report:?}");
    let c = &report.corruptions[0];
    assert_eq!(c.file, seg_path);
    assert_eq!(c.offset, good_len);
    assert_eq!(c.dropped_bytes, cut - good_len);
    assert!(c.reason.contains("truncated record"), "{}", c.reason);
    assert_eq!(c.repair_error, None);
    let moved = c.moved_to.clone().unwrap();
    assert_eq!(std::fs::metadata(&moved).unwrap().len(), cut - good_len);
    // The segment was cut back to its good prefix, so the next start is clean.
    assert_eq!(std::fs::metadata(&seg_path).unwrap().len(), good_len);
    assert_eq!(dump(&st), expected(&batches[..2]));
    // Reported in the health view, with file and offset.
    let h = wal.health();
    assert!(!h.healthy);
    assert!(
        h.message.contains(&seg_path.display().to_string())
            && h.message.contains(&format!("byte {good_len}")),
        "{}",
        h.message
    );
    // New appends go to a fresh segment and replay.
    let later = vec![(
        l(&[("__name__", "up"), ("job", "api"), ("instance", "a:1")]),
        99_000,
        f(7.0),
    )];
    wal.append(&later).unwrap();
    drop(wal);
    let (wal, st, report) = open(opts(&d.wal(), FsyncPolicy::Request));
    assert!(report.corruptions.is_empty(), "{report:?}");
    assert!(wal.health().healthy);
    let mut want = batches[..2].to_vec();
    want.push(later);
    assert_eq!(dump(&st), expected(&want));
}

#[test]
fn damaged_middle_segment_keeps_later_segments() {
    let d = TempDir::new();
    let lab = |i: i64| l(&[("__name__", "g"), ("i", &(i % 7).to_string())]);
    let mut o = opts(&d.wal(), FsyncPolicy::Request);
    o.segment_bytes = 4096;
    {
        let (wal, _st, _) = open(o.clone());
        for t in 0..1000i64 {
            wal.append(&[(lab(t), t * 1000, f(t as f64))]).unwrap();
        }
        assert!(wal.segments().len() >= 4);
    }
    let mut segs: Vec<PathBuf> = std::fs::read_dir(d.wal())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    // Flip a byte in the middle of the second segment.
    let victim = &segs[1];
    let mut raw = std::fs::read(victim).unwrap();
    let at = raw.len() / 2;
    raw[at] ^= 0x55;
    std::fs::write(victim, &raw).unwrap();
    let (_wal, st, report) = open(o);
    assert_eq!(report.corruptions.len(), 1, "{report:?}");
    assert_eq!(&report.corruptions[0].file, victim);
    assert!(report.corruptions[0].offset <= at as u64);
    // The newest sample (in the last segment) is there; some in the middle are not.
    let got = dump(&st);
    assert!(got.iter().any(|x| x.1 == 999_000));
    assert!(got.len() < 1000 && got.len() > 500, "{}", got.len());
}

#[test]
fn retention_drops_old_segments_but_keeps_series_of_newer_ones() {
    let d = TempDir::new();
    let mut o = opts(&d.wal(), FsyncPolicy::Interval(Duration::from_secs(3600)));
    o.segment_bytes = 4096;
    let old_only = l(&[("__name__", "old_only")]);
    let long_lived = l(&[("__name__", "long_lived"), ("job", "x")]);
    {
        let (wal, _st, _) = open(o.clone());
        // Old period: both series, several segments.
        for t in 0..300i64 {
            wal.append(&[
                (old_only.clone(), t, f(1.0)),
                (long_lived.clone(), t, f(t as f64)),
            ])
            .unwrap();
        }
        let old_segments = wal.segments().len();
        assert!(old_segments >= 3, "{old_segments}");
        // New period: long_lived only, declared again in the new segments.
        for t in 10_000..10_300i64 {
            wal.append(&[(long_lived.clone(), t, f(t as f64))]).unwrap();
        }
        let before = wal.segments();
        let out = wal.truncate(10_000).unwrap();
        assert!(out.segments >= 2, "{out:?}");
        let after = wal.segments();
        assert_eq!(after.len(), before.len() - out.segments);
        for gone in &before[..out.segments] {
            assert!(!gone.path.exists(), "{gone:?}");
            assert!(gone.max_ts < 10_000);
        }
        assert!(after.iter().all(|s| s.max_ts >= 10_000 || s.active));
    }
    let (_wal, st, report) = open(o);
    assert!(report.corruptions.is_empty());
    let got = dump(&st);
    // The deleted segments' samples are gone (a segment straddling the cutoff may keep a few old ones)...
    let old_left = got.iter().filter(|x| x.1 < 10_000).count();
    assert!(old_left < 300, "{old_left}");
    // ...and every new-period sample is back: the surviving segments declare the series themselves.
    let new_period: Vec<_> = got.iter().filter(|x| x.1 >= 10_000).collect();
    assert_eq!(new_period.len(), 300);
    assert!(new_period.iter().all(|x| x.0 == long_lived));
}

#[test]
fn replay_skips_samples_older_than_min_ts_and_retention_at_open() {
    let d = TempDir::new();
    let mut o = opts(&d.wal(), FsyncPolicy::Request);
    o.segment_bytes = 4096;
    let x = l(&[("__name__", "x")]);
    {
        let (wal, _st, _) = open(o.clone());
        for t in 0..400i64 {
            wal.append(&[(x.clone(), t, f(t as f64))]).unwrap();
        }
    }
    let st = store();
    let (wal, report) = Wal::open(o, &st, 350);
    assert_eq!(report.counts.stored, 50);
    assert!(report.counts.too_old > 0);
    assert_eq!(dump(&st).first().map(|s| s.1), Some(350));
    // Segments entirely before 350 were deleted at open.
    assert!(wal.segments().iter().all(|s| s.active || s.max_ts >= 350));
}

#[test]
fn unwritable_directory_fails_appends_with_the_path_and_recovers() {
    let d = TempDir::new();
    let blocker = d.0.join("not-a-dir");
    std::fs::write(&blocker, b"regular file").unwrap();
    let dir = blocker.join("wal");
    let (wal, _st, report) = open(opts(&dir, FsyncPolicy::Request));
    assert_eq!(report.segments, 0);
    let h = wal.health();
    assert!(!h.healthy);
    assert!(
        h.message.contains(&dir.display().to_string()),
        "{}",
        h.message
    );
    let err = wal
        .append(&[(l(&[("__name__", "x")]), 1, f(1.0))])
        .unwrap_err()
        .to_string();
    assert!(err.contains(&blocker.display().to_string()), "{err}");
    assert_eq!(wal.health().appends_failed, 1);
    // Fix the directory: after the back-off, appends work again.
    std::fs::remove_file(&blocker).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    wal.append(&[(l(&[("__name__", "x")]), 2, f(2.0))]).unwrap();
    assert!(wal.health().healthy, "{:?}", wal.health());
}

#[test]
fn policy_and_size_flags_parse() {
    assert_eq!("request".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Request));
    assert_eq!("off".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Off));
    assert_eq!(
        "100ms".parse::<FsyncPolicy>(),
        Ok(FsyncPolicy::Interval(Duration::from_millis(100)))
    );
    assert_eq!(
        "2s".parse::<FsyncPolicy>(),
        Ok(FsyncPolicy::Interval(Duration::from_secs(2)))
    );
    assert!("0s".parse::<FsyncPolicy>().is_err());
    assert!("always".parse::<FsyncPolicy>().is_err());
    assert_eq!(
        FsyncPolicy::Interval(Duration::from_millis(100)).to_string(),
        "100ms"
    );
    assert_eq!(
        FsyncPolicy::Interval(Duration::from_secs(1)).to_string(),
        "1s"
    );
    assert_eq!(parse_size("64MiB"), Ok(64 << 20));
    assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    assert_eq!(parse_size("65536"), Ok(65536));
    assert!(parse_size("12").is_err());
    assert!(parse_size("1TB").is_err());
    assert!(parse_size("MiB").is_err());
}

/// One valid segment with floats, strings, NaNs and many series, for the fuzz properties.
static SEGMENT: LazyLock<(Vec<u8>, Vec<Normed>)> = LazyLock::new(|| {
    let d = TempDir::new();
    let (wal, _st, _) = open(opts(&d.wal(), FsyncPolicy::Off));
    let mut written = Vec::new();
    for i in 0..40i64 {
        let batch: Vec<Sample> = (0..(i % 5 + 1))
            .map(|j| {
                let lab = l(&[("__name__", "fz"), ("k", &((i + j) % 9).to_string())]);
                let v = match (i + j) % 4 {
                    0 => f(stale_nan()),
                    1 => s(&"x".repeat(j as usize)),
                    _ => f((i * j) as f64 / 3.0),
                };
                (lab, i * 1000 + j, v)
            })
            .collect();
        wal.append(&batch).unwrap();
        written.extend(batch);
    }
    let path = wal.segments()[0].path.clone();
    drop(wal);
    let raw = std::fs::read(path).unwrap();
    let got = read_segment(&raw);
    assert_eq!(got.error, None);
    assert_eq!(norm_all(&got.samples), norm_all(&written));
    (raw, norm_all(&written))
});

fn is_prefix(got: &[Normed], of: &[Normed]) -> bool {
    got.len() <= of.len() && got == &of[..got.len()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..2048), magic in any::<bool>()) {
        if magic {
            let mut b = b"KLXWAL\x00\x01".to_vec();
            b.extend_from_slice(&bytes);
            bytes = b;
        }
        let got = read_segment(&bytes);
        prop_assert!(got.valid_len <= bytes.len());
        prop_assert!(got.error.is_some() || got.valid_len == bytes.len());
    }

    #[test]
    fn truncation_replays_a_prefix(cut in 0usize..10_000) {
        let (raw, all) = &*SEGMENT;
        let cut = cut % (raw.len() + 1);
        let got = read_segment(&raw[..cut]);
        prop_assert!(got.valid_len <= cut);
        prop_assert!(is_prefix(&norm_all(&got.samples), all));
        if cut < raw.len() && cut > 0 {
            prop_assert!(got.error.is_some() || got.valid_len == cut);
        }
    }

    #[test]
    fn corruption_replays_a_prefix(at in 0usize..10_000, xor in 1u8..=255, cut in 0usize..10_000) {
        let (raw, all) = &*SEGMENT;
        let mut b = raw.clone();
        let at = at % b.len();
        b[at] ^= xor;
        let cut = at + cut % (b.len() - at + 1);
        let b = &b[..cut];
        let got = read_segment(b);
        prop_assert!(got.error.is_some() || got.valid_len == b.len());
        // Nothing at or after the damaged byte is ever delivered.
        prop_assert!(got.valid_len <= at);
        prop_assert!(is_prefix(&norm_all(&got.samples), all));
    }

    #[test]
    fn arbitrary_batches_round_trip(
        batches in proptest::collection::vec(
            proptest::collection::vec((0u8..6, any::<i64>(), prop_oneof![
                any::<u64>().prop_map(|b| f(f64::from_bits(b))),
                "[a-z☃]{0,6}".prop_map(|x| s(&x)),
            ]), 1..8),
            1..6,
        )
    ) {
        let d = TempDir::new();
        let batches: Vec<Vec<Sample>> = batches.into_iter().map(|b| {
            b.into_iter().map(|(k, t, v)| (l(&[("__name__", "p"), ("k", &k.to_string())]), t, v)).collect()
        }).collect();
        let (wal, _st, _) = open(opts(&d.wal(), FsyncPolicy::Off));
        for b in &batches {
            wal.append(b).unwrap();
        }
        let path = wal.segments()[0].path.clone();
        drop(wal);
        let got = read_segment(&std::fs::read(path).unwrap());
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(norm_all(&got.samples), norm_all(&batches.concat()));
    }
}
