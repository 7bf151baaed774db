//! Join specs: a stream enriched from reference data (`lookup:`), or two streams
//! (`left:` and `right:`) joined within an interval or a window.

use super::transforms::ExprText;
use super::windows::{HoppingSpec, LatePolicy};
use super::{Inputs, OnError, OrderedMap, Setting};

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a mapping like `{ input: readings, key: device_id, lookup: { file: devices.csv, format: csv, schema: device, key: id, as: device } }`"
)]
pub struct JoinSpec {
    pub input: Option<Inputs>,
    /// The stream's side of the key: an expression on its records.
    pub key: Option<ExprText>,
    pub lookup: Option<LookupSpec>,
    /// A record whose key the reference data lacks: `null` (kept, the reference record
    /// null), `drop` or `dead_letter`.
    pub missing: Option<Missing>,
    /// Output field name → expression over the stream's fields and the reference record
    /// (a lookup), or over both sides' records (two streams).
    pub select: Option<OrderedMap<ExprText>>,
    /// Two streams: the left and the right side.
    pub left: Option<SideSpec>,
    pub right: Option<SideSpec>,
    /// Two streams: `inner` (the default), `left`, `right` or `full`.
    pub kind: Option<JoinKind>,
    /// Two streams: `right.t - left.t` from `from` to `to`, both included.
    pub interval: Option<IntervalSpec>,
    /// Two streams: both in one window.
    pub tumbling: Option<String>,
    pub hopping: Option<HoppingSpec>,
    pub offset: Option<String>,
    pub late: Option<LatePolicy>,
    pub on_error: Option<OnError>,
}

impl JoinSpec {
    /// True for a join of two streams (it has a side), false for a lookup.
    pub fn of_streams(&self) -> bool {
        self.left.is_some() || self.right.is_some()
    }
}

/// One side of a join of two streams.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ input: orders, key: order_id, as: order }`")]
pub struct SideSpec {
    pub input: Option<Inputs>,
    pub key: Option<ExprText>,
    /// The side's record's name in `select` (default: its input's name).
    #[serde(rename = "as")]
    pub name: Option<String>,
}

/// Which records of a join of two streams come out without a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of inner, left, right, full")]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

/// `interval: { from: -5m, to: 1h }`
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ from: 0s, to: 1h }`")]
pub struct IntervalSpec {
    pub from: String,
    pub to: String,
}

/// Reference data from a file, a table of the pipeline, or Redis.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a mapping like `{ file: devices.csv, format: csv, schema: device, key: id, as: device }`, `{ table: per_device, as: stats }` or `{ redis: { url: redis://127.0.0.1:6379, prefix: \"device:\" }, schema: device }`"
)]
pub struct LookupSpec {
    pub file: Option<Setting>,
    /// A table of the same pipeline: its current row of the key.
    pub table: Option<String>,
    /// Redis: the row of a key is the JSON value at `<prefix><key>`.
    pub redis: Option<crate::connectors::redis::RedisLookup>,
    pub format: Option<super::FormatName>,
    pub schema: Option<String>,
    /// The reference record's side of the key: one of its fields.
    pub key: Option<String>,
    /// The reference record's name in `select` (default: the schema's name).
    #[serde(rename = "as")]
    pub name: Option<String>,
    /// How often to look for a change of the file (default 10 s), or `never`.
    pub reload: Option<String>,
}

/// What becomes of a record whose key the reference data lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of null, drop, dead_letter")]
pub enum Missing {
    Null,
    Drop,
    DeadLetter,
}
