//! Range-vector functions on one series' window: extrapolated rates, instant rates, regression,
//! `resets`/`changes` and the `*_over_time` family, as in Prometheus' `functions.go`.

use super::aggregate::quantile;
use super::value::kahan_inc;

/// Prometheus' `extrapolatedRate` for floats: `rate` (counter, per second), `increase` (counter)
/// and `delta` (gauge). The window is `(range_start, range_end]`, `range_ms` long.
pub(crate) fn extrapolated_rate(
    floats: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if floats.len() < 2 {
        return None;
    }
    let (first_t, first_v) = floats[0];
    let (last_t, last_v) = floats[floats.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        let mut prev = first_v;
        for &(_, v) in &floats[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let num_minus_one = (floats.len() - 1) as f64;
    let secs = |a: i64, b: i64| (i128::from(a) - i128::from(b)) as f64 / 1000.0;
    let mut duration_to_start = secs(first_t, range_start);
    let mut duration_to_end = secs(range_end, last_t);
    let sampled_interval = secs(last_t, first_t);
    let average_between = sampled_interval / num_minus_one;

    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    if duration_to_start >= threshold {
        duration_to_start = average_between / 2.0;
    }
    if is_counter && result > 0.0 && first_v >= 0.0 {
        // Counters cannot go below zero: do not extrapolate past the zero point.
        let duration_to_zero = sampled_interval * (first_v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    extrapolate_to += duration_to_start;
    if duration_to_end >= threshold {
        duration_to_end = average_between / 2.0;
    }
    extrapolate_to += duration_to_end;

    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` / `idelta`: from the last two samples.
pub(crate) fn instant_value(floats: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if floats.len() < 2 {
        return None;
    }
    let (pt, pv) = floats[floats.len() - 2];
    let (lt, lv) = floats[floats.len() - 1];
    let mut result = if is_rate && lv < pv { lv } else { lv - pv };
    let interval = i128::from(lt) - i128::from(pt);
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept with x relative to `intercept_time` (Prometheus' `linearRegression`).
pub(crate) fn linear_regression(floats: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = floats[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in floats.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (i128::from(t) - i128::from(intercept_time)) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `resets`: number of decreases.
pub(crate) fn resets(floats: &[(i64, f64)]) -> f64 {
    floats.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64
}

/// `changes`: number of value changes (NaN to NaN is no change).
pub(crate) fn changes(floats: &[(i64, f64)]) -> f64 {
    floats
        .windows(2)
        .filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan()))
        .count() as f64
}

/// `avg_over_time`: Kahan-compensated direct mean, switching to an incremental mean on overflow.
pub(crate) fn avg_over_time(floats: &[(i64, f64)]) -> f64 {
    let (mut sum, mut count) = (floats[0].1, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, &(_, f)) in floats[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (s, nc) = kahan_inc(f, sum, c);
            if !s.is_infinite() {
                (sum, c) = (s, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(f / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        (sum + c) / count
    }
}

/// `sum_over_time` with Kahan summation.
pub(crate) fn sum_over_time(floats: &[(i64, f64)]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for &(_, f) in floats {
        (sum, c) = kahan_inc(f, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// `stdvar_over_time` (Welford with Kahan-compensated accumulators).
pub(crate) fn stdvar_over_time(floats: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, f) in floats {
        count += 1.0;
        let delta = f - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (f - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Shared body of `min`/`max_over_time` and `ts_of_min`/`ts_of_max_over_time`: the selected value and its time.
pub(crate) fn compare_over_time(
    floats: &[(i64, f64)],
    better: impl Fn(f64, f64) -> bool,
) -> (f64, i64) {
    let (mut best, mut ts) = (floats[0].1, floats[0].0);
    for &(t, f) in floats {
        if better(f, best) || best.is_nan() {
            best = f;
            ts = t;
        }
    }
    (best, ts)
}

/// `quantile_over_time`.
pub(crate) fn quantile_over_time(q: f64, floats: &[(i64, f64)]) -> f64 {
    let mut vals: Vec<f64> = floats.iter().map(|p| p.1).collect();
    quantile(q, &mut vals)
}

/// `mad_over_time`: median absolute deviation; NaN when any sample is NaN.
pub(crate) fn mad_over_time(floats: &[(i64, f64)]) -> f64 {
    if floats.iter().any(|p| p.1.is_nan()) {
        return f64::NAN;
    }
    let mut vals: Vec<f64> = floats.iter().map(|p| p.1).collect();
    let median = quantile(0.5, &mut vals);
    let mut dev: Vec<f64> = floats.iter().map(|p| (p.1 - median).abs()).collect();
    quantile(0.5, &mut dev)
}

/// `double_exponential_smoothing` (formerly `holt_winters`); needs two samples.
pub(crate) fn double_exponential_smoothing(floats: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    if floats.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = floats[0].1;
    let mut b = floats[1].1 - floats[0].1;
    for (i, &(_, v)) in floats.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(step: i64, vals: &[f64]) -> Vec<(i64, f64)> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * step, *v))
            .collect()
    }

    #[test]
    fn increase_extrapolates_to_zero_point() {
        // functions.test: increase(http_requests_total[100m]) at 50m with samples every 5m.
        let m = 300_000;
        let dings: Vec<_> = (0..=10).map(|i| (i * m, 10.0 + 10.0 * i as f64)).collect();
        let bumms: Vec<_> = (0..=10).map(|i| (i * m, 1.0 + 10.0 * i as f64)).collect();
        let r = extrapolated_rate(
            &dings,
            3_000_000 - 6_000_000,
            3_000_000,
            6_000_000,
            true,
            false,
        )
        .unwrap();
        assert!((r - 105.0).abs() < 1e-9, "{r}");
        let r = extrapolated_rate(
            &bumms,
            3_000_000 - 6_000_000,
            3_000_000,
            6_000_000,
            true,
            false,
        )
        .unwrap();
        assert!((r - 101.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn rate_handles_counter_resets() {
        // 0+10x4 0+10x5 sampled every 5m: the reset adds the pre-reset value.
        let mut v: Vec<f64> = (0..5).map(|i| 10.0 * i as f64).collect();
        v.extend((0..6).map(|i| 10.0 * i as f64));
        let s = series(300_000, &v);
        let r = extrapolated_rate(&s, -1, 3_000_000, 3_000_001, true, false).unwrap();
        assert_eq!(r, 90.0);
        assert_eq!(resets(&s), 1.0);
    }

    #[test]
    fn zero_cutoff() {
        // functions.test: rate(testcounter_zero_cutoff_total[20m]) at 10m, start="1m" -> 0.55.
        let s: Vec<_> = (0..=2)
            .map(|i| (i * 240_000, 60.0 + 240.0 * i as f64))
            .collect();
        let r = extrapolated_rate(&s, 600_000 - 1_200_000, 600_000, 1_200_000, true, true).unwrap();
        assert!((r - 0.55).abs() < 1e-12, "{r}");
    }

    #[test]
    fn irate_counter_reset_and_nan() {
        assert_eq!(instant_value(&[(0, 10.0), (1000, 2.0)], true), Some(2.0));
        assert!(
            instant_value(&[(0, f64::NAN), (1000, 2.0)], true)
                .unwrap()
                .is_nan()
        );
        assert_eq!(instant_value(&[(0, 1.0)], true), None);
    }

    #[test]
    fn regression() {
        // functions.test: deriv(testcounter_reset_middle_total[100m]) = 0.010606060606060607
        let mut v: Vec<f64> = (0..5).map(|i| 10.0 * i as f64).collect();
        v.extend((0..6).map(|i| 10.0 * i as f64));
        let s = series(300_000, &v);
        let (slope, _) = linear_regression(&s, s[0].0);
        assert!((slope - 0.010606060606060607).abs() < 1e-15);
        let (slope, intercept) = linear_regression(&s, 3_000_000);
        assert!((slope * 3600.0 + intercept - 76.81818181818181).abs() < 1e-9);
    }

    #[test]
    fn kahan_sums() {
        let s = series(10_000, &[1.0, 1e100, 1.0, -1e100]);
        assert_eq!(sum_over_time(&s), 2.0);
        assert_eq!(avg_over_time(&s), 0.5);
        let b = 0.998_846_567_431_157_9 * f64::MAX;
        let big = series(10_000, &[b, b]);
        assert_eq!(avg_over_time(&big), b);
    }

    #[test]
    fn stdvar_of_constant_is_zero() {
        let s = series(10_000, &[1.5990505637277868; 3]);
        assert_eq!(stdvar_over_time(&s), 0.0);
    }

    #[test]
    fn smoothing() {
        let s: Vec<_> = (0..7).map(|i| (i * 10_000, 10.0 * i as f64)).collect();
        let v = double_exponential_smoothing(&s, 0.01, 0.1).unwrap();
        assert!((v - 60.0).abs() < 1e-9, "{v}");
    }
}
