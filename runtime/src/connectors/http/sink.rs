//! `HttpSink`: a [`MessageSink`] that POSTs records in batches, on a thread of its own.
//!
//! `send` hands each record to a bounded queue (waiting in slices while it is full:
//! back-pressure, nothing dropped). The thread cuts the queue into batches (at most
//! `max_records` records and `max_bytes` bytes, or what arrived within `max_wait` of the
//! batch's first record), sends each as one request, and retries with exponential
//! backoff on a 5xx, a 408 or 429 (honouring `Retry-After` in seconds), a connection
//! error or a timeout. Any other status is final. Every record of a batch gets the
//! batch's outcome: delivered on a 2xx, else a dead letter with the status and the
//! start of the response body (retriable when the last failure was, so a disk buffer
//! sends it again later instead).

use super::batching::{retry_after, Batch, Encoding, Limits, Retry};
use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::log;
use crate::sinks::{Address, MessageSink, Outcome, Undelivered};
use serde_json::json;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How much of a failed response's body the dead letter's reason quotes.
const REASON_BODY: u64 = 200;

/// How often a waiting thread looks whether it should stop.
const SLICE: Duration = Duration::from_millis(20);

/// The sink's settings, resolved at start.
#[derive(Debug, Clone)]
pub struct HttpPost {
    pub url: String,
    /// `POST`, `PUT` or `PATCH`.
    pub method: &'static str,
    pub headers: Vec<(&'static str, String)>,
    /// Sent as `Authorization: Bearer <token>`; empty: no such header.
    pub token: String,
    pub timeout_ms: u64,
    /// `array` or `lines`.
    pub encoding: &'static str,
    pub max_records: u64,
    pub max_bytes: u64,
    pub max_wait_ms: u64,
    /// Tries in all, including the first.
    pub attempts: u32,
    pub backoff_ms: u64,
    pub max_retry_ms: u64,
}

/// What the pipeline's thread and the sink's thread both touch.
#[derive(Debug, Default)]
struct Shared {
    outcomes: Mutex<Vec<Outcome>>,
    stop: AtomicBool,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || crate::shutdown::give_up_waiting()
    }
}

pub struct HttpSink {
    component: &'static str,
    /// Records to the thread; `None` once closed (the thread then sends what is left).
    queue: Option<SyncSender<(u64, Vec<u8>)>>,
    shared: Arc<Shared>,
    /// Records sent whose outcome has not come back.
    outstanding: u64,
    in_flight: usize,
    /// The longest one batch may take, from its first record to its outcome.
    batch_time: Duration,
    thread: Option<JoinHandle<()>>,
}

impl HttpSink {
    /// Checks the settings and starts the thread; nothing is sent before the first record.
    pub fn new(component: &'static str, post: HttpPost, _ctx: &Context) -> Result<HttpSink, StartError> {
        let fail = |reason: String| StartError::new(format!("{component}: {reason}"));
        let encoding =
            Encoding::parse(post.encoding).ok_or_else(|| fail(format!("no encoding `{}`", post.encoding)))?;
        check_url(&post.url).map_err(fail)?;
        for (name, value) in &post.headers {
            ureq::http::HeaderName::try_from(*name).map_err(|_| fail(format!("`{name}` is not a header name")))?;
            ureq::http::HeaderValue::try_from(value.as_str()).map_err(|_| {
                fail(format!(
                    "the value of header `{name}` has a character a header cannot carry"
                ))
            })?;
        }
        if post.token.contains(['\r', '\n']) {
            return Err(fail("the token contains a line break".into()));
        }
        let limits = Limits {
            max_records: usize::try_from(post.max_records).unwrap_or(usize::MAX).max(1),
            max_bytes: usize::try_from(post.max_bytes).unwrap_or(usize::MAX).max(1),
        };
        let retry = Retry {
            attempts: post.attempts.max(1),
            backoff: Duration::from_millis(post.backoff_ms),
            max_elapsed: Duration::from_millis(post.max_retry_ms),
        };
        let timeout = Duration::from_millis(post.timeout_ms.max(1));
        let max_wait = Duration::from_millis(post.max_wait_ms);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // A redirected POST would become a GET: a 3xx is a failure to see.
            .max_redirects(0)
            .build()
            .into();
        // Two batches queued while one is being sent.
        let capacity = limits.max_records.saturating_mul(2).min(100_000);
        let (queue, records) = mpsc::sync_channel(capacity);
        let shared = Arc::new(Shared::default());
        let batch_time = max_wait + retry.max_elapsed + timeout.saturating_mul(retry.attempts);
        let worker = Worker {
            component,
            agent,
            post,
            encoding,
            limits,
            retry,
            max_wait,
            records,
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("http {component}"))
            .spawn(move || worker.run())
            .map_err(|e| fail(format!("cannot start the HTTP thread: {e}")))?;
        Ok(HttpSink {
            component,
            queue: Some(queue),
            shared,
            outstanding: 0,
            in_flight: limits.max_records.max(1),
            batch_time,
            thread: Some(thread),
        })
    }

    fn take_outcomes(&mut self, into: &mut Vec<Outcome>) {
        let mut outcomes = self.shared.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        self.outstanding -= (outcomes.len() as u64).min(self.outstanding);
        into.append(&mut outcomes);
    }

    fn thread_gone(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn stop(&mut self) {
        self.queue = None;
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let until = Instant::now() + Duration::from_secs(1);
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// An `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let uri = ureq::http::Uri::try_from(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(format!("`{url}` is not an http:// or https:// URL with a host")),
    }
}

impl MessageSink for HttpSink {
    fn send(&mut self, payload: &[u8], _address: Address<'_>, tag: u64) -> Result<(), String> {
        let Some(queue) = &self.queue else {
            return Err("the HTTP sink is closed".into());
        };
        let mut item = (tag, payload.to_vec());
        loop {
            match queue.try_send(item) {
                Ok(()) => {
                    self.outstanding += 1;
                    return Ok(());
                }
                Err(TrySendError::Disconnected(_)) => return Err("the HTTP sink's thread has stopped".into()),
                Err(TrySendError::Full(back)) => item = back,
            }
            // Back-pressure: the destination is slow or away.
            if crate::shutdown::give_up_waiting() {
                return Err("the HTTP destination took no more records before the pipeline stopped".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn poll(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), RunError> {
        self.take_outcomes(outcomes);
        if self.thread_gone() && self.queue.is_some() {
            return Err(RunError::new(format!(
                "{}: the HTTP sink's thread has stopped",
                self.component
            )));
        }
        Ok(())
    }

    /// One batch: a disk buffer hands over the next batch only once this one is
    /// settled, so a batch that failed (to be sent again) never lets a later one
    /// overtake it.
    fn max_in_flight(&self) -> Option<usize> {
        Some(self.in_flight)
    }

    /// Sends what is queued (the last batch without waiting for `max_wait`), waiting
    /// for the outcomes as long as one batch's retries may take.
    fn close(&mut self, outcomes: &mut Vec<Outcome>) -> Result<(), Undelivered> {
        self.queue = None;
        let until = Instant::now() + self.batch_time + Duration::from_secs(1);
        self.take_outcomes(outcomes);
        while self.outstanding > 0 && Instant::now() < until && !self.thread_gone() {
            std::thread::sleep(SLICE);
            self.take_outcomes(outcomes);
        }
        self.take_outcomes(outcomes);
        let missing = self.outstanding;
        self.stop();
        match missing {
            0 => Ok(()),
            count => Err(Undelivered {
                count,
                reason: "the HTTP destination did not answer before the pipeline stopped".into(),
            }),
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why one request failed.
#[derive(Debug)]
struct Failed {
    reason: String,
    /// Trying again may succeed.
    retriable: bool,
    retry_after: Option<Duration>,
}

/// The sink's thread: batches, requests, retries, outcomes.
struct Worker {
    component: &'static str,
    agent: ureq::Agent,
    post: HttpPost,
    encoding: Encoding,
    limits: Limits,
    retry: Retry,
    max_wait: Duration,
    records: Receiver<(u64, Vec<u8>)>,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(self) {
        let mut batch = Batch::default();
        // When the batch's first record arrived.
        let mut since: Option<Instant> = None;
        loop {
            // Without a batch begun, nothing to do before the next record: sleep until it
            // comes (or the sink closes the queue).
            let got = match since {
                None => self.records.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => self.records.recv_timeout(self.max_wait.saturating_sub(at.elapsed())),
            };
            match got {
                Ok((tag, payload)) => {
                    if batch.would_overflow(payload.len(), self.encoding, self.limits) {
                        self.deliver(&mut batch);
                        since = None;
                    }
                    since.get_or_insert_with(Instant::now);
                    batch.push(tag, payload);
                    if batch.is_full(self.limits) {
                        self.deliver(&mut batch);
                        since = None;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if since.is_some_and(|at| at.elapsed() >= self.max_wait) {
                        self.deliver(&mut batch);
                        since = None;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if !batch.is_empty() {
                        self.deliver(&mut batch);
                    }
                    return;
                }
            }
        }
    }

    /// Sends the batch (retrying) and hands every record's outcome to the pipeline.
    fn deliver(&self, batch: &mut Batch) {
        let body = batch.body(self.encoding);
        let started = Instant::now();
        let mut tries = 0;
        let failure = loop {
            tries += 1;
            let failed = match self.request(&body) {
                Ok(()) => break None,
                Err(failed) => failed,
            };
            let wait = match failed.retriable {
                true => self.retry.next_wait(tries, started.elapsed(), failed.retry_after),
                false => None,
            };
            let Some(wait) = wait else { break Some(failed) };
            log::warn(
                "HTTP request failed, retrying",
                &[
                    ("component", json!(self.component)),
                    ("reason", json!(failed.reason)),
                    ("try", json!(tries)),
                    ("retry_in_ms", json!(wait.as_millis() as u64)),
                ],
            );
            if !self.sleep(wait) {
                break Some(failed);
            }
        };
        let outcomes = batch.take().into_iter().map(|(tag, payload)| match &failure {
            None => Outcome::delivered(tag),
            Some(f) => Outcome {
                tag,
                failure: Some((f.reason.clone(), payload)),
                retriable: f.retriable,
            },
        });
        self.shared
            .outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(outcomes);
        crate::wake::notify();
    }

    /// Waits `wait` unless the pipeline gives up first (false then).
    fn sleep(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.shared.stopping() {
                return false;
            }
            std::thread::sleep(SLICE.min(until.saturating_duration_since(Instant::now())));
        }
        true
    }

    fn request(&self, body: &[u8]) -> Result<(), Failed> {
        let post = &self.post;
        let mut request = ureq::http::Request::builder()
            .method(post.method)
            .uri(post.url.as_str())
            .header("content-type", self.encoding.content_type());
        for (name, value) in &post.headers {
            request = request.header(*name, value.as_str());
        }
        if !post.token.is_empty() {
            request = request.header("authorization", format!("Bearer {}", post.token));
        }
        let request = request.body(body).map_err(|e| Failed {
            reason: format!("cannot build the request: {e}"),
            retriable: false,
            retry_after: None,
        })?;
        match self.agent.run(request) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after);
                let mut text = Vec::new();
                let _ = response.body_mut().as_reader().take(REASON_BODY).read_to_end(&mut text);
                let text = String::from_utf8_lossy(&text);
                Err(Failed {
                    reason: format!("HTTP {status} from {}: {}", post.url, text.trim()),
                    retriable: status >= 500 || status == 408 || status == 429,
                    retry_after,
                })
            }
            Err(e) => Err(Failed {
                reason: format!("{} {}: {e}", post.method, post.url),
                retriable: transient(&e),
                retry_after: None,
            }),
        }
    }
}

/// A transport failure that may pass: the network, the server's availability, time.
fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_taken() {
        assert!(check_url("http://127.0.0.1:8080/in").is_ok());
        assert!(check_url("https://example.com").is_ok());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("example.com/in").is_err());
        assert!(check_url("http://").is_err());
    }
}
