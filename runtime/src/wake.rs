//! How an idle pipeline sleeps: in the kernel, until something needs it.
//!
//! When a step moved nothing, the driver waits on a [`Wake`] until one of:
//! - a thread that feeds the pipeline (stdin's or a FIFO's reader, an MQTT connection)
//!   says something arrived ([`notify`]);
//! - a shutdown signal arrives (signal-hook writes a byte to the same socket:
//!   [`Wake::wake_on_signal`]);
//! - the earliest time something in the pipeline asked to be looked at again
//!   ([`look_again_within`], [`look_again_at`], [`watermark_due_in`]): a followed file's next
//!   look, a window's processing-time end, a source's idleness timeout, messages in
//!   flight, a source that cannot notify (the default of
//!   [`crate::sources::RawSource::idle_for`]).
//!
//! The wait is a blocking `read` with a timeout on one end of a `UnixStream` pair; the
//! other end is written one byte at a time. A notifier writes only when the driver is
//! asleep and no byte is pending, so a busy reader thread costs one atomic swap per chunk
//! and no system call. Deadlines are gathered during a step on the pipeline's thread (a
//! thread-local), so components need no handle to the driver.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The process's wake-up (one pipeline per process), created on first use.
static GLOBAL: OnceLock<Wake> = OnceLock::new();

/// The wake-up the driver waits on, and every notifier writes to.
pub fn global() -> &'static Wake {
    GLOBAL.get_or_init(Wake::new)
}

/// Something arrived for the pipeline: wakes the driver if it sleeps. Cheap enough to
/// call per chunk read, never needed per record.
pub fn notify() {
    global().notify();
}

/// A one-byte wake-up between threads (and signal handlers) and one waiting thread.
#[derive(Debug, Clone)]
pub struct Wake {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Read by the waiter only.
    rx: Option<UnixStream>,
    /// Written by notifiers (non-blocking) and, once registered, by signal handlers.
    tx: Option<UnixStream>,
    /// The waiter is (about to be) blocked in `read`.
    asleep: AtomicBool,
    /// A notification not yet seen by the waiter.
    pending: AtomicBool,
}

impl Default for Wake {
    fn default() -> Self {
        Wake::new()
    }
}

impl Wake {
    /// A new wake-up. Should the socket pair not be available (no file descriptors
    /// left), waiting falls back to sleeping until the deadline, at most
    /// [`FALLBACK_WAIT`], so nothing is ever missed for long.
    pub fn new() -> Self {
        let (rx, tx) = match UnixStream::pair() {
            Ok((rx, tx)) if tx.set_nonblocking(true).is_ok() => (Some(rx), Some(tx)),
            _ => (None, None),
        };
        Wake {
            inner: Arc::new(Inner {
                rx,
                tx,
                asleep: AtomicBool::new(false),
                pending: AtomicBool::new(false),
            }),
        }
    }

    /// Wakes the waiter (now, or at once when it next waits).
    pub fn notify(&self) {
        let inner = &*self.inner;
        // SeqCst on both flags, in opposite orders here and in `wait`: either the waiter
        // sees `pending` before it blocks, or this sees `asleep` and writes.
        if !inner.pending.swap(true, Ordering::SeqCst) && inner.asleep.load(Ordering::SeqCst) {
            if let Some(tx) = &inner.tx {
                // A full socket already holds a wake-up; nothing else can go wrong that
                // a retry would fix.
                let _ = (&*tx).write(&[1]);
            }
        }
    }

    /// Makes `signal` wake the waiter (registered after the shutdown flag's handler, so
    /// the flag is set when the waiter wakes).
    pub fn wake_on_signal(&self, signal: i32) -> std::io::Result<()> {
        match &self.inner.tx {
            Some(tx) => signal_hook::low_level::pipe::register(signal, tx.try_clone()?).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Blocks until notified, or until `deadline` (`None`: no deadline). True when
    /// notified (or woken by a signal), false at the deadline.
    pub fn wait(&self, deadline: Option<Instant>) -> bool {
        let inner = &*self.inner;
        inner.asleep.store(true, Ordering::SeqCst);
        let woken = if inner.pending.swap(false, Ordering::SeqCst) {
            true
        } else {
            self.block(deadline)
        };
        inner.asleep.store(false, Ordering::SeqCst);
        // A notification that came while waking up is seen now, not on the next wait.
        inner.pending.swap(false, Ordering::SeqCst) || woken
    }

    /// The blocking read, up to the deadline.
    fn block(&self, deadline: Option<Instant>) -> bool {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if timeout.is_some_and(|t| t.is_zero()) {
            return false;
        }
        let Some(rx) = &self.inner.rx else {
            std::thread::sleep(timeout.map_or(FALLBACK_WAIT, |t| t.min(FALLBACK_WAIT)));
            return false;
        };
        if rx.set_read_timeout(timeout).is_err() {
            std::thread::sleep(FALLBACK_WAIT);
            return false;
        }
        // Up to 64 bytes at once: several notifiers (or signals) cost one wake-up.
        let mut buf = [0u8; 64];
        match (&*rx).read(&mut buf) {
            Ok(n) => n > 0,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            // Interrupted by a signal (a handler that did not write): look again.
            Err(_) => true,
        }
    }
}

/// The longest sleep when the socket pair could not be made.
const FALLBACK_WAIT: Duration = Duration::from_millis(20);

/// A source that cannot notify and says nothing else is looked at this often when idle
/// (what the driver did for every source before it could sleep).
pub const DEFAULT_LOOK_AGAIN: Duration = Duration::from_millis(20);

thread_local! {
    /// The earliest time something asked to be looked at again, during this step.
    static NEXT_LOOK: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The least watermark progress (ms) after which an operator has something to do.
    static WATERMARK_DUE: Cell<Option<i64>> = const { Cell::new(None) };
    /// Some source's watermark is the wall clock (processing time).
    static WALL_CLOCK: Cell<bool> = const { Cell::new(false) };
}

/// Asks the driver to step again by `at` even when nothing arrives.
pub fn look_again_at(at: Instant) {
    NEXT_LOOK.with(|next| next.set(Some(next.get().map_or(at, |n| n.min(at)))));
}

/// Asks the driver to step again within `after` even when nothing arrives.
pub fn look_again_within(after: Duration) {
    look_again_at(Instant::now() + after);
}

/// An operator has something to do once its watermark has moved `ms` further. Only a
/// watermark that follows the wall clock ([`watermarks_follow_the_wall_clock`]) moves
/// without records, so only then is it a deadline: `ms` from now.
pub fn watermark_due_in(ms: i64) {
    WATERMARK_DUE.with(|due| due.set(Some(due.get().map_or(ms, |d| d.min(ms)))));
}

/// A source's watermark is the wall clock (processing time): an operator's due
/// watermark is a time to wake up at.
pub fn watermarks_follow_the_wall_clock() {
    WALL_CLOCK.with(|w| w.set(true));
}

/// What this step asked for, cleared for the next one: the time the driver must step
/// again by, `None` when only a notification or a signal can give it work.
pub fn take_next_look() -> Option<Instant> {
    let next = NEXT_LOOK.with(|n| n.take());
    let due = WATERMARK_DUE.with(|d| d.take());
    let wall_clock = WALL_CLOCK.with(|w| w.take());
    let due = match (due, wall_clock) {
        (Some(ms), true) => {
            // The watermark was the wall clock at the step's start, a moment ago: waking
            // `ms` from now, the next step's clock has passed the due time.
            Some(Instant::now() + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
        }
        _ => None,
    };
    match (next, due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_before_the_wait_is_not_lost() {
        let w = Wake::new();
        w.notify();
        w.notify();
        let start = Instant::now();
        assert!(w.wait(Some(start + Duration::from_secs(60))), "woken, not timed out");
        assert!(start.elapsed() < Duration::from_secs(60));
        // Seen once: the next wait runs to its deadline.
        assert!(!w.wait(Some(Instant::now() + Duration::from_millis(10))));
    }

    #[test]
    fn a_notification_from_another_thread_wakes_a_wait_without_deadline() {
        let w = Wake::new();
        let other = w.clone();
        let notifier = std::thread::spawn(move || {
            // Most likely after the waiter blocked (a byte written); if not, the
            // notification is pending when it starts waiting: both must wake it.
            std::thread::sleep(Duration::from_millis(50));
            other.notify();
        });
        assert!(w.wait(None), "only a notification can end a wait without deadline");
        assert!(notifier.join().is_ok());
    }

    #[test]
    fn a_wait_ends_at_its_deadline() {
        let w = Wake::new();
        let deadline = Instant::now() + Duration::from_millis(30);
        assert!(!w.wait(Some(deadline)), "nothing notified");
        assert!(Instant::now() >= deadline);
        assert!(
            !w.wait(Some(Instant::now() - Duration::from_millis(1))),
            "a past deadline"
        );
    }

    #[test]
    fn many_notifications_while_awake_write_nothing() {
        let w = Wake::new();
        for _ in 0..10_000 {
            w.notify();
        }
        assert!(w.wait(Some(Instant::now())));
        // Nothing was written: the socket is empty, so the next wait times out.
        assert!(!w.wait(Some(Instant::now() + Duration::from_millis(5))));
    }

    #[test]
    fn the_earliest_request_of_a_step_wins_and_is_cleared() {
        assert_eq!(take_next_look(), None);
        let soon = Instant::now() + Duration::from_millis(100);
        look_again_at(soon + Duration::from_millis(50));
        look_again_at(soon);
        assert_eq!(take_next_look(), Some(soon));
        assert_eq!(take_next_look(), None, "cleared");
    }

    #[test]
    fn a_due_watermark_is_a_deadline_only_on_the_wall_clock() {
        watermark_due_in(60_000);
        assert_eq!(take_next_look(), None, "event time does not move by itself");
        watermarks_follow_the_wall_clock();
        watermark_due_in(60_000);
        watermark_due_in(5_000);
        let next = take_next_look().unwrap_or_else(|| panic!("a deadline"));
        let wait = next.saturating_duration_since(Instant::now());
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(5));
        // Both cleared: the flag too.
        watermark_due_in(5_000);
        assert_eq!(take_next_look(), None);
    }
}
