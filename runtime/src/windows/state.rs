//! Small helpers shared by the four keyed operators: emitting the keys of one map in key
//! order, the state-size estimate, the eviction batch size, and (for tests) a tiny
//! [`Aggregation`] with a driver.

use super::{Aggregation, Window};
use std::collections::{HashMap, VecDeque};
use std::mem::size_of;

/// Per-entry overhead of a `HashMap` beyond its key and value: the control byte and the
/// unused slots of a table kept at most 7/8 full (an estimate).
const HASH_ENTRY_OVERHEAD: usize = 16;

/// Approximate bytes of one map entry holding `K` and `V` (without heap data of either).
pub(super) fn entry_bytes<K, V>() -> usize {
    size_of::<K>() + size_of::<V>() + HASH_ENTRY_OVERHEAD
}

/// How many keys one eviction removes: a 16th of `max_keys`, at least one, so a full
/// table or keyed window does not scan its state again for every new key.
pub(super) fn eviction_batch(max_keys: usize) -> usize {
    (max_keys / 16).max(1)
}

/// Pushes the result of every key of `map` for `window`, in ascending key order.
pub(super) fn emit_sorted<A: Aggregation>(
    agg: &A,
    out: &mut VecDeque<(A::Output, i64)>,
    map: &HashMap<A::Key, A::Acc>,
    window: Window,
    update: bool,
    time: i64,
) {
    let mut keys: Vec<(&A::Key, &A::Acc)> = map.iter().collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.extend(
        keys.into_iter()
            .map(|(key, acc)| (agg.output(key, window, acc, update), time)),
    );
}

/// The largest multiple of `every` (a positive period, epoch-aligned) that is `<= t`,
/// clamped to `i64::MIN` when it is not representable.
pub(super) fn floor_to(t: i64, every: i64) -> i64 {
    let floor = t as i128 - (t as i128).rem_euclid(every as i128);
    floor.max(i64::MIN as i128) as i64
}

#[cfg(test)]
pub(super) mod testing {
    //! A count-and-sum aggregation keyed by a string, and helpers to drive an operator.

    use crate::errors::EvalError;
    use crate::windows::node::EMIT_CHUNK;
    use crate::windows::{Admit, Aggregation, KeyedOperator, OnFull, StateOptions, Window};

    /// Input `(key, value)`; accumulator `(count, sum)`; the sum overflows into an error.
    pub(crate) struct CountSum;

    /// `(key, window, count, sum, update)`.
    pub(crate) type Out = (String, Window, i64, i64, bool);

    impl Aggregation for CountSum {
        type Input = (String, i64);
        type Key = String;
        type Acc = (i64, i64);
        type Output = Out;

        fn new_acc(&self) -> (i64, i64) {
            (0, 0)
        }

        fn add(&self, acc: &mut (i64, i64), rec: &(String, i64), _t: i64) -> Result<(), EvalError> {
            let sum = acc.1.checked_add(rec.1).ok_or(EvalError::Overflow { op: "+" })?;
            *acc = (acc.0 + 1, sum);
            Ok(())
        }

        fn merge(&self, acc: &mut (i64, i64), other: (i64, i64)) -> Result<(), EvalError> {
            let sum = acc.1.checked_add(other.1).ok_or(EvalError::Overflow { op: "+" })?;
            *acc = (acc.0 + other.0, sum);
            Ok(())
        }

        fn output(&self, key: &String, window: Window, acc: &(i64, i64), update: bool) -> Out {
            (key.clone(), window, acc.0, acc.1, update)
        }

        fn acc_heap_bytes(&self, _acc: &(i64, i64)) -> usize {
            0
        }
    }

    pub(crate) fn opts(allowed_lateness: i64) -> StateOptions {
        StateOptions {
            allowed_lateness,
            max_keys: None,
            on_full: OnFull::Reject,
        }
    }

    pub(crate) fn limited(max_keys: usize, on_full: OnFull) -> StateOptions {
        StateOptions {
            allowed_lateness: 0,
            max_keys: Some(max_keys),
            on_full,
        }
    }

    /// Adds the record `(key, value)` at time `t`.
    pub(crate) fn feed<O: KeyedOperator<CountSum>>(op: &mut O, key: &str, value: i64, t: i64) -> Admit {
        op.process(key, &(key.to_string(), value), t).expect("add failed")
    }

    /// Takes the results emitted so far, in small chunks as the generated code does.
    pub(crate) fn drain<O: KeyedOperator<CountSum>>(op: &mut O) -> Vec<(Out, i64)> {
        let mut all = Vec::new();
        loop {
            let before = all.len();
            op.drain_emitted(&mut all, before + 3);
            if all.len() == before {
                return all;
            }
        }
    }

    /// Takes the results emitted so far as `Stateful` does: [`EMIT_CHUNK`] at a time,
    /// each chunk moved out of a reused buffer.
    pub(crate) fn drain_chunked<O: KeyedOperator<CountSum>>(op: &mut O) -> Vec<(Out, i64)> {
        let (mut all, mut chunk) = (Vec::new(), Vec::new());
        loop {
            op.drain_emitted(&mut chunk, EMIT_CHUNK);
            if chunk.is_empty() {
                return all;
            }
            all.append(&mut chunk);
        }
    }

    /// `n` distinct keys, `k000000`, `k000001`, …, in ascending order.
    pub(crate) fn many_keys(n: i64) -> Vec<String> {
        (0..n).map(|i| format!("k{i:06}")).collect()
    }

    /// Checks that `results` hold exactly one result per key of [`many_keys`]`(n)`, in
    /// key order, each for one record of value `i` (the key's number) in `window`.
    pub(crate) fn assert_each_key_once_in_order(results: &[(Out, i64)], n: i64, window: Window) {
        assert_eq!(results.len(), n as usize, "one result per key");
        for ((i, key), ((k, w, count, sum, _), t)) in many_keys(n).iter().enumerate().zip(results) {
            assert_eq!((k, *w, *count, *sum, *t), (key, window, 1, i as i64, window.end - 1));
        }
    }

    pub(crate) fn w(start: i64, end: i64) -> Window {
        Window { start, end }
    }

    /// One expected result: `(key, window, count, sum, update)` at `time`.
    pub(crate) fn out(key: &str, window: Window, count: i64, sum: i64, update: bool, time: i64) -> (Out, i64) {
        ((key.to_string(), window, count, sum, update), time)
    }
}
