//! Connectors: where records come from and go to, one folder each.
//!
//! Each connector implements the generic layers' small traits: a source is a
//! [`crate::sources::RawSource`] (framing a byte stream, or receiving whole messages),
//! a sink is a [`crate::sinks::RawSink`] (a byte stream) or a
//! [`crate::sinks::MessageSink`] (a message per record, each acknowledged). Nothing
//! outside this folder knows a connector by name; this file is the one table of them,
//! and brokers sit behind their own cargo feature so pipelines without them do not
//! link their clients.

pub mod file;
pub mod generator;
pub mod stdin;
pub mod stdout;

#[cfg(feature = "kafka")]
pub mod kafka;

#[cfg(feature = "mqtt")]
pub mod mqtt;

#[cfg(feature = "redis")]
pub mod redis;

#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "pulsar")]
pub mod pulsar;

/// What generated code may name of the connectors (re-exported by [`crate::codegen`]).
pub mod exports {
    pub use super::file::{open_file, FileSink, FileSource};
    pub use super::generator::{GenField, GenKind, GeneratorSource};
    pub use super::stdin::StdinSource;
    pub use super::stdout::StdoutSink;

    #[cfg(feature = "kafka")]
    pub use super::kafka::{KafkaProducer, KafkaSource};

    #[cfg(feature = "mqtt")]
    pub use super::mqtt::{MqttConnect, MqttPublisher, MqttSource};

    #[cfg(feature = "redis")]
    pub use super::redis::{
        CacheRules, RedisConnect, RedisLookup, RedisPubSub, RedisStream, RedisStreamRead, RedisWrite, RedisWriter,
    };

    #[cfg(feature = "http")]
    pub use super::http::{HttpListen, HttpPost, HttpSink, HttpSource};

    #[cfg(feature = "pulsar")]
    pub use super::pulsar::{
        PulsarCompression, PulsarConnect, PulsarProducer, PulsarPublish, PulsarSource, PulsarSubscribe,
        PulsarSubscription,
    };
}
