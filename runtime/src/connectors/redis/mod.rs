//! Redis: pub/sub in ([`RedisPubSub`]) and out, streams read with a consumer group
//! ([`RedisStream`]) and written with XADD, keys written with SET or HSET
//! ([`RedisWriter`]), and a lookup join's rows read with GET ([`RedisLookup`]). The
//! `redis` crate's synchronous client: sources read on a thread of their own, which
//! wakes the pipeline; the sink sends a step's commands as one pipeline, and the lookup
//! its GETs, from the pipeline's thread.

mod client;
mod lookup;
mod pubsub;
mod reply;
mod sink;
mod stream;
mod thread;

pub use client::RedisConnect;
pub use lookup::{CacheRules, RedisLookup};
pub use pubsub::RedisPubSub;
pub use sink::{RedisWrite, RedisWriter};
pub use stream::{RedisStream, RedisStreamRead};
