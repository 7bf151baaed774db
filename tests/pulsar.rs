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
    assert_eq!(support::pulsar::proxy::crc32c(b"123456789"), 0xE306_9283);
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

/// Values of every message on `topics` read by the subscription `check`, until `n` came
/// or none came for `idle`.
fn read_all(broker: &Broker, topics: &[&str], n: usize, idle: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    for topic in topics {
        got.extend(broker.consume(topic, "check", n.saturating_sub(got.len()).max(1), idle));
    }
    got
}

#[test]
fn sigkill_mid_stream_loses_nothing_and_records_go_to_the_topic_each_names() {
    let dir = support::workdir("pulsar-kill");
    let broker = Broker::start(&dir.join("broker"));
    const N: usize = 12_000;
    let messages: Vec<Value> = (0..N)
        .map(|n| {
            let tag = if n % 3 == 0 { "a" } else { "b" };
            json!({ "value": json!({ "n": n, "tag": tag }).to_string(), "properties": { "origin": "py" } })
        })
        .collect();
    // Half before the first start, one by one; half in batches while the binary is
    // killed and started again.
    broker.produce("persistent://public/default/relay_in", &messages[..N / 2]);
    let producer = {
        let rest = messages[N / 2..].to_vec();
        let url_broker = Broker::attach(&broker);
        // In batches: an entry's messages must each be safe before the entry is acknowledged.
        std::thread::spawn(move || url_broker.produce_batched("persistent://public/default/relay_in", &rest, 50))
    };
    let mut rng = support::Rng(11);
    let mut kills = 0;
    for _ in 0..5 {
        let mut running = support::start(&mut pipeline("tests/pipelines/pulsar_relay.yaml", &broker));
        running.wait_for_log_any_time("pulsar subscribed");
        std::thread::sleep(Duration::from_millis(200 + rng.below(1200)));
        running.signal("KILL");
        let _ = running.wait();
        kills += 1;
    }
    producer.join().unwrap();
    let mut running = support::start(&mut pipeline("tests/pipelines/pulsar_relay.yaml", &broker));
    running.wait_for_log_any_time("pulsar subscribed");
    let topics = [
        "persistent://public/default/relay-a",
        "persistent://public/default/relay-b",
    ];
    let mut got = Vec::new();
    support::wait_until("every item relayed", || {
        got.extend(read_all(&broker, &topics, N, Duration::from_millis(500)));
        let distinct: std::collections::BTreeSet<i64> = got
            .iter()
            .map(|m| {
                serde_json::from_str::<Value>(m["value"].as_str().unwrap()).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        distinct.len() == N
    });
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(kills, 5);
    for m in &got {
        let record: Value = serde_json::from_str(m["value"].as_str().unwrap()).unwrap();
        let tag = record["tag"].as_str().unwrap();
        assert_eq!(m["topic"], format!("persistent://public/default/relay-{tag}"), "{m}");
        assert_eq!(m["key"], record["n"].to_string(), "{m}");
        assert_eq!(m["properties"], json!({ "origin": "py" }), "{m}");
        assert_eq!(record["origin"], "py", "{m}");
    }
    // At least once: what a killed binary published but had not acknowledged comes again.
    println!("{} relayed for {N} items after {kills} kills", got.len());
    // Nothing is left unacknowledged on the subscription.
    let left = broker.consume_as(
        "Shared",
        "persistent://public/default/relay_in",
        "relay",
        1,
        Duration::from_secs(2),
    );
    assert_eq!(left, Vec::<Value>::new());
}

#[test]
fn a_record_that_stops_the_run_is_acknowledged_negatively_and_comes_again() {
    let broker = Broker::start(&support::workdir("pulsar-strict").join("broker"));
    let mut values: Vec<String> = (0..50).map(|n| json!({ "n": n }).to_string()).collect();
    values.push("{oops".to_string());
    values.extend((50..60).map(|n| json!({ "n": n }).to_string()));
    broker.produce_values("persistent://public/default/strict_in", &values);
    let out = pipeline("tests/pipelines/pulsar_strict.yaml", &broker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("{oops"), "the failing record is named: {stderr}");
    assert!(
        stderr.contains("messages not yet safe downstream are sent again by the broker"),
        "{stderr}"
    );
    // What was not written before the stop comes again, the bad message with it; what
    // was written may too (at least once), and nothing is lost.
    let written: Vec<String> = support::json_lines(&out.stdout).iter().map(Value::to_string).collect();
    let again = broker.consume_as(
        "Shared",
        "persistent://public/default/strict_in",
        "strict",
        61,
        Duration::from_secs(3),
    );
    let again: Vec<String> = again.iter().map(|m| m["value"].as_str().unwrap().to_string()).collect();
    assert!(again.contains(&"{oops".to_string()), "{again:?}");
    for v in &values {
        let normal = serde_json::from_str::<Value>(v)
            .map(|v| v.to_string())
            .unwrap_or(v.clone());
        assert!(
            written.contains(&normal) || again.contains(v),
            "{v} neither written nor sent again"
        );
    }
}

#[test]
fn a_disk_buffer_keeps_what_comes_while_the_broker_is_away_and_delivers_it_in_order() {
    let dir = support::workdir("pulsar-buffered");
    let mut broker = Broker::start(&dir.join("broker"));
    let (state, items) = (dir.join("state"), dir.join("items.jsonl"));
    let append = |range| support::append_items(&items, range);
    append(0..0);
    let mut cmd = pipeline("tests/pipelines/pulsar_buffered.yaml", &broker);
    cmd.env("RILL_STATE_DIR", &state).env("ITEMS", &items);
    let running = support::start(&mut cmd);
    const TOPIC: &str = "persistent://public/default/buffered_out";
    let mut got: Vec<i64> = Vec::new();
    let mut read = |broker: &Broker, until: usize| {
        support::wait_until("records delivered", || {
            let more = broker.consume(TOPIC, "check", until - got.len(), Duration::from_millis(500));
            got.extend(more.iter().map(|m| {
                serde_json::from_str::<Value>(m["value"].as_str().unwrap()).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            }));
            got.len() >= until
        });
    };
    append(0..1000);
    read(&broker, 1000);
    // Away for about 4 s while 2,000 more records arrive: longer than the sink's
    // delivery timeout, so the buffer keeps them.
    broker.stop();
    for start in (1000..3000).step_by(500) {
        append(start..start + 500);
        std::thread::sleep(Duration::from_secs(1));
    }
    broker.restart();
    append(3000..4000);
    read(&broker, 4000);
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(got, (0..4000).collect::<Vec<i64>>(), "each once, in order");
    let counts = support::counters(&out.stderr);
    assert_eq!(support::counter(&counts, "sinks.out", "sent"), 4000);
    assert_eq!(support::counter(&counts, "sinks.out", "dead_lettered"), 0);
}

#[test]
fn a_broker_restart_under_a_running_pipeline_is_ridden_out() {
    let mut broker = Broker::start(&support::workdir("pulsar-restart").join("broker"));
    let item = |n: usize| json!({ "value": json!({ "n": n, "tag": "a" }).to_string(), "properties": {} });
    let topics = ["persistent://public/default/relay-a"];
    let distinct = |got: &[Value]| -> std::collections::BTreeSet<i64> {
        got.iter()
            .map(|m| {
                serde_json::from_str::<Value>(m["value"].as_str().unwrap()).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    broker.produce(
        "persistent://public/default/relay_in",
        &(0..2000).map(item).collect::<Vec<_>>(),
    );
    let mut running = support::start(&mut pipeline("tests/pipelines/pulsar_relay.yaml", &broker));
    running.wait_for_log_any_time("pulsar subscribed");
    let mut got = Vec::new();
    support::wait_until("the first items relayed", || {
        got.extend(read_all(&broker, &topics, 2000, Duration::from_millis(500)));
        distinct(&got).len() == 2000
    });
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    broker.restart();
    broker.produce(
        "persistent://public/default/relay_in",
        &(2000..4000).map(item).collect::<Vec<_>>(),
    );
    support::wait_until("the items sent after the restart relayed", || {
        got.extend(read_all(&broker, &topics, 4000, Duration::from_millis(500)));
        distinct(&got).len() == 4000
    });
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Said by the connector, or by the client as it reconnects by itself (after the
    // first subscription: the client's first attempt is a warning too).
    let after = &stderr[stderr.find("pulsar subscribed").unwrap()..];
    let said = after.lines().any(|line| {
        line.contains("; trying again")
            || (line.contains(r#""level":"warn""#) && line.to_lowercase().contains("disconnected"))
    });
    assert!(said, "the outage is said: {stderr}");
}

#[test]
fn building_a_pulsar_pipeline_without_protoc_says_what_to_install() {
    let dir = support::workdir("pulsar-no-protoc");
    let out = support::rill()
        .args(["build", "tests/pipelines/pulsar_strict.yaml", "-o"])
        .arg(dir.join("never-built"))
        .current_dir(support::repo())
        .env("PATH", dir.join("empty"))
        .env_remove("PROTOC")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("protoc, the Protocol Buffers compiler"), "{stderr}");
    assert!(stderr.contains("sudo apt-get install protobuf-compiler"), "{stderr}");
    assert!(!dir.join("never-built").exists());
}

/// The records a running (or killed) copy wrote to `path` so far: a line still being
/// written is left out.
fn written(path: &std::path::Path) -> Vec<Value> {
    support::json_lines_so_far(path)
}

/// The records a copy wrote to `path`, read after it stopped cleanly: a torn last line
/// fails the test.
fn written_in_full(path: &std::path::Path) -> Vec<Value> {
    support::json_lines(&std::fs::read(path).unwrap_or_default())
}

#[test]
fn copies_on_a_key_shared_subscription_split_the_keys_and_read_each_message_once() {
    let dir = support::workdir("pulsar-keyed");
    let broker = Broker::start(&dir.join("broker"));
    let outs = [dir.join("a.jsonl"), dir.join("b.jsonl")];
    let mut copies: Vec<support::Running> = outs
        .iter()
        .map(|out| {
            let mut cmd = pipeline("tests/pipelines/pulsar_keyed.yaml", &broker);
            let mut running = support::start(cmd.env("OUT", out));
            running.wait_for_log_any_time("pulsar subscribed");
            running
        })
        .collect();
    let messages: Vec<Value> = (0..2000)
        .map(|n| json!({ "value": json!({ "n": n }).to_string(), "key": format!("k{}", n % 16) }))
        .collect();
    broker.produce("persistent://public/default/keyed_in", &messages);
    support::wait_until("every message read", || {
        outs.iter().map(|o| written(o).len()).sum::<usize>() >= 2000
    });
    let mut logs = String::new();
    for running in copies.drain(..) {
        running.signal("TERM");
        let out = running.wait();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        logs.push_str(&log);
    }
    let (a, b) = (written_in_full(&outs[0]), written_in_full(&outs[1]));
    let mut all: Vec<i64> = a.iter().chain(&b).map(|r| r["n"].as_i64().unwrap()).collect();
    all.sort();
    let twice: Vec<&i64> = all.windows(2).filter(|w| w[0] == w[1]).map(|w| &w[0]).collect();
    let broker_log = std::fs::read_to_string(dir.join("broker/pulsar-lite.log")).unwrap_or_default();
    assert_eq!(
        all.len(),
        2000,
        "each message once; twice: {twice:?}; logs:\n{logs}\nbroker:\n{broker_log}"
    );
    assert_eq!(all, (0..2000).collect::<Vec<i64>>(), "each message once");
    let keys = |records: &[Value]| -> std::collections::BTreeSet<String> {
        records.iter().map(|r| r["key"].as_str().unwrap().to_string()).collect()
    };
    let (keys_a, keys_b) = (keys(&a), keys(&b));
    assert!(
        keys_a.is_disjoint(&keys_b),
        "a key goes to one copy: {keys_a:?} {keys_b:?}"
    );
    // Key_Shared keeps one key's messages in order (pulsar-lite once sent 224 before 223,
    // of two keys, to one copy).
    for records in [&a, &b] {
        let mut by_key: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
        for r in records.iter() {
            by_key
                .entry(r["key"].as_str().unwrap())
                .or_default()
                .push(r["n"].as_i64().unwrap());
        }
        for (key, ns) in &by_key {
            assert!(ns.windows(2).all(|w| w[0] < w[1]), "{key} in order: {ns:?}");
        }
    }
    println!("keys split {} / {}", keys_a.len(), keys_b.len());
}

#[test]
fn a_second_copy_on_an_exclusive_subscription_stands_by_and_takes_over() {
    let dir = support::workdir("pulsar-exclusive");
    let broker = Broker::start(&dir.join("broker"));
    let (first_out, second_out) = (dir.join("first.jsonl"), dir.join("second.jsonl"));
    let topic = "persistent://public/default/exclusive_in";
    let values =
        |range: std::ops::Range<i64>| -> Vec<String> { range.map(|n| json!({ "n": n }).to_string()).collect() };
    let mut first = support::start(pipeline("tests/pipelines/pulsar_exclusive.yaml", &broker).env("OUT", &first_out));
    first.wait_for_log_any_time("pulsar subscribed");
    broker.produce_values(topic, &values(0..500));
    support::wait_until("the first copy read them", || written(&first_out).len() >= 500);
    // A second copy is refused while the first holds the subscription: it stands by.
    let mut second = support::start(pipeline("tests/pipelines/pulsar_exclusive.yaml", &broker).env("OUT", &second_out));
    second.wait_for_log_any_time("pulsar: not subscribed");
    first.signal("TERM");
    let out = first.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    second.wait_for_log_any_time("pulsar subscribed");
    broker.produce_values(topic, &values(500..1000));
    support::wait_until("the second copy read the rest", || written(&second_out).len() >= 500);
    second.signal("TERM");
    let out = second.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // At least once: a broker may send a message twice (pulsar-lite did, to the first
    // copy, in a CI run), so these compare what was read, not how often.
    let ns = |path: &std::path::Path| -> std::collections::BTreeSet<i64> {
        written_in_full(path).iter().map(|r| r["n"].as_i64().unwrap()).collect()
    };
    assert_eq!(
        ns(&first_out),
        (0..500).collect(),
        "the first read everything before it stopped"
    );
    assert!(
        ns(&second_out).is_superset(&(500..1000).collect()),
        "the second read what came after"
    );
}

#[test]
fn on_a_failover_subscription_one_copy_reads_and_the_other_takes_over_when_it_dies() {
    let dir = support::workdir("pulsar-failover");
    let broker = Broker::start(&dir.join("broker"));
    let outs = [dir.join("a.jsonl"), dir.join("b.jsonl")];
    let topic = "persistent://public/default/failover_in";
    let mut copies: Vec<support::Running> = outs
        .iter()
        .map(|out| {
            let mut running = support::start(pipeline("tests/pipelines/pulsar_failover.yaml", &broker).env("OUT", out));
            running.wait_for_log_any_time("pulsar subscribed");
            running
        })
        .collect();
    let values =
        |range: std::ops::Range<i64>| -> Vec<String> { range.map(|n| json!({ "n": n }).to_string()).collect() };
    broker.produce_values(topic, &values(0..500));
    support::wait_until("one copy read them", || {
        outs.iter().map(|o| written(o).len()).sum::<usize>() >= 500
    });
    let active = outs.iter().position(|o| !written(o).is_empty()).unwrap();
    assert_eq!(written(&outs[1 - active]), Vec::<Value>::new(), "the other stands by");
    // The active copy dies; the other takes over with what comes next.
    let dead = copies.remove(active);
    dead.signal("KILL");
    let _ = dead.wait();
    broker.produce_values(topic, &values(500..1000));
    let standby = &outs[1 - active];
    support::wait_until("the standby read the rest", || {
        written(standby).iter().any(|r| r["n"] == 999)
    });
    let mut all: Vec<i64> = outs
        .iter()
        .flat_map(|o| written(o))
        .map(|r| r["n"].as_i64().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all, (0..1000).collect::<Vec<i64>>(), "nothing lost");
    let survivor = copies.remove(0);
    survivor.signal("TERM");
    let out = survivor.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn sigterm_while_the_broker_is_gone_stops_and_says_what_was_not_delivered() {
    let dir = support::workdir("pulsar-sigterm-gone");
    let mut broker = Broker::start(&dir.join("broker"));
    let items = dir.join("items.jsonl");
    let append = |range| support::append_items(&items, range);
    append(0..100);
    let mut cmd = pipeline("tests/pipelines/pulsar_follow.yaml", &broker);
    cmd.env("ITEMS", &items);
    let running = support::start(&mut cmd);
    let got = broker.consume(
        "persistent://public/default/follow_out",
        "check",
        100,
        Duration::from_secs(20),
    );
    assert_eq!(got.len(), 100);
    // Gone for good: the next records wait in the sink, published again and again.
    broker.stop();
    append(100..150);
    // The client retries by itself (it may not say so yet): give the records time to reach it.
    std::thread::sleep(Duration::from_secs(2));
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("still undelivered at shutdown"), "{stderr}");
    // Every record is accounted for: published before the broker went, or given up on.
    let c = support::counters(&output.stderr);
    let received = support::counter(&c, "sinks.out", "received");
    let sent = support::counter(&c, "sinks.out", "sent");
    let lost = support::counter(&c, "sinks.out", "dropped") + support::counter(&c, "sinks.out", "dead_lettered");
    assert_eq!((received, sent, lost), (150, 100, 50), "{stderr}");
}

#[test]
fn a_sink_with_a_topic_of_its_own_makes_its_producer_before_the_first_record() {
    let dir = support::workdir("pulsar-producer-at-start");
    let broker = Broker::start(&dir.join("broker"));
    let items = dir.join("items.jsonl");
    std::fs::write(&items, "").unwrap();
    let mut cmd = pipeline("tests/pipelines/pulsar_follow.yaml", &broker);
    cmd.env("ITEMS", &items);
    let mut running = support::start(&mut cmd);
    // No record yet: the producer is there all the same.
    running.wait_for_log("\"topic\":\"persistent://public/default/follow_out\"");
    support::append_items(&items, 0..3);
    let got = broker.consume(
        "persistent://public/default/follow_out",
        "check",
        3,
        Duration::from_secs(20),
    );
    assert_eq!(got.len(), 3);
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let publishing: Vec<&str> = stderr.lines().filter(|l| l.contains("pulsar: publishing")).collect();
    assert_eq!(publishing.len(), 1, "one producer, made once: {stderr}");
    let c = support::counters(&output.stderr);
    assert_eq!(support::counter(&c, "sinks.out", "sent"), 3, "{stderr}");
}
