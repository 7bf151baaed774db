//! `StdoutSink`: records to standard output (logs go to stderr, so stdout is pure data).

use super::RawSink;
use crate::errors::RunError;
use std::io::Write;

/// Writes to stdout. Unbuffered by itself: [`super::Output`] already hands it one
/// buffer per step.
#[derive(Debug)]
pub struct StdoutSink {
    out: std::io::Stdout,
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink { out: std::io::stdout() }
    }
}

impl RawSink for StdoutSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        self.out
            .lock()
            .write_all(bytes)
            .map_err(|e| RunError::new(format!("writing to stdout: {e}")))
    }

    fn flush(&mut self) -> Result<(), RunError> {
        self.out
            .lock()
            .flush()
            .map_err(|e| RunError::new(format!("flushing stdout: {e}")))
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
