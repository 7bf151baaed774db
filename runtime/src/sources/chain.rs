//! A source's downstream run where its batches are decoded.
//!
//! When everything downstream of a source is stateless — filters, maps and explodes
//! ending in byte-stream outputs whose encoders keep nothing between records — the
//! thread that decodes a batch (a worker, or the pipeline thread when it takes a batch
//! no worker has) also runs the batch's records through a copy of that downstream, a
//! [`Chain`]: its transforms count into [`Counts`] and its outputs encode into buffers
//! of their own ([`Encoded`](crate::sinks::Encoded)). The pipeline thread takes the
//! batches in input order, routes each record's failures as it would have had it run
//! the record itself (the dead letters in the same order), then merges the copy's
//! counts and bytes into the pipeline's own ([`Merge::merge`]). So the outputs, dead
//! letters and counters are the same for any thread count, and a stateless pipeline
//! uses every core rather than one for all but decoding.
//!
//! A source whose errors stop the run (`on_error: fail`) never runs its downstream
//! elsewhere: records after the failing one would already be encoded.

use super::{attach_meta, Attach, Route};
use crate::batch::RawBatch;
use crate::errors::{DecodeError, RecordError, RunError};
use crate::formats::Decoder;
use crate::sinks::Outputs;

#[cfg(doc)]
use crate::internal_events::Counts;

/// A copy of a source's stateless downstream (the generated code's `chain_<source>::Nodes`),
/// run on the thread that decodes a batch.
pub trait Chain<T>: Send + Sized + 'static {
    /// An empty copy, for a batch.
    fn new() -> Self;
    /// Before a batch's records: the processing time they see is now.
    fn start(&mut self);
    /// One record through the downstream; `Err` holds its failures, as the pipeline's
    /// own flow function would return them.
    fn flow(&mut self, rec: &T) -> Result<(), RecordError>;
}

/// How a chain's results join the pipeline's own nodes `O`.
pub trait Merge<O> {
    /// After the batch's failures were routed: its counts and encoded records go into
    /// `into`, and this copy is empty again.
    fn merge(&mut self, into: &mut O);
}

/// No downstream runs elsewhere: a source's records all flow on the pipeline thread.
pub enum Unchained {}

impl<T> Chain<T> for Unchained {
    fn new() -> Self {
        unreachable!("a source without a chain never makes one")
    }
    fn start(&mut self) {
        match *self {}
    }
    fn flow(&mut self, _: &T) -> Result<(), RecordError> {
        match *self {}
    }
}

impl<O> Merge<O> for Unchained {
    fn merge(&mut self, _: &mut O) {
        match *self {}
    }
}

/// Processing time in a chain: the wall clock when its batch began (the pipeline's
/// own is the step's start; only windows read it, and a chain has none).
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchClock {
    now_ms: i64,
}

impl BatchClock {
    pub fn tick(&mut self) {
        self.now_ms = crate::fns::now_ms();
    }
    #[inline]
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

/// A record of a batch that ran through a chain and went wrong.
pub(super) enum Bad {
    /// It did not decode.
    Decode(DecodeError),
    /// It failed in the chain.
    Flow(RecordError),
}

/// Decodes each record of `batch` into `slot` (over the one before) and runs it through
/// `chain` (its metadata attached first); returns how many ran through it, and puts the
/// records that went wrong in `bad`, in order. Nothing of the batch is kept decoded.
pub(super) fn run<D: Decoder, C: Chain<D::Output>>(
    chain: &mut C,
    decoder: &mut D,
    attach: Option<Attach<D::Output>>,
    batch: &RawBatch,
    slot: &mut Result<Option<D::Output>, DecodeError>,
    bad: &mut Vec<(usize, Bad)>,
) -> u64 {
    let mut flowed = 0;
    bad.clear();
    chain.start();
    for (i, record) in batch.iter().enumerate() {
        match batch.failure(i) {
            Some(reason) => *slot = Err(DecodeError::new(reason)),
            None => decoder.decode_into(record, slot),
        }
        match slot {
            Ok(None) => {}
            Ok(Some(rec)) => {
                flowed += 1;
                attach_meta(attach, batch, i, rec);
                if let Err(e) = chain.flow(rec) {
                    bad.push((i, Bad::Flow(e)));
                }
            }
            Err(_) => {
                if let Err(e) = std::mem::replace(slot, Ok(None)) {
                    bad.push((i, Bad::Decode(e)));
                }
            }
        }
    }
    flowed
}

impl<T> Route<T> {
    /// On the pipeline thread, for a batch that ran through a chain where it was
    /// decoded ([`run`]): counts its records and routes those that went wrong, in
    /// input order, as [`Route::flow`] would have; adds to `counts` (received, passed
    /// on).
    pub(super) fn replay<O: Outputs>(
        &self,
        batch: &RawBatch,
        flowed: u64,
        bad: &mut Vec<(usize, Bad)>,
        out: &mut O,
        counts: &mut (u64, u64),
    ) -> Result<(), RunError> {
        counts.0 += flowed;
        counts.1 += flowed;
        let mut routed = Ok(());
        for (i, went) in bad.drain(..) {
            let record = batch.get(i).unwrap_or_default();
            routed = routed.and(match went {
                Bad::Flow(e) => self.failed_flow(&e, record, out),
                Bad::Decode(mut e) => {
                    counts.0 += 1;
                    self.failed_decode(batch, i, &mut e, record, out)
                }
            });
        }
        routed
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{NumDecoder, Scripted, Shared};
    use super::*;
    use crate::batch::RawBatch;
    use crate::dead_letter::DeadLetters;
    use crate::driver::Context;
    use crate::errors::EvalError;
    use crate::formats::JsonEncoder;
    use crate::internal_events::{Counts, Tally};
    use crate::settings::Settings;
    use crate::sinks::{Encoded, Output};
    use crate::sources::{OnError, Poll, RawSource, Source};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Records the chain ran on a worker thread in the run going on: one chained run at
    /// a time ([`SERIAL`]).
    static ON_WORKERS: AtomicU64 = AtomicU64::new(0);
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The pipeline's own nodes: one output, one transform's counts, dead letters.
    struct Nodes {
        out: Output<JsonEncoder<i64>>,
        tally: Tally,
        dead: DeadLetters,
    }

    impl Outputs for Nodes {
        fn dead_letters(&mut self) -> &mut DeadLetters {
            &mut self.dead
        }
        fn flush(&mut self) -> Result<(), RunError> {
            self.tally.publish();
            RunError::all([self.out.flush(), self.dead.flush()])
        }
    }

    /// The transform both copies run: a negative number fails, a multiple of 5 is
    /// filtered out, the others go on doubled.
    fn doubled(n: i64, counts: &mut Counts) -> Result<Option<i64>, RecordError> {
        counts.received += 1;
        if n < 0 {
            return Err(RecordError::new("transforms.doubled", EvalError::DivisionByZero));
        }
        if n % 5 == 0 {
            counts.filtered += 1;
            return Ok(None);
        }
        counts.sent += 1;
        Ok(Some(n * 2))
    }

    /// The pipeline's flow function.
    fn flow(n: &i64, out: &mut Nodes) -> Result<(), RecordError> {
        let mut counts = Counts::default();
        let passed = doubled(*n, &mut counts);
        out.tally.add(&mut counts);
        match passed? {
            Some(n) => out.out.send(&n),
            None => Ok(()),
        }
    }

    /// Its chain.
    struct Copy {
        out: Encoded<JsonEncoder<i64>>,
        counts: Counts,
    }

    impl Chain<i64> for Copy {
        fn new() -> Self {
            Copy {
                out: Encoded::new("sinks.out", JsonEncoder::new()),
                counts: Counts::default(),
            }
        }
        fn start(&mut self) {}
        fn flow(&mut self, n: &i64) -> Result<(), RecordError> {
            let on_worker = std::thread::current()
                .name()
                .is_some_and(|t| t.starts_with("rill-worker"));
            if on_worker {
                ON_WORKERS.fetch_add(1, Ordering::Relaxed);
            } else {
                // The pipeline thread runs a chain only on a batch no worker has taken:
                // it waits (5 s at most) until a worker has run one, so a worker that
                // never runs a chain fails the test, and a busy machine does not.
                let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while ON_WORKERS.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
            }
            match doubled(*n, &mut self.counts)? {
                Some(n) => self.out.send(&n),
                None => Ok(()),
            }
        }
    }

    impl Merge<Nodes> for Copy {
        fn merge(&mut self, into: &mut Nodes) {
            into.tally.add(&mut self.counts);
            into.out.append(&mut self.out);
        }
    }

    /// The output's bytes, the dead letters (without time stamps), (component,
    /// received, sent, filtered, dead-lettered or dropped), and the error that stopped
    /// the run.
    type Outcome = (Vec<u8>, String, Vec<(&'static str, u64, u64, u64, u64)>, Option<String>);

    /// [`Scripted::numbers`] through `workers` worker threads, the source `chained` or
    /// not.
    fn run(workers: usize, on_error: OnError, chained: bool) -> Outcome {
        run_from(Box::new(Scripted::numbers(11)), workers, on_error, chained)
    }

    /// [`run`] with the records of `batches`.
    fn run_from(batches: Box<dyn RawSource>, workers: usize, on_error: OnError, chained: bool) -> Outcome {
        let mut ctx = Context::new(Settings::from_values(vec![]), 7);
        ctx.workers = crate::workers::for_threads(workers + 1).map(|n| crate::workers::Workers::start(n).unwrap());
        let written = Shared::default();
        let letters = Shared::default();
        let mut nodes = Nodes {
            out: Output::new("sinks.out", Box::new(written.clone()), JsonEncoder::new(), &ctx),
            tally: Tally::new("transforms.doubled", &ctx.events),
            dead: DeadLetters::to_sinks(vec![Box::new(letters.clone())]),
        };
        let name = "sources.nums";
        let error = match chained {
            true => to_the_end(
                Source::<_, Copy>::new_chained(name, batches, NumDecoder, on_error, &ctx),
                &mut nodes,
            ),
            false => to_the_end(Source::new(name, batches, NumDecoder, on_error, &ctx), &mut nodes),
        };
        // As the driver closes the pipeline after the run, stopped or not.
        let _ = nodes.flush();
        let counts = ctx
            .events
            .snapshot()
            .iter()
            .map(|(name, c)| (*name, c.received, c.sent, c.filtered, c.dead_lettered + c.dropped))
            .collect();
        let bytes = written.0.borrow().clone();
        (bytes, letters.letters(), counts, error)
    }

    /// Polls `source` until it is finished; the error that stopped it, if one did.
    fn to_the_end<C: Chain<i64> + Merge<Nodes>>(
        mut source: Source<NumDecoder, C>,
        nodes: &mut Nodes,
    ) -> Option<String> {
        loop {
            match source.poll(nodes, flow) {
                Ok(Poll::Finished) => return None,
                Ok(_) => {}
                Err(e) => return Some(e.to_string()),
            }
        }
    }

    #[test]
    fn a_chain_on_the_workers_gives_the_pipeline_threads_bytes_letters_and_counts() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        for on_error in [OnError::DeadLetter, OnError::Drop] {
            let alone = run(0, on_error, false);
            assert!(alone.0.len() > 2_000, "{on_error:?}: {} bytes", alone.0.len());
            assert_eq!(alone.3, None);
            for workers in [1, 2, 5] {
                ON_WORKERS.store(0, Ordering::Relaxed);
                let chained = run(workers, on_error, true);
                assert!(
                    ON_WORKERS.load(Ordering::Relaxed) > 0,
                    "{on_error:?}, {workers} workers: the chain never ran on a worker"
                );
                // Not assert_eq: the bytes are long.
                assert!(chained.0 == alone.0, "{on_error:?}, {workers} workers: other bytes");
                assert_eq!(chained.1, alone.1, "{on_error:?}, {workers} workers");
                assert_eq!(chained.2, alone.2, "{on_error:?}, {workers} workers");
            }
        }
        let (_, dead, counts, _) = run(2, OnError::DeadLetter, true);
        assert!(dead.contains("\"component\":\"sources.nums\""), "{dead}");
        assert!(dead.contains("\"component\":\"transforms.doubled\""), "{dead}");
        for (name, received, sent, filtered, failed) in counts {
            assert_eq!(received, sent + filtered + failed, "{name}");
        }
    }

    /// A source that goes away while batches are read ahead (a disk gone, a broker that
    /// does not come back): what it read before still runs through the chain and is
    /// written, and the run stops with its error.
    #[test]
    fn a_chained_source_failing_while_read_ahead_still_writes_what_it_read_first() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        /// 40 full batches of 7 numbers (10k to 10k + 6), then an error.
        struct Failing(i64);
        impl RawSource for Failing {
            fn poll(&mut self, batch: &mut RawBatch, _: usize) -> Result<Poll, RunError> {
                self.0 += 1;
                if self.0 > 40 {
                    return Err(RunError::new("sources.nums: the broker went away"));
                }
                for n in 10 * self.0..10 * self.0 + 7 {
                    batch.push(n.to_string().as_bytes());
                }
                Ok(Poll::Ready)
            }
        }
        let expected: String = (1..=40)
            .flat_map(|k| 10 * k..10 * k + 7)
            .filter(|n| n % 5 != 0)
            .map(|n| format!("{}\n", 2 * n))
            .collect();
        for workers in [0, 1, 3] {
            ON_WORKERS.store(0, Ordering::Relaxed);
            let (bytes, letters, counts, error) = run_from(Box::new(Failing(0)), workers, OnError::DeadLetter, true);
            assert_eq!(
                error.as_deref(),
                Some("sources.nums: the broker went away"),
                "{workers} workers"
            );
            assert_eq!(String::from_utf8_lossy(&bytes), expected, "{workers} workers");
            assert_eq!(letters, "");
            assert!(
                workers == 0 || ON_WORKERS.load(Ordering::Relaxed) > 0,
                "{workers} workers"
            );
            for (name, received, sent, filtered, failed) in counts {
                assert_eq!(received, sent + filtered + failed, "{name}");
                if name == "sources.nums" {
                    assert_eq!(received, 280, "every record read was counted");
                }
            }
        }
    }

    #[test]
    fn a_source_whose_bad_record_stops_the_run_keeps_its_records_on_the_pipeline_thread() {
        let ctx = Context::new(Settings::from_values(vec![]), 7);
        for (on_error, chained) in [
            (OnError::Fail, false),
            (OnError::Drop, true),
            (OnError::DeadLetter, true),
        ] {
            let raw = Box::new(Scripted(vec![]));
            let source = Source::<_, Copy>::new_chained("sources.nums", raw, NumDecoder, on_error, &ctx);
            assert_eq!(source.chained, chained, "{on_error:?}");
        }
        let alone = run(0, OnError::Fail, false);
        let chained = run(2, OnError::Fail, true);
        assert!(alone.3.is_some(), "a bad record stops the run");
        assert!(chained == alone, "the output ends where the bad record stopped it");
    }
}
