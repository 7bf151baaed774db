//! Schemas become record types, one generated struct each.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::codegen::ident::type_name;
use crate::ir::{IrOperator, IrOperatorKind, IrSource};
use crate::spec::{FieldSpec, ScalarType, SchemaSpec, Spec};
use crate::types::{Field, RecordType, TsRepr, Type};

/// Record types by schema name.
pub type Schemas = BTreeMap<String, Rc<RecordType>>;

pub fn from_schemas(spec: &Spec) -> Schemas {
    spec.schemas
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                record(&type_name(&s.name), &format!("schema `{}`", s.name), &s.spec),
            )
        })
        .collect()
}

fn record(rust_name: &str, display: &str, schema: &SchemaSpec) -> Rc<RecordType> {
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
                Field {
                    name: name.clone(),
                    ty,
                    ts_repr,
                    from_metadata: false,
                }
            }
            FieldSpec::Object(nested) => {
                let nested_name = format!("{rust_name}{}", type_name(name));
                let nested = record(&nested_name, &format!("{display}.{name}"), nested);
                Field {
                    name: name.clone(),
                    ty: Type::Record(nested),
                    ts_repr: TsRepr::Millis,
                    from_metadata: false,
                }
            }
        })
        .collect();
    Rc::new(RecordType {
        rust_name: rust_name.to_string(),
        display: display.to_string(),
        fields,
    })
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
pub fn line_record(source: &str) -> Rc<RecordType> {
    Rc::new(RecordType {
        rust_name: format!("{}Line", type_name(source)),
        display: format!("lines of `{source}`"),
        fields: vec![Field {
            name: "line".into(),
            ty: Type::String,
            ts_repr: TsRepr::Millis,
            from_metadata: false,
        }],
    })
}

/// Every record the pipeline uses, nested records first, each once.
pub fn collect(sources: &[IrSource], operators: &[IrOperator], out: &mut Vec<Rc<RecordType>>) {
    let used = sources
        .iter()
        .map(|s| &s.record)
        .chain(operators.iter().filter_map(|o| match &o.kind {
            IrOperatorKind::Transform(_) if o.output().rust_name == o.input.rust_name => None,
            IrOperatorKind::Transform(_) => Some(o.output()),
            IrOperatorKind::Window(_) | IrOperatorKind::Table(_) => Some(o.output()),
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
        if let Type::Record(nested) = &field.ty {
            push(nested, out, seen);
        }
    }
    seen.insert(record.rust_name.clone());
    out.push(record.clone());
}
