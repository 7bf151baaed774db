//! What serde's failures say, turned into what the loader needs: the path of the failure,
//! the names it lists, and wording in the spec's terms instead of Rust's.

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::value_path::value_at_mut;

/// The path inside a component where serde failed.
pub(super) fn error_path(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            _ => None,
        })
        .collect()
}

/// The names an enum at `path` accepts, asked of the enum itself: read with a name it
/// cannot know, it lists the ones it does.
pub(super) fn enum_choices<T: DeserializeOwned>(value: &Value, path: &[String]) -> String {
    let mut probe = value.clone();
    if let Some(slot) = value_at_mut(&mut probe, path) {
        *slot = Value::String("\u{1}".into());
    }
    let expected = match serde_path_to_error::deserialize::<_, T>(probe) {
        Err(e) => e.into_inner().to_string(),
        Ok(_) => String::new(),
    };
    backticked(expected.split_once("expected").map_or("", |(_, e)| e)).join(", ")
}

/// The key to take out after a failure at `relative`: the unknown key itself, or the key
/// holding the bad value (the whole list for an item: removing one item would shift the
/// others away from their spans).
pub(super) fn removal_target(relative: &[String], unknown: Option<&str>) -> Vec<String> {
    let mut target = relative.to_vec();
    match unknown {
        Some(field) if relative.last().map(String::as_str) != Some(field) => target.push(field.to_string()),
        Some(_) => {}
        None => {
            let first_index = relative.iter().position(|s| s.parse::<usize>().is_ok());
            target.truncate(first_index.unwrap_or(relative.len()));
        }
    }
    target
}

/// The name in backticks right after `prefix`, if the message starts with it.
pub(super) fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_string)
}

/// serde names the Rust type it expected (`u64`, `a borrowed string`); say what a spec
/// writer would write instead. Structs and enums name themselves through
/// `#[serde(expecting = ...)]`.
pub(super) fn plain_words(message: &str) -> String {
    let mut message = message.to_string();
    // Whole words only: "expected a map" must not rewrite "expected a mapping".
    let replace_words = |message: &mut String, rust: &str, words: &str| {
        let mut from = 0;
        while let Some(found) = message[from..].find(rust) {
            let at = from + found;
            let end = at + rust.len();
            if message[end..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                from = end;
                continue;
            }
            message.replace_range(at..end, words);
            from = at + words.len();
        }
    };
    for (rust, words) in [
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected u32", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected `true` or `false`"),
        ("expected a borrowed string", "expected a string"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a mapping"),
        ("invalid type: sequence", "invalid type: a list"),
        ("invalid type: map", "invalid type: a mapping"),
        ("invalid type: unit value", "nothing given"),
    ] {
        replace_words(&mut message, rust, words);
    }
    message
}

/// Every `name` inside backticks in a serde message.
pub(super) fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The fields a struct with `deny_unknown_fields` has, asked of the struct itself: read
/// with a key it cannot know, it lists the ones it does.
pub(crate) fn field_names<T: DeserializeOwned>() -> Vec<String> {
    let mut probe = serde_yaml::Mapping::new();
    probe.insert(Value::String("\u{1}".into()), Value::Null);
    match serde_yaml::from_value::<T>(Value::Mapping(probe)) {
        Err(e) => {
            let message = e.to_string();
            backticked(message.split_once("expected").map_or("", |(_, e)| e))
        }
        Ok(_) => Vec::new(),
    }
}
