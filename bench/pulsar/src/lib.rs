//! What the Pulsar benchmark's programs share: the topics, the producer's batching (the
//! sink's defaults in rill), connecting, and the proxy.
//!
//! - `pulsar-load` publishes the input messages (bench/common's generator).
//! - `pulsar-relay` is the hand-written baseline of bench/pulsar_filter.yaml.
//! - `pulsar-count` times a job from outside: it reads the output topic.
//! - `pulsar-proxy` stands between every client here (rill's binary too) and
//!   pulsar-lite: the `pulsar` crate 6.9 cannot read pulsar-lite's MESSAGE frames
//!   (tests/support/pulsar_proxy.rs says why). The same file as the tests', included,
//!   not copied.

use pulsar::compression::Compression;
use pulsar::producer::ProducerOptions;
use pulsar::{Pulsar, TokioExecutor};
use std::time::Duration;

pub use rill_bench_common::{epoch_secs, reading, Args, Probe, SplitMix, SEED};

#[path = "../../../tests/support/pulsar_proxy.rs"]
pub mod proxy;

/// The input and output topics (the spec's short `bench_out` is this one).
pub const INPUT_TOPIC: &str = "persistent://public/default/bench_in";
pub const OUTPUT_TOPIC: &str = "persistent://public/default/bench_out";
/// The job's shared subscription on the input, as in the spec.
pub const SUBSCRIPTION: &str = "bench";

/// rill's Pulsar sink defaults (`batch: { max_records: 1000, max_bytes: 128KiB,
/// max_wait: 10ms }`, no compression), and its other producer options.
pub fn batching() -> ProducerOptions {
    ProducerOptions {
        batch_size: Some(1000),
        batch_byte_size: Some(128 * 1024),
        batch_timeout: Some(Duration::from_millis(10)),
        compression: Some(Compression::None),
        block_queue_if_full: true,
        ..ProducerOptions::default()
    }
}

/// A client of the broker at `url` (`pulsar://127.0.0.1:PORT`, the proxy's port).
pub async fn connect(url: &str) -> Result<Pulsar<TokioExecutor>, String> {
    Pulsar::builder(url, TokioExecutor)
        .build()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))
}

/// A consumer id unlike any other process's: pulsar-lite keys consumer ids by
/// subscription, and every client starts at 0 (rill's source does the same).
pub fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish() >> 11
}

/// A single-threaded tokio runtime, as each of rill's Pulsar connectors runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))
}
