//! Kafka options shared by the source and the sink: brokers, TLS, SASL and raw
//! librdkafka properties. Every value is a [`Setting`], resolved when the binary starts.

use std::collections::BTreeMap;

use crate::spec::Setting;

/// `tls:` — encrypt the connection, optionally with a client certificate.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ ca: ca.pem }`")]
pub struct TlsSpec {
    /// CA certificate(s) to verify the brokers with (a PEM file); the system's otherwise.
    pub ca: Option<Setting>,
    /// Client certificate and private key (PEM files), for mutual TLS.
    pub cert: Option<Setting>,
    pub key: Option<Setting>,
    /// Password of `key`: a secret, so only `${VAR}`.
    pub key_password: Option<Setting>,
    /// Check that the broker's certificate names the host connected to (default true).
    pub verify_hostname: Option<bool>,
}

/// `sasl:` — authenticate with a user name and password.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ mechanism: SCRAM-SHA-256, username: app, password: \"${KAFKA_PASSWORD}\" }`")]
pub struct SaslSpec {
    pub mechanism: SaslMechanism,
    pub username: Setting,
    /// A secret, so only `${VAR}`.
    pub password: Setting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(expecting = "one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// What both ends need to reach the cluster (fields of the source and sink specs:
/// serde's `flatten` cannot be combined with `deny_unknown_fields`).
#[derive(Debug, Clone, Copy)]
pub struct KafkaClientSpec<'a> {
    /// `host:port[,host:port..]`.
    pub brokers: &'a Setting,
    pub tls: Option<&'a TlsSpec>,
    pub sasl: Option<&'a SaslSpec>,
    /// Any other librdkafka property, passed through.
    pub properties: &'a BTreeMap<String, Setting>,
}
