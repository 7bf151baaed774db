//! MQTT end to end: the examples and the connector's promises, against a real mosquitto
//! each test starts (`support::mqtt`), with inputs published and outputs read by
//! `mosquitto_pub`/`mosquitto_sub`, never by rill.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mqtt::{Broker, Received};
use support::{build, counter, counters, dead_letters, workdir, Running, PATIENCE};

/// The relay of `tests/pipelines/mqtt_relay.yaml` against `broker`.
fn relay(broker: &Broker) -> Command {
    let mut cmd = Command::new(build("tests/pipelines/mqtt_relay.yaml"));
    cmd.env("MQTT_URL", broker.url());
    cmd
}

/// `{"id": i, "value": i / 10}` for each `i`.
fn readings(ids: std::ops::Range<i64>) -> Vec<String> {
    ids.map(|i| json!({ "id": i, "value": i as f64 / 10.0 }).to_string())
        .collect()
}

fn parse(message: &Received) -> Value {
    serde_json::from_str(&message.1).unwrap_or_else(|e| panic!("not JSON ({e}): {message:?}"))
}

/// The ids among `messages`, each with how often it came.
fn ids(messages: &[Received]) -> BTreeMap<i64, usize> {
    let mut seen = BTreeMap::new();
    for m in messages {
        let id = parse(m)["id"].as_i64().unwrap_or_else(|| panic!("no id: {m:?}"));
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

/// Waits until every id below `n` has come out; panics with what is missing.
fn wait_for_ids(
    out: &mut support::mqtt::Subscriber,
    n: i64,
    broker: &Broker,
    log: &dyn Fn() -> String,
) -> BTreeMap<i64, usize> {
    let started = Instant::now();
    loop {
        let seen = ids(&out.wait_for(0, Duration::ZERO));
        if (0..n).all(|i| seen.contains_key(&i)) {
            return seen;
        }
        if started.elapsed() > PATIENCE * 2 {
            let missing: Vec<i64> = (0..n).filter(|i| !seen.contains_key(i)).take(20).collect();
            panic!(
                "{} of {n} ids came out; missing e.g. {missing:?}\n--- broker:\n{}\n--- pipeline:\n{}",
                seen.len(),
                broker.log_tail(),
                log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn sensor_alerts_window_per_device_from_the_topic_and_publish_per_device_alerts() {
    let dir = workdir("mqtt-sensor-alerts");
    let broker = Broker::start(&dir);
    let mut alerts = broker.subscribe("alerts/#", 1);
    let mut cmd = Command::new(build("pipelines/mqtt_sensor_alerts.yaml"));
    cmd.env("MQTT_PORT", broker.port().to_string())
        .env("MQTT_CLIENT_ID", "alerts-test");
    let mut running = support::start(&mut cmd);
    running.wait_for_log_any_time("mqtt subscribed");
    // Three devices; only dev-2 and dev-3 run hot. One payload is not a reading.
    let temps = [
        ("dev-1", [20.0, 21.5, 19.0]),
        ("dev-2", [28.0, 31.5, 30.0]),
        ("dev-3", [35.0, 36.0, 12.0]),
    ];
    for (device, values) in temps {
        let payloads: Vec<String> = values.iter().map(|t| json!({ "temperature": t }).to_string()).collect();
        broker.publish(&format!("sensors/{device}/reading"), &payloads, 1);
    }
    broker.publish("sensors/dev-9/reading", &["{\"temperature\": \"hot\"}".to_string()], 1);
    // Published last by the same client, in order: once its dead letter is out, every
    // reading before it was received.
    running.wait_for_log("sensors/dev-9/reading");
    running.signal("TERM");
    let output = running.wait();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Open windows fire at shutdown and their alerts are confirmed before exit.
    let got = alerts.wait_for(2, PATIENCE);
    let by_topic: BTreeMap<&str, Value> = got.iter().map(|m| (m.0.as_str(), parse(m))).collect();
    assert_eq!(
        by_topic.keys().copied().collect::<Vec<_>>(),
        ["alerts/dev-2", "alerts/dev-3"],
        "{got:?}"
    );
    assert_eq!(by_topic["alerts/dev-2"]["device_id"], "dev-2");
    assert_eq!(by_topic["alerts/dev-2"]["readings"], 3);
    assert_eq!(by_topic["alerts/dev-2"]["max_temp"], 31.5);
    assert_eq!(by_topic["alerts/dev-3"]["avg_temp"], (35.0 + 36.0 + 12.0) / 3.0);
    let letters = dead_letters(&output.stderr);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["component"], "sources.readings");
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.ends_with("(from sensors/dev-9/reading)"), "{reason}");
    let c = counters(&output.stderr);
    assert_eq!(counter(&c, "sources.readings", "received"), 10);
    assert_eq!(counter(&c, "sinks.alerts", "sent"), 2);
}

#[test]
fn a_persistent_session_loses_nothing_across_sigkill_and_what_came_while_down() {
    let dir = workdir("mqtt-sigkill");
    let broker = Broker::start(&dir);
    let mut out = broker.subscribe("out/#", 1);
    let log = dir.join("first.log");
    let mut first = relay(&broker)
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    support::wait_until("the relay's subscription", || {
        stderr_of(&log).contains("mqtt connected")
    });
    // 10,000 readings from 10 devices, published while the relay runs.
    let first_half = std::thread::scope(|s| {
        let publisher = s.spawn(|| {
            for device in 0..10 {
                broker.publish(
                    &format!("in/dev-{device}"),
                    &readings(device * 1000..device * 1000 + 1000),
                    1,
                );
            }
        });
        // Killed mid-stream: some came out, far from all.
        support::wait_until("the first outputs", || out.wait_for(0, Duration::ZERO).len() >= 500);
        first.kill().unwrap();
        first.wait().unwrap();
        let at_kill = out.messages().len();
        publisher.join().unwrap();
        at_kill
    });
    // While it is down: 5,000 more.
    broker.publish("in/dev-10", &readings(10_000..15_000), 1);
    let second_log = dir.join("second.log");
    let mut second = relay(&broker)
        .stderr(std::fs::File::create(&second_log).unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen = wait_for_ids(&mut out, 15_000, &broker, &|| stderr_of(&log) + &stderr_of(&second_log));
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("killed after {first_half} outputs; {duplicates} duplicates after the restart");
    assert!(first_half < 15_000, "killed too late to prove anything: {first_half}");
    // Every output went to its device's topic.
    for m in out.messages() {
        let device = parse(&m)["device"].as_str().unwrap_or_default().to_string();
        assert_eq!(m.0, format!("out/{device}"));
    }
    let _ = Command::new("kill").args(["-TERM", &second.id().to_string()]).status();
    let status = second.wait().unwrap();
    assert!(status.success(), "{}", stderr_of(&second_log));
    let c = counters(stderr_of(&second_log).as_bytes());
    assert_eq!(counter(&c, "sinks.out", "dropped"), 0);
}

#[test]
fn a_broker_restart_mid_stream_reconnects_by_itself_and_loses_nothing() {
    let dir = workdir("mqtt-broker-restart");
    let mut broker = Broker::start(&dir);
    let out_id = "restart-test-reader";
    let mut out = broker.subscribe_persistent("out/#", 1, out_id);
    let mut running: Running = support::start(&mut relay(&broker));
    running.wait_for_log_any_time("mqtt subscribed");
    broker.publish("in/dev-1", &readings(0..3000), 1);
    // Gone for 5 s while those flow. The relay's session, with its subscription and
    // what it has not acknowledged, is kept by the broker across the restart.
    broker.stop();
    std::thread::sleep(Duration::from_secs(5));
    broker.restart();
    broker.publish("in/dev-2", &readings(3000..6000), 1);
    // The reader reconnects by itself; its session kept what came meanwhile.
    let seen = wait_for_ids(&mut out, 6000, &broker, &|| String::new());
    assert_eq!(seen.len(), 6000);
    running.signal("TERM");
    let output = running.wait();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let log = String::from_utf8_lossy(&output.stderr);
    let events: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let named = |msg: &str| -> Vec<&Value> { events.iter().filter(|l| l["msg"] == msg).collect() };
    // One warning per outage and per client (the source's and the sink's), not one per
    // retry, each counting its outages; and each connected again.
    let lost = named("mqtt connection lost");
    let components: BTreeSet<&str> = lost.iter().filter_map(|l| l["component"].as_str()).collect();
    assert_eq!(
        components,
        BTreeSet::from(["sinks.out", "sources.readings"]),
        "{lost:?}"
    );
    assert_eq!(lost.len(), 2, "{lost:?}");
    assert!(lost.iter().all(|l| l["outages"] == 1), "{lost:?}");
    assert_eq!(named("mqtt connected").len(), 4, "{log}");
    let c = counters(&output.stderr);
    assert_eq!(counter(&c, "sinks.out", "dropped"), 0);
}

#[test]
fn mqtt_to_kafka_bridges_every_reading_keyed_by_its_topic() {
    let dir = workdir("mqtt-to-kafka");
    let mqtt = Broker::start(&dir.join("mqtt"));
    let kafka = support::kafka::Broker::start();
    kafka.create_topic("sensor_readings", 2);
    let bin = build("pipelines/mqtt_to_kafka.yaml");
    let mut cmd = Command::new(bin);
    cmd.env("MQTT_PORT", mqtt.port().to_string())
        .env("KAFKA_BROKERS", kafka.bootstrap());
    let mut running = support::start(&mut cmd);
    running.wait_for_log_any_time("mqtt subscribed");
    let payloads: Vec<String> = (0..200)
        .map(|i| json!({ "ts": 1_700_000_000_000_i64 + i, "temperature": 20.0 + i as f64 / 10.0 }).to_string())
        .collect();
    mqtt.publish("sensors/a/reading", &payloads[..100], 1);
    mqtt.publish("sensors/b/reading", &payloads[100..], 1);
    mqtt.publish("sensors/b/reading", &["not json".to_string()], 1);
    running.wait_for_log("sensors/b/reading");
    let consumed = kafka.consume("sensor_readings", 200, PATIENCE);
    assert_eq!(consumed.len(), 200);
    let keys: BTreeSet<Option<&str>> = consumed.iter().map(|c| c.key.as_deref()).collect();
    assert_eq!(
        keys,
        BTreeSet::from([Some("sensors/a/reading"), Some("sensors/b/reading")])
    );
    for c in &consumed {
        let v: Value = serde_json::from_str(&c.value).unwrap();
        assert_eq!(v["mqtt_topic"].as_str(), c.key.as_deref());
    }
    running.signal("TERM");
    let output = running.wait();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let letters = dead_letters(&output.stderr);
    assert_eq!(letters.len(), 1);
    assert!(letters[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("sensors/b/reading"));
}

/// `tests/pipelines/mqtt_secure.yaml` with its settings from the environment.
fn secure(url: &str, user: &str, password: &str, ca: Option<&Path>) -> Command {
    let mut cmd = Command::new(build("tests/pipelines/mqtt_secure.yaml"));
    cmd.env("MQTT_URL", url)
        .env("MQTT_USER", user)
        .env("MQTT_PASSWORD", password)
        .env("MQTT_CA", ca.map(|p| p.display().to_string()).unwrap_or_default());
    cmd
}

/// Relays three readings through `cmd` (already subscribed to `in`) and stops it.
fn relays_three(broker: &Broker, cmd: &mut Command) {
    let mut out = broker.subscribe("out", 1);
    let mut running = support::start(cmd);
    running.wait_for_log_any_time("mqtt subscribed");
    broker.publish("in", &readings(0..3), 1);
    assert_eq!(ids(&out.wait_for(3, PATIENCE)).len(), 3);
    running.signal("TERM");
    let output = running.wait();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// The run ends with exit code 1 and an error naming `what` and the source or the sink:
/// both connect to the broker at start, and whichever is refused first ends the run
/// (CI saw the sink first).
fn ends_with_error(cmd: &mut Command, what: &str) {
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.contains("\"level\":\"error\"") && (l.contains("sources.readings") || l.contains("sinks.out")));
    assert!(error.is_some_and(|l| l.to_lowercase().contains(what)), "{stderr}");
}

#[test]
fn a_password_from_the_environment_gets_in_and_a_wrong_one_ends_the_run() {
    let dir = workdir("mqtt-password");
    let broker = Broker::start_with_password(&dir, "gateway", "s3cret");
    relays_three(&broker, &mut secure(&broker.url(), "gateway", "s3cret", None));
    ends_with_error(&mut secure(&broker.url(), "gateway", "wrong", None), "refused");
}

#[test]
fn tls_with_the_brokers_ca_gets_in_and_another_ca_ends_the_run() {
    let dir = workdir("mqtt-tls");
    let certs = support::tls::Certs::generate(&dir.join("certs"));
    let broker = Broker::start_tls(&dir, &certs);
    assert!(broker.url().starts_with("mqtts://"));
    relays_three(&broker, &mut secure(&broker.url(), "", "", Some(&certs.ca)));
    ends_with_error(&mut secure(&broker.url(), "", "", Some(&certs.other_ca)), "tls");
}

#[test]
fn sigterm_while_the_broker_is_gone_stops_and_says_what_was_not_delivered() {
    let dir = workdir("mqtt-sigterm-blocked");
    let mut broker = Broker::start(&dir);
    let mut cmd = Command::new(build("tests/pipelines/mqtt_out.yaml"));
    cmd.env("MQTT_URL", broker.url());
    let mut running = support::start(&mut cmd);
    running.wait_for_log_any_time("mqtt connected");
    // Gone for good: the publisher's queue fills and the pipeline waits on it.
    broker.stop();
    running.wait_for_log("mqtt connection lost");
    std::thread::sleep(Duration::from_millis(500));
    running.signal("TERM");
    // It stops (`wait` gives it `PATIENCE`; the close waits 10 s at most for
    // acknowledgements that cannot come).
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("still undelivered at shutdown"), "{stderr}");
    // Every record is accounted for: sent before the broker went, or given up on.
    let c = counters(&output.stderr);
    let (received, sent) = (counter(&c, "sinks.out", "received"), counter(&c, "sinks.out", "sent"));
    let lost = counter(&c, "sinks.out", "dropped") + counter(&c, "sinks.out", "dead_lettered");
    assert!(lost > 0, "{stderr}");
    assert_eq!(received, sent + lost);
}
