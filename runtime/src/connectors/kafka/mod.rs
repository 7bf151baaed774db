//! Kafka through librdkafka (the `rdkafka` crate), built from source and linked
//! statically, so a device needs no Kafka library installed. Behind the `kafka` cargo
//! feature: pipelines without Kafka do not link it.
//!
//! - [`KafkaSource`]: a consumer-group member. Offsets are *stored* only once the
//!   pipeline's [`crate::acks::Acks`] confirm that every record up to them reached its
//!   sinks, and librdkafka commits stored offsets periodically, when partitions are
//!   revoked and on close. So a crash loses nothing: what was not committed is read again.
//! - [`KafkaProducer`]: an idempotent producer behind the generic
//!   [`crate::sinks::MessageOutput`]; each record is one message, with its topic, key and
//!   headers from expressions. Deliveries are confirmed asynchronously; a message that
//!   fails after librdkafka's retries becomes a dead letter with the reason.
//!
//! Both use `Base*` clients polled from the pipeline's own thread: no extra threads of
//! ours, no async runtime, and callbacks run where the pipeline can act on them.
//!
//! Configuration is a list of librdkafka properties that the compiler derives from the
//! spec (brokers, TLS, SASL, compression, ..) plus the spec's `properties:`; every value
//! is resolved when the binary starts, so secrets come from the environment and are
//! never written into the binary.

mod client;
mod resume;
mod sink;
mod source;

pub use sink::KafkaProducer;
pub use source::KafkaSource;
