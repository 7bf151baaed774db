//! Sink specs: where results go.

use super::{FormatName, Inputs};
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
}

impl SinkCommon {
    pub const KEYS: &'static [&'static str] = &["input", "format", "delimiter", "header"];
}

#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub kind: SinkKind,
    pub common: SinkCommon,
}
