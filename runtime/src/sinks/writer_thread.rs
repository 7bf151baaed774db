//! `WriterThread`: writes that may block forever happen on a thread of their own.
//!
//! Writing to a pipe nobody reads (stdout into a stalled consumer, a FIFO) blocks the
//! writing thread until the reader moves, and a signal does not interrupt it. The
//! pipeline's thread therefore only hands buffers over and waits for the writer in
//! short slices, checking [`crate::shutdown::give_up_waiting`] between them: a stop is
//! never kept waiting by the other side, and what could not be written is reported.
//!
//! The last buffer written is held until the next write or the flush, so the usual step
//! (one buffer, then a flush) is one job, one wake-up of the thread, not two.
//!
//! Once a write fails the thread writes nothing more: the buffers queued behind it are
//! answered with the same failure rather than written after a gap, so what arrived is
//! always a prefix of what was handed over.

use crate::errors::RunError;
use std::io::Write;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// Buffers handed over but not yet written, at most: bounds memory, gives back-pressure.
const MAX_IN_FLIGHT: usize = 4;
/// How often a waiting pipeline looks at the shutdown flag.
const SLICE: Duration = Duration::from_millis(20);

enum Job {
    /// Write the buffer, then flush if asked.
    Write(Vec<u8>, bool),
    Flush,
}

enum Reply {
    /// A buffer was written; here it is back, for reuse.
    Written(Vec<u8>),
    Flushed,
    Failed(String),
}

/// A writer owned by a background thread.
pub struct WriterThread {
    /// What is written to, for messages (`stdout`, `` `path` ``).
    what: String,
    jobs: Option<Sender<Job>>,
    replies: Receiver<Reply>,
    /// Jobs sent and not yet answered.
    in_flight: usize,
    /// Bytes handed over and not yet known to be written.
    unconfirmed: usize,
    spare: Vec<Vec<u8>>,
    /// The buffer written last, not handed over yet: it goes with the next write or
    /// the flush (counted in `unconfirmed`).
    held: Option<Vec<u8>>,
    /// The writer failed; every later call reports it.
    failed: Option<String>,
}

impl WriterThread {
    /// Starts the thread; `open` runs on it, so opening may block too (a FIFO waits for
    /// its reader).
    pub fn spawn<W, F>(what: String, open: F) -> Result<Self, RunError>
    where
        W: Write,
        F: FnOnce() -> std::io::Result<W> + Send + 'static,
    {
        let (jobs, job_rx) = channel::<Job>();
        let (reply_tx, replies) = channel::<Reply>();
        std::thread::Builder::new()
            .name("rill-writer".to_owned())
            .spawn(move || serve(open, &job_rx, &reply_tx))
            .map_err(|e| RunError::new(format!("cannot start the writer of {what}: {e}")))?;
        Ok(WriterThread {
            what,
            jobs: Some(jobs),
            replies,
            in_flight: 0,
            unconfirmed: 0,
            spare: Vec::new(),
            held: None,
            failed: None,
        })
    }

    /// Takes a copy of `bytes` for the writer (see [`Self::hand_over`]).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        let handed = self.hand_over(&mut buf);
        self.spare.push(buf);
        handed
    }

    /// Takes `buf`'s bytes for the writer without copying them, leaving an empty spare
    /// buffer in its place, and hands over the buffer taken before; waits
    /// (interruptibly) while [`MAX_IN_FLIGHT`] buffers are already waiting.
    pub fn hand_over(&mut self, buf: &mut Vec<u8>) -> Result<(), RunError> {
        self.take_replies()?;
        if let Some(held) = self.held.take() {
            while self.in_flight >= MAX_IN_FLIGHT {
                self.wait_one()?;
            }
            self.check()?;
            self.send(Job::Write(held, false))?;
        }
        self.check()?;
        let mut taken = self.spare.pop().unwrap_or_default();
        taken.clear();
        std::mem::swap(buf, &mut taken);
        self.unconfirmed += taken.len();
        self.held = Some(taken);
        Ok(())
    }

    /// Waits until everything handed over is written and flushed.
    pub fn flush(&mut self) -> Result<(), RunError> {
        self.check()?;
        let job = match self.held.take() {
            Some(buf) => Job::Write(buf, true),
            None => Job::Flush,
        };
        self.send(job)?;
        while self.in_flight > 0 {
            self.wait_one()?;
        }
        self.check()
    }

    fn send(&mut self, job: Job) -> Result<(), RunError> {
        match self.jobs.as_ref().map(|j| j.send(job)) {
            Some(Ok(())) => {
                self.in_flight += 1;
                Ok(())
            }
            _ => Err(self.fail(format!("the writer of {} stopped", self.what))),
        }
    }

    fn check(&self) -> Result<(), RunError> {
        match &self.failed {
            Some(e) => Err(RunError::new(e.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, message: String) -> RunError {
        self.failed = Some(message.clone());
        RunError::new(message)
    }

    /// Takes the replies that are in, without waiting: written buffers come back for
    /// reuse (else each hand-over would start an empty one and grow it again).
    fn take_replies(&mut self) -> Result<(), RunError> {
        while let Ok(reply) = self.replies.try_recv() {
            self.take(reply)?;
        }
        Ok(())
    }

    fn take(&mut self, reply: Reply) -> Result<(), RunError> {
        self.in_flight -= 1;
        match reply {
            Reply::Written(buf) => {
                self.unconfirmed -= buf.len();
                self.spare.push(buf);
                Ok(())
            }
            Reply::Flushed => Ok(()),
            Reply::Failed(e) => Err(self.fail(format!("writing to {}: {e}", self.what))),
        }
    }

    /// Waits for one reply, in slices, giving up once a stop's grace period has passed.
    fn wait_one(&mut self) -> Result<(), RunError> {
        loop {
            match self.replies.recv_timeout(SLICE) {
                Ok(reply) => return self.take(reply),
                Err(RecvTimeoutError::Timeout) if crate::shutdown::give_up_waiting() => {
                    let message = format!(
                        "{} is blocked (nobody reads it): {} bytes not written at shutdown",
                        self.what, self.unconfirmed
                    );
                    // The thread stays blocked; nothing more is handed to it.
                    self.jobs = None;
                    return Err(self.fail(message));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.fail(format!("the writer of {} stopped", self.what)))
                }
            }
        }
    }
}

/// What was written and never flushed is still handed over, as each write used to be.
impl Drop for WriterThread {
    fn drop(&mut self) {
        if let (Some(buf), Some(jobs)) = (self.held.take(), &self.jobs) {
            let _ = jobs.send(Job::Write(buf, false));
        }
    }
}

/// The writer thread: opens, then writes and flushes as told until the pipeline is gone.
fn serve<W: Write, F: FnOnce() -> std::io::Result<W>>(open: F, jobs: &Receiver<Job>, replies: &Sender<Reply>) {
    let mut out = match open() {
        Ok(out) => out,
        Err(e) => {
            // Every job gets the failure, so the first write or flush reports it.
            while jobs.recv().is_ok() {
                if replies.send(Reply::Failed(e.to_string())).is_err() {
                    return;
                }
            }
            return;
        }
    };
    let mut failed: Option<String> = None;
    while let Ok(job) = jobs.recv() {
        let done = match (&failed, job) {
            (Some(e), _) => Err(e.clone()),
            (None, Job::Write(buf, flush)) => out
                .write_all(&buf)
                .and_then(|()| if flush { out.flush() } else { Ok(()) })
                .map(|()| Reply::Written(buf))
                .map_err(|e| e.to_string()),
            (None, Job::Flush) => out.flush().map(|()| Reply::Flushed).map_err(|e| e.to_string()),
        };
        let reply = done.unwrap_or_else(|e| {
            failed = Some(e.clone());
            Reply::Failed(e)
        });
        if replies.send(reply).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_everything_in_order_by_flush() {
        let shared = Shared::default();
        let inner = shared.clone();
        let mut w = WriterThread::spawn("memory".into(), move || Ok(inner)).unwrap_or_else(|e| panic!("{e}"));
        let mut expected = Vec::new();
        for i in 0..100 {
            let line = format!("line {i}\n");
            expected.extend_from_slice(line.as_bytes());
            assert_eq!(w.write(line.as_bytes()), Ok(()));
        }
        assert_eq!(w.flush(), Ok(()));
        assert_eq!(*shared.0.lock().unwrap_or_else(|p| p.into_inner()), expected);
    }

    /// What reaches the destination, call by call: `w:<bytes>` per write, `f` per flush,
    /// `closed` when the thread drops it.
    #[derive(Clone, Default)]
    struct Calls(Arc<Mutex<Vec<String>>>, Option<std::sync::mpsc::Sender<()>>);

    impl Calls {
        fn log(&self, call: String) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(call);
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
        }
    }

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.log(format!("w:{}", String::from_utf8_lossy(buf)));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.log("f".into());
            Ok(())
        }
    }

    impl Drop for Calls {
        fn drop(&mut self) {
            if let Some(closed) = self.1.take() {
                self.log("closed".into());
                let _ = closed.send(());
            }
        }
    }

    #[test]
    fn a_write_goes_with_the_next_write_or_the_flush_and_every_flush_arrives() {
        let calls = Calls::default();
        let inner = calls.clone();
        let mut w = WriterThread::spawn("memory".into(), move || Ok(inner)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.write(b"a"), Ok(()));
        assert_eq!(w.flush(), Ok(()));
        assert_eq!(calls.take(), ["w:a", "f"], "the write and its flush");
        assert_eq!(w.flush(), Ok(()));
        assert_eq!(calls.take(), ["f"], "a flush with nothing written still flushes");
        // More writes than may wait at once: each goes with the next, in order.
        for part in ["b", "c", "d", "e", "f", "g"] {
            assert_eq!(w.write(part.as_bytes()), Ok(()));
        }
        assert_eq!(w.flush(), Ok(()));
        assert_eq!(calls.take(), ["w:b", "w:c", "w:d", "w:e", "w:f", "w:g", "f"]);
    }

    #[test]
    fn what_was_written_and_never_flushed_is_still_written_when_dropped() {
        let (closed, on_close) = std::sync::mpsc::channel();
        let calls = Calls(Arc::default(), Some(closed));
        let inner = calls.clone();
        let mut w = WriterThread::spawn("memory".into(), move || Ok(inner)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.write(b"kept"), Ok(()));
        drop(w);
        // The thread ends once it has written everything handed over, dropping its writer.
        let _ = on_close.recv();
        assert_eq!(calls.take(), ["w:kept", "closed"]);
    }

    /// Fails every write of `bad`, logging each write it is asked for.
    struct FailsOnBad(Calls);

    impl Write for FailsOnBad {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf)?;
            if buf == b"bad" {
                return Err(std::io::Error::other("no space left"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.0.flush()
        }
    }

    #[test]
    fn after_a_failed_write_nothing_more_is_written_and_handed_buffers_are_taken_not_copied() {
        let calls = Calls::default();
        let inner = FailsOnBad(calls.clone());
        let mut w = WriterThread::spawn("memory".into(), move || Ok(inner)).unwrap_or_else(|e| panic!("{e}"));
        for part in ["a", "bad", "c", "d"] {
            let mut buf = part.as_bytes().to_vec();
            match w.hand_over(&mut buf) {
                Ok(()) => assert!(buf.is_empty(), "the bytes were taken, not copied"),
                // The thread may have failed on `bad` (handed over with `c`) already.
                Err(e) => {
                    assert_eq!(e.to_string(), "writing to memory: no space left");
                    assert_eq!((part, buf.as_slice()), ("d", &b"d"[..]), "refused, and kept");
                }
            }
        }
        let err = w.flush().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("writing to memory: no space left"));
        // `c` and `d` were queued behind the failed write: neither reached the writer,
        // so a file cut back after the failure stays cut.
        assert_eq!(calls.take(), ["w:a", "w:bad"]);
        let mut more = b"e".to_vec();
        assert!(w.hand_over(&mut more).is_err(), "the failure stays");
        assert_eq!(more, b"e", "what was refused is the caller's still");
    }

    #[test]
    fn failures_to_open_or_write_are_reported_and_stay() {
        let mut w = WriterThread::spawn("`/nowhere`".into(), || -> std::io::Result<Shared> {
            Err(std::io::Error::other("no such place"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.write(b"x\n"), Ok(()), "handed over; the failure comes back later");
        let err = w.flush().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("writing to `/nowhere`: no such place"));
        assert_eq!(w.write(b"y\n").err().map(|e| e.to_string()), err);

        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap_or_else(|e| panic!("/dev/full: {e}"));
        let mut w = WriterThread::spawn("`/dev/full`".into(), move || Ok(full)).unwrap_or_else(|e| panic!("{e}"));
        let _ = w.write(&[b'a'; 100]);
        let err = w.flush().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("writing to `/dev/full`: No space left"), "{err}");
    }
}
