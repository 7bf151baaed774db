//! Table specs: keyed running aggregates without windows (Faust's tables).

use super::transforms::ExprText;
use super::windows::{KeySpec, OnFull};
use super::{Inputs, OnError, OrderedMap};

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ input: clicks, key: user, aggregate: { n: count() } }`")]
pub struct TableSpec {
    pub input: Option<Inputs>,
    pub key: Option<KeySpec>,
    pub aggregate: Option<OrderedMap<ExprText>>,
    /// `change` (default): a row on every update; a duration: changed rows every interval.
    pub emit: Option<String>,
    /// Forget a key not updated for this long.
    pub ttl: Option<String>,
    pub max_keys: Option<u64>,
    pub on_full: Option<OnFull>,
    /// For results that fail further down the pipeline (`dead_letter` or `drop`).
    pub on_error: Option<OnError>,
}
