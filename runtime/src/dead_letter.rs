//! `DeadLetters`: where bad records go, with the reason, instead of crashing the pipeline.
//!
//! Each dead letter is one JSON line:
//! `{"ts": <unix ms>, "component": "...", "reason": "...", "record": "<raw record>"}`,
//! the raw record as (lossy) UTF-8 text so a person can read it and a script can replay it.

use crate::driver::Context;
use crate::errors::{RunError, StartError};
use crate::internal_events::{Counters, InternalEvent};
use crate::sinks::RawSink;
use crate::state::Checkpointed;
use serde::Serialize;
use std::borrow::Cow;
use std::io::Write;

enum Target {
    Stderr,
    Sinks(Vec<Box<dyn RawSink>>),
}

/// The dead-letter output of a pipeline: stderr by default, or the sinks the spec routes
/// `dead_letter` to. Buffered like any output and flushed once per step. A letter that
/// cannot be written is an error like any output's: the run fails and says how many.
pub struct DeadLetters {
    target: Target,
    buf: Vec<u8>,
    count: u64,
    /// Letters buffered since the last flush.
    pending: u64,
    counters: Option<Counters>,
}

#[derive(Serialize)]
struct Letter<'a> {
    ts: i64,
    component: &'a str,
    reason: Cow<'a, str>,
    record: Cow<'a, str>,
}

impl DeadLetters {
    /// One JSON line per bad record on stderr.
    pub fn stderr() -> Self {
        DeadLetters::with_target(Target::Stderr)
    }

    /// When the spec routes `dead_letter` to named sinks; every sink gets every letter.
    pub fn to_sinks(sinks: Vec<Box<dyn RawSink>>) -> Self {
        DeadLetters::with_target(Target::Sinks(sinks))
    }

    fn with_target(target: Target) -> Self {
        DeadLetters {
            target,
            buf: Vec::new(),
            count: 0,
            pending: 0,
            counters: None,
        }
    }

    /// Counts letters as the `dead_letters` component (received, sent, dropped).
    pub fn counted(mut self, ctx: &Context) -> Self {
        self.counters = Some(ctx.events.component("dead_letters"));
        self
    }

    /// Records a bad record. Never fails: the letter is buffered until [`Self::flush`].
    pub fn send(&mut self, component: &str, reason: &str, record: &[u8]) {
        let letter = Letter {
            ts: crate::fns::now_ms(),
            component,
            // A reason may quote a value of the record (`cannot convert `…` to i64`).
            reason: excerpt(reason.as_bytes()),
            record: excerpt(record),
        };
        let start = self.buf.len();
        // A struct of strings and an integer always serializes; if it ever did not, the
        // partial line is removed rather than corrupting the output.
        if serde_json::to_writer(&mut self.buf, &letter).is_ok() {
            self.buf.push(b'\n');
        } else {
            self.buf.truncate(start);
        }
        self.count += 1;
        self.pending += 1;
    }

    /// Records a typed record (a late event, a window result that failed downstream) as
    /// its JSON text: there are no raw input bytes for it.
    pub fn send_record<T: Serialize>(&mut self, component: &str, reason: &str, record: &T) {
        let text = serde_json::to_vec(record).unwrap_or_else(|e| format!("<unserializable: {e}>").into_bytes());
        self.send(component, reason, &text);
    }

    /// Writes buffered letters to every target, even when one fails; the failures are
    /// returned together.
    pub fn flush(&mut self) -> Result<(), RunError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = match &mut self.target {
            Target::Stderr => {
                let mut err = std::io::stderr().lock();
                err.write_all(&self.buf)
                    .and_then(|()| err.flush())
                    .map_err(|e| RunError::new(format!("writing to stderr: {e}")))
            }
            Target::Sinks(sinks) => {
                let buf = &self.buf;
                let failures: Vec<String> = sinks
                    .iter_mut()
                    .filter_map(|s| s.write(buf).and_then(|()| s.flush()).err())
                    .map(|e| e.to_string())
                    .collect();
                match failures.is_empty() {
                    true => Ok(()),
                    false => Err(RunError::new(failures.join("; "))),
                }
            }
        };
        self.buf.clear();
        let letters = std::mem::take(&mut self.pending);
        if let Some(c) = &self.counters {
            c.emit(InternalEvent::Received(letters));
            c.emit(match result {
                Ok(()) => InternalEvent::Sent(letters),
                Err(_) => InternalEvent::Dropped(letters),
            });
        }
        result.map_err(|e| RunError::new(format!("dead letters: {e} ({letters} dead letters not written)")))
    }

    /// Dead letters sent since start.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The dead-letter sinks' committed positions, in order (nothing for stderr).
impl Checkpointed for DeadLetters {
    fn section(&self) -> &'static str {
        "dead_letters"
    }
    fn save(&mut self, out: &mut Vec<u8>) -> Result<(), RunError> {
        let mut positions = Vec::new();
        if let Target::Sinks(sinks) = &mut self.target {
            for sink in sinks {
                positions.push(
                    sink.save_position()
                        .map_err(|e| RunError::new(format!("dead letters: {e}")))?,
                );
            }
        }
        crate::state::save_value("dead_letters", &positions, out)
    }
    fn restore(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let positions: Vec<Vec<u8>> = crate::state::restore_value("dead_letters", saved)?;
        if let Target::Sinks(sinks) = &mut self.target {
            for (sink, position) in sinks.iter_mut().zip(&positions) {
                sink.rewind(position)
                    .map_err(|e| StartError::new(format!("dead letters: {}", e.message())))?;
            }
        }
        Ok(())
    }
}

/// Longest piece of a record (or of a reason) a dead letter holds: a huge bad record
/// must not make a huge dead letter.
const MAX_EXCERPT: usize = 4096;

/// Bytes as (lossy) UTF-8 text; past [`MAX_EXCERPT`] bytes, its first ones (cut
/// at a character boundary) followed by `…(N bytes)`, N its whole length.
fn excerpt(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.len() <= MAX_EXCERPT {
        return String::from_utf8_lossy(bytes);
    }
    // Back up to the first byte of a UTF-8 character (continuation bytes are 10xxxxxx).
    let cut = (0..=MAX_EXCERPT)
        .rev()
        .find(|&i| bytes[i] & 0xC0 != 0x80)
        .unwrap_or(MAX_EXCERPT);
    let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    text.push_str(&format!("…({} bytes)", bytes.len()));
    Cow::Owned(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{Full, MemSink};
    use serde_json::Value;

    #[test]
    fn long_records_are_cut_to_an_excerpt_with_their_length() {
        let sink = MemSink::default();
        let mut dl = DeadLetters::to_sinks(vec![Box::new(sink.clone())]);
        let mut record = "é".repeat(MAX_EXCERPT).into_bytes(); // 2 bytes each
        record.push(b'!');
        dl.send("sources.in", "bad", &record);
        dl.send("sources.in", "bad", &record[..MAX_EXCERPT]);
        dl.send("sources.in", &"r".repeat(MAX_EXCERPT + 1), b"x");
        assert_eq!(dl.flush(), Ok(()));
        let text = String::from_utf8(sink.data.borrow().clone()).unwrap_or_default();
        let letters: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let cut = letters[0]["record"].as_str().unwrap_or_default();
        assert_eq!(cut, format!("{}…(8193 bytes)", "é".repeat(MAX_EXCERPT / 2)));
        assert!(text.lines().next().is_some_and(|l| l.len() < MAX_EXCERPT + 200));
        assert_eq!(
            letters[1]["record"].as_str(),
            Some("é".repeat(MAX_EXCERPT / 2).as_str())
        );
        let long_reason = format!("{}…(4097 bytes)", "r".repeat(MAX_EXCERPT));
        assert_eq!(letters[2]["reason"].as_str(), Some(long_reason.as_str()));
    }

    #[test]
    fn letters_have_the_documented_shape() {
        let a = MemSink::default();
        let b = MemSink::default();
        let mut dl = DeadLetters::to_sinks(vec![Box::new(a.clone()), Box::new(b.clone())]);
        dl.send("sources.in", "missing field `x`", b"{\"y\":1}");
        dl.send("transforms.t", "bad", b"caf\xff\"e");
        assert!(a.data.borrow().is_empty());
        assert_eq!(dl.flush(), Ok(()));
        assert_eq!(dl.count(), 2);
        let text = String::from_utf8(a.data.borrow().clone()).unwrap_or_default();
        assert_eq!(*a.data.borrow(), *b.data.borrow());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: Value = serde_json::from_str(lines[0]).unwrap_or(Value::Null);
        assert!(lines[0].starts_with("{\"ts\":"), "{}", lines[0]);
        assert_eq!(v.as_object().map(|o| o.len()), Some(4));
        assert!(v["ts"].as_i64().is_some_and(|ts| ts > 1_577_836_800_000));
        assert_eq!(v["component"], "sources.in");
        assert_eq!(v["reason"], "missing field `x`");
        assert_eq!(v["record"], "{\"y\":1}");
        let v: Value = serde_json::from_str(lines[1]).unwrap_or(Value::Null);
        assert_eq!(v["record"], "caf\u{FFFD}\"e");
        // Flushing again writes nothing new.
        assert_eq!(dl.flush(), Ok(()));
        assert_eq!(a.data.borrow().len(), text.len());
    }

    #[test]
    fn a_failing_target_does_not_stop_the_others_and_is_reported() {
        let ctx = Context::new(crate::settings::Settings::from_values(vec![]), 1);
        let good = MemSink::default();
        let mut dl = DeadLetters::to_sinks(vec![Box::new(Full), Box::new(good.clone())]).counted(&ctx);
        dl.send("sources.in", "bad", b"x");
        dl.send("sources.in", "bad", b"y");
        let err = dl.flush().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("dead letters: writing `/dev/full`: No space left on device (2 dead letters not written)")
        );
        assert_eq!(String::from_utf8_lossy(&good.data.borrow()).lines().count(), 2);
        let snap = ctx.events.snapshot();
        assert_eq!(snap[0].0, "dead_letters");
        assert_eq!((snap[0].1.received, snap[0].1.sent, snap[0].1.dropped), (2, 0, 2));
    }
}
