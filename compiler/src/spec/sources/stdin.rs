//! `type: stdin` — read records from standard input until it closes.

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the source's options")]
pub struct StdinSource {}
