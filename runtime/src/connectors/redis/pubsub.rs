//! `RedisPubSub`: subscribes to channels and patterns on a thread of its own.
//!
//! Pub/sub is at most once by nature: the server forgets a message once it has pushed it
//! to the subscribers connected at that moment. While the connection is down (the
//! server restarts, the network goes), what is published is lost: the thread
//! reconnects by itself, subscribes again, and says how long it was away (`redis
//! connection back`, `down_ms`) and how many outages there were. Messages go to the
//! pipeline over a bounded channel; while it is full the thread stops reading and the
//! server buffers for us, up to its `client-output-buffer-limit pubsub`, beyond which it
//! drops the connection (and those messages).

use super::client::{self, Reconnect, RedisConnect};
use super::thread::{hand_over, Shared};
use crate::batch::{MetaValue, RawBatch};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::log;
use crate::sources::{Poll, RawSource};
use serde_json::json;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Messages the thread may hold for the pipeline before it waits.
const CHANNEL: usize = 4096;
/// How often the reading thread looks at whether it must stop.
const READ_SLICE: Duration = Duration::from_millis(200);

/// One piece of a message's metadata the pipeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Channel,
    Pattern,
}

pub struct RedisPubSub {
    component: &'static str,
    metadata: Vec<Wanted>,
    wants_pattern: bool,
    /// The client's messages, handed over as they came (nothing copied per message).
    messages: Option<Receiver<redis::Msg>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl RedisPubSub {
    /// Subscribes (on a thread of its own, retrying until the server answers) to
    /// `channels` and `patterns`. `metadata` names what each record's metadata fields
    /// receive, in order: `channel`, `pattern`.
    pub fn new(
        component: &'static str,
        connect: RedisConnect,
        channels: &[&str],
        patterns: &[&str],
        metadata: &[&'static str],
        ctx: &Context,
    ) -> Result<RedisPubSub, StartError> {
        let metadata = metadata
            .iter()
            .map(|name| match *name {
                "channel" => Ok(Wanted::Channel),
                "pattern" => Ok(Wanted::Pattern),
                _ => Err(StartError::new(format!(
                    "{component}: no Redis pub/sub metadata `{name}`"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if channels.is_empty() && patterns.is_empty() {
            return Err(StartError::new(format!(
                "{component}: no channel or pattern to subscribe to"
            )));
        }
        let client = connect.client(component)?;
        let shared = Arc::new(Shared::default());
        let (deliver, messages) = mpsc::sync_channel(CHANNEL);
        let subscriber = Subscriber {
            component,
            client,
            channels: channels.iter().map(|c| (*c).to_string()).collect(),
            patterns: patterns.iter().map(|p| (*p).to_string()).collect(),
            deliver,
            shared: shared.clone(),
            reconnect: Reconnect::new(component, ctx.events.connection(component)),
            outages: 0,
        };
        let thread = std::thread::Builder::new()
            .name(format!("redis {component}"))
            .spawn(move || subscriber.run())
            .map_err(|e| StartError::new(format!("{component}: cannot start the Redis thread: {e}")))?;
        Ok(RedisPubSub {
            component,
            wants_pattern: metadata.contains(&Wanted::Pattern),
            metadata,
            messages: Some(messages),
            shared,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        self.messages = None;
        self.shared.request_stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl RawSource for RedisPubSub {
    /// The thread wakes the pipeline with each message.
    fn idle_for(&self) -> Option<Duration> {
        None
    }

    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        let Some(messages) = &self.messages else {
            return Ok(Poll::Idle);
        };
        while batch.len() < max {
            let m = match messages.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            };
            let (channel, payload) = (m.get_channel_name(), m.get_payload_bytes());
            // The client lends the pattern only as a copy: made only when it is read.
            let pattern: Option<Vec<u8>> = self
                .wants_pattern
                .then(|| m.from_pattern().then(|| m.get_pattern().ok()).flatten())
                .flatten();
            if self.metadata.is_empty() {
                batch.push(payload);
            } else {
                let values = self.metadata.iter().map(|wanted| match wanted {
                    Wanted::Channel => MetaValue::Text(channel.as_bytes()),
                    Wanted::Pattern => pattern.as_deref().map_or(MetaValue::Absent, MetaValue::Text),
                });
                batch.push_message(payload, values);
            }
            // A payload that does not decode is a dead letter naming its channel.
            batch.set_origin(channel);
        }
        self.shared.check(self.component)?;
        Ok(Poll::unless_filled(batch, Poll::Idle))
    }

    fn close(&mut self) -> Result<(), RunError> {
        self.stop();
        Ok(())
    }
}

impl Drop for RedisPubSub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The source's thread: connect, subscribe, read, and again after any failure.
struct Subscriber {
    component: &'static str,
    client: redis::Client,
    channels: Vec<String>,
    patterns: Vec<String>,
    deliver: SyncSender<redis::Msg>,
    shared: Arc<Shared>,
    reconnect: Reconnect,
    outages: u64,
}

impl Subscriber {
    fn run(mut self) {
        while !self.shared.stopping() {
            let why = match self.session() {
                Ok(()) => return,
                Err(e) => e,
            };
            if matches!(why.kind(), redis::ErrorKind::AuthenticationFailed) {
                self.shared
                    .fail(format!("the Redis server refused the credentials: {why}"));
                return;
            }
            let shared = self.shared.clone();
            self.reconnect.failed(&why.to_string(), || shared.stopping());
        }
    }

    /// One connection: subscribes, then hands over messages until it breaks (`Err`) or
    /// the pipeline stops (`Ok`).
    fn session(&mut self) -> redis::RedisResult<()> {
        let mut con = client::connect(&self.client)?;
        let mut pubsub = con.as_pubsub();
        for channel in &self.channels {
            pubsub.subscribe(channel)?;
        }
        for pattern in &self.patterns {
            pubsub.psubscribe(pattern)?;
        }
        pubsub.set_read_timeout(Some(READ_SLICE))?;
        if self.reconnect.connected() {
            self.outages += 1;
            log::warn(
                "redis pub/sub subscribed again: messages published while disconnected are lost (pub/sub is at most once)",
                &[("component", json!(self.component)), ("outages", json!(self.outages))],
            );
        } else {
            log::info(
                "redis subscribed",
                &[
                    ("component", json!(self.component)),
                    ("channels", json!(self.channels)),
                    ("patterns", json!(self.patterns)),
                ],
            );
        }
        loop {
            if self.shared.stopping() {
                return Ok(());
            }
            let msg = match pubsub.get_message() {
                Ok(msg) => msg,
                Err(e) if e.is_timeout() => continue,
                Err(e) => return Err(e),
            };
            if !hand_over(&self.deliver, msg, &self.shared) {
                return Ok(());
            }
        }
    }
}
