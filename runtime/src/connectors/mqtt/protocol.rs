//! MQTT 3.1.1 and MQTT 5 behind one face. rumqttc's top-level client and its `v5`
//! module work alike but share no types; the connector sees [`Handle`] (requests),
//! [`Conn`] (the connection its thread drives) and [`Happened`] (what came of it).

use rumqttc::v5;
use rumqttc::v5::mqttbytes::v5 as packets5;
use rumqttc::{Event, Incoming, Outgoing, QoS};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::Duration;

/// Options for one protocol version.
#[allow(clippy::large_enum_variant)] // one per connector, built once
pub(super) enum Options {
    V4(rumqttc::MqttOptions),
    V5(v5::MqttOptions),
}

/// Requests to the connection (cloneable, used from any thread).
#[derive(Clone)]
pub(super) enum Handle {
    V4(rumqttc::Client),
    V5(v5::Client),
}

/// The connection, driven by the connector's thread; with the requests rumqttc would
/// resend after a reconnect, held while reconnecting.
#[allow(clippy::large_enum_variant)] // one per connector, never moved after start
pub(super) enum Conn {
    V4(rumqttc::Connection, VecDeque<rumqttc::Request>),
    V5(v5::Connection, VecDeque<v5::Request>),
}

/// A message received.
pub(super) enum Message {
    V4(rumqttc::Publish),
    V5(packets5::Publish),
}

/// What one wait on the connection gave.
pub(super) enum Recv {
    /// Nothing within the wait.
    Timeout,
    /// Every request handle is gone.
    Closed,
    Connected {
        session_present: bool,
    },
    Message(Box<Message>),
    /// A QoS 1 publish went out with this packet id.
    Written(u16),
    /// The next publish waits until this packet id is acknowledged.
    HeldBack(u16),
    /// The broker acknowledged a publish; MQTT 5 may say it was refused, and why.
    Acked {
        pkid: u16,
        refused: Option<String>,
    },
    /// The broker answered a subscription; `refused` when it refused a filter.
    Subscribed {
        refused: bool,
    },
    /// The connection failed: why, and the reason when retrying cannot fix it.
    Lost {
        error: String,
        hopeless: Option<String>,
    },
    Other,
}

/// Creates the client of `options`' version with a request queue of `cap`.
pub(super) fn client(options: Options, cap: usize, connect_timeout_secs: u64) -> (Handle, Conn) {
    match options {
        Options::V4(options) => {
            let (client, mut connection) = rumqttc::Client::new(options, cap);
            let mut network = connection.eventloop.network_options();
            network.set_connection_timeout(connect_timeout_secs);
            connection.eventloop.set_network_options(network);
            (Handle::V4(client), Conn::V4(connection, VecDeque::new()))
        }
        Options::V5(mut options) => {
            options.set_connection_timeout(connect_timeout_secs);
            let (client, connection) = v5::Client::new(options, cap);
            (Handle::V5(client), Conn::V5(connection, VecDeque::new()))
        }
    }
}

fn qos5(qos: QoS) -> rumqttc::v5::mqttbytes::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

fn qos4(qos: rumqttc::v5::mqttbytes::QoS) -> QoS {
    match qos {
        rumqttc::v5::mqttbytes::QoS::AtMostOnce => QoS::AtMostOnce,
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce => QoS::AtLeastOnce,
        rumqttc::v5::mqttbytes::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

impl Handle {
    /// Queues a publish; false when the queue is full or the connection gone.
    pub fn try_publish(&self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) -> bool {
        match self {
            Handle::V4(c) => c.try_publish(topic, qos, retain, payload).is_ok(),
            Handle::V5(c) => c.try_publish(topic, qos5(qos), retain, payload.to_vec()).is_ok(),
        }
    }

    /// Queues the acknowledgement of message `pkid`; false when the queue is full.
    pub fn try_ack(&self, pkid: u16, qos: QoS) -> bool {
        match self {
            Handle::V4(c) => {
                let mut publish = rumqttc::Publish::new("", qos, Vec::new());
                publish.pkid = pkid;
                c.try_ack(&publish).is_ok()
            }
            Handle::V5(c) => {
                let mut publish = packets5::Publish::new("", qos5(qos), Vec::new(), None);
                publish.pkid = pkid;
                c.try_ack(&publish).is_ok()
            }
        }
    }

    pub fn try_subscribe(&self, topics: &[String], qos: QoS) -> bool {
        match self {
            Handle::V4(c) => c
                .try_subscribe_many(topics.iter().map(|t| rumqttc::SubscribeFilter::new(t.clone(), qos)))
                .is_ok(),
            Handle::V5(c) => c
                .try_subscribe_many(topics.iter().map(|t| packets5::Filter::new(t.clone(), qos5(qos))))
                .is_ok(),
        }
    }

    pub fn try_disconnect(&self) -> bool {
        match self {
            Handle::V4(c) => c.try_disconnect().is_ok(),
            Handle::V5(c) => c.try_disconnect().is_ok(),
        }
    }
}

impl Message {
    pub fn topic(&self) -> Cow<'_, str> {
        match self {
            Message::V4(p) => Cow::Borrowed(&p.topic),
            Message::V5(p) => String::from_utf8_lossy(&p.topic),
        }
    }

    pub fn payload(&self) -> &[u8] {
        match self {
            Message::V4(p) => &p.payload,
            Message::V5(p) => &p.payload,
        }
    }

    pub fn qos(&self) -> QoS {
        match self {
            Message::V4(p) => p.qos,
            Message::V5(p) => qos4(p.qos),
        }
    }

    pub fn retain(&self) -> bool {
        match self {
            Message::V4(p) => p.retain,
            Message::V5(p) => p.retain,
        }
    }

    pub fn pkid(&self) -> u16 {
        match self {
            Message::V4(p) => p.pkid,
            Message::V5(p) => p.pkid,
        }
    }
}

impl Conn {
    /// What happened already, if anything, without waiting (and without arming a
    /// timer: under load nearly every event is ready, and a timeout per event cost more
    /// than the event). Only while connected: a connection attempt cut short would be
    /// wasted.
    pub fn ready(&mut self) -> Option<Recv> {
        Some(match self {
            Conn::V4(connection, _) => match connection.try_recv() {
                Err(rumqttc::TryRecvError::Empty) => return None,
                Err(rumqttc::TryRecvError::Disconnected) => Recv::Closed,
                Ok(Ok(event)) => happened4(event),
                Ok(Err(error)) => Recv::Lost {
                    hopeless: hopeless4(&error),
                    error: error.to_string(),
                },
            },
            Conn::V5(connection, _) => match connection.try_recv() {
                Err(v5::TryRecvError::Empty) => return None,
                Err(v5::TryRecvError::Disconnected) => Recv::Closed,
                Ok(Ok(event)) => happened5(event),
                Ok(Err(error)) => Recv::Lost {
                    hopeless: hopeless5(&error),
                    error: error.to_string(),
                },
            },
        })
    }

    /// Waits at most `wait` for what happens next.
    pub fn recv(&mut self, wait: Duration) -> Recv {
        match self {
            Conn::V4(connection, _) => match connection.recv_timeout(wait) {
                Err(rumqttc::RecvTimeoutError::Timeout) => Recv::Timeout,
                Err(rumqttc::RecvTimeoutError::Disconnected) => Recv::Closed,
                Ok(Ok(event)) => happened4(event),
                Ok(Err(error)) => Recv::Lost {
                    hopeless: hopeless4(&error),
                    error: error.to_string(),
                },
            },
            Conn::V5(connection, _) => match connection.recv_timeout(wait) {
                Err(v5::RecvTimeoutError::Timeout) => Recv::Timeout,
                Err(v5::RecvTimeoutError::Disconnected) => Recv::Closed,
                Ok(Ok(event)) => happened5(event),
                Ok(Err(error)) => Recv::Lost {
                    hopeless: hopeless5(&error),
                    error: error.to_string(),
                },
            },
        }
    }

    /// Before a connection attempt: takes what rumqttc would resend (it drops it when
    /// the broker keeps no session).
    pub fn carry(&mut self) {
        match self {
            Conn::V4(c, carried) => carried.extend(c.eventloop.pending.drain(..)),
            Conn::V5(c, carried) => carried.extend(c.eventloop.pending.drain(..)),
        }
    }

    /// Connected: puts back, first in line, what was carried. On a kept session all of
    /// it; on a new one only our publishes (the broker forgot them), not
    /// acknowledgements of its old messages nor subscriptions (made again).
    pub fn restore(&mut self, session_present: bool) {
        match self {
            Conn::V4(c, carried) => {
                let resend: VecDeque<_> = carried
                    .drain(..)
                    .filter(|r| session_present || matches!(r, rumqttc::Request::Publish(_)))
                    .collect();
                let newer = std::mem::replace(&mut c.eventloop.pending, resend);
                c.eventloop.pending.extend(newer);
            }
            Conn::V5(c, carried) => {
                let resend: VecDeque<_> = carried
                    .drain(..)
                    .filter(|r| session_present || matches!(r, v5::Request::Publish(_)))
                    .collect();
                let newer = std::mem::replace(&mut c.eventloop.pending, resend);
                c.eventloop.pending.extend(newer);
            }
        }
    }
}

fn happened4(event: Event) -> Recv {
    match event {
        Event::Incoming(Incoming::ConnAck(ack)) => Recv::Connected {
            session_present: ack.session_present,
        },
        Event::Incoming(Incoming::Publish(p)) => Recv::Message(Box::new(Message::V4(p))),
        Event::Incoming(Incoming::PubAck(ack)) => Recv::Acked {
            pkid: ack.pkid,
            refused: None,
        },
        Event::Incoming(Incoming::SubAck(ack)) => Recv::Subscribed {
            refused: ack.return_codes.contains(&rumqttc::SubscribeReasonCode::Failure),
        },
        Event::Outgoing(outgoing) => happened_out(outgoing),
        Event::Incoming(_) => Recv::Other,
    }
}

fn happened5(event: v5::Event) -> Recv {
    use packets5::{Packet, PubAckReason, SubscribeReasonCode};
    match event {
        v5::Event::Incoming(Packet::ConnAck(ack)) => Recv::Connected {
            session_present: ack.session_present,
        },
        v5::Event::Incoming(Packet::Publish(p)) => Recv::Message(Box::new(Message::V5(p))),
        v5::Event::Incoming(Packet::PubAck(ack)) => Recv::Acked {
            pkid: ack.pkid,
            refused: match ack.reason {
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers => None,
                reason => Some(match ack.properties.and_then(|p| p.reason_string) {
                    Some(why) => format!("the MQTT broker refused the message: {reason:?} ({why})"),
                    None => format!("the MQTT broker refused the message: {reason:?}"),
                }),
            },
        },
        v5::Event::Incoming(Packet::SubAck(ack)) => Recv::Subscribed {
            refused: ack
                .return_codes
                .iter()
                .any(|code| !matches!(code, SubscribeReasonCode::Success(_))),
        },
        v5::Event::Outgoing(outgoing) => happened_out(outgoing),
        v5::Event::Incoming(_) => Recv::Other,
    }
}

fn happened_out(outgoing: Outgoing) -> Recv {
    match outgoing {
        Outgoing::Publish(pkid) if pkid != 0 => Recv::Written(pkid),
        Outgoing::AwaitAck(pkid) => Recv::HeldBack(pkid),
        _ => Recv::Other,
    }
}

/// The reason, when retrying cannot fix a failed MQTT 3.1.1 connection.
pub(super) fn hopeless4(error: &rumqttc::ConnectionError) -> Option<String> {
    use rumqttc::ConnectReturnCode as Code;
    match error {
        rumqttc::ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                Code::BadUserNamePassword => "bad user name or password",
                Code::NotAuthorized => "not authorized (check `username` and `password`)",
                Code::BadClientId => "the client id was rejected",
                Code::RefusedProtocolVersion => "the broker does not speak this MQTT version",
                Code::ServiceUnavailable | Code::Success => return None,
            };
            Some(format!("the MQTT broker refused the connection: {why}"))
        }
        rumqttc::ConnectionError::Tls(e) => hopeless_tls(e),
        _ => None,
    }
}

/// The reason, when retrying cannot fix a failed MQTT 5 connection.
fn hopeless5(error: &v5::ConnectionError) -> Option<String> {
    use packets5::ConnectReturnCode as Code;
    match error {
        v5::ConnectionError::ConnectionRefused(code) => match code {
            // Passing states of the broker: try again.
            Code::Success
            | Code::ServiceUnavailable
            | Code::ServerUnavailable
            | Code::ServerBusy
            | Code::ConnectionRateExceeded
            | Code::QuotaExceeded
            | Code::UnspecifiedError
            | Code::ImplementationSpecificError => None,
            Code::BadUserNamePassword => {
                Some("the MQTT broker refused the connection: bad user name or password".into())
            }
            Code::NotAuthorized => {
                Some("the MQTT broker refused the connection: not authorized (check `username` and `password`)".into())
            }
            other => Some(format!("the MQTT broker refused the connection: {other:?}")),
        },
        v5::ConnectionError::Tls(e) => hopeless_tls(e),
        _ => None,
    }
}

/// A failure of TLS itself (verification, protocol, key) does not fix itself; a
/// connection cut during the handshake is a network failure like any other.
fn hopeless_tls(e: &rumqttc::TlsError) -> Option<String> {
    let tls_itself = match e {
        rumqttc::TlsError::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => true,
    };
    tls_itself.then(|| {
        format!(
            "TLS with the MQTT broker failed: {e} (check `ca`: it must be the CA that signed the \
             broker's certificate, and the address must be the name in that certificate)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_gets_our_publishes_again_but_not_stale_acknowledgements() {
        let options = rumqttc::MqttOptions::new("t", "127.0.0.1", 1);
        let (_handle, mut conn) = client(Options::V4(options), 10, 1);
        let publish = |pkid| {
            let mut p = rumqttc::Publish::new("out", QoS::AtLeastOnce, b"m".to_vec());
            p.pkid = pkid;
            rumqttc::Request::Publish(p)
        };
        let ack = rumqttc::Request::PubAck(rumqttc::PubAck::new(7));
        let pending = |conn: &mut Conn| match conn {
            Conn::V4(c, _) => c.eventloop.pending.iter().cloned().collect::<Vec<_>>(),
            Conn::V5(..) => Vec::new(),
        };
        let set = |conn: &mut Conn, requests: Vec<rumqttc::Request>| {
            if let Conn::V4(c, _) = conn {
                c.eventloop.pending = requests.into();
            }
        };
        // What a lost connection left (rumqttc would drop it on a new session).
        set(&mut conn, vec![publish(1), ack.clone(), publish(2)]);
        conn.carry();
        assert_eq!(pending(&mut conn), [], "held while reconnecting");
        // Asked by the pipeline after the loss: goes after what is resent.
        set(&mut conn, vec![publish(3)]);
        conn.restore(false);
        assert_eq!(pending(&mut conn), [publish(1), publish(2), publish(3)]);
        set(&mut conn, vec![publish(1), ack.clone()]);
        conn.carry();
        conn.restore(true);
        assert_eq!(pending(&mut conn), [publish(1), ack], "a kept session gets everything");
    }
}
