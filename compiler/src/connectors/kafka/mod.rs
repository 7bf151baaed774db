//! `type: kafka` — consume topics as a member of a consumer group, and produce one
//! message per record. The options become librdkafka properties, each a setting
//! resolved when the binary starts.

mod check;
mod client_spec;
mod emit;
mod sink_spec;
mod source_spec;
#[cfg(test)]
mod tests;

pub use check::{sink as check_sink, source as check_source};
pub use client_spec::{KafkaClientSpec, SaslMechanism, SaslSpec, TlsSpec};
pub use emit::{sink as emit_sink, source as emit_source};
pub use sink_spec::{Compression, KafkaSink};
pub use source_spec::{KafkaSource, MetadataSpec, StartAt};

pub const RUNTIME_TYPES: &[&str] = &["KafkaProducer", "KafkaSource"];

#[derive(Debug, Clone)]
pub struct IrKafkaSource {
    pub properties: Vec<(String, PropertyValue)>,
    /// Names, or regular expressions starting with `^`.
    pub topics: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct IrKafkaSink {
    pub properties: Vec<(String, PropertyValue)>,
    /// The topic of records whose address names none (empty when every record names one).
    pub topic: String,
}

/// A librdkafka property value: fixed in the spec, or a setting resolved at start.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    Fixed(String),
    Setting(String),
}
