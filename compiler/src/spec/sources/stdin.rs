//! `type: stdin` — read records from standard input until it closes.

use crate::spec::Setting;

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the source's options")]
pub struct StdinSource {
    /// Longest record (line) read whole, in bytes, as for `type: file`.
    pub max_record_bytes: Option<Setting>,
}
