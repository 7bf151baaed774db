//! `PulsarSource`: reads a subscription and acknowledges a message only once its
//! records are safe downstream.
//!
//! The connector's thread subscribes (retrying until the broker answers) and hands each
//! message to `poll` over a bounded channel. A message's id waits in [`Unacked`] under
//! the epoch of its batch until [`Acks::confirmed`] passes it; `commit` then sends the
//! ids to the thread, which acknowledges them. A record that became a dead letter is
//! safe too: the dead-letter output holds it. At close, what is confirmed is
//! acknowledged and every other message read (taken by the pipeline, or still in the
//! channel) is acknowledged negatively, so the broker sends it again, on a shared
//! subscription to another consumer, without waiting for a timeout. After a crash the
//! broker sends every unacknowledged message again when the consumer comes back (at
//! least once). A message the broker sends again while the source still holds its first
//! delivery, or soon after acknowledging it, is dropped ([`Held`]); in the second case
//! it is acknowledged again.

use super::client::{self, Fatal, Outage, PulsarConnect};
use super::held::{Held, Seen};
use super::nodelay::{self, Brokers};
use crate::acks::{Acks, Unacked};
use crate::batch::{MetaValue, RawBatch};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::log;
use crate::sources::{Poll, RawSource};
use futures::{FutureExt, StreamExt};
use pulsar::consumer::{ConsumerOptions, InitialPosition, Message};
use pulsar::proto::command_subscribe::SubType;
use pulsar::proto::MessageIdData;
use pulsar::{Consumer, Pulsar, TokioExecutor};
use serde_json::json;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TryRecvError, Receiver, Sender, UnboundedReceiver, UnboundedSender};

/// Messages the thread hands over at once, at most: those the client already has
/// (one channel operation, and one wake-up, for many messages).
const CHUNK: usize = 256;
/// Chunks the thread may hold for the pipeline before it waits (the broker's flow
/// control holds the rest): 4,096 messages.
const CHANNEL: usize = 16;
/// Messages the client asks the broker for ahead of reading them (Pulsar's receiver
/// queue; the clients' default is 1,000): as many as the channel holds, so the broker
/// goes on sending while the pipeline works through a channel's worth. With 1,000, the
/// broker waited on the longer way a message takes here (client → channel → pipeline):
/// bench/pulsar.sh measured 0.73× the hand-written relay, 0.92× with 4,096.
const RECEIVER_QUEUE: u32 = (CHUNK * CHANNEL) as u32;
/// How long closing waits for the thread to send what it was told.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The subscription types Pulsar has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PulsarSubscription {
    /// One consumer at a time; another is refused.
    Exclusive,
    /// Messages spread over every consumer.
    Shared,
    /// One active consumer, others standing by.
    Failover,
    /// Spread over consumers by key: one key's messages go to one consumer, in order.
    KeyShared,
}

impl PulsarSubscription {
    fn sub_type(self) -> SubType {
        match self {
            PulsarSubscription::Exclusive => SubType::Exclusive,
            PulsarSubscription::Shared => SubType::Shared,
            PulsarSubscription::Failover => SubType::Failover,
            PulsarSubscription::KeyShared => SubType::KeyShared,
        }
    }
}

/// What to read, and as whom.
#[derive(Debug, Clone)]
pub struct PulsarSubscribe {
    pub topics: Vec<String>,
    pub subscription: String,
    pub kind: PulsarSubscription,
    /// Where a new subscription starts: the oldest message kept, or new ones only.
    pub earliest: bool,
    /// Empty: the broker names it.
    pub consumer_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Wanted {
    Key,
    Topic,
    PublishTime,
    EventTime,
    MessageId,
    Property(String),
}

impl Wanted {
    fn parse(name: &str) -> Option<Wanted> {
        Some(match name {
            "key" => Wanted::Key,
            "topic" => Wanted::Topic,
            "publish_time" => Wanted::PublishTime,
            "event_time" => Wanted::EventTime,
            "message_id" => Wanted::MessageId,
            _ => Wanted::Property(name.strip_prefix("property:")?.to_owned()),
        })
    }
}

/// Where a message is, to acknowledge it.
#[derive(Debug, Clone)]
struct Position {
    topic: String,
    id: MessageIdData,
    /// The last message of its entry (a producer's batch), or one not batched.
    closes_entry: bool,
}

impl Position {
    fn of(message: Message<Vec<u8>>) -> Position {
        let closes_entry = match (message.message_id.id.batch_index, message.message_id.batch_size) {
            (Some(index), Some(size)) => index + 1 >= size,
            _ => true,
        };
        Position {
            topic: message.topic,
            id: message.message_id.id,
            closes_entry,
        }
    }
}

/// What the pipeline tells the thread.
enum Command {
    Ack(Vec<Position>),
    Nack(Vec<Position>),
    /// Close the consumer and end.
    Close,
}

pub struct PulsarSource {
    component: &'static str,
    acks: Acks,
    metadata: Vec<Wanted>,
    messages: Option<Receiver<Vec<Message<Vec<u8>>>>>,
    /// What is left of the chunk being read.
    chunk: std::vec::IntoIter<Message<Vec<u8>>>,
    commands: UnboundedSender<Command>,
    unacked: Unacked<Position>,
    held: Held,
    /// Second deliveries of messages acknowledged before: acknowledged again at the next
    /// commit.
    again: Vec<Position>,
    /// A message id as text, for the `message_id` field and dead letters.
    text: String,
    fatal: Arc<Fatal>,
    thread: Option<JoinHandle<()>>,
}

impl PulsarSource {
    /// Subscribes on a thread of its own, retrying until the broker answers. `metadata`
    /// names what each record's metadata fields receive, in order: `key`, `topic`,
    /// `publish_time`, `event_time`, `message_id`, `property:<name>`.
    pub fn new(
        component: &'static str,
        connect: PulsarConnect,
        subscribe: PulsarSubscribe,
        metadata: &[&str],
        ctx: &Context,
    ) -> Result<PulsarSource, StartError> {
        connect.check(component)?;
        let subscribe = PulsarSubscribe {
            topics: subscribe
                .topics
                .iter()
                .map(|t| client::full_topic(t).into_owned())
                .collect(),
            ..subscribe
        };
        let metadata = metadata
            .iter()
            .map(|name| {
                Wanted::parse(name).ok_or_else(|| StartError::new(format!("{component}: no Pulsar metadata `{name}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let fatal = Arc::new(Fatal::default());
        let (deliver, messages) = mpsc::channel(CHANNEL);
        let (commands, commands_in) = mpsc::unbounded_channel();
        let reader = Reader {
            component,
            connect,
            subscribe,
            deliver,
            commands: commands_in,
            fatal: fatal.clone(),
            outage: Outage::new(
                component,
                "pulsar: not subscribed (broker unreachable, or the subscription refused this consumer); trying again",
                ctx.events.connection(component),
            ),
        };
        let thread = client::spawn(component, format!("pulsar {component}"), move || reader.run())?;
        Ok(PulsarSource {
            component,
            acks: ctx.acks.clone(),
            metadata,
            messages: Some(messages),
            chunk: Vec::new().into_iter(),
            commands,
            unacked: Unacked::new(),
            held: Held::default(),
            again: Vec::new(),
            text: String::new(),
            fatal,
            thread: Some(thread),
        })
    }

    fn check(&self) -> Result<(), RunError> {
        match self.fatal.get() {
            Some(why) => Err(RunError::new(format!("{}: {why}", self.component))),
            None => Ok(()),
        }
    }

    /// Tells the thread to close the consumer and waits for it a while.
    fn stop(&mut self) {
        let _ = self.commands.send(Command::Close);
        self.messages = None;
        if let Some(thread) = self.thread.take() {
            let until = std::time::Instant::now() + CLOSE_WAIT;
            while !thread.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// `ledger:entry:partition:batch_index`, as Pulsar's tools print a message id.
fn write_id(out: &mut String, id: &MessageIdData) {
    out.clear();
    push_uint(out, id.ledger_id);
    out.push(':');
    push_uint(out, id.entry_id);
    out.push(':');
    push_int(out, id.partition.unwrap_or(-1));
    out.push(':');
    push_int(out, id.batch_index.unwrap_or(-1));
}

fn push_int(out: &mut String, v: i32) {
    if v < 0 {
        out.push('-');
    }
    push_uint(out, u64::from(v.unsigned_abs()));
}

/// `n` in decimal: without `write!`, which costs more than the rest of a message's
/// handling here (this runs for every message), and in `u64` (a division of `u128` is
/// a call into the compiler's runtime: it was the pipeline thread's second-hottest
/// function).
fn push_uint(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|d| char::from(*d)));
}

impl RawSource for PulsarSource {
    /// The thread wakes the pipeline with each message it hands over.
    fn idle_for(&self) -> Option<Duration> {
        None
    }

    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        let Some(messages) = &mut self.messages else {
            return Ok(Poll::Idle);
        };
        while batch.len() < max {
            let message = match self.chunk.next() {
                Some(message) => message,
                None => match messages.try_recv() {
                    Ok(chunk) => {
                        self.chunk = chunk.into_iter();
                        continue;
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                },
            };
            match self.held.read(&message.topic, &message.message_id.id) {
                Seen::New => {}
                Seen::Held => continue,
                Seen::Acknowledged => {
                    self.again.push(Position::of(message));
                    continue;
                }
            }
            let meta = &message.payload.metadata;
            let payload = &message.payload.data;
            write_id(&mut self.text, &message.message_id.id);
            if self.metadata.is_empty() {
                batch.push(payload);
            } else {
                let text = &self.text;
                let values = self.metadata.iter().map(|wanted| match wanted {
                    Wanted::Key => meta
                        .partition_key
                        .as_deref()
                        .map_or(MetaValue::Absent, |k| MetaValue::Text(k.as_bytes())),
                    Wanted::Topic => MetaValue::Text(message.topic.as_bytes()),
                    Wanted::PublishTime => MetaValue::Int(i64::try_from(meta.publish_time).unwrap_or(i64::MAX)),
                    Wanted::EventTime => match meta.event_time {
                        // Producers that set none send 0.
                        Some(ms) if ms > 0 => MetaValue::Int(i64::try_from(ms).unwrap_or(i64::MAX)),
                        _ => MetaValue::Absent,
                    },
                    Wanted::MessageId => MetaValue::Text(text.as_bytes()),
                    Wanted::Property(name) => meta
                        .properties
                        .iter()
                        .find(|p| p.key == *name)
                        .map_or(MetaValue::Absent, |p| MetaValue::Text(p.value.as_bytes())),
                });
                batch.push_message(payload, values);
            }
            // A record that does not decode is a dead letter naming its message.
            batch.set_origin(format_args!("{} {}", message.topic, self.text));
            self.unacked.read(Position::of(message));
        }
        if !batch.is_empty() {
            self.acks.next_epoch();
        }
        self.check()?;
        Ok(Poll::unless_filled(batch, Poll::Idle))
    }

    fn batch_done(&mut self) {
        self.unacked.batch_done(self.acks.epoch());
    }

    fn commit(&mut self) -> Result<(), RunError> {
        let mut safe = Vec::new();
        self.unacked.confirmed(self.acks.confirmed(), &mut safe);
        self.held.acknowledged(safe.len());
        safe.append(&mut self.again);
        // A broker takes the acknowledgement of one message of a producer's batch for
        // the whole entry (the client sends no batch-index acknowledgements): so only an
        // entry's last message is acknowledged, once it is safe, and with it the entry's
        // earlier messages, read and confirmed before it. One acknowledgement per entry
        // is also what keeps the client's queue of them short.
        safe.retain(|p| p.closes_entry);
        if !safe.is_empty() {
            // The thread is gone only after a failure `poll` reports.
            let _ = self.commands.send(Command::Ack(safe));
        }
        Ok(())
    }

    /// Acknowledges what is confirmed; every other message read is acknowledged
    /// negatively, so the broker sends it again at once. Then the consumer closes.
    fn close(&mut self) -> Result<(), RunError> {
        self.commit()?;
        let mut unsafe_ = self.unacked.take_all();
        unsafe_.extend(self.chunk.by_ref().map(Position::of));
        if let Some(messages) = &mut self.messages {
            messages.close();
            while let Ok(chunk) = messages.try_recv() {
                unsafe_.extend(chunk.into_iter().map(Position::of));
            }
        }
        if self.held.dropped > 0 {
            log::warn(
                "pulsar: the broker sent messages again that this source had read already; the second deliveries were dropped",
                &[("component", json!(self.component)), ("messages", json!(self.held.dropped))],
            );
        }
        if !unsafe_.is_empty() {
            log::info(
                "pulsar: messages not yet safe downstream are sent again by the broker",
                &[("component", json!(self.component)), ("messages", json!(unsafe_.len()))],
            );
            let _ = self.commands.send(Command::Nack(unsafe_));
        }
        self.stop();
        self.check().map_err(|e| RunError::new(format!("{e} (at close)")))
    }
}

impl Drop for PulsarSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How reading with one consumer ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The pipeline closed it.
    Closed,
    /// The client stopped it (it could not reconnect).
    GivenUp,
}

/// The source's thread.
struct Reader {
    component: &'static str,
    connect: PulsarConnect,
    subscribe: PulsarSubscribe,
    deliver: Sender<Vec<Message<Vec<u8>>>>,
    commands: UnboundedReceiver<Command>,
    fatal: Arc<Fatal>,
    outage: Outage,
}

impl Reader {
    /// Subscribes, reads until the pipeline closes the consumer, and subscribes again
    /// when the client gives a consumer up (its broker stayed away too long).
    async fn run(mut self) {
        // Told while no consumer exists: acknowledgements wait for the next one (the
        // subscription's, not the consumer's: any consumer of it may send them).
        let mut early = Vec::new();
        loop {
            // The client lives as long as its consumer.
            let mut brokers = Brokers::default();
            let (_client, mut consumer) = loop {
                tokio::select! {
                    command = self.commands.recv() => match command {
                        Some(Command::Close) | None => return,
                        Some(command) => early.push(command),
                    },
                    subscribed = subscribe(&self.connect, &self.subscribe, &mut brokers) => match subscribed {
                        Ok(subscribed) => break subscribed,
                        Err(e) if client::refused(&e) => {
                            self.fatal.set(format!("the Pulsar broker refused the subscription: {e}"));
                            return;
                        }
                        Err(e) => {
                            let wait = self.outage.failed(&e.to_string());
                            tokio::time::sleep(wait).await;
                        }
                    },
                }
            };
            self.outage.connected();
            log::info(
                "pulsar subscribed",
                &[
                    ("component", json!(self.component)),
                    ("topics", json!(self.subscribe.topics)),
                    ("subscription", json!(self.subscribe.subscription)),
                    ("type", json!(format!("{:?}", self.subscribe.kind))),
                ],
            );
            for command in early.drain(..) {
                if !self.apply(&mut consumer, command).await {
                    return;
                }
            }
            if self.read(&mut consumer, &brokers).await == Ended::Closed {
                return;
            }
            log::warn(
                "pulsar: the client gave the consumer up; subscribing again (unacknowledged messages come again)",
                &[("component", json!(self.component))],
            );
        }
    }

    /// Hands messages over and carries out commands until the consumer is closed or
    /// the client gives it up.
    async fn read(&mut self, consumer: &mut Consumer<Vec<u8>, TokioExecutor>, brokers: &Brokers) -> Ended {
        let mut tune = nodelay::ticks();
        loop {
            tokio::select! {
                biased;
                _ = tune.tick() => {
                    brokers.set_nodelay();
                }
                command = self.commands.recv() => {
                    let command = command.unwrap_or(Command::Close);
                    if !self.apply(consumer, command).await {
                        return Ended::Closed;
                    }
                }
                next = consumer.next() => {
                    let mut next = Some(next);
                    if let Some(Some(Ok(first))) = next {
                        self.outage.connected();
                        // With the messages the client already has, up to a chunk.
                        let mut chunk = Vec::with_capacity(CHUNK);
                        chunk.push(first);
                        next = None;
                        while chunk.len() < CHUNK {
                            match consumer.next().now_or_never() {
                                Some(Some(Ok(message))) => chunk.push(message),
                                other => {
                                    next = other;
                                    break;
                                }
                            }
                        }
                        if self.deliver.send(chunk).await.is_ok() {
                            crate::wake::notify();
                        }
                        // Else the pipeline stopped: its close says what becomes of the rest.
                    }
                    match next {
                        Some(Some(Err(e))) => {
                            let wait = self.outage.failed(&e.to_string());
                            tokio::time::sleep(wait).await;
                        }
                        Some(None) => return Ended::GivenUp,
                        _ => {}
                    }
                }
            }
        }
    }

    /// Carries out one command; `false` once the consumer is closed.
    async fn apply(&mut self, consumer: &mut Consumer<Vec<u8>, TokioExecutor>, command: Command) -> bool {
        match command {
            Command::Ack(positions) => {
                let mut failed = 0usize;
                for p in positions {
                    failed += usize::from(consumer.ack_with_id(&p.topic, p.id).await.is_err());
                }
                if failed > 0 {
                    log::warn(
                        "pulsar: acknowledgements not sent; the broker sends those messages again",
                        &[("component", json!(self.component)), ("messages", json!(failed))],
                    );
                }
                true
            }
            Command::Nack(positions) => {
                for p in positions {
                    let _ = consumer.nack_with_id(&p.topic, p.id).await;
                }
                true
            }
            Command::Close => {
                if let Err(e) = consumer.close().await {
                    log::warn(
                        "pulsar: the consumer did not close cleanly",
                        &[("component", json!(self.component)), ("reason", json!(e.to_string()))],
                    );
                }
                false
            }
        }
    }
}

/// Connects and subscribes; learns where the connections go first (its lookups are
/// over before the broker starts sending).
async fn subscribe(
    connect: &PulsarConnect,
    s: &PulsarSubscribe,
    brokers: &mut Brokers,
) -> Result<(Pulsar<TokioExecutor>, Consumer<Vec<u8>, TokioExecutor>), pulsar::Error> {
    let client = connect.client().await?;
    brokers
        .learn(&client, &connect.url, s.topics.iter().map(String::as_str))
        .await;
    let start = if s.earliest {
        InitialPosition::Earliest
    } else {
        InitialPosition::Latest
    };
    let mut builder = client
        .consumer()
        .with_topics(&s.topics)
        .with_subscription(&s.subscription)
        .with_subscription_type(s.kind.sub_type())
        .with_options(ConsumerOptions::default().with_initial_position(start))
        .with_batch_size(RECEIVER_QUEUE);
    if !s.consumer_name.is_empty() {
        builder = builder.with_consumer_name(&s.consumer_name);
    }
    // Ids are the connection's own in the protocol, and every client starts at 0; a
    // broker that keys them by subscription (pulsar-lite), or still holds a killed
    // process's consumer, would refuse a second 0. A random one never meets another.
    builder = builder.with_consumer_id(random_id());
    let consumer = builder.build().await?;
    Ok((client, consumer))
}

/// A consumer id unlike any other process's (time and process id, mixed).
fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    // Kept below 2^53, so tools printing it as a JSON number keep it exact.
    hasher.finish() >> 11
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsar::consumer::data::MessageData;
    use pulsar::Payload;

    fn message(batch_index: Option<i32>, batch_size: Option<i32>) -> Message<Vec<u8>> {
        let id = MessageIdData {
            ledger_id: 1,
            entry_id: 2,
            batch_index,
            ..MessageIdData::default()
        };
        let payload = Payload {
            metadata: Default::default(),
            data: Vec::new(),
        };
        Message::new("t", MessageData { id, batch_size }, payload)
    }

    #[test]
    fn a_message_id_is_written_ledger_entry_partition_batch() {
        let mut text = String::from("old");
        let id = MessageIdData {
            ledger_id: u64::MAX,
            entry_id: 0,
            partition: Some(-1),
            batch_index: Some(907),
            ..MessageIdData::default()
        };
        write_id(&mut text, &id);
        assert_eq!(text, "18446744073709551615:0:-1:907");
        write_id(&mut text, &MessageIdData::default());
        assert_eq!(text, "0:0:-1:-1");
        let id = MessageIdData {
            ledger_id: 10,
            entry_id: 9,
            partition: Some(i32::MIN),
            batch_index: Some(i32::MAX),
            ..MessageIdData::default()
        };
        write_id(&mut text, &id);
        assert_eq!(text, "10:9:-2147483648:2147483647");
    }

    #[test]
    fn only_the_last_message_of_a_batch_closes_its_entry() {
        let closes = |index, size| Position::of(message(index, size)).closes_entry;
        assert!(closes(None, None), "not batched");
        assert!(closes(Some(0), Some(1)), "a batch of one");
        assert!(!closes(Some(0), Some(3)));
        assert!(!closes(Some(1), Some(3)));
        assert!(closes(Some(2), Some(3)));
        assert!(closes(Some(0), None), "no batch size: acknowledged");
    }
}
