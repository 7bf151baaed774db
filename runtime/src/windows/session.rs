//! Session windows: per key, records closer than `gap` to each other form one session.
//!
//! A record at `t` opens the session `[t, t + gap)`; sessions of one key whose intervals
//! overlap merge, so a session ends `gap` after its last record and a silence of at least
//! `gap` separates two sessions. The state is, per key, its sessions sorted by start
//! (almost always one), plus two ordered timer sets: one for sessions that have not fired
//! (when to fire) and one for fired sessions kept for late records (when to drop).
//!
//! Timers are lazy, so that the common case — a record extending its key's open session —
//! touches no timer: a session's timer entry `(timer, key)` holds a time `<= end` (the
//! end the session had when the timer was set). When it comes due and the session has
//! grown since, it is set again at the new end. Merging sessions keeps one of their timers
//! and leaves the others in the set as orphans, recognised (no session of the key has
//! that timer) and skipped when they come due. Within one key, the sessions' timers are
//! distinct (each lies in its session's `(start, end]`, and sessions do not overlap), so
//! `(timer, key)` identifies a session.
//!
//! A checkpoint holds the watermark and the sessions ([`Saved`]); the timer sets are
//! rebuilt from the sessions' timers on restore, without the orphans.

use super::results::Emitted;
use super::state::{deal_saved, entry_bytes, restore, results_waiting, save, to_bytes, Sorted};
use super::{Admit, Aggregation, Keyed, KeyedOperator, OnFull, StateOptions, StateSize, Window};
use super::{Clock, KeyMap, Results, SplitsByKey};
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::Hash;
use std::mem::size_of;

/// Approximate bytes of a B-tree slot beyond its value.
const BTREE_ENTRY_OVERHEAD: usize = 16;

#[derive(Serialize, Deserialize)]
struct Session<Acc> {
    start: i64,
    end: i64,
    /// The time of this session's entry in `timers` (not fired) or `expiries` (fired).
    timer: i64,
    /// Fired and retained for late records (`end <= wm`).
    fired: bool,
    /// A result covering part of this session was emitted before (it fired, or it merged
    /// with a session that had fired): its next result is an update.
    emitted: bool,
    /// The smallest epoch of a record added since the session last fired (or since it was
    /// opened). Only read while it has not fired: firing emits every record in it.
    /// Not saved: epochs number the batches of one run.
    #[serde(skip)]
    min_epoch: u64,
    acc: Acc,
}

/// Per key, its sessions.
type SessionsByKey<A> = KeyMap<<A as Keyed>::Key, Vec<Session<<A as Aggregation>::Acc>>>;

/// A checkpoint read back in key order.
type SavedByKey<A> = Saved<BTreeMap<<A as Keyed>::Key, Vec<Session<<A as Aggregation>::Acc>>>>;

/// What a checkpoint holds of [`SessionWindows`]: the watermark and each key's sessions.
/// `M` is [`Sorted`] when saving, a `HashMap` when restoring, and a `BTreeMap` to
/// join or split the parts of a split window.
#[derive(Serialize, Deserialize)]
struct Saved<M> {
    wm: i64,
    keys: M,
}

/// Refuses sessions of one key that could not have been built (a due timer finds its
/// session by `(timer, key)`, and expects to): each session holds its timer and ends
/// after a record's time (results are stamped `end - 1`), and they come in order
/// without overlapping.
fn check_sessions<Acc>(sessions: &[Session<Acc>]) -> Result<(), String> {
    let valid = !sessions.is_empty()
        && sessions
            .iter()
            .all(|s| s.start <= s.timer && s.timer <= s.end && s.end > i64::MIN)
        && sessions
            .windows(2)
            .all(|pair| pair[0].end <= pair[1].start && pair[0].timer < pair[1].timer);
    match valid {
        true => Ok(()),
        false => Err("sessions of a key overlap, are out of order or have a timer outside them".into()),
    }
}

/// Session windows on event time, per key.
///
/// - A session `[start, end)` fires when the watermark reaches `end`; sessions due at the
///   same watermark fire in `(end, key)` order, stamped `end - 1`.
/// - With `allowed_lateness > 0` a fired session is kept until the watermark reaches
///   `end + allowed_lateness`. A record that merges into it, or a late record whose own
///   session is already due, emits the resulting session at once; `update` is true when
///   any session merged into it had emitted a result. Two fired sessions bridged by a
///   late record have both been emitted; the merged session is then emitted as an update
///   (as in Flink), and the downstream has to treat the two earlier results as replaced.
///   Likewise, a fired session extended by a late record past the watermark fires again
///   at its new end, as an update.
/// - A record whose session (after merging) would already be past its lateness is
///   [`Admit::Late`] and changes nothing.
/// - Entries are sessions. At `max_keys`, a record that would open a new session (not
///   merge into one) is rejected ([`OnFull::Reject`]), or ([`OnFull::EvictOldest`]) the
///   unfired session with the smallest `(end, key)` fires early and is dropped (or, when
///   all have fired, the retained one with the smallest `(end, key)` is dropped). A record
///   for an early-fired session starts a new one, whose result is not marked as an update.
/// - [`KeyedOperator::pending_epoch`] is the smallest epoch of a record in a session that
///   has not fired; a session merging others takes the smallest of their epochs (those
///   that have fired hold none), and releases it when it fires. A record emitted at once
///   (its session is due already) holds nothing.
pub struct SessionWindows<A: Aggregation> {
    agg: A,
    gap: i64,
    opts: StateOptions,
    /// The last watermark (`i64::MIN` before the first).
    wm: i64,
    /// Per key, its sessions sorted by start (never empty).
    keys: SessionsByKey<A>,
    /// `(timer, key)` of the sessions not fired yet (and orphans).
    timers: BTreeSet<(i64, A::Key)>,
    /// `(timer, key)` of the fired sessions kept for late records (and orphans).
    expiries: BTreeSet<(i64, A::Key)>,
    /// Sessions in `keys`.
    entries: usize,
    out: Emitted<A::Output>,
    evicted: u64,
    /// The epoch of the records being processed.
    epoch: u64,
}

impl<A: Aggregation> SessionWindows<A> {
    /// Sessions closing after `gap` ms without a record of their key (`gap > 0`).
    pub fn new(agg: A, gap: i64, opts: StateOptions) -> Self {
        assert!(gap > 0, "invalid session gap {gap}");
        SessionWindows {
            agg,
            gap,
            opts: StateOptions {
                allowed_lateness: opts.allowed_lateness.max(0),
                ..opts
            },
            wm: i64::MIN,
            keys: KeyMap::default(),
            timers: BTreeSet::new(),
            expiries: BTreeSet::new(),
            entries: 0,
            out: Emitted::default(),
            evicted: 0,
            epoch: 0,
        }
    }

    /// The sessions of `key` overlapping `[t, end)`: the index range in its list.
    fn overlapping<Q>(&self, key: &Q, t: i64, end: i64) -> (usize, usize)
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.keys.get(key) {
            None => (0, 0),
            Some(sessions) => {
                // Sorted by start and disjoint, so sorted by end too.
                let lo = sessions.partition_point(|s| s.end <= t);
                let hi = sessions.partition_point(|s| s.start < end);
                (lo, hi.max(lo))
            }
        }
    }

    /// Removes the session of `key` that ends at `end` (fired or not), if any.
    fn remove_session(&mut self, key: &A::Key, fired: bool, end: i64) -> Option<Session<A::Acc>> {
        let sessions = self.keys.get_mut(key)?;
        let i = sessions.iter().position(|s| s.fired == fired && s.end == end)?;
        let session = sessions.remove(i);
        if sessions.is_empty() {
            self.keys.remove(key);
        }
        self.entries -= 1;
        Some(session)
    }

    /// Pops the due timers of `set` (`timers` when `fired` is false, else `expiries`):
    /// those with `timer + delay <= wm`. Returns `(end, key)` of the sessions whose actual
    /// end is due too, in `(end, key)` order; sets the others again at their end, and
    /// drops orphans.
    fn pop_due(&mut self, fired: bool, delay: i64) -> Vec<(i64, A::Key)> {
        let wm = self.wm;
        let set = if fired { &mut self.expiries } else { &mut self.timers };
        let mut due = Vec::new();
        while set.first().is_some_and(|(timer, _)| timer.saturating_add(delay) <= wm) {
            let (timer, key) = set.pop_first().expect("checked non-empty");
            let Some(session) = self
                .keys
                .get_mut(&key)
                .and_then(|sessions| sessions.iter_mut().find(|s| s.fired == fired && s.timer == timer))
            else {
                continue; // an orphan of a merge or an eviction
            };
            if session.end.saturating_add(delay) <= wm {
                due.push((session.end, key));
            } else {
                session.timer = session.end;
                set.insert((session.end, key));
            }
        }
        due.sort_unstable();
        due
    }

    /// The first exact entry of `set` (the session with the smallest `(end, key)`), after
    /// setting stale timers again and dropping orphans.
    fn first_exact(&mut self, fired: bool) -> Option<(i64, A::Key)> {
        let set = if fired { &mut self.expiries } else { &mut self.timers };
        loop {
            let (timer, key) = set.pop_first()?;
            let Some(session) = self
                .keys
                .get_mut(&key)
                .and_then(|sessions| sessions.iter_mut().find(|s| s.fired == fired && s.timer == timer))
            else {
                continue;
            };
            if session.end == timer {
                return Some((timer, key));
            }
            session.timer = session.end;
            set.insert((session.end, key));
        }
    }

    /// Fires the unfired session with the smallest `(end, key)` early and drops it or,
    /// when every session has fired, drops the retained one with the smallest `(end, key)`.
    /// False when there is no session.
    fn evict_oldest(&mut self) -> bool {
        if let Some((end, key)) = self.first_exact(false) {
            let session = self
                .remove_session(&key, false, end)
                .expect("an exact timer has its session");
            let window = Window {
                start: session.start,
                end,
            };
            self.out.push_result(
                &self.agg,
                (&key, window, &session.acc, session.emitted),
                end.saturating_sub(1),
            );
        } else if let Some((end, key)) = self.first_exact(true) {
            self.remove_session(&key, true, end);
        } else {
            return false;
        }
        self.evicted += 1;
        true
    }

    /// Adds a record that opens a new session `[t, end)` for `key`.
    fn open_session<Q>(&mut self, key: &Q, rec: &A::Input, t: i64, end: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        if let Some(max) = self.opts.max_keys {
            if self.entries >= max && (self.opts.on_full == OnFull::Reject || max == 0) {
                return Ok(Admit::Full { max_keys: max });
            }
        }
        let mut acc = self.agg.new_acc();
        self.agg.add(&mut acc, rec, t)?;
        if let Some(max) = self.opts.max_keys {
            // Evicting may remove sessions of this key, never one overlapping the record.
            while self.entries >= max && self.evict_oldest() {}
        }
        let due = end <= self.wm;
        let owned = key.to_owned();
        if due {
            // A late record within the lateness, alone: its session is due already.
            self.out
                .push_result(&self.agg, (&owned, Window { start: t, end }, &acc, false), end - 1);
        }
        let set = if due { &mut self.expiries } else { &mut self.timers };
        set.insert((end, owned));
        let session = Session {
            start: t,
            end,
            timer: end,
            fired: due,
            emitted: due,
            min_epoch: self.epoch,
            acc,
        };
        match self.keys.get_mut(key) {
            Some(sessions) => {
                let at = sessions.partition_point(|s| s.start < t);
                sessions.insert(at, session);
            }
            None => {
                self.keys.insert(key.to_owned(), vec![session]);
            }
        }
        self.entries += 1;
        Ok(Admit::Added)
    }
}

impl<A: Aggregation> KeyedOperator<A> for SessionWindows<A> {
    /// Adds the record to its key's sessions, merging those it bridges.
    ///
    /// The record is added (`A::add`) to the first session it overlaps before the others
    /// are merged into it, so an `add` error changes nothing. A `merge` error (an overflow,
    /// in practice) loses the accumulator that failed to merge; the sessions are merged
    /// all the same and the first error is returned, the record being counted in.
    fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        let wm = self.wm;
        let lateness = self.opts.allowed_lateness;
        let new_end = t.saturating_add(self.gap);
        let (lo, hi) = self.overlapping(key, t, new_end);
        if lo == hi {
            if new_end.saturating_add(lateness) <= wm {
                return Ok(Admit::Late { watermark: wm });
            }
            return self.open_session(key, rec, t, new_end);
        }

        let sessions = self.keys.get_mut(key).expect("overlapping sessions exist");
        let start = t.min(sessions[lo].start);
        let end = new_end.max(sessions[hi - 1].end);
        if end.saturating_add(lateness) <= wm {
            // Unreachable: a kept session has `end + lateness > wm`. Kept for safety.
            return Ok(Admit::Late { watermark: wm });
        }
        self.agg.add(&mut sessions[lo].acc, rec, t)?;
        let first = &sessions[lo];
        // The epochs of fired parts were released when they fired; the record adds its own.
        let held = |s: &Session<A::Acc>| if s.fired { u64::MAX } else { s.min_epoch };
        let mut min_epoch = held(first).min(self.epoch);
        let mut emitted = first.emitted;
        let mut fired_timer = first.fired.then_some(first.timer);
        let mut open_timer = (!first.fired).then_some(first.timer);
        let mut error = None;
        for _ in lo + 1..hi {
            let other = sessions.remove(lo + 1);
            min_epoch = min_epoch.min(held(&other));
            emitted |= other.emitted;
            if other.fired {
                fired_timer = fired_timer.or(Some(other.timer));
            } else {
                open_timer = open_timer.or(Some(other.timer));
            }
            if let Err(e) = self.agg.merge(&mut sessions[lo].acc, other.acc) {
                error.get_or_insert(e);
            }
        }
        self.entries -= hi - lo - 1;

        let session = &mut sessions[lo];
        session.start = start;
        session.end = end;
        let due = end <= wm;
        // The merged session keeps a timer of one of its parts in the set it belongs to
        // now (when due, every part had fired: an unfired part ends after `wm`).
        let (kept, set) = if due {
            (fired_timer, &mut self.expiries)
        } else {
            (open_timer, &mut self.timers)
        };
        session.timer = kept.unwrap_or_else(|| {
            set.insert((end, key.to_owned()));
            end
        });
        session.fired = due;
        session.emitted = emitted || due;
        session.min_epoch = min_epoch;
        if due {
            let (key, sessions) = self.keys.get_key_value(key).expect("the key has sessions");
            let session = &sessions[lo];
            self.out
                .push_result(&self.agg, (key, Window { start, end }, &session.acc, emitted), end - 1);
        }
        match error {
            Some(e) => Err(e),
            None => Ok(Admit::Added),
        }
    }

    /// A stale timer is due earlier than its session: waking for it is harmless.
    fn next_due(&self) -> Option<i64> {
        let fires = self.timers.first().map(|&(timer, _)| timer);
        let expires = self
            .expiries
            .first()
            .map(|&(timer, _)| timer.saturating_add(self.opts.allowed_lateness));
        fires.into_iter().chain(expires).min()
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        self.wm = self.wm.max(wm);
        let wm = self.wm;
        let lateness = self.opts.allowed_lateness;
        let due = self.pop_due(false, 0);
        let emitted = !due.is_empty();
        for (end, key) in due {
            let sessions = self.keys.get_mut(&key).expect("a due session exists");
            let session = sessions
                .iter_mut()
                .find(|s| !s.fired && s.end == end)
                .expect("a due session exists");
            let window = Window {
                start: session.start,
                end,
            };
            self.out
                .push_result(&self.agg, (&key, window, &session.acc, session.emitted), end - 1);
            if end.saturating_add(lateness) > wm {
                session.fired = true;
                session.emitted = true;
                session.timer = end;
                self.expiries.insert((end, key));
            } else {
                self.remove_session(&key, false, end);
            }
        }
        for (end, key) in self.pop_due(true, lateness) {
            self.remove_session(&key, true, end);
        }
        emitted
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Scans every session.
    fn pending_epoch(&self) -> Option<u64> {
        self.keys
            .values()
            .flatten()
            .filter(|s| !s.fired)
            .map(|s| s.min_epoch)
            .min()
    }

    fn emitted(&mut self) -> &mut VecDeque<(A::Output, i64)> {
        &mut self.out.queue
    }

    /// The rows `buf` held before go back to be written over.
    fn drain_emitted(&mut self, buf: &mut Results<A::Output>, max: usize) {
        self.out.drain_into(buf, max);
    }

    fn entries(&self) -> usize {
        self.entries
    }

    fn state_size(&self) -> StateSize {
        let per_key = entry_bytes::<A::Key, Vec<Session<A::Acc>>>();
        let per_session = size_of::<Session<A::Acc>>() + size_of::<(i64, A::Key)>() + BTREE_ENTRY_OVERHEAD;
        let bytes = self
            .keys
            .values()
            .map(|sessions| {
                per_key
                    + sessions
                        .iter()
                        .map(|s| per_session + self.agg.acc_heap_bytes(&s.acc))
                        .sum::<usize>()
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
        if !self.out.queue.is_empty() {
            return Err(results_waiting(self.out.queue.len()));
        }
        save(
            &Saved {
                wm: self.wm,
                keys: Sorted::new(&self.keys),
            },
            out,
        )
    }

    /// Each session's timer goes back into `timers` or `expiries`. The restored sessions
    /// hold the current epoch: what they held before is in the checkpoint, which confirms
    /// its sources' positions by itself.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        let saved: Saved<SessionsByKey<A>> = restore(saved)?;
        let (mut timers, mut expiries) = (BTreeSet::new(), BTreeSet::new());
        let mut keys = saved.keys;
        for (key, sessions) in keys.iter_mut() {
            check_sessions(sessions)?;
            for session in sessions.iter_mut() {
                session.min_epoch = self.epoch;
                let set = if session.fired { &mut expiries } else { &mut timers };
                set.insert((session.timer, key.clone()));
            }
        }
        self.entries = keys.values().map(Vec::len).sum();
        self.keys = keys;
        self.timers = timers;
        self.expiries = expiries;
        self.wm = saved.wm;
        self.out.queue.clear();
        Ok(())
    }
}

impl<A: Aggregation> SplitsByKey<A> for SessionWindows<A> {
    /// With no `allowed_lateness` a session is dropped as it fires, so every session
    /// held ends after the watermark; with no `max_keys`, no session fires early.
    fn clock(&self) -> Option<Clock> {
        (self.opts.allowed_lateness == 0 && self.opts.max_keys.is_none()).then_some(Clock::Sessions { gap: self.gap })
    }

    /// Every part's keys, in key order.
    fn join_saved(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        let mut joined: SavedByKey<A> = Saved {
            wm: i64::MIN,
            keys: BTreeMap::new(),
        };
        for bytes in parts {
            let part: SavedByKey<A> = restore(bytes)?;
            joined.wm = joined.wm.max(part.wm);
            joined.keys.extend(part.keys);
        }
        to_bytes(&joined)
    }

    fn split_saved(
        saved: &[u8],
        parts: usize,
        part_of: &dyn Fn(&A::Key) -> usize,
    ) -> Result<(i64, Vec<Vec<u8>>), String> {
        let whole: SavedByKey<A> = restore(saved)?;
        let wm = whole.wm;
        let out = deal_saved(whole.keys, parts, part_of, |keys: BTreeMap<A::Key, _>| Saved {
            wm,
            keys,
        })?;
        Ok((wm, out))
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

    fn sessions(gap: i64, lateness: i64) -> SessionWindows<CountSum> {
        SessionWindows::new(CountSum, gap, opts(lateness))
    }

    #[test]
    fn next_due_is_the_first_session_end_then_the_end_of_its_lateness() {
        let mut op = sessions(5_000, 1_000);
        assert_eq!(op.next_due(), None);
        feed(&mut op, "a", 1, 10_000);
        assert_eq!(op.next_due(), Some(15_000));
        op.on_watermark(15_000);
        assert_eq!(op.next_due(), Some(16_000), "kept for lateness");
        op.on_watermark(16_000);
        assert_eq!(op.next_due(), None);
    }

    #[test]
    fn a_silence_of_a_gap_separates_sessions() {
        let mut op = sessions(5_000, 0);
        feed(&mut op, "a", 1, 1_000);
        feed(&mut op, "a", 2, 5_999); // gap - 1 after: same session
        feed(&mut op, "b", 1, 1_000);
        feed(&mut op, "b", 2, 6_000); // exactly gap after: a new session
        assert_eq!(op.state_size().entries, 3);
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("b", w(1_000, 6_000), 1, 1, false, 5_999),
                out("a", w(1_000, 10_999), 2, 3, false, 10_998),
                out("b", w(6_000, 11_000), 1, 2, false, 10_999),
            ]
        );
        assert_eq!(op.state_size(), StateSize::default());
    }

    #[test]
    fn a_record_between_two_sessions_merges_them() {
        let mut op = sessions(5_000, 0);
        feed(&mut op, "a", 1, 0);
        feed(&mut op, "a", 2, 10_000);
        feed(&mut op, "a", 4, 20_000);
        assert_eq!(op.state_size().entries, 3);
        feed(&mut op, "a", 8, 7_000); // [7 000, 12 000) extends the second to [7 000, 15 000)
        assert_eq!(op.state_size().entries, 3);
        feed(&mut op, "a", 16, 3_000); // [3 000, 8 000) bridges [0, 5 000) and [7 000, 15 000)
        assert_eq!(op.state_size().entries, 2);
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(0, 15_000), 4, 27, false, 14_999),
                out("a", w(20_000, 25_000), 1, 4, false, 24_999)
            ]
        );
    }

    #[test]
    fn many_sessions_due_together_fire_each_key_once_in_key_order() {
        let n = 20_000;
        let mut op = sessions(5_000, 0);
        for (i, key) in many_keys(n).iter().enumerate().rev() {
            feed(&mut op, key, i as i64, 1_000);
        }
        assert!(op.on_watermark(6_000));
        assert_each_key_once_in_order(&drain_chunked(&mut op), n, w(1_000, 6_000));
        assert!(!op.has_emitted());
    }

    #[test]
    fn sessions_fire_in_end_then_key_order() {
        let mut op = sessions(5_000, 0);
        feed(&mut op, "z", 1, 0); // [0, 5 000), then extended to [0, 7 000)
        feed(&mut op, "a", 1, 1_000); // [1 000, 6 000)
        feed(&mut op, "z", 1, 2_000);
        feed(&mut op, "m", 1, 2_000); // [2 000, 7 000)
        assert!(!op.on_watermark(5_999));
        assert!(op.on_watermark(6_999));
        assert_eq!(drain(&mut op), [out("a", w(1_000, 6_000), 1, 1, false, 5_999)]);
        assert!(op.on_watermark(7_000));
        assert_eq!(
            drain(&mut op),
            [
                out("m", w(2_000, 7_000), 1, 1, false, 6_999),
                out("z", w(0, 7_000), 2, 2, false, 6_999)
            ]
        );
        assert_eq!(op.state_size().entries, 0);
        assert!(op.timers.is_empty() && op.expiries.is_empty());
    }

    #[test]
    fn a_late_record_bridging_two_fired_sessions_emits_one_update() {
        let mut op = sessions(5_000, 10_000);
        feed(&mut op, "a", 1, 0);
        feed(&mut op, "a", 2, 8_000);
        assert!(op.on_watermark(13_000));
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(0, 5_000), 1, 1, false, 4_999),
                out("a", w(8_000, 13_000), 1, 2, false, 12_999)
            ]
        );
        assert_eq!(op.state_size().entries, 2, "retained");

        assert_eq!(feed(&mut op, "a", 4, 4_000), Admit::Added);
        assert_eq!(drain(&mut op), [out("a", w(0, 13_000), 3, 7, true, 12_999)]);
        assert_eq!(op.state_size().entries, 1);

        // A late record alone whose session is due already: emitted at once, not an update.
        assert_eq!(feed(&mut op, "c", 1, 1_000), Admit::Added);
        assert_eq!(drain(&mut op), [out("c", w(1_000, 6_000), 1, 1, false, 5_999)]);
        // A late record whose session is not due yet: fires normally.
        assert_eq!(feed(&mut op, "b", 1, 9_000), Admit::Added);
        assert_eq!(drain(&mut op), []);

        assert!(op.on_watermark(16_000));
        assert_eq!(drain(&mut op), [out("b", w(9_000, 14_000), 1, 1, false, 13_999)]);
        assert_eq!(op.state_size().entries, 2, "a and b retained, c dropped");
        op.on_watermark(23_000);
        assert_eq!(op.state_size().entries, 1, "b retained until 24 000");
        // [7 000, 12 000) would merge into nothing and is past its lateness.
        assert_eq!(feed(&mut op, "a", 1, 7_000), Admit::Late { watermark: 23_000 });
        op.on_watermark(24_000);
        assert_eq!(op.state_size(), StateSize::default());
        assert_eq!(drain(&mut op), []);
    }

    #[test]
    fn a_fired_session_extended_past_the_watermark_fires_again_as_an_update() {
        let mut op = sessions(5_000, 10_000);
        feed(&mut op, "a", 1, 0);
        op.on_watermark(5_000);
        assert_eq!(drain(&mut op), [out("a", w(0, 5_000), 1, 1, false, 4_999)]);
        feed(&mut op, "a", 2, 4_000); // [0, 9 000): not due yet
        assert_eq!(drain(&mut op), []);
        assert!(op.on_watermark(9_000));
        assert_eq!(drain(&mut op), [out("a", w(0, 9_000), 2, 3, true, 8_999)]);
    }

    #[test]
    fn a_record_past_its_session_lateness_is_late() {
        let mut op = sessions(5_000, 0);
        feed(&mut op, "a", 1, 0);
        op.on_watermark(5_000);
        drain(&mut op);
        assert_eq!(feed(&mut op, "a", 1, -1), Admit::Late { watermark: 5_000 });
        assert_eq!(feed(&mut op, "b", 1, 0), Admit::Late { watermark: 5_000 });
        // Ends after the watermark: a new session, though the record is behind it.
        assert_eq!(feed(&mut op, "a", 1, 1), Admit::Added);
        op.on_close();
        assert_eq!(drain(&mut op), [out("a", w(1, 5_001), 1, 1, false, 5_000)]);
    }

    /// docs/language.md, "Late records": a record behind the watermark whose own session
    /// still ends after it merges into the fired session while that is kept (an update),
    /// and opens a new, overlapping session once it has been dropped (not an update).
    #[test]
    fn a_late_record_overlapping_a_dropped_session_opens_a_new_one() {
        let mut op = sessions(5_000, 2_000);
        feed(&mut op, "a", 1, 0);
        op.on_watermark(6_000);
        assert_eq!(drain(&mut op), [out("a", w(0, 5_000), 1, 1, false, 4_999)]);
        // Kept until 7 000: [3 000, 8 000) merges into [0, 5 000), not due yet.
        assert_eq!(feed(&mut op, "a", 2, 3_000), Admit::Added);
        assert_eq!(drain(&mut op), []);
        op.on_watermark(8_000);
        assert_eq!(drain(&mut op), [out("a", w(0, 8_000), 2, 3, true, 7_999)]);
        // Dropped at 10 000. [4 000, 9 000) overlaps [0, 8 000) but 9 000 + 2 000 > 10 000:
        // a new session holding only this record, emitted at once as a first result.
        op.on_watermark(10_000);
        assert_eq!(op.state_size(), StateSize::default());
        assert_eq!(feed(&mut op, "a", 4, 4_000), Admit::Added);
        assert_eq!(drain(&mut op), [out("a", w(4_000, 9_000), 1, 4, false, 8_999)]);
        // That new session is kept in turn: [7 000, 12 000) merges into it, and the merged
        // session fires at its new end as an update of the result just emitted.
        assert_eq!(feed(&mut op, "a", 8, 7_000), Admit::Added);
        assert_eq!(drain(&mut op), []);
        op.on_watermark(12_000);
        assert_eq!(drain(&mut op), [out("a", w(4_000, 12_000), 2, 12, true, 11_999)]);
    }

    #[test]
    fn a_failed_add_changes_nothing() {
        let mut op = sessions(5_000, 0);
        feed(&mut op, "a", i64::MAX, 0);
        feed(&mut op, "a", 0, 8_000);
        // [4 000, 9 000) would bridge both; adding to the first overflows.
        let err = op.process("a", &("a".to_string(), 1), 4_000).unwrap_err();
        assert_eq!(err, EvalError::Overflow { op: "+" });
        assert_eq!(op.state_size().entries, 2, "not merged");
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("a", w(0, 5_000), 1, i64::MAX, false, 4_999),
                out("a", w(8_000, 13_000), 1, 0, false, 12_999)
            ]
        );
    }

    #[test]
    fn a_failed_merge_keeps_the_sessions_merged_and_reports_the_error() {
        let mut op = sessions(5_000, 0);
        feed(&mut op, "a", 1, 0);
        feed(&mut op, "a", i64::MAX, 8_000);
        let err = op.process("a", &("a".to_string(), 1), 4_000).unwrap_err();
        assert_eq!(err, EvalError::Overflow { op: "+" });
        assert_eq!(op.state_size().entries, 1);
        op.on_close();
        // The accumulator that failed to merge is lost; the record is in.
        assert_eq!(drain(&mut op), [out("a", w(0, 13_000), 2, 2, false, 12_999)]);
    }

    #[test]
    fn an_open_session_pins_the_oldest_epoch_of_its_records_until_it_fires() {
        let mut op = sessions(5_000, 0);
        assert_eq!(op.pending_epoch(), None);
        feed(&mut op, "a", 1, 0);
        assert_eq!(op.pending_epoch(), Some(0), "epoch 0 before set_epoch");
        op.set_epoch(1);
        feed(&mut op, "b", 1, 1_000); // [1 000, 6 000)
        op.set_epoch(2);
        feed(&mut op, "b", 1, 3_000); // [1 000, 8 000)
        op.set_epoch(3);
        feed(&mut op, "c", 1, 10_000); // [10 000, 15 000)
        assert!(op.on_watermark(5_000));
        assert_eq!(op.pending_epoch(), Some(1), "the oldest epoch of b's session");
        assert!(!op.on_watermark(7_999));
        assert_eq!(op.pending_epoch(), Some(1));
        // Fired: its result waits in the operator, which counts as emitted.
        assert!(op.on_watermark(8_000));
        assert_eq!(op.pending_epoch(), Some(3));
        op.on_close();
        assert_eq!(op.pending_epoch(), None);
        assert_eq!(drain(&mut op).len(), 3);
    }

    #[test]
    fn a_merged_session_pins_the_oldest_epoch_of_its_parts() {
        let mut op = sessions(5_000, 0);
        op.set_epoch(1);
        feed(&mut op, "a", 1, 8_000); // [8 000, 13 000)
        op.set_epoch(2);
        feed(&mut op, "a", 1, 0); // [0, 5 000): first in the key's list
        op.set_epoch(3);
        feed(&mut op, "b", 1, 1_000); // [1 000, 6 000)
        op.set_epoch(4);
        feed(&mut op, "a", 1, 4_000); // bridges both: [0, 13 000)
        assert_eq!(op.state_size().entries, 2);
        assert!(op.on_watermark(6_000));
        assert_eq!(drain(&mut op), [out("b", w(1_000, 6_000), 1, 1, false, 5_999)]);
        assert_eq!(op.pending_epoch(), Some(1), "from the part merged into the first");
        op.on_watermark(13_000);
        assert_eq!(op.pending_epoch(), None);
    }

    #[test]
    fn a_late_record_emitted_at_once_pins_nothing() {
        let mut op = sessions(5_000, 10_000);
        op.set_epoch(1);
        feed(&mut op, "a", 1, 0);
        op.on_watermark(6_000);
        assert_eq!(op.pending_epoch(), None, "fired, though retained");
        op.set_epoch(2);
        feed(&mut op, "a", 1, 500); // merges into the fired [0, 5 000): emitted at once
        feed(&mut op, "b", 1, 0); // alone, due already: emitted at once
        assert_eq!(op.pending_epoch(), None);
        assert_eq!(drain(&mut op).len(), 3);
        // A fired session extended past the watermark fires again later: only the new
        // record is held, not the fired ones.
        op.set_epoch(3);
        feed(&mut op, "a", 1, 2_000); // [0, 7 000)
        assert_eq!(drain(&mut op), []);
        assert_eq!(op.pending_epoch(), Some(3));
        op.on_watermark(7_000);
        assert_eq!(drain(&mut op), [out("a", w(0, 7_000), 3, 3, true, 6_999)]);
        assert_eq!(op.pending_epoch(), None);
    }

    #[test]
    fn evict_oldest_releases_the_session_it_fires_early() {
        let mut op = SessionWindows::new(CountSum, 5_000, limited(2, OnFull::EvictOldest));
        op.set_epoch(1);
        feed(&mut op, "a", 1, 0);
        op.set_epoch(2);
        feed(&mut op, "b", 1, 1_000);
        op.set_epoch(3);
        feed(&mut op, "c", 1, 2_000); // fires a's session early
        assert_eq!(drain(&mut op), [out("a", w(0, 5_000), 1, 1, false, 4_999)]);
        assert_eq!(op.pending_epoch(), Some(2));
    }

    /// The operator against a direct transcription of the rules, on pseudo-random input.
    #[test]
    fn agrees_with_a_naive_model() {
        struct Naive {
            gap: i64,
            lateness: i64,
            wm: i64,
            /// (key, start, end, count, sum, fired, emitted)
            sessions: Vec<(String, i64, i64, i64, i64, bool, bool)>,
            out: std::collections::VecDeque<(crate::windows::state::testing::Out, i64)>,
            /// Records that merged two sessions or more.
            bridges: usize,
        }
        impl Naive {
            fn process(&mut self, key: &str, v: i64, t: i64) -> Admit {
                let (mut start, mut end) = (t, t + self.gap);
                let (mut count, mut sum, mut emitted) = (1, v, false);
                let (mut merged, mut rest) = (Vec::new(), Vec::new());
                for s in self.sessions.drain(..) {
                    if s.0 == key && s.1 < t + self.gap && s.2 > t {
                        merged.push(s);
                    } else {
                        rest.push(s);
                    }
                }
                self.sessions = rest;
                self.bridges += usize::from(merged.len() >= 2);
                for s in &merged {
                    (start, end) = (start.min(s.1), end.max(s.2));
                    (count, sum, emitted) = (count + s.3, sum + s.4, emitted || s.6);
                }
                if merged.is_empty() && end + self.lateness <= self.wm {
                    return Admit::Late { watermark: self.wm };
                }
                let due = end <= self.wm;
                if due {
                    self.out
                        .push_back(((key.to_string(), w(start, end), count, sum, emitted), end - 1));
                }
                self.sessions
                    .push((key.to_string(), start, end, count, sum, due, emitted || due));
                Admit::Added
            }

            fn on_watermark(&mut self, wm: i64) {
                self.wm = wm;
                self.sessions.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
                for s in self.sessions.iter_mut().filter(|s| !s.5 && s.2 <= wm) {
                    self.out.push_back(((s.0.clone(), w(s.1, s.2), s.3, s.4, s.6), s.2 - 1));
                    (s.5, s.6) = (true, true);
                }
                let lateness = self.lateness;
                self.sessions.retain(|s| !(s.5 && s.2 + lateness <= wm));
            }
        }

        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as i64
        };
        for lateness in [0, 3_000] {
            let mut op = sessions(1_000, lateness);
            let mut naive = Naive {
                gap: 1_000,
                lateness,
                wm: i64::MIN,
                sessions: Vec::new(),
                out: VecDeque::new(),
                bridges: 0,
            };
            let (mut max_t, mut lates) = (0, 0);
            for i in 0..3_000 {
                let key = ["a", "b", "c", "d", "e", "f", "g", "h"][next(8) as usize];
                let late = if next(10) == 0 { next(8_000) } else { 0 };
                let t = max_t + next(1_500) - 500 - late;
                max_t = max_t.max(t);
                let admit = feed(&mut op, key, i, t);
                lates += usize::from(matches!(admit, Admit::Late { .. }));
                assert_eq!(admit, naive.process(key, i, t), "record {i}");
                if next(3) == 0 {
                    let wm = max_t - 2_000 + next(500);
                    if wm > naive.wm {
                        op.on_watermark(wm);
                        naive.on_watermark(wm);
                    }
                }
                assert_eq!(op.emitted(), &naive.out, "after record {i}");
                assert_eq!(op.state_size().entries, naive.sessions.len());
            }
            op.on_close();
            naive.on_watermark(i64::MAX);
            assert_eq!(op.emitted(), &naive.out);
            // The input exercises late records, bridges and, with lateness, updates.
            assert!(lates > 10, "{lates} late records");
            assert!(naive.bridges > 10, "{} bridges", naive.bridges);
            let updates = naive.out.iter().filter(|((.., update), _)| *update).count();
            assert_eq!(updates > 10, lateness > 0, "{updates} updates");
            assert_eq!(op.state_size(), StateSize::default());
        }
    }

    #[test]
    fn reject_when_full_changes_nothing() {
        let mut op = SessionWindows::new(CountSum, 5_000, limited(2, OnFull::Reject));
        feed(&mut op, "a", 1, 0);
        feed(&mut op, "b", 1, 0);
        assert_eq!(feed(&mut op, "c", 1, 0), Admit::Full { max_keys: 2 });
        assert_eq!(
            feed(&mut op, "a", 1, 10_000),
            Admit::Full { max_keys: 2 },
            "a new session"
        );
        assert_eq!(feed(&mut op, "a", 2, 4_000), Admit::Added, "merges");
        assert_eq!(op.state_size().entries, 2);
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("b", w(0, 5_000), 1, 1, false, 4_999),
                out("a", w(0, 9_000), 2, 3, false, 8_999)
            ]
        );
        assert_eq!(op.take_evictions(), (0, 0));
    }

    #[test]
    fn evict_oldest_fires_the_session_ending_first_early() {
        let mut op = SessionWindows::new(CountSum, 5_000, limited(2, OnFull::EvictOldest));
        feed(&mut op, "a", 1, 0);
        feed(&mut op, "b", 1, 1_000);
        feed(&mut op, "a", 2, 3_000); // a now ends at 8 000, after b
        assert_eq!(feed(&mut op, "c", 4, 2_000), Admit::Added);
        assert_eq!(drain(&mut op), [out("b", w(1_000, 6_000), 1, 1, false, 5_999)]);
        assert_eq!(op.take_evictions(), (1, 0));
        assert_eq!(op.state_size().entries, 2);
        op.on_close();
        assert_eq!(
            drain(&mut op),
            [
                out("c", w(2_000, 7_000), 1, 4, false, 6_999),
                out("a", w(0, 8_000), 2, 3, false, 7_999)
            ]
        );
    }

    fn result(key: &str, window: Window, count: i64, sum: i64, update: bool) -> Seen {
        Seen::Result((key.to_string(), window, count, sum, update), window.end - 1)
    }

    #[test]
    fn sessions_merge_across_a_checkpoint() {
        let seen = assert_resumes(
            || sessions(5_000, 0),
            // `a` at 0 then 2 000: [0, 7 000) with its timer still at 5 000.
            &[
                Rec("a", 1, 0),
                Rec("a", 2, 2_000),
                Rec("a", 4, 10_000),
                Rec("b", 8, 1_000),
                Wm(3_000),
            ],
            &[Rec("a", 16, 6_000), Wm(30_000)],
        );
        assert!(seen.contains(&result("a", w(0, 15_000), 4, 23, false)), "{seen:?}");
        assert!(seen.contains(&result("b", w(1_000, 6_000), 1, 8, false)), "{seen:?}");
    }

    #[test]
    fn fired_sessions_kept_for_lateness_merge_after_a_restore() {
        let seen = assert_resumes(
            || sessions(5_000, 10_000),
            &[Rec("a", 1, 0), Rec("a", 2, 8_000), Wm(13_000)],
            &[Rec("a", 4, 4_000), Rec("c", 8, 1_000), Wm(30_000), Rec("a", 16, 5_000)],
        );
        assert_eq!(
            seen,
            [
                Seen::Admit(Admit::Added),
                result("a", w(0, 13_000), 3, 7, true),
                Seen::Admit(Admit::Added),
                result("c", w(1_000, 6_000), 1, 8, false),
                Seen::Admit(Admit::Late { watermark: 30_000 }),
            ]
        );
    }

    #[test]
    fn a_full_state_restored_evicts_the_oldest_session() {
        let seen = assert_resumes(
            || SessionWindows::new(CountSum, 5_000, limited(2, OnFull::EvictOldest)),
            &[Rec("b", 1, 0), Rec("a", 2, 1_000)],
            &[Rec("c", 4, 2_000), Rec("a", 8, 3_000)],
        );
        assert_eq!(
            seen[1],
            result("b", w(0, 5_000), 1, 1, false),
            "fired early to make room"
        );
    }

    #[test]
    fn damaged_state_is_an_error_never_a_panic() {
        assert_garbage_never_panics(|| sessions(5_000, 10_000));
        // A session as saved: start, end, timer, fired, emitted, (count, sum).
        type Saved = (i64, i64, i64, bool, bool, (i64, i64));
        let restore = |list: Vec<Saved>| {
            let saved = postcard::to_allocvec(&(0i64, HashMap::from([("a".to_string(), list)]))).unwrap();
            sessions(5_000, 0).restore_state(&saved)
        };
        let one = |start: i64, end: i64, timer: i64| (start, end, timer, false, false, (1i64, 1i64));
        assert!(
            restore(vec![one(0, 5_000, 5_000), one(6_000, 11_000, 9_000)]).is_ok(),
            "the shape is right"
        );
        assert!(restore(vec![]).is_err(), "a key without sessions");
        assert!(
            restore(vec![one(0, 5_000, 6_000)]).is_err(),
            "a timer after its session"
        );
        assert!(
            restore(vec![one(0, 5_000, 5_000), one(4_000, 9_000, 9_000)]).is_err(),
            "overlapping"
        );
        assert!(
            restore(vec![one(6_000, 11_000, 9_000), one(0, 5_000, 5_000)]).is_err(),
            "out of order"
        );
        assert!(
            restore(vec![one(i64::MIN, i64::MIN, i64::MIN)]).is_err(),
            "ending before any record"
        );
    }
}
