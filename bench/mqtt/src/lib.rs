//! What the MQTT benchmark's three programs share: the client options (rill_runtime's)
//! and the topics; the reading generator, the filter's probe and the argument parser
//! come from bench/common.
//!
//! - `mqtt-load` publishes the input messages.
//! - `mqtt-relay` is the hand-written baseline of bench/mqtt_filter.yaml.
//! - `mqtt-count` times a job from outside: it subscribes to the output topic and counts.

pub use rill_bench_common::{epoch_secs, reading, Args, Probe, SplitMix, SEED};
use rumqttc::MqttOptions;
use std::time::Duration;

/// The input and output topics.
pub const INPUT_TOPIC: &str = "bench/in";
pub const OUTPUT_TOPIC: &str = "bench/out";

/// The largest packet MQTT allows, as rill_runtime sets it (rumqttc's default is 10 KiB).
const MAX_PACKET: usize = 268_435_455;

/// rumqttc's options as rill_runtime sets them (runtime/src/connectors/mqtt/client.rs):
/// keep alive 30 s, the largest packets, `inflight` unacknowledged publishes and as
/// many requests queued. `manual_acks` for a subscriber that acknowledges a message
/// only once it is safe.
pub fn options(broker: &str, client_id: &str, clean_session: bool, manual_acks: bool, inflight: u16) -> MqttOptions {
    let (host, port) = broker.rsplit_once(':').unwrap_or((broker, "1883"));
    let port = port.parse().unwrap_or(1883);
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_clean_session(clean_session)
        .set_keep_alive(Duration::from_secs(30))
        .set_manual_acks(manual_acks)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_inflight(inflight.max(1))
        .set_request_channel_capacity(usize::from(inflight.max(1)));
    options
}

