//! Message metadata as record fields: a connector declares what its messages offer
//! ([`MetaDef`]: a name and a type, as Arroyo's `metadata_defs` do), the spec names a
//! field for each piece it wants, and the source's record gets those fields, filled
//! from each message before it flows on. Shared by every message source.

use std::rc::Rc;

use crate::diagnostics::SpecError;
use crate::types::{Field, RecordType, TsRepr, Type};
use crate::validate::Cx;

/// The type of one piece of metadata, as the runtime hands it over (`MetaView`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaType {
    Text,
    OptText,
    Int,
    /// Unix milliseconds, when the message has them.
    OptTimestamp,
    Bool,
}

impl MetaType {
    /// The record field's type.
    pub fn field_type(self) -> Type {
        let optional = |t: Type| Type::Optional(Box::new(t));
        match self {
            MetaType::Text => Type::String,
            MetaType::OptText => optional(Type::String),
            MetaType::Int => Type::I64,
            MetaType::OptTimestamp => optional(Type::Timestamp),
            MetaType::Bool => Type::Bool,
        }
    }
}

/// One piece of metadata a connector offers.
#[derive(Debug, Clone, Copy)]
pub struct MetaDef {
    /// Its name in the spec's `metadata:` and for the runtime source.
    pub name: &'static str,
    pub ty: MetaType,
}

/// A piece of metadata the spec asks for.
pub struct Wanted<'a> {
    /// What the runtime source is asked for (a [`MetaDef`] name, or one built from it,
    /// like `header:<name>`).
    pub meta: String,
    pub ty: MetaType,
    /// The field that receives it.
    pub field: &'a str,
    /// Where the field is named in the spec (for errors).
    pub path: Vec<&'a str>,
}

/// One metadata field of a source's record.
#[derive(Debug, Clone, PartialEq)]
pub struct IrMeta {
    /// The record field's Rust identifier.
    pub ident: String,
    /// What the runtime source is asked for.
    pub meta: String,
    pub ty: MetaType,
}

/// The source's record with the wanted metadata fields appended (in the order given),
/// and what each receives; `None` after reporting a field that cannot be added.
pub fn with_metadata(
    source: &str,
    record: &Rc<RecordType>,
    wanted: Vec<Wanted<'_>>,
    cx: &mut Cx,
) -> Option<(Rc<RecordType>, Vec<IrMeta>)> {
    if wanted.is_empty() {
        return Some((record.clone(), Vec::new()));
    }
    let mut fields = record.fields.clone();
    let mut ok = true;
    let mut added = Vec::new();
    for w in wanted {
        if !crate::spec::is_valid_field_name(w.field) {
            let at = cx.value(&w.path);
            cx.error(SpecError::invalid_name(w.field, &at));
            ok = false;
            continue;
        }
        if fields.iter().any(|f| f.name == w.field) {
            let at = cx.value(&w.path);
            cx.error(SpecError::invalid_value(
                w.path.last().copied().unwrap_or_default(),
                format!("the record already has a field `{}`", w.field),
                &at,
                Some(format!(
                    "name the metadata field differently, e.g. `message_{}`",
                    w.field
                )),
            ));
            ok = false;
            continue;
        }
        fields.push(Field {
            from_metadata: true,
            ..Field::new(w.field.to_string(), w.ty.field_type(), TsRepr::Millis)
        });
        added.push((w.field.to_string(), w.meta, w.ty));
    }
    if !ok {
        return None;
    }
    let record = Rc::new(RecordType::new(
        cx.names.type_name("", source, "Message"),
        format!("messages of `{source}`"),
        fields,
    ));
    let metadata = added
        .into_iter()
        .map(|(field, meta, ty)| IrMeta {
            ident: record.field(&field).map_or(field, |f| f.ident.clone()),
            meta,
            ty,
        })
        .collect();
    Some((record, metadata))
}

/// The wanted pieces among `defs`, from the spec's `metadata:` mapping of `def name →
/// field` (already read into `given`, in the order of `defs`).
pub fn wanted_of<'a>(source: &'a str, defs: &[MetaDef], given: &[Option<&'a String>]) -> Vec<Wanted<'a>> {
    defs.iter()
        .zip(given)
        .filter_map(|(def, field)| {
            let field = (*field)?;
            Some(Wanted {
                meta: def.name.to_string(),
                ty: def.ty,
                field,
                path: vec!["sources", source, "metadata", def.name],
            })
        })
        .collect()
}
