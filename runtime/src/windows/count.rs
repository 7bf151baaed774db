//! Count windows: per key, a window closes with its `count`-th record.
//!
//! A checkpoint holds every key's partial window and the arrival counter that orders
//! them for eviction ([`Saved`]).

use super::results::Emitted;
use super::state::{deal_saved, entry_bytes, eviction_batch, restore, results_waiting, save, to_bytes, Sorted};
use super::{Admit, Aggregation, Keyed, KeyedOperator, OnFull, StateOptions, StateSize, Window};
use super::{Clock, KeyMap, Results, SplitsByKey};
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

/// The records of one key since its last window closed.
#[derive(Serialize, Deserialize)]
struct Partial<Acc> {
    acc: Acc,
    /// Records in `acc` (`1..count`).
    n: u64,
    min_t: i64,
    max_t: i64,
    /// Order of arrival of the window's first record, for eviction: 0 without
    /// `max_keys`, so that the state saved is the same however the keys were split.
    seq: u64,
    /// The smallest epoch of the window's records. Not saved: epochs number the
    /// batches of one run.
    #[serde(skip)]
    min_epoch: u64,
}

/// What a checkpoint holds of [`CountWindows`]. `M` is [`Sorted`] when saving, a
/// `HashMap` when restoring, and a `BTreeMap` to join or split the parts of a split
/// window.
#[derive(Serialize, Deserialize)]
struct Saved<M> {
    next_seq: u64,
    keys: M,
}

/// A checkpoint read back in key order.
type SavedByKey<A> = Saved<BTreeMap<<A as Keyed>::Key, Partial<<A as Aggregation>::Acc>>>;

/// Windows of `count` records per key, in arrival order.
///
/// - When a key's window gets its `count`-th record, its result is emitted at once with
///   the window `[smallest t, largest t + 1)`, stamped with the largest `t`, and the key's
///   state is dropped. Records are never late and watermarks change nothing
///   (`allowed_lateness` does not apply).
/// - [`KeyedOperator::on_close`] emits every partial window, in key order.
/// - Entries are keys with a partial window. At `max_keys`, a new key is rejected
///   ([`OnFull::Reject`]), or ([`OnFull::EvictOldest`]) the partial windows with the
///   oldest first record — a 16th of `max_keys`, at least one — are emitted early, in key
///   order. Making room scans every key, once per 16th of `max_keys` new keys.
/// - [`KeyedOperator::pending_epoch`] is the smallest epoch of a record in a partial
///   window (scanning every key); a window releases its epoch when it is emitted.
pub struct CountWindows<A: Aggregation> {
    agg: A,
    count: u64,
    opts: StateOptions,
    keys: KeyMap<A::Key, Partial<A::Acc>>,
    next_seq: u64,
    out: Emitted<A::Output>,
    evicted: u64,
    /// The epoch of the records being processed.
    epoch: u64,
}

impl<A: Aggregation> CountWindows<A> {
    /// Windows of `count` records (`count >= 1`).
    pub fn new(agg: A, count: u64, opts: StateOptions) -> Self {
        assert!(count >= 1, "invalid count window of {count} records");
        CountWindows {
            agg,
            count,
            opts,
            keys: KeyMap::default(),
            next_seq: 0,
            out: Emitted::default(),
            evicted: 0,
            epoch: 0,
        }
    }

    fn emit(&mut self, key: &A::Key, partial: &Partial<A::Acc>) {
        let window = Window {
            start: partial.min_t,
            end: partial.max_t.saturating_add(1),
        };
        self.out
            .push_result(&self.agg, (key, window, &partial.acc, false), partial.max_t);
    }

    /// Emits and drops the partial windows with the oldest first record (`n` of them),
    /// in key order.
    fn evict_oldest(&mut self, n: usize) {
        let mut oldest: Vec<(u64, &A::Key)> = self.keys.iter().map(|(key, p)| (p.seq, key)).collect();
        if n < oldest.len() {
            oldest.select_nth_unstable(n - 1);
            oldest.truncate(n);
        }
        let mut victims: Vec<A::Key> = oldest.into_iter().map(|(_, key)| key.clone()).collect();
        victims.sort_unstable();
        for key in victims {
            let partial = self.keys.remove(&key).expect("a victim is a key of the state");
            self.emit(&key, &partial);
            self.evicted += 1;
        }
    }
}

impl<A: Aggregation> KeyedOperator<A> for CountWindows<A> {
    fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        if let Some(partial) = self.keys.get_mut(key) {
            self.agg.add(&mut partial.acc, rec, t)?;
            partial.n += 1;
            partial.min_t = partial.min_t.min(t);
            partial.max_t = partial.max_t.max(t);
            partial.min_epoch = partial.min_epoch.min(self.epoch);
            if partial.n >= self.count {
                let (key, partial) = self.keys.remove_entry(key).expect("the key was just found");
                self.emit(&key, &partial);
            }
            return Ok(Admit::Added);
        }

        let full = self.count > 1 && self.opts.max_keys.is_some_and(|max| self.keys.len() >= max);
        if full && (self.opts.on_full == OnFull::Reject || self.opts.max_keys == Some(0)) {
            return Ok(Admit::Full {
                max_keys: self.opts.max_keys.unwrap_or(0),
            });
        }
        let mut acc = self.agg.new_acc();
        self.agg.add(&mut acc, rec, t)?;
        let partial = Partial {
            acc,
            n: 1,
            min_t: t,
            max_t: t,
            seq: self.next_seq,
            min_epoch: self.epoch,
        };
        if self.opts.max_keys.is_some() {
            self.next_seq += 1;
        }
        if self.count == 1 {
            // A window of one record: complete at once, never kept.
            self.emit(&key.to_owned(), &partial);
            return Ok(Admit::Added);
        }
        if full {
            self.evict_oldest(eviction_batch(self.opts.max_keys.unwrap_or(0)));
        }
        self.keys.insert(key.to_owned(), partial);
        Ok(Admit::Added)
    }

    /// Watermarks do not close count windows.
    fn on_watermark(&mut self, _wm: i64) -> bool {
        false
    }

    /// Emits every partial window, in key order.
    fn on_close(&mut self) {
        let mut partials: Vec<(A::Key, Partial<A::Acc>)> = self.keys.drain().collect();
        partials.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, partial) in partials {
            self.emit(&key, &partial);
        }
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    fn pending_epoch(&self) -> Option<u64> {
        self.keys.values().map(|p| p.min_epoch).min()
    }

    fn emitted(&mut self) -> &mut VecDeque<(A::Output, i64)> {
        &mut self.out.queue
    }

    /// The rows `buf` held before go back to be written over.
    fn drain_emitted(&mut self, buf: &mut Results<A::Output>, max: usize) {
        self.out.drain_into(buf, max);
    }

    fn entries(&self) -> usize {
        self.keys.len()
    }

    fn state_size(&self) -> StateSize {
        let per_key = entry_bytes::<A::Key, Partial<A::Acc>>();
        StateSize {
            entries: self.keys.len(),
            bytes: self
                .keys
                .values()
                .map(|p| per_key + self.agg.acc_heap_bytes(&p.acc))
                .sum(),
        }
    }

    fn take_evictions(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.evicted), 0)
    }

    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        if !self.out.queue.is_empty() {
            return Err(results_waiting(self.out.queue.len()));
        }
        save(
            &Saved {
                next_seq: self.next_seq,
                keys: Sorted::new(&self.keys),
            },
            out,
        )
    }

    /// The restored windows hold the current epoch: what they held before is in the
    /// checkpoint, which confirms its sources' positions by itself.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        let saved: Saved<KeyMap<A::Key, Partial<A::Acc>>> = restore(saved)?;
        self.keys = saved.keys;
        self.keys.values_mut().for_each(|p| p.min_epoch = self.epoch);
        self.next_seq = saved.next_seq;
        self.out.queue.clear();
        Ok(())
    }
}

impl<A: Aggregation> SplitsByKey<A> for CountWindows<A> {
    /// Without `max_keys` a key's windows are its records' alone.
    fn clock(&self) -> Option<Clock> {
        self.opts.max_keys.is_none().then_some(Clock::Counts)
    }

    /// Every part's keys, in key order.
    fn join_saved(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        let mut joined: SavedByKey<A> = Saved {
            next_seq: 0,
            keys: BTreeMap::new(),
        };
        for bytes in parts {
            let part: SavedByKey<A> = restore(bytes)?;
            joined.next_seq = joined.next_seq.max(part.next_seq);
            joined.keys.extend(part.keys);
        }
        to_bytes(&joined)
    }

    /// Count windows have no watermark: `i64::MIN`.
    fn split_saved(
        saved: &[u8],
        parts: usize,
        part_of: &dyn Fn(&A::Key) -> usize,
    ) -> Result<(i64, Vec<Vec<u8>>), String> {
        let whole: SavedByKey<A> = restore(saved)?;
        let next_seq = whole.next_seq;
        let out = deal_saved(whole.keys, parts, part_of, |keys: BTreeMap<A::Key, _>| Saved {
            next_seq,
            keys,
        })?;
        Ok((i64::MIN, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::state::testing::Step::Rec;
    use crate::windows::state::testing::{
        assert_each_key_once_in_order, assert_garbage_never_panics, assert_resumes, drain, drain_chunked, feed,
        limited, many_keys, opts, out, w, CountSum, Seen,
    };

    #[test]
    fn closing_many_partial_windows_emits_each_key_once_in_key_order() {
        let n = 20_000;
        let mut op = CountWindows::new(CountSum, 10, opts(0));
        for (i, key) in many_keys(n).iter().enumerate().rev() {
            feed(&mut op, key, i as i64, 1_000);
        }
        op.on_close();
        assert_each_key_once_in_order(&drain_chunked(&mut op), n, w(1_000, 1_001));
        assert!(!op.has_emitted());
    }

    #[test]
    fn a_window_closes_with_every_nth_record_of_its_key() {
        let mut op = CountWindows::new(CountSum, 3, opts(0));
        feed(&mut op, "a", 1, 10);
        feed(&mut op, "b", 1, 2);
        feed(&mut op, "a", 2, 50);
        assert_eq!(drain(&mut op), []);
        feed(&mut op, "a", 4, 30); // out of order: the window spans the smallest to the largest t
        assert_eq!(drain(&mut op), [out("a", w(10, 51), 3, 7, false, 50)]);
        assert_eq!(op.state_size().entries, 1);
        feed(&mut op, "b", 2, 4);
        feed(&mut op, "a", 8, 60);
        feed(&mut op, "b", 4, 6);
        assert_eq!(drain(&mut op), [out("b", w(2, 7), 3, 7, false, 6)]);
        assert!(!op.on_watermark(i64::MAX), "watermarks close nothing");
        assert_eq!(drain(&mut op), []);
        assert_eq!(op.state_size().entries, 1);
    }

    #[test]
    fn a_window_of_one_record_is_emitted_at_once() {
        let mut op = CountWindows::new(CountSum, 1, limited(0, OnFull::Reject));
        assert_eq!(feed(&mut op, "a", 5, 7), Admit::Added);
        assert_eq!(drain(&mut op), [out("a", w(7, 8), 1, 5, false, 7)]);
        assert_eq!(op.state_size(), StateSize::default());
    }

    #[test]
    fn close_emits_the_partial_windows_in_key_order() {
        let mut op = CountWindows::new(CountSum, 10, opts(0));
        for (key, t) in [("c", 1), ("a", 2), ("b", 3), ("c", 4)] {
            feed(&mut op, key, 1, t);
        }
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(2, 3), 1, 1, false, 2),
                out("b", w(3, 4), 1, 1, false, 3),
                out("c", w(1, 5), 2, 2, false, 4),
            ]
        );
        assert_eq!(op.state_size(), StateSize::default());
    }

    #[test]
    fn a_partial_window_pins_the_oldest_epoch_of_its_records_until_emitted() {
        let mut op = CountWindows::new(CountSum, 3, opts(0));
        assert_eq!(op.pending_epoch(), None);
        feed(&mut op, "z", 1, 0);
        assert_eq!(op.pending_epoch(), Some(0), "epoch 0 before set_epoch");
        op.set_epoch(1);
        feed(&mut op, "a", 1, 1);
        op.set_epoch(2);
        feed(&mut op, "b", 1, 2);
        feed(&mut op, "a", 1, 3);
        feed(&mut op, "z", 1, 4);
        feed(&mut op, "z", 1, 5); // z's window complete: emitted
        assert_eq!(drain(&mut op), [out("z", w(0, 6), 3, 3, false, 5)]);
        assert_eq!(op.pending_epoch(), Some(1), "the oldest epoch of a's window");
        op.set_epoch(3);
        feed(&mut op, "a", 1, 6); // a's window complete
        assert_eq!(op.pending_epoch(), Some(2), "b's window");
        feed(&mut op, "a", 1, 7); // a new window of a
        op.on_close();
        assert_eq!(op.pending_epoch(), None);
        assert_eq!(drain(&mut op).len(), 3);
    }

    #[test]
    fn a_window_of_one_record_pins_nothing() {
        let mut op = CountWindows::new(CountSum, 1, opts(0));
        op.set_epoch(4);
        feed(&mut op, "a", 1, 1);
        assert_eq!(op.pending_epoch(), None);
        assert_eq!(drain(&mut op).len(), 1);
    }

    #[test]
    fn evict_oldest_releases_the_windows_it_emits_early() {
        let mut op = CountWindows::new(CountSum, 5, limited(2, OnFull::EvictOldest));
        op.set_epoch(1);
        feed(&mut op, "a", 1, 1);
        op.set_epoch(2);
        feed(&mut op, "b", 1, 2);
        assert_eq!(op.pending_epoch(), Some(1));
        op.set_epoch(3);
        feed(&mut op, "c", 1, 3); // 2 / 16 -> 1 evicted: a
        assert_eq!(drain(&mut op), [out("a", w(1, 2), 1, 1, false, 1)]);
        assert_eq!(op.pending_epoch(), Some(2));
    }

    #[test]
    fn reject_when_full_changes_nothing() {
        let mut op = CountWindows::new(CountSum, 2, limited(2, OnFull::Reject));
        feed(&mut op, "a", 1, 1);
        feed(&mut op, "b", 1, 1);
        assert_eq!(feed(&mut op, "c", 1, 1), Admit::Full { max_keys: 2 });
        assert_eq!(op.state_size().entries, 2);
        assert_eq!(feed(&mut op, "a", 1, 2), Admit::Added);
        assert_eq!(drain(&mut op), [out("a", w(1, 3), 2, 2, false, 2)]);
        assert_eq!(feed(&mut op, "c", 1, 3), Admit::Added, "room again");
        assert_eq!(op.take_evictions(), (0, 0));
    }

    #[test]
    fn evict_oldest_emits_the_oldest_partial_windows_early() {
        let mut op = CountWindows::new(CountSum, 5, limited(32, OnFull::EvictOldest));
        // Arrival order k31, k30, …, k00: the oldest are the largest keys.
        for i in (0..32).rev() {
            feed(&mut op, &format!("k{i:02}"), i, 100 - i);
        }
        feed(&mut op, "k31", 1, 200); // more records do not make a window younger
        assert_eq!(drain(&mut op), []);
        assert_eq!(feed(&mut op, "new", 1, 300), Admit::Added);
        // 32 / 16 = 2 evicted, in key order.
        assert_eq!(
            drain(&mut op),
            [
                out("k30", w(70, 71), 1, 30, false, 70),
                out("k31", w(69, 201), 2, 32, false, 200)
            ]
        );
        assert_eq!(op.take_evictions(), (2, 0));
        assert_eq!(op.state_size().entries, 31);
    }

    #[test]
    fn part_filled_windows_resume_from_a_checkpoint() {
        let seen = assert_resumes(
            || CountWindows::new(CountSum, 3, opts(0)),
            &[Rec("a", 1, 1_000), Rec("a", 2, 3_000), Rec("b", 4, 2_000)],
            &[Rec("a", 8, 2_000), Rec("b", 16, 500), Rec("c", 32, 4_000)],
        );
        assert_eq!(
            seen,
            [
                Seen::Admit(Admit::Added),
                Seen::Result(out("a", w(1_000, 3_001), 3, 11, false, 3_000).0, 3_000),
                Seen::Admit(Admit::Added),
                Seen::Admit(Admit::Added),
                Seen::Result(out("b", w(500, 2_001), 2, 20, false, 2_000).0, 2_000),
                Seen::Result(out("c", w(4_000, 4_001), 1, 32, false, 4_000).0, 4_000),
            ]
        );
    }

    #[test]
    fn a_full_state_restored_evicts_the_window_begun_first() {
        let seen = assert_resumes(
            || CountWindows::new(CountSum, 3, limited(2, OnFull::EvictOldest)),
            // `z` began first but sorts last: the order of arrival decides, not the key.
            &[Rec("z", 1, 1_000), Rec("b", 2, 2_000), Rec("z", 4, 3_000)],
            &[Rec("c", 8, 4_000)],
        );
        assert_eq!(
            seen[1],
            Seen::Result(out("z", w(1_000, 3_001), 2, 5, false, 3_000).0, 3_000)
        );
    }

    #[test]
    fn damaged_state_is_an_error_never_a_panic() {
        assert_garbage_never_panics(|| CountWindows::new(CountSum, 3, limited(2, OnFull::EvictOldest)));
    }
}
