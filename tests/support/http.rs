//! HTTP test helpers: a Python `http.server` receiver (`http_receiver.py`) for the sink,
//! answering with the statuses a test gives and logging every request it got.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub status: u16,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub body: String,
}

pub struct Receiver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Receiver {
    /// Starts a receiver answering the requests with `statuses` in turn (the last one
    /// repeats), `Retry-After: retry_after` on 429 and 503 when given.
    pub fn start(dir: &Path, statuses: &str, retry_after: Option<&str>) -> Receiver {
        Receiver::start_slow(dir, statuses, retry_after, 0.0)
    }

    /// [`Self::start`], each answer `delay` seconds late: a slow destination.
    pub fn start_slow(dir: &Path, statuses: &str, retry_after: Option<&str>, delay: f64) -> Receiver {
        Receiver::start_on(dir, 0, statuses, retry_after, delay)
    }

    /// [`Self::start_slow`] on `port` (0: any free one).
    pub fn start_on(dir: &Path, port: u16, statuses: &str, retry_after: Option<&str>, delay: f64) -> Receiver {
        let log = dir.join("received.jsonl");
        let script = super::repo().join("tests/support/http_receiver.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).args(["--statuses", statuses]).arg("--log").arg(&log);
        cmd.args(["--delay", &delay.to_string(), "--port", &port.to_string()]);
        if let Some(after) = retry_after {
            cmd.args(["--retry-after", after]);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("python3 runs the receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the receiver prints its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no port from the receiver: {line:?}"));
        Receiver { child, port, log }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/in", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Got> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                Got {
                    status: v["status"].as_u64().unwrap() as u16,
                    headers: v["headers"].as_object().cloned().unwrap_or_default(),
                    body: v["body"].as_str().unwrap_or_default().to_string(),
                }
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What `curl` got back for one request: the status and the answer's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Sends `body` to `url` with curl (an independent client): `method`, and a bearer
/// `token` when given.
pub fn curl(method: &str, url: &str, token: Option<&str>, body: &[u8]) -> Reply {
    use std::io::Write;
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "60",
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
    ])
    .args(["--data-binary", "@-", "-w", "\n%{http_code}", url]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    Reply {
        status: status
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no status from curl: {text:?} {}", String::from_utf8_lossy(&out.stderr))),
        body: body.to_string(),
    }
}
