//! The hand-written baseline of bench/kafka_filter.yaml: what a competent engineer
//! would write to relay a topic through a filter with this client, as fast as it goes,
//! i.e. the limit of librdkafka and the broker for the job.
//!
//! One thread, `BaseConsumer` and `BaseProducer` as rill's runtime. It polls up to
//! 1024 messages, copying their payloads into one buffer, then for each: `serde_json`
//! into a struct (strings borrowed), keep it if `temperature > 25.0 && status == "ok"`,
//! serialize it again into a reused buffer and send it keyed by `device_id`. (Reading a
//! batch first is ~15% faster than polling and sending message by message, which keeps
//! librdkafka's threads waking each other.) Producer settings as rill's sink:
//! idempotent, `acks=all`, `linger.ms=5`; consumer settings as rill's source, including
//! the two bench/kafka_filter.yaml sets (see `consumer_config`).
//!
//! Offsets, at least once, as rill does it: every message is sent tagged with the
//! current epoch; each second the consumer's position (everything read so far) is noted
//! as the end of the epoch, and a new epoch begins. Once every message of an epoch and
//! of those before it is delivered, its position is committed (async). Nothing ever
//! waits for deliveries (a `flush` each second costs ~8%). A failed delivery ends the
//! run (exit 1) without committing past it.
//!
//! Stops on SIGTERM/SIGINT, or once it has read `--expect` records: then flushes,
//! commits (sync) and prints its counts and records/s (read / time since start).

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::ClientContext;
use rill_bench_kafka::{consumer_config, producer_config, Args, Reading};
use std::collections::{HashMap, VecDeque};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "--brokers HOST:PORT --input T --output T --group G [--expect N]";

const BATCH: usize = 1024;
const EPOCH: Duration = Duration::from_secs(1);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args = match Args::parse("kafka-relay", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let parsed = (|| {
        Ok::<_, ExitCode>((
            args.req("brokers")?,
            args.req("input")?,
            args.req("output")?,
            args.req("group")?,
            args.num::<u64>("expect", Some(u64::MAX))?,
        ))
    })();
    let (brokers, input, output, group, expect) = match parsed {
        Ok(p) => p,
        Err(code) => return code,
    };
    match relay(brokers, input, output, group, expect) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kafka-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn relay(brokers: &str, input: &str, output: &str, group: &str, expect: u64) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| e.to_string())?;
    }
    // Producer first, then consumer, as rill's generated code does.
    let producer: BaseProducer<Epochs> = producer_config(brokers)
        .create_with_context(Epochs::default())
        .map_err(|e| format!("producer: {e}"))?;
    let consumer: BaseConsumer = consumer_config(brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false") // we commit positions ourselves
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    consumer.subscribe(&[input]).map_err(|e| format!("subscribe: {e}"))?;

    let started = Instant::now();
    let (mut read, mut sent, mut invalid) = (0u64, 0u64, 0u64);
    let mut payloads: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut ends: Vec<usize> = Vec::with_capacity(BATCH);
    let mut out = Vec::with_capacity(256);
    // The current epoch, when it began, and the epochs not yet confirmed: (epoch,
    // messages sent in it, the position at its end, once it has ended).
    let (mut epoch, mut epoch_began) = (0u64, Instant::now());
    let mut open: VecDeque<(u64, u64, Option<TopicPartitionList>)> = VecDeque::from([(0, 0, None)]);
    while !stop.load(Ordering::Relaxed) && read < expect {
        payloads.clear();
        ends.clear();
        let mut wait = Duration::from_millis(10); // rill's source waits as long
        while ends.len() < BATCH && read + (ends.len() as u64) < expect {
            match consumer.poll(wait) {
                None => break,
                Some(Err(e)) => eprintln!("kafka-relay: consumer: {e}"),
                Some(Ok(m)) => {
                    payloads.extend_from_slice(m.payload().unwrap_or_default());
                    ends.push(payloads.len());
                }
            }
            wait = Duration::ZERO;
        }
        let mut start = 0;
        for &end in &ends {
            let payload = &payloads[start..end];
            start = end;
            read += 1;
            let r = match serde_json::from_slice::<Reading>(payload) {
                Ok(r) => r,
                Err(_) => {
                    invalid += 1;
                    continue;
                }
            };
            if !r.keep() {
                continue;
            }
            out.clear();
            serde_json::to_writer(&mut out, &r).map_err(|e| e.to_string())?;
            let mut record = BaseRecord::with_opaque_to(output, epoch as usize)
                .key(r.device_id.as_ref())
                .payload(&out[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        producer.poll(Duration::from_millis(10));
                        record = back;
                    }
                    Err((e, _)) => return Err(format!("send: {e}")),
                }
            }
            sent += 1;
            if let Some(current) = open.back_mut() {
                current.1 += 1;
            }
        }
        producer.poll(Duration::ZERO);
        if producer.context().failed.load(Ordering::Relaxed) > 0 {
            return Err("a delivery failed; offsets after it are not committed".into());
        }
        if epoch_began.elapsed() >= EPOCH {
            let position = consumer.position().map_err(|e| format!("position: {e}"))?;
            if let Some(current) = open.back_mut() {
                current.2 = Some(position);
            }
            epoch += 1;
            epoch_began = Instant::now();
            open.push_back((epoch, 0, None));
        }
        if let Some(position) = producer.context().confirmed(&mut open) {
            if let Err(e) = consumer.commit(&position, CommitMode::Async) {
                eprintln!("kafka-relay: commit: {e}");
            }
        }
    }
    // Every message sent is delivered: everything read may be committed.
    producer
        .flush(FLUSH_TIMEOUT)
        .map_err(|e| format!("flush: {e} ({} in flight)", producer.in_flight_count()))?;
    if producer.context().failed.load(Ordering::Relaxed) > 0 {
        return Err("a delivery failed; offsets after it are not committed".into());
    }
    let position = consumer.position().map_err(|e| format!("position: {e}"))?;
    match consumer.commit(&position, CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => return Err(format!("commit: {e}")),
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "kafka-relay: read {read}, sent {sent}, invalid {invalid} in {secs:.2} s ({:.0} records/s)",
        read as f64 / secs
    );
    Ok(())
}

/// The producer's callbacks: deliveries counted per epoch (they run inside `poll` and
/// `flush`, on the relay's thread, but a context must be `Sync`).
#[derive(Default)]
struct Epochs {
    delivered: Mutex<HashMap<u64, u64>>,
    failed: AtomicU64,
}

impl Epochs {
    /// Drops the ended epochs at the front of `open` whose messages, and those of every
    /// epoch before, are all delivered; returns the position at the end of the last one.
    fn confirmed(&self, open: &mut VecDeque<(u64, u64, Option<TopicPartitionList>)>) -> Option<TopicPartitionList> {
        let mut delivered = self.delivered.lock().ok()?;
        let mut position = None;
        while let Some((epoch, sent, end)) = open.front_mut() {
            if end.is_none() || delivered.get(epoch).copied().unwrap_or(0) < *sent {
                break;
            }
            delivered.remove(epoch);
            position = end.take();
            open.pop_front();
        }
        position
    }
}

impl ClientContext for Epochs {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if (level as i32) <= RDKafkaLogLevel::Warning as i32 {
            eprintln!("librdkafka {level:?} {facility}: {message}");
        }
    }
}

impl ProducerContext for Epochs {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, epoch: usize) {
        match result {
            Ok(_) => {
                if let Ok(mut delivered) = self.delivered.lock() {
                    *delivered.entry(epoch as u64).or_insert(0) += 1;
                }
            }
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 10 {
                    eprintln!("kafka-relay: delivery failed: {e}");
                }
            }
        }
    }
}
