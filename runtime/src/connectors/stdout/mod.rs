//! `StdoutSink`: records to standard output (logs go to stderr, so stdout is pure data).

use crate::errors::RunError;
use crate::sinks::RawSink;
use crate::sinks::WriterThread;

/// Writes to stdout. Unbuffered by itself: [`crate::sinks::Output`] already hands it one
/// buffer per step. The writes happen on a [`WriterThread`], so a consumer that stops
/// reading never keeps a shutdown waiting.
pub struct StdoutSink {
    out: Result<WriterThread, RunError>,
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink {
            out: WriterThread::spawn("stdout".to_owned(), || Ok(std::io::stdout())),
        }
    }

    fn out(&mut self) -> Result<&mut WriterThread, RunError> {
        self.out.as_mut().map_err(|e| e.clone())
    }
}

impl RawSink for StdoutSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        self.out()?.write(bytes)
    }

    fn flush(&mut self) -> Result<(), RunError> {
        self.out()?.flush()
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
}
