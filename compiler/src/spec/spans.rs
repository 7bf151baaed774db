//! A path → span index over the spec text.
//!
//! serde_yaml reports locations only for its own errors, so every semantic
//! error looks up the YAML node it is about here, by its path from the root
//! (`["sources", "readings", "path"]`, with sequence items as `"0"`, `"1"`…).

use std::collections::HashMap;
use std::ops::Range;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Byte range of a node in the spec text.
pub type Span = Range<usize>;

/// Where a mapping key and its value sit in the text.
#[derive(Debug, Clone)]
pub struct NodeSpans {
    /// The key that introduced this node (`None` for sequence items and the root).
    pub key: Option<Span>,
    /// The value: the scalar itself, or the first character of a collection.
    pub value: Span,
}

/// The location of every node in a YAML document, by path.
#[derive(Debug, Default)]
pub struct SpanIndex {
    nodes: HashMap<Vec<String>, NodeSpans>,
    /// Keys that appear twice in the same mapping: (path of the second, span of the first key).
    pub duplicate_keys: Vec<(Vec<String>, Span)>,
}

/// A YAML syntax error, with its byte offset.
#[derive(Debug)]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

impl SpanIndex {
    /// Parse `text` and index every node. Fails on invalid YAML.
    pub fn build(text: &str) -> Result<SpanIndex, SyntaxError> {
        let mut builder = Builder::new(text);
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut builder, false).map_err(|e| SyntaxError {
            message: e.info().to_string(),
            offset: offset_of(text, e.marker()),
        })?;
        Ok(builder.index)
    }

    /// Spans of the node at `path`.
    pub fn get(&self, path: &[&str]) -> Option<&NodeSpans> {
        let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.nodes.get(&key)
    }

    /// The value span at `path`, or of the closest ancestor that exists.
    pub fn value(&self, path: &[&str]) -> Span {
        for len in (0..=path.len()).rev() {
            if let Some(node) = self.get(&path[..len]) {
                return node.value.clone();
            }
        }
        0..0
    }

    /// The key span at `path` (falling back to the value, then to ancestors).
    pub fn key(&self, path: &[&str]) -> Span {
        for len in (0..=path.len()).rev() {
            if let Some(node) = self.get(&path[..len]) {
                return node.key.clone().unwrap_or_else(|| node.value.clone());
            }
        }
        0..0
    }
}

/// Byte offset of a marker. Computed from line and column so that it does not
/// depend on whether the parser counts bytes or characters.
fn offset_of(text: &str, mark: &Marker) -> usize {
    offset_in_lines(text, &line_starts(text), mark)
}

/// The byte offset where each line of `text` starts.
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    starts
}

/// [`offset_of`] with the line starts computed once: the builder asks for every node,
/// and scanning the text from its start each time was quadratic in the spec's size.
fn offset_in_lines(text: &str, starts: &[usize], mark: &Marker) -> usize {
    let line_start = starts.get(mark.line().saturating_sub(1)).copied().unwrap_or(text.len());
    let line = &text[line_start.min(text.len())..];
    let col: usize = line.chars().take(mark.col()).map(char::len_utf8).sum();
    (line_start + col).min(text.len())
}

enum Frame {
    /// Inside a mapping: the current key (if one was read and its value is pending) and keys seen.
    Map {
        pending: Option<(String, Span)>,
        seen: HashMap<String, Span>,
    },
    /// Inside a sequence: the next item's index.
    Seq { next: usize },
}

struct Builder<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    index: SpanIndex,
    path: Vec<String>,
    frames: Vec<Frame>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Self {
        Builder {
            text,
            line_starts: line_starts(text),
            index: SpanIndex::default(),
            path: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Decide where the node starting now lives: returns (path of the node, its key span),
    /// or `None` when the node is a mapping key.
    fn place_node(&mut self) -> Option<(Vec<String>, Option<Span>)> {
        match self.frames.last_mut() {
            None => Some((Vec::new(), None)),
            Some(Frame::Seq { next }) => {
                let mut path = self.path.clone();
                path.push(next.to_string());
                *next += 1;
                Some((path, None))
            }
            Some(Frame::Map { pending, .. }) => match pending.take() {
                Some((key, span)) => {
                    let mut path = self.path.clone();
                    path.push(key);
                    Some((path, Some(span)))
                }
                None => None,
            },
        }
    }

    fn scalar_span(&self, start: usize, value: &str, style: TScalarStyle) -> Span {
        let end = match style {
            TScalarStyle::Plain => start + plain_len(&self.text[start..], value),
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => start + quoted_len(&self.text[start..]),
            _ => start + aligned_len(&self.text[start..], value),
        };
        start..end.min(self.text.len())
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let start = offset_in_lines(self.text, &self.line_starts, &mark);
        match ev {
            Event::Scalar(value, style, ..) => {
                let span = self.scalar_span(start, &value, style);
                match self.place_node() {
                    Some((path, key)) => {
                        self.index.nodes.insert(path, NodeSpans { key, value: span });
                    }
                    None => {
                        // A mapping key: remember it until its value arrives.
                        if let Some(Frame::Map { pending, seen }) = self.frames.last_mut() {
                            if let Some(first) = seen.get(&value) {
                                let mut dup = self.path.clone();
                                dup.push(value.clone());
                                self.index.duplicate_keys.push((dup, first.clone()));
                            } else {
                                seen.insert(value.clone(), span.clone());
                            }
                            *pending = Some((value, span));
                        }
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let (path, key) = match self.place_node() {
                    Some(placed) => placed,
                    // A collection used as a key: index it under a placeholder.
                    None => (vec!["<complex key>".to_string()], None),
                };
                let span = start..(start + 1).min(self.text.len());
                self.index.nodes.insert(path.clone(), NodeSpans { key, value: span });
                self.path = path;
                self.frames.push(if is_map {
                    Frame::Map {
                        pending: None,
                        seen: HashMap::new(),
                    }
                } else {
                    Frame::Seq { next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                self.path.pop();
            }
            Event::Alias(_) => {
                let _ = self.place_node();
            }
            _ => {}
        }
    }
}

/// Length of a plain scalar in the raw text: up to a comment, a flow indicator
/// or the end of its (last) line.
fn plain_len(raw: &str, value: &str) -> usize {
    if !value.contains('\n') {
        let mut end = 0;
        for (i, c) in raw.char_indices() {
            if c == '\n' || c == '\r' {
                break;
            }
            if c == '#' && raw[..i].ends_with(' ') {
                break;
            }
            if matches!(c, ',' | ']' | '}') && raw[..i].trim_end().len() >= value.len() {
                break;
            }
            if c == ':' && raw[i + 1..].starts_with([' ', '\n']) {
                break;
            }
            end = i + c.len_utf8();
        }
        return raw[..end].trim_end().len();
    }
    aligned_len(raw, value)
}

/// Length of a quoted scalar, closing quote included.
fn quoted_len(raw: &str) -> usize {
    let mut chars = raw.char_indices();
    let Some((_, quote)) = chars.next() else { return 0 };
    let mut escaped = false;
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == quote && !escaped {
            // '' is an escaped quote in single-quoted scalars.
            if quote == '\'' && raw[i + 1..].starts_with('\'') {
                chars.next();
                continue;
            }
            return i + 1;
        }
        escaped = false;
    }
    raw.len()
}

/// Length of raw text needed to cover `value`, walking both and skipping raw
/// characters (indentation, quotes, escapes) that the value does not contain.
fn aligned_len(raw: &str, value: &str) -> usize {
    let mut raw_iter = raw.char_indices();
    let mut end = 0;
    'outer: for v in value.chars() {
        for (i, r) in raw_iter.by_ref() {
            if r == v {
                end = i + r.len_utf8();
                continue 'outer;
            }
        }
        break;
    }
    end
}

/// Map a byte offset inside a scalar's *value* to a byte offset in the spec
/// text, given the scalar's span. Used to point inside expression strings.
pub fn offset_in_scalar(text: &str, scalar: &Span, value: &str, value_offset: usize) -> usize {
    let raw = &text[scalar.start.min(text.len())..scalar.end.min(text.len())];
    let mut raw_iter = raw.char_indices();
    for (vi, v) in value.char_indices() {
        // Advance raw until it matches this value character.
        let at = raw_iter.by_ref().find(|&(_, r)| r == v).map(|(ri, _)| ri);
        let Some(ri) = at else { return scalar.start };
        if vi >= value_offset {
            return scalar.start + ri;
        }
    }
    scalar.end
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "name: demo\nsources:\n  readings:\n    type: file\n    path: \"in.jsonl\" # the input\n    topics: [a, b]\ntransforms:\n  hot:\n    filter: |\n      temperature > 25.0\n";

    fn text_at(span: Span) -> &'static str {
        &SPEC[span]
    }

    #[test]
    fn indexes_keys_and_values() {
        let idx = SpanIndex::build(SPEC).unwrap();
        assert_eq!(text_at(idx.value(&["name"])), "demo");
        assert_eq!(text_at(idx.key(&["sources", "readings", "type"])), "type");
        assert_eq!(text_at(idx.value(&["sources", "readings", "type"])), "file");
        assert_eq!(text_at(idx.value(&["sources", "readings", "path"])), "\"in.jsonl\"");
        assert_eq!(text_at(idx.value(&["sources", "readings", "topics", "1"])), "b");
        assert_eq!(text_at(idx.key(&["sources", "readings"])), "readings");
    }

    #[test]
    fn missing_path_falls_back_to_ancestor() {
        let idx = SpanIndex::build(SPEC).unwrap();
        assert_eq!(text_at(idx.key(&["sources", "readings", "nope"])), "readings");
    }

    #[test]
    fn block_scalar_offsets_point_inside_the_expression() {
        let idx = SpanIndex::build(SPEC).unwrap();
        let span = idx.value(&["transforms", "hot", "filter"]);
        let value = "temperature > 25.0\n";
        let at = offset_in_scalar(SPEC, &span, value, 14);
        assert_eq!(&SPEC[at..at + 4], "25.0");
    }

    #[test]
    fn reports_duplicate_keys() {
        let idx = SpanIndex::build("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(idx.duplicate_keys.len(), 1);
        assert_eq!(idx.duplicate_keys[0].1, 0..1);
    }

    #[test]
    fn syntax_error_has_an_offset() {
        let err = SpanIndex::build("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.offset > 0, "{err:?}");
    }

    #[test]
    fn non_ascii_text_keeps_byte_offsets() {
        let text = "name: é\nx: y\n";
        let idx = SpanIndex::build(text).unwrap();
        assert_eq!(&text[idx.value(&["x"])], "y");
    }
}
