//! Query driver and expression dispatch: plans and fetches selector data once per query, evaluates
//! an expression at one time, and assembles instant and range results (delayed name removal and
//! the final duplicate-labelset check happen here).

use ahash::AHashMap as HashMap;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use crate::expr::{AggOp, AtModifier, Expr, Span, UnaryOp, VectorSelector};
use crate::model::{Labels, SampleValue};
use crate::store::SeriesSource;

use super::annotations::{Annotations, Level};
use super::value::{Cursor, Elem, SeriesData, Window, drop_metadata};
use super::{EngineOptions, EvalError, Outcome, Sample, Series, Value};

/// Most steps a range query (or one subquery evaluation) may have.
const MAX_STEPS: i64 = 10_000_000;

/// A value during evaluation.
#[derive(Debug)]
pub(crate) enum Val {
    /// A float.
    Scalar(f64),
    /// A string literal.
    Str(String),
    /// An instant vector.
    Vector(Vec<Elem>),
    /// A range vector (top-level matrix selectors and subqueries).
    Matrix(Vec<SeriesData>),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// The samples a range-vector argument yields at one evaluation time: every series with the
/// left-open window `(mint, maxt]` to slice.
pub(crate) struct RangeSource<'a> {
    /// Candidate series (fetched data, or a subquery's result).
    pub series: SeriesList<'a>,
    /// Window start (exclusive).
    pub mint: i64,
    /// Window end (inclusive).
    pub maxt: i64,
    /// Window length in ms (the selector's or subquery's range).
    pub range: i64,
    /// The selector node whose per-series cursors speed up successive windows.
    pub cursor_key: Option<usize>,
}

/// The series a range-vector argument covers: a selector's fetched data or a subquery's result.
pub(crate) enum SeriesList<'a> {
    /// Fetched selector data.
    Borrowed(&'a [SeriesData]),
    /// A subquery's accumulated result.
    Shared(Rc<Vec<SeriesData>>),
}

impl std::ops::Deref for SeriesList<'_> {
    type Target = [SeriesData];
    fn deref(&self) -> &[SeriesData] {
        match self {
            SeriesList::Borrowed(s) => s,
            SeriesList::Shared(v) => v,
        }
    }
}

/// A subquery's inner results so far, grown step by step as evaluation moves forward in time, so
/// a range query evaluates each absolute sub-step once (as Prometheus evaluates a subquery once).
#[derive(Default)]
struct SubqueryState {
    /// Series position by labels.
    index: HashMap<Arc<Labels>, usize>,
    /// Points per series, time-ordered.
    series: Rc<Vec<SeriesData>>,
    /// Latest sub-step evaluated.
    last: Option<i64>,
    /// Earliest sub-step whose points are still held.
    earliest: i64,
    /// Sub-steps appended since the last compaction.
    appended: i64,
}

/// Per-subquery state, keyed by node address.
type SubqueryMemo = RefCell<HashMap<usize, SubqueryState>>;

impl RangeSource<'_> {
    /// Calls `f(series, window)` for every series with samples in the window, resuming cursors in range mode.
    pub fn for_each_window<E>(
        &self,
        ctx: &Ctx<'_>,
        mut f: impl FnMut(&SeriesData, Window<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut cursors = self
            .cursor_key
            .and_then(|k| ctx.take_cursors(k, self.series.len()));
        let mut res = Ok(());
        for (i, d) in self.series.iter().enumerate() {
            let w = match cursors.as_mut() {
                Some(c) => d.window_at(self.mint, self.maxt, &mut c[i]),
                None => d.window(self.mint, self.maxt),
            };
            if w.is_empty() {
                continue;
            }
            res = f(d, w);
            if res.is_err() {
                break;
            }
        }
        if let Some(k) = self.cursor_key {
            ctx.put_cursors(k, cursors);
        }
        res
    }
}

/// Per-query evaluation state.
pub(crate) struct Ctx<'a> {
    /// Engine options (lookback, limits, name removal).
    pub opts: &'a EngineOptions,
    /// Query start, for `@ start()`.
    pub start: i64,
    /// Query end, for `@ end()`.
    pub end: i64,
    /// Range query step (0 for instant queries).
    pub step: i64,
    /// Whether this is a range query.
    pub range_query: bool,
    /// Fetched samples per selector node (keyed by node address).
    data: HashMap<usize, Vec<SeriesData>>,
    /// Subquery inner results per (node address, absolute step time).
    memo: SubqueryMemo,
    /// Collected annotations.
    annos: RefCell<Annotations>,
    /// Nesting depth of subqueries being evaluated.
    subquery_depth: Cell<u32>,
    /// Samples held in the current top-level step.
    samples: Cell<usize>,
    /// Compiled `label_replace` regexes.
    pub regexes: RefCell<HashMap<String, Rc<regex::Regex>>>,
    /// Per-selector, per-series positions of the last window (range mode only).
    cursors: RefCell<HashMap<usize, Vec<Cursor>>>,
}

fn node_key<T>(n: &T) -> usize {
    n as *const T as usize
}

impl<'a> Ctx<'a> {
    fn new(opts: &'a EngineOptions, start: i64, end: i64, step: i64, range_query: bool) -> Self {
        Ctx {
            opts,
            start,
            end,
            step,
            range_query,
            data: HashMap::new(),
            memo: RefCell::new(HashMap::new()),
            annos: RefCell::new(Annotations::default()),
            subquery_depth: Cell::new(0),
            samples: Cell::new(0),
            regexes: RefCell::new(HashMap::new()),
            cursors: RefCell::new(HashMap::new()),
        }
    }

    /// Resolves an `@` modifier to a timestamp.
    pub fn at_time(&self, at: Option<&AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => *t,
            AtModifier::Start => self.start,
            AtModifier::End => self.end,
        })
    }

    /// The time a selector or subquery looks at when evaluated at `t`.
    fn ref_time(&self, t: i64, at: Option<&AtModifier>, offset: i64) -> i64 {
        self.at_time(at).unwrap_or(t).saturating_sub(offset)
    }

    /// The cursors of selector `key` for `n` series, when a node is evaluated at several times.
    pub fn take_cursors(&self, key: usize, n: usize) -> Option<Vec<Cursor>> {
        if !self.in_range_mode() {
            return None;
        }
        let mut v = self.cursors.borrow_mut().remove(&key).unwrap_or_default();
        v.resize(n, Cursor::default());
        Some(v)
    }

    /// Returns cursors taken with [`Ctx::take_cursors`].
    pub fn put_cursors(&self, key: usize, cursors: Option<Vec<Cursor>>) {
        if let Some(c) = cursors {
            self.cursors.borrow_mut().insert(key, c);
        }
    }

    /// Records an annotation.
    pub fn annotate(&self, level: Level, msg: String, span: Span) {
        self.annos.borrow_mut().add(level, msg, span);
    }

    /// Whether results are per-step series (range query or inside a subquery), where sorting is moot.
    pub fn in_range_mode(&self) -> bool {
        self.range_query || self.subquery_depth.get() > 0
    }

    /// Accounts for `n` more samples held; fails past `max_samples`.
    pub fn add_samples(&self, n: usize) -> Result<(), EvalError> {
        let total = self.samples.get().saturating_add(n);
        if total > self.opts.max_samples {
            return Err(EvalError::TooManySamples);
        }
        self.samples.set(total);
        Ok(())
    }

    /// Marks an element's metric name for removal (now, or at the end with delayed removal).
    pub fn mark_drop(&self, e: &mut Elem) {
        if self.opts.delayed_name_removal {
            e.drop_name = true;
        } else {
            e.labels = Arc::new(drop_metadata(&e.labels));
        }
    }

    /// Evaluates `e` at time `t`.
    pub fn eval(&self, e: &Expr, t: i64) -> Result<Val, EvalError> {
        match e {
            Expr::Number { value, .. } => Ok(Val::Scalar(*value)),
            Expr::String { value, .. } => Ok(Val::Str(value.clone())),
            Expr::Paren { expr, .. } => self.eval(expr, t),
            Expr::Unary { op, expr, .. } => {
                let v = self.eval(expr, t)?;
                if *op == UnaryOp::Pos {
                    return Ok(v);
                }
                match v {
                    Val::Scalar(f) => Ok(Val::Scalar(-f)),
                    Val::Vector(vec) => {
                        let mut out = Vec::with_capacity(vec.len());
                        for mut el in vec {
                            if let SampleValue::Float(f) = el.v {
                                el.v = SampleValue::Float(-f);
                                self.mark_drop(&mut el);
                                out.push(el);
                            }
                        }
                        Ok(Val::Vector(out))
                    }
                    other => Err(EvalError::Type(format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                        other.type_name()
                    ))),
                }
            }
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_selector(vs, t)?)),
            Expr::MatrixSelector { .. } | Expr::Subquery { .. } => {
                let src = self.range_source(e, t)?;
                let mut out = Vec::with_capacity(src.series.len());
                src.for_each_window(self, |d, w| {
                    self.add_samples(w.floats.len() + w.strings.len())?;
                    out.push(SeriesData {
                        labels: d.labels.clone(),
                        drop_name: d.drop_name,
                        floats: w.floats.to_vec(),
                        strings: w.strings.to_vec(),
                        stale: Vec::new(),
                    });
                    Ok::<(), EvalError>(())
                })?;
                Ok(Val::Matrix(out))
            }
            Expr::Binary {
                op,
                lhs,
                rhs,
                modifier,
                ..
            } => super::binop::eval_binary(self, *op, lhs, rhs, modifier, t),
            Expr::Aggregate {
                op,
                expr,
                param,
                grouping,
                ..
            } => super::aggregate::eval_aggregate(
                self,
                *op,
                expr,
                param.as_deref(),
                grouping.as_ref(),
                t,
            ),
            Expr::Call { func, args, span } => {
                super::functions::eval_call(self, func, args, *span, t)
            }
        }
    }

    /// Evaluates `e`, which must be an instant vector.
    pub fn eval_vector(&self, e: &Expr, t: i64) -> Result<Vec<Elem>, EvalError> {
        match self.eval(e, t)? {
            Val::Vector(v) => Ok(v),
            other => Err(EvalError::Type(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `e`, which must be a scalar.
    pub fn eval_scalar(&self, e: &Expr, t: i64) -> Result<f64, EvalError> {
        match self.eval(e, t)? {
            Val::Scalar(f) => Ok(f),
            other => Err(EvalError::Type(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `e`, which must be a string.
    pub fn eval_string(&self, e: &Expr, t: i64) -> Result<String, EvalError> {
        match self.eval(e, t)? {
            Val::Str(s) => Ok(s),
            other => Err(EvalError::Type(format!(
                "expected string, got {}",
                other.type_name()
            ))),
        }
    }

    /// The fetched series of a selector.
    pub fn selector_data(&self, vs: &VectorSelector) -> &[SeriesData] {
        self.data
            .get(&node_key(vs))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The time a vector selector reads at when evaluated at `t` (after `@` and `offset`).
    pub fn selector_time(&self, vs: &VectorSelector, t: i64) -> i64 {
        self.ref_time(t, vs.at.as_ref(), vs.offset)
    }

    /// An instant vector selector at `t`: the latest sample within the lookback window per series.
    fn eval_selector(&self, vs: &VectorSelector, t: i64) -> Result<Vec<Elem>, EvalError> {
        let mut out = Vec::new();
        self.for_each_at(vs, t, |d, _, v| {
            out.push(Elem {
                labels: d.labels.clone(),
                v,
                drop_name: false,
            })
        });
        self.add_samples(out.len())?;
        Ok(out)
    }

    /// Calls `f(series, sample time, value)` for every series of `vs` with a sample at `t` (after lookback).
    pub fn for_each_at(
        &self,
        vs: &VectorSelector,
        t: i64,
        mut f: impl FnMut(&SeriesData, i64, SampleValue),
    ) {
        let rt = self.selector_time(vs, t);
        let data = self.selector_data(vs);
        let lookback = self.opts.lookback_delta_ms;
        let key = node_key(vs);
        let mut cursors = self.take_cursors(key, data.len());
        for (i, d) in data.iter().enumerate() {
            let hit = match cursors.as_mut() {
                Some(c) => d.at_cursor(rt, lookback, &mut c[i]),
                None => d.at(rt, lookback),
            };
            if let Some((ts, v)) = hit {
                f(d, ts, v);
            }
        }
        self.put_cursors(key, cursors);
    }

    /// The samples a range-vector expression (matrix selector or subquery, possibly in parentheses) covers at `t`.
    pub fn range_source(&self, e: &Expr, t: i64) -> Result<RangeSource<'_>, EvalError> {
        match e.unparen() {
            Expr::MatrixSelector {
                selector, range, ..
            } => {
                let maxt = self.selector_time(selector, t);
                Ok(RangeSource {
                    series: SeriesList::Borrowed(self.selector_data(selector)),
                    mint: maxt.saturating_sub(*range),
                    maxt,
                    range: *range,
                    cursor_key: Some(node_key(selector)),
                })
            }
            sq @ Expr::Subquery {
                expr,
                range,
                step,
                offset,
                at,
                ..
            } => {
                let maxt = self.ref_time(t, at.as_ref(), *offset);
                let mint = maxt.saturating_sub(*range);
                let step = step.unwrap_or(self.opts.default_subquery_step_ms);
                let key = node_key(sq);
                let series = self.eval_subquery(key, expr, mint, maxt, step)?;
                Ok(RangeSource {
                    series: SeriesList::Shared(series),
                    mint,
                    maxt,
                    range: *range,
                    cursor_key: Some(key),
                })
            }
            other => Err(EvalError::Type(format!(
                "expected range vector, got expression at {}..{}",
                other.span().start,
                other.span().end
            ))),
        }
    }

    /// Evaluates a subquery's inner expression at every multiple of `step` in `(mint, maxt]`
    /// and returns the series (points outside the window may be present; callers slice).
    fn eval_subquery(
        &self,
        key: usize,
        inner: &Expr,
        mint: i64,
        maxt: i64,
        step: i64,
    ) -> Result<Rc<Vec<SeriesData>>, EvalError> {
        if step <= 0 {
            return Err(EvalError::InvalidQuery(
                "zero or negative subquery step".to_string(),
            ));
        }
        let first = mint
            .div_euclid(step)
            .saturating_mul(step)
            .saturating_add(step);
        if first > maxt {
            return Ok(Rc::default());
        }
        let n = (i128::from(maxt) - i128::from(first)) / i128::from(step) + 1;
        if n > i128::from(MAX_STEPS) || n > self.opts.max_samples as i128 {
            return Err(EvalError::TooManySamples);
        }
        // Resume the held state when the window only moved forward; start afresh otherwise.
        let held = self.memo.borrow_mut().remove(&key);
        let mut st = match held {
            Some(st) if first >= st.earliest && st.last.is_none_or(|l| maxt >= l) => st,
            _ => {
                self.cursors.borrow_mut().remove(&key);
                SubqueryState {
                    earliest: first,
                    ..Default::default()
                }
            }
        };
        let mut ts = match st.last {
            Some(l) if l >= first => l.saturating_add(step),
            _ => first,
        };
        self.subquery_depth.set(self.subquery_depth.get() + 1);
        let res = self.extend_subquery(&mut st, inner, &mut ts, maxt, step);
        self.subquery_depth.set(self.subquery_depth.get() - 1);
        res?;
        if st.appended > n.min(i128::from(i64::MAX)) as i64 {
            self.compact_subquery(key, &mut st, mint, first);
        }
        let series = st.series.clone();
        self.memo.borrow_mut().insert(key, st);
        Ok(series)
    }

    /// Evaluates the inner expression at `ts, ts + step, ... <= maxt` and appends the results.
    fn extend_subquery(
        &self,
        st: &mut SubqueryState,
        inner: &Expr,
        ts: &mut i64,
        maxt: i64,
        step: i64,
    ) -> Result<(), EvalError> {
        while *ts <= maxt {
            let vec = self.eval_vector(inner, *ts)?;
            self.add_samples(vec.len())?;
            let series = Rc::make_mut(&mut st.series);
            for el in vec {
                let i = match st.index.get(&el.labels) {
                    Some(&i) => i,
                    None => {
                        series.push(SeriesData {
                            labels: el.labels.clone(),
                            ..Default::default()
                        });
                        st.index.insert(el.labels.clone(), series.len() - 1);
                        series.len() - 1
                    }
                };
                let d = &mut series[i];
                d.drop_name |= el.drop_name;
                match el.v {
                    SampleValue::Float(f) => d.floats.push((*ts, f)),
                    SampleValue::Str(s) => d.strings.push((*ts, s)),
                }
            }
            st.last = Some(*ts);
            st.appended += 1;
            match ts.checked_add(step) {
                Some(n) => *ts = n,
                None => break,
            }
        }
        Ok(())
    }

    /// Drops points no later window can contain, and series left empty.
    fn compact_subquery(&self, key: usize, st: &mut SubqueryState, mint: i64, first: i64) {
        let old = std::mem::take(Rc::make_mut(&mut st.series));
        let mut kept = Vec::with_capacity(old.len());
        st.index.clear();
        for mut d in old {
            let f = d.floats.partition_point(|p| p.0 <= mint);
            d.floats.drain(..f);
            let s = d.strings.partition_point(|p| p.0 <= mint);
            d.strings.drain(..s);
            if d.floats.is_empty() && d.strings.is_empty() {
                continue;
            }
            st.index.insert(d.labels.clone(), kept.len());
            kept.push(d);
        }
        st.series = Rc::new(kept);
        st.earliest = first;
        st.appended = 0;
        // Positions into the old arrays are meaningless now.
        self.cursors.borrow_mut().remove(&key);
    }
}

/// Computes, for every selector under `e` evaluated at times in `[lo, hi]`, the sample window to fetch.
fn plan<'e>(
    ctx: &Ctx<'_>,
    e: &'e Expr,
    lo: i64,
    hi: i64,
    out: &mut HashMap<usize, (&'e VectorSelector, i64, i64)>,
) {
    let mut add = |vs: &'e VectorSelector, before: i64| {
        let (rlo, rhi) = match ctx.at_time(vs.at.as_ref()) {
            Some(at) => (at.saturating_sub(vs.offset), at.saturating_sub(vs.offset)),
            None => (lo.saturating_sub(vs.offset), hi.saturating_sub(vs.offset)),
        };
        let mint = rlo.saturating_sub(before);
        let entry = out.entry(node_key(vs)).or_insert((vs, mint, rhi));
        entry.1 = entry.1.min(mint);
        entry.2 = entry.2.max(rhi);
    };
    match e {
        Expr::Number { .. } | Expr::String { .. } => {}
        Expr::VectorSelector(vs) => add(vs, ctx.opts.lookback_delta_ms),
        Expr::MatrixSelector {
            selector, range, ..
        } => add(selector, *range),
        Expr::Subquery {
            expr,
            range,
            offset,
            at,
            ..
        } => {
            let (rlo, rhi) = match ctx.at_time(at.as_ref()) {
                Some(a) => (a.saturating_sub(*offset), a.saturating_sub(*offset)),
                None => (lo.saturating_sub(*offset), hi.saturating_sub(*offset)),
            };
            plan(ctx, expr, rlo.saturating_sub(*range), rhi, out);
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => plan(ctx, expr, lo, hi, out),
        Expr::Binary { lhs, rhs, .. } => {
            plan(ctx, lhs, lo, hi, out);
            plan(ctx, rhs, lo, hi, out);
        }
        Expr::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                plan(ctx, p, lo, hi, out);
            }
            plan(ctx, expr, lo, hi, out);
        }
        Expr::Call { args, .. } => args.iter().for_each(|a| plan(ctx, a, lo, hi, out)),
    }
}

/// Whether the result depends on the order of input series (ties in `topk`, `sort`...): then
/// series are ordered by labels, as Prometheus' storage returns them.
fn order_sensitive(e: &Expr) -> bool {
    match e {
        Expr::Number { .. }
        | Expr::String { .. }
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector { .. } => false,
        Expr::Subquery { expr, .. } | Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => {
            order_sensitive(expr)
        }
        Expr::Binary { lhs, rhs, .. } => order_sensitive(lhs) || order_sensitive(rhs),
        Expr::Aggregate {
            op, expr, param, ..
        } => {
            matches!(
                op,
                AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio
            ) || order_sensitive(expr)
                || param.as_deref().is_some_and(order_sensitive)
        }
        Expr::Call { func, args, .. } => {
            func.starts_with("sort") || args.iter().any(order_sensitive)
        }
    }
}

/// Fetches every selector's samples once.
fn fetch(ctx: &mut Ctx<'_>, src: &dyn SeriesSource, expr: &Expr) {
    let mut windows = HashMap::new();
    plan(ctx, expr, ctx.start, ctx.end, &mut windows);
    let sort = order_sensitive(expr);
    for (key, (vs, mint, maxt)) in windows {
        let series = src.select(&vs.matchers, mint, maxt);
        let mut data: Vec<SeriesData> = series.into_iter().map(SeriesData::from_samples).collect();
        if sort {
            data.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        ctx.data.insert(key, data);
    }
}

/// Applies delayed name removal to a result vector and rejects duplicate label sets.
/// Without delayed removal names were dropped along the way, so collisions are possible anywhere.
fn finish_vector(elems: Vec<Elem>, delayed: bool) -> Result<Vec<(Labels, SampleValue)>, EvalError> {
    let any_drop = !delayed || elems.iter().any(|e| e.drop_name);
    let out: Vec<(Labels, SampleValue)> = elems
        .into_iter()
        .map(|e| {
            let labels = if e.drop_name {
                drop_metadata(&e.labels)
            } else {
                Arc::try_unwrap(e.labels).unwrap_or_else(|a| (*a).clone())
            };
            (labels, e.v)
        })
        .collect();
    if any_drop {
        let mut seen = ahash::AHashSet::with_capacity(out.len());
        for (l, _) in &out {
            if !seen.insert(l) {
                return Err(EvalError::DuplicateLabelset);
            }
        }
    }
    Ok(out)
}

fn outcome(ctx: &Ctx<'_>, value: Value, text: Option<&str>) -> Outcome {
    let (warnings, infos) = ctx.annos.borrow().render(text);
    Outcome {
        value,
        warnings,
        infos,
    }
}

/// Runs an instant query.
pub(crate) fn run_instant(
    opts: &EngineOptions,
    src: &dyn SeriesSource,
    expr: &Expr,
    t: i64,
    text: Option<&str>,
) -> Result<Outcome, EvalError> {
    let mut ctx = Ctx::new(opts, t, t, 0, false);
    fetch(&mut ctx, src, expr);
    let value = match ctx.eval(expr, t)? {
        Val::Scalar(f) => Value::Scalar(f),
        Val::Str(s) => Value::String(s),
        Val::Vector(v) => Value::Vector(
            finish_vector(v, opts.delayed_name_removal)?
                .into_iter()
                .map(|(labels, value)| Sample { labels, t, value })
                .collect(),
        ),
        Val::Matrix(m) => {
            let mut out: Vec<Series> = Vec::with_capacity(m.len());
            let mut seen = ahash::AHashSet::new();
            for d in m {
                let labels = if d.drop_name {
                    drop_metadata(&d.labels)
                } else {
                    (*d.labels).clone()
                };
                if !seen.insert(labels.clone()) {
                    return Err(EvalError::DuplicateLabelset);
                }
                let mut points: Vec<(i64, SampleValue)> = d
                    .floats
                    .into_iter()
                    .map(|(t, f)| (t, SampleValue::Float(f)))
                    .collect();
                if !d.strings.is_empty() {
                    points.extend(d.strings.into_iter().map(|(t, s)| (t, SampleValue::Str(s))));
                    points.sort_by_key(|p| p.0);
                }
                out.push(Series { labels, points });
            }
            Value::Matrix(out)
        }
    };
    Ok(outcome(&ctx, value, text))
}

/// Runs a range query.
pub(crate) fn run_range(
    opts: &EngineOptions,
    src: &dyn SeriesSource,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    text: Option<&str>,
) -> Result<Outcome, EvalError> {
    if step <= 0 {
        return Err(EvalError::InvalidQuery(
            "zero or negative query resolution step widths are not accepted. Try a positive integer".to_string(),
        ));
    }
    if end < start {
        return Err(EvalError::InvalidQuery(
            "end timestamp must not be before start time".to_string(),
        ));
    }
    let n_steps = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
    if n_steps > i128::from(MAX_STEPS) {
        return Err(EvalError::TooManySamples);
    }
    let mut ctx = Ctx::new(opts, start, end, step, true);
    fetch(&mut ctx, src, expr);

    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut series: Vec<(Labels, Vec<(i64, SampleValue)>)> = Vec::new();
    let mut total_points = 0usize;
    let mut t = start;
    loop {
        ctx.samples.set(0);
        let elems: Vec<(Labels, SampleValue)> = match ctx.eval(expr, t)? {
            Val::Scalar(f) => vec![(Labels::empty(), SampleValue::Float(f))],
            Val::Vector(v) => finish_vector(v, opts.delayed_name_removal)?,
            other => {
                return Err(EvalError::Type(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    match other {
                        Val::Str(_) => "string",
                        _ => "range vector",
                    }
                )));
            }
        };
        total_points += elems.len();
        if total_points > opts.max_samples {
            return Err(EvalError::TooManySamples);
        }
        for (labels, v) in elems {
            match index.get(&labels) {
                Some(&i) => {
                    let pts = &mut series[i].1;
                    if pts.last().is_some_and(|p| p.0 == t) {
                        return Err(EvalError::DuplicateLabelset);
                    }
                    pts.push((t, v));
                }
                None => {
                    index.insert(labels.clone(), series.len());
                    series.push((labels, vec![(t, v)]));
                }
            }
        }
        match t.checked_add(step) {
            Some(n) if n <= end => t = n,
            _ => break,
        }
    }
    let mut out: Vec<Series> = series
        .into_iter()
        .map(|(labels, points)| Series { labels, points })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(outcome(&ctx, Value::Matrix(out), text))
}
