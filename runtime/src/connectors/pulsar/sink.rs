//! `PulsarProducer`: a [`MessageSink`] publishing each record as a message, batched by
//! the `pulsar` crate's producers (one per topic: the sink's own made at start, any other
//! when a record first names it).
//!
//! `send` hands the message to the connector's thread; the thread publishes it and a
//! task of its own waits for the broker's receipt, which comes back as the record's
//! outcome. At most [`MAX_IN_FLIGHT`] messages are unconfirmed at once: `send` waits
//! for room (back-pressure, nothing dropped). While the broker cannot be reached the
//! thread tries again, backing off to 5 s, until the message has waited
//! `delivery_timeout`; it then fails as worth retrying, so a disk buffer keeps it and
//! sends it later, and without one it becomes a dead letter. A message the broker did
//! not confirm is sent again only by a disk buffer (at least once).

use super::client::{self, Fatal, Outage, PulsarConnect};
use super::nodelay::{self, Brokers};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::log;
use crate::sinks::{Address, MessageSink, Outcome, Undelivered};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use pulsar::compression::Compression;
use pulsar::producer::SendFuture;
use pulsar::producer::{Message, ProducerOptions};
use pulsar::{Producer, Pulsar, TokioExecutor};
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{self, error::SendError, UnboundedReceiver, UnboundedSender};

/// Messages unconfirmed at once, at most.
const MAX_IN_FLIGHT: usize = 10_000;
/// Messages handed to the thread at once, and outcomes handed back at once, at most:
/// one channel operation (and one wake-up) for many.
const CHUNK: usize = 256;
/// How long closing waits beyond the delivery timeout for the last receipts.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How the producer compresses its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PulsarCompression {
    None,
    Lz4,
    Zlib,
    Zstd,
    Snappy,
}

/// The sink's settings.
#[derive(Debug, Clone)]
pub struct PulsarPublish {
    /// The topic of records whose address names none (empty: every record names one).
    pub topic: String,
    /// A batch goes out when it holds this many messages (1: no batching) ...
    pub batch_max_records: u32,
    /// ... or this many bytes ...
    pub batch_max_bytes: usize,
    /// ... or its first message has waited this long.
    pub batch_max_wait_ms: u64,
    pub compression: PulsarCompression,
    /// How long a message may wait for an unreachable broker before it fails.
    pub delivery_timeout_ms: u64,
}

impl PulsarPublish {
    fn options(&self) -> ProducerOptions {
        let compression = match self.compression {
            PulsarCompression::None => Compression::None,
            PulsarCompression::Lz4 => Compression::Lz4(Default::default()),
            PulsarCompression::Zlib => Compression::Zlib(Default::default()),
            PulsarCompression::Zstd => Compression::Zstd(Default::default()),
            PulsarCompression::Snappy => Compression::Snappy(Default::default()),
        };
        let batching = self.batch_max_records > 1;
        ProducerOptions {
            batch_size: batching.then_some(self.batch_max_records),
            batch_byte_size: batching.then_some(self.batch_max_bytes),
            batch_timeout: batching.then(|| Duration::from_millis(self.batch_max_wait_ms.max(1))),
            compression: Some(compression),
            block_queue_if_full: true,
            ..ProducerOptions::default()
        }
    }
}

/// One record to publish.
struct Job {
    tag: u64,
    /// `None`: the sink's own.
    topic: Option<String>,
    key: Option<String>,
    properties: HashMap<String, String>,
    payload: Vec<u8>,
    /// When `send` handed it over: the delivery timeout counts from here.
    since: Instant,
}

pub struct PulsarProducer {
    component: &'static str,
    /// Unbounded in chunks, bounded in messages: `send` keeps at most `MAX_IN_FLIGHT`
    /// outstanding, however small the chunks.
    jobs: Option<UnboundedSender<Vec<Job>>>,
    /// Messages not yet handed to the thread: at `CHUNK`, or when outcomes are asked.
    pending: Vec<Job>,
    outcomes: std_mpsc::Receiver<Vec<Outcome>>,
    /// Outcomes taken while `send` waited for room, for the next `poll`.
    done: Vec<Outcome>,
    outstanding: usize,
    delivery_timeout: Duration,
    fatal: Arc<Fatal>,
    thread: Option<JoinHandle<()>>,
}

impl PulsarProducer {
    pub fn new(
        component: &'static str,
        connect: PulsarConnect,
        publish: PulsarPublish,
        ctx: &Context,
    ) -> Result<PulsarProducer, StartError> {
        connect.check(component)?;
        let fatal = Arc::new(Fatal::default());
        let (jobs, jobs_in) = mpsc::unbounded_channel();
        let (outcomes_out, outcomes) = std_mpsc::channel();
        let delivery_timeout = Duration::from_millis(publish.delivery_timeout_ms);
        let publisher = Publisher {
            component,
            connect,
            options: publish.options(),
            topic: match publish.topic.trim() {
                "" => Arc::from(""),
                own => Arc::from(client::full_topic(own).as_ref()),
            },
            delivery_timeout,
            jobs: jobs_in,
            outcomes: outcomes_out,
            fatal: fatal.clone(),
            outage: Outage::new(
                component,
                "pulsar broker unreachable; trying again",
                ctx.events.connection(component),
            ),
            client: None,
            producers: HashMap::new(),
            receipts: FuturesUnordered::new(),
            brokers: Brokers::default(),
        };
        let thread = client::spawn(component, format!("pulsar {component}"), move || publisher.run())?;
        Ok(PulsarProducer {
            component,
            jobs: Some(jobs),
            pending: Vec::new(),
            outcomes,
            done: Vec::new(),
            outstanding: 0,
            delivery_timeout,
            fatal,
            thread: Some(thread),
        })
    }

    fn take_outcomes(&mut self) {
        while let Ok(outcomes) = self.outcomes.try_recv() {
            self.outstanding = self.outstanding.saturating_sub(outcomes.len());
            self.done.extend(outcomes);
        }
    }

    /// Hands the pending messages to the thread. `Err` when it has stopped.
    fn hand_over(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(jobs) = &self.jobs else {
            return Err("the Pulsar sink is closed".into());
        };
        match jobs.send(std::mem::take(&mut self.pending)) {
            Ok(()) => Ok(()),
            Err(SendError(chunk)) => {
                self.pending = chunk;
                Err("the Pulsar sink's thread has stopped".into())
            }
        }
    }

    /// The pending messages could not be handed over: each fails (retriable, so a
    /// disk buffer keeps it; else a dead letter).
    fn fail_pending(&mut self, why: &str) {
        for job in self.pending.drain(..) {
            self.done.push(Outcome {
                tag: job.tag,
                failure: Some((why.to_string(), job.payload)),
                retriable: true,
            });
            self.outstanding = self.outstanding.saturating_sub(1);
        }
    }

    fn thread_gone(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl MessageSink for PulsarProducer {
    fn send(&mut self, payload: &[u8], address: Address<'_>, tag: u64) -> Result<(), String> {
        // Back-pressure: the broker is slow or away.
        if self.outstanding >= MAX_IN_FLIGHT {
            self.hand_over()?;
        }
        while self.outstanding >= MAX_IN_FLIGHT {
            self.take_outcomes();
            if self.outstanding < MAX_IN_FLIGHT {
                break;
            }
            if crate::shutdown::give_up_waiting() || self.thread_gone() {
                return Err("the Pulsar broker took no more messages before the pipeline stopped".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.jobs.is_none() {
            return Err("the Pulsar sink is closed".into());
        }
        let properties = address
            .headers
            .iter()
            .filter_map(|(name, value)| Some(((*name).to_string(), (*value)?.to_string())))
            .collect();
        let job = Job {
            tag,
            topic: address.topic.map(str::to_string),
            key: address.key.map(str::to_string),
            properties,
            payload: payload.to_vec(),
            since: Instant::now(),
        };
        self.pending.push(job);
        self.outstanding += 1;
        if self.pending.len() >= CHUNK {
            // The job was taken: its outcome comes, as a failure if the thread is gone.
            if let Err(why) = self.hand_over() {
                self.fail_pending(&why);
            }
        }
        Ok(())
    }

    fn poll(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError> {
        if let Err(why) = self.hand_over() {
            self.fail_pending(&why);
        }
        self.take_outcomes();
        outcomes.append(&mut self.done);
        if let Some(why) = self.fatal.get() {
            return Err(RunError::new(format!("{}: {why}", self.component)));
        }
        Ok(())
    }

    fn max_in_flight(&self) -> Option<usize> {
        Some(MAX_IN_FLIGHT)
    }

    /// Sends what is batched, waiting for the receipts as long as a message may wait
    /// (or until a requested stop is overdue).
    fn close(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), Undelivered> {
        if let Err(why) = self.hand_over() {
            self.fail_pending(&why);
        }
        self.jobs = None;
        let until = Instant::now() + self.delivery_timeout + CLOSE_GRACE;
        self.take_outcomes();
        // A stop that is due (SIGTERM, the broker gone) does not wait out the delivery
        // timeout: the shutdown watchdog would end the run before the counts are said.
        while self.outstanding > 0
            && Instant::now() < until
            && !self.thread_gone()
            && !crate::shutdown::give_up_waiting()
        {
            std::thread::sleep(Duration::from_millis(5));
            self.take_outcomes();
        }
        self.take_outcomes();
        outcomes.append(&mut self.done);
        if let Some(thread) = self.thread.take().filter(|t| t.is_finished()) {
            let _ = thread.join();
        }
        match self.outstanding {
            0 => Ok(()),
            count => Err(Undelivered {
                count: count as u64,
                reason: self
                    .fatal
                    .get()
                    .unwrap_or_else(|| "the Pulsar broker did not confirm them before the pipeline stopped".into()),
            }),
        }
    }
}

/// The sink's thread.
struct Publisher {
    component: &'static str,
    connect: PulsarConnect,
    options: ProducerOptions,
    /// The sink's own topic, in full; empty when each record names its topic.
    topic: Arc<str>,
    delivery_timeout: Duration,
    jobs: UnboundedReceiver<Vec<Job>>,
    outcomes: std_mpsc::Sender<Vec<Outcome>>,
    fatal: Arc<Fatal>,
    outage: Outage,
    client: Option<Pulsar<TokioExecutor>>,
    producers: HashMap<String, Producer<TokioExecutor>>,
    /// Messages published whose receipt has not come yet.
    receipts: FuturesUnordered<Receipt>,
    /// Where the producers' connections go.
    brokers: Brokers,
}

/// A published message's receipt, as its outcome.
struct Receipt {
    tag: u64,
    /// Kept for the dead letter if the broker does not confirm it.
    payload: Option<Vec<u8>>,
    receipt: SendFuture,
}

impl Future for Receipt {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Outcome> {
        let done = match Pin::new(&mut self.receipt).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(done) => done,
        };
        let tag = self.tag;
        Poll::Ready(match done {
            Ok(_) => Outcome::delivered(tag),
            Err(e) => Outcome {
                tag,
                failure: Some((
                    format!("the Pulsar broker did not confirm it: {e}"),
                    self.payload.take().unwrap_or_default(),
                )),
                retriable: true,
            },
        })
    }
}

impl Publisher {
    async fn run(mut self) {
        self.warm_up().await;
        let mut tune = nodelay::ticks();
        loop {
            tokio::select! {
                biased;
                _ = tune.tick() => {
                    self.brokers.set_nodelay();
                }
                Some(outcome) = self.receipts.next(), if !self.receipts.is_empty() => {
                    // With the receipts already in, up to a chunk.
                    let mut done = vec![outcome];
                    while done.len() < CHUNK {
                        match self.receipts.next().now_or_never() {
                            Some(Some(outcome)) => done.push(outcome),
                            _ => break,
                        }
                    }
                    self.report(done);
                }
                jobs = self.jobs.recv() => match jobs {
                    Some(jobs) => {
                        for job in jobs {
                            self.publish(job).await;
                        }
                    }
                    None => break,
                },
            }
        }
        // The pipeline closes: the last batches go out now, not after their wait.
        for producer in self.producers.values_mut() {
            let _ = producer.send_batch().await;
        }
        let receipts = async {
            while let Some(outcome) = self.receipts.next().await {
                let _ = self.outcomes.send(vec![outcome]);
            }
        };
        let _ = tokio::time::timeout(self.delivery_timeout, receipts).await;
        for producer in self.producers.values_mut() {
            let _ = tokio::time::timeout(CLOSE_GRACE, producer.close()).await;
        }
    }

    /// Makes the sink's own topic's producer before the first record comes, as the
    /// source subscribes before it reads: the client's lookup and handshake are then off
    /// the first records' way, and a broker that refuses the producer stops the run at
    /// its start. Any other failure is tried again with the first record.
    async fn warm_up(&mut self) {
        if self.topic.is_empty() {
            return; // Each record names its topic.
        }
        let topic = self.topic.clone();
        match self.producer(&topic).await {
            Ok(_) => self.outage.connected(),
            Err(e) if client::refused(&e) => self.fatal.set(format!("the Pulsar broker refused the producer: {e}")),
            Err(e) => {
                self.producers.remove(&*topic);
                self.outage.failed(&e.to_string());
            }
        }
    }

    /// Publishes one message, trying again while the broker is away, until its
    /// delivery timeout; then its outcome is a retriable failure.
    async fn publish(&mut self, job: Job) {
        let topic = match &job.topic {
            Some(topic) => Arc::from(client::full_topic(topic).as_ref()),
            None => self.topic.clone(),
        };
        loop {
            let message = Message {
                payload: job.payload.clone(),
                properties: job.properties.clone(),
                partition_key: job.key.clone(),
                ..Message::default()
            };
            let failed = match self.producer(&topic).await {
                Ok(producer) => match producer.send_non_blocking(message).await {
                    Ok(receipt) => {
                        self.outage.connected();
                        self.receipts.push(Receipt {
                            tag: job.tag,
                            payload: Some(job.payload),
                            receipt,
                        });
                        return;
                    }
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if client::refused(&failed) {
                self.fatal
                    .set(format!("the Pulsar broker refused the producer: {failed}"));
                self.fail(job, &failed.to_string());
                return;
            }
            // Made again on the next attempt.
            self.producers.remove(&*topic);
            if job.since.elapsed() >= self.delivery_timeout {
                let why = format!("the Pulsar broker could not be reached within the delivery timeout: {failed}");
                self.fail(job, &why);
                return;
            }
            let wait = self.outage.failed(&failed.to_string());
            tokio::time::sleep(wait).await;
        }
    }

    fn fail(&self, job: Job, why: &str) {
        self.report(vec![Outcome {
            tag: job.tag,
            failure: Some((why.to_string(), job.payload)),
            retriable: true,
        }]);
    }

    /// Hands an outcome to the pipeline (waking it if it sleeps).
    fn report(&self, outcomes: Vec<Outcome>) {
        let _ = self.outcomes.send(outcomes);
        crate::wake::notify();
    }

    /// The producer of `topic`, made (and the client connected) when missing.
    async fn producer(&mut self, topic: &str) -> Result<&mut Producer<TokioExecutor>, pulsar::Error> {
        if !self.producers.contains_key(topic) {
            let client = match &self.client {
                Some(client) => client.clone(),
                None => {
                    let client = self.connect.client().await?;
                    self.client = Some(client.clone());
                    client
                }
            };
            self.brokers.learn(&client, &self.connect.url, [topic]).await;
            let producer = client
                .producer()
                .with_topic(topic)
                .with_options(self.options.clone())
                .build()
                .await?;
            self.brokers.set_nodelay();
            log::info(
                "pulsar: publishing",
                &[("component", json!(self.component)), ("topic", json!(topic))],
            );
            self.producers.insert(topic.to_string(), producer);
        }
        self.producers
            .get_mut(topic)
            .ok_or_else(|| pulsar::Error::Custom("no producer".into()))
    }
}
