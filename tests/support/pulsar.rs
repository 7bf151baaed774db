//! A real Pulsar-protocol broker for the tests, and an independent client to talk to it.
//!
//! The broker is `pulsar-lite` (PyPI's `pulsar-lite` wheel carries the binary), one
//! process per [`Broker`], on a free loopback port, its storage in the folder the test
//! gives it (so a restart keeps topics and subscriptions). The client is
//! `pulsar_client.py` beside this file (PyPI's `pulsar-client`, Apache's C++ client), so
//! the tests never read or write Pulsar with the code under test. `scripts/pulsar-setup`
//! installs both; a missing one fails the test.
//!
//! rill connects through [`proxy::checksum_proxy`] (`pulsar_proxy.rs` says why); the Python
//! client talks to the broker directly.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::PATIENCE;

#[path = "pulsar_proxy.rs"]
pub mod proxy;
use proxy::checksum_proxy;

/// A running pulsar-lite, killed when dropped, behind a checksum proxy.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    proxy_port: u16,
    dir: PathBuf,
    proxy_stop: Arc<AtomicBool>,
}

/// The pulsar-lite binary the wheel installed (`RILL_PULSAR_LITE` overrides).
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RILL_PULSAR_LITE") {
        return PathBuf::from(path);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "from pulsar_lite.binary_finder import find_pulsar_lite_binary as f; print(f())",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pulsar-lite is not installed (scripts/pulsar-setup installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Broker {
    /// A broker with its storage in `dir`.
    pub fn start(dir: &Path) -> Broker {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        assert_eq!(
            port.to_string().len(),
            proxy_port.to_string().len(),
            "ports of one length"
        );
        let proxy_stop = Arc::new(AtomicBool::new(false));
        let stop = proxy_stop.clone();
        std::thread::spawn(move || checksum_proxy(listener, port, &stop));
        let mut broker = Broker {
            child: None,
            port,
            proxy_port,
            dir: dir.to_path_buf(),
            proxy_stop,
        };
        broker.restart();
        broker
    }

    /// A handle on a running broker, for another thread's client (it neither starts
    /// nor stops the broker).
    pub fn attach(broker: &Broker) -> Broker {
        Broker {
            child: None,
            port: broker.port,
            proxy_port: broker.proxy_port,
            dir: broker.dir.clone(),
            proxy_stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pulsar-lite.log"))
            .unwrap();
        let child = Command::new(binary())
            .arg("--addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--db-path")
            .arg(self.dir.join("db"))
            .args(["--log-level", "warn"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("pulsar-lite runs (scripts/pulsar-setup installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pulsar-lite did not listen on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker (SIGKILL): what it stored stays in its folder.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The URL rill connects to (through the checksum proxy).
    pub fn url(&self) -> String {
        format!("pulsar://127.0.0.1:{}", self.proxy_port)
    }

    pub fn proxy_port(&self) -> u16 {
        self.proxy_port
    }

    /// The broker itself, for the independent client.
    fn direct_url(&self) -> String {
        format!("pulsar://127.0.0.1:{}", self.port)
    }

    fn client(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("python3");
        cmd.arg(super::repo().join("tests/support/pulsar_client.py"))
            .args(args)
            .args(["--url", &self.direct_url()]);
        cmd
    }

    /// Publishes `messages` (`{"value", "key", "properties"}`) to `topic`, each
    /// confirmed by the broker.
    pub fn produce(&self, topic: &str, messages: &[Value]) {
        self.produce_with(topic, messages, &[]);
    }

    /// [`Self::produce`] in batches of up to `size` messages: each one entry on the
    /// broker, as a batching producer's are.
    pub fn produce_batched(&self, topic: &str, messages: &[Value], size: usize) {
        self.produce_with(topic, messages, &["--batch", &size.to_string()]);
    }

    fn produce_with(&self, topic: &str, messages: &[Value], extra: &[&str]) {
        let mut child = self
            .client(&[&["produce", "--topic", topic][..], extra].concat())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = String::new();
        for m in messages {
            input.push_str(&m.to_string());
            input.push('\n');
        }
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "producing failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Publishes plain values.
    pub fn produce_values(&self, topic: &str, values: &[String]) {
        let messages: Vec<Value> = values.iter().map(|v| json!({ "value": v })).collect();
        self.produce(topic, &messages);
    }

    /// Reads `topic` as `subscription` from its earliest message, acknowledging each,
    /// until `expected` messages came or none came for `idle` (messages as
    /// `{"value", "key", "properties", "topic", "publish_time"}`).
    pub fn consume(&self, topic: &str, subscription: &str, expected: usize, idle: Duration) -> Vec<Value> {
        self.consume_as("Exclusive", topic, subscription, expected, idle)
    }

    /// [`Self::consume`] with a subscription of another type (`Shared`, ...).
    pub fn consume_as(
        &self,
        kind: &str,
        topic: &str,
        subscription: &str,
        expected: usize,
        idle: Duration,
    ) -> Vec<Value> {
        let out = self
            .client(&[
                "consume",
                "--type",
                kind,
                "--topic",
                topic,
                "--subscription",
                subscription,
                "--expected",
                &expected.to_string(),
                "--timeout",
                &idle.as_secs_f64().to_string(),
            ])
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "consuming failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        BufReader::new(&out.stdout[..])
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect()
    }

    /// The values only.
    pub fn consume_values(&self, topic: &str, subscription: &str, expected: usize, idle: Duration) -> Vec<String> {
        self.consume(topic, subscription, expected, idle)
            .into_iter()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        self.proxy_stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.proxy_port));
    }
}
