//! `RedisWriter`: one command per record (PUBLISH, XADD, SET or HSET), a step's commands
//! sent as one pipeline (one round trip) when the output is flushed.
//!
//! Each command's reply is that record's outcome: a refusal (a key holding another type)
//! makes it a dead letter with the server's reason. When the server cannot be reached
//! the commands are kept and sent again (backing off up to 2 s, never blocking a step
//! for that long) until [`DELIVERY_TIMEOUT`]; then they fail as worth retrying, so a
//! disk buffer keeps them and sends them later, and without one they become dead
//! letters. A pipeline cut by a broken connection may have been partly applied: those
//! records are written again (at least once).

use super::client::{self, Reconnect, RedisConnect};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::sinks::{Address, MessageSink, Outcome, Undelivered};
use redis::Value;
use std::time::{Duration, Instant};

/// Records queued before `send` waits for the server (the disk buffer hands no more).
const MAX_QUEUED: usize = 10_000;
/// How long records may fail to reach the server before they fail for good.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// The command each record is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisWrite {
    /// `PUBLISH <name> <payload>`.
    Publish,
    /// `XADD <name> [MAXLEN ~ max_len] * <field> <payload>` (`max_len` 0: no trimming).
    Xadd { max_len: u64, field: &'static str },
    /// `SET <name> <payload> [PX ttl_ms]` (`ttl_ms` 0: no expiry).
    Set { ttl_ms: u64 },
    /// `HSET <name> <key> <payload>`, then `PEXPIRE <name> ttl_ms` when `ttl_ms` > 0.
    Hset { ttl_ms: u64 },
}

/// A record waiting for its reply.
struct Queued {
    tag: u64,
    payload: Vec<u8>,
    /// Commands it took in the pipeline (HSET with a TTL takes two).
    commands: usize,
}

pub struct RedisWriter {
    component: &'static str,
    client: redis::Client,
    con: Option<redis::Connection>,
    write: RedisWrite,
    /// The channel, stream, key or hash of a record whose address names none.
    name: String,
    pipe: redis::Pipeline,
    queued: Vec<Queued>,
    /// Outcomes decided outside `poll` (a `send` that had to wait), for the next one.
    done: Vec<Outcome>,
    reconnect: Reconnect,
    failing_since: Option<Instant>,
    retry_at: Option<Instant>,
    retry_after: Duration,
}

impl RedisWriter {
    pub fn new(
        component: &'static str,
        connect: RedisConnect,
        write: RedisWrite,
        name: &str,
        ctx: &Context,
    ) -> Result<RedisWriter, StartError> {
        let client = connect.client(component)?;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        Ok(RedisWriter {
            component,
            client,
            con: None,
            write,
            name: name.to_string(),
            pipe,
            queued: Vec::new(),
            done: Vec::new(),
            reconnect: Reconnect::new(component, ctx.events.connection(component)),
            failing_since: None,
            retry_at: None,
            retry_after: FIRST_RETRY,
        })
    }

    /// Sends the queued pipeline, applies the replies to `outcomes`. On a connection
    /// failure keeps it for later, or fails it (worth retrying) after
    /// [`DELIVERY_TIMEOUT`]. Refused credentials are the run's error.
    fn attempt(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError> {
        let sent = self.execute();
        if let Err(e) = &sent {
            if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed) {
                return Err(RunError::new(format!(
                    "{}: the Redis server refused the credentials: {e}",
                    self.component
                )));
            }
        }
        match sent {
            Ok(replies) => {
                self.reconnect.connected();
                let mut replies = replies.into_iter();
                for q in self.queued.drain(..) {
                    let failure = replies
                        .by_ref()
                        .take(q.commands)
                        .find_map(Result::err)
                        .map(|e| (format!("the Redis server refused it: {e}"), q.payload));
                    outcomes.push(Outcome {
                        tag: q.tag,
                        failure,
                        retriable: false,
                    });
                }
                self.pipe.clear();
                self.failing_since = None;
                self.retry_at = None;
                self.retry_after = FIRST_RETRY;
            }
            Err(e) => {
                self.con = None;
                let reason = e.to_string();
                // `retry_at` paces the attempts: the pipeline is not held up here.
                self.reconnect.lost(&reason);
                let since = *self.failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= DELIVERY_TIMEOUT {
                    let reason = format!(
                        "the Redis server could not be reached for {} s: {reason}",
                        DELIVERY_TIMEOUT.as_secs()
                    );
                    for q in self.queued.drain(..) {
                        outcomes.push(Outcome {
                            tag: q.tag,
                            failure: Some((reason.clone(), q.payload)),
                            retriable: true,
                        });
                    }
                    self.pipe.clear();
                    self.failing_since = None;
                } else {
                    self.retry_at = Some(Instant::now() + self.retry_after);
                    crate::wake::look_again_within(self.retry_after);
                    self.retry_after = (self.retry_after * 2).min(MAX_RETRY);
                }
            }
        }
        Ok(())
    }

    /// The replies of the queued pipeline, one per command (connecting first if needed).
    fn execute(&mut self) -> redis::RedisResult<Vec<redis::RedisResult<Value>>> {
        if self.con.is_none() {
            self.con = Some(client::connect(&self.client)?);
        }
        let Some(con) = self.con.as_mut() else {
            return Ok(Vec::new());
        };
        self.pipe.query(con)
    }

    /// Waits (backing off) until the queue was sent or failed for good, or a stop
    /// asks not to wait.
    fn drain(&mut self) -> Result<(), RunError> {
        let mut outcomes = Vec::new();
        let mut drained = Ok(());
        while !self.queued.is_empty() && drained.is_ok() {
            if let Some(at) = self.retry_at {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            drained = self.attempt(&mut outcomes);
            if crate::shutdown::give_up_waiting() {
                break;
            }
        }
        self.done.append(&mut outcomes);
        drained
    }
}

impl MessageSink for RedisWriter {
    fn send(&mut self, payload: &[u8], address: Address<'_>, tag: u64) -> Result<(), String> {
        if self.queued.len() >= MAX_QUEUED {
            // Back-pressure: the server is slow or away.
            self.drain().map_err(|e| e.to_string())?;
        }
        let name = address.topic.unwrap_or(&self.name);
        let commands = match self.write {
            RedisWrite::Publish => {
                self.pipe.cmd("PUBLISH").arg(name).arg(payload);
                1
            }
            RedisWrite::Xadd { max_len, field } => {
                let cmd = self.pipe.cmd("XADD").arg(name);
                if max_len > 0 {
                    cmd.arg("MAXLEN").arg("~").arg(max_len);
                }
                cmd.arg("*").arg(field).arg(payload);
                1
            }
            RedisWrite::Set { ttl_ms } => {
                let cmd = self.pipe.cmd("SET").arg(name).arg(payload);
                if ttl_ms > 0 {
                    cmd.arg("PX").arg(ttl_ms);
                }
                1
            }
            RedisWrite::Hset { ttl_ms } => {
                let Some(field) = address.key else {
                    return Err("no field for HSET (the key is null)".into());
                };
                self.pipe.cmd("HSET").arg(name).arg(field).arg(payload);
                if ttl_ms > 0 {
                    self.pipe.cmd("PEXPIRE").arg(name).arg(ttl_ms);
                    2
                } else {
                    1
                }
            }
        };
        self.queued.push(Queued {
            tag,
            payload: payload.to_vec(),
            commands,
        });
        Ok(())
    }

    fn poll(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError> {
        outcomes.append(&mut self.done);
        if self.queued.is_empty() {
            return Ok(());
        }
        if let Some(at) = self.retry_at {
            let wait = at.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                crate::wake::look_again_within(wait);
                return Ok(());
            }
        }
        self.attempt(outcomes)
    }

    /// A disk buffer hands no more than this, so `send` never waits behind it.
    fn max_in_flight(&self) -> Option<usize> {
        Some(MAX_QUEUED)
    }

    /// Sends what is queued, waiting for a server that is away up to
    /// [`DELIVERY_TIMEOUT`] (a stop does not wait).
    fn close(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), Undelivered> {
        let drained = self.drain();
        outcomes.append(&mut self.done);
        if self.queued.is_empty() {
            return Ok(());
        }
        Err(Undelivered {
            count: self.queued.len() as u64,
            reason: match drained {
                Err(e) => e.to_string(),
                Ok(()) => format!("{}: the Redis server could not be reached", self.component),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn records_for_a_server_that_is_away_are_kept_and_sent_again_not_failed_at_once() {
        let ctx = Context::new(Settings::from_values(vec![]), 8);
        // Nothing listens on port 1.
        let connect = RedisConnect {
            url: "redis://127.0.0.1:1".into(),
            username: String::new(),
            password: String::new(),
        };
        let mut writer = RedisWriter::new("sinks.out", connect, RedisWrite::Set { ttl_ms: 0 }, "k", &ctx)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(writer.max_in_flight(), Some(MAX_QUEUED));
        assert_eq!(writer.send(b"{}", Address::default(), 7), Ok(()));
        let mut outcomes = Vec::new();
        assert_eq!(writer.poll(&mut outcomes), Ok(()));
        assert!(outcomes.is_empty(), "kept: {outcomes:?}");
        assert_eq!(writer.queued.len(), 1);
        assert!(writer.retry_at.is_some(), "another attempt is scheduled");
        assert!(!ctx.events.connection("sinks.out").is_connected());
    }

    #[test]
    fn hset_without_a_field_is_refused_for_that_record() {
        let ctx = Context::new(Settings::from_values(vec![]), 8);
        let connect = RedisConnect {
            url: "redis://127.0.0.1:1".into(),
            username: String::new(),
            password: String::new(),
        };
        let mut writer = RedisWriter::new("sinks.out", connect, RedisWrite::Hset { ttl_ms: 0 }, "h", &ctx)
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = writer.send(b"{}", Address::default(), 1);
        assert!(refused.is_err_and(|e| e.contains("HSET")));
        assert!(writer.queued.is_empty());
    }
}
