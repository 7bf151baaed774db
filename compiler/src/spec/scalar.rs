//! Where the characters of a scalar's value are written in the spec text: through
//! quotes, escapes, folded lines and block indentation, so an error inside an
//! expression points at its column.

use std::ops::Range;

use super::spans::Span;

/// Map a byte offset inside a scalar's *value* to a byte offset in the spec
/// text, given the scalar's span. Used to point inside expression strings.
pub fn offset_in_scalar(text: &str, scalar: &Span, value: &str, value_offset: usize) -> usize {
    span_in_scalar(text, scalar, value, &(value_offset..value_offset)).start
}

/// Map a byte range of a scalar's *value* to the text it was written as: through
/// quotes, escapes (`\"`, `\t`, `\u00e9` cover their whole escape), folded lines
/// and block indentation.
pub fn span_in_scalar(text: &str, scalar: &Span, value: &str, range: &Range<usize>) -> Span {
    let start = scalar.start.min(text.len());
    let chars = decode(&text[start..], value);
    let Some(chars) = chars else {
        return greedy_span(text, scalar, value, range);
    };
    // `chars[i]` is the i-th character of the value: (value offset, raw start, raw end).
    let at = |offset: usize| chars.iter().find(|c| c.0 + c.3 > offset);
    let first = at(range.start)
        .map(|c| c.1)
        .unwrap_or_else(|| chars.last().map_or(0, |c| c.2));
    let end = if range.end > range.start {
        at(range.end - 1)
            .map(|c| c.2)
            .unwrap_or_else(|| chars.last().map_or(0, |c| c.2))
    } else {
        first
    };
    (start + first)..(start + end.max(first))
}

/// The old, style-blind mapping: walk value and raw text together, skipping raw
/// characters the value does not contain. Used when [`decode`] does not reproduce
/// the value (a YAML feature it does not model).
fn greedy_span(text: &str, scalar: &Span, value: &str, range: &Range<usize>) -> Span {
    let locate = |value_offset: usize| {
        let raw = &text[scalar.start.min(text.len())..scalar.end.min(text.len())];
        let mut raw_iter = raw.char_indices();
        for (vi, v) in value.char_indices() {
            let at = raw_iter.by_ref().find(|&(_, r)| r == v).map(|(ri, _)| ri);
            let Some(ri) = at else { return scalar.start };
            if vi >= value_offset {
                return scalar.start + ri;
            }
        }
        scalar.end
    };
    let start = locate(range.start);
    let end = if range.end > range.start {
        locate(range.end - 1) + 1
    } else {
        start
    };
    start..end.max(start)
}

/// One character of a scalar's value: (offset in the value, raw start, raw end, its
/// length in the value), raw offsets relative to the scalar's first character.
type Decoded = (usize, usize, usize, usize);

/// Decode the scalar written at the start of `raw` far enough to produce `value`,
/// recording where each value character comes from. `None` when the decoding does
/// not give `value` exactly.
fn decode(raw: &str, value: &str) -> Option<Vec<Decoded>> {
    let wanted = value.chars().count();
    let produced = match raw.chars().next()? {
        '"' => decode_quoted(raw, wanted, true),
        '\'' => decode_quoted(raw, wanted, false),
        '|' | '>' => decode_block(raw, wanted),
        _ => decode_flow_lines(raw, 0, wanted, |_, _| None),
    };
    let mut out = Vec::with_capacity(produced.len());
    let mut offset = 0;
    let mut value_chars = value.chars();
    for (c, raw_start, raw_end) in produced {
        if value_chars.next() != Some(c) {
            return None;
        }
        out.push((offset, raw_start, raw_end, c.len_utf8()));
        offset += c.len_utf8();
    }
    (offset == value.len()).then_some(out)
}

/// A character of the value and the raw range it was written as.
type Produced = (char, usize, usize);

/// Plain and quoted scalars: lines are folded (a line break becomes a space, `n`
/// breaks become `n - 1` newlines, indentation and trailing spaces go). `special`
/// handles escapes and closing quotes: it returns how many raw bytes it consumed
/// and the character produced (`Some((0, None))` ends the scalar).
fn decode_flow_lines(
    raw: &str,
    from: usize,
    wanted: usize,
    special: impl Fn(&str, usize) -> Option<(usize, Option<char>)>,
) -> Vec<Produced> {
    let mut out: Vec<Produced> = Vec::new();
    let mut spaces: Vec<Produced> = Vec::new();
    let mut i = from;
    while out.len() < wanted && i < raw.len() {
        let rest = &raw[i..];
        let c = rest.chars().next().unwrap_or(' ');
        if let Some((used, produced)) = special(raw, i) {
            if used == 0 {
                break;
            }
            out.append(&mut spaces);
            if let Some(p) = produced {
                out.push((p, i, i + used));
            }
            i += used;
            continue;
        }
        match c {
            '\n' | '\r' => {
                spaces.clear();
                let break_at = i;
                let mut breaks = 0;
                // Count this break and every blank line after it; stop at the next content.
                let mut j = i;
                loop {
                    let line = &raw[j..];
                    let eol = if line.starts_with("\r\n") { 2 } else { 1 };
                    breaks += 1;
                    j += eol;
                    let indent = raw[j..].len() - raw[j..].trim_start_matches([' ', '\t']).len();
                    let after = &raw[j + indent..];
                    if after.starts_with(['\n', '\r']) {
                        j += indent;
                        continue;
                    }
                    j += indent;
                    break;
                }
                if breaks == 1 {
                    out.push((' ', break_at, j));
                } else {
                    out.extend(std::iter::repeat_n(('\n', break_at, j), breaks - 1));
                }
                i = j;
            }
            ' ' | '\t' => {
                spaces.push((c, i, i + 1));
                i += 1;
            }
            _ => {
                out.append(&mut spaces);
                out.push((c, i, i + c.len_utf8()));
                i += c.len_utf8();
            }
        }
    }
    out.truncate(wanted);
    out
}

/// `"…"` (with escapes) and `'…'` (with `''`).
fn decode_quoted(raw: &str, wanted: usize, double: bool) -> Vec<Produced> {
    let special = |raw: &str, i: usize| -> Option<(usize, Option<char>)> {
        let rest = &raw[i..];
        if double {
            if rest.starts_with('"') {
                return Some((0, None));
            }
            let escaped = rest.strip_prefix('\\')?;
            let e = escaped.chars().next()?;
            if e == '\n' || e == '\r' {
                // An escaped line break joins the lines: skip it and the next indentation.
                let eol = if escaped.starts_with("\r\n") { 2 } else { 1 };
                let after = &escaped[eol..];
                let indent = after.len() - after.trim_start_matches([' ', '\t']).len();
                return Some((1 + eol + indent, None));
            }
            let hex = |n: usize| {
                let digits = escaped.get(1..1 + n)?;
                let c = char::from_u32(u32::from_str_radix(digits, 16).ok()?)?;
                Some((2 + n, Some(c)))
            };
            let single = |c: char| Some((1 + e.len_utf8(), Some(c)));
            return match e {
                'x' => hex(2),
                'u' => hex(4),
                'U' => hex(8),
                '0' => single('\0'),
                'a' => single('\x07'),
                'b' => single('\x08'),
                't' | '\t' => single('\t'),
                'n' => single('\n'),
                'v' => single('\x0b'),
                'f' => single('\x0c'),
                'r' => single('\r'),
                'e' => single('\x1b'),
                'N' => single('\u{85}'),
                '_' => single('\u{a0}'),
                'L' => single('\u{2028}'),
                'P' => single('\u{2029}'),
                ' ' | '"' | '/' | '\\' => single(e),
                _ => None,
            };
        }
        if rest.starts_with("\'\'") {
            return Some((2, Some('\'')));
        }
        rest.starts_with('\'').then_some((0, None))
    };
    decode_flow_lines(raw, 1, wanted, special)
}

/// `|` and `>` block scalars: the header line, then lines at one indentation.
fn decode_block(raw: &str, wanted: usize) -> Vec<Produced> {
    let folded = raw.starts_with('>');
    let Some(header_end) = raw.find('\n') else {
        return Vec::new();
    };
    let explicit = raw[1..header_end]
        .chars()
        .find(|c| c.is_ascii_digit())
        .and_then(|c| c.to_digit(10));
    let body = header_end + 1;
    let indent = match explicit {
        Some(n) => n as usize,
        None => raw[body..]
            .lines()
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| l.len() - l.trim_start_matches(' ').len()),
    };
    let mut out: Vec<Produced> = Vec::new();
    let mut at = body;
    // A break between two lines that both start with content folds to a space in `>`.
    let mut previous_text = false;
    let mut pending_breaks: Vec<Produced> = Vec::new();
    while out.len() < wanted && at < raw.len() {
        let line_end = raw[at..].find('\n').map_or(raw.len(), |e| at + e);
        let line = &raw[at..line_end];
        let content = line.get(indent.min(line.len())..).unwrap_or("");
        let blank = line.trim().is_empty();
        if !blank && line.len() - line.trim_start_matches(' ').len() < indent {
            break;
        }
        if !blank {
            let starts_text = !content.starts_with([' ', '\t']);
            if folded && previous_text && starts_text {
                // The first break of the run folds; blank lines after it stay newlines.
                if pending_breaks.len() == 1 {
                    pending_breaks[0].0 = ' ';
                } else {
                    pending_breaks.remove(0);
                }
            }
            out.append(&mut pending_breaks);
            let content_start = at + indent;
            for (k, c) in content.char_indices() {
                out.push((c, content_start + k, content_start + k + c.len_utf8()));
            }
            previous_text = starts_text;
        }
        if line_end < raw.len() {
            pending_breaks.push(('\n', line_end, line_end + 1));
        }
        at = line_end + 1;
    }
    out.append(&mut pending_breaks);
    out.truncate(wanted);
    out
}

/// Where a plain scalar ends, when it continues over several lines: decoding the
/// value from the text tells how much text it covers.
pub(super) fn folded_plain_len(raw: &str, value: &str) -> Option<usize> {
    decode(raw, value).and_then(|chars| chars.last().map(|c| c.2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::spans::SpanIndex;

    /// Each case: a spec line `k: <scalar>` as written; the word `nope` of the value
    /// must be found where it is written in the text.
    #[test]
    fn offsets_inside_scalars_follow_quotes_escapes_and_folding() {
        let cases: &[&str] = &[
            "k: a == 1 && nope > 1\n",
            r#"k: "a == \"x\" && nope > 1""#,
            r#"k: "a\tb == c && nope""#,
            "k: \"\\u00e9t\u{e9} && nope\"\n",
            "k: 'it''s && nope'\n",
            "k: '''a'' == b && nope'\n",
            "k: a > 1 &&\n  nope > 2\n",
            "k: a > 1 &&\n\n  nope > 2\n",
            "k: \"a > 1 &&\n  nope > 2\"\n",
            "k: \"a > 1 && \\\n  nope > 2\"\n",
            "k: |\n  a > 1 &&\n    nope > 2\n",
            "k: >\n  a > 1 &&\n  nope > 2\n",
            "k: >-\n  a > 1\n\n  && nope\n",
            "k: { x: a, y: b && nope }\n",
            "k: [\"é\", \"\\\"ü\\\" && nope\"]\n",
        ];
        for text in cases {
            let idx = SpanIndex::build(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            let root: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
            let (path, value): (Vec<&str>, String) = match &root["k"] {
                serde_yaml::Value::String(v) => (vec!["k"], v.clone()),
                serde_yaml::Value::Mapping(m) => (vec!["k", "y"], m["y"].as_str().unwrap().to_string()),
                serde_yaml::Value::Sequence(s) => (vec!["k", "1"], s[1].as_str().unwrap().to_string()),
                other => panic!("{other:?}"),
            };
            let scalar = idx.value(&path);
            let in_value = value.find("nope").unwrap();
            let at = span_in_scalar(text, &scalar, &value, &(in_value..in_value + 4));
            let expected = text.find("nope").unwrap();
            assert_eq!(at, expected..expected + 4, "{text:?} (value {value:?})");
        }
    }

    #[test]
    fn an_escape_is_covered_whole() {
        let text = "k: \"a\\u00e9b\"\n";
        let idx = SpanIndex::build(text).unwrap();
        let scalar = idx.value(&["k"]);
        let at = span_in_scalar(text, &scalar, "aéb", &(1..3));
        assert_eq!(&text[at], "\\u00e9");
    }

    #[test]
    fn a_plain_scalar_over_several_lines_spans_them_all() {
        let text = "k: a > 1 &&\n  b > 2\nnext: 1\n";
        let idx = SpanIndex::build(text).unwrap();
        assert_eq!(&text[idx.value(&["k"])], "a > 1 &&\n  b > 2");
    }
}
