//! The spec: what the user wrote, deserialized into typed structs.
//!
//! Loading never stops at the first mistake: each section and each component
//! is deserialized on its own, and every failure becomes a [`SpecError`] at
//! the YAML node it is about (found through the [`spans::SpanIndex`]).

pub mod duration;
pub mod joins;
pub mod loader;
pub mod patterns;
pub mod scalar;
pub mod schema;
mod serde_messages;
pub mod sinks;
pub mod size;
pub mod sources;
pub mod spans;
pub mod tables;
pub mod transforms;
mod value_path;
pub mod windows;

pub use crate::connectors::{SinkKind, SourceKind};
pub use joins::JoinSpec;
pub use loader::{load, Loaded};
pub use patterns::PatternSpec;
pub use schema::{FieldSpec, ScalarType, SchemaSpec};
pub(crate) use serde_messages::field_names;
pub use sinks::SinkSpec;
pub use sources::SourceSpec;
pub use tables::TableSpec;
pub use transforms::TransformSpec;
pub use windows::WindowSpec;

/// A component with the name it was given in the spec.
#[derive(Debug, Clone)]
pub struct Named<T> {
    pub name: String,
    pub spec: T,
}

/// A whole pipeline spec. Sections keep the order they were written in.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub name: String,
    pub schemas: Vec<Named<SchemaSpec>>,
    pub sources: Vec<Named<SourceSpec>>,
    /// Transforms, windows and tables: the nodes between sources and sinks.
    pub operators: Vec<Named<OperatorSpec>>,
    pub sinks: Vec<Named<SinkSpec>>,
    /// Components that exist but could not be read: (section, name). Later
    /// passes treat them as present, so one mistake is reported once.
    pub unreadable: Vec<(&'static str, String)>,
    /// Schemas that exist but could not be read: a source naming one is not told
    /// the schema is unknown.
    pub unreadable_schemas: Vec<String>,
    /// Schema fields whose type could not be read: an expression naming one is not
    /// told the field is unknown.
    pub unreadable_fields: Vec<String>,
}

impl Spec {
    /// True when `section` has a component called `name`, readable or not.
    pub fn defines(&self, section: &str, name: &str) -> bool {
        self.unreadable.iter().any(|(s, n)| *s == section && n == name)
            || match section {
                "sources" => self.sources.iter().any(|c| c.name == name),
                "sinks" => self.sinks.iter().any(|c| c.name == name),
                section => self
                    .operators
                    .iter()
                    .any(|c| c.name == name && c.spec.section() == section),
            }
    }

    /// True when any operator section (transforms, windows, tables, patterns, joins) defines `name`.
    pub fn defines_operator(&self, name: &str) -> bool {
        OperatorSpec::SECTIONS.iter().any(|s| self.defines(s, name))
    }
}

/// A node between sources and sinks, from one of five sections.
#[derive(Debug, Clone)]
pub enum OperatorSpec {
    Transform(TransformSpec),
    Window(WindowSpec),
    Table(TableSpec),
    Pattern(PatternSpec),
    Join(Box<JoinSpec>),
}

impl OperatorSpec {
    pub const SECTIONS: &'static [&'static str] = &["transforms", "windows", "tables", "patterns", "joins"];

    /// The top-level section it was written in, the first segment of its spans' paths.
    pub fn section(&self) -> &'static str {
        match self {
            OperatorSpec::Transform(_) => "transforms",
            OperatorSpec::Window(_) => "windows",
            OperatorSpec::Table(_) => "tables",
            OperatorSpec::Pattern(_) => "patterns",
            OperatorSpec::Join(_) => "joins",
        }
    }

    /// What it is called in messages: `transform`, `window`, `table`, `pattern`, `join`.
    pub fn kind(&self) -> &'static str {
        match self {
            OperatorSpec::Transform(_) => "transform",
            OperatorSpec::Window(_) => "window",
            OperatorSpec::Table(_) => "table",
            OperatorSpec::Pattern(_) => "pattern",
            OperatorSpec::Join(_) => "join",
        }
    }

    pub fn input(&self) -> Option<&Inputs> {
        match self {
            OperatorSpec::Transform(t) => t.input.as_ref(),
            OperatorSpec::Window(w) => w.input.as_ref(),
            OperatorSpec::Table(t) => t.input.as_ref(),
            OperatorSpec::Pattern(p) => p.input.as_ref(),
            OperatorSpec::Join(j) => j.input.as_ref(),
        }
    }

    /// Its inputs: one list, or a join of two streams' `left` and `right` ones. Each
    /// with the path, under the component, of the mapping that holds its `input:`.
    pub fn ports(&self) -> Vec<(Option<&Inputs>, Option<&'static str>)> {
        match self {
            OperatorSpec::Join(j) if j.of_streams() => vec![
                (j.left.as_ref().and_then(|s| s.input.as_ref()), Some("left")),
                (j.right.as_ref().and_then(|s| s.input.as_ref()), Some("right")),
            ],
            other => vec![(other.input(), None)],
        }
    }

    /// A window, a pattern and a join of two streams have a second output, `<name>.late`.
    pub fn has_late_output(&self) -> bool {
        match self {
            OperatorSpec::Window(_) | OperatorSpec::Pattern(_) => true,
            OperatorSpec::Join(j) => j.of_streams(),
            _ => false,
        }
    }
}

/// How a record format is written in a spec (`format: json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of json, csv, lines")]
pub enum FormatName {
    Json,
    Csv,
    Lines,
}

impl FormatName {
    pub fn as_str(self) -> &'static str {
        match self {
            FormatName::Json => "json",
            FormatName::Csv => "csv",
            FormatName::Lines => "lines",
        }
    }
}

/// What a source does with a record it cannot decode or process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of dead_letter, drop, fail")]
pub enum OnError {
    #[default]
    DeadLetter,
    Drop,
    Fail,
}

/// One input or several: `input: a` or `input: [a, b]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
#[serde(expecting = "a name or a list of names")]
pub enum Inputs {
    One(String),
    Many(Vec<String>),
}

impl Inputs {
    pub fn names(&self) -> Vec<&str> {
        match self {
            Inputs::One(s) => vec![s.as_str()],
            Inputs::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A scalar that may hold `${VAR}` and is resolved when the binary starts.
/// Deserialized from any YAML scalar and kept as the raw text.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting(pub String);

impl<'de> serde::Deserialize<'de> for Setting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_yaml::Value::deserialize(d)?;
        match value {
            serde_yaml::Value::String(s) => Ok(Setting(s)),
            serde_yaml::Value::Number(n) => Ok(Setting(n.to_string())),
            serde_yaml::Value::Bool(b) => Ok(Setting(b.to_string())),
            _ => Err(D::Error::custom("expected a string or a number")),
        }
    }
}

impl Setting {
    /// True when the value is only known at start (`${VAR}`).
    pub fn is_template(&self) -> bool {
        self.0.contains("${")
    }

    /// The default of a value that is one `${VAR:-default}` and nothing else: what the
    /// binary starts with when VAR is unset, so it can be checked now.
    pub fn sole_default(&self) -> Option<&str> {
        let inner = self.0.strip_prefix("${")?.strip_suffix('}')?;
        let (_, default) = inner.split_once(":-")?;
        (!inner.contains("${") && !inner.contains('}')).then_some(default)
    }

    /// What the value is known to be now, so it can be checked at compile time: the
    /// text itself, or a sole `${VAR:-default}`'s default; `None` when it depends on
    /// the environment.
    pub fn known_now(&self) -> Option<&str> {
        match self.sole_default() {
            Some(default) => Some(default),
            None if self.is_template() => None,
            None => Some(self.0.as_str()),
        }
    }
}

/// Field names are identifiers too, but may use uppercase letters as input
/// data often does (`deviceId`).
pub fn is_valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True for `lower_snake_case` names usable as identifiers.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A mapping that keeps the order its keys were written in.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: serde::Deserialize<'de>> serde::Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    entries.push((k, v));
                }
                Ok(OrderedMap(entries))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}
