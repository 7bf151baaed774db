//! [`Patterns`]: every key's matcher, fed in event time order as the watermark passes.
//!
//! - A record comes in with its time `t` and key; its steps' conditions are evaluated at
//!   once (an error makes it a dead letter then, not later), and it waits in a buffer.
//! - A record behind the watermark (`t < W`) is late: every match it could be part of
//!   has been decided.
//! - When the watermark moves to `W`, the records with `t < W` leave the buffer in order
//!   of `(t, arrival)`, across all keys, each to its key's matcher. Before each record,
//!   the matches waiting for an absence deadline at or before its `t` are emitted; after
//!   the last, those due at `W`. So results come out in event time order and depend only
//!   on the records and the watermarks, not on how records interleave within the
//!   watermark's bound.
//! - A key without partial or waiting matches is dropped. Partial matches past `within`
//!   are dropped when the watermark passes their expiry (a sweep of the keys, at most
//!   once per `within / 8` of watermark progress).
//! - Entries (for `max_keys`) are keys. A new key beyond it: [`OnFull::Reject`] (a dead
//!   letter) or [`OnFull::EvictOldest`] (the keys whose oldest partial match started
//!   first are dropped, a 16th of `max_keys`, their partial matches counted as evicted).
//! - [`KeyedOperator::pending_epoch`]: the oldest epoch of a record in the buffer or in
//!   a partial or waiting match.
//! - A checkpoint holds the buffer, the keys' matches, the watermark and the counters
//!   that number records and matches.

use super::matcher::{Event, KeyState, Partial, Shape};
use super::queue::TimeQueue;
use crate::errors::EvalError;
use crate::windows::state::{restore, results_waiting, save};
use crate::windows::{Admit, Keyed, KeyedOperator, OnFull, StateOptions, StateSize};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

/// What one pattern matches, generated per spec component.
pub trait Pattern: Keyed {
    /// What the pattern keeps of a record: the fields its `select` reads (the
    /// conditions are evaluated when the record comes in).
    type Held: Clone + Serialize + DeserializeOwned;
    /// Bit `i`: `rec` satisfies step `i`; bit `steps`: the absence step.
    fn satisfies(&self, rec: &Self::Input) -> Result<u64, EvalError>;
    /// What is kept of `rec`.
    fn hold(&self, rec: &Self::Input) -> Self::Held;
    /// The match's record: the last event of each step (`None`: an optional step
    /// skipped).
    fn matched(&self, key: &Self::Key, taken: impl Iterator<Item = Option<Self::Held>>) -> Self::Output;
}

/// A record held, with the epoch it came in.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held<I> {
    rec: I,
    /// Not saved: a restored record holds the epoch of the restore.
    #[serde(skip)]
    epoch: u64,
}

/// A record in the buffer.
#[derive(Serialize, Deserialize)]
struct Buffered<K, I> {
    key: K,
    held: Held<I>,
    satisfies: u64,
}

/// What a checkpoint holds. `M` is a sorted view when saving, a `HashMap` when restoring.
#[derive(Serialize, Deserialize)]
struct Saved<B, M> {
    wm: i64,
    seq: u64,
    buffer: B,
    keys: M,
}

pub struct Patterns<P: Pattern> {
    pattern: P,
    shape: Shape,
    opts: StateOptions,
    wm: i64,
    /// Numbers records (the order of records with one `t`) and waiting matches.
    seq: u64,
    buffer: TimeQueue<Buffered<P::Key, P::Held>>,
    /// No step is `next`: a record that satisfies no step (nor the absence) changes
    /// nothing, and is not kept.
    relaxed: bool,
    keys: HashMap<P::Key, KeyState<Held<P::Held>>>,
    /// The matcher's spare list of partial matches (see [`KeyState::on_event`]).
    spare: Vec<Partial<Held<P::Held>>>,
    /// Waiting matches by deadline: `(deadline, seq)` → key.
    deadlines: BTreeMap<(i64, u64), P::Key>,
    /// The watermark from which the next expiry sweep may run.
    next_sweep: i64,
    epoch: u64,
    out: VecDeque<(P::Output, i64)>,
    evicted: u64,
}

impl<P: Pattern> Patterns<P> {
    pub fn new(pattern: P, shape: Shape, opts: StateOptions) -> Self {
        assert!(
            !shape.steps.is_empty() && shape.steps.len() < 64,
            "a pattern has 1 to 63 steps"
        );
        Patterns {
            pattern,
            relaxed: shape.steps.iter().all(|s| !s.strict),
            shape,
            opts,
            wm: i64::MIN,
            seq: 0,
            buffer: TimeQueue::default(),
            keys: HashMap::new(),
            spare: Vec::new(),
            deadlines: BTreeMap::new(),
            next_sweep: i64::MIN,
            epoch: 0,
            out: VecDeque::new(),
            evicted: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Emits the waiting matches due at `now`, one at a time in `(deadline, seq)` order
    /// over all keys.
    fn fire_due(&mut self, now: i64) {
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (deadline, seq) = *entry.key();
            let key = entry.remove();
            let Some(state) = self.keys.get_mut(&key) else { continue };
            if let Some(w) = state.take_waiting(seq) {
                let taken = w.taken.into_iter().map(|h| h.map(|h| h.rec));
                self.out.push_back((self.pattern.matched(&key, taken), deadline));
            }
            if state.is_empty() {
                self.keys.remove(&key);
            }
        }
    }

    /// Gives one buffered record to its key.
    fn feed(&mut self, t: i64, b: Buffered<P::Key, P::Held>) {
        let Buffered { key, held, satisfies } = b;
        if let Some(max_keys) = self.opts.max_keys.filter(|max| self.keys.len() >= *max) {
            if satisfies & 1 != 0 && !self.keys.contains_key(&key) {
                self.evict(max_keys);
            }
        }
        let seq = self.next_seq();
        let mut entry = match self.keys.entry(key) {
            Entry::Occupied(entry) => entry,
            // Nothing to start, nothing waiting: the record changes nothing.
            Entry::Vacant(_) if satisfies & 1 == 0 => return,
            Entry::Vacant(entry) => entry.insert_entry(KeyState::default()),
        };
        let state = entry.get_mut();
        let effect = state.on_event(&self.shape, Event { t, satisfies }, held, seq, &mut self.spare);
        self.evicted += effect.evicted;
        if let Some(w) = state.waiting.last().filter(|w| w.seq == seq) {
            self.deadlines.insert((w.deadline, w.seq), entry.key().clone());
        }
        for cancelled in &effect.cancelled {
            self.deadlines.remove(cancelled);
        }
        if let Some(found) = effect.found {
            let taken = found.taken.into_iter().map(|h| h.map(|h| h.rec));
            self.out.push_back((self.pattern.matched(entry.key(), taken), found.t));
        }
        if entry.get().is_empty() {
            entry.remove();
        }
    }

    /// Drops the partial matches that expired by `now`, and the keys left empty.
    fn sweep(&mut self, now: i64) {
        let Some(within) = self.shape.within else { return };
        if now < self.next_sweep {
            return;
        }
        let shape = &self.shape;
        self.keys.retain(|_, state| {
            state.expire(shape, now);
            !state.is_empty()
        });
        self.next_sweep = now.saturating_add((within / 8).max(1));
    }

    /// Makes room for a new key (`OnFull::EvictOldest`): drops the keys whose oldest
    /// partial match started first, a 16th of `max_keys` at least one. Keys with
    /// waiting matches only go last, as they have a deadline to keep.
    fn evict(&mut self, max_keys: usize) {
        let mut order: Vec<(i64, P::Key)> = self
            .keys
            .iter()
            .map(|(k, s)| (s.next_expiry(&self.shape).unwrap_or(i64::MAX), k.clone()))
            .collect();
        order.sort();
        for (_, key) in order.into_iter().take((max_keys / 16).max(1)) {
            if let Some(state) = self.keys.remove(&key) {
                self.evicted += (state.partial_count() + state.waiting.len()) as u64;
                for w in &state.waiting {
                    self.deadlines.remove(&(w.deadline, w.seq));
                }
            }
        }
    }
}

impl<P: Pattern> KeyedOperator<P> for Patterns<P> {
    fn process<Q>(&mut self, key: &Q, rec: &P::Input, t: i64) -> Result<Admit, EvalError>
    where
        P::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = P::Key>,
    {
        if t < self.wm {
            return Ok(Admit::Late { watermark: self.wm });
        }
        let satisfies = self.pattern.satisfies(rec)?;
        if let Some(max_keys) = self.opts.max_keys {
            // Refused at arrival when full (keys of records still in the buffer are not
            // counted: when they reach the matcher, the oldest keys make room).
            let new_key = satisfies & 1 != 0 && !self.keys.contains_key(key);
            if new_key && self.keys.len() >= max_keys && self.opts.on_full == OnFull::Reject {
                return Ok(Admit::Full { max_keys });
            }
        }
        if satisfies == 0 && self.relaxed {
            // It can neither start, extend nor end a match, nor break a `next`.
            return Ok(Admit::Added);
        }
        let seq = self.next_seq();
        let held = Held {
            rec: self.pattern.hold(rec),
            epoch: self.epoch,
        };
        let buffered = Buffered {
            key: key.to_owned(),
            held,
            satisfies,
        };
        self.buffer.push(t, seq, buffered);
        Ok(Admit::Added)
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    fn pending_epoch(&self) -> Option<u64> {
        let buffered = self.buffer.values().map(|b| b.held.epoch);
        let matched = self.keys.values().flat_map(|s| s.events().map(|h| h.epoch));
        buffered.chain(matched).min()
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        let before = self.out.len();
        self.wm = self.wm.max(wm);
        while let Some((t, b)) = self.buffer.pop_before(wm) {
            self.fire_due(t);
            self.feed(t, b);
        }
        self.fire_due(wm);
        self.sweep(wm);
        self.out.len() > before
    }

    fn late_reason(&self) -> &'static str {
        "every match it could be part of was decided"
    }

    fn next_due(&self) -> Option<i64> {
        let record = self.buffer.first_time().map(|t| t.saturating_add(1));
        let deadline = self.deadlines.keys().next().map(|(d, _)| *d);
        record.into_iter().chain(deadline).min()
    }

    fn emitted(&mut self) -> &mut VecDeque<(P::Output, i64)> {
        &mut self.out
    }

    fn state_size(&self) -> StateSize {
        let per_event = std::mem::size_of::<Held<P::Held>>();
        let held = self.buffer.waiting() + self.keys.values().map(|s| s.events().count()).sum::<usize>();
        StateSize {
            entries: self.keys.len(),
            bytes: held * per_event + self.keys.len() * std::mem::size_of::<(P::Key, KeyState<Held<P::Held>>)>(),
        }
    }

    fn entries(&self) -> usize {
        self.keys.len()
    }

    fn take_evictions(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.evicted), 0)
    }

    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        if !self.out.is_empty() {
            return Err(results_waiting(self.out.len()));
        }
        let mut keys: Vec<_> = self.keys.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let buffer = self.buffer.sorted();
        let saved = Saved {
            wm: self.wm,
            seq: self.seq,
            buffer,
            keys,
        };
        save(&saved, out)
    }

    /// The restored records and matches hold the current epoch: what they held before is
    /// in the checkpoint, which confirms its sources' positions by itself.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        type Restored<K, I> = Saved<Vec<((i64, u64), Buffered<K, I>)>, Vec<(K, KeyState<Held<I>>)>>;
        let saved: Restored<P::Key, P::Held> = restore(saved)?;
        let epoch = self.epoch;
        self.buffer = TimeQueue::default();
        for ((t, seq), mut b) in saved.buffer {
            b.held.epoch = epoch;
            self.buffer.push(t, seq, b);
        }
        self.keys.clear();
        self.deadlines.clear();
        for (key, mut state) in saved.keys {
            for held in state.events_mut() {
                held.epoch = epoch;
            }
            for w in &state.waiting {
                self.deadlines.insert((w.deadline, w.seq), key.clone());
            }
            self.keys.insert(key, state);
        }
        self.wm = saved.wm;
        self.seq = saved.seq;
        self.out.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::{PatternShape, PatternStep};

    /// Records `(user, label)`: a label's letters name the steps it satisfies (`x`: the
    /// absence step); a match is the user and the labels taken.
    struct Letters {
        steps: usize,
    }

    impl Keyed for Letters {
        type Input = (String, String);
        type Key = String;
        type Output = (String, Vec<Option<String>>);
    }

    impl Pattern for Letters {
        type Held = (String, String);

        fn hold(&self, rec: &(String, String)) -> (String, String) {
            rec.clone()
        }

        fn satisfies(&self, rec: &(String, String)) -> Result<u64, EvalError> {
            let mut bits = 0;
            for c in rec.1.chars() {
                bits |= match c {
                    'x' => 1 << self.steps,
                    '!' => return Err(EvalError::Overflow { op: "!" }),
                    c => 1 << (c as u64 - 'a' as u64),
                };
            }
            Ok(bits)
        }

        fn matched(&self, key: &String, taken: impl Iterator<Item = Option<(String, String)>>) -> Self::Output {
            (key.clone(), taken.map(|t| t.map(|r| r.1)).collect())
        }
    }

    fn operator(steps: usize, within: Option<i64>, absence: Option<i64>) -> Patterns<Letters> {
        let step = PatternStep {
            min: 1,
            max: 1,
            strict: false,
        };
        let shape = PatternShape {
            steps: vec![step; steps],
            within,
            absence,
            max_partial: 100,
        };
        let opts = StateOptions {
            allowed_lateness: 0,
            max_keys: None,
            on_full: OnFull::EvictOldest,
        };
        Patterns::new(Letters { steps }, shape, opts)
    }

    fn add(op: &mut Patterns<Letters>, user: &str, label: &str, t: i64) -> Admit {
        op.process(user, &(user.to_string(), label.to_string()), t).unwrap()
    }

    fn drain(op: &mut Patterns<Letters>) -> Vec<(String, Vec<Option<String>>, i64)> {
        op.emitted()
            .drain(..)
            .map(|((user, taken), t)| (user, taken, t))
            .collect()
    }

    fn labels(l: &[&str]) -> Vec<Option<String>> {
        l.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn records_are_matched_in_event_time_order_once_the_watermark_passes_them() {
        let mut op = operator(2, None, None);
        // Out of order within the watermark: `b` at 5 arrives before `a` at 3.
        add(&mut op, "u", "b", 5);
        add(&mut op, "u", "a", 3);
        add(&mut op, "v", "a", 4);
        add(&mut op, "v", "b", 6);
        assert!(!op.on_watermark(5), "nothing decided before 5 and 6 are passed");
        assert!(op.on_watermark(6));
        assert_eq!(drain(&mut op), vec![("u".into(), labels(&["a", "b"]), 5)]);
        assert!(op.on_watermark(7));
        assert_eq!(drain(&mut op), vec![("v".into(), labels(&["a", "b"]), 6)]);
        assert_eq!(op.entries(), 0, "no partial match is left");
        assert_eq!(add(&mut op, "u", "a", 6), Admit::Late { watermark: 7 });
    }

    #[test]
    fn an_absence_match_comes_when_the_watermark_passes_its_deadline() {
        let mut op = operator(1, None, Some(10));
        add(&mut op, "pay1", "a", 0);
        add(&mut op, "pay2", "a", 2);
        add(&mut op, "pay2", "x", 5);
        assert!(!op.on_watermark(9));
        assert_eq!(op.next_due(), Some(10));
        assert!(op.on_watermark(10));
        assert_eq!(drain(&mut op), vec![("pay1".into(), labels(&["a"]), 10)]);
        assert_eq!(op.entries(), 0);
    }

    #[test]
    fn a_condition_that_fails_is_the_records_error_at_arrival() {
        let mut op = operator(1, None, None);
        assert!(op.process("u", &("u".into(), "!".into()), 0).is_err());
        assert_eq!(op.buffer.waiting(), 0);
    }

    #[test]
    fn a_checkpoint_restores_the_buffer_and_the_partial_and_waiting_matches() {
        let mut op = operator(2, Some(100), Some(10));
        add(&mut op, "u", "a", 1);
        add(&mut op, "v", "a", 2);
        add(&mut op, "v", "b", 3);
        add(&mut op, "w", "a", 50);
        op.set_epoch(7);
        add(&mut op, "u", "b", 60);
        op.on_watermark(20);
        // v matched at 3 and waited until 13.
        assert_eq!(drain(&mut op), vec![("v".into(), labels(&["a", "b"]), 13)]);
        assert_eq!(op.pending_epoch(), Some(0));
        let mut bytes = Vec::new();
        op.save_state(&mut bytes).unwrap();
        let mut back = operator(2, Some(100), Some(10));
        back.restore_state(&bytes).unwrap();
        let mut again = Vec::new();
        back.save_state(&mut again).unwrap();
        assert_eq!(bytes, again, "the same state saves to the same bytes");
        for o in [&mut op, &mut back] {
            o.on_watermark(i64::MAX);
        }
        let (a, b) = (drain(&mut op), drain(&mut back));
        assert_eq!(a, b);
        // u's `b` at 60 completes its match, which waits until 70.
        assert_eq!(a, vec![("u".into(), labels(&["a", "b"]), 70)]);
        assert!(back.restore_state(&bytes[..bytes.len() - 1]).is_err());
    }
}
