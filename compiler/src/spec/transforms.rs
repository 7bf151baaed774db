//! Transform specs: `filter:`, `map:` and `explode:` over one or more inputs.

use super::{Inputs, OrderedMap};

/// A stateless transform. When both are given, `filter` runs before `map`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ input: readings, filter: temperature > 25.0 }`")]
pub struct TransformSpec {
    pub input: Option<Inputs>,
    /// A boolean expression: records for which it is false are dropped.
    pub filter: Option<ExprText>,
    /// Output field name → expression. The output schema is inferred.
    pub map: Option<OrderedMap<ExprText>>,
    /// `{ word: split(line, " ") }`: one output record per element of a list, with that
    /// one field. Runs after `filter`; not together with `map`.
    pub explode: Option<OrderedMap<ExprText>>,
}

/// Expression source text. YAML numbers and booleans are accepted as literals.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprText(pub String);

impl<'de> serde::Deserialize<'de> for ExprText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(ExprText(s)),
            serde_yaml::Value::Number(n) => Ok(ExprText(n.to_string())),
            serde_yaml::Value::Bool(b) => Ok(ExprText(b.to_string())),
            _ => Err(D::Error::custom("expected an expression (a string)")),
        }
    }
}
