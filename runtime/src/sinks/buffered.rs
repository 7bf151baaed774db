//! The delivery side of a disk buffer: a message sink fed from the buffer's log.
//!
//! [`MessageOutput`](super::MessageOutput) appends each record to the [`Log`] (a step's
//! records with one write, at its flush); its sources are acknowledged once the fsync
//! covering the record is done. [`Buffered`]
//! then hands the log's records to the real sink in order, at most [`MAX_IN_FLIGHT`]
//! at a time (fewer if the sink's client takes fewer without waiting:
//! `MessageSink::max_in_flight`), and applies what comes back:
//! - delivered: the delivered position moves past it (in order; outcomes may come
//!   back out of order), and a segment wholly delivered is deleted;
//! - a failure the destination may not repeat (down, timed out: `Outcome::retriable`):
//!   sent again from the log after [`RETRY_AFTER`], in order, and never a record already
//!   delivered;
//! - refused for good (too large, not authorised): a dead letter with the reason.
//!
//! Nothing is delivered twice from the buffer within a run. After a crash, records
//! delivered since the delivered position was last saved (at every fsync) are sent
//! again: at least once, like the broker client's own retries.

use super::message::{Outcome, Undelivered};
use super::MessageSink;
use crate::buffer::frame::{self, decode_message, encode_message};
use crate::buffer::log::{AppendError, Log, Read};
use crate::buffer::{BufferOptions, Fsync, WhenFull};
use crate::errors::{EvalError, RecordError, RunError, StartError};
use crate::log;
use crate::sinks::Address;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Records handed to the sink and not yet confirmed, at most (fewer when the client
/// says so through `max_in_flight`: Kafka's queue, 100,000 by default; MQTT's 100).
pub const MAX_IN_FLIGHT: usize = 100_000;
/// How long after a failure the destination may not repeat the log is sent again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// At the end of the input, how long closing waits for a destination that makes no
/// progress before leaving the rest in the log.
const CLOSE_PATIENCE: Duration = Duration::from_secs(10);
/// Records taken wait in memory, framed, for one write to the log at the next flush, or
/// once this many bytes wait.
const PENDING_BYTES: usize = 256 << 10;
/// How long a blocked append waits between looks at the destination.
const BLOCKED_WAIT: Duration = Duration::from_millis(10);

/// What happened to a record this buffer reads back, counted by the output.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: u64,
    pub dead_lettered: u64,
    pub dropped: u64,
}

pub struct Buffered {
    component: &'static str,
    log: Log,
    options: BufferOptions,
    /// The next position to hand to the sink.
    cursor: u64,
    /// Tag → the record's position and the next one.
    in_flight: HashMap<u64, (u64, u64)>,
    /// Position → next position, for the records in flight.
    in_flight_at: BTreeMap<u64, u64>,
    /// Records (or damaged stretches, `false`) past the delivered position that are
    /// settled: delivered or dead-lettered. Position → (next position, a record?).
    settled: BTreeMap<u64, (u64, bool)>,
    next_tag: u64,
    /// After a failure to retry: nothing is sent before then.
    paused_until: Option<Instant>,
    /// Records taken and not yet written to the log, framed; how many; their epochs.
    pending: Vec<u8>,
    pending_records: u64,
    pending_epochs: Vec<(u64, u64)>,
    /// Records written since the last fsync, by epoch: settled in `acks` after it.
    unsynced: Vec<(u64, u64)>,
    last_sync: Instant,
    /// Dead letters waiting for the next flush: reason and payload.
    dead: Vec<(String, Vec<u8>)>,
    counts: Delivery,
    /// The buffer is full and that was said (a warning once per episode).
    full_reported: bool,
    outcomes: Vec<Outcome>,
    record: Vec<u8>,
    read: Vec<u8>,
}

impl Buffered {
    /// Opens the buffer of `component` under the state directory.
    pub fn open(
        component: &'static str,
        options: BufferOptions,
        state_dir: Option<&std::path::Path>,
    ) -> Result<Self, StartError> {
        let Some(state_dir) = state_dir else {
            return Err(StartError::new(format!(
                "{component} has a disk buffer: give a state directory with --state-dir DIR (or RILL_STATE_DIR)"
            )));
        };
        let dir = crate::buffer::buffer_dir(state_dir, component);
        let log = Log::open(&dir, options.max_bytes, component).map_err(|e| {
            StartError::new(format!(
                "{component}: cannot open the buffer in `{}`: {e}",
                dir.display()
            ))
        })?;
        Ok(Buffered {
            component,
            cursor: log.delivered(),
            log,
            options,
            in_flight: HashMap::new(),
            in_flight_at: BTreeMap::new(),
            settled: BTreeMap::new(),
            next_tag: 0,
            paused_until: None,
            pending: Vec::new(),
            pending_records: 0,
            pending_epochs: Vec::new(),
            unsynced: Vec::new(),
            last_sync: Instant::now(),
            dead: Vec::new(),
            counts: Delivery::default(),
            full_reported: false,
            outcomes: Vec::new(),
            record: Vec::new(),
            read: Vec::new(),
        })
    }

    /// Records taken and not yet delivered (in flight and not yet written included).
    pub fn records(&self) -> u64 {
        self.log.records() + self.pending_records
    }

    pub fn disk_bytes(&self) -> u64 {
        self.log.disk_bytes()
    }

    /// Takes one message under `epoch`. It is framed in memory and written to the log
    /// with the others of its step at the next flush ([`Self::write_pending`]), or
    /// sooner once [`PENDING_BYTES`] wait: one write for many records. A record larger
    /// than the whole buffer is the record's error.
    pub fn append(
        &mut self,
        payload: &[u8],
        address: Address<'_>,
        epoch: u64,
        sink: &mut dyn MessageSink,
    ) -> Result<(), Appended> {
        self.record.clear();
        encode_message(payload, &address, &mut self.record);
        if !self.log.fits(self.record.len()) {
            return Err(Appended::Record(RecordError::new(
                self.component,
                EvalError::Refused {
                    reason: self.too_large(self.record.len()),
                },
            )));
        }
        frame::frame(&self.record, &mut self.pending);
        self.pending_records += 1;
        add_epoch(&mut self.pending_epochs, epoch, 1);
        if self.pending.len() >= PENDING_BYTES {
            self.write_pending(sink).map_err(Appended::Run)?;
        }
        Ok(())
    }

    fn too_large(&self, len: usize) -> String {
        format!(
            "a message of {len} bytes does not fit in the buffer (max_size {} bytes)",
            self.options.max_bytes
        )
    }

    /// Writes the records taken since the last time to the log with one write; when
    /// that fails (the log or the disk is full, or they are more than a segment holds)
    /// the log is as it was and they are appended one by one, `when_full` applying to
    /// each. Their epochs settle at the fsync that follows. When the pipeline must stop
    /// first, the records not written are counted as dropped and never settled: their
    /// sources send them again on the next start.
    pub fn write_pending(&mut self, sink: &mut dyn MessageSink) -> Result<(), RunError> {
        if self.pending_records == 0 {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let count = std::mem::take(&mut self.pending_records);
        let epochs = std::mem::take(&mut self.pending_epochs);
        let written = match self.log.append_frames(&pending, count) {
            Ok(_) => {
                self.full_reported = false;
                for (epoch, n) in epochs {
                    add_epoch(&mut self.unsynced, epoch, n);
                }
                Ok(())
            }
            Err(_) => self.append_one_by_one(&pending, epochs, sink),
        };
        self.pending = pending;
        self.pending.clear();
        written
    }

    fn append_one_by_one(
        &mut self,
        frames: &[u8],
        epochs: Vec<(u64, u64)>,
        sink: &mut dyn MessageSink,
    ) -> Result<(), RunError> {
        let mut records = frame::scan(frames).filter_map(|step| match step {
            frame::Step::Record { offset, next } => frames.get(offset + frame::HEADER as usize..next),
            frame::Step::Damaged(_) => None,
        });
        let mut left: u64 = epochs.iter().map(|(_, n)| n).sum();
        for (epoch, n) in epochs {
            for _ in 0..n {
                let record = records.next().unwrap_or_default();
                if let Err(e) = self.append_one(record, sink) {
                    let component = self.component;
                    self.counts.dropped += left;
                    log::warn(
                        "buffer: records not written to the buffer are dropped; their sources send them again on the next start",
                        &[("component", json!(component)), ("dropped", json!(left))],
                    );
                    return Err(e);
                }
                // Written, dropped by `when_full` or a dead letter: settled at the next fsync.
                add_epoch(&mut self.unsynced, epoch, 1);
                left -= 1;
            }
        }
        Ok(())
    }

    /// Appends one record, applying `when_full` while the log is full.
    fn append_one(&mut self, record: &[u8], sink: &mut dyn MessageSink) -> Result<(), RunError> {
        loop {
            let err = match self.log.append(record) {
                Ok(_) => {
                    self.full_reported = false;
                    return Ok(());
                }
                Err(e) => e,
            };
            match err {
                AppendError::TooLarge | AppendError::Split => {
                    // Refused when it was taken; never expected here.
                    self.counts.dead_lettered += 1;
                    self.dead.push((self.too_large(record.len()), record.to_vec()));
                    return Ok(());
                }
                AppendError::Io(e) => {
                    return Err(RunError::new(format!(
                        "{}: cannot write to the buffer in `{}`: {e}",
                        self.component,
                        self.log.dir().display()
                    )))
                }
                AppendError::Full { disk } => {
                    if !self.when_full(disk, sink)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The log is full: waits for delivery to make room, or drops the oldest records.
    /// `false` when the record at hand is the one dropped.
    fn when_full(&mut self, disk: bool, sink: &mut dyn MessageSink) -> Result<bool, RunError> {
        let why = if disk { "the disk is full" } else { "max_size reached" };
        match self.options.when_full {
            WhenFull::Block => {
                if !self.full_reported {
                    self.full_reported = true;
                    log::warn(
                        "buffer full: waiting for deliveries to make room (when_full: block)",
                        &self.fields(why),
                    );
                }
                let before = (self.log.records(), self.in_flight.len());
                self.pump(sink)?;
                if (self.log.records(), self.in_flight.len()) != before {
                    // Deliveries go on: try again at once.
                    return Ok(true);
                }
                if crate::shutdown::give_up_waiting() {
                    return Err(RunError::new(format!(
                        "{}: the buffer is full ({why}) and a stop was requested: records not taken",
                        self.component
                    )));
                }
                std::thread::sleep(BLOCKED_WAIT);
                Ok(true)
            }
            WhenFull::DropOldest => {
                // Dropping segments frees their space on a full disk too.
                let dropped = self
                    .log
                    .drop_oldest()
                    .map_err(|e| RunError::new(format!("{}: cannot drop from the buffer: {e}", self.component)))?;
                self.cursor = self.cursor.max(self.log.delivered());
                let count = dropped.unwrap_or(1);
                self.counts.dropped += count;
                let mut fields = self.fields(why);
                fields.push(("dropped", json!(count)));
                log::warn(
                    "buffer full: the oldest undelivered records were dropped (when_full: drop_oldest)",
                    &fields,
                );
                // With nothing older to give up (the disk is full of something else),
                // this record is the oldest.
                Ok(dropped.is_some())
            }
        }
    }

    fn fields(&self, why: &str) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("component", json!(self.component)),
            ("why", json!(why)),
            ("records", json!(self.log.records())),
            ("bytes", json!(self.log.disk_bytes())),
        ]
    }

    /// Makes appended records durable when `fsync:` says so; returns the epochs (and
    /// counts) now safe, for `acks`. Saves the delivered position at the same time.
    pub fn sync_if_due(&mut self, force: bool) -> Result<Vec<(u64, u64)>, RunError> {
        let due = force
            || match self.options.fsync {
                Fsync::Always => true,
                Fsync::Every(every) => self.last_sync.elapsed() >= every,
            };
        if !due {
            if self.log.unsynced() {
                if let Fsync::Every(every) = self.options.fsync {
                    crate::wake::look_again_within(every.saturating_sub(self.last_sync.elapsed()));
                }
            }
            return Ok(Vec::new());
        }
        self.last_sync = Instant::now();
        let synced = self.log.sync().and_then(|()| self.log.save_delivered());
        synced.map_err(|e| RunError::new(format!("{}: cannot sync the buffer: {e}", self.component)))?;
        Ok(std::mem::take(&mut self.unsynced))
    }

    /// Applies the sink's outcomes, then hands it the next records of the log.
    pub fn pump(&mut self, sink: &mut dyn MessageSink) -> Result<(), RunError> {
        let polled = sink.poll(&mut self.outcomes);
        self.apply_outcomes()?;
        self.send_more(sink)?;
        if self.log.records() > 0 {
            // Outcomes and retries do not wake the pipeline.
            crate::wake::look_again_within(crate::wake::DEFAULT_LOOK_AGAIN);
        }
        polled
    }

    fn apply_outcomes(&mut self) -> Result<(), RunError> {
        let mut retry = None;
        for outcome in std::mem::take(&mut self.outcomes) {
            // Unknown: a record dropped while in flight.
            let Some((pos, next)) = self.in_flight.remove(&outcome.tag) else {
                continue;
            };
            self.in_flight_at.remove(&pos);
            match outcome.failure {
                None => {
                    self.counts.sent += 1;
                    self.settled.insert(pos, (next, true));
                }
                Some((reason, _)) if outcome.retriable => {
                    self.cursor = self.cursor.min(pos);
                    retry.get_or_insert(reason);
                }
                Some((reason, payload)) => {
                    self.counts.dead_lettered += 1;
                    self.dead.push((format!("delivery failed: {reason}"), payload));
                    self.settled.insert(pos, (next, true));
                }
            }
        }
        if let Some(reason) = retry {
            if self.paused_until.is_none() {
                let mut fields = self.fields("the destination failed");
                fields.push(("reason", json!(reason)));
                fields.push(("retry_in_ms", json!(RETRY_AFTER.as_millis() as u64)));
                log::warn("buffer: delivery failed; sent again from the buffer", &fields);
            }
            self.paused_until = Some(Instant::now() + RETRY_AFTER);
        }
        self.advance_delivered()
    }

    /// Moves the delivered position over the settled records that follow it.
    fn advance_delivered(&mut self) -> Result<(), RunError> {
        while let Some((&pos, &(next, record))) = self.settled.first_key_value() {
            if pos > self.log.delivered() {
                break;
            }
            self.settled.remove(&pos);
            self.log
                .delivered_through(pos, next, record)
                .map_err(|e| RunError::new(format!("{}: cannot delete a delivered segment: {e}", self.component)))?;
        }
        Ok(())
    }

    fn send_more(&mut self, sink: &mut dyn MessageSink) -> Result<(), RunError> {
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                return Ok(());
            }
            self.paused_until = None;
        }
        self.cursor = self.cursor.max(self.log.delivered());
        let limit = sink
            .max_in_flight()
            .map_or(MAX_IN_FLIGHT, |n| n.clamp(1, MAX_IN_FLIGHT));
        while self.in_flight.len() < limit {
            // A resend goes past what is settled or still in flight.
            if let Some(&next) = self.in_flight_at.get(&self.cursor) {
                self.cursor = next;
                continue;
            }
            if let Some(&(next, _)) = self.settled.get(&self.cursor) {
                self.cursor = next;
                continue;
            }
            let pos = self.cursor;
            let read = self
                .log
                .read(pos, &mut self.read)
                .map_err(|e| RunError::new(format!("{}: cannot read the buffer: {e}", self.component)))?;
            match read {
                Read::End => break,
                Read::Damaged { next, bytes, why } => {
                    log::warn(
                        "buffer: damaged bytes skipped",
                        &[
                            ("component", json!(self.component)),
                            ("position", json!(pos)),
                            ("bytes", json!(bytes)),
                            ("why", json!(why)),
                        ],
                    );
                    self.settled.insert(pos, (next, false));
                    self.cursor = next;
                }
                Read::Record { next } => {
                    self.cursor = next;
                    let Some(message) = decode_message(&self.read) else {
                        self.counts.dead_lettered += 1;
                        self.dead
                            .push(("not a message of this buffer".into(), std::mem::take(&mut self.read)));
                        self.settled.insert(pos, (next, true));
                        continue;
                    };
                    // Tags stay below 2^32: a sink may keep them in a 32-bit `usize`.
                    let tag = self.next_tag;
                    self.next_tag = (self.next_tag + 1) & u64::from(u32::MAX);
                    match sink.send(message.payload, message.address(), tag) {
                        Ok(()) => {
                            self.in_flight.insert(tag, (pos, next));
                            self.in_flight_at.insert(pos, next);
                        }
                        Err(reason) => {
                            self.counts.dead_lettered += 1;
                            self.dead.push((format!("refused: {reason}"), message.payload.to_vec()));
                            self.settled.insert(pos, (next, true));
                        }
                    }
                }
            }
        }
        self.advance_delivered()
    }

    /// What was delivered, dead-lettered or dropped since the last call, and the dead
    /// letters to write.
    pub fn take(&mut self) -> (Delivery, Vec<(String, Vec<u8>)>) {
        (std::mem::take(&mut self.counts), std::mem::take(&mut self.dead))
    }

    /// The end: at the end of the input delivers what it can while the destination
    /// makes progress; on a stop, or once it makes none, leaves the rest in the log.
    /// Returns the epochs made safe by the last fsync.
    pub fn close(&mut self, sink: &mut dyn MessageSink) -> Result<Vec<(u64, u64)>, RunError> {
        self.write_pending(sink)?;
        let stopping = crate::shutdown::stop_requested();
        let mut progress = Instant::now();
        while !stopping && self.log.records() > 0 && progress.elapsed() < CLOSE_PATIENCE {
            let before = (self.log.records(), self.in_flight.len());
            self.pump(sink)?;
            if crate::shutdown::stop_requested() {
                break;
            }
            if (self.log.records(), self.in_flight.len()) != before {
                progress = Instant::now();
            } else {
                std::thread::sleep(BLOCKED_WAIT);
            }
        }
        // On a stop, a client with records in flight is not waited for (a Kafka client
        // would wait 30 s for a broker that is away): they are in the log, undelivered.
        let closed = if stopping && !self.in_flight.is_empty() {
            Ok(())
        } else {
            sink.close(&mut self.outcomes)
        };
        self.apply_outcomes()?;
        let safe = self.sync_if_due(true)?;
        self.log
            .close()
            .map_err(|e| RunError::new(format!("{}: cannot close the buffer: {e}", self.component)))?;
        if self.log.records() > 0 {
            let mut fields = self.fields("the run ends");
            if let Err(Undelivered { reason, .. }) = closed {
                fields.push(("reason", json!(reason)));
            }
            log::info(
                "buffer: undelivered records stay in the buffer for the next start",
                &fields,
            );
        }
        Ok(safe)
    }
}

/// Why [`Buffered::append`] did not take a record.
pub enum Appended {
    /// The record's own error (larger than the buffer).
    Record(RecordError),
    /// The pipeline must stop.
    Run(RunError),
}

/// Adds `n` records of `epoch` to a list of (epoch, count) in epoch order.
fn add_epoch(epochs: &mut Vec<(u64, u64)>, epoch: u64, n: u64) {
    match epochs.last_mut() {
        Some((e, count)) if *e == epoch => *count += n,
        _ => epochs.push((epoch, n)),
    }
}

#[cfg(test)]
mod tests {
    use crate::buffer::{BufferOptions, Fsync, WhenFull};
    use crate::dead_letter::DeadLetters;
    use crate::driver::Context;
    use crate::errors::RunError;
    use crate::formats::JsonEncoder;
    use crate::settings::Settings;
    use crate::sinks::tests::MemSink;
    use crate::sinks::{Address, MessageOutput, MessageSink, Outcome, Undelivered};
    use crate::test_util::TempDir;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A broker that is up or down; while down every message in flight fails (to be
    /// tried again); it refuses for good any payload holding `"big"`.
    #[derive(Clone, Default)]
    struct Broker {
        state: Rc<RefCell<BrokerState>>,
    }

    #[derive(Default)]
    struct BrokerState {
        down: bool,
        in_flight: Vec<(u64, Vec<u8>)>,
        /// Payloads delivered, in order.
        delivered: Vec<String>,
        topics: Vec<Option<String>>,
    }

    impl MessageSink for Broker {
        fn send(&mut self, payload: &[u8], address: Address<'_>, tag: u64) -> Result<(), String> {
            let mut s = self.state.borrow_mut();
            s.topics.push(address.topic.map(str::to_owned));
            s.in_flight.push((tag, payload.to_vec()));
            Ok(())
        }
        fn poll(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError> {
            let mut s = self.state.borrow_mut();
            let down = s.down;
            for (tag, payload) in std::mem::take(&mut s.in_flight) {
                let text = String::from_utf8_lossy(&payload).into_owned();
                let outcome = if down {
                    Outcome {
                        tag,
                        failure: Some(("broker down".into(), payload)),
                        retriable: true,
                    }
                } else if text.contains("big") {
                    Outcome {
                        tag,
                        failure: Some(("too large".into(), payload)),
                        retriable: false,
                    }
                } else {
                    s.delivered.push(text);
                    Outcome::delivered(tag)
                };
                outcomes.push(outcome);
            }
            Ok(())
        }
        fn close(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), Undelivered> {
            self.poll(outcomes).ok();
            Ok(())
        }
    }

    fn options() -> BufferOptions {
        BufferOptions {
            max_bytes: 1 << 20,
            when_full: WhenFull::Block,
            fsync: Fsync::Always,
        }
    }

    fn ctx(state: &std::path::Path) -> Context {
        let mut ctx = Context::new(Settings::from_values(vec![]), 8);
        ctx.state_dir = Some(state.to_path_buf());
        ctx
    }

    type Out = MessageOutput<JsonEncoder<serde_json::Value>>;

    fn output(broker: &Broker, ctx: &Context) -> Out {
        MessageOutput::buffered(
            "sinks.out",
            Box::new(broker.clone()),
            JsonEncoder::new(),
            options(),
            ctx,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn send(out: &mut Out, n: i64) {
        let topic = format!("t/{n}");
        let address = Address {
            topic: Some(&topic),
            ..Address::default()
        };
        assert_eq!(out.send(&serde_json::json!(n), address), Ok(()));
    }

    #[test]
    fn a_checkpoint_draining_does_not_wait_for_the_next_fsync() {
        let tmp = TempDir::new("buffered-drain");
        let state = std::path::Path::new(&tmp.path("state")).to_path_buf();
        let ctx = ctx(&state);
        let broker = Broker::default();
        let hourly = BufferOptions {
            fsync: Fsync::Every(std::time::Duration::from_secs(3600)),
            ..options()
        };
        let mut out = MessageOutput::buffered("sinks.out", Box::new(broker), JsonEncoder::new(), hourly, &ctx)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut dead = DeadLetters::to_sinks(vec![Box::new(MemSink::default())]);
        ctx.acks.next_epoch();
        send(&mut out, 1);
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(ctx.acks.in_flight(), 1, "appended, not yet synced: not safe");
        ctx.acks.set_draining(true);
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(ctx.acks.in_flight(), 0, "synced for the checkpoint");
    }

    /// Bytes in the buffer's segment files.
    fn on_disk(state: &std::path::Path) -> u64 {
        let dir = crate::buffer::buffer_dir(state, "sinks.out");
        crate::buffer::log::list_segments(&dir)
            .iter()
            .filter_map(|(_, path)| std::fs::metadata(path).ok())
            .map(|m| m.len())
            .sum()
    }

    #[test]
    fn records_taken_are_written_together_at_the_flush_and_counted_meanwhile() {
        let tmp = TempDir::new("buffered-batch");
        let state = std::path::Path::new(&tmp.path("state")).to_path_buf();
        let ctx = ctx(&state);
        let broker = Broker::default();
        broker.state.borrow_mut().down = true;
        let mut out = output(&broker, &ctx);
        let mut dead = DeadLetters::stderr();
        for epoch in 0..3 {
            ctx.acks.next_epoch();
            for n in 0..4 {
                send(&mut out, epoch * 4 + n);
            }
        }
        assert_eq!(on_disk(&state), 0, "nothing written before the flush");
        // The last epoch's records are told to `acks` at the flush.
        assert_eq!(ctx.acks.in_flight(), 8, "taken, not yet safe");
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert!(on_disk(&state) > 12 * 8, "written at the flush");
        assert_eq!(ctx.acks.in_flight(), 0, "every epoch settled by the fsync");
        let c = ctx.events.snapshot()[0].1;
        assert_eq!((c.received, c.queued), (12, 12), "{c:?}");
        broker.state.borrow_mut().down = false;
        let started = std::time::Instant::now();
        while broker.state.borrow().delivered.len() < 12 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "never delivered"
            );
            assert_eq!(out.flush(&mut dead), Ok(()));
        }
        let want: Vec<String> = (0..12).map(|n| n.to_string()).collect();
        assert_eq!(broker.state.borrow().delivered, want);
    }

    #[test]
    fn an_outage_is_replayed_in_order_without_duplicates_and_refusals_become_dead_letters() {
        let tmp = TempDir::new("buffered-outage");
        let state = std::path::Path::new(&tmp.path("state")).to_path_buf();
        let ctx = ctx(&state);
        let broker = Broker::default();
        let mut out = output(&broker, &ctx);
        let letters = MemSink::default();
        let mut dead = DeadLetters::to_sinks(vec![Box::new(letters.clone())]);
        ctx.acks.next_epoch();
        for n in 0..3 {
            send(&mut out, n);
        }
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(ctx.acks.in_flight(), 0, "settled once in the log (fsync: always)");
        broker.state.borrow_mut().down = true;
        for n in 3..6 {
            send(&mut out, n);
        }
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(
            ctx.acks.in_flight(),
            0,
            "sources are acknowledged while the broker is down"
        );
        let _ = out.send(&serde_json::json!("big"), Address::default());
        broker.state.borrow_mut().down = false;
        for n in 6..8 {
            send(&mut out, n);
        }
        // The retry comes after `RETRY_AFTER`.
        let started = std::time::Instant::now();
        while broker.state.borrow().delivered.len() < 8 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "never delivered"
            );
            assert_eq!(out.flush(&mut dead), Ok(()));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(out.close(&mut dead), Ok(()));
        let want: Vec<String> = (0..8).map(|n| n.to_string()).collect();
        assert_eq!(broker.state.borrow().delivered, want, "in order, none twice");
        assert_eq!(
            broker.state.borrow().topics[0].as_deref(),
            Some("t/0"),
            "the address is kept"
        );
        assert_eq!(dead.flush(), Ok(()));
        let letter: serde_json::Value = serde_json::from_slice(&letters.data.borrow()).unwrap_or_default();
        assert_eq!(letter["reason"], serde_json::json!("delivery failed: too large"));
        let c = ctx.events.snapshot()[0].1;
        assert_eq!(
            (c.received, c.sent, c.dead_lettered, c.dropped, c.queued),
            (9, 8, 1, 0, 0)
        );
        assert_eq!(c.buffer, Some((0, 0)), "no segment left once everything is delivered");
        assert!(crate::buffer::log::list_segments(&crate::buffer::buffer_dir(&state, "sinks.out")).is_empty());
    }

    #[test]
    fn what_is_undelivered_at_the_end_is_delivered_first_on_the_next_start() {
        let tmp = TempDir::new("buffered-restart");
        let state = std::path::Path::new(&tmp.path("state")).to_path_buf();
        let broker = Broker::default();
        broker.state.borrow_mut().down = true;
        {
            let ctx = ctx(&state);
            let mut out = output(&broker, &ctx);
            let mut dead = DeadLetters::stderr();
            for n in 0..4 {
                send(&mut out, n);
            }
            assert_eq!(out.flush(&mut dead), Ok(()));
            // The broker stays down for the close's patience (or, after another test's
            // signal, is not waited for at all): the records stay in the log.
            broker.state.borrow_mut().in_flight.clear();
            assert_eq!(out.close(&mut dead), Ok(()), "undelivered records are not an error");
            let c = ctx.events.snapshot()[0].1;
            assert_eq!((c.received, c.sent, c.queued), (4, 0, 4));
        }
        broker.state.borrow_mut().down = false;
        let ctx = ctx(&state);
        let mut out = output(&broker, &ctx);
        let mut dead = DeadLetters::stderr();
        send(&mut out, 4);
        // Delivered by flushes (a close after another test's signal would not wait).
        let started = std::time::Instant::now();
        while broker.state.borrow().delivered.len() < 5 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "never delivered"
            );
            assert_eq!(out.flush(&mut dead), Ok(()));
        }
        assert_eq!(out.close(&mut dead), Ok(()));
        let want: Vec<String> = (0..5).map(|n| n.to_string()).collect();
        assert_eq!(broker.state.borrow().delivered, want);
        let c = ctx.events.snapshot()[0].1;
        assert_eq!(
            (c.received, c.sent, c.queued),
            (5, 5, 0),
            "the log's records count as received"
        );
    }

    fn output_with(broker: &Broker, ctx: &Context, options: BufferOptions) -> Out {
        MessageOutput::buffered("sinks.out", Box::new(broker.clone()), JsonEncoder::new(), options, ctx)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_full_buffer_that_blocks_delivers_to_make_room_and_loses_nothing() {
        let tmp = TempDir::new("buffered-block");
        let state = std::path::Path::new(&tmp.path("state")).to_path_buf();
        let ctx = ctx(&state);
        let broker = Broker::default();
        let small = BufferOptions {
            max_bytes: 8 << 10,
            when_full: WhenFull::Block,
            fsync: Fsync::millis(50),
        };
        let mut out = output_with(&broker, &ctx, small);
        let mut dead = DeadLetters::stderr();
        // Far more than 8 KiB, without a flush: each full append serves deliveries.
        for n in 0..2000 {
            send(&mut out, n);
        }
        // The rest by flushes (a close after another test's signal would not wait).
        let started = std::time::Instant::now();
        while broker.state.borrow().delivered.len() < 2000 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "never delivered"
            );
            assert_eq!(out.flush(&mut dead), Ok(()));
        }
        assert_eq!(out.close(&mut dead), Ok(()));
        let want: Vec<String> = (0..2000).map(|n| n.to_string()).collect();
        assert_eq!(broker.state.borrow().delivered, want);
        let c = ctx.events.snapshot()[0].1;
        assert_eq!((c.received, c.sent, c.dropped), (2000, 2000, 0));
    }

    #[test]
    fn a_full_buffer_that_drops_the_oldest_counts_them_and_keeps_the_newest() {
        let tmp = TempDir::new("buffered-drop");
        let state = std::path::Path::new(&tmp.path("state")).to_path_buf();
        let ctx = ctx(&state);
        let broker = Broker::default();
        broker.state.borrow_mut().down = true;
        let small = BufferOptions {
            max_bytes: 8 << 10,
            when_full: WhenFull::DropOldest,
            fsync: Fsync::Always,
        };
        let mut out = output_with(&broker, &ctx, small);
        let mut dead = DeadLetters::stderr();
        for n in 0..2000 {
            send(&mut out, n);
        }
        assert_eq!(out.flush(&mut dead), Ok(()));
        let c = ctx.events.snapshot()[0].1;
        let buffered = c.buffer.map_or(0, |(records, _)| records);
        assert!(c.dropped > 0 && buffered > 0, "{c:?}");
        assert_eq!(c.received, c.sent + c.dead_lettered + c.dropped + buffered, "{c:?}");
        assert!(c.buffer.is_some_and(|(_, bytes)| bytes <= 8 << 10), "{c:?}");
        // What is left is the newest, delivered in order once the broker is back.
        broker.state.borrow_mut().down = false;
        let started = std::time::Instant::now();
        while ctx.events.snapshot()[0].1.queued > 0 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "never delivered"
            );
            assert_eq!(out.flush(&mut dead), Ok(()));
        }
        let delivered = broker.state.borrow().delivered.clone();
        assert_eq!(delivered.last().map(String::as_str), Some("1999"));
        let first: i64 = delivered.first().and_then(|d| d.parse().ok()).unwrap_or(0);
        let want: Vec<String> = (first..2000).map(|n| n.to_string()).collect();
        assert_eq!(delivered, want, "a contiguous run of the newest, in order");
        assert_eq!(first as u64, ctx.events.snapshot()[0].1.dropped);
    }

    #[test]
    fn a_buffer_without_a_state_directory_is_a_start_error() {
        let ctx = Context::new(Settings::from_values(vec![]), 8);
        let err = MessageOutput::buffered(
            "sinks.out",
            Box::new(Broker::default()),
            JsonEncoder::<serde_json::Value>::new(),
            options(),
            &ctx,
        )
        .err()
        .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--state-dir")));
    }
}
