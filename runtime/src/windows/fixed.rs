//! Tumbling and hopping windows: windows of a fixed `size` starting every `slide` ms,
//! aligned on the Unix epoch plus `offset` (tumbling: `slide == size`).
//!
//! A record at `t` belongs to every window `[s, s + size)` with `s <= t < s + size` and
//! `s ≡ offset (mod slide)`: one window when tumbling, `size / slide` (rounded up or
//! down, depending on `t`) when hopping. The state is one ordered map of windows by
//! `(end, start)` — so the first is the next to fire — each holding a hash map from key
//! to accumulator, and a second such map for windows that fired but still accept late
//! records (`allowed_lateness`). An open window also holds the oldest epoch of its
//! records, which it pins until it fires.
//!
//! A checkpoint holds the watermark and both maps of windows, with every key's
//! accumulator ([`Saved`]).

use super::key_table::KeyTable;
use super::state::{deal_keys, emit_sorted, entry_bytes, restore, results_waiting, save, to_bytes, Sorted};
use super::KeyMap;
use super::{
    Admit, Aggregation, BuildRows, Keyed, KeyedOperator, OnFull, Reach, Results, StateOptions, StateSize, Window,
};
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;
use std::mem::size_of;

/// A fired window's accumulators, sorted by key, not yet turned into results.
type FiredWindow<A> = (Window, std::vec::IntoIter<(<A as Keyed>::Key, <A as Aggregation>::Acc)>);
/// Windows by `(end, start)`.
type Bins<A> = BTreeMap<(i64, i64), Bin<<A as Keyed>::Key, <A as Aggregation>::Acc>>;

/// One window: the accumulators of its keys, and the oldest epoch among its records.
struct Bin<K, Acc> {
    keys: KeyTable<K, Acc>,
    /// The smallest epoch of a record added to the window. Only read while the window is
    /// open: a retained window has emitted its records, and emits late ones at once.
    min_epoch: u64,
}

/// Approximate bytes of a B-tree slot beyond its key and value.
const BTREE_ENTRY_OVERHEAD: usize = 16;

/// What a checkpoint holds of [`FixedWindows`]: the watermark, and the open and retained
/// windows as `((end, start), accumulators by key)`, in order. `M` is [`Sorted`] when
/// saving and a `HashMap` when restoring. Epochs are not saved: they number the batches
/// of one run (see `restore_state`).
#[derive(Serialize, Deserialize)]
struct Saved<M> {
    wm: i64,
    open: SavedBins<M>,
    retained: SavedBins<M>,
}

/// Windows as saved: `((end, start), accumulators by key)`, in order.
type SavedBins<M> = Vec<((i64, i64), M)>;

/// The windows of `bins`, borrowed for saving.
fn saved_bins<A: Aggregation>(bins: &Bins<A>) -> SavedBins<Sorted<'_, A::Key, A::Acc>> {
    bins.iter()
        .map(|(&window, bin)| (window, Sorted::new(&bin.keys)))
        .collect()
}

/// Tumbling (`slide == size`) and hopping (`slide < size`) windows on event time.
///
/// - A window `[start, end)` *fires* when the watermark reaches `end`: the result of
///   every key, in key order, stamped `end - 1`. Windows fire in `(end, start)` order.
/// - With `allowed_lateness > 0` a fired window keeps its state until the watermark
///   reaches `end + allowed_lateness`; a record arriving meanwhile updates it and the key's
///   result is emitted again at once (`update` = the key already had a result in it).
/// - A record whose every window has closed is [`Admit::Late`] and changes nothing.
/// - `max_keys` bounds the (key, window) accumulators, open and retained together. At the
///   limit, [`OnFull::Reject`] rejects a record needing a new one (before changing
///   anything); [`OnFull::EvictOldest`] fires the oldest open window early (all its keys,
///   `update = false`, not retained; a later record for it starts it afresh, so it fires
///   again with the keys that came after), or drops the oldest retained window when no
///   window is open.
/// - [`KeyedOperator::pending_epoch`] is the smallest epoch held by an open window; a
///   window releases its epoch when it fires (early or not).
pub struct FixedWindows<A: Aggregation> {
    agg: A,
    size: i64,
    slide: i64,
    offset: i64,
    opts: StateOptions,
    /// The last watermark (`i64::MIN` before the first).
    wm: i64,
    /// Windows that have not fired (`end > wm`).
    open: Bins<A>,
    /// Windows that fired and still accept late records (`end <= wm < end + lateness`).
    retained: Bins<A>,
    /// Accumulators in `open` and `retained`.
    entries: usize,
    out: VecDeque<(A::Output, i64)>,
    /// Fired windows that are not kept (no lateness), their keys sorted, waiting to be
    /// turned into results chunk by chunk (see `drain_emitted`).
    fired: VecDeque<FiredWindow<A>>,
    evicted: u64,
    /// The epoch of the records being processed.
    epoch: u64,
}

impl<A: Aggregation> FixedWindows<A> {
    /// Windows of `size` ms every `slide` ms, starting at multiples of `slide` plus
    /// `offset`. The caller guarantees `0 < slide <= size` and `0 <= offset < slide`.
    pub fn new(agg: A, size: i64, slide: i64, offset: i64, opts: StateOptions) -> Self {
        assert!(
            0 < slide && slide <= size && (0..slide).contains(&offset),
            "invalid fixed window: size {size}, slide {slide}, offset {offset}"
        );
        FixedWindows {
            agg,
            size,
            slide,
            offset,
            opts: StateOptions {
                allowed_lateness: opts.allowed_lateness.max(0),
                ..opts
            },
            wm: i64::MIN,
            open: BTreeMap::new(),
            retained: BTreeMap::new(),
            entries: 0,
            out: VecDeque::new(),
            fired: VecDeque::new(),
            evicted: 0,
            epoch: 0,
        }
    }

    /// The windows of a record at `t`, as `(end, start)`, oldest first.
    fn windows_of(&self, t: i64) -> Assigned {
        Assigned::new(t, self.size, self.slide, self.offset)
    }

    /// True when the window ending at `end` no longer accepts records.
    fn closed(&self, end: i64) -> bool {
        end.saturating_add(self.opts.allowed_lateness) <= self.wm
    }

    /// Adds the record to a new accumulator for `key` in `window` (fired or not), making
    /// room first when the state is full and the policy is to evict. On an `add` error
    /// nothing changed.
    fn add_new<Q>(&mut self, fired: bool, window: (i64, i64), key: &Q, rec: &A::Input, t: i64) -> Result<(), EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        let mut acc = self.agg.new_acc();
        self.agg.add(&mut acc, rec, t)?;
        if let (Some(max), OnFull::EvictOldest) = (self.opts.max_keys, self.opts.on_full) {
            while self.entries >= max && self.evict_oldest() {}
        }
        // A new window mostly holds the keys its neighbours hold: room for as many spares
        // growing its table key by key.
        let room = match self.open.contains_key(&window) || self.retained.contains_key(&window) {
            true => 0,
            false => self
                .open
                .values()
                .chain(self.retained.values())
                .map(|bin| bin.keys.len())
                .max()
                .unwrap_or(0),
        };
        let bins = if fired { &mut self.retained } else { &mut self.open };
        let bin = bins.entry(window).or_insert_with(|| Bin {
            keys: KeyTable::with_capacity(room),
            min_epoch: u64::MAX,
        });
        bin.keys.insert_new(key.to_owned(), acc);
        bin.min_epoch = bin.min_epoch.min(self.epoch);
        self.entries += 1;
        Ok(())
    }

    /// Fires the oldest open window early and drops it or, when none is open, drops the
    /// oldest retained window. False when there is no state at all.
    fn evict_oldest(&mut self) -> bool {
        let map = if let Some(((end, start), bin)) = self.open.pop_first() {
            emit_sorted(
                &self.agg,
                &mut self.out,
                &bin.keys,
                Window { start, end },
                false,
                end.saturating_sub(1),
            );
            bin.keys
        } else if let Some((_, bin)) = self.retained.pop_first() {
            bin.keys
        } else {
            return false;
        };
        self.entries -= map.len();
        self.evicted += map.len() as u64;
        true
    }

    /// The number of (key, window) accumulators of a record that do not exist yet, for
    /// the windows still accepting it.
    fn missing<Q>(&self, key: &Q, t: i64) -> usize
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.windows_of(t)
            .filter(|&(end, start)| {
                let bins = if end <= self.wm { &self.retained } else { &self.open };
                !self.closed(end) && !bins.get(&(end, start)).is_some_and(|bin| bin.keys.contains_key(key))
            })
            .count()
    }
}

/// The windows of one record, `(end, start)`, oldest first (computed in `i128`: starts
/// and ends are clamped to the `i64` range, which keeps them distinct).
#[derive(Debug, Clone)]
pub(crate) struct Assigned {
    next: i128,
    last: i128,
    size: i128,
    slide: i128,
}

impl Assigned {
    /// The windows of size `size` every `slide` (shifted by `offset`) holding `t`.
    pub(crate) fn new(t: i64, size: i64, slide: i64, offset: i64) -> Self {
        // How far t is past the newest window's start, in [0, slide): in i64 but at the
        // very bottom of the range (an i128 division costs more than the rest of a record).
        let past = match t.checked_sub(offset) {
            Some(d) => d.rem_euclid(slide),
            None => (i128::from(t) - i128::from(offset)).rem_euclid(i128::from(slide)) as i64,
        };
        let last = i128::from(t) - i128::from(past);
        // The oldest window still containing t: the smallest s = last - k·slide with
        // s + size > t, so k = (size - 1 - past) / slide (not negative: past < slide <= size).
        let first = last - i128::from((size - 1 - past) / slide) * i128::from(slide);
        Assigned {
            next: first,
            last,
            size: i128::from(size),
            slide: i128::from(slide),
        }
    }

    /// The end of the newest window.
    pub(super) fn last_end(&self) -> i64 {
        clamp(self.last + self.size)
    }
}

impl Iterator for Assigned {
    type Item = (i64, i64);

    fn next(&mut self) -> Option<(i64, i64)> {
        if self.next > self.last {
            return None;
        }
        let start = self.next;
        self.next += self.slide;
        Some((clamp(start + self.size), clamp(start)))
    }
}

pub(super) fn clamp(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// A saved state read with its accumulators in key order, to be joined or split.
type SavedMaps<A> = Saved<BTreeMap<<A as Keyed>::Key, <A as Aggregation>::Acc>>;

/// Without lateness or `max_keys`, a record is late when its newest window has ended.
impl<A: Aggregation> super::SplitsByKey<A> for FixedWindows<A> {
    fn clock(&self) -> Option<super::Clock> {
        (self.opts.allowed_lateness == 0 && self.opts.max_keys.is_none()).then_some(super::Clock::Windows(
            super::Grid {
                size: self.size,
                slide: self.slide,
                offset: self.offset,
            },
        ))
    }

    /// The union of the parts' windows, each window's keys in key order (as [`Sorted`]
    /// saves them).
    fn join_saved(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        let mut wm = i64::MIN;
        let (mut open, mut retained) = (BTreeMap::new(), BTreeMap::new());
        for bytes in parts {
            let part: SavedMaps<A> = restore(bytes)?;
            wm = wm.max(part.wm);
            for (bins, joined) in [(part.open, &mut open), (part.retained, &mut retained)] {
                for (window, keys) in bins {
                    joined.entry(window).or_insert_with(BTreeMap::new).extend(keys);
                }
            }
        }
        let joined: SavedMaps<A> = Saved {
            wm,
            open: open.into_iter().collect(),
            retained: retained.into_iter().collect(),
        };
        to_bytes(&joined)
    }

    fn split_saved(
        saved: &[u8],
        parts: usize,
        part_of: &dyn Fn(&A::Key) -> usize,
    ) -> Result<(i64, Vec<Vec<u8>>), String> {
        let whole: SavedMaps<A> = restore(saved)?;
        let split_bins = |bins: SavedBins<BTreeMap<A::Key, A::Acc>>| {
            let mut split: Vec<SavedBins<BTreeMap<A::Key, A::Acc>>> = (0..parts).map(|_| Vec::new()).collect();
            for (window, keys) in bins {
                let by_part: Vec<BTreeMap<A::Key, A::Acc>> = deal_keys(keys, parts, part_of);
                for (bins, keys) in split.iter_mut().zip(by_part) {
                    if !keys.is_empty() {
                        bins.push((window, keys));
                    }
                }
            }
            split
        };
        let (open, retained) = (split_bins(whole.open), split_bins(whole.retained));
        let mut out = Vec::with_capacity(parts);
        for (open, retained) in open.into_iter().zip(retained) {
            out.push(to_bytes(&Saved {
                wm: whole.wm,
                open,
                retained,
            })?);
        }
        Ok((whole.wm, out))
    }
}

impl<A: Aggregation> KeyedOperator<A> for FixedWindows<A> {
    /// Adds the record to each of its windows that is still open or retained.
    ///
    /// On an `add` error the windows before the failing one (in `(end, start)` order)
    /// keep the record and the others do not see it: a hopping record is added window by
    /// window, and an accumulator cannot be rolled back.
    fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        let wm = self.wm;
        let windows = self.windows_of(t);
        // The newest window closes last: when it has closed, all have.
        if self.closed(windows.last_end()) {
            return Ok(Admit::Late { watermark: wm });
        }
        if let Some(max) = self.opts.max_keys {
            let full = match self.opts.on_full {
                // Only look the key up when the record could need more room than is left.
                OnFull::Reject => {
                    self.entries + windows.clone().count() > max && {
                        let missing = self.missing(key, t);
                        missing > 0 && self.entries + missing > max
                    }
                }
                // Nothing to evict: every record needs a new accumulator.
                OnFull::EvictOldest => max == 0,
            };
            if full {
                return Ok(Admit::Full { max_keys: max });
            }
        }
        for (end, start) in windows {
            if self.closed(end) {
                continue;
            }
            let fired = end <= wm;
            let bins = if fired { &mut self.retained } else { &mut self.open };
            let existing = bins
                .get_mut(&(end, start))
                .and_then(|bin| bin.keys.get_mut(key).map(|acc| (acc, &mut bin.min_epoch)));
            let existed = match existing {
                Some((acc, min_epoch)) => {
                    self.agg.add(acc, rec, t)?;
                    *min_epoch = (*min_epoch).min(self.epoch);
                    true
                }
                None => {
                    self.add_new(fired, (end, start), key, rec, t)?;
                    false
                }
            };
            if fired {
                // A late record in a retained window: the key's result again, at once.
                let (key, acc) = self.retained[&(end, start)]
                    .keys
                    .get_key_value(key)
                    .expect("the accumulator was just added");
                let result = self.agg.output(key, Window { start, end }, acc, existed);
                self.out.push_back((result, end - 1));
            }
        }
        Ok(Admit::Added)
    }

    /// The key's entry in the newest open window (where nearly every record goes) is
    /// asked for from memory.
    fn prefetch<Q>(&self, key: &Q, _t: Option<i64>, reach: Reach)
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if reach == Reach::Entry {
            if let Some((_, bin)) = self.open.last_key_value() {
                bin.keys.prefetch(key);
            }
        }
    }

    fn next_due(&self) -> Option<i64> {
        let fires = self.open.keys().next().map(|&(end, _)| end);
        let expires = self
            .retained
            .keys()
            .next()
            .map(|&(end, _)| end.saturating_add(self.opts.allowed_lateness));
        fires.into_iter().chain(expires).min()
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        self.wm = self.wm.max(wm);
        let wm = self.wm;
        let lateness = self.opts.allowed_lateness;
        let mut emitted = false;
        while let Some(first) = self.open.first_entry() {
            let (end, start) = *first.key();
            if end > wm {
                break;
            }
            let bin = first.remove();
            let keys = &bin.keys;
            emitted |= !keys.is_empty();
            if lateness > 0 {
                emit_sorted(&self.agg, &mut self.out, keys, Window { start, end }, false, end - 1);
                if end.saturating_add(lateness) > wm {
                    self.retained.insert((end, start), bin);
                } else {
                    self.entries -= keys.len();
                }
            } else {
                // Not kept: move the accumulators out instead of building every result now.
                // (With lateness, results are built at once, so they stay in window order.)
                self.entries -= keys.len();
                let mut sorted: Vec<(A::Key, A::Acc)> = bin.keys.into_entries().collect();
                sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                self.fired.push_back((Window { start, end }, sorted.into_iter()));
            }
        }
        while let Some(first) = self.retained.first_entry() {
            if first.key().0.saturating_add(lateness) > wm {
                break;
            }
            self.entries -= first.remove().keys.len();
        }
        emitted
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// The smallest epoch held by an open window (there are few: a scan).
    fn pending_epoch(&self) -> Option<u64> {
        self.open.values().map(|bin| bin.min_epoch).min()
    }

    fn emitted(&mut self) -> &mut VecDeque<(A::Output, i64)> {
        &mut self.out
    }

    fn has_emitted(&mut self) -> bool {
        !self.out.is_empty() || !self.fired.is_empty()
    }

    fn drain_emitted(&mut self, buf: &mut Results<A::Output>, max: usize) {
        let n = self.out.len().min(max);
        buf.extend(self.out.drain(..n));
        while buf.len() < max {
            let Some((window, entries)) = self.fired.front_mut() else {
                break;
            };
            let room = max - buf.len();
            let time = window.end - 1;
            let agg = &self.agg;
            for (key, acc) in entries.by_ref().take(room) {
                buf.build(
                    time,
                    || agg.output(&key, *window, &acc, false),
                    |into| agg.output_into(&key, *window, &acc, false, into),
                );
            }
            if entries.len() == 0 {
                self.fired.pop_front();
            }
        }
    }

    fn entries(&self) -> usize {
        self.entries
    }

    fn state_size(&self) -> StateSize {
        let per_window = size_of::<((i64, i64), Bin<A::Key, A::Acc>)>() + BTREE_ENTRY_OVERHEAD;
        let per_entry = entry_bytes::<A::Key, A::Acc>();
        let bytes = self
            .open
            .values()
            .chain(self.retained.values())
            .map(|Bin { keys, .. }| {
                per_window
                    + keys.len() * per_entry
                    + keys.values().map(|acc| self.agg.acc_heap_bytes(acc)).sum::<usize>()
            })
            .sum();
        StateSize {
            entries: self.entries,
            bytes,
        }
    }

    fn take_evictions(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.evicted), 0)
    }

    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let waiting = self.out.len() + self.fired.iter().map(|(_, keys)| keys.len()).sum::<usize>();
        if waiting > 0 {
            return Err(results_waiting(waiting));
        }
        let saved = Saved {
            wm: self.wm,
            open: saved_bins::<A>(&self.open),
            retained: saved_bins::<A>(&self.retained),
        };
        save(&saved, out)
    }

    /// The restored windows hold the current epoch: what they held before is in the
    /// checkpoint, which confirms its sources' positions by itself.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        let saved: Saved<KeyMap<A::Key, A::Acc>> = restore(saved)?;
        // A window ends after a record's time, so never at `i64::MIN` (results are
        // stamped `end - 1`).
        if saved
            .open
            .iter()
            .chain(&saved.retained)
            .any(|&((end, _), _)| end == i64::MIN)
        {
            return Err("a window ends before any record".into());
        }
        let epoch = self.epoch;
        let bins = |windows: SavedBins<KeyMap<A::Key, A::Acc>>| -> Bins<A> {
            windows
                .into_iter()
                .map(|(window, keys)| {
                    let keys = KeyTable::from_map(keys);
                    (window, Bin { keys, min_epoch: epoch })
                })
                .collect()
        };
        self.open = bins(saved.open);
        self.retained = bins(saved.retained);
        self.wm = saved.wm;
        self.entries = self
            .open
            .values()
            .chain(self.retained.values())
            .map(|bin| bin.keys.len())
            .sum();
        self.out.clear();
        self.fired.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::state::testing::Step::{Rec, Wm};
    use crate::windows::state::testing::{
        assert_each_key_once_in_order, assert_garbage_never_panics, assert_resumes, drain, drain_chunked, feed,
        limited, many_keys, opts, out, w, CountSum, Seen,
    };
    use std::collections::HashMap;

    fn tumbling(size: i64, lateness: i64) -> FixedWindows<CountSum> {
        FixedWindows::new(CountSum, size, size, 0, opts(lateness))
    }

    #[test]
    fn next_due_is_the_first_end_then_the_end_of_its_lateness() {
        let mut op = tumbling(10_000, 3_000);
        assert_eq!(op.next_due(), None, "nothing open");
        feed(&mut op, "a", 1, 25_000);
        feed(&mut op, "b", 1, 12_000);
        assert_eq!(op.next_due(), Some(20_000));
        op.on_watermark(20_000);
        assert_eq!(op.next_due(), Some(23_000), "kept for lateness until 23 s");
        op.on_watermark(23_000);
        assert_eq!(op.next_due(), Some(30_000));
        op.on_watermark(33_000);
        assert_eq!(op.next_due(), None);
    }

    #[test]
    fn an_event_on_a_boundary_belongs_to_the_window_starting_there() {
        let mut op = tumbling(10_000, 0);
        feed(&mut op, "a", 1, 9_999);
        feed(&mut op, "a", 2, 10_000);
        feed(&mut op, "a", 4, 19_999);
        op.on_watermark(i64::MAX);
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(0, 10_000), 1, 1, false, 9_999),
                out("a", w(10_000, 20_000), 2, 6, false, 19_999),
            ]
        );
    }

    #[test]
    fn negative_timestamps_align_on_the_epoch() {
        let mut op = tumbling(10_000, 0);
        feed(&mut op, "a", 1, -1);
        feed(&mut op, "a", 2, -10_000);
        feed(&mut op, "a", 4, -10_001);
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(-20_000, -10_000), 1, 4, false, -10_001),
                out("a", w(-10_000, 0), 2, 3, false, -1),
            ]
        );
    }

    #[test]
    fn offset_shifts_the_windows() {
        let mut op = FixedWindows::new(CountSum, 10_000, 10_000, 2_000, opts(0));
        feed(&mut op, "a", 1, 1_999);
        feed(&mut op, "a", 2, 2_000);
        feed(&mut op, "a", 4, 11_999);
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(-8_000, 2_000), 1, 1, false, 1_999),
                out("a", w(2_000, 12_000), 2, 6, false, 11_999),
            ]
        );
    }

    #[test]
    fn a_window_fires_when_the_watermark_reaches_its_end() {
        let mut op = tumbling(10_000, 0);
        feed(&mut op, "a", 1, 5_000);
        assert!(!op.on_watermark(9_999));
        assert_eq!(drain(&mut op), []);
        assert!(op.on_watermark(10_000));
        assert_eq!(drain(&mut op), [out("a", w(0, 10_000), 1, 1, false, 9_999)]);
        assert_eq!(op.state_size().entries, 0);
        assert!(!op.on_watermark(30_000));
    }

    #[test]
    fn results_come_in_window_order_then_key_order() {
        let mut op = tumbling(10_000, 0);
        for (key, t) in [
            ("c", 15_000),
            ("b", 1_000),
            ("c", 2_000),
            ("a", 12_000),
            ("a", 3_000),
            ("b", 11_000),
        ] {
            feed(&mut op, key, 1, t);
        }
        assert_eq!(op.state_size().entries, 6);
        assert!(op.on_watermark(20_000));
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(0, 10_000), 1, 1, false, 9_999),
                out("b", w(0, 10_000), 1, 1, false, 9_999),
                out("c", w(0, 10_000), 1, 1, false, 9_999),
                out("a", w(10_000, 20_000), 1, 1, false, 19_999),
                out("b", w(10_000, 20_000), 1, 1, false, 19_999),
                out("c", w(10_000, 20_000), 1, 1, false, 19_999),
            ]
        );
    }

    #[test]
    fn a_late_record_without_lateness_changes_nothing() {
        let mut op = tumbling(10_000, 0);
        feed(&mut op, "a", 1, 5_000);
        op.on_watermark(10_000);
        drain(&mut op);
        assert_eq!(feed(&mut op, "a", 1, 9_999), Admit::Late { watermark: 10_000 });
        assert_eq!(op.state_size(), StateSize::default());
        op.on_close();
        assert_eq!(drain(&mut op), []);
    }

    #[test]
    fn a_late_record_within_the_lateness_updates_its_window() {
        let mut op = tumbling(10_000, 5_000);
        feed(&mut op, "a", 1, 1_000);
        assert!(op.on_watermark(10_000));
        assert_eq!(drain(&mut op), [out("a", w(0, 10_000), 1, 1, false, 9_999)]);
        assert_eq!(op.state_size().entries, 1, "retained for late records");

        assert_eq!(feed(&mut op, "a", 2, 2_000), Admit::Added);
        assert_eq!(drain(&mut op), [out("a", w(0, 10_000), 2, 3, true, 9_999)]);
        assert_eq!(feed(&mut op, "b", 5, 3_000), Admit::Added);
        assert_eq!(drain(&mut op), [out("b", w(0, 10_000), 1, 5, false, 9_999)]);
        assert_eq!(feed(&mut op, "b", 1, 4_000), Admit::Added);
        assert_eq!(drain(&mut op), [out("b", w(0, 10_000), 2, 6, true, 9_999)]);

        assert!(
            !op.on_watermark(14_999),
            "retained windows never fire again on watermarks"
        );
        assert_eq!(feed(&mut op, "a", 4, 9_999), Admit::Added);
        assert_eq!(drain(&mut op), [out("a", w(0, 10_000), 3, 7, true, 9_999)]);

        op.on_watermark(15_000);
        assert_eq!(op.state_size(), StateSize::default());
        assert_eq!(feed(&mut op, "a", 1, 5_000), Admit::Late { watermark: 15_000 });
        assert_eq!(drain(&mut op), []);
    }

    /// Results depend on the records and watermarks, not on how they are batched.
    #[test]
    fn batching_does_not_change_the_results() {
        let records = [
            ("b", 500),
            ("a", 3_000),
            ("c", 1_500),
            ("a", 9_000),
            ("b", 8_000),
            ("c", 12_500),
            ("a", 11_000),
            ("b", 21_000),
            ("a", 19_500),
            ("c", 30_000),
            ("b", 28_500),
            ("a", 41_000),
        ];
        let run = |group: usize| {
            let mut op = FixedWindows::new(CountSum, 10_000, 5_000, 0, opts(0));
            let mut results = Vec::new();
            let mut max_t = i64::MIN;
            for chunk in records.chunks(group) {
                for &(key, t) in chunk {
                    assert_eq!(feed(&mut op, key, t / 500, t), Admit::Added);
                    max_t = max_t.max(t);
                }
                op.on_watermark(max_t - 2_000);
                results.extend(drain(&mut op));
            }
            op.on_close();
            results.extend(drain(&mut op));
            results
        };
        let one_by_one = run(1);
        // 12 records, each in 2 windows.
        assert_eq!(one_by_one.iter().map(|((_, _, n, _, _), _)| n).sum::<i64>(), 24);
        for group in [2, 3, 5, 12] {
            assert_eq!(run(group), one_by_one, "groups of {group}");
        }
    }

    #[test]
    fn hopping_puts_a_record_in_every_window_covering_it() {
        let mut op = FixedWindows::new(CountSum, 10_000, 5_000, 0, opts(0));
        feed(&mut op, "a", 1, 7_000);
        assert_eq!(op.state_size().entries, 2);
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(0, 10_000), 1, 1, false, 9_999),
                out("a", w(5_000, 15_000), 1, 1, false, 14_999),
            ]
        );
    }

    #[test]
    fn hopping_with_a_size_not_a_multiple_of_the_slide() {
        let mut op = FixedWindows::new(CountSum, 10_000, 3_000, 0, opts(0));
        // Starts are multiples of 3 000 in (t - 10 000, t].
        feed(&mut op, "a", 1, 10_000);
        feed(&mut op, "b", 1, 0);
        op.on_close();
        let windows: Vec<(String, Window)> = drain(&mut op).into_iter().map(|((k, w, ..), _)| (k, w)).collect();
        assert_eq!(
            windows,
            [
                ("b".to_string(), w(-9_000, 1_000)),
                ("b".to_string(), w(-6_000, 4_000)),
                ("b".to_string(), w(-3_000, 7_000)),
                ("b".to_string(), w(0, 10_000)),
                ("a".to_string(), w(3_000, 13_000)),
                ("a".to_string(), w(6_000, 16_000)),
                ("a".to_string(), w(9_000, 19_000)),
            ]
        );
    }

    #[test]
    fn a_failed_add_leaves_the_later_windows_untouched() {
        let mut op = FixedWindows::new(CountSum, 10_000, 5_000, 0, opts(0));
        feed(&mut op, "a", i64::MAX, 16_000); // [10 000, 20 000) and [15 000, 25 000)
        let err = op.process("a", &("a".to_string(), 1), 14_000).unwrap_err();
        assert_eq!(err, EvalError::Overflow { op: "+" });
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(5_000, 15_000), 1, 1, false, 14_999),
                out("a", w(10_000, 20_000), 1, i64::MAX, false, 19_999),
                out("a", w(15_000, 25_000), 1, i64::MAX, false, 24_999),
            ]
        );
    }

    #[test]
    fn reject_when_full_changes_nothing() {
        let mut op = FixedWindows::new(CountSum, 10_000, 5_000, 0, limited(3, OnFull::Reject));
        assert_eq!(feed(&mut op, "a", 1, 7_000), Admit::Added);
        assert_eq!(op.state_size().entries, 2);
        // Needs two new accumulators, one is left: rejected as a whole.
        assert_eq!(feed(&mut op, "b", 1, 12_000), Admit::Full { max_keys: 3 });
        assert_eq!(op.state_size().entries, 2);
        // Needs one new ([10 000, 20 000)), one existing ([5 000, 15 000)).
        assert_eq!(feed(&mut op, "a", 2, 12_000), Admit::Added);
        assert_eq!(op.state_size().entries, 3);
        assert_eq!(feed(&mut op, "a", 4, 8_000), Admit::Added, "no new accumulator needed");
        assert_eq!(feed(&mut op, "c", 1, 1_000), Admit::Full { max_keys: 3 });
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(0, 10_000), 2, 5, false, 9_999),
                out("a", w(5_000, 15_000), 3, 7, false, 14_999),
                out("a", w(10_000, 20_000), 1, 2, false, 19_999),
            ]
        );
        assert_eq!(op.take_evictions(), (0, 0));
    }

    #[test]
    fn evict_oldest_fires_the_oldest_window_early() {
        let mut op = FixedWindows::new(CountSum, 10_000, 10_000, 0, limited(3, OnFull::EvictOldest));
        feed(&mut op, "b", 1, 1_000);
        feed(&mut op, "a", 2, 2_000);
        feed(&mut op, "a", 4, 11_000);
        assert_eq!(drain(&mut op), []);
        assert_eq!(feed(&mut op, "c", 8, 21_000), Admit::Added);
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(0, 10_000), 1, 2, false, 9_999),
                out("b", w(0, 10_000), 1, 1, false, 9_999)
            ]
        );
        assert_eq!(op.take_evictions(), (2, 0));
        assert_eq!(op.take_evictions(), (0, 0));
        assert_eq!(op.state_size().entries, 2);
        // The evicted window starts afresh with a later record, and is again the oldest.
        assert_eq!(feed(&mut op, "d", 16, 3_000), Admit::Added);
        assert_eq!(drain(&mut op), []);
        assert_eq!(feed(&mut op, "e", 32, 25_000), Admit::Added);
        assert_eq!(drain(&mut op), [out("d", w(0, 10_000), 1, 16, false, 9_999)]);
        assert_eq!(op.take_evictions(), (1, 0));
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(10_000, 20_000), 1, 4, false, 19_999),
                out("c", w(20_000, 30_000), 1, 8, false, 29_999),
                out("e", w(20_000, 30_000), 1, 32, false, 29_999),
            ]
        );
    }

    #[test]
    fn an_open_window_pins_the_oldest_epoch_of_its_records_until_it_fires() {
        let mut op = tumbling(10_000, 0);
        assert_eq!(op.pending_epoch(), None);
        feed(&mut op, "a", 1, 500);
        assert_eq!(op.pending_epoch(), Some(0), "epoch 0 before set_epoch");
        op.on_watermark(10_000);
        assert_eq!(op.pending_epoch(), None);
        drain(&mut op);

        op.set_epoch(5);
        feed(&mut op, "a", 1, 11_000);
        op.set_epoch(7);
        feed(&mut op, "b", 1, 12_000);
        feed(&mut op, "a", 1, 13_000);
        assert_eq!(op.pending_epoch(), Some(5), "the oldest epoch of [10 000, 20 000)");
        op.set_epoch(8);
        feed(&mut op, "a", 1, 21_000);
        assert_eq!(op.pending_epoch(), Some(5));
        assert!(!op.on_watermark(19_999));
        assert_eq!(op.pending_epoch(), Some(5), "not fired yet");
        // Fired: its results wait in the operator, which counts as emitted.
        assert!(op.on_watermark(20_000));
        assert_eq!(op.pending_epoch(), Some(8), "[20 000, 30 000) holds epoch 8 only");
        op.on_watermark(30_000);
        assert_eq!(op.pending_epoch(), None);
        assert_eq!(drain(&mut op).len(), 3);
    }

    #[test]
    fn a_hopping_record_pins_every_window_it_is_in() {
        let mut op = FixedWindows::new(CountSum, 10_000, 5_000, 0, opts(0));
        op.set_epoch(3);
        feed(&mut op, "a", 1, 7_000); // [0, 10 000) and [5 000, 15 000)
        op.set_epoch(4);
        feed(&mut op, "b", 1, 12_000); // [5 000, 15 000) and [10 000, 20 000)
        assert_eq!(op.pending_epoch(), Some(3));
        op.on_watermark(10_000);
        assert_eq!(
            op.pending_epoch(),
            Some(3),
            "[5 000, 15 000) still holds the first record"
        );
        op.on_watermark(15_000);
        assert_eq!(op.pending_epoch(), Some(4));
        op.on_watermark(20_000);
        assert_eq!(op.pending_epoch(), None);
    }

    #[test]
    fn a_late_record_in_a_retained_window_pins_nothing() {
        let mut op = tumbling(10_000, 5_000);
        op.set_epoch(1);
        feed(&mut op, "a", 1, 1_000);
        op.on_watermark(10_000);
        assert_eq!(op.pending_epoch(), None, "fired, though retained");
        op.set_epoch(2);
        assert_eq!(feed(&mut op, "a", 1, 2_000), Admit::Added);
        assert_eq!(
            feed(&mut op, "b", 1, 3_000),
            Admit::Added,
            "a new key in a retained window"
        );
        assert_eq!(op.pending_epoch(), None, "emitted at once");
        assert_eq!(drain(&mut op).len(), 3);
        feed(&mut op, "a", 1, 11_000);
        assert_eq!(op.pending_epoch(), Some(2), "an open window");
        op.on_close();
        assert_eq!(op.pending_epoch(), None);
    }

    #[test]
    fn rejected_records_pin_nothing() {
        let mut op = FixedWindows::new(CountSum, 10_000, 10_000, 0, limited(1, OnFull::Reject));
        op.on_watermark(10_000);
        op.set_epoch(1);
        assert_eq!(feed(&mut op, "a", 1, 5_000), Admit::Late { watermark: 10_000 });
        assert_eq!(op.pending_epoch(), None);
        op.set_epoch(2);
        assert_eq!(feed(&mut op, "a", 1, 15_000), Admit::Added);
        op.set_epoch(3);
        assert_eq!(feed(&mut op, "b", 1, 25_000), Admit::Full { max_keys: 1 });
        assert_eq!(op.pending_epoch(), Some(2));
        op.on_watermark(20_000);
        assert_eq!(op.pending_epoch(), None, "[20 000, 30 000) was never created");
    }

    #[test]
    fn evict_oldest_releases_the_window_it_fires_early() {
        let mut op = FixedWindows::new(CountSum, 10_000, 10_000, 0, limited(2, OnFull::EvictOldest));
        op.set_epoch(1);
        feed(&mut op, "a", 1, 1_000);
        op.set_epoch(2);
        feed(&mut op, "a", 1, 11_000);
        assert_eq!(op.pending_epoch(), Some(1));
        op.set_epoch(3);
        feed(&mut op, "a", 1, 21_000); // fires [0, 10 000) early
        assert_eq!(drain(&mut op), [out("a", w(0, 10_000), 1, 1, false, 9_999)]);
        assert_eq!(op.pending_epoch(), Some(2));
        // [0, 10 000) starts afresh; [10 000, 20 000) is fired early to make room.
        op.set_epoch(4);
        feed(&mut op, "b", 1, 2_000);
        assert_eq!(op.pending_epoch(), Some(3));
        op.on_watermark(10_000);
        assert_eq!(op.pending_epoch(), Some(3), "[20 000, 30 000) is still open");
        op.on_close();
        assert_eq!(op.pending_epoch(), None);
    }

    #[test]
    fn a_window_of_many_keys_fires_each_key_once_in_key_order() {
        // Both ways a fired window is handed out: built lazily (no lateness) or all at
        // once and queued (with lateness). Either way in chunks, as `Stateful` does.
        let n = 20_000;
        for lateness in [0, 5_000] {
            let mut op = tumbling(10_000, lateness);
            for (i, key) in many_keys(n).iter().enumerate().rev() {
                feed(&mut op, key, i as i64, 1_000);
            }
            assert!(op.on_watermark(10_000));
            assert_each_key_once_in_order(&drain_chunked(&mut op), n, w(0, 10_000));
            assert!(!op.has_emitted());
        }
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let mut op = FixedWindows::new(CountSum, 10_000, 3_000, 1_000, opts(i64::MAX));
        feed(&mut op, "a", 1, i64::MIN);
        feed(&mut op, "b", 1, i64::MAX);
        op.on_watermark(i64::MAX - 1);
        op.on_close();
        let results = drain(&mut op);
        assert_eq!(results.len(), 8, "each record in 4 windows: {results:?}");
        assert!(results.iter().all(|((_, w, ..), _)| w.start < w.end));
        assert_eq!(op.state_size().entries, 0);
    }

    #[test]
    fn state_size_counts_open_and_retained_accumulators() {
        let mut op = tumbling(10_000, 10_000);
        feed(&mut op, "a", 1, 1_000);
        feed(&mut op, "b", 1, 11_000);
        op.on_watermark(10_000);
        let size = op.state_size();
        assert_eq!(size.entries, 2);
        assert!(size.bytes >= 2 * (size_of::<String>() + size_of::<(i64, i64)>()));
        op.on_watermark(20_000);
        assert_eq!(op.state_size().entries, 1);
    }

    fn result(key: &str, window: Window, count: i64, sum: i64, update: bool) -> Seen {
        Seen::Result((key.to_string(), window, count, sum, update), window.end - 1)
    }

    #[test]
    fn a_window_open_across_a_checkpoint_fires_with_every_record() {
        let seen = assert_resumes(
            || tumbling(10_000, 0),
            &[Rec("a", 1, 1_000), Rec("b", 2, 2_000), Rec("a", 4, 12_000), Wm(5_000)],
            &[Rec("a", 8, 9_000), Wm(10_000), Rec("b", 16, 15_000)],
        );
        assert!(seen.contains(&result("a", w(0, 10_000), 2, 9, false)), "{seen:?}");
        assert!(seen.contains(&result("b", w(10_000, 20_000), 1, 16, false)), "{seen:?}");
    }

    #[test]
    fn a_window_kept_for_lateness_takes_a_late_record_after_a_restore() {
        let seen = assert_resumes(
            || tumbling(10_000, 5_000),
            &[Rec("a", 1, 1_000), Wm(10_000)],
            &[Rec("a", 2, 2_000), Rec("b", 4, 3_000), Wm(15_000), Rec("a", 8, 4_000)],
        );
        assert_eq!(
            seen,
            [
                Seen::Admit(Admit::Added),
                result("a", w(0, 10_000), 2, 3, true),
                Seen::Admit(Admit::Added),
                result("b", w(0, 10_000), 1, 4, false),
                Seen::Admit(Admit::Late { watermark: 15_000 }),
            ]
        );
    }

    #[test]
    fn hopping_windows_resume_from_a_checkpoint() {
        let seen = assert_resumes(
            || FixedWindows::new(CountSum, 10_000, 5_000, 0, opts(2_000)),
            &[Rec("a", 1, 3_000), Rec("a", 2, 7_000), Wm(5_000)],
            &[Rec("a", 4, 8_000), Wm(10_000), Rec("a", 8, 9_000), Wm(30_000)],
        );
        assert!(seen.contains(&result("a", w(0, 10_000), 3, 7, false)), "{seen:?}");
        assert!(
            seen.contains(&result("a", w(0, 10_000), 4, 15, true)),
            "late, within the lateness"
        );
        assert!(seen.contains(&result("a", w(5_000, 15_000), 3, 14, false)), "{seen:?}");
    }

    #[test]
    fn a_full_state_restored_evicts_the_oldest_window() {
        let seen = assert_resumes(
            || FixedWindows::new(CountSum, 10_000, 10_000, 0, limited(2, OnFull::EvictOldest)),
            &[Rec("a", 1, 1_000), Rec("b", 2, 12_000)],
            &[Rec("c", 4, 25_000), Rec("a", 8, 2_000)],
        );
        assert_eq!(
            seen[1],
            result("a", w(0, 10_000), 1, 1, false),
            "fired early to make room"
        );
    }

    #[test]
    fn saving_refuses_results_not_handed_downstream() {
        let mut op = tumbling(10_000, 0);
        feed(&mut op, "a", 1, 1_000);
        op.on_watermark(10_000);
        assert!(op.save_state(&mut Vec::new()).is_err(), "the fired window is waiting");
        drain(&mut op);
        assert!(op.save_state(&mut Vec::new()).is_ok());
    }

    #[test]
    fn damaged_state_is_an_error_never_a_panic() {
        assert_garbage_never_panics(|| tumbling(10_000, 5_000));
        let keys = HashMap::from([("a".to_string(), (1i64, 1i64))]);
        // The watermark, the open windows and no retained one.
        let at = |end: i64| {
            let saved =
                postcard::to_allocvec(&(0i64, vec![((end, end.wrapping_sub(10_000)), &keys)], Vec::<()>::new()))
                    .unwrap();
            tumbling(10_000, 0).restore_state(&saved)
        };
        assert!(at(10_000).is_ok(), "the shape is right");
        assert!(at(i64::MIN).is_err(), "a window ending before any record");
        assert_garbage_never_panics(|| FixedWindows::new(CountSum, 10_000, 5_000, 0, limited(3, OnFull::EvictOldest)));
    }
}
