//! Join specs: a stream enriched from reference data (`lookup:`).

use super::transforms::ExprText;
use super::{Inputs, OrderedMap, Setting};

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
    /// Output field name → expression over the stream's fields and the reference record.
    pub select: Option<OrderedMap<ExprText>>,
}

/// Reference data from a file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ file: devices.csv, format: csv, schema: device, key: id, as: device }`")]
pub struct LookupSpec {
    pub file: Option<Setting>,
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
