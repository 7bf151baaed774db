//! `StdinSource`: newline-delimited records from standard input.
//!
//! Reading stdin blocks for as long as the writer is silent, and a blocked main loop
//! could not notice a shutdown signal. So a thread does the blocking reads and hands
//! byte chunks over a bounded channel; `poll` only takes what has already arrived and
//! never blocks. The bound gives back-pressure: a fast writer waits for the pipeline.
//! The thread wakes an idle pipeline ([`crate::wake::notify`]) when a chunk arrives, so
//! the driver sleeps in the kernel meanwhile and still sees each line at once.

use crate::batch::RawBatch;
use crate::errors::RunError;
use crate::sources::framing::LineSplitter;
use crate::sources::{Poll, RawSource};
use std::io::{ErrorKind, Read};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::time::Duration;

/// Chunks in flight between the reader thread and `poll` (each up to `CHUNK` bytes).
const CHANNEL_CHUNKS: usize = 64;
const CHUNK: usize = 64 * 1024;
/// Chunks taken in one poll at most (16 MiB), so a poll returns even when no line ends.
const CHUNKS_PER_POLL: usize = 256;

enum Msg {
    Data(Vec<u8>),
    Eof,
    Error(String),
}

/// Reads standard input line by line; `Finished` when stdin is closed.
pub struct StdinSource {
    /// What is read, for messages: `stdin`, or a named pipe's path.
    what: String,
    rx: Option<Receiver<Msg>>,
    spawn_error: Option<String>,
    splitter: LineSplitter,
    eof: bool,
    done: bool,
}

impl StdinSource {
    /// Reads standard input; records longer than `max_record_bytes` are bad records.
    pub fn new(max_record_bytes: u64) -> Self {
        StdinSource::from_reader(std::io::stdin(), max_record_bytes)
    }

    /// Reads from any reader on the background thread (tests use this).
    pub(crate) fn from_reader<R: Read + Send + 'static>(reader: R, max_record_bytes: u64) -> Self {
        StdinSource::from_reader_named(reader, "stdin".to_owned(), max_record_bytes)
    }

    /// Like [`Self::from_reader`], naming what is read in error messages.
    pub(crate) fn from_reader_named<R: Read + Send + 'static>(reader: R, what: String, max_record_bytes: u64) -> Self {
        let (tx, rx) = sync_channel(CHANNEL_CHUNKS);
        let spawned = std::thread::Builder::new()
            .name("rill-stdin".to_owned())
            .spawn(move || {
                let mut reader = reader;
                loop {
                    let mut chunk = vec![0u8; CHUNK];
                    let msg = match reader.read(&mut chunk) {
                        Ok(0) => Msg::Eof,
                        Ok(n) => {
                            chunk.truncate(n);
                            Msg::Data(chunk)
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => Msg::Error(e.to_string()),
                    };
                    let last = !matches!(msg, Msg::Data(_));
                    // A send error means the source was dropped: nothing left to do.
                    if tx.send(msg).is_err() {
                        return;
                    }
                    // Per chunk, not per record; writes a byte only to a sleeping driver.
                    crate::wake::notify();
                    if last {
                        return;
                    }
                }
            });
        let (rx, spawn_error) = match spawned {
            Ok(_) => (Some(rx), None),
            Err(e) => (None, Some(e.to_string())),
        };
        StdinSource {
            what,
            rx,
            spawn_error,
            splitter: LineSplitter::new(usize::try_from(max_record_bytes).unwrap_or(usize::MAX)),
            eof: false,
            done: false,
        }
    }
}

impl RawSource for StdinSource {
    /// The reader thread wakes the pipeline with each chunk, at the end and on an error.
    fn idle_for(&self) -> Option<Duration> {
        None
    }

    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        if self.done {
            return Ok(Poll::Finished);
        }
        if let Some(e) = &self.spawn_error {
            return Err(RunError::new(format!("cannot start the reader of {}: {e}", self.what)));
        }
        let mut chunks = 0;
        loop {
            if self.splitter.drain_lines(batch, max) {
                return Ok(Poll::Ready);
            }
            if chunks == CHUNKS_PER_POLL {
                // No line ended in all that (a record being skipped): let the pipeline look up.
                return Ok(Poll::Ready);
            }
            if self.eof {
                self.splitter.finish(batch);
                self.done = true;
                return Ok(Poll::unless_filled(batch, Poll::Finished));
            }
            let received = match &self.rx {
                Some(rx) => rx.try_recv(),
                None => Err(TryRecvError::Disconnected),
            };
            match received {
                Ok(Msg::Data(chunk)) => {
                    self.splitter.extend(&chunk);
                    chunks += 1;
                }
                Ok(Msg::Eof) | Err(TryRecvError::Disconnected) => self.eof = true,
                Ok(Msg::Error(e)) => return Err(RunError::new(format!("reading {}: {e}", self.what))),
                Err(TryRecvError::Empty) => {
                    return Ok(Poll::unless_filled(batch, Poll::Idle));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Polls until Finished (or a deadline), collecting records.
    fn drain(src: &mut StdinSource, max: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = vec![];
        while Instant::now() < deadline {
            let mut b = RawBatch::new();
            let p = src.poll(&mut b, max).unwrap_or_else(|e| panic!("{e}"));
            assert!(b.len() <= max);
            out.extend(b.iter().map(|r| String::from_utf8_lossy(r).into_owned()));
            match p {
                Poll::Finished => return out,
                Poll::Idle => std::thread::sleep(Duration::from_millis(1)),
                Poll::Ready => {}
            }
        }
        panic!("stdin source never finished");
    }

    #[test]
    fn reads_lines_until_eof() {
        let input: Vec<u8> = (0..10_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .chain(*b"last")
            .collect();
        let mut src = StdinSource::from_reader(std::io::Cursor::new(input), 1 << 20);
        let lines = drain(&mut src, 100);
        assert_eq!(lines.len(), 10_001);
        assert_eq!(lines[9_999], "line 9999");
        assert_eq!(lines[10_000], "last");
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_dropped() {
        let input = b"\xEF\xBB\xBFfirst\nsecond\n".to_vec();
        let mut src = StdinSource::from_reader(std::io::Cursor::new(input), 1 << 20);
        assert_eq!(drain(&mut src, 10), ["first", "second"]);
    }

    #[test]
    fn poll_does_not_block_while_the_writer_is_silent() {
        struct Silent;
        impl Read for Silent {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(0)
            }
        }
        let mut src = StdinSource::from_reader(Silent, 1 << 20);
        let start = Instant::now();
        let mut b = RawBatch::new();
        assert_eq!(src.poll(&mut b, 10), Ok(Poll::Idle));
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn read_errors_are_fatal() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("boom"))
            }
        }
        let mut src = StdinSource::from_reader(Broken, 1 << 20);
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            match src.poll(&mut RawBatch::new(), 10) {
                Err(e) => break e,
                Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Ok(p) => panic!("no error, last poll {p:?}"),
            }
        };
        assert_eq!(err.to_string(), "reading stdin: boom");
    }
}
