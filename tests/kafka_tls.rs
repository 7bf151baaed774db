//! Kafka over TLS end to end. stunnel terminates TLS in front of the test broker
//! (`support::tls`) with a CA and a server certificate the test generates, and the broker
//! advertises stunnel's port, so every connection after bootstrap is TLS too. The
//! relay `tests/pipelines/kafka_tls.yaml` trusts the CA in `KAFKA_CA`.
//!
//! SASL is not exercised here: tansu offers no SASL mechanism. The properties that
//! `tls:` and `sasl:` become are snapshotted in `compiler/src/validate/kafka/tests.rs`.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::kafka::{Broker, Message, Running};
use support::tls::Certs;

const TLS_RELAY: &str = "tests/pipelines/kafka_tls.yaml";

fn temp_dir(name: &str) -> PathBuf {
    let dir = support::cache_dir().join("kafka-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn inputs(n: i64) -> Vec<Message> {
    (0..n)
        .map(|id| Message::value(json!({"id": id, "body": format!("b{id}")}).to_string()))
        .collect()
}

#[test]
fn records_flow_over_tls_to_a_broker_whose_certificate_the_ca_signed() {
    let dir = temp_dir("tls");
    let certs = Certs::generate(&dir.join("certs"));
    let broker = Broker::start_tls(&certs);
    broker.create_topic("tls_in", 2);
    broker.create_topic("tls_out", 2);
    broker.produce("tls_in", &inputs(200));
    let env = [
        ("KAFKA_BROKERS", broker.bootstrap()),
        ("KAFKA_CA", certs.ca.display().to_string()),
    ];
    let running = Running::start(&support::build(TLS_RELAY), &env, &dir);
    let out = broker.consume("tls_out", 200, Duration::from_secs(90));
    let (status, log) = running.stop();
    assert!(status.success(), "{log}\nbroker log:\n{}", broker.log_tail());
    let ids: BTreeSet<i64> = out
        .iter()
        .map(|c| {
            let v: Value = serde_json::from_str(&c.value).expect("JSON");
            v["id"].as_i64().expect("id")
        })
        .collect();
    assert_eq!(ids, (0..200).collect(), "every record, over TLS\n{log}");
    let committed: i64 = broker.committed("tls", "tls_in", 2).iter().flatten().sum();
    assert_eq!(committed, 200, "offsets committed over TLS");
    assert!(!log.contains("kafka client error"), "{log}");
}

#[test]
fn a_broker_certificate_from_another_ca_ends_the_run_with_a_tls_error() {
    let dir = temp_dir("tls_wrong_ca");
    let certs = Certs::generate(&dir.join("certs"));
    let broker = Broker::start_tls(&certs);
    broker.create_topic("tls_in", 1);
    broker.create_topic("tls_out", 1);
    broker.produce("tls_in", &inputs(10));
    let env = [
        ("KAFKA_BROKERS", broker.bootstrap()),
        ("KAFKA_CA", certs.other_ca.display().to_string()),
    ];
    let running = Running::start(&support::build(TLS_RELAY), &env, &dir);
    let (status, log) = running.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "a run error, not a retry loop:\n{log}");
    let failed = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["msg"] == "pipeline failed")
        .unwrap_or_else(|| panic!("no `pipeline failed` line:\n{log}"));
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("TLS with the Kafka broker failed") && error.contains("certificate verify failed"),
        "the error names the TLS problem: {error}"
    );
    assert!(error.contains("`ca`"), "and the option to check: {error}");
    assert_eq!(broker.consume("tls_out", 1, Duration::from_secs(3)).len(), 0);
}
