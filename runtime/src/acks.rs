//! Acknowledgements: which source positions are safe to commit.
//!
//! At least once means a source that commits positions (offsets, message
//! acknowledgements) may commit one only when every record read up to it has reached
//! every sink it goes to. The pipeline is synchronous, so most of that is already true
//! when a step ends: file and stdout outputs are flushed, dead letters written. Two
//! things are not:
//!
//! - records held in window or table state, whose results have not fired yet;
//! - messages handed to a broker client whose delivery is not yet confirmed.
//!
//! Each batch a committing source reads gets an *epoch*: a number that only grows.
//! Stateful operators report the oldest epoch they still hold unemitted; a message output
//! tags each message with the epoch current when it was sent. When a step ends, every
//! record from an epoch below `floor = min(held, current + 1)` has reached the sinks,
//! but possibly only as unconfirmed messages tagged up to the current epoch. So that
//! floor becomes a *candidate*, confirmed once no message tagged at or below the current
//! epoch is outstanding. The confirmed floor is what sources commit below.
//!
//! One `Acks` is shared (cloned) by the sources, outputs and operators of a pipeline;
//! everything runs on the pipeline's thread.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How often a step proposes a new floor: the operators' scan of their state costs
/// something, and committing more often than this gains nothing.
const PROPOSE_EVERY: Duration = Duration::from_millis(50);

#[derive(Clone, Default)]
pub struct Acks(Rc<State>);

#[derive(Default)]
struct State {
    epoch: Cell<u64>,
    /// Unconfirmed messages by the epoch they were sent in.
    outstanding: RefCell<BTreeMap<u64, u64>>,
    /// `(sent_up_to, floor)`: `floor` holds once nothing sent at or before `sent_up_to`
    /// is outstanding. Floors increase along the queue.
    candidates: RefCell<VecDeque<(u64, u64)>>,
    /// Every record from an epoch below this has been accepted by every sink.
    confirmed: Cell<u64>,
    last_proposal: Cell<Option<Instant>>,
    /// The epoch when the last floor was proposed.
    proposed_epoch: Cell<u64>,
    /// An operator held an epoch at the last proposal: its firing will raise the floor.
    held: Cell<bool>,
    /// Checkpoints are on: only a written checkpoint confirms (see [`Acks::checkpointed`]).
    checkpoints: Cell<bool>,
    /// A checkpoint waits for everything in flight to settle.
    draining: Cell<bool>,
    /// Someone waits for the next confirmation (see [`Acks::hurry`]).
    hurried: Cell<bool>,
}

impl Acks {
    pub fn new() -> Self {
        Acks::default()
    }

    /// The current epoch: the one records being processed now belong to.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.0.epoch.get()
    }

    /// A committing source starts a new batch; returns its epoch.
    pub fn next_epoch(&self) -> u64 {
        let e = self.0.epoch.get() + 1;
        self.0.epoch.set(e);
        e
    }

    /// `count` messages were handed to a producer in epoch `tag`. An output counts them
    /// itself and tells them here in one go when it flushes, before it applies any of
    /// their outcomes; every output is flushed before a step ends, so before `end_step`.
    pub fn sent(&self, tag: u64, count: u64) {
        *self.0.outstanding.borrow_mut().entry(tag).or_insert(0) += count;
    }

    /// `count` messages sent with `tag` are settled: delivered, or written as dead letters.
    pub fn settled(&self, tag: u64, count: u64) {
        let mut outstanding = self.0.outstanding.borrow_mut();
        if let Some(n) = outstanding.get_mut(&tag) {
            *n = n.saturating_sub(count);
            if *n == 0 {
                outstanding.remove(&tag);
            }
        }
    }

    /// Messages sent and not yet settled.
    pub fn in_flight(&self) -> u64 {
        self.0.outstanding.borrow().values().sum()
    }

    /// Someone outside waits for what was read to be confirmed (an HTTP client for its
    /// answer): the next step proposes, however recent the last proposal.
    pub fn hurry(&self) {
        self.0.hurried.set(true);
    }

    /// True when a step should call [`Self::end_step`]: at most every 50 ms, or always
    /// when `force` (the end of the run) or [`Self::hurry`] asked.
    ///
    /// When it is not time yet but something is left to propose or confirm, asks
    /// [`crate::wake`] for a step when it will be, so a sleeping pipeline still commits.
    pub fn due(&self, force: bool) -> bool {
        let last = self.0.last_proposal.get();
        let due = force || self.0.hurried.take() || last.is_none_or(|at| at.elapsed() >= PROPOSE_EVERY);
        if let (false, Some(at)) = (due, last) {
            if self.unsettled() {
                crate::wake::look_again_at(at + PROPOSE_EVERY);
            }
        }
        due
    }

    /// A later proposal may confirm more: batches read since the last one, candidates
    /// waiting for messages in flight, or epochs held by operators.
    fn unsettled(&self) -> bool {
        self.0.epoch.get() != self.0.proposed_epoch.get()
            || self.0.held.get()
            || !self.0.candidates.borrow().is_empty()
            || !self.0.outstanding.borrow().is_empty()
    }

    /// From now on positions are confirmed by checkpoints only: a checkpoint holds the
    /// state of windows and tables, so what they hold no longer keeps commits back, and
    /// nothing is committed that the last written checkpoint does not cover.
    pub fn use_checkpoints(&self) {
        self.0.checkpoints.set(true);
    }

    /// A checkpoint starts (`true`) or stops (`false`) waiting for what is in flight:
    /// outputs that settle on their own schedule (a disk buffer's fsync) settle now.
    pub fn set_draining(&self, draining: bool) {
        self.0.draining.set(draining);
    }

    pub fn draining(&self) -> bool {
        self.0.draining.get()
    }

    /// A checkpoint taken after `epoch`, with nothing in flight, was written: every
    /// record of an epoch up to it is safe (in the checkpoint or delivered).
    pub fn checkpointed(&self, epoch: u64) {
        self.0.candidates.borrow_mut().clear();
        self.0.confirmed.set(self.0.confirmed.get().max(epoch + 1));
    }

    /// A step ended with every output flushed; `held` is the oldest epoch any operator
    /// still holds unemitted. Proposes a new floor and confirms what it can (with
    /// checkpoints on, only checkpoints confirm).
    pub fn end_step(&self, held: Option<u64>) {
        self.0.last_proposal.set(Some(Instant::now()));
        let epoch = self.epoch();
        self.0.proposed_epoch.set(epoch);
        if self.0.checkpoints.get() {
            return;
        }
        self.0.held.set(held.is_some());
        let floor = held.map_or(epoch + 1, |h| h.min(epoch + 1));
        let mut candidates = self.0.candidates.borrow_mut();
        let highest = candidates.back().map_or(self.0.confirmed.get(), |c| c.1);
        if floor > highest {
            candidates.push_back((epoch, floor));
        }
        let oldest_outstanding = self.0.outstanding.borrow().keys().next().copied();
        while let Some(&(sent_up_to, floor)) = candidates.front() {
            if oldest_outstanding.is_some_and(|o| o <= sent_up_to) {
                break;
            }
            self.0.confirmed.set(floor);
            candidates.pop_front();
        }
        drop(candidates);
        if self.unsettled() {
            crate::wake::look_again_within(PROPOSE_EVERY);
        }
    }

    /// Every record from an epoch below this has been accepted by every sink it reaches.
    pub fn confirmed(&self) -> u64 {
        self.0.confirmed.get()
    }
}

/// Messages read and not yet acknowledged, by the epoch of the batch they were read in:
/// what a source acknowledging message by message (MQTT packet ids, Redis stream entry
/// ids) holds until [`Acks::confirmed`] passes their epoch.
#[derive(Debug)]
pub struct Unacked<T> {
    /// Read by the batch being handled now.
    reading: Vec<T>,
    /// Handled batches, oldest first.
    pending: VecDeque<(u64, Vec<T>)>,
}

impl<T> Unacked<T> {
    pub fn new() -> Self {
        Unacked {
            reading: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// The batch being handled now read `item`.
    pub fn read(&mut self, item: T) {
        self.reading.push(item);
    }

    /// The batch was handled in `epoch`: its items wait for that epoch to be confirmed.
    /// `true` when it read any.
    pub fn batch_done(&mut self, epoch: u64) -> bool {
        if self.reading.is_empty() {
            return false;
        }
        self.pending.push_back((epoch, std::mem::take(&mut self.reading)));
        true
    }

    /// Every item not yet confirmed, oldest first (the run ends).
    pub fn take_all(&mut self) -> Vec<T> {
        let mut all: Vec<T> = self.pending.drain(..).flat_map(|(_, items)| items).collect();
        all.append(&mut self.reading);
        all
    }

    /// Takes, oldest first, every item of an epoch below `confirmed`.
    pub fn confirmed(&mut self, confirmed: u64, into: &mut Vec<T>) {
        while self.pending.front().is_some_and(|(epoch, _)| *epoch < confirmed) {
            if let Some((_, items)) = self.pending.pop_front() {
                into.extend(items);
            }
        }
    }
}

impl<T> Default for Unacked<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_wait_for_their_epoch_to_be_confirmed_and_leave_in_order() {
        let mut unacked = Unacked::new();
        unacked.read(1);
        unacked.read(2);
        unacked.batch_done(1);
        unacked.batch_done(2); // an empty batch leaves nothing
        unacked.read(3);
        unacked.batch_done(3);
        unacked.read(4);
        unacked.batch_done(5);
        let mut out = Vec::new();
        unacked.confirmed(1, &mut out);
        assert_eq!(out, Vec::<i32>::new(), "epoch 1 is not below the floor 1");
        unacked.confirmed(4, &mut out);
        assert_eq!(out, [1, 2, 3]);
        unacked.confirmed(4, &mut out);
        assert_eq!(out, [1, 2, 3], "nothing twice");
        unacked.read(6);
        unacked.confirmed(100, &mut out);
        assert_eq!(out, [1, 2, 3, 4], "a batch still being handled is not confirmed");
        unacked.batch_done(6);
        unacked.confirmed(100, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 6]);
    }

    #[test]
    fn a_sleeping_pipeline_is_woken_to_propose_what_is_left_and_then_left_alone() {
        crate::wake::take_next_look();
        let acks = Acks::new();
        assert!(acks.due(false), "never proposed");
        acks.end_step(None);
        assert_eq!(crate::wake::take_next_look(), None, "everything confirmed");
        acks.next_epoch();
        assert!(!acks.due(false), "proposed just now");
        let asked = crate::wake::take_next_look();
        assert!(asked.is_some(), "a batch read since the last proposal");
        acks.sent(1, 1);
        acks.end_step(None);
        assert!(crate::wake::take_next_look().is_some(), "a message in flight");
        acks.settled(1, 1);
        acks.end_step(None);
        assert_eq!(acks.confirmed(), 2);
        assert!(!acks.due(false));
        assert_eq!(crate::wake::take_next_look(), None, "nothing left to confirm");
    }

    #[test]
    fn without_state_or_producers_a_step_confirms_its_own_batches() {
        let acks = Acks::new();
        assert_eq!(acks.next_epoch(), 1);
        assert_eq!(acks.next_epoch(), 2);
        assert_eq!(acks.confirmed(), 0);
        acks.end_step(None);
        assert_eq!(acks.confirmed(), 3, "epochs 1 and 2 are done");
    }

    #[test]
    fn held_state_keeps_the_floor_at_its_oldest_epoch() {
        let acks = Acks::new();
        for _ in 0..5 {
            acks.next_epoch();
        }
        acks.end_step(Some(2));
        assert_eq!(acks.confirmed(), 2, "epoch 2 still held: only epoch 1 is done");
        acks.end_step(Some(4));
        assert_eq!(acks.confirmed(), 4);
        acks.end_step(Some(3));
        assert_eq!(acks.confirmed(), 4, "the floor never moves back");
    }

    #[test]
    fn a_floor_waits_for_messages_sent_up_to_its_step() {
        let acks = Acks::new();
        let a = acks.next_epoch(); // 1
        acks.sent(a, 2);
        acks.end_step(None); // candidate (1, 2): waits for both of `a`
        assert_eq!(acks.confirmed(), 0);
        let b = acks.next_epoch(); // 2
        acks.sent(b, 1);
        acks.end_step(None); // candidate (2, 3)
        assert_eq!(acks.in_flight(), 3);
        acks.settled(b, 1);
        acks.settled(a, 1);
        acks.end_step(None);
        assert_eq!(acks.confirmed(), 0, "one of `a` (epoch 1) is still outstanding");
        acks.settled(a, 1);
        acks.end_step(None);
        assert_eq!(acks.confirmed(), 3);
        assert_eq!(acks.in_flight(), 0);
    }

    #[test]
    fn a_window_firing_later_is_covered_by_the_messages_it_sends() {
        // A record of epoch 1 sits in a window; the window fires in epoch 3 and its
        // result is sent then. Epoch 1 must wait for that message, not for epoch 1's.
        let acks = Acks::new();
        acks.next_epoch();
        acks.end_step(Some(1));
        acks.next_epoch();
        acks.next_epoch();
        acks.sent(3, 1);
        acks.end_step(None);
        assert_eq!(acks.confirmed(), 1, "nothing confirmed while the result is in flight");
        acks.settled(3, 1);
        acks.end_step(None);
        assert_eq!(acks.confirmed(), 4);
    }

    #[test]
    fn with_checkpoints_only_a_written_checkpoint_confirms() {
        let acks = Acks::new();
        acks.use_checkpoints();
        acks.next_epoch();
        acks.next_epoch();
        acks.end_step(Some(1));
        acks.end_step(None);
        assert_eq!(acks.confirmed(), 0, "steps confirm nothing");
        acks.checkpointed(2);
        assert_eq!(acks.confirmed(), 3, "held state is in the checkpoint");
        acks.checkpointed(1);
        assert_eq!(acks.confirmed(), 3, "never back");
    }

    #[test]
    fn proposals_are_rate_limited_unless_forced() {
        let acks = Acks::new();
        assert!(acks.due(false));
        acks.end_step(None);
        assert!(!acks.due(false));
        assert!(acks.due(true));
        acks.hurry();
        assert!(acks.due(false), "hurried");
        acks.end_step(None);
        assert!(!acks.due(false), "one hurry, one proposal");
    }
}
