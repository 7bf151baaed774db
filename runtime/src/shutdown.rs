//! Clean shutdown on SIGINT / SIGTERM.
//!
//! The first signal only sets a flag: the driver finishes the current step, closes every
//! output (flushing what is buffered) and exits 0. A second signal means the operator
//! does not want to wait, so the process exits at once (status 130 / 143, as a shell
//! would report).

use crate::errors::StartError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared "stop requested" flag.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
}

impl Shutdown {
    /// A flag no signal sets (tests, embedding).
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Registers SIGINT and SIGTERM handlers that set the flag, and exit immediately on
    /// a second signal.
    pub fn install() -> Result<Self, StartError> {
        let shutdown = Shutdown::new();
        for (signal, status) in [(signal_hook::consts::SIGINT, 130), (signal_hook::consts::SIGTERM, 143)] {
            // Order matters: the conditional exit must see the flag *before* this signal
            // sets it, so it is registered first.
            signal_hook::flag::register_conditional_shutdown(signal, status, Arc::clone(&shutdown.flag))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&shutdown.flag)))
                .map_err(|e| StartError::new(format!("cannot install signal handler: {e}")))?;
        }
        Ok(shutdown)
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Requests a stop as a signal would (used by tests and by embedding code).
    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_seen_by_clones() {
        let s = Shutdown::new();
        let c = s.clone();
        assert!(!c.requested());
        s.request();
        assert!(c.requested());
    }

    #[test]
    fn first_signal_sets_the_flag_without_exiting() {
        // The only test in this process that installs handlers and raises a signal, so
        // this is the "first" signal for this flag and must not exit the test runner.
        let s = Shutdown::install().unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.requested());
        assert!(signal_hook::low_level::raise(signal_hook::consts::SIGTERM).is_ok());
        assert!(s.requested());
    }
}
