//! `type: file` — read a file once, or follow it as it grows.

use crate::spec::Setting;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ type: file, path: in.jsonl, schema: reading }`")]
pub struct FileSource {
    /// Path of the file; resolved at start (`${VAR}` and `--set`).
    pub path: Setting,
    /// Keep reading as the file grows instead of stopping at its end.
    #[serde(default)]
    pub follow: bool,
    /// Longest record (line) read whole, in bytes; a longer one is a bad record, skipped
    /// without being held. A setting; default 1 MiB.
    pub max_record_bytes: Option<Setting>,
}
