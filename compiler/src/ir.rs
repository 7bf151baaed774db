//! The IR: a resolved, typed pipeline graph in topological order.
//!
//! No YAML types and no spans: everything codegen needs, nothing it must check.

use std::collections::BTreeSet;
use std::rc::Rc;

use crate::expr::TExpr;
use crate::spec::OnError;
use crate::types::{RecordType, TsRepr};

#[derive(Debug, Clone)]
pub struct Ir {
    pub name: String,
    /// Hash of the spec text, printed by `--version`.
    pub spec_hash: String,
    /// Every record struct to generate, nested records before their parents.
    pub records: Vec<Rc<RecordType>>,
    pub sources: Vec<IrSource>,
    /// Transforms in topological order.
    pub transforms: Vec<IrTransform>,
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
}

/// Where a component's records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    Transform(usize),
    Sink(usize),
}

#[derive(Debug, Clone)]
pub struct IrSource {
    pub name: String,
    pub kind: IrSourceKind,
    pub format: IrFormat,
    pub record: Rc<RecordType>,
    pub on_error: OnError,
    pub outputs: Vec<Node>,
}

#[derive(Debug, Clone)]
pub enum IrSourceKind {
    File {
        path_key: String,
        follow: bool,
    },
    Stdin,
    Generator {
        count_key: String,
        rate_key: String,
        seed: u64,
        fields: Vec<GenField>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IrFormat {
    Json,
    Csv { delimiter: u8, header: bool },
    Lines,
}

#[derive(Debug, Clone)]
pub struct IrTransform {
    pub name: String,
    pub input: Rc<RecordType>,
    pub filter: Option<TExpr>,
    /// The output record and one expression per output field, in field order.
    pub map: Option<(Rc<RecordType>, Vec<TExpr>)>,
    pub outputs: Vec<Node>,
}

impl IrTransform {
    pub fn output(&self) -> &Rc<RecordType> {
        self.map.as_ref().map(|(r, _)| r).unwrap_or(&self.input)
    }
}

#[derive(Debug, Clone)]
pub struct IrSink {
    pub name: String,
    pub kind: IrSinkKind,
    pub format: IrFormat,
    /// What the sink receives: records of a type, or the pipeline's dead letters.
    pub input: SinkInput,
}

#[derive(Debug, Clone)]
pub enum SinkInput {
    Records(Rc<RecordType>),
    DeadLetters,
}

#[derive(Debug, Clone)]
pub enum IrSinkKind {
    Stdout,
    File { path_key: String, append: bool },
}

/// How the generator source fills one field (mirrors the runtime's `GenKind`).
#[derive(Debug, Clone)]
pub struct GenField {
    pub name: String,
    pub kind: GenKind,
}

#[derive(Debug, Clone)]
pub enum GenKind {
    Values(Vec<String>),
    Text {
        prefix: String,
        cardinality: u64,
    },
    Int {
        min: i64,
        max: i64,
    },
    UInt {
        min: u64,
        max: u64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Bool {
        p_true: f64,
    },
    Time {
        start_ms: i64,
        step_ms: i64,
        jitter_ms: i64,
        repr: TsRepr,
    },
    Sequence,
    Optional {
        p_null: f64,
        inner: Box<GenKind>,
    },
    Object(Vec<GenField>),
}
