//! The options of `type: redis`, for sources and sinks.

use crate::connectors::message::TopicSpec;
use crate::spec::Setting;

/// A source reads either pub/sub (`channels`, `patterns`) or one stream with a consumer
/// group (`stream`, `group`, `consumer`, ...).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ type: redis, url: redis://127.0.0.1:6379, channels: [sensor_data] }`")]
pub struct RedisSource {
    /// `redis://host:6379[/db]`.
    pub url: Setting,
    pub username: Option<Setting>,
    /// A secret, so only `${VAR}`.
    pub password: Option<Setting>,
    /// Pub/sub channels to subscribe to.
    pub channels: Option<Vec<String>>,
    /// Pub/sub patterns (`sensor.*`) to subscribe to.
    pub patterns: Option<Vec<String>>,
    /// A stream read with a consumer group.
    pub stream: Option<String>,
    /// Default `<pipeline>`.
    pub group: Option<Setting>,
    /// Default `<pipeline>-<component>`: stable, so its pending entries are its own again
    /// after a restart.
    pub consumer: Option<Setting>,
    /// The entry field holding the record (default `data`).
    pub field: Option<String>,
    /// Where a new group starts: `latest` (default) or `earliest`.
    pub start: Option<RedisStart>,
    /// Pending entries of other consumers idle this long are claimed (default 1m).
    pub claim_idle: Option<String>,
    #[serde(default)]
    pub metadata: RedisMetadata,
}

/// `metadata: { channel: ch }`: which field receives which piece of a message's metadata.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ channel: source_channel }`")]
pub struct RedisMetadata {
    /// Pub/sub: the channel a message came on.
    pub channel: Option<String>,
    /// Pub/sub: the pattern it matched (absent for a plain subscription).
    pub pattern: Option<String>,
    /// Streams: the stream's name.
    pub stream: Option<String>,
    /// Streams: the entry's id (`1700000000000-0`).
    pub id: Option<String>,
}

/// A sink does one of: `channel` (PUBLISH), `stream` (XADD), `key` (SET), `hash` with
/// `key` (HSET).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a mapping like `{ type: redis, input: clean, url: redis://127.0.0.1:6379, stream: sensor_clean }`"
)]
pub struct RedisSink {
    pub url: Setting,
    pub username: Option<Setting>,
    /// A secret, so only `${VAR}`.
    pub password: Option<Setting>,
    /// PUBLISH to this channel (`"alerts.{device_id}"`: one per record).
    pub channel: Option<TopicSpec>,
    /// XADD to this stream.
    pub stream: Option<TopicSpec>,
    /// With `stream`: `MAXLEN ~ n`, trimming the stream to about n entries.
    pub max_len: Option<u64>,
    /// With `stream`: the entry field holding the record (default `data`).
    pub field: Option<String>,
    /// HSET: the hash (with `key`, the field in it).
    pub hash: Option<TopicSpec>,
    /// SET this key (or, with `hash`, HSET this field of the hash).
    pub key: Option<TopicSpec>,
    /// With `key`: the key (or the hash) expires this long after its last write.
    pub ttl: Option<String>,
}

/// Where a consumer group created by rill starts reading its stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of earliest, latest")]
pub enum RedisStart {
    /// The whole stream (`0`).
    Earliest,
    /// Entries added from now on (`$`).
    #[default]
    Latest,
}

/// `lookup: { redis: { url, prefix: "device:" }, schema: device }`: a lookup join's rows,
/// each read with `GET <prefix><key>` (a JSON row), and kept a while.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ url: redis://127.0.0.1:6379, prefix: \"device:\", cache: 10s }`")]
pub struct RedisLookup {
    pub url: Setting,
    pub username: Option<Setting>,
    /// A secret, so only `${VAR}`.
    pub password: Option<Setting>,
    /// Put before the record's key to make the Redis key (default none).
    pub prefix: Option<String>,
    /// How long a row (or a miss) is kept after it was read (default 10s; `0s`: none).
    pub cache: Option<String>,
    /// How many rows are kept at most (default 100,000).
    pub cache_rows: Option<u64>,
}
