//! A real Kafka-protocol broker for the tests, and an independent client to talk to it.
//!
//! The broker is [tansu](https://crates.io/crates/tansu) with in-memory storage, one
//! process per [`Broker`], on a free loopback port; its log goes to
//! `target/tmp/kafka/broker-PORT.log`. The client is `kafka_client.py` beside this file
//! (confluent-kafka, i.e. librdkafka), so the tests never read or write Kafka with the
//! code under test. `scripts/kafka-setup` installs both; a missing one fails the test.
//!
//! Settings: `RILL_TANSU` (path of the tansu binary, default
//! `$HOME/.cache/rill/tansu/bin/tansu`), `RILL_PYTHON` (default `python3`),
//! `RILL_TANSU_LOG` (the broker's `RUST_LOG`, default `warn`).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Runs `"$@"` (tansu), kills it once stdin reaches end of file, and exits with its status.
/// The watcher reads the stdin saved in fd 3, as an asynchronous list's own stdin is /dev/null.
const WATCHDOG: &str = r#"exec 3<&0 </dev/null
"$@" 3<&- &
pid=$!
{ cat >/dev/null; kill -9 "$pid" 2>/dev/null; } <&3 &
exec 3<&-
wait "$pid""#;

/// How long a broker may take to answer after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A message to produce. Partition `None` leaves the choice to the client's partitioner
/// (by key hash for keyed messages); timestamp `None` lets the client stamp it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
    pub partition: Option<i32>,
    pub timestamp_ms: Option<i64>,
}

impl Message {
    /// A message without key or headers.
    pub fn value(value: impl Into<String>) -> Message {
        Message {
            key: None,
            value: value.into(),
            headers: Vec::new(),
            partition: None,
            timestamp_ms: None,
        }
    }

    /// A message with a key.
    pub fn keyed(key: impl Into<String>, value: impl Into<String>) -> Message {
        Message {
            key: Some(key.into()),
            ..Message::value(value)
        }
    }

    /// Adds a header (names may repeat, as in Kafka).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Message {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends the message to this partition.
    pub fn partition(mut self, partition: i32) -> Message {
        self.partition = Some(partition);
        self
    }

    /// Sets the message's create time, in ms since the Unix epoch.
    pub fn timestamp(mut self, ms: i64) -> Message {
        self.timestamp_ms = Some(ms);
        self
    }
}

/// A message read back from the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    pub key: Option<String>,
    /// The value as text; a null value (tombstone) reads as "".
    pub value: String,
    pub headers: Vec<(String, String)>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
}

/// A broker stopped by [`Broker::freeze`]; it resumes when this is dropped.
pub struct Frozen(u32);

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, which: &str) {
    let sent = Command::new("kill").args([which, &pid.to_string()]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill {which} {pid}");
}

/// A running tansu broker, killed when dropped.
pub struct Broker {
    child: Child,
    /// The broker's own (plain) port.
    port: u16,
    log: PathBuf,
    /// TLS in front of the broker, for brokers from [`Broker::start_tls`].
    tls: Option<Tls>,
}

/// stunnel terminating TLS for a broker that advertises stunnel's port, and the CA
/// the clients trust.
struct Tls {
    stunnel: super::tls::Stunnel,
    ca: PathBuf,
}

impl Broker {
    /// Starts a broker and waits until it answers metadata requests; panics (with the
    /// tail of its log) if it does not within 30 s.
    pub fn start() -> Broker {
        Broker::start_advertising(None)
    }

    /// A broker reached only through TLS: stunnel in front of it with a server
    /// certificate signed by `certs.ca`, and the broker advertising stunnel's port, so
    /// that clients come back through TLS after bootstrapping. The harness's own client
    /// trusts `certs.ca`; `tansu` commands (topic creation) use the plain port.
    pub fn start_tls(certs: &super::tls::Certs) -> Broker {
        let tls_port = free_port();
        let mut broker = Broker::start_advertising(Some(tls_port));
        let dir = broker.log.parent().unwrap().to_path_buf();
        let stunnel = super::tls::Stunnel::start(certs, tls_port, broker.port, &dir);
        broker.tls = Some(Tls {
            stunnel,
            ca: certs.ca.clone(),
        });
        broker
    }

    /// A broker telling clients to connect to `advertised` (default: its own port).
    fn start_advertising(advertised: Option<u16>) -> Broker {
        let tansu = tansu();
        assert!(
            tansu.is_file(),
            "the Kafka broker binary {} is missing: run scripts/kafka-setup (or set RILL_TANSU)",
            tansu.display()
        );
        // Another process may take the free port before tansu binds it: try a few.
        for attempt in 1..=3 {
            match Broker::spawn(&tansu, advertised) {
                Ok(broker) => return broker,
                Err(why) if attempt < 3 && why.contains("Address already in use") => continue,
                Err(why) => panic!("{why}"),
            }
        }
        unreachable!()
    }

    fn spawn(tansu: &Path, advertised: Option<u16>) -> Result<Broker, String> {
        let port = free_port();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka");
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("broker-{port}.log"));
        let out = File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised_url = format!("tcp://127.0.0.1:{}", advertised.unwrap_or(port));
        // tansu runs under a watchdog shell that kills it when our end of the shell's stdin
        // closes: on drop, and also when the test process dies without unwinding.
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(tansu)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &advertised_url])
            .args(["--storage-engine", "memory://tansu/", "--cluster-id", "rill-test"])
            .env(
                "RUST_LOG",
                std::env::var("RILL_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("NO_COLOR", "1")
            // tansu loads a `.env` from its working directory.
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tansu.display()));
        let mut broker = Broker {
            child,
            port,
            log,
            tls: None,
        };
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut last = String::from("it never accepted a connection");
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = broker.child.try_wait().unwrap() {
                return Err(format!(
                    "the Kafka broker exited ({status}) at start:\n{}",
                    broker.log_tail()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                let list = run(
                    Command::new(tansu)
                        .args(["topic", "list", "--broker", &url])
                        .current_dir(&dir),
                    None,
                    Duration::from_secs(10),
                );
                match list {
                    Ok(_) => return Ok(broker),
                    Err(why) => last = format!("`tansu topic list` failed: {why}"),
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the Kafka broker on port {port} did not answer within {START_TIMEOUT:?} ({last}); its log:\n{}",
            broker.log_tail()
        ))
    }

    /// Stops the broker process (SIGSTOP) until the returned guard is dropped (SIGCONT):
    /// a broker that went away mid-stream, keeping its data for when it comes back.
    pub fn freeze(&self) -> Frozen {
        let pid = self.broker_pid();
        signal(pid, "-STOP");
        Frozen(pid)
    }

    /// The tansu process itself: the child of the watchdog shell whose command line
    /// starts with tansu (the shell's forked watcher carries tansu's arguments too).
    fn broker_pid(&self) -> u32 {
        let pattern = format!("^{} broker ", tansu().display());
        let out = Command::new("pgrep")
            .args(["-P", &self.child.id().to_string(), "-f", &pattern])
            .output()
            .expect("pgrep runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no tansu process under {}", self.child.id()))
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers` (stunnel's port for a TLS broker).
    pub fn bootstrap(&self) -> String {
        match &self.tls {
            Some(tls) => format!("127.0.0.1:{}", tls.stunnel.port),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    /// The broker's log file (stdout and stderr).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last lines of the broker's log (and stunnel's), for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        match &self.tls {
            Some(tls) => format!("{tail}\nstunnel log:\n{}", tls.stunnel.log_text()),
            None => tail,
        }
    }

    /// Creates a topic (topics are not created on first use).
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let partitions = partitions.to_string();
        let mut cmd = Command::new(tansu());
        cmd.args(["topic", "create", "--broker", &url, "--partitions", &partitions, name]);
        if let Err(why) = run(&mut cmd, None, Duration::from_secs(30)) {
            panic!("creating topic {name}: {why}\nbroker log:\n{}", self.log_tail());
        }
    }

    /// Produces `messages` in order through the Python client; panics unless every one was
    /// acknowledged.
    pub fn produce(&self, topic: &str, messages: &[Message]) {
        let mut input = Vec::with_capacity(messages.len() * 64);
        for m in messages {
            let line = json!({
                "key": m.key,
                "value": m.value,
                "headers": m.headers,
                "partition": m.partition,
                "timestamp_ms": m.timestamp_ms,
            });
            serde_json::to_writer(&mut input, &line).unwrap();
            input.push(b'\n');
        }
        let limit = Duration::from_secs(60 + messages.len() as u64 / 1000);
        let args = ["produce", "--topic", topic, "--timeout", &limit.as_secs().to_string()];
        self.client(&args, Some(input), limit + Duration::from_secs(30));
    }

    /// Reads `topic` from the beginning of every partition, without a consumer group,
    /// until `expected` messages were read or `timeout` passed, and returns what was read
    /// (the caller asserts). Pass more than you expect to check that nothing else is there.
    pub fn consume(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<Consumed> {
        let (expected, secs) = (expected.to_string(), format!("{:.3}", timeout.as_secs_f64()));
        let args = ["consume", "--topic", topic, "--expected", &expected, "--timeout", &secs];
        let out = self.client(&args, None, timeout + Duration::from_secs(60));
        out.lines().filter(|l| !l.trim().is_empty()).map(consumed).collect()
    }

    /// The offset `group` committed on each partition `0..partitions` of `topic`
    /// (`None` where it committed none).
    pub fn committed(&self, group: &str, topic: &str, partitions: u32) -> Vec<Option<i64>> {
        let partitions = partitions.to_string();
        let args = [
            "committed",
            "--topic",
            topic,
            "--group",
            group,
            "--partitions",
            &partitions,
        ];
        let out = self.client(&args, None, Duration::from_secs(60));
        let offsets: Vec<Option<i64>> =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("kafka_client.py committed ({e}): {out}"));
        offsets
    }

    /// Commits `offsets` (partition, next offset to read) for `group` on `topic`, as a
    /// consumer that is not a member of the group would; for tests that start a
    /// pipeline from committed offsets.
    pub fn commit(&self, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        let mut args = vec![
            "commit".to_string(),
            "--topic".into(),
            topic.into(),
            "--group".into(),
            group.into(),
        ];
        for (partition, offset) in offsets {
            args.push("--offset".into());
            args.push(format!("{partition}={offset}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.client(&args, None, Duration::from_secs(60));
    }

    /// Runs a `kafka_client.py` subcommand against this broker; returns its stdout.
    fn client(&self, args: &[&str], stdin: Option<Vec<u8>>, limit: Duration) -> String {
        let python = std::env::var("RILL_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/kafka_client.py");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .arg(args[0])
            .args(["--bootstrap", &self.bootstrap()])
            .args(&args[1..]);
        if let Some(tls) = &self.tls {
            let ca = format!("ssl.ca.location={}", tls.ca.display());
            cmd.args(["--config", "security.protocol=ssl", "--config", &ca]);
        }
        run(&mut cmd, stdin, limit).unwrap_or_else(|why| {
            panic!(
                "kafka_client.py {}: {why}\nbroker log:\n{}",
                args.join(" "),
                self.log_tail()
            )
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let closing = Instant::now();
        while closing.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tansu() -> PathBuf {
    match std::env::var_os("RILL_TANSU") {
        Some(path) => PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/rill/tansu/bin/tansu")
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().unwrap().port()
}

fn consumed(line: &str) -> Consumed {
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("kafka_client.py printed non-JSON ({e}): {line}"));
    let text = |v: &Value| v.as_str().map(str::to_string);
    Consumed {
        key: text(&v["key"]),
        value: text(&v["value"]).unwrap_or_default(),
        headers: v["headers"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|h| (text(&h[0]).unwrap(), text(&h[1]).unwrap()))
            .collect(),
        partition: v["partition"].as_i64().expect("partition") as i32,
        offset: v["offset"].as_i64().expect("offset"),
        timestamp_ms: v["timestamp_ms"].as_i64(),
    }
}

/// Runs `cmd` with `stdin`, killing it after `limit`; returns its stdout if it exited 0,
/// else a description with its stderr.
fn run(cmd: &mut Command, stdin: Option<Vec<u8>>, limit: Duration) -> Result<String, String> {
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let out = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    let err = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    match status {
        Some(status) if status.success() => Ok(out),
        Some(status) => Err(format!("{status}; stderr:\n{err}")),
        None => Err(format!("killed after {limit:?}; stderr:\n{err}")),
    }
}

/// A pipeline binary running in the background, its stderr in a file; killed when
/// dropped.
pub struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `binary` in `dir` with `env`, its stderr in `dir/BINARY.stderr`.
    pub fn start(binary: &Path, env: &[(&str, String)], dir: &Path) -> Running {
        let log = dir.join(format!(
            "{}.stderr",
            binary.file_name().unwrap_or_default().to_string_lossy()
        ));
        let child = Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("pipeline starts");
        Running { child, log }
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `limit`) for a log line whose `msg` is `msg`, and returns it;
    /// panics if the pipeline exits or the line does not come.
    pub fn wait_for_line(&mut self, msg: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let found = self
                .log()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| l["msg"] == msg);
            if let Some(line) = found {
                return line;
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("the pipeline exited ({status}) before logging `{msg}`:\n{}", self.log());
            }
            assert!(
                started.elapsed() < limit,
                "no `{msg}` log line within {limit:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most `limit`) for the pipeline to exit by itself; returns its status
    /// and stderr after checking its counters.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let log = self.log();
                super::counters(log.as_bytes());
                return (status, log);
            }
            assert!(
                started.elapsed() < limit,
                "the pipeline was still running after {limit:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits (at most a minute) for the exit; returns its status and
    /// stderr after checking its counters.
    pub fn stop(self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        self.wait(Duration::from_secs(60))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
