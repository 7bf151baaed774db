//! The aggregates that hold a value or two: count, sum, min, max, average, first, last.

use super::Aggregator;
use crate::errors::EvalError;
use crate::fns::Arith;
use serde::{Deserialize, Serialize};

/// The number of records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Count {
    n: i64,
}

impl Count {
    pub fn new() -> Self {
        Count::default()
    }
}

impl Aggregator for Count {
    type Input = ();
    type Output = i64;

    fn add(&mut self, (): (), _t: i64) -> Result<(), EvalError> {
        self.n = self.n.checked_add(1).ok_or(EvalError::Overflow { op: "count" })?;
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        self.n = self.n.checked_add(other.n).ok_or(EvalError::Overflow { op: "count" })?;
        Ok(())
    }

    fn result(&self) -> i64 {
        self.n
    }
}

/// The sum of the values, for `i64`, `u64` and `f64`.
///
/// Integer sums are checked: an overflow fails the record and leaves the sum as it was,
/// so one bad record never poisons the window. Float sums add in call order with plain
/// `+`, so they match a hand-written loop bit for bit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sum<T> {
    total: T,
}

impl<T: Arith + Default> Sum<T> {
    pub fn new() -> Self {
        Sum { total: T::default() }
    }
}

impl<T: Arith + Default> Aggregator for Sum<T> {
    type Input = T;
    type Output = T;

    fn add(&mut self, value: T, _t: i64) -> Result<(), EvalError> {
        self.total = self.total.add(value).map_err(|_| EvalError::Overflow { op: "sum" })?;
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        self.add(other.total, 0)
    }

    fn result(&self) -> T {
        self.total
    }
}

/// A value that is not comparable with itself is a NaN: min and max skip it, since one
/// NaN would otherwise make the result depend on where it fell in the input.
fn is_nan_like<T: PartialOrd>(v: &T) -> bool {
    v.partial_cmp(v).is_none()
}

/// The smallest value (NaN ignored; on ties the value held first is kept).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Min<T> {
    value: Option<T>,
}

impl<T> Min<T> {
    pub fn new() -> Self {
        Min { value: None }
    }
}

impl<T> Default for Min<T> {
    fn default() -> Self {
        Min::new()
    }
}

impl<T: PartialOrd + Clone> Aggregator for Min<T> {
    type Input = T;
    type Output = Option<T>;

    fn add(&mut self, value: T, _t: i64) -> Result<(), EvalError> {
        if is_nan_like(&value) {
            return Ok(());
        }
        match &self.value {
            Some(current) if *current <= value => {}
            _ => self.value = Some(value),
        }
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        match other.value {
            Some(v) => self.add(v, 0),
            None => Ok(()),
        }
    }

    fn result(&self) -> Option<T> {
        self.value.clone()
    }
}

/// The largest value (NaN ignored; on ties the value held first is kept).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Max<T> {
    value: Option<T>,
}

impl<T> Max<T> {
    pub fn new() -> Self {
        Max { value: None }
    }
}

impl<T> Default for Max<T> {
    fn default() -> Self {
        Max::new()
    }
}

impl<T: PartialOrd + Clone> Aggregator for Max<T> {
    type Input = T;
    type Output = Option<T>;

    fn add(&mut self, value: T, _t: i64) -> Result<(), EvalError> {
        if is_nan_like(&value) {
            return Ok(());
        }
        match &self.value {
            Some(current) if *current >= value => {}
            _ => self.value = Some(value),
        }
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        match other.value {
            Some(v) => self.add(v, 0),
            None => Ok(()),
        }
    }

    fn result(&self) -> Option<T> {
        self.value.clone()
    }
}

/// The arithmetic mean, `sum / count as f64` with the sum added in call order: exactly
/// what a hand-written loop computes, so outputs compare byte for byte.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Avg {
    sum: f64,
    count: u64,
}

impl Avg {
    pub fn new() -> Self {
        Avg::default()
    }
}

impl Aggregator for Avg {
    type Input = f64;
    type Output = Option<f64>;

    fn add(&mut self, value: f64, _t: i64) -> Result<(), EvalError> {
        self.sum += value;
        self.count += 1;
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        self.sum += other.sum;
        self.count += other.count;
        Ok(())
    }

    fn result(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// The value with the smallest event time. Ties keep the value held first (the one
/// added first; in a merge, `self`'s), so the result does not depend on arrival order
/// beyond what the timestamps leave open.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct First<T> {
    held: Option<(i64, T)>,
}

impl<T> First<T> {
    pub fn new() -> Self {
        First { held: None }
    }
}

impl<T> Default for First<T> {
    fn default() -> Self {
        First::new()
    }
}

impl<T: Clone> Aggregator for First<T> {
    type Input = T;
    type Output = Option<T>;

    fn add(&mut self, value: T, t: i64) -> Result<(), EvalError> {
        match &self.held {
            Some((held_t, _)) if *held_t <= t => {}
            _ => self.held = Some((t, value)),
        }
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        match other.held {
            Some((t, v)) => self.add(v, t),
            None => Ok(()),
        }
    }

    fn result(&self) -> Option<T> {
        self.held.as_ref().map(|(_, v)| v.clone())
    }
}

/// The value with the largest event time. Ties take the later one (the one added last;
/// in a merge, `other`'s), as "last" reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Last<T> {
    held: Option<(i64, T)>,
}

impl<T> Last<T> {
    pub fn new() -> Self {
        Last { held: None }
    }
}

impl<T> Default for Last<T> {
    fn default() -> Self {
        Last::new()
    }
}

impl<T: Clone> Aggregator for Last<T> {
    type Input = T;
    type Output = Option<T>;

    fn add(&mut self, value: T, t: i64) -> Result<(), EvalError> {
        match &self.held {
            Some((held_t, _)) if *held_t > t => {}
            _ => self.held = Some((t, value)),
        }
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        match other.held {
            Some((t, v)) => self.add(v, t),
            None => Ok(()),
        }
    }

    fn result(&self) -> Option<T> {
        self.held.as_ref().map(|(_, v)| v.clone())
    }
}

/// `min` of f64 values in 8 bytes instead of `Min<f64>`'s 16: NaN (which `add` ignores
/// anyway) marks "no value yet". One of these per key per window adds up.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MinF64 {
    value: f64,
}

impl Default for MinF64 {
    fn default() -> Self {
        MinF64 { value: f64::NAN }
    }
}

impl Aggregator for MinF64 {
    type Input = f64;
    type Output = Option<f64>;

    fn add(&mut self, value: f64, _t: i64) -> Result<(), EvalError> {
        if !value.is_nan() && (self.value.is_nan() || value < self.value) {
            self.value = value;
        }
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        self.add(other.value, 0)
    }

    fn result(&self) -> Option<f64> {
        (!self.value.is_nan()).then_some(self.value)
    }
}

/// `max` of f64 values in 8 bytes; see [`MinF64`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MaxF64 {
    value: f64,
}

impl Default for MaxF64 {
    fn default() -> Self {
        MaxF64 { value: f64::NAN }
    }
}

impl Aggregator for MaxF64 {
    type Input = f64;
    type Output = Option<f64>;

    fn add(&mut self, value: f64, _t: i64) -> Result<(), EvalError> {
        if !value.is_nan() && (self.value.is_nan() || value > self.value) {
            self.value = value;
        }
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        self.add(other.value, 0)
    }

    fn result(&self) -> Option<f64> {
        (!self.value.is_nan()).then_some(self.value)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_f64_extremes_match_the_generic_ones() {
        let values = [3.5, -1.0, f64::NAN, 7.25, -1.0, 0.0, 7.25];
        let (mut min, mut max) = (MinF64::default(), MaxF64::default());
        assert_eq!((min.result(), max.result()), (None, None), "empty");
        let (mut gmin, mut gmax) = (Min::<f64>::new(), Max::<f64>::new());
        for v in &values {
            min.add(*v, 0).unwrap();
            max.add(*v, 0).unwrap();
            gmin.add(*v, 0).unwrap();
            gmax.add(*v, 0).unwrap();
        }
        assert_eq!((min.result(), max.result()), (Some(-1.0), Some(7.25)));
        assert_eq!((min.result(), max.result()), (gmin.result(), gmax.result()));
        let (mut left, mut right) = (MaxF64::default(), MaxF64::default());
        left.add(2.0, 0).unwrap();
        right.add(9.0, 0).unwrap();
        left.merge(right).unwrap();
        left.merge(MaxF64::default()).unwrap();
        assert_eq!(left.result(), Some(9.0));
        assert_eq!(std::mem::size_of::<MaxF64>(), 8);
    }

    use super::*;

    /// Adds `(value, t)` pairs into a fresh aggregate.
    fn fold<A: Aggregator + Default>(items: impl IntoIterator<Item = (A::Input, i64)>) -> A {
        let mut a = A::default();
        for (v, t) in items {
            a.add(v, t).unwrap();
        }
        a
    }

    /// `merge(fold(left), fold(right))`.
    fn fold_merged<A: Aggregator + Default>(
        left: impl IntoIterator<Item = (A::Input, i64)>,
        right: impl IntoIterator<Item = (A::Input, i64)>,
    ) -> A {
        let mut a: A = fold(left);
        a.merge(fold(right)).unwrap();
        a
    }

    #[test]
    fn count_counts_and_merges() {
        let c: Count = fold(vec![((), 0); 5]);
        assert_eq!(c.result(), 5);
        assert_eq!(c.result(), 5, "result keeps the state");
        let m: Count = fold_merged(vec![((), 0); 3], vec![((), 0); 4]);
        assert_eq!(m.result(), 7);
        assert_eq!(Count::new().result(), 0);
        assert_eq!(Count::new().heap_bytes(), 0);
    }

    #[test]
    fn integer_sums_match_and_merge() {
        let values = [5_i64, -3, 40, 7, -100];
        let s: Sum<i64> = fold(values.iter().map(|&v| (v, 0)));
        assert_eq!(s.result(), -51);
        let m: Sum<i64> = fold_merged(values[..2].iter().map(|&v| (v, 0)), values[2..].iter().map(|&v| (v, 0)));
        assert_eq!(m.result(), -51);
        let u: Sum<u64> = fold([(u64::MAX - 1, 0), (1, 0)]);
        assert_eq!(u.result(), u64::MAX);
        assert_eq!(Sum::<u64>::new().result(), 0);
    }

    #[test]
    fn sum_overflow_fails_and_leaves_state_unchanged() {
        let mut s = Sum::<i64>::new();
        s.add(i64::MAX - 1, 0).unwrap();
        assert_eq!(s.add(2, 0), Err(EvalError::Overflow { op: "sum" }));
        assert_eq!(s.result(), i64::MAX - 1);
        s.add(1, 0).unwrap();
        assert_eq!(s.result(), i64::MAX);

        let mut neg = Sum::<i64>::new();
        neg.add(i64::MIN, 0).unwrap();
        assert!(neg.add(-1, 0).is_err());
        assert_eq!(neg.result(), i64::MIN);

        let mut u = Sum::<u64>::new();
        u.add(u64::MAX, 0).unwrap();
        assert!(u.add(1, 0).is_err());
        assert_eq!(u.result(), u64::MAX);

        let mut a = Sum::<u64>::new();
        a.add(u64::MAX / 2 + 1, 0).unwrap();
        let b = a.clone();
        assert_eq!(a.merge(b), Err(EvalError::Overflow { op: "sum" }));
        assert_eq!(a.result(), u64::MAX / 2 + 1);
    }

    #[test]
    fn float_sum_adds_in_call_order() {
        // (1e16 + 1) + 1 loses both ones; 1 + 1 + 1e16 keeps them: the order is visible.
        let s: Sum<f64> = fold([(1e16, 0), (1.0, 0), (1.0, 0)]);
        assert_eq!(s.result(), 1e16);
        let s: Sum<f64> = fold([(1.0, 0), (1.0, 0), (1e16, 0)]);
        assert_eq!(s.result(), 1e16 + 2.0);
    }

    #[test]
    fn min_and_max_ignore_nan_and_merge() {
        let values = [3.5, f64::NAN, -2.0, 8.25, f64::NAN, 0.0];
        let min: Min<f64> = fold(values.iter().map(|&v| (v, 0)));
        let max: Max<f64> = fold(values.iter().map(|&v| (v, 0)));
        assert_eq!(min.result(), Some(-2.0));
        assert_eq!(max.result(), Some(8.25));
        let nan_first: Min<f64> = fold([(f64::NAN, 0), (4.0, 0)]);
        assert_eq!(nan_first.result(), Some(4.0));
        let only_nan: Max<f64> = fold([(f64::NAN, 0)]);
        assert_eq!(only_nan.result(), None);

        let min: Min<f64> = fold_merged(values[..3].iter().map(|&v| (v, 0)), values[3..].iter().map(|&v| (v, 0)));
        let max: Max<f64> = fold_merged(values[..3].iter().map(|&v| (v, 0)), values[3..].iter().map(|&v| (v, 0)));
        assert_eq!((min.result(), max.result()), (Some(-2.0), Some(8.25)));
        let max: Max<f64> = fold_merged([(1.0, 0)], []);
        assert_eq!(max.result(), Some(1.0));
        let min: Min<i64> = fold_merged([], [(-7, 0)]);
        assert_eq!(min.result(), Some(-7));
    }

    #[test]
    fn min_and_max_of_strings_bools_and_integers() {
        let words = ["pear", "apple", "zucchini", "fig"].map(|w| (w.to_owned(), 0));
        let min: Min<String> = fold(words.clone());
        let max: Max<String> = fold(words);
        assert_eq!(min.result().as_deref(), Some("apple"));
        assert_eq!(max.result().as_deref(), Some("zucchini"));
        let b: Max<bool> = fold([(false, 0), (true, 0), (false, 0)]);
        assert_eq!(b.result(), Some(true));
        let u: Min<u64> = fold([(9, 0), (u64::MAX, 0), (2, 0)]);
        assert_eq!(u.result(), Some(2));
        assert_eq!(Min::<i64>::new().result(), None);
    }

    #[test]
    fn min_and_max_ties_keep_the_existing_value() {
        // 0.0 and -0.0 compare equal, but are distinguishable by their sign bit.
        let min: Min<f64> = fold([(0.0, 0), (-0.0, 0)]);
        assert!(min.result().unwrap().is_sign_positive());
        let max: Max<f64> = fold([(-0.0, 0), (0.0, 0)]);
        assert!(max.result().unwrap().is_sign_negative());
        let merged: Max<f64> = fold_merged([(-0.0, 0)], [(0.0, 0)]);
        assert!(merged.result().unwrap().is_sign_negative());
    }

    #[test]
    fn avg_is_sum_over_count() {
        let values = [0.1, 0.2, 0.3, 1e-3, 7.0];
        let a: Avg = fold(values.iter().map(|&v| (v, 0)));
        let mut sum = 0.0;
        for v in values {
            sum += v;
        }
        assert_eq!(a.result().unwrap().to_bits(), (sum / values.len() as f64).to_bits());
        assert_eq!(Avg::new().result(), None);
        let m: Avg = fold_merged([(2.0, 0), (4.0, 0)], [(9.0, 0)]);
        assert_eq!(m.result(), Some(5.0));
        let m: Avg = fold_merged([], [(9.0, 0)]);
        assert_eq!(m.result(), Some(9.0));
    }

    #[test]
    fn first_and_last_go_by_event_time() {
        let items = [("b", 20), ("a", 10), ("c", 30), ("z", 15)].map(|(v, t)| (v.to_owned(), t));
        let first: First<String> = fold(items.clone());
        let last: Last<String> = fold(items.clone());
        assert_eq!(first.result().as_deref(), Some("a"));
        assert_eq!(last.result().as_deref(), Some("c"));
        assert_eq!(First::<i64>::new().result(), None);
        assert_eq!(Last::<i64>::new().result(), None);

        for split in 0..=items.len() {
            let (l, r) = items.split_at(split);
            let first: First<String> = fold_merged(l.to_vec(), r.to_vec());
            let last: Last<String> = fold_merged(l.to_vec(), r.to_vec());
            assert_eq!(first.result().as_deref(), Some("a"), "split at {split}");
            assert_eq!(last.result().as_deref(), Some("c"), "split at {split}");
        }
    }

    #[test]
    fn first_and_last_tie_rules() {
        let first: First<i64> = fold([(1, 5), (2, 5)]);
        assert_eq!(first.result(), Some(1), "first: ties keep the one added first");
        let last: Last<i64> = fold([(1, 5), (2, 5)]);
        assert_eq!(last.result(), Some(2), "last: ties take the one added last");

        let first: First<i64> = fold_merged([(1, 5)], [(2, 5)]);
        assert_eq!(first.result(), Some(1), "first: merge ties keep self");
        let last: Last<i64> = fold_merged([(1, 5)], [(2, 5)]);
        assert_eq!(last.result(), Some(2), "last: merge ties take other");

        // Merging equals adding everything in order, ties included.
        let items = [(1, 7), (2, 3), (3, 7), (4, 3), (5, 9), (6, 9)];
        for split in 0..=items.len() {
            let (l, r) = items.split_at(split);
            let whole_first: First<i64> = fold(items);
            let whole_last: Last<i64> = fold(items);
            let first: First<i64> = fold_merged(l.to_vec(), r.to_vec());
            let last: Last<i64> = fold_merged(l.to_vec(), r.to_vec());
            assert_eq!(first.result(), whole_first.result(), "split at {split}");
            assert_eq!(last.result(), whole_last.result(), "split at {split}");
        }
        assert_eq!(First::<i64>::new().result(), None);
        let whole_first: First<i64> = fold(items);
        let whole_last: Last<i64> = fold(items);
        assert_eq!((whole_first.result(), whole_last.result()), (Some(2), Some(6)));
    }
}
