//! The MQTT connector against a real mosquitto broker, started by each test on a free
//! loopback port in a folder of its own. What the broker holds is read and written with
//! mosquitto's own clients (`mosquitto_pub`, `mosquitto_sub`), never with ours.
//!
//! Needs `mosquitto` and `mosquitto-clients` (`scripts/mqtt-setup`); run with
//! `cargo test -p rill_runtime --features mqtt --test mqtt`.

use rill_runtime::codegen::*;
use rill_runtime::sinks::{MessageSink, Outcome};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(30);

/// A mosquitto process with persistence, on a port and folder of its own.
struct Broker {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn start(name: &str) -> Broker {
        let dir = std::env::temp_dir().join(format!("rill-mqtt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // The pipeline holds acknowledgements until records are safe: let the broker
        // keep that many in flight and queue what arrives meanwhile (see the connector's
        // documentation).
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\n\
             persistence_location {}/\nmax_inflight_messages 1000\nmax_queued_messages 100000\n\
             log_dest stderr\nlog_type all\n",
            dir.display()
        );
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("config");
        let mut broker = Broker { dir, port, child: None };
        broker.run();
        broker
    }

    /// Starts mosquitto and waits until it accepts connections.
    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .expect("log file");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto is installed (scripts/mqtt-setup)");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < PATIENCE, "mosquitto did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops mosquitto with SIGTERM, so it saves its sessions to disk.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Publishes each of `messages` to `topic` with `mosquitto_pub` at QoS 1.
    fn publish(&self, topic: &str, messages: &[&str]) {
        let mut child = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-l",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub");
        let mut stdin = child.stdin.take().expect("stdin");
        for m in messages {
            writeln!(stdin, "{m}").expect("write to mosquitto_pub");
        }
        drop(stdin);
        assert!(child.wait().expect("mosquitto_pub ran").success());
    }

    /// Makes a persistent `mosquitto_sub` session `id` subscribed to `topic`, so what is
    /// published from now on waits for [`Self::read`].
    fn subscribe(&self, id: &str, topic: &str) {
        let status = self.sub(id, topic, &["-E"]).status().expect("mosquitto_sub");
        assert!(status.success());
    }

    /// Reads `count` messages (`topic payload` lines) from session `id`.
    fn read(&self, id: &str, topic: &str, count: usize) -> Vec<String> {
        let out = self
            .sub(id, topic, &["-C", &count.to_string(), "-W", "30", "-v"])
            .output()
            .expect("mosquitto_sub");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn sub(&self, id: &str, topic: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-q",
            "1",
            "-c",
            "-i",
            id,
            "-t",
            topic,
        ])
        .args(extra);
        cmd
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("mosquitto's log and data are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn ctx() -> Context {
    Context::new(Settings::from_values(vec![]), 64)
}

fn connect(broker: &Broker, client_id: &str) -> MqttConnect {
    MqttConnect {
        url: broker.url(),
        client_id: client_id.into(),
        clean_session: false,
        protocol: 4,
        keep_alive_secs: 30,
        ..MqttConnect::default()
    }
}

/// A record as a source hands it over: payload and metadata (topic, qos, retain).
type Got = (String, String, i64, bool);

/// Polls `source` (each batch marked done) until `count` records came.
fn receive(source: &mut MqttSource, count: usize) -> Vec<Got> {
    let mut got = Vec::new();
    let mut batch = RawBatch::new();
    let started = Instant::now();
    while got.len() < count {
        assert!(started.elapsed() < PATIENCE, "only {got:?} arrived");
        batch.clear();
        source.poll(&mut batch, 100).expect("poll");
        for i in 0..batch.len() {
            let meta = batch.meta(i).expect("metadata");
            let payload = String::from_utf8_lossy(batch.get(i).unwrap_or_default()).into_owned();
            got.push((payload, meta.text(0), meta.int(1), meta.bool(2)));
        }
        source.batch_done();
    }
    got
}

fn source(broker: &Broker, client_id: &str, ctx: &Context) -> MqttSource {
    MqttSource::new(
        "sources.in",
        connect(broker, client_id),
        &["in/#"],
        1,
        &["topic", "qos", "retain"],
        ctx,
    )
    .expect("source starts")
}

fn payloads(got: &[Got]) -> Vec<&str> {
    got.iter().map(|g| g.0.as_str()).collect()
}

#[test]
fn a_source_acknowledges_only_what_the_pipeline_confirmed() {
    let broker = Broker::start("acks");
    // The source's persistent session exists before anything is published.
    broker.subscribe("rill-src", "in/#");
    broker.publish("in/a", &["one", "two"]);
    broker.publish("in/b/c", &["three"]);

    // Read, but never confirmed: closing must not acknowledge anything.
    let ctx1 = ctx();
    let mut first = source(&broker, "rill-src", &ctx1);
    let got = receive(&mut first, 3);
    assert_eq!(
        got,
        [
            ("one".to_string(), "in/a".to_string(), 1, false),
            ("two".into(), "in/a".into(), 1, false),
            ("three".into(), "in/b/c".into(), 1, false),
        ]
    );
    first.commit().expect("commit");
    first.close().expect("close");
    drop(first);

    // The same session again: the broker sends the three again. This time the pipeline
    // confirms them, and closing acknowledges them.
    let ctx2 = ctx();
    let mut second = source(&broker, "rill-src", &ctx2);
    assert_eq!(payloads(&receive(&mut second, 3)), ["one", "two", "three"]);
    ctx2.acks.end_step(None);
    assert!(ctx2.acks.confirmed() > ctx2.acks.epoch());
    second.commit().expect("commit");
    second.close().expect("close");
    drop(second);

    // A third time: nothing comes back; the first message is the one published now.
    let ctx3 = ctx();
    let mut third = source(&broker, "rill-src", &ctx3);
    broker.publish("in/a", &["four"]);
    assert_eq!(payloads(&receive(&mut third, 1)), ["four"]);
    third.close().expect("close");
}

/// Polls `publisher` until `count` outcomes came.
fn outcomes(publisher: &mut MqttPublisher, count: usize) -> Vec<Outcome> {
    let mut all = Vec::new();
    let started = Instant::now();
    while all.len() < count {
        assert!(started.elapsed() < PATIENCE, "only {all:?} came back");
        publisher.poll(&mut all).expect("poll");
        std::thread::sleep(Duration::from_millis(10));
    }
    all
}

fn to(topic: &str) -> Address<'_> {
    Address {
        topic: Some(topic),
        ..Address::default()
    }
}

#[test]
fn a_publisher_is_confirmed_by_the_broker() {
    let broker = Broker::start("publish");
    broker.subscribe("checker", "out/#");
    let ctx = ctx();
    let mut publisher =
        MqttPublisher::new("sinks.out", connect(&broker, "rill-pub"), "out/default", 1, false, &ctx).expect("start");
    for (i, topic) in [None, Some("out/other"), None].into_iter().enumerate() {
        let address = topic.map(to).unwrap_or_default();
        let payload = format!("m{i}");
        assert_eq!(publisher.send(payload.as_bytes(), address, 7 + i as u64), Ok(()));
    }
    let refused = publisher.send(b"x", to("out/+"), 99);
    assert!(refused.is_err_and(|r| r.contains("wildcard")));
    let mut tags: Vec<u64> = outcomes(&mut publisher, 3).iter().map(|o| o.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, [7, 8, 9]);
    let mut rest = Vec::new();
    assert_eq!(publisher.close(&mut rest), Ok(()));
    assert_eq!(rest, []);
    assert_eq!(
        broker.read("checker", "out/#", 3),
        ["out/default m0", "out/other m1", "out/default m2"]
    );
}

#[test]
fn both_ends_ride_out_a_broker_restart() {
    let mut broker = Broker::start("restart");
    broker.subscribe("rill-src", "in/#");
    broker.subscribe("checker", "out/#");
    let ctx = ctx();
    let mut source = source(&broker, "rill-src", &ctx);
    let mut publisher =
        MqttPublisher::new("sinks.out", connect(&broker, "rill-pub"), "out/x", 1, false, &ctx).expect("start");
    broker.publish("in/a", &["before"]);
    assert_eq!(payloads(&receive(&mut source, 1)), ["before"]);
    assert_eq!(publisher.send(b"p0", Address::default(), 1), Ok(()));
    assert_eq!(outcomes(&mut publisher, 1).len(), 1);

    broker.stop();
    // While the broker is away, publishes wait in the client.
    for (i, payload) in ["p1", "p2", "p3"].iter().enumerate() {
        assert_eq!(
            publisher.send(payload.as_bytes(), Address::default(), 2 + i as u64),
            Ok(())
        );
    }
    let mut none = Vec::new();
    publisher.poll(&mut none).expect("poll while the broker is away");
    std::thread::sleep(Duration::from_secs(3));
    broker.run();

    // The source reconnects by itself and gets what is published now (after "before"
    // again, perhaps: it was never acknowledged).
    broker.publish("in/a", &["after"]);
    let started = Instant::now();
    while !receive(&mut source, 1).iter().any(|got| got.0 == "after") {
        assert!(started.elapsed() < PATIENCE);
    }
    // Every queued publish went out and was confirmed.
    let mut tags: Vec<u64> = none.iter().map(|o| o.tag).collect();
    tags.extend(outcomes(&mut publisher, 3 - none.len()).iter().map(|o| o.tag));
    tags.sort_unstable();
    assert_eq!(tags, [2, 3, 4]);
    assert_eq!(publisher.close(&mut Vec::new()), Ok(()));
    source.close().expect("close");
    assert_eq!(
        broker.read("checker", "out/#", 4),
        ["out/x p0", "out/x p1", "out/x p2", "out/x p3"]
    );
}
