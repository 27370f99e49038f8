//! Inverted label index of one shard: label name id → label value id → sorted posting list of series slots,
//! plus the sorted-set operations the matcher planner combines postings with.

use ahash::AHashMap;

/// Sorted, duplicate-free slot ids. A single id stays inline: most values of high-cardinality labels
/// (`instance`, `pod`) belong to one series, and a heap vector for each would cost ~40 bytes more.
#[derive(Debug, Clone)]
pub(crate) enum Postings {
    /// Exactly one slot.
    One(u32),
    /// Two or more slots, ascending.
    Many(Vec<u32>),
}

impl Postings {
    /// The ids as a slice.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u32] {
        match self {
            Postings::One(x) => std::slice::from_ref(x),
            Postings::Many(v) => v,
        }
    }

    /// Inserts `id`, keeping order (slot ids mostly arrive ascending, so this is usually a push).
    fn insert(&mut self, id: u32) {
        match self {
            Postings::One(x) if *x == id => {}
            Postings::One(x) => {
                let (a, b) = if *x < id { (*x, id) } else { (id, *x) };
                let mut v = Vec::with_capacity(2);
                v.extend([a, b]);
                *self = Postings::Many(v);
            }
            Postings::Many(v) => {
                if v.last().is_none_or(|&l| l < id) {
                    v.push(id);
                } else if let Err(i) = v.binary_search(&id) {
                    v.insert(i, id);
                }
            }
        }
    }

    /// Removes `id`; returns whether the list is now empty.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            Postings::One(x) => *x == id,
            Postings::Many(v) => {
                if let Ok(i) = v.binary_search(&id) {
                    v.remove(i);
                }
                match v.as_slice() {
                    [] => true,
                    [only] => {
                        *self = Postings::One(*only);
                        false
                    }
                    _ => {
                        if v.capacity() > 2 * v.len() + 8 {
                            v.shrink_to(v.len() + v.len() / 4);
                        }
                        false
                    }
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Postings::One(_) => 0,
            Postings::Many(v) => v.capacity() * 4,
        }
    }
}

/// Values of one label name.
pub(crate) type ValueMap = AHashMap<u32, Postings>;

/// name id → value id → postings.
#[derive(Debug, Default)]
pub(crate) struct Index {
    names: AHashMap<u32, ValueMap>,
}

impl Index {
    /// Adds a series with `pairs` = `[name, value, name, value, ...]` ids.
    pub(crate) fn add(&mut self, slot: u32, pairs: &[u32]) {
        for p in pairs.chunks_exact(2) {
            let values = self.names.entry(p[0]).or_default();
            match values.get_mut(&p[1]) {
                Some(post) => post.insert(slot),
                None => {
                    values.insert(p[1], Postings::One(slot));
                }
            }
        }
    }

    /// Removes a series added with the same `pairs`.
    pub(crate) fn remove(&mut self, slot: u32, pairs: &[u32]) {
        for p in pairs.chunks_exact(2) {
            let Some(values) = self.names.get_mut(&p[0]) else {
                continue;
            };
            if values.get_mut(&p[1]).is_some_and(|post| post.remove(slot)) {
                values.remove(&p[1]);
                if values.is_empty() {
                    self.names.remove(&p[0]);
                } else if values.capacity() > 4 * values.len() + 16 {
                    values.shrink_to_fit();
                }
            }
        }
    }

    /// The values of label `name`, if any series has it.
    #[inline]
    pub(crate) fn values(&self, name: u32) -> Option<&ValueMap> {
        self.names.get(&name)
    }

    /// All label name ids present.
    pub(crate) fn names(&self) -> impl Iterator<Item = u32> + '_ {
        self.names.keys().copied()
    }

    /// Approximate heap bytes of maps and posting lists.
    pub(crate) fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u32, Postings)>() + 1;
        let outer = self.names.capacity() * (std::mem::size_of::<(u32, ValueMap)>() + 1);
        outer
            + self
                .names
                .values()
                .map(|vm| {
                    vm.capacity() * entry + vm.values().map(Postings::heap_bytes).sum::<usize>()
                })
                .sum::<usize>()
    }
}

/// `a ∩ b` for sorted inputs.
pub(crate) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len() * 16 < large.len() {
        // Very uneven: binary-search the small side's ids in the large side.
        let mut rest = large;
        for &x in small {
            match rest.binary_search(&x) {
                Ok(i) => {
                    out.push(x);
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (small.get(i), large.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `a \ b` for sorted inputs.
pub(crate) fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while b.get(j).is_some_and(|&y| y < x) {
            j += 1;
        }
        if b.get(j) != Some(&x) {
            out.push(x);
        }
    }
    out
}

/// Union of sorted lists.
pub(crate) fn union<'a>(lists: impl IntoIterator<Item = &'a [u32]>) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    let mut parts = 0;
    for l in lists {
        out.extend_from_slice(l);
        parts += 1;
    }
    if parts > 1 {
        out.sort_unstable();
        out.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5, 8]), vec![3, 5]);
        let big: Vec<u32> = (0..1000).collect();
        assert_eq!(intersect(&[5, 500, 2000], &big), vec![5, 500]);
        assert_eq!(difference(&[1, 2, 3, 4], &[2, 4, 9]), vec![1, 3]);
        assert_eq!(difference(&[1, 2], &[]), vec![1, 2]);
        assert_eq!(union([&[3u32, 5][..], &[1, 3][..], &[][..]]), vec![1, 3, 5]);
        assert_eq!(
            union([&[2u32, 1][..]]),
            vec![2, 1],
            "a single list is taken as is"
        );
    }

    #[test]
    fn postings_insert_remove() {
        let mut p = Postings::One(5);
        p.insert(3);
        p.insert(9);
        p.insert(7);
        p.insert(7);
        assert_eq!(p.as_slice(), &[3, 5, 7, 9]);
        assert!(!p.remove(5));
        assert!(!p.remove(3));
        assert!(!p.remove(9));
        assert!(matches!(p, Postings::One(7)));
        assert!(p.remove(7));
    }

    #[test]
    fn index_add_remove() {
        let mut ix = Index::default();
        ix.add(0, &[1, 2, 3, 4]);
        ix.add(1, &[1, 2, 3, 5]);
        assert_eq!(
            ix.values(1).and_then(|v| v.get(&2)).map(Postings::as_slice),
            Some(&[0, 1][..])
        );
        ix.remove(0, &[1, 2, 3, 4]);
        assert!(ix.values(3).is_some_and(|v| !v.contains_key(&4)));
        ix.remove(1, &[1, 2, 3, 5]);
        assert_eq!(ix.names().count(), 0);
    }
}
