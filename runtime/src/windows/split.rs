//! [`SplitByKey`]: a window or a table whose keys are split by hash across the worker
//! threads, so that its state and its work are not all the pipeline thread's.
//!
//! Each *part* is a whole operator of the window's kind holding the keys whose hash
//! falls to it, and is only ever run by one job at a time on a worker; a key's state
//! never moves. The pipeline thread keeps what is the same for every key ([`Clock`]):
//!
//! - **Lateness** depends on a record's time and the watermark alone when there is no
//!   `allowed_lateness` and no `max_keys` (the only windows split; [`SplitsByKey`]): a
//!   record is late when the newest window holding it has ended. So a late record is
//!   answered at once, where the pipeline expects it ([`Admit::Late`]). A table is
//!   never late.
//! - **When results are due**: for windows, the smallest end of a window holding a
//!   record routed since the last firing, or one the parts held then; for a table, each
//!   period boundary the watermark crosses after the first (which places every part in
//!   time at once), and the end of input. Then every part takes the records routed to
//!   it, fires at that watermark and builds its rows on its worker; the pipeline thread
//!   merges the parts' rows into the order one operator emits them (by time, then key:
//!   rows carry their key, [`OrderedRows`]) as they are drained. Nothing else waits for
//!   the parts.
//! - **A table emitting each change** ([`Clock::Records`]) gives a row for every record:
//!   each part builds its records' rows when it takes them and sends them back with the
//!   batch, and the pipeline thread hands them on in the order the records were routed,
//!   as they come back. They come later than one table's would: the compiler lets such a
//!   table split only where nothing sees that (its rows go only to files of their own
//!   and cannot fail), and [`KeyedOperator::catch_up`] hands every row on before a step
//!   ends. A count window ([`Clock::Counts`]) is handed on the same way, its records
//!   giving a row or none.
//! - **Sessions** ([`Clock::Sessions`]) grow with their records, so the pipeline thread
//!   knows only a lower bound of when one is due. Each part fires as it moves to its
//!   records' watermarks, and its rows wait in it until `catch_up`, at a step's end,
//!   fires every part at the watermark and merges their rows by (end, key). A record
//!   more than the gap behind the watermark may still fall in its key's open session:
//!   its part, having taken what it was routed, judges it at once. The compiler splits
//!   sessions on the change table's terms.
//! - **The watermark** each record was routed at goes with it, and its part moves to it
//!   before taking the record: a part never holds a record in a window the pipeline
//!   thread already counts as closed.
//!
//! Records are copied into batches of [`BATCH`] per part, written over the batch's
//! records before (no allocation once they are warm); results are swapped, not moved,
//! into the buffer they are drained into, so rows travel between the threads instead
//! of being freed on one and allocated on another.
//!
//! A checkpoint is what one operator would have saved: every part takes its records
//! and moves to the watermark ([`KeyedOperator::settle`]), and their saved states are
//! joined ([`SplitsByKey::join_saved`]); a restore splits it again by the hash of this
//! run, so a checkpoint moves between thread counts.
//!
//! Only with worker threads to spare: with fewer than two (or `--split-windows off`)
//! the operator runs here, as it would unwrapped ([`SplitByKey::new`]).

use super::fixed::Assigned;
use super::state::floor_to;
use super::{Admit, Aggregation, KeyHasher, KeyedOperator, Reach, Results, StateSize};
use crate::driver::Context;
use crate::errors::EvalError;
use crate::workers::{recv_soon, Workers};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

/// Records routed to a part before they are handed to a worker: a wake-up per batch.
const BATCH: usize = 1024;

/// Batches waiting for a part's worker, at most, before the pipeline thread waits for
/// one to be done: bounds memory when the workers fall behind.
const QUEUED: usize = 8;

/// [`Clock::per_record`]: rows handed on at a time, about, while records are still being
/// taken (handed on a few at a time, rows would be encoded here; a chunk of this many
/// goes to a worker). Every part must have its share of them ready (or all of its
/// rows): the rows go in the records' order, which takes from every part.
const HAND_ON: usize = BATCH;

/// [`Clock::per_record`]: how often, in records, the pipeline thread looks for batches
/// taken (a look costs a channel's receive; a batch is 1,024 records).
const LOOK_EVERY: u32 = 64;

/// Results a part builds at a time: while the pipeline thread merges one chunk, the
/// part builds the next. (Building every result of a firing at once held all of them:
/// at the end of input a minute of hopping windows over 10,000 keys is 600,000 rows.)
const ROWS: usize = 4096;

/// The windows of a tumbling or hopping window: `size` ms every `slide` ms, from
/// `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub size: i64,
    pub slide: i64,
    pub offset: i64,
}

impl Grid {
    fn windows(&self, t: i64) -> Assigned {
        Assigned::new(t, self.size, self.slide, self.offset)
    }
}

/// What decides, from time alone, whether a record is late and when results are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Tumbling or hopping windows: a record is late when the newest window holding it
    /// has ended; a window is due at its end.
    Windows(Grid),
    /// A table emitting its changed keys each time the watermark crosses a multiple of
    /// `every` ms: never late; the first watermark places it in time, and each boundary
    /// after it (and the end of input) is due.
    Boundaries { every: i64 },
    /// A table emitting each change: never late, never due; every record it takes gives
    /// exactly one row, built by the record's part and handed on in the order the
    /// records were routed.
    Records,
    /// Session windows (`gap` ms), whose sessions grow with their records: a record is
    /// not late when its own session would end after the watermark (`t + gap > wm`); one
    /// whose would not is late unless it falls in a session of its key still open, which
    /// its part decides, at once. The earliest end of a session is known only as a
    /// lower bound, so parts fire as they move to each record's watermark, and their
    /// rows wait in them until [`KeyedOperator::catch_up`] fires every part at the
    /// watermark and merges them.
    Sessions { gap: i64 },
    /// Count windows: never late, never due; a record gives a row when it completes
    /// its key's window, built by its part and handed on in the order the records were
    /// routed, as a [`Clock::Records`] table's are. At the close (not at the end of
    /// time: an upstream window's close may still add to them) every part's partial
    /// windows follow, merged by key.
    Counts,
}

impl Clock {
    /// Its rows come from records, not from firings: each part sends its records'
    /// rows back with the batch.
    fn per_record(self) -> bool {
        matches!(self, Clock::Records | Clock::Counts)
    }
}

/// An operator whose keys can be split: records are judged late, and results known
/// due, from time alone.
pub trait SplitsByKey<A: Aggregation>: KeyedOperator<A> {
    /// What decides lateness and firings when nothing but a record's time and the
    /// watermark does (no `allowed_lateness`, no `max_keys`, no table `ttl`); `None`
    /// otherwise.
    fn clock(&self) -> Option<Clock>;
    /// What one operator holding the keys of every part would save, from what the parts
    /// saved (their keys apart, each moved to the same watermark): a checkpoint is the
    /// same whatever the number of threads.
    fn join_saved(parts: &[Vec<u8>]) -> Result<Vec<u8>, String>;
    /// One operator's saved state split into `parts`, each key's entries to
    /// `part_of(key)`; and the watermark it was saved at.
    fn split_saved(
        saved: &[u8],
        parts: usize,
        part_of: &dyn Fn(&A::Key) -> usize,
    ) -> Result<(i64, Vec<Vec<u8>>), String>;
}

/// Results that carry their key: two rows of one window compare as their keys do.
/// Generated for every window the compiler lets split.
pub trait OrderedRows: Aggregation {
    fn cmp_keys(&self, a: &Self::Output, b: &Self::Output) -> Ordering;
}

/// What a split window's types allow: sent between threads, records copied into a
/// part's batch, rows swapped out for empty ones.
pub trait SplitTypes: OrderedRows<Key: Send, Input: Clone + Send, Output: Default + Send> + Send + 'static {}

impl<A> SplitTypes for A where A: OrderedRows<Key: Send, Input: Clone + Send, Output: Default + Send> + Send + 'static {}

/// A window run here, or split by key hash across the workers (see the module's docs).
pub struct SplitByKey<A: Aggregation, O>(How<A, O>);

enum How<A: Aggregation, O> {
    Here(O),
    Split(Box<Parts<A, O>>),
}

impl<A, O> SplitByKey<A, O>
where
    A: SplitTypes,
    O: SplitsByKey<A> + Send + 'static,
{
    /// The window or table `name`: `agg` compares results; `build` makes each part (or
    /// the one operator). Split in as many parts as there are workers, when there are
    /// two or more, `--split-windows` is not off, and time alone decides lateness and
    /// firings ([`SplitsByKey::clock`]); the log says so.
    pub fn new(name: &str, ctx: &Context, agg: A, build: impl Fn() -> O) -> Self {
        let op = build();
        let parts = ctx.workers.as_ref().filter(|w| w.count() >= 2 && ctx.split_windows);
        match (parts, op.clock()) {
            (Some(workers), Some(clock)) => {
                let message = match clock {
                    Clock::Windows(_) | Clock::Sessions { .. } | Clock::Counts => {
                        "window keys split by hash across the worker threads"
                    }
                    Clock::Boundaries { .. } | Clock::Records => "table keys split by hash across the worker threads",
                };
                crate::log::info(
                    message,
                    &[("component", name.into()), ("parts", workers.count().into())],
                );
                let late_reason = op.late_reason();
                let parts = (0..workers.count()).map(|_| Part::new(build(), clock)).collect();
                SplitByKey(How::Split(Box::new(Parts::new(
                    agg,
                    clock,
                    late_reason,
                    parts,
                    workers.clone(),
                ))))
            }
            _ => SplitByKey(How::Here(op)),
        }
    }

    /// How many parts the keys are split in (1: run here).
    pub fn parts(&self) -> usize {
        match &self.0 {
            How::Here(_) => 1,
            How::Split(parts) => parts.parts.len(),
        }
    }
}

/// One record routed to a part: the watermark it was routed at, and the epoch of its
/// batch.
struct Item<A: Aggregation> {
    key: A::Key,
    rec: A::Input,
    t: i64,
    wm: i64,
    epoch: u64,
}

/// A batch of records for one part, and ([`Clock::per_record`]) the rows they gave, in
/// order, and where each record's end (the number of rows up to it); cleared batches
/// keep their records and rows to be written over.
struct Items<A: Aggregation> {
    items: Vec<Item<A>>,
    len: usize,
    rows: Results<A::Output>,
    ends: Vec<usize>,
}

impl<A: Aggregation> Default for Items<A> {
    fn default() -> Self {
        Items {
            items: Vec::new(),
            len: 0,
            rows: Results::default(),
            ends: Vec::new(),
        }
    }
}

impl<A: Aggregation> Items<A> {
    fn as_slice(&self) -> &[Item<A>] {
        &self.items[..self.len]
    }

    fn push<Q>(&mut self, key: &Q, rec: &A::Input, t: i64, wm: i64, epoch: u64)
    where
        Q: ?Sized + ToOwned<Owned = A::Key>,
        A::Input: Clone,
    {
        match self.items.get_mut(self.len) {
            Some(kept) => {
                key.clone_into(&mut kept.key);
                kept.rec.clone_from(rec);
                (kept.t, kept.wm, kept.epoch) = (t, wm, epoch);
            }
            None => self.items.push(Item {
                key: key.to_owned(),
                rec: rec.clone(),
                t,
                wm,
                epoch,
            }),
        }
        self.len += 1;
    }
}

/// What a worker does to a part.
enum Task<A: Aggregation> {
    /// Take these records.
    Take(Items<A>),
    /// Fire at this watermark and build the first results.
    Fire(i64),
    /// Build the next results.
    Build,
    /// Move to this watermark, at which nothing is due (before a checkpoint).
    Move(i64),
}

/// A part's task done: the records' batch back, for reuse or ([`Clock::per_record`]) with
/// their rows.
struct Done<A: Aggregation> {
    part: usize,
    items: Option<Items<A>>,
    /// The part's live entries after the task.
    entries: usize,
    /// The task panicked (the part's state may hold part of it).
    panicked: bool,
}

/// A part's operator and what the pipeline thread reads of it after a task.
struct Cell<A: Aggregation, O> {
    op: O,
    /// The watermark the operator was last moved to, and the epoch it was last told.
    wm: i64,
    epoch: u64,
    /// Results of the last firing, built on the worker, and whether more are waiting.
    rows: Results<A::Output>,
    more: bool,
    entries: usize,
    next_due: Option<i64>,
    /// [`Clock::per_record`]: a batch's rows are its records' alone. [`Clock::Sessions`]:
    /// moving to a record's watermark may fire sessions.
    clock: Clock,
}

impl<A: Aggregation, O: KeyedOperator<A>> Cell<A, O> {
    fn run(&mut self, task: &mut Task<A>) {
        match task {
            Task::Take(items) => {
                items.rows.clear();
                items.ends.clear();
                let per_record = self.clock.per_record();
                if per_record && self.op.has_emitted() {
                    // Rows of a batch whose task panicked part way (logged as lost):
                    // dropped, or this batch's rows would be taken for theirs.
                    self.op.drain_emitted(&mut items.rows, usize::MAX);
                    items.rows.clear();
                }
                for item in &items.items[..items.len] {
                    if item.wm > self.wm {
                        self.wm = item.wm;
                        // Nothing is due at a watermark the pipeline thread did not fire
                        // at: this only moves the operator's notion of what is closed.
                        // A session may be: its row waits in the operator.
                        let fired = self.op.on_watermark(item.wm);
                        debug_assert!(
                            !fired || matches!(self.clock, Clock::Sessions { .. }),
                            "a part fired at a watermark nothing was due at"
                        );
                    }
                    if item.epoch != self.epoch {
                        self.epoch = item.epoch;
                        self.op.set_epoch(item.epoch);
                    }
                    // Judged on the pipeline thread: not late, and the aggregation cannot
                    // fail (the compiler splits no window whose `add` can).
                    let taken = self.op.process(item.key.borrow(), &item.rec, item.t);
                    debug_assert_eq!(taken, Ok(Admit::Added));
                    if per_record {
                        items.ends.push(self.op.emitted().len());
                    }
                }
                // A table emitting each change, a count window: the records' rows go
                // back with them.
                if per_record && self.op.has_emitted() {
                    self.op.drain_emitted(&mut items.rows, usize::MAX);
                }
            }
            Task::Fire(wm) => {
                let wm = *wm;
                self.wm = self.wm.max(wm);
                if wm == i64::MAX {
                    self.op.on_close();
                } else {
                    self.op.on_watermark(wm);
                }
                self.next_due = self.op.next_due();
                self.build();
            }
            Task::Build => self.build(),
            Task::Move(wm) => {
                let wm = *wm;
                self.wm = self.wm.max(wm);
                // A window this fires would wait in the operator, and saving says so.
                self.op.on_watermark(wm);
            }
        }
        self.entries = self.op.entries();
    }

    fn build(&mut self) {
        self.rows.clear();
        self.op.drain_emitted(&mut self.rows, ROWS);
        self.more = self.op.has_emitted();
    }
}

/// The pipeline thread's handle on one part.
struct Part<A: Aggregation, O> {
    /// Records routed here and not handed over yet.
    pending: Items<A>,
    /// Batches handed over, waiting for the one in flight.
    queued: VecDeque<Items<A>>,
    /// A task is in flight: the next waits for it (a part's tasks run in order).
    busy: bool,
    /// The epoch of the first record of the batch in flight.
    in_flight: Option<u64>,
    /// The part's live entries after its last task.
    entries: usize,
    cell: Arc<Mutex<Cell<A, O>>>,
    /// The rows of the last firing, taken from the cell, and the next to merge; more
    /// are being built.
    rows: Results<A::Output>,
    next: usize,
    more: bool,
    /// [`Clock::per_record`]: batches taken, with their rows, oldest first, and how
    /// many records and rows of the oldest were handed on; records in them whose rows
    /// were not handed on, and records routed here whose rows were not.
    ready: VecDeque<Items<A>>,
    handed: usize,
    handed_rows: usize,
    ready_records: usize,
    routed: usize,
}

impl<A: Aggregation, O> Part<A, O> {
    fn new(op: O, clock: Clock) -> Self {
        Part {
            pending: Items::default(),
            queued: VecDeque::new(),
            busy: false,
            in_flight: None,
            entries: 0,
            cell: Arc::new(Mutex::new(Cell {
                op,
                wm: i64::MIN,
                epoch: 0,
                rows: Results::default(),
                more: false,
                entries: 0,
                next_due: None,
                clock,
            })),
            rows: Results::default(),
            next: 0,
            more: false,
            ready: VecDeque::new(),
            handed: 0,
            handed_rows: 0,
            ready_records: 0,
            routed: 0,
        }
    }

    /// The oldest epoch of a record routed here that the part has not taken yet.
    fn unapplied_epoch(&self) -> Option<u64> {
        let queued = self.queued.iter().filter_map(|items| items.as_slice().first());
        let pending = self.pending.as_slice().first();
        let waiting = queued.chain(pending).map(|item| item.epoch);
        self.in_flight.into_iter().chain(waiting).min()
    }

    /// The next row to merge.
    fn head(&self) -> Option<&(A::Output, i64)> {
        self.rows.as_slice().get(self.next)
    }
}

struct Parts<A: Aggregation, O> {
    agg: A,
    clock: Clock,
    wm: i64,
    epoch: u64,
    /// Windows: the end of the first window holding a record, or `None` when none holds
    /// one. A table: the next boundary, `None` before the first watermark.
    due: Option<i64>,
    /// At the end of input, the time every row of a table's firing takes: the latest
    /// of the parts' (one table stamps its last results with its latest change, which
    /// each part knows of its own keys only).
    stamp: Option<i64>,
    /// [`Clock::per_record`]: the part and epoch of every record routed whose row was not
    /// handed on yet, in the order they were routed; records since the last look for
    /// batches taken.
    order: VecDeque<(usize, u64)>,
    unlooked: u32,
    hasher: KeyHasher,
    parts: Vec<Part<A, O>>,
    workers: Workers,
    done_tx: mpsc::Sender<Done<A>>,
    done: mpsc::Receiver<Done<A>>,
    spare: Vec<Items<A>>,
    late_reason: &'static str,
    /// Never filled: results are merged from the parts as they are drained.
    none: VecDeque<(A::Output, i64)>,
    /// A task panicked: said once.
    panicked: bool,
}

impl<A, O> Parts<A, O>
where
    A: SplitTypes,
    O: KeyedOperator<A> + Send + 'static,
{
    fn new(agg: A, clock: Clock, late_reason: &'static str, parts: Vec<Part<A, O>>, workers: Workers) -> Self {
        let (done_tx, done) = mpsc::channel();
        Parts {
            agg,
            clock,
            wm: i64::MIN,
            epoch: 0,
            due: None,
            stamp: None,
            order: VecDeque::new(),
            unlooked: 0,
            hasher: KeyHasher::default(),
            parts,
            workers,
            done_tx,
            done,
            spare: Vec::new(),
            late_reason,
            none: VecDeque::new(),
            panicked: false,
        }
    }

    #[inline]
    fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        let wm = self.wm;
        match self.clock {
            Clock::Windows(grid) => {
                let mut windows = grid.windows(t);
                if windows.last_end() <= wm {
                    return Ok(Admit::Late { watermark: wm });
                }
                // The first window of the record still open: not every hopping window
                // holding a record behind the watermark is.
                if let Some((end, _)) = windows.find(|&(end, _)| end > wm) {
                    self.due = earliest(self.due, Some(end));
                }
            }
            Clock::Sessions { gap } => {
                let end = t.saturating_add(gap);
                if end <= wm {
                    return self.judge_in_part(key, rec, t);
                }
                self.due = earliest(self.due, Some(end));
            }
            Clock::Boundaries { .. } | Clock::Records | Clock::Counts => {}
        }
        let at = self.part_of(key);
        let part = &mut self.parts[at];
        part.pending.push(key, rec, t, wm, self.epoch);
        if part.pending.len >= BATCH {
            self.hand_over(at);
        }
        if self.clock.per_record() {
            self.parts[at].routed += 1;
            self.order.push_back((at, self.epoch));
            if self.order.len() >= self.most_waiting() {
                self.unblock();
            }
        }
        Ok(Admit::Added)
    }

    /// [`Clock::Sessions`]: a record whose own session would have ended is late unless
    /// a session of its key still open holds its time. Its part takes every record
    /// routed to it and moves to the watermark (what it fires waits in it, as it would
    /// have on the worker), then adds the record, or finds it late, here and now.
    /// (Rare: a record more than the gap behind the watermark.)
    #[cold]
    fn judge_in_part<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        let at = self.part_of(key);
        if self.parts[at].pending.len > 0 {
            self.hand_over(at);
        }
        while self.parts[at].busy || !self.parts[at].queued.is_empty() {
            self.wait_one();
        }
        let part = &mut self.parts[at];
        let mut cell = part.cell.lock().unwrap_or_else(PoisonError::into_inner);
        if self.wm > cell.wm {
            cell.wm = self.wm;
            cell.op.on_watermark(self.wm);
        }
        if self.epoch != cell.epoch {
            cell.epoch = self.epoch;
            cell.op.set_epoch(self.epoch);
        }
        let admit = cell.op.process(key, rec, t);
        cell.entries = cell.op.entries();
        part.entries = cell.entries;
        admit
    }

    /// [`Clock::per_record`]: records whose rows were not handed on, at most, before the
    /// oldest's part is hurried ([`Self::unblock`]) and rows are handed on however few
    /// are ready.
    fn most_waiting(&self) -> usize {
        self.parts.len() * BATCH * (QUEUED + 2)
    }

    /// [`Clock::per_record`], when many rows wait for the oldest record's (its part has
    /// few keys routed to it): hands that part's records over and waits for its row,
    /// so that the rows held stay bounded.
    fn unblock(&mut self) {
        let Some(&(at, _)) = self.order.front() else { return };
        if self.parts[at].ready.is_empty() && self.parts[at].pending.len > 0 {
            self.hand_over(at);
        }
        while self.parts[at].ready.is_empty() {
            self.wait_one();
        }
    }

    /// Queues part `at`'s pending records for its worker.
    fn hand_over(&mut self, at: usize) {
        self.take_done();
        let mut items = self.spare.pop().unwrap_or_default();
        items.len = 0;
        std::mem::swap(&mut items, &mut self.parts[at].pending);
        self.parts[at].queued.push_back(items);
        self.start(at);
        while self.parts[at].queued.len() > QUEUED {
            self.wait_one();
        }
    }

    /// Starts part `at`'s next queued batch unless a task of it is in flight.
    fn start(&mut self, at: usize) {
        let part = &mut self.parts[at];
        if part.busy {
            return;
        }
        if let Some(items) = part.queued.pop_front() {
            self.send(at, Task::Take(items));
        }
    }

    fn send(&mut self, at: usize, mut task: Task<A>) {
        let part = &mut self.parts[at];
        part.busy = true;
        if let Task::Take(items) = &task {
            part.in_flight = items.as_slice().first().map(|item| item.epoch);
        }
        let cell = Arc::clone(&part.cell);
        let done = self.done_tx.clone();
        self.workers.run(Box::new(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut cell = cell.lock().unwrap_or_else(PoisonError::into_inner);
                cell.run(&mut task);
                cell.entries
            }));
            let items = match task {
                Task::Take(items) => Some(items),
                Task::Fire(_) | Task::Build | Task::Move(_) => None,
            };
            let _ = done.send(Done {
                part: at,
                items,
                entries: *ran.as_ref().unwrap_or(&0),
                panicked: ran.is_err(),
            });
        }));
    }

    fn take_done(&mut self) {
        while let Ok(done) = self.done.try_recv() {
            self.finished(done);
        }
    }

    /// Waits for a task to be done. (This keeps a sender of the channel, so it never
    /// disconnects; a job is never dropped while the workers run, which is for as long
    /// as the process.)
    fn wait_one(&mut self) {
        if let Ok(done) = recv_soon(&self.done) {
            self.finished(done);
        }
    }

    fn finished(&mut self, done: Done<A>) {
        if done.panicked && !self.panicked {
            self.panicked = true;
            crate::log::error(
                "a window's part failed on a worker thread; its results may be missing",
                &[],
            );
        }
        let part = &mut self.parts[done.part];
        if let Some(items) = done.items {
            match self.clock.per_record() {
                true if items.len > 0 => {
                    debug_assert!(
                        done.panicked
                            || (items.ends.len() == items.len && items.ends.last() == Some(&items.rows.len())),
                        "every record's rows"
                    );
                    part.ready_records += items.len;
                    part.ready.push_back(items);
                }
                _ => self.spare.push(items),
            }
        }
        (part.busy, part.in_flight, part.entries) = (false, None, done.entries);
        self.start(done.part);
    }

    /// Hands every pending record over and waits until every part has taken its own.
    fn settle(&mut self) {
        for at in 0..self.parts.len() {
            if self.parts[at].pending.len > 0 {
                self.hand_over(at);
            }
        }
        while self.parts.iter().any(|p| p.busy || !p.queued.is_empty()) {
            self.wait_one();
        }
    }

    /// The part a key's records go to: its hash scaled to the number of parts (a
    /// multiplication, where `%` divides).
    fn part_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        ((u128::from(self.hasher.hash_one(key)) * self.parts.len() as u128) >> 64) as usize
    }

    /// Before a checkpoint: every part takes its records and moves to the watermark, so
    /// that their states join into one operator's.
    fn settle_at_watermark(&mut self) {
        self.settle();
        let wm = self.wm;
        if wm == i64::MIN {
            // No watermark yet: one operator is never told `i64::MIN` (a table would take
            // it as its first and place itself at the start of time).
            return;
        }
        for at in 0..self.parts.len() {
            self.send(at, Task::Move(wm));
        }
        while self.parts.iter().any(|p| p.busy) {
            self.wait_one();
        }
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), String>
    where
        O: SplitsByKey<A>,
    {
        if !self.order.is_empty() {
            return Err(format!("{} rows not handed on yet", self.order.len()));
        }
        let mut saved = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let mut bytes = Vec::new();
            part.cell
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .op
                .save_state(&mut bytes)?;
            saved.push(bytes);
        }
        out.extend_from_slice(&O::join_saved(&saved)?);
        Ok(())
    }

    /// Each part takes its keys' share of one operator's saved state.
    fn restore(&mut self, saved: &[u8]) -> Result<(), String>
    where
        O: SplitsByKey<A>,
    {
        self.settle();
        let (wm, parts) = O::split_saved(saved, self.parts.len(), &|key| self.part_of(key))?;
        self.due = None;
        for (part, saved) in self.parts.iter_mut().zip(parts) {
            let mut cell = part.cell.lock().unwrap_or_else(PoisonError::into_inner);
            cell.op.restore_state(&saved)?;
            cell.wm = wm;
            cell.entries = cell.op.entries();
            part.entries = cell.entries;
            self.due = earliest(self.due, cell.op.next_due());
        }
        self.wm = wm;
        Ok(())
    }

    /// Moves to watermark `wm`; fires when results are due. True when there are results.
    fn advance(&mut self, wm: i64) -> bool {
        self.wm = self.wm.max(wm);
        let wm = self.wm;
        let fire = match (self.clock, self.due) {
            // A count window's partial windows wait for the close, as one operator's do
            // (a watermark fires none, even the end of input's).
            (Clock::Records | Clock::Counts, _) => {
                if wm == i64::MAX {
                    self.settle();
                }
                return self.has_emitted();
            }
            // Sessions fire at a step's end (`catch_up`), and all at the end of input.
            (Clock::Sessions { .. }, due) => wm == i64::MAX && due.is_some(),
            (_, Some(due)) => due <= wm,
            (Clock::Windows(_), None) => false,
            // The end of input emits a table's changed keys, whether or not it was placed.
            (Clock::Boundaries { .. }, None) if wm == i64::MAX => true,
            (Clock::Boundaries { every }, None) => {
                if wm > i64::MIN {
                    // The first watermark crosses nothing; it places the table in time,
                    // every part at once (a part placed by a later one would miss a
                    // boundary).
                    self.settle_at_watermark();
                    self.due = Some(floor_to(wm, every).saturating_add(every));
                }
                false
            }
        };
        fire && self.fire()
    }

    /// End of input or shutdown: everything still open fires. A count window's parts
    /// close (their partial windows, after every record's rows); the others fire at
    /// the end of time.
    fn close(&mut self) -> bool {
        match self.clock {
            Clock::Counts => {
                self.wm = i64::MAX;
                self.fire()
            }
            _ => self.advance(i64::MAX),
        }
    }

    /// Every part fires at the watermark and builds its rows (all at once, on their
    /// workers); the rows are merged as they are drained. (The rows of the last
    /// firing were all drained: its parts' rows are written over.)
    fn fire(&mut self) -> bool {
        debug_assert!(
            !self.parts.iter().any(|p| p.more || p.head().is_some()),
            "the merged rows of a firing not all handed on before the next"
        );
        self.settle();
        let wm = self.wm;
        for at in 0..self.parts.len() {
            self.send(at, Task::Fire(wm));
        }
        while self.parts.iter().any(|p| p.busy) {
            self.wait_one();
        }
        self.due = None;
        for at in 0..self.parts.len() {
            let next_due = self.parts[at]
                .cell
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next_due;
            self.due = earliest(self.due, next_due);
            self.take_rows(at);
            self.refill(at);
        }
        self.stamp = match self.clock {
            Clock::Boundaries { .. } if wm == i64::MAX => {
                self.parts.iter().filter_map(|p| p.head().map(|row| row.1)).max()
            }
            _ => None,
        };
        self.has_emitted()
    }

    /// While part `at` has merged its chunk and has more, takes the next. (A chunk may
    /// come back empty: a fired window with no key left.)
    fn refill(&mut self, at: usize) {
        while self.parts[at].more && self.parts[at].head().is_none() {
            self.take_rows(at);
        }
    }

    /// Takes the rows part `at` built (once it has), and has it build the next if more
    /// are waiting. The rows merged last go back to be written over.
    fn take_rows(&mut self, at: usize) {
        while self.parts[at].busy {
            self.wait_one();
        }
        let part = &mut self.parts[at];
        let more = {
            let mut cell = part.cell.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut part.rows, &mut cell.rows);
            cell.more
        };
        (part.next, part.more) = (0, more);
        if more {
            self.send(at, Task::Build);
        }
    }

    fn has_emitted(&mut self) -> bool {
        let fired = |parts: &[Part<A, O>]| parts.iter().any(|p| p.more || p.head().is_some());
        match self.clock.per_record() {
            // Rows of a firing (the end of input's partial count windows) come after
            // every record's.
            true => self.records_ready() || (self.order.is_empty() && fired(&self.parts)),
            false => fired(&self.parts),
        }
    }

    /// [`Clock::per_record`]: the next record's rows are ready, and every part has
    /// its share of a chunk ready (or all it was routed), or many records wait.
    fn records_ready(&mut self) -> bool {
        self.unlooked += 1;
        if self.unlooked >= LOOK_EVERY {
            self.unlooked = 0;
            self.take_done();
        }
        let next_ready = self
            .order
            .front()
            .is_some_and(|&(at, _)| !self.parts[at].ready.is_empty());
        let share = HAND_ON / self.parts.len();
        next_ready
            && (self.order.len() >= self.most_waiting()
                || self.parts.iter().all(|p| p.ready_records >= p.routed.min(share)))
    }

    /// [`Clock::per_record`]: every record routed is taken by its part, so every row
    /// is ready. [`Clock::Sessions`]: when a session may be due, every part takes its
    /// records and fires at the watermark. True when rows are waiting.
    fn catch_up(&mut self) -> bool {
        match self.clock {
            Clock::Records | Clock::Counts if !self.order.is_empty() => {
                self.settle();
                self.has_emitted()
            }
            Clock::Sessions { .. } if self.due.is_some_and(|due| due <= self.wm) => self.fire(),
            _ => false,
        }
    }

    /// [`Clock::per_record`]: moves about `max` rows into `buf` in the order their
    /// records were routed, while the next record's are ready.
    fn hand_on_in_order(&mut self, buf: &mut Results<A::Output>, max: usize) {
        while buf.len() < max {
            let Some(&(at, _)) = self.order.front() else { return };
            let part = &mut self.parts[at];
            let Some(items) = part.ready.front_mut() else { return };
            // Fewer ends than records only when the part's task panicked (logged as
            // lost): each record past them stands for no row.
            let end = items
                .ends
                .get(part.handed)
                .map_or(part.handed_rows, |&end| end.min(items.rows.len()));
            while part.handed_rows < end {
                buf.push_swapped(items.rows.row_mut(part.handed_rows));
                part.handed_rows += 1;
            }
            part.handed += 1;
            part.ready_records -= 1;
            part.routed -= 1;
            self.order.pop_front();
            if part.handed >= items.len {
                (part.handed, part.handed_rows) = (0, 0);
                if let Some(items) = part.ready.pop_front() {
                    self.spare.push(items);
                }
            }
        }
    }

    /// Moves up to `max` rows into `buf` in the order one operator would have emitted
    /// them: by time (a window's end, a table's boundary), then key; a record's rows in
    /// the order the records came, and (count windows) the end of input's partial
    /// windows after them, by key.
    fn drain_emitted(&mut self, buf: &mut Results<A::Output>, max: usize) {
        if self.clock.per_record() {
            self.hand_on_in_order(buf, max);
            if !self.order.is_empty() {
                return;
            }
        }
        let stamp = self.stamp;
        let by_key_alone = self.clock == Clock::Counts;
        let time = |row: &(A::Output, i64)| stamp.unwrap_or(row.1);
        // Every part shows its next row, if it has one: a part whose chunk was merged
        // takes its next before a row of it is compared again.
        while buf.len() < max {
            let mut first: Option<(usize, &(A::Output, i64))> = None;
            for (at, part) in self.parts.iter().enumerate() {
                let Some(row) = part.head() else { continue };
                let before = match first {
                    None => true,
                    Some((_, best)) => {
                        let by_time = match by_key_alone {
                            true => Ordering::Equal,
                            false => time(row).cmp(&time(best)),
                        };
                        by_time.then_with(|| self.agg.cmp_keys(&row.0, &best.0)) == Ordering::Less
                    }
                };
                if before {
                    first = Some((at, row));
                }
            }
            let Some((at, _)) = first else { return };
            let part = &mut self.parts[at];
            let row = part.rows.row_mut(part.next);
            row.1 = time(row);
            buf.push_swapped(row);
            part.next += 1;
            self.refill(at);
        }
    }
}

/// The earlier of two times that may be missing.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<A, O> KeyedOperator<A> for SplitByKey<A, O>
where
    A: SplitTypes,
    O: SplitsByKey<A> + Send + 'static,
{
    #[inline]
    fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        match &mut self.0 {
            How::Here(op) => op.process(key, rec, t),
            How::Split(parts) => parts.process(key, rec, t),
        }
    }

    #[inline]
    fn prefetch<Q>(&self, key: &Q, t: Option<i64>, reach: Reach)
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // A part's state is on another core: nothing to ask for here.
        if let How::Here(op) = &self.0 {
            op.prefetch(key, t, reach);
        }
    }

    fn set_epoch(&mut self, epoch: u64) {
        match &mut self.0 {
            How::Here(op) => op.set_epoch(epoch),
            How::Split(parts) => parts.epoch = epoch,
        }
    }

    /// Split: records routed to a part and not taken yet hold their epoch too, as do
    /// ([`Clock::per_record`]) those whose rows were not handed on (a source that commits
    /// asks once a step).
    fn pending_epoch(&self) -> Option<u64> {
        match &self.0 {
            How::Here(op) => op.pending_epoch(),
            How::Split(parts) => parts
                .parts
                .iter()
                .flat_map(|p| {
                    let unapplied = p.unapplied_epoch();
                    let held = p.cell.lock().unwrap_or_else(PoisonError::into_inner).op.pending_epoch();
                    unapplied.into_iter().chain(held)
                })
                .chain(parts.order.front().map(|&(_, epoch)| epoch))
                .min(),
        }
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        match &mut self.0 {
            How::Here(op) => op.on_watermark(wm),
            How::Split(parts) => parts.advance(wm),
        }
    }

    fn next_due(&self) -> Option<i64> {
        match &self.0 {
            How::Here(op) => op.next_due(),
            How::Split(parts) => parts.due,
        }
    }

    /// Run here, the operator's own close (a count window's emits its partial windows,
    /// which no watermark does).
    fn on_close(&mut self) {
        match &mut self.0 {
            How::Here(op) => op.on_close(),
            How::Split(parts) => {
                parts.close();
            }
        }
    }

    fn catch_up(&mut self) -> bool {
        match &mut self.0 {
            How::Here(op) => op.catch_up(),
            How::Split(parts) => parts.catch_up(),
        }
    }

    fn late_reason(&self) -> &'static str {
        match &self.0 {
            How::Here(op) => op.late_reason(),
            How::Split(parts) => parts.late_reason,
        }
    }

    fn emitted(&mut self) -> &mut VecDeque<(A::Output, i64)> {
        match &mut self.0 {
            How::Here(op) => op.emitted(),
            How::Split(parts) => &mut parts.none,
        }
    }

    fn has_emitted(&mut self) -> bool {
        match &mut self.0 {
            How::Here(op) => op.has_emitted(),
            How::Split(parts) => parts.has_emitted(),
        }
    }

    fn drain_emitted(&mut self, buf: &mut Results<A::Output>, max: usize) {
        match &mut self.0 {
            How::Here(op) => op.drain_emitted(buf, max),
            How::Split(parts) => parts.drain_emitted(buf, max),
        }
    }

    fn state_size(&self) -> StateSize {
        match &self.0 {
            How::Here(op) => op.state_size(),
            How::Split(parts) => {
                // Sampled once a second: what the parts hold after their last task.
                parts.parts.iter().fold(StateSize::default(), |sum, p| {
                    let size = p.cell.lock().unwrap_or_else(PoisonError::into_inner).op.state_size();
                    StateSize {
                        entries: sum.entries + size.entries,
                        bytes: sum.bytes + size.bytes,
                    }
                })
            }
        }
    }

    /// Split: what the parts held after their last task (read after every record, so
    /// not worth a wait).
    fn entries(&self) -> usize {
        match &self.0 {
            How::Here(op) => op.entries(),
            How::Split(parts) => parts.parts.iter().map(|p| p.entries).sum(),
        }
    }

    fn take_evictions(&mut self) -> (u64, u64) {
        match &mut self.0 {
            How::Here(op) => op.take_evictions(),
            // No `max_keys`, no table `ttl`: nothing is evicted or expires.
            How::Split(_) => (0, 0),
        }
    }

    fn settle(&mut self) {
        match &mut self.0 {
            How::Here(op) => op.settle(),
            How::Split(parts) => parts.settle_at_watermark(),
        }
    }

    /// Split: what one operator would have saved ([`SplitsByKey::join_saved`]), after
    /// [`KeyedOperator::settle`].
    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        match &self.0 {
            How::Here(op) => op.save_state(out),
            How::Split(parts) => parts.save(out),
        }
    }

    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        match &mut self.0 {
            How::Here(op) => op.restore_state(saved),
            How::Split(parts) => parts.restore(saved),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use crate::windows::state::testing::{opts, CountSum, Out};
    use crate::windows::{CountWindows, Emit, FixedWindows, PanedWindows, SessionWindows, Stateful, Table};

    impl OrderedRows for CountSum {
        fn cmp_keys(&self, a: &Out, b: &Out) -> Ordering {
            a.0.cmp(&b.0)
        }
    }

    fn context(threads: usize, state_dir: Option<&str>) -> Context {
        let mut ctx = Context::new(Settings::from_values(vec![]), 1);
        ctx.workers = crate::workers::for_threads(threads).map(|n| Workers::start(n).unwrap_or_else(|e| panic!("{e}")));
        ctx.state_dir = state_dir.map(Into::into);
        ctx
    }

    /// What an operator did with each record and each watermark: the admission, the
    /// results drained (in chunks of 7, as the pipeline drains them in chunks), and the
    /// oldest epoch it holds.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Record(Admit),
        Rows(Vec<(Out, i64)>),
        Held(Option<u64>),
    }

    /// Drains an operator as the pipeline does: in chunks of `chunk` rows into one
    /// buffer, whose rows go back to be written over.
    struct Drain {
        buf: Results<Out>,
        chunk: usize,
    }

    impl Drain {
        fn new(chunk: usize) -> Self {
            Drain {
                buf: Results::default(),
                chunk,
            }
        }

        /// Every row waiting in `op`, appended to `rows`.
        fn append<O: KeyedOperator<CountSum>>(&mut self, op: &mut O, rows: &mut Vec<(Out, i64)>) {
            while op.has_emitted() {
                self.buf.clear();
                op.drain_emitted(&mut self.buf, self.chunk);
                rows.extend(self.buf.as_slice().iter().cloned());
            }
        }
    }

    /// 6,000 records `(i, key, t, newest t)` of 97 keys, each up to 40 ms behind the
    /// newest.
    fn readings() -> impl Iterator<Item = (u64, String, i64, i64)> {
        let (mut newest, mut state) = (0i64, 7u64);
        (0..6_000u64).map(move |i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            newest += ((state >> 20) % 3) as i64;
            let t = newest - ((state >> 40) % 40) as i64;
            (i, format!("k{}", (state >> 33) % 97), t, newest)
        })
    }

    /// [`readings`], the watermark 15 ms behind the newest, epochs of 250 records; then
    /// the end of input.
    fn drive<O: KeyedOperator<CountSum>>(op: &mut O) -> Vec<Seen> {
        let mut seen = Vec::new();
        let mut drained = Drain::new(7);
        let mut drain = |op: &mut O, seen: &mut Vec<Seen>| {
            let mut rows = Vec::new();
            drained.append(op, &mut rows);
            if !rows.is_empty() {
                seen.push(Seen::Rows(rows));
            }
        };
        for (i, key, t, newest) in readings() {
            if i % 250 == 0 {
                op.set_epoch(i / 250);
            }
            seen.push(Seen::Record(
                op.process(key.as_str(), &(key.clone(), (i % 13) as i64), t)
                    .unwrap_or_else(|e| panic!("{e}")),
            ));
            drain(op, &mut seen);
            if op.on_watermark(newest - 15) {
                drain(op, &mut seen);
            }
            if i % 500 == 0 {
                seen.push(Seen::Held(op.pending_epoch()));
            }
        }
        op.on_close();
        drain(op, &mut seen);
        seen.push(Seen::Held(op.pending_epoch()));
        seen
    }

    #[test]
    fn split_windows_give_what_one_window_gives_for_any_number_of_parts() {
        for (size, slide, offset) in [(10, 10, 0), (30, 10, 3), (25, 10, 0)] {
            let fixed = || FixedWindows::new(CountSum, size, slide, offset, opts(0));
            let expected = drive(&mut fixed());
            let rows: usize = expected
                .iter()
                .map(|s| if let Seen::Rows(r) = s { r.len() } else { 0 })
                .sum();
            let late = expected
                .iter()
                .filter(|s| matches!(s, Seen::Record(Admit::Late { .. })))
                .count();
            assert!(
                rows > 1_000 && late > 100,
                "the test has rows ({rows}) and late records ({late})"
            );
            for threads in [3, 4, 6] {
                let mut split = SplitByKey::new("windows.w", &context(threads, None), CountSum, fixed);
                assert_eq!(split.parts(), threads - 1);
                assert!(drive(&mut split) == expected, "fixed {size}/{slide}, {threads} threads");
                if slide < size {
                    let panes = || PanedWindows::new(CountSum, size, slide, offset, opts(0));
                    let mut split = SplitByKey::new("windows.w", &context(threads, None), CountSum, panes);
                    assert!(drive(&mut split) == expected, "panes {size}/{slide}, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn split_tables_give_what_one_table_gives_for_any_number_of_parts() {
        // Boundaries every 10 and 37 ms, and one past most of the records (the first
        // watermark, -15, places the table before 0: two firings).
        for every in [10, 37, 100_000] {
            let table = || Table::new(CountSum, Emit::Every(every), None, opts(0));
            let expected = drive(&mut table());
            let firings: Vec<usize> = expected
                .iter()
                .filter_map(|s| if let Seen::Rows(r) = s { Some(r.len()) } else { None })
                .collect();
            let least = if every == 100_000 { 2 } else { 100 };
            assert!(
                firings.len() >= least && firings.iter().sum::<usize>() >= 97,
                "the test has firings ({firings:?})"
            );
            for threads in [3, 4, 6] {
                let mut split = SplitByKey::new("tables.t", &context(threads, None), CountSum, table);
                assert_eq!(split.parts(), threads - 1);
                assert!(drive(&mut split) == expected, "every {every}, {threads} threads");
            }
        }
    }

    #[test]
    fn a_split_table_saves_what_one_table_saves_and_restores_into_any_number_of_parts() {
        // On an interval (a tenth as many rows as records), and every change.
        for (emit, rows) in [(Emit::Every(30), 1_000..5_000), (Emit::Change, 5_000..5_001)] {
            let table = || Table::new(CountSum, emit, None, opts(0));
            let mut one_saves = Vec::new();
            let one_rows = feed(&mut table(), 0, 5_000, &mut one_saves);
            let mut split_saves = Vec::new();
            let split_rows = feed(
                &mut SplitByKey::new("tables.t", &context(4, None), CountSum, table),
                0,
                5_000,
                &mut split_saves,
            );
            assert!(rows.contains(&one_rows.len()) && one_saves.len() == 7, "{emit:?}");
            assert!(
                split_rows == one_rows && split_saves == one_saves,
                "{emit:?}: the same rows and checkpoints"
            );
            restores_as_one("tables.t", table, &one_saves[2], &[3, 5], &format!("{emit:?}"));
            // Saved before the first watermark: the restored parts are placed by the next.
            let mut before = Vec::new();
            table().save_state(&mut before).unwrap_or_else(|e| panic!("{e}"));
            let expected = feed(&mut table(), 0, 3_000, &mut Vec::new());
            let mut split = SplitByKey::new("tables.t", &context(3, None), CountSum, table);
            split.restore_state(&before).unwrap_or_else(|e| panic!("{e}"));
            assert!(feed(&mut split, 0, 3_000, &mut Vec::new()) == expected, "{emit:?}");
        }
    }

    #[test]
    fn a_split_table_will_not_save_while_rows_wait_and_closes_with_every_row() {
        let table = || Table::new(CountSum, Emit::Change, None, opts(0));
        let mut split = SplitByKey::new("tables.t", &context(3, None), CountSum, table);
        for i in 0..10 {
            let key = format!("k{i}");
            assert_eq!(split.process(key.as_str(), &(key.clone(), 1), i), Ok(Admit::Added));
        }
        split.settle();
        let refused = split.save_state(&mut Vec::new());
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("10 rows not handed on")),
            "{refused:?}"
        );
        // A stop without firing (checkpoints on) still hands every row on.
        let mut node = Stateful::new(
            "tables.t",
            split,
            crate::sources::OnError::DeadLetter,
            &context(1, None),
        );
        assert!(node.close(false), "rows waiting");
        let mut buf = node.take_buffer();
        let mut rows = 0;
        while node.next_results(&mut buf) {
            rows += buf.len();
        }
        assert_eq!(rows, 10);
    }

    #[test]
    fn rows_waiting_for_a_part_with_few_keys_stay_bounded() {
        let table = || Table::new(CountSum, Emit::Change, None, opts(0));
        let mut split = SplitByKey::new("tables.t", &context(4, None), CountSum, table);
        let How::Split(parts) = &split.0 else {
            panic!("not split")
        };
        // One record of a key of part 0, then keys of part 1, and one in 997 of part 2:
        // the first row waits in part 0's batch, which no other record fills, and every
        // row after it behind it; part 2's rows are never a share of a chunk.
        let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        let of_part = |n| {
            keys.iter()
                .filter(|k| parts.part_of(k.as_str()) == n)
                .collect::<Vec<_>>()
        };
        let (first, many, rare) = (of_part(0), of_part(1), of_part(2));
        let bound = parts.most_waiting();
        let mut buf = Results::default();
        let (mut handed, mut most_waiting) = (0, 0);
        for i in 0..3 * bound {
            let key = match i {
                0 => first[0],
                _ if i % 997 == 0 => rare[i % rare.len()],
                _ => many[i % many.len()],
            };
            assert_eq!(
                split.process(key.as_str(), &(key.clone(), 1), i as i64),
                Ok(Admit::Added)
            );
            while split.has_emitted() {
                buf.clear();
                split.drain_emitted(&mut buf, 256);
                handed += buf.len();
            }
            most_waiting = most_waiting.max(i + 1 - handed);
        }
        assert!(
            handed > 0 && most_waiting <= bound,
            "{most_waiting} rows waited at most"
        );
    }

    /// Keys `k0`, `k1`, ... each changed once, at its time in `times`, after a first
    /// watermark of 0 (boundaries every 10: none crossed); then the end of input. Every
    /// row is drained.
    fn close_with_changes_in_two_periods<O: KeyedOperator<CountSum>>(op: &mut O, times: &[i64]) -> Vec<(Out, i64)> {
        op.on_watermark(0);
        for (i, &t) in times.iter().enumerate() {
            let key = format!("k{i}");
            assert_eq!(op.process(key.as_str(), &(key.clone(), 1), t), Ok(Admit::Added));
        }
        op.on_close();
        let mut rows = Vec::new();
        Drain::new(7).append(op, &mut rows);
        rows
    }

    #[test]
    fn at_the_end_of_input_a_split_tables_rows_take_the_latest_change_of_all_parts() {
        let table = || Table::new(CountSum, Emit::Every(10), None, opts(0));
        let mut split = SplitByKey::new("tables.t", &context(4, None), CountSum, table);
        let How::Split(parts) = &split.0 else {
            panic!("not split")
        };
        // `k0` to `k39`, changed at 5 in part 0 and at 25 in the others.
        let times: Vec<i64> = (0..40)
            .map(|i| if parts.part_of(&format!("k{i}")) == 0 { 5 } else { 25 })
            .collect();
        assert!(times.contains(&5) && times.contains(&25), "both periods have changes");
        let expected = close_with_changes_in_two_periods(&mut table(), &times);
        // One table stamps every row with its latest change's period end, in key order.
        assert_eq!(expected.len(), 40);
        assert!(expected.iter().all(|(_, t)| *t == 29), "{expected:?}");
        assert!(close_with_changes_in_two_periods(&mut split, &times) == expected);
    }

    #[test]
    fn a_split_table_saved_before_the_first_watermark_is_one_tables_and_goes_on_as_one() {
        let table = || Table::new(CountSum, Emit::Every(30), None, opts(0));
        let mut one = table();
        let mut split = SplitByKey::new("tables.t", &context(3, None), CountSum, table);
        let (mut one_saved, mut split_saved) = (Vec::new(), Vec::new());
        for i in 0..50 {
            let key = format!("k{}", i % 13);
            assert_eq!(one.process(key.as_str(), &(key.clone(), 1), i), Ok(Admit::Added));
            assert_eq!(split.process(key.as_str(), &(key.clone(), 1), i), Ok(Admit::Added));
        }
        one.settle();
        one.save_state(&mut one_saved).unwrap_or_else(|e| panic!("{e}"));
        split.settle();
        split.save_state(&mut split_saved).unwrap_or_else(|e| panic!("{e}"));
        assert!(one_saved == split_saved, "the same checkpoint, no boundary in it");
        let (mut one_saves, mut split_saves) = (Vec::new(), Vec::new());
        let expected = feed(&mut one, 0, 3_000, &mut one_saves);
        assert!(feed(&mut split, 0, 3_000, &mut split_saves) == expected);
        assert!(split_saves == one_saves);
    }

    #[test]
    fn a_table_runs_whole_when_a_record_may_emit() {
        let whole = [
            (Emit::Change, Some(100), opts(0), "every change, a ttl"),
            (
                Emit::Change,
                None,
                crate::windows::state::testing::limited(5, crate::windows::OnFull::EvictOldest),
                "every change, max_keys",
            ),
            (Emit::Every(10), Some(100), opts(0), "a ttl"),
            (
                Emit::Every(10),
                None,
                crate::windows::state::testing::limited(5, crate::windows::OnFull::EvictOldest),
                "max_keys",
            ),
        ];
        for (emit, ttl, opts, why) in whole {
            let table = || Table::new(CountSum, emit, ttl, opts);
            assert_eq!(
                SplitByKey::new("tables.t", &context(3, None), CountSum, table).parts(),
                1,
                "{why}"
            );
        }
    }

    /// What a table emitting each change did with [`readings`], the rows drained as the
    /// pipeline drains them: after every record, each watermark and, every `step`
    /// records, once caught up (a step's end). Asserts at each step's end that every
    /// record's row was handed on and no epoch is held; and after each record, that the
    /// epoch held is the oldest record's whose row was not handed on (records of epoch
    /// `i / 250`). Returns the rows, and how often a row waited.
    fn changes_of<O: KeyedOperator<CountSum>>(op: &mut O, step: u64) -> (Vec<(Out, i64)>, usize) {
        let (mut rows, mut waited) = (Vec::new(), 0);
        let mut drain = Drain::new(7);
        for (i, key, t, newest) in readings() {
            if i % 250 == 0 {
                op.set_epoch(i / 250);
            }
            let taken = op.process(key.as_str(), &(key.clone(), (i % 13) as i64), t);
            assert_eq!(taken, Ok(Admit::Added), "a table takes every record");
            drain.append(op, &mut rows);
            let handed = rows.len() as u64;
            let oldest_waiting = (handed <= i).then_some(handed / 250);
            assert_eq!(
                op.pending_epoch(),
                oldest_waiting,
                "record {i}, {handed} rows handed on"
            );
            waited += usize::from(handed <= i);
            if op.on_watermark(newest - 15) {
                drain.append(op, &mut rows);
            }
            if i % step == step - 1 {
                if op.catch_up() {
                    drain.append(op, &mut rows);
                }
                assert_eq!(rows.len() as u64, i + 1, "caught up: a row for every record");
                assert_eq!(op.pending_epoch(), None, "caught up: nothing held");
            }
        }
        op.on_close();
        drain.append(op, &mut rows);
        assert_eq!(op.pending_epoch(), None);
        (rows, waited)
    }

    #[test]
    fn a_split_table_emitting_each_change_hands_on_one_tables_rows_in_record_order() {
        let table = || Table::new(CountSum, Emit::Change, None, opts(0));
        let (expected, _) = changes_of(&mut table(), 1_000);
        assert_eq!(expected.len(), 6_000);
        for threads in [3, 4, 6] {
            for step in [1, 333, 6_000] {
                let mut split = SplitByKey::new("tables.t", &context(threads, None), CountSum, table);
                assert_eq!(split.parts(), threads - 1);
                let (rows, waited) = changes_of(&mut split, step);
                assert!(rows == expected, "{threads} threads, steps of {step}");
                if step > 1 {
                    assert!(waited > 1_000, "rows waited for their parts ({waited})");
                }
            }
        }
    }

    /// Every row of `op` after `records` (key, time) then the end of input, drained in
    /// chunks of 256 as the pipeline drains them.
    fn rows_of<O: KeyedOperator<CountSum>>(op: &mut O, records: &[(String, i64)], wm_every: usize) -> Vec<(Out, i64)> {
        let mut rows = Vec::new();
        let mut drain = Drain::new(256);
        for (i, (key, t)) in records.iter().enumerate() {
            assert_eq!(op.process(key.as_str(), &(key.clone(), 1), *t), Ok(Admit::Added));
            if i % wm_every == wm_every - 1 && op.on_watermark(*t - 1) {
                drain.append(op, &mut rows);
            }
        }
        op.on_close();
        drain.append(op, &mut rows);
        rows
    }

    #[test]
    fn firings_of_more_rows_than_a_part_builds_at_once_come_in_the_same_order() {
        // 20,000 keys in 3-ms hopping windows sliding by 1: each firing mid-stream and
        // the end of input hold more rows than a part builds at a time.
        let records: Vec<(String, i64)> = (0..60_000i64)
            .map(|i| (format!("key-{}", (i * 7_919) % 20_000), i / 20_000))
            .collect();
        let panes = || PanedWindows::new(CountSum, 3, 1, 0, opts(0));
        let expected = rows_of(&mut panes(), &records, 20_000);
        assert_eq!(
            expected.len(),
            5 * 20_000,
            "five windows hold times 0 to 2, each every key"
        );
        for threads in [3, 5] {
            let mut split = SplitByKey::new("windows.w", &context(threads, None), CountSum, panes);
            assert!(rows_of(&mut split, &records, 20_000) == expected, "{threads} threads");
        }
    }

    /// Records `from..to` of [`drive`]'s kind (97 keys, out of order, the watermark 15 ms
    /// behind), each followed by the watermark, and every row drained; a checkpoint of
    /// the state after every 700th record.
    fn feed<O: KeyedOperator<CountSum>>(op: &mut O, from: u64, to: u64, saves: &mut Vec<Vec<u8>>) -> Vec<(Out, i64)> {
        let mut rows = Vec::new();
        let mut drain = Drain::new(256);
        for i in from..to {
            let x = i.wrapping_mul(2_654_435_761) >> 7;
            let key = format!("k{}", x % 97);
            let newest = i as i64 * 2;
            let t = newest - (x % 40) as i64;
            if !matches!(
                op.process(key.as_str(), &(key.clone(), 1), t),
                Ok(Admit::Added | Admit::Late { .. })
            ) {
                panic!("record {i} failed");
            }
            op.on_watermark(newest - 15);
            drain.append(op, &mut rows);
            if i % 700 == 699 {
                // A step's end, then a checkpoint.
                op.catch_up();
                drain.append(op, &mut rows);
                op.settle();
                let mut saved = Vec::new();
                op.save_state(&mut saved).unwrap_or_else(|e| panic!("{e}"));
                saves.push(saved);
            }
        }
        // The last step's end.
        op.catch_up();
        drain.append(op, &mut rows);
        rows
    }

    /// One operator restored from `saved` (taken after record 2,099 by [`feed`]) and fed
    /// the records after it, and the same split across each of `threads` restored from
    /// it: the same rows.
    fn restores_as_one<O>(name: &str, build: impl Fn() -> O + Copy, saved: &[u8], threads: &[usize], what: &str)
    where
        O: SplitsByKey<CountSum> + Send + 'static,
    {
        let mut one = build();
        one.restore_state(saved).unwrap_or_else(|e| panic!("{e}"));
        let expected = feed(&mut one, 2_100, 5_000, &mut Vec::new());
        for &threads in threads {
            let mut split = SplitByKey::new(name, &context(threads, None), CountSum, build);
            split.restore_state(saved).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                feed(&mut split, 2_100, 5_000, &mut Vec::new()) == expected,
                "{what}, {threads} threads, restored"
            );
        }
    }

    #[test]
    fn a_split_window_saves_what_one_window_saves_and_restores_into_any_number_of_parts() {
        for (size, slide) in [(20, 20), (60, 20)] {
            let fixed = || FixedWindows::new(CountSum, size, slide, 0, opts(0));
            let panes = || PanedWindows::new(CountSum, size, slide, 0, opts(0));
            let mut one_saves = Vec::new();
            let one_rows = feed(&mut fixed(), 0, 5_000, &mut one_saves);
            assert_eq!(one_saves.len(), 7);
            let mut split_saves = Vec::new();
            let split_rows = feed(
                &mut SplitByKey::new("windows.w", &context(4, None), CountSum, fixed),
                0,
                5_000,
                &mut split_saves,
            );
            assert!(
                split_rows == one_rows && split_saves == one_saves,
                "fixed {size}/{slide}: the same rows and checkpoints"
            );
            // Restored from the third checkpoint, into 2 and 4 parts and into one window:
            // the same rows from there on.
            restores_as_one(
                "windows.w",
                fixed,
                &one_saves[2],
                &[3, 5],
                &format!("fixed {size}/{slide}"),
            );
            if slide < size {
                let mut pane_saves = Vec::new();
                let pane_rows = feed(&mut panes(), 0, 5_000, &mut pane_saves);
                let mut split_saves = Vec::new();
                let split = &mut SplitByKey::new("windows.w", &context(3, None), CountSum, panes);
                assert!(
                    feed(split, 0, 5_000, &mut split_saves) == pane_rows,
                    "panes {size}/{slide}"
                );
                assert!(split_saves == pane_saves, "panes {size}/{slide}: the same checkpoints");
                restores_as_one(
                    "windows.w",
                    panes,
                    &pane_saves[2],
                    &[5],
                    &format!("panes {size}/{slide}"),
                );
            }
        }
    }

    /// A hopping window's parts hold different windows: one key runs on, the others
    /// stop early, so one part fires windows the others never held; the joined
    /// checkpoint is still one operator's.
    #[test]
    fn parts_that_fired_different_windows_join_into_one_windows_checkpoint() {
        let panes = || PanedWindows::new(CountSum, 3, 1, 0, opts(0));
        let ctx = context(5, None);
        let mut split = SplitByKey::new("windows.w", &ctx, CountSum, panes);
        let How::Split(parts) = &split.0 else {
            panic!("not split")
        };
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let last = parts.parts.len() - 1;
        // The key that runs on is in a part before the last, and some key is in the last.
        let runs_on = keys.iter().find(|k| parts.part_of(k.as_str()) < last).cloned();
        let runs_on = runs_on.unwrap_or_else(|| panic!("every key in the last part"));
        assert!(keys.iter().any(|k| parts.part_of(k.as_str()) == last));
        let mut one = panes();
        let mut feed_both = |key: &str, t: i64| {
            for admitted in [
                one.process(key, &(key.to_owned(), 1), t),
                split.process(key, &(key.to_owned(), 1), t),
            ] {
                assert_eq!(admitted, Ok(Admit::Added));
            }
        };
        for key in &keys {
            feed_both(key, 0);
        }
        for t in 1..30 {
            feed_both(&runs_on, t);
        }
        fn fire<O: KeyedOperator<CountSum>>(op: &mut O, wm: i64) -> usize {
            let (mut buf, mut rows) = (Results::default(), 0);
            op.on_watermark(wm);
            while op.has_emitted() {
                buf.clear();
                op.drain_emitted(&mut buf, 256);
                rows += buf.len();
            }
            rows
        }
        for wm in [10, 29] {
            assert_eq!(fire(&mut one, wm), fire(&mut split, wm));
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        one.save_state(&mut a).unwrap_or_else(|e| panic!("{e}"));
        split.settle();
        split.save_state(&mut b).unwrap_or_else(|e| panic!("{e}"));
        assert!(a == b, "the same checkpoint");
    }

    #[test]
    fn records_handed_to_a_busy_worker_hold_their_epoch_until_taken() {
        let ctx = context(3, None);
        let workers = ctx.workers.clone().unwrap_or_else(|| panic!("workers"));
        let fixed = || FixedWindows::new(CountSum, 10, 10, 0, opts(0));
        let mut split = SplitByKey::new("windows.w", &ctx, CountSum, fixed);
        // Both workers wait, so the parts' batches stay queued behind them.
        let (release, wait) = mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        for _ in 0..2 {
            let wait = Arc::clone(&wait);
            workers.run(Box::new(move || {
                let _ = wait.lock().map(|w| w.recv());
            }));
        }
        // One key, one part: a batch in flight, nothing pending or queued behind it.
        split.set_epoch(4);
        for _ in 0..BATCH {
            assert_eq!(split.process("k", &("k".to_owned(), 1), 5), Ok(Admit::Added));
        }
        assert_eq!(split.pending_epoch(), Some(4), "handed over, not taken yet");
        split.set_epoch(5);
        for i in 0..3 * BATCH {
            let key = format!("k{}", i % 49);
            assert_eq!(split.process(key.as_str(), &(key.clone(), 1), 5), Ok(Admit::Added));
        }
        assert_eq!(split.pending_epoch(), Some(4), "queued and pending behind it");
        drop(release);
        split.on_close();
        let mut buf = Results::default();
        split.drain_emitted(&mut buf, usize::MAX);
        let counted: i64 = buf.as_slice().iter().map(|(row, _)| row.2).sum();
        assert_eq!((buf.len(), counted), (50, 4 * BATCH as i64));
        assert_eq!(split.pending_epoch(), None, "every window fired");
    }

    #[test]
    fn a_window_runs_whole_here_without_two_workers_or_a_grid_of_time_or_when_told() {
        let fixed = || FixedWindows::new(CountSum, 10, 10, 0, opts(0));
        assert_eq!(
            SplitByKey::new("windows.w", &context(1, None), CountSum, fixed).parts(),
            1
        );
        assert_eq!(
            SplitByKey::new("windows.w", &context(2, None), CountSum, fixed).parts(),
            1
        );
        assert_eq!(
            SplitByKey::new("windows.w", &context(3, Some("/tmp/state")), CountSum, fixed).parts(),
            2,
            "checkpoints join the parts' states"
        );
        let mut off = context(3, None);
        off.split_windows = false;
        assert_eq!(
            SplitByKey::new("windows.w", &off, CountSum, fixed).parts(),
            1,
            "--split-windows off"
        );
        let late = || FixedWindows::new(CountSum, 10, 10, 0, opts(5));
        assert_eq!(
            SplitByKey::new("windows.w", &context(3, None), CountSum, late).parts(),
            1,
            "allowed lateness"
        );
        let full = || {
            FixedWindows::new(
                CountSum,
                10,
                10,
                0,
                crate::windows::state::testing::limited(5, crate::windows::OnFull::Reject),
            )
        };
        assert_eq!(
            SplitByKey::new("windows.w", &context(3, None), CountSum, full).parts(),
            1,
            "max_keys"
        );
        assert_eq!(
            SplitByKey::new("windows.w", &context(3, None), CountSum, fixed).parts(),
            2
        );
    }

    /// What a session or count window did with [`readings`]: each record's admission,
    /// every row in order, and at each step's end how many rows were out and the epoch
    /// held.
    struct Run {
        admits: Vec<Admit>,
        rows: Vec<(Out, i64)>,
        steps: Vec<(usize, Option<u64>)>,
    }

    /// The [`Run`] of `op` given [`readings`] (the watermark 15 ms behind the newest,
    /// epochs of 250 records), the rows drained after each record and each watermark
    /// and, every `step` records, once caught up (a step's end); then the end of input.
    fn stepped_run<O: KeyedOperator<CountSum>>(op: &mut O, step: u64) -> Run {
        let (mut admits, mut rows, mut steps) = (Vec::new(), Vec::new(), Vec::new());
        let mut drain = Drain::new(7);
        for (i, key, t, newest) in readings() {
            if i % 250 == 0 {
                op.set_epoch(i / 250);
            }
            let taken = op.process(key.as_str(), &(key.clone(), (i % 13) as i64), t);
            admits.push(taken.unwrap_or_else(|e| panic!("{e}")));
            drain.append(op, &mut rows);
            if op.on_watermark(newest - 15) {
                drain.append(op, &mut rows);
            }
            if i % step == step - 1 {
                if op.catch_up() {
                    drain.append(op, &mut rows);
                }
                steps.push((rows.len(), op.pending_epoch()));
            }
        }
        op.on_close();
        drain.append(op, &mut rows);
        steps.push((rows.len(), op.pending_epoch()));
        Run { admits, rows, steps }
    }

    /// `build` split across 2, 3 and 5 parts gives the [`stepped_run`] `expected` of
    /// one operator.
    fn runs_as_one<O>(name: &str, build: impl Fn() -> O + Copy, expected: &Run, step: u64, what: &str)
    where
        O: SplitsByKey<CountSum> + Send + 'static,
    {
        for threads in [3, 4, 6] {
            let mut split = SplitByKey::new(name, &context(threads, None), CountSum, build);
            assert_eq!(split.parts(), threads - 1);
            let got = stepped_run(&mut split, step);
            let run = format!("{what}, steps of {step}, {threads} threads");
            assert!(got.admits == expected.admits, "{run}: admissions");
            assert!(got.rows == expected.rows, "{run}: rows");
            assert!(
                got.steps == expected.steps,
                "{run}: rows out and epochs held at each step's end"
            );
        }
    }

    /// One operator and the same split in 3 parts, each given records 0 to 5,000 by
    /// [`feed`]: the same rows and checkpoints. Returns one operator's rows and
    /// checkpoints.
    fn saves_as_one<O>(name: &str, build: impl Fn() -> O + Copy, what: &str) -> (Vec<(Out, i64)>, Vec<Vec<u8>>)
    where
        O: SplitsByKey<CountSum> + Send + 'static,
    {
        let mut one_saves = Vec::new();
        let one_rows = feed(&mut build(), 0, 5_000, &mut one_saves);
        let mut split_saves = Vec::new();
        let split = &mut SplitByKey::new(name, &context(4, None), CountSum, build);
        let split_rows = feed(split, 0, 5_000, &mut split_saves);
        assert_eq!(one_saves.len(), 7, "{what}");
        assert!(split_rows == one_rows, "{what}: the same rows");
        assert!(split_saves == one_saves, "{what}: the same checkpoints");
        (one_rows, one_saves)
    }

    #[test]
    fn split_sessions_give_what_one_session_window_gives_by_each_steps_end() {
        // Gaps of 5 and 20 ms: a key's records come about 97 ms apart, up to 40 ms out of
        // order, so a record more than the gap behind the watermark is often late and
        // (20 ms) sometimes falls in its key's open session, which its part decides.
        for gap in [5, 20] {
            let sessions = || SessionWindows::new(CountSum, gap, opts(0));
            for step in [1, 333, 6_000] {
                let expected = stepped_run(&mut sessions(), step);
                let (admits, rows) = (&expected.admits, &expected.rows);
                let late = admits.iter().filter(|a| matches!(a, Admit::Late { .. })).count();
                let mut wm = i64::MIN;
                let mut behind_but_open = 0;
                for ((_, _, t, newest), admit) in readings().zip(admits) {
                    behind_but_open += usize::from(t + gap <= wm && *admit == Admit::Added);
                    wm = wm.max(newest - 15);
                }
                assert!(
                    rows.len() > 3_000 && late > 100 && (gap == 5 || behind_but_open > 20),
                    "the test has rows ({}), late records ({late}) and records behind the watermark in an open session ({behind_but_open})",
                    rows.len()
                );
                runs_as_one("windows.s", sessions, &expected, step, &format!("gap {gap}"));
            }
        }
    }

    #[test]
    fn split_sessions_save_what_one_session_window_saves_and_restore_into_any_number_of_parts() {
        // Sessions of single records (20 ms; a key's records 194 ms apart) and long ones.
        for gap in [20, 300] {
            let sessions = || SessionWindows::new(CountSum, gap, opts(0));
            let what = format!("gap {gap}");
            let (rows, saves) = saves_as_one("windows.s", sessions, &what);
            assert!(rows.len() > 100, "{what}: {} rows", rows.len());
            restores_as_one("windows.s", sessions, &saves[2], &[3, 5], &what);
        }
    }

    #[test]
    fn a_session_window_runs_whole_with_allowed_lateness_or_max_keys() {
        let late = || SessionWindows::new(CountSum, 10, opts(5));
        let full = || {
            SessionWindows::new(
                CountSum,
                10,
                crate::windows::state::testing::limited(5, crate::windows::OnFull::EvictOldest),
            )
        };
        assert_eq!(
            SplitByKey::new("windows.s", &context(3, None), CountSum, late).parts(),
            1
        );
        assert_eq!(
            SplitByKey::new("windows.s", &context(3, None), CountSum, full).parts(),
            1
        );
        let sessions = || SessionWindows::new(CountSum, 10, opts(0));
        assert_eq!(
            SplitByKey::new("windows.s", &context(3, None), CountSum, sessions).parts(),
            2
        );
    }

    #[test]
    fn split_count_windows_give_what_one_count_window_gives_by_each_steps_end() {
        // Windows of 1 (a row for every record), 3 and 10 records of 97 keys: 6,000,
        // 2,000 and 600 rows as records come, then every key's partial window.
        for count in [1, 3, 10] {
            let counts = || CountWindows::new(CountSum, count, opts(0));
            for step in [1, 333, 6_000] {
                let expected = stepped_run(&mut counts(), step);
                let rows = &expected.rows;
                assert!(
                    expected.admits.iter().all(|a| *a == Admit::Added),
                    "count {count}: never late"
                );
                let partial = rows.iter().filter(|(row, _)| row.2 < count as i64).count();
                assert!(
                    rows.len() >= 6_000 / count as usize && (count == 1 || partial > 50),
                    "count {count}: {} rows, {partial} partial",
                    rows.len()
                );
                runs_as_one("windows.c", counts, &expected, step, &format!("count {count}"));
            }
        }
    }

    #[test]
    fn split_count_windows_save_what_one_count_window_saves_and_restore_into_any_number_of_parts() {
        for count in [4, 50] {
            let counts = || CountWindows::new(CountSum, count, opts(0));
            let what = format!("count {count}");
            let (rows, saves) = saves_as_one("windows.c", counts, &what);
            // No end of input here: rows of complete windows only.
            assert!(rows.len() > 2_000 / count as usize, "{what}: {} rows", rows.len());
            restores_as_one("windows.c", counts, &saves[2], &[3, 5], &what);
        }
        let full = || {
            CountWindows::new(
                CountSum,
                10,
                crate::windows::state::testing::limited(5, crate::windows::OnFull::EvictOldest),
            )
        };
        assert_eq!(
            SplitByKey::new("windows.c", &context(3, None), CountSum, full).parts(),
            1,
            "max_keys"
        );
    }

    #[test]
    fn a_count_window_closes_with_its_partial_window_whether_split_or_run_here() {
        let counts = || CountWindows::new(CountSum, 10, opts(0));
        for threads in [1, 2, 3] {
            let mut op = SplitByKey::new("windows.c", &context(threads, None), CountSum, counts);
            for t in 0..25 {
                assert_eq!(op.process("k", &("k".to_owned(), 1), t), Ok(Admit::Added));
            }
            op.on_close();
            let mut rows = Vec::new();
            Drain::new(7).append(&mut op, &mut rows);
            let counted: Vec<i64> = rows.iter().map(|(row, _)| row.2).collect();
            assert_eq!(counted, [10, 10, 5], "{threads} threads");
        }
    }

    #[test]
    fn a_count_windows_partial_windows_wait_for_the_close_past_the_end_of_time() {
        // After the watermark's end of time, an upstream window's close may still send
        // records (one operator adds them to the partial windows, which only its close
        // emits), and a checkpoint may come.
        let counts = || CountWindows::new(CountSum, 10, opts(0));
        let run = |op: &mut dyn FnMut(&str, i64)| {
            for t in 0..25 {
                op("k", t);
            }
        };
        let mut results = Vec::new();
        for threads in [1, 3] {
            let mut op = SplitByKey::new("windows.c", &context(threads, None), CountSum, counts);
            run(&mut |key, t| assert_eq!(op.process(key, &(key.to_owned(), 1), t), Ok(Admit::Added)));
            let mut rows = Vec::new();
            let mut drain = Drain::new(7);
            drain.append(&mut op, &mut rows);
            op.on_watermark(i64::MAX);
            drain.append(&mut op, &mut rows);
            op.settle();
            let mut saved = Vec::new();
            op.save_state(&mut saved).unwrap_or_else(|e| panic!("{e}"));
            for t in 25..28 {
                assert_eq!(op.process("k", &("k".to_owned(), 1), t), Ok(Admit::Added));
            }
            op.on_close();
            drain.append(&mut op, &mut rows);
            let counted: Vec<i64> = rows.iter().map(|(row, _)| row.2).collect();
            assert_eq!(counted, [10, 10, 8], "{threads} threads");
            results.push((rows, saved));
        }
        assert!(results[0] == results[1], "the same rows and checkpoint split");
    }

    #[test]
    fn split_sessions_closed_after_a_step_that_did_not_catch_up_write_every_session() {
        // A failed step ends before catching up: sessions due wait in the parts (or,
        // not fired yet, in their state) when the stop fires everything.
        let sessions = || SessionWindows::new(CountSum, 5, opts(0));
        let mut written = Vec::new();
        for threads in [1, 3] {
            let op = SplitByKey::new("windows.s", &context(threads, None), CountSum, sessions);
            let mut node = Stateful::new("windows.s", op, crate::sources::OnError::DeadLetter, &context(1, None));
            for t in 0..3_000i64 {
                let key = format!("k{}", t % 40);
                assert_eq!(
                    node.process(key.as_str(), &(key.clone(), 1), t * 10).ok(),
                    Some(Admit::Added)
                );
                // Every key's session ends 5 ms after its record: due at the next one.
                node.advance(Some(t * 10));
            }
            assert!(node.close(true), "{threads} threads: sessions waiting");
            let mut buf = node.take_buffer();
            let mut rows = Vec::new();
            while node.next_results(&mut buf) {
                rows.extend(buf.as_slice().iter().cloned());
            }
            written.push(rows);
        }
        assert_eq!(written[0].len(), 3_000, "a session a record");
        assert!(written[0] == written[1], "{} rows split", written[1].len());
    }
}
