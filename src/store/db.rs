//! `Store`: the sharded, concurrent in-memory series store and its public API.
//!
//! Layout: series are spread over `StoreOptions::shards` shards by a hash of their label set. A shard holds a
//! slab of series slots (pages of 256, so growth never copies live series), a hash table from label set to slot,
//! a reference-counted symbol table of every label name/value and string sample in the shard, and an inverted
//! index (name → value → sorted slot list). A slot stores its labels as varint-coded symbol ids and its samples
//! in one byte buffer of compressed chunks (`chunk.rs`), behind its own mutex.
//!
//! Locking: float appends to an existing series take the shard's read lock and the series' mutex, so they run
//! in parallel with each other and with readers. Creating or deleting a series and appending a string sample
//! (which interns the string) take the shard's write lock. Readers take a shard's read lock, resolve matchers to
//! slots, copy out decoded samples series by series, and yield the lock to waiting writers every 256 series.
//! Lock order is always shard, then series; no thread holds two shards.
//!
//! Measured (100k series x 240 samples at 15 s, realistic labels and noisy counters, see
//! `examples/store_memory.rs`): about 660 bytes/series by `memory_bytes()`, about 810 bytes/series of RSS.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{MutexGuard, RwLock, RwLockReadGuard};

use super::SeriesSamples;
use super::SeriesSource;
use super::series::{Rejected, SeriesData, Val};
use super::shard::{Selector, Shard, Slot, hash_labels};
use crate::model::{Labels, Matcher, SampleValue, Timestamp};

/// How many series a reader handles before briefly yielding its shard lock to a waiting writer.
const YIELD_EVERY: usize = 256;

/// Tuning knobs; `Default` suits an alerting window of one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// `gc(now)` drops samples older than `now - retention_ms`; `<= 0` keeps samples forever.
    pub retention_ms: i64,
    /// Float samples per compressed chunk before it is sealed (Prometheus uses 120).
    pub samples_per_chunk: u16,
    /// Number of lock shards, rounded up to a power of two. Float appends take only a shard read lock plus the
    /// series' own mutex, so shards mainly spread series creation; each select visits every shard once.
    pub shards: usize,
    /// Refuse to create series beyond this many (cardinality guard); 0 = unlimited.
    pub max_series: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention_ms: 60 * 60 * 1000,
            samples_per_chunk: 120,
            shards: 16,
            max_series: 0,
        }
    }
}

/// A sample that was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored as the series' new newest sample.
    Stored,
    /// Same timestamp and bit-identical value (same string) as the newest sample: accepted, nothing stored.
    Duplicate,
}

/// A sample that was not stored; the caller counts these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The timestamp is not after the series' newest sample (an equal timestamp with a different value counts).
    #[error(
        "out-of-order sample: timestamp {t} is not after the series' newest sample at {newest}"
    )]
    OutOfOrder {
        /// The rejected sample's timestamp.
        t: Timestamp,
        /// The series' newest stored timestamp.
        newest: Timestamp,
    },
    /// The label set cannot name a series (empty set, empty name or empty value).
    #[error("invalid label set: {0}")]
    InvalidLabels(&'static str),
    /// Creating the series would exceed `StoreOptions::max_series` (or the slot space of a shard).
    #[error("series limit reached ({limit} series)")]
    SeriesLimit {
        /// The configured limit.
        limit: usize,
    },
    /// A `SeriesRef` whose series has since been deleted (GC or `clear`); resolve the labels again.
    #[error("stale series reference: the series was removed")]
    UnknownSeries,
}

/// Counts from `append_batch`, for ingest self-metrics and the HTTP response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Samples stored.
    pub stored: usize,
    /// Exact duplicates of a series' newest sample (accepted, not stored).
    pub duplicates: usize,
    /// Samples at or before their series' newest timestamp.
    pub dropped_out_of_order: usize,
    /// Samples whose label set is invalid.
    pub dropped_invalid: usize,
    /// Samples of new series refused by the series limit.
    pub dropped_series_limit: usize,
}

impl BatchOutcome {
    fn count(&mut self, r: &Result<Appended, AppendError>) {
        match r {
            Ok(Appended::Stored) => self.stored += 1,
            Ok(Appended::Duplicate) => self.duplicates += 1,
            Err(AppendError::OutOfOrder { .. }) => self.dropped_out_of_order += 1,
            Err(AppendError::InvalidLabels(_)) | Err(AppendError::UnknownSeries) => {
                self.dropped_invalid += 1
            }
            Err(AppendError::SeriesLimit { .. }) => self.dropped_series_limit += 1,
        }
    }
}

/// What one `gc` pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcOutcome {
    /// Samples dropped (whole chunks: a chunk straddling the cutoff is kept until all of it is old).
    pub samples_removed: usize,
    /// Series deleted because no sample was left.
    pub series_removed: usize,
}

/// A resolved series, so hot ingest paths skip hashing and label comparison; checked on use, never dangling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef {
    shard: u32,
    slot: u32,
    generation: u32,
}

/// The in-memory series store: sharded by label-set hash, labels interned per shard, compressed chunks.
///
/// `select` returns series in no particular order (shard, then slot order); `series` and the label APIs sort.
///
/// Ordering rule: each series only grows forward in time. An append at or before the newest timestamp is an
/// `AppendError::OutOfOrder`, except a bit-identical repeat of the newest sample, which is `Appended::Duplicate`
/// (scrapers and remote-write retries resend samples; treating the exact repeat as success keeps those quiet).
#[derive(Debug)]
pub struct Store {
    shards: Box<[RwLock<Shard>]>,
    mask: usize,
    opts: StoreOptions,
    series: AtomicUsize,
}

impl Default for Store {
    /// A store with `StoreOptions::default()`.
    fn default() -> Self {
        Store::new(StoreOptions::default())
    }
}

/// The label-set hash used for shard choice and the per-shard series table.
#[inline]
fn labels_hash(labels: &Labels) -> u64 {
    hash_labels(labels.iter().map(|l| (&*l.name, &*l.value)))
}

fn validate(labels: &Labels) -> Result<(), AppendError> {
    if labels.is_empty() {
        return Err(AppendError::InvalidLabels("no labels"));
    }
    for l in labels {
        if l.name.is_empty() {
            return Err(AppendError::InvalidLabels("empty label name"));
        }
        if l.value.is_empty() {
            return Err(AppendError::InvalidLabels("empty label value"));
        }
    }
    Ok(())
}

fn map_rejected(t: Timestamp, r: Rejected) -> Result<Appended, AppendError> {
    match r {
        Rejected::Duplicate => Ok(Appended::Duplicate),
        Rejected::OutOfOrder { newest } => Err(AppendError::OutOfOrder { t, newest }),
    }
}

impl Store {
    /// Builds an empty store; options are clamped to sane values (at least one shard and one sample per chunk).
    pub fn new(opts: StoreOptions) -> Self {
        let n = opts.shards.clamp(1, 1 << 16).next_power_of_two();
        let opts = StoreOptions {
            shards: n,
            samples_per_chunk: opts.samples_per_chunk.max(1),
            ..opts
        };
        Store {
            shards: (0..n).map(|_| RwLock::new(Shard::default())).collect(),
            mask: n - 1,
            opts,
            series: AtomicUsize::new(0),
        }
    }

    /// The options in force (after clamping), so callers can report retention.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    #[inline]
    fn shard_of(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask
    }

    /// Creates `labels`' series in a write-locked shard, enforcing the series limit.
    fn create(&self, shard: &mut Shard, hash: u64, labels: &Labels) -> Result<u32, AppendError> {
        let limit = self.opts.max_series;
        if limit > 0 && self.series.load(Ordering::Relaxed) >= limit {
            return Err(AppendError::SeriesLimit { limit });
        }
        let id = shard.create(hash, labels).ok_or(AppendError::SeriesLimit {
            limit: u32::MAX as usize,
        })?;
        self.series.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// Resolves (creating if needed) the series of `labels`, so repeated appends can skip hashing via `append_ref`.
    pub fn get_or_create(&self, labels: &Labels) -> Result<SeriesRef, AppendError> {
        validate(labels)?;
        let hash = labels_hash(labels);
        let si = self.shard_of(hash);
        let lock = &self.shards[si];
        let reference = |shard: &Shard, slot: u32| SeriesRef {
            shard: si as u32,
            slot,
            generation: shard.slot(slot).map_or(0, |s| s.generation),
        };
        {
            let g = lock.read();
            if let Some(slot) = g.find(hash, labels) {
                return Ok(reference(&g, slot));
            }
        }
        let mut g = lock.write();
        let slot = match g.find(hash, labels) {
            Some(s) => s,
            None => self.create(&mut g, hash, labels)?,
        };
        Ok(reference(&g, slot))
    }

    /// Appends one sample to a resolved series: the ingest hot path (no hashing, no label comparison).
    pub fn append_ref(
        &self,
        r: SeriesRef,
        t: Timestamp,
        v: SampleValue,
    ) -> Result<Appended, AppendError> {
        let lock = self
            .shards
            .get(r.shard as usize)
            .ok_or(AppendError::UnknownSeries)?;
        match v {
            SampleValue::Float(f) => {
                let g = lock.read();
                let slot = g
                    .slot(r.slot)
                    .filter(|s| s.is_live() && s.generation == r.generation);
                let slot = slot.ok_or(AppendError::UnknownSeries)?;
                self.append_float(slot.data.lock(), t, f)
            }
            SampleValue::Str(s) => {
                let mut g = lock.write();
                let ok = g
                    .slot(r.slot)
                    .is_some_and(|s| s.is_live() && s.generation == r.generation);
                if !ok {
                    return Err(AppendError::UnknownSeries);
                }
                self.append_str(&mut g, r.slot, t, &s)
            }
        }
    }

    fn append_float(
        &self,
        mut data: MutexGuard<'_, SeriesData>,
        t: Timestamp,
        f: f64,
    ) -> Result<Appended, AppendError> {
        match data.check(t, &Val::Float(f)) {
            Ok(()) => {
                data.push_float(t, f, self.opts.samples_per_chunk);
                Ok(Appended::Stored)
            }
            Err(r) => map_rejected(t, r),
        }
    }

    fn append_str(
        &self,
        shard: &mut Shard,
        slot: u32,
        t: Timestamp,
        s: &Arc<str>,
    ) -> Result<Appended, AppendError> {
        let Some((data, interner)) = shard.data_and_interner(slot) else {
            return Err(AppendError::UnknownSeries);
        };
        let id = interner.intern(s, Some(s));
        match data.check(t, &Val::Str(id)) {
            Ok(()) => {
                data.push_str(t, id);
                Ok(Appended::Stored)
            }
            Err(r) => {
                interner.release(id);
                map_rejected(t, r)
            }
        }
    }

    /// Appends one sample, creating the series on first sight; the simple write path (tests, rule results).
    pub fn append(
        &self,
        labels: &Labels,
        t: Timestamp,
        v: SampleValue,
    ) -> Result<Appended, AppendError> {
        validate(labels)?;
        let hash = labels_hash(labels);
        let lock = &self.shards[self.shard_of(hash)];
        if let SampleValue::Float(f) = v {
            let g = lock.read();
            if let Some(slot) = g.find(hash, labels).and_then(|id| g.slot(id)) {
                return self.append_float(slot.data.lock(), t, f);
            }
        }
        let mut g = lock.write();
        let slot = match g.find(hash, labels) {
            Some(s) => s,
            None => self.create(&mut g, hash, labels)?,
        };
        match v {
            SampleValue::Float(f) => match g.slot(slot) {
                Some(s) => self.append_float(s.data.lock(), t, f),
                None => Err(AppendError::UnknownSeries),
            },
            SampleValue::Str(s) => self.append_str(&mut g, slot, t, &s),
        }
    }

    /// Appends many samples, taking each shard's lock once per batch instead of once per sample (ingest).
    pub fn append_batch(&self, batch: &[(Labels, Timestamp, SampleValue)]) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        // (shard, hash, index) sorted by shard, stable so each series keeps its samples' order.
        let mut order: Vec<(usize, u64, usize)> = Vec::with_capacity(batch.len());
        for (i, (labels, _, _)) in batch.iter().enumerate() {
            if let Err(e) = validate(labels) {
                out.count(&Err(e));
                continue;
            }
            let hash = labels_hash(labels);
            order.push((self.shard_of(hash), hash, i));
        }
        order.sort_by_key(|o| o.0);
        let mut pending: Vec<(u64, usize)> = Vec::new();
        for group in order.chunk_by(|a, b| a.0 == b.0) {
            let Some(lock) = group.first().and_then(|g| self.shards.get(g.0)) else {
                continue;
            };
            pending.clear();
            {
                let g = lock.read();
                for &(_, hash, i) in group {
                    let (labels, t, v) = &batch[i];
                    // Once one sample of a series goes to the write phase, all its later ones must too.
                    let slot = match v {
                        SampleValue::Float(f)
                            if pending.is_empty() || !pending.iter().any(|p| p.0 == hash) =>
                        {
                            g.find(hash, labels)
                                .and_then(|id| g.slot(id))
                                .map(|s| (s, *f))
                        }
                        _ => None,
                    };
                    match slot {
                        Some((s, f)) => out.count(&self.append_float(s.data.lock(), *t, f)),
                        None => pending.push((hash, i)),
                    }
                }
            }
            if pending.is_empty() {
                continue;
            }
            let mut g = lock.write();
            for &(hash, i) in &pending {
                let (labels, t, v) = &batch[i];
                let slot = match g.find(hash, labels) {
                    Some(s) => Ok(s),
                    None => self.create(&mut g, hash, labels),
                };
                let r = slot.and_then(|slot| match v {
                    SampleValue::Float(f) => match g.slot(slot) {
                        Some(s) => self.append_float(s.data.lock(), *t, *f),
                        None => Err(AppendError::UnknownSeries),
                    },
                    SampleValue::Str(s) => self.append_str(&mut g, slot, *t, s),
                });
                out.count(&r);
            }
        }
        out
    }

    /// Runs `f` on every live series of every shard matching `matchers`, under a read lock yielded periodically.
    fn for_each_match(&self, matchers: &[Matcher], mut f: impl FnMut(&Shard, &Slot)) {
        let selector = Selector::new(matchers);
        for lock in self.shards.iter() {
            let mut g = lock.read();
            if g.live() == 0 {
                continue;
            }
            let slots: Vec<(u32, u32)> = g
                .select_slots(&selector)
                .into_iter()
                .filter_map(|id| g.slot(id).map(|s| (id, s.generation)))
                .collect();
            for (n, &(id, generation)) in slots.iter().enumerate() {
                if n > 0 && n % YIELD_EVERY == 0 {
                    RwLockReadGuard::bump(&mut g);
                }
                if let Some(s) = g
                    .slot(id)
                    .filter(|s| s.is_live() && s.generation == generation)
                {
                    f(&g, s);
                }
            }
        }
    }

    /// Label sets of the series matching `matchers` with a sample in `[mint, maxt]`, sorted (the series API).
    pub fn series(&self, matchers: &[Matcher], mint: Timestamp, maxt: Timestamp) -> Vec<Labels> {
        let mut out = Vec::new();
        if mint > maxt {
            return out;
        }
        self.for_each_match(matchers, |shard, s| {
            if s.data.lock().has_sample_in(mint, maxt) {
                out.push(shard.labels(s));
            }
        });
        out.sort();
        out
    }

    /// Sorted label names used by matching series with a sample in the window (the label-names API).
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Vec<String> {
        let mut names = BTreeSet::new();
        if mint > maxt {
            return Vec::new();
        }
        if matchers.is_empty() && mint == Timestamp::MIN && maxt == Timestamp::MAX {
            for lock in self.shards.iter() {
                let g = lock.read();
                names.extend(g.name_ids().map(|id| g.interner.text(id).to_string()));
            }
        } else {
            self.for_each_match(matchers, |shard, s| {
                if s.data.lock().has_sample_in(mint, maxt) {
                    for (n, _) in s.pairs() {
                        let n = shard.interner.text(n);
                        if !names.contains(n) {
                            names.insert(n.to_string());
                        }
                    }
                }
            });
        }
        names.into_iter().collect()
    }

    /// Sorted values of label `name` among matching series with a sample in the window (the label-values API).
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Vec<String> {
        let mut values = BTreeSet::new();
        if mint > maxt {
            return Vec::new();
        }
        if matchers.is_empty() && mint == Timestamp::MIN && maxt == Timestamp::MAX {
            for lock in self.shards.iter() {
                let g = lock.read();
                values.extend(
                    g.value_ids(name)
                        .into_iter()
                        .map(|id| g.interner.text(id).to_string()),
                );
            }
        } else {
            self.for_each_match(matchers, |shard, s| {
                let Some(name_id) = shard.interner.lookup(name) else {
                    return;
                };
                let Some(v) = s.pairs().find(|p| p.0 == name_id).map(|p| p.1) else {
                    return;
                };
                if s.data.lock().has_sample_in(mint, maxt) {
                    let v = shard.interner.text(v);
                    if !values.contains(v) {
                        values.insert(v.to_string());
                    }
                }
            });
        }
        values.into_iter().collect()
    }

    /// Number of live series (self-metrics, cardinality limits).
    pub fn series_count(&self) -> usize {
        self.shards.iter().map(|s| s.read().live()).sum()
    }

    /// Number of stored samples, counted on demand (self-metrics; no cost on the append path).
    pub fn sample_count(&self) -> usize {
        let mut n = 0;
        self.for_each_match(&[], |_, s| n += s.data.lock().sample_count());
        n
    }

    /// Drops every series and sample (the test-script runner's `clear`); outstanding `SeriesRef`s become stale.
    pub fn clear(&self) {
        for lock in self.shards.iter() {
            let mut g = lock.write();
            let removed = g.live();
            *g = Shard::with_generation(g.next_generation());
            self.series.fetch_sub(removed, Ordering::Relaxed);
        }
    }

    /// Applies retention at `now`: drops chunks whose newest sample is older than `now - retention_ms`, string
    /// samples older than that, then deletes series left empty together with their postings and any interned
    /// strings nothing references any more. Runs mostly under read locks; writes lock each shard only to delete.
    pub fn gc(&self, now: Timestamp) -> GcOutcome {
        let cutoff = if self.opts.retention_ms > 0 {
            now.saturating_sub(self.opts.retention_ms)
        } else {
            Timestamp::MIN
        };
        let mut out = GcOutcome::default();
        let mut released = Vec::new();
        let mut empty = Vec::new();
        for lock in self.shards.iter() {
            released.clear();
            empty.clear();
            {
                let mut g = lock.read();
                let slots = g.live_slots();
                for (n, id) in slots.into_iter().enumerate() {
                    if n > 0 && n % YIELD_EVERY == 0 {
                        RwLockReadGuard::bump(&mut g);
                    }
                    let Some(s) = g.slot(id).filter(|s| s.is_live()) else {
                        continue;
                    };
                    let mut d = s.data.lock();
                    out.samples_removed += d.gc(cutoff, &mut released);
                    if d.is_empty() {
                        empty.push((id, s.generation));
                    }
                }
            }
            if released.is_empty() && empty.is_empty() {
                continue;
            }
            let mut g = lock.write();
            for &id in &released {
                g.interner.release(id);
            }
            for &(id, generation) in &empty {
                // Re-check: an append may have landed between the passes.
                let still_empty = g.slot(id).is_some_and(|s| {
                    s.is_live() && s.generation == generation && s.data.lock().is_empty()
                });
                if still_empty {
                    g.remove(id);
                    self.series.fetch_sub(1, Ordering::Relaxed);
                    out.series_removed += 1;
                }
            }
        }
        out
    }

    /// Approximate heap bytes of chunks, labels, symbol tables and indexes (self-metrics; excludes allocator slack).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Store>()
            + self.shards.len() * std::mem::size_of::<RwLock<Shard>>()
            + self
                .shards
                .iter()
                .map(|s| s.read().heap_bytes())
                .sum::<usize>()
    }
}

impl SeriesSource for Store {
    /// Matching series with samples in `[mint, maxt]`, in no particular order; only overlapping chunks are decoded.
    fn select(&self, matchers: &[Matcher], mint: Timestamp, maxt: Timestamp) -> Vec<SeriesSamples> {
        let mut out = Vec::new();
        if mint > maxt {
            return out;
        }
        self.for_each_match(matchers, |shard, s| {
            let data = s.data.lock();
            let estimate = data.estimate(mint, maxt);
            if estimate == 0 {
                return;
            }
            let mut samples = Vec::with_capacity(estimate);
            data.read(mint, maxt, &shard.interner, &mut samples);
            drop(data);
            if !samples.is_empty() {
                out.push(SeriesSamples {
                    labels: shard.labels(s),
                    samples,
                });
            }
        });
        out
    }
}
