//! Hopping windows over shared panes: each record updates one accumulator, and a window
//! combines those of its panes when it fires, so a record costs one update whatever the
//! number of windows it is in (a 1 h window sliding every 1 s holds each record in 3,600
//! windows).
//!
//! A *pane* is a slice of time `pane` ms long, where `pane` is the greatest common
//! divisor of the size and the slide, aligned as the windows are: every window boundary
//! is a pane boundary, so a window is exactly a run of panes.
//!
//! Each key holds a *slot*, a small number, while it has panes, and each pane that holds
//! a record keeps its keys' accumulators by slot ([`Column`], [`Cells`]): an array when
//! it holds many of the keys, a map when few. A slide's records go into one or two
//! panes, and its results read a few more, each a few hundred KiB for thousands of keys
//! and read ahead of need; with each key's panes kept together, every record and every
//! result fetched a key's own panes from memory (the panes of 10,000 keys over a minute
//! are 60 MiB). Nothing of a key is kept elsewhere but its slot and how many panes it
//! holds. Slots are handed out as keys arrive, and handed out again in key order as a
//! window fires once many keys came since ([`PanedWindows::order_slots`]): firing
//! visits the keys in key order, and then reads each array front to back.
//!
//! Merging a window's panes when it fires would cost a merge per pane per window (60 for
//! a minute sliding every second). Instead time is cut into *blocks* as long as a window,
//! from the offset on (every block boundary is a pane boundary), so a window is the tail
//! of one block and the head of the next, or one whole block. In the older block each
//! pane keeps a fold per key, the merge of the key's accumulator there and in every
//! later pane of the block, built once back to front for the whole block; of the newer
//! block each key keeps one running merge of its panes from the block's start, extended
//! pane by pane as windows slide ([`Head`]). A window's result is the fold of the key's
//! first pane in its tail merged with the head: one merge, whatever its size. A pane
//! whose folds are an array also holds, for a key with no record in it, the fold of the
//! key's next pane, so a window starting there finds every key's tail in one place; a
//! window starting at a pane whose folds are a map finds each key's next pane in an
//! index of the block ([`TailIndex`]). A record that changes a pane builds the key's
//! folds and head that include it again.
//!
//! How a result is grouped (tail folded back to front, head front to back, then the two)
//! depends only on the panes and the window, never on when a fold was built or whether
//! the state came back from a checkpoint, so a float sum is the same bits either way (a
//! queue of partial merges, tried first, grouped the sums by its history and a resumed
//! run differed from an uninterrupted one in the last digits).
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
//! panes ([`Saved`]); slots, folds and heads are built again.

mod cells;

use self::cells::Cells;
use super::fixed::{clamp, Assigned};
use super::sorted_keys::SortedKeys;
use super::state::{deal_saved, entry_bytes, restore, results_waiting, save, to_bytes};
use super::{Admit, Aggregation, BuildRows, KeyedOperator, Reach, Results, StateOptions, StateSize, Window};
use crate::errors::EvalError;
use serde::{Deserialize, Serialize};
use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;
use std::mem::size_of;

/// Hopping windows whose records are kept once, in panes (see the module's docs).
pub struct PanedWindows<A: Aggregation> {
    agg: A,
    grid: Grid,
    lateness: i64,
    /// The last watermark (`i64::MIN` before the first).
    wm: i64,
    /// The start of the first window that has not fired. Windows are told apart by their
    /// start (their ends may be clamped to `i64::MAX`).
    unfired: i128,
    /// Every key and its slot.
    keys: SortedKeys<A::Key, u32>,
    /// Slots handed out so far (every slot is below), and those of keys dropped since,
    /// handed out again first.
    slots: u32,
    free: Vec<u32>,
    /// By slot: how many panes the key holds. A key left with none is dropped when
    /// firing next visits it.
    held: Vec<u32>,
    /// Every pane that holds a record, oldest first.
    columns: VecDeque<Column<A::Acc>>,
    /// The block whose panes hold their folds.
    tails: Option<Tails>,
    head: Head<A::Acc>,
    /// Accumulators, one per key per pane.
    entries: usize,
    out: VecDeque<(A::Output, i64)>,
    /// Windows fired whose results are not all built, oldest first, and the index (in
    /// key order) of the next key of the first: results are built as they are drained,
    /// so a window of many keys never has all its results in memory at once.
    firing: VecDeque<i128>,
    next_key: usize,
    /// A key was left with no pane: keys are dropped once the window being built is.
    emptied: bool,
    epoch: u64,
    /// The arrays of folds of panes that expired, for the next block's folds
    /// ([`Cells::dense_in`]): never more than that block's, which they were.
    spare_folds: Vec<Vec<Option<A::Acc>>>,
    /// Arrays of expired panes' cells, for new panes' cells: [`SPARE_CELLS`] at most.
    spare_cells: Vec<Vec<Option<A::Acc>>>,
    /// Keys given a slot since the slots were last handed out in key order, and the
    /// windows fired since ([`Self::order_slots`]).
    unordered: usize,
    fired_since_ordered: u64,
}

/// One pane: its keys' accumulators and, in the block whose folds are built, their
/// folds; and the oldest epoch among its records.
struct Column<Acc> {
    start: i64,
    cells: Cells<Acc>,
    folds: Cells<Acc>,
    min_epoch: u64,
}

/// The block whose panes hold their folds, and, once a window starting at a pane whose
/// folds are a map asked for it, where each key's panes in the block are.
struct Tails {
    block: i128,
    index: Option<TailIndex>,
}

/// The starts of each key's panes in a block, in order: those of slot `s` are
/// `starts[from[s]..from[s + 1]]`; but for the slots marked `changed`, given a pane in
/// the block since (a record late by seconds, each slide), whose panes firing looks for
/// in the block itself. (Building it again for each such record cost the hopping
/// benchmark's first minute of windows a rebuild a slide.)
struct TailIndex {
    from: Vec<usize>,
    starts: Vec<i64>,
    changed: Vec<bool>,
    changes: usize,
}

/// The panes of block `block` that start before `through`, merged front to back, per
/// key.
struct Head<Acc> {
    block: i128,
    through: i128,
    cells: Cells<Acc>,
}

/// A key's panes `(start, accumulator)`, borrowed for saving.
type SavedPanes<'a, A> = Vec<(i64, &'a <A as Aggregation>::Acc)>;

/// What a checkpoint holds of [`PanedWindows`]: the watermark, the first window not
/// fired, and every key's panes `(start, accumulator)`, oldest first (`L`), keys in
/// order.
#[derive(Serialize, Deserialize)]
struct Saved<K, L> {
    wm: i64,
    unfired: i128,
    keys: Vec<(K, L)>,
}

/// Where windows, panes and blocks fall in time.
#[derive(Clone, Copy)]
struct Grid {
    size: i64,
    slide: i64,
    offset: i64,
    pane: i64,
    /// A block's length: a window's.
    block: i128,
}

impl Grid {
    /// The start of the pane holding `t` (clamped: only the lowest pane can fall below
    /// `i64::MIN`).
    fn pane_of(&self, t: i64) -> i64 {
        let t = i128::from(t);
        clamp(t - rem_euclid(t - i128::from(self.offset), self.pane))
    }

    /// The smallest window start at or after `t`.
    fn start_from(&self, t: i128) -> i128 {
        t + rem_euclid(i128::from(self.offset) - t, self.slide)
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

    /// The block holding time `t` (a clamped pane start is in its pane's block).
    fn block(&self, t: i128) -> i128 {
        let from_offset = t - i128::from(self.offset);
        match (i64::try_from(from_offset), i64::try_from(self.block)) {
            (Ok(d), Ok(block)) => i128::from(d.div_euclid(block)),
            _ => from_offset.div_euclid(self.block),
        }
    }

    /// The start of block `block`.
    fn block_start(&self, block: i128) -> i128 {
        i128::from(self.offset) + block * self.block
    }

    /// Where the window starting at `start` falls among the blocks.
    fn span(&self, start: i128) -> Span {
        let block = self.block(start);
        let window = self.window(start);
        Span {
            start,
            window,
            block,
            next_block: self.block_start(block + 1),
            end: start + i128::from(self.size),
            time: window.end - 1,
        }
    }
}

/// `v.rem_euclid(m)`, in `i64` unless `v` is outside it: a record costs a few of these,
/// and an `i128` division costs more than the rest of its arithmetic.
fn rem_euclid(v: i128, m: i64) -> i128 {
    match i64::try_from(v) {
        Ok(v) => i128::from(v.rem_euclid(m)),
        Err(_) => v.rem_euclid(i128::from(m)),
    }
}

/// A window and the blocks it falls in, worked out once for all the keys it fires.
#[derive(Clone, Copy)]
struct Span {
    start: i128,
    window: Window,
    /// The block holding the window's start, and the start of the next.
    block: i128,
    next_block: i128,
    /// The window's end, unclamped.
    end: i128,
    /// Its results' event time.
    time: i64,
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
        let grid = Grid {
            size,
            slide,
            offset,
            pane: gcd(size, slide),
            block: i128::from(size),
        };
        PanedWindows {
            agg,
            grid,
            lateness: opts.allowed_lateness.max(0),
            wm: i64::MIN,
            unfired: grid.start_from(i128::from(i64::MIN) - i128::from(size)),
            keys: SortedKeys::new(),
            slots: 0,
            free: Vec::new(),
            held: Vec::new(),
            columns: VecDeque::new(),
            tails: None,
            head: Head::none(),
            entries: 0,
            out: VecDeque::new(),
            firing: VecDeque::new(),
            next_key: 0,
            emptied: false,
            epoch: 0,
            spare_folds: Vec::new(),
            spare_cells: Vec::new(),
            unordered: 0,
            fired_since_ordered: u64::MAX,
        }
    }

    /// True when the window ending at `end` no longer accepts records.
    fn closed(&self, end: i64) -> bool {
        end.saturating_add(self.lateness) <= self.wm
    }

    /// The index of the first pane starting at or after `t`.
    fn column_from(&self, t: i128) -> usize {
        column_from(&self.columns, t)
    }

    /// The start of the pane holding `t`: nearly always the newest or the one before
    /// (records out of order by up to a pane), found without a division.
    #[inline]
    fn pane_holding(&self, t: i64) -> i64 {
        match self.newest_holding(t, 2) {
            Some(column) => column.start,
            None => self.grid.pane_of(t),
        }
    }

    /// The pane holding `t` among the `among` newest, found by comparing starts. (A
    /// pane starting at `i64::MIN` may be one clamped there, shorter: never this one.)
    #[inline]
    fn newest_holding(&self, t: i64, among: usize) -> Option<&Column<A::Acc>> {
        let pane = self.grid.pane.unsigned_abs();
        let holds =
            |column: &&Column<A::Acc>| column.start > i64::MIN && column.start <= t && t.abs_diff(column.start) < pane;
        self.columns.iter().rev().take(among).find(holds)
    }

    /// Where the pane starting at `pane` is, or goes: records come nearly in time
    /// order, so it is nearly always the newest, the one after it or the one before.
    fn column_at(&self, pane: i64) -> usize {
        let len = self.columns.len();
        match self.columns.back() {
            Some(newest) if newest.start < pane => len,
            Some(newest) if newest.start == pane => len - 1,
            _ if len >= 2 && self.columns[len - 2].start == pane => len - 2,
            _ => self.column_from(i128::from(pane)),
        }
    }

    /// The key's accumulators in the panes starting in `[lo, hi)`, oldest first.
    fn held_in(&self, slot: u32, lo: i128, hi: i128) -> impl DoubleEndedIterator<Item = &A::Acc> {
        self.columns
            .range(self.column_from(lo)..self.column_from(hi))
            .filter_map(move |column| column.cells.get(slot))
    }

    /// The start of the next window to fire: the first not fired that holds a pane.
    fn next_window(&self) -> Option<i128> {
        let first = self.columns.get(self.column_from(i128::from(clamp(self.unfired))))?;
        let pane = i128::from(first.start);
        // The oldest window holding the pane starts after `pane - size`. (Past the top
        // of the range, `unfired` can be after the last pane.)
        let start = self
            .unfired
            .max(self.grid.start_from(pane - i128::from(self.grid.size) + 1));
        (start <= pane).then_some(start)
    }

    /// Adds a record to the key's accumulator in the pane starting at `pane`, and builds
    /// the key's folds and head again where they include that pane. On an `add` error
    /// nothing changed.
    fn add<Q>(&mut self, key: &Q, pane: i64, rec: &A::Input, t: i64) -> Result<(), EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        let at = self.column_at(pane);
        let column_there = self.columns.get(at).is_some_and(|column| column.start == pane);
        let known = self.keys.get(key).copied();
        if let (Some(slot), true) = (known, column_there) {
            let column = &mut self.columns[at];
            if let Some(acc) = column.cells.get_mut(slot) {
                self.agg.add(acc, rec, t)?;
                column.min_epoch = column.min_epoch.min(self.epoch);
                self.rebuild_folds_of(slot, pane, false);
                return Ok(());
            }
        }
        let slot = match (known, self.free.last()) {
            (Some(slot), _) | (None, Some(&slot)) => slot,
            (None, None) if self.slots == u32::MAX => {
                return Err(EvalError::StateFull {
                    max_keys: u32::MAX as usize,
                })
            }
            (None, None) => self.slots,
        };
        let mut acc = self.agg.new_acc();
        self.agg.add(&mut acc, rec, t)?;
        // Nothing fails from here on.
        if known.is_none() {
            if self.free.pop().is_none() {
                self.slots += 1;
                self.held.push(0);
            }
            self.keys.insert(key.to_owned(), slot);
            self.unordered += 1;
        }
        if !column_there {
            let mut column = Column::new(pane);
            // A new newest pane after one whose cells became an array likely holds as
            // many keys: it starts as one, without growing a map first.
            if at == self.columns.len() && self.columns.back().is_some_and(|last| last.cells.is_dense()) {
                column.cells = Cells::dense_in(self.spare_cells.pop().unwrap_or_default(), self.slots);
            }
            self.columns.insert(at, column);
        }
        let column = &mut self.columns[at];
        column.cells.insert(slot, acc, self.slots);
        column.min_epoch = column.min_epoch.min(self.epoch);
        self.held[slot as usize] += 1;
        self.entries += 1;
        self.rebuild_folds_of(slot, pane, true);
        Ok(())
    }

    /// After the key's accumulator in the pane `pane` changed (`new`: was added): its
    /// folds, when that pane's block holds them, and its head, when the head took the
    /// pane in, are built again from its panes.
    fn rebuild_folds_of(&mut self, slot: u32, pane: i64, new: bool) {
        // A pane after the head's and after the block whose folds are built (the newest,
        // for nearly every record) is in neither: no division to find its block.
        let after_tails = |tails: &Tails| i128::from(pane) >= self.grid.block_start(tails.block + 1);
        if i128::from(pane) >= self.head.through && self.tails.as_ref().is_none_or(after_tails) {
            return;
        }
        let block = self.grid.block(i128::from(pane));
        let (from, to) = (self.grid.block_start(block), self.grid.block_start(block + 1));
        if let Some(tails) = self.tails.as_mut().filter(|tails| tails.block == block) {
            // The index keeps up with a few new panes by marking their keys; with many,
            // it is built again.
            if new && !tails.index.as_mut().is_some_and(|index| index.mark_changed(slot)) {
                tails.index = None;
            }
            let (lo, hi) = (column_from(&self.columns, from), column_from(&self.columns, to));
            let (agg, slots) = (&self.agg, self.slots);
            let mut later: Option<A::Acc> = None;
            for column in self.columns.range_mut(lo..hi).rev() {
                if let Some(acc) = column.cells.get(slot) {
                    let mut fold = acc.clone();
                    if let Some(later) = later.take() {
                        merge(agg, &mut fold, later);
                    }
                    column.folds.insert(slot, fold.clone(), slots);
                    later = Some(fold);
                } else if column.folds.is_dense() {
                    match &later {
                        Some(later) => column.folds.insert(slot, later.clone(), slots),
                        None => drop(column.folds.remove(slot)),
                    }
                }
            }
        }
        if self.head.block == block && i128::from(pane) < self.head.through {
            match fold_forward(&self.agg, self.held_in(slot, from, self.head.through)) {
                Some(acc) => self.head.cells.insert(slot, acc, self.slots),
                None => drop(self.head.cells.remove(slot)),
            }
        }
    }

    /// The key's accumulator in the window `span`, merged from its panes as firing
    /// merges them (for a window that fired and is kept, which a late record changed).
    fn result_of(&self, slot: u32, span: &Span) -> Option<A::Acc> {
        let mut tail: Option<A::Acc> = None;
        for acc in self.held_in(slot, span.start, span.next_block).rev() {
            let mut fold = acc.clone();
            if let Some(later) = tail.take() {
                merge(&self.agg, &mut fold, later);
            }
            tail = Some(fold);
        }
        let head = fold_forward(&self.agg, self.held_in(slot, span.next_block, span.end));
        match (tail, head) {
            (Some(mut tail), Some(head)) => {
                merge(&self.agg, &mut tail, head);
                Some(tail)
            }
            (Some(one), None) | (None, Some(one)) => Some(one),
            (None, None) => None,
        }
    }

    /// Builds the folds of block `block`, back to front, unless built, and drops those
    /// of the block before. A pane whose accumulators are an array gets its folds as one,
    /// holding for each key without a record there the fold of its next pane.
    fn build_tails(&mut self, block: i128) {
        if self.tails.as_ref().is_some_and(|tails| tails.block == block) {
            return;
        }
        // The old block's arrays of folds (most expired with their panes) hold the new
        // block's.
        let mut memory = std::mem::take(&mut self.spare_folds);
        if let Some(old) = self.tails.take() {
            let from = self.column_from(self.grid.block_start(old.block));
            let to = self.column_from(self.grid.block_start(old.block + 1));
            for column in self.columns.range_mut(from..to) {
                memory.extend(std::mem::replace(&mut column.folds, Cells::new()).into_memory());
            }
        }
        let from = self.column_from(self.grid.block_start(block));
        let to = self.column_from(self.grid.block_start(block + 1));
        let (agg, slots) = (&self.agg, self.slots);
        let columns = self.columns.make_contiguous();
        // Which pane holds each key's fold of the panes after this one, by slot.
        let mut later = vec![usize::MAX; slots as usize];
        for at in (from..to).rev() {
            let (this, after) = columns.split_at_mut(at + 1);
            let Column { cells, folds, .. } = &mut this[at];
            let fold_after = |slot: u32| {
                let at_later = later[slot as usize].wrapping_sub(at + 1);
                after
                    .get(at_later)
                    .map(|column| column.folds.get(slot).expect("built before"))
            };
            *folds = if cells.is_dense() {
                let mut dense = Cells::dense_in(memory.pop().unwrap_or_default(), slots);
                for slot in 0..slots {
                    let fold = match (cells.get(slot), fold_after(slot)) {
                        (Some(acc), later) => {
                            let mut fold = acc.clone();
                            if let Some(later) = later {
                                merge(agg, &mut fold, later.clone());
                            }
                            fold
                        }
                        (None, Some(later)) => later.clone(),
                        (None, None) => continue,
                    };
                    dense.insert(slot, fold, slots);
                }
                dense
            } else {
                let mut sparse = Cells::new();
                for (slot, acc) in cells.iter() {
                    let mut fold = acc.clone();
                    if let Some(later) = fold_after(slot) {
                        merge(agg, &mut fold, later.clone());
                    }
                    sparse.insert(slot, fold, slots);
                }
                sparse
            };
            for (slot, _) in folds.iter() {
                later[slot as usize] = at;
            }
        }
        while self.spare_cells.len() < SPARE_CELLS {
            let Some(array) = memory.pop() else { break };
            self.spare_cells.push(array);
        }
        self.tails = Some(Tails { block, index: None });
    }

    /// Builds the index of where each key's panes are in the block whose folds are
    /// built, unless built.
    fn build_tail_index(&mut self) {
        let Some(tails) = self.tails.as_ref().filter(|tails| tails.index.is_none()) else {
            return;
        };
        let from = self.column_from(self.grid.block_start(tails.block));
        let to = self.column_from(self.grid.block_start(tails.block + 1));
        let block = self.columns.range(from..to);
        let mut starts_at = vec![0; self.slots as usize + 1];
        for (slot, _) in block.clone().flat_map(|column| column.cells.iter()) {
            starts_at[slot as usize + 1] += 1;
        }
        for slot in 0..self.slots as usize {
            starts_at[slot + 1] += starts_at[slot];
        }
        let mut next = starts_at.clone();
        let mut starts = vec![0; starts_at[self.slots as usize]];
        for column in block {
            for (slot, _) in column.cells.iter() {
                starts[next[slot as usize]] = column.start;
                next[slot as usize] += 1;
            }
        }
        self.tails = Some(Tails {
            block: tails.block,
            index: Some(TailIndex {
                from: starts_at,
                starts,
                changed: vec![false; self.slots as usize],
                changes: 0,
            }),
        });
    }

    /// Makes the head the merge, per key, of the panes of block `block` (starting at
    /// `from`) that start before `end`: the head kept from the last window, taking in
    /// the panes since, or built again from the block's start.
    fn build_head(&mut self, block: i128, from: i128, end: i128) {
        if self.head.block != block || self.head.through > end {
            self.head.cells.clear();
            self.head.block = block;
            self.head.through = from;
        }
        let (lo, hi) = (self.column_from(self.head.through), self.column_from(end));
        let (agg, slots, head) = (&self.agg, self.slots, &mut self.head);
        for column in self.columns.range(lo..hi) {
            for (slot, acc) in column.cells.iter() {
                match head.cells.get_mut(slot) {
                    Some(merged) => merge(agg, merged, acc.clone()),
                    None => head.cells.insert(slot, acc.clone(), slots),
                }
            }
        }
        head.through = end;
    }

    /// Builds up to `room` results of the windows fired and not yet built into `into`:
    /// each window's keys with a pane in it, in key order. Drops the panes that expired
    /// once every fired window is built.
    fn build_fired(&mut self, into: &mut impl BuildRows<A::Output>, mut room: usize) {
        while room > 0 {
            let Some(&start) = self.firing.front() else { break };
            let span = self.grid.span(start);
            if self.next_key == 0 {
                if self.slots_worth_ordering() {
                    self.order_slots();
                }
                self.build_tails(span.block);
                self.build_head(span.block + 1, span.next_block, span.end);
            }
            // The first array of folds in the window's tail holds the tail of every key
            // without a pane before it; the few maps before it hold those of keys with
            // one. With no array near the start, each key's first pane in the tail is
            // looked up in the block's index.
            let (first_at, tail_end) = (self.column_from(span.start), self.column_from(span.next_block));
            let first_array = (first_at..tail_end)
                .take(MAPS_BEFORE_ARRAY + 1)
                .find(|&at| self.columns[at].folds.is_dense());
            let tails_from = match first_array {
                Some(array) => TailsFrom::Folds { maps: first_at, array },
                None if first_at < tail_end => TailsFrom::Index,
                None => TailsFrom::Nowhere,
            };
            if tails_from == TailsFrom::Index {
                self.build_tail_index();
            }
            let PanedWindows {
                agg,
                keys,
                held,
                columns,
                tails,
                head,
                next_key,
                emptied,
                ..
            } = self;
            let (maps, first_folds) = match tails_from {
                TailsFrom::Folds { maps, array } => (columns.range(maps..array), Some(&columns[array].folds)),
                _ => (columns.range(0..0), None),
            };
            let index = tails
                .as_ref()
                .and_then(|tails| tails.index.as_ref())
                .filter(|_| tails_from == TailsFrom::Index);
            let keys = keys.in_order();
            while room > 0 && *next_key < keys.len() {
                // A key's fold and head are somewhere in arrays of thousands: ask for those
                // of a key a few ahead while this one is worked on.
                if let Some(&(_, ahead)) = keys.get(*next_key + PREFETCH_AHEAD) {
                    head.cells.prefetch(ahead);
                    if let Some(folds) = first_folds {
                        folds.prefetch(ahead);
                    }
                }
                let (key, slot) = &keys[*next_key];
                let slot = *slot;
                *next_key += 1;
                if held[slot as usize] == 0 {
                    *emptied = true;
                    continue;
                }
                let tail = match (first_folds, index) {
                    (Some(folds), _) => maps
                        .clone()
                        .find_map(|column| column.folds.get(slot))
                        .or_else(|| folds.get(slot)),
                    (None, Some(index)) => {
                        let first = match index.changed(slot) {
                            // A pane new since the index was built: looked for.
                            true => columns
                                .range(first_at..tail_end)
                                .find(|column| column.cells.get(slot).is_some()),
                            false => index
                                .first_from(slot, span.start)
                                .filter(|&start| i128::from(start) < span.next_block)
                                .map(|start| &columns[column_from(columns, i128::from(start))]),
                        };
                        first.map(|column| column.folds.get(slot).expect("the block's folds are built"))
                    }
                    (None, None) => None,
                };
                let head = head.cells.get(slot);
                let acc = match (tail, head) {
                    (Some(tail), Some(head)) => {
                        let mut acc = tail.clone();
                        merge(agg, &mut acc, head.clone());
                        Cow::Owned(acc)
                    }
                    (Some(one), None) | (None, Some(one)) => Cow::Borrowed(one),
                    (None, None) => continue,
                };
                into.build(
                    span.time,
                    || agg.output(key, span.window, &acc, false),
                    |row| agg.output_into(key, span.window, &acc, false, row),
                );
                room -= 1;
            }
            if *next_key == keys.len() {
                self.firing.pop_front();
                self.next_key = 0;
                self.fired_since_ordered = self.fired_since_ordered.saturating_add(1);
                if std::mem::take(&mut self.emptied) {
                    self.drop_emptied_keys();
                }
                if self.firing.is_empty() {
                    self.expire();
                }
            }
        }
    }

    /// True when enough keys came since the slots were last put in key order, and
    /// enough windows fired since, that putting them in order again is worth it: it
    /// moves every accumulator of every pane (a window's panes' worth of firing), while
    /// each window fired after walks its arrays front to back.
    fn slots_worth_ordering(&self) -> bool {
        let panes = u64::try_from(self.grid.size / self.grid.pane).unwrap_or(u64::MAX);
        self.unordered > 0
            && self.unordered.saturating_mul(ORDER_SLOTS_AT) >= self.keys.len()
            && self.fired_since_ordered >= panes
    }

    /// Hands the keys slots in key order: firing visits keys in key order, and with
    /// slots in arrival order it fetched each key's fold and head from somewhere else in
    /// arrays of hundreds of KiB; in order, it reads them front to back. Slots of keys
    /// dropped are gone: the keys take `0..keys`.
    fn order_slots(&mut self) {
        let mut to = vec![u32::MAX; self.slots as usize];
        let keys = self.keys.in_order();
        for (rank, (_, slot)) in (0u32..).zip(keys.iter_mut()) {
            to[*slot as usize] = rank;
            *slot = rank;
        }
        let slots = u32::try_from(keys.len()).expect("a slot per key");
        for column in &mut self.columns {
            column.cells.renumber(&to, slots);
            column.folds.renumber(&to, slots);
        }
        self.head.cells.renumber(&to, slots);
        let mut held = vec![0; slots as usize];
        for (&at, &count) in to.iter().zip(&self.held) {
            if let Some(into) = held.get_mut(at as usize) {
                *into = count;
            }
        }
        self.held = held;
        self.slots = slots;
        self.free.clear();
        if let Some(tails) = &mut self.tails {
            tails.index = None;
        }
        self.unordered = 0;
        self.fired_since_ordered = 0;
    }

    /// Drops the keys left with no pane, handing their slots back.
    fn drop_emptied_keys(&mut self) {
        let (free, held, head) = (&mut self.free, &self.held, &mut self.head);
        self.keys.retain(|_, &mut slot| {
            let empty = held[slot as usize] == 0;
            if empty {
                free.push(slot);
                head.cells.remove(slot);
            }
            !empty
        });
    }

    /// Drops the panes whose every window is closed; a key left with none is dropped
    /// when firing next visits it.
    fn expire(&mut self) {
        while let Some(first) = self.columns.front() {
            if !self.closed(self.grid.last_end(first.start)) {
                break;
            }
            let gone = self.columns.pop_front().expect("looked at");
            for (slot, _) in gone.cells.iter() {
                self.held[slot as usize] -= 1;
            }
            self.entries -= gone.cells.len();
            self.spare_folds.extend(gone.folds.into_memory());
            if self.spare_cells.len() < SPARE_CELLS {
                self.spare_cells.extend(gone.cells.into_memory());
            }
        }
    }
}

/// Where firing finds each key's tail in a window.
#[derive(Clone, Copy, PartialEq)]
enum TailsFrom {
    /// In the folds of the panes `maps..array` (maps, holding the folds of the keys with
    /// a record there), else in those of `array`, the first pane of the tail whose folds
    /// are an array.
    Folds { maps: usize, array: usize },
    /// In the folds of the key's first pane in the tail, found in the block's index.
    Index,
    /// No key has a pane in the tail.
    Nowhere,
}

/// The index of the first of `columns` starting at or after `t`.
fn column_from<Acc>(columns: &VecDeque<Column<Acc>>, t: i128) -> usize {
    columns.partition_point(|column| i128::from(column.start) < t)
}

/// The most panes whose folds are maps firing looks in for a key's tail before the
/// first whose are an array (a pane before the others made by a record long late).
const MAPS_BEFORE_ARRAY: usize = 4;

/// Slots are put in key order again once a key in this many came since they last were.
const ORDER_SLOTS_AT: usize = 16;

/// Arrays of expired panes' cells kept for new panes' (a pane expires and one starts
/// each slide).
const SPARE_CELLS: usize = 2;

/// How many keys ahead firing asks for a key's state: enough to cover a fetch from
/// memory with the work on the keys between.
const PREFETCH_AHEAD: usize = 8;

/// Folds `other` into `acc`. The compiler uses panes only for aggregates whose merge
/// does not fail (a count past `i64::MAX` aside): on a failure, `acc` keeps what it had.
fn merge<A: Aggregation>(agg: &A, acc: &mut A::Acc, other: A::Acc) {
    let _ = agg.merge(acc, other);
}

/// `accs` merged front to back (`None` for none).
fn fold_forward<'a, A: Aggregation>(agg: &A, accs: impl Iterator<Item = &'a A::Acc>) -> Option<A::Acc>
where
    A::Acc: Clone + 'a,
{
    let mut merged: Option<A::Acc> = None;
    for acc in accs {
        match &mut merged {
            Some(merged) => merge(agg, merged, acc.clone()),
            None => merged = Some(acc.clone()),
        }
    }
    merged
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl<Acc> Column<Acc> {
    fn new(start: i64) -> Self {
        Column {
            start,
            cells: Cells::new(),
            folds: Cells::new(),
            min_epoch: u64::MAX,
        }
    }
}

impl<Acc> Head<Acc> {
    /// No head: the first window builds one.
    fn none() -> Self {
        Head {
            block: i128::MIN,
            through: i128::MIN,
            cells: Cells::new(),
        }
    }
}

/// The index is built again once this many slots in one were given a pane since.
const CHANGED_BEFORE_REBUILD: usize = 8;

impl TailIndex {
    /// True when the slot's panes in the block may not be those in the index: it was
    /// given one since, or handed out since.
    fn changed(&self, slot: u32) -> bool {
        self.changed.get(slot as usize).copied().unwrap_or(true)
    }

    /// Marks the slot as given a new pane in the block; false when so many are that the
    /// index is worth building again.
    fn mark_changed(&mut self, slot: u32) -> bool {
        if let Some(changed) = self.changed.get_mut(slot as usize).filter(|changed| !**changed) {
            *changed = true;
            self.changes += 1;
        }
        self.changes * CHANGED_BEFORE_REBUILD <= self.changed.len()
    }

    /// The start of the key's first pane in the block at or after `t`, for a slot not
    /// [`Self::changed`].
    fn first_from(&self, slot: u32, t: i128) -> Option<i64> {
        let slot = slot as usize;
        let (&from, &to) = (self.from.get(slot)?, self.from.get(slot + 1)?);
        let starts = &self.starts[from..to];
        let at = starts.partition_point(|&start| i128::from(start) < t);
        starts.get(at).copied()
    }
}

/// Without lateness (panes are never used with `max_keys`), a record is late when its
/// newest window has ended.
impl<A: Aggregation> super::SplitsByKey<A> for PanedWindows<A>
where
    A::Acc: Clone,
{
    fn clock(&self) -> Option<super::Clock> {
        (self.lateness == 0).then_some(super::Clock::Windows(super::Grid {
            size: self.grid.size,
            slide: self.grid.slide,
            offset: self.grid.offset,
        }))
    }

    /// Every part's keys, in key order. Moved to one watermark, every part's first
    /// window not fired is the one after the watermark (windows that held nothing count
    /// as fired); the latest is taken all the same.
    fn join_saved(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        let mut joined: Saved<A::Key, Vec<(i64, A::Acc)>> = Saved {
            wm: i64::MIN,
            unfired: i128::MIN,
            keys: Vec::new(),
        };
        for bytes in parts {
            let part: Saved<A::Key, Vec<(i64, A::Acc)>> = restore(bytes)?;
            joined.wm = joined.wm.max(part.wm);
            joined.unfired = joined.unfired.max(part.unfired);
            joined.keys.extend(part.keys);
        }
        joined.keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        to_bytes(&joined)
    }

    fn split_saved(
        saved: &[u8],
        parts: usize,
        part_of: &dyn Fn(&A::Key) -> usize,
    ) -> Result<(i64, Vec<Vec<u8>>), String> {
        let whole: Saved<A::Key, Vec<(i64, A::Acc)>> = restore(saved)?;
        let (wm, unfired) = (whole.wm, whole.unfired);
        let out = deal_saved(whole.keys, parts, part_of, |keys: Vec<_>| Saved { wm, unfired, keys })?;
        Ok((wm, out))
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
        // A record may change a pane that a fired window not yet built reads: build
        // them first (the driver hands results downstream before the next record, so
        // this is for callers that do not).
        if !self.firing.is_empty() {
            let mut out = std::mem::take(&mut self.out);
            self.build_fired(&mut out, usize::MAX);
            self.out = out;
        }
        let grid = self.grid;
        // Every window holding `t` ends after it (but at `i64::MAX`, where ends are
        // clamped): a record at or past the watermark (nearly every one) is in no closed
        // or fired window, and skips the arithmetic below.
        let behind = t < self.wm || t == i64::MAX;
        if behind && self.closed(grid.last_end(t)) {
            return Ok(Admit::Late { watermark: self.wm });
        }
        // The windows of the record that fired already and are kept (only a record
        // behind the watermark has any), and whether the key had a result in each.
        let mut fired = Vec::new();
        if behind {
            let size = i128::from(grid.size);
            let mut start = grid.start_from(i128::from(t) - size + 1);
            while start <= i128::from(t) && grid.window(start).end <= self.wm {
                if !self.closed(grid.window(start).end) {
                    let had = self
                        .keys
                        .get(key)
                        .is_some_and(|&slot| self.held_in(slot, start, start + size).next().is_some());
                    fired.push((start, had));
                }
                start += i128::from(grid.slide);
            }
        }
        self.add(key, self.pane_holding(t), rec, t)?;
        if !fired.is_empty() {
            let owned = key.to_owned();
            let slot = *self.keys.get(key).expect("the key was just added");
            let results: Vec<_> = fired
                .into_iter()
                .filter_map(|(start, had)| {
                    let span = grid.span(start);
                    let acc = self.result_of(slot, &span)?;
                    Some((self.agg.output(&owned, span.window, &acc, had), span.time))
                })
                .collect();
            self.out.extend(results);
        }
        Ok(Admit::Added)
    }

    /// The key's entry, then its accumulator in the record's pane (records come nearly
    /// in time order, so it is one of the newest; without a time, the newest).
    fn prefetch<Q>(&self, key: &Q, t: Option<i64>, reach: Reach)
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match reach {
            Reach::Entry => self.keys.prefetch(key),
            Reach::State => {
                let Some(&slot) = self.keys.get(key) else { return };
                let column = match t {
                    Some(t) => self.newest_holding(t, 4),
                    None => self.columns.back(),
                };
                if let Some(column) = column {
                    column.cells.prefetch(slot);
                }
            }
        }
    }

    fn next_due(&self) -> Option<i64> {
        let fires = self.next_window().map(|start| self.grid.window(start).end);
        let expires = self.columns.front().map(|first| {
            let end = self.grid.last_end(first.start);
            end.saturating_add(self.lateness)
        });
        fires.into_iter().chain(expires).min()
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        self.wm = self.wm.max(wm);
        let before = self.out.len() + self.firing.len();
        while let Some(start) = self
            .next_window()
            .filter(|&start| self.grid.window(start).end <= self.wm)
        {
            self.firing.push_back(start);
            self.unfired = start + i128::from(self.grid.slide);
        }
        // Windows that held nothing when the watermark passed their end have fired too:
        // a late record in one emits its result at once.
        let passed = self
            .grid
            .start_from(i128::from(self.wm) - i128::from(self.grid.size) + 1);
        self.unfired = self.unfired.max(passed);
        // The panes of fired windows are needed until their results are built.
        if self.firing.is_empty() {
            self.expire();
        }
        self.out.len() + self.firing.len() > before
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// The smallest epoch of a pane in a window that has not fired.
    fn pending_epoch(&self) -> Option<u64> {
        self.columns
            .iter()
            .rev()
            .take_while(|column| self.grid.last_end(column.start) > self.wm)
            .map(|column| column.min_epoch)
            .min()
    }

    fn emitted(&mut self) -> &mut VecDeque<(A::Output, i64)> {
        &mut self.out
    }

    fn has_emitted(&mut self) -> bool {
        !self.out.is_empty() || !self.firing.is_empty()
    }

    fn drain_emitted(&mut self, buf: &mut Results<A::Output>, max: usize) {
        let n = self.out.len().min(max.saturating_sub(buf.len()));
        buf.extend(self.out.drain(..n));
        self.build_fired(buf, max.saturating_sub(buf.len()));
    }

    fn entries(&self) -> usize {
        self.entries
    }

    /// Counted from what the state holds, not from how it is laid out, so a restored
    /// state measures what the saved one did: each key's entry, and each accumulator
    /// twice (a pane's, and the fold or head built from it).
    fn state_size(&self) -> StateSize {
        let per_key = entry_bytes::<A::Key, u32>() + size_of::<u32>();
        let per_acc = 2 * size_of::<(u32, A::Acc)>();
        let keys = self
            .keys
            .iter()
            .filter(|&&(_, slot)| self.held[slot as usize] > 0)
            .count();
        let accs: usize = self
            .columns
            .iter()
            .flat_map(|column| column.cells.iter())
            .map(|(_, acc)| per_acc + 2 * self.agg.acc_heap_bytes(acc))
            .sum();
        StateSize {
            entries: self.entries,
            bytes: keys * per_key + accs,
        }
    }

    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        if !self.firing.is_empty() {
            return Err(format!(
                "{} fired windows are still waiting to be handed downstream",
                self.firing.len()
            ));
        }
        if !self.out.is_empty() {
            return Err(results_waiting(self.out.len()));
        }
        let mut by_slot: Vec<SavedPanes<'_, A>> = (0..self.slots).map(|_| Vec::new()).collect();
        for column in &self.columns {
            for (slot, acc) in column.cells.iter() {
                by_slot[slot as usize].push((column.start, acc));
            }
        }
        let mut keys: Vec<(&A::Key, SavedPanes<'_, A>)> = self
            .keys
            .iter()
            .map(|(key, slot)| (key, std::mem::take(&mut by_slot[*slot as usize])))
            .filter(|(_, panes)| !panes.is_empty())
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
        let slots = u32::try_from(saved.keys.len()).map_err(|_| "more keys than a window holds")?;
        let mut keys = Vec::with_capacity(saved.keys.len());
        let mut by_pane: BTreeMap<i64, Vec<(u32, A::Acc)>> = BTreeMap::new();
        let mut entries = 0;
        let mut held = Vec::with_capacity(saved.keys.len());
        for (slot, (key, list)) in (0..slots).zip(saved.keys) {
            if list.is_empty() || list.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err("a key's panes are not in order".into());
            }
            if list.iter().any(|(pane, _)| *pane != self.grid.pane_of(*pane)) {
                return Err("a pane does not start on a pane boundary".into());
            }
            entries += list.len();
            held.push(u32::try_from(list.len()).map_err(|_| "a key holds more panes than a window has")?);
            for (start, acc) in list {
                by_pane.entry(start).or_default().push((slot, acc));
            }
            keys.push((key, slot));
        }
        // Firing the last window moves `unfired` a slide past it: up to a slide past
        // `i64::MAX` once the watermark reached the end.
        let (size, lowest) = (i128::from(self.grid.size), i128::from(i64::MIN));
        let highest = i128::from(i64::MAX) + i128::from(self.grid.slide);
        if !(lowest - 2 * size..=highest).contains(&saved.unfired)
            || self.grid.start_from(saved.unfired) != saved.unfired
        {
            return Err("the first window not fired is not a window's start".into());
        }
        self.keys = SortedKeys::from_entries(keys).ok_or("a key is saved twice")?;
        self.columns = by_pane
            .into_iter()
            .map(|(start, accs)| {
                let mut column = Column::new(start);
                for (slot, acc) in accs {
                    column.cells.insert(slot, acc, slots);
                }
                column.min_epoch = self.epoch;
                column
            })
            .collect();
        self.wm = saved.wm;
        self.unfired = saved.unfired;
        self.slots = slots;
        self.held = held;
        self.free.clear();
        self.tails = None;
        self.head = Head::none();
        self.entries = entries;
        self.out.clear();
        self.firing.clear();
        self.next_key = 0;
        self.emptied = false;
        self.unordered = 0;
        self.fired_since_ordered = u64::MAX;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
