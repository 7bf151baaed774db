//! What the Redis benchmark's three programs share: the streams and their field.
//!
//! - `redis-load` adds the input entries (bench/common's generator).
//! - `redis-relay` is the hand-written baseline of bench/redis_filter.yaml.
//! - `redis-count` times a job from outside: it watches the output stream's length.

pub use rill_bench_common::{epoch_secs, reading, Args, Probe, SplitMix, SEED};

/// The input and output streams, and the entry field holding a reading.
pub const INPUT_STREAM: &str = "bench_in";
pub const OUTPUT_STREAM: &str = "bench_out";
pub const FIELD: &str = "data";

/// A connection to `url`, or a message saying why not.
pub fn connect(url: &str) -> Result<redis::Connection, String> {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .map_err(|e| format!("cannot connect to {url}: {e}"))
}
