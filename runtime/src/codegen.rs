//! The contract between the rill compiler and this runtime.
//!
//! Generated code starts with `use rill_runtime::codegen::*;` and names nothing from the
//! runtime except through this module, so the runtime can reorganise freely as long as
//! these names keep their meaning.
//!
//! Generated record structs use
//! `#[derive(Serialize, Deserialize)] #[serde(crate = "rill_runtime::codegen::serde")]`
//! so the generated crate needs no direct serde dependency. Timestamp fields are `i64`
//! milliseconds; other representations use `#[serde(with = "rill_runtime::codegen::ts_rfc3339")]`
//! (or `ts_seconds`, and `opt_ts_*` together with `#[serde(default)]` for `Option<i64>`).

pub use crate::acks::Acks;
pub use crate::aggregates::{
    Aggregator, ApproxCountDistinct, Avg, Collect, Count, CountDistinct, First, Last, Max, MaxF64, Min, MinF64,
    Percentile, Stddev, StddevSample, Sum, Variance, VarianceSample,
};
pub use crate::batch::{MetaView, RawBatch};
pub use crate::buffer::{BufferOptions, Fsync, WhenFull};
pub use crate::connectors::exports::*;
pub use crate::dead_letter::DeadLetters;
pub use crate::driver::{run, Context, Pipeline, PipelineInfo, Step};
pub use crate::errors::{also, branches, DecodeError, EvalError, RecordError, RunError, StartError};
pub use crate::fns;
pub use crate::formats::{
    CsvDecoder, CsvEncoder, CsvRecord, CsvRow, CsvWriter, Decoder, Encoder, FromCsvField, JsonDecoder, JsonEncoder,
    JsonScan, LineRecord, LinesDecoder, LinesEncoder, ScanJson, ToCsvField, WriteJson,
};
pub use crate::internal_events::{Counts, Events, Tally};
pub use crate::joins::{failed_pair, FailedPair, JoinBounds, JoinPair, JoinShape, LookupFile, Sided, StreamJoin};
pub use crate::patterns::{Pattern, PatternShape, PatternStep, Patterns};
pub use crate::settings::{SettingDef, Settings};
pub use crate::sinks::{Address, Encoded, MessageOutput, Output, Outputs, RawSink};
pub use crate::sources::chain::{BatchClock, Chain, Merge};
pub use crate::sources::{OnError, Poll, RawSource, Source};
pub use crate::state::Checkpointed;
pub use crate::time::{opt_ts_rfc3339, opt_ts_seconds, ts_rfc3339, ts_seconds, TsRepr};
pub use crate::windows::{
    Admit, Aggregation, Clocks, CountWindows, Emit, FixedWindows, Keyed, OnFull, OrderedRows, PanedWindows, Reach,
    SessionWindows, SplitByKey, StateOptions, Stateful, StrKey, StrKeyRef, Table, TimeMode, Window,
};

#[cfg(feature = "regex")]
pub use crate::fns::LazyRegex;

pub use serde;
pub use serde::{Deserialize, Serialize};
pub use serde_json;
