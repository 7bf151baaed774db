//! Time: per-source watermarks, idleness, and the watermark of a set of sources.
//!
//! A source on event time has the watermark `max event time seen − max_out_of_order`
//! (bounded out-of-orderness); one on processing time has the wall clock, read once per
//! step. A finished source no longer holds anything back (`i64::MAX`). A source that
//! produced nothing for `idle_timeout` is *idle* and left out of the minimum, so a
//! silent input does not stall the pipeline; it rejoins with its next record. An
//! operator's watermark is the minimum over the sources upstream of it.

use crate::errors::{RunError, StartError};
use crate::sources::Poll;
use crate::state::Checkpointed;
use std::time::{Duration, Instant};

/// How a source's records get their time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMode {
    /// From a field of the record; the watermark trails the largest one seen.
    Event {
        max_out_of_order: i64,
        /// Milliseconds without a record after which the source counts as idle.
        idle_timeout: Option<i64>,
    },
    /// The wall-clock time at which the record was read.
    Processing,
}

#[derive(Debug)]
struct SourceClock {
    mode: TimeMode,
    /// Largest event time seen (event time only); `i64::MIN` before the first record.
    max_seen: i64,
    last_active: Instant,
    idle: bool,
    finished: bool,
}

impl SourceClock {
    fn watermark(&self, now_ms: i64) -> i64 {
        if self.finished {
            return i64::MAX;
        }
        match self.mode {
            TimeMode::Event { max_out_of_order, .. } => self.max_seen.saturating_sub(max_out_of_order),
            TimeMode::Processing => now_ms,
        }
    }
}

/// The clocks of every source of a pipeline, indexed like the spec's sources.
#[derive(Debug)]
pub struct Clocks {
    sources: Vec<SourceClock>,
    now_ms: i64,
    now: Instant,
}

impl Clocks {
    pub fn new(modes: &[TimeMode]) -> Self {
        let now = Instant::now();
        Clocks {
            sources: modes
                .iter()
                .map(|&mode| SourceClock {
                    mode,
                    max_seen: i64::MIN,
                    last_active: now,
                    idle: false,
                    finished: false,
                })
                .collect(),
            now_ms: crate::fns::now_ms(),
            now,
        }
    }

    /// Processing time: the wall clock at the start of the current step (Unix ms).
    #[inline]
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Records the event time of one record of `source`. True when its watermark moved.
    #[inline]
    pub fn observe(&mut self, source: usize, t: i64) -> bool {
        let clock = &mut self.sources[source];
        if t > clock.max_seen {
            clock.max_seen = t;
            true
        } else {
            false
        }
    }

    /// After polling `source`: records make it active again; `Finished` releases its hold.
    pub fn polled(&mut self, source: usize, poll: Poll) {
        let clock = &mut self.sources[source];
        match poll {
            Poll::Ready => {
                clock.last_active = self.now;
                clock.idle = false;
            }
            Poll::Finished => clock.finished = true,
            Poll::Idle => {}
        }
    }

    /// Start of a step: reads the wall clock and marks sources idle after their timeout.
    /// Returns true when a watermark may have moved (processing time, or idleness).
    pub fn tick(&mut self) -> bool {
        self.now = Instant::now();
        self.now_ms = crate::fns::now_ms();
        let mut moved = false;
        for clock in &mut self.sources {
            match clock.mode {
                TimeMode::Processing => {
                    moved = true;
                    // Windows on this clock fire as time passes: a sleeping pipeline
                    // must wake up when the next one is due.
                    crate::wake::watermarks_follow_the_wall_clock();
                }
                TimeMode::Event {
                    idle_timeout: Some(timeout),
                    ..
                } if !clock.idle && !clock.finished => {
                    let timeout = Duration::from_millis(u64::try_from(timeout).unwrap_or(0));
                    let silent = self.now.duration_since(clock.last_active);
                    if silent >= timeout {
                        clock.idle = true;
                        moved = true;
                    } else {
                        // Going idle moves the watermark: wake up then if nothing came.
                        crate::wake::look_again_at(clock.last_active + timeout);
                    }
                }
                TimeMode::Event { .. } => {}
            }
        }
        moved
    }

    /// The watermark of an operator fed by `sources`: the minimum over those that are not
    /// idle. `None` when every one of them is idle: nothing is known, nothing fires.
    pub fn watermark(&self, sources: &[usize]) -> Option<i64> {
        sources
            .iter()
            .map(|&s| &self.sources[s])
            .filter(|c| !c.idle || c.finished)
            .map(|c| c.watermark(self.now_ms))
            .min()
    }

    /// The largest event time seen per source, for a checkpoint.
    fn max_seen(&self) -> Vec<i64> {
        self.sources.iter().map(|c| c.max_seen).collect()
    }

    /// Test support: pretend `source` has been silent for long enough to be idle.
    #[cfg(test)]
    fn force_idle(&mut self, source: usize) {
        self.sources[source].idle = true;
    }
}

/// The clocks' checkpoint: the largest event time seen per source, so watermarks go on
/// from where they were. Idleness and finished inputs are found again by the run.
impl Checkpointed for Clocks {
    fn section(&self) -> &'static str {
        "clocks"
    }
    fn save(&mut self, out: &mut Vec<u8>) -> Result<(), RunError> {
        crate::state::save_value("clocks", &self.max_seen(), out)
    }
    fn restore(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let max_seen: Vec<i64> = crate::state::restore_value("clocks", saved)?;
        if max_seen.len() != self.sources.len() {
            return Err(StartError::new(format!(
                "clocks: the checkpoint has {} sources, this pipeline {}",
                max_seen.len(),
                self.sources.len()
            )));
        }
        for (clock, seen) in self.sources.iter_mut().zip(max_seen) {
            clock.max_seen = seen;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: TimeMode = TimeMode::Event {
        max_out_of_order: 2_000,
        idle_timeout: None,
    };

    #[test]
    fn a_source_not_yet_idle_asks_to_be_looked_at_when_it_would_be() {
        crate::wake::take_next_look();
        let idle_after_1s = TimeMode::Event {
            max_out_of_order: 0,
            idle_timeout: Some(1_000),
        };
        let mut c = Clocks::new(&[EVENT, idle_after_1s]);
        let started = c.sources[1].last_active;
        assert!(!c.tick());
        assert_eq!(crate::wake::take_next_look(), Some(started + Duration::from_secs(1)));
        c.force_idle(1);
        c.tick();
        assert_eq!(crate::wake::take_next_look(), None, "idle already: nothing to wait for");
    }

    #[test]
    fn watermark_trails_the_largest_event_time() {
        let mut c = Clocks::new(&[EVENT]);
        assert_eq!(c.watermark(&[0]), Some(i64::MIN), "nothing seen: holds everything");
        assert!(c.observe(0, 10_000));
        assert_eq!(c.watermark(&[0]), Some(8_000));
        assert!(!c.observe(0, 9_000), "an older record does not move it");
        assert_eq!(c.watermark(&[0]), Some(8_000));
        assert!(c.observe(0, 12_500));
        assert_eq!(c.watermark(&[0]), Some(10_500));
    }

    #[test]
    fn minimum_across_inputs_held_back_by_the_slow_one() {
        let mut c = Clocks::new(&[EVENT, EVENT]);
        c.observe(0, 50_000);
        assert_eq!(c.watermark(&[0, 1]), Some(i64::MIN), "input 1 has said nothing yet");
        c.observe(1, 20_000);
        assert_eq!(c.watermark(&[0, 1]), Some(18_000));
        assert_eq!(c.watermark(&[0]), Some(48_000), "an operator fed by input 0 only");
        c.polled(1, Poll::Finished);
        assert_eq!(
            c.watermark(&[0, 1]),
            Some(48_000),
            "a finished input holds nothing back"
        );
        c.polled(0, Poll::Finished);
        assert_eq!(c.watermark(&[0, 1]), Some(i64::MAX));
    }

    #[test]
    fn an_idle_input_is_left_out_until_it_speaks_again() {
        let idle_after_0 = TimeMode::Event {
            max_out_of_order: 0,
            idle_timeout: Some(0),
        };
        let mut c = Clocks::new(&[EVENT, idle_after_0]);
        c.observe(0, 30_000);
        c.polled(0, Poll::Ready);
        assert_eq!(c.watermark(&[0, 1]), Some(i64::MIN));
        assert!(c.tick(), "input 1 went idle (timeout 0)");
        assert_eq!(c.watermark(&[0, 1]), Some(28_000));
        c.observe(1, 5_000);
        c.polled(1, Poll::Ready);
        assert_eq!(c.watermark(&[0, 1]), Some(5_000), "back in the minimum");
    }

    #[test]
    fn all_idle_means_no_watermark() {
        let mut c = Clocks::new(&[EVENT]);
        c.observe(0, 1_000);
        c.force_idle(0);
        assert_eq!(c.watermark(&[0]), None);
    }

    #[test]
    fn processing_time_follows_the_wall_clock() {
        let mut c = Clocks::new(&[TimeMode::Processing]);
        assert!(c.tick());
        let wm = c.watermark(&[0]).unwrap_or(0);
        assert_eq!(wm, c.now_ms());
        assert!(wm > 1_600_000_000_000);
    }
}
