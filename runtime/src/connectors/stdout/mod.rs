//! `StdoutSink`: records to standard output (logs go to stderr, so stdout is pure data).

use crate::errors::RunError;
use crate::sinks::RawSink;
use crate::sinks::WriterThread;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

/// Writes to stdout. Unbuffered by itself: [`crate::sinks::Output`] already hands it one
/// buffer per step. Where stdout goes decides who writes, as for a file sink's path:
/// a regular file (`> out.jsonl`) is written on the pipeline's thread, since a write to
/// a file never waits for a reader; anything else (a pipe, a terminal, a socket) on a
/// [`WriterThread`], so a consumer that stops reading never keeps a shutdown waiting.
pub struct StdoutSink {
    out: Result<Out, RunError>,
}

enum Out {
    /// A copy of stdout's descriptor, a regular file's.
    File(File),
    Thread(WriterThread),
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink {
            out: open(std::io::stdout().as_fd()),
        }
    }

    fn out(&mut self) -> Result<&mut Out, RunError> {
        self.out.as_mut().map_err(|e| e.clone())
    }
}

/// How to write to `stdout`: directly when it is a regular file, else on a thread.
fn open(stdout: BorrowedFd<'_>) -> Result<Out, RunError> {
    if let Ok(fd) = stdout.try_clone_to_owned() {
        let file = File::from(fd);
        if file.metadata().is_ok_and(|m| m.file_type().is_file()) {
            return Ok(Out::File(file));
        }
    }
    WriterThread::spawn("stdout".to_owned(), || Ok(std::io::stdout())).map(Out::Thread)
}

fn failed(e: &std::io::Error) -> RunError {
    RunError::new(format!("writing to stdout: {e}"))
}

impl RawSink for StdoutSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        match self.out()? {
            Out::File(file) => file.write_all(bytes).map_err(|e| failed(&e)),
            Out::Thread(thread) => thread.write(bytes),
        }
    }

    /// The writer thread takes the buffer itself, a file has it written from here.
    fn write_from(&mut self, buf: &mut Vec<u8>) -> Result<(), RunError> {
        let written = match self.out() {
            Ok(Out::Thread(thread)) => thread.hand_over(buf),
            Ok(Out::File(file)) => file.write_all(buf).map_err(|e| failed(&e)),
            Err(e) => Err(e),
        };
        buf.clear();
        written
    }

    fn flush(&mut self) -> Result<(), RunError> {
        match self.out()? {
            // Nothing is buffered here: written is flushed, as stdout's flush would say.
            Out::File(_) => Ok(()),
            Out::Thread(thread) => thread.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_flushes_without_error() {
        let mut s = StdoutSink::new();
        assert_eq!(s.write(b""), Ok(()));
        assert_eq!(s.flush(), Ok(()));
    }

    #[test]
    fn a_regular_file_is_written_directly_anything_else_on_a_thread() {
        let dir = crate::test_util::TempDir::new("stdout-target");
        let path = dir.path("out.jsonl");
        let file = File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut sink = StdoutSink {
            out: open(file.as_fd()),
        };
        assert!(matches!(sink.out, Ok(Out::File(_))));
        assert_eq!(sink.write(b"{\"a\":1}\n"), Ok(()));
        assert_eq!(sink.flush(), Ok(()));
        assert_eq!(std::fs::read(&path).ok().as_deref(), Some(&b"{\"a\":1}\n"[..]));

        // A socket (as a pipe or a terminal) may wait for its reader.
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(open(socket.as_fd()), Ok(Out::Thread(_))));
    }
}
