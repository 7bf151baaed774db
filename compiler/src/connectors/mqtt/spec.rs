//! The options of `type: mqtt`, for sources and sinks.

use crate::connectors::message::TopicSpec;
use crate::spec::Setting;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ type: mqtt, url: mqtt://127.0.0.1:1883, topics: [sensors/+/reading] }`")]
pub struct MqttSource {
    /// `mqtt://host:1883`, or `mqtts://host:8883` for TLS.
    pub url: Setting,
    /// Default `<pipeline>-<component>`: stable, so a persistent session survives restarts.
    pub client_id: Option<Setting>,
    /// Default false: the broker keeps the session (subscriptions, unacknowledged QoS 1
    /// messages, what arrives while the binary is down).
    #[serde(default)]
    pub clean_session: bool,
    pub username: Option<Setting>,
    /// A secret, so only `${VAR}`.
    pub password: Option<Setting>,
    /// `3.1.1` (default) or `5`.
    pub version: Option<serde_yaml::Value>,
    pub tls: Option<MqttTls>,
    /// How often the connection is checked (default 30s).
    pub keep_alive: Option<String>,
    /// Topic filters to subscribe to (`+` and `#` wildcards).
    pub topics: Vec<String>,
    /// `0` or `1` (default `1`).
    pub qos: Option<u8>,
    /// Message metadata copied into record fields.
    #[serde(default)]
    pub metadata: MqttMetadata,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ type: mqtt, input: hot, url: mqtt://127.0.0.1:1883, topic: alerts }`")]
pub struct MqttSink {
    /// `mqtt://host:1883`, or `mqtts://host:8883` for TLS.
    pub url: Setting,
    /// Default `<pipeline>-<component>`: stable, so a persistent session survives restarts.
    pub client_id: Option<Setting>,
    /// Default false: the broker keeps the session (subscriptions, unacknowledged QoS 1
    /// messages, what arrives while the binary is down).
    #[serde(default)]
    pub clean_session: bool,
    pub username: Option<Setting>,
    /// A secret, so only `${VAR}`.
    pub password: Option<Setting>,
    /// `3.1.1` (default) or `5`.
    pub version: Option<serde_yaml::Value>,
    pub tls: Option<MqttTls>,
    /// How often the connection is checked (default 30s).
    pub keep_alive: Option<String>,
    /// `alerts`, `"alerts/{device_id}"` (a placeholder is a string expression), or
    /// `{ expr: <string expression> }`.
    pub topic: Option<TopicSpec>,
    /// `0` or `1` (default `1`).
    pub qos: Option<u8>,
    /// The broker keeps the last message of each topic for new subscribers.
    #[serde(default)]
    pub retain: bool,
}

/// What both ends need to reach the broker (fields of the source and sink specs:
/// serde's `flatten` cannot be combined with `deny_unknown_fields`).
#[derive(Debug, Clone, Copy)]
pub struct ClientSpec<'a> {
    pub url: &'a Setting,
    pub client_id: Option<&'a Setting>,
    pub clean_session: bool,
    pub username: Option<&'a Setting>,
    pub password: Option<&'a Setting>,
    pub version: Option<&'a serde_yaml::Value>,
    pub tls: Option<&'a MqttTls>,
    pub keep_alive: Option<&'a String>,
}

macro_rules! client_view {
    ($t:ty) => {
        impl $t {
            pub fn client(&self) -> ClientSpec<'_> {
                ClientSpec {
                    url: &self.url,
                    client_id: self.client_id.as_ref(),
                    clean_session: self.clean_session,
                    username: self.username.as_ref(),
                    password: self.password.as_ref(),
                    version: self.version.as_ref(),
                    tls: self.tls.as_ref(),
                    keep_alive: self.keep_alive.as_ref(),
                }
            }
        }
    };
}

client_view!(MqttSource);
client_view!(MqttSink);

/// `tls:` for `mqtts://`: the CA to trust (the system's otherwise), and a client
/// certificate and key for mutual TLS (PEM files).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ ca: ca.pem }`")]
pub struct MqttTls {
    pub ca: Option<Setting>,
    pub cert: Option<Setting>,
    pub key: Option<Setting>,
}

/// `metadata: { topic: device_topic }`: which field receives which piece of a message's
/// metadata.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ topic: device_topic }`")]
pub struct MqttMetadata {
    pub topic: Option<String>,
    pub qos: Option<String>,
    pub retain: Option<String>,
}
