//! Message sinks: one message per record, each confirmed by the broker later.
//!
//! [`MessageOutput`] is what every such connector shares: it encodes the record into a
//! reused buffer, tags the message with the current epoch of the pipeline's [`Acks`],
//! hands it to the connector's [`MessageSink`], and at each flush applies the outcomes
//! that came back: a delivered message settles its tag; a failed one (after the
//! client's own retries) is written to the dead letters with the reason, then settles.
//! So a source that commits positions commits only what every sink has confirmed.
//!
//! With a disk buffer (`buffer: { type: disk }`, [`MessageOutput::buffered`]) a record
//! is appended to the buffer's log instead, and settles once the fsync covering it is
//! done; [`Buffered`] delivers the log to the sink (see `buffered.rs`). Counters then
//! say: `received` (records offered, plus those found in the log at start) = `sent`
//! (delivered by the destination) + `dead_lettered` (refused by it) + `dropped`
//! (`when_full: drop_oldest`) + `queued` (in the log now, in flight included).

use super::buffered::{Appended, Buffered};
use crate::acks::Acks;
use crate::buffer::BufferOptions;
use crate::dead_letter::DeadLetters;
use crate::driver::Context;
use crate::errors::{EvalError, RecordError, RunError, StartError};
use crate::formats::Encoder;
use crate::internal_events::{Counters, InternalEvent};
use crate::state::Checkpointed;

/// Where one record goes, evaluated per record by generated code: a topic (`None`: the
/// sink's own), a key, headers (a header with a `None` value is left out). A connector
/// reads what it supports; the compiler only allows what it declared.
#[derive(Debug, Clone, Copy, Default)]
pub struct Address<'a> {
    pub topic: Option<&'a str>,
    pub key: Option<&'a str>,
    pub headers: &'a [(&'a str, Option<&'a str>)],
}

/// What became of one message: the tag it was sent with; on failure the reason and the
/// payload (which becomes a dead letter).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub tag: u64,
    pub failure: Option<(String, Vec<u8>)>,
    /// The failure may not happen again later (the destination was down or timed out,
    /// as opposed to refusing the message): a disk buffer sends it again instead of
    /// dead-lettering it.
    pub retriable: bool,
}

impl Outcome {
    /// A delivered message.
    pub fn delivered(tag: u64) -> Self {
        Outcome {
            tag,
            failure: None,
            retriable: false,
        }
    }
}

/// Messages still unconfirmed when a sink was closed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Undelivered {
    pub count: u64,
    pub reason: String,
}

/// A broker client publishing whole messages, each confirmed (or failed) later. All
/// methods run on the pipeline's thread.
pub trait MessageSink {
    /// Queues one message; `tag` comes back in its [`Outcome`]. Waits while the
    /// client's queue is full (back-pressure: bounded, nothing is dropped). `Err` is
    /// the reason the client refused the message outright (too large, say): the
    /// record's error, so it becomes a dead letter per its source's `on_error`.
    fn send(&mut self, payload: &[u8], address: Address<'_>, tag: u64) -> Result<(), String>;

    /// Moves the outcomes that arrived since the last call into `outcomes`, without
    /// waiting. `Err` for a failure retrying cannot fix (a refused TLS certificate).
    fn poll(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError>;

    /// How many messages the client takes unconfirmed before `send` waits for room
    /// (`None`: more than a disk buffer ever hands it, 100,000). A disk buffer sends no
    /// more than that, so a broker that is away never blocks the pipeline: the buffer
    /// grows instead.
    fn max_in_flight(&self) -> Option<usize> {
        None
    }

    /// The run ends: waits (for a while) for every message in flight, moving their
    /// outcomes into `outcomes`. `Err` says how many are still unconfirmed.
    fn close(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), Undelivered>;
}

pub struct MessageOutput<E: Encoder> {
    component: &'static str,
    sink: Box<dyn MessageSink>,
    encoder: E,
    buf: Vec<u8>,
    acks: Acks,
    counters: Counters,
    /// Records offered since the last flush.
    offered: u64,
    /// Messages queued since they were last told to `acks`, all in epoch `.0`: told in
    /// one go, not per message.
    queued: (u64, u64),
    /// Outcomes taken from the sink, reused.
    outcomes: Vec<Outcome>,
    /// Messages handed to the sink whose outcome has not come back: its queue.
    in_flight: u64,
    /// The disk buffer records go to first, if the sink has one.
    buffer: Option<Buffered>,
    /// A buffer that could not take a record: the pipeline stops at the next flush.
    stopped: Option<RunError>,
}

impl<E: Encoder> MessageOutput<E> {
    pub fn new(component: &'static str, sink: Box<dyn MessageSink>, encoder: E, ctx: &Context) -> Self {
        MessageOutput {
            component,
            sink,
            encoder,
            buf: Vec::with_capacity(1024),
            acks: ctx.acks.clone(),
            counters: ctx.events.component(component),
            offered: 0,
            queued: (0, 0),
            outcomes: Vec::new(),
            in_flight: 0,
            buffer: None,
            stopped: None,
        }
    }

    /// A message output whose records go through a disk buffer in the state directory
    /// (a start error without one).
    pub fn buffered(
        component: &'static str,
        sink: Box<dyn MessageSink>,
        encoder: E,
        options: BufferOptions,
        ctx: &Context,
    ) -> Result<Self, StartError> {
        let buffer = Buffered::open(component, options, ctx.state_dir.as_deref())?;
        let mut out = MessageOutput::new(component, sink, encoder, ctx);
        // Records found in the log at start enter the component now.
        out.counters.emit(InternalEvent::Received(buffer.records()));
        out.counters.emit(InternalEvent::Queued(buffer.records()));
        out.buffer = Some(buffer);
        Ok(out)
    }

    pub fn name(&self) -> &'static str {
        self.component
    }

    /// Encodes `rec` as one message (without a trailing newline) and queues it. An
    /// encoding error, or a message the client refuses, is the record's error.
    pub fn send(&mut self, rec: &E::Input, address: Address<'_>) -> Result<(), RecordError> {
        self.offered += 1;
        let tag = self.acks.epoch();
        if tag != self.queued.0 {
            self.register_queued();
            self.queued.0 = tag;
        }
        self.buf.clear();
        self.encoder
            .encode(rec, &mut self.buf)
            .map_err(|e| RecordError::new(self.component, e))?;
        let payload = crate::batch::strip_newline(&self.buf);
        if let Some(buffer) = &mut self.buffer {
            if self.stopped.is_some() {
                // The step fails at its flush: its batch is never acknowledged.
                return Ok(());
            }
            return match buffer.append(payload, address, tag, &mut *self.sink) {
                Ok(()) => {
                    self.queued.1 += 1;
                    Ok(())
                }
                Err(Appended::Record(e)) => Err(e),
                Err(Appended::Run(e)) => {
                    self.stopped = Some(e);
                    Ok(())
                }
            };
        }
        match self.sink.send(payload, address, tag) {
            Ok(()) => {
                self.queued.1 += 1;
                self.in_flight += 1;
                Ok(())
            }
            Err(reason) => Err(RecordError::new(self.component, EvalError::Refused { reason })),
        }
    }

    /// Applies the outcomes that arrived: settles delivered messages, writes failed
    /// ones to `dead` (then settles them: a dead letter is accepted too).
    pub fn flush(&mut self, dead: &mut DeadLetters) -> Result<(), RunError> {
        self.register_queued();
        if self.buffer.is_some() {
            return self.flush_buffered(dead);
        }
        let polled = self.sink.poll(&mut self.outcomes);
        self.counters
            .emit(InternalEvent::Received(std::mem::take(&mut self.offered)));
        self.apply_outcomes(dead);
        if self.acks.in_flight() > 0 {
            // Outcomes arrive without waking the pipeline: look for them as before.
            crate::wake::look_again_within(crate::wake::DEFAULT_LOOK_AGAIN);
        }
        polled
    }

    fn apply_outcomes(&mut self, dead: &mut DeadLetters) {
        let (mut delivered, mut failed) = (0u64, 0u64);
        // Outcomes come mostly in runs of one tag: settled a run at a time.
        let mut run = (0u64, 0u64);
        for outcome in self.outcomes.drain(..) {
            match outcome.failure {
                None => delivered += 1,
                Some((reason, payload)) => {
                    dead.send(self.component, &format!("delivery failed: {reason}"), &payload);
                    failed += 1;
                }
            }
            if outcome.tag != run.0 {
                self.acks.settled(run.0, run.1);
                run = (outcome.tag, 0);
            }
            run.1 += 1;
        }
        self.acks.settled(run.0, run.1);
        self.in_flight = self.in_flight.saturating_sub(delivered + failed);
        self.counters.emit(InternalEvent::Sent(delivered));
        self.counters.emit(InternalEvent::DeadLettered(failed));
        self.counters.emit(InternalEvent::DeliveryFailed(failed));
        self.counters.emit(InternalEvent::Queued(self.in_flight));
    }

    /// With a disk buffer: delivers from the log, syncs it when due, settles what the
    /// sync made safe.
    fn flush_buffered(&mut self, dead: &mut DeadLetters) -> Result<(), RunError> {
        self.counters
            .emit(InternalEvent::Received(std::mem::take(&mut self.offered)));
        let Some(buffer) = &mut self.buffer else {
            return Ok(());
        };
        if let Err(e) = buffer.write_pending(&mut *self.sink) {
            self.stopped.get_or_insert(e);
        }
        let pumped = buffer.pump(&mut *self.sink);
        // A checkpoint waiting for what is in flight does not wait for the next fsync.
        let synced = buffer.sync_if_due(self.acks.draining());
        self.after_buffer(synced, dead);
        if let Some(stopped) = self.stopped.take() {
            return Err(stopped);
        }
        if self.acks.in_flight() > 0 {
            crate::wake::look_again_within(crate::wake::DEFAULT_LOOK_AGAIN);
        }
        pumped
    }

    /// Settles the epochs a buffer sync made safe; counts and dead-letters what the
    /// buffer's deliveries did.
    fn after_buffer(&mut self, synced: Result<Vec<(u64, u64)>, RunError>, dead: &mut DeadLetters) {
        let Some(buffer) = &mut self.buffer else {
            return;
        };
        match synced {
            Ok(safe) => {
                for (epoch, count) in safe {
                    self.acks.settled(epoch, count);
                }
            }
            Err(e) => {
                self.stopped.get_or_insert(e);
            }
        }
        let (counts, letters) = buffer.take();
        for (reason, payload) in letters {
            dead.send(self.component, &reason, &payload);
        }
        self.counters.emit(InternalEvent::Sent(counts.sent));
        self.counters.emit(InternalEvent::DeadLettered(counts.dead_lettered));
        self.counters.emit(InternalEvent::DeliveryFailed(counts.dead_lettered));
        self.counters.emit(InternalEvent::Dropped(counts.dropped));
        self.counters.emit(InternalEvent::Queued(buffer.records()));
        self.counters.emit(InternalEvent::Buffer {
            records: buffer.records(),
            bytes: buffer.disk_bytes(),
        });
    }

    /// Tells `acks` about the messages queued since the last time.
    fn register_queued(&mut self) {
        let (tag, count) = self.queued;
        if count > 0 {
            self.acks.sent(tag, count);
            self.queued.1 = 0;
        }
    }

    /// Waits for every message in flight, then applies the outcomes. Messages still
    /// unconfirmed then make the close fail: their sources' positions stay uncommitted,
    /// so they are read again on the next start.
    pub fn close(&mut self, dead: &mut DeadLetters) -> Result<(), RunError> {
        self.register_queued();
        self.counters
            .emit(InternalEvent::Received(std::mem::take(&mut self.offered)));
        if let Some(buffer) = &mut self.buffer {
            // What is undelivered stays in the log for the next start: not an error.
            let closed = buffer.close(&mut *self.sink);
            self.after_buffer(closed, dead);
            return self.stopped.take().map_or(Ok(()), Err);
        }
        let closed = self.sink.close(&mut self.outcomes);
        self.apply_outcomes(dead);
        closed.map_err(|Undelivered { count, reason }| {
            // Given up on here (and not committed upstream): counted as dropped.
            self.counters.emit(InternalEvent::Dropped(count));
            RunError::new(format!(
                "{}: {count} messages still undelivered at shutdown: {reason}",
                self.component
            ))
        })
    }
}

/// A message output is at least once: a checkpoint is taken with nothing in flight, so
/// everything before it was confirmed by the broker; what follows it may be sent again
/// after a crash. It saves nothing.
impl<E: Encoder> Checkpointed for MessageOutput<E> {
    fn section(&self) -> &'static str {
        self.component
    }
    fn save(&mut self, _out: &mut Vec<u8>) -> Result<(), RunError> {
        Ok(())
    }
    fn restore(&mut self, _saved: &[u8]) -> Result<(), StartError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::JsonEncoder;
    use crate::settings::Settings;
    use crate::sinks::tests::MemSink;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Payload, topic and tag of a message sent.
    type Sent = (Vec<u8>, Option<String>, u64);

    /// A broker that confirms what it is told to, when it is told to.
    #[derive(Clone, Default)]
    struct Scripted {
        sent: Rc<RefCell<Vec<Sent>>>,
        ready: Rc<RefCell<Vec<Outcome>>>,
    }

    impl MessageSink for Scripted {
        fn send(&mut self, payload: &[u8], address: Address<'_>, tag: u64) -> Result<(), String> {
            if payload.len() > 20 {
                return Err("message too large".into());
            }
            let topic = address.topic.map(str::to_owned);
            self.sent.borrow_mut().push((payload.to_vec(), topic, tag));
            Ok(())
        }
        fn poll(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError> {
            outcomes.append(&mut self.ready.borrow_mut());
            Ok(())
        }
        fn close(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), Undelivered> {
            self.poll(outcomes).ok();
            let unconfirmed = self.sent.borrow().len() as u64 - 2;
            match unconfirmed {
                0 => Ok(()),
                count => Err(Undelivered {
                    count,
                    reason: "broker gone".into(),
                }),
            }
        }
    }

    #[test]
    fn outcomes_settle_acks_and_failures_become_dead_letters() {
        let ctx = Context::new(Settings::from_values(vec![]), 8);
        let broker = Scripted::default();
        let mut out = MessageOutput::new(
            "sinks.out",
            Box::new(broker.clone()),
            JsonEncoder::<serde_json::Value>::new(),
            &ctx,
        );
        let letters = MemSink::default();
        let mut dead = DeadLetters::to_sinks(vec![Box::new(letters.clone())]);
        let epoch = ctx.acks.next_epoch();
        let to = |topic| Address {
            topic: Some(topic),
            ..Address::default()
        };
        assert_eq!(out.send(&serde_json::json!({"n": 1}), to("a/1")), Ok(()));
        assert_eq!(out.send(&serde_json::json!({"n": 2}), Address::default()), Ok(()));
        let refused = out.send(&serde_json::json!({"n": "far too long to fit"}), to("a/3"));
        assert_eq!(refused.err().map(|e| e.component), Some("sinks.out"));
        assert_eq!(
            broker.sent.borrow()[0],
            (b"{\"n\":1}".to_vec(), Some("a/1".to_string()), epoch),
            "no trailing newline; tagged with the epoch"
        );
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(ctx.acks.in_flight(), 2, "nothing confirmed yet");
        assert_eq!(ctx.events.snapshot()[0].1.queued, 2, "two in the sink's queue");
        broker.ready.borrow_mut().extend([
            Outcome::delivered(epoch),
            Outcome {
                tag: epoch,
                failure: Some(("timed out".into(), b"{\"n\":2}".to_vec())),
                retriable: true,
            },
        ]);
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(ctx.acks.in_flight(), 0);
        assert_eq!(dead.flush(), Ok(()));
        let letter: serde_json::Value = serde_json::from_slice(&letters.data.borrow()).unwrap_or_default();
        assert_eq!(
            (&letter["component"], &letter["reason"], &letter["record"]),
            (
                &serde_json::json!("sinks.out"),
                &serde_json::json!("delivery failed: timed out"),
                &serde_json::json!("{\"n\":2}")
            )
        );
        let c = ctx.events.snapshot()[0].1;
        assert_eq!((c.received, c.sent, c.dead_lettered), (3, 1, 1));
        assert_eq!((c.delivery_failures, c.queued), (1, 0));
    }

    #[test]
    fn a_close_with_messages_unconfirmed_fails_and_counts_them_dropped() {
        let ctx = Context::new(Settings::from_values(vec![]), 8);
        let broker = Scripted::default();
        let mut out = MessageOutput::new(
            "sinks.out",
            Box::new(broker.clone()),
            JsonEncoder::<serde_json::Value>::new(),
            &ctx,
        );
        let mut dead = DeadLetters::stderr();
        for n in 0..5 {
            assert_eq!(out.send(&serde_json::json!(n), Address::default()), Ok(()));
        }
        broker.ready.borrow_mut().push(Outcome::delivered(0));
        broker.ready.borrow_mut().push(Outcome::delivered(0));
        let err = out.close(&mut dead).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("sinks.out: 3 messages still undelivered at shutdown: broker gone")
        );
        let c = ctx.events.snapshot()[0].1;
        assert_eq!((c.received, c.sent, c.dropped), (5, 2, 3));
    }
}
