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
    pub name: String,
    pub ty: Type,
    /// How the field is encoded when it holds a timestamp.
    pub ts_repr: TsRepr,
    /// Filled from the message's metadata (Kafka key, partition, ..), not decoded.
    pub from_metadata: bool,
}

/// A record type: one generated struct.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordType {
    /// The Rust struct name (`Reading`, `FahrenheitRecord`).
    pub rust_name: String,
    /// How users know it (`schema \`reading\``, `output of \`fahrenheit\``).
    pub display: String,
    pub fields: Vec<Field>,
}

impl RecordType {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn field_names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }
    /// Every field is a scalar (optional allowed): the record fits a CSV row.
    pub fn is_flat(&self) -> bool {
        self.fields.iter().all(|f| f.ty.is_flat())
    }
}
