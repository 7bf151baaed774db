//! What the source and the publisher share: the broker address and options
//! ([`MqttConnect`] → rumqttc's `MqttOptions`, TLS through rustls), and [`Link`], the
//! connection driven on the connector's own thread: reconnecting with backoff, one
//! warning per outage, unacknowledged publishes carried over a reconnect, and the
//! failures retrying cannot fix (refused credentials, TLS) kept for the pipeline's thread.

use super::protocol::{self, Conn, Handle, Options, Recv};
use crate::errors::{RunError, StartError};
use crate::internal_events::Connection;
use crate::log;
use rumqttc::{TlsConfiguration, Transport};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to reach the broker; every value resolved from settings when the binary starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MqttConnect {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]`.
    pub url: String,
    pub client_id: String,
    pub clean_session: bool,
    /// `""`: none.
    pub username: String,
    /// `""`: none.
    pub password: String,
    /// 4 = MQTT 3.1.1, 5 = MQTT 5.
    pub protocol: u8,
    /// PEM file paths for `mqtts://`; `""`: not given (no `ca`: the system's roots).
    pub ca: String,
    pub cert: String,
    pub key: String,
    pub keep_alive_secs: u64,
}

/// The largest packet MQTT allows (rumqttc's default is 10 KiB).
const MAX_PACKET: usize = 268_435_455;

/// How long one wait for the network may last while connected: the thread also has
/// acknowledgements to forward and a stop request to notice.
const POLL_WAIT: Duration = Duration::from_millis(50);

/// How long a connection attempt (TCP, TLS, CONNECT/CONNACK) may take.
const CONNECT_TIMEOUT_SECS: u64 = 5;

/// Reconnection backoff: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Endpoint {
    /// `mqtt://host[:port]` or `mqtts://host[:port]` (an IPv6 address in brackets).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (rest, tls, default_port) = if let Some(rest) = url.strip_prefix("mqtt://") {
            (rest, false, 1883)
        } else if let Some(rest) = url.strip_prefix("mqtts://") {
            (rest, true, 8883)
        } else {
            return Err(format!(
                "`{url}` is not an MQTT broker address: it must start with `mqtt://` or `mqtts://`"
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(format!(
                "`{url}`: put the user name and password in `username` and `password`, not in the address"
            ));
        }
        if rest.contains(['/', '?', '#']) {
            return Err(format!("`{url}`: an MQTT broker address has no path or query"));
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("`{url}`: an IPv6 address needs its closing `]`"))?;
                (host, after.strip_prefix(':'))
            }
            None => match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            },
        };
        if host.is_empty() {
            return Err(format!("`{url}` names no broker host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{url}`: `{p}` is not a port number"))?,
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
            tls,
        })
    }
}

/// The client for `connect` (its thread not started yet); `manual_acks` for a source,
/// which acknowledges a message only once the pipeline has it safe; at most `inflight`
/// unacknowledged publishes of ours, and as many requests queued.
pub(super) fn connect(
    component: &str,
    connect: &MqttConnect,
    manual_acks: bool,
    inflight: u16,
) -> Result<(Handle, Conn), StartError> {
    let options = options(component, connect, manual_acks, inflight)?;
    Ok(protocol::client(
        options,
        usize::from(inflight.max(1)),
        CONNECT_TIMEOUT_SECS,
    ))
}

/// rumqttc's options for `connect`, of its protocol version.
fn options(component: &str, connect: &MqttConnect, manual_acks: bool, inflight: u16) -> Result<Options, StartError> {
    let fail = |reason: String| StartError::new(format!("{component}: {reason}"));
    let endpoint = Endpoint::parse(&connect.url).map_err(fail)?;
    if !matches!(connect.protocol, 4 | 5) {
        return Err(fail(format!(
            "unknown MQTT protocol version {} (4 = MQTT 3.1.1, 5 = MQTT 5)",
            connect.protocol
        )));
    }
    if connect.client_id.is_empty() && !connect.clean_session {
        return Err(fail(
            "a persistent session (`clean_session: false`) needs a fixed `client_id`".into(),
        ));
    }
    if connect.client_id.len() > usize::from(u16::MAX) {
        return Err(fail("the client id is longer than MQTT allows (65535 bytes)".into()));
    }
    if connect.username.is_empty() && !connect.password.is_empty() {
        return Err(fail("a password needs a user name (`username`)".into()));
    }
    if connect.keep_alive_secs > u64::from(u16::MAX) {
        return Err(fail(format!(
            "keep alive of {} s is longer than MQTT allows (65535 s)",
            connect.keep_alive_secs
        )));
    }
    let transport = if endpoint.tls {
        let config = tls_config(component, connect)?;
        Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config)))
    } else if let Some(given) = [("ca", &connect.ca), ("cert", &connect.cert), ("key", &connect.key)]
        .iter()
        .find(|(_, path)| !path.is_empty())
    {
        return Err(fail(format!(
            "`{}` is given but `{}` is not a TLS address: use `mqtts://`",
            given.0, connect.url
        )));
    } else {
        Transport::tcp()
    };
    let (id, host, port) = (connect.client_id.clone(), endpoint.host.clone(), endpoint.port);
    let keep_alive = Duration::from_secs(connect.keep_alive_secs);
    let inflight = inflight.max(1);
    if connect.protocol == 4 {
        let mut options = rumqttc::MqttOptions::new(id, host, port);
        options
            .set_clean_session(connect.clean_session)
            .set_keep_alive(keep_alive)
            .set_manual_acks(manual_acks)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_inflight(inflight)
            .set_request_channel_capacity(usize::from(inflight))
            .set_transport(transport);
        if !connect.username.is_empty() {
            options.set_credentials(connect.username.clone(), connect.password.clone());
        }
        return Ok(Options::V4(options));
    }
    let mut options = rumqttc::v5::MqttOptions::new(id, host, port);
    options
        .set_clean_start(connect.clean_session)
        .set_keep_alive(keep_alive)
        .set_manual_acks(manual_acks)
        .set_max_packet_size(Some(MAX_PACKET as u32))
        .set_outgoing_inflight_upper_limit(inflight)
        .set_request_channel_capacity(usize::from(inflight))
        .set_transport(transport);
    // MQTT 5 ends a session when the connection closes unless told otherwise: a
    // persistent session must outlive the process (what it had not acknowledged waits).
    if !connect.clean_session {
        options.set_session_expiry_interval(Some(u32::MAX));
    }
    if !connect.username.is_empty() {
        options.set_credentials(connect.username.clone(), connect.password.clone());
    }
    Ok(Options::V5(options))
}

/// rustls's client configuration: the CA file's certificates (or the system's roots),
/// and a client certificate and key for mutual TLS.
fn tls_config(component: &str, connect: &MqttConnect) -> Result<rustls::ClientConfig, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |reason: String| StartError::new(format!("{component}: {reason}"));
    let read = |what: &str, path: &str| {
        std::fs::read(path).map_err(|e| fail(format!("cannot read the {what} file `{path}`: {e}")))
    };
    let certs = |what: &str, path: &str| -> Result<Vec<CertificateDer<'static>>, StartError> {
        let pem = read(what, path)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("the {what} file `{path}` is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(fail(format!("the {what} file `{path}` holds no PEM certificate")));
        }
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    if connect.ca.is_empty() {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    } else {
        for cert in certs("CA", &connect.ca)? {
            roots
                .add(cert)
                .map_err(|e| fail(format!("the CA file `{}`: {e}", connect.ca)))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    match (connect.cert.is_empty(), connect.key.is_empty()) {
        (true, true) => Ok(builder.with_no_client_auth()),
        (false, false) => {
            let chain = certs("client certificate", &connect.cert)?;
            let pem = read("client key", &connect.key)?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                fail(format!(
                    "the client key file `{}` holds no usable PEM key: {e}",
                    connect.key
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| fail(format!("the client certificate and key do not go together: {e}")))
        }
        (false, true) => Err(fail("a client certificate (`cert`) needs its key (`key`)".into())),
        (true, false) => Err(fail("a client key (`key`) needs its certificate (`cert`)".into())),
    }
}

/// What the connector's thread and the pipeline's thread share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// The first failure retrying cannot fix; the thread has stopped.
    fatal: Mutex<Option<String>>,
    /// The pipeline asks the thread to leave.
    stop: AtomicBool,
}

impl Shared {
    /// `Err` once the thread met a failure retrying cannot fix.
    pub fn check(&self) -> Result<(), RunError> {
        match self.fatal() {
            Some(message) => Err(RunError::new(message)),
            None => Ok(()),
        }
    }

    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|first| first.clone())
    }

    fn set_fatal(&self, message: String) {
        if let Ok(mut first) = self.fatal.lock() {
            first.get_or_insert(message);
        }
        // A sleeping pipeline must see it now, not with the next message.
        crate::wake::notify();
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The connection as the connector's thread drives it.
pub(super) struct Link {
    component: &'static str,
    conn: Conn,
    shared: Arc<Shared>,
    backoff: Duration,
    /// Outages so far (one warning each).
    outages: u64,
    connected: bool,
    /// Between a lost connection and the next CONNACK.
    down: bool,
    connected_once: bool,
    /// Connections lost so far: a message's acknowledgement is only valid on the
    /// connection it arrived on (the broker resends it after a reconnect).
    pub losses: u64,
    /// Where a source reports its connection state (for `/health`).
    reports_to: Option<Connection>,
}

/// What [`Link::next`] saw.
pub(super) enum Seen {
    /// Nothing within the wait, or a lost connection (handled: logged, backed off).
    Nothing,
    /// Connected; `first` on the first connection of this run.
    Connected { session_present: bool, first: bool },
    /// Something else happened on the connection (a message, an acknowledgement, ..).
    Got(Recv),
    /// A failure retrying cannot fix (kept for the pipeline), or a stop request.
    Stopped,
}

impl Link {
    pub fn new(component: &'static str, conn: Conn, shared: Arc<Shared>) -> Link {
        Link {
            component,
            conn,
            shared,
            backoff: BACKOFF_FIRST,
            outages: 0,
            connected: false,
            down: false,
            connected_once: false,
            losses: 0,
            reports_to: None,
        }
    }

    /// Reports the connection state to `connection` from now on: not connected until
    /// the broker's first CONNACK.
    pub fn reporting_to(mut self, connection: Connection) -> Link {
        connection.disconnected("connecting");
        self.reports_to = Some(connection);
        self
    }

    /// Waits for the next event: at most 50 ms while connected, one connection attempt
    /// (up to 5 s) otherwise.
    pub fn next(&mut self) -> Seen {
        if self.shared.stopping() && !self.connected {
            return Seen::Stopped;
        }
        let ready = if self.connected { self.conn.ready() } else { None };
        let recv = match ready {
            Some(recv) => recv,
            None if self.connected => self.conn.recv(POLL_WAIT),
            None => {
                self.conn.carry();
                self.conn.recv(Duration::from_secs(CONNECT_TIMEOUT_SECS + 1))
            }
        };
        match recv {
            Recv::Timeout => Seen::Nothing,
            // Every request handle is gone: nothing more will be asked.
            Recv::Closed => Seen::Stopped,
            Recv::Connected { session_present } => self.connected_with(session_present),
            Recv::Lost { error, hopeless } => self.lost(&error, hopeless),
            other => Seen::Got(other),
        }
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The pipeline asked the thread to leave.
    pub fn shared_stopping(&self) -> bool {
        self.shared.stopping()
    }

    pub fn component(&self) -> &'static str {
        self.component
    }

    /// The thread itself decides to leave (the pipeline is gone).
    pub fn request_stop(&self) {
        self.shared.request_stop();
    }

    /// A failure retrying cannot fix, seen by the connector (a refused subscription):
    /// kept for the pipeline's thread, which ends the run.
    pub fn fail(&self, reason: String) {
        log::error(
            "mqtt failure",
            &[("component", self.component.into()), ("error", reason.clone().into())],
        );
        self.shared.set_fatal(format!("{}: {reason}", self.component));
    }

    fn connected_with(&mut self, session_present: bool) -> Seen {
        self.conn.restore(session_present);
        self.connected = true;
        if let Some(c) = &self.reports_to {
            c.connected();
        }
        self.backoff = BACKOFF_FIRST;
        let first = !self.connected_once;
        self.connected_once = true;
        if first || self.down {
            log::info(
                "mqtt connected",
                &[
                    ("component", self.component.into()),
                    ("session_present", session_present.into()),
                ],
            );
        }
        self.down = false;
        Seen::Connected { session_present, first }
    }

    /// A failed connection or attempt: a failure retrying cannot fix is kept for the
    /// pipeline's thread and stops the link; anything else starts (or continues) an
    /// outage and backs off before the next attempt.
    fn lost(&mut self, error: &str, hopeless: Option<String>) -> Seen {
        self.losses += 1;
        self.connected = false;
        if let Some(c) = &self.reports_to {
            c.disconnected(hopeless.as_deref().unwrap_or(error));
        }
        if let Some(reason) = hopeless {
            log::error(
                "mqtt connection failed",
                &[("component", self.component.into()), ("error", reason.clone().into())],
            );
            self.shared.set_fatal(format!("{}: {reason}", self.component));
            return Seen::Stopped;
        }
        if !self.down {
            self.down = true;
            self.outages += 1;
            log::warn(
                "mqtt connection lost",
                &[
                    ("component", self.component.into()),
                    ("error", error.into()),
                    ("outages", self.outages.into()),
                ],
            );
        } else {
            log::debug(
                "mqtt reconnection failed",
                &[("component", self.component.into()), ("error", error.into())],
            );
        }
        let until = Instant::now() + self.backoff;
        while Instant::now() < until && !self.shared.stopping() {
            std::thread::sleep(Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())));
        }
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        Seen::Nothing
    }

    /// Leaves the broker cleanly (a DISCONNECT, so it does not publish a will), waiting
    /// at most `within` for the broker to close the connection: closing it ourselves
    /// with unread data would reset it, and the broker would drop what it had not read
    /// yet (the last acknowledgements).
    pub fn disconnect(&mut self, handle: &Handle, within: Duration) {
        let until = Instant::now() + within;
        // The request queue may be full (of acknowledgements): serve the connection
        // until the DISCONNECT fits.
        while self.connected && !handle.try_disconnect() {
            if Instant::now() >= until {
                return;
            }
            if let Recv::Lost { .. } | Recv::Closed = self.conn.recv(POLL_WAIT) {
                self.connected = false;
            }
        }
        if !self.connected {
            return;
        }
        while Instant::now() < until {
            if let Recv::Lost { .. } | Recv::Closed = self.conn.recv(POLL_WAIT) {
                self.connected = false;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Result<(String, u16, bool), String> {
        Endpoint::parse(url).map(|e| (e.host, e.port, e.tls))
    }

    #[test]
    fn addresses_parse_with_default_ports() {
        assert_eq!(endpoint("mqtt://broker"), Ok(("broker".into(), 1883, false)));
        assert_eq!(
            endpoint("mqtts://broker.local"),
            Ok(("broker.local".into(), 8883, true))
        );
        assert_eq!(endpoint("mqtt://10.0.0.1:1884/"), Ok(("10.0.0.1".into(), 1884, false)));
        assert_eq!(endpoint("mqtts://[::1]:9000"), Ok(("::1".into(), 9000, true)));
        assert_eq!(endpoint("mqtt://[::1]"), Ok(("::1".into(), 1883, false)));
        for bad in [
            "tcp://broker",
            "broker:1883",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://broker:0",
            "mqtt://broker:port",
            "mqtt://broker:70000",
            "mqtt://u:p@broker",
            "mqtt://broker/topic",
            "mqtt://[::1",
        ] {
            assert!(endpoint(bad).is_err(), "{bad} was accepted");
        }
    }

    fn connect(url: &str) -> MqttConnect {
        MqttConnect {
            url: url.into(),
            client_id: "rill-test".into(),
            clean_session: true,
            protocol: 4,
            keep_alive_secs: 30,
            ..MqttConnect::default()
        }
    }

    fn start_error(connect: &MqttConnect) -> String {
        options("sources.in", connect, true, 10)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn options_carry_the_settings() {
        let mut c = connect("mqtt://broker:1999");
        c.username = "u".into();
        c.password = "p".into();
        c.clean_session = false;
        let Ok(Options::V4(o)) = options("sources.in", &c, true, 10) else {
            panic!("MQTT 3.1.1 options expected");
        };
        assert_eq!(o.broker_address(), ("broker".to_string(), 1999));
        assert_eq!(
            (o.client_id(), o.clean_session(), o.manual_acks()),
            ("rill-test".into(), false, true)
        );
        assert_eq!(o.keep_alive(), Duration::from_secs(30));
        assert_eq!(
            o.credentials().map(|l| (l.username, l.password)),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(o.max_packet_size(), MAX_PACKET);
    }

    #[test]
    fn mistakes_are_start_errors_naming_the_component() {
        let mut c = connect("http://broker");
        assert!(start_error(&c).starts_with("sources.in: `http://broker` is not an MQTT broker address"));
        c = connect("mqtt://broker");
        c.client_id.clear();
        c.clean_session = false;
        assert!(
            start_error(&c).contains("needs a fixed `client_id`"),
            "{}",
            start_error(&c)
        );
        c = connect("mqtt://broker");
        c.protocol = 3;
        assert!(start_error(&c).contains("unknown MQTT protocol version 3"));
        c = connect("mqtt://broker");
        c.password = "p".into();
        assert!(start_error(&c).contains("a password needs a user name"));
        c = connect("mqtt://broker");
        c.ca = "/etc/ca.pem".into();
        assert!(start_error(&c).contains("`ca` is given but `mqtt://broker` is not a TLS address"));
        c = connect("mqtt://broker");
        c.keep_alive_secs = 70_000;
        assert!(start_error(&c).contains("keep alive"));
    }

    #[test]
    fn unreadable_tls_files_are_start_errors_naming_the_path() {
        let mut c = connect("mqtts://broker");
        c.ca = "/nonexistent/ca.pem".into();
        let e = start_error(&c);
        assert!(
            e.starts_with("sources.in: cannot read the CA file `/nonexistent/ca.pem`"),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("rill-mqtt-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let not_pem = dir.join("ca.pem");
        std::fs::write(&not_pem, "hello").ok();
        c.ca = not_pem.display().to_string();
        assert!(
            start_error(&c).contains("holds no PEM certificate"),
            "{}",
            start_error(&c)
        );
        c.ca.clear();
        c.cert = "/nonexistent/client.pem".into();
        assert!(start_error(&c).contains("a client certificate (`cert`) needs its key"));
        c.key = "/nonexistent/client.key".into();
        let e = start_error(&c);
        assert!(
            e.contains("cannot read the client certificate file `/nonexistent/client.pem`"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn protocol_5_keeps_a_persistent_session_after_the_connection_closes() {
        let mut c = connect("mqtt://broker");
        c.protocol = 5;
        c.clean_session = false;
        let Ok(Options::V5(o)) = options("sources.in", &c, true, 10) else {
            panic!("MQTT 5 options expected");
        };
        assert_eq!((o.clean_start(), o.session_expiry_interval()), (false, Some(u32::MAX)));
        c.clean_session = true;
        let Ok(Options::V5(o)) = options("sources.in", &c, true, 10) else {
            panic!("MQTT 5 options expected");
        };
        assert_eq!((o.clean_start(), o.session_expiry_interval()), (true, None));
    }

    #[test]
    fn refused_credentials_and_tls_failures_are_hopeless_network_failures_are_not() {
        use rumqttc::{ConnectReturnCode, ConnectionError};
        let hopeless = protocol::hopeless4;
        let refused = ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword);
        assert_eq!(
            hopeless(&refused).as_deref(),
            Some("the MQTT broker refused the connection: bad user name or password")
        );
        let busy = ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable);
        assert_eq!(hopeless(&busy), None);
        let io = ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(hopeless(&io), None);
        let cut = ConnectionError::Tls(rumqttc::TlsError::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert_eq!(hopeless(&cut), None, "a cut during the handshake is retried");
        let bad_cert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let tls = ConnectionError::Tls(rumqttc::TlsError::Io(bad_cert));
        assert!(hopeless(&tls).is_some_and(|r| r.starts_with("TLS with the MQTT broker failed")));
    }
}
