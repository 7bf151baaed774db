//! `type: stdout` — write records to standard output.

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the sink's options")]
pub struct StdoutSink {}
