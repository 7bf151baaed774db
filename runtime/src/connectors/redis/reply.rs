//! Stream replies read in place: the entries of an `XREADGROUP` or `XAUTOCLAIM` reply,
//! each the id and the bytes of one field, moved out of the reply (no map per entry, no
//! copy of the record).

use redis::Value;
use std::fmt;

/// A stream entry id, `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub u64, pub u64);

impl EntryId {
    pub fn parse(bytes: &[u8]) -> Option<EntryId> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (ms, seq) = text.split_once('-')?;
        Some(EntryId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// One entry: its id, and the record (the field's bytes) or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub payload: Result<Vec<u8>, String>,
}

/// The entries of an `XREADGROUP` reply (`[[stream, [entry, ...]]]`, or nil when none
/// came): the last id read (bad entries included), and the entries.
pub fn read_group(reply: Value, field: &str) -> Result<(Option<EntryId>, Vec<Entry>), String> {
    let streams = match reply {
        Value::Nil => return Ok((None, Vec::new())),
        Value::Array(streams) => streams,
        other => return Err(format!("an XREADGROUP reply that is not an array: {other:?}")),
    };
    let mut entries = Vec::new();
    for stream in streams {
        let Value::Array(parts) = stream else {
            return Err("an XREADGROUP reply whose stream is not an array".into());
        };
        match parts.into_iter().nth(1) {
            Some(Value::Array(list)) => entries.extend(list.into_iter().map(|e| entry(e, field))),
            _ => return Err("an XREADGROUP reply without entries".into()),
        }
    }
    let entries = entries.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((entries.last().map(|e| e.id), entries))
}

/// An `XAUTOCLAIM` reply (`[cursor, [entry, ...], [deleted id, ...]]`): the next cursor
/// and the entries claimed. Deleted entries are dropped from the pending list by the
/// server; Redis 6.2 sends them as nil among the entries: skipped.
pub fn autoclaim(reply: Value, field: &str) -> Result<(String, Vec<Entry>), String> {
    let Value::Array(parts) = reply else {
        return Err("an XAUTOCLAIM reply that is not an array".into());
    };
    let mut parts = parts.into_iter();
    let cursor = match parts.next() {
        Some(Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Some(Value::SimpleString(text)) => text,
        _ => return Err("an XAUTOCLAIM reply without a cursor".into()),
    };
    let entries = match parts.next() {
        Some(Value::Array(list)) => list
            .into_iter()
            .filter(|e| !matches!(e, Value::Nil))
            .map(|e| entry(e, field))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err("an XAUTOCLAIM reply without entries".into()),
    };
    Ok((cursor, entries))
}

/// `[id, [field, value, ...]]`; the fields are nil for an entry deleted while pending.
fn entry(value: Value, field: &str) -> Result<Entry, String> {
    let Value::Array(parts) = value else {
        return Err("a stream entry that is not an array".into());
    };
    let mut parts = parts.into_iter();
    let id = match parts.next() {
        Some(Value::BulkString(bytes)) => EntryId::parse(&bytes),
        Some(Value::SimpleString(text)) => EntryId::parse(text.as_bytes()),
        _ => None,
    };
    let Some(id) = id else {
        return Err("a stream entry without an id".into());
    };
    let fields = match parts.next() {
        Some(Value::Array(fields)) => fields,
        _ => {
            return Ok(Entry {
                id,
                payload: Err("the entry was deleted before it was read (trimmed or XDEL)".into()),
            })
        }
    };
    let mut names = Vec::new();
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let name = match name {
            Value::BulkString(bytes) => bytes,
            Value::SimpleString(text) => text.into_bytes(),
            _ => continue,
        };
        if name != field.as_bytes() {
            names.push(String::from_utf8_lossy(&name).into_owned());
            continue;
        }
        let payload = match value {
            Value::BulkString(bytes) => Ok(bytes),
            Value::SimpleString(text) => Ok(text.into_bytes()),
            other => Err(format!("the entry's field `{field}` is not a string: {other:?}")),
        };
        return Ok(Entry { id, payload });
    }
    names.sort_unstable();
    Ok(Entry {
        id,
        payload: Err(format!(
            "the entry has no field `{field}` (it has {})",
            names.join(", ")
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry_value(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![bulk(id), Value::Array(fields.iter().map(|f| bulk(f)).collect())])
    }

    #[test]
    fn entries_are_read_in_place_with_what_is_wrong_with_each() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("in"),
            Value::Array(vec![
                entry_value("1-0", &["data", "{\"n\":1}"]),
                entry_value("1-1", &["other", "x", "more", "y"]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
                entry_value("3-7", &["a", "b", "data", "{}"]),
            ]),
        ])]);
        let (last, entries) = read_group(reply, "data").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last, Some(EntryId(3, 7)));
        assert_eq!(
            entries[0],
            Entry {
                id: EntryId(1, 0),
                payload: Ok(b"{\"n\":1}".to_vec())
            }
        );
        assert_eq!(
            entries[1].payload,
            Err("the entry has no field `data` (it has more, other)".into())
        );
        assert!(entries[2].payload.as_ref().is_err_and(|e| e.contains("deleted")));
        assert_eq!(entries[3].payload, Ok(b"{}".to_vec()));
        assert_eq!(read_group(Value::Nil, "data"), Ok((None, Vec::new())));
        assert!(read_group(bulk("OK"), "data").is_err());
    }

    #[test]
    fn an_autoclaim_reply_gives_the_cursor_and_skips_nil_entries() {
        let reply = Value::Array(vec![
            bulk("5-0"),
            Value::Array(vec![entry_value("4-0", &["data", "x"]), Value::Nil]),
            Value::Array(vec![bulk("4-1")]),
        ]);
        let (cursor, entries) = autoclaim(reply, "data").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cursor, "5-0");
        assert_eq!(
            entries,
            vec![Entry {
                id: EntryId(4, 0),
                payload: Ok(b"x".to_vec())
            }]
        );
    }

    #[test]
    fn ids_parse_and_print_back() {
        assert_eq!(
            EntryId::parse(b"1700000000000-12"),
            Some(EntryId(1_700_000_000_000, 12))
        );
        assert_eq!(EntryId(5, 0).to_string(), "5-0");
        assert_eq!(EntryId::parse(b"5"), None);
        assert_eq!(EntryId::parse(b"a-1"), None);
    }
}
