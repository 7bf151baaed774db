//! The MQTT test harness itself (`support::mqtt`): a real mosquitto starts, and what
//! `mosquitto_pub` publishes `mosquitto_sub` reads back complete, a client holding back
//! every acknowledgement still gets thousands of messages, a persistent session keeps
//! what it missed across a broker restart, and passwords and TLS are enforced. The
//! connector tests rely on this.

mod support;

use std::collections::BTreeSet;

use support::mqtt::{Broker, ClientOptions};
use support::{tls, workdir, PATIENCE};

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn thousands_of_qos1_messages_arrive_complete_and_in_order() {
    let broker = Broker::start(&workdir("mqtt_broker_round_trip"));
    let mut all = broker.subscribe("sensors/+", 1);
    let mut one = broker.subscribe("sensors/b", 1);

    let a = numbered("a", 0..5000);
    let b: Vec<String> = vec![
        "with spaces and ünïcode".into(),
        String::new(),
        "{\"json\": [1, 2]}".into(),
    ];
    broker.publish("sensors/a", &a, 1);
    broker.publish("sensors/b", &b, 1);
    broker.publish("elsewhere", &numbered("x", 0..10), 1);
    // Published last: once it is here, `elsewhere` would be here too had the filter matched.
    broker.publish("sensors/b", &["end".to_string()], 1);

    let got = all.wait_for(a.len() + b.len() + 1, PATIENCE);
    let on = |topic: &str| -> Vec<String> { got.iter().filter(|(t, _)| t == topic).map(|(_, p)| p.clone()).collect() };
    let b_end: Vec<String> = b.iter().cloned().chain(["end".to_string()]).collect();
    assert_eq!(on("sensors/a"), a, "sensors/a: lost, duplicated or reordered");
    assert_eq!(on("sensors/b"), b_end, "sensors/b");
    let topics: BTreeSet<String> = all.stop().into_iter().map(|(t, _)| t).collect();
    let expected = BTreeSet::from(["sensors/a".to_string(), "sensors/b".to_string()]);
    assert_eq!(topics, expected, "probes or other topics leaked");
    let got_one: Vec<String> = one
        .wait_for(b_end.len(), PATIENCE)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(got_one, b_end);
}

#[test]
fn a_persistent_session_gets_what_it_missed_across_a_broker_restart() {
    let mut broker = Broker::start(&workdir("mqtt_broker_persistent"));
    let mut subscriber = broker.subscribe_persistent("jobs/#", 1, "harness-persistent");
    broker.publish("jobs/1", &numbered("before", 0..100), 1);
    assert_eq!(subscriber.wait_for(100, PATIENCE).len(), 100);
    assert_eq!(subscriber.stop().len(), 100);

    // Away: the broker queues QoS 1 messages for the session, then restarts.
    let missed = numbered("missed", 0..3000);
    broker.publish("jobs/2", &missed, 1);
    broker.restart();
    let after = numbered("after", 0..10);

    let mut back = broker.subscribe_persistent("jobs/#", 1, "harness-persistent");
    broker.publish("jobs/3", &after, 1);
    let got = back.wait_for(missed.len() + after.len(), PATIENCE);
    assert_eq!(
        got.len(),
        missed.len() + after.len(),
        "messages received after coming back"
    );
    let payloads: Vec<String> = got.iter().map(|(_, p)| p.clone()).collect();
    let expected: Vec<String> = missed.iter().chain(&after).cloned().collect();
    assert_eq!(payloads, expected, "the session lost, repeated or reordered messages");
    assert!(
        broker.log_tail().contains("harness-persistent"),
        "{}",
        broker.log_tail()
    );

    // A clean-session subscriber gets nothing from before it subscribed.
    let mut fresh = broker.subscribe("jobs/#", 1);
    broker.publish("jobs/4", &["last".to_string()], 1);
    assert_eq!(
        fresh.wait_for(1, PATIENCE),
        vec![("jobs/4".to_string(), "last".to_string())]
    );
}

#[test]
fn a_password_broker_refuses_anonymous_clients_and_wrong_passwords() {
    let broker = Broker::start_with_password(&workdir("mqtt_broker_password"), "rill", "s3cret pass");
    let mut subscriber = broker.subscribe("t", 1);
    let one = ["hello".to_string()];
    let anonymous = broker.try_publish("t", &one, 1, &ClientOptions::default());
    assert!(
        anonymous.as_ref().is_err_and(|e| e.contains("not authorised")),
        "{anonymous:?}"
    );
    let wrong = ClientOptions {
        credentials: Some(("rill".into(), "wrong".into())),
        cafile: None,
    };
    let refused = broker.try_publish("t", &one, 1, &wrong);
    assert!(refused.is_err(), "a wrong password was accepted");

    // The refused messages never arrive: the accepted ones are the first.
    broker.publish("t", &one, 1);
    broker.publish("t", &["end".to_string()], 1);
    let got: Vec<String> = subscriber.wait_for(2, PATIENCE).into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, ["hello", "end"]);
}

#[test]
fn a_tls_broker_is_reached_with_its_ca_only() {
    let dir = workdir("mqtt_broker_tls");
    let certs = tls::Certs::generate(&dir.join("certs"));
    let broker = Broker::start_tls(&dir, &certs);
    assert!(broker.url().starts_with("mqtts://127.0.0.1:"), "{}", broker.url());
    let one = ["secure".to_string()];

    let mut subscriber = broker.subscribe("t", 1);
    broker.publish("t", &one, 1);
    assert_eq!(
        subscriber.wait_for(1, PATIENCE),
        vec![("t".to_string(), "secure".to_string())]
    );

    let other = ClientOptions {
        credentials: None,
        cafile: Some(certs.other_ca.clone()),
    };
    let refused = broker.try_publish("t", &one, 1, &other);
    assert!(refused.is_err(), "a client trusting an unrelated CA connected");
    let plain = broker.try_publish("t", &one, 1, &ClientOptions::default());
    assert!(plain.is_err(), "a plain-text client was accepted by the TLS listener");
    // Neither refused message reached the subscriber: the next one comes right after.
    broker.publish("t", &["end".to_string()], 1);
    let got: Vec<String> = subscriber.wait_for(2, PATIENCE).into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, ["secure", "end"]);
}

#[test]
fn a_client_that_acknowledges_nothing_still_receives_thousands() {
    // rill holds back a QoS 1 acknowledgement until the records are safe downstream;
    // the broker must keep sending meanwhile, not stop at an in-flight limit.
    let broker = Broker::start(&workdir("mqtt_broker_unacknowledged"));
    let mut silent = silent::Client::subscribe(broker.port(), "held/#");
    let payloads = numbered("held", 0..3000);
    broker.publish("held/1", &payloads, 1);
    let got = silent.read_publishes(payloads.len());
    assert_eq!(got, payloads, "not every unacknowledged message was sent");
}

/// A bare MQTT 3.1.1 client over a TcpStream that subscribes with QoS 1 and never
/// acknowledges a PUBLISH (`mosquitto_sub` acknowledges every message at once).
mod silent {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::PATIENCE;

    pub struct Client(TcpStream);

    /// A UTF-8 string as MQTT encodes it: a two-byte length, then the bytes.
    fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    impl Client {
        pub fn subscribe(port: u16, filter: &str) -> Client {
            let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut client = Client(stream);
            // CONNECT: protocol "MQTT" level 4, clean session, keep-alive 600 s.
            let mut connect = string("MQTT");
            connect.extend_from_slice(&[4, 0x02, 0x02, 0x58]);
            connect.extend(string("rill-silent"));
            client.send(0x10, &connect);
            assert_eq!(client.packet(), (0x20, vec![0, 0]), "CONNACK");
            // SUBSCRIBE: packet id 1, the filter at QoS 1.
            let mut subscribe = vec![0, 1];
            subscribe.extend(string(filter));
            subscribe.push(1);
            client.send(0x82, &subscribe);
            assert_eq!(client.packet(), (0x90, vec![0, 1, 1]), "SUBACK granting QoS 1");
            client
        }

        /// Reads `n` PUBLISH packets, acknowledging none; returns their payloads.
        pub fn read_publishes(&mut self, n: usize) -> Vec<String> {
            let mut payloads = Vec::new();
            while payloads.len() < n {
                let (kind, body) = self.try_packet().unwrap_or_else(|e| {
                    panic!(
                        "{} of {n} unacknowledged messages came, then none for {PATIENCE:?}: {e}",
                        payloads.len()
                    )
                });
                assert_eq!(kind & 0xF6, 0x32, "a QoS 1 PUBLISH, got {kind:#x}");
                let topic_len = u16::from_be_bytes([body[0], body[1]]) as usize;
                // After the topic, the two-byte packet id, then the payload.
                payloads.push(String::from_utf8(body[2 + topic_len + 2..].to_vec()).unwrap());
            }
            payloads
        }

        fn send(&mut self, kind: u8, body: &[u8]) {
            let mut packet = vec![kind];
            let mut len = body.len();
            loop {
                let byte = (len % 128) as u8;
                len /= 128;
                packet.push(if len > 0 { byte | 0x80 } else { byte });
                if len == 0 {
                    break;
                }
            }
            packet.extend_from_slice(body);
            self.0.write_all(&packet).expect("send to the broker");
        }

        /// The next packet: its first byte and its body.
        fn packet(&mut self) -> (u8, Vec<u8>) {
            self.try_packet().expect("a packet from the broker")
        }

        fn try_packet(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
            let mut byte = [0u8];
            self.0.read_exact(&mut byte)?;
            let kind = byte[0];
            let (mut len, mut shift) = (0usize, 0);
            loop {
                self.0.read_exact(&mut byte)?;
                len |= ((byte[0] & 0x7F) as usize) << shift;
                shift += 7;
                if byte[0] & 0x80 == 0 {
                    break;
                }
            }
            let mut body = vec![0; len];
            self.0.read_exact(&mut body)?;
            Ok((kind, body))
        }
    }
}
