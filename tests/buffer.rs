//! Disk buffers end to end: a Kafka sink with `buffer: { type: disk }` against a real
//! tansu broker (`tests/support/kafka.rs`): an outage while records flow, a disk that
//! fills up, and a damaged buffer found by `state check` and repaired.
//!
//! `cargo test -p rill --test buffer` (tansu from `scripts/kafka-setup`; the disk-full
//! test mounts a tmpfs, which needs root, as `tests/faults.rs` does).

mod support;

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::TcpListener;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::kafka::{Broker, Running};

const TOPIC: &str = "buffered_out";

/// One item line per id.
fn items(ids: Range<i64>) -> String {
    ids.map(|id| format!("{}\n", json!({"id": id, "body": format!("item number {id}")})))
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().append(true).create(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The buffer folder of the sink `out` in a state directory.
fn buffer_dir(state: &Path) -> PathBuf {
    state.join("buffers").join("sinks.out")
}

/// The segment files of the buffer, oldest first.
fn segments(state: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(buffer_dir(state))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    found.sort();
    found
}

fn segment_bytes(state: &Path) -> u64 {
    segments(state)
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// The ids of the messages consumed, in the order the topic holds them.
fn consumed_ids(broker: &Broker, expected: usize, limit: Duration) -> Vec<i64> {
    broker
        .consume(TOPIC, expected, limit)
        .iter()
        .map(|c| {
            let v: Value = serde_json::from_str(&c.value).unwrap_or_else(|e| panic!("{e}: {}", c.value));
            v["id"].as_i64().unwrap()
        })
        .collect()
}

/// `<binary> state check STATE [--repair]`.
fn state_check(bin: &Path, state: &Path, repair: bool) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(["state", "check"]).arg(state);
    if repair {
        cmd.arg("--repair");
    }
    cmd.output().unwrap()
}

/// A port nothing listens on: a broker that is not there.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("127.0.0.1:{port}")
}

fn env(brokers: String, state: &Path, items: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BROKERS", brokers),
        ("RILL_STATE_DIR", state.display().to_string()),
        ("ITEMS", items.display().to_string()),
    ]
}

fn wait_until(what: &str, limit: Duration, running: &Running, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < limit,
            "gave up waiting for {what}:\n{}",
            running.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn counters(log: &str) -> serde_json::Map<String, Value> {
    support::counters(log.as_bytes())
}

#[test]
fn a_broker_outage_while_records_flow_loses_nothing_and_repeats_nothing() {
    let broker = Broker::start();
    broker.create_topic(TOPIC, 1);
    let bin = support::build("tests/pipelines/kafka_buffered.yaml");
    let dir = support::workdir("buffer_outage");
    let (state, input) = (dir.join("state"), dir.join("items.jsonl"));
    append(&input, "");
    let mut running = Running::start(&bin, &env(broker.bootstrap(), &state, &input), &dir);
    running.wait_for_line("pipeline started", Duration::from_secs(30));
    append(&input, &items(0..1000));
    assert_eq!(consumed_ids(&broker, 1000, Duration::from_secs(60)).len(), 1000);
    // The broker goes away for 10 s while 3,000 more records arrive.
    let frozen = broker.freeze();
    for start in (1000..4000).step_by(300) {
        append(&input, &items(start..start + 300));
        thread::sleep(Duration::from_secs(1));
    }
    // Everything that arrived is in the buffer (far more than the client takes in flight).
    let framed_at_least = 3000 * 40;
    wait_until(
        "the buffer to hold the outage's records",
        Duration::from_secs(30),
        &running,
        || segment_bytes(&state) >= framed_at_least,
    );
    drop(frozen);
    append(&input, &items(4000..5000));
    let ids = consumed_ids(&broker, 5000, Duration::from_secs(180));
    assert_eq!(ids.len(), 5000, "{}", running.log());
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");
    // Read again after the stop: nothing arrived twice, everything in order.
    let ids = consumed_ids(&broker, 5001, Duration::from_secs(5));
    assert_eq!(ids, (0..5000).collect::<Vec<i64>>(), "in order, none twice");
    let c = counters(&log);
    assert_eq!(
        (
            support::counter(&c, "sinks.out", "received"),
            support::counter(&c, "sinks.out", "sent"),
            support::counter(&c, "sinks.out", "dropped"),
            support::counter(&c, "sinks.out", "dead_lettered"),
        ),
        (5000, 5000, 0, 0),
        "{log}"
    );
    assert!(segments(&state).is_empty(), "no segment is left once all is delivered");
    let check = state_check(&bin, &state, false);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("buffer sinks.out: empty"), "{report}");
}

#[test]
fn a_full_disk_with_the_broker_away_drops_the_oldest_and_leaves_a_sound_buffer() {
    let bin = support::build("tests/pipelines/kafka_buffered_drop.yaml");
    let dir = support::workdir("buffer_disk_full");
    let (state, input) = (dir.join("state"), dir.join("items.jsonl"));
    // The buffers (not the checkpoints) live on a 5 MiB disk; the buffer's own limit
    // (16 MiB, in segments of 2 MiB) is never what stops it.
    let _disk = support::TinyDisk::mount(&state.join("buffers"), 5 * 1024);
    append(&input, "");
    let mut running = Running::start(&bin, &env(closed_port(), &state, &input), &dir);
    running.wait_for_line("pipeline started", Duration::from_secs(30));
    append(&input, &items(0..120_000));
    let full = running.wait_for_line(
        "buffer full: the oldest undelivered records were dropped (when_full: drop_oldest)",
        Duration::from_secs(120),
    );
    assert_eq!(full["why"], "the disk is full", "{full}");
    let (status, log) = running.stop();
    assert!(status.success(), "no crash:\n{log}");
    let c = counters(&log);
    let dropped = support::counter(&c, "sinks.out", "dropped");
    assert!(dropped > 0 && dropped < 120_000, "{dropped}\n{log}");
    assert_eq!(support::counter(&c, "sinks.out", "sent"), 0);
    let check = state_check(&bin, &state, false);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "the buffer is sound:\n{report}");
    assert!(report.contains("every CRC ok"), "{report}");
}

/// Offsets of the frames in a segment's bytes (`[len u32 LE][crc u32 LE][bytes]`).
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        offsets.push(at);
        at += 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    offsets
}

#[test]
fn a_damaged_buffer_is_reported_repaired_and_what_came_before_is_delivered() {
    let bin = support::build("tests/pipelines/kafka_buffered.yaml");
    let dir = support::workdir("buffer_damaged");
    let (state, input) = (dir.join("state"), dir.join("items.jsonl"));
    append(&input, "");
    // No broker: 100 records wait in the buffer, and stay there at the stop.
    let mut running = Running::start(&bin, &env(closed_port(), &state, &input), &dir);
    running.wait_for_line("pipeline started", Duration::from_secs(30));
    append(&input, &items(0..100));
    wait_until("100 records in the buffer", Duration::from_secs(30), &running, || {
        segments(&state)
            .first()
            .is_some_and(|s| frame_offsets(&fs::read(s).unwrap_or_default()).len() == 100)
    });
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("buffer: undelivered records stay in the buffer for the next start"),
        "{log}"
    );
    // Damage: a flipped byte inside record 40, and the last record cut short.
    let segment = segments(&state).remove(0);
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = fs::read(&segment).unwrap();
    let offsets = frame_offsets(&bytes);
    let (flipped, last) = (offsets[40], offsets[99]);
    let flipped_len = offsets[41] - flipped;
    bytes[flipped + 20] ^= 0x08;
    bytes.truncate(last + 11);
    fs::write(&segment, &bytes).unwrap();

    let check = state_check(&bin, &state, false);
    let report = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!(
            "{name}: DAMAGED at offset {flipped}: {flipped_len} bytes (a CRC mismatch), in the middle"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "{name}: DAMAGED at offset {last}: 11 bytes (a record cut short), the tail: 1 record lost"
        )),
        "{report}"
    );
    let repaired = state_check(&bin, &state, true);
    let report = String::from_utf8_lossy(&repaired.stdout);
    assert!(repaired.status.success(), "{report}");
    assert!(
        report.contains("repaired: cut off, lost 1 record (11 bytes)"),
        "{report}"
    );

    // With the broker back, everything before the damage (and between) is delivered.
    let broker = Broker::start();
    broker.create_topic(TOPIC, 1);
    let mut running = Running::start(&bin, &env(broker.bootstrap(), &state, &input), &dir);
    running.wait_for_line("pipeline started", Duration::from_secs(30));
    let ids = consumed_ids(&broker, 98, Duration::from_secs(60));
    let want: Vec<i64> = (0..99).filter(|&id| id != 40).collect();
    assert_eq!(ids, want, "{}", running.log());
    wait_until("the buffer to be delivered", Duration::from_secs(30), &running, || {
        fs::read(buffer_dir(&state).join("delivered")).is_ok_and(|b| b.len() == 12)
    });
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("a damaged record is skipped"), "{log}");
    assert!(
        consumed_ids(&broker, 99, Duration::from_secs(3)).len() == 98,
        "none twice"
    );
}

#[test]
fn an_mqtt_broker_outage_while_records_flow_loses_nothing() {
    let dir = support::workdir("buffer_mqtt_outage");
    let mut broker = support::mqtt::Broker::start(&dir.join("broker"));
    let mut out = broker.subscribe_persistent("buffered/#", 1, "buffer-test-reader");
    let bin = support::build("tests/pipelines/mqtt_buffered.yaml");
    let (state, input) = (dir.join("state"), dir.join("items.jsonl"));
    append(&input, "");
    let env = vec![
        ("MQTT_URL", broker.url()),
        ("RILL_STATE_DIR", state.display().to_string()),
        ("ITEMS", input.display().to_string()),
    ];
    let mut running = Running::start(&bin, &env, &dir);
    running.wait_for_line("pipeline started", Duration::from_secs(30));
    append(&input, &items(0..1000));
    assert_eq!(out.wait_for(1000, Duration::from_secs(60)).len(), 1000);
    // The broker is gone for 10 s while 3,000 more records arrive.
    broker.stop();
    for start in (1000..4000).step_by(300) {
        append(&input, &items(start..start + 300));
        thread::sleep(Duration::from_secs(1));
    }
    wait_until(
        "the buffer to hold the outage's records",
        Duration::from_secs(30),
        &running,
        || segment_bytes(&state) >= 3000 * 40,
    );
    broker.restart();
    append(&input, &items(4000..5000));
    let ids = |received: &[support::mqtt::Received]| -> Vec<i64> {
        received
            .iter()
            .map(|(_, payload)| serde_json::from_str::<Value>(payload).unwrap()["id"].as_i64().unwrap())
            .collect()
    };
    let started = Instant::now();
    let mut seen = ids(&out.messages());
    while !(0..5000).all(|id| seen.contains(&id)) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} ids came out\n--- broker:\n{}\n--- pipeline:\n{}",
            seen.len(),
            broker.log_tail(),
            running.log()
        );
        thread::sleep(Duration::from_millis(100));
        seen = ids(&out.messages());
    }
    // In order: a QoS 1 resend by the client after a reconnect may repeat a message (not
    // the buffer), so the order is that of each id's first arrival.
    let mut first = Vec::new();
    for id in seen {
        if !first.contains(&id) {
            first.push(id);
        }
    }
    assert_eq!(first, (0..5000).collect::<Vec<i64>>());
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");
    let c = counters(&log);
    assert_eq!(support::counter(&c, "sinks.out", "sent"), 5000, "{log}");
    assert!(segments(&state).is_empty(), "no segment is left once all is delivered");
}
