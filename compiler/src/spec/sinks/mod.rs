//! Sink specs: where results go.

mod file;
mod kafka;
mod stdout;

pub use file::FileSink;
pub use kafka::{Compression, KafkaSink, TopicSpec};
pub use stdout::StdoutSink;

use super::{FormatName, Inputs};

/// Options every sink has, whatever its type.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the sink's options")]
pub struct SinkCommon {
    pub input: Option<Inputs>,
    pub format: Option<FormatName>,
    /// CSV only: the field delimiter (one character).
    pub delimiter: Option<String>,
    /// CSV only: write a header line first (default true).
    pub header: Option<bool>,
}

impl SinkCommon {
    pub const KEYS: &'static [&'static str] = &["input", "format", "delimiter", "header"];
}

#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub kind: SinkKind,
    pub common: SinkCommon,
}

/// The closed set of sink types.
#[derive(Debug, Clone)]
pub enum SinkKind {
    Stdout(StdoutSink),
    File(FileSink),
    Kafka(Box<KafkaSink>),
}

impl SinkKind {
    pub const TYPES: &'static [&'static str] = &["stdout", "file", "kafka"];

    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Stdout(_) => "stdout",
            SinkKind::File(_) => "file",
            SinkKind::Kafka(_) => "kafka",
        }
    }
}
