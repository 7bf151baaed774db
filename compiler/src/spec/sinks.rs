//! Sink specs: where results go.

use super::{FormatName, Inputs, Setting};
use crate::connectors::SinkKind;

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
    /// Message sinks only: a store-and-forward disk buffer.
    pub buffer: Option<BufferSpec>,
}

impl SinkCommon {
    pub const KEYS: &'static [&'static str] = &["input", "format", "delimiter", "header", "buffer"];
}

/// `buffer: { type: disk, max_size: 512MiB, when_full: block, fsync: 1s }`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ type: disk, max_size: 512MiB }`")]
pub struct BufferSpec {
    /// Where records wait: only `disk`.
    #[serde(rename = "type")]
    pub kind: BufferType,
    /// The most the buffer's files may take (default 256MiB), compiled in.
    pub max_size: Option<Setting>,
    /// What a full buffer does (default `block`).
    pub when_full: Option<WhenFullName>,
    /// `always`, or how long after a record its fsync may come (default `1s`).
    pub fsync: Option<Setting>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of disk")]
pub enum BufferType {
    Disk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of block, drop_oldest")]
pub enum WhenFullName {
    Block,
    DropOldest,
}

#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub kind: SinkKind,
    pub common: SinkCommon,
}
