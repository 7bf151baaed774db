//! `HttpSource`: an ingest server; a request is answered `202` only once its records
//! are safe downstream.
//!
//! A fixed pool of threads accepts connections and reads requests (`server.rs`); a
//! request's records wait in a queue bounded in records (`max_pending`): when it is
//! full a request is answered `503` with `Retry-After: 1` before its body is read, so
//! memory stays bounded however fast clients send. `poll` takes records from the queue
//! on the pipeline's thread (waking it through [`crate::wake::notify`]); a request whose
//! last record was read waits, under the epoch of that batch, until
//! [`Acks::confirmed`] passes it (the same acknowledgements MQTT's QoS 1 uses), and
//! `commit` hands it to the answering thread, which writes `202`. At close the server
//! stops accepting, and requests not confirmed (queued, or read but not yet safe) are
//! answered `503`: the client sends them again (at least once).

use super::body;
use super::server::{self, Answer, Records, Rules};
use crate::acks::{Acks, Unacked};
use crate::batch::{MetaValue, RawBatch};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::log;
use crate::sources::arrival::{ArrivalDecoder, Arrived, ArrivedRun};
use crate::sources::{Poll, RawSource};
use serde_json::json;
use std::collections::VecDeque;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Threads reading requests: how many clients may be sending at once.
const READERS: usize = 4;

/// How long a client may take to send its request, and to take its answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The most requests waiting for their answer at once (each holds a connection): more
/// are answered `503` until some are answered.
const MAX_OPEN: usize = 4096;

/// The most buffers of taken requests kept for the readers to reuse, and the largest
/// kept: what stays allocated after a burst is bounded (a few small bodies), while a
/// larger body is freed once read.
const SPARE: usize = READERS;
const SPARE_BYTES: usize = 256 * 1024;

/// How long closing waits for the answering thread.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The source's settings, resolved at start.
#[derive(Debug, Clone)]
pub struct HttpListen {
    /// `host:port` to listen on.
    pub address: String,
    pub path: String,
    /// Empty: no token asked for.
    pub token: String,
    pub max_body: u64,
    /// Records read and not yet taken by the pipeline, at most.
    pub max_pending: u64,
}

/// Answers for the answering thread to write, in order.
type Answers = Vec<(Client, Answer)>;

/// A request whose answer waits: the connection, and who sent it.
struct Client {
    stream: TcpStream,
    remote: SocketAddr,
}

/// A request's records waiting for the pipeline.
struct Queued {
    records: Records,
    /// What its records decoded to, when a reader decoded them (see
    /// [`RawSource::decode_on_arrival`]): then the pipeline takes them all at once.
    decoded: Option<Arrived>,
    /// The reader that read it.
    reader: usize,
    /// Records of it already taken.
    next: usize,
    client: Client,
    /// Who sent it, written out once: each record's origin, and its `remote_addr`.
    origin: String,
}

#[derive(Default)]
struct Queue {
    requests: VecDeque<Queued>,
    /// Buffers of requests the pipeline has taken, for the readers to read the next
    /// ones into (no allocation or freeing per request): at most [`SPARE`], each at most
    /// [`SPARE_BYTES`].
    spare: Vec<Records>,
    /// Decoded lists the pipeline is done with, per reader: each goes back to the
    /// reader that made it, which drops its records as it reuses it (memory is freed by
    /// the thread that allocated it, cheaper for the allocator). At most [`SPARE`] each.
    spare_decoded: [Vec<Arrived>; READERS],
    records: usize,
    /// Requests taken whose answer is not written yet.
    open: usize,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The decoder the readers copy, once the pipeline has offered it.
    decoder: Mutex<Option<Box<dyn ArrivalDecoder>>>,
    stop: AtomicBool,
    max_pending: usize,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn decoder(&self) -> std::sync::MutexGuard<'_, Option<Box<dyn ArrivalDecoder>>> {
        self.decoder.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn has_room(&self) -> bool {
        let q = self.queue();
        !q.closed && (q.requests.is_empty() || q.records < self.max_pending) && q.requests.len() + q.open < MAX_OPEN
    }
}

/// One piece of a request's metadata the pipeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    RemoteAddr,
}

pub struct HttpSource {
    component: &'static str,
    acks: Acks,
    metadata: Vec<Wanted>,
    shared: Arc<Shared>,
    local: SocketAddr,
    /// Requests read, waiting for their epoch to be confirmed.
    unacked: Unacked<Client>,
    /// The decoded runs of the last batch, for [`RawSource::take_arrived`], and the
    /// reader of each.
    arrived: Vec<ArrivedRun>,
    readers_of_arrived: Vec<usize>,
    /// Answers to the answering thread, those of one step together (one wake-up);
    /// `None` once closed.
    answers: Option<Sender<Answers>>,
    readers: Vec<JoinHandle<()>>,
    answering: Option<JoinHandle<()>>,
}

impl HttpSource {
    /// Listens on `listen.address` (failing at start when it cannot) and serves
    /// `POST listen.path`. `metadata` names what each record's metadata fields receive:
    /// `remote_addr`.
    pub fn new(
        component: &'static str,
        listen: HttpListen,
        metadata: &[&'static str],
        ctx: &Context,
    ) -> Result<HttpSource, StartError> {
        let fail = |reason: String| StartError::new(format!("{component}: {reason}"));
        let metadata = metadata
            .iter()
            .map(|name| match *name {
                "remote_addr" => Ok(Wanted::RemoteAddr),
                other => Err(fail(format!("no HTTP metadata `{other}`"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !listen.path.starts_with('/') {
            return Err(fail(format!("the path `{}` does not start with `/`", listen.path)));
        }
        let listener = TcpListener::bind(listen.address.as_str())
            .map_err(|e| fail(format!("cannot listen on {}: {e}", listen.address)))?;
        let local = listener
            .local_addr()
            .map_err(|e| fail(format!("cannot listen on {}: {e}", listen.address)))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            decoder: Mutex::new(None),
            stop: AtomicBool::new(false),
            max_pending: usize::try_from(listen.max_pending).unwrap_or(usize::MAX).max(1),
        });
        let rules = Rules {
            path: listen.path.clone(),
            token: listen.token,
            max_body: usize::try_from(listen.max_body).unwrap_or(usize::MAX),
        };
        let (answers, answers_in) = mpsc::channel::<Answers>();
        let mut readers = Vec::new();
        for i in 0..READERS {
            let listener = listener
                .try_clone()
                .map_err(|e| fail(format!("cannot listen on {}: {e}", listen.address)))?;
            let (shared, rules, answers) = (shared.clone(), rules.clone(), answers.clone());
            let thread = std::thread::Builder::new()
                .name(format!("http {component} {i}"))
                .spawn(move || accept(i, &listener, &shared, &rules, &answers))
                .map_err(|e| fail(format!("cannot start the HTTP thread: {e}")))?;
            readers.push(thread);
        }
        let answer_shared = shared.clone();
        let answering = std::thread::Builder::new()
            .name(format!("http {component} answers"))
            .spawn(move || {
                for answers in answers_in {
                    let written = answers.len();
                    for (mut client, answer) in answers {
                        server::write_answer(&mut client.stream, &answer);
                        let _ = client.stream.shutdown(Shutdown::Both);
                    }
                    let mut q = answer_shared.queue();
                    q.open = q.open.saturating_sub(written);
                }
            })
            .map_err(|e| fail(format!("cannot start the HTTP thread: {e}")))?;
        log::info(
            "http source listening",
            &[
                ("component", json!(component)),
                ("address", json!(local.to_string())),
                ("path", json!(listen.path)),
            ],
        );
        Ok(HttpSource {
            component,
            acks: ctx.acks.clone(),
            metadata,
            shared,
            local,
            unacked: Unacked::new(),
            arrived: Vec::new(),
            readers_of_arrived: Vec::new(),
            answers: Some(answers),
            readers,
            answering: Some(answering),
        })
    }

    /// Hands `clients` to the answering thread, each to be answered `answer`.
    fn answer(&self, clients: impl IntoIterator<Item = Client>, answer: &Answer) {
        let answers: Answers = clients.into_iter().map(|client| (client, answer.clone())).collect();
        if let (Some(sender), false) = (&self.answers, answers.is_empty()) {
            let _ = sender.send(answers);
        }
    }

    /// Stops accepting: each reader is woken by a connection of our own.
    fn stop_readers(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.queue().closed = true;
        let mut wake_at = self.local;
        if wake_at.ip().is_unspecified() {
            wake_at.set_ip(match wake_at {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        for _ in &self.readers {
            let _ = TcpStream::connect_timeout(&wake_at, Duration::from_millis(200));
        }
        let until = Instant::now() + CLOSE_WAIT;
        for thread in self.readers.drain(..) {
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// A reader thread: accepts connections and reads their requests, until stopped.
fn accept(reader: usize, listener: &TcpListener, shared: &Shared, rules: &Rules, answers: &Sender<Answers>) {
    // Where requests are read; kept from one request to the next unless it grew large.
    let mut records = Records::default();
    // This thread's copy of the pipeline's decoder, and the list it decodes into.
    let mut decoder: Option<Box<dyn ArrivalDecoder>> = None;
    let mut list: Option<Arrived> = None;
    loop {
        if records.body.capacity() > SPARE_BYTES {
            records = Records::default();
        }
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((stream, remote)) = accepted else {
            // Out of file descriptors, say: do not spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let mut client = Client { stream, remote };
        if decoder.is_none() {
            decoder = shared.decoder().as_ref().and_then(|d| d.fork());
        }
        let check = match decoder {
            Some(_) => body::Check::Decoder,
            None => body::Check::Here,
        };
        let mut read = server::read_request(&mut client.stream, rules, || shared.has_room(), &mut records, check);
        // Decoded here, on this thread, before the queue is locked.
        let mut decoded = None;
        if let (Some(decoder), Ok(()), false) = (&mut decoder, &read, records.ranges.is_empty()) {
            match decoder.decode(&records.body, &records.ranges, &mut list) {
                Ok(()) => decoded = list.take(),
                Err((i, reason)) => {
                    let line = body::line_of(&records.body, &records.ranges[i]);
                    read = Err(Some(Answer::new(400, format!("line {line} is not JSON: {reason}"))));
                }
            }
        }
        match read {
            Ok(()) if records.ranges.is_empty() => {
                shared.queue().open += 1;
                let _ = answers.send(vec![(client, Answer::new(202, "accepted 0 records"))]);
            }
            Ok(()) => {
                let mut q = shared.queue();
                if q.closed || !(q.requests.is_empty() || q.records < shared.max_pending) {
                    drop(q);
                    list = decoded;
                    server::write_answer(&mut client.stream, &server::busy());
                    close_gently(&mut client.stream);
                    continue;
                }
                q.records += records.ranges.len();
                let origin = client.remote.to_string();
                // The next request is read into buffers the pipeline is done with.
                let spare = q.spare.pop().unwrap_or_default();
                list = q.spare_decoded[reader].pop();
                q.requests.push_back(Queued {
                    records: std::mem::replace(&mut records, spare),
                    decoded,
                    reader,
                    next: 0,
                    client,
                    origin,
                });
                drop(q);
                crate::wake::notify();
            }
            Err(Some(answer)) => {
                server::write_answer(&mut client.stream, &answer);
                close_gently(&mut client.stream);
            }
            Err(None) => {}
        }
    }
}

/// Closes a connection whose request was answered before its body was read: what the
/// client still sends is read and thrown away (64 KiB and 1 s at most), so the close
/// does not reset the connection before the client has read the answer.
fn close_gently(stream: &mut TcpStream) {
    use std::io::Read;
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut sink = [0u8; 4096];
    let mut left = 64 * 1024;
    while left > 0 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left -= n.min(left),
        }
    }
}

impl RawSource for HttpSource {
    /// The reader threads wake the pipeline with each request.
    fn idle_for(&self) -> Option<Duration> {
        None
    }

    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        let mut guard = self.shared.queue();
        let q = &mut *guard;
        self.arrived.clear();
        self.readers_of_arrived.clear();
        while batch.len() < max {
            let Some(front) = q.requests.front_mut() else { break };
            let left = front.records.ranges.len() - front.next;
            // A decoded request is taken whole: into a batch with room for it, or alone.
            if front.decoded.is_some() && !batch.is_empty() && left > max - batch.len() {
                break;
            }
            let take = match front.decoded {
                Some(_) => left,
                None => left.min(max - batch.len()),
            };
            let ranges = &front.records.ranges[front.next..front.next + take];
            // The request's records in one copy, its metadata and origin written once.
            let first = batch.len();
            if self.metadata.is_empty() {
                batch.push_all(&front.records.body, ranges);
            } else {
                let values = self.metadata.iter().map(|wanted| match wanted {
                    Wanted::RemoteAddr => MetaValue::Text(front.origin.as_bytes()),
                });
                batch.push_all_messages(&front.records.body, ranges, values);
            }
            // A record that does not decode is a dead letter naming its sender.
            batch.set_origin_since(first, &front.origin);
            if let Some(decoded) = front.decoded.take() {
                self.arrived.push((first..batch.len(), decoded));
                self.readers_of_arrived.push(front.reader);
            }
            front.next += take;
            let done = front.next == front.records.ranges.len();
            q.records -= take;
            if done {
                if let Some(done) = q.requests.pop_front() {
                    q.open += 1;
                    self.unacked.read(done.client);
                    if q.spare.len() < SPARE && done.records.body.capacity() <= SPARE_BYTES {
                        q.spare.push(done.records);
                    }
                }
            }
        }
        drop(guard);
        if !batch.is_empty() {
            self.acks.next_epoch();
        }
        Ok(Poll::unless_filled(batch, Poll::Idle))
    }

    /// The readers decode each request as they read it.
    fn decode_on_arrival(&mut self, decoder: Box<dyn ArrivalDecoder>) -> bool {
        *self.shared.decoder() = Some(decoder);
        true
    }

    fn take_arrived(&mut self, into: &mut Vec<ArrivedRun>) {
        into.append(&mut self.arrived);
    }

    /// Each list goes back to its reader, which drops what it holds as it reuses it.
    fn arrived_back(&mut self, runs: &mut Vec<ArrivedRun>) {
        let mut q = self.shared.queue();
        for ((_, list), reader) in runs.drain(..).zip(self.readers_of_arrived.drain(..)) {
            if let Some(spare) = q.spare_decoded.get_mut(reader).filter(|spare| spare.len() < SPARE) {
                spare.push(list);
            }
        }
    }

    fn batch_done(&mut self) {
        if self.unacked.batch_done(self.acks.epoch()) {
            // Clients wait on their connections: confirm at the end of this step,
            // not up to 50 ms later.
            self.acks.hurry();
        }
    }

    fn commit(&mut self) -> Result<(), RunError> {
        let mut confirmed = Vec::new();
        self.unacked.confirmed(self.acks.confirmed(), &mut confirmed);
        if !confirmed.is_empty() {
            self.answer(confirmed, &Answer::new(202, "accepted"));
        }
        Ok(())
    }

    /// Answers what is confirmed `202`, stops accepting, and answers everything else
    /// `503`: those records were not (all) made safe, so the client should send again.
    fn close(&mut self) -> Result<(), RunError> {
        self.commit()?;
        self.stop_readers();
        let queued: Vec<Queued> = self.shared.queue().requests.drain(..).collect();
        let unconfirmed = self.unacked.take_all();
        let refused = queued.len() + unconfirmed.len();
        self.answer(
            unconfirmed.into_iter().chain(queued.into_iter().map(|q| q.client)),
            &Answer::new(
                503,
                "the pipeline stopped before these records were safe: send them again",
            ),
        );
        if refused > 0 {
            log::info(
                "http source refused requests at shutdown",
                &[("component", json!(self.component)), ("requests", json!(refused))],
            );
        }
        self.answers = None;
        if let Some(thread) = self.answering.take() {
            let until = Instant::now() + CLOSE_WAIT;
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        Ok(())
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        if !self.readers.is_empty() {
            self.stop_readers();
        }
        self.answers = None;
    }
}
