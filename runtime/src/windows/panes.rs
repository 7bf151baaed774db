//! Hopping windows over shared panes: each record updates one accumulator, and a window
//! combines those of its panes when it fires, so a record costs one update whatever the
//! number of windows it is in (a 1 h window sliding every 1 s holds each record in 3,600
//! windows).
//!
//! A *pane* is a slice of time `pane` ms long, where `pane` is the greatest common
//! divisor of the size and the slide, aligned as the windows are: every window boundary
//! is a pane boundary, so a window is exactly a run of panes. Each key keeps its panes'
//! accumulators in time order ([`KeyPanes`]); a window's result is its panes merged
//! oldest first. That order depends only on the panes, never on when a window fired or
//! whether the state came back from a checkpoint, so a float sum is the same bits
//! either way (a queue of partial merges, tried first, grouped the sums by its history
//! and a resumed run differed from an uninterrupted one in the last digits).
//!
//! The results are those of [`super::FixedWindows`] (windows firing in order of their
//! end, the keys of one in key order, `allowed_lateness` and late records the same) but
//! for the order in which an aggregate sees its values: pane by pane, by time, and in
//! arrival order within a pane. The compiler uses panes only where that order cannot
//! change a result other than in the rounding of float sums (no integer `sum`, whose
//! merge can overflow, no `collect`), and without `max_keys`, whose early firing starts
//! a window afresh.
//!
//! A checkpoint holds the watermark, the first window not yet fired, and every key's
//! panes ([`Saved`]).

use super::fixed::{clamp, Assigned};
use super::state::{entry_bytes, restore, results_waiting, save};
use super::{Admit, Aggregation, Keyed, KeyedOperator, StateOptions, StateSize, Window};
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::mem::size_of;

/// Hopping windows whose records are kept once, in panes (see the module's docs).
pub struct PanedWindows<A: Aggregation> {
    agg: A,
    size: i64,
    slide: i64,
    offset: i64,
    pane: i64,
    lateness: i64,
    /// The last watermark (`i64::MIN` before the first).
    wm: i64,
    /// The start of the first window that has not fired. Windows are told apart by their
    /// start (their ends may be clamped to `i64::MAX`).
    unfired: i128,
    keys: HashMap<A::Key, KeyPanes<A::Acc>>,
    /// Every pane that holds a key: how many keys, and the oldest epoch among its records.
    panes: BTreeMap<i64, PaneUse>,
    /// Accumulators, one per key per pane.
    entries: usize,
    out: VecDeque<(A::Output, i64)>,
    epoch: u64,
}

/// A key and its panes, borrowed for saving.
type SavedKey<'a, A> = (&'a <A as Keyed>::Key, Vec<&'a (i64, <A as Aggregation>::Acc)>);

struct PaneUse {
    keys: usize,
    min_epoch: u64,
}

/// One key's panes: `(start, accumulator)`, oldest first.
struct KeyPanes<Acc> {
    panes: VecDeque<(i64, Acc)>,
}

/// What a checkpoint holds of [`PanedWindows`]: the watermark, the first window not
/// fired, and every key's panes `(start, accumulator)`, oldest first (`L`), keys in
/// order.
#[derive(Serialize, Deserialize)]
struct Saved<K, L> {
    wm: i64,
    unfired: i128,
    keys: Vec<(K, L)>,
}

impl<A: Aggregation> PanedWindows<A>
where
    A::Acc: Clone,
{
    /// Windows of `size` ms every `slide` ms, starting at multiples of `slide` plus
    /// `offset`. The caller guarantees `0 < slide <= size` and `0 <= offset < slide`.
    pub fn new(agg: A, size: i64, slide: i64, offset: i64, opts: StateOptions) -> Self {
        assert!(
            0 < slide && slide <= size && (0..slide).contains(&offset),
            "invalid hopping window: size {size}, slide {slide}, offset {offset}"
        );
        PanedWindows {
            agg,
            size,
            slide,
            offset,
            pane: gcd(size, slide),
            lateness: opts.allowed_lateness.max(0),
            wm: i64::MIN,
            unfired: 0,
            keys: HashMap::new(),
            panes: BTreeMap::new(),
            entries: 0,
            out: VecDeque::new(),
            epoch: 0,
        }
        .before_every_window()
    }

    /// Sets the first window not fired below every window.
    fn before_every_window(mut self) -> Self {
        self.unfired = self.start_from(i128::from(i64::MIN) - i128::from(self.size));
        self
    }

    /// The start of the pane holding `t` (clamped: only the lowest pane can fall below
    /// `i64::MIN`).
    fn pane_of(&self, t: i64) -> i64 {
        let t = i128::from(t);
        clamp(t - (t - i128::from(self.offset)).rem_euclid(i128::from(self.pane)))
    }

    /// The smallest window start at or after `t`.
    fn start_from(&self, t: i128) -> i128 {
        t + (i128::from(self.offset) - t).rem_euclid(i128::from(self.slide))
    }

    /// The window starting at `start` as the results name it.
    fn window(&self, start: i128) -> Window {
        Window {
            start: clamp(start),
            end: clamp(start + i128::from(self.size)),
        }
    }

    /// The end of the last window holding the pane (or time) `pane`.
    fn last_end(&self, pane: i64) -> i64 {
        Assigned::new(pane, self.size, self.slide, self.offset).last_end()
    }

    /// True when the window ending at `end` no longer accepts records.
    fn closed(&self, end: i64) -> bool {
        end.saturating_add(self.lateness) <= self.wm
    }

    /// The start of the next window to fire: the first not fired that holds a pane.
    fn next_window(&self) -> Option<i128> {
        let (&pane, _) = self.panes.range(clamp(self.unfired)..).next()?;
        let pane = i128::from(pane);
        // The oldest window holding the pane starts after `pane - size`. (Past the top
        // of the range, `unfired` can be after the last pane.)
        let start = self.unfired.max(self.start_from(pane - i128::from(self.size) + 1));
        (start <= pane).then_some(start)
    }

    /// Fires the window starting at `start`: every key with a pane in it, in key order.
    fn fire(&mut self, start: i128) {
        let mut keys: Vec<(&A::Key, &KeyPanes<A::Acc>)> = self.keys.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, panes) in keys {
            self.out.extend(self.result(key, panes, start, false));
        }
        self.unfired = start + i128::from(self.slide);
    }

    /// Drops the panes whose every window is closed.
    fn expire(&mut self) {
        let Some(&first) = self.panes.keys().next() else { return };
        if !self.closed(self.last_end(first)) {
            return;
        }
        let mut cut = first;
        for &pane in self.panes.keys() {
            if !self.closed(self.last_end(pane)) {
                break;
            }
            cut = pane;
        }
        let gone = self.panes.range(..=cut).map(|(_, u)| u.keys).sum::<usize>();
        self.panes.retain(|&pane, _| pane > cut);
        self.entries -= gone;
        self.keys.retain(|_, panes| {
            panes.drop_until(cut);
            !panes.panes.is_empty()
        });
    }

    /// The key's result in the window starting at `start`: its panes there merged,
    /// oldest first; `None` when it has none there.
    fn result(&self, key: &A::Key, panes: &KeyPanes<A::Acc>, start: i128, update: bool) -> Option<(A::Output, i64)> {
        let window = self.window(start);
        let mut inside = panes.between(start, start + i128::from(self.size)).peekable();
        let (_, first) = inside.next()?;
        let output = if inside.peek().is_none() {
            // One pane: read in place.
            self.agg.output(key, window, first, update)
        } else {
            let mut merged = first.clone();
            for (_, acc) in inside {
                merge(&self.agg, &mut merged, acc.clone());
            }
            self.agg.output(key, window, &merged, update)
        };
        Some((output, window.end - 1))
    }
}

/// Folds `other` into `acc`. The compiler uses panes only for aggregates whose merge
/// does not fail (a count past `i64::MAX` aside): on a failure, `acc` keeps what it had.
fn merge<A: Aggregation>(agg: &A, acc: &mut A::Acc, other: A::Acc) {
    let _ = agg.merge(acc, other);
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl<Acc> KeyPanes<Acc> {
    fn new() -> Self {
        KeyPanes { panes: VecDeque::new() }
    }

    /// Adds a record to the pane starting at `pane`; true when that pane is new.
    /// On an `add` error nothing changed.
    fn add<A: Aggregation<Acc = Acc>>(
        &mut self,
        agg: &A,
        pane: i64,
        rec: &A::Input,
        t: i64,
    ) -> Result<bool, EvalError> {
        // Records come nearly in time order: look from the back.
        let mut at = self.panes.len();
        while at > 0 && self.panes[at - 1].0 > pane {
            at -= 1;
        }
        if at > 0 && self.panes[at - 1].0 == pane {
            agg.add(&mut self.panes[at - 1].1, rec, t)?;
            return Ok(false);
        }
        let mut acc = agg.new_acc();
        agg.add(&mut acc, rec, t)?;
        self.panes.insert(at, (pane, acc));
        Ok(true)
    }

    /// The panes in `[from, to)`, oldest first.
    fn between(&self, from: i128, to: i128) -> impl Iterator<Item = &(i64, Acc)> {
        self.panes
            .iter()
            .skip_while(move |(pane, _)| i128::from(*pane) < from)
            .take_while(move |(pane, _)| i128::from(*pane) < to)
    }

    /// Drops the panes starting at or before `cut`.
    fn drop_until(&mut self, cut: i64) {
        while self.panes.front().is_some_and(|(pane, _)| *pane <= cut) {
            self.panes.pop_front();
        }
    }
}

impl<A: Aggregation> KeyedOperator<A> for PanedWindows<A>
where
    A::Acc: Clone,
{
    /// Adds the record to its pane. Each window it is in that has fired and is kept for
    /// lateness emits the key's result again at once, in the order of the windows.
    fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        if self.closed(self.last_end(t)) {
            return Ok(Admit::Late { watermark: self.wm });
        }
        // The windows of the record that fired already and are kept (only a record
        // behind the watermark has any), and whether the key had a result in each.
        let mut fired = Vec::new();
        let size = i128::from(self.size);
        let mut start = self.start_from(i128::from(t) - size + 1);
        while start <= i128::from(t) && self.window(start).end <= self.wm {
            if !self.closed(self.window(start).end) {
                let had = self
                    .keys
                    .get(key)
                    .is_some_and(|panes| panes.between(start, start + size).next().is_some());
                fired.push((start, had));
            }
            start += i128::from(self.slide);
        }
        let pane = self.pane_of(t);
        let new_pane = match self.keys.get_mut(key) {
            Some(panes) => panes.add(&self.agg, pane, rec, t)?,
            None => {
                let mut panes = KeyPanes::new();
                panes.add(&self.agg, pane, rec, t)?;
                self.keys.insert(key.to_owned(), panes);
                true
            }
        };
        let usage = self.panes.entry(pane).or_insert(PaneUse {
            keys: 0,
            min_epoch: u64::MAX,
        });
        usage.keys += usize::from(new_pane);
        usage.min_epoch = usage.min_epoch.min(self.epoch);
        self.entries += usize::from(new_pane);
        if !fired.is_empty() {
            let (key, panes) = self.keys.get_key_value(key).expect("the key was just added");
            for (start, had) in fired {
                self.out.extend(self.result(key, panes, start, had));
            }
        }
        Ok(Admit::Added)
    }

    fn next_due(&self) -> Option<i64> {
        let fires = self.next_window().map(|start| self.window(start).end);
        let expires = self.panes.keys().next().map(|&first| {
            let end = self.last_end(first);
            end.saturating_add(self.lateness)
        });
        fires.into_iter().chain(expires).min()
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        self.wm = self.wm.max(wm);
        let before = self.out.len();
        while let Some(start) = self.next_window().filter(|&start| self.window(start).end <= self.wm) {
            self.fire(start);
        }
        // Windows that held nothing when the watermark passed their end have fired too:
        // a late record in one emits its result at once.
        let passed = self.start_from(i128::from(self.wm) - i128::from(self.size) + 1);
        self.unfired = self.unfired.max(passed);
        self.expire();
        self.out.len() > before
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// The smallest epoch of a pane in a window that has not fired.
    fn pending_epoch(&self) -> Option<u64> {
        self.panes
            .iter()
            .rev()
            .take_while(|(&pane, _)| self.last_end(pane) > self.wm)
            .map(|(_, usage)| usage.min_epoch)
            .min()
    }

    fn emitted(&mut self) -> &mut VecDeque<(A::Output, i64)> {
        &mut self.out
    }

    fn entries(&self) -> usize {
        self.entries
    }

    fn state_size(&self) -> StateSize {
        let per_key = entry_bytes::<A::Key, KeyPanes<A::Acc>>();
        let per_pane = size_of::<(i64, A::Acc)>();
        let bytes = self
            .keys
            .values()
            .map(|panes| {
                per_key
                    + panes.panes.len() * per_pane
                    + panes
                        .panes
                        .iter()
                        .map(|(_, acc)| self.agg.acc_heap_bytes(acc))
                        .sum::<usize>()
            })
            .sum();
        StateSize {
            entries: self.entries,
            bytes,
        }
    }

    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        if !self.out.is_empty() {
            return Err(results_waiting(self.out.len()));
        }
        let mut keys: Vec<SavedKey<'_, A>> = self
            .keys
            .iter()
            .map(|(key, panes)| (key, panes.panes.iter().collect()))
            .collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        save(
            &Saved {
                wm: self.wm,
                unfired: self.unfired,
                keys,
            },
            out,
        )
    }

    /// The restored panes hold the current epoch: what they held before is in the
    /// checkpoint, which confirms its sources' positions by itself.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        let saved: Saved<A::Key, Vec<(i64, A::Acc)>> = restore(saved)?;
        let mut keys = HashMap::with_capacity(saved.keys.len());
        let mut panes: BTreeMap<i64, PaneUse> = BTreeMap::new();
        let mut entries = 0;
        for (key, list) in saved.keys {
            if list.is_empty() || list.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err("a key's panes are not in order".into());
            }
            if list.iter().any(|(pane, _)| *pane != self.pane_of(*pane)) {
                return Err("a pane does not start on a pane boundary".into());
            }
            for (pane, _) in &list {
                let usage = panes.entry(*pane).or_insert(PaneUse {
                    keys: 0,
                    min_epoch: self.epoch,
                });
                usage.keys += 1;
            }
            entries += list.len();
            let mut key_panes = KeyPanes::new();
            key_panes.panes = list.into();
            if keys.insert(key, key_panes).is_some() {
                return Err("a key is saved twice".into());
            }
        }
        let (size, lowest) = (i128::from(self.size), i128::from(i64::MIN));
        if !(lowest - 2 * size..=i128::from(i64::MAX)).contains(&saved.unfired)
            || self.start_from(saved.unfired) != saved.unfired
        {
            return Err("the first window not fired is not a window's start".into());
        }
        self.wm = saved.wm;
        self.unfired = saved.unfired;
        self.keys = keys;
        self.panes = panes;
        self.entries = entries;
        self.out.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
