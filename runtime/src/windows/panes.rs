//! Hopping windows over shared panes: each record updates one accumulator, and a window
//! combines those of its panes when it fires, so a record costs one update whatever the
//! number of windows it is in (a 1 h window sliding every 1 s holds each record in 3,600
//! windows).
//!
//! A *pane* is a slice of time `pane` ms long, where `pane` is the greatest common
//! divisor of the size and the slide, aligned as the windows are: every window boundary
//! is a pane boundary, so a window is exactly a run of panes. Each key keeps its panes'
//! accumulators in time order ([`KeyPanes`]).
//!
//! Merging a window's panes when it fires would cost a merge per pane per window (60 for
//! a minute sliding every second). Instead time is cut into *blocks* as long as a window,
//! from the offset on (every block boundary is a pane boundary), so a window is the tail
//! of one block and the head of the next, or one whole block. In the older block each
//! pane keeps a fold, the merge of it and every later pane of its block, built once back
//! to front; of the newer block each key keeps one running merge of its panes from the
//! block's start, extended pane by pane as windows slide ([`Head`]). A window's result is
//! its tail's first fold merged with the head: one merge, whatever its size, and firing
//! reads a key's panes only at the window's two ends. A record that changes a pane drops
//! the folds that include it.
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
//! panes ([`Saved`]); the folds are built again as windows fire.

use super::fixed::{clamp, Assigned};
use super::sorted_keys::SortedKeys;
use super::state::{entry_bytes, restore, results_waiting, save};
use super::{Admit, Aggregation, BuildRows, Keyed, KeyedOperator, Reach, Results, StateOptions, StateSize, Window};
use crate::errors::EvalError;
use crate::prefetch::prefetch;
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
    keys: SortedKeys<A::Key, KeyPanes<A::Acc>>,
    /// Every pane that holds a key: how many keys, and the oldest epoch among its records.
    panes: BTreeMap<i64, PaneUse>,
    /// Accumulators, one per key per pane.
    entries: usize,
    out: VecDeque<(A::Output, i64)>,
    /// Windows fired whose results are not all built, oldest first, and the index (in
    /// key order) of the next key of the first: results are built as they are drained,
    /// so a window of many keys never has all its results in memory at once.
    firing: VecDeque<i128>,
    next_key: usize,
    /// Panes starting at or before this have expired (every window holding them is
    /// closed and built): a key drops its own when firing next visits it, as firing
    /// visits every key (a pass of its own over the keys cost a fetch from memory per
    /// key per slide).
    expired_through: Option<i64>,
    /// A key was left with no pane in the window being built: keys are dropped once it is.
    emptied: bool,
    epoch: u64,
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

/// A key and its panes `(start, accumulator)`, borrowed for saving.
type SavedKey<'a, A> = (&'a <A as Keyed>::Key, Vec<(i64, &'a <A as Aggregation>::Acc)>);

struct PaneUse {
    keys: usize,
    min_epoch: u64,
}

/// One key's pane: its records' accumulator and, when built, its tail fold (see the
/// module's docs: in the block `KeyPanes::tails`).
struct Pane<Acc> {
    start: i64,
    acc: Acc,
    fold: Option<Acc>,
}

/// One key's panes, oldest first, and which of their folds are built.
struct KeyPanes<Acc> {
    panes: VecDeque<Pane<Acc>>,
    /// The block whose panes all hold their tail folds.
    tails: Option<i128>,
    /// The merge of a block's first panes (see the module's docs).
    head: Option<Head<Acc>>,
    /// The index of the last window's first pane: the next is a step or two away.
    near: usize,
    /// The start of the last pane, when there is one: a record for a newer pane (nearly
    /// every record, when a key has about one per pane) is pushed after it without
    /// reading the panes, which are elsewhere in memory.
    newest: i64,
}

/// The panes of block `block` that start before `through`, merged front to back (`None`
/// when there are none).
struct Head<Acc> {
    block: i128,
    through: i128,
    acc: Option<Acc>,
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
            panes: BTreeMap::new(),
            entries: 0,
            out: VecDeque::new(),
            firing: VecDeque::new(),
            next_key: 0,
            expired_through: None,
            emptied: false,
            epoch: 0,
        }
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
        let start = self
            .unfired
            .max(self.grid.start_from(pane - i128::from(self.grid.size) + 1));
        (start <= pane).then_some(start)
    }

    /// Builds up to `room` results of the windows fired and not yet built into `into`:
    /// each window's keys with a pane in it, in key order. Drops the panes that expired
    /// once every fired window is built.
    fn build_fired(&mut self, into: &mut impl BuildRows<A::Output>, mut room: usize) {
        while room > 0 {
            let Some(&start) = self.firing.front() else { break };
            let span = self.grid.span(start);
            let PanedWindows {
                agg,
                grid,
                keys,
                next_key,
                expired_through,
                emptied,
                ..
            } = self;
            let keys = keys.in_order();
            while room > 0 && *next_key < keys.len() {
                // Each key's panes are somewhere else in memory: ask for those of a key
                // a few ahead while this one's are worked on.
                if let Some((_, ahead)) = keys.get(*next_key + PREFETCH_AHEAD) {
                    ahead.prefetch();
                }
                let (key, panes) = &mut keys[*next_key];
                *next_key += 1;
                if let Some(cut) = *expired_through {
                    panes.drop_until(grid, cut);
                }
                if panes.panes.is_empty() {
                    *emptied = true;
                    continue;
                }
                let built = panes.result(agg, grid, &span, |acc| {
                    into.build(
                        span.time,
                        || agg.output(key, span.window, acc, false),
                        |row| agg.output_into(key, span.window, acc, false, row),
                    );
                });
                room -= usize::from(built.is_some());
            }
            if *next_key == keys.len() {
                self.firing.pop_front();
                self.next_key = 0;
                if std::mem::take(&mut self.emptied) {
                    self.keys.retain(|_, panes| !panes.panes.is_empty());
                }
                if self.firing.is_empty() {
                    self.expire();
                }
            }
        }
    }

    /// Drops the panes whose every window is closed: from the count of each pane's
    /// keys at once, from each key's panes when firing next visits it.
    fn expire(&mut self) {
        let Some(&first) = self.panes.keys().next() else { return };
        if !self.closed(self.grid.last_end(first)) {
            return;
        }
        let mut cut = first;
        for &pane in self.panes.keys() {
            if !self.closed(self.grid.last_end(pane)) {
                break;
            }
            cut = pane;
        }
        let gone = self.panes.range(..=cut).map(|(_, u)| u.keys).sum::<usize>();
        self.panes.retain(|&pane, _| pane > cut);
        self.entries -= gone;
        self.expired_through = Some(cut);
    }

    /// A key's panes that have not expired.
    fn live<'a>(&self, panes: &'a KeyPanes<A::Acc>) -> impl Iterator<Item = &'a Pane<A::Acc>> {
        let cut = self.expired_through;
        panes
            .panes
            .iter()
            .filter(move |pane| cut.is_none_or(|cut| pane.start > cut))
    }
}

/// How many keys ahead firing asks for a key's panes: enough to cover a fetch from
/// memory with the work on the keys between.
const PREFETCH_AHEAD: usize = 8;

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

impl<Acc: Clone> KeyPanes<Acc> {
    fn new() -> Self {
        KeyPanes {
            panes: VecDeque::new(),
            tails: None,
            head: None,
            near: 0,
            newest: i64::MIN,
        }
    }

    /// Adds a record to the pane starting at `pane`; true when that pane is new.
    /// On an `add` error nothing changed.
    fn add<A: Aggregation<Acc = Acc>>(
        &mut self,
        agg: &A,
        grid: &Grid,
        pane: i64,
        rec: &A::Input,
        t: i64,
    ) -> Result<bool, EvalError> {
        self.forget_folds_of(grid, pane);
        let mut at = self.panes.len();
        if at > 0 && pane <= self.newest {
            // Records come nearly in time order: look from the back.
            while at > 0 && self.panes[at - 1].start > pane {
                at -= 1;
            }
            if at > 0 && self.panes[at - 1].start == pane {
                agg.add(&mut self.panes[at - 1].acc, rec, t)?;
                return Ok(false);
            }
        }
        let mut acc = agg.new_acc();
        agg.add(&mut acc, rec, t)?;
        let pane_at = Pane {
            start: pane,
            acc,
            fold: None,
        };
        if at == self.panes.len() {
            // (`insert` at the end takes its general path: a fiftieth of the job.)
            self.newest = pane;
            self.panes.push_back(pane_at);
        } else {
            self.panes.insert(at, pane_at);
        }
        Ok(true)
    }

    /// Drops the folds that include the pane starting at `pane`, which changes.
    fn forget_folds_of(&mut self, grid: &Grid, pane: i64) {
        let (block, pane) = (grid.block(i128::from(pane)), i128::from(pane));
        if self.tails == Some(block) {
            self.tails = None;
        }
        if self
            .head
            .as_ref()
            .is_some_and(|head| head.block == block && pane < head.through)
        {
            self.head = None;
        }
    }

    /// Asks for the panes the next window will likely read (see [`prefetch`]): the
    /// first ones where the last window began (a window slides a pane at a time, and a
    /// pane spans cache lines), and the newest, which the head takes in.
    fn prefetch(&self) {
        let (first, len) = (self.near, self.panes.len());
        for at in [first, first + 1, len.wrapping_sub(2), len.wrapping_sub(1)] {
            if let Some(pane) = self.panes.get(at) {
                prefetch(std::ptr::from_ref(pane));
            }
        }
    }

    /// The index of the first pane starting at or after `t`.
    fn index(&self, t: i128) -> usize {
        self.panes.partition_point(|p| i128::from(p.start) < t)
    }

    /// [`Self::index`], looked for from the index `near`: windows slide a pane or a few
    /// at a time, so the index a window found last is a step or two away (a search
    /// would touch a cache line per step, and firing visits every key).
    fn seek(&self, t: i128, near: usize) -> usize {
        let starts_before = |i: usize| i128::from(self.panes[i].start) < t;
        let mut i = near.min(self.panes.len());
        while i < self.panes.len() && starts_before(i) {
            i += 1;
        }
        while i > 0 && !starts_before(i - 1) {
            i -= 1;
        }
        i
    }

    /// True when a pane starts in `[from, to)`.
    fn any_between(&self, from: i128, to: i128) -> bool {
        self.index(from) < self.index(to)
    }

    /// The key's result in the window `span`, built by `build` from its accumulator;
    /// `None` when it has no pane there. The accumulator is the tail fold of its first
    /// pane (those in the window's first block) merged with the head of the next block
    /// up to the window's end.
    fn result<A: Aggregation<Acc = Acc>, R>(
        &mut self,
        agg: &A,
        grid: &Grid,
        span: &Span,
        build: impl FnOnce(&Acc) -> R,
    ) -> Option<R> {
        let first = self.seek(span.start, self.near);
        self.near = first;
        let in_tail = self
            .panes
            .get(first)
            .is_some_and(|p| i128::from(p.start) < span.next_block);
        if in_tail {
            self.build_tails(agg, grid, span.block, first);
        }
        self.build_head(agg, span.block + 1, span.next_block, span.end);
        let head = self.head.as_ref().and_then(|head| head.acc.as_ref());
        let tail = in_tail.then(|| self.panes[first].fold.as_ref().expect("the fold was just built"));
        let acc = match (tail, head) {
            (Some(tail), Some(head)) => {
                let mut acc = tail.clone();
                merge(agg, &mut acc, head.clone());
                Cow::Owned(acc)
            }
            (Some(one), None) | (None, Some(one)) => Cow::Borrowed(one),
            (None, None) => return None,
        };
        Some(build(&acc))
    }

    /// Builds the tail folds of block `block`, back to front, unless built: its panes
    /// start at or before the index `near`.
    fn build_tails<A: Aggregation<Acc = Acc>>(&mut self, agg: &A, grid: &Grid, block: i128, near: usize) {
        if self.tails == Some(block) {
            return;
        }
        let first = self.seek(grid.block_start(block), near);
        let end = self.seek(grid.block_start(block + 1), near);
        for i in (first..end).rev() {
            let mut fold = self.panes[i].acc.clone();
            if let Some(later) = self.panes.get(i + 1).filter(|_| i + 1 < end) {
                merge(agg, &mut fold, later.fold.clone().expect("built before"));
            }
            self.panes[i].fold = Some(fold);
        }
        self.tails = Some(block);
    }

    /// Makes the head the merge of the panes of block `block` (starting at `from`) that
    /// start before `end`: the head kept from the last window, taking in the panes
    /// since, or built again from the block's start (a new block, a pane in it changed,
    /// or an older window, for a late record).
    fn build_head<A: Aggregation<Acc = Acc>>(&mut self, agg: &A, block: i128, from: i128, end: i128) {
        let mut head = match self.head.take() {
            Some(head) if head.block == block && head.through <= end => head,
            _ => Head {
                block,
                through: from,
                acc: None,
            },
        };
        // The panes in [through, end), found from the newest back.
        let mut upto = self.panes.len();
        while upto > 0 && i128::from(self.panes[upto - 1].start) >= end {
            upto -= 1;
        }
        let mut i = upto;
        while i > 0 && i128::from(self.panes[i - 1].start) >= head.through {
            i -= 1;
        }
        for pane in self.panes.range(i..upto) {
            match &mut head.acc {
                Some(acc) => merge(agg, acc, pane.acc.clone()),
                None => head.acc = Some(pane.acc.clone()),
            }
        }
        head.through = end;
        self.head = Some(head);
    }

    /// Drops the panes starting at or before `cut`.
    fn drop_until(&mut self, grid: &Grid, cut: i64) {
        while let Some(pane) = self.panes.front().filter(|pane| pane.start <= cut) {
            // The head holds the panes before it: those of its block are all needed.
            if self
                .head
                .as_ref()
                .is_some_and(|head| head.block == grid.block(i128::from(pane.start)))
            {
                self.head = None;
            }
            self.panes.pop_front();
            self.near = self.near.saturating_sub(1);
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
                        .is_some_and(|panes| panes.any_between(start, start + size));
                    fired.push((start, had));
                }
                start += i128::from(grid.slide);
            }
        }
        let pane = grid.pane_of(t);
        let new_pane = match self.keys.get_mut(key) {
            Some(panes) => panes.add(&self.agg, &grid, pane, rec, t)?,
            None => {
                let mut panes = KeyPanes::new();
                panes.add(&self.agg, &grid, pane, rec, t)?;
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
            let owned = key.to_owned();
            let panes = self.keys.get_mut(key).expect("the key was just added");
            for (start, had) in fired {
                let span = grid.span(start);
                let (agg, out) = (&self.agg, &mut self.out);
                panes.result(agg, &grid, &span, |acc| {
                    out.push_back((agg.output(&owned, span.window, acc, had), span.time));
                });
            }
        }
        Ok(Admit::Added)
    }

    /// The key's entry, then the pane its record most likely goes to or after: the
    /// newest (records come nearly in time order).
    fn prefetch<Q>(&self, key: &Q, reach: Reach)
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match reach {
            Reach::Entry => self.keys.prefetch(key),
            Reach::State => {
                if let Some(newest) = self.keys.get(key).and_then(|panes| panes.panes.back()) {
                    let at = std::ptr::from_ref(newest);
                    prefetch(at);
                    // A new pane goes in the slot after it.
                    prefetch(at.wrapping_add(1));
                }
            }
        }
    }

    fn next_due(&self) -> Option<i64> {
        let fires = self.next_window().map(|start| self.grid.window(start).end);
        let expires = self.panes.keys().next().map(|&first| {
            let end = self.grid.last_end(first);
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
        self.panes
            .iter()
            .rev()
            .take_while(|(&pane, _)| self.grid.last_end(pane) > self.wm)
            .map(|(_, usage)| usage.min_epoch)
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

    fn state_size(&self) -> StateSize {
        let per_key = entry_bytes::<A::Key, KeyPanes<A::Acc>>();
        let per_pane = size_of::<Pane<A::Acc>>();
        let heap = |pane: &Pane<A::Acc>| {
            self.agg.acc_heap_bytes(&pane.acc) + pane.fold.as_ref().map_or(0, |fold| self.agg.acc_heap_bytes(fold))
        };
        let bytes = self
            .keys
            .iter()
            .map(|(_, panes)| {
                let live: usize = self.live(panes).map(|pane| per_pane + heap(pane)).sum();
                let head = panes.head.as_ref().and_then(|head| head.acc.as_ref());
                // A key whose panes all expired is gone but for firing's next visit.
                match live {
                    0 => 0,
                    _ => per_key + live + head.map_or(0, |acc| self.agg.acc_heap_bytes(acc)),
                }
            })
            .sum();
        StateSize {
            entries: self.entries,
            bytes,
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
        let mut keys: Vec<SavedKey<'_, A>> = self
            .keys
            .iter()
            .map(|(key, panes)| {
                (
                    key,
                    self.live(panes).map(|pane| (pane.start, &pane.acc)).collect::<Vec<_>>(),
                )
            })
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
        let mut keys = Vec::with_capacity(saved.keys.len());
        let mut panes: BTreeMap<i64, PaneUse> = BTreeMap::new();
        let mut entries = 0;
        for (key, list) in saved.keys {
            if list.is_empty() || list.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err("a key's panes are not in order".into());
            }
            if list.iter().any(|(pane, _)| *pane != self.grid.pane_of(*pane)) {
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
            key_panes.newest = list.last().map_or(i64::MIN, |(start, _)| *start);
            key_panes.panes = list
                .into_iter()
                .map(|(start, acc)| Pane { start, acc, fold: None })
                .collect();
            keys.push((key, key_panes));
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
        self.wm = saved.wm;
        self.unfired = saved.unfired;
        self.keys = SortedKeys::from_entries(keys).ok_or("a key is saved twice")?;
        self.panes = panes;
        self.entries = entries;
        self.out.clear();
        self.firing.clear();
        self.next_key = 0;
        self.expired_through = None;
        self.emptied = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
