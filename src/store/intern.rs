//! Reference-counted string symbol table: each distinct label name, label value or string sample is kept once
//! per shard and referred to by a dense `u32` id.
//!
//! Strings are `Arc<str>` so materialising a `Labels` for a reader clones pointers, never text. The lookup
//! table stores only ids (hashing goes through the string vector), so an interned string costs its text plus
//! about 30 bytes. When the last reference goes the slot is freed and its id reused.

use std::sync::Arc;

use hashbrown::HashTable;

/// A string and how many holders (series labels, string samples) refer to it.
#[derive(Debug)]
struct Entry {
    s: Arc<str>,
    refs: u32,
}

/// The symbol table of one shard; mutated only under the shard's write lock.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    entries: Vec<Option<Entry>>,
    table: HashTable<u32>,
    free: Vec<u32>,
    hasher: ahash::RandomState,
}

impl Interner {
    fn hash(&self, s: &str) -> u64 {
        self.hasher.hash_one(s)
    }

    /// The id of `s` if interned, without taking a reference (readers resolving matchers).
    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        let h = self.hash(s);
        let entries = &self.entries;
        self.table
            .find(h, |&id| {
                entries
                    .get(id as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|e| &*e.s == s)
            })
            .copied()
    }

    /// The string behind `id`.
    #[inline]
    pub(crate) fn resolve(&self, id: u32) -> Option<&Arc<str>> {
        self.entries
            .get(id as usize)
            .and_then(Option::as_ref)
            .map(|e| &e.s)
    }

    /// The text behind `id`, `""` for an unknown id.
    #[inline]
    pub(crate) fn text(&self, id: u32) -> &str {
        self.resolve(id).map_or("", |s| s)
    }

    /// Interns `s` (reusing `shared` as the stored pointer when new) and takes one reference.
    pub(crate) fn intern(&mut self, s: &str, shared: Option<&Arc<str>>) -> u32 {
        let h = self.hash(s);
        let Interner {
            entries,
            table,
            free,
            hasher,
        } = self;
        if let Some(&id) = table.find(h, |&id| {
            entries
                .get(id as usize)
                .and_then(Option::as_ref)
                .is_some_and(|e| &*e.s == s)
        }) {
            if let Some(Some(e)) = entries.get_mut(id as usize) {
                e.refs = e.refs.saturating_add(1);
            }
            return id;
        }
        let arc = match shared {
            Some(a) if &**a == s => a.clone(),
            _ => Arc::from(s),
        };
        let entry = Some(Entry { s: arc, refs: 1 });
        let id = match free.pop() {
            Some(id) => {
                if let Some(slot) = entries.get_mut(id as usize) {
                    *slot = entry;
                }
                id
            }
            None => {
                entries.push(entry);
                (entries.len() - 1) as u32
            }
        };
        table.insert_unique(h, id, |&id| {
            entries
                .get(id as usize)
                .and_then(Option::as_ref)
                .map_or(0, |e| hasher.hash_one(&*e.s))
        });
        id
    }

    /// Drops one reference; the string is forgotten when none remain.
    pub(crate) fn release(&mut self, id: u32) {
        let Some(Some(e)) = self.entries.get_mut(id as usize) else {
            return;
        };
        e.refs = e.refs.saturating_sub(1);
        if e.refs > 0 {
            return;
        }
        let h = self.hasher.hash_one(&*e.s);
        if let Ok(entry) = self.table.find_entry(h, |&x| x == id) {
            entry.remove();
        }
        if let Some(slot) = self.entries.get_mut(id as usize) {
            *slot = None;
        }
        self.free.push(id);
    }

    /// Number of distinct live strings.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Approximate heap bytes: entry vector, lookup table, free list and the strings themselves.
    pub(crate) fn heap_bytes(&self) -> usize {
        let strings: usize = self
            .entries
            .iter()
            .flatten()
            .map(|e| e.s.len() + 2 * std::mem::size_of::<usize>())
            .sum();
        self.entries.capacity() * std::mem::size_of::<Option<Entry>>()
            + self.table.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.free.capacity() * std::mem::size_of::<u32>()
            + strings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intern_release_reuse() {
        let mut i = Interner::default();
        let a = i.intern("job", None);
        let b = i.intern("api", None);
        assert_eq!(i.intern("job", None), a);
        assert_eq!(i.lookup("api"), Some(b));
        assert_eq!(i.text(a), "job");
        i.release(a);
        assert_eq!(i.lookup("job"), Some(a), "one reference left");
        i.release(a);
        assert_eq!(i.lookup("job"), None);
        assert_eq!(i.resolve(a), None);
        let c = i.intern("other", None);
        assert_eq!(c, a, "freed id is reused");
        assert_eq!(i.len(), 2);
        i.release(999);
        assert_eq!(i.text(999), "");
    }

    #[test]
    fn many_strings_survive_rehash() {
        let mut i = Interner::default();
        let ids: Vec<u32> = (0..5000)
            .map(|n| i.intern(&format!("host-{n}"), None))
            .collect();
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(i.lookup(&format!("host-{n}")), Some(*id));
        }
        for id in ids.iter().step_by(2) {
            i.release(*id);
        }
        assert_eq!(i.len(), 2500);
        assert_eq!(i.lookup("host-1"), Some(ids[1]));
        assert_eq!(i.lookup("host-0"), None);
    }
}
