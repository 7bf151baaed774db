//! End-to-end tests of the Pulsar connector against a real Pulsar-protocol broker
//! (`pulsar-lite`) started by the tests, with Apache's Python client on the other side.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use support::pulsar::Broker;

const EVENTS: &str = "persistent://public/default/events";
const PURCHASES: &str = "persistent://public/default/purchases";

fn pipeline(spec: &str, broker: &Broker) -> Command {
    let mut cmd = Command::new(support::build(spec));
    cmd.env("PULSAR_URL", broker.url())
        .env("PULSAR_PORT", broker.proxy_port().to_string())
        .env_remove("RILL_STATE_DIR");
    cmd
}

/// `n` user events: every other one a purchase, some of them of nothing.
fn events(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let user = format!("u{}", i % 7);
            let event = if i % 2 == 0 { "purchase" } else { "view" };
            let amount = if i % 10 == 0 {
                json!(null)
            } else {
                json!(i as f64 / 4.0)
            };
            json!({
                "value": json!({ "user_id": user, "event": event, "amount": amount }).to_string(),
                "key": user,
                "properties": { "n": i.to_string() },
            })
        })
        .collect()
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(now.as_millis()).unwrap()
}

#[test]
fn crc32c_of_the_test_proxy_matches_the_standard_check_value() {
    assert_eq!(support::pulsar::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn the_example_keeps_purchases_with_key_and_publish_time_and_bad_messages_are_dead_letters() {
    let broker = Broker::start(&support::workdir("pulsar-example").join("broker"));
    let started = now_ms();
    let mut sent = events(400);
    sent.push(json!({ "value": "{not json", "key": "bad", "properties": {} }));
    broker.produce(EVENTS, &sent);
    let mut running = support::start(&mut pipeline("pipelines/pulsar_events.yaml", &broker));
    running.wait_for_log_any_time("pulsar subscribed");
    let expected: Vec<(String, f64)> = (0..400)
        .filter(|i| i % 2 == 0 && i % 10 != 0)
        .map(|i| (format!("u{}", i % 7), i as f64 / 4.0))
        .collect();
    let got = broker.consume(PURCHASES, "check", expected.len(), Duration::from_secs(20));
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<Value> = got
        .iter()
        .map(|m| serde_json::from_str(m["value"].as_str().unwrap()).unwrap())
        .collect();
    let pairs: Vec<(String, f64)> = records
        .iter()
        .map(|r| {
            (
                r["user_id"].as_str().unwrap().to_string(),
                r["amount"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(pairs, expected, "in order, each once");
    for (m, r) in got.iter().zip(&records) {
        assert_eq!(m["key"], r["user_id"], "keyed by user: {m}");
        assert_eq!(m["properties"], json!({ "source": "rill" }), "{m}");
        assert_eq!(r["message_key"], r["user_id"], "the source's key metadata: {r}");
        // A timestamp is written as Unix milliseconds: the broker's clock, this run.
        let published = r["published_at"].as_i64().unwrap_or_default();
        assert!(
            published > started - 60_000 && published < started + 600_000,
            "publish time as a timestamp: {r}"
        );
    }
    let letters = support::dead_letters(&out.stderr);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["record"], "{not json");
    assert!(letters[0]["reason"].as_str().unwrap().contains(EVENTS), "{letters:?}");
    let counts = support::counters(&out.stderr);
    assert_eq!(support::counter(&counts, "sources.events", "received"), 401);
    assert_eq!(support::counter(&counts, "sources.events", "dead_lettered"), 1);
    assert_eq!(
        support::counter(&counts, "sinks.purchases_out", "sent"),
        expected.len() as u64
    );
    // Every message was acknowledged: a new consumer of the subscription gets none.
    let left = broker.consume(EVENTS, "purchases", 1, Duration::from_secs(2));
    assert_eq!(left, Vec::<Value>::new(), "acknowledged");
}
