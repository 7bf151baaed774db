//! `type: generator` — deterministic synthetic events from a schema.

use std::collections::BTreeMap;

use crate::spec::Setting;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the source's options")]
pub struct GeneratorSource {
    /// How many events to produce; unbounded when absent. Resolved at start.
    pub count: Option<Setting>,
    /// At most this many events per second; as fast as possible when absent.
    pub rate: Option<Setting>,
    /// Seed of the pseudo-random sequence: the same seed gives the same events.
    #[serde(default)]
    pub seed: u64,
    /// How to generate particular fields; other fields get defaults by type.
    #[serde(default)]
    pub fields: BTreeMap<String, GenFieldSpec>,
}

/// How one generated field gets its values.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of generator options, like `{ min: 0, max: 100 }`")]
pub struct GenFieldSpec {
    /// Strings: pick one of these.
    pub values: Option<Vec<String>>,
    /// Strings: `prefix` + a number below `cardinality`.
    pub prefix: Option<String>,
    pub cardinality: Option<u64>,
    /// Numbers: uniform between `min` and `max`.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Booleans: probability of `true`.
    pub p_true: Option<f64>,
    /// Timestamps: first value (Unix ms), step between events and random jitter.
    pub start: Option<i64>,
    pub step: Option<String>,
    pub jitter: Option<String>,
    /// Optional fields: share of nulls, 0.0 to 1.0.
    pub null_ratio: Option<f64>,
    /// Integers: the event's sequence number (0, 1, 2, …).
    #[serde(default)]
    pub sequence: bool,
}
