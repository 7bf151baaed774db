//! `RedisStream`: reads one stream as a consumer of a consumer group, and acknowledges
//! (XACK) an entry only once its records are safe downstream.
//!
//! A thread of ours reads (`XREADGROUP ... BLOCK`) and hands entries to `poll` over a
//! bounded channel. Each entry id waits in [`Unacked`] under the epoch of its batch
//! until [`Acks::confirmed`] passes it; `commit` then hands the ids to the thread, which
//! acknowledges them before its next read (and again after a reconnect: ids do not
//! change). So after a crash, what was read and not acknowledged is still pending:
//! - this consumer's own pending entries (the name is stable) are read again first
//!   (`XREADGROUP ... 0`) when the binary starts;
//! - entries pending for another consumer idle longer than `claim_idle` (a copy of the
//!   binary that died for good) are claimed with `XAUTOCLAIM`, every half `claim_idle`.
//!   Entries this binary holds itself are not handed over twice (a long window may
//!   hold them past `claim_idle`).

use super::client::{self, Reconnect, RedisConnect};
use super::reply::{self, Entry, EntryId};
use super::thread::{hand_over, Shared};
use crate::acks::{Acks, Unacked};
use crate::batch::{MetaValue, RawBatch};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::log;
use crate::sources::{Poll, RawSource};
use redis::Value;
use serde_json::json;
use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Reads (of up to [`COUNT`] entries) the thread may hold for the pipeline before it
/// waits.
const CHANNEL: usize = 8;
/// Entries asked for by one read.
const COUNT: usize = 512;
/// How long one read waits for new entries (the thread looks at acknowledgements and
/// at whether it must stop in between).
const BLOCK_MS: usize = 100;
/// Ids acknowledged by one XACK, at most.
const ACK_CHUNK: usize = 1000;

/// What to read, and as whom.
#[derive(Debug, Clone)]
pub struct RedisStreamRead {
    pub stream: String,
    pub group: String,
    /// Stable: its pending entries are its own again after a restart.
    pub consumer: String,
    /// The entry field holding the record.
    pub field: String,
    /// Where a group created here starts: the whole stream, or new entries only.
    pub earliest: bool,
    /// Another consumer's pending entry idle this long is claimed.
    pub claim_idle_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Stream,
    Id,
}

pub struct RedisStream {
    component: &'static str,
    stream: String,
    acks: Acks,
    metadata: Vec<Wanted>,
    /// The thread's reads; the one being taken apart.
    entries: Option<Receiver<Vec<Entry>>>,
    current: std::vec::IntoIter<Entry>,
    /// Ids to acknowledge, to the thread (unbounded: at most what was read).
    to_ack: Sender<EntryId>,
    unacked: Unacked<EntryId>,
    /// An entry id as text, for the `id` metadata field.
    id_text: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl RedisStream {
    /// Starts reading `read.stream` as `read.consumer` of `read.group` (created when
    /// missing, with the stream) on a thread of its own, retrying until the server
    /// answers. `metadata` names what each record's metadata fields receive, in order:
    /// `stream`, `id`.
    pub fn new(
        component: &'static str,
        connect: RedisConnect,
        read: RedisStreamRead,
        metadata: &[&'static str],
        ctx: &Context,
    ) -> Result<RedisStream, StartError> {
        let metadata = metadata
            .iter()
            .map(|name| match *name {
                "stream" => Ok(Wanted::Stream),
                "id" => Ok(Wanted::Id),
                _ => Err(StartError::new(format!(
                    "{component}: no Redis stream metadata `{name}`"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = connect.client(component)?;
        let shared = Arc::new(Shared::default());
        let (deliver, entries) = mpsc::sync_channel(CHANNEL);
        let (to_ack, acks_in) = mpsc::channel();
        let stream = read.stream.clone();
        let reader = Reader {
            component,
            client,
            read,
            deliver,
            acks_in,
            unacked_ids: Vec::new(),
            held: HashSet::new(),
            shared: shared.clone(),
            reconnect: Reconnect::new(component, ctx.events.connection(component)),
            pending_from: Some(EntryId(0, 0)),
            read_again: 0,
            last_claim: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("redis {component}"))
            .spawn(move || reader.run())
            .map_err(|e| StartError::new(format!("{component}: cannot start the Redis thread: {e}")))?;
        Ok(RedisStream {
            component,
            stream,
            acks: ctx.acks.clone(),
            metadata,
            entries: Some(entries),
            current: Vec::new().into_iter(),
            to_ack,
            unacked: Unacked::new(),
            id_text: String::new(),
            shared,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        self.entries = None;
        self.shared.request_stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl RawSource for RedisStream {
    /// The thread wakes the pipeline with each read that brought entries.
    fn idle_for(&self) -> Option<Duration> {
        None
    }

    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        let Some(entries) = &self.entries else {
            return Ok(Poll::Idle);
        };
        while batch.len() < max {
            let Some(entry) = self.current.next() else {
                match entries.try_recv() {
                    Ok(read) => {
                        self.current = read.into_iter();
                        continue;
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            };
            match &entry.payload {
                Ok(payload) if self.metadata.is_empty() => batch.push(payload),
                Ok(payload) => {
                    use std::fmt::Write as _;
                    self.id_text.clear();
                    let _ = write!(self.id_text, "{}", entry.id);
                    let values = self.metadata.iter().map(|wanted| match wanted {
                        Wanted::Stream => MetaValue::Text(self.stream.as_bytes()),
                        Wanted::Id => MetaValue::Text(self.id_text.as_bytes()),
                    });
                    batch.push_message(payload, values);
                }
                Err(why) => batch.push_failed(entry.id.to_string().as_bytes(), why.clone()),
            }
            // A record that does not decode is a dead letter naming its entry.
            batch.set_origin(format_args!("{} {}", self.stream, entry.id));
            self.unacked.read(entry.id);
        }
        if !batch.is_empty() {
            self.acks.next_epoch();
        }
        self.shared.check(self.component)?;
        Ok(Poll::unless_filled(batch, Poll::Idle))
    }

    fn batch_done(&mut self) {
        self.unacked.batch_done(self.acks.epoch());
    }

    fn commit(&mut self) -> Result<(), RunError> {
        let mut safe = Vec::new();
        self.unacked.confirmed(self.acks.confirmed(), &mut safe);
        for id in safe {
            // The thread is gone only after a failure `poll` reports.
            if self.to_ack.send(id).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Acknowledges what is confirmed, then stops reading. Entries not confirmed stay
    /// pending: this consumer reads them again on the next start.
    fn close(&mut self) -> Result<(), RunError> {
        self.commit()?;
        self.stop();
        self.shared
            .check(self.component)
            .map_err(|e| RunError::new(format!("{e} (at close)")))
    }
}

impl Drop for RedisStream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The source's thread.
struct Reader {
    component: &'static str,
    client: redis::Client,
    read: RedisStreamRead,
    deliver: SyncSender<Vec<Entry>>,
    acks_in: Receiver<EntryId>,
    /// Ids `commit` sent that the server has not yet acknowledged (kept across a
    /// reconnect).
    unacked_ids: Vec<EntryId>,
    /// Ids handed to the pipeline and not yet acknowledged: never handed over twice.
    held: HashSet<EntryId>,
    shared: Arc<Shared>,
    reconnect: Reconnect,
    /// Where this consumer's pending entries from before the start are read from next;
    /// `None` once they all were.
    pending_from: Option<EntryId>,
    /// How many of them there were.
    read_again: usize,
    last_claim: Option<Instant>,
}

/// How a session ended.
enum Ended {
    /// The pipeline stopped (acknowledgements sent as far as possible).
    Stopped,
    Failed(redis::RedisError),
}

impl Reader {
    fn run(mut self) {
        loop {
            match self.session() {
                Ended::Stopped => return,
                Ended::Failed(e) if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed) => {
                    self.shared
                        .fail(format!("the Redis server refused the credentials: {e}"));
                    return;
                }
                Ended::Failed(e) => {
                    let shared = self.shared.clone();
                    self.reconnect.failed(&e.to_string(), || shared.stopping());
                    if self.shared.stopping() {
                        return;
                    }
                }
            }
        }
    }

    fn session(&mut self) -> Ended {
        let mut con = match client::connect(&self.client) {
            Ok(con) => con,
            Err(e) => return Ended::Failed(e),
        };
        if let Err(e) = self.create_group(&mut con) {
            return Ended::Failed(e);
        }
        self.reconnect.connected();
        loop {
            if self.shared.stopping() {
                self.finish(&mut con);
                return Ended::Stopped;
            }
            let read = self.acknowledge(&mut con).and_then(|()| self.next_entries(&mut con));
            let entries = match read {
                Ok(entries) => entries,
                Err(e) if e.is_timeout() => continue,
                Err(e) => return Ended::Failed(e),
            };
            if !entries.is_empty() && !self.hand_over(entries) {
                self.finish(&mut con);
                return Ended::Stopped;
            }
        }
    }

    /// `XGROUP CREATE ... MKSTREAM`; a group that exists already is fine.
    fn create_group(&self, con: &mut redis::Connection) -> redis::RedisResult<()> {
        let start = if self.read.earliest { "0" } else { "$" };
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.read.stream)
            .arg(&self.read.group)
            .arg(start)
            .arg("MKSTREAM")
            .query(con);
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// The next entries: first this consumer's own pending ones (once, at start), then
    /// claimed ones when a claim is due, else new ones (waiting up to [`BLOCK_MS`]).
    fn next_entries(&mut self, con: &mut redis::Connection) -> redis::RedisResult<Vec<Entry>> {
        if let Some(from) = self.pending_from.take() {
            let (last, pending) = self.read_group(con, &from.to_string(), None)?;
            self.pending_from = last;
            self.read_again += pending.len();
            if self.pending_from.is_none() && self.read_again > 0 {
                log::info(
                    "redis stream: entries read before the restart and never acknowledged are read again",
                    &[
                        ("component", json!(self.component)),
                        ("entries", json!(self.read_again)),
                    ],
                );
            }
            return Ok(pending);
        }
        let every = Duration::from_millis((self.read.claim_idle_ms / 2).max(1000));
        if self.last_claim.is_none_or(|at| at.elapsed() >= every) {
            self.last_claim = Some(Instant::now());
            let claimed = self.claim(con)?;
            if !claimed.is_empty() {
                log::warn(
                    "redis stream: entries pending for another consumer were claimed",
                    &[
                        ("component", json!(self.component)),
                        ("entries", json!(claimed.len())),
                        ("idle_ms", json!(self.read.claim_idle_ms)),
                    ],
                );
                return Ok(claimed);
            }
        }
        Ok(self.read_group(con, ">", Some(BLOCK_MS))?.1)
    }

    /// `XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS s <from>`: from `>` (new
    /// entries) or an id (this consumer's pending entries after it); the last id read,
    /// and the entries not handed over here already.
    fn read_group(
        &mut self,
        con: &mut redis::Connection,
        from: &str,
        block: Option<usize>,
    ) -> redis::RedisResult<(Option<EntryId>, Vec<Entry>)> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.read.group)
            .arg(&self.read.consumer)
            .arg("COUNT")
            .arg(COUNT);
        if let Some(ms) = block {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS").arg(&self.read.stream).arg(from);
        let value: Value = cmd.query(con)?;
        let (last, mut entries) = reply::read_group(value, &self.read.field).map_err(unexpected)?;
        entries.retain(|e| !self.held.contains(&e.id));
        Ok((last, entries))
    }

    /// `XAUTOCLAIM`, until the cursor comes back to `0-0`: entries pending idle for at
    /// least `claim_idle`, except those handed over here already.
    fn claim(&mut self, con: &mut redis::Connection) -> redis::RedisResult<Vec<Entry>> {
        let mut cursor = "0-0".to_string();
        let mut claimed = Vec::new();
        loop {
            let value: Value = redis::cmd("XAUTOCLAIM")
                .arg(&self.read.stream)
                .arg(&self.read.group)
                .arg(&self.read.consumer)
                .arg(self.read.claim_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(COUNT)
                .query(con)?;
            let (next, entries) = reply::autoclaim(value, &self.read.field).map_err(unexpected)?;
            claimed.extend(entries.into_iter().filter(|e| !self.held.contains(&e.id)));
            if next == "0-0" || claimed.len() >= COUNT * CHANNEL {
                return Ok(claimed);
            }
            cursor = next;
        }
    }

    /// Hands one read to the pipeline; `false` once it stopped.
    fn hand_over(&mut self, read: Vec<Entry>) -> bool {
        let ids: Vec<EntryId> = read.iter().map(|e| e.id).collect();
        if !hand_over(&self.deliver, read, &self.shared) {
            return false;
        }
        self.held.extend(ids);
        true
    }

    /// Sends the acknowledgements `commit` handed over (XACK, in chunks).
    fn acknowledge(&mut self, con: &mut redis::Connection) -> redis::RedisResult<()> {
        while let Ok(id) = self.acks_in.try_recv() {
            self.unacked_ids.push(id);
        }
        let mut text = String::new();
        while !self.unacked_ids.is_empty() {
            let chunk = self.unacked_ids.len().min(ACK_CHUNK);
            let ids = &self.unacked_ids[..chunk];
            let mut xack = redis::cmd("XACK");
            xack.arg(&self.read.stream).arg(&self.read.group);
            for id in ids {
                use std::fmt::Write as _;
                text.clear();
                let _ = write!(text, "{id}");
                xack.arg(&text);
            }
            let _: u64 = xack.query(con)?;
            for id in ids {
                self.held.remove(id);
            }
            self.unacked_ids.drain(..chunk);
        }
        Ok(())
    }

    /// The pipeline stopped: acknowledges what its last commit sent (before the stop,
    /// so it is on the channel now).
    fn finish(&mut self, con: &mut redis::Connection) {
        if let Err(e) = self.acknowledge(con) {
            log::warn(
                "redis stream: acknowledgements not sent at close; those entries are read again on the next start",
                &[
                    ("component", json!(self.component)),
                    ("entries", json!(self.unacked_ids.len())),
                    ("reason", json!(e.to_string())),
                ],
            );
        }
    }
}

/// A reply that is not what the command returns.
fn unexpected(why: String) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "an unexpected reply", why))
}
