//! What the Kafka benchmark's three programs share: the record, its generator, the
//! filter, a delivery counter for producers and a tiny `--name value` parser.
//!
//! - `kafka-load` writes the input topic (the generator below).
//! - `kafka-relay` is the hand-written baseline of bench/kafka_filter.yaml.
//! - `kafka-count` times a job from outside (it reads the output topic while the job
//!   runs) and reads a topic back for the output check.

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// splitmix64, as bench/baseline's generator.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed of `baseline gen`: the topic holds the same readings as its file.
pub const SEED: u64 = 0x5EED_2024;

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

/// Seconds since the Unix epoch, comparable with `date +%s.%N`.
pub fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `--name value` and `--flag` arguments.
pub struct Args {
    program: &'static str,
    usage: &'static str,
    values: HashMap<String, String>,
}

impl Args {
    /// Parses the process arguments; `flags` are the options that take no value.
    pub fn parse(program: &'static str, usage: &'static str, flags: &[&str]) -> Result<Args, ExitCode> {
        let mut values = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(usage_error(program, usage, &format!("unexpected argument {arg:?}")));
            };
            if name == "help" {
                eprintln!("usage: {program} {usage}");
                return Err(ExitCode::SUCCESS);
            }
            let value = if flags.contains(&name) {
                String::new()
            } else {
                args.next()
                    .ok_or_else(|| usage_error(program, usage, &format!("--{name} needs a value")))?
            };
            values.insert(name.to_string(), value);
        }
        Ok(Args { program, usage, values })
    }

    pub fn flag(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn opt(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn req(&self, name: &str) -> Result<&str, ExitCode> {
        self.opt(name)
            .ok_or_else(|| usage_error(self.program, self.usage, &format!("--{name} is required")))
    }

    /// A number option, `default` when absent.
    pub fn num<T: FromStr>(&self, name: &str, default: Option<T>) -> Result<T, ExitCode> {
        match (self.opt(name), default) {
            (Some(v), _) => v
                .replace('_', "")
                .parse()
                .map_err(|_| usage_error(self.program, self.usage, &format!("--{name}: not a number: {v:?}"))),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(usage_error(self.program, self.usage, &format!("--{name} is required"))),
        }
    }
}

fn usage_error(program: &str, usage: &str, why: &str) -> ExitCode {
    eprintln!("{program}: {why}\nusage: {program} {usage}");
    ExitCode::from(2)
}
