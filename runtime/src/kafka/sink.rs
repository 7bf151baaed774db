//! `KafkaOutput`: one message per record, confirmed asynchronously.
//!
//! `send` encodes the record and hands it to librdkafka's queue (waiting while the queue
//! is full), tagged with the current epoch in [`Acks`]. librdkafka batches
//! (`linger.ms`, `batch.size`), compresses and retries with backoff until
//! `message.timeout.ms`; each outcome comes back through the delivery callback, collected
//! here and applied at the next [`KafkaOutput::flush`]: a delivered message settles its
//! tag, a failed one is written to the dead letters with the reason, then settles.

use super::client::{self, Properties};
use crate::acks::Acks;
use crate::dead_letter::DeadLetters;
use crate::driver::Context;
use crate::errors::{EvalError, RecordError, RunError, StartError};
use crate::formats::Encoder;
use crate::internal_events::{Counters, InternalEvent};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::sync::Mutex;
use std::time::Duration;

/// rill's producer defaults; the spec's properties come after and may override them.
const DEFAULTS: &[(&str, &str)] = &[("enable.idempotence", "true"), ("acks", "all")];

/// How long a full local queue is waited on before trying again.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// How long closing waits for messages still in flight.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where one record goes: topic (`None`: the output's fixed topic), key and headers
/// (a header with a `None` value is left out).
#[derive(Debug, Clone, Copy, Default)]
pub struct Message<'a> {
    pub topic: Option<&'a str>,
    pub key: Option<&'a str>,
    pub headers: &'a [(&'a str, Option<&'a str>)],
}

pub struct KafkaOutput<E: Encoder> {
    component: &'static str,
    producer: BaseProducer<Deliveries>,
    encoder: E,
    topic: String,
    buf: Vec<u8>,
    acks: Acks,
    counters: Counters,
    /// Records offered since the last flush.
    offered: u64,
    /// Messages queued since they were last told to `acks`, all in epoch `.0`: told in
    /// one go, not per message.
    queued: (u64, u64),
    /// Outcomes taken from the callback's queue, reused.
    outcomes: Vec<Outcome>,
}

impl<E: Encoder> KafkaOutput<E> {
    /// A producer with `properties` (`bootstrap.servers`, `compression.type`, ..)
    /// writing to `topic` unless a record names its own.
    pub fn new(
        component: &'static str,
        properties: Properties,
        topic: &str,
        encoder: E,
        ctx: &Context,
    ) -> Result<Self, StartError> {
        let deliveries = Deliveries {
            component,
            outcomes: Mutex::new(Vec::new()),
            fatal: client::Fatal::default(),
        };
        let producer = client::config(DEFAULTS, &properties)
            .create_with_context(deliveries)
            .map_err(|e| client::start_error(component, e))?;
        Ok(KafkaOutput {
            component,
            producer,
            encoder,
            topic: topic.to_string(),
            buf: Vec::with_capacity(1024),
            acks: ctx.acks.clone(),
            counters: ctx.events.component(component),
            offered: 0,
            queued: (0, 0),
            outcomes: Vec::new(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.component
    }

    /// Encodes `rec` as one message and queues it. An encoding error, or a message
    /// librdkafka refuses outright (too large, say), is the record's error: it becomes
    /// a dead letter per its source's `on_error`.
    pub fn send(&mut self, rec: &E::Input, message: Message<'_>) -> Result<(), RecordError> {
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
        let topic = message.topic.unwrap_or(&self.topic);
        let mut record = BaseRecord::with_opaque_to(topic, tag as usize).payload(payload);
        if let Some(key) = message.key {
            record = record.key(key);
        }
        // A header whose value is null is left out.
        if message.headers.iter().any(|(_, value)| value.is_some()) {
            let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
            for &(key, value) in message.headers {
                if value.is_some() {
                    headers = headers.insert(Header { key, value });
                }
            }
            record = record.headers(headers);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.queued.1 += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Backpressure: serve delivery reports until there is room.
                    self.producer.poll(QUEUE_FULL_WAIT);
                    record = back;
                }
                Err((e, _)) => {
                    let reason = e.to_string();
                    return Err(RecordError::new(self.component, EvalError::Refused { reason }));
                }
            }
        }
    }

    /// Applies the delivery outcomes that arrived: settles delivered messages, writes
    /// failed ones to `dead` (then settles them: a dead letter is accepted too).
    pub fn flush(&mut self, dead: &mut DeadLetters) -> Result<(), RunError> {
        self.register_queued();
        self.producer.poll(Duration::ZERO);
        self.counters.emit(InternalEvent::Received(self.offered));
        self.offered = 0;
        if let Ok(mut queued) = self.producer.context().outcomes.lock() {
            std::mem::swap(&mut *queued, &mut self.outcomes);
        }
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
        self.counters.emit(InternalEvent::Sent(delivered));
        self.counters.emit(InternalEvent::DeadLettered(failed));
        self.producer.context().fatal.check()
    }

    /// Tells `acks` about the messages queued since the last time.
    fn register_queued(&mut self) {
        let (tag, count) = self.queued;
        if count > 0 {
            self.acks.sent(tag, count);
            self.queued.1 = 0;
        }
    }

    /// Waits (up to 30 s) for every message in flight, then applies the outcomes.
    /// Messages still undelivered then make the close fail: their offsets stay
    /// uncommitted, so they are read again on the next start.
    pub fn close(&mut self, dead: &mut DeadLetters) -> Result<(), RunError> {
        let flushed = self.producer.flush(CLOSE_TIMEOUT);
        let applied = self.flush(dead);
        let undelivered = flushed.map_err(|e| {
            let undelivered = self.producer.in_flight_count();
            // Given up on here (and not committed upstream): counted as dropped.
            self.counters
                .emit(InternalEvent::Dropped(u64::try_from(undelivered).unwrap_or(0)));
            RunError::new(format!(
                "{}: {undelivered} messages still undelivered at shutdown: {e}",
                self.component,
            ))
        });
        // Both are reported, and the undelivered are counted even when applying the
        // outcomes failed.
        RunError::all([applied, undelivered])
    }
}

/// One delivery outcome: the tag it was sent with; on failure the reason and payload.
struct Outcome {
    tag: u64,
    failure: Option<(String, Vec<u8>)>,
}

/// The producer's callbacks: delivery outcomes are queued for the pipeline's thread
/// (they arrive during `poll`, on that same thread, but the context must be `Sync`).
struct Deliveries {
    component: &'static str,
    outcomes: Mutex<Vec<Outcome>>,
    fatal: client::Fatal,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        client::log_line(self.component, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client::log_error(self.component, error, reason, &self.fatal);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        let failure = match result {
            Ok(_) => None,
            Err((e, message)) => Some((e.to_string(), message.payload().unwrap_or_default().to_vec())),
        };
        if let Ok(mut outcomes) = self.outcomes.lock() {
            outcomes.push(Outcome {
                tag: tag as u64,
                failure,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::JsonEncoder;
    use crate::settings::Settings;
    use crate::sinks::tests::MemSink;
    use std::time::Instant;

    fn output(
        properties: Properties,
        ctx: &Context,
    ) -> Result<KafkaOutput<JsonEncoder<serde_json::Value>>, StartError> {
        KafkaOutput::new("sinks.out", properties, "out", JsonEncoder::new(), ctx)
    }

    #[test]
    fn a_bad_property_is_a_start_error_naming_the_component() {
        let ctx = Context::new(Settings::from_values(vec![]), 8);
        let props = vec![
            ("bootstrap.servers", "127.0.0.1:1".into()),
            ("linger.ms", "soon".into()),
        ];
        let err = output(props, &ctx).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("sinks.out: cannot create the Kafka client"), "{err}");
        assert!(err.contains("linger.ms"), "{err}");
    }

    #[test]
    fn an_undeliverable_message_becomes_a_dead_letter_and_settles() {
        let ctx = Context::new(Settings::from_values(vec![]), 8);
        // Nothing listens on port 1: the message times out after 200 ms.
        let props = vec![
            ("bootstrap.servers", "127.0.0.1:1".into()),
            ("message.timeout.ms", "200".into()),
            ("enable.idempotence", "false".into()),
        ];
        let mut out = output(props, &ctx).unwrap_or_else(|e| panic!("{e}"));
        let sink = MemSink::default();
        let mut dead = DeadLetters::to_sinks(vec![Box::new(sink.clone())]);
        ctx.acks.next_epoch();
        let message = Message {
            key: Some("k"),
            ..Message::default()
        };
        assert_eq!(out.send(&serde_json::json!({"n": 1}), message), Ok(()));
        // Nothing can have failed yet: the timeout is 200 ms.
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(ctx.acks.in_flight(), 1);
        let started = Instant::now();
        while ctx.acks.in_flight() > 0 && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(out.flush(&mut dead), Ok(()));
        }
        assert_eq!(ctx.acks.in_flight(), 0, "the failed message settled");
        assert_eq!(dead.flush(), Ok(()));
        let text = String::from_utf8_lossy(&sink.data.borrow()).into_owned();
        let letter: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
        assert_eq!(letter["component"], "sinks.out");
        assert_eq!(letter["record"], r#"{"n":1}"#);
        let reason = letter["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("delivery failed: "), "{reason}");
        let snap = ctx.events.snapshot();
        assert_eq!((snap[0].1.received, snap[0].1.sent, snap[0].1.dead_lettered), (1, 0, 1));
    }
}
