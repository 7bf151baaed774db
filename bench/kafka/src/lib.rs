//! What the Kafka benchmark's three programs share: the record, its generator, the
//! filter and a delivery counter for producers; the random numbers (the same seed as
//! `baseline gen`: the topic holds the same readings as its file) and the argument
//! parser come from bench/common.
//!
//! - `kafka-load` writes the input topic (the generator below).
//! - `kafka-relay` is the hand-written baseline of bench/kafka_filter.yaml.
//! - `kafka-count` times a job from outside (it reads the output topic while the job
//!   runs) and reads a topic back for the output check.

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
pub use rill_bench_common::{epoch_secs, Args, SplitMix, SEED};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

/// A reading, as bench/kafka_filter.yaml's `reading` schema: the relay parses every
/// message into it and serializes the ones it keeps (field order = schema order, as
/// rill's JSON encoder writes them). Strings borrow from the message when they can.
#[derive(Deserialize, Serialize)]
pub struct Reading<'a> {
    #[serde(borrow)]
    pub device_id: Cow<'a, str>,
    pub ts: i64,
    pub temperature: f64,
    pub humidity: Option<f64>,
    #[serde(borrow)]
    pub status: Cow<'a, str>,
}

impl Reading<'_> {
    /// bench/kafka_filter.yaml's `hot.filter`.
    pub fn keep(&self) -> bool {
        self.temperature > 25.0 && self.status == "ok"
    }
}


/// Writes reading number `i` into `buf` (cleared first) as one JSON object, exactly as
/// `baseline gen` writes a line (without the newline), and returns its device id
/// (`buf[key]`) and whether it passes the filter, decided on the generated integers
/// (not by parsing), so the expected output count does not depend on the relay's code.
pub fn reading(rng: &mut SplitMix, i: u64, buf: &mut Vec<u8>) -> (std::ops::Range<usize>, bool) {
    use std::io::Write;
    buf.clear();
    let dev = rng.below(10_000);
    let ts = 1_700_000_000_000u64 + i;
    let t = rng.below(5_001); // 0.00 ..= 50.00 in hundredths
    let _ = write!(
        buf,
        "{{\"device_id\":\"dev-{dev:04}\",\"ts\":{ts},\"temperature\":{}.{:02},\"humidity\":",
        t / 100,
        t % 100
    );
    let key = 14..22; // dev-NNNN
    if rng.below(10) == 0 {
        buf.extend_from_slice(b"null");
    } else {
        let h = rng.below(10_001); // 0.00 ..= 100.00
        let _ = write!(buf, "{}.{:02}", h / 100, h % 100);
    }
    let ok = rng.below(5) != 0;
    let status = if ok { "ok" } else { "error" };
    let _ = write!(buf, ",\"status\":\"{status}\"}}");
    (key, ok && t > 2_500)
}

/// A producer context counting delivery outcomes (callbacks run inside `poll`/`flush`).
#[derive(Default)]
pub struct Deliveries {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if (level as i32) <= RDKafkaLogLevel::Warning as i32 {
            eprintln!("librdkafka {level:?} {facility}: {message}");
        }
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 10 {
                    eprintln!("delivery failed: {e}");
                }
                0
            }
        };
    }
}

/// A consumer configuration with the two settings bench/kafka_filter.yaml's source also
/// sets, from the same environment variables with the same defaults:
///
/// - `fetch.wait.max.ms` (`KAFKA_FETCH_WAIT_MS`, 10; librdkafka's default is 500):
///   tansu 0.6.0 sleeps in every Fetch for half this wait (all of it under 250 ms) even
///   when it has data to return, and returns at most 5 MiB per Fetch, so the default
///   caps any consumer at ~20 MB/s.
/// - `fetch.queue.backoff.ms` (`KAFKA_FETCH_QUEUE_BACKOFF_MS`, 10; default 1000):
///   tansu's 5 MiB may come from one partition (it ignores the per-partition limit), so
///   a partition's local queue passes `queued.min.messages` (100,000) after a couple of
///   fetches, and librdkafka then waits this long before fetching it again, though the
///   application drains the queue in a tenth of that.
pub fn consumer_config(brokers: &str) -> ClientConfig {
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| "10".into());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", env("KAFKA_FETCH_WAIT_MS"))
        .set("fetch.queue.backoff.ms", env("KAFKA_FETCH_QUEUE_BACKOFF_MS"));
    config
}

/// A producer configuration as rill's Kafka sink with bench/kafka_filter.yaml's
/// settings: idempotent, `acks=all`, `linger.ms=5`, no compression.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "none");
    config
}
