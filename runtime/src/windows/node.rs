//! [`Stateful`]: a window or table as the generated code drives it.
//!
//! Wraps a [`KeyedOperator`] with what is the same for every kind: the component name
//! for errors and counters, a watermark that only moves forward, where late records and
//! failed results go, and the state-size samples.

use super::{Admit, Keyed, KeyedOperator, Reach, Results};
use crate::acks::Acks;
use crate::dead_letter::DeadLetters;
use crate::driver::Context;
use crate::errors::{EvalError, RecordError, RunError, StartError};
use crate::internal_events::{Counters, Events, InternalEvent};
use crate::sinks::{EncodeAnywhere, Encoding, Output};
use crate::sources::OnError;
use crate::state::Checkpointed;
use crate::time::format_rfc3339;
use serde::Serialize;
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// How often the state size is measured (it walks every accumulator).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Results handed downstream at a time: a window of many keys fires in chunks, so its
/// output records never all exist at once.
pub const EMIT_CHUNK: usize = 256;

/// Chunks [`Stateful::emit_encoded_elsewhere`] keeps on the workers' queue before it
/// waits for the oldest: the workers also decode the input, a batch taking as long as
/// a few chunks.
const CHUNKS_ELSEWHERE: usize = 4;

/// Results in a chunk encoded on a worker: handing one over costs a wake-up.
const CHUNK_ELSEWHERE: usize = 1024;

/// The fewest results worth a worker's wake-up: the last chunk of a firing goes to a
/// worker when it has this many (the hopping benchmark's slide of 10,000 keys ends in
/// one of ~800), and is encoded here when it has fewer (a table emitting each change).
const FEWEST_ELSEWHERE: usize = CHUNK_ELSEWHERE / 8;

pub struct Stateful<A: Keyed, O: KeyedOperator<A>> {
    name: &'static str,
    op: O,
    watermark: i64,
    /// For a result that fails further down (an expression error, an encode error).
    on_error: OnError,
    counters: Counters,
    events: Events,
    last_sample: Option<Instant>,
    /// The most entries the state held since the last sample. State only grows when a
    /// record is added, so reading the (cheap) entry count after each one catches the
    /// peak that a sample once a second would miss (just before a window fires).
    peak_entries: usize,
    /// Records given to `process`, and those folded into state, since the counters were
    /// last updated (kept local: an atomic add per record would cost more than the
    /// aggregation).
    received: u64,
    aggregated: u64,
    buffer: Results<A::Output>,
    /// The other buffers of [`Self::emit_encoded_elsewhere`].
    spares: Vec<Results<A::Output>>,
    /// The epoch of the records coming in (see [`crate::acks`]), told to the operator
    /// when it changes.
    acks: Acks,
    epoch: u64,
    _agg: PhantomData<A>,
}

impl<A: Keyed, O: KeyedOperator<A>> Stateful<A, O> {
    pub fn new(name: &'static str, op: O, on_error: OnError, ctx: &Context) -> Self {
        Stateful {
            name,
            op,
            watermark: i64::MIN,
            on_error,
            counters: ctx.events.component(name),
            events: ctx.events.clone(),
            last_sample: None,
            peak_entries: 0,
            received: 0,
            aggregated: 0,
            buffer: Results::default(),
            spares: Vec::new(),
            acks: ctx.acks.clone(),
            epoch: 0,
            _agg: PhantomData,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds a record. `Admit::Full` comes back as an error, so the record becomes a dead
    /// letter (per its source's `on_error`) with the reason.
    #[inline]
    pub fn process<Q>(&mut self, key: &Q, rec: &A::Input, t: i64) -> Result<Admit, RecordError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        self.admit(|op| op.process(key, rec, t))
    }

    /// A record with key `key` comes soon: see [`KeyedOperator::prefetch`].
    #[inline]
    pub fn prefetch<Q>(&self, key: &Q, t: Option<i64>, reach: Reach)
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.op.prefetch(key, t, reach);
    }

    /// Like [`Self::process`], with the record moved in: for an operator that keeps it
    /// (a join of two streams), no copy.
    #[inline]
    pub fn process_owned<Q>(&mut self, key: &Q, rec: A::Input, t: i64) -> Result<Admit, RecordError>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = A::Key>,
    {
        self.admit(|op| op.process_owned(key, rec, t))
    }

    #[inline]
    fn admit(&mut self, add: impl FnOnce(&mut O) -> Result<Admit, EvalError>) -> Result<Admit, RecordError> {
        self.received += 1;
        let epoch = self.acks.epoch();
        if epoch != self.epoch {
            self.epoch = epoch;
            self.op.set_epoch(epoch);
        }
        let admitted = add(&mut self.op);
        self.peak_entries = self.peak_entries.max(self.op.entries());
        match admitted {
            Ok(Admit::Full { max_keys }) => Err(RecordError::new(self.name, EvalError::StateFull { max_keys })),
            Ok(Admit::Added) => {
                self.aggregated += 1;
                Ok(Admit::Added)
            }
            Ok(admit) => Ok(admit),
            Err(e) => Err(RecordError::new(self.name, e)),
        }
    }

    /// The oldest epoch whose records this operator holds without having emitted their
    /// effect: their offsets must not be committed yet.
    pub fn pending_epoch(&self) -> Option<u64> {
        self.op.pending_epoch()
    }

    /// Moves the watermark forward (`None`: every input is idle; a smaller value: an input
    /// rejoined late). True when results are waiting in [`Self::take_emitted`].
    #[inline]
    pub fn advance(&mut self, watermark: Option<i64>) -> bool {
        match watermark {
            Some(wm) if wm > self.watermark => {
                self.watermark = wm;
                self.op.on_watermark(wm)
            }
            _ => false,
        }
    }

    /// True when a record or a watermark left results to hand downstream.
    #[inline]
    pub fn has_emitted(&mut self) -> bool {
        self.op.has_emitted()
    }

    /// The buffer results are handed over in; give it back with [`Self::restore_buffer`]
    /// so its rows are reused. Generated code:
    /// `let mut b = take_buffer(); while next_results(&mut b) { for r in b.as_slice() {..} } restore_buffer(b)`.
    pub fn take_buffer(&mut self) -> Results<A::Output> {
        std::mem::take(&mut self.buffer)
    }

    /// Fills `buf` with the next waiting results, at most [`EMIT_CHUNK`], in place of
    /// the last chunk's; false when there were none.
    pub fn next_results(&mut self, buf: &mut Results<A::Output>) -> bool {
        self.next_results_up_to(buf, EMIT_CHUNK)
    }

    fn next_results_up_to(&mut self, buf: &mut Results<A::Output>, max: usize) -> bool {
        buf.clear();
        self.op.drain_emitted(buf, max);
        if buf.is_empty() {
            // The loop's last call, every time: no atomic add for nothing.
            return false;
        }
        self.counters.emit(InternalEvent::Emitted(buf.len() as u64));
        true
    }

    pub fn restore_buffer(&mut self, mut buf: Results<A::Output>) {
        buf.clear();
        self.buffer = buf;
    }

    /// Hands every waiting result to `output`, its only consumer, as the loop above with
    /// `output.send` would, each chunk encoded on a worker while the next is built (see
    /// [`crate::sinks::Output::encode_elsewhere`]) and a last one of fewer than
    /// [`FEWEST_ELSEWHERE`] sent here; one that fails to encode is a dead letter. The
    /// buffers' rows are kept to be written over.
    pub fn emit_encoded_elsewhere<E>(&mut self, output: &mut Output<E>, dead: &mut DeadLetters)
    where
        E: EncodeAnywhere<Input = A::Output>,
        A::Output: Send + Serialize + 'static,
    {
        let mut building = self.take_buffer();
        let mut spares = std::mem::take(&mut self.spares);
        let mut encoding: VecDeque<Encoding<E>> = VecDeque::new();
        let finish = |node: &mut Self, output: &mut Output<E>, dead: &mut DeadLetters, encoding: &mut VecDeque<_>| {
            let oldest = encoding.pop_front().expect("a chunk in flight");
            let (rows, failed) = output.finish(oldest, encoding);
            for (at, e) in failed {
                node.result_failed(dead, &e, &rows.as_slice()[at].0);
            }
            rows
        };
        while self.next_results_up_to(&mut building, CHUNK_ELSEWHERE) {
            if building.len() < FEWEST_ELSEWHERE {
                // The last rows, too few for a worker's wake-up (a table emitting each
                // change has one). They follow the chunks in flight.
                while !encoding.is_empty() {
                    spares.push(finish(self, output, dead, &mut encoding));
                }
                for (rec, _) in building.as_slice() {
                    if let Err(e) = output.send(rec) {
                        self.result_failed(dead, &e, rec);
                    }
                }
                continue;
            }
            let next = spares.pop().unwrap_or_default();
            encoding.push_back(output.encode_elsewhere(std::mem::replace(&mut building, next)));
            if encoding.len() > CHUNKS_ELSEWHERE {
                spares.push(finish(self, output, dead, &mut encoding));
            }
        }
        while !encoding.is_empty() {
            spares.push(finish(self, output, dead, &mut encoding));
        }
        self.restore_buffer(building);
        self.spares = spares;
    }

    /// A late record with no `.late` consumer and no `late: drop`: a dead letter.
    pub fn late_to_dead_letters<T: Serialize>(&self, dead: &mut DeadLetters, rec: &T, t: i64, watermark: i64) {
        let reason = format!(
            "late: event time {} is behind the watermark {} and {}",
            format_rfc3339(t),
            format_rfc3339(watermark),
            self.op.late_reason()
        );
        dead.send_record(self.name, &reason, rec);
        self.counters.emit(InternalEvent::Late(1));
        self.counters.emit(InternalEvent::DeadLettered(1));
    }

    /// A late record dropped (`late: drop`) or sent to `.late` (`dropped` false): counted.
    pub fn late_counted(&self, dropped: bool) {
        self.counters.emit(InternalEvent::Late(1));
        self.counters.emit(match dropped {
            true => InternalEvent::Dropped(1),
            false => InternalEvent::Sent(1),
        });
    }

    /// A result that failed further down the pipeline: per this component's `on_error`.
    /// Each branch that failed gets its own dead letter, counted by the component that
    /// failed; a failure of this component's own `select` counts as `results_failed`
    /// (the result was never a record it received).
    pub fn result_failed<T: Serialize>(&self, dead: &mut DeadLetters, e: &RecordError, rec: &T) {
        for (name, error) in e.failures() {
            let component = self.events.component(name);
            let own = name == self.name;
            if own {
                component.emit(InternalEvent::ResultsFailed(1));
            }
            match self.on_error {
                OnError::Drop if own => {}
                OnError::Drop => component.emit(InternalEvent::Dropped(1)),
                OnError::DeadLetter | OnError::Fail => {
                    dead.send_record(name, &error.to_string(), rec);
                    if !own {
                        component.emit(InternalEvent::DeadLettered(1));
                    }
                }
            }
        }
    }

    /// The watermark the operator has seen, for its checkpoint.
    fn saved_header(&self) -> [u8; 8] {
        self.watermark.to_le_bytes()
    }

    /// Records the state size at most once per second (or now, when `force`), and the
    /// peak entry count since the last sample.
    ///
    /// Called once per step: publishes the watermark (one store, never per record) and
    /// tells [`crate::wake`] how far this operator's watermark must move before it has
    /// something to do. (Relative, so an event-time operator in a pipeline that also has
    /// a processing-time source asks for a wake-up that many ms later, never for one in
    /// the past, over and over.)
    pub fn sample(&mut self, force: bool) {
        self.counters.emit(InternalEvent::Watermark(self.watermark));
        match self.op.next_due() {
            Some(due) if due > self.watermark && self.watermark > i64::MIN => {
                crate::wake::watermark_due_in(due.saturating_sub(self.watermark));
            }
            _ => {}
        }
        let now = Instant::now();
        if let Some(last) = self
            .last_sample
            .filter(|t| !force && now.duration_since(*t) < SAMPLE_EVERY)
        {
            // Records taken in since the last sample are published by the next one: a
            // pipeline that then sleeps for want of input wakes for it, so `/metrics`
            // is never more than a second behind.
            if self.received > 0 || self.aggregated > 0 {
                crate::wake::look_again_at(last + SAMPLE_EVERY);
            }
            return;
        }
        self.last_sample = Some(now);
        self.counters
            .emit(InternalEvent::Received(std::mem::take(&mut self.received)));
        self.counters
            .emit(InternalEvent::Aggregated(std::mem::take(&mut self.aggregated)));
        let size = self.op.state_size();
        let peak = std::mem::replace(&mut self.peak_entries, size.entries).max(size.entries);
        self.counters.emit(InternalEvent::State {
            entries: size.entries as u64,
            peak_entries: peak as u64,
            bytes: size.bytes as u64,
        });
        let (evicted, expired) = self.op.take_evictions();
        self.counters.emit(InternalEvent::Evicted(evicted));
        self.counters.emit(InternalEvent::Expired(expired));
    }

    /// Before a step ends: see [`KeyedOperator::catch_up`]. True when results are
    /// waiting.
    pub fn catch_up(&mut self) -> bool {
        self.op.catch_up()
    }

    /// End of input or shutdown: measures the state (and publishes the counts) one
    /// last time, then, with `fire`, fires everything still open. Without it (a stop
    /// with checkpoints) the open state waits in the final checkpoint. True when
    /// results are waiting.
    pub fn close(&mut self, fire: bool) -> bool {
        if !fire {
            // Results of records taken are never held back (a failed step ended before
            // catching up); and the last sample counts every record.
            let caught_up = self.op.catch_up();
            self.sample(true);
            return caught_up;
        }
        // (A split operator's parts may not have taken every record yet: its state gauge
        // lags by those, as between steps.)
        self.sample(true);
        // Everything fires, the results of records taken with it. (Not after catching
        // up: a split operator would fire twice, the second firing over the first's
        // rows before they were handed on.)
        self.op.on_close();
        let (evicted, expired) = self.op.take_evictions();
        self.counters.emit(InternalEvent::Evicted(evicted));
        self.counters.emit(InternalEvent::Expired(expired));
        self.has_emitted()
    }
}

impl<A: super::Aggregation> Stateful<A, super::Table<A>> {
    /// A table's current row of `key`, as a lookup join reads it.
    #[inline]
    pub fn current<Q>(&self, key: &Q) -> Option<A::Output>
    where
        A::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.op.current(key)
    }
}

/// A window's or table's checkpoint: its watermark, then the operator's state.
impl<A: Keyed, O: KeyedOperator<A>> Checkpointed for Stateful<A, O> {
    fn section(&self) -> &'static str {
        self.name
    }
    fn save(&mut self, out: &mut Vec<u8>) -> Result<(), RunError> {
        out.extend_from_slice(&self.saved_header());
        self.op.settle();
        self.op
            .save_state(out)
            .map_err(|e| RunError::new(format!("{}: cannot save state: {e}", self.name)))
    }
    fn restore(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let bad = |e: String| StartError::new(format!("{}: the checkpoint's state does not fit: {e}", self.name));
        let (header, state) = saved
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("shorter than its header".into()))?;
        self.watermark = i64::from_le_bytes(*header);
        self.op.restore_state(state).map_err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use crate::windows::state::testing::{opts, CountSum};
    use crate::windows::{FixedWindows, Window};

    #[test]
    fn the_peak_state_counts_entries_that_fired_between_samples() {
        let ctx = Context::new(Settings::from_values(vec![]), 1);
        let op = FixedWindows::new(CountSum, 10_000, 10_000, 0, opts(0));
        let mut node = Stateful::new("windows.w", op, OnError::DeadLetter, &ctx);
        node.sample(true);
        for key in ["a", "b", "c"] {
            let admitted = node.process(key, &(key.to_owned(), 1), 1_000);
            assert_eq!(admitted, Ok(Admit::Added));
        }
        // The window fires before the next sample: the state is empty when measured.
        assert!(node.advance(Some(10_000)));
        node.sample(true);
        node.close(true);
        let summary = ctx.events.snapshot();
        assert_eq!(summary[0].0, "windows.w");
        assert_eq!(summary[0].1.state_entries, 3);
    }

    #[test]
    fn each_step_says_how_far_the_watermark_must_move_for_the_next_window() {
        let ctx = Context::new(Settings::from_values(vec![]), 1);
        let op = FixedWindows::new(CountSum, 10_000, 10_000, 0, opts(0));
        let mut node = Stateful::new("windows.w", op, OnError::DeadLetter, &ctx);
        crate::wake::take_next_look();
        assert_eq!(node.process("a", &("a".to_owned(), 1), 12_000), Ok(Admit::Added));
        crate::wake::watermarks_follow_the_wall_clock();
        node.sample(false);
        assert_eq!(
            crate::wake::take_next_look(),
            None,
            "no watermark yet: nothing to measure from"
        );
        node.advance(Some(15_000));
        crate::wake::watermarks_follow_the_wall_clock();
        node.sample(false);
        let next = crate::wake::take_next_look().unwrap_or_else(|| panic!("the window's end"));
        let wait = next.saturating_duration_since(std::time::Instant::now());
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(5),
            "{wait:?}"
        );
    }

    #[test]
    fn records_not_yet_published_wake_a_sleeping_pipeline_for_the_next_sample() {
        let ctx = Context::new(Settings::from_values(vec![]), 1);
        let op = FixedWindows::new(CountSum, 10_000, 10_000, 0, opts(0));
        let mut node = Stateful::new("windows.w", op, OnError::DeadLetter, &ctx);
        node.sample(false);
        crate::wake::take_next_look();
        node.sample(false);
        assert_eq!(crate::wake::take_next_look(), None, "nothing new: nothing to wake for");
        assert_eq!(node.process("a", &("a".to_owned(), 1), 12_000), Ok(Admit::Added));
        node.sample(false);
        let next = crate::wake::take_next_look().unwrap_or_else(|| panic!("a look at the next sample"));
        assert!(next <= std::time::Instant::now() + SAMPLE_EVERY, "within a second");
        let received = |ctx: &Context| ctx.events.component("windows.w").snapshot().received;
        assert_eq!(received(&ctx), 0, "not published before the second is up");
        node.last_sample = node.last_sample.map(|t| t - SAMPLE_EVERY);
        node.sample(false);
        assert_eq!(received(&ctx), 1, "published by the sample it woke for");
        assert_eq!(crate::wake::take_next_look(), None);
    }

    #[test]
    fn a_checkpoint_restores_the_watermark_and_the_window() {
        let ctx = Context::new(Settings::from_values(vec![]), 1);
        let make = || {
            let op = FixedWindows::new(CountSum, 10_000, 10_000, 0, opts(0));
            Stateful::new("windows.w", op, OnError::DeadLetter, &ctx)
        };
        let mut node = make();
        assert_eq!(node.process("a", &("a".to_owned(), 1), 12_000), Ok(Admit::Added));
        assert!(!node.advance(Some(15_000)));
        let mut saved = Vec::new();
        node.save(&mut saved).expect("saved");
        let mut restored = make();
        restored.restore(&saved).expect("restored");
        assert_eq!(restored.watermark, 15_000);
        assert!(restored.restore(&saved[..5]).is_err(), "shorter than the watermark");
        assert_eq!(
            restored.process("a", &("a".to_owned(), 2), 9_000),
            Ok(Admit::Late { watermark: 15_000 }),
            "the restored operator knows the watermark too"
        );
        assert!(restored.advance(Some(20_000)));
        let mut results = Results::default();
        assert!(restored.next_results(&mut results));
        assert_eq!(
            results.as_slice(),
            [(
                (
                    "a".to_owned(),
                    Window {
                        start: 10_000,
                        end: 20_000
                    },
                    1,
                    1,
                    false
                ),
                19_999
            )]
        );
    }
}
