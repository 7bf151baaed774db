//! The types of values and records, shared by expression checking, the IR and codegen.

use std::fmt;
use std::rc::Rc;

/// How a timestamp is written in data. Inside a pipeline it is always Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsRepr {
    Millis,
    Seconds,
    Rfc3339,
}

/// The type of a value in an expression or a record field.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    String,
    Bool,
    I64,
    U64,
    F64,
    /// Unix milliseconds.
    Timestamp,
    Optional(Box<Type>),
    List(Box<Type>),
    Record(Rc<RecordType>),
}

impl Type {
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::I64 | Type::U64 | Type::F64)
    }
    pub fn is_optional(&self) -> bool {
        matches!(self, Type::Optional(_))
    }
    /// True for types a CSV column can hold.
    pub fn is_flat(&self) -> bool {
        match self {
            Type::Optional(inner) => inner.is_flat(),
            Type::List(_) | Type::Record(_) => false,
            _ => true,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Bool => f.write_str("bool"),
            Type::I64 => f.write_str("i64"),
            Type::U64 => f.write_str("u64"),
            Type::F64 => f.write_str("f64"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::Optional(inner) => write!(f, "{inner}?"),
            Type::List(inner) => write!(f, "list<{inner}>"),
            Type::Record(r) => write!(f, "{}", r.display),
        }
    }
}

/// One field of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The name in the spec and on the wire.
    pub name: String,
    /// The Rust identifier (`r#type`, `self_`), assigned by [`RecordType::new`]
    /// through [`crate::names::field_idents`].
    pub ident: String,
    pub ty: Type,
    /// How the field is encoded when it holds a timestamp.
    pub ts_repr: TsRepr,
    /// Filled from the message's metadata (its topic, key, ..), not decoded.
    pub from_metadata: bool,
}

impl Field {
    /// A field decoded from data, its timestamps (if any) in `ts_repr`; its identifier
    /// is assigned when the record is made.
    pub fn new(name: impl Into<String>, ty: Type, ts_repr: TsRepr) -> Self {
        Field {
            name: name.into(),
            ident: String::new(),
            ty,
            ts_repr,
            from_metadata: false,
        }
    }
}

/// A record type: one generated struct.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordType {
    /// The Rust struct name (`Reading`, `FahrenheitRecord`), from [`crate::names::Names`].
    pub rust_name: String,
    /// How users know it (`schema \`reading\``, `output of \`fahrenheit\``).
    pub display: String,
    pub fields: Vec<Field>,
}

impl RecordType {
    /// A record with a struct name from [`crate::names::Names`]; gives every field its
    /// identifier, unique within the record.
    pub fn new(rust_name: String, display: String, mut fields: Vec<Field>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let idents = crate::names::field_idents(&names);
        for (field, ident) in fields.iter_mut().zip(idents) {
            field.ident = ident;
        }
        RecordType {
            rust_name,
            display,
            fields,
        }
    }
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn field_names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }
    /// The identifiers along a path of field names into nested records.
    pub fn path_idents(&self, path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let field = self.field(first)?;
        let mut idents = vec![field.ident.clone()];
        if !rest.is_empty() {
            let Type::Record(nested) = &field.ty else { return None };
            idents.extend(nested.path_idents(rest)?);
        }
        Some(idents)
    }
    /// Every field is a scalar (optional allowed): the record fits a CSV row.
    pub fn is_flat(&self) -> bool {
        self.fields.iter().all(|f| f.ty.is_flat())
    }
}
