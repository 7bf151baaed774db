//! What the Redis source and sink share: the connection settings, connecting with a
//! timeout, and waiting between attempts while the server is away.

use crate::errors::StartError;
use crate::internal_events::Connection;
use crate::log;
use redis::{Client, IntoConnectionInfo};
use serde_json::json;
use std::time::Duration;

/// How long connecting, and each command, may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait after a failed attempt; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where the server is and who we are, resolved at start.
#[derive(Debug, Clone)]
pub struct RedisConnect {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Empty: none (or the URL's).
    pub username: String,
    /// Empty: none (or the URL's).
    pub password: String,
}

impl RedisConnect {
    /// The client (it does not connect yet); a URL it cannot read is a start error.
    pub fn client(&self, component: &str) -> Result<Client, StartError> {
        let bad =
            |e: redis::RedisError| StartError::new(format!("{component}: `{}` is not a Redis URL: {e}", self.url));
        let mut info = self.url.as_str().into_connection_info().map_err(bad)?;
        let mut settings = info.redis_settings().clone();
        if !self.username.is_empty() {
            settings = settings.set_username(&self.username);
        }
        if !self.password.is_empty() {
            settings = settings.set_password(&self.password);
        }
        info = info.set_redis_settings(settings);
        Client::open(info).map_err(bad)
    }
}

/// Waits between connection attempts: 100 ms, doubling to 5 s; reports the connection
/// down (once per outage) and up again.
pub struct Reconnect {
    component: &'static str,
    state: Connection,
    backoff: Duration,
    down_since: Option<std::time::Instant>,
}

impl Reconnect {
    pub fn new(component: &'static str, state: Connection) -> Self {
        Reconnect {
            component,
            state,
            backoff: FIRST_BACKOFF,
            down_since: None,
        }
    }

    /// An attempt failed (or a connection broke): says so the first time, then waits,
    /// in slices, unless `stop` turns true.
    pub fn failed(&mut self, why: &str, stop: impl Fn() -> bool) {
        self.lost(why);
        let until = std::time::Instant::now() + self.backoff;
        while std::time::Instant::now() < until && !stop() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The connection is down: said once per outage, and reported to `/health`.
    pub fn lost(&mut self, why: &str) {
        if self.down_since.is_none() {
            self.down_since = Some(std::time::Instant::now());
            log::warn(
                "redis connection lost; reconnecting",
                &[("component", json!(self.component)), ("reason", json!(why))],
            );
        }
        self.state.disconnected(why);
    }

    /// Connected: `true` when this ends an outage.
    pub fn connected(&mut self) -> bool {
        self.state.connected();
        self.backoff = FIRST_BACKOFF;
        match self.down_since.take() {
            Some(since) => {
                log::info(
                    "redis connection back",
                    &[
                        ("component", json!(self.component)),
                        ("down_ms", json!(since.elapsed().as_millis() as u64)),
                    ],
                );
                true
            }
            None => false,
        }
    }
}

/// Connects with [`IO_TIMEOUT`] for the connection and for every command on it.
pub fn connect(client: &Client) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(url: &str, username: &str, password: &str) -> RedisConnect {
        RedisConnect {
            url: url.into(),
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn credentials_from_the_settings_win_over_the_urls_and_a_bad_url_is_a_start_error() {
        let client = connect("redis://u:p@127.0.0.1:6390/2", "", "").client("sinks.out");
        let info = client.map(|c| c.get_connection_info().redis_settings().clone());
        let info = info.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((info.username(), info.password(), info.db()), (Some("u"), Some("p"), 2));
        let client = connect("redis://u:p@127.0.0.1:6390", "app", "s3cret").client("sinks.out");
        let info = client.map(|c| c.get_connection_info().redis_settings().clone());
        let info = info.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((info.username(), info.password()), (Some("app"), Some("s3cret")));
        let err = connect("http://127.0.0.1:6379", "", "").client("sinks.out").err();
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.starts_with("sinks.out: `http://127.0.0.1:6379` is not a Redis URL"),
            "{err}"
        );
    }
}
