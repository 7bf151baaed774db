//! An ingest request's body → where each record is in it: JSON lines, or one JSON array
//! of records (told apart by the first byte that is not white space, `[`).
//!
//! Only the syntax is checked here: a body that is not JSON at all is refused whole (the
//! client gets `400` with the reason). Whether each record fits the schema is the
//! decoder's business later, one record at a time (a record that does not fit is a dead
//! letter, like any source's bad record).

use serde_json::value::RawValue;
use std::ops::Range;

/// The records of `body`, as byte ranges into it; `Err` is the reason to refuse it.
pub fn records(body: &[u8]) -> Result<Vec<Range<usize>>, String> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Ok(Vec::new()),
        Some(b'[') => array(body),
        Some(_) => lines(body),
    }
}

fn array(body: &[u8]) -> Result<Vec<Range<usize>>, String> {
    let items: Vec<&RawValue> =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON array: {e}"))?;
    let base = body.as_ptr() as usize;
    Ok(items
        .iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - base;
            start..start + raw.get().len()
        })
        .collect())
}

fn lines(body: &[u8]) -> Result<Vec<Range<usize>>, String> {
    let mut out = Vec::new();
    let mut start = 0;
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        let range = start..start + line.len();
        start += line.len() + 1;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(trimmed) {
            return Err(format!("line {} is not JSON: {e}", n + 1));
        }
        out.push(range);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &str) -> Result<Vec<&str>, String> {
        records(body.as_bytes()).map(|ranges| ranges.into_iter().map(|r| body[r].trim()).collect())
    }

    #[test]
    fn json_lines_and_arrays_are_cut_into_records() {
        assert_eq!(
            texts("{\"a\":1}\n\n  {\"a\": 2}\r\n"),
            Ok(vec!["{\"a\":1}", "{\"a\": 2}"])
        );
        assert_eq!(
            texts(" \n[{\"a\":1}, {\"b\":[1,2]} ,3]"),
            Ok(vec!["{\"a\":1}", "{\"b\":[1,2]}", "3"])
        );
        assert_eq!(texts(""), Ok(vec![]));
        assert_eq!(texts("[]"), Ok(vec![]));
        // A record that is JSON but no object is the decoder's to refuse, one by one.
        assert_eq!(texts("\"text\"\n42"), Ok(vec!["\"text\"", "42"]));
    }

    #[test]
    fn a_body_that_is_not_json_is_refused_with_where() {
        let reason = texts("{\"a\":1}\nnot json\n").unwrap_err();
        assert!(reason.starts_with("line 2 is not JSON: "), "{reason}");
        let reason = texts("[{\"a\":1},").unwrap_err();
        assert!(reason.starts_with("the body is not a JSON array: "), "{reason}");
        assert!(texts("[1] [2]").is_err(), "one array only");
        assert!(texts("{\"a\":1} {\"a\":2}").is_err(), "one record per line");
    }
}
