//! The IR: a resolved, typed pipeline graph in topological order.
//!
//! No YAML types and no spans: everything codegen needs, nothing it must check.

use std::collections::BTreeSet;
use std::rc::Rc;

pub use crate::connectors::message::IrAddress;
pub use crate::connectors::metadata::IrMeta;
pub use crate::connectors::{IrSinkKind, IrSourceKind};
use crate::expr::aggregates::{AggFunc, TAggregate};
use crate::expr::{TExpr, TKind};
use crate::spec::windows::OnFull;
use crate::spec::OnError;
use crate::types::{RecordType, Type};

#[derive(Debug, Clone)]
pub struct Ir {
    pub name: String,
    /// Hash of the spec text, printed by `--version`.
    pub spec_hash: String,
    /// Every record struct to generate, nested records before their parents.
    pub records: Vec<Rc<RecordType>>,
    pub sources: Vec<IrSource>,
    /// Transforms, windows and tables in topological order.
    pub operators: Vec<IrOperator>,
    pub sinks: Vec<IrSink>,
    /// Values resolved when the binary starts (`${VAR}`, `--set`).
    pub settings: Vec<IrSetting>,
    /// Runtime cargo features this pipeline needs.
    pub features: BTreeSet<&'static str>,
}

#[derive(Debug, Clone)]
pub struct IrSetting {
    pub key: String,
    pub default: String,
    pub help: String,
    /// Holds a secret (its default is then exactly `${VAR}`, or a URL whose password
    /// is one): `--help` names the variables instead of the default.
    pub secret: bool,
}

/// Where a component's records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    Operator(usize),
    /// The right side of a join of two streams.
    JoinRight(usize),
    Sink(usize),
}

#[derive(Debug, Clone)]
pub struct IrSource {
    pub name: String,
    /// Stem of its generated items (`flow_<stem>`, …), from `names::Names`.
    pub stem: String,
    pub kind: IrSourceKind,
    pub format: IrFormat,
    /// The schema's record, plus its metadata fields.
    pub record: Rc<RecordType>,
    /// The record's fields filled from each message's metadata, in the order the
    /// runtime source is asked for them.
    pub metadata: Vec<IrMeta>,
    /// It commits positions back (offsets, acknowledgements) once records are safe.
    pub commits: bool,
    pub on_error: OnError,
    pub time: IrTime,
    pub outputs: Vec<Node>,
}

/// Where a source's records get their time.
#[derive(Debug, Clone, PartialEq)]
pub enum IrTime {
    /// The wall clock when the record is read.
    Processing,
    Event {
        /// Path of the timestamp field (`["ts"]`, `["meta", "ts"]`).
        field: Vec<String>,
        /// The Rust identifiers along `field`.
        idents: Vec<String>,
        /// The field is `timestamp?`: a null is a dead letter.
        optional: bool,
        max_out_of_order: i64,
        idle_timeout: Option<i64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IrFormat {
    Json,
    Csv { delimiter: u8, header: bool },
    Lines,
}

/// A node between sources and sinks.
#[derive(Debug, Clone)]
pub struct IrOperator {
    pub name: String,
    /// Stem of its generated items (`flow_<stem>`, …), from `names::Names`.
    pub stem: String,
    /// The record type flowing in (a join of two streams: its left side's).
    pub input: Rc<RecordType>,
    pub kind: IrOperatorKind,
    pub outputs: Vec<Node>,
    /// Readers of `<window>.late` (windows, patterns, joins of two streams).
    pub late_outputs: Vec<Node>,
    /// Indices of the sources upstream: the operator's watermark is their minimum.
    pub time_sources: Vec<usize>,
}

#[derive(Debug, Clone)]
pub enum IrOperatorKind {
    Transform(IrTransform),
    Window(IrWindow),
    Table(IrTable),
    Pattern(IrPattern),
    Join(IrJoin),
    StreamJoin(IrStreamJoin),
}

impl IrOperator {
    /// The record type flowing out.
    pub fn output(&self) -> &Rc<RecordType> {
        match &self.kind {
            IrOperatorKind::Transform(t) => t
                .map
                .as_ref()
                .map(|(r, _)| r)
                .or(t.explode.as_ref().map(|(r, _)| r))
                .unwrap_or(&self.input),
            IrOperatorKind::Window(w) => &w.aggregation.output,
            IrOperatorKind::Table(t) => &t.aggregation.output,
            IrOperatorKind::Pattern(p) => &p.output,
            IrOperatorKind::Join(j) => &j.output,
            IrOperatorKind::StreamJoin(j) => &j.output,
        }
    }

    /// The record type of `<name>.late`: the input's, or a join of two streams' record
    /// with either side.
    pub fn late_record(&self) -> &Rc<RecordType> {
        match &self.kind {
            IrOperatorKind::StreamJoin(j) => j.late.as_ref().unwrap_or(&j.pair),
            _ => &self.input,
        }
    }

    /// `transforms.hot`, `windows.per_device`: how errors and counters name it.
    pub fn component(&self) -> String {
        let section = match self.kind {
            IrOperatorKind::Transform(_) => "transforms",
            IrOperatorKind::Window(_) => "windows",
            IrOperatorKind::Table(_) => "tables",
            IrOperatorKind::Pattern(_) => "patterns",
            IrOperatorKind::Join(_) | IrOperatorKind::StreamJoin(_) => "joins",
        };
        format!("{section}.{}", self.name)
    }

    pub fn aggregation(&self) -> Option<&IrAggregation> {
        match &self.kind {
            IrOperatorKind::Transform(_) => None,
            IrOperatorKind::Window(w) => Some(&w.aggregation),
            IrOperatorKind::Table(t) => Some(&t.aggregation),
            IrOperatorKind::Pattern(_) | IrOperatorKind::Join(_) | IrOperatorKind::StreamJoin(_) => None,
        }
    }

    pub fn aggregation_mut(&mut self) -> Option<&mut IrAggregation> {
        match &mut self.kind {
            IrOperatorKind::Transform(_) => None,
            IrOperatorKind::Window(w) => Some(&mut w.aggregation),
            IrOperatorKind::Table(t) => Some(&mut t.aggregation),
            IrOperatorKind::Pattern(_) | IrOperatorKind::Join(_) | IrOperatorKind::StreamJoin(_) => None,
        }
    }

    /// A window or table split by key that hands its rows on by a step's end, not as
    /// they come due ([`IrWindow::catches_up`], [`IrTable::catches_up`]).
    pub fn catches_up(&self) -> bool {
        match &self.kind {
            IrOperatorKind::Window(w) => w.catches_up(),
            IrOperatorKind::Table(t) => t.catches_up(),
            _ => false,
        }
    }
}

/// A stateless transform. When both are given, `filter` runs before `map`.
#[derive(Debug, Clone)]
pub struct IrTransform {
    pub filter: Option<TExpr>,
    /// The output record and one expression per output field, in field order.
    pub map: Option<(Rc<RecordType>, Vec<TExpr>)>,
    /// The output record (one field) and the list expression whose elements fill it.
    pub explode: Option<(Rc<RecordType>, TExpr)>,
}

/// Fields a window adds to its output after the keys; they cannot be key or aggregate names.
pub const WINDOW_FIELDS: &[&str] = &["window_start", "window_end"];
/// Added last to a window's output when it has `allowed_lateness`: true for a result
/// that replaces one already emitted.
pub const UPDATE_FIELD: &str = "update";

/// What windows and tables share: the key, the aggregates, the output record, limits.
#[derive(Debug, Clone)]
pub struct IrAggregation {
    /// Struct names of the accumulator and the `Aggregation` type, from `names::Names`.
    pub acc_type: String,
    pub agg_type: String,
    /// One expression per key field; empty for a global window.
    pub key: Vec<TExpr>,
    /// Output field name and aggregate, in spec order.
    pub aggregates: Vec<(String, TAggregate)>,
    /// The output has `window_start` and `window_end` after the keys (windows).
    pub window_bounds: bool,
    /// The output ends with `update` (windows with `allowed_lateness`).
    pub update_field: bool,
    /// Keys, then (windows) `window_start`, `window_end`, then aggregates, then
    /// (with `allowed_lateness`) `update`.
    pub output: Rc<RecordType>,
    pub max_keys: Option<u64>,
    pub on_full: OnFull,
    pub on_error: OnError,
    /// Its rows go only to sinks that write a byte stream and read nothing else, and no
    /// row can fail to encode (set once every edge is known): rows handed on later than
    /// one operator would hand them on are written the same, and no dead letter changes
    /// place.
    pub rows_to_own_sinks: bool,
}

#[derive(Debug, Clone)]
pub struct IrWindow {
    pub aggregation: IrAggregation,
    pub kind: IrWindowKind,
    pub allowed_lateness: i64,
    /// Late records with no `.late` reader: dropped (true) or dead letters.
    pub drop_late: bool,
}

impl IrWindow {
    /// See [`shares_panes`].
    pub fn shares_panes(&self) -> bool {
        shares_panes(&self.kind, &self.aggregation)
    }

    /// Whether the runtime may split the window's keys by hash across worker threads
    /// (its `SplitByKey`): a window with keys, no `allowed_lateness` and no `max_keys`
    /// (a tumbling or hopping window's records are then late by their time alone), and
    /// whose records cannot fail to be added. A part adds its records on a worker,
    /// after the pipeline thread has moved on: a failure could no longer become the
    /// record's dead letter in its place among the others. Sessions, whose ends move
    /// with their records, fire in their parts and are handed on once a step, and count
    /// windows' rows are handed on after their records ([`Self::catches_up`]): only
    /// when their rows go to sinks of their own.
    pub fn splits_by_key(&self) -> bool {
        let a = &self.aggregation;
        let kind = match self.kind {
            IrWindowKind::Fixed { .. } => true,
            IrWindowKind::Session { .. } | IrWindowKind::Count { .. } => a.rows_to_own_sinks,
        };
        kind && self.allowed_lateness == 0
            && a.max_keys.is_none()
            && !a.key.is_empty()
            && a.aggregates.iter().all(|(_, agg)| adds_without_failing(agg))
    }

    /// Split sessions and count windows: their parts fire as they take records, and
    /// every row due is handed on before a step ends (`catch_up`).
    pub fn catches_up(&self) -> bool {
        !matches!(self.kind, IrWindowKind::Fixed { .. }) && self.splits_by_key()
    }
}

/// An aggregate whose `add` returns no error and whose argument is a field or a
/// constant: counts (they would fail past 2^63 records), averages, minimums, maximums,
/// firsts, lasts, variances, percentiles, distinct counts and float sums. An integer sum
/// overflows; `collect` has a limit; an expression can divide by zero.
fn adds_without_failing(agg: &TAggregate) -> bool {
    let plain = match &agg.arg {
        None => true,
        Some(arg) => matches!(
            arg.kind,
            TKind::Field(_) | TKind::Str(_) | TKind::I64(_) | TKind::U64(_) | TKind::F64(_) | TKind::Bool(_)
        ),
    };
    let adds = match agg.func {
        AggFunc::Count
        | AggFunc::Avg
        | AggFunc::Min
        | AggFunc::Max
        | AggFunc::First
        | AggFunc::Last
        | AggFunc::Variance
        | AggFunc::VarianceSample
        | AggFunc::Stddev
        | AggFunc::StddevSample
        | AggFunc::Percentile
        | AggFunc::Median
        | AggFunc::CountDistinct
        | AggFunc::ApproxCountDistinct => true,
        AggFunc::Sum => matches!(&agg.ty, Type::F64) || matches!(&agg.ty, Type::Optional(t) if **t == Type::F64),
        _ => false,
    };
    plain && adds
}

/// A hopping window keeps each record once, in a pane (the runtime's `PanedWindows`),
/// and merges a window's panes when it fires, unless merging could change a result: an
/// integer `sum` can overflow in the merge, where no record can take the blame, `collect`
/// lists its values in arrival order, and `max_keys` fires the oldest window early and
/// starts it afresh. Those keep an accumulator per window (`FixedWindows`).
pub fn shares_panes(kind: &IrWindowKind, aggregation: &IrAggregation) -> bool {
    let merges_freely = |a: &TAggregate| match a.func {
        AggFunc::Collect => false,
        AggFunc::Sum => !matches!(a.ty, Type::I64 | Type::U64),
        _ => true,
    };
    matches!(kind, IrWindowKind::Fixed { size, slide, .. } if slide < size)
        && aggregation.max_keys.is_none()
        && aggregation.aggregates.iter().all(|(_, a)| merges_freely(a))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrWindowKind {
    /// Tumbling when `slide == size`.
    Fixed {
        size: i64,
        slide: i64,
        offset: i64,
    },
    Session {
        gap: i64,
    },
    Count {
        count: u64,
    },
}

#[derive(Debug, Clone)]
pub struct IrTable {
    pub aggregation: IrAggregation,
    /// `None`: a row on every change; `Some(ms)`: changed rows every interval.
    pub emit_every: Option<i64>,
    pub ttl: Option<i64>,
    /// A lookup join reads its rows (set once every operator is known).
    pub looked_up: bool,
}

impl IrTable {
    /// The runtime may split this table's keys across the workers, as a window's
    /// ([`IrWindow::splits_by_key`]): no `ttl`, no `max_keys` (with a `ttl`, a record
    /// of a key expired but not swept yet emits the key's last row at once, and
    /// `max_keys` counts every key), no lookup join reads a row at a record, its
    /// records cannot fail to be added, and either it emits on an interval or its row
    /// of each change may come later than the record ([`Self::catches_up`]).
    pub fn splits_by_key(&self) -> bool {
        let a = &self.aggregation;
        (self.emit_every.is_some() || a.rows_to_own_sinks)
            && self.ttl.is_none()
            && !self.looked_up
            && a.max_keys.is_none()
            && !a.key.is_empty()
            && a.aggregates.iter().all(|(_, agg)| adds_without_failing(agg))
    }

    /// Split and emitting each change: its parts build the rows, which the pipeline
    /// thread hands on in record order as they are ready, and all of them before a step
    /// ends (`catch_up`).
    pub fn catches_up(&self) -> bool {
        self.emit_every.is_none() && self.splits_by_key()
    }
}

/// A pattern: steps matched per key on event time, and what a match gives.
#[derive(Debug, Clone)]
pub struct IrPattern {
    /// Struct name of the generated `Pattern` type, from `names::Names`.
    pub pattern_type: String,
    /// One expression per key field.
    pub key: Vec<TExpr>,
    pub steps: Vec<IrStep>,
    /// ms: every event of a match is within this of its first.
    pub within: Option<i64>,
    /// The absence step's condition and how long after the match's last event it must
    /// not happen.
    pub absence: Option<(TExpr, i64)>,
    pub max_partial: u64,
    /// What the pattern keeps of a record: the fields `select` reads (the input's
    /// record when that is all of them).
    pub held: Rc<RecordType>,
    /// A match as a record: one field per step, holding its (last) event's held record
    /// (optional for an optional step).
    pub matched: Rc<RecordType>,
    /// The output record and one expression over `matched` per output field.
    pub output: Rc<RecordType>,
    pub select: Vec<TExpr>,
    /// The struct name of `matched` made of borrowed steps, which `select` reads when
    /// a match is found.
    pub match_ref: String,
    /// The key's field (`user_id` with `key: user_id`) when `select` reads it and the
    /// pattern holds it once, as the key, not in each record: `(step, field)` for each
    /// step, whose record gets it back in a dead letter; the `<Name>MatchRef` field
    /// `select` reads the key from, when there are any.
    pub keys_held_once: Vec<(String, String)>,
    pub key_ref: Option<String>,
    pub max_keys: Option<u64>,
    pub on_full: OnFull,
    pub on_error: OnError,
    /// Late records with no `.late` reader: dropped (true) or dead letters.
    pub drop_late: bool,
}

#[derive(Debug, Clone)]
pub struct IrStep {
    pub name: String,
    pub condition: TExpr,
    /// Events it takes: at least `min` (0: optional), at most `max`.
    pub min: u32,
    pub max: u32,
    /// `contiguity: next`.
    pub strict: bool,
}

/// A stream enriched from reference data: a file's rows, or a table's current rows.
#[derive(Debug, Clone)]
pub struct IrJoin {
    /// The stream's side of the key (a string, integer or bool).
    pub key: TExpr,
    /// The reference data's record.
    pub reference: Rc<RecordType>,
    pub source: IrLookup,
    pub missing: IrMissing,
    /// The stream's fields and, last, the reference record (optional with
    /// `missing: null`).
    pub joined: Rc<RecordType>,
    /// The output record and one expression over `joined` per field; `None`: the output
    /// is `joined` itself.
    pub select: Option<(Rc<RecordType>, Vec<TExpr>)>,
    pub output: Rc<RecordType>,
}

/// Where a lookup's rows come from.
#[derive(Debug, Clone)]
pub enum IrLookup {
    File {
        /// The field of the rows that is their key.
        reference_key: String,
        /// The setting that holds the file's path, and how it is written.
        path_key: String,
        format: IrFormat,
        /// ms between looks for a change of the file; `None`: never.
        reload: Option<u64>,
    },
    /// A table of the pipeline (its stem): its current row of the key.
    Table { stem: String },
    /// Redis: a JSON row per key.
    Redis(crate::connectors::redis::IrRedisLookup),
}

impl IrJoin {
    /// The format the lookup's rows are decoded from; `None` for a table (its rows are
    /// its state).
    pub fn decoded_format(&self) -> Option<IrFormat> {
        match &self.source {
            IrLookup::File { format, .. } => Some(*format),
            IrLookup::Redis(_) => Some(IrFormat::Json),
            IrLookup::Table { .. } => None,
        }
    }
}

/// Two streams joined by key within an interval or a window.
#[derive(Debug, Clone)]
pub struct IrStreamJoin {
    /// Struct name of the generated `JoinPair` type, from `names::Names`.
    pub join_type: String,
    /// The right side's record (the left's is the operator's input).
    pub right: Rc<RecordType>,
    /// What the join holds of each side's records: with a `select`, only the fields it
    /// reads (the input's record when that is all of them).
    pub left_held: Rc<RecordType>,
    pub right_held: Rc<RecordType>,
    /// Each side's key, of one type.
    pub left_key: TExpr,
    pub right_key: TExpr,
    pub bounds: IrJoinBounds,
    /// Records of that side never paired come out alone (outer joins).
    pub outer_left: bool,
    pub outer_right: bool,
    /// The joined record: the left side's held record, the right's (each optional when
    /// the other side is outer), then, in a window join, `window_start` and `window_end`.
    pub pair: Rc<RecordType>,
    /// The record of `<join>.late` when it is read and differs from `pair`: either side,
    /// both optional.
    pub late: Option<Rc<RecordType>>,
    /// The output record and one expression over `pair` per field; `None`: the output
    /// is `pair` itself.
    pub select: Option<(Rc<RecordType>, Vec<TExpr>)>,
    /// With a `select`, the struct name of `pair` made of borrowed sides, which `select`
    /// reads inside the join: a pair is then never copied out of the held records.
    pub pair_ref: Option<String>,
    /// The fields that are a side's key (`order_id` with `key: order_id`), which `select`
    /// reads and the join holds once, as the key, not in each record: `(the side's name
    /// in the pair, the field's name)`; the `<Name>PairRef` field `select` reads the key
    /// from, when there are any.
    pub keys_held_once: Vec<(String, String)>,
    pub key_ref: Option<String>,
    pub output: Rc<RecordType>,
    pub on_error: OnError,
    /// Late records with no `.late` reader: dropped (true) or dead letters.
    pub drop_late: bool,
}

/// When a left and a right record join, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrJoinBounds {
    /// `left.t + from <= right.t <= left.t + to`.
    Interval { from: i64, to: i64 },
    /// Both in one window (tumbling when `slide == size`).
    Windows { size: i64, slide: i64, offset: i64 },
}

/// What becomes of a record whose key the reference data lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrMissing {
    Null,
    Drop,
    DeadLetter,
}

#[derive(Debug, Clone)]
pub struct IrSink {
    pub name: String,
    /// Stem of its generated items (`flow_<stem>`, …), from `names::Names`.
    pub stem: String,
    pub kind: IrSinkKind,
    pub delivery: IrDelivery,
    pub format: IrFormat,
    /// What the sink receives: records of a type, or the pipeline's dead letters.
    pub input: SinkInput,
    /// A message sink's disk buffer.
    pub buffer: Option<IrBuffer>,
}

/// A sink's `buffer:` (a disk buffer), resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrBuffer {
    pub max_bytes: u64,
    pub drop_oldest: bool,
    /// `None`: fsync at the end of every step (`always`).
    pub fsync_ms: Option<u64>,
}

/// How a sink's records leave (see [`crate::connectors::Delivery`]).
#[derive(Debug, Clone)]
pub enum IrDelivery {
    Stream,
    /// One message per record, sent to its address.
    Messages(IrAddress),
}

#[derive(Debug, Clone)]
pub enum SinkInput {
    Records(Rc<RecordType>),
    DeadLetters,
}
