//! Sources: where records come from.
//!
//! Two layers, so connectors and formats stay independent: a [`RawSource`] (each
//! connector's, under [`crate::connectors`]) only frames bytes or receives messages
//! into records, and [`Source`]
//! decodes them with a [`Decoder`], hands each typed record to the generated flow
//! function, and routes every bad record according to its [`OnError`]. Dynamic dispatch
//! happens once per batch (`Box<dyn RawSource>`); the per-record work is monomorphic.

pub mod arrival;
pub mod chain;
pub(crate) mod framing;

use crate::batch::{MetaView, RawBatch};
use crate::driver::Context;
use crate::errors::{DecodeError, RecordError, RunError, StartError};
use crate::formats::Decoder;
use crate::internal_events::{Counters, Events, InternalEvent};
use crate::sinks::Outputs;
use crate::state::Checkpointed;
use crate::windows::Reach;
use crate::workers::Workers;
use arrival::{ArrivalDecoder, ArrivedRun, Results};
use chain::{Chain, Merge, Unchained};
use std::ops::Range;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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

    /// Offers a decoder for threads of the source's own that records arrive on, to
    /// decode them there rather than on the pipeline thread. A source that takes it
    /// returns `true` and hands what it decoded with each batch ([`Self::take_arrived`]).
    fn decode_on_arrival(&mut self, decoder: Box<dyn ArrivalDecoder>) -> bool {
        let _ = decoder;
        false
    }

    /// After a poll: moves the runs of the batch's records that were decoded as they
    /// arrived into `into` (index ranges in order, not overlapping); records in none
    /// are decoded by the pipeline.
    fn take_arrived(&mut self, into: &mut Vec<ArrivedRun>) {
        let _ = into;
    }

    /// The runs [`Self::take_arrived`] gave, done with: their lists are reused, and
    /// their records dropped, on the source's threads.
    fn arrived_back(&mut self, runs: &mut Vec<ArrivedRun>) {
        runs.clear();
    }

    /// Every record of the batches polled since the last call (several when batches
    /// are read ahead) was handled and every output flushed; a source
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

/// Fills `rec`'s metadata fields from message `i` of `batch`, when the source has any
/// (only then is the batch asked: a file's records have no metadata).
#[inline]
fn attach_meta<T>(attach: Option<Attach<T>>, batch: &RawBatch, i: usize, rec: &mut T) {
    if let Some(attach) = attach {
        if let Some(meta) = batch.meta(i) {
            attach(rec, &meta);
        }
    }
}

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

/// Batches read ahead per worker thread, waiting or being decoded while the pipeline
/// thread runs one through the pipeline (see [`Source::poll`]). Each costs a batch of
/// raw and decoded records (8 took filter_map from 1.8 to 2.3 times the hand-written
/// program's peak RSS, past issue 16's bound of 2).
pub(crate) const READ_AHEAD_PER_WORKER: usize = 4;

/// [`READ_AHEAD_PER_WORKER`] in a pipeline with a window that fires every key at once
/// ([`crate::driver::PipelineInfo::fires`]): while it fires, nothing is read, and the
/// workers decode only what was read before (windowed benchmark, 2 threads, at 8:
/// 0.66 → 0.59 s in one session's side-by-side runs, 0.94 → 0.89 s in another's).
pub(crate) const READ_AHEAD_WHILE_FIRING: usize = 8;

/// Batches one poll reads at most while the source has more waiting, and for how long
/// it reads more. A poll starts and ends with a thread idle, so more batches per poll
/// waste less of it; fewer keep the other sources, the step's timers and a stop
/// request waiting less. The time comes first: a million records take longer than
/// 50 ms. (At 64 batches, about 10 ms of the windowed benchmark, a worker waited
/// 1.5 ms at each poll's end: 135 ms of a 0.78 s run.)
const BATCHES_PER_POLL: usize = 1024;
/// How many records on [`Source::poll_ahead`] shows one: enough that a fetch from
/// memory arrives before its record flows, few enough that it is still in the cache.
const LOOK_AHEAD: usize = 8;
const READ_AHEAD_FOR: Duration = Duration::from_millis(50);

/// Longest piece of a bad record quoted in a fatal error message.
const MAX_QUOTED: usize = 512;

/// A raw source plus its decoder, error policy and reusable batches; `C` is the copy of
/// its downstream that runs where a batch is decoded, if it has one ([`chain`]).
pub struct Source<D: Decoder, C = Unchained> {
    name: &'static str,
    raw: Box<dyn RawSource>,
    decoder: D,
    route: Route<D::Output>,
    batch: RawBatch,
    batch_size: usize,
    counters: Counters,
    finished: bool,
    /// Decoding on worker threads, when the pipeline has them.
    ahead: Option<Ahead<D, C>>,
    /// The records of a batch decoded elsewhere run through a chain there too.
    chained: bool,
    /// Runs of the batch the raw source decoded as they arrived (see [`arrival`]).
    arrived: Vec<ArrivedRun>,
    /// Where the pipeline thread decodes a record, over the one before it.
    here: Result<Option<D::Output>, DecodeError>,
}

/// Where decoded records and bad ones go.
struct Route<T> {
    name: &'static str,
    on_error: OnError,
    events: Events,
    attach: Option<Attach<T>>,
}

/// Batches read ahead in one poll and decoded by [`Workers`]: while the pipeline
/// thread runs one batch through the pipeline, the workers decode the next ones.
struct Ahead<D: Decoder, C> {
    workers: Workers,
    /// Batches read ahead and not yet flowed: at most this many at a time.
    most: usize,
    /// Decoders for the workers ([`Decoder::fork`]), each back here after its job.
    forks: Vec<D>,
    spare: Vec<Decoded<D, C>>,
}

/// Batches handed to the workers by one poll, numbered from 1 to `slots.len()`, and
/// where they come back.
struct Sent<D: Decoder, C> {
    results: mpsc::Receiver<Result<Decoded<D, C>, Failed>>,
    back: mpsc::Sender<Result<Decoded<D, C>, Failed>>,
    /// Batch `seq` is `slots[seq - 1]` until a thread takes it to decode.
    slots: Vec<Slot<D, C>>,
    /// The source failed while reading ahead: the poll returns it once what was read
    /// has flowed.
    failed: Option<RunError>,
    /// The last batch read was full: the source may have more waiting.
    more: bool,
    /// When the poll began: it reads ahead for [`READ_AHEAD_FOR`] at most.
    began: Instant,
}

/// A batch waiting to be decoded, by whichever thread takes it first: a worker, or the
/// pipeline thread when the batch it needs next is not ready (see [`next`]).
type Slot<D, C> = Arc<Mutex<Option<Decoded<D, C>>>>;

/// A worker panicked while decoding a batch (only in a build that unwinds).
struct Failed;

/// Takes the batch out of `slot` if no thread has taken it yet.
fn claim<D: Decoder, C>(slot: &Slot<D, C>) -> Option<Decoded<D, C>> {
    slot.lock().map_or(None, |mut waiting| waiting.take())
}

/// One batch and what each of its records decoded to; with a chain, what running them
/// through it gave instead (each record is decoded over the one before, in `records[0]`,
/// and runs through the chain at once).
struct Decoded<D: Decoder, C> {
    seq: usize,
    batch: RawBatch,
    records: Results<D>,
    decoder: Option<D>,
    chain: Option<C>,
    attach: Option<Attach<D::Output>>,
    /// With a chain: the records that went through it, and those that did not decode
    /// or failed in it, by index, in order.
    flowed: u64,
    bad: Vec<(usize, chain::Bad)>,
}

impl<D: Decoder> Source<D> {
    /// A raw source whose records arrive on threads of its own decodes them there
    /// ([`RawSource::decode_on_arrival`]); the others, when the pipeline has worker
    /// threads, have full batches decoded by those.
    pub fn new(name: &'static str, raw: Box<dyn RawSource>, decoder: D, on_error: OnError, ctx: &Context) -> Self {
        Self::build(name, raw, decoder, on_error, ctx, false)
    }
}

impl<D: Decoder, C> Source<D, C> {
    /// [`Source::new`], and the records a worker decodes run through a copy of the
    /// downstream, `C`, there ([`chain`]), unless a bad record stops the run
    /// (`on_error: fail`).
    pub fn new_chained(
        name: &'static str,
        raw: Box<dyn RawSource>,
        decoder: D,
        on_error: OnError,
        ctx: &Context,
    ) -> Self {
        Self::build(name, raw, decoder, on_error, ctx, on_error != OnError::Fail)
    }

    fn build(
        name: &'static str,
        mut raw: Box<dyn RawSource>,
        decoder: D,
        on_error: OnError,
        ctx: &Context,
        chained: bool,
    ) -> Self {
        let on_arrival = decoder
            .fork()
            .is_some_and(|copy| raw.decode_on_arrival(Box::new(arrival::Typed(copy))));
        Source {
            name,
            raw,
            decoder,
            route: Route {
                name,
                on_error,
                events: ctx.events.clone(),
                attach: None,
            },
            batch: RawBatch::new(),
            batch_size: ctx.batch_size.max(1),
            counters: ctx.events.component(name),
            finished: false,
            arrived: Vec::new(),
            here: Ok(None),
            chained,
            ahead: ctx.workers.clone().filter(|_| !on_arrival).map(|workers| Ahead {
                // Enough to keep every worker busy while the pipeline thread works
                // through a batch; bounded, so memory stays a few batches.
                most: ctx.read_ahead_per_worker.max(1) * workers.count() + 1,
                workers,
                forks: Vec::new(),
                spare: Vec::new(),
            }),
        }
    }
}

impl<D: Decoder, C: Chain<D::Output>> Source<D, C> {
    /// Fills the record's metadata fields from each message before it flows on.
    pub fn with_metadata(mut self, attach: Attach<D::Output>) -> Self {
        self.route.attach = Some(attach);
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
    /// When a full batch came and the pipeline has worker threads, the poll reads more
    /// batches while there are more (a few at most) and the workers decode them while
    /// this thread runs the first through the pipeline; the records still flow in input
    /// order, and the poll returns only when every batch it read has flowed (so a
    /// checkpoint or commit after it covers what was read).
    ///
    /// `flow` is generic rather than a `fn` pointer so that each source's
    /// flow function is called directly and inlined: no indirect call per record.
    pub fn poll<O: Outputs, F: Fn(&D::Output, &mut O) -> Result<(), RecordError>>(
        &mut self,
        out: &mut O,
        flow: F,
    ) -> Result<Poll, RunError>
    where
        C: Merge<O>,
    {
        self.poll_ahead(out, flow, |_: &D::Output, _: &O, _| {})
    }

    /// [`Self::poll`], and `ahead` is shown each record decoded by a worker
    /// [`LOOK_AHEAD`] records before it flows and again half as many before: the
    /// pipeline asks for the state it will need from memory (a window's key, see
    /// [`Reach`]), and the fetches overlap the records between.
    pub fn poll_ahead<O, F, H>(&mut self, out: &mut O, flow: F, ahead: H) -> Result<Poll, RunError>
    where
        O: Outputs,
        C: Merge<O>,
        F: Fn(&D::Output, &mut O) -> Result<(), RecordError>,
        H: Fn(&D::Output, &O, Reach),
    {
        if self.finished {
            return Ok(Poll::Finished);
        }
        self.batch.clear();
        let mut polled = self.raw.poll(&mut self.batch, self.batch_size)?;
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
        let mut sent = match (&self.ahead, self.batch.len() >= self.batch_size) {
            (Some(_), true) => {
                let (back, results) = mpsc::channel();
                Some(Sent {
                    results,
                    back,
                    slots: Vec::new(),
                    failed: None,
                    more: true,
                    began: Instant::now(),
                })
            }
            _ => None,
        };
        if let Some(sent) = &mut sent {
            self.read_ahead(sent, &mut polled, 0);
        }
        let mut counts = (0u64, 0u64);
        self.raw.take_arrived(&mut self.arrived);
        let Source {
            decoder,
            route,
            batch,
            arrived,
            here,
            ..
        } = self;
        // Nothing to collect, and no allocation, for a source that does not decode on
        // arrival.
        let mut runs: Vec<_> = arrived
            .iter_mut()
            .filter_map(|(records, list)| Some((records.clone(), list.downcast_mut::<Results<D>>()?)))
            .collect();
        let mut flowed = route.flow(decoder, batch, &mut runs, here, out, (&flow, &ahead), &mut counts);
        self.raw.arrived_back(&mut self.arrived);
        self.counters.emit(InternalEvent::BytesRead(self.batch.bytes() as u64));
        let mut failed = None;
        if let Some(mut sent) = sent {
            let mut early = Vec::new();
            let mut seq = 1;
            while seq <= sent.slots.len() && flowed.is_ok() {
                flowed = match next(seq, &sent.results, &sent.slots, &mut early) {
                    Some(decoded) => self.flow_decoded(decoded, out, (&flow, &ahead), &mut counts),
                    None => Err(RunError::new(format!(
                        "{}: a worker thread failed while decoding a batch",
                        self.name
                    ))),
                };
                // One more read for the one that flowed, so the workers never run dry.
                self.read_ahead(&mut sent, &mut polled, seq);
                seq += 1;
            }
            failed = sent.failed;
        }
        // Counted before a possible failure returns, so the exit summary is accurate.
        // Non-records (blank lines, a CSV header) are not counted.
        let (received, passed) = counts;
        self.counters.emit(InternalEvent::Received(received));
        self.counters.emit(InternalEvent::Sent(passed));
        flowed?;
        out.flush()?;
        self.raw.batch_done();
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(match polled {
            Poll::Idle => Poll::Ready,
            other => other,
        })
    }

    /// While the source has full batches waiting: reads until [`Ahead::most`] batches
    /// after the `flowed` first are read (at most [`BATCHES_PER_POLL`] in the poll, and
    /// past the first `most`, only for [`READ_AHEAD_FOR`]), and hands each to the workers
    /// to decode.
    fn read_ahead(&mut self, sent: &mut Sent<D, C>, polled: &mut Poll, flowed: usize) {
        let Some(ahead) = self.ahead.as_mut() else { return };
        let up_to = (flowed + ahead.most).min(BATCHES_PER_POLL);
        if sent.slots.len() >= ahead.most && sent.began.elapsed() > READ_AHEAD_FOR {
            sent.more = false;
        }
        while sent.more && sent.slots.len() < up_to && *polled == Poll::Ready {
            let Some(decoder) = ahead.forks.pop().or_else(|| self.decoder.fork()) else {
                sent.more = false;
                break;
            };
            let mut next = ahead.spare.pop().unwrap_or_else(|| Decoded {
                seq: 0,
                batch: RawBatch::new(),
                records: Vec::new(),
                decoder: None,
                chain: None,
                attach: None,
                flowed: 0,
                bad: Vec::new(),
            });
            next.batch.clear();
            *polled = match self.raw.poll(&mut next.batch, self.batch_size) {
                Ok(polled) => polled,
                // What was read before still flows; the error ends the poll after it.
                Err(e) => {
                    sent.failed = Some(e);
                    sent.more = false;
                    ahead.forks.push(decoder);
                    ahead.spare.push(next);
                    break;
                }
            };
            if *polled == Poll::Finished {
                self.finished = true;
            }
            // A batch that is not full says the source has no more waiting: polling
            // again could only wait.
            sent.more = next.batch.len() >= self.batch_size;
            if next.batch.is_empty() {
                ahead.forks.push(decoder);
                ahead.spare.push(next);
                break;
            }
            next.seq = sent.slots.len() + 1;
            next.decoder = Some(decoder);
            if self.chained && next.chain.is_none() {
                next.chain = Some(C::new());
            }
            next.attach = self.route.attach;
            let slot = Arc::new(Mutex::new(Some(next)));
            sent.slots.push(Arc::clone(&slot));
            let back = sent.back.clone();
            ahead.workers.run(Box::new(move || {
                // Nothing to do when the pipeline thread took the batch first.
                if let Some(mut next) = claim(&slot) {
                    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| next.decode()));
                    let _ = back.send(decoded.map(|()| next).map_err(|_| Failed));
                }
            }));
        }
    }

    /// Runs a batch the workers decoded through the pipeline, and keeps its buffers
    /// and decoder for the next.
    fn flow_decoded<O, F, H>(
        &mut self,
        mut decoded: Decoded<D, C>,
        out: &mut O,
        flow: (&F, &H),
        counts: &mut (u64, u64),
    ) -> Result<(), RunError>
    where
        O: Outputs,
        C: Merge<O>,
        F: Fn(&D::Output, &mut O) -> Result<(), RecordError>,
        H: Fn(&D::Output, &O, Reach),
    {
        // Records are lent, not moved: they are dropped by the worker that reuses the
        // buffers next, where they were allocated (freeing memory another thread
        // allocated costs the allocator a lock, more than the decoding saved).
        let Decoded {
            batch,
            records,
            decoder,
            chain,
            flowed,
            bad,
            ..
        } = &mut decoded;
        let flowed = match (decoder, chain) {
            (Some(_), Some(chain)) => {
                let routed = self.route.replay(batch, *flowed, bad, out, counts);
                chain.merge(out);
                routed
            }
            (Some(decoder), None) => {
                let mut runs = [(0..batch.len(), records)];
                self.route
                    .flow(decoder, batch, &mut runs, &mut self.here, out, flow, counts)
            }
            (None, _) => Ok(()),
        };
        self.counters
            .emit(InternalEvent::BytesRead(decoded.batch.bytes() as u64));
        if let Some(ahead) = &mut self.ahead {
            ahead.forks.extend(decoded.decoder.take());
            ahead.spare.push(decoded);
        }
        flowed
    }
}

/// Batch `seq`, decoded, keeping those that come back before their turn in `early`.
/// While it is not ready, this thread decodes batches no worker has taken: `seq`
/// itself, else the last one, so it and the workers meet in the middle whichever of
/// decoding or the rest of the pipeline takes longer. It waits only when every batch
/// is taken. `None` when a worker failed.
fn next<D: Decoder, C: Chain<D::Output>>(
    seq: usize,
    results: &mpsc::Receiver<Result<Decoded<D, C>, Failed>>,
    slots: &[Slot<D, C>],
    early: &mut Vec<Decoded<D, C>>,
) -> Option<Decoded<D, C>> {
    loop {
        if let Some(at) = early.iter().position(|d| d.seq == seq) {
            return Some(early.swap_remove(at));
        }
        if let Ok(decoded) = results.try_recv() {
            early.push(decoded.ok()?);
            continue;
        }
        let mut untaken = std::iter::once(&slots[seq - 1]).chain(slots[seq..].iter().rev());
        match untaken.find_map(claim) {
            Some(mut decoded) => {
                decoded.decode();
                early.push(decoded);
            }
            None => early.push(crate::workers::recv_soon(results).ok()?.ok()?),
        }
    }
}

impl<D: Decoder, C: Chain<D::Output>> Decoded<D, C> {
    /// On a worker: decodes every record of the batch, in order; with a chain, runs
    /// each through it as soon as it is decoded instead (see [`chain`]).
    fn decode(&mut self) {
        let Decoded {
            batch,
            records,
            decoder,
            chain,
            attach,
            flowed,
            bad,
            ..
        } = self;
        let Some(decoder) = decoder else { return };
        if let Some(chain) = chain {
            *flowed = chain::run(chain, decoder, *attach, batch, arrival::slot(records, 0), bad);
            return;
        }
        for (i, record) in batch.iter().enumerate() {
            let into = arrival::slot(records, i);
            match batch.failure(i) {
                Some(reason) => *into = Err(DecodeError::new(reason)),
                None => decoder.decode_into(record, into),
            }
        }
        records.truncate(batch.len());
    }
}

impl<T> Route<T> {
    /// Runs each record of `batch` through `flow`, in order, and routes bad ones per
    /// `on_error`; adds to `counts` (received, passed on). The records in `runs` (index
    /// ranges in order, each with what its records decoded to) were decoded elsewhere
    /// and are lent to `flow`; the others are decoded here, each over the one before
    /// (`here`). `Err` when a bad record stops the run.
    #[allow(clippy::too_many_arguments)]
    fn flow<D, O, F, H>(
        &self,
        decoder: &mut D,
        batch: &RawBatch,
        runs: &mut [(Range<usize>, &mut Results<D>)],
        here: &mut Result<Option<T>, DecodeError>,
        out: &mut O,
        (flow, ahead): (&F, &H),
        counts: &mut (u64, u64),
    ) -> Result<(), RunError>
    where
        D: Decoder<Output = T>,
        O: Outputs,
        F: Fn(&T, &mut O) -> Result<(), RecordError>,
        H: Fn(&T, &O, Reach),
    {
        let mut run = 0;
        for (i, record) in batch.iter().enumerate() {
            while runs.get(run).is_some_and(|(records, _)| records.end <= i) {
                run += 1;
            }
            if let Some((records, list)) = runs.get(run) {
                for (by, reach) in [(LOOK_AHEAD, Reach::Entry), (LOOK_AHEAD / 2, Reach::State)] {
                    // Only the run's own records: its list could hold more.
                    let later = (i + by).checked_sub(records.start).filter(|&at| at < records.len());
                    if let Some(Ok(Some(later))) = later.and_then(|at| list.get(at)) {
                        ahead(later, out, reach);
                    }
                }
            }
            let lent = match runs.get_mut(run) {
                Some((records, list)) if records.start <= i => list.get_mut(i - records.start),
                _ => None,
            };
            let decoded = match lent {
                Some(decoded) => decoded,
                None => {
                    match batch.failure(i) {
                        Some(reason) => *here = Err(DecodeError::new(reason)),
                        None => decoder.decode_into(record, here),
                    }
                    &mut *here
                }
            };
            self.one(batch, i, record, decoded, out, flow, counts)?;
        }
        Ok(())
    }

    /// One record: see [`Self::flow`].
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn one<O: Outputs, F: Fn(&T, &mut O) -> Result<(), RecordError>>(
        &self,
        batch: &RawBatch,
        i: usize,
        record: &[u8],
        decoded: &mut Result<Option<T>, DecodeError>,
        out: &mut O,
        flow: &F,
        counts: &mut (u64, u64),
    ) -> Result<(), RunError> {
        match decoded {
            Ok(None) => Ok(()),
            Ok(Some(value)) => {
                counts.0 += 1;
                attach_meta(self.attach, batch, i, value);
                // Handed on: what happens further down is counted there.
                counts.1 += 1;
                let Err(e) = flow(value, out) else { return Ok(()) };
                self.failed_flow(&e, record, out)
            }
            Err(e) => {
                counts.0 += 1;
                self.failed_decode(batch, i, e, record, out)
            }
        }
    }

    /// Routes the failures of a record that went wrong downstream. Every failure is
    /// counted, even after one that stops the run.
    fn failed_flow<O: Outputs>(&self, e: &RecordError, record: &[u8], out: &mut O) -> Result<(), RunError> {
        let mut stop = Ok(());
        for (component, error) in e.failures() {
            stop = stop.and(bad_record(
                &self.events,
                self.on_error,
                component,
                &error.to_string(),
                record,
                out,
            ));
        }
        stop
    }

    /// Routes record `i` of `batch`, which did not decode.
    fn failed_decode<O: Outputs>(
        &self,
        batch: &RawBatch,
        i: usize,
        e: &mut DecodeError,
        record: &[u8],
        out: &mut O,
    ) -> Result<(), RunError> {
        let reason = match batch.origin(i) {
            Some(origin) => format!("{} (from {origin})", e.reason),
            None => std::mem::take(&mut e.reason),
        };
        bad_record(&self.events, self.on_error, self.name, &reason, record, out)
    }
}

/// A source's checkpoint is its raw source's position.
impl<D: Decoder, C> Checkpointed for Source<D, C> {
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
    pub(super) struct Scripted(pub(super) Vec<Vec<&'static str>>);

    impl Scripted {
        /// 300 batches of 7 records: numbers, and one in 50 each bad ("x"), blank, and
        /// negative (which the tests' flows fail).
        pub(super) fn numbers(seed: u64) -> Scripted {
            let mut rng = seed;
            let batches = (0..300)
                .map(|_| {
                    (0..7)
                        .map(|_| {
                            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            let text = match (rng >> 33) % 50 {
                                0 => "x".to_owned(),
                                1 => String::new(),
                                2 => "-3".to_owned(),
                                n => (rng >> 40 ^ n).to_string(),
                            };
                            &*Box::leak(text.into_boxed_str())
                        })
                        .collect()
                })
                .collect();
            Scripted(batches)
        }
    }

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
    pub(super) struct NumDecoder;

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

        fn fork(&self) -> Option<Self> {
            Some(NumDecoder)
        }
    }

    #[derive(Clone, Default)]
    pub(super) struct Shared(pub(super) Rc<RefCell<Vec<u8>>>);

    impl Shared {
        /// The dead letters written here, without their time stamps, which differ
        /// from run to run.
        pub(super) fn letters(&self) -> String {
            String::from_utf8_lossy(&self.0.borrow())
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("ts");
                    format!("{v}\n")
                })
                .collect()
        }
    }

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

    /// What flowed, the dead letters (without time stamps), (component, received, sent,
    /// dead-lettered or dropped), and the error that stopped the run.
    type Outcome = (Vec<i64>, String, Vec<(&'static str, u64, u64, u64)>, Option<String>);

    /// Runs 300 batches of 7 records (numbers, bad ones, blanks and negatives that
    /// fail in the flow) with `workers` worker threads: what flowed, the dead letters,
    /// the counters and the error.
    fn many_batches(workers: usize, on_error: OnError, read_ahead_per_worker: usize) -> Outcome {
        let mut ctx = Context::new(Settings::from_values(vec![]), 7);
        ctx.read_ahead_per_worker = read_ahead_per_worker;
        ctx.workers = crate::workers::for_threads(workers + 1).map(|n| crate::workers::Workers::start(n).unwrap());
        let batches = Scripted::numbers(7);
        let mut src = Source::new("sources.nums", Box::new(batches), NumDecoder, on_error, &ctx);
        let sink = Shared::default();
        let mut outs = Outs {
            seen: vec![],
            flushes: 0,
            dead: DeadLetters::to_sinks(vec![Box::new(sink.clone())]),
        };
        let error = loop {
            match src.poll(&mut outs, flow) {
                Ok(Poll::Finished) => break None,
                Ok(_) => {}
                Err(e) => break Some(e.to_string()),
            }
        };
        let counts = ctx
            .events
            .snapshot()
            .iter()
            .map(|(name, c)| (*name, c.received, c.sent, c.dead_lettered + c.dropped))
            .collect();
        (outs.seen, sink.letters(), counts, error)
    }

    #[test]
    fn worker_threads_decode_ahead_and_change_nothing_of_the_result() {
        for on_error in [OnError::DeadLetter, OnError::Drop, OnError::Fail] {
            let alone = many_batches(0, on_error, READ_AHEAD_PER_WORKER);
            assert!(alone.0.len() > 20, "{on_error:?}: {} records flowed", alone.0.len());
            for workers in [1, 2, 5] {
                for ahead in [READ_AHEAD_PER_WORKER, READ_AHEAD_WHILE_FIRING] {
                    // Not assert_eq: the record lists are long.
                    assert!(
                        many_batches(workers, on_error, ahead) == alone,
                        "{on_error:?}, {workers} workers, {ahead} batches ahead each"
                    );
                }
            }
        }
        let (seen, dead, _, error) = many_batches(2, OnError::DeadLetter, READ_AHEAD_PER_WORKER);
        assert_eq!(error, None);
        assert!(seen.len() > 1_800, "{}", seen.len());
        assert!(dead.lines().count() > 40, "{dead}");
    }

    #[test]
    fn the_pipeline_thread_decodes_what_slow_workers_have_not_taken_and_order_holds() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        /// Numbers, decoded slowly on worker threads; counts where each was decoded.
        #[derive(Clone)]
        struct SlowOnWorkers(Arc<[AtomicUsize; 2]>);
        impl Decoder for SlowOnWorkers {
            type Output = i64;
            fn decode(&mut self, raw: &[u8]) -> Result<Option<i64>, DecodeError> {
                let on_worker = std::thread::current()
                    .name()
                    .is_some_and(|n| n.starts_with("rill-worker"));
                if on_worker {
                    std::thread::sleep(Duration::from_millis(1));
                }
                self.0[usize::from(on_worker)].fetch_add(1, Ordering::Relaxed);
                NumDecoder.decode(raw)
            }
            fn fork(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
        let mut ctx = Context::new(Settings::from_values(vec![]), 4);
        ctx.workers = Some(crate::workers::Workers::start(1).unwrap());
        // More batches of 4 than two polls read, and a thousand more.
        let batch_count = 2 * BATCHES_PER_POLL + 1_000;
        let numbers: Vec<i64> = (0..4 * batch_count as i64).collect();
        let batches = numbers
            .chunks(4)
            .map(|c| c.iter().map(|n| &*Box::leak(n.to_string().into_boxed_str())).collect())
            .collect();
        let decoded_on = SlowOnWorkers(Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]));
        let raw = Box::new(Scripted(batches));
        let mut src = Source::new("sources.nums", raw, decoded_on.clone(), OnError::Fail, &ctx);
        let mut outs = Outs {
            seen: vec![],
            flushes: 0,
            dead: DeadLetters::to_sinks(vec![]),
        };
        while src.poll(&mut outs, flow).unwrap() != Poll::Finished {}
        assert_eq!(outs.seen, numbers);
        let [here, workers] = [0, 1].map(|i| decoded_on.0[i].load(Ordering::Relaxed));
        assert_eq!(here + workers, numbers.len());
        // The first batch of each poll is decoded here; far more were, as the worker
        // took 4 ms a batch. (How many the worker took depends on when it was
        // scheduled: none at all on a busy machine.)
        assert!(here > numbers.len() / 2, "{here} decoded here, {workers} on the worker");
        // A poll reads BATCHES_PER_POLL batches at most after its first: these flow in
        // three polls at least (more when one reads for READ_AHEAD_FOR).
        assert!(
            outs.flushes >= batch_count.div_ceil(BATCHES_PER_POLL + 1),
            "{} polls",
            outs.flushes
        );
    }

    #[test]
    fn a_source_failing_while_read_ahead_still_delivers_what_it_read_first() {
        /// Full batches of two numbers, then a read error.
        struct Failing(u32);
        impl RawSource for Failing {
            fn poll(&mut self, batch: &mut RawBatch, _: usize) -> Result<Poll, RunError> {
                self.0 += 1;
                if self.0 > 3 {
                    return Err(RunError::new("reading: disk gone"));
                }
                batch.push(self.0.to_string().as_bytes());
                batch.push(b"0");
                Ok(Poll::Ready)
            }
        }
        for workers in [0, 1, 3] {
            let mut ctx = ctx();
            ctx.workers = crate::workers::for_threads(workers + 1).map(|n| crate::workers::Workers::start(n).unwrap());
            let mut src = Source::new("sources.nums", Box::new(Failing(0)), NumDecoder, OnError::Fail, &ctx);
            let mut outs = Outs {
                seen: vec![],
                flushes: 0,
                dead: DeadLetters::stderr(),
            };
            let error = loop {
                if let Err(e) = src.poll(&mut outs, flow) {
                    break e.to_string();
                }
            };
            assert_eq!(error, "reading: disk gone");
            assert_eq!(outs.seen, [1, 0, 2, 0, 3, 0], "{workers} workers");
        }
    }

    #[test]
    fn records_a_worker_decoded_are_shown_ahead_eight_then_four_before_they_flow_within_their_batch() {
        /// What happened, in order: a record flowed, or was shown ahead.
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Seen {
            Flowed(i64),
            Ahead(i64, Reach),
        }
        let mut ctx = Context::new(Settings::from_values(vec![]), 4);
        ctx.workers = Some(crate::workers::Workers::start(1).unwrap());
        // Full batches (at least 4) of different lengths, their lists reused.
        let lengths = [20, 5, 13, 4, 9];
        let (mut batches, mut batch_of, mut next) = (Vec::new(), Vec::new(), 0i64);
        for b in 0..600 {
            let len = lengths[b % lengths.len()];
            batches.push(
                (next..next + len)
                    .map(|n| &*Box::leak(n.to_string().into_boxed_str()))
                    .collect(),
            );
            batch_of.extend(std::iter::repeat_n(b, len as usize));
            next += len;
        }
        let mut src = Source::new(
            "sources.nums",
            Box::new(Scripted(batches)),
            NumDecoder,
            OnError::Fail,
            &ctx,
        );
        let mut outs = Outs {
            seen: vec![],
            flushes: 0,
            dead: DeadLetters::to_sinks(vec![]),
        };
        let log = RefCell::new(Vec::new());
        let flowed = |v: &i64, out: &mut Outs| {
            log.borrow_mut().push(Seen::Flowed(*v));
            flow(v, out)
        };
        let ahead = |v: &i64, _: &Outs, reach| log.borrow_mut().push(Seen::Ahead(*v, reach));
        while src.poll_ahead(&mut outs, flowed, ahead).unwrap() != Poll::Finished {}
        assert_eq!(outs.seen, (0..next).collect::<Vec<_>>(), "the records flowed in order");
        let log = log.into_inner();
        let mut shown = [0, 0];
        for (at, seen) in log.iter().enumerate() {
            let Seen::Ahead(v, reach) = *seen else { continue };
            // The next record to flow is the one `by` before `v`, in the same batch.
            let by = if reach == Reach::Entry {
                LOOK_AHEAD
            } else {
                LOOK_AHEAD / 2
            };
            let flows = log[at..].iter().find_map(|s| match s {
                Seen::Flowed(f) => Some(*f),
                Seen::Ahead(..) => None,
            });
            assert_eq!(flows, Some(v - by as i64), "{seen:?}");
            assert_eq!(batch_of[v as usize], batch_of[(v - by as i64) as usize], "{seen:?}");
            shown[usize::from(reach == Reach::State)] += 1;
        }
        // Only the first batch of a poll is decoded on the pipeline thread, without a look
        // ahead: the others are shown, whoever decoded them.
        assert!(shown[0] > 1_000 && shown[1] > 1_000, "{shown:?} shown ahead");
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
