//! An ingest request's body → where each record is in it: JSON lines, or one JSON array
//! of records (told apart by the first byte that is not white space, `[`).
//!
//! Only the syntax is checked here: a body that is not JSON at all is refused whole (the
//! client gets `400` with the reason). Whether each record fits the schema is the
//! decoder's business later, one record at a time (a record that does not fit is a dead
//! letter, like any source's bad record).

use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::ops::Range;

/// Who checks that a JSON lines body is JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Here, before anything is decoded.
    Here,
    /// The decoder, as it decodes each line (refusing the body at the first line that
    /// is not JSON, see [`crate::errors::DecodeError::malformed`]): the lines are only
    /// cut here, so the body is parsed once.
    Decoder,
}

/// The records of `body`, as byte ranges into it, into `out` (cleared first; left
/// empty on `Err`, which is the reason to refuse the body).
pub fn records(body: &[u8], out: &mut Vec<Range<usize>>, check: Check) -> Result<(), String> {
    out.clear();
    let found = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Ok(()),
        Some(b'[') => array(body, out),
        // A byte order mark is refused here, as it always was.
        Some(_) if check == Check::Decoder && !body.starts_with(b"\xEF\xBB\xBF") => {
            cut_lines(body, out);
            Ok(())
        }
        Some(_) => lines(body, out),
    };
    if found.is_err() {
        out.clear();
    }
    found
}

fn array(body: &[u8], out: &mut Vec<Range<usize>>) -> Result<(), String> {
    let items: Vec<&RawValue> =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON array: {e}"))?;
    let base = body.as_ptr() as usize;
    out.extend(items.iter().map(|raw| {
        let start = raw.get().as_ptr() as usize - base;
        start..start + raw.get().len()
    }));
    Ok(())
}

/// JSON lines in one pass of the parser: each value is checked (not built) and its
/// range taken from where the parser stopped, so the body is neither split into lines
/// first nor parsed once per line. Each value must be alone on its line(s): a second
/// value on the same line, or one going on to the next line, refuses the body, as a
/// line that is not a JSON value by itself.
fn lines(body: &[u8], out: &mut Vec<Range<usize>>) -> Result<(), String> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<IgnoredAny>();
    let mut end = 0;
    while let Some(value) = values.next() {
        if let Err(e) = value {
            return Err(format!("line {} is not JSON: {e}", e.line()));
        }
        let after = values.byte_offset();
        // What precedes a value is white space only: the parser skipped nothing else.
        let start = end + body[end..after].iter().take_while(|b| is_space(**b)).count();
        let not_alone = if !out.is_empty() && !body[end..start].contains(&b'\n') {
            Some("a second value on the same line")
        } else if body[start..after].contains(&b'\n') {
            Some("the value goes on to the next line")
        } else {
            None
        };
        if let Some(why) = not_alone {
            let line = 1 + body[..start].iter().filter(|b| **b == b'\n').count();
            return Err(format!("line {line} is not JSON: {why}"));
        }
        out.push(start..after);
        end = after;
    }
    Ok(())
}

/// Each line that is not blank, without the white space around it.
fn cut_lines(body: &[u8], out: &mut Vec<Range<usize>>) {
    let mut start = 0;
    while start < body.len() {
        let end = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |n| start + n);
        let line = &body[start..end];
        let lead = line.iter().take_while(|b| is_space(**b)).count();
        let trail = line[lead..].iter().rev().take_while(|b| is_space(**b)).count();
        if lead + trail < line.len() {
            out.push(start + lead..end - trail);
        }
        start = end + 1;
    }
}

/// The line (from 1) record `range` starts on.
pub fn line_of(body: &[u8], range: &Range<usize>) -> usize {
    1 + memchr::memchr_iter(b'\n', &body[..range.start.min(body.len())]).count()
}

/// JSON's white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &str) -> Result<Vec<&str>, String> {
        // What a reused buffer held before is replaced.
        let mut ranges = vec![0..1, 1..2];
        records(body.as_bytes(), &mut ranges, Check::Here)
            .map(|()| ranges.into_iter().map(|r| body[r].trim()).collect())
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
        assert_eq!(texts(" \r\n\t\n"), Ok(vec![]));
        assert_eq!(texts("1\n2\r\n\"x\"\ntrue"), Ok(vec!["1", "2", "\"x\"", "true"]));
        assert_eq!(texts("[]"), Ok(vec![]));
        // A record that is JSON but no object is the decoder's to refuse, one by one.
        assert_eq!(texts("\"text\"\n42"), Ok(vec!["\"text\"", "42"]));
    }

    #[test]
    fn lines_left_to_the_decoder_are_only_cut() {
        let body = " {\"a\":1} \r\n\n\t\nnot json\n{\"a\":\n2}";
        let mut ranges = vec![0..1, 1..2];
        assert_eq!(records(body.as_bytes(), &mut ranges, Check::Decoder), Ok(()));
        let cut: Vec<&str> = ranges.iter().map(|r| &body[r.clone()]).collect();
        assert_eq!(cut, ["{\"a\":1}", "not json", "{\"a\":", "2}"]);
        assert_eq!(
            ranges.iter().map(|r| line_of(body.as_bytes(), r)).collect::<Vec<_>>(),
            [1, 4, 5, 6]
        );
        // Arrays, and a byte order mark, are still checked here.
        assert!(records(b"[1,", &mut ranges, Check::Decoder).is_err());
        assert!(records("\u{feff}{\"a\":1}".as_bytes(), &mut ranges, Check::Decoder).is_err());
        assert_eq!(records(b"  \n ", &mut ranges, Check::Decoder), Ok(()));
        assert!(ranges.is_empty());
    }

    #[test]
    fn a_body_that_is_not_json_is_refused_with_where() {
        let reason = texts("{\"a\":1}\nnot json\n").unwrap_err();
        assert!(reason.starts_with("line 2 is not JSON: "), "{reason}");
        let reason = texts("[{\"a\":1},").unwrap_err();
        assert!(reason.starts_with("the body is not a JSON array: "), "{reason}");
        assert!(texts("[1] [2]").is_err(), "one array only");
        let reason = texts("{\"a\":1}\n{\"a\":1} {\"a\":2}").unwrap_err();
        assert_eq!(reason, "line 2 is not JSON: a second value on the same line");
        assert!(texts("{}{}").is_err(), "one record per line, even without a space");
        assert!(texts("1 2").is_err(), "one record per line");
        let reason = texts("{\"a\":1}\n\n{\"a\":\n2}\n").unwrap_err();
        assert_eq!(reason, "line 3 is not JSON: the value goes on to the next line");
        let reason = texts("{\"a\":1}\n{\"a\":").unwrap_err();
        assert!(reason.starts_with("line 2 is not JSON: EOF"), "{reason}");
        assert!(texts("\u{feff}{\"a\":1}").is_err(), "a byte order mark is not JSON");
        assert!(texts("12x").is_err());
        assert!(texts("{\"a\":1}\u{c}").is_err(), "form feed is not JSON white space");
    }
}
