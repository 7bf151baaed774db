//! Variance and standard deviation, population and sample.
//!
//! All four keep the same three numbers, updated with Welford's online algorithm, which
//! stays accurate when the mean is large compared to the spread (the textbook
//! `Σx² − (Σx)²/n` loses every digit there). Session windows merge with the parallel
//! formula of Chan, Golub and LeVeque. A NaN or infinite input makes the result NaN, as
//! it would for a sum.

use super::Aggregator;
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};

/// Count, mean and sum of squared deviations from the mean (`m2`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn merge(&mut self, other: Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other;
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * (nb / n);
        self.m2 += other.m2 + delta * delta * (na * nb / n);
        self.n += other.n;
    }

    /// `m2 / (n − ddof)`, None unless `n > ddof` (ddof 0: population, 1: sample).
    fn variance(&self, ddof: u64) -> Option<f64> {
        (self.n > ddof).then(|| self.m2 / (self.n - ddof) as f64)
    }
}

macro_rules! moment_aggregate {
    ($(#[$doc:meta])* $name:ident, $ddof:expr, $finish:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        pub struct $name {
            moments: Moments,
        }

        impl $name {
            pub fn new() -> Self {
                $name::default()
            }
        }

        impl Aggregator for $name {
            type Input = f64;
            type Output = Option<f64>;

            fn add(&mut self, value: f64, _t: i64) -> Result<(), EvalError> {
                self.moments.add(value);
                Ok(())
            }

            fn merge(&mut self, other: Self) -> Result<(), EvalError> {
                self.moments.merge(other.moments);
                Ok(())
            }

            fn result(&self) -> Option<f64> {
                self.moments.variance($ddof).map($finish)
            }
        }
    };
}

moment_aggregate!(
    /// Population variance, `Σ(x − mean)² / n`; None for no values.
    Variance,
    0,
    |v: f64| v
);
moment_aggregate!(
    /// Sample variance, `Σ(x − mean)² / (n − 1)`; None for fewer than two values.
    VarianceSample,
    1,
    |v: f64| v
);
moment_aggregate!(
    /// Population standard deviation, the square root of [`Variance`].
    Stddev,
    0,
    f64::sqrt
);
moment_aggregate!(
    /// Sample standard deviation, the square root of [`VarianceSample`].
    StddevSample,
    1,
    f64::sqrt
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::SplitMix64;

    /// Two-pass population and sample variance, computed independently of Welford.
    fn two_pass(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let ss: f64 = values.iter().map(|x| (x - mean) * (x - mean)).sum();
        (ss / n, ss / (n - 1.0))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
    }

    fn fold<A: Aggregator<Input = f64> + Default>(values: &[f64]) -> A {
        let mut a = A::default();
        for &v in values {
            a.add(v, 0).unwrap();
        }
        a
    }

    #[test]
    fn small_known_values() {
        // The classic example: mean 5, population variance 4, sample variance 32/7.
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(fold::<Variance>(&values).result(), Some(4.0));
        assert_eq!(fold::<Stddev>(&values).result(), Some(2.0));
        assert!(close(fold::<VarianceSample>(&values).result().unwrap(), 32.0 / 7.0));
        assert!(close(
            fold::<StddevSample>(&values).result().unwrap(),
            (32.0f64 / 7.0).sqrt()
        ));
    }

    #[test]
    fn empty_and_single_values() {
        assert_eq!(Variance::new().result(), None);
        assert_eq!(Stddev::new().result(), None);
        assert_eq!(fold::<Variance>(&[3.0]).result(), Some(0.0));
        assert_eq!(fold::<Stddev>(&[3.0]).result(), Some(0.0));
        assert_eq!(fold::<VarianceSample>(&[3.0]).result(), None);
        assert_eq!(fold::<StddevSample>(&[3.0]).result(), None);
        assert_eq!(fold::<VarianceSample>(&[3.0, 5.0]).result(), Some(2.0));
    }

    #[test]
    fn matches_two_pass_with_a_large_mean() {
        // A mean of 1e9 and a spread of ~1: the condition number is ~1e9, so any
        // one-pass method loses ~9 digits to rounding; Welford keeps the rest, while the
        // textbook Σx²/n − mean² loses all of them.
        let mut rng = SplitMix64::new(7);
        let values: Vec<f64> = (0..10_000).map(|_| 1e9 + rng.next_f64() * 3.0).collect();
        let (pop, sample) = two_pass(&values);
        let rel = |got: f64, exact: f64| (got - exact).abs() / exact;
        assert!(rel(fold::<Variance>(&values).result().unwrap(), pop) < 1e-6);
        assert!(rel(fold::<VarianceSample>(&values).result().unwrap(), sample) < 1e-6);
        assert!(rel(fold::<Stddev>(&values).result().unwrap(), pop.sqrt()) < 1e-6);
        assert!(rel(fold::<StddevSample>(&values).result().unwrap(), sample.sqrt()) < 1e-6);
        let n = values.len() as f64;
        let textbook = values.iter().map(|x| x * x).sum::<f64>() / n - (values.iter().sum::<f64>() / n).powi(2);
        assert!(
            rel(textbook, pop) > 1.0,
            "the test data must defeat the textbook formula"
        );
    }

    #[test]
    fn merge_equals_adding_everything() {
        let mut rng = SplitMix64::new(11);
        let values: Vec<f64> = (0..1000).map(|_| rng.next_f64() * 200.0 - 50.0).collect();
        let (pop, sample) = two_pass(&values);
        for split in [0, 1, 2, 500, 999, 1000] {
            let (l, r) = values.split_at(split);
            let mut v = fold::<Variance>(l);
            v.merge(fold(r)).unwrap();
            assert!(close(v.result().unwrap(), pop), "split at {split}");
            let mut s = fold::<StddevSample>(l);
            s.merge(fold(r)).unwrap();
            assert!(close(s.result().unwrap(), sample.sqrt()), "split at {split}");
        }
        let mut empty = Variance::new();
        empty.merge(Variance::new()).unwrap();
        assert_eq!(empty.result(), None);
    }
}
