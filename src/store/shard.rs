//! One shard of the store: a slab of series slots, the label-set → slot hash table, the symbol table and the
//! inverted index, plus the matcher planner that turns label matchers into a sorted list of slots.
//!
//! Locking: the shard sits in an `RwLock`. Slot labels, the table, the interner and the index change only under
//! the write lock (series creation and deletion, string samples). Each slot's samples sit in their own mutex, so
//! float appends to different series of a shard run in parallel under the read lock.

use std::hash::{BuildHasher, Hasher};

use ahash::AHashMap;
use hashbrown::HashTable;
use parking_lot::Mutex;

use super::index::{Index, difference, intersect, union};
use super::intern::Interner;
use super::series::SeriesData;
use crate::model::{Label, Labels, MatchOp, Matcher};

const PAGE_BITS: u32 = 8;
const PAGE: usize = 1 << PAGE_BITS;

/// Fixed seeds: shard placement and table layout are the same on every run (reproducible benchmarks).
static LABEL_HASHER: ahash::RandomState = ahash::RandomState::with_seeds(
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
);

/// Hash of a label set given as (name, value) pairs in name order; picks the shard and keys the series table.
pub(crate) fn hash_labels<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = LABEL_HASHER.build_hasher();
    for (n, v) in pairs {
        h.write(n.as_bytes());
        h.write_u8(0xff);
        h.write(v.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// Label pairs as LEB128 varints of interned ids (name, value, name, value, ...): about 3 bytes per label
/// instead of 8.
fn encode_pairs(ids: &[u32]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(ids.len() * 2);
    for &id in ids {
        let mut v = id;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out.into_boxed_slice()
}

/// Decodes `encode_pairs` output as (name id, value id).
#[inline]
fn decode_pairs(mut b: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let mut next = move || -> Option<u32> {
        let mut v = 0u32;
        let mut shift = 0;
        loop {
            let (&x, rest) = b.split_first()?;
            b = rest;
            v |= u32::from(x & 0x7f).checked_shl(shift).unwrap_or(0);
            if x < 0x80 {
                return Some(v);
            }
            shift += 7;
        }
    };
    std::iter::from_fn(move || Some((next()?, next()?)))
}

/// A series slot. Vacant when `pairs` is empty (a live series always has at least one label).
#[derive(Debug)]
pub(crate) struct Slot {
    /// Interned label ids (`encode_pairs`), in label-name order; immutable while the slot is live.
    pairs: Box<[u8]>,
    /// Changes every time the slot is (re)filled, so stale `SeriesRef`s are detected.
    pub(crate) generation: u32,
    /// The samples.
    pub(crate) data: Mutex<SeriesData>,
}

impl Slot {
    fn vacant() -> Self {
        Slot {
            pairs: Box::new([]),
            generation: 0,
            data: Mutex::new(SeriesData::new()),
        }
    }

    /// Whether the slot holds a series.
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        !self.pairs.is_empty()
    }

    /// (name id, value id) pairs in name order.
    #[inline]
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        decode_pairs(&self.pairs)
    }
}

/// How a matcher is answered from the index.
enum Plan<'m> {
    /// Series whose value is one of these literals.
    Include(Vec<&'m str>),
    /// Series whose value is none of these literals (absent counts as not one of them).
    Exclude(Vec<&'m str>),
    /// Evaluate the matcher on each distinct value (or each candidate series).
    Scan,
}

/// `a|b|c` with no regex syntax besides `|` and no empty branch, as plain strings.
fn literal_alternatives(re: &str) -> Option<Vec<&str>> {
    const META: &[char] = &[
        '.', '+', '*', '?', '(', ')', '[', ']', '{', '}', '^', '$', '\\',
    ];
    let parts: Vec<&str> = re.split('|').collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && !p.contains(META))
        .then_some(parts)
}

/// Matchers planned once per query, cheapest and most selective first, then run against every shard.
pub(crate) struct Selector<'m> {
    steps: Vec<(&'m Matcher, Plan<'m>)>,
}

impl<'m> Selector<'m> {
    /// Plans `matchers`: literal sets first (postings lookups), then regex scans that need the label, then
    /// exclusions, then scans that also accept series lacking the label.
    pub(crate) fn new(matchers: &'m [Matcher]) -> Self {
        let mut steps: Vec<(u8, &Matcher, Plan<'_>)> = matchers
            .iter()
            .map(|m| {
                let p = plan(m);
                let key = match p {
                    Plan::Include(_) => 0,
                    Plan::Scan if !m.matches_empty() => 1,
                    Plan::Exclude(_) => 2,
                    Plan::Scan => 3,
                };
                (key, m, p)
            })
            .collect();
        steps.sort_by_key(|s| s.0);
        Selector {
            steps: steps.into_iter().map(|(_, m, p)| (m, p)).collect(),
        }
    }
}

fn plan(m: &Matcher) -> Plan<'_> {
    match m.op {
        MatchOp::Equal if !m.value.is_empty() => Plan::Include(vec![m.value.as_str()]),
        MatchOp::NotEqual if !m.value.is_empty() => Plan::Exclude(vec![m.value.as_str()]),
        MatchOp::Regex => literal_alternatives(&m.value).map_or(Plan::Scan, Plan::Include),
        MatchOp::NotRegex => literal_alternatives(&m.value).map_or(Plan::Scan, Plan::Exclude),
        _ => Plan::Scan,
    }
}

/// One shard's state.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pages: Vec<Box<[Slot]>>,
    /// Slots handed out so far (high-water mark).
    high: u32,
    free: Vec<u32>,
    live: usize,
    table: HashTable<u32>,
    pub(crate) interner: Interner,
    index: Index,
    next_generation: u32,
}

impl Shard {
    /// An empty shard whose generations continue after `next_generation` (so refs from before a clear stay stale).
    pub(crate) fn with_generation(next_generation: u32) -> Self {
        Shard {
            next_generation,
            ..Default::default()
        }
    }

    /// Next generation number to hand out.
    pub(crate) fn next_generation(&self) -> u32 {
        self.next_generation
    }

    /// Live series.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// The slot `id`, live or not.
    #[inline]
    pub(crate) fn slot(&self, id: u32) -> Option<&Slot> {
        self.pages
            .get((id >> PAGE_BITS) as usize)
            .and_then(|p| p.get(id as usize & (PAGE - 1)))
    }

    #[inline]
    fn slot_mut(&mut self, id: u32) -> Option<&mut Slot> {
        self.pages
            .get_mut((id >> PAGE_BITS) as usize)
            .and_then(|p| p.get_mut(id as usize & (PAGE - 1)))
    }

    /// A live slot's samples and the symbol table, mutably (string appends under the write lock).
    pub(crate) fn data_and_interner(
        &mut self,
        id: u32,
    ) -> Option<(&mut SeriesData, &mut Interner)> {
        let Shard {
            pages, interner, ..
        } = self;
        let slot = pages
            .get_mut((id >> PAGE_BITS) as usize)
            .and_then(|p| p.get_mut(id as usize & (PAGE - 1)))?;
        if !slot.is_live() {
            return None;
        }
        Some((slot.data.get_mut(), interner))
    }

    /// The live slot holding exactly `labels`.
    pub(crate) fn find(&self, hash: u64, labels: &Labels) -> Option<u32> {
        self.table
            .find(hash, |&id| {
                self.slot(id).is_some_and(|s| {
                    let mut pairs = s.pairs();
                    labels.iter().all(|l| {
                        pairs.next().is_some_and(|(n, v)| {
                            self.interner.text(n) == &*l.name && self.interner.text(v) == &*l.value
                        })
                    }) && pairs.next().is_none()
                })
            })
            .copied()
    }

    /// The table hash of a live slot, recomputed from its labels (table growth and removal).
    fn slot_hash(pages: &[Box<[Slot]>], interner: &Interner, id: u32) -> u64 {
        let slot = pages
            .get((id >> PAGE_BITS) as usize)
            .and_then(|p| p.get(id as usize & (PAGE - 1)));
        slot.map_or(0, |s| {
            hash_labels(s.pairs().map(|(n, v)| (interner.text(n), interner.text(v))))
        })
    }

    /// Creates a series for `labels` (validated, not present); `None` when the slot space is exhausted.
    pub(crate) fn create(&mut self, hash: u64, labels: &Labels) -> Option<u32> {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                if self.high == u32::MAX {
                    return None;
                }
                if (self.high as usize) >> PAGE_BITS >= self.pages.len() {
                    self.pages.reserve_exact(1);
                    self.pages.push((0..PAGE).map(|_| Slot::vacant()).collect());
                }
                self.high += 1;
                self.high - 1
            }
        };
        let mut ids = Vec::with_capacity(labels.len() * 2);
        for l in labels {
            ids.push(self.interner.intern(&l.name, Some(&l.name)));
            ids.push(self.interner.intern(&l.value, Some(&l.value)));
        }
        self.index.add(id, &ids);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let slot = self.slot_mut(id)?;
        slot.pairs = encode_pairs(&ids);
        slot.generation = generation;
        *slot.data.get_mut() = SeriesData::new();
        let Shard {
            table,
            pages,
            interner,
            ..
        } = self;
        table.insert_unique(hash, id, |&i| Self::slot_hash(pages, interner, i));
        self.live += 1;
        Some(id)
    }

    /// Deletes the series in slot `id`: index postings, table entry, interned label and string references.
    pub(crate) fn remove(&mut self, id: u32) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        if !slot.is_live() {
            return;
        }
        let data = std::mem::replace(slot.data.get_mut(), SeriesData::new());
        let hash = Self::slot_hash(&self.pages, &self.interner, id);
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        let ids: Vec<u32> = slot.pairs().flat_map(|(n, v)| [n, v]).collect();
        slot.pairs = Box::new([]);
        self.index.remove(id, &ids);
        for &p in &ids {
            self.interner.release(p);
        }
        for s in data.string_ids() {
            self.interner.release(s);
        }
        if let Ok(e) = self.table.find_entry(hash, |&x| x == id) {
            e.remove();
        }
        self.free.push(id);
        self.live -= 1;
    }

    /// Every live slot, ascending.
    pub(crate) fn live_slots(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.live);
        for (pi, page) in self.pages.iter().enumerate() {
            for (i, s) in page.iter().enumerate() {
                if s.is_live() {
                    out.push(((pi << PAGE_BITS) | i) as u32);
                }
            }
        }
        out
    }

    /// The label set of a live slot, sharing the interned strings.
    pub(crate) fn labels(&self, slot: &Slot) -> Labels {
        let mut v = Vec::with_capacity(slot.pairs().count());
        for (n, val) in slot.pairs() {
            if let (Some(name), Some(value)) =
                (self.interner.resolve(n), self.interner.resolve(val))
            {
                v.push(Label {
                    name: name.clone(),
                    value: value.clone(),
                });
            }
        }
        Labels::from_sorted(v)
    }

    /// The value id of label `name` on slot `id`.
    #[inline]
    fn value_of(&self, id: u32, name: u32) -> Option<u32> {
        self.slot(id)?.pairs().find(|p| p.0 == name).map(|p| p.1)
    }

    /// Slots of the series matching all of the selector's matchers (absent labels match as ""), ascending.
    pub(crate) fn select_slots(&self, selector: &Selector<'_>) -> Vec<u32> {
        let mut cands: Option<Vec<u32>> = None;
        for (m, p) in &selector.steps {
            let name = self.interner.lookup(&m.name);
            let values = name.and_then(|n| self.index.values(n));
            let lits = |lits: &[&str]| -> Vec<u32> {
                let Some(values) = values else {
                    return Vec::new();
                };
                union(
                    lits.iter()
                        .filter_map(|l| self.interner.lookup(l).and_then(|v| values.get(&v)))
                        .map(|p| p.as_slice()),
                )
            };
            let next = match p {
                Plan::Include(l) => {
                    let u = lits(l);
                    match cands {
                        None => u,
                        Some(c) => intersect(&c, &u),
                    }
                }
                Plan::Exclude(l) => {
                    let ex = lits(l);
                    let base = cands.unwrap_or_else(|| self.live_slots());
                    if ex.is_empty() {
                        base
                    } else {
                        difference(&base, &ex)
                    }
                }
                Plan::Scan => {
                    let (Some(name), Some(values)) = (name, values) else {
                        // No series has this label: it reads as "" everywhere.
                        if m.matches_empty() {
                            continue;
                        }
                        return Vec::new();
                    };
                    match cands {
                        Some(mut c) if c.len() < values.len() => {
                            // Few candidates: test each one's value (memoised) instead of every distinct value.
                            let mut memo: AHashMap<u32, bool> = AHashMap::new();
                            let empty = m.matches_empty();
                            c.retain(|&id| match self.value_of(id, name) {
                                None => empty,
                                Some(v) => *memo
                                    .entry(v)
                                    .or_insert_with(|| m.matches(self.interner.text(v))),
                            });
                            c
                        }
                        c => {
                            let keep = !m.matches_empty();
                            // Postings of the values that match (keep) or that do not (exclude).
                            let sel = union(
                                values
                                    .iter()
                                    .filter(|(v, _)| m.matches(self.interner.text(**v)) == keep)
                                    .map(|(_, p)| p.as_slice()),
                            );
                            match (keep, c) {
                                (true, None) => sel,
                                (true, Some(c)) => intersect(&c, &sel),
                                (false, c) => {
                                    let base = c.unwrap_or_else(|| self.live_slots());
                                    if sel.is_empty() {
                                        base
                                    } else {
                                        difference(&base, &sel)
                                    }
                                }
                            }
                        }
                    }
                }
            };
            if next.is_empty() {
                return next;
            }
            cands = Some(next);
        }
        cands.unwrap_or_else(|| self.live_slots())
    }

    /// Label name ids present in this shard.
    pub(crate) fn name_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.index.names()
    }

    /// Value ids of label `name` present in this shard.
    pub(crate) fn value_ids(&self, name: &str) -> Vec<u32> {
        self.interner
            .lookup(name)
            .and_then(|n| self.index.values(n))
            .map(|v| v.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Approximate heap bytes of everything in the shard.
    pub(crate) fn heap_bytes(&self) -> usize {
        let slots = self.pages.len() * PAGE * std::mem::size_of::<Slot>()
            + self.pages.capacity() * std::mem::size_of::<Box<[Slot]>>();
        let series: usize = self
            .pages
            .iter()
            .flat_map(|p| p.iter())
            .filter(|s| s.is_live())
            .map(|s| s.pairs.len() + s.data.lock().heap_bytes())
            .sum();
        slots
            + series
            + self.table.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.free.capacity() * 4
            + self.interner.heap_bytes()
            + self.index.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_alternatives_detection() {
        assert_eq!(literal_alternatives("a|b|c"), Some(vec!["a", "b", "c"]));
        assert_eq!(
            literal_alternatives("/api/v1:x-y"),
            Some(vec!["/api/v1:x-y"])
        );
        assert_eq!(literal_alternatives("a|"), None);
        assert_eq!(literal_alternatives(""), None);
        assert_eq!(literal_alternatives("a.*"), None);
        assert_eq!(literal_alternatives("(?i)a"), None);
        assert_eq!(literal_alternatives(r"a\.b"), None);
    }
}
