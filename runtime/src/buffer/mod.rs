//! Disk buffers: a message sink's store-and-forward log.
//!
//! A sink with `buffer: { type: disk }` appends every record to a log of segment files
//! in `<state dir>/buffers/<component>/` ([`log`], framed by [`frame`]) and delivers
//! from there ([`crate::sinks::MessageOutput`]); `state check` walks the same files
//! ([`check`]).

pub mod check;
pub mod frame;
pub mod log;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a full buffer does with the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Waits for delivery to make room: back-pressure up to the sources.
    Block,
    /// Gives up the oldest undelivered records (a segment at a time), counted as dropped.
    DropOldest,
}

/// When appended records are made durable (and their sources acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// At the end of every step that appended something.
    Always,
    /// At most this long after a record was appended.
    Every(Duration),
}

/// A sink's `buffer:` options, as compiled in (`max_bytes` may come from a setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferOptions {
    pub max_bytes: u64,
    pub when_full: WhenFull,
    pub fsync: Fsync,
}

impl Fsync {
    /// `fsync: <duration>` (generated code).
    pub fn millis(ms: u64) -> Self {
        Fsync::Every(Duration::from_millis(ms))
    }
}

/// Where the buffer of `component` (`sinks.alerts`) lives in a state directory.
pub fn buffer_dir(state_dir: &Path, component: &str) -> PathBuf {
    buffers_dir(state_dir).join(component)
}

/// The folder holding every buffer of a state directory.
pub fn buffers_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("buffers")
}
