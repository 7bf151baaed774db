//! The librdkafka properties that `tls:` and `sasl:` become, for every combination, as
//! one reviewed snapshot: `security.protocol`, the `ssl.*` files and `sasl.mechanisms`
//! are what a broker sees, and no broker in the tests offers SASL.

use super::PropertyValue;
use crate::connectors::{IrSinkKind, IrSourceKind};
use crate::validate::check_text;

/// The client options of each case (YAML lines), given to the source and to the sink.
const CASES: &[(&str, &str)] = &[
    ("none", ""),
    ("tls with the system CAs", "tls: {}"),
    ("tls", "tls: { ca: ca.pem }"),
    (
        "tls with a client certificate",
        "tls: { ca: ca.pem, cert: client.pem, key: client.key, key_password: \"${KEY_PASSWORD}\" }",
    ),
    ("tls without hostname check", "tls: { ca: ca.pem, verify_hostname: false }"),
    (
        "sasl PLAIN",
        "sasl: { mechanism: PLAIN, username: app, password: \"${KAFKA_PASSWORD}\" }",
    ),
    (
        "sasl SCRAM-SHA-256",
        "sasl: { mechanism: SCRAM-SHA-256, username: app, password: \"${KAFKA_PASSWORD}\" }",
    ),
    (
        "sasl SCRAM-SHA-512",
        "sasl: { mechanism: SCRAM-SHA-512, username: app, password: \"${KAFKA_PASSWORD}\" }",
    ),
    (
        "sasl PLAIN over tls",
        "tls: { ca: ca.pem }\nsasl: { mechanism: PLAIN, username: app, password: \"${KAFKA_PASSWORD}\" }",
    ),
    (
        "sasl SCRAM-SHA-256 over tls",
        "tls: { ca: ca.pem }\nsasl: { mechanism: SCRAM-SHA-256, username: app, password: \"${KAFKA_PASSWORD}\" }",
    ),
    (
        "sasl SCRAM-SHA-512 over tls with a client certificate",
        "tls: { ca: ca.pem, cert: client.pem, key: client.key }\nsasl: { mechanism: SCRAM-SHA-512, username: app, password: \"${KAFKA_PASSWORD}\" }",
    ),
];

/// A pipeline whose Kafka source and sink both have `options` (`tls:` and `sasl:`
/// lines, or nothing).
fn spec(options: &str) -> String {
    let indented: String = options.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "name: secure
schemas:
  e: {{ id: i64 }}
sources:
  in:
    type: kafka
    brokers: ${{KAFKA_BROKERS}}
    topics: [events]
    group_id: g
    format: json
    schema: e
{opts}sinks:
  out:
    type: kafka
    input: in
    brokers: ${{KAFKA_BROKERS}}
    topic: copied
    format: json
{opts}",
        opts = indented
    )
}

/// `name = value` per property; a setting as its key and its default (what the binary
/// resolves at start unless overridden).
fn render(properties: &[(String, PropertyValue)], settings: &[crate::ir::IrSetting]) -> String {
    let mut out = String::new();
    for (name, value) in properties {
        let value = match value {
            PropertyValue::Fixed(v) => format!("{v:?}"),
            PropertyValue::Setting(key) => {
                let default = settings.iter().find(|s| &s.key == key).map(|s| s.default.as_str());
                format!("setting {key} (default {:?})", default.unwrap_or("?"))
            }
        };
        out += &format!("  {name} = {value}\n");
    }
    out
}

#[test]
fn tls_and_sasl_become_these_librdkafka_properties() {
    let mut out = String::new();
    for (case, options) in CASES {
        let text = spec(options);
        let checked = check_text(&text);
        let problems: Vec<String> = checked.problems.iter().map(|p| p.to_string()).collect();
        let ir = checked.ir.unwrap_or_else(|| panic!("{case}: {problems:?}\n{text}"));
        assert!(problems.is_empty(), "{case}: {problems:?}");
        let IrSourceKind::Kafka(super::IrKafkaSource { properties, .. }) = &ir.sources[0].kind else {
            panic!("{case}: not a Kafka source")
        };
        out += &format!("# {case}\nsource:\n{}", render(properties, &ir.settings));
        let IrSinkKind::Kafka(super::IrKafkaSink { properties, .. }) = &ir.sinks[0].kind else {
            panic!("{case}: not a Kafka sink")
        };
        out += &format!("sink:\n{}\n", render(properties, &ir.settings));
    }
    insta::assert_snapshot!(out);
}
