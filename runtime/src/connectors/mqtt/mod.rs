//! MQTT through rumqttc (pure Rust, TLS through rustls), behind the `mqtt` cargo
//! feature: pipelines without MQTT do not link it. MQTT 3.1.1 (`protocol: 4`) and MQTT 5
//! (`protocol: 5`), one client type each behind `protocol.rs`; with MQTT 5 a persistent
//! session is asked to outlive the connection (session expiry), and a PUBACK refusing a
//! message makes it a dead letter with the broker's reason.
//!
//! - [`MqttSource`]: subscribes (wildcards allowed) at QoS 0 or 1. A QoS 1 message is
//!   acknowledged to the broker only once the pipeline's [`crate::acks::Acks`] confirm
//!   that every record from it reached its sinks; with `clean_session: false` and a fixed
//!   `client_id`, a binary that stops or is killed gets again, on restart, what it had
//!   not acknowledged and what arrived meanwhile.
//! - [`MqttPublisher`]: a [`crate::sinks::MessageSink`] publishing one message per
//!   record at QoS 0 or 1; a QoS 1 message is confirmed by the broker's PUBACK, and
//!   publishes wait (bounded) while the broker is away, then go out again (also
//!   those in flight when the connection dropped, even when the broker kept no session).
//!
//! QoS 2 is refused at start: the pipeline delivers at least once anyway, and rumqttc
//! forgets a half-done QoS 2 exchange when the connection drops.
//!
//! Each runs the connection on a thread of its own (the pipeline's thread never waits
//! on the network), reconnecting with backoff (100 ms doubling to 5 s), logging one
//! warning per outage and one info line when connected again. A broker refusing the
//! credentials or the client id, a failed TLS handshake or a refused subscription ends
//! the run (a [`crate::errors::RunError`] naming the component): retrying cannot fix them.
//!
//! **What the broker must allow.** The pipeline holds acknowledgements until records
//! are safe, which for a window means until it fires. Meanwhile the broker counts those
//! messages as in flight to the client: mosquitto sends at most
//! `max_inflight_messages` (default 20) unacknowledged QoS 1 messages to a client and
//! queues the rest, up to `max_queued_messages` (default 1000), dropping what comes
//! beyond. For a source feeding a window, set `max_inflight_messages` to at least the
//! number of messages one window holds (0 means no limit) and `max_queued_messages` to
//! what may arrive while the pipeline is down. Otherwise the broker drops messages, and
//! the source stalls until the window fires; a window on event time fires only when
//! later records arrive, which the broker is holding back, so the pipeline stops for
//! good. For restarts to resume, enable `persistence true` so sessions survive a
//! broker restart.

mod client;
mod protocol;
mod sink;
mod source;

pub use client::MqttConnect;
pub use sink::MqttPublisher;
pub use source::MqttSource;
