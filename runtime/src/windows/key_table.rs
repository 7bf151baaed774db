//! `KeyTable`: a hash map from key to accumulator whose entry for a key can be asked
//! for from memory before it is read ([`KeyTable::prefetch`]). A tumbling window looks
//! every record's key up in a table of thousands; the entry is rarely in the cache, and
//! `std`'s and hashbrown's maps can find where it is only by reading it.

use super::{KeyHasher, KeyMap};
use crate::prefetch::prefetch;
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

pub(crate) struct KeyTable<K, V> {
    entries: HashTable<(K, V)>,
    hasher: KeyHasher,
}

impl<K: Hash + Eq, V> KeyTable<K, V> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        KeyTable {
            entries: HashTable::with_capacity(capacity),
            hasher: KeyHasher::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .find(self.hasher.hash_one(key), |(k, _)| k.borrow() == key)
            .map(|(k, v)| (k, v))
    }

    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_key_value(key).is_some()
    }

    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .find_mut(self.hasher.hash_one(key), |(k, _)| k.borrow() == key)
            .map(|(_, v)| v)
    }

    /// Adds a key that is not there.
    pub(crate) fn insert_new(&mut self, key: K, value: V) {
        let hasher = &self.hasher;
        self.entries
            .insert_unique(hasher.hash_one(&key), (key, value), |(k, _)| hasher.hash_one(k));
    }

    /// Asks for the entries `key` may be in from memory, without reading them: the
    /// table's control bytes (a byte per entry, which stay in the cache) say which.
    #[inline]
    pub(crate) fn prefetch<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        for entry in self.entries.iter_hash(self.hasher.hash_one(key)).take(2) {
            prefetch(entry);
        }
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The entries, moved out, in no particular order.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (K, V)> {
        self.entries.into_iter()
    }
}

impl<'a, K: Hash + Eq, V> IntoIterator for &'a KeyTable<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<hashbrown::hash_table::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Hash + Eq, V> KeyTable<K, V> {
    /// The entries of `map`, whose keys are distinct (a checkpoint's restored bin).
    pub(crate) fn from_map(map: KeyMap<K, V>) -> Self {
        let mut table = KeyTable::with_capacity(map.len());
        for (key, value) in map {
            table.insert_new(key, value);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::SplitMix64;
    use std::collections::HashMap;

    #[test]
    fn it_keeps_what_a_hash_map_keeps() {
        let mut rng = SplitMix64::new(7);
        let mut table = KeyTable::with_capacity(0);
        let mut model = HashMap::new();
        for step in 0..20_000u64 {
            let key = format!("k{}", rng.next_u64() % 500);
            table.prefetch(key.as_str());
            match table.get_mut(key.as_str()) {
                Some(value) => {
                    *value += 1;
                    *model.get_mut(&key).expect("in the model too") += 1;
                }
                None => {
                    assert!(!model.contains_key(&key), "step {step}: {key} lost");
                    table.insert_new(key.clone(), 1u64);
                    model.insert(key, 1);
                }
            }
            assert_eq!(table.len(), model.len());
        }
        for (key, value) in &model {
            assert_eq!(table.get_key_value(key.as_str()), Some((key, value)));
            assert!(table.contains_key(key.as_str()));
        }
        assert!(!table.contains_key("k500"));
        let mut moved: Vec<(String, u64)> = table.into_entries().collect();
        let mut expected: Vec<(String, u64)> = model.clone().into_iter().collect();
        moved.sort();
        expected.sort();
        assert_eq!(moved, expected);
        let restored = KeyTable::from_map(model.into_iter().collect());
        assert_eq!(restored.len(), expected.len());
        for (key, value) in &expected {
            assert_eq!(restored.get_key_value(key.as_str()), Some((key, value)));
        }
    }
}
