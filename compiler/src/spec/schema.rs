//! Schemas: the typed shape of records (`device_id: string`, `humidity: f64?`).

use std::fmt;

/// The scalar field types a schema can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Bool,
    I64,
    U64,
    F64,
    /// Unix milliseconds.
    TimestampMs,
    /// Unix seconds (integer or fractional).
    TimestampS,
    /// RFC 3339 text, e.g. `2024-01-01T00:00:00Z`.
    TimestampRfc3339,
}

impl ScalarType {
    /// Every type name accepted in a schema, for help texts.
    pub const NAMES: &'static [&'static str] = &[
        "string",
        "bool",
        "i64",
        "u64",
        "f64",
        "timestamp_ms",
        "timestamp_s",
        "timestamp",
    ];

    pub fn parse(name: &str) -> Option<ScalarType> {
        Some(match name {
            "string" => ScalarType::String,
            "bool" => ScalarType::Bool,
            "i64" => ScalarType::I64,
            "u64" => ScalarType::U64,
            "f64" => ScalarType::F64,
            "timestamp_ms" => ScalarType::TimestampMs,
            "timestamp_s" => ScalarType::TimestampS,
            "timestamp" | "timestamp_rfc3339" => ScalarType::TimestampRfc3339,
            _ => return None,
        })
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScalarType::String => "string",
            ScalarType::Bool => "bool",
            ScalarType::I64 => "i64",
            ScalarType::U64 => "u64",
            ScalarType::F64 => "f64",
            ScalarType::TimestampMs => "timestamp_ms",
            ScalarType::TimestampS => "timestamp_s",
            ScalarType::TimestampRfc3339 => "timestamp",
        })
    }
}

/// One field of a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldSpec {
    Scalar {
        ty: ScalarType,
        optional: bool,
    },
    /// A nested object with its own fields.
    Object(SchemaSpec),
}

/// A schema: named fields in the order they were written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaSpec {
    pub fields: Vec<(String, FieldSpec)>,
}
