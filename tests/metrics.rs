//! The `--metrics-addr` endpoint of generated binaries, end to end: `/metrics` scraped
//! during a run and parsed by Prometheus's own Python parser
//! (`prometheus_client.parser`, installed by `pip install prometheus_client`; the tests
//! fail without it), its counters compared with the exit log line, and `/health` while
//! the pipeline runs, while its loop is stuck on a pipe nobody reads, when a Kafka
//! broker goes away (tansu, as in `tests/kafka.rs`) and while an MQTT broker is stopped
//! (mosquitto, as in `tests/mqtt.rs`).

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// A loopback port free right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// An HTTP answer: status code, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// `GET path` on `127.0.0.1:port` with a plain socket (no client library between the
/// test and the server); `None` when nothing accepts the connection.
fn get(port: u16, path: &str) -> Option<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {raw:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// One parsed sample: its name (with `_total`), labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// `text` parsed by `prometheus_client.parser.text_string_to_metric_families`, each
/// family's declared type checked against the sample names.
fn parse_exposition(text: &str) -> Vec<Sample> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("text written");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "the Prometheus parser failed (is prometheus_client installed? `pip install prometheus_client`):\n{}\n--- text:\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("parser output");
    parsed
        .into_iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap_or_default().to_owned();
            let kind = s["type"].as_str().unwrap_or_default();
            if name.ends_with("_total") {
                assert_eq!(kind, "counter", "{name}");
            }
            Sample {
                labels: serde_json::from_value(s["labels"].clone()).unwrap_or_default(),
                value: s["value"].as_f64().unwrap_or(f64::NAN),
                name,
            }
        })
        .collect()
}

/// Scrapes `/metrics` and parses it, checking the content type.
fn scrape(port: u16) -> Vec<Sample> {
    let answer = get(port, "/metrics").expect("the endpoint answers");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&answer.body)
}

/// The value of `name{component=..}`, if exported.
fn value(samples: &[Sample], name: &str, component: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get("component").map(String::as_str) == Some(component))
        .map(|s| s.value)
}

/// Scrapes until `ready` holds for the parsed samples; returns them.
fn scrape_until(port: u16, what: &str, ready: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let mut last = Vec::new();
    support::wait_until(what, || {
        last = scrape(port);
        ready(&last)
    });
    last
}

/// Every counter of the exit log line equals the scraped one, component by component.
fn assert_counters_match(exit: &serde_json::Map<String, Value>, scraped: &[Sample], keys: &[(&str, &str)]) {
    for (component, counters) in exit {
        for (key, metric) in keys {
            let Some(expected) = counters.get(*key).and_then(Value::as_u64) else {
                continue;
            };
            assert_eq!(
                value(scraped, metric, component),
                Some(expected as f64),
                "{component} {key}: exit log says {expected}"
            );
        }
    }
}

const RECORD_COUNTERS: &[(&str, &str)] = &[
    ("received", "rill_records_received_total"),
    ("sent", "rill_records_sent_total"),
    ("filtered", "rill_records_filtered_total"),
    ("dead_lettered", "rill_records_dead_lettered_total"),
    ("dropped", "rill_records_dropped_total"),
];

/// A FIFO at `path` (`mkfifo`), so a file source stays open until the test closes it.
fn fifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Opens the FIFO for writing (once the pipeline has opened it for reading).
fn open_writer(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new().write(true).open(path).expect("fifo opens")
}

#[test]
fn a_scrape_during_the_run_parses_and_its_counters_match_the_exit_line() {
    let dir = support::workdir("metrics-counters");
    let input = dir.join("readings.fifo");
    fifo(&input);
    let binary = support::build("pipelines/hot_readings.yaml");
    let port = free_port();
    let running = support::start(
        Command::new(&binary)
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("READINGS_PATH", &input)
            .env("ALERTS_PATH", dir.join("alerts.jsonl"))
            .env_remove("RILL_METRICS_ADDR"),
    );
    let mut writer = open_writer(&input);
    let mut lines = String::new();
    let mut hot = 0;
    for i in 0..500 {
        let temperature = 15.0 + f64::from(i % 20);
        let status = if i % 7 == 0 { "error" } else { "ok" };
        if temperature > 25.0 && status == "ok" {
            hot += 1;
        }
        let reading = json!({"device_id": format!("lab-{}", i % 5), "ts": 1_700_000_000_000i64 + i64::from(i), "temperature": temperature, "status": status});
        lines.push_str(&format!("{reading}\n"));
    }
    lines.push_str("not json\n");
    writer.write_all(lines.as_bytes()).expect("written");
    writer.flush().expect("flushed");
    let payload_bytes: usize = lines.lines().map(str::len).sum();

    let scraped = scrape_until(port, "every reading counted", |s| {
        value(s, "rill_records_sent_total", "sinks.alerts") == Some(f64::from(hot))
            && value(s, "rill_records_dead_lettered_total", "sources.readings") == Some(1.0)
            && value(s, "rill_records_sent_total", "dead_letters") == Some(1.0)
    });
    assert_eq!(
        value(&scraped, "rill_records_received_total", "sources.readings"),
        Some(501.0)
    );
    assert_eq!(
        value(&scraped, "rill_source_bytes_read_total", "sources.readings"),
        Some(payload_bytes as f64)
    );
    assert!(
        value(&scraped, "rill_records_filtered_total", "transforms.hot").is_some_and(|n| n > 0.0),
        "the filter's counts are exported"
    );
    let one = |name: &str| scraped.iter().find(|s| s.name == name).cloned();
    assert!(one("process_resident_memory_bytes").is_some_and(|s| s.value > 1e5));
    assert!(one("process_start_time_seconds").is_some_and(|s| s.value > 1.6e9));
    assert!(one("rill_uptime_seconds").is_some_and(|s| s.value >= 0.0));
    let build = one("rill_build_info").expect("build info");
    assert_eq!(build.value, 1.0);
    assert_eq!(build.labels.get("pipeline").map(String::as_str), Some("hot_readings"));
    assert!(build.labels.get("spec_hash").is_some_and(|h| !h.is_empty()));

    let health = get(port, "/health").expect("health answers");
    assert_eq!(health.status, 200, "{}", health.body);
    let body: Value = serde_json::from_str(&health.body).expect("JSON");
    assert_eq!(body["status"], "ok");
    assert_eq!(get(port, "/nothing").map(|a| a.status), Some(404));

    // Every record is through: closing the input ends the run without counting more.
    drop(writer);
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exit = support::counters(&out.stderr);
    assert!(exit.contains_key("transforms.enriched"), "{exit:?}");
    assert_counters_match(&exit, &scraped, RECORD_COUNTERS);
}

#[test]
fn a_window_exports_keys_held_watermark_and_late_records_and_the_env_variable_turns_it_on() {
    let dir = support::workdir("metrics-window");
    let input = dir.join("events.fifo");
    fifo(&input);
    let binary = support::build("pipelines/events_per_window.yaml");
    let port = free_port();
    let running = support::start(
        Command::new(&binary)
            .env("RILL_METRICS_ADDR", format!("127.0.0.1:{port}"))
            .env("EVENTS_PATH", &input)
            .env("COUNTS_PATH", dir.join("counts.csv")),
    );
    let mut writer = open_writer(&input);
    let event = |kind: &str, ts: i64| format!("{}\n", json!({"kind": kind, "ts": ts, "bytes": 10}));
    let mut text = String::new();
    for (i, kind) in ["a", "b", "c", "a"].iter().enumerate() {
        text.push_str(&event(kind, 1_000 * (i as i64 + 1)));
    }
    // Watermark 25 s − 1 s: the first window fires, two keys are held in [20 s, 30 s).
    text.push_str(&event("a", 25_000));
    text.push_str(&event("b", 24_000));
    // Its window closed long ago: late.
    text.push_str(&event("c", 2_000));
    writer.write_all(text.as_bytes()).expect("written");
    writer.flush().expect("flushed");

    let w = "windows.per_kind";
    let scraped = scrape_until(port, "the window's state sampled", |s| {
        value(s, "rill_records_late_total", w) == Some(1.0)
            && value(s, "rill_records_received_total", w) == Some(7.0)
            && value(s, "rill_state_keys", w) == Some(2.0)
            && value(s, "rill_records_sent_total", "dead_letters") == Some(1.0)
    });
    assert_eq!(value(&scraped, "rill_watermark_seconds", w), Some(24.0));
    assert!(
        value(&scraped, "rill_watermark_lag_seconds", w).is_some_and(|lag| lag > 1e9),
        "events from 1970 trail the wall clock by decades"
    );
    assert!(value(&scraped, "rill_state_bytes", w).is_some_and(|b| b > 0.0));
    assert_eq!(value(&scraped, "rill_records_emitted_total", w), Some(3.0));
    assert_eq!(value(&scraped, "rill_records_aggregated_total", w), Some(6.0));
    assert_eq!(
        value(&scraped, "rill_state_keys", "sources.events"),
        None,
        "state only on windows"
    );

    drop(writer);
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exit = support::counters(&out.stderr);
    // Closing fires the two open windows: only the emitted results and what the sink
    // wrote grow after the scrape.
    assert_eq!(support::counter(&exit, w, "emitted"), 5);
    assert_eq!(support::counter(&exit, "sinks.counts", "sent"), 5);
    let mut unchanged = exit.clone();
    unchanged.remove("sinks.counts");
    if let Some(Value::Object(window)) = unchanged.get_mut(w) {
        window.remove("sent");
    }
    assert_counters_match(
        &unchanged,
        &scraped,
        &[
            ("received", "rill_records_received_total"),
            ("filtered", "rill_records_filtered_total"),
            ("dead_lettered", "rill_records_dead_lettered_total"),
            ("dropped", "rill_records_dropped_total"),
            ("aggregated", "rill_records_aggregated_total"),
            ("late", "rill_records_late_total"),
        ],
    );
}

#[test]
fn a_loop_stuck_on_a_pipe_nobody_reads_is_unhealthy() {
    let binary = support::build("pipelines/quickstart.yaml");
    let port = free_port();
    let running = support::start_unread(
        Command::new(&binary)
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("READINGS", "100000000"),
    );
    let mut last = None;
    support::wait_until("/health to say 503", || {
        last = get(port, "/health");
        last.as_ref().is_some_and(|a| a.status == 503)
    });
    let body: Value = serde_json::from_str(&last.expect("an answer").body).expect("JSON");
    assert_eq!(body["status"], "unhealthy");
    let reasons = body["reasons"].as_array().cloned().unwrap_or_default();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.starts_with("no progress"))),
        "{body}"
    );
    // Metrics are still served while the loop is stuck.
    assert!(scrape(port).iter().any(|s| s.name == "rill_build_info"));
    drop(running);
}

#[test]
fn without_the_option_nothing_listens_and_a_bad_address_is_a_start_error() {
    let dir = support::workdir("metrics-off");
    let input = dir.join("events.fifo");
    fifo(&input);
    let binary = support::build("pipelines/events_per_window.yaml");
    let running = support::start(
        Command::new(&binary)
            .env_remove("RILL_METRICS_ADDR")
            .env("EVENTS_PATH", &input)
            .env("COUNTS_PATH", dir.join("counts.csv")),
    );
    let writer = open_writer(&input);
    // Its own sockets (the idle wake-up is a Unix socket pair), and which of them are
    // TCP or UDP: none may be.
    let pid = running.child.id();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("its fds");
    let sockets: Vec<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.display().to_string();
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut inet = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            // The inode is the tenth column.
            if let Some(inode) = line.split_whitespace().nth(9) {
                if sockets.iter().any(|s| s == inode) {
                    inet.push(format!("{table}: {line}"));
                }
            }
        }
    }
    assert_eq!(
        inet,
        Vec::<String>::new(),
        "no TCP or UDP socket open without --metrics-addr"
    );
    drop(writer);
    let _ = running.wait();

    let quickstart = support::build("pipelines/quickstart.yaml");
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
    let taken_port = taken.local_addr().expect("address").port().to_string();
    for (addr, says) in [
        ("not-an-address", "cannot serve metrics on `not-an-address`"),
        ("127.0.0.1:99999", "cannot serve metrics on `127.0.0.1:99999`"),
        (
            &format!("127.0.0.1:{taken_port}"),
            "cannot serve metrics on `127.0.0.1:",
        ),
    ] {
        let out = Command::new(&quickstart)
            .args(["--metrics-addr", addr])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr}: {stderr}");
        assert!(stderr.contains(says), "{addr}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty(), "{addr}: nothing ran");
    }
    let out = Command::new(&quickstart)
        .env("RILL_METRICS_ADDR", format!("127.0.0.1:{taken_port}"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "the variable is checked the same way");
    let help = Command::new(&quickstart).arg("--help").output().expect("runs");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--metrics-addr ADDR"));
}

#[test]
fn health_turns_503_when_the_kafka_broker_goes_away() {
    use support::kafka::{Broker, Message, Running};
    let broker = Broker::start();
    broker.create_topic("notes", 1);
    broker.create_topic("notes_upper", 1);
    broker.produce(
        "notes",
        &[Message::value(json!({"id": 1, "message": "hi"}).to_string())],
    );
    let dir = support::workdir("metrics-kafka");
    let binary = support::build("pipelines/kafka_uppercase.yaml");
    let port = free_port();
    let env = [
        ("KAFKA_BROKERS", broker.bootstrap()),
        ("KAFKA_GROUP", "metrics".to_owned()),
        ("DEAD_LETTERS_PATH", dir.join("dead.jsonl").display().to_string()),
        ("RILL_METRICS_ADDR", format!("127.0.0.1:{port}")),
    ];
    let mut running = Running::start(&binary, &env, &dir);
    running.wait_for_line("pipeline started", Duration::from_secs(60));
    let scraped = scrape_until(port, "the message relayed", |s| {
        value(s, "rill_records_sent_total", "sinks.loud") == Some(1.0)
    });
    assert_eq!(value(&scraped, "rill_source_connected", "sources.notes"), Some(1.0));
    assert_eq!(value(&scraped, "rill_sink_queue_length", "sinks.loud"), Some(0.0));
    let health = get(port, "/health").expect("health answers");
    assert_eq!(health.status, 200, "{}\n{}", health.body, running.log());

    drop(broker);
    let mut last = None;
    support::wait_until("/health to say 503", || {
        last = get(port, "/health");
        last.as_ref().is_some_and(|a| a.status == 503)
    });
    let body: Value = serde_json::from_str(&last.expect("an answer").body).expect("JSON");
    assert_eq!(body["status"], "unhealthy");
    assert!(
        body["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("sources.notes: not connected")),
        "{body}"
    );
    assert_eq!(
        value(&scrape(port), "rill_source_connected", "sources.notes"),
        Some(0.0)
    );
    drop(running);
}

#[test]
fn health_follows_the_mqtt_connection_down_and_back() {
    let dir = support::workdir("metrics-mqtt");
    let mut broker = support::mqtt::Broker::start(&dir);
    let port = free_port();
    let mut running = support::start(
        Command::new(support::build("pipelines/mqtt_sensor_alerts.yaml"))
            .env("MQTT_PORT", broker.port().to_string())
            .env("MQTT_CLIENT_ID", "metrics-test")
            .env("RILL_METRICS_ADDR", format!("127.0.0.1:{port}")),
    );
    running.wait_for_log_any_time("mqtt subscribed");
    let status = |port| get(port, "/health").map(|a| (a.status, a.body));
    support::wait_until("/health to say 200", || {
        status(port).is_some_and(|(code, _)| code == 200)
    });

    broker.stop();
    let mut last = None;
    support::wait_until("/health to say 503", || {
        last = status(port);
        last.as_ref().is_some_and(|(code, _)| *code == 503)
    });
    let body: Value = serde_json::from_str(&last.expect("an answer").1).expect("JSON");
    assert!(
        body["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("sources.readings: not connected")),
        "{body}"
    );
    assert_eq!(
        value(&scrape(port), "rill_source_connected", "sources.readings"),
        Some(0.0)
    );

    broker.restart();
    support::wait_until("/health to say 200 again", || {
        status(port).is_some_and(|(code, _)| code == 200)
    });
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
