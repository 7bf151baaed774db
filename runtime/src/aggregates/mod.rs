//! The running aggregates of windows and tables.
//!
//! A window or table keeps one accumulator struct per (key, window); the compiler emits
//! it with one field per aggregate of the spec, each of a type from this module. The
//! generated code drives every field through [`Aggregator`]:
//!
//! - [`Aggregator::add`] for each record, with the record's event time in Unix ms. Nulls
//!   are skipped by the generated code, so inputs are never `Option`.
//! - [`Aggregator::merge`] when two session windows merge. The second argument is not
//!   "later" in any sense that matters: aggregates that depend on order ([`First`],
//!   [`Last`]) decide by event time, and the others are commutative (integer sums exactly,
//!   float sums up to rounding).
//! - [`Aggregator::result`] when the window fires. It borrows: a window may fire again
//!   when late data arrives, so the state must survive.
//!
//! Everything is deterministic: nothing here iterates a hash map into a result, and the
//! approximate aggregates hash with a fixed, seedless hasher, so a pipeline given the
//! same input gives the same output on every run.
//!
//! | type | input | output | memory per instance |
//! |---|---|---|---|
//! | [`Count`] | `()` | `i64` | none on the heap |
//! | [`Sum<T>`] (`i64`, `u64`, `f64`) | `T` | `T` | none |
//! | [`Min<T>`], [`Max<T>`] | `T` | `Option<T>` | none (besides `T`'s own) |
//! | [`Avg`] | `f64` | `Option<f64>` | none |
//! | [`First<T>`], [`Last<T>`] | `T` | `Option<T>` | none (besides `T`'s own) |
//! | [`Variance`], [`VarianceSample`], [`Stddev`], [`StddevSample`] | `f64` | `Option<f64>` | none |
//! | [`CountDistinct<T>`] | `T` | `i64` | one entry per distinct value |
//! | [`ApproxCountDistinct<T>`] | `T` | `i64` | ≤ 2 KiB sparse, then 4 KiB |
//! | [`Percentile`] | `f64` | `Option<f64>` | ≤ 16 KiB per sign, usually far less |
//! | [`Collect<T>`] | `T` | `Vec<T>` | up to `limit` values |
//!
//! Integer overflow is an [`EvalError`](crate::errors::EvalError) (the record becomes a
//! dead letter) and leaves the state as it was, like every other failed `add`.

mod basic;
#[cfg(test)]
mod checkpoint_tests;
mod collect;
mod distinct;
mod hash;
mod moments;
mod sketch;

pub use basic::{Avg, Count, First, Last, Max, MaxF64, Min, MinF64, Sum};
pub use collect::Collect;
pub use distinct::{ApproxCountDistinct, CountDistinct};
pub use moments::{Stddev, StddevSample, Variance, VarianceSample};
pub use sketch::Percentile;

use crate::errors::EvalError;

/// One running aggregate (a field of a window's accumulator).
pub trait Aggregator {
    type Input;
    type Output;
    /// Adds one value, from a record with event time `t` (Unix ms).
    fn add(&mut self, value: Self::Input, t: i64) -> Result<(), EvalError>;
    /// Folds `other` into `self` (session windows merging). `other` holds later-arrived
    /// state only in the sense of being the second argument; order-sensitive aggregates
    /// decide by event time (see [`First`] and [`Last`]).
    fn merge(&mut self, other: Self) -> Result<(), EvalError>
    where
        Self: Sized;
    /// The current result; the state is kept (a window may fire again with late data).
    fn result(&self) -> Self::Output;
    /// Approximate heap bytes held (for the state-size metric), excluding
    /// `size_of::<Self>()`.
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// A deterministic generator for the tests of the approximate aggregates.
#[cfg(test)]
pub(crate) struct SplitMix64(u64);

#[cfg(test)]
impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
