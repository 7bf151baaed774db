//! `/health`: healthy while every source that connects to a broker is connected and
//! the driver loop is making progress.
//!
//! Progress means no step of the loop runs for longer than [`STALLED_AFTER`]: a step
//! that does not end is blocked on a pipe nobody reads, a disk that hangs, or a broker
//! client that does not return. Waiting for input between steps is not being stuck.

use crate::internal_events::Events;
use serde_json::{json, Value};
use std::time::Duration;

/// How long one step of the driver loop may run and the pipeline still be healthy.
pub const STALLED_AFTER: Duration = Duration::from_secs(5);

/// The verdict and the JSON body that says it.
#[derive(Debug)]
pub struct Verdict {
    pub healthy: bool,
    pub body: Value,
}

pub fn check(events: &Events) -> Verdict {
    verdict(events, STALLED_AFTER)
}

fn verdict(events: &Events, stalled_after: Duration) -> Verdict {
    let mut reasons = Vec::new();
    for connection in events.connections() {
        if let Some(problem) = connection.problem() {
            reasons.push(format!("{}: not connected: {problem}", connection.name()));
        }
    }
    if events.checkpoints().failing() {
        reasons.push("checkpoints: the last one could not be written (see the log); the previous one stays".to_owned());
    }
    let running = events.step_running_for();
    if running >= stalled_after && running > Duration::ZERO {
        reasons.push(format!(
            "no progress: one step of the pipeline loop has run for {:.1} s (blocked on an output?)",
            running.as_secs_f64()
        ));
    }
    if reasons.is_empty() {
        Verdict {
            healthy: true,
            body: json!({"status": "ok", "uptime_seconds": events.uptime().as_secs()}),
        }
    } else {
        Verdict {
            healthy: false,
            body: json!({"status": "unhealthy", "reasons": reasons}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_while_a_source_is_disconnected_or_the_loop_is_stuck() {
        let events = Events::new();
        assert!(
            verdict(&events, Duration::ZERO).healthy,
            "not in a step: waiting is fine"
        );
        events.step_begins();
        assert!(verdict(&events, Duration::from_secs(60)).healthy);
        let kafka = events.connection("sources.k");
        kafka.disconnected("all brokers down");
        let v = verdict(&events, Duration::from_secs(60));
        assert!(!v.healthy);
        assert_eq!(
            v.body,
            json!({"status": "unhealthy", "reasons": ["sources.k: not connected: all brokers down"]})
        );
        kafka.connected();
        assert!(verdict(&events, Duration::from_secs(60)).healthy);
        let v = verdict(&events, Duration::ZERO);
        assert!(!v.healthy, "no step within the limit");
        assert!(v.body["reasons"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("no progress"));
    }

    #[test]
    fn unhealthy_while_checkpoints_fail_to_be_written() {
        let events = Events::new();
        events.checkpoints().enable();
        events.checkpoints().failed();
        let v = verdict(&events, Duration::from_secs(60));
        assert!(!v.healthy);
        assert!(v.body["reasons"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("checkpoints: the last one could not be written"));
        events.checkpoints().written(100, 5);
        assert!(verdict(&events, Duration::from_secs(60)).healthy);
        assert_eq!(events.checkpoints().totals(), (1, 1, 0));
    }
}
