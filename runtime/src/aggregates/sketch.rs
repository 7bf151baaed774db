//! Percentiles and medians: a DDSketch (Masson, Rim and Lee, VLDB 2019).
//!
//! ## Accuracy of `percentile` and `median`
//!
//! With q in [0, 1] and n values, the result approximates the value at rank ⌊q·(n−1)⌋
//! (0-based) of the sorted values: `percentile(x, 0.5)` of 1, 2, 3, 4 is about 2. It is
//! within **1% relative error** of that value (α = 0.01), whatever the distribution and
//! however many values, with these exceptions:
//!
//! - q = 0 and q = 1 return the exact minimum and maximum.
//! - Values with |v| < 1e-9 count as zero (an absolute error below 1e-9). Infinities
//!   are counted apart and returned exactly.
//! - Memory is capped at 2048 buckets (16 KiB) per sign, which covers magnitudes from the
//!   largest one of that sign down to 6·10¹⁷ times smaller. Values of even smaller
//!   magnitude are counted in the lowest bucket: they read as about 1.7·10⁻¹⁸ times the
//!   largest magnitude, an absolute error negligible at the scale of the data. For data
//!   of one sign that only affects the lowest quantiles; in general, the quantiles whose
//!   values are nearest zero. Real data rarely spans 17 orders of magnitude.
//!
//! A value v > 0 goes into bucket i = ⌈ln v / ln γ⌉ with γ = (1+α)/(1−α), so bucket i
//! holds (γ^(i−1), γ^i], and every value in it is within α of 2γ^i/(γ+1), the value the
//! sketch returns for the bucket. Negative values have a store of their own, indexed by
//! |v|. The exact min and max are tracked, and results are clamped into [min, max]. Two
//! sketches merge by adding bucket counts, which gives the same sketch as adding all
//! their values to one, so merged session windows are as accurate as any other.

use super::Aggregator;
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};

const ALPHA: f64 = 0.01;
const GAMMA: f64 = (1.0 + ALPHA) / (1.0 - ALPHA);
/// `GAMMA.ln()` (checked by a test), written out because `ln` is not a `const fn`.
const LN_GAMMA: f64 = 0.020_000_666_706_669_435;
/// Magnitudes below this count as zero (bucket indices would otherwise be unbounded).
const ZERO_THRESHOLD: f64 = 1e-9;
/// The most buckets a store keeps (16 KiB).
const MAX_BUCKETS: usize = 2048;

/// Counts per bucket index for a contiguous range of indices, starting at `offset`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Store {
    counts: Vec<u64>,
    offset: i32,
}

impl Store {
    fn highest(&self) -> i32 {
        self.offset + self.counts.len() as i32 - 1
    }

    /// Makes the range cover `lo..=hi`, collapsing the lowest buckets into the lowest kept
    /// one if it would exceed `MAX_BUCKETS`. Indices below the range then belong to its
    /// first bucket. The range depends only on the lowest and highest indices seen, so
    /// the store ends the same whatever the order of adds and merges.
    fn cover(&mut self, lo: i32, hi: i32) {
        let limit = MAX_BUCKETS as i32 - 1;
        if self.counts.is_empty() {
            self.offset = lo.max(hi - limit);
            self.counts = vec![0; (hi - self.offset + 1) as usize];
            return;
        }
        let new_hi = hi.max(self.highest());
        let new_lo = lo.min(self.offset).max(new_hi - limit);
        if new_lo == self.offset {
            self.counts.resize((new_hi - new_lo + 1) as usize, 0);
            return;
        }
        let mut counts = vec![0; (new_hi - new_lo + 1) as usize];
        for (k, &c) in self.counts.iter().enumerate() {
            let index = (self.offset + k as i32).max(new_lo);
            counts[(index - new_lo) as usize] += c;
        }
        self.counts = counts;
        self.offset = new_lo;
    }

    /// Adds `count` at `index`, which `cover` must have made room for (or collapsed).
    fn bump(&mut self, index: i32, count: u64) {
        self.counts[(index.max(self.offset) - self.offset) as usize] += count;
    }

    fn add(&mut self, index: i32) {
        self.cover(index, index);
        self.bump(index, 1);
    }

    fn merge(&mut self, other: &Store) {
        if other.counts.is_empty() {
            return;
        }
        self.cover(other.offset, other.highest());
        for (k, &c) in other.counts.iter().enumerate() {
            if c > 0 {
                self.bump(other.offset + k as i32, c);
            }
        }
    }

    /// Checks a saved store: at most `MAX_BUCKETS` buckets, within the indices a finite
    /// magnitude can have (so index arithmetic cannot overflow). Returns its total count.
    fn check(&self) -> Result<u64, String> {
        if self.counts.is_empty() {
            return Ok(0);
        }
        let (lowest, highest) = (bucket_index(ZERO_THRESHOLD), bucket_index(f64::MAX));
        if self.counts.len() > MAX_BUCKETS
            || self.offset < lowest
            || self.offset > highest - (self.counts.len() as i32 - 1)
        {
            return Err(format!(
                "percentile: {} buckets from index {} do not fit",
                self.counts.len(),
                self.offset
            ));
        }
        self.counts
            .iter()
            .try_fold(0u64, |sum, &c| sum.checked_add(c))
            .ok_or_else(|| "percentile: bucket counts overflow".to_string())
    }

    /// (index, count) of non-empty buckets, lowest index first.
    fn buckets(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        let offset = self.offset;
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(move |(k, &c)| (offset + k as i32, c))
    }
}

/// The bucket of a finite magnitude `a ≥ ZERO_THRESHOLD`: from −1036 to 35,488.
fn bucket_index(a: f64) -> i32 {
    (a.ln() / LN_GAMMA).ceil() as i32
}

/// The value that represents bucket `i`: within α of every magnitude in it. The top
/// bucket's would exceed `f64::MAX`, which is closer to every finite value in it.
fn bucket_value(i: i32) -> f64 {
    (2.0 * (f64::from(i) * LN_GAMMA).exp() / (GAMMA + 1.0)).min(f64::MAX)
}

/// An approximate quantile of the values (see the module docs for the accuracy).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "SavedPercentile")]
pub struct Percentile {
    q: f64,
    positive: Store,
    /// Negative values, by magnitude.
    negative: Store,
    zeros: u64,
    /// −∞ values, kept out of the stores, where one would collapse every other bucket.
    /// (+∞ values are counted only in `count`: they are whatever ranks lie past the
    /// positive store.)
    neg_infinities: u64,
    count: u64,
    min: f64,
    max: f64,
}

/// [`Percentile`] as saved in a checkpoint, checked before use (see `TryFrom`).
#[derive(Deserialize)]
struct SavedPercentile {
    q: f64,
    positive: Store,
    negative: Store,
    zeros: u64,
    neg_infinities: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl TryFrom<SavedPercentile> for Percentile {
    type Error = String;

    /// Refuses a sketch that could not have been built: a quantile outside [0, 1], stores
    /// out of range, or more values in the buckets than `count` (the rank walk would
    /// overflow).
    fn try_from(s: SavedPercentile) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&s.q) {
            return Err(format!("percentile: quantile {} outside [0, 1]", s.q));
        }
        let held = [s.positive.check()?, s.negative.check()?, s.zeros, s.neg_infinities]
            .into_iter()
            .try_fold(0u64, u64::checked_add);
        if held.is_none_or(|held| held > s.count) {
            return Err("percentile: more values in the buckets than counted".into());
        }
        Ok(Percentile {
            q: s.q,
            positive: s.positive,
            negative: s.negative,
            zeros: s.zeros,
            neg_infinities: s.neg_infinities,
            count: s.count,
            min: s.min,
            max: s.max,
        })
    }
}

impl Percentile {
    /// The `q` quantile, q in [0, 1] (the compiler checks it).
    ///
    /// # Panics
    ///
    /// If `q` is outside [0, 1] or NaN: that is a bug in the compiler, not bad data.
    pub fn new(q: f64) -> Self {
        assert!((0.0..=1.0).contains(&q), "percentile q must be in [0, 1], got {q}");
        Percentile {
            q,
            positive: Store::default(),
            negative: Store::default(),
            zeros: 0,
            neg_infinities: 0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The median, `Percentile::new(0.5)`.
    pub fn median() -> Self {
        Percentile::new(0.5)
    }

    /// Any quantile of the same sketch (`result()` is `quantile(q)` for the `q` it was
    /// built with), so several percentiles of one field can share one sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        if q <= 0.0 {
            return Some(self.min);
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let value = self.value_at_rank(rank);
        // Clamping only moves the answer towards the true value, which is in [min, max].
        Some(value.max(self.min).min(self.max))
    }

    /// The representative value of the bucket holding the value of 0-based `rank`,
    /// walking the sorted order: −∞, negatives from the largest magnitude, zeros,
    /// positives, +∞.
    fn value_at_rank(&self, rank: u64) -> f64 {
        let mut seen = self.neg_infinities;
        if seen > rank {
            return f64::NEG_INFINITY;
        }
        for (i, c) in self.negative.buckets().rev() {
            seen += c;
            if seen > rank {
                return -bucket_value(i);
            }
        }
        seen += self.zeros;
        if seen > rank {
            return 0.0;
        }
        for (i, c) in self.positive.buckets() {
            seen += c;
            if seen > rank {
                return bucket_value(i);
            }
        }
        f64::INFINITY
    }
}

impl Aggregator for Percentile {
    type Input = f64;
    type Output = Option<f64>;

    /// A NaN value is ignored, as by min and max.
    fn add(&mut self, value: f64, _t: i64) -> Result<(), EvalError> {
        if value.is_nan() {
            return Ok(());
        }
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value.abs() < ZERO_THRESHOLD {
            self.zeros += 1;
        } else if value == f64::NEG_INFINITY {
            self.neg_infinities += 1;
        } else if value == f64::INFINITY {
            // Counted in `count` only.
        } else if value > 0.0 {
            self.positive.add(bucket_index(value));
        } else {
            self.negative.add(bucket_index(-value));
        }
        Ok(())
    }

    /// Keeps `self`'s q (both sides are the same field of the same window anyway).
    fn merge(&mut self, other: Self) -> Result<(), EvalError> {
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zeros += other.zeros;
        self.neg_infinities += other.neg_infinities;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    fn result(&self) -> Option<f64> {
        self.quantile(self.q)
    }

    fn heap_bytes(&self) -> usize {
        (self.positive.counts.capacity() + self.negative.counts.capacity()) * size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::SplitMix64;

    const QS: [f64; 7] = [0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0];

    fn sketch_of(values: &[f64]) -> Percentile {
        let mut p = Percentile::median();
        for &v in values {
            p.add(v, 0).unwrap();
        }
        p
    }

    /// The value at rank ⌊q·(n−1)⌋ of the sorted values.
    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn assert_within_alpha(got: f64, exact: f64, what: &str) {
        // α, plus room for rounding in the last bits of ln/exp.
        assert!(
            (got - exact).abs() <= exact.abs() * (ALPHA + 1e-12),
            "{what}: got {got}, exact {exact}"
        );
    }

    /// Normal(0, 1) by Box–Muller.
    fn normal(rng: &mut SplitMix64) -> f64 {
        let u1 = 1.0 - rng.next_f64();
        let u2 = rng.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn datasets() -> Vec<(&'static str, Vec<f64>)> {
        let n = 100_000;
        let mut rng = SplitMix64::new(42);
        let uniform = (0..n).map(|_| rng.next_f64() * 1000.0).collect();
        let log_normal = (0..n).map(|_| (normal(&mut rng) * 2.0).exp()).collect();
        let mixed_signs = (0..n)
            .map(|_| {
                let v = (normal(&mut rng) * 3.0).exp();
                if rng.next_u64().is_multiple_of(3) {
                    -v
                } else {
                    v
                }
            })
            .collect();
        let negatives = (0..n).map(|_| -1e6 * rng.next_f64() - 1e-3).collect();
        let integers = (0..n).map(|_| (rng.next_u64() % 50) as f64).collect();
        vec![
            ("uniform", uniform),
            ("log-normal", log_normal),
            ("mixed signs", mixed_signs),
            ("negatives", negatives),
            ("integers with zeros", integers),
        ]
    }

    #[test]
    fn constants_agree() {
        assert!((GAMMA.ln() - LN_GAMMA).abs() <= 1e-17);
        const { assert!(((GAMMA - 1.0) / (GAMMA + 1.0) - ALPHA).abs() < 1e-15) };
        assert_eq!(bucket_index(f64::MAX), 35_488);
        assert_eq!(bucket_index(ZERO_THRESHOLD), -1036);
        assert_within_alpha(bucket_value(bucket_index(f64::MAX)), f64::MAX, "f64::MAX");
    }

    #[test]
    fn bucket_values_are_within_alpha_of_their_bucket() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..100_000 {
            let v = (rng.next_f64() * 80.0 - 20.0).exp();
            assert_within_alpha(bucket_value(bucket_index(v)), v, "bucket");
        }
        // Exact powers of γ sit on bucket edges.
        for i in [-1000, -1, 0, 1, 2, 1000] {
            let v = (f64::from(i) * LN_GAMMA).exp();
            assert_within_alpha(bucket_value(bucket_index(v)), v, "edge");
        }
    }

    #[test]
    fn quantiles_are_within_one_percent_of_the_exact_rank() {
        for (name, values) in datasets() {
            let p = sketch_of(&values);
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            for q in QS {
                let got = p.quantile(q).unwrap();
                assert_within_alpha(got, exact_quantile(&sorted, q), &format!("{name}, q = {q}"));
                let mut single = Percentile::new(q);
                values.iter().for_each(|&v| single.add(v, 0).unwrap());
                assert_eq!(single.result(), Some(got), "{name}: result() is quantile(q)");
            }
            assert_eq!(p.quantile(0.0), Some(sorted[0]), "{name}: q = 0 is the exact min");
            assert_eq!(
                p.quantile(1.0),
                Some(sorted[sorted.len() - 1]),
                "{name}: q = 1 is the exact max"
            );
        }
    }

    #[test]
    fn merge_of_halves_answers_like_one_sketch() {
        for (name, values) in datasets() {
            let whole = sketch_of(&values);
            for split in [0, 1, values.len() / 2, values.len()] {
                let (l, r) = values.split_at(split);
                let mut merged = sketch_of(l);
                merged.merge(sketch_of(r)).unwrap();
                for q in QS {
                    assert_eq!(
                        merged.quantile(q),
                        whole.quantile(q),
                        "{name}, split at {split}, q = {q}"
                    );
                }
            }
        }
    }

    #[test]
    fn small_inputs() {
        assert_eq!(Percentile::median().result(), None);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        // Rank ⌊0.5 · 99⌋ = 49: the value 50.
        assert_within_alpha(sketch_of(&hundred).result().unwrap(), 50.0, "median of 1..=100");
        let one = sketch_of(&[-7.5]);
        for q in QS {
            assert_eq!(
                one.quantile(q),
                Some(-7.5),
                "a single value is returned exactly (clamped)"
            );
        }
        assert_eq!(sketch_of(&[0.0, 0.0, 1e-12, 5.0]).result(), Some(0.0));
        assert_eq!(
            sketch_of(&[3.0, f64::NAN, f64::NAN]).result(),
            Some(3.0),
            "NaN is ignored"
        );
        assert_eq!(sketch_of(&[f64::NAN]).result(), None);
        let inf = sketch_of(&[1.0, 2.0, f64::INFINITY]);
        assert_eq!(inf.quantile(1.0), Some(f64::INFINITY));
        assert_within_alpha(inf.quantile(0.5).unwrap(), 2.0, "median next to an infinity");
        let neg_inf = sketch_of(&[f64::NEG_INFINITY, -2.0, 1.0]);
        assert_eq!(neg_inf.quantile(0.0), Some(f64::NEG_INFINITY));
        assert_within_alpha(neg_inf.quantile(0.5).unwrap(), -2.0, "median next to -inf");
        let infs = sketch_of(&[f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, 4.0, f64::NEG_INFINITY]);
        assert_eq!(infs.quantile(0.25), Some(f64::NEG_INFINITY));
        assert_within_alpha(infs.quantile(0.5).unwrap(), 4.0, "median between infinities");
        assert_eq!(infs.quantile(0.75), Some(f64::INFINITY));
        assert_eq!(infs.heap_bytes(), 8, "infinities take no buckets");
        let top = sketch_of(&[1.0, f64::MAX, f64::INFINITY]);
        assert_eq!(top.result(), Some(f64::MAX), "the top bucket does not overflow");
        assert_eq!(Percentile::median().quantile(0.5), None);
    }

    #[test]
    #[should_panic(expected = "percentile q must be in [0, 1]")]
    fn q_outside_the_unit_interval_is_a_bug() {
        Percentile::new(1.5);
    }

    #[test]
    fn wide_ranges_collapse_the_lowest_buckets_and_stay_bounded() {
        // Magnitudes from 1e-8 to 1e30: more than 2048 buckets.
        let mut rng = SplitMix64::new(9);
        let values: Vec<f64> = (0..50_000).map(|_| 10f64.powf(rng.next_f64() * 38.0 - 8.0)).collect();
        let p = sketch_of(&values);
        assert_eq!(p.positive.counts.len(), MAX_BUCKETS);
        assert!(p.heap_bytes() <= MAX_BUCKETS * 8 + 64, "{}", p.heap_bytes());
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        // Everything above 1e30 / 6e17 ≈ 1.7e12 keeps full accuracy: here q ≥ ~0.55.
        for q in [0.6, 0.9, 0.99] {
            assert_within_alpha(p.quantile(q).unwrap(), exact_quantile(&sorted, q), &format!("q = {q}"));
        }
        // Below, the error stays tiny next to the data's scale.
        let low = p.quantile(0.01).unwrap();
        assert!((low - exact_quantile(&sorted, 0.01)).abs() < 1e30 * 1e-17, "{low}");
        // The collapsed store is still order- and merge-independent.
        let mut reversed = sorted.clone();
        reversed.reverse();
        let (l, r) = values.split_at(20_000);
        let mut merged = sketch_of(l);
        merged.merge(sketch_of(r)).unwrap();
        for q in QS {
            assert_eq!(sketch_of(&sorted).quantile(q), p.quantile(q), "sorted, q = {q}");
            assert_eq!(sketch_of(&reversed).quantile(q), p.quantile(q), "reversed, q = {q}");
            assert_eq!(merged.quantile(q), p.quantile(q), "merged, q = {q}");
        }
    }

    #[test]
    fn heap_grows_with_the_range_of_values() {
        let mut p = Percentile::median();
        assert_eq!(p.heap_bytes(), 0);
        p.add(1.0, 0).unwrap();
        let one = p.heap_bytes();
        assert!(one >= 8);
        p.add(1000.0, 0).unwrap();
        let wider = p.heap_bytes();
        assert!(wider > one, "{wider}");
        p.add(-5.0, 0).unwrap();
        assert!(p.heap_bytes() > wider);
        // More values in the same buckets cost nothing.
        let before = p.heap_bytes();
        (0..1000).for_each(|i| p.add(1.0 + f64::from(i) * 0.999, 0).unwrap());
        assert_eq!(p.heap_bytes(), before);
    }
}
