//! A real MQTT broker for the tests, and an independent client to talk to it.
//!
//! The broker is Debian's [mosquitto](https://mosquitto.org/), one process per
//! [`Broker`], on a free loopback port, with its configuration, persistence database and
//! log in the folder the test gives it. The clients are `mosquitto_pub` and
//! `mosquitto_sub` (Debian's `mosquitto-clients`), so the tests never publish or read
//! MQTT with the code under test. `scripts/mqtt-setup` installs both; a missing one
//! fails the test.
//!
//! [`Subscriber`]s also subscribe to a probe topic under `$rill-probe/`: a topic
//! starting with `$` matches no wildcard filter (not even `#`), so probes never reach
//! a pipeline's subscription.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::tls::Certs;
use super::PATIENCE;

/// A topic and a payload, as a subscriber received them.
pub type Received = (String, String);

/// How `mosquitto_pub`/`mosquitto_sub` connect: the broker's own options come from
/// [`Broker::client_options`]; change them to prove the broker refuses others.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// `-u USER -P PASSWORD`.
    pub credentials: Option<(String, String)>,
    /// `--cafile`: the CA the client trusts, which makes it speak TLS.
    pub cafile: Option<PathBuf>,
}

impl ClientOptions {
    fn args(&self, port: u16) -> Vec<String> {
        let mut args = vec!["-h".into(), "127.0.0.1".into(), "-p".into(), port.to_string()];
        if let Some((user, password)) = &self.credentials {
            args.extend(["-u".into(), user.clone(), "-P".into(), password.clone()]);
        }
        if let Some(ca) = &self.cafile {
            args.extend(["--cafile".into(), ca.display().to_string()]);
        }
        args
    }
}

/// A running mosquitto, killed when dropped.
pub struct Broker {
    /// `None` between [`Broker::stop`] and [`Broker::restart`].
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    tls: bool,
    client: ClientOptions,
}

impl Broker {
    /// A broker open to anonymous clients, its files in `dir`.
    pub fn start(dir: &Path) -> Broker {
        Broker::launch(dir, "allow_anonymous true\n", "", ClientOptions::default())
    }

    /// A broker that accepts only `user` with `password` (a `mosquitto_passwd` file).
    pub fn start_with_password(dir: &Path, user: &str, password: &str) -> Broker {
        fs::create_dir_all(dir).unwrap();
        let file = dir.join("passwords");
        let made = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&file)
            .args([user, password])
            .output()
            .expect("mosquitto_passwd runs (scripts/mqtt-setup installs it)");
        assert!(
            made.status.success(),
            "mosquitto_passwd failed:\n{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let global = format!("allow_anonymous false\npassword_file {}\n", file.display());
        let client = ClientOptions {
            credentials: Some((user.into(), password.into())),
            cafile: None,
        };
        Broker::launch(dir, &global, "", client)
    }

    /// A broker that speaks only TLS, with `certs.server_cert` (signed by `certs.ca`,
    /// for 127.0.0.1 and localhost), open to anonymous clients.
    pub fn start_tls(dir: &Path, certs: &Certs) -> Broker {
        let listener = format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n",
            certs.ca.display(),
            certs.server_cert.display(),
            certs.server_key.display()
        );
        let client = ClientOptions {
            credentials: None,
            cafile: Some(certs.ca.clone()),
        };
        Broker::launch(dir, "allow_anonymous true\n", &listener, client)
    }

    /// Writes `dir/mosquitto.conf` (`global` options, then the listener's) and starts it.
    fn launch(dir: &Path, global: &str, listener: &str, client: ClientOptions) -> Broker {
        fs::create_dir_all(dir).unwrap();
        // A free port can be taken by another test's broker before this one binds it:
        // then this one exits at start, and it tries another port.
        for _ in 0..5 {
            let port = free_port();
            Broker::write_config(dir, global, listener, port);
            let mut broker = Broker {
                child: None,
                port,
                dir: dir.to_path_buf(),
                tls: !listener.is_empty(),
                client: client.clone(),
            };
            if broker.spawn() {
                return broker;
            }
        }
        panic!(
            "mosquitto could not start on 5 free ports:\n{}",
            fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default()
        );
    }

    fn write_config(dir: &Path, global: &str, listener: &str, port: u16) {
        let config = format!(
            "# Written by tests/support/mqtt.rs.\n\
             # Run as root (the tests may), mosquitto would switch to the `mosquitto` user\n\
             # and could not write this folder; as anyone else this line does nothing.\n\
             user root\n\
             {global}\
             persistence true\n\
             persistence_location {dir}/\n\
             # rill acknowledges a QoS 1 message only once its records are safe downstream,\n\
             # so thousands can be unacknowledged at once. With the defaults (20 in flight,\n\
             # 1000 queued per client) mosquitto would silently drop the rest: 0 means no\n\
             # limit for both, in mosquitto 2.0 (see `man mosquitto.conf`).\n\
             max_inflight_messages 0\n\
             max_queued_messages 0\n\
             max_queued_bytes 0\n\
             log_dest file {dir}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             log_type subscribe\nlog_type unsubscribe\n\
             listener {port} 127.0.0.1\n\
             {listener}",
            dir = dir.display()
        );
        fs::write(dir.join("mosquitto.conf"), config).unwrap();
    }

    /// Starts mosquitto on the written configuration and waits until it says it runs
    /// (it has bound its port: another broker answering there does not count); false
    /// when it exits first (its port was taken).
    fn spawn(&mut self) -> bool {
        let log = self.dir.join("mosquitto.log");
        let runs = || fs::read_to_string(&log).unwrap_or_default().matches(" running").count();
        let before = runs();
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.stderr"))
            .unwrap();
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().unwrap())
            .stderr(stderr)
            .spawn()
            .expect("mosquitto starts (scripts/mqtt-setup installs it)");
        let child = self.child.insert(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        while runs() == before || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if child.try_wait().unwrap().is_some() {
                self.child = None;
                return false;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "mosquitto did not listen on {} within {PATIENCE:?}:\n{}",
                self.port,
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT`, or `mqtts://…` for a TLS broker.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The folder holding the configuration, the persistence database and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How the harness's own clients connect (credentials, CA).
    pub fn client_options(&self) -> ClientOptions {
        self.client.clone()
    }

    /// The last 40 lines of the broker's log, and whatever it wrote on stderr.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let stderr = fs::read_to_string(self.dir.join("mosquitto.stderr")).unwrap_or_default();
        format!(
            "{}\n(stderr) {}",
            lines[lines.len().saturating_sub(40)..].join("\n"),
            stderr.trim_end()
        )
    }

    /// SIGTERM, and waits for the exit: mosquitto saves its persistence database (sessions,
    /// subscriptions, queued QoS 1 and 2 messages) as it exits. Nothing listens on the
    /// port until [`Broker::restart`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mosquitto did not stop within {PATIENCE:?}:\n{}", self.log_tail());
            }
            thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "mosquitto exited with {status}:\n{}", self.log_tail());
    }

    /// Stops the broker (if it runs) and starts it again on the same port with the same
    /// persistence database, so persistent sessions and their queued messages survive.
    /// A running [`Subscriber`] reconnects by itself, but nothing says when: subscribe
    /// anew to be sure of receiving what is published next.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "mosquitto exited at restart:\n{}", self.log_tail());
    }

    /// Publishes each payload as one message on `topic` with one `mosquitto_pub -l`
    /// (one message per stdin line, an empty line an empty message) and returns once it
    /// has exited successfully: after end of input it waits for the broker to acknowledge
    /// the last message (QoS 1 and 2; for QoS 0, until it is written), and the broker
    /// acknowledges in order. Payloads cannot hold a line break.
    pub fn publish(&self, topic: &str, payloads: &[String], qos: u8) {
        if let Err(why) = self.try_publish(topic, payloads, qos, &self.client) {
            panic!("mosquitto_pub to {topic}: {why}\nbroker log:\n{}", self.log_tail());
        }
    }

    /// [`Broker::publish`] with other client options; the error says why it failed.
    /// One payload goes with `-m` (or `-n` when empty), which gives up when the broker
    /// drops the connection (a plain-text client on the TLS listener); `-l` reconnects
    /// until [`PATIENCE`] runs out.
    pub fn try_publish(
        &self,
        topic: &str,
        payloads: &[String],
        qos: u8,
        options: &ClientOptions,
    ) -> Result<(), String> {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(options.args(self.port))
            .args(["-t", topic, "-q", &qos.to_string()]);
        let mut stdin = Vec::new();
        match payloads {
            [one] if one.is_empty() => {
                cmd.arg("-n");
            }
            [one] => {
                cmd.args(["-m", one]);
            }
            _ => {
                cmd.arg("-l");
                for payload in payloads {
                    assert!(
                        !payload.contains('\n'),
                        "a payload for mosquitto_pub -l holds a line break: {payload:?}"
                    );
                    stdin.extend_from_slice(payload.as_bytes());
                    stdin.push(b'\n');
                }
            }
        }
        run(&mut cmd, stdin)
    }

    /// A subscriber to `filter` with a clean session, subscribed when this returns.
    pub fn subscribe(&self, filter: &str, qos: u8) -> Subscriber {
        Subscriber::start(self, filter, qos, None)
    }

    /// A subscriber with the persistent session `client_id`: while it is away the broker
    /// keeps its subscription and queues QoS 1 and 2 messages for it.
    pub fn subscribe_persistent(&self, filter: &str, qos: u8, client_id: &str) -> Subscriber {
        Subscriber::start(self, filter, qos, Some(client_id))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `mosquitto_sub -v` collecting what it receives on a reader thread; killed when
/// dropped.
pub struct Subscriber {
    child: Child,
    received: Arc<Mutex<Vec<Received>>>,
    probes: Arc<AtomicUsize>,
    reader: Option<JoinHandle<()>>,
    stderr: PathBuf,
}

impl Subscriber {
    fn start(broker: &Broker, filter: &str, qos: u8, client_id: Option<&str>) -> Subscriber {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let probe_topic = format!("$rill-probe/{}-{n}", std::process::id());
        let stderr = broker.dir.join(format!("mosquitto_sub-{n}.stderr"));
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(broker.client.args(broker.port))
            .args(["-q", &qos.to_string(), "-t", filter, "-t", &probe_topic])
            // Topic, space, payload in hex: a payload with spaces or line breaks stays whole.
            .args(["-F", "%t %x"]);
        if let Some(id) = client_id {
            cmd.args(["-c", "-i", id]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("mosquitto_sub starts (scripts/mqtt-setup installs it)");
        let received = Arc::new(Mutex::new(Vec::new()));
        let probes = Arc::new(AtomicUsize::new(0));
        let out = child.stdout.take().unwrap();
        let reader = {
            let received = Arc::clone(&received);
            let probes = Arc::clone(&probes);
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let (topic, hex) = line.rsplit_once(' ').unwrap_or((&line, ""));
                    if topic.starts_with("$rill-probe/") {
                        probes.fetch_add(1, Ordering::SeqCst);
                    } else {
                        received.lock().unwrap().push((topic.to_string(), unhex(hex)));
                    }
                }
            })
        };
        let mut subscriber = Subscriber {
            child,
            received,
            probes,
            reader: Some(reader),
            stderr,
        };
        // The filter is subscribed no later than the probe topic (one SUBSCRIBE packet,
        // filter first): once a probe arrives, so would any message on the filter.
        let started = Instant::now();
        while subscriber.probes.load(Ordering::SeqCst) == 0 {
            subscriber.check_alive();
            assert!(
                started.elapsed() < PATIENCE,
                "mosquitto_sub got no probe within {PATIENCE:?}:\n{}",
                broker.log_tail()
            );
            broker.publish(&probe_topic, &["probe".to_string()], 0);
            let asked = Instant::now();
            while subscriber.probes.load(Ordering::SeqCst) == 0 && asked.elapsed() < Duration::from_millis(200) {
                thread::sleep(Duration::from_millis(5));
            }
        }
        subscriber
    }

    /// Panics (with its stderr) if mosquitto_sub has exited.
    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "mosquitto_sub exited ({status}):\n{}",
                fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
    }

    /// Everything received so far (probes left out), in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages have arrived, or `limit` has passed, and returns
    /// what arrived: the caller asserts on the count. Panics if mosquitto_sub exits.
    pub fn wait_for(&mut self, n: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        while self.received.lock().unwrap().len() < n && started.elapsed() < limit {
            self.check_alive();
            thread::sleep(Duration::from_millis(20));
        }
        self.messages()
    }

    /// SIGTERM: mosquitto_sub finishes printing the message in hand and disconnects
    /// cleanly (a persistent session stays on the broker). Returns everything received.
    pub fn stop(mut self) -> Vec<Received> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if started.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("mosquitto_sub did not stop within {PATIENCE:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.messages()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker binary: Debian puts it in `/usr/sbin`, which a user's `PATH` often lacks.
fn mosquitto() -> PathBuf {
    let debian = Path::new("/usr/sbin/mosquitto");
    if debian.exists() {
        debian.to_path_buf()
    } else {
        PathBuf::from("mosquitto")
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().unwrap().port()
}

/// The payload from `mosquitto_sub -F %x` (hex bytes), as text.
fn unhex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or_else(|e| panic!("{e}: {hex}")))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs `cmd` with `stdin` written on a thread (it may be larger than a pipe holds),
/// killing it after [`PATIENCE`]; `Err` describes a failure with its stderr.
fn run(cmd: &mut Command, stdin: Vec<u8>) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let mut pipe = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    let mut err = child.stderr.take().unwrap();
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let stderr = stderr.join().unwrap();
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!("{status}; stderr:\n{stderr}")),
        None => Err(format!("killed after {PATIENCE:?}; stderr:\n{stderr}")),
    }
}
