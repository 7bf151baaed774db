//! Tables: running aggregates per key, without windows.
//!
//! A checkpoint holds every row (its accumulator, times and dirty flag), the watermark,
//! the last boundary and the next sweep ([`Saved`]): all that decides later results,
//! eviction order included (the least recently changed rows go first).

use super::results::Emitted;
use super::state::{
    deal_saved, entry_bytes, eviction_batch, floor_to, restore, results_waiting, save, to_bytes, Sorted,
};
use super::{Admit, Aggregation, Keyed, KeyedOperator, OnFull, StateOptions, StateSize, Window};
use super::{Clock, KeyMap, Results, SplitsByKey};
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

/// When a table emits the result of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// With every record, stamped with the record's time.
    Change,
    /// The keys changed since the last emission, in key order, each time the watermark
    /// crosses a multiple of this many ms (epoch-aligned), stamped `boundary - 1`.
    Every(i64),
}

/// One key's running aggregate.
#[derive(Serialize, Deserialize)]
struct Row<Acc> {
    acc: Acc,
    /// Smallest and largest record time (`last` is the "last change" for the TTL).
    first: i64,
    last: i64,
    /// Changed since its result was last emitted (`Emit::Every` only).
    dirty: bool,
}

impl<Acc> Row<Acc> {
    /// The window its results carry: `[first, last + 1)`.
    fn window(&self) -> Window {
        Window {
            start: self.first,
            end: self.last.saturating_add(1),
        }
    }
}

/// What a checkpoint holds of a [`Table`]. `M` is [`Sorted`] when saving and a
/// `HashMap` when restoring. The dirty count is recounted from the rows.
#[derive(Serialize, Deserialize)]
struct Saved<M> {
    wm: i64,
    boundary: Option<i64>,
    next_sweep: i64,
    rows: M,
}

/// A keyed running aggregate: one accumulator per key, for as long as the key lives.
///
/// - Results carry the window `[first t, last t + 1)` of the key's records.
/// - [`Emit::Change`] emits the key's result with each record; [`Emit::Every`] emits the
///   changed ("dirty") keys when the watermark crosses a period boundary (once for the
///   latest boundary when it crosses several). The first watermark crosses nothing: it
///   only places the table in time, so results come at aligned boundaries from the start
///   rather than at once, stamped before the epoch.
/// - `ttl`: a key whose last change time `+ ttl <= watermark` is dropped (counted as
///   expired); with `Emit::Every` its result is emitted first if dirty. Expired keys are
///   found by scanning the table at most once per `max(ttl / 8, 1)` ms of watermark
///   progress, so a key is dropped at most that much watermark time after it expired
///   (plus the watermark's own steps). The results do not depend on that schedule: a
///   record for an expired key not yet dropped starts the key afresh all the same.
/// - Never late. [`KeyedOperator::on_close`] (and a watermark of `i64::MAX`, meaning
///   every input ended) emits the dirty keys with `Emit::Every` and expires nothing.
/// - A result emitted outside a boundary (on close, expiry or eviction, `Emit::Every`)
///   is stamped with the end of the period of the key's last change (`boundary - 1` of
///   the next boundary after it); on close, with that of the latest change of all.
/// - Entries are keys. At `max_keys`, a new key is rejected ([`OnFull::Reject`]) or
///   ([`OnFull::EvictOldest`]) the least recently changed keys (oldest last change time,
///   ties by key) are dropped, a 16th of `max_keys` at least one, after their result is
///   emitted if dirty (`Emit::Every`). Making room scans every key, once per 16th of
///   `max_keys` new keys.
/// - [`KeyedOperator::pending_epoch`]: with `Emit::Change` nothing is held. With
///   `Emit::Every`, one epoch for all the changes not emitted yet: the smallest epoch of a
///   change since the last time no key was dirty. It is released when no key is dirty any
///   more (at a boundary, on close, or when expiry and eviction emitted the last dirty
///   keys); until then it may be older than the oldest change still unemitted, which only
///   delays commits.
pub struct Table<A: Aggregation> {
    agg: A,
    emit: Emit,
    ttl: Option<i64>,
    opts: StateOptions,
    /// The last watermark (`i64::MIN` before the first).
    wm: i64,
    rows: KeyMap<A::Key, Row<A::Acc>>,
    /// Rows with `dirty` set.
    dirty: usize,
    /// The smallest epoch of a change since `dirty` was last 0 (meaningless when it is 0).
    dirty_epoch: u64,
    /// The epoch of the records being processed.
    epoch: u64,
    /// The latest period boundary the watermark reached (`Emit::Every`); `None` before
    /// the first watermark, which only sets it.
    boundary: Option<i64>,
    /// The watermark from which the next TTL sweep may run.
    next_sweep: i64,
    out: Emitted<A::Output>,
    evicted: u64,
    expired: u64,
}

impl<A: Aggregation> Table<A> {
    /// A table emitting per `emit`, dropping keys unchanged for `ttl` ms (`None`: never).
    /// Periods and TTLs are positive.
    pub fn new(agg: A, emit: Emit, ttl: Option<i64>, opts: StateOptions) -> Self {
        if let Emit::Every(ms) = emit {
            assert!(ms > 0, "invalid table emission period {ms}");
        }
        if let Some(ttl) = ttl {
            assert!(ttl > 0, "invalid table ttl {ttl}");
        }
        Table {
            agg,
            emit,
            ttl,
            opts,
            wm: i64::MIN,
            rows: KeyMap::default(),
            dirty: 0,
            dirty_epoch: 0,
            epoch: 0,
            boundary: None,
            next_sweep: i64::MIN,
            out: Emitted::default(),
            evicted: 0,
            expired: 0,
        }
    }

    /// The row of `key` as the table would emit it now, if the key has one (a key past
    /// its `ttl` has none, whether or not a sweep dropped it yet). A lookup join reads it.
    pub fn current<Q>(&self, key: &Q) -> Option<A::Output>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (key, row) = self.rows.get_key_value(key)?;
        if self.ttl.is_some_and(|ttl| row.last.saturating_add(ttl) <= self.wm) {
            return None;
        }
        Some(self.agg.output(key, row.window(), &row.acc, false))
    }

    /// The stamp of a result emitted outside a boundary: `boundary - 1` of the first
    /// boundary after `last` (`Emit::Every`), else `last`.
    fn stamp(&self, last: i64) -> i64 {
        match self.emit {
            Emit::Every(ms) => floor_to(last, ms).saturating_add(ms - 1),
            Emit::Change => last,
        }
    }

    /// True when a key last changed at `last` has expired.
    fn expired_at(&self, last: i64) -> bool {
        self.ttl.is_some_and(|ttl| last.saturating_add(ttl) <= self.wm)
    }

    /// Emits the dirty keys in key order, stamped `time` (`None`: the stamp of the latest
    /// change among them), and clears `dirty`. True when anything was emitted.
    fn emit_dirty(&mut self, time: Option<i64>) -> bool {
        if self.dirty == 0 {
            return false;
        }
        let mut dirty: Vec<(&A::Key, &Row<A::Acc>)> = self.rows.iter().filter(|(_, row)| row.dirty).collect();
        dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let time = time.unwrap_or_else(|| self.stamp(dirty.iter().map(|(_, row)| row.last).max().unwrap_or(i64::MIN)));
        for (key, row) in dirty {
            self.out
                .push_result(&self.agg, (key, row.window(), &row.acc, false), time);
        }
        self.rows.values_mut().for_each(|row| row.dirty = false);
        self.dirty = 0;
        true
    }

    /// Drops the expired keys, emitting the dirty ones first (in key order). True when
    /// anything was emitted.
    fn sweep(&mut self) -> bool {
        let Some(ttl) = self.ttl else { return false };
        let wm = self.wm;
        let expired = |row: &Row<A::Acc>| row.last.saturating_add(ttl) <= wm;
        let mut emitted = false;
        if self.dirty > 0 {
            let mut due: Vec<(&A::Key, &Row<A::Acc>)> =
                self.rows.iter().filter(|(_, row)| row.dirty && expired(row)).collect();
            due.sort_unstable_by(|a, b| a.0.cmp(b.0));
            emitted = !due.is_empty();
            for (key, row) in due {
                self.out
                    .push_result(&self.agg, (key, row.window(), &row.acc, false), self.stamp(row.last));
            }
        }
        let before = self.rows.len();
        let mut dirty_dropped = 0;
        self.rows.retain(|_, row| {
            let keep = !expired(row);
            dirty_dropped += usize::from(!keep && row.dirty);
            keep
        });
        self.dirty -= dirty_dropped;
        self.expired += (before - self.rows.len()) as u64;
        emitted
    }

    /// Drops the `n` least recently changed keys (ties by key), emitting the dirty ones
    /// first, in key order.
    fn evict_oldest(&mut self, n: usize) {
        let mut oldest: Vec<(i64, &A::Key)> = self.rows.iter().map(|(key, row)| (row.last, key)).collect();
        if n < oldest.len() {
            oldest.select_nth_unstable(n - 1);
            oldest.truncate(n);
        }
        let mut victims: Vec<A::Key> = oldest.into_iter().map(|(_, key)| key.clone()).collect();
        victims.sort_unstable();
        for key in victims {
            let row = self.rows.remove(&key).expect("a victim is a key of the table");
            if row.dirty {
                self.dirty -= 1;
                self.out
                    .push_result(&self.agg, (&key, row.window(), &row.acc, false), self.stamp(row.last));
            }
            self.evicted += 1;
        }
    }
}

/// A saved state read with its rows in key order, to be joined or split.
type SavedRows<A> = Saved<BTreeMap<<A as Keyed>::Key, Row<<A as Aggregation>::Acc>>>;

/// Without `ttl` or `max_keys`, a table's results depend on each key's records alone:
/// emitting on a clock, they are due at boundaries; emitting each change, every record
/// gives one row. (With a `ttl`, a record for a key expired but not swept yet emits the
/// key's last result at once, and expiries are counted at sweeps; `max_keys` counts
/// every key.)
impl<A: Aggregation> SplitsByKey<A> for Table<A> {
    fn clock(&self) -> Option<Clock> {
        match (self.emit, self.ttl, self.opts.max_keys) {
            (Emit::Every(every), None, None) => Some(Clock::Boundaries { every }),
            (Emit::Change, None, None) => Some(Clock::Records),
            _ => None,
        }
    }

    /// Every part's rows, in key order; the parts, moved to one watermark, hold the
    /// same watermark and boundary (the latest is taken all the same).
    fn join_saved(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        let mut joined: SavedRows<A> = Saved {
            wm: i64::MIN,
            boundary: None,
            next_sweep: i64::MIN,
            rows: BTreeMap::new(),
        };
        for bytes in parts {
            let part: SavedRows<A> = restore(bytes)?;
            joined.wm = joined.wm.max(part.wm);
            joined.boundary = joined.boundary.max(part.boundary);
            joined.next_sweep = joined.next_sweep.max(part.next_sweep);
            joined.rows.extend(part.rows);
        }
        to_bytes(&joined)
    }

    fn split_saved(
        saved: &[u8],
        parts: usize,
        part_of: &dyn Fn(&A::Key) -> usize,
    ) -> Result<(i64, Vec<Vec<u8>>), String> {
        let whole: SavedRows<A> = restore(saved)?;
        let (wm, boundary, next_sweep) = (whole.wm, whole.boundary, whole.next_sweep);
        let out = deal_saved(whole.rows, parts, part_of, |rows: BTreeMap<A::Key, Row<A::Acc>>| {
            Saved {
                wm,
                boundary,
                next_sweep,
                rows,
            }
        })?;
        Ok((wm, out))
    }
}

impl<A: Aggregation> KeyedOperator<A> for Table<A> {
    fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        let (ttl, wm) = (self.ttl, self.wm);
        let stale = match self.rows.get_mut(key) {
            Some(row) if ttl.is_none_or(|ttl| row.last.saturating_add(ttl) > wm) => {
                self.agg.add(&mut row.acc, rec, t)?;
                row.first = row.first.min(t);
                row.last = row.last.max(t);
                match self.emit {
                    Emit::Change => {
                        let (key, row) = self.rows.get_key_value(key).expect("the key was just found");
                        self.out.push_result(&self.agg, (key, row.window(), &row.acc, false), t);
                    }
                    Emit::Every(_) if !row.dirty => {
                        row.dirty = true;
                        self.dirty_epoch = match self.dirty {
                            0 => self.epoch,
                            _ => self.dirty_epoch.min(self.epoch),
                        };
                        self.dirty += 1;
                    }
                    Emit::Every(_) => self.dirty_epoch = self.dirty_epoch.min(self.epoch),
                }
                return Ok(Admit::Added);
            }
            // Expired but not swept yet: the key starts afresh.
            Some(_) => true,
            None => false,
        };

        let full = !stale && self.opts.max_keys.is_some_and(|max| self.rows.len() >= max);
        if full && (self.opts.on_full == OnFull::Reject || self.opts.max_keys == Some(0)) {
            return Ok(Admit::Full {
                max_keys: self.opts.max_keys.unwrap_or(0),
            });
        }
        let mut acc = self.agg.new_acc();
        self.agg.add(&mut acc, rec, t)?;
        let owned = if stale {
            let (owned, old) = self.rows.remove_entry(key).expect("the key was just found");
            debug_assert!(self.expired_at(old.last));
            self.expired += 1;
            if old.dirty {
                self.dirty -= 1;
                self.out
                    .push_result(&self.agg, (&owned, old.window(), &old.acc, false), self.stamp(old.last));
            }
            owned
        } else {
            if full {
                self.evict_oldest(eviction_batch(self.opts.max_keys.unwrap_or(0)));
            }
            key.to_owned()
        };
        let mut row = Row {
            acc,
            first: t,
            last: t,
            dirty: false,
        };
        match self.emit {
            Emit::Change => self
                .out
                .push_result(&self.agg, (&owned, row.window(), &row.acc, false), t),
            Emit::Every(_) => {
                row.dirty = true;
                self.dirty_epoch = match self.dirty {
                    0 => self.epoch,
                    _ => self.dirty_epoch.min(self.epoch),
                };
                self.dirty += 1;
            }
        }
        self.rows.insert(owned, row);
        Ok(Admit::Added)
    }

    /// The next period boundary (even with nothing dirty: a boundary crossed while no
    /// one looked would emit the next change at once instead of at its boundary), and
    /// the next sweep for expired keys while there are keys.
    fn next_due(&self) -> Option<i64> {
        let boundary = match (self.emit, self.boundary) {
            (Emit::Every(ms), Some(last)) => Some(last.saturating_add(ms)),
            _ => None,
        };
        let sweep = match self.ttl {
            Some(_) if !self.rows.is_empty() => Some(self.next_sweep),
            _ => None,
        };
        boundary.into_iter().chain(sweep).min()
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        self.wm = self.wm.max(wm);
        let wm = self.wm;
        if wm == i64::MAX {
            // Every input ended: what `on_close` does, not a boundary at the end of time.
            return self.emit_dirty(None);
        }
        let mut emitted = false;
        if let Emit::Every(ms) = self.emit {
            let boundary = floor_to(wm, ms);
            match self.boundary {
                Some(last) if boundary > last => emitted |= self.emit_dirty(Some(boundary - 1)),
                _ => {}
            }
            self.boundary = Some(boundary);
        }
        if let Some(ttl) = self.ttl {
            if wm >= self.next_sweep {
                emitted |= self.sweep();
                self.next_sweep = wm.saturating_add((ttl / 8).max(1));
            }
        }
        emitted
    }

    fn on_close(&mut self) {
        self.emit_dirty(None);
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Every change of a key that is not dirty has been emitted (with `Emit::Change`, no
    /// key is ever dirty; expiry and eviction emit a dirty key before dropping it).
    fn pending_epoch(&self) -> Option<u64> {
        (self.dirty > 0).then_some(self.dirty_epoch)
    }

    fn emitted(&mut self) -> &mut VecDeque<(A::Output, i64)> {
        &mut self.out.queue
    }

    /// The rows `buf` held before go back to be written over.
    fn drain_emitted(&mut self, buf: &mut Results<A::Output>, max: usize) {
        self.out.drain_into(buf, max);
    }

    fn entries(&self) -> usize {
        self.rows.len()
    }

    fn state_size(&self) -> StateSize {
        let per_key = entry_bytes::<A::Key, Row<A::Acc>>();
        StateSize {
            entries: self.rows.len(),
            bytes: self
                .rows
                .values()
                .map(|row| per_key + self.agg.acc_heap_bytes(&row.acc))
                .sum(),
        }
    }

    fn take_evictions(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.evicted), std::mem::take(&mut self.expired))
    }

    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        if !self.out.queue.is_empty() {
            return Err(results_waiting(self.out.queue.len()));
        }
        let saved = Saved {
            wm: self.wm,
            boundary: self.boundary,
            next_sweep: self.next_sweep,
            rows: Sorted::new(&self.rows),
        };
        save(&saved, out)
    }

    /// Dirty rows hold the current epoch: what they held before is in the checkpoint,
    /// which confirms its sources' positions by itself.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        let saved: Saved<KeyMap<A::Key, Row<A::Acc>>> = restore(saved)?;
        self.rows = saved.rows;
        self.dirty = self.rows.values().filter(|row| row.dirty).count();
        self.dirty_epoch = self.epoch;
        self.wm = saved.wm;
        self.boundary = saved.boundary;
        self.next_sweep = saved.next_sweep;
        self.out.queue.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::state::testing::Step::{Rec, Wm};
    use crate::windows::state::testing::{
        assert_garbage_never_panics, assert_resumes, drain, feed, limited, opts, out, w, CountSum, Seen,
    };

    #[test]
    fn change_emits_with_every_record() {
        let mut op = Table::new(CountSum, Emit::Change, None, opts(0));
        feed(&mut op, "a", 1, 1_000);
        feed(&mut op, "b", 2, 2_000);
        feed(&mut op, "a", 4, 500);
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(1_000, 1_001), 1, 1, false, 1_000),
                out("b", w(2_000, 2_001), 1, 2, false, 2_000),
                out("a", w(500, 1_001), 2, 5, false, 500),
            ]
        );
        assert!(!op.on_watermark(i64::MAX));
        op.on_close();
        assert_eq!(drain(&mut op), []);
        assert_eq!(op.state_size().entries, 2);
    }

    #[test]
    fn rows_drained_into_a_kept_buffer_come_back_to_be_written_over() {
        let mut op = Table::new(CountSum, Emit::Change, None, opts(0));
        let (mut buf, mut got) = (Results::default(), Vec::new());
        for (i, key) in ["a", "b", "a", "c", "b", "a"].into_iter().enumerate() {
            feed(&mut op, key, i as i64 + 1, 1_000 + i as i64);
            buf.clear();
            op.drain_emitted(&mut buf, 256);
            got.extend(buf.as_slice().iter().cloned());
        }
        assert_eq!(op.out.spare(), 1, "the row the buffer held came back");
        assert_eq!(
            got,
            [
                out("a", w(1_000, 1_001), 1, 1, false, 1_000),
                out("b", w(1_001, 1_002), 1, 2, false, 1_001),
                out("a", w(1_000, 1_003), 2, 4, false, 1_002),
                out("c", w(1_003, 1_004), 1, 4, false, 1_003),
                out("b", w(1_001, 1_005), 2, 7, false, 1_004),
                out("a", w(1_000, 1_006), 3, 10, false, 1_005),
            ]
        );
    }

    #[test]
    fn next_due_is_the_next_boundary_and_the_next_sweep_while_keys_live() {
        let mut op = Table::new(CountSum, Emit::Every(10_000), None, opts(0));
        assert_eq!(op.next_due(), None, "not placed in time yet");
        op.on_watermark(12_000);
        assert_eq!(op.next_due(), Some(20_000), "even with nothing changed");
        let mut op = Table::new(CountSum, Emit::Change, Some(8_000), opts(0));
        op.on_watermark(12_000);
        assert_eq!(op.next_due(), None, "no key to expire");
        feed(&mut op, "a", 1, 12_000);
        assert_eq!(op.next_due(), Some(13_000), "sweeps every ttl / 8");
    }

    #[test]
    fn every_emits_the_changed_keys_at_each_boundary() {
        let mut op = Table::new(CountSum, Emit::Every(10_000), None, opts(0));
        feed(&mut op, "c", 1, 1_000);
        feed(&mut op, "a", 2, 2_000);
        feed(&mut op, "b", 4, 3_000);
        assert_eq!(drain(&mut op), []);
        assert!(!op.on_watermark(5_000), "the first watermark crosses nothing");
        assert!(!op.on_watermark(9_999));
        assert!(op.on_watermark(10_000));
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(2_000, 2_001), 1, 2, false, 9_999),
                out("b", w(3_000, 3_001), 1, 4, false, 9_999),
                out("c", w(1_000, 1_001), 1, 1, false, 9_999),
            ]
        );
        feed(&mut op, "b", 8, 12_000);
        assert!(!op.on_watermark(19_999));
        // Two boundaries crossed at once: one emission, for the latest.
        assert!(op.on_watermark(35_000));
        assert_eq!(drain(&mut op), [out("b", w(3_000, 12_001), 2, 12, false, 29_999)]);
        assert!(!op.on_watermark(40_000), "nothing changed");
        feed(&mut op, "a", 1, 41_000);
        feed(&mut op, "c", 1, 45_000);
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(2_000, 41_001), 2, 3, false, 49_999),
                out("c", w(1_000, 45_001), 2, 2, false, 49_999)
            ]
        );
    }

    #[test]
    fn ttl_expires_unchanged_keys_emitting_dirty_ones_first() {
        // ttl 5 000: a sweep at most every 625 ms of watermark.
        let mut op = Table::new(CountSum, Emit::Every(10_000), Some(5_000), opts(0));
        op.on_watermark(0);
        feed(&mut op, "a", 1, 1_000);
        feed(&mut op, "b", 2, 8_000);
        assert!(op.on_watermark(10_000));
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(1_000, 1_001), 1, 1, false, 9_999),
                out("b", w(8_000, 8_001), 1, 2, false, 9_999)
            ]
        );
        assert_eq!(op.take_evictions(), (0, 1), "a expired at 6 000");
        feed(&mut op, "b", 4, 11_000);
        feed(&mut op, "c", 8, 12_000);
        assert!(!op.on_watermark(15_999));
        assert!(!op.on_watermark(16_000), "expired, but the last sweep was at 15 999");
        assert_eq!(op.state_size().entries, 2);
        assert!(op.on_watermark(16_624));
        // b changed at 11 000 and expires at 16 000: emitted before it goes, stamped at
        // the end of its period.
        assert_eq!(drain(&mut op), [out("b", w(8_000, 11_001), 2, 6, false, 19_999)]);
        assert_eq!(op.take_evictions(), (0, 1));
        assert_eq!(op.state_size().entries, 1);
        assert!(op.on_watermark(20_000));
        assert_eq!(drain(&mut op), [out("c", w(12_000, 12_001), 1, 8, false, 19_999)]);
        // A new record for an expired key starts it afresh.
        feed(&mut op, "c", 16, 21_000);
        assert_eq!(op.take_evictions(), (0, 1));
        op.on_close();
        assert_eq!(drain(&mut op), [out("c", w(21_000, 21_001), 1, 16, false, 29_999)]);
    }

    #[test]
    fn an_expired_key_starts_afresh_before_the_sweep_finds_it() {
        // ttl 8 000: a sweep at most every 1 000 ms of watermark.
        let mut op = Table::new(CountSum, Emit::Change, Some(8_000), opts(0));
        feed(&mut op, "a", 1, 0);
        op.on_watermark(7_999);
        op.on_watermark(8_000); // expired, but no sweep until 8 999
        assert_eq!(op.state_size().entries, 1);
        assert_eq!(op.take_evictions(), (0, 0));
        drain(&mut op);
        feed(&mut op, "a", 5, 8_500);
        assert_eq!(drain(&mut op), [out("a", w(8_500, 8_501), 1, 5, false, 8_500)]);
        assert_eq!(op.take_evictions(), (0, 1));
        op.on_watermark(16_499);
        assert_eq!(op.state_size().entries, 1, "changed at 8 500: expires at 16 500");
        op.on_watermark(16_500);
        assert_eq!(op.state_size().entries, 1, "the last sweep was at 16 499");
        op.on_watermark(17_499);
        assert_eq!(op.state_size().entries, 0);
        assert_eq!(op.take_evictions(), (0, 1));
    }

    #[test]
    fn emit_change_pins_nothing() {
        let mut op = Table::new(CountSum, Emit::Change, Some(1_000), opts(0));
        op.set_epoch(1);
        feed(&mut op, "a", 1, 0);
        op.set_epoch(2);
        feed(&mut op, "a", 1, 500);
        feed(&mut op, "b", 1, 600);
        assert_eq!(op.pending_epoch(), None);
        op.on_watermark(1_600); // both expired: dropped without a result
        assert_eq!(op.take_evictions(), (0, 2));
        assert_eq!(op.pending_epoch(), None);
        assert_eq!(drain(&mut op).len(), 3);
    }

    #[test]
    fn emit_every_pins_the_oldest_unemitted_change_until_the_boundary() {
        let mut op = Table::new(CountSum, Emit::Every(10_000), None, opts(0));
        op.on_watermark(0);
        assert_eq!(op.pending_epoch(), None);
        feed(&mut op, "z", 1, 100);
        assert_eq!(op.pending_epoch(), Some(0), "epoch 0 before set_epoch");
        op.on_watermark(10_000);
        assert_eq!(op.pending_epoch(), None);
        drain(&mut op);

        op.set_epoch(3);
        feed(&mut op, "a", 1, 11_000);
        op.set_epoch(4);
        feed(&mut op, "b", 1, 12_000);
        feed(&mut op, "a", 1, 13_000); // a again, still dirty
        assert_eq!(op.pending_epoch(), Some(3));
        assert!(!op.on_watermark(19_999));
        assert_eq!(op.pending_epoch(), Some(3), "not emitted yet");
        assert!(op.on_watermark(20_000));
        assert_eq!(op.pending_epoch(), None, "every change emitted");
        assert_eq!(drain(&mut op).len(), 2);
        // Starts again from the next change, not from the old pin.
        op.set_epoch(5);
        feed(&mut op, "a", 1, 21_000);
        assert_eq!(op.pending_epoch(), Some(5));
        op.on_close();
        assert_eq!(op.pending_epoch(), None);
        assert_eq!(drain(&mut op).len(), 1);
    }

    #[test]
    fn expiry_and_eviction_release_once_no_change_is_unemitted() {
        // Eviction emits the dirty key it drops.
        let mut op = Table::new(CountSum, Emit::Every(10_000), None, limited(1, OnFull::EvictOldest));
        op.on_watermark(0);
        op.set_epoch(1);
        feed(&mut op, "a", 1, 1_000);
        op.set_epoch(2);
        feed(&mut op, "b", 1, 2_000); // evicts a
        assert_eq!(drain(&mut op), [out("a", w(1_000, 1_001), 1, 1, false, 9_999)]);
        assert_eq!(op.pending_epoch(), Some(2));

        // With changes of other keys still unemitted, the pin may stay older (never newer).
        let mut op = Table::new(CountSum, Emit::Every(10_000), None, limited(2, OnFull::EvictOldest));
        op.on_watermark(0);
        op.set_epoch(1);
        feed(&mut op, "a", 1, 1_000);
        op.set_epoch(2);
        feed(&mut op, "b", 1, 2_000);
        op.set_epoch(3);
        feed(&mut op, "c", 1, 3_000); // evicts a
        assert_eq!(drain(&mut op).len(), 1);
        assert!(
            matches!(op.pending_epoch(), Some(e) if e <= 2),
            "{:?}",
            op.pending_epoch()
        );
        op.on_watermark(10_000);
        assert_eq!(op.pending_epoch(), None);

        // Expiry emits the dirty key it drops.
        let mut op = Table::new(CountSum, Emit::Every(10_000), Some(5_000), opts(0));
        op.on_watermark(0);
        op.set_epoch(1);
        feed(&mut op, "a", 1, 1_000);
        assert_eq!(op.pending_epoch(), Some(1));
        assert!(op.on_watermark(6_000), "a expired: emitted before the boundary");
        assert_eq!(op.take_evictions(), (0, 1));
        assert_eq!(op.pending_epoch(), None);
        assert_eq!(drain(&mut op).len(), 1);
    }

    #[test]
    fn reject_when_full_changes_nothing() {
        let mut op = Table::new(CountSum, Emit::Change, None, limited(2, OnFull::Reject));
        feed(&mut op, "a", 1, 1);
        feed(&mut op, "b", 1, 1);
        drain(&mut op);
        assert_eq!(feed(&mut op, "c", 1, 2), Admit::Full { max_keys: 2 });
        assert_eq!(drain(&mut op), []);
        assert_eq!(feed(&mut op, "a", 1, 3), Admit::Added);
        assert_eq!(drain(&mut op), [out("a", w(1, 4), 2, 2, false, 3)]);
        assert_eq!(op.state_size().entries, 2);
    }

    #[test]
    fn evict_oldest_drops_the_least_recently_changed_keys() {
        let mut op = Table::new(CountSum, Emit::Every(10_000), None, limited(32, OnFull::EvictOldest));
        for i in 0..32 {
            // k02, k05, k17 and k20 last changed at 0, the others later.
            let t = if [2, 5, 17, 20].contains(&i) { 0 } else { 100 + i };
            feed(&mut op, &format!("k{i:02}"), i, t);
        }
        op.on_watermark(0);
        op.on_watermark(10_000);
        assert_eq!(drain(&mut op).len(), 32);
        feed(&mut op, "k02", 1, 500); // changed again: no longer among the oldest
        assert_eq!(feed(&mut op, "new", 1, 600), Admit::Added);
        // 32 / 16 = 2: k05 and k17 (k20 too is as old; ties go by key). Not dirty: not emitted.
        assert_eq!(drain(&mut op), []);
        assert_eq!(op.take_evictions(), (2, 0));
        assert_eq!(op.state_size().entries, 31);
        feed(&mut op, "k20", 1, 700); // changed again
        feed(&mut op, "k21", 1, 700);
        assert_eq!(feed(&mut op, "new2", 1, 800), Admit::Added);
        assert_eq!(op.state_size().entries, 32);
        assert_eq!(op.take_evictions(), (0, 0));
        assert_eq!(feed(&mut op, "new3", 1, 800), Admit::Added);
        // Oldest now: k00 (100) and k01 (101), not k20.
        assert_eq!(op.take_evictions(), (2, 0));
        assert_eq!(op.state_size().entries, 31);
        op.on_close();
        let keys: Vec<String> = drain(&mut op).into_iter().map(|((key, ..), _)| key).collect();
        assert_eq!(keys, ["k02", "k20", "k21", "new", "new2", "new3"], "the dirty keys");
        for key in ["k00", "k01", "k05", "k17"] {
            feed(&mut op, key, 1, 900);
        }
        assert_eq!(op.take_evictions(), (4, 0), "the evicted keys are new again");
    }

    #[test]
    fn evicted_dirty_keys_are_emitted_first() {
        let mut op = Table::new(CountSum, Emit::Every(10_000), None, limited(2, OnFull::EvictOldest));
        op.on_watermark(0);
        feed(&mut op, "b", 1, 1_000);
        feed(&mut op, "a", 2, 2_000);
        feed(&mut op, "c", 4, 3_000);
        assert_eq!(drain(&mut op), [out("b", w(1_000, 1_001), 1, 1, false, 9_999)]);
        assert_eq!(op.take_evictions(), (1, 0));
        op.on_watermark(10_000);
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(2_000, 2_001), 1, 2, false, 9_999),
                out("c", w(3_000, 3_001), 1, 4, false, 9_999)
            ]
        );
    }

    fn result(key: &str, window: Window, count: i64, sum: i64, time: i64) -> Seen {
        Seen::Result((key.to_string(), window, count, sum, false), time)
    }

    #[test]
    fn keys_expire_after_a_restore_as_they_would_have() {
        let seen = assert_resumes(
            || Table::new(CountSum, Emit::Change, Some(10_000), opts(0)),
            &[Rec("a", 1, 1_000), Rec("b", 2, 5_000), Wm(8_000)],
            &[Rec("b", 4, 9_000), Wm(12_000), Rec("a", 8, 12_500), Wm(40_000)],
        );
        assert!(
            seen.contains(&result("a", w(12_500, 12_501), 1, 8, 12_500)),
            "a expired: afresh"
        );
        assert!(seen.contains(&result("b", w(5_000, 9_001), 2, 6, 9_000)), "{seen:?}");
    }

    #[test]
    fn a_full_table_restored_evicts_the_least_recently_changed_key() {
        let seen = assert_resumes(
            || Table::new(CountSum, Emit::Change, None, limited(2, OnFull::EvictOldest)),
            &[Rec("a", 1, 5_000), Rec("b", 2, 1_000)],
            &[Rec("c", 4, 6_000), Rec("b", 8, 7_000), Rec("a", 16, 8_000)],
        );
        // `b` (oldest change) was evicted for `c`, and starts afresh; then `a` is the oldest.
        assert!(seen.contains(&result("b", w(7_000, 7_001), 1, 8, 7_000)), "{seen:?}");
        assert!(seen.contains(&result("a", w(8_000, 8_001), 1, 16, 8_000)), "{seen:?}");
    }

    #[test]
    fn emission_on_an_interval_resumes_at_the_next_boundary() {
        let seen = assert_resumes(
            || Table::new(CountSum, Emit::Every(10_000), Some(30_000), opts(0)),
            &[Rec("b", 1, 1_000), Wm(5_000), Rec("a", 2, 7_000)],
            &[
                Rec("b", 4, 9_000),
                Wm(10_000),
                Rec("c", 8, 11_000),
                Wm(25_000),
                Wm(60_000),
            ],
        );
        assert_eq!(
            &seen[1..3],
            [
                result("a", w(7_000, 7_001), 1, 2, 9_999),
                result("b", w(1_000, 9_001), 2, 5, 9_999)
            ],
            "the dirty keys of before and after the checkpoint, at the boundary"
        );
        assert!(seen.contains(&result("c", w(11_000, 11_001), 1, 8, 19_999)), "{seen:?}");
    }

    #[test]
    fn damaged_state_is_an_error_never_a_panic() {
        assert_garbage_never_panics(|| Table::new(CountSum, Emit::Every(10_000), Some(30_000), opts(0)));
        assert_garbage_never_panics(|| Table::new(CountSum, Emit::Change, None, limited(2, OnFull::EvictOldest)));
    }
}
