//! Finding, taking out and renaming nodes of a `serde_yaml::Value` by path (mapping
//! keys and sequence indexes), as the loader does when it reads around a mistake.

use serde_yaml::Value;

/// Remove every key that is not text, at any depth.
pub(super) fn strip_non_string_keys(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            map.retain(|k, _| k.is_string());
            for (_, v) in map.iter_mut() {
                strip_non_string_keys(v);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(strip_non_string_keys),
        _ => {}
    }
}

/// A key that is not text, as YAML prints it (`1`, `true`, `null`).
pub(super) fn key_text(key: &Value) -> String {
    serde_yaml::to_string(key).unwrap_or_default().trim().to_string()
}

/// The node at `path` (mapping keys and sequence indexes).
pub(super) fn value_at<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, seg| match v {
        Value::Mapping(m) => m.get(seg.as_str()),
        Value::Sequence(s) => s.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

pub(super) fn value_at_mut<'v>(value: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, seg| match v {
        Value::Mapping(m) => m.get_mut(seg.as_str()),
        Value::Sequence(s) => s.get_mut(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Take the mapping entry at `path` out; false when there is none.
pub(super) fn remove_at(value: &mut Value, path: &[String]) -> bool {
    take_at(value, path).is_some()
}

/// Take the mapping entry at `path` out and return its value.
pub(super) fn take_at(value: &mut Value, path: &[String]) -> Option<Value> {
    let (last, parent) = path.split_last()?;
    match value_at_mut(value, parent) {
        Some(Value::Mapping(m)) => m.remove(last.as_str()),
        _ => None,
    }
}

/// Put `value` under `key` in the mapping holding `beside`, unless `key` is there
/// already; returns the new entry's path.
pub(super) fn insert_beside(root: &mut Value, beside: &[String], key: String, value: Value) -> Option<Vec<String>> {
    let parent = &beside[..beside.len().checked_sub(1)?];
    let Some(Value::Mapping(map)) = value_at_mut(root, parent) else {
        return None;
    };
    if map.contains_key(key.as_str()) {
        return None;
    }
    map.insert(Value::String(key.clone()), value);
    let mut path = parent.to_vec();
    path.push(key);
    Some(path)
}

/// Mapping keys at every depth.
pub(super) fn count_keys(value: &Value) -> usize {
    match value {
        Value::Mapping(m) => m.iter().map(|(_, v)| 1 + count_keys(v)).sum(),
        Value::Sequence(s) => s.iter().map(count_keys).sum(),
        _ => 0,
    }
}
