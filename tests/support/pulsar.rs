//! A real Pulsar-protocol broker for the tests, and an independent client to talk to it.
//!
//! The broker is `pulsar-lite` (PyPI's `pulsar-lite` wheel carries the binary), one
//! process per [`Broker`], on a free loopback port, its storage in the folder the test
//! gives it (so a restart keeps topics and subscriptions). The client is
//! `pulsar_client.py` beside this file (PyPI's `pulsar-client`, Apache's C++ client), so
//! the tests never read or write Pulsar with the code under test. `scripts/pulsar-setup`
//! installs both; a missing one fails the test.
//!
//! rill connects through [`checksum_proxy`]: pulsar-lite sends a MESSAGE frame without
//! the optional magic number and checksum, which the Pulsar protocol allows and Apache
//! brokers always send, and the `pulsar` crate 6.9 cannot read a frame without them. The
//! proxy adds them (CRC-32C, as an Apache broker computes it), and in the broker's
//! other answers puts its own address where the broker names itself (a topic lookup
//! answers with the broker's URL; the ports have the same number of digits, so no
//! length changes). Every other byte passes unchanged. When the broker is stopped the
//! proxy refuses connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::PATIENCE;

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
        let mut child = self
            .client(&["produce", "--topic", topic])
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
        let out = self
            .client(&[
                "consume",
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

/// Accepts connections on `listener` and joins each to the broker on `broker_port`,
/// adding the magic number and checksum to MESSAGE frames that lack them.
pub fn checksum_proxy(listener: TcpListener, broker_port: u16, stop: &AtomicBool) {
    let proxy_port = listener.local_addr().unwrap().port();
    let rename = (
        format!("127.0.0.1:{broker_port}").into_bytes(),
        format!("127.0.0.1:{proxy_port}").into_bytes(),
    );
    for client in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(broker) = TcpStream::connect(("127.0.0.1", broker_port)) else {
            // The broker is away: so is the proxy, to the client.
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = (client.set_nodelay(true), broker.set_nodelay(true));
        let (mut up_from, mut up_to) = (client.try_clone().unwrap(), broker.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_from, &mut up_to);
            let _ = (up_to.shutdown(Shutdown::Both), up_from.shutdown(Shutdown::Both));
        });
        let rename = rename.clone();
        std::thread::spawn(move || {
            let (mut from, mut to) = (broker, client);
            let _ = pass_frames(&mut from, &mut to, &rename);
            let _ = (to.shutdown(Shutdown::Both), from.shutdown(Shutdown::Both));
        });
    }
}

/// Copies frames from the broker to the client, completing payload frames and renaming
/// the broker's address (`rename`: what to find, what to put, of one length) in the rest.
fn pass_frames(from: &mut TcpStream, to: &mut TcpStream, rename: &(Vec<u8>, Vec<u8>)) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, from.try_clone()?);
    let mut writer = std::io::BufWriter::with_capacity(1 << 16, to.try_clone()?);
    let mut frame = Vec::new();
    loop {
        let mut size = [0u8; 4];
        reader.read_exact(&mut size)?;
        let total = u32::from_be_bytes(size) as usize;
        frame.resize(total, 0);
        reader.read_exact(&mut frame)?;
        let command = 4 + u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        if frame.len() == command {
            let (find, put) = rename;
            let mut at = 0;
            while let Some(found) = frame[at..].windows(find.len()).position(|w| w == &find[..]) {
                frame[at + found..at + found + put.len()].copy_from_slice(put);
                at += found + put.len();
            }
        }
        let rest = &frame[command..];
        if rest.is_empty() || rest.starts_with(&[0x0e, 0x01]) {
            writer.write_all(&size)?;
            writer.write_all(&frame)?;
        } else {
            writer.write_all(&(total as u32 + 6).to_be_bytes())?;
            writer.write_all(&frame[..command])?;
            writer.write_all(&[0x0e, 0x01])?;
            writer.write_all(&crc32c(rest).to_be_bytes())?;
            writer.write_all(rest)?;
        }
        // Flush once nothing more is waiting.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}

/// CRC-32C (Castagnoli), as Pulsar checksums a message's metadata and payload.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut crc = i as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
            *entry = crc;
        }
        table
    });
    !data.iter().fold(!0u32, |crc, &b| {
        table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}
