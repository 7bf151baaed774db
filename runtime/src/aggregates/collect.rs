//! Collecting the values themselves, up to a limit.

use super::Aggregator;
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};

/// The first `limit` values, in the order they were added; the rest are counted, not
/// kept, so one busy key cannot exhaust memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "SavedCollect<T>")]
pub struct Collect<T> {
    values: Vec<T>,
    limit: usize,
    omitted: u64,
}

/// [`Collect`] as saved in a checkpoint, checked before use: more values than the limit
/// would make `merge` underflow.
#[derive(Deserialize)]
struct SavedCollect<T> {
    values: Vec<T>,
    limit: usize,
    omitted: u64,
}

impl<T> TryFrom<SavedCollect<T>> for Collect<T> {
    type Error = String;

    fn try_from(saved: SavedCollect<T>) -> Result<Self, String> {
        let SavedCollect { values, limit, omitted } = saved;
        if values.len() > limit {
            return Err(format!("collect: {} values over a limit of {limit}", values.len()));
        }
        Ok(Collect { values, limit, omitted })
    }
}

impl<T> Collect<T> {
    pub fn new(limit: usize) -> Self {
        Collect {
            values: Vec::new(),
            limit,
            omitted: 0,
        }
    }

    /// How many values were left out because the limit was reached.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }
}

impl<T: Clone> Aggregator for Collect<T> {
    type Input = T;
    type Output = Vec<T>;

    fn add(&mut self, value: T, _t: i64) -> Result<(), EvalError> {
        if self.values.len() < self.limit {
            self.values.push(value);
        } else {
            self.omitted += 1;
        }
        Ok(())
    }

    /// Appends `other`'s values after `self`'s, up to the limit.
    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        let room = self.limit - self.values.len();
        let left_out = other.values.len().saturating_sub(room);
        self.values.extend(other.values.into_iter().take(room));
        self.omitted += other.omitted + left_out as u64;
        Ok(())
    }

    fn result(&self) -> Vec<T> {
        self.values.clone()
    }

    /// The vector's buffer; the values' own heap (a `String`'s bytes) is not counted.
    fn heap_bytes(&self) -> usize {
        self.values.capacity() * size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_of<T: Clone>(limit: usize, values: impl IntoIterator<Item = T>) -> Collect<T> {
        let mut c = Collect::new(limit);
        for v in values {
            c.add(v, 0).unwrap();
        }
        c
    }

    #[test]
    fn keeps_the_first_values_in_call_order() {
        let c = collect_of(3, [5, 1, 4, 2, 8]);
        assert_eq!(c.result(), vec![5, 1, 4]);
        assert_eq!(c.result(), vec![5, 1, 4], "result keeps the state");
        assert_eq!(c.omitted(), 2);
        let all = collect_of(10, ["b", "a"].map(String::from));
        assert_eq!(all.result(), vec!["b", "a"]);
        assert_eq!(all.omitted(), 0);
        let none = collect_of(0, [1, 2]);
        assert_eq!((none.result(), none.omitted()), (vec![], 2));
    }

    #[test]
    fn merge_equals_adding_everything() {
        let values: Vec<i64> = (0..10).map(|i| i * i - 20).collect();
        for limit in [0, 1, 4, 10, 20] {
            let whole = collect_of(limit, values.clone());
            for split in 0..=values.len() {
                let (l, r) = values.split_at(split);
                // Both sides may already have omitted values.
                let mut merged = collect_of(limit, l.to_vec());
                merged.merge(collect_of(limit, r.to_vec())).unwrap();
                assert_eq!(merged.result(), whole.result(), "limit {limit}, split at {split}");
                assert_eq!(merged.omitted(), whole.omitted(), "limit {limit}, split at {split}");
            }
        }
    }

    #[test]
    fn heap_grows_with_the_values() {
        let mut c = Collect::new(1000);
        assert_eq!(c.heap_bytes(), 0);
        c.add(1u64, 0).unwrap();
        let one = c.heap_bytes();
        assert!(one >= 8);
        (0..100u64).for_each(|v| c.add(v, 0).unwrap());
        assert!(c.heap_bytes() >= 101 * 8 && c.heap_bytes() > one);
    }
}
