//! `Cells`: one pane's accumulators (or folds), one per key, found by the key's *slot*,
//! a small number each key of a hopping window holds while it has panes.
//!
//! A pane that holds most keys keeps its accumulators in an array indexed by slot, so
//! what a slide's records and results touch lies in a handful of arrays of a few hundred
//! KiB each, asked for ahead of need; one key's panes spread across memory cost a fetch
//! per record and per result instead. A pane that holds few of the keys
//! keeps them in a hash map, so a window whose keys come and go holds what a list per
//! key would. A map becomes an array once it holds a quarter of the slots, never back:
//! a pane lives for one window's length.

use crate::prefetch::prefetch;
use hashbrown::HashMap;

/// A pane's accumulators by slot (see the module's docs).
pub(super) enum Cells<Acc> {
    Sparse(HashMap<u32, Acc, SlotHasher>),
    Dense { accs: Vec<Option<Acc>>, len: usize },
}

/// Slots are small integers handed out in turn: one multiplication spreads them.
pub(super) type SlotHasher = std::hash::BuildHasherDefault<SlotHash>;

#[derive(Default)]
pub(super) struct SlotHash(u64);

impl std::hash::Hasher for SlotHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, slot: u32) {
        // hashbrown reads the top 7 bits as the tag and the low bits as the bucket: the
        // multiplication fills both.
        self.0 = u64::from(slot).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map becomes an array once it holds more than a quarter of the slots, and not
/// before there are this many (a small map is as quick as an array).
const DENSE_FROM: usize = 64;

impl<Acc> Cells<Acc> {
    pub(super) fn new() -> Self {
        Cells::Sparse(HashMap::default())
    }

    /// Empty cells laid out as an array of `slots` (the folds of a pane whose cells are
    /// one).
    pub(super) fn dense(slots: u32) -> Self {
        Cells::dense_in(Vec::new(), slots)
    }

    /// [`Self::dense`] in `memory`, an array no longer used ([`Self::into_memory`]):
    /// an array of a few hundred KiB allocated afresh for every pane and fold cost page
    /// faults, the allocator handing such blocks back to the system and taking them again.
    pub(super) fn dense_in(mut memory: Vec<Option<Acc>>, slots: u32) -> Self {
        memory.clear();
        memory.resize_with(slots as usize, || None);
        Cells::Dense { accs: memory, len: 0 }
    }

    /// An array's memory, for [`Self::dense_in`]; nothing for a map.
    pub(super) fn into_memory(self) -> Option<Vec<Option<Acc>>> {
        match self {
            Cells::Sparse(_) => None,
            Cells::Dense { accs, .. } => Some(accs),
        }
    }

    pub(super) fn is_dense(&self) -> bool {
        matches!(self, Cells::Dense { .. })
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Cells::Sparse(map) => map.len(),
            Cells::Dense { len, .. } => *len,
        }
    }

    #[inline]
    pub(super) fn get(&self, slot: u32) -> Option<&Acc> {
        match self {
            Cells::Sparse(map) => map.get(&slot),
            Cells::Dense { accs, .. } => accs.get(slot as usize).and_then(Option::as_ref),
        }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, slot: u32) -> Option<&mut Acc> {
        match self {
            Cells::Sparse(map) => map.get_mut(&slot),
            Cells::Dense { accs, .. } => accs.get_mut(slot as usize).and_then(Option::as_mut),
        }
    }

    /// Sets the slot's accumulator; `slots` is how many slots are handed out (every
    /// slot is below it).
    pub(super) fn insert(&mut self, slot: u32, acc: Acc, slots: u32) {
        if let Cells::Sparse(map) = self {
            let dense = map.len() >= DENSE_FROM && map.len() * 4 >= slots as usize;
            if dense && !map.contains_key(&slot) {
                let mut array = Cells::dense(slots);
                if let Cells::Dense { accs, len } = &mut array {
                    *len = map.len();
                    for (at, acc) in map.drain() {
                        accs[at as usize] = Some(acc);
                    }
                }
                *self = array;
            }
        }
        match self {
            Cells::Sparse(map) => {
                map.insert(slot, acc);
            }
            Cells::Dense { accs, len } => {
                let at = slot as usize;
                if at >= accs.len() {
                    accs.resize_with(at.max(slots as usize - 1) + 1, || None);
                }
                *len += usize::from(accs[at].is_none());
                accs[at] = Some(acc);
            }
        }
    }

    pub(super) fn remove(&mut self, slot: u32) -> Option<Acc> {
        match self {
            Cells::Sparse(map) => map.remove(&slot),
            Cells::Dense { accs, len } => {
                let acc = accs.get_mut(slot as usize).and_then(Option::take);
                *len -= usize::from(acc.is_some());
                acc
            }
        }
    }

    /// Empties the cells, keeping an array's memory for the next use.
    pub(super) fn clear(&mut self) {
        match self {
            Cells::Sparse(map) => map.clear(),
            Cells::Dense { accs, len } => {
                accs.iter_mut().for_each(|acc| *acc = None);
                *len = 0;
            }
        }
    }

    /// The cells with their slots, in no particular order (an array's by slot).
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &Acc)> {
        let (sparse, dense) = match self {
            Cells::Sparse(map) => (Some(map.iter().map(|(&slot, acc)| (slot, acc))), None),
            Cells::Dense { accs, .. } => (
                None,
                Some(
                    accs.iter()
                        .enumerate()
                        .filter_map(|(at, acc)| Some((at as u32, acc.as_ref()?))),
                ),
            ),
        };
        sparse.into_iter().flatten().chain(dense.into_iter().flatten())
    }

    /// Moves each cell from slot `s` to slot `to[s]`, every one below `slots` (a slot
    /// not in `to`, or mapped to `u32::MAX`, holds nothing).
    pub(super) fn renumber(&mut self, to: &[u32], slots: u32) {
        let moved = |slot: u32| to.get(slot as usize).copied().filter(|&new| new < slots);
        match self {
            Cells::Sparse(map) => {
                *map = map
                    .drain()
                    .filter_map(|(slot, acc)| Some((moved(slot)?, acc)))
                    .collect();
            }
            Cells::Dense { accs, len } => {
                let mut into = Vec::with_capacity(slots as usize);
                into.resize_with(slots as usize, || None);
                *len = 0;
                for (slot, acc) in (0u32..).zip(accs.drain(..)) {
                    if let (Some(acc), Some(new)) = (acc, moved(slot)) {
                        into[new as usize] = Some(acc);
                        *len += 1;
                    }
                }
                *accs = into;
            }
        }
    }

    /// Asks for the slot's cell in an array from memory (a map's is not worth the hash).
    #[inline]
    pub(super) fn prefetch(&self, slot: u32) {
        if let Cells::Dense { accs, .. } = self {
            prefetch(accs.as_ptr().wrapping_add(slot as usize));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::SplitMix64;
    use std::collections::BTreeMap;

    #[test]
    fn cells_keep_what_a_map_keeps_as_they_become_an_array() {
        let mut rng = SplitMix64::new(11);
        for slots in [3u32, 64, 300, 5_000] {
            let mut cells = Cells::new();
            let mut model = BTreeMap::new();
            for step in 0..20_000u64 {
                let slot = (rng.next_u64() % u64::from(slots)) as u32;
                match rng.next_u64() % 8 {
                    0 => assert_eq!(cells.remove(slot), model.remove(&slot), "step {step}"),
                    1 => assert_eq!(cells.get(slot), model.get(&slot), "step {step}"),
                    2 => {
                        if let (Some(a), Some(b)) = (cells.get_mut(slot), model.get_mut(&slot)) {
                            *a += 1;
                            *b += 1;
                        }
                    }
                    _ => {
                        cells.insert(slot, step, slots);
                        model.insert(slot, step);
                    }
                }
                assert_eq!(cells.len(), model.len(), "step {step}");
            }
            let mut seen: Vec<(u32, u64)> = cells.iter().map(|(slot, &acc)| (slot, acc)).collect();
            seen.sort_unstable();
            assert_eq!(seen, model.into_iter().collect::<Vec<_>>());
            let dense = matches!(cells, Cells::Dense { .. });
            assert_eq!(dense, slots >= 300, "{slots} slots: an array only once many are held");
            let mut again = match cells.into_memory() {
                Some(memory) => {
                    let at = memory.as_ptr();
                    let again = Cells::dense_in(memory, slots);
                    assert!(
                        matches!(&again, Cells::Dense { accs, .. } if accs.as_ptr() == at),
                        "the memory is reused"
                    );
                    again
                }
                None => Cells::new(),
            };
            assert_eq!(
                (again.len(), again.iter().count()),
                (0, 0),
                "nothing of the old cells is kept"
            );
            again.insert(1, 7, slots);
            assert_eq!((again.get(1), again.get(0)), (Some(&7), None));
            again.clear();
            assert_eq!((again.len(), again.iter().count()), (0, 0));
        }
    }
}
