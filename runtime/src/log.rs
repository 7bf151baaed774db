//! Structured logs: one JSON object per line on stderr.
//!
//! JSON lines because a pipeline binary runs under systemd, Docker or Kubernetes, where
//! a log collector parses stderr; stdout is left for data (the `stdout` sink). Logging is
//! for lifecycle and failures, never per record, so a small hand-written logger suffices.

use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

/// Log levels, most severe first; a level enables itself and everything above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// Parses `error|warn|info|debug` (case-insensitive; `warning` is accepted too).
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Error,
            1 => Level::Warn,
            2 => Level::Info,
            _ => Level::Debug,
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn level() -> Level {
    Level::from_u8(LEVEL.load(Ordering::Relaxed))
}

pub fn enabled(level: Level) -> bool {
    level <= self::level()
}

/// Builds one log line: `{"ts":"..","level":"..","msg":"..",<fields>}\n`.
pub fn format_line(ts_ms: i64, level: Level, msg: &str, fields: &[(&str, Value)]) -> Vec<u8> {
    let mut line = Vec::with_capacity(128);
    line.extend_from_slice(b"{\"ts\":\"");
    line.extend_from_slice(crate::time::Rfc3339Buf::new(ts_ms).as_bytes());
    line.extend_from_slice(b"\",\"level\":\"");
    line.extend_from_slice(level.as_str().as_bytes());
    line.extend_from_slice(b"\",\"msg\":");
    // Serializing a &str or a Value into a Vec cannot fail (maps have string keys).
    let _ = serde_json::to_writer(&mut line, msg);
    for (key, value) in fields {
        line.push(b',');
        let _ = serde_json::to_writer(&mut line, key);
        line.push(b':');
        let _ = serde_json::to_writer(&mut line, value);
    }
    line.extend_from_slice(b"}\n");
    line
}

/// Writes a log line to stderr if `level` is enabled. A failing stderr is ignored:
/// logging must never stop the pipeline.
pub fn log(level: Level, msg: &str, fields: &[(&str, Value)]) {
    if !enabled(level) {
        return;
    }
    let line = format_line(crate::fns::now_ms(), level, msg, fields);
    let _ = std::io::stderr().lock().write_all(&line);
}

pub fn error(msg: &str, fields: &[(&str, Value)]) {
    log(Level::Error, msg, fields);
}
pub fn warn(msg: &str, fields: &[(&str, Value)]) {
    log(Level::Warn, msg, fields);
}
pub fn info(msg: &str, fields: &[(&str, Value)]) {
    log(Level::Info, msg, fields);
}
pub fn debug(msg: &str, fields: &[(&str, Value)]) {
    log(Level::Debug, msg, fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_json_with_fields() {
        let line = format_line(
            0,
            Level::Warn,
            "bad \"thing\"",
            &[("component", "sources.a".into()), ("count", 3.into())],
        );
        assert_eq!(line.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
        assert_eq!(v["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "bad \"thing\"");
        assert_eq!(v["component"], "sources.a");
        assert_eq!(v["count"], 3);
    }

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("loud"), None);
        assert!(Level::Error < Level::Debug);
        for l in [Level::Error, Level::Warn, Level::Info, Level::Debug] {
            assert_eq!(Level::from_u8(l as u8), l);
        }
    }
}
