//! Pulsar: a subscription read message by message ([`PulsarSource`]), each message
//! acknowledged once its records are safe downstream, and a batching producer
//! ([`PulsarProducer`]) with a topic, partition key and properties per record.
//!
//! The `pulsar` crate is asynchronous: each source and sink drives its client from a
//! thread of its own running a single-threaded tokio runtime, and talks to the
//! pipeline's thread over channels (the pipeline never waits on the network).
//! Each also turns Nagle's algorithm off on its client's sockets (`nodelay`), which the
//! crate does not.

mod client;
mod held;
mod nodelay;
mod sink;
mod source;

pub use client::PulsarConnect;
pub use sink::{PulsarCompression, PulsarProducer, PulsarPublish};
pub use source::{PulsarSource, PulsarSubscribe, PulsarSubscription};
