//! `SortedKeys`: a map whose entries lie in one vector in key order, for operators that
//! visit every key in key order again and again (a hopping window fires every key each
//! slide). Sorting the keys for each visit cost up to a tenth of such a window's time, and
//! visiting them through a hash map touched memory all over; here a visit walks one
//! vector front to back, sorted again only after keys were added out of order.

use super::KeyHasher;
use crate::prefetch::prefetch;
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

pub(crate) struct SortedKeys<K, V> {
    /// The entries, in key order unless `sorted` is false.
    entries: Vec<(K, V)>,
    /// Where each key's entry is in `entries`.
    index: HashTable<usize>,
    hasher: KeyHasher,
    sorted: bool,
}

impl<K: Hash + Ord, V> SortedKeys<K, V> {
    pub(crate) fn new() -> Self {
        SortedKeys {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: KeyHasher::default(),
            sorted: true,
        }
    }

    /// A map of `entries`; `None` when a key is there twice.
    pub(crate) fn from_entries(entries: Vec<(K, V)>) -> Option<Self> {
        let mut keys = SortedKeys::new();
        keys.entries = entries;
        keys.sorted = false;
        keys.sort();
        keys.entries.windows(2).all(|w| w[0].0 != w[1].0).then_some(keys)
    }

    fn find<Q>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(key), |&i| entries[i].0.borrow() == key)
            .copied()
    }

    /// Asks for the entries `key` may be at from memory (see [`prefetch`]), without
    /// reading them: a key is found through an index that stays in the cache, to an
    /// entry that may not.
    #[inline]
    pub(crate) fn prefetch<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        for &at in self.index.iter_hash(self.hasher.hash_one(key)).take(2) {
            prefetch(self.entries.as_ptr().wrapping_add(at));
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key).map(|i| &self.entries[i].1)
    }

    #[cfg(test)]
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key).map(|i| &mut self.entries[i].1)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds a key that is not there.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        let at = self.entries.len();
        self.sorted &= self.entries.last().is_none_or(|(last, _)| *last < key);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .insert_unique(hasher.hash_one(&key), at, |&i| hasher.hash_one(&entries[i].0));
        self.entries.push((key, value));
    }

    /// Keeps the entries for which `keep` is true, in their order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let before = self.entries.len();
        self.entries.retain_mut(|(key, value)| keep(key, value));
        if self.entries.len() != before {
            self.reindex();
        }
    }

    /// The entries in key order.
    pub(crate) fn in_order(&mut self) -> &mut [(K, V)] {
        self.sort();
        &mut self.entries
    }

    /// The entries in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.entries.iter()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            self.reindex();
            self.sorted = true;
        }
    }

    fn reindex(&mut self) {
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.clear();
        for (at, (key, _)) in entries.iter().enumerate() {
            self.index
                .insert_unique(hasher.hash_one(key), at, |&i| hasher.hash_one(&entries[i].0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::SplitMix64;
    use std::collections::BTreeMap;

    #[test]
    fn it_keeps_what_a_btree_map_keeps_and_visits_it_in_the_same_order() {
        let mut rng = SplitMix64::new(3);
        let mut keys = SortedKeys::new();
        let mut model = BTreeMap::new();
        for step in 0..20_000u64 {
            let key = format!("k{}", rng.next_u64() % 300);
            match rng.next_u64() % 10 {
                0 => {
                    let cut = rng.next_u64() % 300;
                    let keep = |k: &String| {
                        let n: u64 = k[1..].parse().expect("a number");
                        !n.is_multiple_of(3) || n > cut
                    };
                    keys.retain(|k, _| keep(k));
                    model.retain(|k, _| keep(k));
                }
                1 => {
                    let order: Vec<_> = keys.in_order().iter().map(|(k, v)| (k.clone(), *v)).collect();
                    let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
                    assert_eq!(order, expected, "step {step}");
                }
                _ => match keys.get_mut(key.as_str()) {
                    Some(value) => {
                        *value += 1;
                        *model.get_mut(&key).expect("in the model too") += 1;
                    }
                    None => {
                        assert!(!model.contains_key(&key), "step {step}: {key} lost");
                        keys.insert(key.clone(), 1);
                        model.insert(key, 1);
                    }
                },
            }
            assert_eq!(keys.iter().count(), model.len());
        }
        for (key, value) in &model {
            assert_eq!(keys.get(key.as_str()), Some(value));
        }
    }

    #[test]
    fn a_key_saved_twice_is_refused() {
        assert!(SortedKeys::from_entries(vec![("a", 1), ("b", 2)]).is_some());
        assert!(SortedKeys::from_entries(vec![("a", 1), ("a", 2)]).is_none());
    }
}
