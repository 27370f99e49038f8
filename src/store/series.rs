//! The samples of one series: sealed float chunks, the open head chunk, and a (rare) side list of string
//! samples, with the ordering rule and window reads.

use std::sync::Arc;

use super::chunk::{ChunkIter, HeadState, SealedChunk, sealed_chunks};
use super::intern::Interner;
use crate::model::{SampleValue, Timestamp};

/// Why an append did not store a sample (the caller maps it to the public error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Same timestamp and same value as the newest sample: nothing to do.
    Duplicate,
    /// At or before the newest sample with a different value.
    OutOfOrder { newest: Timestamp },
}

/// A value to append, with strings already interned in the shard.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val {
    /// A float (bit-exact, stale markers included).
    Float(f64),
    /// An interned string id (the caller holds one reference for this sample).
    Str(u32),
}

/// A series' string samples, oldest first.
#[derive(Debug, Default)]
struct StrSamples(Vec<(Timestamp, u32)>);

impl std::ops::Deref for StrSamples {
    type Target = Vec<(Timestamp, u32)>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for StrSamples {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Time-ordered samples of one series.
///
/// `buf` holds the sealed chunks (each behind a varint header) followed by the open head chunk's bits, so a
/// float series costs one heap allocation however many chunks it has.
#[derive(Debug, Default)]
pub(crate) struct SeriesData {
    buf: Vec<u8>,
    head: HeadState,
    /// String samples as (timestamp, interned id); boxed so float-only series pay one pointer.
    strings: Option<Box<StrSamples>>,
}

impl SeriesData {
    /// An empty series.
    pub(crate) fn new() -> Self {
        SeriesData::default()
    }

    fn sealed(&self) -> impl Iterator<Item = SealedChunk<'_>> + '_ {
        sealed_chunks(self.buf.get(..self.head.start()).unwrap_or(&[]))
    }

    fn head_iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(
            self.buf.get(self.head.start()..).unwrap_or(&[]),
            self.head.mint(),
            self.head.len(),
        )
    }

    /// Whether no sample is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.head.is_empty() && self.strings.is_none()
    }

    /// Newest stored timestamp. Sealing happens just before an append, so a non-empty series always has a
    /// non-empty head unless GC dropped it, and GC drops the head only together with every older chunk.
    fn newest(&self) -> Option<Timestamp> {
        let f = (!self.head.is_empty()).then(|| self.head.maxt());
        let s = self.strings.as_ref().and_then(|s| s.last()).map(|p| p.0);
        f.max(s)
    }

    /// Number of stored samples.
    pub(crate) fn sample_count(&self) -> usize {
        self.sealed().map(|c| usize::from(c.count)).sum::<usize>()
            + usize::from(self.head.len())
            + self.strings.as_ref().map_or(0, |s| s.len())
    }

    /// Checks the ordering rule for a sample at `t` with value `v`; `Ok` means it may be stored.
    pub(crate) fn check(&self, t: Timestamp, v: &Val) -> Result<(), Rejected> {
        let Some(newest) = self.newest() else {
            return Ok(());
        };
        if t > newest {
            return Ok(());
        }
        if t == newest {
            let same = match v {
                Val::Float(f) => {
                    !self.head.is_empty()
                        && self.head.maxt() == t
                        && self.head.last_value_bits() == f.to_bits()
                }
                // Ids are unique per string within a shard, so equal ids mean equal strings.
                Val::Str(id) => self
                    .strings
                    .as_ref()
                    .and_then(|s| s.last())
                    .is_some_and(|&(lt, lid)| lt == t && lid == *id),
            };
            if same {
                return Err(Rejected::Duplicate);
            }
        }
        Err(Rejected::OutOfOrder { newest })
    }

    /// Appends a float after `check` passed; seals the head first when it holds `per_chunk` samples.
    pub(crate) fn push_float(&mut self, t: Timestamp, v: f64, per_chunk: u16) {
        if self.head.len() >= per_chunk.max(1) {
            self.head.seal(&mut self.buf);
        }
        self.head.append(&mut self.buf, t, v);
    }

    /// Appends a string sample after `check` passed (the id's reference moves into the series).
    pub(crate) fn push_str(&mut self, t: Timestamp, id: u32) {
        let s = self.strings.get_or_insert_with(Default::default);
        if s.len() == s.capacity() {
            let extra = (s.len() / 2).max(2);
            s.reserve_exact(extra);
        }
        s.push((t, id));
    }

    /// Oldest stored timestamp, if any.
    pub(crate) fn oldest(&self) -> Option<Timestamp> {
        let f = self
            .sealed()
            .next()
            .map(|c| c.mint)
            .or((!self.head.is_empty()).then(|| self.head.mint()));
        let s = self.strings.as_ref().and_then(|s| s.first()).map(|p| p.0);
        match (f, s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether any sample lies in `[mint, maxt]`, decoding only if chunk bounds cannot tell.
    pub(crate) fn has_sample_in(&self, mint: Timestamp, maxt: Timestamp) -> bool {
        if self.newest().is_none_or(|n| n < mint) || self.oldest().is_none_or(|o| o > maxt) {
            return false;
        }
        let in_w = |t: Timestamp| t >= mint && t <= maxt;
        let chunk_hit = |cmin: Timestamp, cmax: Timestamp, iter: ChunkIter<'_>| {
            if cmax < mint || cmin > maxt {
                false
            } else if in_w(cmin) || in_w(cmax) {
                true
            } else {
                iter.map(|s| s.0)
                    .find(|&t| t >= mint)
                    .is_some_and(|t| t <= maxt)
            }
        };
        if self.sealed().any(|c| chunk_hit(c.mint, c.maxt, c.iter())) {
            return true;
        }
        if !self.head.is_empty() && chunk_hit(self.head.mint(), self.head.maxt(), self.head_iter())
        {
            return true;
        }
        self.strings.as_ref().is_some_and(|s| {
            let i = s.partition_point(|p| p.0 < mint);
            s.get(i).is_some_and(|p| p.0 <= maxt)
        })
    }

    /// Estimated number of samples in `[mint, maxt]` from chunk bounds, assuming even spacing inside a chunk;
    /// readers size their output with it so the decoded samples are written once, not copied.
    pub(crate) fn estimate(&self, mint: Timestamp, maxt: Timestamp) -> usize {
        let part = |cmin: Timestamp, cmax: Timestamp, count: u16| -> usize {
            if cmax < mint || cmin > maxt || count == 0 {
                return 0;
            }
            let count = usize::from(count);
            let span = cmax.saturating_sub(cmin);
            if span <= 0 || (cmin >= mint && cmax <= maxt) {
                return count;
            }
            let covered = cmax.min(maxt).saturating_sub(cmin.max(mint));
            let frac = covered as f64 / span as f64;
            ((frac * (count - 1) as f64).ceil() as usize + 1).min(count)
        };
        let mut n: usize = self.sealed().map(|c| part(c.mint, c.maxt, c.count)).sum();
        if !self.head.is_empty() {
            n += part(self.head.mint(), self.head.maxt(), self.head.len());
        }
        if let Some(s) = &self.strings {
            let lo = s.partition_point(|p| p.0 < mint);
            let hi = s.partition_point(|p| p.0 <= maxt);
            n += hi.saturating_sub(lo);
        }
        n
    }

    /// Appends the samples in `[mint, maxt]` to `out`, time-ordered, decoding only overlapping chunks.
    pub(crate) fn read(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        interner: &Interner,
        out: &mut Vec<(Timestamp, SampleValue)>,
    ) {
        let start = out.len();
        for c in self.sealed() {
            if c.mint > maxt {
                break;
            }
            if c.maxt >= mint {
                push_window(c.iter(), mint, maxt, out);
            }
        }
        if !self.head.is_empty() && self.head.maxt() >= mint && self.head.mint() <= maxt {
            push_window(self.head_iter(), mint, maxt, out);
        }
        if let Some(s) = &self.strings {
            let i = s.partition_point(|p| p.0 < mint);
            let before = out.len();
            for &(t, id) in s[i..].iter().take_while(|p| p.0 <= maxt) {
                let v = interner
                    .resolve(id)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(""));
                out.push((t, SampleValue::Str(v)));
            }
            if out.len() > before && before > start {
                // Timestamps are unique per series, so a sort by time merges the two runs exactly.
                out[start..].sort_by_key(|p| p.0);
            }
        }
    }

    /// Drops float chunks whose newest sample is older than `cutoff` and string samples older than it; string
    /// ids whose reference is dropped are pushed to `released`. Returns the number of samples removed.
    pub(crate) fn gc(&mut self, cutoff: Timestamp, released: &mut Vec<u32>) -> usize {
        let mut removed = 0;
        if !self.head.is_empty() && self.head.maxt() < cutoff {
            // The head is the newest chunk: everything goes.
            removed += self.sample_count() - self.strings.as_ref().map_or(0, |s| s.len());
            self.buf = Vec::new();
            self.head.reset();
            self.head.shift_start(usize::MAX);
        } else {
            let mut cut = 0;
            for c in self.sealed().take_while(|c| c.maxt < cutoff) {
                removed += usize::from(c.count);
                cut = c.end;
            }
            if cut > 0 {
                self.buf.drain(..cut);
                self.head.shift_start(cut);
                if self.buf.capacity() > self.buf.len() + self.buf.len() / 4 + 16 {
                    self.buf.shrink_to(self.buf.len() + self.buf.len() / 8);
                }
            }
        }
        if let Some(s) = &mut self.strings {
            let n = s.partition_point(|p| p.0 < cutoff);
            if n > 0 {
                released.extend(s.drain(..n).map(|p| p.1));
                removed += n;
                if s.is_empty() {
                    self.strings = None;
                } else {
                    s.shrink_to_fit();
                }
            }
        }
        removed
    }

    /// String ids this series references (for release on deletion).
    pub(crate) fn string_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.strings.iter().flat_map(|s| s.iter().map(|p| p.1))
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.buf.capacity()
            + self.strings.as_ref().map_or(0, |s| {
                std::mem::size_of::<StrSamples>()
                    + s.capacity() * std::mem::size_of::<(Timestamp, u32)>()
            })
    }
}

fn push_window(
    iter: impl Iterator<Item = (i64, f64)>,
    mint: Timestamp,
    maxt: Timestamp,
    out: &mut Vec<(Timestamp, SampleValue)>,
) {
    for (t, v) in iter {
        if t > maxt {
            break;
        }
        if t >= mint {
            out.push((t, SampleValue::Float(v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(s: &SeriesData, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
        let i = Interner::default();
        let mut out = Vec::new();
        s.read(mint, maxt, &i, &mut out);
        out.into_iter()
            .map(|(t, v)| match v {
                SampleValue::Float(f) => (t, f),
                SampleValue::Str(_) => (t, f64::NAN),
            })
            .collect()
    }

    #[test]
    fn chunks_cut_and_window() {
        let mut s = SeriesData::new();
        for i in 0..10 {
            assert_eq!(s.check(i * 10, &Val::Float(i as f64)), Ok(()));
            s.push_float(i * 10, i as f64, 3);
        }
        assert_eq!(s.sealed().count(), 3);
        assert_eq!(s.sample_count(), 10);
        assert_eq!(
            floats(&s, 20, 50),
            vec![(20, 2.0), (30, 3.0), (40, 4.0), (50, 5.0)]
        );
        assert_eq!(floats(&s, 21, 29), vec![]);
        assert_eq!(s.estimate(20, 50), 4);
        assert_eq!(s.estimate(0, 1000), 10);
        assert_eq!(s.estimate(91, 1000), 0);
        assert!(s.estimate(21, 29) <= 2);
        assert!(!s.has_sample_in(21, 29));
        assert!(s.has_sample_in(29, 30));
        assert!(
            s.has_sample_in(11, 29),
            "chunk spanning the window is decoded"
        );
        assert_eq!(s.check(90, &Val::Float(9.0)), Err(Rejected::Duplicate));
        assert_eq!(
            s.check(90, &Val::Float(8.0)),
            Err(Rejected::OutOfOrder { newest: 90 })
        );
        assert_eq!(
            s.check(5, &Val::Float(8.0)),
            Err(Rejected::OutOfOrder { newest: 90 })
        );
        let mut rel = Vec::new();
        assert_eq!(s.gc(35, &mut rel), 3);
        assert_eq!(floats(&s, 0, 100).first(), Some(&(30, 3.0)));
        assert_eq!(s.gc(1000, &mut rel), 7);
        assert!(s.is_empty());
        assert_eq!(
            s.check(50, &Val::Float(1.0)),
            Ok(()),
            "an emptied series starts afresh"
        );
    }
}
