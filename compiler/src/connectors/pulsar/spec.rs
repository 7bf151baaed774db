//! The options of `type: pulsar`, for sources and sinks.

use std::collections::BTreeMap;

use crate::connectors::message::TopicSpec;
use crate::spec::transforms::ExprText;
use crate::spec::Setting;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a mapping like `{ type: pulsar, url: pulsar://127.0.0.1:6650, topics: [events], subscription: rill }`"
)]
pub struct PulsarSource {
    /// `pulsar://host:6650`.
    pub url: Setting,
    /// A JWT for token authentication: a secret, so only `${VAR}`.
    pub token: Option<Setting>,
    /// `persistent://tenant/namespace/topic`, or a short name in `public/default`.
    pub topics: Vec<String>,
    /// Default `<pipeline>`.
    pub subscription: Option<Setting>,
    /// Default `exclusive`, as in every Pulsar client.
    pub subscription_type: Option<PulsarSubscriptionType>,
    /// Default: the broker names the consumer.
    pub consumer_name: Option<Setting>,
    /// Where a new subscription starts: `latest` (default) or `earliest`.
    pub start: Option<PulsarStart>,
    #[serde(default)]
    pub metadata: PulsarMetadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of exclusive, shared, failover, key_shared")]
pub enum PulsarSubscriptionType {
    Exclusive,
    Shared,
    Failover,
    KeyShared,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of earliest, latest")]
pub enum PulsarStart {
    Earliest,
    #[default]
    Latest,
}

/// `metadata: { key: k, topic: t, publish_time: at, properties: { trace: trace_id } }`:
/// which field receives which piece of a message's metadata.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ key: message_key, publish_time: published, properties: { trace: trace_id } }`")]
pub struct PulsarMetadata {
    /// The partition key.
    pub key: Option<String>,
    pub topic: Option<String>,
    /// When the broker received it.
    pub publish_time: Option<String>,
    /// When the producer said it happened, if it did.
    pub event_time: Option<String>,
    /// `ledger:entry:partition:batch_index`.
    pub message_id: Option<String>,
    /// Property name → field.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a mapping like `{ type: pulsar, input: kept, url: pulsar://127.0.0.1:6650, topic: persistent://public/default/alerts }`"
)]
pub struct PulsarSink {
    pub url: Setting,
    /// A secret, so only `${VAR}`.
    pub token: Option<Setting>,
    /// A topic, `"alerts-{site}"`, or `{ expr: <string expression> }` per record.
    pub topic: Option<TopicSpec>,
    /// The partition key: a string (or optional string) expression.
    pub key: Option<ExprText>,
    /// Property name → string (or optional string) expression.
    #[serde(default)]
    pub properties: BTreeMap<String, ExprText>,
    #[serde(default)]
    pub batch: PulsarBatch,
    pub compression: Option<PulsarCompression>,
    /// How long a message may wait for an unreachable broker (default 30s).
    pub delivery_timeout: Option<String>,
}

/// `batch: { max_records: 1000, max_bytes: 128KiB, max_wait: 10ms }`: a batch goes out
/// when any limit is reached; `max_records: 1` sends every message on its own.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ max_records: 1000, max_bytes: 128KiB, max_wait: 10ms }`")]
pub struct PulsarBatch {
    pub max_records: Option<u64>,
    pub max_bytes: Option<Setting>,
    pub max_wait: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of none, lz4, zlib, zstd, snappy")]
pub enum PulsarCompression {
    None,
    Lz4,
    Zlib,
    Zstd,
    Snappy,
}
