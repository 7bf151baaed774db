//! Small helpers shared by the four keyed operators: emitting the keys of one map in key
//! order, the state-size estimate, the eviction batch size, saving and restoring state,
//! and (for tests) a tiny [`Aggregation`] with a driver.

use super::{Aggregation, Window};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use std::collections::VecDeque;
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
pub(super) fn emit_sorted<'a, A: Aggregation + 'a>(
    agg: &A,
    out: &mut VecDeque<(A::Output, i64)>,
    map: impl IntoIterator<Item = (&'a A::Key, &'a A::Acc)>,
    window: Window,
    update: bool,
    time: i64,
) {
    let Sorted(keys) = Sorted::new(map);
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

/// The entries of a hash map in ascending key order; saved as a map in that order, so
/// the same state always gives the same bytes (an unchanged pipeline does not rewrite
/// its checkpoint after a restart). It is read back as a plain `HashMap`.
pub(super) struct Sorted<'a, K, V>(Vec<(&'a K, &'a V)>);

impl<'a, K: Ord, V> Sorted<'a, K, V> {
    pub(super) fn new(map: impl IntoIterator<Item = (&'a K, &'a V)>) -> Self {
        let mut entries: Vec<(&K, &V)> = map.into_iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Sorted(entries)
    }
}

impl<K: Serialize, V: Serialize> Serialize for Sorted<'_, K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().copied())
    }
}

/// Appends `state` to `out` (postcard).
pub(crate) fn save<T: Serialize>(state: &T, out: &mut Vec<u8>) -> Result<(), String> {
    let bytes = postcard::to_allocvec(state).map_err(|e| e.to_string())?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// `state` saved into a buffer of its own ([`save`]): a split operator's parts joined,
/// or one operator's state split.
pub(crate) fn to_bytes<T: Serialize>(state: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    save(state, &mut out)?;
    Ok(out)
}

/// A saved state's keys dealt into `parts` collections, each key's entry to
/// `part_of(key)`: how the parts of a split operator take their share of one
/// operator's checkpoint.
pub(crate) fn deal_keys<K, V, C>(
    keys: impl IntoIterator<Item = (K, V)>,
    parts: usize,
    part_of: &dyn Fn(&K) -> usize,
) -> Vec<C>
where
    C: Default + Extend<(K, V)>,
{
    let mut dealt: Vec<C> = (0..parts).map(|_| C::default()).collect();
    for (key, value) in keys {
        let at = part_of(&key).min(parts - 1);
        dealt[at].extend([(key, value)]);
    }
    dealt
}

/// One operator's checkpoint of `keys` saved again as `parts` checkpoints, each of the
/// keys [`deal_keys`] deals it (`saved` puts them in the operator's format).
pub(crate) fn deal_saved<K, V, C, T: Serialize>(
    keys: impl IntoIterator<Item = (K, V)>,
    parts: usize,
    part_of: &dyn Fn(&K) -> usize,
    saved: impl Fn(C) -> T,
) -> Result<Vec<Vec<u8>>, String>
where
    C: Default + Extend<(K, V)>,
{
    deal_keys(keys, parts, part_of)
        .into_iter()
        .map(|keys| to_bytes(&saved(keys)))
        .collect()
}

/// Reads what [`save`] wrote, all of it: bytes left over mean the state is not this
/// operator's.
pub(crate) fn restore<T: DeserializeOwned>(saved: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(saved) {
        Ok((state, [])) => Ok(state),
        Ok((_, rest)) => Err(format!("{} bytes left over after the state", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// The error for results not yet handed downstream when a checkpoint is taken (the
/// driver checkpoints only between steps, after every result was handed on): saving
/// without them would lose them.
pub(crate) fn results_waiting(n: usize) -> String {
    format!("{n} results are still waiting to be handed downstream")
}

#[cfg(test)]
pub(super) mod testing {
    //! A count-and-sum aggregation keyed by a string, and helpers to drive an operator.

    use crate::errors::EvalError;
    use crate::windows::node::EMIT_CHUNK;
    use crate::windows::{Admit, Aggregation, Keyed, KeyedOperator, OnFull, Results, StateOptions, Window};

    /// Input `(key, value)`; accumulator `(count, sum)`; the sum overflows into an error.
    pub(crate) struct CountSum;

    /// `(key, window, count, sum, update)`.
    pub(crate) type Out = (String, Window, i64, i64, bool);

    impl Keyed for CountSum {
        type Input = (String, i64);
        type Key = String;
        type Output = Out;
    }

    impl Aggregation for CountSum {
        type Acc = (i64, i64);

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
        let mut all = Results::default();
        loop {
            let before = all.len();
            op.drain_emitted(&mut all, before + 3);
            if all.len() == before {
                return all.drain().collect();
            }
        }
    }

    /// Takes the results emitted so far as `Stateful` does: [`EMIT_CHUNK`] at a time,
    /// each chunk written over the last one's rows.
    pub(crate) fn drain_chunked<O: KeyedOperator<CountSum>>(op: &mut O) -> Vec<(Out, i64)> {
        let (mut all, mut chunk) = (Vec::new(), Results::default());
        loop {
            chunk.clear();
            op.drain_emitted(&mut chunk, EMIT_CHUNK);
            if chunk.is_empty() {
                return all;
            }
            all.extend_from_slice(chunk.as_slice());
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

    /// One step of a scenario: a record `(key, value, t)` or a watermark.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Step {
        Rec(&'static str, i64, i64),
        Wm(i64),
    }

    /// What a scenario saw: each record's admission and the results, in order.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) enum Seen {
        Admit(Admit),
        Result(Out, i64),
    }

    /// Runs `steps`, handing the results downstream after each as the driver does.
    pub(crate) fn run<O: KeyedOperator<CountSum>>(op: &mut O, steps: &[Step]) -> Vec<Seen> {
        let mut seen = Vec::new();
        for step in steps {
            match *step {
                Step::Rec(key, value, t) => seen.push(Seen::Admit(feed(op, key, value, t))),
                Step::Wm(wm) => {
                    op.on_watermark(wm);
                }
            }
            seen.extend(drain_chunked(op).into_iter().map(|(out, t)| Seen::Result(out, t)));
        }
        seen
    }

    /// Checks that an operator saved after `a` and restored into a fresh one (`make`)
    /// then given `b` and closed sees exactly what one operator given `a`, `b` and
    /// closed sees; that restoring then saving gives the same bytes; and that every
    /// truncation of the saved state, or a byte more, is refused. Returns what `b` and
    /// the close saw, for the test's own checks.
    pub(crate) fn assert_resumes<O: KeyedOperator<CountSum>>(
        make: impl Fn() -> O,
        a: &[Step],
        b: &[Step],
    ) -> Vec<Seen> {
        let mut whole = make();
        run(&mut whole, a);
        let mut expected = run(&mut whole, b);
        whole.on_close();
        expected.extend(
            drain_chunked(&mut whole)
                .into_iter()
                .map(|(out, t)| Seen::Result(out, t)),
        );

        let mut before = make();
        run(&mut before, a);
        let mut saved = Vec::new();
        before.save_state(&mut saved).expect("saved");
        let mut after = make();
        after.restore_state(&saved).expect("restored");
        let mut again = Vec::new();
        after.save_state(&mut again).expect("saved again");
        assert_eq!(again, saved, "restoring then saving gives the same bytes");
        let mut got = run(&mut after, b);
        after.on_close();
        got.extend(
            drain_chunked(&mut after)
                .into_iter()
                .map(|(out, t)| Seen::Result(out, t)),
        );
        assert_eq!(
            got, expected,
            "restored from a checkpoint, the operator does what it would have"
        );

        for len in 0..saved.len() {
            assert!(
                make().restore_state(&saved[..len]).is_err(),
                "{len} of {} bytes",
                saved.len()
            );
        }
        saved.push(0);
        assert!(make().restore_state(&saved).is_err(), "a byte more");
        expected
    }

    /// Restores random bytes into fresh operators, and uses those that decode: an error
    /// or odd results, never a panic.
    pub(crate) fn assert_garbage_never_panics<O: KeyedOperator<CountSum>>(make: impl Fn() -> O) {
        let mut rng = crate::aggregates::SplitMix64::new(11);
        for _ in 0..3_000 {
            let len = (rng.next_u64() % 48) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let mut op = make();
            if op.restore_state(&bytes).is_ok() {
                let _ = op.process("a", &("a".to_string(), 1), 5_000);
                op.on_watermark(20_000);
                op.on_close();
                drain(&mut op);
            }
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
