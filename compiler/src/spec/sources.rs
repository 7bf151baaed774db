//! Source specs: where events come from.

use super::{FormatName, OnError};
use crate::connectors::SourceKind;

/// Options every source has, whatever its type.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the source's options")]
pub struct SourceCommon {
    pub format: Option<FormatName>,
    pub schema: Option<String>,
    #[serde(default)]
    pub on_error: OnError,
    /// CSV only: the field delimiter (one character).
    pub delimiter: Option<String>,
    /// The timestamp field that holds each record's event time; absent: processing time.
    pub event_time: Option<String>,
    pub watermark: Option<WatermarkSpec>,
}

/// `watermark: { max_out_of_order: 2s, idle_timeout: 30s }`
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ max_out_of_order: 2s, idle_timeout: 30s }`")]
pub struct WatermarkSpec {
    pub max_out_of_order: Option<String>,
    pub idle_timeout: Option<String>,
}

impl SourceCommon {
    /// The keys of [`SourceCommon`], split off before the type-specific part is read.
    pub const KEYS: &'static [&'static str] = &["format", "schema", "on_error", "delimiter", "event_time", "watermark"];
}

/// A source: its type-specific settings plus the common options.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub kind: SourceKind,
    pub common: SourceCommon,
}
