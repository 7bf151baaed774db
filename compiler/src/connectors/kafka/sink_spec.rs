//! `type: kafka` — one message per record, with its topic, key and headers.

use std::collections::BTreeMap;

use super::client_spec::{KafkaClientSpec, SaslSpec, TlsSpec};
use crate::connectors::message::TopicSpec;
use crate::spec::transforms::ExprText;
use crate::spec::Setting;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the sink's options")]
pub struct KafkaSink {
    /// `host:port[,host:port..]`.
    pub brokers: Setting,
    pub tls: Option<TlsSpec>,
    pub sasl: Option<SaslSpec>,
    /// Any other librdkafka property, passed through.
    #[serde(default)]
    pub properties: BTreeMap<String, Setting>,
    /// `topic: alerts`, or `topic: { expr: <string expression> }` per record.
    pub topic: Option<TopicSpec>,
    /// The message key: an expression (a string, or optional string).
    pub key: Option<ExprText>,
    /// Header name → expression.
    #[serde(default)]
    pub headers: BTreeMap<String, ExprText>,
    pub compression: Option<Compression>,
    pub linger_ms: Option<u64>,
    /// Bytes per batch of messages to one partition.
    pub batch_size: Option<u64>,
    /// `all` (default), `1` or `0`.
    pub acks: Option<Setting>,
    /// Exactly one copy of each message per partition despite retries (default true;
    /// needs `acks: all`).
    pub idempotent: Option<bool>,
    /// How long librdkafka retries a message before it becomes a dead letter (default 5m).
    pub delivery_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of none, gzip, snappy, lz4, zstd")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl KafkaSink {
    pub fn client(&self) -> KafkaClientSpec<'_> {
        KafkaClientSpec {
            brokers: &self.brokers,
            tls: self.tls.as_ref(),
            sasl: self.sasl.as_ref(),
            properties: &self.properties,
        }
    }
}
