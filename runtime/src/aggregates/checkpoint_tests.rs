//! Every aggregator saved and restored (postcard, as in a checkpoint): the same result,
//! bit for bit, the same behaviour afterwards, and an error for damaged state.

use super::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// Saves `a` and restores it; checks that the restored aggregate gives the same result
/// (compared through `view`, which turns floats into bits), and still does after `more`
/// values are added to both. Every proper prefix of the saved bytes must fail to restore.
/// Returns the saved bytes.
fn check<A, V>(a: &A, more: &[(A::Input, i64)], view: impl Fn(A::Output) -> V) -> Vec<u8>
where
    A: Aggregator + Clone + Serialize + DeserializeOwned,
    A::Input: Clone,
    V: PartialEq + Debug,
{
    let bytes = postcard::to_allocvec(a).expect("saved");
    let mut restored: A = postcard::from_bytes(&bytes).expect("restored");
    assert_eq!(
        view(restored.result()),
        view(a.result()),
        "the same result after restoring"
    );
    let mut original = a.clone();
    for (v, t) in more {
        assert_eq!(
            original.add(v.clone(), *t).is_ok(),
            restored.add(v.clone(), *t).is_ok(),
            "the same add"
        );
    }
    assert_eq!(
        view(restored.result()),
        view(original.result()),
        "the same result after more values"
    );
    for len in 0..bytes.len() {
        assert!(
            postcard::from_bytes::<A>(&bytes[..len]).is_err(),
            "{len} of {} bytes restored",
            bytes.len()
        );
    }
    bytes
}

fn fold<A: Aggregator>(mut a: A, values: impl IntoIterator<Item = A::Input>) -> A {
    for (t, v) in values.into_iter().enumerate() {
        a.add(v, t as i64).expect("added");
    }
    a
}

fn bits(v: Option<f64>) -> Option<u64> {
    v.map(f64::to_bits)
}

const EDGES: [f64; 7] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    f64::MIN_POSITIVE,
    f64::MAX,
    -1.5,
];

#[test]
fn count_and_integer_sums_keep_their_limits() {
    check(&Count::new(), &[((), 0)], |r| r);
    check(&fold(Count::new(), [(), ()]), &[((), 0)], |r| r);
    let max: Count = postcard::from_bytes(&postcard::to_allocvec(&i64::MAX).unwrap()).unwrap();
    let mut restored = max.clone();
    assert!(
        restored.add((), 0).is_err(),
        "a restored count still refuses to overflow"
    );
    assert_eq!(restored.result(), i64::MAX);

    check(&Sum::<i64>::new(), &[(7, 0)], |r| r);
    check(&fold(Sum::<i64>::new(), [i64::MAX]), &[(1, 0), (i64::MIN, 0)], |r| r);
    check(&fold(Sum::<i64>::new(), [i64::MIN]), &[(-1, 0)], |r| r);
    check(&fold(Sum::<u64>::new(), [u64::MAX]), &[(1, 0)], |r| r);
}

#[test]
fn float_state_round_trips_bit_for_bit() {
    for v in EDGES {
        check(&fold(Sum::<f64>::new(), [v]), &[(1.0, 0)], f64::to_bits);
        check(&fold(Avg::new(), [v]), &[(2.0, 0)], bits);
        check(&fold(MinF64::default(), [v]), &[(0.5, 0)], bits);
        check(&fold(MaxF64::default(), [v]), &[(0.5, 0)], bits);
        check(&fold(Min::<f64>::new(), [v]), &[(0.5, 0)], bits);
        check(&fold(Max::<f64>::new(), [v]), &[(0.5, 0)], bits);
        check(&fold(Variance::new(), [v, 3.0]), &[(1.0, 0)], bits);
        check(&fold(StddevSample::new(), [v, 3.0]), &[(1.0, 0)], bits);
    }
    // Empty: no value, and the NaN that marks it survives.
    check(&Avg::new(), &[(1.0, 0)], bits);
    check(&MinF64::default(), &[(1.0, 0)], bits);
    check(&MaxF64::default(), &[], bits);
    check(&VarianceSample::new(), &[(1.0, 0), (2.0, 0)], bits);
    check(&Stddev::new(), &[], bits);
    let sum = fold(Sum::<f64>::new(), [0.1, 0.2, 1e300]);
    check(&sum, &[(-1e300, 0)], f64::to_bits);
}

#[test]
fn extremes_first_last_and_collect_round_trip() {
    check(&fold(Min::<i64>::new(), [i64::MAX, i64::MIN]), &[(0, 0)], |r| r);
    check(&fold(Max::<i64>::new(), [i64::MIN]), &[(i64::MAX, 0)], |r| r);
    check(&Min::<String>::new(), &[("b".into(), 0)], |r| r);
    check(
        &fold(Max::<String>::new(), ["é".into(), "".into()]),
        &[("z".into(), 0)],
        |r| r,
    );
    check(&fold(Min::<bool>::new(), [true]), &[(false, 0)], |r| r);
    let first = fold(First::<String>::new(), ["a".into(), "b".into()]);
    check(&first, &[("earlier".into(), -1), ("later".into(), 99)], |r| r);
    check(&First::<Option<i64>>::new(), &[(None, 5)], |r| r);
    let last = fold(Last::<i64>::new(), [i64::MIN, i64::MAX]);
    check(&last, &[(0, 1), (5, 0)], |r| r);
    check(
        &fold(Collect::<String>::new(3), ["x".into()]),
        &[("y".into(), 0)],
        |r| r,
    );
    let full = fold(Collect::<i64>::new(2), [i64::MIN, i64::MAX, 0]);
    let bytes = check(&full, &[(1, 0)], |r| r);
    let restored: Collect<i64> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(restored.omitted(), 1, "the values left out are still counted");
    check(&Collect::<f64>::new(0), &[(1.0, 0)], |r| r.len());
}

#[test]
fn distinct_counts_round_trip_sparse_and_dense() {
    check(&CountDistinct::<String>::new(), &[("a".into(), 0)], |r| r);
    let floats = fold(CountDistinct::<u64>::new(), EDGES.map(f64::to_bits));
    check(&floats, &[(f64::NAN.to_bits(), 0), (2.5f64.to_bits(), 0)], |r| r);

    let empty = ApproxCountDistinct::<i64>::new();
    check(&empty, &[(1, 0)], |r| r);
    let sparse = fold(ApproxCountDistinct::<i64>::new(), 0..200);
    assert!(sparse.heap_bytes() < 4096, "still exact");
    // Past 256 hashes after restoring: both switch to registers the same way.
    let more: Vec<(i64, i64)> = (1_000..1_100).map(|v| (v, 0)).collect();
    check(&sparse, &more, |r| r);
    let dense = fold(
        ApproxCountDistinct::<String>::new(),
        (0..10_000).map(|i| format!("k{i}")),
    );
    assert_eq!(dense.heap_bytes(), 4096, "registers");
    check(&dense, &[("new".into(), 0)], |r| r);
}

#[test]
fn percentile_sketches_round_trip() {
    check(&Percentile::median(), &[(1.0, 0)], bits);
    let mut edges = EDGES.to_vec();
    edges.extend([0.0, 1e-12, -3.0, 250.0, 1e-300]);
    for q in [0.0, 0.01, 0.5, 0.99, 1.0] {
        let p = fold(Percentile::new(q), edges.iter().copied());
        check(&p, &[(7.0, 0), (f64::NEG_INFINITY, 0)], bits);
        // Any other quantile of the restored sketch too.
        let restored: Percentile = postcard::from_bytes(&postcard::to_allocvec(&p).unwrap()).unwrap();
        for other in [0.1, 0.3, 0.7, 0.9] {
            assert_eq!(bits(restored.quantile(other)), bits(p.quantile(other)));
        }
    }
}

/// Bytes that decode as `T` (`Ok`) or not (`Err`), never a panic.
fn decodes<T: DeserializeOwned>(value: &impl Serialize) -> Result<T, postcard::Error> {
    postcard::from_bytes(&postcard::to_allocvec(value).unwrap())
}

#[test]
fn impossible_saved_state_is_refused() {
    // Sketch variants: 0 = sparse hashes, 1 = dense registers.
    type Approx = ApproxCountDistinct<i64>;
    assert!(
        decodes::<Approx>(&(1u32, vec![0u8; 4096])).is_ok(),
        "the shape is right"
    );
    assert!(decodes::<Approx>(&(1u32, vec![0u8; 100])).is_err(), "too few registers");
    let mut registers = vec![0u8; 4096];
    registers[7] = 64;
    assert!(
        decodes::<Approx>(&(1u32, registers)).is_err(),
        "a register past any rank"
    );
    assert!(decodes::<Approx>(&(0u32, vec![1u64, 5, 9])).is_ok());
    assert!(
        decodes::<Approx>(&(0u32, vec![5u64, 1])).is_err(),
        "hashes out of order"
    );
    assert!(decodes::<Approx>(&(0u32, vec![5u64, 5])).is_err(), "a hash twice");
    assert!(
        decodes::<Approx>(&(0u32, (0..300u64).collect::<Vec<_>>())).is_err(),
        "too many"
    );
    assert!(decodes::<Approx>(&(2u32, vec![0u8])).is_err(), "no such variant");

    // Collect: values, limit, omitted.
    assert!(decodes::<Collect<i64>>(&(vec![1i64, 2], 2usize, 0u64)).is_ok());
    assert!(
        decodes::<Collect<i64>>(&(vec![1i64, 2, 3], 2usize, 0u64)).is_err(),
        "over its limit"
    );

    // Percentile: q, positive and negative stores (counts, offset), zeros, -inf, count, min, max.
    let store = |counts: Vec<u64>, offset: i32| (counts, offset);
    let empty = store(vec![], 0);
    let saved =
        |q: f64, positive: (Vec<u64>, i32), count: u64| (q, positive, empty.clone(), 0u64, 0u64, count, 1.0f64, 2.0f64);
    assert!(decodes::<Percentile>(&saved(0.5, store(vec![1, 2], 10), 3)).is_ok());
    assert!(
        decodes::<Percentile>(&saved(1.5, store(vec![1, 2], 10), 3)).is_err(),
        "q outside [0, 1]"
    );
    assert!(
        decodes::<Percentile>(&saved(0.5, store(vec![1, 2], 10), 2)).is_err(),
        "more than counted"
    );
    assert!(decodes::<Percentile>(&saved(0.5, store(vec![u64::MAX, 2], 10), u64::MAX)).is_err());
    assert!(
        decodes::<Percentile>(&saved(0.5, store(vec![1], i32::MAX), 1)).is_err(),
        "index past f64::MAX"
    );
    assert!(
        decodes::<Percentile>(&saved(0.5, store(vec![1], -5_000), 1)).is_err(),
        "index below 1e-9"
    );
    assert!(
        decodes::<Percentile>(&saved(0.5, store(vec![0; 3000], 0), 1)).is_err(),
        "too many buckets"
    );
}

#[test]
fn garbage_never_panics() {
    let mut rng = SplitMix64::new(7);
    for _ in 0..2_000 {
        let len = (rng.next_u64() % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        // Whatever decodes must also be usable.
        if let Ok(mut p) = postcard::from_bytes::<Percentile>(&bytes) {
            let _ = p.add(3.0, 0);
            let _ = p.result();
        }
        if let Ok(mut a) = postcard::from_bytes::<ApproxCountDistinct<i64>>(&bytes) {
            let _ = a.add(3, 0);
            let _ = a.result();
        }
        if let Ok(mut c) = postcard::from_bytes::<Collect<String>>(&bytes) {
            let _ = c.merge(Collect::new(2));
        }
        let _ = postcard::from_bytes::<CountDistinct<String>>(&bytes);
        let _ = postcard::from_bytes::<First<String>>(&bytes);
        let _ = postcard::from_bytes::<Variance>(&bytes).map(|v| v.result());
    }
}
