//! What a Redis source and its reading thread share: the stop request, a failure
//! retrying cannot fix, and handing reads over to the pipeline without blocking a stop.

use crate::errors::RunError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Shared {
    stop: AtomicBool,
    fatal: Mutex<Option<String>>,
}

impl Shared {
    /// SeqCst: what the pipeline sent the thread before the stop (acknowledgements) is
    /// seen by the thread after it.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The thread gives up (refused credentials): `check` reports it, woken at once.
    pub fn fail(&self, why: String) {
        if let Ok(mut fatal) = self.fatal.lock() {
            fatal.get_or_insert(why);
        }
        crate::wake::notify();
    }

    pub fn check(&self, component: &str) -> Result<(), RunError> {
        match self.fatal.lock().ok().and_then(|f| f.clone()) {
            Some(why) => Err(RunError::new(format!("{component}: {why}"))),
            None => Ok(()),
        }
    }
}

/// Sends `item` to the pipeline, waiting while it is behind but not past a stop;
/// `false` once the pipeline stopped. Wakes the pipeline if it sleeps.
pub fn hand_over<T>(to: &SyncSender<T>, mut item: T, shared: &Shared) -> bool {
    loop {
        match to.try_send(item) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) => {
                if shared.stopping() {
                    return false;
                }
                item = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
    // Writes a byte only when the pipeline sleeps.
    crate::wake::notify();
    true
}
