//! `type: generator` — deterministic synthetic events from a schema.

mod check;
mod emit;
mod spec;

pub use emit::{emit, statics};
pub use spec::{GenFieldSpec, GeneratorSource};

use super::{CheckedSource, IrSourceKind, SourceContext};
use crate::types::TsRepr;
use crate::validate::Cx;

pub const RUNTIME_TYPES: &[&str] = &["GenField", "GenKind", "GeneratorSource"];

/// A generator source: its count and rate settings, its seed and how each field is made.
#[derive(Debug, Clone)]
pub struct IrGenerator {
    pub count_key: String,
    pub rate_key: String,
    pub seed: u64,
    pub fields: Vec<GenField>,
}

pub fn check(g: &GeneratorSource, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
    let generator = check::generator(source.name, g, source.record, cx)?;
    Some(CheckedSource {
        kind: IrSourceKind::Generator(generator),
        record: source.record.clone(),
        metadata: Vec::new(),
        commits: false,
    })
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
