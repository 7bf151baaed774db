//! Sinks: where records go.
//!
//! Mirrors the sources, in two kinds:
//! - byte streams: a [`RawSink`] only moves bytes (stdout, a file), and [`Output`]
//!   encodes typed records into an in-memory buffer with an [`Encoder`], handing the
//!   whole buffer to the sink once per step. So each record costs one encode into a
//!   reused buffer, and each step one write.
//! - messages: a [`MessageSink`] publishes one message per record to a broker and
//!   confirms each later; [`MessageOutput`] encodes, tracks acknowledgements and turns
//!   failed deliveries into dead letters (see `message.rs`).

mod buffered;
mod elsewhere;
mod message;
mod writer_thread;

pub use elsewhere::{EncodeAnywhere, Encoded, Encoding};
pub use message::{Address, MessageOutput, MessageSink, Outcome, Undelivered};
pub use writer_thread::WriterThread;

use crate::dead_letter::DeadLetters;
use crate::driver::Context;
use crate::errors::{RecordError, RunError, StartError};
use crate::formats::Encoder;
use crate::internal_events::{Counters, InternalEvent};
use crate::state::Checkpointed;
use crate::workers::Workers;

/// A destination for encoded bytes (whole records, each ending with `'\n'`).
pub trait RawSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), RunError>;
    /// Writes `buf` and leaves it empty. A sink that writes on another thread takes the
    /// buffer itself, leaving a spare one, so the bytes are not copied.
    fn write_from(&mut self, buf: &mut Vec<u8>) -> Result<(), RunError> {
        let written = self.write(buf);
        buf.clear();
        written
    }
    fn flush(&mut self) -> Result<(), RunError>;
    /// For a checkpoint, after a flush: makes what was written durable and says how to
    /// come back to this point ([`Self::rewind`]). Empty when the sink cannot go back
    /// (stdout, a pipe): after a crash it may repeat what followed the checkpoint.
    fn save_position(&mut self) -> Result<Vec<u8>, RunError> {
        Ok(Vec::new())
    }
    /// On restore, before anything is written: forgets what was written after the
    /// checkpoint that saved `saved`, which the replay writes again.
    fn rewind(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let _ = saved;
        Ok(())
    }
}

/// The generated struct holding every output of a pipeline.
pub trait Outputs {
    fn dead_letters(&mut self) -> &mut DeadLetters;
    /// Flush buffered outputs, dead letters included (called at the end of each poll
    /// that processed records, by [`crate::sources::Source::poll`]).
    fn flush(&mut self) -> Result<(), RunError>;
}

/// Encoded bytes beyond which [`Output::send`] hands the buffer to the sink before the
/// step ends: a window firing thousands of rows at once must not grow the buffer to
/// the size of all of them.
pub(crate) const WRITE_AT: usize = 48 * 1024;

/// An encoder in front of a raw sink, with a buffer reused across steps.
pub struct Output<E: Encoder> {
    name: &'static str,
    sink: Box<dyn RawSink>,
    encoder: E,
    buf: Vec<u8>,
    /// Records encoded since the last flush, published to the counters on flush.
    pending: u64,
    /// Records offered since the last flush (including ones that failed to encode).
    offered: u64,
    /// A write that failed inside `send`, reported by the next `flush`.
    write_error: Option<RunError>,
    counters: Counters,
    /// The threads that may encode rows ([`Self::encode_elsewhere`]), and a buffer for
    /// the bytes of the next chunk.
    workers: Option<Workers>,
    spare: Vec<u8>,
}

impl<E: Encoder> Output<E> {
    pub fn new(name: &'static str, sink: Box<dyn RawSink>, encoder: E, ctx: &Context) -> Self {
        Output {
            name,
            sink,
            encoder,
            buf: Vec::with_capacity(64 * 1024),
            pending: 0,
            offered: 0,
            write_error: None,
            counters: ctx.events.component(name),
            workers: ctx.workers.clone(),
            spare: Vec::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Encodes `rec` into the buffer. On an encode error nothing of the record is kept,
    /// and the error names this output.
    pub fn send(&mut self, rec: &E::Input) -> Result<(), RecordError> {
        self.offered += 1;
        elsewhere::encode_whole(&mut self.encoder, rec, &mut self.buf, self.name)?;
        self.pending += 1;
        self.write_if_full();
        Ok(())
    }

    /// Hands the buffer to the sink once it holds [`WRITE_AT`] bytes.
    fn write_if_full(&mut self) {
        if self.buf.len() >= WRITE_AT {
            if self.write_error.is_none() {
                if let Err(e) = self.sink.write_from(&mut self.buf) {
                    self.write_error = Some(RunError::new(format!("{}: {e}", self.name)));
                }
            }
            // After a failure the step's records are only counted, not kept.
            self.buf.clear();
        }
    }

    /// Writes the buffer to the sink and flushes it. Records count as sent only once
    /// the sink has flushed them; when a write or flush fails, the records since the
    /// last flush count as dropped, and the error says how many.
    pub fn flush(&mut self) -> Result<(), RunError> {
        self.counters
            .emit(InternalEvent::Received(std::mem::take(&mut self.offered)));
        let written = match self.write_error.take() {
            Some(e) => Err(e),
            None => self.write_buffer().and_then(|()| {
                self.sink
                    .flush()
                    .map_err(|e| RunError::new(format!("{}: {e}", self.name)))
            }),
        };
        self.buf.clear();
        let records = std::mem::take(&mut self.pending);
        match written {
            Ok(()) => {
                self.counters.emit(InternalEvent::Sent(records));
                Ok(())
            }
            Err(e) => {
                self.counters.emit(InternalEvent::Dropped(records));
                self.counters.emit(InternalEvent::DeliveryFailed(records));
                Err(RunError::new(format!("{e} ({records} records not written)")))
            }
        }
    }

    fn write_buffer(&mut self) -> Result<(), RunError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sink
            .write_from(&mut self.buf)
            .map_err(|e| RunError::new(format!("{}: {e}", self.name)))
    }
}

/// A byte-stream output's checkpoint is its sink's committed position.
impl<E: Encoder> Checkpointed for Output<E> {
    fn section(&self) -> &'static str {
        self.name
    }
    /// The sink's committed position and what the encoder wrote once (a CSV header).
    fn save(&mut self, out: &mut Vec<u8>) -> Result<(), RunError> {
        let position = self
            .sink
            .save_position()
            .map_err(|e| RunError::new(format!("{}: {e}", self.name)))?;
        crate::state::save_value(self.name, &(position, self.encoder.save_state()), out)
    }
    fn restore(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let (position, encoder): (Vec<u8>, Vec<u8>) = crate::state::restore_value(self.name, saved)?;
        let fail = |e: String| StartError::new(format!("{}: {e}", self.name));
        self.encoder.restore_state(&encoder).map_err(fail)?;
        self.sink.rewind(&position).map_err(|e| fail(e.message().to_owned()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::errors::EvalError;
    use crate::settings::Settings;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// An in-memory sink whose contents the test keeps a handle to.
    #[derive(Clone, Default)]
    pub(crate) struct MemSink {
        pub(crate) data: Rc<RefCell<Vec<u8>>>,
        pub(crate) flushes: Rc<RefCell<usize>>,
    }

    impl RawSink for MemSink {
        fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
            self.data.borrow_mut().extend_from_slice(bytes);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), RunError> {
            *self.flushes.borrow_mut() += 1;
            Ok(())
        }
    }

    /// Encodes non-negative numbers; a negative one fails after writing a partial record.
    struct Picky;

    impl Encoder for Picky {
        type Input = i64;
        fn encode(&mut self, rec: &i64, out: &mut Vec<u8>) -> Result<(), EvalError> {
            out.extend_from_slice(b"partial");
            if *rec < 0 {
                return Err(EvalError::InvalidArgument {
                    function: "encode",
                    reason: "negative".into(),
                });
            }
            out.truncate(out.len() - 7);
            out.extend_from_slice(format!("{rec}\n").as_bytes());
            Ok(())
        }
    }

    #[test]
    fn buffers_until_flush_and_drops_failed_records_whole() {
        let ctx = Context::new(Settings::from_values(vec![]), 16);
        let sink = MemSink::default();
        let mut out = Output::new("sinks.mem", Box::new(sink.clone()), Picky, &ctx);
        assert_eq!(out.send(&1), Ok(()));
        let err = out.send(&-1).err();
        assert_eq!(err.map(|e| e.component), Some("sinks.mem"));
        assert_eq!(out.send(&2), Ok(()));
        assert!(sink.data.borrow().is_empty(), "nothing written before flush");
        assert_eq!(out.flush(), Ok(()));
        assert_eq!(&*sink.data.borrow(), b"1\n2\n");
        assert_eq!(*sink.flushes.borrow(), 1);
        let snap = ctx.events.snapshot();
        assert_eq!((snap[0].1.received, snap[0].1.sent), (3, 2));
    }

    /// A sink whose writes fail, like a file on a full disk.
    pub(crate) struct Full;

    impl RawSink for Full {
        fn write(&mut self, _: &[u8]) -> Result<(), RunError> {
            Err(RunError::new("writing `/dev/full`: No space left on device"))
        }
        fn flush(&mut self) -> Result<(), RunError> {
            Ok(())
        }
    }

    #[test]
    fn records_that_could_not_be_written_count_as_dropped_not_sent() {
        let ctx = Context::new(Settings::from_values(vec![]), 16);
        let mut out = Output::new("sinks.full", Box::new(Full), Picky, &ctx);
        assert_eq!(out.send(&1), Ok(()));
        assert_eq!(out.send(&2), Ok(()));
        assert_eq!(
            out.flush().err().map(|e| e.to_string()).as_deref(),
            Some("sinks.full: writing `/dev/full`: No space left on device (2 records not written)")
        );
        // A big step writes mid-way; its failure is reported by the next flush.
        let big = WRITE_AT as i64;
        for i in 0..big / 4 {
            assert_eq!(out.send(&(i * 1_000_000)), Ok(()));
        }
        assert!(out.flush().is_err());
        let snap = ctx.events.snapshot();
        let s = snap[0].1;
        assert_eq!(
            (s.received, s.sent, s.dropped),
            (2 + big as u64 / 4, 0, 2 + big as u64 / 4)
        );
    }
}
