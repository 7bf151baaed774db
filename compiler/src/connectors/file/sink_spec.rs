//! `type: file` — write records to a file.

use crate::spec::Setting;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ type: file, input: hot, path: out.jsonl }`")]
pub struct FileSink {
    /// Path of the file; resolved at start (`${VAR}` and `--set`).
    pub path: Setting,
    /// Append to an existing file instead of replacing it.
    #[serde(default)]
    pub append: bool,
}
