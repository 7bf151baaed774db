//! Pattern specs: keyed sequences of steps on event time (Flink CEP's patterns).

use super::transforms::ExprText;
use super::windows::{KeySpec, LatePolicy, OnFull};
use super::{Inputs, OnError, OrderedMap};

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a mapping like `{ input: events, key: user_id, steps: { login: 'event == \"login\"' }, select: { at: login.ts } }`"
)]
pub struct PatternSpec {
    pub input: Option<Inputs>,
    pub key: Option<KeySpec>,
    /// Step name → its condition, or its condition and how it matches, in order.
    pub steps: Option<OrderedMap<StepSpec>>,
    /// Every event of a match within this long of its first.
    pub within: Option<String>,
    /// A match stands only if no such event follows its last within the given time.
    pub not_followed_by: Option<AbsenceSpec>,
    /// Output field name → expression over the steps (`login.ts`).
    pub select: Option<OrderedMap<ExprText>>,
    pub max_partial_matches: Option<u64>,
    pub max_keys: Option<u64>,
    pub on_full: Option<OnFull>,
    pub late: Option<LatePolicy>,
    /// For results that fail further down the pipeline (`dead_letter` or `drop`).
    pub on_error: Option<OnError>,
}

/// `login: event == "login"`, or `purchase: { where: ..., contiguity: next, times: 3 }`.
#[derive(Debug, Clone)]
pub enum StepSpec {
    Condition(ExprText),
    Full(StepDetail),
}

/// Not `#[serde(untagged)]`: a mapping is read as [`StepDetail`] itself, so a mistake
/// inside it (an unknown key, a bad count) is reported where it is, not as "no variant
/// matched" for the whole step.
impl<'de> serde::Deserialize<'de> for StepSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Step;
        impl<'de> serde::de::Visitor<'de> for Step {
            type Value = StepSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a condition, or a mapping like `{ where: 'event == \"buy\"', times: 3 }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StepSpec, E> {
                Ok(StepSpec::Condition(ExprText(v.to_string())))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<StepSpec, E> {
                Ok(StepSpec::Condition(ExprText(v.to_string())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<StepSpec, A::Error> {
                let detail = serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(StepSpec::Full(detail))
            }
        }
        d.deserialize_any(Step)
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDetail {
    #[serde(rename = "where")]
    pub condition: Option<ExprText>,
    pub contiguity: Option<Contiguity>,
    /// Exactly this many events.
    pub times: Option<u64>,
    /// One event or more, at most this many.
    pub one_or_more: Option<u64>,
    pub optional: Option<bool>,
}

impl StepSpec {
    pub fn detail(&self) -> StepDetail {
        match self {
            StepSpec::Condition(e) => StepDetail {
                condition: Some(e.clone()),
                contiguity: None,
                times: None,
                one_or_more: None,
                optional: None,
            },
            StepSpec::Full(d) => d.clone(),
        }
    }
}

/// How a step's first event follows the previous step's last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(expecting = "one of followed_by, next")]
pub enum Contiguity {
    /// Other events of the key may come between (the default).
    FollowedBy,
    /// Right after it: no event of the key between.
    Next,
}

/// `not_followed_by: { where: event == "confirm", within: 5m }`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ where: 'event == \"confirm\"', within: 5m }`")]
pub struct AbsenceSpec {
    #[serde(rename = "where")]
    pub condition: Option<ExprText>,
    pub within: Option<String>,
}
