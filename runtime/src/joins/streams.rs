//! [`StreamJoin`]: two streams joined by key, within an interval of each other's time
//! or in the same window, on event time.
//!
//! - A record comes in from one side with its key and time `t`. It is paired at once
//!   with every held record of the other side that it joins, and each pair is emitted.
//!   An interval join pairs `left` and `right` when `left.t + from <= right.t <= left.t + to`;
//!   a window join, when both are in one window (a hopping window's pair is emitted once
//!   per window they share).
//! - The record is then held as long as a record of the other side that it would join
//!   can still come in time: until the watermark passes `t + to` (a left record), `t - from`
//!   (a right one), or the end of its window. Then it is let go; a record of an outer
//!   side that was never paired is emitted alone.
//! - Records are let go in sweeps over every key: a window join's each time the
//!   watermark reaches a window's end (so exactly then), an interval join's every eighth
//!   of the interval's span of watermark progress (at least a second): a record may be
//!   held that much longer than it must, which changes no pair (its partners would be
//!   late). A sweep costs a pass over the keys; a timer per record cost more than the
//!   join's own work.
//! - Late: an interval join's record behind the watermark (records it would have joined
//!   may be gone already); a window join's record whose every window has ended.
//! - Times of results: a pair, the later of its two times (a window join: the window's
//!   end − 1); a record alone, the latest time a partner could have had, its own when
//!   later, or the watermark before the sweep when that is later still. So a result is
//!   never behind the watermark that a downstream window has seen.
//! - Order: pairs as records arrive (each new record with the other side's records in
//!   arrival order), records alone as sweeps let them go, in order of the latest time a
//!   partner could have had, then arrival. Results depend only on the records, their
//!   order and the watermarks.
//! - A checkpoint holds every held record, the watermark and the next sweep's.

use crate::errors::EvalError;
use crate::prefetch::prefetch;
use crate::windows::state::{restore, results_waiting, save};
use crate::windows::KeyHasher;
use crate::windows::{Admit, Assigned, Keyed, KeyedOperator, StateSize, Window};
use hashbrown::hash_table::{Entry, HashTable};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};

/// What one join of two streams builds, generated per spec component. Its `Input` is
/// [`Sided`]`<Left, Right>`.
pub trait JoinPair: Keyed {
    type Left: Clone + Serialize + DeserializeOwned;
    type Right: Clone + Serialize + DeserializeOwned;
    /// The joined record of `key`: both sides, or one side of an outer join alone;
    /// `window` in a window join.
    fn pair(
        &self,
        key: &Self::Key,
        left: Option<&Self::Left>,
        right: Option<&Self::Right>,
        window: Option<Window>,
    ) -> Self::Output;
}

/// A record of either side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Sided<L, R> {
    Left(L),
    Right(R),
}

/// When a left and a right record join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinBounds {
    /// `left.t + from <= right.t <= left.t + to` (ms; `from <= to`).
    Interval { from: i64, to: i64 },
    /// Both in one window of `size` ms starting every `slide` ms, shifted by `offset`
    /// (as [`crate::windows::FixedWindows`]).
    Windows { size: i64, slide: i64, offset: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinShape {
    pub bounds: JoinBounds,
    /// A left record never paired is emitted alone (a left or full outer join).
    pub outer_left: bool,
    pub outer_right: bool,
}

/// An interval join sweeps at least this far apart (ms of watermark progress).
const MIN_SWEEP_STEP: i64 = 1_000;

/// How many keys ahead a sweep asks for the records it will look at.
const SWEEP_AHEAD: usize = 8;

/// A record held, with its time and arrival number.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held<R> {
    t: i64,
    seq: u64,
    /// Paired at least once (in this bucket).
    paired: bool,
    rec: R,
    /// Not saved: a restored record holds the epoch of the restore.
    #[serde(skip)]
    epoch: u64,
}

/// The records of one key (and one window, in a window join), both sides in one list
/// in arrival order: one allocation per key, where most keys hold a record or two.
type Bucket<L, R> = Vec<Held<Sided<L, R>>>;

/// One key's records: an interval join's in `records`, a window join's in one bucket
/// per window (by its start; few enough to search in a line).
#[derive(Debug, Serialize, Deserialize)]
struct KeyState<L, R> {
    records: Bucket<L, R>,
    windows: Vec<(i64, Bucket<L, R>)>,
    /// No record of the key may go before the watermark passes this (at most the
    /// earliest time one may): a sweep passes over the key without looking at its
    /// records, which are elsewhere in memory. Not saved: a restored key is looked at in
    /// the first sweep, which sets it.
    #[serde(skip, default = "unknown_until")]
    until: i64,
}

fn unknown_until() -> i64 {
    i64::MIN
}

impl<L, R> Default for KeyState<L, R> {
    fn default() -> Self {
        KeyState {
            records: Bucket::default(),
            windows: Vec::new(),
            until: i64::MAX,
        }
    }
}

impl<L, R> KeyState<L, R> {
    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.windows.is_empty()
    }
}

/// A key and its records, as the table of keys holds them.
type KeyAndState<J> = (
    <J as Keyed>::Key,
    KeyState<<J as JoinPair>::Left, <J as JoinPair>::Right>,
);

/// What a checkpoint holds. `K` is a sorted view when saving, a `Vec` when restoring.
#[derive(Serialize, Deserialize)]
struct Saved<K> {
    wm: i64,
    seq: u64,
    next_sweep: i64,
    keys: K,
}

/// A record let go alone: `(latest time a partner could have had, arrival, its own
/// time, the result)`.
type Alone<O> = (i64, u64, i64, O);

pub struct StreamJoin<J: JoinPair> {
    join: J,
    shape: JoinShape,
    wm: i64,
    /// Numbers records in arrival order.
    seq: u64,
    keys: HashTable<KeyAndState<J>>,
    hasher: KeyHasher,
    /// The watermark at which the next sweep runs.
    next_sweep: i64,
    /// Records held.
    held: usize,
    epoch: u64,
    out: VecDeque<(J::Output, i64)>,
}

impl<J: JoinPair> StreamJoin<J> {
    pub fn new(join: J, shape: JoinShape) -> Self {
        match shape.bounds {
            JoinBounds::Interval { from, to } => assert!(from <= to, "an empty interval: {from}..={to}"),
            JoinBounds::Windows { size, slide, offset } => assert!(
                0 < slide && slide <= size && (0..slide).contains(&offset),
                "invalid join window: size {size}, slide {slide}, offset {offset}"
            ),
        }
        StreamJoin {
            join,
            shape,
            wm: i64::MIN,
            seq: 0,
            keys: HashTable::new(),
            hasher: KeyHasher::default(),
            next_sweep: i64::MIN,
            held: 0,
            epoch: 0,
            out: VecDeque::new(),
        }
    }

    /// Adds a record to each of its buckets, pairing it there with the other side.
    fn add<Q>(&mut self, key: &Q, rec: Sided<J::Left, J::Right>, t: i64) -> Admit
    where
        J::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = J::Key>,
    {
        // A window join's windows of `t` still open, oldest first (none: late).
        let mut windows = match self.shape.bounds {
            JoinBounds::Interval { .. } if t < self.wm => return Admit::Late { watermark: self.wm },
            JoinBounds::Interval { .. } => None,
            JoinBounds::Windows { size, slide, offset } => {
                let wm = self.wm;
                let open = Assigned::new(t, size, slide, offset).filter(move |(end, _)| *end > wm);
                let mut open = open.map(|(end, start)| Window { start, end }).peekable();
                if open.peek().is_none() {
                    return Admit::Late { watermark: self.wm };
                }
                Some(open)
            }
        };
        self.seq += 1;
        // One hash and one search, whether the key is new or not.
        let hasher = &self.hasher;
        let found = self.keys.entry(
            hasher.hash_one(key),
            |(k, _)| k.borrow() == key,
            |(k, _)| hasher.hash_one(k),
        );
        let (key, state) = match found {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => slot.insert((key.to_owned(), KeyState::default())).into_mut(),
        };
        let key = &*key;
        let mut to = Sides {
            join: &self.join,
            out: &mut self.out,
            interval: match self.shape.bounds {
                JoinBounds::Interval { from, to } => Some((from, to)),
                JoinBounds::Windows { .. } => None,
            },
            seq: self.seq,
            epoch: self.epoch,
        };
        let Some(windows) = windows.as_mut() else {
            if let JoinBounds::Interval { from, to } = self.shape.bounds {
                let until = match &rec {
                    Sided::Left(_) => t.saturating_add(to),
                    Sided::Right(_) => t.saturating_sub(from),
                };
                state.until = state.until.min(until);
            }
            to.put(key, &mut state.records, None, rec, t);
            self.held += 1;
            return Admit::Added;
        };
        let mut rec = Some(rec);
        while let Some(window) = windows.next() {
            // The newest window takes the record, the others a copy.
            let this = if windows.peek().is_none() {
                rec.take()
            } else {
                rec.clone()
            };
            let Some(this) = this else { break };
            let at = match state.windows.iter().position(|(start, _)| *start == window.start) {
                Some(at) => at,
                None => {
                    state.windows.push((window.start, Bucket::default()));
                    state.windows.len() - 1
                }
            };
            state.until = state.until.min(window.end - 1);
            to.put(key, &mut state.windows[at].1, Some(window), this, t);
            self.held += 1;
        }
        Admit::Added
    }

    /// Lets go of every record no partner can come for in time any more (see the
    /// module's notes), emitting outer records never paired; `before`: the watermark
    /// before this sweep's.
    fn sweep(&mut self, before: i64) {
        let wm = self.wm;
        let JoinShape {
            bounds,
            outer_left,
            outer_right,
        } = self.shape;
        let join = &self.join;
        // Held until `until`, a time the watermark must pass; at the end of the input
        // (`i64::MAX`) everything goes, times at the very top of the range included.
        let keep = |until: i64| until >= wm && wm < i64::MAX;
        let mut alone: Vec<Alone<J::Output>> = Vec::new();
        let mut let_go = 0;
        let mut emptied = 0;
        let mut sweep_key = |(key, state): (&J::Key, &mut KeyState<J::Left, J::Right>)| {
            // The earliest time a record kept may go.
            let mut next = i64::MAX;
            match bounds {
                JoinBounds::Interval { from, to } => state.records.retain(|h| {
                    let until = match h.rec {
                        Sided::Left(_) => h.t.saturating_add(to),
                        Sided::Right(_) => h.t.saturating_sub(from),
                    };
                    if keep(until) {
                        next = next.min(until);
                        return true;
                    }
                    let_go += 1;
                    if !h.paired {
                        if let Some(rec) = alone_pair(join, key, &h.rec, outer_left, outer_right, None) {
                            alone.push((until, h.seq, h.t, rec));
                        }
                    }
                    false
                }),
                JoinBounds::Windows { size, .. } => state.windows.retain(|(start, bucket)| {
                    let last = start.saturating_add(size) - 1;
                    if keep(last) {
                        next = next.min(last);
                        return true;
                    }
                    // The whole window goes: its records alone in arrival order.
                    let window = Some(Window {
                        start: *start,
                        end: last + 1,
                    });
                    let_go += bucket.len();
                    for h in bucket.iter().filter(|h| !h.paired) {
                        if let Some(rec) = alone_pair(join, key, &h.rec, outer_left, outer_right, window) {
                            alone.push((last, h.seq, last, rec));
                        }
                    }
                    false
                }),
            }
            state.until = next;
            emptied += usize::from(state.is_empty());
        };
        // Each key's records are elsewhere in memory: the list of the key
        // `SWEEP_AHEAD` places on is asked for before this one is swept, so that the
        // loads overlap instead of waiting in turn.
        let mut ahead = VecDeque::with_capacity(SWEEP_AHEAD);
        let due = self.keys.iter_mut().filter(|(_, state)| !keep(state.until));
        for (key, state) in due {
            match bounds {
                JoinBounds::Interval { .. } => prefetch(state.records.as_ptr()),
                JoinBounds::Windows { .. } => prefetch(state.windows.as_ptr()),
            }
            if ahead.len() == SWEEP_AHEAD {
                ahead.pop_front().map(&mut sweep_key);
            }
            ahead.push_back((&*key, state));
        }
        ahead.into_iter().for_each(&mut sweep_key);
        if emptied > 0 {
            self.keys.retain(|(_, state)| !state.is_empty());
        }
        self.held -= let_go;
        alone.sort_unstable_by_key(|(until, seq, _, _)| (*until, *seq));
        self.out.extend(
            alone
                .into_iter()
                .map(|(until, _, t, rec)| (rec, t.max(until).max(before))),
        );
        self.next_sweep = match bounds {
            _ if wm == i64::MAX => i64::MAX,
            JoinBounds::Interval { from, to } => wm.saturating_add((to.saturating_sub(from) / 8).max(MIN_SWEEP_STEP)),
            // The next end of a window after the watermark.
            JoinBounds::Windows { size, slide, offset } => Assigned::new(wm, size, slide, offset)
                .next()
                .map_or(i64::MAX, |(end, _)| end),
        };
    }

    /// The epochs of the records held.
    fn epochs(&self) -> impl Iterator<Item = u64> + '_ {
        let buckets = self
            .keys
            .iter()
            .flat_map(|(_, s)| std::iter::once(&s.records).chain(s.windows.iter().map(|(_, b)| b)));
        buckets.flat_map(|b| b.iter().map(|h| h.epoch))
    }
}

/// What a record added to a bucket needs besides the bucket.
struct Sides<'a, J: JoinPair> {
    join: &'a J,
    out: &'a mut VecDeque<(J::Output, i64)>,
    /// `(from, to)` of an interval join.
    interval: Option<(i64, i64)>,
    seq: u64,
    epoch: u64,
}

impl<J: JoinPair> Sides<'_, J> {
    /// Adds a record of `key` to `bucket` (of `window`, in a window join), pairing it
    /// there with the other side.
    fn put(
        &mut self,
        key: &J::Key,
        bucket: &mut Bucket<J::Left, J::Right>,
        window: Option<Window>,
        rec: Sided<J::Left, J::Right>,
        t: i64,
    ) {
        let interval = self.interval;
        // Whether a left record at `l` and a right one at `r` pair, and the pair's time.
        let pairs =
            |l: i64, r: i64| interval.is_none_or(|(from, to)| l.saturating_add(from) <= r && r <= l.saturating_add(to));
        let stamp = |l: i64, r: i64| window.map_or(l.max(r), |w| w.end - 1);
        let (join, out, seq, epoch) = (self.join, &mut *self.out, self.seq, self.epoch);
        let mut paired = false;
        for h in bucket.iter_mut() {
            let pair = match (&rec, &h.rec) {
                (Sided::Left(l), Sided::Right(r)) if pairs(t, h.t) => {
                    (join.pair(key, Some(l), Some(r), window), stamp(t, h.t))
                }
                (Sided::Right(r), Sided::Left(l)) if pairs(h.t, t) => {
                    (join.pair(key, Some(l), Some(r), window), stamp(h.t, t))
                }
                _ => continue,
            };
            out.push_back(pair);
            h.paired = true;
            paired = true;
        }
        reserve_one(bucket);
        bucket.push(Held {
            t,
            seq,
            paired,
            rec,
            epoch,
        });
    }
}

/// A join's pair, or a pattern's match, that its `select` could not make, as its dead
/// letter holds it.
pub type FailedPair = serde_json::Value;

/// `pair` (a join's pair or a pattern's match) as its dead letter holds it: with `key`
/// put back into each part's record that holds it only as the key (`(part, field)`: a
/// side or a step), as the field it was. A part that is null stays null.
pub fn failed_pair<P: Serialize, K: Serialize>(pair: &P, key: &K, held_once: &[(&str, &str)]) -> FailedPair {
    let mut value = serde_json::to_value(pair).unwrap_or_default();
    for (side, field) in held_once {
        if let Some(record) = value.get_mut(*side).and_then(FailedPair::as_object_mut) {
            record.insert(field.to_string(), serde_json::to_value(key).unwrap_or_default());
        }
    }
    value
}

/// A record never paired, alone: when its side is outer.
fn alone_pair<J: JoinPair>(
    join: &J,
    key: &J::Key,
    rec: &Sided<J::Left, J::Right>,
    outer_left: bool,
    outer_right: bool,
    window: Option<Window>,
) -> Option<J::Output> {
    match rec {
        Sided::Left(l) if outer_left => Some(join.pair(key, Some(l), None, window)),
        Sided::Right(r) if outer_right => Some(join.pair(key, None, Some(r), window)),
        _ => None,
    }
}

/// Room for one more record: exactly one while the list holds fewer than four (most
/// keys hold one or two records, and a first push would make room for four, which
/// measured 4% slower: more memory for every sweep to walk), doubling after.
fn reserve_one<T>(list: &mut Vec<T>) {
    if list.len() == list.capacity() && list.capacity() < 4 {
        list.reserve_exact(1);
    }
}

impl<J> KeyedOperator<J> for StreamJoin<J>
where
    J: JoinPair<Input = Sided<<J as JoinPair>::Left, <J as JoinPair>::Right>>,
{
    fn process<Q>(&mut self, key: &Q, rec: &J::Input, t: i64) -> Result<Admit, EvalError>
    where
        J::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = J::Key>,
    {
        self.process_owned(key, rec.clone(), t)
    }

    fn process_owned<Q>(&mut self, key: &Q, rec: J::Input, t: i64) -> Result<Admit, EvalError>
    where
        J::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = J::Key>,
    {
        Ok(self.add(key, rec, t))
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    fn pending_epoch(&self) -> Option<u64> {
        // A held record may still be paired: its source's offset waits.
        self.epochs().min()
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        let before = self.wm;
        self.wm = self.wm.max(wm);
        if self.wm < self.next_sweep {
            return false;
        }
        let emitted = self.out.len();
        self.sweep(before);
        self.out.len() > emitted
    }

    fn late_reason(&self) -> &'static str {
        match self.shape.bounds {
            JoinBounds::Interval { .. } => "records of the other side it would join may have been let go",
            JoinBounds::Windows { .. } => "every window it belongs to has closed",
        }
    }

    fn next_due(&self) -> Option<i64> {
        (self.held > 0).then_some(self.next_sweep)
    }

    fn emitted(&mut self) -> &mut VecDeque<(J::Output, i64)> {
        &mut self.out
    }

    fn state_size(&self) -> StateSize {
        let per_record = std::mem::size_of::<Held<J::Left>>().max(std::mem::size_of::<Held<J::Right>>());
        let per_key = std::mem::size_of::<(J::Key, KeyState<J::Left, J::Right>)>();
        StateSize {
            entries: self.held,
            bytes: self.held * per_record + self.keys.len() * per_key,
        }
    }

    fn entries(&self) -> usize {
        self.held
    }

    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        if !self.out.is_empty() {
            return Err(results_waiting(self.out.len()));
        }
        let mut keys: Vec<_> = self.keys.iter().map(|(key, state)| (key, state)).collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let saved = Saved {
            wm: self.wm,
            seq: self.seq,
            next_sweep: self.next_sweep,
            keys,
        };
        save(&saved, out)
    }

    /// The restored records hold the current epoch: what they held before is in the
    /// checkpoint, which confirms its sources' positions by itself.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        type Restored<K, L, R> = Saved<Vec<(K, KeyState<L, R>)>>;
        let saved: Restored<J::Key, J::Left, J::Right> = restore(saved)?;
        let epoch = self.epoch;
        self.keys.clear();
        self.held = 0;
        for (key, mut state) in saved.keys {
            let buckets = std::iter::once(&mut state.records).chain(state.windows.iter_mut().map(|(_, b)| b));
            for bucket in buckets {
                for h in bucket.iter_mut() {
                    h.epoch = epoch;
                }
                self.held += bucket.len();
            }
            let hasher = &self.hasher;
            let slot = self
                .keys
                .entry(hasher.hash_one(&key), |(k, _)| *k == key, |(k, _)| hasher.hash_one(k));
            match slot {
                Entry::Occupied(mut slot) => slot.get_mut().1 = state,
                Entry::Vacant(slot) => {
                    slot.insert((key, state));
                }
            }
        }
        self.wm = saved.wm;
        self.seq = saved.seq;
        self.next_sweep = saved.next_sweep;
        self.out.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Left and right records are labels; a result is `(left, right, window start)`.
    struct Labels;

    type Out = (Option<String>, Option<String>, Option<i64>);

    impl Keyed for Labels {
        type Input = Sided<String, String>;
        type Key = String;
        type Output = Out;
    }

    impl JoinPair for Labels {
        type Left = String;
        type Right = String;
        fn pair(&self, _key: &String, left: Option<&String>, right: Option<&String>, window: Option<Window>) -> Out {
            (left.cloned(), right.cloned(), window.map(|w| w.start))
        }
    }

    fn join(bounds: JoinBounds, outer_left: bool, outer_right: bool) -> StreamJoin<Labels> {
        StreamJoin::new(
            Labels,
            JoinShape {
                bounds,
                outer_left,
                outer_right,
            },
        )
    }

    fn interval(from: i64, to: i64) -> JoinBounds {
        JoinBounds::Interval { from, to }
    }

    fn left(op: &mut StreamJoin<Labels>, key: &str, label: &str, t: i64) -> Admit {
        op.process_owned(key, Sided::Left(label.to_string()), t).unwrap()
    }

    fn right(op: &mut StreamJoin<Labels>, key: &str, label: &str, t: i64) -> Admit {
        op.process_owned(key, Sided::Right(label.to_string()), t).unwrap()
    }

    fn drain(op: &mut StreamJoin<Labels>) -> Vec<(Option<&'static str>, Option<&'static str>, i64)> {
        // Labels are leaked to compare against literals: a test's handful of bytes.
        let leak = |s: Option<String>| s.map(|s| &*Box::leak(s.into_boxed_str()));
        op.emitted()
            .drain(..)
            .map(|((l, r, _), t)| (leak(l), leak(r), t))
            .collect()
    }

    #[test]
    fn a_failed_pair_gets_its_key_back_in_each_side_that_held_it_only_as_the_key() {
        let pair = serde_json::json!({ "order": { "ts": 1 }, "shipment": null, "late": { "n": 2 } });
        let failed = failed_pair(&pair, &"o1", &[("order", "order_id"), ("shipment", "order_id")]);
        // An absent side stays null; a side not named keeps what it had.
        let expected =
            serde_json::json!({ "order": { "ts": 1, "order_id": "o1" }, "shipment": null, "late": { "n": 2 } });
        assert_eq!(failed, expected);
        assert_eq!(failed_pair(&pair, &"o1", &[]), pair);
    }

    #[test]
    fn an_interval_join_pairs_records_whose_times_are_within_both_bounds_inclusive() {
        let mut op = join(interval(-5, 10), false, false);
        left(&mut op, "k", "l", 100);
        right(&mut op, "k", "r94", 94);
        right(&mut op, "k", "r95", 95);
        right(&mut op, "k", "r110", 110);
        right(&mut op, "k", "r111", 111);
        right(&mut op, "other", "x", 100);
        assert_eq!(
            drain(&mut op),
            vec![(Some("l"), Some("r95"), 100), (Some("l"), Some("r110"), 110)]
        );
        // A later left record pairs with the rights already held.
        left(&mut op, "k", "l2", 101);
        assert_eq!(
            drain(&mut op),
            vec![(Some("l2"), Some("r110"), 110), (Some("l2"), Some("r111"), 111)]
        );
    }

    #[test]
    fn records_are_let_go_in_sweeps_once_no_partner_can_come_in_time() {
        let mut op = join(interval(-5, 10), false, false);
        left(&mut op, "k", "l", 100);
        right(&mut op, "k", "r", 200);
        // The left record waits for rights up to 110, the right for lefts from 205.
        assert!(!op.on_watermark(110));
        assert_eq!(op.entries(), 2, "both may still pair");
        // Sweeps are a second of watermark apart (the interval's span is shorter).
        assert_eq!(op.next_due(), Some(1_110));
        op.on_watermark(1_109);
        assert_eq!(op.entries(), 2);
        op.on_watermark(1_110);
        assert_eq!(op.entries(), 0);
        assert!(op.keys.is_empty());
        assert_eq!(op.next_due(), None, "nothing held");
        assert_eq!(left(&mut op, "k", "late", 1_109), Admit::Late { watermark: 1_110 });
    }

    #[test]
    fn the_end_of_the_input_lets_go_of_records_at_the_top_of_the_time_range() {
        let mut op = join(interval(0, 10), true, false);
        left(&mut op, "k", "last", i64::MAX - 5);
        op.on_close();
        assert_eq!(drain(&mut op), vec![(Some("last"), None, i64::MAX)]);
        assert_eq!(op.entries(), 0);
    }

    #[test]
    fn a_record_let_go_after_its_time_carries_the_watermark_before_the_sweep() {
        let mut op = join(interval(0, 10), true, false);
        op.on_watermark(0);
        left(&mut op, "k", "alone", 100);
        // Let go at the sweep at 1000, after the watermark was 500: a window
        // downstream saw 500, so the result carries 500, not 110.
        op.on_watermark(500);
        assert!(op.on_watermark(1_000));
        assert_eq!(drain(&mut op), vec![(Some("alone"), None, 500)]);
    }

    #[test]
    fn outer_records_never_paired_come_alone_when_let_go() {
        let mut op = join(interval(0, 10), true, true);
        left(&mut op, "a", "la", 100);
        left(&mut op, "b", "lb", 101);
        right(&mut op, "b", "rb", 105);
        right(&mut op, "c", "rc", 50);
        assert_eq!(drain(&mut op), vec![(Some("lb"), Some("rb"), 105)]);
        op.on_watermark(i64::MAX);
        // rc could pair with lefts up to 50 (let go first); la waited for rights to 110.
        assert_eq!(drain(&mut op), vec![(None, Some("rc"), 50), (Some("la"), None, 110)]);
        assert_eq!(op.entries(), 0);
    }

    #[test]
    fn a_window_join_pairs_records_of_one_window_and_lets_the_window_go_at_its_end() {
        let mut op = join(
            JoinBounds::Windows {
                size: 10,
                slide: 10,
                offset: 0,
            },
            true,
            false,
        );
        left(&mut op, "k", "l1", 1);
        left(&mut op, "k", "l2", 12);
        right(&mut op, "k", "r1", 9);
        right(&mut op, "k", "r2", 10);
        assert_eq!(
            drain(&mut op),
            vec![(Some("l1"), Some("r1"), 9), (Some("l2"), Some("r2"), 19)]
        );
        left(&mut op, "k", "l3", 15);
        assert_eq!(drain(&mut op), vec![(Some("l3"), Some("r2"), 19)]);
        left(&mut op, "j", "alone", 3);
        assert!(op.on_watermark(10));
        assert_eq!(drain(&mut op), vec![(Some("alone"), None, 9)]);
        assert_eq!(left(&mut op, "k", "late", 9), Admit::Late { watermark: 10 });
        assert_eq!(left(&mut op, "k", "open", 10), Admit::Added);
    }

    #[test]
    fn a_hopping_window_join_pairs_once_per_window_the_two_share() {
        let mut op = join(
            JoinBounds::Windows {
                size: 10,
                slide: 5,
                offset: 0,
            },
            false,
            false,
        );
        left(&mut op, "k", "l", 7);
        right(&mut op, "k", "r", 8);
        let starts: Vec<Option<i64>> = op.emitted().drain(..).map(|((_, _, w), _)| w).collect();
        assert_eq!(starts, vec![Some(0), Some(5)]);
        // A record partly late joins the windows still open.
        op.on_watermark(11);
        right(&mut op, "k", "r2", 9);
        let starts: Vec<Option<i64>> = op.emitted().drain(..).map(|((_, _, w), _)| w).collect();
        assert_eq!(starts, vec![Some(5)]);
    }

    #[test]
    fn a_checkpoint_restores_every_held_record() {
        let mut op = join(interval(0, 100), true, true);
        left(&mut op, "a", "la", 10);
        op.set_epoch(3);
        right(&mut op, "b", "rb", 20);
        left(&mut op, "b", "lb", 15);
        drain(&mut op);
        op.on_watermark(12);
        assert_eq!(op.pending_epoch(), Some(0));
        let mut bytes = Vec::new();
        op.save_state(&mut bytes).unwrap();
        let mut back = join(interval(0, 100), true, true);
        back.restore_state(&bytes).unwrap();
        let mut again = Vec::new();
        back.save_state(&mut again).unwrap();
        assert_eq!(bytes, again, "the same state saves to the same bytes");
        for o in [&mut op, &mut back] {
            right(o, "a", "ra", 50);
            o.on_watermark(i64::MAX);
        }
        let (a, b) = (drain(&mut op), drain(&mut back));
        assert_eq!(a, b);
        assert_eq!(a, vec![(Some("la"), Some("ra"), 50)]);
        assert!(back.restore_state(&bytes[..bytes.len() - 1]).is_err());
    }
}
