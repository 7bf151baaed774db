//! `type: stdout` — write records to standard output.

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSink {}
