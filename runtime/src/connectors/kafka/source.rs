//! `KafkaSource`: a consumer-group member that stores offsets only once they are safe.
//!
//! Each poll reads up to a batch of messages and remembers, per partition, the offset
//! after the last one. When the batch has been handled ([`RawSource::batch_done`]), it
//! waits in `pending` under its epoch; once [`Acks::confirmed`] passes that epoch, its
//! offsets are *stored*, and librdkafka commits stored offsets every
//! `auto.commit.interval.ms`, when partitions are revoked, and on close.
//!
//! A rebalance drops everything pending: the offsets of a revoked partition are no
//! longer ours to commit, and its records not yet confirmed are read again by whoever
//! gets the partition (duplicates, never loss). The records themselves still flow.

use super::client::{self, Properties};
use super::resume::Resume;
use crate::acks::Acks;
use crate::batch::{MetaValue, RawBatch};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::internal_events::Connection;
use crate::log;
use crate::sources::{Poll, RawSource};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the first read of a poll may wait for a message: short, so other sources
/// and timers stay responsive, long enough not to spin when the topic is quiet.
const FIRST_WAIT: Duration = Duration::from_millis(10);

/// While all brokers are down, how often a poll asks for metadata to see whether one
/// is back (a quiet topic brings no message to say so), and how long it may wait.
const RECHECK_EVERY: Duration = Duration::from_secs(1);
const RECHECK_WAIT: Duration = Duration::from_millis(40);

/// rill's consumer defaults; the spec's properties come after and may override them.
const DEFAULTS: &[(&str, &str)] = &[
    // Offsets are stored by us, only once safe; librdkafka commits what is stored.
    ("enable.auto.offset.store", "false"),
    ("enable.auto.commit", "true"),
    ("auto.commit.interval.ms", "1000"),
    ("auto.offset.reset", "latest"),
    ("enable.partition.eof", "false"),
];

/// One piece of a message's metadata the pipeline reads, by the names the compiler
/// declares for Kafka: `key`, `topic`, `partition`, `offset`, `timestamp`, `header:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wanted {
    Key,
    Topic,
    Partition,
    Offset,
    Timestamp,
    Header(String),
}

impl Wanted {
    fn parse(name: &str) -> Option<Wanted> {
        Some(match name {
            "key" => Wanted::Key,
            "topic" => Wanted::Topic,
            "partition" => Wanted::Partition,
            "offset" => Wanted::Offset,
            "timestamp" => Wanted::Timestamp,
            _ => Wanted::Header(name.strip_prefix("header:")?.to_owned()),
        })
    }
}

/// The next offset to read, per topic and partition.
type Positions = Vec<(Rc<str>, i32, i64)>;

pub struct KafkaSource {
    component: &'static str,
    consumer: BaseConsumer<GroupMember>,
    acks: Acks,
    /// The metadata the pipeline reads, in the order of its metadata fields.
    metadata: Vec<Wanted>,
    topics: Vec<Rc<str>>,
    /// Positions reached by the batches read since the last `batch_done`.
    reading: Positions,
    /// Handled batches not yet confirmed, oldest first: `(epoch, positions)`.
    pending: VecDeque<(u64, Positions)>,
    /// Rebalances seen so far (the group member counts them).
    rebalances: u64,
    /// When a poll last asked for metadata while all brokers were down.
    rechecked: Option<Instant>,
    /// The next offset per partition after every handled batch: the source's position
    /// in a checkpoint (restored: where it resumes, until passed).
    handled: Positions,
    /// Partitions still to be brought to a restored checkpoint's offsets.
    resume: Resume,
}

impl KafkaSource {
    /// Subscribes to `topics` (names, or regular expressions starting with `^`) with the
    /// client `properties` (`bootstrap.servers`, `group.id`, ..). `metadata` names what
    /// each record's metadata fields receive, in order (see `Wanted`).
    pub fn new(
        component: &'static str,
        properties: Properties,
        topics: &[&str],
        metadata: &[&'static str],
        ctx: &Context,
    ) -> Result<Self, StartError> {
        let metadata = metadata
            .iter()
            .map(|name| {
                Wanted::parse(name).ok_or_else(|| StartError::new(format!("{component}: no metadata `{name}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let member = GroupMember {
            component,
            rebalances: AtomicU64::new(0),
            fatal: client::Fatal::default(),
            connection: ctx.events.connection(component),
        };
        let consumer: BaseConsumer<GroupMember> = client::config(DEFAULTS, &properties)
            .create_with_context(member)
            .map_err(|e| client::start_error(component, e))?;
        consumer
            .subscribe(topics)
            .map_err(|e| StartError::new(format!("{component}: cannot subscribe to {topics:?}: {e}")))?;
        Ok(KafkaSource {
            component,
            consumer,
            acks: ctx.acks.clone(),
            metadata,
            topics: Vec::new(),
            reading: Vec::new(),
            pending: VecDeque::new(),
            rebalances: 0,
            rechecked: None,
            handled: Vec::new(),
            resume: Resume::default(),
        })
    }

    /// Messages fetched, or (at most once a second while all brokers are down) a
    /// metadata request answered, mean a broker is reachable again.
    fn check_connection(&mut self, fetched: bool) {
        let connection = &self.consumer.context().connection;
        if connection.is_connected() {
            return;
        }
        if fetched {
            connection.connected();
            return;
        }
        if self.rechecked.is_some_and(|at| at.elapsed() < RECHECK_EVERY) {
            return;
        }
        self.rechecked = Some(Instant::now());
        if self.consumer.fetch_metadata(None, RECHECK_WAIT).is_ok() {
            connection.connected();
        }
    }

    /// After a rebalance nothing read before it may be committed by us.
    fn forget_if_rebalanced(&mut self) {
        let _ = forget_if_rebalanced(
            &self.consumer,
            &mut self.rebalances,
            &mut self.pending,
            &mut self.reading,
        );
    }
}

/// See [`KafkaSource::forget_if_rebalanced`]; on fields, so it can run while a message
/// borrows the consumer.
fn forget_if_rebalanced(
    consumer: &BaseConsumer<GroupMember>,
    seen: &mut u64,
    pending: &mut VecDeque<(u64, Positions)>,
    reading: &mut Positions,
) -> bool {
    let now = consumer.context().rebalances.load(Ordering::Relaxed);
    if now != *seen {
        *seen = now;
        pending.clear();
        reading.clear();
        return true;
    }
    false
}

/// The shared name of a topic, so a batch does not allocate one per message.
fn shared_topic(topics: &mut Vec<Rc<str>>, name: &str) -> Rc<str> {
    if let Some(t) = topics.iter().find(|t| &***t == name) {
        return t.clone();
    }
    let t: Rc<str> = name.into();
    topics.push(t.clone());
    t
}

/// Raises `positions`' entry for (topic, partition) to `next`.
fn advance(positions: &mut Positions, topic: &Rc<str>, partition: i32, next: i64) {
    match positions.iter_mut().find(|(t, p, _)| *p == partition && t == topic) {
        Some(entry) => entry.2 = entry.2.max(next),
        None => positions.push((topic.clone(), partition, next)),
    }
}

impl RawSource for KafkaSource {
    /// Positions read add up in `reading` until `batch_done`: a poll that reads
    /// batches ahead polls several times before it (see `Source::poll`).
    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        let mut wait = FIRST_WAIT;
        while batch.len() < max {
            let polled = self.consumer.poll(wait);
            wait = Duration::ZERO;
            let rebalanced = forget_if_rebalanced(
                &self.consumer,
                &mut self.rebalances,
                &mut self.pending,
                &mut self.reading,
            );
            if rebalanced {
                self.resume.reassigned();
            }
            let message = match polled {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    consume_error(self.component, e)?;
                    continue;
                }
            };
            if !self.resume.is_empty()
                && !self
                    .resume
                    .admit(&self.consumer, message.topic(), message.partition(), message.offset())
            {
                continue;
            }
            let topic = shared_topic(&mut self.topics, message.topic());
            let (partition, offset) = (message.partition(), message.offset());
            let payload = message.payload().unwrap_or_default();
            if !self.metadata.is_empty() {
                let headers = message.headers();
                let values = self.metadata.iter().map(|wanted| match wanted {
                    Wanted::Key => message.key().map_or(MetaValue::Absent, MetaValue::Text),
                    Wanted::Topic => MetaValue::Text(topic.as_bytes()),
                    Wanted::Partition => MetaValue::Int(i64::from(partition)),
                    Wanted::Offset => MetaValue::Int(offset),
                    Wanted::Timestamp => message
                        .timestamp()
                        .to_millis()
                        .map_or(MetaValue::Absent, MetaValue::Int),
                    Wanted::Header(name) => headers
                        .and_then(|h| {
                            h.iter()
                                .find(|header| header.key == name.as_str())
                                .and_then(|header| header.value)
                        })
                        .map_or(MetaValue::Absent, MetaValue::Text),
                });
                batch.push_message(payload, values);
            } else {
                batch.push(payload);
            }
            batch.set_origin(format_args!("{topic}/{partition}@{offset}"));
            advance(&mut self.reading, &topic, partition, offset + 1);
        }
        if !batch.is_empty() {
            self.acks.next_epoch();
        }
        self.check_connection(!batch.is_empty());
        self.consumer.context().fatal.check()?;
        Ok(Poll::unless_filled(batch, Poll::Idle))
    }

    /// The next offset of every partition this source handled a batch from (or was
    /// restored to): where a restart resumes.
    fn position(&self) -> Vec<u8> {
        let positions: Vec<(&str, i32, i64)> = self.handled.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
        let mut saved = Vec::new();
        // Strings and integers always encode.
        let _ = crate::state::save_value(self.component, &positions, &mut saved);
        saved
    }

    fn resume(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let positions: Vec<(String, i32, i64)> = crate::state::restore_value(self.component, saved)?;
        for (topic, partition, next) in &positions {
            let topic = shared_topic(&mut self.topics, topic);
            advance(&mut self.handled, &topic, *partition, *next);
        }
        self.resume = Resume::new(positions);
        Ok(())
    }

    fn batch_done(&mut self) {
        for (topic, partition, next) in &self.reading {
            advance(&mut self.handled, topic, *partition, *next);
        }
        if !self.reading.is_empty() {
            let positions = std::mem::take(&mut self.reading);
            self.pending.push_back((self.acks.epoch(), positions));
        }
    }

    fn commit(&mut self) -> Result<(), RunError> {
        self.forget_if_rebalanced();
        let confirmed = self.acks.confirmed();
        let mut safe = Positions::new();
        while let Some((epoch, _)) = self.pending.front() {
            if *epoch >= confirmed {
                break;
            }
            if let Some((_, positions)) = self.pending.pop_front() {
                for (topic, partition, next) in &positions {
                    advance(&mut safe, topic, *partition, *next);
                }
            }
        }
        if safe.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::with_capacity(safe.len());
        for (topic, partition, next) in &safe {
            list.add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(|e| RunError::new(format!("{}: {e}", self.component)))?;
        }
        if let Err(e) = self.consumer.store_offsets(&list) {
            // A partition revoked since its records were read: its new owner reads
            // them again. Anything else is logged the same way and retried next time.
            log::warn(
                "kafka offsets not stored",
                &[("component", self.component.into()), ("error", e.to_string().into())],
            );
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), RunError> {
        self.commit()?;
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing was stored since the last commit.
            Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(e) => Err(RunError::new(format!(
                "{}: final offset commit failed: {e}",
                self.component
            ))),
        }
    }
}

/// A consumer error: fatal ones end the run, the rest (a broker unreachable for a
/// while) are logged and librdkafka keeps trying.
fn consume_error(component: &str, e: KafkaError) -> Result<(), RunError> {
    use rdkafka::types::RDKafkaErrorCode::{AllBrokersDown, BrokerTransportFailure, Fatal};
    let fields = [("component", component.into()), ("error", e.to_string().into())];
    match e.rdkafka_error_code() {
        Some(Fatal) => Err(RunError::new(format!("{component}: {e}"))),
        // Already logged by the client's error callback.
        Some(AllBrokersDown | BrokerTransportFailure) => {
            log::debug("kafka consumer error", &fields);
            Ok(())
        }
        _ => {
            log::warn("kafka consumer error", &fields);
            Ok(())
        }
    }
}

/// The consumer's callbacks: rebalances are counted (the source drops what it can no
/// longer commit) and logged; librdkafka's logs go to the pipeline log; "all brokers
/// down" marks the source disconnected for `/health`.
struct GroupMember {
    component: &'static str,
    rebalances: AtomicU64,
    fatal: client::Fatal,
    connection: Connection,
}

impl ClientContext for GroupMember {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        client::log_line(self.component, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown) {
            self.connection.disconnected(reason);
        }
        client::log_error(self.component, error, reason, &self.fatal);
    }
}

impl ConsumerContext for GroupMember {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            // Counted before librdkafka commits the stored offsets and lets go.
            self.rebalances.fetch_add(1, Ordering::Relaxed);
            log::info(
                "kafka partitions revoked",
                &[
                    ("component", self.component.into()),
                    ("partitions", describe(list).into()),
                ],
            );
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                self.rebalances.fetch_add(1, Ordering::Relaxed);
                log::info(
                    "kafka partitions assigned",
                    &[
                        ("component", self.component.into()),
                        ("partitions", describe(list).into()),
                    ],
                );
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => log::warn(
                "kafka rebalance failed",
                &[("component", self.component.into()), ("error", e.to_string().into())],
            ),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => log::debug(
                "kafka offsets committed",
                &[
                    ("component", self.component.into()),
                    ("offsets", describe(offsets).into()),
                ],
            ),
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => log::warn(
                "kafka offset commit failed",
                &[("component", self.component.into()), ("error", e.to_string().into())],
            ),
        }
    }
}

/// `topic/partition@offset` for each element, for logs.
fn describe(list: &TopicPartitionList) -> String {
    let parts: Vec<String> = list
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => format!("{}/{}@{o}", e.topic(), e.partition()),
            _ => format!("{}/{}", e.topic(), e.partition()),
        })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_keep_the_highest_next_offset_per_topic_and_partition() {
        let (a, b): (Rc<str>, Rc<str>) = ("a".into(), "b".into());
        let mut positions = Positions::new();
        advance(&mut positions, &a, 0, 5);
        advance(&mut positions, &a, 1, 3);
        advance(&mut positions, &a, 0, 4);
        advance(&mut positions, &b, 0, 9);
        advance(&mut positions, &a, 0, 6);
        assert_eq!(positions, vec![(a.clone(), 0, 6), (a, 1, 3), (b, 0, 9)]);
    }

    #[test]
    fn a_source_subscribes_without_a_broker_and_reports_bad_properties() {
        let ctx = Context::new(crate::settings::Settings::from_values(vec![]), 8);
        let props = |extra: (&'static str, &str)| {
            vec![
                ("bootstrap.servers", "127.0.0.1:1".to_string()),
                ("group.id", "g".to_string()),
                (extra.0, extra.1.to_string()),
            ]
        };
        let ok = KafkaSource::new(
            "sources.in",
            props(("client.id", "t")),
            &["in", "^in-.*"],
            &["key", "header:trace-id"],
            &ctx,
        );
        let mut source = ok.unwrap_or_else(|e| panic!("{e}"));
        let mut batch = RawBatch::new();
        assert_eq!(
            source.poll(&mut batch, 10),
            Ok(Poll::Idle),
            "no broker: nothing to read, no error"
        );
        assert_eq!(ctx.acks.epoch(), 0, "an empty poll starts no epoch");
        let bad = KafkaSource::new("sources.in", props(("session.timeout.ms", "often")), &["in"], &[], &ctx);
        let err = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.starts_with("sources.in: cannot create the Kafka client") && err.contains("session.timeout.ms"),
            "{err}"
        );
    }
}
