//! `MqttSource`: subscribes, and acknowledges a QoS 1 message only once it is safe.
//!
//! A thread of ours drives the connection ([`Link`]) and hands each message to `poll`
//! over a bounded channel: when the pipeline is slow the thread waits, and with manual
//! acknowledgements the broker stops sending after its in-flight window, so nothing is
//! dropped and memory stays bounded. A QoS 1 message's packet id waits in [`Unacked`]
//! under the epoch of its batch until [`Acks::confirmed`] passes it; `commit` then hands
//! the acknowledgements, in arrival order, to the thread, which sends them on the
//! connection the messages came on. Acknowledgements of a connection since lost are
//! dropped: the broker sends those messages again (duplicates, never loss).
//!
//! While the thread waits on a full channel it does not serve the connection; a
//! pipeline stuck for longer than 1.5 keep-alive periods is disconnected by the broker,
//! and the thread reconnects once the pipeline reads again (the session keeps the rest).

use super::client::{self, Link, MqttConnect, Seen, Shared};
use super::protocol::{Handle, Message, Recv};
use crate::acks::{Acks, Unacked};
use crate::batch::{MetaValue, RawBatch};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::log;
use crate::sources::{Poll, RawSource};
use rumqttc::QoS;
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Messages the thread may hold for the pipeline before it waits.
const CHANNEL: usize = 1024;

/// rumqttc's request queue (acknowledgements, subscriptions).
const REQUESTS: u16 = 1024;

/// How long closing waits for the thread to acknowledge and disconnect.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// One piece of a message's metadata the pipeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Topic,
    Qos,
    Retain,
}

impl Wanted {
    fn parse(name: &str) -> Option<Wanted> {
        match name {
            "topic" => Some(Wanted::Topic),
            "qos" => Some(Wanted::Qos),
            "retain" => Some(Wanted::Retain),
            _ => None,
        }
    }
}

/// A message as the thread hands it over: which connection it came on, and the packet.
struct Delivery {
    connection: u64,
    message: Box<Message>,
}

/// What acknowledging one message needs: the connection it came on, its packet id and QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AckId {
    connection: u64,
    pkid: u16,
    qos: QoS,
}

pub struct MqttSource {
    component: &'static str,
    acks: Acks,
    metadata: Vec<Wanted>,
    /// Messages from the thread; `None` once closed.
    messages: Option<Receiver<Delivery>>,
    /// Acknowledgements to the thread (unbounded: at most the broker's in-flight window).
    to_ack: Sender<AckId>,
    unacked: Unacked<AckId>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl MqttSource {
    /// Connects (on a thread of its own, retrying until the broker answers) and
    /// subscribes to `topics` (`+`/`#` wildcards allowed) at `qos`. `metadata` names
    /// what each record's metadata fields receive, in order: `topic`, `qos`, `retain`.
    pub fn new(
        component: &'static str,
        connect: MqttConnect,
        topics: &[&str],
        qos: u8,
        metadata: &[&'static str],
        ctx: &Context,
    ) -> Result<MqttSource, StartError> {
        let metadata = metadata
            .iter()
            .map(|name| {
                Wanted::parse(name).ok_or_else(|| StartError::new(format!("{component}: no MQTT metadata `{name}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let qos = qos_of(component, qos)?;
        if topics.is_empty() {
            return Err(StartError::new(format!("{component}: no topic to subscribe to")));
        }
        if let Some(bad) = topics.iter().find(|t| !rumqttc::valid_filter(t) || t.contains('\0')) {
            return Err(StartError::new(format!(
                "{component}: `{bad}` is not a valid MQTT topic filter (`+` and `#` must each be a whole level, `#` the last)"
            )));
        }
        let (handle, conn) = client::connect(component, &connect, true, REQUESTS)?;
        let shared = Arc::new(Shared::default());
        let (deliver, messages) = mpsc::sync_channel(CHANNEL);
        let (to_ack, acks_in) = mpsc::channel();
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_string()).collect();
        let link = Link::new(component, conn, shared.clone()).reporting_to(ctx.events.connection(component));
        let thread = std::thread::Builder::new()
            .name(format!("mqtt {component}"))
            .spawn(move || {
                Receiving {
                    link,
                    handle,
                    topics,
                    qos,
                    deliver,
                    acks_in,
                    unsent: VecDeque::new(),
                }
                .run()
            })
            .map_err(|e| StartError::new(format!("{component}: cannot start the MQTT thread: {e}")))?;
        Ok(MqttSource {
            component,
            acks: ctx.acks.clone(),
            metadata,
            messages: Some(messages),
            to_ack,
            unacked: Unacked::new(),
            shared,
            thread: Some(thread),
        })
    }

    /// Stops the thread (after it sent what `commit` handed it) and waits a little for it.
    fn stop(&mut self) {
        self.messages = None;
        self.shared.request_stop();
        if let Some(thread) = self.thread.take() {
            // The thread's own deadline, and a margin for its last wait.
            let until = Instant::now() + CLOSE_WAIT + Duration::from_millis(500);
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// QoS 0 or 1 from its number. QoS 2 is refused: rill delivers at least once anyway,
/// and rumqttc forgets a QoS 2 exchange half done when the connection drops (the
/// broker's PUBREL after a reconnect then breaks the new connection).
pub(super) fn qos_of(component: &str, qos: u8) -> Result<QoS, StartError> {
    match qos {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Err(StartError::new(format!(
            "{component}: MQTT QoS 2 is not supported; use 1 (rill delivers at least once)"
        ))),
        _ => Err(StartError::new(format!(
            "{component}: MQTT QoS must be 0 or 1, not {qos}"
        ))),
    }
}

impl RawSource for MqttSource {
    /// The connection thread wakes the pipeline with each message and on a failure.
    fn idle_for(&self) -> Option<Duration> {
        None
    }

    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        let Some(messages) = &self.messages else {
            return Ok(Poll::Idle);
        };
        while batch.len() < max {
            let delivery = match messages.try_recv() {
                Ok(d) => d,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            };
            let m = &delivery.message;
            let topic = m.topic();
            if self.metadata.is_empty() {
                batch.push(m.payload());
            } else {
                let values = self.metadata.iter().map(|wanted| match wanted {
                    Wanted::Topic => MetaValue::Text(topic.as_bytes()),
                    Wanted::Qos => MetaValue::Int(m.qos() as i64),
                    Wanted::Retain => MetaValue::Bool(m.retain()),
                });
                batch.push_message(m.payload(), values);
            }
            // A payload that does not decode is a dead letter naming its topic.
            batch.set_origin(&topic);
            if m.qos() != QoS::AtMostOnce {
                self.unacked.read(AckId {
                    connection: delivery.connection,
                    pkid: m.pkid(),
                    qos: m.qos(),
                });
            }
        }
        if !batch.is_empty() {
            self.acks.next_epoch();
        }
        self.shared.check()?;
        Ok(Poll::unless_filled(batch, Poll::Idle))
    }

    fn batch_done(&mut self) {
        self.unacked.batch_done(self.acks.epoch());
    }

    fn commit(&mut self) -> Result<(), RunError> {
        let mut safe = Vec::new();
        self.unacked.confirmed(self.acks.confirmed(), &mut safe);
        for id in safe {
            // The thread is gone only after a failure `poll` reports.
            if self.to_ack.send(id).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Acknowledges what is confirmed, then leaves the broker cleanly. Messages not
    /// confirmed stay unacknowledged: a persistent session gets them again.
    fn close(&mut self) -> Result<(), RunError> {
        self.commit()?;
        self.stop();
        self.shared
            .check()
            .map_err(|e| RunError::new(format!("{e} (at close, {})", self.component)))
    }
}

impl Drop for MqttSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The source's thread: the connection, subscriptions, messages out, acknowledgements in.
struct Receiving {
    link: Link,
    handle: Handle,
    topics: Vec<String>,
    qos: QoS,
    deliver: SyncSender<Delivery>,
    acks_in: Receiver<AckId>,
    /// Acknowledgements rumqttc's queue had no room for yet, in order.
    unsent: VecDeque<AckId>,
}

impl Receiving {
    fn run(mut self) {
        loop {
            self.forward_acks();
            if self.link.shared_stopping() {
                self.finish();
                return;
            }
            match self.link.next() {
                Seen::Stopped => return,
                Seen::Connected { session_present, first } => {
                    // A kept session keeps its subscriptions (subscribing again would
                    // make the broker resend retained messages).
                    if first || !session_present {
                        self.handle.try_subscribe(&self.topics, self.qos);
                    }
                }
                Seen::Got(Recv::Message(message)) => {
                    let delivery = Delivery {
                        connection: self.link.losses,
                        message,
                    };
                    // Waits while the pipeline is behind; fails once it closed.
                    if self.deliver.send(delivery).is_err() {
                        self.link.request_stop();
                    }
                    // Writes a byte only when the pipeline sleeps.
                    crate::wake::notify();
                }
                Seen::Got(Recv::Subscribed { refused: true }) => {
                    let topics = &self.topics;
                    self.link
                        .fail(format!("the MQTT broker refused the subscription to {topics:?}"));
                    self.link.disconnect(&self.handle, CLOSE_WAIT);
                    return;
                }
                Seen::Got(Recv::Subscribed { refused: false }) => log::info(
                    "mqtt subscribed",
                    &[
                        ("component", self.link.component().into()),
                        ("topics", self.topics.join(" ").into()),
                    ],
                ),
                Seen::Nothing | Seen::Got(_) => {}
            }
        }
    }

    /// The pipeline stopped: hands over every acknowledgement it sent, driving the
    /// connection so rumqttc's queue drains (it holds far fewer than a window may
    /// release at once), then leaves cleanly; gives up after [`CLOSE_WAIT`]. Messages
    /// arriving meanwhile stay unacknowledged: the broker sends them again.
    fn finish(&mut self) {
        let until = Instant::now() + CLOSE_WAIT;
        loop {
            self.forward_acks();
            let drained = self.unsent.is_empty();
            if drained || !self.link.connected() || Instant::now() >= until {
                break;
            }
            if let Seen::Stopped = self.link.next() {
                return;
            }
        }
        self.link
            .disconnect(&self.handle, until.saturating_duration_since(Instant::now()));
    }

    /// Hands rumqttc the acknowledgements `commit` sent, in order; those of a lost
    /// connection are dropped (the broker sends their messages again).
    fn forward_acks(&mut self) {
        while let Ok(id) = self.acks_in.try_recv() {
            self.unsent.push_back(id);
        }
        while let Some(id) = self.unsent.front() {
            if id.connection != self.link.losses {
                self.unsent.pop_front();
                continue;
            }
            if !self.link.connected() || !self.handle.try_ack(id.pkid, id.qos) {
                return;
            }
            self.unsent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_and_qos_are_checked_at_start() {
        let ctx = Context::new(crate::settings::Settings::from_values(vec![]), 8);
        let connect = MqttConnect {
            url: "mqtt://127.0.0.1:1".into(),
            client_id: "t".into(),
            clean_session: true,
            protocol: 4,
            keep_alive_secs: 30,
            ..MqttConnect::default()
        };
        let start = |topics: &[&str], qos: u8, metadata: &[&'static str]| {
            MqttSource::new("sources.in", connect.clone(), topics, qos, metadata, &ctx)
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            start(&["a/#"], 1, &["topic", "key"]).as_deref(),
            Some("sources.in: no MQTT metadata `key`")
        );
        assert_eq!(
            start(&["a/#"], 3, &[]).as_deref(),
            Some("sources.in: MQTT QoS must be 0 or 1, not 3")
        );
        assert!(start(&["a/#"], 2, &[]).is_some_and(|e| e.contains("QoS 2 is not supported")));
        assert!(start(&["a/#/b"], 1, &[]).is_some_and(|e| e.contains("`a/#/b` is not a valid MQTT topic filter")));
        assert_eq!(
            start(&[], 1, &[]).as_deref(),
            Some("sources.in: no topic to subscribe to")
        );
        // Nothing listens on port 1: the source starts anyway and keeps retrying.
        let mut source = MqttSource::new(
            "sources.in",
            connect.clone(),
            &["a/+/c", "#"],
            1,
            &["topic", "qos", "retain"],
            &ctx,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut batch = RawBatch::new();
        assert_eq!(source.poll(&mut batch, 10), Ok(Poll::Idle));
        assert_eq!(ctx.acks.epoch(), 0, "an empty poll starts no epoch");
        assert_eq!(source.close(), Ok(()));
    }
}
