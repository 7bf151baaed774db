//! Internal events: typed counters per component, and the summary logged at exit.
//!
//! All counting goes through [`InternalEvent`] in this one module (Vector's
//! `internal_events` model) instead of ad-hoc counters in every connector, so the set of
//! metrics is visible in one place and a metrics endpoint can later read the same
//! registry. Counters are atomics so the metrics endpoint ([`crate::metrics`]) reads
//! them from its own thread; components emit per batch, not per record, to keep the
//! hot path free of them. Besides counters the registry holds gauges (state size,
//! watermark, queue length), each source's connection state and the driver loop's
//! last step, which `/health` reads.

use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Something that happened to records in a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalEvent {
    /// Records that entered the component.
    Received(u64),
    /// Records the component passed on (a source to its flow, a transform downstream, a
    /// sink to its target, a window a late record to its `.late` readers).
    Sent(u64),
    /// Records a filter did not let through.
    Filtered(u64),
    /// Records a window or table folded into its state; their effect leaves later, in
    /// the results counted by `Emitted`.
    Aggregated(u64),
    /// Results a window or table handed downstream.
    Emitted(u64),
    /// Results of a window, table, pattern or join that its own `select` could not
    /// make (dead letters or dropped, per its `on_error`): not records it received, so
    /// outside `received = sent + ..`.
    ResultsFailed(u64),
    /// Bad records sent to the dead-letter output.
    DeadLettered(u64),
    /// Bad records dropped (`on_error: drop`).
    Dropped(u64),
    /// Records that arrived after their windows closed (routed per the window's `late:`).
    Late(u64),
    /// State entries a window or table gave up early because of `max_keys`.
    Evicted(u64),
    /// Table keys removed by their `ttl`.
    Expired(u64),
    /// A sample of a window's or table's state size: the entries and bytes held now
    /// (gauges), and the most entries held since the last sample (the peak is kept).
    State {
        entries: u64,
        peak_entries: u64,
        bytes: u64,
    },
    /// Bytes of the records a source read (payloads, without line ends).
    BytesRead(u64),
    /// Messages a sink's broker did not accept (after the client's own retries), or
    /// records a byte-stream sink failed to write.
    DeliveryFailed(u64),
    /// A window's or table's watermark (Unix ms) moved to this value.
    Watermark(i64),
    /// Messages a sink has handed to its client and not yet seen confirmed (a gauge).
    Queued(u64),
    /// A sink's disk buffer now: undelivered records and the bytes its segments take
    /// (gauges).
    Buffer { records: u64, bytes: u64 },
}

#[derive(Debug, Default)]
struct ComponentCounters {
    name: &'static str,
    received: AtomicU64,
    sent: AtomicU64,
    filtered: AtomicU64,
    aggregated: AtomicU64,
    emitted: AtomicU64,
    results_failed: AtomicU64,
    dead_lettered: AtomicU64,
    dropped: AtomicU64,
    late: AtomicU64,
    evicted: AtomicU64,
    expired: AtomicU64,
    state_entries: AtomicU64,
    state_bytes: AtomicU64,
    entries_now: AtomicU64,
    bytes_now: AtomicU64,
    bytes_read: AtomicU64,
    delivery_failures: AtomicU64,
    /// Unix ms; `i64::MIN` until a watermark is known.
    watermark: AtomicI64,
    queued: AtomicU64,
    buffered: AtomicBool,
    buffer_records: AtomicU64,
    buffer_bytes: AtomicU64,
}

/// A point-in-time copy of one component's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    pub received: u64,
    pub sent: u64,
    pub filtered: u64,
    pub aggregated: u64,
    pub emitted: u64,
    pub results_failed: u64,
    pub dead_lettered: u64,
    pub dropped: u64,
    pub late: u64,
    pub evicted: u64,
    pub expired: u64,
    /// Peak state entries and bytes sampled (windows and tables only).
    pub state_entries: u64,
    pub state_bytes: u64,
    /// The latest sample: keys held and state bytes now.
    pub entries_now: u64,
    pub bytes_now: u64,
    pub bytes_read: u64,
    pub delivery_failures: u64,
    /// Unix ms, when known (windows and tables on event or processing time).
    pub watermark: Option<i64>,
    pub queued: u64,
    /// A sink's disk buffer: undelivered records and bytes on disk (buffered sinks only).
    pub buffer: Option<(u64, u64)>,
}

/// The counters of one component; cheap to clone, shared with the registry.
#[derive(Debug, Clone)]
pub struct Counters(Arc<ComponentCounters>);

impl Counters {
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    pub fn emit(&self, event: InternalEvent) {
        let (counter, n) = match event {
            InternalEvent::Received(n) => (&self.0.received, n),
            InternalEvent::Sent(n) => (&self.0.sent, n),
            InternalEvent::Filtered(n) => (&self.0.filtered, n),
            InternalEvent::Aggregated(n) => (&self.0.aggregated, n),
            InternalEvent::Emitted(n) => (&self.0.emitted, n),
            InternalEvent::ResultsFailed(n) => (&self.0.results_failed, n),
            InternalEvent::DeadLettered(n) => (&self.0.dead_lettered, n),
            InternalEvent::Dropped(n) => (&self.0.dropped, n),
            InternalEvent::Late(n) => (&self.0.late, n),
            InternalEvent::Evicted(n) => (&self.0.evicted, n),
            InternalEvent::Expired(n) => (&self.0.expired, n),
            InternalEvent::BytesRead(n) => (&self.0.bytes_read, n),
            InternalEvent::DeliveryFailed(n) => (&self.0.delivery_failures, n),
            InternalEvent::State {
                entries,
                peak_entries,
                bytes,
            } => {
                self.0
                    .state_entries
                    .fetch_max(peak_entries.max(entries), Ordering::Relaxed);
                self.0.state_bytes.fetch_max(bytes, Ordering::Relaxed);
                self.0.entries_now.store(entries, Ordering::Relaxed);
                self.0.bytes_now.store(bytes, Ordering::Relaxed);
                return;
            }
            InternalEvent::Watermark(ms) => {
                self.0.watermark.store(ms, Ordering::Relaxed);
                return;
            }
            InternalEvent::Queued(n) => {
                self.0.queued.store(n, Ordering::Relaxed);
                return;
            }
            InternalEvent::Buffer { records, bytes } => {
                self.0.buffer_records.store(records, Ordering::Relaxed);
                self.0.buffer_bytes.store(bytes, Ordering::Relaxed);
                self.0.buffered.store(true, Ordering::Relaxed);
                return;
            }
        };
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            received: self.0.received.load(Ordering::Relaxed),
            sent: self.0.sent.load(Ordering::Relaxed),
            filtered: self.0.filtered.load(Ordering::Relaxed),
            aggregated: self.0.aggregated.load(Ordering::Relaxed),
            emitted: self.0.emitted.load(Ordering::Relaxed),
            results_failed: self.0.results_failed.load(Ordering::Relaxed),
            dead_lettered: self.0.dead_lettered.load(Ordering::Relaxed),
            dropped: self.0.dropped.load(Ordering::Relaxed),
            late: self.0.late.load(Ordering::Relaxed),
            evicted: self.0.evicted.load(Ordering::Relaxed),
            expired: self.0.expired.load(Ordering::Relaxed),
            state_entries: self.0.state_entries.load(Ordering::Relaxed),
            state_bytes: self.0.state_bytes.load(Ordering::Relaxed),
            entries_now: self.0.entries_now.load(Ordering::Relaxed),
            bytes_now: self.0.bytes_now.load(Ordering::Relaxed),
            bytes_read: self.0.bytes_read.load(Ordering::Relaxed),
            delivery_failures: self.0.delivery_failures.load(Ordering::Relaxed),
            watermark: match self.0.watermark.load(Ordering::Relaxed) {
                // Before the first record, and once every input finished: no time to show.
                i64::MIN | i64::MAX => None,
                ms => Some(ms),
            },
            queued: self.0.queued.load(Ordering::Relaxed),
            buffer: self.0.buffered.load(Ordering::Relaxed).then(|| {
                (
                    self.0.buffer_records.load(Ordering::Relaxed),
                    self.0.buffer_bytes.load(Ordering::Relaxed),
                )
            }),
        }
    }
}

/// Whether a source is connected to its broker, as its client last reported; read by
/// `/health`. Only sources that connect to something register one.
#[derive(Debug, Clone)]
pub struct Connection(Arc<ConnectionState>);

#[derive(Debug)]
struct ConnectionState {
    name: &'static str,
    connected: AtomicBool,
    /// Why it is not connected (the client's last error).
    reason: Mutex<String>,
}

impl Connection {
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    pub fn connected(&self) {
        self.0.connected.store(true, Ordering::Relaxed);
    }

    /// Not connected, and why; the reason is kept until the next [`Self::connected`].
    pub fn disconnected(&self, reason: &str) {
        if let Ok(mut r) = self.0.reason.lock() {
            reason.clone_into(&mut r);
        }
        self.0.connected.store(false, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.0.connected.load(Ordering::Relaxed)
    }

    /// `None` while connected, else the reason.
    pub fn problem(&self) -> Option<String> {
        if self.is_connected() {
            return None;
        }
        Some(self.0.reason.lock().map(|r| r.clone()).unwrap_or_default())
    }
}

/// The counts of a transform fused into generated flow code: plain integers on the hot
/// path, published to its [`Counters`] once per step by [`Tally::publish`].
#[derive(Debug)]
pub struct Tally {
    pub received: u64,
    pub sent: u64,
    pub filtered: u64,
    counters: Counters,
}

impl Tally {
    pub fn new(name: &'static str, events: &Events) -> Self {
        Tally {
            received: 0,
            sent: 0,
            filtered: 0,
            counters: events.component(name),
        }
    }

    pub fn publish(&mut self) {
        self.counters
            .emit(InternalEvent::Received(std::mem::take(&mut self.received)));
        self.counters.emit(InternalEvent::Sent(std::mem::take(&mut self.sent)));
        self.counters
            .emit(InternalEvent::Filtered(std::mem::take(&mut self.filtered)));
    }

    /// Adds what a copy of the transform counted on another thread, and zeroes it.
    pub fn add(&mut self, counts: &mut Counts) {
        let Counts {
            received,
            sent,
            filtered,
        } = std::mem::take(counts);
        self.received += received;
        self.sent += sent;
        self.filtered += filtered;
    }
}

/// A transform's counts where a copy of it runs on another thread (see
/// `sources::chain`), added to its [`Tally`] on the pipeline thread.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub received: u64,
    pub sent: u64,
    pub filtered: u64,
}

/// What the checkpoints of a run did (with a state directory), for `/metrics` and
/// `/health`.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    enabled: AtomicBool,
    written: AtomicU64,
    failed: AtomicU64,
    put_off: AtomicU64,
    /// Unix ms of the last checkpoint written (or found unchanged), 0 before.
    last_ms: AtomicI64,
    last_bytes: AtomicU64,
    last_micros: AtomicU64,
    /// The last attempt failed to write.
    failing: AtomicBool,
}

impl CheckpointStats {
    /// Checkpoints are on for this run.
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
    /// A checkpoint of `bytes` was written in `micros` (or, with `bytes` 0, the state had
    /// not changed since the last one, which still holds).
    pub fn written(&self, bytes: u64, micros: u64) {
        if bytes > 0 {
            self.written.fetch_add(1, Ordering::Relaxed);
            self.last_bytes.store(bytes, Ordering::Relaxed);
            self.last_micros.store(micros, Ordering::Relaxed);
        }
        self.last_ms.store(crate::fns::now_ms(), Ordering::Relaxed);
        self.failing.store(false, Ordering::Relaxed);
    }
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
    }
    /// Put off because messages were still unconfirmed.
    pub fn put_off(&self) {
        self.put_off.fetch_add(1, Ordering::Relaxed);
    }
    /// `(written, failed, put off)` so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (load(&self.written), load(&self.failed), load(&self.put_off))
    }
    /// Unix ms of the last good checkpoint (0: none yet), its bytes and write time (µs).
    pub fn last(&self) -> (i64, u64, u64) {
        (
            self.last_ms.load(Ordering::Relaxed),
            self.last_bytes.load(Ordering::Relaxed),
            self.last_micros.load(Ordering::Relaxed),
        )
    }
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

/// The registry of every component's counters, in registration order, the sources'
/// connections, when the driver loop last completed a step, and the checkpoints.
#[derive(Debug, Clone)]
pub struct Events {
    components: Arc<Mutex<Vec<Counters>>>,
    connections: Arc<Mutex<Vec<Connection>>>,
    clock: Arc<Clock>,
    checkpoints: Arc<CheckpointStats>,
}

/// When the run started, and when the step the driver loop is in began (ms after the
/// start, plus one; 0 while it is between steps).
#[derive(Debug)]
struct Clock {
    started: Instant,
    started_unix: f64,
    step_began: AtomicU64,
}

impl Default for Events {
    fn default() -> Self {
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Events {
            components: Arc::default(),
            connections: Arc::default(),
            clock: Arc::new(Clock {
                started: Instant::now(),
                started_unix,
                step_began: AtomicU64::new(0),
            }),
            checkpoints: Arc::default(),
        }
    }
}

impl Events {
    pub fn new() -> Self {
        Events::default()
    }

    /// The connection state of source `name`, registered on first use as connected
    /// (a client reports trouble when it sees it).
    pub fn connection(&self, name: &'static str) -> Connection {
        let mut list = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = list.iter().find(|c| c.name() == name) {
            return c.clone();
        }
        let c = Connection(Arc::new(ConnectionState {
            name,
            connected: AtomicBool::new(true),
            reason: Mutex::new(String::new()),
        }));
        list.push(c.clone());
        c
    }

    pub fn connections(&self) -> Vec<Connection> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The driver loop begins a step (once per step: one atomic store).
    pub fn step_begins(&self) {
        let ms = u64::try_from(self.clock.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.clock.step_began.store(ms + 1, Ordering::Relaxed);
    }

    /// The driver loop finished its step: it moves on, or waits for input.
    pub fn step_ends(&self) {
        self.clock.step_began.store(0, Ordering::Relaxed);
    }

    /// How long the step the driver loop is in has been running; zero between steps
    /// (waiting for input is not being stuck).
    pub fn step_running_for(&self) -> std::time::Duration {
        match self.clock.step_began.load(Ordering::Relaxed) {
            0 => std::time::Duration::ZERO,
            began => self
                .clock
                .started
                .elapsed()
                .saturating_sub(std::time::Duration::from_millis(began - 1)),
        }
    }

    pub fn checkpoints(&self) -> &CheckpointStats {
        &self.checkpoints
    }

    /// Time since the registry was made (at the start of the run).
    pub fn uptime(&self) -> std::time::Duration {
        self.clock.started.elapsed()
    }

    /// Unix time (seconds) of the start of the run.
    pub fn started_unix(&self) -> f64 {
        self.clock.started_unix
    }

    /// The counters of `name`, registered on first use (called at build time, and on
    /// the error path for components such as transforms that have no handle).
    pub fn component(&self, name: &'static str) -> Counters {
        let mut list = self.components.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = list.iter().find(|c| c.name() == name) {
            return c.clone();
        }
        let c = Counters(Arc::new(ComponentCounters {
            name,
            watermark: AtomicI64::new(i64::MIN),
            ..ComponentCounters::default()
        }));
        list.push(c.clone());
        c
    }

    pub fn snapshot(&self) -> Vec<(&'static str, CounterSnapshot)> {
        let list = self.components.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().map(|c| (c.name(), c.snapshot())).collect()
    }

    /// `{"sources.a": {"received": .., "sent": .., "filtered": .., "dead_lettered": ..,
    /// "dropped": ..}, ..}` for the exit log line; for every component
    /// `received = sent + filtered + dead_lettered + dropped + aggregated`. Windows and
    /// tables add `aggregated`, `emitted`, `results_failed`, `late`, `evicted`, `expired` and the peak
    /// `state_entries`/`state_bytes` when they are not zero.
    pub fn summary(&self) -> Value {
        let mut components = Map::new();
        for (name, s) in self.snapshot() {
            let mut m = Map::new();
            m.insert("received".to_owned(), s.received.into());
            m.insert("sent".to_owned(), s.sent.into());
            m.insert("filtered".to_owned(), s.filtered.into());
            m.insert("dead_lettered".to_owned(), s.dead_lettered.into());
            m.insert("dropped".to_owned(), s.dropped.into());
            let stateful = [
                ("aggregated", s.aggregated),
                ("emitted", s.emitted),
                ("results_failed", s.results_failed),
                ("late", s.late),
                ("evicted", s.evicted),
                ("expired", s.expired),
                ("state_entries", s.state_entries),
                ("state_bytes", s.state_bytes),
            ];
            for (key, value) in stateful.into_iter().filter(|(_, v)| *v > 0) {
                m.insert(key.to_owned(), value.into());
            }
            // A disk buffer's records not yet delivered: they are neither sent nor lost.
            if let Some((records, _)) = s.buffer {
                m.insert("buffered".to_owned(), records.into());
            }
            components.insert(name.to_owned(), Value::Object(m));
        }
        Value::Object(components)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_shared_by_name() {
        let events = Events::new();
        let a = events.component("sources.a");
        let a2 = events.clone().component("sources.a");
        a.emit(InternalEvent::Received(3));
        a2.emit(InternalEvent::Sent(2));
        events.component("transforms.t").emit(InternalEvent::DeadLettered(1));
        events.component("transforms.t").emit(InternalEvent::Dropped(4));
        assert_eq!(
            events.snapshot(),
            vec![
                (
                    "sources.a",
                    CounterSnapshot {
                        received: 3,
                        sent: 2,
                        dead_lettered: 0,
                        dropped: 0,
                        ..CounterSnapshot::default()
                    }
                ),
                (
                    "transforms.t",
                    CounterSnapshot {
                        received: 0,
                        sent: 0,
                        dead_lettered: 1,
                        dropped: 4,
                        ..CounterSnapshot::default()
                    }
                ),
            ]
        );
        let summary = events.summary();
        assert_eq!(summary["sources.a"]["received"], 3);
        assert_eq!(summary["transforms.t"]["dropped"], 4);
        assert!(
            summary["transforms.t"].get("late").is_none(),
            "stateful keys only when set"
        );
        let w = events.component("windows.w");
        w.emit(InternalEvent::State {
            entries: 4,
            peak_entries: 5,
            bytes: 100,
        });
        w.emit(InternalEvent::State {
            entries: 2,
            peak_entries: 2,
            bytes: 40,
        });
        w.emit(InternalEvent::Watermark(7_000));
        w.emit(InternalEvent::Late(1));
        let summary = events.summary();
        assert_eq!(summary["windows.w"]["state_entries"], 5, "the peak is kept");
        assert_eq!(summary["windows.w"]["state_bytes"], 100);
        assert_eq!(summary["windows.w"]["late"], 1);
        let now = w.snapshot();
        assert_eq!(
            (now.entries_now, now.bytes_now),
            (2, 40),
            "gauges hold the latest sample"
        );
        assert_eq!(now.watermark, Some(7_000));
        assert_eq!(events.component("sources.a").snapshot().watermark, None);
    }

    #[test]
    fn connections_report_their_last_state() {
        let events = Events::new();
        let c = events.connection("sources.k");
        assert_eq!(c.problem(), None, "connected until a client says otherwise");
        c.disconnected("all brokers down");
        let seen = events.connections();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].problem().as_deref(), Some("all brokers down"));
        events.connection("sources.k").connected();
        assert_eq!(c.problem(), None);
    }
}
