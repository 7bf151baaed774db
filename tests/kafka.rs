//! The Kafka examples and connector behaviour, end to end against a real broker (tansu,
//! started per test) with inputs produced and outputs read by an independent client
//! (Python's confluent-kafka). Crash and consumer-group tests are in kafka_recovery.rs.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::kafka::{Broker, Consumed, Message, Running};

fn temp_dir(name: &str) -> PathBuf {
    let dir = support::cache_dir().join("kafka-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn json(c: &Consumed) -> Value {
    serde_json::from_str(&c.value).unwrap_or_else(|e| panic!("not JSON ({e}): {}", c.value))
}

fn header<'a>(c: &'a Consumed, name: &str) -> Option<&'a str> {
    c.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Waits until the pipeline wrote `expected` messages to `topic`.
fn wait_for(broker: &Broker, topic: &str, expected: usize, running: &Running) -> Vec<Consumed> {
    let out = broker.consume(topic, expected, Duration::from_secs(90));
    assert_eq!(
        out.len(),
        expected,
        "{topic}: expected {expected} messages\npipeline log:\n{}\nbroker log:\n{}",
        running.log(),
        broker.log_tail()
    );
    out
}

/// The "pipeline stopped" line's counters of `component`.
fn counters(log: &str, component: &str) -> Value {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["msg"] == "pipeline stopped")
        .map(|l| l["components"][component].clone())
        .unwrap_or_else(|| panic!("no exit summary in:\n{log}"))
}

#[test]
fn uppercase_map_job_keeps_metadata_dead_letters_bad_messages_and_commits_everything() {
    let broker = Broker::start();
    broker.create_topic("notes", 3);
    broker.create_topic("notes_upper", 3);
    let mut input: Vec<Message> = (0..600)
        .map(|i| {
            let m = Message::keyed(
                format!("k{i}"),
                json!({"id": i, "message": format!("hello {i}")}).to_string(),
            );
            if i % 2 == 0 {
                m.header("trace-id", format!("t{i}"))
            } else {
                m
            }
        })
        .collect();
    input.push(Message::value("not json"));
    input.push(Message::value(json!({"id": "seven", "message": "x"}).to_string()));
    broker.produce("notes", &input);
    let dir = temp_dir("uppercase");
    let binary = support::build("pipelines/kafka_uppercase.yaml");
    let env = [
        ("KAFKA_BROKERS", broker.bootstrap()),
        ("DEAD_LETTERS_PATH", dir.join("dead.jsonl").display().to_string()),
    ];
    let running = Running::start(&binary, &env, &dir);
    let out = wait_for(&broker, "notes_upper", 600, &running);
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");

    // Where each input landed, read back independently.
    let read_back = broker.consume("notes", 602, Duration::from_secs(30));
    let position: HashMap<i64, (i32, i64, Option<String>)> = read_back
        .iter()
        .filter_map(|c| {
            let v: Value = serde_json::from_str(&c.value).ok()?;
            Some((v["id"].as_i64()?, (c.partition, c.offset, c.key.clone())))
        })
        .collect();
    let mut seen = BTreeMap::new();
    for c in &out {
        let v = json(c);
        let id = v["id"].as_i64().expect("id");
        assert_eq!(v["message"], format!("HELLO {id}"));
        assert_eq!(c.key.as_deref(), Some(id.to_string().as_str()), "keyed by id");
        let (partition, offset, key) = &position[&id];
        assert_eq!(v["from"], format!("{partition}/{offset}"), "metadata of input {id}");
        assert_eq!(key.as_deref(), Some(format!("k{id}").as_str()));
        let trace = (id % 2 == 0).then(|| format!("t{id}"));
        assert_eq!(v["trace_id"].as_str(), trace.as_deref(), "header read into a field");
        assert_eq!(header(c, "trace-id"), trace.as_deref(), "header written from a field");
        *seen.entry(id).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 600, "every note once");

    let dead = support::json_lines(&std::fs::read(dir.join("dead.jsonl")).unwrap_or_default());
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().all(|d| d["component"] == "sources.notes"));
    // Unkeyed, so on any partitions: in no particular order.
    let mut records: Vec<&str> = dead.iter().filter_map(|d| d["record"].as_str()).collect();
    records.sort_unstable();
    assert_eq!(records, ["not json", r#"{"id":"seven","message":"x"}"#]);
    let committed: i64 = broker
        .committed("uppercase", "notes", 3)
        .iter()
        .map(|o| o.unwrap_or(0))
        .sum();
    assert_eq!(committed, 602, "bad messages are committed once dead-lettered");
    let notes = counters(&log, "sources.notes");
    assert_eq!(
        (notes["received"].as_i64(), notes["dead_lettered"].as_i64()),
        (Some(602), Some(2))
    );
}

#[test]
fn clicks_from_kafka_are_counted_per_user_and_published_keyed_by_user() {
    let broker = Broker::start();
    broker.create_topic("click_events", 3);
    broker.create_topic("click_counts", 3);
    let users = ["ana", "bo", "cy", "di", "ed", "flo", "gus"];
    let clicks: Vec<Message> = (0..350)
        .map(|i| {
            let user = users[(i * i + 3 * i) % users.len()];
            let click =
                json!({"user_id": user, "url": format!("/p{}", i % 9), "ts": 1_700_000_000_000i64 + i as i64 * 100});
            Message::keyed(user, click.to_string())
        })
        .collect();
    broker.produce("click_events", &clicks);
    let dir = temp_dir("clicks");
    let binary = support::build("pipelines/kafka_click_counts.yaml");
    let running = Running::start(&binary, &[("KAFKA_BROKERS", broker.bootstrap())], &dir);
    // The table emits every change: one row per click.
    let out = wait_for(&broker, "click_counts", 350, &running);
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");

    let mut expected: HashMap<&str, (i64, std::collections::HashSet<String>)> = HashMap::new();
    for i in 0..350usize {
        let e = expected.entry(users[(i * i + 3 * i) % users.len()]).or_default();
        e.0 += 1;
        e.1.insert(format!("/p{}", i % 9));
    }
    let mut last: HashMap<String, (i64, i64)> = HashMap::new();
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    for c in &out {
        let v = json(c);
        let user = v["user_id"].as_str().expect("user_id").to_string();
        assert_eq!(c.key.as_deref(), Some(user.as_str()), "keyed by user");
        let p = *partition_of.entry(user.clone()).or_insert(c.partition);
        assert_eq!(p, c.partition, "one user's counts stay in one partition");
        let n = v["clicks"].as_i64().expect("clicks");
        let entry = last.entry(user).or_insert((0, 0));
        assert!(n > entry.0, "counts grow in partition order: {n} after {}", entry.0);
        *entry = (n, v["pages"].as_i64().expect("pages"));
    }
    for (user, (n, pages)) in &expected {
        assert_eq!(last[*user], (*n, pages.len() as i64), "user {user}");
    }
}

#[test]
fn sensor_readings_from_a_file_go_to_a_topic_keyed_by_device() {
    let broker = Broker::start();
    broker.create_topic("sensor_readings", 3);
    let dir = temp_dir("sensors");
    let mut lines = String::new();
    let mut valid = Vec::new();
    for i in 0..400i64 {
        let temperature = if i % 25 == 0 { 150.0 } else { (i % 40) as f64 - 5.0 };
        let reading =
            json!({"device_id": format!("dev-{}", i % 11), "ts": 1_700_000_000_000i64 + i, "temperature": temperature});
        lines.push_str(&reading.to_string());
        lines.push('\n');
        if temperature < 90.0 {
            // Written with every schema field; the missing optional as null.
            let mut written = reading;
            written["humidity"] = Value::Null;
            valid.push(written);
        }
    }
    std::fs::write(dir.join("readings.jsonl"), lines).expect("input");
    let binary = support::build("pipelines/kafka_sensor_readings.yaml");
    let output = Command::new(&binary)
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("READINGS_PATH", dir.join("readings.jsonl"))
        .output()
        .expect("runs");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "a finite input ends the run, flushing the producer:\n{log}"
    );
    support::counters(&output.stderr);
    let out = broker.consume("sensor_readings", valid.len() + 1, Duration::from_secs(20));
    assert_eq!(out.len(), valid.len(), "every valid reading, nothing else");
    let mut partition_of = HashMap::new();
    let mut got = Vec::new();
    for c in &out {
        let v = json(c);
        let device = v["device_id"].as_str().expect("device").to_string();
        assert_eq!(c.key.as_deref(), Some(device.as_str()));
        assert_eq!(header(c, "source"), Some("gateway"));
        assert_eq!(*partition_of.entry(device).or_insert(c.partition), c.partition);
        got.push(v);
    }
    let key = |v: &Value| v["ts"].as_i64();
    got.sort_by_key(key);
    valid.sort_by_key(key);
    assert_eq!(got, valid);
}

/// The broker goes away mid-stream (frozen: connections hang, nothing answers) while
/// readings keep arriving through a named pipe, then comes back: every valid reading
/// reaches the topic, the run ends cleanly, and the counters add up.
#[test]
fn a_broker_that_goes_away_mid_stream_loses_nothing_when_it_comes_back() {
    use std::io::Write;
    let broker = Broker::start();
    broker.create_topic("sensor_readings", 3);
    let dir = temp_dir("sensors_outage");
    let fifo = dir.join("readings.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()));
    let binary = support::build("pipelines/kafka_sensor_readings.yaml");
    let running = Running::start(
        &binary,
        &[
            ("KAFKA_BROKERS", broker.bootstrap()),
            ("READINGS_PATH", fifo.display().to_string()),
        ],
        &dir,
    );
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .expect("the pipe opens");
    let reading = |i: i64| json!({"device_id": format!("dev-{}", i % 7), "ts": i, "temperature": 20.5}).to_string();
    for i in 0..1000 {
        writeln!(writer, "{}", reading(i)).expect("write");
    }
    writer.flush().expect("flush");
    // The first half is delivered before the outage.
    assert_eq!(
        broker.consume("sensor_readings", 1000, Duration::from_secs(30)).len(),
        1000
    );
    {
        let _outage = broker.freeze();
        for i in 1000..2000 {
            writeln!(writer, "{}", reading(i)).expect("write");
        }
        writer.flush().expect("flush");
        // The outage lasts a few seconds; the pipeline reads on and holds what it
        // cannot deliver yet.
        std::thread::sleep(Duration::from_secs(3));
    }
    drop(writer);
    let (status, log) = running.wait(Duration::from_secs(120));
    assert!(status.success(), "the input ended and everything was delivered:\n{log}");
    let counts = support::counters(log.as_bytes());
    assert_eq!(support::counter(&counts, "sinks.sensors", "sent"), 2000, "{log}");
    let out = broker.consume("sensor_readings", 2001, Duration::from_secs(20));
    let ts: std::collections::BTreeSet<i64> = out.iter().filter_map(|c| json(c)["ts"].as_i64()).collect();
    assert_eq!(ts.len(), 2000, "every reading, before and after the outage");
    assert_eq!(out.len(), 2000, "no duplicates: the producer is idempotent");
}

#[test]
fn a_failed_delivery_becomes_a_dead_letter_and_its_offset_is_still_committed() {
    let broker = Broker::start();
    broker.create_topic("route_in", 2);
    broker.create_topic("route_out", 2);
    let input: Vec<Message> = (0..50)
        .map(|i| Message::value(json!({"id": i, "body": format!("b{i}")}).to_string()))
        .collect();
    broker.produce("route_in", &input);
    let dir = temp_dir("route");
    let dead_path = dir.join("dead.jsonl");
    let binary = support::build("tests/pipelines/kafka_route.yaml");
    let env = [
        ("KAFKA_BROKERS", broker.bootstrap()),
        ("DEAD_LETTERS_PATH", dead_path.display().to_string()),
    ];
    let running = Running::start(&binary, &env, &dir);
    let out = wait_for(&broker, "route_out", 45, &running);
    // The 5 messages for the missing topic time out after 3 s.
    let started = Instant::now();
    let mut dead = Vec::new();
    while dead.len() < 5 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        dead = support::json_lines_so_far(&dead_path);
    }
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");
    assert!(out
        .iter()
        .all(|c| json(c)["id"].as_i64().is_some_and(|id| id % 10 != 0)));
    let mut dead_ids: Vec<i64> = dead
        .iter()
        .map(|d| {
            assert_eq!(d["component"], "sinks.out");
            let reason = d["reason"].as_str().unwrap_or_default();
            assert!(reason.starts_with("delivery failed: "), "{reason}");
            let record: Value = serde_json::from_str(d["record"].as_str().unwrap_or_default()).expect("JSON");
            record["id"].as_i64().expect("id")
        })
        .collect();
    dead_ids.sort_unstable();
    assert_eq!(dead_ids, vec![0, 10, 20, 30, 40], "{log}");
    let committed: i64 = broker
        .committed("route", "route_in", 2)
        .iter()
        .map(|o| o.unwrap_or(0))
        .sum();
    assert_eq!(committed, 50);
}

#[test]
fn offsets_held_by_an_open_window_are_committed_only_after_it_fires() {
    let broker = Broker::start();
    broker.create_topic("window_in", 1);
    broker.create_topic("window_out", 1);
    let event = |device: &str, ts: i64| Message::value(json!({"device": device, "ts": ts}).to_string());
    // All in the window [0, 10 s): nothing can fire yet.
    let first: Vec<Message> = (0..30)
        .map(|i| event(["a", "b", "c"][i % 3], 1_000 + i as i64 * 100))
        .collect();
    broker.produce("window_in", &first);
    let dir = temp_dir("window");
    let binary = support::build("tests/pipelines/kafka_window.yaml");
    let mut running = Running::start(&binary, &[("KAFKA_BROKERS", broker.bootstrap())], &dir);
    // Until the first window fires, nothing may be committed: once the partition is
    // assigned, the 30 records are read at once; 3 s are 15 commit intervals.
    let line = running.wait_for_line("kafka partitions assigned", Duration::from_secs(60));
    assert_eq!(assigned(&line), ["window_in/0"], "{}", running.log());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        broker.committed("window", "window_in", 1),
        vec![None],
        "records held in an open window were committed:\n{}",
        running.log()
    );
    // A record at 25 s moves the watermark past 10 s: the window fires.
    broker.produce("window_in", &[event("a", 25_000)]);
    let out = wait_for(&broker, "window_out", 3, &running);
    let mut counts: Vec<(String, i64)> = out
        .iter()
        .map(|c| {
            let v = json(c);
            (
                v["device"].as_str().unwrap_or_default().to_string(),
                v["n"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(counts, vec![("a".into(), 10), ("b".into(), 10), ("c".into(), 10)]);
    let started = Instant::now();
    let mut committed = vec![None];
    while committed != vec![Some(30)] && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
        committed = broker.committed("window", "window_in", 1);
    }
    assert_eq!(
        committed,
        vec![Some(30)],
        "the fired window's records are committed; the record at 25 s is still held"
    );
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");
    // Stopping fires the open window, delivers it, then commits the rest.
    assert_eq!(broker.committed("window", "window_in", 1), vec![Some(31)]);
    assert_eq!(broker.consume("window_out", 4, Duration::from_secs(20)).len(), 4);
}

#[test]
fn librdkafka_is_linked_statically_and_only_into_kafka_pipelines() {
    let kafka = support::build("pipelines/kafka_uppercase.yaml");
    let ldd = Command::new("ldd").arg(&kafka).output().expect("ldd runs");
    let libraries = String::from_utf8_lossy(&ldd.stdout);
    for dynamic in ["rdkafka", "libssl", "libcrypto", "libz", "libzstd", "liblz4"] {
        assert!(
            !libraries.contains(dynamic),
            "{dynamic} is linked dynamically:\n{libraries}"
        );
    }
    let contains = |binary: &Path, needle: &[u8]| {
        let bytes = std::fs::read(binary).expect("binary");
        bytes.windows(needle.len()).any(|w| w == needle)
    };
    assert!(
        contains(&kafka, b"enable.idempotence"),
        "librdkafka is inside the binary"
    );
    // Built by `rill build` (the examples of `pipelines/` come from one shared build).
    let plain = support::build("tests/pipelines/shout_lines.yaml");
    assert!(
        !contains(&plain, b"enable.idempotence"),
        "a pipeline without Kafka links none of it"
    );
}

/// The partitions in a "kafka partitions assigned" line, as `topic/partition`, sorted.
fn assigned(line: &Value) -> Vec<String> {
    let mut parts: Vec<String> = line["partitions"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('@').next().unwrap_or_default().to_string())
        .collect();
    parts.sort();
    parts
}

/// Waits until a pipeline that starts at the end of each partition (`start: latest`)
/// reads new messages on every partition of `topics` (name, partition count), and
/// returns how many messages it wrote to `out` meanwhile. A message produced before a
/// partition's start position was looked up is skipped, so a probe (body `probe`) goes
/// to each partition not yet heard from, again every round.
fn wait_until_reading(broker: &Broker, running: &Running, topics: &[(&str, i32)], out: &str) -> usize {
    let mut silent: Vec<(&str, i32)> = topics
        .iter()
        .flat_map(|&(topic, n)| (0..n).map(move |p| (topic, p)))
        .collect();
    let started = Instant::now();
    let mut written = 0;
    while !silent.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no probe came out of {silent:?} within 90 s\npipeline log:\n{}",
            running.log()
        );
        for &(topic, p) in &silent {
            let probe = json!({"id": -1, "body": format!("probe {topic}/{p}")});
            broker.produce(topic, &[Message::value(probe.to_string()).partition(p)]);
        }
        let outputs = broker.consume(out, usize::MAX / 2, Duration::from_secs(2));
        written = outputs.len();
        let heard: Vec<String> = outputs
            .iter()
            .filter_map(|c| json(c)["body"].as_str().map(str::to_string))
            .collect();
        silent.retain(|(topic, p)| !heard.contains(&format!("probe {topic}/{p}")));
    }
    written
}

/// The outputs of `kafka_pattern.yaml` that are not probes, as (topic, id), sorted.
fn pattern_outputs(outputs: &[Consumed]) -> Vec<(String, i64)> {
    let mut got: Vec<(String, i64)> = outputs
        .iter()
        .map(json)
        .filter(|v| !v["body"].as_str().unwrap_or_default().starts_with("probe"))
        .map(|v| {
            let id = v["id"].as_i64().expect("id");
            assert_eq!(v["body"], format!("b{id}"), "{v}");
            (v["topic"].as_str().expect("topic").to_string(), id)
        })
        .collect();
    got.sort();
    got
}

fn pattern_inputs(ids: std::ops::Range<i64>) -> Vec<Message> {
    ids.map(|id| Message::value(json!({"id": id, "body": format!("b{id}")}).to_string()))
        .collect()
}

#[test]
fn a_topic_pattern_reads_every_matching_topic_and_no_other() {
    let broker = Broker::start();
    let topics = [("events-a", 2), ("events-b", 1), ("other-events", 1), ("xevents-c", 1)];
    for (topic, partitions) in topics {
        broker.create_topic(topic, partitions as u32);
    }
    broker.create_topic("pattern_out", 1);
    let dir = temp_dir("pattern");
    let binary = support::build("tests/pipelines/kafka_pattern.yaml");
    let mut running = Running::start(&binary, &[("KAFKA_BROKERS", broker.bootstrap())], &dir);
    let line = running.wait_for_line("kafka partitions assigned", Duration::from_secs(60));
    assert_eq!(
        assigned(&line),
        ["events-a/0", "events-a/1", "events-b/0"],
        "`^events-.*` matches events-a and events-b only"
    );
    let probes = wait_until_reading(&broker, &running, &topics[..2], "pattern_out");
    for (i, (topic, _)) in topics.iter().enumerate() {
        let base = i as i64 * 1000;
        broker.produce(topic, &pattern_inputs(base..base + 30));
    }
    wait_for(&broker, "pattern_out", probes + 60, &running);
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");

    let outputs = broker.consume("pattern_out", probes + 61, Duration::from_secs(5));
    let mut expected: Vec<(String, i64)> = (0..30)
        .map(|i| ("events-a".to_string(), i))
        .chain((1000..1030).map(|i| ("events-b".to_string(), i)))
        .collect();
    expected.sort();
    assert_eq!(
        pattern_outputs(&outputs),
        expected,
        "each matching message once, with its topic"
    );
}

#[test]
fn start_latest_skips_what_the_topic_held_before_the_group_started() {
    let broker = Broker::start();
    broker.create_topic("events-a", 2);
    broker.create_topic("pattern_out", 1);
    broker.produce("events-a", &pattern_inputs(0..50));
    let dir = temp_dir("latest");
    let binary = support::build("tests/pipelines/kafka_pattern.yaml");
    let mut running = Running::start(&binary, &[("KAFKA_BROKERS", broker.bootstrap())], &dir);
    running.wait_for_line("kafka partitions assigned", Duration::from_secs(60));
    let probes = wait_until_reading(&broker, &running, &[("events-a", 2)], "pattern_out");
    broker.produce("events-a", &pattern_inputs(100..150));
    wait_for(&broker, "pattern_out", probes + 50, &running);
    let (status, log) = running.stop();
    assert!(status.success(), "{log}");

    let outputs = broker.consume("pattern_out", probes + 51, Duration::from_secs(5));
    let expected: Vec<(String, i64)> = (100..150).map(|i| ("events-a".to_string(), i)).collect();
    assert_eq!(
        pattern_outputs(&outputs),
        expected,
        "only what was produced after the start: the 50 earlier messages are skipped"
    );
}
