//! TLS in front of the test broker: a CA and a server certificate for 127.0.0.1 and
//! localhost made with the `openssl` CLI, and [stunnel](https://www.stunnel.org/)
//! terminating TLS on its own port and forwarding to the broker's plain one. tansu
//! speaks no TLS itself; `scripts/kafka-setup` installs stunnel (Debian's `stunnel4`).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Certificates written by [`Certs::generate`].
pub struct Certs {
    /// The CA that signed the server certificate (PEM): what clients should trust.
    pub ca: PathBuf,
    /// A CA unrelated to the server certificate: trusting it alone must fail.
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl Certs {
    /// A CA, a server certificate it signs (for IP 127.0.0.1 and DNS localhost) and an
    /// unrelated second CA, in `dir`.
    pub fn generate(dir: &Path) -> Certs {
        fs::create_dir_all(dir).unwrap();
        let path = |name: &str| dir.join(name);
        let self_signed_ca = |name: &str, subject: &str| {
            openssl(
                dir,
                &[
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject, "-keyout",
                ],
                &[&format!("{name}.key"), "-out", &format!("{name}.pem")],
            )
        };
        self_signed_ca("ca", "/CN=rill test CA");
        self_signed_ca("other-ca", "/CN=rill unrelated CA");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
            ],
            &["server.key", "-out", "server.csr"],
        );
        fs::write(
            path("server.ext"),
            "subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"],
            &[
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        Certs {
            ca: path("ca.pem"),
            other_ca: path("other-ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
        }
    }
}

/// Runs `openssl` with `args` then `more` in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str], more: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .args(more)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI runs");
    assert!(
        out.status.success(),
        "openssl {} {} failed:\n{}",
        args.join(" "),
        more.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stunnel binary: Debian names it `stunnel4`, others `stunnel`.
fn stunnel() -> &'static str {
    for name in ["stunnel4", "stunnel"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return name;
        }
    }
    panic!("stunnel is missing: run scripts/kafka-setup (it installs Debian's stunnel4)")
}

/// A running stunnel accepting TLS on `port`, killed when dropped.
pub struct Stunnel {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Stunnel {
    /// Accepts TLS on `port` with `certs`' server certificate and forwards the plain
    /// bytes to `target` (a loopback port); waits until it accepts connections.
    pub fn start(certs: &Certs, port: u16, target: u16, dir: &Path) -> Stunnel {
        let config = dir.join(format!("stunnel-{port}.conf"));
        let log = dir.join(format!("stunnel-{port}.log"));
        fs::write(
            &config,
            format!(
                "foreground = yes\npid =\ndebug = notice\n[kafka]\naccept = 127.0.0.1:{port}\n\
                 connect = 127.0.0.1:{target}\ncert = {}\nkey = {}\n",
                certs.server_cert.display(),
                certs.server_key.display()
            ),
        )
        .unwrap();
        let out = fs::File::create(&log).unwrap();
        let child = Command::new(stunnel())
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("stunnel starts");
        let mut stunnel = Stunnel { child, port, log };
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = stunnel.child.try_wait().unwrap() {
                panic!("stunnel exited ({status}) at start:\n{}", stunnel.log_text());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "stunnel did not listen on {port} within 30 s:\n{}",
                stunnel.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
        stunnel
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
