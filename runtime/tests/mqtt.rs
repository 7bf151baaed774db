//! The MQTT connector against a real mosquitto broker, started by each test on a free
//! loopback port in a folder of its own. What the broker holds is read and written with
//! mosquitto's own clients (`mosquitto_pub`, `mosquitto_sub`), never with ours.
//!
//! Needs `mosquitto` and `mosquitto-clients` (`scripts/mqtt-setup`) and `openssl`; run
//! with `cargo test -p rill_runtime --features mqtt --test mqtt`.
//!
//! Gated here rather than with `required-features` in `runtime/Cargo.toml`: the `rill`
//! binary embeds that manifest without `tests/`, and cargo refuses a manifest naming a
//! test file that is not there.
#![cfg(feature = "mqtt")]

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
    /// What `mosquitto_pub`/`mosquitto_sub` need besides host and port (TLS files).
    client_args: Vec<String>,
}

/// A fresh folder for one test.
fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rill-mqtt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Broker {
    fn start(name: &str) -> Broker {
        Broker::with(workdir(name), "allow_anonymous true\n", vec![])
    }

    /// A broker whose listener has `settings` (authentication, TLS) in `dir`.
    fn with(dir: PathBuf, settings: &str, client_args: Vec<String>) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // The pipeline holds acknowledgements until records are safe: let the broker
        // keep that many in flight and queue what arrives meanwhile (see the connector's
        // documentation).
        let conf = format!(
            "listener {port} 127.0.0.1\n{settings}user root\npersistence true\n\
             persistence_location {}/\nmax_inflight_messages 0\nmax_queued_messages 100000\n\
             log_dest stderr\nlog_type all\n",
            dir.display()
        );
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("config");
        let mut broker = Broker {
            dir,
            port,
            child: None,
            client_args,
        };
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

    /// Host, port and TLS files, as `mosquitto_pub` and `mosquitto_sub` take them.
    fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(["-h", "127.0.0.1", "-q", "1", "-p"])
            .arg(self.port.to_string())
            .args(&self.client_args);
        cmd
    }

    /// Publishes each of `messages` to `topic` with `mosquitto_pub` at QoS 1.
    fn publish(&self, topic: &str, messages: &[&str]) {
        let mut child = self
            .client("mosquitto_pub")
            .args(["-t", topic, "-l"])
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
    /// A failed attempt is tried again (a CI run once saw `mosquitto_sub -E` fail on a
    /// broker that had just started, with nothing in its log), and the last one's
    /// stderr is shown if none succeeds.
    fn subscribe(&self, id: &str, topic: &str) {
        let started = Instant::now();
        loop {
            let out = self.sub(id, topic, &["-E"]).output().expect("mosquitto_sub");
            if out.status.success() {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "mosquitto_sub -E failed ({}): {}\nbroker log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
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
        let mut cmd = self.client("mosquitto_sub");
        cmd.args(["-c", "-i", id, "-t", topic]).args(extra);
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
    connect_with(broker, client_id, 4)
}

/// A persistent session `client_id` speaking `protocol` (4: MQTT 3.1.1, 5: MQTT 5).
fn connect_with(broker: &Broker, client_id: &str, protocol: u8) -> MqttConnect {
    MqttConnect {
        url: broker.url(),
        client_id: client_id.into(),
        clean_session: false,
        protocol,
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
    source_with(broker, client_id, 4, ctx)
}

fn source_with(broker: &Broker, client_id: &str, protocol: u8, ctx: &Context) -> MqttSource {
    let connect = connect_with(broker, client_id, protocol);
    let metadata = ["topic", "qos", "retain"];
    MqttSource::new("sources.in", connect, &["in/#"], 1, &metadata, ctx).expect("source starts")
}

fn payloads(got: &[Got]) -> Vec<&str> {
    got.iter().map(|g| g.0.as_str()).collect()
}

#[test]
fn a_source_acknowledges_only_what_the_pipeline_confirmed() {
    source_acknowledges_only_what_is_confirmed(4);
}

#[test]
fn a_source_acknowledges_only_what_the_pipeline_confirmed_mqtt5() {
    source_acknowledges_only_what_is_confirmed(5);
}

fn source_acknowledges_only_what_is_confirmed(protocol: u8) {
    let broker = Broker::start(&format!("acks{protocol}"));
    // The source's persistent session exists before anything is published.
    broker.subscribe("rill-src", "in/#");
    broker.publish("in/a", &["one", "two"]);
    broker.publish("in/b/c", &["three"]);

    // Read, but never confirmed: closing must not acknowledge anything.
    let ctx1 = ctx();
    let mut first = source_with(&broker, "rill-src", protocol, &ctx1);
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
    let mut second = source_with(&broker, "rill-src", protocol, &ctx2);
    assert_eq!(payloads(&receive(&mut second, 3)), ["one", "two", "three"]);
    ctx2.acks.end_step(None);
    assert!(ctx2.acks.confirmed() > ctx2.acks.epoch());
    second.commit().expect("commit");
    second.close().expect("close");
    drop(second);

    // A third time: nothing comes back; the first message is the one published now.
    let ctx3 = ctx();
    let mut third = source_with(&broker, "rill-src", protocol, &ctx3);
    broker.publish("in/a", &["four"]);
    assert_eq!(payloads(&receive(&mut third, 1)), ["four"]);
    third.close().expect("close");
}

#[test]
fn thousands_confirmed_at_once_are_all_acknowledged_at_close() {
    let broker = Broker::start("many-acks");
    broker.subscribe("rill-many", "in/#");
    // More than rumqttc's request queue holds: closing must drain it, not drop the rest.
    let messages: Vec<String> = (0..5000).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
    broker.publish("in/a", &refs);
    let ctx1 = ctx();
    let mut first = source(&broker, "rill-many", &ctx1);
    assert_eq!(receive(&mut first, 5000).len(), 5000);
    ctx1.acks.end_step(None);
    first.commit().expect("commit");
    first.close().expect("close");
    drop(first);
    let ctx2 = ctx();
    let mut second = source(&broker, "rill-many", &ctx2);
    broker.publish("in/a", &["after"]);
    assert_eq!(
        payloads(&receive(&mut second, 1)),
        ["after"],
        "a message acknowledged at close came again"
    );
    second.close().expect("close");
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
    publisher_is_confirmed(4);
}

#[test]
fn a_publisher_is_confirmed_by_the_broker_mqtt5() {
    publisher_is_confirmed(5);
}

fn publisher_is_confirmed(protocol: u8) {
    let broker = Broker::start(&format!("publish{protocol}"));
    broker.subscribe("checker", "out/#");
    let ctx = ctx();
    let mut publisher = MqttPublisher::new(
        "sinks.out",
        connect_with(&broker, "rill-pub", protocol),
        "out/default",
        1,
        false,
        &ctx,
    )
    .expect("start");
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

/// Polls `source` until it fails; the failure's message.
fn failure(source: &mut MqttSource) -> String {
    let mut batch = RawBatch::new();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < PATIENCE, "the source never failed");
        batch.clear();
        if let Err(e) = source.poll(&mut batch, 10) {
            return e.to_string();
        }
    }
}

#[test]
fn refused_credentials_end_the_run_naming_the_component() {
    let dir = workdir("auth");
    let passwords = dir.join("passwords");
    let made = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwords)
        .args(["rill", "secret"])
        .status()
        .expect("mosquitto_passwd");
    assert!(made.success());
    let settings = format!("allow_anonymous false\npassword_file {}\n", passwords.display());
    let args = ["-u", "rill", "-P", "secret"].map(String::from).to_vec();
    let broker = Broker::with(dir, &settings, args);
    let ctx = ctx();
    let mut wrong = connect(&broker, "rill-src");
    wrong.username = "rill".into();
    wrong.password = "guess".into();
    let mut source = MqttSource::new("sources.in", wrong, &["in/#"], 1, &[], &ctx).expect("start");
    let message = failure(&mut source);
    assert!(
        message.starts_with("sources.in: the MQTT broker refused the connection: "),
        "{message}"
    );
    // The right ones are let in.
    broker.subscribe("checker", "out");
    let mut right = connect(&broker, "rill-pub");
    right.username = "rill".into();
    right.password = "secret".into();
    let mut publisher = MqttPublisher::new("sinks.out", right, "out", 1, false, &ctx).expect("start");
    assert_eq!(publisher.send(b"hello", Address::default(), 1), Ok(()));
    assert_eq!(outcomes(&mut publisher, 1)[0].tag, 1);
    assert_eq!(broker.read("checker", "out", 1), ["out hello"]);
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA in `dir` (`<ca>.pem`, `<ca>.key`) and, signed by it, a certificate
/// (`<name>.pem`, `<name>.key`) for each of `leaves` (name, subjectAltName or "").
fn certificates(dir: &std::path::Path, ca: &str, leaves: &[(&str, &str)]) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let (ca_key, ca_pem, ca_subject) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN={ca}"));
    let mut args = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        &ca_subject,
        "-keyout",
        &ca_key,
        "-out",
        &ca_pem,
    ];
    args.extend(ec);
    openssl(dir, &args);
    for (name, san) in leaves {
        let (key, csr, pem, subject) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        let mut args = vec!["req", "-subj", &subject, "-keyout", &key, "-out", &csr];
        args.extend(ec);
        openssl(dir, &args);
        let ext = format!("{name}.ext");
        let extensions = match *san {
            "" => "basicConstraints=CA:FALSE\n".to_string(),
            san => format!("basicConstraints=CA:FALSE\nsubjectAltName={san}\n"),
        };
        std::fs::write(dir.join(&ext), extensions).expect("extensions");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
}

#[test]
fn mutual_tls_works_and_an_untrusted_broker_ends_the_run() {
    let dir = workdir("tls");
    certificates(&dir, "ca", &[("server", "IP:127.0.0.1"), ("client", "")]);
    certificates(&dir, "other-ca", &[]);
    let path = |name: &str| dir.join(name).display().to_string();
    let settings = format!(
        "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
        path("ca.pem"),
        path("server.pem"),
        path("server.key")
    );
    let args = vec![
        "--cafile".into(),
        path("ca.pem"),
        "--cert".into(),
        path("client.pem"),
        "--key".into(),
        path("client.key"),
    ];
    let broker = Broker::with(dir.clone(), &settings, args);
    let tls = |ca: &str| MqttConnect {
        url: format!("mqtts://127.0.0.1:{}", broker.port),
        ca: path(ca),
        cert: path("client.pem"),
        key: path("client.key"),
        ..connect(&broker, "rill-tls")
    };
    broker.subscribe("checker", "out");
    let ctx = ctx();
    let mut publisher = MqttPublisher::new("sinks.out", tls("ca.pem"), "out", 1, false, &ctx).expect("start");
    assert_eq!(publisher.send(b"sealed", Address::default(), 1), Ok(()));
    assert_eq!(outcomes(&mut publisher, 1)[0].tag, 1);
    assert_eq!(publisher.close(&mut Vec::new()), Ok(()));
    assert_eq!(broker.read("checker", "out", 1), ["out sealed"]);

    let mut source = MqttSource::new("sources.in", tls("other-ca.pem"), &["in"], 1, &[], &ctx).expect("start");
    let message = failure(&mut source);
    assert!(
        message.starts_with("sources.in: TLS with the MQTT broker failed: "),
        "{message}"
    );
}

#[test]
fn an_mqtt5_publish_the_broker_refuses_comes_back_failed_with_its_reason() {
    let dir = workdir("acl");
    let acl = dir.join("acl");
    std::fs::write(&acl, "topic readwrite out/open\n").expect("acl file");
    let settings = format!("allow_anonymous true\nacl_file {}\n", acl.display());
    let broker = Broker::with(dir, &settings, vec![]);
    let ctx = ctx();
    let connect = connect_with(&broker, "rill-pub", 5);
    let mut publisher = MqttPublisher::new("sinks.out", connect, "out/open", 1, false, &ctx).expect("start");
    assert_eq!(publisher.send(b"fine", Address::default(), 1), Ok(()));
    assert_eq!(publisher.send(b"denied", to("out/closed"), 2), Ok(()));
    let mut all = outcomes(&mut publisher, 2);
    all.sort_by_key(|o| o.tag);
    assert_eq!(all[0], Outcome::delivered(1));
    let (reason, payload) = all[1].failure.clone().expect("refused");
    assert!(
        reason.starts_with("the MQTT broker refused the message: NotAuthorized"),
        "{reason}"
    );
    assert_eq!(payload, b"denied");
    assert_eq!(publisher.close(&mut Vec::new()), Ok(()));
}

/// Set for the child process of [`a_source_killed_with_sigkill_gets_its_messages_again`]:
/// the broker's address.
const CHILD_BROKER: &str = "RILL_MQTT_TEST_CHILD_BROKER";

#[test]
fn a_source_killed_with_sigkill_gets_its_messages_again() {
    if let Ok(url) = std::env::var(CHILD_BROKER) {
        // The child: read two messages, say so, and wait to be killed.
        let ctx = ctx();
        let connect = MqttConnect {
            url,
            client_id: "rill-killed".into(),
            clean_session: false,
            protocol: 4,
            keep_alive_secs: 30,
            ..MqttConnect::default()
        };
        let mut source = MqttSource::new("sources.in", connect, &["in/#"], 1, &["topic", "qos", "retain"], &ctx)
            .expect("source starts");
        let got = receive(&mut source, 2);
        println!("received {}", payloads(&got).join(","));
        std::io::stdout().flush().ok();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let broker = Broker::start("killed");
    broker.subscribe("rill-killed", "in/#");
    broker.publish("in/a", &["one", "two"]);
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "a_source_killed_with_sigkill_gets_its_messages_again",
            "--nocapture",
        ])
        .env(CHILD_BROKER, broker.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child test");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("stdout")));
    let said = lines.find(|l| l.as_ref().is_ok_and(|l| l.starts_with("received ")));
    assert_eq!(said.and_then(Result::ok).as_deref(), Some("received one,two"));
    child.kill().expect("SIGKILL");
    child.wait().expect("the child ended");
    // Published while nobody was there.
    broker.publish("in/b", &["three"]);
    let ctx = ctx();
    let mut again = source(&broker, "rill-killed", &ctx);
    assert_eq!(payloads(&receive(&mut again, 3)), ["one", "two", "three"]);
    again.close().expect("close");
}
