//! Clean shutdown on SIGINT / SIGTERM.
//!
//! The first signal only sets a flag: the driver finishes the current step, closes every
//! output (flushing what is buffered) and exits 0. A second signal means the operator
//! does not want to wait, so the process exits at once (status 130 / 143, as a shell
//! would report).
//!
//! The first signal must take effect within a second whatever the pipeline is doing, so
//! nothing waits on I/O that may never finish (a pipe nobody reads, a FIFO whose writer
//! is quiet) without asking [`give_up_waiting`] every few milliseconds: once a stop has
//! been requested for [`GRACE`], a waiter stops waiting and says what it could not do.
//! An idle driver sleeps in [`crate::wake`]; the handlers also write to its socket, so
//! a signal wakes it at once.

use crate::errors::StartError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long, after a stop was requested, blocked outputs may still take to drain.
pub const GRACE: Duration = Duration::from_millis(500);

/// The flag the signal handlers set (once installed), for code that has no handle.
static INSTALLED: OnceLock<Shutdown> = OnceLock::new();
/// When a requested stop was first noticed.
static NOTICED: OnceLock<Instant> = OnceLock::new();

/// True once a stop was requested by a signal and [`GRACE`] has passed since it was
/// first noticed: a waiter should give up now.
pub fn give_up_waiting() -> bool {
    match INSTALLED.get() {
        Some(s) if s.requested() => NOTICED.get_or_init(Instant::now).elapsed() >= GRACE,
        _ => false,
    }
}

/// True once a stop was requested by a signal: a disk buffer then leaves what is
/// undelivered in its log instead of waiting for the destination.
pub fn stop_requested() -> bool {
    INSTALLED.get().is_some_and(Shutdown::requested)
}

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
                // After the flag: a driver asleep in `wake` wakes to find it set.
                .and_then(|_| crate::wake::global().wake_on_signal(signal))
                .map_err(|e| StartError::new(format!("cannot install signal handler: {e}")))?;
        }
        let _ = INSTALLED.set(shutdown.clone());
        Ok(shutdown)
    }

    pub fn requested(&self) -> bool {
        let requested = self.flag.load(Ordering::Relaxed);
        // Only the signals' flag starts the grace period: another one (a test's) asked
        // earlier in the same process would make the waiters give up at once.
        if requested && INSTALLED.get().is_some_and(|s| Arc::ptr_eq(&s.flag, &self.flag)) {
            NOTICED.get_or_init(Instant::now);
        }
        requested
    }

    /// Requests a stop as a signal would (used by tests and by embedding code).
    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
        crate::wake::notify();
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
        // Blocked outputs get a short grace period, then are told to give up.
        assert!(!give_up_waiting(), "not before the grace period");
        let noticed = Instant::now();
        while !give_up_waiting() {
            assert!(noticed.elapsed() < Duration::from_secs(30), "never gave up");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
