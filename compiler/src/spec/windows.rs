//! Window specs: keyed aggregation over tumbling, hopping, session or count windows.

use super::transforms::ExprText;
use super::{Inputs, OnError, OrderedMap};

/// A window. Exactly one of `tumbling`, `hopping`, `session` and `count` is given.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ input: readings, tumbling: 10s, aggregate: { n: count() } }`")]
pub struct WindowSpec {
    pub input: Option<Inputs>,
    /// Absent: one global window for all records.
    pub key: Option<KeySpec>,
    pub tumbling: Option<String>,
    pub hopping: Option<HoppingSpec>,
    pub session: Option<SessionSpec>,
    pub count: Option<u64>,
    /// Shifts tumbling and hopping windows away from epoch alignment.
    pub offset: Option<String>,
    pub allowed_lateness: Option<String>,
    pub late: Option<LatePolicy>,
    pub aggregate: Option<OrderedMap<ExprText>>,
    pub max_keys: Option<u64>,
    pub on_full: Option<OnFull>,
    /// For results that fail further down the pipeline (`dead_letter` or `drop`).
    pub on_error: Option<OnError>,
}

/// `hopping: { size: 10s, slide: 5s }`
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ size: 10s, slide: 5s }`")]
pub struct HoppingSpec {
    pub size: String,
    pub slide: String,
}

/// `session: { gap: 30s }`
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ gap: 30s }`")]
pub struct SessionSpec {
    pub gap: String,
}

/// Where records later than `allowed_lateness` go when nothing reads `<window>.late`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of dead_letter, drop")]
pub enum LatePolicy {
    DeadLetter,
    Drop,
}

/// What a window or table does at `max_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of evict_oldest, dead_letter")]
pub enum OnFull {
    EvictOldest,
    DeadLetter,
}

/// `key: device_id`, `key: [device_id, site]` or `key: { site: upper(site) }`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
#[serde(expecting = "a field, a list of expressions, or a mapping of names to expressions")]
pub enum KeySpec {
    One(ExprText),
    Many(Vec<ExprText>),
    Named(OrderedMap<ExprText>),
}
