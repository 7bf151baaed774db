//! Nagle's algorithm off on the Pulsar client's connections.
//!
//! The `pulsar` crate (6.9) leaves `TCP_NODELAY` unset and has no setting for it; the
//! official clients (Java, C++, Go) set it. With Nagle on, a consumer's flow request (a
//! few bytes) waits behind its acknowledgements until the broker's kernel acknowledges
//! them, which it delays up to 40 ms while it has nothing to send back, and nothing is
//! what a broker without permits sends: bench/pulsar.sh measured stalls of 40–80 ms
//! every 20,000 messages, and 0.53× the hand-written relay (which shares one connection
//! with its producer's steady traffic, so it rarely waits).
//!
//! So each Pulsar connector looks, now and then, for this process's sockets connected to
//! an address its client connects to (the service URL's, and each topic's broker), and
//! sets the option on those that lack it. "Now and then": the crate reconnects by itself,
//! and a new connection is a new socket.

use pulsar::{Pulsar, TokioExecutor};
use std::net::SocketAddr;
use std::time::Duration;

/// How often a connector looks again (a reconnection makes a new socket).
pub const EVERY: Duration = Duration::from_secs(1);

/// When to look: at once, then every [`EVERY`] (not in bursts after a busy spell).
pub fn ticks() -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// The addresses a client connects to.
#[derive(Debug, Default)]
pub struct Brokers {
    addrs: Vec<SocketAddr>,
}

impl Brokers {
    /// Adds the service URL's addresses and those of the brokers serving `topics` (as
    /// the lookup answers, partitions included). What does not resolve is left out: its
    /// socket keeps Nagle.
    pub async fn learn<'a>(
        &mut self,
        client: &Pulsar<TokioExecutor>,
        url: &str,
        topics: impl IntoIterator<Item = &'a str>,
    ) {
        self.add_url(url).await;
        for topic in topics {
            if let Ok(partitions) = client.lookup_partitioned_topic(topic).await {
                for (_, broker) in partitions {
                    self.add_url(broker.url.as_str()).await;
                }
            }
        }
    }

    async fn add_url(&mut self, url: &str) {
        let Some(host_port) = host_port(url) else { return };
        if let Ok(addrs) = tokio::net::lookup_host(host_port).await {
            for addr in addrs {
                if !self.addrs.contains(&addr) {
                    self.addrs.push(addr);
                }
            }
        }
    }

    /// Sets `TCP_NODELAY` on every socket of this process connected to one of these
    /// addresses; returns how many it changed.
    pub fn set_nodelay(&self) -> usize {
        if self.addrs.is_empty() {
            return 0;
        }
        sockets::connected_to(&self.addrs, |socket| match socket.nodelay() {
            Ok(false) => socket.set_nodelay(true).is_ok(),
            _ => false,
        })
    }
}

/// `host:port` of `pulsar://host:port/...` or `pulsar+ssl://...` (6650, 6651 by default).
fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    if authority.is_empty() {
        return None;
    }
    let has_port = match authority.rsplit_once(':') {
        // `[::1]` has colons and no port.
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    };
    if has_port {
        return Some(authority.to_string());
    }
    let port = if scheme.ends_with("+ssl") { 6651 } else { 6650 };
    Some(format!("{authority}:{port}"))
}

#[cfg(target_os = "linux")]
mod sockets {
    use std::mem::ManuallyDrop;
    use std::net::{SocketAddr, TcpStream};
    use std::os::fd::{FromRawFd, RawFd};

    /// Calls `change` with each of this process's sockets whose peer is in `peers`,
    /// found through `/proc/self/fd`; returns how many calls answered `true`.
    pub fn connected_to(peers: &[SocketAddr], mut change: impl FnMut(&TcpStream) -> bool) -> usize {
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return 0;
        };
        let mut changed = 0;
        for entry in fds.flatten() {
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.as_os_str().as_encoded_bytes().starts_with(b"socket:"));
            let fd = entry.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok());
            let (true, Some(fd)) = (is_socket, fd) else { continue };
            // SAFETY: the stream is never dropped, so the descriptor is not closed here;
            // it only reads the peer's address and sets an option. Should another thread
            // close the descriptor meanwhile, those calls fail (EBADF), or, if the number
            // was reused, act on another socket to the same peer: both harmless.
            let socket = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
            if socket.peer_addr().is_ok_and(|peer| peers.contains(&peer)) && change(&socket) {
                changed += 1;
            }
        }
        changed
    }
}

#[cfg(not(target_os = "linux"))]
mod sockets {
    use std::net::{SocketAddr, TcpStream};

    /// No `/proc/self/fd` to look through: connections keep Nagle on.
    pub fn connected_to(_peers: &[SocketAddr], _change: impl FnMut(&TcpStream) -> bool) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn host_and_port_come_from_the_url() {
        assert_eq!(host_port("pulsar://127.0.0.1:6650").as_deref(), Some("127.0.0.1:6650"));
        assert_eq!(host_port("pulsar://broker").as_deref(), Some("broker:6650"));
        assert_eq!(host_port("pulsar+ssl://broker/").as_deref(), Some("broker:6651"));
        assert_eq!(host_port(" pulsar://[::1]:7000/x ").as_deref(), Some("[::1]:7000"));
        assert_eq!(host_port("pulsar://[::1]").as_deref(), Some("[::1]:6650"));
        assert_eq!(host_port("pulsar://"), None);
        assert_eq!(host_port("broker:6650"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_sockets_connected_to_the_brokers_are_changed() {
        let broker = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let to_broker = TcpStream::connect(broker.local_addr().unwrap()).unwrap();
        let to_other = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        let brokers = Brokers {
            addrs: vec![broker.local_addr().unwrap()],
        };
        assert!(!to_broker.nodelay().unwrap());
        assert_eq!(brokers.set_nodelay(), 1);
        assert!(to_broker.nodelay().unwrap(), "the broker's connection");
        assert!(!to_other.nodelay().unwrap(), "another peer's connection is left alone");
        // The listening sockets and the accepted ends have other peers, or none.
        assert_eq!(brokers.set_nodelay(), 0, "nothing left to change");
        // Still open and usable: the walk closed nothing.
        to_broker.peer_addr().unwrap();
        to_other.peer_addr().unwrap();
    }
}
