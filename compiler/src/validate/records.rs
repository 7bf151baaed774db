//! Schemas become record types, one generated struct each.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::ir::{IrOperator, IrOperatorKind, IrSource};
use crate::names::Names;
use crate::spec::{FieldSpec, ScalarType, SchemaSpec, Spec};
use crate::types::{Field, RecordType, TsRepr, Type};

/// Record types by schema name.
pub type Schemas = BTreeMap<String, Rc<RecordType>>;

pub fn from_schemas(spec: &Spec, names: &mut Names) -> Schemas {
    spec.schemas
        .iter()
        .map(|s| {
            let rust_name = names.type_name("", &s.name, "");
            (
                s.name.clone(),
                record(rust_name, &format!("schema `{}`", s.name), &s.spec, names),
            )
        })
        .collect()
}

fn record(rust_name: String, display: &str, schema: &SchemaSpec, names: &mut Names) -> Rc<RecordType> {
    let fields = schema
        .fields
        .iter()
        .map(|(name, spec)| match spec {
            FieldSpec::Scalar { ty, optional } => {
                let (base, ts_repr) = scalar(*ty);
                let ty = if *optional {
                    Type::Optional(Box::new(base))
                } else {
                    base
                };
                Field::new(name.clone(), ty, ts_repr)
            }
            FieldSpec::Object(nested) => {
                let nested_name = names.type_name(&rust_name, name, "");
                let nested = record(nested_name, &format!("{display}.{name}"), nested, names);
                Field::new(name.clone(), Type::Record(nested), TsRepr::Millis)
            }
        })
        .collect();
    Rc::new(RecordType::new(rust_name, display.to_string(), fields))
}

fn scalar(ty: ScalarType) -> (Type, TsRepr) {
    match ty {
        ScalarType::String => (Type::String, TsRepr::Millis),
        ScalarType::Bool => (Type::Bool, TsRepr::Millis),
        ScalarType::I64 => (Type::I64, TsRepr::Millis),
        ScalarType::U64 => (Type::U64, TsRepr::Millis),
        ScalarType::F64 => (Type::F64, TsRepr::Millis),
        ScalarType::TimestampMs => (Type::Timestamp, TsRepr::Millis),
        ScalarType::TimestampS => (Type::Timestamp, TsRepr::Seconds),
        ScalarType::TimestampRfc3339 => (Type::Timestamp, TsRepr::Rfc3339),
    }
}

/// The record of a `lines` source: one string field, `line`.
pub fn line_record(source: &str, names: &mut Names) -> Rc<RecordType> {
    Rc::new(RecordType::new(
        names.type_name("", source, "Line"),
        format!("lines of `{source}`"),
        vec![Field::new("line", Type::String, TsRepr::Millis)],
    ))
}

/// Every record the pipeline uses, nested records first, each once.
pub fn collect(sources: &[IrSource], operators: &[IrOperator], out: &mut Vec<Rc<RecordType>>) {
    let used = sources
        .iter()
        .map(|s| &s.record)
        .chain(operators.iter().flat_map(|o| match &o.kind {
            IrOperatorKind::Transform(_) if o.output().rust_name == o.input.rust_name => vec![],
            IrOperatorKind::Transform(_) => vec![o.output()],
            IrOperatorKind::Window(_) | IrOperatorKind::Table(_) => vec![o.output()],
            // A match's record, then what `select` makes of it.
            IrOperatorKind::Pattern(p) => vec![&p.matched, o.output()],
            // The joined record, then what `select` makes of it (the same record without).
            IrOperatorKind::Join(j) => vec![&j.reference, &j.joined, o.output()],
            // The pair, what `select` makes of it, and the record of `<join>.late`.
            IrOperatorKind::StreamJoin(j) => [&j.pair, o.output()].into_iter().chain(&j.late).collect(),
        }));
    // The names already in `out`, so that each record is looked up in constant time.
    let mut seen: std::collections::HashSet<String> = out.iter().map(|r| r.rust_name.clone()).collect();
    for record in used {
        push(record, out, &mut seen);
    }
}

fn push(record: &Rc<RecordType>, out: &mut Vec<Rc<RecordType>>, seen: &mut std::collections::HashSet<String>) {
    if seen.contains(&record.rust_name) {
        return;
    }
    for field in &record.fields {
        let mut ty = &field.ty;
        // A pattern's optional step, a left join's reference record: `Option<Record>`.
        if let Type::Optional(inner) = ty {
            ty = inner;
        }
        if let Type::Record(nested) = ty {
            push(nested, out, seen);
        }
    }
    seen.insert(record.rust_name.clone());
    out.push(record.clone());
}
