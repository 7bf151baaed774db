//! `MqttPublisher`: a [`MessageSink`]; one message per record, confirmed by PUBACK.
//!
//! `send` hands the publish to rumqttc's bounded request queue (waiting in 10 ms slices
//! while it is full: while the broker is away, publishes wait there and in rumqttc's
//! in-flight window, never dropped). A thread of ours drives the connection and matches
//! each PUBACK to the tag of its message: rumqttc reports each publish it writes with its
//! packet id, in queue order, so the thread takes the next tag from a shared queue when
//! a new id goes out ([`Inflight`]); ids are reused once acknowledged. After a reconnect
//! unacknowledged publishes go out again, on a kept session as on a new one
//! ([`super::client::Link`]). QoS 0 messages are settled as soon as rumqttc has them.

use super::client::{self, Link, MqttConnect, Seen, Shared};
use super::protocol::{Handle, Recv};
use super::source::qos_of;
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::sinks::{Address, MessageSink, Outcome, Undelivered};
use rumqttc::QoS;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Publishes rumqttc keeps unacknowledged at once, and the size of its request queue.
const INFLIGHT: u16 = 100;

/// How long a full queue is first waited on before trying again; each wait doubles,
/// up to [`FULL_WAIT`]. Short first: at full speed the queue has room again within
/// microseconds, and a 10 ms nap per full queue would cap the sink (the benchmark
/// showed it); long later: a broker that is away is not worth spinning for.
const FIRST_FULL_WAIT: Duration = Duration::from_micros(50);
const FULL_WAIT: Duration = Duration::from_millis(10);

/// How long closing waits for outstanding acknowledgements.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the thread may take to disconnect at close.
const DISCONNECT_WAIT: Duration = Duration::from_secs(1);

/// A QoS 1 publish handed to rumqttc: its tag, and its payload when the broker may
/// refuse it (MQTT 5), for the dead letter.
#[derive(Debug)]
struct Queued {
    tag: u64,
    payload: Vec<u8>,
}

/// What the pipeline's thread and the connector's thread both touch.
#[derive(Debug, Default)]
struct Tracking {
    /// QoS 1 publishes queued in rumqttc and not yet written, in queue order.
    queued: VecDeque<Queued>,
    /// Outcomes not yet taken by `poll`.
    outcomes: Vec<Outcome>,
}

pub struct MqttPublisher {
    component: &'static str,
    handle: Handle,
    topic: String,
    qos: QoS,
    retain: bool,
    tracking: Arc<Mutex<Tracking>>,
    /// Outcomes of QoS 0 publishes, settled on the spot.
    settled: Vec<Outcome>,
    /// QoS 1 publishes sent and not yet confirmed.
    outstanding: u64,
    /// The broker may refuse a message (MQTT 5): keep payloads for dead letters.
    refusable: bool,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl MqttPublisher {
    /// Connects (on a thread of its own, retrying until the broker answers); publishes
    /// to `topic` unless a record names its own (`""`: every record does), at `qos`
    /// (0 or 1), with `retain`.
    pub fn new(
        component: &'static str,
        connect: MqttConnect,
        topic: &str,
        qos: u8,
        retain: bool,
        _ctx: &Context,
    ) -> Result<MqttPublisher, StartError> {
        let qos = qos_of(component, qos)?;
        // Empty: every record names its own topic (a per-record address).
        if !topic.is_empty() {
            check_topic(topic).map_err(|reason| StartError::new(format!("{component}: {reason}")))?;
        }
        let (handle, conn) = client::connect(component, &connect, false, INFLIGHT)?;
        let connect_protocol = connect.protocol;
        let shared = Arc::new(Shared::default());
        let tracking = Arc::new(Mutex::new(Tracking::default()));
        let publishing = Publishing {
            link: Link::new(component, conn, shared.clone()),
            handle: handle.clone(),
            tracking: tracking.clone(),
            inflight: Inflight::default(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("mqtt {component}"))
            .spawn(move || publishing.run())
            .map_err(|e| StartError::new(format!("{component}: cannot start the MQTT thread: {e}")))?;
        Ok(MqttPublisher {
            component,
            handle,
            topic: topic.to_string(),
            qos,
            retain,
            tracking,
            settled: Vec::new(),
            outstanding: 0,
            refusable: connect_protocol == 5,
            shared,
            thread: Some(thread),
        })
    }

    fn take_outcomes(&mut self, into: &mut Vec<Outcome>) {
        into.append(&mut self.settled);
        let mut tracking = self.tracking.lock().unwrap_or_else(PoisonError::into_inner);
        self.outstanding -= (tracking.outcomes.len() as u64).min(self.outstanding);
        into.append(&mut tracking.outcomes);
    }

    /// Why nothing can be published any more, if so.
    fn gone(&self) -> Option<String> {
        self.shared.fatal().or_else(|| {
            self.thread
                .as_ref()
                .is_none_or(JoinHandle::is_finished)
                .then(|| format!("{}: the MQTT connection has stopped", self.component))
        })
    }

    fn stop(&mut self) {
        self.shared.request_stop();
        if let Some(thread) = self.thread.take() {
            let until = Instant::now() + DISCONNECT_WAIT * 2;
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// A topic one may publish to: not empty, no wildcard, no NUL, at most 65535 bytes.
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        Err("an empty MQTT topic".into())
    } else if topic.contains(['+', '#']) {
        Err(format!(
            "MQTT topic `{topic}` contains a wildcard (`+` or `#`): one cannot publish to it"
        ))
    } else if topic.contains('\0') {
        Err(format!(
            "MQTT topic `{}` contains a NUL character",
            topic.escape_debug()
        ))
    } else if topic.len() > usize::from(u16::MAX) {
        Err(format!(
            "MQTT topic of {} bytes is longer than MQTT allows (65535)",
            topic.len()
        ))
    } else {
        Ok(())
    }
}

impl MessageSink for MqttPublisher {
    fn send(&mut self, payload: &[u8], address: Address<'_>, tag: u64) -> Result<(), String> {
        // The sink's own topic was checked at start; a record's is checked here.
        let topic = match address.topic {
            Some(topic) => {
                check_topic(topic)?;
                topic
            }
            None if self.topic.is_empty() => return Err("an empty MQTT topic".into()),
            None => &self.topic,
        };
        let mut wait = FIRST_FULL_WAIT;
        loop {
            // Locked across the hand-over, so the thread cannot see the publish go out
            // before its tag is queued.
            let mut tracking = self.tracking.lock().unwrap_or_else(PoisonError::into_inner);
            if self.handle.try_publish(topic, self.qos, self.retain, payload) {
                if self.qos == QoS::AtMostOnce {
                    drop(tracking);
                    self.settled.push(Outcome::delivered(tag));
                } else {
                    let payload = if self.refusable { payload.to_vec() } else { Vec::new() };
                    tracking.queued.push_back(Queued { tag, payload });
                    self.outstanding += 1;
                }
                return Ok(());
            }
            drop(tracking);
            // Back-pressure: the queue is full (the broker is slow or away).
            if let Some(reason) = self.gone() {
                return Err(reason);
            }
            if crate::shutdown::give_up_waiting() {
                return Err("the MQTT broker took no more messages before the pipeline stopped".into());
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(FULL_WAIT);
        }
    }

    fn poll(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError> {
        self.take_outcomes(outcomes);
        self.shared.check()
    }

    /// rumqttc's request queue: a full one makes `send` wait.
    fn max_in_flight(&self) -> Option<usize> {
        Some(usize::from(INFLIGHT))
    }

    /// Waits (up to 10 s) for every outstanding PUBACK, then disconnects.
    fn close(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), Undelivered> {
        let until = Instant::now() + CLOSE_TIMEOUT;
        self.take_outcomes(outcomes);
        while self.outstanding > 0 && Instant::now() < until && self.gone().is_none() {
            std::thread::sleep(FULL_WAIT);
            self.take_outcomes(outcomes);
        }
        let missing = self.outstanding;
        let reason = self.gone();
        self.stop();
        match (missing, reason) {
            (0, _) => Ok(()),
            (count, Some(reason)) => Err(Undelivered { count, reason }),
            (count, None) => Err(Undelivered {
                count,
                reason: format!(
                    "no acknowledgement from the MQTT broker within {} s",
                    CLOSE_TIMEOUT.as_secs()
                ),
            }),
        }
    }
}

impl Drop for MqttPublisher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// QoS 1 publishes written and waiting for their PUBACK, by packet id.
#[derive(Debug)]
struct Inflight<T> {
    by_pkid: HashMap<u16, T>,
    /// A publish rumqttc holds back because its id is still in use (`AwaitAck`).
    held: Option<(u16, T)>,
}

impl<T> Default for Inflight<T> {
    fn default() -> Self {
        Inflight {
            by_pkid: HashMap::new(),
            held: None,
        }
    }
}

impl<T> Inflight<T> {
    /// rumqttc wrote a publish with `pkid`: the same message again after a reconnect
    /// when that id is waiting, else the held one, else the next queued one.
    fn written(&mut self, pkid: u16, next: impl FnOnce() -> Option<T>) {
        if self.by_pkid.contains_key(&pkid) {
            return;
        }
        let tag = match self.held.take() {
            Some((held, tag)) if held == pkid => Some(tag),
            other => {
                self.held = other;
                next()
            }
        };
        if let Some(tag) = tag {
            self.by_pkid.insert(pkid, tag);
        }
    }

    /// rumqttc holds the next queued publish back until `pkid` is acknowledged.
    fn held_back(&mut self, pkid: u16, next: impl FnOnce() -> Option<T>) {
        if let Some(tag) = next() {
            self.held = Some((pkid, tag));
        }
    }

    /// The broker acknowledged `pkid`: the tag of its message (the id is free again).
    fn acked(&mut self, pkid: u16) -> Option<T> {
        self.by_pkid.remove(&pkid)
    }
}

/// The publisher's thread: the connection, and outcomes from PUBACKs.
struct Publishing {
    link: Link,
    handle: Handle,
    tracking: Arc<Mutex<Tracking>>,
    inflight: Inflight<Queued>,
}

impl Publishing {
    fn run(mut self) {
        let next = |tracking: &Mutex<Tracking>| {
            tracking
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .queued
                .pop_front()
        };
        loop {
            if self.link.shared_stopping() {
                self.link.disconnect(&self.handle, DISCONNECT_WAIT);
                return;
            }
            match self.link.next() {
                Seen::Stopped => return,
                Seen::Got(Recv::Written(pkid)) => {
                    self.inflight.written(pkid, || next(&self.tracking));
                }
                Seen::Got(Recv::HeldBack(pkid)) => {
                    self.inflight.held_back(pkid, || next(&self.tracking));
                }
                Seen::Got(Recv::Acked { pkid, refused }) => {
                    if let Some(Queued { tag, payload }) = self.inflight.acked(pkid) {
                        let failure = refused.map(|reason| (reason, payload));
                        let mut tracking = self.tracking.lock().unwrap_or_else(PoisonError::into_inner);
                        // A broker's refusal (a reason code) is for good: never retried.
                        tracking.outcomes.push(Outcome {
                            tag,
                            failure,
                            retriable: false,
                        });
                    }
                }
                Seen::Nothing | Seen::Connected { .. } | Seen::Got(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_map_to_tags_through_reuse_resends_and_held_publishes() {
        let mut queued: VecDeque<u64> = (10..20).collect();
        let mut inflight = Inflight::default();
        inflight.written(1, || queued.pop_front());
        inflight.written(2, || queued.pop_front());
        assert_eq!(inflight.acked(1), Some(10));
        // Id 1 is free again: the next publish may take it.
        inflight.written(1, || queued.pop_front());
        // After a reconnect id 2 goes out again: the same message, not a new one.
        inflight.written(2, || queued.pop_front());
        assert_eq!(queued.front(), Some(&13));
        // Id 2 is still in use when the next publish wants it: held back until 2's PUBACK.
        inflight.held_back(2, || queued.pop_front());
        assert_eq!(inflight.acked(2), Some(11));
        inflight.written(2, || queued.pop_front());
        inflight.written(3, || queued.pop_front());
        assert_eq!(
            (inflight.acked(2), inflight.acked(1), inflight.acked(3)),
            (Some(13), Some(12), Some(14))
        );
        assert_eq!(inflight.acked(3), None, "an unsolicited PUBACK settles nothing");
    }

    #[test]
    fn without_a_topic_of_its_own_every_record_must_name_one() {
        let ctx = Context::new(crate::settings::Settings::from_values(vec![]), 8);
        let connect = MqttConnect {
            url: "mqtt://127.0.0.1:1".into(),
            client_id: "t".into(),
            protocol: 4,
            keep_alive_secs: 30,
            ..MqttConnect::default()
        };
        let bad = MqttPublisher::new("sinks.out", connect.clone(), "a/+", 1, false, &ctx);
        assert!(bad.is_err_and(|e| e.to_string().starts_with("sinks.out: ")));
        let mut publisher =
            MqttPublisher::new("sinks.out", connect, "", 1, false, &ctx).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            publisher.send(b"{}", Address::default(), 1),
            Err("an empty MQTT topic".to_string())
        );
    }

    #[test]
    fn topics_one_cannot_publish_to_are_refused() {
        assert_eq!(check_topic("a/b"), Ok(()));
        assert!(check_topic("").is_err());
        assert!(check_topic("a/+/b").is_err_and(|r| r.contains("wildcard")));
        assert!(check_topic("a/#").is_err());
        assert!(check_topic("a\0b").is_err_and(|r| r.contains("NUL")));
        assert!(check_topic(&"x".repeat(70_000)).is_err());
    }
}
