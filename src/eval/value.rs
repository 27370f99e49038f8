//! Internal value representation: vector elements with shared labels, fetched series split into
//! float / string / stale arrays, label-set hashing for matching and grouping, and Go-compatible
//! float formatting and arithmetic helpers.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::model::{
    Label, Labels, LabelsBuilder, METRIC_NAME, SampleValue, is_legacy_label_name, is_stale_nan,
    quote,
};
use crate::store::SeriesSamples;

/// Labels Prometheus drops together with the metric name (`__type__` / `__unit__` metadata labels).
pub(crate) const METADATA_LABELS: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

/// Whether `name` is one of the labels dropped with the metric name.
pub(crate) fn is_metadata_label(name: &str) -> bool {
    METADATA_LABELS.contains(&name)
}

/// One element of an instant vector during evaluation.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    /// Series labels (shared; cloning is one reference count).
    pub labels: Arc<Labels>,
    /// Float or string value.
    pub v: SampleValue,
    /// Prometheus' `DropName`: remove `__name__` at the end of evaluation.
    pub drop_name: bool,
}

impl Elem {
    /// A float element.
    pub fn float(labels: Arc<Labels>, f: f64, drop_name: bool) -> Self {
        Elem {
            labels,
            v: SampleValue::Float(f),
            drop_name,
        }
    }

    /// The float value, if this is a float element.
    pub fn f(&self) -> Option<f64> {
        match self.v {
            SampleValue::Float(f) => Some(f),
            SampleValue::Str(_) => None,
        }
    }
}

/// A series' samples inside the window a query needs, ready for slicing by time.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesData {
    /// Labels, shared with every element produced from this series.
    pub labels: Arc<Labels>,
    /// Whether the series' name is to be dropped (subquery results carry it).
    pub drop_name: bool,
    /// Non-stale float samples, time-ordered.
    pub floats: Vec<(i64, f64)>,
    /// String samples, time-ordered.
    pub strings: Vec<(i64, Arc<str>)>,
    /// Timestamps of stale markers, ordered.
    pub stale: Vec<i64>,
}

impl SeriesData {
    /// Splits a store answer into the three arrays.
    pub fn from_samples(s: SeriesSamples) -> Self {
        let mut d = SeriesData {
            labels: Arc::new(s.labels),
            ..Default::default()
        };
        d.floats.reserve(s.samples.len());
        for (t, v) in s.samples {
            match v {
                SampleValue::Float(f) if is_stale_nan(f) => d.stale.push(t),
                SampleValue::Float(f) => d.floats.push((t, f)),
                SampleValue::Str(s) => d.strings.push((t, s)),
            }
        }
        // The store promises time order; keep the invariant even if a source does not.
        if !d.floats.windows(2).all(|w| w[0].0 < w[1].0) {
            d.floats.sort_by_key(|p| p.0);
            d.floats.dedup_by_key(|p| p.0);
        }
        if !d.strings.windows(2).all(|w| w[0].0 < w[1].0) {
            d.strings.sort_by_key(|p| p.0);
        }
        if !d.stale.windows(2).all(|w| w[0] < w[1]) {
            d.stale.sort_unstable();
        }
        d
    }

    /// The samples in the left-open window `(mint, maxt]`.
    pub fn window(&self, mint: i64, maxt: i64) -> Window<'_> {
        self.window_at(mint, maxt, &mut Cursor::default())
    }

    /// Like [`SeriesData::window`], resuming from `c` when windows only move forward (range queries).
    pub fn window_at(&self, mint: i64, maxt: i64, c: &mut Cursor) -> Window<'_> {
        if maxt <= mint {
            return Window {
                floats: &self.floats[..0],
                strings: &self.strings[..0],
            };
        }
        if c.init && mint >= c.mint && maxt >= c.maxt {
            c.f_lo = seek(&self.floats, c.f_lo, mint);
            c.f_hi = seek(&self.floats, c.f_hi.max(c.f_lo), maxt);
            c.s_lo = seek(&self.strings, c.s_lo, mint);
            c.s_hi = seek(&self.strings, c.s_hi.max(c.s_lo), maxt);
        } else {
            c.f_lo = self.floats.partition_point(|p| p.0 <= mint);
            c.f_hi = self.floats.partition_point(|p| p.0 <= maxt).max(c.f_lo);
            c.s_lo = self.strings.partition_point(|p| p.0 <= mint);
            c.s_hi = self.strings.partition_point(|p| p.0 <= maxt).max(c.s_lo);
        }
        *c = Cursor {
            init: true,
            mint,
            maxt,
            ..*c
        };
        Window {
            floats: &self.floats[c.f_lo..c.f_hi],
            strings: &self.strings[c.s_lo..c.s_hi],
        }
    }

    /// The latest sample in `(t - lookback, t]`, unless a stale marker follows it; with its timestamp.
    pub fn at(&self, t: i64, lookback: i64) -> Option<(i64, SampleValue)> {
        self.at_cursor(t, lookback, &mut Cursor::default())
    }

    /// Like [`SeriesData::at`], resuming from `c` when `t` only moves forward (range queries).
    pub fn at_cursor(&self, t: i64, lookback: i64, c: &mut Cursor) -> Option<(i64, SampleValue)> {
        if c.init && t >= c.maxt {
            c.f_hi = seek(&self.floats, c.f_hi, t);
            c.s_hi = seek(&self.strings, c.s_hi, t);
            c.st_hi = seek_ts(&self.stale, c.st_hi, t);
        } else {
            c.f_hi = self.floats.partition_point(|p| p.0 <= t);
            c.s_hi = self.strings.partition_point(|p| p.0 <= t);
            c.st_hi = self.stale.partition_point(|&st| st <= t);
        }
        c.init = true;
        c.maxt = t;
        let mint = t.saturating_sub(lookback);
        let f = c
            .f_hi
            .checked_sub(1)
            .and_then(|i| self.floats.get(i))
            .filter(|p| p.0 > mint);
        let s = c
            .s_hi
            .checked_sub(1)
            .and_then(|i| self.strings.get(i))
            .filter(|p| p.0 > mint);
        let (ts, v) = match (f, s) {
            (Some(f), Some(s)) if s.0 > f.0 => (s.0, SampleValue::Str(s.1.clone())),
            (Some(f), _) => (f.0, SampleValue::Float(f.1)),
            (None, Some(s)) => (s.0, SampleValue::Str(s.1.clone())),
            (None, None) => return None,
        };
        // A stale marker after the sample (and not after t) ends the series.
        if c.st_hi
            .checked_sub(1)
            .and_then(|i| self.stale.get(i))
            .is_some_and(|&st| st > ts)
        {
            return None;
        }
        Some((ts, v))
    }
}

/// Position in one series' arrays, so consecutive steps of a range query scan forward instead of
/// binary-searching cold memory for every series at every step.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    init: bool,
    mint: i64,
    maxt: i64,
    f_lo: usize,
    f_hi: usize,
    s_lo: usize,
    s_hi: usize,
    st_hi: usize,
}

/// The first index `>= from` whose timestamp is `> t`: a short linear scan, then binary search.
fn seek<T>(pts: &[(i64, T)], from: usize, t: i64) -> usize {
    let mut i = from.min(pts.len());
    for _ in 0..8 {
        match pts.get(i) {
            Some(p) if p.0 <= t => i += 1,
            _ => return i,
        }
    }
    i + pts[i..].partition_point(|p| p.0 <= t)
}

/// [`seek`] over bare timestamps.
fn seek_ts(ts: &[i64], from: usize, t: i64) -> usize {
    let mut i = from.min(ts.len());
    for _ in 0..8 {
        match ts.get(i) {
            Some(&x) if x <= t => i += 1,
            _ => return i,
        }
    }
    i + ts[i..].partition_point(|&x| x <= t)
}

/// One series' samples inside a range window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a> {
    /// Float samples.
    pub floats: &'a [(i64, f64)],
    /// String samples.
    pub strings: &'a [(i64, Arc<str>)],
}

impl Window<'_> {
    /// Whether the window holds no sample at all.
    pub fn is_empty(&self) -> bool {
        self.floats.is_empty() && self.strings.is_empty()
    }
}

/// Fixed-seed hasher for label signatures: fast, and stable within a process.
fn hasher() -> ahash::AHasher {
    ahash::RandomState::with_seeds(
        0x6b6c_6178_6f6e,
        0x7072_6f6d_716c,
        0x0123_4567_89ab,
        0xfedc_ba98_7654,
    )
    .build_hasher()
}

fn feed(h: &mut ahash::AHasher, l: &Label) {
    h.write(l.name.as_bytes());
    h.write_u8(0xff);
    h.write(l.value.as_bytes());
    h.write_u8(0xff);
}

/// Hash of the labels named in `names` (`on(...)`, `by(...)`).
pub(crate) fn hash_on(labels: &Labels, names: &[String]) -> u64 {
    let mut h = hasher();
    for l in labels.iter() {
        if names.iter().any(|n| **n == *l.name) {
            feed(&mut h, l);
        }
    }
    h.finish()
}

/// Hash of all labels except `names` and, when `drop_meta`, the metadata labels; `__name__` is
/// always excluded when `drop_name`.
pub(crate) fn hash_without(
    labels: &Labels,
    names: &[String],
    drop_name: bool,
    drop_meta: bool,
) -> u64 {
    let mut h = hasher();
    for l in labels.iter() {
        if (drop_name && &*l.name == METRIC_NAME)
            || (drop_meta && is_metadata_label(&l.name))
            || names.iter().any(|n| **n == *l.name)
        {
            continue;
        }
        feed(&mut h, l);
    }
    h.finish()
}

/// Hash of a whole label set.
pub(crate) fn hash_all(labels: &Labels) -> u64 {
    let mut h = hasher();
    for l in labels.iter() {
        feed(&mut h, l);
    }
    h.finish()
}

/// The set without `__name__` and the metadata labels.
pub(crate) fn drop_metadata(labels: &Labels) -> Labels {
    if !labels.iter().any(|l| is_metadata_label(&l.name)) {
        return labels.clone();
    }
    Labels::from_sorted(
        labels
            .iter()
            .filter(|l| !is_metadata_label(&l.name))
            .cloned()
            .collect(),
    )
}

/// Only the labels named in `names`.
pub(crate) fn keep_only(labels: &Labels, names: &[String]) -> Labels {
    labels.keep(names)
}

/// All labels except `names`, and the metadata labels when `drop_meta`.
pub(crate) fn drop_names(labels: &Labels, names: &[String], drop_meta: bool) -> Labels {
    Labels::from_sorted(
        labels
            .iter()
            .filter(|l| {
                !(names.iter().any(|n| **n == *l.name) || (drop_meta && is_metadata_label(&l.name)))
            })
            .cloned()
            .collect(),
    )
}

/// Sets one label (empty value deletes it).
pub(crate) fn with_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut b = LabelsBuilder::new(labels);
    b.set(name, value);
    b.build()
}

/// Prometheus' `labels.String()`: `{__name__="x", a="b"}`, every label inside the braces.
pub(crate) fn labels_string(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        if is_legacy_label_name(&l.name) {
            s.push_str(&l.name);
        } else {
            s.push_str(&quote(&l.name));
        }
        s.push('=');
        s.push_str(&quote(&l.value));
    }
    s.push('}');
    s
}

/// Neumaier-compensated addition, exactly as Prometheus' `kahanSumInc`.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `math.Max`: +Inf wins over NaN, NaN wins over everything else, +0 over -0.
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y { x } else { y }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN wins over everything else, -0 over +0.
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y { x } else { y }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
pub(crate) fn format_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        }
    } else {
        format!("{f}")
    }
}

/// Go's `%g` (shortest): exponent form when the exponent is < -4 or >= 21 for `%v`, >= 6 for `%g`.
fn format_go_exp(f: f64, eprec: i32) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= eprec {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `%g` with the shortest representation.
pub(crate) fn format_g(f: f64) -> String {
    format_go_exp(f, 6)
}

/// Go's `%v` for a float64.
pub(crate) fn format_v(f: f64) -> String {
    format_go_exp(f, 21)
}

/// Parses a float the way Go's `strconv.ParseFloat` accepts `le` label values (`+Inf`, `1e0`, `.2`...).
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return if s.len() == t.len() {
            Some(f64::NAN)
        } else {
            None
        };
    }
    if s.contains('_') {
        return None;
    }
    if lower.starts_with("0x") {
        return parse_hex_float(s);
    }
    s.parse::<f64>().ok()
}

/// Hex floats (`0x1p-2`, `0x1.8p1`), as Go accepts them.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest.get(2..)?;
    let (mant, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formatting() {
        assert_eq!(format_g(f64::NAN), "NaN");
        assert_eq!(format_g(-1.0), "-1");
        assert_eq!(format_g(1.01), "1.01");
        assert_eq!(format_g(1e6), "1e+06");
        assert_eq!(format_g(123456.0), "123456");
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(0.00001), "1e-05");
        assert_eq!(format_f(6.0), "6");
        assert_eq!(format_f(0.25), "0.25");
        assert_eq!(format_f(1e21), "1000000000000000000000");
        assert_eq!(format_f(f64::INFINITY), "+Inf");
    }

    #[test]
    fn go_min_max() {
        assert!(go_max(0.0, f64::NAN).is_nan());
        assert_eq!(go_max(f64::INFINITY, f64::NAN), f64::INFINITY);
        assert_eq!(go_min(f64::NEG_INFINITY, f64::NAN), f64::NEG_INFINITY);
        assert_eq!(go_min(2.0, 1.0), 1.0);
    }

    #[test]
    fn parse_floats() {
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("+inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("1e0"), Some(1.0));
        assert_eq!(parse_go_float(".2"), Some(0.2));
        assert_eq!(parse_go_float("2.0e-1"), Some(0.2));
        assert_eq!(parse_go_float("0x1p-2"), Some(0.25));
        assert_eq!(parse_go_float("Hello World"), None);
        assert_eq!(parse_go_float(""), None);
    }

    #[test]
    fn windows_are_left_open() {
        let d = SeriesData {
            floats: vec![(0, 1.0), (10, 2.0), (20, 3.0)],
            stale: vec![25],
            ..Default::default()
        };
        assert_eq!(d.window(0, 20).floats, &[(10, 2.0), (20, 3.0)]);
        assert_eq!(d.window(20, 20).floats.len(), 0);
        assert_eq!(d.at(20, 300).map(|p| p.0), Some(20));
        assert_eq!(d.at(26, 300), None);
        assert_eq!(d.at(5, 5).map(|p| p.0), None);
        assert_eq!(d.at(5, 6).map(|p| p.0), Some(0));
        // Cursors give the same answers as fresh searches, forwards, backwards and with big jumps.
        let d = SeriesData {
            floats: (0..500).map(|i| (i * 7, i as f64)).collect(),
            strings: vec![(3, "a".into()), (1000, "b".into())],
            stale: vec![50, 51, 2000],
            ..Default::default()
        };
        let (mut wc, mut ac) = (Cursor::default(), Cursor::default());
        for t in [0, 5, 5, 60, 61, 900, 901, 3490, 100, 2500, 2001, 2002, 4000] {
            let (a, b) = (d.window(t - 30, t), d.window_at(t - 30, t, &mut wc));
            assert_eq!(
                (a.floats, a.strings),
                (b.floats, b.strings),
                "window at {t}"
            );
            assert_eq!(d.at(t, 300), d.at_cursor(t, 300, &mut ac), "at {t}");
        }
    }
}
