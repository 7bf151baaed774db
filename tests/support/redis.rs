//! A real Redis server for the tests, and an independent client to talk to it.
//!
//! The server is Debian's `redis-server`, one process per [`Server`], on a free
//! loopback port, with its append-only file in the folder the test gives it (so a
//! restart keeps streams). The client is `redis-cli` (Debian's `redis-tools`), so the
//! tests never write or read Redis with the code under test. `scripts/redis-setup`
//! installs both; a missing one fails the test.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use super::PATIENCE;

/// A running redis-server, killed when dropped.
pub struct Server {
    /// `None` between [`Server::stop`] and [`Server::restart`].
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// `requirepass`, and what `redis-cli` authenticates with.
    password: Option<String>,
}

impl Server {
    /// A server without a password, its files in `dir`.
    pub fn start(dir: &Path) -> Server {
        Server::launch(dir, None)
    }

    /// A server that requires `password` (`requirepass`).
    pub fn start_with_password(dir: &Path, password: &str) -> Server {
        Server::launch(dir, Some(password.to_string()))
    }

    fn launch(dir: &Path, password: Option<String>) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Server {
            child: None,
            port,
            dir: dir.to_path_buf(),
            password,
        };
        server.restart();
        server
    }

    /// Starts the server again on the same port and files.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let mut server = Command::new("redis-server");
        if let Some(password) = &self.password {
            server.args(["--requirepass", password]);
        }
        let child = server
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/redis-setup installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while self.try_cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM: it writes its append-only file and exits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli ARGS` and returns its output, trimmed; fails the test if it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = self
            .client()
            .args(args)
            .output()
            .expect("redis-cli runs (scripts/redis-setup installs it)");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    /// `redis-cli --json ARGS`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.cli(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("redis-cli --json {args:?}: {e}: {text}"))
    }

    /// `redis-cli` for this server (with its password, kept out of the command line).
    fn client(&self) -> Command {
        let mut cli = Command::new("redis-cli");
        cli.args(["-p", &self.port.to_string()]);
        if let Some(password) = &self.password {
            cli.env("REDISCLI_AUTH", password);
        }
        cli
    }

    /// Sends many commands (one per line, as `redis-cli` reads them) in one process.
    pub fn commands(&self, lines: &[String]) {
        let mut child = self
            .client()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-cli runs");
        {
            let mut stdin = child.stdin.take().unwrap();
            for line in lines {
                writeln!(stdin, "{line}").unwrap();
            }
        }
        assert!(child.wait().unwrap().success(), "redis-cli failed");
    }

    /// The entries of stream `key`, oldest first: (id, the value of `field`).
    pub fn stream(&self, key: &str, field: &str) -> Vec<(String, String)> {
        let entries = self.json(&["XRANGE", key, "-", "+"]);
        entries
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                let id = entry[0].as_str().unwrap().to_string();
                let fields = entry[1].as_array().unwrap();
                let at = fields.iter().position(|f| f == field).expect("the field");
                (id, fields[at + 1].as_str().unwrap().to_string())
            })
            .collect()
    }

    /// A subscriber (`redis-cli SUBSCRIBE channel`) reading on a thread.
    pub fn subscribe(&self, channel: &str) -> Subscriber {
        let mut child = self
            .client()
            .args(["--json", "SUBSCRIBE", channel])
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        let out: ChildStdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let subscriber = Subscriber {
            child,
            lines,
            messages: Vec::new(),
        };
        let deadline = Instant::now() + PATIENCE;
        while self.cli(&["PUBSUB", "NUMSUB", channel]).lines().nth(1) != Some("1") {
            assert!(Instant::now() < deadline, "the subscriber did not subscribe");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        subscriber
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `redis-cli SUBSCRIBE`, its messages collected.
pub struct Subscriber {
    child: Child,
    lines: Receiver<String>,
    messages: Vec<String>,
}

impl Subscriber {
    /// Waits (at most [`PATIENCE`]) for `n` messages in all; returns their payloads.
    pub fn wait_for(&mut self, n: usize) -> &[String] {
        let deadline = Instant::now() + PATIENCE;
        while self.messages.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{} of {n} messages came", self.messages.len()));
            // `["message","channel","payload"]`; the subscription's own reply is not one.
            if let Ok(serde_json::Value::Array(parts)) = serde_json::from_str::<serde_json::Value>(&line) {
                if parts.first().and_then(|p| p.as_str()) == Some("message") {
                    self.messages.push(parts[2].as_str().unwrap_or_default().to_string());
                }
            }
        }
        &self.messages
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
