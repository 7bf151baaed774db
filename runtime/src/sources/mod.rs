//! Sources: where records come from.
//!
//! Two layers, so connectors and formats stay independent: a [`RawSource`] (each
//! connector's, under [`crate::connectors`]) only frames bytes or receives messages
//! into records, and [`Source`]
//! decodes them with a [`Decoder`], hands each typed record to the generated flow
//! function, and routes every bad record according to its [`OnError`]. Dynamic dispatch
//! happens once per batch (`Box<dyn RawSource>`); the per-record work is monomorphic.

pub(crate) mod framing;

use crate::batch::{MetaView, RawBatch};
use crate::driver::Context;
use crate::errors::{DecodeError, RecordError, RunError, StartError};
use crate::formats::Decoder;
use crate::internal_events::{Counters, Events, InternalEvent};
use crate::sinks::Outputs;
use crate::state::Checkpointed;
use std::time::Duration;

/// What one poll of a source produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Records were added to the batch, or more input is waiting (a poll that read its
    /// fill of bytes without a line ending in them adds none).
    Ready,
    /// Nothing now; poll again later.
    Idle,
    /// The source is exhausted and will produce nothing more.
    Finished,
}

impl Poll {
    /// `Ready` when `batch` received records, else `otherwise` (`Idle` or `Finished`).
    pub fn unless_filled(batch: &RawBatch, otherwise: Poll) -> Poll {
        if batch.is_empty() {
            otherwise
        } else {
            Poll::Ready
        }
    }
}

/// A source of raw records (bytes, one record per entry; a trailing `'\n'` / `"\r\n"`
/// is stripped).
pub trait RawSource {
    /// Appends at most `max` records to `batch` (which the caller has cleared). Must not
    /// block for long (~50 ms at most), so shutdown and other sources stay responsive.
    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError>;

    /// After a poll that found nothing: how long the source may be left alone before it
    /// is polled again. `None` when it wakes the pipeline itself ([`crate::wake::notify`])
    /// whenever something arrives or goes wrong, as sources read by a thread do. A source
    /// that can do neither keeps the default: looked at every
    /// [`crate::wake::DEFAULT_LOOK_AGAIN`].
    fn idle_for(&self) -> Option<Duration> {
        Some(crate::wake::DEFAULT_LOOK_AGAIN)
    }

    /// Every record of the last batch was handled and every output flushed; a source
    /// that commits positions may now count the batch as processed (not yet as safe:
    /// see [`crate::acks`]).
    fn batch_done(&mut self) {}

    /// Commits the positions that the pipeline's [`crate::acks::Acks`] confirm (offsets,
    /// message acknowledgements). Only sources that commit positions do anything.
    fn commit(&mut self) -> Result<(), RunError> {
        Ok(())
    }

    /// The run ends (after every output was closed): commit what is confirmed, and
    /// leave the broker cleanly.
    fn close(&mut self) -> Result<(), RunError> {
        Ok(())
    }

    /// For a checkpoint: where the next record starts, everything before it handled
    /// (a file's offset, Kafka's offsets per partition). Empty when there is nothing to
    /// resume from here (stdin; MQTT, whose broker keeps what was not acknowledged).
    fn position(&self) -> Vec<u8> {
        Vec::new()
    }

    /// On restore, before the first poll: continue from what [`Self::position`] saved.
    fn resume(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let _ = saved;
        Ok(())
    }
}

/// Copies a message's metadata (its topic, key, ..) into the record's metadata fields.
pub type Attach<T> = fn(&mut T, &MetaView<'_>);

/// What to do with a record that fails to decode or to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Send it, with the reason, to the dead-letter output.
    DeadLetter,
    /// Count it and move on.
    Drop,
    /// Stop the pipeline.
    Fail,
}

/// Longest piece of a bad record quoted in a fatal error message.
const MAX_QUOTED: usize = 512;

/// A raw source plus its decoder, error policy and reusable batch.
pub struct Source<D: Decoder> {
    name: &'static str,
    raw: Box<dyn RawSource>,
    decoder: D,
    on_error: OnError,
    batch: RawBatch,
    batch_size: usize,
    counters: Counters,
    events: Events,
    finished: bool,
    attach: Option<Attach<D::Output>>,
}

impl<D: Decoder> Source<D> {
    pub fn new(name: &'static str, raw: Box<dyn RawSource>, decoder: D, on_error: OnError, ctx: &Context) -> Self {
        Source {
            name,
            raw,
            decoder,
            on_error,
            batch: RawBatch::new(),
            batch_size: ctx.batch_size.max(1),
            counters: ctx.events.component(name),
            events: ctx.events.clone(),
            finished: false,
            attach: None,
        }
    }

    /// Fills the record's metadata fields from each message before it flows on.
    pub fn with_metadata(mut self, attach: Attach<D::Output>) -> Self {
        self.attach = Some(attach);
        self
    }

    /// See [`RawSource::commit`].
    pub fn commit(&mut self) -> Result<(), RunError> {
        self.raw.commit()
    }

    /// See [`RawSource::close`].
    pub fn close(&mut self) -> Result<(), RunError> {
        self.raw.close()
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Polls once; decodes each record; calls `flow` for each; routes decode errors and
    /// flow errors per `on_error`; flushes `out` if anything was processed. After
    /// `Finished`, further polls return `Finished` without touching the raw source.
    ///
    /// `flow` is generic rather than a `fn` pointer so that each source's
    /// flow function is called directly and inlined: no indirect call per record.
    pub fn poll<O: Outputs, F: Fn(&D::Output, &mut O) -> Result<(), RecordError>>(
        &mut self,
        out: &mut O,
        flow: F,
    ) -> Result<Poll, RunError> {
        if self.finished {
            return Ok(Poll::Finished);
        }
        self.batch.clear();
        let polled = self.raw.poll(&mut self.batch, self.batch_size)?;
        if polled == Poll::Finished {
            self.finished = true;
        }
        if self.batch.is_empty() {
            if polled == Poll::Idle {
                if let Some(after) = self.raw.idle_for() {
                    crate::wake::look_again_within(after);
                }
            }
            return Ok(polled);
        }
        let (mut received, mut passed) = (0u64, 0u64);
        let mut failure = None;
        for (i, record) in self.batch.iter().enumerate() {
            let decoded = match self.batch.failure(i) {
                Some(reason) => Err(DecodeError::new(reason)),
                None => self.decoder.decode(record),
            };
            if !matches!(decoded, Ok(None)) {
                received += 1;
            }
            let handled = match decoded {
                Ok(Some(mut value)) => {
                    if let (Some(attach), Some(meta)) = (self.attach, self.batch.meta(i)) {
                        attach(&mut value, &meta);
                    }
                    // Handed on: what happens further down is counted there.
                    passed += 1;
                    match flow(&value, out) {
                        Ok(()) => Ok(()),
                        // Every failure is counted, even after one that stops the run.
                        Err(e) => {
                            let mut stop = Ok(());
                            for (component, error) in e.failures() {
                                let handled =
                                    bad_record(&self.events, self.on_error, component, &error.to_string(), record, out);
                                stop = stop.and(handled);
                            }
                            stop
                        }
                    }
                }
                Ok(None) => Ok(()),
                Err(e) => {
                    let reason = match self.batch.origin(i) {
                        Some(origin) => format!("{} (from {origin})", e.reason),
                        None => e.reason,
                    };
                    bad_record(&self.events, self.on_error, self.name, &reason, record, out)
                }
            };
            if let Err(e) = handled {
                failure = Some(e);
                break;
            }
        }
        // Counted before a possible failure returns, so the exit summary is accurate.
        // Non-records (blank lines, a CSV header) are not counted.
        self.counters.emit(InternalEvent::Received(received));
        self.counters.emit(InternalEvent::Sent(passed));
        self.counters.emit(InternalEvent::BytesRead(self.batch.bytes() as u64));
        if let Some(e) = failure {
            return Err(e);
        }
        out.flush()?;
        self.raw.batch_done();
        Ok(match polled {
            Poll::Idle => Poll::Ready,
            other => other,
        })
    }
}

/// A source's checkpoint is its raw source's position.
impl<D: Decoder> Checkpointed for Source<D> {
    fn section(&self) -> &'static str {
        self.name
    }
    /// The raw source's position and what the decoder learnt (a CSV header).
    fn save(&mut self, out: &mut Vec<u8>) -> Result<(), RunError> {
        crate::state::save_value(self.name, &(self.raw.position(), self.decoder.save_state()), out)
    }
    fn restore(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let (position, decoder): (Vec<u8>, Vec<u8>) = crate::state::restore_value(self.name, saved)?;
        let fail = |e: String| StartError::new(format!("{}: {e}", self.name));
        self.decoder.restore_state(&decoder).map_err(fail)?;
        self.raw.resume(&position).map_err(|e| fail(e.message().to_owned()))
    }
}

/// Applies the error policy to one bad record. Only `Fail` returns an error.
fn bad_record<O: Outputs>(
    events: &Events,
    on_error: OnError,
    component: &'static str,
    reason: &str,
    record: &[u8],
    out: &mut O,
) -> Result<(), RunError> {
    match on_error {
        OnError::DeadLetter => {
            out.dead_letters().send(component, reason, record);
            events.component(component).emit(InternalEvent::DeadLettered(1));
            Ok(())
        }
        OnError::Drop => {
            events.component(component).emit(InternalEvent::Dropped(1));
            Ok(())
        }
        OnError::Fail => {
            // Not passed on: counted, so the counters still add up after the failure.
            events.component(component).emit(InternalEvent::Dropped(1));
            let quoted = &record[..record.len().min(MAX_QUOTED)];
            let ellipsis = if record.len() > MAX_QUOTED { "…" } else { "" };
            Err(RunError::new(format!(
                "{component}: bad record ({reason}); on_error is `fail`: {}{ellipsis}",
                String::from_utf8_lossy(quoted)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::DeadLetters;
    use crate::errors::{DecodeError, EvalError};
    use crate::settings::Settings;
    use crate::sinks::RawSink;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Hands out prepared batches, then Finished.
    struct Scripted(Vec<Vec<&'static str>>);

    impl RawSource for Scripted {
        fn poll(&mut self, batch: &mut RawBatch, _max: usize) -> Result<Poll, RunError> {
            if self.0.is_empty() {
                return Ok(Poll::Finished);
            }
            for r in self.0.remove(0) {
                batch.push(r.as_bytes());
            }
            Ok(Poll::Ready)
        }
    }

    /// Decodes a number; "x" is a decode error, "" is not a record.
    struct NumDecoder;

    impl Decoder for NumDecoder {
        type Output = i64;
        fn decode(&mut self, raw: &[u8]) -> Result<Option<i64>, DecodeError> {
            match raw {
                b"" => Ok(None),
                _ => std::str::from_utf8(raw)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Some)
                    .ok_or_else(|| DecodeError::new("not a number")),
            }
        }
    }

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl RawSink for Shared {
        fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
            self.0.borrow_mut().extend_from_slice(bytes);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), RunError> {
            Ok(())
        }
    }

    struct Outs {
        seen: Vec<i64>,
        flushes: usize,
        dead: DeadLetters,
    }

    impl Outputs for Outs {
        fn dead_letters(&mut self) -> &mut DeadLetters {
            &mut self.dead
        }
        fn flush(&mut self) -> Result<(), RunError> {
            self.flushes += 1;
            self.dead.flush()
        }
    }

    fn flow(v: &i64, out: &mut Outs) -> Result<(), RecordError> {
        if *v < 0 {
            return Err(RecordError::new("transforms.check", EvalError::Overflow { op: "-" }));
        }
        out.seen.push(*v);
        Ok(())
    }

    fn ctx() -> Context {
        Context::new(Settings::from_values(vec![]), 2)
    }

    fn run(on_error: OnError) -> (Result<Vec<Poll>, RunError>, Outs, String, Context) {
        let ctx = ctx();
        let raw = Scripted(vec![vec!["1", "x", ""], vec!["-5", "2"], vec![]]);
        let mut src = Source::new("sources.nums", Box::new(raw), NumDecoder, on_error, &ctx);
        let sink = Shared::default();
        let mut outs = Outs {
            seen: vec![],
            flushes: 0,
            dead: DeadLetters::to_sinks(vec![Box::new(sink.clone())]),
        };
        let mut polls = vec![];
        let result = loop {
            match src.poll(&mut outs, flow) {
                Ok(Poll::Finished) => {
                    polls.push(Poll::Finished);
                    break Ok(polls);
                }
                Ok(p) => polls.push(p),
                Err(e) => break Err(e),
            }
        };
        let dead = String::from_utf8_lossy(&sink.0.borrow()).into_owned();
        (result, outs, dead, ctx)
    }

    #[test]
    fn dead_letters_decode_and_flow_errors_with_their_component() {
        let (result, outs, dead, ctx) = run(OnError::DeadLetter);
        assert_eq!(result, Ok(vec![Poll::Ready, Poll::Ready, Poll::Ready, Poll::Finished]));
        assert_eq!(outs.seen, [1, 2]);
        assert_eq!(outs.flushes, 2, "flushed after each non-empty batch only");
        let lines: Vec<serde_json::Value> = dead.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["component"], "sources.nums");
        assert_eq!(lines[0]["reason"], "not a number");
        assert_eq!(lines[0]["record"], "x");
        assert_eq!(lines[1]["component"], "transforms.check");
        assert_eq!(lines[1]["record"], "-5");
        let snap = ctx.events.snapshot();
        assert_eq!(snap[0].0, "sources.nums");
        // "-5" was handed to the flow (sent) and failed in the transform, which counts it.
        assert_eq!((snap[0].1.received, snap[0].1.sent, snap[0].1.dead_lettered), (4, 3, 1));
        assert_eq!((snap[1].0, snap[1].1.dead_lettered), ("transforms.check", 1));
    }

    #[test]
    fn drop_counts_without_dead_letters() {
        let (result, outs, dead, ctx) = run(OnError::Drop);
        assert!(result.is_ok());
        assert_eq!(outs.seen, [1, 2]);
        assert_eq!(dead, "");
        let snap = ctx.events.snapshot();
        assert_eq!(snap[0].1.dropped, 1);
        assert_eq!(snap[1].1.dropped, 1);
    }

    #[test]
    fn fail_stops_with_component_reason_and_record() {
        let (result, outs, _, _) = run(OnError::Fail);
        let msg = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "sources.nums: bad record (not a number); on_error is `fail`: x");
        assert_eq!(outs.seen, [1]);
    }

    #[test]
    fn fail_counts_every_failing_branch_before_stopping() {
        fn two_branches_fail(_: &i64, _: &mut Outs) -> Result<(), RecordError> {
            crate::errors::branches([
                Err(RecordError::new("transforms.a", EvalError::DivisionByZero)),
                Err(RecordError::new("transforms.b", EvalError::Overflow { op: "+" })),
            ])
        }
        let ctx = ctx();
        let raw = Scripted(vec![vec!["1"]]);
        let mut src = Source::new("sources.nums", Box::new(raw), NumDecoder, OnError::Fail, &ctx);
        let mut outs = Outs {
            seen: vec![],
            flushes: 0,
            dead: DeadLetters::stderr(),
        };
        let err = src.poll(&mut outs, two_branches_fail).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("transforms.a: bad record")));
        let dropped: Vec<(&str, u64)> = ctx.events.snapshot().iter().map(|(n, c)| (*n, c.dropped)).collect();
        assert_eq!(dropped, [("sources.nums", 0), ("transforms.a", 1), ("transforms.b", 1)]);
    }

    #[test]
    fn finished_is_sticky() {
        struct Once(bool);
        impl RawSource for Once {
            fn poll(&mut self, _: &mut RawBatch, _: usize) -> Result<Poll, RunError> {
                assert!(!self.0, "polled after Finished");
                self.0 = true;
                Ok(Poll::Finished)
            }
        }
        let ctx = ctx();
        let mut src = Source::new("sources.once", Box::new(Once(false)), NumDecoder, OnError::Fail, &ctx);
        let mut outs = Outs {
            seen: vec![],
            flushes: 0,
            dead: DeadLetters::stderr(),
        };
        assert_eq!(src.poll(&mut outs, flow), Ok(Poll::Finished));
        assert_eq!(src.poll(&mut outs, flow), Ok(Poll::Finished));
    }
}
