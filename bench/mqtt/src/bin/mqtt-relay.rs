//! The hand-written baseline of bench/mqtt_filter.yaml: what a careful engineer writes
//! to relay an MQTT topic through a filter with rumqttc, at least once.
//!
//! Two clients, as rill's source and sink, with rill_runtime's options (see
//! `rill_bench_mqtt::options`): the input subscribes to `bench/in` at QoS 1 on a
//! persistent session (`--client-id`, clean session off) with manual
//! acknowledgements; the output publishes at QoS 1 with 100 publishes in flight, as
//! rill's `MqttPublisher`. Each drives its connection on its own thread (rumqttc's sync
//! API: a small tokio runtime per connection, as in rill):
//!
//! - the main thread reads the input: for each message it parses just the two fields
//!   the filter tests (`Probe`: serde_json skipping the rest, the string borrowed,
//!   nothing allocated), and publishes a kept message's payload untouched (rumqttc's
//!   sync `publish` copies the topic and payload into its request, as rill's sink
//!   does). A message the filter drops, or that is not JSON, is done at once.
//! - the output thread matches each PUBACK to the input message it came from (rumqttc
//!   reports each publish it writes with its packet id, in request order; the main
//!   thread queues the input's sequence number before it hands the publish over):
//!   that input message is done.
//!
//! Input messages are acknowledged in arrival order, each as soon as it and every one
//! before it are done ([`Order`]). So an input message is acknowledged only once its
//! output is confirmed: the same guarantee as rill's, which acknowledges in arrival
//! order too, a batch at a time once every record of the batch is confirmed. Not
//! handled: a lost connection ends the run (exit 1); the persistent session then
//! redelivers what was not acknowledged.
//!
//! Runs until SIGTERM/SIGINT, then waits (up to 10 s) for outstanding PUBACKs,
//! acknowledges their inputs and prints its counts.

use rill_bench_mqtt::{options, Args, Probe, INPUT_TOPIC, OUTPUT_TOPIC};
use rumqttc::{Client, Connection, Event, Incoming, Outgoing, Publish, QoS, RecvTimeoutError};
use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const USAGE: &str = "--broker HOST:PORT --client-id ID";

/// rill_runtime's MqttSource: requests (acknowledgements) queued.
const INPUT_REQUESTS: u16 = 1024;
/// rill_runtime's MqttPublisher: publishes in flight, and requests queued.
const OUTPUT_INFLIGHT: u16 = 100;
/// How long a wait for the network lasts when there is something else to do.
const POLL_WAIT: Duration = Duration::from_millis(50);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args = match Args::parse("mqtt-relay", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (broker, client_id) = match (args.req("broker"), args.req("client-id")) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    match relay(broker, client_id) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqtt-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the two threads share.
#[derive(Default)]
struct Shared {
    /// Sequence numbers (see [`Order`]) of the input messages whose outputs are handed
    /// to rumqttc and not yet written, in request order.
    queued: Mutex<VecDeque<u64>>,
    /// The input messages not yet acknowledged, in arrival order.
    order: Mutex<Order>,
    /// SIGTERM/SIGINT.
    stop: AtomicBool,
    /// The output thread is finished (everything confirmed, or given up).
    out_done: AtomicBool,
    acked: AtomicU64,
}

/// The input messages not yet acknowledged, in arrival order, each with whether it is
/// done (dropped by the filter, or its output confirmed). Acknowledgements go out in
/// arrival order, as rill's do (batch by batch): mosquitto looks each PUBACK up in its
/// list of messages in flight from the oldest, so acknowledging out of order would
/// cost the broker a search per message.
#[derive(Default)]
struct Order {
    /// The sequence number of `pending[0]`.
    first: u64,
    /// (packet id, done).
    pending: VecDeque<(u16, bool)>,
}

impl Order {
    /// A message arrived: its sequence number.
    fn push(&mut self, pkid: u16, done: bool) -> u64 {
        self.pending.push_back((pkid, done));
        self.first + self.pending.len() as u64 - 1
    }

    fn done(&mut self, seq: u64) {
        if let Some(entry) = self.pending.get_mut((seq - self.first) as usize) {
            entry.1 = true;
        }
    }

    /// Acknowledges the done messages at the front, in order, as far as rumqttc's
    /// request queue takes them (the rest on a later call). Returns how many.
    fn acknowledge(&mut self, input: &Client) -> u64 {
        let mut acked = 0;
        while let Some(&(pkid, true)) = self.pending.front() {
            if input.try_ack(&ack_of(pkid)).is_err() {
                break;
            }
            self.pending.pop_front();
            self.first += 1;
            acked += 1;
        }
        acked
    }

    /// Done messages wait at the front (rumqttc's queue was full).
    fn waiting(&self) -> bool {
        self.pending.front().is_some_and(|&(_, done)| done)
    }
}

fn relay(broker: &str, client_id: &str) -> Result<(), String> {
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| e.to_string())?;
    }
    let (input, mut in_conn) = Client::new(
        options(broker, client_id, false, true, INPUT_REQUESTS),
        INPUT_REQUESTS.into(),
    );
    let (output, out_conn) = Client::new(
        options(broker, &format!("{client_id}-out"), false, false, OUTPUT_INFLIGHT),
        OUTPUT_INFLIGHT.into(),
    );
    input
        .subscribe(INPUT_TOPIC, QoS::AtLeastOnce)
        .map_err(|e| format!("subscribe: {e}"))?;
    let out_thread = {
        let (shared, input) = (shared.clone(), input.clone());
        std::thread::Builder::new()
            .name("output".into())
            .spawn(move || confirm(out_conn, &input, &shared))
            .map_err(|e| e.to_string())?
    };

    let started = Instant::now();
    let (mut read, mut sent, mut invalid) = (0u64, 0u64, 0u64);
    let lock_order = || shared.order.lock().unwrap_or_else(PoisonError::into_inner);
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            shared.stop.store(true, Ordering::Relaxed);
        }
        if shared.out_done.load(Ordering::Relaxed) {
            let mut order = lock_order();
            let acked = order.acknowledge(&input);
            shared.acked.fetch_add(acked, Ordering::Relaxed);
            if !order.waiting() {
                break Ok(());
            }
        }
        let event = match in_conn.recv_timeout(POLL_WAIT) {
            Ok(Ok(event)) => event,
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(Err(e)) => break Err(format!("input connection: {e}")),
            Err(RecvTimeoutError::Disconnected) => break Err("input connection closed".into()),
        };
        let Event::Incoming(Incoming::Publish(p)) = event else {
            continue;
        };
        if shared.stop.load(Ordering::Relaxed) {
            continue; // not acknowledged: the session keeps it for the next run
        }
        read += 1;
        let keep = match serde_json::from_slice::<Probe>(&p.payload) {
            Ok(probe) => probe.keep(),
            Err(_) => {
                invalid += 1;
                false
            }
        };
        let mut order = lock_order();
        let seq = order.push(p.pkid, !keep);
        if !keep {
            let acked = order.acknowledge(&input);
            shared.acked.fetch_add(acked, Ordering::Relaxed);
            continue;
        }
        drop(order);
        shared
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(seq);
        // Waits while the output's request queue is full.
        if output
            .publish(OUTPUT_TOPIC, QoS::AtLeastOnce, false, &p.payload[..])
            .is_err()
        {
            break Err("the output connection has stopped".into());
        }
        sent += 1;
    };
    shared.stop.store(true, Ordering::Relaxed);
    let confirmed = out_thread
        .join()
        .map_err(|_| "the output thread panicked".to_string())?;
    // Until the DISCONNECT is written, so are the acknowledgements queued before it
    // (asked for as soon as rumqttc's request queue has room).
    let until = Instant::now() + CLOSE_TIMEOUT;
    let mut asked = false;
    while Instant::now() < until {
        asked = asked || input.try_disconnect().is_ok();
        match in_conn.recv_timeout(POLL_WAIT) {
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => break,
            _ => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "mqtt-relay: read {read}, sent {sent}, invalid {invalid}, confirmed {}, acknowledged {} in {secs:.2} s",
        confirmed.as_ref().map_or(0, |n| *n),
        shared.acked.load(Ordering::Relaxed),
    );
    result.and(confirmed.map(|_| ()))
}

/// What acknowledging input message `pkid` takes (rumqttc wants a `Publish`).
fn ack_of(pkid: u16) -> Publish {
    let mut publish = Publish::new("", QoS::AtLeastOnce, Vec::new());
    publish.pkid = pkid;
    publish
}

/// The output thread: drives the output connection, and acknowledges each input
/// message once its output's PUBACK is in. Returns the number of outputs confirmed.
fn confirm(mut conn: Connection, input: &Client, shared: &Shared) -> Result<u64, String> {
    let next = || shared.queued.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
    let lock_order = || shared.order.lock().unwrap_or_else(PoisonError::into_inner);
    // The input sequence number of each output packet id in flight.
    let mut by_pkid: Vec<Option<u64>> = vec![None; usize::from(OUTPUT_INFLIGHT) + 1];
    // A publish rumqttc holds back until its packet id is free (`AwaitAck`).
    let mut held: Option<(u16, u64)> = None;
    let mut outstanding = 0u64;
    let mut confirmed = 0u64;
    // Done messages at the front that rumqttc's request queue had no room for yet.
    let mut unsent = false;
    let mut closing: Option<Instant> = None;
    let result = loop {
        if unsent {
            let mut order = lock_order();
            let acked = order.acknowledge(input);
            shared.acked.fetch_add(acked, Ordering::Relaxed);
            unsent = order.waiting();
        }
        if shared.stop.load(Ordering::Relaxed) {
            let since = *closing.get_or_insert_with(Instant::now);
            let waiting = outstanding + shared.queued.lock().unwrap_or_else(PoisonError::into_inner).len() as u64;
            if waiting == 0 {
                break Ok(confirmed);
            }
            if since.elapsed() > CLOSE_TIMEOUT {
                break Err(format!(
                    "{waiting} outputs not confirmed within {} s",
                    CLOSE_TIMEOUT.as_secs()
                ));
            }
        }
        let wait = if unsent { Duration::from_millis(1) } else { POLL_WAIT };
        match conn.recv_timeout(wait) {
            Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) if pkid != 0 => {
                let slot = &mut by_pkid[usize::from(pkid)];
                if slot.is_none() {
                    let tag = match held {
                        Some((held_pkid, tag)) if held_pkid == pkid => {
                            held = None;
                            Some(tag)
                        }
                        _ => next(),
                    };
                    if tag.is_some() {
                        *slot = tag;
                        outstanding += 1;
                    }
                }
            }
            Ok(Ok(Event::Outgoing(Outgoing::AwaitAck(pkid)))) => {
                if let Some(tag) = next() {
                    held = Some((pkid, tag));
                }
            }
            Ok(Ok(Event::Incoming(Incoming::PubAck(ack)))) => {
                if let Some(seq) = by_pkid.get_mut(usize::from(ack.pkid)).and_then(Option::take) {
                    outstanding -= 1;
                    confirmed += 1;
                    let mut order = lock_order();
                    order.done(seq);
                    let acked = order.acknowledge(input);
                    shared.acked.fetch_add(acked, Ordering::Relaxed);
                    unsent = order.waiting();
                }
            }
            Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Err(e)) => break Err(format!("output connection: {e}")),
            Err(RecvTimeoutError::Disconnected) => break Err("output connection closed".into()),
        }
    };
    shared.out_done.store(true, Ordering::Relaxed);
    result
}
