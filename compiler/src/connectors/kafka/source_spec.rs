//! `type: kafka` — consume topics as a member of a consumer group.

use std::collections::BTreeMap;

use super::client_spec::{KafkaClientSpec, SaslSpec, TlsSpec};
use crate::spec::Setting;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the source's options")]
pub struct KafkaSource {
    /// `host:port[,host:port..]`.
    pub brokers: Setting,
    pub tls: Option<TlsSpec>,
    pub sasl: Option<SaslSpec>,
    /// Any other librdkafka property, passed through.
    #[serde(default)]
    pub properties: BTreeMap<String, Setting>,
    /// Topic names, or regular expressions starting with `^`.
    pub topics: Vec<String>,
    /// The consumer group; copies of the binary with the same group share the partitions.
    pub group_id: Option<Setting>,
    /// Where a group without committed offsets starts: `latest` (default) or `earliest`.
    #[serde(default)]
    pub start: StartAt,
    /// Message metadata copied into record fields.
    #[serde(default)]
    pub metadata: MetadataSpec,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of earliest, latest")]
pub enum StartAt {
    Earliest,
    #[default]
    Latest,
}

impl StartAt {
    pub fn as_str(self) -> &'static str {
        match self {
            StartAt::Earliest => "earliest",
            StartAt::Latest => "latest",
        }
    }
}

/// `metadata: { key: message_key, partition: part, headers: { trace-id: trace } }`:
/// which field receives which piece of a message's metadata.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ key: message_key, partition: part, headers: { trace-id: trace } }`")]
pub struct MetadataSpec {
    pub key: Option<String>,
    pub topic: Option<String>,
    pub partition: Option<String>,
    pub offset: Option<String>,
    pub timestamp: Option<String>,
    /// Header name → field.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl KafkaSource {
    pub fn client(&self) -> KafkaClientSpec<'_> {
        KafkaClientSpec {
            brokers: &self.brokers,
            tls: self.tls.as_ref(),
            sasl: self.sasl.as_ref(),
            properties: &self.properties,
        }
    }
}
