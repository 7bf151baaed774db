//! `KafkaProducer`: a [`MessageSink`]; one message per record, confirmed asynchronously.
//!
//! `send` hands the payload to librdkafka's queue (waiting while the queue is full),
//! with the tag of its epoch as the delivery opaque. librdkafka batches (`linger.ms`,
//! `batch.size`), compresses and retries with backoff until `message.timeout.ms`; each
//! outcome comes back through the delivery callback, and [`MessageSink::poll`] hands
//! them to the generic [`crate::sinks::MessageOutput`], which settles or dead-letters them.

use super::client::{self, Properties};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::sinks::{Address, MessageSink, Outcome, Undelivered};
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
/// At most this many batches of delivery reports are served by one `poll`.
const MAX_POLLS: usize = 64;
/// librdkafka's default `queue.buffering.max.messages`.
const LIBRDKAFKA_QUEUE_LIMIT: usize = 100_000;

pub struct KafkaProducer {
    producer: BaseProducer<Deliveries>,
    topic: String,
    /// Messages the client queues unconfirmed (`queue.buffering.max.messages`).
    queue_limit: usize,
}

impl KafkaProducer {
    /// A producer with `properties` (`bootstrap.servers`, `compression.type`, ..)
    /// writing to `topic` unless a record names its own.
    pub fn new(
        component: &'static str,
        properties: Properties,
        topic: &str,
        _ctx: &Context,
    ) -> Result<Self, StartError> {
        let deliveries = Deliveries {
            component,
            outcomes: Mutex::new(Vec::new()),
            fatal: client::Fatal::default(),
        };
        let config = client::config(DEFAULTS, &properties);
        let queue_limit = config
            .get("queue.buffering.max.messages")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(LIBRDKAFKA_QUEUE_LIMIT);
        let producer = config
            .create_with_context(deliveries)
            .map_err(|e| client::start_error(component, e))?;
        Ok(KafkaProducer {
            producer,
            topic: topic.to_string(),
            queue_limit,
        })
    }

    fn take_outcomes(&self, into: &mut Vec<Outcome>) {
        if let Ok(mut queued) = self.producer.context().outcomes.lock() {
            into.append(&mut queued);
        }
    }
}

impl MessageSink for KafkaProducer {
    fn send(&mut self, payload: &[u8], address: Address<'_>, tag: u64) -> Result<(), String> {
        let topic = address.topic.unwrap_or(&self.topic);
        let mut record = BaseRecord::with_opaque_to(topic, tag as usize).payload(payload);
        if let Some(key) = address.key {
            record = record.key(key);
        }
        // A header whose value is null is left out.
        if address.headers.iter().any(|(_, value)| value.is_some()) {
            let mut headers = OwnedHeaders::new_with_capacity(address.headers.len());
            for &(key, value) in address.headers {
                if value.is_some() {
                    headers = headers.insert(Header { key, value });
                }
            }
            record = record.headers(headers);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: serve delivery reports until there is room.
                    self.producer.poll(QUEUE_FULL_WAIT);
                    record = back;
                }
                Err((e, _)) => return Err(e.to_string()),
            }
        }
    }

    /// A full queue makes `send` wait: a disk buffer sends no more than it takes.
    fn max_in_flight(&self) -> Option<usize> {
        Some(self.queue_limit)
    }

    fn poll(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError> {
        // One poll serves one event: a batch of delivery reports of one partition, or an
        // error. The batches waiting are all served, until two polls in a row bring
        // nothing: an idle pipeline (draining a disk buffer) polls once per wake-up.
        let mut empty = 0;
        for _ in 0..MAX_POLLS {
            let before = outcomes.len();
            self.producer.poll(Duration::ZERO);
            self.take_outcomes(outcomes);
            empty = if outcomes.len() == before { empty + 1 } else { 0 };
            if empty == 2 {
                break;
            }
        }
        self.producer.context().fatal.check()
    }

    /// Waits (up to 30 s) for every message in flight.
    fn close(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), Undelivered> {
        let flushed = self.producer.flush(CLOSE_TIMEOUT);
        self.producer.poll(Duration::ZERO);
        self.take_outcomes(outcomes);
        let fatal = self.producer.context().fatal.check();
        let undelivered = |count: usize, reason: String| Undelivered {
            count: u64::try_from(count).unwrap_or(u64::MAX),
            reason,
        };
        match (flushed, fatal) {
            (Err(e), _) => Err(undelivered(
                usize::try_from(self.producer.in_flight_count()).unwrap_or(0),
                e.to_string(),
            )),
            (Ok(()), Err(e)) => Err(undelivered(0, e.to_string())),
            (Ok(()), Ok(())) => Ok(()),
        }
    }
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
        let (failure, retriable) = match result {
            Ok(_) => (None, false),
            Err((e, message)) => (
                Some((e.to_string(), message.payload().unwrap_or_default().to_vec())),
                retriable(e),
            ),
        };
        if let Ok(mut outcomes) = self.outcomes.lock() {
            outcomes.push(Outcome {
                tag: tag as u64,
                failure,
                retriable,
            });
        }
    }
}

/// Whether a delivery failed because the cluster was unreachable or slow (a disk buffer
/// sends the message again later) rather than because it refused the message (too
/// large, not authorised, invalid: a dead letter).
fn retriable(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e,
        KafkaError::MessageProduction(
            C::MessageTimedOut
                | C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::RequestTimedOut
                | C::NetworkException
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::NotEnoughReplicas
                | C::NotEnoughReplicasAfterAppend
                | C::UnknownTopicOrPartition
                | C::PartitionEOF
                | C::Fail
                | C::QueueFull
                | C::PurgeQueue
                | C::PurgeInflight
                | C::BrokerNotAvailable
                | C::CoordinatorNotAvailable
                | C::ThrottlingQuotaExceeded
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::DeadLetters;
    use crate::formats::JsonEncoder;
    use crate::settings::Settings;
    use crate::sinks::tests::MemSink;
    use crate::sinks::MessageOutput;
    use std::time::Instant;

    #[test]
    fn a_cluster_out_of_reach_is_worth_retrying_a_refusal_is_not() {
        let failed = |code| KafkaError::MessageProduction(code);
        assert!(retriable(&failed(RDKafkaErrorCode::MessageTimedOut)));
        assert!(retriable(&failed(RDKafkaErrorCode::AllBrokersDown)));
        assert!(retriable(&failed(RDKafkaErrorCode::NotLeaderForPartition)));
        assert!(!retriable(&failed(RDKafkaErrorCode::MessageSizeTooLarge)));
        assert!(!retriable(&failed(RDKafkaErrorCode::TopicAuthorizationFailed)));
        assert!(!retriable(&failed(RDKafkaErrorCode::InvalidMessage)));
    }

    fn output(
        properties: Properties,
        ctx: &Context,
    ) -> Result<MessageOutput<JsonEncoder<serde_json::Value>>, StartError> {
        let producer = KafkaProducer::new("sinks.out", properties, "out", ctx)?;
        Ok(MessageOutput::new(
            "sinks.out",
            Box::new(producer),
            JsonEncoder::new(),
            ctx,
        ))
    }

    /// An output to a broker nobody runs (port 1): its messages time out after 200 ms.
    fn unreachable(ctx: &Context) -> MessageOutput<JsonEncoder<serde_json::Value>> {
        let props = vec![
            ("bootstrap.servers", "127.0.0.1:1".into()),
            ("message.timeout.ms", "200".into()),
            ("enable.idempotence", "false".into()),
        ];
        output(props, ctx).unwrap_or_else(|e| panic!("{e}"))
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
        let mut out = unreachable(&ctx);
        let sink = MemSink::default();
        let mut dead = DeadLetters::to_sinks(vec![Box::new(sink.clone())]);
        ctx.acks.next_epoch();
        let address = Address {
            key: Some("k"),
            ..Address::default()
        };
        assert_eq!(out.send(&serde_json::json!({"n": 1}), address), Ok(()));
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

    #[test]
    fn one_flush_serves_every_batch_of_delivery_reports_waiting() {
        let ctx = Context::new(Settings::from_values(vec![]), 8);
        let mut out = unreachable(&ctx);
        let mut dead = DeadLetters::to_sinks(vec![Box::new(MemSink::default())]);
        ctx.acks.next_epoch();
        // Three topics: their messages fail in three batches of delivery reports.
        for topic in ["a", "b", "c"] {
            let address = Address {
                topic: Some(topic),
                ..Address::default()
            };
            assert_eq!(out.send(&serde_json::json!({ "topic": topic }), address), Ok(()));
        }
        assert_eq!(out.flush(&mut dead), Ok(()));
        assert_eq!(ctx.acks.in_flight(), 3);
        // They time out together (librdkafka looks for them every second): once the
        // first flush settles any, it settles all three.
        let started = Instant::now();
        while ctx.acks.in_flight() == 3 && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(out.flush(&mut dead), Ok(()));
        }
        assert_eq!(ctx.acks.in_flight(), 0, "every batch served by one flush");
        assert_eq!(ctx.events.snapshot()[0].1.dead_lettered, 3);
    }
}
