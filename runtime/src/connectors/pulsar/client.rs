//! What the Pulsar source and sink share: the connection settings, the client, the
//! thread with its tokio runtime, and reporting an outage once.

use crate::errors::StartError;
use crate::internal_events::Connection;
use crate::log;
use pulsar::{Authentication, ConnectionRetryOptions, OperationRetryOptions, Pulsar, TokioExecutor};
use serde_json::json;
use std::future::Future;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The first wait after a failed attempt; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where the broker is and who we are, resolved at start.
#[derive(Debug, Clone)]
pub struct PulsarConnect {
    /// `pulsar://host:6650`.
    pub url: String,
    /// A JWT for token authentication; empty: none.
    pub token: String,
}

impl PulsarConnect {
    /// A URL that cannot be a broker's is a start error (the compiler checks literal
    /// ones; this catches a setting's value).
    pub fn check(&self, component: &str) -> Result<(), StartError> {
        let url = self.url.trim();
        let host = url.strip_prefix("pulsar://").unwrap_or_default();
        if host.is_empty() || host.starts_with([':', '/']) {
            return Err(StartError::new(format!(
                "{component}: `{url}` is not a Pulsar URL (pulsar://host:6650)"
            )));
        }
        Ok(())
    }

    /// Connects (the crate retries a lost connection by itself, backing off to 5 s).
    pub async fn client(&self) -> Result<Pulsar<TokioExecutor>, pulsar::Error> {
        let mut builder = Pulsar::builder(self.url.trim(), TokioExecutor)
            .with_connection_retry_options(ConnectionRetryOptions {
                min_backoff: FIRST_BACKOFF,
                max_backoff: MAX_BACKOFF,
                max_retries: u32::MAX,
                connection_timeout: Duration::from_secs(5),
                keep_alive: Duration::from_secs(30),
                ..ConnectionRetryOptions::default()
            })
            .with_operation_retry_options(OperationRetryOptions {
                operation_timeout: Duration::from_secs(10),
                retry_delay: Duration::from_millis(500),
                max_retries: None,
            });
        if !self.token.is_empty() {
            builder = builder.with_auth(Authentication {
                name: "token".into(),
                data: self.token.clone().into_bytes(),
            });
        }
        builder.build().await
    }
}

/// A topic's full name: `events` is `persistent://public/default/events`, and
/// `tenant/namespace/topic` is `persistent://tenant/namespace/topic` (as Apache brokers
/// read them; not every broker does, so the client never sends a short name).
pub fn full_topic(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains("://") {
        name.into()
    } else if name.contains('/') {
        format!("persistent://{name}").into()
    } else {
        format!("persistent://public/default/{name}").into()
    }
}

/// Whether the broker refused who we are: retrying cannot help, the run ends.
pub fn refused(e: &pulsar::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    matches!(e, pulsar::Error::Authentication(_))
        || text.contains("authenticationerror")
        || text.contains("authorizationerror")
        || text.contains("authentication")
}

/// Starts a thread named `name` that runs `work` to its end on a single-threaded tokio
/// runtime.
pub fn spawn<F, Fut>(component: &str, name: String, work: F) -> Result<JoinHandle<()>, StartError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    forward_client_log();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::new(format!("{component}: cannot start the Pulsar runtime: {e}")))?;
    std::thread::Builder::new()
        .name(name)
        .spawn(move || runtime.block_on(work()))
        .map_err(|e| StartError::new(format!("{component}: cannot start the Pulsar thread: {e}")))
}

/// Forwards the `pulsar` crate's own log records into the binary's log: its errors and
/// warnings as warnings (the connector decides what is an error), the rest at debug.
struct ClientLog;

impl ClientLog {
    fn level(level: ::log::Level) -> Option<log::Level> {
        match level {
            ::log::Level::Error | ::log::Level::Warn => Some(log::Level::Warn),
            ::log::Level::Info | ::log::Level::Debug => Some(log::Level::Debug),
            ::log::Level::Trace => None,
        }
    }
}

impl ::log::Log for ClientLog {
    fn enabled(&self, metadata: &::log::Metadata<'_>) -> bool {
        metadata.target().starts_with("pulsar") && Self::level(metadata.level()).is_some_and(log::enabled)
    }

    fn log(&self, record: &::log::Record<'_>) {
        if let (true, Some(level)) = (self.enabled(record.metadata()), Self::level(record.level())) {
            log::log(
                level,
                "pulsar client",
                &[
                    ("target", json!(record.target())),
                    ("message", json!(record.args().to_string())),
                ],
            );
        }
    }

    fn flush(&self) {}
}

/// Sends the client's log records to the binary's log (once per process; a logger set
/// before is left alone).
pub fn forward_client_log() {
    if ::log::set_logger(&ClientLog).is_ok() {
        ::log::set_max_level(::log::LevelFilter::Debug);
    }
}

/// A failure the thread cannot recover from, for the pipeline's thread to report.
#[derive(Default)]
pub struct Fatal(Mutex<Option<String>>);

impl Fatal {
    pub fn set(&self, why: String) {
        if let Ok(mut fatal) = self.0.lock() {
            fatal.get_or_insert(why);
        }
        crate::wake::notify();
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|f| f.clone())
    }
}

/// Reports the broker unreachable once per outage (and to `/health`), and back.
pub struct Outage {
    component: &'static str,
    /// What the log says when it begins.
    says: &'static str,
    state: Connection,
    down_since: Option<Instant>,
    backoff: Duration,
}

impl Outage {
    pub fn new(component: &'static str, says: &'static str, state: Connection) -> Self {
        Outage {
            component,
            says,
            state,
            down_since: None,
            backoff: FIRST_BACKOFF,
        }
    }

    /// An attempt failed: says so the first time; the wait before the next attempt.
    pub fn failed(&mut self, why: &str) -> Duration {
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            log::warn(
                self.says,
                &[("component", json!(self.component)), ("reason", json!(why))],
            );
        }
        self.state.disconnected(why);
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        wait
    }

    pub fn connected(&mut self) {
        self.backoff = FIRST_BACKOFF;
        if let Some(since) = self.down_since.take() {
            self.state.connected();
            log::info(
                "pulsar broker reachable again",
                &[
                    ("component", json!(self.component)),
                    ("down_ms", json!(since.elapsed().as_millis() as u64)),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_topic_names_are_made_whole() {
        assert_eq!(full_topic("events"), "persistent://public/default/events");
        assert_eq!(full_topic("t/ns/events"), "persistent://t/ns/events");
        assert_eq!(full_topic("non-persistent://t/ns/x"), "non-persistent://t/ns/x");
    }

    #[test]
    fn a_url_that_is_not_a_brokers_is_refused_at_start() {
        let connect = |url: &str| PulsarConnect {
            url: url.into(),
            token: String::new(),
        };
        assert!(connect("pulsar://127.0.0.1:6650").check("sources.in").is_ok());
        for bad in [
            "",
            "pulsar://",
            "http://127.0.0.1:6650",
            "pulsar://:6650",
            "127.0.0.1:6650",
        ] {
            let err = connect(bad).check("sources.in").err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.starts_with("sources.in: `")),
                "{bad}: {err:?}"
            );
        }
    }
}
