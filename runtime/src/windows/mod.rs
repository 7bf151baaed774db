//! Windows and tables: keyed, stateful aggregation on event time.
//!
//! The generated code describes *what* to aggregate by implementing [`Aggregation`] for
//! each window or table of the spec (key type, accumulator struct, output record); the
//! operators here decide *when*: [`FixedWindows`] (tumbling and hopping), [`SessionWindows`],
//! [`CountWindows`] and [`Table`]. All four share the [`KeyedOperator`] interface with
//! [`crate::patterns::Patterns`], so the generated glue is the same whatever the kind.
//!
//! Time is explicit: every record comes with its time `t` (Unix ms, event time or the
//! time it was read), and the operator is told the watermark by [`KeyedOperator::on_watermark`]
//! (see [`clock`]). A watermark `W` means "no record with `t < W` is expected any more":
//! a window `[start, end)` fires when `W >= end`. Timers never look at the wall clock;
//! processing time is just a watermark that follows it.
//!
//! Results are deterministic: they depend only on the records, their order and the
//! watermarks, never on batch sizes or hash order. Windows fire in order of their end
//! (then start), and the keys of one window in ascending key order.
//!
//! For at-least-once delivery, records are tagged with the *epoch* of the source batch
//! they come from ([`KeyedOperator::set_epoch`]), and an operator reports the oldest epoch
//! whose effect it still holds in unfired state ([`KeyedOperator::pending_epoch`]): a
//! source may commit an offset only once nothing from its batch is held anywhere.

pub mod clock;
mod count;
mod fixed;
mod key_table;
mod node;
mod panes;
mod results;
mod session;
mod sorted_keys;
mod split;
pub(crate) mod state;
mod str_key;
mod table;

pub use clock::{Clocks, TimeMode};
pub use count::CountWindows;
pub(crate) use fixed::Assigned;
pub use fixed::FixedWindows;
pub use node::Stateful;
pub use panes::PanedWindows;
pub(crate) use results::BuildRows;
pub use results::Results;
pub use session::SessionWindows;
pub use split::{Clock, Grid, OrderedRows, SplitByKey, SplitsByKey};
pub use str_key::{StrKey, StrKeyRef};
pub use table::{Emit, Table};

use crate::errors::EvalError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::hash::Hash;

/// How windows, tables and joins hash their keys: foldhash, randomly seeded (per process
/// and per map). std's SipHash took a twentieth of a windowed job's time; foldhash is
/// faster on short keys and, being seeded, still keeps input crafted to collide from
/// being computed ahead (it calls itself minimally DoS-resistant).
pub(crate) type KeyHasher = foldhash::fast::RandomState;

/// A map of keys hashed with [`KeyHasher`].
pub(crate) type KeyMap<K, V> = HashMap<K, V, KeyHasher>;

/// What flows into and out of a keyed operator (a window, a table, a pattern), and
/// what it is keyed by: generated per spec component.
pub trait Keyed {
    /// The record type flowing in.
    type Input;
    /// The key (a tuple of the key fields' values, or `()` for a global window).
    /// Serializable for checkpoints.
    type Key: Hash + Eq + Ord + Clone + Serialize + DeserializeOwned;
    /// The record type flowing out: for a window, keys, window bounds, aggregates.
    type Output;
}

/// What one window or table computes, generated per spec component.
///
/// `Acc` is a struct with one [`crate::aggregates::Aggregator`] per aggregate of the spec.
pub trait Aggregation: Keyed {
    /// Serializable, like the key, for checkpoints.
    type Acc: Serialize + DeserializeOwned;
    fn new_acc(&self) -> Self::Acc;
    /// Adds one record (with time `t`) to an accumulator. On error the record is rejected.
    fn add(&self, acc: &mut Self::Acc, rec: &Self::Input, t: i64) -> Result<(), EvalError>;
    /// Folds `other` into `acc` (session windows that merge).
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) -> Result<(), EvalError>;
    /// The output record of one key in one window. `update` is true when the window
    /// already fired and fires again because of a late record (within `allowed_lateness`).
    fn output(&self, key: &Self::Key, window: Window, acc: &Self::Acc, update: bool) -> Self::Output;
    /// [`Self::output`] written over `into`, a result handed downstream before: the
    /// generated code reuses what it holds (its strings' buffers). See [`Results`].
    fn output_into(&self, key: &Self::Key, window: Window, acc: &Self::Acc, update: bool, into: &mut Self::Output) {
        *into = self.output(key, window, acc, update);
    }
    /// Approximate heap bytes held by one accumulator (for the state-size metric).
    fn acc_heap_bytes(&self, acc: &Self::Acc) -> usize;
}

/// A half-open window `[start, end)` in Unix ms. For count windows, the times of the
/// first and last record (`end` = last + 1); for tables, the time of the last change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// How far a [`KeyedOperator::prefetch`] hint reaches: a key's state is found in two
/// steps (its entry, then what the entry points to), each a fetch from memory, so a
/// record is shown twice as it comes closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Ask for the key's entry, without reading it.
    Entry,
    /// Shown again later: read the entry (asked for before) and ask for what it points to.
    State,
}

/// What happened to one record given to [`KeyedOperator::process`].
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    /// Added to state (results, if any, are in [`KeyedOperator::emitted`]).
    Added,
    /// Too late: every window it belongs to was already closed (fired, and
    /// `allowed_lateness` passed). The caller routes it to `.late`, dead letters or drops it.
    Late { watermark: i64 },
    /// The state is full (`max_keys`) and the policy is to reject: a dead letter.
    Full { max_keys: usize },
}

/// What to do when a new key (or window of a key) would exceed `max_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// Make room: windows fire the oldest open window early (all its keys); tables evict
    /// the least recently updated keys (the oldest 1/16th of `max_keys`, at least one).
    EvictOldest,
    /// Reject the record: it becomes a dead letter with the reason.
    Reject,
}

/// Options shared by every keyed operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateOptions {
    /// How long a fired window keeps its state for late records (ms, 0 = not at all).
    pub allowed_lateness: i64,
    /// At most this many live accumulators (key × window); `None` = unbounded.
    pub max_keys: Option<usize>,
    pub on_full: OnFull,
}

/// How much state an operator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateSize {
    /// Live accumulators (one per key per open or retained window).
    pub entries: usize,
    /// Approximate bytes: accumulators, keys and the maps holding them.
    pub bytes: usize,
}

/// The interface the generated code drives, the same for every window kind, tables and
/// patterns.
pub trait KeyedOperator<A: Keyed> {
    /// Adds a record with key `key` and time `t`.
    ///
    /// Generic over the borrowed key form `Q` so a lookup of an existing key does not
    /// allocate (`&str` for a `String` key); the key is cloned only when new.
    fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>;
    /// Like [`Self::process`], with the record moved in; an operator that keeps records
    /// overrides it to save a copy.
    fn process_owned<Q>(&mut self, key: &Q, rec: A::Input, t: i64) -> Result<Admit, EvalError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        self.process(key, &rec, t)
    }
    /// A hint: a record with key `key` (and time `t`, when known before it flows) comes a
    /// few records on, so the operator may ask for that key's state from memory now
    /// ([`crate::prefetch`]), and the fetch overlaps the records between. It changes
    /// nothing.
    fn prefetch<Q>(&self, key: &Q, t: Option<i64>, reach: Reach)
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _ = (key, t, reach);
    }
    /// The epoch of the records given to `process` from now on (the source batch they come
    /// from; never decreases). Before the first call, records are tagged with epoch 0.
    fn set_epoch(&mut self, epoch: u64);
    /// The oldest epoch of a record whose effect is held in state and not yet emitted
    /// (in `emitted()` or handed downstream by `drain_emitted` counts as emitted);
    /// `None` when everything added has been emitted.
    fn pending_epoch(&self) -> Option<u64>;
    /// The watermark moved to `wm` (never called with a smaller value than before):
    /// fire what is due, drop what is past its lateness. Returns true when results were
    /// added to [`Self::emitted`].
    fn on_watermark(&mut self, wm: i64) -> bool;
    /// The smallest watermark at which [`Self::on_watermark`] would do something (fire a
    /// window, drop one past its lateness, emit or expire table keys); `None` when no
    /// watermark would. On processing time the driver wakes up then ([`crate::wake`]).
    fn next_due(&self) -> Option<i64> {
        None
    }
    /// Before a step ends, and at a close that fires nothing: an operator whose results
    /// come later than one operator's would (a table emitting each change, sessions or
    /// count windows, split by key across the workers) makes ready every result one
    /// operator would have emitted by now, so that none waits between steps (where
    /// checkpoints are taken). True when results are waiting.
    fn catch_up(&mut self) -> bool {
        false
    }
    /// Why a late record is late, for its dead letter.
    fn late_reason(&self) -> &'static str {
        "every window it belongs to has closed"
    }
    /// End of input or shutdown: fire everything still open.
    fn on_close(&mut self) {
        self.on_watermark(i64::MAX);
    }
    /// Results not yet handed downstream, each with its time (`end - 1` for a window,
    /// the time of the change for a table), in emission order. A queue: results leave
    /// from the front a chunk at a time, so handing out a window of a million keys is
    /// linear (draining a `Vec` from the front moved every remaining result each time).
    fn emitted(&mut self) -> &mut VecDeque<(A::Output, i64)>;
    /// True when results are waiting.
    fn has_emitted(&mut self) -> bool {
        !self.emitted().is_empty()
    }
    /// Moves up to `max` waiting results, oldest first, to `buf`. An operator that can
    /// build its results lazily overrides this, so a window of many keys never holds
    /// all its output records at once.
    fn drain_emitted(&mut self, buf: &mut Results<A::Output>, max: usize) {
        let waiting = self.emitted();
        let n = waiting.len().min(max);
        buf.extend(waiting.drain(..n));
    }
    fn state_size(&self) -> StateSize;
    /// Live entries, as in [`Self::state_size`], without walking the state (read after
    /// every record, to keep the peak).
    fn entries(&self) -> usize;
    /// Counters since the last call: (evicted or early-fired entries, expired table keys).
    fn take_evictions(&mut self) -> (u64, u64) {
        (0, 0)
    }
    /// Brings the state together before [`Self::save_state`] (a window split across the
    /// workers: every part takes the records routed to it). Nothing for the others.
    fn settle(&mut self) {}
    /// Appends the operator's state for a checkpoint (postcard): called between steps,
    /// when every result has been handed downstream, so none is saved; an error if one
    /// still waits. Only state is saved, never configuration (sizes, options, the
    /// aggregation): that comes from the binary, which the checkpoint's spec hash ties
    /// to the state.
    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String>;
    /// Replaces the state of a freshly built operator with what [`Self::save_state`]
    /// wrote. An error, never a panic, for bytes that do not decode.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String>;
}
